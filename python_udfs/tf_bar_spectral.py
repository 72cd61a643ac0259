"""The `spectral_bars` bar family (FEATURE_DEFINITIONS K14 with G4, G5 and G6): the spectrum,
the db4 wavelet energies and the SSA eigenvalue shares of the trailing 256 and 1024 one-minute
log returns, refitted at each bar whose open minute is :59 (refit_stride 60) and carried
forward. models/bar_k14/spectral_bars.yml defines every column.

At a refit bar t the window of n returns is r_(t-n+1) .. r_t, r_i = ln(C_i / C_(i-1)) computed
as ln(1 + (C_i - C_(i-1)) / C_(i-1)) (exactly 0 for an unchanged close), from the closes of
bars t-n .. t; returns across a gap are ordinary consecutive-bar returns (K0). A refit with
fewer than n + 1 closes gives NULL, and so does one whose window holds a NaN (final bars have
none). Every column of one n is carried from the latest refit at or before the bar, NULL
before the first; refit_window does not apply (the windows are in the column names).

The math is the existing kernels', on all the refit windows of a call at once:
tf_spectral.spectral_rows (G6, tf_spectral's bands), tf_wavelet.wavedec_rows (G4, pywt's
wavedec), tf_ssa.ssa_leading_shares_rows (G5: the three leading eigenvalues of X X' by Lanczos
and the trace of X in closed form, no SVD; equal to np.linalg.svd's shares within 1e-10
relative). An all-zero window (a flat stretch) has no spectrum and no energy: its shares are
0/0, NULL.

Incremental refresh: only refits at or after `start` are computed; the rows before the first of
them carry `prev` (the stored row before `start`), which holds every column exactly, so no
state_ column is needed. WARMUP_BARS = 1024 = the longest window: a refit at `start` reads the
closes of the 1024 bars before it.
"""

from __future__ import annotations

import math

import numpy as np
import tf_spectral
import tf_ssa
import tf_wavelet
from tf_bar_common import Bars
from tf_common import InputError, checkpoint

MODEL = "spectral_bars"
WINDOWS: tuple[int, ...] = (256, 1024)  # returns per window (n + 1 closes)
WAVELET = "db4"
SSA_COMPONENTS = 3  # components 0, 1, 2; the rest is noise
REFIT_STRIDE = 60  # minutes: a refit at each bar whose open minute % stride == stride - 1
WINDOWS_PER_BATCH = 256  # refit windows computed together


def wavelet_level(n: int) -> int:
    """dwt_max_level(n, 8) for db4: 5 for 256 returns, 7 for 1024."""
    return tf_wavelet.dwt_max_level(n, len(tf_wavelet.filters(WAVELET)[0]))


# spectral_rows keys -> column stems, untapered and with the Hann taper
SPECTRAL: dict[str, str] = {
    "dominant_freq": "spec_dom_freq",
    "dominant_period": "spec_dom_period",
    "dominant_share": "spec_dom_share",
    "band_low_share": "spec_band_low_share",
    "band_mid_share": "spec_band_mid_share",
    "band_high_share": "spec_band_high_share",
    "spectral_entropy": "spec_entropy",
    "spectral_flatness": "spec_flatness",
    "spectral_centroid": "spec_centroid",
    "spectral_spread": "spec_spread",
}
HANN: dict[str, str] = {
    "dominant_freq": "spec_hann_dom_freq",
    "dominant_period": "spec_hann_dom_period",
    "band_low_share": "spec_hann_band_low_share",
    "band_mid_share": "spec_hann_band_mid_share",
    "band_high_share": "spec_hann_band_high_share",
    "spectral_entropy": "spec_hann_entropy",
}


def wavelet_stems(n: int) -> list[str]:
    level = wavelet_level(n)
    return [
        f"wav_energy_a{level}",
        *(f"wav_energy_d{j}" for j in range(level, 0, -1)),
        "wav_detail_approx_ratio",
        "wav_entropy",
        "wav_scaling_slope",
    ]


SSA_STEMS: tuple[str, ...] = (
    "ssa_share0",
    "ssa_share1",
    "ssa_share2",
    "ssa_osc_share",
    "ssa_noise_share",
)


def window_columns(n: int) -> list[str]:
    """The columns of the n-return window, in model order."""
    stems = [*SPECTRAL.values(), *HANN.values(), *wavelet_stems(n), *SSA_STEMS]
    return [f"{stem}_n{n}" for stem in stems]


COLUMNS: list[str] = [name for n in WINDOWS for name in window_columns(n)]

MODELS: dict[str, list[str]] = {MODEL: COLUMNS}

# a refit at the first written bar reads the closes of the 1024 bars before it; values carried
# from earlier refits come from `prev`
WARMUP_BARS: dict[str, int] = {MODEL: max(WINDOWS)}


