"""Gaussian hidden Markov model of one feature, fitted and decoded as hmmlearn 0.3.3
GaussianHMM(covariance_type='diag') does it (FEATURE_DEFINITIONS G3), written from that
definition. Plain numpy: the database server's own Python runs it.

Parameters travel as a dict (or its JSON text) with startprob (K), transmat (K x K, rows are
the from-state), means (K) and variances (K); hmm_fit's result is such a dict and can be passed
back as it is.

Initialisation (hmm_fit; hmmlearn's would need scikit-learn, which the server lacks):
* startprob, then each row of transmat in turn, ~ Dirichlet(1/K, ..., 1/K) drawn from
  numpy.random.RandomState(seed): hmmlearn's own draws for random_state=seed, on a generator
  whose stream numpy keeps stable across versions;
* means: 1-D k-means (Lloyd) from the K quantile points sorted(x)[(2k + 1) T // 2K], run
  until the clusters stop changing; a cluster left empty keeps its centre (hmmlearn runs
  scikit-learn's KMeans, best of 10 k-means++ starts, which on separated data finds the same
  centres);
* variances: np.cov(x) (ddof 1) + 1e-3 (min_covar) for every state, as hmmlearn.

Numerics: the E-step is the scaled forward-backward of G3, with each frame's emission
densities divided by their largest before scaling (the scale factors absorb it: alpha-hat,
gamma and xi are unchanged, the log-likelihood adds the logs back). Where underflow could
lose mass that matters (a sample only an unlikely state explains, a state fed only by
itself through a long stretch that favours another: see MIN_SCALED), the pass is redone in
log space, as hmmlearn's default implementation='log' runs it; the two agree to rounding.
(hmmlearn's own implementation='scaling' has no such guard and can be far off there.)
Viterbi runs in log space with hmmlearn's tie rules. The M-step uses hmmlearn's algebra for
the variance, (1e-2 + sum g x^2 - 2 mu sum g x + mu^2 sum g) / max(sum g, 1e-5).

Limits: x has at most MAX_LENGTH values, no NaN or infinity (nor do params); 1 <= n_states <=
MAX_STATES and len(x) >= max(2, n_states); 0 <= n_iter <= MAX_ITER and n_iter x len(x) <=
MAX_EM_WORK (an EM step on 20,000 samples takes ~0.1 s, ~1 s where it runs in log space; a
T x K result of hmm_posteriors or hmm_filtered is at most 320,000 values). Every EM step and
every block of the forward and backward loops is a checkpoint.
"""

from __future__ import annotations

import itertools
import math
import operator
from dataclasses import dataclass

import numpy as np
from tf_common import InputError, as_object, check_finite, checkpoint, finite_signal

TOL = 1e-2  # hmmlearn's default: stop when the monitored log-likelihood gains less
MIN_COVAR = 1e-3  # added to the initial variance
COVARS_PRIOR = 1e-2  # the default prior: added to every variance numerator in the M-step
# The scaled pass gives way to log space when a scale factor c_t falls below this, or, for a
# state j that can be in use at t >= 1, P(s_t = j | x_0..x_t-1) c_{t-1} does: an entry of
# alpha-hat_t-1 that underflowed lost at most 1e-308 / c_t-1, which must stay negligible
# against the mass it would feed forward (a lost state can grow back when later samples
# favour it) and, through beta-hat, back.
MIN_SCALED = 1e-290
KEYS = ("startprob", "transmat", "means", "variances")
MAX_LENGTH = 20_000
MAX_STATES = 16
MAX_ITER = 1_000
MAX_EM_WORK = 2_000_000  # n_iter x len(x): 100 EM steps (the default) on the longest x
CHECK_EVERY = 1024  # time steps between checkpoints in the per-step loops


