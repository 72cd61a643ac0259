"""What every bar-family kernel test shares: run a model's kernel (python_udfs/tf_bars.py) on
one symbol's bars, the way the model's SQL runs it on a full build and on an incremental
refresh, and compare with an oracle."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd
import tf_bars

from tests.oracle.bar_datasets import kernel_inputs
from tests.oracle.compare import mismatches


def symbols(bars: pd.DataFrame) -> list[pd.DataFrame]:
    """A dataset's symbols, each on its own, sorted by ts."""
    return [group.reset_index(drop=True) for _, group in bars.groupby("symbol", sort=True)]


def first_close(bars: pd.DataFrame) -> float:
    """C_first: the close of the symbol's first bar."""
    return float(bars["close"].iloc[0])


def flat_stretch(bars: pd.DataFrame) -> int | None:
    """Where a bar_datasets symbol's flat stretch (O = H = L = C for 120 bars) starts, if it
    has one (bar_datasets.symbol_bars puts it at n // 3 when n > 600)."""
    n = len(bars)
    return n // 3 if n > 600 else None


def full(model: str, bars: pd.DataFrame, **params: object) -> pd.DataFrame:
    """The model's columns on every bar of one symbol (a full build), NaN = NULL."""
    params.setdefault("first_close", float(bars["close"].iloc[0]))
    result = tf_bars.compute(model, kernel_inputs(bars), dict(params))
    frame = pd.DataFrame({c: np.asarray(result[c], dtype=float) for c in tf_bars.columns(model)})
    frame[~np.isfinite(frame.to_numpy())] = np.nan
    frame.insert(0, "ts", bars["ts"].to_numpy())
    frame.insert(0, "symbol", bars["symbol"].to_numpy())
    return frame


def incremental(
    model: str,
    bars: pd.DataFrame,
    cut: int,
    warmup_bars: int,
    before: pd.DataFrame,
    **params: object,
) -> pd.DataFrame:
    """The rows from bar `cut` on, as an incremental refresh computes them: the kernel sees
    only the `warmup_bars` bars before `cut` and the rest, with `start` at the cut and
    `prev` the stored row before it (from `before`, the model's earlier output)."""
    read_from = max(0, cut - warmup_bars)
    window = bars.iloc[read_from:].reset_index(drop=True)
    params.setdefault("first_close", float(bars["close"].iloc[0]))
    params["start"] = cut - read_from
    params["prev"] = (
        None
        if cut == 0
        else {
            k: (None if isinstance(v, float) and np.isnan(v) else v)
            for k, v in before.iloc[cut - 1].drop(["symbol", "ts"]).items()
        }
    )
    result = tf_bars.compute(model, kernel_inputs(window), dict(params))
    frame = pd.DataFrame(
        {c: np.asarray(result[c], dtype=float)[params["start"] :] for c in tf_bars.columns(model)}
    )
    frame[~np.isfinite(frame.to_numpy())] = np.nan
    frame.insert(0, "ts", window["ts"].to_numpy()[params["start"] :])
    frame.insert(0, "symbol", window["symbol"].to_numpy()[params["start"] :])
    return frame


def assert_matches(actual: pd.DataFrame, expected: pd.DataFrame, **kwargs: object) -> None:
    problems = mismatches(actual, expected, **kwargs)
    assert not problems, "\n".join(problems)


def assert_incremental_equals_full(
    model: str, bars: pd.DataFrame, warmup_bars: int, cuts: Sequence[int], **params: object
) -> None:
    """For each cut: the incremental rows equal the full build's rows (1e-9, NULLs identical)."""
    whole = full(model, bars, **params)
    for cut in cuts:
        got = incremental(model, bars, cut, warmup_bars, whole, **params)
        want = whole.iloc[cut:].reset_index(drop=True)
        assert_matches(got, want)


def assert_append_never_changes_the_past(
    model: str, bars: pd.DataFrame, cuts: Sequence[int], **params: object
) -> None:
    """The full build on a prefix equals the full build's rows on that prefix."""
    whole = full(model, bars, **params)
    for cut in cuts:
        assert_matches(
            full(model, bars.iloc[:cut].reset_index(drop=True), **params),
            whole.iloc[:cut].reset_index(drop=True),
        )


OracleFn = Callable[[pd.DataFrame, float], pd.DataFrame]
