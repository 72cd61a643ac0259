"""Reference implementation ("oracle") of the `ofi` feature family, and the helpers the other
L2 flow oracles (`flow`, `book_pressure`, `temporal`) share.

Written only from `FEATURE_DEFINITIONS.md` (sections 0, A, B, the `**ofi**` list of section S
and the edge-case rules of section T) and `docs/engine_definitions.md`. It is compared column
by column with the SQL implementation and doubles as the pandas reference pipeline of the
benchmark, so it is vectorised: per-row arithmetic is numpy, windows are pandas rolling
aggregations over explicit per-row bounds, and no Python loop runs over rows.

Conventions used throughout (all from the definitions):

* Every rule is per symbol, in timestamp order (section T). The input is sorted by
  (symbol, ts); the output has one row per input row in that order, index reset.
* NaN stands for SQL NULL. No output column ever holds +/-inf (T17): every division goes
  through :func:`safe_div`, which gives NaN for a zero or NULL denominator.
* A row window `_N` at row t covers rows t-N+1..t of the same symbol and is NULL unless all
  N inputs are non-NULL (section 0, T1). A time window W at row t covers the rows of the
  same symbol with ts - W < ts_n <= ts (B2, section S), i.e. pandas ``rolling("10s")``.
  Window bounds are computed here once and handed to pandas through a
  :class:`~pandas.api.indexers.BaseIndexer`, so both kinds share one code path.
* Window sums are pandas' compensated (Kahan) rolling sums; a window whose non-NULL terms are
  all exactly 0 is given the sum 0 exactly (so a rounding residue can never turn an
  all-zero window into a tiny non-zero number, which matters for "NULL if the denominator
  is 0").
* Seconds are timestamp differences in microseconds / 1e6 (T10).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd
from pandas.api.indexers import BaseIndexer
from pandas.api.typing import Rolling

from tests.oracle.microstructure import INPUT_COLUMNS, N_LEVELS

#: Number of levels in the multi-level OFI of `ofi_weighted_*` and `level_k_flow_ratio`.
MLOFI_LEVELS = 5

#: Time windows (name suffix -> width in microseconds); windows are (ts - W, ts].
TIME_WINDOWS_US: dict[str, int] = {
    "10s": 10_000_000,
    "30s": 30_000_000,
    "1m": 60_000_000,
    "5m": 300_000_000,
}

OUTPUT_COLUMNS: tuple[str, ...] = (
    "symbol",
    "ts",
    "ofi_event",
    *(f"ofi_{w}" for w in TIME_WINDOWS_US),
    *(f"ofi_normalized_{w}" for w in TIME_WINDOWS_US),
    *(f"ofi_weighted_{w}" for w in TIME_WINDOWS_US),
)


# ---------------------------------------------------------------------------
# The sorted input


@dataclass(frozen=True)
class Book:
    """The snapshots sorted by (symbol, ts), as numpy arrays.

    ``bid_price`` etc. are (n_rows, 10) float matrices, column i-1 holding level i, NaN for
    NULL. ``group_start[t]`` is the row index of the first row of row t's symbol.
    """

    keys: pd.DataFrame  # `symbol` and `ts`, sorted, index reset
    ts_us: np.ndarray  # int64 microseconds since the epoch
    group_start: np.ndarray  # int64
    bid_price: np.ndarray
    bid_size: np.ndarray
    ask_price: np.ndarray
    ask_size: np.ndarray

    @property
    def n_rows(self) -> int:
        return len(self.ts_us)


def load_book(snapshots: pd.DataFrame) -> Book:
    """Check the input columns, sort by (symbol, ts) and split into numpy arrays."""
    missing_cols = [c for c in INPUT_COLUMNS if c not in snapshots.columns]
    if missing_cols:
        raise KeyError(f"snapshots lack columns: {missing_cols}")
    snaps = snapshots.sort_values(["symbol", "ts"], kind="mergesort").reset_index(drop=True)
    n = len(snaps)

    ts_us = ((snaps["ts"] - pd.Timestamp(0, tz="UTC")) // pd.Timedelta(microseconds=1)).to_numpy(
        dtype=np.int64
    )
    symbols = snaps["symbol"].to_numpy(dtype=object)
    new_group = np.ones(n, dtype=bool)
    new_group[1:] = symbols[1:] != symbols[:-1]
    group_start = np.maximum.accumulate(np.where(new_group, np.arange(n), 0)).astype(np.int64)
    if n and (np.diff(ts_us)[~new_group[1:]] <= 0).any():
        raise ValueError("(symbol, ts) must be unique")

    def matrix(side: str, kind: str) -> np.ndarray:
        cols = [f"{side}_{kind}_{i}" for i in range(1, N_LEVELS + 1)]
        return snaps[cols].to_numpy(dtype=np.float64, na_value=np.nan)

    return Book(
        keys=snaps[["symbol", "ts"]],
        ts_us=ts_us,
        group_start=group_start,
        bid_price=matrix("bid", "price"),
        bid_size=matrix("bid", "size"),
        ask_price=matrix("ask", "price"),
        ask_size=matrix("ask", "size"),
    )


def result_frame(
    book: Book, columns: Mapping[str, np.ndarray], order: Sequence[str]
) -> pd.DataFrame:
    """`symbol`, `ts` and the feature columns (float64) in exactly the order `order`."""
    out = book.keys.copy()
    for name in order[2:]:
        out[name] = np.asarray(columns[name], dtype=np.float64)
    assert tuple(out.columns) == tuple(order)
    return out


# ---------------------------------------------------------------------------
# Small numeric helpers


def safe_div(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """num / den elementwise; NaN where either is NaN or den == 0 (never inf, no warning)."""
    num, den = np.broadcast_arrays(np.asarray(num, dtype=float), np.asarray(den, dtype=float))
    out = np.full(num.shape, np.nan)
    ok = ~np.isnan(num) & ~np.isnan(den) & (den != 0.0)
    np.divide(num, den, out=out, where=ok)
    return out


def log_ratio(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """ln(a / b) in the ln(1 + (a - b)/b) form of T17; NaN unless a > 0 and b > 0.

    The form is applied to the larger over the smaller value, ln(a/b) = -ln(b/a) when a < b,
    so the argument of log1p is >= 0 and no digits are lost when a/b is close to 1 or
    far from it.
    """
    a, b = np.broadcast_arrays(np.asarray(a, dtype=float), np.asarray(b, dtype=float))
    out = np.full(a.shape, np.nan)
    ok = (a > 0.0) & (b > 0.0)  # False for NaN
    up = ok & (a >= b)
    down = ok & (a < b)
    out[up] = np.log1p((a[up] - b[up]) / b[up])
    out[down] = -np.log1p((b[down] - a[down]) / a[down])
    return out


def sequential_sum(columns: Sequence[np.ndarray | float]) -> np.ndarray:
    """columns[0] + columns[1] + ... evaluated left to right (a fixed summation order)."""
    total = np.array(columns[0], dtype=float, copy=True)
    for col in columns[1:]:
        total = total + col
    return total


def lag(values: np.ndarray, group_start: np.ndarray, k: int) -> np.ndarray:
    """The value of row t-k of the same symbol, as is (T3); NaN when that row does not exist.

    Works on 1-d arrays and on (n_rows, m) matrices (row-wise).
    """
    values = np.asarray(values, dtype=float)
    n = values.shape[0]
    out = np.full(values.shape, np.nan)
    if k < n:
        out[k:] = values[: n - k]
    out[np.arange(n) - k < group_start] = np.nan
    return out


# ---------------------------------------------------------------------------
# Windows: per-row bounds [start, end) handed to pandas rolling


class _Bounds(BaseIndexer):
    """A pandas window indexer with precomputed per-row bounds (rows start[t]..end[t]-1)."""

    def __init__(self, start: np.ndarray, end: np.ndarray) -> None:
        super().__init__()
        self.start = np.asarray(start, dtype=np.int64)
        self.end = np.asarray(end, dtype=np.int64)

    def get_window_bounds(
        self,
        num_values: int = 0,
        min_periods: int | None = None,
        center: bool | None = None,
        closed: str | None = None,
        step: int | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        return self.start, self.end


@dataclass(frozen=True)
class Windows:
    """Row t's window is rows start[t]..end[t]-1; `min_periods` non-NULL inputs are needed."""

    start: np.ndarray
    end: np.ndarray
    min_periods: int


