"""`tickfeatures schedule`: refresh inside the database, on a pg_cron schedule, with no dbt.

`install` compiles every incremental model into a procedure features.refresh_<model>() (a dbt
run of the project's incremental materialization in its compile mode, macros/materializations/
compile_refresh_procedure.sql) and orders them for `call features.refresh()` (migration
0017). `every` registers a pg_cron job that calls it; `off` removes the job; `status` shows
the job, its last runs and how far behind each model is.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from tickfeatures import config, db
from tickfeatures.dbt import run_dbt
from tickfeatures.errors import TickfeaturesError
from tickfeatures.refresh import check_migrated, project_checksum, refresh, stale_procedures

COMMAND = "call features.refresh()"
PURGE_JOB = "tickfeatures: purge cron.job_run_details"
PURGE_COMMAND = "delete from cron.job_run_details where end_time < now() - interval '7 days'"


def job_name(database: str) -> str:
    return f"tickfeatures: refresh {database}"


# -- install ----------------------------------------------------------------------------------


def _order(models: dict[str, list[str]]) -> list[str]:
    """The models so that each comes after the models it reads (names break ties)."""
    done: list[str] = []
    pending = dict(models)
    while pending:
        ready = sorted(m for m, reads in pending.items() if not set(reads) & set(pending))
        if not ready:
            raise TickfeaturesError(f"the models read each other in a cycle: {sorted(pending)}")
        done += ready
        for m in ready:
            del pending[m]
    return done


def install(
    select: list[str] | None = None,
    refresh_first: bool = True,
    say: Callable[[str], None] = print,
) -> list[str]:
    """Bring the database up to date (unless the caller just did), compile the procedures and
    order them. `select` (dbt selectors) limits both to some models (the bench leaves the
    heavy families out)."""
    if refresh_first:
        refresh(select=select, say=say)
    with db.connect(autocommit=True) as conn:
        since = conn.execute("select clock_timestamp()").fetchone()[0]  # type: ignore[index]
    incremental = "config.materialized:incremental"
    result = run_dbt(
        [
            "run",
            "--select",
            *([f"{s},{incremental}" for s in select] if select else [incremental]),
            "--vars",
            json.dumps({"tf_compile_procedures": True}),
            "--threads",
            "4",
            "--no-write-json",
            "--quiet",
        ]
    )
    if result.returncode != 0:
        raise TickfeaturesError("schedule install failed: dbt could not compile the procedures")
    with db.connect() as conn:
        # models that are no longer incremental models of the project
        for (procedure,) in conn.execute(
            "delete from ops.refresh_procedures where installed_at < %s and %s returning procedure",
            (since, select is None),
        ).fetchall():
            conn.execute(sql.SQL("drop procedure if exists {}()").format(sql.SQL(procedure)))
        reads = dict(conn.execute("select model, depends_on from ops.refresh_procedures"))
        order = _order({m: [r for r in rs if r in reads] for m, rs in reads.items()})
        for position, model in enumerate(order):
            conn.execute(
                "update ops.refresh_procedures set position = %s, project_checksum = %s"
                " where model = %s",
                (position, project_checksum(), model),
            )
    say(f"installed {len(order)} refresh procedures for `{COMMAND}`: {', '.join(order)}")
    return order


# -- pg_cron ----------------------------------------------------------------------------------

_UNITS = {"s": "seconds", "sec": "seconds", "second": "seconds", "seconds": "seconds"}
_UNITS |= {"m": "minutes", "min": "minutes", "minute": "minutes", "minutes": "minutes"}
_UNITS |= {"h": "hours", "hour": "hours", "hours": "hours"}


def cron_schedule(interval: str) -> str:
    """pg_cron's schedule for `10s`, `1m`, `5 minutes`, `2h`, or a cron expression as is."""
    text = interval.strip()
    match = re.fullmatch(r"(\d+)\s*([a-z]+)", text.lower())
    if match and match[2] in _UNITS:
        n, unit = int(match[1]), _UNITS[match[2]]
        if unit == "seconds":
            if not 1 <= n <= 59:
                raise TickfeaturesError(f"{interval!r}: pg_cron runs every 1 to 59 seconds")
            return f"{n} seconds"
        if unit == "minutes":
            if not 1 <= n <= 59:
                raise TickfeaturesError(f"{interval!r}: write 1 to 59 minutes, or hours")
            return "* * * * *" if n == 1 else f"*/{n} * * * *"
        if not 1 <= n <= 23:
            raise TickfeaturesError(f"{interval!r}: write 1 to 23 hours, or a cron expression")
        return "0 * * * *" if n == 1 else f"0 */{n} * * *"
    if re.fullmatch(r"@[a-z]+", text) or (
        len(text.split()) == 5 and all(re.fullmatch(r"[0-9A-Za-z*/,\-]+", f) for f in text.split())
    ):
        return text
    raise TickfeaturesError(
        f"{interval!r} is not a schedule: write 10s, 1m, 5m, 2h or a cron expression"
        " such as '*/5 * * * *'"
    )


