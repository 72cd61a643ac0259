"""Unit tests for the L2 flow oracles: tests/oracle/{ofi,flow,book_pressure,temporal}.py and
the window-edge data set of tests/oracle/datasets.py; no database.

The expected numbers are written out as arithmetic straight from FEATURE_DEFINITIONS.md
(B1-B4, section S, section T) and docs/engine_definitions.md, on small hand-built books,
not computed with the oracles' helpers. A slow but literal row-by-row re-implementation
(`naive_*` below) is also compared with the vectorised oracles on the window-edge data.
"""

from __future__ import annotations

import bisect
import math
import time
from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd
import pytest

from tests.oracle.book_pressure import book_pressure
from tests.oracle.compare import mismatches
from tests.oracle.datasets import synthetic_snapshots, window_edge_snapshots
from tests.oracle.flow import flow
from tests.oracle.microstructure import INPUT_COLUMNS
from tests.oracle.ofi import ofi
from tests.oracle.temporal import temporal

NAN = math.nan
BASE = pd.Timestamp("2024-01-02 10:00:00", tz="UTC")
SECOND = 1_000_000  # microseconds
H5 = 1.0 + 1.0 / 2 + 1.0 / 3 + 1.0 / 4 + 1.0 / 5  # sum of the MLOFI weights 1/m, m = 1..5

Level = tuple[float, float]  # (price, size); NaN for NULL
Family = Callable[[pd.DataFrame], pd.DataFrame]

WINDOWS = ("10s", "30s", "1m", "5m")
WINDOW_US = {"10s": 10 * SECOND, "30s": 30 * SECOND, "1m": 60 * SECOND, "5m": 300 * SECOND}

EXPECTED_COLUMNS: dict[str, list[str]] = {
    "ofi": [
        "symbol", "ts", "ofi_event", "ofi_10s", "ofi_30s", "ofi_1m", "ofi_5m",
        "ofi_normalized_10s", "ofi_normalized_30s", "ofi_normalized_1m", "ofi_normalized_5m",
        "ofi_weighted_10s", "ofi_weighted_30s", "ofi_weighted_1m", "ofi_weighted_5m",
    ],
    "book_pressure": [
        "symbol", "ts", "bid_pressure", "ask_pressure", "bid_pressure_weighted",
        "ask_pressure_weighted", "pressure_imbalance", "pressure_imbalance_weighted",
        "book_depth_asymmetry",
    ],
    "flow": [
        "symbol", "ts", "flow_imbalance_10", "flow_imbalance_30", "flow_imbalance_100",
        "flow_imbalance_300", "flow_imbalance_ema_10", "flow_imbalance_ema_30",
        "flow_imbalance_ema_100", "flow_imbalance_ema_300", "level_1_flow_ratio",
        "level_2_flow_ratio", "level_3_flow_ratio", "level_4_flow_ratio", "level_5_flow_ratio",
        "flow_persistence",
    ],
    "temporal": [
        "symbol", "ts", "book_updates", "update_intensity_50", "update_intensity_100",
        "update_intensity_300", "large_bid", "large_ask", "size_clustering",
        "price_momentum_10", "price_momentum_30", "price_momentum_100",
        "imbalance_momentum_10", "imbalance_momentum_30", "imbalance_momentum_100",
    ],
}  # fmt: skip

FAMILIES: dict[str, Family] = {
    "ofi": ofi,
    "book_pressure": book_pressure,
    "flow": flow,
    "temporal": temporal,
}


def approx(value: float) -> object:
    return pytest.approx(value, rel=1e-12, abs=1e-15)


def is_null(value: object) -> bool:
    return isinstance(value, float) and math.isnan(value)


# ---------------------------------------------------------------------------
# Building small books by hand


def snapshot(symbol: str, t_us: int, bids: Sequence[Level], asks: Sequence[Level]) -> dict:
    """One row; levels beyond those given are NULL."""
    row: dict[str, object] = {"symbol": symbol, "ts": BASE + pd.Timedelta(microseconds=t_us)}
    for side, levels in (("bid", bids), ("ask", asks)):
        padded = list(levels) + [(NAN, NAN)] * (10 - len(levels))
        for i, (price, size) in enumerate(padded, start=1):
            row[f"{side}_price_{i}"] = float(price)
            row[f"{side}_size_{i}"] = float(size)
    return row


def frame(rows: Sequence[dict]) -> pd.DataFrame:
    out = pd.DataFrame(list(rows))[list(INPUT_COLUMNS)]
    out["ts"] = out["ts"].dt.as_unit("us")
    return out.astype({c: "float64" for c in INPUT_COLUMNS[2:]})


def l1_rows(
    symbol: str, books: Sequence[tuple[float, float, float, float]], step_us: int = 100_000
) -> list[dict]:
    """Level-1-only books (bid price, bid size, ask price, ask size), `step_us` apart."""
    return [
        snapshot(symbol, i * step_us, [(bp, bq)], [(ap, aq)])
        for i, (bp, bq, ap, aq) in enumerate(books)
    ]


def bid_size_rows(symbol: str, sizes: Sequence[float], step_us: int = 100_000) -> list[dict]:
    """Fixed prices 100.00 / 100.02 and ask size 5; only the best bid size moves, so
    e_n = q^B_n - q^B_{n-1} (B1, both prices unchanged)."""
    return l1_rows(symbol, [(100.00, q, 100.02, 5.0) for q in sizes], step_us)


# ---------------------------------------------------------------------------
# Output shape: columns, order, dtypes, sorting, input order, no inf


@pytest.fixture(scope="module")
def edge() -> pd.DataFrame:
    return window_edge_snapshots()


@pytest.fixture(scope="module")
def edge_out(edge: pd.DataFrame) -> dict[str, pd.DataFrame]:
    return {name: fn(edge) for name, fn in FAMILIES.items()}


