"""Unit tests for the microstructure oracle (tests/oracle/microstructure.py); no database.

The expected numbers are written out as arithmetic straight from
FEATURE_DEFINITIONS.md (A1-A8, S `microstructure`, T4-T6, T17), not computed
with the oracle's own helpers.
"""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.oracle.microstructure import (
    edge_case_labels,
    edge_case_snapshots,
    microstructure,
    walk_book,
)

EURUSD_Q = 5.0
IMPACT_SIZES = {"EURUSD": EURUSD_Q}
SEEDS_CSV = Path(__file__).resolve().parents[2] / "seeds" / "symbols.csv"

EXPECTED_COLUMNS = [
    "symbol",
    "ts",
    "mid_price",
    "bid_ask_spread",
    "bid_ask_spread_pct",
    "spread_bps",
    "microprice",
    "weighted_mid_price",
    "order_book_imbalance",
    "order_book_imbalance_2",
    "order_book_imbalance_3",
    "order_book_imbalance_5",
    "order_book_imbalance_10",
    "total_bid_volume_1",
    "total_bid_volume_2",
    "total_bid_volume_3",
    "total_bid_volume_4",
    "total_bid_volume_5",
    "total_bid_volume_6",
    "total_bid_volume_7",
    "total_bid_volume_8",
    "total_bid_volume_9",
    "total_bid_volume_10",
    "total_ask_volume_1",
    "total_ask_volume_2",
    "total_ask_volume_3",
    "total_ask_volume_4",
    "total_ask_volume_5",
    "total_ask_volume_6",
    "total_ask_volume_7",
    "total_ask_volume_8",
    "total_ask_volume_9",
    "total_ask_volume_10",
    "price_impact_buy",
    "price_impact_sell",
    "impact_fill_ratio_buy",
    "impact_fill_ratio_sell",
    "price_impact_ask",
    "price_impact_bid",
    "price_impact_1",
    "price_impact_5",
    "price_impact_10",
    "is_crossed",
]

FLOAT_COLUMNS = [c for c in EXPECTED_COLUMNS if c not in ("symbol", "ts", "is_crossed")]
OBI_COLUMNS = [c for c in EXPECTED_COLUMNS if c.startswith("order_book_imbalance")]


def approx(value: float) -> object:
    # Relative tolerance only: impacts are ~1e-5 and must not pass on an absolute slack.
    return pytest.approx(value, rel=1e-9, abs=0.0)


@pytest.fixture(scope="module")
def snaps() -> pd.DataFrame:
    return edge_case_snapshots()


@pytest.fixture(scope="module")
def out(snaps: pd.DataFrame) -> pd.DataFrame:
    return microstructure(snaps, IMPACT_SIZES)


def row(out: pd.DataFrame, label: str) -> pd.Series:
    return out.iloc[edge_case_labels().index(label)]


def is_null(value: object) -> bool:
    return value is pd.NA or (isinstance(value, float) and math.isnan(value))


# ---------------------------------------------------------------------------
# Shape of the data and of the output


def test_edge_case_data_shape(snaps: pd.DataFrame) -> None:
    assert 20 <= len(snaps) <= 40
    assert len(edge_case_labels()) == len(snaps)
    assert len(set(edge_case_labels())) == len(snaps)
    level_cols = [
        f"{side}_{kind}_{i}"
        for side in ("bid", "ask")
        for kind in ("price", "size")
        for i in range(1, 11)
    ]
    assert sorted(snaps.columns) == sorted(["symbol", "ts", *level_cols])
    assert all(snaps[c].dtype == np.float64 for c in level_cols)
    assert set(snaps["symbol"]) == {"EURUSD", "ZZTEST"}
    assert str(snaps["ts"].dt.tz) == "UTC"
    assert not snaps.duplicated(["symbol", "ts"]).any()
    assert snaps["ts"].is_monotonic_increasing
    # Interleaved in time: the symbol changes from one row to the next many times.
    switches = (snaps["symbol"] != snaps["symbol"].shift()).sum() - 1
    assert switches >= len(snaps) // 2


