"""The bar families across symbols, `correlation` and `error_correction` (FEATURE_DEFINITIONS
K14, H2-H3; python_udfs/tf_bar_cross.py), against the oracle written from K14 and the models'
YAML (tests/oracle/bar_cross.py: pandas rolling corr, statsmodels coint_johansen per window).

The universe: EURUSD, USDJPY and NZDUSD of tests/oracle/bar_datasets.py on a shared minute
grid with their own holes (USDJPY also has bars at minutes EURUSD lacks, NZDUSD starts 300
bars later), GBPUSD cointegrated with EURUSD with a 90-minute hole and scattered missing
minutes, EURJPY = EURUSD x USDJPY where both have a bar, AUDUSD with 40 bars. Peers are passed
as the models' SQL passes them (tf_bar_common: each peer from its PEER_WARMUP_BARS-th bar
before the kernel's first input minute, running past its last one), with the slots filled from
seeds/symbols.csv's currencies and reference_symbols = EURUSD, GBPUSD, USDJPY.

Incremental refreshes must EQUAL the full build bit for bit (no tolerance): window sums are
taken in blocks aligned to the stored bar number, and a refit's window is the same rows in the
same order. error_correction's warm-up is the SQL's: every bar from the earliest over j of the
refit_window-th newest minute before the first written bar at which both the symbol and R_j
have a bar.
"""

from __future__ import annotations

import csv
import functools
import itertools
import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import tf_bar_common
import tf_bar_cross
import tf_bars
import tf_johansen
import yaml
from statsmodels.tsa.vector_ar.vecm import coint_johansen
from tf_common import InputError

from tests.kernels import bar_harness as harness
from tests.kernels.conftest import assert_close
from tests.oracle import bar_cross as oracle
from tests.oracle.bar_datasets import kernel_inputs, symbol_bars
from tests.oracle.compare import mismatches

ROOT = Path(__file__).resolve().parents[2]
REFERENCES = ("EURUSD", "GBPUSD", "USDJPY")
WARMUP = {"correlation": 1514, "error_correction": 1440}
CORRELATION_SLOTS = list(tf_bar_cross.CORRELATION_SLOTS)
EC_SLOTS = list(tf_bar_cross.EC_SLOTS)
# test_johansen.py's tolerances: eigenvalues and statistics 1e-8, eigenvectors 1e-6
JOHANSEN_TOLERANCE = 1e-8
EVEC_TOLERANCE = 1e-6
EC_STATISTICS = ("rank", "trace_r0", "maxeig_r0", "trace_r1", "eig1", "eig2")
EC_FROM_EVEC = ("hedge_ratio", "ect_mean", "ect_std", "half_life", "ect", "ect_z")


# --- the universe and the peers as the SQL passes them ------------------------------------------


def _on_times(bars: pd.DataFrame, ts: pd.DatetimeIndex, symbol: str) -> pd.DataFrame:
    out = bars.iloc[: len(ts)].copy()
    out["ts"] = ts[: len(out)]
    out["symbol"] = symbol
    return out.reset_index(drop=True)


