"""python_udfs/tf_bar_activity.py (K10 volume_features, spread_features) against the oracles of
tests/oracle/bar_activity.py: full builds, incremental refreshes from the models' warm-up
(cuts at 0, 1, gaps, the flat stretch, the NULL-volume stretch, around the warm-up length and
the ends) and appends, on the edge-case bars, another seed and variants with every input
present, long runs of equal volumes and spreads, and fractional volumes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from tests.kernels import bar_harness as harness
from tests.oracle import bar_datasets
from tests.oracle.bar_activity import ORACLES

# the warm-up bars of models/bar/<model>.sql
WARMUP_BARS = {"volume_features": 1440, "spread_features": 1440}

MODELS = tuple(ORACLES)
ROOT = Path(__file__).resolve().parents[2]


def _complete(bars: pd.DataFrame) -> pd.DataFrame:
    """Every volume and spread present (so the 1440-bar windows have values), with 1600 bars
    of one spread (longer than every window) and 300 bars of one volume."""
    bars = bars.copy()
    bars["volume"] = bars["volume"].fillna(0.0)
    bars["spread"] = bars["spread"].ffill().bfill()
    bars.loc[1000:2599, "spread"] = bars.at[1000, "spread"]
    bars.loc[3000:3299, "volume"] = 7.0
    return bars


def _fractional(bars: pd.DataFrame) -> pd.DataFrame:
    """Volumes that are not whole numbers (sums round), NULLs kept."""
    bars = bars.copy()
    bars["volume"] = bars["volume"] * 0.37 + 0.013
    return bars


EDGE_CASES = harness.symbols(bar_datasets.edge_case_bars())
OTHER_SEEDS = [
    bar_datasets.symbol_bars("EURUSD", seed=11),
    _complete(bar_datasets.symbol_bars("USDJPY", seed=23, n=4000)),
    _fractional(bar_datasets.symbol_bars("NZDUSD", seed=5)),
]
DATASETS = [*EDGE_CASES, *OTHER_SEEDS]
IDS = [
    *(b["symbol"].iloc[0] for b in EDGE_CASES),
    "EURUSD-seed11",
    "USDJPY-complete",
    "NZDUSD-fractional",
]


def _cuts(bars: pd.DataFrame, warmup: int) -> list[int]:
    """Where a refresh may start: 0, 1, 2, the ends, around the warm-up length, at and right
    after the first gaps (> 5 minutes), inside the flat stretch and the NULL-volume stretch."""
    n = len(bars)
    minutes = bars["ts"].diff() / pd.Timedelta(minutes=1)
    gaps = np.flatnonzero((minutes > 5).to_numpy())[:3]
    flat = n // 3  # bar_datasets: O = H = L = C from here for 120 bars, NULL volume 300..339 later
    cuts = {
        0,
        1,
        2,
        16,
        warmup - 1,
        warmup,
        warmup + 1,
        flat + 50,
        flat + 119,
        flat + 320,
        n - 2,
        n - 1,
    }
    for position in gaps:
        cuts |= {int(position), int(position) + 1}
    return sorted(c for c in cuts if 0 <= c < n)


@pytest.mark.parametrize("model", MODELS)
def test_columns_are_the_yaml_columns_in_order(model: str) -> None:
    spec = yaml.safe_load((ROOT / "models" / "bar" / f"{model}.yml").read_text())
    names = [c["name"] for c in spec["models"][0]["columns"]]
    assert names[:2] == ["symbol", "ts"]
    assert names[2:] == harness.tf_bars.columns(model)
    assert len(names) - 2 >= {"volume_features": 70, "spread_features": 35}[model]


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
@pytest.mark.parametrize("bars", [EDGE_CASES[0], OTHER_SEEDS[1]], ids=["EURUSD", "USDJPY-complete"])
def test_append_never_changes_the_past(model: str, bars: pd.DataFrame) -> None:
    n = len(bars)
    harness.assert_append_never_changes_the_past(model, bars, [1, 14, 15, 16, 1441, n // 2, n - 1])


def test_the_variants_reach_their_edge_cases() -> None:
    """The datasets hold what the tests mean to cover: every 1440-bar window and a flat
    spread window (std 0, z-score NULL) and a flat volume window, and a VWAP distance of
    exactly 0 in the flat price stretch."""
    complete = OTHER_SEEDS[1]
    volume = harness.full("volume_features", complete)
    spread = harness.full("spread_features", complete)
    assert volume["vol_ma_w1440"].notna().sum() == len(complete) - 1439
    flat_spread = spread["spread_std_w1440"] == 0
    assert flat_spread.sum() > 100 and spread.loc[flat_spread, "spread_zscore_w1440"].isna().all()
    assert (volume["vol_std_w240"] == 0).sum() > 50
    edge = harness.full("volume_features", EDGE_CASES[0])
    assert (edge["vwap_dist_w60"] == 0).sum() > 50
