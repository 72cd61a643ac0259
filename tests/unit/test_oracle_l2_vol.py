"""Unit tests for the volatility, regime, stability and targets oracles; no database.

The inputs are small hand-made books. The expected numbers are written out as
arithmetic straight from FEATURE_DEFINITIONS.md (C1-C4, D1-D3, A6, A10, S, T)
and docs/engine_definitions.md, with `math`/`statistics`, not with the
oracles' own helpers.
"""

from __future__ import annotations

import itertools
import math
import statistics
import time
from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd
import pytest

from tests.oracle.regime import regime
from tests.oracle.stability import stability
from tests.oracle.targets import targets
from tests.oracle.volatility import volatility

NAN = math.nan
BASE = pd.Timestamp("2024-03-01 09:30:00", tz="UTC")
LEVEL_COLUMNS = [
    f"{side}_{kind}_{i}"
    for side in ("bid", "ask")
    for kind in ("price", "size")
    for i in range(1, 11)
]
INPUT_ORDER = [
    "symbol",
    "ts",
    *(f"bid_price_{i}" for i in range(1, 11)),
    *(f"bid_size_{i}" for i in range(1, 11)),
    *(f"ask_price_{i}" for i in range(1, 11)),
    *(f"ask_size_{i}" for i in range(1, 11)),
]

_Level = tuple[float, float]  # (price, size), NaN for NULL


def snap(
    symbol: str,
    seconds: float,
    bid: float,
    ask: float,
    bids: Sequence[_Level] | None = None,
    asks: Sequence[_Level] | None = None,
) -> dict[str, object]:
    """One snapshot at BASE + `seconds` (microsecond resolution).

    By default level 1 is (bid, 1.0)/(ask, 1.0) and the deeper levels step by
    0.01 with size 1.0; `bids`/`asks` give all levels explicitly (missing ones NULL).
    """
    if bids is None:
        bids = [(bid - 0.01 * i, 1.0) for i in range(10)]
    if asks is None:
        asks = [(ask + 0.01 * i, 1.0) for i in range(10)]
    row: dict[str, object] = {
        "symbol": symbol,
        "ts": BASE + pd.Timedelta(microseconds=round(seconds * 1e6)),
    }
    for side, levels in (("bid", bids), ("ask", asks)):
        padded = list(levels) + [(NAN, NAN)] * (10 - len(levels))
        for i, (price, size) in enumerate(padded, start=1):
            row[f"{side}_price_{i}"] = float(price)
            row[f"{side}_size_{i}"] = float(size)
    return row


def frame(rows: Sequence[dict[str, object]]) -> pd.DataFrame:
    out = pd.DataFrame(list(rows))[INPUT_ORDER]
    out["ts"] = out["ts"].astype("datetime64[us, UTC]")
    out[LEVEL_COLUMNS] = out[LEVEL_COLUMNS].astype("float64")
    return out


def mid_series(mids: Sequence[float], symbol: str = "ZZ", step: float = 1.0) -> pd.DataFrame:
    """One row per mid, `step` seconds apart; bid = m - 0.5, ask = m + 0.5 (exact for these m)."""
    return frame([snap(symbol, i * step, m - 0.5, m + 0.5) for i, m in enumerate(mids)])


def timed_series(points: Sequence[tuple[float, float]], symbol: str = "ZZ") -> pd.DataFrame:
    """Rows at (seconds, mid)."""
    return frame([snap(symbol, t, m - 0.5, m + 0.5) for t, m in points])


def close(value: float, rel: float = 1e-9, abs_: float = 0.0) -> object:
    return pytest.approx(value, rel=rel, abs=abs_)


def is_null(value: float) -> bool:
    return isinstance(value, float) and math.isnan(value)


def log_returns(mids: Sequence[float]) -> list[float]:
    """r_i = ln(m_i / m_{i-1}) for i >= 1 (the list is aligned so r[i-1] is row i's)."""
    return [math.log(b / a) for a, b in itertools.pairwise(mids)]


# ---------------------------------------------------------------------------
# Output shape, order, dtypes, no inf (all families)

