"""The first loader: every row loaded, quarantined with a reason, or skipped as a duplicate."""

from __future__ import annotations

import csv
import gzip
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest

from tests.conftest import FreshDatabase, run_cli
from tickfeatures.schema import BAR_COLUMNS, L2_COLUMNS, L2_LEVEL_COLUMNS

pytestmark = pytest.mark.integration

T0 = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)


def book(mid: float, sizes: float = 1.5) -> dict[str, float | None]:
    row: dict[str, float | None] = {}
    for i in range(1, 11):
        row[f"bid_price_{i}"] = round(mid - 0.0001 * i, 5)
        row[f"ask_price_{i}"] = round(mid + 0.0001 * i, 5)
        row[f"bid_size_{i}"] = sizes + i / 10
        row[f"ask_size_{i}"] = sizes + i / 7
    return row


def l2_row(symbol: str | None, ts: datetime | None, **book_values: float | None) -> list[str]:
    values = {"symbol": symbol, "ts": ts.isoformat() if ts else None, **book(1.1), **book_values}
    return ["" if values[c] is None else str(values[c]) for c in L2_COLUMNS]


def write(
    path: Path, rows: list[list[str]], header: list[str] | tuple[str, ...] = L2_COLUMNS
) -> Path:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "wt", newline="") as fh:  # type: ignore[operator]
        writer = csv.writer(fh)
        writer.writerow(header)
        writer.writerows(rows)
    return path


@pytest.fixture()
def db(databases: FreshDatabase) -> str:
    url = databases.create()
    run_cli("migrate", dsn=url)
    return url


def ledger(url: str) -> list[tuple]:
    with psycopg.connect(url) as conn:
        return conn.execute(
            "select file_name, status, rows_in, rows_loaded, rows_quarantined, rows_duplicate,"
            " error from ops.ingest_files order by file_id"
        ).fetchall()


def quarantine(url: str) -> list[tuple]:
    with psycopg.connect(url) as conn:
        return conn.execute(
            "select line_no, reason, detail, record->>'symbol' from ops.quarantine"
            " order by quarantine_id"
        ).fetchall()


def count(url: str, table: str = "market.l2_snapshots") -> int:
    with psycopg.connect(url) as conn:
        return conn.execute(f"select count(*) from {table}").fetchone()[0]  # type: ignore[index]


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
    ]
    path = write(tmp_path / "mixed.csv", rows)
    result = run_cli("load", "l2", str(path), dsn=db)
    assert "loaded mixed.csv: 4 rows, 5 quarantined" in result.stdout
    assert "1 identical duplicates skipped" in result.stdout
    assert ledger(db) == [("mixed.csv", "loaded", 10, 4, 5, 1, None)]
    assert quarantine(db) == [
        (
            5,
            "conflicting duplicate of (symbol, ts) in the file",
            "first occurrence at line 3",
            "EURUSD",
        ),
        (6, "missing symbol", None, None),
        (7, "missing timestamp", None, "EURUSD"),
        (8, "negative size", None, "EURUSD"),
        (9, "non-positive price", None, "EURUSD"),
    ]
    assert count(db) == 4

    # Same file again: skipped by checksum, nothing changes.
    again = run_cli("load", "l2", str(path), dsn=db)
    assert "skipped mixed.csv: already loaded" in again.stdout
    assert count(db) == 4 and len(ledger(db)) == 1

    # Another file overlapping what is loaded: identical rows skipped, changed ones quarantined.
    overlap = write(
        tmp_path / "overlap.csv.gz",
        [
            l2_row("EURUSD", ts[0]),
            l2_row("EURUSD", ts[1], ask_size_1=7.0),
            l2_row("EURUSD", ts[6]),
        ],
    )
    run_cli("load", "l2", str(overlap), dsn=db)
    assert ledger(db)[-1] == ("overlap.csv.gz", "loaded", 3, 1, 1, 1, None)
    assert quarantine(db)[-1] == (
        3,
        "conflicting duplicate of an existing (symbol, ts)",
        None,
        "EURUSD",
    )
    assert count(db) == 5


