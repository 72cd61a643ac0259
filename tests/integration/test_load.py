"""The loader: every row loaded, quarantined with a reason, or skipped as a duplicate.

Each bad file of the suite is checked the same way (`accounted`): the ledger's rows_in equals
loaded + quarantined + identical duplicates; the quarantine holds exactly rows_quarantined
rows of the file, each with a reason; the table holds exactly the rows the ledgers say were
loaded; and what was expected (by reason) is what happened. Expected figures come from how
each file was built, never from the loader's output.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import psycopg
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests.conftest import ROOT, TF, FreshDatabase, Processes, run_cli
from tickfeatures import config, generate
from tickfeatures.schema import BAR_COLUMNS, L2_COLUMNS, L2_LEVEL_COLUMNS

pytestmark = pytest.mark.integration

T0 = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
SIZES = [c for c in L2_LEVEL_COLUMNS if "_size_" in c]


def book(mid: float, sizes: float = 1.5) -> dict[str, float | None]:
    row: dict[str, float | None] = {}
    for i in range(1, 11):
        row[f"bid_price_{i}"] = round(mid - 0.0001 * i, 5)
        row[f"ask_price_{i}"] = round(mid + 0.0001 * i, 5)
        row[f"bid_size_{i}"] = sizes + i / 10
        row[f"ask_size_{i}"] = sizes + i / 7
    return row


def l2_row(symbol: str | None, ts: datetime | str | None, **book_values: object) -> list[str]:
    stamp = ts.isoformat() if isinstance(ts, datetime) else ts
    values = {"symbol": symbol, "ts": stamp, **book(1.1), **book_values}
    return ["" if values[c] is None else str(values[c]) for c in L2_COLUMNS]


def csv_bytes(rows: list[list[str]], header: list[str] | tuple[str, ...] = L2_COLUMNS) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(header)
    writer.writerows(rows)
    return out.getvalue().encode()


def write(
    path: Path, rows: list[list[str]], header: list[str] | tuple[str, ...] = L2_COLUMNS
) -> Path:
    data = csv_bytes(rows, header)
    path.write_bytes(gzip.compress(data) if path.suffix == ".gz" else data)
    return path


def seconds(n: int, symbol: str = "EURUSD", start: datetime = T0) -> list[list[str]]:
    return [l2_row(symbol, start + timedelta(seconds=i)) for i in range(n)]


@pytest.fixture()
def db(databases: FreshDatabase) -> str:
    url = databases.create()
    run_cli("migrate", dsn=url)
    return url


def query(url: str, sql: str, params: tuple = ()) -> list[tuple]:
    with psycopg.connect(url) as conn:
        return conn.execute(sql, params).fetchall()  # type: ignore[arg-type]


def ledger(url: str) -> dict[str, tuple]:
    return {
        r[0]: r[1:]
        for r in query(
            url,
            "select file_name, status, rows_in, rows_loaded, rows_quarantined, rows_duplicate,"
            " error from ops.ingest_files order by file_id",
        )
    }


def reasons(url: str, name: str) -> dict[str, int]:
    return dict(
        query(
            url,
            "select reason, count(*) from ops.quarantine join ops.ingest_files using (file_id)"
            " where file_name = %s group by reason",
            (name,),
        )
    )


def count(url: str, table: str = "market.l2_snapshots") -> int:
    return query(url, f"select count(*) from {table}")[0][0]


def accounted(url: str, name: str, loaded: int, quarantined: dict[str, int], dups: int) -> None:
    """The file's figures are the expected ones, and they add up everywhere."""
    _status, rows_in, rows_loaded, rows_q, rows_d, _error = ledger(url)[name]
    assert (rows_loaded, rows_d) == (loaded, dups), ledger(url)[name]
    assert reasons(url, name) == quarantined
    assert rows_q == sum(quarantined.values())
    assert rows_in == rows_loaded + rows_q + rows_d
    in_ranges = query(
        url,
        "select coalesce(sum(r.rows_loaded), 0) from ops.ingest_ranges as r"
        " join ops.ingest_files using (file_id) where file_name = %s",
        (name,),
    )[0][0]
    assert in_ranges == loaded
    all_loaded = query(url, "select coalesce(sum(rows_loaded), 0) from ops.ingest_files")[0][0]
    assert count(url) + count(url, "market.bars_1m") == all_loaded


# -- one file at a time ------------------------------------------------------------------------


