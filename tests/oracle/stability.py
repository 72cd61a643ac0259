"""Reference implementation ("oracle") of the `stability` feature family.

Written only from `FEATURE_DEFINITIONS.md` (section 0, A6, A10, the
`**stability**` list of section S and section T) and
`docs/engine_definitions.md` (book_resilience, quote lives, windows).
Per symbol in ts order; the window machinery is shared with
:mod:`tests.oracle.volatility`.

Conventions:

* "Differs from the previous snapshot" is IS DISTINCT FROM (T9): NULL vs a
  value differs, NULL vs NULL does not; change flags are NULL on a symbol's
  first row.
* Quote lives count from the latest change; a symbol's first snapshot starts
  the first quote, with life 0 (T10). Seconds are the timestamp difference in
  microseconds / 1e6.
* Depth sums treat a missing level (NULL price or size) as size 0 (T4);
  the spread uses the level-1 prices directly and is NULL when one is (T5).
* Row windows `_N` cover rows t-N+1..t and are NULL unless all N inputs are
  non-NULL (T1).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .volatility import (
    Book,
    assemble,
    full_row_window,
    rolling_std,
    row_windows,
    safe_div,
    sort_snapshots,
)

SPREAD_WINDOWS: tuple[int, ...] = (10, 20, 50, 100)
IMBALANCE_LEVELS: tuple[int, ...] = (3, 5, 10)
#: Rows of book_shape_stability, depth_ratio_stability and imbalance_stability_k (S).
STABILITY_ROWS = 50

#: book_resilience (engine definition): trailing spread window, band width,
#: lookback of the recoveries.
RESILIENCE_BASELINE_ROWS = 100
RESILIENCE_BAND_STDS = 2.0
RESILIENCE_LOOKBACK_ROWS = 1000

OUTPUT_COLUMNS: tuple[str, ...] = (
    "symbol",
    "ts",
    "bid_change",
    "ask_change",
    "bid_life",
    "ask_life",
    "quote_life",
    "bid_quote_lifetime",
    "ask_quote_lifetime",
    "quote_lifetime",
    *(f"spread_stability_{n}" for n in SPREAD_WINDOWS),
    *(f"spread_stability_norm_{n}" for n in SPREAD_WINDOWS),
    "book_shape_1_5",
    "book_shape_stability",
    "bid_volume_concentration",
    "ask_volume_concentration",
    "volume_concentration",
    "bid_concentration",
    "ask_concentration",
    "depth_ratio",
    "depth_ratio_stability",
    *(f"imbalance_stability_{k}" for k in IMBALANCE_LEVELS),
    "book_resilience",
)


# ---------------------------------------------------------------------------
# Changes and quote lives (S, T9, T10)


def distinct_from_previous(book: Book, values: np.ndarray) -> np.ndarray:
    """T9: 1.0 where `values` IS DISTINCT FROM the previous row's, else 0.0; NaN on row 0."""
    prev = np.full(values.shape, np.nan)
    prev[1:] = values[:-1]
    a_null, b_null = np.isnan(values), np.isnan(prev)
    distinct = np.where(a_null | b_null, a_null != b_null, values != prev)
    return np.where(book.position == 0, np.nan, distinct.astype(float))


