"""Oracle of the bar families `bollinger_rate`, `bollinger_bqx` (FEATURE_DEFINITIONS K1) and
`statistics_rate`, `statistics_bqx` (K2), written from section K and models/bar/*.yml, not from
the kernel (python_udfs/tf_bar_stats.py).

Series (K0): idx = 100 C / C_first; bqx_N = 100 (C_t - C_{t-N}) / C_{t-N}, NaN on the first N
bars. The rate families use every window N of WINDOWS on idx, the bqx families window N on
bqx_N. A window is the N rows ending at the current bar and has a value only when all N are
valid (section 0, T1: pandas rolling(N, min_periods=N)).

Flat windows. A window is flat when its largest and smallest values are equal, tested on the
values themselves (no arithmetic), so the exact-arithmetic sigma (K1) and std_s (K2) are 0
there: bb_pctb, stat_zscore, stat_skew and stat_kurt are NULL, bb_width and stat_std are 0.

K1, TA-Lib. For each complete window w the oracle calls talib.BBANDS(w - w[-1], N, 2, 2,
SMA) and keeps the last bar. The bands shift with a constant (BBANDS(x - c) = BBANDS(x) - c,
sigma unchanged), so this is TA-Lib's own definition computed centred: on the raw idx, near
100, TA-Lib's running sum of squares would leave sigma noise of about 1e-7, and so would a
long series' running sums. On w - w[-1] TA-Lib's mean(x^2) - mean^2 cancels at most a factor
N (the window holds a 0), far inside 1e-9. Where the window is flat the exact value wins
(above). Where TA-Lib's sigma is 0 in a window that is not flat (its variance at or below
TA_EPSILON = 1e-14), the exact value wins too: the centred formula's value is used (the
datasets of the tests have no such window; bollinger_talib_zero_sigma counts them).
Every TA-Lib value is checked against the centred formula (below) to 1e-9 of
max(|value|, 1) (a %B and a width relative to the window's own scale are O(1) terms).

K1 and K2, the centred formula. Each window is taken in extended precision (numpy longdouble,
64-bit mantissa), centred on its own mean, e = w - mean(w); then m_k = sum e^k / n:
sigma = sqrt(m2) (population, K1), std_s = sqrt(sum e^2 / (n - 1)), the z-score, and pandas'
skew and kurt written out as K2 gives them. The K2 columns are this formula's values.

K2, pandas. The oracle checks them against pandas on the same series, outside flat windows:
the rolling mean, skew and kurt, and the std_s of each window by DataFrame.std(axis=1) (pandas'
two-pass nanvar: its rolling std keeps the running sums' noise of the symbol's whole history,
up to 6e-7 of std_s in a window of 29 equal values and one other, and so would the z-score),
to CROSS_CHECK_TOL of the size of the terms: max |w| for the mean, std_s for std_s, the
z-score's size (1), sqrt(n(n-1))/(n-2) sum|e|^3/n / m2^(3/2) for the skew and the larger of
the kurt's two terms. pandas' running sums leave up to 4e-9 of those sizes on the test
datasets, so CROSS_CHECK_TOL (1e-7) cannot confirm the 10th digit, but it does catch any
mistake in the written-out formula (a wrong bias factor is an O(1) error). Its NULLs of skew
and kurt must be the oracle's.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
import talib
from numpy.lib.stride_tricks import sliding_window_view

WINDOWS: tuple[int, ...] = (15, 30, 45, 60, 75)
CROSS_CHECK_TOL = 1e-7
TALIB_TOL = 1e-9

#: windows where TA-Lib's sigma was 0 but the window not flat (the exact value was used)
bollinger_talib_zero_sigma = 0


def _series(bars: pd.DataFrame, first_close: float, domain: str) -> list[tuple[int, np.ndarray]]:
    """(window N, the series the family runs on for N) for every N of WINDOWS."""
    close = bars["close"].reset_index(drop=True).astype(float)
    if domain == "rate":
        idx = (100 * close / first_close).to_numpy()
        return [(n, idx) for n in WINDOWS]
    out = []
    for n in WINDOWS:
        before = close.shift(n)
        out.append((n, (100 * (close - before) / before).to_numpy()))
    return out


class _Windows:
    """Every complete window of length n of x, in extended precision, with its central
    moments; arrays indexed by row (NaN where the window is incomplete or holds a NaN)."""

    def __init__(self, x: np.ndarray, n: int) -> None:
        self.n = n
        self.rows = np.arange(n - 1, len(x))
        wide = x.astype(np.longdouble)
        # no window at all (fewer than n bars): an empty (0, n) block
        self.values = sliding_window_view(wide, n) if len(x) >= n else np.empty((0, n), wide.dtype)
        self.complete = ~np.isnan(self.values).any(axis=1)
        # flat: every value equal, tested without arithmetic
        self.flat = self.complete & (self.values.max(axis=1) == self.values.min(axis=1))
        self.mean = self.values.mean(axis=1)
        e = self.values - self.mean[:, None]
        self.m2 = (e**2).sum(axis=1) / n
        self.m3 = (e**3).sum(axis=1) / n
        self.m4 = (e**4).sum(axis=1) / n
        self.abs3 = (np.abs(e) ** 3).sum(axis=1) / n

    def by_row(self, size: int, values: np.ndarray) -> np.ndarray:
        out = np.full(size, np.nan)
        out[self.rows] = np.where(self.complete, np.asarray(values, dtype=np.float64), np.nan)
        return out


def _frame(bars: pd.DataFrame, columns: dict[str, np.ndarray]) -> pd.DataFrame:
    out = pd.DataFrame({"symbol": bars["symbol"].to_numpy(), "ts": bars["ts"].to_numpy()})
    for name, values in columns.items():
        out[name] = values
    return out


def _talib_bands(window: np.ndarray, n: int, domain: str) -> tuple[float, float]:
    """(%B, width) of the window's last bar from talib.BBANDS on the window centred on its last
    value (the bands shift with the centre, sigma does not); NaN when TA-Lib's sigma is 0."""
    upper, middle, lower = (
        band[-1]
        for band in talib.BBANDS(
            window - window[-1], timeperiod=n, nbdevup=2, nbdevdn=2, matype=talib.MA_Type.SMA
        )
    )
    if upper == lower:
        return np.nan, np.nan
    width = (upper - lower) / (middle + window[-1]) if domain == "rate" else upper - lower
    return (0.0 - lower) / (upper - lower), width


