"""Unit tests for tickfeatures.generate (sample data; no database needed)."""

from __future__ import annotations

import csv
import gzip
import io
import math
import re
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from pathlib import Path

import numpy as np
import pytest

from tickfeatures.generate import (
    SymbolSpec,
    default_spec,
    fx_pairs,
    generate_bars,
    generate_l2,
    load_symbols,
    resolve_symbols,
    write_csv,
)
from tickfeatures.schema import BAR_COLUMNS, L2_COLUMNS, LEVELS

SEEDS_CSV = Path(__file__).resolve().parents[2] / "seeds" / "symbols.csv"
START = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)  # a Monday
BID_PX = slice(2, 2 + LEVELS)
BID_SZ = slice(2 + LEVELS, 2 + 2 * LEVELS)
ASK_PX = slice(2 + 2 * LEVELS, 2 + 3 * LEVELS)
ASK_SZ = slice(2 + 3 * LEVELS, 2 + 4 * LEVELS)
TS_PATTERN = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}\+00:00$")


@pytest.fixture(scope="module")
def specs() -> dict[str, SymbolSpec]:
    return load_symbols(SEEDS_CSV)


# one symbol of each price level and asset class of the seed (it lists all 28 FX pairs)
SAMPLE = ("EURUSD", "GBPUSD", "USDJPY", "AUDUSD", "BTCUSD", "ESZ6")


@pytest.fixture(scope="module")
def all_specs(specs: dict[str, SymbolSpec]) -> list[SymbolSpec]:
    return [*(specs[name] for name in SAMPLE), default_spec("XYZABC")]


@pytest.fixture(scope="module")
def big_sample(all_specs: list[SymbolSpec]) -> list[tuple]:
    """About 200k rows over 7 symbols; doubles as the speed sanity check."""
    rows = list(generate_l2(all_specs, START, timedelta(minutes=55), seed=7))
    assert 150_000 < len(rows) < 250_000
    return rows


@pytest.fixture(scope="module")
def by_symbol(big_sample: list[tuple]) -> dict[str, list[tuple]]:
    out: dict[str, list[tuple]] = defaultdict(list)
    for row in big_sample:
        out[row[0]].append(row)
    return out


@pytest.fixture(scope="module")
def books(by_symbol: dict[str, list[tuple]]) -> dict[str, np.ndarray]:
    """Per symbol an (n, 40) float array of the level columns, NaN where None."""
    return {
        sym: np.array([r[2:] for r in rows], dtype=np.float64) for sym, rows in by_symbol.items()
    }


def _decimals(tick: float) -> int:
    text = repr(tick)
    if "e-" in text:
        return int(text.split("e-")[1])
    return len(text.split(".")[1].rstrip("0")) if "." in text else 0


def _on_grid(values: np.ndarray, tick: float) -> bool:
    values = values[~np.isnan(values)]
    k = np.rint(values / tick)
    return bool(np.all(np.round(k * tick, _decimals(tick)) == values))


# ---------------------------------------------------------------------------------------------
# Symbols
# ---------------------------------------------------------------------------------------------
def test_load_symbols(specs: dict[str, SymbolSpec]) -> None:
    assert specs["EURUSD"] == SymbolSpec("EURUSD", 0.00001, 5.0, "fx")
    assert specs["USDJPY"].tick_size == 0.001
    assert specs["BTCUSD"].asset_class == "crypto"
    assert specs["ESZ6"].tick_size == 0.25
    with pytest.raises(AttributeError):
        specs["EURUSD"].tick_size = 1.0  # type: ignore[misc]


def test_resolve_symbols_defaults_unknown(specs: dict[str, SymbolSpec]) -> None:
    resolved = resolve_symbols(["USDJPY", "FOOBAR"], specs)
    assert resolved[0] is specs["USDJPY"]
    assert resolved[1] == SymbolSpec("FOOBAR", 0.00001, 1.0, "unknown")


