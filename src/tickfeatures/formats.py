"""File formats: how a file's columns become the table's, for vendors' formats and the rest.

A file is read in one of two ways:
- a **named format** (`--format NAME`, or detected from the header or the file name where
  that is unambiguous): a data vendor's layout, with its time zone, its level numbering, its
  price units and its file-name pattern for the symbol (FORMATS below; the README's table);
- the **table's own columns** (the default), adapted by the general options: `--no-header`
  with `--columns`, `--delimiter`, `--symbol` or `--symbol-from-name`, `--tz`, `--ts-unit`,
  `--ts-format`, `--price-scale`, and a date and a time in two columns (`date`, `time`).

Either way a reader yields batches of the file's columns under the plan's keys, and the
plan's `convert` turns each into the table's columns (`symbol`, `ts` as UTC microseconds, the
value columns as float64) plus, per row, the reason it is not loaded (a Databento record in
mid-update, a bar that is not one minute long), so that the loader's accounting is the same
for every format.

Levels are never shifted: a 0-indexed naming (`bid_px_00`, `bids[0].price`, `bid_price_0`)
maps level 0 to level 1 whatever its separators, and a header that mixes conventions or holds
a level twice is an error (`level_columns`).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from tickfeatures import schema
from tickfeatures.errors import TickfeaturesError
from tickfeatures.values import BAD_TS, NON_NUMERIC, _bits, _filled, numbers, timestamps_us

SAME_TS = ("quarantine", "first", "last")
TS_UNITS = {"s": 1_000_000, "ms": 1_000, "us": 1, "ns": 0}
NOT_LAST = "not the last record of its event (Databento F_LAST unset: a book in mid-update)"
NOT_ONE_MINUTE = "not a one-minute bar"
F_LAST = 128
DATABENTO_UNDEF = 9.2e18  # UNDEF_PRICE is INT64_MAX (9223372036854775807) in units of 1e-9
LOBSTER_DUMMY = 9_999_999_999  # LOBSTER's price of an empty level (ask; the bid's is negative)


@dataclass(frozen=True)
class Settings:
    """The options of a load that change how a file is read (recorded in the ledger)."""

    format: str | None = None
    no_header: bool = False
    columns: tuple[str, ...] | None = None
    delimiter: str | None = None
    symbol: str | None = None
    symbol_from_name: str | None = None
    tz: str | None = None
    ts_unit: str | None = None
    ts_format: str | None = None
    price_scale: float | None = None
    ts_field: str | None = None
    same_ts: str = "quarantine"

    def __post_init__(self) -> None:
        if self.format is not None and self.format not in FORMATS and self.format != "csv":
            raise TickfeaturesError(
                f"--format {self.format}: unknown format; known: {', '.join(sorted(FORMATS))}"
            )
        if self.no_header and not self.columns:
            raise TickfeaturesError("--no-header needs --columns NAME,NAME,... for the fields")
        if self.delimiter is not None and len(self.delimiter) != 1:
            raise TickfeaturesError(
                f"--delimiter {self.delimiter!r}: one character (use $'\\t' for a tab)"
            )
        if self.symbol is not None and not self.symbol.strip():
            raise TickfeaturesError("--symbol: an empty symbol")
        if self.symbol is not None and self.symbol_from_name is not None:
            raise TickfeaturesError("--symbol and --symbol-from-name: give one of them")
        if self.symbol_from_name is not None:
            try:
                groups = re.compile(self.symbol_from_name).groups
            except re.error as exc:
                raise TickfeaturesError(
                    f"--symbol-from-name {self.symbol_from_name!r}: not a regular expression"
                    f" ({exc})"
                ) from None
            if groups != 1:
                raise TickfeaturesError(
                    f"--symbol-from-name {self.symbol_from_name!r}: needs exactly one capture"
                    f" group (it has {groups}), e.g. '^([A-Z]+)_'"
                )
        if self.tz is not None:
            zone(self.tz)
        if self.ts_unit is not None and self.ts_unit not in TS_UNITS:
            raise TickfeaturesError(f"--ts-unit {self.ts_unit}: one of s, ms, us, ns")
        if self.ts_format is not None:
            layout_positions(self.ts_format)
        if self.price_scale is not None and not (
            np.isfinite(self.price_scale) and self.price_scale > 0
        ):
            raise TickfeaturesError(f"--price-scale {self.price_scale}: a positive number")
        if self.same_ts not in SAME_TS:
            raise TickfeaturesError(f"--same-ts {self.same_ts}: one of {', '.join(SAME_TS)}")

    def recorded(self, fmt: str) -> dict:
        """What the ledger keeps of these settings: the format read and every option set."""
        out: dict = {"format": fmt}
        for key, value in asdict(self).items():
            if (
                key == "format"
                or value in (None, False)
                or (key == "same_ts" and value == SAME_TS[0])
            ):
                continue
            out[key] = list(value) if isinstance(value, tuple) else value
        return out


# -- time -------------------------------------------------------------------------------------

_OFFSET = re.compile(r"^(?:UTC|GMT)?\s*([+-])(\d{1,2})(?::?(\d\d))?$", re.IGNORECASE)


def zone(tz: str) -> int | ZoneInfo:
    """A fixed offset in seconds (`+05:30`, `UTC-5`, `-0500`), or an IANA time zone."""
    text = tz.strip()
    if text.upper() in ("UTC", "Z", "GMT"):
        return 0
    m = _OFFSET.match(text)
    if m:
        sign, hours, minutes = m.group(1), int(m.group(2)), int(m.group(3) or 0)
        if hours > 23 or minutes > 59:
            raise TickfeaturesError(f"--tz {tz}: not a valid offset")
        return (-1 if sign == "-" else 1) * (hours * 3600 + minutes * 60)
    try:
        return ZoneInfo(text)
    except (ZoneInfoNotFoundError, ValueError):
        raise TickfeaturesError(
            f"--tz {tz}: neither a fixed offset (+05:00, UTC-5) nor an IANA time zone name"
            " (America/New_York)"
        ) from None


def local_to_utc(us: np.ndarray, tz: int | ZoneInfo) -> np.ndarray:
    """Naive local stamps (microseconds, as if UTC) read in `tz`, as UTC microseconds.

    An IANA zone's offset is looked up once per quarter hour of local time present; a local
    time repeated when clocks go back is read as its first occurrence (fold 0).
    """
    if isinstance(tz, int):
        return us - tz * 1_000_000
    if not len(us):
        return us
    quarter = 900 * 1_000_000
    slots = us // quarter
    uniq, inverse = np.unique(slots, return_inverse=True)
    offsets = np.empty(len(uniq), dtype=np.int64)
    for i, slot in enumerate(uniq.tolist()):
        wall = datetime(1970, 1, 1) + timedelta(microseconds=slot * quarter)
        offsets[i] = int(wall.replace(tzinfo=tz).utcoffset().total_seconds()) * 1_000_000
    return us - offsets[inverse]


_LAYOUT_FIELDS = {"Y": 4, "m": 2, "d": 2, "H": 2, "M": 2, "S": 2}


def layout_positions(layout: str) -> list[tuple[str, int, int]]:
    """[(field, start, width)] of a fixed-width strptime-like layout: %Y %m %d %H %M %S, and
    %f (the fraction: the digits up to the end of the value) last."""
    out: list[tuple[str, int, int]] = []
    pos = 0
    i = 0
    while i < len(layout):
        ch = layout[i]
        if ch == "%" and i + 1 < len(layout):
            code = layout[i + 1]
            if code == "f":
                if i + 2 != len(layout):
                    raise TickfeaturesError(f"--ts-format {layout!r}: %f must come last")
                out.append(("f", pos, -1))
                return out
            if code not in _LAYOUT_FIELDS:
                raise TickfeaturesError(
                    f"--ts-format {layout!r}: %{code} is not supported (only %Y %m %d %H %M %S %f)"
                )
            out.append((code, pos, _LAYOUT_FIELDS[code]))
            pos += _LAYOUT_FIELDS[code]
            i += 2
            continue
        out.append(("=" + ch, pos, 1))
        pos += 1
        i += 1
    if not any(f == "Y" for f, _, _ in out):
        raise TickfeaturesError(f"--ts-format {layout!r}: needs at least %Y, %m and %d")
    return out


def parse_layout(text: pa.Array, layout: str) -> tuple[np.ndarray, np.ndarray]:
    """(naive microseconds, parsed) of text stamps in a fixed-width layout (`layout_positions`),
    vectorised over the bytes. Values of another length or with a non-digit where a digit
    belongs are not parsed."""
    from tickfeatures.values import _days_from_civil

    fields = layout_positions(layout)
    text = pc.utf8_trim_whitespace(text.cast(pa.string()))
    n = len(text)
    valid = _bits(text.is_valid())
    us = np.zeros(n, dtype=np.int64)
    parsed = np.zeros(n, dtype=bool)
    if not valid.any():
        return us, parsed
    fraction = fields[-1][0] == "f"
    fixed = fields[-1][1] if fraction else sum(w for _, _, w in fields)
    # the bytes of each value, from the array's buffers (lengths in bytes: a value with a
    # character beyond ASCII never fits a layout's width of digits and separators)
    _, offsets_buf, data_buf = text.buffers()
    offsets = np.frombuffer(offsets_buf, dtype=np.int32)[text.offset : text.offset + n + 1]
    starts = offsets[:-1].astype(np.int64)
    lengths = np.where(valid, np.diff(offsets), 0)
    chars = (
        np.frombuffer(data_buf, dtype=np.uint8) if data_buf is not None else np.zeros(0, np.uint8)
    )
    rows = np.flatnonzero(valid & (lengths >= fixed))
    if not len(rows):
        return us, parsed
    for width in np.unique(lengths[rows]):
        pick = rows[lengths[rows] == width]
        if fraction and width - fixed > 9:
            continue
        if not fraction and width != fixed:
            continue
        data = chars[starts[pick][:, None] + np.arange(int(width))]
        d = data.astype(np.int64) - 48
        ok = np.ones(len(pick), dtype=bool)
        parts: dict[str, np.ndarray] = {}
        for name, start, w in fields:
            if name.startswith("="):
                ok &= data[:, start] == ord(name[1])
                continue
            w = int(width) - start if w < 0 else w
            if w == 0:
                parts[name] = np.zeros(len(pick), dtype=np.int64)
                continue
            digits = d[:, start : start + w]
            ok &= ((digits >= 0) & (digits <= 9)).all(axis=1)
            value = np.zeros(len(pick), dtype=np.int64)
            for k in range(w):
                value = value * 10 + np.clip(digits[:, k], 0, 9)
            if name == "f":  # to microseconds: the first six digits, rounded half up on the 7th
                value = (
                    value * 10 ** max(6 - w, 0)
                    if w <= 6
                    else (value // 10 ** (w - 6)) + ((value // 10 ** (w - 7)) % 10 >= 5)
                )
            parts[name] = value
        year, month, day = parts["Y"], parts.get("m", 1), parts.get("d", 1)
        hour, minute = parts.get("H", 0), parts.get("M", 0)
        second, micro = parts.get("S", 0), parts.get("f", 0)
        month = np.broadcast_to(month, year.shape)
        day = np.broadcast_to(day, year.shape)
        month_ok = (month >= 1) & (month <= 12)
        safe_month = np.where(month_ok, month, 1)
        next_month = np.where(safe_month == 12, 1, safe_month + 1)
        dim = _days_from_civil(year + (safe_month == 12), next_month, 1) - _days_from_civil(
            year, safe_month, 1
        )
        ok &= month_ok & (day >= 1) & (day <= dim)
        ok &= (np.asarray(hour) < 24) & (np.asarray(minute) < 60) & (np.asarray(second) < 60)
        value = _days_from_civil(year, safe_month, day) * 86_400_000_000
        value = value + ((np.asarray(hour) * 60 + minute) * 60 + second) * 1_000_000 + micro
        us[pick] = value
        parsed[pick] = ok
    return us, parsed


# a zone after a text stamp's time: Z, +01, +0100, +01:00, or ` GMT+0100` (Dukascopy); a
# date alone (2024-07-01) has none
_ZONED = r"(:\d\d(\.\d+)?\s*(Z|[+-]\d\d(:?\d\d)?)|GMT[+-]\d{4})$"
_GMT_SUFFIX = re.compile(r"^(.*?)\s*GMT([+-])(\d\d)(\d\d)$")


@dataclass
class Stamps:
    """Column conversions for one file's timestamps."""

    tz: int | ZoneInfo = 0
    unit: str | None = None  # s, ms, us, ns: numeric stamps in this unit (else by magnitude)
    layout: str | None = None  # a fixed-width layout (--ts-format)

    def __call__(self, arr: pa.Array) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(UTC microseconds, is NULL, is unparseable)."""
        n = len(arr)
        t = arr.type
        numeric = pa.types.is_integer(t) or pa.types.is_floating(t)
        if not numeric and not pa.types.is_timestamp(t):
            text = pc.utf8_trim_whitespace(arr.cast(pa.string()))
            text = pc.if_else(pc.equal(text, ""), pa.scalar(None, pa.string()), text)
            if self.unit is not None and not self.layout:
                try:
                    return self(text.cast(pa.int64()))
                except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
                    try:
                        return self(text.cast(pa.float64()))
                    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
                        pass
            nulls = _bits(text.is_null())
            if self.layout:
                us, ok = parse_layout(text, self.layout)
                return local_to_utc(us, self.tz), nulls, ~ok & ~nulls
            offsets = np.zeros(n, dtype=np.int64)
            if pc.any(pc.match_substring(text, "GMT")).as_py():
                text, offsets = _gmt_suffix(text)
            us, nulls, bad = timestamps_us(text)
            zoned = _bits(pc.fill_null(pc.match_substring_regex(text, _ZONED), False))
            numeric_text = _bits(
                pc.fill_null(
                    pc.match_substring_regex(text, r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$"),
                    False,
                )
            )
            naive = ~zoned & ~numeric_text & ~nulls & ~bad
            if (self.tz != 0) and naive.any():
                us = np.where(naive, local_to_utc(us, self.tz), us)
            return us - offsets, nulls, bad
        if numeric and self.unit is not None:
            nulls = _bits(arr.is_null())
            if pa.types.is_floating(t):
                raw = _filled(arr.cast(pa.float64()), np.float64)
                bad = ~np.isfinite(raw) & ~nulls
                raw = np.where(bad, 0.0, raw)
                factor = TS_UNITS[self.unit]
                us = np.rint(raw * factor if factor else raw / 1000.0).astype(np.int64)
                return np.where(nulls, 0, us), nulls, bad
            raw = _filled(arr.cast(pa.int64()), np.int64)
            factor = TS_UNITS[self.unit]
            us = raw * factor if factor else (raw + np.where(raw >= 0, 500, -500)) // 1000
            return np.where(nulls, 0, us), nulls, np.zeros(n, dtype=bool)
        return timestamps_us(arr)


def _gmt_suffix(text: pa.Array) -> tuple[pa.Array, np.ndarray]:
    """Dukascopy's local stamps `01.07.2024 02:00:00.000 GMT+0200`: the stamp without the
    suffix, and the offset in microseconds."""
    values = text.to_pylist()
    offsets = np.zeros(len(values), dtype=np.int64)
    out: list[str | None] = []
    for i, v in enumerate(values):
        m = _GMT_SUFFIX.match(v) if v is not None else None
        if m is None:
            out.append(v)
            continue
        out.append(m.group(1))
        offsets[i] = (
            (-1 if m.group(2) == "-" else 1)
            * (int(m.group(3)) * 3600 + int(m.group(4)) * 60)
            * 1_000_000
        )
    return pa.array(out, type=pa.string()), offsets


# -- level names ------------------------------------------------------------------------------

_SIDES = {
    "bid": "bid",
    "bids": "bid",
    "b": "bid",
    "ask": "ask",
    "asks": "ask",
    "a": "ask",
    "offer": "ask",
    "offers": "ask",
}
_WHATS = {
    "price": "price",
    "px": "price",
    "prc": "price",
    "p": "price",
    "size": "size",
    "sz": "size",
    "qty": "size",
    "quantity": "size",
    "volume": "size",
    "vol": "size",
    "amount": "size",
    "amt": "size",
    "q": "size",
}


def _name_tokens(name: str) -> list[str]:
    spaced = re.sub(r"(?<=[a-z])(?=[A-Z])", " ", name)
    return re.findall(r"[a-z]+|\d+", spaced.lower())


def level_of(name: str) -> tuple[str, str, int, str] | None:
    """(side, price|size, index as written, naming convention) of a level column's name, or
    None: `bid_px_00` -> ('bid', 'price', 0, ...), `asks[3].amount` -> ('ask', 'size', 3, ...).
    The convention is the name with its side, quantity and number abstracted: two columns of
    one file's book share it."""
    tokens = _name_tokens(name)
    if len(tokens) != 3:
        return None
    sides = [t for t in tokens if t in _SIDES]
    whats = [t for t in tokens if t in _WHATS and t not in _SIDES]
    digits = [t for t in tokens if t.isdigit()]
    if len(sides) != 1 or len(whats) != 1 or len(digits) != 1:
        return None
    side_word, what_word, number = sides[0], whats[0], digits[0]
    what = _WHATS[what_word]
    # the convention: where side, quantity and number stand, the separators, the side's form
    # (bid, bids, b) and the price's word (px, price): bid_px_00 and bid_price_1 differ
    form = {1: "letter", 3: "word", 4: "plural"}.get(len(side_word), side_word)
    order = "".join("S" if t == side_word else "W" if t == what_word else "N" for t in tokens)
    convention = "|".join(
        (order, re.sub(r"[A-Za-z0-9]+", "", name), form, what_word if what == "price" else "")
    )
    return _SIDES[side_word], what, int(number), convention


