"""Empirical Mode Decomposition as `PyEMD.EMD()` does it with its defaults (FEATURE_DEFINITIONS
G1; EMD-signal 1.10), written from that definition: 'simple' extrema, nbsym = 2 mirrored
extrema at each end, not-a-knot cubic-spline envelopes (a 3-point spline for 3 points), an
IMF accepted when check_imf holds and |#extrema - #zero crossings| < 2 (at most 999 siftings),
and the range / total-power end of the decomposition.

Runs on numpy and scipy's LAPACK binding only (the database server's own Python runs it).
The envelope spline is scipy's CubicSpline(bc_type='not-a-knot') computed the way scipy
computes it (the same tridiagonal system solved by the same LAPACK routine, dgtsv, the same
Hermite coefficients, the same polynomial evaluation), without CubicSpline's per-call
overhead; so the result is the reference's to the last bit on the same numpy and scipy.

Quirks of the reference that are reproduced on purpose (they decide which points count):
* a flat run starting at sample 0 is not dropped (the reference drops the run starting at
  sample 1 instead), and its slope "before" is the last difference of the signal;
* the boundary mirroring and its fall-back to the end sample, and the removal of a mirrored
  point whose time equals the previous one;
* an IMF accepted with at most 2 extrema is dropped when the decomposition stops right
  after it, as a trend.

Limits: x has at most MAX_LENGTH values (the IMFs, about log2 N rows of N values, take ~0.4 s
to convert to a SQL array; the decomposition ~0.3 s); each sifting step is a checkpoint.
"""

from __future__ import annotations

import numpy as np
from scipy.linalg.lapack import dgtsv
from tf_common import InputError, as_signal, check_finite, checkpoint

MAX_LENGTH = 16_384  # 2^14
MAX_ITERATION = 1000
STD_THR = 0.2
SVAR_THR = 0.001
ENERGY_RATIO_THR = 0.2
TOTAL_POWER_THR = 0.005
RANGE_THR = 0.001


