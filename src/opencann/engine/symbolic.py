"""Symbolic values of shape arithmetic, used by inference and by shape folding.

Exporters compute shapes at run time (`Shape(x) -> Gather -> Unsqueeze -> Concat -> Reshape`).
Inference tracks the contents of such small integer tensors element by element, each an int, a
symbol (`"seq"`) or None, in `Value.sym`; ops whose output shape comes from such a tensor (Slice,
Range, ConstantOfShape, Expand, Reshape) then get symbolic output shapes instead of unknown ones.
"""

from __future__ import annotations

import numpy as np

from ..ir import Node, TensorType

_INT_KINDS = "iu"  # bools are tracked as 0/1 too
MAX_TRACKED = 64


def elements(v) -> list | None:
    """What is known of the contents of 0-D/1-D integer (or bool) value `v`, or None."""
    if v is None:
        return None
    c = v.const
    if c is not None:
        if c.dtype.kind in _INT_KINDS + "b" and c.ndim <= 1 and c.size <= MAX_TRACKED:
            return [int(x) for x in np.atleast_1d(c)]
        return None
    return v.sym


def _ints(v) -> list[int] | None:
    e = elements(v)
    return e if e is not None and all(isinstance(x, int) for x in e) else None


def _arith(op: str, x, y):
    if isinstance(x, int) and isinstance(y, int):
        if op == "Div":
            return None if y == 0 else int(x / y) if (x < 0) != (y < 0) else x // y
        return {"Add": x + y, "Sub": x - y, "Mul": x * y}[op]
    if (op in ("Mul", "Div") and y == 1) or (op in ("Add", "Sub") and y == 0):
        return x
    if (op == "Mul" and x == 1) or (op == "Add" and x == 0):
        return y
    return None


def _equal(x, y):
    if isinstance(x, int) and isinstance(y, int):
        return int(x == y)
    if x is not None and x == y:
        return 1
    # a symbol is a size, never negative: it differs from any negative constant
    if (isinstance(x, str) and isinstance(y, int) and y < 0) or (isinstance(y, str) and isinstance(x, int) and x < 0):
        return 0
    return None


def track(n: Node) -> list | None:
    """The contents of node `n`'s first output, when it is small integer shape arithmetic."""
    ins = n.inputs
    out = n.outputs[0] if n.outputs else None
    if out is None or not isinstance(out.type, TensorType) or out.dtype is None or \
            out.dtype.kind not in ("int", "uint", "bool"):
        return None
    if n.op == "Shape":
        shape = ins[0].shape
        if shape is None:
            return None
        start, end = n.attrs.get("start", 0), n.attrs.get("end")
        return list(shape[start:end] if end is not None else shape[start:])
    if n.op == "Size":
        shape = ins[0].shape
        return [int(np.prod(shape, dtype=np.int64))] if shape is not None and all(isinstance(d, int) for d in shape) else None
    if n.op in ("Identity", "Cast", "Unsqueeze", "Squeeze"):
        return elements(ins[0])
    if n.op == "Gather" and n.attrs.get("axis", 0) == 0:
        data, idx = elements(ins[0]), _ints(ins[1])
        if data is None or idx is None:
            return None
        try:
            return [data[i] for i in idx]
        except IndexError:
            return None
    if n.op == "Concat" and n.attrs.get("axis") in (0, -1):
        parts = [elements(v) for v in ins]
        return None if any(p is None for p in parts) else [e for p in parts for e in p]
    if n.op == "Slice" and len(ins) >= 3:
        data, starts, ends = elements(ins[0]), _ints(ins[1]), _ints(ins[2])
        steps = _ints(ins[4]) if len(ins) > 4 and ins[4] is not None else [1]
        if data is None or starts is None or ends is None or steps is None or len(starts) != 1:
            return None
        return data[slice(starts[0], max(min(ends[0], 1 << 62), -(1 << 62)), steps[0])]
    if n.op == "Reshape" and len(ins) == 2 and _ints(ins[1]) == [-1]:
        return elements(ins[0])
    if n.op == "ConstantOfShape" and ins and ins[0] is not None:
        count, value = _ints(ins[0]), n.attrs.get("value")
        if count is None or len(count) != 1 or count[0] > MAX_TRACKED:
            return None
        v = 0 if value is None else value.reshape(-1)[0].item()
        return [int(v)] * count[0] if isinstance(v, (int, bool)) or float(v).is_integer() else None
    if n.op == "Equal" and len(ins) == 2:
        a, b = elements(ins[0]), elements(ins[1])
        if a is None or b is None or len(a) != len(b):
            return None
        return [_equal(x, y) for x, y in zip(a, b)]
    if n.op == "Where" and len(ins) == 3:
        c, a, b = elements(ins[0]), elements(ins[1]), elements(ins[2])
        if c is None or a is None or b is None or not (len(c) == len(a) == len(b)):
            return None
        return [None if x is None else (y if x else z) for x, y, z in zip(c, a, b)]
    if n.op in ("Add", "Sub", "Mul", "Div") and len(ins) == 2:
        a, b = elements(ins[0]), elements(ins[1])
        if a is None or b is None:
            return None
        if len(a) != len(b):
            if len(a) == 1:
                a = a * len(b)
            elif len(b) == 1:
                b = b * len(a)
            else:
                return None
        return [_arith(n.op, x, y) for x, y in zip(a, b)]
    return None


