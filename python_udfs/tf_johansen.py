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
