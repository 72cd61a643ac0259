"""The bar families (FEATURE_DEFINITIONS K1-K13) in the database, on bars loaded the way a user
loads them (`tickfeatures load bars`, `tickfeatures refresh`):

- every family equals its oracle (tests/oracle/bar_*.py, written from section K and the
  models' YAML: TA-Lib 0.8.2, pandas and numpy), per symbol, every column, identical NULLs,
  on the staged one-minute bars of the database;
- however the bars arrive, refreshing after each arrival ends where a full build does:
  many small loads in time order (and then nothing computed earlier changes: appending never
  changes the past), and late bars: minutes held back and loaded after later ones, and a
  symbol's history older than its first bar loaded last (which changes C_first, the rate
  index's base, and so every rate feature of that symbol);
- the same late arrivals refreshed by `call features.refresh()` from psql (the procedures
  `tickfeatures schedule install` compiles, no dbt) end there too;
- every column a family's YAML documents is in the table and the catalog, and bar_features
  puts them side by side.

The data are tests.oracle.bar_datasets' edge cases (weekend gaps, missing minutes, flat
stretches, H = L bars, zero and NULL volume, NULL spread, a 40-bar symbol, three price
scales) with a seed of their own (TICKFEATURES_TEST_SEED changes it; it is printed with
every failure).
"""

from __future__ import annotations

import importlib
import itertools
import os
import random
import sys
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
import psycopg
import pytest
from psycopg import sql

from tests.conftest import ROOT, FreshDatabase, run_cli
from tests.integration.test_chunking import _call_refresh
from tests.oracle.bar_datasets import COLUMNS, edge_case_bars
from tests.oracle.compare import mismatches

pytestmark = [pytest.mark.integration, pytest.mark.slow]

SEED = int(os.environ.get("TICKFEATURES_TEST_SEED", "23"))
MODELS = sorted(p.stem for p in (ROOT / "models" / "bar").glob("*.sql"))
K14_MODELS = sorted(p.stem for p in (ROOT / "models" / "bar_k14").glob("*.sql"))
# what the runs of arrivals refresh: K1-K13 and what they read (K14's kernels, the L2 and heavy
# families are other modules'; the reference builds everything, for the catalog and the mart)
SELECT = ["--select", "+path:models/bar"]
# the symbol whose older history arrives last (its C_first changes)
BACKFILLED = "NZDUSD"
BACKFILL_BARS = 300


Evaluation = tuple[pd.DataFrame, pd.DataFrame | None, pd.DataFrame | None]


def _oracles() -> dict[str, Callable[[pd.DataFrame, float], Evaluation]]:
    """model -> f(bars, first_close) -> (values, term scales or None, knife-edge rows or None).
    An oracle module's `evaluate(model, bars, first_close)` gives all three (K4's knife edges:
    values within rounding of an exact zero, which the definition lets either way); else its
    ORACLES give the values alone."""
    found: dict[str, Callable[[pd.DataFrame, float], Evaluation]] = {}
    for path in sorted((ROOT / "tests" / "oracle").glob("bar_*.py")):
        module = importlib.import_module(f"tests.oracle.{path.stem}")
        for model, oracle in getattr(module, "ORACLES", {}).items():
            if model not in MODELS:
                continue  # K14's oracles: tests/integration/test_bar_k14.py
            if hasattr(module, "evaluate"):
                found[model] = lambda bars, first, m=model, e=module.evaluate: e(m, bars, first)
            else:
                found[model] = lambda bars, first, o=oracle: (o(bars, first), None, None)
    return found


# some oracles take a kernel's starting point (tests/oracle/bar_heavy.py: the HMM's seeded
# initialisation, as tests/kernels do)
sys.path.insert(0, str(ROOT / "python_udfs"))
ORACLES = _oracles()


@pytest.fixture(scope="module")
def history() -> pd.DataFrame:
    return edge_case_bars(seed=SEED)


def _load(url: str, frame: pd.DataFrame, path: Path) -> None:
    out = frame[COLUMNS].copy()
    out["ts"] = out["ts"].map(lambda t: t.isoformat())
    out.to_csv(path, index=False, na_rep="")
    run_cli("load", "bars", str(path), dsn=url)


