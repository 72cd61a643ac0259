"""Kernel of the multi_scale bar family (FEATURE_DEFINITIONS K12, K-bars); tf_bar_common states
the contract.

Each one-minute bar carries the features of the latest complete 30-minute and 60-minute bar:
the scale bar whose bucket start + scale <= ts + 1 minute (the minute bar's close). The scale
bars are bars_30m and bars_60m as the model's SQL passes them in params["extra"] (m30_minute,
m30_open, ..., m30_bars and the same for m60_; the bucket start in minutes since the epoch,
oldest first). Only buckets that hold a bar exist, so every window and recursion runs over the
sequence of scale bars, gaps not filled. The last bucket may still be filling: it is used only
by the minute bar that completes it, which is its own last minute.

Features of a scale bar depend on that bar and the ones before it only. TA-Lib's functions
(tf_ta: RSI, BBANDS with its sigma computed centred as K1 asks, ATR, EMA, MACD) run on the rate
index of the scale bars (K0); every other window sums its own terms, so a window of zero terms
gives exactly 0. A refresh reads 1 one-minute bar of warm-up and 600 scale buckets before the
first written bar's bucket (models/bar/multi_scale.sql): enough for the longest window (21
scale bars) and for the EMA and Wilder recursions to forget their seed (the slowest, Wilder's
13/14 per scale bar in RSI and ATR, keeps (13/14)^600 = 5e-20 of it).
"""

from __future__ import annotations

import math

import numpy as np
import tf_ta
from numpy.lib.stride_tricks import sliding_window_view
from tf_bar_common import Bars, rate_index
from tf_common import InputError

# K12: scale name -> minutes; the model's SQL passes bars_30m as m30_*, bars_60m as m60_*
SCALES: dict[str, int] = {"m30": 30, "m60": 60}

# the arrays of one scale in params["extra"], each prefixed by the scale name
SCALE_FIELDS: tuple[str, ...] = (
    "minute",
    "open",
    "high",
    "low",
    "close",
    "volume",
    "spread",
    "ticks",
    "bars",
)

# windows, in scale bars
WINDOW = 20  # volatilities, Bollinger, range position, volume/ticks/spread ratios
RETURN_LAG = 5
ER_WINDOW = 10
RSI_PERIOD = 14
ATR_PERIOD = 14
EMA_PERIOD = 20
MACD_PERIODS = (12, 26, 9)
BB_DEVIATIONS = 2.0

# the metrics of one scale, in column order; ms_<metric> with the scale before a window suffix
METRICS: tuple[str, ...] = (
    "age",
    "bars",
    "log_return",
    "body",
    "gap",
    "log_range",
    "close_pos",
    "upper_wick",
    "lower_wick",
    f"log_return_w{RETURN_LAG}",
    f"rvol_w{WINDOW}",
    f"parkinson_w{WINDOW}",
    f"garman_klass_w{WINDOW}",
    f"rsi_w{RSI_PERIOD}",
    f"bb_pctb_w{WINDOW}",
    f"bb_width_w{WINDOW}",
    f"atr_rel_w{ATR_PERIOD}",
    f"ema_dist_w{EMA_PERIOD}",
    "macd",
    "macd_signal",
    "macd_hist",
    f"er_w{ER_WINDOW}",
    f"range_pos_w{WINDOW}",
    f"volume_ratio_w{WINDOW}",
    f"volume_z_w{WINDOW}",
    f"ticks_ratio_w{WINDOW}",
    "spread_bps",
    f"spread_ratio_w{WINDOW}",
    "close_vs",
    "pos_in_range",
)


def _column(metric: str, scale: str) -> str:
    """ms_<metric>_<scale>, a window suffix moved after the scale: ms_rsi_m30_w14."""
    base, sep, window = metric.rpartition("_w")
    if sep and window.isdigit():
        return f"ms_{base}_{scale}_w{window}"
    return f"ms_{metric}_{scale}"


MODELS: dict[str, list[str]] = {
    "multi_scale": [_column(metric, scale) for scale in SCALES for metric in METRICS],
}


