"""The bar families across symbols and with heavy math (FEATURE_DEFINITIONS K14:
correlation, cross_sectional, error_correction, hmm_regime_bars, spectral_bars,
volatility_surface) in the database, on bars loaded the way a user loads them:

- each family equals its oracle (tests/oracle/bar_cross.py, bar_panel.py, bar_heavy.py,
  bar_spectral.py: pandas, statsmodels, hmmlearn, arch, PyWavelets, numpy) on the staged bars
  of the database, and the kernel run in Python on the same bars, exactly: the SQL passes each
  kernel the bars, peers, warm-up and parameters a full build means;
- refreshing after each arrival ends where a full build does (to 1e-9, as K1-K13's tests:
  a window's sums may add in an order that depends on where the kernel's input starts),
  whatever the order the bars
  arrive in across symbols: a late symbol (NZDUSD, a peer of every USD pair), late bars inside
  minutes the panel has already computed, and a reference symbol (GBPUSD, the second of
  `reference_symbols`) that arrives after every other; through `tickfeatures refresh` and
  through `call features.refresh()` (the compiled procedures, no dbt);
- bars appended in time order never change a row computed earlier;
- the late arrivals did recompute rows of other symbols (so the equalities are not vacuous);
- every documented column is in the table, the catalog and bar_features: together with
  K1-K13, at least 980 bar features.

The data: tests.oracle.bar_datasets' EURUSD, USDJPY and NZDUSD (gaps, missing minutes, flat
stretches, NULL volumes) and two pairs made from them with gaps of their own (GBPUSD,
EURJPY), so that pairs miss minutes others have. TICKFEATURES_TEST_SEED changes the seed.
"""

from __future__ import annotations

import itertools
import os
import random
import re
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
import psycopg
import pytest

from tests.conftest import ROOT, FreshDatabase, run_cli
from tests.integration.test_bar_families import _load, _table
from tests.integration.test_chunking import _call_refresh
from tests.oracle.bar_datasets import COLUMNS, symbol_bars
from tests.oracle.compare import mismatches

pytestmark = [pytest.mark.integration, pytest.mark.slow]

SEED = int(os.environ.get("TICKFEATURES_TEST_SEED", "31"))
MODELS = sorted(p.stem for p in (ROOT / "models" / "bar_k14").glob("*.sql"))
K1_K13 = sorted(p.stem for p in (ROOT / "models" / "bar").glob("*.sql"))
LATE_SYMBOL = "NZDUSD"  # not a reference; a quote-currency peer of every USD pair
LATE_REFERENCE = "GBPUSD"  # reference_symbols[1]: error_correction's R2, correlation's ref2
SELECT = ["--select", "+path:models/bar_k14"]


def _made_from(source: str, symbol: str, seed: int, factor: float, tick: float) -> pd.DataFrame:
    """A pair with its own gaps and moves: bar_datasets' `source` bars of another seed, prices
    scaled by `factor` and put on `tick`."""
    frame = symbol_bars(source, seed=seed).copy()
    frame["symbol"] = symbol
    for column in ("open", "high", "low", "close"):
        frame[column] = np.round(frame[column] * factor / tick) * tick
    frame["high"] = frame[["open", "high", "low", "close"]].max(axis=1)
    frame["low"] = frame[["open", "high", "low", "close"]].min(axis=1)
    return frame


def universe(seed: int) -> pd.DataFrame:
    frames = [symbol_bars(s, seed=seed) for s in ("EURUSD", "USDJPY", "NZDUSD")]
    frames.append(_made_from("EURUSD", "GBPUSD", seed + 1, 1.17, 1e-5))
    frames.append(_made_from("USDJPY", "EURJPY", seed + 2, 1.08, 1e-3))
    frame = pd.concat(frames, ignore_index=True)[COLUMNS]
    return frame.sort_values(["symbol", "ts"], kind="stable").reset_index(drop=True)


def currencies() -> dict[str, tuple[str | None, str | None]]:
    seed = pd.read_csv(ROOT / "seeds" / "symbols.csv", keep_default_na=False)
    return {
        row.symbol: (row.base_ccy or None, row.quote_ccy or None)
        for row in seed.itertuples(index=False)
    }


def features(url: str) -> dict[str, pd.DataFrame]:
    with psycopg.connect(url) as conn:
        tables = {model: _table(conn, f"features.{model}") for model in MODELS}
        tables["stg_bars_1m"] = _table(conn, "staging.stg_bars_1m").drop(columns="origin")
    return tables


