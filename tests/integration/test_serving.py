"""Serving features on a database built the README's way (`migrate`, `load`, `refresh`):

- the latest vector (features.latest_l2 / latest_bars and the *_all views) is the newest row
  of the marts, with staleness, read by index scans only, and equals the training-set row of
  an event at the newest time;
- a point-in-time training set equals an independent as-of oracle (pandas merge_asof on the
  feature tables read whole, allow_exact_matches as FEATURE_DEFINITIONS requires: a snapshot
  row at ts is known at ts, a bar row when it closes, open + 1 minute), with max_age as
  merge_asof's tolerance; no source time is after its event. Events sit at exact snapshot
  times, between snapshots, before a symbol's first row, on and just before bar boundaries;
- the three doors (SQL features.training_set, Python tickfeatures.training_set, the CLI)
  give identical frames;
- bad input is a one-line error naming it.
"""

from __future__ import annotations

import fnmatch
import os
import re
import shlex
from datetime import timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import psycopg
import pytest

import tickfeatures
from tests.conftest import ROOT, FreshDatabase, run_cli

pytestmark = [pytest.mark.integration, pytest.mark.slow]

SEED = int(os.environ.get("TICKFEATURES_TEST_SEED", "11"))
L2_START = pd.Timestamp("2026-01-05T09:00:00Z")
L2_SYMBOLS = ["EURUSD", "GBPUSD"]
BAR_SYMBOLS = ["EURUSD", "USDJPY"]


@pytest.fixture(scope="module")
def served(databases: FreshDatabase, tmp_path_factory: pytest.TempPathFactory) -> dict:
    tmp = tmp_path_factory.mktemp("serving")
    snapshots, bars = tmp / "l2.csv.gz", tmp / "bars.csv"
    run_cli(
        "generate", "l2", "--symbols", ",".join(L2_SYMBOLS), "--minutes", "12",
        "--seed", str(SEED), "--start", L2_START.isoformat(), "--out", str(snapshots),
    )  # fmt: skip
    run_cli(
        "generate", "bars", "--symbols", ",".join(BAR_SYMBOLS), "--days", "3",
        "--seed", str(SEED), "--start", "2026-01-04T21:00:00+00:00", "--out", str(bars),
    )  # fmt: skip
    url = databases.create("tf_serving")
    run_cli("migrate", dsn=url)
    run_cli("load", "l2", str(snapshots), dsn=url)
    run_cli("load", "bars", str(bars), dsn=url)
    run_cli("refresh", dsn=url)
    with psycopg.connect(url) as conn:
        catalog = pd.DataFrame(
            conn.execute(
                "select name, family, model, available_after from features.feature_catalog"
            ).fetchall(),
            columns=["name", "family", "model", "available_after"],
        )
        models = sorted(catalog["model"].unique())
        tables = {model: _table(conn, f"features.{model}") for model in models}
    return {"url": url, "tmp": tmp, "catalog": catalog, "tables": tables}


def _table(conn: psycopg.Connection, relation: str) -> pd.DataFrame:
    cur = conn.execute(f"select * from {relation} order by symbol, ts")
    frame = pd.DataFrame(cur.fetchall(), columns=[c.name for c in cur.description or []])
    frame["ts"] = pd.to_datetime(frame["ts"], utc=True)
    return frame


def l2_names(catalog: pd.DataFrame) -> list[str]:
    """Every feature of the snapshot and heavy families (no targets, no bars), as model.name
    (realized_volatility alone is ambiguous: a volatility column and a bar family)."""
    chosen = catalog[
        (catalog["available_after"] == timedelta(0)) & (catalog["family"] != "targets")
    ]
    return [f"{m}.{n}" for m, n in zip(chosen["model"], chosen["name"], strict=True)]


def bar_names(catalog: pd.DataFrame) -> list[str]:
    chosen = catalog[catalog["available_after"] == timedelta(minutes=1)]
    return [f"{m}.{n}" for m, n in zip(chosen["model"], chosen["name"], strict=True)]


