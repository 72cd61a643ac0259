"""Johansen's cointegration test as statsmodels' coint_johansen computes it (FEATURE_DEFINITIONS
H2), written from that definition. Plain numpy: the database server's own Python runs it.

Limits: y has at most MAX_ROWS rows and MAX_SERIES columns (statsmodels' critical values stop
at 12 series) and no NaN or infinity; k_ar_diff x m <= MAX_LAGGED (the lagged differences a
projection removes, an nobs x m k_ar_diff pseudo-inverse), besides the rows the regression
needs. The largest allowed call takes ~0.2 s (0.3 s through SQL), no single step more than ~0.1 s.
"""

from __future__ import annotations

import numpy as np
from tf_common import InputError, check_finite, checkpoint

MAX_ROWS = 20_000
MAX_SERIES = 12
MAX_LAGGED = 48  # k_ar_diff x m


def as_panel(y: object) -> np.ndarray:
    """An nobs x m float64 matrix from nested sequences (a SQL float8[][]), or InputError."""
    if y is None:
        raise InputError("y is NULL")
    rows = list(y)  # type: ignore[call-overload]
    if not rows:
        raise InputError("y is empty")
    if not all(isinstance(row, list | tuple | np.ndarray) for row in rows):
        raise InputError("y must be two-dimensional (nobs x m)")
    if len(rows) > MAX_ROWS:
        raise InputError(f"y is too long: {len(rows)} rows, the maximum is {MAX_ROWS}")
    if len(rows[0]) > MAX_SERIES:
        raise InputError(f"y has {len(rows[0])} series, the maximum is {MAX_SERIES}")
    for i, row in enumerate(rows):
        for j, v in enumerate(row):
            if v is None:
                raise InputError(f"y has a NULL element at [{i + 1}][{j + 1}]")
            if isinstance(v, list | tuple):
                raise InputError("y must be two-dimensional (nobs x m)")
    try:
        panel = np.asarray(rows, dtype=float)
    except ValueError:
        raise InputError("y is a ragged array") from None
    return check_finite(panel, "y")


def detrend(a: np.ndarray, order: int) -> np.ndarray:
    """Residuals of an OLS fit of a on vander(linspace(-1, 1, rows), order + 1); order -1: a."""
    if order == -1:
        return a
    x = np.vander(np.linspace(-1, 1, len(a)), order + 1)
    return a - x @ (np.linalg.pinv(x) @ a)


def residual(a: np.ndarray, z: np.ndarray) -> np.ndarray:
    """a less its projection on the columns of z (a itself when z is empty)."""
    if z.size == 0:
        return a
    return a - z @ (np.linalg.pinv(z) @ a)


def johansen(y: object, det_order: int, k_ar_diff: int) -> dict[str, list]:
    """eig (descending), lr1 (trace), lr2 (max-eigenvalue) and evec (m x m, columns in eig
    order, evec' S11 evec = I, sign of evec[0, 0] positive) for the rank test on y."""
    levels = as_panel(y)
    nobs, m = levels.shape
    if det_order not in (-1, 0, 1):
        raise InputError(f"det_order must be -1, 0 or 1, got {det_order}")
    if k_ar_diff < 0:
        raise InputError(f"k_ar_diff must be >= 0, got {k_ar_diff}")
    if k_ar_diff * m > MAX_LAGGED:
        raise InputError(
            f"k_ar_diff must be at most {MAX_LAGGED // m} for {m} series"
            f" (k_ar_diff x m <= {MAX_LAGGED}), got {k_ar_diff}"
        )
    regressors = m * k_ar_diff + 2
    if nobs - 1 - k_ar_diff <= regressors + m:
        raise InputError(
            f"too short: {nobs} rows of {m} series with k_ar_diff {k_ar_diff} "
            f"need more than {regressors + m + 1 + k_ar_diff}"
        )
    f = 0 if det_order > -1 else -1
    checkpoint()
    levels = detrend(levels, det_order)
    diffs = np.diff(levels, axis=0)
    k = k_ar_diff
    lagged = [diffs[k - j : len(diffs) - j] for j in range(1, k + 1)]
    z = detrend(np.hstack(lagged), f) if lagged else np.empty((len(diffs) - k, 0))
    r0 = residual(detrend(diffs[k:], f), z)
    checkpoint()
    r1 = residual(detrend(levels[1 : nobs - k], f), z)
    t = len(r1)
    s11 = r1.T @ r1 / t
    s10 = r1.T @ r0 / t
    s00 = r0.T @ r0 / t
    try:
        eig, vectors = np.linalg.eig(np.linalg.inv(s11) @ s10 @ np.linalg.inv(s00) @ s10.T)
        order = np.argsort(eig)[::-1]
        eig, vectors = eig[order], vectors[:, order]
        vectors = vectors @ np.linalg.inv(np.linalg.cholesky(vectors.T @ s11 @ vectors))
    except np.linalg.LinAlgError:
        raise InputError("singular moment matrix: a series is constant or collinear") from None
    if np.iscomplexobj(eig):
        if np.any(np.abs(eig.imag) > 1e-12 * np.maximum(1.0, np.abs(eig.real))):
            raise InputError("complex eigenvalues: the moment matrices are degenerate")
        eig, vectors = eig.real, vectors.real
    first = vectors.flat[vectors.flat != 0]
    if first.size:
        vectors = vectors * np.sign(first[0])
    logs = np.log(1 - eig)
    lr1 = [float(-t * np.sum(logs[r:])) for r in range(m)]
    lr2 = [float(-t * logs[r]) for r in range(m)]
    return {"eig": eig.tolist(), "lr1": lr1, "lr2": lr2, "evec": vectors.tolist()}


