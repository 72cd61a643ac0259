"""The careful pandas round trip: the baseline the in-database build of the eight L2 feature
families is compared against (issue 18, item 1).

1. COPY out: one binary COPY per symbol, two at a time (the symbols come from a skip scan of
   the primary key), each level column sent as coalesce(x, 'NaN') so that every row has the
   same width; psql is the COPY client (it writes the rows to a pipe in C, psycopg would
   hand them to Python one row at a time) and the rows are read with strided numpy views
   of the buffer: no Python loop over rows or fields. Float64 columns, NULL = NaN, `ts` UTC.
2. Compute: the oracles of tests/oracle on one frame sorted by (symbol, ts), two families
   at a time on two threads (numpy and pandas' window kernels release the GIL), except two
   parts rewritten here with the same floating-point operations in the same order (their
   results are bitwise the oracles'): the per-row walk of the book in `microstructure`
   (vectorised over the rows, a loop over the 10 levels) and the gather of the windows in
   `regime.trend_strength` (a strided view instead).
3. COPY in: one table per family in schema `pandas_features`, binary COPY encoded column by
   column with numpy (no Python loop over rows), the families written largest first from
   two threads on two connections, each in one transaction; the row counts are checked,
   then both transactions are committed.

Measured on 200,000 snapshots (2 cores, shared): COPY out as CSV parsed by pyarrow 1.4 s,
binary typed rows through psycopg (the former bench) 2.7 s, this per-symbol binary COPY with
psycopg as the client 0.9-1.0 s (one or two connections), with psql 0.6 s; COPY in as CSV
(pyarrow's writer) 5.6 s, binary from one connection 2.1 s, from two 1.25 s (FREEZE: no
difference); compute 4.3 s with the oracles as they are, 3.0 s with the two rewrites, 1.7 s
on two threads; writing each family while the next is computed (--overlap) was not faster
than the three steps one after the other.

    python bench/l2_baseline.py --url URL   # the round trip on a database, timings as JSON
    python bench/l2_baseline.py --check     # the vectorised compute equals the oracles
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import queue
import shutil
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import psycopg
from numpy.lib.stride_tricks import sliding_window_view
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.oracle import microstructure as micro_oracle  # noqa: E402
from tests.oracle import regime as regime_oracle  # noqa: E402
from tests.oracle import volatility as vol_oracle  # noqa: E402
from tests.oracle.registry import (  # noqa: E402
    DEFAULT_IMPACT_ORDER_SIZE,
    L2_FAMILIES,
    ORACLES,
    impact_sizes,
)
from tickfeatures.pgcopy import HEADER, PG_EPOCH_US, TRAILER  # noqa: E402
from tickfeatures.schema import L2_COLUMNS  # noqa: E402

LEVEL_COLUMNS: tuple[str, ...] = L2_COLUMNS[2:]
SCHEMA = "pandas_features"
SIGNATURE = HEADER[:11]
PSQL = shutil.which("psql")

# A row of the per-symbol COPY out: field count, then (length, value) for ts and the 40
# level columns, all 8 bytes wide.
_N_FIELDS = 1 + len(LEVEL_COLUMNS)
_ROW_BYTES = 2 + 12 * _N_FIELDS

_SYMBOLS_SQL = """
with recursive s(symbol) as (
    select min(symbol) from market.l2_snapshots
    union all
    select (select min(symbol) from market.l2_snapshots where symbol > s.symbol)
    from s where s.symbol is not null
)
select symbol from s where symbol is not null
"""


# ---------------------------------------------------------------------------------------------
# COPY out


def list_symbols(conn: psycopg.Connection) -> list[str]:
    """The distinct symbols of market.l2_snapshots, by a skip scan of its (symbol, ts) key."""
    return [row[0] for row in conn.execute(_SYMBOLS_SQL)]


def _symbol_query(symbol: str, before: datetime | None) -> sql.Composed:
    values = sql.SQL(", ").join(
        sql.SQL("coalesce({}, 'NaN')").format(sql.Identifier(c)) for c in LEVEL_COLUMNS
    )
    where = sql.SQL("symbol = {}").format(sql.Literal(symbol))
    if before is not None:
        where = sql.SQL("{} and ts < {}").format(where, sql.Literal(before))
    return sql.SQL(
        "copy (select ts, {} from market.l2_snapshots where {}) to stdout (format binary)"
    ).format(values, where)


def _read_copy_psycopg(url: str, query: str) -> bytes:
    """The raw bytes of a COPY ... TO STDOUT read with psycopg (which hands them over one row
    at a time, through Python)."""
    with psycopg.connect(url, autocommit=True) as conn, conn.cursor() as cur:
        with cur.copy(query.encode()) as copy:
            parts = list(copy)
    return b"".join(parts)


def _read_copy_psql(url: str, query: str) -> bytes:
    """The raw bytes of a COPY ... TO STDOUT read with psql, which writes the rows to a pipe
    in C; Python reads the pipe in large blocks. The password goes through the environment."""
    params = conninfo_to_dict(url)
    env = dict(os.environ)
    if "password" in params:
        env["PGPASSWORD"] = str(params.pop("password"))
    result = subprocess.run(
        [PSQL or "psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", make_conninfo(**params)],
        input=query.encode(),
        capture_output=True,
        env=env,
        check=False,
    )
    if result.returncode != 0:
        raise SystemExit(f"psql COPY failed: {result.stderr.decode(errors='replace').strip()}")
    return result.stdout


COPY_READERS: dict[str, Callable[[str, str], bytes]] = {
    "psql": _read_copy_psql,
    "psycopg": _read_copy_psycopg,
}


def parse_rows(buf: bytes) -> tuple[np.ndarray, np.ndarray]:
    """(ts in microseconds since the Unix epoch, (40, n) float64 level values) of a binary COPY
    of `ts, <40 float8>` with no NULL: every row is _ROW_BYTES long, so the fields are strided
    views of the buffer."""
    if buf[:11] != SIGNATURE:
        raise ValueError("binary COPY without its signature")
    start = 19 + int.from_bytes(buf[15:19], "big")
    if buf[-2:] != TRAILER:
        raise ValueError("binary COPY without its trailer")
    n, rest = divmod(len(buf) - start - 2, _ROW_BYTES)
    if rest:
        raise ValueError("binary COPY rows are not all of the same width")
    counts = np.ndarray((n,), ">i2", buf, start, (_ROW_BYTES,))
    lengths = np.ndarray((n, _N_FIELDS), ">i4", buf, start + 2, (_ROW_BYTES, 12))
    if not ((counts == _N_FIELDS).all() and (lengths == 8).all()):
        raise ValueError("unexpected field count or field width in the binary COPY")
    ts_us = np.ndarray((n,), ">i8", buf, start + 6, (_ROW_BYTES,)).astype(np.int64)
    ts_us += PG_EPOCH_US
    values = np.empty((len(LEVEL_COLUMNS), n))
    values.T[...] = np.ndarray((n, len(LEVEL_COLUMNS)), ">f8", buf, start + 18, (_ROW_BYTES, 12))
    return ts_us, values


def copy_out(
    url: str, before: datetime | None = None, threads: int = 2, client: str | None = None
) -> pd.DataFrame:
    """`symbol`, `ts` (UTC) and the 40 level columns (float64, NaN = NULL) of
    market.l2_snapshots (rows with ts < `before` only, if given), sorted by (symbol, ts).

    One COPY per symbol, `threads` at a time, read by `client` (psql if installed, else
    psycopg)."""
    read = COPY_READERS[client or ("psql" if PSQL else "psycopg")]
    with psycopg.connect(url, autocommit=True) as conn:
        symbols = sorted(list_symbols(conn))
        queries = [_symbol_query(s, before).as_string(conn) for s in symbols]
    if not symbols:
        raise SystemExit("market.l2_snapshots is empty")
    with ThreadPoolExecutor(max(1, min(threads, len(symbols)))) as pool:
        bufs = list(pool.map(lambda q: read(url, q), queries))
    parts = [parse_rows(buf) for buf in bufs]
    del bufs
    counts = np.array([len(ts) for ts, _ in parts])
    n = int(counts.sum())
    if n == 0:
        raise SystemExit("COPY out returned no rows")
    ts_all = np.empty(n, dtype=np.int64)
    values = np.empty((len(LEVEL_COLUMNS), n))
    lo = 0
    for ts_us, vals in parts:
        hi = lo + len(ts_us)
        if not (np.diff(ts_us) > 0).all():  # heap order is usually ts order already
            order = np.argsort(ts_us, kind="stable")
            ts_us, vals = ts_us[order], vals[:, order]
        ts_all[lo:hi] = ts_us
        values[:, lo:hi] = vals
        lo = hi
    del parts
    frame = pd.DataFrame(values.T, columns=list(LEVEL_COLUMNS), copy=False)
    frame.insert(0, "ts", pd.DatetimeIndex(ts_all.view("datetime64[us]")).tz_localize("UTC"))
    frame.insert(0, "symbol", pd.array(np.repeat(np.array(symbols, dtype=object), counts), "str"))
    return frame


# ---------------------------------------------------------------------------------------------
# Compute


def walk_books(prices: np.ndarray, sizes: np.ndarray, q: np.ndarray) -> tuple[np.ndarray, ...]:
    """`tests.oracle.microstructure.walk_book` for every row at once: (vwap, fill_ratio).

    The same operations in the same order as the oracle's per-row loop, as a loop over the
    10 levels on whole columns: a skipped level (missing, or size 0) adds nothing, and a
    level after the order is filled (remaining <= 0) is skipped too, as the oracle's `break`.
    """
    usable = ~np.isnan(prices) & ~np.isnan(sizes) & (sizes != 0.0)
    depth = np.zeros(len(q))
    for i in range(prices.shape[1]):
        depth = np.where(usable[:, i], depth + sizes[:, i], depth)
    fill_ratio = np.minimum(depth / q, 1.0)
    remaining = q.copy()
    cost = np.zeros(len(q))
    for i in range(prices.shape[1]):
        take = usable[:, i] & (remaining > 0.0)
        fill = np.minimum(sizes[:, i], remaining)
        cost = np.where(take, cost + fill * prices[:, i], cost)
        remaining = np.where(take, remaining - fill, remaining)
    vwap = np.where(depth < q, np.nan, cost / q)
    return vwap, fill_ratio


def microstructure(
    snapshots: pd.DataFrame,
    impact_order_size: Mapping[str, float],
    default_impact_order_size: float = DEFAULT_IMPACT_ORDER_SIZE,
) -> pd.DataFrame:
    """`tests.oracle.microstructure.microstructure` with the walk of the book vectorised
    (`walk_books`); everything else is the oracle's code as is."""
    m = micro_oracle
    missing_cols = [c for c in m.INPUT_COLUMNS if c not in snapshots.columns]
    if missing_cols:
        raise KeyError(f"snapshots lack columns: {missing_cols}")
    snaps = snapshots.reset_index(drop=True)
    safe_div = m._safe_div

    bid_p = m._level_matrix(snaps, "bid", "price")
    bid_s = m._level_matrix(snaps, "bid", "size")
    ask_p = m._level_matrix(snaps, "ask", "price")
    ask_s = m._level_matrix(snaps, "ask", "size")

    bid_valid = ~np.isnan(bid_p) & ~np.isnan(bid_s)
    ask_valid = ~np.isnan(ask_p) & ~np.isnan(ask_s)
    depth_bid = np.cumsum(np.where(bid_valid, bid_s, 0.0), axis=1)
    depth_ask = np.cumsum(np.where(ask_valid, ask_s, 0.0), axis=1)
    notional_bid = np.cumsum(np.where(bid_valid, bid_p * bid_s, 0.0), axis=1)
    notional_ask = np.cumsum(np.where(ask_valid, ask_p * ask_s, 0.0), axis=1)

    b1, a1 = bid_p[:, 0], ask_p[:, 0]
    bsz1, asz1 = bid_s[:, 0], ask_s[:, 0]
    mid = (b1 + a1) / 2.0
    spread = a1 - b1
    microprice = safe_div(b1 * asz1 + a1 * bsz1, bsz1 + asz1)
    k = m.WMP_LEVELS
    db5, da5 = depth_bid[:, k - 1], depth_ask[:, k - 1]
    vwap_b5 = safe_div(notional_bid[:, k - 1], db5)
    vwap_a5 = safe_div(notional_ask[:, k - 1], da5)
    wmp = safe_div(vwap_b5 * da5 + vwap_a5 * db5, db5 + da5)
    wmp = np.where((db5 == 0.0) | (da5 == 0.0), np.nan, wmp)

    def obi(level: int) -> np.ndarray:
        db, da = depth_bid[:, level - 1], depth_ask[:, level - 1]
        return safe_div(db - da, db + da)

    # The impact order size Q of each row, looked up once per symbol.
    codes, uniques = pd.factorize(snaps["symbol"])
    per_symbol = np.array(
        [float(impact_order_size.get(s, default_impact_order_size)) for s in uniques]
    )
    if not (np.isfinite(per_symbol) & (per_symbol > 0.0)).all():
        raise ValueError(f"impact order sizes must be positive finite numbers: {per_symbol}")
    q = per_symbol[codes] if len(codes) else np.zeros(0)
    vwap_buy, fill_buy = walk_books(ask_p, ask_s, q)
    vwap_sell, fill_sell = walk_books(bid_p, bid_s, q)

    price_missing = np.isnan(b1) | np.isnan(a1)
    out: dict[str, object] = {
        "symbol": snaps["symbol"],
        "ts": snaps["ts"],
        "mid_price": mid,
        "bid_ask_spread": spread,
        "bid_ask_spread_pct": safe_div(100.0 * spread, mid),
        "spread_bps": safe_div(1e4 * spread, mid),
        "microprice": microprice,
        "weighted_mid_price": wmp,
        "order_book_imbalance": obi(1),
    }
    for level in m.OBI_LEVELS:
        out[f"order_book_imbalance_{level}"] = obi(level)
    for level in range(1, m.N_LEVELS + 1):
        out[f"total_bid_volume_{level}"] = depth_bid[:, level - 1]
    for level in range(1, m.N_LEVELS + 1):
        out[f"total_ask_volume_{level}"] = depth_ask[:, level - 1]
    out["price_impact_buy"] = safe_div(vwap_buy - mid, mid)
    out["price_impact_sell"] = safe_div(mid - vwap_sell, mid)
    out["impact_fill_ratio_buy"] = fill_buy
    out["impact_fill_ratio_sell"] = fill_sell
    out["price_impact_ask"] = safe_div(vwap_buy - a1, a1)
    out["price_impact_bid"] = safe_div(b1 - vwap_sell, b1)
    for level in m.HALF_WIDTH_LEVELS:
        out[f"price_impact_{level}"] = safe_div(
            ask_p[:, level - 1] - bid_p[:, level - 1], 2.0 * mid
        )
    out["is_crossed"] = pd.arrays.BooleanArray(
        np.where(price_missing, False, b1 >= a1), price_missing
    )
    result = pd.DataFrame(out)
    assert tuple(result.columns) == m.OUTPUT_COLUMNS
    return result


