"""The embedded PostgreSQL cluster: TimescaleDB, PL/Python and pg_cron, on loopback only.

Its files live under `.tickfeatures/` in the project. initdb refuses to run as root, so when
invoked as root the cluster runs as the unprivileged OS user `tickfeatures`, created on demand.
"""

from __future__ import annotations

import hashlib
import os
import pwd
import shutil
import socket
import subprocess
from dataclasses import dataclass
from pathlib import Path

import psycopg

from tickfeatures import config
from tickfeatures.errors import TickfeaturesError

PG_BINDIR = Path(os.environ.get("TICKFEATURES_PG_BINDIR", "/usr/lib/postgresql/15/bin"))
RUNTIME_USER = "tickfeatures"
FALLBACK_DATA_ROOT = Path("/var/lib/tickfeatures")
REQUIRED_EXTENSIONS = {
    "timescaledb": "TimescaleDB 2.19.3 (run `make install`)",
    "plpython3u": "the Debian package postgresql-plpython3-15",
    "pg_cron": "the Debian package postgresql-15-cron",
}


@dataclass(frozen=True)
class Status:
    running: bool
    pid: int | None
    port: int
    data_dir: Path

    def describe(self) -> str:
        if self.running:
            return f"running (pid {self.pid}) on 127.0.0.1:{self.port}, data in {self.data_dir}"
        return f"stopped, data in {self.data_dir}"


