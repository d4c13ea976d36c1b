"""Private helpers shared by the math family: dtype checks, narrow-float computation, versioned
registration and the pre-opset-7 broadcasting rule."""

from __future__ import annotations

import functools
from typing import Any, Callable

import numpy as np

from ... import dtypes
from .. import infer
from ..infer import InferError
from ..registry import defop

FLOAT = ("float",)
INT = ("int", "uint")
NUMERIC = ("float", "int", "uint")
BOOL = ("bool",)


def check_kind(v, kinds: tuple[str, ...], what: str = "input") -> None:
    """Raise InferError when value `v`'s dtype is not of one of `kinds` ("float", "int", ...)."""
    if v is None or v.dtype is None:
        return
    if v.dtype.kind not in kinds:
        raise InferError(f"{what} has dtype {v.dtype.name}, but the op takes only "
                         f"{' or '.join(kinds)} tensors")


def check_same_dtype(*values) -> None:
    """Raise InferError unless all present values share one dtype (type constraint T)."""
    present = [v for v in values if v is not None and v.dtype is not None]
    names = {v.dtype.name for v in present}
    if len(names) > 1:
        raise InferError(f"inputs must share one dtype, got {', '.join(v.dtype.name for v in present)}")


def dtype_of(*values):
    """The dtype of the first input whose type is known (the inputs share type T), else None:
    inside a loop body an input may have no type until the loop's own inference runs."""
    for v in values:
        if v is not None and v.dtype is not None:
            return v.dtype
    return None


def broadcast_type(*values):
    """Multidirectional broadcasting; None when no input's type is known."""
    present = [v for v in values if v is not None]
    dt = dtype_of(*present)
    return None if dt is None else infer.tensor(dt, infer.broadcast_shapes(*(v.shape for v in present)))


def is_float(dt: np.dtype) -> bool:
    """Whether NumPy dtype `dt` stores a floating-point type (ml_dtypes narrow floats included)."""
    try:
        return dtypes.from_numpy(dt).kind == "float"
    except ValueError:
        return False


def wide(x: np.ndarray) -> np.ndarray:
    """`x` in a dtype NumPy computes well: float16, bfloat16 and float8 widen to float32."""
    if x.dtype in (np.float32, np.float64) or not is_float(x.dtype):
        return x
    return x.astype(np.float32)


def float_unary(fn: Callable[[np.ndarray], np.ndarray]) -> Callable[[np.ndarray], np.ndarray]:
    """Apply `fn` in float32/float64 and return the input's dtype."""

    def apply(x: np.ndarray) -> np.ndarray:
        with np.errstate(all="ignore"):
            return np.asarray(fn(wide(x))).astype(x.dtype, copy=False)

    return apply


def versions(name: str, table: dict[int, dict[str, Any]], **spec) -> Callable:
    """Register the decorated reference for each `since -> attrs` entry of `table`. Attributes that a
    version has but the reference does not take (legacy `consumed_inputs`, ...) are dropped."""

    def register(fn: Callable) -> Callable:
        params = fn.__code__.co_varnames[:fn.__code__.co_argcount + fn.__code__.co_kwonlyargcount]
        for since, attrs in table.items():
            extra = [k for k in attrs if k not in params]
            ref = fn
            if extra:
                ref = _dropping(fn, extra)
            defop(name, attrs=attrs, since=since, **spec)(ref)
        return fn

    return register


def _dropping(fn: Callable, names: list[str]) -> Callable:
    @functools.wraps(fn)
    def ref(*args, **attrs):
        for k in names:
            attrs.pop(k, None)
        return fn(*args, **attrs)

    return ref


# --- broadcasting before opset 7: B aligned to A at `axis` (or at the tail) when broadcast=1 --------
LEGACY_BROADCAST = {"axis": None, "broadcast": 0}


def legacy_align(a: np.ndarray, b: np.ndarray, axis, broadcast) -> np.ndarray:
    """Reshape `b` so that NumPy broadcasting matches the opset-1..6 rule."""
    if not broadcast or axis is None:
        return b
    axis = int(axis) % max(a.ndim, 1) if a.ndim else 0
    tail = a.ndim - axis - b.ndim
    if tail < 0:
        raise ValueError(f"B of shape {list(b.shape)} does not fit A of shape {list(a.shape)} at axis {axis}")
    return b.reshape(b.shape + (1,) * tail)


def legacy_infer(result_dtype=None) -> Callable:
    """Inference for opset-1..6 binary ops (`axis`/`broadcast` attributes)."""

    def infer_fn(a, b, *, axis=None, broadcast=0, **_):
        shape_b = b.shape
        if broadcast and axis is not None and a.shape is not None and shape_b is not None:
            ax = int(axis) % max(len(a.shape), 1) if a.shape else 0
            tail = len(a.shape) - ax - len(shape_b)
            if tail < 0:
                raise InferError(f"B {b.type!r} does not fit A {a.type!r} at axis {axis}")
            shape_b = tuple(shape_b) + (1,) * tail
        shape = infer.broadcast_shapes(a.shape, shape_b)
        dt = result_dtype or dtype_of(a, b)
        return None if dt is None else infer.tensor(dt, shape)

    return infer_fn


def int_scalar(x, what: str) -> int:
    """A 0-d or 1-element integer tensor as a Python int."""
    arr = np.asarray(x)
    if arr.size != 1:
        raise ValueError(f"{what} must hold exactly one value, got shape {list(arr.shape)}")
    return int(arr.reshape(()))
