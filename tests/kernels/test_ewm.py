"""udf.ewm_means (migrations 0007, 0019) against pandas `ewm(span=N, adjust=False).mean()`,
and its seeded form: a run cut anywhere and continued from the state it returned at the cut
gives the uncut run's bits (models/l2/flow_ewm_state.sql relies on it for incremental
refreshes equal to a full build)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import psycopg
import pytest

SPANS = [10, 30, 100, 300]
ALPHAS = [2.0 / (n + 1) for n in SPANS]


def series(seed: int, n: int = 2_000) -> np.ndarray:
    """Order-flow-like values: many zeros, repeats, runs of NULL (a leading one too)."""
    rng = np.random.default_rng(seed)
    x = np.round(rng.standard_normal(n) * 5) * (rng.random(n) < 0.4)
    x[rng.random(n) < 0.05] = np.nan
    x[:3] = np.nan
    x[500:540] = np.nan
    return x


def sql_ewm(conn: psycopg.Connection, x: np.ndarray, seed: list[float | None] | None) -> np.ndarray:
    """The state after each row, from udf.ewm_means over x (and |x|) continued from seed."""
    values = [None if np.isnan(v) else float(v) for v in x]
    rows = conn.execute(
        "select udf.ewm_means(%s::double precision[],"
        " array[v, v, v, v, abs(v), abs(v), abs(v), abs(v)], %s::double precision[])"
        " over (order by i rows between unbounded preceding and current row)"
        " from unnest(%s::double precision[]) with ordinality as t (v, i) order by i",
        (seed, ALPHAS * 2, values),
    ).fetchall()
    return np.array([[np.nan if e is None else e for e in r[0]] for r in rows], dtype=float)


@pytest.mark.parametrize("case", range(4))
def test_means_equal_pandas(conn: psycopg.Connection, case: int) -> None:
    x = series(case)
    state = sql_ewm(conn, x, None)
    for i, span in enumerate(SPANS):
        for j, values in enumerate([x, np.abs(x)]):
            want = pd.Series(values).ewm(span=span, adjust=False).mean().to_numpy()
            got = state[:, i + 4 * j]
            np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
            ok = ~np.isnan(want)
            np.testing.assert_allclose(got[ok], want[ok], rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("case", range(4))
def test_a_run_continued_from_its_state_is_the_uncut_run(
    conn: psycopg.Connection, case: int
) -> None:
    x = series(100 + case)
    whole = sql_ewm(conn, x, None)
    rng = np.random.default_rng(case)
    # a cut before any value, inside the NULL run, right after it, and anywhere
    for cut in [1, 2, 520, 540, *rng.integers(3, len(x) - 1, 6)]:
        seed = [None if np.isnan(v) else float(v) for v in whole[cut - 1]]
        continued = sql_ewm(conn, x[cut:], seed)
        # the same operations from the same state: the same bits, NULLs included
        np.testing.assert_array_equal(continued, whole[cut:], err_msg=f"cut at {cut}")


def test_a_seed_of_the_wrong_length_is_refused(conn: psycopg.Connection) -> None:
    with pytest.raises(psycopg.errors.InvalidParameterValue) as caught:
        conn.execute(
            "select udf.ewm_means(array[1.0, 1.0, 1.0]::double precision[], array[1.0],"
            " array[0.5]::double precision[]) over ()"
        )
    assert str(caught.value).splitlines()[0] == (
        "udf.ewm_means: seed has 3 elements, expected 2 (means, then weights)"
    )
