"""The bar families' data path (migration 0022): the native extension's functions, and the
PL/pgSQL / PL/Python functions the migration defines instead on a server without it, give
the same results on the same input (NULLs, NaN, row order, any number of columns), and bad
input is a one-line error."""

from __future__ import annotations

import re
from collections.abc import Iterator

import psycopg
import pytest

from tests.conftest import ROOT, FreshDatabase

pytestmark = pytest.mark.integration

MIGRATION = ROOT / "migrations" / "0022_udf_bar_families.sql"

# rows of 8 values (a NULL, a NaN-free mix of signs and magnitudes), packed in reverse order
PACK_8 = """
select udf.float8_pack_agg(
    x::float8, case when x % 3 = 0 then null else -x end::float8, x * 1e300::float8,
    x * 1e-300::float8, 0.1::float8 * x, case when x = 2 then null end::float8,
    1.0::float8 / x, x::float8
    order by x desc
)
from generate_series(1, 5) as x
"""
COLUMNS_8 = ", ".join(f"{c} float8" for c in "abcdefgh")
ROWS_8 = "select * from udf.float8_rows(({}), 8) as t(" + COLUMNS_8 + ")"
PACK_9 = (
    "select udf.float8_pack_agg(x::float8, x::float8, x::float8, x::float8, x::float8,"
    " x::float8, x::float8, x::float8, null::float8 order by x) from generate_series(1, 3) as x"
)
ROWS_9 = "select * from udf.float8_rows(({}), 9) as t(" + COLUMNS_8 + ", i float8)"
ARRAYS = "select udf.float8_unpack(udf.float8_pack(array[[1.5, null], [-2, 1e-310]]::float8[]))"


def _fallback_body() -> str:
    """Migration 0022's DO block with its test of the extension's availability replaced by
    false: the branch a server without tickfeatures_native runs."""
    text = MIGRATION.read_text()
    block = re.search(r"do \$migration\$.*?\$migration\$;", text, re.S)
    assert block is not None
    body = block.group(0)
    probe = (
        "if exists (select from pg_available_extensions where name = 'tickfeatures_native') then"
    )
    assert probe in body
    return body.replace(probe, "if false then")


@pytest.fixture(scope="module")
def both(databases: FreshDatabase) -> Iterator[tuple[psycopg.Connection, psycopg.Connection]]:
    native_url, fallback_url = databases.create("tf_native"), databases.create("tf_fallback")
    with (
        psycopg.connect(native_url, autocommit=True) as native,
        psycopg.connect(fallback_url, autocommit=True) as fallback,
    ):
        native.execute("create schema udf")
        native.execute("create extension tickfeatures_native schema udf")
        fallback.execute("create extension if not exists plpython3u")
        fallback.execute("create schema udf")
        fallback.execute(_fallback_body())
        assert fallback.execute(
            "select count(*) from pg_extension where extname = 'tickfeatures_native'"
        ).fetchone() == (0,)
        yield native, fallback


@pytest.mark.parametrize(
    "query",
    [ROWS_8.format(PACK_8), ROWS_9.format(PACK_9), ARRAYS],
    ids=["rows_8", "rows_9", "arrays"],
)
def test_the_fallback_equals_the_extension(both, query: str) -> None:
    native, fallback = both
    got, want = fallback.execute(query).fetchall(), native.execute(query).fetchall()
    assert got == want
    assert len(want) >= 1


def test_values_survive_bit_for_bit(both) -> None:
    native, _ = both
    rows = native.execute(ROWS_8.format(PACK_8)).fetchall()
    assert [r[0] for r in rows] == [5, 4, 3, 2, 1]  # the aggregate's order
    assert rows[2][1] is None and rows[3][5] is None  # NULL in, NULL out
    assert rows[0][2] == 5e300 and rows[0][3] == 5 * 1e-300 and rows[4][6] == 1.0
    assert native.execute(ARRAYS).fetchone() == ([1.5, None, -2.0, 1e-310],)


def test_a_width_that_does_not_fit_is_an_error(both) -> None:
    native, _ = both
    with pytest.raises(psycopg.errors.DatatypeMismatch, match="has 8 columns, width says 2"):
        native.execute(ROWS_8.format(PACK_8).replace("), 8)", "), 2)"))
    with pytest.raises(psycopg.errors.InvalidParameterValue, match="not a whole number of rows"):
        native.execute(
            "select * from udf.float8_rows(udf.float8_pack('{1,2,3}'::float8[]), 2)"
            " as t(a float8, b float8)"
        )
