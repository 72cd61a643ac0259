"""What tests/integration/test_bar_k14.py compares the K14 tables of a database with:

- `full_build`: each model's kernel (python_udfs/) run here, in Python, on the staged bars read
  back from the same database, with what a full build means: every bar of the symbol, every
  bar of each peer (the reference symbols of the default `reference_symbols` and the currency
  groups of seeds/symbols.csv), the default refit window and stride; the panel model over every
  symbol at once. The database must hold exactly these values: the SQL's packing, peers,
  warm-up and parameters are what this checks (the kernels' own correctness is the oracles').
- `oracle_problems`: the independent oracles (tests/oracle/bar_cross.py, bar_panel.py,
  bar_heavy.py, bar_spectral.py) on the same bars, at the tolerances of the kernel tests.
"""

from __future__ import annotations

import sys

import numpy as np
import pandas as pd

from tests.conftest import ROOT

sys.path.insert(0, str(ROOT / "python_udfs"))

import tf_bar_panel
import tf_bars

from tests.oracle.bar_datasets import kernel_inputs

REFERENCES = ("EURUSD", "GBPUSD", "USDJPY")  # dbt_project.yml's reference_symbols
REFIT = {"refit_window": 1440, "refit_stride": 60}  # bar_heavy_window, bar_heavy_stride
SLOTS = {
    "correlation": ["ref1", "ref2", "ref3", "base_same", "base_flip", "quote_same", "quote_flip"],
    "error_correction": ["ref1", "ref2"],
}
REFIT_MODELS = ("error_correction", "hmm_regime_bars", "spectral_bars", "volatility_surface")

Currencies = dict[str, tuple[str | None, str | None]]


def _by_symbol(bars: pd.DataFrame) -> dict[str, pd.DataFrame]:
    return {
        s: g.sort_values("ts").reset_index(drop=True) for s, g in bars.groupby("symbol", sort=True)
    }


def _peers(
    symbol: str, slots: list[str], universe: dict[str, pd.DataFrame], currencies: Currencies
) -> dict[str, list[dict[str, np.ndarray]]]:
    """bar_peer_map's slots, each peer with all its bars (a full build), peers by name."""
    base, quote = currencies.get(symbol, (None, None))
    peers: dict[str, list[dict[str, np.ndarray]]] = {}
    for slot in slots:
        members = []
        for other in sorted(universe):
            if other == symbol:
                continue
            b, q = currencies.get(other, (None, None))
            if slot.startswith("ref"):
                keep = other == REFERENCES[int(slot[3:]) - 1]
            else:
                keep = {
                    "base_same": base is not None and b == base,
                    "base_flip": base is not None and q == base,
                    "quote_same": quote is not None and q == quote,
                    "quote_flip": quote is not None and b == quote,
                }[slot]
            if keep:
                inputs = kernel_inputs(universe[other])
                members.append({"minute": inputs["minute"], "close": inputs["close"]})
        peers[slot] = members
    return peers


def _frame(model: str, symbol: str, minutes: np.ndarray, result: dict, tz: object) -> pd.DataFrame:
    columns = tf_bars.columns(model)
    frame = pd.DataFrame({c: np.asarray(result[c], dtype=float) for c in columns})
    frame[~np.isfinite(frame.to_numpy())] = np.nan
    ts = pd.to_datetime(np.round(minutes).astype(np.int64) * 60, unit="s", utc=True)
    ts = ts.tz_convert(tz).as_unit("us")
    frame.insert(0, "ts", ts)
    frame.insert(0, "symbol", symbol)
    return frame


def full_build(bars: pd.DataFrame, currencies: Currencies) -> dict[str, pd.DataFrame]:
    """model -> its full build by its kernel, keyed (symbol, ts), NaN = NULL."""
    universe = _by_symbol(bars)
    tz = bars["ts"].dt.tz
    out: dict[str, pd.DataFrame] = {}
    for model in ("correlation", "error_correction", *REFIT_MODELS[1:]):
        frames = []
        for symbol, symbol_bars in universe.items():
            params: dict = {"first_close": float(symbol_bars["close"].iloc[0])}
            if model in REFIT_MODELS:
                params.update(REFIT)
            if model in SLOTS:
                params["peers"] = _peers(symbol, SLOTS[model], universe, currencies)
            inputs = kernel_inputs(symbol_bars)
            result = tf_bars.compute(model, inputs, params)
            frames.append(_frame(model, symbol, inputs["minute"], result, tz))
        out[model] = pd.concat(frames, ignore_index=True)
    symbols = sorted(universe)
    panel_bars = []
    for symbol in symbols:
        inputs = kernel_inputs(universe[symbol])
        panel_bars.append({k: inputs[k] for k in ("minute", "close", "volume")})
    first = min(float(b["minute"][0]) for b in panel_bars)
    result = tf_bar_panel.compute_panel(
        "cross_sectional",
        panel_bars,
        {
            "base": [currencies.get(s, (None, None))[0] for s in symbols],
            "quote": [currencies.get(s, (None, None))[1] for s in symbols],
            "from_minute": first,
        },
    )
    frame = _frame("cross_sectional", "", result["_minute"], result, tz)
    frame["symbol"] = np.asarray(symbols, dtype=object)[np.asarray(result["_symbol"], dtype=int)]
    out["cross_sectional"] = frame.sort_values(["symbol", "ts"]).reset_index(drop=True)
    return out


# --- the independent oracles -----------------------------------------------------------------