# ---------------------------------------------------------------------------------------------
# L2: determinism and structure
# ---------------------------------------------------------------------------------------------
def test_l2_deterministic(specs: dict[str, SymbolSpec]) -> None:
    some = [specs["EURUSD"], specs["BTCUSD"], default_spec("NEW")]
    a = list(generate_l2(some, START, timedelta(minutes=2), seed=1))
    b = list(generate_l2(some, START, timedelta(minutes=2), seed=1))
    c = list(generate_l2(some, START, timedelta(minutes=2), seed=2))
    assert a == b
    assert len(a) > 1000
    assert a != c
    assert [r[2:] for r in a[:50]] != [r[2:] for r in c[:50]]


def test_l2_symbol_independent_of_others(specs: dict[str, SymbolSpec]) -> None:
    eur = specs["EURUSD"]
    alone = list(generate_l2([eur], START, timedelta(minutes=3), seed=5))
    mixed = list(
        generate_l2(
            [specs["ESZ6"], default_spec("ZZZ"), eur, specs["BTCUSD"]],
            START,
            timedelta(minutes=3),
            seed=5,
        )
    )
    assert alone == [r for r in mixed if r[0] == "EURUSD"]
    assert {r[0] for r in mixed} == {"ESZ6", "ZZZ", "EURUSD", "BTCUSD"}


def test_l2_shorter_run_is_prefix(specs: dict[str, SymbolSpec]) -> None:
    sym = [specs["USDJPY"]]
    short = list(generate_l2(sym, START, timedelta(minutes=1), seed=3))
    long = list(generate_l2(sym, START, timedelta(minutes=10), seed=3))
    assert long[: len(short)] == short


def test_l2_naive_start_is_utc(specs: dict[str, SymbolSpec]) -> None:
    sym = [specs["GBPUSD"]]
    aware = list(generate_l2(sym, START, timedelta(seconds=20)))
    naive = list(generate_l2(sym, START.replace(tzinfo=None), timedelta(seconds=20)))
    assert aware == naive


def test_l2_empty_inputs(specs: dict[str, SymbolSpec]) -> None:
    assert list(generate_l2([], START, timedelta(minutes=1))) == []
    assert list(generate_l2([specs["EURUSD"]], START, timedelta(0))) == []
    with pytest.raises(ValueError):
        list(generate_l2([specs["EURUSD"]], START, timedelta(minutes=1), cadence_ms=0))


def test_l2_speed_sanity(big_sample: list[tuple]) -> None:
    # The module fixture generated ~200k rows for 7 symbols (no timing assertion on purpose).
    assert len(big_sample) >= 150_000
    assert len({r[0] for r in big_sample}) == 7


def test_l2_row_shape_and_types(big_sample: list[tuple]) -> None:
    assert L2_COLUMNS[:2] == ("symbol", "ts")
    assert len(L2_COLUMNS) == 2 + 4 * LEVELS
    for row in big_sample[:2000]:
        assert len(row) == len(L2_COLUMNS)
        assert type(row[0]) is str
        assert type(row[1]) is datetime
        assert row[1].utcoffset() == timedelta(0)
        assert all(v is None or type(v) is float for v in row[2:])


def test_l2_sorted_and_in_window(big_sample: list[tuple]) -> None:
    keys = [(r[1], r[0]) for r in big_sample]
    assert keys == sorted(keys)
    assert big_sample[0][1] >= START
    assert big_sample[-1][1] < START + timedelta(minutes=55)


