"""The feature registry: features.feature_catalog carries each feature's version, lineage and
calculation times; a changed definition (its YAML, or the code and macros its model compiles
from) is a new version, kept in ops.feature_versions; `tickfeatures features show` prints it."""

from __future__ import annotations

import shutil

import psycopg
import pytest

from tests.conftest import ROOT, FreshDatabase, run_cli

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def _catalog(url: str) -> dict[str, tuple]:
    with psycopg.connect(url) as conn:
        return {
            row[0]: row[1:]
            for row in conn.execute(
                "select name, version, model_version, upstream, changed_at, last_refreshed,"
                " last_duration_ms, mean_duration_ms, model from features.feature_catalog"
            )
        }


@pytest.fixture(scope="module")
def registry(databases: FreshDatabase, tmp_path_factory: pytest.TempPathFactory) -> dict:
    url = databases.create("tf_registry")
    run_cli("migrate", dsn=url)
    run_cli("generate", "l2", "--load", "--minutes", "5", dsn=url)
    run_cli("refresh", dsn=url)
    before = _catalog(url)
    # the same project, with one feature's YAML and one macro changed
    home = tmp_path_factory.mktemp("project")
    for name in ("models", "macros", "seeds", "migrations", "python_udfs"):
        shutil.copytree(ROOT / name, home / name)
    for name in ("dbt_project.yml", "profiles.yml"):
        shutil.copy(ROOT / name, home / name)
    ofi_yml = home / "models" / "l2" / "ofi.yml"
    text = ofi_yml.read_text()
    assert "Sum of e_n over the snapshots in (ts - 10 seconds, ts]" in text
    ofi_yml.write_text(
        text.replace(
            "Sum of e_n over the snapshots in (ts - 10 seconds, ts]",
            "Sum of the event OFI e_n over the snapshots in (ts - 10 seconds, ts]",
        )
    )
    frame = home / "macros" / "rolling" / "time_window_frame.sql"
    source = frame.read_text()
    assert source.rstrip().endswith("{%- endmacro %}")
    frame.write_text(
        source.replace("{%- endmacro %}", "{#- a new version of what calls it -#}\n{%- endmacro %}")
    )
    env = {"TICKFEATURES_HOME": str(home)}
    run_cli("refresh", "--select", "feature_catalog", dsn=url, env=env, cwd=home)
    after = _catalog(url)
    shown = run_cli("features", "show", "ofi_10s", dsn=url).stdout
    listed = run_cli("features", "list", "--family", "ofi", dsn=url).stdout
    return {"url": url, "before": before, "after": after, "show": shown, "list": listed}


def test_every_feature_has_a_version_lineage_and_calculation_times(registry: dict) -> None:
    before = registry["before"]
    assert len(before) > 150
    for name, (
        version,
        model_version,
        upstream,
        changed,
        refreshed,
        last,
        mean,
        model,
    ) in before.items():
        assert len(version) == 32 and len(model_version) == 32 and changed is not None, name
        assert upstream, name
        if model != "heavy_features":  # a view: as current as the models under it
            assert refreshed is not None and last > 0 and mean > 0, name
    assert before["flow_persistence"][2] == ["flow_ewm_state", "market.l2_snapshots", "ofi"]
    assert before["hht_trend_slope"][2] == ["mid_bars_1s"]


def test_a_changed_definition_is_a_new_version_and_the_rest_stay(registry: dict) -> None:
    before, after = registry["before"], registry["after"]
    changed = {name for name in before if before[name][0] != after[name][0]}
    # the YAML of ofi_10s, and time_window_frame, which ofi and volatility compile from
    assert "ofi_10s" in changed
    assert {n for n in changed if after[n][-1] == "ofi"} == {
        n for n in before if before[n][-1] == "ofi"
    }
    assert not {n for n in changed if after[n][-1] in ("microstructure", "book_pressure")}
    assert after["ofi_10s"][3] > before["ofi_10s"][3]  # changed_at
    with psycopg.connect(registry["url"]) as conn:
        history = conn.execute(
            "select version, definition from ops.feature_versions where name = 'ofi_10s'"
            " order by first_seen"
        ).fetchall()
    assert [v for v, _ in history] == [before["ofi_10s"][0], after["ofi_10s"][0]]
    assert history[1][1].startswith("Sum of the event OFI e_n")


def test_features_show_prints_definition_lineage_history_and_times(registry: dict) -> None:
    shown = registry["show"]
    assert shown.splitlines()[0] == "ofi_10s"
    assert "definition      Sum of the event OFI e_n" in shown
    assert "lineage         features.ofi reads market.l2_snapshots, stg_l2_snapshots" in shown
    assert "versions        2" in shown and "(current)" in shown
    assert "definition then: Sum of e_n over the snapshots" in shown
    assert "mean of the last 100 refreshes" in shown
    assert "ofi_10s " in registry["list"] and "flow_" not in registry["list"]


def test_unknown_names_are_one_line_errors(registry: dict) -> None:
    result = run_cli("features", "show", "ofi_10x", dsn=registry["url"], check=False)
    assert result.returncode == 1
    assert result.stderr.strip() == (
        "tickfeatures: error: no feature named 'ofi_10x'; did you mean ofi_10s, ofi_1m, ofi_30s?"
    )
