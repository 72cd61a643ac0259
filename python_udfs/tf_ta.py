"""TA-Lib 0.8.2 indicators in numpy/scipy (FEATURE_DEFINITIONS section F): the building
blocks of the bar families that are **exact** against TA-Lib (K1, K3, K12).

Every function follows the python wrapper's output layout (F0):
* inputs are float64 arrays of one length (several inputs: the same length), oldest first;
* b0 = the first index where no input is NaN (`first_valid`); leading NaNs are allowed, e.g.
  the N leading NULLs of bqx_N (K3: b0 = N);
* the output has the input's length; positions [0, b0 + lookback) are NaN; values start at
  b0 + lookback, exactly as `talib.<FUNC>` on the same arrays;
* after b0 the inputs are meant to be finite. TA-Lib corrupts its state on an interior NaN
  (F0); here an interior NaN makes NaN every output that depends on it instead (the rest of
  the series for a recursion, the windows that hold it for a window function).

Numerics. Recursions (EMA, Wilder) run through tf_bar_common.first_order with TA-Lib's seed as
the initial condition; they differ from TA-Lib's loop by rounding only (~1e-16 relative).
Window functions sum the window afresh at every row, so none carries a running-sum residue,
and moments are taken about the current value (K0 numerics). Where TA-Lib's running sums
would leave rounding noise in a flat window, the value is the one the formula gives in exact
arithmetic (K1): a flat window has BBANDS sigma 0 and CCI 0. Zero tests are those of the
bundled C library, checked against talib 0.8.2 (tests/kernels/test_ta.py): exact `== 0` for
RSI, CMO, DI, DX, CCI, STOCH and WILLR, `<= 0` for the MFI total; MFI classifies a
typical-price change d as no flow when |d| <= 1e-14 * (|TP_t| + |TP_t-1|).

Warm-up for a caller that restarts mid-series: the seed's influence on an EMA(n) decays as
((n-1)/(n+1))^k after k rows and on a Wilder(n) as ((n-1)/n)^k; below 1e-13 after
k = ln(1e-13) / ln(decay) rows (EMA(26): 389, EMA(75): 1123, Wilder(14): 404).
"""

from __future__ import annotations

import numpy as np
from tf_bar_common import first_order, window_reduce

__all__ = [
    "adx",
    "atr",
    "bbands",
    "cci",
    "cmo",
    "dmi",
    "ema",
    "first_valid",
    "macd",
    "mfi",
    "minus_di",
    "plus_di",
    "rsi",
    "sma",
    "smooth",
    "stoch",
    "trange",
    "wilder",
    "willr",
]

# MFI's dead zone for "no change of the typical price" (relative to |TP_t| + |TP_t-1|)
_MFI_DEAD_ZONE = 1e-14


# --- inputs -------------------------------------------------------------------------------------


def _arrays(*arrays: np.ndarray) -> list[np.ndarray]:
    out = [np.asarray(a, dtype=np.float64) for a in arrays]
    if any(a.ndim != 1 for a in out):
        raise ValueError("inputs must be one-dimensional")
    if len({len(a) for a in out}) != 1:
        raise ValueError(f"inputs differ in length: {sorted({len(a) for a in out})}")
    return out


def _period(n: int, name: str = "n") -> int:
    if int(n) != n or n < 2:
        raise ValueError(f"{name} must be an integer >= 2, got {n}")
    return int(n)


def first_valid(*arrays: np.ndarray) -> int:
    """F0's b0: the first index where no array is NaN (the length if there is none)."""
    bad = np.zeros(len(arrays[0]), dtype=bool)
    for a in arrays:
        bad |= np.isnan(a)
    good = np.flatnonzero(~bad)
    return int(good[0]) if len(good) else len(bad)


def _nan(n: int) -> np.ndarray:
    return np.full(n, np.nan)


# --- windows ------------------------------------------------------------------------------------


def _window_sum(x: np.ndarray, n: int) -> np.ndarray:
    """out[t] = x[t] + x[t-1] + ... + x[t-n+1] for t >= n-1 (NaN before), summed afresh."""
    out = _nan(len(x))
    if len(x) >= n:
        acc = x[n - 1 :].copy()
        for k in range(1, n):
            acc += x[n - 1 - k : len(x) - k]
        out[n - 1 :] = acc
    return out


