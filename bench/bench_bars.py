"""Benchmark: the bar families (FEATURE_DEFINITIONS K1-K13) built in the database against the
round trip a user would otherwise write.

On 28 FX pairs x about 31,000 one-minute bars (a month: 887,040 bars), in one run on one
machine:
  * in-database: `dbt run --select path:models/bar --full-refresh --threads 2` (dbt's
    overhead included), after the staged and coarser bars it reads were built (untimed);
  * round trip: COPY the staged bars (and the 30/60-minute bars) out, compute every family's
    columns vectorised in two worker processes (one per core, as dbt's two threads use both):
    TA-Lib 0.8.2 for the TA-Lib families (the oracle of tests/oracle/bar_technical.py) and
    the engine's own numpy kernels (python_udfs/) for the rest, which no library computes;
    then binary COPY the results back (the loader's numpy encoder, no Python loop per row),
    two families at a time on two connections;
  * incremental: load one new minute of bars for all 28 symbols, then `tickfeatures refresh`
    of the bar models (dbt included), three minutes in turn;
  * the size of each family's table and what it extrapolates to for a year of 28 pairs.
Prints the figures and writes them to a JSON file.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import sys
import time
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import psycopg
from psycopg import sql

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "python_udfs"))

import tf_bars  # noqa: E402
from benchlib import fresh_database, log, settle, tf  # noqa: E402

from tickfeatures import config, generate, pgcopy  # noqa: E402
from tickfeatures.db import redact  # noqa: E402
from tickfeatures.schema import BAR_COLUMNS  # noqa: E402

PAIRS = 28
START = datetime.fromisoformat("2026-01-05T00:00:00+00:00")
REFRESH_RUNS = 3
# a year of one-minute FX bars per symbol: 5 trading days x 52 weeks x 1440 minutes
BARS_PER_SYMBOL_YEAR = 5 * 52 * 1440
TALIB_MODELS = ("technical_rate", "technical_bqx")
BAR_INPUTS = ["open", "high", "low", "close", "volume", "spread", "ticks"]


def bar_models() -> list[str]:
    return sorted(p.stem for p in (ROOT / "models" / "bar").glob("*.sql"))


# -- the round trip --------------------------------------------------------------------------


def copy_out(conn: psycopg.Connection, query: str) -> pd.DataFrame:
    """A query's rows through COPY ... CSV and pandas' C parser (the fastest way into pandas)."""
    buffer = io.BytesIO()
    with conn.cursor() as cur, cur.copy(f"copy ({query}) to stdout (format csv, header)") as copy:
        for chunk in copy:
            buffer.write(chunk)
    buffer.seek(0)
    return pd.read_csv(buffer, parse_dates=["ts"])


def _inputs(frame: pd.DataFrame) -> dict[str, np.ndarray]:
    utc = frame["ts"].dt.tz_localize(None).to_numpy()
    minute = utc.astype("datetime64[m]").astype(np.int64).astype(np.float64)
    return {"minute": minute, **{c: frame[c].to_numpy(np.float64) for c in BAR_INPUTS}}


def _compute_symbol(
    job: tuple[str, pd.DataFrame, dict[str, pd.DataFrame]],
) -> dict[str, np.ndarray]:
    """Every family's columns for one symbol: (n, k) float64 matrices, NaN = NULL."""
    _symbol, bars, scales = job
    first_close = float(bars["close"].iloc[0])
    inputs = _inputs(bars)
    for scale, frame in scales.items():
        scale_inputs = _inputs(frame)
        scale_inputs["bars"] = frame["bars"].to_numpy(np.float64)
        inputs.update({f"{scale}_{k}": v for k, v in scale_inputs.items()})
    out = {}
    for model in bar_models():
        columns = tf_bars.columns(model)
        if model in TALIB_MODELS:
            from tests.oracle import bar_technical

            result = bar_technical.ORACLES[model](bars, first_close)
            matrix = result[columns].to_numpy(np.float64)
        else:
            result = tf_bars.compute(model, inputs, {"first_close": first_close})
            matrix = np.column_stack([np.asarray(result[c], np.float64) for c in columns])
        matrix[~np.isfinite(matrix)] = np.nan
        out[model] = matrix
    return out