@pytest.mark.parametrize("name", list(FAMILIES))
def test_output_columns_dtypes_and_order(
    name: str, edge: pd.DataFrame, edge_out: dict[str, pd.DataFrame]
) -> None:
    out = edge_out[name]
    assert list(out.columns) == EXPECTED_COLUMNS[name]
    assert len(out) == len(edge)
    assert list(out.index) == list(range(len(edge)))
    expected_keys = edge.sort_values(["symbol", "ts"])[["symbol", "ts"]].reset_index(drop=True)
    pd.testing.assert_frame_equal(out[["symbol", "ts"]], expected_keys)
    assert all(out[c].dtype == np.float64 for c in EXPECTED_COLUMNS[name][2:])


@pytest.mark.parametrize("name", list(FAMILIES))
def test_no_infinity_and_every_column_has_values(
    name: str, edge_out: dict[str, pd.DataFrame]
) -> None:
    values = edge_out[name].iloc[:, 2:]
    assert not np.isinf(values.to_numpy()).any()  # T17
    assert values.notna().any().all()


@pytest.mark.parametrize("name", list(FAMILIES))
def test_input_order_and_index_do_not_matter(
    name: str, edge: pd.DataFrame, edge_out: dict[str, pd.DataFrame]
) -> None:
    shuffled = edge.sample(frac=1.0, random_state=11)
    again = FAMILIES[name](shuffled.set_index(shuffled.index + 1000))
    pd.testing.assert_frame_equal(again, edge_out[name])


# ---------------------------------------------------------------------------
# ofi: B1 case table, T7 NULLs, time windows (B2/T2), normalisation (B3/T8), MLOFI (B4)


def test_b1_case_table_row_by_row() -> None:
    books = [
        (100.00, 5.0, 100.03, 4.0),
        (100.01, 3.0, 100.03, 6.0),  # bid up, ask same
        (100.01, 7.0, 100.02, 2.0),  # bid same, ask down
        (100.00, 9.0, 100.04, 8.0),  # bid down, ask up
        (100.01, 1.0, 100.03, 5.0),  # bid up, ask down
        (100.00, 6.0, 100.03, 2.0),  # bid down, ask same
        (100.00, 6.0, 100.05, 3.0),  # bid same, ask up
        (100.02, 4.0, 100.06, 1.0),  # bid up, ask up
        (100.02, 2.5, 100.06, 1.5),  # bid same, ask same
        (100.01, 3.0, 100.05, 2.0),  # bid down, ask down
        (100.07, 1.0, 100.05, 2.0),  # crossed: bid up, ask same (no clipping)
        (100.05, 2.0, 100.05, 3.0),  # locked: bid down, ask same
    ]
    out = ofi(frame(l1_rows("ZZTEST", books)))
    # e_n = ΔW - ΔV; ΔW: +q_n (up), q_n - q_{n-1} (same), -q_{n-1} (down);
    # ΔV: +q_n (ask down), q_n - q_{n-1} (same), -q_{n-1} (ask up).
    expected = [
        NAN,  # first snapshot
        (+3.0) - (6.0 - 4.0),
        (7.0 - 3.0) - (+2.0),
        (-7.0) - (-2.0),
        (+1.0) - (+5.0),
        (-1.0) - (2.0 - 5.0),
        (6.0 - 6.0) - (-2.0),
        (+4.0) - (-3.0),
        (2.5 - 4.0) - (1.5 - 1.0),
        (-2.5) - (+2.0),
        (+1.0) - (2.0 - 2.0),
        (-1.0) - (3.0 - 2.0),
    ]
    got = out["ofi_event"].tolist()
    assert is_null(got[0])
    assert got[1:] == [approx(v) for v in expected[1:]]
    # All rows are within 10 s, so ofi_10s is the running sum of e_n (B2; 0 on row 0, T2).
    assert out["ofi_10s"].tolist() == [approx(v) for v in [0.0, *np.cumsum(expected[1:])]]


def test_ofi_event_null_rules_t7() -> None:
    books = [
        (100.00, 5.0, 100.02, 4.0),
        (NAN, 5.0, 100.02, 4.0),  # NULL bid price: e NULL here and on the next row
        (100.00, 6.0, 100.02, 4.0),
        (100.00, 8.0, 100.02, 4.0),
        (100.00, 8.0, 100.02, NAN),  # NULL ask size
        (100.00, 8.0, 100.02, 3.0),
        (100.00, 9.0, 100.02, 3.0),
    ]
    out = ofi(frame(l1_rows("ZZTEST", books)))
    e = out["ofi_event"].tolist()
    assert [is_null(v) for v in e] == [True, True, True, False, True, True, False]
    assert e[3] == approx(8.0 - 6.0)
    assert e[6] == approx(9.0 - 8.0)
    # B2/T2: NULL e_n are skipped; a window with none is 0.
    assert out["ofi_10s"].tolist() == [approx(v) for v in [0, 0, 0, 2.0, 2.0, 2.0, 3.0]]
    # T8: AD over exactly the rows whose e_n is summed (rows 3 and 6).
    norm = out["ofi_normalized_10s"].tolist()
    assert all(is_null(v) for v in norm[:3])
    assert norm[3] == approx(2.0 / ((8.0 + 4.0) / 2))
    assert norm[6] == approx(3.0 / (((8.0 + 4.0) / 2 + (9.0 + 3.0) / 2) / 2))
    # T7: the multi-level OFI treats the NULL level 1 as empty (B4) instead.
    # Row 1: bid level 1 vanishes (-5); row 2: it reappears (+6); row 4: the ask level
    # vanishes (ΔV = -4, so e = +4); row 5: it reappears (ΔV = +3, so e = -3).
    level1 = [0.0, -5.0, +6.0, 8.0 - 6.0, +4.0, -3.0, 9.0 - 8.0]
    weighted = out["ofi_weighted_10s"].tolist()
    assert weighted == [approx(1.0 * v / H5) for v in np.cumsum(level1)]