VOLATILITY_COLUMNS = [
    "symbol", "ts", "mid_price_return", "squared_returns", "l2_volatility_10",
    "l2_volatility_50", "l2_volatility_200", "l2_volatility_1min", "l2_volatility_5min",
    "realized_volatility", "volatility_10", "volatility_30", "volatility_100", "volatility_200",
    "volatility_500", "upside_vol_10", "upside_vol_30", "upside_vol_100", "upside_vol_200",
    "upside_vol_500", "downside_vol_10", "downside_vol_30", "downside_vol_100",
    "downside_vol_200", "downside_vol_500", "vol_skew_10", "vol_skew_30", "vol_skew_100",
    "vol_skew_200", "vol_skew_500", "vol_of_vol",
]  # fmt: skip
REGIME_COLUMNS = [
    "symbol", "ts", "efficiency_ratio_50", "efficiency_ratio_100", "efficiency_ratio_200",
    "trend_strength_30", "trend_strength_100", "trend_consistency_30", "trend_consistency_100",
    "range_pct_50", "range_pct_100", "range_position_50", "range_position_100",
]  # fmt: skip
STABILITY_COLUMNS = [
    "symbol", "ts", "bid_change", "ask_change", "bid_life", "ask_life", "quote_life",
    "bid_quote_lifetime", "ask_quote_lifetime", "quote_lifetime", "spread_stability_10",
    "spread_stability_20", "spread_stability_50", "spread_stability_100",
    "spread_stability_norm_10", "spread_stability_norm_20", "spread_stability_norm_50",
    "spread_stability_norm_100", "book_shape_1_5", "book_shape_stability",
    "bid_volume_concentration", "ask_volume_concentration", "volume_concentration",
    "bid_concentration", "ask_concentration", "depth_ratio", "depth_ratio_stability",
    "imbalance_stability_3", "imbalance_stability_5", "imbalance_stability_10",
    "book_resilience",
]  # fmt: skip
TARGETS_COLUMNS = [
    "symbol", "ts", "target_return_1min", "target_return_5min", "target_volatility",
    "target_direction",
]  # fmt: skip

FAMILIES: list[tuple[Callable[[pd.DataFrame], pd.DataFrame], list[str]]] = [
    (volatility, VOLATILITY_COLUMNS),
    (regime, REGIME_COLUMNS),
    (stability, STABILITY_COLUMNS),
    (targets, TARGETS_COLUMNS),
]
FAMILY_IDS = ["volatility", "regime", "stability", "targets"]


def awkward_snapshots() -> pd.DataFrame:
    """Two interleaved symbols over ~12 minutes with NULL prices and sizes, empty sides,
    zero and negative mids, crossed and locked books, zero sizes: every zero denominator."""
    rng = np.random.default_rng(11)
    rows = []
    for i in range(700):
        for symbol, base in (("AA", 100.0), ("BB", 1.1)):
            t = i * 1.0 + (0.3 if symbol == "BB" else 0.0)
            mid = base + 0.01 * int(rng.integers(-3, 4))
            bid, ask = mid - 0.01, mid + 0.01
            bids = [(bid - 0.01 * k, float(rng.integers(0, 4))) for k in range(10)]
            asks = [(ask + 0.01 * k, float(rng.integers(0, 4))) for k in range(10)]
            kind = i % 23
            if kind == 1:
                bids[0] = (NAN, 1.0)
            elif kind == 2:
                asks = []
            elif kind == 3:
                bids, asks = [], []
            elif kind == 4:
                bids = [(-0.01, 1.0)]
                asks = [(0.01, 1.0)]  # mid 0
            elif kind == 5:
                bids = [(-2.0, 1.0)]
                asks = [(-1.0, 1.0)]  # negative mid
            elif kind == 6:
                bids[0], asks[0] = (ask, 1.0), (bid, 1.0)  # crossed
            elif kind == 7:
                asks[0] = (bid, 1.0)  # locked: spread 0
            elif kind == 8:
                bids[0], asks[0] = (bid, 0.0), (ask, 0.0)
            elif kind == 9:
                asks[1] = (asks[1][0], NAN)
            bid1 = bids[0][0] if bids else NAN
            ask1 = asks[0][0] if asks else NAN
            rows.append(snap(symbol, t, bid1, ask1, bids, asks))
    return frame(rows)


@pytest.fixture(scope="module")
def awkward() -> pd.DataFrame:
    return awkward_snapshots()


