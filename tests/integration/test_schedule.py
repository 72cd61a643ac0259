"""`call features.refresh()` and `tickfeatures schedule`: one refresh at a time, failures logged
and retried, stale procedures reported, and a pg_cron job every second that keeps features
current. (That the procedures give the rows `tickfeatures refresh` gives is the "procedures"
chunking of test_chunking.py.)
"""

from __future__ import annotations

import itertools
import re
import threading
import time

import psycopg
import pytest

from tests.conftest import ROOT, FreshDatabase, Processes, run_cli

pytestmark = [pytest.mark.integration, pytest.mark.slow]

LOCK = "select pg_advisory_lock(hashtextextended('tickfeatures:refresh', 0))"
UNLOCK = "select pg_advisory_unlock(hashtextextended('tickfeatures:refresh', 0))"
# every model of these folders is incremental (dbt_project.yml), so each gets a procedure
INCREMENTAL = sorted(
    path.stem
    for folder in ("l2", "targets", "heavy", "bars", "bar", "bar_k14")
    for path in (ROOT / "models" / folder).glob("*.sql")
)


@pytest.fixture(scope="module")
def installed(databases: FreshDatabase, tmp_path_factory: pytest.TempPathFactory) -> dict:
    tmp = tmp_path_factory.mktemp("schedule")
    files = []
    for i in range(4):
        path = tmp / f"minute{i}.csv"
        start = f"2026-01-05T09:{4 + i:02d}:00+00:00"
        minutes = "4" if i == 0 else "1"
        if i == 0:
            start = "2026-01-05T09:00:00+00:00"
        run_cli(
            "generate", "l2", "--out", str(path), "--minutes", minutes, "--start", start,
            "--seed", str(i),
        )  # fmt: skip
        files.append(path)
    url = databases.create("tf_schedule")
    run_cli("migrate", dsn=url)
    run_cli("load", "l2", str(files[0]), dsn=url)
    installed = run_cli("schedule", "install", dsn=url)
    return {"url": url, "files": files[1:], "install": installed.stdout}


def _runs(url: str, since_id: int = 0) -> list[tuple]:
    with psycopg.connect(url) as conn:
        return conn.execute(
            "select model, status, error, started_at, finished_at from ops.refresh_runs"
            " where run_id > %s and via = 'procedure' order by run_id",
            (since_id,),
        ).fetchall()


def _last_run_id(url: str) -> int:
    with psycopg.connect(url) as conn:
        return conn.execute("select coalesce(max(run_id), 0) from ops.refresh_runs").fetchone()[0]  # type: ignore[index]


def test_install_lists_every_incremental_model_in_order(installed: dict) -> None:
    with psycopg.connect(installed["url"]) as conn:
        order = [
            m for (m,) in conn.execute("select model from ops.refresh_procedures order by position")
        ]
    assert f"installed {len(INCREMENTAL)} refresh procedures" in installed["install"]
    assert sorted(order) == INCREMENTAL
    assert order.index("ofi") < order.index("flow")
    assert order.index("mid_bars_1s") < min(order.index(m) for m in ("hht", "garch", "wavelet"))
    # through views too: stg_bars_1m reads bars_1m_l2, so everything reading the staged bars
    # runs after it (bars_1m_final once ran first, and lagged a refresh behind)
    for model in ("bars_1m_final", "bars_30m", "time_features", "technical_rate"):
        assert order.index("bars_1m_l2") < order.index(model), model
    assert order.index("bars_1m_final") < order.index("bars_30m") < order.index("multi_scale")


def test_no_stored_sql_names_the_database(installed: dict) -> None:
    """The procedures and the latest-vector functions run later, in whatever the database is
    called then (restored under another name, renamed, copied from a template): their bodies
    name schemas, never the database."""
    with psycopg.connect(installed["url"]) as conn:
        naming = conn.execute(
            "select p.oid::regprocedure::text from pg_proc p"
            " join pg_namespace n on n.oid = p.pronamespace"
            " where n.nspname in ('features', 'udf', 'ops', 'quality')"
            " and strpos(p.prosrc, '\"' || current_database() || '\".') > 0"
        ).fetchall()
        stored = conn.execute(
            "select count(*) from pg_proc p join pg_namespace n on n.oid = p.pronamespace"
            " where n.nspname = 'features' and p.proname ~ '^(refresh_|latest_)'"
        ).fetchone()[0]  # type: ignore[index]
    assert naming == []
    assert stored > len(INCREMENTAL)


def test_a_refresh_that_finds_another_running_returns_at_once(
    installed: dict, processes: Processes
) -> None:
    url = installed["url"]
    before = _last_run_id(url)
    with psycopg.connect(url, autocommit=True) as holder:
        holder.execute(LOCK)
        started = time.monotonic()
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("call features.refresh()")
        took = time.monotonic() - started
        # the CLI waits for it instead, and says so
        cli = processes.cli("refresh", "--select", "book_pressure", dsn=url)
        time.sleep(4)
        waiting = cli.poll() is None
        holder.execute(UNLOCK)
    out, err = cli.communicate(timeout=120)
    assert took < 1.0
    assert _runs(url, before)[:1] == [
        ("refresh()", "skipped", "another refresh was running", *_runs(url, before)[0][3:])
    ]
    assert waiting and cli.returncode == 0, err
    assert "waiting for the refresh already running" in out


