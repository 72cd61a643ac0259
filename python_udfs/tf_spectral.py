"""FFT dominant frequency, band power shares and spectral entropy (FEATURE_DEFINITIONS G6).
Plain numpy: the database server's own Python runs it (udf.spectral_features).

x is demeaned, no taper; X = rfft(x), P_k = |X_k|^2 for k = 0 .. floor(n/2) (no one-sided
doubling, no 1/n), at f_k = k/n cycles per sample. The DC bin k = 0 is left out of
everything below; the m = floor(n/2) bins k >= 1 are "the bins".
* dominant_freq = k*/n with k* = 1 + argmax(P[1:]) (first bin on ties), dominant_period
  = n/k* samples (both within an ulp of G6's rfftfreq(n)[k*] and 1/f*).
* Band shares of the non-DC power, in cycles per sample for 1-second returns:
  low [0, 1/32) (periods longer than 32 samples), mid [1/32, 1/8), high [1/8, 1/2] (the
  Nyquist bin counts). Membership is decided exactly in integers (32k < n, 8k < n):
  rfftfreq's k * (1/n) can round below a limit it equals (n = 392, k = 49 is 1/8).
* spectral_entropy = -sum p_k ln p_k / ln m with p_k = P_k / sum P, and 0 ln 0 = 0: 0 for
  one pure tone, 1 for a flat spectrum. n >= 4 makes m >= 2, so ln m > 0.
* n: the number of values used.
Constant x (all values equal) has no power off DC: shares, entropy, dominant_freq and
dominant_period are NaN (there is no dominant frequency; an argmax over zeros, or over the
~1e-60 of rounding noise that the FFT of a demeaned constant can leave, would pick a bin
arbitrarily). NaN or infinite values are rejected with their position; n < 4 is too short,
n > MAX_LENGTH too long (as many values convert from SQL in ~0.1 s; an rfft of a prime length
near it takes ~0.07 s).
"""

from __future__ import annotations

import numpy as np
from tf_common import InputError, check_finite, check_length, finite_signal

MIN_LENGTH = 4
MAX_LENGTH = 262_144  # 2^18
# band limits as divisors of the sample rate: low [0, 1/32), mid [1/32, 1/8), high [1/8, 1/2]
MID_FROM = 32
HIGH_FROM = 8


def spectral_features(x: object) -> dict[str, float]:
    """dominant_freq, dominant_period, band_low_share, band_mid_share, band_high_share,
    spectral_entropy and n of the last len(x) values (G6)."""
    signal = finite_signal(x, max_length=MAX_LENGTH)
    n = len(signal)
    if n < MIN_LENGTH:
        raise InputError(f"x is too short: {n} values, need at least {MIN_LENGTH}")
    nan = float("nan")
    out = {
        "dominant_freq": nan,
        "dominant_period": nan,
        "band_low_share": nan,
        "band_mid_share": nan,
        "band_high_share": nan,
        "spectral_entropy": nan,
        "n": n,
    }
    if signal.min() == signal.max():
        return out
    spectrum = np.fft.rfft(signal - signal.mean())[1:]
    power = spectrum.real**2 + spectrum.imag**2
    total = power.sum()
    if total == 0:
        return out
    k = np.arange(1, len(power) + 1)
    k_star = int(np.argmax(power)) + 1
    p = power / total
    p = p[p > 0]
    out.update(
        dominant_freq=k_star / n,
        dominant_period=n / k_star,
        band_low_share=float(power[MID_FROM * k < n].sum() / total),
        band_mid_share=float(power[(MID_FROM * k >= n) & (HIGH_FROM * k < n)].sum() / total),
        band_high_share=float(power[HIGH_FROM * k >= n].sum() / total),
        spectral_entropy=float(-np.sum(p * np.log(p)) / np.log(len(power))),
    )
    return out


# --- many windows at once (K14 spectral_bars) ---------------------------------------------------

TAPERS = (None, "hann")


def hann(n: int) -> np.ndarray:
    """The periodic Hann taper w_t = 0.5 - 0.5 cos(2 pi t / n), t = 0 .. n-1 (scipy's
    get_window('hann', n), i.e. sym=False: the DFT-even form used for spectral estimates)."""
    return 0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(n) / n)


def spectral_rows(rows: object, taper: str | None = None) -> dict[str, np.ndarray]:
    """G6 on every row of a 2-D array (many windows of one length n): one array per feature,
    one value per row. Each row is demeaned and, with taper='hann', then multiplied by hann(n)
    (a tapered spectrum must carry its own column name, G6 step 2); P_k = |rfft|^2 over the
    m = floor(n/2) bins k >= 1, as spectral_features(). Without a taper dominant_freq,
    dominant_period, the band shares and spectral_entropy are those of spectral_features()
    on the row. Also:
    * dominant_share = P_k* / sum P, the power share of the dominant bin;
    * spectral_flatness = exp(mean ln P_k) / mean P_k (Wiener entropy: 1 for a flat spectrum,
      0 when a bin holds no power);
    * spectral_centroid = sum f_k p_k and spectral_spread = sqrt(sum (f_k - centroid)^2 p_k),
      f_k = k/n cycles per sample, p_k = P_k / sum P.
    A row whose values are all equal, or whose non-DC power is 0, gives NaN everywhere (as
    spectral_features). n is 4 .. MAX_LENGTH; a NaN or infinity anywhere is an InputError."""
    matrix = np.asarray(rows, dtype=np.float64)
    if matrix.ndim != 2:
        raise InputError(f"rows must be a 2-D array, got {matrix.ndim} dimensions")
    count, n = matrix.shape
    if n < MIN_LENGTH:
        raise InputError(f"rows are too short: {n} values, need at least {MIN_LENGTH}")
    check_length(n, MAX_LENGTH, "rows")
    check_finite(matrix, "rows")
    if taper not in TAPERS:
        raise InputError(f"unknown taper {taper!r} (known: none, hann)")
    signal = matrix - matrix.mean(axis=1, keepdims=True)
    if taper == "hann":
        signal = signal * hann(n)
    spectrum = np.fft.rfft(signal, axis=1)[:, 1:]
    power = spectrum.real**2 + spectrum.imag**2
    total = power.sum(axis=1)
    usable = (matrix.min(axis=1) < matrix.max(axis=1)) & (total > 0)
    k = np.arange(1, power.shape[1] + 1)
    freq = k / n
    with np.errstate(divide="ignore", invalid="ignore"):
        p = power / total[:, None]
        k_star = np.argmax(power, axis=1) + 1
        logs = np.log(power)  # -inf for an empty bin: the geometric mean is then 0
        centroid = p @ freq
        out = {
            "dominant_freq": k_star / n,
            "dominant_period": n / k_star,
            "dominant_share": power[np.arange(count), k_star - 1] / total,
            "band_low_share": power[:, MID_FROM * k < n].sum(axis=1) / total,
            "band_mid_share": power[:, (MID_FROM * k >= n) & (HIGH_FROM * k < n)].sum(axis=1)
            / total,
            "band_high_share": power[:, HIGH_FROM * k >= n].sum(axis=1) / total,
            "spectral_entropy": -np.where(p > 0, p * np.log(p), 0.0).sum(axis=1) / np.log(len(k)),
            "spectral_flatness": np.exp(logs.mean(axis=1)) / (total / len(k)),
            "spectral_centroid": centroid,
            "spectral_spread": np.sqrt(((freq[None, :] - centroid[:, None]) ** 2 * p).sum(axis=1)),
        }
    for values in out.values():
        values[~usable] = np.nan
    return out
