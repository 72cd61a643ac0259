"""Range, volatility and regime families of the one-minute bars (FEATURE_DEFINITIONS K6, K7,
K13): `fibonacci`, `realized_volatility` and `market_regime`, all on the raw prices (every
quantity is a ratio or a log ratio, so the rate index would give the same values).
models/bar/<model>.yml defines every column.

Windows count bars and include the current one (K0). Sums over a window add that window's own
terms (van Herk / Gil-Werman blocks: each window is a suffix of one block plus a prefix of the
next), never a difference of running sums, so a window of zero terms gives exactly 0 (K7) and
a window's extreme is exact; regressions are fitted on sliding windows centred on the current
close (K0 numerics). ADX is the private Wilder recursion of F5 (TA-Lib 0.8.2 ADX(14)), the one
sequential loop here. The bars' open, high, low and close are non-NULL positive prices; volume,
spread and ticks may be NULL (NaN).
"""

from __future__ import annotations

import math

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from tf_bar_common import Bars, first_order
from tf_bar_common import window_reduce as _window_reduce
from tf_common import checkpoint

# --- columns ------------------------------------------------------------------------------------

FIB_WINDOWS: tuple[int, ...] = (60, 240, 1440)
FIB_RATIOS: tuple[float, ...] = (0.236, 0.382, 0.5, 0.618, 0.786)
RV_WINDOWS: tuple[int, ...] = (15, 30, 60, 120, 240, 1440)
RV_ESTIMATORS: tuple[str, ...] = (
    "close",
    "parkinson",
    "garman_klass",
    "rogers_satchell",
    "yang_zhang",
)
REGIME_WINDOWS: tuple[int, ...] = (15, 30, 60, 240)
HURST_WINDOWS: tuple[int, ...] = (256, 1024)
HURST_CHUNKS: tuple[int, ...] = (8, 16, 32, 64, 128, 256, 512)
DAY = 1440  # bars in the trailing day of the regime percentiles
ADX_PERIOD = 14
VOL_PCT_WINDOWS: tuple[int, ...] = (15, 60, 240)
LIQ_PCT_WINDOWS: tuple[int, ...] = (15, 60)
TIE_TOLERANCE = 1e-9  # percent ranks: values within this relative distance are ties

FIB_COLUMNS: list[str] = [
    name
    for s in FIB_WINDOWS
    for name in (
        *(f"fib_dist_{round(rho * 1000)}_w{s}" for rho in FIB_RATIOS),
        f"fib_position_w{s}",
        f"fib_direction_w{s}",
        f"fib_range_w{s}",
        f"fib_nearest_dist_w{s}",
        f"fib_bars_since_high_w{s}",
        f"fib_bars_since_low_w{s}",
    )
]
RV_COLUMNS: list[str] = [f"rvol_{e}_w{n}" for e in RV_ESTIMATORS for n in RV_WINDOWS]
REGIME_COLUMNS: list[str] = [
    *(
        f"regime_{metric}_w{n}"
        for n in REGIME_WINDOWS
        for metric in ("er", "slope_z", "r2", "trend_score", "range_pos")
    ),
    *(f"regime_hurst_w{n}" for n in HURST_WINDOWS),
    "regime_adx",
    "regime_di_diff",
    "regime_adx_change_w5",
    "regime_adx_trend",
    "regime_adx_direction",
    *(f"regime_vol_pct_w{n}" for n in VOL_PCT_WINDOWS),
    "regime_vol_ratio_w15_w240",
    "regime_vol_class",
    *(f"regime_liq_pct_w{n}" for n in LIQ_PCT_WINDOWS),
    "regime_liq_class",
    "regime_spread_pct",
    "regime_ticks_pct",
    "regime_range_pct_w60",
    "regime_range_pct_w240",
    *(f"regime_hurst_class_w{n}" for n in HURST_WINDOWS),
    "regime_state",
]

MODELS: dict[str, list[str]] = {
    "fibonacci": FIB_COLUMNS,
    "realized_volatility": RV_COLUMNS,
    "market_regime": REGIME_COLUMNS,
}

