"""What every kernel module shares: its input error and input checks."""

from __future__ import annotations

import json

import numpy as np


class InputError(ValueError):
    """Input a kernel cannot take; the message names the problem in one line."""


def as_signal(x: object, name: str = "x") -> np.ndarray:
    """A 1-D float64 array from a sequence (a SQL float8[]), or InputError naming the problem.

    NaN passes through (the transforms propagate it, as their reference libraries do); a NULL
    element, a nested (2-D) array or an empty one is an error.
    """
    if x is None:
        raise InputError(f"{name} is NULL")
    values = list(x)  # type: ignore[call-overload]
    for i, v in enumerate(values):
        if v is None:
            raise InputError(f"{name} has a NULL element at position {i + 1}")
        if isinstance(v, list | tuple):
            raise InputError(f"{name} must be one-dimensional")
    if not values:
        raise InputError(f"{name} is empty")
    return np.asarray(values, dtype=float)


def finite_signal(x: object, name: str = "x") -> np.ndarray:
    """as_signal, and InputError naming the first NaN or infinite element (1-based)."""
    signal = as_signal(x, name)
    bad = np.flatnonzero(~np.isfinite(signal))
    if bad.size:
        kind = "a NaN" if np.isnan(signal[bad[0]]) else "an infinite"
        raise InputError(f"{name} has {kind} element at position {bad[0] + 1}")
    return signal


def as_object(params: object, expected: str) -> dict:
    """A dict from a dict or its JSON text (how SQL passes jsonb), or InputError; `expected`
    completes "params must be ..." when it is neither."""
    if params is None:
        raise InputError("params is NULL")
    if isinstance(params, str | bytes):
        try:
            params = json.loads(params)
        except ValueError:
            raise InputError("params is not valid JSON") from None
    if not isinstance(params, dict):
        raise InputError(f"params must be {expected}")
    return params
