"""Reference implementation ("oracle") of the `regime` feature family.

Written only from `FEATURE_DEFINITIONS.md` (section 0, D1-D3, the
`**regime**` list of section S and section T) and `docs/engine_definitions.md`
(efficiency_ratio_N, trend_strength_N, trend_consistency_N, range_*_N).
Every feature is computed on the mid m = (b_1 + a_1)/2 (A1) per symbol in ts
order; the window machinery is shared with :mod:`tests.oracle.volatility`.

Windows (engine definitions, T1): a window is NULL unless every input in it is
non-NULL.

* efficiency_ratio_N, trend_consistency_N: the N steps/returns of rows
  t-N+1..t, i.e. N+1 mids m_{t-N}..m_t.
* trend_strength_N, range_pct_N, range_position_N: the N mids of rows
  t-N+1..t.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .volatility import (
    Book,
    assemble,
    full_row_window,
    log_ratio,
    row_windows,
    safe_div,
    sort_snapshots,
)

ER_WINDOWS: tuple[int, ...] = (50, 100, 200)
TREND_WINDOWS: tuple[int, ...] = (30, 100)
RANGE_WINDOWS: tuple[int, ...] = (50, 100)

OUTPUT_COLUMNS: tuple[str, ...] = (
    "symbol",
    "ts",
    *(f"efficiency_ratio_{n}" for n in ER_WINDOWS),
    *(f"trend_strength_{n}" for n in TREND_WINDOWS),
    *(f"trend_consistency_{n}" for n in TREND_WINDOWS),
    *(f"range_pct_{n}" for n in RANGE_WINDOWS),
    *(f"range_position_{n}" for n in RANGE_WINDOWS),
)

#: Rows per chunk of the direct rolling least-squares fit (memory bound only).
_CHUNK_ROWS = 1 << 15


def lagged(book: Book, values: np.ndarray, lag: int) -> np.ndarray:
    """values of row t-lag of the same symbol, as is (T3); NaN when there is no such row."""
    out = np.full(values.shape, np.nan)
    if lag < book.n:
        out[lag:] = values[: book.n - lag]
    out[book.position < lag] = np.nan
    return out


def efficiency_ratio(book: Book, mid: np.ndarray, n: int) -> np.ndarray:
    """D1 / engine definition: |m_t - m_{t-N}| / sum_{i=t-N+1..t} |m_i - m_{i-1}|.

    NULL unless all N+1 mids are non-NULL (T1); 0 in a flat window, i.e. when
    the denominator is 0 (D1 ENGINE CONVENTION, T15).
    """
    step = np.abs(mid - book.previous(mid))  # NULL on the first row and next to a NULL mid
    win = row_windows(book, n)
    ok = full_row_window(win, ~np.isnan(step), n)
    path = np.where(ok, win.sum(step), np.nan)
    net = np.abs(mid - lagged(book, mid, n))
    er = safe_div(net, path)
    return np.where(ok & (path == 0.0), 0.0, er)


def trend_strength(book: Book, mid: np.ndarray, n: int) -> np.ndarray:
    """D2 / engine definition: R^2 of the OLS fit of ln m on x = 0..N-1 over rows t-N+1..t.

    R^2 = Sxy^2 / (Sxx Syy), 0 when var(y) = 0 (D2, T15). NULL unless all N
    mids are non-NULL and positive (ln m must exist). Direct computation per
    window: y is taken relative to the window's last value (so a flat window
    gives exactly 0), then centred.
    """
    out = np.full(book.n, np.nan)
    log_mid = np.full(book.n, np.nan)
    positive = mid > 0.0
    np.log(mid, out=log_mid, where=positive)
    win = row_windows(book, n)
    rows = np.flatnonzero(full_row_window(win, positive, n))
    if rows.size == 0:
        return out
    offsets = np.arange(-(n - 1), 1, dtype=np.int64)  # x = 0..N-1 is rows t-N+1..t
    x_centred = np.arange(n, dtype=float) - (n - 1) / 2.0
    sxx = n * (n * n - 1) / 12.0  # sum (x - mean x)^2 for x = 0..N-1
    for lo in range(0, rows.size, _CHUNK_ROWS):
        chunk = rows[lo : lo + _CHUNK_ROWS]
        y = log_mid[chunk[:, None] + offsets]
        y = y - y[:, -1:]
        y = y - y.mean(axis=1, keepdims=True)
        syy = np.einsum("ij,ij->i", y, y)
        sxy = y @ x_centred
        out[chunk] = np.where(syy > 0.0, safe_div(sxy * sxy, sxx * syy), 0.0)
    return out


def trend_consistency(book: Book, mid: np.ndarray, r: np.ndarray, n: int) -> np.ndarray:
    """Engine definition: over the N returns of rows t-N+1..t, the fraction whose sign
    equals sign(ln(m_t / m_{t-N})); a zero return never counts; a zero net change gives 0
    (T15). NULL unless all N returns are non-NULL (T1).
    """
    win = row_windows(book, n)
    ok = full_row_window(win, ~np.isnan(r), n)
    ups = win.count(r > 0.0)
    downs = win.count(r < 0.0)
    net = log_ratio(mid, lagged(book, mid, n))
    frac = np.where(net > 0.0, ups, np.where(net < 0.0, downs, 0)) / float(n)
    return np.where(ok & ~np.isnan(net), frac, np.nan)


def range_features(book: Book, mid: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """S / D3 over the N mids of rows t-N+1..t (T1: all non-NULL).

    range_pct = (max m - min m) / mean m (NULL when the mean is 0, section 0);
    range_position = (m_t - min m) / (max m - min m), 0.5 when max = min (D3, T15).
    """
    win = row_windows(book, n)
    ok = full_row_window(win, ~np.isnan(mid), n)
    hi = np.where(ok, win.extreme(mid, "max"), np.nan)
    lo = np.where(ok, win.extreme(mid, "min"), np.nan)
    mean = np.where(ok, win.sum(mid) / float(n), np.nan)
    width = hi - lo
    range_pct = safe_div(width, mean)
    position = np.where(width == 0.0, 0.5, safe_div(mid - lo, width))
    return range_pct, np.where(ok, position, np.nan)


def regime(snapshots: pd.DataFrame) -> pd.DataFrame:
    """Compute the `regime` columns (section S) for every snapshot row.

    Returns one row per input row, sorted by (symbol, ts) with the index
    reset, with exactly the columns of :data:`OUTPUT_COLUMNS` (float64, NaN
    for NULL).
    """
    book = sort_snapshots(snapshots)
    mid = book.mid()
    r = book.log_return()
    cols: dict[str, np.ndarray] = {}
    for n in ER_WINDOWS:
        cols[f"efficiency_ratio_{n}"] = efficiency_ratio(book, mid, n)  # D1
    for n in TREND_WINDOWS:
        cols[f"trend_strength_{n}"] = trend_strength(book, mid, n)  # D2
    for n in TREND_WINDOWS:
        cols[f"trend_consistency_{n}"] = trend_consistency(book, mid, r, n)  # S, engine def.
    for n in RANGE_WINDOWS:
        cols[f"range_pct_{n}"], cols[f"range_position_{n}"] = range_features(book, mid, n)  # D3
    return assemble(book, cols, OUTPUT_COLUMNS)
