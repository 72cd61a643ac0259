"""Heavy-math families of the one-minute bars (FEATURE_DEFINITIONS K14 with G3, C5 and K7):
`hmm_regime_bars` and `volatility_surface`. models/bar/<model>.yml defines every column.

Both refit a model on the trailing `refit_window` one-minute log returns in basis points,
y_t = 1e4 ln(C_t / C_(t-1)) (computed as 1e4 ln(1 + (C_t - C_(t-1))/C_(t-1)), T17), at each bar
whose open minute m (minutes since the epoch) has m % refit_stride == refit_stride - 1 (the
open minute :59 for the default stride 60), and carry what the fit gives to the later bars
until the next refit (K14, "Readings fixed for the heavy families"). A refit needs
refit_window returns, i.e. refit_window + 1 closes ending at the refit bar; a refit bar with
fewer bars before it is no refit, and bars before the first refit are NULL. An incremental
refresh (params start > 0) refits only at bars from `start` on; a refit before `start` is read
from `prev`, the stored row before `start` (the state_* columns carry what the features would
round: the variances behind the reported volatilities).

hmm_regime_bars: G3's 3-state Gaussian HMM fitted as tf_hmm.hmm_fit(y, 3, n_iter, 0) does it
(n_iter 10 as the L2 hmm_regime family's dbt var hmm_n_iter, tol 1e-2; params hmm_n_iter
overrides it), states relabelled by ascending mean. EM runs for all the refit windows of a
call at once: the scaled forward-backward pass of tf_hmm._scaled and the M-step of
tf_hmm._em_step on arrays of shape (time, state, window), each window stopping at its own
iteration by hmmlearn's rule (a gain below tol). A window whose scaled pass could lose mass to
underflow (tf_hmm.MIN_SCALED, checked here for every state, which is conservative) takes that
EM step through tf_hmm._em_step itself, which redoes it in log space. The initial parameters
are tf_hmm's (tf_hmm._initial per window). The filtered probabilities at the window's end are
tf_hmm.hmm_filtered's; the later bars continue the forward recursion with the carried
parameters, one vectorised step for all the carried stretches of the call at once.

volatility_surface: the K7 term structure of tf_bar_range's realized volatilities (ratios and
log-log slopes across the windows 15 .. 1440), and C5's GARCH(1,1) fitted by
tf_garch.garch11_fit on each refit window (one SLSQP fit per window, as arch runs it; its path
cannot be shared between windows), the fit's variance path continued bar by bar afterwards.

Speed, one symbol of 31,000 bars (487 refits of 1440 returns), one core: hmm_regime_bars about
0.8 s (hmmlearn fitting the same windows from the same start: about 4 s, tf_hmm.hmm_fit one
window at a time: 15 s); volatility_surface about 5.5 s, nearly all of it the 487 SLSQP fits
(about 11 ms each, as arch's own fit of the same window takes).
"""

from __future__ import annotations

import itertools
import math
import operator
from collections.abc import Iterator

import numpy as np
import tf_bar_range
import tf_garch
import tf_hmm
from tf_bar_common import Bars
from tf_common import InputError, checkpoint

# --- settings -------------------------------------------------------------------------------------

REFIT_WINDOW = 1440  # params refit_window (dbt var bar_heavy_window)
REFIT_STRIDE = 60  # params refit_stride (dbt var bar_heavy_stride)
MIN_WINDOW = tf_garch.MIN_OBS  # the shortest window either model is fitted on
MAX_WINDOW = min(tf_hmm.MAX_LENGTH, tf_garch.MAX_LENGTH)
MAX_STRIDE = 10_080  # a week of minutes
BP = 1e4  # returns in basis points
LOG_2PI = math.log(2.0 * math.pi)
HMM_STATES = 3
HMM_N_ITER = 10  # dbt var hmm_n_iter, as the L2 hmm_regime family (tf_families)
HMM_SEED = 0
# EM works on arrays of (window length) x HMM_STATES x (windows) float64: the windows of a call
# are taken in groups of at most EM_BLOCK returns (at most 25 MB an array, about five alive; a
# symbol of 31,000 bars has 520 windows of 1440, one group)
EM_BLOCK = 1 << 20
CHECK_STEPS = 256  # time steps between checkpoints in the recursions
GARCH_HORIZONS: tuple[int, ...] = (1, 5, 15, 60, 240)
TERM_WINDOWS: tuple[int, ...] = tf_bar_range.RV_WINDOWS
ESTIMATORS: tuple[str, ...] = tf_bar_range.RV_ESTIMATORS
CONSECUTIVE: list[tuple[int, int]] = list(itertools.pairwise(TERM_WINDOWS))
RATIO_WINDOWS: tuple[int, ...] = (60, 1440)  # vs_garch_vol_ratio_w<N>

