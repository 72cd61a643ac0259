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


# --- ssa_leading_shares: the k leading shares without an SVD (K14 spectral_bars) ----------------
#
# Checked against np.linalg.svd (gesdd) of the trajectory matrix built by explicit loops, and
# against the eigenvalues of X X' (oracle_shares above), at TOLERANCE relative (absolute below
# 1): the Lanczos iteration stops at a residual bound of 1e-10 relative, and the shares come out
# within ~1e-14 of the SVD's. Near-0 shares (windows of rank below k) are compared in absolute
# terms, at LEADING_ABSOLUTE: their eigenvalue is rounding noise in both.

LEADING_ABSOLUTE = 1e-13


def svd_shares(x: np.ndarray, window: int) -> np.ndarray:
    k = len(x) - window + 1
    traj = np.empty((window, k))
    for i in range(window):
        traj[i] = x[i : i + k]
    s = np.linalg.svd(traj, compute_uv=False)
    return s * s / np.sum(s * s)


def assert_leading(got: np.ndarray, want: np.ndarray) -> None:
    """Within TOLERANCE of want (relative), or LEADING_ABSOLUTE for a share near 0."""
    assert got.shape == want.shape
    error = np.abs(got - want)
    assert np.all(error <= np.maximum(TOLERANCE * np.abs(want), LEADING_ABSOLUTE)), (got, want)


def returns_windows(n: int, count: int, seed: int) -> np.ndarray:
    """Windows of n one-minute log returns of a tick-rounded t(4) random walk, every 60 bars, as
    spectral_bars reads them: near white noise, so the leading eigenvalues lie close together."""
    rng = np.random.default_rng(seed)
    close = np.round((1.08 + np.cumsum(rng.standard_t(4, n + 60 * count) * 1.3e-4)) / 1e-5) * 1e-5
    r = np.log1p(np.diff(close) / close[:-1])
    return np.stack([r[60 * i : 60 * i + n] for i in range(count)])


