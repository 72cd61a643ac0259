"""Loads that die mid-file leave the ledger telling the truth.

A `tickfeatures load` process is killed with SIGKILL at seeded random moments of a load of a
file big enough to take a second or two. After each kill: the server has ended the dead
client's backend (and so rolled its transaction back and released its locks); no ledger row
says 'loading'; the ledger's counts equal the rows in the tables; `quality.file_summary` and
`tickfeatures status` show no phantom file. A run to the end then loads the file under one
ledger row (the row of an earlier failure of the same file), with exactly the counts and
rows of an uninterrupted load. Databases with rows an earlier loader left in 'loading' get
them marked 'interrupted' by migration 0015.
"""

from __future__ import annotations

import random
import re
import shutil
import signal
import time
from pathlib import Path

import psycopg
import pytest

from tests.conftest import ROOT, FreshDatabase, Processes, run_cli
from tickfeatures import migrate
from tickfeatures.load import file_checksum

pytestmark = [pytest.mark.integration, pytest.mark.slow]

MINUTES = 300  # about 310,000 snapshots (60 MB of CSV): 1.5-5 s of loading on 2 cores
KILLS = 20
SEED = 20260312


@pytest.fixture(scope="module")
def big_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("interrupted") / "big.csv"
    run_cli("generate", "l2", "--out", str(path), "--minutes", str(MINUTES), "--seed", "7")
    return path


@pytest.fixture()
def db(databases: FreshDatabase) -> str:
    url = databases.create()
    run_cli("migrate", dsn=url)
    return url


def _one(conn: psycopg.Connection, query: str, params: tuple = ()) -> object:
    row = conn.execute(query, params).fetchone()
    assert row is not None
    return row[0]


def _backends(conn: psycopg.Connection) -> list[tuple]:
    """The other client backends of this database: (pid, state, in a transaction, query)."""
    return conn.execute(
        "select pid, state, xact_start is not null, left(query, 40) from pg_stat_activity"
        " where datname = current_database() and backend_type = 'client backend'"
        " and pid <> pg_backend_pid()"
    ).fetchall()


def _wait_for(condition, timeout: float, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.01)


def _assert_truthful(conn: psycopg.Connection, url: str) -> list[tuple]:
    """No phantom row anywhere; the ledger's counts are the tables' rows. Returns the
    ledger as (file_id, status, rows_loaded)."""
    ledger = conn.execute(
        "select file_id, status, rows_loaded from ops.ingest_files order by file_id"
    ).fetchall()
    assert all(status != "loading" for _, status, _ in ledger), ledger
    stored = _one(
        conn,
        "select coalesce(sum(rows_loaded), 0) from ops.ingest_files"
        " where status in ('loaded', 'salvaged')",
    )
    assert _one(conn, "select count(*) from market.l2_snapshots") == stored
    assert _one(conn, "select count(*) from ops.quarantine") == _one(
        conn,
        "select coalesce(sum(rows_quarantined), 0) from ops.ingest_files"
        " where status in ('loaded', 'salvaged')",
    )
    assert _one(conn, "select count(*) from ops.ingest_ranges") == _one(
        conn,
        "select count(*) from ops.ingest_ranges join ops.ingest_files using (file_id)"
        " where status in ('loaded', 'salvaged')",
    )
    summary = conn.execute(
        "select file_id, status from quality.file_summary order by file_id"
    ).fetchall()
    assert summary == [(f, s) for f, s, _ in ledger]
    report = run_cli("status", dsn=url).stdout
    assert not re.search(r"^\s+loading\s", report, re.MULTILINE), report
    for status in ("loaded", "failed", "interrupted"):
        n = sum(s == status for _, s, _ in ledger)
        assert f"{status:12s} {n:>6,} file" in report, report
    return ledger


