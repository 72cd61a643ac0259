"""The bar families across the whole panel of symbols (FEATURE_DEFINITIONS K14):
`cross_sectional`, computed once for every symbol at once. models/bar_k14/cross_sectional.yml
defines every column.

The panel contract (tf_bars.panel_rows calls it; unlike the per-symbol kernels of
tf_bar_common, one call sees every symbol):
  PANEL = True; MODELS: model -> its output columns in order; WARMUP_BARS: model -> N
  compute_panel(model, bars, params) -> dict[str, np.ndarray]
    bars[i]: symbol i's final one-minute bars, oldest first: 'minute' (open time in whole
      minutes since the epoch), 'close', 'volume' (NaN where NULL). Each symbol's bars start
      N of its own bars before params['from_minute'] (or at its first bar).
    params: 'base', 'quote': one currency code (or None / '') per symbol; 'from_minute': rows
      are returned only for bars at or after it (earlier bars only warm the per-symbol series
      up; absent or None: every bar).
    result: '_symbol' (i, as float), '_minute' and one array per column, one entry per row,
      minute-major; NaN = NULL.

Every row depends only on the bars at or before its minute, through exactly the same
floating-point operations whatever the call holds, so an incremental refresh, a chunked build,
another order or subset of the symbols give bit-identical values:
- the per-symbol series use each bar's own lags, and windowed sums add their own terms by a
  fixed binary tree (_window_sum), not by running sums that depend on where the input starts;
- a minute's panel statistics are taken over its values sorted ascending (ranks from the
  starts of runs of equal values; sums as sequential cumulative sums in that order), so they
  depend on the set of values, not on the symbols' numbering nor on how many symbols the call
  holds.
The panel is laid out as a dense (minute x symbol) matrix, one block of at most BLOCK_CELLS
cells at a time (memory stays bounded; checkpoint between blocks).
"""

from __future__ import annotations

import itertools

import numpy as np
from tf_bar_common import bqx
from tf_common import InputError, check_number, checkpoint

PANEL = True

# the per-symbol measures ranked across the panel (models/bar_k14/cross_sectional.yml)
MEASURES: tuple[str, ...] = (
    "ret_1",
    "ret_15",
    "ret_60",
    "bqx_15",
    "bqx_60",
    "rvol_60",
    "rvol_240",
    "volume",
)
STATS: tuple[str, ...] = ("rank", "pct", "z", "mean", "std")
STRENGTH_WINDOWS: tuple[int, ...] = (15, 30, 60)
SIDES: tuple[str, ...] = ("base", "quote", "diff")

CROSS_SECTIONAL_COLUMNS: list[str] = [
    *(f"xs_{stat}_{m}" for m in MEASURES for stat in STATS),
    "xs_n_symbols",
    *(f"xs_strength_{side}_bqx{n}" for n in STRENGTH_WINDOWS for side in SIDES),
]

MODELS: dict[str, list[str]] = {"cross_sectional": CROSS_SECTIONAL_COLUMNS}

# a symbol's bars before the first written minute that the kernel reads: rvol_240 needs the
# 240 returns ending at the bar, i.e. 241 closes
WARMUP_BARS: dict[str, int] = {"cross_sectional": 240}

# cells of the dense (minute x symbol) matrix handled at once (8 MiB per float64 matrix)
BLOCK_CELLS = 1 << 20


def compute_panel(
    model: str, bars: list[dict[str, np.ndarray]], params: dict
) -> dict[str, np.ndarray]:
    """Every column of `model` at each (symbol, minute) of the panel from params.from_minute
    on (the module docstring states the contract)."""
    if model not in MODELS:
        raise InputError(f"no model named '{model}' in tf_bar_panel")
    given = params.get("from_minute")
    from_minute = -np.inf if given is None else check_number(given, "params.from_minute")
    base = _currencies(params.get("base"), len(bars), "base")
    quote = _currencies(params.get("quote"), len(bars), "quote")
    for i, (b, q) in enumerate(zip(base, quote, strict=True)):
        if b is not None and b == q:
            raise InputError(f"symbol {i + 1} has the same base and quote currency {b!r}")
    with np.errstate(divide="ignore", invalid="ignore"):
        return _cross_sectional(bars, base, quote, from_minute)


# --- inputs --------------------------------------------------------------------------------------


def _currencies(codes: object, n: int, name: str) -> list[str | None]:
    """One code per symbol, None where unknown (None or an empty string)."""
    if codes is None:
        return [None] * n
    if not isinstance(codes, list | tuple) or len(codes) != n:
        raise InputError(f"params.{name} must list one currency per symbol ({n})")
    out: list[str | None] = []
    for code in codes:
        if code is not None and not isinstance(code, str):
            raise InputError(f"params.{name}: {code!r} is not a currency code")
        out.append((code.strip() or None) if code is not None else None)
    return out


