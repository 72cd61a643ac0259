"""What the bar-family kernels share (FEATURE_DEFINITIONS section K): the inputs, the two
domains' series, and the conventions every family follows.

A bar-family kernel module `tf_bar_<group>.py` exposes
  MODELS: dict[str, list[str]]   model name -> its output columns, in order
  compute(model, bars, params) -> dict[str, np.ndarray]
where `bars` is a `Bars` of one symbol (oldest first: the warm-up rows, then the rows to
write) and the result holds one float64 array per column, as long as the input; NaN means
NULL (a feature is never NaN: FEATURE_DEFINITIONS T17). Booleans and integers are returned as
floats (0/1, whole numbers) and cast by the model (the column's `data_type` in its YAML).

params (all optional):
  first_close: C_first, the close of the symbol's earliest bar (the rate index, K0)
  start: index of the first row that is written (rows before it only warm windows up)
  prev: the model's own stored row just before `start`, as a dict (None on a full build or
        when the symbol has no earlier row), for values that carry state from the
        symbol's first bar (K11 bars_since_gap, K8 vpin)
  extra: input arrays beyond the bars, by name (multi_scale's coarser bars: m30_minute,
        m30_open, m30_high, m30_low, m30_close, m30_volume, m30_spread, m30_ticks, m30_bars and
        the same for m60_: the buckets as bars_30m / bars_60m hold them, oldest first, from some
        warm-up bucket up to the bucket of the last one-minute bar, which may be incomplete)
  peers: families across symbols (K14 correlation, error_correction): the other symbols'
        bars, {slot: [{'minute': array, 'close': array}, ...]}; every slot the model's SQL
        names is present (an empty list when no loaded symbol fills it: a reference symbol
        not loaded, or the symbol itself). Each peer's bars are oldest first and cover at
        least the input's minutes, from the peer's PEER_WARMUP_BARS-th bar before the input's
        first minute (or its first bar) on, so a peer's returns and BQX at any input minute
        are known; they may run past the input's last minute (a kernel never reads a peer's
        bar later than the row it computes).
  refit_window, refit_stride: the heavy K14 families' trailing window in bars and their refit
        stride in minutes (a refit at each bar with minute % stride == stride - 1, i.e. the
        open minute :59 for 60); dbt vars bar_heavy_window and bar_heavy_stride
  plus whatever a model's SQL adds (e.g. vpin_bucket_volume)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# K0: the BQX windows and the windows of the families that follow them
BQX_WINDOWS: tuple[int, ...] = (15, 30, 45, 60, 75)
# K14 families across symbols: the bars of each peer symbol before the input's first minute
# that the model's SQL passes (enough for a peer's BQX over the longest window)
PEER_WARMUP_BARS = 100


@dataclass(frozen=True)
class Bars:
    """One symbol's final one-minute bars, oldest first. `minute` is the open time in whole
    minutes since the Unix epoch (UTC); volume, spread and ticks hold NaN where NULL."""

    minute: np.ndarray
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray
    spread: np.ndarray
    ticks: np.ndarray

    def __len__(self) -> int:
        return len(self.close)


INPUTS: tuple[str, ...] = ("minute", "open", "high", "low", "close", "volume", "spread", "ticks")


def bars_from_inputs(inputs: dict[str, np.ndarray]) -> Bars:
    """A Bars from the named input arrays (all of INPUTS, the same length)."""
    missing = [name for name in INPUTS if name not in inputs]
    if missing:
        raise ValueError(f"bar inputs missing: {', '.join(missing)}")
    arrays = {name: np.asarray(inputs[name], dtype=np.float64) for name in INPUTS}
    lengths = {len(a) for a in arrays.values()}
    if len(lengths) != 1:
        raise ValueError(f"bar inputs differ in length: {sorted(lengths)}")
    minute = arrays.pop("minute").astype(np.int64)
    return Bars(minute=minute, **arrays)


def rate_index(values: np.ndarray, first_close: float) -> np.ndarray:
    """K0 rate index: 100 * values / C_first."""
    return 100.0 * np.asarray(values, dtype=np.float64) / first_close


def bqx(close: np.ndarray, n: int) -> np.ndarray:
    """K0 BQX: 100 * (C_t - C_{t-n}) / C_{t-n}, NaN for the first n bars."""
    close = np.asarray(close, dtype=np.float64)
    out = np.full(len(close), np.nan)
    if len(close) > n:
        out[n:] = 100.0 * (close[n:] - close[:-n]) / close[:-n]
    return out


def first_order(x: np.ndarray, keep: float, before: float = 0.0) -> np.ndarray:
    """y_i = keep * y_{i-1} + x_i with y_{-1} = before: the recursion of every EMA and Wilder
    smoothing (scipy.signal.lfilter([1], [1, -keep], x, zi=[keep * before]) computes the
    same), as a log-step scan in numpy: y += keep^d * y shifted by d, for d = 1, 2, 4, ...
    A NaN makes every later value NaN, as in the loop. It differs from the loop by rounding
    only (each value sums the same terms, weighted by powers of keep computed by squaring).
    Importing scipy.signal costs 0.5 s in every new database session, more than an
    incremental refresh of a family spends on its data."""
    y = np.array(x, dtype=np.float64)
    if len(y) == 0:
        return y
    y[0] += keep * before
    d, power = 1, float(keep)
    while d < len(y):
        y[d:] += power * y[:-d]
        d, power = 2 * d, power * power
    return y


def window_reduce(x: np.ndarray, n: int, op: np.ufunc) -> np.ndarray:
    """op (np.add, np.maximum, np.minimum) over the n rows t-n+1..t along axis 0, NaN for the
    first n-1 rows. Each window combines the suffix of one block of n rows with the prefix of
    the next, so it reduces exactly its own terms (a NaN reaches only windows holding it)."""
    m = x.shape[0]
    out = np.full(x.shape, np.nan)
    if m < n:
        return out
    rows = -(-m // n) * n
    padded = np.zeros((rows, *x.shape[1:]))
    padded[:m] = x
    blocks = padded.reshape(rows // n, n, *x.shape[1:])
    prefix = op.accumulate(blocks, axis=1).reshape(padded.shape)
    suffix = op.accumulate(blocks[:, ::-1], axis=1)[:, ::-1].reshape(padded.shape)
    t = np.arange(n - 1, m)
    start = t - n + 1
    combined = op(suffix[start], prefix[t])
    aligned = start % n == 0
    combined[aligned] = prefix[t[aligned]]
    out[n - 1 :] = combined
    return out