def trend_strength(book: vol_oracle.Book, mid: np.ndarray, n: int) -> np.ndarray:
    """`tests.oracle.regime.trend_strength` with the windows read through a strided view of
    ln m (`sliding_window_view`) instead of gathered with an (rows, N) index array; the
    arithmetic is the oracle's, in the same order."""
    out = np.full(book.n, np.nan)
    log_mid = np.full(book.n, np.nan)
    positive = mid > 0.0
    np.log(mid, out=log_mid, where=positive)
    win = vol_oracle.row_windows(book, n)
    rows = np.flatnonzero(vol_oracle.full_row_window(win, positive, n))
    if rows.size == 0:
        return out
    windows = sliding_window_view(log_mid, n)  # windows[i] holds rows i..i+n-1
    x_centred = np.arange(n, dtype=float) - (n - 1) / 2.0
    sxx = n * (n * n - 1) / 12.0
    for lo in range(0, rows.size, regime_oracle._CHUNK_ROWS):
        chunk = rows[lo : lo + regime_oracle._CHUNK_ROWS]
        first = chunk - (n - 1)
        if chunk[-1] - chunk[0] == len(chunk) - 1:
            w = windows[first[0] : first[-1] + 1]
        else:
            w = windows[first]
        y = w - w[:, -1:]
        y = y - y.mean(axis=1, keepdims=True)
        syy = np.einsum("ij,ij->i", y, y)
        sxy = y @ x_centred
        out[chunk] = np.where(syy > 0.0, vol_oracle.safe_div(sxy * sxy, sxx * syy), 0.0)
    return out


