"""`tickfeatures status`: what the active database holds, one plain-text section per topic.

Each section is a function of a connection returning its lines; `SECTIONS` lists them in the
order they print, so a new topic is one function and one entry. Nothing here writes to the
database, so a read-only role can run it on a server that is not ours.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import psycopg
from psycopg import sql

from tickfeatures import config, db, migrate

# The ledger's statuses, in the order they are listed (migration 0015 adds 'interrupted').
FILE_STATUSES = ("loaded", "salvaged", "failed", "interrupted")

Section = Callable[[psycopg.Connection], list[str]]


def _when(value: datetime | None) -> str:
    if value is None:
        return "-"
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _exists(conn: psycopg.Connection, relation: str) -> bool:
    return conn.execute("select to_regclass(%s) is not null", (relation,)).fetchone() == (True,)


def server(conn: psycopg.Connection) -> list[str]:
    version = conn.execute("select current_setting('server_version')").fetchone()
    extensions = conn.execute(
        "select extname, extversion from pg_extension"
        " where extname in ('timescaledb', 'plpython3u', 'pg_cron') order by extname"
    ).fetchall()
    ext = ", ".join(f"{name} {v}" for name, v in extensions) or "no tickfeatures extensions"
    return [f"PostgreSQL {version[0] if version else '?'}; {ext}"]


def migrations(conn: psycopg.Connection) -> list[str]:
    directory = config.project_root() / "migrations"
    on_disk = migrate.discover(directory)
    applied: dict[int, str] = {}
    if _exists(conn, "ops.schema_migrations"):
        applied = dict(conn.execute("select version, checksum from ops.schema_migrations"))
    pending = [m for m in on_disk if m.version not in applied]
    edited = [m for m in on_disk if m.version in applied and applied[m.version] != m.checksum]
    lines = [f"{len(applied)} applied, {len(pending)} pending (in {_short(directory)})"]
    lines += [f"pending: {m.path.name}" for m in pending]
    lines += [f"EDITED after it was applied: {m.path.name}" for m in edited]
    return lines


def files(conn: psycopg.Connection) -> list[str]:
    if not _exists(conn, "ops.ingest_files"):
        return ["no ingest ledger (run `tickfeatures migrate`)"]
    rows = {
        status: (n, rows_in, loaded, quarantined, duplicate)
        for status, n, rows_in, loaded, quarantined, duplicate in conn.execute(
            "select status, count(*), coalesce(sum(rows_in), 0), coalesce(sum(rows_loaded), 0),"
            " coalesce(sum(rows_quarantined), 0), coalesce(sum(rows_duplicate), 0)"
            " from ops.ingest_files group by status"
        )
    }
    lines = []
    for status in (*FILE_STATUSES, *sorted(set(rows) - set(FILE_STATUSES))):
        n, rows_in, loaded, quarantined, duplicate = rows.get(status, (0, 0, 0, 0, 0))
        line = f"{status:12s} {n:>6,} file{'' if n == 1 else 's'}"
        if status in ("loaded", "salvaged") and n:
            line += (
                f"  {loaded:>12,} rows loaded, {quarantined:,} quarantined,"
                f" {duplicate:,} duplicates skipped ({rows_in:,} rows read)"
            )
        lines.append(line)
    return lines


def data(conn: psycopg.Connection) -> list[str]:
    lines = []
    for table, what in (("market.l2_snapshots", "snapshots"), ("market.bars_1m", "bars")):
        if not _exists(conn, table):
            lines.append(f"{table:20s} missing (run `tickfeatures migrate`)")
            continue
        schema, name = table.split(".")
        n, symbols, first, last = conn.execute(
            sql.SQL("select count(*), count(distinct symbol), min(ts), max(ts) from {}").format(
                sql.Identifier(schema, name)
            )
        ).fetchone()  # type: ignore[misc]
        span = f", {symbols} symbol{'' if symbols == 1 else 's'}, {_when(first)} to {_when(last)}"
        lines.append(f"{table:20s} {n:>12,} {what}{span if n else ''}")
    return lines


def latest_ingest(conn: psycopg.Connection) -> list[str]:
    if not _exists(conn, "ops.ingest_files"):
        return ["none"]
    row = conn.execute(
        "select file_id, file_name, kind, status, rows_loaded, rows_quarantined, rows_duplicate,"
        " coalesce(finished_at, started_at), error"
        " from ops.ingest_files order by coalesce(finished_at, started_at) desc, file_id desc"
        " limit 1"
    ).fetchone()
    if row is None:
        return ["none"]
    file_id, name, kind, status, loaded, quarantined, duplicate, when, error = row
    line = f"{name} ({kind}, file {file_id}): {status} at {_when(when)}"
    if status in ("loaded", "salvaged"):
        line += f", {loaded:,} rows loaded, {quarantined:,} quarantined, {duplicate:,} duplicates"
    lines = [line]
    if error:
        lines.append(f"  {error.splitlines()[0]}")
    return lines


MARTS = ("features.l2_features", "features.heavy_features", "features.feature_catalog")


def refreshes(conn: psycopg.Connection) -> list[str]:
    """Per incremental model: its last refresh and the writes it has not processed yet."""
    if not _exists(conn, "ops.refresh_state"):
        return ["no refresh bookkeeping (run `tickfeatures migrate`)"]
    rows = conn.execute(
        # a model reading both kinds of writes has a row per kind (migration 0021)
        "select state.model, max(state.refreshed_at), count(written.*),"
        " count(distinct written.symbol), min(written.min_ts)"
        " from ops.refresh_state as state"
        " left join ops.invalidations as written"
        "  on written.kind = state.kind and written.xid >= pg_snapshot_xmin(state.seen)"
        "  and not pg_visible_in_snapshot(written.xid, state.seen)"
        " group by state.model order by state.model"
    ).fetchall()
    if not rows:
        return ["never refreshed (run `tickfeatures refresh`)"]
    lines = []
    width = max(16, *(len(row[0]) for row in rows))
    for model, when, writes, symbols, since in rows:
        todo = (
            f"{writes:,} writes to process ({symbols} symbol{'' if symbols == 1 else 's'},"
            f" from {_when(since)})"
            if writes
            else "up to date"
        )
        lines.append(f"{model:{width}s} refreshed {_when(when)}; {todo}")
    absent = [m for m in MARTS if not _exists(conn, m)]
    if absent:
        lines.append(f"missing: {', '.join(absent)} (run `tickfeatures refresh`)")
    return lines


# (title, section) in the order they print; add a topic by adding an entry.
SECTIONS: list[tuple[str, Section]] = [
    ("server", server),
    ("migrations", migrations),
    ("files (ops.ingest_files)", files),
    ("data", data),
    ("latest ingest", latest_ingest),
    ("features (ops.refresh_state)", refreshes),
]


def _short(path: Path) -> str:
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def report(say: Callable[[str], None] = print) -> int:
    active = config.active_database()
    where = "embedded cluster" if active.embedded else f"${config.DSN_ENV}"
    say("database")
    say(f"  {db.redact(active.url)} ({where})")
    with db.connect(autocommit=True) as conn:
        conn.execute("set timezone = 'UTC'")
        for title, section in SECTIONS:
            say("")
            say(title)
            try:
                lines = section(conn)
            except psycopg.errors.InsufficientPrivilege as exc:
                lines = [f"not readable by this role: {exc.diag.message_primary}"]
            for line in lines:
                say(f"  {line}")
    return 0
