"""Ops that look at or rearrange a tensor's shape without computing new values: Shape, Size, Reshape,
Flatten, Squeeze, Unsqueeze, Transpose, Expand, Tile, Identity, DepthToSpace, SpaceToDepth."""

from __future__ import annotations

import numpy as np

from ... import dtypes
from .. import infer
from ..infer import InferError, dim_mul, known_int, tensor
from ..registry import REQUIRED
from ._common import (check_axes, const_ints, defop, dim_div, dim_times, ints_of, length_of, normalize_axes,
                      same_symbolic_product)


# --- Shape, Size -----------------------------------------------------------------------------------
def _shape_range(rank: int, start: int, end):
    end = rank if end is None else int(end)
    start = int(start)
    if start < 0:
        start += rank
    if end < 0:
        end += rank
    start = min(max(start, 0), rank)
    end = min(max(end, 0), rank)
    return start, max(end, start)


def _infer_shape(data, start=0, end=None):
    r = infer.rank_of(data)
    if r is None:
        return tensor(dtypes.int64, (None,))
    s, e = _shape_range(r, start, end)
    return tensor(dtypes.int64, (e - s,))


@defop("Shape", inputs=["data"], outputs=["shape"], infer=_infer_shape)
def shape_v1(data):
    """The shape of `data` as an int64 vector."""
    return np.array(np.shape(data), dtype=np.int64)


@defop("Shape", inputs=["data"], outputs=["shape"], attrs={"start": 0, "end": None},
       infer=_infer_shape, since=15)
def shape_v15(data, *, start, end):
    """The dims `start:end` of `data`'s shape (negative values count from the end, both clamped)."""
    s, e = _shape_range(np.ndim(data), start, end)
    return np.array(np.shape(data)[s:e], dtype=np.int64)


@defop("Size", inputs=["data"], outputs=["size"], infer=lambda data: tensor(dtypes.int64, ()))
def size(data):
    """The number of elements of `data`, as an int64 scalar."""
    return np.array(np.size(data), dtype=np.int64)


# --- Reshape ---------------------------------------------------------------------------------------
def _reshape_dims(in_shape, target: list[int], allowzero: int):
    """The output shape of Reshape (dims may be symbols) for a known target."""
    if target.count(-1) > 1:
        raise InferError(f"shape {target} has more than one -1")
    if allowzero and 0 in target and -1 in target:
        raise InferError(f"shape {target} has both 0 and -1 while allowzero=1")
    out = []
    for i, t in enumerate(target):
        if t == 0 and not allowzero:
            if in_shape is None:
                out.append(None)
            elif i >= len(in_shape):
                raise InferError(f"shape {target} copies dim {i} (0) but the input has rank {len(in_shape)}")
            else:
                out.append(in_shape[i])
        elif t < -1:
            raise InferError(f"shape {target} has a negative dim {t}")
        else:
            out.append(t)
    if -1 in target:
        k = target.index(-1)
        if in_shape is None:
            out[k] = None
        else:
            out[k] = same_symbolic_product(list(in_shape), [d for i, d in enumerate(out) if i != k])
    elif in_shape is not None:
        a, b = dim_mul(in_shape), dim_mul(out)
        if a is not None and b is not None and a != b:
            raise InferError(f"cannot reshape {list(in_shape)} ({a} elements) to {target} ({b} elements)")
    return tuple(out)


def _infer_reshape(data, shape, allowzero=0):
    target = const_ints(shape)
    if target is None:
        n = length_of(shape)
        return tensor(data.dtype, None if n is None else (None,) * n)
    return tensor(data.dtype, _reshape_dims(data.shape, target, allowzero))


def _reshape(data, target, allowzero):
    target = list(target)
    if not allowzero:
        if any(t == 0 for t in target[data.ndim:]):
            raise ValueError(f"shape {target} copies a dim (0) beyond the input's rank {data.ndim}")
        target = [data.shape[i] if t == 0 else t for i, t in enumerate(target)]
    return np.reshape(data, target)


class _Const:
    """Wraps an attribute as a constant input, so the input-based inference serves old versions."""

    def __init__(self, data):
        self.const = None if data is None else np.asarray(data)
        self.type = None if data is None else tensor(dtypes.int64, (self.const.size,))

    @property
    def shape(self):
        return None if self.type is None else self.type.shape

    @property
    def dtype(self):
        return dtypes.int64


@defop("Reshape", inputs=["data"], outputs=["reshaped"], attrs={"shape": None, "consumed_inputs": None},
       infer=lambda data, shape=None, consumed_inputs=None: _infer_reshape(
           data, _Const(shape) if shape is not None else None))
def reshape_v1(data, *, shape, consumed_inputs):
    """Reshape to the `shape` attribute (0 copies the input dim, -1 is inferred)."""
    return _reshape(data, shape or [], 0)


