"""The regression families (FEATURE_DEFINITIONS K4 regression_rate / regression_bqx, K5
parabolic_comparison): the kernel python_udfs/tf_bar_regression.py against the oracle
tests/oracle/bar_regression.py on the edge-case bars of two seeds and on a symbol built so that
K4's NULL rules hit exact zeros (a window stepping between two flat levels at its middle, exact
lines and parabolas), and the incremental refresh and appends against the full build."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tests.kernels import bar_harness as harness
from tests.oracle import bar_regression as oracle
from tests.oracle.bar_datasets import COLUMNS, edge_case_bars, symbol_bars

MODELS = ("regression_rate", "regression_bqx", "parabolic_comparison")
WARMUP_BARS = 149  # models/bar/*.sql: bqx_75 (75 bars back) over 75 bars reaches 149 bars back
SYMBOLS = ("EURUSD", "USDJPY", "NZDUSD", "SHORTFX")


def _exact_bars() -> pd.DataFrame:
    """Closes that are multiples of 1/1024 near 100, so that the rate index (C_first = 100) is
    the close itself, exactly: a random walk, then flat levels of 60 bars (windows of 30 and 60
    that step between two flat levels at their middle: a2 = 0 exactly), an exact parabola with
    its vertex inside (SSR = 0; a1 = 0 where a window ends at the vertex), an exact line (SSR = 0,
    a2 = 0) and a flat stretch (SST = 0)."""
    rng = np.random.default_rng(5)
    walk = 100 * 1024 + np.cumsum(rng.integers(-3, 4, size=200))
    walk[0] = 100 * 1024
    levels = np.repeat(walk[-1] + np.array([5, 5, -7, 12, 12, 3]), 60)
    parabola = levels[-1] + (np.arange(90) - 40) ** 2
    line = parabola[-1] + 3 * np.arange(1, 101)
    flat = np.full(100, line[-1])
    tail = flat[-1] + np.cumsum(rng.integers(-3, 4, size=200))
    close = np.concatenate([walk, levels, parabola, line, flat, tail]) / 1024.0
    n = len(close)
    ts = pd.date_range("2024-03-04 00:00", periods=n, freq="1min", tz="UTC")
    open_ = np.concatenate([[close[0]], close[:-1]])
    return pd.DataFrame(
        {
            "symbol": "EXACTFX",
            "ts": ts,
            "open": open_,
            "high": np.maximum(open_, close),
            "low": np.minimum(open_, close),
            "close": close,
            "volume": 1.0,
            "spread": np.nan,
            "ticks": 1.0,
        }
    )[COLUMNS]


def _symbol(bars: pd.DataFrame, symbol: str) -> pd.DataFrame:
    return bars[bars["symbol"] == symbol].reset_index(drop=True)


def _assert_kernel_matches_oracle(model: str, bars: pd.DataFrame) -> dict[str, int]:
    """Kernel == oracle (1e-9 of the size of the terms, identical NULLs) outside K4's knife
    edges; returns the number of non-NULL values per column of the oracle."""
    first_close = float(bars["close"].iloc[0])
    got = harness.full(model, bars)
    want, scales, knife = oracle.evaluate(model, bars, first_close)
    columns = oracle.COLUMNS[model]
    # K4: rows where a2, a1 or SSR is within 1e-6 of the size of its terms of zero, but not
    # exactly zero, are knife edges that tests do not judge: blank them on both sides
    mask = knife[columns].to_numpy(dtype=bool)
    for frame in (got, want):
        values = frame[columns].to_numpy(dtype=float, copy=True)
        values[mask] = np.nan
        frame[columns] = values
    harness.assert_matches(got, want, term_scales=scales)
    return {c: int(want[c].notna().sum()) for c in columns}


def _first_row(column: str) -> int:
    """The first row where a column can have a value: a rate fit over N bars needs N bars, a
    bqx fit N more (bqx_N); a comparison needs every fit it compares."""
    windows = [int(part[1:]) for part in column.split("_") if part[0] == "w" and part[1:].isdigit()]
    domains = [d for d in ("rate", "bqx") if f"_{d}_" in column] or ["rate", "bqx"]
    return max((2 * n if d == "bqx" else n) - 1 for n in windows for d in domains)


@pytest.mark.parametrize("seed", [7, 11])
@pytest.mark.parametrize("model", MODELS)
def test_kernel_matches_oracle_on_edge_case_bars(model: str, seed: int) -> None:
    bars = edge_case_bars(seed=seed)
    for symbol in SYMBOLS:
        one = _symbol(bars, symbol)
        counts = _assert_kernel_matches_oracle(model, one)
        # every column has values exactly when the symbol has bars enough (SHORTFX: 40 bars)
        assert {c: count > 0 for c, count in counts.items()} == {
            c: _first_row(c) < len(one) for c in counts
        }


@pytest.mark.parametrize("model", MODELS)
def test_exact_zero_rules(model: str) -> None:
    bars = _exact_bars()
    _assert_kernel_matches_oracle(model, bars)
    # the dataset reaches every NULL rule of K4 with the quantity exactly zero and SST > 0
    want = oracle.ORACLES["regression_rate"](bars, float(bars["close"].iloc[0]))
    fitted = want["reg_r2_rate_w30"].notna()
    # a2 = 0: steps between two flat levels at the window's middle, and the line
    assert (fitted & want["reg_vertex_rate_w30"].isna()).any()
    assert (fitted & want["reg_vertex_rate_w60"].isna()).any()
    # SSR = 0: the parabola and the line
    assert (fitted & want["reg_resid_z_rate_w15"].isna()).any()
    assert (fitted & want["reg_t_a2_rate_w75"].isna()).any()
    assert (want["reg_a1_rate_w15"].eq(0) & want["reg_a2_rate_w15"].ne(0)).any()  # at the vertex
    assert want["reg_r2_rate_w75"].isna().sum() > 74  # SST = 0: the flat stretch


def _cuts(bars: pd.DataFrame) -> list[int]:
    n = len(bars)
    gaps = np.flatnonzero(bars["ts"].diff().dt.total_seconds().to_numpy()[1:] > 300) + 1
    flat = np.flatnonzero((bars["close"].diff() == 0).to_numpy())
    inside = [int(gaps[0]), int(gaps[0]) + 1] if len(gaps) else []
    inside += [int(flat[len(flat) // 2])] if len(flat) else []
    candidates = [0, 1, 14, 75, 148, 149, 150, *inside, n // 3 + 60, n - 2, n - 1]
    return sorted({c for c in candidates if 0 <= c < n})


@pytest.mark.parametrize("model", MODELS)
def test_incremental_equals_full(model: str) -> None:
    bars = edge_case_bars()
    for symbol in SYMBOLS:
        one = _symbol(bars, symbol)
        harness.assert_incremental_equals_full(model, one, WARMUP_BARS, _cuts(one))
    exact = _exact_bars()
    harness.assert_incremental_equals_full(model, exact, WARMUP_BARS, _cuts(exact))


@pytest.mark.parametrize("model", MODELS)
def test_append_never_changes_the_past(model: str) -> None:
    bars = edge_case_bars()
    for symbol in ("EURUSD", "SHORTFX"):
        one = _symbol(bars, symbol)
        cuts = sorted({c for c in (1, 20, 39, 150, 1000, len(one) - 1) if c < len(one)})
        harness.assert_append_never_changes_the_past(model, one, cuts)


def test_warmup_is_needed() -> None:
    """One bar less of warm-up changes the first written row of the bqx fit over 75 bars."""
    one = _symbol(edge_case_bars(), "EURUSD")
    whole = harness.full("regression_bqx", one)
    short = harness.incremental("regression_bqx", one, 1000, WARMUP_BARS - 1, whole)
    assert np.isnan(short["reg_a2_bqx_w75"].iloc[0])
    assert not np.isnan(whole["reg_a2_bqx_w75"].iloc[1000])


def test_a_longer_symbol_matches_the_oracle() -> None:
    bars = symbol_bars("USDJPY", seed=3, n=5000)
    for model in MODELS:
        _assert_kernel_matches_oracle(model, bars)