def compute(model: str, bars: Bars, params: dict) -> dict[str, np.ndarray]:
    """Every column of `model` on one symbol's bars (tf_bar_common explains the contract)."""
    if model != MODEL:
        raise InputError(f"tf_bar_spectral has no model '{model}'")
    stride = _stride(params.get("refit_stride"))
    start = int(params.get("start") or 0)
    prev = params.get("prev") or {}
    close = bars.close
    m = len(close)
    returns = np.full(m, np.nan)
    if m > 1:
        returns[1:] = np.log1p((close[1:] - close[:-1]) / close[:-1])
    refits = np.flatnonzero(bars.minute % stride == stride - 1)
    refits = refits[refits >= start]
    out: dict[str, np.ndarray] = {}
    for n in WINDOWS:
        names = window_columns(n)
        values = np.full((len(refits), len(names)), np.nan)
        enough = np.flatnonzero(refits >= n)  # n returns need the n + 1 closes t-n .. t
        for a in range(0, len(enough), WINDOWS_PER_BATCH):
            checkpoint()
            which = enough[a : a + WINDOWS_PER_BATCH]
            windows = returns[refits[which][:, None] + np.arange(1 - n, 1)[None, :]]
            finite = np.isfinite(windows).all(axis=1)
            values[which[finite]] = window_features(windows[finite], n)
        out.update(_carry(names, values, refits, m, start, prev))
    return out


def _stride(value: object) -> int:
    if value is None:
        return REFIT_STRIDE
    try:
        stride = int(value)  # type: ignore[call-overload]
    except (TypeError, ValueError):
        raise InputError(f"refit_stride must be a whole number of minutes, got {value!r}") from None
    if stride != value or stride < 1:
        raise InputError(f"refit_stride must be a whole number of minutes >= 1, got {value!r}")
    return stride


def _carry(
    names: list[str],
    values: np.ndarray,
    refits: np.ndarray,
    m: int,
    start: int,
    prev: dict,
) -> dict[str, np.ndarray]:
    """Each column from `start` on: the value of the latest refit at or before the bar, or
    before the first refit the stored row before `start` (NULL without one)."""
    rows = np.arange(start, m)
    latest = np.searchsorted(refits, rows, side="right") - 1
    out = {}
    for c, name in enumerate(names):
        before = prev.get(name)
        column = np.full(m, np.nan)
        column[start:] = np.where(
            latest >= 0,
            values[np.maximum(latest, 0), c] if len(refits) else np.nan,
            np.nan if before is None else float(before),
        )
        out[name] = column
    return out


def window_features(windows: np.ndarray, n: int) -> np.ndarray:
    """The columns of window_columns(n) (in that order) for each row of `windows` (finite
    windows of n returns), shape (rows, columns)."""
    columns: list[np.ndarray] = []
    if not len(windows):
        return np.empty((0, len(window_columns(n))))
    spectral = tf_spectral.spectral_rows(windows)
    columns += [spectral[key] for key in SPECTRAL]
    hann = tf_spectral.spectral_rows(windows, taper="hann")
    columns += [hann[key] for key in HANN]
    columns += _wavelet_features(windows, n)
    shares = tf_ssa.ssa_leading_shares_rows(windows, n // 2, SSA_COMPONENTS)
    columns += [shares[:, r] for r in range(SSA_COMPONENTS)]
    columns.append(shares[:, 1] + shares[:, 2])
    columns.append(np.maximum(1.0 - shares.sum(axis=1), 0.0))
    return np.stack(columns, axis=1)


def _wavelet_features(windows: np.ndarray, n: int) -> list[np.ndarray]:
    """G4: each array's energy share [a_J, d_J .. d_1], the detail / approximation ratio, the
    normalised entropy of the shares and the slope of log2(mean squared detail coefficient)
    over the levels j = 1 .. J."""
    level = wavelet_level(n)
    coeffs = tf_wavelet.wavedec_rows(windows, WAVELET, level)
    energy = np.stack([np.einsum("ij,ij->i", c, c) for c in coeffs], axis=1)
    total = energy.sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        share = energy / total[:, None]
        ratio = energy[:, 1:].sum(axis=1) / energy[:, 0]
        entropy = -np.where(share > 0, share * np.log(share), 0.0).sum(axis=1) / math.log(level + 1)
        # level j's details are coeffs[-j]
        per_coefficient = np.stack(
            [energy[:, -j] / coeffs[-j].shape[1] for j in range(1, level + 1)], axis=1
        )
        y = np.log2(per_coefficient)
        x = np.arange(1, level + 1) - (level + 1) / 2.0
        slope = (y - y.mean(axis=1, keepdims=True)) @ x / (x @ x)
    empty = total == 0
    share[empty] = np.nan
    ratio[empty | (energy[:, 0] == 0)] = np.nan
    entropy[empty] = np.nan
    slope[(per_coefficient == 0).any(axis=1)] = np.nan
    return [*share.T, ratio, entropy, slope]
