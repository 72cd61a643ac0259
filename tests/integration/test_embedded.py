"""The embedded cluster's lifecycle and its one-line errors, on throwaway clusters."""

from __future__ import annotations

import socket
from pathlib import Path

import psycopg
import pytest

from tests.conftest import run_cli

pytestmark = pytest.mark.integration


def test_start_status_url_stop(project: tuple[Path, dict[str, str]]) -> None:
    _root, env = project
    started = run_cli("db", "start", env=env)
    assert "running on 127.0.0.1" in started.stdout
    assert run_cli("db", "start", env=env).stdout.startswith("already running")
    assert run_cli("db", "status", env=env).stdout.startswith("running")
    url = run_cli("db", "url", env=env).stdout.strip()
    assert url.startswith("postgresql://") and f":{env['TICKFEATURES_PORT']}/" in url
    with psycopg.connect(url) as conn:
        assert conn.execute("select current_setting('listen_addresses')").fetchone() == (
            "127.0.0.1",
        )
        preload = conn.execute("select current_setting('shared_preload_libraries')").fetchone()
        assert preload is not None and "timescaledb" in preload[0] and "pg_cron" in preload[0]
        assert conn.execute("select current_user").fetchone() == ("tickfeatures",)
    assert run_cli("db", "stop", env=env).stdout.strip() == "stopped"
    status = run_cli("db", "status", env=env, check=False)
    assert status.returncode == 3 and status.stdout.startswith("stopped")
    assert run_cli("db", "stop", env=env).stdout.strip() == "not running"


def test_port_taken_is_one_line(project: tuple[Path, dict[str, str]]) -> None:
    _root, env = project
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", int(env["TICKFEATURES_PORT"])))
        blocker.listen()
        result = run_cli("db", "start", env=env, check=False)
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1
    assert f"port {env['TICKFEATURES_PORT']} on 127.0.0.1 is already in use" in result.stderr


def test_stale_pid_file_is_removed(project: tuple[Path, dict[str, str]]) -> None:
    root, env = project
    run_cli("db", "start", env=env)
    run_cli("db", "stop", env=env)
    pid_file = (root / ".tickfeatures" / "pgdata").resolve() / "postmaster.pid"
    dead_pid = 4_000_000  # above the kernel's pid_max: no such process
    pid_file.write_text(f"{dead_pid}\n{pid_file.parent}\n0\n{env['TICKFEATURES_PORT']}\n")
    assert run_cli("db", "status", env=env, check=False).returncode == 3
    started = run_cli("db", "start", env=env)
    assert "removed a stale pid file" in started.stdout


def test_missing_server_package_is_one_line(project: tuple[Path, dict[str, str]]) -> None:
    _root, env = project
    result = run_cli(
        "db", "start", env={**env, "TICKFEATURES_PG_BINDIR": "/nonexistent/bin"}, check=False
    )
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1
    assert "PostgreSQL 15 server not found at /nonexistent/bin/postgres" in result.stderr