@functools.cache
def universe() -> dict[str, pd.DataFrame]:
    eur = symbol_bars("EURUSD")
    grid = pd.DatetimeIndex(eur["ts"])
    rng = np.random.default_rng(5)
    # USDJPY: EURUSD's minutes less 12, plus 40 minutes at which EURUSD has no bar
    holes = [
        t
        for a, b in itertools.pairwise(grid)
        for t in pd.date_range(a, b, freq="min", inclusive="neither")[:2]
    ]
    extra = pd.DatetimeIndex(sorted(rng.choice(np.array(holes), 40, replace=False)))
    jpy_ts = grid.delete(np.r_[500, 2000:2011]).union(extra)
    jpy = _on_times(symbol_bars("USDJPY", n=len(jpy_ts)), jpy_ts, "USDJPY")
    # NZDUSD: starts 300 bars later and misses half an hour
    nzd_ts = grid[300:].delete(np.arange(1200, 1230))
    nzd = _on_times(symbol_bars("NZDUSD", n=len(nzd_ts)), nzd_ts, "NZDUSD")
    # GBPUSD: 1.17 EURUSD + AR(1) noise (cointegrated), a 90-minute hole, scattered holes
    noise = np.zeros(len(eur))
    shocks = rng.normal(0, 3e-5, len(eur))
    for i in range(1, len(eur)):
        noise[i] = 0.9 * noise[i - 1] + shocks[i]
    keep = np.ones(len(eur), dtype=bool)
    keep[700:790] = False
    keep[2400:2700] = rng.random(300) > 0.05
    gbp = eur.assign(symbol="GBPUSD", close=np.round(1.17 * eur["close"] + noise, 5))[keep]
    # EURJPY: EURUSD x USDJPY where both have a bar, six minutes missing
    both = eur.merge(jpy[["ts", "close"]], on="ts", suffixes=("", "_jpy"))
    both = both.drop(index=both.index[2900:2906])
    eurjpy = both.assign(symbol="EURJPY", close=np.round(both["close"] * both["close_jpy"], 3))
    aud = _on_times(symbol_bars("SHORTFX"), grid[1000:1040], "AUDUSD")
    frames = {
        "EURUSD": eur,
        "USDJPY": jpy,
        "NZDUSD": nzd,
        "GBPUSD": gbp,
        "EURJPY": eurjpy.drop(columns="close_jpy"),
        "AUDUSD": aud,
    }
    return {s: f.reset_index(drop=True) for s, f in frames.items()}


@functools.cache
def currencies() -> dict[str, tuple[str, str]]:
    with open(ROOT / "seeds" / "symbols.csv") as f:
        rows = {r["symbol"]: (r["base_ccy"], r["quote_ccy"]) for r in csv.DictReader(f)}
    return {s: rows[s] for s in universe()}


def _minutes(bars: pd.DataFrame) -> np.ndarray:
    return kernel_inputs(bars)["minute"].astype(np.int64)


def peers_for(symbol: str, slots: list[str], first_minute: int) -> dict[str, list[dict]]:
    """The peers' bars as the models' SQL passes them for an input starting at first_minute."""
    uni, ccy = universe(), currencies()

    def bars_of(other: str) -> dict[str, np.ndarray]:
        frame = uni[other]
        minute = _minutes(frame)
        before = np.flatnonzero(minute < first_minute)
        k = tf_bar_common.PEER_WARMUP_BARS
        start = int(before[-k]) if len(before) >= k else 0
        return {"minute": minute[start:].astype(float), "close": frame["close"].to_numpy()[start:]}

    base, quote = ccy[symbol]
    rules = {
        "base_same": lambda b, q: b == base,
        "base_flip": lambda b, q: q == base,
        "quote_same": lambda b, q: q == quote,
        "quote_flip": lambda b, q: b == quote,
    }
    peers: dict[str, list[dict]] = {}
    for slot in slots:
        if slot.startswith("ref"):
            ref = REFERENCES[int(slot[3:]) - 1]
            peers[slot] = [bars_of(ref)] if ref in uni and ref != symbol else []
        else:
            members = [o for o, (b, q) in sorted(ccy.items()) if o != symbol and rules[slot](b, q)]
            peers[slot] = [bars_of(o) for o in members]
    return peers


def _slots(model: str) -> list[str]:
    return CORRELATION_SLOTS if model == "correlation" else EC_SLOTS


def full(model: str, symbol: str, **params: object) -> pd.DataFrame:
    bars = universe()[symbol]
    peers = peers_for(symbol, _slots(model), int(_minutes(bars)[0]))
    return harness.full(model, bars, peers=peers, **params)


