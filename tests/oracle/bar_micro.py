"""Reference implementation ("oracle") of the bar family `microstructure_bars`
(FEATURE_DEFINITIONS K8 with E1-E3), written from that text and the column descriptions of
models/bar/microstructure_bars.yml, not from the kernel.

Every window is materialised (row t holds bars t-n+1..t) and reduced directly, two-pass and
centred where a mean is involved. The tick rule is a plain loop. VPIN is a plain loop over the
bars that fills the buckets with `fractions.Fraction` volumes (exact boundaries) and keeps each
bucket's buy volume as a float sum in bar order; its state columns are read off the same loop.
One symbol per call, bars sorted by ts (tests/oracle/bar_datasets.COLUMNS).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from fractions import Fraction

import numpy as np
import pandas as pd
from numpy.lib.stride_tricks import sliding_window_view
from scipy.stats import norm

WINDOWS = (15, 30, 60, 240, 1440)
BUCKETS = 50
DAY = 1440
RING = 49


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
    return np.log1p((a - b) / b)


def tick_rule(close: np.ndarray) -> np.ndarray:
    """b = +1 on the first bar, then sign(dP), or the previous b when dP = 0."""
    b = np.empty(len(close))
    for i in range(len(close)):
        if i == 0:
            b[i] = 1.0
        else:
            d = close[i] - close[i - 1]
            b[i] = b[i - 1] if d == 0 else math.copysign(1.0, d)
    return b


def _window_rows(x_windows: np.ndarray) -> np.ndarray:
    """True where a materialised window has no NaN."""
    return ~np.isnan(x_windows).any(axis=1)


def _expansion(value: Fraction) -> list[float]:
    p1 = float(value)
    p2 = float(value - Fraction(p1))
    p3 = value - Fraction(p1) - Fraction(p2)
    assert float(p3) == p3
    return [p1, p2, float(p3)]


def vpin(bars: pd.DataFrame, vpin_bucket_volume: float | None = None) -> dict[str, np.ndarray]:
    close, volume = bars["close"].to_numpy(float), bars["volume"].to_numpy(float)
    n = len(close)
    dp = np.full(n, np.nan)
    dp[1:] = np.diff(close)
    sigma = pd.Series(dp).rolling(DAY).std().to_numpy()
    phi = np.where(sigma == 0, 0.5, norm.cdf(dp / np.where(sigma == 0, 1.0, sigma)))
    phi[np.isnan(sigma)] = np.nan

    nan = np.full(n, np.nan)
    out = {"vpin": nan.copy(), "state_vpin_fill_buy": nan.copy()}
    for k in range(1, 4):
        out[f"state_vpin_cum_volume_{k}"] = nan.copy()
        out[f"state_vpin_bucket_total_{k}"] = nan.copy()
    for k in range(1, RING + 1):
        out[f"state_vpin_buy_{k:02d}"] = nan.copy()

    # cumulative volume Q_t, exact
    q = Fraction(0)
    for i in range(n):
        if not np.isnan(volume[i]):
            q += Fraction(volume[i])
        for k, part in enumerate(_expansion(q), start=1):
            out[f"state_vpin_cum_volume_{k}"][i] = part

    if vpin_bucket_volume is not None:
        vb, known = Fraction(vpin_bucket_volume), 0
    elif n >= DAY:
        first_day = sum((Fraction(v) for v in volume[:DAY] if not np.isnan(v)), Fraction(0))
        vb, known = (first_day / BUCKETS if first_day > 0 else None), DAY - 1
    else:
        vb, known = None, n
    if vb is None:
        return out
    for k, part in enumerate(_expansion(vb * BUCKETS), start=1):
        out[f"state_vpin_bucket_total_{k}"][known:] = part

    vb_float = float(vb)
    done: list[tuple[float, bool]] = []  # completed buckets: (V^B, NULL)
    buy, null = 0.0, False  # the bucket being filled
    q = Fraction(0)
    value = np.nan
    for i in range(n):
        v = volume[i]
        completed = False
        if np.isnan(v):
            null = True
        elif v > 0:
            rest = Fraction(v)
            while rest > 0:
                room = (len(done) + 1) * vb - q
                piece = min(room, rest)
                if np.isnan(phi[i]):
                    null = True
                else:
                    buy += phi[i] * float(piece)
                q += piece
                rest -= piece
                if q == (len(done) + 1) * vb:
                    done.append((buy, null))
                    buy, null = 0.0, False
                    completed = True
        if completed:
            tau = len(done) - 1
            last50 = done[tau - BUCKETS + 1 :] if tau >= BUCKETS - 1 else []
            if last50 and not any(x[1] for x in last50):
                value = sum(abs((vb_float - x[0]) - x[0]) for x in last50) / (BUCKETS * vb_float)
            else:
                value = np.nan
        if i < known:
            continue
        out["vpin"][i] = value
        out["state_vpin_fill_buy"][i] = np.nan if null else buy
        for k in range(1, RING + 1):
            j = len(done) - k
            if j >= 0 and not done[j][1]:
                out[f"state_vpin_buy_{k:02d}"][i] = done[j][0]
    return out


def microstructure_bars(
    bars: pd.DataFrame, first_close: float, vpin_bucket_volume: float | None = None
) -> pd.DataFrame:
    high, low, close = (bars[c].to_numpy(float) for c in ("high", "low", "close"))
    volume, spread = bars["volume"].to_numpy(float), bars["spread"].to_numpy(float)
    n = len(close)
    prev_close = _shift(close, 1)
    ret = (close - prev_close) / prev_close
    dp = close - prev_close
    r = _ln(close, prev_close)
    b = tick_rule(close)
    cols: dict[str, np.ndarray] = {}

    # Amihud / Kyle / tick imbalance: the window's bars need a return and a non-NULL volume
    for w in WINDOWS:
        rw, vw, cw = _windows(ret, w), _windows(volume, w), _windows(close, w)
        ok = _window_rows(rw) & _window_rows(vw)
        vals = np.full(n, np.nan)
        for t in np.flatnonzero(ok):
            pos = vw[t] > 0
            if pos.any():
                vals[t] = np.mean(np.abs(rw[t][pos]) / (cw[t][pos] * vw[t][pos]))
        cols[f"amihud_w{w}"] = vals
    for w in WINDOWS:
        dw, vw, bw = _windows(dp, w), _windows(volume, w), _windows(b, w)
        ok = _window_rows(dw) & _window_rows(vw)
        vals = np.full(n, np.nan)
        for t in np.flatnonzero(ok):
            s = bw[t] * vw[t]
            sc, dc = s - s.mean(), dw[t] - dw[t].mean()
            den = np.sum(sc * sc)
            if den != 0:
                vals[t] = np.sum(sc * dc) / den
        cols[f"kyle_lambda_w{w}"] = vals
    for w in WINDOWS:
        dw, vw, bw = _windows(dp, w), _windows(volume, w), _windows(b, w)
        ok = _window_rows(dw) & _window_rows(vw)
        vals = np.full(n, np.nan)
        for t in np.flatnonzero(ok):
            total = vw[t].sum()
            if total != 0:
                vals[t] = np.sum(bw[t] * vw[t]) / total
        cols[f"tick_imbalance_w{w}"] = vals

    cols.update({"vpin": None})  # keeps the YAML order; filled below

    # Roll: covariance of (r_j, r_{j-1}) over the window's w - 1 pairs
    for w in WINDOWS:
        rw = _windows(r, w)
        vals = np.full(n, np.nan)
        for t in np.flatnonzero(_window_rows(rw)):
            x, y = rw[t][1:], rw[t][:-1]
            c = np.sum((x - x.mean()) * (y - y.mean())) / (len(x) - 1)
            vals[t] = 2.0 * math.sqrt(-c) if c < 0 else 0.0
        cols[f"roll_spread_w{w}"] = vals

    # Corwin-Schultz, the paper's formulas literally
    cs = np.full(n, np.nan)
    for t in range(1, n):
        h1, l1, c1 = high[t - 1], low[t - 1], close[t - 1]
        h2, l2 = high[t], low[t]
        if l2 > c1:
            h2, l2 = h2 - (l2 - c1), c1
        elif h2 < c1:
            h2, l2 = c1, l2 + (c1 - h2)
        beta = math.log1p((h1 - l1) / l1) ** 2 + math.log1p((h2 - l2) / l2) ** 2
        gamma = math.log1p((max(h1, h2) - min(l1, l2)) / min(l1, l2)) ** 2
        k = 3 - 2 * math.sqrt(2)
        alpha = (math.sqrt(2 * beta) - math.sqrt(beta)) / k - math.sqrt(gamma / k)
        s = 2 * (math.exp(alpha) - 1) / (1 + math.exp(alpha))
        cs[t] = max(s, 0.0)
    cols["cs_spread"] = cs
    for w in WINDOWS:
        cols[f"cs_spread_w{w}"] = _windows(cs, w).mean(axis=1)

    # Abdi-Ranaldo
    c_, eta = np.log(close), (np.log(high) + np.log(low)) / 2
    ar = 4 * (_shift(c_, 1) - _shift(eta, 1)) * (_shift(c_, 1) - eta)
    for w in WINDOWS:
        aw = _windows(ar, w)
        m = aw.mean(axis=1)
        cols[f"ar_spread_w{w}"] = np.where(_window_rows(aw), np.sqrt(np.maximum(m, 0.0)), np.nan)

    rel = spread / close
    for w in WINDOWS:
        qw = _windows(rel, w).mean(axis=1)
        qw[qw == 0] = np.nan
        cols[f"roll_to_quoted_w{w}"] = cols[f"roll_spread_w{w}"] / qw
    for w in WINDOWS:
        qw = _windows(rel, w).mean(axis=1)
        qw[qw == 0] = np.nan
        cols[f"cs_to_quoted_w{w}"] = cols[f"cs_spread_w{w}"] / qw

    cols["state_bar_index"] = np.arange(n, dtype=float)
    cols["state_tick_sign_lag1439"] = _shift(b, DAY - 1)
    state = vpin(bars, vpin_bucket_volume)
    cols["vpin"] = state.pop("vpin")
    for k in range(1, 4):
        cols[f"state_vpin_cum_volume_{k}"] = state[f"state_vpin_cum_volume_{k}"]
    for k in range(1, 4):
        cols[f"state_vpin_bucket_total_{k}"] = state[f"state_vpin_bucket_total_{k}"]
    cols["state_vpin_fill_buy"] = state["state_vpin_fill_buy"]
    for k in range(1, RING + 1):
        cols[f"state_vpin_buy_{k:02d}"] = state[f"state_vpin_buy_{k:02d}"]

    frame = pd.DataFrame({"symbol": bars["symbol"].to_numpy(), "ts": bars["ts"].to_numpy()})
    for name, values in cols.items():
        frame[name] = np.asarray(values, dtype=float)
    return frame


ORACLES: dict[str, Callable[..., pd.DataFrame]] = {"microstructure_bars": microstructure_bars}
