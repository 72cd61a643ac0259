"""Inputs the kernels are checked on, in pure Python and through SQL: short, constant,
trending, noisy, long, with NaN."""

from __future__ import annotations

import numpy as np


def signals() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(20261121)
    t = np.arange(600)
    out = {
        "one": np.array([1.25]),
        "two": np.array([1.0, -2.0]),
        "seven": rng.normal(size=7),
        "thirteen": rng.normal(size=13),
        "constant": np.full(64, 3.5),
        "trend": 0.01 * t[:100] + 0.1 * rng.normal(size=100),
        "noise": rng.normal(size=257),
        "cycles": np.sin(2 * np.pi * t / 40) + 0.3 * np.sin(2 * np.pi * t / 7) + 0.05 * t / 100,
        "long": np.cumsum(rng.normal(size=4096)),
    }
    with_nan = rng.normal(size=50)
    with_nan[17] = np.nan
    out["with_nan"] = with_nan
    return out
