"""Singular Spectrum Analysis (FEATURE_DEFINITIONS G5): per-component reconstructions and the
eigenvalue shares. Plain numpy: the database server's own Python runs it (udf.ssa).

With window L and K = N - L + 1, the trajectory matrix is X[i, j] = x[i + j] (L x K) and
X = sum_r s_r u_r v_r' (np.linalg.svd, full_matrices=False, s descending). Component r is
the diagonal average of s_r u_r v_r':
    y_r[k] = (1 / c_k) * sum_{i + j = k} s_r u_r[i] v_r[j],  c_k = min(k + 1, L, K, N - k),
and the anti-diagonal sums of an outer product u v' are the full convolution of u and v, so
each component is one np.convolve (O(L K), the order of the SVD's own cost per component).
The components sum back to x, and the sign an SVD leaves open cancels in s_r u_r v_r'.

Window: 2 <= L <= N/2. For an integer L that is L <= floor(N/2), so an odd N allows
L = (N - 1)/2 and no rounding question arises; the ENGINE DEFAULT (window None) is
floor(N/2). Since L <= N/2 < K, the rank bound min(L, K) is L.

NaN or infinite values are rejected with the position (an SVD of them is meaningless).

Limits, so that the one SVD (which cannot be interrupted) takes well under 0.5 s and the result
converts to SQL in ~0.25 s: N <= MAX_LENGTH; L^2 (N - L + 1) <= MAX_SVD_WORK (the SVD's
flop count up to a constant: L = N/2 up to N = 736, L <= 78 at N = 8,192); and
n_components x N <= MAX_OUTPUT values.
"""

from __future__ import annotations

import operator

import numpy as np
from tf_common import InputError, checkpoint, finite_signal

MIN_LENGTH = 4  # the smallest N with a window 2 <= L <= N/2
MAX_LENGTH = 8_192
MAX_SVD_WORK = 50_000_000  # L^2 (N - L + 1): an SVD of ~0.05 s (~0.3 s on a busy machine)
MAX_OUTPUT = 262_144  # n_components x N values in the result (2^18)


def max_window(n: int) -> int:
    """The largest window N values allow: L <= N/2 and L^2 (N - L + 1) <= MAX_SVD_WORK."""
    length = n // 2
    if length * length * (n - length + 1) <= MAX_SVD_WORK:
        return length
    # L^2 (N - L + 1) grows with L for L <= N/2: bisect for the largest L within the budget
    lo, hi = 2, length
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if mid * mid * (n - mid + 1) <= MAX_SVD_WORK:
            lo = mid
        else:
            hi = mid
    return lo


def _window(signal: np.ndarray, window: object) -> int:
    """The checked window length L: floor(N/2) when None, else 2 <= L <= N/2; either way at
    most max_window(N)."""
    n = len(signal)
    if n < MIN_LENGTH:
        raise InputError(f"x is too short: {n} values, need at least {MIN_LENGTH}")
    top = max_window(n)
    if window is None:
        length = n // 2
    else:
        try:
            length = operator.index(window)  # type: ignore[arg-type]
        except TypeError:
            raise InputError(f"window must be an integer, got {window!r}") from None
    if top == n // 2 and not 2 <= length <= top:
        raise InputError(
            f"window must be between 2 and {n // 2} (half of the {n} values), got {length}"
        )
    if not 2 <= length <= top:
        raise InputError(
            f"window must be between 2 and {top} for {n} values (window^2 x (N - window + 1)"
            f" <= {MAX_SVD_WORK}), got {length}"
        )
    return length


def trajectory(signal: np.ndarray, window: int) -> np.ndarray:
    """The L x K Hankel matrix X[i, j] = x[i + j]."""
    k = len(signal) - window + 1
    return signal[np.arange(window)[:, None] + np.arange(k)[None, :]]


def ssa(x: object, window: int | None, n_components: int) -> np.ndarray:
    """The reconstructions of components 0 .. n_components - 1, shape (n_components, N).

    Row r is the diagonal average of s_r u_r v_r' (s descending); all L rows sum to x.
    """
    signal = finite_signal(x, max_length=MAX_LENGTH)
    length = _window(signal, window)
    try:
        count = operator.index(n_components)  # type: ignore[arg-type]
    except TypeError:
        raise InputError(f"n_components must be an integer, got {n_components!r}") from None
    n = len(signal)
    top = min(length, MAX_OUTPUT // n)
    if not 1 <= count <= top:
        if top == length:
            raise InputError(
                f"n_components must be between 1 and {length} (the window), got {count}"
            )
        raise InputError(
            f"n_components must be between 1 and {top} for {n} values"
            f" (n_components x N <= {MAX_OUTPUT}), got {count}"
        )
    checkpoint()
    u, s, vt = np.linalg.svd(trajectory(signal, length), full_matrices=False)
    k = np.arange(n)
    counts = np.minimum(np.minimum(k + 1, n - k), length)  # c_k; L <= K
    out = np.empty((count, n))
    for r in range(count):
        checkpoint()
        out[r] = s[r] * np.convolve(u[:, r], vt[r]) / counts
    return out


def ssa_shares(x: object, window: int | None = None) -> np.ndarray:
    """The eigenvalue shares s_r^2 / sum s^2 of all L components, descending; NaN for x = 0."""
    signal = finite_signal(x, max_length=MAX_LENGTH)
    s = np.linalg.svd(trajectory(signal, _window(signal, window)), compute_uv=False)
    energy = s * s
    total = energy.sum()
    if total == 0:
        return np.full(len(s), np.nan)
    return energy / total
