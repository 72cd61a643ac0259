"""Reference implementation ("oracle") of the `targets` feature family (`features.l2_targets`).

Written only from `FEATURE_DEFINITIONS.md` (section 0, A1-A2, the
`**targets**` list of section S and section T, in particular T3, T16 and
T17). This is the only forward-looking family. Per symbol in ts order; the
window machinery is shared with :mod:`tests.oracle.volatility`.

* target_return_W = ln(m(ts + W) / m_t) via log1p (T17), where m(ts + W) is
  the mid of the last snapshot of the symbol at or before ts + W (possibly
  the current row, giving 0). NULL while the symbol has no snapshot strictly
  after ts + W (T16), and NULL when either mid is NULL (the mid of that
  snapshot is used as is, no reaching back, as in T3).
* target_volatility = std_s of r over the rows in (ts, ts + 5 min] that
  exist, where each row's r is its own return against its previous row (T3);
  NULL returns are skipped and fewer than 2 returns give NULL (T2, T16).
* target_direction = +1 if target_return_1min > s_t / (2 m_t), else -1 if it
  is < -s_t / (2 m_t), else 0 (+1 is tested first, T16); NULL when
  target_return_1min or the dead zone is NULL.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .volatility import Book, assemble, log_ratio, safe_div, sort_snapshots, time_windows

#: Horizons of target_return_<w>, as (suffix, microseconds).
RETURN_HORIZONS: tuple[tuple[str, int], ...] = (("1min", 60_000_000), ("5min", 300_000_000))

#: Forward window of target_volatility: (ts, ts + 5 min].
VOLATILITY_HORIZON_US = 300_000_000

OUTPUT_COLUMNS: tuple[str, ...] = (
    "symbol",
    "ts",
    *(f"target_return_{name}" for name, _ in RETURN_HORIZONS),
    "target_volatility",
    "target_direction",
)


def forward_return(book: Book, mid: np.ndarray, horizon_us: int) -> np.ndarray:
    """T16: ln(m(ts + W) / m_t); NULL until the symbol has a row strictly after ts + W."""
    out = np.full(book.n, np.nan)
    ts = book.ts_us
    for g0, g1 in book.groups():
        seg = ts[g0:g1]
        # One past the last row at or before ts + W (>= the current row + 1).
        after = g0 + np.searchsorted(seg, seg + horizon_us, side="right")
        complete = after < g1  # row `after` is the first one strictly after ts + W
        rows = np.arange(g0, g1)[complete]
        out[rows] = log_ratio(mid[after[complete] - 1], mid[rows])
    return out


def targets(snapshots: pd.DataFrame) -> pd.DataFrame:
    """Compute the `targets` columns (section S) for every snapshot row.

    Returns one row per input row, sorted by (symbol, ts) with the index
    reset, with exactly the columns of :data:`OUTPUT_COLUMNS` (float64, NaN
    for NULL; target_direction is -1.0 / 0.0 / 1.0).
    """
    book = sort_snapshots(snapshots)
    mid = book.mid()
    cols: dict[str, np.ndarray] = {}
    for name, horizon in RETURN_HORIZONS:
        cols[f"target_return_{name}"] = forward_return(book, mid, horizon)

    # S / T16: std_s of the (backward) returns of the rows in (ts, ts + 5 min].
    r = book.log_return()
    cols["target_volatility"] = time_windows(book, VOLATILITY_HORIZON_US, forward=True).std(r)

    # S / T16: direction with dead zone s_t / (2 m_t); +1 tested before -1.
    ret = cols["target_return_1min"]
    dead_zone = safe_div(book.spread(), 2.0 * mid)
    known = ~np.isnan(ret) & ~np.isnan(dead_zone)
    direction = np.where(ret > dead_zone, 1.0, np.where(ret < -dead_zone, -1.0, 0.0))
    cols["target_direction"] = np.where(known, direction, np.nan)
    return assemble(book, cols, OUTPUT_COLUMNS)
