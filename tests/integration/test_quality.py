"""The quality views (migration 0013) against pandas oracles written from their definitions.

Two files are loaded as a user would, with known anomalies: missing deep levels, a missing
price or size alone, crossed, locked and one-sided books, a zero level-1 size, gaps of 7 and
12 s and one of exactly 5 s (not a gap: gaps are strictly longer), identical and conflicting
duplicates, rows quarantined for several reasons, and a late row that makes the second
file's range overlap the first's. The oracle reads the loaded snapshots and recomputes every
figure from the definitions in README "Data quality", never from the views.
"""

from __future__ import annotations

import csv
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import psycopg
import pytest

from tests.conftest import FreshDatabase, run_cli
from tickfeatures.schema import L2_COLUMNS

pytestmark = pytest.mark.integration

T0 = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
LEVELS = range(1, 11)
SLOTS = [(side, i) for side in ("bid", "ask") for i in LEVELS]


# -- the data set ------------------------------------------------------------------------------


def book(mid: float, **changes: float | None) -> dict[str, float | None]:
    """A tidy 10-level book around `mid`, then `changes` (None empties a field)."""
    row: dict[str, float | None] = {}
    for i in LEVELS:
        row[f"bid_price_{i}"] = round(mid - 0.0001 * i, 5)
        row[f"ask_price_{i}"] = round(mid + 0.0001 * i, 5)
        row[f"bid_size_{i}"] = 1.0 + i / 4
        row[f"ask_size_{i}"] = 1.5 + i / 5
    row.update(changes)
    return row


def empty_levels(side: str, levels: range | list[int]) -> dict[str, None]:
    return {f"{side}_{field}_{i}": None for i in levels for field in ("price", "size")}


def line(symbol: str | None, ts: datetime, values: dict[str, float | None]) -> list[str]:
    full = {"symbol": symbol, "ts": ts.isoformat(), **values}
    return ["" if full[c] is None else str(full[c]) for c in L2_COLUMNS]


def series_times(start: datetime, steps: list[float]) -> list[datetime]:
    """Timestamps from `start`, each step (seconds) after the one before."""
    out = [start]
    for step in steps:
        out.append(out[-1] + timedelta(seconds=step))
    return out


# AAA in file a: 40 snapshots every 0.5 s, with a 7 s gap before row 11, exactly 5 s before
# row 21 (no gap) and 12 s before row 31.
AAA_STEPS = [7.0 if i == 10 else 5.0 if i == 20 else 12.0 if i == 30 else 0.5 for i in range(39)]
AAA_TIMES = series_times(T0, AAA_STEPS)
AAA_CHANGES: dict[int, dict[str, float | None]] = {
    2: {**empty_levels("bid", [9, 10]), **empty_levels("ask", [9, 10])},
    3: {**empty_levels("bid", [9, 10]), **empty_levels("ask", [9, 10])},
    4: {"bid_price_3": None},  # the price alone: the level is missing
    5: {"ask_size_7": None},  # the size alone
    6: {"bid_price_1": 1.1003},  # crossed: bid 1.1003 > ask 1.1001
    7: {"bid_price_1": 1.1001},  # locked
    8: {"bid_size_1": 0.0},  # level 1 incomplete, no level missing
    9: empty_levels("ask", [1]),  # one-sided at level 1: neither crossed nor locked
    12: empty_levels("bid", LEVELS),  # no bids at all
    15: {"bid_price_1": 1.1004, **{f"bid_size_{i}": None for i in LEVELS}},  # crossed, no sizes
    31: {"bid_price_1": 1.1001},  # locked, and right after the 12 s gap
}
# BBB in file a: 20 snapshots every second, with 6 s before row 11.
BBB_TIMES = series_times(
    T0 + timedelta(milliseconds=250), [6.0 if i == 10 else 1.0 for i in range(19)]
)
BBB_CHANGES = {3: empty_levels("ask", [10])}
# AAA in file b: 15 snapshots, the first 10 s after file a's last, and a late one inside a's.
B_TIMES = series_times(AAA_TIMES[-1] + timedelta(seconds=10), [0.5] * 14)
LATE = T0 + timedelta(milliseconds=250)


