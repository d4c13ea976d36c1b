"""Joining and cutting tensors: Concat, Split, Slice."""

from __future__ import annotations

import numpy as np

from .. import context
from ..infer import InferError, known_int, tensor
from ..registry import REQUIRED
from ._common import check_axes, const_ints, defop, dim_add, ints_of, normalize_axes

# --- Concat ----------------------------------------------------------------------------------------


def _infer_concat(*inputs, axis=1):
    present = [v for v in inputs if v is not None]
    if not present:
        raise InferError("Concat needs at least one input")
    shapes = [v.shape for v in present]
    dtype = present[0].dtype
    for v in present[1:]:
        if v.dtype != dtype:
            raise InferError(f"inputs have different dtypes ({dtype} and {v.dtype})")
    known = [s for s in shapes if s is not None]
    if not known:
        return tensor(dtype, None)
    r = len(known[0])
    if any(len(s) != r for s in known):
        raise InferError(f"inputs have different ranks: {[len(s) for s in known]}")
    a = normalize_axes([axis], r)[0]
    out = []
    for i in range(r):
        if i == a:
            d = 0
            for s in shapes:
                d = None if s is None else dim_add(d, s[i]) if d is not None else None
            out.append(d)
        else:
            d = None
            for s in known:
                if known_int(s[i]):
                    if known_int(d) and d != s[i]:
                        raise InferError(f"inputs' dims {d} and {s[i]} differ on axis {i}")
                    d = s[i]
                elif d is None:
                    d = s[i]
            out.append(d)
    return tensor(dtype, tuple(out))


def _concat(inputs, axis):
    inputs = [x for x in inputs if x is not None]
    r = inputs[0].ndim
    return np.concatenate(inputs, axis=check_axes([axis], r)[0])


@defop("Concat", inputs=["inputs*"], outputs=["concat_result"], attrs={"axis": 1}, infer=_infer_concat)
def concat_v1(*inputs, axis):
    """Join the inputs along `axis` (default 1 in opset 1)."""
    return _concat(inputs, axis)


@defop("Concat", inputs=["inputs*"], outputs=["concat_result"], attrs={"axis": REQUIRED},
       infer=_infer_concat, since=4)
def concat(*inputs, axis):
    """Join the inputs along `axis` (negative counts from the end)."""
    return _concat(inputs, axis)


# --- Split -----------------------------------------------------------------------------------------
_MAX_OUTPUTS = 64  # an infer function cannot see the node's output count; extra types are ignored


def _node_outputs() -> int | None:
    node = context.current_node()
    return None if node is None else len(node.outputs)


