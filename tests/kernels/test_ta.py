"""python_udfs/tf_ta.py against TA-Lib 0.8.2 (FEATURE_DEFINITIONS section F): every function on
random, trending, flat, idx-like (near 100, with a flat stretch) and leading-NaN inputs, with
F0's NaN layout identical and values within 1e-9 of the size of their terms.

Where TA-Lib's own sums leave rounding noise the exact-arithmetic value wins (K1): a flat
window's BBANDS sigma and CCI are compared with their exact value (0), and CCI rows where
TP_t - mu is within 1e-6 of the size of TP_t of zero are knife edges (K4's rule) and not judged:
there a rounding of TP's mean changes CCI's digits."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
import talib
import tf_ta

REL = 1e-9
ABS = 1e-12


def _series(kind: str, n: int = 1500, seed: int = 5) -> dict[str, np.ndarray]:
    """high, low, close, volume of one kind of input."""
    rng = np.random.default_rng(seed)
    if kind == "random":
        close = rng.normal(0.0, 1.0, n)
    elif kind == "trending":
        close = 50.0 + 0.3 * np.arange(n) + np.cumsum(rng.normal(0.0, 0.2, n))
    elif kind == "flat":
        close = np.full(n, 100.37)
    else:  # idx: a rate index near 100 with a flat stretch, repeated closes and H = L bars
        close = 100.0 + np.cumsum(rng.standard_t(4, n) * 0.012)
        close = np.round(close / 9.26e-4) * 9.26e-4
        if n > 906:
            close[400:520] = close[399]
            close[900:906] = close[899]
    wick = np.abs(rng.normal(0.0, 0.3 if kind in ("random", "trending") else 0.006, (2, n)))
    high, low = close + wick[0], close - wick[1]
    if kind in ("flat", "idx") and n > 1200:
        high[400:520] = low[400:520] = close[400:520]
        for s in (700, 701, 1200):
            high[s] = low[s] = close[s]
    volume = rng.integers(0, 400, n).astype(float)
    return {"high": high, "low": low, "close": close, "volume": volume}


def _lead(data: dict[str, np.ndarray], k: int) -> dict[str, np.ndarray]:
    return {name: np.concatenate((np.full(k, np.nan), v)) for name, v in data.items()}


def _check(
    got: np.ndarray,
    want: np.ndarray,
    scale: float | np.ndarray = 0.0,
    skip: np.ndarray | None = None,
) -> None:
    got, want = np.asarray(got, dtype=float), np.asarray(want, dtype=float)
    assert got.shape == want.shape
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want), err_msg="NaN layout differs")
    ok = ~np.isnan(want)
    if skip is not None:
        ok &= ~skip
    size = np.maximum(np.maximum(np.abs(got), np.abs(want)), scale)[ok]
    err = np.abs(got - want)[ok]
    bad = err > np.maximum(REL * size, ABS)
    worst = int(np.argmax(err - REL * size)) if len(err) else 0
    assert not bad.any(), f"{int(bad.sum())} off, worst {got[ok][worst]!r} vs {want[ok][worst]!r}"


KINDS = ["random", "trending", "flat", "idx"]
LEADS = [0, 9]


@pytest.fixture(
    params=[(kind, lead) for kind in KINDS for lead in LEADS], ids=lambda p: f"{p[0]}-lead{p[1]}"
)
def data(request: pytest.FixtureRequest) -> dict[str, np.ndarray]:
    kind, lead = request.param
    return _lead(_series(kind), lead)


def _flat_windows(x: np.ndarray, n: int) -> np.ndarray:
    """True at t where x[t-n+1..t] is constant."""
    out = np.zeros(len(x), dtype=bool)
    w = np.lib.stride_tricks.sliding_window_view(x, n)
    out[n - 1 :] = (w == w[:, -1:]).all(axis=1)
    return out


@pytest.mark.parametrize("n", [2, 14, 75])
def test_sma_ema_wilder(data: dict[str, np.ndarray], n: int) -> None:
    x = data["close"]
    _check(tf_ta.sma(x, n), talib.SMA(x, n))
    _check(tf_ta.ema(x, n), talib.EMA(x, n))
    # Wilder's average is ATR's recursion on TRANGE
    tr = talib.TRANGE(data["high"], data["low"], x)
    _check(tf_ta.wilder(tr, n), talib.ATR(data["high"], data["low"], x, n))


@pytest.mark.parametrize("n", [2, 14, 30])
def test_rsi_cmo(data: dict[str, np.ndarray], n: int) -> None:
    x = data["close"]
    _check(tf_ta.rsi(x, n), talib.RSI(x, n))
    # CMO = 100 (AG - AL)/(AG + AL): judged against the size of its terms, 100 AG/(AG + AL)
    _check(tf_ta.cmo(x, n), talib.CMO(x, n), scale=100.0)


@pytest.mark.parametrize("periods", [(12, 26, 9), (26, 12, 9), (5, 35, 5)])
def test_macd(data: dict[str, np.ndarray], periods: tuple[int, int, int]) -> None:
    x = data["close"]
    # MACD = EMA_fast - EMA_slow cancels: judged against the size of the EMAs' terms
    scale = float(np.nanmax(np.abs(x)))
    for got, want in zip(tf_ta.macd(x, *periods), talib.MACD(x, *periods), strict=True):
        _check(got, want, scale=scale)


@pytest.mark.parametrize("n", [5, 20, 75])
def test_bbands(data: dict[str, np.ndarray], n: int) -> None:
    x = data["close"]
    want = list(talib.BBANDS(x, n, 2.0, 1.5, 0))
    got = tf_ta.bbands(x, n, 2.0, 1.5)
    flat = _flat_windows(x, n)
    # a flat window: sigma is 0 in exact arithmetic (K1), whatever TA-Lib's sums leave
    want[0] = np.where(flat, want[1], want[0])
    want[2] = np.where(flat, want[1], want[2])
    for g, w in zip(got, want, strict=True):
        _check(g, w)
    # sigma itself (small beside x near 100, where TA-Lib's running sums lose digits of it)
    # against a centred two-pass computation of the population standard deviation
    _check((got[0] - got[1]) / 2.0, np.sqrt(_centred_var(x, n)), scale=1e-3 * np.abs(got[1]))


def _centred_var(x: np.ndarray, n: int) -> np.ndarray:
    out = np.full(len(x), np.nan)
    b0 = int(np.argmax(~np.isnan(x)))
    w = np.lib.stride_tricks.sliding_window_view(x[b0:], n)
    out[b0 + n - 1 :] = ((w - w.mean(axis=1, keepdims=True)) ** 2).mean(axis=1)
    return out


@pytest.mark.parametrize("periods", [(5, 3, 3), (14, 3, 5)])
def test_stoch(data: dict[str, np.ndarray], periods: tuple[int, int, int]) -> None:
    h, lo, c = data["high"], data["low"], data["close"]
    fastk, slowk, slowd = periods
    want = talib.STOCH(h, lo, c, fastk, slowk, 0, slowd, 0)
    # the SMAs' running sums in TA-Lib: judged against the size of their terms (0..100)
    for got, w in zip(tf_ta.stoch(h, lo, c, fastk, slowk, slowd), want, strict=True):
        _check(got, w, scale=100.0)


@pytest.mark.parametrize("n", [2, 15, 75])
def test_willr(data: dict[str, np.ndarray], n: int) -> None:
    h, lo, c = data["high"], data["low"], data["close"]
    _check(tf_ta.willr(h, lo, c, n), talib.WILLR(h, lo, c, n))


@pytest.mark.parametrize("n", [2, 14, 45])
def test_cci(data: dict[str, np.ndarray], n: int) -> None:
    h, lo, c = data["high"], data["low"], data["close"]
    want = talib.CCI(h, lo, c, n)
    tp = (h + lo + c) / 3
    flat = _flat_windows(tp, n)
    want = np.where(flat, 0.0, want)  # exact arithmetic: a flat window has CCI 0 (K1, F6)
    mu = talib.SMA(tp, n)
    knife = ~flat & (np.abs(tp - mu) <= 1e-6 * np.abs(tp))
    _check(tf_ta.cci(h, lo, c, n), want, skip=knife)


@pytest.mark.parametrize("n", [2, 14])
def test_trange_atr(data: dict[str, np.ndarray], n: int) -> None:
    h, lo, c = data["high"], data["low"], data["close"]
    _check(tf_ta.trange(h, lo, c), talib.TRANGE(h, lo, c))
    _check(tf_ta.atr(h, lo, c, n), talib.ATR(h, lo, c, n))


@pytest.mark.parametrize("n", [2, 14, 30])
def test_dmi(data: dict[str, np.ndarray], n: int) -> None:
    h, lo, c = data["high"], data["low"], data["close"]
    adx, pdi, mdi = tf_ta.dmi(h, lo, c, n)
    _check(adx, talib.ADX(h, lo, c, n))
    _check(pdi, talib.PLUS_DI(h, lo, c, n))
    _check(mdi, talib.MINUS_DI(h, lo, c, n))
    _check(tf_ta.adx(h, lo, c, n), adx)
    _check(tf_ta.plus_di(h, lo, c, n), pdi)
    _check(tf_ta.minus_di(h, lo, c, n), mdi)


@pytest.mark.parametrize("n", [2, 14])
def test_mfi(data: dict[str, np.ndarray], n: int) -> None:
    h, lo, c, v = data["high"], data["low"], data["close"], data["volume"]
    # TA-Lib keeps running sums of the flows: judged against the size of their terms,
    # 100 * sum|flow| / |total| (only random, partly negative prices make it exceed 100)
    tp = (h + lo + c) / 3
    flow = np.abs(tp * v)
    flow[0] = np.nan
    size = np.full(len(c), np.nan)
    size[n - 1 :] = np.lib.stride_tricks.sliding_window_view(flow, n).sum(axis=1)
    total = np.abs(talib.SUM(np.where(np.r_[np.nan, np.diff(tp)] != 0, tp * v, 0.0), n))
    with np.errstate(divide="ignore", invalid="ignore"):
        scale = np.nan_to_num(100.0 * size / total, nan=0.0, posinf=0.0)
    _check(tf_ta.mfi(h, lo, c, v, n), talib.MFI(h, lo, c, v, n), scale=scale)


def test_mfi_is_talib_on_each_window_with_null_volumes() -> None:
    """K3: NaN where a volume of bars t-n+1..t is NaN; bar t-n's volume does not matter;
    elsewhere TA-Lib MFI(n) on bars t-n..t alone."""
    d = _series("idx", n=400)
    v = d["volume"].copy()
    v[[50, 51, 120, 300]] = np.nan
    v[200:230] = np.nan
    v[[10, 11, 12, 60]] = 0.0
    got = tf_ta.mfi(d["high"], d["low"], d["close"], v, 14)
    want = np.full(400, np.nan)
    for t in range(14, 400):
        sl = slice(t - 14, t + 1)
        if not np.isnan(v[t - 13 : t + 1]).any():
            w = v[sl].copy()
            w[0] = 1.0  # its volume is not used
            want[t] = talib.MFI(d["high"][sl], d["low"][sl], d["close"][sl], w, 14)[-1]
    _check(got, want)


def test_mfi_dead_zone() -> None:
    """Typical-price changes at the bundled C library's dead zone, on several scales."""
    rng = np.random.default_rng(11)
    for base in (1e-3, 1.0, 100.0, 1e4):
        tp = base * (1.0 + rng.choice([-3e-14, -1e-14, 0.0, 1e-14, 3e-14, 1e-12], 300))
        v = rng.integers(1, 50, 300).astype(float)
        _check(tf_ta.mfi(tp, tp, tp, v, 14), talib.MFI(tp, tp, tp, v, 14))