def _symbol_bars(i: int, bars: dict[str, np.ndarray]) -> tuple[np.ndarray, ...]:
    missing = [k for k in ("minute", "close", "volume") if k not in bars]
    if missing:
        raise InputError(f"symbol {i + 1}: input {', '.join(missing)} missing")
    minute, close, volume = (
        np.asarray(bars[k], dtype=np.float64).ravel() for k in ("minute", "close", "volume")
    )
    if not len(minute) == len(close) == len(volume):
        raise InputError(f"symbol {i + 1}: minute, close and volume differ in length")
    if not np.all(np.isfinite(minute)) or np.any(minute != np.floor(minute)):
        raise InputError(f"symbol {i + 1}: minute must hold whole numbers")
    if np.any(np.diff(minute) <= 0):
        raise InputError(f"symbol {i + 1}: minute is not strictly increasing")
    if not np.all(np.isfinite(close) & (close > 0)):
        raise InputError(f"symbol {i + 1}: close must be positive and not NULL")
    if np.any(np.isinf(volume)):
        raise InputError(f"symbol {i + 1}: volume has an infinite value")
    return minute, close, volume


# --- per-symbol series ---------------------------------------------------------------------------


def _lag(x: np.ndarray, k: int) -> np.ndarray:
    out = np.full(len(x), np.nan)
    if len(x) > k:
        out[k:] = x[:-k]
    return out


def _log_return(close: np.ndarray, k: int) -> np.ndarray:
    """ln(C_t / C_(t-k)) as ln(1 + (C_t - C_(t-k)) / C_(t-k)) (T17), NaN for the first k bars."""
    before = _lag(close, k)
    return np.log1p((close - before) / before)


def _window_sum(x: np.ndarray, n: int) -> np.ndarray:
    """Sum of x over bars t-n+1..t (NaN for the first n-1 bars and for windows holding a NaN).
    Each window's own n terms are added by the same binary tree wherever the input starts:
    level k holds the sums of 2^k terms ending at each bar (level k-1 at t plus at t - 2^(k-1)),
    and the window adds the levels of n's binary digits, the largest nearest the current bar.
    So a window of zeros gives exactly 0 and an incremental call gives bit-identical sums."""
    m = len(x)
    levels: list[tuple[int, np.ndarray]] = []
    level, size = np.asarray(x, dtype=np.float64), 1
    while size <= n:
        levels.append((size, level))
        if 2 * size <= n:
            level = level + _lag(level, size)
        size *= 2
    total: np.ndarray | None = None
    offset = 0
    for size, level in reversed(levels):
        if not n & size:
            continue
        if total is None:
            total = level.copy()
        else:
            total += _lag(level, offset)
        offset += size
    assert total is not None
    total[: min(n - 1, m)] = np.nan
    return total


def _series(close: np.ndarray, volume: np.ndarray) -> dict[str, np.ndarray]:
    """The per-symbol measures on the symbol's own bars (K0: windows count bars)."""
    r1 = _log_return(close, 1)
    out = {
        "ret_1": r1,
        "ret_15": _log_return(close, 15),
        "ret_60": _log_return(close, 60),
        "rvol_60": np.sqrt(_window_sum(r1 * r1, 60)),
        "rvol_240": np.sqrt(_window_sum(r1 * r1, 240)),
        "volume": volume,
    }
    for n in sorted({15, 60, *STRENGTH_WINDOWS}):
        out[f"bqx_{n}"] = bqx(close, n)
    return out


# --- statistics across the panel ------------------------------------------------------------------


