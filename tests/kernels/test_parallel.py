"""Kernels and parallel query (migration 0028).

PostgreSQL 15 refuses subtransactions in a parallel query, and PL/Python opens one for every
query it runs (the kernel loader's module lookups, the interrupt checkpoint). These tests run
queries in parallel workers on purpose (force_parallel_mode) and show:

* no function of `udf` that runs PL/Python is labelled PARALLEL SAFE or RESTRICTED, so a user's
  query that calls one stays serial and works (it failed with "cannot start subtransactions
  during a parallel operation" when the labels said SAFE);
* udf.bar_matrices runs kernels inside a parallel worker, with the same result as in the
  leader, and a statement_timeout or a cancel stops a kernel there within about a second
  (SQLSTATE 57014), the server running on.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator

import psycopg
import pytest

from tests.kernels.test_limits import SLOW_X, assert_server_runs, server_start

# test_limits' slow fit (EM on heavy-tailed returns, 100 iterations of 8 states: 1-2 minutes)
SLOW_ARRAY = "{" + ",".join(repr(float(v)) for v in SLOW_X) + "}"
SLOW_QUERY = (
    f"select array['slow'] as symbols,"
    f" convert_to(udf.hmm_fit('{SLOW_ARRAY}'::float8[], 8, 100)::text, 'utf8') as matrix"
    " where $1 = 0 and $2 = 1"
)
SPECTRUM = "udf.spectral_features('{1,2,3,5,8,13,21,34}')"
FAST_QUERY = (
    f"select array['fast'] as symbols, convert_to({SPECTRUM}::text, 'utf8') as matrix"
    " where $1 = 0 and $2 = 1"
)
BAR_MATRICES = "select convert_from(matrix, 'utf8') from udf.bar_matrices(%s, 0, 1)"


@pytest.fixture()
def forced(migrated_db: str) -> Iterator[psycopg.Connection]:
    """A session whose every parallel-safe plan runs in a parallel worker."""
    with psycopg.connect(migrated_db, autocommit=True) as session:
        session.execute("set force_parallel_mode = on")
        yield session


def test_no_kernel_is_labelled_parallel_safe(conn: psycopg.Connection) -> None:
    """PL/Python functions, and SQL functions that call one, are PARALLEL UNSAFE; a function
    labelled SAFE must not reach PL/Python except through udf.bar_matrices."""
    rows = conn.execute(
        """
        select p.oid::regprocedure::text, l.lanname, p.proparallel, pg_get_functiondef(p.oid)
        from pg_proc as p
        inner join pg_namespace as n on p.pronamespace = n.oid
        inner join pg_language as l on p.prolang = l.oid
        where n.nspname = 'udf' and p.prokind = 'f'
        """
    ).fetchall()
    python = {name.split("(")[0] for name, language, _, _ in rows if language == "plpython3u"}
    assert {"udf._bar_rows", "udf._garch11_fit", "udf._kernel_loader"} <= python
    calls_python = re.compile("|".join(re.escape(name) + r"\s*\(" for name in python))
    wrongly_safe = [
        name
        for name, language, parallel, source in rows
        if parallel != "u"
        and name.split("(")[0] != "udf.bar_matrices"
        and (language == "plpython3u" or calls_python.search(source))
    ]
    assert wrongly_safe == []
    labels = {name.split("(")[0]: parallel for name, _, parallel, _ in rows}
    assert labels["udf.bar_matrices"] == "s"
    assert labels["udf.float8_rows"] == "s"  # a C function, still parallel safe


def test_a_kernel_in_a_parallel_query_runs_serially(forced: psycopg.Connection) -> None:
    plan = "\n".join(r[0] for r in forced.execute(f"explain select {SPECTRUM}").fetchall())
    assert "Gather" not in plan
    row = forced.execute(f"select {SPECTRUM}").fetchone()
    assert row is not None and row[0] is not None


def test_bar_matrices_runs_kernels_in_a_parallel_worker(forced: psycopg.Connection) -> None:
    plan = "\n".join(
        r[0]
        for r in forced.execute(
            "explain (analyze, costs off, timing off) " + BAR_MATRICES, (FAST_QUERY,)
        ).fetchall()
    )
    assert "Workers Launched: 1" in plan, plan
    in_worker = forced.execute(BAR_MATRICES, (FAST_QUERY,)).fetchall()
    forced.execute("set force_parallel_mode = off")
    leader = forced.execute(BAR_MATRICES, (FAST_QUERY,)).fetchall()
    serial = forced.execute(f"select {SPECTRUM}::text").fetchall()
    assert in_worker == leader == serial


def test_statement_timeout_stops_a_kernel_in_a_parallel_worker(
    migrated_db: str, forced: psycopg.Connection
) -> None:
    started_at = server_start(forced)
    forced.execute(BAR_MATRICES, (FAST_QUERY,))  # a worker loads the modules in any case
    forced.execute("set statement_timeout = '2s'")
    started = time.perf_counter()
    with pytest.raises(psycopg.errors.QueryCanceled) as caught:
        forced.execute(BAR_MATRICES, (SLOW_QUERY,))
    elapsed = time.perf_counter() - started
    assert caught.value.sqlstate == "57014"
    assert "canceling statement due to statement timeout" in str(caught.value)
    assert elapsed < 3.5
    forced.execute("reset statement_timeout")
    assert forced.execute("select 1").fetchone() == (1,)
    assert_server_runs(migrated_db, started_at)


def test_a_cancel_stops_a_kernel_in_a_parallel_worker(migrated_db: str) -> None:
    """pg_cancel_backend on the leader: it stops its workers, whose kernels notice."""
    with (
        psycopg.connect(migrated_db, autocommit=True) as admin,
        psycopg.connect(migrated_db, autocommit=True) as session,
    ):
        started_at = server_start(admin)
        session.execute("set force_parallel_mode = on")
        row = session.execute("select pg_backend_pid()").fetchone()
        assert row is not None
        pid = row[0]
        outcome: dict[str, object] = {}

        def run() -> None:
            try:
                session.execute(BAR_MATRICES, (SLOW_QUERY,))
            except psycopg.Error as exc:  # the thread reports; the test asserts
                outcome["error"] = exc
            outcome["ended"] = time.perf_counter()

        thread = threading.Thread(target=run)
        thread.start()
        deadline = time.perf_counter() + 20
        while time.perf_counter() < deadline:  # a parallel worker of the session is in the kernel
            workers = admin.execute(
                "select count(*) from pg_stat_activity where leader_pid = %s and pid <> %s",
                (pid, pid),
            ).fetchone()
            if workers is not None and workers[0] > 0:
                break
            time.sleep(0.05)
        time.sleep(1.0)
        assert thread.is_alive()
        asked = time.perf_counter()
        assert admin.execute("select pg_cancel_backend(%s)", (pid,)).fetchone() == (True,)
        thread.join(10)
        if thread.is_alive():
            thread.join(300)
            raise AssertionError("the kernel in the parallel worker did not stop within 10 s")
        error = outcome.get("error")
        assert isinstance(error, psycopg.errors.QueryCanceled), error
        assert float(outcome["ended"]) - asked < 1.5  # type: ignore[arg-type]
        assert session.execute("select 1").fetchone() == (1,)
        assert_server_runs(migrated_db, started_at)
