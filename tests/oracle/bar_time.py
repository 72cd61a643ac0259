"""Oracles of the bar families lagged_features (FEATURE_DEFINITIONS K9) and time_features
(K11), written from section K and models/bar/{lagged_features,time_features}.yml in pandas:
shifts of the close for K9, pandas' datetime accessors (isocalendar, is_month_end, dates) for
K11. One symbol's bars sorted by ts in, one row per bar out, NaN = NULL, flags as 0.0/1.0."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd

BQX_WINDOWS: tuple[int, ...] = (15, 30, 45, 60, 75)
LAGS: tuple[int, ...] = (1, 5, 15, 30, 60)

# K11 sessions: name -> whether the UTC hour h is in it
SESSIONS: dict[str, Callable[[pd.Series], pd.Series]] = {
    "session_sydney": lambda h: (h >= 21) | (h < 6),
    "session_tokyo": lambda h: (h >= 0) & (h < 9),
    "session_london": lambda h: (h >= 7) & (h < 16),
    "session_new_york": lambda h: (h >= 12) & (h < 21),
    "session_overlap_london_ny": lambda h: (h >= 12) & (h < 16),
}


def _keyed(bars: pd.DataFrame, columns: dict[str, pd.Series]) -> pd.DataFrame:
    frame = pd.DataFrame(
        {name: pd.Series(values).to_numpy(dtype=float) for name, values in columns.items()}
    )
    frame.insert(0, "ts", bars["ts"].to_numpy())
    frame.insert(0, "symbol", bars["symbol"].to_numpy())
    return frame


def lagged_features(bars: pd.DataFrame, first_close: float) -> pd.DataFrame:
    """K9: lag_bqx_w<N>_l<L> = bqx_N at L bars back, dlag_bqx_w<N>_l<L> = bqx_N,t - bqx_N,t-L,
    with bqx_N,t = 100 (C_t - C_{t-N}) / C_{t-N} on the raw close (K0)."""
    close = bars["close"].reset_index(drop=True)
    lagged, changes = {}, {}
    for n in BQX_WINDOWS:
        back = close.shift(n)
        x = 100.0 * (close - back) / back
        for lag in LAGS:
            lagged[f"lag_bqx_w{n}_l{lag}"] = x.shift(lag)
            changes[f"dlag_bqx_w{n}_l{lag}"] = x - x.shift(lag)
    return _keyed(bars, lagged | changes)


def time_features(bars: pd.DataFrame, first_close: float) -> pd.DataFrame:
    """K11 from the open time ts in UTC."""
    ts = bars["ts"].dt.tz_convert("UTC").reset_index(drop=True)
    iso = ts.dt.isocalendar()
    hour = ts.dt.hour
    minute_of_day = 60 * hour + ts.dt.minute
    dow = iso["day"].astype("int64")
    date = ts.dt.normalize()
    since_prev = ts.diff() / pd.Timedelta(minutes=1)
    # bars since the latest gap bar (minutes_since_prev_bar > 5), the first bar starting the
    # count when there is none: number each run of bars from its first one
    run = (since_prev > 5).cumsum()
    since_gap = run.groupby(run).cumcount()
    columns: dict[str, pd.Series] = {
        "minute_of_hour": ts.dt.minute,
        "hour_of_day": hour,
        "day_of_week": dow,
        "day_of_month": ts.dt.day,
        "month": ts.dt.month,
        "week_of_year": iso["week"].astype("int64"),
        "minute_of_day_sin": np.sin(2 * np.pi * minute_of_day / 1440),
        "minute_of_day_cos": np.cos(2 * np.pi * minute_of_day / 1440),
        "day_of_week_sin": np.sin(2 * np.pi * (dow - 1) / 7),
        "day_of_week_cos": np.cos(2 * np.pi * (dow - 1) / 7),
        **{name: in_session(hour) for name, in_session in SESSIONS.items()},
        "is_month_end_day": ts.dt.is_month_end,
        "minutes_since_prev_bar": since_prev,
        "bars_since_gap": since_gap,
        "minutes_to_day_end": 1440 - minute_of_day,
        "is_first_bar_of_day": date != date.shift(1),
    }
    return _keyed(bars, columns)


ORACLES: dict[str, Callable[[pd.DataFrame, float], pd.DataFrame]] = {
    "lagged_features": lagged_features,
    "time_features": time_features,
}