def _bollinger(bars: pd.DataFrame, first_close: float, domain: str) -> pd.DataFrame:
    global bollinger_talib_zero_sigma
    size = len(bars)
    pctb: dict[str, np.ndarray] = {}
    width: dict[str, np.ndarray] = {}
    for n, x in _series(bars, first_close, domain):
        w = _Windows(x, n)
        # the centred formula in extended precision
        sigma = np.sqrt(w.m2)
        with np.errstate(divide="ignore", invalid="ignore"):
            exact_pctb = (w.values[:, -1] - (w.mean - 2 * sigma)) / (4 * sigma)
        exact_width = 4 * sigma / w.mean if domain == "rate" else 4 * sigma
        got = {"pctb": np.full(len(w.rows), np.nan), "width": np.full(len(w.rows), np.nan)}
        for i in np.flatnonzero(w.complete):
            if w.flat[i]:
                got["width"][i] = 0.0  # sigma = 0 exactly: %B NULL, width 0
                continue
            t = w.rows[i]
            talib_values = _talib_bands(x[t - n + 1 : t + 1], n, domain)
            for name, talib_value, exact in zip(
                got, talib_values, (exact_pctb[i], exact_width[i]), strict=True
            ):
                exact = float(exact)
                if np.isnan(talib_value):
                    # TA_EPSILON cut a sigma the window has: the exact value wins
                    bollinger_talib_zero_sigma += name == "pctb"
                    got[name][i] = exact
                elif abs(talib_value - exact) > TALIB_TOL * max(abs(talib_value), abs(exact), 1):
                    raise AssertionError(
                        f"BBANDS {name} N={n} row {t}: TA-Lib {talib_value!r}, centred {exact!r}"
                    )
                else:
                    got[name][i] = talib_value
        pctb[f"bb_pctb_{domain}_w{n}"] = w.by_row(size, got["pctb"])
        width[f"bb_width_{domain}_w{n}"] = w.by_row(size, got["width"])
    return _frame(bars, pctb | width)


