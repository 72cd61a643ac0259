"""Reference implementation ("oracle") of the `book_pressure` feature family.

Written only from `FEATURE_DEFINITIONS.md` (sections 0 and A, the `**book_pressure**` list of
section S, T4 and T17). Every feature is a function of one snapshot, over all 10 levels.

* T4: a missing level (NULL price or NULL size) counts as size 0 in every depth sum, so a
  wholly empty bid side gives bid_pressure = 0; only a zero denominator gives NULL.
* Sums over levels are evaluated in level order 1..10, left to right.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from tests.oracle.microstructure import N_LEVELS
from tests.oracle.ofi import load_book, log_ratio, result_frame, safe_div, sequential_sum

OUTPUT_COLUMNS: tuple[str, ...] = (
    "symbol",
    "ts",
    "bid_pressure",
    "ask_pressure",
    "bid_pressure_weighted",
    "ask_pressure_weighted",
    "pressure_imbalance",
    "pressure_imbalance_weighted",
    "book_depth_asymmetry",
)


def book_pressure(snapshots: pd.DataFrame) -> pd.DataFrame:
    """Compute the `book_pressure` columns (section S) for every snapshot.

    Returns one row per input row, sorted by (symbol, ts), index reset, with exactly the
    columns of :data:`OUTPUT_COLUMNS` (float64, NaN for NULL).
    """
    book = load_book(snapshots)

    # T4: sizes with missing levels as 0.
    bid_valid = ~np.isnan(book.bid_price) & ~np.isnan(book.bid_size)
    ask_valid = ~np.isnan(book.ask_price) & ~np.isnan(book.ask_size)
    bid_size0 = np.where(bid_valid, book.bid_size, 0.0)
    ask_size0 = np.where(ask_valid, book.ask_size, 0.0)
    levels = range(N_LEVELS)

    # A6/A7: D^b_10 and D^a_10.
    depth_bid = sequential_sum([bid_size0[:, i] for i in levels])
    depth_ask = sequential_sum([ask_size0[:, i] for i in levels])
    # S: sum_i B_i / i and sum_i A_i / i (level i = column i-1).
    weighted_bid = sequential_sum([bid_size0[:, i] / (i + 1) for i in levels])
    weighted_ask = sequential_sum([ask_size0[:, i] / (i + 1) for i in levels])

    cols: dict[str, np.ndarray] = {}
    # S `bid_pressure` = D^b_10 / (D^b_10 + D^a_10); NULL when the book is empty;
    # `ask_pressure` = 1 - that.
    cols["bid_pressure"] = safe_div(depth_bid, depth_bid + depth_ask)
    cols["ask_pressure"] = 1.0 - cols["bid_pressure"]
    # S `bid_pressure_weighted` = sum B_i/i / (sum B_i/i + sum A_i/i); ask = 1 - that.
    cols["bid_pressure_weighted"] = safe_div(weighted_bid, weighted_bid + weighted_ask)
    cols["ask_pressure_weighted"] = 1.0 - cols["bid_pressure_weighted"]
    # S `pressure_imbalance` = bid_pressure - ask_pressure; the weighted one likewise.
    cols["pressure_imbalance"] = cols["bid_pressure"] - cols["ask_pressure"]
    cols["pressure_imbalance_weighted"] = (
        cols["bid_pressure_weighted"] - cols["ask_pressure_weighted"]
    )
    # A9 over all 10 levels: ln(D^b_10) - ln(D^a_10) = ln(D^b/D^a), computed in the
    # log1p form (T17); NULL if either side's depth is 0.
    cols["book_depth_asymmetry"] = log_ratio(depth_bid, depth_ask)

    return result_frame(book, cols, OUTPUT_COLUMNS)
