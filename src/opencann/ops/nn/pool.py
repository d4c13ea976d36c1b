"""Pooling: AveragePool, MaxPool (with Indices), LpPool, their Global forms, MaxUnpool and
MaxRoiPool.

Windows are strided NumPy views of the padded input (see `_window`), reduced over the kernel axes
in one call; averages divide by a per-position count computed the same way from a mask.
"""

from __future__ import annotations

import math

import numpy as np

from .. import infer
from ..context import num_outputs
from ..infer import InferError
from ..registry import REQUIRED, defop
from ._window import Window, compute_dtype, reduce_taps, spatial_rank, windows


def _check_float_or(x, allowed_ints=()):
    if x is None or x.dtype is None:
        return
    if x.dtype.kind != "float" and x.dtype.name not in allowed_ints:
        raise InferError(f"X has dtype {x.dtype.name}, the op takes float tensors"
                         + (f" or {', '.join(allowed_ints)}" if allowed_ints else ""))


def _pool_shape(x, attrs):
    """(N, C, *out) of a windowed pool over value `x`, dims None where unknown."""
    n = spatial_rank(x)
    if n is None:
        kernel = attrs.get("kernel_shape")
        return None if not kernel else (None,) * (len(kernel) + 2)
    win = Window(n, attrs["kernel_shape"], attrs.get("strides"), attrs.get("dilations"),
                 attrs.get("pads"), attrs.get("auto_pad", "NOTSET"), attrs.get("ceil_mode", 0),
                 error=InferError)
    outs = win.resolve(x.shape[2:], InferError)[0]
    return (x.shape[0], x.shape[1], *outs)


def _infer_pool(x, **attrs):
    _check_float_or(x)
    return infer.tensor(x.dtype, _pool_shape(x, attrs))


def _window_of(x, kernel_shape, strides, pads, auto_pad, dilations=None, ceil_mode=0) -> Window:
    n = x.ndim - 2
    if n < 1:
        raise ValueError(f"X has shape {list(x.shape)}: pooling takes (N, C, D1, ...) tensors")
    return Window(n, kernel_shape, strides, dilations, pads, auto_pad, ceil_mode)


# --- AveragePool ----------------------------------------------------------------------------------
def average_pool_nd(x: np.ndarray, win: Window, count_include_pad: bool) -> np.ndarray:
    """Average over each window; the divisor counts the input positions (and the explicit padding
    when `count_include_pad`) the window covers, never the extra end added by ceil_mode."""
    n = win.n
    outs, befores, afters = win.resolve(x.shape[2:])
    ct = compute_dtype(x.dtype)
    total = reduce_taps(windows(x.astype(ct, copy=False), win, outs, befores, 0), n, np.add)
    mask = np.ones((1, 1) + tuple(x.shape[2:]), dtype=ct)
    if count_include_pad:
        mask = np.pad(mask, [(0, 0), (0, 0)] + list(zip(befores, afters)), constant_values=1)
        counts = reduce_taps(windows(mask, win, outs, [0] * n, 0), n, np.add)
    else:
        counts = reduce_taps(windows(mask, win, outs, befores, 0), n, np.add)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (total / counts).astype(x.dtype, copy=False)


def _average_pool(x, *, kernel_shape, strides=None, pads=None, auto_pad="NOTSET", dilations=None,
                  ceil_mode=0, count_include_pad=0):
    """Average pooling over N-d windows (count_include_pad, ceil_mode, dilations, auto_pad)."""
    win = _window_of(x, kernel_shape, strides, pads, auto_pad, dilations, ceil_mode)
    return average_pool_nd(x, win, bool(count_include_pad))


_POOL_BASE = {"auto_pad": "NOTSET", "kernel_shape": REQUIRED, "pads": None, "strides": None}
_AVG_V7 = {**_POOL_BASE, "count_include_pad": 0}
_AVG_V10 = {**_AVG_V7, "ceil_mode": 0}
_AVG_V19 = {**_AVG_V10, "dilations": None}
for _since, _attrs in ((1, _POOL_BASE), (7, _AVG_V7), (10, _AVG_V10), (19, _AVG_V19)):
    defop("AveragePool", inputs=["X"], outputs=["Y"], attrs=_attrs, since=_since,
          infer=_infer_pool)(_average_pool)


