"""Vendors' formats: each fixture file loads, with `--format` and by detection, to exactly the
values its vendor's format description gives.

The fixtures (tests/fixtures/vendors/, README there) were written from the vendors' public
descriptions, with the expected cells of every row beside each file (`*.expected.json`), by
hand and by the vendor's own encoder (databento_dbn), never by the loader under test. A
file's expected rows list every column the format fills; the others must be NULL. Rows a
format does not load (a Databento record without F_LAST) are listed with their line and a
word of their reason.
"""

from __future__ import annotations

import csv
import gzip
import json
import math
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest

from tests.conftest import ROOT, FreshDatabase, run_cli
from tickfeatures.schema import BAR_VALUE_COLUMNS, L2_LEVEL_COLUMNS

pytestmark = pytest.mark.integration

FIXTURES = ROOT / "tests" / "fixtures" / "vendors"
EXPECTED = sorted(FIXTURES.glob("*/*.expected.json"))
# the fixture's format label -> the loader's --format
FORMAT = {
    "binance-klines": "binance-klines",
    "databento-mbp1-csv": "databento",
    "databento-mbp10-csv": "databento",
    "databento-ohlcv1m-csv": "databento",
    "databento-mbp10-parquet": "databento",
    "databento-dbn-mbp10": "databento",
    "databento-dbn-ohlcv1m": "databento",
    "dukascopy-candles": "dukascopy",
    "dukascopy-ticks": "dukascopy",
    "histdata-ascii-m1": "histdata-ascii-m1",
    "histdata-ascii-tick": "histdata-ascii-tick",
    "histdata-mt-m1": "histdata-mt-m1",
    "lobster": "lobster",
    "tardis-book-snapshot-25": "tardis",
    "tardis-quotes": "tardis",
}


def _data_file(expected: Path) -> Path:
    return expected.with_name(expected.name.removesuffix(".expected.json"))


def _query(url: str, text: str, params: tuple = ()) -> list[tuple]:
    with psycopg.connect(url) as conn:
        return conn.execute(text, params).fetchall()


@pytest.fixture(scope="module")
def dbs(databases: FreshDatabase) -> dict[str, str]:
    out = {}
    for how in ("named", "detected"):
        url = databases.create(f"tf_vendor_{how}")
        run_cli("migrate", dsn=url)
        out[how] = url
    return out


