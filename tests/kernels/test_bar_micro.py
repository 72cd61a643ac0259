"""The `microstructure_bars` kernel (python_udfs/tf_bar_micro.py, FEATURE_DEFINITIONS K8) against
its oracle (tests/oracle/bar_micro.py): full builds on the edge-case bars and a second seed,
VPIN with the bucket volume from the data and from the parameter (exact boundaries, bars that
complete many buckets, fractional volumes), incremental refreshes at cuts inside gaps, flat
stretches and NULL-volume stretches and around the 1440-bar warm-up, and appends."""

from __future__ import annotations

import re
from fractions import Fraction
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import tf_bar_micro
import tf_bars
from tf_common import InputError

from tests.kernels import bar_harness as harness
from tests.oracle.bar_datasets import SCALES, kernel_inputs, symbol_bars
from tests.oracle.bar_micro import ORACLES
from tests.oracle.compare import mismatches

MODEL = "microstructure_bars"
ROOT = Path(__file__).resolve().parents[2]
WARMUP = int(
    re.search(r"warmup_bars=(\d+)", (ROOT / "models/bar/microstructure_bars.sql").read_text())[1]
)


def _oracle(bars: pd.DataFrame, **params: object) -> pd.DataFrame:
    return ORACLES[MODEL](bars, float(bars["close"].iloc[0]), **params)


def _clean_volume(bars: pd.DataFrame) -> pd.DataFrame:
    """The bars with every NULL volume replaced by 7, so that VPIN from the first day's volume
    has windows of 50 buckets without a NULL."""
    bars = bars.copy()
    bars["volume"] = bars["volume"].fillna(7.0)
    return bars