def _cross_check(
    name: str,
    pandas_values: pd.Series,
    want: np.ndarray,
    scale: np.ndarray,
    flat: np.ndarray,
    nulls_too: bool,
) -> None:
    """pandas' rolling value against the oracle's, to CROSS_CHECK_TOL of the size of the terms."""
    got = pandas_values.to_numpy(dtype=float)
    if nulls_too and (np.isnan(got) != np.isnan(want)).any():
        raise AssertionError(f"{name}: pandas' NULLs differ from the oracle's")
    both = ~np.isnan(got) & ~np.isnan(want) & ~flat
    off = np.abs(got - want)[both] > CROSS_CHECK_TOL * np.maximum(scale[both], np.abs(want[both]))
    if off.any():
        rows = int(off.sum())
        raise AssertionError(f"{name}: pandas differs from the written-out formula on {rows} rows")


def _statistics(bars: pd.DataFrame, first_close: float, domain: str) -> pd.DataFrame:
    size = len(bars)
    columns: dict[str, dict[str, np.ndarray]] = {
        m: {} for m in ("mean", "std", "zscore", "skew", "kurt")
    }
    for n, x in _series(bars, first_close, domain):
        w = _Windows(x, n)
        last = w.values[:, -1]
        std = np.sqrt(w.m2 * n / (n - 1))
        ok = w.complete & ~w.flat  # std_s > 0
        positive = np.where(ok, w.m2, 1)
        skew_factor = np.sqrt(n * (n - 1.0)) / (n - 2.0)
        # sum d^4 / (sum d^2)^2 = m4 / (n m2^2)
        c = (n - 2.0) * (n - 3.0)
        kurt_first = (n + 1.0) * n * (n - 1.0) / c * w.m4 / (n * positive**2)
        kurt_second = 3.0 * (n - 1.0) ** 2 / c
        values = {
            "mean": w.mean,
            "std": np.where(w.flat, 0, std),
            "zscore": np.where(ok, (last - w.mean) / np.where(ok, std, 1), np.nan),
            "skew": np.where(ok, skew_factor * w.m3 / positive**1.5, np.nan),
            "kurt": np.where(ok, kurt_first - kurt_second, np.nan),
        }
        for metric, v in values.items():
            columns[metric][f"stat_{metric}_{domain}_w{n}"] = w.by_row(size, v)
        # the reference: pandas' rolling moments, judged against the size of their terms
        rolling = pd.Series(x).rolling(n)
        flat = w.by_row(size, w.flat) == 1
        scales = {
            "mean": w.by_row(size, np.abs(w.values).max(axis=1)),
            "std": w.by_row(size, std),
            "zscore": np.ones(size),  # a z-score is an O(1) quantity
            "skew": w.by_row(size, skew_factor * w.abs3 / positive**1.5),
            "kurt": w.by_row(size, np.maximum(kurt_first, kurt_second)),
        }
        # std_s per window from pandas' two-pass nanvar (its rolling std keeps the running sums'
        # noise of the symbol's history: up to 6e-7 of std_s in a nearly flat window)
        window_std = np.full(size, np.nan)
        if len(w.rows):
            window_std[w.rows] = (
                pd.DataFrame(sliding_window_view(x, n)).std(axis=1, ddof=1).to_numpy()
            )
        reference = {
            "mean": rolling.mean(),
            "std": pd.Series(window_std),
            "zscore": (pd.Series(x) - rolling.mean()) / pd.Series(window_std),
            "skew": rolling.skew(),
            "kurt": rolling.kurt(),
        }
        for metric, series in reference.items():
            name = f"stat_{metric}_{domain}_w{n}"
            _cross_check(
                name,
                series,
                columns[metric][name],
                scales[metric],
                flat,
                nulls_too=metric in ("skew", "kurt"),
            )
    return _frame(bars, {k: v for metric in columns.values() for k, v in metric.items()})


ORACLES: dict[str, Callable[[pd.DataFrame, float], pd.DataFrame]] = {
    "bollinger_rate": lambda bars, first_close: _bollinger(bars, first_close, "rate"),
    "bollinger_bqx": lambda bars, first_close: _bollinger(bars, first_close, "bqx"),
    "statistics_rate": lambda bars, first_close: _statistics(bars, first_close, "rate"),
    "statistics_bqx": lambda bars, first_close: _statistics(bars, first_close, "bqx"),
}