def make_events(served: dict, rng: np.random.Generator) -> pd.DataFrame:
    """Events at exact snapshot times, between snapshots, before each symbol's first row, on
    bar boundaries (10:01:00.000 sees the 10:00 bar) and one millisecond before them (does
    not), and at random times; with an id and a label of the user's."""
    tables = served["tables"]
    stamps: list[tuple[str, pd.Timestamp]] = []
    micro = tables["microstructure"]
    for symbol in L2_SYMBOLS:
        ts = micro[micro["symbol"] == symbol]["ts"].reset_index(drop=True)
        exact = ts.iloc[rng.choice(len(ts), 40, replace=False)]
        stamps += [(symbol, t) for t in exact]
        between = ts.iloc[rng.choice(len(ts) - 1, 40, replace=False)]
        stamps += [
            (symbol, t + pd.Timedelta(microseconds=int(rng.integers(1, 900)))) for t in between
        ]
        stamps += [(symbol, ts.iloc[0] - pd.Timedelta(seconds=1)), (symbol, ts.iloc[0])]
        stamps += [(symbol, ts.iloc[-1]), (symbol, ts.iloc[-1] + pd.Timedelta(hours=1))]
    bar_table = tables["time_features"]
    for symbol in BAR_SYMBOLS:
        ts = bar_table[bar_table["symbol"] == symbol]["ts"].reset_index(drop=True)
        opens = ts.iloc[rng.choice(len(ts), 40, replace=False)]
        for t in opens:
            stamps += [
                (symbol, t + pd.Timedelta(minutes=1)),
                (symbol, t + pd.Timedelta(minutes=1) - pd.Timedelta(milliseconds=1)),
                (symbol, t + pd.Timedelta(seconds=int(rng.integers(0, 60)))),
            ]
        stamps += [(symbol, ts.iloc[0]), (symbol, ts.iloc[0] - pd.Timedelta(days=1))]
        stamps += [(symbol, ts.iloc[-1] + pd.Timedelta(minutes=1))]
    events = pd.DataFrame(stamps, columns=["symbol", "ts"])
    events = events.sample(frac=1.0, random_state=int(rng.integers(2**31))).reset_index(drop=True)
    events.insert(0, "event_id", np.arange(len(events), dtype=np.int64) * 7)
    events["label"] = rng.normal(size=len(events))
    return events


@pytest.fixture(scope="module")
def events(served: dict) -> pd.DataFrame:
    return make_events(served, np.random.default_rng(SEED))


def oracle(served: dict, events: pd.DataFrame, names: list[str], max_age=None) -> pd.DataFrame:
    """pandas merge_asof per model: the newest row whose known time (ts + available_after)
    is at or before the event (allow_exact_matches=True), within max_age when given."""
    catalog = served["catalog"].set_index("name")
    out = events.reset_index(drop=True).copy()
    out["_order"] = np.arange(len(out))
    models: dict[str, list[str]] = {}
    for name in names:
        model, _, column = name.rpartition(".")
        models.setdefault(model or catalog.loc[column, "model"], []).append(column)
    for model, columns in models.items():
        table = served["tables"][model]
        ordered = [c for c in table.columns if c in columns]
        lag = pd.Timedelta(catalog.loc[ordered[0], "available_after"])
        right = table[["symbol", "ts", *ordered]].rename(columns={"ts": f"{model}_ts"})
        right["_known"] = right[f"{model}_ts"] + lag
        right = right.sort_values("_known", kind="stable")
        left = out[["_order", "symbol", "ts"]].sort_values("ts", kind="stable")
        merged = pd.merge_asof(
            left, right, left_on="ts", right_on="_known", by="symbol",
            direction="backward", allow_exact_matches=True,
            tolerance=None if max_age is None else pd.Timedelta(max_age),
        )  # fmt: skip
        merged = merged.sort_values("_order").drop(columns=["_known", "symbol", "ts", "_order"])
        out = pd.concat([out, merged.reset_index(drop=True)], axis=1)
    return out.drop(columns="_order")


def python_door(url: str, events: pd.DataFrame, names: list[str], max_age=None) -> pd.DataFrame:
    with psycopg.connect(url) as conn:
        return tickfeatures.training_set(conn, events, names, max_age=max_age)


def sql_door(url: str, events: pd.DataFrame, names: list[str], max_age=None) -> pd.DataFrame:
    """features.training_set from SQL, as any client would call it."""
    with psycopg.connect(url) as conn:
        conn.execute(
            "create temporary table my_events (event_id bigint, symbol text, ts timestamptz,"
            " label double precision)"
        )
        with conn.cursor().copy("copy my_events from stdin") as copy:
            for row in events[["event_id", "symbol", "ts", "label"]].itertuples(index=False):
                copy.write_row((int(row.event_id), row.symbol, row.ts.to_pydatetime(), row.label))
        count = conn.execute(
            "select features.training_set('my_events', %s, %s::interval)", (names, max_age)
        ).fetchone()[0]  # type: ignore[index]
        frame = _table_in_order(conn, "training_set")
    assert count == len(events)
    return frame


