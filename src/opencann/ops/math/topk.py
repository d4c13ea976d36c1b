"""TopK: the k largest (or smallest) elements along an axis, with their int64 indices.

Equal values keep their index order (the lower index first), for both `largest` settings; NaN
counts as larger than every number.
"""

from __future__ import annotations

import numpy as np

from ... import dtypes
from .. import infer
from ..infer import InferError
from ..registry import REQUIRED
from ._common import NUMERIC, check_kind, int_scalar, versions, wide


def topk_ref(x: np.ndarray, k: int, axis: int, largest, sorted_) -> tuple[np.ndarray, np.ndarray]:
    if x.ndim == 0:
        raise ValueError("TopK needs an input of rank >= 1")
    if not -x.ndim <= axis < x.ndim:
        raise ValueError(f"axis {axis} is out of range for a rank-{x.ndim} input")
    axis %= x.ndim
    n = x.shape[axis]
    if not 0 <= k <= n:
        raise ValueError(f"k={k} must be between 0 and the axis length {n}")
    w = wide(x)
    if largest:
        # a stable ascending sort of the reversed axis, read backwards, is descending with ties
        # in ascending index order
        rev = np.argsort(np.flip(w, axis=axis), axis=axis, kind="stable")
        order = np.flip(n - 1 - rev, axis=axis)
    else:
        order = np.argsort(w, axis=axis, kind="stable")
    idx = np.take(order, np.arange(k), axis=axis).astype(np.int64)
    # `sorted=0` leaves the order unspecified; the sorted order is one valid answer
    return np.take_along_axis(x, idx, axis=axis), idx


def _k_dim(k_value) -> object:
    c = infer.const(k_value)
    return None if c is None else int(np.asarray(c).reshape(-1)[0])


def _topk_type(x, k, axis):
    check_kind(x, NUMERIC, "X")
    if x.dtype is None:
        return None, infer.tensor(dtypes.int64, None)
    if x.shape is None:
        return infer.tensor(x.dtype, None), infer.tensor(dtypes.int64, None)
    if len(x.shape) == 0:
        raise InferError("X must have rank >= 1")
    ax = infer.normalize_axis(axis, len(x.shape))
    d = x.shape[ax]
    if infer.known_int(k) and infer.known_int(d) and k > d:
        raise InferError(f"k={k} is larger than the axis length {d}")
    shape = tuple(k if i == ax else s for i, s in enumerate(x.shape))
    return infer.tensor(x.dtype, shape), infer.tensor(dtypes.int64, shape)


def _infer_k_input(x, k, *, axis=-1, largest=1, sorted=1):  # noqa: A002 - ONNX's attribute name
    check_kind(k, ("int",), "K")
    if k.shape is not None and (len(k.shape) != 1 or (infer.known_int(k.shape[0]) and k.shape[0] != 1)):
        raise InferError(f"K must be a 1-d tensor of one element, got {k.type!r}")
    return _topk_type(x, _k_dim(k), axis)


def _infer_k_attr(x, *, k, axis=-1):
    return _topk_type(x, int(k), axis)


@versions("TopK", {10: {"axis": -1}, 11: {"axis": -1, "largest": 1, "sorted": 1}}, inputs=["X", "K"],
          outputs=["Values", "Indices"], infer=_infer_k_input)
def topk(x, k, *, axis, largest=1, sorted=1):  # noqa: A002
    """TopK: the k largest (largest=1) or smallest elements along `axis` and their indices."""
    return topk_ref(x, int_scalar(k, "K"), axis, largest, sorted)


@versions("TopK", {1: {"axis": -1, "k": REQUIRED}}, inputs=["X"], outputs=["Values", "Indices"],
          infer=_infer_k_attr)
def topk_attr(x, *, axis, k):
    """TopK (opsets 1-9): k is an attribute; the k largest elements along `axis`."""
    return topk_ref(x, int(k), axis, 1, 1)
