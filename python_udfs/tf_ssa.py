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

import math
import operator

import numpy as np
from tf_common import InputError, check_finite, check_length, checkpoint, finite_signal

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


# --- the leading shares without a full SVD (K14 spectral_bars) ----------------------------------
#
# A share needs only its eigenvalue and the trace (G5, and K14's "readings fixed"): the trace
# sum s^2 is the sum of squares of X, sum_t c_t x_t^2 with c_t = min(t + 1, L, K, N - t) (the
# number of times x_t occurs in X), and the k leading s_r^2 are the k largest eigenvalues of
# the lag-covariance matrix X X' (L x L). Measured on 516 windows of N = 1024 one-minute
# returns (L = 512, one core): np.linalg.svd(X, compute_uv=False) 24 ms a window; X X' and
# scipy.linalg.eigh(subset_by_index) 10 ms (the reduction to tridiagonal form, 4/3 L^3 flops,
# whatever the subset); Lanczos on X X' one window at a time 7 ms; the Lanczos below, all the
# windows of a call at once, 1.6-2 ms (0.8-1 s for a symbol's 516 hourly windows).
#
# Lanczos with full reorthogonalisation, many windows in lockstep. X X' q is two FFT products
# of length N, never forming X X': u = X' q is the convolution of x with q reversed (its
# entries L - 1 .. N - 1, which no circular wrap reaches), and X u the same with u reversed.
# From the fixed start vector the Ritz values (eigenvalues of the tridiagonal T_j, LAPACK
# dstemr) rise towards the leading eigenvalues; a window stops when each of its k leading Ritz
# values theta has a residual |beta_j z_j| (which bounds the distance from theta to an
# eigenvalue) within LANCZOS_TOLERANCE * theta, or LANCZOS_FLOOR * trace for eigenvalues near
# 0: its shares are then within 1e-10 relative of np.linalg.svd's, 1e-14 absolute (in practice
# 1e-14 relative, since the eigenvalue error is about residual^2 / gap). Returns are close to
# white noise, so the leading eigenvalues lie close together (pairs 1e-3 apart) and the bulk
# is near: 30-110 steps at L = 512, 25-70 at L = 128.
#
# Leading eigenvalues that are close but distinct get resolved: the test cannot pass while a
# Ritz value sits between two eigenvalues, since its residual stays large (when they are closer
# than the tolerance, either is right). An eigenvalue repeated exactly is another matter: a
# Krylov space holds one direction of its eigenspace only. Windows with few distinct
# eigenvalues have them (a few non-zero returns, a constant or periodic window), and there the
# space soon becomes invariant (beta_j ~ 0, below BREAKDOWN): the iteration restarts from a
# fresh fixed vector orthogonalised against all before it (beta_j = 0 in T), and that segment
# finds the next copy. A window is then accepted only when the newest segment that has taken a
# step has converged too and its leading Ritz value (the largest eigenvalue of the part of the
# space the earlier segments did not reach) is not above the k-th. A full-rank window whose
# leading eigenvalue repeats exactly among many distinct ones (no early invariant space) would
# lose the copy; return windows do not make one (test_ssa.py tries sparse, constant, periodic,
# comb and tick-valued windows). Each window's arithmetic does not depend on the other windows
# of the call.

LANCZOS_TOLERANCE = 1e-10  # residual / theta at which a leading Ritz value is accepted
LANCZOS_FLOOR = 1e-14  # ... or residual / trace (eigenvalues near 0)
BREAKDOWN = 1e-13  # beta_j / trace below which the Krylov space is invariant: restart
LANCZOS_FIRST = 24  # the first convergence test, then every LANCZOS_EVERY steps
LANCZOS_EVERY = 3
LANCZOS_SKIP = 8  # the most steps between two tests of a row
DENSE_WINDOW = 48  # L up to this: the eigenvalues of X X' directly (cheaper than iterating)
ROWS_PER_BATCH = 64  # windows iterated in lockstep
_SEED = 5_140_014  # the start and restart vectors: default_rng([_SEED, L, i])


