"""Input files as batches of Arrow columns: wide CSV, JSON lines and Parquet, optionally gzip.

Every reader yields `Batch`es in file order. A batch carries the rows that parsed, under the
keys its plan binds (the table's column names, or a vendor format's own: formats.py turns
those into the table's), with their line numbers, and the
rows that could not be parsed at all (`Reject`: malformed line, invalid UTF-8, bad JSON), so
that every input row is accounted for. Values keep the type they were read with (float64 on
the fast path, text where a block needed the slow path); `load.validate` turns them into
numbers and reasons.

Fast path: blocks of ~16 MB of whole lines are parsed by Arrow's multi-threaded CSV/JSON
readers. A block Arrow rejects (a line with the wrong number of fields, invalid UTF-8, a
malformed JSON line) is parsed again line by line in Python, so one bad line costs one slow
block, not a failed file.
"""

from __future__ import annotations

import csv
import difflib
import json
import os
import queue
import re
import threading
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.json as pajson

from tickfeatures import schema
from tickfeatures.errors import TickfeaturesError

try:  # ISA-L's inflate: the same output as zlib's in half the time
    from isal import isal_zlib as _inflate

    _INFLATE_ERRORS: tuple[type[BaseException], ...] = (zlib.error, _inflate.IsalError)
except ImportError:  # pragma: no cover - isal is a dependency; zlib is the fallback
    _inflate = zlib  # type: ignore[assignment]
    _INFLATE_ERRORS = (zlib.error,)

READ_SIZE = 1 << 20  # decompressed bytes per read: what a broken gzip stream can cost
# bytes of whole lines parsed at once (the environment variable is for tests and tuning)
BLOCK_SIZE = int(os.environ.get("TICKFEATURES_LOAD_BLOCK", 16 << 20))
PARQUET_BATCH = 65_536
NULL_TOKENS = ["", "NULL", "null", "NA", "N/A", "None", "\\N"]


@dataclass
class Reject:
    """An input row that could not be parsed into fields."""

    line: int | None
    reason: str
    detail: str | None
    record: dict[str, Any]


@dataclass
class Batch:
    lines: np.ndarray  # int64 line numbers (CSV: the header is line 1; Parquet: row number)
    columns: dict[str, pa.Array]  # canonical name -> array, all of len(lines)
    rejects: list[Reject] = field(default_factory=list)
    position: int = 0  # bytes of the file consumed so far (compressed), for progress
    # rows a format sets aside (a vendor's record that is not a book state): reason, detail
    reasons: np.ndarray | None = None
    details: np.ndarray | None = None

    @property
    def rows_in(self) -> int:
        return len(self.lines) + len(self.rejects)


class BrokenInput(Exception):
    """The file stopped being readable at `line` (the first line not read completely)."""

    def __init__(self, message: str, line: int, partial: bytes = b"") -> None:
        super().__init__(message)
        self.line = line
        self.partial = partial


# -- format and column mapping ----------------------------------------------------------------


def detect_format(path: Path) -> tuple[str, bool]:
    """(format, gzip) from the name, else from the first bytes."""
    with path.open("rb") as fh:
        magic = fh.read(4)
    compressed = magic[:2] == b"\x1f\x8b" or path.suffix == ".gz"
    member = zip_member(path)
    named = Path(member) if member else path
    suffixes = [s.lower() for s in named.suffixes if s.lower() not in (".gz", ".zst", ".zip")]
    last = suffixes[-1] if suffixes else ""
    if last in (".parquet", ".pq") or magic == b"PAR1":
        return "parquet", False
    if last in (".jsonl", ".ndjson", ".json"):
        return "jsonl", compressed
    if last in (".csv", ".txt"):
        return "csv", compressed
    source = Source(path, compressed)
    try:
        head = source.read(256).lstrip()
    except BrokenInput:
        head = b""
    finally:
        source.close()
    return ("jsonl" if head[:1] == b"{" else "csv"), compressed