def test_l2_cadence_with_jitter(by_symbol: dict[str, list[tuple]]) -> None:
    for rows in by_symbol.values():
        us = np.array([(r[1] - START) // timedelta(microseconds=1) for r in rows])
        d = np.diff(us)
        assert np.all(d >= 0)
        assert 95_000 <= np.median(d) <= 105_000
        normal = d[(d > 0) & (d < 1_000_000)]
        assert normal.min() < 60_000 and normal.max() > 140_000  # jitter present
        assert not np.all(us % 1000 == 0)  # microsecond resolution


def test_l2_prices_on_tick_grid(
    books: dict[str, np.ndarray], all_specs: list[SymbolSpec], by_symbol: dict[str, list[tuple]]
) -> None:
    for spec in all_specs:
        book = books[spec.symbol]
        prices = np.concatenate([book[:, 0:LEVELS], book[:, 2 * LEVELS : 3 * LEVELS]], axis=1)
        assert _on_grid(prices.ravel(), spec.tick_size), spec.symbol
        assert np.nanmin(prices) > 0
        # CSV-clean: repr shows no more decimals than the tick has.
        decimals = _decimals(spec.tick_size)
        for row in by_symbol[spec.symbol][:300]:
            for v in row[BID_PX] + row[ASK_PX]:
                if v is not None:
                    text = repr(v)
                    assert "e" not in text
                    assert len(text.split(".")[1]) <= max(decimals, 1), (spec.symbol, text)


def test_l2_start_levels(books: dict[str, np.ndarray]) -> None:
    first_bid = {sym: book[0, 0] for sym, book in books.items()}
    for fx in ("EURUSD", "GBPUSD", "AUDUSD", "XYZABC"):
        assert 0.5 < first_bid[fx] < 1.5
    assert 120 < first_bid["USDJPY"] < 180
    assert 50_000 < first_bid["BTCUSD"] < 70_000
    assert 4_000 < first_bid["ESZ6"] < 6_000


def test_l2_levels_monotone_except_missing(books: dict[str, np.ndarray]) -> None:
    for sym, book in books.items():
        bid_px, bid_sz = book[:, 0:LEVELS], book[:, LEVELS : 2 * LEVELS]
        ask_px, ask_sz = book[:, 2 * LEVELS : 3 * LEVELS], book[:, 3 * LEVELS :]
        # price None <=> size None, only on levels 6..10, and always a suffix of the side
        for px, sz in ((bid_px, bid_sz), (ask_px, ask_sz)):
            miss = np.isnan(px)
            assert np.array_equal(miss, np.isnan(sz)), sym
            assert not miss[:, :5].any(), sym
            assert np.all(miss[:, 1:] >= miss[:, :-1]), sym
        # strictly decreasing bids / increasing asks where both levels are present
        with np.errstate(invalid="ignore"):
            bid_step = np.diff(bid_px, axis=1)
            ask_step = np.diff(ask_px, axis=1)
        assert np.all(bid_step[~np.isnan(bid_step)] < 0), sym
        assert np.all(ask_step[~np.isnan(ask_step)] > 0), sym


def test_l2_spread_and_sizes(books: dict[str, np.ndarray], all_specs: list[SymbolSpec]) -> None:
    for spec in all_specs:
        book = books[spec.symbol]
        spread_ticks = np.rint((book[:, 2 * LEVELS] - book[:, 0]) / spec.tick_size)
        assert np.mean((spread_ticks >= 1) & (spread_ticks <= 3)) > 0.9, spec.symbol
        sizes = np.concatenate([book[:, LEVELS : 2 * LEVELS], book[:, 3 * LEVELS :]], axis=1)
        sizes = sizes[~np.isnan(sizes)]
        assert np.all(sizes >= 0)
        assert np.mean(sizes == 0) < 0.001
        assert np.all(np.round(sizes, 4) == sizes)
        expected_level_mean = spec.impact_order_size / 3.0
        assert 0.5 * expected_level_mean < np.median(sizes) < 2.5 * expected_level_mean
    fx_sizes = books["EURUSD"][:, LEVELS : 2 * LEVELS].ravel()
    assert 1.0 <= np.nanmean(fx_sizes) <= 3.0


def test_l2_mid_moves_a_few_ticks(books: dict[str, np.ndarray], specs) -> None:
    for sym in ("EURUSD", "USDJPY", "BTCUSD", "ESZ6"):
        bid = books[sym][:, 0]
        steps = np.rint(np.diff(bid) / specs[sym].tick_size)
        moved = steps != 0
        assert 0.005 < moved.mean() < 0.5, sym  # occasionally
        assert np.ptp(bid) > 0, sym


# ---------------------------------------------------------------------------------------------
# L2: anomalies
# ---------------------------------------------------------------------------------------------
def test_l2_missing_levels_present(books: dict[str, np.ndarray]) -> None:
    total = sum(len(b) for b in books.values())
    bid_missing = sum(int(np.isnan(b[:, LEVELS - 1]).sum()) for b in books.values())
    ask_missing = sum(int(np.isnan(b[:, 3 * LEVELS - 1]).sum()) for b in books.values())
    level6_missing = sum(int(np.isnan(b[:, 5]).sum()) for b in books.values())
    assert bid_missing > 0 and ask_missing > 0 and level6_missing > 0
    assert 0.001 < (bid_missing + ask_missing) / total < 0.02


def test_l2_zero_level1_size_present(books: dict[str, np.ndarray]) -> None:
    zeros = sum(
        int((b[:, LEVELS] == 0).sum() + (b[:, 3 * LEVELS] == 0).sum()) for b in books.values()
    )
    assert 0 < zeros < 200


def test_l2_crossed_and_locked_present(books: dict[str, np.ndarray]) -> None:
    total = sum(len(b) for b in books.values())
    locked = sum(int((b[:, 0] == b[:, 2 * LEVELS]).sum()) for b in books.values())
    crossed = sum(int((b[:, 0] > b[:, 2 * LEVELS]).sum()) for b in books.values())
    assert locked > 0 and crossed > 0
    assert (locked + crossed) / total < 0.005


def test_l2_repeated_timestamps_identical_and_different(by_symbol) -> None:
    identical = different = 0
    for rows in by_symbol.values():
        for prev, row in pairwise(rows):
            if row[1] == prev[1]:
                if row == prev:
                    identical += 1
                else:
                    different += 1
    assert identical > 0 and different > 0
    assert identical + different < 1000


def test_l2_gaps_present(by_symbol: dict[str, list[tuple]]) -> None:
    gaps = []
    for rows in by_symbol.values():
        gaps += [
            (b[1] - a[1]).total_seconds()
            for a, b in pairwise(rows)
            if b[1] - a[1] >= timedelta(seconds=1)
        ]
    assert len(gaps) > 10
    assert min(gaps) >= 2.0
    assert max(gaps) <= 31.0


# ---------------------------------------------------------------------------------------------
# Bars
# ---------------------------------------------------------------------------------------------
BAR_START = datetime(2026, 1, 8, 0, 0, 30, tzinfo=UTC)  # Thursday, not minute-aligned
BAR_END = datetime(2026, 1, 13, 0, 0, tzinfo=UTC)  # Tuesday


@pytest.fixture(scope="module")
def bars(specs: dict[str, SymbolSpec]) -> list[tuple]:
    fx = [specs[s] for s in ("EURUSD", "USDJPY", "GBPUSD")]
    return list(generate_bars(fx, BAR_START, BAR_END, seed=11))


def test_bars_shape_sorted_aligned(bars: list[tuple]) -> None:
    assert len(BAR_COLUMNS) == 9
    assert all(len(r) == len(BAR_COLUMNS) for r in bars)
    keys = [(r[1], r[0]) for r in bars]
    assert keys == sorted(keys)
    assert len(set(keys)) == len(keys)
    assert bars[0][1] == datetime(2026, 1, 8, 0, 1, tzinfo=UTC)
    assert bars[-1][1] == BAR_END - timedelta(minutes=1)
    for r in bars:
        assert r[1].second == 0 and r[1].microsecond == 0
        assert r[1].utcoffset() == timedelta(0)
        assert all(type(v) is float for v in r[2:8]) and type(r[8]) is int


def test_bars_ohlc_invariants(bars: list[tuple], specs: dict[str, SymbolSpec]) -> None:
    per_symbol: dict[str, list[tuple]] = defaultdict(list)
    for r in bars:
        o, h, lo, c, v, spread, ticks = r[2:]
        assert h >= max(o, c) and lo <= min(o, c) and lo > 0
        assert v > 0 and v == math.floor(v)
        assert spread > 0 and ticks >= 1
        per_symbol[r[0]].append(r)
    for sym, rows in per_symbol.items():
        tick = specs[sym].tick_size
        values = np.array([r[2:6] for r in rows])
        assert _on_grid(values.ravel(), tick), sym
        assert len({r[5] for r in rows}) > 50  # prices move
        # open ~ previous close: a few ticks at most within a session
        for prev, row in pairwise(rows):
            if row[1] - prev[1] == timedelta(minutes=1):
                assert abs(row[2] - prev[5]) <= 3 * tick + 1e-12, (sym, row[1])


def test_bars_busy_and_quiet_hours(bars: list[tuple], specs: dict[str, SymbolSpec]) -> None:
    """London/New York hours move more, trade more and quote tighter than the hour of the
    roll (21:00-22:00 UTC): per symbol, mean |close - open| in ticks, volume and tick count
    are higher, the spread in ticks lower; each symbol's spread is a few ticks wide."""
    for sym in ("EURUSD", "USDJPY", "GBPUSD"):
        tick = specs[sym].tick_size
        rows = [r for r in bars if r[0] == sym]
        busy = np.array([r[2:] for r in rows if 12 <= r[1].hour < 16])
        quiet = np.array([r[2:] for r in rows if r[1].hour == 21])
        assert len(busy) > 500 and len(quiet) > 100
        busy_move, quiet_move = (np.mean(np.abs(a[:, 3] - a[:, 0])) / tick for a in (busy, quiet))
        assert busy_move > 1.5 * quiet_move, sym
        assert busy[:, 4].mean() > 3 * quiet[:, 4].mean(), sym  # volume
        assert busy[:, 6].mean() > 3 * quiet[:, 6].mean(), sym  # ticks
        assert busy[:, 5].mean() < 0.8 * quiet[:, 5].mean(), sym  # spread
        assert 3 < np.median(busy[:, 5]) / tick < 20, sym


def test_bars_weekend_gap(bars: list[tuple]) -> None:
    times = {r[1] for r in bars}
    fri_close = datetime(2026, 1, 9, 22, 0, tzinfo=UTC)
    sun_open = datetime(2026, 1, 11, 22, 0, tzinfo=UTC)
    assert fri_close.weekday() == 4 and sun_open.weekday() == 6
    assert not any(fri_close <= t < sun_open for t in times)
    assert fri_close - timedelta(minutes=1) in times
    assert sun_open in times
    assert len(times) == (BAR_END - datetime(2026, 1, 8, 0, 1, tzinfo=UTC) - timedelta(days=2)) // (
        timedelta(minutes=1)
    )


def test_bars_deterministic_and_independent(specs: dict[str, SymbolSpec]) -> None:
    eur, jpy = specs["EURUSD"], specs["USDJPY"]
    end = START + timedelta(hours=6)
    a = list(generate_bars([eur, jpy], START, end, seed=1))
    assert a == list(generate_bars([eur, jpy], START, end, seed=1))
    assert a != list(generate_bars([eur, jpy], START, end, seed=2))
    assert list(generate_bars([eur], START, end, seed=1)) == [r for r in a if r[0] == "EURUSD"]
    assert list(generate_bars([eur], end, START)) == []


# ---------------------------------------------------------------------------------------------
# CSV
# ---------------------------------------------------------------------------------------------
def _read_back(path: Path) -> list[list[str]]:
    if path.name.endswith(".gz"):
        with gzip.open(path, "rt", newline="", encoding="utf-8") as fh:
            return list(csv.reader(fh))
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.reader(fh))


