"""Oracle of the rolling quadratic regressions (FEATURE_DEFINITIONS K4: regression_rate,
regression_bqx) and of their comparison (K5: parabolic_comparison), written from section K and
the models' YAML, not from the kernel (python_udfs/tf_bar_regression.py).

Each window is fitted on its own: the values minus the window's mean, by numpy.linalg.lstsq
(SVD) on the design [(x/N)^2, x/N, 1] (x_j = j - (N-1); the columns are scaled so that the
problem is well conditioned, and the coefficients scaled back). SSR and SST are summed from the
fitted residuals and the centred values; the straight line is a second lstsq fit. The constants
[(X^T X)^-1]_{a2,a2} and x1^T (X^T X)^-1 x1 come from X^T X inverted in exact rationals.

K4's NULL rules mean exactly zero in exact arithmetic on the series' values. The oracle decides
them exactly: SST = 0 when every value of the window is equal; where a2, a1 or SSR is within
KNIFE (1e-6) of the size of its terms it recomputes the quantity in exact rationals
(fractions.Fraction of the float64 values): an exact zero is a zero (a2 and a1 are then 0, SSR
0), anything else is a knife edge, which the tests do not judge (K4). `evaluate` returns, with
the values, the size of the terms of each value (for compare.mismatches' term_scales: a sum
whose terms cancel is judged against them, T17) and the knife-edge rows of each column.
"""

from __future__ import annotations

from collections.abc import Callable
from fractions import Fraction
from functools import cache

import numpy as np
import pandas as pd