def file_a() -> list[list[str]]:
    rows = [line("AAA", ts, book(1.1, **AAA_CHANGES.get(i, {}))) for i, ts in enumerate(AAA_TIMES)]
    rows += [line("BBB", ts, book(1.3, **BBB_CHANGES.get(i, {}))) for i, ts in enumerate(BBB_TIMES)]
    rows += [
        rows[1],  # identical duplicates: skipped, counted in rows_duplicate
        rows[1],
        line("AAA", AAA_TIMES[2], book(1.1, ask_size_2=9.0)),  # conflicting duplicate
        line(None, T0 + timedelta(seconds=99), book(1.1)),  # missing symbol
        line("BBB", T0 + timedelta(seconds=99), book(1.3, ask_size_4=-1.0)),  # negative size
    ]
    return rows


def file_b() -> list[list[str]]:
    rows = [line("AAA", ts, book(1.101, bid_size_5=None)) for ts in B_TIMES]
    rows += [
        line("AAA", LATE, book(1.1)),  # late: b's AAA range now covers most of a's AAA
        line("AAA", B_TIMES[3] + timedelta(milliseconds=1), book(1.1, bid_price_2=0.0)),
        line("AAA", AAA_TIMES[0], book(1.1, **AAA_CHANGES.get(0, {}))),  # identical to a's
    ]
    return rows


# By construction: rows in, duplicates and quarantined rows per file.
EXPECTED_LEDGER = {"a.csv": (65, 2, 3), "b.csv": (18, 1, 1)}


def write(path: Path, rows: list[list[str]]) -> Path:
    with path.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(L2_COLUMNS)
        writer.writerows(rows)
    return path


@pytest.fixture(scope="module")
def loaded(databases: FreshDatabase, tmp_path_factory: pytest.TempPathFactory) -> str:
    url = databases.create()
    run_cli("migrate", dsn=url)
    tmp = tmp_path_factory.mktemp("quality")
    for name, rows in (("a.csv", file_a()), ("b.csv", file_b())):
        run_cli("load", "l2", str(write(tmp / name, rows)), dsn=url)
    return url


def read(url: str, query: str, params: tuple = ()) -> pd.DataFrame:
    with psycopg.connect(url) as conn:
        conn.execute("set timezone = 'UTC'")
        cur = conn.execute(query, params)  # type: ignore[arg-type]
        return pd.DataFrame(cur.fetchall(), columns=[c.name for c in cur.description or []])


# -- the oracle, from the definitions ---------------------------------------------------------


def oracle_scores(url: str, gap: timedelta = timedelta(seconds=5)) -> pd.DataFrame:
    """One row per loaded snapshot with the documented checks and score."""
    raw = read(url, "select * from market.l2_snapshots")
    raw = raw.astype({c: "float64" for c in L2_COLUMNS[2:]}).sort_values(["symbol", "ts"])
    out = raw[["symbol", "ts"]].copy()
    for side, i in SLOTS:
        out[f"missing_{side}_{i}"] = (
            raw[f"{side}_price_{i}"].isna() | raw[f"{side}_size_{i}"].isna()
        )
    b1, a1 = raw["bid_price_1"], raw["ask_price_1"]
    out["crossed"] = (b1 > a1).fillna(False).astype(bool)
    out["locked"] = (b1 == a1).fillna(False).astype(bool)
    out["missing_levels"] = out[[f"missing_{s}_{i}" for s, i in SLOTS]].sum(axis=1)
    out["missing_level_share"] = out["missing_levels"] / 20
    level1 = raw[["bid_price_1", "ask_price_1", "bid_size_1", "ask_size_1"]]
    out["level1_incomplete"] = (
        level1.isna().any(axis=1) | (raw["bid_size_1"] == 0) | (raw["ask_size_1"] == 0)
    )
    out["prev_ts"] = out.groupby("symbol")["ts"].shift()
    out["seconds_since_prev"] = (out["ts"] - out["prev_ts"]).dt.total_seconds()
    out["gap_before"] = (out["ts"] - out["prev_ts"] > gap).fillna(False).astype(bool)
    out["score"] = (
        1
        - 0.4 * out["crossed"]
        - 0.2 * out["locked"]
        - 0.2 * out["missing_level_share"]
        - 0.3 * out["level1_incomplete"]
        - 0.1 * out["gap_before"]
    )
    return out.reset_index(drop=True)


def summarise(frame: pd.DataFrame, key: str) -> pd.DataFrame:
    by = frame.groupby(key)
    gaps = frame[frame["gap_before"]].groupby(key)
    return pd.DataFrame(
        {
            "snapshots": by.size(),
            "crossed": by["crossed"].sum(),
            "locked": by["locked"].sum(),
            "crossed_share": by["crossed"].mean(),
            "locked_share": by["locked"].mean(),
            "level1_incomplete_share": by["level1_incomplete"].mean(),
            "missing_level_share": by["missing_level_share"].mean(),
            "gaps": gaps.size(),
            "max_gap_seconds": gaps["seconds_since_prev"].max(),
            "mean_score": by["score"].mean(),
            "min_score": by["score"].min(),
        }
    ).fillna({"gaps": 0})


