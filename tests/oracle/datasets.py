"""Deterministic snapshot tables for the L2 oracles' tests.

:func:`window_edge_snapshots` builds two symbols, `EURUSD` (tick 0.00001, around 1.1) and
`ZZTEST` (tick 0.01, around 100), about 1,500 rows each, interleaved in time, to exercise the
windowed features (`ofi`, `flow`, `temporal`) and their edge cases. Everything comes from a
seeded numpy generator plus a fixed list of scripted events, so the table is the same on
every run and platform.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from tests.oracle.microstructure import INPUT_COLUMNS, N_LEVELS

ROWS_PER_SYMBOL = 1500
CADENCE_US = 100_000  # 100 ms
JITTER_US = 30_000  # +-30 ms, so timestamps stay increasing
START = pd.Timestamp("2024-03-04 08:00:00", tz="UTC")

SECOND_US = 1_000_000
MINUTE_US = 60 * SECOND_US


@dataclass(frozen=True)
class _Script:
    """What happens to one symbol. Row numbers count that symbol's rows from 0."""

    symbol: str
    decimals: int  # tick = 10**-decimals
    best_bid_ticks: int
    start_offset_us: int
    seed: int
    whole_size_share: float  # share of sizes drawn as whole numbers
    # row -> time since the previous row (replaces the 100 ms step)
    gaps_us: dict[int, int]
    # [first, last) rows stepped at exactly 100 ms (no jitter), so ts - W lands on a row
    exact_cadence: tuple[int, int]
    # [first, last) rows that repeat the previous row's book unchanged
    flat: tuple[tuple[int, int], ...]
    # [first, last) rows where every other bid level repeats the price of the level above
    repeated_prices: tuple[int, int]
    # row -> [(side, level, field, value)], applied last; field "price"/"size"/"level"
    # ("level" with value None empties the level: price and size NULL)
    events: dict[int, list[tuple[str, int, str, float | None]]] = field(default_factory=dict)
    # [first, last) rows whose levels `from_level`..10 on `side` are missing
    missing_deep: tuple[tuple[str, int, int, int], ...] = ()
    # rows whose level-1 sizes are multiplied (large_bid / large_ask spikes)
    spikes: tuple[tuple[str, int, float], ...] = ()
    # (row, kind) with kind "crossed" (best bid 2 ticks above the best ask) or "locked"
    crossings: tuple[tuple[int, str], ...] = ()


_EMPTY = None

