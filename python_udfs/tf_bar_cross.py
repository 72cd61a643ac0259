"""Families across symbols of the one-minute bars (FEATURE_DEFINITIONS K14): `correlation` and
`error_correction`, run per symbol with other symbols' bars as inputs (params["peers"],
tf_bar_common explains the contract). models/bar/<model>.yml defines every column.

Peers. Each slot holds a list of peer symbols, each {'minute', 'close'} oldest first. A peer's
series (log return over its own previous bar, BQX_N over its own bars, K0; log close) are
computed on its own bars and then read at the symbol's bars by minute: the value at the
symbol's bar at minute m is the peer's value at its bar at minute m, NULL when the peer has no
bar then. A peer's bar after the row being computed is never read. A symbol given in two
slots (a reference that is also a currency peer: GBPUSD for EURUSD) is one series, and each
distinct pair is correlated once.

correlation: Pearson correlations over row windows of the symbol's bars (K0: windows count
the symbol's bars and include the current one), NULL unless all the window's pairs are present
(pandas x.rolling(N).corr(y) with y reindexed onto the symbol's minutes) and NULL when either
series is flat in the window (zero variance, 0/0, T15). A window's sums add its own terms
only: blocks of N bars aligned to the symbol's bar number (the stored `state_corr_bar_index`),
a window being the tail of one block (summed from its end) plus the head of the next (summed
from its start), each term taken relative to the value at the first bar of the block holding
the window's last bar, a value inside the window. So the sums are centred to within the
window's range (no digits lost to a large mean, a flat window sums to exactly 0), and an
incremental refresh adds the same numbers in the same order as a full build: bit-identical.

error_correction: K14 "Readings fixed": two bivariate Johansen tests (H2, det_order 0,
k_ar_diff 1) of the log closes of (symbol, R_j), j = 1, 2, on the last `refit_window` minutes
at which both have a bar at or before the refit bar, refitted at the symbol's bars whose
minute % refit_stride == refit_stride - 1 and carried forward; ECT and its z-score at every
bar (H3). All of a call's windows go through tf_johansen.johansen_batch at once. Values
carried from a refit before `start` come from `prev` (beta~_2 = -hedge ratio exactly).
"""

from __future__ import annotations

import math

import numpy as np
import tf_johansen
from tf_bar_common import BQX_WINDOWS, Bars, bqx
from tf_common import InputError, checkpoint

# --- columns ------------------------------------------------------------------------------------

OWN_WINDOWS: tuple[int, ...] = (60, 240, 1440)
BQX_PAIRS: tuple[tuple[int, int], ...] = (
    (15, 30),
    (15, 60),
    (15, 75),
    (30, 60),
    (30, 75),
    (60, 75),
)
REFS: tuple[str, ...] = ("ref1", "ref2", "ref3")
REF_RET_WINDOWS: tuple[int, ...] = (15, 30, 60, 240, 1440)
REF_BQX15_WINDOWS: tuple[int, ...] = (60, 240, 1440)
REF_BQX60_WINDOWS: tuple[int, ...] = (240, 1440)
GROUP_WINDOWS: tuple[int, ...] = (60, 240, 1440)
# currency groups: the slots of each and the sign that makes a peer's moves the currency's
# moves the way the symbol measures them (+1 the same position, -1 the other)
GROUPS: dict[str, tuple[tuple[str, float], ...]] = {
    "base": (("base_same", 1.0), ("base_flip", -1.0)),
    "quote": (("quote_same", 1.0), ("quote_flip", -1.0)),
}
CORRELATION_SLOTS: tuple[str, ...] = (*REFS, "base_same", "base_flip", "quote_same", "quote_flip")
EC_REFS: tuple[str, ...] = ("ref1", "ref2")
EC_SLOTS: tuple[str, ...] = EC_REFS
EC_CARRIED: tuple[str, ...] = (
    "rank",
    "trace_r0",
    "maxeig_r0",
    "trace_r1",
    "eig1",
    "eig2",
    "hedge_ratio",
    "ect_mean",
    "ect_std",
    "half_life",
)
EC_METRICS: tuple[str, ...] = (*EC_CARRIED, "ect", "ect_z")
# statsmodels 0.15 coint_johansen's trace critical values at 95% (cvt[:, 1]) for 2 series and
# det_order 0: H0 rank <= 0, rank <= 1 (H2 step 13)
TRACE_CV95: tuple[float, float] = (15.4943, 3.8415)
DEFAULT_REFIT_WINDOW = 1440
DEFAULT_REFIT_STRIDE = 60
MIN_REFIT_WINDOW = 10  # H2 with 2 series and k_ar_diff 1 needs more than 8 rows
MAX_PANEL_VALUES = 1 << 18  # Johansen windows per stacked call: rows x windows at most this