@pytest.mark.parametrize(("family", "columns"), FAMILIES, ids=FAMILY_IDS)
def test_columns_order_dtypes_and_no_inf(
    family: Callable[[pd.DataFrame], pd.DataFrame], columns: list[str], awkward: pd.DataFrame
) -> None:
    shuffled = awkward.sample(frac=1.0, random_state=3)
    shuffled.index = shuffled.index * 7 + 5
    out = family(shuffled)
    assert list(out.columns) == columns
    assert len(out) == len(awkward)
    assert list(out.index) == list(range(len(awkward)))
    ordered = awkward.sort_values(["symbol", "ts"]).reset_index(drop=True)
    assert list(out["symbol"]) == list(ordered["symbol"])
    assert list(out["ts"]) == list(ordered["ts"])
    for column in columns[2:]:
        assert out[column].dtype == np.float64, column
    values = out[columns[2:]].to_numpy()
    assert not np.isinf(values).any()
    # Same result whatever the input order.
    pd.testing.assert_frame_equal(out, family(awkward))


@pytest.mark.parametrize(("family", "columns"), FAMILIES, ids=FAMILY_IDS)
def test_empty_input(family: Callable[[pd.DataFrame], pd.DataFrame], columns: list[str]) -> None:
    out = family(mid_series([100.0]).iloc[0:0])
    assert list(out.columns) == columns
    assert len(out) == 0


def test_symbols_do_not_mix() -> None:
    a = [snap("AA", i, 99.5 + i, 100.5 + i) for i in range(12)]
    b = [snap("BB", i + 0.5, 9.5 - 0.25 * i, 10.5 - 0.25 * i) for i in range(12)]
    out = volatility(frame(a + b))
    assert list(out["symbol"]) == ["AA"] * 12 + ["BB"] * 12
    assert is_null(out.at[0, "mid_price_return"])
    assert is_null(out.at[12, "mid_price_return"])  # BB's first row: no previous BB row
    assert out.at[13, "mid_price_return"] == close(math.log(9.75 / 10.0))
    assert is_null(out.at[21, "volatility_10"])
    assert out.at[22, "volatility_10"] == close(
        math.sqrt(sum(r * r for r in log_returns([10.0 - 0.25 * i for i in range(11)])))
    )


# ---------------------------------------------------------------------------
# volatility


def test_returns_and_null_mids() -> None:
    rows = [
        snap("ZZ", 0, 99.5, 100.5),  # m = 100
        snap("ZZ", 1, 100.5, 101.5),  # m = 101
        snap("ZZ", 2, 98.5, 99.5),  # m = 99
        snap("ZZ", 3, NAN, 99.5),  # m NULL (T5)
        snap("ZZ", 4, 98.5, 99.5),  # m = 99, previous mid NULL (T3: no reaching back)
        snap("ZZ", 5, 98.5, 99.5),  # m = 99
    ]
    out = volatility(frame(rows))
    r = out["mid_price_return"].tolist()
    assert is_null(r[0])
    assert r[1] == close(math.log(101 / 100))
    assert r[2] == close(math.log(99 / 101))
    assert is_null(r[3]) and is_null(r[4])
    assert r[5] == 0.0
    sq = out["squared_returns"].tolist()
    assert sq[1] == close(math.log(101 / 100) ** 2)
    assert is_null(sq[3])


# Eleven mids, ten returns: 0, ln(102/100), 0, ln(101/102), 0, 0, ln(103/101), 0, 0, 0.
SEMI_MIDS = [100.0, 100.0, 102.0, 102.0, 101.0, 101.0, 101.0, 103.0, 103.0, 103.0, 103.0]


def test_semivariance_and_skew_on_a_ten_return_window() -> None:
    out = volatility(mid_series(SEMI_MIDS))
    a, b, c = math.log(102 / 100), math.log(101 / 102), math.log(103 / 101)
    rv = a * a + b * b + c * c
    last = out.iloc[10]
    assert last["volatility_10"] == close(math.sqrt(rv))  # C1
    assert last["upside_vol_10"] == close(math.sqrt(a * a + c * c))  # C2
    assert last["downside_vol_10"] == close(abs(b))
    assert last["vol_skew_10"] == close(math.sqrt(10) * (a**3 + b**3 + c**3) / rv**1.5)  # C3
    returns = [0.0, a, 0.0, b, 0.0, 0.0, c, 0.0, 0.0, 0.0]
    assert last["l2_volatility_10"] == close(statistics.stdev(returns))
    # T1: nine returns are not enough.
    for column in ("volatility_10", "upside_vol_10", "vol_skew_10", "l2_volatility_10"):
        assert is_null(out.at[9, column])
    assert is_null(last["volatility_30"])