def _sorted_rows(v: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each row's values ascending (NaN last), the order that sorts them, and the count of
    non-NaN values per row."""
    order = np.argsort(v, axis=1)
    ordered = np.take_along_axis(v, order, axis=1)
    return order, ordered, np.count_nonzero(~np.isnan(v), axis=1)


def _mean_std(ordered: np.ndarray, count: np.ndarray) -> tuple[np.ndarray, ...]:
    """Per row of ascending values (NaN last): mean (NaN when empty) and std_s (ddof 1, NaN
    with fewer than 2 values), two-pass, each sum a sequential sum in ascending order; when all
    the values are equal, the mean is that value and std_s is 0 exactly. Also returns the mask
    of rows whose values are all equal."""
    rows = np.arange(len(count))
    valid = ~np.isnan(ordered)
    total = np.cumsum(np.where(valid, ordered, 0.0), axis=1)[:, -1]
    first = ordered[:, 0]
    equal = (count > 0) & (first == ordered[rows, np.maximum(count - 1, 0)])
    mean = np.where(equal, first, total / count)
    deviation = np.where(valid, ordered - mean[:, None], 0.0)
    squares = np.cumsum(deviation * deviation, axis=1)[:, -1]
    std = np.sqrt(squares / (count - 1))
    std[equal] = 0.0
    std[count < 2] = np.nan
    return mean, std, equal


def _panel_stats(v: np.ndarray) -> dict[str, np.ndarray]:
    """rank (min method), pct, z of every cell of v (minute x symbol, NaN = NULL or no bar),
    and each minute's mean and std_s."""
    order, ordered, count = _sorted_rows(v)
    mean, std, equal = _mean_std(ordered, count)
    width = v.shape[1]
    # rank = 1 + the position of the first value of its run of equal values
    starts = np.ones(ordered.shape, dtype=bool)
    starts[:, 1:] = ordered[:, 1:] != ordered[:, :-1]
    first = np.maximum.accumulate(np.where(starts, np.arange(width), 0), axis=1)
    rank = np.empty(v.shape)
    np.put_along_axis(rank, order, first + 1.0, axis=1)
    rank[np.isnan(v)] = np.nan
    pct = (rank - 1.0) / (count - 1.0)[:, None]
    pct[count < 2] = np.nan
    z = (v - mean[:, None]) / std[:, None]
    z[(count < 2) | equal] = np.nan
    return {"rank": rank, "pct": pct, "z": z, "mean": mean, "std": std}


def _mean_rows(v: np.ndarray) -> np.ndarray:
    """Each row's mean over its non-NaN values (NaN when none), as _mean_std reads it."""
    _, ordered, count = _sorted_rows(v)
    return _mean_std(ordered, count)[0]


# --- the model -----------------------------------------------------------------------------------


def _cross_sectional(
    bars: list[dict[str, np.ndarray]],
    base: list[str | None],
    quote: list[str | None],
    from_minute: float,
) -> dict[str, np.ndarray]:
    n_symbols = len(bars)
    minutes, symbols, values = [], [], []
    for i, symbol_bars in enumerate(bars):
        minute, close, volume = _symbol_bars(i, symbol_bars)
        keep = minute >= from_minute
        if not keep.any():
            continue
        series = _series(close, volume)
        minutes.append(minute[keep])
        symbols.append(np.full(int(keep.sum()), i))
        values.append({k: s[keep] for k, s in series.items()})
    checkpoint()
    columns = MODELS["cross_sectional"]
    if not minutes:
        empty = np.empty(0)
        return {"_symbol": empty, "_minute": empty, **{c: empty.copy() for c in columns}}
    minute = np.concatenate(minutes)
    symbol = np.concatenate(symbols)
    series = {k: np.concatenate([v[k] for v in values]) for k in values[0]}
    # minute-major: the rows of each dense block are contiguous
    grid, row = np.unique(minute, return_inverse=True)
    order = np.argsort(row, kind="stable")
    minute, symbol, row = minute[order], symbol[order], row[order]
    series = {k: s[order] for k, s in series.items()}

    # currency strength: each pair (both currencies known) adds +bqx to its base's terms and
    # -bqx to its quote's; a currency's strength is the mean of its terms
    codes = sorted({c for c in (*base, *quote) if c is not None})
    pair = [b is not None and q is not None for b, q in zip(base, quote, strict=True)]
    holders = {
        c: (
            np.array([i for i in range(n_symbols) if pair[i] and base[i] == c], dtype=int),
            np.array([i for i in range(n_symbols) if pair[i] and quote[i] == c], dtype=int),
        )
        for c in codes
    }
    code_of = {c: j for j, c in enumerate(codes)}
    base_code = np.array([-1 if c is None else code_of[c] for c in base], dtype=int)[symbol]
    quote_code = np.array([-1 if c is None else code_of[c] for c in quote], dtype=int)[symbol]

    out = {c: np.full(len(minute), np.nan) for c in columns}
    rows_per_block = max(1, BLOCK_CELLS // n_symbols)
    bounds = np.searchsorted(row, np.arange(0, len(grid) + rows_per_block, rows_per_block))
    for a, b in itertools.pairwise(bounds):
        if a == b:
            continue
        first_row = row[a]
        height = int(row[b - 1] - first_row + 1)
        cell = (row[a:b] - first_row) * n_symbols + symbol[a:b]
        local_row = row[a:b] - first_row
        present = np.bincount(local_row, minlength=height)
        out["xs_n_symbols"][a:b] = present[local_row]

        def dense(x: np.ndarray, cell: np.ndarray = cell, height: int = height) -> np.ndarray:
            v = np.full(height * n_symbols, np.nan)
            v[cell] = x
            return v.reshape(height, n_symbols)

        for m in MEASURES:
            stats = _panel_stats(dense(series[m][a:b]))
            for stat in ("rank", "pct", "z"):
                out[f"xs_{stat}_{m}"][a:b] = stats[stat].ravel()[cell]
            for stat in ("mean", "std"):
                out[f"xs_{stat}_{m}"][a:b] = stats[stat][local_row]
            checkpoint()
        for n in STRENGTH_WINDOWS:
            v = dense(series[f"bqx_{n}"][a:b])
            strength = np.full((height, len(codes) + 1), np.nan)  # column -1: unknown
            for c, (long, short) in holders.items():
                if len(long) or len(short):
                    terms = np.concatenate([v[:, long], -v[:, short]], axis=1)
                    strength[:, code_of[c]] = _mean_rows(terms)
            b_side = strength[local_row, base_code[a:b]]
            q_side = strength[local_row, quote_code[a:b]]
            out[f"xs_strength_base_bqx{n}"][a:b] = b_side
            out[f"xs_strength_quote_bqx{n}"][a:b] = q_side
            out[f"xs_strength_diff_bqx{n}"][a:b] = b_side - q_side
        checkpoint()
    result = {"_symbol": symbol.astype(np.float64), "_minute": minute}
    result.update(out)
    return result
