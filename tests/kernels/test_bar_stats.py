"""python_udfs/tf_bar_stats.py (K1 bollinger_rate/bqx, K2 statistics_rate/bqx) against the
oracles of tests/oracle/bar_stats.py: full builds, incremental refreshes from the models'
warm-up (cuts at 0, 1, the warm-up length, gaps, the flat stretch and the end), appends, and the
warm-up being the least that works."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import tf_bar_stats
import tf_bars
from tf_common import InputError

from tests.kernels import bar_harness as harness
from tests.oracle import bar_datasets
from tests.oracle.bar_stats import ORACLES
from tests.oracle.compare import mismatches

# the warm-up bars of models/bar/<model>.sql: the longest window (75 bars) reaches 74 bars back;
# a bqx model's window starts with bqx_75 74 bars back, which reads the close 75 bars before it
WARMUP_BARS = {
    "bollinger_rate": 74,
    "statistics_rate": 74,
    "bollinger_bqx": 149,
    "statistics_bqx": 149,
}

MODELS = tuple(ORACLES)


EDGE_CASES = harness.symbols(bar_datasets.edge_case_bars())
OTHER_SEEDS = [
    bar_datasets.symbol_bars("EURUSD", seed=11),
    bar_datasets.symbol_bars("USDJPY", seed=23, n=1500),
]
DATASETS = [*EDGE_CASES, *OTHER_SEEDS]
IDS = [f"{b['symbol'].iloc[0]}@{b['ts'].iloc[0]:%Y-%m-%d}-{len(b)}" for b in DATASETS]


def _cuts(bars: pd.DataFrame, warmup: int) -> list[int]:
    """Where a refresh may start: 0, 1, 2, around the warm-up length and twice it, at and right
    after the first gaps (> 5 minutes), inside and just after the flat stretch, the end."""
    n = len(bars)
    cuts = {0, 1, 2, warmup - 1, warmup, warmup + 1, 2 * warmup, n - 2, n - 1}
    minutes = bars["ts"].diff() / pd.Timedelta(minutes=1)
    for position in np.flatnonzero((minutes > 5).to_numpy())[:3]:
        cuts |= {int(position), int(position) + 1}
    flat = harness.flat_stretch(bars)
    if flat is not None:
        cuts |= {flat + 10, flat + 100, flat + 125, flat + 160, flat + 200}
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
@pytest.mark.parametrize("bars", [EDGE_CASES[0], EDGE_CASES[2]], ids=[IDS[0], IDS[2]])
def test_append_never_changes_the_past(model: str, bars: pd.DataFrame) -> None:
    n = len(bars)
    cuts = sorted(c for c in {1, 20, 30, 90, 200, n // 3 + 60, n - 1} if 0 < c < n)
    harness.assert_append_never_changes_the_past(model, bars, cuts)


@pytest.mark.parametrize("model", MODELS)
def test_the_warmup_is_the_least_that_works(model: str) -> None:
    """One bar less of warm-up loses the longest window on the first row written."""
    bars = EDGE_CASES[0]
    warmup = WARMUP_BARS[model]
    cut = 3 * warmup
    whole = harness.full(model, bars)
    short = harness.incremental(model, bars, cut, warmup - 1, whole)
    assert mismatches(short, whole.iloc[cut:].reset_index(drop=True))


@pytest.mark.parametrize("model", MODELS)
def test_the_flat_stretch_follows_the_null_rules(model: str) -> None:
    """Inside the 121 equal closes of the flat stretch (the bar before it included): sigma and
    std_s are exactly 0, so %B, z-score, skew and kurt are NULL and widths and std_s are 0."""
    bars = EDGE_CASES[0]
    flat = harness.flat_stretch(bars)
    assert flat is not None
    result = harness.full(model, bars)
    for n in tf_bar_stats.BQX_WINDOWS:
        # rows whose window lies inside the flat run: for bqx_N, whose closes both lie in it
        lookback = n - 1 if model.endswith("_rate") else 2 * n - 1
        rows = slice(flat - 1 + lookback, flat + 120)
        for column in tf_bars.columns(model):
            if not column.endswith(f"_w{n}"):
                continue
            values = result[column].iloc[rows].to_numpy()
            if column.startswith(("bb_width", "stat_std")):
                assert (values == 0).all(), column
            elif column.startswith(("bb_pctb", "stat_zscore", "stat_skew", "stat_kurt")):
                assert np.isnan(values).all(), column


@pytest.mark.parametrize("model", ["bollinger_rate", "statistics_rate"])
def test_the_rate_index_needs_first_close(model: str) -> None:
    inputs = bar_datasets.kernel_inputs(EDGE_CASES[3])
    with pytest.raises(InputError, match="first_close"):
        tf_bars.compute(model, inputs, {})