def compute(model: str, bars: Bars, params: dict) -> dict[str, np.ndarray]:
    if model != "multi_scale":
        raise InputError(f"no model named '{model}' in tf_bar_multiscale")
    first_close = float(params["first_close"])
    extra = params.get("extra") or {}
    out: dict[str, np.ndarray] = {}
    for scale, minutes in SCALES.items():
        scale_bars = _scale_bars(extra, scale)
        if not len(scale_bars["minute"]):
            out.update({_column(metric, scale): _nulls(len(bars)) for metric in METRICS})
            continue
        features = _scale_features(scale_bars, first_close)
        # the latest bucket with start + scale <= minute + 1 (-1: none yet)
        latest = np.searchsorted(scale_bars["minute"], bars.minute + 1 - minutes, side="right") - 1
        have = latest >= 0
        pick = np.where(have, latest, 0)
        for metric, values in features.items():
            out[_column(metric, scale)] = np.where(have, values[pick], np.nan)
        high, low, close = (scale_bars[k][pick] for k in ("high", "low", "close"))
        age = bars.minute + 1 - (scale_bars["minute"][pick] + minutes)
        with np.errstate(divide="ignore", invalid="ignore"):
            out[_column("age", scale)] = np.where(have, age, np.nan)
            out[_column("close_vs", scale)] = np.where(
                have, 100.0 * (bars.close - close) / close, np.nan
            )
            out[_column("pos_in_range", scale)] = np.where(
                have & (high != low), (bars.close - low) / (high - low), np.nan
            )
    return out


def _nulls(n: int) -> np.ndarray:
    return np.full(n, np.nan)


def _scale_bars(extra: dict, scale: str) -> dict[str, np.ndarray]:
    """One scale's bucket arrays from params["extra"], checked: all there, one length, oldest
    first."""
    missing = [f"{scale}_{k}" for k in SCALE_FIELDS if f"{scale}_{k}" not in extra]
    if missing:
        raise InputError(f"multi_scale: input {', '.join(missing)} missing")
    arrays = {k: np.asarray(extra[f"{scale}_{k}"], dtype=np.float64) for k in SCALE_FIELDS}
    if len({len(a) for a in arrays.values()}) != 1:
        raise InputError(f"multi_scale: the {scale}_ arrays differ in length")
    arrays["minute"] = arrays["minute"].astype(np.int64)
    if np.any(np.diff(arrays["minute"]) <= 0):
        raise InputError(f"multi_scale: {scale}_minute is not strictly increasing")
    return arrays