def test_flat_window_and_one_sided_window() -> None:
    flat = volatility(mid_series([100.0] * 11)).iloc[10]
    assert flat["volatility_10"] == 0.0
    assert flat["upside_vol_10"] == 0.0  # T15: 0, not NULL
    assert flat["downside_vol_10"] == 0.0
    assert is_null(flat["vol_skew_10"])  # T15: RV = 0
    assert flat["l2_volatility_10"] == 0.0

    ups = volatility(mid_series([100.0 + i for i in range(11)])).iloc[10]
    returns = log_returns([100.0 + i for i in range(11)])
    assert ups["downside_vol_10"] == 0.0
    assert ups["upside_vol_10"] == close(math.sqrt(sum(r * r for r in returns)))
    assert ups["vol_skew_10"] == close(
        math.sqrt(10) * sum(r**3 for r in returns) / sum(r * r for r in returns) ** 1.5
    )


def test_null_mid_nulls_every_row_window_containing_it() -> None:
    mids = [100.0 + (i % 3) for i in range(25)]
    rows = [snap("ZZ", i, m - 0.5, m + 0.5) for i, m in enumerate(mids)]
    rows[12] = snap("ZZ", 12, NAN, mids[12] + 0.5)
    out = volatility(frame(rows))
    v = out["volatility_10"]
    assert v[11] == close(math.sqrt(sum(r * r for r in log_returns(mids[1:12]))))
    for t in range(12, 23):  # windows t-9..t contain r_12 or r_13
        assert is_null(v[t]), t
    assert v[23] == close(math.sqrt(sum(r * r for r in log_returns(mids[13:24]))))


def test_time_windows_exclude_the_left_edge_and_skip_nulls() -> None:
    points = [(0, 100.0), (10, 101.0), (20, 100.0), (80, 102.0), (81, 101.0)]
    out = volatility(timed_series(points))
    r1, r2, r3, r4 = log_returns([m for _, m in points])
    vol1 = out["l2_volatility_1min"].tolist()
    vol5 = out["l2_volatility_5min"].tolist()
    rv = out["realized_volatility"].tolist()
    # Row 0: no return at all -> NULL for both (T2).
    assert is_null(vol1[0]) and is_null(rv[0])
    # Row 10 s: one return -> std NULL, root of sum of squares defined.
    assert is_null(vol1[1])
    assert rv[1] == close(abs(r1))
    assert vol1[2] == close(statistics.stdev([r1, r2]))
    # Row 80 s: (20 s, 80 s] excludes the row at exactly 20 s -> one return -> NULL.
    assert is_null(vol1[3])
    assert vol5[3] == close(statistics.stdev([r1, r2, r3]))
    assert rv[3] == close(math.sqrt(r1 * r1 + r2 * r2 + r3 * r3))
    assert vol1[4] == close(statistics.stdev([r3, r4]))


def test_vol_of_vol_needs_59_returns() -> None:
    mids = [100.0 + ((7 * i) % 11) - ((3 * i) % 5) for i in range(61)]
    out = volatility(mid_series(mids))
    r = log_returns(mids)  # r[i - 1] is row i's return

    def vol30(t: int) -> float:
        return math.sqrt(sum(x * x for x in r[t - 30 : t]))

    assert is_null(out.at[29, "volatility_30"])
    assert out.at[30, "volatility_30"] == close(vol30(30))
    assert is_null(out.at[58, "vol_of_vol"])
    assert out.at[59, "vol_of_vol"] == close(statistics.stdev([vol30(t) for t in range(30, 60)]))
    assert out.at[60, "vol_of_vol"] == close(statistics.stdev([vol30(t) for t in range(31, 61)]))
    assert is_null(out.at[49, "l2_volatility_50"])
    assert out.at[50, "l2_volatility_50"] == close(statistics.stdev(r[0:50]))
    assert out.at[60, "l2_volatility_50"] == close(statistics.stdev(r[10:60]))


# ---------------------------------------------------------------------------
# regime


def updown_mids() -> list[float]:
    """51 mids: 30 steps up by 1, 10 down by 1, 10 flat (100 -> 130 -> 120 -> 120)."""
    steps = [1.0] * 30 + [-1.0] * 10 + [0.0] * 10
    mids = [100.0]
    for s in steps:
        mids.append(mids[-1] + s)
    return mids


