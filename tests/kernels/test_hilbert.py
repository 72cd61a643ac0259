"""udf.analytic_signal and python_udfs/tf_hilbert.py against scipy.signal.hilbert (G2)."""

from __future__ import annotations

import numpy as np
import psycopg
import pytest
import scipy.signal
import tf_hilbert

from tests.kernels.cases import signals
from tests.kernels.conftest import assert_close, assert_sql_error

TOLERANCE = 1e-12  # relative, absolute below 1 (issue 4)
# NaN is an error now (issue 12): scipy spreads it over every output
CASES = [name for name in signals() if name != "with_nan"]


def reference(x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The outputs G2 defines, from scipy's analytic signal."""
    z = scipy.signal.hilbert(x)
    phase = np.unwrap(np.angle(z))
    return np.abs(z), phase, np.concatenate([[np.nan], np.diff(phase) / (2 * np.pi)])


@pytest.mark.parametrize("n", [1, 2, 3, 8, 9])
def test_analytic_signal_is_scipys(n: int) -> None:
    x = np.random.default_rng(n).normal(size=n)
    z = tf_hilbert.analytic(x.tolist())
    assert_close(z.real, scipy.signal.hilbert(x).real, TOLERANCE)
    assert_close(z.imag, scipy.signal.hilbert(x).imag, TOLERANCE)
    assert_close(z.real, x, TOLERANCE)  # Re z = x


@pytest.mark.parametrize("case", CASES)
def test_python_equals_scipy(case: str) -> None:
    x = signals()[case]
    for got, want in zip(tf_hilbert.analytic_signal(x.tolist()), reference(x), strict=True):
        assert_close(got, want, TOLERANCE)


@pytest.mark.parametrize("case", CASES)
def test_sql_equals_scipy(conn: psycopg.Connection, case: str) -> None:
    x = signals()[case]
    row = conn.execute(
        "select amplitude, phase, inst_freq from udf.analytic_signal(%s::float8[])",
        ([float(v) for v in x],),
    ).fetchone()
    assert row is not None
    for got, want in zip(row, reference(x), strict=True):
        assert_close(np.array(got, dtype=float), want, TOLERANCE)


def test_sql_null_in_null_out(conn: psycopg.Connection) -> None:
    assert conn.execute("select count(*) from udf.analytic_signal(null)").fetchone() == (0,)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        ("udf.analytic_signal('{}'::float8[])", "udf.analytic_signal: x is empty"),
        (
            "udf.analytic_signal('{1,NULL}'::float8[])",
            "udf.analytic_signal: x has a NULL element at position 2",
        ),
        (
            "udf.analytic_signal('{{1,2},{3,4}}'::float8[])",
            "udf.analytic_signal: x must be one-dimensional",
        ),
        (
            "udf.analytic_signal('{1,2,NaN,4}'::float8[])",
            "udf.analytic_signal: x has a NaN at position 3",
        ),
        (
            "udf.analytic_signal('{1,-Infinity}'::float8[])",
            "udf.analytic_signal: x has an infinite value at position 2",
        ),
    ],
)
def test_sql_errors_are_one_clear_line(conn: psycopg.Connection, call: str, message: str) -> None:
    assert_sql_error(conn, call, message)