def row_windows(group_start: np.ndarray, length: int, skip_current: bool = False) -> Windows:
    """The `length` rows ending at row t (t-N+1..t), or before it (t-N..t-1) with
    `skip_current`; NULL unless all `length` rows exist in the symbol and are non-NULL (T1)."""
    end = np.arange(1, len(group_start) + 1, dtype=np.int64)
    if skip_current:
        end = end - 1
    start = np.maximum(end - length, group_start)
    return Windows(start=start, end=np.maximum(end, start), min_periods=length)


def time_windows(ts_us: np.ndarray, group_start: np.ndarray, width_us: int) -> Windows:
    """The rows of the same symbol with ts - W < ts_n <= ts (B2: open left, closed right).

    NULL inputs are skipped (T2): `min_periods` is 0, so a sum over no value is 0.
    """
    n = len(ts_us)
    start = np.empty(n, dtype=np.int64)
    firsts = np.flatnonzero(group_start == np.arange(n))
    for lo, hi in zip(firsts, [*firsts[1:], n], strict=True):
        t = ts_us[lo:hi]
        start[lo:hi] = lo + np.searchsorted(t, t - width_us, side="right")
    end = np.arange(1, n + 1, dtype=np.int64)
    return Windows(start=start, end=end, min_periods=0)


