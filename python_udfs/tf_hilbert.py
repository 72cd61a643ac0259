"""The analytic signal through the FFT, as scipy.signal.hilbert computes it (G2), and the
instantaneous amplitude, phase and frequency of the Hilbert-Huang transform.

Plain numpy, no other dependency: the database server's own Python runs it.

Limits: x has at most MAX_LENGTH values (the three results, 3 N values, take ~0.5 s to convert
to SQL arrays; the FFTs take milliseconds) and no NaN or infinity (the FFT would spread one
over every output).
"""

from __future__ import annotations

import numpy as np
from tf_common import finite_signal

MAX_LENGTH = 131_072  # 2^17


def analytic(x: object) -> np.ndarray:
    """z = ifft(fft(x) * h): h = 1 at 0 (and N/2 for even N), 2 on positive frequencies."""
    signal = finite_signal(x, max_length=MAX_LENGTH)
    n = len(signal)
    h = np.zeros(n)
    if n % 2 == 0:
        h[0] = h[n // 2] = 1
        h[1 : n // 2] = 2
    else:
        h[0] = 1
        h[1 : (n + 1) // 2] = 2
    return np.fft.ifft(np.fft.fft(signal) * h)


def analytic_signal(x: object) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(amplitude |z|, phase unwrap(angle z), instantaneous frequency in cycles per sample).

    The frequency is the forward difference of the phase over 2 pi, aligned to the later
    sample: inst_freq[0] is NaN (ENGINE CONVENTION, G2).
    """
    z = analytic(x)
    phase = np.unwrap(np.angle(z))
    inst_freq = np.concatenate([[np.nan], np.diff(phase) / (2 * np.pi)])
    return np.abs(z), phase, inst_freq
