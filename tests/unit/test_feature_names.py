"""Every feature name is unique across the families (features.feature_catalog's key, and the
marts put families side by side), checked from the YAML without a database: a bar family's
`spread_bps` once collided with the L2 one and only the catalog's data test noticed."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
# models whose columns are not features of their own: inputs, marts, the catalog
NOT_FAMILIES = {
    "stg_l2_snapshots", "stg_bars_1m", "bars_1m_l2", "bars_30m", "bars_60m", "mid_bars_1s",
    "flow_ewm_state", "l2_features", "bar_features", "heavy_features", "feature_catalog",
    "latest_l2_all", "latest_bars_all",
}  # fmt: skip


def test_feature_names_are_unique_across_families() -> None:
    owners: dict[str, list[str]] = defaultdict(list)
    for path in sorted((ROOT / "models").rglob("*.yml")):
        for model in yaml.safe_load(path.read_text()).get("models", []):
            if model["name"] in NOT_FAMILIES:
                continue
            for column in model.get("columns", []):
                if column["name"] not in ("symbol", "ts"):
                    owners[column["name"]].append(model["name"])
    assert len(owners) > 900  # the families are all read
    assert {name: models for name, models in owners.items() if len(models) > 1} == {}
