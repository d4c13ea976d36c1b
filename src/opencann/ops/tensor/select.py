"""Ops that select or reorder elements by data: Where, NonZero, OneHot, Compress, ReverseSequence, Unique."""

from __future__ import annotations

import numpy as np

from ... import dtypes
from ..infer import InferError, broadcast_shapes, dim_mul, known_int, tensor
from ._common import check_axes, defop, dtype_or_none, normalize_axes


# --- Where -----------------------------------------------------------------------------------------
def _infer_where(cond, x, y):
    c, a, b = (dtype_or_none(v) for v in (cond, x, y))
    if c is not None and c != dtypes.bool_:
        raise InferError(f"condition must be bool, got {c}")
    if a is not None and b is not None and a != b:
        raise InferError(f"X ({a}) and Y ({b}) must have one dtype")
    if a is None and b is None:
        return None
    return tensor(a or b, broadcast_shapes(cond.shape, x.shape, y.shape))


@defop("Where", inputs=["condition", "X", "Y"], outputs=["output"], infer=_infer_where, since=9)
def where(condition, x, y):
    """Elements of X where `condition` holds, else of Y (all three broadcast)."""
    out = np.where(condition, x, y)
    return out.astype(x.dtype, copy=False)


# --- NonZero ---------------------------------------------------------------------------------------
def _infer_nonzero(x):
    r = None if x.shape is None else len(x.shape)
    return tensor(dtypes.int64, (r, None))


@defop("NonZero", inputs=["X"], outputs=["Y"], infer=_infer_nonzero, since=9)
def nonzero(x):
    """Indices of the non-zero elements, one row per axis (shape [rank, count]), in row-major order."""
    x = np.asarray(x)
    if x.ndim == 0:
        return np.zeros((0, int(bool(x))), np.int64)
    return np.array(np.nonzero(x), dtype=np.int64).reshape(x.ndim, -1)


# --- OneHot ----------------------------------------------------------------------------------------
def _infer_one_hot(indices, depth, values, *, axis):
    d = depth.const
    dim = None
    if d is not None:
        dim = int(np.asarray(d).reshape(-1)[0])
        if dim < 1:
            raise InferError(f"depth must be positive, got {dim}")
    if values.shape is not None and len(values.shape) != 1:
        raise InferError(f"values must be a 2-element vector [off, on], got rank {len(values.shape)}")
    s = indices.shape
    if s is None:
        return tensor(values.dtype, None)
    r = len(s) + 1
    a = normalize_axes([axis], r)[0]
    return tensor(values.dtype, tuple(s[:a]) + (dim,) + tuple(s[a:]))


@defop("OneHot", inputs=["indices", "depth", "values"], outputs=["output"], attrs={"axis": -1},
       infer=_infer_one_hot, since=9)
def one_hot(indices, depth, values, *, axis):
    """`values[1]` where the new `axis` index equals `indices` (negative ones count from `depth`),
    `values[0]` elsewhere; indices outside [-depth, depth) give an all-off row."""
    n = int(np.asarray(depth).reshape(-1)[0])
    if n < 1:
        raise ValueError(f"depth must be positive, got {n}")
    values = np.asarray(values).reshape(-1)
    if values.size != 2:
        raise ValueError(f"values must have 2 elements [off, on], got {values.size}")
    idx = np.asarray(indices)
    idx = idx.astype(np.int64) if idx.dtype.kind in "iub" else np.trunc(idx.astype(np.float64)).astype(np.int64)
    idx = np.where(idx < 0, idx + n, idx)
    a = check_axes([axis], idx.ndim + 1)[0]
    classes = np.arange(n).reshape((n,) + (1,) * (idx.ndim - a))
    hot = np.expand_dims(idx, a) == classes
    return np.where(hot, values[1], values[0]).astype(values.dtype)


# --- Compress --------------------------------------------------------------------------------------
def _infer_compress(x, condition, *, axis):
    if condition.shape is not None and len(condition.shape) != 1:
        raise InferError(f"condition must be 1-D, got rank {len(condition.shape)}")
    s = x.shape
    if axis is None:
        return tensor(x.dtype, (None,))
    if s is None:
        return tensor(x.dtype, None)
    a = normalize_axes([axis], len(s))[0]
    c = condition.const
    d = None if c is None else int(np.count_nonzero(np.asarray(c)[: s[a] if known_int(s[a]) else None]))
    return tensor(x.dtype, tuple(d if i == a else v for i, v in enumerate(s)))


