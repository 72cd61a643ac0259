"""What the benchmarks share: logging, running the CLI against a database, a fresh database,
and settling the server between timed steps."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import psycopg
from psycopg import sql
from psycopg.conninfo import make_conninfo

from tickfeatures import config

ROOT = Path(__file__).resolve().parents[1]


def log(message: str) -> None:
    print(f"[bench] {message}", flush=True)


def tf(*args: str, dsn: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, config.DSN_ENV: dsn}
    result = subprocess.run(
        [sys.executable, "-m", "tickfeatures.cli", *args],
        cwd=ROOT,
        env=env,
        text=True,
        capture_output=True,
        check=False,
    )
    if result.returncode != 0:
        raise SystemExit(f"tickfeatures {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
    return result


def fresh_database(base: str, name: str) -> str:
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(
            sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(name))
        )
        conn.execute(sql.SQL("create database {}").format(sql.Identifier(name)))
    return make_conninfo(base, dbname=name)


def settle(url: str) -> None:
    """Leave no background work from one step to run inside the next timed one: VACUUM
    ANALYZE (else autovacuum processes the new tables) and a CHECKPOINT (else the gigabytes
    a bulk step dirtied are written out while the next step runs). Untimed."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("vacuum analyze")
        try:
            conn.execute("checkpoint")
        except psycopg.errors.InsufficientPrivilege:
            log("CHECKPOINT needs superuser or pg_checkpoint here: skipped")
