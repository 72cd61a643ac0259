"""python_udfs/tf_bar_time.py (K9 lagged_features, K11 time_features) against the oracles of
tests/oracle/bar_time.py: full builds, incremental refreshes from the models' warm-up (cuts at
gaps, day boundaries, flat stretches, the ends) and appends."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tests.kernels import bar_harness as harness
from tests.oracle import bar_datasets
from tests.oracle.bar_time import ORACLES

# the warm-up bars of models/bar/<model>.sql
WARMUP_BARS = {"lagged_features": 135, "time_features": 1}

MODELS = tuple(ORACLES)


EDGE_CASES = harness.symbols(bar_datasets.edge_case_bars())
# more seeds, starting where the calendar turns: the end of a year whose last ISO week is
# 53 (2020) into week 1 of 2021, a leap February into March, 2018 into 2019 (31 December
# 2018 is in ISO week 1 of 2019)
OTHER_SEEDS = [
    bar_datasets.symbol_bars("EURUSD", seed=11, start="2020-12-30 19:00"),
    bar_datasets.symbol_bars("USDJPY", seed=11, start="2024-02-28 22:30"),
    bar_datasets.symbol_bars("NZDUSD", seed=23, start="2018-12-30 23:55", n=2500),
]
DATASETS = [*EDGE_CASES, *OTHER_SEEDS]
IDS = [f"{b['symbol'].iloc[0]}@{b['ts'].iloc[0]:%Y-%m-%d}" for b in DATASETS]


def _cuts(bars: pd.DataFrame, warmup: int) -> list[int]:
    """Where a refresh may start: 0, 1, the ends, around the warm-up length, at and right after
    the first gaps (> 5 minutes), the longest gap (the weekend) and the first day boundaries,
    inside the flat stretch."""
    n = len(bars)
    minutes = bars["ts"].diff() / pd.Timedelta(minutes=1)
    gaps = [*np.flatnonzero((minutes > 5).to_numpy())[:4], int(minutes.fillna(0).argmax())]
    days = bars["ts"].dt.normalize()
    new_days = np.flatnonzero((days != days.shift(1)).to_numpy())[1:4]
    cuts = {0, 1, 2, warmup - 1, warmup, warmup + 1, n // 3 + 50, n - 2, n - 1}
    for position in (*gaps, *new_days):
        cuts |= {int(position) - 1, int(position), int(position) + 1, int(position) + 2}
    return sorted(c for c in cuts if 0 <= c < n)


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("bars", DATASETS, ids=IDS)
def test_full_build_matches_the_oracle(model: str, bars: pd.DataFrame) -> None:
    first_close = float(bars["close"].iloc[0])
    harness.assert_matches(harness.full(model, bars), ORACLES[model](bars, first_close))


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("bars", DATASETS, ids=IDS)
def test_incremental_equals_full(model: str, bars: pd.DataFrame) -> None:
    warmup = WARMUP_BARS[model]
    harness.assert_incremental_equals_full(model, bars, warmup, _cuts(bars, warmup))


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("bars", DATASETS[:4], ids=IDS[:4])
def test_append_never_changes_the_past(model: str, bars: pd.DataFrame) -> None:
    n = len(bars)
    harness.assert_append_never_changes_the_past(
        model, bars, sorted({1, 2, 17, 136, n // 2, n - 1} & set(range(1, n)))
    )


def test_time_features_over_three_centuries() -> None:
    """The calendar arithmetic on minutes against pandas' accessors on bars from 1890 to after 2150:
    leap years (1900 and 2100 not, 2000 yes), ISO weeks 53, years starting on every weekday."""
    rng = np.random.default_rng(5)
    steps = rng.integers(1, 8000, size=50_000)
    steps[rng.random(steps.size) < 0.2] = 1  # runs of consecutive minutes
    minutes = np.cumsum(steps) + pd.Timestamp("1890-01-01", tz="UTC").value // 60_000_000_000
    ts = pd.to_datetime(minutes, unit="m", utc=True)
    bars = pd.DataFrame(
        {"symbol": "EURUSD", "ts": ts, "open": 1.1, "high": 1.1, "low": 1.1, "close": 1.1}
    )
    bars = bars.assign(volume=1.0, spread=1e-5, ticks=1.0)[bar_datasets.COLUMNS]
    assert bars["ts"].iloc[-1] > pd.Timestamp("2150-01-01", tz="UTC")
    harness.assert_matches(harness.full("time_features", bars), ORACLES["time_features"](bars, 1.1))
    harness.assert_incremental_equals_full("time_features", bars, 1, [1, 2, 9_999, 25_000, 49_999])


def test_bars_since_gap_continues_the_stored_row_across_a_long_refresh() -> None:
    """A refresh whose warm-up holds a gap, and one whose rows reach a gap, both continue from
    `prev` (a warm-up longer than the model's changes nothing)."""
    bars = EDGE_CASES[0]
    gaps = np.flatnonzero((bars["ts"].diff() > pd.Timedelta(minutes=5)).to_numpy())
    cuts = [int(gaps[0]) + 3, int(gaps[1]) - 3, int(gaps[-1]) + 10]
    harness.assert_incremental_equals_full("time_features", bars, 20, cuts)
