"""tickfeatures: an in-database feature engine for order-book snapshots and OHLCV bars."""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    # tickfeatures.training_set without importing pandas for every CLI command
    if name == "training_set":
        from tickfeatures.serving import training_set

        return training_set
    raise AttributeError(f"module 'tickfeatures' has no attribute {name!r}")