def window_rolling(columns: Mapping[str, np.ndarray], windows: Windows) -> Rolling:
    """A pandas ``Rolling`` over the given columns with these per-row windows."""
    frame = pd.DataFrame({k: np.asarray(v, dtype=float) for k, v in columns.items()})
    return frame.rolling(_Bounds(windows.start, windows.end), min_periods=windows.min_periods)


def window_sum(columns: Mapping[str, np.ndarray], windows: Windows) -> dict[str, np.ndarray]:
    """Sum of each column over each row's window, skipping NaN; NaN when fewer than
    `windows.min_periods` non-NaN values (0 for an empty window with min_periods = 0).

    A window whose non-NaN terms are all exactly 0 gets exactly 0.
    """
    sums = window_rolling(columns, windows).sum()
    nonzero = {k: np.where(np.isnan(v) | (v == 0.0), 0.0, 1.0) for k, v in columns.items()}
    all_zero = window_rolling(nonzero, replace(windows, min_periods=0)).sum().eq(0.0)
    sums = sums.mask(sums.notna() & all_zero, 0.0)
    return {k: sums[k].to_numpy() for k in columns}


def window_count(values: np.ndarray, windows: Windows) -> np.ndarray:
    """Number of non-NaN values in each row's window."""
    return window_rolling({"v": values}, replace(windows, min_periods=0)).count()["v"].to_numpy()


# ---------------------------------------------------------------------------
# Event OFI (B1) and the multi-level OFI (B4)


def bid_flow(p: np.ndarray, q: np.ndarray, p_prev: np.ndarray, q_prev: np.ndarray) -> np.ndarray:
    """ΔW of B1's case table: +q_n (bid up), q_n - q_{n-1} (same), -q_{n-1} (bid down)."""
    return np.where(p > p_prev, q, np.where(p == p_prev, q - q_prev, -q_prev))


def ask_flow(p: np.ndarray, q: np.ndarray, p_prev: np.ndarray, q_prev: np.ndarray) -> np.ndarray:
    """ΔV of B1's case table: +q_n (ask down), q_n - q_{n-1} (same), -q_{n-1} (ask up)."""
    return np.where(p < p_prev, q, np.where(p == p_prev, q - q_prev, -q_prev))


def event_ofi(book: Book) -> np.ndarray:
    """`ofi_event` e_n = ΔW_n - ΔV_n (B1) from level 1 of snapshots n-1 and n (same symbol).

    NULL on a symbol's first snapshot and when any level-1 price or size of either snapshot
    is NULL (T7). Crossed and locked books are computed like any other (section 0).
    """
    bp, bq = book.bid_price[:, 0], book.bid_size[:, 0]
    ap, aq = book.ask_price[:, 0], book.ask_size[:, 0]
    gs = book.group_start
    bp_prev, bq_prev = lag(bp, gs, 1), lag(bq, gs, 1)
    ap_prev, aq_prev = lag(ap, gs, 1), lag(aq, gs, 1)
    e = bid_flow(bp, bq, bp_prev, bq_prev) - ask_flow(ap, aq, ap_prev, aq_prev)
    inputs = np.column_stack([bp, bq, ap, aq, bp_prev, bq_prev, ap_prev, aq_prev])
    return np.where(np.isnan(inputs).any(axis=1), np.nan, e)


