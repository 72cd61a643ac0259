"""dbt build on test data: its data tests pass, and every L2 family equals its pandas oracle.

The test data, loaded through `tickfeatures load` as a user would: the microstructure
oracle's hand-built books (missing levels, empty sides, zero sizes, crossed and locked
books, a symbol absent from seeds/symbols.csv), a windowed edge-case set (gaps of minutes,
flat stretches, levels appearing and vanishing, two symbols interleaved), and generated
snapshots of two more symbols. The oracles in tests/oracle/ were written from
FEATURE_DEFINITIONS.md without reading the SQL.

Both formulations of the rolling statistics are held to the oracles: the native window
functions (migration 0030, which this server has) and the numeric running sums a server
without tickfeatures_native builds (the dbt var tf_numeric_windows), each in a database of
its own loaded with the same files.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import psycopg
import pytest
import yaml

from tests.conftest import ROOT, FreshDatabase, run_cli
from tests.oracle import datasets, microstructure
from tests.oracle.compare import mismatches
from tests.oracle.registry import ORACLES
from tickfeatures import generate
from tickfeatures.schema import L2_COLUMNS

pytestmark = pytest.mark.integration

YAML = {name: ROOT / "models" / "l2" / f"{name}.yml" for name in ORACLES}
YAML["l2_targets"] = ROOT / "models" / "targets" / "l2_targets.yml"


def _to_csv(frame: pd.DataFrame, path) -> None:  # type: ignore[no-untyped-def]
    out = frame[list(L2_COLUMNS)].copy()
    out["ts"] = out["ts"].map(lambda t: t.isoformat())
    out.to_csv(path, index=False, na_rep="")


@pytest.fixture(scope="module")
def built(databases: FreshDatabase, tmp_path_factory: pytest.TempPathFactory) -> dict:
    url = databases.create()
    run_cli("migrate", dsn=url)
    tmp = tmp_path_factory.mktemp("l2")
    files = []
    for name, frame in (
        ("edge_books", microstructure.edge_case_snapshots()),
        ("edge_windows", datasets.window_edge_snapshots()),
    ):
        _to_csv(frame, tmp / f"{name}.csv")
        files.append(str(tmp / f"{name}.csv"))
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
    files.append(str(generated))
    run_cli("load", "l2", *files, dsn=url)
    build = run_cli("dbt", "build", "--target-path", str(tmp / "target"), dsn=url, check=False)
    snapshots = _read(url, "select * from market.l2_snapshots")
    snapshots = snapshots.astype({c: "float64" for c in L2_COLUMNS[2:]})
    # the numeric formulation: the same files, the L2 families and what they read
    numeric_url = databases.create()
    run_cli("migrate", dsn=numeric_url)
    run_cli("load", "l2", *files, dsn=numeric_url)
    run_cli("dbt", "seed", "--target-path", str(tmp / "numeric_target"), dsn=numeric_url)
    numeric = run_cli(
        "dbt", "run", "--select", *(f"+{family}" for family in ORACLES),
        "--vars", "{tf_numeric_windows: true}", "--target-path", str(tmp / "numeric_target"),
        dsn=numeric_url, check=False,
    )  # fmt: skip
    stability = Path("compiled", "tickfeatures", "models", "l2", "stability.sql")
    compiled = {"native": tmp / "target" / stability, "numeric": tmp / "numeric_target" / stability}
    return {
        "url": url,
        "build": build,
        "snapshots": snapshots,
        "urls": {"native": url, "numeric": numeric_url},
        "builds": {"native": build, "numeric": numeric},
        "compiled": compiled,
    }


def _read(url: str, query: str) -> pd.DataFrame:
    with psycopg.connect(url) as conn:
        cur = conn.execute(query)
        return pd.DataFrame(cur.fetchall(), columns=[c.name for c in cur.description or []])


def _as_oracle_types(frame: pd.DataFrame) -> pd.DataFrame:
    for column in frame.columns:
        if column == "is_crossed":
            frame[column] = frame[column].astype("boolean")
        elif column not in ("symbol", "ts"):
            frame[column] = frame[column].astype("float64")
    return frame


def test_dbt_build_and_its_data_tests_pass(built: dict) -> None:
    build = built["build"]
    assert build.returncode == 0, build.stdout[-4000:]
    assert "ERROR=0" in build.stdout and "PASS=" in build.stdout


def _skew_term_scales(snapshots: pd.DataFrame) -> pd.DataFrame:
    """vol_skew_N = sqrt(N) * sum r^3 / RV^1.5 sums terms of both signs: its tolerance is
    relative to sqrt(N) * sum |r|^3 / RV^1.5 (T17)."""
    frame = snapshots[["symbol", "ts"]].copy()
    mid = (snapshots["bid_price_1"] + snapshots["ask_price_1"]) / 2
    frame["mid"] = mid.astype(float)
    frame = frame.sort_values(["symbol", "ts"]).reset_index(drop=True)
    r = frame.groupby("symbol")["mid"].transform(lambda m: np.log(m / m.shift()))
    for n in (10, 30, 100, 200, 500):
        by = frame.assign(a=r.abs() ** 3, r2=r**2).groupby("symbol")
        abs3 = by["a"].transform(lambda s, n=n: s.rolling(n, min_periods=n).sum())
        rv = by["r2"].transform(lambda s, n=n: s.rolling(n, min_periods=n).sum())
        frame[f"vol_skew_{n}"] = np.sqrt(n) * abs3 / rv**1.5
    return frame.drop(columns="mid")


def test_each_build_used_its_formulation(built: dict) -> None:
    native = built["compiled"]["native"].read_text()
    numeric = built["compiled"]["numeric"].read_text()
    # the numeric formulation's running moments are columns <series>_s1, _s2 and _n
    assert "udf.window_std(" in native and "as spread_s2" not in native
    assert "udf.window_" not in numeric and "as spread_s2" in numeric


@pytest.mark.parametrize("formulation", ["native", "numeric"])
@pytest.mark.parametrize("family", list(ORACLES))
def test_family_equals_its_oracle(built: dict, family: str, formulation: str) -> None:
    build = built["builds"][formulation]
    assert build.returncode == 0, build.stdout[-4000:]
    expected = ORACLES[family](built["snapshots"].copy())
    actual = _as_oracle_types(_read(built["urls"][formulation], f"select * from features.{family}"))
    assert len(actual) > 4000
    assert {"EURUSD", "ZZTEST", "GBPUSD", "USDJPY"} <= set(actual["symbol"])
    scales = _skew_term_scales(built["snapshots"]) if family == "volatility" else None
    problems = mismatches(actual, expected, term_scales=scales)
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("family", list(ORACLES))
def test_every_column_is_documented(built: dict, family: str) -> None:
    spec = yaml.safe_load(YAML[family].read_text())
    (model,) = spec["models"]
    documented = {c["name"]: c for c in model["columns"]}
    actual = _read(built["url"], f"select * from features.{family} limit 0")
    assert list(actual.columns) == list(documented)
    for name in actual.columns:
        assert documented[name].get("description"), f"{name} is not documented"
        if name not in ("symbol", "ts"):
            meta = documented[name]["config"]["meta"]
            assert meta.get("unit") and meta.get("window"), f"{name} lacks unit or window"


def test_feature_catalog_lists_every_feature(built: dict) -> None:
    catalog = _read(
        built["url"],
        'select name, family, model, definition, unit, "window" from features.feature_catalog',
    )
    assert catalog["name"].is_unique
    assert catalog.notna().all().all()
    listed = set(zip(catalog["model"], catalog["name"], strict=True))
    for model, oracle in ORACLES.items():
        # The oracles' columns were written from section S: every one must be catalogued.
        names = oracle(built["snapshots"].head(20).copy()).columns
        for name in names:
            if name not in ("symbol", "ts"):
                assert (model, name) in listed, f"{model}.{name} is not in the catalog"
    # ... and every column of the heavy families' YAML, with the hht columns heavy_features
    # defines (those with a unit of their own)
    heavy = set()
    marts = ROOT / "models" / "marts" / "_marts.yml"
    for path in [*sorted((ROOT / "models" / "heavy").glob("*.yml")), marts]:
        for model in yaml.safe_load(path.read_text())["models"]:
            if model["name"] in ("mid_bars_1s", "l2_features", "feature_catalog"):
                continue
            for column in model["columns"]:
                if column.get("config", {}).get("meta", {}).get("unit"):
                    heavy.add((model["name"], column["name"]))
    assert heavy <= listed
    assert (
        len(heavy) == 5 + 16 + 12 + 6 + 6 + 9
    )  # heavy_features, hht, hmm, wavelet, spectral, garch
    # the bar families' features are counted by tests/integration/test_bar_families.py
    bar_models = {
        p.stem for folder in ("bar", "bar_k14") for p in (ROOT / "models" / folder).glob("*.sql")
    }
    assert len(catalog[~catalog["model"].isin(bar_models)]) == len(heavy) + sum(
        len(oracle(built["snapshots"].head(20).copy()).columns) - 2 for oracle in ORACLES.values()
    )


def test_l2_features_puts_the_families_side_by_side(built: dict) -> None:
    wide = _read(built["url"], "select * from features.l2_features")
    micro = _read(built["url"], "select symbol, ts, mid_price from features.microstructure")
    assert len(wide) == len(micro) == len(built["snapshots"])
    families = [f for f in ORACLES if f != "l2_targets"]
    expected = ["symbol", "ts"]
    for family in families:
        expected += [
            c
            for c in _read(built["url"], f"select * from features.{family} limit 0").columns
            if c not in ("symbol", "ts")
        ]
    assert list(wide.columns) == expected
    assert not any(c.startswith("target_") for c in wide.columns)


# Every HHT name of the seeds (seeds/000_*, "From HHT FeatureEngineer"): the list.
SEED_HHT_NAMES = """hht_trend_strength hht_trend_slope hht_cycle_phase hht_dominant_freq
hht_inst_amplitude hht_regime_classifier hht_energy_high_freq hht_energy_mid_freq
hht_energy_residual hht_data_quality hht_calculation_time_ms hht_trend_confidence
hht_market_state ofi_10s_hht_qualified ofi_30s_hht_qualified ofi_1m_hht_qualified
obi_trend_aligned l2_hht_signal_confluence trend_persistence_hht mean_reversion_hht""".split()


def test_catalog_has_every_hht_name_of_the_seeds(built: dict) -> None:
    catalog = _read(built["url"], "select name, family from features.feature_catalog")
    hht = set(catalog.loc[catalog["family"] == "hht", "name"])
    assert set(SEED_HHT_NAMES) <= hht, set(SEED_HHT_NAMES) - hht


def test_the_column_checks_fail_on_a_bad_value_and_name_it(built: dict, tmp_path: Path) -> None:
    """The YAML's column checks (meta.checks, one column_checks test per model) are real: a NaN
    and a value out of range in the numeric build's microstructure fail `dbt test`, and the
    test's query names exactly those two checks. The values are put back after."""
    url = built["urls"]["numeric"]
    target = tmp_path / "target"
    with psycopg.connect(url, autocommit=True) as conn:
        (first, second) = conn.execute(
            "select symbol, ts, spread_bps, order_book_imbalance from features.microstructure"
            " where spread_bps is not null and order_book_imbalance is not null"
            " order by symbol, ts limit 2"
        ).fetchall()
        conn.execute(
            "update features.microstructure set spread_bps = 'NaN' where symbol = %s and ts = %s",
            first[:2],
        )
        conn.execute(
            "update features.microstructure set order_book_imbalance = 1.5"
            " where symbol = %s and ts = %s",
            second[:2],
        )
        try:
            tested = run_cli(
                "dbt", "test", "--select", "microstructure,test_name:column_checks",
                "--target-path", str(target), dsn=url, check=False,
            )  # fmt: skip
            compiled = next(target.glob("compiled/**/column_checks_microstructure_*.sql"))
            failing = dict(conn.execute(compiled.read_text()).fetchall())  # type: ignore[arg-type]
        finally:
            conn.execute(
                "update features.microstructure set spread_bps = %s where symbol = %s and ts = %s",
                (first[2], *first[:2]),
            )
            conn.execute(
                "update features.microstructure set order_book_imbalance = %s"
                " where symbol = %s and ts = %s",
                (second[3], *second[:2]),
            )
    assert tested.returncode != 0, tested.stdout[-2000:]
    assert "FAIL 2 column_checks_microstructure" in tested.stdout, tested.stdout[-2000:]
    assert failing == {
        "spread_bps is NaN or infinite": 1,
        "order_book_imbalance outside [-1, 1]": 1,
    }