def test_every_row_is_accounted_for(db: str, tmp_path: Path) -> None:
    ts = [T0 + timedelta(milliseconds=100 * i) for i in range(10)]
    rows = [
        l2_row("EURUSD", ts[0]),  # line 2 loaded
        l2_row("EURUSD", ts[1]),  # line 3 loaded
        l2_row("EURUSD", ts[1]),  # line 4 identical duplicate
        l2_row("EURUSD", ts[1], bid_size_1=9.0),  # line 5 conflicting duplicate
        l2_row(None, ts[2]),  # line 6 missing symbol
        l2_row("EURUSD", None),  # line 7 missing timestamp
        l2_row("EURUSD", ts[3], ask_size_4=-1.0),  # line 8 negative size
        l2_row("EURUSD", ts[4], bid_price_2=0.0),  # line 9 non-positive price
        l2_row("EURUSD", ts[5], bid_price_1=1.2),  # line 10 crossed: loaded
        l2_row("GBPUSD", ts[5], ask_price_9=None, ask_size_9=None),  # line 11 missing level
        l2_row("GBPUSD", ts[6], bid_price_1=1.1, ask_price_1=1.1),  # line 12 locked: loaded
    ]
    path = write(tmp_path / "mixed.csv", rows)
    result = run_cli("load", "l2", str(path), dsn=db)
    assert "loaded mixed.csv (csv): 5 rows, 5 quarantined" in result.stdout
    assert "1 identical duplicates skipped, 1 crossed and 1 locked books flagged" in result.stdout
    accounted(
        db,
        "mixed.csv",
        loaded=5,
        quarantined={
            "conflicting duplicate of (symbol, ts) in the file": 1,
            "missing symbol": 1,
            "missing timestamp": 1,
            "negative size": 1,
            "non-positive price": 1,
        },
        dups=1,
    )
    assert query(db, "select rows_crossed, rows_locked, format from ops.ingest_files") == [
        (1, 1, "csv")
    ]
    assert query(
        db, "select line_no, reason, detail, record->>'symbol' from ops.quarantine order by 1"
    ) == [
        (5, "conflicting duplicate of (symbol, ts) in the file", "first occurrence at line 3",
         "EURUSD"),
        (6, "missing symbol", None, None),
        (7, "missing timestamp", None, "EURUSD"),
        (8, "negative size", "ask_size_4 = -1", "EURUSD"),
        (9, "non-positive price", "bid_price_2 = 0", "EURUSD"),
    ]  # fmt: skip
    # The raw record is kept: every column, as read.
    record = query(db, "select record from ops.quarantine where line_no = 8")[0][0]
    assert set(record) == set(L2_COLUMNS) and record["ask_size_4"] == -1.0
    # A missing level is loaded as NULLs.
    assert query(
        db, "select ask_price_9, ask_size_9 from market.l2_snapshots where symbol = 'GBPUSD'"
        " and ts = %s", (ts[5],)
    ) == [(None, None)]  # fmt: skip

    # Same file again: skipped by checksum, nothing changes.
    before = (count(db), query(db, "select count(*) from ops.quarantine"), ledger(db))
    again = run_cli("load", "l2", str(path), dsn=db)
    assert "skipped mixed.csv: already loaded as file" in again.stdout
    assert (count(db), query(db, "select count(*) from ops.quarantine"), ledger(db)) == before

    # Another file overlapping what is loaded: identical rows skipped, changed ones set aside.
    overlap = write(
        tmp_path / "overlap.csv.gz",
        [
            l2_row("EURUSD", ts[0]),
            l2_row("EURUSD", ts[1], ask_size_1=7.0),
            l2_row("EURUSD", ts[7]),
        ],
    )
    run_cli("load", "l2", str(overlap), dsn=db)
    accounted(
        db,
        "overlap.csv.gz",
        loaded=1,
        quarantined={"conflicting duplicate of an existing (symbol, ts)": 1},
        dups=1,
    )
    assert count(db) == 6


def test_values_round_trip_exactly(db: str, tmp_path: Path) -> None:
    """Generated books (NULL deep levels, crossed and locked books, repeated timestamps)
    through CSV.gz: what is stored is, value for value, the first occurrence of each key."""
    from tickfeatures import generate

    specs = generate.load_symbols(ROOT / "seeds" / "symbols.csv")
    rows = list(
        generate.generate_l2([specs["EURUSD"], specs["USDJPY"]], T0, timedelta(seconds=30), seed=7)
    )
    path = tmp_path / "gen.csv.gz"
    generate.write_csv(rows, L2_COLUMNS, path)
    run_cli("load", "l2", str(path), dsn=db)
    status, rows_in, loaded, quarantined, duplicates, _err = ledger(db)["gen.csv.gz"]
    assert status == "loaded" and rows_in == len(rows)
    assert loaded + quarantined + duplicates == rows_in
    stored = {
        (r[0], r[1]): r[2:]
        for r in query(
            db, f"select symbol, ts, {', '.join(L2_LEVEL_COLUMNS)} from market.l2_snapshots"
        )
    }
    first_seen: dict[tuple, tuple] = {}
    for row in rows:
        first_seen.setdefault((row[0], row[1]), tuple(row[2:]))
    assert stored == first_seen
    assert any(None in v for v in stored.values())  # NULL levels made it through as NULL


def test_blocks_larger_than_one_batch(db: str, tmp_path: Path, monkeypatch) -> None:
    """Duplicates across the reader's blocks are found, with the line of the first one."""
    rows = seconds(3000)
    rows.append(l2_row("EURUSD", T0 + timedelta(seconds=5)))  # identical, 2995 lines later
    rows.append(l2_row("EURUSD", T0 + timedelta(seconds=6), bid_size_2=4.0))  # conflicting
    path = write(tmp_path / "long.csv", rows)
    result = run_cli("load", "l2", str(path), dsn=db, env={"TICKFEATURES_LOAD_BLOCK": "65536"})
    assert "3000 rows" in result.stdout
    accounted(
        db,
        "long.csv",
        loaded=3000,
        quarantined={"conflicting duplicate of (symbol, ts) in the file": 1},
        dups=1,
    )
    assert query(db, "select detail from ops.quarantine") == [("first occurrence at line 8",)]


# -- the bad-file suite -------------------------------------------------------------------------


