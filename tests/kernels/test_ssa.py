"""udf.ssa and python_udfs/tf_ssa.py against an oracle written here from G5 (no SSA library is
installed): the trajectory matrix filled by explicit loops, the SVD by scipy's gesvd (numpy's
svd is gesdd) with each pair (u_r, v_r) given a random sign, and the diagonal average by an
explicit double loop that counts each anti-diagonal's length instead of using c_k. The shares
are checked against the eigenvalues of X X' (np.linalg.eigh)."""

from __future__ import annotations

from functools import cache

import numpy as np
import psycopg
import pytest
import scipy.linalg
import tf_ssa
from tf_common import InputError

from tests.kernels.cases import signals
from tests.kernels.conftest import assert_close, assert_sql_error

TOLERANCE = 1e-10  # relative, absolute below 1

# windows tried per case: 2, something between, and the largest, floor(N/2); the long case
# stops at 64, since a 2048 x 2049 SVD (and its oracle) would take seconds
WINDOWS = {
    "seven": (2, 3),
    "thirteen": (2, 4, 6),
    "constant": (2, 32),
    "trend": (2, 10, 50),
    "noise": (2, 40, 128),
    "cycles": (2, 40, 300),
    "long": (2, 64),
}
THIRTEEN = signals()["thirteen"]
CASES = [(name, window) for name, windows in WINDOWS.items() for window in windows]


def compared(window: int) -> int:
    """How many leading components are compared with the oracle (its loops are slow)."""
    return min(window, 4)


@cache
def oracle(case: str, window: int, n_components: int) -> np.ndarray:
    x = signals()[case]
    n = len(x)
    k = n - window + 1
    traj = np.empty((window, k))
    for i in range(window):
        for j in range(k):
            traj[i, j] = x[i + j]
    u, s, vt = scipy.linalg.svd(traj, full_matrices=False, lapack_driver="gesvd")
    signs = np.random.default_rng(window).choice([-1.0, 1.0], size=len(s))
    out = np.empty((n_components, n))
    for r in range(n_components):
        elementary = s[r] * np.outer(signs[r] * u[:, r], signs[r] * vt[r])
        sums = np.zeros(n)
        counts = np.zeros(n)
        for i in range(window):
            for j in range(k):
                sums[i + j] += elementary[i, j]
                counts[i + j] += 1
        out[r] = sums / counts
    return out


def oracle_shares(x: np.ndarray, window: int) -> np.ndarray:
    traj = np.array([x[i : i + len(x) - window + 1] for i in range(window)])
    eigenvalues = np.linalg.eigh(traj @ traj.T)[0][::-1]
    return eigenvalues / np.trace(traj @ traj.T)


@pytest.mark.parametrize(("case", "window"), CASES)
def test_python_equals_oracle(case: str, window: int) -> None:
    x = signals()[case]
    got = tf_ssa.ssa(x.tolist(), window, compared(window))
    assert_close(got, oracle(case, window, compared(window)), TOLERANCE)


@pytest.mark.parametrize(("case", "window"), CASES)
def test_all_components_sum_to_x(case: str, window: int) -> None:
    x = signals()[case]
    components = tf_ssa.ssa(x, window, window)
    assert components.shape == (window, len(x))
    assert_close(components.sum(axis=0), x, TOLERANCE)


@pytest.mark.parametrize(("case", "window"), CASES)
def test_sign_and_scale_carry_through(case: str, window: int) -> None:
    x = signals()[case]
    count = compared(window)
    base = tf_ssa.ssa(x, window, count)
    assert_close(tf_ssa.ssa(-x, window, count), -base, TOLERANCE)
    assert_close(tf_ssa.ssa(2.5 * x, window, count), 2.5 * base, TOLERANCE)


@pytest.mark.parametrize(("case", "window"), CASES)
def test_shares_are_eigenvalue_shares(case: str, window: int) -> None:
    x = signals()[case]
    shares = tf_ssa.ssa_shares(x.tolist(), window)
    assert_close(shares, oracle_shares(x, window), TOLERANCE)
    assert shares.sum() == pytest.approx(1.0, abs=1e-12)
    assert np.all(np.diff(shares) <= 0)


def test_default_window_is_half_the_length() -> None:
    x = signals()["thirteen"]
    assert_close(tf_ssa.ssa(x, None, 3), tf_ssa.ssa(x, 6, 3), 0.0)
    assert len(tf_ssa.ssa_shares(x)) == 6