def regime(snapshots: pd.DataFrame) -> pd.DataFrame:
    """`tests.oracle.regime.regime` with `trend_strength` above; the rest is the oracle's."""
    r_ = regime_oracle
    book = vol_oracle.sort_snapshots(snapshots)
    mid = book.mid()
    r = book.log_return()
    cols: dict[str, np.ndarray] = {}
    for n in r_.ER_WINDOWS:
        cols[f"efficiency_ratio_{n}"] = r_.efficiency_ratio(book, mid, n)
    for n in r_.TREND_WINDOWS:
        cols[f"trend_strength_{n}"] = trend_strength(book, mid, n)
    for n in r_.TREND_WINDOWS:
        cols[f"trend_consistency_{n}"] = r_.trend_consistency(book, mid, r, n)
    for n in r_.RANGE_WINDOWS:
        cols[f"range_pct_{n}"], cols[f"range_position_{n}"] = r_.range_features(book, mid, n)
    return vol_oracle.assemble(book, cols, r_.OUTPUT_COLUMNS)


def family_functions() -> dict[str, Callable[[pd.DataFrame], pd.DataFrame]]:
    """The baseline's function per family: the oracle, except `microstructure` and
    `regime`."""
    sizes = impact_sizes()
    functions = {family: ORACLES[family] for family in L2_FAMILIES}
    functions["microstructure"] = lambda s: microstructure(s, sizes, DEFAULT_IMPACT_ORDER_SIZE)
    functions["regime"] = regime
    return functions


