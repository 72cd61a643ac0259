"""Benchmark: `tickfeatures load` against a plain `executemany` loader, same file, same run.

Input: files of 1,000,000 generated snapshots of 10 levels each:
  * the file bench_l2.py uses: 2 symbols x 500,000, prices on their tick grid (short decimal
    strings), NULL deep levels, crossed and locked books included;
  * a realistic feed's: 20 FX pairs x 50,000, every price at full float64 precision (a mid
    converted from another quote currency, or a vendor's floating-point output: 16-17
    significant digits to parse), the same books otherwise;
  * the first file's books as Databento ships them (vendor_files.py): MBP-10 CSV.gz as
    Databento's transcoder writes it (integer prices in 1e-9, nanosecond stamps, 60 fields a
    row) and DBN.zst, loaded by detection; their prices must sum to the wide file's.
  * tickfeatures: `tickfeatures load l2 FILE` as a user runs it (process start-up, checksum,
    validation, ledger and commit included), into an empty database, RUNS times;
  * baseline: what a loader is usually written as: csv.reader over gzip, each field
    converted in Python, `cursor.executemany(INSERT ...)` in batches of 10,000 rows, one
    transaction (psycopg 3 sends executemany in pipeline mode), once.
Between timed steps: VACUUM ANALYZE and CHECKPOINT, untimed. Prints the figures and writes
them to .tickfeatures/bench/load.json.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import json
import os
import platform
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import psycopg
from psycopg import sql

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from bench_l2 import fresh_database, log, settle, snapshots_csv, tf  # noqa: E402
from vendor_files import databento_files  # noqa: E402

from tickfeatures import config, generate  # noqa: E402
from tickfeatures.schema import L2_COLUMNS  # noqa: E402

RUNS = int(os.environ.get("BENCH_LOAD_RUNS", 3))
BATCH = 10_000


def baseline(url: str, path: Path) -> int:
    insert = sql.SQL("insert into market.l2_snapshots ({}) values ({})").format(
        sql.SQL(", ").join(sql.Identifier(c) for c in L2_COLUMNS),
        sql.SQL(", ").join(sql.Placeholder() * len(L2_COLUMNS)),
    )
    rows = 0
    with psycopg.connect(url) as conn, conn.cursor() as cur, gzip.open(path, "rt") as fh:
        # A plain loader into a plain table: the invalidation trigger (migration 0014), which
        # `tickfeatures load` skips too (it logs one entry per file and symbol), would add
        # about 40 us to each of these single-row statements and flatter the comparison.
        cur.execute("select set_config('tickfeatures.logged_by', 'loader', false)")
        reader = csv.reader(fh)
        next(reader)
        batch: list[list[object]] = []
        for record in reader:
            batch.append([record[0], record[1], *(float(v) if v else None for v in record[2:])])
            if len(batch) == BATCH:
                cur.executemany(insert, batch)
                rows += len(batch)
                batch = []
        if batch:
            cur.executemany(insert, batch)
            rows += len(batch)
        conn.commit()
    return rows


def count(url: str) -> int:
    with psycopg.connect(url) as conn:
        return conn.execute("select count(*) from market.l2_snapshots").fetchone()[0]  # type: ignore[index]


PRICE_COLUMNS = [i for i, c in enumerate(L2_COLUMNS) if "_price_" in c]


def full_precision_csv(symbols: int, rows_per_symbol: int, cache: Path) -> Path:
    """Generated snapshots of `symbols` FX pairs, exactly rows_per_symbol each, every price
    multiplied by (1 + u * 1e-9) with u uniform in [-1, 1): the same books at full float64
    precision, cached as CSV.gz."""
    path = cache / f"l2_{symbols}x{rows_per_symbol}_full_precision.csv.gz"
    if path.exists():
        return path
    specs = generate.fx_pairs(symbols, generate.load_symbols(ROOT / "seeds" / "symbols.csv"))
    hours = rows_per_symbol * 0.1 * 1.3 / 3600 + 1
    rng = np.random.default_rng(2027)
    counts = dict.fromkeys((s.symbol for s in specs), 0)
    last: dict[str, object] = {}
    log(f"generating {symbols} x {rows_per_symbol:,} full-precision snapshots into {path}")

    def take() -> object:
        for row in generate.generate_l2(
            specs, datetime(2026, 3, 2, tzinfo=UTC), timedelta(hours=hours), seed=2027
        ):
            if counts[row[0]] < rows_per_symbol and row[1] != last.get(row[0]):
                counts[row[0]] += 1
                last[row[0]] = row[1]
                jitter = 1 + rng.uniform(-1, 1, len(PRICE_COLUMNS)) * 1e-9
                out = list(row)
                for k, i in enumerate(PRICE_COLUMNS):
                    if out[i] is not None:
                        out[i] = float(out[i] * jitter[k])
                yield tuple(out)

    cache.mkdir(parents=True, exist_ok=True)
    generate.write_csv(take(), L2_COLUMNS, path)
    assert all(n == rows_per_symbol for n in counts.values()), counts
    return path


def fingerprint(url: str) -> tuple:
    """Exact sums of every price and of every size column, and the number of NULL prices."""
    prices = [c for c in L2_COLUMNS if "_price_" in c]
    sizes = [c for c in L2_COLUMNS if "_size_" in c]
    query = sql.SQL("select {}, {}, {} from market.l2_snapshots").format(
        sql.SQL(" + ").join(
            sql.SQL("coalesce(sum({}::numeric), 0)").format(sql.Identifier(c)) for c in prices
        ),
        sql.SQL(" + ").join(
            sql.SQL("coalesce(sum({}::numeric), 0)").format(sql.Identifier(c)) for c in sizes
        ),
        sql.SQL(" + ").join(
            sql.SQL("count(*) - count({})").format(sql.Identifier(c)) for c in prices
        ),
    )
    with psycopg.connect(url) as conn:
        return conn.execute(query).fetchone()  # type: ignore[return-value]


def load_runs(base: str, path: Path, rows: int, prints: list | None = None) -> list[float]:
    """`tickfeatures load l2 FILE` into an empty database, RUNS times: seconds each (and the
    last run's fingerprint appended to `prints`)."""
    runs: list[float] = []
    for i in range(RUNS):
        url = fresh_database(base, "tickfeatures_bench_load")
        tf("migrate", dsn=url)
        settle(url)
        started = time.perf_counter()
        out = tf("load", "l2", str(path), "--no-progress", dsn=url)
        runs.append(time.perf_counter() - started)
        assert count(url) == rows, out.stdout
        log(f"{path.name}, run {i + 1}: {runs[-1]:.2f} s, {rows / runs[-1]:,.0f} rows/s")
    if prints is not None:
        prints.append(fingerprint(url))
    return runs


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows-per-symbol", type=int, default=500_000)
    parser.add_argument("--out", default=str(ROOT / ".tickfeatures" / "bench" / "load.json"))
    args = parser.parse_args()

    base = os.environ.get(config.DSN_ENV) or config.embedded_url(database="postgres")
    path = snapshots_csv(args.rows_per_symbol, ROOT / ".tickfeatures" / "bench")
    rows = 2 * args.rows_per_symbol

    prints: list[tuple] = []
    runs = load_runs(base, path, rows, prints)
    precise = full_precision_csv(20, rows // 20, ROOT / ".tickfeatures" / "bench")
    precise_runs = load_runs(base, precise, rows)
    vendor = databento_files(path, ROOT / ".tickfeatures" / "bench", log)
    vendor_runs = [load_runs(base, v, rows, prints) for v in vendor]
    wide_prices, wide_sizes, wide_nulls = prints[0]
    for v, (prices, sizes, nulls) in zip(vendor, prints[1:], strict=True):
        # the same books: prices equal, sizes in hundredths, the same empty levels
        assert (prices, sizes, nulls) == (wide_prices, wide_sizes * 100, wide_nulls), v.name

    url = fresh_database(base, "tickfeatures_bench_load")
    tf("migrate", dsn=url)
    settle(url)
    started = time.perf_counter()
    loaded = baseline(url, path)
    base_s = time.perf_counter() - started
    assert loaded == rows == count(url)
    log(f"executemany baseline: {base_s:.2f} s, {rows / base_s:,.0f} rows/s")

    median = statistics.median(runs)
    figures = {
        "rows": rows,
        "file": path.name,
        "file_mb": round(path.stat().st_size / 1e6, 1),
        "tickfeatures_load_s": [round(r, 3) for r in runs],
        "tickfeatures_rows_per_s_median": round(rows / median),
        "tickfeatures_rows_per_s_slowest": round(rows / max(runs)),
        "full_precision_file": precise.name,
        "full_precision_file_mb": round(precise.stat().st_size / 1e6, 1),
        "full_precision_load_s": [round(r, 3) for r in precise_runs],
        "full_precision_rows_per_s_median": round(rows / statistics.median(precise_runs)),
        "full_precision_rows_per_s_slowest": round(rows / max(precise_runs)),
        **{
            f"databento_{kind}_{key}": value
            for kind, v, r in zip(("csv", "dbn"), vendor, vendor_runs, strict=True)
            for key, value in (
                ("file", v.name),
                ("file_mb", round(v.stat().st_size / 1e6, 1)),
                ("load_s", [round(x, 3) for x in r]),
                ("rows_per_s_median", round(rows / statistics.median(r))),
            )
        },
        "executemany_s": round(base_s, 3),
        "executemany_rows_per_s": round(rows / base_s),
        "ratio_time_tickfeatures_over_executemany": round(median / base_s, 4),
        "speedup": round(base_s / median, 1),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
    }
    Path(args.out).write_text(json.dumps(figures, indent=2) + "\n")
    print(
        f"load of {rows:,} snapshots from {path.name} ({figures['file_mb']} MB):\n"
        f"  tickfeatures load  {median:6.2f} s  {rows / median:>9,.0f} rows/s (median of {RUNS};"
        f" slowest {rows / max(runs):,.0f} rows/s)\n"
        f"  executemany        {base_s:6.2f} s  {rows / base_s:>9,.0f} rows/s\n"
        f"  time ratio {median / base_s:.4f} ({base_s / median:.1f}x faster)\n"
        f"load of {rows:,} snapshots from {precise.name}"
        f" ({figures['full_precision_file_mb']} MB):\n"
        f"  tickfeatures load  {statistics.median(precise_runs):6.2f} s"
        f"  {figures['full_precision_rows_per_s_median']:>9,} rows/s (median of {RUNS};"
        f" slowest {figures['full_precision_rows_per_s_slowest']:,} rows/s)\n"
        + "".join(
            f"load of {rows:,} snapshots from {v.name} ({v.stat().st_size / 1e6:.1f} MB, detected"
            f" as databento):\n  tickfeatures load  {statistics.median(r):6.2f} s"
            f"  {rows / statistics.median(r):>9,.0f} rows/s (median of {RUNS}; the wide file's"
            f" {rows / median:,.0f})\n"
            for v, r in zip(vendor, vendor_runs, strict=True)
        )
        + f"figures in {args.out}"
    )
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute("drop database if exists tickfeatures_bench_load with (force)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