@pytest.mark.parametrize("window", WINDOWS)
def test_time_window_excludes_ts_minus_w(window: str) -> None:
    w = WINDOW_US[window]
    # e_n = 1, 2, 4, 8 (bid size doubling), so each sum names the rows it includes.
    times = [0, 1 * SECOND, 2 * SECOND, 1 * SECOND + w, 2 * SECOND + w - 1, 2 * SECOND + w]
    sizes = [1.0, 2.0, 4.0, 8.0, 16.0, 32.0]
    rows = [
        snapshot("EURUSD", t, [(1.10000, q)], [(1.10002, 5.0)])
        for t, q in zip(times, sizes, strict=True)
    ]
    out = ofi(frame(rows))
    got = out[f"ofi_{window}"].tolist()
    assert got[0] == 0.0  # T2: no e_n on the first row
    assert got[1:3] == [1.0, 1.0 + 2.0]
    # Row 3 at 1 s + W: the row at exactly 1 s (e = 1) is out, 2 s (e = 2) is in.
    assert got[3] == 2.0 + 4.0
    # Row 4 at 2 s + W - 1 µs: 2 s is still in.
    assert got[4] == 2.0 + 4.0 + 8.0
    # Row 5 at 2 s + W: 2 s is out.
    assert got[5] == 4.0 + 8.0 + 16.0
    # B3: the mean depth (q^B + 5)/2 over the same rows.
    assert out[f"ofi_normalized_{window}"][3] == approx(6.0 / (((4 + 5) / 2 + (8 + 5) / 2) / 2))


def test_gap_longer_than_window_differences_against_last_row_before() -> None:
    # B2: the first snapshot inside the window is differenced against the last one before.
    rows = bid_size_rows("ZZTEST", [3.0, 5.0], step_us=6 * 60 * SECOND)
    out = ofi(frame(rows))
    for window in WINDOWS:
        assert out[f"ofi_{window}"].tolist() == [0.0, 5.0 - 3.0]


def test_ofi_is_per_symbol_and_zero_on_each_first_row() -> None:
    eur = [snapshot("EURUSD", i * 100_000, [(1.1, 1.0 + i)], [(1.10002, 2.0)]) for i in range(3)]
    zz = [
        snapshot("ZZTEST", i * 100_000 + 50_000, [(100.0, 10.0 - i)], [(100.02, 2.0)])
        for i in range(3)
    ]
    out = ofi(frame([*zz, *eur]))
    assert out["symbol"].tolist() == ["EURUSD"] * 3 + ["ZZTEST"] * 3
    first = out.iloc[[0, 3]]
    assert first["ofi_event"].isna().all()
    for window in WINDOWS:
        assert (first[f"ofi_{window}"] == 0.0).all()
        assert first[f"ofi_normalized_{window}"].isna().all()  # T8: no snapshot summed
        assert (first[f"ofi_weighted_{window}"] == 0.0).all()
    assert out["ofi_10s"].tolist() == [0.0, 1.0, 2.0, 0.0, -1.0, -2.0]


def test_ofi_normalized_null_when_average_depth_is_zero() -> None:
    out = ofi(frame(l1_rows("ZZTEST", [(100.0, 0.0, 100.02, 0.0)] * 3)))
    assert out["ofi_event"].tolist()[1:] == [0.0, 0.0]
    assert out["ofi_10s"].tolist() == [0.0, 0.0, 0.0]
    assert out["ofi_normalized_10s"].isna().all()  # T8: the average is 0


def test_mlofi_vanishing_and_appearing_levels() -> None:
    bids0 = [(100.00, 5.0), (99.99, 3.0), (99.98, 2.0)]
    asks0 = [(100.02, 4.0), (100.03, 6.0), (100.04, 1.0)]
    # Row 1: bid level 2 vanishes; bid level 3 keeps its price with size 0 (not empty);
    # ask level 4 appears. Row 2: bid level 2 reappears, bid level 3 gets size 1,
    # ask level 4 vanishes.
    bids1 = [(100.00, 5.0), (NAN, NAN), (99.98, 0.0)]
    asks1 = [*asks0, (100.05, 7.0)]
    bids2 = [(100.00, 5.0), (99.99, 4.0), (99.98, 1.0)]
    rows = [
        snapshot("ZZTEST", 0, bids0, asks0),
        snapshot("ZZTEST", 100_000, bids1, asks1),
        snapshot("ZZTEST", 200_000, bids2, asks0),
    ]
    out = ofi(frame(rows))
    # Level by level (B4): e^1 = 0 (unchanged); e^2 = -3 (vanish, -B_{n-1}) then +4
    # (appear); e^3 = (0 - 2) then (1 - 0) (same price); e^4 = -(+7) (an ask appears:
    # ΔV = +A_n) then -(-7) (it vanishes); e^5 = 0 (empty in both).
    row1 = (1 * 0.0 + (1 / 2) * -3.0 + (1 / 3) * (0.0 - 2.0) + (1 / 4) * -7.0) / H5
    row2 = (1 * 0.0 + (1 / 2) * (-3.0 + 4.0) + (1 / 3) * (-2.0 + 1.0) + (1 / 4) * 0.0) / H5
    assert out["ofi_weighted_10s"].tolist() == [0.0, approx(row1), approx(row2)]
    assert out["ofi_event"].tolist()[1:] == [0.0, 0.0]  # level 1 never changes


# ---------------------------------------------------------------------------
# flow


