"""TA-Lib technical indicators of the bar domains (FEATURE_DEFINITIONS K3, models technical_rate
and technical_bqx), exactly as TA-Lib 0.8.2 computes them (section F), through the building
blocks of tf_ta. models/bar/<model>.yml defines every column.

Series (K0): technical_rate runs on the rate index of O, H, L, C (idx = 100 x / C_first) and
the bar volume; technical_bqx on bqx_N = 100 (C_t - C_{t-N}) / C_{t-N} for N in BQX_WINDOWS,
whose N leading NULLs are TA-Lib's leading NaNs (F0: b0 = N).

Warm-up (models/bar/<model>.sql). Every column but mfi_rate is a recursion seeded at the
start of the series it is given, so an incremental refresh, which sees WARMUP_BARS bars
before the first row it writes, matches the full build only once the seed's influence has
decayed (below 1e-13 relative, with a margin for flat stretches, where the recursion's own
terms decay as well):
* technical_rate: the slowest recursion is RSI(75), Wilder's (74/75)^k, below 1e-13 after
  ln(1e-13)/ln(74/75) = 2231 bars past its seed at bar 75 (2306 bars); EMA(75) needs
  74 + 1123, ADX(14) 27 + ~450. WARMUP_BARS = 2600 (another (74/75)^294 = 0.02).
* technical_bqx: bqx_75 starts 75 bars into the window; EMA(75) of it is seeded 74 bars later
  and decays as (74/76)^k, below 1e-13 after 1123 bars (1272 bars); RSI/CMO(14) need
  75 + 14 + 404, MACD 75 + 33 + ~420. WARMUP_BARS = 1500 (another (74/76)^228 = 0.002).
mfi_rate depends on bars t-14..t only (K3).
"""

from __future__ import annotations

import numpy as np
import tf_ta
from tf_bar_common import BQX_WINDOWS, Bars, bqx, rate_index
from tf_common import InputError, checkpoint

WARMUP_BARS: dict[str, int] = {"technical_rate": 2600, "technical_bqx": 1500}


def _rate_columns() -> list[str]:
    return [
        *(f"rsi_rate_w{n}" for n in BQX_WINDOWS),
        "macd_rate",
        "macd_signal_rate",
        "macd_hist_rate",
        "stoch_k_rate",
        "stoch_d_rate",
        "adx_rate",
        "plus_di_rate",
        "minus_di_rate",
        *(f"cci_rate_w{n}" for n in BQX_WINDOWS),
        *(f"willr_rate_w{n}" for n in BQX_WINDOWS),
        "atr_rate",
        *(f"ema_dist_rate_w{n}" for n in BQX_WINDOWS),
        "mfi_rate",
    ]


def _bqx_columns() -> list[str]:
    metrics = ("rsi", "macd", "macd_signal", "macd_hist", "ema_diff", "cmo")
    return [f"{metric}_bqx_w{n}" for metric in metrics for n in BQX_WINDOWS]


MODELS: dict[str, list[str]] = {
    "technical_rate": _rate_columns(),
    "technical_bqx": _bqx_columns(),
}


def _rate(bars: Bars, first_close: float) -> dict[str, np.ndarray]:
    high = rate_index(bars.high, first_close)
    low = rate_index(bars.low, first_close)
    close = rate_index(bars.close, first_close)
    out: dict[str, np.ndarray] = {}
    for n in BQX_WINDOWS:
        out[f"rsi_rate_w{n}"] = tf_ta.rsi(close, n)
    out["macd_rate"], out["macd_signal_rate"], out["macd_hist_rate"] = tf_ta.macd(close, 12, 26, 9)
    out["stoch_k_rate"], out["stoch_d_rate"] = tf_ta.stoch(high, low, close, 5, 3, 3)
    out["adx_rate"], out["plus_di_rate"], out["minus_di_rate"] = tf_ta.dmi(high, low, close, 14)
    checkpoint()
    for n in BQX_WINDOWS:
        out[f"cci_rate_w{n}"] = tf_ta.cci(high, low, close, n)
        checkpoint()
    for n in BQX_WINDOWS:
        out[f"willr_rate_w{n}"] = tf_ta.willr(high, low, close, n)
    out["atr_rate"] = tf_ta.atr(high, low, close, 14)
    for n in BQX_WINDOWS:
        ema = tf_ta.ema(close, n)
        out[f"ema_dist_rate_w{n}"] = 100.0 * ((close - ema) / ema)
    out["mfi_rate"] = tf_ta.mfi(high, low, close, bars.volume, 14)
    return out


def _bqx(bars: Bars) -> dict[str, np.ndarray]:
    out: dict[str, np.ndarray] = {}
    for n in BQX_WINDOWS:
        x = bqx(bars.close, n)
        out[f"rsi_bqx_w{n}"] = tf_ta.rsi(x, 14)
        line, signal, hist = tf_ta.macd(x, 12, 26, 9)
        out[f"macd_bqx_w{n}"], out[f"macd_signal_bqx_w{n}"], out[f"macd_hist_bqx_w{n}"] = (
            line,
            signal,
            hist,
        )
        out[f"ema_diff_bqx_w{n}"] = x - tf_ta.ema(x, n)
        out[f"cmo_bqx_w{n}"] = tf_ta.cmo(x, 14)
        checkpoint()
    return out


def compute(model: str, bars: Bars, params: dict) -> dict[str, np.ndarray]:
    """Every column of `model` over the whole input (warm-up rows included)."""
    if model == "technical_rate":
        first_close = params.get("first_close")
        if first_close is None or not np.isfinite(first_close) or first_close <= 0:
            raise InputError(f"technical_rate needs a positive first_close, got {first_close!r}")
        return _rate(bars, float(first_close))
    if model == "technical_bqx":
        return _bqx(bars)
    raise InputError(f"no technical model named '{model}'")