def null_rates(frame: pd.DataFrame, key: str) -> pd.DataFrame:
    rows = []
    for name, group in frame.groupby(key):
        for side, i in SLOTS:
            missing = int(group[f"missing_{side}_{i}"].sum())
            rows.append((name, side, i, len(group), missing, missing / len(group)))
    return pd.DataFrame(
        rows, columns=[key, "side", "level", "snapshots", "null_snapshots", "null_rate"]
    )


def by_file(url: str, scores: pd.DataFrame) -> pd.DataFrame:
    """Each file's snapshots: its symbols' rows with min_ts <= ts <= max_ts of its range."""
    ranges = read(url, "select file_id, symbol, min_ts, max_ts from ops.ingest_ranges")
    parts = []
    for r in ranges.itertuples():
        inside = scores[(scores["symbol"] == r.symbol) & scores["ts"].between(r.min_ts, r.max_ts)]
        parts.append(inside.assign(file_id=r.file_id))
    return pd.concat(parts, ignore_index=True)


def assert_frames(actual: pd.DataFrame, expected: pd.DataFrame, keys: list[str]) -> None:
    actual = actual.sort_values(keys).reset_index(drop=True)
    expected = expected.sort_values(keys).reset_index(drop=True)
    columns = list(expected.columns)
    assert list(actual[keys].itertuples(index=False)) == list(
        expected[keys].itertuples(index=False)
    )
    for column in columns:
        if column in keys:
            continue
        a, e = actual[column], expected[column]
        if e.dtype == bool or a.dtype == bool:
            assert a.astype(bool).tolist() == e.astype(bool).tolist(), column
        elif pd.api.types.is_string_dtype(e) or pd.api.types.is_string_dtype(a):
            assert a.tolist() == e.tolist(), column
        elif pd.api.types.is_datetime64_any_dtype(e):
            assert (a.isna() == e.isna()).all() and (a[a.notna()] == e[e.notna()]).all(), column
        else:
            a, e = a.astype("float64"), e.astype("float64")
            assert (a.isna() == e.isna()).all(), column
            np.testing.assert_allclose(
                a[a.notna()], e[e.notna()], rtol=1e-12, atol=1e-15, err_msg=column
            )


# -- the views ---------------------------------------------------------------------------------


def test_the_data_set_has_what_it_should(loaded: str) -> None:
    ledger = read(
        loaded,
        "select file_name, rows_in, rows_duplicate, rows_quarantined from ops.ingest_files",
    )
    assert {r.file_name: tuple(r[2:]) for r in ledger.itertuples()} == EXPECTED_LEDGER
    scores = oracle_scores(loaded)
    aaa = scores[scores["symbol"] == "AAA"]
    assert aaa["crossed"].sum() == 2 and aaa["locked"].sum() == 2
    assert aaa["gap_before"].sum() == 3  # 7 s, 12 s and 10 s into file b, not the 5 s one


def test_snapshot_score(loaded: str) -> None:
    expected = oracle_scores(loaded)
    actual = read(loaded, "select * from quality.snapshot_score")
    for side in ("bid", "ask"):
        listed = actual[f"{side}_levels_missing"].map(list)
        flags = expected[[f"missing_{side}_{i}" for i in LEVELS]].to_numpy()
        order = actual.sort_values(["symbol", "ts"]).index
        assert listed[order].tolist() == [[i + 1 for i in np.flatnonzero(f)] for f in flags]
    columns = [
        "symbol",
        "ts",
        "score",
        "crossed",
        "locked",
        "missing_levels",
        "missing_level_share",
        "level1_incomplete",
        "gap_before",
        "prev_ts",
        "seconds_since_prev",
    ]
    assert_frames(actual[columns], expected[columns], ["symbol", "ts"])
    assert actual["score"].between(0, 1).all()
    # the worst row: crossed (0.4), level 1 incomplete (0.3), 10 of 20 levels missing (0.1)
    worst = actual.loc[actual["score"].idxmin()]
    assert (worst["symbol"], worst["ts"], worst["score"]) == ("AAA", AAA_TIMES[15], 0.2)