@dataclass(frozen=True)
class Hmm:
    startprob: np.ndarray
    transmat: np.ndarray
    means: np.ndarray
    variances: np.ndarray

    def as_dict(self) -> dict[str, list]:
        return {key: getattr(self, key).tolist() for key in KEYS}

    def by_mean(self) -> Hmm:
        """The same model with states relabelled by ascending mean (G3 ENGINE CONVENTION)."""
        order = np.argsort(self.means, kind="stable")
        return Hmm(
            self.startprob[order],
            self.transmat[np.ix_(order, order)],
            self.means[order],
            self.variances[order],
        )


# --- input -----------------------------------------------------------------------------------


def as_series(x: object, name: str = "x") -> np.ndarray:
    return finite_signal(x, name, MAX_LENGTH)


def _numbers(value: object, key: str) -> np.ndarray:
    """An array of params[key]: nested lists of JSON numbers, no null, NaN or infinity."""
    if isinstance(value, np.ndarray):
        value = value.tolist()

    def check(v: object) -> None:
        if isinstance(v, list | tuple):
            for item in v:
                check(item)
        elif v is None:
            raise InputError(f"params.{key} has a null element")
        elif isinstance(v, bool) or not isinstance(v, int | float):
            raise InputError(f"params.{key} has an element that is not a number")

    check(value)
    try:
        array = np.array(value, dtype=float)
    except ValueError:
        raise InputError(f"params.{key} is a ragged array") from None
    return check_finite(array, f"params.{key}")


def _distributions(p: np.ndarray, key: str) -> None:
    """Nonnegative, and each row sums to 1 within hmmlearn's np.allclose tolerance."""
    if np.any(p < 0):
        raise InputError(f"params.{key} has a negative probability")
    sums = np.atleast_1d(p.sum(axis=-1))
    for i, s in enumerate(sums):
        if not np.isclose(s, 1.0):
            where = "" if p.ndim == 1 else f" row {i + 1}"
            raise InputError(f"params.{key}{where} sums to {s:.6g}, not 1")


def as_params(params: object) -> Hmm:
    """An Hmm from a dict or its JSON text, or InputError naming what is wrong."""
    params = as_object(params, "an object with startprob, transmat, means, variances")
    for key in KEYS:
        if key not in params:
            raise InputError(f"params has no {key}")
    startprob, transmat, means, variances = (_numbers(params[key], key) for key in KEYS)
    if startprob.ndim != 1 or startprob.size == 0:
        raise InputError("params.startprob must be a non-empty list (one entry per state)")
    k = startprob.size
    if k > MAX_STATES:
        raise InputError(f"params.startprob has {k} states, the maximum is {MAX_STATES}")
    if transmat.shape != (k, k):
        raise InputError(f"params.transmat must be {k} x {k} (startprob has {k} states)")
    for key, vector in (("means", means), ("variances", variances)):
        if vector.shape != (k,):
            raise InputError(f"params.{key} must be a list of {k} numbers (one per state)")
    _distributions(startprob, "startprob")
    _distributions(transmat, "transmat")
    if np.any(variances <= 0):
        raise InputError("params.variances must be positive")
    return Hmm(startprob, transmat, means, variances)


def _count(value: object, name: str, least: int, most: int | None = None) -> int:
    try:
        n = operator.index(value)  # type: ignore[call-overload]
    except TypeError:
        raise InputError(f"{name} must be an integer") from None
    if n < least:
        raise InputError(f"{name} must be >= {least}, got {n}")
    if most is not None and n > most:
        raise InputError(f"{name} must be at most {most}, got {n}")
    return n


def _iterations(value: object, series: np.ndarray) -> int:
    """n_iter: 0 .. MAX_ITER, and n_iter x len(x) <= MAX_EM_WORK."""
    n = _count(value, "n_iter", 0, MAX_ITER)
    most = MAX_EM_WORK // len(series)
    if n > most:
        raise InputError(
            f"n_iter must be at most {most} for {len(series)} samples"
            f" (n_iter x len(x) <= {MAX_EM_WORK}), got {n}"
        )
    return n