def test_flow_imbalance_row_windows() -> None:
    sizes = [10, 11, 13, 12, 12, 15, 14, 14, 16, 13, 13, 20]
    out = flow(frame(bid_size_rows("ZZTEST", [float(s) for s in sizes])))
    got = out["flow_imbalance_10"].tolist()
    # e_1..e_11 = 1, 2, -1, 0, 3, -1, 0, 2, -3, 0, 7; e_0 is NULL, so the first full
    # window of 10 non-NULL e_n ends on row 10 (T1).
    assert all(is_null(v) for v in got[:10])
    assert got[10] == approx((1 + 2 - 1 + 0 + 3 - 1 + 0 + 2 - 3 + 0) / (1 + 2 + 1 + 3 + 1 + 2 + 3))
    assert got[11] == approx((2 - 1 + 0 + 3 - 1 + 0 + 2 - 3 + 0 + 7) / (2 + 1 + 3 + 1 + 2 + 3 + 7))
    assert out["flow_imbalance_30"].isna().all()


def test_flow_imbalance_null_when_all_events_are_zero() -> None:
    out = flow(frame(bid_size_rows("ZZTEST", [4.0] * 12)))
    assert out["flow_imbalance_10"].isna().all()  # sum |e_n| = 0
    assert out["flow_imbalance_ema_10"].isna().all()  # EMA(|e_n|) = 0


def test_flow_imbalance_ema_seeded_and_carried_across_null() -> None:
    # e: NULL, 2, NULL, NULL, -2, 1 (row 2 has a NULL bid size: e_2 and e_3 are NULL).
    sizes = [10.0, 12.0, NAN, 11.0, 9.0, 10.0]
    out = flow(frame(bid_size_rows("EURUSD", sizes)))
    for n in (10, 30, 100, 300):
        a = 2.0 / (n + 1)
        got = out[f"flow_imbalance_ema_{n}"].tolist()
        assert is_null(got[0])
        assert got[1:4] == [1.0, 1.0, 1.0]  # seeded with e_1 = 2 (|e_1| = 2), carried
        # pandas adjust=False, ignore_na=False: the old value's weight decays over the
        # NULL rows, (1-a)^3 against a for the new value (T13).
        w = (1 - a) ** 3
        ema_e = (w * 2.0 + a * -2.0) / (w + a)
        ema_abs = (w * 2.0 + a * 2.0) / (w + a)
        assert got[4] == approx(ema_e / ema_abs)
        ema_e5 = (1 - a) * ema_e + a * 1.0
        ema_abs5 = (1 - a) * ema_abs + a * 1.0
        assert got[5] == approx(ema_e5 / ema_abs5)


def test_level_k_flow_ratio_over_100_rows() -> None:
    rows = []
    for t in range(102):
        bids = [(100.00, 10.0 + t), (99.99, 1.0), (99.98, 5.0)]
        if 1 <= t <= 100:  # bid level 3 vanishes on row 1 and reappears on row 101
            bids[2] = (NAN, NAN)
        asks = [(100.02, 1.0), (100.03, 20.0 + 2 * t)]
        rows.append(snapshot("ZZTEST", t * 100_000, bids, asks))
    rows += bid_size_rows("ZZFLAT", [3.0] * 102)
    out = flow(frame(rows))
    zz = out[out["symbol"] == "ZZTEST"].reset_index(drop=True)
    # Per row: e^1 = +1 (bid size up), e^2 = -2 (ask level 2 size up: ΔV = +2),
    # e^3 = -5 on row 1 (vanishes), +5 on row 101 (appears), e^4 = e^5 = 0.
    for k in range(1, 6):
        assert zz[f"level_{k}_flow_ratio"][:100].isna().all()  # row 0 has no MLOFI
    # Row 100 covers rows 1..100; row 101 covers rows 2..101.
    den = 100.0 + 200.0 + 5.0
    assert zz.loc[100, "level_1_flow_ratio"] == approx(100.0 / den)
    assert zz.loc[100, "level_2_flow_ratio"] == approx(-200.0 / den)
    assert zz.loc[100, "level_3_flow_ratio"] == approx(-5.0 / den)
    assert zz.loc[101, "level_3_flow_ratio"] == approx(5.0 / den)
    assert zz.loc[101, "level_4_flow_ratio"] == 0.0
    assert zz.loc[101, "level_5_flow_ratio"] == 0.0
    flat = out[out["symbol"] == "ZZFLAT"]
    assert flat[[f"level_{k}_flow_ratio" for k in range(1, 6)]].isna().all().all()


def test_flow_persistence_over_the_non_zero_events() -> None:
    # 105 non-zero events: 50 buys, then 55 alternating sells and buys. Zero events and a
    # NULL size are mixed in; they are skipped and the value is carried across them.
    signs = [1] * 50 + [(-1 if k % 2 == 0 else 1) for k in range(55)]
    sizes = [100.0]
    event_row = []  # row of each event
    for k, sign in enumerate(signs):
        if k == 20:
            sizes.append(sizes[-1])  # zero event
        if k == 40:
            sizes += [NAN, sizes[-1]]  # e NULL on both rows
        sizes.append(sizes[-1] + sign)
        event_row.append(len(sizes) - 1)
        if k == 100:
            sizes += [sizes[-1]] * 3  # three zero events after the 101st event
    out = flow(frame(bid_size_rows("ZZTEST", sizes)))
    got = out["flow_persistence"].tolist()
    # Event k is compared with event k-1; the sign switches at every k in 50..104. The value
    # needs 100 comparisons, i.e. events 0..100 (engine_definitions).
    assert all(is_null(v) for v in got[: event_row[100]])
    assert got[event_row[100]] == approx((100 - 51) / 100)  # events 1..100: 51 switches
    assert got[event_row[100] + 1 : event_row[100] + 4] == [approx(0.49)] * 3  # carried
    assert got[event_row[101]] == approx((100 - 52) / 100)  # events 2..101
    assert got[event_row[104]] == approx((100 - 55) / 100)  # events 5..104


# ---------------------------------------------------------------------------
# book_pressure