def test_symbol_summary(loaded: str) -> None:
    expected = summarise(oracle_scores(loaded), "symbol").reset_index()
    actual = read(loaded, "select * from quality.symbol_summary")
    assert_frames(actual[list(expected.columns)], expected, ["symbol"])
    firsts = read(loaded, "select symbol, first_ts, last_ts from quality.symbol_summary")
    assert firsts.set_index("symbol").loc["AAA"].tolist() == [AAA_TIMES[0], B_TIMES[-1]]


def test_level_null_rates(loaded: str) -> None:
    expected = null_rates(oracle_scores(loaded), "symbol")
    actual = read(loaded, "select * from quality.level_null_rates")
    assert_frames(actual, expected, ["symbol", "side", "level"])
    bbb_ask_10 = actual.query("symbol == 'BBB' and side == 'ask' and level == 10")
    assert bbb_ask_10["null_snapshots"].tolist() == [1]


def test_gaps_with_the_default_and_another_threshold(loaded: str) -> None:
    for threshold, query in (
        (timedelta(seconds=5), "select * from quality.snapshot_gaps"),
        (timedelta(seconds=6.5), "select * from quality.gaps('6.5 seconds')"),
    ):
        scores = oracle_scores(loaded, threshold)
        gaps = scores[scores["gap_before"]]
        expected = pd.DataFrame(
            {
                "symbol": gaps["symbol"],
                "gap_start": gaps["prev_ts"],
                "gap_end": gaps["ts"],
                "gap_seconds": gaps["seconds_since_prev"],
            }
        )
        assert_frames(read(loaded, query), expected, ["symbol", "gap_start"])
    default = read(loaded, "select symbol, gap_seconds from quality.snapshot_gaps")
    assert sorted(default.itertuples(index=False, name=None)) == [
        ("AAA", 7.0),
        ("AAA", 10.0),
        ("AAA", 12.0),
        ("BBB", 6.0),
    ]


def test_file_summary_and_null_rates(loaded: str) -> None:
    scores = by_file(loaded, oracle_scores(loaded))
    expected = summarise(scores, "file_id").reset_index()
    actual = read(loaded, "select * from quality.file_summary")
    assert_frames(actual[list(expected.columns)], expected, ["file_id"])
    ledger = actual.set_index("file_name")
    for name, (rows_in, duplicates, quarantined) in EXPECTED_LEDGER.items():
        assert ledger.loc[name, "duplicate_rate"] == pytest.approx(duplicates / rows_in, 1e-15)
        assert ledger.loc[name, "quarantine_rate"] == pytest.approx(quarantined / rows_in, 1e-15)
    assert ledger.loc["a.csv", "symbols"] == ["AAA", "BBB"]
    # the late row stretches b's AAA range over a's: those snapshots count for both files
    assert ledger.loc["b.csv", "snapshots"] > 15

    names = actual.set_index("file_id")["file_name"]
    expected_nulls = null_rates(scores, "file_id")
    expected_nulls.insert(1, "file_name", expected_nulls["file_id"].map(names))
    actual_nulls = read(loaded, "select * from quality.file_level_null_rates")
    assert_frames(actual_nulls, expected_nulls, ["file_id", "side", "level"])


def test_quarantine_reasons(loaded: str) -> None:
    quarantined = read(
        loaded,
        "select f.file_id, f.file_name, q.reason from ops.quarantine as q"
        " join ops.ingest_files as f using (file_id)",
    )
    expected = (
        quarantined.groupby(["file_id", "file_name", "reason"]).size().rename("rows").reset_index()
    )
    actual = read(loaded, "select * from quality.file_quarantine_reasons")
    assert_frames(actual, expected, ["file_id", "reason"])
    per_file = actual.groupby("file_name")["rows"].sum().to_dict()
    assert per_file == {name: q for name, (_n, _d, q) in EXPECTED_LEDGER.items()}
    assert actual.set_index("file_name").loc["a.csv", "reason"].nunique() == 3


def test_a_time_range_sees_the_gap_before_its_first_snapshot(loaded: str) -> None:
    t_from, t_to = AAA_TIMES[31], B_TIMES[2]
    scores = oracle_scores(loaded)
    inside = scores[scores["ts"].between(t_from, t_to)]
    actual = read(
        loaded,
        "select * from quality.snapshot_scores(t_from => %s, t_to => %s)",
        (t_from, t_to),
    )
    columns = ["symbol", "ts", "score", "gap_before", "prev_ts", "seconds_since_prev"]
    assert_frames(actual[columns], inside[columns], ["symbol", "ts"])
    first = actual.sort_values("ts").iloc[0]
    assert first["ts"] == t_from and first["gap_before"] and first["seconds_since_prev"] == 12.0

    summary = read(
        loaded,
        "select * from quality.symbol_quality(t_from => %s, t_to => %s, p_symbol => 'AAA')",
        (t_from, t_to),
    )
    expected = summarise(inside[inside["symbol"] == "AAA"], "symbol").reset_index()
    assert_frames(summary[list(expected.columns)], expected, ["symbol"])