# --- many windows at once ------------------------------------------------------------------------


def detrend_batch(a: np.ndarray, order: int) -> np.ndarray:
    """detrend() on each panel of a stack (B, rows, columns): every panel has the same rows, so
    the regressors vander(linspace(-1, 1, rows), order + 1) and their pseudo-inverse are
    shared."""
    if order == -1:
        return a
    x = np.vander(np.linspace(-1, 1, a.shape[1]), order + 1)
    return a - x @ (np.linalg.pinv(x) @ a)


def residual_batch(a: np.ndarray, z: np.ndarray) -> np.ndarray:
    """residual() on each panel of a stack: a (B, rows, p) less its projection on z (B, rows,
    q), through each panel's own pseudo-inverse (a itself when z has no columns)."""
    if z.shape[-1] == 0:
        return a
    return a - z @ (np.linalg.pinv(z) @ a)


def johansen_batch(levels: np.ndarray, det_order: int, k_ar_diff: int) -> dict[str, np.ndarray]:
    """johansen() on each panel of a stack levels (B, nobs, m) at once, the same steps (H2)
    with every matrix product, pseudo-inverse and eigenproblem stacked (numpy's linalg works on
    stacks: one LAPACK call per panel, no Python loop per panel).

    Returns arrays eig (B, m) descending, lr1 (B, m), lr2 (B, m), evec (B, m, m) (columns in
    eig order, evec' S11 evec = I, evec[0, 0] positive) and ok (B,): False for a panel that
    johansen() refuses (NaN or infinity in it, a singular moment matrix, complex eigenvalues),
    whose values are NaN. Limits as johansen(): m <= MAX_SERIES, k_ar_diff x m <= MAX_LAGGED,
    enough rows; the caller bounds B x nobs (memory: a few copies of the stack)."""
    levels = np.asarray(levels, dtype=np.float64)
    if levels.ndim != 3:
        raise InputError("levels must be three-dimensional (panels x nobs x m)")
    count, nobs, m = levels.shape
    if m > MAX_SERIES or m < 1:
        raise InputError(f"levels has {m} series, between 1 and {MAX_SERIES} are allowed")
    if det_order not in (-1, 0, 1):
        raise InputError(f"det_order must be -1, 0 or 1, got {det_order}")
    if k_ar_diff < 0:
        raise InputError(f"k_ar_diff must be >= 0, got {k_ar_diff}")
    if k_ar_diff * m > MAX_LAGGED:
        raise InputError(
            f"k_ar_diff must be at most {MAX_LAGGED // m} for {m} series"
            f" (k_ar_diff x m <= {MAX_LAGGED}), got {k_ar_diff}"
        )
    regressors = m * k_ar_diff + 2
    if nobs - 1 - k_ar_diff <= regressors + m:
        raise InputError(
            f"too short: {nobs} rows of {m} series with k_ar_diff {k_ar_diff} "
            f"need more than {regressors + m + 1 + k_ar_diff}"
        )
    out = {
        "eig": np.full((count, m), np.nan),
        "lr1": np.full((count, m), np.nan),
        "lr2": np.full((count, m), np.nan),
        "evec": np.full((count, m, m), np.nan),
        "ok": np.zeros(count, dtype=bool),
    }
    finite = np.isfinite(levels).all(axis=(1, 2))
    if not finite.any():
        return out
    y = levels[finite]
    f = 0 if det_order > -1 else -1
    k = k_ar_diff
    checkpoint()
    y = detrend_batch(y, det_order)
    diffs = np.diff(y, axis=1)
    lagged = [diffs[:, k - j : diffs.shape[1] - j] for j in range(1, k + 1)]
    if lagged:
        z = detrend_batch(np.concatenate(lagged, axis=2), f)
    else:
        z = np.empty((len(y), diffs.shape[1] - k, 0))
    # R0 and R1 side by side: one projection on z for both
    both = np.concatenate(
        [detrend_batch(diffs[:, k:], f), detrend_batch(y[:, 1 : nobs - k], f)], axis=2
    )
    checkpoint()
    both = residual_batch(both, z)
    r0, r1 = both[:, :, :m], both[:, :, m:]
    t = r1.shape[1]
    r1t = np.swapaxes(r1, 1, 2)
    s11 = r1t @ r1 / t
    s10 = r1t @ r0 / t
    s00 = np.swapaxes(r0, 1, 2) @ r0 / t
    checkpoint()
    eig, vectors, good = _eigen_batch(s11, s10, s00)
    logs = np.log(1 - eig)
    tail = np.cumsum(logs[:, ::-1], axis=1)[:, ::-1]  # sum_{i >= r} ln(1 - eig_i)
    rows = np.flatnonzero(finite)[good]
    out["eig"][rows] = eig[good]
    out["lr1"][rows] = -t * tail[good]
    out["lr2"][rows] = -t * logs[good]
    out["evec"][rows] = vectors[good]
    out["ok"][rows] = True
    return out