def _table_in_order(conn: psycopg.Connection, relation: str) -> pd.DataFrame:
    cur = conn.execute(f"select * from {relation}")
    frame = pd.DataFrame(cur.fetchall(), columns=[c.name for c in cur.description or []])
    return frame


def _normalise(frame: pd.DataFrame) -> pd.DataFrame:
    """Event order by event_id, timestamps as UTC, numbers as float (NULL = NaN)."""
    frame = frame.sort_values("event_id").reset_index(drop=True).copy()
    for column in frame.columns:
        if column == "ts" or column.endswith("_ts"):
            frame[column] = pd.to_datetime(frame[column], utc=True)
        elif column not in ("symbol",):
            frame[column] = pd.to_numeric(frame[column].astype("object"), errors="raise").astype(
                "float64"
            )
    return frame


def _compare(got: pd.DataFrame, want: pd.DataFrame) -> list[str]:
    got, want = _normalise(got), _normalise(want)
    assert list(got.columns) == list(want.columns), (list(got.columns), list(want.columns))
    problems = []
    for column in got.columns:
        if column.endswith("_ts") or column == "ts":
            a, b = got[column], want[column]
            differ = ~((a == b) | (a.isna() & b.isna()))
            if differ.any():
                i = int(np.flatnonzero(differ.to_numpy())[0])
                problems.append(f"{column}: event {got['event_id'][i]}: {a[i]} != {b[i]}")
    numeric = [
        c for c in got.columns if c not in ("symbol", "ts", "event_id") and not c.endswith("_ts")
    ]
    problems += _numeric_mismatches(got, want, numeric)
    return problems


def _numeric_mismatches(got: pd.DataFrame, want: pd.DataFrame, columns: list[str]) -> list[str]:
    """Exact equality with identical NULLs: both sides read the same stored values."""
    problems = []
    for column in columns:
        a, b = (
            pd.to_numeric(frame[column].astype("object")).astype("float64").to_numpy()
            for frame in (got, want)
        )
        same = (a == b) | (np.isnan(a) & np.isnan(b))
        if not same.all():
            i = int(np.flatnonzero(~same)[0])
            problems.append(
                f"{column}: {int((~same).sum())} events differ, e.g. event {got['event_id'][i]}"
                f" ({got['symbol'][i]} {got['ts'][i]}): {a[i]!r} != {b[i]!r}"
            )
    return problems


def test_the_history_has_every_kind_of_row(served: dict) -> None:
    tables = served["tables"]
    for model in ["microstructure", "ofi", "hht", "garch", "l2_targets", "time_features"]:
        assert len(tables[model]) > 0, model
    assert len(l2_names(served["catalog"])) > 150
    assert len(bar_names(served["catalog"])) > 700


@pytest.mark.parametrize("kind", ["l2", "bars"])
def test_all_l2_or_bar_features_equal_the_as_of_oracle(served: dict, events, kind: str) -> None:
    names = l2_names(served["catalog"]) if kind == "l2" else bar_names(served["catalog"])
    got = python_door(served["url"], events, names)
    want = oracle(served, events, names)
    problems = _compare(got, want)
    assert not problems, f"seed {SEED}\n" + "\n".join(problems[:20])
    # not vacuous: most events found rows, some (before the first row) found none
    stamp = next(c for c in got.columns if c.endswith("_ts"))
    assert 0 < got[stamp].isna().sum() < len(got) // 2


def test_no_source_time_is_after_its_event(served: dict, events) -> None:
    names = l2_names(served["catalog"]) + bar_names(served["catalog"])
    got = python_door(served["url"], events, names)
    catalog = served["catalog"].drop_duplicates("model").set_index("model")
    for column in [c for c in got.columns if c.endswith("_ts")]:
        lag = pd.Timedelta(catalog.loc[column[: -len("_ts")], "available_after"])
        known = pd.to_datetime(got[column], utc=True) + lag
        late = known > got["ts"]
        assert not late.any(), f"{column}: {got[late][['symbol', 'ts', column]].head()}"