def _parse_l2(fields: list[str]) -> tuple:
    return (
        fields[0],
        datetime.fromisoformat(fields[1]),
        *(None if f == "" else float(f) for f in fields[2:]),
    )


@pytest.mark.parametrize("name", ["l2.csv", "l2.csv.gz"])
def test_write_csv_round_trip(name: str, tmp_path: Path, big_sample: list[tuple]) -> None:
    rows = big_sample[:5_000]
    rows += [r for r in big_sample if None in r][:20]
    rows.append(("EURUSD", START, *([1.08512] * (4 * LEVELS))))  # microsecond == 0
    assert any(None in r for r in rows)
    path = tmp_path / name
    assert write_csv(iter(rows), L2_COLUMNS, path) == len(rows)
    if name.endswith(".gz"):
        assert path.read_bytes()[:2] == b"\x1f\x8b"
    table = _read_back(path)
    assert tuple(table[0]) == L2_COLUMNS
    assert len(table) == len(rows) + 1
    for fields, row in zip(table[1:], rows, strict=True):
        assert TS_PATTERN.match(fields[1]), fields[1]
        assert _parse_l2(fields) == row
        for f, v in zip(fields[2:], row[2:], strict=True):
            assert (f == "") == (v is None)
    assert table[-1][1] == "2026-01-05T09:00:00.000000+00:00"
    assert table[-1][2] == "1.08512"