def level_ofi(book: Book, levels: int = MLOFI_LEVELS) -> np.ndarray:
    """(n_rows, levels) matrix of e^m_n (B4), column m-1 holding level m.

    B4 ENGINE CONVENTION / T7: an empty level (NULL price or NULL size) has size 0 and price
    -inf on the bid side, +inf on the ask side, so a level that appears counts +size, one that
    vanishes counts -(previous size), and one empty in both snapshots counts 0. A level with a
    price and size 0 is not empty. NULL only on a symbol's first snapshot.
    """
    bid_empty = np.isnan(book.bid_price[:, :levels]) | np.isnan(book.bid_size[:, :levels])
    ask_empty = np.isnan(book.ask_price[:, :levels]) | np.isnan(book.ask_size[:, :levels])
    bp = np.where(bid_empty, -np.inf, book.bid_price[:, :levels])
    bq = np.where(bid_empty, 0.0, book.bid_size[:, :levels])
    ap = np.where(ask_empty, np.inf, book.ask_price[:, :levels])
    aq = np.where(ask_empty, 0.0, book.ask_size[:, :levels])
    gs = book.group_start
    bp_prev, bq_prev = lag(bp, gs, 1), lag(bq, gs, 1)
    ap_prev, aq_prev = lag(ap, gs, 1), lag(aq, gs, 1)
    e = bid_flow(bp, bq, bp_prev, bq_prev) - ask_flow(ap, aq, ap_prev, aq_prev)
    first = np.arange(book.n_rows) == gs
    e[first, :] = np.nan
    return e


# ---------------------------------------------------------------------------
# The feature family


def ofi(snapshots: pd.DataFrame) -> pd.DataFrame:
    """Compute the `ofi` columns (section S) for every snapshot.

    Returns one row per input row, sorted by (symbol, ts), index reset, with exactly the
    columns of :data:`OUTPUT_COLUMNS` (float64 features, NaN for NULL).
    """
    book = load_book(snapshots)
    cols: dict[str, np.ndarray] = {}

    # S `ofi_event` = e_n (B1); NULL on a symbol's first snapshot and per T7.
    e = event_ofi(book)
    cols["ofi_event"] = e

    # B3 / T8: the level-1 depth (B_1 + A_1)/2 of exactly the snapshots whose e_n is summed,
    # i.e. those with a non-NULL e_n (their level-1 sizes are then non-NULL).
    depth = np.where(np.isnan(e), np.nan, (book.bid_size[:, 0] + book.ask_size[:, 0]) / 2.0)

    # B4 per level, m = 1..5 (empty-level convention, T7).
    mlofi = level_ofi(book)
    weights = [1.0 / m for m in range(1, MLOFI_LEVELS + 1)]
    weight_total = float(sequential_sum(weights))

    inputs = {"e": e, "depth": depth}
    inputs.update({f"e{m}": mlofi[:, m - 1] for m in range(1, MLOFI_LEVELS + 1)})
    for name, width in TIME_WINDOWS_US.items():
        win = time_windows(book.ts_us, book.group_start, width)
        sums = window_sum(inputs, win)
        n_events = window_count(e, win)

        # B2 / T2: OFI over (ts - W, ts] = sum of the non-NULL e_n; 0 when there is none.
        cols[f"ofi_{name}"] = sums["e"]

        # B3 / T8: OFI / AD, AD = mean depth over the same snapshots; NULL when there is
        # none or AD = 0.
        avg_depth = safe_div(sums["depth"], n_events)
        cols[f"ofi_normalized_{name}"] = safe_div(sums["e"], avg_depth)

        # S `ofi_weighted_<w>` (engine_definitions): sum_m (1/m)·MLOFI^m / sum_m 1/m, with
        # MLOFI^m the B2 window sum of e^m_n; 0 for a window with no event (T2).
        weighted = sequential_sum([w * sums[f"e{m}"] for m, w in enumerate(weights, start=1)])
        cols[f"ofi_weighted_{name}"] = weighted / weight_total

    return result_frame(book, cols, OUTPUT_COLUMNS)