def test_efficiency_ratio_and_trend_consistency() -> None:
    mids = updown_mids()
    out = regime(mid_series(mids))
    assert is_null(out.at[49, "efficiency_ratio_50"])
    assert out.at[50, "efficiency_ratio_50"] == close(abs(120 - 100) / (30 + 10))  # D1
    # Row 40: returns of rows 11..40 are 20 up and 10 down; net m_40 - m_10 = +10.
    assert out.at[40, "trend_consistency_30"] == close(20 / 30)
    # Row 50: 10 up, 10 down, 10 zero; net m_50 - m_20 = 120 - 120 = 0 -> 0 (engine def.).
    assert out.at[50, "trend_consistency_30"] == 0.0
    # Row 35: rows 6..35 are 25 up and 5 down, net +20 -> 25/30.
    assert out.at[35, "trend_consistency_30"] == close(25 / 30)
    assert is_null(out.at[29, "trend_consistency_30"])
    assert out["trend_consistency_100"].isna().all()

    flat = regime(mid_series([100.0] * 51)).iloc[50]
    assert flat["efficiency_ratio_50"] == 0.0  # T15
    assert flat["trend_consistency_30"] == 0.0
    assert flat["trend_strength_30"] == 0.0
    assert flat["range_position_50"] == 0.5  # D3 / T15: max = min
    assert flat["range_pct_50"] == 0.0


def test_trend_strength_is_r_squared_of_ln_mid_on_time() -> None:
    mids = [100.0 + ((5 * i) % 7) + 0.5 * i for i in range(31)]
    out = regime(mid_series(mids))
    y = [math.log(m) for m in mids[1:31]]  # rows 1..30
    x = list(range(30))
    xm, ym = sum(x) / 30, sum(y) / 30
    sxy = sum((a - xm) * (b - ym) for a, b in zip(x, y, strict=True))
    sxx = sum((a - xm) ** 2 for a in x)
    syy = sum((b - ym) ** 2 for b in y)
    assert out.at[30, "trend_strength_30"] == close(sxy * sxy / (sxx * syy), rel=1e-8)
    assert is_null(out.at[28, "trend_strength_30"])
    assert not is_null(out.at[29, "trend_strength_30"])

    geometric = [100.0 * 1.01**i for i in range(30)]
    rows = [snap("ZZ", i, m - 0.5, m + 0.5) for i, m in enumerate(geometric)]
    assert regime(frame(rows)).at[29, "trend_strength_30"] == close(1.0, rel=1e-9)


def test_range_pct_and_position() -> None:
    mids = [100.0 + ((13 * i) % 50) for i in range(50)]  # a permutation of 100..149
    mids[-1] = 110.0
    out = regime(mid_series(mids)).iloc[49]
    lo, hi = min(mids), max(mids)
    assert out["range_pct_50"] == close((hi - lo) / (sum(mids) / 50))
    assert out["range_position_50"] == close((110.0 - lo) / (hi - lo))
    assert is_null(out["range_pct_100"])

    rows = [snap("ZZ", i, m - 0.5, m + 0.5) for i, m in enumerate([*mids, 120.0])]
    rows[10] = snap("ZZ", 10, 99.0, NAN)
    again = regime(frame(rows))
    assert is_null(again.at[49, "range_position_50"])  # T1: a NULL mid in the window
    assert is_null(again.at[50, "range_pct_50"])


# ---------------------------------------------------------------------------
# stability


def test_quote_lives_across_changes_and_null_prices() -> None:
    bids = [1.0, 1.0, 1.5, 1.5, NAN, NAN, 1.5, 1.5]
    asks = [2.0, 2.5, 2.5, 2.5, 2.5, 2.5, 2.5, 3.0]
    times = [0.0, 0.5, 1.25, 2.0, 3.0, 3.5, 4.0, 4.750001]
    out = stability(frame([snap("ZZ", t, b, a) for t, b, a in zip(times, bids, asks, strict=True)]))

    def col(name: str) -> list[float]:
        return [(-1.0 if math.isnan(v) else v) for v in out[name]]

    # T9: NULL vs value differs, NULL vs NULL does not; NULL on the first row.
    assert col("bid_change") == [-1.0, 0, 1, 0, 1, 0, 1, 0]
    assert col("ask_change") == [-1.0, 1, 0, 0, 0, 0, 0, 1]
    # T10: the first snapshot starts the first quote (life 0).
    assert col("bid_life") == [0, 1, 0, 1, 0, 1, 0, 1]
    assert col("ask_life") == [0, 0, 1, 2, 3, 4, 5, 0]
    assert col("quote_life") == [0, 0, 0, 1, 0, 1, 0, 0]
    expected_bid_seconds = [0, 0.5, 0, 0.75, 0, 0.5, 0, 0.750001]
    expected_ask_seconds = [0, 0, 0.75, 1.5, 2.5, 3.0, 3.5, 0]
    expected_quote_seconds = [0, 0, 0, 0.75, 0, 0.5, 0, 0]
    for name, want in (
        ("bid_quote_lifetime", expected_bid_seconds),
        ("ask_quote_lifetime", expected_ask_seconds),
        ("quote_lifetime", expected_quote_seconds),
    ):
        assert out[name].tolist() == pytest.approx(want, rel=1e-9, abs=1e-12), name