_SCRIPTS = (
    _Script(
        symbol="EURUSD",
        decimals=5,
        best_bid_ticks=110_000,
        start_offset_us=0,
        seed=20240304,
        whole_size_share=0.3,
        gaps_us={
            150: 4 * SECOND_US,
            200: 6 * MINUTE_US + 250_000,  # > 5 min: every window empties
            700: 10 * SECOND_US,  # the previous row is exactly at ts - 10 s: excluded
            900: 7 * MINUTE_US + 30 * SECOND_US,  # > 5 min
            1000: 5 * MINUTE_US,  # exactly ts - 5 min
            1150: 30 * SECOND_US,  # exactly ts - 30 s
            1250: 2_500_000,
            1350: MINUTE_US,  # exactly ts - 1 min
        },
        exact_cadence=(201, 900),
        flat=((300, 370), (1000, 1060)),
        repeated_prices=(600, 650),
        events={
            50: [("bid", 1, "price", _EMPTY)],  # NULL best bid price, size present
            51: [("ask", 1, "size", _EMPTY)],  # NULL best ask size, price present
            120: [("bid", 1, "level", _EMPTY)],  # level 1 bid wholly NULL
            140: [("bid", 1, "size", 0.0)],  # level-1 size 0 (not an empty level)
            141: [("ask", 1, "size", 0.0)],
            700: [("bid", 2, "size", 0.0)],  # a price with size 0 at level 2
            800: [("bid", 3, "level", _EMPTY)],  # level 3 vanishes for one row
            1250: [("ask", lvl, "level", _EMPTY) for lvl in range(1, N_LEVELS + 1)],
        },
        missing_deep=(("ask", 500, 531, 7), ("bid", 700, 706, 9)),
        spikes=(("bid", 180, 6.0), ("ask", 190, 7.0), ("bid", 1330, 5.0)),
        crossings=((160, "crossed"), (161, "locked")),
    ),
    _Script(
        symbol="ZZTEST",
        decimals=2,
        best_bid_ticks=10_000,
        start_offset_us=37_123,
        seed=4242,
        whole_size_share=0.8,
        gaps_us={  # near the EURUSD gaps, so that the two symbols stay interleaved
            150: 3 * SECOND_US,
            200: 6 * MINUTE_US + 1_500_000,  # > 5 min
            700: 10 * SECOND_US,  # exactly ts - 10 s
            900: 7 * MINUTE_US + 28 * SECOND_US,  # > 5 min
            1000: 5 * MINUTE_US,  # exactly ts - 5 min
            1150: 30 * SECOND_US,
            1350: MINUTE_US,
        },
        exact_cadence=(400, 700),
        flat=((450, 520), (1200, 1255)),
        repeated_prices=(300, 340),
        events={
            30: [("ask", 1, "price", _EMPTY)],
            31: [("bid", 1, "size", _EMPTY)],
            90: [("ask", 1, "size", 0.0)],
            600: [("ask", 2, "level", _EMPTY)],  # level 2 vanishes for one row
            880: [("bid", lvl, "level", _EMPTY) for lvl in range(1, N_LEVELS + 1)],
            1300: [("ask", 1, "level", _EMPTY), ("bid", 1, "size", 0.0)],
        },
        missing_deep=(("bid", 550, 600, 6), ("ask", 1100, 1140, 4)),
        spikes=(("ask", 130, 8.0), ("bid", 1420, 6.0)),
        crossings=((210, "locked"), (211, "crossed")),
    ),
)


def _timestamps(script: _Script, rng: np.random.Generator) -> np.ndarray:
    """Microseconds since START: 100 ms steps with +-30 ms jitter, scripted gaps."""
    steps = CADENCE_US + rng.integers(-JITTER_US, JITTER_US + 1, size=ROWS_PER_SYMBOL)
    lo, hi = script.exact_cadence
    steps[lo:hi] = CADENCE_US
    for row, gap in script.gaps_us.items():
        steps[row] = gap
    steps[0] = script.start_offset_us
    return np.cumsum(steps)


def _draw_size(rng: np.random.Generator, level: int, whole_share: float) -> float:
    """A positive size, a bit larger deeper in; whole or with two decimals."""
    size = float(rng.lognormal(mean=np.log(2.0 + 0.3 * level), sigma=0.6))
    if rng.random() < whole_share:
        return float(max(1, round(size)))
    return max(0.01, round(size, 2))