def _table(conn: psycopg.Connection, relation: str) -> pd.DataFrame:
    schema, name = relation.split(".")
    cur = conn.execute(
        sql.SQL("select * from {}.{} order by symbol, ts").format(
            sql.Identifier(schema), sql.Identifier(name)
        )
    )
    frame = pd.DataFrame(cur.fetchall(), columns=[c.name for c in cur.description or []])
    for column in frame.columns:
        if column not in ("symbol", "ts", "origin"):
            frame[column] = frame[column].astype("float64")
    return frame


def features(url: str) -> dict[str, pd.DataFrame]:
    with psycopg.connect(url) as conn:
        tables = {model: _table(conn, f"features.{model}") for model in MODELS}
        tables["stg_bars_1m"] = _table(conn, "staging.stg_bars_1m").drop(columns="origin")
    return tables


def arrivals(name: str, frame: pd.DataFrame, rng: random.Random) -> list[pd.DataFrame]:
    if name == "in_order":
        # time order across symbols, cut at random places (inside gaps and flat stretches too)
        ordered = frame.sort_values(["ts", "symbol"], kind="stable")
        cuts = sorted(rng.sample(range(1, len(ordered)), 5))
        bounds = [0, *cuts, len(ordered)]
        return [ordered.iloc[a:b] for a, b in itertools.pairwise(bounds)]
    # late (and procedures): 2% of the bars after each symbol's 200th held back and loaded
    # after the rest, then BACKFILLED's first BACKFILL_BARS bars (older than every bar it has)
    backfill = frame[frame["symbol"] == BACKFILLED].iloc[:BACKFILL_BARS]
    rest = frame.drop(backfill.index)
    eligible = rest[rest.groupby("symbol").cumcount() >= 200]
    held = eligible.sample(frac=0.02, random_state=rng.randrange(2**31))
    on_time = rest.drop(held.index).sort_values(["ts", "symbol"], kind="stable")
    half = len(on_time) // 2
    return [on_time.iloc[:half], on_time.iloc[half:], held, backfill]


class Runs:
    """The full build and the chunked runs, each in a database of its own, two at a time."""

    def __init__(self, databases: FreshDatabase, tmp: Path, frame: pd.DataFrame) -> None:
        self.databases, self.tmp, self.frame = databases, tmp, frame
        self.pool = ThreadPoolExecutor(max_workers=2)
        self.futures: dict[str, Future] = {
            name: self.pool.submit(self._run, name)
            for name in ("late", "reference", "procedures", "in_order")
        }

    def get(self, name: str) -> dict:
        return self.futures[name].result()

    def _run(self, name: str) -> dict:
        url = self.databases.create("tf_bars")
        run_cli("migrate", dsn=url)
        parts = (
            [self.frame]
            if name == "reference"
            else arrivals(name, self.frame, random.Random(f"{SEED}:{name}"))
        )
        steps = []
        for i, part in enumerate(parts):
            _load(url, part, self.tmp / f"{name}_{i}.csv")
            if name == "procedures" and i:
                _call_refresh(url)  # psql, no dbt: the compiled procedures
            else:
                everything = name in ("procedures", "reference")
                run_cli("refresh", *([] if everything else SELECT), dsn=url)
            if name == "procedures" and not i:
                run_cli("schedule", "install", dsn=url)
            steps.append(features(url))
        return {"steps": steps, "sizes": [len(p) for p in parts], "url": url}


@pytest.fixture(scope="module")
def runs(
    databases: FreshDatabase, tmp_path_factory: pytest.TempPathFactory, history: pd.DataFrame
) -> Iterator[Runs]:
    runs = Runs(databases, tmp_path_factory.mktemp("bar_families"), history)
    yield runs
    runs.pool.shutdown(cancel_futures=True)


def _where(name: str, run: dict) -> str:
    return f"chunking {name}, seed {SEED}, arrivals of {run['sizes']} bars"


def test_every_bar_model_has_an_oracle() -> None:
    assert len(MODELS) >= 18
    assert sorted(ORACLES) == MODELS


