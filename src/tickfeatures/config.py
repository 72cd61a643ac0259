"""Where things live: the project root, the embedded cluster's files, the active database."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from tickfeatures.errors import TickfeaturesError

DSN_ENV = "TICKFEATURES_DSN"
HOME_ENV = "TICKFEATURES_HOME"
PORT_ENV = "TICKFEATURES_PORT"
DEFAULT_PORT = 55432
DATABASE = "tickfeatures"
SUPERUSER = "tickfeatures"
STATE_DIR = ".tickfeatures"
# The embedded cluster's superuser password, generated on its first start (mode 0600).
PASSWORD_FILE = "password"


def project_root() -> Path:
    """The dbt project the CLI works on: $TICKFEATURES_HOME, else the nearest parent of the
    current directory holding dbt_project.yml, else the checkout this package was installed from."""
    env = os.environ.get(HOME_ENV)
    if env:
        root = Path(env).resolve()
        if not (root / "dbt_project.yml").is_file():
            raise TickfeaturesError(f"{HOME_ENV}={env} does not contain dbt_project.yml")
        return root
    here = Path.cwd().resolve()
    for candidate in (here, *here.parents):
        if (candidate / "dbt_project.yml").is_file():
            return candidate
    source_checkout = Path(__file__).resolve().parents[2]
    if (source_checkout / "dbt_project.yml").is_file():
        return source_checkout
    raise TickfeaturesError(
        f"no dbt_project.yml in {here} or its parents; run inside the tickfeatures project "
        f"or set {HOME_ENV}"
    )


def embedded_port() -> int:
    raw = os.environ.get(PORT_ENV, str(DEFAULT_PORT))
    try:
        port = int(raw)
    except ValueError:
        raise TickfeaturesError(f"{PORT_ENV}={raw!r} is not a port number") from None
    if not 1024 <= port <= 65535:
        raise TickfeaturesError(f"{PORT_ENV}={port} is outside 1024..65535")
    return port


def password_file(root: Path | None = None) -> Path:
    """Where the embedded cluster's superuser password is kept."""
    return (root or project_root()) / STATE_DIR / PASSWORD_FILE


def embedded_password(root: Path | None = None) -> str | None:
    """The embedded cluster's superuser password, or None before the cluster's first start
    (or when the file is not readable by this user)."""
    try:
        text = password_file(root).read_text().strip()
    except OSError:
        return None
    return text or None


def embedded_url(
    port: int | None = None, database: str = DATABASE, root: Path | None = None
) -> str:
    """The libpq URI of the embedded cluster, its password included (scram-sha-256 over TCP)."""
    port = embedded_port() if port is None else port
    password = embedded_password(root)
    secret = f":{quote(password, safe='')}" if password else ""
    return f"postgresql://{SUPERUSER}{secret}@127.0.0.1:{port}/{quote(database)}"


@dataclass(frozen=True)
class ActiveDatabase:
    url: str
    embedded: bool


def active_database() -> ActiveDatabase:
    """$TICKFEATURES_DSN when set, else the embedded cluster."""
    dsn = os.environ.get(DSN_ENV, "").strip()
    if dsn:
        return ActiveDatabase(url=dsn, embedded=False)
    return ActiveDatabase(url=embedded_url(), embedded=True)
