"""What every kernel module shares: its input error, input checks, size limits and the
checkpoint that lets the database stop a long call.

One rule for values (every kernel, every numeric argument, params included): NULL, NaN,
+Infinity or -Infinity anywhere is an InputError naming the argument and the 1-based position
of the first such element ("x has a NaN at position 18", "y has an infinite value at [3][2]");
an all-NaN input is reported at position 1. No kernel passes NaN through.

Limits: each kernel module has a MAX_LENGTH (the longest input it takes) and checks its size
arguments against the input, so that its largest allowed call finishes in bounded time and
memory and no single numpy/LAPACK call, nor the conversion of its result to SQL, runs for
much more than half a second without a checkpoint (python_udfs/README.md lists the limits).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable

import numpy as np


class InputError(ValueError):
    """Input a kernel cannot take; the message names the problem in one line."""


# --- stopping a long call ---------------------------------------------------------------------

_hook: Callable[[], object] | None = None


def set_checkpoint(hook: Callable[[], object] | None) -> None:
    """Install what checkpoint() runs (None: nothing). In the database udf._kernel_loader
    installs a function that runs a prepared `select 1` through plpy at most every 50 ms:
    PL/Python does not check for interrupts while Python runs, but every SPI query does, so a
    pending statement timeout, pg_cancel_backend or pg_terminate_backend takes effect there
    (the error propagates out of the kernel; no kernel catches it)."""
    global _hook
    _hook = hook


def checkpoint() -> None:
    """Called by kernels in every loop that can run long: a no-op outside the database."""
    if _hook is not None:
        _hook()


# --- input checks --------------------------------------------------------------------------------


def check_length(n: int, maximum: int, name: str = "x") -> None:
    """InputError when an input of n values is longer than the kernel takes."""
    if n > maximum:
        raise InputError(f"{name} is too long: {n} values, the maximum is {maximum}")


def check_finite(values: np.ndarray, name: str = "x") -> np.ndarray:
    """values, or InputError naming the first NaN or infinite element by its 1-based
    position: `position i` for a vector, `[i][j]` for a matrix."""
    finite = np.isfinite(values)
    if finite.all():
        return values
    if values.ndim == 0:
        raise InputError(f"{name} is {'NaN' if np.isnan(values) else 'infinite'}")
    first = np.unravel_index(int(np.argmin(finite.ravel())), values.shape)
    kind = "a NaN" if np.isnan(values[first]) else "an infinite value"
    if values.ndim == 1:
        where = f"position {first[0] + 1}"
    else:
        where = "".join(f"[{i + 1}]" for i in first)
    raise InputError(f"{name} has {kind} at {where}")


def check_number(value: object, name: str) -> float:
    """A finite float from a scalar numeric argument, or InputError."""
    if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
        raise InputError(f"{name} must be a number, got {value!r}")
    number = float(value)
    if not math.isfinite(number):
        raise InputError(f"{name} must be a finite number, got {number!r}")
    return number


def as_signal(x: object, name: str = "x", max_length: int | None = None) -> np.ndarray:
    """A 1-D float64 array from a sequence (a SQL float8[]), or InputError naming the problem:
    NULL, empty, a NULL or nested element, or longer than max_length. Values are not checked
    (finite_signal checks them)."""
    if x is None:
        raise InputError(f"{name} is NULL")
    values = list(x)  # type: ignore[call-overload]
    if max_length is not None:
        check_length(len(values), max_length, name)
    for i, v in enumerate(values):
        if v is None:
            raise InputError(f"{name} has a NULL element at position {i + 1}")
        if isinstance(v, list | tuple | np.ndarray):
            raise InputError(f"{name} must be one-dimensional")
    if not values:
        raise InputError(f"{name} is empty")
    return np.asarray(values, dtype=float)


def finite_signal(x: object, name: str = "x", max_length: int | None = None) -> np.ndarray:
    """as_signal, and InputError naming the first NaN or infinite element (1-based)."""
    return check_finite(as_signal(x, name, max_length), name)


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