def level_columns(
    header: Sequence[str], file: str, taken: set[str] = frozenset()
) -> dict[str, str]:
    """{table level column: header column} read from the header's level names.

    Levels are numbered from 0 when any level column is numbered 0 (`bid_px_00`), else from 1:
    the file's first level is always the table's level 1. A header whose level columns use two
    naming conventions, number one side from 0 and another from 1, or name a level twice, is
    an error rather than a guess.
    """
    found: dict[tuple[str, str, int], str] = {}
    conventions: dict[str, str] = {}
    for h in header:
        if h in taken:
            continue
        parsed = level_of(h)
        if parsed is None:
            continue
        side, what, index, convention = parsed
        if (side, what, index) in found:
            raise TickfeaturesError(
                f"{file}: the header names {side} {what} level {index} twice"
                f" ({found[(side, what, index)]} and {h}); say which to load with --map"
            )
        found[(side, what, index)] = h
        conventions.setdefault(convention, h)
    if not found:
        return {}
    prices = {c for c in conventions if not c.endswith("|")}
    shapes = {c.rsplit("|", 1)[0] for c in conventions}
    if len(prices) > 1 or len(shapes) > 1:
        examples = ", ".join(list(conventions.values())[:3])
        raise TickfeaturesError(
            f"{file}: the level columns mix naming conventions ({examples}); rename them or"
            " map each with --map, so no level is read as another"
        )
    firsts = {}
    for side, what, index in found:
        firsts[(side, what)] = min(index, firsts.get((side, what), index))
    bases = set(firsts.values())
    if 0 in bases and bases != {0}:
        raise TickfeaturesError(
            f"{file}: some level columns are numbered from 0 and others from 1; rename them or"
            " map each with --map, so no level is read as another"
        )
    base = 0 if bases == {0} else 1
    out: dict[str, str] = {}
    for (side, what, index), h in found.items():
        level = index - base + 1
        if 1 <= level <= schema.LEVELS:
            out[f"{side}_{what}_{level}"] = h
    return out