def test_book_pressure_hand_rows() -> None:
    rows = [
        # Bid level 3 has a size but no price: it counts 0 (T4).
        snapshot(
            "ZZTEST", 0, [(100.0, 2.0), (99.99, 4.0), (NAN, 6.0)], [(100.02, 1.0), (100.03, 3.0)]
        ),
        # A wholly empty bid side.
        snapshot("ZZTEST", 100_000, [], [(100.02, 1.0), (100.03, 3.0)]),
        # An entirely empty book.
        snapshot("ZZTEST", 200_000, [], []),
        # Prices with zero sizes only.
        snapshot("ZZTEST", 300_000, [(100.0, 0.0)], [(100.02, 0.0)]),
        # All 10 levels on both sides; level i has size i on the bid, 2 on the ask.
        snapshot(
            "ZZTEST",
            400_000,
            [(100.0 - i / 100, float(i)) for i in range(1, 11)],
            [(100.02 + i / 100, 2.0) for i in range(1, 11)],
        ),
    ]
    out = book_pressure(frame(rows))
    r = out.iloc[0]
    assert r["bid_pressure"] == approx((2 + 4) / (2 + 4 + 1 + 3))
    assert r["ask_pressure"] == approx(1 - 0.6)
    assert r["bid_pressure_weighted"] == approx((2 / 1 + 4 / 2) / (2 / 1 + 4 / 2 + 1 / 1 + 3 / 2))
    assert r["ask_pressure_weighted"] == approx(1 - 4 / 6.5)
    assert r["pressure_imbalance"] == approx(0.6 - 0.4)
    assert r["pressure_imbalance_weighted"] == approx(4 / 6.5 - 2.5 / 6.5)
    assert r["book_depth_asymmetry"] == approx(math.log(6) - math.log(4))
    r = out.iloc[1]
    assert (r["bid_pressure"], r["ask_pressure"], r["pressure_imbalance"]) == (0.0, 1.0, -1.0)
    assert r["bid_pressure_weighted"] == 0.0
    assert is_null(r["book_depth_asymmetry"])  # A9: NaN if either side is 0
    for i in (2, 3):
        assert out.iloc[i, 2:].isna().all()  # zero denominators only
    r = out.iloc[4]
    bid_w = sum(i / i for i in range(1, 11))
    ask_w = sum(2 / i for i in range(1, 11))
    assert r["bid_pressure"] == approx(55 / (55 + 20))
    assert r["bid_pressure_weighted"] == approx(bid_w / (bid_w + ask_w))
    assert r["book_depth_asymmetry"] == approx(math.log(55 / 20))


def test_book_depth_asymmetry_log_form_keeps_digits() -> None:
    # D^b = 1e6 + 0.01, D^a = 1e6: ln(D^b/D^a) ~ 1e-8; the log1p form keeps the digits.
    rows = [
        snapshot("ZZTEST", 0, [(100.0, 1e6 + 0.01)], [(100.02, 1e6)]),
        snapshot("ZZTEST", 1, [(100.0, 1e6)], [(100.02, 1e6 + 0.01)]),
    ]
    out = book_pressure(frame(rows))["book_depth_asymmetry"]
    db = 1e6 + 0.01
    assert out[0] == pytest.approx(math.log1p((db - 1e6) / 1e6), rel=1e-12)
    assert out[1] == pytest.approx(-math.log1p((db - 1e6) / 1e6), rel=1e-12)


# ---------------------------------------------------------------------------
# temporal


def test_book_updates_is_distinct_from() -> None:
    bids = [(100.00, 2.0), (99.99, 3.0)]
    asks = [(100.02, 1.0)]
    rows = [
        snapshot("ZZTEST", 0, bids, asks),
        snapshot("ZZTEST", 100_000, bids, asks),  # unchanged; 36 NULL vs NULL fields
        # bid size 1 changes (1); ask level 2 appears: NULL -> value for price and size (2)
        snapshot("ZZTEST", 200_000, [(100.00, 2.5), (99.99, 3.0)], [(100.02, 1.0), (100.03, 4.0)]),
        # bid level 2 vanishes (2); ask price 1 changes (1)
        snapshot("ZZTEST", 300_000, [(100.00, 2.5)], [(100.01, 1.0), (100.03, 4.0)]),
        # bid level 2 price back with a NULL size: price 1, size NULL vs NULL 0
        snapshot("ZZTEST", 400_000, [(100.00, 2.5), (99.99, NAN)], [(100.01, 1.0), (100.03, 4.0)]),
    ]
    got = temporal(frame(rows))["book_updates"].tolist()
    assert is_null(got[0])  # T9: NULL on the first row
    assert got[1:] == [0.0, 1.0 + 2.0, 2.0 + 1.0, 1.0]


def test_update_intensity_divides_by_first_to_last_row_seconds() -> None:
    sizes = [float(10 + (t % 2)) for t in range(302)]  # one field changes on every row
    out = temporal(frame(bid_size_rows("ZZTEST", sizes, step_us=100_000)))
    for n in (50, 100, 300):
        got = out[f"update_intensity_{n}"].tolist()
        assert all(is_null(v) for v in got[:n])  # T1: row 0's book_updates is NULL
        # N updates over ts_t - ts_{t-N+1} = (N-1) * 0.1 s (T11).
        assert got[n] == approx(n / ((n - 1) * 100_000 / 1e6))
        assert got[n + 1] == approx(n / ((n - 1) * 100_000 / 1e6))


