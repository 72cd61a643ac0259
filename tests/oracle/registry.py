"""Which oracle computes which model: shared by the oracle tests, the incremental tests and
the benchmark's pandas pipeline."""

from __future__ import annotations

import csv
from collections.abc import Callable
from pathlib import Path

import pandas as pd

from tests.oracle import (
    book_pressure,
    flow,
    microstructure,
    ofi,
    regime,
    stability,
    targets,
    temporal,
    volatility,
)

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_IMPACT_ORDER_SIZE = 1.0  # dbt_project.yml var default_impact_order_size

# The eight L2 families, in the order features.l2_features lays them out.
L2_FAMILIES = [
    "microstructure",
    "ofi",
    "book_pressure",
    "stability",
    "volatility",
    "flow",
    "temporal",
    "regime",
]


def impact_sizes() -> dict[str, float]:
    with (ROOT / "seeds" / "symbols.csv").open() as fh:
        return {row["symbol"]: float(row["impact_order_size"]) for row in csv.DictReader(fh)}


ORACLES: dict[str, Callable[[pd.DataFrame], pd.DataFrame]] = {
    "microstructure": lambda s: microstructure.microstructure(
        s, impact_sizes(), DEFAULT_IMPACT_ORDER_SIZE
    ),
    "ofi": ofi.ofi,
    "book_pressure": book_pressure.book_pressure,
    "stability": stability.stability,
    "volatility": volatility.volatility,
    "flow": flow.flow,
    "temporal": temporal.temporal,
    "regime": regime.regime,
    "l2_targets": targets.targets,
}