def test_write_csv_bars_and_gzip_is_reproducible(tmp_path: Path, bars: list[tuple]) -> None:
    first, second = tmp_path / "a.csv.gz", tmp_path / "b.csv.gz"
    assert write_csv(bars, BAR_COLUMNS, first) == len(bars)
    write_csv(bars, BAR_COLUMNS, second)
    assert first.read_bytes() == second.read_bytes()
    table = _read_back(first)
    assert tuple(table[0]) == BAR_COLUMNS
    back = [(f[0], datetime.fromisoformat(f[1]), *map(float, f[2:])) for f in table[1:]]
    assert back == bars


def test_write_csv_empty_and_bad_rows(tmp_path: Path) -> None:
    path = tmp_path / "empty.csv"
    assert write_csv([], BAR_COLUMNS, path) == 0
    assert path.read_text(encoding="utf-8") == ",".join(BAR_COLUMNS) + "\n"
    with pytest.raises(ValueError):
        write_csv([("EURUSD", START, 1.0)], BAR_COLUMNS, tmp_path / "bad.csv")


def test_write_csv_plain_text_layout(tmp_path: Path) -> None:
    path = tmp_path / "x.csv"
    ts = datetime(2026, 1, 5, 9, 0, 0, 123456, tzinfo=UTC)
    write_csv([("A,B", ts, 0.1, None)], ("symbol", "ts", "x", "y"), path)
    raw = path.read_bytes()
    assert raw == b'symbol,ts,x,y\n"A,B",2026-01-05T09:00:00.123456+00:00,0.1,\n'
    assert list(csv.reader(io.StringIO(raw.decode())))[1][0] == "A,B"