# bars before the first written row that each model reads (its models/bar/<model>.sql):
# the longest lookback (market_regime: rvol over 240 bars ranked over the trailing 1440);
# ADX(14) restarted that far back has forgotten its seed: (13/14)^1679 < 1e-50
WARMUP_BARS: dict[str, int] = {
    "fibonacci": max(FIB_WINDOWS) - 1,
    "realized_volatility": max(RV_WINDOWS),
    "market_regime": max(VOL_PCT_WINDOWS) + DAY - 1,
}


def compute(model: str, bars: Bars, params: dict) -> dict[str, np.ndarray]:
    """Every column of `model` on one symbol's bars (tf_bar_common explains the contract)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        if model == "fibonacci":
            return _fibonacci(bars)
        if model == "realized_volatility":
            return _realized_volatility(bars)
        # rows before `start` are only warm-up: the windowed ranks and fits skip them
        return _market_regime(bars, int(params.get("start") or 0))


# --- window building blocks ---------------------------------------------------------------------


def _window_sum(x: np.ndarray, n: int) -> np.ndarray:
    return _window_reduce(x, n, np.add)


def _latest_max(x: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """The max of x over bars t-n+1..t and the latest bar holding it (NaN for the first n-1
    bars); x has no NaN."""
    m = len(x)
    value = np.full(m, np.nan)
    where = np.full(m, np.nan)
    if m < n:
        return value, where
    rows = -(-m // n)
    padded = np.full(rows * n, -np.inf)
    padded[:m] = x
    blocks = padded.reshape(rows, n)
    index = np.arange(rows * n).reshape(rows, n)
    # prefix of each block: running max, latest holder = latest bar equal to its running max
    pre = np.maximum.accumulate(blocks, axis=1)
    pre_at = np.maximum.accumulate(np.where(blocks == pre, index, -1), axis=1)
    # suffix of each block, walked backwards: the holder is the latest strict new max
    back = blocks[:, ::-1]
    suf = np.maximum.accumulate(back, axis=1)
    before = np.concatenate([np.full((rows, 1), -np.inf), suf[:, :-1]], axis=1)
    pos = np.maximum.accumulate(np.where(back > before, np.arange(n), 0), axis=1)
    suf_at = np.take_along_axis(index[:, ::-1], pos, axis=1)[:, ::-1].ravel()
    suf = suf[:, ::-1].ravel()
    pre, pre_at = pre.ravel(), pre_at.ravel()
    t = np.arange(n - 1, m)
    start = t - n + 1
    take_prefix = (start % n == 0) | (pre[t] >= suf[start])
    value[n - 1 :] = np.where(take_prefix, pre[t], suf[start])
    where[n - 1 :] = np.where(take_prefix, pre_at[t], suf_at[start])
    return value, where


def _lag(x: np.ndarray, k: int) -> np.ndarray:
    out = np.full(len(x), np.nan)
    if len(x) > k:
        out[k:] = x[:-k] if k else x
    return out


def _log_ratio(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """ln(a/b) as ln(1 + (a-b)/b) (T17: exact 0 when a = b, full digits when a is near b)."""
    return np.log1p((a - b) / b)


def _percent_rank(v: np.ndarray, first: int, window: int = DAY, skip: int = 0) -> np.ndarray:
    """Percent rank of v_t among the non-NULL values of bars t-window+1..t: the share of the
    others strictly below it, #{v_j < v_t - 1e-9|v_t|} / (m - 1), m the non-NULL count (the
    current value included). NULL while t < first + window - 1 (first: the series' first
    possible value), when v_t is NULL or when m < 2. Rows before `skip` are left NULL (not
    computed: an incremental refresh writes none of them)."""
    m = len(v)
    out = np.full(m, np.nan)
    begin = max(first + window - 1, skip)
    if m <= begin:
        return out
    count = _window_sum(np.isfinite(v).astype(float), window)
    view = sliding_window_view(v, window)  # row i ends at bar i + window - 1
    step = max(1, (1 << 22) // window)
    below = np.empty(m - begin)
    for a in range(begin, m, step):
        b = min(m, a + step)
        current = v[a:b]
        threshold = current - TIE_TOLERANCE * np.abs(current)
        below[a - begin : b - begin] = np.count_nonzero(
            view[a - window + 1 : b - window + 1] < threshold[:, None], axis=1
        )
        checkpoint()
    pct = below / (count[begin:] - 1)
    pct[~np.isfinite(v[begin:]) | (count[begin:] < 2)] = np.nan
    out[begin:] = pct
    return out


def _classes(pct: np.ndarray) -> np.ndarray:
    """0 below 0.2, 2 above 0.8, 1 between (bounds included), NULL where pct is NULL."""
    out = np.where(pct < 0.2, 0.0, np.where(pct > 0.8, 2.0, 1.0))
    out[np.isnan(pct)] = np.nan
    return out


# --- K6 fibonacci -------------------------------------------------------------------------------


def _fibonacci(bars: Bars) -> dict[str, np.ndarray]:
    high, low, close = bars.high, bars.low, bars.close
    bar = np.arange(len(close), dtype=float)
    out: dict[str, np.ndarray] = {}
    for s in FIB_WINDOWS:
        hs, at_high = _latest_max(high, s)
        neg_ls, at_low = _latest_max(-low, s)
        ls = -neg_ls
        span = hs - ls
        direction = np.where(at_high >= at_low, 1.0, -1.0)
        direction[np.isnan(hs)] = np.nan
        dists = []
        for rho in FIB_RATIOS:
            level = np.where(direction > 0, hs - rho * span, ls + rho * span)
            dist = 100.0 * (close - level) / close
            out[f"fib_dist_{round(rho * 1000)}_w{s}"] = dist
            dists.append(dist)
        out[f"fib_position_w{s}"] = np.where(span != 0, (close - ls) / span, np.nan)
        out[f"fib_direction_w{s}"] = direction
        out[f"fib_range_w{s}"] = 100.0 * span / close
        stacked = np.stack(dists, axis=1)
        nearest = np.argmin(np.abs(np.nan_to_num(stacked, nan=np.inf)), axis=1)
        out[f"fib_nearest_dist_w{s}"] = np.take_along_axis(stacked, nearest[:, None], axis=1)[:, 0]
        out[f"fib_bars_since_high_w{s}"] = bar - at_high
        out[f"fib_bars_since_low_w{s}"] = bar - at_low
    return out


# --- K7 realized_volatility ---------------------------------------------------------------------


def _sample_variance(x: np.ndarray, n: int) -> np.ndarray:
    """std_s^2 over bars t-n+1..t from the window's own sums; exactly 0 when its n values are
    equal."""
    total = _window_sum(x, n)
    square = _window_sum(x * x, n)
    var = np.maximum(square - total * total / n, 0.0) / (n - 1)
    equal = _window_reduce(x, n, np.maximum) == _window_reduce(x, n, np.minimum)
    var[equal] = 0.0
    return var


def _realized_volatility(bars: Bars) -> dict[str, np.ndarray]:
    o, h, lo, c = bars.open, bars.high, bars.low, bars.close
    r = _log_ratio(c, _lag(c, 1))
    hl = _log_ratio(h, lo)
    u = _log_ratio(h, o)
    d = _log_ratio(lo, o)
    co = _log_ratio(c, o)
    jump = _log_ratio(o, _lag(c, 1))
    gk_term = 0.5 * hl * hl - (2.0 * math.log(2.0) - 1.0) * co * co
    rs_term = u * (u - co) + d * (d - co)
    rs_with_jump = np.where(np.isnan(jump), np.nan, rs_term)  # Yang-Zhang needs the previous close
    co_with_jump = np.where(np.isnan(jump), np.nan, co)
    out: dict[str, np.ndarray] = {}
    for n in RV_WINDOWS:
        out[f"rvol_close_w{n}"] = np.sqrt(_window_sum(r * r, n))
        out[f"rvol_parkinson_w{n}"] = np.sqrt(_window_sum(hl * hl, n) / (4.0 * n * math.log(2.0)))
        out[f"rvol_garman_klass_w{n}"] = np.sqrt(_window_sum(gk_term, n) / n)
        out[f"rvol_rogers_satchell_w{n}"] = np.sqrt(_window_sum(rs_term, n) / n)
        k = 0.34 / (1.34 + (n + 1) / (n - 1))
        yz = (
            _sample_variance(jump, n)
            + k * _sample_variance(co_with_jump, n)
            + (1.0 - k) * _window_sum(rs_with_jump, n) / n
        )
        out[f"rvol_yang_zhang_w{n}"] = np.sqrt(yz)
    return out


# --- K13 market_regime --------------------------------------------------------------------------


def _trend_fits(
    close: np.ndarray, windows: tuple[int, ...], skip: int = 0
) -> dict[int, list[np.ndarray]]:
    """D2 over the last n closes for each n in windows: [slope_z, R^2, trend score], on
    y = ln C centred on the current close (y_j = ln(C_j / C_t)). Every window ends at the
    current close, so the shorter ones are the last columns of the longest one's y. Rows
    before `skip` are left NULL."""
    m = len(close)
    longest = max(windows)
    fits = {n: [np.full(m, np.nan) for _ in range(3)] for n in windows}
    padded = np.concatenate([np.full(longest - 1, np.nan), close])
    view = sliding_window_view(padded, longest)  # row t: bars t-longest+1..t
    step = max(1, (1 << 21) // longest)
    for a in range(min(skip, m), m, step):
        window = view[a : a + step]
        current = window[:, -1:]
        y_all = np.log1p((window - current) / current)
        rows = slice(a, a + len(window))
        for n in windows:
            y = y_all[:, longest - n :]
            weights = np.arange(n) - (n - 1) / 2.0  # x - mean(x), exact
            sxx = float(weights @ weights)
            sy = y.sum(axis=1)
            syy = np.maximum((y * y).sum(axis=1) - sy * sy / n, 0.0)
            sxy = y @ weights
            flat = (y == 0.0).all(axis=1)
            syy[flat] = 0.0
            slope = sxy / sxx
            slope_z, r2, score = fits[n]
            slope_z[rows] = np.where(flat, np.nan, slope / np.sqrt(syy / (n - 1)))
            fit = np.where(flat, 0.0, sxy * sxy / (sxx * syy))
            r2[rows] = fit
            score[rows] = np.sign(slope) * fit
        checkpoint()
    return fits


def _rs_of_chunks(
    r: np.ndarray, s: int, first_end: int = 0, rows_from: int | None = None, span: int = 0
) -> np.ndarray:
    """D4 step 2 for the chunk of s returns ending at each bar: R/S, NaN when S = 0 (all s
    returns equal, decided exactly) or a return is NULL. Chunks ending before `first_end`
    are left NaN (not computed). With `rows_from`, when fewer than s rows from it on are
    written (an incremental refresh), only the chunks those rows read are computed: the ones
    ending at t, t - s, ... (within `span` bars) for each written row t; the others are left
    NaN too. Each computed chunk is the same arithmetic on the same values either way."""
    m = len(r)
    out = np.full(m, np.nan)
    if m < s:
        return out
    varies = (_window_reduce(r, s, np.maximum) != _window_reduce(r, s, np.minimum))[s - 1 :]
    view = sliding_window_view(r, s)
    lowest = max(first_end, s - 1)
    if rows_from is not None and 0 < m - rows_from < s:
        ends = np.unique(
            np.concatenate(
                [np.arange(t, max(lowest, t - span) - 1, -s) for t in range(max(rows_from, 0), m)]
            )
        )
        ends = ends[ends >= lowest]
        if len(ends):
            out[ends] = _rs(view[ends - s + 1], varies[ends - s + 1], s)
        return out
    step = max(1, (1 << 20) // s)
    for a in range(max(0, first_end - s + 1), len(view), step):
        chunk = view[a : a + step]
        out[a + s - 1 : a + s - 1 + len(chunk)] = _rs(chunk, varies[a : a + len(chunk)], s)
        checkpoint()
    return out


def _rs(chunk: np.ndarray, varies: np.ndarray, s: int) -> np.ndarray:
    """R/S of each row of `chunk` (s returns), NaN where they do not vary or S = 0."""
    dev = chunk - chunk.mean(axis=1, keepdims=True)
    y = np.cumsum(dev, axis=1)
    spread = y.max(axis=1) - y.min(axis=1)
    sd = np.sqrt(np.einsum("ij,ij->i", dev, dev) / s)
    return np.where(varies & (sd > 0), spread / sd, np.nan)


def _every_sth_sum(x: np.ndarray, s: int, k: int) -> np.ndarray:
    """x_t + x_{t-s} + ... + x_{t-(k-1)s} (NaN where a term is missing)."""
    m = len(x)
    rows = -(-m // s)
    padded = np.zeros(rows * s)
    padded[:m] = x
    return _window_sum(padded.reshape(rows, s), k).ravel()[:m]


def _hurst(rs: dict[int, np.ndarray], n: int, m: int) -> np.ndarray:
    """D4 over the last n log returns (bars t-n+1..t), from the R/S of every chunk."""
    sizes = [s for s in HURST_CHUNKS if s <= n // 2]
    log_size = np.log(np.array(sizes, dtype=float))
    log_rs = np.zeros((m, len(sizes)))
    kept = np.zeros((m, len(sizes)), dtype=bool)
    for j, s in enumerate(sizes):
        q = rs[s]
        total = _every_sth_sum(np.nan_to_num(q, nan=0.0), s, n // s)
        count = _every_sth_sum(np.isfinite(q).astype(float), s, n // s)
        kept[:, j] = count > 0
        log_rs[:, j] = np.where(kept[:, j], np.log(total / count), 0.0)
    w = kept.astype(float)
    size_count = w.sum(axis=1)
    x_mean = (w * log_size).sum(axis=1) / size_count
    y_mean = (w * log_rs).sum(axis=1) / size_count
    dx = (log_size - x_mean[:, None]) * w
    slope = (dx * (log_rs - y_mean[:, None])).sum(axis=1) / (dx * dx).sum(axis=1)
    slope[size_count < 3] = np.nan
    slope[: min(n, m)] = np.nan  # n returns need n + 1 closes
    return slope


def _wilder_adx(high: np.ndarray, low: np.ndarray, close: np.ndarray, n: int = ADX_PERIOD):
    """F5: TA-Lib 0.8.2 ADX(n), PLUS_DI(n) - MINUS_DI(n) (0 where TR's sum is "zero")."""
    m = len(close)
    adx = np.full(m, np.nan)
    di_diff = np.full(m, np.nan)
    if m < 2 * n:
        return adx, di_diff
    up = high[1:] - high[:-1]
    down = low[:-1] - low[1:]
    plus_dm = np.concatenate([[0.0], np.where((up > 0) & (up > down), up, 0.0)])
    minus_dm = np.concatenate([[0.0], np.where((down > 0) & (down > up), down, 0.0)])
    prev_close = close[:-1]
    tr = np.concatenate(
        [
            [0.0],
            np.maximum.reduce(
                [high[1:] - low[1:], np.abs(high[1:] - prev_close), np.abs(low[1:] - prev_close)]
            ),
        ]
    )
    a = 1.0 - 1.0 / n

    def smooth(term: np.ndarray) -> np.ndarray:
        out = np.full(m, np.nan)
        seed = term[1:n].sum()
        out[n - 1] = seed
        out[n:] = first_order(term[n:], a, before=seed)
        return out

    p, mi, t = smooth(plus_dm), smooth(minus_dm), smooth(tr)
    eps = 1e-14  # TA_IS_ZERO
    tr_ok = np.abs(t) >= eps
    plus_di = np.where(tr_ok, 100.0 * p / t, 0.0)
    minus_di = np.where(tr_ok, 100.0 * mi / t, 0.0)
    di_sum = plus_di + minus_di
    defined = tr_ok & (np.abs(di_sum) >= eps)
    dx = np.where(defined, 100.0 * np.abs(minus_di - plus_di) / di_sum, 0.0)
    value = float(dx[n : 2 * n].sum()) / n
    adx[2 * n - 1] = value
    dx_list, ok_list = dx.tolist(), defined.tolist()
    values = [value]
    for i in range(2 * n, m):
        if ok_list[i]:
            value = (value * (n - 1) + dx_list[i]) / n
        values.append(value)
        if i % 100_000 == 0:
            checkpoint()
    adx[2 * n - 1 :] = values
    di_diff[2 * n - 1 :] = (plus_di - minus_di)[2 * n - 1 :]
    return adx, di_diff


def _market_regime(bars: Bars, skip: int = 0) -> dict[str, np.ndarray]:
    close = bars.close
    m = len(close)
    out: dict[str, np.ndarray] = {}
    step = np.abs(close - _lag(close, 1))
    fits = _trend_fits(close, REGIME_WINDOWS, skip)
    for n in REGIME_WINDOWS:
        path = _window_sum(step, n)
        net = np.abs(close - _lag(close, n))
        out[f"regime_er_w{n}"] = np.where(path > 0, net / path, np.where(path == 0, 0.0, np.nan))
        slope_z, r2, score = fits[n]
        out[f"regime_slope_z_w{n}"] = slope_z
        out[f"regime_r2_w{n}"] = r2
        out[f"regime_trend_score_w{n}"] = score
        top = _window_reduce(close, n, np.maximum)
        bottom = _window_reduce(close, n, np.minimum)
        out[f"regime_range_pos_w{n}"] = np.where(
            top > bottom, (close - bottom) / (top - bottom), np.where(top == bottom, 0.5, np.nan)
        )
        if n in (60, 240):
            out[f"regime_range_pct_w{n}"] = 100.0 * (top - bottom) / close
    r = _log_ratio(close, _lag(close, 1))
    # a Hurst exponent at bar t reads the chunks ending at t, t - s, ..., t - n + s: rows
    # before `skip` are not written, so chunks ending before skip - n + s are not needed
    longest = max(HURST_WINDOWS)
    rs = {
        s: _rs_of_chunks(r, s, first_end=skip - longest + s, rows_from=skip, span=longest - s)
        for s in HURST_CHUNKS
        if s <= longest // 2
    }
    for n in HURST_WINDOWS:
        hurst = _hurst(rs, n, m)
        out[f"regime_hurst_w{n}"] = hurst
        label = np.where(hurst > 0.55, 1.0, np.where(hurst < 0.45, -1.0, 0.0))
        label[np.isnan(hurst)] = np.nan
        out[f"regime_hurst_class_w{n}"] = label

    adx, di_diff = _wilder_adx(bars.high, bars.low, close)
    out["regime_adx"] = adx
    out["regime_di_diff"] = di_diff
    out["regime_adx_change_w5"] = adx - _lag(adx, 5)
    trend = np.where(adx < 20.0, 0.0, np.where(adx < 25.0, 1.0, 2.0))
    trend[np.isnan(adx)] = np.nan
    out["regime_adx_trend"] = trend
    direction = np.where(adx >= 25.0, np.sign(di_diff), 0.0)
    direction[np.isnan(adx)] = np.nan
    out["regime_adx_direction"] = direction

    squares = r * r
    sums = {n: _window_sum(squares, n) for n in sorted({*VOL_PCT_WINDOWS, 15, 240})}
    for n in VOL_PCT_WINDOWS:
        out[f"regime_vol_pct_w{n}"] = _percent_rank(np.sqrt(sums[n]), first=n, skip=skip)
    out["regime_vol_ratio_w15_w240"] = np.where(
        sums[240] > 0, np.sqrt((sums[15] / 15.0) / (sums[240] / 240.0)), np.nan
    )
    out["regime_vol_class"] = _classes(out["regime_vol_pct_w60"])

    volume = bars.volume
    simple = (close - _lag(close, 1)) / _lag(close, 1)
    traded = volume > 0
    term = np.where(traded, np.abs(simple) / (close * np.where(traded, volume, 1.0)), 0.0)
    term[np.isnan(volume) | np.isnan(simple)] = np.nan
    for n in LIQ_PCT_WINDOWS:
        count = _window_sum(traded.astype(float), n)
        amihud = np.where(count > 0, _window_sum(term, n) / count, np.nan)
        out[f"regime_liq_pct_w{n}"] = _percent_rank(amihud, first=n, skip=skip)
    out["regime_liq_class"] = _classes(out["regime_liq_pct_w60"])
    out["regime_spread_pct"] = _percent_rank(bars.spread, first=0, skip=skip)
    out["regime_ticks_pct"] = _percent_rank(bars.ticks, first=0, skip=skip)
    out["regime_state"] = 3.0 * out["regime_vol_class"] + out["regime_adx_trend"]
    return out
