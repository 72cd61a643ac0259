"""The pieces of the vendor formats that need no database: stamps in layouts and zones, the
level numbering of headers, the options' validation. Expected values come from Python's
datetime and zoneinfo, not from the code under test."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np
import pyarrow as pa
import pytest

from tickfeatures import formats
from tickfeatures.errors import TickfeaturesError


def _us(t: datetime) -> int:
    return (t - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1)


@pytest.mark.parametrize(
    ("layout", "text", "expected"),
    [
        ("%Y%m%d %H%M%S", "20240701 120000", datetime(2024, 7, 1, 12, tzinfo=UTC)),
        ("%Y%m%d %H%M%S%f", "20240701 120000123", datetime(2024, 7, 1, 12, 0, 0, 123000, UTC)),
        ("%Y.%m.%d %H:%M", "2024.02.29 23:59", datetime(2024, 2, 29, 23, 59, tzinfo=UTC)),
        (
            "%d.%m.%Y %H:%M:%S.%f",
            "01.07.2024 00:00:00.5",
            datetime(2024, 7, 1, 0, 0, 0, 500000, UTC),
        ),
        (
            "%d.%m.%Y %H:%M:%S.%f",
            "01.07.2024 00:00:00.1234565",
            datetime(2024, 7, 1, 0, 0, 0, 123457, UTC),
        ),
        (
            "%d.%m.%Y %H:%M:%S.%f",
            "01.07.2024 00:00:00.1234564",
            datetime(2024, 7, 1, 0, 0, 0, 123456, UTC),
        ),
    ],
)
def test_layouts(layout: str, text: str, expected: datetime) -> None:
    us, ok = formats.parse_layout(pa.array([text]), layout)
    assert ok.tolist() == [True]
    assert int(us[0]) == _us(expected)


@pytest.mark.parametrize(
    "text", ["20230229 000000", "20240701 240000", "2024070 120000", "2024O701 120000", "", None]
)
def test_layout_refuses_what_is_not_a_time(text: str | None) -> None:
    _, ok = formats.parse_layout(pa.array([text], type=pa.string()), "%Y%m%d %H%M%S")
    assert ok.tolist() == [False]


def test_zones_against_zoneinfo() -> None:
    """Every quarter hour of 2024 in New York and London, and the fixed offsets."""
    for name in ("America/New_York", "Europe/London", "Australia/Lord_Howe"):
        tz = ZoneInfo(name)
        walls = [datetime(2024, 1, 1) + timedelta(minutes=7 * k) for k in range(0, 75_000)]
        local = np.array([_us(w.replace(tzinfo=UTC)) for w in walls])
        want = np.array([_us(w.replace(tzinfo=tz)) for w in walls])
        got = formats.local_to_utc(local, formats.zone(name))
        assert (got == want).all(), name
    local = np.array([_us(datetime(2024, 7, 1, 12, tzinfo=UTC))])
    assert formats.local_to_utc(local, formats.zone("-05:00"))[0] == _us(
        datetime(2024, 7, 1, 17, tzinfo=UTC)
    )
    assert formats.zone("UTC+05:30") == 19_800 and formats.zone("-0500") == -18_000


@pytest.mark.parametrize("tz", ["Mars/Olympus", "+25:00", "EST5EDT6", ""])
def test_bad_zones_are_one_line_errors(tz: str) -> None:
    with pytest.raises(TickfeaturesError, match=r"^--tz .*: ") as err:
        formats.zone(tz)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize(
    ("name", "parsed"),
    [
        ("bid_px_00", ("bid", "price", 0)),
        ("ask_sz_09", ("ask", "size", 9)),
        ("asks[0].price", ("ask", "price", 0)),
        ("bids[24].amount", ("bid", "size", 24)),
        ("BidPrice1", ("bid", "price", 1)),
        ("Ask Size 10", ("ask", "size", 10)),
        ("bid_price_3", ("bid", "price", 3)),
        ("bid_ct_00", None),
        ("price", None),
        ("ask_amount", None),
    ],
)
def test_level_names(name: str, parsed: tuple | None) -> None:
    got = formats.level_of(name)
    assert (got[:3] if got else None) == parsed


def test_levels_never_shift() -> None:
    zero = [f"{s}_{w}_{i:02d}" for i in range(10) for s in ("bid", "ask") for w in ("px", "sz")]
    got = formats.level_columns(zero, "f")
    assert got["bid_price_1"] == "bid_px_00" and got["ask_size_10"] == "ask_sz_09"
    # a 0-indexed header of the table's own names: bid_price_1 is the second level
    own = [f"{s}_{w}_{i}" for i in range(10) for s in ("bid", "ask") for w in ("price", "size")]
    got = formats.level_columns(own, "f")
    assert got["bid_price_1"] == "bid_price_0" and got["bid_price_10"] == "bid_price_9"
    one = [f"{s}_{w}_{i}" for i in range(1, 11) for s in ("bid", "ask") for w in ("price", "size")]
    assert formats.level_columns(one, "f")["bid_price_1"] == "bid_price_1"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"format": "bloomberg"}, "--format bloomberg: unknown format"),
        ({"no_header": True}, "--no-header needs --columns"),
        ({"delimiter": ";;"}, "--delimiter"),
        ({"symbol": "A", "symbol_from_name": "(A)"}, "give one of them"),
        ({"symbol_from_name": "[A-Z]+"}, "exactly one capture group"),
        ({"symbol_from_name": "(["}, "not a regular expression"),
        ({"ts_format": "%Y-%j"}, "%j is not supported"),
        ({"price_scale": 0.0}, "a positive number"),
        ({"price_scale": float("nan")}, "a positive number"),
        ({"same_ts": "middle"}, "--same-ts middle"),
    ],
)
def test_bad_settings_are_one_line_errors(kwargs: dict, message: str) -> None:
    with pytest.raises(TickfeaturesError) as err:
        formats.Settings(**kwargs)
    assert message in str(err.value) and "\n" not in str(err.value)


def test_price_scale_is_a_correctly_rounded_division() -> None:
    raw = np.array([1_912_347.0, 181_980_000_000.0, 3.0])
    assert formats.scale_values(raw[:1], 1e-4)[0] == 191.2347
    assert formats.scale_values(raw[1:2], 1e-9)[0] == 181.98
    assert formats.scale_values(raw[2:], 0.5)[0] == 1.5


def test_stamps_shift_naive_text_only() -> None:
    """--tz applies to stamps without an offset (a date alone included), never to stamps
    with one or to epoch numbers."""
    stamps = formats.Stamps(formats.zone("America/New_York"))
    text = ["2024-07-01", "2024-07-01 12:00:00", "2024-07-01T12:00:00+02:00", "1719835200", None]
    us, nulls, bad = stamps(pa.array(text))
    ny = ZoneInfo("America/New_York")
    assert nulls.tolist() == [False] * 4 + [True] and not bad.any()
    assert us[:4].tolist() == [
        _us(datetime(2024, 7, 1, tzinfo=ny)),
        _us(datetime(2024, 7, 1, 12, tzinfo=ny)),
        _us(datetime(2024, 7, 1, 10, tzinfo=UTC)),
        1_719_835_200_000_000,
    ]
