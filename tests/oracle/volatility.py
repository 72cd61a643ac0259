"""Reference implementation ("oracle") of the `volatility` feature family.

Written only from `FEATURE_DEFINITIONS.md` (section 0, C1-C4, the
`**volatility**` list of section S and the edge-case rules of section T) and
`docs/engine_definitions.md` (the return windows). It is compared column by
column with the SQL implementation, and it is also the "pandas reference
pipeline" of the benchmark, so it is vectorised.

This module also holds the small window machinery shared by the `regime`,
`stability` and `targets` oracles (:func:`sort_snapshots`, :class:`Windows`,
:func:`row_windows`, :func:`time_windows`, :func:`log_ratio`, ...).

Conventions (all from the definitions):

* NaN stands for SQL NULL; no output column ever holds +/-inf (T17). Every
  division goes through :func:`safe_div` (NaN for a zero or NULL denominator,
  section 0).
* Every rule is per symbol in `ts` order: the input is sorted by
  (symbol, ts) once and every window is clipped to the rows of its symbol.
* The return is r_t = ln(m_t / m_{t-1}) from the immediately previous row of
  the symbol, computed as log1p((m_t - m_{t-1}) / m_{t-1}) (T17); NULL on the
  symbol's first row and when either mid is NULL (T3).
* A row window `_N` covers rows t-N+1..t and is NULL unless all N inputs are
  non-NULL (T1). A time window (ts - W, ts] skips NULL inputs; a sample std
  needs at least 2 values, a root of a sum of squares at least 1 (T2).
* `std_s` is the sample standard deviation (ddof = 1).

Numerics. Window sums, means and variances are not taken from running
(add/remove) accumulators, whose rounding depends on the whole history of the
symbol. Instead every window [start, end) is split into at most
2*log2(length) aligned power-of-two blocks (:class:`Windows`); the blocks
hold pairwise sums, and variances are merged with Chan's pairwise formula
(M2 = M2_a + M2_b + delta^2 n_a n_b / n). The result depends only on the
values inside the window, is accurate to a few ulps of the sum of the
magnitudes involved, and a constant window gives a variance of exactly 0.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

N_LEVELS = 10

INPUT_COLUMNS: tuple[str, ...] = (
    "symbol",
    "ts",
    *(f"bid_price_{i}" for i in range(1, N_LEVELS + 1)),
    *(f"bid_size_{i}" for i in range(1, N_LEVELS + 1)),
    *(f"ask_price_{i}" for i in range(1, N_LEVELS + 1)),
    *(f"ask_size_{i}" for i in range(1, N_LEVELS + 1)),
)

#: Row windows (in returns) of `l2_volatility_N` (S).
L2_VOL_WINDOWS: tuple[int, ...] = (10, 50, 200)

#: Time windows of `l2_volatility_<w>` (S), as (suffix, microseconds).
L2_VOL_TIME_WINDOWS: tuple[tuple[str, int], ...] = (("1min", 60_000_000), ("5min", 300_000_000))

#: Time window of `realized_volatility` (S): 5 minutes.
REALIZED_WINDOW_US = 300_000_000

#: Row windows (in returns) of `volatility_N`, `upside_vol_N`, `downside_vol_N`, `vol_skew_N`.
RV_WINDOWS: tuple[int, ...] = (10, 30, 100, 200, 500)

#: C4 for `vol_of_vol`: v = volatility_30 (n = 30), std_s over m = 30 values of v.
VOL_OF_VOL_N = 30
VOL_OF_VOL_M = 30

OUTPUT_COLUMNS: tuple[str, ...] = (
    "symbol",
    "ts",
    "mid_price_return",
    "squared_returns",
    *(f"l2_volatility_{n}" for n in L2_VOL_WINDOWS),
    *(f"l2_volatility_{name}" for name, _ in L2_VOL_TIME_WINDOWS),
    "realized_volatility",
    *(f"volatility_{n}" for n in RV_WINDOWS),
    *(f"upside_vol_{n}" for n in RV_WINDOWS),
    *(f"downside_vol_{n}" for n in RV_WINDOWS),
    *(f"vol_skew_{n}" for n in RV_WINDOWS),
    "vol_of_vol",
)


# ---------------------------------------------------------------------------
# Elementwise helpers


def safe_div(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """num / den elementwise; NaN where either is NaN or den == 0 (never inf, no warning)."""
    num = np.asarray(num, dtype=float)
    den = np.asarray(den, dtype=float)
    num, den = np.broadcast_arrays(num, den)
    out = np.full(num.shape, np.nan)
    ok = ~np.isnan(num) & ~np.isnan(den) & (den != 0.0)
    np.divide(num, den, out=out, where=ok)
    return out


def safe_sqrt(x: np.ndarray) -> np.ndarray:
    """sqrt elementwise; NaN for NaN input (inputs here are sums of squares, never < 0)."""
    x = np.asarray(x, dtype=float)
    out = np.full(x.shape, np.nan)
    np.sqrt(x, out=out, where=x >= 0.0)
    return out


def log_ratio(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """ln(a / b) computed as log1p((a - b) / b) (T17).

    NaN when a or b is NaN, when b == 0 (section 0) and when a / b <= 0 (the
    logarithm is undefined there; never -inf, T17).
    """
    a = np.asarray(a, dtype=float)
    b = np.asarray(b, dtype=float)
    x = safe_div(a - b, b)
    out = np.full(x.shape, np.nan)
    np.log1p(x, out=out, where=x > -1.0)
    return out


# ---------------------------------------------------------------------------
# The sorted input and its per-symbol layout


@dataclass(frozen=True)
class Book:
    """The snapshots sorted by (symbol, ts), with per-row group bounds.

    `group_start[i]` / `group_end[i]` are the first row and one past the last
    row of row i's symbol; `ts_us` is `ts` in integer microseconds.
    """

    frame: pd.DataFrame
    group_start: np.ndarray
    group_end: np.ndarray
    ts_us: np.ndarray

    @property
    def n(self) -> int:
        return len(self.frame)

    @property
    def position(self) -> np.ndarray:
        """0-based position of each row within its symbol."""
        return np.arange(self.n, dtype=np.int64) - self.group_start

    def groups(self) -> list[tuple[int, int]]:
        """(first row, one past the last row) of every symbol, in order."""
        starts = np.flatnonzero(self.position == 0)
        ends = [*starts[1:].tolist(), self.n] if starts.size else []
        return list(zip(starts.tolist(), ends, strict=True))

    def levels(self, side: str, kind: str) -> np.ndarray:
        """(n, 10) float matrix of `{side}_{kind}_1..10`, NaN for NULL."""
        cols = [f"{side}_{kind}_{i}" for i in range(1, N_LEVELS + 1)]
        return self.frame[cols].to_numpy(dtype=float, na_value=np.nan)

    def column(self, name: str) -> np.ndarray:
        return self.frame[name].to_numpy(dtype=float, na_value=np.nan)

    def mid(self) -> np.ndarray:
        """A1: m = (b_1 + a_1) / 2; NULL when either level-1 price is NULL (T5)."""
        return (self.column("bid_price_1") + self.column("ask_price_1")) / 2.0

    def spread(self) -> np.ndarray:
        """A2: s = a_1 - b_1; NULL when either level-1 price is NULL (T5)."""
        return self.column("ask_price_1") - self.column("bid_price_1")

    def previous(self, values: np.ndarray) -> np.ndarray:
        """values of the previous row of the same symbol; NaN on a symbol's first row."""
        prev = np.full(values.shape, np.nan)
        prev[1:] = values[:-1]
        prev[self.position == 0] = np.nan
        return prev

    def log_return(self) -> np.ndarray:
        """r_t = ln(m_t / m_{t-1}) via log1p (T3, T17); NULL on the first row of a symbol."""
        mid = self.mid()
        return log_ratio(mid, self.previous(mid))