def extrema(h: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
    """(indices of the maxima, indices of the minima, number of zero crossings) of h.

    A maximum is a strict sign change of the first difference from + to -; a flat run counts
    once, at its rounded (half to even) midpoint, when the differences on both sides have
    opposite signs. Zero crossings: h_j * h_{j+1} < 0, plus one per run of exact zeros.
    """
    n = len(h)
    d = h[1:] - h[:-1]
    d1 = d[:-1]
    change = d1 * d[1:] < 0
    up = d1 > 0
    is_max = np.zeros(n, dtype=bool)
    is_min = np.zeros(n, dtype=bool)
    is_max[1:-1] = change & up
    is_min[1:-1] = change & ~up
    flat = d == 0
    if flat.any():
        edges = np.diff(np.concatenate(([0], flat.view(np.int8), [0])))
        starts = np.flatnonzero(edges == 1)
        ends = np.flatnonzero(edges == -1)
        # as the reference: the run starting at difference 1 (not 0) and the run reaching
        # the last sample are not extrema
        if len(starts) and starts[0] == 1:
            starts, ends = starts[1:], ends[1:]
        if len(starts) and ends[-1] == n - 1:
            starts, ends = starts[:-1], ends[:-1]
        if len(starts):
            before = d[starts - 1]  # starts == 0 reads d[-1], as the reference does
            after = d[ends]
            middle = np.round((ends + starts) / 2.0).astype(np.intp)
            is_max[middle[(before > 0) & (after < 0)]] = True
            is_min[middle[(before < 0) & (after > 0)]] = True
    crossings = int(np.count_nonzero(h[:-1] * h[1:] < 0))
    zero = h == 0
    if zero.any():
        crossings += int(zero[0]) + int(np.count_nonzero(zero[1:] & ~zero[:-1]))
    return np.flatnonzero(is_max), np.flatnonzero(is_min), crossings


def mirrored(
    h: np.ndarray, imax: np.ndarray, imin: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(times of the maxima, their sample indices, times of the minima, their indices): the
    extrema with nbsym = 2 of each kind reflected about a symmetry point at each end."""
    last = len(h) - 1
    # left end: reflected indices, outermost first, and the symmetry point
    if imax[0] < imin[0]:
        if h[0] > h[imin[0]]:
            lmax, lmin, lsym = imax[1:3][::-1], imin[:2][::-1], imax[0]
        else:
            lmax, lmin, lsym = imax[:2][::-1], np.array([imin[0], 0]), 0
    elif h[0] < h[imax[0]]:
        lmax, lmin, lsym = imax[:2][::-1], imin[1:3][::-1], imin[0]
    else:
        lmax, lmin, lsym = np.array([imax[0], 0]), imin[:2][::-1], 0
    # right end: reflected indices, innermost first
    if imax[-1] < imin[-1]:
        if h[-1] < h[imax[-1]]:
            rmax, rmin, rsym = imax[-2:][::-1], imin[-3:-1][::-1], imin[-1]
        else:
            rmax, rmin, rsym = np.array([last, imax[-1]]), imin[-2:][::-1], last
    elif h[-1] > h[imin[-1]]:
        rmax, rmin, rsym = imax[-3:-1][::-1], imin[-2:][::-1], imax[-1]
    else:
        rmax, rmin, rsym = imax[-2:][::-1], np.array([last, imin[-1]]), last
    # an empty selection is replaced by all extrema of the kind (here: a single one)
    if not len(lmin):
        lmin = imin
    if not len(rmin):
        rmin = imin
    if not len(lmax):
        lmax = imax
    if not len(rmax):
        rmax = imax
    # fall back to the end sample when the outermost reflected point is inside the signal
    if 2 * lsym - lmin[0] > 0 or 2 * lsym - lmax[0] > 0:
        if lsym == imax[0]:
            lmax = imax[:2][::-1]
        else:
            lmin = imin[:2][::-1]
        lsym = 0
    if 2 * rsym - rmin[-1] < last or 2 * rsym - rmax[-1] < last:
        if rsym == imax[-1]:
            rmax = imax[-2:][::-1]
        else:
            rmin = imin[-2:][::-1]
        rsym = last
    tmax = np.concatenate((2 * lsym - lmax, imax, 2 * rsym - rmax)).astype(float)
    tmin = np.concatenate((2 * lsym - lmin, imin, 2 * rsym - rmin)).astype(float)
    kmax = np.concatenate((lmax, imax, rmax))
    kmin = np.concatenate((lmin, imin, rmin))
    # a point at the same time as the next one is dropped
    keep = np.append(tmax[1:] != tmax[:-1], True)
    tmax, kmax = tmax[keep], kmax[keep]
    keep = np.append(tmin[1:] != tmin[:-1], True)
    tmin, kmin = tmin[keep], kmin[keep]
    return tmax, kmax, tmin, kmin


def spline_3pts(x: np.ndarray, y: np.ndarray, t: np.ndarray) -> np.ndarray:
    """The reference's hand-written cubic spline through 3 points (natural end conditions),
    evaluated on t (t within [x0, x2])."""
    x0, x1, x2 = x
    y0, y1, y2 = y
    h0, h1 = x1 - x0, x2 - x1
    r0, r1 = 1.0 / h0, 1.0 / h1
    dy0, dy1 = y1 - y0, y2 - y1
    v0 = 3 * dy0 * r0 * r0
    v2 = 3 * dy1 * r1 * r1
    system = np.array([[2 * r0, r0, 0], [r0, 2.0 * (r0 + r1), r1], [0, r1, 2.0 * r1]])
    k = np.linalg.solve(system, np.array([v0, v0 + v2, v2]))
    a0, b0 = k[0] * h0 - dy0, -k[1] * h0 + dy0
    a1, b1 = k[1] * h1 - dy1, -k[2] * h1 + dy1
    first = t < x1
    u = np.where(first, (t - x0) / h0, (t - x1) / h1)
    w = 1.0 - u
    ya, yb = np.where(first, y0, y1), np.where(first, y1, y2)
    a, b = np.where(first, a0, a1), np.where(first, b0, b1)
    return w * ya + u * yb + u * w * (a * w + b * u)


def spline(x: np.ndarray, y: np.ndarray, t: np.ndarray) -> np.ndarray:
    """scipy's CubicSpline(x, y) (not-a-knot, x strictly increasing, 4 or more points)
    evaluated on t, with scipy's arithmetic."""
    dx = x[1:] - x[:-1]
    slope = (y[1:] - y[:-1]) / dx
    n = len(x)
    lower = np.empty(n - 1)
    diag = np.empty(n)
    upper = np.empty(n - 1)
    rhs = np.empty(n)
    diag[1:-1] = 2 * (dx[:-1] + dx[1:])
    upper[1:] = dx[:-1]
    lower[:-1] = dx[1:]
    rhs[1:-1] = 3 * (dx[1:] * slope[:-1] + dx[:-1] * slope[1:])
    span = x[2] - x[0]
    diag[0] = dx[1]
    upper[0] = span
    rhs[0] = ((dx[0] + 2 * span) * dx[1] * slope[0] + dx[0] ** 2 * slope[1]) / span
    span = x[-1] - x[-3]
    diag[-1] = dx[-2]
    lower[-1] = span
    rhs[-1] = (dx[-1] ** 2 * slope[-2] + (2 * span + dx[-1]) * dx[-2] * slope[-1]) / span
    _, _, _, s, info = dgtsv(lower, diag, upper, rhs, 1, 1, 1, 1)
    if info != 0:  # not reached: the points are distinct
        raise InputError("the envelope spline system is singular")
    s = s.reshape(n)
    # CubicHermiteSpline's coefficients, then PPoly's evaluation on the interval holding t
    s0 = s[:-1]
    cubic = (s0 + s[1:] - 2 * slope) / dx
    c3 = cubic / dx
    c2 = (slope - s0) / dx - cubic
    i = np.searchsorted(x, t, side="right") - 1
    np.clip(i, 0, n - 2, out=i)
    u = t - x[i]
    uu = u * u
    return y[i] + s0[i] * u + c2[i] * uu + c3[i] * (uu * u)


def envelope(times: np.ndarray, values: np.ndarray, t: np.ndarray) -> np.ndarray:
    """The envelope through (times, values) on t: CubicSpline, or the 3-point spline."""
    if len(times) > 3:
        return spline(times, values, t)
    return spline_3pts(times, values, t)


def check_imf(h: np.ndarray, h_old: np.ndarray, vmax: np.ndarray, vmin: np.ndarray) -> bool:
    """The reference's check_imf: h (after the step) against h_old, whose extended maxima
    and minima values are vmax, vmin."""
    if np.any(vmax < 0) or np.any(vmin > 0):
        return False
    if np.sum(h**2) < 1e-10:
        return False
    diff = h - h_old
    diff_sq_sum = np.sum(diff * diff)
    if diff_sq_sum / (max(h_old) - min(h_old)) < SVAR_THR:
        return True
    with np.errstate(divide="ignore", invalid="ignore"):  # h may hold exact zeros
        if np.sum((diff / h) ** 2) < STD_THR:
            return True
    return bool(diff_sq_sum / np.sum(h_old * h_old) < ENERGY_RATIO_THR)


def imfs_and_residue(x: object, max_imf: int = -1) -> tuple[np.ndarray, np.ndarray]:
    """The IMFs (rows, highest frequency first) and the residue x - sum IMFs of PyEMD's
    `EMD()(x, max_imf=max_imf)`, apart (PyEMD's get_imfs_and_residue()).

    A signal without 3 extrema (constant, monotone, 2 samples) has no IMF; its residue is
    x. max_imf is -1 (no limit) or at least 1 (the reference reads 0 and any negative value
    as no limit; here only -1 is). Errors (InputError): NULL, empty,
    NULL or nested elements, NaN or an infinite value (named by position; the reference
    spreads NaN through every row and fails on infinity), fewer than 2 values (the
    reference fails on 1), more than MAX_LENGTH.
    """
    signal = as_signal(x, max_length=MAX_LENGTH)
    if signal.ndim != 1:
        raise InputError("x must be one-dimensional")
    check_finite(signal)
    n = len(signal)
    if n < 2:
        raise InputError(f"x is too short: {n} value, need at least 2")
    if isinstance(max_imf, bool) or not isinstance(max_imf, int | np.integer):
        raise InputError(f"max_imf must be an integer, got {max_imf!r}")
    if max_imf != -1 and max_imf < 1:
        raise InputError(f"max_imf must be -1 (no limit) or at least 1, got {max_imf}")

    t = np.arange(n, dtype=float)
    imfs = np.empty((0, n))
    n_extrema = -1
    finished = False
    while not finished:
        h = signal - np.sum(imfs, axis=0)
        imax, imin, crossings = extrema(h)
        iteration = 0
        while True:
            checkpoint()
            iteration += 1
            if iteration >= MAX_ITERATION:
                break
            n_extrema = len(imax) + len(imin)
            if n_extrema <= 2:  # a trend: the decomposition ends
                finished = True
                break
            tmax, kmax, tmin, kmin = mirrored(h, imax, imin)
            vmax, vmin = h[kmax], h[kmin]
            mean = 0.5 * (envelope(tmax, vmax, t) + envelope(tmin, vmin, t))
            h_old = h
            h = h - mean
            imax, imin, crossings = extrema(h)
            n_extrema = len(imax) + len(imin)
            if abs(n_extrema - crossings) < 2 and check_imf(h, h_old, vmax, vmin):
                break
        imfs = np.vstack((imfs, h))
        if finished:
            break
        rest = signal - np.sum(imfs, axis=0)
        if (
            np.max(rest) - np.min(rest) < RANGE_THR
            or np.sum(np.abs(rest)) < TOTAL_POWER_THR
            or len(imfs) == max_imf
        ):
            finished = True
    if n_extrema <= 2:
        imfs = imfs[:-1]
    return imfs, signal - np.sum(imfs, axis=0)


def emd(x: object, max_imf: int = -1) -> np.ndarray:
    """IMFs (highest frequency first) then the residue, as rows of one array, exactly as
    `PyEMD.EMD()(x, max_imf=max_imf)` returns them: the residue row is there unless
    np.allclose(residue, 0), so an all-zero x gives an array of shape (0, N). Input and errors
    as imfs_and_residue."""
    imfs, residue = imfs_and_residue(x, max_imf)
    if not np.allclose(residue, 0):
        imfs = np.vstack((imfs, residue))
    return imfs
