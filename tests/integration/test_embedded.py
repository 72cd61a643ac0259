"""The embedded cluster's lifecycle and its one-line errors, on throwaway clusters."""

from __future__ import annotations

import os
import socket
import stat
import subprocess
from pathlib import Path
from urllib.parse import quote

import psycopg
import pytest

from tests.conftest import run_cli
from tickfeatures import config
from tickfeatures.embedded import PG_BINDIR, Cluster

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


# -- passwords over TCP ---------------------------------------------------------------------


def _refusal(conninfo: str) -> str:
    """Why the server refuses `conninfo` ("" when it lets it in). libpq's own password
    sources are switched off, so that only what `conninfo` says is tried."""
    try:
        psycopg.connect(conninfo, passfile="/nonexistent", connect_timeout=10).close()
    except psycopg.OperationalError as exc:
        return str(exc)
    return ""


def _tcp(port: str, user: str, password: str | None = None) -> str:
    secret = f" password={password}" if password is not None else ""
    return f"host=127.0.0.1 port={port} dbname=tickfeatures user={user}{secret}"


def test_tcp_connections_need_the_password(
    project: tuple[Path, dict[str, str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PGPASSWORD", raising=False)
    root, env = project
    port = env["TICKFEATURES_PORT"]
    run_cli("db", "start", env=env)
    assert "password authentication failed" in _refusal(_tcp(port, "tickfeatures", "wrong"))
    assert "no password supplied" in _refusal(_tcp(port, "tickfeatures"))
    secret_file = root / ".tickfeatures" / "password"
    info = secret_file.stat()
    assert stat.S_IMODE(info.st_mode) == 0o600 and info.st_uid == os.geteuid()
    password = secret_file.read_text().strip()
    assert len(password) >= 32
    url = run_cli("db", "url", env=env).stdout.strip()
    assert f"tickfeatures:{quote(password, safe='')}@127.0.0.1:{port}/" in url
    assert f"export PGPASSWORD='{password}'" in run_cli("db", "env", env=env).stdout

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("create role analyst login password 'an analyst''s own'")
        assert conn.execute("show password_encryption").fetchone() == ("scram-sha-256",)
        sockets = Path(conn.execute("show unix_socket_directories").fetchone()[0])  # type: ignore[index]
        cron_host = conn.execute("show cron.host").fetchone()
    for user, right in (("tickfeatures", password), ("analyst", "'an analyst\\'s own'")):
        wrong = _refusal(_tcp(port, user, "not-" + password))
        assert f'password authentication failed for user "{user}"' in wrong
        assert "no password supplied" in _refusal(_tcp(port, user))
        assert _refusal(_tcp(port, user, right)) == ""

    # Only the private socket lets a role in without its password: pg_cron's jobs connect
    # there; its directory is the cluster's OS user's alone.
    assert cron_host == (str(sockets),)
    owner = (root / ".tickfeatures" / "pgdata").resolve().stat().st_uid
    assert stat.S_IMODE(sockets.stat().st_mode) == 0o700 and sockets.stat().st_uid == owner
    socket_url = f"host={sockets} port={port} dbname=tickfeatures user=analyst"
    assert _refusal(socket_url) == ""

    # A lost password file: the next start from stopped sets a new password.
    run_cli("db", "stop", env=env)
    secret_file.unlink()
    assert "set the superuser's password" in run_cli("db", "start", env=env).stdout
    renewed = secret_file.read_text().strip()
    assert renewed != password
    assert "password authentication failed" in _refusal(_tcp(port, "tickfeatures", password))
    assert _refusal(_tcp(port, "tickfeatures", renewed)) == ""


def _as_before_passwords(root: Path, port: int, *, running: bool) -> None:
    """Turn a stopped throwaway cluster into one as the versions before passwords left it:
    initialised with trust (the superuser has no password), loopback TCP trusted, no Unix
    socket, no password file; with a table of data to keep. Left running or stopped."""
    cluster = Cluster(root=root, port=port)
    data = cluster.data_dir
    conf = data / "tickfeatures.conf"
    lines = [
        "unix_socket_directories = ''\n" if ln.startswith("unix_socket_directories") else ln
        for ln in conf.read_text().splitlines(keepends=True)
        if not ln.startswith(("cron.host", "unix_socket_permissions", "password_encryption"))
    ]
    conf.write_text("".join(lines))
    (data / "pg_hba.conf").write_text("host all all 127.0.0.1/32 trust\n")
    config.password_file(root).unlink()
    pg_ctl = [*cluster._runtime_prefix(), str(PG_BINDIR / "pg_ctl"), "-w", "-D", str(data)]
    subprocess.run([*pg_ctl, "start", "-l", str(cluster.log_file)], check=True, capture_output=True)
    # any password, or none, gets in
    assert _refusal(_tcp(str(port), "tickfeatures", "anything")) == ""
    with psycopg.connect(_tcp(str(port), "tickfeatures"), autocommit=True) as conn:
        conn.execute("alter role tickfeatures password null")
        conn.execute("create table if not exists kept (n int)")
        conn.execute("insert into kept values (1)")
    if not running:
        subprocess.run([*pg_ctl, "stop", "-m", "fast"], check=True, capture_output=True)


@pytest.mark.parametrize("running", [True, False], ids=["running", "stopped"])
def test_a_trust_cluster_is_upgraded_on_start(
    project: tuple[Path, dict[str, str]], monkeypatch: pytest.MonkeyPatch, running: bool
) -> None:
    """A cluster from before passwords, running or stopped: `db start` gives the superuser a
    password and requires it over TCP, keeping the data."""
    monkeypatch.delenv("PGPASSWORD", raising=False)
    root, env = project
    port = env["TICKFEATURES_PORT"]
    run_cli("db", "start", env=env)
    run_cli("db", "stop", env=env)
    _as_before_passwords(root, int(port), running=running)

    started = run_cli("db", "start", env=env)
    assert "set the superuser's password" in started.stdout
    assert started.stdout.startswith("already running") == running
    password = config.password_file(root).read_text().strip()
    assert stat.S_IMODE(config.password_file(root).stat().st_mode) == 0o600
    assert "password authentication failed" in _refusal(_tcp(port, "tickfeatures", "wrong"))
    assert "no password supplied" in _refusal(_tcp(port, "tickfeatures"))
    url = run_cli("db", "url", env=env).stdout.strip()
    with psycopg.connect(url) as conn:
        assert conn.execute("select count(*) from kept").fetchone() == (1,)
    assert _refusal(_tcp(port, "tickfeatures", password)) == ""
    # and a second start changes nothing
    again = run_cli("db", "start", env=env)
    assert "password" not in again.stdout


def test_the_server_python_has_the_venvs_numpy_and_scipy(migrated_db: str) -> None:
    """The kernels in the database run on the numpy and scipy the tests' reference libraries
    run on (scripts/install-server-python.sh; embedded.SERVER_PYTHONPATH): with Debian's scipy
    1.10, SLSQP's GARCH fits on minute returns stopped short of arch's maximum; and with one
    BLAS thread, as the tests (a fit's last bits depend on the thread count)."""
    import numpy
    import psycopg
    import scipy

    with psycopg.connect(migrated_db, autocommit=True) as conn:
        conn.execute(
            "create function pg_temp.versions() returns text language plpython3u as"
            " $$import os, numpy, scipy; return ' '.join((numpy.__version__, scipy.__version__,"
            " os.environ.get('OPENBLAS_NUM_THREADS', '')))$$"
        )
        server = conn.execute("select pg_temp.versions()").fetchone()[0]
    # and one BLAS thread a backend (embedded.SERVER_THREADS)
    assert server == f"{numpy.__version__} {scipy.__version__} 1"


def test_parallel_workers_are_left_beside_timescaledbs(databases: object) -> None:
    """Every database with TimescaleDB takes a background worker for its scheduler (up to
    timescaledb.max_background_workers); PostgreSQL's default of 8 worker processes in all
    then left none for the parallel workers of a bar family's full build. With 20 databases
    on the server, a parallel query still gets its workers."""
    import time

    import psycopg

    from tests.conftest import FreshDatabase

    assert isinstance(databases, FreshDatabase)
    urls = [databases.create("tf_workers") for _ in range(20)]
    for url in urls:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("create extension if not exists timescaledb")
    with psycopg.connect(urls[0], autocommit=True) as conn:
        # the launcher starts the schedulers in its own time: wait until it is done
        deadline, seen, still = time.monotonic() + 20, -1, 0
        while time.monotonic() < deadline and still < 5:
            row = conn.execute(
                "select count(*) from pg_stat_activity where backend_type like 'TimescaleDB%'"
            ).fetchone()
            still = still + 1 if row is not None and row[0] == seen else 0
            seen = row[0] if row is not None else seen
            time.sleep(0.3)
        assert seen >= 16  # this test's 20 databases' schedulers, up to TimescaleDB's limit
        settings = dict(
            conn.execute(
                "select name, setting from pg_settings where name in"
                " ('max_worker_processes', 'timescaledb.max_background_workers',"
                " 'max_parallel_workers')"
            ).fetchall()
        )
        assert int(settings["max_worker_processes"]) >= (
            int(settings["timescaledb.max_background_workers"])
            + int(settings["max_parallel_workers"])
            + 4  # TimescaleDB's launcher, pg_cron's, and room
        )
        conn.execute("set force_parallel_mode = on")
        conn.execute("set max_parallel_workers_per_gather = 2")
        plan = "\n".join(
            row[0]
            for row in conn.execute(
                "explain (analyze, costs off, timing off)"
                " select count(*) from generate_series(1, 10)"
            ).fetchall()
        )
    assert "Workers Launched: 1" in plan, plan