def test_spread_stability() -> None:
    spreads = [0.25, 0.5, 0.25, 0.75, 0.25, 0.5, 0.25, 0.25, 1.0, 0.5]
    out = stability(frame([snap("ZZ", i, 100.0, 100.0 + s) for i, s in enumerate(spreads)]))
    assert is_null(out.at[8, "spread_stability_10"])
    std = statistics.stdev(spreads)
    assert out.at[9, "spread_stability_10"] == close(std)
    assert out.at[9, "spread_stability_norm_10"] == close(std / statistics.mean(spreads))
    assert is_null(out.at[9, "spread_stability_20"])

    flat = stability(frame([snap("ZZ", i, 100.0, 100.25) for i in range(10)])).iloc[9]
    assert flat["spread_stability_10"] == 0.0
    assert flat["spread_stability_norm_10"] == 0.0

    locked = stability(frame([snap("ZZ", i, 100.0, 100.0) for i in range(10)])).iloc[9]
    assert locked["spread_stability_10"] == 0.0
    assert is_null(locked["spread_stability_norm_10"])  # mean spread 0


def test_concentration_depth_ratio_and_book_shape() -> None:
    bids = [(100.0, 2.0), (99.99, 1.0), (99.98, 1.0), (99.97, 0.0), (99.96, NAN), (NAN, 3.0)]
    asks = [(100.02, 1.0), (100.03, 3.0)]
    rows = [
        snap("ZZ", 0, 100.0, 100.02, bids, asks),
        snap("ZZ", 1, 100.0, NAN, bids, []),  # empty ask side
        snap("ZZ", 2, NAN, 100.02, [(NAN, 5.0), *bids[1:]], asks),  # size, no price at L1
        snap("ZZ", 3, NAN, NAN, [], []),  # empty book
    ]
    out = stability(frame(rows))
    r0 = out.iloc[0]
    # A10 with T4: bid sizes 2, 1, 1, 0 and missing levels -> S = 4.
    assert r0["bid_volume_concentration"] == close(0.5**2 + 0.25**2 + 0.25**2)
    assert r0["ask_volume_concentration"] == close(0.25**2 + 0.75**2)
    assert r0["volume_concentration"] == close((2**2 + 1 + 1 + 1 + 3**2) / 8**2)
    assert r0["bid_concentration"] == close(0.5)
    assert r0["ask_concentration"] == close(0.25)
    assert r0["depth_ratio"] == close(4.0 / 4.0)
    assert r0["book_shape_1_5"] == close((4.0 + 4.0) / (2.0 + 1.0))

    r1 = out.iloc[1]
    assert is_null(r1["ask_volume_concentration"]) and is_null(r1["ask_concentration"])
    assert r1["volume_concentration"] == close(0.375)  # only the bid sizes
    assert is_null(r1["depth_ratio"])  # D^a_5 = 0
    assert is_null(r1["book_shape_1_5"])  # A_1 is NULL

    r2 = out.iloc[2]
    # Level 1 has a size but no price: missing (T4), so S = 2 and w_1 = 0 ...
    assert r2["bid_volume_concentration"] == close(0.5**2 + 0.5**2)
    assert r2["bid_concentration"] == 0.0
    assert r2["depth_ratio"] == close(2.0 / 4.0)
    # ... while the book_shape denominator takes B_1 as it is.
    assert r2["book_shape_1_5"] == close((2.0 + 4.0) / (5.0 + 1.0))

    r3 = out.iloc[3]
    for name in (
        "bid_volume_concentration",
        "ask_volume_concentration",
        "volume_concentration",
        "bid_concentration",
        "ask_concentration",
        "depth_ratio",
        "book_shape_1_5",
    ):
        assert is_null(r3[name]), name