@defop("Reshape", inputs=["data", "shape"], outputs=["reshaped"], infer=_infer_reshape, since=5)
def reshape_v5(data, shape):
    """Reshape to `shape` (0 copies the input dim, -1 is inferred)."""
    return _reshape(data, ints_of(shape), 0)


@defop("Reshape", inputs=["data", "shape"], outputs=["reshaped"], attrs={"allowzero": 0},
       infer=_infer_reshape, since=14)
def reshape_v14(data, shape, *, allowzero):
    """Reshape to `shape`; with allowzero=1 a 0 in `shape` is a real zero dim, not a copy."""
    return _reshape(data, ints_of(shape), allowzero)


# --- Flatten ---------------------------------------------------------------------------------------
def _infer_flatten(x, axis=1):
    s = x.shape
    if s is None:
        return tensor(x.dtype, (None, None))
    r = len(s)
    if not -r <= axis <= r:
        raise InferError(f"axis {axis} is out of range for rank {r}")
    a = axis % r if axis < 0 else axis
    return tensor(x.dtype, (_prod_sym(s[:a]), _prod_sym(s[a:])))


def _prod_sym(dims):
    dims = [d for d in dims if not (known_int(d) and d == 1)]
    if len(dims) == 1:
        return dims[0]
    return dim_mul(dims)


@defop("Flatten", inputs=["input"], outputs=["output"], attrs={"axis": 1}, infer=_infer_flatten)
def flatten(x, *, axis):
    """2-D view: dims before `axis` form the rows, the rest the columns."""
    r = x.ndim
    if not -r <= axis <= r:
        raise ValueError(f"axis {axis} is out of range for rank {r}")
    a = axis + r if axis < 0 else axis
    rows = int(np.prod(x.shape[:a], dtype=np.int64))
    return np.reshape(x, (rows, -1) if rows else (0, int(np.prod(x.shape[a:], dtype=np.int64))))


# --- Squeeze, Unsqueeze ----------------------------------------------------------------------------
def _squeeze_shape(s, axes):
    if s is None:
        return None
    if axes is None:
        if not all(known_int(d) for d in s):
            return None  # a symbolic dim may be 1 at run time
        return tuple(d for d in s if d != 1)
    ax = normalize_axes(axes, len(s))
    for a in ax:
        if known_int(s[a]) and s[a] != 1:
            raise InferError(f"cannot squeeze axis {a} of size {s[a]}")
    return tuple(d for i, d in enumerate(s) if i not in ax)


def _squeeze(x, axes):
    if axes is None:
        return np.reshape(x, tuple(d for d in x.shape if d != 1))
    ax = check_axes(axes, x.ndim)
    for a in ax:
        if x.shape[a] != 1:
            raise ValueError(f"cannot squeeze axis {a} of size {x.shape[a]}")
    return np.reshape(x, tuple(d for i, d in enumerate(x.shape) if i not in ax))


@defop("Squeeze", inputs=["data"], outputs=["squeezed"], attrs={"axes": None},
       infer=lambda data, axes=None: tensor(data.dtype, _squeeze_shape(data.shape, axes)))
def squeeze_v1(data, *, axes):
    """Remove the size-1 dims listed in `axes` (all size-1 dims when absent)."""
    return _squeeze(data, axes)


def _infer_squeeze13(data, axes=None):
    if axes is None:
        return tensor(data.dtype, _squeeze_shape(data.shape, None))
    ax = const_ints(axes)
    if ax is None:
        return tensor(data.dtype, None)
    return tensor(data.dtype, _squeeze_shape(data.shape, ax))


@defop("Squeeze", inputs=["data", "axes?"], outputs=["squeezed"], infer=_infer_squeeze13, since=13)
def squeeze_v13(data, axes=None):
    """Remove the size-1 dims listed in input `axes` (all size-1 dims when absent)."""
    return _squeeze(data, ints_of(axes))


def _unsqueeze_shape(s, axes):
    if s is None:
        return None
    r = len(s) + len(axes)
    ax = set(normalize_axes(axes, r))
    it = iter(s)
    return tuple(1 if i in ax else next(it) for i in range(r))


def _unsqueeze(x, axes):
    try:
        return np.reshape(x, _unsqueeze_shape(x.shape, axes))
    except InferError as e:
        raise ValueError(str(e)) from None


@defop("Unsqueeze", inputs=["data"], outputs=["expanded"], attrs={"axes": REQUIRED},
       infer=lambda data, axes: tensor(data.dtype, _unsqueeze_shape(data.shape, axes)))
def unsqueeze_v1(data, *, axes):
    """Insert size-1 dims at `axes` (positions in the output)."""
    return _unsqueeze(data, axes)