def _rolling_max(x: np.ndarray, n: int) -> np.ndarray:
    """max of x[t-n+1..t] for t >= n-1 (NaN before); x finite."""
    return window_reduce(x, n, np.maximum)


def _rolling_min(x: np.ndarray, n: int) -> np.ndarray:
    return window_reduce(x, n, np.minimum)


def _has_nan(x: np.ndarray, n: int) -> np.ndarray:
    """True at t where x[t-n+1..t] holds a NaN (and for t < n-1)."""
    bad = np.ones(len(x), dtype=bool)
    if len(x) >= n:
        c = np.concatenate(([0], np.cumsum(np.isnan(x))))
        bad[n - 1 :] = c[n:] - c[:-n] > 0
    return bad


def _cci_terms(
    high: np.ndarray, low: np.ndarray, close: np.ndarray, n: int
) -> tuple[np.ndarray, np.ndarray]:
    """Over the window of bars t-n+1..t, with the typical prices taken about C_t,
    TP'_j = ((H_j - C_j) + (L_j - C_j))/3 + (C_j - C_t) (TP_j - C_t up to rounding of its own
    small size): TP_t - mu and the mean absolute deviation MD (both NaN for t < n-1).
    One vector pass per lag (faster here than blocks of sliding windows)."""
    m = len(close)
    num, mad = _nan(m), _nan(m)
    if m < n:
        return num, mad
    own = ((high - close) + (low - close)) / 3.0
    now = close[n - 1 :]
    scratch = np.empty(m - n + 1)

    def tp(k: int) -> np.ndarray:
        np.subtract(close[n - 1 - k : m - k], now, out=scratch)
        np.add(scratch, own[n - 1 - k : m - k], out=scratch)
        return scratch

    acc = own[n - 1 :].copy()
    for k in range(1, n):
        acc += tp(k)
    mu = acc / n
    dev = np.abs(own[n - 1 :] - mu)
    for k in range(1, n):
        d = tp(k)
        d -= mu
        dev += np.abs(d, out=d)
    num[n - 1 :] = own[n - 1 :] - mu
    mad[n - 1 :] = dev / n
    return num, mad


def _centred_variance(x: np.ndarray, n: int) -> np.ndarray:
    """Population variance of x[t-n+1..t], two-pass about the window mean, with the window
    first shifted by x[t] (exactly 0 on a flat window)."""
    m = len(x)
    out = _nan(m)
    if m >= n:
        now = x[n - 1 :]
        acc = np.zeros(m - n + 1)
        for k in range(1, n):
            acc += x[n - 1 - k : m - k] - now
        mu = acc / n
        ss = mu * mu
        for k in range(1, n):
            d = (x[n - 1 - k : m - k] - now) - mu
            ss += d * d
        out[n - 1 :] = ss / n
    return out


# --- recursions ---------------------------------------------------------------------------------


def smooth(x: np.ndarray, alpha: float, start: int, seed: float) -> np.ndarray:
    """The linear recursion of TA-Lib's EMA and Wilder smoothing:
    y[start] = seed, y[t] = y[t-1] + alpha * (x[t] - y[t-1]) for t > start, NaN before start.
    x[start] itself is not used (the seed stands for it). A NaN in x[start+1:] makes y NaN
    from there on."""
    x = np.asarray(x, dtype=np.float64)
    out = _nan(len(x))
    if start >= len(x):
        return out
    out[start] = seed
    if start + 1 < len(x):
        out[start + 1 :] = first_order(alpha * x[start + 1 :], 1.0 - alpha, before=seed)
    return out


def sma(x: np.ndarray, n: int) -> np.ndarray:
    """TA-Lib SMA(n) (F1): mean of x[t-n+1..t]; lookback n-1."""
    (x,) = _arrays(x)
    n = _period(n)
    b0 = first_valid(x)
    out = _nan(len(x))
    out[b0:] = _window_sum(x[b0:], n) / n
    return out


