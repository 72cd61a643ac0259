"""Reference implementation ("oracle") of the `multi_scale` bar family (FEATURE_DEFINITIONS
K12, K-bars), written from section K and the column descriptions of models/bar/multi_scale.yml,
not from the kernel.

For each scale (30 and 60 minutes) the oracle builds the scale bars from the one-minute bars
with pandas (buckets `ts.floor(scale)`, aligned to UTC midnight; first open, max high, min low,
last close, summed volume and ticks with NULL only when every value is NULL, mean spread
skipping NULLs, `bars` = the number of one-minute bars), computes every feature on that
sequence of scale bars (only buckets that hold a bar exist: a weekend is not filled), and joins
each one-minute bar to the latest complete scale bar (bucket start + scale <= ts + 1 minute)
with `merge_asof`.

TA-Lib 0.8.2 (`talib.RSI`, `ATR`, `EMA`, `MACD`) runs on the rate index of the scale bars
(100 * price / C_first, K0). Bollinger %B and width use TA-Lib's BBANDS(20, 2, 2, SMA) formula
(population sigma) computed centred on the window's last value, because TA-Lib's running sum
of squares leaves a sigma of about 1e-7 in a flat window where the formula's exact value is 0
and %B is NULL (K1). Window sums are taken over each window's own terms (a loop over the scale
bars), so a window of zero terms gives exactly 0 (K7).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import talib

#: scale name -> minutes
SCALES: dict[str, int] = {"m30": 30, "m60": 60}

#: the metrics of one scale, in YAML order; the column is ms_<metric> with the scale inserted
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
    "log_return_w5",
    "rvol_w20",
    "parkinson_w20",
    "garman_klass_w20",
    "rsi_w14",
    "bb_pctb_w20",
    "bb_width_w20",
    "atr_rel_w14",
    "ema_dist_w20",
    "macd",
    "macd_signal",
    "macd_hist",
    "er_w10",
    "range_pos_w20",
    "volume_ratio_w20",
    "volume_z_w20",
    "ticks_ratio_w20",
    "spread_bps",
    "spread_ratio_w20",
    "close_vs",
    "pos_in_range",
)


def column_name(metric: str, scale: str) -> str:
    """ms_<metric>_<scale>, the window suffix (if any) after the scale: ms_rsi_m30_w14."""
    base, _, window = metric.rpartition("_w") if "_w" in metric else (metric, "", "")
    if window.isdigit():
        return f"ms_{base}_{scale}_w{window}"
    return f"ms_{metric}_{scale}"


COLUMNS: list[str] = [column_name(m, s) for s in SCALES for m in METRICS]


def scale_bars(bars: pd.DataFrame, minutes: int) -> pd.DataFrame:
    """The K-bars of `minutes` minutes of one symbol's one-minute bars, oldest first."""
    bucket = bars["ts"].dt.floor(f"{minutes}min")
    g = bars.assign(bucket=bucket).groupby("bucket", sort=True)
    out = pd.DataFrame(
        {
            "open": g["open"].first(),
            "high": g["high"].max(),
            "low": g["low"].min(),
            "close": g["close"].last(),
            "volume": g["volume"].sum(min_count=1),
            "spread": g["spread"].mean(),
            "ticks": g["ticks"].sum(min_count=1),
            "bars": g.size().astype(float),
        }
    )
    return out.reset_index().rename(columns={"bucket": "start"})