def test_zztest_has_no_configured_impact_size() -> None:
    if not SEEDS_CSV.exists():
        pytest.skip("no seeds/symbols.csv")
    with SEEDS_CSV.open(newline="") as fh:
        assert "ZZTEST" not in {r["symbol"] for r in csv.DictReader(fh)}


def test_output_columns_and_rows(snaps: pd.DataFrame, out: pd.DataFrame) -> None:
    assert list(out.columns) == EXPECTED_COLUMNS
    assert len(out) == len(snaps)
    assert list(out["symbol"]) == list(snaps["symbol"])
    assert list(out["ts"]) == list(snaps["ts"])
    assert all(out[c].dtype == np.float64 for c in FLOAT_COLUMNS)
    assert out["is_crossed"].dtype == "boolean"


def test_no_infinity(out: pd.DataFrame) -> None:
    values = out[FLOAT_COLUMNS].to_numpy()
    assert not np.isinf(values).any()


def test_obi_and_fill_ratio_bounds(out: pd.DataFrame) -> None:
    for col in OBI_COLUMNS:
        v = out[col].dropna()
        assert ((v >= -1.0) & (v <= 1.0)).all(), col
    for col in ("impact_fill_ratio_buy", "impact_fill_ratio_sell"):
        assert out[col].notna().all(), col  # T6: never NULL
        assert ((out[col] >= 0.0) & (out[col] <= 1.0)).all(), col
    for side in ("bid", "ask"):
        vols = out[[f"total_{side}_volume_{k}" for k in range(1, 11)]].to_numpy()
        assert not np.isnan(vols).any()  # T4: depth sums are never NULL
        assert (np.diff(vols, axis=1) >= 0).all()  # cumulative


def test_index_and_row_order_do_not_matter(snaps: pd.DataFrame, out: pd.DataFrame) -> None:
    shuffled = snaps.sample(frac=1.0, random_state=7)
    again = microstructure(shuffled.set_index(shuffled.index + 100), IMPACT_SIZES)
    again.index = shuffled.index
    pd.testing.assert_frame_equal(again.sort_index(), out)


# ---------------------------------------------------------------------------
# Hand-computed rows


