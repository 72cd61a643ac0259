"""Run dbt against the active database (embedded, or $TICKFEATURES_DSN)."""

from __future__ import annotations

import ctypes
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


def run_dbt(
    args: list[str], *, capture: bool = False, nice: int = 0
) -> subprocess.CompletedProcess[str]:
    """dbt with `args` against the active database; `nice`: run it at that lower CPU priority."""
    root = config.project_root()
    env = {**os.environ, **libpq_env()}
    env.setdefault("DBT_SEND_ANONYMOUS_USAGE_STATS", "false")
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
