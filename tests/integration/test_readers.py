"""Readers during writes, and writers at the same time.

- While loads, an incremental refresh, a full rebuild (`--full`) and `call features.refresh()`
  run, readers in a loop query the marts, the latest vectors and a training set: never an
  error (no relation missing while a full rebuild swaps it in), and never a row one family
  has and another lacks: in one snapshot, the marts' rows are exactly the keys every family
  has, and a latest vector's row is in every family.
- Two refreshes at once serialize: `call features.refresh()` while `tickfeatures refresh`
  runs returns at once (logged as skipped); a load during a refresh is picked up by the next.
- Loads of many files in parallel (the same file twice among them) load each file once: the
  ledger's counts are the tables' rows.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import psycopg
import pytest

from tests.conftest import ROOT, FreshDatabase, Processes, run_cli
from tests.oracle.registry import L2_FAMILIES
from tickfeatures import serving

pytestmark = [pytest.mark.integration, pytest.mark.slow]

BAR_FAMILIES = sorted(
    p.stem for d in ("bar", "bar_k14") for p in (ROOT / "models" / d).glob("*.sql")
)
SYMBOL = "EURUSD"
HELD = (
    "select 1 from pg_locks where locktype = 'advisory' and granted"
    " and database = (select oid from pg_database where datname = current_database())"
)


def _generate(tmp: Path, name: str, kind: str, start: str, amount: float, seed: int) -> Path:
    path = tmp / f"{name}.csv"
    size = ["--minutes" if kind == "l2" else "--days", str(amount)]
    run_cli("generate", kind, "--out", str(path), "--start", start, "--seed", str(seed), *size)
    return path


@pytest.fixture(scope="module")
def built(databases: FreshDatabase, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """A database refreshed once, its procedures installed, and the files that arrive later."""
    tmp = tmp_path_factory.mktemp("readers")
    url = databases.create("tf_readers")
    run_cli("migrate", dsn=url)
    run_cli(
        "load", "l2", str(_generate(tmp, "l2_0", "l2", "2026-01-05T09:00:00+00:00", 4, 1)), dsn=url
    )
    run_cli(
        "load",
        "bars",
        str(_generate(tmp, "bars_0", "bars", "2026-01-05T00:00:00+00:00", 2, 2)),
        dsn=url,
    )
    run_cli("refresh", dsn=url)
    run_cli("schedule", "install", dsn=url)
    later = [
        (
            _generate(tmp, f"l2_{i}", "l2", f"2026-01-05T09:{4 + i:02d}:00+00:00", 1, 10 + i),
            _generate(
                tmp, f"bars_{i}", "bars", f"2026-01-07T{2 * i:02d}:00:00+00:00", 1 / 12, 20 + i
            ),
        )
        for i in range(1, 7)
    ]
    return {"url": url, "later": later, "tmp": tmp}


def _load(url: str, files: tuple[Path, Path]) -> None:
    run_cli("load", "l2", str(files[0]), "--no-progress", dsn=url)
    run_cli("load", "bars", str(files[1]), "--no-progress", dsn=url)


def _call_refresh(url: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("call features.refresh()")


def _keys_in_all(families: list[str]) -> str:
    return " intersect ".join(
        f"select symbol, ts from features.{f} where symbol = %(s)s" for f in families
    )


# Each check is one statement, so one snapshot (READ COMMITTED, as a SQL client reads): what a
# reader sees is whole.
def _mart_is_what_every_family_has(conn: psycopg.Connection, kind: str) -> None:
    mart, families = (
        ("l2_features", L2_FAMILIES) if kind == "l2" else ("bar_features", BAR_FAMILIES)
    )
    shown, common = conn.execute(
        f"select (select count(*) from features.{mart} where symbol = %(s)s),"
        f" (select count(*) from ({_keys_in_all(families)}) as k)",
        {"s": SYMBOL},
    ).fetchone()  # type: ignore[misc]
    assert shown == common and shown > 0, (mart, shown, common)


def _latest_is_in_every_family(conn: psycopg.Connection, kind: str) -> None:
    """The latest vector, then its key in every family, in a second statement: rows are only
    ever added (a full rebuild has the same), so a later snapshot has them too. (In one
    statement, the families named before the function's inlined views would be locked before
    those views, the reverse of a full rebuild's swap, which locks the views first: a
    deadlock.)"""
    families = L2_FAMILIES if kind == "l2" else BAR_FAMILIES
    row = conn.execute(f"select symbol, ts from features.latest_{kind}(%s)", (SYMBOL,)).fetchone()
    assert row is not None, f"no latest {kind} vector"
    having = ", ".join(
        f"exists (select from features.{f} where symbol = %(symbol)s and ts = %(ts)s)"
        for f in families
    )
    found = conn.execute(f"select array[{having}]", {"symbol": row[0], "ts": row[1]}).fetchone()
    missing = [f for f, has in zip(families, found[0], strict=True) if not has]  # type: ignore[index]
    assert missing == [], (kind, row, missing)


def _training_set(conn: psycopg.Connection, _: str) -> None:
    newest = conn.execute(
        "select max(ts) from features.l2_features where symbol = %s", (SYMBOL,)
    ).fetchone()[0]  # type: ignore[index]
    events = pd.DataFrame(
        {
            "symbol": [SYMBOL] * 3,
            "ts": pd.to_datetime([newest] * 3, utc=True) - pd.to_timedelta([0, 30, 90], "s"),
        }
    )
    frame = serving.training_set(conn, events, ["ofi", "spread_bps", "time_features"])
    assert len(frame) == 3 and frame["ofi_ts"].notna().all(), frame


READS: list[tuple[str, str, Callable[[psycopg.Connection, str], None]]] = [
    ("l2 mart", "l2", _mart_is_what_every_family_has),
    ("bar mart", "bars", _mart_is_what_every_family_has),
    ("latest l2", "l2", _latest_is_in_every_family),
    ("latest bars", "bars", _latest_is_in_every_family),
    ("training set", "l2", _training_set),
]


class Readers:
    """Threads reading in a loop until stopped; every failure kept with what was read."""

    def __init__(self, url: str, n: int) -> None:
        self.url, self.stop = url, threading.Event()
        self.errors: list[str] = []
        self.reads: list[tuple[float, str]] = []
        self.threads = [threading.Thread(target=self._loop, args=(i,)) for i in range(n)]

    def _loop(self, offset: int) -> None:
        with psycopg.connect(self.url, autocommit=True) as conn:
            i = offset
            while not self.stop.is_set():
                name, kind, check = READS[i % len(READS)]
                i += 1
                try:
                    check(conn, kind)
                    self.reads.append((time.monotonic(), name))
                    time.sleep(
                        0.1
                    )  # readers, not a load test (make soak): the refresh keeps a core
                except (AssertionError, psycopg.Error) as exc:
                    self.errors.append(
                        f"{time.monotonic():.2f} {name}: {type(exc).__name__}:"
                        f" {str(exc).strip()[:300]}"
                    )
                    if conn.broken:
                        return

    def __enter__(self) -> Readers:
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(timeout=120)


def _refresh_with_a_load_and_a_call_meanwhile(
    url: str, files: tuple[Path, Path], processes: Processes
) -> dict:
    """`tickfeatures refresh` and, while it holds the refresh lock, a load and a `call
    features.refresh()`, which returns at once, logged as skipped."""
    cli = processes.cli("refresh", dsn=url)
    with psycopg.connect(url, autocommit=True) as conn:
        deadline = time.monotonic() + 60
        while not conn.execute(HELD).fetchone():  # the CLI holds the lock while dbt runs
            assert time.monotonic() < deadline and cli.poll() is None, "the refresh did not start"
            time.sleep(0.05)
        _load(url, files)
        loaded_during = cli.poll() is None
        began = time.monotonic()
        conn.execute("call features.refresh()")
        took = time.monotonic() - began
        skipped = conn.execute(
            "select status, error from ops.refresh_runs where model = 'refresh()'"
            " order by run_id desc limit 1"
        ).fetchone()
    _, err = cli.communicate(timeout=300)
    return {"rc": cli.returncode, "err": err, "during": loaded_during, "took": took,
            "skipped": skipped}  # fmt: skip


def _uncovered(url: str) -> tuple[int, int]:
    """Snapshots without their l2_features row, loaded bars without their K1 row (time_features
    has one per final bar)."""
    with psycopg.connect(url) as conn:
        return conn.execute(
            "select (select count(*) from market.l2_snapshots s where not exists"
            "   (select from features.l2_features f where f.symbol = s.symbol and f.ts = s.ts)),"
            " (select count(*) from market.bars_1m b where not exists"
            "   (select from features.time_features f where f.symbol = b.symbol and f.ts = b.ts))"
        ).fetchone()  # type: ignore[return-value]


def test_readers_never_see_an_error_or_a_half_built_state(
    built: dict, processes: Processes
) -> None:
    """Also: a procedure call during a CLI refresh returns at once, and a load during that
    refresh is picked up by the next (the scheduled path's)."""
    url = built["url"]
    phases: list[tuple[str, float, float]] = []
    outcome: dict = {}

    def phase(name: str, action: Callable[[], object]) -> None:
        began = time.monotonic()
        outcome[name] = action()
        phases.append((name, began, time.monotonic()))

    with Readers(url, 2) as readers:
        time.sleep(1)
        phase("load", lambda: _load(url, built["later"][0]))
        phase(
            "refresh",
            lambda: _refresh_with_a_load_and_a_call_meanwhile(url, built["later"][1], processes),
        )
        phase("call features.refresh()", lambda: _call_refresh(url))
        outcome["uncovered"] = _uncovered(url)
        phase("load", lambda: _load(url, built["later"][2]))
        phase("refresh --full", lambda: run_cli("refresh", "--full", dsn=url))
        time.sleep(0.5)
    assert readers.errors == [], (
        [f"{ph}" for ph in phases] + readers.errors[:3] + readers.errors[-3:]
    )
    for name, began, ended in phases:
        during = [r for t, r in readers.reads if began <= t <= ended]
        assert len(during) >= 3, (name, during)
    assert {r for _, r in readers.reads} == {name for name, _, _ in READS}
    cli = outcome["refresh"]
    assert cli["rc"] == 0, cli["err"]
    assert cli["during"], "the refresh ended before the load"
    assert cli["took"] < 2 and cli["skipped"] == ("skipped", "another refresh was running")
    assert outcome["uncovered"] == (0, 0)


def test_many_loads_at_once_load_each_file_once(
    built: dict, databases: FreshDatabase, processes: Processes
) -> None:
    url = databases.create("tf_parallel_loads")
    run_cli("migrate", dsn=url)
    tmp = built["tmp"]
    files = [
        _generate(tmp, f"p{i}", "l2", f"2026-01-06T{9 + i:02d}:00:00+00:00", 2, 40 + i)
        for i in range(6)
    ]
    procs = [
        processes.cli("load", "l2", str(path), "--no-progress", dsn=url)
        for path in [*files, files[0], files[1]]
    ]
    outcomes = [(p.wait(timeout=300), *p.communicate()) for p in procs]
    assert [rc for rc, _, _ in outcomes] == [0] * len(procs), outcomes
    said = sorted(out.split(" ", 1)[0] for _, out, _ in outcomes)
    assert said == ["loaded"] * 6 + ["skipped"] * 2, outcomes
    with psycopg.connect(url) as conn:
        ledger = conn.execute(
            "select file_name, status, rows_loaded from ops.ingest_files order by file_name"
        ).fetchall()
        rows = conn.execute(
            "select count(*), count(distinct (symbol, ts)) from market.l2_snapshots"
        ).fetchone()
    assert [(f, s) for f, s, _ in ledger] == [(f"p{i}.csv", "loaded") for i in range(6)]
    assert rows == (sum(n for _, _, n in ledger),) * 2
