"""The `fibonacci`, `realized_volatility` and `market_regime` bar families (FEATURE_DEFINITIONS
K6, K7, K13; python_udfs/tf_bar_range.py) against the oracle written from K and the models'
YAML (tests/oracle/bar_range.py): the full build on the edge-case bars of every symbol and of a
second seed, incremental refreshes at cuts inside gaps and flat stretches, and appends.

No knife-edge rows are masked: every value here matches at 1e-9 as it is.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import tf_bar_range

from tests.kernels import bar_harness as harness
from tests.oracle.bar_datasets import SCALES, edge_case_bars, symbol_bars
from tests.oracle.bar_range import ORACLES

ROOT = Path(__file__).resolve().parents[2]
MODELS = tuple(ORACLES)
SYMBOLS = tuple(SCALES)
WARMUP = {"fibonacci": 1439, "realized_volatility": 1440, "market_regime": 1679}


def _bars(symbol: str, seed: int = 7) -> pd.DataFrame:
    frame = edge_case_bars(seed=seed, symbols=(symbol,))
    return frame.reset_index(drop=True)


def _cuts(bars: pd.DataFrame, warmup: int) -> list[int]:
    """0, 1, the first bar after a gap of more than 5 minutes, inside the flat stretch, cuts whose
    warm-up starts inside the flat stretch and right after the gap, the middle, near the end."""
    n = len(bars)
    minutes = bars["ts"].diff().dt.total_seconds().to_numpy() / 60
    cuts = {0, 1, n // 2, n - 2, n - 1}
    gaps = np.flatnonzero(minutes > 5)
    if n > 600:
        flat = n // 3  # bar_datasets: bars n//3 .. n//3 + 119 have O = H = L = C
        cuts |= {flat + 50, flat + 119, flat + 50 + warmup, flat + 5 + warmup}
        if gaps.size:
            cuts |= {int(gaps[0]), int(gaps[-1]), int(gaps[0]) + warmup}
    return sorted(c for c in cuts if 0 <= c < n)


def test_models_and_warmups_match_the_sql() -> None:
    assert set(tf_bar_range.MODELS) == set(MODELS)
    assert tf_bar_range.WARMUP_BARS == WARMUP
    for model, warmup in WARMUP.items():
        sql = (ROOT / "models" / "bar" / f"{model}.sql").read_text()
        assert f"bar_family_model(warmup_bars={warmup})" in sql


@pytest.mark.parametrize("symbol", SYMBOLS)
@pytest.mark.parametrize("model", MODELS)
def test_full_build_equals_oracle(model: str, symbol: str) -> None:
    bars = _bars(symbol)
    got = harness.full(model, bars)
    want = ORACLES[model](bars, float(bars["close"].iloc[0]))
    harness.assert_matches(got, want)


@pytest.mark.parametrize("symbol", ["EURUSD", "USDJPY"])
@pytest.mark.parametrize("model", MODELS)
def test_full_build_equals_oracle_second_seed(model: str, symbol: str) -> None:
    bars = _bars(symbol, seed=11)
    got = harness.full(model, bars)
    want = ORACLES[model](bars, float(bars["close"].iloc[0]))
    harness.assert_matches(got, want)


@pytest.mark.parametrize("symbol", SYMBOLS)
@pytest.mark.parametrize("model", MODELS)
def test_incremental_equals_full(model: str, symbol: str) -> None:
    bars = _bars(symbol)
    harness.assert_incremental_equals_full(model, bars, WARMUP[model], _cuts(bars, WARMUP[model]))


@pytest.mark.parametrize("model", MODELS)
def test_append_never_changes_the_past(model: str) -> None:
    bars = _bars("EURUSD")
    n = len(bars)
    harness.assert_append_never_changes_the_past(model, bars, [1, 40, n // 3 + 60, 1500, n - 1])


def test_flat_windows_give_exact_values() -> None:
    """K7 and T15: a window of flat bars gives exactly 0 volatility, ER 0, R^2 0, range position
    0.5 and a NULL slope z-score (not float residue)."""
    bars = _bars("EURUSD")
    flat = len(bars) // 3 + 119  # the last bar of the 120-bar flat stretch
    rv = harness.full("realized_volatility", bars).iloc[flat]
    for estimator in ("close", "parkinson", "garman_klass", "rogers_satchell", "yang_zhang"):
        for n in (15, 30, 60):
            assert rv[f"rvol_{estimator}_w{n}"] == 0.0
    regime = harness.full("market_regime", bars).iloc[flat]
    for n in (15, 30, 60):
        assert regime[f"regime_er_w{n}"] == 0.0
        assert regime[f"regime_r2_w{n}"] == 0.0
        assert regime[f"regime_trend_score_w{n}"] == 0.0
        assert regime[f"regime_range_pos_w{n}"] == 0.5
        assert np.isnan(regime[f"regime_slope_z_w{n}"])
    fib = harness.full("fibonacci", bars).iloc[flat]
    assert fib["fib_direction_w60"] == 1.0  # the current bar holds both Hs and Ls
    assert np.isnan(fib["fib_position_w60"])
    assert fib["fib_bars_since_high_w60"] == 0.0 and fib["fib_bars_since_low_w60"] == 0.0


def test_latest_holder_of_a_repeated_extreme() -> None:
    """K6's tie rule: the latest bar holding Hs (and Ls) decides the direction."""
    bars = symbol_bars("SHORTFX")
    high = np.full(len(bars), 1.2710)
    low = np.full(len(bars), 1.2690)
    high[[2, 30]] = 1.2750  # Hs held twice: bar 30 is the latest
    low[[10, 25]] = 1.2650  # Ls held twice: bar 25 is the latest
    bars = bars.assign(high=high, low=low, open=1.27, close=1.27)
    window = pd.concat([bars] * 2, ignore_index=True)  # 80 bars: the 60-bar window exists
    window["ts"] = pd.date_range("2024-03-04", periods=len(window), freq="min", tz="UTC")
    got = harness.full("fibonacci", window)
    want = ORACLES["fibonacci"](window, 1.27)
    harness.assert_matches(got, want)
    # bar 69, window 10..69: Hs at 30 and 42, Ls at 10, 25, 50 and 65
    assert got.loc[
        69, ["fib_bars_since_high_w60", "fib_bars_since_low_w60", "fib_direction_w60"]
    ].tolist() == [27, 4, -1]
    # bar 79, window 20..79: Hs at 30, 42 and 70, Ls at 25, 50 and 65
    assert got.loc[
        79, ["fib_bars_since_high_w60", "fib_bars_since_low_w60", "fib_direction_w60"]
    ].tolist() == [9, 14, 1]