WINDOWS = (15, 30, 45, 60, 75)
PAIRS = ((15, 30), (30, 45), (45, 60), (60, 75))
DOMAINS = ("rate", "bqx")
METRICS = (
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
KNIFE = 1e-6
Z95 = 1.96


def regression_columns(domain: str) -> list[str]:
    return [f"reg_{m}_{domain}_w{n}" for m in METRICS for n in WINDOWS]


def comparison_columns() -> list[str]:
    columns = []
    for domain in DOMAINS:
        for stem in ("a2_ratio", "a1_diff", "curv_agree", "r2_diff"):
            columns += [f"pc_{stem}_{domain}_w{a}_w{b}" for a, b in PAIRS]
    for stem in ("slope_agree", "curv_agree", "r2_diff"):
        columns += [f"pc_{stem}_w{n}" for n in WINDOWS]
    return columns


COLUMNS = {
    "regression_rate": regression_columns("rate"),
    "regression_bqx": regression_columns("bqx"),
    "parabolic_comparison": comparison_columns(),
}


# --- exact constants of the design --------------------------------------------------------


def _solve_exact(gram: list[list[Fraction]]) -> list[list[Fraction]]:
    """The inverse of a 3x3 rational matrix by cofactors."""
    (a, b, c), (d, e, f), (g, h, i) = gram
    det = a * (e * i - f * h) - b * (d * i - f * g) + c * (d * h - e * g)
    cof = [
        [e * i - f * h, -(d * i - f * g), d * h - e * g],
        [-(b * i - c * h), a * i - c * g, -(a * h - b * g)],
        [b * f - c * e, -(a * f - c * d), a * e - b * d],
    ]
    return [[cof[k][r] / det for k in range(3)] for r in range(3)]


@cache
def _design(n: int) -> dict:
    x = [Fraction(j - (n - 1)) for j in range(n)]
    rows = [(v * v, v, Fraction(1)) for v in x]
    gram = [[sum(r[i] * r[k] for r in rows) for k in range(3)] for i in range(3)]
    inv = _solve_exact(gram)
    # rows: the weights of a2, a1, b
    hat = [[sum(inv[i][k] * r[k] for k in range(3)) for r in rows] for i in range(3)]
    mean_x = sum(x) / n
    sxx = sum((v - mean_x) ** 2 for v in x)
    line = [(v - mean_x) / sxx for v in x]
    xf = np.array([float(v) for v in x])
    return {
        "hat": hat,
        "line": line,
        "abs": {
            k: np.array([abs(float(w)) for w in hat[i]]) for i, k in enumerate(("a2", "a1", "b"))
        }
        | {"lin_slope": np.array([abs(float(w)) for w in line])},
        "g_a2": float(inv[0][0]),
        "h": float(sum(inv[i][k] for i in range(3) for k in range(3))),
        "quad": np.column_stack([(xf / n) ** 2, xf / n, np.ones(n)]),
        "lin": np.column_stack([xf / n, np.ones(n)]),
    }


def _exact_coefficients(window: np.ndarray, n: int) -> list[Fraction]:
    values = [Fraction(float(v)) for v in window]
    return [sum(w * v for w, v in zip(row, values, strict=True)) for row in _design(n)["hat"]]


def _exact_ssr(window: np.ndarray, n: int) -> Fraction:
    a2, a1, b = _exact_coefficients(window, n)
    total = Fraction(0)
    for j, v in enumerate(window):
        x = j - (n - 1)
        total += (Fraction(float(v)) - (a2 * x * x + a1 * x + b)) ** 2
    return total


# --- one series, one window -----------------------------------------------------------------

_CACHE: dict[tuple[int, bytes], dict[str, dict[str, np.ndarray]]] = {}


def fit_series(y: np.ndarray, n: int) -> dict[str, dict[str, np.ndarray]]:
    """K4 on trailing windows of n values of y: {'value': metric -> array, 'scale': metric ->
    size of its terms (0 where the value is not a cancelling sum), 'knife': metric -> bool}."""
    key = (n, np.ascontiguousarray(y, dtype=float).tobytes())
    if key in _CACHE:
        return _CACHE[key]
    length = len(y)
    value = {m: np.full(length, np.nan) for m in METRICS}
    scale = {m: np.zeros(length) for m in METRICS}
    knife = {m: np.zeros(length, dtype=bool) for m in METRICS}
    design = _design(n)
    for t in range(n - 1, length):
        w = np.asarray(y[t - n + 1 : t + 1], dtype=float)
        if not np.isfinite(w).all():
            continue
        if w.max() == w.min():  # SST = 0 exactly: a flat window
            flat = {"b": w[-1], "pred_1": w[-1]}
            for m in (
                "a2",
                "a1",
                "b",
                "rmse",
                "resid",
                "pred_1",
                "curvature",
                "lin_slope",
                "se_a2",
                "pi95",
            ):
                value[m][t] = flat.get(m, 0.0)
            continue
        mean = w.mean()
        d = w - mean
        dt = abs(d[-1])
        coef = np.linalg.lstsq(design["quad"], d, rcond=None)[0]
        a2, a1, c0 = coef[0] / n**2, coef[1] / n, coef[2]
        resid_vec = d - design["quad"] @ coef
        ssr = float(resid_vec @ resid_vec)
        sst = float(d @ d)
        line = np.linalg.lstsq(design["lin"], d, rcond=None)[0]
        slope = line[0] / n
        line_resid = d - design["lin"] @ line
        ssr_lin = float(line_resid @ line_resid)
        # the size of the terms of each linear filter: its weights times the centred values,
        # in either centring (on the mean, or on the last value as a kernel may do)
        s = {k: float(design["abs"][k] @ (np.abs(d) + dt)) for k in ("a2", "a1", "b", "lin_slope")}
        knife_a2 = knife_a1 = knife_ssr = False
        if abs(a2) <= KNIFE * s["a2"] or abs(a1) <= KNIFE * s["a1"]:
            exact = _exact_coefficients(w, n)
            if abs(a2) <= KNIFE * s["a2"]:
                a2, knife_a2 = (0.0, False) if exact[0] == 0 else (a2, True)
            if abs(a1) <= KNIFE * s["a1"]:
                a1, knife_a1 = (0.0, False) if exact[1] == 0 else (a1, True)
        if ssr <= KNIFE**2 * sst:
            if _exact_ssr(w, n) == 0:
                ssr = 0.0
            else:
                knife_ssr = True
        b = mean + c0
        r2 = 1.0 - ssr / sst
        lin_r2 = 1.0 - ssr_lin / sst
        rmse = np.sqrt(ssr / n)
        var = ssr / (n - 3)
        se_a2 = np.sqrt(var * design["g_a2"])
        resid = d[-1] - c0
        v = {
            "a2": a2,
            "a1": a1,
            "b": b,
            "r2": r2,
            "rmse": rmse,
            "resid": resid,
            "resid_z": resid / rmse if rmse != 0 else np.nan,
            "pred_1": mean + (c0 + a1 + a2),
            "curvature": 2 * a2,
            "vertex": -a1 / (2 * a2) if a2 != 0 else np.nan,
            "lin_slope": slope,
            "lin_r2": lin_r2,
            "quad_gain": r2 - lin_r2,
            "se_a2": se_a2,
            "t_a2": a2 / se_a2 if se_a2 != 0 else np.nan,
            "pi95": Z95 * np.sqrt(var * (1 + design["h"])),
        }
        sc = {
            "a2": s["a2"],
            "a1": s["a1"],
            "b": abs(mean) + dt + s["b"],
            "r2": 1.0,
            "resid": dt + s["b"],
            "pred_1": abs(mean) + dt + s["b"] + s["a1"] + s["a2"],
            "curvature": 2 * s["a2"],
            "lin_slope": s["lin_slope"],
            "lin_r2": 1.0,
            "quad_gain": 1.0,
        }
        if rmse != 0:
            sc["resid_z"] = sc["resid"] / rmse
        if a2 != 0:
            sc["vertex"] = s["a1"] / (2 * abs(a2)) + abs(a1) * s["a2"] / (2 * a2 * a2)
        if se_a2 != 0:
            sc["t_a2"] = s["a2"] / se_a2
        for m in METRICS:
            value[m][t] = v[m]
            scale[m][t] = sc.get(m, 0.0)
        if knife_a2:
            for m in ("a2", "curvature", "vertex", "t_a2"):
                knife[m][t] = True
        if knife_a1:
            for m in ("a1", "vertex"):
                knife[m][t] = True
        if knife_ssr:
            for m in ("rmse", "resid_z", "se_a2", "t_a2", "pi95"):
                knife[m][t] = True
    result = {"value": value, "scale": scale, "knife": knife}
    _CACHE[key] = result
    return result


# --- the models -----------------------------------------------------------------------------


def series(domain: str, bars: pd.DataFrame, n: int, first_close: float) -> np.ndarray:
    """K0: the rate index 100*C/C_first, or bqx_n = 100*(C_t - C_(t-n))/C_(t-n)."""
    close = bars["close"].astype(float)
    if domain == "rate":
        return (100.0 * close / first_close).to_numpy()
    before = close.shift(n)
    return (100.0 * (close - before) / before).to_numpy()


def _fits(domain: str, bars: pd.DataFrame, first_close: float) -> dict[int, dict]:
    return {n: fit_series(series(domain, bars, n, first_close), n) for n in WINDOWS}


def _frames(bars: pd.DataFrame, columns: list[str], value: dict, scale: dict, knife: dict):
    def frame(data: dict) -> pd.DataFrame:
        out = pd.DataFrame({c: data[c] for c in columns})
        out.insert(0, "ts", bars["ts"].to_numpy())
        out.insert(0, "symbol", bars["symbol"].to_numpy())
        return out

    return frame(value), frame(scale), frame(knife)


def _regression(domain: str, bars: pd.DataFrame, first_close: float):
    fits = _fits(domain, bars, first_close)
    value, scale, knife = {}, {}, {}
    for m in METRICS:
        for n in WINDOWS:
            name = f"reg_{m}_{domain}_w{n}"
            value[name] = fits[n]["value"][m]
            scale[name] = fits[n]["scale"][m]
            knife[name] = fits[n]["knife"][m]
    return _frames(bars, COLUMNS[f"regression_{domain}"], value, scale, knife)


def _sign(x: np.ndarray) -> np.ndarray:
    return np.where(np.isnan(x), np.nan, np.where(x > 0, 1.0, np.where(x < 0, -1.0, 0.0)))


def _ratio(fa: dict, fb: dict) -> tuple[np.ndarray, np.ndarray]:
    """a2_A / a2_B (NULL where a2_B is NULL or exactly 0) and the size of its terms."""
    a, b = fa["value"]["a2"], fb["value"]["a2"]
    sa, sb = fa["scale"]["a2"], fb["scale"]["a2"]
    with np.errstate(divide="ignore", invalid="ignore"):
        value = np.where(b == 0, np.nan, a / b)
        scale = np.where(b == 0, 0.0, sa / np.abs(b) + np.abs(a) * sb / (b * b))
    return value, np.nan_to_num(scale)


def _comparison(bars: pd.DataFrame, first_close: float):
    fits = {d: _fits(d, bars, first_close) for d in DOMAINS}
    value, scale, knife = {}, {}, {}
    for domain in DOMAINS:
        f = fits[domain]
        for a, b in PAIRS:
            fa, fb = f[a], f[b]
            either_a2 = fa["knife"]["a2"] | fb["knife"]["a2"]
            name = f"pc_a2_ratio_{domain}_w{a}_w{b}"
            value[name], scale[name] = _ratio(fa, fb)
            knife[name] = either_a2
            name = f"pc_a1_diff_{domain}_w{a}_w{b}"
            value[name] = fa["value"]["a1"] - fb["value"]["a1"]
            scale[name] = fa["scale"]["a1"] + fb["scale"]["a1"]
            knife[name] = fa["knife"]["a1"] | fb["knife"]["a1"]
            name = f"pc_curv_agree_{domain}_w{a}_w{b}"
            value[name] = _sign(fa["value"]["a2"]) * _sign(fb["value"]["a2"])
            scale[name] = np.zeros(len(bars))
            knife[name] = either_a2
            name = f"pc_r2_diff_{domain}_w{a}_w{b}"
            value[name] = fa["value"]["r2"] - fb["value"]["r2"]
            scale[name] = np.full(len(bars), 2.0)
            knife[name] = np.zeros(len(bars), dtype=bool)
    for n in WINDOWS:
        r, q = fits["rate"][n], fits["bqx"][n]
        value[f"pc_slope_agree_w{n}"] = _sign(r["value"]["a1"]) * _sign(q["value"]["a1"])
        scale[f"pc_slope_agree_w{n}"] = np.zeros(len(bars))
        knife[f"pc_slope_agree_w{n}"] = r["knife"]["a1"] | q["knife"]["a1"]
        value[f"pc_curv_agree_w{n}"] = _sign(r["value"]["a2"]) * _sign(q["value"]["a2"])
        scale[f"pc_curv_agree_w{n}"] = np.zeros(len(bars))
        knife[f"pc_curv_agree_w{n}"] = r["knife"]["a2"] | q["knife"]["a2"]
        value[f"pc_r2_diff_w{n}"] = r["value"]["r2"] - q["value"]["r2"]
        scale[f"pc_r2_diff_w{n}"] = np.full(len(bars), 2.0)
        knife[f"pc_r2_diff_w{n}"] = np.zeros(len(bars), dtype=bool)
    return _frames(bars, COLUMNS["parabolic_comparison"], value, scale, knife)


_EVALUATORS: dict[str, Callable] = {
    "regression_rate": lambda bars, first_close: _regression("rate", bars, first_close),
    "regression_bqx": lambda bars, first_close: _regression("bqx", bars, first_close),
    "parabolic_comparison": _comparison,
}


def evaluate(
    model: str, bars: pd.DataFrame, first_close: float
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """(values, term scales, knife-edge rows) of `model` on one symbol's bars sorted by ts;
    each frame has symbol, ts, then the model's columns."""
    bars = bars.reset_index(drop=True)
    return _EVALUATORS[model](bars, first_close)


ORACLES: dict[str, Callable[[pd.DataFrame, float], pd.DataFrame]] = {
    model: (lambda bars, first_close, model=model: evaluate(model, bars, first_close)[0])
    for model in COLUMNS
}