def incremental(
    model: str, symbol: str, cut: int, read_from: int, whole: pd.DataFrame, **params: object
) -> pd.DataFrame:
    """The rows from bar `cut` on, the kernel reading the bars from `read_from` on."""
    bars = universe()[symbol]
    peers = peers_for(symbol, _slots(model), int(_minutes(bars)[read_from]))
    return harness.incremental(model, bars, cut, cut - read_from, whole, peers=peers, **params)


def ec_read_from(symbol: str, cut: int, window: int) -> int:
    """error_correction's SQL warm-up: from the earliest over j of the window-th newest minute
    before the first written bar at which both the symbol and R_j have a bar (the symbol's
    first bar when there are fewer)."""
    uni = universe()
    minute = _minutes(uni[symbol])
    if cut == 0:
        return 0
    firsts = []
    for ref in REFERENCES[:2]:
        if ref not in uni or ref == symbol:
            continue
        common = np.intersect1d(minute[:cut], _minutes(uni[ref]))
        if len(common) < window:
            return 0
        firsts.append(int(np.searchsorted(minute, common[-window])))
    return min(firsts) if firsts else cut


def assert_identical(got: pd.DataFrame, want: pd.DataFrame) -> None:
    """Same keys, same NULLs, bit-identical values."""
    assert list(got.columns) == list(want.columns)
    assert got[["symbol", "ts"]].equals(want[["symbol", "ts"]])
    a = got.drop(columns=["symbol", "ts"]).to_numpy(float)
    b = want.drop(columns=["symbol", "ts"]).to_numpy(float)
    same = (a == b) | (np.isnan(a) & np.isnan(b))
    if not same.all():
        row, col = np.argwhere(~same)[0]
        name = got.columns[2 + col]
        raise AssertionError(
            f"{(~same).sum()} values differ, first {name} at {got['ts'].iloc[row]}: "
            f"{a[row, col]!r} vs {b[row, col]!r}"
        )