# -- plans ------------------------------------------------------------------------------------


@dataclass
class Converted:
    """A batch in the table's columns, and the rows not to load with why."""

    columns: dict[str, pa.Array]
    reasons: np.ndarray | None = None  # object: None or a reason, per row
    details: np.ndarray | None = None


Convert = Callable[[dict[str, pa.Array], int], Converted]


@dataclass
class Plan:
    """What a reader reads from a file (key -> the file's column, read as type) and how a
    batch of it becomes the table's columns."""

    columns: dict[str, str]
    convert: Convert | None = None  # None: the keys are the table's columns already
    types: dict[str, pa.DataType] = field(default_factory=dict)


class Rows:
    """Helpers a conversion uses on one batch: reasons set aside per row, in check order."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.reasons = np.full(n, None, dtype=object)
        self.details = np.full(n, None, dtype=object)

    def flag(
        self, mask: np.ndarray, why: str, detail: Callable[[np.ndarray], list] | None = None
    ) -> None:
        rows = np.flatnonzero(mask & (self.reasons == None))  # noqa: E711
        if len(rows):
            self.reasons[rows] = why
            if detail is not None:
                self.details[rows] = detail(rows)

    def done(self, columns: dict[str, pa.Array]) -> Converted:
        if (self.reasons == None).all():  # noqa: E711
            return Converted(columns)
        return Converted(columns, self.reasons, self.details)

    def floats(self, arr: pa.Array, name: str, nan_is_null: bool = False) -> np.ndarray:
        """float64 values (NaN where NULL); a value that is not a number sets the row aside
        with the loader's own reason. `nan_is_null`: a NaN is a missing value, as in a
        vendor's frames (Databento's undefined price in pandas), not a bad one."""
        values, _, bad = numbers(arr)
        if nan_is_null and pa.types.is_floating(arr.type):  # (text that is no number is NaN too)
            bad &= ~np.isnan(values)
        if bad.any():
            self.flag(
                bad, NON_NUMERIC, lambda rows: [f"{name} {arr[int(i)].as_py()!r}" for i in rows]
            )
            values = np.where(bad, np.nan, values)
        return values

    def stamps(self, arr: pa.Array, convert: Stamps, name: str = "ts") -> pa.Array:
        us, nulls, bad = convert(arr)
        self.flag(bad, BAD_TS, lambda rows: [f"{name} {arr[int(i)].as_py()!r}" for i in rows])
        return pa.array(us, type=pa.timestamp("us", "UTC"), mask=nulls | bad)


def _float_array(values: np.ndarray) -> pa.Array:
    return pa.array(values, type=pa.float64(), mask=np.isnan(values))


def constant_symbol(symbol: str, n: int) -> pa.Array:
    return pa.DictionaryArray.from_arrays(
        pa.array(np.zeros(n, dtype=np.int32)), pa.array([symbol], type=pa.string())
    )


def symbol_from_name(pattern: str, path: Path, why: str) -> str:
    m = re.search(pattern, path.name)
    if m is None or not (m.group(1) or "").strip():
        raise TickfeaturesError(
            f"{path.name}: no symbol in the file name ({why} {pattern!r} does not match);"
            " give one with --symbol"
        )
    return m.group(1)


def _divisor(scale: float | None) -> float | None:
    """Multiply by `scale` as a division where 1/scale is a whole number (1e-4 -> / 10000):
    a division by an exact integer is correctly rounded, a product by 1e-4 is not."""
    if scale is None or scale == 1:
        return None
    inverse = 1 / scale
    return float(round(inverse)) if abs(inverse - round(inverse)) < 1e-9 * inverse else None


def scale_values(values: np.ndarray, scale: float | None) -> np.ndarray:
    if scale is None or scale == 1:
        return values
    divisor = _divisor(scale)
    return values / divisor if divisor else values * scale


# -- the table's own columns, with the general options ---------------------------------------


def generic_plan(
    header: Sequence[str],
    spec_columns: Sequence[str],
    optional: Sequence[str],
    price_columns: Sequence[str],
    mapping: dict[str, str],
    settings: Settings,
    path: Path,
    resolve: Callable[..., dict[str, str]],
) -> Plan:
    """The table's columns found in the header (the user's mapping, the name, aliases, level
    names) and converted by the general options; without options, read as they are."""
    symbol = settings.symbol
    if settings.symbol_from_name:
        symbol = symbol_from_name(settings.symbol_from_name, path, "--symbol-from-name")
    required = [c for c in spec_columns if not (c == "symbol" and symbol)]
    two_columns = (
        "ts" not in header
        and "ts" not in mapping.values()
        and ({"date", "time"} <= set(header) or {"date", "time"} <= set(mapping.values()))
    )
    if two_columns:
        required = [c for c in required if c != "ts"] + ["date", "time"]
    optional = (*optional, *_levels_beyond(header, mapping, spec_columns, path))
    columns = resolve(required, header, mapping, path.name, optional)
    options = (
        symbol
        or two_columns
        or settings.tz
        or settings.ts_unit
        or settings.ts_format
        or settings.price_scale
    )
    if not options:
        return Plan(columns)
    stamps = Stamps(zone(settings.tz or "UTC"), settings.ts_unit, settings.ts_format)
    types = {k: pa.string() for k in ("ts", "date", "time") if k in columns}
    if settings.ts_unit and "ts" in columns:
        types.pop("ts")
    prices = set(price_columns)

    def convert(cols: dict[str, pa.Array], n: int) -> Converted:
        rows = Rows(n)
        out = dict(cols)
        if symbol:
            out["symbol"] = constant_symbol(symbol, n)
        if two_columns:
            joined = pc.binary_join_element_wise(
                cols["date"].cast(pa.string()), cols["time"].cast(pa.string()), " "
            )
            out.pop("date"), out.pop("time")
            out["ts"] = rows.stamps(joined, stamps)
        else:
            out["ts"] = rows.stamps(cols["ts"], stamps)
        if settings.price_scale:
            for name in prices & set(cols):
                out[name] = _float_array(
                    scale_values(rows.floats(cols[name], name), settings.price_scale)
                )
        return rows.done(out)

    return Plan(columns, convert, types)


def _levels_beyond(
    header: Sequence[str], mapping: dict[str, str], spec_columns: Sequence[str], path: Path
) -> list[str]:
    """The table's levels deeper than a file's book, when the file holds levels 1..k of all
    four (bid and ask, price and size) and nothing else: they load as NULL. A file with some
    columns of a level and not others still fails, naming them."""
    found = set(level_columns(header, path.name, taken=set(mapping))) | set(mapping.values())
    depth = 0
    while all(f"{s}_{w}_{depth + 1}" in found for s in ("bid", "ask") for w in ("price", "size")):
        depth += 1
    levels = {c for c in found if re.fullmatch(r"(bid|ask)_(price|size)_\d+", c)}
    if not depth or depth >= schema.LEVELS or len(levels) != 4 * depth:
        return []
    return [
        c
        for c in spec_columns
        if re.fullmatch(r"(bid|ask)_(price|size)_\d+", c) and int(c.rsplit("_", 1)[1]) > depth
    ]


# -- named formats -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Context:
    """What a named format's plan is made from."""

    kind: str
    path: Path
    header: tuple[str, ...]
    first_row: tuple[str, ...]  # the first data line's fields ('' where the file has none)
    settings: Settings
    file_type: str  # csv, parquet, dbn


