"""PostgreSQL's binary COPY format, written with numpy: the loader's fast path.

A binary COPY row is a 16-bit field count followed by, per field, a 32-bit length (-1 for
NULL) and the value in network byte order. Rows with the same layout (the same symbol length
and the same NULL fields) have the same byte layout, so each such group is one numpy
structured array filled column by column: no Python loop over rows. A file of order-book
snapshots has a handful of layouts (which deep levels are empty), so this costs a few
vectorised assignments per column.

Postgres parses binary float8 and timestamptz without text conversion, which is what makes
COPY BINARY faster than COPY CSV on the server (measured in `docs/decisions.md`).
"""

from __future__ import annotations

import numpy as np

HEADER = b"PGCOPY\n\xff\r\n\x00" + b"\x00" * 8
TRAILER = b"\xff\xff"
PG_EPOCH_US = 946_684_800_000_000  # 2000-01-01 in microseconds since the Unix epoch


def encode_rows(
    symbol_codes: np.ndarray,
    symbols: list[bytes],
    ts_us: np.ndarray,
    values: np.ndarray,
    nulls: np.ndarray,
    rows: np.ndarray | None = None,
    integers: np.ndarray | None = None,
) -> list[memoryview]:
    """Rows (symbol text, ts timestamptz, values float8...) as binary COPY data, no header,
    in one buffer per layout group.

    symbol_codes index `symbols` (UTF-8 bytes); ts_us are microseconds since the Unix epoch;
    values is (n, k) float64 with `nulls` marking the NULL fields; `rows` picks and orders the
    rows to write (default: all). Rows keep their order within each layout group; groups
    follow one another. `integers` (k booleans) marks the value columns written as int4
    (whole values the caller has checked fit).
    """
    k = values.shape[1]
    integers = np.zeros(k, dtype=bool) if integers is None else integers
    rows = np.arange(values.shape[0]) if rows is None else rows
    n = len(rows)
    if n == 0:
        return []
    bits = np.packbits(nulls[rows], axis=1, bitorder="little")
    codes = symbol_codes[rows]
    lengths = np.fromiter((len(t) for t in symbols), dtype=np.int64, count=len(symbols))
    row_lengths = lengths[codes]
    if not bits.any() and (row_lengths == row_lengths[0]).all():
        groups = [rows]
    else:
        # one key per row: its NULL bits and its symbol's length, as one opaque value (the
        # symbols of one length share a layout: 20 FX pairs are one group, not 20)
        key = np.concatenate(
            [bits, row_lengths.astype("<u8").reshape(-1, 1).view(np.uint8)], axis=1
        )
        key = np.ascontiguousarray(key).view(np.dtype((np.void, key.shape[1]))).ravel()
        _keys, inverse = np.unique(key, return_inverse=True)
        order = np.argsort(inverse, kind="stable")
        bounds = np.flatnonzero(np.diff(inverse[order])) + 1
        groups = [rows[g] for g in np.split(order, bounds)]
    pg_ts = ts_us - PG_EPOCH_US
    names = np.array(symbols, dtype=f"S{max(int(lengths.max()), 1)}")
    out: list[memoryview] = []
    for rows in groups:
        first = rows[0]
        text = symbols[int(symbol_codes[first])]
        null_fields = nulls[first]
        layout: list[tuple[str, str]] = [
            ("count", ">i2"),
            ("slen", ">i4"),
            ("sym", f"S{len(text)}" if text else "V0"),
            ("tlen", ">i4"),
            ("ts", ">i8"),
        ]
        for j in range(k):
            layout.append((f"l{j}", ">i4"))
            if not null_fields[j]:
                layout.append((f"v{j}", ">i4" if integers[j] else ">f8"))
        block = np.empty(len(rows), dtype=np.dtype(layout))
        block["count"] = k + 2
        block["slen"] = len(text)
        if text:
            block["sym"] = names[symbol_codes[rows]]
        block["tlen"] = 8
        block["ts"] = pg_ts[rows]
        for j in range(k):
            if null_fields[j]:
                block[f"l{j}"] = -1
            elif integers[j]:
                block[f"l{j}"] = 4
                block[f"v{j}"] = values[rows, j].astype(np.int32)
            else:
                block[f"l{j}"] = 8
                block[f"v{j}"] = values[rows, j]
        out.append(memoryview(block).cast("B"))
    return out