def test_values_round_trip_exactly(db: str, tmp_path: Path) -> None:
    from tickfeatures import generate

    specs = generate.load_symbols(Path(__file__).resolve().parents[2] / "seeds" / "symbols.csv")
    rows = list(
        generate.generate_l2([specs["EURUSD"], specs["USDJPY"]], T0, timedelta(seconds=30), seed=7)
    )
    path = tmp_path / "gen.csv.gz"
    generate.write_csv(rows, L2_COLUMNS, path)
    run_cli("load", "l2", str(path), dsn=db)
    ((_name, status, rows_in, loaded, quarantined, duplicates, _err),) = ledger(db)
    assert status == "loaded" and rows_in == len(rows)
    assert loaded + quarantined + duplicates == rows_in
    with psycopg.connect(db) as conn:
        stored = {
            (r[0], r[1]): r[2:]
            for r in conn.execute(
                f"select symbol, ts, {', '.join(L2_LEVEL_COLUMNS)} from market.l2_snapshots"
            )
        }
    first_seen: dict[tuple, tuple] = {}
    for row in rows:
        first_seen.setdefault((row[0], row[1]), tuple(row[2:]))
    assert stored == first_seen


def test_unreadable_files_commit_nothing(db: str, tmp_path: Path) -> None:
    good = write(
        tmp_path / "good.csv", [l2_row("EURUSD", T0 + timedelta(seconds=i)) for i in range(50)]
    )
    whole = write(
        tmp_path / "whole.csv.gz",
        [l2_row("GBPUSD", T0 + timedelta(seconds=i)) for i in range(2000)],
    )
    truncated = tmp_path / "truncated.csv.gz"
    truncated.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    garbled = write(
        tmp_path / "garbled.csv",
        [
            l2_row("AUDUSD", T0),
            l2_row("AUDUSD", T0 + timedelta(seconds=1), bid_price_3="abc"),  # type: ignore[arg-type]
        ],
    )
    bad_ts = write(tmp_path / "badts.csv", [["AUDUSD", "yesterday-ish", *l2_row("A", T0)[2:]]])
    wrong = write(
        tmp_path / "wrong_columns.csv",
        [["EURUSD", T0.isoformat(), "1.1"]],
        header=["symbol", "timestamp", "bid_px_1"],
    )
    empty = tmp_path / "empty.csv"
    empty.write_text("")

    result = run_cli(
        "load",
        "l2",
        str(truncated),
        str(garbled),
        str(good),
        str(bad_ts),
        str(wrong),
        str(empty),
        dsn=db,
        check=False,
    )
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert count(db) == 50  # only good.csv
    by_name = {row[0]: row for row in ledger(db)}
    assert by_name["good.csv"][1:4] == ("loaded", 50, 50)
    for name in ("truncated.csv.gz", "garbled.csv", "badts.csv", "wrong_columns.csv", "empty.csv"):
        assert by_name[name][1] == "failed", by_name[name]
        assert by_name[name][3] is None
        assert "\n" not in by_name[name][6]
    assert "truncated.csv.gz: cannot read" in by_name["truncated.csv.gz"][6]
    assert "line 3, column bid_price_3" in by_name["garbled.csv"][6]
    assert "line 2, column ts" in by_name["badts.csv"][6]
    assert by_name["wrong_columns.csv"][6] == (
        "wrong_columns.csv: missing required column(s) ts, bid_price_1..10, bid_size_1..10,"
        " ask_price_1..10, ask_size_1..10; near matches in the file: timestamp (for ts?)"
    )
    assert "empty file" in by_name["empty.csv"][6]
    assert "6 files: 50 rows loaded" in result.stdout

    # A failed file can be loaded once fixed; the good one is not loaded twice.
    garbled.write_text(garbled.read_text().replace("abc", "1.0995"))
    rerun = run_cli("load", "l2", str(garbled), str(good), dsn=db)
    assert "loaded garbled.csv: 2 rows" in rerun.stdout
    assert "skipped good.csv" in rerun.stdout
    assert count(db) == 52


def test_bars_load(db: str, tmp_path: Path) -> None:
    rows = [
        [
            "EURUSD",
            (T0 + timedelta(minutes=i)).isoformat(),
            "1.1",
            "1.1002",
            "1.0999",
            "1.1001",
            "120",
        ]
        for i in range(5)
    ]
    rows.append(["EURUSD", T0.isoformat(), "1.1", "1.1002", "1.0999", "1.1001", "120"])
    rows.append(
        ["EURUSD", (T0 + timedelta(minutes=9)).isoformat(), "1.1", "1.1", "1.1", "1.1", "-3"]
    )
    path = write(tmp_path / "bars.csv", rows, header=BAR_COLUMNS)
    run_cli("load", "bars", str(path), dsn=db)
    assert ledger(db) == [("bars.csv", "loaded", 7, 5, 1, 1, None)]
    assert count(db, "market.bars_1m") == 5
