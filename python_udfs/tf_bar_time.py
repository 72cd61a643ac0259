"""Kernels of the bar families that depend on time and on earlier bars (FEATURE_DEFINITIONS
K9 lagged_features, K11 time_features); tf_bar_common states the contract.

lagged_features: bqx_N (K0) L bars back and its change over those L bars, for N in W and
L in LAGS. A row needs the N + L bars before it, so a refresh reads max N + max L = 135
bars of warm-up.

time_features: the calendar fields of the bar's open time (UTC), worked out from `minute`
(whole minutes since the Unix epoch) with integer arithmetic on days (Hinnant's
civil-from-days), the trading sessions and the bar's distance from its neighbours. A
refresh reads 1 bar of warm-up (minutes_since_prev_bar and is_first_bar_of_day look at the
previous bar); bars_since_gap counts from the symbol's first bar and so continues the stored
row before `start` (params["prev"]).
"""

from __future__ import annotations

import numpy as np
from tf_bar_common import BQX_WINDOWS, Bars, bqx
from tf_common import InputError

# K9: how many bars back the lagged values look
LAGS: tuple[int, ...] = (1, 5, 15, 30, 60)

# K11: a bar more than this many minutes after the previous one starts a new run of bars
GAP_MINUTES = 5

MINUTES_PER_DAY = 1440

# K11 trading sessions (UTC hours): name -> (first hour, hour after the last); a session whose
# first hour is after its end wraps past midnight
SESSIONS: dict[str, tuple[int, int]] = {
    "session_sydney": (21, 6),
    "session_tokyo": (0, 9),
    "session_london": (7, 16),
    "session_new_york": (12, 21),
    "session_overlap_london_ny": (12, 16),
}

MODELS: dict[str, list[str]] = {
    "lagged_features": [
        *(f"lag_bqx_w{n}_l{lag}" for n in BQX_WINDOWS for lag in LAGS),
        *(f"dlag_bqx_w{n}_l{lag}" for n in BQX_WINDOWS for lag in LAGS),
    ],
    "time_features": [
        "minute_of_hour",
        "hour_of_day",
        "day_of_week",
        "day_of_month",
        "month",
        "week_of_year",
        "minute_of_day_sin",
        "minute_of_day_cos",
        "day_of_week_sin",
        "day_of_week_cos",
        *SESSIONS,
        "is_month_end_day",
        "minutes_since_prev_bar",
        "bars_since_gap",
        "minutes_to_day_end",
        "is_first_bar_of_day",
    ],
}


def compute(model: str, bars: Bars, params: dict) -> dict[str, np.ndarray]:
    if model == "lagged_features":
        return _lagged_features(bars)
    if model == "time_features":
        return _time_features(bars, int(params.get("start") or 0), params.get("prev"))
    raise InputError(f"no model named '{model}' in tf_bar_time")


# --- K9 lagged_features --------------------------------------------------------------------------


def _shift(x: np.ndarray, lag: int) -> np.ndarray:
    """x `lag` bars back (NaN for the first `lag` bars)."""
    out = np.full(len(x), np.nan)
    if len(x) > lag:
        out[lag:] = x[:-lag]
    return out


def _lagged_features(bars: Bars) -> dict[str, np.ndarray]:
    lagged: dict[str, np.ndarray] = {}
    changes: dict[str, np.ndarray] = {}
    for n in BQX_WINDOWS:
        x = bqx(bars.close, n)
        for lag in LAGS:
            back = _shift(x, lag)
            lagged[f"lag_bqx_w{n}_l{lag}"] = back
            changes[f"dlag_bqx_w{n}_l{lag}"] = x - back
    return lagged | changes


# --- K11 time_features ---------------------------------------------------------------------------