ALIASES: dict[str, tuple[str, ...]] = {
    "ts": ("timestamp", "time", "datetime", "date_time", "ts_event", "snapshot_time"),
    "symbol": ("pair", "instrument", "ticker", "sym", "currency_pair", "market"),
}
_LEVEL_ALIASES = {"price": ("px", "prc"), "size": ("sz", "qty", "quantity", "volume", "amount")}


def _aliases(name: str) -> tuple[str, ...]:
    if name in ALIASES:
        return ALIASES[name]
    m = re.fullmatch(r"(bid|ask)_(price|size)_(\d+)", name)
    if not m:
        return ()
    side, what, level = m.groups()
    forms = ("{side}_{what}_{level}", "{side}{what}{level}", "{side}_{what}{level}")
    return (
        *(
            form.format(side=side, what=alt, level=level)
            for alt in _LEVEL_ALIASES[what]
            for form in forms
        ),
        f"{side}{what}{level}",
    )


def parse_mapping(text: str | None, path: Path | None = None) -> dict[str, str]:
    """`src=dst,src2=dst2` (and/or a file of such pairs, one per line or JSON) as a dict."""
    pairs: dict[str, str] = {}
    chunks: list[str] = []
    if path is not None:
        try:
            body = path.read_text()
        except UnicodeDecodeError as exc:
            raise TickfeaturesError(f"{path}: not UTF-8 text ({exc.reason})") from None
        if body.lstrip().startswith("{"):
            try:
                loaded = json.loads(body)
            except json.JSONDecodeError as exc:
                raise TickfeaturesError(
                    f"{path}: not valid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}"
                ) from None
            if not isinstance(loaded, dict):
                raise TickfeaturesError(f"{path}: a mapping file holds one JSON object")
            pairs.update({str(k): str(v) for k, v in loaded.items()})
        else:
            chunks += [ln for ln in body.splitlines() if ln.strip() and not ln.startswith("#")]
    if text:
        chunks += text.split(",")
    for chunk in chunks:
        src, sep, dst = chunk.partition("=")
        if not sep or not src.strip() or not dst.strip():
            raise TickfeaturesError(f"--map: expected src=dst, got {chunk.strip()!r}")
        pairs[src.strip()] = dst.strip()
    return pairs


def _summarise(columns: Sequence[str]) -> str:
    """Runs of levels as 'bid_price_2..10', other names as they are."""
    out: list[str] = []
    i = 0
    while i < len(columns):
        stem, _, level = columns[i].rpartition("_")
        j = i
        if level.isdigit():
            while j + 1 < len(columns) and columns[j + 1] == f"{stem}_{int(level) + (j + 1 - i)}":
                j += 1
        out.append(f"{columns[i]}..{columns[j].rpartition('_')[2]}" if j - i >= 2 else columns[i])
        if 0 < j - i < 2:
            out.extend(columns[i + 1 : j + 1])
        i = j + 1
    return ", ".join(out)


def _tokens(name: str) -> set[str]:
    return {t for t in re.split(r"[^a-z0-9]+", name.lower()) if t}


