"""Arithmetic with NumPy broadcasting: Add, Sub, Mul, Div, Pow, Mod; variadic Max, Min, Mean, Sum;
Clip.

Integer semantics follow ONNX, not NumPy: Div truncates toward zero, Mod with fmod=0 takes the
divisor's sign (Python) and with fmod=1 the dividend's (C), Pow returns the base's dtype.
Before opset 7 the binary ops broadcast only when `broadcast=1`, aligning B to A at `axis`.
"""

from __future__ import annotations

import functools

import numpy as np

from .. import infer
from ..infer import InferError
from ._common import (FLOAT, LEGACY_BROADCAST, NUMERIC, broadcast_type, check_kind, check_same_dtype,
                      legacy_align, legacy_infer, versions, wide)


def _native(dt: np.dtype) -> bool:
    return dt.kind in "iub" or dt in (np.float32, np.float64)


def _elementwise(fn, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """fn(a, b) in the inputs' dtype; narrow floats computed in float32 and rounded once."""
    with np.errstate(all="ignore"):
        if _native(a.dtype):
            return np.asarray(fn(a, b))
        return np.asarray(fn(wide(a), wide(b))).astype(a.dtype)


def _binary_infer(kinds=NUMERIC):
    def infer_fn(a, b, **attrs):
        check_kind(a, kinds, "A")
        check_same_dtype(a, b)
        return broadcast_type(a, b)

    return infer_fn


def _legacy_binary_infer(kinds=NUMERIC):
    base = legacy_infer()

    def infer_fn(a, b, **attrs):
        check_kind(a, kinds, "A")
        check_same_dtype(a, b)
        return base(a, b, **attrs)

    return infer_fn


def _register_binary(name: str, core) -> None:
    """Register `core(a, b)` from opset 7, and for opsets 1-6 with the axis/broadcast rule."""

    def modern(a, b):
        return core(a, b)

    def legacy(a, b, *, axis=None, broadcast=0):
        return core(a, legacy_align(a, b, axis, broadcast))

    for f, suffix in ((modern, ""), (legacy, "_legacy")):
        f.__doc__ = core.__doc__
        f.__module__ = __name__
        f.__name__ = f.__qualname__ = core.__name__ + suffix
    spec = dict(inputs=["A", "B"], outputs=["C"])
    versions(name, {1: {**LEGACY_BROADCAST, "consumed_inputs": None}, 6: dict(LEGACY_BROADCAST)},
             infer=_legacy_binary_infer(), **spec)(legacy)
    versions(name, {7: {}}, infer=_binary_infer(), **spec)(modern)


def add(a, b):
    """Add: a + b (integers wrap)."""
    return _elementwise(np.add, a, b)


def sub(a, b):
    """Sub: a - b (integers wrap)."""
    return _elementwise(np.subtract, a, b)


def mul(a, b):
    """Mul: a * b (integers wrap)."""
    return _elementwise(np.multiply, a, b)


def div(a, b):
    """Div: a / b; integer division truncates toward zero (division by zero gives 0)."""
    if a.dtype.kind in "iu":
        return _int_div_trunc(a, b)
    return _elementwise(np.divide, a, b)


def _int_div_trunc(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    with np.errstate(all="ignore"):
        q = np.floor_divide(a, b)
        if a.dtype.kind == "i":
            r = np.remainder(a, b)
            # floor and truncation differ when the remainder is nonzero and the signs differ
            fix = (r != 0) & ((a < 0) != (b < 0))
            q = q + fix.astype(q.dtype)
    return np.asarray(q, dtype=a.dtype)


for _name, _core in [("Add", add), ("Sub", sub), ("Mul", mul), ("Div", div)]:
    _register_binary(_name, _core)


def pow_(x, y):
    """Pow: x ** y in x's dtype (y may have another numeric dtype). An integer result that has no
    integer value (NaN, infinity) converts as C does on x86 (NumPy's cast: the most negative value)."""
    with np.errstate(all="ignore"):
        if x.dtype.kind in "iu" and y.dtype.kind in "iu":
            yb = y.astype(np.int64)
            exact = np.power(x.astype(np.int64), np.maximum(yb, 0))
            if (yb >= 0).all():
                return exact.astype(x.dtype)
            # a negative integer exponent: 1 / x**n, truncated (0 unless |x| == 1)
            via_float = np.trunc(np.power(x.astype(np.float64), yb.astype(np.float64))).astype(np.int64)
            return np.where(yb >= 0, exact, via_float).astype(x.dtype)
        if x.dtype.kind in "iu":  # integer base, float exponent
            r = np.power(x.astype(np.float64), wide(y).astype(np.float64))
            return np.trunc(r).astype(x.dtype)
        xw = wide(x)
        yw = wide(y) if y.dtype.kind not in "iu" else y.astype(xw.dtype if xw.dtype == np.float64 else np.float64)
        if yw.dtype != xw.dtype:
            xw, yw = xw.astype(np.float64), yw.astype(np.float64)
        return np.asarray(np.power(xw, yw)).astype(x.dtype)


def _pow_infer(x, y, **attrs):
    check_kind(x, NUMERIC, "X")
    check_kind(y, NUMERIC, "Y")
    if x.dtype is None:
        return None
    return infer.tensor(x.dtype, infer.broadcast_shapes(x.shape, y.shape))


def _pow_legacy_infer(x, y, **attrs):
    check_kind(x, NUMERIC, "X")
    t = legacy_infer()(x, y, **attrs)
    return None if x.dtype is None or t is None else infer.tensor(x.dtype, t.shape)


@versions("Pow", {7: {}}, inputs=["X", "Y"], outputs=["Z"], infer=_pow_infer)
def pow_modern(x, y):
    """Pow: x ** y, with the result in the base's dtype."""
    return pow_(x, y)


@versions("Pow", {1: dict(LEGACY_BROADCAST)}, inputs=["X", "Y"], outputs=["Z"], infer=_pow_legacy_infer)
def pow_legacy(x, y, *, axis=None, broadcast=0):
    """Pow (opset 1): x ** y with the axis/broadcast rule."""
    return pow_(x, legacy_align(x, y, axis, broadcast))


@versions("Mod", {10: {"fmod": 0}}, inputs=["A", "B"], outputs=["C"], infer=_binary_infer())
def mod(a, b, *, fmod):
    """Mod: fmod=0 takes the divisor's sign (a - floor(a/b)*b), fmod=1 the dividend's (C fmod).
    Integer modulo by zero gives 0."""
    if fmod not in (0, 1):
        raise ValueError(f"fmod must be 0 or 1, got {fmod}")
    return _elementwise(np.fmod if fmod else np.mod, a, b)


# --- variadic ----------------------------------------------------------------------------------
def _variadic_infer(kinds=NUMERIC):
    def infer_fn(*inputs, **attrs):
        present = [v for v in inputs if v is not None]
        if not present:
            raise InferError("needs at least one input")
        check_kind(present[0], kinds, "data_0")
        check_same_dtype(*present)
        return broadcast_type(*present)

    return infer_fn


def _fold(fn, arrays) -> np.ndarray:
    if not arrays:
        raise ValueError("needs at least one input")
    first = arrays[0]
    if len(arrays) == 1:
        return first.copy()
    if _native(first.dtype):
        with np.errstate(all="ignore"):
            return np.asarray(functools.reduce(fn, arrays))
    with np.errstate(all="ignore"):
        return np.asarray(functools.reduce(fn, [wide(a) for a in arrays])).astype(first.dtype)


_VARIADIC_TABLE = {1: {"consumed_inputs": None}, 6: {}}


@versions("Max", _VARIADIC_TABLE, inputs=["data_0*"], outputs=["max"], infer=_variadic_infer())
def max_(*data):
    """Max: elementwise maximum of all inputs, broadcast (NaN propagates)."""
    return _fold(np.maximum, data)


@versions("Min", _VARIADIC_TABLE, inputs=["data_0*"], outputs=["min"], infer=_variadic_infer())
def min_(*data):
    """Min: elementwise minimum of all inputs, broadcast (NaN propagates)."""
    return _fold(np.minimum, data)


@versions("Sum", _VARIADIC_TABLE, inputs=["data_0*"], outputs=["sum"], infer=_variadic_infer())
def sum_(*data):
    """Sum: elementwise sum of all inputs, broadcast."""
    return _fold(np.add, data)


@versions("Mean", _VARIADIC_TABLE, inputs=["data_0*"], outputs=["mean"], infer=_variadic_infer(FLOAT))
def mean(*data):
    """Mean: elementwise mean of all inputs, broadcast."""
    if not data:
        raise ValueError("needs at least one input")
    with np.errstate(all="ignore"):
        total = functools.reduce(np.add, [wide(a) for a in data])
        return np.asarray(total / total.dtype.type(len(data))).astype(data[0].dtype)


# --- Clip --------------------------------------------------------------------------------------
def _clip(x: np.ndarray, lo, hi) -> np.ndarray:
    out = x
    with np.errstate(all="ignore"):
        for bound, fn in ((lo, np.maximum), (hi, np.minimum)):
            if bound is None:
                continue
            b = np.asarray(bound)
            if b.size == 0:
                continue  # an empty tensor stands for "no bound"
            if b.size != 1:
                raise ValueError(f"min and max must be scalars, got shape {list(b.shape)}")
            b = b.reshape(()).astype(x.dtype)
            out = fn(out, b) if _native(x.dtype) else fn(wide(out), wide(b)).astype(x.dtype)
    return out.copy() if out is x else np.asarray(out, dtype=x.dtype)


def _clip_infer(x, *rest, **attrs):
    check_kind(x, NUMERIC, "input")
    for v in rest:
        if v is not None and v.shape is not None and len(v.shape) > 1:
            raise InferError(f"min and max must be scalars, got {v.type!r}")
    check_same_dtype(x, *rest)
    return x.type


@versions("Clip", {11: {}}, inputs=["input", "min?", "max?"], outputs=["output"], infer=_clip_infer)
def clip(x, lo=None, hi=None):
    """Clip: limit x to [min, max]; a missing bound does not limit; when min > max every element
    becomes max."""
    return _clip(x, lo, hi)


_FLT_MAX = float(np.finfo(np.float32).max)


@versions("Clip", {1: {"consumed_inputs": None, "max": None, "min": None},
                   6: {"max": _FLT_MAX, "min": -_FLT_MAX}},
          inputs=["input"], outputs=["output"], infer=_clip_infer)
def clip_attrs(x, *, min, max):  # noqa: A002 - ONNX's attribute names
    """Clip (opsets 1-10): bounds are attributes."""
    return _clip(x, min, max)
