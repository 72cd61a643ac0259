"""Oracles of the bar families volume_features and spread_features (FEATURE_DEFINITIONS K10),
written from section K and the column descriptions of models/bar/{volume_features,
spread_features}.yml. One symbol's bars sorted by ts in, one row per bar out, NaN = NULL.

Every window is materialised (numpy sliding_window_view: one row of N values per bar) and
computed from its own values, with no running sums:
* a window is NULL unless all its inputs are non-NULL (T1); a zero denominator gives NULL;
* means are numpy means of the window; std_s is the centred two-pass form, and a window of N
  equal values has std_s = 0 exactly (the exact-arithmetic value the YAML states), so its
  z-score is NULL;
* the VWAP is the YAML's sum(V TP) / sum(V), computed centred on the current close,
  C_t + sum(V_j (TP_j - C_t)) / sum(V_j) with TP_j - C_t = ((H_j - C_t) + (L_j - C_t) +
  (C_j - C_t)) / 3, so that its distance to the close keeps its digits and a window of bars
  with H = L = C_t gives exactly C_t (the exact-arithmetic value the YAML states);
* the OBV slope is the OLS slope of the OBV path inside the window (the cumulative signed
  volume from the window's first bar), fitted on x = 0..N-1 in centred form.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
from numpy.lib.stride_tricks import sliding_window_view

WINDOWS: tuple[int, ...] = (15, 30, 60, 240, 1440)
MA_RATIO_PAIRS: tuple[tuple[int, int], ...] = ((15, 60), (30, 240), (60, 1440), (240, 1440))


def _keyed(bars: pd.DataFrame, columns: dict[str, np.ndarray]) -> pd.DataFrame:
    frame = pd.DataFrame(
        {name: np.asarray(values, dtype=float) for name, values in columns.items()}
    )
    frame[~np.isfinite(frame.to_numpy())] = np.nan
    frame.insert(0, "ts", bars["ts"].to_numpy())
    frame.insert(0, "symbol", bars["symbol"].to_numpy())
    return frame


def _div(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """num / den, NaN where den is 0 or NULL (section 0)."""
    num, den = np.broadcast_arrays(np.asarray(num, dtype=float), np.asarray(den, dtype=float))
    out = np.full(num.shape, np.nan)
    ok = np.isfinite(den) & (den != 0)
    out[ok] = num[ok] / den[ok]
    return out


class _Rolling:
    """The windows of n bars ending at each bar t >= n-1 of arrays of m bars."""

    def __init__(self, m: int, n: int) -> None:
        self.m, self.n = m, n

    def view(self, x: np.ndarray) -> np.ndarray:
        """(m - n + 1, n): row i holds bars i..i+n-1, the window ending at bar i+n-1."""
        return sliding_window_view(np.asarray(x, dtype=float), self.n)

    def out(self, values: np.ndarray) -> np.ndarray:
        full = np.full(self.m, np.nan)
        if self.m >= self.n:
            full[self.n - 1 :] = values
        return full

    def apply(self, fn: Callable[..., np.ndarray], *arrays: np.ndarray) -> np.ndarray:
        """fn of the windows' views, NaN on windows holding a NaN in any of the arrays."""
        if self.m < self.n:
            return np.full(self.m, np.nan)
        views = [self.view(a) for a in arrays]
        complete = np.logical_and.reduce([np.isfinite(v).all(axis=1) for v in views])
        with np.errstate(invalid="ignore", divide="ignore"):
            values = fn(*views)
        return self.out(np.where(complete, values, np.nan))


def _mean(w: np.ndarray) -> np.ndarray:
    return w.mean(axis=1)


def _std(w: np.ndarray) -> np.ndarray:
    """std_s, exactly 0 for a window of equal values."""
    flat = w.max(axis=1) == w.min(axis=1)
    return np.where(flat, 0.0, w.std(axis=1, ddof=1))


def _zscore(w: np.ndarray) -> np.ndarray:
    std = _std(w)
    return _div(w[:, -1] - w.mean(axis=1), std)


def _obv_slope(s: np.ndarray) -> np.ndarray:
    """OLS slope of the path P_p = s_0 + .. + s_p against p = 0..n-1, centred."""
    path = np.cumsum(s, axis=1)
    x = np.arange(s.shape[1], dtype=float)
    x -= x.mean()
    centred = path - path.mean(axis=1, keepdims=True)
    return (centred * x).sum(axis=1) / (x * x).sum()