@pytest.mark.parametrize("model", MODELS)
def test_family_equals_its_oracle(runs: Runs, model: str) -> None:
    problems = oracle_mismatches(runs.get("reference")["steps"][-1], model)
    assert not problems, f"seed {SEED}\n" + "\n".join(problems)


def oracle_mismatches(tables: dict[str, pd.DataFrame], model: str) -> list[str]:
    """How the model's table differs from its oracle on the staged bars of the same database."""
    bars, got = tables["stg_bars_1m"], tables[model]
    assert len(got) == len(bars), f"{model}: {len(got)} rows for {len(bars)} bars"
    values, scales, knives = [], [], []
    for _symbol, symbol_bars in bars.groupby("symbol", sort=True):
        symbol_bars = symbol_bars.reset_index(drop=True)
        value, scale, knife = ORACLES[model](symbol_bars, float(symbol_bars["close"].iloc[0]))
        values.append(value)
        scales.append(scale)
        knives.append(knife)
    want = pd.concat(values, ignore_index=True)
    # the features are judged here; the state a refresh continues from (state_*), by the
    # chunked runs below, which equal a full build only if it is carried exactly
    got = got[[c for c in got.columns if not c.startswith("state_")]].reset_index(drop=True)
    want = want[[c for c in want.columns if not c.startswith("state_")]]
    assert list(got.columns) == list(want.columns)
    term_scales = None if scales[0] is None else pd.concat(scales, ignore_index=True)
    if knives[0] is not None:
        # knife edges (K4): blank on both sides, explicitly, nowhere else
        knife = pd.concat(knives, ignore_index=True)
        columns = [c for c in want.columns if c not in ("symbol", "ts")]
        mask = knife[columns].to_numpy(dtype=bool)
        for frame in (got, want):
            frame[columns] = np.where(mask, np.nan, frame[columns].to_numpy(dtype=float))
    return mismatches(got, want, term_scales=term_scales)


@pytest.mark.parametrize("name", ["in_order", "late", "procedures"])
@pytest.mark.parametrize("model", MODELS)
def test_refreshing_after_each_arrival_equals_a_full_build(
    runs: Runs, name: str, model: str
) -> None:
    run = runs.get(name)
    full = runs.get("reference")["steps"][-1][model]
    assert len(full) == len(runs.frame)
    problems = mismatches(run["steps"][-1][model], full)
    assert not problems, _where(name, run) + "\n" + "\n".join(problems)


@pytest.mark.parametrize("model", MODELS)
def test_appending_never_changes_the_past(runs: Runs, model: str) -> None:
    run = runs.get("in_order")
    final = run["steps"][-1][model].set_index(["symbol", "ts"])
    for step in run["steps"][:-1]:
        before = step[model]
        after = final.loc[before.set_index(["symbol", "ts"]).index].reset_index()
        problems = mismatches(after, before)
        assert not problems, _where("in_order", run) + "\n" + "\n".join(problems)


def test_late_bars_changed_what_follows_them(runs: Runs) -> None:
    """The late arrivals recomputed rows that were already stored (so the equality above is
    not vacuous): the backfill changed C_first and so every rate-index feature of the symbol."""
    run = runs.get("late")
    before, after = run["steps"][-2], run["steps"][-1]
    for model in ("bollinger_rate", "statistics_rate", "regression_rate"):
        old = before[model][before[model]["symbol"] == BACKFILLED]
        new = (
            after[model]
            .set_index(["symbol", "ts"])
            .loc[old.set_index(["symbol", "ts"]).index]
            .reset_index()
        )
        assert mismatches(new, old.reset_index(drop=True)), f"{model}: the backfill changed nothing"


