"""Reference implementation ("oracle") of the bar family `cross_sectional` (FEATURE_DEFINITIONS
K14; python_udfs/tf_bar_panel.py), written from that text and the column descriptions of
models/bar_k14/cross_sectional.yml, not from the kernel.

pandas throughout: each symbol's series with shift() and directly materialised windows, then
the panel at each minute with groupby('ts'): rank(method='min'), count, mean, std (ddof 1),
min and max; the currency strengths as a groupby mean of the sign-adjusted BQX of every pair
holding the currency. Input: a long frame of bars (tests/oracle/bar_datasets.COLUMNS, at least
symbol, ts, close, volume) and each symbol's (base, quote) currencies (None where unknown).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from numpy.lib.stride_tricks import sliding_window_view

MEASURES = ("ret_1", "ret_15", "ret_60", "bqx_15", "bqx_60", "rvol_60", "rvol_240", "volume")
STRENGTH_WINDOWS = (15, 30, 60)


def _columns() -> list[str]:
    return [
        *(f"xs_{s}_{m}" for m in MEASURES for s in ("rank", "pct", "z", "mean", "std")),
        "xs_n_symbols",
        *(
            f"xs_strength_{side}_bqx{n}"
            for n in STRENGTH_WINDOWS
            for side in ("base", "quote", "diff")
        ),
    ]


COLUMNS = _columns()


def _window_sum(x: np.ndarray, n: int) -> np.ndarray:
    """Row t: the sum of x[t-n+1..t] (its own terms); NaN before the window is full or when
    it holds a NaN."""
    out = np.full(len(x), np.nan)
    if len(x) >= n:
        out[n - 1 :] = sliding_window_view(x, n).sum(axis=1)
    return out


def symbol_series(bars: pd.DataFrame) -> pd.DataFrame:
    """The per-symbol measures of one symbol (bars sorted by ts), as the YAML defines them."""
    close = bars["close"].astype(float)
    out = pd.DataFrame({"symbol": bars["symbol"].to_numpy(), "ts": bars["ts"].to_numpy()})
    for k in (1, 15, 60):
        before = close.shift(k)
        out[f"ret_{k}"] = np.log1p((close - before) / before).to_numpy()
    for n in (15, 30, 60):
        before = close.shift(n)
        out[f"bqx_{n}"] = (100.0 * (close - before) / before).to_numpy()
    squares = out["ret_1"].to_numpy() ** 2
    for n in (60, 240):
        out[f"rvol_{n}"] = np.sqrt(_window_sum(squares, n))
    out["volume"] = bars["volume"].astype(float).to_numpy()
    return out


def cross_sectional(
    bars: pd.DataFrame, currencies: dict[str, tuple[str | None, str | None]]
) -> pd.DataFrame:
    """Every column of cross_sectional on every bar of every symbol, keyed (symbol, ts)."""
    panel = pd.concat(
        [symbol_series(g.sort_values("ts")) for _, g in bars.groupby("symbol", sort=True)],
        ignore_index=True,
    )
    by_ts = panel.groupby("ts")
    out = panel[["symbol", "ts"]].copy()
    for m in MEASURES:
        g = by_ts[m]
        n = g.transform("count")
        rank = g.rank(method="min")
        mean = g.transform("mean")
        std = g.transform("std")
        equal = (g.transform("max") == g.transform("min")) & (n > 0)
        mean = mean.where(~equal, g.transform("max"))
        std = std.where(~(equal & (n >= 2)), 0.0)
        pct = ((rank - 1) / (n - 1)).where(n >= 2)
        z = ((panel[m] - mean) / std).where((n >= 2) & ~equal)
        out[f"xs_rank_{m}"] = rank
        out[f"xs_pct_{m}"] = pct
        out[f"xs_z_{m}"] = z
        out[f"xs_mean_{m}"] = mean
        out[f"xs_std_{m}"] = std
    out["xs_n_symbols"] = by_ts["symbol"].transform("size").astype(float)

    base = panel["symbol"].map(lambda s: currencies.get(s, (None, None))[0])
    quote = panel["symbol"].map(lambda s: currencies.get(s, (None, None))[1])
    is_pair = base.notna() & quote.notna()
    for n in STRENGTH_WINDOWS:
        value = panel[f"bqx_{n}"]
        terms = pd.concat(
            [
                pd.DataFrame({"ts": panel["ts"], "ccy": base, "term": value})[is_pair],
                pd.DataFrame({"ts": panel["ts"], "ccy": quote, "term": -value})[is_pair],
            ],
            ignore_index=True,
        ).dropna(subset=["term"])
        strength = terms.groupby(["ts", "ccy"])["term"].mean().rename("s").reset_index()
        keyed = pd.DataFrame({"ts": panel["ts"], "ccy": base})
        b = keyed.merge(strength, on=["ts", "ccy"], how="left")["s"].to_numpy()
        keyed = pd.DataFrame({"ts": panel["ts"], "ccy": quote})
        q = keyed.merge(strength, on=["ts", "ccy"], how="left")["s"].to_numpy()
        out[f"xs_strength_base_bqx{n}"] = b
        out[f"xs_strength_quote_bqx{n}"] = q
        out[f"xs_strength_diff_bqx{n}"] = b - q
    out = out[["symbol", "ts", *COLUMNS]]
    return out.sort_values(["symbol", "ts"], ignore_index=True)
