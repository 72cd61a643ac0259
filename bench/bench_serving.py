"""Benchmark: serving features (the latest vector and point-in-time training sets).

On the L2 benchmark's history (2 symbols x 500,000 snapshots, 10 levels; every family built
by `tickfeatures refresh`), in one run on one machine:
  * latest vector: `select * from features.latest_l2(%s)` through psycopg as a prepared
    statement, as Feast measures its online store: 50 warm-up calls, then 1,000 timed, p50 /
    p95 / p99; once idle and once while another process loads a few seconds of snapshots and
    refreshes the L2 families, over and over, one second apart;
  * training set: 100,000 events at random times with every feature of the eight L2 families
    (`tickfeatures training-set EVENTS.parquet --features ... --out FILE.parquet`, the CLI
    included) against the pandas round trip a user would write: COPY each family's table out
    (CSV into pandas' C parser, two connections at once), pandas.merge_asof per family by
    symbol, and the same Parquet file;
  * on the bar benchmark's database when it exists (bench_bars.py: 28 pairs x a month), the
    same for every bar feature (bar open + 1 minute <= event) and latest_bars' latency idle.
Prints the figures and writes them to a JSON file.
"""

from __future__ import annotations

import argparse
import io
import json
import multiprocessing
import os
import platform
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import psycopg
from psycopg.conninfo import make_conninfo

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from bench_l2 import SYMBOLS, snapshots_csv  # noqa: E402
from benchlib import fresh_database, log, settle, tf  # noqa: E402

from tickfeatures import config, generate  # noqa: E402
from tickfeatures.db import redact  # noqa: E402
from tickfeatures.schema import L2_COLUMNS  # noqa: E402

EVENTS = 100_000
WARMUP_CALLS, TIMED_CALLS = 50, 1_000
L2_FAMILIES = [
    "microstructure", "ofi", "book_pressure", "stability", "volatility", "flow", "temporal",
    "regime",
]  # fmt: skip


def latency(
    url: str, function: str, symbol: str, pace_s: float = 0.0, busy: threading.Event | None = None
) -> dict[str, float]:
    """p50/p95/p99 (ms) of one prepared call, Feast's way: warm-up calls, then timed ones,
    `pace_s` apart (so that, during refreshes, they sample whole refresh cycles); with `busy`,
    also how many calls fell while a refresh was running."""
    with psycopg.connect(url, autocommit=True) as conn:
        query = f"select * from features.{function}(%s)"
        for _ in range(WARMUP_CALLS):
            conn.execute(query, (symbol,), prepare=True).fetchall()
        times, during = [], 0
        for _ in range(TIMED_CALLS):
            running = busy is not None and busy.is_set()
            started = time.perf_counter()
            rows = conn.execute(query, (symbol,), prepare=True).fetchall()
            times.append((time.perf_counter() - started) * 1000)
            during += running and busy.is_set()
            assert len(rows) == 1
            if pace_s:
                time.sleep(pace_s)
    p50, p95, p99 = (float(v) for v in np.percentile(times, [50, 95, 99]))
    figures = {"p50_ms": round(p50, 3), "p95_ms": round(p95, 3), "p99_ms": round(p99, 3)}
    if busy is not None:
        figures["calls_during_a_refresh"] = during
    return figures


def next_snapshots(url: str, cache: Path, count: int) -> list[Path]:
    """`count` files of the next 5 seconds of snapshots each, written before the timing (so
    that the bench process's own Python does not take the GIL from the timed calls)."""
    specs = generate.load_symbols(ROOT / "seeds" / "symbols.csv")
    with psycopg.connect(url) as conn:
        last = conn.execute("select max(ts) from market.l2_snapshots").fetchone()[0]  # type: ignore[index]
    paths = []
    for i in range(count):
        begin = last + timedelta(seconds=5 * i + 1)
        path = cache / f"serving_next_{i}.csv"
        generate.write_csv(
            generate.generate_l2(
                [specs[s] for s in SYMBOLS], begin, timedelta(seconds=5), seed=300 + i
            ),
            L2_COLUMNS,
            path,
        )
        paths.append(path)
    return paths


def feed_and_refresh(url: str, files: list[str], stop, busy, cycles) -> None:
    """The steady state the engine is built for, in a process of its own started before the
    timing: a feed writer loading the next 5 seconds of snapshots on its connection, then the
    in-database refresh (`call features.refresh()`, what a one-second pg_cron schedule runs),
    one second apart. No process starts while the calls are timed (a new Python process
    importing numpy costs the timed calls 3 ms at p99 on this 2-core machine, niced or not)."""
    from tickfeatures.load import load_file

    with (
        psycopg.connect(url, autocommit=True) as writer,
        psycopg.connect(url, autocommit=True) as refresher,
    ):
        for path in files:
            if stop.is_set():
                break
            busy.set()
            started = time.perf_counter()
            load_file(writer, "l2", Path(path))
            refresher.execute("call features.refresh()")
            cycles.append(time.perf_counter() - started)
            busy.clear()
            stop.wait(1.0)