def test_large_bid_and_ask_t12() -> None:
    bid = [1.0 if t % 2 == 0 else 3.0 for t in range(100)] + [4.02, NAN, 1.0]
    ask = [1.0 if t % 2 == 0 else 3.0 for t in range(100)] + [4.0, 2.0, 2.0]
    rows = [
        snapshot("EURUSD", t * 100_000, [(1.1, b)], [(1.10002, a)])
        for t, (b, a) in enumerate(zip(bid, ask, strict=True))
    ]
    flat = [5.0] * 101 + [5.01]
    rows += bid_size_rows("ZZTEST", flat)
    out = temporal(frame(rows))
    eur = out[out["symbol"] == "EURUSD"].reset_index(drop=True)
    assert eur["large_bid"][:100].isna().all()  # fewer than 100 previous rows
    # Rows 0..99 alternate 1 and 3: mean 2, std_s = sqrt(100 * 1 / 99) ~ 1.00504;
    # the threshold is 2 + 2 * 1.00504 ~ 4.01008 (strictly greater).
    threshold = 2.0 + 2.0 * math.sqrt(100.0 / 99.0)
    assert 4.0 < threshold < 4.02
    assert eur.loc[100, "large_bid"] == 1.0
    assert eur.loc[100, "large_ask"] == 0.0
    assert is_null(eur.loc[101, "large_bid"])  # the current size is NULL
    assert is_null(eur.loc[102, "large_bid"])  # a NULL among the previous 100
    assert eur.loc[101, "large_ask"] == 0.0
    zz = out[out["symbol"] == "ZZTEST"].reset_index(drop=True)
    assert zz.loc[100, "large_bid"] == 0.0  # 5 > 5 + 2 * 0 is false
    assert zz.loc[101, "large_bid"] == 1.0  # 5.01 > 5


def test_size_clustering() -> None:
    rows = [
        snapshot(
            "ZZTEST",
            0,
            [(100.0, 1.0), (99.99, 2.5), (99.98, 0.0), (NAN, 3.0), (99.96, NAN)],
            [(100.02, 4.0), (100.03, 0.25), (100.04, 2.0000000001), (100.05, 2.1)],
        ),
        snapshot("ZZTEST", 100_000, [(100.0, 0.0)], [(100.02, 0.0)]),
    ]
    got = temporal(frame(rows))["size_clustering"].tolist()
    # Present: bid 1, 2.5; ask 4, 0.25, 2.0000000001, 2.1 (size 0, a NULL price and a NULL
    # size do not count); whole numbers within 1e-9: 1, 4, 2.0000000001.
    assert got[0] == approx(3 / 6)
    assert is_null(got[1])  # no level present