def _gapped(bars: pd.DataFrame, seed: int = 3) -> pd.DataFrame:
    """The bars with some opening jumps: every bar from a chosen one on moves up or down by more
    than the bar's range, so L_t > C_(t-1) or H_t < C_(t-1) there (Corwin-Schultz's gap rule)."""
    bars = bars.copy()
    rng = np.random.default_rng(seed)
    level = float(bars["close"].iloc[0])
    for at in rng.integers(5, len(bars) - 5, size=max(2, len(bars) // 150)):
        jump = float(rng.choice([-1.0, 1.0])) * level * 0.002
        for c in ("open", "high", "low", "close"):
            bars.loc[at:, c] = bars.loc[at:, c] + jump
    return bars


def _cuts(bars: pd.DataFrame) -> list[int]:
    """0, 1, the last bars, cuts around the warm-up (fresh recomputation up to WARMUP, state from
    WARMUP + 1 on), inside the flat stretch, the NULL-volume stretch and a gap, at zero and NULL
    volumes, and at a random spread."""
    n = len(bars)
    cuts = {0, 1, n // 2, n - 2, n - 1, WARMUP - 1, WARMUP, WARMUP + 1, WARMUP + 2}
    if n > 600:
        flat = n // 3
        cuts |= {flat + 50, flat + 119, flat + 300, flat + 320, flat + 339}
        minutes = bars["ts"].diff().dt.total_seconds().to_numpy() / 60
        gaps = np.flatnonzero(minutes > 5)
        cuts |= {int(g) for g in gaps[:2]} | {int(g) + 1 for g in gaps[-2:]}
        volume = bars["volume"].to_numpy()
        cuts |= {int(i) for i in np.flatnonzero(volume == 0)[-2:]}
        cuts |= {int(i) for i in np.flatnonzero(np.isnan(volume))[-2:]}
        cuts |= {int(i) for i in np.random.default_rng(5).integers(WARMUP, n, size=4)}
    return sorted(c for c in cuts if 0 <= c < n)


def test_model_columns_match_the_yaml_and_the_sql() -> None:
    yml = (ROOT / "models/bar/microstructure_bars.yml").read_text()
    names = re.findall(r"^      - name: (\w+)$", yml, flags=re.M)
    assert names[:2] == ["symbol", "ts"]
    assert names[2:] == tf_bar_micro.MODELS[MODEL] == tf_bars.columns(MODEL)
    features = [c for c in names[2:] if not c.startswith("state_")]
    assert len(features) >= 40
    assert WARMUP == tf_bar_micro.WARMUP_BARS


@pytest.mark.parametrize("symbol", list(SCALES))
def test_full_build_equals_oracle(symbol: str) -> None:
    bars = symbol_bars(symbol)
    harness.assert_matches(harness.full(MODEL, bars), _oracle(bars))


@pytest.mark.parametrize("symbol", list(SCALES))
def test_full_build_equals_oracle_second_seed(symbol: str) -> None:
    bars = symbol_bars(symbol, seed=11)
    harness.assert_matches(harness.full(MODEL, bars), _oracle(bars))


@pytest.mark.parametrize("symbol", ["EURUSD", "USDJPY"])
def test_vpin_from_the_first_day_volume(symbol: str) -> None:
    bars = _clean_volume(symbol_bars(symbol, seed=13, n=4500))
    got, want = harness.full(MODEL, bars), _oracle(bars)
    assert want["vpin"].notna().sum() > 1000
    assert want["vpin"].iloc[: tf_bar_micro.VPIN_FIRST_BARS].isna().all()
    harness.assert_matches(got, want)


@pytest.mark.parametrize("bucket_volume", [500.0, 100.0, 3.0, 137.25])
def test_vpin_with_a_given_bucket_volume(bucket_volume: float) -> None:
    """100 with whole volumes: totals meet bucket boundaries exactly; 3: one bar completes up to
    133 buckets, more than a window holds."""
    bars = symbol_bars("EURUSD", seed=7)
    if bucket_volume == 100.0:
        cum = np.cumsum(np.nan_to_num(bars["volume"].to_numpy()))
        assert np.sum(cum % 100 == 0) >= 10
    got, want = (
        harness.full(MODEL, bars, vpin_bucket_volume=bucket_volume),
        _oracle(bars, vpin_bucket_volume=bucket_volume),
    )
    assert want["vpin"].notna().sum() > 100
    harness.assert_matches(got, want)


def test_fractional_volumes_are_exact() -> None:
    """Volumes like 12.3 (no short binary form) take the exact Python-integer path; the state
    holds the cumulative volume in several float8 parts."""
    bars = _clean_volume(symbol_bars("NZDUSD", seed=17, n=3600))
    bars["volume"] = np.round(bars["volume"] * 0.1 + 0.013, 3)
    got, want = harness.full(MODEL, bars), _oracle(bars)
    assert (want["state_vpin_cum_volume_2"] != 0).any()
    assert want["vpin"].notna().sum() > 100
    harness.assert_matches(got, want)
    got, want = (
        harness.full(MODEL, bars, vpin_bucket_volume=12.3),
        _oracle(bars, vpin_bucket_volume=12.3),
    )
    harness.assert_matches(got, want)
    harness.assert_incremental_equals_full(
        MODEL, bars, WARMUP, [WARMUP + 1, 2000, 3599], vpin_bucket_volume=12.3
    )


def test_corwin_schultz_gap_adjustment() -> None:
    bars = _gapped(symbol_bars("USDJPY", seed=19))
    high, low, close = (bars[c].to_numpy() for c in ("high", "low", "close"))
    assert np.sum(low[1:] > close[:-1]) >= 3 and np.sum(high[1:] < close[:-1]) >= 3
    harness.assert_matches(harness.full(MODEL, bars), _oracle(bars))


@pytest.mark.parametrize("symbol", list(SCALES))
def test_incremental_equals_full(symbol: str) -> None:
    bars = symbol_bars(symbol)
    harness.assert_incremental_equals_full(MODEL, bars, WARMUP, _cuts(bars))


@pytest.mark.parametrize("params", [{}, {"vpin_bucket_volume": 100.0}, {"vpin_bucket_volume": 3.0}])
def test_incremental_equals_full_with_vpin(params: dict) -> None:
    bars = _clean_volume(symbol_bars("EURUSD", seed=13, n=4500))
    harness.assert_incremental_equals_full(MODEL, bars, WARMUP, _cuts(bars), **params)


def test_incremental_after_a_long_flat_stretch() -> None:
    """More unchanged closes than the warm-up: the tick rule's sign inside the warm-up comes
    from the stored row (flipping it there changes kyle_lambda and tick_imbalance)."""
    bars = _clean_volume(symbol_bars("EURUSD", seed=23, n=4000))
    for c in ("open", "high", "low", "close"):
        bars.loc[1000:2700, c] = bars.loc[999, "close"]
    whole = harness.full(MODEL, bars)
    harness.assert_matches(whole, _oracle(bars))
    harness.assert_incremental_equals_full(
        MODEL, bars, WARMUP, [2500, 2701, 2702, 2750, 3000, 3500]
    )
    flipped = whole.copy()
    flipped.loc[2749, "state_tick_sign_lag1439"] *= -1
    got = harness.incremental(MODEL, bars, 2750, WARMUP, flipped)
    problems = mismatches(got, whole.iloc[2750:].reset_index(drop=True))
    assert any(p.startswith("kyle_lambda_w1440") for p in problems)
    assert any(p.startswith("tick_imbalance_w1440") for p in problems)


@pytest.mark.parametrize("params", [{}, {"vpin_bucket_volume": 100.0}])
def test_append_never_changes_the_past(params: dict) -> None:
    bars = _clean_volume(symbol_bars("USDJPY", seed=13, n=4000))
    harness.assert_append_never_changes_the_past(
        MODEL, bars, [1, 40, 1439, 1440, 2100, 3999], **params
    )


def test_flat_windows_give_exact_values() -> None:
    """The 120-bar flat stretch: zero returns and ranges sum to exactly 0 in every window."""
    bars = symbol_bars("EURUSD")
    flat = len(bars) // 3
    row = harness.full(MODEL, bars).iloc[flat + 119]
    for w in (15, 30, 60):
        assert row[f"amihud_w{w}"] == 0.0
        assert row[f"kyle_lambda_w{w}"] == 0.0
        assert row[f"roll_spread_w{w}"] == 0.0
        assert row[f"cs_spread_w{w}"] == 0.0
        assert row[f"ar_spread_w{w}"] == 0.0


def test_vpin_state_is_exact() -> None:
    """The stored cumulative and bucket totals are exact sums of the volumes."""
    bars = _clean_volume(symbol_bars("EURUSD", seed=13, n=2000))
    bars["volume"] = bars["volume"] * 0.1
    got = harness.full(MODEL, bars)
    volume = bars["volume"].to_numpy()
    for t in (0, 1439, 1999):
        parts = [Fraction(got[f"state_vpin_cum_volume_{k}"].iloc[t]) for k in (1, 2, 3)]
        assert sum(parts) == sum(Fraction(v) for v in volume[: t + 1])
    total = sum(Fraction(got[f"state_vpin_bucket_total_{k}"].iloc[1439]) for k in (1, 2, 3))
    assert total == sum(Fraction(v) for v in volume[:1440])
    assert got["state_vpin_bucket_total_1"].iloc[:1439].isna().all()


def test_vpin_continues_from_the_stored_buckets() -> None:
    """A refresh takes the buckets from the stored row: a different stored buy volume of the
    bucket being filled changes the next VPIN values."""
    bars = _clean_volume(symbol_bars("EURUSD", seed=13, n=4500))
    whole = harness.full(MODEL, bars)
    cut = 3000
    changed = whole.copy()
    changed.loc[cut - 1, "state_vpin_fill_buy"] += 1.0
    got = harness.incremental(MODEL, bars, cut, WARMUP, changed)
    assert any(
        p.startswith("vpin:") for p in mismatches(got, whole.iloc[cut:].reset_index(drop=True))
    )


def test_refresh_needs_the_stored_row() -> None:
    bars = symbol_bars("EURUSD")
    inputs = kernel_inputs(bars)
    with pytest.raises(InputError, match=r"params\.prev"):
        tf_bars.compute(MODEL, inputs, {"first_close": 1.0, "start": 5})


def test_changed_bucket_volume_is_refused() -> None:
    bars = symbol_bars("EURUSD")
    whole = harness.full(MODEL, bars, vpin_bucket_volume=100.0)
    with pytest.raises(InputError, match="vpin_bucket_volume differs"):
        harness.incremental(MODEL, bars, 2000, WARMUP, whole, vpin_bucket_volume=200.0)
