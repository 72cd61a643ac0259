"""Benchmark: the L2 families built in the database against the pandas round trip.

On 1,000,000 snapshots (2 symbols x 500,000, 10 levels), in one run on one machine:
  * in-database: `dbt run --select path:models/l2 --full-refresh` (dbt's overhead included);
  * pandas: the careful round trip of bench/l2_baseline.py: binary COPY out per symbol on
    two connections, the same eight families computed vectorised (the oracles of
    tests/oracle/, two rewritten loops) two at a time, binary COPY back from two
    connections;
  * incremental: load one new minute of snapshots per symbol, then `tickfeatures refresh`.
Prints the figures and writes them to a JSON file.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from datetime import timedelta
from pathlib import Path

import pandas as pd
import psycopg

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from benchlib import fresh_database, log, settle, tf  # noqa: E402
from l2_baseline import careful_round_trip  # noqa: E402

from tickfeatures import config, generate  # noqa: E402
from tickfeatures.db import redact  # noqa: E402
from tickfeatures.schema import L2_COLUMNS  # noqa: E402

SYMBOLS = ["EURUSD", "GBPUSD"]
REFRESH_RUNS = 3  # one new minute each, timed separately: the figure is their maximum


def snapshots_csv(rows_per_symbol: int, cache: Path) -> Path:
    """Generated snapshots, exactly rows_per_symbol per symbol, cached as CSV.gz."""
    path = cache / f"l2_{len(SYMBOLS)}x{rows_per_symbol}.csv.gz"
    specs = generate.load_symbols(ROOT / "seeds" / "symbols.csv")
    start = pd.Timestamp("2026-03-02 00:00", tz="UTC")
    if not path.exists():
        log(f"generating {len(SYMBOLS)} x {rows_per_symbol:,} snapshots into {path}")
        hours = rows_per_symbol * 0.1 * 1.3 / 3600 + 1
        counts = dict.fromkeys(SYMBOLS, 0)
        last: dict[str, tuple] = {}

        def take() -> object:
            for row in generate.generate_l2(
                [specs[s] for s in SYMBOLS],
                start.to_pydatetime(),
                timedelta(hours=hours),
                seed=2026,
            ):
                if counts[row[0]] < rows_per_symbol and (row[0], row[1]) != last.get(row[0]):
                    counts[row[0]] += 1
                    last[row[0]] = (row[0], row[1])
                    yield row

        cache.mkdir(parents=True, exist_ok=True)
        generate.write_csv(take(), L2_COLUMNS, path)
        assert all(n == rows_per_symbol for n in counts.values()), counts
    return path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows-per-symbol", type=int, default=500_000)
    parser.add_argument("--out", default=str(ROOT / ".tickfeatures" / "bench" / "l2.json"))
    parser.add_argument("--threads", type=int, default=2, help="dbt threads")
    args = parser.parse_args()

    base = os.environ.get(config.DSN_ENV) or config.embedded_url(database="postgres")
    cache = ROOT / ".tickfeatures" / "bench"
    path = snapshots_csv(args.rows_per_symbol, cache)
    url = fresh_database(base, "tickfeatures_bench")
    log(f"database {redact(url)}")
    tf("migrate", dsn=url)
    started = time.perf_counter()
    tf("load", "l2", str(path), dsn=url)
    load_s = time.perf_counter() - started
    tf("dbt", "seed", dsn=url)
    settle(url)
    with psycopg.connect(url, autocommit=True) as conn:
        n_rows = conn.execute("select count(*) from market.l2_snapshots").fetchone()[0]  # type: ignore[index]
        last = conn.execute("select max(ts) from market.l2_snapshots").fetchone()[0]  # type: ignore[index]
    log(f"{n_rows:,} snapshots loaded in {load_s:.1f} s")

    log("in-database build of the eight L2 families (dbt run --full-refresh) ...")
    started = time.perf_counter()
    tf(
        "dbt",
        "run",
        "--select",
        "path:models/l2",
        "--full-refresh",
        "--threads",
        str(args.threads),
        dsn=url,
    )
    sql_s = time.perf_counter() - started
    per_model = {}
    with psycopg.connect(url) as conn:
        for model, ms in conn.execute(
            "select model, duration_ms from ops.refresh_runs where mode = 'full'"
        ):
            per_model[model] = ms / 1000
    log(f"in-database: {sql_s:.1f} s wall")
    # untimed: autovacuum would otherwise process the new tables while the next step runs
    settle(url)

    log("careful pandas round trip (bench/l2_baseline.py: COPY out, compute, COPY back) ...")
    pandas = careful_round_trip(url)
    log(f"pandas: {pandas['total_s']:.1f} s")
    settle(url)

    # targets are not one of the eight families: built (untimed) so that the refresh
    # below measures the steady state, one new minute for every model
    tf("dbt", "run", "--select", "path:models/targets", dsn=url)
    settle(url)
    log(f"incremental refresh of one new minute per symbol, {REFRESH_RUNS} minutes in turn ...")
    specs = generate.load_symbols(ROOT / "seeds" / "symbols.csv")
    refresh_s = []
    for i in range(REFRESH_RUNS):
        minute = cache / f"next_minute_{i}.csv"
        generate.write_csv(
            generate.generate_l2(
                [specs[s] for s in SYMBOLS],
                last + timedelta(minutes=i, milliseconds=1),
                timedelta(minutes=1),
                seed=77 + i,
            ),
            L2_COLUMNS,
            minute,
        )
        tf("load", "l2", str(minute), dsn=url)
        started = time.perf_counter()
        refresh = tf("refresh", "--select", "path:models/l2", "path:models/targets", dsn=url)
        refresh_s.append(time.perf_counter() - started)
        log(f"incremental refresh {i + 1}: {refresh_s[-1]:.1f} s wall")

    figures = {
        "machine": {"cores": os.cpu_count(), "platform": platform.platform()},
        "snapshots": n_rows,
        "symbols": SYMBOLS,
        "in_database_full_build_s": round(sql_s, 2),
        "in_database_per_model_sql_s": {k: round(v, 2) for k, v in sorted(per_model.items())},
        "pandas_round_trip_s": {k: round(v, 2) for k, v in pandas.items()},
        "ratio_in_database_to_pandas": round(sql_s / pandas["total_s"], 3),
        "incremental_refresh_one_minute_s": [round(s, 2) for s in refresh_s],
        "incremental_refresh_one_minute_max_s": round(max(refresh_s), 2),
        "incremental_refresh_models": "8 L2 families + l2_targets, `tickfeatures refresh`",
        "load_s": round(load_s, 2),
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(figures, indent=2) + "\n")
    print(json.dumps(figures, indent=2))
    print(refresh.stdout.strip())
    log(f"figures written to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
