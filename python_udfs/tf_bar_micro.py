"""K8 microstructure_bars (FEATURE_DEFINITIONS E1-E3 and K8): liquidity and spread measures on
one symbol's one-minute bars, on the raw close, high, low, volume and quoted spread.

Features: Amihud illiquidity (E1), Kyle's lambda (E2) and the tick-rule volume imbalance over
row windows of {15, 30, 60, 240, 1440} bars; VPIN (E3); the Roll (1984), Corwin-Schultz (2012)
and Abdi-Ranaldo (2017) spread estimators, and two of them over the relative quoted spread.
The exact definitions are the column descriptions in models/bar/microstructure_bars.yml.

Two things carry state from the symbol's first bar, so an incremental refresh reads them from
the model's own row before `start` (params["prev"]) as the `state_*` columns:
* the tick-rule sign b (E2): a run of unchanged closes keeps the sign of the last change, however
  long ago; `state_tick_sign_lag1439` holds the sign of the bar just before the longest window of
  the next row, from which the warm-up bars' signs follow.
* VPIN's volume buckets, filled from the symbol's first bar: the exact cumulative volume, the
  exact bucket volume, the buy volume of the bucket being filled and of the last 49 completed
  buckets (what the next 50-bucket window needs).

Exactness of the bucket boundaries: every volume is a float64, that is an integer times a power
of two, so all volumes (and the stored state) are turned into integers in one common unit 2^E
(E = 0 for whole volumes) and the running total, the bucket volume (the first 1440 bars' total
/ 50) and every boundary are compared as integers, scaled by 50 so that the bucket volume is an
integer too. Exact values are stored as three float8 that sum to them exactly (hi + mid + lo,
each the rounding of what the previous ones leave), which holds any total spanning up to 159
bits: whole tick volumes need only the first.

Row windows are summed in blocks of the window length aligned to the symbol's bar number (the
stored `state_bar_index`), so a row's value is computed from its own window's terms in the same
order whether the kernel reads the whole history or a warm-up window: an incremental refresh
gives bit-identical values, and an all-zero window sums to exactly 0.
"""

from __future__ import annotations

import math

import numpy as np
import tf_bar_common
from tf_common import InputError, checkpoint

# Phi, the standard normal CDF, as scipy.special.ndtr computes it (through erfc), without
# importing scipy: 0.15 s in every new database session, more than a refresh's own work
_erfc = np.frompyfunc(math.erfc, 1, 1)


def _ndtr(x: np.ndarray) -> np.ndarray:
    return 0.5 * _erfc(-np.asarray(x, dtype=np.float64) / math.sqrt(2.0)).astype(np.float64)


WINDOWS: tuple[int, ...] = (15, 30, 60, 240, 1440)
VPIN_BUCKETS = 50  # n of E3
VPIN_SIGMA_BARS = 1440  # sigma of the price changes over the trailing 1440 bars (K8)
VPIN_FIRST_BARS = 1440  # the bucket volume is the first 1440 bars' volume / 50 (K8)
RING = VPIN_BUCKETS - 1  # completed buckets a new bucket's window needs
SIGN_LAG = max(WINDOWS) - 1
# the longest lookback: a 1440-bar window of returns needs the close 1440 bars back
WARMUP_BARS = max(max(WINDOWS), VPIN_SIGMA_BARS)
_EXPANSION = 3  # float8 parts of a stored exact value

FEATURES: list[str] = [
    *(f"amihud_w{n}" for n in WINDOWS),
    *(f"kyle_lambda_w{n}" for n in WINDOWS),
    *(f"tick_imbalance_w{n}" for n in WINDOWS),
    "vpin",
    *(f"roll_spread_w{n}" for n in WINDOWS),
    "cs_spread",
    *(f"cs_spread_w{n}" for n in WINDOWS),
    *(f"ar_spread_w{n}" for n in WINDOWS),
    *(f"roll_to_quoted_w{n}" for n in WINDOWS),
    *(f"cs_to_quoted_w{n}" for n in WINDOWS),
]
STATE: list[str] = [
    "state_bar_index",
    f"state_tick_sign_lag{SIGN_LAG}",
    *(f"state_vpin_cum_volume_{k}" for k in range(1, _EXPANSION + 1)),
    *(f"state_vpin_bucket_total_{k}" for k in range(1, _EXPANSION + 1)),
    "state_vpin_fill_buy",
    *(f"state_vpin_buy_{k:02d}" for k in range(1, RING + 1)),
]
MODELS: dict[str, list[str]] = {"microstructure_bars": FEATURES + STATE}