@dataclass(frozen=True)
class Cron:
    """pg_cron as seen from the features database."""

    database: str  # the features database
    cron_database: str  # where pg_cron lives (cron.database_name)
    url: str  # a connection to cron_database, same server and role
    version: str


def cron(conn: psycopg.Connection) -> Cron:
    row = conn.execute(
        "select current_database(), current_setting('cron.database_name', true)"
    ).fetchone()
    database, cron_database = row if row else (None, None)
    if not cron_database:
        raise TickfeaturesError(
            "pg_cron is not loaded on this server (shared_preload_libraries = 'pg_cron' and"
            " cron.database_name); the embedded cluster has it"
        )
    params = conninfo_to_dict(conn.info.dsn)
    params["password"] = conninfo_to_dict(config.active_database().url).get("password")
    params = {k: v for k, v in params.items() if v is not None}
    url = make_conninfo("", **{**params, "dbname": cron_database})
    with db.connect(url, autocommit=True) as cron_conn:
        try:
            cron_conn.execute("create extension if not exists pg_cron")
        except psycopg.errors.InsufficientPrivilege:
            raise TickfeaturesError(
                f"the pg_cron extension is not created in {cron_database} (cron.database_name)"
                " and this role may not create it: ask a superuser for `create extension"
                " pg_cron` there"
            ) from None
        version = cron_conn.execute(
            "select extversion from pg_extension where extname = 'pg_cron'"
        ).fetchone()
    if not version:
        raise TickfeaturesError(f"the pg_cron extension could not be created in {cron_database}")
    return Cron(str(database), str(cron_database), url, version[0])


def _seconds_supported(version: str) -> bool:
    major, minor = (int(x) for x in version.split(".")[:2])
    return (major, minor) >= (1, 5)


def every(interval: str, say: Callable[[str], None] = print) -> int:
    """Schedule `call features.refresh()` every `interval`; installs the procedures if none."""
    schedule = cron_schedule(interval)
    with db.connect(autocommit=True) as conn:
        check_migrated(conn)
        target = cron(conn)
        installed = conn.execute("select count(*) from ops.refresh_procedures").fetchone()[0]  # type: ignore[index]
        stale = stale_procedures(conn)
    if schedule.endswith("seconds") and not _seconds_supported(target.version):
        raise TickfeaturesError(
            f"pg_cron {target.version} cannot run every few seconds (1.5 and later can);"
            " `make install` builds 1.6.5"
        )
    # pg_cron's own check of the schedule, in a transaction rolled back: a schedule it refuses
    # must not cost an install first
    with db.connect(target.url) as trial:
        try:
            trial.execute(
                "select cron.schedule(%s, %s, %s)", ("tickfeatures-trial", schedule, COMMAND)
            )
        except psycopg.Error as exc:
            reason = (exc.diag.message_primary or str(exc)).strip()
            raise TickfeaturesError(
                f"{interval!r} is not a schedule pg_cron accepts: {reason}"
            ) from None
        finally:
            trial.rollback()
    if not installed or stale:
        install(say=say)
    with db.connect(target.url, autocommit=True) as cron_conn:
        if target.cron_database == target.database:
            job = cron_conn.execute(
                "select cron.schedule(%s, %s, %s)", (job_name(target.database), schedule, COMMAND)
            ).fetchone()[0]  # type: ignore[index]
        else:
            job = cron_conn.execute(
                "select cron.schedule_in_database(%s, %s, %s, %s)",
                (job_name(target.database), schedule, COMMAND, target.database),
            ).fetchone()[0]  # type: ignore[index]
        cron_conn.execute("select cron.schedule(%s, '17 3 * * *', %s)", (PURGE_JOB, PURGE_COMMAND))
    say(f"scheduled `{COMMAND}` in {target.database} at '{schedule}' (pg_cron job {job})")
    return 0


