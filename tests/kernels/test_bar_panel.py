"""python_udfs/tf_bar_panel.py (K14 cross_sectional, a panel kernel: one call sees every
symbol) against the pandas oracle of tests/oracle/bar_panel.py, on a universe made of
bar_datasets' edge-case symbols (gaps, flat stretches, NULL volumes, a 40-bar symbol) and
made-up pairs: EURJPY and NZDJPY (currency strength with three legs each), an exact copy of
EURUSD's first 1500 bars (ties in every measure), a symbol with only a quote currency that
starts 8 hours before the others (minutes where it is alone) and SHORTFX with no currency.

Incremental refreshes, chunked builds and calls with the symbols reordered or only those
with bars in the chunk must give the full build's values bit for bit (np.array_equal, NULLs
identical), not merely within a tolerance.
"""

from __future__ import annotations

import functools
import itertools
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import tf_bar_panel
import yaml
from tf_common import InputError

from tests.kernels import bar_harness as harness
from tests.oracle import bar_datasets
from tests.oracle.bar_panel import COLUMNS, cross_sectional

ROOT = Path(__file__).resolve().parents[2]
MODEL = "cross_sectional"
WARMUP = 240

CURRENCIES: dict[str, tuple[str | None, str | None]] = {
    "EURUSD": ("EUR", "USD"),
    "USDJPY": ("USD", "JPY"),
    "NZDUSD": ("NZD", "USD"),
    "SHORTFX": (None, None),
    "EURJPY": ("EUR", "JPY"),
    "NZDJPY": ("NZD", "JPY"),
    "EURUSD2": ("EUR", "USD"),
    "ESLATE": (None, "USD"),
}


def _renamed(bars: pd.DataFrame, symbol: str) -> pd.DataFrame:
    return bars.assign(symbol=symbol)


@functools.cache
def _universe(seed: int = 7) -> pd.DataFrame:
    edge = bar_datasets.edge_case_bars(seed=seed)
    eurusd = edge[edge["symbol"] == "EURUSD"].reset_index(drop=True)
    made_up = [
        _renamed(bar_datasets.symbol_bars("USDJPY", seed=seed + 14), "EURJPY"),
        _renamed(bar_datasets.symbol_bars("USDJPY", seed=seed + 15, n=2200), "NZDJPY"),
        _renamed(eurusd.iloc[:1500], "EURUSD2"),
        _renamed(
            bar_datasets.symbol_bars("EURUSD", seed=seed + 16, n=900, start="2024-03-07 10:00"),
            "ESLATE",
        ),
    ]
    frame = pd.concat([edge, *made_up], ignore_index=True)
    return frame.sort_values(["symbol", "ts"], ignore_index=True)


def _minutes(bars: pd.DataFrame) -> np.ndarray:
    return bar_datasets.kernel_inputs(bars)["minute"]


def _inputs(
    universe: pd.DataFrame,
    symbols: list[str],
    from_minute: float | None = None,
    to_minute: float | None = None,
    warmup: int = WARMUP,
) -> list[dict[str, np.ndarray]]:
    """Each symbol's bars as the SQL passes them: from its `warmup`-th bar before from_minute
    (or its first bar), up to but excluding to_minute."""
    out = []
    for symbol in symbols:
        bars = universe[universe["symbol"] == symbol].reset_index(drop=True)
        minute = _minutes(bars)
        first = 0 if from_minute is None else int(np.searchsorted(minute, from_minute))
        last = len(minute) if to_minute is None else int(np.searchsorted(minute, to_minute))
        keep = slice(max(0, first - warmup), last)
        out.append(
            {
                "minute": minute[keep],
                "close": bars["close"].to_numpy(float)[keep],
                "volume": bars["volume"].to_numpy(float)[keep],
            }
        )
    return out