def compute(model: str, bars: tf_bar_common.Bars, params: dict) -> dict[str, np.ndarray]:
    if model not in MODELS:
        raise InputError(f"no model named '{model}' in tf_bar_micro")
    n = len(bars)
    start = int(params.get("start") or 0)
    prev = params.get("prev")
    first = _first_bar_number(start, prev)
    close, volume = bars.close, bars.volume
    if np.any(volume < 0):
        raise InputError(
            f"volume has a negative value at position {int(np.argmax(volume < 0)) + 1}"
        )
    out: dict[str, np.ndarray] = {"state_bar_index": (first + np.arange(n)).astype(np.float64)}

    dp = np.full(n, np.nan)
    dp[1:] = close[1:] - close[:-1]
    prior = np.full(n, np.nan)
    prior[1:] = close[:-1]
    if first == 0:
        sign = _tick_signs(dp, 0, 1.0)
    else:
        sign = _tick_signs(dp, start - 1 - SIGN_LAG, _state(prev, f"state_tick_sign_lag{SIGN_LAG}"))
    out[f"state_tick_sign_lag{SIGN_LAG}"] = _shift(sign, SIGN_LAG)
    checkpoint()

    ret = dp / prior  # simple return (E1)
    logret = np.log1p(ret)  # ln(C_t / C_{t-1}), T17
    has_volume = np.isfinite(volume)
    flow_ok = np.isfinite(dp) & has_volume & np.isfinite(sign)
    v = np.where(has_volume, volume, 0.0)
    positive = v > 0
    illiq = np.where(
        positive, np.abs(np.nan_to_num(ret)) / (close * np.where(positive, v, 1.0)), 0.0
    )
    signed = np.where(flow_ok, np.nan_to_num(sign) * v, 0.0)
    dp0 = np.nan_to_num(dp)
    pair_ok = np.isfinite(logret) & np.isfinite(_shift(logret, 1))
    x_now = np.where(pair_ok, logret, 0.0)
    x_before = np.where(pair_ok, _shift(logret, 1), 0.0)
    cs = _corwin_schultz(bars)
    ar_term = _abdi_ranaldo_terms(bars)
    quoted = bars.spread / close
    quoted_ok = np.isfinite(quoted)
    quoted0 = np.where(quoted_ok, quoted, 0.0)
    amihud_ok = np.isfinite(ret) & has_volume

    for w in WINDOWS:
        # E1: |R| / (C V) over the bars with V > 0, NULL on a NULL volume in the window
        ok = _window_all(amihud_ok, w)
        count = _rolling_count(positive & amihud_ok, w)
        total = _rolling_sum(illiq, w, first)
        out[f"amihud_w{w}"] = np.where(ok & (count > 0), total / np.maximum(count, 1), np.nan)
        # E2: OLS slope of the price change on the signed volume
        ok = _window_all(flow_ok, w)
        s1, p1 = _rolling_sum(signed, w, first), _rolling_sum(dp0, w, first)
        ss = _rolling_sum(signed * signed, w, first)
        sp = _rolling_sum(signed * dp0, w, first)
        sxx = ss - s1 * s1 / w
        sxy = sp - s1 * p1 / w
        out[f"kyle_lambda_w{w}"] = np.where(
            ok & (sxx > 0), sxy / np.where(sxx > 0, sxx, 1.0), np.nan
        )
        vol = _rolling_sum(v, w, first)
        out[f"tick_imbalance_w{w}"] = np.where(
            ok & (vol > 0), s1 / np.where(vol > 0, vol, 1.0), np.nan
        )
        # Roll (1984): first-order autocovariance of the log returns, w - 1 pairs
        m = w - 1
        ok = _window_all(pair_ok, m)
        a, b = _rolling_sum(x_now, m, first), _rolling_sum(x_before, m, first)
        ab = _rolling_sum(x_now * x_before, m, first)
        cov = (ab - a * b / m) / (m - 1)
        out[f"roll_spread_w{w}"] = np.where(ok, 2.0 * np.sqrt(np.maximum(-cov, 0.0)), np.nan)
        ok = _window_all(np.isfinite(cs), w)
        out[f"cs_spread_w{w}"] = np.where(ok, _rolling_sum(np.nan_to_num(cs), w, first) / w, np.nan)
        ok = _window_all(np.isfinite(ar_term), w)
        mean = _rolling_sum(np.nan_to_num(ar_term), w, first) / w
        out[f"ar_spread_w{w}"] = np.where(ok, np.sqrt(np.maximum(mean, 0.0)), np.nan)
        # the implied spreads as multiples of the mean relative quoted spread
        ok = _window_all(quoted_ok, w)
        q = np.where(ok, _rolling_sum(quoted0, w, first) / w, np.nan)
        q = np.where(q > 0, q, np.nan)
        out[f"roll_to_quoted_w{w}"] = out[f"roll_spread_w{w}"] / q
        out[f"cs_to_quoted_w{w}"] = out[f"cs_spread_w{w}"] / q
        checkpoint()
    out["cs_spread"] = cs
    out.update(_vpin(dp, volume, first, start, prev, params))
    return out