def _split_sizes(dim: int, n: int, split, num_outputs):
    """Sizes of the parts along the split axis."""
    if split is not None:
        split = [int(s) for s in split]
        if sum(split) != dim:
            raise ValueError(f"split {split} sums to {sum(split)}, the axis has {dim}")
        if any(s < 0 for s in split):
            raise ValueError(f"split {split} has a negative size")
        return split
    if num_outputs is not None:
        k = -(-dim // num_outputs) if num_outputs else 0
        sizes = []
        left = dim
        for _ in range(num_outputs):
            sizes.append(max(min(k, left), 0))
            left -= sizes[-1]
        return sizes
    if dim % n:
        raise ValueError(f"the axis of size {dim} cannot be split into {n} equal parts")
    return [dim // n] * n


def _split(x, axis, split, num_outputs=None):
    a = check_axes([axis], x.ndim)[0]
    n = num_outputs if num_outputs is not None else (len(split) if split is not None else context.num_outputs())
    sizes = _split_sizes(x.shape[a], n, split, num_outputs)
    cuts = np.cumsum(sizes)[:-1]
    return tuple(np.split(x, cuts, axis=a))


def _infer_split(x, split, axis, num_outputs=None):
    s = x.shape
    if s is None:
        n = len(split) if split is not None else num_outputs or _node_outputs() or _MAX_OUTPUTS
        return tuple(tensor(x.dtype, None) for _ in range(n))
    a = normalize_axes([axis], len(s))[0]
    if split is not None:
        dims = list(split)
        if known_int(s[a]) and sum(dims) != s[a]:
            raise InferError(f"split {dims} sums to {sum(dims)}, the axis has {s[a]}")
    else:
        n = num_outputs or _node_outputs()
        if n is None:
            return tuple(tensor(x.dtype, s[:a] + (None,) + s[a + 1:]) for _ in range(_MAX_OUTPUTS))
        if known_int(s[a]):
            try:
                dims = _split_sizes(int(s[a]), n, None, num_outputs)
            except ValueError as e:
                raise InferError(str(e)) from None
        else:
            dims = [None] * n
    return tuple(tensor(x.dtype, s[:a] + (d,) + s[a + 1:]) for d in dims)


@defop("Split", inputs=["input", "split?"], outputs=["outputs*"], attrs={"axis": 0, "split": None},
       infer=lambda x, split_in=None, *, axis, split: _infer_split(
           x, split if split is not None else const_ints(split_in), axis))
def split_v1(x, split_in=None, *, axis, split):
    """Split along `axis` into parts of sizes `split` (attribute or input), or equal parts."""
    return _split(x, axis, split if split is not None else ints_of(split_in))


@defop("Split", inputs=["input"], outputs=["outputs*"], attrs={"axis": 0, "split": None},
       infer=lambda x, *, axis, split: _infer_split(x, split, axis), since=2)
def split_v2(x, *, axis, split):
    """Split along `axis` into parts of sizes `split`, or equal parts (one per output)."""
    return _split(x, axis, split)


def _infer_split13(x, split=None, *, axis, num_outputs=None):
    if split is not None and const_ints(split) is None:
        n = num_outputs or _node_outputs() or _MAX_OUTPUTS
        s = x.shape
        if s is None:
            return tuple(tensor(x.dtype, None) for _ in range(n))
        a = normalize_axes([axis], len(s))[0]
        return tuple(tensor(x.dtype, s[:a] + (None,) + s[a + 1:]) for _ in range(n))
    return _infer_split(x, None if split is None else const_ints(split), axis, num_outputs)


@defop("Split", inputs=["input", "split?"], outputs=["outputs*"], attrs={"axis": 0},
       infer=_infer_split13, since=13)
def split_v13(x, split=None, *, axis):
    """Split along `axis` into parts of sizes `split` (an input), or equal parts (one per output)."""
    return _split(x, axis, ints_of(split))


@defop("Split", inputs=["input", "split?"], outputs=["outputs*"], attrs={"axis": 0, "num_outputs": None},
       infer=_infer_split13, since=18)
def split_v18(x, split=None, *, axis, num_outputs):
    """Split along `axis` into parts of sizes `split`, or `num_outputs` parts of ceil(dim / n)
    elements (the last one smaller when the dim does not divide)."""
    if split is not None and num_outputs is not None:
        raise ValueError("split and num_outputs cannot both be given")
    return _split(x, axis, ints_of(split), num_outputs)


# --- Slice -----------------------------------------------------------------------------------------
def _slice_bounds(dim: int, start: int, end: int, step: int):
    """Clamped (start, stop, step) for one axis, as ONNX defines them (NumPy semantics)."""
    if step == 0:
        raise ValueError("slice step cannot be 0")
    if start < 0:
        start += dim
    if end < 0:
        end += dim
    if step > 0:
        start = min(max(start, 0), dim)
        end = min(max(end, 0), dim)
    else:
        start = min(max(start, -1), dim - 1)
        end = min(max(end, -1), dim - 1)
    return start, end, step


def _slice_len(dim: int, start: int, end: int, step: int) -> int:
    s, e, st = _slice_bounds(dim, start, end, step)
    if st > 0:
        return max(0, -(-(e - s) // st))
    return max(0, -(-(s - e) // -st))


def _slice(x, starts, ends, axes, steps):
    r = x.ndim
    n = len(starts)
    if len(ends) != n:
        raise ValueError(f"starts {starts} and ends {ends} have different lengths")
    axes = list(range(n)) if axes is None else check_axes(axes, r)
    steps = [1] * n if steps is None else steps
    index = [slice(None)] * r
    for a, s, e, st in zip(axes, starts, ends, steps):
        b, en, st = _slice_bounds(x.shape[a], s, e, st)
        if b < 0:  # a backwards slice that starts before the first element is empty
            index[a] = slice(0, 0)
        else:  # -1 as a backwards end means "through element 0", which Python spells None
            index[a] = slice(b, en if en >= 0 else None, st)
    return x[tuple(index)]


def _infer_slice(data, starts, ends, axes=None, steps=None):
    s = data.shape
    if s is None:
        return tensor(data.dtype, None)
    r = len(s)
    if starts is None or ends is None:
        return tensor(data.dtype, (None,) * r)
    n = len(starts)
    ax = list(range(n)) if axes is None else normalize_axes(axes, r)
    steps = [1] * n if steps is None else steps
    out = list(s)
    for a, b, e, st in zip(ax, starts, ends, steps):
        if st == 0:
            raise InferError("slice step cannot be 0")
        d = s[a]
        if known_int(d):
            out[a] = _slice_len(int(d), b, e, st)
        elif b == 0 and st == 1 and e >= 2**31 - 1:
            out[a] = d
        else:
            out[a] = None
    return tensor(data.dtype, tuple(out))


@defop("Slice", inputs=["data"], outputs=["output"],
       attrs={"starts": REQUIRED, "ends": REQUIRED, "axes": None},
       infer=lambda data, *, starts, ends, axes: _infer_slice(data, starts, ends, axes))
def slice_v1(data, *, starts, ends, axes):
    """`data[starts:ends]` along `axes` (attribute form, opset 1)."""
    return _slice(data, starts, ends, axes, None)


def _infer_slice10(data, starts, ends, axes=None, steps=None):
    c = [const_ints(v) for v in (starts, ends)]
    ax = None if axes is None else const_ints(axes)
    st = None if steps is None else const_ints(steps)
    if c[0] is None or c[1] is None or (axes is not None and ax is None) or (steps is not None and st is None):
        s = data.shape
        if s is None:
            return tensor(data.dtype, None)
        if ax is not None:  # the other axes keep their dims
            return tensor(data.dtype, tuple(None if i in normalize_axes(ax, len(s)) else d for i, d in enumerate(s)))
        return tensor(data.dtype, (None,) * len(s))
    return _infer_slice(data, c[0], c[1], ax, st)


@defop("Slice", inputs=["data", "starts", "ends", "axes?", "steps?"], outputs=["output"],
       infer=_infer_slice10, since=10)
def slice_v10(data, starts, ends, axes=None, steps=None):
    """`data[starts:ends:steps]` along `axes`; bounds are clamped, negative steps walk backwards."""
    return _slice(data, ints_of(starts), ints_of(ends), ints_of(axes), ints_of(steps))
