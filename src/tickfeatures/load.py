"""The loader: files of snapshots or bars into the raw hypertables, every row accounted for.

Each data row of a file ends in exactly one of three places, counted in `ops.ingest_files`:
loaded into the hypertable, quarantined in `ops.quarantine` with a reason, or skipped as an
identical duplicate of a row already loaded. A file is one transaction: a file that cannot be
read to its end (truncated or corrupt gzip, unreadable Parquet) commits nothing and is marked
failed with a one-line reason saying where it broke, unless `salvage` is set, which loads the
readable part and marks the file salvaged.

Pipeline (see docs/decisions.md for the measurements behind it): a reader thread parses
blocks with Arrow, validates them with numpy and encodes the valid rows as binary COPY data;
the main thread checks each block against rows already stored and COPYs it. Postgres parses
binary float8 without text conversion, so the server's work is the insert itself.
"""

from __future__ import annotations

import hashlib
import queue
import stat
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import psycopg
import pyarrow as pa
import pyarrow.compute as pc
from psycopg import sql
from psycopg.types.json import Jsonb

from tickfeatures import formats, pgcopy, readers, schema
from tickfeatures.errors import TickfeaturesError
from tickfeatures.values import (
    BAD_TS,
    MISSING_TS,
    NON_NUMERIC,
    _bits,
    _filled,
    numbers,
    timestamps_us,
)

CHUNK = 1 << 20
ATTEMPTS = 3  # a load that meets a concurrent load of the same rows is retried

# Reasons, in the order they are checked (a row gets the first that applies).
MISSING_SYMBOL = "missing symbol"
MALFORMED_LEVEL = "malformed level"
NEGATIVE_SIZE = "negative size"
NEGATIVE_SPREAD = "negative spread"
NEGATIVE_TICKS = "negative ticks"
FRACTIONAL_TICKS = "fractional ticks"
NON_POSITIVE_PRICE = "non-positive price"
DUP_IN_FILE = "conflicting duplicate of (symbol, ts) in the file"
DUP_EXISTING = "conflicting duplicate of an existing (symbol, ts)"
IDENTICAL = "identical duplicate"
# --same-ts first|last: records of one (symbol, microsecond) other than the one kept
SAME_TS_FIRST = "another record of the same microsecond kept (--same-ts first)"
SAME_TS_LAST = "a later record of the same microsecond kept (--same-ts last)"
TRUNCATED = "truncated line"


@dataclass(frozen=True)
class TableSpec:
    kind: str
    table: str
    columns: tuple[str, ...]
    price_columns: tuple[str, ...]
    size_columns: tuple[str, ...]
    # columns a file may leave out (loaded as NULL)
    optional_columns: tuple[str, ...] = ()
    # other columns that may not be negative, with the reason a negative value gets
    non_negative: tuple[tuple[str, str], ...] = ()
    # integer columns: a fractional value gets the reason; written as int4
    integer_columns: tuple[tuple[str, str], ...] = ()

    @property
    def value_columns(self) -> tuple[str, ...]:
        return self.columns[2:]


SPECS = {
    "l2": TableSpec(
        kind="l2",
        table="l2_snapshots",
        columns=schema.L2_COLUMNS,
        price_columns=tuple(c for c in schema.L2_LEVEL_COLUMNS if "_price_" in c),
        size_columns=tuple(c for c in schema.L2_LEVEL_COLUMNS if "_size_" in c),
    ),
    "bars": TableSpec(
        kind="bars",
        table="bars_1m",
        columns=schema.BAR_COLUMNS,
        price_columns=("open", "high", "low", "close"),
        size_columns=("volume",),
        optional_columns=schema.BAR_OPTIONAL_COLUMNS,
        non_negative=(("spread", NEGATIVE_SPREAD), ("ticks", NEGATIVE_TICKS)),
        integer_columns=(("ticks", FRACTIONAL_TICKS),),
    ),
}


@dataclass
class FileResult:
    path: Path
    status: str  # loaded | salvaged | skipped | failed
    rows_in: int = 0
    rows_loaded: int = 0
    rows_quarantined: int = 0
    rows_duplicate: int = 0
    rows_crossed: int = 0
    rows_locked: int = 0
    reasons: dict[str, int] = field(default_factory=dict)
    error: str | None = None
    file_id: int | None = None
    format: str | None = None


Progress = Callable[[int, int, int], None]  # rows read, bytes read, file bytes


def file_checksum(path: Path) -> tuple[str, int]:
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as fh:
        while block := fh.read(CHUNK):
            digest.update(block)
            size += len(block)
    return digest.hexdigest(), size


# -- one batch --------------------------------------------------------------------------------


