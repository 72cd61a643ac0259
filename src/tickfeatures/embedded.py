"""The embedded PostgreSQL cluster: TimescaleDB, PL/Python and pg_cron, on loopback only.

Its files live under `.tickfeatures/` in the project. initdb refuses to run as root, so when
invoked as root the cluster runs as the unprivileged OS user `tickfeatures`, created on demand.

Authentication: over TCP (127.0.0.1) every role needs its password, checked with
SCRAM-SHA-256. The superuser's is generated on the first start and kept in
`.tickfeatures/password` (mode 0600, owned by the user running the CLI); `db url` and `db env`
carry it. A Unix socket in a directory only the cluster's OS user (and root) can enter serves
administration and pg_cron's job connections without a password. A cluster initialised with
trust by an earlier version is given the password on its next `db start`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import psycopg
from psycopg import sql
from psycopg.conninfo import make_conninfo

from tickfeatures import config
from tickfeatures.errors import TickfeaturesError

PG_BINDIR = Path(os.environ.get("TICKFEATURES_PG_BINDIR", "/usr/lib/postgresql/15/bin"))
RUNTIME_USER = "tickfeatures"
# numpy and scipy for the server's Python at the venv's versions (scripts/install-server-python.sh,
# `make install`): first on the embedded server's PYTHONPATH, so the kernels run on the same
# libraries as the tests' reference libraries; without it, the OS's numpy and scipy.
SERVER_PYTHONPATH = Path(
    os.environ.get("TICKFEATURES_SERVER_PYTHONPATH", "/usr/local/lib/tickfeatures/python")
)


# One BLAS thread per backend: dbt runs several models at once, and SLSQP (the GARCH fits)
# lands in a different place in the last bits depending on how many threads a BLAS call
# splits its sums over, so a fit would depend on the thread count (tests/conftest.py sets
# the same for the tests' side).
SERVER_THREADS = {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def server_environment() -> dict[str, str]:
    """The environment the embedded server starts with: this one, one BLAS thread
    (SERVER_THREADS, unless set), and SERVER_PYTHONPATH first on PYTHONPATH when it is
    installed."""
    env = {**SERVER_THREADS, **os.environ}
    if (SERVER_PYTHONPATH / ".installed").is_file():
        rest = env.get("PYTHONPATH")
        env["PYTHONPATH"] = str(SERVER_PYTHONPATH) + (os.pathsep + rest if rest else "")
    return env


FALLBACK_DATA_ROOT = Path("/var/lib/tickfeatures")
SOCKET_DIR = "socket"  # beside the data directory, mode 0700
SOCKET_PATH_MAX = 107  # bytes of a Unix socket path (sun_path) that PostgreSQL accepts
SCRAM_ITERATIONS = 4096  # PostgreSQL's default (scram_iterations)
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

    @property
    def password_file(self) -> Path:
        return config.password_file(self.root)

    @property
    def socket_dir(self) -> Path:
        """The private socket directory: beside the data, or in the temporary directory when
        that path is too long for a Unix socket."""
        beside = self.data_dir.parent / SOCKET_DIR
        if len(os.fsencode(beside)) + len("/.s.PGSQL.65535") <= SOCKET_PATH_MAX:
            return beside
        digest = hashlib.sha1(str(self.data_dir).encode()).hexdigest()[:12]
        return Path(tempfile.gettempdir()) / f"tickfeatures-{digest}"

    def url(self, port: int, database: str = config.DATABASE) -> str:
        return config.embedded_url(port, database=database, root=self.root)

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

    def _runtime_uid(self) -> int:
        return pwd.getpwnam(RUNTIME_USER).pw_uid if self.as_root else os.geteuid()

    def _prepare_socket_dir(self) -> None:
        """A directory only the cluster's OS user can enter (root can enter anything)."""
        path = self.socket_dir
        try:
            path.mkdir(mode=0o700)
        except FileExistsError:
            pass
        info = path.lstat()
        if not path.is_dir() or path.is_symlink():
            raise TickfeaturesError(f"{path} exists and is not a directory")
        if info.st_uid not in (self._runtime_uid(), os.geteuid()):
            raise TickfeaturesError(
                f"{path} belongs to another user (uid {info.st_uid}); remove it and start again"
            )
        os.chmod(path, 0o700)
        self._chown(path)

    def _password(self) -> tuple[str, bool]:
        """(the superuser's password, whether it was generated now). The file is created with
        mode 0600 by the user running the CLI; the server never reads it."""
        path = self.password_file
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            if path.stat().st_mode & 0o077:
                os.chmod(path, 0o600)
            password = path.read_text().strip()
            if password:
                return password, False
            path.unlink()
            return self._password()
        password = secrets.token_urlsafe(32)
        with os.fdopen(fd, "w") as fh:
            fh.write(password + "\n")
        return password, True

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
            notes = [f"already {current.describe()}", *self._secure_running(current.port)]
            self._ensure_database(current.port)
            return "; ".join(notes)
        self._ensure_runtime_user()
        self._prepare_dirs()
        data = self.data_dir
        self._chown(self.state_dir)
        self._chown(data.parent)
        self._chown(data)
        self._prepare_socket_dir()
        password, _generated = self._password()
        notes = []
        pid_file = data / "postmaster.pid"
        if pid_file.exists():
            pid_file.unlink()
            notes.append(f"removed a stale pid file (pid {current.pid or '?'} is not running)")
        if not (data / "PG_VERSION").exists():
            self._initdb(data, password)
            notes.append(f"initialised a new cluster in {data}")
        self._write_config(data, self.port)
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
            env=server_environment(),
        )
        if result.returncode != 0:
            raise TickfeaturesError(
                f"PostgreSQL did not start: {_last_error_line(self.log_file)}"
                f" (log: {self.log_file})"
            )
        # The new pg_hba.conf was in place before the server started: a role without a
        # password (a cluster initialised with trust) cannot log in over TCP until it has one.
        with self._admin(self.port) as conn:
            if self._sync_password(conn, password):
                notes.append(
                    f"set the superuser's password (kept in {self.password_file});"
                    " TCP connections now need it (scram-sha-256)"
                )
        self._ensure_database(self.port)
        self._check_password_required(self.port)
        notes.append(f"running on 127.0.0.1:{self.port}")
        return "; ".join(notes)

    def _secure_running(self, port: int) -> list[str]:
        """Bring a running cluster to password authentication over TCP; notes of what changed.

        A cluster started by an earlier version trusts loopback TCP: its superuser gets the
        password while trust still applies, then pg_hba.conf is rewritten and reloaded, and
        this returns only once a wrong password is refused."""
        notes = []
        data = self.data_dir
        password, _generated = self._password()
        with self._admin(port) as conn:
            if self._sync_password(conn, password):
                notes.append(f"set the superuser's password (kept in {self.password_file})")
        if (data / "pg_hba.conf").read_text() != self._hba():
            if not self.socket_dir.is_dir():
                self._prepare_socket_dir()
            self._write_config(data, port)
            with self._admin(port) as conn:
                conn.execute("select pg_reload_conf()")
            self._check_password_required(port, wait=10.0)
            notes.append(
                "TCP connections now need a password (scram-sha-256); restart the cluster"
                " (`db stop`, `db start`) to open its private socket for pg_cron"
            )
        return notes

    def _admin(self, port: int, database: str = "postgres") -> psycopg.Connection:
        """A superuser connection: through the private socket when it is there, else over TCP
        with the password (or trust, on a cluster from before passwords)."""
        sock = self.socket_dir / f".s.PGSQL.{port}"
        if sock.exists():
            target = {"host": str(self.socket_dir), "port": port, "user": config.SUPERUSER}
            conninfo = make_conninfo("", **target, dbname=database)
        else:
            conninfo = self.url(port, database)
        try:
            return psycopg.connect(conninfo, autocommit=True, connect_timeout=10)
        except psycopg.OperationalError as exc:
            hint = (
                "; if the password file was lost, restart the cluster (`tickfeatures db stop`,"
                " `tickfeatures db start`) to set a new one"
                if "password" in str(exc)
                else ""
            )
            raise TickfeaturesError(
                f"cannot reach the embedded cluster: {_first_line(exc)}{hint}"
            ) from None

    def _sync_password(self, conn: psycopg.Connection, password: str) -> bool:
        """Give the superuser `password` unless it has it already; True if it was set."""
        row = conn.execute(
            "select rolpassword from pg_authid where rolname = %s", (config.SUPERUSER,)
        ).fetchone()
        if row is not None and scram_matches(row[0], password):
            return False
        # Only the SCRAM verifier reaches the server, never the password itself.
        conn.execute(
            sql.SQL("alter role {} password {}").format(
                sql.Identifier(config.SUPERUSER),
                sql.Literal(scram_verifier(password)),
            )
        )
        return True

    def _check_password_required(self, port: int, wait: float = 0.0) -> None:
        """Refuse to return while TCP accepts a wrong password (polling up to `wait` seconds
        for a reload to take effect)."""
        wrong = make_conninfo(self.url(port, "postgres"), password=secrets.token_hex(8))
        deadline = time.monotonic() + wait
        while True:
            try:
                psycopg.connect(wrong, connect_timeout=10).close()
            except psycopg.OperationalError as exc:
                if "password authentication failed" in str(exc):
                    return
                raise TickfeaturesError(
                    f"cannot reach the embedded cluster: {_first_line(exc)}"
                ) from None
            if time.monotonic() >= deadline:
                raise TickfeaturesError(
                    f"the embedded cluster on port {port} accepts a wrong password over TCP;"
                    f" check {self.data_dir / 'pg_hba.conf'}"
                )
            time.sleep(0.05)

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

    def _initdb(self, data: Path, password: str) -> None:
        # initdb runs as the cluster's OS user: it reads the password from a file of its own,
        # removed as soon as initdb is done.
        fd, name = tempfile.mkstemp(prefix=".initdb-", dir=data.parent)
        pwfile = Path(name)
        try:
            with os.fdopen(fd, "w") as fh:
                fh.write(password + "\n")
            self._chown(pwfile)
            _run(
                [
                    *self._runtime_prefix(),
                    str(PG_BINDIR / "initdb"),
                    "-D",
                    str(data),
                    "-U",
                    config.SUPERUSER,
                    f"--pwfile={pwfile}",
                    "--auth-host=scram-sha-256",
                    "--auth-local=trust",
                    "--encoding=UTF8",
                    "--locale=C.UTF-8",
                    "--no-instructions",
                ],
                what="initdb",
            )
        finally:
            pwfile.unlink(missing_ok=True)

    def _hba(self) -> str:
        return (
            "# Written by `tickfeatures db start` on every start; edits are lost.\n"
            f"# Unix socket: only in {self.socket_dir}, which only the cluster's OS user\n"
            "# (and root) can enter; administration and pg_cron's jobs connect there.\n"
            "local all all trust\n"
            "# TCP, loopback only: every role needs its password (SCRAM-SHA-256); the\n"
            f"# superuser's is in {self.password_file}.\n"
            "host all all 127.0.0.1/32 scram-sha-256\n"
        )

    def _write_config(self, data: Path, port: int) -> None:
        conf = data / "tickfeatures.conf"
        conf.write_text(
            "# Written by `tickfeatures db start` on every start; edit postgresql.conf instead.\n"
            "listen_addresses = '127.0.0.1'\n"
            f"port = {port}\n"
            f"unix_socket_directories = {_conf_text(self.socket_dir)}\n"
            "unix_socket_permissions = 0700\n"
            "password_encryption = 'scram-sha-256'\n"
            "shared_preload_libraries = 'timescaledb,pg_cron'\n"
            f"cron.database_name = '{config.DATABASE}'\n"
            # pg_cron runs each job through a libpq connection: the private socket, no password
            f"cron.host = {_conf_text(self.socket_dir)}\n"
            "timescaledb.telemetry_level = off\n"
            # background workers: TimescaleDB's launcher and its schedulers and jobs (one
            # scheduler per database, at most timescaledb.max_background_workers), pg_cron's
            # launcher, and the parallel query workers a bar family's full build runs its
            # shards in (PostgreSQL's default of 8 in all leaves none once a few databases
            # have TimescaleDB)
            "timescaledb.max_background_workers = 16\n"
            "max_worker_processes = 32\n"
            "max_parallel_workers = 8\n"
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
        hba = data / "pg_hba.conf"
        hba.write_text(self._hba())
        self._chown(hba)

    def _ensure_database(self, port: int) -> None:
        with self._admin(port) as conn:
            exists = conn.execute(
                "select 1 from pg_database where datname = %s", (config.DATABASE,)
            ).fetchone()
            if not exists:
                conn.execute(f'create database "{config.DATABASE}"')
        self._update_pg_cron(port)

    def _update_pg_cron(self, port: int) -> None:
        """Create the pg_cron extension in the cron database (cron.database_name, the
        project's database) and bring it up to the version the server loaded (`make install`
        replaces bookworm's 1.4.2 with a build of 1.6)."""
        with self._admin(port, config.DATABASE) as conn:
            conn.execute("create extension if not exists pg_cron")
            row = conn.execute(
                "select e.extversion, a.default_version from pg_extension as e"
                " join pg_available_extensions as a on a.name = e.extname"
                " where e.extname = 'pg_cron'"
            ).fetchone()
            if row and row[0] != row[1]:
                conn.execute("alter extension pg_cron update")


def scram_verifier(password: str, iterations: int = SCRAM_ITERATIONS) -> str:
    """The SCRAM-SHA-256 verifier PostgreSQL stores for `password` (RFC 5802, 7677), so that
    the password itself is never sent to the server. SASLprep leaves the generated (ASCII)
    passwords as they are."""
    salt = secrets.token_bytes(16)
    stored, server = _scram_keys(password, salt, iterations)
    b64 = base64.b64encode
    return (
        f"SCRAM-SHA-256${iterations}:{b64(salt).decode()}"
        f"${b64(stored).decode()}:{b64(server).decode()}"
    )


def scram_matches(verifier: str | None, password: str) -> bool:
    """Whether a stored SCRAM-SHA-256 verifier is that of `password`."""
    try:
        method, rest = (verifier or "").split("$", 1)
        head, keys = rest.split("$", 1)
        iterations, salt = head.split(":", 1)
        stored, server = keys.split(":", 1)
        if method != "SCRAM-SHA-256":
            return False
        want = _scram_keys(password, base64.b64decode(salt), int(iterations))
        have = (base64.b64decode(stored), base64.b64decode(server))
    except ValueError:
        return False
    return all(hmac.compare_digest(a, b) for a, b in zip(want, have, strict=True))


def _scram_keys(password: str, salt: bytes, iterations: int) -> tuple[bytes, bytes]:
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations)
    client_key = hmac.digest(salted, b"Client Key", "sha256")
    server_key = hmac.digest(salted, b"Server Key", "sha256")
    return hashlib.sha256(client_key).digest(), server_key


def _conf_text(value: object) -> str:
    """A string value for postgresql.conf, quoted."""
    return "'" + str(value).replace("\\", "\\\\").replace("'", "''") + "'"


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