# The families slowest first (measured on 200,000 snapshots), so that two threads finish
# together.
COMPUTE_ORDER = (
    "volatility",
    "stability",
    "regime",
    "ofi",
    "flow",
    "temporal",
    "microstructure",
    "book_pressure",
)


def compute(
    frame: pd.DataFrame, seconds: dict[str, float], threads: int = 2
) -> Iterator[tuple[str, pd.DataFrame]]:
    """The eight families' frames, as they are done, computed `threads` at a time (numpy and
    pandas' window kernels release the GIL, so two threads use two cores); the seconds each
    took go to `seconds`."""
    functions = family_functions()
    assert sorted(COMPUTE_ORDER) == sorted(functions)

    def run(family: str) -> tuple[str, pd.DataFrame]:
        started = time.perf_counter()
        out = functions[family](frame)
        seconds[family] = time.perf_counter() - started
        return family, out

    if threads <= 1:
        yield from map(run, COMPUTE_ORDER)
        return
    with ThreadPoolExecutor(threads) as pool:
        futures = [pool.submit(run, family) for family in COMPUTE_ORDER]
        for future in as_completed(futures):
            yield future.result()


# ---------------------------------------------------------------------------------------------
# COPY in


def _pg_type(column: str) -> str:
    return "boolean" if column == "is_crossed" else "double precision"