# --- columns --------------------------------------------------------------------------------------

_K = range(HMM_STATES)
# carried from the refit, unchanged until the next one
HMM_CARRIED: list[str] = [
    *(f"hmm1m_mean_{k}" for k in _K),
    *(f"hmm1m_vol_{k}" for k in _K),
    *(f"hmm1m_trans_{i}{j}" for i in _K for j in _K),
    *(f"hmm1m_exp_duration_{k}" for k in _K),
    "hmm1m_loglik_per_obs",
    "hmm1m_n_iter",
    "hmm1m_converged",
]
HMM_STATE_COLUMNS: list[str] = [f"state_hmm1m_var_{k}" for k in _K]
HMM_COLUMNS: list[str] = [
    "hmm1m_state",
    *(f"hmm1m_prob_{k}" for k in _K),
    "hmm1m_entropy",
    "hmm1m_duration",
    "hmm1m_stay_prob",
    "hmm1m_pred_mean",
    "hmm1m_pred_vol",
    "hmm1m_return_z",
    "hmm1m_loglik_bar",
    "hmm1m_bars_since_refit",
    *HMM_CARRIED,
    *HMM_STATE_COLUMNS,
]

VS_TERM_COLUMNS: list[str] = [
    *(f"vs_slope_{e}" for e in ESTIMATORS),
    *(f"vs_ratio_{e}_w15_w1440" for e in ESTIMATORS),
    *(f"vs_ratio_{e}_w60_w1440" for e in ESTIMATORS),
    *(f"vs_ratio_close_w{a}_w{b}" for a, b in CONSECUTIVE),
    *(f"vs_ratio_yang_zhang_w{a}_w{b}" for a, b in CONSECUTIVE),
]
GARCH_CARRIED: list[str] = [
    "vs_garch_mu",
    "vs_garch_omega",
    "vs_garch_alpha",
    "vs_garch_beta",
    "vs_garch_persistence",
    "vs_garch_half_life",
    "vs_garch_long_run_vol",
    "vs_garch_sigma_last",
    *(f"vs_garch_fc_h{h}" for h in GARCH_HORIZONS),
    "vs_garch_loglik_per_obs",
    "vs_garch_converged",
]
VS_COLUMNS: list[str] = [
    *VS_TERM_COLUMNS,
    *GARCH_CARRIED,
    "vs_garch_bars_since_refit",
    "vs_garch_sigma_live",
    "vs_garch_std_resid",
    *(f"vs_garch_vol_ratio_w{n}" for n in RATIO_WINDOWS),
    "state_vs_garch_var",
]

MODELS: dict[str, list[str]] = {
    "hmm_regime_bars": HMM_COLUMNS,
    "volatility_surface": VS_COLUMNS,
}

# bars before the first written row that each model reads, for the default refit_window: a
# refit at `start` reads the refit_window bars before it, volatility_surface's 1440-bar realized
# volatilities 1440 (a model run with a longer refit_window needs that many)
WARMUP_BARS: dict[str, int] = {
    "hmm_regime_bars": REFIT_WINDOW,
    "volatility_surface": max(REFIT_WINDOW, *TERM_WINDOWS),
}


def compute(model: str, bars: Bars, params: dict) -> dict[str, np.ndarray]:
    """Every column of `model` on one symbol's bars (tf_bar_common explains the contract)."""
    setting = _Setting(bars, params)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore", under="ignore"):
        if model == "hmm_regime_bars":
            return _hmm_regime_bars(setting, params)
        return _volatility_surface(bars, setting, params)


# --- what both share ------------------------------------------------------------------------------


def _integer(params: dict, key: str, default: int, least: int, most: int) -> int:
    value = params.get(key)
    if value is None:
        return default
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool):
        raise InputError(f"params.{key} must be an integer, got {value!r}")
    try:
        number = operator.index(value)
    except TypeError:
        raise InputError(f"params.{key} must be an integer, got {value!r}") from None
    if not least <= number <= most:
        raise InputError(f"params.{key} must be between {least} and {most}, got {number}")
    return number