def _dim_product(dims) -> tuple[int, list]:
    """(product of the int dims, sorted list of the symbols); None dims make it unknowable."""
    k, syms = 1, []
    for d in dims:
        if isinstance(d, int):
            k *= d
        else:
            syms.append(d)
    return k, sorted(syms, key=str)


def reshape_dims(in_shape, target: list, allowzero: int = 0) -> list | None:
    """The output dims of Reshape(x: in_shape, target) with symbols, resolving 0 and one -1."""
    out = []
    for i, e in enumerate(target):
        if e == 0 and not allowzero:
            if in_shape is None or i >= len(in_shape):
                return None
            out.append(in_shape[i])
        else:
            out.append(e)
    if -1 in out:
        if in_shape is None or None in in_shape or out.count(-1) > 1:
            return [None if d == -1 else d for d in out]
        known = [d for d in out if d != -1]
        if None in known:
            return [None if d == -1 else d for d in out]
        k_in, s_in = _dim_product(in_shape)
        k_out, s_out = _dim_product(known)
        rest = list(s_in)
        for s in s_out:
            if s not in rest:
                return [None if d == -1 else d for d in out]
            rest.remove(s)
        if k_out == 0 or k_in % k_out:
            return [None if d == -1 else d for d in out]
        q = k_in // k_out
        fill = q if not rest else (rest[0] if len(rest) == 1 and q == 1 else None)
        out = [fill if d == -1 else d for d in out]
    return out


def refine(n: Node, inferred: list) -> list:
    """Sharpen the inferred output types of shape-consuming ops with tracked symbolic values."""
    if not inferred or not isinstance(inferred[0], TensorType):
        return inferred
    t = inferred[0]
    ins = n.inputs
    new_shape = None
    if n.op == "ConstantOfShape" and ins and ins[0] is not None:
        e = elements(ins[0])
        new_shape = e
    elif n.op == "Range" and len(ins) == 3:
        start, limit, delta = elements(ins[0]), elements(ins[1]), elements(ins[2])
        if start == [0] and delta == [1] and limit is not None and len(limit) == 1 and limit[0] is not None:
            new_shape = limit
    elif n.op == "Expand" and len(ins) == 2 and ins[0].shape is not None:
        e = elements(ins[1])
        if e is not None:
            from ..ops.infer import InferError, broadcast_shapes

            try:
                new_shape = list(broadcast_shapes(tuple(ins[0].shape), tuple(1 if d is None else d for d in e)))
                new_shape = [None if (d is None and i >= len(e) - len(ins[0].shape)) else d
                             for i, d in enumerate(new_shape)] if None in e else new_shape
            except InferError:
                new_shape = None
    elif n.op == "Reshape" and len(ins) == 2:
        e = elements(ins[1])
        if e is not None:
            new_shape = reshape_dims(ins[0].shape, e, n.attrs.get("allowzero", 0))
    elif n.op == "Slice" and len(ins) >= 3 and ins[0].shape is not None:
        new_shape = _slice_dims(ins)
    if new_shape is None or (t.shape is not None and len(t.shape) != len(new_shape)):
        return inferred
    merged = list(new_shape) if t.shape is None else [
        a if isinstance(a, int) else (b if b is not None else a) for a, b in zip(t.shape, new_shape)]
    return [TensorType(t.dtype, tuple(merged))] + list(inferred[1:])


def _slice_dims(ins) -> list | None:
    """Slice from 0 with step 1 up to a symbolic end: the dim is that symbol (an end beyond the
    dim would make every consumer's shapes disagree, so models only slice within bounds). Axes not
    sliced keep the input's dim; other sliced axes are left to the op's own inference (None)."""
    shape = list(ins[0].shape)
    starts, ends = elements(ins[1]), elements(ins[2])
    if starts is None or ends is None:
        return None
    axes = elements(ins[3]) if len(ins) > 3 and ins[3] is not None else list(range(len(starts)))
    steps = elements(ins[4]) if len(ins) > 4 and ins[4] is not None else [1] * len(starts)
    if axes is None or steps is None or not all(isinstance(a, int) for a in axes):
        return None
    for s, e, a, st in zip(starts, ends, axes, steps):
        a %= len(shape)
        shape[a] = e if (s == 0 and st == 1 and isinstance(e, str)) else None
    return shape