# --- MaxPool --------------------------------------------------------------------------------------
def _lowest(dt: np.dtype):
    return np.iinfo(dt).min if dt.kind in "iu" else -np.inf


def max_pool_nd(x: np.ndarray, win: Window, with_indices: bool = False, storage_order: int = 0):
    """Max over each window (padding never wins); optionally the flat index of each maximum in
    `x` (row-major, or column-major over the spatial axes when `storage_order` is 1)."""
    n = win.n
    outs, befores, _ = win.resolve(x.shape[2:])
    ct = compute_dtype(x.dtype)
    xc = x.astype(ct, copy=False)
    view = windows(xc, win, outs, befores, _lowest(ct))
    if not with_indices:
        return reduce_taps(view, n, np.maximum).astype(x.dtype, copy=False)
    N, C = x.shape[:2]
    flat = view.reshape(N, C, *outs, math.prod(win.kernel))
    arg = np.argmax(flat, axis=-1)
    y = np.take_along_axis(flat, arg[..., None], axis=-1)[..., 0]
    ktaps = np.unravel_index(arg, win.kernel)
    spatial = x.shape[2:]
    index = np.zeros(arg.shape, dtype=np.int64)
    for i in range(n):
        o = np.arange(outs[i]).reshape((1, 1) + tuple(-1 if j == i else 1 for j in range(n)))
        coord = o * win.strides[i] - befores[i] + ktaps[i] * win.dilations[i]
        if storage_order:
            index += coord * math.prod(spatial[:i])
        else:
            index += coord * math.prod(spatial[i + 1:])
    plane = math.prod(spatial)
    index += (np.arange(N).reshape((N, 1) + (1,) * n) * C
              + np.arange(C).reshape((1, C) + (1,) * n)) * plane
    return y.astype(x.dtype, copy=False), index


def _infer_max_pool(x, **attrs):
    _check_float_or(x, ("int8", "uint8"))
    shape = _pool_shape(x, attrs)
    return infer.tensor(x.dtype, shape), infer.tensor("int64", shape)


def _max_pool(x, *, kernel_shape, strides=None, pads=None, auto_pad="NOTSET", dilations=None,
              ceil_mode=0, storage_order=0):
    """Max pooling over N-d windows; the optional second output holds the argmax indices."""
    win = _window_of(x, kernel_shape, strides, pads, auto_pad, dilations, ceil_mode)
    if num_outputs(1) > 1:
        return max_pool_nd(x, win, True, int(storage_order))
    return max_pool_nd(x, win)


_MAX_V8 = {**_POOL_BASE, "storage_order": 0}
_MAX_V10 = {**_MAX_V8, "ceil_mode": 0, "dilations": None}
defop("MaxPool", inputs=["X"], outputs=["Y"], attrs=_POOL_BASE, since=1,
      infer=_infer_max_pool)(_max_pool)
for _since, _attrs in ((8, _MAX_V8), (10, _MAX_V10), (12, _MAX_V10)):
    defop("MaxPool", inputs=["X"], outputs=["Y", "Indices?"], attrs=_attrs, since=_since,
          infer=_infer_max_pool)(_max_pool)


# --- LpPool ---------------------------------------------------------------------------------------
def _lp_norm(total_pow: np.ndarray, p: float) -> np.ndarray:
    return np.power(total_pow, 1.0 / p)


def _lp_pool(x, *, kernel_shape, p=2, strides=None, pads=None, auto_pad="NOTSET", dilations=None,
             ceil_mode=0):
    """Lp-norm pooling: (sum over the window of |x|^p)^(1/p); padding contributes zero."""
    win = _window_of(x, kernel_shape, strides, pads, auto_pad, dilations, ceil_mode)
    outs, befores, _ = win.resolve(x.shape[2:])
    ct = compute_dtype(x.dtype)
    powered = np.power(np.abs(x.astype(ct, copy=False)), ct.type(p))
    total = reduce_taps(windows(powered, win, outs, befores, 0), win.n, np.add)
    return _lp_norm(total, float(p)).astype(x.dtype, copy=False)


