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
    "hmm_regime_bars": "tf_bar_heavy",
    "volatility_surface": "tf_bar_heavy",
    "spectral_bars": "tf_bar_spectral",
    "cross_sectional": "tf_bar_panel",
    "correlation": "tf_bar_cross",
    "error_correction": "tf_bar_cross",
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

# the rows of each peer's packed bars (families across symbols): bar open minute, close
PEER_INPUTS: tuple[str, ...] = ("minute", "close")


def peers_from_packs(
    packs: list, slot_of: list, slots: list[str]
) -> dict[str, list[dict[str, np.ndarray]]]:
    """{slot: [{'minute': ..., 'close': ...}, ...]}: every slot named (an empty list when no
    peer symbol fills it), each peer's bars oldest first. packs[i] (rows of PEER_INPUTS) is a
    peer of slot slots[slot_of[i]]."""
    if len(packs) != len(slot_of):
        raise InputError(f"peers: {len(packs)} packed peers for {len(slot_of)} slot numbers")
    peers: dict[str, list[dict[str, np.ndarray]]] = {slot: [] for slot in slots}
    for packed, slot in zip(packs, slot_of, strict=True):
        if not isinstance(slot, int) or not 0 <= slot < len(slots):
            raise InputError(f"peers: slot {slot!r} is not one of the {len(slots)} slots named")
        matrix = _matrix(packed, len(PEER_INPUTS), "peer")
        peers[slots[slot]].append({"minute": matrix[:, 0].copy(), "close": matrix[:, 1].copy()})
    return peers
    order = np.lexsort((matrix[:, 2], matrix[:, 1], matrix[:, 0]))
    matrix = matrix[order]
    keys = matrix[:, :2]
    cuts = np.flatnonzero(np.any(keys[1:] != keys[:-1], axis=1)) + 1
    for block in np.split(matrix, cuts):
        slot = int(block[0, 0])
        if not 0 <= slot < len(slots):
            raise InputError(f"peers: slot {slot} is not one of the {len(slots)} slots named")
        peers[slots[slot]].append({"minute": block[:, 2].copy(), "close": block[:, 3].copy()})
    return peers


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
    if getattr(_module_of(model), "PANEL", False):
        return panel_rows(model, wanted, packed, params)
    bars = _matrix(packed[0], len(tf_bar_common.INPUTS), "bars")
    inputs = {name: bars[:, j] for j, name in enumerate(tf_bar_common.INPUTS)}
    scales = params.pop("scales", None) or []
    for i, scale in enumerate(scales, start=1):
        matrix = _matrix(packed[i] if i < len(packed) else None, len(SCALE_INPUTS), scale)
        inputs.update({f"{scale}_{name}": matrix[:, j] for j, name in enumerate(SCALE_INPUTS)})
    # families across symbols: one packed array per peer symbol after the scales,
    # params.peer_slot_of[i] the slot (in params.peer_slots) of the i-th
    slots = params.pop("peer_slots", None)
    slot_of = params.pop("peer_slot_of", None) or []
    if slots is not None:
        params["peers"] = peers_from_packs(packed[len(scales) + 1 :], slot_of, list(slots))
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


# the rows of each symbol's packed bars for a panel model (cross_sectional)
PANEL_INPUTS: tuple[str, ...] = ("minute", "close", "volume")


def panel_rows(model: str, wanted: list[str], packed: list, params: dict) -> bytes:
    """A panel model's rows (a family across every symbol at each minute): packed[i] holds
    symbol i's bars (rows of PANEL_INPUTS), params.base / params.quote their currencies and
    params.from_minute the first minute written. Row-major float64: the open minute, the
    symbol's number i, then the columns `wanted`; sorted by (symbol, minute)."""
    module = _module_of(model)
    bars = []
    for i, pack in enumerate(packed):
        matrix = _matrix(pack, len(PANEL_INPUTS), f"symbol {i + 1}")
        bars.append({name: matrix[:, j] for j, name in enumerate(PANEL_INPUTS)})
    checkpoint()
    result = module.compute_panel(model, bars, params)
    unknown = [c for c in wanted if c not in result]
    if unknown:
        raise InputError(f"{model}: no column named {', '.join(unknown[:5])}")
    order = np.lexsort((result["_minute"], result["_symbol"]))
    matrix = np.empty((len(order), len(wanted) + 2), dtype=np.float64)
    matrix[:, 0] = np.asarray(result["_minute"], dtype=np.float64)[order]
    matrix[:, 1] = np.asarray(result["_symbol"], dtype=np.float64)[order]
    for j, name in enumerate(wanted, start=2):
        matrix[:, j] = np.asarray(result[name], dtype=np.float64)[order]
    matrix[~np.isfinite(matrix)] = np.nan
    checkpoint()
    return matrix.tobytes()
