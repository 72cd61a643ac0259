"""tickfeatures: an in-database feature engine for order-book snapshots and OHLCV bars."""

from __future__ import annotations

__version__ = "0.1.0"