@dataclass(frozen=True)
class NamedFormat:
    name: str
    kinds: tuple[str, ...]
    title: str
    plan: Callable[[Context], Plan]
    detect: Callable[[Sequence[str]], bool] | None = None  # from the header
    file_pattern: str | None = None  # from the file name; group 1 is the symbol
    names: tuple[str, ...] | None = None  # headerless: the fields
    delimiter: str = ","
    aliases: tuple[str, ...] = ()
    header_optional: bool = False  # headerless, but some files carry a header line


def _symbol(ctx: Context, pattern: str | None, n_rows: int) -> pa.Array | None:
    s = ctx.settings
    if s.symbol:
        return constant_symbol(s.symbol, n_rows)
    if s.symbol_from_name or pattern:
        why = "--symbol-from-name" if s.symbol_from_name else "the format's file-name pattern"
        return constant_symbol(
            symbol_from_name(s.symbol_from_name or pattern, ctx.path, why), n_rows
        )
    return None


def _need_kind(ctx: Context, kind: str, fmt: str, what: str) -> None:
    if ctx.kind != kind:
        raise TickfeaturesError(
            f"{ctx.path.name}: a {fmt} file holds {what}: load it with `tickfeatures load {kind}`"
        )


def _level_book(
    rows: Rows,
    cols: dict[str, pa.Array],
    levels: int,
    price_of: Callable[[np.ndarray], np.ndarray] | None = None,
    empty: Callable[[str, np.ndarray], np.ndarray] | None = None,
    nan_is_null: bool = False,
) -> dict[str, pa.Array]:
    """The level columns of a batch read under the table's names: prices through `price_of`,
    a level whose price is missing (or `empty`) is NULL in price and size."""
    out: dict[str, pa.Array] = {}
    for side in ("bid", "ask"):
        for level in range(1, levels + 1):
            pname, sname = f"{side}_price_{level}", f"{side}_size_{level}"
            if pname not in cols:
                continue
            raw = rows.floats(cols[pname], pname, nan_is_null)
            gone = np.isnan(raw)
            if empty is not None:
                gone |= empty(side, raw)
            price = price_of(raw) if price_of is not None else raw
            price = np.where(gone, np.nan, price)
            out[pname] = _float_array(price)
            if sname in cols:
                size = rows.floats(cols[sname], sname, nan_is_null)
                out[sname] = _float_array(np.where(gone, np.nan, size))
    return out