class _Setting:
    """start, the window and the stride, the returns in basis points, the refit bars and which
    refit each written bar follows. Tables of carried values have one row per refit of the
    call, after row 0 for what `prev` carries."""

    def __init__(self, bars: Bars, params: dict) -> None:
        close = bars.close
        n = len(close)
        bad = np.flatnonzero(~(close > 0) | ~np.isfinite(close))
        if bad.size:
            raise InputError(f"close must be a positive price; bar {bad[0] + 1} is {close[bad[0]]}")
        self.n = n
        self.start = min(max(int(params.get("start") or 0), 0), n)
        self.window = _integer(params, "refit_window", REFIT_WINDOW, MIN_WINDOW, MAX_WINDOW)
        self.stride = _integer(params, "refit_stride", REFIT_STRIDE, 1, MAX_STRIDE)
        y = np.full(n, np.nan)
        if n > 1:
            y[1:] = BP * np.log1p((close[1:] - close[:-1]) / close[:-1])
        self.y = y
        at = np.flatnonzero(bars.minute % self.stride == self.stride - 1)
        # refit bars from start on whose refit_window returns exist
        self.refits = at[(at >= self.start) & (at >= self.window)]
        # the table row of each written bar: 0 before the call's first refit, j + 1 after refit j
        self.row = np.searchsorted(self.refits, np.arange(self.start, n), side="right")
        # the bar each table row's stretch continues from (start - 1 for prev's) and its length
        self.entry = np.concatenate([[self.start - 1], self.refits]).astype(np.int64)
        ends = np.concatenate([self.refits, [n]])
        self.length = ends - np.concatenate([[self.start], self.refits + 1])

    def windows(self) -> np.ndarray:
        """The returns of each refit window, one row per refit (a view)."""
        if not len(self.refits):
            return np.empty((0, self.window))
        view = np.lib.stride_tricks.sliding_window_view(self.y, self.window)
        return view[self.refits - self.window + 1]

    def carry(self, table: np.ndarray) -> np.ndarray:
        """A column carried from the refits (table row 0 = prev's value, j + 1 = refit j's) on
        the written bars; NaN on the warm-up rows."""
        out = np.full(self.n, np.nan)
        out[self.start :] = np.asarray(table, dtype=float)[self.row]
        return out

    def since_refit(self, from_prev: float, ran: np.ndarray) -> np.ndarray:
        """Bars since the refit a written bar follows (0 on the refit bar), from prev's count
        before the call's first refit; NaN where ran (per table row) is False."""
        base = np.concatenate([[from_prev], np.zeros(len(self.refits))])
        base[~ran] = np.nan
        t = np.arange(self.start, self.n)
        out = np.full(self.n, np.nan)
        out[self.start :] = base[self.row] + (t - self.entry[self.row])
        return out

    def steps(self, rows: np.ndarray) -> Iterator[tuple[np.ndarray, int, np.ndarray]]:
        """Walks the stretches of the given table rows in parallel, after their entry bars:
        yields (the rows still running, longest first, as positions in `rows`; how many;
        their bars) for step 1, 2, ... Stretches are sorted longest first, so the running
        ones are a prefix."""
        lengths = self.length[rows]
        order = np.argsort(-lengths, kind="stable")
        ordered = -lengths[order]
        entries = self.entry[rows][order]
        longest = int(lengths.max()) if lengths.size else 0
        for k in range(1, longest + 1):
            if not k % CHECK_STEPS:
                checkpoint()
            m = int(np.searchsorted(ordered, -k, side="right"))
            yield order[:m], m, entries[:m] + k


def _prev(params: dict, column: str) -> float:
    """The value of column in the stored row before start (NaN for NULL or no row)."""
    prev = params.get("prev")
    if not prev or prev.get(column) is None:
        return math.nan
    return float(prev[column])


# --- hmm_regime_bars: EM for many windows at once -------------------------------------------------


class _Forward:
    """The scaled forward pass of G3 (tf_hmm._scaled's arithmetic) for many windows at once:
    x is (time, window), the parameters (state, window) and (state, state, window); the
    lattice alpha and the emission frames are (time, state, window)."""

    def __init__(
        self,
        x: np.ndarray,
        start: np.ndarray,
        trans: np.ndarray,
        means: np.ndarray,
        var: np.ndarray,
    ) -> None:
        # C order (columns picked by fancy indexing come out in Fortran order, which makes
        # every step's small operations several times slower)
        x, start, trans, means = (np.ascontiguousarray(a) for a in (x, start, trans, means))
        t_len, b_len = x.shape
        k = start.shape[0]
        variances = np.ascontiguousarray(np.maximum(var, np.finfo(float).tiny))
        # tf_hmm.log_emission: -0.5 (ln 2pi + ln var + (x - mu)^2 / var)
        frame = x[:, None, :] - means[None]
        frame *= frame
        frame /= variances[None]
        frame += (LOG_2PI + np.log(variances))[None]
        frame *= -0.5
        peak = frame.max(axis=1)
        frame -= peak[:, None, :]
        np.exp(frame, out=frame)
        alpha = np.empty_like(frame)
        pred = np.empty((t_len, k, b_len))  # pred[t] = alpha_(t-1) A, t >= 1
        scale = np.empty((t_len, b_len))
        np.multiply(start, frame[0], out=alpha[0])
        scale[0] = alpha[0].sum(axis=0)
        alpha[0] /= scale[0]
        work = np.empty((k, k, b_len))
        multiply, add, divide = np.multiply, np.add, np.divide
        for t in range(1, t_len):
            if not t % CHECK_STEPS:
                checkpoint()
            # the sums over states are written out (a reduction call costs more per step)
            multiply(alpha[t - 1][:, None, :], trans, out=work)
            p = pred[t]
            p[...] = work[0]
            for i in range(1, k):
                add(p, work[i], out=p)
            row = alpha[t]
            multiply(p, frame[t], out=row)
            c = scale[t]
            c[...] = row[0]
            for i in range(1, k):
                add(c, row[i], out=c)
            divide(row, c, out=row)
        # tf_hmm._scaled gives way to log space when a c_t falls below MIN_SCALED, or a state's
        # predicted mass times c_(t-1) does (a state that can be in use: every state here)
        starved = (pred[1:] * scale[:-1, None, :] < tf_hmm.MIN_SCALED).any(axis=(0, 1))
        self.ok = (scale >= tf_hmm.MIN_SCALED).all(axis=0) & ~starved
        self.frame, self.alpha, self.scale = frame, alpha, scale
        self.loglik = np.log(scale).sum(axis=0) + peak.sum(axis=0)