def test_bar_boundaries(served: dict) -> None:
    """An event at 10:01:00.000 sees the 10:00 bar; one at 10:00:59.999 sees the 09:59 bar."""
    bars = served["tables"]["time_features"]
    symbol = BAR_SYMBOLS[0]
    opens = bars[bars["symbol"] == symbol]["ts"].reset_index(drop=True)
    t = opens.iloc[len(opens) // 2]
    assert opens.iloc[len(opens) // 2 - 1] == t - pd.Timedelta(minutes=1)
    events = pd.DataFrame(
        {
            "symbol": [symbol, symbol],
            "ts": [
                t + pd.Timedelta(minutes=1),
                t + pd.Timedelta(minutes=1) - pd.Timedelta(milliseconds=1),
            ],
        }
    )
    got = python_door(served["url"], events, ["time_features"])
    assert list(pd.to_datetime(got["time_features_ts"], utc=True)) == [
        t,
        t - pd.Timedelta(minutes=1),
    ]


def test_max_age_is_merge_asof_tolerance(served: dict, events) -> None:
    names = ["ofi_10s", "spread_bps", "hht_trend_strength", "rsi_rate_w15"]
    got = python_door(served["url"], events, names, max_age="2 seconds")
    want = oracle(served, events, names, max_age="2s")
    problems = _compare(got, want)
    assert not problems, "\n".join(problems[:20])
    full = python_door(served["url"], events, names)
    assert got["ofi_ts"].isna().sum() > full["ofi_ts"].isna().sum()  # max_age did blank some


def test_the_three_doors_give_identical_results(served: dict, events) -> None:
    names = ["ofi", "volatility_*", "hht", "technical_rate", "bar_spread_bps"]
    python = python_door(served["url"], events, names, max_age="1 hour")
    sql_frame = sql_door(served["url"], events, names, max_age="1 hour")
    path = served["tmp"] / "events.csv"
    csv = events.copy()
    csv["ts"] = csv["ts"].map(lambda t: t.isoformat())
    csv.to_csv(path, index=False)
    out = served["tmp"] / "training.parquet"
    result = run_cli(
        "training-set", str(path), "--features", *names, "--max-age", "1 hour",
        "--out", str(out), dsn=served["url"],
    )  # fmt: skip
    assert "wrote" in result.stdout
    cli = pd.read_parquet(out)
    assert list(python.columns) == list(sql_frame.columns) == list(cli.columns)
    for other in (sql_frame, cli):
        problems = _compare(other, python)
        assert not problems, "\n".join(problems[:20])


def test_selection_by_name_family_glob_and_catalog_query(served: dict) -> None:
    catalog = served["catalog"]
    events = pd.DataFrame({"symbol": ["EURUSD"], "ts": [L2_START + pd.Timedelta(minutes=5)]})
    with psycopg.connect(served["url"]) as conn:
        _check_selection(conn, catalog, events)


def _check_selection(conn: psycopg.Connection, catalog: pd.DataFrame, events: pd.DataFrame) -> None:
    ofi = list(catalog[catalog["family"] == "ofi"]["name"])
    family = tickfeatures.training_set(conn, events, ["ofi"])
    assert [c for c in family.columns if c in ofi] == sorted(ofi, key=list(family.columns).index)
    assert set(family.columns) == {"symbol", "ts", "ofi_ts", *ofi}
    glob = tickfeatures.training_set(conn, events, ["ofi_1*"])
    matching = {n for n in catalog["name"] if fnmatch.fnmatchcase(n, "ofi_1*")}
    assert {"ofi_10s", "ofi_1m", "ofi_10s_hht_qualified"} <= matching
    assert {c for c in glob.columns if not c.endswith("_ts")} - {"symbol", "ts"} == matching
    query = "select model || '.' || name from features.feature_catalog where name like '%spread%'"
    names = [r[0] for r in conn.execute(query)]
    assert len(names) > 3
    by_query = tickfeatures.training_set(conn, events, names)
    assert {n.split(".")[1] for n in names} <= set(by_query.columns)
    # a name that is a feature's and a family's: an error asking for the qualified form
    with pytest.raises(psycopg.Error, match=r"write volatility\.realized_volatility"):
        tickfeatures.training_set(conn, events, ["realized_volatility"])
    conn.rollback()
    qualified = tickfeatures.training_set(conn, events, ["volatility.realized_volatility"])
    assert [c for c in qualified.columns if c not in events.columns] == [
        "volatility_ts",
        "realized_volatility",
    ]
    bar_family = tickfeatures.training_set(conn, events, ["realized_volatility.*"])
    assert "realized_volatility_ts" in bar_family.columns
    assert "realized_volatility" not in bar_family.columns
    # targets: never from a glob or another family, only by name
    targets = list(catalog[catalog["family"] == "targets"]["name"])
    assert targets
    everything = tickfeatures.training_set(conn, events, ["*"])
    assert not set(targets) & set(everything.columns)
    asked = tickfeatures.training_set(conn, events, [targets[0]])
    assert targets[0] in asked.columns and "l2_targets_ts" in asked.columns


@pytest.mark.parametrize("kind", ["l2", "bars"])
def test_latest_vector_is_the_newest_row_and_the_training_set_at_that_time(
    served: dict, kind: str
) -> None:
    url = served["url"]
    # bars: the loaded ones' symbols and those whose snapshots give bars (K0)
    symbols = L2_SYMBOLS if kind == "l2" else sorted({*BAR_SYMBOLS, *L2_SYMBOLS})
    mart = "l2_features" if kind == "l2" else "bar_features"
    with psycopg.connect(url) as conn:
        every = _table_in_order(conn, f"features.latest_{kind}_all")
        assert sorted(every["symbol"]) == sorted(symbols)
        for symbol in symbols:
            cur = conn.execute(f"select * from features.latest_{kind}(%s)", (symbol,), prepare=True)
            rows = cur.fetchall()
            assert len(rows) == 1
            latest = pd.DataFrame(rows, columns=[c.name for c in cur.description or []])
            newest = conn.execute(
                f"select max(ts) from features.{mart} where symbol = %s", (symbol,)
            ).fetchone()[0]  # type: ignore[index]
            raw = conn.execute(
                "select max(ts) from market.l2_snapshots where symbol = %(s)s"
                if kind == "l2"
                else "select greatest((select max(ts) from market.bars_1m where symbol = %(s)s),"
                " (select max(ts) from features.bars_1m_l2 where symbol = %(s)s))",
                {"s": symbol},
            ).fetchone()[0]  # type: ignore[index]
            assert latest["feature_ts"][0] == latest["ts"][0] == newest
            assert latest["staleness"][0] == raw - newest
            same = every[every["symbol"] == symbol].reset_index(drop=True)
            assert (
                _numeric_mismatches(
                    latest.assign(event_id=0), same.assign(event_id=0), _numbers(latest)
                )
                == []
            )
            # the training set of an event at the newest time
            at = newest if kind == "l2" else newest + timedelta(minutes=1)
            names = l2_names(served["catalog"]) if kind == "l2" else bar_names(served["catalog"])
            row = tickfeatures.training_set(
                conn, pd.DataFrame({"symbol": [symbol], "ts": [pd.Timestamp(at)]}), names
            )
            shared = [c for c in _numbers(latest) if c in row.columns]
            assert len(shared) == len(names)
            assert (
                _numeric_mismatches(
                    latest[shared].assign(event_id=0, symbol=symbol, ts=at),
                    row[shared].assign(event_id=0, symbol=symbol, ts=at),
                    shared,
                )
                == []
            )


def _numbers(frame: pd.DataFrame) -> list[str]:
    return [
        c for c in frame.columns
        if c not in ("symbol", "ts", "feature_ts", "staleness") and not c.endswith("_window_end")
    ]  # fmt: skip


@pytest.mark.parametrize("kind", ["l2", "bars"])
def test_latest_vector_reads_by_index_only(served: dict, kind: str) -> None:
    """Every read has an index path: with sequential and bitmap scans priced out (the test's
    tables are small enough that the planner would rightly pick them), none is left."""
    with psycopg.connect(served["url"]) as conn:
        conn.execute("set enable_seqscan = off")
        conn.execute("set enable_bitmapscan = off")
        plan = "\n".join(
            r[0]
            for r in conn.execute(
                f"explain select * from features.latest_{kind}(%s)", (L2_SYMBOLS[0],)
            )
        )
    assert "Seq Scan" not in plan, plan
    assert "Function Scan" not in plan, plan  # inlined into the caller's query


BAD = [
    (["no_such_feature"], None, "unknown feature 'no_such_feature'"),
    (["ofi_10"], None, "unknown feature 'ofi_10' (did you mean"),
]


@pytest.mark.parametrize(("names", "max_age", "message"), BAD)
def test_unknown_features_are_one_line_errors(served: dict, names, max_age, message) -> None:
    events = pd.DataFrame({"symbol": ["EURUSD"], "ts": [L2_START]})
    with pytest.raises(psycopg.Error) as caught:
        python_door(served["url"], events, names, max_age=max_age)
    assert message in str(caught.value).splitlines()[0]


def _cli_error(served: dict, tmp: Path, csv_text: str, *features: str) -> str:
    path = tmp / "bad_events.csv"
    path.write_text(csv_text)
    result = run_cli(
        "training-set", str(path), "--features", *features, "--out", str(tmp / "x.parquet"),
        dsn=served["url"], check=False,
    )  # fmt: skip
    assert result.returncode == 1, result.stdout
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


def test_bad_events_are_one_line_errors(served: dict, tmp_path: Path) -> None:
    good_ts = "2026-01-05T09:05:00Z"
    assert "symbol(s) never seen" in _cli_error(
        served, tmp_path, f"symbol,ts\nEURUSD,{good_ts}\nXAUUSD,{good_ts}\n", "ofi"
    ) and "XAUUSD" in _cli_error(served, tmp_path, f"symbol,ts\nXAUUSD,{good_ts}\n", "ofi")
    assert "no column ts" in _cli_error(served, tmp_path, "symbol,time\nEURUSD,1\n", "ofi")
    assert "has no time zone" in _cli_error(
        served, tmp_path, "symbol,ts\nEURUSD,2026-01-05 09:05:00\n", "ofi"
    )
    assert "unknown feature 'nope'" in _cli_error(
        served, tmp_path, f"symbol,ts\nEURUSD,{good_ts}\n", "ofi", "nope"
    )
    assert "without symbol or ts" in _cli_error(
        served, tmp_path, f"symbol,ts\nEURUSD,{good_ts}\nEURUSD,\n", "ofi"
    )
    # SQL: a ts without a zone
    with psycopg.connect(served["url"]) as conn:
        conn.execute("create temporary table naive (symbol text, ts timestamp)")
        with pytest.raises(psycopg.Error) as caught:
            conn.execute("select features.training_set('naive', array['ofi'])")
        assert "not timestamp with time zone" in str(caught.value).splitlines()[0]


def test_the_readme_serving_examples_run_as_written(served: dict, tmp_path: Path) -> None:
    """The README's section "Serving features", block by block: the Python blocks with the
    `url` of the earlier section, the SQL on a `my_events` table of the user's, the shell
    line in a directory holding `events.parquet`."""
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Serving features", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```(\w*)\n(.*?)```", section, re.S)
    kinds = [kind for kind, _ in blocks]
    assert kinds == ["python", "python", "sql", ""], kinds
    latest: dict = {"url": served["url"]}
    exec(blocks[0][1], latest)
    assert latest["row"] is not None
    research: dict = {"url": served["url"]}
    exec(blocks[1][1], research)
    frame = research["frame"]
    assert len(frame) == 2 and {"label", "ofi_ts", "ofi_10s"} <= set(frame.columns)
    assert frame["ofi_10s"].notna().all()
    with psycopg.connect(served["url"]) as conn:
        conn.execute("create temporary table my_events (symbol text, ts timestamptz, label int)")
        conn.execute(
            "insert into my_events values ('EURUSD', '2026-01-05 09:05:00.25+00', 1),"
            " ('GBPUSD', '2026-01-05 09:06:00+00', -1)"
        )
        rows = None
        for statement in blocks[2][1].split(";"):
            code = "\n".join(line.split("--")[0] for line in statement.splitlines()).strip()
            if code:
                rows = conn.execute(code).fetchall()
        assert rows is not None and len(rows) == 2
    events = research["events"]
    events.to_parquet(tmp_path / "events.parquet")
    command = shlex.split(blocks[3][1].strip())
    assert command[:2] == ["tickfeatures", "training-set"]
    run_cli(*command[1:], dsn=served["url"], cwd=tmp_path)
    assert len(pd.read_parquet(tmp_path / "train.parquet")) == 2
