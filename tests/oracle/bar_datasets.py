"""One-minute bar datasets for the bar-family tests (FEATURE_DEFINITIONS section K), with the
edge cases issue 14 names: weekend gaps and missing minutes, flat stretches (O = H = L = C for
many bars), H = L bars, zero and NULL volume, NULL spread and ticks, a symbol with fewer bars
than the longest window, prices at very different scales (0.65, 1.08, 150.2) and repeated
closes. Deterministic for a seed; columns as market.bars_1m (NaN where NULL)."""

from __future__ import annotations

import zlib

import numpy as np
import pandas as pd

COLUMNS = ["symbol", "ts", "open", "high", "low", "close", "volume", "spread", "ticks"]

# symbol -> (price level, tick size, number of bars)
SCALES: dict[str, tuple[float, float, int]] = {
    "EURUSD": (1.08, 1e-5, 3200),
    "USDJPY": (150.2, 1e-3, 2600),
    "NZDUSD": (0.65, 1e-5, 2000),
    "SHORTFX": (1.27, 1e-5, 40),
}


def _minutes(rng: np.random.Generator, n: int, start: pd.Timestamp) -> pd.DatetimeIndex:
    """n bar open times from `start`: mostly consecutive, some missing minutes, a weekend gap
    (Friday 21:00 to Sunday 21:00 UTC) and one longer halt."""
    out = []
    t = start
    while len(out) < n:
        if (
            (t.day_of_week == 4 and t.hour >= 21)
            or t.day_of_week == 5
            or (t.day_of_week == 6 and t.hour < 21)
        ):
            t += pd.Timedelta(minutes=1)
            continue
        out.append(t)
        step = 1
        u = rng.random()
        if u < 0.03:
            step += int(rng.integers(1, 4))  # a few missing minutes
        elif u < 0.032:
            step += int(rng.integers(6, 40))  # a gap of more than 5 minutes
        t += pd.Timedelta(minutes=step)
    return pd.DatetimeIndex(out)


def symbol_bars(
    symbol: str, seed: int = 7, n: int | None = None, start: str = "2024-03-07 18:00"
) -> pd.DataFrame:
    level, tick, default_n = SCALES[symbol]
    n = default_n if n is None else n
    rng = np.random.default_rng([seed, zlib.crc32(symbol.encode())])
    ts = _minutes(rng, n, pd.Timestamp(start, tz="UTC"))
    steps = rng.standard_t(4, size=n) * 0.00012 * level
    close = level + np.cumsum(steps)
    close = np.round(close / tick) * tick
    # repeated closes: stretches where the close does not move
    for s in rng.integers(0, max(n - 12, 1), size=max(1, n // 400)):
        close[s : s + int(rng.integers(3, 12))] = close[s]
    open_ = np.empty(n)
    open_[0] = close[0]
    open_[1:] = close[:-1]
    wick = np.abs(rng.normal(0, 0.00008 * level, size=(2, n)))
    high = np.round((np.maximum(open_, close) + wick[0]) / tick) * tick
    low = np.round((np.minimum(open_, close) - wick[1]) / tick) * tick
    volume = rng.integers(1, 400, size=n).astype(float)
    spread = np.round(rng.uniform(0.5, 3.0, size=n)) * tick
    ticks = rng.integers(1, 200, size=n).astype(float)
    if n > 600:
        # a flat stretch: O = H = L = C for 120 bars
        f = n // 3
        open_[f : f + 120] = high[f : f + 120] = low[f : f + 120] = close[f : f + 120] = close[
            f - 1
        ]
        # H = L bars scattered
        for s in rng.integers(10, n - 10, size=n // 200):
            open_[s] = high[s] = low[s] = close[s]
        # zero volume, NULL volume, NULL spread, NULL ticks
        volume[rng.integers(0, n, size=n // 100)] = 0.0
        volume[rng.integers(0, n, size=n // 300)] = np.nan
        volume[f + 300 : f + 340] = np.nan  # a NULL stretch
        spread[rng.integers(0, n, size=n // 150)] = np.nan
        ticks[rng.integers(0, n, size=n // 300)] = np.nan
    return pd.DataFrame(
        {
            "symbol": symbol,
            "ts": ts,
            "open": open_,
            "high": high,
            "low": low,
            "close": close,
            "volume": volume,
            "spread": spread,
            "ticks": ticks,
        }
    )[COLUMNS]


def edge_case_bars(seed: int = 7, symbols: tuple[str, ...] = tuple(SCALES)) -> pd.DataFrame:
    """Every symbol of SCALES (or those named), sorted by symbol and ts."""
    frames = [symbol_bars(s, seed=seed) for s in symbols]
    return pd.concat(frames, ignore_index=True).sort_values(["symbol", "ts"], ignore_index=True)


def kernel_inputs(bars: pd.DataFrame) -> dict[str, np.ndarray]:
    """The inputs a bar kernel receives for one symbol's bars (tf_bar_common.INPUTS)."""
    # pandas 3 keeps microseconds: normalise whatever unit the column has
    unit = np.datetime_data(bars["ts"].dt.tz_localize(None).to_numpy().dtype)[0]
    per_minute = {"ns": 60_000_000_000, "us": 60_000_000, "ms": 60_000, "s": 60}[unit]
    minute = bars["ts"].dt.tz_localize(None).to_numpy().astype("int64") // per_minute
    return {
        "minute": minute.astype(np.float64),
        "open": bars["open"].to_numpy(float),
        "high": bars["high"].to_numpy(float),
        "low": bars["low"].to_numpy(float),
        "close": bars["close"].to_numpy(float),
        "volume": bars["volume"].to_numpy(float),
        "spread": bars["spread"].to_numpy(float),
        "ticks": bars["ticks"].to_numpy(float),
    }