def resolve_columns(
    required: Sequence[str],
    header: Sequence[str],
    mapping: dict[str, str],
    name: str,
    optional: Sequence[str] = (),
) -> dict[str, str]:
    """{canonical column: source column}. Raises one error naming what is missing.

    Order: the user's mapping; the exact name; the same name in another case; a known alias
    (the seeds' `timestamp` and `pair`, `bid_px_1`, `ask_qty_3`, ...). Columns of `optional`
    are resolved the same way when the file has them; `required` lists them too (its order
    is the table's) but their absence is no error.
    """
    unknown = [dst for dst in mapping.values() if dst not in required]
    if unknown:
        raise TickfeaturesError(
            f"--map: {', '.join(unknown)} is not a column of the table"
            f" (columns: {_summarise(list(required))})"
        )
    from tickfeatures.formats import level_columns

    absent = [src for src in mapping if src not in header]
    resolved: dict[str, str] = {dst: src for src, dst in mapping.items() if src in header}
    used = set(resolved.values())
    # the book's levels by their numbering (a 0-indexed header's level 0 is level 1), before
    # names: in a header of bid_price_0..9, bid_price_1 is the second level
    for col, src in level_columns(header, name, taken=used).items():
        if col in required and col not in resolved:
            resolved[col] = src
            used.add(src)
    lower = {h.lower(): h for h in header}
    for col in required:
        if col in resolved:
            continue
        for candidate in (col, *_aliases(col)):
            src = candidate if candidate in header else lower.get(candidate.lower())
            if src is not None and src not in used:
                resolved[col] = src
                used.add(src)
                break
    missing = [c for c in required if c not in resolved and c not in optional]
    if not missing:
        return resolved
    from tickfeatures.formats import by_header, level_of

    named = by_header(header)
    if named is not None:
        raise TickfeaturesError(
            f"{name}: the header is {named.title.split(':')[0]}'s: load it with --format"
            f" {named.name} (missing for the table's own columns: {_summarise(missing)})"
        )
    # a level column is only ever suggested for the same level: never a shifted book
    spare = [h for h in header if h not in used and level_of(h) is None]
    hints = []
    for col in missing:
        if re.fullmatch(r"(bid|ask)_(price|size)_\d+", col):
            continue
        words = {col, *_aliases(col)}
        close = [h for h in spare if _tokens(h) & words] or difflib.get_close_matches(
            col, spare, n=1, cutoff=0.75
        )
        if close:
            hints.append(f"{close[0]} (for {col}?)")
            spare.remove(close[0])
    near = f"; near matches in the file: {', '.join(hints)}" if hints else ""
    not_found = f"; --map names absent from the file: {', '.join(absent)}" if absent else ""
    fix = "; adapt the names with --map src=dst,..." if hints or absent else ""
    raise TickfeaturesError(
        f"{name}: missing required column(s) {_summarise(missing)}{near}{not_found}{fix}"
    )


# -- byte streams -----------------------------------------------------------------------------


class Source:
    """A file's decompressed bytes with the compressed position, and gzip errors named.

    gzip is inflated with zlib directly (members one after another, as gzip(1) writes them
    when files are concatenated), so a truncated file yields every byte before the break.
    """

    def __init__(self, path: Path, compressed: bool) -> None:
        self.path = path
        self.raw = path.open("rb")
        self.size = path.stat().st_size
        self.compressed = compressed
        self.inflater = _inflate.decompressobj(16 + zlib.MAX_WBITS) if compressed else None
        self.decompressed = 0
        self.consumed = 0  # compressed bytes fed to zlib
        # zstd (Databento's batch files) and zip (Binance, HistData): a stream reader whose
        # compressed position is the file's
        self.stream = _archive_stream(path, self.raw) if not compressed else None

    def _broken(self, kind: str, why: str) -> BrokenInput:
        return BrokenInput(
            f"{kind} gzip data at compressed byte {self.consumed:,} of {self.size:,}"
            f" (after {self.decompressed:,} decompressed bytes): {why}",
            line=0,
        )

    def read(self, n: int = READ_SIZE) -> bytes:
        """Up to about n decompressed bytes; b"" at the end of the file."""
        if self.stream is not None:
            try:
                data = self.stream.read(n)
            except Exception as exc:  # zstandard.ZstdError, zipfile.BadZipFile, zlib.error
                self.pending = b""
                raise BrokenInput(
                    f"corrupt compressed data at byte {self.raw.tell():,} of {self.size:,}"
                    f" (after {self.decompressed:,} decompressed bytes): {exc}",
                    line=0,
                ) from None
            self.decompressed += len(data)
            return data
        if self.inflater is None:
            data = self.raw.read(n)
            self.decompressed += len(data)
            return data
        out: list[bytes] = []
        got = 0
        while got < n:
            chunk = self.raw.read(1 << 16)  # small steps: a break loses at most this much
            if not chunk:
                if not self.inflater.eof and (self.consumed or got):
                    tail = self.inflater.flush()
                    self.decompressed += len(tail)
                    self.pending = b"".join(out) + tail
                    raise self._broken("truncated", "the file ends inside the compressed stream")
                break
            try:
                data = self.inflater.decompress(chunk)
                while self.inflater.eof and self.inflater.unused_data:
                    rest = self.inflater.unused_data
                    self.inflater = _inflate.decompressobj(16 + zlib.MAX_WBITS)
                    data += self.inflater.decompress(rest)
            except _INFLATE_ERRORS as exc:
                self.pending = b"".join(out)
                self.decompressed += len(self.pending)
                raise self._broken("corrupt", str(exc)) from None
            self.consumed += len(chunk)
            out.append(data)
            got += len(data)
            self.decompressed += len(data)
        return b"".join(out)

    def position(self) -> int:
        return self.consumed if self.compressed else self.raw.tell()

    def close(self) -> None:
        if self.stream is not None:
            self.stream.close()
        self.raw.close()


ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
ZIP_MAGIC = b"PK\x03\x04"


