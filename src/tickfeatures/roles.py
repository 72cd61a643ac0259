"""`tickfeatures roles install`: the reader and writer roles of ../shared/DESIGN.md (Contract,
Roles), in the database of TICKFEATURES_DSN (or the embedded one).

- tickfeatures_reader: SELECT on market.*, features.*, quality.* (the quality functions are
  SECURITY DEFINER, migration 0029, so their views work without ops.*), the serving functions
  and the udf kernels, TEMP tables (an events table for a training set). No write anywhere, no
  ops.*, nothing permanent: no CREATE on any schema.
- tickfeatures_writer: loads (INSERT/UPDATE/DELETE on market.* and ops.*) and refreshes: it
  owns every relation dbt builds (features, staging, reference) and the functions dbt
  recreates, and may create in those schemas. It does not own market.* or ops.*, so it cannot
  drop them, and cannot create roles.

Both are LOGIN roles. A password is set from TICKFEATURES_READER_PASSWORD and
TICKFEATURES_WRITER_PASSWORD when given, hashed with SCRAM-SHA-256 here (the server never sees
it in clear, so it is in no log); without one the role cannot log in over TCP. Re-running is
safe and also brings objects created since (by the admin) under the same grants; what dbt
creates later as the writer gets the reader's SELECT by default privileges.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any

import psycopg
from psycopg import sql

from tickfeatures import db
from tickfeatures.errors import TickfeaturesError

READER = "tickfeatures_reader"
WRITER = "tickfeatures_writer"
PASSWORD_ENV = {READER: "TICKFEATURES_READER_PASSWORD", WRITER: "TICKFEATURES_WRITER_PASSWORD"}
READ_SCHEMAS = ("market", "features", "quality")
DBT_SCHEMAS = ("features", "staging", "reference")  # dbt_project.yml's schemas
LOAD_SCHEMAS = ("market", "ops")
ATTEMPTS = 3  # an install ended as a deadlock is run again, from the start


def _execute(conn: psycopg.Connection, statement: str, *identifiers: str) -> None:
    """statement with each {} filled by the next identifier, quoted."""
    conn.execute(sql.SQL(statement).format(*(sql.Identifier(i) for i in identifiers)))


def _ensure_role(conn: psycopg.Connection, role: str) -> bool:
    """Create the role (LOGIN, no other attribute) or reset its attributes; True if created."""
    exists = conn.execute("select 1 from pg_roles where rolname = %s", (role,)).fetchone()
    verb = "alter" if exists else "create"
    _execute(
        conn,
        verb + " role {} login nosuperuser nocreatedb nocreaterole noreplication nobypassrls",
        role,
    )
    return not exists


def _set_password(conn: psycopg.Connection, role: str) -> bool:
    password = os.environ.get(PASSWORD_ENV[role])
    if not password:
        return False
    if "\x00" in password:
        raise TickfeaturesError(f"{PASSWORD_ENV[role]} holds a NUL character")
    verifier = conn.pgconn.encrypt_password(password.encode(), role.encode(), b"scram-sha-256")
    conn.execute(
        sql.SQL("alter role {} password {}").format(
            sql.Identifier(role), sql.Literal(verifier.decode())
        )
    )
    return True


def _relations(conn: psycopg.Connection, schemas: tuple[str, ...]) -> list[tuple[str, str, str]]:
    """(schema, name, kind) of the tables, views and materialized views in schemas."""
    return [
        (row[0], row[1], row[2])
        for row in conn.execute(
            """
            select n.nspname, c.relname, c.relkind::text
            from pg_class as c
            inner join pg_namespace as n on c.relnamespace = n.oid
            where n.nspname = any(%s) and c.relkind in ('r', 'p', 'v', 'm')
            """,
            (list(schemas),),
        ).fetchall()
    ]


def _grant_reader(conn: psycopg.Connection, database: str, admin: str) -> None:
    _execute(conn, "grant connect, temporary on database {} to {}", database, READER)
    for schema in (*READ_SCHEMAS, "udf"):
        _execute(conn, "grant usage on schema {} to {}", schema, READER)
    for schema in READ_SCHEMAS:
        _execute(conn, "grant select on all tables in schema {} to {}", schema, READER)
        for owner in (admin, WRITER):
            _execute(
                conn,
                "alter default privileges for role {} in schema {} grant select on tables to {}",
                owner, schema, READER,
            )  # fmt: skip
    # the kernels import their modules from this table, as the caller
    _execute(conn, "grant select on table udf.python_modules to {}", READER)
    # no schema the reader could create in (PostgreSQL 15 already keeps PUBLIC out of public)
    for schema in ("public", *DBT_SCHEMAS, "udf", "market", "ops", "quality"):
        if _schema_exists(conn, schema):
            _execute(conn, "revoke create on schema {} from {}", schema, READER)


def _schema_exists(conn: psycopg.Connection, schema: str) -> bool:
    row = conn.execute("select 1 from pg_namespace where nspname = %s", (schema,)).fetchone()
    return row is not None


def _grant_writer(conn: psycopg.Connection, database: str, admin: str) -> None:
    _execute(conn, "grant connect, temporary on database {} to {}", database, WRITER)
    for schema in DBT_SCHEMAS:
        # dbt creates a schema only when it is missing: create them here, for the writer
        _execute(conn, "create schema if not exists {}", schema)
        _execute(conn, "grant usage, create on schema {} to {}", schema, WRITER)
    for schema in (*LOAD_SCHEMAS, "udf", "quality"):
        _execute(conn, "grant usage on schema {} to {}", schema, WRITER)
    for schema in LOAD_SCHEMAS:
        _execute(
            conn, "grant select, insert, update, delete on all tables in schema {} to {}",
            schema, WRITER,
        )  # fmt: skip
        _execute(conn, "grant usage, select on all sequences in schema {} to {}", schema, WRITER)
        _execute(
            conn,
            "alter default privileges for role {} in schema {}"
            " grant select, insert, update, delete on tables to {}",
            admin, schema, WRITER,
        )  # fmt: skip
        _execute(
            conn,
            "alter default privileges for role {} in schema {} grant usage, select on sequences"
            " to {}",
            admin, schema, WRITER,
        )  # fmt: skip
    _execute(conn, "grant select on all tables in schema quality to {}", WRITER)
    _execute(conn, "grant select on table udf.python_modules to {}", WRITER)
    # what dbt rebuilds, the writer owns (a full refresh swaps tables; a run recreates views
    # and the latest_* functions)
    kinds = {"r": "table", "p": "table", "v": "view", "m": "materialized view"}
    for schema, name, kind in _relations(conn, DBT_SCHEMAS):
        _execute(conn, f"alter {kinds[kind]} {{}}.{{}} owner to {{}}", schema, name, WRITER)
    for (function,) in conn.execute(
        """
        select p.oid::regprocedure::text
        from pg_proc as p
        inner join pg_namespace as n on p.pronamespace = n.oid
        where n.nspname = 'features' and p.proname like 'latest\\_%%'
        """
    ).fetchall():
        conn.execute(
            sql.SQL("alter function {} owner to {}").format(
                sql.SQL(function), sql.Identifier(WRITER)
            )
        )
    # the refresh procedures: the writer's; nobody else's (a reader's call would fail on the
    # ops.* writes anyway)
    for (procedure,) in conn.execute(
        """
        select p.oid::regprocedure::text
        from pg_proc as p
        inner join pg_namespace as n on p.pronamespace = n.oid
        where n.nspname = 'features' and p.prokind = 'p'
        """
    ).fetchall():
        for statement in (
            "revoke execute on procedure {} from public",
            "grant execute on procedure {} to {}",
        ):
            conn.execute(sql.SQL(statement).format(sql.SQL(procedure), sql.Identifier(WRITER)))


def install(say: Callable[[str], None]) -> None:
    with db.connect() as conn:
        row = conn.execute(
            "select current_database(), current_user, rolsuper, rolcreaterole"
            " from pg_roles where rolname = current_user"
        ).fetchone()
        assert row is not None
        database, admin, superuser, createrole = row
        if not (superuser or createrole):
            raise TickfeaturesError(
                f"roles install needs a superuser or a role with CREATEROLE; {admin} is neither"
            )
        if not _schema_exists(conn, "market"):
            raise TickfeaturesError(
                f"database {database} has no tickfeatures schema: run `tickfeatures migrate` first"
            )
        for attempt in range(1, ATTEMPTS + 1):
            try:
                created = {role: _ensure_role(conn, role) for role in (READER, WRITER)}
                passwords = {role: _set_password(conn, role) for role in (READER, WRITER)}
                _grant_reader(conn, database, admin)
                _grant_writer(conn, database, admin)
                conn.commit()
                break
            except psycopg.errors.DeadlockDetected:
                # ALTER ... OWNER against autovacuum's in-place update of the same pg_class
                # row (measured): the deadlock detector ends this side; all of it again
                conn.rollback()
                if attempt == ATTEMPTS:
                    raise
                time.sleep(0.5 * attempt)
    for role in (READER, WRITER):
        state = "created" if created[role] else "updated"
        password = (
            "password set"
            if passwords[role]
            else f"no password given ({PASSWORD_ENV[role]}): no login over TCP until one is set"
        )
        say(f"{role}: {state} in database {database}; {password}")


def cmd_roles(args: Any) -> int:
    install(say=lambda message: print(message, flush=True))
    return 0


def add_command(sub: Any) -> None:
    p = sub.add_parser(
        "roles",
        help="install the tickfeatures_reader and tickfeatures_writer roles: install",
        description="install: create or update tickfeatures_reader (reads market.*, "
        "features.*, quality.*, calls the serving functions and kernels, TEMP tables; writes "
        "nothing) and tickfeatures_writer (loads and refreshes; owns what dbt builds) in this "
        "database, with the passwords of TICKFEATURES_READER_PASSWORD and "
        "TICKFEATURES_WRITER_PASSWORD (SCRAM-SHA-256). Safe to re-run.",
    )
    p.add_argument("action", choices=["install"])
    p.set_defaults(func=cmd_roles)