@dataclass
class Prepared:
    """A validated batch: what to insert, what to set aside and why."""

    lines: np.ndarray
    symbol_ids: np.ndarray  # into Loader.symbols
    ts_us: np.ndarray
    values: np.ndarray
    nulls: np.ndarray
    reason: np.ndarray  # object: None (insert), or a reason
    detail: np.ndarray  # object
    earlier_line: np.ndarray  # int64: line of an earlier batch's row with the same key, or 0
    payload: list[
        memoryview
    ]  # binary COPY rows of the rows to insert as prepared by the reader thread
    batch: readers.Batch


class Loader:
    """One file into one table, in the caller's transaction."""

    def __init__(
        self, spec: TableSpec, path: Path, file_id: int, same_ts: str = "quarantine"
    ) -> None:
        self.spec = spec
        self.same_ts = same_ts
        self.path = path
        self.file_id = file_id
        self.symbols: list[str] = []
        self.symbol_bytes: list[bytes] = []
        self.symbol_index: dict[str, int] = {}
        # per symbol: keys already inserted by this file, for duplicates across batches
        self.max_ts: dict[int, int] = {}
        self.seen: dict[int, list[tuple[np.ndarray, np.ndarray]]] = {}
        self.counts: dict[str, int] = {}
        self.rows_in = 0
        self.loaded = 0
        self.crossed = 0
        self.locked = 0
        self.ranges: dict[int, list[int]] = {}  # symbol id -> [min_ts, max_ts, rows]
        integers = {name for name, _ in spec.integer_columns}
        self.integer_mask = np.array([c in integers for c in spec.value_columns])

    # -- reader thread ----------------------------------------------------------------------

    def _symbol_ids(self, arr: pa.Array) -> tuple[np.ndarray, np.ndarray]:
        """(symbol ids, is missing): ids into self.symbols, which grows with new names."""
        encoded = (
            arr if pa.types.is_dictionary(arr.type) else arr.cast(pa.string()).dictionary_encode()
        )
        names = encoded.dictionary.cast(pa.string()).to_pylist()
        mapping = np.zeros(len(names) + 1, dtype=np.int64)
        blank = np.zeros(len(names) + 1, dtype=bool)
        blank[-1] = True  # NULL
        for i, raw in enumerate(names):
            name = raw.strip()
            if not name:
                blank[i] = True
                continue
            if name not in self.symbol_index:
                self.symbol_index[name] = len(self.symbols)
                self.symbols.append(name)
                self.symbol_bytes.append(name.encode())
            mapping[i] = self.symbol_index[name]
        indices = encoded.indices
        if indices.null_count:
            indices = pc.coalesce(indices, pa.scalar(len(names), indices.type))
        codes = _filled(indices, np.dtype(f"int{indices.type.bit_width}"))
        return mapping[codes], blank[codes]

    def prepare(self, batch: readers.Batch) -> Prepared:
        spec = self.spec
        n = len(batch.lines)
        cols = batch.columns
        k = len(spec.value_columns)
        reason = np.full(n, None, dtype=object)
        detail = np.full(n, None, dtype=object)
        if n == 0:
            empty = np.zeros(0, dtype=np.int64)
            return Prepared(
                batch.lines,
                empty,
                empty,
                np.zeros((0, k)),
                np.zeros((0, k), dtype=bool),
                reason,
                detail,
                empty,
                [],
                batch,
            )

        def flag(mask: np.ndarray, why: str, describe: Callable[[np.ndarray], list] | None) -> None:
            rows = np.flatnonzero(mask & (reason == None))  # noqa: E711 (elementwise)
            if len(rows):
                reason[rows] = why
                if describe is not None:
                    detail[rows] = describe(rows)

        if batch.reasons is not None:  # set aside by the file's format (formats.py)
            details = batch.details
            for why in dict.fromkeys(batch.reasons[batch.reasons != None]):  # noqa: E711
                flag(
                    batch.reasons == why,
                    why,
                    None if details is None else (lambda rows, d=details: list(d[rows])),
                )
        symbol_ids, no_symbol = self._symbol_ids(cols["symbol"])
        flag(no_symbol, MISSING_SYMBOL, None)
        ts_us, ts_null, ts_bad = timestamps_us(cols["ts"])
        flag(ts_null, MISSING_TS, None)
        raw_ts = cols["ts"]
        flag(ts_bad, BAD_TS, lambda rows: [f"ts {raw_ts[int(i)].as_py()!r}" for i in rows])

        # Column-major: each column is written and read contiguously.
        values = np.empty((k, n)).T
        nulls = np.empty((k, n), dtype=bool).T
        bad_col = np.full(n, -1)
        negative_col = np.full(n, -1)
        nonpositive_col = np.full(n, -1)
        sizes, prices = set(spec.size_columns), set(spec.price_columns)
        for j, name in enumerate(spec.value_columns):
            if name not in cols:  # an optional column the file does not have
                values[:, j], nulls[:, j] = np.nan, True
                continue
            col, col_nulls, col_bad = numbers(cols[name])
            values[:, j], nulls[:, j] = col, col_nulls
            # the first offending column of each row, for the detail
            if col_bad.any():
                bad_col[(bad_col < 0) & col_bad] = j
            with np.errstate(invalid="ignore"):
                if name in sizes and (col < 0).any():
                    negative_col[(negative_col < 0) & (col < 0)] = j
                if name in prices and (col <= 0).any():
                    nonpositive_col[(nonpositive_col < 0) & (col <= 0)] = j

        def describe(where: np.ndarray, raw: bool) -> Callable[[np.ndarray], list]:
            def show(rows: np.ndarray) -> list[str]:
                out = []
                for r in rows:
                    name = spec.value_columns[int(where[r])]
                    value = cols[name][int(r)].as_py() if raw else values[r, int(where[r])]
                    out.append(f"{name} {value!r}" if raw else f"{name} = {value:g}")
                return out

            return show

        flag(bad_col >= 0, NON_NUMERIC, describe(bad_col, raw=True))
        for side in ("bid", "ask"):
            marker = cols.get(f"__malformed_{side}")
            if marker is not None:
                flag(
                    _bits(marker),
                    MALFORMED_LEVEL,
                    lambda rows, side=side: [f"{side}s: a level is not [price, size]"] * len(rows),
                )
        flag(negative_col >= 0, NEGATIVE_SIZE, describe(negative_col, raw=False))
        flag(nonpositive_col >= 0, NON_POSITIVE_PRICE, describe(nonpositive_col, raw=False))
        for name, why in spec.non_negative:
            j = spec.value_columns.index(name)
            with np.errstate(invalid="ignore"):
                flag(values[:, j] < 0, why, describe(np.full(n, j), raw=False))
        for name, why in spec.integer_columns:
            j = spec.value_columns.index(name)
            with np.errstate(invalid="ignore"):
                fractional = ~nulls[:, j] & (np.floor(values[:, j]) != values[:, j])
                # int4: a larger count is as wrong as a fraction
                fractional |= ~nulls[:, j] & (np.abs(values[:, j]) > 2**31 - 1)
            flag(fractional, why, describe(np.full(n, j), raw=False))

        # Duplicates within the batch: the first valid occurrence of a (symbol, ts) wins (the
        # last one with --same-ts last).
        ok = np.flatnonzero(reason == None)  # noqa: E711
        line_key = -batch.lines[ok] if self.same_ts == "last" else batch.lines[ok]
        order = ok[np.lexsort((line_key, ts_us[ok], symbol_ids[ok]))]
        same = (symbol_ids[order][1:] == symbol_ids[order][:-1]) & (
            ts_us[order][1:] == ts_us[order][:-1]
        )
        if same.any():
            starts = np.concatenate([[True], ~same])
            first_of_run = np.maximum.accumulate(np.where(starts, np.arange(len(order)), 0))
            run_start = order[first_of_run]
            later = order[~starts]
            first = run_start[~starts]
            identical = _same_values(values[later], nulls[later], values[first], nulls[first])
            reason[later[identical]] = IDENTICAL
            conflicting = later[~identical]
            why, kept = {
                "quarantine": (DUP_IN_FILE, "first occurrence at line {}"),
                "first": (SAME_TS_FIRST, "kept line {}"),
                "last": (SAME_TS_LAST, "kept line {}"),
            }[self.same_ts]
            reason[conflicting] = why
            detail[conflicting] = [kept.format(batch.lines[f]) for f in first[~identical]]

        # Duplicates of rows of earlier batches of this file: decided against the stored row.
        earlier = np.zeros(n, dtype=np.int64)
        ok = np.flatnonzero(reason == None)  # noqa: E711
        for sid in np.unique(symbol_ids[ok]):
            rows = ok[symbol_ids[ok] == sid]
            top = self.max_ts.get(int(sid))
            if top is not None:
                cand = rows[ts_us[rows] <= top]
                for keys, lines in self.seen[int(sid)]:
                    if not len(cand):
                        break
                    pos = np.searchsorted(keys, ts_us[cand])
                    pos = np.minimum(pos, len(keys) - 1)
                    hit = keys[pos] == ts_us[cand]
                    earlier[cand[hit]] = lines[pos[hit]]
                    cand = cand[~hit]
            fresh = rows[earlier[rows] == 0]
            if len(fresh):
                srt = np.argsort(ts_us[fresh], kind="stable")
                self.seen.setdefault(int(sid), []).append(
                    (ts_us[fresh][srt], batch.lines[fresh][srt])
                )
                self.max_ts[int(sid)] = max(int(ts_us[fresh].max()), top or -(2**62))

        insert = np.flatnonzero((reason == None) & (earlier == 0))  # noqa: E711
        payload = self._encode(insert, symbol_ids, ts_us, values, nulls)
        return Prepared(
            batch.lines,
            symbol_ids,
            ts_us,
            values,
            nulls,
            reason,
            detail,
            earlier,
            payload,
            batch,
        )

    def _encode(
        self,
        rows: np.ndarray,
        symbol_ids: np.ndarray,
        ts_us: np.ndarray,
        values: np.ndarray,
        nulls: np.ndarray,
    ) -> list[memoryview]:
        # (symbol, ts) order: consecutive inserts land on the same index pages.
        rows = rows[np.lexsort((ts_us[rows], symbol_ids[rows]))]
        return pgcopy.encode_rows(
            symbol_ids, self.symbol_bytes, ts_us, values, nulls, rows, self.integer_mask
        )

    # -- main thread ------------------------------------------------------------------------

    def _stored(
        self, cur: psycopg.Cursor, sids: np.ndarray, ts: np.ndarray, full: bool
    ) -> dict[tuple[int, int], tuple]:
        """Rows already in the table for these keys' symbols and time ranges."""
        if not len(sids):
            return {}
        names, lows, highs = [], [], []
        for sid in np.unique(sids):
            sel = ts[sids == sid]
            names.append(self.symbols[int(sid)])
            lows.append(_dt(int(sel.min())))
            highs.append(_dt(int(sel.max())))
        cols = sql.SQL(", ").join(
            sql.Identifier("m", c) for c in (self.spec.value_columns if full else ())
        )
        target = sql.Identifier("market", self.spec.table)
        query = sql.SQL(
            "select r.symbol, m.ts{sep}{cols} from unnest(%s::text[], %s::timestamptz[],"
            " %s::timestamptz[]) as r (symbol, lo, hi)"
            " join {target} as m on m.symbol = r.symbol and m.ts between r.lo and r.hi"
        ).format(sep=sql.SQL(", ") if full else sql.SQL(""), cols=cols, target=target)
        cur.execute(query, (names, lows, highs), binary=True)
        out: dict[tuple[int, int], tuple] = {}
        for row in cur:
            out[(self.symbol_index[row[0]], _us(row[1]))] = tuple(row[2:])
        return out

    def store(self, cur: psycopg.Cursor, p: Prepared) -> None:
        spec = self.spec
        self.rows_in += p.batch.rows_in
        reason, detail = p.reason, p.detail
        payload = p.payload
        ok = np.flatnonzero(reason == None)  # noqa: E711
        fresh = ok[p.earlier_line[ok] == 0]
        # Keys stored by other loads: identical rows skipped, changed ones set aside.
        stored = self._stored(cur, p.symbol_ids[fresh], p.ts_us[fresh], full=False)
        clash = [i for i in fresh if (int(p.symbol_ids[i]), int(p.ts_us[i])) in stored]
        # Keys stored by an earlier batch of this file.
        again = ok[p.earlier_line[ok] != 0]
        compare = np.asarray(clash + list(again), dtype=np.int64)
        if len(compare):
            full = self._stored(cur, p.symbol_ids[compare], p.ts_us[compare], full=True)
            for i in compare:
                old = full[(int(p.symbol_ids[i]), int(p.ts_us[i]))]
                old_vals = np.array([np.nan if v is None else v for v in old], dtype=float)
                same = _same_values(
                    p.values[i][None, :],
                    p.nulls[i][None, :],
                    old_vals[None, :],
                    np.array([v is None for v in old])[None, :],
                )[0]
                if same:
                    reason[i] = IDENTICAL
                elif p.earlier_line[i] and self.same_ts == "last":
                    self._supersede(cur, p, int(i), old)
                    reason[i] = _KEPT
                elif p.earlier_line[i]:
                    first_mode = self.same_ts == "first"
                    reason[i] = SAME_TS_FIRST if first_mode else DUP_IN_FILE
                    detail[i] = (
                        f"kept line {p.earlier_line[i]}"
                        if first_mode
                        else f"first occurrence at line {p.earlier_line[i]}"
                    )
                else:
                    reason[i] = DUP_EXISTING
            if clash:
                insert = np.flatnonzero(reason == None)  # noqa: E711
                payload = self._encode(insert, p.symbol_ids, p.ts_us, p.values, p.nulls)
        kept = reason == _KEPT  # stored by _supersede
        reason[kept] = None
        insert = np.flatnonzero((reason == None) & ~kept)  # noqa: E711
        if len(insert):
            copy = sql.SQL("copy {} ({}) from stdin (format binary)").format(
                sql.Identifier("market", spec.table),
                sql.SQL(", ").join(sql.Identifier(c) for c in spec.columns),
            )
            with cur.copy(copy) as out:
                out.write(pgcopy.HEADER)
                for view in payload:
                    for start in range(0, len(view), 8 * CHUNK):
                        out.write(view[start : start + 8 * CHUNK])
                out.write(pgcopy.TRAILER)
            self._account(p, insert)
        self._quarantine(cur, p)

    def _supersede(self, cur: psycopg.Cursor, p: Prepared, i: int, old: tuple) -> None:
        """--same-ts last, across batches: row i replaces the row an earlier batch stored for
        its (symbol, ts), whose values are quarantined under their own line."""
        spec = self.spec
        new = [
            None if p.nulls[i, j] else (int(v) if self.integer_mask[j] else float(v))
            for j, v in enumerate(p.values[i])
        ]
        cur.execute(
            sql.SQL("update {} set ({}) = row({}) where symbol = %s and ts = %s").format(
                sql.Identifier("market", spec.table),
                sql.SQL(", ").join(sql.Identifier(c) for c in spec.value_columns),
                sql.SQL(", ").join(sql.Placeholder() * len(spec.value_columns)),
            ),
            (*new, self.symbols[int(p.symbol_ids[i])], _dt(int(p.ts_us[i]))),
        )
        record = {
            "symbol": self.symbols[int(p.symbol_ids[i])],
            "ts": _dt(int(p.ts_us[i])).isoformat(),
        }
        record.update(dict(zip(spec.value_columns, old, strict=True)))
        cur.execute(
            "insert into ops.quarantine (file_id, line_no, reason, detail, record)"
            " values (%s, %s, %s, %s, %s)",
            (
                self.file_id,
                int(p.earlier_line[i]),
                SAME_TS_LAST,
                f"kept line {int(p.lines[i])}",
                Jsonb(record),
            ),
        )
        self.counts[SAME_TS_LAST] = self.counts.get(SAME_TS_LAST, 0) + 1

    def _account(self, p: Prepared, insert: np.ndarray) -> None:
        self.loaded += len(insert)
        sids = p.symbol_ids[insert]
        ts = p.ts_us[insert]
        for sid in np.unique(sids):
            sel = ts[sids == sid]
            lo, hi, n = int(sel.min()), int(sel.max()), len(sel)
            have = self.ranges.get(int(sid))
            self.ranges[int(sid)] = (
                [min(lo, have[0]), max(hi, have[1]), have[2] + n] if have else [lo, hi, n]
            )
        if self.spec.kind == "l2":
            bid = p.values[insert, self.spec.value_columns.index("bid_price_1")]
            ask = p.values[insert, self.spec.value_columns.index("ask_price_1")]
            self.crossed += int(np.sum(bid > ask))
            self.locked += int(np.sum(bid == ask))

    def _quarantine(self, cur: psycopg.Cursor, p: Prepared) -> None:
        aside = np.flatnonzero((p.reason != None) & (p.reason != IDENTICAL))  # noqa: E711
        for why in p.reason[p.reason != None]:  # noqa: E711
            self.counts[why] = self.counts.get(why, 0) + 1
        for r in p.batch.rejects:
            self.counts[r.reason] = self.counts.get(r.reason, 0) + 1
        if not len(aside) and not p.batch.rejects:
            return
        records = _records(p.batch.columns, aside, self.spec)
        with cur.copy(
            "copy ops.quarantine (file_id, line_no, reason, detail, record) from stdin"
        ) as out:
            for r in p.batch.rejects:
                out.write_row((self.file_id, r.line, r.reason, r.detail, Jsonb(r.record)))
            for i, record in zip(aside, records, strict=True):
                out.write_row(
                    (self.file_id, int(p.lines[i]), p.reason[i], p.detail[i], Jsonb(record))
                )

    def quarantine_partial(self, cur: psycopg.Cursor, line: int, partial: bytes) -> None:
        if not partial:
            return
        self.rows_in += 1
        self.counts[TRUNCATED] = self.counts.get(TRUNCATED, 0) + 1
        cur.execute(
            "insert into ops.quarantine (file_id, line_no, reason, detail, record)"
            " values (%s, %s, %s, %s, %s)",
            (
                self.file_id,
                line,
                TRUNCATED,
                "the file breaks inside this line",
                Jsonb({"line": partial.decode("utf-8", "backslashreplace")}),
            ),
        )

    def finish(self, cur: psycopg.Cursor) -> None:
        if self.ranges:
            cur.execute(
                "insert into ops.ingest_ranges (file_id, symbol, min_ts, max_ts, rows_loaded)"
                " select %s, * from unnest(%s::text[], %s::timestamptz[], %s::timestamptz[],"
                " %s::bigint[])",
                (
                    self.file_id,
                    [self.symbols[s] for s in self.ranges],
                    [_dt(v[0]) for v in self.ranges.values()],
                    [_dt(v[1]) for v in self.ranges.values()],
                    [v[2] for v in self.ranges.values()],
                ),
            )
            # what the refresh recomputes from: the same ranges, for the invalidation log
            cur.execute(
                "insert into ops.invalidations (kind, symbol, min_ts, max_ts, rows)"
                " select %s, symbol, min_ts, max_ts, rows_loaded from ops.ingest_ranges"
                " where file_id = %s",
                (self.spec.kind, self.file_id),
            )
        duplicates = self.counts.get(IDENTICAL, 0)
        quarantined = sum(n for r, n in self.counts.items() if r != IDENTICAL)
        if self.rows_in != self.loaded + quarantined + duplicates:
            raise TickfeaturesError(
                f"{self.path.name}: row accounting failed: {self.rows_in} in != {self.loaded}"
                f" loaded + {quarantined} quarantined + {duplicates} duplicates"
            )


