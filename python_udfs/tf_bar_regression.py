"""Rolling quadratic regressions on one-minute bars (FEATURE_DEFINITIONS K4) and their
comparison across windows and domains (K5).

K4: for each window N in W = {15, 30, 45, 60, 75} the OLS fit y = a2*x^2 + a1*x + b over the
last N values of the domain series (the rate index idx, or bqx_N for the bqx domain), with
x_j = j - (N - 1), so the current bar is x = 0. The design matrix is fixed per N, so a2, a1, b
and the straight-line slope are fixed linear filters of the window: their weights are the rows
of (X^T X)^-1 X^T, computed once per N in exact rational arithmetic and rounded once.

Numerics (K0): each window is centred on its own last value, z_j = y_j - y_t (idx lives near
100, so the uncentred sums would lose every digit), and each filter is applied as a loop over
the N taps of elementwise vector operations. Every window's value is thus computed by the same
operations in the same order wherever the window sits in the input, so an incremental refresh
reproduces the full build bit for bit (a sliding-window matrix product through BLAS is about as
fast, but its rounding may depend on a row's position in its block). The sums of squares avoid
cancellation: SSR is summed from the residuals themselves, and SST = SSR + l1^2*|p1|^2 +
a2^2*|p2|^2 (the fit in the orthogonal basis 1, p1 = x - mean(x), p2 = the monic quadratic
orthogonal to both), so that R^2 = (l1^2*|p1|^2 + a2^2*|p2|^2) / SST keeps its digits even near 0.

K4's exact-zero rules, decided without cancellation noise (the model's YAML states them):
  SST = 0     every value of the window is equal (float equality of the series' values);
  SSR = 0     SSR <= 1e-20 * SST (an exact fit leaves about 1e-28 * SST of rounding);
  a2 = 0, a1 = 0   |a| <= 1e-12 * sum_j |w_j| * max_j |y_j - y_t| (w = the filter's weights;
              rounding leaves below 1e-14 of that); the coefficient is then reported as 0.
Each threshold sits far below K4's knife edge (1e-6 of the size of the terms) and far above
the rounding of an exact zero.

K5 (parabolic_comparison) computes the K4 fits of both domains with the same helpers and
compares them: ratios of a2 and differences of a1 and r2 across the consecutive window pairs
(15, 30), (30, 45), (45, 60), (60, 75), and sign agreements within a domain across a pair and
across the two domains at the same window.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from functools import cache
from itertools import pairwise

import numpy as np
from tf_bar_common import BQX_WINDOWS, Bars, bqx, rate_index
from tf_common import InputError, checkpoint

# K4's 16 metrics, in column order
METRICS: tuple[str, ...] = (
    "a2",
    "a1",
    "b",
    "r2",
    "rmse",
    "resid",
    "resid_z",
    "pred_1",
    "curvature",
    "vertex",
    "lin_slope",
    "lin_r2",
    "quad_gain",
    "se_a2",
    "t_a2",
    "pi95",
)
DOMAINS: tuple[str, ...] = ("rate", "bqx")
# K5: consecutive window pairs
PAIRS: tuple[tuple[int, int], ...] = tuple(pairwise(BQX_WINDOWS))
# bars before the first written one that every row needs: bqx_75 over 75 bars reaches back 149
WARMUP_BARS = 2 * max(BQX_WINDOWS) - 1

_SSR_ZERO = 1e-20  # SSR <= this * SST is an exact fit
_COEF_ZERO = 1e-12  # |a| <= this * sum|w| * max|z| is an exact zero coefficient
_Z95 = 1.96


def _regression_columns(domain: str) -> list[str]:
    return [f"reg_{m}_{domain}_w{n}" for m in METRICS for n in BQX_WINDOWS]


def _comparison_columns() -> list[str]:
    columns = []
    for domain in DOMAINS:
        for stem in ("a2_ratio", "a1_diff", "curv_agree", "r2_diff"):
            columns += [f"pc_{stem}_{domain}_w{a}_w{b}" for a, b in PAIRS]
    for stem in ("slope_agree", "curv_agree", "r2_diff"):
        columns += [f"pc_{stem}_w{n}" for n in BQX_WINDOWS]
    return columns


MODELS: dict[str, list[str]] = {
    "regression_rate": _regression_columns("rate"),
    "regression_bqx": _regression_columns("bqx"),
    "parabolic_comparison": _comparison_columns(),
}


@dataclass(frozen=True)
class _Filters:
    """The fixed weights of one window length n (index j = 0..n-1, x_j = j - (n - 1))."""

    x: np.ndarray
    x2: np.ndarray
    a2: np.ndarray  # a2 = sum_j a2[j] * y_j, and likewise a1, b, lin_slope
    a1: np.ndarray
    b: np.ndarray
    lin_slope: np.ndarray
    a2_abs: float  # sum_j |a2[j]|
    a1_abs: float
    p1_norm2: float  # sum_j (x_j - mean x)^2
    p2_norm2: float  # 1 / [(X^T X)^-1]_{a2,a2}
    pred_h: float  # x1^T (X^T X)^-1 x1 with x1 = (1, 1, 1)


def _inverse(matrix: list[list[Fraction]]) -> list[list[Fraction]]:
    """The inverse of a small non-singular rational matrix (Gauss-Jordan, exact)."""
    n = len(matrix)
    rows = [list(row) + [Fraction(int(i == k)) for k in range(n)] for i, row in enumerate(matrix)]
    for col in range(n):
        pivot = next(r for r in range(col, n) if rows[r][col] != 0)
        rows[col], rows[pivot] = rows[pivot], rows[col]
        head = rows[col][col]
        rows[col] = [v / head for v in rows[col]]
        for r in range(n):
            if r != col and rows[r][col] != 0:
                factor = rows[r][col]
                rows[r] = [v - factor * p for v, p in zip(rows[r], rows[col], strict=True)]
    return [row[n:] for row in rows]


@cache
def _filters(n: int) -> _Filters:
    xs = [Fraction(j - (n - 1)) for j in range(n)]
    design = [(x * x, x, Fraction(1)) for x in xs]
    gram = [[sum(row[i] * row[k] for row in design) for k in range(3)] for i in range(3)]
    inv = _inverse(gram)
    weights = [[sum(inv[i][k] * row[k] for k in range(3)) for row in design] for i in range(3)]
    mean_x = sum(xs) / n
    p1_norm2 = sum((x - mean_x) ** 2 for x in xs)
    slope = [(x - mean_x) / p1_norm2 for x in xs]
    as_array = lambda values: np.array([float(v) for v in values])  # noqa: E731
    return _Filters(
        x=as_array(xs),
        x2=as_array(x * x for x in xs),
        a2=as_array(weights[0]),
        a1=as_array(weights[1]),
        b=as_array(weights[2]),
        lin_slope=as_array(slope),
        a2_abs=float(sum(abs(v) for v in weights[0])),
        a1_abs=float(sum(abs(v) for v in weights[1])),
        p1_norm2=float(p1_norm2),
        p2_norm2=float(1 / inv[0][0]),
        pred_h=float(sum(inv[i][k] for i in range(3) for k in range(3))),
    )


def _complete_windows(y: np.ndarray, n: int) -> np.ndarray:
    """For each window end t >= n - 1: whether all n values y[t-n+1..t] are finite."""
    counts = np.concatenate(([0], np.cumsum(np.isfinite(y), dtype=np.int64)))
    return counts[n:] - counts[:-n] == n


def _fit(y: np.ndarray, n: int) -> dict[str, np.ndarray]:
    """K4's 16 metrics of the series y over trailing windows of n values, each as long as y
    (NaN until a window of n finite values exists)."""
    length = len(y)
    out = {m: np.full(length, np.nan) for m in METRICS}
    m = length - n + 1
    if m <= 0:
        return out
    f = _filters(n)
    last = y[n - 1 :]
    a2, a1, bc, slope, zmax = (np.zeros(m) for _ in range(5))
    z, term = np.empty(m), np.empty(m)
    # pass 1: the linear filters of the centred window (z_{n-1} = 0 adds nothing)
    for j in range(n - 1):
        np.subtract(y[j : j + m], last, out=z)
        for acc, weights in ((a2, f.a2), (a1, f.a1), (bc, f.b), (slope, f.lin_slope)):
            np.multiply(z, weights[j], out=term)
            acc += term
        np.abs(z, out=term)
        np.maximum(zmax, term, out=zmax)
    checkpoint()
    a2[np.abs(a2) <= _COEF_ZERO * f.a2_abs * zmax] = 0.0
    a1[np.abs(a1) <= _COEF_ZERO * f.a1_abs * zmax] = 0.0
    # pass 2: SSR from the residuals z_j - (a2 x_j^2 + a1 x_j + bc); the last one is -bc
    ssr = bc * bc
    fitted = np.empty(m)
    for j in range(n - 1):
        np.multiply(a2, f.x2[j], out=fitted)
        np.multiply(a1, f.x[j], out=term)
        fitted += term
        fitted += bc
        np.subtract(y[j : j + m], last, out=z)
        z -= fitted
        z *= z
        ssr += z
    checkpoint()
    window = np.lib.stride_tricks.sliding_window_view(y, n)
    flat = window.max(axis=1) == window.min(axis=1)
    explained = slope * slope * f.p1_norm2 + a2 * a2 * f.p2_norm2
    sst = ssr + explained
    ssr[flat | (ssr <= _SSR_ZERO * sst)] = 0.0
    sst[flat] = 0.0
    with np.errstate(divide="ignore", invalid="ignore"):
        r2 = np.where(flat, np.nan, explained / sst)
        lin_r2 = np.where(flat, np.nan, slope * slope * f.p1_norm2 / sst)
        rmse = np.sqrt(ssr / n)
        var = ssr / (n - 3)
        se_a2 = np.sqrt(var / f.p2_norm2)
        exact_fit = ssr == 0.0
        values = {
            "a2": a2,
            "a1": a1,
            "b": last + bc,
            "r2": r2,
            "rmse": rmse,
            "resid": -bc,
            "resid_z": np.where(exact_fit, np.nan, -bc / rmse),
            "pred_1": last + (bc + a1 + a2),
            "curvature": 2.0 * a2,
            "vertex": np.where(a2 == 0.0, np.nan, -a1 / (2.0 * a2)) + 0.0,
            "lin_slope": slope,
            "lin_r2": lin_r2,
            "quad_gain": np.where(flat, np.nan, a2 * a2 * f.p2_norm2 / sst),
            "se_a2": se_a2,
            "t_a2": np.where(exact_fit, np.nan, a2 / se_a2),
            "pi95": _Z95 * np.sqrt(var * (1.0 + f.pred_h)),
        }
    complete = _complete_windows(y, n)
    for name, value in values.items():
        out[name][n - 1 :] = np.where(complete, value, np.nan)
    return out


def _domain_series(domain: str, bars: Bars, n: int, first_close: float) -> np.ndarray:
    """The series K4 fits for window n: idx (the same for every n) or bqx_n."""
    return rate_index(bars.close, first_close) if domain == "rate" else bqx(bars.close, n)


def _fits(domain: str, bars: Bars, params: dict) -> dict[int, dict[str, np.ndarray]]:
    """K4's metrics of one domain for every window, by window."""
    first_close = params.get("first_close")
    if domain == "rate" and not (
        first_close is not None and np.isfinite(first_close) and first_close > 0
    ):
        raise InputError("regression_rate needs a positive params.first_close (C_first, K0)")
    return {n: _fit(_domain_series(domain, bars, n, first_close), n) for n in BQX_WINDOWS}