def _em_step_batch(
    x: np.ndarray, start: np.ndarray, trans: np.ndarray, means: np.ndarray, var: np.ndarray
) -> tuple[list[np.ndarray], np.ndarray, np.ndarray]:
    """tf_hmm._em_step for each window (column of x): [startprob, transmat, means, variances]
    after one E- and M-step, the log-likelihood before it, and ok (False where the scaled pass
    may have lost mass or a value is not finite: that window's step is tf_hmm._em_step's)."""
    x, start, trans, means, var = (np.ascontiguousarray(a) for a in (x, start, trans, means, var))
    fwd = _Forward(x, start, trans, means, var)
    t_len = x.shape[0]
    alpha = fwd.alpha
    weights = fwd.frame[1:]
    weights /= fwd.scale[1:, None, :]  # b_(t+1)(j) / c_(t+1)
    beta = np.empty_like(alpha)
    beta[-1] = 1.0
    k = trans.shape[0]
    work = np.empty(trans.shape)
    ahead = np.empty(trans.shape[1:])
    multiply, add = np.multiply, np.add
    for t in range(t_len - 2, -1, -1):
        if not t % CHECK_STEPS:
            checkpoint()
        multiply(weights[t], beta[t + 1], out=ahead)
        multiply(trans, ahead[None], out=work)
        b = beta[t]
        b[...] = work[:, 0]
        for j in range(1, k):
            add(b, work[:, j], out=b)
    weights *= beta[1:]
    xi_sum = trans * np.einsum("tib,tjb->ijb", alpha[:-1], weights)
    gamma = beta
    gamma *= alpha
    gamma /= gamma.sum(axis=1, keepdims=True)
    ok = fwd.ok & np.isfinite(gamma).all(axis=(0, 1)) & np.isfinite(xi_sum).all(axis=(0, 1))

    post = gamma.sum(axis=0)
    obs = np.einsum("tkb,tb->kb", gamma, x)
    obs2 = np.einsum("tkb,tb->kb", gamma, x * x)
    new_start = np.where(start == 0, 0.0, np.maximum(gamma[0], 0.0))
    new_start /= new_start.sum(axis=0)
    new_trans = np.where(trans == 0, 0.0, np.maximum(xi_sum, 0.0))
    rows = new_trans.sum(axis=1, keepdims=True)
    new_trans = np.where(rows > 0, new_trans / np.where(rows > 0, rows, 1.0), trans)
    new_means = np.where(post > 0, obs / np.where(post > 0, post, 1.0), means)
    c_n = obs2 - 2 * new_means * obs + new_means**2 * post
    new_var = (tf_hmm.COVARS_PRIOR + c_n) / np.maximum(post, 1e-5)
    ok &= np.isfinite(new_means).all(axis=0) & np.isfinite(new_var).all(axis=0)
    return [new_start, new_trans, new_means, new_var], fwd.loglik, ok


