"""Reductions: ReduceSum, ReduceMean, ReduceMax, ReduceMin, ReduceProd, ReduceL1, ReduceL2,
ReduceSumSquare, ReduceLogSum, ReduceLogSumExp; ArgMax, ArgMin; CumSum, CumProd.

`axes` is an attribute up to opset 12 (ReduceSum) or 17 (the others) and an optional input after.
With no axes the op reduces every axis, or, with `noop_with_empty_axes=1`, returns its input.
Reducing an empty set gives the operation's identity (0 for sums, 1 for products, -inf for
ReduceMax/ReduceLogSum/ReduceLogSumExp, +inf for ReduceMin; integer and bool dtypes use their
extreme values).
"""

from __future__ import annotations

import numpy as np

from ... import dtypes
from .. import infer
from ..infer import InferError
from ._common import BOOL, NUMERIC, check_kind, int_scalar, is_float, versions, wide


# --- axes ----------------------------------------------------------------------------------------
def _normalize_axes(axes, rank: int) -> tuple[int, ...]:
    out = []
    for a in axes:
        a = int(a)
        if not -rank <= a < max(rank, 1):
            raise ValueError(f"axis {a} is out of range for a rank-{rank} input")
        out.append(a % rank if rank else 0)
    if len(set(out)) != len(out):
        raise ValueError(f"axes {list(axes)} name an axis twice")
    return tuple(out)


def _resolve_axes(x: np.ndarray, axes, noop_with_empty_axes) -> tuple[int, ...] | None:
    """The axes to reduce, or None for "return the input unchanged"."""
    given = [] if axes is None else list(np.asarray(axes).reshape(-1))
    if not given:
        return None if noop_with_empty_axes else tuple(range(x.ndim))
    return _normalize_axes(given, x.ndim)


# --- the reductions, on a float32/float64 (or integer) array over a tuple of axes ------------------
def _sum(w, axes, keep):
    return np.sum(w, axis=axes, keepdims=keep, dtype=w.dtype if w.dtype.kind != "b" else np.int64)


def _logsumexp(w, axes, keep):
    if w.dtype.kind in "iu":
        w = w.astype(np.float64)
    m = np.max(w, axis=axes, keepdims=True)
    m = np.where(np.isfinite(m), m, 0).astype(w.dtype)
    s = np.log(np.sum(np.exp(w - m), axis=axes, keepdims=True)) + m
    return s if keep else np.squeeze(s, axis=axes)


def _mean(w, axes, keep):
    count = int(np.prod([w.shape[a] for a in axes])) if axes else 1
    if w.dtype.kind in "iu":
        return (np.sum(w, axis=axes, keepdims=keep, dtype=np.float64) / count)
    return np.sum(w, axis=axes, keepdims=keep, dtype=w.dtype) / w.dtype.type(count)


def _l2(w, axes, keep):
    if w.dtype.kind in "iu":
        w = w.astype(np.float64)
    return np.sqrt(np.sum(w * w, axis=axes, keepdims=keep))


_KERNELS = {
    "ReduceSum": _sum,
    "ReduceSumSquare": lambda w, axes, keep: _sum(w * w, axes, keep),
    "ReduceL1": lambda w, axes, keep: _sum(np.abs(w), axes, keep),
    "ReduceL2": _l2,
    "ReduceLogSum": lambda w, axes, keep: np.log(_sum(w, axes, keep).astype(
        np.float64 if w.dtype.kind in "iu" else w.dtype)),
    "ReduceLogSumExp": _logsumexp,
    "ReduceMean": _mean,
    "ReduceMax": lambda w, axes, keep: np.max(w, axis=axes, keepdims=keep),
    "ReduceMin": lambda w, axes, keep: np.min(w, axis=axes, keepdims=keep),
    "ReduceProd": lambda w, axes, keep: np.prod(w, axis=axes, keepdims=keep, dtype=w.dtype),
}


def _empty_value(name: str, dt: np.dtype):
    """The result of reducing an empty set."""
    if name in ("ReduceMax", "ReduceMin"):
        high = name == "ReduceMin"
        if dt.kind == "b":
            return high
        if dt.kind in "iu":
            info = np.iinfo(dt)
            return info.max if high else info.min
        return np.inf if high else -np.inf
    if name in ("ReduceLogSum", "ReduceLogSumExp"):
        return -np.inf
    if name == "ReduceProd":
        return 1
    if name == "ReduceMean":
        return np.nan if dt.kind not in "iub" else 0
    return 0