def _call(
    universe: pd.DataFrame,
    symbols: list[str],
    from_minute: float | None = None,
    to_minute: float | None = None,
    warmup: int = WARMUP,
) -> pd.DataFrame:
    """The kernel's rows as a frame keyed (symbol, minute), sorted."""
    params = {
        "base": [CURRENCIES[s][0] for s in symbols],
        "quote": [CURRENCIES[s][1] for s in symbols],
        "from_minute": from_minute,
    }
    result = tf_bar_panel.compute_panel(
        MODEL, _inputs(universe, symbols, from_minute, to_minute, warmup), params
    )
    frame = pd.DataFrame({c: result[c] for c in COLUMNS})
    frame.insert(0, "minute", result["_minute"])
    frame.insert(0, "symbol", np.asarray(symbols, dtype=object)[result["_symbol"].astype(int)])
    return frame.sort_values(["symbol", "minute"], ignore_index=True)


@functools.cache
def _full(seed: int = 7) -> pd.DataFrame:
    universe = _universe(seed)
    return _call(universe, sorted(CURRENCIES))


def _with_ts(frame: pd.DataFrame) -> pd.DataFrame:
    """Kernel rows keyed (symbol, ts) like the oracle."""
    ts = pd.to_datetime(frame["minute"].astype("int64"), unit="m", utc=True)
    out = frame.drop(columns=["minute"])
    out.insert(1, "ts", ts.to_numpy())
    return out


def _assert_identical(got: pd.DataFrame, want: pd.DataFrame) -> None:
    """Same rows and keys; every value bit-identical (NaN where NaN)."""
    assert got[["symbol", "minute"]].equals(want[["symbol", "minute"]].reset_index(drop=True))
    for c in COLUMNS:
        a, b = got[c].to_numpy(float), want[c].to_numpy(float)
        assert np.array_equal(a, b, equal_nan=True), (
            f"{c}: {int(np.sum(~((a == b) | (np.isnan(a) & np.isnan(b)))))} values differ"
        )


def _grid(universe: pd.DataFrame) -> np.ndarray:
    return np.unique(_minutes(universe))