def test_short_inputs() -> None:
    for m in (0, 1, 2, 13, 14, 15, 27, 28, 33, 34):
        d = _series("idx", n=max(m, 1))
        h, lo, c, v = (d[k][:m] for k in ("high", "low", "close", "volume"))
        if m:
            _check(tf_ta.rsi(c, 14), talib.RSI(c, 14))
            _check(tf_ta.ema(c, 14), talib.EMA(c, 14))
            for g, w in zip(tf_ta.macd(c), talib.MACD(c, 12, 26, 9), strict=True):
                _check(g, w, scale=100.0)
            _check(tf_ta.adx(h, lo, c, 14), talib.ADX(h, lo, c, 14))
            _check(tf_ta.plus_di(h, lo, c, 14), talib.PLUS_DI(h, lo, c, 14))
            _check(tf_ta.cci(h, lo, c, 14), talib.CCI(h, lo, c, 14))
            _check(tf_ta.mfi(h, lo, c, v, 14), talib.MFI(h, lo, c, v, 14))
            for g, w in zip(
                tf_ta.stoch(h, lo, c), talib.STOCH(h, lo, c, 5, 3, 0, 3, 0), strict=True
            ):
                _check(g, w, scale=100.0)
        else:
            assert len(tf_ta.rsi(c, 14)) == 0 and len(tf_ta.mfi(h, lo, c, v, 14)) == 0