STATE_INDEX = "state_corr_bar_index"

CORRELATION_FEATURES: list[str] = [
    *(f"corr_bqx{a}_bqx{b}_w{w}" for a, b in BQX_PAIRS for w in OWN_WINDOWS),
    *(f"corr_ret_bqx{n}_w{w}" for n in BQX_WINDOWS for w in OWN_WINDOWS),
    *(
        name
        for ref in REFS
        for name in (
            *(f"corr_ret_{ref}_w{w}" for w in REF_RET_WINDOWS),
            *(f"corr_bqx15_{ref}_w{w}" for w in REF_BQX15_WINDOWS),
            *(f"corr_bqx60_{ref}_w{w}" for w in REF_BQX60_WINDOWS),
        )
    ),
    *(
        name
        for group in GROUPS
        for w in GROUP_WINDOWS
        for name in (
            f"corr_ret_{group}_mean_w{w}",
            f"corr_ret_{group}_min_w{w}",
            f"corr_ret_{group}_max_w{w}",
            f"corr_ret_{group}_count_w{w}",
            f"corr_bqx15_{group}_mean_w{w}",
        )
    ),
]
EC_COLUMNS: list[str] = [f"ec_{ref}_{metric}" for ref in EC_REFS for metric in EC_METRICS]

MODELS: dict[str, list[str]] = {
    "correlation": [*CORRELATION_FEATURES, STATE_INDEX],
    "error_correction": EC_COLUMNS,
}

# bars before the first written row that each model reads (its SQL): correlation's longest
# window (1440 bars, the current one included) of bqx_75, which needs the close 75 bars
# before the window's first bar. error_correction: at least refit_window bars; its SQL reads
# from the earliest of the refit_window-th newest minute before the first written bar at which
# both the symbol and R_j have a bar (j = 1, 2), which is never later than this.
WARMUP_BARS: dict[str, int] = {
    "correlation": max(OWN_WINDOWS) - 1 + max(BQX_WINDOWS),
    "error_correction": DEFAULT_REFIT_WINDOW,
}


def compute(model: str, bars: Bars, params: dict) -> dict[str, np.ndarray]:
    """Every column of `model` on one symbol's bars (tf_bar_common explains the contract)."""
    if model not in MODELS:
        raise InputError(f"tf_bar_cross has no model '{model}'")
    start = int(params.get("start") or 0)
    prev = params.get("prev")
    minute = np.asarray(bars.minute, dtype=np.int64)
    if len(minute) > 1 and np.any(np.diff(minute) <= 0):
        raise InputError("bars: minutes are not strictly increasing")
    slots = CORRELATION_SLOTS if model == "correlation" else EC_SLOTS
    peers = _peers(params.get("peers"), slots)
    with np.errstate(divide="ignore", invalid="ignore"):
        if model == "correlation":
            return _correlation(bars, minute, peers, _first_bar_number(start, prev))
        return _error_correction(bars, minute, peers, start, prev, params)


# --- inputs -------------------------------------------------------------------------------------


def _peers(given: object, slots: tuple[str, ...]) -> dict[str, list[tuple[np.ndarray, np.ndarray]]]:
    """Each slot's peers as (minute int64, close) pairs, checked; a slot not given is empty."""
    if given is None:
        given = {}
    if not isinstance(given, dict):
        raise InputError("params.peers must be an object {slot: [peer, ...]}")
    out: dict[str, list[tuple[np.ndarray, np.ndarray]]] = {}
    for slot in slots:
        entries = given.get(slot) or []
        if not isinstance(entries, list | tuple):
            raise InputError(f"peers.{slot} must be a list of peers")
        out[slot] = []
        for k, peer in enumerate(entries, start=1):
            if not isinstance(peer, dict) or "minute" not in peer or "close" not in peer:
                raise InputError(f"peers.{slot}[{k}] must have 'minute' and 'close'")
            m = np.asarray(peer["minute"], dtype=np.float64)
            c = np.asarray(peer["close"], dtype=np.float64)
            if m.shape != c.shape or m.ndim != 1:
                raise InputError(f"peers.{slot}[{k}]: minute and close differ in length")
            if not (np.isfinite(m).all() and np.isfinite(c).all() and (c > 0).all()):
                raise InputError(f"peers.{slot}[{k}]: a minute or close is NULL or not positive")
            minutes = m.astype(np.int64)
            if len(minutes) > 1 and np.any(np.diff(minutes) <= 0):
                raise InputError(f"peers.{slot}[{k}]: minutes are not strictly increasing")
            out[slot].append((minutes, c))
    return out