def _regression(domain: str, bars: Bars, params: dict) -> dict[str, np.ndarray]:
    fits = _fits(domain, bars, params)
    return {f"reg_{m}_{domain}_w{n}": fits[n][m] for m in METRICS for n in BQX_WINDOWS}


def _comparison(bars: Bars, params: dict) -> dict[str, np.ndarray]:
    fits = {domain: _fits(domain, bars, params) for domain in DOMAINS}
    out: dict[str, np.ndarray] = {}
    with np.errstate(divide="ignore", invalid="ignore"):
        for domain in DOMAINS:
            fit = fits[domain]
            for a, b in PAIRS:
                out[f"pc_a2_ratio_{domain}_w{a}_w{b}"] = np.where(
                    fit[b]["a2"] == 0.0, np.nan, fit[a]["a2"] / fit[b]["a2"]
                )
            for a, b in PAIRS:
                out[f"pc_a1_diff_{domain}_w{a}_w{b}"] = fit[a]["a1"] - fit[b]["a1"]
            for a, b in PAIRS:
                out[f"pc_curv_agree_{domain}_w{a}_w{b}"] = (
                    np.sign(fit[a]["a2"]) * np.sign(fit[b]["a2"]) + 0.0
                )
            for a, b in PAIRS:
                out[f"pc_r2_diff_{domain}_w{a}_w{b}"] = fit[a]["r2"] - fit[b]["r2"]
    rate, bqx_fit = fits["rate"], fits["bqx"]
    for n in BQX_WINDOWS:
        out[f"pc_slope_agree_w{n}"] = np.sign(rate[n]["a1"]) * np.sign(bqx_fit[n]["a1"]) + 0.0
    for n in BQX_WINDOWS:
        out[f"pc_curv_agree_w{n}"] = np.sign(rate[n]["a2"]) * np.sign(bqx_fit[n]["a2"]) + 0.0
    for n in BQX_WINDOWS:
        out[f"pc_r2_diff_w{n}"] = rate[n]["r2"] - bqx_fit[n]["r2"]
    return out


def compute(model: str, bars: Bars, params: dict) -> dict[str, np.ndarray]:
    """Every column of `model` (regression_rate, regression_bqx, parabolic_comparison)."""
    if model == "regression_rate":
        return _regression("rate", bars, params)
    if model == "regression_bqx":
        return _regression("bqx", bars, params)
    if model == "parabolic_comparison":
        return _comparison(bars, params)
    raise InputError(f"no bar family model named '{model}'")
