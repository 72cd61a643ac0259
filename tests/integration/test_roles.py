"""`tickfeatures roles install` (../shared/DESIGN.md, Contract: Roles), logged in as each role
over TCP with its SCRAM password, on a database that has never seen the project:

* tickfeatures_writer loads and refreshes from nothing (the first dbt build is the writer's),
  compiles the refresh procedures and calls features.refresh(), rebuilds with --full (tables
  swapped), and cannot drop market.* or ops.* tables, alter them or create roles;
* tickfeatures_reader reads market.*, every features.* relation (also those the writer
  rebuilt after the roles were installed), the quality views, the latest vectors, a training
  set from a TEMP events table and the kernels; and is refused every write, ops.*, permanent
  DDL, the refresh, and roles;
* without the password the server refuses both.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import make_conninfo

from tests.conftest import FreshDatabase, run_cli

READER, WRITER = "tickfeatures_reader", "tickfeatures_writer"
L2_SYMBOLS = ["ROLEA", "ROLEB"]
BAR_SYMBOLS = ["EURUSD", "GBPUSD"]


def as_role(url: str, role: str, password: str | None) -> str:
    """The test server's connection string, logged in as role over TCP (no password: none)."""
    return make_conninfo(url, user=role, password=password or "")


@pytest.fixture(scope="module")
def installed(databases: FreshDatabase, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    tmp = tmp_path_factory.mktemp("roles")
    l2, l2_more, bars = tmp / "l2.csv.gz", tmp / "l2_more.csv.gz", tmp / "bars.csv"
    run_cli(
        "generate", "l2", "--symbols", ",".join(L2_SYMBOLS), "--minutes", "4", "--seed", "3",
        "--start", "2026-03-02T14:00:00+00:00", "--out", str(l2),
    )  # fmt: skip
    run_cli(
        "generate", "l2", "--symbols", ",".join(L2_SYMBOLS), "--minutes", "1", "--seed", "4",
        "--start", "2026-03-02T14:05:00+00:00", "--out", str(l2_more),
    )  # fmt: skip
    run_cli(
        "generate", "bars", "--symbols", ",".join(BAR_SYMBOLS), "--days", "2", "--seed", "3",
        "--start", "2026-01-05T00:00:00+00:00", "--out", str(bars),
    )  # fmt: skip
    admin = databases.create("tf_roles")
    run_cli("migrate", dsn=admin)
    passwords = {READER: secrets.token_urlsafe(16) + "'\"; --", WRITER: secrets.token_urlsafe(16)}
    result = run_cli(
        "roles", "install", dsn=admin,
        env={
            "TICKFEATURES_READER_PASSWORD": passwords[READER],
            "TICKFEATURES_WRITER_PASSWORD": passwords[WRITER],
        },
    )  # fmt: skip
    assert f"{READER}: " in result.stdout and "password set" in result.stdout
    assert passwords[READER] not in result.stdout + result.stderr
    writer = as_role(admin, WRITER, passwords[WRITER])
    reader = as_role(admin, READER, passwords[READER])
    # the writer's whole path, from a database with no features yet
    run_cli("load", "l2", str(l2), dsn=writer)
    run_cli("load", "bars", str(bars), dsn=writer)
    run_cli("refresh", dsn=writer)
    # the refresh inside the database: its procedures compiled and called by the writer
    run_cli("schedule", "install", dsn=writer)
    run_cli("load", "l2", str(l2_more), dsn=writer)
    with psycopg.connect(writer, autocommit=True) as conn:
        conn.execute("call features.refresh()")
        newest = conn.execute("select max(ts) from features.ofi").fetchone()
    assert newest is not None and newest[0] >= datetime(2026, 3, 2, 14, 5, tzinfo=UTC)
    run_cli("refresh", "--full", "--select", "ofi", dsn=writer)
    yield {"admin": admin, "writer": writer, "reader": reader, "passwords": passwords}


def refused(url: str, statement: str, params: tuple = ()) -> str:
    """The SQLSTATE of the error the statement gets (it must get one), in its own session."""
    with psycopg.connect(url, autocommit=True) as conn:
        try:
            conn.execute(statement, params or None)
        except psycopg.Error as exc:
            return exc.sqlstate or ""
    raise AssertionError(f"allowed: {statement}")


def test_the_writer_built_and_owns_the_features(installed: dict) -> None:
    with psycopg.connect(installed["admin"]) as conn:
        owners = conn.execute(
            """
            select distinct pg_get_userbyid(c.relowner)
            from pg_class as c inner join pg_namespace as n on c.relnamespace = n.oid
            where n.nspname in ('features', 'staging') and c.relkind in ('r', 'v', 'm')
            """
        ).fetchall()
        rows = conn.execute("select count(*) from features.ofi").fetchone()
        files = conn.execute(
            "select count(*) from ops.ingest_files where status = 'loaded'"
        ).fetchone()
    assert owners == [(WRITER,)]
    assert rows is not None and rows[0] > 0
    assert files == (3,)


@pytest.mark.parametrize(
    "statement",
    [
        "drop table market.l2_snapshots",
        "drop table market.bars_1m",
        "drop table ops.ingest_files",
        "drop table ops.quarantine",
        "alter table market.bars_1m add column extra int",
        "truncate market.l2_snapshots",
        "create role intruder",
        "alter role tickfeatures_writer superuser",
        "create schema intruder",
        "create table public.intruder (i int)",
    ],
)
def test_the_writer_cannot(installed: dict, statement: str) -> None:
    assert refused(installed["writer"], statement) == "42501"  # insufficient_privilege


def test_the_reader_reads_everything_it_may(installed: dict) -> None:
    with psycopg.connect(installed["reader"], autocommit=True) as conn:
        assert conn.execute("select count(*) from market.l2_snapshots").fetchone()[0] > 0
        assert conn.execute("select count(*) from market.bars_1m").fetchone()[0] > 0
        relations = conn.execute(
            """
            select n.nspname, c.relname
            from pg_class as c inner join pg_namespace as n on c.relnamespace = n.oid
            where n.nspname in ('features', 'quality') and c.relkind in ('r', 'v', 'm')
            order by 1, 2
            """
        ).fetchall()
        assert ("features", "ofi") in relations and ("features", "bar_features") in relations
        assert ("quality", "file_summary") in relations
        for schema, name in relations:
            conn.execute(
                sql.SQL("select * from {}.{} limit 3").format(
                    sql.Identifier(schema), sql.Identifier(name)
                )
            ).fetchall()
        files = conn.execute("select count(*) from quality.file_summary").fetchone()
        assert files is not None and files[0] == 3  # the ledger's three files, through ops.*
        latest = conn.execute("select * from features.latest_l2(%s)", (L2_SYMBOLS[0],)).fetchall()
        assert len(latest) == 1
        assert len(conn.execute("select * from features.latest_bars('EURUSD')").fetchall()) == 1
        conn.execute("create temp table my_events (symbol text, ts timestamptz)")
        conn.execute(
            "insert into my_events values (%s, '2026-03-02T14:03:00+00:00'),"
            " (%s, '2026-03-02T14:04:30+00:00')",
            tuple(L2_SYMBOLS),
        )
        count = conn.execute(
            "select features.training_set('my_events', array['ofi_10s', 'bid_ask_spread'])"
        ).fetchone()
        assert count == (2,)
        assert conn.execute("select count(*) from training_set").fetchone() == (2,)
        spectrum = conn.execute("select udf.spectral_features('{1,2,3,5,8,13}')").fetchone()
        assert spectrum is not None and spectrum[0] is not None


@pytest.mark.parametrize(
    "statement",
    [
        "insert into market.l2_snapshots (symbol, ts) values ('X', now())",
        "insert into market.bars_1m (symbol, ts, open, high, low, close, volume)"
        " values ('X', now(), 1, 1, 1, 1, 1)",
        "delete from market.bars_1m",
        "update features.ofi set ofi_10s = 0",
        "delete from features.ofi",
        "insert into features.ofi (symbol, ts) values ('X', now())",
        "truncate features.ofi",
        "select * from ops.ingest_files",
        "select * from ops.refresh_runs",
        "insert into ops.quarantine default values",
        "create table features.intruder (i int)",
        "create table public.intruder (i int)",
        "create view features.intruder as select 1",
        "create function public.intruder() returns int language sql as 'select 1'",
        "create schema intruder",
        "drop table features.ofi",
        "drop table market.l2_snapshots",
        "alter table features.ofi add column extra int",
        "call features.refresh()",
        "call features.refresh_ofi()",
        "create role intruder",
        "delete from udf.python_modules",
    ],
)
def test_the_reader_cannot(installed: dict, statement: str) -> None:
    assert refused(installed["reader"], statement) == "42501"  # insufficient_privilege


def test_the_reader_leaves_nothing_behind(installed: dict) -> None:
    """Its TEMP tables go with its session; nothing it ran changed a table."""
    with psycopg.connect(installed["admin"]) as conn:
        before = conn.execute(
            "select (select count(*) from market.l2_snapshots), (select count(*) from features.ofi)"
        ).fetchone()
    with psycopg.connect(installed["reader"], autocommit=True) as conn:
        conn.execute("create temp table scratch as select 1 as one")
    with psycopg.connect(installed["admin"]) as conn:
        after = conn.execute(
            "select (select count(*) from market.l2_snapshots), (select count(*) from features.ofi)"
        ).fetchone()
        scratch = conn.execute("select count(*) from pg_class where relname = 'scratch'").fetchone()
    assert before == after and scratch == (0,)


@pytest.mark.parametrize("role", [READER, WRITER])
def test_tcp_logins_need_the_password(installed: dict, role: str) -> None:
    for password in (None, "wrong-" + installed["passwords"][role]):
        with pytest.raises(psycopg.OperationalError) as caught:
            psycopg.connect(as_role(installed["admin"], role, password), connect_timeout=5).close()
        assert "password" in str(caught.value)


def test_install_needs_an_admin_and_is_one_line(installed: dict) -> None:
    result = run_cli("roles", "install", dsn=installed["writer"], check=False)
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "CREATEROLE" in lines[0], result.stderr


def test_install_again_changes_nothing_the_roles_rely_on(installed: dict, tmp_path: Path) -> None:
    """A second install (no passwords given: they stay) and the reader still reads, the writer
    still refreshes."""
    result = run_cli("roles", "install", dsn=installed["admin"])
    assert "updated" in result.stdout
    run_cli("refresh", "--select", "ofi", dsn=installed["writer"])
    with psycopg.connect(installed["reader"]) as conn:
        assert conn.execute("select count(*) from features.ofi").fetchone()[0] > 0
