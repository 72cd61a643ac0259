"""Window features of the heavy families that need more than one kernel: `hht` (G1 + G2) and
`hmm_regime` (G3). The dbt models pass one trailing window of 1-second mid closes per call;
models/heavy/*.yml define every output.

The window is put in basis points of its first close, x_t = 10^4 ln(m_t / m_0): EMD's stopping
thresholds (range_thr 0.001, total_power_thr 0.005, sum h^2 < 1e-10) are absolute, and on raw
log prices, whose moves are around 1e-4, they would stop the decomposition at once.

Limits: closes are finite and positive (NaN and infinity are named by position as in every
kernel), span_seconds finite; hht_features takes at most HHT_MAX_BARS closes (tf_emd's
MAX_LENGTH), hmm_regime_features at most HMM_MAX_BARS (tf_hmm's MAX_LENGTH, and its
n_states and n_iter rules).
"""

from __future__ import annotations

import math
import time

import numpy as np
import tf_emd
import tf_hilbert
import tf_hmm
from tf_common import InputError, check_number, finite_signal

HHT_MIN_BARS = 16
HHT_MAX_BARS = tf_emd.MAX_LENGTH
HMM_MAX_BARS = tf_hmm.MAX_LENGTH


def _basis_points(closes: object, max_length: int) -> np.ndarray:
    m = finite_signal(closes, "closes", max_length)
    bad = np.flatnonzero(~(m > 0))
    if bad.size:
        raise InputError(f"closes must be positive prices; position {bad[0] + 1} is {m[bad[0]]}")
    return 1e4 * np.log(m / m[0])


def hht_features(closes: object, span_seconds: float) -> dict[str, float | int | None]:
    """The `hht` columns of one window of closes (oldest first) spanning `span_seconds`."""
    started = time.perf_counter()
    x = _basis_points(closes, HHT_MAX_BARS)
    span_seconds = check_number(span_seconds, "span_seconds")
    n = x.size
    if n < HHT_MIN_BARS:
        raise InputError(f"closes is too short: {n} bars, need at least {HHT_MIN_BARS}")
    imfs, residue = tf_emd.imfs_and_residue(x)
    t = np.arange(n, dtype=float)
    slope = float(np.polyfit(t, residue, 1)[0])
    energies = np.sum(imfs * imfs, axis=1)
    residual_energy = float(np.sum((residue - residue.mean()) ** 2))
    total = float(energies.sum()) + residual_energy
    shares = [
        float(energies[0]) if imfs.shape[0] else 0.0,
        float(energies[1:].sum()),
        residual_energy,
    ]
    out: dict[str, float | int | None] = {
        "imf_count": int(imfs.shape[0]),
        "trend_slope": slope,
        "energy_high_freq": shares[0] / total if total > 0 else None,
        "energy_mid_freq": shares[1] / total if total > 0 else None,
        "energy_residual": shares[2] / total if total > 0 else None,
        "data_quality": min(1.0, n / span_seconds) if span_seconds > 0 else None,
    }
    price_range = float(x.max() - x.min())
    trend_move = float(residue[-1] - residue[0])
    out["trend_strength"] = min(1.0, abs(trend_move) / price_range) if price_range > 0 else 0.0
    steps = np.sign(np.diff(residue))
    direction = np.sign(slope)
    out["trend_confidence"] = float(np.mean(steps == direction)) if direction != 0 else 0.0
    # trailing run of residue steps in the direction of the last step, as a share of the window
    last = steps[-1]
    run = n - 1 if np.all(steps == last) else int(np.argmax(steps[::-1] != last))
    out["trend_persistence"] = run / (n - 1) if last != 0 else 0.0
    cycle = x - residue
    spread = math.sqrt(float(np.mean(cycle * cycle)))
    out["mean_reversion"] = float(residue[-1] - x[-1]) / spread if spread > 0 else 0.0
    if total > 0:
        regime = int(np.argmax(shares))  # 0 noise, 1 cycle, 2 trend
    else:
        regime = None
    out["regime_classifier"] = regime
    out["market_state"] = int(direction) if regime == 2 else 0
    if imfs.shape[0]:
        dominant = imfs[int(np.argmax(energies))]
        amplitude, phase, frequency = tf_hilbert.analytic_signal(dominant)
        weight = float(amplitude[1:].sum())
        out["dominant_freq"] = (
            float(np.dot(amplitude[1:], frequency[1:])) / weight if weight > 0 else None
        )
        out["inst_amplitude"] = float(amplitude[-1])
        out["cycle_phase"] = float(math.remainder(float(phase[-1]), 2 * math.pi))
    else:
        out["dominant_freq"] = out["inst_amplitude"] = out["cycle_phase"] = None
    out["calculation_time_ms"] = 1e3 * (time.perf_counter() - started)
    return out


def hmm_regime_features(
    closes: object, n_states: int = 3, n_iter: int = 10, seed: int = 0
) -> dict[str, object]:
    """The `hmm_regime` columns of one window: a Gaussian HMM fitted to the window's 1-second
    log returns in basis points, states by ascending mean return; the state and its
    probabilities are the causal filtered ones at the window's last bar."""
    x = _basis_points(closes, HMM_MAX_BARS)
    returns = np.diff(x)
    params = tf_hmm.hmm_fit(returns, n_states, n_iter, seed)
    filtered = np.asarray(tf_hmm.hmm_filtered(returns, params))
    states = np.argmax(filtered, axis=1)
    state = int(states[-1])
    changed = np.flatnonzero(states != state)
    duration = returns.size - (int(changed[-1]) + 1 if changed.size else 0)
    return {
        "state": state,
        "probabilities": filtered[-1].tolist(),
        "duration": duration,
        "means": list(params["means"]),
        "variances": list(params["variances"]),
        "loglik": float(params["loglik"]),
    }