def test_bad_files(db: str, tmp_path: Path) -> None:
    files: dict[str, Path] = {}

    def put(name: str, data: bytes) -> None:
        files[name] = tmp_path / name
        files[name].write_bytes(data)

    whole = gzip.compress(csv_bytes(seconds(2000, "GBPUSD")))
    put("truncated.csv.gz", whole[: len(whole) // 2])
    corrupt = bytearray(whole)
    corrupt[len(corrupt) // 2 : len(corrupt) // 2 + 64] = b"\x00" * 64
    put("corrupt.csv.gz", bytes(corrupt))
    put(
        "timestamps.csv",
        csv_bytes(
            [
                l2_row("AUDUSD", T0),
                l2_row("AUDUSD", None),  # NULL
                l2_row("AUDUSD", "yesterday-ish"),  # garbled
                l2_row("AUDUSD", "2026-02-30T10:00:00Z"),  # no such day
                l2_row("AUDUSD", "2026-03-02T10:00:01.5+01:00"),  # offset: 09:00:01.5 UTC
            ]
        ),
    )
    put(
        "wrong_columns.csv",
        csv_bytes([["EURUSD", T0.isoformat(), "1.1"]], header=["symbol", "time_ms", "bid_px_1"]),
    )
    put("negative.csv", csv_bytes([l2_row("NZDUSD", T0, bid_size_3=-2), *seconds(3, "NZDUSD")[1:]]))
    put(
        "mixed.csv",
        csv_bytes(
            [
                l2_row("USDCAD", T0),
                l2_row("USDCAD", T0 + timedelta(seconds=1), bid_price_3="abc"),
                l2_row("USDCAD", T0 + timedelta(seconds=2), ask_size_2="1.5.2"),
                l2_row("USDCAD", T0 + timedelta(seconds=3), ask_price_1="-1"),
                l2_row("USDCAD", T0 + timedelta(seconds=4), bid_size_1="nan"),
                l2_row("USDCAD", T0 + timedelta(seconds=5)),
            ]
        )
        + b"USDCAD,2026-03-02T10:00:09Z,1.0\n",  # too few fields
    )
    put(
        "duplicates.csv",
        csv_bytes(
            [
                l2_row("USDCHF", T0),
                l2_row("USDCHF", T0),
                l2_row("USDCHF", T0),
                l2_row("USDCHF", T0, bid_size_1=99),
                l2_row("USDCHF", T0 + timedelta(seconds=1)),
            ]
        ),
    )
    put(
        "crossed.csv",
        csv_bytes(
            [
                l2_row("EURJPY", T0, bid_price_1=1.2),
                l2_row("EURJPY", T0 + timedelta(seconds=1), bid_price_1=1.1, ask_price_1=1.1),
                l2_row("EURJPY", T0 + timedelta(seconds=2)),
            ]
        ),
    )
    put("empty.csv", b"")
    put("header_only.csv.gz", gzip.compress(csv_bytes([])))
    good = csv_bytes([l2_row("EURGBP", T0)]).decode()
    bad_bytes = csv_bytes([l2_row("EURGBP", T0 + timedelta(seconds=1))]).split(b"\n", 1)[1]
    put(
        "latin1.csv",
        good.encode()
        + bad_bytes.replace(b"EURGBP", b"EUR\xa3GBP")
        + b"\n".join(csv_bytes([l2_row("EURGBP", T0 + timedelta(seconds=2))]).split(b"\n")[1:]),
    )

    names = list(files)
    result = run_cli("load", "l2", *(str(files[n]) for n in names), dsn=db, check=False)
    assert result.returncode == 1  # some files failed
    assert "Traceback" not in result.stderr
    book = ledger(db)

    # Unreadable and mismatched files: nothing committed, one line naming the file and place.
    for name in ("truncated.csv.gz", "corrupt.csv.gz", "wrong_columns.csv"):
        status, _in, loaded, _q, _d, error = book[name]
        assert (status, loaded) == ("failed", None), book[name]
        assert error.startswith(f"{name}: ") and "\n" not in error
    assert reasons(db, "truncated.csv.gz") == {} and reasons(db, "corrupt.csv.gz") == {}
    assert "truncated gzip data at compressed byte" in book["truncated.csv.gz"][5]
    assert "the rest of the file from line" in book["truncated.csv.gz"][5]
    assert "corrupt gzip data at compressed byte" in book["corrupt.csv.gz"][5]
    assert book["wrong_columns.csv"][5] == (
        "wrong_columns.csv: missing required column(s) ts, bid_price_2..10, bid_size_1..10,"
        " ask_price_1..10, ask_size_1..10; near matches in the file: time_ms (for ts?)"
        "; adapt the names with --map src=dst,..."
    )
    assert query(db, "select count(*) from market.l2_snapshots where symbol = 'GBPUSD'") == [(0,)]

    accounted(
        db,
        "timestamps.csv",
        loaded=2,
        quarantined={"missing timestamp": 1, "unparseable timestamp": 2},
        dups=0,
    )
    assert query(db, "select ts from market.l2_snapshots where symbol = 'AUDUSD' order by ts") == [
        (T0 - timedelta(hours=1) + timedelta(seconds=1.5),),
        (T0,),
    ]
    assert query(
        db, "select detail from ops.quarantine where reason = 'unparseable timestamp' order by 1"
    ) == [("ts '2026-02-30T10:00:00Z'",), ("ts 'yesterday-ish'",)]
    accounted(db, "negative.csv", loaded=2, quarantined={"negative size": 1}, dups=0)
    accounted(
        db,
        "mixed.csv",
        loaded=2,
        quarantined={
            "non-numeric field": 3,
            "non-positive price": 1,
            "malformed line": 1,
        },
        dups=0,
    )
    assert sorted(
        query(db, "select detail from ops.quarantine where reason = 'non-numeric field'")
    ) == [("ask_size_2 '1.5.2'",), ("bid_price_3 'abc'",), ("bid_size_1 'nan'",)]
    assert query(db, "select detail from ops.quarantine where reason = 'malformed line'") == [
        ("3 fields, the header has 42",)
    ]
    accounted(
        db,
        "duplicates.csv",
        loaded=2,
        quarantined={"conflicting duplicate of (symbol, ts) in the file": 1},
        dups=2,
    )
    accounted(db, "crossed.csv", loaded=3, quarantined={}, dups=0)
    assert query(
        db, "select rows_crossed, rows_locked from ops.ingest_files where file_name = 'crossed.csv'"
    ) == [(1, 1)]
    accounted(db, "empty.csv", loaded=0, quarantined={}, dups=0)
    assert book["empty.csv"][0] == "loaded" and "empty file" in book["empty.csv"][5]
    accounted(db, "header_only.csv.gz", loaded=0, quarantined={}, dups=0)
    accounted(db, "latin1.csv", loaded=2, quarantined={"invalid UTF-8": 1}, dups=0)
    assert query(db, "select record->>'line' from ops.quarantine where reason = 'invalid UTF-8'")[
        0
    ][0].startswith("EUR\\xa3GBP,")

    # The summary names every failure and the quarantine reasons.
    assert f"{len(names)} files:" in result.stdout
    assert "3 failed" in result.stdout and "non-numeric field: 3" in result.stdout
    assert result.stdout.count("  failed: ") == 3

    # Loading the same files again changes nothing: not the data, quarantine or ledger.
    def state() -> tuple:
        return (
            query(db, "select * from market.l2_snapshots order by symbol, ts"),
            query(db, "select file_id, line_no, reason, detail, record from ops.quarantine"),
            query(
                db,
                "select file_id, file_name, status, rows_in, rows_loaded, rows_quarantined,"
                " rows_duplicate, error from ops.ingest_files order by file_id",
            ),
            query(db, "select * from ops.ingest_ranges order by file_id, symbol"),
        )

    before = state()
    again = run_cli("load", "l2", *(str(files[n]) for n in names), dsn=db, check=False)
    assert again.returncode == 1
    assert state() == before

    # --salvage: the readable part of a broken file, the rest recorded.
    salvaged = run_cli(
        "load", "l2", str(files["truncated.csv.gz"]), "--salvage", dsn=db, check=False
    )
    assert salvaged.returncode == 0, salvaged.stderr
    status, _rows_in, loaded, _q, _dups, error = ledger(db)["truncated.csv.gz"]
    assert status == "salvaged" and "truncated gzip data" in error
    lines_read = query(
        db, "select max(line_no) from ops.quarantine join ops.ingest_files using (file_id)"
        " where file_name = 'truncated.csv.gz'"
    )[0][0]  # fmt: skip
    assert loaded == lines_read - 2 and 0 < loaded < 2000  # lines 2 .. lines_read - 1
    accounted(db, "truncated.csv.gz", loaded=loaded, quarantined={"truncated line": 1}, dups=0)
    stored = query(db, "select ts from market.l2_snapshots where symbol = 'GBPUSD' order by ts")
    assert stored == [(T0 + timedelta(seconds=i),) for i in range(loaded)]

    # A failed file, repaired (new content), loads; one ledger row per content.
    fixed = tmp_path / "truncated_fixed.csv.gz"
    fixed.write_bytes(whole)
    run_cli("load", "l2", str(fixed), dsn=db)
    accounted(db, "truncated_fixed.csv.gz", loaded=2000 - loaded, quarantined={}, dups=loaded)


def test_salvage_corrupt_gzip(db: str, tmp_path: Path) -> None:
    rng = np.random.default_rng(5)  # sizes that do not compress away: the file spans blocks
    rows = [
        l2_row("EURUSD", T0 + timedelta(seconds=i), **{
            c: round(float(v), 4) for c, v in zip(SIZES, rng.uniform(1, 9, len(SIZES)), strict=True)
        })
        for i in range(4000)
    ]  # fmt: skip
    whole = gzip.compress(csv_bytes(rows))
    corrupt = bytearray(whole)
    corrupt[len(corrupt) // 2 : len(corrupt) // 2 + 64] = b"\x00" * 64
    path = tmp_path / "corrupt.csv.gz"
    path.write_bytes(bytes(corrupt))
    run_cli("load", "l2", str(path), "--salvage", dsn=db)
    status, rows_in, loaded, quarantined, _d, error = ledger(db)["corrupt.csv.gz"]
    assert status == "salvaged" and "corrupt gzip data at compressed byte" in error
    assert 0 < loaded < 4000
    stored = query(db, f"select {', '.join(L2_COLUMNS)} from market.l2_snapshots order by ts")
    assert [[str(v) for v in r[:1]] + [str(v) for v in r[2:]] for r in stored] == [
        r[:1] + r[2:] for r in rows[:loaded]
    ]  # the rows before the break, value for value
    assert [r[1] for r in stored] == [T0 + timedelta(seconds=i) for i in range(loaded)]
    assert rows_in == loaded + quarantined


# -- formats and column mapping -----------------------------------------------------------------


def jsonl_row(ts: object, symbol: str = "BTCUSD", levels: int = 3, **extra: object) -> dict:
    return {
        "ts": ts,
        "symbol": symbol,
        "bids": [[100.0 - i, 1.0 + i] for i in range(levels)],
        "asks": [[101.0 + i, 2.0 + i] for i in range(levels)],
        **extra,
    }


def test_json_lines(db: str, tmp_path: Path) -> None:
    epoch = int(T0.timestamp())
    lines = [
        json.dumps(jsonl_row(T0.isoformat().replace("+00:00", "Z"))),  # ISO, Z
        json.dumps(jsonl_row(epoch + 1)),  # epoch seconds
        json.dumps(jsonl_row((epoch + 2) * 1000 + 250)),  # milliseconds
        json.dumps(jsonl_row((epoch + 3) * 1_000_000 + 125)),  # microseconds
        json.dumps(jsonl_row(epoch + 4.5, levels=12)),  # fractional seconds; 12 levels
        '{"ts": ' + str(epoch + 6) + ', "symbol": "BTCUSD", "bids": [[1',  # broken JSON
        json.dumps(jsonl_row(epoch + 7, bids=[[99.0]])),  # a level is not a pair
        json.dumps(jsonl_row(epoch + 8, bids=[[99.0, -1.0]])),  # negative size
        json.dumps(jsonl_row(None)),  # missing timestamp
        "[1, 2, 3]",  # not an object
    ]
    path = tmp_path / "book.jsonl.gz"
    path.write_bytes(gzip.compress(("\n".join(lines) + "\n").encode()))
    exchange = tmp_path / "exchange.jsonl"  # exchange style: `timestamp` in ms, numbers as text
    exchange.write_text(
        json.dumps(
            {
                "timestamp": (epoch + 5) * 1000,
                "symbol": "BTCUSD",
                "bids": [["99.5", "0.25"]],
                "asks": [["100.5", "0.75"]],
            }
        )
    )
    run_cli("load", "l2", str(path), str(exchange), dsn=db)
    accounted(db, "exchange.jsonl", loaded=1, quarantined={}, dups=0)
    accounted(
        db,
        "book.jsonl.gz",
        loaded=5,
        quarantined={
            "malformed line": 2,
            "malformed level": 1,
            "negative size": 1,
            "missing timestamp": 1,
        },
        dups=0,
    )
    assert query(db, "select format from ops.ingest_files") == [("jsonl",), ("jsonl",)]
    stored = query(
        db,
        "select ts, bid_price_1, bid_size_1, ask_price_3, bid_price_10, bid_price_4"
        " from market.l2_snapshots order by ts",
    )
    t = [T0 + timedelta(seconds=s) for s in (0, 1, 2.25, 3.000125, 4.5, 5)]
    assert [r[0] for r in stored] == t
    assert stored[0][1:] == (100.0, 1.0, 103.0, None, None)  # 3 levels: deeper ones NULL
    assert stored[4][4] == 91.0  # 12 levels: the first 10 are kept
    assert stored[5][1:3] == (99.5, 0.25)
    assert query(db, "select line_no from ops.quarantine order by 1") == [
        (6,), (7,), (8,), (9,), (10,)
    ]  # fmt: skip


def test_parquet_wide_and_nested(db: str, tmp_path: Path) -> None:
    rows = seconds(5, "ETHUSD")
    table = pa.table(
        {
            name: pa.array(
                [r[i] for r in rows] if name == "symbol" else [
                    (T0 + timedelta(seconds=k)) for k in range(5)
                ] if name == "ts" else [float(r[i]) for r in rows],
            )
            for i, name in enumerate(L2_COLUMNS)
        }
    )  # fmt: skip
    table = table.set_column(
        L2_COLUMNS.index("ask_size_2"), "ask_size_2", pa.array([1.0, -1.0, 1.0, None, 1.0])
    )
    wide = tmp_path / "wide.parquet"
    pq.write_table(table, wide)
    nested = tmp_path / "nested.parquet"
    pq.write_table(
        pa.table(
            {
                "timestamp": pa.array([int((T0 + timedelta(seconds=10)).timestamp() * 1000)]),
                "pair": ["ETHUSD"],
                "bids": [[[2000.0, 1.5], [1999.5, 2.5]]],
                "asks": [[[2000.5, 0.5]]],
            }
        ),
        nested,
    )
    run_cli("load", "l2", str(wide), str(nested), dsn=db)
    accounted(db, "wide.parquet", loaded=4, quarantined={"negative size": 1}, dups=0)
    accounted(db, "nested.parquet", loaded=1, quarantined={}, dups=0)
    assert query(
        db, "select ts, bid_price_2, bid_size_2, ask_price_1, ask_price_2 from market.l2_snapshots"
        " where bid_price_1 = 2000"
    ) == [(T0 + timedelta(seconds=10), 1999.5, 2.5, 2000.5, None)]  # fmt: skip
    assert query(db, "select ask_size_2 from market.l2_snapshots where ts = %s", (T0 + timedelta(
        seconds=3),)) == [(None,)]  # fmt: skip


def test_column_mapping(db: str, tmp_path: Path) -> None:
    # The seeds' names (timestamp, pair) and common level names load without a mapping.
    header = ["pair", "timestamp"] + [
        c.replace("_price_", "_px_").replace("_size_", "_qty_") for c in L2_LEVEL_COLUMNS
    ]
    seeds = write(tmp_path / "seeds.csv", seconds(3), header=header)
    run_cli("load", "l2", str(seeds), dsn=db)
    accounted(db, "seeds.csv", loaded=3, quarantined={}, dups=0)

    # Other names: --map, or a mapping file.
    odd = ["instrument_code", "event_time"] + [f"x{i}" for i in range(40)]
    rows = seconds(2, start=T0 + timedelta(minutes=1))
    path = write(tmp_path / "odd.csv", rows, header=odd)
    failed = run_cli("load", "l2", str(path), dsn=db, check=False)
    assert failed.returncode == 1
    assert "missing required column(s) symbol, ts, bid_price_1..10" in failed.stderr
    mapping = ",".join(
        ["instrument_code=symbol", "event_time=ts"]
        + [f"x{i}={c}" for i, c in enumerate(L2_LEVEL_COLUMNS)]
    )
    run_cli("load", "l2", str(path), "--map", mapping, dsn=db)
    accounted(db, "odd.csv", loaded=2, quarantined={}, dups=0)
    map_file = tmp_path / "map.json"
    map_file.write_text(json.dumps(dict(pair.split("=") for pair in mapping.split(","))))
    other = write(tmp_path / "odd2.csv", seconds(2, start=T0 + timedelta(minutes=2)), header=odd)
    run_cli("load", "l2", str(other), "--map-file", str(map_file), dsn=db)
    accounted(db, "odd2.csv", loaded=2, quarantined={}, dups=0)

    bad = run_cli("load", "l2", str(path), "--map", "instrument_code=sym", dsn=db, check=False)
    assert bad.returncode == 1 and "--map: sym is not a column of the table" in bad.stderr


OHLCV = BAR_COLUMNS[:7]  # a bar file as vendors shipped them before spread and ticks


def test_bars(db: str, tmp_path: Path) -> None:
    def bar(minute: int, volume: str = "120", close: str = "1.1001") -> list[str]:
        ts = (T0 + timedelta(minutes=minute)).isoformat()
        return ["EURUSD", ts, "1.1", "1.1002", "1.0999", close, volume]

    rows = [bar(i) for i in range(5)]
    rows += [bar(0), bar(9, volume="-3"), bar(1, close="1.2"), bar(10, close="x")]
    path = write(tmp_path / "bars.csv", rows, header=OHLCV)
    run_cli("load", "bars", str(path), dsn=db)
    accounted(
        db,
        "bars.csv",
        loaded=5,
        quarantined={
            "negative size": 1,
            "conflicting duplicate of (symbol, ts) in the file": 1,
            "non-numeric field": 1,
        },
        dups=1,
    )
    assert count(db, "market.bars_1m") == 5
    # no spread or ticks in the file: NULL
    assert (
        query(db, "select count(*) from market.bars_1m where spread is null and ticks is null")[0][
            0
        ]
        == 5
    )


def _generated_bars(start: datetime, minutes: int) -> list[tuple]:
    specs = generate.load_symbols(ROOT / "seeds" / "symbols.csv")
    chosen = [specs[s] for s in ("EURUSD", "USDJPY", "GBPUSD")]
    return list(generate.generate_bars(chosen, start, start + timedelta(minutes=minutes), seed=4))


def test_bars_spread_and_ticks_in_every_format(db: str, tmp_path: Path) -> None:
    """spread and ticks load from CSV, CSV.gz, JSON lines and Parquet, value for value; a file
    without them (or an object without them) loads them as NULL; each format its own hour."""
    hours = {
        name: _generated_bars(T0 + timedelta(hours=i), 30)
        for i, name in enumerate(
            ["bars.csv", "bars.csv.gz", "bars.jsonl", "bars.parquet", "plain.csv", "plain.parquet"]
        )
    }

    def text(row: tuple) -> list[str]:
        return [row[0], row[1].isoformat(), *(repr(v) for v in row[2:])]

    write(tmp_path / "bars.csv", [text(r) for r in hours["bars.csv"]], header=BAR_COLUMNS)
    write(tmp_path / "bars.csv.gz", [text(r) for r in hours["bars.csv.gz"]], header=BAR_COLUMNS)
    with (tmp_path / "bars.jsonl").open("w") as fh:
        for i, r in enumerate(hours["bars.jsonl"]):
            obj = dict(zip(BAR_COLUMNS, [r[0], r[1].isoformat(), *r[2:]], strict=True))
            if i % 7 == 3:  # an object without them
                del obj["spread"], obj["ticks"]
            fh.write(json.dumps(obj) + "\n")
    columns = list(zip(*hours["bars.parquet"], strict=True))
    pq.write_table(
        pa.table(
            {
                **{n: pa.array(c) for n, c in zip(BAR_COLUMNS[:7], columns[:7], strict=True)},
                "spread": pa.array(columns[7], pa.float64()),
                "ticks": pa.array(columns[8], pa.int32()),
            }
        ),
        tmp_path / "bars.parquet",
    )
    write(tmp_path / "plain.csv", [text(r)[:7] for r in hours["plain.csv"]], header=OHLCV)
    plain = list(zip(*hours["plain.parquet"], strict=True))
    pq.write_table(
        pa.table({n: pa.array(c) for n, c in zip(OHLCV, plain[:7], strict=True)}),
        tmp_path / "plain.parquet",
    )
    run_cli("load", "bars", *(str(tmp_path / name) for name in hours), dsn=db)

    expected = []
    for name, rows in hours.items():
        accounted(db, name, loaded=len(rows), quarantined={}, dups=0)
        for i, r in enumerate(rows):
            absent = name.startswith("plain") or (name == "bars.jsonl" and i % 7 == 3)
            expected.append((*r[:7], None, None) if absent else r)
    stored = query(db, f"select {', '.join(BAR_COLUMNS)} from market.bars_1m order by ts, symbol")
    assert stored == sorted(expected, key=lambda r: (r[1], r[0]))
    assert all(isinstance(r[8], int) for r in stored if r[8] is not None)


def test_bad_spread_and_ticks_are_quarantined(db: str, tmp_path: Path) -> None:
    good = _generated_bars(T0, 6)
    rows = [[r[0], r[1].isoformat(), *(repr(v) for v in r[2:])] for r in good]
    bad = {
        "negative spread": ("-0.0001", "12"),
        "negative ticks": ("0.0001", "-1"),
        "fractional ticks": ("0.0001", "2.5"),
        "non-numeric field": ("0.0001", "many"),
    }
    for i, (spread, ticks) in enumerate(bad.values()):
        rows[i][7:9] = [spread, ticks]
    rows.append([*rows[-1][:7], "", ""])  # the last bar again, without them: a conflict
    huge = rows[-2][:]
    huge[1] = (T0 + timedelta(minutes=30)).isoformat()
    huge[8] = str(2**31)
    rows.append(huge)
    path = write(tmp_path / "bad_bars.csv", rows, header=BAR_COLUMNS)
    run_cli("load", "bars", str(path), dsn=db)
    accounted(
        db,
        "bad_bars.csv",
        loaded=len(good) - len(bad),
        quarantined={
            "negative spread": 1,
            "negative ticks": 1,
            "fractional ticks": 2,  # 2.5, and 2**31, which int4 cannot hold
            "non-numeric field": 1,
            "conflicting duplicate of (symbol, ts) in the file": 1,
        },
        dups=0,
    )
    details = dict(
        query(
            db,
            "select reason || ': ' || detail, count(*) from ops.quarantine"
            " where reason in ('negative spread', 'negative ticks', 'fractional ticks')"
            " group by 1",
        )
    )
    assert details == {
        "negative spread: spread = -0.0001": 1,
        "negative ticks: ticks = -1": 1,
        "fractional ticks: ticks = 2.5": 1,
        "fractional ticks: ticks = 2.14748e+09": 1,
    }


# -- paths the OS refuses -----------------------------------------------------------------------


def _one_line_failures(result: subprocess.CompletedProcess[str]) -> list[str]:
    assert result.returncode == 1, result
    assert "Traceback" not in result.stderr, result.stderr
    return [ln for ln in result.stderr.splitlines() if ln.strip()]


def test_paths_the_os_refuses_fail_in_one_line(db: str, tmp_path: Path) -> None:
    """A name longer than the file system allows, a directory, a file the user may not read,
    a missing file: one FAILED line each and exit 1, never a traceback; the good file of the
    same run is loaded, and nothing of the others reaches the ledger."""
    too_long = tmp_path / ("n" * 300 + ".csv")
    a_directory = tmp_path / "day1.csv"
    a_directory.mkdir()
    unreadable = write(tmp_path / "secret.csv", seconds(3, "USDCHF"))
    unreadable.chmod(0)
    good = write(tmp_path / "good.csv", seconds(5))
    expected = {
        too_long: "file name too long",
        a_directory: "is a directory, not a file",
        unreadable: "permission denied",
        tmp_path / "missing.csv": "no such file",
    }
    # root reads any file: take away the capabilities that let it, so that mode 000 counts
    drop = ["setpriv", "--bounding-set=-dac_override,-dac_read_search", "--"]
    prefix = drop if os.geteuid() == 0 else []
    env = {**os.environ, config.DSN_ENV: db}
    for path, reason in expected.items():
        result = subprocess.run(
            [*prefix, *TF, "load", "l2", str(path)],
            cwd=ROOT, env=env, capture_output=True, text=True, check=False,
        )  # fmt: skip
        assert _one_line_failures(result) == [f"FAILED {path}: {reason}"]
    together = subprocess.run(
        [*prefix, *TF, "load", "l2", *map(str, [too_long, good, a_directory, unreadable])],
        cwd=ROOT, env=env, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert len(_one_line_failures(together)) == 3
    assert "loaded good.csv (csv): 5 rows" in together.stdout
    assert f"  failed: {too_long}: file name too long" in together.stdout
    assert [r[0] for r in query(db, "select file_name from ops.ingest_files")] == ["good.csv"]

    # the mapping file's path, and a command's other paths, the same way
    for args in (
        ["load", "l2", str(good), "--map-file", str(tmp_path / ("m" * 300))],
        ["load", "l2", str(good), "--map-file", str(a_directory)],
    ):
        lines = _one_line_failures(run_cli(*args, dsn=db, check=False))
        assert len(lines) == 1 and lines[0].startswith("tickfeatures: error: --map-file ")
        assert lines[0].endswith(("file name too long", "is a directory"))
    # and its content: broken JSON, bytes that are not text
    broken, binary = tmp_path / "broken.json", tmp_path / "binary.map"
    broken.write_text('{"time": "ts",\n "instrument" "symbol"}')
    binary.write_bytes(b"time=ts\n\xff\xfe=symbol\n")
    for path, reason in (
        (broken, "not valid JSON at line 2, column 15: Expecting ':' delimiter"),
        (binary, "not UTF-8 text (invalid start byte)"),
    ):
        result = run_cli("load", "l2", str(good), "--map-file", str(path), dsn=db, check=False)
        assert result.returncode == 1
        assert _one_line_failures(result) == [f"tickfeatures: error: {path}: {reason}"]


# -- idempotent, resumable, concurrent -----------------------------------------------------------


def test_resume_after_failure(db: str, tmp_path: Path) -> None:
    a = write(tmp_path / "a.csv", seconds(10))
    b = write(tmp_path / "b.csv", seconds(10, start=T0 + timedelta(minutes=1)))
    b_good = b.read_bytes()
    b.write_bytes(b_good[:-20] + b"\n" + b'"unterminated')  # a quote that never closes
    c = tmp_path / "c.csv.gz"
    c.write_bytes(gzip.compress(csv_bytes(seconds(10, start=T0 + timedelta(minutes=2))))[:-30])
    first = run_cli("load", "l2", str(a), str(b), str(c), dsn=db, check=False)
    assert first.returncode == 1
    assert ledger(db)["c.csv.gz"][0] == "failed"
    c.write_bytes(gzip.compress(csv_bytes(seconds(10, start=T0 + timedelta(minutes=2)))))
    b.write_bytes(b_good)
    second = run_cli("load", "l2", str(a), str(b), str(c), dsn=db)
    assert "skipped a.csv" in second.stdout
    assert "loaded c.csv.gz (csv): 10 rows" in second.stdout
    assert count(db) == 30
    assert [r[0] for r in query(db, "select status from ops.ingest_files")].count("failed") == 1


def test_concurrent_loads(db: str, tmp_path: Path, processes: Processes) -> None:
    """Files with overlapping rows (each 3000 s long, starting 1000 s apart) loaded by several
    processes at once: each key once, every row accounted for, and the same file twice at
    once loads once."""
    files = [
        write(tmp_path / f"part{i}.csv.gz", seconds(3000, start=T0 + timedelta(seconds=1000 * i)))
        for i in range(4)
    ]
    twin = files[0]
    procs = [processes.cli("load", "l2", str(f), dsn=db) for f in [*files, twin]]
    outs = [p.communicate(timeout=300) for p in procs]
    assert all(p.returncode == 0 for p in procs), outs
    assert count(db) == 6000  # seconds 0 .. 5999, each once
    book = query(
        db,
        "select status, rows_in, rows_loaded, rows_duplicate from ops.ingest_files",
    )
    assert len(book) == 4 and all(r[0] == "loaded" for r in book)
    assert sum(r[2] for r in book) == 6000 and sum(r[3] for r in book) == 4 * 3000 - 6000
    assert all(r[1] == 3000 for r in book)
    assert sum("skipped part0.csv.gz" in out for out, _ in outs) == 1


def test_progress_and_summary(db: str, tmp_path: Path) -> None:
    a = write(tmp_path / "a.csv.gz", seconds(200))
    b = write(tmp_path / "b.csv", [l2_row("EURUSD", T0 + timedelta(hours=1), bid_size_1=-1)])
    result = run_cli("load", "l2", str(a), str(b), "--progress", dsn=db)
    assert "rows/s" in result.stderr and "[" in result.stderr
    assert (
        "2 files: 200 rows loaded, 1 quarantined (negative size: 1), 0 duplicates skipped,"
        " 0 already loaded, 0 failed"
    ) in result.stdout
    quiet = run_cli("load", "l2", str(a), "--no-progress", dsn=db)
    assert quiet.stderr == ""


def test_python_module_entry(tmp_path: Path) -> None:
    """`--help` of load documents the formats, the mapping and --salvage."""
    result = subprocess.run(
        [sys.executable, "-m", "tickfeatures.cli", "load", "--help"],
        cwd=ROOT, capture_output=True, text=True, check=True,
    )  # fmt: skip
    for text in ("--map", "--map-file", "--salvage", "JSON lines", "Parquet", "milliseconds"):
        assert text in result.stdout


def test_generated_bars_of_28_pairs_load_whole(db: str) -> None:
    """`tickfeatures generate bars --pairs 28 --load`: every generated bar is stored, with its
    spread and ticks, nothing quarantined."""
    run_cli(
        "generate", "bars", "--pairs", "28", "--days", "1", "--start", "2026-03-02T00:00:00+00:00",
        "--load", dsn=db,
    )  # fmt: skip
    assert query(
        db,
        "select count(distinct symbol), count(*), count(spread), count(ticks) from market.bars_1m",
    ) == [(28, 28 * 1440, 28 * 1440, 28 * 1440)]
    assert query(db, "select count(*) from ops.quarantine") == [(0,)]
    bad = run_cli("generate", "bars", "--pairs", "0", "--out", "x.csv", check=False)
    assert bad.returncode != 0 and bad.stderr.strip().endswith("--pairs must be at least 1, got 0")