def test_price_and_imbalance_momentum_use_row_t_minus_n_as_is() -> None:
    rows = []
    for t in range(12):
        bid = round(100.00 + 0.01 * (t // 2), 2)
        bids = [(bid, 2.0), (round(bid - 0.01, 2), 1.0 + t)]
        asks = [(round(bid + 0.02, 2), 3.0)] + ([(round(bid + 0.03, 2), 4.0)] if t % 3 else [])
        if t == 1:
            bids[0] = (NAN, 2.0)  # NULL mid on row 1 (size still counts 0: NULL price)
        rows.append(snapshot("ZZTEST", t * 100_000, bids, asks))
    out = temporal(frame(rows))
    pm = out["price_momentum_10"].tolist()
    assert all(is_null(v) for v in pm[:10])
    mid0 = (100.00 + 100.02) / 2
    mid10 = (100.05 + 100.07) / 2
    assert pm[10] == pytest.approx(math.log(mid10 / mid0), rel=1e-9)
    assert is_null(pm[11])  # row 1's mid is NULL: no reaching back (T3)
    im = out["imbalance_momentum_10"].tolist()
    # OBI_5 (A6, T4): row 0: bids 2 + 1, asks 3 (level 2 missing); row 10: bids 2 + 11,
    # asks 3 + 4; row 1: bids 0 + 2 (level 1 has no price), asks 3 + 4; row 11: 2 + 12, 3 + 4.
    obi = {0: (3 - 3) / 6, 10: (13 - 7) / 20, 1: (2 - 7) / 9, 11: (14 - 7) / 21}
    assert im[10] == approx(obi[10] - obi[0])
    assert im[11] == approx(obi[11] - obi[1])


# ---------------------------------------------------------------------------
# The window-edge data set


def test_window_edge_snapshots_shape(edge: pd.DataFrame) -> None:
    assert list(edge.columns) == list(INPUT_COLUMNS)
    assert str(edge["ts"].dtype) == "datetime64[us, UTC]"
    assert all(edge[c].dtype == np.float64 for c in INPUT_COLUMNS[2:])
    counts = edge["symbol"].value_counts()
    assert set(counts.index) == {"EURUSD", "ZZTEST"}
    assert (counts.between(1400, 1600)).all()
    assert not edge.duplicated(["symbol", "ts"]).any()
    switches = int((edge["symbol"] != edge["symbol"].shift()).sum()) - 1
    assert switches > 1000  # interleaved in time
    pd.testing.assert_frame_equal(edge, window_edge_snapshots())  # deterministic


@pytest.mark.parametrize(("symbol", "decimals"), [("EURUSD", 5), ("ZZTEST", 2)])
def test_window_edge_snapshots_cover_the_edge_cases(
    edge: pd.DataFrame, symbol: str, decimals: int
) -> None:
    g = edge[edge["symbol"] == symbol].reset_index(drop=True)
    gaps = g["ts"].diff().dropna()
    assert (gaps > pd.Timedelta(minutes=5)).sum() >= 2
    assert ((gaps >= pd.Timedelta(seconds=2)) & (gaps <= pd.Timedelta(seconds=10))).any()
    for w in (10, 30, 60, 300):  # a row exactly at ts - W
        assert (gaps == pd.Timedelta(seconds=w)).any()
    assert gaps.median() == pd.Timedelta(milliseconds=100)
    levels = g[list(INPUT_COLUMNS[2:])]
    # A flat stretch: 50+ consecutive unchanged books.
    same = levels.eq(levels.shift()) | (levels.isna() & levels.shift().isna())
    unchanged = same.all(axis=1).to_numpy()
    longest, run = 0, 0
    for flag in unchanged:
        run = run + 1 if flag else 0
        longest = max(longest, run)
    assert longest >= 50
    # Prices on the tick grid.
    prices = levels[[c for c in levels.columns if "price" in c]].to_numpy()
    ticks = prices[~np.isnan(prices)] * 10**decimals
    assert np.abs(ticks - np.round(ticks)).max() < 1e-6
    b1, a1 = g["bid_price_1"], g["ask_price_1"]
    assert (b1 > a1).any() and (b1 == a1).any()  # crossed, locked
    assert b1.isna().any() or a1.isna().any()
    assert g["bid_size_1"].isna().any() or g["ask_size_1"].isna().any()
    assert ((g["bid_size_1"] == 0) | (g["ask_size_1"] == 0)).any()
    assert g["bid_price_10"].isna().any() and g["ask_price_10"].isna().any()
    for side in ("bid", "ask"):  # repeated prices across levels (one side at least)
        if (g[f"{side}_price_1"] == g[f"{side}_price_2"]).any():
            break
    else:
        pytest.fail("no repeated price across levels")
    mid = (b1 + a1) / 2
    moves = (mid.diff().abs() * 10**decimals).round()
    assert (moves >= 2).any()


def test_oracles_match_a_literal_row_by_row_reading(
    edge: pd.DataFrame, edge_out: dict[str, pd.DataFrame]
) -> None:
    naive = naive_families(edge)
    for name in FAMILIES:
        assert mismatches(naive[name], edge_out[name]) == [], name


# ---------------------------------------------------------------------------
# Timing on 200k rows (reported, not asserted)


def test_families_complete_on_200k_rows(capsys: pytest.CaptureFixture[str]) -> None:
    snaps = synthetic_snapshots(200_000)
    timings = {}
    for name, fn in FAMILIES.items():
        start = time.perf_counter()
        out = fn(snaps)
        timings[name] = time.perf_counter() - start
        assert len(out) == len(snaps)
    with capsys.disabled():
        print("\n200k rows: " + ", ".join(f"{k} {v:.2f} s" for k, v in timings.items()))


# ---------------------------------------------------------------------------
# A literal, row-by-row reading of the definitions (slow; for the cross-check only)


def _flow_case(p: float, q: float, pp: float, qp: float, ask: bool) -> float:
    """B1 case table: ΔW on the bid side, ΔV on the ask side (mirrored)."""
    better = p < pp if ask else p > pp
    if better:
        return q
    if p == pp:
        return q - qp
    return -qp


def naive_families(snaps: pd.DataFrame) -> dict[str, pd.DataFrame]:
    out: dict[str, list[dict]] = {name: [] for name in FAMILIES}
    ordered = snaps.sort_values(["symbol", "ts"]).reset_index(drop=True)
    for _, g in ordered.groupby("symbol", sort=True):
        recs = g.to_dict("records")
        n = len(recs)
        ts = [
            int((r["ts"] - pd.Timestamp(0, tz="UTC")) // pd.Timedelta(microseconds=1)) for r in recs
        ]

        def f(r: dict, side: str, kind: str, i: int) -> float:
            return float(r[f"{side}_{kind}_{i}"])

        def present(r: dict, side: str, i: int) -> bool:
            return not (math.isnan(f(r, side, "price", i)) or math.isnan(f(r, side, "size", i)))

        # e_n (B1, T7) and e^m_n (B4).
        e = [NAN] * n
        em = [[NAN] * 5 for _ in range(n)]
        for t in range(1, n):
            cur, prev = recs[t], recs[t - 1]
            vals = [
                f(r, s, k, 1)
                for r in (cur, prev)
                for s in ("bid", "ask")
                for k in ("price", "size")
            ]
            if not any(math.isnan(v) for v in vals):
                e[t] = _flow_case(
                    f(cur, "bid", "price", 1),
                    f(cur, "bid", "size", 1),
                    f(prev, "bid", "price", 1),
                    f(prev, "bid", "size", 1),
                    False,
                ) - _flow_case(
                    f(cur, "ask", "price", 1),
                    f(cur, "ask", "size", 1),
                    f(prev, "ask", "price", 1),
                    f(prev, "ask", "size", 1),
                    True,
                )
            for m in range(1, 6):

                def level(r: dict, side: str, m: int = m) -> tuple[float, float]:
                    if present(r, side, m):
                        return f(r, side, "price", m), f(r, side, "size", m)
                    return (-math.inf if side == "bid" else math.inf), 0.0

                (bp, bq), (bpp, bqp) = level(cur, "bid"), level(prev, "bid")
                (ap, aq), (app, aqp) = level(cur, "ask"), level(prev, "ask")
                em[t][m - 1] = _flow_case(bp, bq, bpp, bqp, False) - _flow_case(
                    ap, aq, app, aqp, True
                )

        # ofi
        e_arr, em_arr = np.array(e), np.array(em)
        depth_arr = np.array([(f(r, "bid", "size", 1) + f(r, "ask", "size", 1)) / 2 for r in recs])
        for t in range(n):
            row: dict[str, object] = {
                "symbol": recs[t]["symbol"],
                "ts": recs[t]["ts"],
                "ofi_event": e[t],
            }
            for name in WINDOWS:
                # the rows with ts_t - W < ts_j <= ts_t
                lo = bisect.bisect_right(ts, ts[t] - WINDOW_US[name], 0, t + 1)
                win_e = e_arr[lo : t + 1]
                has_e = ~np.isnan(win_e)
                total = float(win_e[has_e].sum())
                depth = depth_arr[lo : t + 1][has_e]
                ad = float(depth.mean()) if len(depth) else NAN
                row[f"ofi_{name}"] = total
                row[f"ofi_normalized_{name}"] = total / ad if len(depth) and ad != 0 else NAN
                win_em = em_arr[max(lo, 1) : t + 1]
                mlofi = [float(win_em[:, m].sum()) for m in range(5)]
                row[f"ofi_weighted_{name}"] = sum(mlofi[m] / (m + 1) for m in range(5)) / H5
            out["ofi"].append(row)

        # book_pressure
        for r in recs:
            sz = {
                s: [f(r, s, "size", i) if present(r, s, i) else 0.0 for i in range(1, 11)]
                for s in ("bid", "ask")
            }
            db, da = sum(sz["bid"]), sum(sz["ask"])
            wb = sum(q / i for i, q in enumerate(sz["bid"], start=1))
            wa = sum(q / i for i, q in enumerate(sz["ask"], start=1))
            bp = db / (db + da) if db + da else NAN
            bw = wb / (wb + wa) if wb + wa else NAN
            out["book_pressure"].append(
                {
                    "symbol": r["symbol"],
                    "ts": r["ts"],
                    "bid_pressure": bp,
                    "ask_pressure": 1 - bp,
                    "bid_pressure_weighted": bw,
                    "ask_pressure_weighted": 1 - bw,
                    "pressure_imbalance": bp - (1 - bp),
                    "pressure_imbalance_weighted": bw - (1 - bw),
                    "book_depth_asymmetry": math.log(db) - math.log(da) if db and da else NAN,
                }
            )

        # flow
        emas: dict[int, list[tuple[float, float]]] = {}
        for span in (10, 30, 100, 300):
            a = 2.0 / (span + 1)
            state: tuple[float, float] | None = None
            steps = 0
            seq = []
            for x in e:
                if state is None:
                    if not math.isnan(x):
                        state = (x, abs(x))
                else:
                    steps += 1
                    if not math.isnan(x):
                        w = (1 - a) ** steps
                        state = (
                            (w * state[0] + a * x) / (w + a),
                            (w * state[1] + a * abs(x)) / (w + a),
                        )
                        steps = 0
                seq.append(state if state is not None else (NAN, NAN))
            emas[span] = seq
        events: list[float] = []
        matches: list[int] = []
        persistence = NAN
        for t in range(n):
            row = {"symbol": recs[t]["symbol"], "ts": recs[t]["ts"]}
            for span in (10, 30, 100, 300):
                win = e[t - span + 1 : t + 1] if t - span + 1 >= 0 else [NAN]
                den = sum(abs(x) for x in win)
                ok = not any(math.isnan(x) for x in win) and den != 0
                row[f"flow_imbalance_{span}"] = sum(win) / den if ok else NAN
            for span in (10, 30, 100, 300):
                num, den = emas[span][t]
                row[f"flow_imbalance_ema_{span}"] = num / den if den == den and den else NAN
            if t >= 100:
                sums = [float(em_arr[t - 99 : t + 1, m].sum()) for m in range(5)]
                den = sum(abs(s) for s in sums)
            for k in range(5):
                ok = t >= 100 and den != 0
                row[f"level_{k + 1}_flow_ratio"] = sums[k] / den if ok else NAN
            if not math.isnan(e[t]) and e[t] != 0:
                if events:
                    matches.append(int(math.copysign(1, e[t]) == math.copysign(1, events[-1])))
                events.append(e[t])
                persistence = sum(matches[-100:]) / 100 if len(matches) >= 100 else NAN
            row["flow_persistence"] = persistence
            out["flow"].append(row)

        # temporal
        fields = [
            f"{s}_{k}_{i}" for s in ("bid", "ask") for k in ("price", "size") for i in range(1, 11)
        ]
        updates = [NAN] * n
        for t in range(1, n):
            a_, b_ = recs[t], recs[t - 1]
            updates[t] = float(
                sum(
                    1
                    for c in fields
                    if not (math.isnan(a_[c]) and math.isnan(b_[c])) and a_[c] != b_[c]
                )
            )
        mids = [(f(r, "bid", "price", 1) + f(r, "ask", "price", 1)) / 2 for r in recs]
        obi5 = []
        for r in recs:
            db = sum(f(r, "bid", "size", i) for i in range(1, 6) if present(r, "bid", i))
            da = sum(f(r, "ask", "size", i) for i in range(1, 6) if present(r, "ask", i))
            obi5.append((db - da) / (db + da) if db + da else NAN)
        for t, r in enumerate(recs):
            row = {"symbol": r["symbol"], "ts": r["ts"], "book_updates": updates[t]}
            for span in (50, 100, 300):
                win = updates[t - span + 1 : t + 1] if t - span + 1 >= 0 else [NAN]
                secs = (ts[t] - ts[t - span + 1]) / 1e6 if t - span + 1 >= 0 else NAN
                ok = not any(math.isnan(x) for x in win) and secs != 0
                row[f"update_intensity_{span}"] = sum(win) / secs if ok else NAN
            for side in ("bid", "ask"):
                x = f(r, side, "size", 1)
                prev = [f(recs[j], side, "size", 1) for j in range(t - 100, t)] if t >= 100 else []
                if len(prev) < 100 or math.isnan(x) or any(math.isnan(v) for v in prev):
                    row[f"large_{side}"] = NAN
                else:
                    limit = np.mean(prev) + 2 * np.std(prev, ddof=1)
                    row[f"large_{side}"] = 1.0 if x > limit else 0.0
            slots = [
                (f(r, s, "price", i), f(r, s, "size", i))
                for s in ("bid", "ask")
                for i in range(1, 11)
            ]
            sizes = [q for p, q in slots if not math.isnan(p) and q > 0]
            whole = [q for q in sizes if abs(q - round(q)) <= 1e-9]
            row["size_clustering"] = len(whole) / len(sizes) if sizes else NAN
            for span in (10, 30, 100):
                m0 = mids[t - span] if t >= span else NAN
                ok = m0 > 0 and mids[t] > 0
                row[f"price_momentum_{span}"] = math.log(mids[t] / m0) if ok else NAN
            for span in (10, 30, 100):
                row[f"imbalance_momentum_{span}"] = obi5[t] - obi5[t - span] if t >= span else NAN
            out["temporal"].append(row)

    return {
        name: pd.DataFrame(rows_)[EXPECTED_COLUMNS[name]].astype(
            {c: "float64" for c in EXPECTED_COLUMNS[name][2:]}
        )
        for name, rows_ in out.items()
    }