def test_catalog_and_mart_list_every_bar_feature(runs: Runs) -> None:
    url = runs.get("reference")["url"]
    with psycopg.connect(url) as conn:
        catalog = pd.DataFrame(
            conn.execute(
                "select name, family, definition, unit from features.feature_catalog"
            ).fetchall(),
            columns=["feature_name", "family", "definition", "unit"],
        )
        mart = conn.execute("select * from features.bar_features limit 0")
        mart_columns = [c.name for c in mart.description or []]
        mart_rows = conn.execute("select count(*) from features.bar_features").fetchone()[0]
    bar = catalog[catalog["family"].isin(MODELS)]
    tables = runs.get("reference")["steps"][-1]
    for model in MODELS:
        columns = [
            c
            for c in tables[model].columns
            if c not in ("symbol", "ts") and not c.startswith("state_")
        ]
        listed = set(bar.loc[bar["family"] == model, "feature_name"])
        assert listed == set(columns), (
            f"{model}: catalog and table differ: {sorted(listed ^ set(columns))[:5]}"
        )
        assert set(columns) <= set(mart_columns), model
    assert bar["definition"].str.len().min() > 20
    assert bar["unit"].notna().all()
    assert len(bar) >= 700, f"{len(bar)} bar features in the catalog"
    assert mart_rows == len(runs.frame)
    assert np.unique(mart_columns).size == len(mart_columns)


# Bars of both origins (K0): EURUSD's loaded bars with a hole that its snapshots' derived bars
# fill, and derived bars after its last loaded one; GBPUSD from snapshots only.
MIXED_L2_START = pd.Timestamp("2026-01-05T09:00:00Z")


