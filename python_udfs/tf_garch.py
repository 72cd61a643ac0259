"""GARCH(1,1) with a constant mean and normal errors, as `arch.arch_model(y)` fits it with its
defaults (FEATURE_DEFINITIONS C5), written from that definition and from reading arch 8.0's
arch/univariate/{base,mean,volatility,recursions}.py. Plain numpy and scipy: the database
server's own Python runs it (scipy 1.10 there, newer in the tests' virtualenv).

    eps_t = r_t - mu,   s2_t = omega + alpha*eps2_{t-1} + beta*s2_{t-1}

What arch does, and this module does the same way:
- Starting residuals e = r - mu0 with mu0 the least-squares constant (arch: pinv(ones) @ r,
  which differs from mean(r) in the last bits; the same call keeps the backcast bit-equal).
- Backcast bc = sum_{j<tau} w_j e_j^2, w_j = 0.94^j / sum_k 0.94^k, tau = min(75, T), from the
  starting residuals, held fixed: every lagged eps2 and s2 before t = 0 is bc.
- Variance bounds per t from e: an EWMA(0.94) of e^2 seeded with bc (computed with a dot
  product, as arch does), lower = max(ewma/1e6, var(e)/1e8), upper = ewma*1e6 raised to at
  least 1 + max(e^2) and capped at 1e7*(1 + max(e^2)). After each step of the recursion a
  value below the lower bound becomes the lower bound, one above the upper bound U becomes
  U + ln(s2/U) (U + 1000 if s2 overflowed).
- Log-likelihood -1/2 sum [ln 2pi + ln s2_t + eps_t^2/s2_t].
- Fit: SLSQP on the negative log-likelihood, unscaled (arch 8 does not scale the objective),
  finite-difference gradients, default tolerance, bounds mu free, omega in [1e-8 v, 10 v] with
  v = mean(e^2), alpha and beta in [0, 1]; four linear inequality constraints omega, alpha,
  beta >= 0 and 1 - alpha - beta >= 0; starting values mu0 and the best by likelihood of
  alpha in {.01, .05, .1, .2} x alpha + beta in {.5, .7, .9, .98}, omega =
  (1 - alpha - beta) v (first best in that order, as arch's argmax picks).

The recursion runs as scipy.signal.lfilter on omega + alpha*eps2_{t-1}: lfilter's one-pole
step y = x + beta*y_prev does arch's additions in arch's order, so the values are bit-equal to
arch's loop while no bound binds; where one binds, the value is clipped and the filter
restarts after it (a plain loop finishes the series if bounds bind often).

Limits: r has at most MAX_LENGTH values (a fit takes ~0.3 s there, a variance path converts
to SQL in ~0.15 s) and no NaN or infinity; every evaluation of the likelihood in a fit is a
checkpoint (SLSQP runs at most 100 iterations).
"""

from __future__ import annotations

import math
import numbers
import warnings
from typing import Any

import numpy as np
from scipy.optimize import minimize
from scipy.signal import lfilter
from tf_common import InputError, as_object, checkpoint, finite_signal

MIN_OBS = 10  # fewer observations than this cannot say much about four parameters
MAX_LENGTH = 131_072  # 2^17
LOG_2PI = float(np.log(2 * np.pi))
PARAMS = ("mu", "omega", "alpha", "beta")
RESTARTS = 8  # bound hits handled by restarting lfilter before the plain loop takes over
DBL_MAX = float(np.finfo(float).max)


class Setup:
    """What arch derives once from the data before it evaluates any parameters."""

    def __init__(self, r: object) -> None:
        y = finite_signal(r, "r", MAX_LENGTH)
        n = y.size
        if n < MIN_OBS:
            raise InputError(f"too short: {n} observations, GARCH(1,1) needs at least {MIN_OBS}")
        mu0 = float((np.linalg.pinv(np.ones((n, 1))) @ y)[0])
        e = y - mu0
        e2 = e**2.0
        max_e2 = float(np.max(e2))
        if not math.isfinite(1e7 * (1.0 + max_e2)):
            raise InputError("r is too large in magnitude: its squares overflow")
        var = float(np.var(e))
        if var == 0.0:
            raise InputError("r is constant: a GARCH model needs a series that varies")
        tau = min(75, n)
        w = 0.94 ** np.arange(tau)
        w = w / sum(w)  # builtin sum, as arch
        self.y = y
        self.n = n
        self.mu0 = mu0
        self.e = e
        self.backcast = float(np.sum(e2[:tau] * w))
        self.mean_e2 = float(np.mean(e2))
        ewma = ewma_variance(e2, float(w.dot(e2[:tau])))
        lower = ewma / 1e6
        upper = ewma * 1e6
        lower[lower < var / 1e8] = var / 1e8
        upper[upper < 1.0 + max_e2] = 1.0 + max_e2
        upper[upper > 1e7 * (1.0 + max_e2)] = 1e7 * (1.0 + max_e2)
        self.lower = lower
        self.upper = upper

    def variance(self, mu: float, omega: float, alpha: float, beta: float) -> np.ndarray:
        eps2 = (self.y - mu) ** 2.0
        return garch_recursion(omega, alpha, beta, eps2, self.backcast, self.lower, self.upper)

    def loglik(self, mu: float, omega: float, alpha: float, beta: float) -> float:
        eps = self.y - mu
        s2 = garch_recursion(omega, alpha, beta, eps**2.0, self.backcast, self.lower, self.upper)
        return gaussian_loglik(eps, s2)

    def starting_values(self) -> np.ndarray:
        target = self.mean_e2
        best, best_llf = None, -np.inf
        for alpha in (0.01, 0.05, 0.1, 0.2):
            for persistence in (0.5, 0.7, 0.9, 0.98):
                checkpoint()
                sv = np.array([(1.0 - persistence) * target, alpha, persistence - alpha])
                s2 = garch_recursion(*sv, self.e**2.0, self.backcast, self.lower, self.upper)
                llf = gaussian_loglik(self.e, s2)
                if best is None or llf > best_llf:
                    best, best_llf = sv, llf
        assert best is not None
        return np.concatenate([[self.mu0], best])