def _cuts(universe: pd.DataFrame) -> list[float]:
    """From-minutes of a refresh: the first and second minutes, one where ESLATE is alone, the
    start of the other symbols, a minute inside a gap (no symbol has a bar there), inside
    EURUSD's flat stretch, inside its NULL-volume stretch, the middle, the last minute."""
    grid = _grid(universe)
    eurusd = _minutes(universe[universe["symbol"] == "EURUSD"])
    flat = len(eurusd) // 3
    gap = grid[np.flatnonzero(np.diff(grid) > 3)[0]] + 2
    return [
        grid[0],
        grid[1],
        grid[200],
        eurusd[0],
        eurusd[1],
        gap,
        eurusd[flat + 60],
        eurusd[flat + 320],
        eurusd[WARMUP + 3],
        grid[len(grid) // 2],
        grid[-1],
    ]


# --- the contract and the YAML ----------------------------------------------------------------


def test_contract() -> None:
    assert tf_bar_panel.PANEL is True
    assert tf_bar_panel.MODELS == {MODEL: COLUMNS}
    assert tf_bar_panel.WARMUP_BARS == {MODEL: WARMUP}
    assert len(COLUMNS) >= 46


def test_columns_are_the_yaml_columns_in_order() -> None:
    spec = yaml.safe_load((ROOT / "models" / "bar_k14" / f"{MODEL}.yml").read_text())
    (model,) = spec["models"]
    assert model["name"] == MODEL
    assert model["config"]["meta"]["family"] == MODEL
    names = [c["name"] for c in model["columns"]]
    assert names == ["symbol", "ts", *tf_bar_panel.MODELS[MODEL]]
    for column in model["columns"][2:]:
        assert column["description"] and column["data_type"]
        assert set(column["config"]["meta"]) >= {"unit", "window", "source"}


# --- against the oracle -----------------------------------------------------------------------


@pytest.mark.parametrize("seed", [7, 11])
def test_full_build_equals_oracle(seed: int) -> None:
    universe = _universe(seed)
    got = _with_ts(_full(seed))
    want = cross_sectional(universe, CURRENCIES)
    harness.assert_matches(got, want)


def test_the_universe_has_the_edge_cases() -> None:
    """The data above really holds what the tests claim (so they can fail)."""
    full = _full()
    alone = full[full["xs_n_symbols"] == 1]
    assert len(alone) > 100 and set(alone["symbol"]) >= {"ESLATE"}
    # ties: EURUSD2 copies EURUSD, so their ranks are equal wherever both have a value
    both = full[full["symbol"].isin(["EURUSD", "EURUSD2"])].pivot(
        index="minute", columns="symbol", values="xs_rank_ret_15"
    )
    both = both.dropna()
    assert len(both) > 1000 and (both["EURUSD"] == both["EURUSD2"]).all()
    # NULL volume leaves the symbol's own rank NULL but not the panel's mean
    null_volume = full["xs_rank_volume"].isna() & full["xs_mean_volume"].notna()
    assert null_volume.sum() > 40
    # symbols without a currency: NULL strength, the quote side of ESLATE is USD's
    assert full.loc[full["symbol"] == "SHORTFX", "xs_strength_base_bqx15"].isna().all()
    late = full[full["symbol"] == "ESLATE"]
    assert late["xs_strength_base_bqx15"].isna().all()
    assert late["xs_strength_quote_bqx15"].notna().sum() > 300


def test_flat_stretch_gives_exact_zero_volatility() -> None:
    """K7: EURUSD and its copy are flat for 120 bars; their rvol_60 is exactly 0 there, so
    they tie at the lowest rank (float residue would separate them or lift them)."""
    universe = _universe()
    full = _full()
    eurusd = _minutes(universe[universe["symbol"] == "EURUSD"])
    end = eurusd[len(eurusd) // 3 + 119]  # the last bar of the flat stretch
    at = full[full["minute"] == end].set_index("symbol")
    assert at.loc["EURUSD", "xs_rank_rvol_60"] == 1.0
    assert at.loc["EURUSD2", "xs_rank_rvol_60"] == 1.0
    assert at.loc["EURUSD", "xs_pct_rvol_60"] == 0.0
    mean, std = at.loc["EURUSD", "xs_mean_rvol_60"], at.loc["EURUSD", "xs_std_rvol_60"]
    assert at.loc["EURUSD", "xs_z_rvol_60"] == (0.0 - mean) / std


# --- incremental, chunked, reordered: bit-identical ----------------------------------------------


@pytest.mark.parametrize("seed", [7, 11])
def test_incremental_equals_full_exactly(seed: int) -> None:
    """A refresh from each cut (only WARMUP bars of each symbol before it) returns exactly the
    full build's rows from the cut on."""
    universe = _universe(seed)
    symbols = sorted(CURRENCIES)
    full = _full(seed)
    for cut in _cuts(universe):
        got = _call(universe, symbols, from_minute=float(cut))
        want = full[full["minute"] >= cut]
        _assert_identical(got, want)


def test_chunked_build_equals_full_exactly() -> None:
    """Consecutive chunks of minutes, each called with only the symbols having a bar in it,
    in another order each time, and bars up to the chunk's end: their union is the full
    build, bit for bit (so appends never change the past)."""
    universe = _universe()
    grid = _grid(universe)
    full = _full()
    edges = [grid[0], grid[150], grid[481], grid[1500], grid[2600], grid[3100], grid[-1] + 1]
    rng = np.random.default_rng(5)
    parts = []
    for a, b in itertools.pairwise(edges):
        having = []
        for s in sorted(CURRENCIES):
            m = _minutes(universe[universe["symbol"] == s])
            if ((m >= a) & (m < b)).any():
                having.append(s)
        order = list(rng.permutation(having))
        parts.append(_call(universe, order, from_minute=float(a), to_minute=float(b)))
    got = pd.concat(parts).sort_values(["symbol", "minute"], ignore_index=True)
    _assert_identical(got, full)


def test_small_blocks_change_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    """The dense (minute x symbol) matrix handled in blocks of 3 minutes gives the same values
    as in one block."""
    monkeypatch.setattr(tf_bar_panel, "BLOCK_CELLS", 3 * len(CURRENCIES) + 1)
    _assert_identical(_call(_universe(), sorted(CURRENCIES)), _full())


def test_one_bar_less_of_warm_up_is_not_enough() -> None:
    """WARMUP_BARS is tight: with 239 bars before the cut, rvol_240's panel changes."""
    universe = _universe()
    full = _full()
    cut = float(_minutes(universe[universe["symbol"] == "EURUSD"])[WARMUP + 3])
    got = _call(universe, sorted(CURRENCIES), from_minute=cut, warmup=WARMUP - 1)
    want = full[full["minute"] >= cut].reset_index(drop=True)
    assert got["xs_n_symbols"].equals(want["xs_n_symbols"])
    assert not got["xs_rank_rvol_240"].equals(want["xs_rank_rvol_240"])
    assert got["xs_rank_rvol_60"].equals(want["xs_rank_rvol_60"])


def test_extra_symbols_without_rows_change_nothing() -> None:
    """A symbol passed with only warm-up bars (none at or after from_minute) adds no row and
    changes no other value."""
    universe = _universe()
    full = _full()
    shortfx = _minutes(universe[universe["symbol"] == "SHORTFX"])
    cut = float(shortfx[-1] + 1)
    got = _call(universe, sorted(CURRENCIES), from_minute=cut)
    assert "SHORTFX" not in set(got["symbol"])
    _assert_identical(got, full[full["minute"] >= cut])


# --- hand-computed cases ------------------------------------------------------------------------


def _one_minute_panel(
    volumes: list[float], base: list[str | None] | None = None
) -> dict[str, np.ndarray]:
    bars = [
        {"minute": np.array([100.0]), "close": np.array([1.0]), "volume": np.array([v])}
        for v in volumes
    ]
    n = len(volumes)
    return tf_bar_panel.compute_panel(
        MODEL, bars, {"base": base or [None] * n, "quote": [None] * n, "from_minute": 0}
    )


def _by_symbol(result: dict[str, np.ndarray], column: str) -> np.ndarray:
    return result[column][np.argsort(result["_symbol"])]


def test_ranks_ties_and_nulls_by_hand() -> None:
    r = _one_minute_panel([3.0, 1.0, 3.0, np.nan, 2.0])
    np.testing.assert_array_equal(_by_symbol(r, "xs_rank_volume"), [3, 1, 3, np.nan, 2])
    np.testing.assert_allclose(
        _by_symbol(r, "xs_pct_volume"), [2 / 3, 0, 2 / 3, np.nan, 1 / 3], rtol=1e-15
    )
    mean, std = 9 / 4, np.sqrt((2 * 0.75**2 + 1.25**2 + 0.25**2) / 3)
    np.testing.assert_allclose(_by_symbol(r, "xs_mean_volume"), [mean] * 5, rtol=1e-15)
    np.testing.assert_allclose(_by_symbol(r, "xs_std_volume"), [std] * 5, rtol=1e-15)
    z = (np.array([3.0, 1.0, 3.0, np.nan, 2.0]) - mean) / std
    np.testing.assert_allclose(_by_symbol(r, "xs_z_volume"), z, rtol=1e-14)
    np.testing.assert_array_equal(r["xs_n_symbols"], [5] * 5)
    # one bar each: ret_1 and everything after it are NULL, and so are their panel values
    assert np.isnan(r["xs_rank_ret_1"]).all() and np.isnan(r["xs_mean_ret_1"]).all()
    assert np.isnan(r["xs_std_ret_1"]).all()


def test_equal_values_are_detected_exactly() -> None:
    """0.1 three times: the sum is 0.30000000000000004, yet the mean is 0.1 and std_s 0
    exactly; the z-score is NULL, every rank 1 and percentile 0."""
    r = _one_minute_panel([0.1, 0.1, 0.1])
    assert (r["xs_mean_volume"] == 0.1).all()
    assert (r["xs_std_volume"] == 0.0).all()
    assert np.isnan(r["xs_z_volume"]).all()
    assert (r["xs_rank_volume"] == 1.0).all() and (r["xs_pct_volume"] == 0.0).all()


def test_a_lone_symbol() -> None:
    r = _one_minute_panel([7.0])
    assert r["xs_rank_volume"][0] == 1.0 and r["xs_mean_volume"][0] == 7.0
    assert np.isnan(r["xs_pct_volume"][0]) and np.isnan(r["xs_z_volume"][0])
    assert np.isnan(r["xs_std_volume"][0]) and r["xs_n_symbols"][0] == 1.0


def test_currency_strength_by_hand() -> None:
    """bqx_15 of EURUSD, USDJPY, EURJPY = 1, 2, 4 (closes 1 -> 1.01, 1.02, 1.04); ESLATE (quote
    USD only) and MYSTERY (no currency) move by 8 and 16 but are not pairs, so they do not
    count: EUR = mean(1, 4) = 2.5, USD = mean(-1, 2) = 0.5, JPY = mean(-2, -4) = -3."""
    rises = {"EURUSD": 0.01, "USDJPY": 0.02, "EURJPY": 0.04, "ESLATE": 0.08, "MYSTERY": 0.16}
    ccy = {
        "EURUSD": ("EUR", "USD"),
        "USDJPY": ("USD", "JPY"),
        "EURJPY": ("EUR", "JPY"),
        "ESLATE": (None, "USD"),
        "MYSTERY": (None, None),
    }
    symbols = list(rises)
    bars = []
    for s in symbols:
        close = np.ones(16)
        close[15] = 1.0 + rises[s]
        bars.append({"minute": np.arange(16.0), "close": close, "volume": np.ones(16)})
    r = tf_bar_panel.compute_panel(
        MODEL,
        bars,
        {
            "base": [ccy[s][0] for s in symbols],
            "quote": [ccy[s][1] for s in symbols],
            "from_minute": 15,
        },
    )
    bqx = {s: 100 * rises[s] for s in symbols}
    eur, usd = (bqx["EURUSD"] + bqx["EURJPY"]) / 2, (-bqx["EURUSD"] + bqx["USDJPY"]) / 2
    jpy = (-bqx["USDJPY"] - bqx["EURJPY"]) / 2
    want_base = [eur, usd, eur, np.nan, np.nan]
    want_quote = [usd, jpy, jpy, usd, np.nan]
    np.testing.assert_allclose(_by_symbol(r, "xs_strength_base_bqx15"), want_base, rtol=1e-12)
    np.testing.assert_allclose(_by_symbol(r, "xs_strength_quote_bqx15"), want_quote, rtol=1e-12)
    np.testing.assert_allclose(
        _by_symbol(r, "xs_strength_diff_bqx15"),
        np.array(want_base) - np.array(want_quote),
        rtol=1e-12,
    )
    assert np.isnan(r["xs_strength_base_bqx30"]).all()  # 16 bars: no bqx_30 yet
    np.testing.assert_allclose(
        _by_symbol(r, "xs_mean_bqx_15"), [np.mean(list(bqx.values()))] * 5, rtol=1e-12
    )


# --- through tf_bars ----------------------------------------------------------------------------


def test_through_tf_bars_rows(monkeypatch: pytest.MonkeyPatch) -> None:
    """tf_bars.rows (the SQL's entry point) unpacks each symbol's bars, dispatches to the panel
    kernel and returns (minute, symbol, columns...) rows equal to the full build's."""
    import tf_bars

    assert tf_bars.MODULES.get(MODEL, "tf_bar_panel") == "tf_bar_panel"
    monkeypatch.setitem(tf_bars.MODULES, MODEL, "tf_bar_panel")
    universe = _universe()
    symbols = sorted(CURRENCIES)
    cut = float(_cuts(universe)[5])
    inputs = _inputs(universe, symbols, cut)
    packed = [
        np.column_stack([b["minute"], b["close"], b["volume"]]).astype(np.float64).tobytes()
        for b in inputs
    ]
    params = {
        "base": [CURRENCIES[s][0] for s in symbols],
        "quote": [CURRENCIES[s][1] for s in symbols],
        "from_minute": cut,
    }
    matrix = np.frombuffer(
        tf_bars.rows(MODEL, COLUMNS, packed, json.dumps(params)), dtype=np.float64
    ).reshape(-1, len(COLUMNS) + 2)
    want = _full()
    want = want[want["minute"] >= cut]
    got = pd.DataFrame(matrix[:, 2:], columns=COLUMNS)
    got.insert(0, "minute", matrix[:, 0])
    got.insert(0, "symbol", np.asarray(symbols, dtype=object)[matrix[:, 1].astype(int)])
    _assert_identical(got.sort_values(["symbol", "minute"], ignore_index=True), want)


# --- bad input ----------------------------------------------------------------------------------


def _bars(n: int = 3) -> dict[str, np.ndarray]:
    return {"minute": np.arange(float(n)), "close": np.ones(n), "volume": np.ones(n)}


@pytest.mark.parametrize(
    ("model", "bars", "params", "message"),
    [
        ("nope", [_bars()], {}, "no model named 'nope' in tf_bar_panel"),
        (
            MODEL,
            [_bars()],
            {"from_minute": float("nan")},
            "params.from_minute must be a finite number, got nan",
        ),
        (
            MODEL,
            [{**_bars(), "close": np.ones(2)}],
            {},
            "symbol 1: minute, close and volume differ in length",
        ),
        (
            MODEL,
            [_bars(), {**_bars(), "minute": np.array([0.0, 2.0, 2.0])}],
            {},
            "symbol 2: minute is not strictly increasing",
        ),
        (
            MODEL,
            [{**_bars(), "close": np.array([1.0, np.nan, 1.0])}],
            {},
            "symbol 1: close must be positive and not NULL",
        ),
        (MODEL, [{"minute": np.zeros(1)}], {}, "symbol 1: input close, volume missing"),
        (
            MODEL,
            [_bars(), _bars()],
            {"base": ["EUR"]},
            "params.base must list one currency per symbol (2)",
        ),
        (
            MODEL,
            [_bars()],
            {"base": ["EUR"], "quote": ["EUR"]},
            "symbol 1 has the same base and quote currency 'EUR'",
        ),
    ],
)
def test_bad_input(model: str, bars: list, params: dict, message: str) -> None:
    with pytest.raises(InputError) as caught:
        tf_bar_panel.compute_panel(model, bars, params)
    assert str(caught.value) == message


def test_no_rows() -> None:
    r = tf_bar_panel.compute_panel(MODEL, [], {"base": [], "quote": [], "from_minute": 5})
    assert set(r) == {"_symbol", "_minute", *COLUMNS}
    assert all(len(v) == 0 for v in r.values())
    # a symbol with no bars at all, another with only warm-up bars
    empty = {"minute": np.empty(0), "close": np.empty(0), "volume": np.empty(0)}
    r = tf_bar_panel.compute_panel(MODEL, [empty, _bars()], {"from_minute": 5})
    assert all(len(r[c]) == 0 for c in ("_symbol", *COLUMNS))