# Databento ---------------------------------------------------------------------------------

_DATABENTO_PX = re.compile(r"^(bid|ask)_(px|sz|ct)_(\d\d)$")


def _databento_detect(header: Sequence[str]) -> bool:
    names = set(header)
    book = {"ts_recv", "ts_event", "flags", "bid_px_00", "ask_px_00"} <= names
    bars = {"ts_event", "rtype", "open", "high", "low", "close", "volume"} <= names
    return book or bars


def _databento_plan(ctx: Context) -> Plan:
    header = set(ctx.header)
    s = ctx.settings
    is_bars = {"open", "high", "low", "close"} <= header
    if is_bars:
        _need_kind(ctx, "bars", "Databento OHLCV", "bars")
    else:
        _need_kind(ctx, "l2", "Databento MBP", "order-book records")
    ts_field = s.ts_field or ("ts_event" if is_bars else "ts_recv")
    if ts_field not in header:
        raise TickfeaturesError(
            f"{ctx.path.name}: no column {ts_field} for the timestamp (--ts-field)"
        )
    columns = {"ts": ts_field}
    symbol_column = "symbol" if "symbol" in header else "instrument_id"
    if not (s.symbol or s.symbol_from_name):
        if symbol_column not in header:
            raise TickfeaturesError(
                f"{ctx.path.name}: no symbol or instrument_id column; give --symbol"
            )
        columns["symbol"] = symbol_column
    values: list[str] = []
    if is_bars:
        for c in ("open", "high", "low", "close", "volume"):
            columns[c] = c
        values = ["open", "high", "low", "close"]
        if "rtype" in header:
            columns["rtype"] = "rtype"
    else:
        for h in ctx.header:
            m = _DATABENTO_PX.match(h)
            if m and m.group(2) != "ct" and int(m.group(3)) < schema.LEVELS:
                side, what = m.group(1), "price" if m.group(2) == "px" else "size"
                columns[f"{side}_{what}_{int(m.group(3)) + 1}"] = h
                if what == "price":
                    values.append(f"{side}_price_{int(m.group(3)) + 1}")
        if "flags" in header:
            columns["flags"] = "flags"
    # prices: decimal (pretty_px) or integers in units of 1e-9: in CSV told by the first row,
    # in Parquet and DBN by the column's type
    first = dict(zip(ctx.header, ctx.first_row, strict=False))
    samples = [x for x in (first.get(columns[v], "") for v in values) if x]
    csv_raw = bool(samples) and all(re.fullmatch(r"-?\d+", x) for x in samples)
    types = (
        {"ts": pa.string(), "flags": pa.int64(), "rtype": pa.int64()}
        if ctx.file_type == "csv"
        else {}
    )
    stamps = Stamps(zone(s.tz or "UTC"), s.ts_unit, s.ts_format)

    def undefined(side: str, raw: np.ndarray) -> np.ndarray:
        with np.errstate(invalid="ignore"):
            return raw >= DATABENTO_UNDEF

    def convert(cols: dict[str, pa.Array], n: int) -> Converted:
        rows = Rows(n)
        out: dict[str, pa.Array] = {"ts": rows.stamps(cols["ts"], stamps, ts_field)}
        sym = _symbol(ctx, None, n)
        out["symbol"] = sym if sym is not None else cols["symbol"].cast(pa.string())
        if "flags" in cols:
            flags = _filled(cols["flags"].cast(pa.int64()), np.int64)
            rows.flag(
                (flags & F_LAST) == 0, NOT_LAST, lambda r: [f"flags {int(flags[i])}" for i in r]
            )
        if "rtype" in cols:
            rtype = _filled(cols["rtype"].cast(pa.int64()), np.int64)
            rows.flag(
                rtype != 33,
                NOT_ONE_MINUTE,
                lambda r: [f"rtype {int(rtype[i])} (ohlcv-1m is 33)" for i in r],
            )
        first_price = next(cols[k] for k in values)
        raw = csv_raw if ctx.file_type == "csv" else pa.types.is_integer(first_price.type)
        scale = s.price_scale or (1e-9 if raw else None)

        def price_of(v: np.ndarray) -> np.ndarray:
            return scale_values(v, scale)

        if is_bars:
            for c in ("open", "high", "low", "close"):
                v = rows.floats(cols[c], c, nan_is_null=True)
                out[c] = _float_array(np.where(undefined("", v), np.nan, price_of(v)))
            out["volume"] = _float_array(rows.floats(cols["volume"], "volume"))
        else:
            out.update(
                _level_book(rows, cols, schema.LEVELS, price_of, undefined, nan_is_null=True)
            )
        return rows.done(out)

    return Plan(columns, convert, types)


# Tardis ------------------------------------------------------------------------------------

_TARDIS_LEVEL = re.compile(r"^(bids|asks)\[(\d+)\]\.(price|amount)$")


def _tardis_detect(header: Sequence[str]) -> bool:
    names = set(header)
    base = {"exchange", "symbol", "timestamp", "local_timestamp"} <= names
    return base and ("asks[0].price" in names or {"ask_price", "bid_price", "ask_amount"} <= names)


def _tardis_plan(ctx: Context) -> Plan:
    _need_kind(ctx, "l2", "Tardis book_snapshot or quotes", "order-book snapshots")
    s = ctx.settings
    ts_field = s.ts_field or "local_timestamp"
    if ts_field not in ctx.header:
        raise TickfeaturesError(
            f"{ctx.path.name}: no column {ts_field} for the timestamp (--ts-field)"
        )
    columns = {"ts": ts_field}
    if _symbol(ctx, None, 0) is None:
        columns["symbol"] = "symbol"
    for h in ctx.header:
        m = _TARDIS_LEVEL.match(h)
        if m and int(m.group(2)) < schema.LEVELS:
            side = "bid" if m.group(1) == "bids" else "ask"
            what = "price" if m.group(3) == "price" else "size"
            columns[f"{side}_{what}_{int(m.group(2)) + 1}"] = h
    for side in ("bid", "ask"):
        if f"{side}_price" in ctx.header:
            columns[f"{side}_price_1"] = f"{side}_price"
            columns[f"{side}_size_1"] = f"{side}_amount"
    stamps = Stamps(zone(s.tz or "UTC"), s.ts_unit or "us", s.ts_format)

    def convert(cols: dict[str, pa.Array], n: int) -> Converted:
        rows = Rows(n)
        out: dict[str, pa.Array] = {"ts": rows.stamps(cols["ts"], stamps, ts_field)}
        sym = _symbol(ctx, None, n)
        out["symbol"] = sym if sym is not None else cols["symbol"]
        out.update(_level_book(rows, cols, schema.LEVELS, lambda v: scale_values(v, s.price_scale)))
        return rows.done(out)

    return Plan(columns, convert, {"ts": pa.string()} if ctx.file_type == "csv" else {})


# HistData ----------------------------------------------------------------------------------

