"""Shared fixtures: a fresh database for the run, on the embedded cluster or $TICKFEATURES_DSN.

Integration tests need a real PostgreSQL with TimescaleDB, PL/Python and pg_cron; `make test`
starts the embedded cluster first. An unreachable server fails the run; it is never skipped.
"""

from __future__ import annotations

import os

# One BLAS thread, as the embedded server's backends run (embedded.SERVER_THREADS): a GARCH
# fit (SLSQP) lands in a different place in the last bits with another thread count, so the
# kernels here and in the database, and arch, must run alike. Before numpy is imported.
for _name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_name, "1")
# ruff: noqa: E402
import shutil
import socket
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import make_conninfo

from tickfeatures import config

ROOT = Path(__file__).resolve().parents[1]
TF = [sys.executable, "-m", "tickfeatures.cli"]


# The longest modules first (minutes each, measured): `make test` hands whole modules to two
# workers (pytest-xdist --dist loadfile --no-loadscope-reorder: in collection order, not by
# their number of tests), and a long one left to the end runs alone on one worker while the
# other idles.
LONGEST_FIRST = [
    "test_chunking",
    "test_bar_families",
    "test_crash",
    "test_bar_k14",
    "test_refresh",
    "test_readers",
    "test_serving",
    "test_demo",
    "test_roles",
    "test_heavy",
    "test_schedule",
]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    rank = {name: i for i, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.stem, len(rank)))


def server_url() -> str:
    return os.environ.get(config.DSN_ENV) or config.embedded_url()


def database_url(base: str, dbname: str) -> str:
    return make_conninfo(base, dbname=dbname)


def run_cli(
    *args: str,
    dsn: str | None = None,
    env: dict[str, str] | None = None,
    check: bool = True,
    cwd: Path = ROOT,
) -> subprocess.CompletedProcess[str]:
    """Run the CLI as a user would, against `dsn` when given."""
    full_env = {**os.environ, **(env or {})}
    if dsn is not None:
        full_env[config.DSN_ENV] = dsn
    result = subprocess.run(
        [*TF, *args], cwd=cwd, env=full_env, text=True, capture_output=True, check=False
    )
    if check and result.returncode != 0:
        raise AssertionError(
            f"tickfeatures {' '.join(args)} exited {result.returncode}\n"
            f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}"
        )
    return result


class Processes:
    """CLI processes a test starts in the background. Whatever happens to the test, none
    outlives it: a refresh left running by a failed test once failed the next test on the
    same worker (its pipes and its process, collected there, raised ResourceWarnings)."""

    def __init__(self) -> None:
        self.started: list[subprocess.Popen[str]] = []

    def cli(self, *args: str, dsn: str | None = None, output: bool = True) -> subprocess.Popen[str]:
        """`tickfeatures ARGS` against `dsn`; stdout and stderr piped (or discarded)."""
        env = {**os.environ}
        if dsn is not None:
            env[config.DSN_ENV] = dsn
        pipe = subprocess.PIPE if output else subprocess.DEVNULL
        proc = subprocess.Popen(
            [*TF, *args], cwd=ROOT, env=env, stdout=pipe, stderr=pipe, text=True
        )
        self.started.append(proc)
        return proc

    def close(self) -> None:
        for proc in self.started:
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=30)
            for stream in (proc.stdout, proc.stderr):
                if stream is not None:
                    stream.close()


@pytest.fixture
def processes() -> Iterator[Processes]:
    started = Processes()
    yield started
    started.close()


class FreshDatabase:
    """Creates uniquely named databases on the test server and drops them at the end."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.created: list[str] = []

    def create(self, prefix: str = "tf_test") -> str:
        name = f"{prefix}_{uuid.uuid4().hex[:10]}"
        with psycopg.connect(self.base, autocommit=True) as conn:
            conn.execute(sql.SQL("create database {}").format(sql.Identifier(name)))
        self.created.append(name)
        return database_url(self.base, name)

    def drop_all(self) -> None:
        with psycopg.connect(self.base, autocommit=True) as conn:
            for name in self.created:
                conn.execute(
                    sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(name))
                )
                # and dbt's target directory of each (tickfeatures.dbt.target_path)
                for folder in (ROOT / "target" / "databases").glob(f"{name}-*"):
                    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="session")
def databases() -> Iterator[FreshDatabase]:
    base = server_url()
    try:
        with psycopg.connect(base, connect_timeout=5):
            pass
    except psycopg.OperationalError as exc:
        pytest.fail(
            f"integration tests need a PostgreSQL server: {str(exc).strip().splitlines()[-1]}; "
            f"run `make db-start` or set {config.DSN_ENV}",
            pytrace=False,
        )
    factory = FreshDatabase(base)
    yield factory
    factory.drop_all()


@pytest.fixture(scope="session")
def migrated_db(databases: FreshDatabase) -> str:
    """A fresh database with every migration applied through the CLI; shared by the session."""
    url = databases.create()
    run_cli("migrate", dsn=url)
    return url


@pytest.fixture()
def fresh_db(databases: FreshDatabase) -> str:
    """An empty database of its own for one test."""
    return databases.create()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def throwaway_project(folder: Path) -> Iterator[tuple[Path, dict[str, str]]]:
    """An empty project directory with its own cluster port; the cluster is removed after."""
    (folder / "dbt_project.yml").write_text("name: throwaway\n")
    env = {
        "TICKFEATURES_HOME": str(folder),
        "TICKFEATURES_PORT": str(_free_port()),
        config.DSN_ENV: "",
    }
    yield folder, env
    run_cli("db", "stop", env=env, check=False)
    data = folder / ".tickfeatures" / "pgdata"
    if data.is_symlink():
        shutil.rmtree(data.resolve().parent, ignore_errors=True)


@pytest.fixture()
def project(tmp_path: Path) -> Iterator[tuple[Path, dict[str, str]]]:
    """An empty project directory with its own cluster port; the cluster is removed after."""
    yield from throwaway_project(tmp_path)