def _symbol_frame(script: _Script) -> pd.DataFrame:
    rng = np.random.default_rng(script.seed)
    n = ROWS_PER_SYMBOL
    ts_us = _timestamps(script, rng)

    # Books in integer ticks; level i-1 in column i-1.
    bid_ticks = np.zeros((n, N_LEVELS), dtype=np.int64)
    ask_ticks = np.zeros((n, N_LEVELS), dtype=np.int64)
    bid_size = np.zeros((n, N_LEVELS))
    ask_size = np.zeros((n, N_LEVELS))

    best_bid = script.best_bid_ticks
    spread = 2
    bid_gaps = np.ones(N_LEVELS - 1, dtype=np.int64)
    ask_gaps = np.ones(N_LEVELS - 1, dtype=np.int64)
    sizes_b = [_draw_size(rng, i, script.whole_size_share) for i in range(N_LEVELS)]
    sizes_a = [_draw_size(rng, i, script.whole_size_share) for i in range(N_LEVELS)]
    flat_rows = {r for lo, hi in script.flat for r in range(lo, hi)}

    for t in range(n):
        if t in flat_rows:  # the book is unchanged: e_n = 0, returns 0, no updates
            bid_ticks[t], ask_ticks[t] = bid_ticks[t - 1], ask_ticks[t - 1]
            bid_size[t], ask_size[t] = bid_size[t - 1], ask_size[t - 1]
            continue
        if t > 0 and rng.random() < 0.15:  # the mid moves by a few ticks
            best_bid += int(rng.choice([-3, -2, -1, 1, 2, 3], p=[0.1, 0.15, 0.25, 0.25, 0.15, 0.1]))
        if rng.random() < 0.1:
            spread = int(rng.choice([1, 2, 3], p=[0.5, 0.35, 0.15]))
        for gaps in (bid_gaps, ask_gaps):
            redraw = rng.random(N_LEVELS - 1) < 0.05
            gaps[redraw] = rng.choice([1, 1, 1, 2, 3], size=int(redraw.sum()))
        for sizes in (sizes_b, sizes_a):
            for i in range(N_LEVELS):
                if rng.random() < 0.3:
                    sizes[i] = _draw_size(rng, i, script.whole_size_share)

        gaps_b = bid_gaps.copy()
        lo, hi = script.repeated_prices
        if lo <= t < hi:
            gaps_b[::2] = 0  # levels 2, 4, ... repeat the price of the level above
        bid_ticks[t] = best_bid - np.concatenate([[0], np.cumsum(gaps_b)])
        ask_ticks[t] = best_bid + spread + np.concatenate([[0], np.cumsum(ask_gaps)])
        bid_size[t] = sizes_b
        ask_size[t] = sizes_a

    for row, kind in script.crossings:
        # crossed: the best ask 2 ticks below the best bid; locked: equal to it
        target = bid_ticks[row, 0] - {"crossed": 2, "locked": 0}[kind]
        ask_ticks[row] += target - ask_ticks[row, 0]

    for side, row, factor in script.spikes:
        sizes = bid_size if side == "bid" else ask_size
        sizes[row, 0] = round(sizes[row, 0] * factor, 2)

    scale = float(10**script.decimals)
    bid_price = bid_ticks / scale  # exactly the float nearest to k * tick
    ask_price = ask_ticks / scale

    for side, lo, hi, from_level in script.missing_deep:
        price, size = (bid_price, bid_size) if side == "bid" else (ask_price, ask_size)
        price[lo:hi, from_level - 1 :] = np.nan
        size[lo:hi, from_level - 1 :] = np.nan

    for row, changes in script.events.items():
        for side, level, what, value in changes:
            price, size = (bid_price, bid_size) if side == "bid" else (ask_price, ask_size)
            v = np.nan if value is None else value
            if what in ("price", "level"):
                price[row, level - 1] = v
            if what in ("size", "level"):
                size[row, level - 1] = v

    data: dict[str, object] = {
        "symbol": script.symbol,
        "ts": (START + pd.to_timedelta(ts_us, unit="us")).as_unit("us"),
    }
    for name, matrix in (
        ("bid_price", bid_price),
        ("bid_size", bid_size),
        ("ask_price", ask_price),
        ("ask_size", ask_size),
    ):
        for i in range(N_LEVELS):
            data[f"{name}_{i + 1}"] = matrix[:, i]
    return pd.DataFrame(data)


def window_edge_snapshots() -> pd.DataFrame:
    """Two symbols, ~1,500 rows each, interleaved in time (sorted by ts, then symbol).

    Per symbol: 100 ms cadence with +-30 ms jitter and a stretch of exact 100 ms steps (so
    ts - W falls exactly on an earlier row); gaps of several minutes (two or more longer
    than 5 minutes), of a few seconds and of exactly 10 s, 30 s, 1 min or 5 min; flat
    stretches of 50+ unchanged books; repeated prices across levels; missing deep levels
    (a level vanishes and reappears); rows with a NULL level-1 price or size, level-1 size
    0, a size-0 level with a price, a wholly empty side, a crossed and a locked book;
    large level-1 size spikes; mid moves of one to three ticks. Sizes mix whole numbers
    and two-decimal values.

    Columns are exactly `symbol`, `ts` (UTC, microseconds) and the 40 level columns
    (float64, NaN = NULL).
    """
    frames = [_symbol_frame(script) for script in _SCRIPTS]
    frame = pd.concat(frames, ignore_index=True)
    frame = frame.sort_values(["ts", "symbol"], kind="mergesort").reset_index(drop=True)
    frame = frame[list(INPUT_COLUMNS)]
    level_cols = list(INPUT_COLUMNS[2:])
    frame[level_cols] = frame[level_cols].astype("float64")
    return frame


