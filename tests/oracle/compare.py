"""Column-by-column comparison of a SQL result with an oracle, with a readable failure."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

REL_TOL = 1e-9
ABS_TOL = 1e-12


def mismatches(
    actual: pd.DataFrame,
    expected: pd.DataFrame,
    key: Sequence[str] = ("symbol", "ts"),
    rel: float = REL_TOL,
    abs_: float = ABS_TOL,
    term_scales: pd.DataFrame | None = None,
) -> list[str]:
    """Every way `actual` differs from `expected`: key sets, columns, NULL patterns, values.

    Floats match when |a - e| <= max(rel * max(|a|, |e|, s), abs_). NULL (NaN/None/<NA>)
    must be NULL on both sides. `s` is 0 except for the columns of `term_scales` (keyed like
    `expected`): there it is the size of the terms whose sum the value is, since a sum whose
    terms cancel is judged against the size of its terms, not of the result (section T17).
    """
    problems: list[str] = []
    if list(actual.columns) != list(expected.columns):
        missing = [c for c in expected.columns if c not in actual.columns]
        extra = [c for c in actual.columns if c not in expected.columns]
        problems.append(f"columns differ: missing {missing}, unexpected {extra}")
        return problems
    a = actual.sort_values(list(key)).reset_index(drop=True)
    e = expected.sort_values(list(key)).reset_index(drop=True)
    scales = (
        e[list(key)].merge(term_scales, on=list(key), how="left")
        if term_scales is not None
        else pd.DataFrame(index=e.index)
    )
    if len(a) != len(e) or not a[list(key)].equals(e[list(key)]):
        problems.append(f"row keys differ: {len(a)} rows in SQL, {len(e)} in the oracle")
        return problems
    for column in a.columns:
        if column in key:
            continue
        got, want = a[column], e[column]
        got_null, want_null = got.isna().to_numpy(), want.isna().to_numpy()
        if (got_null != want_null).any():
            rows = np.flatnonzero(got_null != want_null)[:3]
            problems.append(
                f"{column}: NULL pattern differs on {int((got_null != want_null).sum())} rows, "
                f"e.g. {[(str(a.at[r, 'ts']), got[r], want[r]) for r in rows]}"
            )
            continue
        both = ~got_null
        if not both.any():
            continue
        if pd.api.types.is_bool_dtype(want.dtype) or want.dtype == "boolean":
            if not (got[both].astype(bool).to_numpy() == want[both].astype(bool).to_numpy()).all():
                problems.append(f"{column}: boolean values differ")
            continue
        if pd.api.types.is_string_dtype(want.dtype):
            differ = got[both].to_numpy() != want[both].to_numpy()
            if differ.any():
                problems.append(f"{column}: {int(differ.sum())} text values differ")
            continue
        g = got[both].astype("float64").to_numpy()
        w = want[both].astype("float64").to_numpy()
        size = np.maximum(np.abs(g), np.abs(w))
        if column in scales.columns:
            size = np.maximum(size, np.nan_to_num(scales[column][both].to_numpy(dtype=float)))
        tol = np.maximum(rel * size, abs_)
        bad = np.abs(g - w) > tol
        if bad.any():
            worst = int(np.argmax(np.abs(g - w) - tol))
            where = a.loc[both].iloc[worst]
            problems.append(
                f"{column}: {int(bad.sum())} values off, worst SQL {g[worst]!r} vs oracle "
                f"{w[worst]!r} at {where['symbol']} {where['ts']}"
            )
    return problems