def test_killed_loads_leave_no_phantom_rows(
    databases: FreshDatabase, db: str, big_file: Path, processes: Processes
) -> None:
    checksum, size = file_checksum(big_file)
    rng = random.Random(SEED)
    with psycopg.connect(db, autocommit=True) as conn:
        # The file failed once before (as a dropped connection would leave it): its row is
        # the one the loads below retry under, and a killed retry must leave it 'failed'.
        failed_id = _one(
            conn,
            "insert into ops.ingest_files (kind, file_name, file_path, checksum, size_bytes,"
            " status, error, finished_at) values ('l2', %s, %s, %s, %s, 'failed',"
            " 'big.csv: database error: terminating connection', now()) returning file_id",
            (big_file.name, str(big_file), checksum, size),
        )
        mid_transaction = 0
        for kill in range(KILLS):
            proc = processes.cli("load", "l2", str(big_file), "--no-progress", dsn=db)
            if kill % 2:
                # a moment inside the file's transaction: after its first COPY began
                _wait_for(
                    lambda: any(q.lower().startswith("copy") for *_, q in _backends(conn)),
                    60,
                    "the load's first COPY",
                )
                time.sleep(rng.uniform(0.0, 0.5))
            else:
                # any moment: start-up, checksum, parsing or the transaction
                time.sleep(rng.uniform(0.05, 1.0))
            assert proc.poll() is None, "the load finished before it could be killed"
            mid_transaction += any(in_tx for _, _, in_tx, _ in _backends(conn))
            proc.send_signal(signal.SIGKILL)
            proc.communicate(timeout=60)
            assert proc.returncode == -signal.SIGKILL
            # The server notices the dead client, aborts its transaction and ends its
            # backend: nothing of the load stays, nor its locks.
            _wait_for(lambda: not _backends(conn), 30, "the killed client's backend to end")
            held = (
                "select count(*) from pg_locks where locktype = 'advisory'"
                " and database = (select oid from pg_database where datname = current_database())"
            )
            assert _one(conn, held) == 0
            ledger = _assert_truthful(conn, db)
            assert ledger == [(failed_id, "failed", None)]
        assert mid_transaction >= KILLS // 2

    finished = run_cli("load", "l2", str(big_file), "--no-progress", dsn=db)
    assert finished.stdout.startswith("loaded big.csv (csv): ")
    again = run_cli("load", "l2", str(big_file), "--no-progress", dsn=db)
    assert again.stdout.startswith(f"skipped big.csv: already loaded as file {failed_id}")

    # The same file loaded once, uninterrupted, into a database of its own.
    reference = databases.create()
    run_cli("migrate", dsn=reference)
    run_cli("load", "l2", str(big_file), "--no-progress", dsn=reference)
    counts = (
        "select kind, checksum, rows_in, rows_loaded, rows_quarantined, rows_duplicate,"
        " rows_crossed, rows_locked from ops.ingest_files where status = 'loaded'"
    )
    content = (
        "select count(*), count(distinct (symbol, ts)), sum(bid_price_1), sum(ask_size_10),"
        " min(ts), max(ts) from market.l2_snapshots"
    )
    quarantined = "select reason, count(*) from ops.quarantine group by reason order by reason"
    with psycopg.connect(db) as conn, psycopg.connect(reference) as ref:
        ledger = _assert_truthful(conn, db)
        assert [(f, s) for f, s, _ in ledger] == [(failed_id, "loaded")]
        assert conn.execute(counts).fetchall() == ref.execute(counts).fetchall()
        assert conn.execute(content).fetchall() == ref.execute(content).fetchall()
        assert conn.execute(quarantined).fetchall() == ref.execute(quarantined).fetchall()
        assert _one(conn, "select error from ops.ingest_files") is None


def test_migration_marks_rows_left_loading_as_interrupted(fresh_db: str, tmp_path: Path) -> None:
    """A database where a loader from before 0015 was killed: its row said 'loading' for
    ever. Migration 0015 marks it interrupted; the next load takes the row over."""
    small = tmp_path / "small.csv"
    run_cli("generate", "l2", "--out", str(small), "--minutes", "1", "--seed", "8")
    earlier = tmp_path / "migrations"
    earlier.mkdir()
    for m in migrate.discover(ROOT / "migrations"):
        if m.version < 15:
            shutil.copy(m.path, earlier / m.path.name)
    checksum, size = file_checksum(small)
    with psycopg.connect(fresh_db, autocommit=True) as conn:
        migrate.apply(conn, earlier)
        phantom = _one(
            conn,
            "insert into ops.ingest_files (kind, file_name, file_path, checksum, size_bytes,"
            " status) values ('l2', %s, %s, %s, %s, 'loading') returning file_id",
            (small.name, str(small), checksum, size),
        )
    run_cli("migrate", dsn=fresh_db)
    with psycopg.connect(fresh_db) as conn:
        status, error = conn.execute(
            "select status, error from ops.ingest_files where file_id = %s", (phantom,)
        ).fetchone()  # type: ignore[misc]
        assert status == "interrupted" and "interrupted" in error
        comment = _one(
            conn,
            "select col_description(attrelid, attnum) from pg_attribute"
            " where attrelid = 'ops.ingest_files'::regclass and attname = 'status'",
        )
        assert "interrupted" in str(comment)
        assert _assert_truthful(conn, fresh_db) == [(phantom, "interrupted", None)]
    loaded = run_cli("load", "l2", str(small), "--no-progress", dsn=fresh_db)
    assert loaded.stdout.startswith("loaded small.csv")
    with psycopg.connect(fresh_db) as conn:
        ledger = _assert_truthful(conn, fresh_db)
        assert [(f, s) for f, s, _ in ledger] == [(phantom, "loaded")]