_LP_V1 = {"auto_pad": "NOTSET", "kernel_shape": None, "p": 2.0, "pads": None, "strides": None}
_LP_V2 = {**_POOL_BASE, "p": 2}
_LP_V18 = {**_LP_V2, "ceil_mode": 0, "dilations": None}
for _since, _attrs in ((1, _LP_V1), (2, _LP_V2), (18, _LP_V18)):
    defop("LpPool", inputs=["X"], outputs=["Y"], attrs=_attrs, since=_since,
          infer=_infer_pool)(_lp_pool)


# --- Global pools ---------------------------------------------------------------------------------
def _infer_global(x, **attrs):
    _check_float_or(x)
    if x.shape is None:
        return infer.tensor(x.dtype)
    if len(x.shape) < 2:
        raise InferError(f"X has rank {len(x.shape)}, global pooling takes (N, C, D1, ...) tensors")
    return infer.tensor(x.dtype, (x.shape[0], x.shape[1]) + (1,) * (len(x.shape) - 2))


def _spatial_axes(x) -> tuple[int, ...]:
    if x.ndim < 2:
        raise ValueError(f"X has shape {list(x.shape)}: global pooling takes (N, C, D1, ...) tensors")
    return tuple(range(2, x.ndim))


@defop("GlobalAveragePool", inputs=["X"], outputs=["Y"], infer=_infer_global)
def global_average_pool(x):
    """Mean over all spatial axes, kept as size-1 dims."""
    ct = compute_dtype(x.dtype)
    return x.astype(ct, copy=False).mean(axis=_spatial_axes(x), keepdims=True).astype(x.dtype, copy=False)


@defop("GlobalMaxPool", inputs=["X"], outputs=["Y"], infer=_infer_global)
def global_max_pool(x):
    """Max over all spatial axes, kept as size-1 dims."""
    ct = compute_dtype(x.dtype)
    return x.astype(ct, copy=False).max(axis=_spatial_axes(x), keepdims=True).astype(x.dtype, copy=False)


def _global_lp_pool(x, *, p=2):
    """Lp norm over all spatial axes, kept as size-1 dims."""
    ct = compute_dtype(x.dtype)
    powered = np.power(np.abs(x.astype(ct, copy=False)), ct.type(p))
    total = powered.sum(axis=_spatial_axes(x), keepdims=True)
    return _lp_norm(total, float(p)).astype(x.dtype, copy=False)


defop("GlobalLpPool", inputs=["X"], outputs=["Y"], attrs={"p": 2.0}, since=1,
      infer=_infer_global)(_global_lp_pool)
defop("GlobalLpPool", inputs=["X"], outputs=["Y"], attrs={"p": 2}, since=2,
      infer=_infer_global)(_global_lp_pool)


# --- MaxUnpool ------------------------------------------------------------------------------------
def _unpool_sizes(in_sizes, kernel, strides, pads, error=ValueError):
    n = len(kernel)
    strides = list(strides) if strides else [1] * n
    pads = list(pads) if pads else [0] * (2 * n)
    if len(strides) != n or len(pads) != 2 * n:
        raise error(f"kernel_shape {list(kernel)}, strides {strides} and pads {pads} do not fit "
                    f"{n} spatial axes")
    return [(int(d) - 1) * strides[i] + kernel[i] - pads[i] - pads[i + n] if infer.known_int(d) else None
            for i, d in enumerate(in_sizes)]


def _infer_max_unpool(x, indices, output_shape=None, **attrs):
    _check_float_or(x)
    if indices is not None and indices.dtype is not None and indices.dtype.name != "int64":
        raise InferError(f"I has dtype {indices.dtype.name}, MaxUnpool takes int64 indices")
    if output_shape is not None:
        shp = infer.const(output_shape)
        if shp is not None:
            return infer.tensor(x.dtype, [int(v) for v in np.asarray(shp).reshape(-1)])
        r = infer.rank_of(x)
        if r is None and output_shape.shape is not None and infer.known_int(output_shape.shape[0]):
            r = int(output_shape.shape[0])
        return infer.tensor(x.dtype, None if r is None else (None,) * r)
    n = spatial_rank(x)
    if n is None:
        return infer.tensor(x.dtype, (None,) * (len(attrs["kernel_shape"]) + 2))
    if len(attrs["kernel_shape"]) != n:
        raise InferError(f"kernel_shape {list(attrs['kernel_shape'])} does not fit {n} spatial axes")
    outs = _unpool_sizes(x.shape[2:], attrs["kernel_shape"], attrs["strides"], attrs["pads"], InferError)
    return infer.tensor(x.dtype, (x.shape[0], x.shape[1], *outs))


