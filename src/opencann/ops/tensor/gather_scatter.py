"""Indexed reads and writes: Gather, GatherElements, GatherND, Scatter, ScatterElements, ScatterND,
TensorScatter."""

from __future__ import annotations

import numpy as np

from ... import dtypes
from ..infer import InferError, known_int, tensor
from ._common import check_axes, defop, normalize_axes


def _index_dtype_ok(v) -> None:
    if v is not None and v.dtype is not None and v.dtype not in (dtypes.int32, dtypes.int64):
        raise InferError(f"indices must be int32 or int64, got {v.dtype}")


def _fix_indices(idx: np.ndarray, dim: int, what: str = "index") -> np.ndarray:
    """Negative indices made positive; out-of-range ones are an error."""
    idx = np.asarray(idx).astype(np.int64, copy=False)
    if idx.size and (idx.min() < -dim or idx.max() >= dim):
        bad = idx[(idx < -dim) | (idx >= dim)].reshape(-1)[0]
        raise ValueError(f"{what} {bad} is out of range for a dim of size {dim}")
    return np.where(idx < 0, idx + dim, idx)


# --- Gather ----------------------------------------------------------------------------------------
def _infer_gather(data, indices, axis=0):
    _index_dtype_ok(indices)
    s, i = data.shape, indices.shape
    if s is None or i is None:
        return tensor(data.dtype, None)
    a = normalize_axes([axis], len(s))[0]
    return tensor(data.dtype, tuple(s[:a]) + tuple(i) + tuple(s[a + 1:]))


@defop("Gather", inputs=["data", "indices"], outputs=["output"], attrs={"axis": 0}, infer=_infer_gather)
def gather(data, indices, *, axis):
    """Pick entries of `data` along `axis` at `indices` (negative indices count from the end)."""
    a = check_axes([axis], data.ndim)[0]
    return np.take(data, _fix_indices(indices, data.shape[a]), axis=a)


def _infer_gather_elements(data, indices, axis=0):
    _index_dtype_ok(indices)
    if data.shape is not None and indices.shape is not None:
        if len(data.shape) != len(indices.shape):
            raise InferError(f"data (rank {len(data.shape)}) and indices (rank {len(indices.shape)}) "
                             "must have the same rank")
        normalize_axes([axis], len(data.shape))
    return tensor(data.dtype, indices.shape)


@defop("GatherElements", inputs=["data", "indices"], outputs=["output"], attrs={"axis": 0},
       infer=_infer_gather_elements, since=11)
def gather_elements(data, indices, *, axis):
    """`out[i][j][k] = data[indices[i][j][k]][j][k]` for axis 0 (likewise for the other axes)."""
    if data.ndim != np.ndim(indices):
        raise ValueError(f"data (rank {data.ndim}) and indices (rank {np.ndim(indices)}) must have the same rank")
    a = check_axes([axis], data.ndim)[0]
    indices = np.asarray(indices)
    for i, (n, m) in enumerate(zip(indices.shape, data.shape)):
        if i != a and n > m:
            raise ValueError(f"indices {list(indices.shape)} exceed data {list(data.shape)} on axis {i}")
    # indices may be smaller than data off the gather axis: only that corner of data is read
    data = data[tuple(slice(None) if i == a else slice(0, n) for i, n in enumerate(indices.shape))]
    return np.take_along_axis(data, _fix_indices(indices, data.shape[a]), axis=a)


def _infer_gather_nd(data, indices, batch_dims=0):
    _index_dtype_ok(indices)
    s, i = data.shape, indices.shape
    if s is None or i is None or not i or not known_int(i[-1]):
        return tensor(data.dtype, None)
    k = int(i[-1])
    b = int(batch_dims)
    if b + k > len(s):
        raise InferError(f"indices address {k} dims after {b} batch dims, data has rank {len(s)}")
    return tensor(data.dtype, tuple(i[:-1]) + tuple(s[b + k:]))