def _seeded(x: np.ndarray, n: int, alpha: float) -> np.ndarray:
    """seed = mean of the first n values from b0, at b0+n-1; then smooth() with alpha."""
    b0 = first_valid(x)
    start = b0 + n - 1
    if start >= len(x):
        return _nan(len(x))
    return smooth(x, alpha, start, float(np.sum(x[b0 : start + 1]) / n))


def ema(x: np.ndarray, n: int) -> np.ndarray:
    """TA-Lib EMA(n) (F1): k = 2/(n+1), seeded at b0+n-1 with the mean of x[b0..b0+n-1];
    lookback n-1."""
    (x,) = _arrays(x)
    n = _period(n)
    return _seeded(x, n, 2.0 / (n + 1))


def wilder(x: np.ndarray, n: int) -> np.ndarray:
    """Wilder's average as TA-Lib's RSI and ATR run it: seeded at b0+n-1 with the mean of
    x[b0..b0+n-1], then y[t] = (y[t-1]*(n-1) + x[t]) / n; lookback n-1 on x."""
    (x,) = _arrays(x)
    n = _period(n)
    return _seeded(x, n, 1.0 / n)


# --- single-series indicators -------------------------------------------------------------------


def _gains_losses(x: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Wilder-smoothed gains and losses of x (RSI, CMO), from b0+n on."""
    d = np.full(len(x), np.nan)
    d[1:] = x[1:] - x[:-1]
    return wilder(np.where(d > 0, d, 0.0) + d * 0, n), wilder(np.where(d < 0, -d, 0.0) + d * 0, n)


def rsi(x: np.ndarray, n: int = 14) -> np.ndarray:
    """TA-Lib RSI(n) (F2): 100*AG/(AG+AL) with Wilder-smoothed gains AG and losses AL of the
    differences, seeded with their means over the first n differences; 0 where AG+AL = 0;
    lookback n."""
    (x,) = _arrays(x)
    n = _period(n)
    gain, loss = _gains_losses(x, n)
    total = gain + loss
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total != 0, 100.0 * (gain / total), 0.0) + total * 0


def cmo(x: np.ndarray, n: int = 14) -> np.ndarray:
    """TA-Lib CMO(n): 100*(AG-AL)/(AG+AL) with RSI's Wilder-smoothed gains and losses (TA-Lib's
    CMO is RSI's code with this output); 0 where AG+AL = 0; lookback n."""
    (x,) = _arrays(x)
    n = _period(n)
    gain, loss = _gains_losses(x, n)
    total = gain + loss
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total != 0, 100.0 * ((gain - loss) / total), 0.0) + total * 0