def _same_values(a: np.ndarray, an: np.ndarray, b: np.ndarray, bn: np.ndarray) -> np.ndarray:
    """Row-wise: the same NULLs and the same numbers elsewhere."""
    return ((an == bn) & (an | (a == b))).all(axis=1)


def _us(value: datetime) -> int:
    delta = value - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def _dt(us: int) -> datetime:
    return datetime.fromtimestamp(us // 1_000_000, UTC).replace(microsecond=us % 1_000_000)


def _records(columns: dict[str, pa.Array], rows: np.ndarray, spec: TableSpec) -> list[dict]:
    """The rows set aside as {column: value as read}, for ops.quarantine.record."""
    if not len(rows):
        return []
    idx = pa.array(rows)
    picked = {name: columns[name].take(idx).to_pylist() for name in spec.columns if name in columns}
    out = []
    for i in range(len(rows)):
        record: dict[str, Any] = {}
        for name, vals in picked.items():
            v = vals[i]
            if isinstance(v, float) and not np.isfinite(v):
                v = str(v)
            elif isinstance(v, datetime):
                v = v.isoformat()
            record[name] = v
        out.append(record)
    return out


# -- the pipeline ---------------------------------------------------------------------------


_DONE = object()
_KEPT = object()  # a row stored by replacing an earlier one (--same-ts last)


def _produce(
    batches: Iterator[readers.Batch], loader: Loader, out: queue.Queue, stop: threading.Event
) -> None:
    def put(item: object) -> None:
        while not stop.is_set():
            try:
                out.put(item, timeout=0.2)
                return
            except queue.Full:
                continue

    try:
        for batch in batches:
            if stop.is_set():
                return
            put(loader.prepare(batch))
        put(_DONE)
    except BaseException as exc:  # handed to the main thread, which raises it
        put(exc)


class _Pipeline:
    """A file's reader thread, started as soon as the file is opened: it parses and
    validates the first blocks while the main thread computes the checksum and opens the
    transaction. An error opening the file is kept and raised inside the transaction, so
    that it is recorded in the ledger like any other."""

    def __init__(
        self, spec: TableSpec, path: Path, mapping: dict[str, str], settings: formats.Settings
    ) -> None:
        self.error: BaseException | None = None
        self.fmt: str | None = None
        try:
            self.reader = formats.open_file(
                path,
                spec.kind,
                spec.columns,
                spec.optional_columns,
                spec.price_columns,
                mapping,
                settings,
            )
            self.fmt = self.reader.label
        except Exception as exc:
            self.error = exc
            return
        self.loader = Loader(spec, path, file_id=0, same_ts=settings.same_ts)
        self.queue: queue.Queue = queue.Queue(maxsize=3)
        self.stop = threading.Event()
        self.worker = threading.Thread(
            target=_produce,
            args=(self.reader.batches(), self.loader, self.queue, self.stop),
            daemon=True,
        )
        self.worker.start()

    def run(self, cur: psycopg.Cursor, progress: Progress | None, size: int) -> None:
        """Store every prepared block; raises what the reader thread raised."""
        while True:
            item = self.queue.get()
            if item is _DONE:
                return
            if isinstance(item, BaseException):
                raise item
            self.loader.store(cur, item)
            if progress:
                progress(self.loader.rows_in, item.batch.position, size)

    def close(self) -> None:
        if self.error is None:
            self.stop.set()
            self.worker.join()
            self.reader.close()


def _already_loaded(
    db: psycopg.Connection | psycopg.Cursor,
    kind: str,
    checksum: str,
    path: Path,
    settings: formats.Settings | None = None,
) -> FileResult | None:
    """The result of skipping a file whose content is already loaded or salvaged; its note
    says how the file was read then when this run's settings differ."""
    done = db.execute(
        "select file_id, status, settings from ops.ingest_files"
        " where kind = %s and checksum = %s and status in ('loaded', 'salvaged')",
        (kind, checksum),
    ).fetchone()
    if not done:
        return None
    note = f"already {done[1]} as file {done[0]}"
    stored = {k: v for k, v in (done[2] or {}).items() if k != "format"}
    wanted = {
        k: v for k, v in (settings or formats.Settings()).recorded("").items() if k != "format"
    }
    if (
        settings is not None
        and settings.format
        and settings.format != (done[2] or {}).get("format")
    ):
        wanted["format"], stored["format"] = settings.format, (done[2] or {}).get("format")
    if stored != wanted:
        then = ", ".join(f"{k}={v}" for k, v in sorted(stored.items())) or "no options"
        note += f" (read with {then}; this run's settings differ and are not applied)"
    return FileResult(path=path, status="skipped", file_id=done[0], error=note)


def _retryable(exc: BaseException) -> bool:
    return isinstance(
        exc,
        psycopg.errors.UniqueViolation
        | psycopg.errors.DeadlockDetected
        | psycopg.errors.SerializationFailure,
    )


def _describe(exc: BaseException, path: Path) -> str:
    if isinstance(exc, psycopg.Error):
        text = (exc.diag.message_primary or str(exc)).strip().splitlines()
        return f"{path.name}: database error: {text[0] if text else type(exc).__name__}"
    if isinstance(exc, TickfeaturesError):
        return str(exc)
    text = str(exc).strip().splitlines()
    return f"{path.name}: cannot read: {text[0] if text else type(exc).__name__}"


def _path_error(path: Path, exc: OSError) -> str:
    """One line for an OS error on a path: `PATH: no such file`, `PATH: file name too long`."""
    if isinstance(exc, FileNotFoundError):
        reason = "no such file"
    elif isinstance(exc, IsADirectoryError):
        reason = "is a directory, not a file"
    elif isinstance(exc, PermissionError):
        reason = "permission denied"
    else:
        reason = (exc.strerror or type(exc).__name__).lower()
    return f"{path}: {reason}"


def _path_problem(path: Path) -> str | None:
    """Why `path` cannot be read as a data file (missing, a directory, a name too long for
    the file system, not readable, ...), or None."""
    try:
        info = path.stat()
        if stat.S_ISDIR(info.st_mode):
            return f"{path}: is a directory, not a file"
        if not stat.S_ISREG(info.st_mode):
            return f"{path}: not a regular file"
        with path.open("rb"):
            pass
    except OSError as exc:
        return _path_error(path, exc)
    return None


def load_file(
    conn: psycopg.Connection,
    kind: str,
    path: Path,
    progress: Progress | None = None,
    *,
    mapping: dict[str, str] | None = None,
    salvage: bool = False,
    settings: formats.Settings | None = None,
) -> FileResult:
    """Load one file in one transaction; the connection must be in autocommit mode.
    `settings`: the file's format and the general options (formats.Settings)."""
    settings = settings or formats.Settings()
    spec = SPECS[kind]
    path = Path(path)
    problem = _path_problem(path)
    if problem:
        return FileResult(path=path, status="failed", error=problem)
    # Parse while the checksum is computed, unless this path was loaded before (a re-run):
    # then the checksum alone decides, without parsing anything.
    seen = conn.execute(
        "select 1 from ops.ingest_files where kind = %s and file_path = %s and size_bytes = %s"
        " and status in ('loaded', 'salvaged')",
        (kind, str(path.resolve()), path.stat().st_size),
    ).fetchone()
    pipeline = None if seen else _Pipeline(spec, path, mapping or {}, settings)
    try:
        return _load(conn, spec, path, progress, mapping, salvage, pipeline, settings)
    finally:
        if pipeline is not None:
            pipeline.close()


def _load(
    conn: psycopg.Connection,
    spec: TableSpec,
    path: Path,
    progress: Progress | None,
    mapping: dict[str, str] | None,
    salvage: bool,
    first: _Pipeline | None,
    settings: formats.Settings,
) -> FileResult:
    kind = spec.kind
    started = datetime.now(UTC)
    try:
        checksum, size = file_checksum(path)
    except OSError as exc:
        return FileResult(path=path, status="failed", error=_path_error(path, exc))
    skipped = _already_loaded(conn, kind, checksum, path, settings)
    if skipped:
        return skipped
    result: FileResult | None = None
    error = "no attempt made"
    for attempt in range(ATTEMPTS):
        pipeline = (
            first if attempt == 0 and first else _Pipeline(spec, path, mapping or {}, settings)
        )
        try:
            result = _attempt(
                conn, spec, path, checksum, size, progress, salvage, pipeline, settings
            )
            break
        except Exception as exc:
            if _retryable(exc) and attempt + 1 < ATTEMPTS:
                continue
            error = _describe(exc, path)
            break
        finally:
            if pipeline is not first:
                pipeline.close()
    if result is not None:  # loaded, salvaged, or a concurrent load of the content won
        return result
    file_id = _record_failure(conn, spec, path, checksum, size, error, started)
    return FileResult(path=path, status="failed", error=error, file_id=file_id)


# A file that failed (or was interrupted before migration 0015) is retried under the same
# ledger row: re-running a load leaves one row per file, whatever the number of attempts.
_REUSE = (
    "update ops.ingest_files set status = {status}, error = %s, file_name = %s,"
    " file_path = %s, size_bytes = %s, started_at = coalesce(%s, now()),"
    " finished_at = {finished}"
    " where file_id = (select max(file_id) from ops.ingest_files"
    "  where kind = %s and checksum = %s and status in ('failed', 'interrupted'))"
    " returning file_id"
)
_NEW = (
    "insert into ops.ingest_files"
    " (kind, file_name, file_path, checksum, size_bytes, status, error, started_at,"
    " finished_at)"
    " values (%s, %s, %s, %s, %s, {status}, %s, coalesce(%s, now()), {finished})"
    " returning file_id"
)


def _ledger_row(
    cur: psycopg.Cursor | psycopg.Connection,
    spec: TableSpec,
    path: Path,
    checksum: str,
    size: int,
    status: str,
    error: str | None,
    started: datetime | None = None,
) -> int:
    """The file's ledger row, its failed row reused or a new one, set to `status`."""
    status_sql = sql.Literal(status)
    finished = sql.SQL("null" if status == "loading" else "now()")
    name, full = path.name, str(path.resolve())
    row = cur.execute(
        sql.SQL(_REUSE).format(status=status_sql, finished=finished),
        (error, name, full, size, started, spec.kind, checksum),
    ).fetchone()
    if row is None:
        row = cur.execute(
            sql.SQL(_NEW).format(status=status_sql, finished=finished),
            (spec.kind, name, full, checksum, size, error, started),
        ).fetchone()
    return row[0]  # type: ignore[index]


def _lock_content(cur: psycopg.Cursor | psycopg.Connection, kind: str, checksum: str) -> None:
    """Serialise the loads of the same content, until the end of the transaction."""
    cur.execute("select pg_advisory_xact_lock(hashtextextended(%s, 0))", (f"tf:{kind}:{checksum}",))


def _record_failure(
    conn: psycopg.Connection,
    spec: TableSpec,
    path: Path,
    checksum: str,
    size: int,
    error: str,
    started: datetime,
) -> int:
    """Mark the file failed, in a transaction of its own after the file's was rolled back."""
    with conn.transaction():
        _lock_content(conn, spec.kind, checksum)
        return _ledger_row(conn, spec, path, checksum, size, "failed", error, started)


def _attempt(
    conn: psycopg.Connection,
    spec: TableSpec,
    path: Path,
    checksum: str,
    size: int,
    progress: Progress | None,
    salvage: bool,
    pipeline: _Pipeline,
    settings: formats.Settings,
) -> FileResult:
    with conn.transaction(), conn.cursor() as cur:
        # The same content loaded meanwhile by another process: nothing to do.
        _lock_content(cur, spec.kind, checksum)
        skipped = _already_loaded(cur, spec.kind, checksum, path, settings)
        if skipped:
            return skipped
        if pipeline.error is not None:
            raise pipeline.error
        # The ledger row is written in the file's transaction: if the load dies (an error, a
        # killed process, a lost connection), it goes with the rows, and no row is ever left
        # in status 'loading'.
        file_id = _ledger_row(cur, spec, path, checksum, size, "loading", None)
        # The rows' row-level invalidation trigger stands down for this transaction:
        # finish() logs one entry per symbol instead of one per row (migration 0014).
        cur.execute("select set_config('tickfeatures.logged_by', 'loader', true)")
        fmt, reader, loader = pipeline.fmt, pipeline.reader, pipeline.loader
        loader.file_id = file_id
        status, error = "loaded", None
        if reader.empty:
            error = f"{path.name}: empty file (no header, no rows)"
        try:
            pipeline.run(cur, progress, size)
        except readers.BrokenInput as exc:
            where = f"{path.name}: {exc}; the rest of the file from line {exc.line:,} is unread"
            if not salvage:
                raise TickfeaturesError(
                    f"{where}; nothing from the file is committed (--salvage loads the readable"
                    " part)"
                ) from None
            loader.quarantine_partial(cur, exc.line, exc.partial)
            status, error = "salvaged", where
        loader.finish(cur)
        quarantined = sum(n for r, n in loader.counts.items() if r != IDENTICAL)
        duplicates = loader.counts.get(IDENTICAL, 0)
        cur.execute(
            "update ops.ingest_files set status = %s, format = %s, settings = %s, rows_in = %s,"
            " rows_loaded = %s, rows_quarantined = %s, rows_duplicate = %s, rows_crossed = %s,"
            " rows_locked = %s, error = %s, finished_at = now() where file_id = %s",
            (
                status,
                fmt,
                Jsonb(settings.recorded(fmt or "")),
                loader.rows_in,
                loader.loaded,
                quarantined,
                duplicates,
                loader.crossed if spec.kind == "l2" else None,
                loader.locked if spec.kind == "l2" else None,
                error,
                file_id,
            ),
        )
        return FileResult(
            path=path,
            status=status,
            rows_in=loader.rows_in,
            rows_loaded=loader.loaded,
            rows_quarantined=quarantined,
            rows_duplicate=duplicates,
            rows_crossed=loader.crossed,
            rows_locked=loader.locked,
            reasons={r: n for r, n in loader.counts.items() if r != IDENTICAL},
            error=error,
            file_id=file_id,
            format=fmt,
        )
