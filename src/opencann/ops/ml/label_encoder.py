"""ai.onnx.ml LabelEncoder: maps each element through a key -> value table (opsets 1, 2, 4)."""

import math

import numpy as np

from ... import dtypes
from .. import infer
from ..infer import InferError
from ..registry import defop

ML = "ai.onnx.ml"


def _lookup(x: np.ndarray, keys: list, values: list, default, out_dtype) -> np.ndarray:
    """Map every element of x through keys -> values (the last of repeated keys wins); NaN keys
    match NaN inputs."""
    table = {}
    nan_value = None
    for k, v in zip(keys, values):
        if isinstance(k, float) and math.isnan(k):
            nan_value = v
        else:
            table[k] = v
    flat = x.reshape(-1).tolist()
    out = []
    for e in flat:
        if isinstance(e, float) and math.isnan(e):
            out.append(default if nan_value is None else nan_value)
        else:
            out.append(table.get(e, default))
    arr = np.empty(len(out), dtype=object) if out_dtype == object else None
    if arr is not None:
        arr[:] = out
        return arr.reshape(x.shape)
    return np.array(out, dtype=out_dtype).reshape(x.shape)


# --- opset 1: strings <-> indices into classes_strings ------------------------------------------


def _le1_infer(x, **attrs):
    if x.dtype == dtypes.string:
        return infer.tensor(dtypes.int64, x.shape)
    if x.dtype == dtypes.int64:
        return infer.tensor(dtypes.string, x.shape)
    raise InferError(f"LabelEncoder (ai.onnx.ml opset 1) takes string or int64, got {x.dtype}")


@defop("LabelEncoder", inputs=["X"], outputs=["Y"], domain=ML, since=1,
       attrs={"classes_strings": None, "default_int64": -1, "default_string": "_Unused"},
       infer=_le1_infer)
def label_encoder_1(x, *, classes_strings, default_int64, default_string):
    """Strings map to their index in classes_strings (default_int64 when absent); int64 indices
    map to classes_strings[i] (default_string when out of range)."""
    x = np.asarray(x)
    classes = list(classes_strings or [])
    if x.dtype == object:
        return _lookup(x, classes, list(range(len(classes))), int(default_int64), np.int64)
    return _lookup(x.astype(np.int64), list(range(len(classes))), classes, default_string, object)


# --- opsets 2 and 4: keys_* -> values_* -----------------------------------------------------------

_KEYS = ("keys_strings", "keys_int64s", "keys_floats", "keys_tensor")
_VALUES = ("values_strings", "values_int64s", "values_floats", "values_tensor")


def _pick(attrs: dict, names: tuple, what: str):
    given = [n for n in names if attrs.get(n) is not None]
    if len(given) != 1:
        raise ValueError(f"LabelEncoder needs exactly one of {', '.join(n for n in names if n in attrs)} "
                         f"({what}), got {given or 'none'}")
    return given[0], attrs[given[0]]


def _values_dtype(name: str, values) -> np.dtype:
    if name == "values_strings":
        return np.dtype(object)
    if name == "values_int64s":
        return np.dtype(np.int64)
    if name == "values_floats":
        return np.dtype(np.float32)
    return np.asarray(values).dtype


def _le_infer(x, **attrs):
    try:
        name, values = _pick(attrs, _VALUES, "values")
        kname, keys = _pick(attrs, _KEYS, "keys")
    except ValueError as e:
        raise InferError(str(e)) from None
    if len(np.asarray(keys).reshape(-1)) != len(np.asarray(values).reshape(-1)):
        raise InferError(f"LabelEncoder {kname} and {name} must have the same length")
    return infer.tensor(dtypes.from_numpy(_values_dtype(name, values)), x.shape)


def _default(attrs: dict, out_dtype: np.dtype):
    t = attrs.get("default_tensor")
    if t is not None:
        return np.asarray(t).reshape(-1)[0].item() if out_dtype != object else np.asarray(t).reshape(-1)[0]
    if out_dtype == object:
        return attrs["default_string"]
    if out_dtype.kind in "iu":
        return int(attrs["default_int64"])
    return float(attrs["default_float"])


def _label_encoder(x, attrs: dict):
    x = np.asarray(x)
    vname, values = _pick(attrs, _VALUES, "values")
    _, keys = _pick(attrs, _KEYS, "keys")
    out_dtype = _values_dtype(vname, values)
    keys = np.asarray(keys).reshape(-1).tolist()
    values = np.asarray(values).reshape(-1).tolist()
    if len(keys) != len(values):
        raise ValueError(f"LabelEncoder has {len(keys)} keys but {len(values)} values")
    if x.dtype.kind == "f":
        keys = [float(np.float32(k)) if x.dtype == np.float32 else float(k) for k in keys]
        x = x.astype(np.float64)  # exact for float32 inputs, so keys compare bit for bit
    return _lookup(x, keys, values, _default(attrs, out_dtype), out_dtype)


_ATTRS_2 = {"default_float": -0.0, "default_int64": -1, "default_string": "_Unused",
            "keys_floats": None, "keys_int64s": None, "keys_strings": None,
            "values_floats": None, "values_int64s": None, "values_strings": None}


@defop("LabelEncoder", inputs=["X"], outputs=["Y"], domain=ML, since=2, attrs=_ATTRS_2, infer=_le_infer)
def label_encoder_2(x, **attrs):
    """Map each element of X from keys_* to the parallel values_* (default_* when absent)."""
    return _label_encoder(x, attrs)


@defop("LabelEncoder", inputs=["X"], outputs=["Y"], domain=ML, since=4,
       attrs={**_ATTRS_2, "default_tensor": None, "keys_tensor": None, "values_tensor": None},
       infer=_le_infer)
def label_encoder_4(x, **attrs):
    """Map each element of X from keys_* (or keys_tensor) to values_* (or values_tensor);
    default_tensor, when given, is the value for absent keys."""
    return _label_encoder(x, attrs)