def _width(column: str) -> int:
    """Bytes of a feature's binary COPY value: float8, or 1 for the boolean `is_crossed`."""
    return 1 if column == "is_crossed" else 8


def _field(raw: np.ndarray, offset: int, dtype: str, count: int = 0, step: int = 0) -> np.ndarray:
    """A view of one field (or of `count` fields `step` bytes apart) in every row of `raw`,
    a (rows, bytes) uint8 array."""
    if count:
        return np.ndarray((len(raw), count), dtype, raw, offset, (raw.shape[1], step))
    return np.ndarray((len(raw),), dtype, raw, offset, (raw.shape[1],))


def encode_frame(out: pd.DataFrame) -> list[memoryview]:
    """The rows of a family frame (symbol, ts, features) as binary COPY data, no header.

    Per symbol, every row is laid out in one (rows, bytes) uint8 array as if no feature were
    NULL: each field kind (count, symbol, ts, a run of same-width features' lengths and
    values) is one strided numpy assignment over all the rows. The rows without NULL are used
    as they are; the few rows with a NULL are compacted with a byte mask that drops the value
    bytes of their NULL fields (length -1). No Python loop over rows.
    """
    features = list(out.columns[2:])
    if len(out) == 0:
        return []
    if out["symbol"].isna().any():
        raise ValueError("NULL symbol")
    codes, uniques = pd.factorize(out["symbol"])
    ts_pg = pd.DatetimeIndex(out["ts"]).as_unit("us").asi8 - PG_EPOCH_US
    # Runs of consecutive features of one width: (width, values (n, r), nulls (n, r)).
    runs: list[tuple[int, np.ndarray, np.ndarray]] = []
    for width, group in itertools.groupby(features, key=_width):
        cols = list(group)
        if width == 8:
            values = out[cols].to_numpy(dtype=np.float64, na_value=np.nan)
            nulls = np.isnan(values)
        else:
            nulls = out[cols].isna().to_numpy()
            values = np.column_stack(
                [out[c].to_numpy(dtype=bool, na_value=False) for c in cols]
            ).view(np.uint8)
        runs.append((width, values, nulls))
    null_matrix = np.concatenate([nulls for _, _, nulls in runs], axis=1)
    has_null = null_matrix.any(axis=1)
    contiguous = bool((np.diff(codes) >= 0).all())

    blocks: list[memoryview] = []
    for code, symbol in enumerate(uniques):
        text = str(symbol).encode()
        if contiguous:
            lo, hi = (int(i) for i in np.searchsorted(codes, [code, code + 1]))
            rows: slice | np.ndarray = slice(lo, hi)
            m = hi - lo
        else:
            rows = np.flatnonzero(codes == code)
            m = len(rows)
        head = 2 + 4 + len(text) + 4 + 8
        itemsize = head + sum(v.shape[1] * (4 + w) for w, v, _ in runs)
        raw = np.empty((m, itemsize), dtype=np.uint8)
        _field(raw, 0, ">i2")[...] = len(features) + 2
        _field(raw, 2, ">i4")[...] = len(text)
        raw[:, 6 : 6 + len(text)] = np.frombuffer(text, dtype=np.uint8)
        _field(raw, 6 + len(text), ">i4")[...] = 8
        _field(raw, 10 + len(text), ">i8")[...] = ts_pg[rows]
        offset = head
        layout = []
        for width, values, _ in runs:
            r = values.shape[1]
            _field(raw, offset, ">i4", r, 4 + width)[...] = width
            _field(raw, offset + 4, ">f8" if width == 8 else "u1", r, 4 + width)[...] = values[rows]
            layout.append((offset, r, width))
            offset += r * (4 + width)

        row_has_null = has_null[rows]
        if not row_has_null.any():
            blocks.append(memoryview(raw).cast("B"))
            continue
        full = raw[~row_has_null]
        if len(full):
            blocks.append(memoryview(full).cast("B"))
        tail = raw[row_has_null]
        tail_nulls = null_matrix[rows][row_has_null]
        keep = np.ones(tail.shape, dtype=bool)
        j = 0
        for offset, r, width in layout:
            part = tail_nulls[:, j : j + r]
            j += r
            _field(tail, offset, ">i4", r, 4 + width)[part] = -1
            fields = keep[:, offset : offset + r * (4 + width)].reshape(len(tail), r, 4 + width)
            fields[:, :, 4:] &= ~part[:, :, None]
        blocks.append(memoryview(np.ascontiguousarray(tail[keep])).cast("B"))
    return blocks


