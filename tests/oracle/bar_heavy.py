"""Reference implementation ("oracle") of the bar families `hmm_regime_bars` and
`volatility_surface` (FEATURE_DEFINITIONS K14 with G3, C5 and K7), written from that text and
the column descriptions of models/bar/<model>.yml, not from the kernel
(python_udfs/tf_bar_heavy.py).

Every refit window is fitted on its own by the reference libraries: hmmlearn 0.3.3
GaussianHMM from tf_hmm's starting parameters (hmmlearn's own initialisation needs
scikit-learn's KMeans, which the kernels cannot run; tests/kernels/test_hmm.py compares
tf_hmm.hmm_fit with hmmlearn the same way), and arch 8 arch_model(y).fit(). The bars between
refits are plain loops: the forward recursion in linear space, the GARCH variance recursion.
One symbol per call, bars sorted by ts (tests/oracle/bar_datasets.COLUMNS).
"""

from __future__ import annotations

import itertools
import logging
import math
import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import tf_hmm
from arch import arch_model
from arch.utility.exceptions import ConvergenceWarning, DataScaleWarning
from hmmlearn import _hmmc
from hmmlearn.hmm import GaussianHMM
from scipy.special import logsumexp

from tests.oracle.bar_datasets import kernel_inputs
from tests.oracle.bar_range import realized_volatility

logging.getLogger("hmmlearn").setLevel(logging.ERROR)

K = 3
TERM_WINDOWS = (15, 30, 60, 120, 240, 1440)
ESTIMATORS = ("close", "parkinson", "garman_klass", "rogers_satchell", "yang_zhang")
HORIZONS = (1, 5, 15, 60, 240)


def returns_bp(close: np.ndarray) -> np.ndarray:
    """10^4 ln(C_t / C_(t-1)), written ln(1 + (C_t - C_(t-1))/C_(t-1)); NaN on the first bar."""
    y = np.full(len(close), np.nan)
    y[1:] = 1e4 * np.log1p((close[1:] - close[:-1]) / close[:-1])
    return y


def refit_bars(bars: pd.DataFrame, window: int, stride: int) -> list[int]:
    """Bars whose open minute m has m % stride == stride - 1 and window returns before them."""
    minute = kernel_inputs(bars)["minute"].astype(np.int64)
    return [i for i in range(len(bars)) if minute[i] % stride == stride - 1 and i >= window]


# --- hmm_regime_bars ------------------------------------------------------------------------------


@dataclass
class HmmFit:
    """One refit: hmmlearn's fit, states sorted by ascending mean."""

    startprob: np.ndarray
    transmat: np.ndarray
    means: np.ndarray
    variances: np.ndarray
    loglik: float
    n_iter: int
    converged: bool
    filtered: np.ndarray  # T x K, P(s_t | x_0..x_t) over the window, from hmmlearn's lattice
    history: list[float] = field(default_factory=list)


def hmm_fit(x: np.ndarray, n_iter: int) -> HmmFit:
    start = tf_hmm.initial_params(x.tolist(), K, 0)
    model = GaussianHMM(
        n_components=K, covariance_type="diag", n_iter=n_iter, init_params="", params="stmc"
    )
    model.startprob_ = np.array(start["startprob"])
    model.transmat_ = np.array(start["transmat"])
    model.means_ = np.array(start["means"])[:, None]
    model.covars_ = np.array(start["variances"])[:, None]
    model.fit(x[:, None])
    order = np.argsort(model.means_[:, 0], kind="stable")
    history = list(model.monitor_.history)  # the monitored log-likelihoods
    startprob = model.startprob_[order]
    transmat = model.transmat_[np.ix_(order, order)]
    _, lattice = _hmmc.forward_log(
        startprob, transmat, model._compute_log_likelihood(x[:, None])[:, order]
    )
    filtered = np.exp(lattice - logsumexp(lattice, axis=1, keepdims=True))
    return HmmFit(
        startprob=startprob,
        transmat=transmat,
        means=model.means_[order, 0],
        variances=model.covars_[order, 0, 0],
        loglik=float(model.score(x[:, None])),  # the same for any order of the states
        n_iter=int(model.monitor_.iter),
        # stopped because the gain fell below tol (hmmlearn's monitor also says converged when
        # n_iter ran out)
        converged=len(history) >= 2 and history[-1] - history[-2] < model.tol,
        filtered=filtered,
        history=history,
    )


def _log_normal(x: float, mean: np.ndarray, var: np.ndarray) -> np.ndarray:
    """ln N(x; mean, var): in logs, as a return far from every state (after a window of zero
    returns, whose states have variances near 1e-4) has densities that underflow."""
    return -0.5 * (x - mean) ** 2 / var - 0.5 * np.log(2 * math.pi * var)