# --- inputs and windows --------------------------------------------------------------------------


def _state(prev: dict, name: str) -> float:
    value = prev.get(name)
    if value is None:
        raise InputError(
            f"the stored row before start has no {name}: rebuild the model (full refresh)"
        )
    return float(value)


def _first_bar_number(start: int, prev: dict | None) -> int:
    """The symbol's bar number of the first input row (0: the input starts at its first bar)."""
    if prev is None:
        if start != 0:
            raise InputError("microstructure_bars needs the stored row before start (params.prev)")
        return 0
    first = int(_state(prev, "state_bar_index")) + 1 - start
    if first < 0:
        raise InputError("params.prev is not the row just before start")
    if first > 0 and start < WARMUP_BARS:
        raise InputError(f"microstructure_bars needs {WARMUP_BARS} warm-up bars, got {start}")
    return first


def _shift(x: np.ndarray, k: int) -> np.ndarray:
    """x from k rows back (NaN for the first k rows)."""
    out = np.full(len(x), np.nan)
    if len(x) > k:
        out[k:] = x[: len(x) - k]
    return out


def _tick_signs(dp: np.ndarray, base: int, base_sign: float) -> np.ndarray:
    """E2's tick rule: sign(dP), or the previous sign when dP = 0, from `base_sign` at row
    `base` (NaN before it)."""
    n = len(dp)
    if base >= n:
        return np.full(n, np.nan)
    rows = np.arange(n)
    known = (rows > base) & (np.nan_to_num(dp) != 0)
    values = np.sign(np.nan_to_num(dp))
    values[base] = base_sign
    known[base] = True
    latest = np.maximum.accumulate(np.where(known, rows, -1))
    return np.where(latest >= 0, values[np.maximum(latest, 0)], np.nan)


def _rolling_count(flags: np.ndarray, w: int) -> np.ndarray:
    c = np.concatenate(([0], np.cumsum(flags, dtype=np.int64)))
    out = np.full(len(flags), -1, dtype=np.int64)
    if len(flags) >= w:
        out[w - 1 :] = c[w:] - c[:-w]
    return out


def _window_all(valid: np.ndarray, w: int) -> np.ndarray:
    """True where the w rows ending here are all valid."""
    return _rolling_count(~valid, w) == 0