def test_all_nan() -> None:
    x = np.full(50, np.nan)
    for f in (
        lambda: tf_ta.ema(x, 5),
        lambda: tf_ta.rsi(x, 5),
        lambda: tf_ta.dmi(x, x, x, 5)[0],
        lambda: tf_ta.cci(x, x, x, 5),
    ):
        assert np.isnan(f()).all()


INTERIOR: dict[str, Callable[[dict[str, np.ndarray]], np.ndarray]] = {
    "ema": lambda d: tf_ta.ema(d["close"], 10),
    "rsi": lambda d: tf_ta.rsi(d["close"], 14),
    "macd": lambda d: tf_ta.macd(d["close"])[2],
    "adx": lambda d: tf_ta.adx(d["high"], d["low"], d["close"], 14),
    "atr": lambda d: tf_ta.atr(d["high"], d["low"], d["close"], 14),
}


@pytest.mark.parametrize("name", list(INTERIOR))
def test_interior_nan_poisons_a_recursion(name: str) -> None:
    """The documented contract: a NaN after b0 makes every later output of a recursion NaN
    and leaves the earlier ones as they were."""
    d = _series("idx", n=300)
    clean = INTERIOR[name](d)
    holed = {k: v.copy() for k, v in d.items()}
    holed["close"][150] = np.nan
    got = INTERIOR[name](holed)
    _check(got[:150], clean[:150])
    assert np.isnan(got[151:]).all()


