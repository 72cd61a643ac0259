"""python_udfs/tf_families.py (the hht and hmm_regime window features) against oracles written
from the column definitions in models/heavy/hht.yml and hmm_regime.yml, on PyEMD, scipy and
hmmlearn directly. tests/integration/test_heavy.py checks that the models feed each window to
these functions; this file checks what the functions compute."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.signal
import tf_families
import tf_hmm
from hmmlearn.hmm import GaussianHMM
from PyEMD import EMD

TOLERANCE = 1e-9


def windows() -> dict[str, tuple[np.ndarray, float]]:
    """256 closes (positive prices) and the seconds they span."""
    rng = np.random.default_rng(42)
    t = np.arange(256)
    walk = 1.1 * np.exp(np.cumsum(rng.normal(scale=2e-5, size=256)))
    return {
        "walk": (walk, 256.0),
        "walk_with_gaps": (walk, 300.0),
        "up_trend_and_cycle": (1.1 * np.exp(2e-6 * t + 3e-5 * np.sin(2 * np.pi * t / 40)), 256.0),
        "down_trend": (
            1.3 * np.exp(-3e-6 * t + 5e-6 * rng.normal(size=256)),
            256.0,
        ),
        "ticks": (1.1 + 1e-5 * np.round(np.cumsum(rng.normal(size=256)) / 2), 260.0),
        "cycle": (1.1 * np.exp(5e-5 * np.sin(2 * np.pi * t / 20)), 256.0),
        "slow_cycle_and_noise": (
            1.1 * np.exp(8e-5 * np.sin(2 * np.pi * t / 60) + 1e-5 * rng.normal(size=256)),
            256.0,
        ),
        "noise": (1.1 * np.exp(3e-5 * rng.normal(size=256)), 256.0),
        "flat": (np.full(256, 1.25), 256.0),
    }


def hht_oracle(closes: np.ndarray, span: float) -> dict[str, float | None]:
    x = 1e4 * np.log(closes / closes[0])
    n = x.size
    decomposition = EMD()
    decomposition.emd(x)
    imfs, residue = decomposition.get_imfs_and_residue()
    t = np.arange(n, dtype=float)
    slope = float(np.sum((t - t.mean()) * (residue - residue.mean())) / np.sum((t - t.mean()) ** 2))
    energy = [float(np.sum(imf**2)) for imf in imfs]
    residual_energy = float(np.sum((residue - residue.mean()) ** 2))
    total = sum(energy) + residual_energy
    shares = [energy[0] if energy else 0.0, sum(energy[1:]), residual_energy]
    out: dict[str, float | None] = {
        "imf_count": len(energy),
        "trend_slope": slope,
        "data_quality": min(1.0, n / span),
    }
    for key, share in zip(
        ("energy_high_freq", "energy_mid_freq", "energy_residual"), shares, strict=True
    ):
        out[key] = share / total if total > 0 else None
    price_range = x.max() - x.min()
    out["trend_strength"] = (
        min(1.0, abs(residue[-1] - residue[0]) / price_range) if price_range > 0 else 0.0
    )
    steps = [np.sign(residue[i] - residue[i - 1]) for i in range(1, n)]
    direction = np.sign(slope)
    out["trend_confidence"] = (
        sum(s == direction for s in steps) / (n - 1) if direction != 0 else 0.0
    )
    run = 0
    for s in reversed(steps):
        if s != steps[-1]:
            break
        run += 1
    out["trend_persistence"] = run / (n - 1) if steps[-1] != 0 else 0.0
    rms = math.sqrt(float(np.mean((x - residue) ** 2)))
    out["mean_reversion"] = (residue[-1] - x[-1]) / rms if rms > 0 else 0.0
    regime = None if total <= 0 else max(range(3), key=lambda i: (shares[i], -i))
    out["regime_classifier"] = regime
    out["market_state"] = int(direction) if regime == 2 else 0
    if energy:
        z = scipy.signal.hilbert(imfs[int(np.argmax(energy))])
        amplitude = np.abs(z)
        frequency = np.diff(np.unwrap(np.angle(z))) / (2 * np.pi)
        out["dominant_freq"] = float(np.sum(amplitude[1:] * frequency) / np.sum(amplitude[1:]))
        out["inst_amplitude"] = float(amplitude[-1])
        out["cycle_phase"] = float(np.angle(z[-1]))
    else:
        out["dominant_freq"] = out["inst_amplitude"] = out["cycle_phase"] = None
    return out


@pytest.mark.parametrize("case", list(windows()))
def test_hht_features_follow_their_definitions(case: str) -> None:
    closes, span = windows()[case]
    got = tf_families.hht_features(closes.tolist(), span)
    want = hht_oracle(closes, span)
    assert set(got) == {*want, "calculation_time_ms"}
    assert got["calculation_time_ms"] > 0
    for key, value in want.items():
        if value is None:
            assert got[key] is None, key
        elif key == "cycle_phase":
            # the same angle: the kernel wraps the unwrapped phase, numpy takes the angle
            assert abs(math.remainder(got[key] - value, 2 * math.pi)) <= TOLERANCE, key
        else:
            assert got[key] == pytest.approx(value, rel=TOLERANCE, abs=TOLERANCE), key


def test_hht_cases_cover_every_regime_and_state() -> None:
    found = [tf_families.hht_features(c.tolist(), s) for c, s in windows().values()]
    assert {f["regime_classifier"] for f in found} >= {None, 0, 1, 2}
    assert {f["market_state"] for f in found} >= {-1, 0, 1}


@pytest.mark.parametrize("case", [c for c in windows() if c != "flat"])
def test_hmm_regime_features_follow_their_definitions(case: str) -> None:
    closes, _ = windows()[case]
    got = tf_families.hmm_regime_features(closes.tolist(), 3, 10, 0)
    returns = np.diff(1e4 * np.log(closes / closes[0]))
    params = tf_hmm.hmm_fit(returns, 3, 10, 0)  # the fit itself: tests/kernels/test_hmm.py
    model = GaussianHMM(n_components=3, covariance_type="diag", init_params="")
    model.startprob_ = np.array(params["startprob"])
    model.transmat_ = np.array(params["transmat"])
    model.means_ = np.array(params["means"]).reshape(-1, 1)
    model.covars_ = np.array(params["variances"]).reshape(-1, 1)
    # filtered P(s_t | x_0..x_t) is the smoothed posterior of the prefix ending at t
    filtered = np.array(
        [model.predict_proba(returns[: t + 1].reshape(-1, 1))[-1] for t in range(returns.size)]
    )
    states = filtered.argmax(axis=1)
    duration = 0
    while duration < states.size and states[-1 - duration] == states[-1]:
        duration += 1
    assert got["state"] == states[-1]
    assert got["duration"] == duration
    np.testing.assert_allclose(got["probabilities"], filtered[-1], rtol=1e-8, atol=1e-8)
    assert got["means"] == sorted(got["means"])
    np.testing.assert_allclose(got["means"], params["means"], rtol=1e-12)
    np.testing.assert_allclose(got["variances"], params["variances"], rtol=1e-12)
    assert got["loglik"] == pytest.approx(model.score(returns.reshape(-1, 1)), rel=1e-8)