def _log_ratio(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """ln(a / b) as log1p((a - b) / b) (T17)."""
    return np.log1p((a - b) / b)


def _window(x: np.ndarray, n: int, f) -> np.ndarray:
    """f(window) over the last n values at each index; NaN before n values or when one is NaN."""
    out = np.full(len(x), np.nan)
    for i in range(n - 1, len(x)):
        w = x[i - n + 1 : i + 1]
        if not np.isnan(w).any():
            out[i] = f(w)
    return out


def _ratio_to_mean(w: np.ndarray) -> float:
    mean = w.sum() / len(w)
    return w[-1] / mean if mean != 0 else np.nan


def _zscore(w: np.ndarray) -> float:
    d = w - w[-1]
    dev = d - d.mean()
    std = math.sqrt((dev * dev).sum() / (len(w) - 1))
    return (0.0 - d.mean()) / std if std != 0 else np.nan


def _efficiency(w: np.ndarray) -> float:
    path = np.abs(np.diff(w)).sum()
    return abs(w[-1] - w[0]) / path if path != 0 else 0.0


def _range_position(w: np.ndarray) -> float:
    lo, hi = w.min(), w.max()
    return (w[-1] - lo) / (hi - lo) if hi != lo else 0.5


def _features(sb: pd.DataFrame, first_close: float) -> pd.DataFrame:
    """Every per-scale-bar feature (all but age, close_vs, pos_in_range) on the scale bars."""
    o, h, lo, c = (sb[k].to_numpy(float) for k in ("open", "high", "low", "close"))
    v, sp, tk = (sb[k].to_numpy(float) for k in ("volume", "spread", "ticks"))
    n = len(c)
    prev_c = np.concatenate([[np.nan], c[:-1]])
    r = _log_ratio(c, prev_c)
    hl = _log_ratio(h, lo)
    body = _log_ratio(c, o)
    rng = h - lo
    with np.errstate(divide="ignore", invalid="ignore"):
        close_pos = np.where(rng != 0, (c - lo) / rng, np.nan)
        upper = np.where(rng != 0, (h - np.maximum(o, c)) / rng, np.nan)
        lower = np.where(rng != 0, (np.minimum(o, c) - lo) / rng, np.nan)
    c5 = np.full(n, np.nan)
    c5[5:] = c[:-5]

    f = pd.DataFrame(index=sb.index)
    f["bars"] = sb["bars"].to_numpy(float)
    f["log_return"] = r
    f["body"] = body
    f["gap"] = _log_ratio(o, prev_c)
    f["log_range"] = hl
    f["close_pos"] = close_pos
    f["upper_wick"] = upper
    f["lower_wick"] = lower
    f["log_return_w5"] = _log_ratio(c, c5)
    f["rvol_w20"] = _window(r, 20, lambda w: math.sqrt((w * w).sum()))
    f["parkinson_w20"] = _window(
        hl, 20, lambda w: math.sqrt((w * w).sum() / (4 * 20 * math.log(2)))
    )
    gk_term = 0.5 * hl * hl - (2 * math.log(2) - 1) * body * body
    f["garman_klass_w20"] = _window(gk_term, 20, lambda w: math.sqrt(w.sum() / 20))

    # TA-Lib on the rate index of the scale bars
    ih, il, ic = (100.0 * x / first_close for x in (h, lo, c))
    f["rsi_w14"] = talib.RSI(ic, timeperiod=14)

    def pctb(w: np.ndarray) -> float:
        d = w - w[-1]
        mean_d = d.sum() / len(d)
        sigma = math.sqrt(((d - mean_d) ** 2).sum() / len(d))
        # (x - lower)/(upper - lower) with lower = mid - 2 sigma, upper = mid + 2 sigma
        return (0.0 - mean_d + 2 * sigma) / (4 * sigma) if sigma != 0 else np.nan

    def width(w: np.ndarray) -> float:
        d = w - w[-1]
        mean_d = d.sum() / len(d)
        sigma = math.sqrt(((d - mean_d) ** 2).sum() / len(d))
        return 4 * sigma / (w[-1] + mean_d)

    f["bb_pctb_w20"] = _window(ic, 20, pctb)
    f["bb_width_w20"] = _window(ic, 20, width)
    f["atr_rel_w14"] = talib.ATR(ih, il, ic, timeperiod=14) / ic
    ema = talib.EMA(ic, timeperiod=20)
    f["ema_dist_w20"] = 100.0 * (ic - ema) / ema
    macd, signal, hist = talib.MACD(ic, fastperiod=12, slowperiod=26, signalperiod=9)
    f["macd"], f["macd_signal"], f["macd_hist"] = macd, signal, hist
    f["er_w10"] = _window(c, 11, _efficiency)
    f["range_pos_w20"] = _window(c, 20, _range_position)
    f["volume_ratio_w20"] = _window(v, 20, _ratio_to_mean)
    f["volume_z_w20"] = _window(v, 20, _zscore)
    f["ticks_ratio_w20"] = _window(tk, 20, _ratio_to_mean)
    f["spread_bps"] = 1e4 * sp / c
    f["spread_ratio_w20"] = _window(sp, 20, _ratio_to_mean)
    return f


def multi_scale(bars: pd.DataFrame, first_close: float) -> pd.DataFrame:
    bars = bars.sort_values("ts").reset_index(drop=True)
    out = bars[["symbol", "ts"]].copy()
    known = bars[["ts"]].assign(known=bars["ts"] + pd.Timedelta(minutes=1))
    close = bars["close"].to_numpy(float)
    for scale, minutes in SCALES.items():
        sb = scale_bars(bars, minutes)
        feats = _features(sb, first_close)
        feats["complete"] = sb["start"] + pd.Timedelta(minutes=minutes)
        feats["_high"], feats["_low"], feats["_close"] = sb["high"], sb["low"], sb["close"]
        feats["complete"] = feats["complete"].astype(known["known"].dtype)
        joined = pd.merge_asof(
            known, feats, left_on="known", right_on="complete", direction="backward"
        )
        age = (joined["known"] - joined["complete"]) / pd.Timedelta(minutes=1)
        joined["age"] = age.astype(float)
        jh, jl, jc = (joined[k].to_numpy(float) for k in ("_high", "_low", "_close"))
        joined["close_vs"] = 100.0 * (close - jc) / jc
        with np.errstate(divide="ignore", invalid="ignore"):
            joined["pos_in_range"] = np.where(jh != jl, (close - jl) / (jh - jl), np.nan)
        for metric in METRICS:
            out[column_name(metric, scale)] = joined[metric].to_numpy(float)
    values = out[COLUMNS].to_numpy(float)
    values[~np.isfinite(values)] = np.nan
    out[COLUMNS] = values
    return out


ORACLES = {"multi_scale": multi_scale}
