"""Rolling moments of the bar domains: Bollinger bands (FEATURE_DEFINITIONS K1, models
bollinger_rate and bollinger_bqx) and window statistics (K2, statistics_rate and
statistics_bqx). models/bar/<model>.yml defines every column.

Series and windows (K0): the rate models run on idx = 100 C / C_first with the windows of
BQX_WINDOWS; the bqx models run on bqx_N with window N. A window of N rows ends at the
current bar and is NULL unless all N values are valid (section 0, T1), so a bqx_N window
first has a value on row 2N - 1.

Numerics (K0): idx lives near 100 and moves by about 1e-3 a bar, so a running sum of squares
(TA-Lib's, pandas') loses most digits of a window's variance. Every window is instead
centred on its own last value, d = x - x_t (exact for idx by Sterbenz' lemma), then on the
mean m of d: e = d - m, and the central sums S_k = sum e^k are taken over the window
(sliding_window_view, O(n N) but vectorised, in blocks of BLOCK_VALUES values). A window
whose values are all equal gives d = e = 0 and S_2 = 0 exactly, which is what the NULL rules
of K1 (sigma = 0) and K2 (std_s = 0) test.
"""

from __future__ import annotations

import numpy as np
from tf_bar_common import BQX_WINDOWS, Bars, bqx, rate_index
from tf_common import InputError, checkpoint

# values (rows x window) held at once by one block of windows: 256 kB a float64 array, which
# stays in cache (measured fastest among 2^15 .. 2^20)
BLOCK_VALUES = 1 << 15


def _bollinger_columns(domain: str) -> list[str]:
    return [f"bb_pctb_{domain}_w{n}" for n in BQX_WINDOWS] + [
        f"bb_width_{domain}_w{n}" for n in BQX_WINDOWS
    ]


def _statistics_columns(domain: str) -> list[str]:
    metrics = ("mean", "std", "zscore", "skew", "kurt")
    return [f"stat_{metric}_{domain}_w{n}" for metric in metrics for n in BQX_WINDOWS]


MODELS: dict[str, list[str]] = {
    "bollinger_rate": _bollinger_columns("rate"),
    "bollinger_bqx": _bollinger_columns("bqx"),
    "statistics_rate": _statistics_columns("rate"),
    "statistics_bqx": _statistics_columns("bqx"),
}


def _central_sums(x: np.ndarray, n: int, orders: int) -> tuple[np.ndarray, ...]:
    """Per row t, over the window x[t-n+1 .. t]: the mean of d = x - x_t and the central sums
    S_2 .. S_orders (orders 2 to 4) of the window, S_k = sum of (d - mean d)^k. NaN where the
    window is incomplete or holds a NaN."""
    size = len(x)
    out = tuple(np.full(size, np.nan) for _ in range(orders))
    if size < n:
        return out
    windows = np.lib.stride_tricks.sliding_window_view(x, n)  # row t is windows[t - n + 1]
    step = max(1, BLOCK_VALUES // n)
    for first in range(0, len(windows), step):
        last = min(first + step, len(windows))
        rows = slice(first + n - 1, last + n - 1)
        d = windows[first:last] - x[rows, None]
        mean_d = d.mean(axis=1)
        e = d - mean_d[:, None]
        out[0][rows] = mean_d
        if orders == 2:
            out[1][rows] = np.einsum("ij,ij->i", e, e)
        else:
            e2 = e * e
            out[1][rows] = e2.sum(axis=1)
            out[2][rows] = np.einsum("ij,ij->i", e2, e)
            if orders > 3:
                out[3][rows] = np.einsum("ij,ij->i", e2, e2)
        checkpoint()
    return out


def _ratio(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    """numerator / denominator, NaN where the denominator is 0 or NaN."""
    out = np.full(len(numerator), np.nan)
    np.divide(numerator, denominator, out=out, where=denominator != 0)
    return out


def _bollinger(x: np.ndarray, n: int, domain: str) -> dict[str, np.ndarray]:
    """K1: BBANDS(x, n, 2, 2, SMA) with the population sigma, centred."""
    mean_d, s2 = _central_sums(x, n, 2)
    sigma = np.sqrt(s2 / n)
    middle = x + mean_d
    # upper - lower = 4 sigma; x - lower = (x_t - middle) + 2 sigma = 2 sigma - mean_d
    width = 4.0 * sigma
    return {
        f"bb_pctb_{domain}_w{n}": _ratio(2.0 * sigma - mean_d, width),
        f"bb_width_{domain}_w{n}": _ratio(width, middle) if domain == "rate" else width,
    }


def _statistics(x: np.ndarray, n: int, domain: str) -> dict[str, np.ndarray]:
    """K2: mean, std_s, z-score and pandas' rolling skew and kurt, written out."""
    mean_d, s2, s3, s4 = _central_sums(x, n, 4)
    std = np.sqrt(s2 / (n - 1))
    # with m_k = S_k / n: m3 / m2^(3/2) = sqrt(n) S3 / S2^(3/2); S2 = 0 (std_s = 0) gives NULL
    skew = np.sqrt(n * (n - 1.0)) / (n - 2.0) * np.sqrt(n) * _ratio(s3, s2**1.5)
    c = (n - 2.0) * (n - 3.0)
    kurt = (n + 1.0) * n * (n - 1.0) / c * _ratio(s4, s2 * s2) - 3.0 * (n - 1.0) ** 2 / c
    return {
        f"stat_mean_{domain}_w{n}": x + mean_d,
        f"stat_std_{domain}_w{n}": std,
        f"stat_zscore_{domain}_w{n}": _ratio(-mean_d, std),
        f"stat_skew_{domain}_w{n}": skew,
        f"stat_kurt_{domain}_w{n}": kurt,
    }


def compute(model: str, bars: Bars, params: dict) -> dict[str, np.ndarray]:
    """Every column of `model` over the whole input (tf_bar_common explains the contract)."""
    if model not in MODELS:
        raise InputError(f"tf_bar_stats has no model named '{model}'")
    family, domain = model.rsplit("_", 1)
    kernel = _bollinger if family == "bollinger" else _statistics
    if domain == "rate":
        first_close = params.get("first_close")
        if first_close is None or not np.isfinite(first_close) or first_close <= 0:
            raise InputError(f"{model}: first_close must be a positive price, got {first_close!r}")
        idx = rate_index(bars.close, float(first_close))
    out: dict[str, np.ndarray] = {}
    for n in BQX_WINDOWS:
        out.update(kernel(idx if domain == "rate" else bqx(bars.close, n), n, domain))
    return {column: out[column] for column in MODELS[model]}