def _step(p: np.ndarray, a: np.ndarray, x: float, means: np.ndarray, var: np.ndarray):  # type: ignore[no-untyped-def]
    """(alpha_t, ln p(x_t | the past)) from alpha_(t-1) = p: alpha_t is proportional to
    (p A) * N(x_t; mean, var)."""
    with np.errstate(divide="ignore"):
        log_joint = np.log(p @ a) + _log_normal(x, means, var)
    total = float(logsumexp(log_joint))
    return np.exp(log_joint - total), total


def hmm_per_bar(
    cols: dict[str, np.ndarray],
    i: int,
    p: np.ndarray,
    means: np.ndarray,
    var: np.ndarray,
    a: np.ndarray,
) -> None:
    """The per-bar columns that follow from bar i's filtered probabilities p and the
    parameters in force (the state, duration, return z-score and log-density are set by the
    caller)."""
    for k in range(K):
        cols[f"hmm1m_prob_{k}"][i] = p[k]
    cols["hmm1m_entropy"][i] = -sum(v * math.log(v) for v in p if v > 0)
    cols["hmm1m_stay_prob"][i] = float(np.sum(p * np.diag(a)))
    q = p @ a
    mean = float(q @ means)
    cols["hmm1m_pred_mean"][i] = mean
    cols["hmm1m_pred_vol"][i] = math.sqrt(float(q @ (var + means**2)) - mean**2)


def _frame(bars: pd.DataFrame, cols: dict[str, np.ndarray]) -> pd.DataFrame:
    frame = pd.DataFrame({"symbol": bars["symbol"].to_numpy(), "ts": bars["ts"].to_numpy()})
    for c, values in cols.items():
        frame[c] = values
    return frame


def hmm_regime_bars(
    bars: pd.DataFrame, window: int = 1440, stride: int = 60, n_iter: int = 10
) -> tuple[pd.DataFrame, pd.DataFrame, dict[int, HmmFit]]:
    """(the expected columns, the margin between each bar's two largest filtered
    probabilities and the smallest such margin over the bars that decide its duration, the
    fits by refit bar)."""
    import tf_bar_heavy  # the column names only

    n = len(bars)
    cols = {c: np.full(n, np.nan) for c in tf_bar_heavy.MODELS["hmm_regime_bars"]}
    y = returns_bp(bars["close"].to_numpy(float))
    refits = refit_bars(bars, window, stride)
    fits: dict[int, HmmFit] = {}
    margin = np.full(n, np.nan)
    decided = np.full(n, np.nan)  # smallest margin among the bars of the current run
    for j, r in enumerate(refits):
        end = refits[j + 1] if j + 1 < len(refits) else n
        x = y[r - window + 1 : r + 1]
        fit = hmm_fit(x, n_iter)
        fits[r] = fit
        means, var, a = fit.means, fit.variances, fit.transmat
        carried = {
            "hmm1m_loglik_per_obs": fit.loglik / window,
            "hmm1m_n_iter": fit.n_iter,
            "hmm1m_converged": float(fit.converged),
        }
        for k in range(K):
            carried[f"hmm1m_mean_{k}"] = means[k]
            carried[f"hmm1m_vol_{k}"] = math.sqrt(var[k])
            carried[f"state_hmm1m_var_{k}"] = var[k]
            carried[f"hmm1m_exp_duration_{k}"] = 1 / (1 - a[k, k]) if a[k, k] < 1 else np.nan
            for m in range(K):
                carried[f"hmm1m_trans_{k}{m}"] = a[k, m]
        for c, v in carried.items():
            cols[c][r:end] = v
        # the refit bar: the window's last filtered probabilities; the duration is the run of
        # the window's last filtered state within the window
        path = fit.filtered.argmax(axis=1)
        run = 1
        while run < len(path) and path[-1 - run] == path[-1]:
            run += 1
        tops = np.sort(fit.filtered, axis=1)
        gaps = tops[:, -1] - tops[:, -2]
        p = fit.filtered[-1]
        state, duration = int(np.argmax(p)), run
        margin[r] = gaps[-1]
        decided[r] = gaps[-run - 1 :].min()
        previous = fit.filtered[-2]
        for t in range(r, end):
            if t > r:
                p, log_density = _step(p, a, y[t], means, var)
                new_state = int(np.argmax(p))
                duration = duration + 1 if new_state == state else 1
                state = new_state
                ordered = np.sort(p)
                margin[t] = ordered[-1] - ordered[-2]
                # the run's bars and the bar before it decide the duration
                earlier = decided[t - 1] if duration > 1 else margin[t - 1]
                decided[t] = min(earlier, margin[t])
            else:
                log_density = _step(previous, a, y[t], means, var)[1]
            hmm_per_bar(cols, t, p, means, var, a)
            cols["hmm1m_state"][t] = state
            cols["hmm1m_duration"][t] = duration
            cols["hmm1m_return_z"][t] = (y[t] - means[state]) / math.sqrt(var[state])
            cols["hmm1m_loglik_bar"][t] = log_density
            cols["hmm1m_bars_since_refit"][t] = t - r
    margins = pd.DataFrame({"margin": margin, "decided": decided})
    return _frame(bars, cols), margins, fits