class Cluster:
    """One embedded cluster, rooted in a project directory."""

    def __init__(self, root: Path | None = None, port: int | None = None) -> None:
        self.root = root or config.project_root()
        self.port = config.embedded_port() if port is None else port
        self.state_dir = self.root / ".tickfeatures"

    # -- paths and users -------------------------------------------------------------------

    @property
    def as_root(self) -> bool:
        return os.geteuid() == 0

    @property
    def data_dir(self) -> Path:
        link = self.state_dir / "pgdata"
        return link.resolve() if link.is_symlink() else link

    @property
    def log_file(self) -> Path:
        return self.data_dir.parent / "postgres.log"

    def _runtime_prefix(self) -> list[str]:
        return ["runuser", "-u", RUNTIME_USER, "--"] if self.as_root else []

    def _ensure_runtime_user(self) -> None:
        if not self.as_root:
            return
        try:
            pwd.getpwnam(RUNTIME_USER)
        except KeyError:
            _run(
                [
                    "useradd",
                    "--system",
                    "--user-group",
                    "--no-create-home",
                    "--home-dir",
                    "/nonexistent",
                    "--shell",
                    "/usr/sbin/nologin",
                    RUNTIME_USER,
                ],
                what=f"creating the OS user {RUNTIME_USER}",
            )

    def _chown(self, path: Path) -> None:
        if self.as_root:
            shutil.chown(path, RUNTIME_USER, RUNTIME_USER)

    def _prepare_dirs(self) -> None:
        """Create the state directory; put the data where the runtime user can reach it."""
        self.state_dir.mkdir(parents=True, exist_ok=True)
        link = self.state_dir / "pgdata"
        if link.exists() or link.is_symlink():
            return
        if self.as_root and not _traversable_by_others(self.state_dir):
            # e.g. a checkout under /root: the unprivileged user cannot reach it.
            digest = hashlib.sha1(str(self.state_dir).encode()).hexdigest()[:12]
            target = FALLBACK_DATA_ROOT / digest / "pgdata"
            target.mkdir(mode=0o700, parents=True, exist_ok=True)
            link.symlink_to(target)
        else:
            link.mkdir(mode=0o700)

    # -- checks ----------------------------------------------------------------------------

    def check_installation(self) -> None:
        postgres = PG_BINDIR / "postgres"
        if not postgres.is_file():
            raise TickfeaturesError(
                f"PostgreSQL 15 server not found at {postgres}; run `make install`"
            )
        sharedir = Path(_output([str(PG_BINDIR / "pg_config"), "--sharedir"]))
        for ext, provider in REQUIRED_EXTENSIONS.items():
            if not (sharedir / "extension" / f"{ext}.control").is_file():
                raise TickfeaturesError(
                    f"extension {ext} is not installed; it comes from {provider}"
                )

    def _pid_from_file(self) -> int | None:
        pid_file = self.data_dir / "postmaster.pid"
        try:
            first = pid_file.read_text().splitlines()[0]
        except (FileNotFoundError, IndexError):
            return None
        except PermissionError:
            raise TickfeaturesError(
                f"cannot read {pid_file}; run as root or as {RUNTIME_USER}"
            ) from None
        return int(first) if first.strip().isdigit() else None

    def status(self) -> Status:
        pid = self._pid_from_file()
        running = pid is not None and _is_postgres(pid)
        return Status(
            running=running,
            pid=pid if running else None,
            port=self._running_port(),
            data_dir=self.data_dir,
        )

    def _running_port(self) -> int:
        try:
            lines = (self.data_dir / "postmaster.pid").read_text().splitlines()
            return int(lines[3])
        except (OSError, IndexError, ValueError):
            return self.port

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> str:
        self.check_installation()
        current = self.status()
        if current.running:
            self._ensure_database(current.port)
            return f"already {current.describe()}"
        self._ensure_runtime_user()
        self._prepare_dirs()
        data = self.data_dir
        self._chown(self.state_dir)
        self._chown(data.parent)
        self._chown(data)
        notes = []
        pid_file = data / "postmaster.pid"
        if pid_file.exists():
            pid_file.unlink()
            notes.append(f"removed a stale pid file (pid {current.pid or '?'} is not running)")
        if not (data / "PG_VERSION").exists():
            self._initdb(data)
            notes.append(f"initialised a new cluster in {data}")
        self._write_config(data)
        _check_port_free(self.port)
        if self.log_file.exists():
            self._chown(self.log_file)
        else:
            self.log_file.touch()
            self._chown(self.log_file)
        result = subprocess.run(
            [
                *self._runtime_prefix(),
                str(PG_BINDIR / "pg_ctl"),
                "start",
                "-w",
                "-t",
                "60",
                "-D",
                str(data),
                "-l",
                str(self.log_file),
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            raise TickfeaturesError(
                f"PostgreSQL did not start: {_last_error_line(self.log_file)}"
                f" (log: {self.log_file})"
            )
        self._ensure_database(self.port)
        notes.append(f"running on 127.0.0.1:{self.port}")
        return "; ".join(notes)

    def stop(self) -> str:
        current = self.status()
        if not current.running:
            return "not running"
        _run(
            [
                *self._runtime_prefix(),
                str(PG_BINDIR / "pg_ctl"),
                "stop",
                "-m",
                "fast",
                "-w",
                "-D",
                str(self.data_dir),
            ],
            what="stopping PostgreSQL",
        )
        return "stopped"

    def _initdb(self, data: Path) -> None:
        _run(
            [
                *self._runtime_prefix(),
                str(PG_BINDIR / "initdb"),
                "-D",
                str(data),
                "-U",
                config.SUPERUSER,
                "--auth=trust",
                "--encoding=UTF8",
                "--locale=C.UTF-8",
                "--no-instructions",
            ],
            what="initdb",
        )

    def _write_config(self, data: Path) -> None:
        conf = data / "tickfeatures.conf"
        conf.write_text(
            "# Written by `tickfeatures db start` on every start; edit postgresql.conf instead.\n"
            "listen_addresses = '127.0.0.1'\n"
            f"port = {self.port}\n"
            "unix_socket_directories = ''\n"
            "shared_preload_libraries = 'timescaledb,pg_cron'\n"
            f"cron.database_name = '{config.DATABASE}'\n"
            "timescaledb.telemetry_level = off\n"
            "shared_buffers = 1GB\n"
            "work_mem = 64MB\n"
            "maintenance_work_mem = 512MB\n"
            "max_wal_size = 4GB\n"
            # bulk loads write WAL faster than the default 16MB buffer drains
            "wal_buffers = 256MB\n"
            "log_min_messages = warning\n"
        )
        self._chown(conf)
        main_conf = data / "postgresql.conf"
        include = "include_if_exists = 'tickfeatures.conf'\n"
        if include not in main_conf.read_text():
            with main_conf.open("a") as fh:
                fh.write(include)
        # Loopback only, trust: the embedded cluster is a local development database.
        hba = data / "pg_hba.conf"
        hba.write_text("host all all 127.0.0.1/32 trust\n")
        self._chown(hba)

    def _ensure_database(self, port: int) -> None:
        admin_url = config.embedded_url(port, database="postgres")
        try:
            with psycopg.connect(admin_url, autocommit=True, connect_timeout=10) as conn:
                exists = conn.execute(
                    "select 1 from pg_database where datname = %s", (config.DATABASE,)
                ).fetchone()
                if not exists:
                    conn.execute(f'create database "{config.DATABASE}"')
        except psycopg.OperationalError as exc:
            raise TickfeaturesError(
                f"cannot reach the embedded cluster: {_first_line(exc)}"
            ) from None


def _traversable_by_others(path: Path) -> bool:
    return all(p.stat().st_mode & 0o001 for p in (path, *path.parents) if p.exists())


def _is_postgres(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip() in {"postgres", "postmaster"}
    except OSError:
        return False


def _check_port_free(port: int) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            raise TickfeaturesError(
                f"port {port} on 127.0.0.1 is already in use by another process; "
                f"set {config.PORT_ENV} to a free port"
            ) from None


def _last_error_line(log_file: Path) -> str:
    try:
        lines = [ln for ln in log_file.read_text(errors="replace").splitlines() if ln.strip()]
    except OSError:
        return "no log written"
    for line in reversed(lines):
        if any(tag in line for tag in ("FATAL", "ERROR", "PANIC")):
            return line.strip()
    return lines[-1].strip() if lines else "no log written"


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _output(cmd: list[str]) -> str:
    return subprocess.run(cmd, capture_output=True, text=True, check=True).stdout.strip()


def _run(cmd: list[str], what: str) -> None:
    result = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        detail = (result.stderr or result.stdout).strip().splitlines()
        raise TickfeaturesError(f"{what} failed: {detail[-1] if detail else 'no output'}")