def _eigen_batch(
    s11: np.ndarray, s10: np.ndarray, s00: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """H2 steps 9-10 on each panel: eigenvalues (descending) and normalised eigenvectors of
    S11^-1 S10 S00^-1 S10', and which panels have them (a panel johansen() would refuse has
    eig 0 and vectors NaN)."""
    count, m, _ = s11.shape
    good = np.isfinite(s11).all(axis=(1, 2)) & np.isfinite(s00).all(axis=(1, 2))
    # a singular moment matrix: johansen()'s inverse raises LinAlgError; a stacked inverse
    # raises for the whole stack, so such panels are found first (S11 and S00 are Gram
    # matrices: a Cholesky factor exists unless one is singular)
    good &= _factorable(np.where(good[:, None, None], s11, np.eye(m)))
    good &= _factorable(np.where(good[:, None, None], s00, np.eye(m)))
    eig = np.zeros((count, m))
    vectors = np.full((count, m, m), np.nan)
    if not good.any():
        return eig, vectors, good
    a = s11[good]
    b = s10[good]
    product = np.linalg.inv(a) @ b @ np.linalg.inv(s00[good]) @ np.swapaxes(b, 1, 2)
    values, vecs = np.linalg.eig(product)
    order = np.argsort(values.real if np.iscomplexobj(values) else values, axis=1)[:, ::-1]
    values = np.take_along_axis(values, order, axis=1)
    vecs = np.take_along_axis(vecs, order[:, None, :], axis=2)
    real = np.ones(len(values), dtype=bool)
    if np.iscomplexobj(values):
        imag = np.abs(values.imag) > 1e-12 * np.maximum(1.0, np.abs(values.real))
        real = ~imag.any(axis=1)
        values, vecs = values.real, vecs.real
    gram = np.swapaxes(vecs, 1, 2) @ a @ vecs
    chol_ok = real & _factorable(np.where(real[:, None, None], gram, np.eye(m)))
    lower = np.linalg.cholesky(np.where(chol_ok[:, None, None], gram, np.eye(m)))
    vecs = vecs @ np.linalg.inv(lower)
    flat = vecs.reshape(len(vecs), -1)
    first = np.argmax(flat != 0, axis=1)
    sign = np.sign(flat[np.arange(len(flat)), first])
    vecs = vecs * np.where(sign == 0, 1.0, sign)[:, None, None]
    rows = np.flatnonzero(good)
    eig[rows] = np.where(chol_ok[:, None], values, 0.0)
    vectors[rows] = np.where(chol_ok[:, None, None], vecs, np.nan)
    good[rows] = chol_ok
    return eig, vectors, good


def _factorable(a: np.ndarray) -> np.ndarray:
    """Which matrices of a stack have a Cholesky factor (one stacked call when all do)."""
    try:
        np.linalg.cholesky(a)
        return np.ones(len(a), dtype=bool)
    except np.linalg.LinAlgError:
        pass
    ok = np.ones(len(a), dtype=bool)
    for i in range(len(a)):
        try:
            np.linalg.cholesky(a[i])
        except np.linalg.LinAlgError:
            ok[i] = False
    return ok