def _rolling_sum(x: np.ndarray, w: int, first: int) -> np.ndarray:
    """Sum of the w values ending at each row (NaN for the first w - 1 rows); x has no NaN.

    Blocks of w rows aligned to the bar number: a window is the tail of one block (summed from
    its end) plus the head of the next (summed from its start), so it uses its own terms only,
    in an order that does not depend on where the input starts."""
    n = len(x)
    out = np.full(n, np.nan)
    if n < w:
        return out
    pad = first % w
    blocks = -(-(pad + n) // w)
    z = np.zeros(blocks * w)
    z[pad : pad + n] = x
    z = z.reshape(blocks, w)
    head = np.cumsum(z, axis=1).ravel()
    tail = np.cumsum(z[:, ::-1], axis=1)[:, ::-1].ravel()
    t = np.arange(w - 1, n) + pad
    s = t - w + 1
    out[w - 1 :] = np.where(s % w == 0, tail[s], tail[s] + head[t])
    return out


# --- spread estimators ---------------------------------------------------------------------------


def _log_ratio(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """ln(a / b) as log1p((a - b) / b) (T17)."""
    return np.log1p((a - b) / b)


def _corwin_schultz(bars: tf_bar_common.Bars) -> np.ndarray:
    """Corwin-Schultz two-bar spread of bars t-1, t with the gap adjustment; negative -> 0."""
    n = len(bars)
    out = np.full(n, np.nan)
    if n < 2:
        return out
    h1, l1, c1 = bars.high[:-1], bars.low[:-1], bars.close[:-1]
    h2, l2 = bars.high[1:].copy(), bars.low[1:].copy()
    up = l2 > c1
    down = h2 < c1
    h2[up] = h2[up] - (l2[up] - c1[up])
    l2[up] = c1[up]
    l2[down] = l2[down] + (c1[down] - h2[down])
    h2[down] = c1[down]
    beta = _log_ratio(h1, l1) ** 2 + _log_ratio(h2, l2) ** 2
    gamma = _log_ratio(np.maximum(h1, h2), np.minimum(l1, l2)) ** 2
    k = 3.0 - 2.0 * math.sqrt(2.0)
    alpha = (np.sqrt(2.0 * beta) - np.sqrt(beta)) / k - np.sqrt(gamma / k)
    spread = 2.0 * np.tanh(alpha / 2.0)  # = 2 (e^a - 1) / (1 + e^a)
    out[1:] = np.maximum(spread, 0.0)
    return out


def _abdi_ranaldo_terms(bars: tf_bar_common.Bars) -> np.ndarray:
    """4 (c_{t-1} - eta_{t-1}) (c_{t-1} - eta_t) for t >= 1, logs of the raw prices."""
    n = len(bars)
    out = np.full(n, np.nan)
    if n < 2:
        return out
    c1 = bars.close[:-1]
    d1 = 0.5 * (_log_ratio(c1, bars.high[:-1]) + _log_ratio(c1, bars.low[:-1]))
    d2 = 0.5 * (_log_ratio(c1, bars.high[1:]) + _log_ratio(c1, bars.low[1:]))
    out[1:] = 4.0 * d1 * d2
    return out


# --- VPIN ----------------------------------------------------------------------------------------


def _sigma(dp: np.ndarray, first: int) -> np.ndarray:
    """std_s of the VPIN_SIGMA_BARS price changes ending at each row."""
    ok = np.isfinite(dp)
    x = np.where(ok, dp, 0.0)
    w = VPIN_SIGMA_BARS
    s1, s2 = _rolling_sum(x, w, first), _rolling_sum(x * x, w, first)
    var = np.maximum(s2 - s1 * s1 / w, 0.0) / (w - 1)
    return np.where(_window_all(ok, w), np.sqrt(var), np.nan)


def _lowest_exponent(x: np.ndarray) -> int:
    """The largest E with every value of x an integer multiple of 2^E (0 if they are whole)."""
    x = x[x != 0]
    if not len(x) or np.all(x == np.floor(x)):
        return 0
    frac, exp = np.frexp(x)
    mant = np.ldexp(np.abs(frac), 53).astype(np.int64)
    low = mant & -mant
    return int(np.min(exp - 53 + np.frexp(low.astype(np.float64))[1] - 1))


def _to_units(x: np.ndarray, e: int, wide: bool) -> np.ndarray:
    """x / 2^E as exact integers: int64, or Python ints (object) when `wide`."""
    if not wide:
        return np.ldexp(x, -e).astype(np.int64)
    out = np.empty(len(x), dtype=object)
    for i, value in enumerate(x.tolist()):
        num, den = value.as_integer_ratio()
        out[i] = num << (-e - (den.bit_length() - 1))
    return out


def _to_float(k: np.ndarray, e: int) -> np.ndarray:
    """k * 2^E rounded to float64."""
    if k.dtype == object:
        return np.array([math.ldexp(float(v), e) for v in k.tolist()], dtype=np.float64)
    return np.ldexp(k.astype(np.float64), e)


def _expansion(k: np.ndarray, e: int) -> list[np.ndarray]:
    """k * 2^E as _EXPANSION float8 parts summing to it exactly (hi first)."""
    parts = []
    rest = k
    for _ in range(_EXPANSION):
        if rest.dtype == object:
            part = np.array([float(v) for v in rest.tolist()], dtype=np.float64)
            rest = rest - np.array([int(v) for v in part.tolist()], dtype=object)
        else:
            part = rest.astype(np.float64)
            rest = rest - part.astype(np.int64)
        parts.append(part)
    if np.any(rest != 0):
        raise InputError(
            "volumes too finely fractional to store the VPIN state exactly (over 159 bits)"
        )
    scaled = [np.ldexp(p, e) for p in parts]
    if any(np.any(np.ldexp(s, -e) != p) for s, p in zip(scaled, parts, strict=True)):
        raise InputError("volumes out of the float8 range of the VPIN state")
    return scaled


def _exact_total(parts: list[float], e: int) -> int:
    total = 0
    for p in parts:
        num, den = float(p).as_integer_ratio()
        total += num << (-e - (den.bit_length() - 1))
    return total


VPIN_STATE: list[str] = [
    "state_vpin_fill_buy",
    *(f"state_vpin_buy_{k:02d}" for k in range(1, RING + 1)),
]


def _vpin(
    dp: np.ndarray, volume: np.ndarray, first: int, start: int, prev: dict | None, params: dict
) -> dict[str, np.ndarray]:
    """vpin and its state columns. A full build fills the buckets from row 0, the symbol's
    first bar; a refresh fills them from `start` on, continuing the stored row's state."""
    n = len(dp)
    names = ["vpin", *VPIN_STATE]
    names += [
        f"state_vpin_{what}_{k}"
        for what in ("cum_volume", "bucket_total")
        for k in range(1, _EXPANSION + 1)
    ]
    out = {name: np.full(n, np.nan) for name in names}
    sigma = _sigma(dp, first)
    phi = np.where(sigma > 0, _ndtr(dp / np.where(sigma > 0, sigma, 1.0)), 0.5)
    phi[~np.isfinite(sigma)] = np.nan
    checkpoint()

    r0 = 0 if first == 0 else start
    v = volume[r0:]
    null = ~np.isfinite(v)
    v = np.where(null, 0.0, v)
    given = params.get("vpin_bucket_volume")
    if given is not None:
        given = float(given)
        if not (math.isfinite(given) and given > 0):
            raise InputError(f"vpin_bucket_volume must be a positive number, got {given!r}")
    cum_parts: list[float] = []
    total_parts: list[float] | None = None
    if r0:
        cum_parts = [_state(prev, f"state_vpin_cum_volume_{k}") for k in range(1, _EXPANSION + 1)]
        if prev.get("state_vpin_bucket_total_1") is not None:
            total_parts = [
                _state(prev, f"state_vpin_bucket_total_{k}") for k in range(1, _EXPANSION + 1)
            ]
    scalars = cum_parts + (total_parts or []) + ([] if given is None else [given])

    # exact integers in units of 2^E: int64 while 50 x every total stays below 2^61 (so that
    # a boundary (j + 1) T fits too), else Python integers
    e = min(_lowest_exponent(v), _lowest_exponent(np.asarray(scalars, dtype=np.float64)))
    bound = 50.0 * 3.0 * (float(v.sum()) + sum(abs(x) for x in scalars) + 1.0)
    wide = math.ldexp(bound, -e) >= 2.0**61
    units = _to_units(v, e, wide)
    cum0 = _exact_total(cum_parts, e)
    cum = np.cumsum(units) + cum0
    for k, part in enumerate(_expansion(cum, e), start=1):
        out[f"state_vpin_cum_volume_{k}"][r0:] = part

    # T = 50 x the bucket volume, known from row `known_from` on
    known_from = r0
    stored = None if total_parts is None else _exact_total(total_parts, e)
    if given is not None:
        total = 50 * _exact_total([given], e)
        if r0 and stored != total:
            raise InputError(
                "vpin_bucket_volume differs from the stored rows' bucket volume: rebuild the model"
            )
    elif r0:
        total = stored
    elif n >= VPIN_FIRST_BARS:
        total = int(cum[VPIN_FIRST_BARS - 1]) or None
        known_from = VPIN_FIRST_BARS - 1
    else:
        total = None
    if total is None or not len(v):
        return out
    parts = _expansion(np.array([total], dtype=object if wide else np.int64), e)
    for k, part in enumerate(parts, start=1):
        out[f"state_vpin_bucket_total_{k}"][known_from:] = part[0]
    checkpoint()

    ring = fill = None
    if r0:
        ring = np.array(
            [_state_or_nan(prev, f"state_vpin_buy_{k:02d}") for k in range(RING, 0, -1)]
        )
        fill = _state_or_nan(prev, "state_vpin_fill_buy")
    result = _buckets(units, null, cum, cum0, total, e, phi[r0:], ring, fill)
    # the value is stamped on the bar that completes a bucket and carried to the next ones
    rows = np.arange(len(v))
    latest = np.maximum.accumulate(np.where(result["completes"], rows, -1))
    carried = _state_or_nan(prev, "vpin") if r0 else np.nan
    out["vpin"][r0:] = np.where(latest >= 0, result["vpin"][np.maximum(latest, 0)], carried)
    out["state_vpin_fill_buy"][r0:] = result["fill"]
    for k in range(1, RING + 1):
        out[f"state_vpin_buy_{k:02d}"][r0:] = result["ring"][k - 1]
    for name in ["vpin", *VPIN_STATE]:
        out[name][:known_from] = np.nan
    return out


def _state_or_nan(prev: dict, name: str) -> float:
    value = prev.get(name)
    return np.nan if value is None else float(value)


def _segmented_cumsum(x: np.ndarray, begin: np.ndarray) -> np.ndarray:
    """Running sums of x restarting at each segment, begin[i] the first index of i's segment:
    a doubling scan, so each sum's rounding is relative to its own segment's terms."""
    out = x.copy()
    index = np.arange(len(x))
    step = 1
    longest = int(np.max(index - begin)) + 1 if len(x) else 0
    while step < longest:
        reach = index - step >= begin
        shifted = out.copy()
        shifted[reach] = out[index[reach] - step]
        out = np.where(reach, out + shifted, out)
        step *= 2
    return out


def _buckets(
    units: np.ndarray,
    null: np.ndarray,
    cum: np.ndarray,
    cum0: int,
    total: int,
    e: int,
    phi: np.ndarray,
    ring: np.ndarray | None,
    fill: float | None,
) -> dict:
    """Fill VPIN's buckets (E3 step 4) with the bars' volumes, boundaries in exact integers.

    Bucket j covers [j T, (j+1) T) of 50 x the cumulative volume (T = 50 x the bucket volume,
    so both are integers in units of 2^E); bar i covers (a, b] of it, a and b 50 x the cumulative
    volume before and after the bar, and becomes one piece per bucket it touches. A NULL volume
    is a zero piece that makes the bucket it arrives in NULL. A bar that completes more than 50
    buckets keeps only its last 51: the earlier ones are in no window. `ring` (oldest first) and
    `fill`, when continuing from a stored row, come first as one piece each of the 49 completed
    buckets and of the bucket being filled. Returns per row: whether it completes a bucket, the
    VPIN of its latest completed bucket, the fill state and the ring state."""
    n = len(units)
    wide = units.dtype == object
    after = cum * 50
    before = np.concatenate((np.array([cum0 * 50], dtype=after.dtype), after[:-1]))
    k_before = (before // total).astype(np.int64)
    k_after = (after // total).astype(np.int64)
    positive = units > 0
    last = ((after - 1) // total).astype(np.int64)
    lowest = np.maximum(k_before, k_after - VPIN_BUCKETS)
    counts = np.where(positive, last - lowest + 1, np.where(null, 1, 0))
    begin = np.where(positive, lowest, k_before)
    row = np.repeat(np.arange(n), counts)
    offset = np.arange(len(row)) - np.repeat(np.cumsum(counts) - counts, counts)
    j = begin[row] + offset
    low_edge = (j.astype(object) if wide else j) * total
    amount = np.minimum(after[row], low_edge + total) - np.maximum(before[row], low_edge)
    volume = _to_float(amount, e) / 50
    taint = null[row] | ~np.isfinite(phi[row])
    contrib = np.where(taint, 0.0, np.nan_to_num(phi[row]) * volume)
    if ring is not None:
        k0 = int((cum0 * 50) // total)
        carried = np.concatenate((ring, [fill]))
        j = np.concatenate((np.arange(k0 - RING, k0 + 1), j))
        taint = np.concatenate((np.isnan(carried), taint))
        contrib = np.concatenate((np.nan_to_num(carried), contrib))
    checkpoint()

    # buckets: runs of equal j; running buy volume and NULL count within each
    new = np.concatenate(([True], j[1:] != j[:-1])) if len(j) else np.zeros(0, bool)
    cid = np.cumsum(new) - 1
    firsts = np.flatnonzero(new)
    lasts = np.concatenate((firsts[1:] - 1, [len(j) - 1])) if len(firsts) else firsts
    running = _segmented_cumsum(contrib, firsts[cid])
    nulls = np.cumsum(taint, dtype=np.int64)
    nulls = nulls - (nulls - taint)[firsts][cid]
    bucket_j = j[firsts]
    buy = running[lasts]
    bad = (nulls[lasts] > 0) | (bucket_j < 0)
    t_volume = float(_to_float(np.array([total], dtype=object if wide else np.int64), e)[0])
    imbalance = np.where(bad, np.nan, np.abs(t_volume / VPIN_BUCKETS - 2.0 * buy))
    window = np.full(len(buy), np.nan)
    if len(buy) >= VPIN_BUCKETS:
        window[VPIN_BUCKETS - 1 :] = np.lib.stride_tricks.sliding_window_view(
            imbalance, VPIN_BUCKETS
        ).sum(axis=1)
    window[bucket_j < VPIN_BUCKETS - 1] = np.nan
    vpin_bucket = window / t_volume

    # per row: the latest piece so far, its bucket, the latest completed bucket
    latest = len(j) - len(row) + np.cumsum(counts) - 1
    has = latest >= 0
    at = np.maximum(latest, 0)
    filling = has & (j[at] == k_after) if len(j) else has
    completed = np.where(filling, cid[at] - 1, cid[at]) if len(j) else np.zeros(n, np.int64)
    completes = k_after > k_before
    result = {
        "completes": completes,
        "vpin": np.where(
            completes, vpin_bucket[np.maximum(completed, 0)] if len(buy) else np.nan, np.nan
        ),
        "fill": np.where(
            filling, np.where(nulls[at] > 0, np.nan, running[at]) if len(j) else 0.0, 0.0
        ),
    }
    rings = []
    for lag in range(1, RING + 1):
        c = completed - (lag - 1)
        ok = has & (k_after - lag >= 0) & (c >= 0)
        c = np.maximum(c, 0)
        rings.append(np.where(ok, np.where(bad[c], np.nan, buy[c]) if len(buy) else np.nan, np.nan))
    result["ring"] = rings
    return result