HISTDATA_TZ = "-05:00"  # EST without daylight saving, all year


def _histdata_plan(
    fields: dict[str, str], layout: str, bars: bool, symbol_pattern: str
) -> Callable[[Context], Plan]:
    def plan(ctx: Context) -> Plan:
        if bars:
            _need_kind(ctx, "bars", "HistData M1", "one-minute bars")
        else:
            _need_kind(ctx, "l2", "HistData tick", "quotes (level 1)")
        s = ctx.settings
        stamps = Stamps(zone(s.tz or HISTDATA_TZ), None, s.ts_format or layout)
        columns = dict(fields)

        def convert(cols: dict[str, pa.Array], n: int) -> Converted:
            rows = Rows(n)
            stamp = (
                cols["stamp"]
                if "stamp" in cols
                else pc.binary_join_element_wise(
                    cols["date"].cast(pa.string()), cols["time"].cast(pa.string()), " "
                )
            )
            out: dict[str, pa.Array] = {"ts": rows.stamps(stamp, stamps, "stamp")}
            out["symbol"] = _symbol(ctx, symbol_pattern, n)
            if bars:
                for c in ("open", "high", "low", "close"):
                    out[c] = _float_array(scale_values(rows.floats(cols[c], c), s.price_scale))
                # HistData documents its volume as always 0: no volume, not a zero one
                out["volume"] = pa.nulls(n, pa.float64())
            else:
                for side in ("bid", "ask"):
                    out[f"{side}_price_1"] = _float_array(
                        scale_values(rows.floats(cols[side], side), s.price_scale)
                    )
            return rows.done(out)

        return Plan(
            columns,
            convert,
            {"stamp": pa.string(), "date": pa.string(), "time": pa.string()},
        )

    return plan


# Dukascopy ---------------------------------------------------------------------------------

_DUKASCOPY_TIME = ("Gmt time", "Local time", "Time (UTC)", "Time (GMT)")


def _dukascopy_detect(header: Sequence[str]) -> bool:
    return (
        bool(header)
        and header[0] in _DUKASCOPY_TIME
        and ({"Open", "High", "Low", "Close"} <= set(header) or {"Ask", "Bid"} <= set(header))
    )


def _dukascopy_plan(ctx: Context) -> Plan:
    s = ctx.settings
    header = set(ctx.header)
    bars = {"Open", "High", "Low", "Close"} <= header
    if bars:
        _need_kind(ctx, "bars", "Dukascopy candle", "bars")
        columns = {
            "stamp": ctx.header[0],
            "open": "Open",
            "high": "High",
            "low": "Low",
            "close": "Close",
        }
        if "Volume" in header:
            columns["volume"] = "Volume"
    else:
        _need_kind(ctx, "l2", "Dukascopy tick", "quotes (level 1)")
        columns = {"stamp": ctx.header[0], "ask_price_1": "Ask", "bid_price_1": "Bid"}
        for side, name in (("ask", "AskVolume"), ("bid", "BidVolume")):
            if name in header:
                columns[f"{side}_size_1"] = name
    first = ctx.first_row[0] if ctx.first_row else ""
    layout = s.ts_format
    if layout is None:
        stamp = re.sub(r"\s*GMT[+-]\d{4}$", "", first)
        if re.fullmatch(r"\d\d\.\d\d\.\d{4} \d\d:\d\d:\d\d\.\d+", stamp):
            layout = "%d.%m.%Y %H:%M:%S.%f"
        elif re.fullmatch(r"\d{4}\.\d\d\.\d\d \d\d:\d\d:\d\d\.\d+", stamp):
            layout = "%Y.%m.%d %H:%M:%S.%f"
        elif re.fullmatch(r"\d\d\.\d\d\.\d{4} \d\d:\d\d:\d\d", stamp):
            layout = "%d.%m.%Y %H:%M:%S"
    stamps = Stamps(zone(s.tz or "UTC"), None, layout)

    def convert(cols: dict[str, pa.Array], n: int) -> Converted:
        rows = Rows(n)
        text = cols["stamp"].cast(pa.string())
        offsets = np.zeros(n, dtype=np.int64)
        if pc.any(pc.match_substring(text, "GMT")).as_py():
            text, offsets = _gmt_suffix(text)
        us, nulls, bad = stamps(text)
        rows.flag(
            bad, BAD_TS, lambda r: [f"{ctx.header[0]} {cols['stamp'][int(i)].as_py()!r}" for i in r]
        )
        out: dict[str, pa.Array] = {
            "ts": pa.array(us - offsets, type=pa.timestamp("us", "UTC"), mask=nulls | bad),
            "symbol": _symbol(ctx, r"^([A-Za-z0-9]+?)_", n),
        }
        for key in columns:
            if key == "stamp":
                continue
            values = rows.floats(cols[key], key)
            if key in ("open", "high", "low", "close") or "_price_" in key:
                values = scale_values(values, s.price_scale)
            out[key] = _float_array(values)
        return rows.done(out)

    return Plan(columns, convert, {"stamp": pa.string()})


# Binance -----------------------------------------------------------------------------------

BINANCE_KLINES = (
    "open_time",
    "open",
    "high",
    "low",
    "close",
    "volume",
    "close_time",
    "quote_volume",
    "count",
    "taker_buy_volume",
    "taker_buy_quote_volume",
    "ignore",
)
_BINANCE_NAME = r"^([A-Z0-9]+)-(1s|1m|3m|5m|15m|30m|1h|2h|4h|6h|8h|12h|1d|3d|1w|1mo)-\d{4}-\d\d"


def _binance_plan(ctx: Context) -> Plan:
    _need_kind(ctx, "bars", "Binance klines", "bars")
    m = re.match(_BINANCE_NAME, ctx.path.name)
    if m and m.group(2) != "1m":
        raise TickfeaturesError(
            f"{ctx.path.name}: {m.group(2)} klines; market.bars_1m holds one-minute bars (1m files)"
        )
    s = ctx.settings
    stamps = Stamps(zone(s.tz or "UTC"), s.ts_unit, None)
    columns = {
        "ts": "open_time",
        "open": "open",
        "high": "high",
        "low": "low",
        "close": "close",
        "volume": "volume",
    }

    def convert(cols: dict[str, pa.Array], n: int) -> Converted:
        rows = Rows(n)
        out: dict[str, pa.Array] = {"ts": rows.stamps(cols["ts"], stamps, "open_time")}
        out["symbol"] = _symbol(ctx, r"^([A-Z0-9]+)-", n)
        for c in ("open", "high", "low", "close"):
            out[c] = _float_array(scale_values(rows.floats(cols[c], c), s.price_scale))
        out["volume"] = _float_array(rows.floats(cols["volume"], "volume"))
        return rows.done(out)

    return Plan(columns, convert, {"ts": pa.int64()})


# LOBSTER -----------------------------------------------------------------------------------

LOBSTER_NAME = r"^([A-Za-z0-9.]+)_(\d{4}-\d\d-\d\d)_\d+_\d+_(orderbook|message)_(\d+)\.csv"
LOBSTER_TZ = "America/New_York"