def _log_return(close: np.ndarray) -> np.ndarray:
    """ln(C_t / C_{t-1}) over the previous bar as ln(1 + (C_t - C_{t-1})/C_{t-1}) (T17), NaN at
    the first bar."""
    out = np.full(len(close), np.nan)
    if len(close) > 1:
        out[1:] = np.log1p((close[1:] - close[:-1]) / close[:-1])
    return out


def _at_minutes(peer_minute: np.ndarray, minute: np.ndarray) -> np.ndarray:
    """For each of the symbol's minutes, the index of the peer's bar at that minute, -1 where
    the peer has none."""
    if not len(peer_minute):
        return np.full(len(minute), -1)
    i = np.searchsorted(peer_minute, minute)
    inside = np.minimum(i, len(peer_minute) - 1)
    return np.where(peer_minute[inside] == minute, inside, -1)


def _read(values: np.ndarray, where: np.ndarray) -> np.ndarray:
    return np.where(where >= 0, values[np.maximum(where, 0)], np.nan)


def _state(prev: dict, name: str) -> float | None:
    if name not in prev:
        raise InputError(
            f"the stored row before start has no {name}: rebuild the model (full refresh)"
        )
    value = prev[name]
    return None if value is None else float(value)


# --- correlation --------------------------------------------------------------------------------


def _first_bar_number(start: int, prev: dict | None) -> int:
    """The symbol's bar number of the first input row (0: the input starts at its first bar)."""
    if prev is None:
        if start != 0:
            raise InputError("correlation needs the stored row before start (params.prev)")
        return 0
    index = _state(prev, STATE_INDEX)
    if index is None:
        raise InputError(f"the stored row before start has a NULL {STATE_INDEX}: rebuild")
    first = int(index) + 1 - start
    if first < 0:
        raise InputError("params.prev is not the row just before start")
    warmup = WARMUP_BARS["correlation"]
    if first > 0 and start < warmup:
        raise InputError(f"correlation needs {warmup} warm-up bars, got {start}")
    return first


MAX_SUM_VALUES = 1 << 22  # running sums held at once (32 MB): more terms go in turns

# a run of terms of the window sums: (kind, a, b, count): "plain" series a..a+count-1,
# "square" their squares, "cross" the products of series a with series b..b+count-1
Run = tuple[str, int, int, int]


def _runs(pairs: list[tuple[int, int]]) -> list[Run]:
    """The pairs (in their order) as cross runs: consecutive pairs with the same first series
    and consecutive second series."""
    runs: list[Run] = []
    for i, j in pairs:
        if runs and runs[-1][1] == i and runs[-1][2] + runs[-1][3] == j:
            kind, a, b, count = runs[-1]
            runs[-1] = (kind, a, b, count + 1)
        else:
            runs.append(("cross", i, j, 1))
    return runs


def _turns(runs: list[Run], per_turn: int) -> list[list[Run]]:
    """The runs in turns of at most per_turn terms (a run may be split), in order."""
    turns: list[list[Run]] = [[]]
    room = per_turn
    for kind, i, j, count in runs:
        while count:
            if not room:
                turns.append([])
                room = per_turn
            take = min(count, room)
            turns[-1].append((kind, i, j, take))
            # the rest of a plain or square run starts take series later, a cross run's
            # partners take series later
            i, j = (i + take, j) if kind != "cross" else (i, j + take)
            count -= take
            room -= take
    return [turn for turn in turns if turn]