def random_events(url: str, symbols: list[str], n: int, seed: int, table: str) -> pd.DataFrame:
    """n events at random times within each symbol's history (and a little before it)."""
    rng = np.random.default_rng(seed)
    with psycopg.connect(url) as conn:
        bounds = {
            s: conn.execute(
                f"select min(ts), max(ts) from {table} where symbol = %s", (s,)
            ).fetchone()
            for s in symbols
        }
    chosen = rng.choice(symbols, n)
    lo = np.array([pd.Timestamp(bounds[s][0]).value for s in chosen])  # type: ignore[index]
    hi = np.array([pd.Timestamp(bounds[s][1]).value for s in chosen])  # type: ignore[index]
    stamps = lo + (rng.random(n) * (hi - lo) * 1.01).astype(np.int64) - (hi - lo) // 100
    return pd.DataFrame(
        {
            "event_id": np.arange(n, dtype=np.int64),
            "symbol": chosen,
            "ts": pd.to_datetime(stamps, utc=True),
            "label": rng.normal(size=n),
        }
    )


def _copy_out(url: str, query: str) -> pd.DataFrame:
    buffer = io.BytesIO()
    with psycopg.connect(url) as conn, conn.cursor() as cur:
        with cur.copy(f"copy ({query}) to stdout (format csv, header)") as copy:
            for chunk in copy:
                buffer.write(chunk)
    buffer.seek(0)
    frame = pd.read_csv(buffer)
    frame["ts"] = pd.to_datetime(frame["ts"], utc=True, format="ISO8601").astype(
        "datetime64[ns, UTC]"
    )
    return frame


def pandas_training_set(
    url: str, events: pd.DataFrame, families: list[str], lag: timedelta, out: Path
) -> float:
    """The round trip: every family's table out, merge_asof per family, the Parquet file."""
    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=2) as pool:
        tables = dict(
            zip(
                families,
                pool.map(
                    lambda f: _copy_out(url, f"select * from features.{f}"),
                    families,
                ),
                strict=True,
            )
        )
    left = events.assign(ts=events["ts"].astype("datetime64[ns, UTC]"))
    left = left.sort_values("ts", kind="stable").reset_index(drop=True)
    result = [left]
    for family in families:
        right = tables[family].rename(columns={"ts": f"{family}_ts"})
        right["_known"] = right[f"{family}_ts"] + lag
        right = right.sort_values("_known", kind="stable")
        merged = pd.merge_asof(
            left[["ts", "symbol"]], right, left_on="ts", right_on="_known", by="symbol",
            direction="backward", allow_exact_matches=True,
        )  # fmt: skip
        result.append(merged.drop(columns=["ts", "symbol", "_known"]))
    frame = pd.concat(result, axis=1).sort_values("event_id").reset_index(drop=True)
    frame.to_parquet(out, index=False)
    return time.perf_counter() - started


def engine_training_set(url: str, events_file: Path, features: list[str], out: Path) -> float:
    started = time.perf_counter()
    tf("training-set", str(events_file), "--features", *features, "--out", str(out), dsn=url)
    return time.perf_counter() - started


def same_frames(a: Path, b: Path, columns: list[str]) -> bool:
    left, right = pd.read_parquet(a), pd.read_parquet(b)
    for column in columns:
        x = pd.to_numeric(left[column].astype("object")).astype("float64").to_numpy()
        y = pd.to_numeric(right[column].astype("object")).astype("float64").to_numpy()
        if not np.allclose(x, y, rtol=1e-12, atol=0, equal_nan=True):
            return False
    return True


