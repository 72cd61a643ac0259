"""udf.garch11_fit, udf.garch11_variance and python_udfs/tf_garch.py against arch 8
(FEATURE_DEFINITIONS C5): arch_model(y) with its defaults, fit(disp='off') and fix(params).

Variance and log-likelihood for given parameters equal arch's to 1e-10 (relative), in Python
and through SQL. The fit equals arch's to 1e-9 in Python: the same SLSQP on the same objective
(in practice they are bit-equal). Through SQL the fit runs on the database server's scipy
(1.10 on bookworm, whose SLSQP is the old Fortran code; the tests' scipy has the C rewrite):
the optimiser takes another path and stops elsewhere within its tolerance (|change in -loglik|
< 1e-6 between iterations). Where the likelihood has a clear maximum (a series with GARCH
dynamics at arch's scale) that costs little: loglik within 1e-7 relative and parameters within
2e-3; on white noise, beta is not identified (alpha is near 0) and either scipy can stop
early, so there the SQL fit is only checked to be a consistent point (its loglik is arch's
log-likelihood at its parameters) and no worse than the starting values."""

from __future__ import annotations

import json
import math
import warnings
from functools import cache

import numpy as np
import psycopg
import pytest
import tf_garch
from arch import arch_model
from arch.utility.exceptions import ConvergenceWarning, DataScaleWarning
from tf_common import InputError

from tests.kernels.conftest import assert_sql_error

TOLERANCE = 1e-10  # variance relative, log-likelihood relative (absolute below 1)
FIT_PYTHON = 1e-9  # same scipy as arch: same optimiser path
SQL_FIT_LOGLIK = 1e-7  # relative, identified cases
SQL_FIT_PARAMS = 2e-3  # relative to max(1, |p|) (omega relative to itself), identified cases
PARAMS = ("mu", "omega", "alpha", "beta")


def simulate(n: int, mu: float, omega: float, alpha: float, beta: float, seed: int) -> np.ndarray:
    """A GARCH(1,1) path with normal shocks, after 500 steps of burn-in."""
    rng = np.random.default_rng(seed)
    z = rng.normal(size=n + 500)
    eps = np.empty(n + 500)
    s2 = omega / (1.0 - alpha - beta)
    e2 = s2
    for t in range(n + 500):
        s2 = omega + alpha * e2 + beta * s2
        eps[t] = math.sqrt(s2) * z[t]
        e2 = eps[t] ** 2
    return mu + eps[500:]


KNOWN = {"mu": 0.05, "omega": 0.1, "alpha": 0.1, "beta": 0.85}


@cache
def series() -> dict[str, tuple[np.ndarray, bool]]:
    """name -> (y, identified): identified series have GARCH dynamics at arch's scale, so
    their likelihood has a clear maximum that any SLSQP finds to its tolerance."""
    rng = np.random.default_rng(20261205)
    prices = 100.0 * np.exp(np.cumsum(simulate(1001, 0.0, 2e-6, 0.08, 0.9, 1)))
    return {
        "ten": (rng.normal(size=10), False),
        "thirty": (rng.normal(size=30), False),
        "constant_ish": (3.5 + 1e-3 * rng.normal(size=64), False),
        "trend": (0.01 * np.arange(100) + 0.3 * rng.normal(size=100), False),
        "noise": (rng.normal(size=257), False),
        "long_noise": (rng.normal(size=4096), False),
        "garch_known": (simulate(4096, **KNOWN, seed=2), True),
        "garch_short": (simulate(256, 0.0, 0.2, 0.15, 0.8, seed=3), True),
        "heavy_tails": (1.5 * rng.standard_t(3, size=1000), False),
        "burst": (
            np.concatenate(
                [0.5 * rng.normal(size=300), 4.0 * rng.normal(size=30), 0.5 * rng.normal(size=300)]
            ),
            True,
        ),
        "percent_returns": (100.0 * np.diff(np.log(prices)), True),
        "tick_scale": (100.0 * 1e-4 * rng.normal(size=500), False),
        "large_scale": (300.0 * rng.standard_t(5, size=600), False),
        # so small (var 1e-8) that SLSQP gives up at the start: arch warns ConvergenceWarning
        "tiny_scale": (1e-4 * rng.normal(size=500), False),
    }