def test_eurusd_normal_book(out: pd.DataFrame) -> None:
    r = row(out, "eur_normal")
    m = (1.10000 + 1.10002) / 2
    s = 1.10002 - 1.10000
    assert r["mid_price"] == approx(1.10001)
    assert r["bid_ask_spread"] == approx(0.00002)
    assert r["bid_ask_spread_pct"] == approx(100 * s / m)
    assert r["spread_bps"] == approx(1e4 * s / m)
    # microprice: b_1 weighted by A_1, a_1 weighted by B_1.
    assert r["microprice"] == approx((1.10000 * 0.75 + 1.10002 * 1.25) / (1.25 + 0.75))
    # Weighted mid over 5 levels.
    db5 = 1.25 + 2.0 + 1.75 + 3.0 + 2.5
    da5 = 0.75 + 1.5 + 2.5 + 1.0 + 3.0
    vwap_b5 = (
        1.10000 * 1.25 + 1.09999 * 2.0 + 1.09998 * 1.75 + 1.09997 * 3.0 + 1.09996 * 2.5
    ) / db5
    vwap_a5 = (1.10002 * 0.75 + 1.10003 * 1.5 + 1.10004 * 2.5 + 1.10005 * 1.0 + 1.10006 * 3.0) / da5
    assert r["weighted_mid_price"] == approx((vwap_b5 * da5 + vwap_a5 * db5) / (db5 + da5))
    # OBI_k.
    assert r["order_book_imbalance"] == approx((1.25 - 0.75) / (1.25 + 0.75))
    assert r["order_book_imbalance_2"] == approx((3.25 - 2.25) / (3.25 + 2.25))
    assert r["order_book_imbalance_3"] == approx((5.0 - 4.75) / (5.0 + 4.75))
    assert r["order_book_imbalance_5"] == approx((db5 - da5) / (db5 + da5))
    assert r["order_book_imbalance_10"] == approx((33.5 - 28.75) / (33.5 + 28.75))
    assert r["total_bid_volume_1"] == 1.25
    assert r["total_bid_volume_10"] == approx(33.5)
    assert r["total_ask_volume_4"] == approx(5.75)
    assert r["total_ask_volume_10"] == approx(28.75)
    # Buy walk, Q = 5: 0.75 + 1.5 + 2.5 from levels 1-3, then 0.25 of level 4.
    vwap_buy = (0.75 * 1.10002 + 1.5 * 1.10003 + 2.5 * 1.10004 + 0.25 * 1.10005) / 5.0
    # Sell walk: 1.25 + 2.0 + 1.75 = 5 exactly, three levels.
    vwap_sell = (1.25 * 1.10000 + 2.0 * 1.09999 + 1.75 * 1.09998) / 5.0
    assert r["price_impact_buy"] == approx((vwap_buy - m) / m)
    assert r["price_impact_sell"] == approx((m - vwap_sell) / m)
    assert r["price_impact_ask"] == approx((vwap_buy - 1.10002) / 1.10002)
    assert r["price_impact_bid"] == approx((1.10000 - vwap_sell) / 1.10000)
    assert r["impact_fill_ratio_buy"] == 1.0
    assert r["impact_fill_ratio_sell"] == 1.0
    assert r["price_impact_1"] == approx((1.10002 - 1.10000) / (2 * m))
    assert r["price_impact_5"] == approx((1.10006 - 1.09996) / (2 * m))
    assert r["price_impact_10"] == approx((1.10011 - 1.09991) / (2 * m))
    assert bool(r["is_crossed"]) is False


def test_zztest_uses_default_impact_size(snaps: pd.DataFrame, out: pd.DataFrame) -> None:
    r = row(out, "zz_normal")
    m = (100.00 + 100.02) / 2
    # Default Q = 1. Buy: 0.15 + 0.35 + 0.4 then 0.1 of level 4.
    vwap_buy = 0.15 * 100.02 + 0.35 * 100.03 + 0.4 * 100.04 + 0.1 * 100.05
    # Sell: 0.3 + 0.45 + 0.2 then 0.05 of level 4.
    vwap_sell = 0.3 * 100.00 + 0.45 * 99.99 + 0.2 * 99.98 + 0.05 * 99.97
    assert r["price_impact_buy"] == approx((vwap_buy - m) / m)
    assert r["price_impact_sell"] == approx((m - vwap_sell) / m)
    assert r["microprice"] == approx((100.00 * 0.15 + 100.02 * 0.3) / (0.3 + 0.15))

    # A different default: a two-level buy walk, 0.15 + 0.35 = 0.5.
    half = microstructure(snaps, IMPACT_SIZES, default_impact_order_size=0.5)
    r2 = row(half, "zz_normal")
    vwap_buy_2 = (0.15 * 100.02 + 0.35 * 100.03) / 0.5
    assert r2["price_impact_buy"] == approx((vwap_buy_2 - m) / m)
    assert r2["price_impact_ask"] == approx((vwap_buy_2 - 100.02) / 100.02)
    # EURUSD is configured, so its rows do not change.
    eur = [i for i, s in enumerate(snaps["symbol"]) if s == "EURUSD"]
    pd.testing.assert_frame_equal(half.iloc[eur], out.iloc[eur])


