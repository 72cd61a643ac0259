"""python_udfs/tf_bar_technical.py (K3 technical_rate, technical_bqx) against the oracles of
tests/oracle/bar_technical.py (TA-Lib 0.8.2 itself): full builds, incremental refreshes from the
models' warm-up (cuts at 0, 1, around the warm-up length, gaps, the flat stretch, the NULL-volume
stretch and the end), appends, and the NULL rules of the flat stretch and of mfi_rate."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import tf_bar_technical
import tf_bars
from tf_common import InputError

from tests.kernels import bar_harness as harness
from tests.oracle import bar_datasets
from tests.oracle.bar_technical import ORACLES
from tests.oracle.compare import mismatches

# models/bar/<model>.sql; tf_bar_technical's docstring derives them
WARMUP_BARS = {"technical_rate": 2600, "technical_bqx": 1500}

MODELS = tuple(ORACLES)


EDGE_CASES = harness.symbols(bar_datasets.edge_case_bars())
OTHER_SEEDS = [
    bar_datasets.symbol_bars("EURUSD", seed=11),
    # long enough that cuts past the rate warm-up fall in the flat and NULL-volume stretches
    bar_datasets.symbol_bars("USDJPY", seed=23, n=9000),
]
DATASETS = [*EDGE_CASES, *OTHER_SEEDS]
IDS = [f"{b['symbol'].iloc[0]}@{b['ts'].iloc[0]:%Y-%m-%d}-{len(b)}" for b in DATASETS]


def _cuts(bars: pd.DataFrame, warmup: int) -> list[int]:
    """0, 1, 2, around the warm-up length, at and right after the first gaps (> 5 minutes),
    inside and after the flat stretch and the NULL-volume stretch, near the end."""
    n = len(bars)
    cuts = {0, 1, 2, warmup - 1, warmup, warmup + 1, warmup + 500, n - 2, n - 1}
    minutes = bars["ts"].diff() / pd.Timedelta(minutes=1)
    gaps = np.flatnonzero((minutes > 5).to_numpy())
    for position in [*gaps[:2], *gaps[gaps > warmup][:2]]:
        cuts |= {int(position), int(position) + 1}
    flat = harness.flat_stretch(bars)
    if flat is not None:
        cuts |= {flat + 10, flat + 100, flat + 125, flat + 160, flat + 310, flat + 345}
    return sorted(c for c in cuts if 0 <= c < n)


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("bars", DATASETS, ids=IDS)
def test_full_build_matches_the_oracle(model: str, bars: pd.DataFrame) -> None:
    harness.assert_matches(
        harness.full(model, bars), ORACLES[model](bars, harness.first_close(bars))
    )


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("bars", DATASETS, ids=IDS)
def test_incremental_equals_full(model: str, bars: pd.DataFrame) -> None:
    warmup = WARMUP_BARS[model]
    harness.assert_incremental_equals_full(model, bars, warmup, _cuts(bars, warmup))


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("bars", [EDGE_CASES[0], EDGE_CASES[3]], ids=[IDS[0], IDS[3]])
def test_append_never_changes_the_past(model: str, bars: pd.DataFrame) -> None:
    n = len(bars)
    cuts = sorted(
        c for c in {1, 14, 20, 34, 90, 200, n // 3 + 60, n // 3 + 320, n - 1} if 0 < c < n
    )
    harness.assert_append_never_changes_the_past(model, bars, cuts)


@pytest.mark.parametrize("model", MODELS)
def test_a_short_warmup_is_caught(model: str) -> None:
    """The incremental comparison has teeth: a warm-up of a tenth of the model's leaves the
    recursions' seeds visible beyond 1e-9."""
    bars = OTHER_SEEDS[1]
    warmup = WARMUP_BARS[model]
    cut = warmup + 1000
    whole = harness.full(model, bars)
    short = harness.incremental(model, bars, cut, warmup // 10, whole)
    assert mismatches(short, whole.iloc[cut:].reset_index(drop=True))


def test_the_flat_stretch() -> None:
    """O = H = L = C on the 120 bars of the flat stretch (and the close of the bar before):
    a window inside it has CCI 0 (exact arithmetic, not TA-Lib's noise), WILLR 0 and slow
    %K/%D 0 (HH = LL), and ATR decays by 13/14 a bar (TR = 0)."""
    bars = EDGE_CASES[0]
    flat = harness.flat_stretch(bars)
    assert flat is not None
    result = harness.full("technical_rate", bars)
    end = flat + 120
    for n in tf_bar_technical.BQX_WINDOWS:
        inside = slice(flat + n - 1, end)
        assert (result[f"cci_rate_w{n}"].iloc[inside] == 0).all()
        assert (result[f"willr_rate_w{n}"].iloc[inside] == 0).all()
    for column in ("stoch_k_rate", "stoch_d_rate"):
        assert (result[column].iloc[flat + 8 : end] == 0).all()
    atr = result["atr_rate"].iloc[flat + 1 : end].to_numpy()
    np.testing.assert_allclose(atr[1:] / atr[:-1], 13 / 14, rtol=1e-12)


def test_mfi_nulls_follow_the_volumes() -> None:
    """K3: mfi_rate is NULL exactly where a volume of bars t-13..t is NULL (or t < 14)."""
    bars = EDGE_CASES[0]
    result = harness.full("technical_rate", bars)
    volume_null = bars["volume"].isna().to_numpy()
    expected = np.ones(len(bars), dtype=bool)
    for t in range(14, len(bars)):
        expected[t] = volume_null[t - 13 : t + 1].any()
    assert volume_null.any()
    np.testing.assert_array_equal(result["mfi_rate"].isna().to_numpy(), expected)


def test_bars_without_volume() -> None:
    """Bars from L2 snapshots have no volume: mfi_rate is NULL throughout, the rest as usual."""
    bars = EDGE_CASES[2].assign(volume=np.nan)
    got = harness.full("technical_rate", bars)
    assert got["mfi_rate"].isna().all()
    harness.assert_matches(got, ORACLES["technical_rate"](bars, harness.first_close(bars)))


def test_the_rate_index_needs_first_close() -> None:
    inputs = bar_datasets.kernel_inputs(EDGE_CASES[3])
    with pytest.raises(InputError, match="first_close"):
        tf_bars.compute("technical_rate", inputs, {})


def test_models_and_warmups_agree() -> None:
    assert tf_bar_technical.WARMUP_BARS == WARMUP_BARS
    models = Path(__file__).resolve().parents[2] / "models" / "bar"
    for model, warmup in WARMUP_BARS.items():
        assert f"bar_family_model(warmup_bars={warmup})" in (models / f"{model}.sql").read_text()
    assert {m: len(c) for m, c in tf_bar_technical.MODELS.items()} == {m: 30 for m in MODELS}
