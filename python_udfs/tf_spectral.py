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
from tf_common import InputError, finite_signal

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
