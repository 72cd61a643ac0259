"""A full rebuild's swap (ops.replace_relation) against readers that lock in another order.

The swap locks the views on the rebuilt relation, then the relation. A reader's query that
reads the relation directly as well as through a view (features.latest_l2 does: each family's
newest ts directly, its row through features.l2_features) can hold the relation and then ask
for the view. The CI run of the readers' test met this as "deadlock detected" in the reader;
these tests build that interleaving on purpose, on a relation and views of their own.
"""

from __future__ import annotations

import threading
import time
import uuid

import psycopg
import pytest
from psycopg import sql

pytestmark = pytest.mark.integration


def _schema(url: str) -> str:
    """A schema of this test's own: table t (3 rows), view v on t, view w on v, and t_new (5
    rows), the rebuilt t to swap in."""
    name = f"swap_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(url, autocommit=True) as conn:
        schema = sql.Identifier(name)
        conn.execute(sql.SQL("create schema {}").format(schema))
        conn.execute(
            sql.SQL("create table {}.t as select generate_series(1, 3) as n").format(schema)
        )
        conn.execute(sql.SQL("create view {0}.v as select n from {0}.t").format(schema))
        conn.execute(sql.SQL("create view {0}.w as select n from {0}.v").format(schema))
        conn.execute(
            sql.SQL("create table {}.t_new as select generate_series(1, 5) as n").format(schema)
        )
    return name


def _waiting(conn: psycopg.Connection, pid: int) -> bool:
    return bool(
        conn.execute(
            "select exists (select from pg_locks where pid = %s and not granted)", (pid,)
        ).fetchone()[0]  # type: ignore[index]
    )


@pytest.mark.parametrize("view", ["v", "w"])
def test_a_reader_holding_the_relation_and_asking_for_a_view_is_never_cancelled(
    migrated_db: str, view: str
) -> None:
    schema = _schema(migrated_db)
    swap: dict[str, object] = {}

    def replace(pid_ready: threading.Event) -> None:
        try:
            with psycopg.connect(migrated_db) as writer:
                swap["pid"] = writer.info.backend_pid
                pid_ready.set()
                writer.execute(
                    "select ops.replace_relation(%s::regclass, %s::regclass)",
                    (f"{schema}.t", f"{schema}.t_new"),
                )
            swap["result"] = "committed"
        except psycopg.Error as exc:
            swap["result"] = f"{type(exc).__name__}: {exc}"

    with (
        psycopg.connect(migrated_db) as reader,
        psycopg.connect(migrated_db, autocommit=True) as observer,
    ):
        # the reader holds the relation, as a query naming it directly does
        before = reader.execute(
            sql.SQL("select count(*) from {}.t").format(sql.Identifier(schema))
        ).fetchone()[0]  # type: ignore[index]
        ready = threading.Event()
        writer = threading.Thread(target=replace, args=(ready,))
        writer.start()
        ready.wait(10)
        deadline = time.monotonic() + 10
        while not _waiting(observer, int(swap["pid"])) and time.monotonic() < deadline:  # type: ignore[call-overload]
            time.sleep(0.005)
        assert _waiting(observer, int(swap["pid"])), "the swap never waited for the reader"  # type: ignore[call-overload]
        # ... and now asks for a view the swap locks before the relation
        through_view = reader.execute(
            sql.SQL("select count(*) from {}.{}").format(
                sql.Identifier(schema), sql.Identifier(view)
            )
        ).fetchone()[0]  # type: ignore[index]
        reader.commit()
        writer.join(30)
    assert (before, through_view) == (3, 3)
    assert swap["result"] == "committed"
    with psycopg.connect(migrated_db) as conn:
        for name in ("t", "v", "w"):
            count = conn.execute(
                sql.SQL("select count(*) from {}.{}").format(
                    sql.Identifier(schema), sql.Identifier(name)
                )
            ).fetchone()[0]  # type: ignore[index]
            assert count == 5, name
        assert conn.execute("select to_regclass(%s)", (f"{schema}.t_new",)).fetchone() == (None,)


def test_the_swap_outlasts_a_long_reader_and_keeps_the_sessions_lock_timeout(
    migrated_db: str,
) -> None:
    """A reader holding the relation for longer than many attempts delays the swap, which
    then commits; the caller's lock_timeout is the same after the call as before."""
    schema = _schema(migrated_db)
    with psycopg.connect(migrated_db) as holder, psycopg.connect(migrated_db) as writer:
        holder.execute(
            sql.SQL("lock table {}.t in access share mode").format(sql.Identifier(schema))
        )
        release = threading.Timer(1.5, holder.commit)
        release.start()
        writer.execute("set lock_timeout = '7s'")
        started = time.monotonic()
        writer.execute(
            "select ops.replace_relation(%s::regclass, %s::regclass)",
            (f"{schema}.t", f"{schema}.t_new"),
        )
        waited = time.monotonic() - started
        kept = writer.execute("show lock_timeout").fetchone()[0]  # type: ignore[index]
        writer.commit()
        release.join()
        count = writer.execute(
            sql.SQL("select count(*) from {}.w").format(sql.Identifier(schema))
        ).fetchone()[0]  # type: ignore[index]
    assert waited >= 1.0, "the swap did not wait for the reader"
    assert kept == "7s"
    assert count == 5
