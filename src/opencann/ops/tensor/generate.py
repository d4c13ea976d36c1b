"""Ops that make new tensors from shapes or attributes: Constant, ConstantOfShape, Range, EyeLike, Trilu."""

from __future__ import annotations

import math

import numpy as np

from ... import dtypes
from ..infer import InferError, tensor
from ..registry import REQUIRED
from ._common import const_ints, defop, ints_of, length_of

# --- Constant --------------------------------------------------------------------------------------
_VALUE_ATTRS = {"value": None, "sparse_value": None, "value_float": np.float32, "value_floats": np.float32,
                "value_int": np.int64, "value_ints": np.int64, "value_string": object, "value_strings": object}


def _constant_value(attrs: dict) -> np.ndarray:
    given = [(k, v) for k, v in attrs.items() if v is not None]
    if len(given) != 1:
        raise ValueError(f"Constant needs exactly one value attribute, got {[k for k, _ in given] or 'none'}")
    name, v = given[0]
    dt = _VALUE_ATTRS[name]
    if dt is None:
        return np.asarray(v)
    return np.array(v, dtype=dt)


def _infer_constant(**attrs):
    try:
        v = _constant_value(attrs)
    except ValueError as e:
        raise InferError(str(e)) from None
    return tensor(dtypes.from_numpy(v.dtype), v.shape)


@defop("Constant", inputs=[], outputs=["output"], attrs={"value": REQUIRED}, infer=_infer_constant)
def constant_v1(*, value):
    """The tensor in attribute `value`."""
    return np.asarray(value).copy()


@defop("Constant", inputs=[], outputs=["output"], attrs={"value": None, "sparse_value": None},
       infer=_infer_constant, since=11)
def constant_v11(**attrs):
    """The tensor in attribute `value` or `sparse_value` (made dense)."""
    return _constant_value(attrs).copy()


@defop("Constant", inputs=[], outputs=["output"], attrs=dict.fromkeys(_VALUE_ATTRS), infer=_infer_constant,
       since=12)
def constant(**attrs):
    """The tensor given by exactly one of the attributes value, sparse_value, value_float(s),
    value_int(s) or value_string(s)."""
    return _constant_value(attrs).copy()


# --- ConstantOfShape -------------------------------------------------------------------------------
def _fill_value(value) -> np.ndarray:
    if value is None:
        return np.zeros((), np.float32)
    v = np.asarray(value)
    if v.size != 1:
        raise ValueError(f"value must hold one element, got {v.size}")
    return v.reshape(())


def _infer_constant_of_shape(x, value=None):
    try:
        dt = dtypes.from_numpy(_fill_value(value).dtype)
    except ValueError as e:
        raise InferError(str(e)) from None
    shape = const_ints(x)
    if shape is not None:
        if any(d < 0 for d in shape):
            raise InferError(f"shape {shape} has a negative dim")
        return tensor(dt, tuple(shape))
    n = length_of(x)
    return tensor(dt, None if n is None else (None,) * n)


@defop("ConstantOfShape", inputs=["input"], outputs=["output"], attrs={"value": None},
       infer=_infer_constant_of_shape, since=9)
def constant_of_shape(x, *, value):
    """A tensor of shape `input` filled with the one-element tensor `value` (float32 0 by default)."""
    v = _fill_value(value)
    shape = ints_of(x)
    if any(d < 0 for d in shape):
        raise ValueError(f"shape {shape} has a negative dim")
    return np.full(shape, v, dtype=v.dtype)


