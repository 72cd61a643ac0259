"""The exact window functions of tickfeatures_native (native/tf_windows.c, migration 0030).

Each value is held to exact rational arithmetic on the float8 inputs (Python's Fraction),
rounded once: the sums, counts and means must be the correctly rounded exact values, bit
for bit; a standard deviation is sqrt(round(n*S2 - S1^2) / (n(n-1))) with the difference
exact; a trend strength 3 A^2 / ((n^2 - 1) B) from the exact A and B (three roundings). The
data mix what breaks running sums: constant stretches after volatile ones, values that are
multiples of a coarse power of two (price differences), values from 1e-300 to 1e30 in one
partition, signed zeros, NULLs, and gaps in time.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator
from fractions import Fraction

import psycopg
import pytest

from tests.conftest import ROOT, FreshDatabase, run_cli

pytestmark = pytest.mark.integration

SEED = 5
ROWS = 1200  # per symbol
US = 1_000_000


def _value(rng: random.Random, i: int) -> float | None:
    kind = (i // 40) % 7
    if rng.random() < 0.05:
        return None
    if kind == 0:
        return 1.2345  # a constant stretch: its deviation must be exactly 0
    if kind == 1:
        return round(rng.random() * 10, 1) * 1e-5
    if kind == 2:
        return (rng.random() - 0.5) * 10 ** rng.uniform(-30, 30)
    if kind == 3:
        return rng.choice([0.0, -0.0, 1e-300, 3.0, -3.0])
    if kind == 4:
        return (1.1 + rng.randint(0, 9) * 1e-5) - (1.1 + rng.randint(0, 9) * 1e-5)
    return (rng.random() - 0.5) * 10 ** rng.uniform(-3, 3)


@pytest.fixture(scope="module")
def series(databases: FreshDatabase) -> Iterator[tuple[psycopg.Connection, dict]]:
    url = databases.create("tf_windows")
    run_cli("migrate", dsn=url)
    rng = random.Random(SEED)
    rows = []
    for symbol in ("A", "B"):
        t = 0
        for i in range(ROWS):
            t += rng.randint(1, 400) * 1000 if i % 300 else 20 * US  # a gap now and then
            rows.append((symbol, t, _value(rng, i)))
    with psycopg.connect(url, autocommit=True) as conn:
        found = conn.execute(
            "select count(*) from pg_proc p join pg_namespace n on n.oid = p.pronamespace"
            " where n.nspname = 'udf' and p.prokind = 'w'"
        ).fetchone()
        # make test installs tickfeatures_native: without the functions this test has
        # nothing to test, and the families would be on the numeric path unnoticed
        assert found == (8,), "migration 0030 did not create the window functions"
        conn.execute("create table t (symbol text, ts timestamptz, x float8)")
        conn.cursor().executemany(
            "insert into t values"
            " (%s, timestamptz '2026-01-01' + %s * interval '1 microsecond', %s)",
            rows,
        )
        by_symbol: dict[str, list[tuple[int, float | None]]] = {}
        for symbol, us, x in rows:
            by_symbol.setdefault(symbol, []).append((us, x))
        yield conn, by_symbol


def _query(conn: psycopg.Connection, call: str) -> dict[str, list]:
    out: dict[str, list] = {}
    for symbol, value in conn.execute(
        f"select symbol, {call} over (partition by symbol order by ts) from t order by symbol, ts"
    ):
        out.setdefault(symbol, []).append(value)
    return out


def _std(values: list[float]) -> float:
    n = len(values)
    s1 = sum(map(Fraction, values))
    s2 = sum(Fraction(v) * Fraction(v) for v in values)
    return math.sqrt(max(float(n * s2 - s1 * s1) / (n * (n - 1)), 0.0))


def _row_window(xs: list, i: int, n: int, skip: int = 0) -> list | None:
    """The n values ending `skip` rows before row i, or None unless there are n, all set."""
    lo, hi = i - skip - n + 1, i - skip
    if lo < 0 or any(xs[j] is None for j in range(lo, hi + 1)):
        return None
    return xs[lo : hi + 1]


def _partial(xs: list, i: int, n: int) -> list:
    return [v for v in xs[max(i - n + 1, 0) : i + 1] if v is not None]


def _time_window(rows: list, i: int, seconds: float) -> list:
    start = rows[i][0] - round(seconds * US)
    return [x for t, x in rows[: i + 1] if t > start and x is not None]


CASES = {
    "udf.window_std(x, 20, 0)": lambda rows, xs, i: (
        None if (w := _row_window(xs, i, 20)) is None else _std(w)
    ),
    "udf.window_std(x, 7, 3)": lambda rows, xs, i: (
        None if (w := _row_window(xs, i, 7, 3)) is None else _std(w)
    ),
    "udf.window_mean(x, 20, 0, true)": lambda rows, xs, i: (
        None if (w := _row_window(xs, i, 20)) is None else float(sum(map(Fraction, w)) / 20)
    ),
    "udf.window_mean(x, 20, 1, false)": lambda rows, xs, i: (
        None if (w := _row_window(xs, i, 20, 1)) is None else float(sum(map(Fraction, w))) / 20
    ),
    "udf.window_sum(x, 15, true)": lambda rows, xs, i: float(
        sum(Fraction(v) ** 2 for v in _partial(xs, i, 15))
    ),
    "udf.window_sum(x, 15, false)": lambda rows, xs, i: float(
        sum(map(Fraction, _partial(xs, i, 15)))
    ),
    "udf.window_count(x, 15)": lambda rows, xs, i: len(_partial(xs, i, 15)),
    "udf.time_window_std(x, ts, 5)": lambda rows, xs, i: (
        _std(w) if len(w := _time_window(rows, i, 5)) >= 2 else None
    ),
    "udf.time_window_sum(x, ts, 5, true)": lambda rows, xs, i: float(
        sum(Fraction(v) ** 2 for v in _time_window(rows, i, 5))
    ),
    "udf.time_window_sum(x, ts, 0.25, false)": lambda rows, xs, i: float(
        sum(map(Fraction, _time_window(rows, i, 0.25)))
    ),
    "udf.time_window_count(x, ts, 5)": lambda rows, xs, i: len(_time_window(rows, i, 5)),
}


@pytest.mark.parametrize("call", list(CASES))
def test_values_are_the_exact_ones_rounded_once(series, call: str) -> None:
    conn, by_symbol = series
    got = _query(conn, call)
    checked = 0
    for symbol, rows in by_symbol.items():
        xs = [x for _, x in rows]
        for i, value in enumerate(got[symbol]):
            want = CASES[call](rows, xs, i)
            assert value == want, f"{call}, {symbol}, row {i}: {value!r}, exactly {want!r}"
            checked += want is not None
    assert checked > ROWS // 4  # the comparison is not of NULLs alone


def test_a_constant_window_has_no_deviation_after_any_history(series) -> None:
    conn, by_symbol = series
    std = _query(conn, "udf.window_std(x, 20, 0)")
    constant = 0
    for symbol, rows in by_symbol.items():
        xs = [x for _, x in rows]
        for i, value in enumerate(std[symbol]):
            window = _row_window(xs, i, 20)
            if window is not None and len(set(window)) == 1:
                assert value == 0.0
                constant += 1
    assert constant > 10


def test_trend_strength_is_the_exact_fit(series) -> None:
    conn, by_symbol = series
    got = _query(conn, "udf.window_trend_strength(x, 30)")
    n = 30
    compared = 0
    for symbol, rows in by_symbol.items():
        xs = [x for _, x in rows]
        for i, value in enumerate(got[symbol]):
            window = _row_window(xs, i, n)
            if window is None:
                assert value is None
                continue
            s1 = sum(map(Fraction, window))
            s2 = sum(Fraction(v) ** 2 for v in window)
            a = 2 * sum(k * Fraction(v) for k, v in enumerate(window)) - (n - 1) * s1
            b = n * s2 - s1 * s1
            want = 0.0 if b == 0 else float(3 * a * a / ((n * n - 1) * b))
            # A^2 and B are each rounded once, then multiplied and divided: 4 ulp at most
            assert value == pytest.approx(want, rel=4.5e-16, abs=0), (symbol, i)
            compared += 1
    assert compared > ROWS // 4


def test_a_window_with_nan_or_infinity_is_nan_and_the_next_ones_are_not(series) -> None:
    conn, _ = series
    rows = conn.execute(
        "select udf.window_sum(x, 3, false) over w, udf.window_std(x, 3, 0) over w"
        " from (values (1, 1.0::float8), (2, 'NaN'), (3, 2.0), (4, 3.0), (5, 4.0),"
        " (6, 'Infinity'), (7, 5.0), (8, 6.0), (9, 7.0)) as v(i, x)"
        " window w as (order by i)"
    ).fetchall()
    sums = [r[0] for r in rows]
    assert math.isnan(sums[1]) and math.isnan(sums[3]) and sums[4] == 9.0
    assert math.isnan(sums[5]) and math.isnan(sums[7]) and sums[8] == 18.0
    assert rows[4][1] == 1.0 and rows[8][1] == 1.0


@pytest.mark.parametrize(
    ("call", "error"),
    [
        ("udf.window_std(x, 1, 0)", "n must be at least 2"),
        ("udf.window_std(x, 0, 0)", "n must be at least 1"),
        ("udf.window_mean(x, 5, -1, true)", "skip must be at least 0"),
        ("udf.window_sum(x, null, true)", "n must not be NULL"),
        ("udf.time_window_std(x, ts, 0)", "the window must be a positive number of seconds"),
        ("udf.time_window_sum(x, ts, 'NaN', false)", "positive number of seconds"),
        ("udf.time_window_count(x, null, 5)", "ts is NULL"),
    ],
)
def test_bad_arguments_are_one_line_errors(series, call: str, error: str) -> None:
    conn, _ = series
    with pytest.raises(psycopg.Error, match=error) as caught:
        conn.execute(f"select {call} over (partition by symbol order by ts) from t")
    assert "\n" not in str(caught.value).strip()


def test_rows_out_of_time_order_are_an_error(series) -> None:
    conn, _ = series
    with pytest.raises(psycopg.Error, match="out of time order"):
        conn.execute("select udf.time_window_sum(x, ts, 5, false) over (order by ts desc) from t")


def _plpgsql_ewm_step() -> str:
    """Migration 0019's PL/pgSQL step, as ref.ewm_means_step: what a server without
    tickfeatures_native runs."""
    text = (ROOT / "migrations" / "0019_udf_ewm_seeded.sql").read_text()
    start = text.index("create function udf.ewm_means_step(")
    body = text[start : text.index("$$;", start) + 3]
    return body.replace("udf.ewm_means_step", "ref.ewm_means_step", 1)


def test_the_ewm_step_in_c_is_the_plpgsql_one_bit_for_bit(series) -> None:
    conn, _ = series
    conn.execute("create schema ref")
    conn.execute(_plpgsql_ewm_step())
    conn.execute(
        "create aggregate ref.ewm_means(double precision[], double precision[],"
        " double precision[]) (sfunc = ref.ewm_means_step, stype = double precision[])"
    )
    assert conn.execute(
        "select l.lanname from pg_proc p join pg_language l on l.oid = p.prolang"
        " where p.oid = 'udf.ewm_means_step(float8[], float8[], float8[], float8[])'::regprocedure"
    ).fetchone() == ("c",)
    call = (
        "{}.ewm_means({}, array[x, abs(x), round(x::numeric, 1)::float8],"
        " array[2.0 / 11, 2.0 / 301, 1.0]::float8[])"
        " over (partition by symbol order by ts rows between unbounded preceding and current row)"
    )
    for seed in ("null::float8[]", "array[0.5, null, 2, 0.25, null, 1]::float8[]"):
        query = (
            f"select {call.format('udf', seed)}, {call.format('ref', seed)}"
            " from t order by symbol, ts"
        )
        rows = conn.execute(query).fetchall()
        assert len(rows) == 2 * ROWS
        same = [a == b for a, b in rows]
        assert all(same), f"seed {seed}: row {same.index(False)}: {rows[same.index(False)]}"
    with pytest.raises(psycopg.Error, match="seed has 3 elements, expected 2"):
        conn.execute(
            "select udf.ewm_means(array[1, 1, 1]::float8[], array[1.0], array[0.5]) over ()"
        )