def _sticky_sizes(rng: np.random.Generator, n: int) -> np.ndarray:
    """(n, 10) two-decimal sizes; about half repeat the row above (same column)."""
    fresh = np.round(rng.lognormal(np.log(2.0), 0.6, size=(n, N_LEVELS)), 2) + 0.01
    keep = rng.random((n, N_LEVELS)) < 0.5
    keep[0] = False
    last_fresh = np.maximum.accumulate(np.where(~keep, np.arange(n)[:, None], 0), axis=0)
    return np.take_along_axis(fresh, last_fresh, axis=0)


def synthetic_snapshots(
    n_rows: int,
    symbols: tuple[str, ...] = ("EURUSD", "GBPUSD", "AUDUSD", "ZZTEST"),
    seed: int = 0,
) -> pd.DataFrame:
    """A large random snapshot table for timing the oracles (vectorised, deterministic).

    The rows are split evenly over `symbols` (tick 0.00001 around 1.1 for every symbol),
    100 ms +-30 ms cadence, a random-walk best bid, spreads of 1-3 ticks, levels 1-2 ticks
    apart, two-decimal sizes of which about half keep their previous value, and a few
    missing deep levels and NULL level-1 prices. Interleaved in time, like a feed.
    """
    rng = np.random.default_rng(seed)
    frames = []
    for k, symbol in enumerate(symbols):
        n = n_rows // len(symbols) + (1 if k < n_rows % len(symbols) else 0)
        steps = CADENCE_US + rng.integers(-JITTER_US, JITTER_US + 1, size=n)
        ts_us = np.cumsum(steps) + k * 7_919
        moves = np.where(rng.random(n) < 0.15, rng.choice([-2, -1, 1, 2], size=n), 0)
        best_bid = 110_000 + np.cumsum(moves)
        spread = rng.choice([1, 2, 3], size=n, p=[0.5, 0.35, 0.15])
        bid_ticks = best_bid[:, None] - np.cumsum(
            np.hstack([np.zeros((n, 1), dtype=np.int64), rng.integers(1, 3, (n, 9))]), axis=1
        )
        ask_ticks = (best_bid + spread)[:, None] + np.cumsum(
            np.hstack([np.zeros((n, 1), dtype=np.int64), rng.integers(1, 3, (n, 9))]), axis=1
        )

        bid_price, ask_price = bid_ticks / 1e5, ask_ticks / 1e5
        bid_size, ask_size = _sticky_sizes(rng, n), _sticky_sizes(rng, n)
        deep = rng.random(n) < 0.005
        bid_price[deep, 6:] = np.nan
        bid_size[deep, 6:] = np.nan
        bad = rng.random(n) < 0.0005
        ask_price[bad, 0] = np.nan

        data: dict[str, object] = {
            "symbol": symbol,
            "ts": (START + pd.to_timedelta(ts_us, unit="us")).as_unit("us"),
        }
        for name, matrix in (
            ("bid_price", bid_price),
            ("bid_size", bid_size),
            ("ask_price", ask_price),
            ("ask_size", ask_size),
        ):
            for i in range(N_LEVELS):
                data[f"{name}_{i + 1}"] = matrix[:, i]
        frames.append(pd.DataFrame(data))
    frame = pd.concat(frames, ignore_index=True)
    frame = frame.sort_values(["ts", "symbol"], kind="mergesort").reset_index(drop=True)
    return frame[list(INPUT_COLUMNS)]
