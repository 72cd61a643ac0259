"""Serving features: point-in-time training sets from Python and the CLI.

One implementation: the database writes the query (features.training_set_sql, migration
0025), which every door runs. Here the events' symbol and ts go to a temporary table (COPY,
numbered in (symbol, ts) order), the query runs in batches of events (for the progress bar;
an event's row does not depend on the batch) and comes back through COPY ... CSV into
pandas, typed by the query's columns.
The events' own columns are returned as given; the features come from the database.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Sequence
from datetime import timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import psycopg
from psycopg import sql

from tickfeatures.errors import TickfeaturesError

EVENTS_TABLE = "_tf_training_events"
BATCH_EVENTS = 20_000

# PostgreSQL type OIDs of the feature columns, and how pandas holds each
_FLOAT = {700, 701, 1700}  # real, double precision, numeric
_INT = {20, 21, 23}  # bigint, smallint, integer
_BOOL = {16}
_TIMESTAMPTZ = {1184}


def read_events(path: Path) -> pd.DataFrame:
    """Events from a CSV or Parquet file; ts parsed with its zone (a ts without one is an
    error: a zone guessed here would shift every event)."""
    suffixes = "".join(path.suffixes[-2:]).lower()
    if not path.exists():
        raise TickfeaturesError(f"{path}: no such file")
    if suffixes.endswith(".parquet"):
        frame = pd.read_parquet(path)
    elif suffixes.endswith((".csv", ".csv.gz")):
        frame = pd.read_csv(path, dtype={"symbol": "string"})
        if "ts" in frame.columns:
            frame["ts"] = _parse_ts(frame["ts"], path.name)
    else:
        raise TickfeaturesError(f"{path.name}: events must be a .csv, .csv.gz or .parquet file")
    return frame


def _parse_ts(values: pd.Series, where: str) -> pd.Series:
    text = values.astype("string")
    has_zone = text.str.contains(r"(?:Z|[+-]\d\d(?::?\d\d)?)$", regex=True, na=False)
    if (~has_zone & text.notna()).any():
        first = text[~has_zone & text.notna()].iloc[0]
        raise TickfeaturesError(
            f"{where}: ts '{first}' has no time zone; write it with one (e.g. {first}Z for UTC)"
        )
    try:
        return pd.to_datetime(text, utc=True, format="ISO8601")
    except (ValueError, TypeError) as exc:
        raise TickfeaturesError(f"{where}: ts is not a timestamp ({exc})") from None


def check_events(events: pd.DataFrame) -> None:
    """One-line errors for events the database could not read as meant."""
    missing = [c for c in ("symbol", "ts") if c not in events.columns]
    if missing:
        raise TickfeaturesError(
            f"events have no column {missing[0]} (columns: {', '.join(map(str, events.columns))})"
        )
    ts = events["ts"]
    if not isinstance(ts.dtype, pd.DatetimeTZDtype):
        if pd.api.types.is_datetime64_dtype(ts.dtype):
            raise TickfeaturesError(
                "events ts has no time zone; localize it (e.g. ts.dt.tz_localize('UTC'))"
            )
        raise TickfeaturesError(f"events ts is {ts.dtype}, not a timestamp with a time zone")
    if ts.isna().any() or events["symbol"].isna().any():
        n = int((ts.isna() | events["symbol"].isna()).sum())
        raise TickfeaturesError(f"events: {n} event(s) without symbol or ts")
    if "_event" in events.columns:
        raise TickfeaturesError("events: the column name _event is reserved")
    # libpq ends a quoted name at a NUL: the column would silently become another
    named = [str(c) for c in events.columns if "\x00" in str(c)]
    if named:
        raise TickfeaturesError(f"events: column name {named[0]!r} holds a NUL character")


def _interval(max_age: str | timedelta | None) -> str | None:
    if max_age is None:
        return None
    if isinstance(max_age, timedelta):
        return f"{max_age.total_seconds()} seconds"
    return str(max_age)


def training_set(
    conn: psycopg.Connection,
    events: pd.DataFrame,
    features: Sequence[str] | str,
    max_age: str | timedelta | None = None,
    *,
    progress: Callable[[int, int], None] | None = None,
    batch: int = BATCH_EVENTS,
) -> pd.DataFrame:
    """Each event (a row of `events`: symbol, ts with a zone, any other columns) with the
    asked features as they were known at ts: per model, the newest row at or before ts (a
    bar once it has closed: open + 1 minute <= ts), with its ts as <model>_ts, NULL when
    there is none or (with max_age, e.g. '5 minutes') it is older than max_age.

    features: names, families, models, globs ('ofi_*'), model.name or model.* (a bare name
    that is both a feature's and a family's is an error), or a catalog query's; targets only
    by name. Returns the events' columns as given, then the features, in the events' order.
    """
    check_events(events)
    names = [features] if isinstance(features, str) else list(features)
    frame = events.reset_index(drop=True)
    with conn.transaction():
        # dropped at the end (a transaction() inside the caller's is a savepoint, which an
        # ON COMMIT DROP would outlive)
        conn.execute(
            sql.SQL("drop table if exists pg_temp.{}").format(sql.Identifier(EVENTS_TABLE))
        )
        conn.execute(
            sql.SQL(
                "create temporary table {} (_event bigint, symbol text, ts timestamptz)"
            ).format(sql.Identifier(EVENTS_TABLE))
        )
        # the other event columns are not sent; but a name the output would repeat is an error
        # the database reports, so send their names (empty, typed text)
        for column in frame.columns:
            if column not in ("symbol", "ts"):
                conn.execute(
                    sql.SQL("alter table {} add column {} text").format(
                        sql.Identifier(EVENTS_TABLE), sql.Identifier(str(column))
                    )
                )
        # _event numbers the events in (symbol, ts) order, so that each batch of them is one
        # stretch of every family's table (index probes close together, pages cached)
        symbols = frame["symbol"].astype(str).to_numpy()
        stamps = frame["ts"]
        order = np.lexsort((stamps.to_numpy(dtype="datetime64[ns]"), symbols))
        with conn.cursor().copy(
            sql.SQL("copy {} (_event, symbol, ts) from stdin").format(sql.Identifier(EVENTS_TABLE))
        ) as copy:
            for i, position in enumerate(order):
                copy.write_row((i, symbols[position], stamps.iat[position].to_pydatetime()))
        conn.execute(sql.SQL("create index on {} (_event)").format(sql.Identifier(EVENTS_TABLE)))
        conn.execute(sql.SQL("analyze {}").format(sql.Identifier(EVENTS_TABLE)))
        query = conn.execute(
            "select features.training_set_sql(%s::regclass, %s::text[], %s::interval)",
            (f"pg_temp.{EVENTS_TABLE}", names, _interval(max_age)),
        ).fetchone()[0]  # type: ignore[index]
        event_columns = [str(c) for c in frame.columns if c not in ("symbol", "ts")]
        described = conn.execute(f"select * from ({query}) as training limit 0").description
        keep = [
            d for d in described or [] if d.name not in ("_event", "symbol", "ts", *event_columns)
        ]
        selected = ", ".join(['"_event"', *(_quote(d.name) for d in keep)])
        parts = []
        total = len(frame)
        for start in range(0, total, batch):
            part = _copy_frame(
                conn,
                f"select {selected} from ({query}) as training"
                f" where _event >= {start} and _event < {start + batch} order by _event",
                keep,
            )
            parts.append(part)
            if progress:
                progress(min(start + batch, total), total)
        conn.execute(sql.SQL("drop table pg_temp.{}").format(sql.Identifier(EVENTS_TABLE)))
    values = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=["_event"])
    # back to the caller's order: event _event is frame row order[_event]
    values.index = order[values.pop("_event").to_numpy(dtype=np.int64)]
    values = values.reindex(range(len(frame)))
    # one block per dtype (concat keeps each part's blocks; a user adding columns to a
    # fragmented frame gets pandas' PerformanceWarning)
    return pd.concat([frame, values.reset_index(drop=True)], axis=1).copy()


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _copy_frame(conn: psycopg.Connection, query: str, columns: list) -> pd.DataFrame:
    buffer = io.BytesIO()
    with conn.cursor() as cur, cur.copy(f"copy ({query}) to stdout (format csv, header)") as copy:
        for chunk in copy:
            buffer.write(chunk)
    buffer.seek(0)
    dtypes: dict[str, object] = {"_event": "int64"}
    dates, bools = [], []
    for column in columns:
        if column.type_code in _FLOAT:
            dtypes[column.name] = "float64"
        elif column.type_code in _INT:
            dtypes[column.name] = "Int64"
        elif column.type_code in _BOOL:
            bools.append(column.name)
            dtypes[column.name] = "string"
        elif column.type_code in _TIMESTAMPTZ:
            dates.append(column.name)
            dtypes[column.name] = "string"
        else:
            dtypes[column.name] = "string"
    frame = pd.read_csv(buffer, dtype=dtypes, keep_default_na=False, na_values=[""])
    for name in dates:
        frame[name] = pd.to_datetime(frame[name], utc=True, format="ISO8601")
    for name in bools:
        frame[name] = frame[name].map({"t": True, "f": False}).astype("boolean")
    return frame
