"""Reference implementation ("oracle") of the bar family `spectral_bars` (FEATURE_DEFINITIONS
K14 with G4, G5, G6), written from that text and the column descriptions of
models/bar_k14/spectral_bars.yml, not from the kernel.

One window at a time, as a Python worker would do it with the reference libraries: numpy.fft
for the spectrum (G6), PyWavelets' wavedec for the db4 energies (G4), np.linalg.svd of the
trajectory matrix for the SSA shares (G5). Band membership is decided exactly in integers, the
Hann taper is scipy's get_window('hann', n), and the refit schedule is found by walking the
bars. One symbol per call, bars sorted by ts (tests/oracle/bar_datasets.COLUMNS).
"""

from __future__ import annotations

import math
from contextlib import AbstractContextManager, nullcontext

import numpy as np
import pandas as pd
import pywt
import scipy.signal

try:  # installed with the reference libraries (scikit-learn, for hmmlearn)
    from threadpoolctl import threadpool_limits
except ImportError:  # pragma: no cover
    threadpool_limits = None

WINDOWS = (256, 1024)


def _one_blas_thread() -> AbstractContextManager[object]:
    """One BLAS thread for the SVDs, as a worker process per symbol would run them: a threaded
    512 x 513 SVD is 30 times slower when the other core is busy."""
    return nullcontext() if threadpool_limits is None else threadpool_limits(1, "blas")


def _log_returns(close: np.ndarray) -> np.ndarray:
    """r_t = ln(1 + (C_t - C_(t-1)) / C_(t-1)), NaN on the first bar (the YAML's formula)."""
    out = np.full(len(close), np.nan)
    for t in range(1, len(close)):
        out[t] = math.log1p((close[t] - close[t - 1]) / close[t - 1])
    return out