def test_overlapping_calls_never_run_at_once(installed: dict) -> None:
    url = installed["url"]
    run_cli("load", "l2", str(installed["files"][0]), dsn=url)
    before = _last_run_id(url)
    errors: list[str] = []

    def call() -> None:
        try:
            with psycopg.connect(url, autocommit=True) as conn:
                conn.execute("call features.refresh()")
        except psycopg.Error as exc:
            errors.append(str(exc))

    threads = [threading.Thread(target=call) for _ in range(3)]
    for thread in threads:
        thread.start()
        time.sleep(0.2)
    for thread in threads:
        thread.join()
    runs = _runs(url, before)
    whole = [r for r in runs if r[0] == "refresh()"]
    assert errors == []
    assert sorted(r[1] for r in whole) == ["skipped", "skipped", "success"], whole
    models = [r for r in runs if r[0] != "refresh()"]
    assert sorted(r[0] for r in models) == INCREMENTAL and {r[1] for r in models} == {"success"}
    # the models ran one after the other, never two at once
    spans = sorted((r[3], r[4]) for r in models)
    assert all(a[1] <= b[0] for a, b in itertools.pairwise(spans))


def test_a_failing_model_is_logged_the_ones_reading_it_skipped_and_the_next_run_retries(
    installed: dict,
) -> None:
    url = installed["url"]
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            "create function public.refuse() returns trigger language plpgsql as"
            " $$ begin raise exception 'ofi refused this row'; end $$"
        )
        conn.execute(
            "create trigger refuse before insert on features.ofi"
            " for each row execute function public.refuse()"
        )
    run_cli("load", "l2", str(installed["files"][1]), dsn=url)
    before = _last_run_id(url)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("call features.refresh()")
    status = {model: (state, error) for model, state, error, *_ in _runs(url, before)}
    assert status["ofi"] == ("failed", "ofi refused this row")
    assert status["flow"] == ("skipped", "a model it reads failed: ofi")
    assert status["microstructure"] == ("success", None)
    assert status["refresh()"][0] == "failed"
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("drop trigger refuse on features.ofi")
        retry = _last_run_id(url)
        conn.execute("call features.refresh()")
        missing = conn.execute(
            "select count(*) from market.l2_snapshots s where not exists"
            " (select from features.flow f where f.symbol = s.symbol and f.ts = s.ts)"
        ).fetchone()[0]  # type: ignore[index]
    status = {model: state for model, state, *_ in _runs(url, retry)}
    assert status["ofi"] == status["flow"] == status["refresh()"] == "success"
    assert missing == 0


def test_stale_procedures_are_reported_and_reinstalled(installed: dict) -> None:
    url = installed["url"]
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("update ops.refresh_procedures set project_checksum = 'an older project'")
    refreshed = run_cli("refresh", "--select", "book_pressure", dsn=url)
    assert "procedures of `call features.refresh()` are stale" in refreshed.stdout
    assert "are stale" in run_cli("schedule", "status", dsn=url).stdout
    run_cli("schedule", "install", dsn=url)
    assert "are stale" not in run_cli("schedule", "status", dsn=url).stdout


def test_every_second_keeps_the_features_current(installed: dict) -> None:
    url = installed["url"]
    before = _last_run_id(url)
    scheduled = run_cli("schedule", "every", "1s", dsn=url)
    assert "at '1 seconds'" in scheduled.stdout
    try:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(
                "insert into market.l2_snapshots (symbol, ts, bid_price_1, bid_size_1,"
                " ask_price_1, ask_size_1) values ('EURUSD', '2026-01-05 10:00:00+00', 1.1,"
                " 1, 1.2, 1)"
            )
            # pg_cron starts the job within a second; the run itself may queue behind the other
            # test workers' builds on a loaded 2-core machine (a CI run once took over 30 s)
            deadline = time.monotonic() + 180
            while time.monotonic() < deadline:
                done = conn.execute(
                    "select exists (select from features.l2_features where symbol = 'EURUSD'"
                    " and ts = '2026-01-05 10:00:00+00')"
                ).fetchone()[0]  # type: ignore[index]
                if done:
                    break
                time.sleep(0.5)
            # the run that wrote it goes on through the bar families: wait for it to end
            while time.monotonic() < deadline:
                ended = conn.execute(
                    "select exists (select from ops.refresh_runs where model = 'refresh()'"
                    " and status = 'success' and run_id > %s)",
                    (before,),
                ).fetchone()[0]  # type: ignore[index]
                if ended:
                    break
                time.sleep(0.5)
        status = run_cli("schedule", "status", dsn=url).stdout
        runs = _runs(url, before)
    finally:
        off = run_cli("schedule", "off", dsn=url)
    assert done, (
        f"the scheduled refresh did not reach the new snapshot within 180 s: {runs}\n{status}"
    )
    assert "at '1 seconds' (active)" in status
    assert "succeeded" in status, status
    # staleness: the families are current; bar models are stamped at their bucket's start
    assert re.search(r"^\s+microstructure\s+0\.0 s\s+refreshed", status, re.M), status
    assert re.search(r"^\s+bars_30m\s+bars\s+refreshed", status, re.M), status
    assert "unscheduled" in off.stdout
    assert "no schedule for" in run_cli("schedule", "status", dsn=url).stdout


def test_schedule_every_refuses_what_is_not_a_schedule(installed: dict) -> None:
    for bad in ("90s", "soon", "0s"):
        result = run_cli("schedule", "every", bad, dsn=installed["url"], check=False)
        assert result.returncode == 1
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr
