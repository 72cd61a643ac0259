"""Deterministic, realistic SAMPLE market data: L2 order-book snapshots and M1 OHLCV bars.

Everything here is driven by numpy's ``default_rng``. Each symbol gets its own generator whose
seed is derived from ``(seed, stream, symbol)`` -- the symbol enters through its UTF-8 bytes, never
through Python's randomised ``hash()`` -- so a symbol's rows are identical whatever other symbols
are generated alongside it. Random numbers are drawn in fixed-size blocks of steps, so a shorter
run yields a prefix of a longer run with the same seed, start and cadence.

L2 snapshots (rows in :data:`tickfeatures.schema.L2_COLUMNS` order):

* the best bid follows a random walk on the symbol's tick grid, with the spread usually 1-3 ticks;
* 10 levels per side, each one or more ticks further out than the previous one;
* sizes are lognormal, scaled from the symbol's ``impact_order_size`` and a bit larger deeper in;
* timestamps every ``cadence_ms`` with +-30 % jitter (around ``start + 0.3 * cadence +
  i * cadence``, so never before ``start``), plus occasional gaps of 2-30 s;
* anomalies a feature engine must cope with: missing deep levels (price and size ``None``),
  zero level-1 sizes, crossed or locked books, and repeated timestamps (half of them exact
  duplicates of the previous row, half a different book).

M1 bars (rows in :data:`tickfeatures.schema.BAR_COLUMNS` order) follow the FX trading week: no
bars from Friday 22:00 UTC to Sunday 22:00 UTC, and an intraday activity profile (busy London
and New York, quiet around the 21:00-22:00 roll) that scales each minute's volatility, volume
and tick count up and its average spread down. Each bar has an average spread (price units, a
tenth of a tick's precision) and a tick count of at least 1.

Prices are computed from integer tick counts and are exactly the float nearest to
``k * tick_size`` written with the tick's decimals, so CSV output shows e.g. ``1.08512``.
"""

from __future__ import annotations

import csv
import gzip
import heapq
import io
import math
import operator
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from itertools import repeat
from pathlib import Path

import numpy as np

from tickfeatures.schema import LEVELS

__all__ = [
    "DEFAULT_ASSET_CLASS",
    "DEFAULT_IMPACT_ORDER_SIZE",
    "DEFAULT_TICK_SIZE",
    "SymbolSpec",
    "default_spec",
    "fx_pairs",
    "generate_bars",
    "generate_l2",
    "load_symbols",
    "resolve_symbols",
    "write_csv",
]

DEFAULT_TICK_SIZE = 0.00001
DEFAULT_IMPACT_ORDER_SIZE = 1.0
DEFAULT_ASSET_CLASS = "unknown"

# ---------------------------------------------------------------------------------------------
# Tunables. Probabilities are per snapshot (row) unless noted otherwise.
# ---------------------------------------------------------------------------------------------
_BLOCK = 50_000  # steps (L2) or calendar minutes (bars) drawn per block
_EMIT_SLICE = 4_096  # rows converted to Python objects at a time
_GZIP_LEVEL = 3  # ~25 % of the raw size at a fraction of level 9's cost
_STREAM_L2 = 1
_STREAM_BARS = 2
_STREAM_START = 3

_P_MOVE = 0.15  # probability that the best bid moves at a step (when volatility allows)
_SPREAD_TICKS = np.array([1, 2, 3, 4, 5])
_SPREAD_PROBS = np.array([0.50, 0.30, 0.14, 0.04, 0.02])
_LEVEL_GAP_LAMBDA = 0.3  # extra ticks between adjacent levels ~ Poisson(0.3)
_SIZE_SIGMA = 0.6  # lognormal sigma of level sizes
_SIZE_DEPTH_SLOPE = 0.12  # level i mean size = base * (1 + slope * (i - 1))
_JITTER_FRACTION = 0.3  # +-30 % of the cadence; < 0.5 keeps timestamps monotonic
_P_GAP = 0.001  # per step
_GAP_MIN_US = 2_000_000
_GAP_MAX_US = 30_000_000
_P_MISSING = 0.005  # deepest levels (from 6..10 on) of one side missing
_FIRST_MISSING_LEVEL = 6
_P_ZERO_SIZE = 0.0001  # one side's level-1 size is 0.0
_P_CROSSED = 0.0005  # best bid >= best ask
_P_REPEAT_TS = 0.0005  # same timestamp as the previous snapshot of the symbol
_P_EXACT_DUPLICATE = 0.5  # share of the repeats that copy the previous row exactly
_MIN_BID_TICKS = 200  # floor for the best bid's random walk

