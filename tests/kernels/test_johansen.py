"""udf.johansen and python_udfs/tf_johansen.py against statsmodels' coint_johansen (H2)."""

from __future__ import annotations

import numpy as np
import psycopg
import pytest
import tf_johansen
from statsmodels.tsa.vector_ar.vecm import coint_johansen

from tests.kernels.conftest import assert_close, assert_sql_error

TOLERANCE = 1e-8  # issue 4: eig, lr1 and lr2 equal statsmodels' to 1e-8


def panels() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(7)
    n = 400
    common = np.cumsum(rng.normal(size=n))
    return {
        "cointegrated_pair": np.column_stack([common + rng.normal(size=n), 0.5 * common]),
        "independent_walks": np.cumsum(rng.normal(size=(n, 2)), axis=0),
        "three_series": np.column_stack(
            [
                common + rng.normal(size=n),
                -common + rng.normal(size=n),
                np.cumsum(rng.normal(size=n)),
            ]
        ),
        "trending": np.column_stack(
            [0.05 * np.arange(n) + common, 0.02 * np.arange(n) + common + rng.normal(size=n)]
        ),
        "short": np.cumsum(rng.normal(size=(40, 2)), axis=0),
    }


CASES = [(name, d, k) for name in panels() for d in (-1, 0, 1) for k in (0, 1, 2, 3)]


def check(got: dict, y: np.ndarray, det_order: int, k: int) -> None:
    ref = coint_johansen(y, det_order, k)
    for key in ("eig", "lr1", "lr2"):
        assert_close(got[key], getattr(ref, key), TOLERANCE)
    # the normalisation evec' S11 evec = I and the sign convention make evec unique
    assert_close(got["evec"], ref.evec, 1e-6)
    evec = np.array(got["evec"])
    s11 = ref.rkt.T @ ref.rkt / len(ref.rkt)
    assert_close(evec.T @ s11 @ evec, np.eye(y.shape[1]), 1e-9)


@pytest.mark.parametrize(("case", "det_order", "k"), CASES)
def test_python_equals_statsmodels(case: str, det_order: int, k: int) -> None:
    y = panels()[case]
    check(tf_johansen.johansen(y.tolist(), det_order, k), y, det_order, k)


@pytest.mark.parametrize(("case", "det_order", "k"), CASES)
def test_sql_equals_statsmodels(
    conn: psycopg.Connection, case: str, det_order: int, k: int
) -> None:
    y = panels()[case]
    row = conn.execute(
        "select udf.johansen(%s::float8[], %s, %s)", (y.tolist(), det_order, k)
    ).fetchone()
    assert row is not None
    check(row[0], y, det_order, k)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (
            "udf.johansen('{1,2,3}'::float8[], 0, 1)",
            "udf.johansen: y must be two-dimensional (nobs x m)",
        ),
        (
            "udf.johansen('{{1,2},{3,NULL}}'::float8[], 0, 1)",
            "udf.johansen: y has a NULL element at [2][2]",
        ),
        (
            "udf.johansen(array_fill(1.0::float8, array[50, 2]), 0, 1)",
            "udf.johansen: singular moment matrix: a series is constant or collinear",
        ),
        (
            "udf.johansen('{{1,2},{2,1},{3,5},{4,4}}'::float8[], 0, 1)",
            "udf.johansen: too short: 4 rows of 2 series with k_ar_diff 1 need more than 8",
        ),
        (
            "udf.johansen('{{1,2},{2,1}}'::float8[], 2, 1)",
            "udf.johansen: det_order must be -1, 0 or 1, got 2",
        ),
    ],
)
def test_sql_errors_are_one_clear_line(conn: psycopg.Connection, call: str, message: str) -> None:
    assert_sql_error(conn, call, message)