def _civil_from_days(days: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(year, month, day) of the proleptic Gregorian dates `days` days after 1970-01-01
    (H. Hinnant, "chrono-compatible low-level date algorithms", civil_from_days)."""
    z = days + 719_468
    era = z // 146_097
    doe = z - era * 146_097
    yoe = (doe - doe // 1460 + doe // 36_524 - doe // 146_096) // 365
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    day = doy - (153 * mp + 2) // 5 + 1
    month = np.where(mp < 10, mp + 3, mp - 9)
    year = yoe + era * 400 + (month <= 2)
    return year, month, day


def _days_from_civil(year: np.ndarray) -> np.ndarray:
    """Days from 1970-01-01 to 1 January of `year` (Hinnant's days_from_civil, m = 1, d = 1)."""
    y = year - 1  # January counts in the previous March-based year
    era = y // 400
    yoe = y - era * 400
    doe = yoe * 365 + yoe // 4 - yoe // 100 + 306  # 306: days from 1 March to 1 January
    return era * 146_097 + doe - 719_468


def _iso_week(days: np.ndarray, iso_dow: np.ndarray) -> np.ndarray:
    """ISO 8601 week number: the week's Thursday lies in the ISO year, and week 1 holds the
    year's first Thursday."""
    thursday = days - (iso_dow - 1) + 3
    iso_year = _civil_from_days(thursday)[0]
    return (thursday - _days_from_civil(iso_year)) // 7 + 1


def _in_session(hour: np.ndarray, first: int, end: int) -> np.ndarray:
    if first < end:
        return (hour >= first) & (hour < end)
    return (hour >= first) | (hour < end)


def _bars_since_gap(gap: np.ndarray, origin: int) -> np.ndarray:
    """Bars since the latest bar flagged in `gap` (0 on it); with none, since position
    `origin` (which may lie before the input)."""
    position = np.arange(len(gap), dtype=np.int64)
    latest = np.maximum.accumulate(np.where(gap, position, np.iinfo(np.int64).min))
    return (position - np.maximum(latest, origin)).astype(np.float64)


def _time_features(bars: Bars, start: int, prev: dict | None) -> dict[str, np.ndarray]:
    minute = np.asarray(bars.minute, dtype=np.int64)
    n = len(minute)
    days = minute // MINUTES_PER_DAY
    minute_of_day = minute - days * MINUTES_PER_DAY
    hour = minute_of_day // 60
    iso_dow = (days + 3) % 7 + 1  # 1970-01-01 was a Thursday (ISO 4)
    _, month, day_of_month = _civil_from_days(days)
    _, _, next_day_of_month = _civil_from_days(days + 1)

    since_prev = np.full(n, np.nan)
    since_prev[1:] = np.diff(minute)
    first_of_day = np.ones(n)
    first_of_day[1:] = days[1:] != days[:-1]
    # row 0 is the symbol's first bar on a full build; on a refresh it is a warm-up bar

    # bars_since_gap: on a refresh the count goes on from the stored row before `start`
    stored = None if prev is None else prev.get("bars_since_gap")
    origin = 0 if stored is None else start - 1 - round(float(stored))
    since_gap = _bars_since_gap(since_prev > GAP_MINUTES, origin)
    if stored is not None:
        since_gap[:start] = np.nan  # warm-up rows, not known from the bars read

    angle_of_day = 2.0 * np.pi * minute_of_day / MINUTES_PER_DAY
    angle_of_week = 2.0 * np.pi * (iso_dow - 1) / 7.0
    return {
        "minute_of_hour": (minute_of_day % 60).astype(np.float64),
        "hour_of_day": hour.astype(np.float64),
        "day_of_week": iso_dow.astype(np.float64),
        "day_of_month": day_of_month.astype(np.float64),
        "month": month.astype(np.float64),
        "week_of_year": _iso_week(days, iso_dow).astype(np.float64),
        "minute_of_day_sin": np.sin(angle_of_day),
        "minute_of_day_cos": np.cos(angle_of_day),
        "day_of_week_sin": np.sin(angle_of_week),
        "day_of_week_cos": np.cos(angle_of_week),
        **{name: _in_session(hour, *hours).astype(np.float64) for name, hours in SESSIONS.items()},
        "is_month_end_day": (next_day_of_month == 1).astype(np.float64),
        "minutes_since_prev_bar": since_prev,
        "bars_since_gap": since_gap,
        "minutes_to_day_end": (MINUTES_PER_DAY - minute_of_day).astype(np.float64),
        "is_first_bar_of_day": first_of_day,
    }
