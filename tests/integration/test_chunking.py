"""Property: however the same snapshots arrive, refreshing after each arrival ends where a full
build on all of them does, for every family (the eight L2 families, the targets and the heavy
families), every column, with identical NULLs (1e-9 relative).

The data mix what broke before and what real feeds do: `tests.oracle.datasets`' two edge-case
symbols (gaps longer than every window, flat books, missing levels, crossed books), a symbol
whose book changes on a few snapshots only (non-zero order-flow events are sparse, so
flow_persistence carries a value across many rows and across the start of a refresh: issue
12's NULL-against-0.35 defect), a dense symbol long enough for the heavy families' 256-bar
windows, and a symbol whose whole history arrives last.

Each chunking gets a database of its own, starts from `tickfeatures migrate`, and refreshes
with `tickfeatures refresh --select` these models and their upstream after every arrival (the
procedures chunking: `call features.refresh()`, everything):
- one small load, then one large one;
- many small loads in time order (and, after each, nothing computed earlier changes:
  appending never changes the past);
- loads cut inside a second and at a heavy-family stamp;
- late rows: a share of the history held back and loaded after later rows, then the late
  symbol;
- the same late-row history written without the loader, by INSERT and COPY as a feed
  collector would: the invalidation log (migration 0014) must see those too.
The cut points and held-back rows come from a seeded generator; TICKFEATURES_TEST_SEED
changes the seed (it is printed with every failure), so other cuts can be tried.
"""

from __future__ import annotations

import itertools
import math
import os
import random
import subprocess
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import psycopg
import pytest
from psycopg import sql

from tests.conftest import ROOT, FreshDatabase, run_cli
from tests.oracle.compare import mismatches
from tests.oracle.datasets import window_edge_snapshots
from tests.oracle.registry import L2_FAMILIES
from tickfeatures import generate
from tickfeatures.schema import L2_COLUMNS

pytestmark = [pytest.mark.integration, pytest.mark.slow]

SEED = int(os.environ.get("TICKFEATURES_TEST_SEED", "12"))
HEAVY = ["mid_bars_1s", "hht", "hmm_regime", "wavelet", "spectral", "garch"]
# Not features, but state a model continues from: compared element by element, so that an
# incremental run is seen to continue from exactly the state a full build reached.
STATES = {"flow_ewm_state": ("ewm_state", 16)}
MODELS = [*L2_FAMILIES, "l2_targets", *HEAVY, *STATES]
# what each refresh builds: these models and what they read (the bar families, which read
# the snapshots' one-minute bars, are another module's; about 30 models fewer a refresh)
SELECT = ["--select", *(f"+{model}" for model in MODELS)]
# The one column not expected to repeat: a measured time (models/heavy/hht.yml).
NONDETERMINISTIC = {"hht": ["hht_calculation_time_ms"]}
BOOLEAN = {"is_crossed", "garch_converged"}
LATE_SYMBOL = "USDJPY"
CHUNKINGS = [
    "small_then_large",
    "many_small",
    "split_seconds",
    "late_rows",
    "direct_writes",
    "procedures",
]


# -- data ----------------------------------------------------------------------------------


def _generated(symbol: str, start: pd.Timestamp, minutes: float, seed: int) -> pd.DataFrame:
    specs = generate.load_symbols(ROOT / "seeds" / "symbols.csv")
    rows = generate.generate_l2(
        [specs[symbol]], start.to_pydatetime(), timedelta(minutes=minutes), seed=seed
    )
    frame = pd.DataFrame(list(rows), columns=list(L2_COLUMNS))
    frame["ts"] = pd.to_datetime(frame["ts"], utc=True).dt.as_unit("us")
    frame[list(L2_COLUMNS[2:])] = frame[list(L2_COLUMNS[2:])].astype("float64")
    return frame.drop_duplicates(["symbol", "ts"])


def _sparse_events(frame: pd.DataFrame, share: float, seed: int) -> pd.DataFrame:
    """The same snapshots with the book changing on `share` of them only: every other row
    repeats the previous book, so its order-flow event is 0."""
    rng = np.random.default_rng(seed)
    changes = rng.random(len(frame)) < share
    changes[0] = True
    source = np.maximum.accumulate(np.where(changes, np.arange(len(frame)), 0))
    books = list(L2_COLUMNS[2:])
    out = frame.copy()
    out[books] = frame[books].to_numpy()[source]
    return out