def _create_table(conn: psycopg.Connection, family: str, columns: Sequence[str]) -> sql.Composed:
    table = sql.Identifier(SCHEMA, family)
    conn.execute(sql.SQL("drop table if exists {}").format(table))
    conn.execute(
        sql.SQL("create table {} (symbol text, ts timestamptz, {})").format(
            table,
            sql.SQL(", ").join(
                sql.SQL("{} {}").format(sql.Identifier(c), sql.SQL(_pg_type(c))) for c in columns
            ),
        )
    )
    return table


def write_family(conn: psycopg.Connection, family: str, out: pd.DataFrame) -> None:
    """Create pandas_features.<family> and COPY the frame into it (binary), in the
    connection's open transaction; check its row count."""
    table = _create_table(conn, family, list(out.columns[2:]))
    blocks = encode_frame(out)
    with conn.cursor() as cur:
        with cur.copy(sql.SQL("copy {} from stdin (format binary)").format(table)) as copy:
            copy.write(HEADER)
            for block in blocks:
                copy.write(block)
            copy.write(TRAILER)
        del blocks
        copied = cur.execute(sql.SQL("select count(*) from {}").format(table)).fetchone()
    if copied is None or copied[0] != len(out):
        raise SystemExit(f"COPY of {family} wrote {copied} rows, not {len(out)}")


