"""Connections to the active database, with one-line errors."""

from __future__ import annotations

import re

import psycopg

from tickfeatures import config
from tickfeatures.errors import TickfeaturesError


def redact(url: str) -> str:
    """The URL without its password, for messages."""
    url = re.sub(r"(://[^:/@]+):[^@]*@", r"\1:***@", url)
    return re.sub(r"(password\s*=\s*)\S+", r"\1***", url)


def connect(url: str | None = None, *, autocommit: bool = False) -> psycopg.Connection:
    active = config.active_database()
    url = url or active.url
    try:
        return psycopg.connect(url, autocommit=autocommit, connect_timeout=10)
    except psycopg.OperationalError as exc:
        hint = (
            " (is it running? `tickfeatures db start`)"
            if active.embedded and url == active.url
            else ""
        )
        reason = str(exc).strip().splitlines()[-1] if str(exc).strip() else "unknown error"
        raise TickfeaturesError(f"cannot connect to {redact(url)}: {reason}{hint}") from None
    except psycopg.ProgrammingError as exc:
        raise TickfeaturesError(f"invalid connection string {redact(url)}: {exc}") from None
