"""udf.wavedec and python_udfs/tf_wavelet.py against PyWavelets (G4), in Python and through SQL."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import psycopg
import pytest
import pywt
import tf_wavelet
from tf_common import InputError

from tests.conftest import run_cli
from tests.kernels.cases import signals
from tests.kernels.conftest import assert_close, assert_sql_error

TOLERANCE = 1e-12  # relative, absolute below 1 (issue 4)
LEVELS = [None, 0, 1, 3, 9]
# A level above dwt_max_level is an error now (pywt only warns; issue 12), and so is NaN:
# each case is compared at the levels its length allows, test_level_above_the_maximum takes
# the others.
CASES = [name for name in signals() if name != "with_nan"]
ALLOWED = [
    (case, level)
    for case in CASES
    for level in LEVELS
    if level is None or level <= pywt.dwt_max_level(len(signals()[case]), 8)
]
ABOVE = [
    (case, level)
    for case in CASES
    for level in LEVELS
    if level is not None and level > pywt.dwt_max_level(len(signals()[case]), 8)
]


def reference(x: np.ndarray, level: int | None) -> list[np.ndarray]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "Level value too high" is a warning in pywt too
        return pywt.wavedec(x, "db4", mode="symmetric", level=level)


def assert_same(got: list[np.ndarray], want: list[np.ndarray]) -> None:
    assert [len(a) for a in got] == [len(a) for a in want]
    for a, b in zip(got, want, strict=True):
        assert_close(a, b, TOLERANCE)


def test_filters_are_pywt_db4() -> None:
    wavelet = pywt.Wavelet("db4")
    dec_lo, dec_hi = tf_wavelet.filters("db4")
    assert dec_lo.tolist() == list(wavelet.dec_lo)
    assert dec_hi.tolist() == list(wavelet.dec_hi)


@pytest.mark.parametrize("n", [1, 6, 7, 13, 14, 64, 100, 500, 4096])
def test_max_level_is_pywt(n: int) -> None:
    assert tf_wavelet.dwt_max_level(n, 8) == pywt.dwt_max_level(n, 8)


@pytest.mark.parametrize(("case", "level"), ALLOWED)
def test_python_equals_pywt(case: str, level: int | None) -> None:
    x = signals()[case]
    assert_same(tf_wavelet.wavedec(x.tolist(), "db4", level), reference(x, level))


def sql_wavedec(conn: psycopg.Connection, x: np.ndarray, level: int | None) -> list[np.ndarray]:
    rows = conn.execute(
        "select idx, coeffs from udf.wavedec(%s::float8[], 'db4', %s::int) order by idx",
        ([float(v) for v in x], level),
    ).fetchall()
    assert [idx for idx, _ in rows] == list(range(len(rows)))
    return [np.array(coeffs, dtype=float) for _, coeffs in rows]


@pytest.mark.parametrize(("case", "level"), ALLOWED)
def test_sql_equals_pywt(conn: psycopg.Connection, case: str, level: int | None) -> None:
    x = signals()[case]
    assert_same(sql_wavedec(conn, x, level), reference(x, level))


@pytest.mark.parametrize(("case", "level"), ABOVE)
def test_level_above_the_maximum(conn: psycopg.Connection, case: str, level: int) -> None:
    x = signals()[case]
    top = pywt.dwt_max_level(len(x), 8)
    message = (
        f"level must be between 0 and {top} (dwt_max_level of {len(x)} values and db4), got {level}"
    )
    with pytest.raises(InputError) as caught:
        tf_wavelet.wavedec(x.tolist(), "db4", level)
    assert str(caught.value) == message
    assert_sql_error(
        conn,
        f"udf.wavedec('{{{','.join(map(repr, x.tolist()))}}}'::float8[], 'db4', {level})",
        f"udf.wavedec: {message}",
    )


def test_sql_default_arguments(conn: psycopg.Connection) -> None:
    x = signals()["noise"]
    rows = conn.execute("select coeffs from udf.wavedec(%s::float8[]) order by idx", (x.tolist(),))
    assert_same([np.array(c) for (c,) in rows], reference(x, None))
    assert conn.execute("select count(*) from udf.wavedec(null)").fetchone() == (0,)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        ("udf.wavedec('{}'::float8[])", "udf.wavedec: x is empty"),
        ("udf.wavedec('{1,NULL,3}'::float8[])", "udf.wavedec: x has a NULL element at position 2"),
        ("udf.wavedec('{{1,2},{3,4}}'::float8[])", "udf.wavedec: x must be one-dimensional"),
        (
            "udf.wavedec('{1,2,3}'::float8[], 'db5')",
            "udf.wavedec: unknown wavelet 'db5' (known: db4)",
        ),
        ("udf.wavedec('{1,2,3}'::float8[], 'db4', -1)", "udf.wavedec: level must be >= 0, got -1"),
        ("udf.wavedec('{1,2,NaN}'::float8[])", "udf.wavedec: x has a NaN at position 3"),
        (
            "udf.wavedec('{Infinity,2,3}'::float8[], 'db4', 0)",
            "udf.wavedec: x has an infinite value at position 1",
        ),
    ],
)
def test_sql_errors_are_one_clear_line(conn: psycopg.Connection, call: str, message: str) -> None:
    assert_sql_error(conn, call, message)


def test_modules_travel_in_sql(migrated_db: str) -> None:
    """The kernel's source is in the database: a server without our files runs it."""
    with psycopg.connect(migrated_db) as connection:
        source = connection.execute(
            "select source from udf.python_modules where name = 'tf_wavelet'"
        ).fetchone()
    assert source is not None
    assert source[0] == Path(tf_wavelet.__file__).read_text()
    with psycopg.connect(migrated_db) as connection:
        names = {name for (name,) in connection.execute("select name from udf.python_modules")}
    assert names == {p.stem for p in Path(tf_wavelet.__file__).parent.glob("tf_*.py")}
    again = run_cli("migrate", dsn=migrated_db)
    assert again.stdout.strip() == "database is up to date"