@pytest.fixture(scope="module")
def history() -> pd.DataFrame:
    """Every snapshot of every chunking, sorted by (ts, symbol)."""
    edges = window_edge_snapshots()
    start = edges["ts"].min().floor("min")
    frames = [
        edges,
        _sparse_events(_generated("GBPUSD", start, 9, seed=3), share=0.05, seed=4),
        _generated("AUDUSD", start + pd.Timedelta(seconds=20), 8, seed=5),
        _generated(LATE_SYMBOL, start + pd.Timedelta(minutes=2), 6, seed=6),
    ]
    frame = pd.concat(frames, ignore_index=True)
    frame["ts"] = pd.to_datetime(frame["ts"], utc=True).dt.as_unit("us")
    return frame.sort_values(["ts", "symbol"], kind="mergesort").reset_index(drop=True)


# -- arrivals ------------------------------------------------------------------------------


def _cuts(n: int, k: int, rng: random.Random) -> list[int]:
    return sorted(rng.sample(range(1, n), k - 1))


def _split(frame: pd.DataFrame, cuts: list[int]) -> list[pd.DataFrame]:
    bounds = [0, *cuts, len(frame)]
    return [frame.iloc[a:b] for a, b in itertools.pairwise(bounds) if b > a]


def _late(frame: pd.DataFrame, rng: random.Random) -> tuple[list[pd.DataFrame], list[pd.DataFrame]]:
    """(in-order arrivals, late arrivals): 3% of minutes 2-7 of the other symbols held back and
    sent in two late batches, then the late symbol's whole history."""
    early = frame[frame["symbol"] != LATE_SYMBOL]
    t0 = early["ts"].min()
    middle = early["ts"].between(t0 + pd.Timedelta(minutes=2), t0 + pd.Timedelta(minutes=7))
    held = early[middle].sample(frac=0.03, random_state=rng.randrange(2**31)).sort_index()
    on_time = early.drop(held.index)
    half = len(held) // 2
    late = [held.iloc[:half], held.iloc[half:], frame[frame["symbol"] == LATE_SYMBOL]]
    return _split(on_time, _cuts(len(on_time), 3, rng)), late


def arrivals(name: str, frame: pd.DataFrame, rng: random.Random) -> list[pd.DataFrame]:
    if name == "small_then_large":
        head = rng.randrange(20, 200)
        return [frame.iloc[:head], frame.iloc[head:]]
    if name == "many_small":
        return _split(frame, _cuts(len(frame), 8, rng))
    if name == "split_seconds":
        seconds = frame["ts"].dt.floor("s")
        inside = np.flatnonzero(seconds.to_numpy()[1:] == seconds.to_numpy()[:-1]) + 1
        # the first row at or after a heavy stamp (a multiple of 10 s) of the dense symbol
        dense = frame.index[(frame["symbol"] == "AUDUSD").to_numpy()]
        stamp = frame.loc[dense, "ts"].min().ceil("10s") + pd.Timedelta(seconds=300)
        at_stamp = int(frame["ts"].searchsorted(stamp))
        cuts = sorted({*rng.sample(list(inside), 3), at_stamp})
        return _split(frame, cuts)
    on_time, late = _late(frame, rng)
    return on_time + late


# -- writing -------------------------------------------------------------------------------


def _load(url: str, frame: pd.DataFrame, path: Path) -> None:
    out = frame.copy()
    out["ts"] = out["ts"].map(lambda t: t.isoformat())
    out.to_csv(path, index=False, na_rep="")
    run_cli("load", "l2", str(path), dsn=url)


def _rows(frame: pd.DataFrame) -> list[tuple]:
    return [
        tuple(None if isinstance(v, float) and math.isnan(v) else v for v in row)
        for row in frame.itertuples(index=False, name=None)
    ]


def _write_directly(url: str, frame: pd.DataFrame, how: str) -> None:
    """What a feed collector does: multi-row INSERTs of a few rows each, or one COPY."""
    columns = sql.SQL(", ").join(map(sql.Identifier, L2_COLUMNS))
    rows = _rows(frame)
    with psycopg.connect(url) as conn, conn.cursor() as cur:
        if how == "copy":
            with cur.copy(
                sql.SQL("copy market.l2_snapshots ({}) from stdin").format(columns)
            ) as copy:
                for row in rows:
                    copy.write_row(row)
        else:
            insert = sql.SQL("insert into market.l2_snapshots ({}) values ({})").format(
                columns, sql.SQL(", ").join(sql.Placeholder() * len(L2_COLUMNS))
            )
            cur.executemany(insert, rows)