def test_fifty_row_stabilities() -> None:
    book_a = ([(100.0, 3.0), (99.99, 1.0), (99.98, 2.0)], [(100.02, 1.0), (100.03, 1.0)])
    book_b = ([(100.0, 1.0), (99.99, 1.0), (99.98, 1.0)], [(100.02, 2.0), (100.03, 2.0)])
    books = [book_a if i % 3 else book_b for i in range(50)]
    rows = [snap("ZZ", i, 100.0, 100.02, b, a) for i, (b, a) in enumerate(books)]
    out = stability(frame(rows))
    assert out["imbalance_stability_3"].iloc[:49].isna().all()

    def obi(bid_depth: float, ask_depth: float) -> float:
        return (bid_depth - ask_depth) / (bid_depth + ask_depth)

    obi_a, obi_b = obi(6.0, 2.0), obi(3.0, 4.0)
    series = [obi_a if i % 3 else obi_b for i in range(50)]
    last = out.iloc[49]
    assert last["imbalance_stability_3"] == close(statistics.stdev(series))
    assert last["imbalance_stability_5"] == close(statistics.stdev(series))
    assert last["depth_ratio_stability"] == close(
        statistics.stdev([6.0 / 2.0 if i % 3 else 3.0 / 4.0 for i in range(50)])
    )
    assert last["book_shape_stability"] == close(
        statistics.stdev([8.0 / 4.0 if i % 3 else 7.0 / 3.0 for i in range(50)])
    )
    same = stability(frame([snap("ZZ", i, 100.0, 100.02, *book_a) for i in range(50)])).iloc[49]
    assert same["imbalance_stability_10"] == 0.0


def resilience_frame(n_rows: int, spread_of: Callable[[int], float]) -> pd.DataFrame:
    """Rows every 0.5 s with bid 100 and spread spread_of(i) (dyadic, exact)."""
    return frame([snap("ZZ", 0.5 * i, 100.0, 100.0 + spread_of(i)) for i in range(n_rows)])


def test_book_resilience_on_a_constructed_spread_path() -> None:
    # Spread 0.25 everywhere except rows 101-102 and 400-402, where it is 1.0.
    # Row 100 is the first with a 100-row baseline (mu = 0.25, sd = 0): calm.
    # Recovery 1: calm p = 100, wide 101 (s > mu + 2 sd = 0.25), next calm c = 103
    #   (baseline mean 0.265 >= 0.25): ts_103 - ts_101 = 1.0 s.
    # Recovery 2: calm p = 399, wide 400, 401, 402 (s = 1.0, never <= mu), calm c = 403:
    #   ts_403 - ts_400 = 1.5 s.
    wide = {101, 102, 400, 401, 402}
    out = stability(resilience_frame(1400, lambda i: 1.0 if i in wide else 0.25))
    res = out["book_resilience"]
    assert res.iloc[:103].isna().all()
    assert res[103] == close(1.0)
    assert res[402] == close(1.0)
    assert res[403] == close((1.0 + 1.5) / 2)
    # Recovery 1 (p = 100) is counted while p >= t - 999, i.e. up to row 1099.
    assert res[1099] == close(1.25)
    assert res[1100] == close(1.5)
    assert res[1398] == close(1.5)
    assert is_null(res[1399])  # p = 399 < 1399 - 999


def test_book_resilience_needs_a_full_baseline_without_nulls() -> None:
    rows = [snap("ZZ", 0.5 * i, 100.0, 100.25) for i in range(220)]
    rows[50] = snap("ZZ", 25.0, 100.0, NAN)  # NULL spread: rows 51..150 have no baseline
    for i in (140, 160):
        rows[i] = snap("ZZ", 0.5 * i, 100.0, 101.0)
    out = stability(frame(rows))["book_resilience"]
    # Row 140 is neither wide nor calm, so no recovery ends at 141; row 160 is wide after
    # calm 151..159 and recovers at 161.
    assert out.iloc[:161].isna().all()
    assert out[161] == close(0.5)


# ---------------------------------------------------------------------------
# targets


def test_target_at_exactly_ts_plus_w() -> None:
    points = [(0, 100.0), (30, 101.0), (60, 102.0), (61, 103.0)]
    out = targets(timed_series(points))
    ret = out["target_return_1min"].tolist()
    assert ret[0] == close(math.log(102 / 100))  # the row at exactly ts + 60 s
    assert is_null(ret[1])  # nothing after 90 s yet
    assert is_null(ret[2]) and is_null(ret[3])  # end of the series
    assert out["target_return_5min"].isna().all()