def test_a_sine_is_one_pair_of_components() -> None:
    # L = 40 and K = 160 are whole periods, so the level and the sine separate exactly
    t = np.arange(199)
    x = 3.0 + np.sin(2 * np.pi * t / 20)
    components = tf_ssa.ssa(x, 40, 3)
    shares = tf_ssa.ssa_shares(x, 40)
    # the level, then the sine as a pair of equal shares; the rest is rounding
    assert_close(components[0], np.full(199, 3.0), 1e-10)
    assert_close(components[1] + components[2], x - 3.0, 1e-10)
    assert shares[1] == pytest.approx(shares[2], rel=1e-10)
    assert shares[3:].sum() < 1e-25


def test_zero_input_has_nan_shares() -> None:
    assert np.all(np.isnan(tf_ssa.ssa_shares(np.zeros(8), 4)))
    assert_close(tf_ssa.ssa(np.zeros(8), 4, 4), np.zeros((4, 8)), 0.0)


@pytest.mark.parametrize(
    ("x", "window", "n_components", "message"),
    [
        ([1.0, 2.0, 3.0], 2, 1, "x is too short: 3 values, need at least 4"),
        (THIRTEEN, 1, 1, "window must be between 2 and 6 (half of the 13 values), got 1"),
        (THIRTEEN, 7, 1, "window must be between 2 and 6 (half of the 13 values), got 7"),
        (THIRTEEN, 6, 0, "n_components must be between 1 and 6 (the window), got 0"),
        (THIRTEEN, 6, 7, "n_components must be between 1 and 6 (the window), got 7"),
        (THIRTEEN, 2.5, 1, "window must be an integer, got 2.5"),
        (signals()["with_nan"], 10, 1, "x has a NaN at position 18"),
        ([1.0, 2.0, -np.inf, 4.0], 2, 1, "x has an infinite value at position 3"),
        ([], 2, 1, "x is empty"),
    ],
)
def test_bad_input_is_one_clear_line(
    x: object, window: object, n_components: object, message: str
) -> None:
    with pytest.raises(InputError) as caught:
        tf_ssa.ssa(x, window, n_components)  # type: ignore[arg-type]
    assert str(caught.value) == message


@pytest.mark.parametrize(("case", "window"), CASES)
def test_sql_equals_oracle(conn: psycopg.Connection, case: str, window: int) -> None:
    x = signals()[case]
    row = conn.execute(
        "select udf.ssa(%s::float8[], %s, %s)", (x.tolist(), window, compared(window))
    ).fetchone()
    assert row is not None
    assert_close(np.array(row[0], dtype=float), oracle(case, window, compared(window)), TOLERANCE)


def test_sql_one_component_is_a_one_row_matrix(conn: psycopg.Connection) -> None:
    x = signals()["trend"]
    row = conn.execute("select udf.ssa(%s::float8[], 10, 1)", (x.tolist(),)).fetchone()
    assert row is not None
    assert_close(np.array(row[0], dtype=float), oracle("trend", 10, 1), TOLERANCE)


def test_sql_null_in_null_out(conn: psycopg.Connection) -> None:
    assert conn.execute("select udf.ssa(null, 2, 1)").fetchone() == (None,)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        ("udf.ssa('{}'::float8[], 2, 1)", "udf.ssa: x is empty"),
        (
            "udf.ssa('{1,2,3}'::float8[], 2, 1)",
            "udf.ssa: x is too short: 3 values, need at least 4",
        ),
        (
            "udf.ssa('{1,2,NULL,4}'::float8[], 2, 1)",
            "udf.ssa: x has a NULL element at position 3",
        ),
        (
            "udf.ssa('{1,NaN,3,4}'::float8[], 2, 1)",
            "udf.ssa: x has a NaN at position 2",
        ),
        (
            "udf.ssa('{Infinity,2,3,4}'::float8[], 2, 1)",
            "udf.ssa: x has an infinite value at position 1",
        ),
        (
            "udf.ssa('{{1,2},{3,4}}'::float8[], 2, 1)",
            "udf.ssa: x must be one-dimensional",
        ),
        (
            "udf.ssa('{1,2,3,4,5}'::float8[], 3, 1)",
            "udf.ssa: window must be between 2 and 2 (half of the 5 values), got 3",
        ),
        (
            "udf.ssa('{1,2,3,4,5,6}'::float8[], 3, 4)",
            "udf.ssa: n_components must be between 1 and 3 (the window), got 4",
        ),
    ],
)
def test_sql_errors_are_one_clear_line(conn: psycopg.Connection, call: str, message: str) -> None:
    assert_sql_error(conn, call, message)