def reference(call):  # type: ignore[no-untyped-def]
    """Runs an arch call, keeping its warnings from pytest's warnings-as-errors: arch warns
    DataScaleWarning when var(y) is outside [0.1, 1e4) and ConvergenceWarning when SLSQP's
    status is not 0, and some cases here are chosen to do exactly that. Any other warning
    fails the test."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = call()
    others = [
        w for w in caught if not issubclass(w.category, DataScaleWarning | ConvergenceWarning)
    ]
    assert not others, [str(w.message) for w in others]
    return result


@cache
def arch_fit(case: str):  # type: ignore[no-untyped-def]
    y = series()[case][0]
    return reference(lambda: arch_model(y).fit(disp="off"))


@cache
def arch_fixed(case: str, params: tuple[float, ...]):  # type: ignore[no-untyped-def]
    y = series()[case][0]
    return reference(lambda: arch_model(y).fix(list(params)))


def parameter_sets(case: str) -> dict[str, tuple[float, float, float, float]]:
    """Parameters the variance is checked at: arch's fit, a typical point, alpha + beta > 1,
    and omega so small or so large that the lower or upper variance bound binds throughout."""
    y = series()[case][0]
    fitted = tuple(float(v) for v in arch_fit(case).params)
    var = float(np.var(y))
    mean = float(np.mean(y))
    return {
        "fitted": fitted,  # type: ignore[dict-item]
        "typical": (mean, 0.1 * var, 0.1, 0.8),
        "explosive": (mean + 0.1 * math.sqrt(var), 0.05 * var, 0.3, 0.8),
        "lower_bound": (mean, 1e-12 * var, 0.0, 0.0),
        "upper_bound": (mean, 1e12 * var, 0.0, 0.5),
    }


VARIANCE_CASES = [
    (case, name)
    for case in series()
    for name in ("fitted", "typical", "explosive", "lower_bound", "upper_bound")
]


def as_dict(params: tuple[float, ...]) -> dict[str, float]:
    return dict(zip(PARAMS, params, strict=True))


def assert_relative(got: object, want: object, tolerance: float) -> None:
    a = np.asarray(got, dtype=float)
    b = np.asarray(want, dtype=float)
    assert a.shape == b.shape
    assert np.all(np.isfinite(a))
    np.testing.assert_array_less(np.abs(a - b), tolerance * np.abs(b) + 1e-300)


def assert_loglik(got: float, want: float, tolerance: float) -> None:
    assert abs(got - want) <= tolerance * max(1.0, abs(want)), (got, want)


def check_variance(case: str, name: str, variance: object, loglik: float | None) -> None:
    params = parameter_sets(case)[name]
    fixed = arch_fixed(case, params)
    assert_relative(variance, np.asarray(fixed.conditional_volatility) ** 2, TOLERANCE)
    if loglik is not None:
        assert_loglik(loglik, fixed.loglikelihood, TOLERANCE)


@pytest.mark.parametrize(("case", "name"), VARIANCE_CASES)
def test_python_variance_and_loglik_equal_arch(case: str, name: str) -> None:
    y = series()[case][0]
    params = as_dict(parameter_sets(case)[name])
    variance = tf_garch.garch11_variance(y.tolist(), params)
    check_variance(case, name, variance, tf_garch.garch11_loglik(y.tolist(), json.dumps(params)))


@pytest.mark.parametrize(("case", "name"), VARIANCE_CASES)
def test_sql_variance_and_loglik_equal_arch(conn: psycopg.Connection, case: str, name: str) -> None:
    y = series()[case][0]
    params = as_dict(parameter_sets(case)[name])
    row = conn.execute(
        "select udf.garch11_variance(%(y)s::float8[], %(p)s::jsonb),"
        " udf.garch11_loglik(%(y)s::float8[], %(p)s::jsonb)",
        {"y": y.tolist(), "p": json.dumps(params)},
    ).fetchone()
    assert row is not None
    check_variance(case, name, row[0], row[1])


@pytest.mark.parametrize("case", list(series()))
def test_python_fit_equals_arch(case: str) -> None:
    y = series()[case][0]
    got = tf_garch.garch11_fit(y.tolist())
    ref = arch_fit(case)
    for key, want in zip(PARAMS, ref.params, strict=True):
        assert abs(got[key] - want) <= FIT_PYTHON * max(1e-8, abs(want)), (key, got[key], want)
    assert_loglik(got["loglik"], ref.loglikelihood, FIT_PYTHON)
    assert got["converged"] is (ref.optimization_result.status == 0)
    assert got["n_obs"] == len(y)


@pytest.mark.parametrize("case", list(series()))
def test_sql_fit_is_close_to_arch(conn: psycopg.Connection, case: str) -> None:
    y, identified = series()[case]
    row = conn.execute("select udf.garch11_fit(%s::float8[])", (y.tolist(),)).fetchone()
    assert row is not None
    got = row[0]
    assert set(got) == {*PARAMS, "loglik", "converged", "n_obs"}
    assert got["n_obs"] == len(y)
    assert isinstance(got["converged"], bool)
    params = tuple(got[key] for key in PARAMS)
    # a consistent point: the loglik it reports is arch's log-likelihood at its parameters
    assert_loglik(got["loglik"], arch_fixed(case, params).loglikelihood, TOLERANCE)
    ref = arch_fit(case)
    if identified:
        assert_loglik(got["loglik"], ref.loglikelihood, SQL_FIT_LOGLIK)
        for key, want in zip(PARAMS, ref.params, strict=True):
            scale = abs(want) if key == "omega" else max(1.0, abs(want))
            assert abs(got[key] - want) <= SQL_FIT_PARAMS * scale, (key, got[key], want)
    else:
        start = arch_fixed(case, tuple(tf_garch.Setup(y).starting_values())).loglikelihood
        assert got["loglik"] >= start - 1e-12 * max(1.0, abs(start))


def test_fit_recovers_known_parameters() -> None:
    got = tf_garch.garch11_fit(series()["garch_known"][0])
    assert got["converged"]
    # 4096 observations: standard errors about 0.02 for alpha and beta, 0.02 for omega
    for key, want in KNOWN.items():
        assert abs(got[key] - want) <= 0.06, (key, got[key], want)


def test_fit_result_passes_back_as_params(conn: psycopg.Connection) -> None:
    y = series()["burst"][0]
    row = conn.execute(
        "select udf.garch11_variance(r, udf.garch11_fit(r)) from (select %s::float8[] as r) s",
        (y.tolist(),),
    ).fetchone()
    assert row is not None
    fit = tf_garch.garch11_fit(y)
    assert_relative(row[0], tf_garch.garch11_variance(y, fit), 1e-6)


def test_variance_bounds_bind_and_stay_finite() -> None:
    """The lower bound (omega tiny) and the upper bound with its log damping (omega huge)
    both bind on every row in these cases: the plain loop runs after the restarts."""
    y = series()["burst"][0]
    setup = tf_garch.Setup(y)
    low = tf_garch.garch11_variance(y, as_dict(parameter_sets("burst")["lower_bound"]))
    np.testing.assert_array_equal(low, setup.lower)
    high = tf_garch.garch11_variance(y, as_dict(parameter_sets("burst")["upper_bound"]))
    assert np.all(high > setup.upper)
    assert np.all(high < setup.upper + 30.0)


def test_minimum_length_is_ten() -> None:
    y = series()["ten"][0]
    assert tf_garch.garch11_fit(y)["n_obs"] == 10
    with pytest.raises(InputError, match="too short: 9 observations"):
        tf_garch.garch11_fit(y[:9])


def test_null_input_gives_null(conn: psycopg.Connection) -> None:
    row = conn.execute(
        "select udf.garch11_fit(null), udf.garch11_variance(null, '{}'),"
        " udf.garch11_variance('{1,2,3,4,5,6,7,8,9,10}', null)"
    ).fetchone()
    assert row == (None, None, None)


TEN = "'{0.1,-0.2,0.3,0.5,-1.1,0.7,0.2,-0.4,0.9,-0.3}'::float8[]"
GOOD = {"mu": 0.0, "omega": 0.1, "alpha": 0.1, "beta": 0.8}


def params_with(**change: object) -> str:
    return "'" + json.dumps({**GOOD, **change}) + "'::jsonb"


@pytest.mark.parametrize(
    ("call", "message"),
    [
        ("udf.garch11_fit('{}'::float8[])", "udf.garch11_fit: r is empty"),
        (
            "udf.garch11_fit('{1,2,NULL,4,5,6,7,8,9,10}'::float8[])",
            "udf.garch11_fit: r has a NULL element at position 3",
        ),
        (
            "udf.garch11_fit('{1,2,3,4,5,6,7,8,9}'::float8[])",
            "udf.garch11_fit: too short: 9 observations, GARCH(1,1) needs at least 10",
        ),
        (
            "udf.garch11_fit('{1,2,NaN,4,5,6,7,8,9,10}'::float8[])",
            "udf.garch11_fit: r has a NaN at position 3",
        ),
        (
            "udf.garch11_fit('{1,2,Infinity,4,5,6,7,8,9,10}'::float8[])",
            "udf.garch11_fit: r has an infinite value at position 3",
        ),
        (
            "udf.garch11_fit(array_fill(2.5::float8, array[50]))",
            "udf.garch11_fit: r is constant: a GARCH model needs a series that varies",
        ),
        (
            "udf.garch11_fit('{{1,2},{3,4}}'::float8[])",
            "udf.garch11_fit: r must be one-dimensional",
        ),
        (
            "udf.garch11_fit('{1e200,2,3,4,5,6,7,8,9,10}'::float8[])",
            "udf.garch11_fit: r is too large in magnitude: its squares overflow",
        ),
        (
            f"udf.garch11_variance('{{}}'::float8[], {params_with()})",
            "udf.garch11_variance: r is empty",
        ),
        (
            f"udf.garch11_variance('{{1,2,3}}'::float8[], {params_with()})",
            "udf.garch11_variance: too short: 3 observations, GARCH(1,1) needs at least 10",
        ),
        (
            f'udf.garch11_variance({TEN}, \'{{"mu": 0, "alpha": 0.1, "beta": 0.8}}\')',
            "udf.garch11_variance: params has no omega",
        ),
        (
            f"udf.garch11_variance({TEN}, {params_with(omega=None)})",
            "udf.garch11_variance: params has no omega",
        ),
        (
            f"udf.garch11_variance({TEN}, {params_with(omega=0)})",
            "udf.garch11_variance: params.omega must be > 0, got 0.0",
        ),
        (
            f"udf.garch11_variance({TEN}, {params_with(omega=-1.5)})",
            "udf.garch11_variance: params.omega must be > 0, got -1.5",
        ),
        (
            f"udf.garch11_variance({TEN}, {params_with(alpha=-0.1)})",
            "udf.garch11_variance: params.alpha must be >= 0, got -0.1",
        ),
        (
            f"udf.garch11_variance({TEN}, {params_with(beta=-0.2)})",
            "udf.garch11_variance: params.beta must be >= 0, got -0.2",
        ),
        (
            f"udf.garch11_variance({TEN}, {params_with(mu='a')})",
            "udf.garch11_variance: params.mu must be a finite number, got 'a'",
        ),
        (
            f"udf.garch11_variance({TEN}, {params_with(beta=True)})",
            "udf.garch11_variance: params.beta must be a finite number, got True",
        ),
        (
            f"udf.garch11_variance({TEN}, '[0, 0.1, 0.1, 0.8]'::jsonb)",
            "udf.garch11_variance: params must be a JSON object with mu, omega, alpha and beta",
        ),
    ],
)
def test_sql_errors_are_one_clear_line(conn: psycopg.Connection, call: str, message: str) -> None:
    assert_sql_error(conn, call, message)


def test_sql_variance_allows_alpha_plus_beta_of_one_or_more(conn: psycopg.Connection) -> None:
    """alpha + beta >= 1 is accepted: SLSQP meets the fit's alpha + beta <= 1 only to
    rounding (arch returns alpha + beta = 1 on short series), and the bounded recursion
    stays finite."""
    y = np.array([0.1, -0.2, 0.3, 0.5, -1.1, 0.7, 0.2, -0.4, 0.9, -0.3])
    for alpha, beta in ((0.0, 1.0), (0.3, 0.9)):
        row = conn.execute(
            f"select udf.garch11_variance({TEN}, {params_with(alpha=alpha, beta=beta)})"
        ).fetchone()
        assert row is not None
        params = [0.0, 0.1, alpha, beta]
        fixed = reference(lambda p=params: arch_model(y).fix(p))
        assert_relative(row[0], np.asarray(fixed.conditional_volatility) ** 2, TOLERANCE)


def test_constraint_jacobians_are_scipys_finite_differences_bit_for_bit() -> None:
    """garch11_fit gives SLSQP its linear constraints' Jacobians; they must be exactly what
    SLSQP would estimate itself (approx_derivative, '2-point', abs_step sqrt(eps), within the
    bounds, at x clipped to them), or the fit's path, and so its last bits, would leave arch's.
    Points inside, on and just outside the bounds, and at zero."""
    from scipy.optimize._constraints import old_bound_to_new
    from scipy.optimize._numdiff import approx_derivative

    rng = np.random.default_rng(7)
    v = 2.5e-8
    bounds = [(-np.inf, np.inf), (1e-8 * v, 10.0 * v), (0.0, 1.0), (0.0, 1.0)]
    lower, upper = old_bound_to_new(bounds)
    a = np.array([[0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1], [0, 0, -1, -1]], dtype=float)
    b = np.array([0.0, 0.0, 0.0, -1.0])
    constraints = [tf_garch._constraint(a[i], float(b[i]), lower, upper) for i in range(4)]
    for trial in range(3000):
        x = np.array(
            [
                rng.normal() * 1e-4,
                rng.uniform(-0.1, 1.1) * 10 * v,
                rng.uniform(-0.01, 1.01),
                rng.uniform(-0.01, 1.01),
            ]
        )
        edge = trial % 6
        if edge < 5:
            x[[2, 3, 1, 2, 0][edge]] = [0.0, 1.0, 1e-8 * v, 1.0 - 1e-9, 0.0][edge]
        clipped = np.clip(x, lower, upper)
        for constraint in constraints:
            want = approx_derivative(
                constraint["fun"],
                clipped,
                method="2-point",
                abs_step=np.sqrt(np.finfo(float).eps),
                bounds=(lower, upper),
            )
            got = constraint["jac"](x)
            assert np.array_equal(np.ravel(want), np.ravel(got)), (x, want, got)