def _infer_unsqueeze13(data, axes):
    ax = const_ints(axes)
    if ax is None:
        n = length_of(axes)
        r = infer.rank_of(data)
        return tensor(data.dtype, None if n is None or r is None else (None,) * (r + n))
    return tensor(data.dtype, _unsqueeze_shape(data.shape, ax))


@defop("Unsqueeze", inputs=["data", "axes"], outputs=["expanded"], infer=_infer_unsqueeze13, since=13)
def unsqueeze_v13(data, axes):
    """Insert size-1 dims at input `axes` (positions in the output)."""
    return _unsqueeze(data, ints_of(axes))


# --- Transpose -------------------------------------------------------------------------------------
def _infer_transpose(data, perm=None):
    s = data.shape
    if s is None:
        return tensor(data.dtype, None if perm is None else (None,) * len(perm))
    perm = list(range(len(s)))[::-1] if perm is None else normalize_axes(perm, len(s), "perm entry")
    if len(perm) != len(s):
        raise InferError(f"perm {perm} has {len(perm)} entries for rank {len(s)}")
    return tensor(data.dtype, tuple(s[p] for p in perm))


@defop("Transpose", inputs=["data"], outputs=["transposed"], attrs={"perm": None}, infer=_infer_transpose)
def transpose(data, *, perm):
    """Permute the axes (reverse them when `perm` is absent)."""
    return np.transpose(data, None if perm is None else tuple(perm))


# --- Expand, Tile ----------------------------------------------------------------------------------
def _infer_expand(x, shape):
    target = const_ints(shape)
    s = x.shape
    if target is not None:
        if s is None:
            return tensor(x.dtype, (None,) * len(target))
        tgt = tuple(None if t == 1 else t for t in target)  # 1 keeps the input dim
        rank = max(len(s), len(tgt))
        s_p = (1,) * (rank - len(s)) + tuple(s)
        t_p = (1,) * (rank - len(tgt)) + tuple(target)
        out = []
        for a, b in zip(s_p, t_p):
            if b == 1:
                out.append(a)
            elif known_int(a) and a != 1 and a != b:
                raise InferError(f"cannot expand {list(s)} to {target}")
            else:
                out.append(b)
        return tensor(x.dtype, tuple(out))
    n = length_of(shape)
    if n is None or s is None:
        return tensor(x.dtype, None)
    rank = max(len(s), n)
    s_p = (1,) * (rank - len(s)) + tuple(s)
    return tensor(x.dtype, tuple(d if known_int(d) and d != 1 else None for d in s_p))


@defop("Expand", inputs=["input", "shape"], outputs=["output"], infer=_infer_expand, since=8)
def expand(x, shape):
    """Broadcast `input` to `shape` (bidirectionally, as NumPy does: dims of 1 in `shape` keep the input's)."""
    target = ints_of(shape)
    out_shape = np.broadcast_shapes(x.shape, tuple(target))
    return np.broadcast_to(x, out_shape).copy()


def _infer_tile(x, repeats, *rest):
    reps = const_ints(repeats)
    s = x.shape
    if s is None:
        return tensor(x.dtype, None)
    if reps is None:
        return tensor(x.dtype, tuple(d if known_int(d) and d == 0 else None for d in s))
    if len(reps) != len(s):
        raise InferError(f"repeats {reps} has {len(reps)} entries for rank {len(s)}")
    return tensor(x.dtype, tuple(dim_times(d, r) for d, r in zip(s, reps)))


@defop("Tile", inputs=["input", "repeats"], outputs=["output"], infer=_infer_tile, since=6)
def tile(x, repeats):
    """Repeat the tensor `repeats[i]` times along axis i."""
    reps = ints_of(repeats)
    if len(reps) != x.ndim:
        raise ValueError(f"repeats {reps} has {len(reps)} entries for rank {x.ndim}")
    if any(r < 0 for r in reps):
        raise ValueError(f"repeats {reps} has a negative entry")
    return np.tile(x, reps)


def _infer_tile1(x, tiles, axis):
    s = x.shape
    t, a = const_ints(tiles), const_ints(axis)
    if s is None:
        return tensor(x.dtype, None)
    if t is None or a is None:
        return tensor(x.dtype, (None,) * len(s))
    ax = normalize_axes(a[:1], len(s))[0]
    return tensor(x.dtype, tuple(dim_times(d, t[0]) if i == ax else d for i, d in enumerate(s)))


@defop("Tile", inputs=["input", "tiles", "axis"], outputs=["output"], infer=_infer_tile1)
def tile_v1(x, tiles, axis):
    """Repeat the tensor `tiles` times along `axis` (opset 1 form)."""
    reps = [1] * x.ndim
    reps[check_axes(ints_of(axis)[:1], x.ndim)[0]] = ints_of(tiles)[0]
    return np.tile(x, reps)


