"""python_udfs/tf_bar_multiscale.py (K12 multi_scale) against the oracle of
tests/oracle/bar_multiscale.py: full builds, incremental refreshes from the model's warm-up (one
one-minute bar and WARMUP_BUCKETS scale buckets; cuts at gaps, bucket edges, the flat stretch,
the ends, and on a symbol long enough that the buckets are cut short) and appends.

The model's SQL hands the kernel bars_30m and bars_60m as extra inputs; here `_scale_inputs`
builds them from the one-minute bars as K-bars defines them, and the helpers below are those of
bar_harness with those inputs added."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import talib
import tf_bars
import yaml
from tf_common import InputError

from tests.kernels import bar_harness as harness
from tests.oracle import bar_datasets
from tests.oracle.bar_multiscale import ORACLES, SCALES, scale_bars

MODEL = "multi_scale"
# models/bar/multi_scale.sql: bar_family_model(warmup_bars=1, ..., scale_warmup_buckets=600)
WARMUP_BARS = 1
WARMUP_BUCKETS = 600


EDGE_CASES = harness.symbols(bar_datasets.edge_case_bars())
OTHER_SEEDS = [
    bar_datasets.symbol_bars("EURUSD", seed=11, start="2020-12-30 19:13"),
    bar_datasets.symbol_bars("NZDUSD", seed=23, start="2019-06-02 23:47", n=2500),
]
# a flat stretch of 1,600 bars: more than 20 flat 30- and 60-minute bars in a row (Bollinger
# sigma 0, efficiency ratio 0, range position 0.5, volatilities exactly 0)
FLAT = bar_datasets.symbol_bars("NZDUSD", seed=3, n=4000)
FLAT.loc[1000:2599, ["open", "high", "low", "close"]] = FLAT["close"].iloc[999]
# more 30- and 60-minute buckets than WARMUP_BUCKETS: a refresh near the end gets a cut
# short sequence of scale bars, whose recursions must have forgotten their seed
LONG = bar_datasets.symbol_bars("USDJPY", seed=5, n=45_000)
DATASETS = [*EDGE_CASES, *OTHER_SEEDS, FLAT]
IDS = [*(f"{b['symbol'].iloc[0]}@{b['ts'].iloc[0]:%Y-%m-%d}" for b in DATASETS[:-1]), "flat"]


def _buckets(bars: pd.DataFrame, minutes: int) -> dict[str, np.ndarray]:
    """bars_<minutes>m of one symbol as K-bars defines it and the model's SQL passes it: per
    bucket (the open minute floored to a multiple of `minutes` since the epoch, so aligned to
    UTC midnight) the first open, max high, min low, last close, summed volume and ticks (NULL
    only when every value is NULL), the mean of the non-NULL spreads and the number of bars.
    Written apart from the oracle's pandas resampling, so that the two check each other."""
    x = bar_datasets.kernel_inputs(bars)
    bucket = x["minute"].astype(np.int64) // minutes * minutes
    starts, first = np.unique(bucket, return_index=True)
    last = np.r_[first[1:], len(bucket)] - 1
    out = {"minute": starts.astype(float), "open": x["open"][first], "close": x["close"][last]}
    out["high"] = np.maximum.reduceat(x["high"], first)
    out["low"] = np.minimum.reduceat(x["low"], first)
    out["bars"] = np.diff(np.r_[first, len(bucket)]).astype(float)
    for field in ("volume", "ticks", "spread"):
        values = x[field]
        known = np.add.reduceat((~np.isnan(values)).astype(float), first)
        total = np.add.reduceat(np.nan_to_num(values), first)
        if field == "spread":
            total = np.divide(total, known, out=np.zeros_like(total), where=known > 0)
        out[field] = np.where(known > 0, total, np.nan)
    return out


def _all_buckets(bars: pd.DataFrame) -> dict[str, dict[str, np.ndarray]]:
    """bars_30m and bars_60m of one symbol's one-minute bars, by scale name."""
    return {scale: _buckets(bars, minutes) for scale, minutes in SCALES.items()}


