"""Run dbt against the active database (embedded, or $TICKFEATURES_DSN)."""

from __future__ import annotations

import ctypes
import hashlib
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

from psycopg.conninfo import conninfo_to_dict

from tickfeatures import config
from tickfeatures.errors import TickfeaturesError

# libpq variables read by profiles.yml, in the order they are exported.
_LIBPQ_ENV = {
    "host": "PGHOST",
    "port": "PGPORT",
    "user": "PGUSER",
    "password": "PGPASSWORD",
    "dbname": "PGDATABASE",
    "sslmode": "PGSSLMODE",
}


def libpq_env(url: str | None = None) -> dict[str, str]:
    """PG* variables describing the active database, for dbt's profile and other tools."""
    url = url or config.active_database().url
    try:
        params = conninfo_to_dict(url)
    except Exception as exc:  # psycopg raises ProgrammingError for malformed strings
        raise TickfeaturesError(f"cannot parse the connection string: {exc}") from None
    env = {var: str(params[key]) for key, var in _LIBPQ_ENV.items() if params.get(key)}
    env.setdefault("PGHOST", "localhost")
    env.setdefault("PGPORT", "5432")
    env.setdefault("PGDATABASE", env.get("PGUSER", os.environ.get("USER", "postgres")))
    return env


def dbt_executable() -> str:
    beside = Path(sys.executable).parent / "dbt"
    if beside.is_file():
        return str(beside)
    found = shutil.which("dbt")
    if not found:
        raise TickfeaturesError("dbt is not installed in this environment; run `make venv`")
    return found


_PR_SET_PDEATHSIG = 1


def _child_setup(parent: int, nice: int) -> None:
    """In dbt's process, before exec: die with the parent, so that a `kill -9` of `tickfeatures
    refresh` (which holds the refresh lock) does not leave dbt refreshing on without it; and
    run at `nice`."""
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        if os.getppid() != parent:  # the parent died before prctl took effect
            os._exit(1)
    if nice > 0:
        os.nice(nice)


def target_path(env: dict[str, str]) -> str:
    """dbt's target directory for the database `env`'s PG* variables name: `target` for the
    embedded cluster's own database, `target/databases/<name>-<hash>` for any other.

    dbt keeps one partial-parse file per target directory and throws it away whenever the
    connection differs from the one that wrote it (the database name is in every parsed
    node): with one directory for all, each run after a run on another database parsed the
    whole project again (about 12 s of CPU against 2 s). One directory per database keeps
    every database's parse."""
    identity = "|".join(env.get(v, "") for v in ("PGHOST", "PGPORT", "PGUSER", "PGDATABASE"))
    embedded = {"PGHOST": "127.0.0.1", "PGUSER": "tickfeatures", "PGDATABASE": config.DATABASE}
    if all(env.get(k) == v for k, v in embedded.items()) and env.get("PGPORT") == str(
        config.embedded_port()
    ):
        return "target"
    name = "".join(c if c.isalnum() or c in "_-" else "_" for c in env.get("PGDATABASE", ""))
    digest = hashlib.sha256(identity.encode()).hexdigest()[:10]
    return f"target/databases/{name[:40]}-{digest}"


def run_dbt(
    args: list[str], *, capture: bool = False, nice: int = 0
) -> subprocess.CompletedProcess[str]:
    """dbt with `args` against the active database; `nice`: run it at that lower CPU priority."""
    root = config.project_root()
    env = {**os.environ, **libpq_env()}
    env.setdefault("DBT_SEND_ANONYMOUS_USAGE_STATS", "false")
    if "--target-path" not in args:
        env.setdefault("DBT_TARGET_PATH", target_path(env))
    cmd = [dbt_executable(), *args]
    parent = os.getpid()
    if args and args[0] not in {"--version", "--help", "-h"}:
        cmd += ["--project-dir", str(root), "--profiles-dir", str(root)]
    return subprocess.run(
        cmd,
        cwd=root,
        env=env,
        text=True,
        capture_output=capture,
        check=False,
        preexec_fn=lambda: _child_setup(parent, nice),
    )