_MINUTE_US = 60_000_000
_DAY_MINUTES = 1440
_WEEK_CLOSE_MINUTE = 4 * _DAY_MINUTES + 22 * 60  # Friday 22:00, minutes since Monday 00:00
_WEEK_OPEN_MINUTE = 6 * _DAY_MINUTES + 22 * 60  # Sunday 22:00
_BAR_VOLUME_MEDIAN = 90.0
_BAR_VOLUME_SIGMA = 0.5
_BAR_TICKS_MEDIAN = 60.0  # price updates a minute at an ordinary hour
_BAR_SPREAD_TICKS = 8.0  # average spread at an ordinary hour, in ticks (0.8 pip for EURUSD)
_BAR_SPREAD_SIGMA = 0.25

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class SymbolSpec:
    """Reference data of one symbol (a row of ``seeds/symbols.csv``)."""

    symbol: str
    tick_size: float
    impact_order_size: float
    asset_class: str


@dataclass(frozen=True)
class _Profile:
    """Per-asset-class generation parameters."""

    start_price: float
    daily_vol: float  # relative, one standard deviation per 24 h
    size_decimals: int


_PROFILES: dict[str, _Profile] = {
    "fx": _Profile(start_price=1.1, daily_vol=0.006, size_decimals=2),
    "crypto": _Profile(start_price=60_000.0, daily_vol=0.03, size_decimals=4),
    "future": _Profile(start_price=5_000.0, daily_vol=0.012, size_decimals=0),
}
_UNKNOWN_PROFILE = _Profile(start_price=1.0, daily_vol=0.01, size_decimals=2)

# Plausible levels for a few well-known symbols; anything else starts from its class's level.
_KNOWN_START_PRICES: dict[str, float] = {
    "EURUSD": 1.085,
    "GBPUSD": 1.27,
    "AUDUSD": 0.66,
    "NZDUSD": 0.60,
    "USDCHF": 0.88,
    "USDCAD": 1.36,
    "USDJPY": 150.0,
    "EURJPY": 162.0,
    "GBPJPY": 190.0,
    "EURGBP": 0.85,
    "EURAUD": 1.65,
    "EURNZD": 1.80,
    "EURCAD": 1.47,
    "EURCHF": 0.95,
    "GBPAUD": 1.93,
    "GBPNZD": 2.12,
    "GBPCAD": 1.73,
    "GBPCHF": 1.12,
    "AUDNZD": 1.09,
    "AUDCAD": 0.89,
    "AUDCHF": 0.58,
    "AUDJPY": 99.0,
    "NZDCAD": 0.82,
    "NZDCHF": 0.53,
    "NZDJPY": 90.0,
    "CADCHF": 0.65,
    "CADJPY": 110.0,
    "CHFJPY": 170.0,
    "BTCUSD": 60_000.0,
    "ETHUSD": 3_000.0,
}


