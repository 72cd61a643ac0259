"""dbt build on test data: its data tests pass, and microstructure equals the pandas oracle.

The test data: the oracle's hand-built edge cases (missing levels, empty sides, zero sizes,
crossed and locked books, a symbol absent from seeds/symbols.csv) plus generated snapshots
of two more symbols, all loaded through `tickfeatures load` as a user would.
"""

from __future__ import annotations

import csv
from datetime import UTC, datetime, timedelta

import pandas as pd
import psycopg
import pytest

from tests.conftest import ROOT, FreshDatabase, run_cli
from tests.oracle import microstructure as oracle
from tests.oracle.compare import mismatches
from tickfeatures import generate
from tickfeatures.schema import L2_COLUMNS

pytestmark = pytest.mark.integration

DEFAULT_IMPACT_ORDER_SIZE = 1.0  # dbt_project.yml var default_impact_order_size


@pytest.fixture(scope="module")
def built(databases: FreshDatabase, tmp_path_factory: pytest.TempPathFactory) -> dict:
    url = databases.create()
    run_cli("migrate", dsn=url)
    tmp = tmp_path_factory.mktemp("microstructure")
    edge = oracle.edge_case_snapshots()
    edge_csv = tmp / "edge_cases.csv"
    edge.assign(ts=edge["ts"].map(lambda t: t.isoformat()))[list(L2_COLUMNS)].to_csv(
        edge_csv, index=False, na_rep=""
    )
    specs = generate.load_symbols(ROOT / "seeds" / "symbols.csv")
    generated = tmp / "generated.csv.gz"
    generate.write_csv(
        generate.generate_l2(
            [specs["GBPUSD"], specs["USDJPY"]],
            datetime(2026, 1, 5, 9, tzinfo=UTC),
            timedelta(minutes=3),
            seed=11,
        ),
        L2_COLUMNS,
        generated,
    )
    run_cli("load", "l2", str(edge_csv), str(generated), dsn=url)
    build = run_cli("dbt", "build", "--target-path", str(tmp / "target"), dsn=url, check=False)
    return {"url": url, "build": build, "edge": edge}


def _read(url: str, query: str) -> pd.DataFrame:
    with psycopg.connect(url) as conn:
        cur = conn.execute(query)
        return pd.DataFrame(cur.fetchall(), columns=[c.name for c in cur.description or []])


def test_dbt_build_and_its_data_tests_pass(built: dict) -> None:
    build = built["build"]
    assert build.returncode == 0, build.stdout[-4000:]
    assert "ERROR=0" in build.stdout and "PASS=" in build.stdout


def test_microstructure_equals_the_oracle(built: dict) -> None:
    assert built["build"].returncode == 0
    snapshots = _read(built["url"], "select * from market.l2_snapshots")
    with (ROOT / "seeds" / "symbols.csv").open() as fh:
        impact = {row["symbol"]: float(row["impact_order_size"]) for row in csv.DictReader(fh)}
    assert "ZZTEST" not in impact  # the edge cases' symbol uses the default size
    expected = oracle.microstructure(snapshots, impact, DEFAULT_IMPACT_ORDER_SIZE)
    actual = _read(built["url"], "select * from features.microstructure")
    actual = actual.astype(
        {c: "float64" for c in actual.columns if c not in ("symbol", "ts", "is_crossed")}
    )
    actual["is_crossed"] = actual["is_crossed"].astype("boolean")
    assert len(actual) > 1000
    assert set(built["edge"]["symbol"]) <= set(actual["symbol"])
    problems = mismatches(actual, expected)
    assert not problems, "\n".join(problems)


def test_every_column_is_documented(built: dict) -> None:
    import yaml

    spec = yaml.safe_load((ROOT / "models" / "l2" / "microstructure.yml").read_text())
    (model,) = spec["models"]
    documented = {c["name"]: c for c in model["columns"]}
    actual = _read(built["url"], "select * from features.microstructure limit 0")
    assert list(actual.columns) == list(oracle.OUTPUT_COLUMNS)
    for name in actual.columns:
        assert documented.get(name, {}).get("description"), f"{name} is not documented"
        if name not in ("symbol", "ts"):
            meta = documented[name]["config"]["meta"]
            assert meta.get("unit") and meta.get("window"), f"{name} lacks unit or window"