def _fit_length(series: np.ndarray, n_states: int) -> None:
    need = max(2, n_states)
    if len(series) < need:
        raise InputError(
            f"x is too short: n_states {n_states} needs at least {need} samples, got {len(series)}"
        )


# --- forward-backward and Viterbi ---------------------------------------------------------------


def log_emission(series: np.ndarray, model: Hmm) -> np.ndarray:
    """ln N(x_t; mu_k, var_k), T x K, in hmmlearn's arithmetic (stats.py, diagonal case)."""
    variances = np.maximum(model.variances, np.finfo(float).tiny)
    return -0.5 * (
        np.log(2 * np.pi) + np.log(variances) + (series[:, None] - model.means) ** 2 / variances
    )


def _log(p: np.ndarray) -> np.ndarray:
    """Elementwise C-library log with ln 0 = -inf: the values hmmlearn's C++ takes."""
    flat = [math.log(v) if v > 0 else -math.inf for v in p.ravel().tolist()]
    return np.array(flat).reshape(p.shape)


def _blocks(lo: int, hi: int, k: int) -> list[tuple[int, int]]:
    """[lo, hi) in pieces whose T x K x K work arrays stay near 8 MB."""
    size = max(1, (1 << 20) // ((k + 1) * (k + 1)))
    return [(a, min(a + size, hi)) for a in range(lo, hi, size)]


@dataclass(frozen=True)
class Inference:
    filtered: np.ndarray  # T x K, alpha-hat_t = P(s_t | x_0..x_t)
    loglik: float  # ln P(x_0..x_{T-1})
    gamma: np.ndarray | None = None  # T x K, P(s_t | x), when smoothed
    xi_sum: np.ndarray | None = None  # K x K, sum over t of P(s_t = i, s_t+1 = j | x)


class _Underflow(Exception):
    """The scaled recursions left the range of floating point; redo them in log space."""


def infer(series: np.ndarray, model: Hmm, smooth: bool = True) -> Inference:
    """The forward (and, smoothing, backward) pass of G3: scaled, or in log space as
    hmmlearn's default implementation where scaling could lose mass to underflow (see
    MIN_SCALED; in log space no sample is impossible, however far from every state)."""
    logb = log_emission(series, model)
    try:
        with np.errstate(all="raise", under="ignore"):
            return _scaled(model, logb, smooth)
    except (_Underflow, FloatingPointError):
        with np.errstate(divide="ignore", under="ignore"):
            return _log_space(model, logb, smooth)


def _scaled(model: Hmm, logb: np.ndarray, smooth: bool) -> Inference:
    peak = logb.max(axis=1)
    frame = np.exp(logb - peak[:, None])
    n, k = frame.shape
    transmat = model.transmat
    dot = np.dot
    # lattice[t] = (alpha-hat_t, 1) and step[t] = [[A * b_t, row sums], [0, 0]]: one product
    # gives alpha-hat_{t-1} A * b_t and, last, its sum c_t
    lattice = np.empty((n, k + 1))
    scale = np.empty(n)
    lattice[0, :k] = model.startprob * frame[0]
    lattice[0, k] = lattice[0, :k].sum()
    for lo, hi in _blocks(0, n, k):
        checkpoint()
        step = np.zeros((hi - lo, k + 1, k + 1))
        np.multiply(transmat, frame[lo:hi, None, :], out=step[:, :k, :k])
        step[:, :k, k] = step[:, :k, :k].sum(axis=2)
        for t in range(lo, hi):
            row = lattice[t]
            if t:
                dot(lattice[t - 1], step[t - lo], out=row)
            s = row[k]
            if not s >= MIN_SCALED:
                raise _Underflow
            scale[t] = s
            row /= s
    alpha = lattice[:, :k]
    # see MIN_SCALED
    starved = (alpha[:-1] @ transmat) * scale[:-1, None] < MIN_SCALED
    if starved.any() and np.any(starved & _reachable(model, n)[1:]):
        raise _Underflow
    loglik = float(np.log(scale).sum() + peak.sum())
    if not smooth:
        return Inference(alpha, loglik)
    weights = frame[1:] / scale[1:, None]  # b_{t+1}(j) / c_{t+1}
    beta = np.empty((n, k))
    beta[-1] = 1.0
    for lo, hi in reversed(_blocks(0, n - 1, k)):
        checkpoint()
        step = transmat * weights[lo:hi, None, :]
        for t in range(hi - 1, lo - 1, -1):
            dot(step[t - lo], beta[t + 1], out=beta[t])
    gamma = alpha * beta
    gamma /= gamma.sum(axis=1, keepdims=True)
    xi_sum = transmat * (alpha[:-1].T @ (weights * beta[1:]))
    if not (np.all(np.isfinite(gamma)) and np.all(np.isfinite(xi_sum))):
        raise _Underflow
    return Inference(alpha, loglik, gamma, xi_sum)


def _reachable(model: Hmm, n: int) -> np.ndarray:
    """T x K: whether s_t = j has positive probability given only the zeros of startprob and
    transmat (emission densities are never 0)."""
    edges = (model.transmat > 0).astype(float)
    reach = np.empty((n, len(edges)), dtype=bool)
    reach[0] = model.startprob > 0
    for t in range(1, n):
        if not t % CHECK_EVERY:
            checkpoint()
        reach[t] = reach[t - 1] @ edges > 0
        if np.array_equal(reach[t], reach[t - 1]):
            reach[t + 1 :] = reach[t]
            break
    return reach


def _logsumexp(a: np.ndarray, axis: int) -> np.ndarray:
    top = a.max(axis=axis, keepdims=True)
    top[~np.isfinite(top)] = 0.0
    return np.log(np.exp(a - top).sum(axis=axis)) + np.squeeze(top, axis=axis)


def _log_space(model: Hmm, logb: np.ndarray, smooth: bool) -> Inference:
    n, k = logb.shape
    log_a = _log(model.transmat)
    fwd = np.empty((n, k))
    fwd[0] = _log(model.startprob) + logb[0]
    for t in range(1, n):
        if not t % CHECK_EVERY:
            checkpoint()
        fwd[t] = _logsumexp(fwd[t - 1][:, None] + log_a, axis=0) + logb[t]
    loglik = float(_logsumexp(fwd[-1], axis=0))
    filtered = np.exp(fwd - _logsumexp(fwd, axis=1)[:, None])
    if not smooth:
        return Inference(filtered, loglik)
    bwd = np.empty((n, k))
    bwd[-1] = 0.0
    for t in range(n - 2, -1, -1):
        if not t % CHECK_EVERY:
            checkpoint()
        bwd[t] = _logsumexp(log_a + (logb[t + 1] + bwd[t + 1]), axis=1)
    both = fwd + bwd
    gamma = np.exp(both - _logsumexp(both, axis=1)[:, None])
    xi_sum = np.zeros((k, k))
    for lo, hi in _blocks(0, n - 1, k):
        checkpoint()
        ahead = logb[lo + 1 : hi + 1] + bwd[lo + 1 : hi + 1]
        xi_sum += np.exp(fwd[lo:hi, :, None] + log_a + ahead[:, None, :] - loglik).sum(axis=0)
    return Inference(filtered, loglik, gamma, xi_sum)


def viterbi(series: np.ndarray, model: Hmm) -> np.ndarray:
    """hmmlearn's _hmmc.viterbi: the last state is the first argmax; going back, s_t is the
    argmax of delta_t(i) + ln A(i, s_{t+1}) with the highest index winning a tie."""
    logb = log_emission(series, model)
    log_a = _log(model.transmat)
    n, k = logb.shape
    delta = np.empty((n, k))
    np.add(_log(model.startprob), logb[0], out=delta[0])
    log_at = np.ascontiguousarray(log_a.T)
    work = np.empty((k, k))
    add, maximum = np.add, np.maximum.reduce
    for t in range(1, n):
        if not t % CHECK_EVERY:
            checkpoint()
        add(log_at, delta[t - 1], out=work)  # work[i, j] = delta_{t-1}(j) + ln A(j, i)
        row = delta[t]
        maximum(work, axis=1, out=row)
        row += logb[t]
    # back[t][j]: the state at t before state j at t+1, the same sums the C++ compares
    back: list[list[int]] = []
    rows = max(1, (1 << 20) // (k * k))
    for start in range(0, n - 1, rows):
        checkpoint()
        scores = delta[start : min(start + rows, n - 1), ::-1, None] + log_a[::-1]
        back.extend((k - 1 - np.argmax(scores, axis=1)).tolist())
    path = np.empty(n, dtype=np.int64)
    state = int(np.argmax(delta[-1]))
    path[-1] = state
    for t in range(n - 2, -1, -1):
        state = back[t][state]
        path[t] = state
    return path


# --- EM ------------------------------------------------------------------------------------------


def _em_step(series: np.ndarray, model: Hmm) -> tuple[Hmm, float]:
    """(the model after one E- and M-step, the log-likelihood of the model before it)."""
    e = infer(series, model)
    gamma, xi_sum = e.gamma, e.xi_sum
    assert gamma is not None and xi_sum is not None
    post = gamma.sum(axis=0)
    obs = gamma.T @ series
    obs2 = gamma.T @ series**2

    startprob = np.where(model.startprob == 0, 0, np.maximum(gamma[0], 0))
    startprob = startprob / startprob.sum()
    transmat = np.where(model.transmat == 0, 0, np.maximum(xi_sum, 0))
    rows = transmat.sum(axis=1, keepdims=True)
    # a state with no weight before the last sample keeps its row: hmmlearn leaves the row
    # all zero, which no longer sums to 1 (ENGINE CONVENTION, so the result stays valid)
    transmat = np.where(rows > 0, transmat / np.where(rows > 0, rows, 1), model.transmat)
    # a state no sample reaches (its weights all underflow) keeps its mean: hmmlearn's 0/0
    # would make it NaN (ENGINE CONVENTION); its variance becomes 1e-2 / 1e-5 as in hmmlearn
    means = np.where(post > 0, obs / np.where(post > 0, post, 1), model.means)
    c_n = obs2 - 2 * means * obs + means**2 * post
    variances = (COVARS_PRIOR + c_n) / np.maximum(post, 1e-5)
    if not (np.all(np.isfinite(means)) and np.all(np.isfinite(variances))):
        raise InputError("EM failed: a parameter overflowed")
    return Hmm(startprob, transmat, means, variances), e.loglik


def _em(
    series: np.ndarray, model: Hmm, n_iter: int, tol: float = TOL
) -> tuple[Hmm, list[float], bool]:
    """hmmlearn's fit loop from model: (the model, the monitored log-likelihoods, converged).

    Each iteration records the log-likelihood of the model before its M-step and stops once
    that gained less than tol over the previous iteration (converged) or after n_iter."""
    history: list[float] = []
    for _ in range(n_iter):
        checkpoint()
        model, loglik = _em_step(series, model)
        history.append(loglik)
        if len(history) >= 2 and history[-1] - history[-2] < tol:
            return model, history, True
    return model, history, False


def _kmeans_1d(series: np.ndarray, k: int) -> np.ndarray:
    """Lloyd's k-means in one dimension from the quantile points; centres ascending."""
    xs = np.sort(series)
    n = len(xs)
    centres = xs[[(2 * i + 1) * n // (2 * k) for i in range(k)]].astype(float)
    splits = None
    for _ in range(300):
        checkpoint()
        # a point half-way between two centres joins the lower one, as argmin would pick it
        new = np.searchsorted(xs, (centres[:-1] + centres[1:]) / 2, side="right")
        if splits is not None and np.array_equal(new, splits):
            break
        splits = new
        bounds = [0, *splits.tolist(), n]
        centres = np.array(
            [
                xs[lo:hi].mean() if hi > lo else centres[i]
                for i, (lo, hi) in enumerate(itertools.pairwise(bounds))
            ]
        )
    return centres


def initial_params(x: object, n_states: int = 3, seed: int = 0) -> dict[str, list]:
    """hmm_fit's starting point (see the module docstring)."""
    series = as_series(x)
    k = _count(n_states, "n_states", 1, MAX_STATES)
    _fit_length(series, k)
    return _initial(series, k, _seed(seed)).as_dict()


def _seed(seed: object) -> int:
    value = _count(seed, "seed", 0)
    if value >= 2**32:
        raise InputError(f"seed must be < 2^32, got {value}")
    return value


def _initial(series: np.ndarray, k: int, seed: int) -> Hmm:
    rng = np.random.RandomState(seed)
    alpha = np.full(k, 1.0 / k)
    startprob = rng.dirichlet(alpha)
    transmat = rng.dirichlet(alpha, size=k)
    variance = float(np.cov(series)) + MIN_COVAR
    return Hmm(startprob, transmat, _kmeans_1d(series, k), np.full(k, variance))


# --- kernels -------------------------------------------------------------------------------------


def hmm_fit(x: object, n_states: int = 3, n_iter: int = 100, seed: int = 0) -> dict[str, object]:
    """EM from the seeded initialisation, as hmmlearn GaussianHMM(n_components=n_states,
    n_iter=n_iter, tol=1e-2).fit does it; states then relabelled by ascending mean.

    Returns startprob, transmat, means, variances, loglik (the log-likelihood of these
    parameters on x, hmmlearn's score), n_iter (EM iterations run), converged (the last gain
    was below tol; hmmlearn's monitor_.converged is also true when n_iter ran out) and
    history (the monitored log-likelihood of each iteration, before its M-step)."""
    series = as_series(x)
    k = _count(n_states, "n_states", 1, MAX_STATES)
    _fit_length(series, k)
    iterations = _iterations(n_iter, series)
    model, history, converged = _em(series, _initial(series, k, _seed(seed)), iterations)
    model = model.by_mean()
    return {
        **model.as_dict(),
        "loglik": infer(series, model, smooth=False).loglik,
        "n_iter": len(history),
        "converged": converged,
        "history": history,
    }


def em_step(x: object, params: object) -> dict[str, object]:
    """One E- and M-step from params, as hmmlearn fit with n_iter=1 and init_params='' does:
    the new parameters (states not relabelled) and loglik_before, the log-likelihood of params."""
    series = as_series(x)
    model = as_params(params)
    _fit_length(series, len(model.startprob))
    new, loglik = _em_step(series, model)
    return {**new.as_dict(), "loglik_before": loglik}


def hmm_loglik(x: object, params: object) -> float:
    """ln P(x | params), hmmlearn's score."""
    return infer(as_series(x), as_params(params), smooth=False).loglik


def hmm_posteriors(x: object, params: object) -> np.ndarray:
    """Smoothed P(s_t | x_0..x_{T-1}), T x K: hmmlearn's predict_proba."""
    gamma = infer(as_series(x), as_params(params)).gamma
    assert gamma is not None
    return gamma


def hmm_filtered(x: object, params: object) -> np.ndarray:
    """Causal P(s_t | x_0..x_t), T x K: the normalised forward variables alpha-hat_t."""
    return infer(as_series(x), as_params(params), smooth=False).filtered


def hmm_viterbi(x: object, params: object) -> np.ndarray:
    """The most likely state path: hmmlearn's decode(algorithm='viterbi')[1]."""
    return viterbi(as_series(x), as_params(params))
