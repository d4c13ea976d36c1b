"""Logical, comparison and bitwise ops with NumPy broadcasting: And, Or, Xor, Equal, Greater, Less,
GreaterOrEqual, LessOrEqual, BitwiseAnd, BitwiseOr, BitwiseXor, BitShift."""

from __future__ import annotations

import numpy as np

from ... import dtypes
from .. import infer
from ..registry import REQUIRED
from ._common import (BOOL, INT, LEGACY_BROADCAST, broadcast_type, check_kind, check_same_dtype, legacy_align,
                      legacy_infer, versions)

_ORDERED = ("float", "int", "uint")
_EQUATABLE = ("float", "int", "uint", "bool", "string")


def _infer(kinds, result_bool: bool, legacy: bool = False):
    base = legacy_infer(dtypes.bool_ if result_bool else None)

    def infer_fn(a, b, **attrs):
        check_kind(a, kinds, "A")
        check_same_dtype(a, b)
        if legacy:
            return base(a, b, **attrs)
        return infer.compare(a, b) if result_bool else broadcast_type(a, b)

    return infer_fn


def _register(name: str, fn, kinds, result_bool: bool, modern_since: int, legacy_since: int | None = None):
    def modern(a, b):
        with np.errstate(all="ignore"):
            return np.asarray(fn(a, b))

    def legacy(a, b, *, axis=None, broadcast=0):
        return modern(a, legacy_align(a, b, axis, broadcast))

    for f, suffix in ((modern, ""), (legacy, "_legacy")):
        f.__doc__ = f"{name}: elementwise {fn.__name__} with broadcasting."
        f.__name__ = f.__qualname__ = name.lower() + suffix
        f.__module__ = __name__
    spec = dict(inputs=["A", "B"], outputs=["C"])
    versions(name, {modern_since: {}}, infer=_infer(kinds, result_bool), **spec)(modern)
    if legacy_since is not None:
        versions(name, {legacy_since: dict(LEGACY_BROADCAST)}, infer=_infer(kinds, result_bool, True),
                 **spec)(legacy)


_register("And", np.logical_and, BOOL, True, 7, 1)
_register("Or", np.logical_or, BOOL, True, 7, 1)
_register("Xor", np.logical_xor, BOOL, True, 7, 1)
_register("Equal", np.equal, _EQUATABLE, True, 7, 1)
_register("Greater", np.greater, _ORDERED, True, 7, 1)
_register("Less", np.less, _ORDERED, True, 7, 1)
_register("GreaterOrEqual", np.greater_equal, _ORDERED, True, 12)
_register("LessOrEqual", np.less_equal, _ORDERED, True, 12)
_register("BitwiseAnd", np.bitwise_and, INT, False, 18)
_register("BitwiseOr", np.bitwise_or, INT, False, 18)
_register("BitwiseXor", np.bitwise_xor, INT, False, 18)


def _bitshift_infer(x, y, **attrs):
    check_kind(x, INT, "X")
    check_same_dtype(x, y)
    if attrs.get("direction") not in ("LEFT", "RIGHT"):
        raise infer.InferError(f"direction must be 'LEFT' or 'RIGHT', got {attrs.get('direction')!r}")
    return broadcast_type(x, y)


@versions("BitShift", {11: {"direction": REQUIRED}}, inputs=["X", "Y"], outputs=["Z"], infer=_bitshift_infer)
def bitshift(x, y, *, direction):
    """BitShift: x << y or x >> y. Right shifts of signed values are arithmetic; bits shifted past
    the top are dropped; a shift that is negative or at least the bit width gives 0 (-1 for a right
    shift of a negative value)."""
    if direction not in ("LEFT", "RIGHT"):
        raise ValueError(f"direction must be 'LEFT' or 'RIGHT', got {direction!r}")
    bits = x.dtype.itemsize * 8
    y64 = y.astype(np.int64) if y.dtype != np.uint64 else np.minimum(y, bits).astype(np.int64)
    out_of_range = (y64 < 0) | (y64 >= bits)
    shift = np.where(out_of_range, 0, y64).astype(x.dtype)
    if direction == "LEFT":
        unsigned = np.dtype(f"u{x.dtype.itemsize}")
        # shift the bit pattern as unsigned: wraps within the width, as the spec asks
        z = np.left_shift(x.view(unsigned), shift.astype(unsigned)).view(x.dtype)
        fill = np.zeros((), x.dtype)
    else:
        z = np.right_shift(x, shift)
        fill = np.where(x < 0, x.dtype.type(-1), x.dtype.type(0)) if x.dtype.kind == "i" else np.zeros((), x.dtype)
    return np.asarray(np.where(out_of_range, fill, z), dtype=x.dtype)