def copy_in(
    url: str,
    model: str,
    matrix: np.ndarray,
    codes: np.ndarray,
    symbol_bytes: list[bytes],
    ts_us: np.ndarray,
) -> None:
    """One family's rows into pandas_bars.<model> by binary COPY (the loader's numpy
    encoder), then the same unique index the family's table has."""
    columns = tf_bars.columns(model)
    table = sql.Identifier("pandas_bars", model)
    with psycopg.connect(url) as conn:
        conn.execute(
            sql.SQL("create table {} (symbol text, ts timestamptz, {})").format(
                table,
                sql.SQL(", ").join(
                    sql.SQL("{} double precision").format(sql.Identifier(c)) for c in columns
                ),
            )
        )
        with (
            conn.cursor() as cur,
            cur.copy(sql.SQL("copy {} from stdin (format binary)").format(table)) as copy,
        ):
            copy.write(pgcopy.HEADER)
            for start in range(0, len(matrix), 100_000):
                rows = np.arange(start, min(start + 100_000, len(matrix)))
                for block in pgcopy.encode_rows(
                    codes, symbol_bytes, ts_us, matrix, np.isnan(matrix), rows=rows
                ):
                    copy.write(block)
            copy.write(pgcopy.TRAILER)
        conn.execute(sql.SQL("create unique index on {} (symbol, ts)").format(table))


def round_trip(url: str, workers: int) -> dict[str, float]:
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    with psycopg.connect(url) as conn:
        bars = copy_out(
            conn, f"select symbol, ts, {', '.join(BAR_INPUTS)} from staging.stg_bars_1m"
        )
        scales = {
            scale: copy_out(
                conn, f"select symbol, ts, {', '.join(BAR_INPUTS)}, bars from features.{table}"
            )
            for scale, table in (("m30", "bars_30m"), ("m60", "bars_60m"))
        }
    timings["copy_out_s"] = time.perf_counter() - t0

    t1 = time.perf_counter()
    bars = bars.sort_values(["symbol", "ts"], ignore_index=True)
    symbols = list(bars["symbol"].unique())
    jobs = []
    for symbol in symbols:
        one = bars[bars["symbol"] == symbol].reset_index(drop=True)
        by_scale = {
            s: f[f["symbol"] == symbol].sort_values("ts", ignore_index=True)
            for s, f in scales.items()
        }
        jobs.append((symbol, one, by_scale))
    with ProcessPoolExecutor(max_workers=workers) as pool:
        results = list(pool.map(_compute_symbol, jobs))
    timings["compute_s"] = time.perf_counter() - t1

    t2 = time.perf_counter()
    symbol_bytes = [s.encode() for s in symbols]
    codes = np.repeat(np.arange(len(symbols)), [len(j[1]) for j in jobs])
    ts_us = bars["ts"].dt.tz_localize(None).to_numpy().astype("datetime64[us]").astype(np.int64)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("drop schema if exists pandas_bars cascade")
        conn.execute("create schema pandas_bars")
    matrices = {model: np.concatenate([r[model] for r in results]) for model in bar_models()}
    # one connection per core, the widest families first: the server parses each COPY on
    # one core, as each dbt thread's model runs on one
    order = sorted(matrices, key=lambda m: -matrices[m].shape[1])
    with ThreadPoolExecutor(max_workers=workers) as pool:
        list(
            pool.map(
                lambda model: copy_in(url, model, matrices[model], codes, symbol_bytes, ts_us),
                order,
            )
        )
    timings["copy_in_s"] = time.perf_counter() - t2
    timings["total_s"] = time.perf_counter() - t0
    return timings


# -- main ------------------------------------------------------------------------------------