def lives(book: Book, changed: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(snapshots, seconds) since the latest quote start at or before each row (T10).

    A quote starts on a symbol's first row and on every row where `changed`
    is 1; life is 0 on a starting row.
    """
    idx = np.arange(book.n, dtype=np.int64)
    starts = (book.position == 0) | (changed == 1.0)
    last_start = np.maximum.accumulate(np.where(starts, idx, 0)) if book.n else idx
    rows = (idx - last_start).astype(float)
    seconds = (book.ts_us - book.ts_us[last_start]) / 1e6
    return rows, seconds


# ---------------------------------------------------------------------------
# book_resilience (engine definition)


def book_resilience(book: Book, spread: np.ndarray) -> np.ndarray:
    """Mean recovery time of the spread, in seconds (docs/engine_definitions.md).

    * mu_t, sd_t = mean and std_s of the spread over rows t-100..t-1; NULL
      unless those 100 rows exist and all have a spread.
    * Row t is wide when s_t > mu_t + 2 sd_t and calm when s_t <= mu_t (both
      false when s_t, mu_t or sd_t is NULL).
    * A recovery is a pair of consecutive calm rows p < c (no calm row in
      between) with at least one wide row between them; its duration is
      ts_c - ts_w in seconds, w being the first wide row after p.
    * book_resilience_t = the mean duration of the recoveries with p and c
      both among rows t-999..t of the symbol; NULL when there is none.
    """
    n = book.n
    out = np.full(n, np.nan)
    if n == 0:
        return out
    base = row_windows(book, RESILIENCE_BASELINE_ROWS, lag=1)  # rows t-100..t-1
    ok = full_row_window(base, ~np.isnan(spread), RESILIENCE_BASELINE_ROWS)
    cnt, mean, m2 = base.moments(spread)
    mu = np.where(ok, mean, np.nan)
    sd = np.where(ok, np.sqrt(np.where(ok, m2, 0.0) / np.maximum(cnt - 1.0, 1.0)), np.nan)
    known = ~np.isnan(spread) & ~np.isnan(mu) & ~np.isnan(sd)
    wide = known & (spread > mu + RESILIENCE_BAND_STDS * sd)
    calm = known & (spread <= mu)

    calm_rows = np.flatnonzero(calm)
    if calm_rows.size < 2:
        return out
    p, c = calm_rows[:-1], calm_rows[1:]
    same_symbol = book.group_start[p] == book.group_start[c]
    wide_before = np.concatenate(([0], np.cumsum(wide)))  # wide rows in [0, i)
    has_wide = wide_before[c] - wide_before[p + 1] > 0
    keep = same_symbol & has_wide
    p, c = p[keep], c[keep]
    if p.size == 0:
        return out
    # First wide row at or after each row (n when none).
    idx = np.arange(n, dtype=np.int64)
    next_wide = np.minimum.accumulate(np.where(wide, idx, n)[::-1])[::-1]
    w = next_wide[p + 1]
    duration_us = book.ts_us[c] - book.ts_us[w]
    cum_us = np.concatenate(([0], np.cumsum(duration_us)))  # exact integer sums

    # Recoveries are ordered by c, and then also by p. Those counted at row t have
    # c <= t and p >= max(t - 999, first row of t's symbol).
    first = np.maximum(idx - (RESILIENCE_LOOKBACK_ROWS - 1), book.group_start)
    lo = np.searchsorted(p, first, side="left")
    hi = np.searchsorted(c, idx, side="right")
    count = hi - lo
    has = count > 0
    total_us = cum_us[np.where(has, hi, 0)] - cum_us[np.where(has, lo, 0)]
    out[has] = total_us[has] / count[has] / 1e6
    return out


# ---------------------------------------------------------------------------
# The feature family


def stability(snapshots: pd.DataFrame) -> pd.DataFrame:
    """Compute the `stability` columns (section S) for every snapshot row.

    Returns one row per input row, sorted by (symbol, ts) with the index
    reset, with exactly the columns of :data:`OUTPUT_COLUMNS` (float64, NaN
    for NULL, 0/1 flags and counts included).
    """
    book = sort_snapshots(snapshots)
    cols: dict[str, np.ndarray] = {}

    # S / T9: change flags of the best bid and ask prices.
    bid_change = distinct_from_previous(book, book.column("bid_price_1"))
    ask_change = distinct_from_previous(book, book.column("ask_price_1"))
    cols["bid_change"] = bid_change
    cols["ask_change"] = ask_change

    # S / T10: lives in snapshots and in seconds; quote_* restarts on either change.
    either = np.where((bid_change == 1.0) | (ask_change == 1.0), 1.0, 0.0)
    cols["bid_life"], cols["bid_quote_lifetime"] = lives(book, bid_change)
    cols["ask_life"], cols["ask_quote_lifetime"] = lives(book, ask_change)
    cols["quote_life"], cols["quote_lifetime"] = lives(book, either)

    # S: spread_stability_N = std_s of the spread over N rows; _norm_N = that / mean spread
    # over the same rows (NULL when the mean is 0). T1: all N spreads non-NULL.
    spread = book.spread()
    for n in SPREAD_WINDOWS:
        win = row_windows(book, n)
        ok = full_row_window(win, ~np.isnan(spread), n)
        _, mean, m2 = win.moments(spread)
        std = np.where(ok, np.sqrt(np.where(ok, m2, 0.0) / (n - 1.0)), np.nan)
        cols[f"spread_stability_{n}"] = std
        cols[f"spread_stability_norm_{n}"] = safe_div(std, np.where(ok, mean, np.nan))

    # Level sizes with T4: a missing level (NULL price or size) has size 0.
    bid_p, bid_s = book.levels("bid", "price"), book.levels("bid", "size")
    ask_p, ask_s = book.levels("ask", "price"), book.levels("ask", "size")
    bid0 = np.where(~np.isnan(bid_p) & ~np.isnan(bid_s), bid_s, 0.0)
    ask0 = np.where(~np.isnan(ask_p) & ~np.isnan(ask_s), ask_s, 0.0)
    depth_bid = np.cumsum(bid0, axis=1)  # D^b_k in column k-1 (A6)
    depth_ask = np.cumsum(ask0, axis=1)

    # S: book_shape_1_5 = (D^b_5 + D^a_5) / (B_1 + A_1). T4 covers the numerator only;
    # the denominator takes the level-1 sizes as they are (NULL size -> NULL; 0 -> NULL).
    level1 = book.column("bid_size_1") + book.column("ask_size_1")
    book_shape = safe_div(depth_bid[:, 4] + depth_ask[:, 4], level1)
    cols["book_shape_1_5"] = book_shape
    cols["book_shape_stability"] = rolling_std(book, book_shape, STABILITY_ROWS)

    # A10 (not normalised), N counts all 10 (20) slots; NULL when the total is 0.
    total_bid = depth_bid[:, -1]
    total_ask = depth_ask[:, -1]
    total = total_bid + total_ask
    cols["bid_volume_concentration"] = (safe_div(bid0, total_bid[:, None]) ** 2).sum(axis=1)
    cols["ask_volume_concentration"] = (safe_div(ask0, total_ask[:, None]) ** 2).sum(axis=1)
    both = np.concatenate([bid0, ask0], axis=1)
    cols["volume_concentration"] = (safe_div(both, total[:, None]) ** 2).sum(axis=1)
    # A10: top-of-book share w_1 per side.
    cols["bid_concentration"] = safe_div(bid0[:, 0], total_bid)
    cols["ask_concentration"] = safe_div(ask0[:, 0], total_ask)

    # S: depth_ratio = D^b_5 / D^a_5 (T4), NULL when D^a_5 = 0; its 50-row std_s.
    depth_ratio = safe_div(depth_bid[:, 4], depth_ask[:, 4])
    cols["depth_ratio"] = depth_ratio
    cols["depth_ratio_stability"] = rolling_std(book, depth_ratio, STABILITY_ROWS)

    # S: imbalance_stability_k = std_s of OBI_k (A6, T4) over 50 rows.
    for k in IMBALANCE_LEVELS:
        db, da = depth_bid[:, k - 1], depth_ask[:, k - 1]
        obi = safe_div(db - da, db + da)
        cols[f"imbalance_stability_{k}"] = rolling_std(book, obi, STABILITY_ROWS)

    # Engine definition: book_resilience.
    cols["book_resilience"] = book_resilience(book, spread)

    return assemble(book, cols, OUTPUT_COLUMNS)
