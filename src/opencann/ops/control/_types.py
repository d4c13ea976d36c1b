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


def body_inputs(name: str, since: int, domain: str = ""):
    """Attach the decorated function to op `name`'s definition (opset `since`) as
    `infer_subgraph_inputs(*inputs, **attrs) -> {graph attribute: [input types]}`: the types a
    body's inputs take from the node's inputs, for bodies (e.g. ONNX function expansions) that do
    not declare them. The engine calls it before inferring the node's subgraphs."""
    from ..registry import lookup

    def attach(fn):
        d = lookup(name, domain, since)
        if d is None or d.since != since:
            raise LookupError(f"op {name} (opset {since}) is not registered")
        d.infer_subgraph_inputs = fn
        return fn

    return attach


def loosen(t):
    """`t` with its rank kept but every dim unknown (recursively): the type of a value whose shape
    may change between loop iterations."""
    if isinstance(t, TensorType):
        return TensorType(t.dtype, None if t.shape is None else (None,) * len(t.shape))
    if isinstance(t, SequenceType):
        return SequenceType(loosen(t.elem))
    if isinstance(t, OptionalType):
        return OptionalType(loosen(t.elem))
    return t


def drop_axis(t, axis: int, count: int = 1):
    """Tensor type `t` without `count` dims from `axis` on (a slice of it); None stays None."""
    if not isinstance(t, TensorType) or t.shape is None:
        return t if not isinstance(t, TensorType) else TensorType(t.dtype, None)
    rank = len(t.shape)
    a = axis + rank if axis < 0 else axis
    if not 0 <= a <= rank - count:
        raise InferError(f"axis {axis} is out of range for {t!r}")
    return TensorType(t.dtype, t.shape[:a] + t.shape[a + count:])