def hmm_one_step(got: pd.DataFrame, bars: pd.DataFrame) -> pd.DataFrame:
    """The per-bar columns recomputed from the kernel's own output: at each bar, the columns
    that follow from its filtered probabilities and carried parameters; at each bar after the
    first of its stretch (the same refit as the bar before, the same carried parameters), its
    filtered probabilities, state, duration and log-density as one step of the forward
    recursion from the bar before. Rows where the kernel has no probabilities stay as the
    kernel's."""
    y = returns_bp(bars["close"].to_numpy(float))
    have = {c: got[c].to_numpy(float) for c in got.columns[2:]}
    cols = {c: v.copy() for c, v in have.items()}
    since = have["hmm1m_bars_since_refit"]
    means_all = np.column_stack([have[f"hmm1m_mean_{k}"] for k in range(K)])
    var_all = np.column_stack([have[f"state_hmm1m_var_{k}"] for k in range(K)])
    probs = np.column_stack([have[f"hmm1m_prob_{k}"] for k in range(K)])
    trans = np.stack(
        [np.column_stack([have[f"hmm1m_trans_{k}{m}"] for m in range(K)]) for k in range(K)],
        axis=1,
    )  # (bar, from, to)
    for i in np.flatnonzero(~np.isnan(probs[:, 0])):
        means, var, a, p = means_all[i], var_all[i], trans[i], probs[i]
        if i > 0 and since[i] >= 1 and since[i - 1] == since[i] - 1:
            p, log_density = _step(probs[i - 1], a, y[i], means, var)
            state = int(np.argmax(p))
            cols["hmm1m_state"][i] = state
            same = state == have["hmm1m_state"][i - 1]
            cols["hmm1m_duration"][i] = have["hmm1m_duration"][i - 1] + 1 if same else 1
            cols["hmm1m_loglik_bar"][i] = log_density
        hmm_per_bar(cols, i, p, means, var, a)
        state = int(cols["hmm1m_state"][i])
        cols["hmm1m_return_z"][i] = (y[i] - means[state]) / math.sqrt(var[state])
        for k in range(K):
            cols[f"hmm1m_vol_{k}"][i] = math.sqrt(var[k])
            cols[f"hmm1m_exp_duration_{k}"][i] = 1 / (1 - a[k, k]) if a[k, k] < 1 else np.nan
    return _frame(bars, cols)


# --- volatility_surface ---------------------------------------------------------------------------


@dataclass
class GarchFit:
    converged: bool
    params: tuple[float, float, float, float] | None  # mu, omega, alpha, beta
    last_var: float = math.nan  # sigma^2_T on the fit's own path
    loglik: float = math.nan


def arch_fit(x: np.ndarray) -> GarchFit:
    """arch_model(x).fit(); a window whose returns are all equal cannot be fitted."""
    if np.ptp(x) == 0:
        return GarchFit(False, None)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = arch_model(x).fit(disp="off")
    expected = DataScaleWarning | ConvergenceWarning
    others = [w for w in caught if not issubclass(w.category, expected)]
    assert not others, [str(w.message) for w in others]
    if result.optimization_result.status != 0:
        return GarchFit(False, None)
    mu, omega, alpha, beta = (float(v) for v in result.params)
    return GarchFit(
        True,
        (mu, omega, alpha, beta),
        float(np.asarray(result.conditional_volatility)[-1] ** 2),
        float(result.loglikelihood),
    )


def forecast_variance(omega: float, alpha: float, beta: float, next_var: float, h: int) -> float:
    """sigma^2_(T+h) by the recursion E_T sigma^2_(T+k) = omega + (alpha + beta) E_T
    sigma^2_(T+k-1) from sigma^2_(T+1), which K14's closed form sigma-bar^2 + (alpha +
    beta)^(h-1) (sigma^2_(T+1) - sigma-bar^2) sums; the closed form itself loses every digit as
    alpha + beta nears 1 (sigma-bar^2 = omega / (1 - alpha - beta) grows without bound), and
    SLSQP does stop on alpha + beta = 1 up to rounding on some windows."""
    value = next_var
    for _ in range(h - 1):
        value = omega + (alpha + beta) * value
    return value


