"""Connections to the active database, with one-line errors."""

from __future__ import annotations

import re

import psycopg

from tickfeatures import config
from tickfeatures.errors import TickfeaturesError


def redact(url: str) -> str:
    """A libpq URI or key=value string without its password, for messages and logs."""
    url = re.sub(r"(://[^:/@?#]*):[^@/?#]*@", r"\1@", url)
    url = re.sub(r"([?&])password=[^&#]*&?", r"\1", url).rstrip("?&")
    return re.sub(r"\s*\bpassword\s*=\s*('(?:[^'\\]|\\.)*'|\S+)", "", url).strip()


def connect(url: str | None = None, *, autocommit: bool = False) -> psycopg.Connection:
    active = config.active_database()
    url = url or active.url
    try:
        return psycopg.connect(url, autocommit=autocommit, connect_timeout=10)
    except psycopg.OperationalError as exc:
        reason = str(exc).strip().splitlines()[-1] if str(exc).strip() else "unknown error"
        hint = ""
        if active.embedded and url == active.url:
            hint = (
                " (the password is kept in .tickfeatures/password; `tickfeatures db stop` and"
                " `db start` set a new one if it was lost)"
                if "password" in reason
                else " (is it running? `tickfeatures db start`)"
            )
        raise TickfeaturesError(f"cannot connect to {redact(url)}: {reason}{hint}") from None
    except psycopg.ProgrammingError as exc:
        raise TickfeaturesError(f"invalid connection string {redact(url)}: {exc}") from None