def sort_snapshots(snapshots: pd.DataFrame) -> Book:
    """Sort by (symbol, ts), reset the index and compute the per-symbol layout."""
    missing_cols = [c for c in INPUT_COLUMNS if c not in snapshots.columns]
    if missing_cols:
        raise KeyError(f"snapshots lack columns: {missing_cols}")
    frame = snapshots.sort_values(["symbol", "ts"], kind="stable").reset_index(drop=True)
    n = len(frame)
    symbols = frame["symbol"].to_numpy(dtype=object)
    new_group = np.ones(n, dtype=bool)
    if n > 1:
        new_group[1:] = symbols[1:] != symbols[:-1]
    idx = np.arange(n, dtype=np.int64)
    group_start = np.maximum.accumulate(np.where(new_group, idx, 0)) if n else idx
    starts = np.flatnonzero(new_group)
    ends = np.append(starts[1:], n)
    group_end = np.repeat(ends, ends - starts).astype(np.int64) if n else idx
    ts_us = pd.DatetimeIndex(frame["ts"]).as_unit("us").asi8.astype(np.int64)
    if n > 1:
        same = ~new_group[1:]
        if (np.diff(ts_us)[same] <= 0).any():
            raise ValueError("(symbol, ts) must be unique")
    return Book(frame, group_start.astype(np.int64), group_end, ts_us)