def _vwap_gap(
    volume: np.ndarray, high: np.ndarray, low: np.ndarray, close: np.ndarray
) -> np.ndarray:
    """VWAP - C_t of each window, centred on C_t (the window's last close)."""
    now = close[:, -1:]
    typical = ((high - now) + (low - now) + (close - now)) / 3.0
    return _div((volume * typical).sum(axis=1), volume.sum(axis=1))


def volume_features(bars: pd.DataFrame, first_close: float) -> pd.DataFrame:
    """models/bar/volume_features.yml, column by column."""
    m = len(bars)
    volume = bars["volume"].to_numpy(float)
    high, low, close = (bars[c].to_numpy(float) for c in ("high", "low", "close"))
    previous = bars["close"].shift(1).to_numpy(float)
    log_volume = np.log1p(volume)
    signed = np.sign(close - previous) * volume  # NaN on the first bar (no previous close)
    # the volume of up-closing bars, NULL where the signed volume is
    up = np.where(np.isnan(signed), np.nan, np.where(close > previous, volume, 0.0))

    cols: dict[str, np.ndarray] = {"log_volume": log_volume, "signed_volume": signed}
    by_metric: dict[str, dict[int, np.ndarray]] = {}
    for n in WINDOWS:
        r = _Rolling(m, n)
        ma = r.apply(_mean, volume)
        std = r.apply(_std, volume)
        total = r.apply(lambda v: v.sum(axis=1), volume)
        obv = r.apply(lambda s: s.sum(axis=1), signed)
        gap = r.apply(_vwap_gap, volume, high, low, close)
        values = {
            "vol_ma": ma,
            "vol_std": std,
            "vol_ratio": _div(volume, ma),
            "vol_zscore": r.apply(_zscore, volume),
            "vol_cv": _div(std, ma),
            "vol_max_ratio": r.apply(lambda v: _div(v[:, -1], v.max(axis=1)), volume),
            "vol_log_zscore": r.apply(_zscore, log_volume),
            "obv": obv,
            "obv_norm": _div(obv, total),
            "obv_slope": r.apply(_obv_slope, signed),
            "upvol_share": _div(r.apply(lambda u: u.sum(axis=1), up), total),
            "vwap": close + gap,
            "vwap_dist": _div(-100.0 * gap, close + gap),
        }
        for metric, value in values.items():
            by_metric.setdefault(metric, {})[n] = value
    for metric, per_window in by_metric.items():
        for n, value in per_window.items():
            cols[f"{metric}_w{n}"] = value
    for short, long in MA_RATIO_PAIRS:
        cols[f"vol_ma_ratio_w{short}_w{long}"] = _div(
            by_metric["vol_ma"][short], by_metric["vol_ma"][long]
        )
    return _keyed(bars, cols)


def spread_features(bars: pd.DataFrame, first_close: float) -> pd.DataFrame:
    """models/bar/spread_features.yml, column by column."""
    m = len(bars)
    spread = bars["spread"].to_numpy(float)
    high, low, close = (bars[c].to_numpy(float) for c in ("high", "low", "close"))
    bar_range = high - low
    spread_bps = 1e4 * spread / close
    move = bars["close"].diff().abs().to_numpy(float)  # NaN on the first bar

    cols: dict[str, np.ndarray] = {
        "bar_spread_bps": spread_bps,
        "spread_over_range": _div(spread, bar_range),
    }
    by_metric: dict[str, dict[int, np.ndarray]] = {}
    for n in WINDOWS:
        r = _Rolling(m, n)
        mean = r.apply(_mean, spread)
        values = {
            "spread_mean": mean,
            "spread_std": r.apply(_std, spread),
            "spread_zscore": r.apply(_zscore, spread),
            "spread_ratio": _div(spread, mean),
            "spread_bps_mean": r.apply(_mean, spread_bps),
            "spread_range_ratio": r.apply(
                lambda s, h: _div(s.sum(axis=1), h.sum(axis=1)), spread, bar_range
            ),
            "spread_move_ratio": r.apply(
                lambda s, d: _div(s.sum(axis=1), d.sum(axis=1)), spread, move
            ),
        }
        for metric, value in values.items():
            by_metric.setdefault(metric, {})[n] = value
    for metric, per_window in by_metric.items():
        for n, value in per_window.items():
            cols[f"{metric}_w{n}"] = value
    return _keyed(bars, cols)


ORACLES: dict[str, Callable[[pd.DataFrame, float], pd.DataFrame]] = {
    "volume_features": volume_features,
    "spread_features": spread_features,
}
