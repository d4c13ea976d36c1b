"""Type joins shared by the control-flow and sequence ops: where two values may reach one place
(the branches of an If, the iterations of a Loop, the elements of a sequence), its type is the
most specific type both fit."""

from __future__ import annotations

from ...ir.types import OptionalType, SequenceType, TensorType
from ..infer import InferError


def join(a, b):
    """The most specific type that both `a` and `b` fit (None, unknown, when either is None)."""
    if a is None or b is None:
        return None
    if isinstance(a, SequenceType) and isinstance(b, SequenceType):
        return SequenceType(join(a.elem, b.elem))
    if isinstance(a, OptionalType) and isinstance(b, OptionalType):
        return OptionalType(join(a.elem, b.elem))
    if isinstance(a, OptionalType) != isinstance(b, OptionalType):
        # an optional on one side (e.g. a loop-carried optional that the body fills): either fits
        opt, other = (a, b) if isinstance(a, OptionalType) else (b, a)
        return OptionalType(join(opt.elem, other))
    if isinstance(a, TensorType) and isinstance(b, TensorType):
        if a.dtype != b.dtype:
            raise InferError(f"types {a!r} and {b!r} have different element types")
        if a.shape is None or b.shape is None or len(a.shape) != len(b.shape):
            return TensorType(a.dtype, None)
        return TensorType(a.dtype, tuple(x if x == y else None for x, y in zip(a.shape, b.shape)))
    raise InferError(f"types {a!r} and {b!r} are of different kinds")


def join_all(types):
    """`join` over a non-empty iterable of types."""
    types = list(types)
    out = types[0]
    for t in types[1:]:
        out = join(out, t)
    return out


def output_types(graph) -> list:
    """The types of a subgraph's outputs (None where not known)."""
    return [v.type for v in graph.outputs]