def _check(
    url: str, expected_path: Path, args: list[str], path: Path | None = None, line_shift: int = 0
) -> None:
    """Load the fixture (or `path`, the same data shipped another way; its rows' numbers
    `line_shift` from the fixture's lines) and compare every cell with the expected values."""
    spec = json.loads(expected_path.read_text())
    path = path or _data_file(expected_path)
    result = run_cli("load", spec["kind"], str(path), *args, dsn=url, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    table = "market.l2_snapshots" if spec["kind"] == "l2" else "market.bars_1m"
    columns = L2_LEVEL_COLUMNS if spec["kind"] == "l2" else BAR_VALUE_COLUMNS
    (ledger,) = _query(
        url,
        "select file_id, format, rows_in, rows_loaded, rows_quarantined, rows_duplicate"
        " from ops.ingest_files where file_name = %s and status = 'loaded'",
        (path.name,),
    )
    file_id, fmt, rows_in, loaded, quarantined, duplicate = ledger
    assert fmt == FORMAT[spec["format"]], result.stdout
    not_loaded = spec.get("not_loaded", [])
    assert rows_in == len(spec["rows"]) + len(not_loaded), result.stdout
    assert loaded + duplicate == len(spec["rows"]), result.stdout
    assert quarantined == len(not_loaded), result.stdout
    aside = dict(
        _query(url, "select line_no, reason from ops.quarantine where file_id = %s", (file_id,))
    )
    for row in not_loaded:
        assert row["reason_contains"] in aside.get(row["line"] + line_shift, ""), (row, aside)
    for row in spec["rows"]:
        ts = datetime.fromisoformat(row["ts"].replace("Z", "+00:00"))
        got = _query(
            url,
            f"select {', '.join(columns)} from {table} where symbol = %s and ts = %s",
            (row["symbol"], ts),
        )
        assert len(got) == 1, (path.name, row["symbol"], row["ts"], "not loaded")
        for name, value in zip(columns, got[0], strict=True):
            want = row.get(name)
            if want is None:
                assert value is None, (path.name, row["ts"], name, value)
            else:
                assert value is not None and math.isclose(value, want, rel_tol=1e-12), (
                    path.name,
                    row["ts"],
                    name,
                    value,
                    want,
                )
    # nothing else: the file's rows are the expected ones
    (n,) = _query(
        url,
        "select coalesce(sum(rows_loaded), 0) from ops.ingest_ranges where file_id = %s",
        (file_id,),
    )[0]
    assert n == loaded


@pytest.mark.parametrize("expected", EXPECTED, ids=lambda p: _data_file(p).name)
def test_named_format(dbs: dict[str, str], expected: Path) -> None:
    fmt = FORMAT[json.loads(expected.read_text())["format"]]
    _check(dbs["named"], expected, ["--format", fmt])


@pytest.mark.parametrize("expected", EXPECTED, ids=lambda p: _data_file(p).name)
def test_detected_format(dbs: dict[str, str], expected: Path) -> None:
    """Every fixture's format is told by its header or its name: no flag needed."""
    _check(dbs["detected"], expected, [])


def test_databento_header_never_loads_a_shifted_book(
    databases: FreshDatabase, tmp_path: Path
) -> None:
    """The MBP-10 header through the table's own columns: detection picks Databento; with a
    --map (no detection) the error names the format and suggests no level mapping."""
    url = databases.create()
    run_cli("migrate", dsn=url)
    source = FIXTURES / "databento" / "xnas-itch-20240105.mbp-10.csv"
    mapped = run_cli("load", "l2", str(source), "--map", "ts_recv=ts", dsn=url, check=False)
    assert mapped.returncode == 1
    line = (mapped.stdout + mapped.stderr).strip()
    assert len(line.splitlines()) == 1, line
    assert "--format databento" in line, line
    assert "(for bid_" not in line and "(for ask_" not in line, line
    # a 0-indexed header of the table's own names: level 0 is level 1
    with source.open() as fh:
        rows = list(csv.DictReader(fh))
    out = tmp_path / "zero_indexed.csv.gz"
    header = ["symbol", "ts"] + [
        f"{side}_{what}_{i}"
        for i in range(10)
        for side in ("bid", "ask")
        for what in ("price", "size")
    ]
    with gzip.open(out, "wt", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(header)
        for r in rows[:3]:
            writer.writerow(
                [r["symbol"], int(r["ts_recv"]) // 1000 * 1000]
                + [
                    int(r[f"{side}_{'px' if what == 'price' else 'sz'}_{i:02d}"])
                    / (1e9 if what == "price" else 1)
                    for i in range(10)
                    for side in ("bid", "ask")
                    for what in ("price", "size")
                ]
            )
    run_cli("load", "l2", str(out), dsn=url)
    best = _query(
        url, "select bid_price_1, ask_price_1, bid_size_1 from market.l2_snapshots order by ts"
    )[0]
    first = rows[0]
    assert best == (
        int(first["bid_px_00"]) / 1e9,
        int(first["ask_px_00"]) / 1e9,
        float(first["bid_sz_00"]),
    )


@pytest.mark.parametrize(
    ("header", "message"),
    [
        (["symbol", "ts", "bid_px_00", "bid_price_1", "ask_px_00"], "mix naming conventions"),
        (["symbol", "ts", "bid_px_0", "bid_sz_0", "ask_px_1", "ask_sz_1"], "numbered from 0"),
        (["symbol", "ts", "bid_px_1", "BID_PX_1", "ask_px_1"], "twice"),
    ],
)
def test_ambiguous_level_headers_are_refused(
    databases: FreshDatabase, tmp_path: Path, header: list[str], message: str
) -> None:
    url = databases.create()
    run_cli("migrate", dsn=url)
    path = tmp_path / "levels.csv"
    path.write_text(
        ",".join(header)
        + "\n"
        + ",".join(["X", "2024-01-01T00:00:00Z"] + ["1"] * (len(header) - 2))
        + "\n"
    )
    result = run_cli("load", "l2", str(path), dsn=url, check=False)
    assert result.returncode == 1
    assert message in result.stdout + result.stderr, result.stdout + result.stderr
    assert _query(url, "select count(*) from market.l2_snapshots") == [(0,)]


def _ledger_settings(url: str, name: str) -> tuple[str, dict, int, int, int]:
    (row,) = _query(
        url,
        "select format, settings, rows_loaded, rows_quarantined, rows_duplicate"
        " from ops.ingest_files where file_name = %s",
        (name,),
    )
    return row


def test_general_options_headerless_semicolons_zone_and_symbol_from_name(
    databases: FreshDatabase, tmp_path: Path
) -> None:
    """A file of the user's own making: no header, `;`, the date and the time in two fields
    (day first), stamps in London time across a change of offset, prices in 1/10,000, the
    symbol only in the file name. The expected values come from Python's zoneinfo."""
    from zoneinfo import ZoneInfo

    url = databases.create()
    run_cli("migrate", dsn=url)
    london = ZoneInfo("Europe/London")
    stamps = [
        datetime(2024, 3, 30, 23, 59, 59, 250000),  # GMT (UTC+0)
        datetime(2024, 3, 31, 3, 0, 0, 125000),  # BST (UTC+1) after the change at 01:00 UTC
        datetime(2024, 7, 1, 12, 0, 0),  # BST
        datetime(2024, 12, 2, 8, 30, 15, 1000),  # GMT
    ]
    lines = []
    for i, t in enumerate(stamps):
        bid, ask = 1_912_340 + i * 7, 1_912_410 + i * 9
        lines.append(
            f"{t:%d/%m/%Y};{t:%H:%M:%S}.{t.microsecond // 1000:03d};{bid};{ask};{10 + i};{20 + i}"
        )
    path = tmp_path / "quotes_GBPJPY_2024.txt"
    path.write_text("\n".join(lines) + "\n")
    out = run_cli(
        "load",
        "l2",
        str(path),
        "--no-header",
        "--columns",
        "date,time,bid_price_1,ask_price_1,bid_size_1,ask_size_1",
        "--delimiter",
        ";",
        "--symbol-from-name",
        r"^quotes_([A-Z]{6})_",
        "--tz",
        "Europe/London",
        "--ts-format",
        "%d/%m/%Y %H:%M:%S.%f",
        "--price-scale",
        "0.0001",
        dsn=url,
    )
    got = _query(
        url,
        "select symbol, ts, bid_price_1, ask_price_1, bid_size_1, ask_size_1, bid_price_2"
        " from market.l2_snapshots order by ts",
    )
    want = [
        (
            "GBPJPY",
            t.replace(tzinfo=london).astimezone(UTC),
            (1_912_340 + i * 7) / 10_000,
            (1_912_410 + i * 9) / 10_000,
            10.0 + i,
            20.0 + i,
            None,
        )
        for i, t in enumerate(stamps)
    ]
    assert got == want, out.stdout
    fmt, settings, loaded, quarantined, _ = _ledger_settings(url, path.name)
    assert (fmt, loaded, quarantined) == ("csv", 4, 0)
    # a re-run skips the file; with other settings it says how the file was read
    load_args = out.args[out.args.index("load") :]
    again = run_cli(*load_args, dsn=url)
    assert again.stdout.startswith(f"skipped {path.name}: already loaded as file"), again.stdout
    assert "settings differ" not in again.stdout
    other = [a if a != "Europe/London" else "UTC" for a in load_args]
    again = run_cli(*other, dsn=url)
    assert "tz=Europe/London" in again.stdout and "settings differ" in again.stdout, again
    assert settings == {
        "format": "csv",
        "no_header": True,
        "columns": ["date", "time", "bid_price_1", "ask_price_1", "bid_size_1", "ask_size_1"],
        "delimiter": ";",
        "symbol_from_name": r"^quotes_([A-Z]{6})_",
        "tz": "Europe/London",
        "ts_format": "%d/%m/%Y %H:%M:%S.%f",
        "price_scale": 0.0001,
    }


def test_zone_applies_to_naive_stamps_only(databases: FreshDatabase, tmp_path: Path) -> None:
    url = databases.create()
    run_cli("migrate", dsn=url)
    path = tmp_path / "mixed.csv"
    path.write_text(
        "symbol,ts,open,high,low,close,volume\n"
        "ES,2024-07-01T12:00:00+02:00,1,2,0.5,1.5,10\n"  # an offset: kept
        "ES,2024-07-01 12:01:00,1,2,0.5,1.5,11\n"  # naive: New York (EDT, UTC-4)
        "ES,2024-01-02 12:02:00,1,2,0.5,1.5,12\n"  # naive: New York (EST, UTC-5)
        "ES,1719835380,1,2,0.5,1.5,13\n"  # an epoch number: UTC whatever the zone
    )
    run_cli("load", "bars", str(path), "--tz", "America/New_York", dsn=url)
    got = [t for (t,) in _query(url, "select ts from market.bars_1m order by volume")]
    assert [t.isoformat() for t in got] == [
        "2024-07-01T10:00:00+00:00",
        "2024-07-01T16:01:00+00:00",
        "2024-01-02T17:02:00+00:00",
        "2024-07-01T12:03:00+00:00",
    ]


@pytest.mark.parametrize("block", [None, "200"], ids=["one block", "a block per line"])
@pytest.mark.parametrize("mode", ["quarantine", "first", "last"])
def test_same_microsecond(databases: FreshDatabase, tmp_path: Path, mode: str, block: str) -> None:
    """Records of one symbol that round to the same microsecond: the mode decides which book
    a microsecond keeps; the others are accounted for with a reason, within a block and
    across blocks."""
    url = databases.create()
    run_cli("migrate", dsn=url)
    source = FIXTURES / "databento" / "xnas-itch-20240105.mbp-10.csv"  # raw: ns stamps
    with source.open() as fh:
        rows = list(csv.DictReader(fh))
        header = list(rows[0])
    base = int(rows[0]["ts_recv"])
    # three records in one microsecond (ns 100, 200, 300 after it), then one more
    picked = []
    for k, (r, ns) in enumerate(zip(rows[:4], (100, 200, 300, 5_000), strict=True)):
        picked.append(
            {
                **r,
                "ts_recv": str(base // 1000 * 1000 + ns),
                "flags": "128",
                "bid_sz_00": str(100 + k),
            }
        )
    path = tmp_path / "same.mbp-10.csv"
    with path.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, header)
        writer.writeheader()
        writer.writerows(picked)
    env = {"TICKFEATURES_LOAD_BLOCK": block} if block else None
    args = ["load", "l2", str(path), "--format", "databento", "--same-ts", mode]
    run_cli(*args, dsn=url, env=env)
    sizes = [s for (s,) in _query(url, "select bid_size_1 from market.l2_snapshots order by ts")]
    kept = {"quarantine": 100.0, "first": 100.0, "last": 102.0}[mode]
    assert sizes == [kept, 103.0]
    _, _, loaded, quarantined, duplicate = _ledger_settings(url, path.name)
    assert (loaded, quarantined, duplicate) == (2, 2, 0)
    reasons = sorted(r for (r,) in _query(url, "select reason from ops.quarantine"))
    word = {
        "quarantine": "conflicting duplicate",
        "first": "--same-ts first",
        "last": "--same-ts last",
    }[mode]
    assert len(reasons) == 2 and all(word in r for r in reasons), reasons


def test_bad_rows_of_a_named_format_get_the_loaders_reasons(
    databases: FreshDatabase, tmp_path: Path
) -> None:
    url = databases.create()
    run_cli("migrate", dsn=url)
    source = FIXTURES / "databento" / "xnas-itch-20240108.mbp-10.csv"
    text = source.read_text().splitlines()
    header = text[0].split(",")
    bad_price = text[1].split(",")
    bad_price[header.index("bid_px_03")] = "abc"
    bad_ts = text[2].split(",")
    bad_ts[header.index("ts_recv")] = "yesterday"
    path = tmp_path / "bad.mbp-10.csv"
    path.write_text("\n".join([text[0], ",".join(bad_price), ",".join(bad_ts), *text[3:]]) + "\n")
    run_cli("load", "l2", str(path), dsn=url)
    got = dict(_query(url, "select reason, detail from ops.quarantine where line_no in (2, 3)"))
    assert got == {
        "non-numeric field": "bid_price_4 'abc'",
        "unparseable timestamp": "ts_recv 'yesterday'",
    }, got
    expected = json.loads((FIXTURES / "databento" / f"{source.name}.expected.json").read_text())
    _, _, loaded, quarantined, _ = _ledger_settings(url, path.name)
    assert loaded == len(expected["rows"]) - 2
    assert quarantined == len(expected["not_loaded"]) + 2


def test_binance_header_and_other_intervals(databases: FreshDatabase, tmp_path: Path) -> None:
    """Binance's futures klines carry a header line; files of another interval than 1m are
    refused by name, and Databento bars of another schema are set aside, never loaded as
    one-minute bars."""
    url = databases.create()
    run_cli("migrate", dsn=url)
    source = FIXTURES / "binance" / "BTCUSDT-1m-2024-07.csv"
    expected = json.loads((FIXTURES / "binance" / f"{source.name}.expected.json").read_text())
    headed = tmp_path / "BTCUSDT-1m-2024-08.csv"
    headed.write_text(
        "open_time,open,high,low,close,volume,close_time,quote_volume,count,"
        "taker_buy_volume,taker_buy_quote_volume,ignore\n" + source.read_text()
    )
    run_cli("load", "bars", str(headed), dsn=url)
    got = _query(url, "select count(*), min(open) from market.bars_1m where symbol = 'BTCUSDT'")
    assert got == [(len(expected["rows"]), min(r["open"] for r in expected["rows"]))]
    hourly = tmp_path / "BTCUSDT-1h-2024-07.csv"
    hourly.write_text(source.read_text())
    result = run_cli("load", "bars", str(hourly), dsn=url, check=False)
    assert result.returncode == 1 and "1h klines" in result.stderr, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    ohlcv = FIXTURES / "databento" / "xnas-itch-20240105.ohlcv-1m.csv"
    lines = ohlcv.read_text().splitlines()
    header = lines[0].split(",")
    second = lines[1].split(",")
    second[header.index("rtype")] = "32"  # ohlcv-1s
    seconds = tmp_path / "xnas-itch-20240105.ohlcv-1s.csv"
    seconds.write_text("\n".join([lines[0], ",".join(second)]) + "\n")
    run_cli("load", "bars", str(seconds), dsn=url)
    (reason,) = _query(url, "select reason from ops.quarantine where line_no = 2")
    assert reason == ("not a one-minute bar",)


def test_ts_field_picks_the_exchange_time(databases: FreshDatabase) -> None:
    url = databases.create()
    run_cli("migrate", dsn=url)
    source = FIXTURES / "databento" / "xnas-itch-20240105.mbp-10.csv"
    with source.open() as fh:
        rows = [r for r in csv.DictReader(fh) if int(r["flags"]) & 128]
    run_cli("load", "l2", str(source), "--ts-field", "ts_event", dsn=url)
    got = [ts for (ts,) in _query(url, "select ts from market.l2_snapshots order by ts")]
    # nanoseconds to the nearest microsecond (no fixture stamp ends in exactly 500 ns)
    want = sorted(
        datetime.fromtimestamp(0, UTC) + timedelta(microseconds=(int(r["ts_event"]) + 500) // 1000)
        for r in rows
    )
    assert got == want


def test_files_as_vendors_compress_them(databases: FreshDatabase, tmp_path: Path) -> None:
    """HistData and Binance ship zips (HistData's named unlike the CSV inside, beside a .txt
    report), Databento's batch files are zstd: each loads by detection to the same cells."""
    import zipfile

    import zstandard

    url = databases.create()
    run_cli("migrate", dsn=url)
    histdata = FIXTURES / "histdata" / "DAT_ASCII_EURUSD_M1_202407.csv"
    shipped = tmp_path / "HISTDATA_COM_ASCII_EURUSD_M1202407.zip"
    with zipfile.ZipFile(shipped, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.write(histdata, histdata.name)
        archive.writestr("DAT_ASCII_EURUSD_M1_202407.txt", "HistData.com status report\n")
    _check(url, histdata.with_name(histdata.name + ".expected.json"), [], shipped)
    binance = FIXTURES / "binance" / "ETHUSDT-1m-2025-03.csv"
    shipped = tmp_path / "ETHUSDT-1m-2025-03.zip"
    with zipfile.ZipFile(shipped, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.write(binance, binance.name)
    _check(url, binance.with_name(binance.name + ".expected.json"), [], shipped)
    databento = FIXTURES / "databento" / "xnas-itch-20240105.mbp-10.csv"
    shipped = tmp_path / "xnas-itch-20240105.mbp-10.csv.zst"
    shipped.write_bytes(zstandard.ZstdCompressor().compress(databento.read_bytes()))
    _check(url, databento.with_name(databento.name + ".expected.json"), [], shipped)


def test_dukascopy_local_time_export(databases: FreshDatabase, tmp_path: Path) -> None:
    """Dukascopy's export in local time (`Local time`, stamps ending ` GMT+0200`): the same
    bars as the GMT export once each stamp's own offset is taken off."""
    url = databases.create()
    run_cli("migrate", dsn=url)
    source = FIXTURES / "dukascopy" / "EURUSD_Candlestick_1_M_BID_01.07.2024-01.07.2024.csv"
    lines = source.read_text().splitlines()
    local = ["Local time" + lines[0][len("Gmt time") :]]
    for line in lines[1:]:
        stamp, rest = line.split(",", 1)
        utc = datetime.strptime(stamp, "%d.%m.%Y %H:%M:%S.%f")
        local.append(f"{utc + timedelta(hours=2):%d.%m.%Y %H:%M:%S}.000 GMT+0200,{rest}")
    shipped = tmp_path / "EURUSD_Candlestick_1_M_BID_01.07.2024-01.07.2024.csv"
    shipped.write_text("\n".join(local) + "\n")
    _check(url, source.with_name(source.name + ".expected.json"), [], shipped)


def test_dbn_instrument_ids_name_the_symbol_of_their_day(
    databases: FreshDatabase, tmp_path: Path
) -> None:
    """A venue may give one instrument id to two symbols on two days: each record takes the
    symbol its id had on the record's day (written with Databento's own encoder)."""
    from types import SimpleNamespace

    import databento_dbn as d

    day1, day2 = datetime(2024, 1, 10, 15, tzinfo=UTC), datetime(2024, 1, 11, 15, tzinfo=UTC)

    def ns(t: datetime) -> int:
        return int(t.timestamp()) * 1_000_000_000

    def interval(first: datetime, symbol: str) -> SimpleNamespace:
        start = first.date()
        return SimpleNamespace(start_date=start, end_date=start + timedelta(days=1), symbol=symbol)

    metadata = d.Metadata(
        dataset="XNAS.ITCH", start=ns(day1), end=ns(day2) + 1, stype_in=d.SType.RAW_SYMBOL,
        stype_out=d.SType.INSTRUMENT_ID, schema=d.Schema.MBP_1, symbols=["OLD", "NEW"],
        partial=[], not_found=[],
        mappings=[
            SimpleNamespace(raw_symbol="OLD", intervals=[interval(day1, "77")]),
            SimpleNamespace(raw_symbol="NEW", intervals=[interval(day2, "77")]),
        ],
    )  # fmt: skip
    records = [
        d.MBP1Msg(
            publisher_id=2,
            instrument_id=77,
            ts_event=ns(t),
            price=10**11,
            size=1,
            action=d.Action.ADD,
            side=d.Side.BID,
            depth=0,
            ts_recv=ns(t) + 1_000,
            flags=128,
            ts_in_delta=0,
            sequence=1,
            levels=d.BidAskPair(
                bid_px=10**11, ask_px=101 * 10**9, bid_sz=5, ask_sz=6, bid_ct=1, ask_ct=1
            ),
        )
        for t in (day1, day2)
    ]
    path = tmp_path / "reused.mbp-1.dbn"
    path.write_bytes(metadata.encode() + b"".join(bytes(r) for r in records))
    url = databases.create()
    run_cli("migrate", dsn=url)
    run_cli("load", "l2", str(path), dsn=url)
    got = _query(
        url, "select symbol, ts, bid_price_1, ask_price_1 from market.l2_snapshots order by ts"
    )
    assert got == [
        ("OLD", day1 + timedelta(microseconds=1), 100.0, 101.0),
        ("NEW", day2 + timedelta(microseconds=1), 100.0, 101.0),
    ]


@pytest.mark.parametrize(
    "name", ["xnas-itch-20240105.ohlcv-1m.csv", "xnas-itch-20240105.mbp-1.csv"]
)
def test_databento_parquet_of_other_schemas(
    databases: FreshDatabase, tmp_path: Path, name: str
) -> None:
    """OHLCV-1m and MBP-1 as `DBNStore.to_parquet` writes them (stamps as timestamp[ns, UTC],
    decimal prices as double, an undefined price as NaN), made from the CSV fixtures: the
    same cells as the CSV's expected values."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    source = FIXTURES / "databento" / name
    table = pacsv.read_csv(
        source,
        convert_options=pacsv.ConvertOptions(
            column_types={"ts_recv": pa.string(), "ts_event": pa.string()}
        ),
    )
    columns = {}
    for field in table.schema:
        column = table[field.name].combine_chunks()
        if field.name in ("ts_recv", "ts_event"):
            text = pc.replace_substring(column, "Z", "")
            if pc.all(pc.match_substring_regex(text, r"^\d+$")).as_py():
                column = text.cast(pa.int64()).cast(pa.timestamp("ns", "UTC"))
            else:
                column = text.cast(pa.timestamp("ns")).cast(pa.timestamp("ns", "UTC"))
        elif field.name in ("open", "high", "low", "close") or "_px_" in field.name:
            values = column.cast(pa.float64())
            if "ohlcv" in name:  # raw integers in the CSV: to_parquet writes decimals
                values = pc.divide(values, 1e9)
            column = pc.if_else(pc.is_null(values), float("nan"), values)
        columns[field.name] = column
    shipped = tmp_path / name.replace(".csv", ".parquet")
    pq.write_table(pa.table(columns), shipped)
    url = databases.create()
    run_cli("migrate", dsn=url)
    # a Parquet row's number is its CSV line's less the header's
    _check(url, source.with_name(name + ".expected.json"), [], shipped, line_shift=-1)