def _gather_nd(data, indices, batch_dims):
    indices = np.asarray(indices).astype(np.int64, copy=False)
    b = int(batch_dims)
    k = indices.shape[-1]
    if b + k > data.ndim:
        raise ValueError(f"indices address {k} dims after {b} batch dims, data has rank {data.ndim}")
    if data.shape[:b] != indices.shape[:b]:
        raise ValueError(f"batch dims of data {data.shape[:b]} and indices {indices.shape[:b]} differ")
    nb = int(np.prod(data.shape[:b], dtype=np.int64))
    d = data.reshape((nb,) + data.shape[b:])
    ix = indices.reshape(nb, -1, k)
    cols = tuple(_fix_indices(ix[..., j], data.shape[b + j]) for j in range(k))
    batch = np.arange(nb).reshape(nb, 1)
    out = d[(batch,) + cols]  # (nb, m, *data.shape[b+k:])
    return out.reshape(indices.shape[:-1] + data.shape[b + k:])


@defop("GatherND", inputs=["data", "indices"], outputs=["output"],
       infer=_infer_gather_nd, since=11)
def gather_nd_v11(data, indices):
    """Gather slices of `data` addressed by the last dim of `indices`."""
    return _gather_nd(data, indices, 0)


@defop("GatherND", inputs=["data", "indices"], outputs=["output"], attrs={"batch_dims": 0},
       infer=_infer_gather_nd, since=12)
def gather_nd(data, indices, *, batch_dims):
    """Gather slices of `data` addressed by the last dim of `indices`; the first `batch_dims` dims
    of both are batch dims that pair up."""
    return _gather_nd(data, indices, batch_dims)


# --- ScatterElements and Scatter -------------------------------------------------------------------
_REDUCE = {"add": np.add, "mul": np.multiply, "max": np.maximum, "min": np.minimum}


def _infer_scatter(data, indices, updates, **attrs):
    _index_dtype_ok(indices)
    if updates.dtype is not None and data.dtype is not None and updates.dtype != data.dtype:
        raise InferError(f"updates ({updates.dtype}) must have data's dtype ({data.dtype})")
    red = attrs.get("reduction", "none")
    if red not in ("none", *_REDUCE):
        raise InferError(f"reduction must be one of none, add, mul, max, min; got {red!r}")
    return tensor(data.dtype, data.shape)


def _scatter_elements(data, indices, updates, axis, reduction, in_place=False):
    """The scatter, into a copy of data (or into data itself with `in_place`)."""
    indices = np.asarray(indices)
    if indices.shape != np.shape(updates):
        raise ValueError(f"indices {list(indices.shape)} and updates {list(np.shape(updates))} must have one shape")
    if indices.ndim != data.ndim:
        raise ValueError(f"indices (rank {indices.ndim}) must have data's rank ({data.ndim})")
    a = check_axes([axis], data.ndim)[0]
    idx = list(np.indices(indices.shape, sparse=True))
    idx[a] = _fix_indices(indices, data.shape[a])
    out = data if in_place else data.copy()
    if reduction == "none":
        out[tuple(idx)] = updates
    else:
        try:
            _REDUCE[reduction].at(out, tuple(idx), updates)
        except KeyError:
            raise ValueError(f"unknown reduction {reduction!r}") from None
    return out


@defop("Scatter", inputs=["data", "indices", "updates"], outputs=["output"], attrs={"axis": 0},
       infer=_infer_scatter, since=9)
def scatter(data, indices, updates, *, axis):
    """Deprecated alias of ScatterElements without reduction."""
    return _scatter_elements(data, indices, updates, axis, "none")


@defop("ScatterElements", inputs=["data", "indices", "updates"], outputs=["output"], attrs={"axis": 0},
       infer=_infer_scatter, since=11)
def scatter_elements_v11(data, indices, updates, *, axis):
    """`out[indices[i][j]][j] = updates[i][j]` for axis 0 (likewise for the other axes)."""
    return _scatter_elements(data, indices, updates, axis, "none")


@defop("ScatterElements", inputs=["data", "indices", "updates"], outputs=["output"],
       attrs={"axis": 0, "reduction": "none"}, infer=_infer_scatter, since=16)
