"""Oracle of the bar families `technical_rate` and `technical_bqx` (FEATURE_DEFINITIONS K3),
written from section K and models/bar/technical_*.yml with TA-Lib 0.8.2 itself, not from the
kernel (python_udfs/tf_bar_technical.py).

Series (K0): idx = 100 x / C_first for x in O, H, L, C; bqx_N = 100 (C_t - C_{t-N}) / C_{t-N},
NaN on the first N bars, which TA-Lib takes as its leading NaNs (F0: b0 = N).

Every column is the talib function on the whole series of the symbol, except:
* mfi_rate (K3): NULL at t when a volume of bars t-13..t is NULL (or t < 14); elsewhere
  talib.MFI(14) called on bars t-14..t alone (its last value), so no running sum of TA-Lib
  reaches across rows; bar t-14's volume is never used, so it is passed as 1.
* cci_rate_w<N> (K0 numerics, K1's exact-arithmetic rule, F6): for each complete window the
  oracle calls talib.CCI(H - C_t, L - C_t, C - C_t, N) on the window's N bars and keeps the last
  value. CCI is unchanged by a shift of H, L and C, so this is TA-Lib's own definition computed
  centred: on the raw idx, near 100, TA-Lib's TP = (H + L + C)/3 and its mean carry ~1e-14 of
  100, which moves CCI by 1e-9 of itself where TP_t - mu is below ~1e-4. It is cross-checked
  with talib.CCI on the raw series where TP_t - mu is not that small.
* ema_dist_rate_w<N> = 100 (C / talib.EMA(C, N) - 1) and ema_diff_bqx_w<N> = x - talib.EMA(x, N),
  as K3 writes them.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
import talib

WINDOWS: tuple[int, ...] = (15, 30, 45, 60, 75)


def _cci_centred(high: np.ndarray, low: np.ndarray, close: np.ndarray, n: int) -> np.ndarray:
    out = np.full(len(close), np.nan)
    for t in range(n - 1, len(close)):
        rows = slice(t - n + 1, t + 1)
        r = close[t]
        out[t] = talib.CCI(high[rows] - r, low[rows] - r, close[rows] - r, n)[-1]
    raw = talib.CCI(high, low, close, n)
    tp = (high + low + close) / 3
    clear = np.abs(tp - talib.SMA(tp, n)) > 1e-6 * np.abs(tp)
    off = np.abs(out - raw) > 1e-9 * np.maximum(np.abs(out), np.abs(raw))
    assert not (clear & off).any(), "the centred CCI differs from talib.CCI away from knife edges"
    return out


def _mfi(high: np.ndarray, low: np.ndarray, close: np.ndarray, volume: np.ndarray) -> np.ndarray:
    out = np.full(len(close), np.nan)
    for t in range(14, len(close)):
        if np.isnan(volume[t - 13 : t + 1]).any():
            continue
        rows = slice(t - 14, t + 1)
        v = volume[rows].copy()
        v[0] = 1.0
        out[t] = talib.MFI(high[rows], low[rows], close[rows], v, 14)[-1]
    return out


def technical_rate(bars: pd.DataFrame, first_close: float) -> pd.DataFrame:
    high, low, close = (
        100.0 * bars[c].to_numpy(float) / first_close for c in ("high", "low", "close")
    )
    volume = bars["volume"].to_numpy(float)
    out: dict[str, np.ndarray] = {}
    for n in WINDOWS:
        out[f"rsi_rate_w{n}"] = talib.RSI(close, n)
    out["macd_rate"], out["macd_signal_rate"], out["macd_hist_rate"] = talib.MACD(close, 12, 26, 9)
    out["stoch_k_rate"], out["stoch_d_rate"] = talib.STOCH(high, low, close, 5, 3, 0, 3, 0)
    out["adx_rate"] = talib.ADX(high, low, close, 14)
    out["plus_di_rate"] = talib.PLUS_DI(high, low, close, 14)
    out["minus_di_rate"] = talib.MINUS_DI(high, low, close, 14)
    for n in WINDOWS:
        out[f"cci_rate_w{n}"] = _cci_centred(high, low, close, n)
    for n in WINDOWS:
        out[f"willr_rate_w{n}"] = talib.WILLR(high, low, close, n)
    out["atr_rate"] = talib.ATR(high, low, close, 14)
    for n in WINDOWS:
        out[f"ema_dist_rate_w{n}"] = 100.0 * (close / talib.EMA(close, n) - 1.0)
    out["mfi_rate"] = _mfi(high, low, close, volume)
    return _frame(bars, out)


def technical_bqx(bars: pd.DataFrame, first_close: float) -> pd.DataFrame:
    c = bars["close"]
    columns: dict[str, dict[int, np.ndarray]] = {}
    for n in WINDOWS:
        x = (100.0 * (c - c.shift(n)) / c.shift(n)).to_numpy(float)
        columns.setdefault("rsi", {})[n] = talib.RSI(x, 14)
        line, signal, hist = talib.MACD(x, 12, 26, 9)
        columns.setdefault("macd", {})[n] = line
        columns.setdefault("macd_signal", {})[n] = signal
        columns.setdefault("macd_hist", {})[n] = hist
        columns.setdefault("ema_diff", {})[n] = x - talib.EMA(x, n)
        columns.setdefault("cmo", {})[n] = talib.CMO(x, 14)
    out = {f"{metric}_bqx_w{n}": values[n] for metric, values in columns.items() for n in WINDOWS}
    return _frame(bars, out)


def _frame(bars: pd.DataFrame, columns: dict[str, np.ndarray]) -> pd.DataFrame:
    frame = pd.DataFrame({"symbol": bars["symbol"].to_numpy(), "ts": bars["ts"].to_numpy()})
    for name, values in columns.items():
        frame[name] = np.asarray(values, dtype=float)
    return frame


ORACLES: dict[str, Callable[[pd.DataFrame, float], pd.DataFrame]] = {
    "technical_rate": technical_rate,
    "technical_bqx": technical_bqx,
}