def test_depth_below_q_gives_null_impact_and_fill_ratio(out: pd.DataFrame) -> None:
    r = row(out, "eur_missing_deep")  # asks 1.2 + 0.8 + 1.5 = 3.5 < 5
    assert math.isnan(r["price_impact_buy"])
    assert math.isnan(r["price_impact_ask"])
    assert r["impact_fill_ratio_buy"] == approx(3.5 / 5.0)
    m = 1.10001
    vwap_sell = (2.5 * 1.10000 + 1.5 * 1.09999 + 1.0 * 1.09998) / 5.0
    assert r["price_impact_sell"] == approx((m - vwap_sell) / m)
    assert r["impact_fill_ratio_sell"] == 1.0
    assert r["order_book_imbalance_5"] == approx((7.5 - 3.5) / (7.5 + 3.5))
    assert r["order_book_imbalance_10"] == approx((7.5 - 3.5) / (7.5 + 3.5))
    assert r["total_bid_volume_10"] == approx(7.5)
    assert r["total_ask_volume_3"] == approx(3.5)
    assert r["total_ask_volume_10"] == approx(3.5)
    assert r["price_impact_1"] == approx((1.10002 - 1.10000) / (2 * m))
    assert math.isnan(r["price_impact_5"])  # level-5 prices are NULL
    assert math.isnan(r["price_impact_10"])

    r = row(out, "eur_depth_below_q")  # bids 4.0, asks 4.5, over all 10 levels
    for col in ("price_impact_buy", "price_impact_sell", "price_impact_ask", "price_impact_bid"):
        assert math.isnan(r[col]), col
    assert r["impact_fill_ratio_buy"] == approx(4.5 / 5.0)
    assert r["impact_fill_ratio_sell"] == approx(4.0 / 5.0)

    r = row(out, "zz_missing_deep")  # asks 0.4 + 0.35 = 0.75 < default Q 1
    assert math.isnan(r["price_impact_buy"])
    assert r["impact_fill_ratio_buy"] == approx(0.75)


def test_depth_equal_to_q_is_filled(out: pd.DataFrame) -> None:
    r = row(out, "eur_depth_equals_q")  # asks 10 x 0.5 = 5; bids 1 + 1.5 + 2.5 = 5
    m = 1.10001
    vwap_buy = (
        0.5
        * (
            1.10002
            + 1.10003
            + 1.10004
            + 1.10005
            + 1.10006
            + 1.10007
            + 1.10008
            + 1.10009
            + 1.10010
            + 1.10011
        )
        / 5.0
    )
    vwap_sell = (1.0 * 1.10000 + 1.5 * 1.09999 + 2.5 * 1.09998) / 5.0
    assert r["impact_fill_ratio_buy"] == 1.0
    assert r["impact_fill_ratio_sell"] == 1.0
    assert r["price_impact_buy"] == approx((vwap_buy - m) / m)
    assert r["price_impact_sell"] == approx((m - vwap_sell) / m)

    r = row(out, "zz_depth_equals_q")  # asks 0.25 + 0.25 + 0.5 = 1 = default Q
    m = 100.01
    vwap_buy = 0.25 * 100.02 + 0.25 * 100.03 + 0.5 * 100.04
    assert r["impact_fill_ratio_buy"] == 1.0
    assert r["price_impact_buy"] == approx((vwap_buy - m) / m)


def test_level_with_price_but_null_size(out: pd.DataFrame) -> None:
    r = row(out, "eur_price_no_size")  # bid level 2 and ask level 1 have NULL sizes
    assert r["mid_price"] == approx(1.10001)  # prices present
    assert math.isnan(r["microprice"])  # a level-1 size is NULL (T5)
    assert r["order_book_imbalance"] == 1.0  # A_1 counts 0 (T4)
    assert r["total_ask_volume_1"] == 0.0
    assert r["total_bid_volume_2"] == 1.25
    assert r["order_book_imbalance_2"] == approx((1.25 - 1.5) / (1.25 + 1.5))
    # Buy walk skips ask level 1: 1.5 + 2.5 + 1.0 = 5 from levels 2-4.
    vwap_buy = (1.5 * 1.10003 + 2.5 * 1.10004 + 1.0 * 1.10005) / 5.0
    assert r["price_impact_ask"] == approx((vwap_buy - 1.10002) / 1.10002)
    # Sell walk skips bid level 2: 1.25 + 1.75 + 2.0 (of 3.0).
    vwap_sell = (1.25 * 1.10000 + 1.75 * 1.09998 + 2.0 * 1.09997) / 5.0
    assert r["price_impact_bid"] == approx((1.10000 - vwap_sell) / 1.10000)