def macd(
    x: np.ndarray, fast: int = 12, slow: int = 26, signal: int = 9
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """TA-Lib MACD(fast, slow, signal) (F3) -> (macd, signal, hist); lookback
    (slow-1)+(signal-1). Both EMAs are seeded at b0+slow-1: the slow one with the mean of
    x[b0..b0+slow-1], the fast one with the mean of the last `fast` of those values; the
    signal EMA is seeded at b0+slow+signal-2 with the mean of the first `signal` MACD values.
    slow < fast are swapped, as TA-Lib does."""
    (x,) = _arrays(x)
    fast, slow, signal = _period(fast, "fast"), _period(slow, "slow"), _period(signal, "signal")
    if slow < fast:
        fast, slow = slow, fast
    m = len(x)
    b0 = first_valid(x)
    seed_at = b0 + slow - 1
    first = seed_at + signal - 1
    nan3 = (_nan(m), _nan(m), _nan(m))
    if first >= m:
        return nan3
    slow_ema = smooth(x, 2.0 / (slow + 1), seed_at, float(np.sum(x[b0 : seed_at + 1]) / slow))
    fast_ema = smooth(
        x, 2.0 / (fast + 1), seed_at, float(np.sum(x[seed_at + 1 - fast : seed_at + 1]) / fast)
    )
    line = fast_ema - slow_ema
    sig = smooth(line, 2.0 / (signal + 1), first, float(np.sum(line[seed_at : first + 1]) / signal))
    line[:first] = np.nan
    return line, sig, line - sig


def bbands(
    x: np.ndarray, n: int = 20, nbdevup: float = 2.0, nbdevdn: float = 2.0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """TA-Lib BBANDS(n, nbdevup, nbdevdn, SMA) (F7) -> (upper, middle, lower); lookback n-1.
    middle = SMA(n); sigma = the population standard deviation of the window, computed
    centred (K1: a flat window has sigma exactly 0, where TA-Lib's running sums may leave
    noise)."""
    (x,) = _arrays(x)
    n = _period(n)
    b0 = first_valid(x)
    mid = sma(x, n)
    sigma = _nan(len(x))
    sigma[b0:] = np.sqrt(np.maximum(_centred_variance(x[b0:], n), 0.0))
    return mid + nbdevup * sigma, mid, mid - nbdevdn * sigma


# --- high / low / close indicators --------------------------------------------------------------


def _hlc(
    high: np.ndarray, low: np.ndarray, close: np.ndarray, *more: np.ndarray
) -> tuple[int, list[np.ndarray]]:
    arrays = _arrays(high, low, close, *more)
    return first_valid(*arrays), arrays


def _extremes(high: np.ndarray, low: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Highest high and lowest low of the last n bars (NaN where the window holds a NaN)."""
    bad = _has_nan(high, n) | _has_nan(low, n)
    hh = _rolling_max(np.where(np.isnan(high), 0.0, high), n)
    ll = _rolling_min(np.where(np.isnan(low), 0.0, low), n)
    hh[bad] = np.nan
    ll[bad] = np.nan
    return hh, ll


def stoch(
    high: np.ndarray,
    low: np.ndarray,
    close: np.ndarray,
    fastk: int = 5,
    slowk: int = 3,
    slowd: int = 3,
) -> tuple[np.ndarray, np.ndarray]:
    """TA-Lib STOCH(fastk, slowk, SMA, slowd, SMA) (F4) -> (slow %K, slow %D); lookback
    (fastk-1)+(slowk-1)+(slowd-1), both outputs cut to start there. fast %K =
    (C-LL)/((HH-LL)/100), 0 where HH = LL."""
    b0, (high, low, close) = _hlc(high, low, close)
    fastk, slowk, slowd = _period(fastk, "fastk"), _period(slowk, "slowk"), _period(slowd, "slowd")
    m = len(close)
    k_out, d_out = _nan(m), _nan(m)
    h, lo, c = high[b0:], low[b0:], close[b0:]
    hh, ll = _extremes(h, lo, fastk)
    diff = (hh - ll) / 100.0
    with np.errstate(invalid="ignore", divide="ignore"):
        fast = np.where(diff != 0, (c - ll) / diff, 0.0) + diff * 0
    slow_k = _window_sum(fast, slowk) / slowk  # a NaN in the window gives NaN
    slow_d = _window_sum(slow_k, slowd) / slowd
    lookback = (fastk - 1) + (slowk - 1) + (slowd - 1)
    slow_k[:lookback] = np.nan
    slow_d[:lookback] = np.nan
    k_out[b0:], d_out[b0:] = slow_k, slow_d
    return k_out, d_out


def willr(high: np.ndarray, low: np.ndarray, close: np.ndarray, n: int = 14) -> np.ndarray:
    """TA-Lib WILLR(n): (HH - C)/((HH - LL)/-100) over the last n bars, 0 where HH = LL;
    lookback n-1."""
    b0, (high, low, close) = _hlc(high, low, close)
    n = _period(n)
    out = _nan(len(close))
    hh, ll = _extremes(high[b0:], low[b0:], n)
    diff = (hh - ll) / -100.0
    with np.errstate(invalid="ignore", divide="ignore"):
        out[b0:] = np.where(diff != 0, (hh - close[b0:]) / diff, 0.0) + diff * 0
    return out


def cci(high: np.ndarray, low: np.ndarray, close: np.ndarray, n: int = 14) -> np.ndarray:
    """TA-Lib CCI(n) (F6): (TP_t - mu)/(0.015*MD) with TP = (H+L+C)/3, mu its n-bar mean and
    MD the mean absolute deviation from mu; 0 where TP_t - mu or MD is 0; lookback n-1.
    Computed with every TP taken about C_t (K0 numerics; TA-Lib's mean of TP near 100 loses
    ~1e-14 of 100, which moves CCI where TP_t - mu is small): a flat window gives exactly 0."""
    b0, (high, low, close) = _hlc(high, low, close)
    n = _period(n)
    out = _nan(len(close))
    num, mad = _cci_terms(high[b0:], low[b0:], close[b0:], n)
    with np.errstate(invalid="ignore", divide="ignore"):
        out[b0:] = np.where((num != 0) & (mad != 0), num / (0.015 * mad), 0.0) + num * 0 + mad * 0
    return out


def trange(high: np.ndarray, low: np.ndarray, close: np.ndarray) -> np.ndarray:
    """TA-Lib TRANGE: max(H-L, |H-C_prev|, |L-C_prev|); lookback 1."""
    b0, (high, low, close) = _hlc(high, low, close)
    out = _nan(len(close))
    if len(close) - b0 >= 2:
        h, lo, c_prev = high[b0 + 1 :], low[b0 + 1 :], close[b0:-1]
        out[b0 + 1 :] = np.maximum(np.maximum(h - lo, np.abs(h - c_prev)), np.abs(lo - c_prev))
    return out


def atr(high: np.ndarray, low: np.ndarray, close: np.ndarray, n: int = 14) -> np.ndarray:
    """TA-Lib ATR(n): Wilder's average of TRANGE seeded with the mean of its first n values;
    lookback n."""
    n = _period(n)
    return wilder(trange(high, low, close), n)


def dmi(
    high: np.ndarray, low: np.ndarray, close: np.ndarray, n: int = 14
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """TA-Lib ADX(n), PLUS_DI(n), MINUS_DI(n) (F5) -> (adx, plus_di, minus_di).
    +DM/-DM/TR are summed over bars b0+1..b0+n-1 (n-1 terms) and then Wilder-smoothed
    (S <- S - S/n + term); +DI = 100*P/T, -DI = 100*M/T (0 where T = 0), from b0+n (lookback n).
    DX = 100*|-DI - +DI|/(+DI + -DI), undefined where T = 0 or +DI + -DI = 0; ADX at b0+2n-1 is
    the sum of the defined DX at b0+n..b0+2n-1 over n, then (ADX*(n-1) + DX)/n, held where DX
    is undefined; lookback 2n-1."""
    b0, (high, low, close) = _hlc(high, low, close)
    n = _period(n)
    m = len(close)
    adx_out, pdi_out, mdi_out = _nan(m), _nan(m), _nan(m)
    h, lo, c = high[b0:], low[b0:], close[b0:]
    k = len(c)
    if k <= n:
        return adx_out, pdi_out, mdi_out
    up = np.full(k, np.nan)
    dn = np.full(k, np.nan)
    up[1:] = h[1:] - h[:-1]
    dn[1:] = lo[:-1] - lo[1:]
    pdm = np.where((up > 0) & (up > dn), up, 0.0) + up * 0
    mdm = np.where((dn > 0) & (dn > up), dn, 0.0) + dn * 0
    tr = trange(h, lo, c)
    keep = 1.0 - 1.0 / n
    sums = []
    for term in (pdm, mdm, tr):
        seed = float(np.sum(term[1:n]))
        s = _nan(k)
        s[n - 1] = seed
        s[n:] = first_order(term[n:], keep, before=seed)
        sums.append(s)
    p, mm, t = sums
    with np.errstate(invalid="ignore", divide="ignore"):
        pdi = np.where(t != 0, 100.0 * (p / t), 0.0) + t * 0
        mdi = np.where(t != 0, 100.0 * (mm / t), 0.0) + t * 0
        di_sum = mdi + pdi
        defined = (t != 0) & (di_sum != 0)
        dx = np.where(defined, 100.0 * (np.abs(mdi - pdi) / di_sum), 0.0) + di_sum * 0
    pdi[:n] = np.nan
    mdi[:n] = np.nan
    pdi_out[b0:], mdi_out[b0:] = pdi, mdi
    first = 2 * n - 1
    if k > first:
        adx = _nan(k)
        adx[first] = float(np.sum(dx[n : first + 1])) / n
        rest = np.arange(first + 1, k)
        steps = rest[defined[first + 1 :] | np.isnan(dx[first + 1 :])]
        if len(steps):
            adx[steps] = first_order(dx[steps] / n, 1.0 - 1.0 / n, before=adx[first])
        # rows where DX is undefined hold the previous ADX
        filled = np.where(np.isnan(adx), 0, np.arange(k))
        filled[: first + 1] = np.arange(first + 1)
        np.maximum.accumulate(filled, out=filled)
        held = adx[filled]
        held[np.isnan(dx)] = np.nan  # a NaN input is not "undefined DX": it poisons ADX
        held[:first] = np.nan
        adx_out[b0:] = _poison_after_nan(held)
    return adx_out, pdi_out, mdi_out


def _poison_after_nan(y: np.ndarray) -> np.ndarray:
    """NaN from the first interior NaN on (after the first value)."""
    valid = np.flatnonzero(~np.isnan(y))
    if len(valid):
        after = np.isnan(y[valid[0] :])
        if after.any():
            y = y.copy()
            y[valid[0] + int(np.argmax(after)) :] = np.nan
    return y


def adx(high: np.ndarray, low: np.ndarray, close: np.ndarray, n: int = 14) -> np.ndarray:
    """TA-Lib ADX(n) (see dmi); lookback 2n-1."""
    return dmi(high, low, close, n)[0]


def plus_di(high: np.ndarray, low: np.ndarray, close: np.ndarray, n: int = 14) -> np.ndarray:
    """TA-Lib PLUS_DI(n) (see dmi); lookback n."""
    return dmi(high, low, close, n)[1]


def minus_di(high: np.ndarray, low: np.ndarray, close: np.ndarray, n: int = 14) -> np.ndarray:
    """TA-Lib MINUS_DI(n) (see dmi); lookback n."""
    return dmi(high, low, close, n)[2]


def mfi(
    high: np.ndarray, low: np.ndarray, close: np.ndarray, volume: np.ndarray, n: int = 14
) -> np.ndarray:
    """TA-Lib MFI(n) evaluated on bars t-n..t alone (K3), so with no running-sum residue:
    TP = (H+L+C)/3; the flow of bar j = TP_j*V_j is positive if TP_j > TP_{j-1}, negative if
    TP_j < TP_{j-1}, none when |TP_j - TP_{j-1}| <= 1e-14*(|TP_j| + |TP_{j-1}|) (the bundled
    C library's dead zone); over the flows of bars t-n+1..t, with P = sum(pos) and
    T = P + sum(neg): MFI = 100*min(max(P, 0), T)/T, and 0 where T <= 0 (TA-Lib's clamp and
    zero test, which matter only for negative prices). Lookback n.
    NaN at t where any of bars t-n+1..t has a NaN (volume included) or bar t-n a NaN price:
    bar t-n supplies only the previous TP, so its volume does not matter (K3; unlike F0's b0,
    a NaN volume does not shift the layout beyond its own windows); a zero volume is a
    valid 0."""
    high, low, close, volume = _arrays(high, low, close, volume)
    n = _period(n)
    m = len(close)
    out = _nan(m)
    if m <= n:
        return out
    tp = (high + low + close) / 3.0
    d = np.full(m, np.nan)
    d[1:] = tp[1:] - tp[:-1]
    scale = np.full(m, np.nan)
    scale[1:] = np.abs(tp[1:]) + np.abs(tp[:-1])
    flat = np.abs(d) <= _MFI_DEAD_ZONE * scale
    flow = tp * volume
    pos = np.where(~flat & (d > 0), flow, 0.0) + d * 0 + flow * 0
    neg = np.where(~flat & (d < 0), flow, 0.0) + d * 0 + flow * 0
    p = _window_sum(pos, n)
    total = p + _window_sum(neg, n)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = np.where(total > 0, 100.0 * (np.clip(p, 0.0, total) / total), 0.0) + total * 0
    out[:n] = np.nan
    return out
