"""Building blocks for type and shape inference, with symbolic dims.

An infer function receives the node's input `Value`s (None for a missing optional input) and its
attributes, and returns the output type, or a tuple of types for several outputs. Dims are ints,
symbol names, or None (unknown). Raise `InferError` for inputs the op cannot accept; the caller adds
the model, node and op to the message.
"""

from __future__ import annotations

from typing import Iterable

import numpy as np

from .. import dtypes
from ..ir.types import Dim, OptionalType, SequenceType, TensorType

__all__ = ["InferError", "broadcast_shapes", "broadcast", "compare", "same", "same_as", "tensor",
           "unknown", "const", "normalize_axis", "reduce_shape", "rank_of", "dim_mul", "known_int"]


class InferError(ValueError):
    """The inputs do not fit the op (bad rank, mismatched dims, wrong dtype)."""


def known_int(d: Dim) -> bool:
    return isinstance(d, (int, np.integer))


def _broadcast_dim(a: Dim, b: Dim) -> Dim:
    if a == b:
        return a
    if known_int(a) and a == 1:
        return b
    if known_int(b) and b == 1:
        return a
    if known_int(a) and known_int(b):
        raise InferError(f"dims {a} and {b} do not broadcast")
    if known_int(a):
        return a
    if known_int(b):
        return b
    return None  # two different symbols (or unknowns): the result is not known statically


def broadcast_shapes(*shapes) -> tuple | None:
    """NumPy broadcasting over shapes that may hold symbols; None when any rank is unknown."""
    if any(s is None for s in shapes):
        return None
    rank = max((len(s) for s in shapes), default=0)
    out = []
    for i in range(rank):
        d: Dim = 1
        for s in shapes:
            j = i - (rank - len(s))
            if j >= 0:
                try:
                    d = _broadcast_dim(d, s[j])
                except InferError:
                    raise InferError(f"shapes {' and '.join(_fmt(x) for x in shapes)} do not broadcast") from None
        out.append(d)
    return tuple(out)


def _fmt(shape) -> str:
    return "[" + ",".join("?" if d is None else str(d) for d in shape) + "]"


def tensor(dtype, shape=None) -> TensorType | None:
    """A tensor type; `dtype` may be a DType, NumPy dtype or name. A dtype of None (an input not
    typed yet, e.g. inside a body) gives None, the unknown type, never NumPy's float64 default."""
    if dtype is None:
        return None
    if not isinstance(dtype, dtypes.DType):
        dtype = dtypes.by_name(dtype) if isinstance(dtype, str) else dtypes.from_numpy(dtype)
    return TensorType(dtype, None if shape is None else tuple(shape))


def rank_of(v) -> int | None:
    s = v.shape if v is not None else None
    return None if s is None else len(s)


def const(v) -> np.ndarray | None:
    """The data of input `v` when it is known at compile time, else None."""
    return None if v is None else v.const


def normalize_axis(axis: int, rank: int | None, what: str = "axis") -> int:
    if rank is None:
        return axis
    if not -rank <= axis < max(rank, 1):
        raise InferError(f"{what} {axis} is out of range for rank {rank}")
    return axis % rank if rank else 0


def dim_mul(dims: Iterable[Dim]) -> Dim:
    out = 1
    for d in dims:
        if not known_int(d):
            return None
        out *= int(d)
    return out


def reduce_shape(shape, axes, keepdims: bool) -> tuple | None:
    """Shape after reducing `axes` (None: all axes)."""
    if shape is None:
        return None
    rank = len(shape)
    axes = set(range(rank)) if axes is None else {normalize_axis(int(a), rank) for a in axes}
    if keepdims:
        return tuple(1 if i in axes else d for i, d in enumerate(shape))
    return tuple(d for i, d in enumerate(shape) if i not in axes)


# --- ready-made infer functions ------------------------------------------------------------------
def same(x, *rest, **attrs):
    """Output 0 has the type of input 0 (unary elementwise ops)."""
    return x.type


def same_as(index: int, dtype=None):
    """Output has input `index`'s shape, and `dtype` (or input `index`'s dtype)."""

    def infer(*inputs, **attrs):
        t = inputs[index].type
        return t if dtype is None else tensor(dtype, t.shape)

    return infer


def broadcast(*inputs, **attrs):
    """Multidirectional (NumPy) broadcasting; dtype of the first input."""
    present = [v for v in inputs if v is not None]
    return TensorType(present[0].dtype, broadcast_shapes(*(v.shape for v in present)))


def compare(*inputs, **attrs):
    """Broadcasting, bool result (comparisons)."""
    present = [v for v in inputs if v is not None]
    return TensorType(dtypes.bool_, broadcast_shapes(*(v.shape for v in present)))


def unknown(dtype=None, index: int = 0, rank: int | None = None):
    """Output of `dtype` (or input `index`'s dtype) whose shape depends on data: only the rank,
    when given, is known."""

    def infer(*inputs, **attrs):
        dt = dtype if dtype is not None else inputs[index].dtype
        return tensor(dt, None if rank is None else (None,) * rank)

    return infer


def sequence_of(t) -> SequenceType:
    return SequenceType(t)


def optional_of(t) -> OptionalType:
    return OptionalType(t)
