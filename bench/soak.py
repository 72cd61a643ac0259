"""Load test (`make soak`, minutes; not in `make test`): the engine running as it would beside a
live feed, on loopback.

- 2 loaders: one `tickfeatures load l2` of 10 seconds of snapshots and one `tickfeatures load
  bars` of 30 minutes of bars, each in a loop, every file following the last;
- the schedule: pg_cron calls `features.refresh()` every second;
- 20 readers, each on its own connection, in a loop: the latest L2 and bar vectors of a
  symbol (the serving path), and now and then the newest rows of the marts;

for SOAK_SECONDS (default 180). Then the schedule is turned off, one last refresh runs, and:
the tables' rows equal the ledger's counts, and every features table equals a full rebuild
(`tickfeatures refresh --full`) at 1e-9 with identical NULLs. Prints rows, errors, the readers'
p50/p99 latency and the refresh durations, writes them to .tickfeatures/bench/soak.json, and
exits 1 on any error or difference.
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import threading
import time
from pathlib import Path

import pandas as pd
import psycopg

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from benchlib import fresh_database, log, tf  # noqa: E402

from tests.integration.test_crash import assert_ledger_truthful, features  # noqa: E402
from tests.oracle.compare import mismatches  # noqa: E402
from tickfeatures import config  # noqa: E402

SECONDS = float(os.environ.get("SOAK_SECONDS", 180))
READERS = int(os.environ.get("SOAK_READERS", 20))
L2_START = pd.Timestamp("2026-01-05T09:00:00+00:00")
BARS_START = pd.Timestamp("2026-01-05T00:00:00+00:00")
SYMBOLS = ["EURUSD", "GBPUSD"]


class Soak:
    def __init__(self, url: str, folder: Path) -> None:
        self.url, self.folder = url, folder
        self.stop = threading.Event()
        self.errors: list[str] = []
        self.latency: dict[str, list[float]] = {"latest_l2": [], "latest_bars": [], "marts": []}
        self.loads = {"l2": 0, "bars": 0}
        self.lock = threading.Lock()

    def error(self, what: str, exc: BaseException) -> None:
        with self.lock:
            self.errors.append(f"{what}: {type(exc).__name__}: {str(exc).strip()[:200]}")

    def loader(self, kind: str) -> None:
        step = pd.Timedelta(seconds=10) if kind == "l2" else pd.Timedelta(minutes=30)
        start = (
            (L2_START + pd.Timedelta(minutes=2))
            if kind == "l2"
            else (BARS_START + pd.Timedelta(days=1))
        )
        i = 0
        while not self.stop.is_set():
            path = self.folder / f"{kind}_{i:05d}.csv"
            size = ["--minutes", str(step / pd.Timedelta(minutes=1))] if kind == "l2" else [
                "--days", str(step / pd.Timedelta(days=1))
            ]  # fmt: skip
            try:
                tf("generate", kind, "--out", str(path), "--start", (start + step * i).isoformat(),
                   "--seed", str(1000 + i), *size, dsn=self.url)  # fmt: skip
                tf("load", kind, str(path), "--no-progress", dsn=self.url)
                self.loads[kind] += 1
            except BaseException as exc:  # tf raises SystemExit: kept and reported
                self.error(f"load {kind}", exc)
            i += 1

    def reader(self, n: int) -> None:
        symbol = SYMBOLS[n % len(SYMBOLS)]
        queries = [
            ("latest_l2", "select * from features.latest_l2(%s)"),
            ("latest_bars", "select * from features.latest_bars(%s)"),
        ]
        marts = "select * from features.l2_features where symbol = %s order by ts desc limit 10"
        try:
            conn = psycopg.connect(self.url, autocommit=True)
        except psycopg.Error as exc:
            self.error("reader connect", exc)
            return
        with conn:
            i = n
            while not self.stop.is_set():
                name, query = ("marts", marts) if i % 10 == 9 else queries[i % 2]
                i += 1
                began = time.perf_counter()
                try:
                    conn.execute(query, (symbol,), prepare=True).fetchall()
                except psycopg.Error as exc:
                    self.error(name, exc)
                    continue
                self.latency[name].append(time.perf_counter() - began)
                time.sleep(0.01)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def main() -> int:
    base = config.embedded_url(database="postgres")
    url = fresh_database(base, "tickfeatures_soak")
    folder = ROOT / ".tickfeatures" / "bench" / "soak"
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("*.csv"):
        old.unlink()
    log(f"soak: {SECONDS:.0f} s, 2 loaders, the schedule every 1 s, {READERS} readers")
    tf("migrate", dsn=url)
    first_l2, first_bars = folder / "first_l2.csv", folder / "first_bars.csv"
    tf(
        "generate",
        "l2",
        "--out",
        str(first_l2),
        "--start",
        L2_START.isoformat(),
        "--minutes",
        "2",
        dsn=url,
    )
    tf(
        "generate",
        "bars",
        "--out",
        str(first_bars),
        "--start",
        BARS_START.isoformat(),
        "--days",
        "1",
        dsn=url,
    )
    tf("load", "l2", str(first_l2), "--no-progress", dsn=url)
    tf("load", "bars", str(first_bars), "--no-progress", dsn=url)
    tf("refresh", dsn=url)
    tf("schedule", "every", "1s", dsn=url)
    with psycopg.connect(url) as conn:
        first_run = conn.execute(
            "select coalesce(max(run_id), 0) from ops.refresh_runs"
        ).fetchone()[0]  # type: ignore[index]

    soak = Soak(url, folder)
    threads = [threading.Thread(target=soak.loader, args=(kind,)) for kind in ("l2", "bars")]
    threads += [threading.Thread(target=soak.reader, args=(n,)) for n in range(READERS)]
    began = time.monotonic()
    for thread in threads:
        thread.start()
    while time.monotonic() - began < SECONDS:
        time.sleep(min(30.0, SECONDS - (time.monotonic() - began)))
        log(f"  {time.monotonic() - began:5.0f} s: {soak.loads['l2']} l2 and {soak.loads['bars']}"
            f" bar files loaded, {sum(map(len, soak.latency.values())):,} reads,"
            f" {len(soak.errors)} errors")  # fmt: skip
    soak.stop.set()
    for thread in threads:
        thread.join()
    tf("schedule", "off", dsn=url)

    with psycopg.connect(url, autocommit=True) as conn:
        runs = conn.execute(
            "select status, duration_ms from ops.refresh_runs"
            " where model = 'refresh()' and run_id > %s",
            (first_run,),
        ).fetchall()
    # what the last loads brought: `tickfeatures refresh` waits for a scheduled run still
    # holding the refresh lock (a `call features.refresh()` would return at once, skipped)
    tf("refresh", dsn=url)
    with psycopg.connect(url, autocommit=True) as conn:
        failed = conn.execute(
            "select model, error from ops.refresh_runs where status = 'failed' and run_id > %s",
            (first_run,),
        ).fetchall()
        assert_ledger_truthful(conn)
        rows = dict(
            conn.execute(
                "select kind, sum(rows_loaded) from ops.ingest_files"
                " where status = 'loaded' group by kind"
            ).fetchall()
        )
    incremental = features(url)
    tf("refresh", "--full", dsn=url)
    rebuilt = features(url)
    differences = {
        name: problems[:2]
        for name, frame in rebuilt.items()
        if (problems := mismatches(incremental[name], frame))
    }

    done = [ms for status, ms in runs if status == "success"]
    figures = {
        "seconds": SECONDS,
        "readers": READERS,
        "files_loaded": soak.loads,
        "rows_loaded": {k: int(v) for k, v in rows.items()},
        "reads": {k: len(v) for k, v in soak.latency.items()},
        "reader_p50_ms": {k: round(1000 * percentile(v, 0.5), 2) for k, v in soak.latency.items()},
        "reader_p99_ms": {k: round(1000 * percentile(v, 0.99), 2) for k, v in soak.latency.items()},
        "errors": len(soak.errors),
        "refreshes": {
            "success": len(done),
            "skipped": sum(status == "skipped" for status, _ in runs),
            "failed": sum(status == "failed" for status, _ in runs),
            "p50_s": round(statistics.median(done) / 1000, 2) if done else None,
            "max_s": round(max(done) / 1000, 2) if done else None,
        },
        "failed_models": failed,
        "tables_differing_from_a_full_rebuild": differences,
    }
    out = ROOT / ".tickfeatures" / "bench" / "soak.json"
    out.write_text(json.dumps(figures, indent=2, default=str))
    for key, value in figures.items():
        log(f"{key}: {value}")
    for message in soak.errors[:10]:
        log(f"error: {message}")
    ok = not soak.errors and not failed and not differences and done
    log(f"soak {'passed' if ok else 'FAILED'}; figures in {out.relative_to(ROOT)}")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
