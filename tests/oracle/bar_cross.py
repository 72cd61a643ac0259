"""Reference implementation ("oracle") of the bar families across symbols, `correlation` and
`error_correction` (FEATURE_DEFINITIONS K0, K14 with H2-H3), written from that text and the
column descriptions of models/bar/<model>.yml, not from the kernel.

It reads the whole universe (every symbol's bars, full history) and decides itself which
symbols are a symbol's references and currency peers (from a {symbol: (base, quote)} map).
Correlations are pandas' x.rolling(N).corr(y) with the peer's series reindexed onto the
symbol's bar times, a flat window (rolling max = min of either series) set to NULL; the
Johansen tests are statsmodels' coint_johansen on each refit's window, one call per window.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from statsmodels.tsa.vector_ar.vecm import coint_johansen

BQX = (15, 30, 45, 60, 75)
OWN_WINDOWS = (60, 240, 1440)
BQX_PAIRS = ((15, 30), (15, 60), (15, 75), (30, 60), (30, 75), (60, 75))
REF_RET_WINDOWS = (15, 30, 60, 240, 1440)
REF_BQX15_WINDOWS = (60, 240, 1440)
REF_BQX60_WINDOWS = (240, 1440)
GROUP_WINDOWS = (60, 240, 1440)
EC_METRICS = (
    "rank",
    "trace_r0",
    "maxeig_r0",
    "trace_r1",
    "eig1",
    "eig2",
    "hedge_ratio",
    "ect_mean",
    "ect_std",
    "half_life",
    "ect",
    "ect_z",
)


def _series(bars: pd.DataFrame) -> pd.DataFrame:
    """Per bar of one symbol: the log return over its previous bar and BQX_N over its own
    bars (K0), indexed by ts."""
    close = bars["close"].to_numpy(float)
    out = pd.DataFrame(index=pd.DatetimeIndex(bars["ts"]))
    ret = np.full(len(close), np.nan)
    ret[1:] = np.log(close[1:] / close[:-1])
    out["ret"] = ret
    for n in BQX:
        b = np.full(len(close), np.nan)
        b[n:] = 100.0 * (close[n:] - close[:-n]) / close[:-n]
        out[f"bqx{n}"] = b
    return out


def _corr(x: pd.Series, y: pd.Series, n: int) -> np.ndarray:
    """pandas rolling Pearson correlation over n rows, NULL when either series is flat in the
    window (its n values all equal: 0/0) or a value is missing."""
    got = x.rolling(n).corr(y).to_numpy(float, copy=True)
    flat = (x.rolling(n).max() == x.rolling(n).min()) | (y.rolling(n).max() == y.rolling(n).min())
    got[flat.to_numpy()] = np.nan
    got[~np.isfinite(got)] = np.nan
    return got


def _frame(bars: pd.DataFrame, columns: dict[str, np.ndarray]) -> pd.DataFrame:
    frame = pd.DataFrame({"symbol": bars["symbol"].to_numpy(), "ts": bars["ts"].to_numpy()})
    values = pd.DataFrame({k: np.asarray(v, dtype=float) for k, v in columns.items()})
    return pd.concat([frame, values], axis=1)


def references(symbol: str, loaded: Sequence[str], reference_symbols: Sequence[str]) -> list:
    """The reference slots: each reference symbol, None when not loaded or the symbol itself."""
    return [r if r in loaded and r != symbol else None for r in reference_symbols]


def groups(
    symbol: str, currencies: dict[str, tuple[str, str]]
) -> dict[str, list[tuple[str, float]]]:
    """K14 currency groups: for the symbol's base currency, the other symbols holding it as
    base (+1) or as quote (-1); for its quote currency, the others holding it as quote (+1)
    or as base (-1)."""
    base, quote = currencies[symbol]
    out: dict[str, list[tuple[str, float]]] = {"base": [], "quote": []}
    for other, (b, q) in sorted(currencies.items()):
        if other == symbol:
            continue
        if b == base:
            out["base"].append((other, 1.0))
        if q == base:
            out["base"].append((other, -1.0))
        if q == quote:
            out["quote"].append((other, 1.0))
        if b == quote:
            out["quote"].append((other, -1.0))
    return out


def correlation(
    universe: dict[str, pd.DataFrame],
    symbol: str,
    currencies: dict[str, tuple[str, str]],
    reference_symbols: Sequence[str] = ("EURUSD", "GBPUSD", "USDJPY"),
) -> pd.DataFrame:
    """The correlation model's feature columns for one symbol (universe: every loaded symbol's
    bars sorted by ts)."""
    bars = universe[symbol]
    own = _series(bars)
    ts = own.index
    cols: dict[str, np.ndarray] = {}
    for a, b in BQX_PAIRS:
        for n in OWN_WINDOWS:
            cols[f"corr_bqx{a}_bqx{b}_w{n}"] = _corr(own[f"bqx{a}"], own[f"bqx{b}"], n)
    for q in BQX:
        for n in OWN_WINDOWS:
            cols[f"corr_ret_bqx{q}_w{n}"] = _corr(own["ret"], own[f"bqx{q}"], n)
    nothing = np.full(len(bars), np.nan)
    for j, ref in enumerate(references(symbol, list(universe), reference_symbols[:3]), start=1):
        peer = _series(universe[ref]).reindex(ts) if ref else None
        for n in REF_RET_WINDOWS:
            cols[f"corr_ret_ref{j}_w{n}"] = (
                _corr(own["ret"], peer["ret"], n) if peer is not None else nothing
            )
        for n in REF_BQX15_WINDOWS:
            cols[f"corr_bqx15_ref{j}_w{n}"] = (
                _corr(own["bqx15"], peer["bqx15"], n) if peer is not None else nothing
            )
        for n in REF_BQX60_WINDOWS:
            cols[f"corr_bqx60_ref{j}_w{n}"] = (
                _corr(own["bqx60"], peer["bqx60"], n) if peer is not None else nothing
            )
    loaded = {s: c for s, c in currencies.items() if s in universe}
    for group, members in groups(symbol, loaded).items():
        peers = [(_series(universe[s]).reindex(ts), sign) for s, sign in members]
        for n in GROUP_WINDOWS:
            rets = pd.DataFrame(
                {k: sign * _corr(own["ret"], p["ret"], n) for k, (p, sign) in enumerate(peers)},
                index=range(len(ts)),
            )
            bqxs = pd.DataFrame(
                {k: sign * _corr(own["bqx15"], p["bqx15"], n) for k, (p, sign) in enumerate(peers)},
                index=range(len(ts)),
            )
            cols[f"corr_ret_{group}_mean_w{n}"] = rets.mean(axis=1).to_numpy(float)
            cols[f"corr_ret_{group}_min_w{n}"] = rets.min(axis=1).to_numpy(float)
            cols[f"corr_ret_{group}_max_w{n}"] = rets.max(axis=1).to_numpy(float)
            cols[f"corr_ret_{group}_count_w{n}"] = rets.notna().sum(axis=1).to_numpy(float)
            cols[f"corr_bqx15_{group}_mean_w{n}"] = bqxs.mean(axis=1).to_numpy(float)
    return _frame(bars, cols)


def _refit(window: np.ndarray) -> dict[str, float]:
    """H2 (det_order 0, k_ar_diff 1) on a window of log closes, H3's ECT statistics and the
    AR(1) half-life."""
    res = coint_johansen(window, 0, 1)
    rank = 2
    for r in range(2):
        if res.lr1[r] < res.cvt[r, 1]:
            rank = r
            break
    beta = res.evec[:, 0] / res.evec[0, 0]
    e = window @ beta
    design = np.column_stack([np.ones(len(e) - 1), e[:-1]])
    phi = float(np.linalg.lstsq(design, e[1:], rcond=None)[0][1])
    return {
        "rank": float(rank),
        "trace_r0": float(res.lr1[0]),
        "maxeig_r0": float(res.lr2[0]),
        "trace_r1": float(res.lr1[1]),
        "eig1": float(res.eig[0]),
        "eig2": float(res.eig[1]),
        "hedge_ratio": float(-beta[1]),
        "ect_mean": float(e.mean()),
        "ect_std": float(e.std(ddof=1)),
        "half_life": float(-np.log(2) / np.log(phi)) if 0 < phi < 1 else np.nan,
        "beta2": float(beta[1]),
    }


def error_correction(
    universe: dict[str, pd.DataFrame],
    symbol: str,
    reference_symbols: Sequence[str] = ("EURUSD", "GBPUSD", "USDJPY"),
    refit_window: int = 1440,
    refit_stride: int = 60,
) -> pd.DataFrame:
    """The error_correction model's columns for one symbol: for R1, R2, at each of the
    symbol's bars whose minute % stride = stride - 1, Johansen on the last refit_window
    minutes at which both have a bar (at or before that bar), carried forward; ECT and z at
    every bar."""
    bars = universe[symbol]
    ts = pd.DatetimeIndex(bars["ts"])
    minute = (ts - pd.Timestamp("1970-01-01", tz="UTC")) // pd.Timedelta(minutes=1)
    refit_rows = np.flatnonzero(np.asarray(minute) % refit_stride == refit_stride - 1)
    log_own = pd.Series(np.log(bars["close"].to_numpy(float)), index=ts)
    cols: dict[str, np.ndarray] = {}
    for j, ref in enumerate(references(symbol, list(universe), reference_symbols[:2]), start=1):
        values = {k: np.full(len(bars), np.nan) for k in EC_METRICS}
        if ref is not None:
            other = universe[ref]
            log_ref = pd.Series(np.log(other["close"].to_numpy(float)), index=other["ts"])
            joined = pd.concat([log_own.rename("a"), log_ref.rename("b")], axis=1, join="inner")
            joined = joined.sort_index()
            fits: list[dict[str, float] | None] = []
            for row in refit_rows:
                upto = joined.loc[: ts[row]]
                if len(upto) < refit_window:
                    fits.append(None)
                else:
                    fits.append(_refit(upto.iloc[-refit_window:].to_numpy(float)))
            # which refit each bar carries (the latest at or before it), -1 before the first
            which = np.full(len(bars), -1)
            which[refit_rows] = np.arange(len(refit_rows))
            which = np.maximum.accumulate(which)
            ref_now = log_ref.reindex(ts).to_numpy(float)
            for i in range(len(bars)):
                fit = fits[which[i]] if which[i] >= 0 else None
                if fit is None:
                    continue
                for k in EC_METRICS[:10]:
                    values[k][i] = fit[k]
                ect = log_own.iloc[i] + fit["beta2"] * ref_now[i] - fit["ect_mean"]
                values["ect"][i] = ect
                values["ect_z"][i] = ect / fit["ect_std"] if fit["ect_std"] > 0 else np.nan
        for k in EC_METRICS:
            cols[f"ec_ref{j}_{k}"] = values[k]
    return _frame(bars, cols)