def test_level_with_size_but_null_price(out: pd.DataFrame) -> None:
    r = row(out, "eur_size_no_price")  # bid level 3 and ask level 2 have NULL prices
    assert r["total_bid_volume_3"] == approx(1.25 + 2.0)
    assert r["total_bid_volume_10"] == approx(33.5 - 1.75)
    assert r["total_ask_volume_2"] == 0.75
    # Buy: 0.75 (L1) + 2.5 (L3) + 1.0 (L4) + 0.75 of L5.
    vwap_buy = (0.75 * 1.10002 + 2.5 * 1.10004 + 1.0 * 1.10005 + 0.75 * 1.10006) / 5.0
    # Sell: 1.25 (L1) + 2.0 (L2) + 1.75 of L4.
    vwap_sell = (1.25 * 1.10000 + 2.0 * 1.09999 + 1.75 * 1.09997) / 5.0
    m = 1.10001
    assert r["price_impact_buy"] == approx((vwap_buy - m) / m)
    assert r["price_impact_sell"] == approx((m - vwap_sell) / m)
    # Weighted mid: bid level 3 contributes neither size nor notional.
    db5 = 1.25 + 2.0 + 3.0 + 2.5
    da5 = 0.75 + 2.5 + 1.0 + 3.0
    vwap_b5 = (1.10000 * 1.25 + 1.09999 * 2.0 + 1.09997 * 3.0 + 1.09996 * 2.5) / db5
    vwap_a5 = (1.10002 * 0.75 + 1.10004 * 2.5 + 1.10005 * 1.0 + 1.10006 * 3.0) / da5
    assert r["weighted_mid_price"] == approx((vwap_b5 * da5 + vwap_a5 * db5) / (db5 + da5))

    r = row(out, "zz_bid1_size_no_price")  # level-1 bid size 0.3 with a NULL price
    assert math.isnan(r["mid_price"])
    assert r["total_bid_volume_1"] == 0.0
    assert r["order_book_imbalance"] == -1.0


def test_null_level1_bid_price(out: pd.DataFrame) -> None:
    r = row(out, "eur_nan_bid1_price")
    for col in (
        "mid_price",
        "bid_ask_spread",
        "bid_ask_spread_pct",
        "spread_bps",
        "microprice",
        "price_impact_buy",
        "price_impact_sell",
        "price_impact_bid",
        "price_impact_1",
        "price_impact_5",
        "price_impact_10",
    ):
        assert math.isnan(r[col]), col
    assert r["is_crossed"] is pd.NA
    # Depth features still computed; the bid at level 1 counts 0.
    assert r["order_book_imbalance"] == -1.0
    assert r["total_bid_volume_1"] == 0.0
    assert r["order_book_imbalance_2"] == approx((2.0 - 2.25) / (2.0 + 2.25))
    # Slippage against the ask touch only needs a_1.
    vwap_buy = (0.75 * 1.10002 + 1.5 * 1.10003 + 2.5 * 1.10004 + 0.25 * 1.10005) / 5.0
    assert r["price_impact_ask"] == approx((vwap_buy - 1.10002) / 1.10002)
    assert r["impact_fill_ratio_buy"] == 1.0
    assert r["impact_fill_ratio_sell"] == 1.0
    # The 5-level weighted mid is not a level-1 price feature: levels 2-5 of the bid.
    db5 = 2.0 + 1.75 + 3.0 + 2.5
    da5 = 0.75 + 1.5 + 2.5 + 1.0 + 3.0
    vwap_b5 = (1.09999 * 2.0 + 1.09998 * 1.75 + 1.09997 * 3.0 + 1.09996 * 2.5) / db5
    vwap_a5 = (1.10002 * 0.75 + 1.10003 * 1.5 + 1.10004 * 2.5 + 1.10005 * 1.0 + 1.10006 * 3.0) / da5
    assert r["weighted_mid_price"] == approx((vwap_b5 * da5 + vwap_a5 * db5) / (db5 + da5))