# ---------------------------------------------------------------------------
# Windows over rows: [start, end) per output row


class Windows:
    """One window [start[i], end[i]) of row indices per output row.

    Each window is split once into aligned power-of-two blocks (at most two per
    block size, i.e. at most 2*log2(length) blocks); sums, counts, extrema and
    (count, mean, M2) moments over the windows are then combined from
    per-block values. The blocks are visited left to right.
    """

    def __init__(self, start: np.ndarray, end: np.ndarray) -> None:
        start = np.asarray(start, dtype=np.int64)
        end = np.maximum(np.asarray(end, dtype=np.int64), start)
        self.start = start
        self.end = end
        longest = int((end - start).max()) if len(start) else 0
        self.depth = max(longest.bit_length(), 1)  # block sizes 1, 2, ..., 2**(depth-1)
        self.parts: list[tuple[int, np.ndarray, np.ndarray]] = []
        s = start.copy()
        # Ascending sizes: take the block at s while s is not yet aligned.
        for k in range(self.depth):
            size = 1 << k
            take = (((s >> k) & 1) == 1) & (s + size <= end)
            self.parts.append((k, np.where(take, s >> k, 0), take))
            s = s + np.where(take, size, 0)
        # Descending sizes: s is now aligned; take the biggest blocks that fit.
        for k in range(self.depth - 1, -1, -1):
            size = 1 << k
            take = s + size <= end
            self.parts.append((k, np.where(take, s >> k, 0), take))
            s = s + np.where(take, size, 0)
        if not np.array_equal(s, end):
            raise AssertionError("window decomposition did not cover the windows")
        # Drop block sizes no window uses.
        self.parts = [p for p in self.parts if p[2].any()]

    def _padded(self, x: np.ndarray, fill: float) -> np.ndarray:
        block = 1 << self.depth
        length = max(-(-x.shape[0] // block) * block, block)
        out = np.full((length, *x.shape[1:]), fill, dtype=x.dtype)
        out[: x.shape[0]] = x
        return out

    def count(self, valid: np.ndarray) -> np.ndarray:
        """Number of True values of `valid` in each window (exact integers)."""
        cum = np.concatenate(([0], np.cumsum(np.asarray(valid, dtype=np.int64))))
        return cum[self.end] - cum[self.start]

    def sum(self, x: np.ndarray) -> np.ndarray:
        """Sum of the non-NaN values of `x` (shape (n,) or (n, q)) in each window."""
        x = np.where(np.isnan(x), 0.0, x)
        level = self._padded(x, 0.0)
        levels = [level]
        for _ in range(1, self.depth):
            level = level[0::2] + level[1::2]
            levels.append(level)
        total = np.zeros(self.start.shape + x.shape[1:])
        for k, idx, take in self.parts:
            part = levels[k][idx]
            mask = take if x.ndim == 1 else take[:, None]
            total = total + np.where(mask, part, 0.0)
        return total

    def extreme(self, x: np.ndarray, how: str) -> np.ndarray:
        """max (how="max") or min (how="min") of the non-NaN values of `x` per window."""
        op = np.fmax if how == "max" else np.fmin
        level = self._padded(np.asarray(x, dtype=float), np.nan)
        levels = [level]
        for _ in range(1, self.depth):
            level = op(level[0::2], level[1::2])
            levels.append(level)
        best = np.full(self.start.shape, np.nan)
        for k, idx, take in self.parts:
            best = np.where(take, op(best, levels[k][idx]), best)
        return best

    def moments(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(count, mean, M2) of the non-NaN values of `x` per window.

        M2 = sum (x - mean)^2, merged pairwise with Chan's formula; mean is 0
        and M2 is 0 for an empty window.
        """
        x = np.asarray(x, dtype=float)
        valid = ~np.isnan(x)
        cnt = self._padded(valid.astype(float), 0.0)
        mean = self._padded(np.where(valid, x, 0.0), 0.0)
        m2 = np.zeros_like(mean)
        levels = [(cnt, mean, m2)]
        for _ in range(1, self.depth):
            c, m, q = levels[-1]
            levels.append(_merge(c[0::2], m[0::2], q[0::2], c[1::2], m[1::2], q[1::2]))
        acc_c = np.zeros(self.start.shape)
        acc_m = np.zeros(self.start.shape)
        acc_q = np.zeros(self.start.shape)
        for k, idx, take in self.parts:
            c, m, q = levels[k]
            acc_c, acc_m, acc_q = _merge(
                acc_c,
                acc_m,
                acc_q,
                np.where(take, c[idx], 0.0),
                np.where(take, m[idx], 0.0),
                np.where(take, q[idx], 0.0),
            )
        return acc_c, acc_m, acc_q

    def std(self, x: np.ndarray) -> np.ndarray:
        """std_s (ddof = 1) of the non-NaN values of `x` per window; NaN with < 2 values."""
        cnt, _, m2 = self.moments(x)
        return safe_sqrt(safe_div(np.where(cnt >= 2, m2, np.nan), cnt - 1.0))


def _merge(
    na: np.ndarray,
    ma: np.ndarray,
    qa: np.ndarray,
    nb: np.ndarray,
    mb: np.ndarray,
    qb: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Chan et al.'s pairwise merge of (count, mean, M2); an empty side leaves the other as is."""
    n = na + nb
    frac = nb / np.where(n > 0, n, 1.0)
    delta = mb - ma
    mean = np.where(nb == 0, ma, np.where(na == 0, mb, ma + delta * frac))
    m2 = qa + qb + delta * delta * na * frac
    return n, mean, m2


def row_windows(book: Book, n_rows: int, lag: int = 0) -> Windows:
    """Row windows of `n_rows` rows ending `lag` rows before t: rows t-lag-n_rows+1..t-lag.

    Clipped to the symbol's rows, so a window with fewer than `n_rows` rows
    exists only near the start of a symbol; callers require count == n_rows
    (T1).
    """
    idx = np.arange(book.n, dtype=np.int64)
    end = np.maximum(idx + 1 - lag, book.group_start)
    start = np.maximum(end - n_rows, book.group_start)
    return Windows(start, end)


def time_windows(book: Book, width_us: int, forward: bool = False) -> Windows:
    """Time windows per row: (ts - W, ts] (backward) or (ts, ts + W] (forward), per symbol."""
    ts = book.ts_us
    start = np.empty(book.n, dtype=np.int64)
    end = np.empty(book.n, dtype=np.int64)
    for g0, g1 in book.groups():
        seg = ts[g0:g1]
        if forward:
            start[g0:g1] = np.arange(g0 + 1, g1 + 1)
            end[g0:g1] = g0 + np.searchsorted(seg, seg + width_us, side="right")
        else:
            start[g0:g1] = g0 + np.searchsorted(seg, seg - width_us, side="right")
            end[g0:g1] = np.arange(g0 + 1, g1 + 1)
    return Windows(start, end)


def full_row_window(windows: Windows, valid: np.ndarray, n_rows: int) -> np.ndarray:
    """T1: True where the window holds exactly `n_rows` rows, all with a non-NULL input."""
    return windows.count(valid) == n_rows


def rolling_std(book: Book, x: np.ndarray, n_rows: int) -> np.ndarray:
    """std_s over the row window t-N+1..t; NULL unless all N inputs are non-NULL (T1)."""
    win = row_windows(book, n_rows)
    ok = full_row_window(win, ~np.isnan(x), n_rows)
    return np.where(ok, win.std(x), np.nan)


def assemble(book: Book, columns: dict[str, np.ndarray], order: Sequence[str]) -> pd.DataFrame:
    """The output frame: symbol, ts, then the float64 feature columns in `order`."""
    out: dict[str, object] = {"symbol": book.frame["symbol"], "ts": book.frame["ts"]}
    for name in order[2:]:
        values = np.asarray(columns[name], dtype=np.float64)
        if np.isinf(values).any():
            raise AssertionError(f"{name}: infinity in an oracle column (T17)")
        out[name] = values
    result = pd.DataFrame(out)
    if tuple(result.columns) != tuple(order):
        raise AssertionError("output columns out of order")
    return result


# ---------------------------------------------------------------------------
# The feature family


def volatility(snapshots: pd.DataFrame) -> pd.DataFrame:
    """Compute the `volatility` columns (section S) for every snapshot row.

    Returns one row per input row, sorted by (symbol, ts) with the index
    reset, with exactly the columns of :data:`OUTPUT_COLUMNS` (every feature
    column float64, NaN for NULL).
    """
    book = sort_snapshots(snapshots)
    cols: dict[str, np.ndarray] = {}

    # S: mid_price_return = r (T3, T17); squared_returns = r^2.
    r = book.log_return()
    has_r = ~np.isnan(r)
    r2 = r * r
    cols["mid_price_return"] = r
    cols["squared_returns"] = r2

    # S: l2_volatility_N = std_s of r over the N rows t-N+1..t (T1: all N non-NULL,
    # so the first value is on row N of a symbol).
    for n in L2_VOL_WINDOWS:
        cols[f"l2_volatility_{n}"] = rolling_std(book, r, n)

    # S: l2_volatility_<w> = std_s of r over (ts - W, ts]; T2: NULL r skipped, >= 2 values.
    for name, width in L2_VOL_TIME_WINDOWS:
        cols[f"l2_volatility_{name}"] = time_windows(book, width).std(r)

    # S: realized_volatility = sqrt(sum r^2) over (ts - 5 min, ts]; T2: >= 1 value.
    five = time_windows(book, REALIZED_WINDOW_US)
    rv_time = five.sum(r2)
    cols["realized_volatility"] = np.where(five.count(has_r) >= 1, safe_sqrt(rv_time), np.nan)

    # C1, C2, C3 over the N returns of rows t-N+1..t (N+1 mids), all non-NULL (T1).
    # Columns of `terms`: r^2 (RV), r^2 1{r>0} (RS+), r^2 1{r<0} (RS-), r^3.
    # Zero returns go into neither semivariance (C2).
    terms = np.column_stack(
        [
            r2,
            np.where(r > 0.0, r2, np.where(has_r, 0.0, np.nan)),
            np.where(r < 0.0, r2, np.where(has_r, 0.0, np.nan)),
            r2 * r,
        ]
    )
    for n in RV_WINDOWS:
        win = row_windows(book, n)
        ok = full_row_window(win, has_r, n)
        sums = win.sum(terms)
        rv, rs_pos, rs_neg, cube = (np.where(ok, sums[:, j], np.nan) for j in range(4))
        # C1: RVol = sqrt(RV).
        cols[f"volatility_{n}"] = safe_sqrt(rv)
        # C2 / T15: semivolatilities sqrt(RS+), sqrt(RS-); 0 (not NULL) with no such return.
        cols[f"upside_vol_{n}"] = safe_sqrt(rs_pos)
        cols[f"downside_vol_{n}"] = safe_sqrt(rs_neg)
        # C3 / T15: RSkew = sqrt(n) sum r^3 / RV^(3/2); NULL when RV = 0.
        cols[f"vol_skew_{n}"] = safe_div(np.sqrt(float(n)) * cube, rv * safe_sqrt(rv))

    # C4 with n = 30, m = 30: std_s of the last 30 values of volatility_30 (T1: all
    # 30 non-NULL, so the first value needs n + m - 1 = 59 returns).
    cols["vol_of_vol"] = rolling_std(book, cols[f"volatility_{VOL_OF_VOL_N}"], VOL_OF_VOL_M)

    return assemble(book, cols, OUTPUT_COLUMNS)