def copy_in(url: str, families: Iterable[tuple[str, pd.DataFrame]], threads: int = 2) -> float:
    """Write the families, in the order given, from `threads` connections (each takes the
    next family when it is free), each connection in one transaction; commit them all once
    every family is written and checked, else roll them all back. `families` may be a
    generator that computes them: the writes then overlap with the computing. Returns the
    time from the last family handed over to the commit."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(sql.SQL("create schema if not exists {}").format(sql.Identifier(SCHEMA)))
    todo: queue.SimpleQueue[tuple[str, pd.DataFrame] | None] = queue.SimpleQueue()
    conns = [psycopg.connect(url) for _ in range(max(1, threads))]
    failed = threading.Event()

    def work(conn: psycopg.Connection) -> None:
        while (item := todo.get()) is not None:
            if failed.is_set():
                continue
            try:
                write_family(conn, *item)
            except BaseException:
                failed.set()
                raise

    try:
        with ThreadPoolExecutor(len(conns)) as pool:
            futures = [pool.submit(work, c) for c in conns]
            try:
                for item in families:
                    if failed.is_set():
                        break
                    todo.put(item)
            finally:
                handed_over = time.perf_counter()
                for _ in conns:
                    todo.put(None)
            for future in futures:
                future.result()
        for conn in conns:
            conn.commit()
        return time.perf_counter() - handed_over
    finally:
        for conn in conns:
            conn.close()  # rolls back what was not committed


# ---------------------------------------------------------------------------------------------
# The round trip


def careful_round_trip(
    url: str,
    before: datetime | None = None,
    threads: int = 2,
    overlap: bool = False,
    compute_threads: int = 2,
) -> dict[str, float]:
    """COPY out, compute the eight families, COPY back in: the timings, in seconds.

    By default the three steps run one after the other: COPY out on `threads` connections,
    the families computed `compute_threads` at a time, then written largest first from
    `threads` connections. With `overlap`, each family is handed to the writers as soon as it
    is computed: copy_in_s is then only the part of the writing left after the compute.
    compute_<family>_s is the wall time of each family in its thread.
    """
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    frame = copy_out(url, before, threads=threads)
    timings["copy_out_s"] = time.perf_counter() - t0

    seconds: dict[str, float] = {}
    families = compute(frame, seconds, compute_threads)
    t1 = time.perf_counter()
    if overlap:
        timings["copy_in_s"] = copy_in(url, families, threads=threads)
        timings["compute_s"] = time.perf_counter() - t1 - timings["copy_in_s"]
    else:
        results = dict(families)
        timings["compute_s"] = time.perf_counter() - t1
        del frame
        t2 = time.perf_counter()
        copy_in(url, sorted(results.items(), key=lambda kv: -kv[1].shape[1]), threads=threads)
        timings["copy_in_s"] = time.perf_counter() - t2
    timings["total_s"] = time.perf_counter() - t0
    keys = ["copy_out_s", "compute_s", *(f"compute_{f}_s" for f in L2_FAMILIES), "copy_in_s"]
    timings.update({f"compute_{family}_s": seconds[family] for family in L2_FAMILIES})
    return {key: timings[key] for key in [*keys, "total_s"]}


# ---------------------------------------------------------------------------------------------
# --check


def decode_copy(blocks: Sequence[memoryview], columns: Sequence[str]) -> pd.DataFrame:
    """A plain struct-based reader of `encode_frame`'s output, to check the encoder."""
    data = b"".join(bytes(b) for b in blocks)
    rows: list[list[object]] = []
    pos = 0
    while pos < len(data):
        (count,) = struct.unpack_from(">h", data, pos)
        pos += 2
        row: list[object] = []
        for i in range(count):
            (length,) = struct.unpack_from(">i", data, pos)
            pos += 4
            field = data[pos : pos + max(length, 0)]
            pos += max(length, 0)
            if length < 0:
                row.append(None)
            elif i == 0:
                row.append(field.decode())
            elif i == 1:
                row.append(struct.unpack(">q", field)[0] + PG_EPOCH_US)
            elif length == 1:
                row.append(bool(field[0]))
            else:
                row.append(struct.unpack(">d", field)[0])
        rows.append(row)
    frame = pd.DataFrame(rows, columns=list(columns))
    frame["ts"] = pd.to_datetime(frame["ts"].astype("int64"), unit="us", utc=True)
    return frame