def test_empty_sides(out: pd.DataFrame) -> None:
    r = row(out, "eur_empty_bid")
    for col in OBI_COLUMNS:
        assert r[col] == -1.0, col  # T4
    assert r["impact_fill_ratio_sell"] == 0.0  # T6
    assert r["impact_fill_ratio_buy"] == 1.0
    assert math.isnan(r["weighted_mid_price"])  # T5
    assert math.isnan(r["price_impact_sell"])
    assert math.isnan(r["price_impact_bid"])
    assert r["price_impact_ask"] == approx(row(out, "eur_normal")["price_impact_ask"])
    assert r["is_crossed"] is pd.NA

    r = row(out, "zz_empty_ask")
    for col in OBI_COLUMNS:
        assert r[col] == 1.0, col
    assert r["impact_fill_ratio_buy"] == 0.0

    r = row(out, "zz_all_empty")
    for col in FLOAT_COLUMNS:
        if col.startswith(("total_", "impact_fill_ratio_")):
            assert r[col] == 0.0, col
        else:
            assert math.isnan(r[col]), col
    assert r["is_crossed"] is pd.NA


def test_zero_sizes_at_level_1(out: pd.DataFrame) -> None:
    r = row(out, "eur_zero_l1_both")
    assert math.isnan(r["microprice"])  # B_1 + A_1 = 0
    assert math.isnan(r["order_book_imbalance"])  # zero denominator
    assert r["order_book_imbalance_2"] == approx((2.0 - 1.5) / (2.0 + 1.5))
    assert r["mid_price"] == approx(1.10001)
    # The walk skips the zero-size touch: 1.5 + 2.5 + 1.0 from levels 2-4.
    vwap_buy = (1.5 * 1.10003 + 2.5 * 1.10004 + 1.0 * 1.10005) / 5.0
    assert r["price_impact_ask"] == approx((vwap_buy - 1.10002) / 1.10002)

    r = row(out, "eur_zero_l1_bid")  # B_1 = 0, A_1 = 1.3
    assert r["microprice"] == approx(1.10000)  # (b_1*1.3 + a_1*0) / 1.3
    assert r["order_book_imbalance"] == -1.0

    r = row(out, "zz_zero_l1_ask")  # A_1 = 0, B_1 = 0.3
    assert r["microprice"] == approx(100.02)
    assert r["order_book_imbalance"] == 1.0


def test_crossed_and_locked(out: pd.DataFrame) -> None:
    r = row(out, "eur_crossed")  # b_1 = 1.10006 > a_1 = 1.10004
    assert bool(r["is_crossed"]) is True  # bool(pd.NA) would raise
    assert r["bid_ask_spread"] == approx(1.10004 - 1.10006)
    assert r["bid_ask_spread"] < 0
    assert r["price_impact_1"] < 0  # no clipping
    m = (1.10006 + 1.10004) / 2
    # Sell into bids 1.5 + 2.5 + 1.0 (levels 1-3).
    vwap_sell = (1.5 * 1.10006 + 2.5 * 1.10005 + 1.0 * 1.10004) / 5.0
    assert r["price_impact_sell"] == approx((m - vwap_sell) / m)
    assert r["price_impact_sell"] < 0

    r = row(out, "eur_locked")  # b_1 = a_1 = 1.10003
    assert bool(r["is_crossed"]) is True
    assert r["bid_ask_spread"] == 0.0
    assert r["price_impact_1"] == 0.0

    assert bool(row(out, "zz_crossed")["is_crossed"]) is True
    assert bool(row(out, "zz_normal")["is_crossed"]) is False


