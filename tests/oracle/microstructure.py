"""Reference implementation ("oracle") of the `microstructure` feature family.

Written only from `FEATURE_DEFINITIONS.md` (section 0, section A, the
`**microstructure**` list of section S and the edge-case rules of section T).
It is meant to be compared column by column with the SQL implementation, so
it favours obviousness over speed: the per-row arithmetic is vectorised with
numpy where it is a one-liner, and the walk of the book (A8) is a plain loop
over levels.

Conventions used throughout (all from the definitions file):

* NaN stands for SQL NULL. No output column ever holds +/-inf (T17): every
  division goes through :func:`_safe_div`, which gives NaN for a zero or NULL
  denominator (section 0, "Division by zero").
* A level is *missing* when its price or its size is NULL. A missing level
  counts as size 0 and notional 0 in every depth sum (T4).
* Features that use a level-1 price directly are NULL when that price is NULL
  (T5); depth sums are not (T4).
* The walk of the book skips missing and zero-size levels; the impact is NULL
  when the visible depth over the 10 levels is below Q; the fill ratio is
  min(depth/Q, 1), 0 on an empty side, never NULL (T6).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

N_LEVELS = 10

#: Levels k for which `order_book_imbalance_k` is emitted (k = 1 is the plain name).
OBI_LEVELS: tuple[int, ...] = (2, 3, 5, 10)

#: Levels k for which `price_impact_k` = (a_k - b_k) / (2 m) is emitted.
HALF_WIDTH_LEVELS: tuple[int, ...] = (1, 5, 10)

#: Number of levels used by `weighted_mid_price` (A5, k = 5).
WMP_LEVELS = 5

OUTPUT_COLUMNS: tuple[str, ...] = (
    "symbol",
    "ts",
    "mid_price",
    "bid_ask_spread",
    "bid_ask_spread_pct",
    "spread_bps",
    "microprice",
    "weighted_mid_price",
    "order_book_imbalance",
    *(f"order_book_imbalance_{k}" for k in OBI_LEVELS),
    *(f"total_bid_volume_{k}" for k in range(1, N_LEVELS + 1)),
    *(f"total_ask_volume_{k}" for k in range(1, N_LEVELS + 1)),
    "price_impact_buy",
    "price_impact_sell",
    "impact_fill_ratio_buy",
    "impact_fill_ratio_sell",
    "price_impact_ask",
    "price_impact_bid",
    *(f"price_impact_{k}" for k in HALF_WIDTH_LEVELS),
    "is_crossed",
)

INPUT_COLUMNS: tuple[str, ...] = (
    "symbol",
    "ts",
    *(f"bid_price_{i}" for i in range(1, N_LEVELS + 1)),
    *(f"bid_size_{i}" for i in range(1, N_LEVELS + 1)),
    *(f"ask_price_{i}" for i in range(1, N_LEVELS + 1)),
    *(f"ask_size_{i}" for i in range(1, N_LEVELS + 1)),
)


# ---------------------------------------------------------------------------
# Small helpers


def _safe_div(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """num / den elementwise; NaN where either is NaN or den == 0 (never inf, no warning)."""
    num = np.asarray(num, dtype=float)
    den = np.asarray(den, dtype=float)
    num, den = np.broadcast_arrays(num, den)
    out = np.full(num.shape, np.nan)
    ok = ~np.isnan(num) & ~np.isnan(den) & (den != 0.0)
    np.divide(num, den, out=out, where=ok)
    return out


def _level_matrix(snapshots: pd.DataFrame, side: str, kind: str) -> np.ndarray:
    """(n_rows, 10) float matrix of `{side}_{kind}_1..10`, NaN for NULL."""
    cols = [f"{side}_{kind}_{i}" for i in range(1, N_LEVELS + 1)]
    return snapshots[cols].to_numpy(dtype=float, na_value=np.nan)


def _level_is_missing(price: float, size: float) -> bool:
    """A level is missing when its price or its size is NULL (T4)."""
    return math.isnan(price) or math.isnan(size)


# ---------------------------------------------------------------------------
# The walk of the book (A8, T6), one side of one snapshot


def walk_book(prices: Sequence[float], sizes: Sequence[float], q: float) -> tuple[float, float]:
    """Fill a market order of size `q` against one side of the book, level 1 first.

    `prices`/`sizes` are the levels of the side being consumed (the asks for a
    buy, the bids for a sell), in level order 1..10.

    Returns ``(vwap, fill_ratio)``:

    * ``vwap`` = sum q_i * price_i / q, with q_i = min(size_i, q - sum_{j<i} q_j),
      taken over the levels in order and skipping missing (NULL price or size)
      and zero-size levels; NaN when the visible depth is below q (no
      extrapolation).
    * ``fill_ratio`` = min(visible depth / q, 1); 0 on an empty side; never NaN.
    """
    if not (q > 0.0 and math.isfinite(q)):
        raise ValueError(f"impact order size must be a positive finite number, got {q!r}")

    # Visible depth over all levels of this side.
    depth = 0.0
    for price, size in zip(prices, sizes, strict=True):
        if _level_is_missing(price, size) or size == 0.0:
            continue
        depth += size

    fill_ratio = min(depth / q, 1.0)
    if depth < q:
        return math.nan, fill_ratio

    remaining = q
    cost = 0.0
    for price, size in zip(prices, sizes, strict=True):
        if remaining <= 0.0:
            break
        if _level_is_missing(price, size) or size == 0.0:
            continue
        fill = min(size, remaining)
        cost += fill * price
        remaining -= fill
    return cost / q, fill_ratio


# ---------------------------------------------------------------------------
# The feature family


def microstructure(
    snapshots: pd.DataFrame,
    impact_order_size: Mapping[str, float],
    default_impact_order_size: float = 1.0,
) -> pd.DataFrame:
    """Compute the `microstructure` columns (section S) for every snapshot row.

    `snapshots` has `symbol`, `ts` and the 40 level columns
    `bid_price_1..10`, `bid_size_1..10`, `ask_price_1..10`, `ask_size_1..10`
    (NaN = NULL). The impact order size Q of a row is
    ``impact_order_size[symbol]``, or `default_impact_order_size` for a symbol
    not in the mapping. Every feature here is a function of one row alone, so
    row order and the symbol partition do not matter.

    Returns one row per input row, in input order (index reset), with exactly
    the columns of :data:`OUTPUT_COLUMNS`.
    """
    missing_cols = [c for c in INPUT_COLUMNS if c not in snapshots.columns]
    if missing_cols:
        raise KeyError(f"snapshots lack columns: {missing_cols}")

    snaps = snapshots.reset_index(drop=True)
    n = len(snaps)

    bid_p = _level_matrix(snaps, "bid", "price")
    bid_s = _level_matrix(snaps, "bid", "size")
    ask_p = _level_matrix(snaps, "ask", "price")
    ask_s = _level_matrix(snaps, "ask", "size")

    # T4: a level with a NULL price or a NULL size counts as size 0 and notional 0.
    bid_valid = ~np.isnan(bid_p) & ~np.isnan(bid_s)
    ask_valid = ~np.isnan(ask_p) & ~np.isnan(ask_s)
    bid_size0 = np.where(bid_valid, bid_s, 0.0)
    ask_size0 = np.where(ask_valid, ask_s, 0.0)
    bid_notional0 = np.where(bid_valid, bid_p * bid_s, 0.0)
    ask_notional0 = np.where(ask_valid, ask_p * ask_s, 0.0)

    # Cumulative depth D^b_k, D^a_k (A6/A7), column k-1 holds levels 1..k.
    depth_bid = np.cumsum(bid_size0, axis=1)
    depth_ask = np.cumsum(ask_size0, axis=1)
    notional_bid = np.cumsum(bid_notional0, axis=1)
    notional_ask = np.cumsum(ask_notional0, axis=1)

    b1, a1 = bid_p[:, 0], ask_p[:, 0]
    bsz1, asz1 = bid_s[:, 0], ask_s[:, 0]

    # A1, A2, A3 / S: level-1 prices used directly, so NULL when one is NULL (T5).
    mid = (b1 + a1) / 2.0
    spread = a1 - b1
    spread_pct = _safe_div(100.0 * spread, mid)
    spread_bps = _safe_div(1e4 * spread, mid)

    # A5 engine convention: `microprice` is the level-1 weighted mid
    # (b_1*A_1 + a_1*B_1) / (B_1 + A_1); NULL if a level-1 price or size is NULL
    # or B_1 + A_1 = 0 (T5). The NaN inputs propagate; _safe_div handles 0.
    microprice = _safe_div(b1 * asz1 + a1 * bsz1, bsz1 + asz1)

    # A5 multi-level form over k = 5 levels, with T4 depth sums; NULL when
    # either side's 5-level depth is 0 (T5).
    k = WMP_LEVELS
    db5, da5 = depth_bid[:, k - 1], depth_ask[:, k - 1]
    vwap_b5 = _safe_div(notional_bid[:, k - 1], db5)
    vwap_a5 = _safe_div(notional_ask[:, k - 1], da5)
    wmp = _safe_div(vwap_b5 * da5 + vwap_a5 * db5, db5 + da5)
    wmp = np.where((db5 == 0.0) | (da5 == 0.0), np.nan, wmp)

    # A6: OBI_k over T4 depth sums; NULL only for a zero denominator.
    def obi(level: int) -> np.ndarray:
        db, da = depth_bid[:, level - 1], depth_ask[:, level - 1]
        return _safe_div(db - da, db + da)

    # A8 / T6: walk the book per row with that row's Q.
    symbols = snaps["symbol"].tolist()
    vwap_buy = np.full(n, np.nan)
    vwap_sell = np.full(n, np.nan)
    fill_buy = np.full(n, np.nan)
    fill_sell = np.full(n, np.nan)
    for r in range(n):
        q = float(impact_order_size.get(symbols[r], default_impact_order_size))
        vwap_buy[r], fill_buy[r] = walk_book(ask_p[r].tolist(), ask_s[r].tolist(), q)
        vwap_sell[r], fill_sell[r] = walk_book(bid_p[r].tolist(), bid_s[r].tolist(), q)

    impact_buy = _safe_div(vwap_buy - mid, mid)
    impact_sell = _safe_div(mid - vwap_sell, mid)
    impact_ask = _safe_div(vwap_buy - a1, a1)
    impact_bid = _safe_div(b1 - vwap_sell, b1)

    # is_crossed = b_1 >= a_1 (locked counts as crossed); NULL if either is NULL.
    price_missing = np.isnan(b1) | np.isnan(a1)
    crossed_values = np.where(price_missing, False, b1 >= a1)
    is_crossed = pd.arrays.BooleanArray(crossed_values, price_missing)

    out: dict[str, object] = {
        "symbol": snaps["symbol"],
        "ts": snaps["ts"],
        "mid_price": mid,
        "bid_ask_spread": spread,
        "bid_ask_spread_pct": spread_pct,
        "spread_bps": spread_bps,
        "microprice": microprice,
        "weighted_mid_price": wmp,
        "order_book_imbalance": obi(1),
    }
    for level in OBI_LEVELS:
        out[f"order_book_imbalance_{level}"] = obi(level)
    for level in range(1, N_LEVELS + 1):
        out[f"total_bid_volume_{level}"] = depth_bid[:, level - 1]
    for level in range(1, N_LEVELS + 1):
        out[f"total_ask_volume_{level}"] = depth_ask[:, level - 1]
    out["price_impact_buy"] = impact_buy
    out["price_impact_sell"] = impact_sell
    out["impact_fill_ratio_buy"] = fill_buy
    out["impact_fill_ratio_sell"] = fill_sell
    out["price_impact_ask"] = impact_ask
    out["price_impact_bid"] = impact_bid
    for level in HALF_WIDTH_LEVELS:
        # (a_k - b_k) / (2 m): NULL when a_k, b_k or the mid is NULL (T5).
        out[f"price_impact_{level}"] = _safe_div(
            ask_p[:, level - 1] - bid_p[:, level - 1], 2.0 * mid
        )
    out["is_crossed"] = is_crossed

    result = pd.DataFrame(out)
    assert tuple(result.columns) == OUTPUT_COLUMNS
    return result


# ---------------------------------------------------------------------------
# Hand-built edge-case data

EURUSD_TICK = 0.00001
ZZTEST_TICK = 0.01

_Level = tuple[float, float]  # (price, size); NaN for NULL


def _ladder(start: float, step: float, sizes: Sequence[float], digits: int) -> list[_Level]:
    """Levels at start, start+step, ... (rounded to `digits` decimals) with the given sizes."""
    return [(round(start + i * step, digits), float(s)) for i, s in enumerate(sizes)]


def _eur_bids(sizes: Sequence[float], best: float = 1.10000) -> list[_Level]:
    return _ladder(best, -EURUSD_TICK, sizes, 5)


def _eur_asks(sizes: Sequence[float], best: float = 1.10002) -> list[_Level]:
    return _ladder(best, EURUSD_TICK, sizes, 5)


def _zz_bids(sizes: Sequence[float], best: float = 100.00) -> list[_Level]:
    return _ladder(best, -ZZTEST_TICK, sizes, 2)


def _zz_asks(sizes: Sequence[float], best: float = 100.02) -> list[_Level]:
    return _ladder(best, ZZTEST_TICK, sizes, 2)


def _set(
    levels: list[_Level], level: int, price: float | None = None, size: float | None = None
) -> list[_Level]:
    """Copy of `levels` with level `level` (1-based) given a new price and/or size."""
    out = list(levels)
    old_price, old_size = out[level - 1]
    out[level - 1] = (
        old_price if price is None else price,
        old_size if size is None else size,
    )
    return out


NAN = math.nan

# Sizes of the "normal" books. EURUSD's Q is 5.0, ZZTEST's is the default 1.0.
_EUR_BID_SIZES = (1.25, 2.0, 1.75, 3.0, 2.5, 4.0, 3.5, 5.0, 4.5, 6.0)
_EUR_ASK_SIZES = (0.75, 1.5, 2.5, 1.0, 3.0, 2.0, 4.0, 3.5, 5.0, 5.5)
_ZZ_BID_SIZES = (0.3, 0.45, 0.2, 0.6, 0.35, 0.5, 0.8, 0.25, 0.4, 0.7)
_ZZ_ASK_SIZES = (0.15, 0.35, 0.4, 0.55, 0.5, 0.65, 0.2, 0.9, 0.3, 0.85)


def _edge_case_books() -> list[tuple[str, str, list[_Level], list[_Level]]]:
    """(label, symbol, bids, asks) in chronological order; levels beyond those given are NULL."""
    eur_bids = _eur_bids(_EUR_BID_SIZES)
    eur_asks = _eur_asks(_EUR_ASK_SIZES)
    zz_bids = _zz_bids(_ZZ_BID_SIZES)
    zz_asks = _zz_asks(_ZZ_ASK_SIZES)
    return [
        # A normal 10-level book. Buy walk for Q=5: 0.75+1.5+2.5 then 0.25 of level 4.
        # Sell walk: 1.25+2.0+1.75 = 5 exactly, three levels.
        ("eur_normal", "EURUSD", eur_bids, eur_asks),
        # Same timestamp as eur_normal on purpose (distinct (symbol, ts) still).
        # Buy walk for Q=1: 0.15+0.35+0.4 then 0.1 of level 4; sell: 0.3+0.45+0.2 then 0.05.
        ("zz_normal", "ZZTEST", zz_bids, zz_asks),
        # A 10-level book with irregular gaps between prices; both walks use 5 levels.
        (
            "eur_gapped",
            "EURUSD",
            list(
                zip(
                    (
                        1.10010,
                        1.10008,
                        1.10005,
                        1.10001,
                        1.09996,
                        1.09990,
                        1.09989,
                        1.09985,
                        1.09980,
                        1.09971,
                    ),
                    (0.5, 0.8, 1.2, 2.0, 2.5, 1.5, 3.0, 0.9, 2.2, 4.0),
                    strict=True,
                )
            ),
            list(
                zip(
                    (
                        1.10013,
                        1.10014,
                        1.10017,
                        1.10021,
                        1.10022,
                        1.10030,
                        1.10031,
                        1.10036,
                        1.10040,
                        1.10047,
                    ),
                    (1.1, 0.9, 1.3, 0.7, 2.2, 1.6, 0.4, 3.3, 2.8, 1.9),
                    strict=True,
                )
            ),
        ),
        # Only 2 levels on each side; ask depth 0.75 < Q = 1.
        ("zz_missing_deep", "ZZTEST", _zz_bids((0.6, 0.7)), _zz_asks((0.4, 0.35))),
        # 4 bid levels (depth 7.5 >= 5) and 3 ask levels (depth 3.5 < 5); rest NULL.
        ("eur_missing_deep", "EURUSD", _eur_bids((2.5, 1.5, 3.0, 0.5)), _eur_asks((1.2, 0.8, 1.5))),
        # Level-1 bid has a size but a NULL price: mid etc. NULL, B_1 counts 0.
        ("zz_bid1_size_no_price", "ZZTEST", _set(zz_bids, 1, price=NAN), zz_asks),
        # Bid level 2 has a price but a NULL size; ask level 1 too (so microprice is NULL
        # while the mid is not, and A_1 counts 0 in OBI_1).
        ("eur_price_no_size", "EURUSD", _set(eur_bids, 2, size=NAN), _set(eur_asks, 1, size=NAN)),
        # Depth below Q: bids 0.75 over 5 levels (< 1); asks as normal.
        ("zz_depth_below_q", "ZZTEST", _zz_bids((0.125, 0.25, 0.125, 0.0625, 0.1875)), zz_asks),
        # Bid level 3 and ask level 2 have a size but a NULL price: skipped and not counted.
        ("eur_size_no_price", "EURUSD", _set(eur_bids, 3, price=NAN), _set(eur_asks, 2, price=NAN)),
        # Ask depth equal to Q = 1 exactly (dyadic sizes, exact in float); bids 1.5.
        ("zz_depth_equals_q", "ZZTEST", _zz_bids((0.375, 0.625, 0.5)), _zz_asks((0.25, 0.25, 0.5))),
        # NULL level-1 bid price (size present); the rest of the book is normal.
        ("eur_nan_bid1_price", "EURUSD", _set(eur_bids, 1, price=NAN, size=1.5), eur_asks),
        # A crossed book: best bid 100.05 above best ask 100.03.
        (
            "zz_crossed",
            "ZZTEST",
            _zz_bids((0.4, 0.3, 0.5, 0.2, 0.6), best=100.05),
            _zz_asks((0.35, 0.25, 0.45, 0.3, 0.5), best=100.03),
        ),
        # A wholly empty bid side (all NULL); asks normal.
        ("eur_empty_bid", "EURUSD", [], eur_asks),
        # Zero sizes at level 1 on both sides (prices present).
        ("zz_zero_l1_both", "ZZTEST", _set(zz_bids, 1, size=0.0), _set(zz_asks, 1, size=0.0)),
        # The same on EURUSD.
        ("eur_zero_l1_both", "EURUSD", _set(eur_bids, 1, size=0.0), _set(eur_asks, 1, size=0.0)),
        # Repeated prices across bid levels.
        (
            "zz_repeated_prices",
            "ZZTEST",
            list(
                zip(
                    (100.00, 100.00, 99.99, 99.99, 99.99, 99.98, 99.97, 99.97, 99.96, 99.95),
                    _ZZ_BID_SIZES,
                    strict=True,
                )
            ),
            zz_asks,
        ),
        # Zero size at level 1 on the bid side only: microprice = b_1, OBI_1 = -1.
        ("eur_zero_l1_bid", "EURUSD", _set(eur_bids, 1, size=0.0), _set(eur_asks, 1, size=1.3)),
        # Zero size at level 1 on the ask side only: microprice = a_1, OBI_1 = +1.
        ("zz_zero_l1_ask", "ZZTEST", zz_bids, _set(zz_asks, 1, size=0.0)),
        # A crossed book: b_1 = 1.10006 > a_1 = 1.10004.
        (
            "eur_crossed",
            "EURUSD",
            _eur_bids((1.5, 2.5, 1.0, 3.5, 2.0), best=1.10006),
            _eur_asks((2.0, 1.25, 0.5, 2.25, 3.0), best=1.10004),
        ),
        # A wholly empty ask side.
        ("zz_empty_ask", "ZZTEST", zz_bids, []),
        # A locked book: b_1 = a_1 = 1.10003.
        (
            "eur_locked",
            "EURUSD",
            _eur_bids(_EUR_BID_SIZES, best=1.10003),
            _eur_asks(_EUR_ASK_SIZES, best=1.10003),
        ),
        # NULL level-1 ask price with a size; the rest normal.
        ("zz_nan_ask1_price", "ZZTEST", zz_bids, _set(zz_asks, 1, price=NAN, size=0.4)),
        # Repeated prices across levels on both sides.
        (
            "eur_repeated_prices",
            "EURUSD",
            list(
                zip(
                    (
                        1.10000,
                        1.10000,
                        1.09999,
                        1.09999,
                        1.09999,
                        1.09998,
                        1.09997,
                        1.09997,
                        1.09996,
                        1.09995,
                    ),
                    _EUR_BID_SIZES,
                    strict=True,
                )
            ),
            list(
                zip(
                    (
                        1.10002,
                        1.10002,
                        1.10003,
                        1.10003,
                        1.10003,
                        1.10004,
                        1.10005,
                        1.10005,
                        1.10006,
                        1.10007,
                    ),
                    _EUR_ASK_SIZES,
                    strict=True,
                )
            ),
        ),
        # An entirely empty book.
        ("zz_all_empty", "ZZTEST", [], []),
        # Visible depth below Q = 5 on both sides: bids 4.0, asks 4.5, over 10 levels.
        (
            "eur_depth_below_q",
            "EURUSD",
            _eur_bids((0.25, 0.5, 0.25, 0.5, 0.25, 0.5, 0.25, 0.5, 0.25, 0.75)),
            _eur_asks((0.5, 0.375, 0.625, 0.5, 0.25, 0.5, 0.5, 0.25, 0.5, 0.5)),
        ),
        # A second normal ZZTEST book, shifted.
        (
            "zz_normal_2",
            "ZZTEST",
            _zz_bids(_ZZ_ASK_SIZES, best=100.11),
            _zz_asks(_ZZ_BID_SIZES, best=100.14),
        ),
        # Depth equal to Q = 5 exactly: asks 10 x 0.5 (the buy walk uses all 10 levels),
        # bids 1.0 + 1.5 + 2.5 over 3 levels.
        ("eur_depth_equals_q", "EURUSD", _eur_bids((1.0, 1.5, 2.5)), _eur_asks((0.5,) * 10)),
        # An empty ask side on EURUSD.
        ("eur_empty_ask", "EURUSD", eur_bids, []),
    ]


def _edge_case_rows() -> list[tuple[str, dict[str, object]]]:
    base = pd.Timestamp("2024-03-01 09:30:00", tz="UTC")
    step = pd.Timedelta(milliseconds=250, microseconds=137)
    rows: list[tuple[str, dict[str, object]]] = []
    tick = 0
    for label, symbol, bids, asks in _edge_case_books():
        if len(bids) > N_LEVELS or len(asks) > N_LEVELS:
            raise ValueError(f"{label}: more than {N_LEVELS} levels")
        if label != "zz_normal":  # zz_normal shares eur_normal's timestamp
            tick += 1
        row: dict[str, object] = {"symbol": symbol, "ts": base + tick * step}
        for side, levels in (("bid", bids), ("ask", asks)):
            padded = list(levels) + [(NAN, NAN)] * (N_LEVELS - len(levels))
            for i, (price, size) in enumerate(padded, start=1):
                row[f"{side}_price_{i}"] = float(price)
                row[f"{side}_size_{i}"] = float(size)
        rows.append((label, row))
    return rows


def edge_case_labels() -> list[str]:
    """The label of each row of :func:`edge_case_snapshots`, in the same order."""
    return [label for label, _ in _edge_case_rows()]


def edge_case_snapshots() -> pd.DataFrame:
    """A small hand-built snapshot table covering the edge cases of sections A and T.

    Two symbols interleaved in time: `EURUSD` (prices near 1.1, tick 0.00001,
    configured impact size 5.0) and `ZZTEST` (prices near 100, tick 0.01,
    deliberately absent from the symbol configuration, so it gets the default
    impact size). `ts` is timezone-aware UTC; (symbol, ts) is unique. Columns
    are exactly `symbol`, `ts` and the 40 level columns; row labels are given
    by :func:`edge_case_labels`.
    """
    frame = pd.DataFrame([row for _, row in _edge_case_rows()])
    frame = frame[list(INPUT_COLUMNS)]
    level_cols = list(INPUT_COLUMNS[2:])
    frame[level_cols] = frame[level_cols].astype("float64")
    return frame
