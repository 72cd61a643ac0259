"""Benchmark: the L2 families built in the database against the pandas round trip.

On 1,000,000 snapshots (2 symbols x 500,000, 10 levels), in one run on one machine:
  * in-database: `dbt run --select path:models/l2 --full-refresh` (dbt's overhead included);
  * pandas: COPY the snapshots out, compute the same eight families with the pandas
    reference implementations in tests/oracle/, COPY the results back in binary;
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

import numpy as np
import pandas as pd
import psycopg
from psycopg import sql

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchlib import fresh_database, log, settle, tf  # noqa: E402

from tests.oracle.registry import L2_FAMILIES, ORACLES  # noqa: E402
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


def pandas_round_trip(url: str) -> dict[str, float]:
    """COPY out, compute the eight families with the pandas references, COPY back (binary)."""
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    with psycopg.connect(url) as conn, conn.cursor() as cur:
        with cur.copy(
            # a hypertable's rows live in its chunks: COPY a query, not the table
            sql.SQL("copy (select {} from market.l2_snapshots) to stdout (format binary)").format(
                sql.SQL(", ").join(map(sql.Identifier, L2_COLUMNS))
            )
        ) as copy:
            copy.set_types(["text", "timestamptz", *["float8"] * (len(L2_COLUMNS) - 2)])
            rows = list(copy.rows())
    if not rows:
        raise SystemExit("COPY out returned no rows")
    frame = pd.DataFrame(rows, columns=list(L2_COLUMNS))
    frame = frame.astype({c: "float64" for c in L2_COLUMNS[2:]})
    timings["copy_out_s"] = time.perf_counter() - t0

    results = {}
    t1 = time.perf_counter()
    for family in L2_FAMILIES:
        started = time.perf_counter()
        results[family] = ORACLES[family](frame)
        timings[f"compute_{family}_s"] = time.perf_counter() - started
    timings["compute_s"] = time.perf_counter() - t1

    t2 = time.perf_counter()
    with psycopg.connect(url) as conn:
        conn.execute("create schema if not exists pandas_features")
        for family, out in results.items():
            table = sql.Identifier("pandas_features", family)
            columns = list(out.columns)
            types = [
                "text",
                "timestamptz",
                *["boolean" if c == "is_crossed" else "double precision" for c in columns[2:]],
            ]
            conn.execute(sql.SQL("drop table if exists {}").format(table))
            conn.execute(
                sql.SQL("create table {} ({})").format(
                    table,
                    sql.SQL(", ").join(
                        sql.SQL("{} {}").format(sql.Identifier(c), sql.SQL(t))
                        for c, t in zip(columns, types, strict=True)
                    ),
                )
            )
            values = [out[c].to_numpy(dtype=object) for c in columns]
            for c in range(2, len(columns)):
                col = values[c]
                values[c] = np.where(pd.isna(col), None, col)
            values[1] = [t.to_pydatetime() for t in out["ts"]]
            with (
                conn.cursor() as cur,
                cur.copy(sql.SQL("copy {} from stdin (format binary)").format(table)) as copy,
            ):
                copy.set_types(
                    [
                        "text",
                        "timestamptz",
                        *["bool" if c == "is_crossed" else "float8" for c in columns[2:]],
                    ]
                )
                for row in zip(*values, strict=True):
                    copy.write_row(row)
            copied = conn.execute(sql.SQL("select count(*) from {}").format(table)).fetchone()
            if copied is None or copied[0] != len(out):
                raise SystemExit(f"COPY back of {family} wrote {copied} rows, not {len(out)}")
        conn.commit()
    timings["copy_in_s"] = time.perf_counter() - t2
    timings["total_s"] = time.perf_counter() - t0
    return timings


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

    log("pandas round trip (COPY out, compute, COPY back in binary) ...")
    pandas = pandas_round_trip(url)
    log(f"pandas: {pandas['total_s']:.1f} s")

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