def _spectrum(x: np.ndarray, taper: bool) -> dict[str, float] | None:
    """G6 on one window; None when the window has no power off DC."""
    n = len(x)
    if x.max() == x.min():
        return None
    y = x - x.mean()
    if taper:
        y = y * scipy.signal.get_window("hann", n)
    power = np.abs(np.fft.rfft(y)) ** 2
    freqs = np.fft.rfftfreq(n, d=1.0)
    bins = list(range(1, n // 2 + 1))
    total = math.fsum(power[k] for k in bins)
    if total == 0:
        return None
    best = 1 + int(np.argmax(power[1:]))  # the first bin on ties
    bands = {"low": 0.0, "mid": 0.0, "high": 0.0}
    for k in bins:
        # f_k = k/n against 1/32 and 1/8, exactly: k/n < 1/32 <=> 32 k < n
        band = "low" if 32 * k < n else "mid" if 8 * k < n else "high"
        bands[band] += power[k]
    p = np.array([power[k] / total for k in bins])
    f = np.array([freqs[k] for k in bins])
    entropy = -sum(v * math.log(v) for v in p if v > 0) / math.log(len(bins))
    positive = all(power[k] > 0 for k in bins)
    geometric = math.exp(sum(math.log(power[k]) for k in bins) / len(bins)) if positive else 0.0
    centroid = float(np.sum(f * p))
    return {
        "dom_freq": freqs[best],
        "dom_period": 1.0 / freqs[best],
        "dom_share": power[best] / total,
        "band_low_share": bands["low"] / total,
        "band_mid_share": bands["mid"] / total,
        "band_high_share": bands["high"] / total,
        "entropy": entropy,
        "flatness": geometric / (total / len(bins)),
        "centroid": centroid,
        "spread": math.sqrt(float(np.sum((f - centroid) ** 2 * p))),
    }


def _wavelet(x: np.ndarray) -> dict[str, float]:
    """G4: pywt.wavedec(x, 'db4') at pywt's maximum level; energy shares and the rest."""
    level = pywt.dwt_max_level(len(x), pywt.Wavelet("db4").dec_len)
    coeffs = pywt.wavedec(x, "db4", mode="symmetric", level=level)
    energy = [float(np.sum(c**2)) for c in coeffs]
    total = sum(energy)
    names = [f"energy_a{level}"] + [f"energy_d{j}" for j in range(level, 0, -1)]
    nan = float("nan")
    if total == 0:
        return {**dict.fromkeys(names, nan), "detail_approx_ratio": nan, "entropy": nan,
                "scaling_slope": nan}  # fmt: skip
    shares = [e / total for e in energy]
    out = dict(zip(names, shares, strict=True))
    out["detail_approx_ratio"] = sum(energy[1:]) / energy[0] if energy[0] > 0 else nan
    out["entropy"] = -sum(s * math.log(s) for s in shares if s > 0) / math.log(level + 1)
    # level j's details are coeffs[-j], j = 1 .. level
    means = [energy[-j] / len(coeffs[-j]) for j in range(1, level + 1)]
    if min(means) == 0:
        out["scaling_slope"] = nan
    else:
        out["scaling_slope"] = float(
            np.polyfit(np.arange(1, level + 1), np.log2(np.array(means)), 1)[0]
        )
    return out


def _ssa(x: np.ndarray) -> dict[str, float]:
    """G5 with L = floor(n/2): shares from np.linalg.svd of the trajectory matrix."""
    n = len(x)
    window = n // 2
    traj = np.array([x[i : i + n - window + 1] for i in range(window)])
    s = np.linalg.svd(traj, full_matrices=False, compute_uv=False)
    energy = s**2
    total = energy.sum()
    nan = float("nan")
    if total == 0:
        return dict.fromkeys(("share0", "share1", "share2", "osc_share", "noise_share"), nan)
    shares = energy / total
    return {
        "share0": shares[0],
        "share1": shares[1],
        "share2": shares[2],
        "osc_share": shares[1] + shares[2],
        "noise_share": max(0.0, 1.0 - (shares[0] + shares[1] + shares[2])),
    }


def window_values(x: np.ndarray, n: int) -> dict[str, float]:
    """Every column of the n-return window on one window x (n finite returns), by name."""
    nan = float("nan")
    out: dict[str, float] = {}
    for prefix, taper, keys in (
        ("spec", False, None),
        ("spec_hann", True, ("dom_freq", "dom_period", "band_low_share", "band_mid_share",
                             "band_high_share", "entropy")),
    ):  # fmt: skip
        spectrum = _spectrum(x, taper)
        names = keys or (
            "dom_freq", "dom_period", "dom_share", "band_low_share", "band_mid_share",
            "band_high_share", "entropy", "flatness", "centroid", "spread",
        )  # fmt: skip
        for key in names:
            out[f"{prefix}_{key}_n{n}"] = nan if spectrum is None else spectrum[key]
    for key, value in _wavelet(x).items():
        out[f"wav_{key}_n{n}"] = value
    for key, value in _ssa(x).items():
        out[f"ssa_{key}_n{n}"] = value
    return out


def spectral_bars(bars: pd.DataFrame, first_close: float, refit_stride: int = 60) -> pd.DataFrame:
    """The model's rows for one symbol: at each bar whose open minute (minutes since the epoch)
    is stride - 1 modulo the stride, each window's values on the trailing n returns (NULL with
    fewer than n + 1 closes); every bar carries the values of its latest refit."""
    del first_close  # the family works on raw log returns
    close = bars["close"].to_numpy(float)
    minutes = (bars["ts"] - pd.Timestamp("1970-01-01", tz="UTC")) // pd.Timedelta(minutes=1)
    returns = _log_returns(close)
    rows: list[dict[str, float]] = []
    current: dict[str, float] = {}
    with _one_blas_thread():
        for t, minute in enumerate(minutes.to_numpy()):
            if minute % refit_stride == refit_stride - 1:
                current = {}
                for n in WINDOWS:
                    if t >= n:
                        x = returns[t - n + 1 : t + 1]
                        current.update(window_values(x, n))
            rows.append(dict(current))
    frame = pd.DataFrame(rows, columns=list(_column_order()), dtype=float)
    frame.insert(0, "ts", bars["ts"].to_numpy())
    frame.insert(0, "symbol", bars["symbol"].to_numpy())
    return frame


def _column_order() -> list[str]:
    """The YAML's column order, from the oracle's own per-window names."""
    x = np.random.default_rng(0).standard_normal(1024)
    return [name for n in WINDOWS for name in window_values(x[:n], n)]