STRICT = {"rel": 1e-9, "abs_": 1e-12}  # tests.oracle.compare's defaults
JOHANSEN = 1e-8  # test_johansen: statistics and eigenvalues
EVEC = 1e-6  # test_johansen: what comes from the eigenvector
HMM_FIT = 1e-6  # test_hmm: a whole fit
HMM_LOGLIK = 1e-8  # test_hmm: log-likelihoods
EC_STATISTICS = ("rank", "trace_r0", "maxeig_r0", "trace_r1", "eig1", "eig2")
EC_FROM_EVEC = ("hedge_ratio", "ect_mean", "ect_std", "half_life", "ect", "ect_z")


def _keyed(frame: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    return frame[["symbol", "ts", *columns]].reset_index(drop=True)


def _like(want: pd.DataFrame, got: pd.DataFrame) -> pd.DataFrame:
    """The oracle's rows with the database's ts dtype (the key compares exactly)."""
    want = want.copy()
    want["ts"] = (
        pd.to_datetime(want["ts"], utc=True).dt.tz_convert(got["ts"].dt.tz).dt.as_unit("us")
    )
    return want.sort_values(["symbol", "ts"]).reset_index(drop=True)


def oracle_problems(
    model: str, bars: pd.DataFrame, got: pd.DataFrame, currencies: Currencies
) -> list[str]:
    """How the database's table of `model` differs from its independent oracle on the staged
    bars `bars` of the same database, at the kernel tests' tolerances."""
    from tests.oracle import bar_cross, bar_heavy, bar_panel, bar_spectral
    from tests.oracle.compare import mismatches

    universe = _by_symbol(bars)
    got = got.sort_values(["symbol", "ts"]).reset_index(drop=True)
    if model == "cross_sectional":
        want = _like(bar_panel.cross_sectional(bars, currencies), got)
        return mismatches(got[list(want.columns)], want, **STRICT)
    if model in ("correlation", "error_correction"):
        ccy = {s: (b or "", q or "") for s, (b, q) in currencies.items() if s in universe}
        frames = [
            bar_cross.correlation(universe, s, ccy, REFERENCES)
            if model == "correlation"
            else bar_cross.error_correction(universe, s, REFERENCES, **REFIT)
            for s in universe
        ]
        want = _like(pd.concat(frames, ignore_index=True), got)
        if model == "correlation":
            return mismatches(got[list(want.columns)], want, **STRICT)
        problems = []
        for j in (1, 2):
            stats = [f"ec_ref{j}_{m}" for m in EC_STATISTICS]
            derived = [f"ec_ref{j}_{m}" for m in EC_FROM_EVEC]
            problems += mismatches(_keyed(got, stats), _keyed(want, stats), rel=JOHANSEN)
            # the ECT judged against its window's std_s, the z-score against 1 (T17)
            scales = want[["symbol", "ts"]].assign(
                **{f"ec_ref{j}_ect": want[f"ec_ref{j}_ect_std"], f"ec_ref{j}_ect_z": 1.0}
            )
            problems += mismatches(
                _keyed(got, derived), _keyed(want, derived), rel=EVEC, term_scales=scales
            )
        return problems
    if model == "spectral_bars":
        frames = [
            bar_spectral.spectral_bars(b, float(b["close"].iloc[0]), REFIT["refit_stride"])
            for b in universe.values()
        ]
        want = _like(pd.concat(frames, ignore_index=True), got)
        return mismatches(got[list(want.columns)], want, **STRICT)
    if model == "hmm_regime_bars":
        import tf_bar_heavy

        problems = []
        for symbol, symbol_bars in universe.items():
            want, margins, _fits = bar_heavy.hmm_regime_bars(symbol_bars, **_window_stride())
            want = _like(want, got)
            mine = got[got["symbol"] == symbol].reset_index(drop=True)
            exact = ["hmm1m_n_iter", "hmm1m_converged", "hmm1m_bars_since_refit"]
            loglik = ["hmm1m_loglik_per_obs"]
            decided = ["hmm1m_state", "hmm1m_duration"]
            fitted = [
                c
                for c in tf_bar_heavy.MODELS["hmm_regime_bars"]
                if c not in exact + loglik + decided
            ]
            problems += mismatches(_keyed(mine, exact), _keyed(want, exact), rel=0, abs_=0)
            problems += mismatches(
                _keyed(mine, loglik), _keyed(want, loglik), rel=HMM_LOGLIK, abs_=HMM_LOGLIK
            )
            problems += mismatches(
                _keyed(mine, fitted), _keyed(want, fitted), rel=HMM_FIT, abs_=HMM_FIT
            )
            # the state and its duration where the filtered probabilities decide them clearly
            for column, margin in (("hmm1m_state", "margin"), ("hmm1m_duration", "decided")):
                clear = (margins[margin] > HMM_FIT).to_numpy()
                if not np.array_equal(mine[column].isna(), want[column].isna()):
                    problems.append(f"{symbol} {column}: NULL pattern differs")
                elif not np.array_equal(mine[column][clear], want[column][clear]):
                    problems.append(f"{symbol} {column}: values differ where decided")
        return problems
    if model == "volatility_surface":
        return _volatility_surface_problems(universe, got)
    raise ValueError(f"no oracle for {model}")


def _window_stride() -> dict[str, int]:
    return {"window": REFIT["refit_window"], "stride": REFIT["refit_stride"]}


def _volatility_surface_problems(universe: dict[str, pd.DataFrame], got: pd.DataFrame) -> list[str]:
    """Every column at 1e-9, GARCH's fits included: the server's Python runs arch's numpy and
    scipy (scripts/install-server-python.sh), so SLSQP takes arch's path (test_bar_heavy's
    tolerance)."""
    from tests.oracle import bar_heavy
    from tests.oracle.compare import mismatches

    frames = [bar_heavy.volatility_surface(b, **_window_stride())[0] for b in universe.values()]
    want = _like(pd.concat(frames, ignore_index=True), got)
    return mismatches(got[list(want.columns)], want, **STRICT)
