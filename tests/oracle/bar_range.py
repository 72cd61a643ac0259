"""Reference implementation ("oracle") of the bar families `fibonacci`, `realized_volatility`
and `market_regime` (FEATURE_DEFINITIONS K6, K7, K13 with C1, C6, D1-D4, E1, F5), written
from that text and the column descriptions of models/bar/<model>.yml, not from the kernel.

Every window is materialised (row t holds bars t-n+1..t) and reduced directly, two-pass and
centred where a mean is involved; the swing extremes and the Hurst chunks are found by plain
search. ADX and the directional indicators are TA-Lib 0.8.2 itself. One symbol per call, bars
sorted by ts (tests/oracle/bar_datasets.COLUMNS).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import pandas as pd
import talib
from numpy.lib.stride_tricks import sliding_window_view

FIB_WINDOWS = (60, 240, 1440)
FIB_RATIOS = (0.236, 0.382, 0.5, 0.618, 0.786)
RV_WINDOWS = (15, 30, 60, 120, 240, 1440)
REGIME_WINDOWS = (15, 30, 60, 240)
DAY = 1440


def _windows(x: np.ndarray, n: int) -> np.ndarray:
    """Row t = x[t-n+1..t]; rows t < n-1 are NaN."""
    out = np.full((len(x), n), np.nan)
    if len(x) >= n:
        out[n - 1 :] = sliding_window_view(x, n)
    return out


def _shift(x: np.ndarray, k: int) -> np.ndarray:
    out = np.full(len(x), np.nan)
    if k < len(x):
        out[k:] = x[: len(x) - k]
    return out


def _ln(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """ln(a/b) written as ln(1 + (a-b)/b), as the YAML says."""
    return np.log1p((a - b) / b)


def _frame(bars: pd.DataFrame, columns: dict[str, np.ndarray]) -> pd.DataFrame:
    frame = pd.DataFrame({"symbol": bars["symbol"].to_numpy(), "ts": bars["ts"].to_numpy()})
    for name, values in columns.items():
        frame[name] = np.asarray(values, dtype=float)
    return frame


# --- K6 -------------------------------------------------------------------------------------------


def fibonacci(bars: pd.DataFrame, first_close: float) -> pd.DataFrame:
    high, low, close = (bars[c].to_numpy(float) for c in ("high", "low", "close"))
    t = np.arange(len(close), dtype=float)
    cols: dict[str, np.ndarray] = {}
    for s in FIB_WINDOWS:
        wh, wl = _windows(high, s), _windows(low, s)
        ok = ~np.isnan(wh[:, 0])
        hs = wh.max(axis=1)
        ls = wl.min(axis=1)
        # latest bar holding the extreme: first match scanning the window from its end
        at_high = np.where(ok, t - np.argmax(wh[:, ::-1] == hs[:, None], axis=1), np.nan)
        at_low = np.where(ok, t - np.argmax(wl[:, ::-1] == ls[:, None], axis=1), np.nan)
        up = at_high >= at_low
        direction = np.where(ok, np.where(up, 1.0, -1.0), np.nan)
        dists = []
        for rho in FIB_RATIOS:
            level = np.where(up, hs - rho * (hs - ls), ls + rho * (hs - ls))
            dist = np.where(ok, 100.0 * (close - level) / close, np.nan)
            cols[f"fib_dist_{round(rho * 1000)}_w{s}"] = dist
            dists.append(dist)
        span = hs - ls
        with np.errstate(divide="ignore", invalid="ignore"):
            cols[f"fib_position_w{s}"] = np.where(ok & (span != 0), (close - ls) / span, np.nan)
        cols[f"fib_direction_w{s}"] = direction
        cols[f"fib_range_w{s}"] = np.where(ok, 100.0 * span / close, np.nan)
        nearest = np.full(len(close), np.nan)
        for i in np.flatnonzero(ok):
            values = [d[i] for d in dists]
            best = min(range(len(values)), key=lambda j: (abs(values[j]), j))
            nearest[i] = values[best]
        cols[f"fib_nearest_dist_w{s}"] = nearest
        cols[f"fib_bars_since_high_w{s}"] = t - at_high
        cols[f"fib_bars_since_low_w{s}"] = t - at_low
    return _frame(bars, cols)


# --- K7 -------------------------------------------------------------------------------------------


def _window_variance(x: np.ndarray, n: int) -> np.ndarray:
    w = _windows(x, n)
    var = np.full(len(x), np.nan)
    ok = ~np.isnan(w).any(axis=1)
    var[ok] = np.var(w[ok], axis=1, ddof=1)
    var[ok & (np.ptp(np.where(np.isnan(w), 0.0, w), axis=1) == 0)] = 0.0  # equal values: exactly 0
    return var


def realized_volatility(bars: pd.DataFrame, first_close: float) -> pd.DataFrame:
    o, h, lo, c = (bars[k].to_numpy(float) for k in ("open", "high", "low", "close"))
    prev = _shift(c, 1)
    r = _ln(c, prev)
    hl = _ln(h, lo)
    u, d, co = _ln(h, o), _ln(lo, o), _ln(c, o)
    oj = _ln(o, prev)
    rs = u * (u - co) + d * (d - co)
    gk = 0.5 * hl**2 - (2 * math.log(2) - 1) * co**2
    estimators: dict[str, Callable[[int], np.ndarray]] = {
        "close": lambda n: np.sqrt(_windows(r**2, n).sum(axis=1)),
        "parkinson": lambda n: np.sqrt(_windows(hl**2, n).sum(axis=1) / (4 * n * math.log(2))),
        "garman_klass": lambda n: np.sqrt(_windows(gk, n).sum(axis=1) / n),
        "rogers_satchell": lambda n: np.sqrt(_windows(rs, n).sum(axis=1) / n),
        "yang_zhang": lambda n: np.sqrt(
            _window_variance(oj, n)
            + (0.34 / (1.34 + (n + 1) / (n - 1)))
            * _window_variance(np.where(np.isnan(oj), np.nan, co), n)
            + (1 - 0.34 / (1.34 + (n + 1) / (n - 1)))
            * _windows(np.where(np.isnan(oj), np.nan, rs), n).sum(axis=1)
            / n
        ),
    }
    cols = {f"rvol_{name}_w{n}": f(n) for name, f in estimators.items() for n in RV_WINDOWS}
    return _frame(bars, cols)


# --- K13 ------------------------------------------------------------------------------------------


def _trend(close: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    w = _windows(close, n)
    y = np.log1p((w - close[:, None]) / close[:, None])
    x = np.arange(n, dtype=float)
    dx = x - x.mean()
    dy = y - y.mean(axis=1, keepdims=True)
    sxy = (dx * dy).sum(axis=1)
    syy = (dy * dy).sum(axis=1)
    sxx = (dx * dx).sum()
    slope = sxy / sxx
    flat = np.ptp(w, axis=1) == 0
    with np.errstate(divide="ignore", invalid="ignore"):
        slope_z = np.where(flat, np.nan, slope / np.sqrt(syy / (n - 1)))
        r2 = np.where(flat, 0.0, sxy**2 / (sxx * syy))
    r2[np.isnan(w[:, 0])] = np.nan
    return slope_z, r2, np.sign(slope) * r2


def _hurst(r: np.ndarray, n: int) -> np.ndarray:
    out = np.full(len(r), np.nan)
    sizes = [s for s in (8, 16, 32, 64, 128, 256, 512, 1024) if s <= n // 2]
    for t in range(n, len(r)):
        x = r[t - n + 1 : t + 1]
        log_s, log_rs = [], []
        for s in sizes:
            k = n // s
            chunks = x[len(x) - k * s :].reshape(k, s)  # aligned to the window's end
            chunks = chunks[np.ptp(chunks, axis=1) > 0]  # S > 0: the returns are not all equal
            if len(chunks):
                y = np.cumsum(chunks - chunks.mean(axis=1, keepdims=True), axis=1)
                ratios = (y.max(axis=1) - y.min(axis=1)) / chunks.std(axis=1)
                log_s.append(math.log(s))
                log_rs.append(math.log(np.mean(ratios)))
        if len(log_s) >= 3:
            out[t] = np.polyfit(log_s, log_rs, 1)[0]
    return out


def _percent_rank(v: np.ndarray, first: int) -> np.ndarray:
    out = np.full(len(v), np.nan)
    for t in range(first + DAY - 1, len(v)):
        if np.isnan(v[t]):
            continue
        w = v[t - DAY + 1 : t + 1]
        w = w[~np.isnan(w)]
        if len(w) < 2:
            continue
        out[t] = np.sum(w < v[t] - 1e-9 * abs(v[t])) / (len(w) - 1)
    return out


def _band(x: np.ndarray) -> np.ndarray:
    return np.where(np.isnan(x), np.nan, np.where(x < 0.2, 0.0, np.where(x > 0.8, 2.0, 1.0)))


def market_regime(bars: pd.DataFrame, first_close: float) -> pd.DataFrame:
    h, lo, c = (bars[k].to_numpy(float) for k in ("high", "low", "close"))
    volume, spread, ticks = (bars[k].to_numpy(float) for k in ("volume", "spread", "ticks"))
    cols: dict[str, np.ndarray] = {}
    ranges: dict[int, np.ndarray] = {}
    for n in REGIME_WINDOWS:
        path = _windows(np.abs(c - _shift(c, 1)), n).sum(axis=1)
        net = np.abs(c - _shift(c, n))
        with np.errstate(divide="ignore", invalid="ignore"):
            cols[f"regime_er_w{n}"] = np.where(path == 0, 0.0, net / path)
        slope_z, r2, score = _trend(c, n)
        cols[f"regime_slope_z_w{n}"] = slope_z
        cols[f"regime_r2_w{n}"] = r2
        cols[f"regime_trend_score_w{n}"] = score
        w = _windows(c, n)
        top, bottom = w.max(axis=1), w.min(axis=1)
        with np.errstate(divide="ignore", invalid="ignore"):
            cols[f"regime_range_pos_w{n}"] = np.where(
                top == bottom, 0.5, (c - bottom) / (top - bottom)
            )
        ranges[n] = 100.0 * (top - bottom) / c
    r = _ln(c, _shift(c, 1))
    hurst = {n: _hurst(r, n) for n in (256, 1024)}
    cols["regime_hurst_w256"] = hurst[256]
    cols["regime_hurst_w1024"] = hurst[1024]

    adx = talib.ADX(h, lo, c, 14)
    di = talib.PLUS_DI(h, lo, c, 14) - talib.MINUS_DI(h, lo, c, 14)
    di[np.isnan(adx)] = np.nan
    cols["regime_adx"] = adx
    cols["regime_di_diff"] = di
    cols["regime_adx_change_w5"] = adx - _shift(adx, 5)
    trend = np.where(np.isnan(adx), np.nan, np.where(adx < 20, 0.0, np.where(adx < 25, 1.0, 2.0)))
    cols["regime_adx_trend"] = trend
    cols["regime_adx_direction"] = np.where(
        np.isnan(adx), np.nan, np.where(adx >= 25, np.sign(di), 0.0)
    )

    rv = {n: np.sqrt(_windows(r**2, n).sum(axis=1)) for n in (15, 60, 240)}
    for n in (15, 60, 240):
        cols[f"regime_vol_pct_w{n}"] = _percent_rank(rv[n], n)
    s15 = _windows(r**2, 15).sum(axis=1)
    s240 = _windows(r**2, 240).sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        cols["regime_vol_ratio_w15_w240"] = np.where(
            s240 > 0, np.sqrt((s15 / 15) / (s240 / 240)), np.nan
        )
    cols["regime_vol_class"] = _band(cols["regime_vol_pct_w60"])

    simple = c / _shift(c, 1) - 1.0
    for n in (15, 60):
        amihud = np.full(len(c), np.nan)
        wv, wr, wc = _windows(volume, n), _windows(simple, n), _windows(c, n)
        for t in range(n, len(c)):
            if np.isnan(wv[t]).any():
                continue
            traded = wv[t] > 0
            if traded.any():
                amihud[t] = np.mean(np.abs(wr[t][traded]) / (wc[t][traded] * wv[t][traded]))
        cols[f"regime_liq_pct_w{n}"] = _percent_rank(amihud, n)
    cols["regime_liq_class"] = _band(cols["regime_liq_pct_w60"])
    cols["regime_spread_pct"] = _percent_rank(spread, 0)
    cols["regime_ticks_pct"] = _percent_rank(ticks, 0)
    cols["regime_range_pct_w60"] = ranges[60]
    cols["regime_range_pct_w240"] = ranges[240]
    for n in (256, 1024):
        x = hurst[n]
        cols[f"regime_hurst_class_w{n}"] = np.where(
            np.isnan(x), np.nan, np.where(x > 0.55, 1.0, np.where(x < 0.45, -1.0, 0.0))
        )
    cols["regime_state"] = 3 * cols["regime_vol_class"] + cols["regime_adx_trend"]

    order = [
        *(
            f"regime_{m}_w{n}"
            for n in REGIME_WINDOWS
            for m in ("er", "slope_z", "r2", "trend_score", "range_pos")
        ),
        "regime_hurst_w256",
        "regime_hurst_w1024",
        "regime_adx",
        "regime_di_diff",
        "regime_adx_change_w5",
        "regime_adx_trend",
        "regime_adx_direction",
        "regime_vol_pct_w15",
        "regime_vol_pct_w60",
        "regime_vol_pct_w240",
        "regime_vol_ratio_w15_w240",
        "regime_vol_class",
        "regime_liq_pct_w15",
        "regime_liq_pct_w60",
        "regime_liq_class",
        "regime_spread_pct",
        "regime_ticks_pct",
        "regime_range_pct_w60",
        "regime_range_pct_w240",
        "regime_hurst_class_w256",
        "regime_hurst_class_w1024",
        "regime_state",
    ]
    return _frame(bars, {name: cols[name] for name in order})


ORACLES: dict[str, Callable[[pd.DataFrame, float], pd.DataFrame]] = {
    "fibonacci": fibonacci,
    "realized_volatility": realized_volatility,
    "market_regime": market_regime,
}