def zip_member(path: Path) -> str | None:
    """The data file inside a zip (a vendor's zip holds one, maybe beside a .txt report), or
    None for a file that is not a zip."""
    import zipfile

    with path.open("rb") as fh:
        if fh.read(4) != ZIP_MAGIC:
            return None
    try:
        with zipfile.ZipFile(path) as archive:
            names = [i.filename for i in archive.infolist() if not i.is_dir()]
    except (zipfile.BadZipFile, OSError) as exc:
        raise TickfeaturesError(f"{path.name}: not a readable zip file: {exc}") from None
    data = [n for n in names if n.lower().endswith((".csv", ".jsonl", ".ndjson", ".json"))]
    if len(data) != 1:
        raise TickfeaturesError(
            f"{path.name}: a zip of {len(names)} files ({', '.join(names[:5])}); the loader"
            " reads a zip holding one CSV or JSON lines file"
        )
    return data[0]


def _archive_stream(path: Path, raw: Any) -> Any:
    """A reader of the decompressed bytes of a zstd or zip file, or None."""
    magic = raw.read(4)
    raw.seek(0)
    if magic == ZSTD_MAGIC:
        import zstandard

        return zstandard.ZstdDecompressor().stream_reader(raw, read_across_frames=True)
    if magic == ZIP_MAGIC:
        import zipfile

        member = zip_member(path)
        return zipfile.ZipFile(raw).open(member)  # type: ignore[arg-type]
    return None


class PrefetchSource:
    """A Source read ahead in a thread: inflating overlaps parsing (zlib releases the GIL)."""

    def __init__(self, source: Source, depth: int = 8) -> None:
        self.source = source
        self.size = source.size
        self.queue: queue.Queue = queue.Queue(maxsize=depth)
        self.stop = threading.Event()
        self.done = False
        self.buffer = b""
        self._position = 0
        self.pending = b""
        self.deferred: BrokenInput | None = None
        self.thread = threading.Thread(target=self._fill, daemon=True)
        self.thread.start()

    def _fill(self) -> None:
        while not self.stop.is_set():
            try:
                data = self.source.read(4 * READ_SIZE)
                item: object = (data, self.source.position())
            except BrokenInput as exc:
                item = (exc, getattr(self.source, "pending", b""))
                data = b""
            while not self.stop.is_set():
                try:
                    self.queue.put(item, timeout=0.2)
                    break
                except queue.Full:
                    continue
            if not data:
                return

    def read(self, n: int = READ_SIZE) -> bytes:
        """About n bytes. A break is raised once the bytes before it have been returned."""
        out: list[bytes] = []
        got = 0
        while got < n and not self.done:
            if self.deferred is not None:
                exc, self.deferred = self.deferred, None
                self.done = True
                raise exc
            data, extra = self.queue.get()
            if isinstance(data, BrokenInput):
                if out or extra:
                    out.append(extra)
                    self.deferred = data
                    break
                self.done = True
                raise data
            if not data:
                self.done = True
                break
            self._position = extra
            out.append(data)
            got += len(data)
        return b"".join(out)

    def position(self) -> int:
        return self._position

    def close(self) -> None:
        self.stop.set()
        self.thread.join()
        self.source.close()