@pytest.fixture(scope="module")
def mixed(databases: FreshDatabase, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Two arrivals refreshed in turn, then a full build of the same database."""
    tmp = tmp_path_factory.mktemp("mixed")
    snapshots = tmp / "l2.csv"
    run_cli(
        "generate", "l2", "--symbols", "EURUSD,GBPUSD", "--minutes", "40", "--seed", str(SEED),
        "--start", MIXED_L2_START.isoformat(), "--out", str(snapshots),
    )  # fmt: skip
    bars_file = tmp / "bars.csv"
    run_cli(
        "generate", "bars", "--symbols", "EURUSD", "--days", "5", "--seed", str(SEED),
        "--start", "2026-01-01T00:00:00+00:00", "--out", str(bars_file),
    )  # fmt: skip
    bars = pd.read_csv(bars_file)
    ts = pd.to_datetime(bars["ts"], utc=True)
    minute = (ts - MIXED_L2_START) / pd.Timedelta(minutes=1)
    bars = bars[(minute < 20) & ~((minute >= 5) & (minute < 15))]
    snaps = pd.read_csv(snapshots)
    snap_minute = (pd.to_datetime(snaps["ts"], utc=True) - MIXED_L2_START) / pd.Timedelta(minutes=1)
    first_bars, second_bars = bars[minute[bars.index] < 10], bars[minute[bars.index] >= 10]
    first_snaps, second_snaps = snaps[snap_minute < 12], snaps[snap_minute >= 12]

    url = databases.create("tf_bars_mixed")
    run_cli("migrate", dsn=url)
    select = ["--select", "+path:models/bar"]
    for i, (part_bars, part_snaps) in enumerate(
        [(first_bars, first_snaps), (second_bars, second_snaps)]
    ):
        part_bars.to_csv(tmp / f"bars_{i}.csv", index=False)
        part_snaps.to_csv(tmp / f"l2_{i}.csv", index=False)
        run_cli("load", "bars", str(tmp / f"bars_{i}.csv"), dsn=url)
        run_cli("load", "l2", str(tmp / f"l2_{i}.csv"), dsn=url)
        run_cli("refresh", *select, dsn=url)
    incremental = features(url)
    with psycopg.connect(url) as conn:
        origins = dict(
            conn.execute(
                "select symbol || ':' || origin, count(*) from staging.stg_bars_1m group by 1"
            ).fetchall()
        )
    run_cli("refresh", "--full", *select, dsn=url)
    return {"incremental": incremental, "full": features(url), "origins": origins}


def test_mixed_origins_are_in_the_data(mixed: dict) -> None:
    origins = mixed["origins"]
    assert origins.get("EURUSD:l2", 0) >= 10, origins  # the hole, and after the last loaded bar
    assert origins.get("EURUSD:loaded", 0) > 2600, origins  # more than the longest warm-up
    assert origins.get("GBPUSD:l2", 0) >= 30 and "GBPUSD:loaded" not in origins, origins


@pytest.mark.parametrize("model", MODELS)
def test_bars_of_both_origins_refresh_to_the_full_build_and_the_oracle(
    mixed: dict, model: str
) -> None:
    """The warm-up of a symbol with derived bars before its new ones merges both kinds
    (bar_family_model's warm_scope); a symbol of derived bars alone has no loaded bar."""
    problems = mismatches(mixed["incremental"][model], mixed["full"][model])
    assert not problems, f"seed {SEED}, incremental against full\n" + "\n".join(problems)
    problems = oracle_mismatches(mixed["full"], model)
    assert not problems, f"seed {SEED}, against the oracle\n" + "\n".join(problems)


def test_a_full_build_covers_every_symbol_of_derived_bars_alone(
    databases: FreshDatabase, tmp_path: Path
) -> None:
    """Symbols with snapshots and no loaded bar at all: a full build writes every one of them.
    (The symbol list of a full build was once the first derived symbol and, after it, the
    next derived symbol after each loaded one: with no loaded bars, one symbol.)"""
    url = databases.create("tf_bars_derived")
    run_cli("migrate", dsn=url)
    run_cli(
        "generate", "l2", "--symbols", "EURUSD,GBPUSD,USDJPY", "--minutes", "4",
        "--seed", str(SEED), "--load", dsn=url,
    )  # fmt: skip
    run_cli("refresh", "--full", "--select", "+path:models/bar", "+path:models/bar_k14", dsn=url)
    with psycopg.connect(url) as conn:
        staged = conn.execute(
            "select symbol, count(*) from staging.stg_bars_1m group by 1 order by 1"
        ).fetchall()
        assert [s for s, _ in staged] == ["EURUSD", "GBPUSD", "USDJPY"]
        for model in [*MODELS, *K14_MODELS]:
            written = conn.execute(
                sql.SQL("select symbol, count(*) from features.{} group by 1 order by 1").format(
                    sql.Identifier(model)
                )
            ).fetchall()
            assert written == staged, model


def test_the_seeds_vpin_bucket_volume_reaches_microstructure_bars(
    databases: FreshDatabase, tmp_path: Path
) -> None:
    """seeds/symbols.csv's vpin_bucket_volume (K8) is the bucket volume the model's VPIN uses
    (here set on the seed's table, as a changed seed would be after `dbt seed`); empty, VPIN
    derives it from the symbol's first 1440 bars."""
    from tests.oracle.bar_micro import ORACLES as MICRO

    bars = edge_case_bars(seed=SEED, symbols=("EURUSD",))
    # no NULL volume: windows of 50 buckets with none NULL (as tests/kernels/test_bar_micro.py)
    bars["volume"] = bars["volume"].fillna(7.0)
    url = databases.create("tf_bars_vpin")
    run_cli("migrate", dsn=url)
    _load(url, bars, tmp_path / "bars.csv")
    run_cli("refresh", "--select", "+microstructure_bars", dsn=url)
    with psycopg.connect(url) as conn:
        derived = _table(conn, "features.microstructure_bars")
        stg = _table(conn, "staging.stg_bars_1m").drop(columns="origin")
        conn.execute(
            "update reference.symbols set vpin_bucket_volume = 137.25 where symbol = 'EURUSD'"
        )
        conn.commit()
    run_cli(
        "dbt", "run", "--select", "microstructure_bars", "--full-refresh", dsn=url
    )  # no seed: a refresh would load the CSV's empty value back
    with psycopg.connect(url) as conn:
        given = _table(conn, "features.microstructure_bars")
    first = float(stg["close"].iloc[0])
    for got, params in ((derived, {}), (given, {"vpin_bucket_volume": 137.25})):
        want = MICRO["microstructure_bars"](stg, first, **params)
        assert want["vpin"].notna().sum() > 100
        problems = mismatches(got[["symbol", "ts", "vpin"]], want[["symbol", "ts", "vpin"]])
        assert not problems, params
    assert mismatches(given[["symbol", "ts", "vpin"]], derived[["symbol", "ts", "vpin"]])