def features(url: str) -> dict[str, pd.DataFrame]:
    tables = {}
    with psycopg.connect(url) as conn:
        for model in MODELS:
            columns: sql.Composable = sql.SQL("*")
            if model in STATES:
                array, n = STATES[model]
                columns = sql.SQL(", ").join(
                    [
                        sql.SQL("symbol, ts"),
                        *(
                            sql.SQL("{}[{}] as {}").format(
                                sql.Identifier(array),
                                sql.Literal(i),
                                sql.Identifier(f"{array}_{i}"),
                            )
                            for i in range(1, n + 1)
                        ),
                    ]
                )
            cur = conn.execute(
                sql.SQL("select {} from features.{} order by symbol, ts").format(
                    columns, sql.Identifier(model)
                )
            )
            frame = pd.DataFrame(cur.fetchall(), columns=[c.name for c in cur.description or []])
            for column in frame.columns:
                if column not in ("symbol", "ts"):
                    frame[column] = frame[column].astype(
                        "boolean" if column in BOOLEAN else "float64"
                    )
            tables[model] = frame.drop(columns=NONDETERMINISTIC.get(model, []))
    return tables


def _call_refresh(url: str) -> None:
    """`call features.refresh()` from psql, in an environment with no dbt and no virtualenv."""
    result = subprocess.run(
        ["psql", url, "-v", "ON_ERROR_STOP=1", "-c", "call features.refresh()"],
        env={"PATH": "/usr/bin:/bin", "PGCONNECT_TIMEOUT": "10"},
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr


# -- the runs ------------------------------------------------------------------------------


class Runs:
    """The chunkings the selected tests need, and the full build on all the data they are
    compared with, each in a database of its own, two at a time (each refresh is mostly one
    core's worth of dbt start-up)."""

    def __init__(
        self, databases: FreshDatabase, tmp: Path, frame: pd.DataFrame, wanted: list[str]
    ) -> None:
        self.databases, self.tmp, self.frame = databases, tmp, frame
        self.pool = ThreadPoolExecutor(max_workers=2)
        self.futures: dict[str, Future] = {}
        for name in wanted:
            self.futures[name] = self.pool.submit(
                self._reference if name == "reference" else self._run, name
            )

    def _get(self, name: str) -> dict:
        if name not in self.futures:
            self.futures[name] = self.pool.submit(self._run, name)
        return self.futures[name].result()

    def reference(self) -> dict[str, pd.DataFrame]:
        return self._get("reference")["features"]

    def run(self, name: str) -> dict:
        return self._get(name)

    def _reference(self, _: str) -> dict:
        url = self.databases.create("tf_chunk")
        run_cli("migrate", dsn=url)
        _load(url, self.frame, self.tmp / "all.csv")
        run_cli("refresh", *SELECT, dsn=url)
        return {"features": features(url)}

    def _run(self, name: str) -> dict:
        rng = random.Random(f"{SEED}:{name}")
        url = self.databases.create("tf_chunk")
        run_cli("migrate", dsn=url)
        steps: list[dict[str, pd.DataFrame]] = []
        newest: list[pd.Series] = []
        parts = arrivals(name, self.frame, rng)
        for i, part in enumerate(parts):
            newest.append(pd.concat(parts[: i + 1]).groupby("symbol")["ts"].max().rename("newest"))
            if name == "direct_writes" or (name == "procedures" and i % 2):
                _write_directly(url, part, rng.choice(["insert", "copy"]))
            else:
                _load(url, part, self.tmp / f"{name}_{i}.csv")
            if name == "procedures" and i:
                _call_refresh(url)
            else:
                run_cli("refresh", *SELECT, dsn=url)
            if name == "procedures" and not i:
                run_cli("schedule", "install", dsn=url)
            steps.append(features(url))
        return {
            "steps": steps,
            "newest": newest,
            "sizes": [len(p) for p in parts],
            "url": url,
        }


@pytest.fixture(scope="module")
def runs(
    request: pytest.FixtureRequest,
    databases: FreshDatabase,
    tmp_path_factory: pytest.TempPathFactory,
    history: pd.DataFrame,
) -> Iterator[Runs]:
    wanted: set[str] = set()
    for item in request.session.items:
        if item.module is not request.module:
            continue
        params = getattr(item, "callspec", None)
        name = params.params.get("name") if params else None
        wanted.add(name or "many_small")
        if item.originalname == "test_refreshing_after_each_arrival_equals_a_full_build":
            wanted.add("reference")
    # the longest first, so that the two workers end together
    order = ["late_rows", "direct_writes", "many_small", "reference", "procedures", *CHUNKINGS]
    runs = Runs(
        databases,
        tmp_path_factory.mktemp("chunking"),
        history,
        [n for n in dict.fromkeys(order) if n in wanted],
    )
    yield runs
    runs.pool.shutdown(cancel_futures=True)


def _where(name: str, run: dict) -> str:
    return f"chunking {name}, seed {SEED}, arrivals of {run['sizes']} rows"


@pytest.mark.parametrize("name", CHUNKINGS)
@pytest.mark.parametrize("model", MODELS)
def test_refreshing_after_each_arrival_equals_a_full_build(
    runs: Runs, name: str, model: str
) -> None:
    run = runs.run(name)
    full = runs.reference()[model]
    # the heavy families: a row per 10 s once a symbol has 256 one-second bars
    assert len(full) > (30 if model in HEAVY[1:] else 1000)
    problems = mismatches(run["steps"][-1][model], full)
    assert not problems, _where(name, run) + "\n" + "\n".join(problems)


@pytest.mark.parametrize("model", [*L2_FAMILIES, *HEAVY, *STATES])
def test_appending_never_changes_the_past(runs: Runs, model: str) -> None:
    """A row whose inputs had all arrived (its ts at or before its symbol's newest snapshot
    then: a 1-second bar is complete once a later snapshot exists) never changes."""
    run = runs.run("many_small")
    final = run["steps"][-1][model].set_index(["symbol", "ts"])
    for step, newest in zip(run["steps"][:-1], run["newest"], strict=False):
        before = step[model].merge(newest, left_on="symbol", right_index=True)
        before = before[before["ts"] <= before["newest"]].drop(columns="newest")
        if before.empty:  # a heavy family before its first 256-bar window
            continue
        after = final.loc[before.set_index(["symbol", "ts"]).index].reset_index()
        problems = mismatches(after, before.reset_index(drop=True))
        assert not problems, _where("many_small", run) + "\n" + "\n".join(problems)


@pytest.mark.parametrize("name", ["late_rows", "direct_writes", "procedures"])
@pytest.mark.parametrize("model", ["ofi", "flow", "volatility", *HEAVY])
def test_late_rows_change_what_follows_them(runs: Runs, name: str, model: str) -> None:
    """The late arrivals changed features of snapshots that were already computed (so the
    equality above is not vacuous), and every snapshot written got its row."""
    run = runs.run(name)
    late_from = len(run["sizes"]) - 3  # the two held-back batches and the late symbol
    before = run["steps"][late_from - 1][model]
    after = run["steps"][-1][model]
    kept = after.set_index(["symbol", "ts"]).index.isin(before.set_index(["symbol", "ts"]).index)
    assert mismatches(after[kept].reset_index(drop=True), before), (
        f"{_where(name, run)}: the late rows changed nothing in {model}"
    )
    if model not in HEAVY:
        assert len(after) == len(runs.frame), _where(name, run)


def test_the_sparse_symbol_carries_persistence_across_refreshes(runs: Runs) -> None:
    """The data make the defect of issue 12 reachable: on the sparse symbol most rows carry
    flow_persistence from an earlier event, and refreshes start between events."""
    final = runs.run("many_small")["steps"][-1]["flow"]
    sparse = final[final["symbol"] == "GBPUSD"]
    assert sparse["flow_persistence"].notna().sum() > 1000
    events = runs.run("many_small")["steps"][-1]["ofi"]
    gbp = events[events["symbol"] == "GBPUSD"]
    assert (gbp["ofi_event"].fillna(0) != 0).mean() < 0.2


def test_the_procedures_did_the_refreshes_without_dbt(runs: Runs) -> None:
    """After `schedule install`, every later refresh of the "procedures" chunking was
    `call features.refresh()`: each incremental model ran through its procedure, none failed."""
    run = runs.run("procedures")
    with psycopg.connect(run["url"]) as conn:
        calls = conn.execute(
            "select model, count(*) filter (where status = 'success'),"
            " count(*) filter (where status <> 'success') from ops.refresh_runs"
            " where via = 'procedure' group by model"
        ).fetchall()
        installed = {m for (m,) in conn.execute("select model from ops.refresh_procedures")}
    by_model = {model: (ok, bad) for model, ok, bad in calls}
    arrivals_after_install = len(run["sizes"]) - 1
    assert set(MODELS) <= installed
    assert set(by_model) == {*installed, "refresh()"}
    assert all(v == (arrivals_after_install, 0) for v in by_model.values()), by_model
