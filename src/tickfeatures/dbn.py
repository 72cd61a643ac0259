"""Databento's binary encoding (DBN: `.dbn`, `.dbn.zst`): MBP-10, MBP-1 and OHLCV-1m records.

The metadata (symbol mappings) is decoded by Databento's own `databento_dbn` package; the
records, fixed-size C structs, are read as numpy structured arrays at memory speed (a Python
object per record costs about 20 us). Prices are int64 in units of 1e-9 with UNDEF_PRICE
(INT64_MAX) for an empty level, stamps uint64 nanoseconds since the epoch (UTC). Records carry
an instrument id; the symbol is the metadata's raw symbol mapped to it. The rows then go
through the Databento format's conversion (formats.py), as the CSV's do.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from pathlib import Path

import numpy as np
import pyarrow as pa

from tickfeatures import formats, readers
from tickfeatures.errors import TickfeaturesError

BATCH = 65_536
_EPOCH_DAY = date(1970, 1, 1)
_HEADER = [
    ("length", "u1"),
    ("rtype", "u1"),
    ("publisher_id", "<u2"),
    ("instrument_id", "<u4"),
    ("ts_event", "<u8"),
]
_MBP = [
    ("price", "<i8"),
    ("size", "<u4"),
    ("action", "S1"),
    ("side", "S1"),
    ("flags", "u1"),
    ("depth", "u1"),
    ("ts_recv", "<u8"),
    ("ts_in_delta", "<i4"),
    ("sequence", "<u4"),
]


def _levels(n: int) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    for i in range(n):
        out += [
            (f"bid_px_{i:02d}", "<i8"),
            (f"ask_px_{i:02d}", "<i8"),
            (f"bid_sz_{i:02d}", "<u4"),
            (f"ask_sz_{i:02d}", "<u4"),
            (f"bid_ct_{i:02d}", "<u4"),
            (f"ask_ct_{i:02d}", "<u4"),
        ]
    return out


# rtype -> (schema, record layout)
LAYOUTS: dict[int, tuple[str, np.dtype]] = {
    0x0A: ("mbp-10", np.dtype(_HEADER + _MBP + _levels(10))),
    0x01: ("mbp-1", np.dtype(_HEADER + _MBP + _levels(1))),
    0x21: (
        "ohlcv-1m",
        np.dtype(
            [
                *_HEADER,
                ("open", "<i8"),
                ("high", "<i8"),
                ("low", "<i8"),
                ("close", "<i8"),
                ("volume", "<u8"),
            ]
        ),
    ),
}


def _read(path: Path) -> bytes:
    data = path.read_bytes()
    if data[:4] == b"\x28\xb5\x2f\xfd":  # a zstd frame
        import zstandard

        try:
            data = zstandard.ZstdDecompressor().decompressobj().decompress(data)
        except zstandard.ZstdError as exc:
            raise TickfeaturesError(f"{path.name}: not a readable zstd stream: {exc}") from None
    if data[:3] != b"DBN":
        raise TickfeaturesError(f"{path.name}: not a DBN file (it does not start with DBN)")
    return data


class DbnReader:
    """A DBN file's records as batches of its columns, under Databento's CSV column names."""

    def __init__(self, path: Path) -> None:
        import databento_dbn

        self.path = path
        data = _read(path)
        length = int.from_bytes(data[4:8], "little")
        start = 8 + length
        decoder = databento_dbn.DBNDecoder()
        decoder.write(data[:start])
        try:
            metadata = decoder.decode()[0]
        except Exception as exc:  # the package raises its own ValueError subclasses
            raise TickfeaturesError(f"{path.name}: unreadable DBN metadata: {exc}") from None
        # instrument id -> [(first day, day after the last, raw symbol)]: an id names the symbol
        # of the day it is used on (venues reassign ids)
        self.symbols: dict[int, list[tuple[int, int, str]]] = {}
        for raw, intervals in (metadata.mappings or {}).items():
            for interval in intervals:
                try:
                    days = (
                        (interval["start_date"] - _EPOCH_DAY).days,
                        (interval["end_date"] - _EPOCH_DAY).days,
                    )
                    self.symbols.setdefault(int(interval["symbol"]), []).append((*days, raw))
                except (TypeError, ValueError, KeyError, AttributeError):
                    continue
        body = np.frombuffer(data, dtype=np.uint8, offset=start)
        self.rtype = int(body[1]) if len(body) > 1 else None
        if self.rtype is not None and self.rtype not in LAYOUTS:
            raise TickfeaturesError(
                f"{path.name}: DBN records of rtype {self.rtype}; the loader reads MBP-10,"
                " MBP-1 (l2) and OHLCV-1m (bars)"
            )
        self.schema, self.dtype = LAYOUTS[self.rtype] if self.rtype is not None else ("", None)
        size = self.dtype.itemsize if self.dtype is not None else 1
        if len(body) % size or (len(body) and (body[::size] != size // 4).any()):
            raise TickfeaturesError(
                f"{path.name}: DBN records of mixed kinds or a truncated record; the loader"
                " reads files of one schema"
            )
        self.records = body.view(self.dtype) if self.dtype is not None else None
        self.header = (*tuple(self.dtype.names or ()), "symbol") if self.dtype else ()
        self.columns: dict[str, str] = {}

    @property
    def empty(self) -> bool:
        return self.records is None

    def bind(self, columns: dict[str, str], types: object = None) -> None:
        self.columns = columns

    def batches(self) -> Iterator[readers.Batch]:
        if self.records is None:
            return
        total = len(self.records)
        for first in range(0, total, BATCH):
            part = self.records[first : first + BATCH]
            out: dict[str, pa.Array] = {}
            for key, src in self.columns.items():
                if src == "symbol":
                    out[key] = pa.array(self._names(part), type=pa.string())
                else:
                    values = part[src]
                    out[key] = pa.array(
                        values.astype(np.int64) if values.dtype.kind == "u" else values
                    )
            lines = np.arange(first + 1, first + len(part) + 1, dtype=np.int64)
            yield readers.Batch(
                lines, out, [], int(self.path.stat().st_size * (first + len(part)) / max(total, 1))
            )

    def _names(self, part: np.ndarray) -> np.ndarray:
        """Each record's raw symbol on its day (UTC date of ts_event); an id the metadata
        does not map is its number; a mapped id on a day outside its mappings, NULL (the
        row is then quarantined as missing its symbol)."""
        ids = part["instrument_id"].astype(np.int64)
        day = (part["ts_event"] // 86_400_000_000_000).astype(np.int64)
        names = np.full(len(part), None, dtype=object)
        for i in np.unique(ids):
            rows = ids == i
            spans = self.symbols.get(int(i))
            if spans is None:
                names[rows] = str(int(i))
                continue
            for first, after, raw in spans:
                names[rows & (day >= first) & (day < after)] = raw
        return names

    def close(self) -> None:
        self.records = None


def open_dbn(path: Path, kind: str, settings: formats.Settings) -> formats.Opened:
    reader = DbnReader(path)
    if reader.empty:
        return formats.Opened("databento", reader, None)
    ctx = formats.Context(kind, path, reader.header, (), settings, "dbn")
    plan = formats.FORMATS["databento"].plan(ctx)
    reader.bind(plan.columns)
    return formats.Opened("databento", reader, plan)