def off(say: Callable[[str], None] = print) -> int:
    with db.connect(autocommit=True) as conn:
        target = cron(conn)
    with db.connect(target.url, autocommit=True) as cron_conn:
        jobs = cron_conn.execute(
            "select jobid from cron.job where jobname = %s", (job_name(target.database),)
        ).fetchall()
        for (jobid,) in jobs:
            cron_conn.execute("select cron.unschedule(%s::bigint)", (jobid,))
    say(f"unscheduled the refresh of {target.database}" if jobs else "no refresh was scheduled")
    return 0


# -- status -----------------------------------------------------------------------------------


def status(say: Callable[[str], None] = print) -> int:
    with db.connect(autocommit=True) as conn:
        conn.execute("set timezone = 'UTC'")
        check_migrated(conn)
        target = cron(conn)
        procedures = conn.execute(
            "select count(*), max(installed_at) from ops.refresh_procedures"
        ).fetchone()
        stale = stale_procedures(conn)
        runs = conn.execute(
            "select started_at, status, duration_ms, error from ops.refresh_runs"
            " where model = 'refresh()' order by run_id desc limit 5"
        ).fetchall()
        behind = conn.execute(BEHIND).fetchall()
    with db.connect(target.url, autocommit=True) as cron_conn:
        cron_conn.execute("set timezone = 'UTC'")
        job = cron_conn.execute(
            "select jobid, schedule, active from cron.job where jobname = %s",
            (job_name(target.database),),
        ).fetchone()
        details = (
            cron_conn.execute(
                "select start_time, end_time, status, return_message from cron.job_run_details"
                " where jobid = %s order by runid desc limit 5",
                (job[0],),
            ).fetchall()
            if job
            else []
        )
    say(f"pg_cron {target.version} in {target.cron_database}")
    if job:
        state = "active" if job[2] else "inactive"
        say(f"job {job[0]}: `{COMMAND}` in {target.database} at '{job[1]}' ({state})")
    else:
        say(f"no schedule for {target.database} (`tickfeatures schedule every 10s`)")
    count, when = procedures if procedures else (0, None)
    say(
        f"procedures: {count} installed {when:%Y-%m-%d %H:%M:%S} UTC"
        if count
        else "procedures: none (`tickfeatures schedule install`)"
    )
    if stale:
        say(f"  {stale}")
    if details:
        say("last pg_cron runs:")
        for start, end, state, message in details:
            took = f"{(end - start).total_seconds():.2f} s" if start and end else "running"
            say(f"  {start:%H:%M:%S} {state:10s} {took:>9s}  {(message or '').strip()[:100]}")
    if runs:
        say("last `call features.refresh()` runs (ops.refresh_runs):")
        for start, state, ms, error in runs:
            took = f"{ms / 1000:.2f} s" if ms is not None else "-"
            say(f"  {start:%H:%M:%S} {state:8s} {took:>9s}  {error or ''}")
    if behind:
        say("staleness (the newest snapshot less the model's newest row, worst symbol):")
        width = max(16, *(len(model) for model, _, _ in behind))
        for model, lag, refreshed in behind:
            if model.startswith("bars_"):
                lag_text = "bars"  # stamped at their bucket's start
            else:
                lag_text = f"{lag.total_seconds():.1f} s" if lag is not None else "no rows"
            say(f"  {model:{width}s} {lag_text:>10s}  refreshed {refreshed:%H:%M:%S}")
    return 0


# Per model: the newest snapshot of each symbol less the model's newest row of it, the worst
# symbol; index lookups per symbol (a loose scan lists them), never a scan of the history.
BEHIND = """
with recursive symbols as (
    (select symbol from market.l2_snapshots order by symbol limit 1)
    union all
    select (select s.symbol from market.l2_snapshots as s where s.symbol > symbols.symbol
            order by s.symbol limit 1)
    from symbols where symbols.symbol is not null
),
newest as (
    select symbols.symbol,
        (select max(s.ts) from market.l2_snapshots as s where s.symbol = symbols.symbol) as ts
    from symbols where symbols.symbol is not null
)
select state.model,
    -- a heavy family's stamp is the end of a 1-second bar, up to a second after the snapshot;
    -- a bar model's is its bucket's start (the current one included): no staleness to tell
    case when left(state.model, 5) <> 'bars_' then
        (select greatest(max(newest.ts - ops.newest_row(state.model, newest.symbol)), interval '0')
         from newest)
    end,
    state.refreshed_at
from ops.refresh_state as state
where state.kind = 'l2'
order by state.model
"""
