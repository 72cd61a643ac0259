"""Discrete wavelet transform as PyWavelets' `wavedec` computes it (FEATURE_DEFINITIONS G4).

Plain numpy, no other dependency: the database server's own Python runs it (udf.wavedec).
One analysis step convolves the 'symmetric' (half-sample symmetric) extension of the
signal with the decomposition filters and keeps every second sample:
    cA[o] = sum_j dec_lo[j] * x~[2o + 1 - j],  o = 0 .. floor((N + F - 1) / 2) - 1,
and cD the same with dec_hi. wavedec repeats it on cA and returns [cA_J, cD_J, ..., cD_1].

Limits: x has at most MAX_LENGTH values (the coefficients, about as many, take ~0.3 s to
convert to SQL arrays) and no NaN or infinity; level is 0 .. dwt_max_level(N, F), where
PyWavelets only warns above it and every further level is boundary effect alone (an
unbounded level once ran for 19 minutes and grew to 6.4 GB).
"""

from __future__ import annotations

import math

import numpy as np
from tf_common import InputError, check_finite, check_length, checkpoint, finite_signal

MAX_LENGTH = 262_144  # 2^18

# rec_lo of the Daubechies wavelets (PyWavelets' coefficient table); these decimal strings
# parse to exactly the doubles of pywt.Wavelet(name).rec_lo
_REC_LO = {
    "db4": (
        0.23037781330889650086,
        0.71484657055291564709,
        0.63088076792985890788,
        -0.02798376941685985421,
        -0.18703481171909308408,
        0.03084138183556076363,
        0.03288301166688519974,
        -0.01059740178506903210,
    ),
}

WAVELETS = tuple(sorted(_REC_LO))


def filters(wavelet: str) -> tuple[np.ndarray, np.ndarray]:
    """(dec_lo, dec_hi) of a wavelet: dec_lo[i] = h[L-1-i], dec_hi[i] = (-1)^(L-1-i) h[i]."""
    if wavelet not in _REC_LO:
        raise InputError(f"unknown wavelet {wavelet!r} (known: {', '.join(WAVELETS)})")
    h = np.array(_REC_LO[wavelet])
    n = len(h)
    dec_lo = h[::-1].copy()
    dec_hi = np.array([(-1) ** (n - 1 - i) * h[i] for i in range(n)])
    return dec_lo, dec_hi


def dwt_max_level(n: int, filter_len: int) -> int:
    """pywt.dwt_max_level: 0 if n < F - 1, else floor(log2(n // (F - 1)))."""
    if n < filter_len - 1:
        return 0
    return math.floor(math.log2(n // (filter_len - 1)))


def _symmetric(index: np.ndarray, n: int) -> np.ndarray:
    """Positions in x of x~[index]: x~[-1] = x[0], x~[n] = x[n-1], period 2n."""
    m = np.mod(index, 2 * n)
    return np.where(m < n, m, 2 * n - 1 - m)


def dwt(x: np.ndarray, dec_lo: np.ndarray, dec_hi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """One analysis step in 'symmetric' mode: (cA, cD)."""
    n, f = len(x), len(dec_lo)
    out = (n + f - 1) // 2
    taps = 2 * np.arange(out)[:, None] + 1 - np.arange(f)[None, :]
    windows = x[_symmetric(taps, n)]
    # summed tap by tap, in filter order, as PyWavelets' C loop does
    c_a = np.zeros(out)
    c_d = np.zeros(out)
    for j in range(f):
        c_a += dec_lo[j] * windows[:, j]
        c_d += dec_hi[j] * windows[:, j]
    return c_a, c_d


def wavedec(x: object, wavelet: str = "db4", level: int | None = None) -> list[np.ndarray]:
    """[cA_J, cD_J, cD_{J-1}, ..., cD_1] as pywt.wavedec(x, wavelet, mode='symmetric', level)."""
    signal = finite_signal(x, max_length=MAX_LENGTH)
    dec_lo, dec_hi = filters(wavelet)
    top = dwt_max_level(len(signal), len(dec_lo))
    if level is None:
        level = top
    elif level < 0:
        raise InputError(f"level must be >= 0, got {level}")
    elif level > top:
        raise InputError(
            f"level must be between 0 and {top} (dwt_max_level of {len(signal)} values"
            f" and {wavelet}), got {level}"
        )
    details = []
    approximation = signal
    for _ in range(level):
        checkpoint()
        approximation, detail = dwt(approximation, dec_lo, dec_hi)
        details.append(detail)
    return [approximation, *reversed(details)]


def dwt_rows(
    rows: np.ndarray, dec_lo: np.ndarray, dec_hi: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """dwt() of each row of a 2-D array at once: (cA, cD), one row each per input row. The
    same taps in the same order as dwt(), so each row equals dwt() of that row."""
    n, f = rows.shape[1], len(dec_lo)
    out = (n + f - 1) // 2
    taps = 2 * np.arange(out)[:, None] + 1 - np.arange(f)[None, :]
    windows = rows[:, _symmetric(taps, n)]  # (rows, out, f)
    c_a = np.zeros((len(rows), out))
    c_d = np.zeros((len(rows), out))
    for j in range(f):
        c_a += dec_lo[j] * windows[:, :, j]
        c_d += dec_hi[j] * windows[:, :, j]
    return c_a, c_d


def wavedec_rows(rows: object, wavelet: str = "db4", level: int | None = None) -> list[np.ndarray]:
    """wavedec() of every row of a 2-D array (many signals of one length, e.g. the trailing
    windows of a series): [cA_J, cD_J, ..., cD_1], each a 2-D array with one row per signal.
    Row i of every array equals wavedec(rows[i], wavelet, level); the same limits apply to
    the row length, and a NaN or infinity anywhere is an InputError."""
    matrix = np.asarray(rows, dtype=np.float64)
    if matrix.ndim != 2:
        raise InputError(f"rows must be a 2-D array, got {matrix.ndim} dimensions")
    check_length(matrix.shape[1], MAX_LENGTH, "rows")
    check_finite(matrix, "rows")
    dec_lo, dec_hi = filters(wavelet)
    top = dwt_max_level(matrix.shape[1], len(dec_lo))
    if level is None:
        level = top
    elif not 0 <= level <= top:
        raise InputError(
            f"level must be between 0 and {top} (dwt_max_level of {matrix.shape[1]} values"
            f" and {wavelet}), got {level}"
        )
    details = []
    approximation = matrix
    for _ in range(level):
        checkpoint()
        approximation, detail = dwt_rows(approximation, dec_lo, dec_hi)
        details.append(detail)
    return [approximation, *reversed(details)]