def reduce(name: str, x: np.ndarray, axes, keepdims, noop_with_empty_axes=0) -> np.ndarray:
    """Run reduction `name` over `axes` (None/empty: all, or none with noop_with_empty_axes)."""
    ax = _resolve_axes(x, axes, noop_with_empty_axes)
    if ax is None:
        return x.copy()
    keep = bool(keepdims)
    if any(x.shape[a] == 0 for a in ax):
        shape = tuple(1 if i in ax else d for i, d in enumerate(x.shape)) if keep else \
            tuple(d for i, d in enumerate(x.shape) if i not in ax)
        with np.errstate(all="ignore"):
            return np.full(shape, _empty_value(name, x.dtype)).astype(x.dtype)
    w = wide(x) if is_float(x.dtype) else x
    with np.errstate(all="ignore"):
        out = _KERNELS[name](w, ax, keep)
        if x.dtype.kind in "iu" and np.asarray(out).dtype.kind == "f":
            out = np.trunc(np.nan_to_num(out))
        return np.asarray(out).astype(x.dtype)


# --- inference -----------------------------------------------------------------------------------
def _reduced_type(data, axes, axes_len, keepdims, noop):
    """Output type when `axes` is a known list, or unknown (None) with `axes_len` maybe known."""
    shape = data.shape
    if data.dtype is None:
        return None
    if shape is None:
        return infer.tensor(data.dtype, None)
    if axes is not None:
        if len(axes) == 0:
            return infer.tensor(data.dtype, shape if noop else infer.reduce_shape(shape, None, keepdims))
        return infer.tensor(data.dtype, infer.reduce_shape(shape, [int(a) for a in axes], keepdims))
    if keepdims:
        return infer.tensor(data.dtype, tuple(1 if d == 1 else None for d in shape))
    if axes_len is None:
        return infer.tensor(data.dtype, None)
    if axes_len == 0:
        return infer.tensor(data.dtype, shape if noop else ())
    return infer.tensor(data.dtype, (None,) * max(len(shape) - axes_len, 0))


def _infer_attr(kinds):
    def infer_fn(data, *, axes=None, keepdims=1):
        check_kind(data, kinds, "data")
        return _reduced_type(data, [] if axes is None else list(axes), None, keepdims, 0)

    return infer_fn


def _infer_input(kinds):
    def infer_fn(data, axes=None, *, keepdims=1, noop_with_empty_axes=0):
        check_kind(data, kinds, "data")
        if axes is None:
            return _reduced_type(data, [], None, keepdims, noop_with_empty_axes)
        check_kind(axes, ("int",), "axes")
        known = infer.const(axes)
        if known is not None:
            return _reduced_type(data, list(np.asarray(known).reshape(-1)), None, keepdims, noop_with_empty_axes)
        n = axes.shape[0] if axes.shape is not None and len(axes.shape) == 1 and infer.known_int(axes.shape[0]) else None
        return _reduced_type(data, None, n, keepdims, noop_with_empty_axes)

    return infer_fn


def _register_reduce(name: str, input_since: int, kinds=NUMERIC):
    def with_attr(data, *, axes=None, keepdims=1):
        return reduce(name, data, axes, keepdims)

    def with_input(data, axes=None, *, keepdims=1, noop_with_empty_axes=0):
        return reduce(name, data, axes, keepdims, noop_with_empty_axes)

    for f, suffix, ver in ((with_attr, "", 1), (with_input, "", input_since)):
        f.__doc__ = (f"{name} (from opset {ver}): see the module doc; axes "
                     f"{'attribute' if f is with_attr else 'input'}.")
        f.__name__ = f.__qualname__ = name[len("Reduce"):].lower() + ("_attr" if f is with_attr else "")
        f.__module__ = __name__
    spec = dict(outputs=["reduced"])
    versions(name, {1: {"axes": None, "keepdims": 1}}, inputs=["data"], infer=_infer_attr(kinds),
             **spec)(with_attr)
    versions(name, {input_since: {"keepdims": 1, "noop_with_empty_axes": 0}}, inputs=["data", "axes?"],
             infer=_infer_input(kinds), **spec)(with_input)


_register_reduce("ReduceSum", 13)
for _name in ("ReduceMean", "ReduceProd", "ReduceL1", "ReduceL2", "ReduceSumSquare", "ReduceLogSum",
              "ReduceLogSumExp"):
    _register_reduce(_name, 18)
