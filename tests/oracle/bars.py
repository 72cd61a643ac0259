"""The K-bars relations (FEATURE_DEFINITIONS section K-bars) in pandas, written from the text,
not from the SQL: bars_1m_l2 from snapshots, stg_bars_1m (the final one-minute bars: loaded,
else derived and final) and the coarser bars_30m / bars_60m."""

from __future__ import annotations

import numpy as np
import pandas as pd

BAR_VALUES = ["open", "high", "low", "close", "volume", "spread", "ticks"]
MINUTE = pd.Timedelta(minutes=1)


def bars_1m_l2(snapshots: pd.DataFrame) -> pd.DataFrame:
    """Per symbol and minute with a snapshot: OHLC of the mid (A1: (b_1 + a_1)/2; snapshots
    whose mid is NULL skipped), spread = mean a_1 - b_1 over the snapshots with both quotes,
    ticks = the number of snapshots, volume NULL."""
    s = snapshots.sort_values(["symbol", "ts"])
    frame = pd.DataFrame(
        {
            "symbol": s["symbol"].to_numpy(),
            "ts": s["ts"].dt.floor("min").to_numpy(),
            "mid": ((s["bid_price_1"] + s["ask_price_1"]) / 2).to_numpy(),
            "spread": (s["ask_price_1"] - s["bid_price_1"]).to_numpy(),
        }
    )
    g = frame.groupby(["symbol", "ts"], sort=True)
    out = pd.DataFrame(
        {
            # first / last skip NaN: the first and last snapshot with a mid
            "open": g["mid"].first(),
            "high": g["mid"].max(),
            "low": g["mid"].min(),
            "close": g["mid"].last(),
            "volume": np.nan,
            "spread": g["spread"].mean(),
            "ticks": g.size().astype("float64"),
        }
    ).reset_index()
    return out[["symbol", "ts", *BAR_VALUES]]


def stg_bars_1m(loaded: pd.DataFrame, snapshots: pd.DataFrame) -> pd.DataFrame:
    """Loaded bars, and the derived bars of minutes without a loaded bar whose end is at or
    before the symbol's newest snapshot."""
    derived = bars_1m_l2(snapshots)
    newest = snapshots.groupby("symbol")["ts"].max()
    final = derived["ts"] + MINUTE <= derived["symbol"].map(newest)
    keys = pd.MultiIndex.from_frame(loaded[["symbol", "ts"]])
    fresh = ~pd.MultiIndex.from_frame(derived[["symbol", "ts"]]).isin(keys)
    out = pd.concat(
        [
            loaded[["symbol", "ts", *BAR_VALUES]].assign(origin="loaded"),
            derived[final & fresh].assign(origin="l2"),
        ],
        ignore_index=True,
    )
    return out.sort_values(["symbol", "ts"]).reset_index(drop=True)


def coarser_bars(minute_bars: pd.DataFrame, minutes: int) -> pd.DataFrame:
    """time_bucket of `minutes` aligned to UTC midnight: first open, max high, min low, last
    close (the first and last bar's, NULL or not), summed volume and ticks and mean spread
    (NULLs skipped, NULL when all are), and the number of bars."""
    b = minute_bars.sort_values(["symbol", "ts"]).copy()
    b["bucket"] = b["ts"].dt.floor(f"{minutes}min")
    g = b.groupby(["symbol", "bucket"], sort=True)
    out = pd.DataFrame(
        {
            "open": g["open"].nth(0).to_numpy(),
            "high": g["high"].max().to_numpy(),
            "low": g["low"].min().to_numpy(),
            "close": g["close"].nth(-1).to_numpy(),
            "volume": g["volume"].sum(min_count=1).to_numpy(),
            "spread": g["spread"].mean().to_numpy(),
            "ticks": g["ticks"].sum(min_count=1).to_numpy(),
            "bars": g.size().astype("float64").to_numpy(),
        },
        index=g.size().index,
    ).reset_index()
    return out.rename(columns={"bucket": "ts"})
