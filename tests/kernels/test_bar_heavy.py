"""The `hmm_regime_bars` and `volatility_surface` bar families (FEATURE_DEFINITIONS K14 with G3,
C5 and K7; python_udfs/tf_bar_heavy.py) against the oracle of tests/oracle/bar_heavy.py:
hmmlearn 0.3.3 and arch 8 fitted on every refit window on its own, and plain loops between the
refits. Full builds on the edge-case bars (default window of 1440 returns: a few refits) and
with refit_window 240 on them and on a longer series with volatility regimes, a 330-bar flat
stretch (refit windows of all-zero returns) and a halt that skips a :59 bar (many refits);
incremental refreshes at cuts on, just after and just before refit bars, in gaps and in the
flat stretch; appends.

Tolerances are the reference tests': tests/kernels/test_hmm.py (a fit's parameters and what
follows from them 1e-6, log-likelihoods 1e-8) and tests/kernels/test_garch.py (the Python fit
1e-9: the same SLSQP on the same objective). The state and duration are compared where the
oracle's two largest filtered probabilities are further apart than the fit tolerance.
"""

from __future__ import annotations

import math
from functools import cache
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import tf_bar_heavy
import tf_bars
import tf_hmm
import yaml
from tf_common import InputError

from tests.kernels import bar_harness as harness
from tests.oracle import bar_heavy as oracle
from tests.oracle.bar_datasets import kernel_inputs, symbol_bars
from tests.oracle.compare import mismatches

ROOT = Path(__file__).resolve().parents[2]
MODELS = ("hmm_regime_bars", "volatility_surface")
WARMUP = {"hmm_regime_bars": 1440, "volatility_surface": 1440}
TOLERANCE = 1e-8  # test_hmm: log-likelihoods
FIT_TOLERANCE = 1e-6  # test_hmm: a whole fit
HMM_PER_BAR = [
    "hmm1m_prob_0", "hmm1m_prob_1", "hmm1m_prob_2", "hmm1m_entropy", "hmm1m_stay_prob",
    "hmm1m_pred_mean", "hmm1m_pred_vol", "hmm1m_return_z", "hmm1m_loglik_bar",
]  # fmt: skip
HMM_LOGLIK = ["hmm1m_loglik_per_obs"]
HMM_EXACT = ["hmm1m_n_iter", "hmm1m_converged", "hmm1m_bars_since_refit"]