def line_blocks(
    source: Source | PrefetchSource, first_line: int, head: bytes = b""
) -> Iterator[tuple[memoryview, int, int]]:
    """(block of whole lines, its first line number, its line count), in file order.

    Raises BrokenInput with the first line not read completely and the partial line.
    """
    parts = [head] if head else []
    size = len(head)
    line = first_line
    while True:
        try:
            chunk = source.read(BLOCK_SIZE - size if size < BLOCK_SIZE else READ_SIZE)
        except BrokenInput as exc:
            carry = b"".join(parts) + getattr(source, "pending", b"")
            cut = carry.rfind(b"\n") + 1
            count = carry.count(b"\n", 0, cut)
            if cut:
                yield memoryview(carry)[:cut], line, count
            exc.line = line + count
            exc.partial = carry[cut:]
            raise
        if chunk:
            parts.append(chunk)
            size += len(chunk)
        if size >= BLOCK_SIZE or (not chunk and size):
            carry = b"".join(parts) if len(parts) > 1 else parts[0]
            if not chunk and not carry.endswith(b"\n"):
                carry += b"\n"
            cut = carry.rfind(b"\n") + 1
            if cut:
                count = carry.count(b"\n", 0, cut)
                yield memoryview(carry)[:cut], line, count
                line += count
            parts = [carry[cut:]] if cut < len(carry) else []
            size = len(carry) - cut
        if not chunk:
            return


def _row_lines(block: memoryview, first_line: int, count: int, rows: int) -> np.ndarray:
    """Line numbers of the rows Arrow read from a block: it skips blank lines."""
    if rows == count:
        return np.arange(first_line, first_line + count, dtype=np.int64)
    data = np.frombuffer(block, dtype=np.uint8)
    ends = np.flatnonzero(data == 10)
    starts = np.concatenate([[0], ends[:-1] + 1])
    lengths = ends - starts
    crlf_blank = (lengths == 1) & (data[starts] == 13)
    keep = (lengths > 0) & ~crlf_blank
    return (first_line + np.flatnonzero(keep)).astype(np.int64)


def _split_lines(block: memoryview, first_line: int) -> Iterator[tuple[int, bytes]]:
    for i, raw in enumerate(bytes(block).split(b"\n")[:-1]):
        raw = raw.rstrip(b"\r")
        if raw:
            yield first_line + i, raw


def _decode(raw: bytes, line: int, rejects: list[Reject]) -> str | None:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        rejects.append(
            Reject(
                line,
                "invalid UTF-8",
                f"byte {exc.start + 1} of the line: {raw[exc.start : exc.start + 4]!r}",
                {"line": raw.decode("utf-8", "backslashreplace")},
            )
        )
        return None


# -- CSV --------------------------------------------------------------------------------------