@defop("MaxUnpool", inputs=["X", "I", "output_shape?"], outputs=["output"], since=9,
       attrs={"kernel_shape": REQUIRED, "pads": None, "strides": None}, infer=_infer_max_unpool)
def max_unpool(x, indices, output_shape=None, *, kernel_shape, pads, strides):
    """Scatter `x` to the flat positions `indices` of a zero tensor (the inverse of MaxPool's
    Indices). The indices address the unpooled shape implied by the attributes; a larger
    `output_shape` extends it with zeros at the end of each axis."""
    n = x.ndim - 2
    if indices.shape != x.shape:
        raise ValueError(f"I has shape {list(indices.shape)}, it must match X {list(x.shape)}")
    natural = (*x.shape[:2], *_unpool_sizes(x.shape[2:], kernel_shape, strides, pads))
    total = math.prod(natural)
    flat_idx = indices.reshape(-1).astype(np.int64)
    if flat_idx.size and (flat_idx.min() < 0 or flat_idx.max() >= total):
        raise ValueError(f"I holds indices outside [0, {total}) for the unpooled shape {list(natural)}")
    y = np.zeros(total, dtype=x.dtype)
    y[flat_idx] = x.reshape(-1)
    y = y.reshape(natural)
    if output_shape is None:
        return y
    shape = [int(v) for v in np.asarray(output_shape).reshape(-1)]
    if len(shape) != n + 2:
        raise ValueError(f"output_shape {shape} must have rank {n + 2}")
    out = np.zeros(shape, dtype=x.dtype)
    common = tuple(slice(0, min(a, b)) for a, b in zip(shape, natural))
    out[common] = y[common]
    return out


# --- MaxRoiPool -----------------------------------------------------------------------------------
def _infer_max_roi_pool(x, rois, **attrs):
    _check_float_or(x)
    ph, pw = (list(attrs["pooled_shape"]) + [None, None])[:2]
    if len(attrs["pooled_shape"]) != 2:
        raise InferError(f"pooled_shape {list(attrs['pooled_shape'])} must have 2 values")
    if infer.rank_of(x) not in (None, 4) or infer.rank_of(rois) not in (None, 2):
        raise InferError("MaxRoiPool takes X of rank 4 and rois of shape (num_rois, 5)")
    num = rois.shape[0] if rois.shape is not None else None
    c = x.shape[1] if x.shape is not None else None
    return infer.tensor(x.dtype, (num, c, ph, pw))


@defop("MaxRoiPool", inputs=["X", "rois"], outputs=["Y"],
       attrs={"pooled_shape": REQUIRED, "spatial_scale": 1.0}, infer=_infer_max_roi_pool)
def max_roi_pool(x, rois, *, pooled_shape, spatial_scale):
    """Max pooling over a grid of bins inside each region of interest (Fast R-CNN's RoI pool)."""
    N, C, H, W = x.shape
    ph, pw = (int(v) for v in pooled_shape)
    y = np.zeros((rois.shape[0], C, ph, pw), dtype=x.dtype)
    for r, roi in enumerate(np.asarray(rois, dtype=np.float64)):
        b = int(roi[0])
        if not 0 <= b < N:
            raise ValueError(f"roi {r} names batch {b}, X has {N}")
        # coordinates round half away from zero, as in the original Caffe kernel
        x1, y1, x2, y2 = (int(np.sign(v) * np.floor(abs(v) * spatial_scale + 0.5)) for v in roi[1:])
        rh, rw = max(y2 - y1 + 1, 1), max(x2 - x1 + 1, 1)
        for i in range(ph):
            h0 = min(max(int(np.floor(i * rh / ph)) + y1, 0), H)
            h1 = min(max(int(np.ceil((i + 1) * rh / ph)) + y1, 0), H)
            for j in range(pw):
                w0 = min(max(int(np.floor(j * rw / pw)) + x1, 0), W)
                w1 = min(max(int(np.ceil((j + 1) * rw / pw)) + x1, 0), W)
                if h1 > h0 and w1 > w0:
                    y[r, :, i, j] = x[b, :, h0:h1, w0:w1].max(axis=(1, 2))
    return y
