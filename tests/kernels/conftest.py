"""Shared by the kernel tests: the kernels importable from python_udfs/, a migrated
database connection, and the comparison with a reference library's output."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import psycopg
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "python_udfs"))


@pytest.fixture(scope="module")
def conn(migrated_db: str) -> Iterator[psycopg.Connection]:
    with psycopg.connect(migrated_db, autocommit=True) as connection:
        yield connection


def assert_close(got: object, want: object, tolerance: float) -> None:
    """Same shape and NaN pattern; |got - want| <= tolerance * max(1, |want|) elsewhere."""
    a = np.asarray(got, dtype=float)
    b = np.asarray(want, dtype=float)
    assert a.shape == b.shape
    np.testing.assert_array_equal(np.isnan(a), np.isnan(b))
    ok = ~np.isnan(b)
    assert np.all(np.abs(a[ok] - b[ok]) <= tolerance * np.maximum(1.0, np.abs(b[ok])))


def assert_sql_error(conn: psycopg.Connection, call: str, message: str) -> None:
    """The call fails with SQLSTATE 22023 and exactly `message` as its one-line error."""
    with pytest.raises(psycopg.errors.InvalidParameterValue) as caught:
        conn.execute(f"select * from {call}")
    assert str(caught.value).splitlines()[0] == message
    assert "Traceback" not in str(caught.value)