# ---------------------------------------------------------------------------------------------
# Symbols
# ---------------------------------------------------------------------------------------------
def load_symbols(path: Path | str) -> dict[str, SymbolSpec]:
    """Read ``symbol,tick_size,impact_order_size,asset_class`` rows into specs keyed by symbol."""
    specs: dict[str, SymbolSpec] = {}
    with open(path, newline="", encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            symbol = row["symbol"].strip()
            if not symbol:
                continue
            specs[symbol] = SymbolSpec(
                symbol=symbol,
                tick_size=float(row["tick_size"]),
                impact_order_size=float(row["impact_order_size"]),
                asset_class=(row.get("asset_class") or DEFAULT_ASSET_CLASS).strip(),
            )
    return specs


def default_spec(symbol: str) -> SymbolSpec:
    """Spec used for a symbol that is not in the reference data."""
    return SymbolSpec(symbol, DEFAULT_TICK_SIZE, DEFAULT_IMPACT_ORDER_SIZE, DEFAULT_ASSET_CLASS)


# The 28 pairs of the eight major currencies (the old system's universe, seeds/004_*), the
# most traded first.
FX_PAIRS: tuple[str, ...] = (
    *("EURUSD", "GBPUSD", "AUDUSD", "NZDUSD", "USDCAD", "USDCHF", "USDJPY"),
    *("EURGBP", "EURAUD", "EURNZD", "EURCAD", "EURCHF", "EURJPY"),
    *("GBPAUD", "GBPNZD", "GBPCAD", "GBPCHF", "GBPJPY"),
    *("AUDNZD", "AUDCAD", "AUDCHF", "AUDJPY", "NZDCAD", "NZDCHF", "NZDJPY"),
    *("CADCHF", "CADJPY", "CHFJPY"),
)


def fx_pairs(n: int, known: dict[str, SymbolSpec]) -> list[SymbolSpec]:
    """The first ``n`` of :data:`FX_PAIRS` (then ``FX029``, ``FX030``, ... priced like a
    dollar pair): the reference data's spec where it has one, else an FX spec with a tick of
    0.001 for yen pairs and 0.00001 for the others."""
    if n < 1:
        raise ValueError(f"the number of pairs must be at least 1, got {n}")
    names = [*FX_PAIRS[:n], *(f"FX{i:03d}" for i in range(len(FX_PAIRS) + 1, n + 1))]
    return [
        known.get(name) or SymbolSpec(name, 0.001 if name.endswith("JPY") else 0.00001, 5.0, "fx")
        for name in names
    ]


def resolve_symbols(names: Iterable[str], known: dict[str, SymbolSpec]) -> list[SymbolSpec]:
    """Specs for ``names`` in the given order; unknown names get :func:`default_spec`."""
    return [known.get(name) or default_spec(name) for name in names]


# ---------------------------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------------------------
def _symbol_entropy(symbol: str) -> int:
    """Stable, collision-free integer for a symbol (its UTF-8 bytes, big-endian)."""
    return int.from_bytes(b"\x01" + symbol.encode("utf-8"), "big")


def _rng(seed: int, stream: int, symbol: str) -> np.random.Generator:
    return np.random.default_rng([seed % 2**64, stream, _symbol_entropy(symbol)])


def _tick_grid(tick_size: float) -> tuple[int, int]:
    """``(decimals, tick_units)`` such that ``tick_size == tick_units / 10**decimals``."""
    if not (tick_size > 0 and math.isfinite(tick_size)):
        raise ValueError(f"tick_size must be a positive finite number, got {tick_size!r}")
    exponent = Decimal(repr(tick_size)).normalize().as_tuple().exponent
    decimals = max(0, -int(exponent))
    return decimals, round(tick_size * 10**decimals)


def _prices(ticks: np.ndarray, tick_units: int, decimals: int) -> np.ndarray:
    """Float prices nearest to ``ticks * tick_size`` (exact integer product, one division)."""
    return ticks.astype(np.float64) * float(tick_units) / float(10**decimals)


def _profile(spec: SymbolSpec) -> _Profile:
    return _PROFILES.get(spec.asset_class.lower(), _UNKNOWN_PROFILE)


def _start_ticks(spec: SymbolSpec, tick_size: float) -> int:
    """Initial price in ticks: a known level, or the class level jittered by the symbol hash."""
    price = _KNOWN_START_PRICES.get(spec.symbol.upper())
    if price is None:
        if spec.asset_class.lower() == "fx" and "JPY" in spec.symbol.upper():
            base = 150.0
        elif spec.asset_class.lower() in _PROFILES:
            base = _PROFILES[spec.asset_class.lower()].start_price
        else:
            base = max(1.0, 10_000 * tick_size)
        # Seed-independent jitter of +-10 % so different symbols do not sit on the same level.
        u = _rng(0, _STREAM_START, spec.symbol).random()
        price = base * (0.9 + 0.2 * u)
    return max(_MIN_BID_TICKS * 5, round(price / tick_size))


def _utc_us(value: datetime) -> int:
    """Microseconds since the Unix epoch; naive datetimes are taken as UTC."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    delta = value - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def _datetimes(us: np.ndarray) -> list[datetime]:
    """Timezone-aware UTC datetimes for epoch microseconds."""
    return [_EPOCH + timedelta(microseconds=x) for x in us.tolist()]


def _merge(streams: list[Iterator[tuple]]) -> Iterator[tuple]:
    """Merge per-symbol streams (each sorted by ts) into one sorted by (ts, symbol)."""
    if len(streams) == 1:
        return streams[0]
    return heapq.merge(*streams, key=operator.itemgetter(1, 0))


def _unique_specs(symbols: Sequence[SymbolSpec]) -> list[SymbolSpec]:
    seen: dict[str, SymbolSpec] = {}
    for spec in symbols:
        seen.setdefault(spec.symbol, spec)
    return list(seen.values())


# ---------------------------------------------------------------------------------------------
# L2 snapshots
# ---------------------------------------------------------------------------------------------
def _move_params(spec: SymbolSpec, start_ticks: int, cadence_ms: int) -> tuple[float, float]:
    """``(p_move, poisson_lambda)`` so that moves of ``sign * (1 + Poisson)`` ticks with
    probability ``p_move`` give the class's daily volatility."""
    steps_per_day = 86_400_000 / cadence_ms
    sigma_ticks = start_ticks * _profile(spec).daily_vol / math.sqrt(steps_per_day)
    var = sigma_ticks**2
    p_move = min(_P_MOVE, var)
    ratio = var / p_move  # E[mag**2] = lam + (1 + lam)**2 = lam**2 + 3 lam + 1
    lam = max(0.0, (-3.0 + math.sqrt(max(0.0, 5.0 + 4.0 * ratio))) / 2.0)
    return p_move, lam


class _L2Walker:
    """State of one symbol's book simulation; :meth:`block` draws the next ``_BLOCK`` steps."""

    def __init__(self, spec: SymbolSpec, seed: int, cadence_ms: int) -> None:
        self.rng = _rng(seed, _STREAM_L2, spec.symbol)
        self.decimals, self.tick_units = _tick_grid(spec.tick_size)
        self.size_decimals = _profile(spec).size_decimals
        self.min_size = 10.0**-self.size_decimals
        size_scale = spec.impact_order_size / 3.0 * (1.0 + _SIZE_DEPTH_SLOPE * np.arange(LEVELS))
        self.size_mu = np.log(size_scale) - _SIZE_SIGMA**2 / 2.0
        start_ticks = _start_ticks(spec, spec.tick_size)
        self.p_move, self.lam = _move_params(spec, start_ticks, cadence_ms)
        self.cadence_us = cadence_ms * 1000
        self.jitter_us = int(self.cadence_us * _JITTER_FRACTION)
        self.best_bid = start_ticks
        self.gap_total = 0
        self.step0 = 0
        self.prev_ts: int | None = None
        self.prev_book: np.ndarray | None = None

    def block(self) -> tuple[np.ndarray, np.ndarray]:
        """``(ts, book)``: int64 microseconds since start and an ``(n, 40)`` float array in
        L2 level-column order with NaN for missing levels."""
        rng, n = self.rng, _BLOCK
        # Draws: fixed order and fixed sizes per block (determinism and prefix stability).
        moving = rng.random(n) < self.p_move
        sign = rng.integers(0, 2, n) * 2 - 1
        magnitude = 1 + rng.poisson(self.lam, n)
        spread = rng.choice(_SPREAD_TICKS, size=n, p=_SPREAD_PROBS)
        bid_gaps = 1 + rng.poisson(_LEVEL_GAP_LAMBDA, (n, LEVELS - 1))
        ask_gaps = 1 + rng.poisson(_LEVEL_GAP_LAMBDA, (n, LEVELS - 1))
        bid_sizes = rng.lognormal(self.size_mu, _SIZE_SIGMA, (n, LEVELS))
        ask_sizes = rng.lognormal(self.size_mu, _SIZE_SIGMA, (n, LEVELS))
        jitter = rng.integers(0, 2 * self.jitter_us + 1, n)  # around step + jitter_us
        is_gap = rng.random(n) < _P_GAP
        gap_len = rng.integers(_GAP_MIN_US, _GAP_MAX_US + 1, n)
        is_missing = rng.random(n) < _P_MISSING
        missing_side = rng.integers(0, 2, n)
        first_missing = rng.integers(_FIRST_MISSING_LEVEL, LEVELS + 1, n)
        is_zero = rng.random(n) < _P_ZERO_SIZE
        zero_side = rng.integers(0, 2, n)
        is_crossed = rng.random(n) < _P_CROSSED
        cross_extra = rng.integers(0, 3, n)  # 0 => locked, else crossed by that many ticks
        is_repeat = rng.random(n) < _P_REPEAT_TS
        is_exact = rng.random(n) < _P_EXACT_DUPLICATE

        # Prices in ticks: best bid random walk, spread, strictly monotone deeper levels.
        steps = np.where(moving, sign * magnitude, 0)
        bids = np.maximum(self.best_bid + np.cumsum(steps), _MIN_BID_TICKS)
        self.best_bid = int(bids[-1])
        asks = bids + spread - np.where(is_crossed, spread + cross_extra, 0)
        bid_ticks = np.empty((n, LEVELS), dtype=np.int64)
        ask_ticks = np.empty((n, LEVELS), dtype=np.int64)
        bid_ticks[:, 0] = bids
        ask_ticks[:, 0] = asks
        bid_ticks[:, 1:] = bids[:, None] - np.cumsum(bid_gaps, axis=1)
        ask_ticks[:, 1:] = asks[:, None] + np.cumsum(ask_gaps, axis=1)

        book = np.empty((n, 4 * LEVELS), dtype=np.float64)
        bid_px, bid_sz, ask_px, ask_sz = (book[:, k * LEVELS : (k + 1) * LEVELS] for k in range(4))
        bid_px[:] = _prices(bid_ticks, self.tick_units, self.decimals)
        ask_px[:] = _prices(ask_ticks, self.tick_units, self.decimals)
        bid_sz[:] = np.maximum(np.round(bid_sizes, self.size_decimals), self.min_size)
        ask_sz[:] = np.maximum(np.round(ask_sizes, self.size_decimals), self.min_size)

        # Anomalies: zero level-1 size, missing deepest levels on one side.
        bid_sz[is_zero & (zero_side == 0), 0] = 0.0
        ask_sz[is_zero & (zero_side == 1), 0] = 0.0
        levels = np.arange(LEVELS)
        missing = is_missing[:, None] & (levels[None, :] >= (first_missing - 1)[:, None])
        bid_missing = missing & (missing_side == 0)[:, None]
        ask_missing = missing & (missing_side == 1)[:, None]
        bid_px[bid_missing] = np.nan
        bid_sz[bid_missing] = np.nan
        ask_px[ask_missing] = np.nan
        ask_sz[ask_missing] = np.nan

        # Timestamps relative to start: grid + jitter + accumulated gaps.
        gap_cum = self.gap_total + np.cumsum(np.where(is_gap, gap_len, 0))
        self.gap_total = int(gap_cum[-1])
        ts = (self.step0 + np.arange(n, dtype=np.int64)) * self.cadence_us + gap_cum + jitter
        self.step0 += n

        # Repeated timestamps, half of them exact duplicates of the previous snapshot.
        for i in np.flatnonzero(is_repeat).tolist():
            if i > 0:
                ts[i] = ts[i - 1]
                if is_exact[i]:
                    book[i] = book[i - 1]
            elif self.prev_ts is not None and self.prev_book is not None:
                ts[0] = self.prev_ts
                if is_exact[0]:
                    book[0] = self.prev_book
        self.prev_ts = int(ts[-1])
        self.prev_book = book[-1].copy()
        return ts, book


def _l2_symbol(
    spec: SymbolSpec, start_us: int, duration_us: int, seed: int, cadence_ms: int
) -> Iterator[tuple]:
    """One symbol's snapshots in ``[start, start + duration)``, sorted by ts."""
    if duration_us <= 0:
        return
    walker = _L2Walker(spec, seed, cadence_ms)
    while True:
        ts, book = walker.block()
        done = bool(ts[-1] >= duration_us)
        if done:
            keep = int(np.searchsorted(ts, duration_us, side="left"))
            ts, book = ts[:keep], book[:keep]
        yield from _l2_tuples(spec.symbol, ts + start_us, book)
        if done:
            return


def _l2_tuples(symbol: str, ts_us: np.ndarray, book: np.ndarray) -> Iterator[tuple]:
    """Python row tuples, converted a slice at a time to bound memory."""
    for lo in range(0, len(ts_us), _EMIT_SLICE):
        part = book[lo : lo + _EMIT_SLICE]
        columns = part.T.tolist()
        for row, col in np.argwhere(np.isnan(part)).tolist():
            columns[col][row] = None
        times = _datetimes(ts_us[lo : lo + _EMIT_SLICE])
        yield from zip(repeat(symbol), times, *columns, strict=False)


def generate_l2(
    symbols: Sequence[SymbolSpec],
    start: datetime,
    duration: timedelta,
    seed: int = 42,
    cadence_ms: int = 100,
) -> Iterator[tuple]:
    """Rows in L2_COLUMNS order, sorted by (ts, symbol) i.e. symbols interleaved in time.

    Each row is ``(symbol, ts, bid_price_1..10, bid_size_1..10, ask_price_1..10,
    ask_size_1..10)`` with ``ts`` a UTC-aware datetime in ``[start, start + duration)`` and
    prices/sizes Python floats, or ``None`` for a missing level. ``start`` may be naive (taken
    as UTC). Duplicate specs (same symbol) are generated once.
    """
    if cadence_ms <= 0:
        raise ValueError(f"cadence_ms must be positive, got {cadence_ms}")
    start_us = _utc_us(start)
    duration_us = duration // timedelta(microseconds=1)
    streams = [
        _l2_symbol(spec, start_us, duration_us, seed, cadence_ms) for spec in _unique_specs(symbols)
    ]
    if not streams:
        return iter(())
    return _merge(streams)


# ---------------------------------------------------------------------------------------------
# M1 bars
# ---------------------------------------------------------------------------------------------
def _fx_market_open(minutes: np.ndarray) -> np.ndarray:
    """True for epoch minutes outside the FX weekend (Friday 22:00 - Sunday 22:00 UTC)."""
    days = minutes // _DAY_MINUTES
    weekday = (days + 3) % 7  # 1970-01-01 was a Thursday; Monday = 0
    week_minute = weekday * _DAY_MINUTES + minutes % _DAY_MINUTES
    return (week_minute < _WEEK_CLOSE_MINUTE) | (week_minute >= _WEEK_OPEN_MINUTE)


def _volume_factor(minutes: np.ndarray) -> np.ndarray:
    """Rough intraday activity profile (UTC): busy London/New York, quiet around the roll."""
    hour = (minutes % _DAY_MINUTES) // 60
    factor = np.ones(minutes.shape, dtype=np.float64)
    factor[(hour >= 7) & (hour < 17)] = 1.8
    factor[(hour >= 12) & (hour < 16)] = 2.4
    factor[hour >= 21] = 0.5
    return factor


def _bars_symbol(spec: SymbolSpec, first_min: int, end_min: int, seed: int) -> Iterator[tuple]:
    """One symbol's M1 bars for epoch minutes ``[first_min, end_min)``, market hours only."""
    rng = _rng(seed, _STREAM_BARS, spec.symbol)
    decimals, tick_units = _tick_grid(spec.tick_size)
    start_ticks = _start_ticks(spec, spec.tick_size)
    sigma = max(0.5, start_ticks * _profile(spec).daily_vol / math.sqrt(_DAY_MINUTES))
    symbol = spec.symbol
    n = _BLOCK
    close = start_ticks
    prev_minute: int | None = None

    for block_start in range(first_min, end_min, n):
        minutes = np.arange(block_start, block_start + n, dtype=np.int64)
        body_draw = rng.normal(0.0, sigma, n)
        small_gap = np.rint(rng.normal(0.0, 0.3, n)).astype(np.int64)
        weekend_gap = np.rint(rng.normal(0.0, 2.0 * sigma, n)).astype(np.int64)
        wick_up_draw = rng.exponential(0.5 * sigma, n)
        wick_down_draw = rng.exponential(0.5 * sigma, n)
        volume = rng.lognormal(math.log(_BAR_VOLUME_MEDIAN), _BAR_VOLUME_SIGMA, n)
        activity = _volume_factor(minutes)
        # busy minutes move more, trade more and quote tighter
        calm = np.sqrt(activity)
        body = np.rint(body_draw * calm).astype(np.int64)
        wick_up = np.floor(wick_up_draw * calm).astype(np.int64)
        wick_down = np.floor(wick_down_draw * calm).astype(np.int64)
        ticks = np.maximum(
            1, rng.poisson(_BAR_TICKS_MEDIAN * activity * np.sqrt(volume / _BAR_VOLUME_MEDIAN))
        )
        spread_ticks = _BAR_SPREAD_TICKS / calm * rng.lognormal(0.0, _BAR_SPREAD_SIGMA, n)

        keep = _fx_market_open(minutes) & (minutes < end_min)
        minutes = minutes[keep]
        if not len(minutes):
            continue
        body, small_gap, weekend_gap = body[keep], small_gap[keep], weekend_gap[keep]
        wick_up, wick_down, volume = wick_up[keep], wick_down[keep], volume[keep]
        ticks, spread_ticks, activity = ticks[keep], spread_ticks[keep], activity[keep]

        previous = np.empty_like(minutes)
        previous[1:] = minutes[:-1]
        previous[0] = minutes[0] - 1 if prev_minute is None else prev_minute
        after_break = (minutes - previous) > 1
        gap = np.where(after_break, weekend_gap, small_gap)
        if prev_minute is None:
            gap[0] = 0
        prev_minute = int(minutes[-1])

        closes = close + np.cumsum(gap + body)
        close = int(closes[-1])
        opens = closes - body
        highs = np.maximum(opens, closes) + wick_up
        lows = np.minimum(opens, closes) - wick_down
        # A monotone floor keeps every OHLC ordering intact.
        floor = _MIN_BID_TICKS
        ohlc = [np.maximum(a, floor) for a in (opens, highs, lows, closes)]
        prices = [_prices(a, tick_units, decimals).tolist() for a in ohlc]
        volumes = np.maximum(1.0, np.rint(volume * activity)).tolist()
        spreads = np.round(spread_ticks * spec.tick_size, decimals + 1).tolist()
        yield from zip(
            repeat(symbol),
            _datetimes(minutes * _MINUTE_US),
            *prices,
            volumes,
            spreads,
            ticks.tolist(),
            strict=False,
        )


def generate_bars(
    symbols: Sequence[SymbolSpec], start: datetime, end: datetime, seed: int = 42
) -> Iterator[tuple]:
    """M1 OHLCV rows in BAR_COLUMNS order, sorted by (ts, symbol).

    ``ts`` is the bar's open time (UTC, whole minutes) in ``[start, end)``; the first bar is at
    ``start`` rounded up to the minute. No bars from Friday 22:00 to Sunday 22:00 UTC. Volumes
    are positive integer-valued floats, spreads positive floats in price units, ticks positive
    ints.
    """
    start_us, end_us = _utc_us(start), _utc_us(end)
    first_min = -(-start_us // _MINUTE_US)
    end_min = -(-end_us // _MINUTE_US)
    streams = [_bars_symbol(spec, first_min, end_min, seed) for spec in _unique_specs(symbols)]
    if not streams or end_min <= first_min:
        return iter(())
    return _merge(streams)


# ---------------------------------------------------------------------------------------------
# CSV
# ---------------------------------------------------------------------------------------------
def write_csv(rows: Iterable[tuple], columns: Sequence[str], path: Path) -> int:
    """Write a header + rows as CSV; gzip when path ends with .gz. Returns the number of data rows.

    Datetimes are written ISO-8601 with microseconds (``2026-01-05T09:00:00.123456+00:00``),
    ``None`` as an empty field and floats via ``repr`` (shortest exact round-trip). The gzip
    header carries no timestamp, so equal rows give byte-identical files.
    """
    path = Path(path)
    width = len(columns)
    count = 0
    if path.name.endswith(".gz"):
        raw = open(path, "wb")
        binary: io.BufferedIOBase = gzip.GzipFile(
            filename="", mode="wb", fileobj=raw, compresslevel=_GZIP_LEVEL, mtime=0
        )
    else:
        raw = None
        binary = open(path, "wb")
    try:
        with io.TextIOWrapper(binary, encoding="utf-8", newline="") as text:
            writer = csv.writer(text, lineterminator="\n")
            writer.writerow(columns)
            time_cols: list[int] | None = None
            for row in rows:
                if len(row) != width:
                    raise ValueError(f"row {count + 1} has {len(row)} values, expected {width}")
                if time_cols is None:
                    time_cols = [i for i, v in enumerate(row) if isinstance(v, datetime)]
                if time_cols:
                    values = list(row)
                    for i in time_cols:
                        v = values[i]
                        if isinstance(v, datetime):
                            values[i] = v.isoformat(timespec="microseconds")
                    writer.writerow(values)
                else:
                    writer.writerow(row)
                count += 1
    finally:
        if raw is not None:
            raw.close()
    return count