def scatter_elements(data, indices, updates, *, axis, reduction):
    """ScatterElements combining with `reduction` (none, add, mul, max, min) instead of overwriting."""
    return _scatter_elements(data, indices, updates, axis, reduction)


# --- ScatterND -------------------------------------------------------------------------------------
def _scatter_nd(data, indices, updates, reduction):
    indices = np.asarray(indices).astype(np.int64, copy=False)
    k = indices.shape[-1]
    if k > data.ndim:
        raise ValueError(f"indices address {k} dims, data has rank {data.ndim}")
    want = indices.shape[:-1] + data.shape[k:]
    if np.shape(updates) != want:
        raise ValueError(f"updates must have shape {list(want)}, got {list(np.shape(updates))}")
    cols = tuple(_fix_indices(indices[..., j], data.shape[j]) for j in range(k))
    out = data.copy()
    if reduction == "none":
        out[cols] = updates
    else:
        try:
            _REDUCE[reduction].at(out, cols, updates)
        except KeyError:
            raise ValueError(f"unknown reduction {reduction!r}") from None
    return out


@defop("ScatterND", inputs=["data", "indices", "updates"], outputs=["output"],
       infer=_infer_scatter, since=11)
def scatter_nd_v11(data, indices, updates):
    """Write `updates` into a copy of `data` at the index tuples in the last dim of `indices`."""
    return _scatter_nd(data, indices, updates, "none")


@defop("ScatterND", inputs=["data", "indices", "updates"], outputs=["output"], attrs={"reduction": "none"},
       infer=_infer_scatter, since=16)
def scatter_nd(data, indices, updates, *, reduction):
    """ScatterND combining with `reduction` (none, add, mul, max, min) instead of overwriting."""
    return _scatter_nd(data, indices, updates, reduction)


# --- TensorScatter ---------------------------------------------------------------------------------
def _infer_tensor_scatter(past, update, write_indices=None, *, mode, axis):
    if mode not in ("linear", "circular"):
        raise InferError(f"mode must be 'linear' or 'circular', got {mode!r}")
    if update.dtype is not None and past.dtype is not None and update.dtype != past.dtype:
        raise InferError(f"update ({update.dtype}) must have past_cache's dtype ({past.dtype})")
    if past.shape is not None:
        a = normalize_axes([axis], len(past.shape))[0]
        if a == 0:
            raise InferError("axis cannot be the batch axis 0")
        if update.shape is not None and len(update.shape) != len(past.shape):
            raise InferError(f"update (rank {len(update.shape)}) must have past_cache's rank ({len(past.shape)})")
    return tensor(past.dtype, past.shape)


@defop("TensorScatter", inputs=["past_cache", "update", "write_indices?"], outputs=["present_cache"],
       attrs={"mode": "linear", "axis": -2}, infer=_infer_tensor_scatter, since=24)
def tensor_scatter(past_cache, update, write_indices=None, *, mode, axis):
    """Write `update` into a copy of the cache along the sequence `axis`, starting at each batch
    entry's `write_indices` (0 when absent); `circular` wraps past the end."""
    a = check_axes([axis], past_cache.ndim)[0]
    if a == 0:
        raise ValueError("axis cannot be the batch axis 0")
    if update.ndim != past_cache.ndim:
        raise ValueError(f"update (rank {update.ndim}) must have past_cache's rank ({past_cache.ndim})")
    batch, max_len, seq_len = past_cache.shape[0], past_cache.shape[a], update.shape[a]
    starts = np.zeros(batch, np.int64) if write_indices is None else np.asarray(write_indices, np.int64).reshape(-1)
    pos = starts[:, None] + np.arange(seq_len)[None, :]
    if mode == "circular":
        pos = pos % max_len
    elif mode != "linear":
        raise ValueError(f"mode must be 'linear' or 'circular', got {mode!r}")
    if pos.size and (pos.min() < 0 or pos.max() >= max_len):
        raise ValueError(f"write positions run past the cache's {max_len} entries")
    out = past_cache.copy()
    view = np.moveaxis(out, a, 1)
    view[np.arange(batch)[:, None], pos] = np.moveaxis(update, a, 1)
    return out
