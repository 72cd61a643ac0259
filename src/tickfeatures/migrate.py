"""Numbered SQL migrations: each file applied once, in a transaction, recorded with its checksum.

Our own few lines rather than a library: the rules we need (ordered files, one transaction
each, checksum refusal of edited files, a lock against concurrent runs) fit in this module,
and it adds no dependency that a remote server's users would have to trust.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

import psycopg

from tickfeatures.errors import TickfeaturesError

FILE_PATTERN = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")
LOCK_KEY = 7_135_512_001  # pg_advisory_xact_lock key for migrations

LEDGER_DDL = """
create schema if not exists ops;
create table if not exists ops.schema_migrations (
    version integer primary key,
    name text not null,
    checksum text not null,
    applied_at timestamptz not null default now()
);
"""


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    path: Path

    @property
    def sql(self) -> str:
        return self.path.read_text()

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.path.read_bytes()).hexdigest()


@dataclass(frozen=True)
class MigrationState:
    migration: Migration
    applied_checksum: str | None

    @property
    def state(self) -> str:
        if self.applied_checksum is None:
            return "pending"
        if self.applied_checksum != self.migration.checksum:
            return "EDITED after it was applied"
        return "applied"


def discover(directory: Path) -> list[Migration]:
    if not directory.is_dir():
        raise TickfeaturesError(f"migrations directory {directory} does not exist")
    found: dict[int, Migration] = {}
    for path in sorted(directory.iterdir()):
        if path.suffix != ".sql":
            continue
        match = FILE_PATTERN.match(path.name)
        if not match:
            raise TickfeaturesError(
                f"migration file {path.name} is not named NNNN_lowercase_name.sql"
            )
        version = int(match.group(1))
        if version in found:
            raise TickfeaturesError(
                f"two migrations share number {version}: {found[version].path.name}, {path.name}"
            )
        found[version] = Migration(version, match.group(2), path)
    return [found[v] for v in sorted(found)]


def _applied(conn: psycopg.Connection) -> dict[int, str]:
    rows = conn.execute("select version, checksum from ops.schema_migrations").fetchall()
    return {version: checksum for version, checksum in rows}


def status(conn: psycopg.Connection, directory: Path) -> list[MigrationState]:
    """Each migration's state; reads only (a database without the ledger has none applied),
    so a role that may not create anything (tickfeatures_writer, _reader) can ask."""
    row = conn.execute("select to_regclass('ops.schema_migrations') is not null").fetchone()
    applied = _applied(conn) if row is not None and row[0] else {}
    return [MigrationState(m, applied.get(m.version)) for m in discover(directory)]


def apply(conn: psycopg.Connection, directory: Path) -> list[Migration]:
    """Apply every pending migration in order; refuse if an applied file was edited."""
    migrations = discover(directory)
    done: list[Migration] = []
    with conn.transaction():
        conn.execute(LEDGER_DDL)
    for migration in migrations:
        with conn.transaction():
            conn.execute("select pg_advisory_xact_lock(%s)", (LOCK_KEY,))
            applied = _applied(conn)
            if migration.version in applied:
                if applied[migration.version] != migration.checksum:
                    raise TickfeaturesError(
                        f"migration {migration.path.name} was edited after it was applied "
                        f"(checksum {applied[migration.version][:12]} in the database, "
                        f"{migration.checksum[:12]} on disk); add a new migration instead"
                    )
                continue
            try:
                conn.execute(migration.sql)  # type: ignore[arg-type]
            except psycopg.Error as exc:
                message = str(exc).strip().splitlines()[0] if str(exc).strip() else repr(exc)
                raise TickfeaturesError(
                    f"migration {migration.path.name} failed and was rolled back: {message}"
                ) from None
            conn.execute(
                "insert into ops.schema_migrations (version, name, checksum) values (%s, %s, %s)",
                (migration.version, migration.name, migration.checksum),
            )
            done.append(migration)
    return done


def python_modules(directory: Path) -> dict[str, str]:
    """The kernel modules (python_udfs/tf_*.py) by module name, with their source."""
    return {path.stem: path.read_text() for path in sorted(directory.glob("tf_*.py"))}


def sync_python_modules(conn: psycopg.Connection, directory: Path) -> list[str]:
    """Copy each kernel module whose checksum differs into udf.python_modules.

    The PL/Python functions in schema udf load their code from that table, so the code
    reaches a remote server through SQL. Sessions that already loaded a module keep that
    version until they reconnect. Returns the names written.
    """
    written = []
    with conn.transaction():
        conn.execute("select pg_advisory_xact_lock(%s)", (LOCK_KEY,))
        installed = dict(conn.execute("select name, sha256 from udf.python_modules").fetchall())
        for name, source in python_modules(directory).items():
            checksum = hashlib.sha256(source.encode()).hexdigest()
            if installed.get(name) == checksum:
                continue
            conn.execute(
                "insert into udf.python_modules (name, source, sha256) values (%s, %s, %s)"
                " on conflict (name) do update set source = excluded.source,"
                " sha256 = excluded.sha256, installed_at = now()",
                (name, source, checksum),
            )
            written.append(name)
    return written