def test_target_may_be_the_current_row() -> None:
    out = targets(timed_series([(0, 100.0), (100, 105.0)]))
    assert out.at[0, "target_return_1min"] == 0.0
    assert is_null(out.at[1, "target_return_1min"])
    assert is_null(out.at[0, "target_return_5min"])


def test_target_volatility_uses_rows_in_the_next_five_minutes() -> None:
    points = [(0, 100.0), (100, 101.0), (200, 99.0), (300, 100.0), (301, 102.0)]
    out = targets(timed_series(points))
    r1, r2, r3, r4 = log_returns([m for _, m in points])
    vol = out["target_volatility"].tolist()
    assert vol[0] == close(statistics.stdev([r1, r2, r3]))  # (0, 300]: 300 included
    assert vol[1] == close(statistics.stdev([r2, r3, r4]))
    assert vol[2] == close(statistics.stdev([r3, r4]))
    assert is_null(vol[3]) and is_null(vol[4])  # fewer than 2 returns
    assert out.at[0, "target_return_5min"] == close(math.log(100 / 100))

    # A NULL mid: rows 2 and 3 have no return; row 0 then sees r1 and r4 only.
    rows = [
        snap("ZZ", 0, 99.5, 100.5),
        snap("ZZ", 1, 100.5, 101.5),
        snap("ZZ", 2, NAN, NAN),  # m NULL: no return here nor on the next row (T3)
        snap("ZZ", 3, 98.5, 99.5),
        snap("ZZ", 4, 97.5, 98.5),
    ]
    again = targets(frame(rows))
    assert again.at[0, "target_volatility"] == close(
        statistics.stdev([math.log(101 / 100), math.log(98 / 99)])
    )
    assert is_null(again.at[1, "target_volatility"])  # only r4


def test_target_direction_dead_zone() -> None:
    rows = []
    for symbol, future in (("UP", 100.02), ("DN", 99.98), ("IN", 100.005)):
        rows += [
            snap(symbol, 0, 99.99, 100.01),  # m = 100, s = 0.02: dead zone 1e-4
            snap(symbol, 60, future - 0.01, future + 0.01),
            snap(symbol, 61, future - 0.01, future + 0.01),
        ]
    out = targets(frame(rows)).set_index("symbol")
    first = out.groupby(level=0).head(1)
    assert first.loc["UP", "target_direction"] == 1.0  # ln(1.0002) > 1e-4
    assert first.loc["DN", "target_direction"] == -1.0
    assert first.loc["IN", "target_direction"] == 0.0  # |ln(1.00005)| < 1e-4
    assert out["target_direction"].isna().sum() == 6  # the last two rows of each symbol


# ---------------------------------------------------------------------------
# Speed on a 200k-row synthetic frame (asserts only that each family completes)


def synthetic_snapshots(n_rows: int, n_symbols: int = 4, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    per = n_rows // n_symbols
    parts = []
    for k in range(n_symbols):
        tick = 0.01
        ticks = 10_000 + rng.choice([-1, 0, 0, 0, 1], size=per).cumsum()
        bid = ticks * tick
        ask = bid + rng.choice([1, 1, 2, 3], size=per) * tick
        gaps = rng.integers(70_000, 130_000, size=per)
        ts = BASE + pd.to_timedelta(np.cumsum(gaps), unit="us")
        data: dict[str, object] = {"symbol": f"S{k}", "ts": ts}
        for i in range(1, 11):
            data[f"bid_price_{i}"] = bid - (i - 1) * tick
            data[f"bid_size_{i}"] = rng.integers(0, 20, size=per) * 0.5
            data[f"ask_price_{i}"] = ask + (i - 1) * tick
            data[f"ask_size_{i}"] = rng.integers(0, 20, size=per) * 0.5
        part = pd.DataFrame(data)
        holes = rng.random(per) < 0.001
        part.loc[holes, "bid_price_1"] = np.nan
        parts.append(part)
    out = pd.concat(parts, ignore_index=True)[INPUT_ORDER]
    out["ts"] = out["ts"].astype("datetime64[us, UTC]")
    return out.sample(frac=1.0, random_state=seed).reset_index(drop=True)


@pytest.mark.slow
def test_each_family_completes_on_200k_rows() -> None:
    snaps = synthetic_snapshots(200_000)
    timings = {}
    for family, columns in FAMILIES:
        start = time.perf_counter()
        out = family(snaps)
        timings[family.__name__] = time.perf_counter() - start
        assert list(out.columns) == columns
        assert len(out) == len(snaps)
    print("200k-row timings (s):", {k: round(v, 2) for k, v in timings.items()})