def arrivals(name: str, frame: pd.DataFrame, rng: random.Random) -> list[pd.DataFrame]:
    if name == "in_order":
        ordered = frame.sort_values(["ts", "symbol"], kind="stable")
        cuts = sorted(rng.sample(range(1, len(ordered)), 4))
        bounds = [0, *cuts, len(ordered)]
        return [ordered.iloc[a:b] for a, b in itertools.pairwise(bounds)]
    # late: every symbol but the two late ones with 2% of their bars (after the 200th)
    # held back; the held bars (inside minutes the panel has computed); the late symbol; the
    # late reference
    late_symbol = frame[frame["symbol"] == LATE_SYMBOL]
    late_reference = frame[frame["symbol"] == LATE_REFERENCE]
    rest = frame.drop(late_symbol.index).drop(late_reference.index)
    eligible = rest[rest.groupby("symbol").cumcount() >= 200]
    held = eligible.sample(frac=0.02, random_state=rng.randrange(2**31))
    on_time = rest.drop(held.index)
    return [on_time, held, late_symbol, late_reference]


class Runs:
    """The full build and the runs of arrivals, each in a database of its own, two at a time."""

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
        url = self.databases.create("tf_bar_k14")
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
                # the reference builds everything (the marts, the catalog); the others K14
                run_cli(
                    "refresh", *([] if name in ("procedures", "reference") else SELECT), dsn=url
                )
            if name == "procedures" and not i:
                run_cli("schedule", "install", dsn=url)
            steps.append(features(url))
        return {"steps": steps, "sizes": [len(p) for p in parts], "url": url}


@pytest.fixture(scope="module")
def runs(databases: FreshDatabase, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Runs]:
    runs = Runs(databases, tmp_path_factory.mktemp("bar_k14"), universe(SEED))
    yield runs
    runs.pool.shutdown(cancel_futures=True)


def _where(name: str, run: dict) -> str:
    return f"{name}, seed {SEED}, arrivals of {run['sizes']} bars"


def test_the_six_families_exist() -> None:
    assert MODELS == [
        "correlation", "cross_sectional", "error_correction", "hmm_regime_bars",
        "spectral_bars", "volatility_surface",
    ]  # fmt: skip


def test_each_models_warm_up_is_its_kernels() -> None:
    """The warm-up bars each model's SQL reads before its first written bar are what its
    kernel needs (WARMUP_BARS; the heavy families' window is the dbt var bar_heavy_window,
    1440 by default)."""
    import sys

    sys.path.insert(0, str(ROOT / "python_udfs"))
    import tf_bar_cross
    import tf_bar_heavy
    import tf_bar_panel
    import tf_bar_spectral

    kernels = {
        **tf_bar_cross.WARMUP_BARS, **tf_bar_heavy.WARMUP_BARS, **tf_bar_panel.WARMUP_BARS,
        **tf_bar_spectral.WARMUP_BARS,
    }  # fmt: skip
    default_window = "var('bar_heavy_window', 1440)"
    for model in MODELS:
        text = (ROOT / "models" / "bar_k14" / f"{model}.sql").read_text()
        found = re.search(r"warmup_bars=(\d+|\[?var\('bar_heavy_window', 1440\))", text)
        assert found, model
        value = found[1]
        sql_warmup = 1440 if value.lstrip("[") == default_window else int(value)
        assert sql_warmup == kernels[model], model


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


# the families across symbols: a row at a minute changes when another symbol's bar at that
# minute (or within its window) arrives later, so only rows before the first minute of the
# later arrivals are the past there; a family of one symbol's bars keeps every earlier row
ACROSS_SYMBOLS = ("correlation", "cross_sectional", "error_correction")


@pytest.mark.parametrize("model", MODELS)
def test_appending_never_changes_the_past(runs: Runs, model: str) -> None:
    run = runs.get("in_order")
    final = run["steps"][-1][model].set_index(["symbol", "ts"])
    parts = arrivals("in_order", runs.frame, random.Random(f"{SEED}:in_order"))
    for i, step in enumerate(run["steps"][:-1]):
        before = step[model]
        if model in ACROSS_SYMBOLS:
            later = min(part["ts"].min() for part in parts[i + 1 :])
            before = before[before["ts"] < later].reset_index(drop=True)
        assert len(before), model
        after = final.loc[before.set_index(["symbol", "ts"]).index].reset_index()
        problems = mismatches(after, before)
        assert not problems, _where("in_order", run) + "\n" + "\n".join(problems)