# --- Identity --------------------------------------------------------------------------------------
@defop("Identity", inputs=["input"], outputs=["output"], infer=infer.same)
def identity(x):
    """The input itself (a tensor, a sequence or an optional)."""
    if isinstance(x, list):
        return list(x)
    return x


# --- DepthToSpace, SpaceToDepth --------------------------------------------------------------------
def _infer_d2s(x, blocksize, mode="DCR"):
    s = x.shape
    if s is None:
        return tensor(x.dtype, (None,) * 4)
    if len(s) != 4:
        raise InferError(f"input must have rank 4 (N, C, H, W), got rank {len(s)}")
    if mode not in ("DCR", "CRD"):
        raise InferError(f"mode must be 'DCR' or 'CRD', got {mode!r}")
    b = int(blocksize)
    return tensor(x.dtype, (s[0], dim_div(s[1], b * b, "channels"), dim_times(s[2], b), dim_times(s[3], b)))


def _depth_to_space(x, blocksize, mode):
    if x.ndim != 4:
        raise ValueError(f"input must have rank 4 (N, C, H, W), got rank {x.ndim}")
    b = int(blocksize)
    n, c, h, w = x.shape
    if c % (b * b):
        raise ValueError(f"channels {c} are not divisible by blocksize^2 = {b * b}")
    if mode == "DCR":
        t = x.reshape(n, b, b, c // (b * b), h, w).transpose(0, 3, 4, 1, 5, 2)
    elif mode == "CRD":
        t = x.reshape(n, c // (b * b), b, b, h, w).transpose(0, 1, 4, 2, 5, 3)
    else:
        raise ValueError(f"mode must be 'DCR' or 'CRD', got {mode!r}")
    return t.reshape(n, c // (b * b), h * b, w * b)


@defop("DepthToSpace", inputs=["input"], outputs=["output"], attrs={"blocksize": REQUIRED},
       infer=_infer_d2s)
def depth_to_space_v1(x, *, blocksize):
    """Move channel blocks into spatial blocks (DCR order)."""
    return _depth_to_space(x, blocksize, "DCR")


@defop("DepthToSpace", inputs=["input"], outputs=["output"], attrs={"blocksize": REQUIRED, "mode": "DCR"},
       infer=_infer_d2s, since=11)
def depth_to_space(x, *, blocksize, mode):
    """Move channel blocks into spatial blocks, in DCR (depth-column-row) or CRD order."""
    return _depth_to_space(x, blocksize, mode)


def _infer_s2d(x, blocksize, mode="DCR"):
    s = x.shape
    if s is None:
        return tensor(x.dtype, (None,) * 4)
    if len(s) != 4:
        raise InferError(f"input must have rank 4 (N, C, H, W), got rank {len(s)}")
    if mode not in ("DCR", "CRD"):
        raise InferError(f"mode must be 'DCR' or 'CRD', got {mode!r}")
    b = int(blocksize)
    return tensor(x.dtype, (s[0], dim_times(s[1], b * b), dim_div(s[2], b, "height"), dim_div(s[3], b, "width")))


def _space_to_depth(x, blocksize, mode):
    if x.ndim != 4:
        raise ValueError(f"input must have rank 4 (N, C, H, W), got rank {x.ndim}")
    b = int(blocksize)
    n, c, h, w = x.shape
    if h % b or w % b:
        raise ValueError(f"height {h} and width {w} must be divisible by blocksize {b}")
    t = x.reshape(n, c, h // b, b, w // b, b)
    if mode == "DCR":
        t = t.transpose(0, 3, 5, 1, 2, 4)
    elif mode == "CRD":
        t = t.transpose(0, 1, 3, 5, 2, 4)
    else:
        raise ValueError(f"mode must be 'DCR' or 'CRD', got {mode!r}")
    return t.reshape(n, c * b * b, h // b, w // b)


@defop("SpaceToDepth", inputs=["input"], outputs=["output"], attrs={"blocksize": REQUIRED},
       infer=_infer_s2d)
def space_to_depth_v1(x, *, blocksize):
    """Move spatial blocks into channels (the inverse of DepthToSpace in DCR order)."""
    return _space_to_depth(x, blocksize, "DCR")


@defop("SpaceToDepth", inputs=["input"], outputs=["output"], attrs={"blocksize": REQUIRED, "mode": "DCR"},
       infer=_infer_s2d, since=28)
def space_to_depth(x, *, blocksize, mode):
    """Move spatial blocks into channels, in DCR or CRD order (the inverse of DepthToSpace)."""
    return _space_to_depth(x, blocksize, mode)