def check_datasets() -> dict[str, pd.DataFrame]:
    """Small snapshot tables: the oracles' edge cases, the windowed edge cases, and ~20,000
    generated snapshots of 2 symbols (the bench's generator)."""
    from tests.oracle.datasets import window_edge_snapshots
    from tickfeatures import generate

    specs = generate.load_symbols(ROOT / "seeds" / "symbols.csv")
    seen: set[tuple[str, object]] = set()
    rows = []
    for row in generate.generate_l2(
        [specs["EURUSD"], specs["GBPUSD"]],
        datetime(2026, 3, 2),
        timedelta(minutes=19),
        seed=2026,
    ):
        if (row[0], row[1]) not in seen:
            seen.add((row[0], row[1]))
            rows.append(row)
    generated = pd.DataFrame(rows, columns=list(L2_COLUMNS))
    generated[list(LEVEL_COLUMNS)] = generated[list(LEVEL_COLUMNS)].astype("float64")
    generated["ts"] = pd.to_datetime(generated["ts"], utc=True).dt.as_unit("us")
    return {
        "edge_cases": micro_oracle.edge_case_snapshots(),
        "window_edges": window_edge_snapshots(),
        "generated": generated,
    }


def check() -> int:
    """On small data: the baseline's compute (as timed: two threads) equals the oracles
    (`tests.oracle.compare.mismatches` returns []), and the COPY encoder writes exactly the
    frames (read back by `decode_copy`)."""
    from tests.oracle.compare import mismatches

    failures = 0
    for name, snapshots in check_datasets().items():
        symbols = snapshots["symbol"].nunique()
        print(f"{name}: {len(snapshots):,} snapshots, {symbols} symbols")
        frame = snapshots.sort_values(["symbol", "ts"], kind="stable").reset_index(drop=True)
        ours_all = dict(compute(frame, {}, threads=2))
        for family in L2_FAMILIES:
            ours = ours_all[family]
            problems = mismatches(ours, ORACLES[family](snapshots))
            decoded = decode_copy(encode_frame(ours), list(ours.columns))
            expected = ours.copy()
            expected["ts"] = pd.DatetimeIndex(expected["ts"]).as_unit("us")
            if "is_crossed" in expected:
                expected["is_crossed"] = expected["is_crossed"].astype(object)
            problems += [f"encoder: {p}" for p in mismatches(decoded, expected, rel=0, abs_=0)]
            failures += bool(problems)
            print(
                f"  {family:<15} {ours.shape[1] - 2:>3} columns, "
                f"{int(ours.iloc[:, 2:].isna().to_numpy().sum()):>6} NULLs: "
                f"mismatches {problems}"
            )
    print("all equal" if not failures else f"{failures} mismatching family/dataset pairs")
    return 1 if failures else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", help="database with market.l2_snapshots: run the round trip")
    parser.add_argument("--check", action="store_true", help="baseline == oracles, small data")
    parser.add_argument("--before", help="only snapshots with ts < this (for development)")
    parser.add_argument("--threads", type=int, default=2, help="connections for COPY out/in")
    parser.add_argument(
        "--overlap", action="store_true", help="write each family while computing the next"
    )
    parser.add_argument("--compute-threads", type=int, default=2)
    args = parser.parse_args()
    if not args.check and not args.url:
        parser.error("give --check or --url URL")
    status = check() if args.check else 0
    if args.url:
        before = pd.Timestamp(args.before, tz="UTC").to_pydatetime() if args.before else None
        timings = careful_round_trip(
            args.url, before, args.threads, args.overlap, args.compute_threads
        )
        print(json.dumps({k: round(v, 3) for k, v in timings.items()}, indent=2))
    return status


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    sys.exit(main())