def _changed(before: pd.DataFrame, after: pd.DataFrame, symbols: list[str]) -> bool:
    old = before[before["symbol"].isin(symbols)].reset_index(drop=True)
    new = after.set_index(["symbol", "ts"]).loc[old.set_index(["symbol", "ts"]).index]
    return bool(mismatches(new.reset_index(), old, rel=0.0, abs_=0.0))


def test_late_arrivals_recomputed_other_symbols(runs: Runs) -> None:
    """Each late arrival changed rows of other symbols that were already stored."""
    steps = runs.get("late")["steps"]
    others = ["EURUSD", "USDJPY", "EURJPY"]
    # the held-back bars: the panel at their minutes
    assert _changed(steps[0]["cross_sectional"], steps[1]["cross_sectional"], others)
    # the late symbol: the USD pairs' quote-currency groups and the panel
    assert _changed(steps[1]["correlation"], steps[2]["correlation"], ["EURUSD"])
    assert _changed(steps[1]["cross_sectional"], steps[2]["cross_sectional"], others)
    # the late reference: every other symbol's ref2 columns
    for model in ("correlation", "error_correction"):
        assert _changed(steps[2][model], steps[3][model], ["EURUSD", "USDJPY", "EURJPY"]), model
    before = steps[2]["error_correction"]
    assert before.filter(like="ec_ref2_").isna().all().all()
    after = steps[3]["error_correction"]
    assert after.loc[after["symbol"] == "EURUSD", "ec_ref2_trace_r0"].notna().any()


def test_catalog_and_mart_list_every_bar_feature(runs: Runs) -> None:
    url = runs.get("reference")["url"]
    with psycopg.connect(url) as conn:
        catalog = pd.DataFrame(
            conn.execute(
                'select name, family, definition, unit, "window", available_after'
                " from features.feature_catalog"
            ).fetchall(),
            columns=["feature_name", "family", "definition", "unit", "window", "available_after"],
        )
        mart = conn.execute("select * from features.bar_features limit 0")
        mart_columns = [c.name for c in mart.description or []]
        mart_rows = conn.execute("select count(*) from features.bar_features").fetchone()[0]
        latest = conn.execute("select * from features.latest_bars('EURUSD')").fetchall()
    tables = runs.get("reference")["steps"][-1]
    minimum = {
        "correlation": 90, "cross_sectional": 46, "error_correction": 24,
        "hmm_regime_bars": 30, "spectral_bars": 60, "volatility_surface": 30,
    }  # fmt: skip
    for model in MODELS:
        columns = [
            c
            for c in tables[model].columns
            if c not in ("symbol", "ts") and not c.startswith("state_")
        ]
        listed = catalog[catalog["family"] == model]
        assert set(listed["feature_name"]) == set(columns), model
        assert len(columns) >= minimum[model], f"{model}: {len(columns)} features"
        assert listed["definition"].str.len().min() > 20, model
        assert listed["unit"].notna().all() and listed["window"].notna().all(), model
        assert set(columns) <= set(mart_columns), model
    bar = catalog[catalog["family"].isin(MODELS + K1_K13)]
    assert len(bar) >= 980, f"{len(bar)} bar features in the catalog"
    assert (bar["available_after"].astype(str) != "00:00:00").all()
    assert np.unique(mart_columns).size == len(mart_columns)
    assert mart_rows == len(runs.frame)
    assert len(latest) == 1


def _kernel_tables(tables: dict[str, pd.DataFrame]) -> dict[str, pd.DataFrame]:
    """Each model's full build computed in Python by its kernel (python_udfs/) on the staged
    bars of the same database, with the peers and parameters the model's SQL gives it."""
    from tests.integration import k14_kernels

    return k14_kernels.full_build(tables["stg_bars_1m"], currencies())


