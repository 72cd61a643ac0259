"""Benchmark: refresh inside the database, `call features.refresh()`, on bench_l2's history.

On the 1,000,000-snapshot database bench_l2.py leaves (2 symbols; built here when it is
missing), with the eight L2 families and the targets installed as refresh procedures:
  (a) one new second of snapshots (10 per symbol, 2 symbols) written by INSERT, then
      `call features.refresh()` timed, RUNS times; per-model times from ops.refresh_runs;
  (b) a feed of 10 snapshots a second per symbol for FEED_SECONDS into market.l2_snapshots,
      with `tickfeatures schedule every 1s`, sampling every second the staleness of
      features.l2_features: the newest snapshot less the newest row every family has (the
      view joins them), the worst symbol; p50 and p99.
The heavy families are left out: their first build on 1,000,000 snapshots (28 hours of
1-second bars a symbol) takes hours. Figures printed and written to
.tickfeatures/bench/schedule.json.
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import threading
import time
from datetime import timedelta
from pathlib import Path

import psycopg
from psycopg import sql

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from bench_l2 import SYMBOLS, fresh_database, log, settle, snapshots_csv, tf  # noqa: E402
from psycopg.conninfo import make_conninfo  # noqa: E402

from tests.oracle.registry import L2_FAMILIES  # noqa: E402
from tickfeatures import config, generate, schedule  # noqa: E402
from tickfeatures.schema import L2_COLUMNS  # noqa: E402

RUNS = int(os.environ.get("BENCH_SCHEDULE_RUNS", 5))
FEED_SECONDS = int(os.environ.get("BENCH_SCHEDULE_FEED_SECONDS", 120))
SELECTION = ["path:models/l2", "path:models/targets"]


def insert(url: str, rows: list[tuple]) -> None:
    statement = sql.SQL("insert into market.l2_snapshots ({}) values ({})").format(
        sql.SQL(", ").join(map(sql.Identifier, L2_COLUMNS)),
        sql.SQL(", ").join(sql.Placeholder() * len(L2_COLUMNS)),
    )
    with psycopg.connect(url) as conn, conn.cursor() as cur:
        cur.executemany(statement, rows)


def newest(conn: psycopg.Connection) -> object:
    return conn.execute("select max(ts) from market.l2_snapshots").fetchone()[0]  # type: ignore[index]


STALENESS = sql.SQL(
    "select max(newest.ts - least({families})) from (values {symbols}) as s (symbol)"
    " cross join lateral (select max(r.ts) as ts from market.l2_snapshots as r"
    "  where r.symbol = s.symbol) as newest"
).format(
    families=sql.SQL(", ").join(
        sql.SQL("(select max(f.ts) from features.{} as f where f.symbol = s.symbol)").format(
            sql.Identifier(family)
        )
        for family in L2_FAMILIES
    ),
    symbols=sql.SQL(", ").join(sql.SQL("({})").format(sql.Literal(s)) for s in SYMBOLS),
)


def main() -> int:
    base = os.environ.get(config.DSN_ENV) or config.embedded_url(database="postgres")
    url = make_conninfo(base, dbname="tickfeatures_bench")
    try:
        with psycopg.connect(url) as conn:
            ready = conn.execute("select to_regclass('features.l2_targets') is not null").fetchone()
    except psycopg.OperationalError:
        ready = None
    if not ready or not ready[0]:
        log("building the 1,000,000-snapshot history (bench_l2.py leaves it) ...")
        url = fresh_database(base, "tickfeatures_bench")
        tf("migrate", dsn=url)
        tf("load", "l2", str(snapshots_csv(500_000, ROOT / ".tickfeatures" / "bench")), dsn=url)
        tf("refresh", "--select", *SELECTION, dsn=url)
    else:
        tf("migrate", dsn=url)
    os.environ[config.DSN_ENV] = url
    log("schedule install (the L2 families and the targets) ...")
    schedule.install(select=SELECTION, say=log)
    settle(url)
    specs = [generate.load_symbols(ROOT / "seeds" / "symbols.csv")[s] for s in SYMBOLS]

    log(f"(a) one new second of snapshots, then `call features.refresh()`, {RUNS} times ...")
    seconds: list[float] = []
    per_model: dict[str, list[float]] = {}
    with psycopg.connect(url, autocommit=True) as conn:
        for i in range(RUNS):
            start = newest(conn) + timedelta(milliseconds=1)  # type: ignore[operator]
            rows = list(generate.generate_l2(specs, start, timedelta(seconds=1), seed=900 + i))
            insert(url, rows)
            mark = conn.execute("select max(run_id) from ops.refresh_runs").fetchone()[0]  # type: ignore[index]
            started = time.perf_counter()
            conn.execute("call features.refresh()")
            seconds.append(time.perf_counter() - started)
            for model, ms in conn.execute(
                "select model, duration_ms from ops.refresh_runs where run_id > %s"
                " and model <> 'refresh()'",
                (mark,),
            ):
                per_model.setdefault(model, []).append(ms / 1000)
            log(f"  {len(rows)} snapshots: {seconds[-1]:.3f} s")

    log(f"(b) a feed of 10 snapshots a second per symbol for {FEED_SECONDS} s, schedule 1 s ...")
    with psycopg.connect(url, autocommit=True) as conn:
        start = newest(conn) + timedelta(milliseconds=1)  # type: ignore[operator]
    feed = sorted(
        generate.generate_l2(specs, start, timedelta(seconds=FEED_SECONDS), seed=999),
        key=lambda r: r[1],
    )
    schedule.every("1s", say=log)
    stop = threading.Event()
    t0 = time.monotonic()

    def feeder() -> None:
        i = 0
        with psycopg.connect(url, autocommit=True) as conn, conn.cursor() as cur:
            statement = sql.SQL("insert into market.l2_snapshots ({}) values ({})").format(
                sql.SQL(", ").join(map(sql.Identifier, L2_COLUMNS)),
                sql.SQL(", ").join(sql.Placeholder() * len(L2_COLUMNS)),
            )
            while i < len(feed) and not stop.is_set():
                due = (feed[i][1] - start).total_seconds()
                wait = t0 + due - time.monotonic()
                if wait > 0:
                    time.sleep(wait)
                cur.execute(statement, feed[i])
                i += 1

    thread = threading.Thread(target=feeder)
    thread.start()
    samples: list[float] = []
    try:
        with psycopg.connect(url, autocommit=True) as conn:
            time.sleep(5)  # the first scheduled runs catch up with the bench's own writes
            while thread.is_alive():
                lag = conn.execute(STALENESS).fetchone()[0]  # type: ignore[index]
                samples.append(lag.total_seconds())
                time.sleep(1)
    finally:
        stop.set()
        thread.join()
        schedule.off(say=log)
    with psycopg.connect(url) as conn:
        scheduled = [
            ms / 1000
            for (ms,) in conn.execute(
                "select duration_ms from ops.refresh_runs where model = 'refresh()'"
                " and via = 'procedure' and status = 'success' and started_at > now() - %s",
                (timedelta(seconds=FEED_SECONDS + 10),),
            )
        ]
        skipped = conn.execute(
            "select count(*) from ops.refresh_runs where model = 'refresh()' and status = 'skipped'"
            " and started_at > now() - %s",
            (timedelta(seconds=FEED_SECONDS + 10),),
        ).fetchone()[0]  # type: ignore[index]

    def quantile(values: list[float], q: float) -> float:
        return statistics.quantiles(values, n=100, method="inclusive")[int(q * 100) - 1]

    figures = {
        "machine": {"cores": os.cpu_count()},
        "models": "8 L2 families + l2_targets, as procedures",
        "one_new_second_refresh_s": [round(s, 3) for s in seconds],
        "one_new_second_refresh_median_s": round(statistics.median(seconds), 3),
        "one_new_second_per_model_median_s": {
            m: round(statistics.median(v), 3) for m, v in sorted(per_model.items())
        },
        "feed_seconds": FEED_SECONDS,
        "feed_snapshots": len(feed),
        "staleness_samples": len(samples),
        "staleness_p50_s": round(quantile(samples, 0.5), 3),
        "staleness_p99_s": round(quantile(samples, 0.99), 3),
        "staleness_max_s": round(max(samples), 3),
        "scheduled_refresh_median_s": round(statistics.median(scheduled), 3) if scheduled else None,
        "scheduled_refreshes": len(scheduled),
        "scheduled_refreshes_skipped": skipped,
    }
    out = ROOT / ".tickfeatures" / "bench" / "schedule.json"
    out.write_text(json.dumps(figures, indent=2) + "\n")
    print(json.dumps(figures, indent=2))
    log(f"figures written to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