class CsvReader:
    """A delimited text file: its header (or the names a headerless format gives its fields)
    and first data row are read on opening; `bind` then says which columns to read, under
    which keys and types."""

    def __init__(
        self,
        path: Path,
        compressed: bool,
        delimiter: str = ",",
        names: Sequence[str] | None = None,
        header_optional: bool = False,
    ) -> None:
        self.path = path
        self.delimiter = delimiter
        self.ts_typed = True
        self.columns: dict[str, str] = {}
        self.types: dict[str, pa.DataType] = {}
        self.source = PrefetchSource(Source(path, compressed))
        head = b""
        while head.count(b"\n") < 2:
            chunk = self.source.read()
            if not chunk:
                break
            head += chunk
        line, _, rest = head.partition(b"\n")
        try:
            text = line.decode("utf-8-sig").strip()
        except UnicodeDecodeError:
            raise TickfeaturesError(f"{path.name}: the header line is not UTF-8") from None
        fields = [h.strip() for h in next(csv.reader([text], delimiter=delimiter))] if text else []
        if names is None or (header_optional and fields[:1] == [names[0]]):
            self.header = fields if names is None else list(names)
            self.rest, self.first_line = rest, 2
        else:
            self.header = list(names) if head.strip() else []
            self.rest, self.first_line = head, 1
        first = self.rest.partition(b"\n")[0].decode("utf-8", "replace").strip()
        self.first_row = tuple(next(csv.reader([first], delimiter=delimiter))) if first else ()

    def bind(self, columns: dict[str, str], types: dict[str, pa.DataType] | None = None) -> None:
        """Read the file's column `src` as `key`, for each key: src of `columns`."""
        self.columns = columns
        self.types = types or {}
        dupes = {h for h in self.header if self.header.count(h) > 1}
        if dupes & set(self.columns.values()):
            raise TickfeaturesError(f"{self.path.name}: repeated header column(s) {sorted(dupes)}")

    @property
    def empty(self) -> bool:
        return not self.header

    def _types(self, ts_typed: bool) -> dict[str, pa.DataType]:
        return {
            src: self.types[dst]
            if dst in self.types
            else pa.dictionary(pa.int32(), pa.string())
            if dst == "symbol"
            else (pa.timestamp("us", "UTC") if ts_typed else pa.string())
            if dst == "ts"
            else pa.float64()
            for dst, src in self.columns.items()
        }

    def _parse(self, block: memoryview, ts_typed: bool) -> pa.Table | None:
        try:
            return pacsv.read_csv(
                pa.BufferReader(pa.py_buffer(block)),
                read_options=pacsv.ReadOptions(
                    column_names=self.header, block_size=max(len(block) // 2 + 1, 1 << 20)
                ),
                parse_options=pacsv.ParseOptions(delimiter=self.delimiter),
                convert_options=pacsv.ConvertOptions(
                    column_types=self._types(ts_typed),
                    include_columns=list(self.columns.values()),
                    null_values=NULL_TOKENS,
                    strings_can_be_null=True,
                    quoted_strings_can_be_null=True,
                ),
            )
        except (pa.ArrowInvalid, pa.ArrowTypeError):
            return None

    def _fast(self, block: memoryview) -> pa.Table | None:
        """Arrow's parse of a block: timestamps as ISO-8601 with a zone first (the common
        case, parsed by Arrow), else as text for `load.timestamps_us` for the rest of the
        file (naive or epoch timestamps, more than 6 fractional digits, bad values)."""
        if self.ts_typed:
            table = self._parse(block, ts_typed=True)
            if table is not None:
                return table
            self.ts_typed = False
        return self._parse(block, ts_typed=False)

    def _slow(
        self, block: memoryview, first_line: int
    ) -> tuple[np.ndarray, dict[str, pa.Array], list]:
        rejects: list[Reject] = []
        lines: list[int] = []
        wanted = [(dst, self.header.index(src)) for dst, src in self.columns.items()]
        values: dict[str, list[str | None]] = {dst: [] for dst, _ in wanted}
        nulls = set(NULL_TOKENS)
        for line, raw in _split_lines(block, first_line):
            text = _decode(raw, line, rejects)
            if text is None:
                continue
            try:
                fields = next(csv.reader([text], delimiter=self.delimiter))
            except csv.Error as exc:
                rejects.append(Reject(line, "malformed line", str(exc), {"line": text}))
                continue
            if len(fields) != len(self.header):
                rejects.append(
                    Reject(
                        line,
                        "malformed line",
                        f"{len(fields)} fields, the header has {len(self.header)}",
                        {"line": text},
                    )
                )
                continue
            lines.append(line)
            for dst, i in wanted:
                values[dst].append(None if fields[i] in nulls else fields[i])
        arrays = {dst: pa.array(v, type=pa.string()) for dst, v in values.items()}
        return np.asarray(lines, dtype=np.int64), arrays, rejects

    def batches(self) -> Iterator[Batch]:
        if self.empty:
            return
        for block, first, count in line_blocks(self.source, self.first_line, self.rest):
            table = self._fast(block)
            if table is not None:
                lines = _row_lines(block, first, count, table.num_rows)
                if len(lines) == table.num_rows:
                    # one batch per Arrow record batch: its columns are used without a copy
                    at = 0
                    for rb in table.to_batches():
                        columns = {dst: rb.column(src) for dst, src in self.columns.items()}
                        part = lines[at : at + rb.num_rows]
                        at += rb.num_rows
                        yield Batch(part, columns, [], self.source.position())
                    continue
            lines, columns, rejects = self._slow(block, first)
            yield Batch(lines, columns, rejects, self.source.position())

    def close(self) -> None:
        self.source.close()


# -- JSON lines -------------------------------------------------------------------------------


def _levels(lists: pa.Array, side: str, n: int) -> dict[str, pa.Array]:
    """`[[price, size], ...]` per row as level columns {side}_price_i / {side}_size_i.

    Levels beyond the table's 10 are not loaded; a level that is not a pair is NULL and the
    row is rejected by the caller through the `__malformed` marker.
    """
    lists = lists.cast(pa.list_(pa.list_(pa.string())))
    counts = lists.value_lengths().fill_null(0).to_numpy(zero_copy_only=False).astype(np.int64)
    pairs = lists.flatten()
    pair_len = pairs.value_lengths().fill_null(0).to_numpy(zero_copy_only=False)
    row_of_pair = np.repeat(np.arange(n), counts)
    level_of_pair = np.arange(len(row_of_pair)) - np.repeat(np.cumsum(counts) - counts, counts)
    flat = pairs.flatten().to_numpy(zero_copy_only=False)
    starts = np.concatenate([[0], np.cumsum(pair_len)[:-1]]).astype(np.int64)
    good = pair_len == 2
    out: dict[str, pa.Array] = {}
    for what, offset in (("price", 0), ("size", 1)):
        for level in range(1, schema.LEVELS + 1):
            col = np.full(n, None, dtype=object)
            pick = good & (level_of_pair == level - 1)
            col[row_of_pair[pick]] = flat[starts[pick] + offset]
            out[f"{side}_{what}_{level}"] = pa.array(col, type=pa.string())
    bad_rows = np.zeros(n, dtype=bool)
    bad_rows[row_of_pair[~good]] = True
    out[f"__malformed_{side}"] = pa.array(bad_rows)
    return out


class JsonLinesReader:
    """One JSON object per line: `ts`/`timestamp`, `symbol`, and `bids`/`asks` as
    `[[price, size], ...]` (best first), or the wide column names."""

    def __init__(
        self,
        path: Path,
        compressed: bool,
        required: Sequence[str],
        mapping: dict[str, str],
        optional: Sequence[str] = (),
    ) -> None:
        self.path = path
        self.required = required
        self.optional = optional
        self.mapping = mapping
        self.source = PrefetchSource(Source(path, compressed))
        self.columns: dict[str, str] | None = None
        self.nested = False

    def _resolve(self, keys: Sequence[str]) -> None:
        nested = {"bids", "asks"} <= set(keys) or {"b", "a"} <= set(keys)
        if nested:
            side_keys = ("bids", "asks") if "bids" in keys else ("b", "a")
            base = [c for c in self.required if c in ("symbol", "ts")]
            self.columns = resolve_columns(base, keys, self.mapping, self.path.name)
            self.sides = dict(zip(("bid", "ask"), side_keys, strict=True))
        else:
            self.columns = resolve_columns(
                self.required, keys, self.mapping, self.path.name, self.optional
            )
        self.nested = nested

    def _objects_to_table(self, objects: list[dict]) -> pa.Table:
        keys = list(self.columns.values()) + (list(self.sides.values()) if self.nested else [])
        cols: dict[str, list] = {k: [] for k in keys}
        for obj in objects:
            for k in keys:
                v = obj.get(k)
                if k in (self.sides.values() if self.nested else ()):
                    cols[k].append(
                        [[None if x is None else str(x) for x in lvl] for lvl in v]
                        if isinstance(v, list) and all(isinstance(lvl, list) for lvl in v)
                        else None
                    )
                else:
                    cols[k].append(None if v is None else str(v))
        return pa.table(
            {
                k: pa.array(v, type=pa.list_(pa.list_(pa.string())))
                if self.nested and k in self.sides.values()
                else pa.array(v, type=pa.string())
                for k, v in cols.items()
            }
        )

    def _fast(self, block: memoryview) -> pa.Table | None:
        try:
            table = pajson.read_json(
                pa.BufferReader(pa.py_buffer(block)),
                read_options=pajson.ReadOptions(block_size=max(len(block) // 2 + 1, 1 << 20)),
            )
        except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
            return None
        if self.columns is None:
            self._resolve(table.column_names)
        wanted = list(self.columns.values()) + (list(self.sides.values()) if self.nested else [])
        if any(w not in table.column_names for w in wanted):
            return None
        return table

    def _slow(self, block: memoryview, first_line: int) -> tuple[np.ndarray, pa.Table | None, list]:
        rejects: list[Reject] = []
        lines: list[int] = []
        objects: list[dict] = []
        for line, raw in _split_lines(block, first_line):
            text = _decode(raw, line, rejects)
            if text is None:
                continue
            try:
                obj = json.loads(text)
            except ValueError as exc:
                rejects.append(Reject(line, "malformed line", f"not JSON: {exc}", {"line": text}))
                continue
            if not isinstance(obj, dict):
                rejects.append(Reject(line, "malformed line", "not a JSON object", {"line": text}))
                continue
            if self.columns is None:
                self._resolve(list(obj))
            lines.append(line)
            objects.append(obj)
        table = self._objects_to_table(objects) if self.columns is not None else None
        return np.asarray(lines, dtype=np.int64), table, rejects

    def _batch(self, lines: np.ndarray, table: pa.Table, rejects: list) -> Batch:
        assert self.columns is not None
        columns = {dst: table.column(src).combine_chunks() for dst, src in self.columns.items()}
        if self.nested:
            for side, key in self.sides.items():
                columns.update(_levels(table.column(key).combine_chunks(), side, len(lines)))
        return Batch(lines, columns, rejects, self.source.position())

    def batches(self) -> Iterator[Batch]:
        for block, first, count in line_blocks(self.source, 1):
            table = self._fast(block)
            lines = _row_lines(block, first, count, table.num_rows if table is not None else -1)
            if table is not None and table.num_rows == len(lines):
                yield self._batch(lines, table, [])
                continue
            lines, table, rejects = self._slow(block, first)
            if table is None:
                yield Batch(lines, {}, rejects, self.source.position())
            else:
                yield self._batch(lines, table, rejects)

    @property
    def empty(self) -> bool:
        return False

    def close(self) -> None:
        self.source.close()


# -- Parquet ----------------------------------------------------------------------------------


class ParquetReader:
    def __init__(self, path: Path) -> None:
        import pyarrow.parquet as pq

        self.path = path
        self.size = path.stat().st_size
        try:
            self.file = pq.ParquetFile(path)
        except (pa.ArrowException, OSError) as exc:
            raise TickfeaturesError(f"{path.name}: not a readable Parquet file: {exc}") from None
        self.header = self.file.schema_arrow.names
        self.nested = {"bids", "asks"} <= set(self.header)
        self.columns: dict[str, str] = {}
        self.done = 0

    def bind(self, columns: dict[str, str], types: dict[str, pa.DataType] | None = None) -> None:
        self.columns = columns

    @property
    def empty(self) -> bool:
        return False

    def batches(self) -> Iterator[Batch]:
        wanted = list(self.columns.values()) + (["bids", "asks"] if self.nested else [])
        total_rows = self.file.metadata.num_rows or 1
        row = 0
        it = self.file.iter_batches(batch_size=PARQUET_BATCH, columns=wanted)
        while True:
            try:
                rb = next(it)
            except StopIteration:
                return
            except (pa.ArrowException, OSError) as exc:
                raise BrokenInput(
                    f"unreadable Parquet data after row {row:,}: {exc}", row + 1
                ) from None
            n = rb.num_rows
            lines = np.arange(row + 1, row + n + 1, dtype=np.int64)
            row += n
            columns = {dst: rb.column(src) for dst, src in self.columns.items()}
            if self.nested:
                for side, key in (("bid", "bids"), ("ask", "asks")):
                    columns.update(_levels(rb.column(key), side, n))
            yield Batch(lines, columns, [], int(self.size * row / total_rows))

    def close(self) -> None:
        self.file.close()