def trajectory_energy(rows: np.ndarray, window: int) -> np.ndarray:
    """sum s^2 = trace(X X') of each row's L x K trajectory matrix, from the row:
    sum_t c_t x_t^2 with c_t = min(t + 1, L, K, N - t) (L <= K)."""
    n = rows.shape[1]
    t = np.arange(n)
    counts = np.minimum(np.minimum(t + 1, n - t), min(window, n - window + 1)).astype(float)
    return (rows * rows) @ counts


def _fixed_vector(window: int, i: int) -> np.ndarray:
    return np.random.default_rng([_SEED, window, i]).standard_normal(window)


def _dense_leading(rows: np.ndarray, window: int, k: int) -> np.ndarray:
    k_cols = rows.shape[1] - window + 1
    out = np.empty((len(rows), k))
    index = np.arange(window)[:, None] + np.arange(k_cols)[None, :]
    for a in range(0, len(rows), ROWS_PER_BATCH):
        checkpoint()
        traj = rows[a : a + ROWS_PER_BATCH][:, index]
        values = np.linalg.eigvalsh(traj @ traj.transpose(0, 2, 1))
        out[a : a + ROWS_PER_BATCH] = np.maximum(values[:, ::-1][:, :k], 0.0)
    return out


def _top_ritz(alpha: np.ndarray, beta: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The k largest eigenvalues of the tridiagonal (alpha, beta[:-1]) in descending order and
    the last components of their eigenvectors (LAPACK dstemr)."""
    # imported here, not with the module: scipy.linalg takes ~0.2 s to import, which udf.ssa
    # and udf.ssa_shares (no Lanczos) should not pay in every new database session
    import scipy.linalg
    import scipy.linalg.lapack

    j = len(alpha)
    k = min(k, j)
    e = np.zeros(j)
    e[: j - 1] = beta[: j - 1]
    count, values, vectors, info = scipy.linalg.lapack.dstemr(
        alpha.copy(), e, 2, 0.0, 0.0, j - k + 1, j
    )
    if info != 0 or count != k:
        # dstemr gave up (it can, on some matrices): the robust bisection + inverse iteration
        values, vectors = scipy.linalg.eigh_tridiagonal(
            alpha, beta[: j - 1], select="i", select_range=(j - k, j - 1)
        )
        return values[::-1], vectors[-1, ::-1]
    return values[:k][::-1], vectors[-1, :k][::-1]


def _lanczos_leading(rows: np.ndarray, window: int, k: int, trace: np.ndarray) -> np.ndarray:
    """The k largest eigenvalues of X X' for each row (all rows have trace > 0)."""
    count, n = rows.shape
    k_cols = n - window + 1
    out = np.zeros((count, k))
    fft_x = np.fft.rfft(rows, axis=1)
    basis = np.empty((count, min(window, 96), window))
    alpha = np.zeros((count, window))
    beta = np.zeros((count, window))
    start = _fixed_vector(window, 0)
    basis[:, 0] = start / np.linalg.norm(start)
    trace = trace.copy()
    segment = np.zeros(count, dtype=np.int64)  # where the newest segment starts
    previous = np.zeros(count, dtype=np.int64)  # ... and the one before it
    restarts = np.ones(count, dtype=np.int64)  # fixed vectors used so far
    # the next step at which a row is tested, and its last test's step and excess residual
    test_at = np.full(count, min(window, max(LANCZOS_FIRST, k + 1)))
    tested_at = np.zeros(count, dtype=np.int64)
    excess = np.full(count, np.inf)
    running = np.ones(count, dtype=bool)
    active = np.arange(count)
    j = 0
    while active.size:
        checkpoint()
        q = basis[:, j]
        u = np.fft.irfft(np.fft.rfft(q[:, ::-1], n=n, axis=1) * fft_x, n=n, axis=1)
        w = np.fft.irfft(np.fft.rfft(u[:, : window - 2 : -1], n=n, axis=1) * fft_x, n=n, axis=1)
        w = w[:, k_cols - 1 :]
        alpha[:, j] = np.einsum("bi,bi->b", q, w)
        # the three-term recurrence, then one classical Gram-Schmidt pass against the basis
        w -= alpha[:, j, None] * q
        if j > 0:
            w -= beta[:, j - 1, None] * basis[:, j - 1]
        held = basis[:, : j + 1]
        w -= np.matmul(np.matmul(held, w[:, :, None]).transpose(0, 2, 1), held)[:, 0]
        norm = np.sqrt(np.einsum("bi,bi->b", w, w))
        j += 1
        if j < window:
            for r in np.flatnonzero(norm <= BREAKDOWN * trace):
                # an invariant subspace: go on from a fresh vector orthogonal to it
                v = _fixed_vector(window, int(restarts[r]))
                restarts[r] += 1
                for _ in range(2):
                    v -= (basis[r, :j] @ v) @ basis[r, :j]
                w[r] = v / np.linalg.norm(v)
                norm[r] = 0.0
                previous[r], segment[r] = segment[r], j
            beta[:, j - 1] = norm
        due = np.flatnonzero(running & ((test_at <= j) | (j == window)))
        for r in due:
            values, last = _top_ritz(alpha[r, :j], beta[r, :j], k)
            if j < window:
                floor = LANCZOS_FLOOR * trace[r]
                allowed = np.maximum(LANCZOS_TOLERANCE * values, floor)
                ratio = float(np.max(np.abs(beta[r, j - 1] * last) / allowed))
                s = int(segment[r])
                if ratio <= 1.0 and s > 0:
                    # after a restart: the newest segment with a step (the one that just ended
                    # in an invariant subspace, if the newest has none yet) must have converged,
                    # and its leading Ritz value, the largest eigenvalue of the part of the
                    # space no earlier segment reached, must not exceed the k-th
                    low = int(previous[r]) if s == j else s
                    top, top_last = _top_ritz(alpha[r, low:j], beta[r, low:j], 1)
                    kth = values[-1]
                    if abs(beta[r, j - 1] * top_last[0]) > max(
                        LANCZOS_TOLERANCE * top[0], floor
                    ) or top[0] > kth + max(LANCZOS_TOLERANCE * kth, floor):
                        test_at[r] = j + 1
                        continue
                if ratio > 1.0:
                    # next test: where the residual's decay since the last test reaches the
                    # bound, at most LANCZOS_SKIP steps on
                    step = LANCZOS_EVERY
                    if excess[r] > ratio:
                        rate = math.log(excess[r] / ratio) / (j - tested_at[r])
                        step = int(min(max(math.log(ratio) / rate, 1.0), LANCZOS_SKIP))
                    excess[r], tested_at[r], test_at[r] = ratio, j, j + step
                    continue
            running[r] = False
            out[active[r], : len(values)] = np.maximum(values, 0.0)
        if j == window or not running.any():
            break
        if 4 * np.count_nonzero(~running) >= active.size:
            # drop the finished rows (done rows left in the batch only cost their arithmetic)
            keep = running
            active, segment, previous = active[keep], segment[keep], previous[keep]
            restarts, trace = restarts[keep], trace[keep]
            test_at, tested_at, excess = test_at[keep], tested_at[keep], excess[keep]
            basis, alpha, beta, fft_x = basis[keep], alpha[keep], beta[keep], fft_x[keep]
            w, norm, running = w[keep], norm[keep], running[keep]
        if j == basis.shape[1]:
            grown = np.empty((len(basis), min(window, 2 * j), window))
            grown[:, :j] = basis
            basis = grown
        # a restarted row's w is already a unit vector (its beta_j is 0)
        basis[:, j] = w / np.where(norm > 0, norm, 1.0)[:, None]
    return out


def leading_eigenvalues(rows: np.ndarray, window: int, k: int) -> np.ndarray:
    """The k largest eigenvalues of X X' (the k largest s_r^2 of X), descending, for each row
    of a 2-D array of finite signals of one length N, with 2 <= window <= N/2 and
    1 <= k <= window; 0 for an all-zero row."""
    rows = np.asarray(rows, dtype=np.float64)
    out = np.zeros((len(rows), k))
    trace = trajectory_energy(rows, window)
    live = np.flatnonzero(trace > 0)
    if window <= DENSE_WINDOW:
        out[live] = _dense_leading(rows[live], window, k)
        return out
    for a in range(0, len(live), ROWS_PER_BATCH):
        part = live[a : a + ROWS_PER_BATCH]
        out[part] = _lanczos_leading(rows[part], window, k, trace[part])
    return out


def ssa_leading_shares_rows(rows: object, window: int, k: int) -> np.ndarray:
    """The shares s_r^2 / sum s^2 of components 0 .. k-1 (descending s) of every row of a 2-D
    array (many signals of one length N, e.g. the trailing windows of a series), shape
    (rows, k): each equals ssa_shares(row, window)[:k] (np.linalg.svd) within 1e-10 relative
    or 1e-14 absolute, without the SVD. NaN for an all-zero row (0/0). 2 <= window <= N/2,
    1 <= k <= window, N <= MAX_LENGTH; a NaN or infinity anywhere is an InputError."""
    matrix = np.asarray(rows, dtype=np.float64)
    if matrix.ndim != 2:
        raise InputError(f"rows must be a 2-D array, got {matrix.ndim} dimensions")
    n = matrix.shape[1]
    if n < MIN_LENGTH:
        raise InputError(f"rows are too short: {n} values, need at least {MIN_LENGTH}")
    check_length(n, MAX_LENGTH, "rows")
    check_finite(matrix, "rows")
    length = _leading_window(n, window)
    count = _leading_count(length, k)
    trace = trajectory_energy(matrix, length)
    values = leading_eigenvalues(matrix, length, count)
    with np.errstate(divide="ignore", invalid="ignore"):
        shares = values / trace[:, None]
    shares[trace == 0] = np.nan
    return shares


def ssa_leading_shares(x: object, window: int | None = None, k: int = 3) -> np.ndarray:
    """The eigenvalue shares s_r^2 / sum s^2 of components 0 .. k-1 (descending), as
    ssa_shares(x, window)[:k] gives them (within 1e-10 relative, 1e-14 absolute) but from
    the k leading eigenvalues of X X' and the trace alone (Lanczos, see above), so the window
    may be any 2 <= L <= N/2 (default floor(N/2)) with no limit on the SVD's work; N <=
    MAX_LENGTH. NaN for x = 0."""
    signal = finite_signal(x, max_length=MAX_LENGTH)
    n = len(signal)
    if n < MIN_LENGTH:
        raise InputError(f"x is too short: {n} values, need at least {MIN_LENGTH}")
    length = _leading_window(n, n // 2 if window is None else window)
    return ssa_leading_shares_rows(signal[None, :], length, _leading_count(length, k))[0]


def _leading_window(n: int, window: object) -> int:
    try:
        length = operator.index(window)  # type: ignore[arg-type]
    except TypeError:
        raise InputError(f"window must be an integer, got {window!r}") from None
    if not 2 <= length <= n // 2:
        raise InputError(
            f"window must be between 2 and {n // 2} (half of the {n} values), got {length}"
        )
    return length


def _leading_count(window: int, k: object) -> int:
    try:
        count = operator.index(k)  # type: ignore[arg-type]
    except TypeError:
        raise InputError(f"k must be an integer, got {k!r}") from None
    if not 1 <= count <= window:
        raise InputError(f"k must be between 1 and {window} (the window), got {count}")
    return count