def regime_bars(n: int = 6000, seed: int = 3) -> pd.DataFrame:
    """A symbol whose returns switch between three volatility regimes (0.4, 1.2 and 3.5 bp a
    bar, a Markov chain staying put with probability 0.995), on a 1e-6 tick; a flat stretch of
    330 bars from bar 2500 (O = H = L = C: 240-bar windows of zero returns), a few missing
    minutes and a 90-minute halt at bar n // 2 (an hour without a :59 bar)."""
    rng = np.random.default_rng(seed)
    minutes, m = [], 28_480_320  # 2024-02-26 00:00 UTC, a Monday
    for i in range(n):
        minutes.append(m)
        m += 1 + (rng.random() < 0.01) + (90 if i == n // 2 else 0)
    sd, mean = np.array([0.4, 1.2, 3.5]), np.array([-0.02, 0.0, 0.03])
    state, states = 1, []
    for _ in range(n):
        if rng.random() > 0.995:
            state = int(rng.integers(3))
        states.append(state)
    path = np.array(states)
    returns = mean[path] + sd[path] * rng.standard_normal(n)
    close = np.round(1.1 * np.exp(np.cumsum(returns) / 1e4), 6)
    close[2500:2830] = close[2499]
    open_ = np.concatenate([[close[0]], close[:-1]])
    wick = np.abs(rng.normal(0, 0.3e-4, size=(2, n))) * close
    high = np.round(np.maximum(open_, close) + wick[0], 6)
    low = np.round(np.minimum(open_, close) - wick[1], 6)
    open_[2500:2830] = high[2500:2830] = low[2500:2830] = close[2499]
    return pd.DataFrame(
        {
            "symbol": "REGIME",
            "ts": pd.to_datetime(np.array(minutes) * 60, unit="s", utc=True),
            "open": open_,
            "high": high,
            "low": low,
            "close": close,
            "volume": rng.integers(1, 300, size=n).astype(float),
            "spread": np.full(n, 1e-5),
            "ticks": rng.integers(1, 100, size=n).astype(float),
        }
    )


# case -> (bars, refit_window)
CASES = {
    "EURUSD": ("EURUSD", 1440),
    "USDJPY": ("USDJPY", 1440),
    "NZDUSD": ("NZDUSD", 1440),
    "EURUSD_w240": ("EURUSD", 240),
    "REGIME_w240": ("REGIME", 240),
}


@cache
def bars_of(name: str) -> pd.DataFrame:
    return regime_bars() if name == "REGIME" else symbol_bars(name)


@cache
def kernel(model: str, case: str) -> pd.DataFrame:
    name, window = CASES[case]
    return harness.full(model, bars_of(name), refit_window=window)


@cache
def hmm_oracle(case: str, n_iter: int = 10):  # type: ignore[no-untyped-def]
    name, window = CASES[case]
    return oracle.hmm_regime_bars(bars_of(name), window=window, n_iter=n_iter)


@cache
def vs_oracle(case: str):  # type: ignore[no-untyped-def]
    name, window = CASES[case]
    return oracle.volatility_surface(bars_of(name), window=window)


def _columns(frame: pd.DataFrame, names: list[str]) -> pd.DataFrame:
    return frame[["symbol", "ts", *names]]


# --- the catalog ----------------------------------------------------------------------------------


@pytest.mark.parametrize("model", MODELS)
def test_columns_are_the_yamls_and_documented(model: str) -> None:
    (spec,) = yaml.safe_load((ROOT / "models" / "bar_k14" / f"{model}.yml").read_text())["models"]
    assert spec["name"] == model and spec["config"]["meta"]["family"] == model
    names = [c["name"] for c in spec["columns"]]
    assert names[:2] == ["symbol", "ts"]
    assert names[2:] == tf_bar_heavy.MODELS[model] == tf_bars.columns(model)
    assert len([c for c in names[2:] if not c.startswith("state_")]) >= 30
    for column in spec["columns"][2:]:
        meta = column["config"]["meta"]
        assert column["description"] and column["data_type"] in (
            "double precision", "integer", "boolean",
        ), column["name"]  # fmt: skip
        assert meta["unit"] and meta["window"] and meta["source"], column["name"]
        if column["name"].startswith("state_"):
            assert column["description"].startswith("State, not a feature:")
            assert meta["unit"] == "state"
    assert tf_bar_heavy.WARMUP_BARS == WARMUP


# --- hmm_regime_bars ------------------------------------------------------------------------------


@pytest.mark.parametrize("case", list(CASES))
def test_hmm_full_build_equals_hmmlearn(case: str) -> None:
    """Every refit's fit equals hmmlearn's from the same start (parameters 1e-6, the
    log-likelihood 1e-8, the iterations and the stopping reason exactly) and so do the
    filtered probabilities and what follows from them; the state and its duration where the
    oracle's filtered probabilities decide them clearly."""
    got = kernel("hmm_regime_bars", case)
    want, margins, fits = hmm_oracle(case)
    window = CASES[case][1]
    assert len(fits) >= {1440: 8, 240: 40}[window]
    fitted = tf_bar_heavy.HMM_CARRIED + tf_bar_heavy.HMM_STATE_COLUMNS
    fitted = [c for c in fitted if c not in HMM_LOGLIK + HMM_EXACT]
    tol = {"rel": FIT_TOLERANCE, "abs_": FIT_TOLERANCE}
    harness.assert_matches(_columns(got, fitted), _columns(want, fitted), **tol)
    harness.assert_matches(_columns(got, HMM_PER_BAR), _columns(want, HMM_PER_BAR), **tol)
    harness.assert_matches(
        _columns(got, HMM_LOGLIK), _columns(want, HMM_LOGLIK), rel=TOLERANCE, abs_=TOLERANCE
    )
    harness.assert_matches(_columns(got, HMM_EXACT), _columns(want, HMM_EXACT), rel=0, abs_=0)
    for column, margin in (("hmm1m_state", "margin"), ("hmm1m_duration", "decided")):
        clear = (margins[margin] > FIT_TOLERANCE).to_numpy()
        assert clear.sum() > 0.99 * want[column].notna().sum()
        np.testing.assert_array_equal(got[column].isna(), want[column].isna())
        np.testing.assert_array_equal(got[column][clear], want[column][clear])


@pytest.mark.parametrize("case", list(CASES))
def test_hmm_per_bar_values_follow_from_the_carried_fit(case: str) -> None:
    """From the kernel's own output: each bar's per-bar columns follow from its filtered
    probabilities and carried parameters, and each bar after a refit is one step of the
    forward recursion from the bar before (1e-9, the state and duration exactly)."""
    got = kernel("hmm_regime_bars", case)
    name, _ = CASES[case]
    harness.assert_matches(got, oracle.hmm_one_step(got, bars_of(name)))


def _refit_windows(case: str) -> np.ndarray:
    name, window = CASES[case]
    bars = bars_of(name)
    y = oracle.returns_bp(bars["close"].to_numpy(float))
    return np.array([y[r - window + 1 : r + 1] for r in oracle.refit_bars(bars, window, 60)])


@pytest.mark.parametrize(("case", "n_iter"), [("REGIME_w240", 10), ("REGIME_w240", 100)])
def test_batched_em_equals_hmm_fit_per_window(case: str, n_iter: int) -> None:
    """EM for all windows at once gives each window tf_hmm.hmm_fit's fit (test_hmm's fit
    tolerance; iterations and convergence exactly: each window stops at its own iteration) and
    tf_hmm.hmm_filtered's last filtered probabilities."""
    windows = _refit_windows(case)
    fits = tf_bar_heavy.HmmFits(windows, n_iter)
    checked = range(0, len(windows), 1 if n_iter <= 10 else 3)
    iterations = set()
    for b in checked:
        want = tf_hmm.hmm_fit(windows[b].tolist(), 3, n_iter, 0)
        model = fits.model(b)
        for key, got in zip(tf_hmm.KEYS, tf_bar_heavy._fields(model), strict=True):
            np.testing.assert_allclose(got, want[key], rtol=0, atol=FIT_TOLERANCE)
        assert fits.iterations[b] == want["n_iter"]
        assert fits.converged[b] == want["converged"]
        assert abs(fits.loglik[b] - want["loglik"]) <= TOLERANCE * abs(want["loglik"])
        filtered = tf_hmm.hmm_filtered(windows[b].tolist(), want)
        np.testing.assert_allclose(fits.last[:, b], filtered[-1], rtol=0, atol=FIT_TOLERANCE)
        iterations.add(int(want["n_iter"]))
    if n_iter > 10:
        assert len(iterations) >= 5  # the windows stop at many different iterations
        assert fits.converged.mean() > 0.8


def test_hmm_many_iterations_equal_hmmlearn() -> None:
    """params hmm_n_iter: with up to 100 EM iterations most windows stop on the tolerance,
    each at the iteration hmmlearn stops at."""
    bars = bars_of("REGIME")
    got = harness.full("hmm_regime_bars", bars, refit_window=240, hmm_n_iter=100)
    want, _, fits = hmm_oracle("REGIME_w240", 100)
    assert sum(f.converged for f in fits.values()) > 0.8 * len(fits)
    assert len({f.n_iter for f in fits.values()}) >= 5
    harness.assert_matches(_columns(got, HMM_EXACT), _columns(want, HMM_EXACT), rel=0, abs_=0)
    fitted = [c for c in tf_bar_heavy.HMM_CARRIED if c not in HMM_LOGLIK + HMM_EXACT]
    tol = {"rel": FIT_TOLERANCE, "abs_": FIT_TOLERANCE}
    harness.assert_matches(_columns(got, fitted), _columns(want, fitted), **tol)
    harness.assert_matches(_columns(got, HMM_PER_BAR), _columns(want, HMM_PER_BAR), **tol)


def _flat_refits(case: str) -> list[int]:
    """The refit bars of the REGIME series whose window holds only zero returns."""
    name, window = CASES[case]
    bars = bars_of(name)
    y = oracle.returns_bp(bars["close"].to_numpy(float))
    return [r for r in oracle.refit_bars(bars, window, 60) if not np.any(y[r - window + 1 : r + 1])]


def test_hmm_on_a_window_of_zero_returns() -> None:
    """A window of zero returns (a flat stretch longer than the window) fits: every state's
    mean is exactly 0 (k-means centres and M-step means of zeros), its variance is the prior's
    1e-2 over the state's posterior weight, the probabilities are finite and sum to 1, and the
    flat bars' returns are 0 standard deviations from their state's mean."""
    got = kernel("hmm_regime_bars", "REGIME_w240")
    flat = _flat_refits("REGIME_w240")
    assert flat
    for r in flat:
        row = got.iloc[r]
        assert [row[f"hmm1m_mean_{k}"] for k in range(3)] == [0.0, 0.0, 0.0]
        variances = np.array([row[f"state_hmm1m_var_{k}"] for k in range(3)])
        assert np.all(np.isfinite(variances)) and np.all(variances >= 1e-2 / 240)
        probs = np.array([row[f"hmm1m_prob_{k}"] for k in range(3)])
        assert abs(probs.sum() - 1.0) < 1e-12
        assert row["hmm1m_return_z"] == 0.0
        assert row["hmm1m_n_iter"] >= 1
    # the oracle's hmmlearn fits agree there too (test_hmm_full_build_equals_hmmlearn)
    _, _, fits = hmm_oracle("REGIME_w240")
    assert all(np.all(fits[r].means == 0.0) for r in flat)


# --- volatility_surface ---------------------------------------------------------------------------


@pytest.mark.parametrize("case", list(CASES))
def test_volatility_surface_full_build_equals_oracle(case: str) -> None:
    """The term structure from the K7 oracle's volatilities, and every refit's GARCH fit
    equal to arch's on the same window (1e-9, test_garch's), its forecasts and the variance
    path continued with a plain loop."""
    got = kernel("volatility_surface", case)
    want, fits = vs_oracle(case)
    window = CASES[case][1]
    assert len(fits) >= {1440: 8, 240: 40}[window]
    assert sum(f.converged for f in fits.values()) >= 0.8 * len(fits)
    harness.assert_matches(got, want)


def test_garch_on_a_window_of_zero_returns_is_null() -> None:
    """A window of zero returns cannot be fitted: the parameters, forecasts and per-bar
    volatility are NULL until the next refit, vs_garch_converged is false and the age of the
    refit counts on. In the flat stretch the short realized volatilities are exactly 0: the
    slopes (ln 0) are NULL, the ratios with a zero numerator 0 and with a zero denominator
    NULL."""
    got = kernel("volatility_surface", "REGIME_w240")
    flat = _flat_refits("REGIME_w240")
    assert flat
    for r in flat:
        row = got.iloc[r]
        assert row["vs_garch_converged"] == 0.0 and row["vs_garch_bars_since_refit"] == 0.0
        for c in ("vs_garch_mu", "vs_garch_fc_h60", "vs_garch_sigma_live", "state_vs_garch_var"):
            assert np.isnan(row[c]), c
        assert got.iloc[r + 1]["vs_garch_bars_since_refit"] == 1.0
    inside = got.iloc[2500 + 100]
    assert np.isnan(inside["vs_slope_close"]) and np.isnan(inside["vs_slope_parkinson"])
    assert (
        inside["vs_ratio_close_w15_w1440"] == 0.0 and inside["vs_ratio_parkinson_w60_w1440"] == 0.0
    )
    assert np.isnan(inside["vs_ratio_close_w15_w30"]) and np.isnan(inside["vs_ratio_close_w30_w60"])


def test_forecasts_continue_the_fits_variance_path() -> None:
    """K14: sigma^2_(T+h) = sigma-bar^2 + p^(h-1) (sigma^2_(T+1) - sigma-bar^2), p = alpha +
    beta < 1, which the recursion sigma^2 <- omega + p sigma^2 sums; at p = 1 (where SLSQP
    can stop, up to rounding) only the recursion is defined; h = 1 is sigma^2_(T+1) itself."""
    omega, next_var = 0.05, 1.7
    for alpha, beta in ((0.05, 0.9), (0.0, 0.99), (0.3, 0.0), (0.0, 0.0), (0.1, 0.85)):
        for h in (1, 2, 5, 15, 60, 240):
            got = tf_bar_heavy.garch_forecast(omega, alpha + beta, next_var, h)
            want = oracle.closed_form_forecast(omega, alpha, beta, next_var, h)
            assert abs(got - want) <= 1e-12 * want, (alpha, beta, h, got, want)
    for p in (1.0, 1.0 - 2.0**-52, 1.0 + 2.0**-52):
        for h in (1, 5, 240):
            got = tf_bar_heavy.garch_forecast(omega, p, next_var, h)
            want = oracle.forecast_variance(omega, p, 0.0, next_var, h)
            assert abs(got - want) <= 1e-12 * want, (p, h, got, want)
    assert tf_bar_heavy.garch_forecast(omega, 1.0, next_var, 240) == omega * 239 + next_var


# --- both: refits, incremental refreshes, appends -------------------------------------------------


def test_an_hour_without_a_59_bar_has_no_refit() -> None:
    """The REGIME series halts for 90 minutes after bar 3000, over a :59 minute: the fit in
    force before the halt carries on over it."""
    bars = bars_of("REGIME")
    minutes = kernel_inputs(bars)["minute"].astype(np.int64)
    assert minutes[3001] - minutes[3000] == 91
    assert any(m % 60 == 59 for m in range(minutes[3000] + 1, minutes[3001]))
    assert minutes[3000] % 60 != 59 and minutes[3001] % 60 != 59
    for model, column in (
        ("volatility_surface", "vs_garch_bars_since_refit"),
        ("hmm_regime_bars", "hmm1m_bars_since_refit"),
    ):
        since = kernel(model, "REGIME_w240")[column].to_numpy()
        assert since[3001] == since[3000] + 1


@pytest.mark.parametrize("model", MODELS)
def test_short_symbol_has_no_refit(model: str) -> None:
    bars = symbol_bars("SHORTFX")
    got = harness.full(model, bars, refit_window=240)
    carried = [c for c in got.columns[2:] if not c.startswith("vs_ratio") and "slope" not in c]
    assert got[carried].isna().all().all()


def _cuts(case: str) -> list[int]:
    """1, on and just after the first refit bar, just before, on and just after one in the
    middle, around the last, the first bar after a gap of more than 5 minutes, inside and
    right after the flat stretch (REGIME), the last bar. (Each cut refits from there on: the
    early cuts are few.)"""
    name, window = CASES[case]
    bars = bars_of(name)
    n = len(bars)
    refits = oracle.refit_bars(bars, window, 60)
    middle = refits[len(refits) // 2]
    cuts = {1, refits[0], refits[0] + 1, middle - 1, middle, middle + 1}
    cuts |= {refits[-1] - 1, refits[-1] + 1, n - 1}
    minutes = bars["ts"].diff().dt.total_seconds().to_numpy() / 60
    gaps = np.flatnonzero(minutes > 5)
    if gaps.size:
        cuts |= {int(gaps[-1])}
    if name == "REGIME":
        cuts |= {2500 + 290, 2830}
    return sorted(c for c in cuts if 0 <= c < n)


@pytest.mark.parametrize("case", ["EURUSD", "EURUSD_w240", "REGIME_w240"])
@pytest.mark.parametrize("model", MODELS)
def test_incremental_equals_full(model: str, case: str) -> None:
    """Rows from a cut, computed from WARMUP_BARS bars before it and the stored row before it,
    equal the full build's (1e-9, identical NULLs): fits after the cut are the same fits, and
    what a fit before it carries comes from the stored row."""
    name, window = CASES[case]
    bars = bars_of(name)
    whole = kernel(model, case)
    for cut in _cuts(case):
        got = harness.incremental(model, bars, cut, WARMUP[model], whole, refit_window=window)
        harness.assert_matches(got, whole.iloc[cut:].reset_index(drop=True))


@pytest.mark.parametrize("model", MODELS)
def test_append_never_changes_the_past(model: str) -> None:
    bars = bars_of("EURUSD")
    whole = kernel(model, "EURUSD_w240")
    n = len(bars)
    for cut in (1, 300, 1500, n - 1):
        prefix = harness.full(model, bars.iloc[:cut].reset_index(drop=True), refit_window=240)
        assert not mismatches(prefix, whole.iloc[:cut].reset_index(drop=True))


# --- input checks ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "params", "message"),
    [
        (
            {"close": 0.0},
            {},
            r"^close must be a positive price; bar 3 is 0\.0$",
        ),
        ({}, {"refit_window": 5}, r"^params\.refit_window must be between 10 and 20000, got 5$"),
        ({}, {"refit_stride": 0}, r"^params\.refit_stride must be between 1 and 10080, got 0$"),
        ({}, {"refit_window": "x"}, r"^params\.refit_window must be an integer, got 'x'$"),
        ({}, {"hmm_n_iter": 0}, r"^params\.hmm_n_iter must be between 1 and 1000, got 0$"),
        (
            {},
            {"hmm_n_iter": 1000, "refit_window": 2001},
            r"^params\.hmm_n_iter x refit_window must be at most 2000000, got 1000 x 2001$",
        ),
    ],
)
def test_bad_input_is_one_line(change: dict, params: dict, message: str) -> None:
    bars = symbol_bars("SHORTFX")
    inputs = kernel_inputs(bars)
    for key, value in change.items():
        inputs[key] = inputs[key].copy()
        inputs[key][2] = value
    with pytest.raises(InputError, match=message):
        tf_bars.compute("hmm_regime_bars", inputs, params)


def test_refit_bars_are_the_59_minutes() -> None:
    bars = bars_of("EURUSD")
    got = kernel("hmm_regime_bars", "EURUSD_w240")
    refit_rows = np.flatnonzero(got["hmm1m_bars_since_refit"].to_numpy() == 0)
    assert refit_rows.tolist() == oracle.refit_bars(bars, 240, 60)
    assert (bars["ts"].dt.minute.to_numpy()[refit_rows] == 59).all()
    assert math.isfinite(got["hmm1m_loglik_bar"].dropna().sum())


def test_windows_the_scaled_pass_cannot_take_go_through_tf_hmm(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """With tf_hmm.MIN_SCALED raised past every scale factor, each window's EM steps and its
    final filtered pass are tf_hmm's own (_em_step and infer, in log space): the same fits."""
    windows = _refit_windows("REGIME_w240")[:8]
    usual = tf_bar_heavy.HmmFits(windows, 10)
    calls = {"em_step": 0, "infer": 0}
    em_step, infer = tf_hmm._em_step, tf_hmm.infer

    def counted_em_step(*args):  # type: ignore[no-untyped-def]
        calls["em_step"] += 1
        return em_step(*args)

    def counted_infer(*args, **kwargs):  # type: ignore[no-untyped-def]
        calls["infer"] += 1
        return infer(*args, **kwargs)

    monkeypatch.setattr(tf_hmm, "MIN_SCALED", 1e300)
    monkeypatch.setattr(tf_hmm, "_em_step", counted_em_step)
    monkeypatch.setattr(tf_hmm, "infer", counted_infer)
    forced = tf_bar_heavy.HmmFits(windows, 10)
    # infer: once in each EM step, and once for each window's final filtered pass
    assert calls["em_step"] == usual.iterations.sum()
    assert calls["infer"] == usual.iterations.sum() + len(windows)
    np.testing.assert_array_equal(forced.iterations, usual.iterations)
    np.testing.assert_array_equal(forced.converged, usual.converged)
    for name in ("startprob", "transmat", "means", "variances", "last"):
        np.testing.assert_allclose(
            getattr(forced, name), getattr(usual, name), rtol=0, atol=FIT_TOLERANCE
        )
    np.testing.assert_allclose(forced.loglik, usual.loglik, rtol=TOLERANCE)


@pytest.mark.parametrize("persistence", [0.0, 3.7e-17, 0.3, 0.5, 0.97, 1.0 - 2e-16, 1.0, 1.01])
def test_forecast_holds_for_any_persistence(persistence: float) -> None:
    """omega (1 + p + ... + p^(h-2)) + p^(h-1) sigma^2_(T+1), summed term by term, for p from 0
    (where p - 1 rounds to -1) through 1 and beyond."""
    omega, next_var = 1.49, 2.3
    for h in (1, 5, 15, 60, 240):
        want = (
            omega * math.fsum(persistence**k for k in range(h - 1))
            + persistence ** (h - 1) * next_var
        )
        got = tf_bar_heavy.garch_forecast(omega, persistence, next_var, h)
        assert got == pytest.approx(want, rel=1e-12), (h, got, want)