# --- Range -----------------------------------------------------------------------------------------
def _range_count(start, limit, delta) -> int:
    if delta == 0:
        raise ValueError("delta cannot be 0")
    if isinstance(start, (int, np.integer)) and isinstance(delta, (int, np.integer)) \
            and isinstance(limit, (int, np.integer)):
        return max(-(-(int(limit) - int(start)) // int(delta)), 0)
    return max(int(math.ceil((float(limit) - float(start)) / float(delta))), 0)


def _scalar(x):
    a = np.asarray(x)
    if a.size != 1:
        raise ValueError(f"start, limit and delta must be scalars, got shape {list(a.shape)}")
    return a.reshape(())


def _range(start, limit, delta, stash_type=1):
    s, l, d = _scalar(start), _scalar(limit), _scalar(delta)
    dt = s.dtype
    if dt.kind in "iu":
        n = _range_count(int(s), int(l), int(d))
        return (int(s) + np.arange(n, dtype=np.int64) * int(d)).astype(dt)
    n = _range_count(float(s), float(l), float(d))
    narrow = dt.itemsize < 4
    if narrow and stash_type == 0:
        out = s + np.arange(n).astype(dt) * d
    else:
        work = np.dtype(np.float32) if narrow else dt
        out = s.astype(work) + np.arange(n, dtype=work) * d.astype(work)
    return np.asarray(out).astype(dt)


def _infer_range(start, limit, delta, **attrs):
    dts = {v.dtype for v in (start, limit, delta) if v.dtype is not None}
    if len(dts) > 1:
        raise InferError(f"start, limit and delta must have one dtype, got {sorted(map(str, dts))}")
    c = [v.const for v in (start, limit, delta)]
    if all(x is not None for x in c):
        try:
            n = len(_range(*c))
        except ValueError as e:
            raise InferError(str(e)) from None
        return tensor(start.dtype, (n,))
    return tensor(start.dtype, (None,))


@defop("Range", inputs=["start", "limit", "delta"], outputs=["output"], infer=_infer_range, since=11)
def range_v11(start, limit, delta):
    """`start, start + delta, ...` up to `limit` (exclusive): max(ceil((limit - start) / delta), 0) values."""
    return _range(start, limit, delta)


@defop("Range", inputs=["start", "limit", "delta"], outputs=["output"], attrs={"stash_type": 1},
       infer=_infer_range, since=27)
def range_v27(start, limit, delta, *, stash_type):
    """Range; for float16/bfloat16 `stash_type=1` computes in float32 before casting back."""
    return _range(start, limit, delta, stash_type)


# --- EyeLike ---------------------------------------------------------------------------------------
def _infer_eye_like(x, *, dtype, k):
    s = x.shape
    if s is not None and len(s) != 2:
        raise InferError(f"input must be 2-D, got rank {len(s)}")
    dt = x.dtype if dtype is None else dtypes.from_onnx(int(dtype))
    return tensor(dt, (None, None) if s is None else s)


@defop("EyeLike", inputs=["input"], outputs=["output"], attrs={"dtype": None, "k": 0},
       infer=_infer_eye_like, since=9)
def eye_like(x, *, dtype, k):
    """A 2-D tensor shaped like `input` with ones on diagonal `k` (dtype from the attribute or input)."""
    if x.ndim != 2:
        raise ValueError(f"input must be 2-D, got rank {x.ndim}")
    dt = x.dtype if dtype is None else dtypes.from_onnx(int(dtype)).np
    return np.eye(x.shape[0], x.shape[1], k=int(k)).astype(dt)


# --- Trilu -----------------------------------------------------------------------------------------
def _infer_trilu(x, k=None, *, upper):
    if x.shape is not None and len(x.shape) < 2:
        raise InferError(f"input must have rank >= 2, got rank {len(x.shape)}")
    return tensor(x.dtype, x.shape)


@defop("Trilu", inputs=["input", "k?"], outputs=["output"], attrs={"upper": 1}, infer=_infer_trilu, since=14)
def trilu(x, k=None, *, upper):
    """Keep the upper (upper=1) or lower triangle of the last two dims, from diagonal `k`; zero the rest."""
    if x.ndim < 2:
        raise ValueError(f"input must have rank >= 2, got rank {x.ndim}")
    kk = 0 if k is None else int(np.asarray(k).reshape(-1)[0])
    return np.triu(x, kk) if upper else np.tril(x, kk)
