"""The entry point of every bar-family model (FEATURE_DEFINITIONS section K): runs one model's
kernel on one symbol's bars and returns the rows to write as one bytea, row-major float64
(NaN = NULL), which the native udf.float8_rows turns into rows at memory speed.

MODULES names each model's kernel module; the module declares its models in MODELS
(tf_bar_common explains the contract).
"""

from __future__ import annotations

import importlib
import json

import numpy as np
import tf_bar_common
from tf_common import InputError, checkpoint

# the kernel module of each bar family model (each declares its models in MODELS)
MODULES: dict[str, str] = {
    "bollinger_rate": "tf_bar_stats",
    "bollinger_bqx": "tf_bar_stats",
    "statistics_rate": "tf_bar_stats",
    "statistics_bqx": "tf_bar_stats",
    "regression_rate": "tf_bar_regression",
    "regression_bqx": "tf_bar_regression",
    "parabolic_comparison": "tf_bar_regression",
    "technical_rate": "tf_bar_technical",
    "technical_bqx": "tf_bar_technical",
    "multi_scale": "tf_bar_multiscale",
    "fibonacci": "tf_bar_range",
    "realized_volatility": "tf_bar_range",
    "market_regime": "tf_bar_range",
    "microstructure_bars": "tf_bar_micro",
    "volume_features": "tf_bar_activity",
    "spread_features": "tf_bar_activity",
    "lagged_features": "tf_bar_time",
    "time_features": "tf_bar_time",
}


def _module_of(model: str):
    if model not in MODULES:
        raise InputError(f"no bar family model named '{model}'")
    module = importlib.import_module(MODULES[model])
    if model not in module.MODELS:
        raise InputError(f"{MODULES[model]} has no model '{model}'")
    return module


def columns(model: str) -> list[str]:
    """The output columns of a model, in order."""
    return list(_module_of(model).MODELS[model])


def unpack(packed: bytes | None) -> np.ndarray:
    """float64 values from udf.float8_pack's bytes (NaN where the SQL value was NULL)."""
    if packed is None:
        return np.empty(0)
    return np.frombuffer(bytes(packed), dtype=np.float64)


def compute(
    model: str, inputs: dict[str, np.ndarray], params: dict | None = None
) -> dict[str, np.ndarray]:
    """Every column of `model` over the whole input (warm-up rows included), by name."""
    module = _module_of(model)
    params = dict(params or {})
    bars = tf_bar_common.bars_from_inputs(inputs)
    # inputs beyond the one-minute bars (e.g. multi_scale's coarser bars m30_*, m60_*)
    params["extra"] = {
        k: np.asarray(v, dtype=np.float64)
        for k, v in inputs.items()
        if k not in tf_bar_common.INPUTS
    }
    checkpoint()
    result = module.compute(model, bars, params)
    expected = module.MODELS[model]
    missing = [c for c in expected if c not in result]
    if missing:
        raise InputError(f"{model}: the kernel returned no column {', '.join(missing[:5])}")
    return result


SCALE_INPUTS: tuple[str, ...] = (*tf_bar_common.INPUTS, "bars")


def _matrix(packed: bytes | None, width: int, what: str) -> np.ndarray:
    values = unpack(packed)
    if len(values) % width:
        raise InputError(f"{what}: {len(values)} values is not a whole number of rows of {width}")
    return values.reshape(-1, width)


def rows(model: str, wanted: list[str], packed: list, params_json: str | None) -> bytes:
    """The rows from params.start on, as row-major float64 bytes: each bar's open minute (whole
    minutes since the epoch), then the columns `wanted`.

    packed[0]: the bars, rows of tf_bar_common.INPUTS (udf.float8_pack_agg); packed[i], i >= 1:
    the coarser bars of params.scales[i - 1], rows of SCALE_INPUTS, passed on as
    `<scale>_<input>` arrays."""
    params = json.loads(params_json) if params_json else {}
    bars = _matrix(packed[0], len(tf_bar_common.INPUTS), "bars")
    inputs = {name: bars[:, j] for j, name in enumerate(tf_bar_common.INPUTS)}
    for i, scale in enumerate(params.pop("scales", None) or [], start=1):
        matrix = _matrix(packed[i] if i < len(packed) else None, len(SCALE_INPUTS), scale)
        inputs.update({f"{scale}_{name}": matrix[:, j] for j, name in enumerate(SCALE_INPUTS)})
    result = compute(model, inputs, params)
    unknown = [c for c in wanted if c not in result]
    if unknown:
        raise InputError(f"{model}: no column named {', '.join(unknown[:5])}")
    start = int(params.get("start") or 0)
    n = len(inputs["close"])
    matrix = np.empty((n - start, len(wanted) + 1), dtype=np.float64)
    matrix[:, 0] = inputs["minute"][start:]
    for j, name in enumerate(wanted, start=1):
        column = np.asarray(result[name], dtype=np.float64)
        if column.shape != (n,):
            raise InputError(f"{model}: column {name} has shape {column.shape}, expected ({n},)")
        matrix[:, j] = column[start:]
    # a feature is never NaN or infinite: both are NULL (FEATURE_DEFINITIONS T17)
    matrix[~np.isfinite(matrix)] = np.nan
    checkpoint()
    return matrix.tobytes()
