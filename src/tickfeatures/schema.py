"""Column names of the raw market tables, shared by the generator, loader and tests."""

from __future__ import annotations

LEVELS = 10

L2_LEVEL_COLUMNS: tuple[str, ...] = (
    *(f"bid_price_{i}" for i in range(1, LEVELS + 1)),
    *(f"bid_size_{i}" for i in range(1, LEVELS + 1)),
    *(f"ask_price_{i}" for i in range(1, LEVELS + 1)),
    *(f"ask_size_{i}" for i in range(1, LEVELS + 1)),
)
L2_COLUMNS: tuple[str, ...] = ("symbol", "ts", *L2_LEVEL_COLUMNS)

BAR_VALUE_COLUMNS: tuple[str, ...] = ("open", "high", "low", "close", "volume", "spread", "ticks")
BAR_COLUMNS: tuple[str, ...] = ("symbol", "ts", *BAR_VALUE_COLUMNS)
# Columns a bar file may leave out: they load as NULL (migration 0020).
BAR_OPTIONAL_COLUMNS: tuple[str, ...] = ("spread", "ticks")
# Integer columns (binary COPY writes them as int4).
INTEGER_COLUMNS: frozenset[str] = frozenset({"ticks"})