def test_views_are_documented(loaded: str) -> None:
    comments = read(
        loaded,
        "select c.relname, obj_description(c.oid, 'pg_class') as comment from pg_class as c"
        " where c.relnamespace = 'quality'::regnamespace and c.relkind = 'v'",
    )
    assert len(comments) == 7
    assert comments["comment"].notna().all()
    score = comments.set_index("relname").loc["snapshot_score", "comment"]
    assert "1 - 0.4*crossed - 0.2*locked - 0.2*missing_level_share" in score


# -- the command -------------------------------------------------------------------------------


def section(output: str, title: str) -> list[str]:
    """The lines of the block of `output` whose first line starts with `title`."""
    for block in output.split("\n\n"):
        if block.startswith(title):
            return block.splitlines()
    raise AssertionError(f"no section {title!r} in:\n{output}")


def pct(share: float) -> str:
    return f"{100 * share:.2f}%"


def test_quality_command_prints_the_figures(loaded: str) -> None:
    result = run_cli("quality", dsn=loaded)
    expected = summarise(oracle_scores(loaded), "symbol")
    symbols = section(result.stdout, "Symbols")
    for symbol, row in expected.iterrows():
        (text,) = [ln for ln in symbols if ln.startswith(f"{symbol} ")]
        cells = text.split()
        assert cells[1] == str(int(row["snapshots"]))
        assert pct(row["crossed_share"]) in cells and pct(row["locked_share"]) in cells
        assert f"{row['mean_score']:.4f}" == cells[-2] and f"{row['min_score']:.4f}" == cells[-1]
        assert cells[-4] == str(int(row["gaps"]))

    files = section(result.stdout, "Files")
    (a_line,) = [ln for ln in files if " a.csv " in ln]
    assert pct(2 / 65) in a_line.split()
    reasons = section(result.stdout, "Quarantined rows by reason")
    assert any("negative size" in ln and ln.split()[-1] == "1" for ln in reasons)

    nulls = section(result.stdout, "Levels missing")
    (bbb_ask,) = [ln for ln in nulls if ln.split()[:2] == ["BBB", "ask"]]
    assert bbb_ask.split()[2:] == ["-"] * 9 + [f"{100 / 20:.2f}"]

    gaps = section(result.stdout, "Gaps of more than 5 s")
    assert gaps[0] == "Gaps of more than 5 s: 4, longest 12.000 s"


def test_quality_command_options(loaded: str) -> None:
    result = run_cli("quality", "--symbol", "AAA", "--gap", "6.5", dsn=loaded)
    assert "Gaps of more than 6.5 s: 3, longest 12.000 s" in result.stdout
    assert not [ln for ln in section(result.stdout, "Symbols") if ln.startswith("BBB")]

    start = AAA_TIMES[20].isoformat()
    end = AAA_TIMES[25].isoformat()
    ranged = run_cli("quality", "--symbol", "AAA", "--from", start, "--to", end, dsn=loaded)
    (aaa,) = [ln for ln in section(ranged.stdout, "Symbols") if ln.startswith("AAA")]
    assert aaa.split()[1] == "6" and "Gaps of more than 5 s: none" in ranged.stdout

    one_file = run_cli("quality", "--file", "b.csv", dsn=loaded)
    assert "Data quality of file b.csv" in one_file.stdout
    files = section(one_file.stdout, "Files")
    assert len(files) == 4 and " b.csv " in files[3]
    # b's late row stretched its AAA range over a's, so a's gaps are b's too
    assert "Gaps of more than 5 s: 3, longest 12.000 s" in one_file.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--symbol", "NOPE"], "unknown symbol 'NOPE'"),
        (["--from", "2030-01-01", "--to", "2030-01-02"], "no snapshots in range"),
        (["--from", "yesterday"], "is not an ISO-8601 time"),
        (["--from", "2026-03-03", "--to", "2026-03-02"], "is after --to"),
        (["--gap", "0"], "must be a positive number of seconds"),
        (["--file", "missing.csv"], "no file named 'missing.csv'"),
    ],
)
def test_quality_command_errors(loaded: str, args: list[str], message: str) -> None:
    result = run_cli("quality", *args, dsn=loaded, check=False)
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("tickfeatures: error:"), result.stderr
    assert message in lines[0]