def test_interior_nan_in_a_window() -> None:
    d = _series("idx", n=300)
    x = d["close"].copy()
    x[150] = np.nan
    got = tf_ta.sma(x, 10)
    assert np.isnan(got[150:160]).all() and not np.isnan(got[160:]).any()
    _check(got[160:], talib.SMA(d["close"], 10)[160:])


def test_bad_periods() -> None:
    x = np.arange(30.0)
    for bad in (1, 0, 2.5):
        with pytest.raises(ValueError):
            tf_ta.ema(x, bad)
    with pytest.raises(ValueError):
        tf_ta.cci(x, x, x[:-1], 5)


def test_adx_holds_where_dx_is_undefined() -> None:
    """+DI + -DI = 0 while TR > 0 (constant highs and lows, a moving close) leaves DX undefined:
    ADX skips it in its first sum and then holds; later moves start it again."""
    rng = np.random.default_rng(2)
    n = 200
    close = 100.0 + rng.uniform(-0.5, 0.5, n)
    high = np.full(n, 101.0)
    low = np.full(n, 99.0)
    high[40:44] += [0.5, 0.2, 0.9, 0.1]  # the first DM: ADX is 0 at bar 27 and held to bar 39
    high[90:] += np.cumsum(rng.uniform(0.0, 0.3, n - 90))
    low[90:] = np.minimum(low[90:], close[90:] - 0.1)
    for lead in (0, 5):
        h, lo, c = (np.concatenate((np.full(lead, np.nan), a)) for a in (high, low, close))
        adx, pdi, mdi = tf_ta.dmi(h, lo, c, 14)
        _check(adx, talib.ADX(h, lo, c, 14))
        _check(pdi, talib.PLUS_DI(h, lo, c, 14))
        _check(mdi, talib.MINUS_DI(h, lo, c, 14))
