"""`tickfeatures refresh`: bring a migrated database, however new, to a complete and current
state (reference data, staging, every feature family, every mart and view), incrementally
after the first time.

One `dbt build` of the seeds and models (no data tests): a database that has never seen dbt
gets everything; afterwards the incremental models compute only what the writes since their
last run change (ops.invalidations, migration 0014), the views are replaced in place and the
seeds reloaded. `--full` rebuilds every relation beside the old one and swaps it in, so
readers never meet a missing relation (macros/materializations/).
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

import psycopg

from tickfeatures import config, db, migrate
from tickfeatures.dbt import run_dbt
from tickfeatures.errors import TickfeaturesError


@dataclass(frozen=True)
class ModelRun:
    model: str
    mode: str
    window_start: datetime | None
    rows: int
    seconds: float


def check_migrated(conn: psycopg.Connection) -> None:
    """A one-line error unless every migration of the project is applied."""
    states = migrate.status(conn, config.project_root() / "migrations")
    edited = [st.migration.path.name for st in states if st.state.startswith("EDITED")]
    if edited:
        raise TickfeaturesError(
            f"migration {edited[0]} was edited after it was applied to this database;"
            " `tickfeatures migrate --status` lists the migrations"
        )
    pending = [st.migration.path.name for st in states if st.state == "pending"]
    if pending:
        raise TickfeaturesError(
            f"the database is not migrated ({len(pending)} of {len(states)} migrations not"
            f" applied, first {pending[0]}); run `tickfeatures migrate` first"
        )


def dbt_arguments(
    *, full: bool, select: Sequence[str] | None, threads: int, verbose: bool
) -> list[str]:
    """The `dbt build` that refreshes: seeds and models, no data tests."""
    args = ["build", "--resource-type", "seed", "--resource-type", "model"]
    if select:
        # the reference data the models read come along with any selection
        args += ["--select", *select, "resource_type:seed"]
    args += [
        "--threads",
        str(threads),
        # the refresh reports from ops.refresh_runs; rewriting manifest.json and
        # run_results.json would add ~0.3 s to every refresh (`tickfeatures dbt` writes them)
        "--no-write-json",
    ]
    if full:
        args.append("--full-refresh")
    if not verbose:
        args.append("--quiet")
    return args


# The CPU priority of a refresh (dbt's process; its sessions take the dbt var refresh_nice,
# default the same 10): readers of the features keep their latency while it runs.
REFRESH_NICE = 10

# The lock features.refresh() takes (migration 0017): one refresh at a time, whoever runs it.
LOCK = "select pg_advisory_lock(hashtextextended('tickfeatures:refresh', 0))"
TRY_LOCK = "select pg_try_advisory_lock(hashtextextended('tickfeatures:refresh', 0))"


def refresh(
    *,
    full: bool = False,
    select: Sequence[str] | None = None,
    threads: int = 4,
    verbose: bool = False,
    say: Callable[[str], None] = print,
) -> list[ModelRun]:
    """Run the refresh; report each incremental model's run; raise on failure.

    Holds the refresh lock on a connection of its own while dbt runs, so that a scheduled
    `call features.refresh()` meanwhile returns at once, and this waits for one running."""
    with db.connect(autocommit=True) as conn:
        check_migrated(conn)
        if not conn.execute(TRY_LOCK).fetchone()[0]:  # type: ignore[index]
            say("refresh: waiting for the refresh already running ...")
            conn.execute(LOCK)
        since = conn.execute("select clock_timestamp()").fetchone()[0]  # type: ignore[index]
        started = time.perf_counter()
        # dbt's own Python at the priority its models' sessions take (refresh_begin)
        result = run_dbt(
            dbt_arguments(full=full, select=select, threads=threads, verbose=verbose),
            nice=REFRESH_NICE,
        )
        if result.returncode != 0:
            raise TickfeaturesError(
                "refresh failed: dbt build did not complete (see its output above)"
            )
        elapsed = time.perf_counter() - started
        rows = conn.execute(
            "select distinct on (model) model, mode, window_start, rows, duration_ms"
            " from ops.refresh_runs where started_at >= %s and via = 'dbt'"
            " order by model, run_id desc",
            (since,),
        ).fetchall()
        stale = stale_procedures(conn)
    runs = [ModelRun(m, mode, w, n, ms / 1000) for m, mode, w, n, ms in rows]
    for run in sorted(runs, key=lambda r: r.model):
        if run.mode == "full":
            detail = "rebuilt"
        elif run.mode == "continuous":
            detail = "continuous aggregate, refreshed"
        elif run.window_start is None:
            detail = "nothing new"
        else:
            detail = f"from {run.window_start}"
        say(f"{run.model:16s} {run.rows:>10} rows  {detail}  ({run.seconds:.2f} s in SQL)")
    say(f"refresh: {'full' if full else 'incremental'}, {elapsed:.1f} s wall")
    if stale:
        say(f"note: {stale}")
    return runs


def project_checksum() -> str:
    """sha256 of what compiles into the refresh procedures: the model, macro and seed files
    and dbt_project.yml (names and contents)."""
    root = config.project_root()
    digest = hashlib.sha256()
    files = [root / "dbt_project.yml"]
    for folder in ("models", "macros", "seeds"):
        files += sorted(p for p in (root / folder).rglob("*") if p.is_file())
    for path in files:
        digest.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def stale_procedures(conn: psycopg.Connection) -> str | None:
    """Why the installed refresh procedures no longer match the project, or None."""
    installed = conn.execute(
        "select count(*), min(project_checksum), max(project_checksum) from ops.refresh_procedures"
    ).fetchone()
    if not installed or not installed[0]:
        return None
    if installed[1] == installed[2] == project_checksum():
        return None
    return (
        "the refresh procedures of `call features.refresh()` are stale: the models changed"
        " since `tickfeatures schedule install`; run it again"
    )