@defop("Compress", inputs=["input", "condition"], outputs=["output"], attrs={"axis": None},
       infer=_infer_compress, since=9)
def compress(x, condition, *, axis):
    """The slices along `axis` (of the flattened input when absent) where `condition` is true;
    a shorter condition leaves the remaining slices out."""
    cond = np.asarray(condition).astype(bool).reshape(-1)
    if axis is None:
        flat = x.reshape(-1)
        return flat[: cond.size][cond[: flat.size]]
    a = check_axes([axis], x.ndim)[0]
    if cond.size > x.shape[a]:
        raise ValueError(f"condition has {cond.size} entries, the axis only {x.shape[a]}")
    return np.compress(cond, x, axis=a)


# --- ReverseSequence -------------------------------------------------------------------------------
def _infer_reverse_sequence(x, sequence_lens, *, batch_axis, time_axis):
    s = x.shape
    if s is not None:
        if len(s) < 2:
            raise InferError(f"input must have rank >= 2, got {len(s)}")
        b, t = normalize_axes([batch_axis, time_axis], len(s), "batch/time axis")
        if {b, t} != {0, 1}:
            raise InferError(f"batch_axis and time_axis must be 0 and 1, got {batch_axis} and {time_axis}")
    return tensor(x.dtype, s)


@defop("ReverseSequence", inputs=["input", "sequence_lens"], outputs=["Y"],
       attrs={"batch_axis": 1, "time_axis": 0}, infer=_infer_reverse_sequence, since=10)
def reverse_sequence(x, sequence_lens, *, batch_axis, time_axis):
    """Reverse the first `sequence_lens[b]` steps along `time_axis` of each batch entry b; the rest
    stays in place."""
    b, t = check_axes([batch_axis, time_axis], x.ndim, "batch/time axis")
    lens = np.asarray(sequence_lens, dtype=np.int64).reshape(-1)
    xm = np.moveaxis(x, (b, t), (0, 1))
    nb, nt = xm.shape[:2]
    if lens.size != nb:
        raise ValueError(f"sequence_lens has {lens.size} entries for a batch of {nb}")
    if lens.size and (lens.min() < 0 or lens.max() > nt):
        raise ValueError(f"sequence_lens {lens.tolist()} must lie in [0, {nt}]")
    steps = np.arange(nt)[None, :]
    src = np.where(steps < lens[:, None], lens[:, None] - 1 - steps, steps)  # (nb, nt)
    out = np.take_along_axis(xm, src.reshape(src.shape + (1,) * (xm.ndim - 2)), axis=1)
    return np.moveaxis(out, (0, 1), (b, t))


# --- Unique ----------------------------------------------------------------------------------------
def _infer_unique(x, *, axis, sorted):
    i64 = dtypes.int64
    s = x.shape
    if axis is None:
        n = None if s is None else dim_mul(s)
        return (tensor(x.dtype, (None,)), tensor(i64, (None,)), tensor(i64, (n,)), tensor(i64, (None,)))
    if s is None:
        return (tensor(x.dtype, None), tensor(i64, (None,)), tensor(i64, (None,)), tensor(i64, (None,)))
    a = normalize_axes([axis], len(s))[0]
    y = tuple(None if i == a else d for i, d in enumerate(s))
    return (tensor(x.dtype, y), tensor(i64, (None,)), tensor(i64, (s[a],)), tensor(i64, (None,)))


@defop("Unique", inputs=["X"], outputs=["Y", "indices?", "inverse_indices?", "counts?"],
       attrs={"axis": None, "sorted": 1}, infer=_infer_unique, since=11)
def unique(x, *, axis, sorted):
    """The unique elements (or slices along `axis`) of X, sorted or in order of first occurrence,
    with their first indices, the inverse map from X to Y, and their counts."""
    if axis is None:
        data, a = x.reshape(-1), None
    else:
        a = check_axes([axis], x.ndim)[0]
        data = x
    y, idx, inv, counts = np.unique(data, return_index=True, return_inverse=True, return_counts=True, axis=a)
    inv = inv.reshape(-1)
    if not sorted:
        order = np.argsort(idx, kind="stable")
        rank = np.empty_like(order)
        rank[order] = np.arange(order.size)
        idx, counts, inv = idx[order], counts[order], rank[inv]
        y = np.take(data, idx, axis=0 if a is None else a)
    return (y.astype(x.dtype, copy=False), idx.astype(np.int64), inv.astype(np.int64), counts.astype(np.int64))
