"""Reference implementation ("oracle") of the `flow` feature family.

Written only from `FEATURE_DEFINITIONS.md` (sections 0 and B, the `**flow**` list of section
S, section T) and `docs/engine_definitions.md` (`level_k_flow_ratio`, `flow_persistence`).
The event OFI e_n (B1), the multi-level OFI (B4) and the window machinery are shared with the
`ofi` oracle (:mod:`tests.oracle.ofi`); see its docstring for the conventions (per symbol in
ts order, NaN = NULL, no inf, row windows t-N+1..t NULL unless all N inputs are non-NULL).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from tests.oracle.ofi import (
    MLOFI_LEVELS,
    event_ofi,
    level_ofi,
    load_book,
    result_frame,
    row_windows,
    safe_div,
    sequential_sum,
    window_sum,
)

#: Row windows N of `flow_imbalance_N`, and spans N of `flow_imbalance_ema_N`.
FLOW_ROWS: tuple[int, ...] = (10, 30, 100, 300)

#: Rows summed by `level_k_flow_ratio` (engine_definitions).
LEVEL_RATIO_ROWS = 100

#: Non-zero events compared by `flow_persistence` (engine_definitions).
PERSISTENCE_EVENTS = 100

OUTPUT_COLUMNS: tuple[str, ...] = (
    "symbol",
    "ts",
    *(f"flow_imbalance_{n}" for n in FLOW_ROWS),
    *(f"flow_imbalance_ema_{n}" for n in FLOW_ROWS),
    *(f"level_{k}_flow_ratio" for k in range(1, MLOFI_LEVELS + 1)),
    "flow_persistence",
)


def ewm_mean(
    columns: Mapping[str, np.ndarray], group_start: np.ndarray, span: int
) -> dict[str, np.ndarray]:
    """Per symbol, pandas ``ewm(span=span, adjust=False).mean()`` with its default NaN
    handling (T13): seeded with the first non-NULL value, carried across NULLs
    (``ignore_na=False``: weights follow absolute positions)."""
    frame = pd.DataFrame({k: np.asarray(v, dtype=float) for k, v in columns.items()})
    ema = frame.groupby(group_start, sort=False).ewm(span=span, adjust=False).mean()
    ema = ema.droplevel(0).sort_index()
    return {k: ema[k].to_numpy() for k in frame.columns}


def flow_persistence(e: np.ndarray, group_start: np.ndarray) -> np.ndarray:
    """S `flow_persistence` (engine_definitions, T14).

    Over the sequence of non-zero, non-NULL e_n of a symbol, each event is compared with the
    event before it (same sign or not); the value at an event is the fraction of matches
    among the last 100 events, so 101 events are needed (NULL before that). Rows whose e_n
    is zero or NULL carry the value of the latest event row of the symbol.
    """
    n = len(e)
    is_event = ~np.isnan(e) & (e != 0.0)
    rows = np.flatnonzero(is_event)  # the event subsequence, as row indices
    signs = np.sign(e[rows])
    groups = group_start[rows]
    has_prev = np.zeros(len(rows), dtype=bool)
    has_prev[1:] = groups[1:] == groups[:-1]

    same_sign = np.full(len(rows), np.nan)  # NULL on a symbol's first event
    same_sign[1:] = np.where(signs[1:] == signs[:-1], 1.0, 0.0)
    same_sign[~has_prev] = np.nan

    # Row window of 100 over the event subsequence, per symbol (T1: all 100 comparisons).
    event_group_start = np.maximum.accumulate(np.where(~has_prev, np.arange(len(rows)), 0)).astype(
        np.int64
    )
    matches = window_sum({"same": same_sign}, row_windows(event_group_start, PERSISTENCE_EVENTS))
    at_event = np.full(n, np.nan)
    at_event[rows] = matches["same"] / PERSISTENCE_EVENTS

    # T14: carry across zero/NULL e_n from the latest event row of the same symbol.
    latest = np.maximum.accumulate(np.where(is_event, np.arange(n), -1))
    has_event = latest >= group_start
    return np.where(has_event, at_event[np.maximum(latest, 0)], np.nan)


def flow(snapshots: pd.DataFrame) -> pd.DataFrame:
    """Compute the `flow` columns (section S) for every snapshot.

    Returns one row per input row, sorted by (symbol, ts), index reset, with exactly the
    columns of :data:`OUTPUT_COLUMNS` (float64, NaN for NULL).
    """
    book = load_book(snapshots)
    gs = book.group_start
    cols: dict[str, np.ndarray] = {}

    # B1 / T7: e_n, NULL on a symbol's first row.
    e = event_ofi(book)
    abs_e = np.abs(e)

    # S `flow_imbalance_N` = sum e_n / sum |e_n| over rows t-N+1..t; NULL unless all N e_n
    # are non-NULL (T1; so first on row N), NULL when sum |e_n| = 0.
    for n in FLOW_ROWS:
        sums = window_sum({"e": e, "abs_e": abs_e}, row_windows(gs, n))
        cols[f"flow_imbalance_{n}"] = safe_div(sums["e"], sums["abs_e"])

    # S `flow_imbalance_ema_N` = EMA(e_n) / EMA(|e_n|), pandas ewm(span=N, adjust=False),
    # seeded with the first non-NULL e_n, carried across NULLs (T13); NULL when EMA(|e|) = 0.
    for n in FLOW_ROWS:
        ema = ewm_mean({"e": e, "abs_e": abs_e}, gs, n)
        cols[f"flow_imbalance_ema_{n}"] = safe_div(ema["e"], ema["abs_e"])

    # S `level_k_flow_ratio` (engine_definitions): MLOFI^k over the last 100 rows (B4 with the
    # empty-level rule, T7) / sum_{m=1..5} |MLOFI^m| over the same rows; NULL until 100 rows
    # with a multi-level OFI exist (first on row 100), NULL when the denominator is 0.
    mlofi = level_ofi(book)
    level_sums = window_sum(
        {f"e{m}": mlofi[:, m - 1] for m in range(1, MLOFI_LEVELS + 1)},
        row_windows(gs, LEVEL_RATIO_ROWS),
    )
    denominator = sequential_sum([np.abs(level_sums[f"e{m}"]) for m in range(1, MLOFI_LEVELS + 1)])
    for k in range(1, MLOFI_LEVELS + 1):
        cols[f"level_{k}_flow_ratio"] = safe_div(level_sums[f"e{k}"], denominator)

    # S `flow_persistence` (engine_definitions, T14).
    cols["flow_persistence"] = flow_persistence(e, gs)

    return result_frame(book, cols, OUTPUT_COLUMNS)