def _groups(columns: np.ndarray, t_len: int) -> list[np.ndarray]:
    size = max(1, EM_BLOCK // max(t_len, 1))
    return [columns[i : i + size] for i in range(0, len(columns), size)]


class HmmFits:
    """The fits of many windows (the rows of `windows`), each as tf_hmm.hmm_fit(window, 3,
    n_iter, seed) gives it (states by ascending mean; n_iter = the EM iterations run,
    converged = stopped by the tolerance), and the filtered probabilities at each window's end
    (tf_hmm.hmm_filtered(window, fit)[-1] and [-2]), the run length of the last filtered state
    in the window and the fit's log-likelihood. `failed`: EM overflowed (tf_hmm raises
    InputError there); those windows have no fit."""

    def __init__(self, windows: np.ndarray, n_iter: int, seed: int = HMM_SEED) -> None:
        b_len, t_len = windows.shape
        k = HMM_STATES
        x = np.ascontiguousarray(windows.T)  # (time, window)
        params = [np.empty((k, b_len)), np.empty((k, k, b_len)), np.empty((k, b_len))]
        params.append(np.empty((k, b_len)))
        for b in range(b_len):
            if not b % 64:
                checkpoint()
            model = tf_hmm._initial(np.array(windows[b]), k, seed)
            for p, value in zip(params, _fields(model), strict=True):
                p[..., b] = value
        history = np.full((max(n_iter, 1), b_len), np.nan)
        running = np.ones(b_len, dtype=bool)
        failed = np.zeros(b_len, dtype=bool)
        converged = np.zeros(b_len, dtype=bool)
        iterations = np.zeros(b_len, dtype=np.int64)
        for it in range(n_iter):
            active = np.flatnonzero(running)
            if not active.size:
                break
            for group in _groups(active, t_len):
                checkpoint()
                before = [p[..., group] for p in params]
                new, loglik, ok = _em_step_batch(x[:, group], *before)
                for j in np.flatnonzero(~ok):  # the way tf_hmm takes (log space if need be)
                    b = int(group[j])
                    old = tf_hmm.Hmm(*(p[..., j].copy() for p in before))
                    try:
                        stepped, loglik[j] = tf_hmm._em_step(np.array(windows[b]), old)
                    except InputError:
                        failed[b] = True
                        continue
                    for p, value in zip(new, _fields(stepped), strict=True):
                        p[..., j] = value
                for p, value in zip(params, new, strict=True):
                    p[..., group] = value
                history[it, group] = loglik
            iterations[active] += 1
            if it:
                gain = history[it, active] - history[it - 1, active]
                stop = active[gain < tf_hmm.TOL]
                converged[stop] = True
                running[stop] = False
            running &= ~failed
        converged &= ~failed
        # tf_hmm.Hmm.by_mean: states by ascending mean (a stable sort)
        order = np.argsort(params[2], axis=0, kind="stable")
        start, trans, means, var = params
        self.startprob = np.take_along_axis(start, order, axis=0)
        self.means = np.take_along_axis(means, order, axis=0)
        self.variances = np.take_along_axis(var, order, axis=0)
        trans = np.take_along_axis(trans, order[:, None, :], axis=0)
        self.transmat = np.take_along_axis(trans, order[None, :, :], axis=1)
        self.iterations, self.converged, self.failed = iterations, converged, failed
        self.history = history
        self._filter(windows, x)

    def model(self, b: int) -> tf_hmm.Hmm:
        return tf_hmm.Hmm(
            self.startprob[:, b].copy(),
            self.transmat[:, :, b].copy(),
            self.means[:, b].copy(),
            self.variances[:, b].copy(),
        )

    def _filter(self, windows: np.ndarray, x: np.ndarray) -> None:
        b_len, t_len = windows.shape
        k = HMM_STATES
        self.loglik = np.full(b_len, np.nan)
        self.last = np.full((k, b_len), np.nan)  # alpha_T
        self.before_last = np.full((k, b_len), np.nan)  # alpha_(T-1)
        self.run = np.full(b_len, np.nan)
        for group in _groups(np.flatnonzero(~self.failed), t_len):
            checkpoint()
            fwd = _Forward(
                x[:, group],
                self.startprob[:, group],
                self.transmat[:, :, group],
                self.means[:, group],
                self.variances[:, group],
            )
            alpha = fwd.alpha
            loglik = fwd.loglik
            for j in np.flatnonzero(~fwd.ok):  # the way tf_hmm.infer takes
                b = int(group[j])
                inference = tf_hmm.infer(np.array(windows[b]), self.model(b), smooth=False)
                alpha[:, :, j] = inference.filtered
                loglik[j] = inference.loglik
            self.loglik[group] = loglik
            self.last[:, group] = alpha[-1]
            self.before_last[:, group] = alpha[-2]
            states = alpha.argmax(axis=1)  # (time, window); a tie goes to the lowest state
            changed = states != states[-1]
            last_change = np.where(
                changed.any(axis=0), t_len - 1 - np.argmax(changed[::-1], axis=0), -1
            )
            self.run[group] = t_len - 1 - last_change


def _fields(model: tf_hmm.Hmm) -> tuple[np.ndarray, ...]:
    return model.startprob, model.transmat, model.means, model.variances


def _filter_step(
    alpha: np.ndarray, trans: np.ndarray, means: np.ndarray, var: np.ndarray, x: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """One step of the forward recursion for many stretches (columns): alpha_t proportional to
    (alpha_(t-1) A) * N(x_t; mu, var), worked in logs (the largest term is exp(0), so no mass
    is lost to underflow), and ln p(x_t | the past) = ln sum_j (alpha_(t-1) A)_j N(x_t; mu_j,
    var_j)."""
    pred = (alpha[:, None, :] * trans).sum(axis=0)
    logb = -0.5 * (LOG_2PI + np.log(var) + (x[None] - means) ** 2 / var)
    log_joint = np.log(pred) + logb
    top = log_joint.max(axis=0)
    joint = np.exp(log_joint - top[None])
    total = joint.sum(axis=0)
    return joint / total[None], top + np.log(total)


# --- hmm_regime_bars ------------------------------------------------------------------------------


def _hmm_regime_bars(s: _Setting, params: dict) -> dict[str, np.ndarray]:
    n, k = s.n, HMM_STATES
    n_iter = _integer(params, "hmm_n_iter", HMM_N_ITER, 1, tf_hmm.MAX_ITER)
    if n_iter * s.window > tf_hmm.MAX_EM_WORK:
        raise InputError(
            f"params.hmm_n_iter x refit_window must be at most {tf_hmm.MAX_EM_WORK},"
            f" got {n_iter} x {s.window}"
        )
    rows = len(s.refits) + 1
    # the table: row 0 what prev carries, row j + 1 refit j's fit
    means = np.full((rows, k), np.nan)
    var = np.full((rows, k), np.nan)
    trans = np.full((rows, k, k), np.nan)
    entry_alpha = np.full((rows, k), np.nan)  # the filtered probabilities at the entry bar
    entry_state = np.full(rows, np.nan)
    entry_duration = np.full(rows, np.nan)
    carried = {c: np.full(rows, np.nan) for c in (*HMM_CARRIED, *HMM_STATE_COLUMNS)}
    for c in carried:
        carried[c][0] = _prev(params, c)
    for j in _K:
        means[0, j] = _prev(params, f"hmm1m_mean_{j}")
        var[0, j] = _prev(params, f"state_hmm1m_var_{j}")
        entry_alpha[0, j] = _prev(params, f"hmm1m_prob_{j}")
        for i in _K:
            trans[0, i, j] = _prev(params, f"hmm1m_trans_{i}{j}")
    entry_state[0] = _prev(params, "hmm1m_state")
    entry_duration[0] = _prev(params, "hmm1m_duration")

    y = s.y
    out = {c: np.full(n, np.nan) for c in HMM_COLUMNS}
    probs = np.full((n, k), np.nan)
    loglik_bar = out["hmm1m_loglik_bar"]
    state = out["hmm1m_state"]
    duration = out["hmm1m_duration"]
    if len(s.refits):
        fits = HmmFits(s.windows(), n_iter)
        ok = ~fits.failed
        r = np.flatnonzero(ok) + 1  # their table rows
        means[r], var[r] = fits.means[:, ok].T, fits.variances[:, ok].T
        trans[r] = fits.transmat[:, :, ok].transpose(2, 0, 1)
        entry_alpha[r] = fits.last[:, ok].T
        entry_state[r] = np.argmax(fits.last[:, ok], axis=0)
        entry_duration[r] = fits.run[ok]
        diagonal = np.diagonal(trans[r], axis1=1, axis2=2)
        for j in _K:
            carried[f"hmm1m_mean_{j}"][r] = means[r, j]
            carried[f"hmm1m_vol_{j}"][r] = np.sqrt(var[r, j])
            carried[f"hmm1m_exp_duration_{j}"][r] = np.where(
                diagonal[:, j] < 1.0, 1.0 / (1.0 - diagonal[:, j]), np.nan
            )
            carried[f"state_hmm1m_var_{j}"][r] = var[r, j]
            for i in _K:
                carried[f"hmm1m_trans_{i}{j}"][r] = trans[r, i, j]
        carried["hmm1m_loglik_per_obs"][r] = fits.loglik[ok] / s.window
        carried["hmm1m_n_iter"][r] = fits.iterations[ok]
        carried["hmm1m_converged"][r] = fits.converged[ok]
        # the refit bars themselves: the window's last filtered probabilities, and the
        # predictive log-density of their return from the window's filtered probabilities
        # one bar before
        bars = s.refits[ok]
        probs[bars] = fits.last[:, ok].T
        state[bars] = entry_state[r]
        duration[bars] = entry_duration[r]
        loglik_bar[bars] = _filter_step(
            fits.before_last[:, ok], fits.transmat[:, :, ok], fits.means[:, ok],
            fits.variances[:, ok], y[bars],
        )[1]  # fmt: skip

    # the later bars: the forward recursion continued with the carried parameters
    running = np.flatnonzero(
        np.isfinite(entry_alpha).all(axis=1)
        & np.isfinite(means).all(axis=1)
        & np.isfinite(var).all(axis=1)
        & np.isfinite(trans).all(axis=(1, 2))
        & np.isfinite(entry_state)
        & np.isfinite(entry_duration)
    )
    alpha = entry_alpha[running].T.copy()  # (state, stretch)
    a = trans[running].transpose(1, 2, 0).copy()
    mu = means[running].T.copy()
    v = var[running].T.copy()
    current = entry_state[running].copy()
    count = entry_duration[running].copy()
    for pick, _, bars in s.steps(running):
        new_alpha, ll = _filter_step(
            alpha[:, pick], a[:, :, pick], mu[:, pick], v[:, pick], y[bars]
        )
        alpha[:, pick] = new_alpha
        new_state = np.argmax(new_alpha, axis=0).astype(float)
        count[pick] = np.where(new_state == current[pick], count[pick] + 1.0, 1.0)
        current[pick] = new_state
        probs[bars] = new_alpha.T
        loglik_bar[bars] = ll
        state[bars] = new_state
        duration[bars] = count[pick]

    # per-bar features of the filtered probabilities and the parameters in force
    written = np.arange(s.start, n)
    p = probs[written]
    mu_bar = means[s.row]
    var_bar = var[s.row]
    a_bar = trans[s.row]
    for j in _K:
        out[f"hmm1m_prob_{j}"][written] = p[:, j]
    out["hmm1m_entropy"][written] = -np.where(p > 0, p * np.log(p), 0.0).sum(axis=1)
    out["hmm1m_entropy"][written[np.isnan(p).any(axis=1)]] = np.nan
    out["hmm1m_stay_prob"][written] = (p * np.diagonal(a_bar, axis1=1, axis2=2)).sum(axis=1)
    q = np.einsum("bi,bij->bj", p, a_bar)  # the next bar's state probabilities
    pred_mean = (q * mu_bar).sum(axis=1)
    out["hmm1m_pred_mean"][written] = pred_mean
    out["hmm1m_pred_vol"][written] = np.sqrt(
        (q * (var_bar + (mu_bar - pred_mean[:, None]) ** 2)).sum(axis=1)
    )
    has_state = np.isfinite(state[written])
    which = np.where(has_state, state[written], 0).astype(np.int64)
    picked_mean = np.take_along_axis(mu_bar, which[:, None], axis=1)[:, 0]
    picked_var = np.take_along_axis(var_bar, which[:, None], axis=1)[:, 0]
    z = (y[written] - picked_mean) / np.sqrt(picked_var)
    out["hmm1m_return_z"][written] = np.where(has_state, z, np.nan)
    ran = np.isfinite(carried["hmm1m_n_iter"])
    out["hmm1m_bars_since_refit"] = s.since_refit(_prev(params, "hmm1m_bars_since_refit"), ran)
    for c, table in carried.items():
        out[c] = s.carry(table)
    return out


# --- volatility_surface ---------------------------------------------------------------------------


def _per_bar_vols(rv: dict[str, np.ndarray], estimator: str) -> dict[int, np.ndarray]:
    """Each window's per-bar volatility: rvol_<e>_w<N> (close: divided by sqrt(N), as the
    others are already per bar)."""
    return {
        n: rv[f"rvol_{estimator}_w{n}"] / (math.sqrt(n) if estimator == "close" else 1.0)
        for n in TERM_WINDOWS
    }


def _ratio(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.where(b > 0, a / np.where(b > 0, b, 1.0), np.nan)


def _term_structure(bars: Bars) -> tuple[dict[str, np.ndarray], dict[int, np.ndarray]]:
    """The term-structure columns, and the per-bar close-to-close volatility of each window."""
    rv = tf_bar_range.compute("realized_volatility", bars, {})
    x = np.log(np.array(TERM_WINDOWS, dtype=float))
    xc = x - x.mean()
    out: dict[str, np.ndarray] = {}
    for e in ESTIMATORS:
        sigma = _per_bar_vols(rv, e)
        logs = np.stack([np.where(sigma[n] > 0, np.log(sigma[n]), np.nan) for n in TERM_WINDOWS])
        out[f"vs_slope_{e}"] = (xc[:, None] * logs).sum(axis=0) / float(xc @ xc)
        out[f"vs_ratio_{e}_w15_w1440"] = _ratio(sigma[15], sigma[1440])
        out[f"vs_ratio_{e}_w60_w1440"] = _ratio(sigma[60], sigma[1440])
        if e in ("close", "yang_zhang"):
            for lo, hi in CONSECUTIVE:
                out[f"vs_ratio_{e}_w{lo}_w{hi}"] = _ratio(sigma[lo], sigma[hi])
    return out, _per_bar_vols(rv, "close")


def garch_forecast(omega: float, persistence: float, next_var: float, h: int) -> float:
    """sigma^2_(T+h) = omega (1 + p + ... + p^(h-2)) + p^(h-1) sigma^2_(T+1), p = alpha + beta:
    K14's sigma-bar^2 + p^(h-1) (sigma^2_(T+1) - sigma-bar^2) written without sigma-bar^2, so it
    holds (and keeps its digits) as p approaches 1 and at p >= 1."""
    m = h - 1
    if m == 0:
        return next_var
    if persistence == 1.0:
        return omega * m + next_var
    if persistence <= 0:
        log_p = -math.inf
    elif persistence < 0.5:
        log_p = math.log(persistence)  # p - 1 would round away p's digits (p = 4e-17: -1.0)
    else:
        log_p = math.log1p(persistence - 1.0)  # p - 1 exact (Sterbenz) and p near 1 kept
    power = math.exp(m * log_p)
    total = math.expm1(m * log_p) / (persistence - 1.0)
    return omega * total + power * next_var


def _volatility_surface(bars: Bars, s: _Setting, params: dict) -> dict[str, np.ndarray]:
    n = s.n
    y = s.y
    out, close_vol = _term_structure(bars)

    rows = len(s.refits) + 1
    carried = {c: np.full(rows, np.nan) for c in GARCH_CARRIED}
    for c in GARCH_CARRIED:
        carried[c][0] = _prev(params, c)
    next_var = np.full(rows, np.nan)  # sigma^2 of the bar after the entry bar
    next_var[0] = _prev(params, "state_vs_garch_var")
    live = np.full(n, np.nan)  # sigma^2_(t+1): the variance in force for the bar after t
    resid = np.full(n, np.nan)
    windows = s.windows()
    for j, bar in enumerate(s.refits):
        checkpoint()
        r = j + 1
        try:
            fit = tf_garch.garch11_fit(windows[j])
        except InputError:  # every return of the window equal: no model
            carried["vs_garch_converged"][r] = 0.0
            continue
        carried["vs_garch_converged"][r] = float(fit["converged"])
        if not fit["converged"]:
            continue
        mu, omega, alpha, beta = (fit[key] for key in tf_garch.PARAMS)
        path = tf_garch.garch11_variance(windows[j], fit)
        last = float(path[-1])
        eps = float(y[bar]) - mu
        following = omega + alpha * eps * eps + beta * last
        p = alpha + beta
        values = {
            "vs_garch_mu": mu,
            "vs_garch_omega": omega,
            "vs_garch_alpha": alpha,
            "vs_garch_beta": beta,
            "vs_garch_persistence": p,
            "vs_garch_half_life": math.log(0.5) / math.log(p) if 0.0 < p < 1.0 else math.nan,
            "vs_garch_long_run_vol": math.sqrt(omega / (1.0 - p)) if p < 1.0 else math.nan,
            "vs_garch_sigma_last": math.sqrt(last),
            "vs_garch_loglik_per_obs": fit["loglik"] / s.window,
        }
        for h in GARCH_HORIZONS:
            values[f"vs_garch_fc_h{h}"] = math.sqrt(garch_forecast(omega, p, following, h))
        for c, value in values.items():
            carried[c][r] = value
        next_var[r] = following
        live[bar] = following
        resid[bar] = eps / math.sqrt(last)

    # the later bars: sigma^2_(t+1) = omega + alpha (y_t - mu)^2 + beta sigma^2_t
    params_of = [carried[f"vs_garch_{key}"] for key in tf_garch.PARAMS]
    running = np.flatnonzero(
        np.isfinite(next_var) & np.all([np.isfinite(p) for p in params_of], axis=0)
    )
    mu, omega, alpha, beta = (p[running] for p in params_of)
    s2 = next_var[running].copy()
    for pick, _, bars_now in s.steps(running):
        eps = y[bars_now] - mu[pick]
        resid[bars_now] = eps / np.sqrt(s2[pick])
        s2[pick] = omega[pick] + alpha[pick] * eps * eps + beta[pick] * s2[pick]
        live[bars_now] = s2[pick]

    for c in GARCH_CARRIED:
        out[c] = s.carry(carried[c])
    ran = np.isfinite(carried["vs_garch_converged"])
    out["vs_garch_bars_since_refit"] = s.since_refit(
        _prev(params, "vs_garch_bars_since_refit"), ran
    )
    written = np.zeros(n, dtype=bool)
    written[s.start :] = True
    live[~written] = np.nan
    resid[~written] = np.nan
    sigma = np.sqrt(live)
    out["vs_garch_sigma_live"] = sigma
    out["vs_garch_std_resid"] = resid
    for w in RATIO_WINDOWS:
        out[f"vs_garch_vol_ratio_w{w}"] = _ratio(sigma, BP * close_vol[w])
    out["state_vs_garch_var"] = live
    return out