def _cuts(symbol: str, warmup: int) -> list[int]:
    """1, 2, after gaps, inside the flat stretch (bar_datasets: n//3 .. n//3+119 of EURUSD),
    right after the warm-up, the middle, the last two bars."""
    bars = universe()[symbol]
    n = len(bars)
    gaps = np.flatnonzero(bars["ts"].diff().dt.total_seconds().to_numpy() > 300)
    cuts = {1, 2, n // 2, n - 2, n - 1, warmup, warmup + 1, 1066 + 50, 1066 + 119}
    if gaps.size:
        cuts |= {int(gaps[0]), int(gaps[-1]), int(gaps[0]) + warmup}
    return sorted(c for c in cuts if 0 < c < n)


# --- columns, YAML, warm-up ---------------------------------------------------------------------


@pytest.mark.parametrize(("model", "minimum"), [("correlation", 90), ("error_correction", 24)])
def test_columns_match_the_yaml(model: str, minimum: int) -> None:
    text = (ROOT / "models" / "bar_k14" / f"{model}.yml").read_text()
    names = re.findall(r"^      - name: (\w+)$", text, flags=re.M)
    assert names[:2] == ["symbol", "ts"]
    assert names[2:] == tf_bar_cross.MODELS[model] == tf_bars.columns(model)
    features = [c for c in names[2:] if not c.startswith("state_")]
    assert len(features) >= minimum
    assert tf_bar_cross.WARMUP_BARS == WARMUP
    spec = yaml.safe_load(text)["models"][0]
    assert spec["config"]["meta"]["family"] == model
    for column in spec["columns"][2:]:
        meta = column["config"]["meta"]
        assert column["description"] and column["data_type"], column["name"]
        assert meta["unit"] and meta["window"] and meta["source"], column["name"]
        assert (meta["unit"] == "state") == column["name"].startswith("state_")


def test_column_set_never_depends_on_the_loaded_symbols() -> None:
    bars = universe()["EURUSD"]
    alone = harness.full("correlation", bars, peers={s: [] for s in CORRELATION_SLOTS})
    assert list(alone.columns) == list(full("correlation", "EURUSD").columns)
    features = alone.drop(columns=["symbol", "ts", tf_bar_cross.STATE_INDEX])
    cross = [c for c in features if "_ref" in c or "_base_" in c or "_quote_" in c]
    counts = [c for c in cross if "_count_" in c]
    assert features[[c for c in cross if c not in counts]].isna().all().all()
    assert (features[counts] == 0).all().all()
    assert features["corr_bqx15_bqx60_w240"].notna().any()
    ec = harness.full("error_correction", bars, peers={"ref1": [], "ref2": []})
    assert ec.drop(columns=["symbol", "ts"]).isna().all().all()


# --- correlation --------------------------------------------------------------------------------


@pytest.mark.parametrize("symbol", ["EURUSD", "USDJPY", "NZDUSD", "GBPUSD", "EURJPY", "AUDUSD"])
def test_correlation_full_build_equals_oracle(symbol: str) -> None:
    got = full("correlation", symbol).drop(columns=[tf_bar_cross.STATE_INDEX])
    want = oracle.correlation(universe(), symbol, currencies(), REFERENCES)
    harness.assert_matches(got, want)


def test_correlation_oracle_covers_every_column() -> None:
    """EURJPY has a reference, a base and a quote group: every column has values there."""
    want = oracle.correlation(universe(), "EURJPY", currencies(), REFERENCES)
    values = want.drop(columns=["symbol", "ts"]).notna().sum()
    assert (values > 0).all(), list(values[values == 0].index)


@pytest.mark.parametrize("symbol", ["EURUSD", "USDJPY", "EURJPY", "NZDUSD"])
def test_correlation_incremental_equals_full_exactly(symbol: str) -> None:
    whole = full("correlation", symbol)
    warmup = tf_bar_cross.WARMUP_BARS["correlation"]
    for cut in _cuts(symbol, warmup):
        got = incremental("correlation", symbol, cut, max(0, cut - warmup), whole)
        assert_identical(got, whole.iloc[cut:].reset_index(drop=True))


def test_correlation_needs_its_whole_warmup() -> None:
    """One bar less than WARMUP_BARS (the input not starting at the symbol's first bar) is
    refused rather than giving NULLs where the full build has values."""
    whole = full("correlation", "EURJPY")
    warmup = tf_bar_cross.WARMUP_BARS["correlation"]
    cut = 2000
    with pytest.raises(InputError, match=f"needs {warmup} warm-up bars, got {warmup - 1}"):
        incremental("correlation", "EURJPY", cut, cut - warmup + 1, whole)


def test_correlation_append_never_changes_the_past() -> None:
    whole = full("correlation", "EURJPY")
    bars = universe()["EURJPY"]
    peers = peers_for("EURJPY", CORRELATION_SLOTS, int(_minutes(bars)[0]))
    for cut in (40, 1200, 2500):
        prefix = harness.full("correlation", bars.iloc[:cut].reset_index(drop=True), peers=peers)
        assert_identical(prefix, whole.iloc[:cut].reset_index(drop=True))


def test_correlation_flat_windows_are_null() -> None:
    """EURUSD is flat (O = H = L = C) on bars 1066..1185: returns and BQX are exactly 0 there,
    so every window inside it is 0/0, NULL (T15), not float residue."""
    got = full("correlation", "EURUSD")
    inside = got.iloc[1066 + 119]
    for name in ("corr_bqx15_bqx30_w60", "corr_ret_bqx15_w60", "corr_ret_ref2_w60"):
        assert np.isnan(inside[name]), name
    assert inside["corr_ret_quote_count_w60"] == 0
    before = got.iloc[1060]
    assert np.isfinite(before["corr_bqx15_bqx30_w60"])


def test_correlation_sign_adjusts_flipped_peers() -> None:
    """A peer whose close is 1/C has returns -r: as base_flip it counts +1 in the base group,
    as base_same -1 (the correlations are exactly +-1 up to rounding)."""
    bars = universe()["EURUSD"]
    inverse = {"minute": _minutes(bars).astype(float), "close": 1.0 / bars["close"].to_numpy()}
    empty = {s: [] for s in CORRELATION_SLOTS}
    flipped = harness.full("correlation", bars, peers={**empty, "base_flip": [inverse]})
    same = harness.full("correlation", bars, peers={**empty, "base_same": [inverse]})
    rows = flipped["corr_ret_base_mean_w60"].notna()
    assert rows.sum() > 1000
    np.testing.assert_allclose(flipped.loc[rows, "corr_ret_base_mean_w60"], 1.0, atol=1e-12)
    np.testing.assert_allclose(same.loc[rows, "corr_ret_base_mean_w60"], -1.0, atol=1e-12)
    assert (flipped.loc[rows, "corr_ret_base_count_w60"] == 1).all()


def test_correlation_memory_turns_change_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    """The running sums go in turns to bound memory; smaller turns (split runs) give the same
    bits."""
    whole = full("correlation", "EURJPY")
    monkeypatch.setattr(tf_bar_cross, "MAX_SUM_VALUES", 3 * 2 * 1440 * 3)
    assert_identical(full("correlation", "EURJPY"), whole)


# --- error_correction ---------------------------------------------------------------------------


def _ec_oracle(symbol: str, window: int) -> pd.DataFrame:
    return oracle.error_correction(universe(), symbol, REFERENCES, refit_window=window)


def assert_ec_matches(got: pd.DataFrame, want: pd.DataFrame) -> None:
    """statsmodels' statistics at 1e-8 and what comes from its eigenvector at 1e-6, relative
    (test_johansen.py's tolerances); the ECT judged against its window's std_s, the z-score
    against 1 (a difference of terms near 0, T17)."""
    for j in (1, 2):
        stats = ["symbol", "ts", *(f"ec_ref{j}_{m}" for m in EC_STATISTICS)]
        derived = ["symbol", "ts", *(f"ec_ref{j}_{m}" for m in EC_FROM_EVEC)]
        problems = mismatches(got[stats], want[stats], rel=JOHANSEN_TOLERANCE)
        scales = want[["symbol", "ts"]].assign(
            **{f"ec_ref{j}_ect": want[f"ec_ref{j}_ect_std"], f"ec_ref{j}_ect_z": 1.0}
        )
        problems += mismatches(got[derived], want[derived], rel=EVEC_TOLERANCE, term_scales=scales)
        assert not problems, "\n".join(problems)


@pytest.mark.parametrize("symbol", ["EURUSD", "USDJPY", "NZDUSD", "GBPUSD", "EURJPY", "AUDUSD"])
def test_error_correction_equals_statsmodels_many_refits(symbol: str) -> None:
    got = full("error_correction", symbol, refit_window=240)
    assert_ec_matches(got, _ec_oracle(symbol, 240))


@pytest.mark.parametrize("symbol", ["GBPUSD", "USDJPY"])
def test_error_correction_equals_statsmodels_day_window(symbol: str) -> None:
    got = full("error_correction", symbol)
    want = _ec_oracle(symbol, 1440)
    assert want["ec_ref1_ect_z"].notna().sum() > 500
    assert_ec_matches(got, want)


def test_error_correction_sees_cointegration_and_its_absence() -> None:
    """GBPUSD = 1.17 EURUSD + AR(1) noise: rank >= 1 at most refits against EURUSD (R1), a
    hedge ratio near 1 (ln GBPUSD moves 1:1 with ln EURUSD); GBPUSD is R2 itself, so NULL;
    USDJPY against EURUSD (independent walks): mostly rank 0."""
    gbp = full("error_correction", "GBPUSD", refit_window=240)
    assert (gbp["ec_ref1_rank"].dropna() >= 1).mean() > 0.7
    assert abs(gbp["ec_ref1_hedge_ratio"].median() - 1.0) < 0.05
    assert gbp.filter(like="ec_ref2_").isna().all().all()
    jpy = full("error_correction", "USDJPY", refit_window=240)
    assert (jpy["ec_ref1_rank"].dropna() == 0).mean() > 0.7


@pytest.mark.parametrize("window", [240, 1440])
@pytest.mark.parametrize("symbol", ["EURUSD", "USDJPY", "GBPUSD", "EURJPY"])
def test_error_correction_incremental_equals_full_exactly(symbol: str, window: int) -> None:
    whole = full("error_correction", symbol, refit_window=window)
    minute = _minutes(universe()[symbol])
    refits = np.flatnonzero(minute % 60 == 59)
    cuts = set(_cuts(symbol, window))
    cuts |= {int(r) for r in refits[3::9]}  # at a refit bar
    cuts |= {int(r) + 1 for r in refits[4::9]}  # just after one
    cuts |= {int(r) - 1 for r in refits[5::9]}  # just before one
    wider = 0
    for cut in sorted(c for c in cuts if 0 < c < len(minute)):
        read_from = ec_read_from(symbol, cut, window)
        wider = max(wider, cut - read_from)
        got = incremental("error_correction", symbol, cut, read_from, whole, refit_window=window)
        assert_identical(got, whole.iloc[cut:].reset_index(drop=True))
    if symbol != "GBPUSD":  # its only reference, EURUSD, has a bar at each of its minutes
        # some window needed more than `window` of the symbol's own bars (R_j lacks minutes)
        assert wider > window


def test_error_correction_batches_change_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    """The windows go to Johansen in stacks to bound memory; other stack sizes give the same
    bits."""
    whole = full("error_correction", "EURJPY", refit_window=240)
    monkeypatch.setattr(tf_bar_cross, "MAX_PANEL_VALUES", 240 * 7)
    assert_identical(full("error_correction", "EURJPY", refit_window=240), whole)


def test_error_correction_needs_the_common_window() -> None:
    """Reading from two bars after the SQL's warm-up at a refit bar leaves that refit's window
    short: it differs from the full build (the test can fail)."""
    symbol, window = "EURJPY", 240
    whole = full("error_correction", symbol, refit_window=window)
    refit = int(np.flatnonzero(_minutes(universe()[symbol]) % 60 == 59)[30])
    read_from = ec_read_from(symbol, refit, window) + 2
    got = incremental("error_correction", symbol, refit, read_from, whole, refit_window=window)
    with pytest.raises(AssertionError):
        assert_identical(got, whole.iloc[refit:].reset_index(drop=True))


def test_error_correction_carries_from_prev() -> None:
    """Rows before the first refit after `start` carry prev's values: a prev with another
    hedge ratio and mean changes their ECT accordingly."""
    symbol, window = "GBPUSD", 240
    whole = full("error_correction", symbol, refit_window=window)
    minute = _minutes(universe()[symbol])
    cut = int(np.flatnonzero(minute % 60 == 59)[20]) + 1
    before = whole.copy()
    before.loc[cut - 1, "ec_ref1_hedge_ratio"] = 1.0
    before.loc[cut - 1, "ec_ref1_ect_mean"] = 0.5
    read_from = ec_read_from(symbol, cut, window)
    got = incremental("error_correction", symbol, cut, read_from, before, refit_window=window)
    bars = universe()[symbol]
    eur = universe()["EURUSD"].set_index("ts")["close"]
    expected = np.log(bars["close"].iloc[cut]) - np.log(eur.get(bars["ts"].iloc[cut])) - 0.5
    assert got["ec_ref1_ect"].iloc[0] == pytest.approx(expected, rel=1e-12)
    assert got["ec_ref1_hedge_ratio"].iloc[0] == 1.0


@pytest.mark.parametrize("model", ["correlation", "error_correction"])
def test_through_the_entry_point(model: str) -> None:
    """tf_bars.rows, as the SQL calls it: the bars packed as float64 rows, then one packed
    array of (minute, close) rows per peer symbol, params.peer_slots and peer_slot_of."""
    symbol = "EURJPY"
    bars = universe()[symbol]
    inputs = kernel_inputs(bars)
    slots = _slots(model)
    peers = peers_for(symbol, slots, int(inputs["minute"][0]))
    packs, slot_of = [], []
    for s, slot in enumerate(slots):
        for p in peers[slot]:
            packs.append(np.column_stack([p["minute"], p["close"]]).tobytes())
            slot_of.append(s)
    packed_bars = np.column_stack([inputs[c] for c in tf_bar_common.INPUTS]).tobytes()
    params = {"peer_slots": slots, "peer_slot_of": slot_of, "refit_window": 240}
    wanted = tf_bars.columns(model)
    raw = tf_bars.rows(model, wanted, [packed_bars, *packs], json.dumps(params))
    got = np.frombuffer(raw).reshape(len(bars), len(wanted) + 1)
    want = full(model, symbol, refit_window=240)
    np.testing.assert_array_equal(got[:, 0], inputs["minute"])
    np.testing.assert_array_equal(got[:, 1:], want[wanted].to_numpy(float))


# --- the batched Johansen -----------------------------------------------------------------------


def test_johansen_batch_equals_johansen_and_statsmodels() -> None:
    rng = np.random.default_rng(3)
    n = 300
    common = np.cumsum(rng.normal(size=(6, n)), axis=1)
    panels = np.stack(
        [np.column_stack([c + rng.normal(size=n), 0.5 * c]) for c in common[:3]]
        + [np.cumsum(rng.normal(size=(n, 2)), axis=0) for _ in range(3)]
        + [np.column_stack([np.ones(n), np.cumsum(rng.normal(size=n))])]  # singular
    )
    for det_order in (-1, 0, 1):
        for k in (0, 1, 2):
            got = tf_johansen.johansen_batch(panels, det_order, k)
            assert got["ok"][:6].all()
            if det_order < 1:
                # johansen() refuses it (a singular moment matrix); with a linear trend
                # removed the constant leaves rounding noise that both invert
                with pytest.raises(InputError, match="singular moment matrix"):
                    tf_johansen.johansen(panels[6].tolist(), det_order, k)
                assert not got["ok"][6] and np.isnan(got["eig"][6]).all()
            for i in range(6):
                ref = coint_johansen(panels[i], det_order, k)
                one = tf_johansen.johansen(panels[i].tolist(), det_order, k)
                for key in ("eig", "lr1", "lr2"):
                    assert_close(got[key][i], getattr(ref, key), JOHANSEN_TOLERANCE)
                    assert_close(got[key][i], one[key], JOHANSEN_TOLERANCE)
                assert_close(got["evec"][i], ref.evec, EVEC_TOLERANCE)


def test_trace_critical_values_are_statsmodels() -> None:
    ref = coint_johansen(np.cumsum(np.random.default_rng(1).normal(size=(100, 2)), axis=0), 0, 1)
    assert tuple(ref.cvt[:, 1]) == tf_bar_cross.TRACE_CV95


# --- bad input ----------------------------------------------------------------------------------


def test_bad_input_is_one_clear_error() -> None:
    bars = universe()["EURUSD"].iloc[:300].reset_index(drop=True)
    inputs = kernel_inputs(bars)
    peer = {"minute": inputs["minute"][::-1].copy(), "close": inputs["close"]}
    with pytest.raises(InputError, match=r"peers.ref1\[1\]: minutes are not strictly"):
        tf_bars.compute("correlation", inputs, {"peers": {"ref1": [peer]}})
    with pytest.raises(InputError, match="refit_window must be at least 10"):
        tf_bars.compute("error_correction", inputs, {"refit_window": 5})
    with pytest.raises(InputError, match="needs the stored row before start"):
        tf_bars.compute("correlation", inputs, {"start": 10})
    with pytest.raises(InputError, match="has no state_corr_bar_index"):
        tf_bars.compute("correlation", inputs, {"start": 10, "prev": {}})