def _correlations(
    series: np.ndarray, pairs: list[tuple[int, int]], n: int, first: int
) -> np.ndarray:
    """Pearson correlation over the n bars ending at each row of each pair (i, j) of the rows
    of `series` (series x bars): NaN unless all n pairs are present, NaN when either series is
    flat there. Returns (pairs x bars). Pairs with the same i and consecutive j are worked on
    together.

    Window sums: blocks of n bars aligned to the bar number (`first` is the bar number of
    column 0); a window is the tail of one block (summed from the block's end) plus the head
    of the next (summed from its start), or one whole block; every term is taken relative to
    the value at the first bar of the block holding the window's last bar, a value inside the
    window. So a window adds its own terms only (a NaN reaches exactly the windows holding
    it, a flat window sums to exactly 0), in an order fixed by the bar number.

    Layout: (offset in block, series, block). The running sums along the blocks are one
    in-place pass per offset over every series and block at once, and the window ending at
    offset o of block q is the head at (o, q) plus the tail at (o + 1, q - 1), a slice: the
    whole computation stays in this layout, and only the correlations are turned back."""
    k, m = series.shape
    out = np.full((len(pairs), m), np.nan)
    if m < n or not pairs:
        return out
    pad = first % n
    blocks = -(-(pad + m) // n)
    padded = np.full((k, blocks * n), np.nan)
    padded[:, pad : pad + m] = series
    # bar pad + i sits at offset (pad + i) % n of block (pad + i) // n
    by_offset = np.ascontiguousarray(padded.reshape(k, blocks, n).transpose(2, 0, 1))
    del padded
    # the heads' terms relative to the block's first value, the tails' to the next block's
    # (the tails with the offset reversed: they are summed from the block's end)
    head = by_offset - by_offset[0]
    following = np.full((k, blocks), np.nan)
    following[:, :-1] = by_offset[0, :, 1:]
    by_offset -= following
    tail = by_offset[::-1]
    del following
    per_turn = max(1, MAX_SUM_VALUES // (2 * n * blocks))
    linear = np.empty((n, k, blocks))
    square = np.empty((n, k, blocks))
    for kind, target in (("plain", linear), ("square", square)):
        for turn in _turns([(kind, 0, 0, k)], per_turn):
            _, i, _, count = turn[0]
            target[:, i : i + count] = _block_window_sums(head, tail, turn)
    mean = linear / n
    # 1/sqrt(n var) of each series; NaN when it is flat in the window (a variance of exactly
    # 0: 0/0) or a value is missing
    square -= linear * mean
    scale = np.full(square.shape, np.nan)
    np.sqrt(square, out=square)
    np.divide(1.0, square, out=scale, where=square > 0)
    del square
    checkpoint()
    done = 0
    for turn in _turns(_runs(pairs), per_turn):
        rows = sum(count for _, _, _, count in turn)
        r = _block_window_sums(head, tail, turn)  # the cross sums, then the correlations
        at = 0
        for _, i, j, count in turn:
            part = r[:, at : at + count]
            part -= linear[:, i : i + 1] * mean[:, j : j + count]
            part *= scale[:, i : i + 1]
            part *= scale[:, j : j + count]
            at += count
        np.clip(r, -1.0, 1.0, out=r)
        # back to (pair, bar)
        bars = r.transpose(1, 2, 0).reshape(rows, blocks * n)
        out[done : done + rows, n - 1 :] = bars[:, pad + n - 1 : pad + m]
        done += rows
        checkpoint()
    return out


def _block_window_sums(head: np.ndarray, tail: np.ndarray, runs: list[Run]) -> np.ndarray:
    """(offset, term, block): the sum over the window of n bars ending at that offset of that
    block of each term of the runs; NaN where the window starts before the first block. Each
    running sum adds one offset after the other from the block's edge (the same additions,
    in the same order, as a cumulative sum along the block), the heads and the tails of
    every term and block in one pass per offset."""
    n, _, blocks = head.shape
    rows = sum(count for _, _, _, count in runs)
    work = np.empty((n, 2 * rows, blocks))
    for source, at in ((head, 0), (tail, rows)):
        for kind, i, j, count in runs:
            part = work[:, at : at + count]
            if kind == "plain":
                part[...] = source[:, i : i + count]
            elif kind == "square":
                np.multiply(source[:, i : i + count], source[:, i : i + count], out=part)
            else:
                np.multiply(source[:, i : i + 1], source[:, j : j + count], out=part)
            at += count
    for o in range(1, n):
        np.add(work[o], work[o - 1], out=work[o])
    # the window ending at offset o < n - 1 of block q: the head at (o, q) plus the tail from
    # offset o + 1 of block q - 1 (stored at reversed offset n - 2 - o); a window ending at
    # offset n - 1 is one whole block
    if n > 1:
        work[: n - 1, :rows, 1:] += work[n - 2 :: -1, rows:, :-1]
        work[: n - 1, :rows, 0] = np.nan
    checkpoint()
    return work[:, :rows]


def _correlation(
    bars: Bars,
    minute: np.ndarray,
    peers: dict[str, list[tuple[np.ndarray, np.ndarray]]],
    first: int,
) -> dict[str, np.ndarray]:
    close = np.asarray(bars.close, dtype=np.float64)
    m = len(close)
    # the series, in an order that puts the partners of each series next to each other:
    # the return, the BQX, the references' and the currency peers' returns, their bqx_15,
    # the references' bqx_60
    rows: list[np.ndarray] = []

    def add(values: np.ndarray) -> int:
        rows.append(values)
        return len(rows) - 1

    ret = add(_log_return(close))
    own_bqx = {n: add(bqx(close, n)) for n in BQX_WINDOWS}
    refs = {ref: peers[ref][0] for ref in REFS if peers[ref]}
    members = {
        group: [(pair, sign) for slot, sign in slots for pair in peers[slot]]
        for group, slots in GROUPS.items()
    }
    # a reference is usually also in a currency group (EURUSD: GBPUSD is ref2 and shares
    # the quote currency): one symbol's bars given twice make one series, not two
    distinct: list[tuple[np.ndarray, np.ndarray]] = []

    def which(peer: tuple[np.ndarray, np.ndarray]) -> int:
        for k, other in enumerate(distinct):
            if other[0].shape == peer[0].shape and all(
                np.array_equal(u, v) for u, v in zip(other, peer, strict=True)
            ):
                return k
        distinct.append(peer)
        return len(distinct) - 1

    ref_of = {ref: which(p) for ref, p in refs.items()}
    member_of = {g: [which(p) for p, _ in ms] for g, ms in members.items()}
    at = [_at_minutes(p[0], minute) for p in distinct]
    ret_of = [add(_read(_log_return(p[1]), at[k])) for k, p in enumerate(distinct)]
    bqx15_of = [add(_read(bqx(p[1], 15), at[k])) for k, p in enumerate(distinct)]
    ref_ret = {ref: ret_of[k] for ref, k in ref_of.items()}
    ref_bqx15 = {ref: bqx15_of[k] for ref, k in ref_of.items()}
    ref_bqx60 = {ref: add(_read(bqx(p[1], 60), at[ref_of[ref]])) for ref, p in refs.items()}
    peer_ret = {g: [ret_of[k] for k in ks] for g, ks in member_of.items()}
    peer_bqx15 = {g: [bqx15_of[k] for k in ks] for g, ks in member_of.items()}
    checkpoint()

    # every pair to correlate, by window: (output name, i, j, sign)
    wanted: dict[int, list[tuple[str, int, int, float]]] = {}

    def want(n: int, name: str, i: int, j: int, sign: float = 1.0) -> None:
        wanted.setdefault(n, []).append((name, i, j, sign))

    for a, b in BQX_PAIRS:
        for n in OWN_WINDOWS:
            want(n, f"corr_bqx{a}_bqx{b}_w{n}", own_bqx[a], own_bqx[b])
    for q in BQX_WINDOWS:
        for n in OWN_WINDOWS:
            want(n, f"corr_ret_bqx{q}_w{n}", ret, own_bqx[q])
    for ref in refs:
        for n in REF_RET_WINDOWS:
            want(n, f"corr_ret_{ref}_w{n}", ret, ref_ret[ref])
        for n in REF_BQX15_WINDOWS:
            want(n, f"corr_bqx15_{ref}_w{n}", own_bqx[15], ref_bqx15[ref])
        for n in REF_BQX60_WINDOWS:
            want(n, f"corr_bqx60_{ref}_w{n}", own_bqx[60], ref_bqx60[ref])
    for group, ms in members.items():
        for k, (_, sign) in enumerate(ms):
            for n in GROUP_WINDOWS:
                want(n, f"{group}{k}_ret_w{n}", ret, peer_ret[group][k], sign)
                want(n, f"{group}{k}_bqx15_w{n}", own_bqx[15], peer_bqx15[group][k], sign)

    matrix = np.stack(rows)
    values: dict[str, np.ndarray] = {}
    for n, jobs in sorted(wanted.items()):
        # each pair once, ordered by (i, j): pairs sharing i with consecutive j form runs
        unique = sorted({(i, j) for _, i, j, _ in jobs})
        used = sorted({i for i, _ in unique} | {j for _, j in unique})
        local = {c: k for k, c in enumerate(used)}
        r = _correlations(matrix[used], [(local[i], local[j]) for i, j in unique], n, first)
        row = {pair: k for k, pair in enumerate(unique)}
        for name, i, j, sign in jobs:
            values[name] = r[row[i, j]] if sign == 1.0 else sign * r[row[i, j]]

    out: dict[str, np.ndarray] = {}
    for name in CORRELATION_FEATURES:
        if "_base_" not in name and "_quote_" not in name:
            # a reference that is not loaded, or is the symbol itself: NULL
            out[name] = values.get(name, np.full(m, np.nan))
    for group, ms in members.items():
        for n in GROUP_WINDOWS:
            rets = [values[f"{group}{k}_ret_w{n}"] for k in range(len(ms))]
            bqxs = [values[f"{group}{k}_bqx15_w{n}"] for k in range(len(ms))]
            mean, low, high, count = _across(rets, m)
            out[f"corr_ret_{group}_mean_w{n}"] = mean
            out[f"corr_ret_{group}_min_w{n}"] = low
            out[f"corr_ret_{group}_max_w{n}"] = high
            out[f"corr_ret_{group}_count_w{n}"] = count
            out[f"corr_bqx15_{group}_mean_w{n}"] = _across(bqxs, m)[0]
    out[STATE_INDEX] = (first + np.arange(m)).astype(np.float64)
    return out


def _across(values: list[np.ndarray], m: int) -> tuple[np.ndarray, ...]:
    """Mean, min, max over the peers with a value at each row (NaN when none), and how many
    have one; summed in the peers' order."""
    total = np.zeros(m)
    count = np.zeros(m)
    low = np.full(m, np.inf)
    high = np.full(m, -np.inf)
    for v in values:
        ok = ~np.isnan(v)
        total = total + np.where(ok, v, 0.0)
        count = count + ok
        low = np.where(ok, np.minimum(low, v), low)
        high = np.where(ok, np.maximum(high, v), high)
    some = count > 0
    mean = np.where(some, total / np.where(some, count, 1.0), np.nan)
    return mean, np.where(some, low, np.nan), np.where(some, high, np.nan), count


# --- error_correction ---------------------------------------------------------------------------


def _refit_params(params: dict) -> tuple[int, int]:
    window = params.get("refit_window")
    stride = params.get("refit_stride")
    window = DEFAULT_REFIT_WINDOW if window is None else window
    stride = DEFAULT_REFIT_STRIDE if stride is None else stride
    for name, value in (("refit_window", window), ("refit_stride", stride)):
        if isinstance(value, bool) or not isinstance(value, int | float) or value != int(value):
            raise InputError(f"params.{name} must be a whole number, got {value!r}")
    window, stride = int(window), int(stride)
    if window < MIN_REFIT_WINDOW:
        raise InputError(f"params.refit_window must be at least {MIN_REFIT_WINDOW}, got {window}")
    if stride < 1:
        raise InputError(f"params.refit_stride must be at least 1, got {stride}")
    return window, stride


def _error_correction(
    bars: Bars,
    minute: np.ndarray,
    peers: dict[str, list[tuple[np.ndarray, np.ndarray]]],
    start: int,
    prev: dict | None,
    params: dict,
) -> dict[str, np.ndarray]:
    window, stride = _refit_params(params)
    close = np.asarray(bars.close, dtype=np.float64)
    m = len(close)
    if prev is None and start != 0:
        raise InputError("error_correction needs the stored row before start (params.prev)")
    out: dict[str, np.ndarray] = {}
    level = np.log(close)
    # refits: the symbol's bars at minute % stride == stride - 1, from `start` on (an earlier
    # refit's values come from prev)
    refit_rows = np.flatnonzero((minute % stride == stride - 1) & (np.arange(m) >= start))
    for ref in EC_REFS:
        cols = {metric: np.full(m, np.nan) for metric in EC_METRICS}
        if peers[ref]:
            pm, pc = peers[ref][0]
            _fill_reference(
                cols, level, minute, pm, np.log(pc), refit_rows, window, start, prev, ref
            )
        for metric in EC_METRICS:
            out[f"ec_{ref}_{metric}"] = cols[metric]
    return out


def _fill_reference(
    cols: dict[str, np.ndarray],
    level: np.ndarray,
    minute: np.ndarray,
    peer_minute: np.ndarray,
    peer_level: np.ndarray,
    refit_rows: np.ndarray,
    window: int,
    start: int,
    prev: dict | None,
    ref: str,
) -> None:
    m = len(level)
    # the minutes at which both have a bar (an inner join on the minute)
    common, mine, theirs = np.intersect1d(
        minute, peer_minute, assume_unique=True, return_indices=True
    )
    both = np.column_stack([level[mine], peer_level[theirs]])
    # each refit's window: the last `window` common minutes at or before the refit bar
    ends = np.searchsorted(common, minute[refit_rows], side="right")
    full = ends >= window
    fits = {metric: np.full(len(refit_rows), np.nan) for metric in EC_CARRIED}
    rows = np.flatnonzero(full)
    per_call = max(1, MAX_PANEL_VALUES // window)
    for s in range(0, len(rows), per_call):
        chunk = rows[s : s + per_call]
        panels = np.stack([both[e - window : e] for e in ends[chunk]])
        for metric, values in _fit_windows(panels).items():
            fits[metric][chunk] = values
        checkpoint()

    # carry each refit's values forward; rows before the first refit from `start` on take
    # prev's (the stored row before start), rows before `start` are only warm-up
    carried = {metric: np.full(m, np.nan) for metric in EC_CARRIED}
    if prev is not None and 0 < start < m:
        for metric in EC_CARRIED:
            value = _state(prev, f"ec_{ref}_{metric}")
            carried[metric][start] = np.nan if value is None else value
    for metric in EC_CARRIED:
        carried[metric][refit_rows] = fits[metric]
    marks = np.zeros(m, dtype=bool)
    marks[refit_rows] = True
    if prev is not None and start > 0 and start < m:
        marks[start] = True
    latest = np.maximum.accumulate(np.where(marks, np.arange(m), -1))
    has = latest >= 0
    pick = np.maximum(latest, 0)
    for metric in EC_CARRIED:
        cols[metric] = np.where(has, carried[metric][pick], np.nan)

    # ECT and its z-score at every bar from that bar's log closes and the carried fit
    peer_now = _read(peer_level, _at_minutes(peer_minute, minute))
    beta2 = -cols["hedge_ratio"]
    ect = (level + beta2 * peer_now) - cols["ect_mean"]
    cols["ect"] = ect
    std = cols["ect_std"]
    cols["ect_z"] = np.where(std > 0, ect / std, np.nan)


def _fit_windows(panels: np.ndarray) -> dict[str, np.ndarray]:
    """The carried values of each window (panels: windows x rows x 2 log closes)."""
    rows = panels.shape[1]
    fit = tf_johansen.johansen_batch(panels, 0, 1)
    ok = fit["ok"]
    eig, lr1, lr2, evec = fit["eig"], fit["lr1"], fit["lr2"], fit["evec"]
    rank = np.where(lr1[:, 0] < TRACE_CV95[0], 0.0, np.where(lr1[:, 1] < TRACE_CV95[1], 1.0, 2.0))
    beta2 = evec[:, 1, 0] / evec[:, 0, 0]
    # the window's ECT on the raw log closes (H3), centred on its mean
    e = panels[:, :, 0] + beta2[:, None] * panels[:, :, 1]
    mean = e.sum(axis=1) / rows
    d = e - mean[:, None]
    std = np.sqrt((d * d).sum(axis=1) / (rows - 1))
    # half-life: OLS e_t = c + phi e_{t-1} over the window (t = 2nd..last row)
    x = e[:, :-1] - e[:, :-1].sum(axis=1, keepdims=True) / (rows - 1)
    y = e[:, 1:] - e[:, 1:].sum(axis=1, keepdims=True) / (rows - 1)
    sxx = (x * x).sum(axis=1)
    phi = (x * y).sum(axis=1) / sxx
    half_life = np.where((sxx > 0) & (phi > 0) & (phi < 1), -math.log(2.0) / np.log(phi), np.nan)
    values = {
        "rank": rank,
        "trace_r0": lr1[:, 0],
        "maxeig_r0": lr2[:, 0],
        "trace_r1": lr1[:, 1],
        "eig1": eig[:, 0],
        "eig2": eig[:, 1],
        "hedge_ratio": -beta2,
        "ect_mean": mean,
        "ect_std": std,
        "half_life": half_life,
    }
    return {k: np.where(ok, v, np.nan) for k, v in values.items()}