def test_repeated_prices(out: pd.DataFrame) -> None:
    r = row(out, "eur_repeated_prices")
    m = 1.10001
    # Asks: 0.75 and 1.5 at 1.10002, then 2.5 and 0.25 (of 1.0) at 1.10003.
    vwap_buy = ((0.75 + 1.5) * 1.10002 + (2.5 + 0.25) * 1.10003) / 5.0
    # Bids: 1.25 and 2.0 at 1.10000, then 1.75 at 1.09999.
    vwap_sell = ((1.25 + 2.0) * 1.10000 + 1.75 * 1.09999) / 5.0
    assert r["price_impact_buy"] == approx((vwap_buy - m) / m)
    assert r["price_impact_sell"] == approx((m - vwap_sell) / m)


def test_null_patterns_follow_t5_t6(snaps: pd.DataFrame, out: pd.DataFrame) -> None:
    b1, a1 = snaps["bid_price_1"].to_numpy(), snaps["ask_price_1"].to_numpy()
    price_missing = np.isnan(b1) | np.isnan(a1)
    assert (out["is_crossed"].isna().to_numpy() == price_missing).all()
    for col in (
        "mid_price",
        "bid_ask_spread",
        "bid_ask_spread_pct",
        "spread_bps",
        "price_impact_buy",
        "price_impact_sell",
        "price_impact_1",
    ):
        assert out.loc[price_missing, col].isna().all(), col
    assert out.loc[~price_missing, "mid_price"].notna().all()
    q = np.where(snaps["symbol"] == "EURUSD", EURUSD_Q, 1.0)
    for side, col in (("ask", "price_impact_ask"), ("bid", "price_impact_bid")):
        prices = snaps[[f"{side}_price_{i}" for i in range(1, 11)]].to_numpy()
        sizes = snaps[[f"{side}_size_{i}" for i in range(1, 11)]].to_numpy()
        depth = np.where(np.isnan(prices) | np.isnan(sizes), 0.0, sizes).sum(axis=1)
        touch = a1 if side == "ask" else b1
        expected_null = (depth < q) | np.isnan(touch)
        assert (out[col].isna().to_numpy() == expected_null).all(), col


def test_microprice_identity(out: pd.DataFrame) -> None:
    # A5: wmid = m + (s/2) * I_s wherever the microprice is defined.
    ok = out["microprice"].notna()
    lhs = out.loc[ok, "microprice"].to_numpy()
    rhs = (
        out.loc[ok, "mid_price"]
        + out.loc[ok, "bid_ask_spread"] / 2 * out.loc[ok, "order_book_imbalance"]
    ).to_numpy()
    np.testing.assert_allclose(lhs, rhs, rtol=1e-12, atol=0.0)


def test_walk_book_directly() -> None:
    nan = float("nan")
    prices = [1.0, nan, 2.0, 3.0, 4.0]
    sizes = [1.0, 5.0, 0.0, 2.0, nan]
    vwap, ratio = walk_book(prices, sizes, 2.0)
    assert vwap == approx((1.0 * 1.0 + 1.0 * 3.0) / 2.0)
    assert ratio == 1.0
    vwap, ratio = walk_book(prices, sizes, 4.0)  # visible depth 3 < 4
    assert math.isnan(vwap)
    assert ratio == approx(0.75)
    vwap, ratio = walk_book([nan] * 3, [nan] * 3, 4.0)
    assert math.isnan(vwap)
    assert ratio == 0.0
    with pytest.raises(ValueError):
        walk_book(prices, sizes, 0.0)