def _lobster_plan(ctx: Context) -> Plan:
    # the orderbook file's columns; the reader (load.LobsterReader) adds the message file's time
    _need_kind(ctx, "l2", "LOBSTER", "order books")
    m = re.match(LOBSTER_NAME, ctx.path.name)
    if m is None or m.group(3) != "orderbook":
        raise TickfeaturesError(
            f"{ctx.path.name}: a LOBSTER order-book file is named"
            " TICKER_YYYY-MM-DD_START_END_orderbook_LEVELS.csv (its message file beside it)"
        )
    s = ctx.settings
    levels = len(ctx.header) // 4
    columns: dict[str, str] = {}
    for level in range(1, min(levels, schema.LEVELS) + 1):
        for what in ("ask_price", "ask_size", "bid_price", "bid_size"):
            columns[f"{what}_{level}"] = f"{what}_{level}"
    day = datetime.strptime(m.group(2), "%Y-%m-%d").replace(tzinfo=UTC)
    midnight = int(day.timestamp()) * 1_000_000
    tz = zone(s.tz or LOBSTER_TZ)

    def convert(cols: dict[str, pa.Array], n: int) -> Converted:
        rows = Rows(n)
        # seconds after midnight as written (up to nanoseconds), rounded to microseconds
        seconds, parsed = _decimal_seconds_us(cols["seconds"])
        missing = _bits(cols["seconds"].is_null())
        rows.flag(
            ~parsed & ~missing,
            BAD_TS,
            lambda r: [f"time {cols['seconds'][int(i)].as_py()!r}" for i in r],
        )
        us = local_to_utc(midnight + seconds, tz)
        out: dict[str, pa.Array] = {
            "ts": pa.array(us, type=pa.timestamp("us", "UTC"), mask=~parsed)
        }
        out["symbol"] = _symbol(ctx, r"^([A-Za-z0-9.]+?)_\d{4}-", n)

        def empty(side: str, raw: np.ndarray) -> np.ndarray:
            with np.errstate(invalid="ignore"):
                return np.abs(raw) >= LOBSTER_DUMMY

        out.update(
            _level_book(
                rows, cols, schema.LEVELS, lambda v: scale_values(v, s.price_scale or 1e-4), empty
            )
        )
        return rows.done(out)

    return Plan(columns, convert)