def ewma_variance(e2: np.ndarray, initial: float) -> np.ndarray:
    """s_t = 0.06 e2_{t-1} + 0.94 s_{t-1}, s_{-1} = e2_{-1} = initial (arch's ewma_recursion:
    its GARCH step with omega 0, alpha 1 - 0.94, beta 0.94 and no effective bounds)."""
    lam = 0.94
    u = np.empty_like(e2)
    u[0] = (1.0 - lam) * initial
    u[1:] = (1.0 - lam) * e2[:-1]
    return lfilter([1.0], [1.0, -lam], u, zi=[lam * initial])[0]


def bounded(s2: float, lower: float, upper: float) -> float:
    """arch's bounds_check for one value."""
    if s2 < lower:
        return lower
    if s2 > upper:
        if s2 > DBL_MAX:
            return upper + 1000.0
        return upper + math.log(s2 / upper)
    return s2


def garch_recursion(
    omega: float,
    alpha: float,
    beta: float,
    eps2: np.ndarray,
    backcast: float,
    lower: np.ndarray,
    upper: np.ndarray,
) -> np.ndarray:
    """s2_t = omega + alpha*eps2_{t-1} + beta*s2_{t-1} (lags before 0 are the backcast), each
    value put within its bounds before the next step uses it."""
    n = eps2.size
    u = np.empty(n)
    u[0] = omega + alpha * backcast
    u[1:] = omega + alpha * eps2[:-1]
    s2 = np.empty(n)
    start, previous = 0, backcast
    with np.errstate(invalid="ignore", over="ignore"):
        for _ in range(RESTARTS):
            s2[start:] = lfilter([1.0], [1.0, -beta], u[start:], zi=[beta * previous])[0]
            outside = (s2[start:] < lower[start:]) | (s2[start:] > upper[start:])
            if not outside.any():
                return s2
            t = start + int(np.argmax(outside))
            s2[t] = bounded(float(s2[t]), float(lower[t]), float(upper[t]))
            start, previous = t + 1, float(s2[t])
            if start == n:
                return s2
    # bounds bind often (an optimiser probing extreme parameters): finish with a plain loop
    low, high, steps = lower.tolist(), upper.tolist(), u.tolist()
    for t in range(start, n):
        previous = bounded(steps[t] + beta * previous, low[t], high[t])
        s2[t] = previous
    return s2


def gaussian_loglik(eps: np.ndarray, s2: np.ndarray) -> float:
    with np.errstate(invalid="ignore", divide="ignore"):
        return float(np.sum(-0.5 * (LOG_2PI + np.log(s2) + eps**2.0 / s2)))


def as_params(params: object) -> tuple[float, float, float, float]:
    """(mu, omega, alpha, beta) from a dict or JSON object text; other keys are ignored, so a
    fit's result can be passed back as is. omega must be > 0 and alpha, beta >= 0; alpha + beta
    >= 1 is allowed (the fit's constraint is alpha + beta <= 1, which SLSQP meets only to
    rounding, and the bounded recursion stays finite either way)."""
    params = as_object(params, "a JSON object with mu, omega, alpha and beta")
    values = []
    for key in PARAMS:
        if key not in params or params[key] is None:
            raise InputError(f"params has no {key}")
        v = params[key]
        if isinstance(v, bool) or not isinstance(v, numbers.Real) or not math.isfinite(v):
            raise InputError(f"params.{key} must be a finite number, got {v!r}")
        values.append(float(v))
    mu, omega, alpha, beta = values
    if omega <= 0:
        raise InputError(f"params.omega must be > 0, got {omega!r}")
    if alpha < 0:
        raise InputError(f"params.alpha must be >= 0, got {alpha!r}")
    if beta < 0:
        raise InputError(f"params.beta must be >= 0, got {beta!r}")
    return mu, omega, alpha, beta