def training_sets(
    url: str, cache: Path, families: list[str], lag: timedelta, table: str, name: str
) -> dict[str, float]:
    with psycopg.connect(url) as conn:
        symbols = [
            r[0] for r in conn.execute(f"select distinct symbol from features.{families[0]}")
        ]
        features = [
            r[0]
            for r in conn.execute(
                "select name from features.feature_catalog where model = any(%s)", (families,)
            )
        ]
    events = random_events(url, symbols, EVENTS, 7, table)
    events_file = cache / f"{name}_events.parquet"
    events.to_parquet(events_file, index=False)
    settle(url)
    engine_s = engine_training_set(
        url, events_file, [f"{f}.*" for f in families], cache / f"{name}_engine.parquet"
    )
    settle(url)
    pandas_s = pandas_training_set(url, events, families, lag, cache / f"{name}_pandas.parquet")
    agree = same_frames(
        cache / f"{name}_engine.parquet", cache / f"{name}_pandas.parquet", features[:40]
    )
    log(
        f"{name}: {EVENTS:,} events x {len(features)} features: engine {engine_s:.1f} s,"
        f" pandas merge_asof round trip {pandas_s:.1f} s (ratio {engine_s / pandas_s:.2f});"
        f" same values: {agree}"
    )
    return {
        "events": EVENTS,
        "features": len(features),
        "engine_cli_s": round(engine_s, 2),
        "pandas_merge_asof_s": round(pandas_s, 2),
        "ratio_engine_to_pandas": round(engine_s / pandas_s, 3),
        "same_values": agree,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows-per-symbol", type=int, default=500_000)
    parser.add_argument("--out", default=str(ROOT / ".tickfeatures" / "bench" / "serving.json"))
    parser.add_argument("--reuse", action="store_true", help="reuse the database if built")
    args = parser.parse_args()

    base = os.environ.get(config.DSN_ENV) or config.embedded_url(database="postgres")
    cache = ROOT / ".tickfeatures" / "bench"
    cache.mkdir(parents=True, exist_ok=True)
    name = "tickfeatures_bench_serving"
    url = make_conninfo(base, dbname=name)
    built = False
    if args.reuse:
        try:
            with psycopg.connect(url) as conn:
                built = bool(conn.execute("select to_regproc('features.latest_l2')").fetchone()[0])  # type: ignore[index]
        except psycopg.OperationalError:
            built = False
    figures: dict[str, object] = {
        "machine": {"cores": os.cpu_count(), "platform": platform.platform()}
    }
    if not built:
        path = snapshots_csv(args.rows_per_symbol, cache)
        url = fresh_database(base, name)
        log(f"database {redact(url)}")
        tf("migrate", dsn=url)
        tf("load", "l2", str(path), dsn=url)
        started = time.perf_counter()
        log("building every family (tickfeatures refresh) ...")
        tf("refresh", dsn=url)
        figures["build_s"] = round(time.perf_counter() - started, 1)
        log(f"built in {figures['build_s']} s")
    else:
        tf("migrate", dsn=url)
        tf("refresh", dsn=url)  # the project may have changed since it was built
    settle(url)

    idle = latency(url, "latest_l2", SYMBOLS[0])
    log(f"latest_l2 idle: {idle}")
    tf("schedule", "install", dsn=url)  # the procedures of `call features.refresh()`
    files = [str(p) for p in next_snapshots(url, cache, 40)]
    context = multiprocessing.get_context("spawn")
    with context.Manager() as manager:
        stop, running, refreshes = context.Event(), context.Event(), manager.list()
        worker = context.Process(
            target=feed_and_refresh, args=(url, files, stop, running, refreshes)
        )
        worker.start()
        try:
            while not refreshes:  # the first cycle has run: the loop is going
                time.sleep(0.2)
            # 1,000 calls 30 ms apart: about 30 s, many load-and-refresh cycles
            busy = latency(url, "latest_l2", SYMBOLS[0], pace_s=0.03, busy=running)
        finally:
            stop.set()
            worker.join()
        cycles = list(refreshes)
    log(f"latest_l2 during refreshes ({len(cycles)} load-and-refresh cycles): {busy}")
    figures["latest_l2"] = {
        "idle": idle,
        "during_refreshes": busy,
        "refresh_cycles": len(cycles),
        "refresh_cycle_s": [round(s, 2) for s in cycles],
    }
    settle(url)
    figures["training_set_l2"] = training_sets(
        url, cache, L2_FAMILIES, timedelta(0), "market.l2_snapshots", "l2"
    )

    bars_url = make_conninfo(base, dbname="tickfeatures_bench_bars")
    try:
        with psycopg.connect(bars_url) as conn:
            ready = conn.execute("select to_regclass('features.time_features')").fetchone()[0]  # type: ignore[index]
    except psycopg.OperationalError:
        ready = None
    if ready:
        tf("migrate", dsn=bars_url)
        # bench_bars.py builds the families; the marts and the latest vector over them here
        tf("refresh", "--select", "+latest_bars_all", "feature_catalog", dsn=bars_url)
        with psycopg.connect(bars_url) as conn:
            bar_families = [
                r[0]
                for r in conn.execute(
                    "select distinct model from features.feature_catalog"
                    " where available_after = interval '1 minute'"
                )
            ]
        figures["latest_bars_idle"] = latency(bars_url, "latest_bars", "EURUSD")
        log(f"latest_bars idle: {figures['latest_bars_idle']}")
        figures["training_set_bars"] = training_sets(
            bars_url, cache, sorted(bar_families), timedelta(minutes=1), "market.bars_1m", "bars"
        )
    else:
        log("no bar benchmark database (run bench/bench_bars.py first): bar figures skipped")

    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(figures, indent=2, default=str))
    log(f"figures in {out}")
    print(json.dumps(figures, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
