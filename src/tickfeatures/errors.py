"""The one exception type the CLI turns into a one-line message and a non-zero exit."""

from __future__ import annotations


class TickfeaturesError(Exception):
    """A failure the user can act on; its message is a single line, without a traceback."""

    exit_code = 1