for _name in ("ReduceMax", "ReduceMin"):
    _register_reduce(_name, 18, NUMERIC + BOOL)


# --- ArgMax / ArgMin -----------------------------------------------------------------------------
def _arg(fn, x: np.ndarray, axis: int, keepdims, select_last_index) -> np.ndarray:
    if x.ndim == 0:
        raise ValueError("ArgMax/ArgMin need an input of rank >= 1")
    axis = _normalize_axes([axis], x.ndim)[0]
    if x.shape[axis] == 0:
        raise ValueError(f"cannot take the arg-extreme over the empty axis {axis}")
    w = wide(x)
    if select_last_index:
        idx = x.shape[axis] - 1 - fn(np.flip(w, axis=axis), axis=axis)
    else:
        idx = fn(w, axis=axis)
    idx = idx.astype(np.int64)
    return np.expand_dims(idx, axis) if keepdims else idx


def _arg_infer(data, *, axis=0, keepdims=1, select_last_index=0):
    check_kind(data, NUMERIC, "data")
    rank = infer.rank_of(data)
    if rank == 0:
        raise InferError("the input must have rank >= 1")
    shape = None if data.shape is None else infer.reduce_shape(data.shape, [infer.normalize_axis(axis, rank)], keepdims)
    return infer.tensor(dtypes.int64, shape)


for _name, _fn in (("ArgMax", np.argmax), ("ArgMin", np.argmin)):
    def _make(fn=_fn, name=_name):
        def ref(data, *, axis=0, keepdims=1, select_last_index=0):
            return _arg(fn, data, axis, keepdims, select_last_index)

        ref.__doc__ = (f"{name}: indices (int64) of the {'largest' if fn is np.argmax else 'smallest'} "
                       "elements along `axis`; ties give the first index, or the last with select_last_index=1.")
        ref.__name__ = ref.__qualname__ = name.lower()
        ref.__module__ = __name__
        return ref

    _ref = _make()
    versions(_name, {1: {"axis": 0, "keepdims": 1}, 12: {"axis": 0, "keepdims": 1, "select_last_index": 0}},
             inputs=["data"], outputs=["reduced"], infer=_arg_infer)(_ref)


# --- CumSum / CumProd ----------------------------------------------------------------------------
def _cumulative(fn, identity, x: np.ndarray, axis, exclusive, reverse) -> np.ndarray:
    if x.ndim == 0:
        raise ValueError("the input must have rank >= 1")
    ax = _normalize_axes([int_scalar(axis, "axis")], x.ndim)[0]
    w = wide(x)
    if reverse:
        w = np.flip(w, axis=ax)
    acc_dtype = w.dtype
    out = fn(w, axis=ax, dtype=acc_dtype)
    if exclusive:
        pad = np.full_like(np.take(out, [0], axis=ax), identity)
        out = np.concatenate([pad, np.take(out, np.arange(out.shape[ax] - 1), axis=ax)], axis=ax)
    if reverse:
        out = np.flip(out, axis=ax)
    return np.ascontiguousarray(out).astype(x.dtype, copy=False)


def _cumulative_infer(x, axis, **attrs):
    check_kind(x, NUMERIC, "x")
    check_kind(axis, ("int",), "axis")
    if axis.shape is not None and len(axis.shape) > 1:
        raise InferError(f"axis must be a scalar, got {axis.type!r}")
    return x.type


@versions("CumSum", {11: {"exclusive": 0, "reverse": 0}}, inputs=["x", "axis"], outputs=["y"],
          infer=_cumulative_infer)
def cumsum(x, axis, *, exclusive, reverse):
    """CumSum: running sum along `axis`; `exclusive` leaves the current element out, `reverse`
    runs from the end."""
    with np.errstate(all="ignore"):
        return _cumulative(np.cumsum, 0, x, axis, exclusive, reverse)


@versions("CumProd", {26: {"exclusive": 0, "reverse": 0}}, inputs=["x", "axis"], outputs=["y"],
          infer=_cumulative_infer)
def cumprod(x, axis, *, exclusive, reverse):
    """CumProd: running product along `axis`; `exclusive` leaves the current element out,
    `reverse` runs from the end."""
    with np.errstate(all="ignore"):
        return _cumulative(np.cumprod, 1, x, axis, exclusive, reverse)