def garch11_variance(r: object, params: object) -> np.ndarray:
    """The conditional variance s2_t, t = 0..T-1, of r under params (mu, omega, alpha, beta):
    arch_model(r).fix([mu, omega, alpha, beta]).conditional_volatility ** 2."""
    p = as_params(params)
    return Setup(r).variance(*p)


def garch11_loglik(r: object, params: object) -> float:
    """The Gaussian log-likelihood of r under params: arch_model(r).fix(...).loglikelihood."""
    p = as_params(params)
    return Setup(r).loglik(*p)


# scipy's abs_step for SLSQP's constraints (its 2-point EPS**0.5 fallback is the same number)
SQRT_EPS = float(np.sqrt(np.finfo(np.float64).eps))


def _constraint(
    coefficients: np.ndarray, value: float, lower: np.ndarray, upper: np.ndarray
) -> dict[str, Any]:
    """A linear inequality constraint, with the Jacobian SLSQP would otherwise estimate for it:
    scipy's approx_derivative(f, clip(x), '2-point', abs_step=sqrt(eps), bounds=(lower,
    upper)), computed the same way, value for value (the steps, their reflection at a bound,
    the same f at the same points), but without its generic machinery, which took half of a
    fit's time on four linear functions. tests/kernels/test_garch.py compares the two bit for
    bit."""

    def f(x: np.ndarray, *args: Any) -> float:
        return np.dot(coefficients, x) - value

    def jac(x: np.ndarray, *args: Any) -> np.ndarray:
        if (x < lower).any() or (x > upper).any():
            x = np.clip(x, lower, upper)
        x0 = np.asarray(x, dtype=np.float64)
        f0 = f(x0)
        h = np.full(x0.shape, SQRT_EPS)
        zero = ((x0 + h) - x0) == 0
        if zero.any():
            sign = (x0 >= 0).astype(float) * 2 - 1
            h = np.where(zero, SQRT_EPS * sign * np.maximum(1.0, np.abs(x0)), h)
        # _adjust_scheme_to_bounds, one-sided, one step
        lower_dist, upper_dist = x0 - lower, upper - x0
        violated = ((x0 + h) < lower) | ((x0 + h) > upper)
        fitting = np.abs(h) <= np.maximum(lower_dist, upper_dist)
        h[violated & fitting] *= -1
        forward = (upper_dist >= lower_dist) & ~fitting
        h[forward] = upper_dist[forward]
        backward = (upper_dist < lower_dist) & ~fitting
        h[backward] = -lower_dist[backward]
        out = np.empty((1, x0.size))
        for i in range(x0.size):
            x1 = x0.copy()
            x1[i] = x0[i] + h[i]
            out[0, i] = (f(x1) - f0) / ((x0[i] + h[i]) - x0[i])
        return out

    return {"type": "ineq", "fun": f, "jac": jac}


def garch11_fit(r: object) -> dict[str, Any]:
    """Maximum-likelihood mu, omega, alpha, beta as arch_model(r).fit() finds them, the
    maximised log-likelihood, converged (SLSQP's status is 0; arch warns otherwise) and n_obs."""
    setup = Setup(r)
    v = setup.mean_e2
    bounds = [(-np.inf, np.inf), (1e-8 * v, 10.0 * v), (0.0, 1.0), (0.0, 1.0)]
    # a.dot(x) - b >= 0: omega, alpha, beta >= 0 and 1 - alpha - beta >= 0
    a = np.array([[0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1], [0, 0, -1, -1]], dtype=float)
    b = np.array([0.0, 0.0, 0.0, -1.0])
    lower = np.array([bound[0] for bound in bounds])
    upper = np.array([bound[1] for bound in bounds])
    constraints = [_constraint(a[i], float(b[i]), lower, upper) for i in range(4)]

    def negative_loglik(x: np.ndarray) -> float:
        checkpoint()
        return -setup.loglik(float(x[0]), float(x[1]), float(x[2]), float(x[3]))

    with warnings.catch_warnings():
        # scipy's SLSQP may step outside the bounds while it searches (arch hides this too)
        warnings.filterwarnings(
            "ignore", "Values in x were outside bounds during a minimize step", RuntimeWarning
        )
        opt = minimize(
            negative_loglik,
            setup.starting_values(),
            method="SLSQP",
            bounds=bounds,
            constraints=constraints,
            options={"disp": False},
        )
    # scipy evaluates the objective at x clipped to the bounds (SLSQP can step a few ULP
    # outside them); report that point, so the result always passes as_params
    lower, upper = zip(*bounds, strict=True)
    mu, omega, alpha, beta = (float(x) for x in np.clip(opt.x, lower, upper))
    return {
        "mu": mu,
        "omega": omega,
        "alpha": alpha,
        "beta": beta,
        "loglik": -float(opt.fun),
        "converged": bool(opt.status == 0),
        "n_obs": setup.n,
    }