def bars_csv(cache: Path, days: int) -> Path:
    path = cache / f"bars_{PAIRS}x{days}d.csv"
    if not path.exists():
        specs = generate.fx_pairs(PAIRS, generate.load_symbols(ROOT / "seeds" / "symbols.csv"))
        log(f"generating {PAIRS} pairs x {days} days of one-minute bars into {path}")
        generate.write_csv(
            generate.generate_bars(specs, START, START + timedelta(days=days), seed=2026),
            BAR_COLUMNS,
            path,
        )
    return path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--days", type=int, default=30, help="calendar days of bars (30: 31,680 per pair)"
    )
    parser.add_argument("--threads", type=int, default=2, help="dbt threads and round-trip workers")
    parser.add_argument("--out", default=str(ROOT / ".tickfeatures" / "bench" / "bars.json"))
    args = parser.parse_args()

    base = os.environ.get(config.DSN_ENV) or config.embedded_url(database="postgres")
    cache = ROOT / ".tickfeatures" / "bench"
    cache.mkdir(parents=True, exist_ok=True)
    path = bars_csv(cache, args.days)
    url = fresh_database(base, "tickfeatures_bench_bars")
    log(f"database {redact(url)}")
    tf("migrate", dsn=url)
    started = time.perf_counter()
    tf("load", "bars", str(path), dsn=url)
    load_s = time.perf_counter() - started
    tf("dbt", "seed", dsn=url)
    started = time.perf_counter()
    tf("dbt", "run", "--select", "+bars_30m", "+bars_60m", dsn=url)
    coarse_s = time.perf_counter() - started
    settle(url)
    with psycopg.connect(url, autocommit=True) as conn:
        n_bars, n_symbols, last = conn.execute(
            "select count(*), count(distinct symbol), max(ts) from market.bars_1m"
        ).fetchone()  # type: ignore[misc]
    log(f"{n_bars:,} bars of {n_symbols} symbols loaded in {load_s:.1f} s")

    models = bar_models()
    log(f"in-database build of the {len(models)} bar families (dbt run --full-refresh) ...")
    started = time.perf_counter()
    tf(
        "dbt",
        "run",
        "--select",
        "path:models/bar",
        "--full-refresh",
        "--threads",
        str(args.threads),
        dsn=url,
    )
    in_db_s = time.perf_counter() - started
    with psycopg.connect(url) as conn:
        per_model = {
            model: round(ms / 1000, 2)
            for model, ms in conn.execute(
                "select model, duration_ms from ops.refresh_runs"
                " where mode = 'full' and model = any(%s)",
                [models],
            )
        }
        sizes = {
            model: conn.execute(
                sql.SQL("select pg_total_relation_size({})").format(
                    sql.Literal(f"features.{model}")
                )
            ).fetchone()[0]  # type: ignore[index]
            for model in models
        }
        columns = {
            model: conn.execute(
                "select count(*) - 2 from information_schema.columns"
                " where table_schema = 'features' and table_name = %s",
                [model],
            ).fetchone()[0]  # type: ignore[index]
            for model in models
        }
    log(f"in-database: {in_db_s:.1f} s wall")
    settle(url)

    log("round trip (COPY out, compute vectorised, binary COPY back) ...")
    pandas = round_trip(url, args.threads)
    log(f"round trip: {pandas['total_s']:.1f} s")
    settle(url)

    log(
        f"incremental refresh of one new minute for {n_symbols} symbols,"
        f" {REFRESH_RUNS} minutes in turn ..."
    )
    specs = generate.fx_pairs(PAIRS, generate.load_symbols(ROOT / "seeds" / "symbols.csv"))
    refresh_s = []
    for i in range(REFRESH_RUNS):
        minute = cache / f"next_bar_minute_{i}.csv"
        begin = last + timedelta(minutes=1 + i)
        generate.write_csv(
            generate.generate_bars(specs, begin, begin + timedelta(minutes=1), seed=77 + i),
            BAR_COLUMNS,
            minute,
        )
        tf("load", "bars", str(minute), dsn=url)
        started = time.perf_counter()
        tf("refresh", "--select", "path:models/bars", "path:models/bar", dsn=url)
        refresh_s.append(time.perf_counter() - started)
        log(f"incremental refresh {i + 1}: {refresh_s[-1]:.1f} s wall")

    total_size = sum(sizes.values())
    year_factor = BARS_PER_SYMBOL_YEAR * PAIRS / n_bars
    figures = {
        "machine": {"cores": os.cpu_count(), "platform": platform.platform()},
        "bars": n_bars,
        "symbols": n_symbols,
        "families": len(models),
        "feature_columns": sum(columns.values()),
        "in_database_full_build_s": round(in_db_s, 2),
        "in_database_per_model_sql_s": dict(sorted(per_model.items())),
        "round_trip_s": {k: round(v, 2) for k, v in pandas.items()},
        "ratio_in_database_to_round_trip": round(in_db_s / pandas["total_s"], 3),
        "incremental_refresh_one_minute_s": [round(s, 2) for s in refresh_s],
        "incremental_refresh_one_minute_max_s": round(max(refresh_s), 2),
        "size_bytes": dict(sorted(sizes.items())),
        "size_total_gb": round(total_size / 1e9, 3),
        "size_year_28_pairs_gb": round(total_size * year_factor / 1e9, 1),
        "load_s": round(load_s, 2),
        "staged_and_coarser_bars_s": round(coarse_s, 2),
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(figures, indent=2) + "\n")
    print(json.dumps(figures, indent=2))
    log(f"figures written to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