def _log_ratio(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """ln(a / b) as log1p((a - b) / b) (T17)."""
    return np.log1p((a - b) / b)


def _lagged(x: np.ndarray, lag: int) -> np.ndarray:
    """x `lag` scale bars back (NaN for the first `lag`)."""
    out = _nulls(len(x))
    if len(x) > lag:
        out[lag:] = x[:-lag]
    return out


def _rolling(x: np.ndarray, n: int, reduce) -> np.ndarray:
    """reduce(windows) over the last n values at each index, as rows of a (k, n) view; NaN
    before n values (a NaN inside a window propagates through the reductions used here)."""
    out = _nulls(len(x))
    if len(x) >= n:
        with np.errstate(divide="ignore", invalid="ignore"):
            out[n - 1 :] = reduce(sliding_window_view(x, n))
    return out


def _ratio_to_mean(w: np.ndarray) -> np.ndarray:
    mean = w.sum(axis=1) / w.shape[1]
    return np.where(mean != 0, w[:, -1] / mean, np.nan)


def _centred(w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The mean of w - w_last and the sum of squared deviations about it (exactly 0 for a
    constant window)."""
    d = w - w[:, -1:]
    mean = d.sum(axis=1) / w.shape[1]
    dev = d - mean[:, None]
    return mean, (dev * dev).sum(axis=1)


def _zscore(w: np.ndarray) -> np.ndarray:
    mean, ssd = _centred(w)
    std = np.sqrt(ssd / (w.shape[1] - 1))
    return np.where(std != 0, -mean / std, np.nan)


def _efficiency(w: np.ndarray) -> np.ndarray:
    path = np.abs(np.diff(w, axis=1)).sum(axis=1)
    return np.where(path != 0, np.abs(w[:, -1] - w[:, 0]) / path, 0.0)


def _range_position(w: np.ndarray) -> np.ndarray:
    lo, hi = w.min(axis=1), w.max(axis=1)
    return np.where(hi != lo, (w[:, -1] - lo) / (hi - lo), 0.5)


def _scale_features(sb: dict[str, np.ndarray], first_close: float) -> dict[str, np.ndarray]:
    """Every metric that depends on the scale bar alone, one value per scale bar."""
    o, h, lo, c = sb["open"], sb["high"], sb["low"], sb["close"]
    prev_close = _lagged(c, 1)
    r = _log_ratio(c, prev_close)
    hl = _log_ratio(h, lo)
    body = _log_ratio(c, o)
    span = h - lo
    f: dict[str, np.ndarray] = {
        "bars": sb["bars"],
        "log_return": r,
        "body": body,
        "gap": _log_ratio(o, prev_close),
        "log_range": hl,
    }
    with np.errstate(divide="ignore", invalid="ignore"):
        flat = span == 0
        f["close_pos"] = np.where(flat, np.nan, (c - lo) / span)
        f["upper_wick"] = np.where(flat, np.nan, (h - np.maximum(o, c)) / span)
        f["lower_wick"] = np.where(flat, np.nan, (np.minimum(o, c) - lo) / span)
    f[f"log_return_w{RETURN_LAG}"] = _log_ratio(c, _lagged(c, RETURN_LAG))
    f[f"rvol_w{WINDOW}"] = _rolling(r * r, WINDOW, lambda w: np.sqrt(w.sum(axis=1)))
    f[f"parkinson_w{WINDOW}"] = _rolling(
        hl * hl, WINDOW, lambda w: np.sqrt(w.sum(axis=1) / (4 * WINDOW * math.log(2)))
    )
    gk = 0.5 * hl * hl - (2 * math.log(2) - 1) * body * body
    f[f"garman_klass_w{WINDOW}"] = _rolling(gk, WINDOW, lambda w: np.sqrt(w.sum(axis=1) / WINDOW))
    f.update(
        _ta_features(
            rate_index(h, first_close), rate_index(lo, first_close), rate_index(c, first_close)
        )
    )
    f[f"er_w{ER_WINDOW}"] = _rolling(c, ER_WINDOW + 1, _efficiency)
    f[f"range_pos_w{WINDOW}"] = _rolling(c, WINDOW, _range_position)
    f[f"volume_ratio_w{WINDOW}"] = _rolling(sb["volume"], WINDOW, _ratio_to_mean)
    f[f"volume_z_w{WINDOW}"] = _rolling(sb["volume"], WINDOW, _zscore)
    f[f"ticks_ratio_w{WINDOW}"] = _rolling(sb["ticks"], WINDOW, _ratio_to_mean)
    f["spread_bps"] = 1e4 * sb["spread"] / c
    f[f"spread_ratio_w{WINDOW}"] = _rolling(sb["spread"], WINDOW, _ratio_to_mean)
    return f


def _ta_features(high: np.ndarray, low: np.ndarray, close: np.ndarray) -> dict[str, np.ndarray]:
    """The TA-Lib-based metrics on the rate-indexed scale bars."""
    f: dict[str, np.ndarray] = {}
    f[f"rsi_w{RSI_PERIOD}"] = tf_ta.rsi(close, RSI_PERIOD)
    upper, middle, lower = tf_ta.bbands(close, WINDOW, BB_DEVIATIONS, BB_DEVIATIONS)
    band = upper - lower
    with np.errstate(divide="ignore", invalid="ignore"):
        f[f"bb_pctb_w{WINDOW}"] = np.where(band != 0, (close - lower) / band, np.nan)
    f[f"bb_width_w{WINDOW}"] = band / middle
    f[f"atr_rel_w{ATR_PERIOD}"] = tf_ta.atr(high, low, close, ATR_PERIOD) / close
    ema = tf_ta.ema(close, EMA_PERIOD)
    f[f"ema_dist_w{EMA_PERIOD}"] = 100.0 * (close - ema) / ema
    f["macd"], f["macd_signal"], f["macd_hist"] = tf_ta.macd(close, *MACD_PERIODS)
    return f
