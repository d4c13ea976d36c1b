"""Softmax, LogSoftmax and Hardmax.

Up to opset 12 these ops coerce the input to 2-D: dims before `axis` become rows, `axis` and the
dims after it become one column axis, and the op runs across that column axis. From opset 13 they
run along the single dimension `axis` (default -1). Both forms are computed by reducing over the
last axis of a view, so the hot path (attention scores in BERT/GPT-2) is one vectorised pass.
"""

from __future__ import annotations

import numpy as np

from .. import infer
from ..registry import defop
from .activation import compute_dtype


def _infer_softmax(x, *, axis):
    infer.normalize_axis(axis, infer.rank_of(x))
    return x.type


def _along(fn, x: np.ndarray, axis: int, coerce_2d: bool) -> np.ndarray:
    """Apply `fn(a)` (which works across the last axis of `a`) along `axis` of `x`, or across the
    flattened dims from `axis` on when `coerce_2d`."""
    if x.ndim == 0:
        raise ValueError("the input must have rank 1 or more")
    if not -x.ndim <= axis < x.ndim:
        raise ValueError(f"axis {axis} is out of range for an input of rank {x.ndim}")
    axis %= x.ndim
    if x.size == 0:
        return fn(x)  # nothing to normalize; keeps the shape
    if coerce_2d:
        rows = int(np.prod(x.shape[:axis], dtype=np.int64))
        return fn(x.reshape(rows, -1)).reshape(x.shape)
    if axis == x.ndim - 1:
        return fn(x)
    return np.moveaxis(fn(np.moveaxis(x, axis, -1)), -1, axis)


def _softmax_last(a: np.ndarray) -> np.ndarray:
    # float16 runs as ONNX's float16 graphs do: exp rounded to float16, the row sum accumulated in
    # float32 by NumPy and rounded once, the quotient rounded. Within 1.5 ulp of exact, and it
    # keeps function-expanded models (Attention's softmax) on the suite's expected values, which
    # a float32 softmax misses by an ulp. bfloat16's 8-bit mantissa does need float32.
    wide = a.dtype if a.dtype == np.float16 else compute_dtype(a.dtype)
    e = a.astype(wide)  # a fresh array: the in-place steps below never touch the input
    if e.size == 0:
        return e.astype(a.dtype)
    e -= e.max(axis=-1, keepdims=True)
    np.exp(e, out=e)
    e /= e.sum(axis=-1, keepdims=True)
    return e.astype(a.dtype, copy=False)


def _log_softmax_last(a: np.ndarray) -> np.ndarray:
    wide = compute_dtype(a.dtype)
    s = a.astype(wide)
    if s.size == 0:
        return s.astype(a.dtype)
    s -= s.max(axis=-1, keepdims=True)
    s -= np.log(np.exp(s).sum(axis=-1, keepdims=True))
    return s.astype(a.dtype, copy=False)


def _hardmax_last(a: np.ndarray) -> np.ndarray:
    out = np.zeros(a.shape, dtype=a.dtype)
    if a.size:
        first_max = np.argmax(a, axis=-1)[..., None]  # argmax picks the first of equal maxima
        np.put_along_axis(out, first_max, a.dtype.type(1), axis=-1)
    return out


def log_softmax(x: np.ndarray, axis: int = -1) -> np.ndarray:
    """log(softmax(x)) along `axis`, stable for large inputs (also used by the losses)."""
    return _along(_log_softmax_last, x, axis, coerce_2d=False)


for _name, _last in (("Softmax", _softmax_last), ("LogSoftmax", _log_softmax_last),
                     ("Hardmax", _hardmax_last)):

    def _coerced(x, *, axis, _last=_last):
        return _along(_last, x, axis, coerce_2d=True)

    def _single_axis(x, *, axis, _last=_last):
        return _along(_last, x, axis, coerce_2d=False)

    _coerced.__doc__ = (f"{_name} across the input coerced to 2-D at `axis` (opsets 1-12): "
                        "dims from `axis` on form one axis.")
    _single_axis.__doc__ = f"{_name} along `axis` (opset 13 on)."
    defop(_name, inputs=["input"], outputs=["output"], attrs={"axis": 1}, infer=_infer_softmax)(_coerced)
    defop(_name, inputs=["input"], outputs=["output"], attrs={"axis": -1}, infer=_infer_softmax,
          since=13)(_single_axis)

del _name, _last