def test_fx_pairs(specs: dict[str, SymbolSpec]) -> None:
    pairs = fx_pairs(30, specs)
    names = [p.symbol for p in pairs]
    assert len(set(names[:28])) == 28 and names[28:] == ["FX029", "FX030"]
    currencies = {"EUR", "GBP", "AUD", "NZD", "USD", "CAD", "CHF", "JPY"}
    # every unordered pair of the eight currencies, once
    assert {frozenset((n[:3], n[3:])) for n in names[:28]} == {
        frozenset((a, b)) for a in currencies for b in currencies if a != b
    }
    assert pairs[0] == specs["EURUSD"]
    assert all(p.tick_size == (0.001 if p.symbol.endswith("JPY") else 0.00001) for p in pairs)
    with pytest.raises(ValueError):
        fx_pairs(0, specs)


def test_bars_of_28_pairs_have_their_own_price_scales(specs: dict[str, SymbolSpec]) -> None:
    rows = list(generate_bars(fx_pairs(28, specs), BAR_START, BAR_START + timedelta(hours=2)))
    first_close = {}
    for r in rows:
        first_close.setdefault(r[0], r[5])
    assert len(first_close) == 28
    assert max(first_close.values()) / min(first_close.values()) > 300  # 0.53 .. 190
    assert first_close["GBPJPY"] > 150 and first_close["NZDCHF"] < 0.6