@pytest.mark.parametrize("model", MODELS)
def test_the_sql_gives_each_kernel_what_a_full_build_means(runs: Runs, model: str) -> None:
    """The same kernel on the same bars, here and in the server (whose Python has this venv's
    numpy and scipy: scripts/install-server-python.sh), to 1e-9; the ECT and its z-score judged
    against their window's std_s and 1 (T17)."""
    tables = runs.get("reference")["steps"][-1]
    want = _kernel_tables(tables)[model]
    scales = None
    if model == "error_correction":
        scales = want[["symbol", "ts"]].assign(
            **{f"ec_ref{j}_ect": want[f"ec_ref{j}_ect_std"] for j in (1, 2)},
            **{f"ec_ref{j}_ect_z": 1.0 for j in (1, 2)},
        )
    got = tables[model][list(want.columns)]
    problems = mismatches(got, want, rel=1e-9, abs_=1e-12, term_scales=scales)
    assert not problems, f"seed {SEED}\n" + "\n".join(problems)


@pytest.mark.parametrize("model", MODELS)
def test_family_equals_its_oracle(runs: Runs, model: str) -> None:
    from tests.integration import k14_kernels

    tables = runs.get("reference")["steps"][-1]
    problems = k14_kernels.oracle_problems(
        model, tables["stg_bars_1m"], tables[model], currencies()
    )
    assert not problems, f"seed {SEED}\n" + "\n".join(problems)


def test_a_missing_reference_gives_nulls_not_other_columns(runs: Runs) -> None:
    """Before GBPUSD arrived, the columns were the same and its ref2 columns NULL."""
    steps = runs.get("late")["steps"]
    assert list(steps[0]["correlation"].columns) == list(steps[-1]["correlation"].columns)
    assert steps[0]["correlation"].filter(like="_ref2_").isna().all().all()


def test_reference_symbols_are_a_dbt_var(databases: FreshDatabase) -> None:
    """A bad value of the var is a one-line compile error naming it."""
    url = databases.create("tf_bar_k14_var")
    run_cli("migrate", dsn=url)
    result = run_cli(
        "dbt", "compile", "--select", "correlation", "--vars", "{reference_symbols: [1, 2]}",
        dsn=url, check=False,
    )  # fmt: skip
    assert result.returncode != 0
    assert (
        "dbt var reference_symbols must list symbol names, got '1'" in result.stdout + result.stderr
    )


SHARDED = ["correlation", "cross_sectional", "volatility_surface"]  # peers, panel, heavy


def test_a_full_build_runs_its_shards_in_parallel_workers(runs: Runs, tmp_path: Path) -> None:
    """A full build's query, as dbt compiles it, runs one udf.bar_matrices call per shard
    (dbt var bar_family_shards) under a Parallel Append in parallel workers; it equals the
    build in one shard (no parallel workers) and the table dbt built."""
    url = runs.get("reference")["url"]
    compiled: dict[int, dict[str, str]] = {}
    for shards in (4, 1):
        target = tmp_path / f"shards_{shards}"
        run_cli(
            "dbt", "compile", "--select", *SHARDED, "--full-refresh",
            "--vars", f"{{bar_family_shards: {shards}}}", "--target-path", str(target), dsn=url,
        )  # fmt: skip
        folder = target / "compiled" / "tickfeatures" / "models" / "bar_k14"
        compiled[shards] = {model: (folder / f"{model}.sql").read_text() for model in SHARDED}
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("set parallel_leader_participation = off")  # as the model's sql_header
        for model in SHARDED:
            sharded, single = compiled[4][model], compiled[1][model]
            assert sharded.count("udf.bar_matrices(") == 4 and "udf.bar_matrices(" not in single
            # EXPLAIN ANALYZE of a CREATE TABLE AS runs it: the plan, and the table
            plan = "\n".join(
                row[0]
                for row in conn.execute(
                    f"explain (analyze, costs off, timing off) create temp table {model}_4 as "
                    + sharded
                ).fetchall()
            )
            assert "Parallel Append" in plan, plan
            launched = re.search(r"Workers Launched: (\d+)", plan)
            assert launched is not None and int(launched.group(1)) >= 1, plan
            conn.execute(f"create temp table {model}_1 as {single}")
            differing = conn.execute(
                f"""
                select
                    (select count(*) from (table {model}_4 except all table {model}_1) as a),
                    (select count(*) from (table {model}_1 except all table {model}_4) as b),
                    (select count(*) from (table {model}_4 except all table features.{model}) as c),
                    (select count(*) from (table features.{model} except all table {model}_4) as d),
                    (select count(*) from {model}_4)
                """
            ).fetchone()
            assert differing is not None and differing[:4] == (0, 0, 0, 0), (model, differing)
            assert differing[4] > 0
