"""`tickfeatures quality`: the `quality.*` views of migration 0013 as plain-text tables.

Every figure comes from the database's quality functions (the views with parameters), so the
report and a SQL client reading `quality.symbol_summary` agree. The helpers that check a
symbol and a time range are shared with `tickfeatures plot`.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg

from tickfeatures import db
from tickfeatures.errors import TickfeaturesError

GAP_DEFAULT = 5.0
GAPS_LISTED = 20
LEVELS = range(1, 11)


def _say(message: str = "") -> None:
    print(message, flush=True)


# -- scope: symbol, time range, gap threshold, shared with `tickfeatures plot` ---------------


def parse_time(option: str, text: str | None) -> datetime | None:
    """An ISO-8601 time (a date alone is midnight); naive times are UTC."""
    if text is None:
        return None
    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError:
        raise TickfeaturesError(
            f"{option} {text!r} is not an ISO-8601 time (e.g. 2026-01-05T09:00:00Z)"
        ) from None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def gap_interval(seconds: float) -> timedelta:
    if not math.isfinite(seconds) or seconds <= 0:
        raise TickfeaturesError(f"--gap {seconds:g} must be a positive number of seconds")
    return timedelta(seconds=seconds)


@dataclass(frozen=True)
class Scope:
    """What a report or plot covers; `t_from`/`t_to` are None for an open end."""

    symbol: str | None
    t_from: datetime | None
    t_to: datetime | None
    gap: timedelta

    @property
    def bounds(self) -> tuple[datetime, datetime]:
        return (
            self.t_from or datetime.min.replace(tzinfo=UTC),
            self.t_to or datetime.max.replace(tzinfo=UTC),
        )

    def describe(self) -> str:
        what = self.symbol or "all symbols"
        start = fmt_time(self.t_from) if self.t_from else "the first snapshot"
        end = fmt_time(self.t_to) if self.t_to else "the last"
        return f"{what}, {start} to {end}"


def scope_from_args(args: argparse.Namespace, *, symbol_required: bool = False) -> Scope:
    t_from = parse_time("--from", args.t_from)
    t_to = parse_time("--to", args.t_to)
    if t_from and t_to and t_from > t_to:
        raise TickfeaturesError(f"--from {args.t_from} is after --to {args.t_to}")
    if symbol_required and not args.symbol:
        raise TickfeaturesError("--symbol is required")
    return Scope(args.symbol, t_from, t_to, gap_interval(args.gap))


def connect() -> psycopg.Connection:
    """A connection in UTC, without JIT (its compile time dwarfs these queries), with the
    quality schema checked."""
    conn = db.connect()
    conn.execute("set timezone = 'UTC'")
    conn.execute("set jit = off")
    if conn.execute("select to_regnamespace('quality')").fetchone() == (None,):
        conn.close()
        raise TickfeaturesError(
            "the database has no quality views; run `tickfeatures migrate` first"
        )
    return conn


def check_scope(conn: psycopg.Connection, scope: Scope) -> None:
    """An error for an unknown symbol or a range without snapshots."""
    if scope.symbol is not None:
        known = conn.execute(
            "select exists (select from market.l2_snapshots where symbol = %s)", (scope.symbol,)
        ).fetchone()
        if known == (False,):
            raise TickfeaturesError(f"unknown symbol {scope.symbol!r}: no snapshots of it loaded")
    t_from, t_to = scope.bounds
    found = conn.execute(
        "select exists (select from market.l2_snapshots"
        " where ts between %s and %s and (%s::text is null or symbol = %s::text))",
        (t_from, t_to, scope.symbol, scope.symbol),
    ).fetchone()
    if found != (True,):
        if scope.t_from is None and scope.t_to is None:
            raise TickfeaturesError("no snapshots loaded; `tickfeatures load l2 FILE` first")
        raise TickfeaturesError(f"no snapshots in range: {scope.describe()}")


# -- formatting --------------------------------------------------------------------------------


def fmt_time(value: datetime | None) -> str:
    if value is None:
        return "-"
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]


def fmt_pct(share: float | None) -> str:
    """A share as a percentage, 2 decimals; '-' when undefined."""
    return "-" if share is None else f"{100 * share:.2f}%"


def fmt_score(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"


def fmt_seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """Columns padded to their widest cell; text left-aligned, everything else right."""
    cells = [[str(c) for c in headers], *[[str(c) for c in row] for row in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    numeric = [
        all(not isinstance(row[i], str) or _looks_numeric(row[i]) for row in rows)
        for i in range(len(headers))
    ]
    lines = []
    for n, row in enumerate(cells):
        parts = [
            cell.rjust(width) if numeric[i] else cell.ljust(width)
            for i, (cell, width) in enumerate(zip(row, widths, strict=True))
        ]
        lines.append("  ".join(parts).rstrip())
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _looks_numeric(text: str) -> bool:
    return text == "-" or text.rstrip("%").replace(".", "", 1).replace("-", "", 1).isdigit()


# -- the report --------------------------------------------------------------------------------


def _rows(conn: psycopg.Connection, query: str, params: Sequence[Any]) -> list[dict[str, Any]]:
    cur = conn.execute(query, params)  # type: ignore[arg-type]
    names = [d.name for d in cur.description or []]
    return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]


def _files_section(
    conn: psycopg.Connection, scope: Scope, file_name: str | None
) -> list[dict[str, Any]]:
    t_from, t_to = scope.bounds
    files = _rows(
        conn,
        "select * from quality.file_quality(%s, %s, %s, %s) order by file_id",
        (scope.gap, t_from, t_to, scope.symbol),
    )
    if file_name is not None:
        files = [f for f in files if f["file_name"] == file_name]
    elif scope.symbol or scope.t_from or scope.t_to:
        files = [f for f in files if f["snapshots"] > 0]
    _say(f"Files ({len(files)})")
    _say(
        table(
            [
                "id",
                "file",
                "status",
                "rows in",
                "loaded",
                "quarantined",
                "duplicates",
                "dup rate",
                "snapshots",
                "crossed",
                "locked",
                "gaps",
                "mean score",
                "min score",
            ],
            [
                (
                    f["file_id"],
                    f["file_name"],
                    f["status"],
                    f["rows_in"] if f["rows_in"] is not None else "-",
                    f["rows_loaded"] if f["rows_loaded"] is not None else "-",
                    f["rows_quarantined"] if f["rows_quarantined"] is not None else "-",
                    f["rows_duplicate"] if f["rows_duplicate"] is not None else "-",
                    fmt_pct(f["duplicate_rate"]),
                    f["snapshots"],
                    fmt_pct(f["crossed_share"]),
                    fmt_pct(f["locked_share"]),
                    f["gaps"],
                    fmt_score(f["mean_score"]),
                    fmt_score(f["min_score"]),
                )
                for f in files
            ],
        )
    )
    ids = [f["file_id"] for f in files]
    reasons = _rows(
        conn,
        "select file_id, file_name, reason, rows from quality.file_quarantine_reasons"
        " where file_id = any(%s) order by file_id, rows desc, reason",
        (ids,),
    )
    _say()
    if reasons:
        _say("Quarantined rows by reason")
        _say(
            table(
                ["id", "file", "reason", "rows"],
                [(r["file_id"], r["file_name"], r["reason"], r["rows"]) for r in reasons],
            )
        )
    else:
        _say("Quarantined rows by reason: none")
    return files


def _symbols_section(conn: psycopg.Connection, scope: Scope) -> None:
    t_from, t_to = scope.bounds
    symbols = _rows(
        conn,
        "select * from quality.symbol_quality(%s, %s, %s, %s) order by symbol",
        (scope.gap, t_from, t_to, scope.symbol),
    )
    _say(f"Symbols ({len(symbols)}; gaps: more than {scope.gap.total_seconds():g} s)")
    _say(
        table(
            [
                "symbol",
                "snapshots",
                "first",
                "last",
                "crossed",
                "locked",
                "L1 incomplete",
                "levels missing",
                "gaps",
                "longest gap s",
                "mean score",
                "min score",
            ],
            [
                (
                    s["symbol"],
                    s["snapshots"],
                    fmt_time(s["first_ts"]),
                    fmt_time(s["last_ts"]),
                    fmt_pct(s["crossed_share"]),
                    fmt_pct(s["locked_share"]),
                    fmt_pct(s["level1_incomplete_share"]),
                    fmt_pct(s["missing_level_share"]),
                    s["gaps"],
                    fmt_seconds(s["max_gap_seconds"]),
                    fmt_score(s["mean_score"]),
                    fmt_score(s["min_score"]),
                )
                for s in symbols
            ],
        )
    )


def _null_rates_section(
    rows: list[dict[str, Any]], key: str, title: str, label: str = "symbol"
) -> None:
    """One line per (key, side), one column per level: percent of snapshots missing it."""
    grouped: dict[tuple[Any, str], dict[int, float]] = {}
    for r in rows:
        grouped.setdefault((r[key], r["side"]), {})[r["level"]] = r["null_rate"]
    _say(title)
    _say(
        table(
            [label, "side", *(f"L{i}" for i in LEVELS)],
            [
                (
                    str(name),
                    side,
                    *("-" if rates.get(i, 0.0) == 0 else f"{100 * rates[i]:.2f}" for i in LEVELS),
                )
                for (name, side), rates in grouped.items()
            ],
        )
    )


def _gaps_section(gaps: list[dict[str, Any]], scope: Scope) -> None:
    threshold = scope.gap.total_seconds()
    if not gaps:
        _say(f"Gaps of more than {threshold:g} s: none")
        return
    longest = max(g["gap_seconds"] for g in gaps)
    _say(f"Gaps of more than {threshold:g} s: {len(gaps)}, longest {longest:.3f} s")
    shown = gaps[:GAPS_LISTED]
    _say(
        table(
            ["symbol", "from", "to", "seconds"],
            [
                (
                    g["symbol"],
                    fmt_time(g["gap_start"]),
                    fmt_time(g["gap_end"]),
                    fmt_seconds(g["gap_seconds"]),
                )
                for g in shown
            ],
        )
    )
    if len(gaps) > len(shown):
        _say(f"... and {len(gaps) - len(shown)} more (select * from quality.gaps(...))")


def cmd_quality(args: argparse.Namespace) -> int:
    scope = scope_from_args(args)
    with connect() as conn:
        if args.file is not None:
            return _file_report(conn, scope, args.file)
        check_scope(conn, scope)
        t_from, t_to = scope.bounds
        _say(f"Data quality: {scope.describe()}")
        _say()
        _files_section(conn, scope, None)
        _say()
        _symbols_section(conn, scope)
        _say()
        nulls = _rows(
            conn,
            "select * from quality.symbol_level_nulls(%s, %s, %s) order by symbol, side desc,"
            " level",
            (t_from, t_to, scope.symbol),
        )
        _null_rates_section(nulls, "symbol", "Levels missing (% of snapshots, price or size NULL)")
        _say()
        gaps = _rows(
            conn,
            "select * from quality.gaps(%s, %s, %s, %s) order by symbol, gap_start",
            (scope.gap, t_from, t_to, scope.symbol),
        )
        _gaps_section(gaps, scope)
    return 0


def _file_report(conn: psycopg.Connection, scope: Scope, file_name: str) -> int:
    """The report of one file (every ledger row with that name): its snapshots only."""
    ids = [
        r[0]
        for r in conn.execute(
            "select file_id from ops.ingest_files where file_name = %s order by file_id",
            (file_name,),
        ).fetchall()
    ]
    if not ids:
        raise TickfeaturesError(f"no file named {file_name!r} in the ingest ledger")
    if scope.symbol is not None:
        check_scope(conn, Scope(scope.symbol, None, None, scope.gap))
    t_from, t_to = scope.bounds
    _say(f"Data quality of file {file_name}: {scope.describe()}")
    _say()
    _files_section(conn, scope, file_name)
    _say()
    nulls = _rows(
        conn,
        "select * from quality.file_level_nulls(%s, %s, %s) where file_id = any(%s)"
        " order by file_id, side desc, level",
        (t_from, t_to, scope.symbol, ids),
    )
    if nulls:
        _null_rates_section(
            nulls, "file_id", "Levels missing (% of the file's snapshots)", label="id"
        )
    else:
        _say("Levels missing: the file has no snapshots in scope")
    _say()
    gaps = _rows(
        conn,
        "select distinct symbol, prev_ts as gap_start, ts as gap_end,"
        " seconds_since_prev as gap_seconds"
        " from quality.file_snapshot_scores(%s, %s, %s, %s)"
        " where gap_before and file_id = any(%s) order by symbol, gap_start",
        (scope.gap, t_from, t_to, scope.symbol, ids),
    )
    _gaps_section(gaps, scope)
    return 0


def add_command(sub: Any) -> None:
    p = sub.add_parser(
        "quality",
        help="data-quality report of the loaded snapshots and files",
        description='Print the quality views (migration 0013, README "Data quality"): per '
        "file, per symbol, missing levels, gaps and the snapshot quality score. The same "
        "figures are in the quality.* views for any SQL client.",
    )
    p.add_argument("--symbol", help="one symbol (default: all)")
    p.add_argument("--from", dest="t_from", metavar="T1", help="ISO-8601 start, inclusive (UTC)")
    p.add_argument("--to", dest="t_to", metavar="T2", help="ISO-8601 end, inclusive (UTC)")
    p.add_argument(
        "--gap",
        type=float,
        default=GAP_DEFAULT,
        metavar="SECONDS",
        help=f"report gaps longer than this (default {GAP_DEFAULT:g}; also the score's gap)",
    )
    p.add_argument(
        "--file", metavar="NAME", help="only this loaded file (its name in the ingest ledger)"
    )
    p.set_defaults(func=cmd_quality)