def closed_form_forecast(omega: float, alpha: float, beta: float, next_var: float, h: int) -> float:
    """K14's sigma-bar^2 + (alpha + beta)^(h-1) (sigma^2_(T+1) - sigma-bar^2), alpha + beta < 1."""
    long_run = omega / (1 - alpha - beta)
    return long_run + (alpha + beta) ** (h - 1) * (next_var - long_run)


def _term_structure(bars: pd.DataFrame) -> dict[str, np.ndarray]:
    rv = realized_volatility(bars, float(bars["close"].iloc[0]))
    per_bar = {
        (e, n): rv[f"rvol_{e}_w{n}"].to_numpy() / (math.sqrt(n) if e == "close" else 1.0)
        for e in ESTIMATORS
        for n in TERM_WINDOWS
    }

    def ratio(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(b > 0, a / b, np.nan)

    out: dict[str, np.ndarray] = {}
    x = np.log(np.array(TERM_WINDOWS, dtype=float))
    for e in ESTIMATORS:
        logs = np.stack([per_bar[(e, n)] for n in TERM_WINDOWS], axis=1)
        slope = np.full(len(bars), np.nan)
        for i in range(len(bars)):
            if np.all(logs[i] > 0):
                slope[i] = np.polyfit(x, np.log(logs[i]), 1)[0]
        out[f"vs_slope_{e}"] = slope
        out[f"vs_ratio_{e}_w15_w1440"] = ratio(per_bar[(e, 15)], per_bar[(e, 1440)])
        out[f"vs_ratio_{e}_w60_w1440"] = ratio(per_bar[(e, 60)], per_bar[(e, 1440)])
    for e in ("close", "yang_zhang"):
        for lo, hi in itertools.pairwise(TERM_WINDOWS):
            out[f"vs_ratio_{e}_w{lo}_w{hi}"] = ratio(per_bar[(e, lo)], per_bar[(e, hi)])
    for n in (60, 1440):
        out[f"_close_{n}"] = per_bar[("close", n)]
    return out


def volatility_surface(
    bars: pd.DataFrame, window: int = 1440, stride: int = 60
) -> tuple[pd.DataFrame, dict[int, GarchFit]]:
    import tf_bar_heavy  # the column names only

    n = len(bars)
    cols = {c: np.full(n, np.nan) for c in tf_bar_heavy.MODELS["volatility_surface"]}
    term = _term_structure(bars)
    for c, v in term.items():
        if not c.startswith("_"):
            cols[c] = v
    y = returns_bp(bars["close"].to_numpy(float))
    refits = refit_bars(bars, window, stride)
    fits: dict[int, GarchFit] = {}
    live = np.full(n, np.nan)
    for j, r in enumerate(refits):
        end = refits[j + 1] if j + 1 < len(refits) else n
        fit = arch_fit(y[r - window + 1 : r + 1])
        fits[r] = fit
        cols["vs_garch_converged"][r:end] = float(fit.converged)
        cols["vs_garch_bars_since_refit"][r:end] = np.arange(end - r, dtype=float)
        if fit.params is None:
            continue
        mu, omega, alpha, beta = fit.params
        p = alpha + beta
        eps = y[r] - mu
        next_var = omega + alpha * eps**2 + beta * fit.last_var
        carried = {
            "vs_garch_mu": mu,
            "vs_garch_omega": omega,
            "vs_garch_alpha": alpha,
            "vs_garch_beta": beta,
            "vs_garch_persistence": p,
            "vs_garch_half_life": math.log(0.5) / math.log(p) if 0 < p < 1 else np.nan,
            "vs_garch_long_run_vol": math.sqrt(omega / (1 - p)) if p < 1 else np.nan,
            "vs_garch_sigma_last": math.sqrt(fit.last_var),
            "vs_garch_loglik_per_obs": fit.loglik / window,
        }
        for h in HORIZONS:
            carried[f"vs_garch_fc_h{h}"] = math.sqrt(
                forecast_variance(omega, alpha, beta, next_var, h)
            )
        for c, v in carried.items():
            cols[c][r:end] = v
        cols["vs_garch_std_resid"][r] = eps / math.sqrt(fit.last_var)
        live[r] = next_var
        for t in range(r + 1, end):
            eps = y[t] - mu
            cols["vs_garch_std_resid"][t] = eps / math.sqrt(live[t - 1])
            live[t] = omega + alpha * eps**2 + beta * live[t - 1]
    cols["vs_garch_sigma_live"] = np.sqrt(live)
    cols["state_vs_garch_var"] = live
    for w in (60, 1440):
        realized = 1e4 * term[f"_close_{w}"]
        with np.errstate(divide="ignore", invalid="ignore"):
            cols[f"vs_garch_vol_ratio_w{w}"] = np.where(
                realized > 0, np.sqrt(live) / realized, np.nan
            )
    return _frame(bars, cols), fits
