"""Reference implementation ("oracle") of the `temporal` feature family.

Written only from `FEATURE_DEFINITIONS.md` (sections 0 and A, the `**temporal**` list of
section S, section T) and `docs/engine_definitions.md` (`size_clustering`). The window
machinery is shared with the `ofi` oracle (:mod:`tests.oracle.ofi`); see its docstring for
the conventions (per symbol in ts order, NaN = NULL, no inf, row windows t-N+1..t NULL unless
all N inputs are non-NULL).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from tests.oracle.ofi import (
    Book,
    lag,
    load_book,
    log_ratio,
    result_frame,
    row_windows,
    safe_div,
    sequential_sum,
    window_rolling,
    window_sum,
)

#: Row windows N of `update_intensity_N`.
INTENSITY_ROWS: tuple[int, ...] = (50, 100, 300)

#: Row lags N of `price_momentum_N` and `imbalance_momentum_N`.
MOMENTUM_ROWS: tuple[int, ...] = (10, 30, 100)

#: Rows before the current one whose mean and std_s define a large level-1 size (T12).
LARGE_SIZE_ROWS = 100

#: Levels of the order book imbalance used by `imbalance_momentum_N` (OBI_5, A6).
IMBALANCE_LEVELS = 5

#: Tolerance of "the size is a whole number" in `size_clustering` (engine_definitions).
INTEGER_TOLERANCE = 1e-9

OUTPUT_COLUMNS: tuple[str, ...] = (
    "symbol",
    "ts",
    "book_updates",
    *(f"update_intensity_{n}" for n in INTENSITY_ROWS),
    "large_bid",
    "large_ask",
    "size_clustering",
    *(f"price_momentum_{n}" for n in MOMENTUM_ROWS),
    *(f"imbalance_momentum_{n}" for n in MOMENTUM_ROWS),
)


def book_updates(book: Book) -> np.ndarray:
    """S `book_updates`: how many of the 40 level fields (bid/ask price/size, levels 1..10)
    are DISTINCT FROM the previous snapshot's (T9: NULL vs a value differs, NULL vs NULL does
    not); NULL on a symbol's first snapshot."""
    fields = np.hstack([book.bid_price, book.bid_size, book.ask_price, book.ask_size])
    previous = lag(fields, book.group_start, 1)
    distinct = (fields != previous) & ~(np.isnan(fields) & np.isnan(previous))
    count = distinct.sum(axis=1).astype(np.float64)
    first = np.arange(book.n_rows) == book.group_start
    return np.where(first, np.nan, count)


def large_size(size: np.ndarray, group_start: np.ndarray) -> np.ndarray:
    """T12: 1 if size_t > mean + 2·std_s of the sizes of rows t-100..t-1, else 0; NULL until
    those 100 rows and the current size are non-NULL."""
    previous = window_rolling(
        {"size": size}, row_windows(group_start, LARGE_SIZE_ROWS, skip_current=True)
    )
    mean = previous.mean()["size"].to_numpy()
    std = previous.std(ddof=1)["size"].to_numpy()
    flag = np.where(size > mean + 2.0 * std, 1.0, 0.0)
    return np.where(np.isnan(size) | np.isnan(mean) | np.isnan(std), np.nan, flag)


def size_clustering(book: Book) -> np.ndarray:
    """engine_definitions `size_clustering`: over the 20 level slots, of the levels with a
    non-NULL price and a size > 0, the fraction whose size is a whole number
    (|size - round(size)| <= 1e-9); NULL when no level is present."""
    prices = np.hstack([book.bid_price, book.ask_price])
    sizes = np.hstack([book.bid_size, book.ask_size])
    present = ~np.isnan(prices) & (sizes > 0.0)  # False for a NULL size
    whole = present & (np.abs(sizes - np.round(sizes)) <= INTEGER_TOLERANCE)
    return safe_div(whole.sum(axis=1).astype(float), present.sum(axis=1).astype(float))


def temporal(snapshots: pd.DataFrame) -> pd.DataFrame:
    """Compute the `temporal` columns (section S) for every snapshot.

    Returns one row per input row, sorted by (symbol, ts), index reset, with exactly the
    columns of :data:`OUTPUT_COLUMNS` (float64, NaN for NULL).
    """
    book = load_book(snapshots)
    gs = book.group_start
    rows = np.arange(book.n_rows)
    cols: dict[str, np.ndarray] = {}

    # S `book_updates` with T9.
    updates = book_updates(book)
    cols["book_updates"] = updates

    # S `update_intensity_N` = sum of book_updates over rows t-N+1..t / seconds from the
    # first to the last row of the window (T11: ts_t - ts_{t-N+1}, microseconds / 1e6);
    # NULL unless all N book_updates are non-NULL (T1, so first on row N), NULL if 0 s.
    for n in INTENSITY_ROWS:
        total = window_sum({"u": updates}, row_windows(gs, n))["u"]
        first_row = rows - n + 1
        inside = first_row >= gs
        span_us = book.ts_us - book.ts_us[np.maximum(first_row, 0)]
        seconds = np.where(inside, span_us.astype(np.float64) / 1e6, np.nan)
        cols[f"update_intensity_{n}"] = safe_div(total, seconds)

    # S `large_bid` / `large_ask` with T12, on B_1 / A_1 as given.
    cols["large_bid"] = large_size(book.bid_size[:, 0], gs)
    cols["large_ask"] = large_size(book.ask_size[:, 0], gs)

    # engine_definitions `size_clustering`.
    cols["size_clustering"] = size_clustering(book)

    # S `price_momentum_N` = ln(m_t / m_{t-N}), row t-N as is (T3), log1p form (T17);
    # A1 mid, NULL when a level-1 price is NULL.
    mid = (book.bid_price[:, 0] + book.ask_price[:, 0]) / 2.0
    for n in MOMENTUM_ROWS:
        cols[f"price_momentum_{n}"] = log_ratio(mid, lag(mid, gs, n))

    # S `imbalance_momentum_N` = OBI_5(t) - OBI_5(t-N); OBI_5 per A6 with T4 (a missing
    # level counts size 0), NULL when D^b_5 + D^a_5 = 0.
    k = IMBALANCE_LEVELS
    bid_valid = ~np.isnan(book.bid_price[:, :k]) & ~np.isnan(book.bid_size[:, :k])
    ask_valid = ~np.isnan(book.ask_price[:, :k]) & ~np.isnan(book.ask_size[:, :k])
    bid_size0 = np.where(bid_valid, book.bid_size[:, :k], 0.0)
    ask_size0 = np.where(ask_valid, book.ask_size[:, :k], 0.0)
    depth_bid = sequential_sum([bid_size0[:, i] for i in range(k)])
    depth_ask = sequential_sum([ask_size0[:, i] for i in range(k)])
    obi5 = safe_div(depth_bid - depth_ask, depth_bid + depth_ask)
    for n in MOMENTUM_ROWS:
        cols[f"imbalance_momentum_{n}"] = obi5 - lag(obi5, gs, n)

    return result_frame(book, cols, OUTPUT_COLUMNS)