def structured(n: int) -> dict[str, np.ndarray]:
    """Windows whose X X' has repeated or near-repeated leading eigenvalues, or rank below 3."""
    rng = np.random.default_rng(n)
    t = np.arange(n)
    out = {}
    for m in (1, 2, 3, 5, 12):
        x = np.zeros(n)
        x[rng.choice(n, m, replace=False)] = 1e-4  # m equal returns among zeros
        out[f"sparse{m}"] = x
    x = np.zeros(n)
    x[[n // 10, n // 10 + n // 2]] = 1e-4  # two returns n/2 apart: a full-rank diagonal X X'
    out["pair_half_apart"] = x
    out["comb7"] = np.where(t % 7 == 0, 1e-4, 0.0)
    out["constant"] = np.full(n, 2e-5)
    out["alternating"] = np.where(t % 2 == 0, 1e-4, -1e-4)
    out["sine_whole_periods"] = 1e-4 * np.sin(2 * np.pi * t / 16)
    out["two_close_tones"] = 1e-4 * (np.sin(0.2 * np.pi * t) + np.sin(0.2006 * np.pi * t))
    out["ticks"] = rng.choice([-1.0, 0.0, 0.0, 0.0, 1.0], n) * 1e-5
    out["spike"] = rng.normal(size=n) * 1e-7
    out["spike"][n // 2] = 1e-3
    out["half_flat"] = np.concatenate([np.zeros(n // 2), rng.normal(size=n - n // 2) * 1e-4])
    return out


@pytest.mark.parametrize(("case", "window"), CASES)
def test_leading_shares_are_the_svd_shares(case: str, window: int) -> None:
    x = signals()[case]
    k = min(3, window)
    got = tf_ssa.ssa_leading_shares(x.tolist(), window, k)
    assert_leading(got, oracle_shares(x, window)[:k])
    assert_leading(got, tf_ssa.ssa_shares(x, window)[:k])


@pytest.mark.parametrize("n", [256, 1024])
def test_leading_shares_on_return_windows(n: int) -> None:
    windows = returns_windows(n, 16, seed=n)
    got = tf_ssa.ssa_leading_shares_rows(windows, n // 2, 3)
    for row, x in zip(got, windows, strict=True):
        assert_leading(row, svd_shares(x, n // 2)[:3])


@pytest.mark.parametrize("n", [256, 1024])
def test_leading_shares_of_repeated_eigenvalues(n: int) -> None:
    cases = structured(n)
    got = tf_ssa.ssa_leading_shares_rows(np.stack(list(cases.values())), n // 2, 3)
    for row, x in zip(got, cases.values(), strict=True):
        assert_leading(row, svd_shares(x, n // 2)[:3])


def test_leading_shares_with_many_components() -> None:
    x = returns_windows(300, 1, seed=3)[0]
    got = tf_ssa.ssa_leading_shares(x, 150, 12)
    assert_leading(got, svd_shares(x, 150)[:12])
    assert np.all(np.diff(got) <= 0)


def test_leading_shares_dense_path() -> None:
    """Windows up to DENSE_WINDOW take the eigenvalues of X X' directly."""
    windows = returns_windows(96, 5, seed=9)
    assert 96 // 2 <= tf_ssa.DENSE_WINDOW
    got = tf_ssa.ssa_leading_shares_rows(windows, 48, 3)
    for row, x in zip(got, windows, strict=True):
        assert_leading(row, svd_shares(x, 48)[:3])


def test_leading_rows_do_not_depend_on_each_other() -> None:
    windows = returns_windows(256, 9, seed=4)
    together = tf_ssa.ssa_leading_shares_rows(windows, 128, 3)
    alone = np.stack([tf_ssa.ssa_leading_shares(x, 128, 3) for x in windows])
    assert_close(together, alone, 1e-13)
    reordered = tf_ssa.ssa_leading_shares_rows(windows[::-1], 128, 3)[::-1]
    assert_close(reordered, together, 1e-13)


def test_trajectory_energy_is_the_sum_of_squares() -> None:
    windows = returns_windows(101, 3, seed=1)
    for window in (2, 17, 50):
        k = 101 - window + 1
        for x, energy in zip(windows, tf_ssa.trajectory_energy(windows, window), strict=True):
            traj = np.array([x[i : i + k] for i in range(window)])
            assert energy == pytest.approx(np.sum(traj * traj), rel=1e-13)


def test_leading_shares_of_zero_are_nan() -> None:
    rows = np.vstack([np.zeros(64), returns_windows(64, 1, seed=2)])
    got = tf_ssa.ssa_leading_shares_rows(rows, 32, 3)
    assert np.all(np.isnan(got[0]))
    assert np.all(np.isfinite(got[1]))
    assert np.all(np.isnan(tf_ssa.ssa_leading_shares(np.zeros(1024))))


def test_leading_shares_go_beyond_the_svd_limit() -> None:
    x = returns_windows(1024, 1, seed=6)[0]
    with pytest.raises(InputError):
        tf_ssa.ssa_shares(x, 512)  # an SVD of 512 x 513 is over MAX_SVD_WORK
    assert_leading(tf_ssa.ssa_leading_shares(x), svd_shares(x, 512)[:3])


@pytest.mark.parametrize(
    ("x", "window", "k", "message"),
    [
        ([1.0, 2.0, 3.0], 2, 1, "x is too short: 3 values, need at least 4"),
        (THIRTEEN, 1, 1, "window must be between 2 and 6 (half of the 13 values), got 1"),
        (THIRTEEN, 7, 1, "window must be between 2 and 6 (half of the 13 values), got 7"),
        (THIRTEEN, 2.5, 1, "window must be an integer, got 2.5"),
        (THIRTEEN, 6, 0, "k must be between 1 and 6 (the window), got 0"),
        (THIRTEEN, 6, 7, "k must be between 1 and 6 (the window), got 7"),
        (signals()["with_nan"], 10, 1, "x has a NaN at position 18"),
        (np.zeros(8193), None, 3, "x is too long: 8193 values, the maximum is 8192"),
    ],
)
def test_leading_bad_input_is_one_clear_line(
    x: object, window: object, k: object, message: str
) -> None:
    with pytest.raises(InputError) as caught:
        tf_ssa.ssa_leading_shares(x, window, k)  # type: ignore[arg-type]
    assert str(caught.value) == message


def test_leading_rows_bad_input_is_one_clear_line() -> None:
    with pytest.raises(InputError, match=r"^rows must be a 2-D array, got 1 dimensions$"):
        tf_ssa.ssa_leading_shares_rows(np.zeros(8), 4, 1)
    rows = np.zeros((2, 8))
    rows[1, 3] = np.inf
    with pytest.raises(InputError, match=r"^rows has an infinite value at \[2\]\[4\]$"):
        tf_ssa.ssa_leading_shares_rows(rows, 4, 1)