def _scale_inputs(
    buckets: dict[str, dict[str, np.ndarray]], from_minute: int | None = None
) -> dict[str, np.ndarray]:
    """The extra inputs the model's SQL passes: per scale the buckets from WARMUP_BUCKETS
    before the one holding `from_minute` (all of them when None) to the last."""
    out: dict[str, np.ndarray] = {}
    for scale, minutes in SCALES.items():
        arrays = buckets[scale]
        first = 0
        if from_minute is not None:
            held = int(np.searchsorted(arrays["minute"], from_minute // minutes * minutes))
            first = max(0, held - WARMUP_BUCKETS)
        out.update({f"{scale}_{field}": values[first:] for field, values in arrays.items()})
    return out


def _frame(result: dict[str, np.ndarray], bars: pd.DataFrame, start: int = 0) -> pd.DataFrame:
    frame = pd.DataFrame(
        {c: np.asarray(result[c], dtype=float)[start:] for c in tf_bars.columns(MODEL)}
    )
    frame[~np.isfinite(frame.to_numpy())] = np.nan
    frame.insert(0, "ts", bars["ts"].to_numpy()[start:])
    frame.insert(0, "symbol", bars["symbol"].to_numpy()[start:])
    return frame


def _full(bars: pd.DataFrame) -> pd.DataFrame:
    """harness.full with every bucket of the bars as extra inputs."""
    inputs = {**bar_datasets.kernel_inputs(bars), **_scale_inputs(_all_buckets(bars))}
    result = tf_bars.compute(MODEL, inputs, {"first_close": float(bars["close"].iloc[0])})
    return _frame(result, bars)


def _incremental(
    bars: pd.DataFrame, buckets: dict[str, dict[str, np.ndarray]], cut: int, whole: pd.DataFrame
) -> pd.DataFrame:
    """harness.incremental with the buckets from WARMUP_BUCKETS before the cut's bucket."""
    read_from = max(0, cut - WARMUP_BARS)
    window = bars.iloc[read_from:].reset_index(drop=True)
    cut_minute = int(bar_datasets.kernel_inputs(bars.iloc[[cut]])["minute"][0])
    inputs = {**bar_datasets.kernel_inputs(window), **_scale_inputs(buckets, cut_minute)}
    stored = whole.iloc[cut - 1].drop(["symbol", "ts"]).items() if cut else ()
    prev = {k: None if np.isnan(v) else v for k, v in stored} if cut else None
    params = {"first_close": float(bars["close"].iloc[0]), "start": cut - read_from, "prev": prev}
    return _frame(tf_bars.compute(MODEL, inputs, params), window, cut - read_from)


def _cuts(bars: pd.DataFrame) -> list[int]:
    """0, 1, 2, the ends, at and around the first gaps (> 5 minutes), the first bars of a
    30- and a 60-minute bucket and their last bars, inside the flat stretch."""
    n = len(bars)
    minutes = bars["ts"].diff() / pd.Timedelta(minutes=1)
    gaps = np.flatnonzero((minutes > 5).to_numpy())[:3]
    minute_of_hour = bars["ts"].dt.minute.to_numpy()
    edges = [*np.flatnonzero(minute_of_hour == 0)[1:3], *np.flatnonzero(minute_of_hour == 30)[1:2]]
    cuts = {0, 1, 2, n // 3 + 50, n // 2, n - 2, n - 1}
    for position in (*gaps, *edges):
        cuts |= {int(position) - 1, int(position), int(position) + 1}
    return sorted(c for c in cuts if 0 <= c < n)


@pytest.mark.parametrize("bars", DATASETS, ids=IDS)
def test_full_build_matches_the_oracle(bars: pd.DataFrame) -> None:
    got = _full(bars)
    want = ORACLES[MODEL](bars, float(bars["close"].iloc[0]))
    harness.assert_matches(got, want)


@pytest.mark.parametrize("bars", DATASETS, ids=IDS)
def test_incremental_equals_full(bars: pd.DataFrame) -> None:
    whole = _full(bars)
    buckets = _all_buckets(bars)
    for cut in _cuts(bars):
        harness.assert_matches(
            _incremental(bars, buckets, cut, whole), whole.iloc[cut:].reset_index(drop=True)
        )


@pytest.mark.slow
def test_incremental_equals_full_with_the_buckets_cut_short() -> None:
    bars = LONG
    buckets = _all_buckets(bars)
    cut_short = {s: len(buckets[s]["minute"]) - WARMUP_BUCKETS for s in SCALES}
    assert min(cut_short.values()) > 100, cut_short  # both scales lose their first buckets
    whole = _full(bars)
    harness.assert_matches(whole, ORACLES[MODEL](bars, float(bars["close"].iloc[0])))
    n = len(bars)
    for cut in (n - 1, n - 2, n - 31, n - 60, n - 500):
        harness.assert_matches(
            _incremental(bars, buckets, cut, whole), whole.iloc[cut:].reset_index(drop=True)
        )


@pytest.mark.parametrize("bars", DATASETS, ids=IDS)
def test_append_never_changes_the_past(bars: pd.DataFrame) -> None:
    whole = _full(bars)
    for cut in _cuts(bars):
        if cut == 0:
            continue
        head = bars.iloc[:cut].reset_index(drop=True)
        harness.assert_matches(_full(head), whole.iloc[:cut].reset_index(drop=True))


def test_a_scale_bar_is_used_from_its_last_minute_on() -> None:
    """Bars every minute from 00:00 to 01:09: the first 30-minute bucket is complete at the
    bar of 00:29 (its close, 00:30, is the bucket's end), the first 60-minute one at 00:59."""
    ts = pd.date_range("2024-05-06 00:00", periods=70, freq="1min", tz="UTC")
    close = 1.1 + 1e-4 * np.arange(70)
    bars = pd.DataFrame(
        {
            "symbol": "EURUSD",
            "ts": ts,
            "open": close,
            "high": close + 1e-4,
            "low": close - 1e-4,
            "close": close,
            "volume": 1.0,
            "spread": 1e-5,
            "ticks": 2.0,
        }
    )
    got = _full(bars)
    age30, bars30 = got["ms_age_m30"].to_numpy(), got["ms_bars_m30"].to_numpy()
    assert np.isnan(age30[:29]).all() and np.isnan(bars30[:29]).all()
    assert list(age30[29:32]) == [0.0, 1.0, 2.0] and age30[59] == 0.0 and age30[69] == 10.0
    assert bars30[29] == 30.0
    # the bar of 00:29 sees the bucket 00:00 - 00:29, whose close is its own close
    assert got["ms_close_vs_m30"].iloc[29] == 0.0 and got["ms_close_vs_m30"].iloc[59] == 0.0
    age60 = got["ms_age_m60"].to_numpy()
    assert np.isnan(age60[:59]).all() and age60[59] == 0.0 and age60[69] == 10.0
    # the high of the 00:30 - 00:59 bucket is the high of its last bar
    assert got["ms_pos_in_range_m30"].iloc[59] == pytest.approx(
        (close[59] - (close[30] - 1e-4)) / (close[59] - close[30] + 2e-4)
    )


def test_the_centred_bollinger_formula_is_talibs() -> None:
    """The oracle's %B is TA-Lib's BBANDS(20, 2, 2, SMA) formula computed centred: off flat
    windows it agrees with talib.BBANDS to TA-Lib's running-sum rounding (~1e-12 relative on
    the index; 1e-7 here only bounds that rounding, the kernel is held to 1e-9 above)."""
    bars = EDGE_CASES[0]
    first_close = float(bars["close"].iloc[0])
    oracle = ORACLES[MODEL](bars, first_close)
    sb = scale_bars(bars, 30)
    idx = 100.0 * sb["close"].to_numpy(float) / first_close
    upper, _, lower = talib.BBANDS(idx, timeperiod=20, nbdevup=2, nbdevdn=2, matype=0)
    pctb = (idx - lower) / (upper - lower)
    known = bars["ts"] + pd.Timedelta(minutes=1)
    complete = sb["start"] + pd.Timedelta(minutes=30)
    j = np.searchsorted(complete.to_numpy(), known.to_numpy(), side="right") - 1
    want = np.where(j >= 0, pctb[np.maximum(j, 0)], np.nan)
    got = oracle["ms_bb_pctb_m30_w20"].to_numpy()
    assert (np.isnan(got) == np.isnan(want)).all() and (~np.isnan(got)).sum() > 1000
    ok = ~np.isnan(got)
    np.testing.assert_allclose(got[ok], want[ok], rtol=1e-7, atol=1e-7)


def test_missing_scale_bars_are_an_input_error() -> None:
    bars = EDGE_CASES[-1]
    with pytest.raises(InputError, match="m30_minute"):
        tf_bars.compute(MODEL, bar_datasets.kernel_inputs(bars), {"first_close": 1.0})


def test_the_columns_are_the_yamls() -> None:
    path = Path(__file__).resolve().parents[2] / "models" / "bar" / f"{MODEL}.yml"
    (model,) = yaml.safe_load(path.read_text())["models"]
    assert [c["name"] for c in model["columns"]][2:] == tf_bars.columns(MODEL)