def _decimal_seconds_us(text: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """Seconds written as decimals (`34200.004241176`) as microseconds from their digits
    (rounded half up on the seventh decimal), and which values had that form."""
    text = pc.utf8_trim_whitespace(text.cast(pa.string()))
    ok = _bits(pc.fill_null(pc.match_substring_regex(text, r"^\d{1,6}(\.\d*)?$"), False))
    safe = pc.if_else(pa.array(ok), text, pa.scalar("0"))
    dotted = pc.if_else(
        pc.match_substring(safe, "."), safe, pc.binary_join_element_wise(safe, "0", ".")
    )
    parts = pc.split_pattern(dotted, ".", max_splits=1)
    whole = _filled(pc.list_element(parts, 0).cast(pa.int64()), np.int64)
    frac = pc.utf8_slice_codeunits(pc.utf8_rpad(pc.list_element(parts, 1), 7, "0"), 0, 7)
    seven = _filled(frac.cast(pa.int64()), np.int64)
    return whole * 1_000_000 + (seven + 5) // 10, ok


def lobster_message_path(path: Path) -> Path:
    name = re.sub(r"_orderbook_(\d+)\.csv", r"_message_\1.csv", path.name)
    return path.with_name(name)


FORMATS: dict[str, NamedFormat] = {}


def _register(fmt: NamedFormat) -> None:
    for name in (fmt.name, *fmt.aliases):
        FORMATS[name] = fmt


_register(
    NamedFormat(
        "databento",
        ("l2", "bars"),
        "Databento MBP-10, MBP-1 (l2) and OHLCV-1m (bars): CSV, Parquet, DBN (.dbn, .dbn.zst)",
        _databento_plan,
        _databento_detect,
        aliases=("databento-mbp10", "databento-mbp1", "databento-ohlcv"),
    )
)
_register(
    NamedFormat(
        "tardis",
        ("l2",),
        "Tardis book_snapshot_N and quotes CSV",
        _tardis_plan,
        _tardis_detect,
    )
)
_register(
    NamedFormat(
        "histdata-ascii-m1",
        ("bars",),
        "HistData.com ASCII one-minute bars",
        _histdata_plan(
            {"stamp": "stamp", "open": "open", "high": "high", "low": "low", "close": "close"},
            "%Y%m%d %H%M%S",
            True,
            r"^DAT_ASCII_([A-Z0-9]+)_M1_",
        ),
        file_pattern=r"^DAT_ASCII_([A-Z0-9]+)_M1_",
        names=("stamp", "open", "high", "low", "close", "volume"),
        delimiter=";",
    )
)
_register(
    NamedFormat(
        "histdata-mt-m1",
        ("bars",),
        "HistData.com MetaTrader one-minute bars",
        _histdata_plan(
            {
                "date": "date",
                "time": "time",
                "open": "open",
                "high": "high",
                "low": "low",
                "close": "close",
            },
            "%Y.%m.%d %H:%M",
            True,
            r"^DAT_MT_([A-Z0-9]+)_M1_",
        ),
        file_pattern=r"^DAT_MT_([A-Z0-9]+)_M1_",
        names=("date", "time", "open", "high", "low", "close", "volume"),
    )
)
_register(
    NamedFormat(
        "histdata-ascii-tick",
        ("l2",),
        "HistData.com ASCII ticks (level 1)",
        _histdata_plan(
            {"stamp": "stamp", "bid": "bid", "ask": "ask"},
            "%Y%m%d %H%M%S%f",
            False,
            r"^DAT_ASCII_([A-Z0-9]+)_T_",
        ),
        file_pattern=r"^DAT_ASCII_([A-Z0-9]+)_T_",
        names=("stamp", "bid", "ask", "volume"),
    )
)
_register(
    NamedFormat(
        "dukascopy",
        ("l2", "bars"),
        "Dukascopy CSV exports: candles (bars) and ticks (l2)",
        _dukascopy_plan,
        _dukascopy_detect,
    )
)
_register(
    NamedFormat(
        "binance-klines",
        ("bars",),
        "Binance klines CSV (data.binance.vision), 1m",
        _binance_plan,
        file_pattern=_BINANCE_NAME,
        names=BINANCE_KLINES,
        header_optional=True,  # futures klines carry one
    )
)
_register(
    NamedFormat(
        "lobster",
        ("l2",),
        "LOBSTER order book with its message file",
        _lobster_plan,
        file_pattern=LOBSTER_NAME,
    )
)


def by_file_name(path: Path) -> NamedFormat | None:
    """The named format a file's name says, for the formats whose files have no header."""
    name = path.name
    for fmt in dict.fromkeys(FORMATS.values()):
        if fmt.file_pattern and re.match(fmt.file_pattern, name):
            if fmt.name == "lobster" and "_message_" in name:
                continue
            return fmt
    return None


def by_header(header: Sequence[str]) -> NamedFormat | None:
    for fmt in dict.fromkeys(FORMATS.values()):
        if fmt.detect is not None and fmt.detect(header):
            return fmt
    return None


def batches(source: Iterator, plan: Plan) -> Iterator:
    """The reader's batches converted to the table's columns by the plan."""
    for batch in source:
        if plan.convert is None or not batch.columns:
            yield batch
            continue
        converted = plan.convert(batch.columns, len(batch.lines))
        yield replace(
            batch, columns=converted.columns, reasons=converted.reasons, details=converted.details
        )


# -- opening a file ---------------------------------------------------------------------------


def _general_options(settings: Settings) -> bool:
    return (
        any(
            getattr(settings, name) is not None
            for name in (
                "symbol",
                "symbol_from_name",
                "tz",
                "ts_unit",
                "ts_format",
                "price_scale",
                "delimiter",
                "columns",
            )
        )
        or settings.no_header
    )


class Opened:
    """A file opened for loading: the format read, its reader, and the batches converted to
    the table's columns."""

    def __init__(
        self, label: str, reader: object, plan: Plan | None, extra: Callable | None = None
    ) -> None:
        self.label = label
        self.reader = reader
        self.plan = plan
        self.extra = extra  # adds columns from a companion file (LOBSTER's message times)

    @property
    def empty(self) -> bool:
        return self.reader.empty  # type: ignore[attr-defined]

    def batches(self) -> Iterator:
        source = self.reader.batches()  # type: ignore[attr-defined]
        if self.extra is not None:
            source = (self.extra(b) for b in source)
        return source if self.plan is None else batches(source, self.plan)

    def close(self) -> None:
        self.reader.close()  # type: ignore[attr-defined]


def open_file(
    path: Path,
    kind: str,
    spec_columns: Sequence[str],
    optional: Sequence[str],
    price_columns: Sequence[str],
    mapping: dict[str, str],
    settings: Settings,
) -> Opened:
    """The file opened in its format: `settings.format`, else the format its name or header
    names, else the table's own columns with the general options."""
    from tickfeatures import readers

    named = FORMATS.get(settings.format or "")
    if named is not None and kind not in named.kinds:
        raise TickfeaturesError(
            f"--format {settings.format}: holds {' or '.join(named.kinds)} data, not {kind}"
        )
    detect = settings.format is None and not settings.no_header
    # a vendor's zip is named after the file inside (HistData's HISTDATA_COM_ASCII_...zip
    # holds DAT_ASCII_...csv): that name tells the format and the symbol
    member = readers.zip_member(path)
    named_path = path.with_name(Path(member).name) if member else path
    if named is None and detect and not mapping:
        named = by_file_name(named_path)
    if named is not None and named.name == "databento" and _is_dbn(path):
        from tickfeatures.dbn import open_dbn

        return open_dbn(path, kind, settings)
    if named is None and _is_dbn(path):
        from tickfeatures.dbn import open_dbn

        return open_dbn(path, kind, settings)
    file_type, compressed = readers.detect_format(path)
    if file_type == "jsonl":
        if named is not None or _general_options(settings):
            raise TickfeaturesError(
                f"{path.name}: JSON lines are read in the table's own columns; --format and the"
                " general options apply to CSV and Parquet files"
            )
        reader = readers.JsonLinesReader(path, compressed, spec_columns, mapping, optional)
        return Opened("jsonl", reader, None)
    if file_type == "parquet":
        pq_reader = readers.ParquetReader(path)
        header = tuple(pq_reader.header)
        if named is None and detect and not mapping:
            named = by_header(header)
        if named is not None:
            plan = named.plan(Context(kind, path, header, (), settings, "parquet"))
        elif pq_reader.nested:
            plan = generic_plan(
                header,
                [c for c in spec_columns if c in ("symbol", "ts")],
                (),
                price_columns,
                mapping,
                settings,
                path,
                readers.resolve_columns,
            )
        else:
            plan = generic_plan(
                header,
                spec_columns,
                optional,
                price_columns,
                mapping,
                settings,
                path,
                readers.resolve_columns,
            )
        pq_reader.bind(plan.columns)
        return Opened(named.name if named else "parquet", pq_reader, plan)
    extra = None
    if member and (named is not None and named.name == "lobster"):
        raise TickfeaturesError(f"{path.name}: unzip LOBSTER files: the message file goes beside")
    if named is not None and named.name == "lobster":
        reader, extra = _open_lobster(path, compressed)
    elif named is not None and named.names:
        reader = readers.CsvReader(
            path,
            compressed,
            settings.delimiter or named.delimiter,
            named.names,
            header_optional=named.header_optional,
        )
    elif settings.no_header:
        reader = readers.CsvReader(path, compressed, settings.delimiter or ",", settings.columns)
    else:
        reader = readers.CsvReader(path, compressed, settings.delimiter or ",")
        if named is None and detect and reader.header:
            named = by_header(reader.header)
            if named is not None and mapping:
                raise TickfeaturesError(
                    f"{path.name}: the header is {named.title.split(':')[0]}'s: load it with"
                    f" --format {named.name} (a --map reads the table's own columns: add"
                    " --format csv for that)"
                )
            if named is not None and kind not in named.kinds:
                named = None
    if reader.empty:
        return Opened("csv", reader, None)
    ctx = Context(kind, named_path, tuple(reader.header), tuple(reader.first_row), settings, "csv")
    if named is not None:
        plan = named.plan(ctx)
    else:
        plan = generic_plan(
            reader.header,
            spec_columns,
            optional,
            price_columns,
            mapping,
            settings,
            named_path,
            readers.resolve_columns,
        )
    reader.bind(plan.columns, plan.types)
    return Opened(named.name if named else "csv", reader, plan, extra)


def _is_dbn(path: Path) -> bool:
    name = path.name.lower()
    return name.endswith((".dbn", ".dbn.zst", ".dbn.zstd"))


def _open_lobster(path: Path, compressed: bool) -> tuple[object, Callable]:
    """The order-book file's reader, and the function that adds each row's time from the
    message file (the same line of it)."""
    import pyarrow.csv as pacsv

    from tickfeatures import readers

    message = lobster_message_path(path)
    if not message.is_file():
        raise TickfeaturesError(
            f"{path.name}: LOBSTER's message file {message.name} is not beside it (its times are"
            " the snapshots' times)"
        )
    probe = readers.CsvReader(path, compressed)
    width = len(probe.header)
    probe.close()
    if width == 0 or width % 4:
        raise TickfeaturesError(
            f"{path.name}: a LOBSTER order-book line has 4 fields per level, this one {width}"
        )
    names = tuple(
        f"{what}_{level}"
        for level in range(1, width // 4 + 1)
        for what in ("ask_price", "ask_size", "bid_price", "bid_size")
    )
    reader = readers.CsvReader(path, compressed, ",", names)
    try:
        times = (
            pacsv.read_csv(
                message,
                read_options=pacsv.ReadOptions(autogenerate_column_names=True),
                convert_options=pacsv.ConvertOptions(
                    include_columns=["f0"], column_types={"f0": pa.string()}
                ),
            )
            .column("f0")
            .combine_chunks()
        )
    except (pa.ArrowInvalid, OSError) as exc:
        raise TickfeaturesError(
            f"{message.name}: not a readable LOBSTER message file: {exc}"
        ) from None

    def add_times(batch: object) -> object:
        lines = batch.lines  # type: ignore[attr-defined]
        if not len(lines):
            return batch
        inside = lines <= len(times)
        picked = times.take(pa.array(np.where(inside, lines - 1, 0)))
        picked = pc.if_else(pa.array(inside), picked, pa.scalar(None, pa.string()))
        columns = dict(batch.columns)  # type: ignore[attr-defined]
        columns["seconds"] = picked
        return replace(batch, columns=columns)  # type: ignore[type-var]

    return reader, add_times
