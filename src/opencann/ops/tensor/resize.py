"""Resize (all versions) and Upsample.

Resizing is separable: each resized axis gets its own 1-D plan, either an index map (nearest) or a
weight matrix of shape (out_len, in_len) (linear, cubic, with antialiasing and exclude_outside folded
into the weights), and the plans are applied one axis after another. Output positions that
`tf_crop_and_resize` maps outside the input on any axis take `extrapolation_value`.
"""

from __future__ import annotations

import math

import numpy as np

from ..infer import InferError, known_int, tensor
from ..registry import REQUIRED
from ._common import check_axes, const_ints, defop, normalize_axes

_MODES = ("nearest", "linear", "cubic")
_CTMS = ("half_pixel", "half_pixel_symmetric", "pytorch_half_pixel", "align_corners", "asymmetric",
         "tf_crop_and_resize")
_NEAREST = ("round_prefer_floor", "round_prefer_ceil", "floor", "ceil")


# --- 1-D plans -------------------------------------------------------------------------------------
def _source_coords(out_len: int, in_len: int, scale: float, ctm: str, roi_start: float, roi_end: float):
    """Where each output position samples the input, in input coordinates (float64). The resized
    length in the formulas is `in_len * scale`, which may be fractional when scales were given."""
    x = np.arange(out_len, dtype=np.float64)
    length = in_len * scale
    if ctm == "half_pixel":
        return (x + 0.5) / scale - 0.5
    if ctm == "half_pixel_symmetric":
        offset = in_len / 2 * (1 - out_len / length)
        return offset + (x + 0.5) / scale - 0.5
    if ctm == "pytorch_half_pixel":  # as PyTorch: a single output pixel samples input pixel 0
        return (x + 0.5) / scale - 0.5 if out_len > 1 else np.zeros_like(x)
    if ctm == "align_corners":
        return x * (in_len - 1) / (length - 1) if length > 1 else np.zeros_like(x)
    if ctm == "asymmetric":
        return x / scale
    if ctm == "tf_crop_and_resize":
        if length != 1:
            return x * (roi_end - roi_start) * (in_len - 1) / (length - 1) + roi_start * (in_len - 1)
        # the crop's centre, summed in the order ONNX's test generator uses (float32 roi)
        return np.full_like(x, (roi_end - roi_start) * (in_len - 1) / 2 + roi_start * (in_len - 1))
    raise ValueError(f"coordinate_transformation_mode must be one of {', '.join(_CTMS)}; got {ctm!r}")


def _nearest_index(xo: np.ndarray, in_len: int, nearest_mode: str) -> np.ndarray:
    if nearest_mode == "round_prefer_floor":
        i = np.ceil(xo - 0.5)
    elif nearest_mode == "round_prefer_ceil":
        i = np.floor(xo + 0.5)
    elif nearest_mode == "floor":
        i = np.floor(xo)
    elif nearest_mode == "ceil":
        i = np.ceil(xo)
    else:
        raise ValueError(f"nearest_mode must be one of {', '.join(_NEAREST)}; got {nearest_mode!r}")
    return np.clip(i, 0, in_len - 1).astype(np.int64)


def _cubic_kernel(t: np.ndarray, a: float) -> np.ndarray:
    t = np.abs(t)
    t2, t3 = t * t, t * t * t
    near = (a + 2) * t3 - (a + 3) * t2 + 1
    far = a * t3 - 5 * a * t2 + 8 * a * t - 4 * a
    return np.where(t <= 1, near, np.where(t < 2, far, 0.0))


def _taps(xo: np.ndarray, in_len: int, scale: float, mode: str, a: float, antialias: bool,
          exclude_outside: bool) -> tuple[np.ndarray, np.ndarray]:
    """Linear or cubic interpolation as taps: (indices, weights), both (out_len, taps)."""
    support = 1 if mode == "linear" else 2
    s = min(scale, 1.0) if antialias else 1.0  # antialiasing stretches the filter when downscaling
    start = int(math.floor(-support / s)) + 1
    offsets = np.arange(start, 2 - start)
    base = np.floor(xo)
    ratio = xo - base
    args = s * (offsets[None, :] - ratio[:, None])
    w = np.clip(1 - np.abs(args), 0, 1) if mode == "linear" else _cubic_kernel(args, a)
    if antialias:
        w = w / w.sum(axis=1, keepdims=True)
    idx = base.astype(np.int64)[:, None] + offsets[None, :]
    if exclude_outside:
        w = np.where((idx < 0) | (idx >= in_len), 0.0, w)
        total = w.sum(axis=1, keepdims=True)
        w = w / np.where(total == 0, 1.0, total)
    return np.clip(idx, 0, in_len - 1), w  # outside neighbours repeat the edge


def _is_identity(idx: np.ndarray, w: np.ndarray) -> bool:
    """Whether the taps copy input i to output i (a scale of 1 on this axis)."""
    own = idx == np.arange(idx.shape[0])[:, None]
    return bool(np.all(w[~own] == 0) and np.all(np.where(own, w, 0).sum(axis=1) == 1))


def _apply_taps(x: np.ndarray, idx: np.ndarray, w: np.ndarray, axis: int) -> np.ndarray:
    """Interpolate `x` along `axis`: out[i] = sum_j w[i, j] * x[idx[i, j]]."""
    n_out, n_taps = idx.shape
    n_in = x.shape[axis]
    if n_taps * 4 >= n_in:  # wide filters (antialiased downscaling): one dense matrix product
        m = np.zeros((n_out, n_in), dtype=np.float64)
        np.add.at(m, (np.repeat(np.arange(n_out), n_taps), idx.reshape(-1)), w.reshape(-1))
        y = np.tensordot(m.astype(x.dtype, copy=False), x, axes=([1], [axis]))
        return np.moveaxis(y, 0, axis)
    shape = [1] * x.ndim
    shape[axis] = n_out
    out = None
    for j in range(n_taps):
        term = np.take(x, idx[:, j], axis=axis) * w[:, j].astype(x.dtype).reshape(shape)
        out = term if out is None else out + term
    return out


def _resize(x: np.ndarray, axes: list[int], out_sizes: list[int], scales: list[float], *, mode="nearest",
            ctm="half_pixel", nearest_mode="round_prefer_floor", cubic_coeff_a=-0.75, exclude_outside=0,
            antialias=0, extrapolation_value=0.0, roi=None) -> np.ndarray:
    if mode not in _MODES:
        raise ValueError(f"mode must be one of {', '.join(_MODES)}; got {mode!r}")
    if x.dtype.kind in "fc" and x.dtype.itemsize >= 4:
        work = x
    else:
        work = x.astype(np.float32)
    exact = mode == "nearest"  # nearest only moves elements: keep the dtype (ints, strings) exactly
    if exact:
        work = x
    outside = np.zeros((), dtype=bool)
    for k, (axis, n_out, scale) in enumerate(zip(axes, out_sizes, scales)):
        n_in = x.shape[axis]
        # roi and scales keep their float32 values: coordinates then round exactly as ONNX's own
        # float32 arithmetic does at the .5 boundaries of nearest mode
        rs, re = (0.0, 1.0) if roi is None else (roi[k], roi[len(axes) + k])
        xo = _source_coords(n_out, n_in, scale, ctm, rs, re)
        if ctm == "tf_crop_and_resize":
            out_of_range = (xo < 0) | (xo > n_in - 1)
            if out_of_range.any():
                shape = [1] * x.ndim
                shape[axis] = n_out
                outside = outside | out_of_range.reshape(shape)
        if n_in == 0 or n_out == 0:
            new_shape = list(work.shape)
            new_shape[axis] = n_out
            work = np.zeros(new_shape, work.dtype)
            continue
        if mode == "nearest":
            idx = _nearest_index(xo, n_in, nearest_mode)
            if n_out != n_in or not np.array_equal(idx, np.arange(n_in)):
                work = np.take(work, idx, axis=axis)
        else:
            idx, w = _taps(xo, n_in, scale, mode, cubic_coeff_a, bool(antialias), bool(exclude_outside))
            if not (n_out == n_in and _is_identity(idx, w)):
                work = _apply_taps(work, idx, w, axis)
    if outside.any():
        work = np.where(outside, np.asarray(extrapolation_value).astype(work.dtype), work)
    if work.dtype != x.dtype:
        if x.dtype.kind in "iu":
            info = np.iinfo(x.dtype)
            work = np.clip(np.rint(work), info.min, info.max)
        work = work.astype(x.dtype)
    return np.ascontiguousarray(work)


# --- sizes and scales ------------------------------------------------------------------------------
def _present(a) -> np.ndarray | None:
    if a is None:
        return None
    a = np.asarray(a)
    return a.reshape(-1) if a.size else None


def _plan_sizes(in_shape, axes, scales, sizes, keep_aspect_ratio_policy):
    """(out_sizes, coordinate scales) for the resized axes."""
    in_len = [in_shape[a] for a in axes]
    if sizes is not None:
        sizes = [int(s) for s in sizes]
        if len(sizes) != len(axes):
            raise ValueError(f"sizes {sizes} must have one entry per resized axis ({len(axes)})")
        if keep_aspect_ratio_policy == "stretch":
            return sizes, [s / n if n else 1.0 for s, n in zip(sizes, in_len)]
        ratios = [s / n for s, n in zip(sizes, in_len)]
        if keep_aspect_ratio_policy == "not_larger":
            r = min(ratios)
        elif keep_aspect_ratio_policy == "not_smaller":
            r = max(ratios)
        else:
            raise ValueError("keep_aspect_ratio_policy must be stretch, not_larger or not_smaller; got "
                             f"{keep_aspect_ratio_policy!r}")
        return [int(math.floor(r * n + 0.5)) for n in in_len], [r] * len(axes)
    if scales is None:
        raise ValueError("one of scales and sizes must be given")
    scales = [np.float32(s) for s in scales]
    if len(scales) != len(axes):
        raise ValueError(f"scales {scales} must have one entry per resized axis ({len(axes)})")
    if any(s <= 0 for s in scales):
        raise ValueError(f"scales {scales} must be positive")
    return [int(math.floor(n * float(s))) for n, s in zip(in_len, scales)], scales


def _resize_v11(x, roi, scales, sizes, *, axes=None, keep_aspect_ratio_policy="stretch", mode, antialias=0,
                coordinate_transformation_mode, nearest_mode, cubic_coeff_a, exclude_outside,
                extrapolation_value):
    ax = list(range(x.ndim)) if axes is None else check_axes(axes, x.ndim)
    scales, sizes, roi = _present(scales), _present(sizes), _present(roi)
    if scales is not None and sizes is not None:
        raise ValueError("scales and sizes cannot both be given")
    if coordinate_transformation_mode not in _CTMS:
        raise ValueError(f"coordinate_transformation_mode must be one of {', '.join(_CTMS)}; got "
                         f"{coordinate_transformation_mode!r}")
    out_sizes, coord_scales = _plan_sizes(x.shape, ax, None if scales is None else scales.astype(np.float32),
                                          sizes, keep_aspect_ratio_policy)
    if roi is not None and coordinate_transformation_mode == "tf_crop_and_resize":
        if roi.size != 2 * len(ax):
            raise ValueError(f"roi must have 2 * {len(ax)} entries, got {roi.size}")
    else:
        roi = None
    return _resize(x, ax, out_sizes, coord_scales, mode=mode, ctm=coordinate_transformation_mode,
                   nearest_mode=nearest_mode, cubic_coeff_a=cubic_coeff_a, exclude_outside=exclude_outside,
                   antialias=antialias, extrapolation_value=extrapolation_value, roi=roi)


# --- inference -------------------------------------------------------------------------------------
def _infer_resize(x, roi=None, scales=None, sizes=None, *, axes=None, keep_aspect_ratio_policy="stretch",
                  mode="nearest", coordinate_transformation_mode="half_pixel", **_):
    if mode not in _MODES:
        raise InferError(f"mode must be one of {', '.join(_MODES)}; got {mode!r}")
    if coordinate_transformation_mode not in _CTMS:
        raise InferError(f"coordinate_transformation_mode must be one of {', '.join(_CTMS)}; got "
                         f"{coordinate_transformation_mode!r}")
    s = x.shape
    if s is None:
        return tensor(x.dtype, None)
    ax = list(range(len(s))) if axes is None else normalize_axes(axes, len(s))
    sz = None if sizes is None else const_ints(sizes)
    sc = None if scales is None else scales.const
    if sz is not None and len(sz) == 0:
        sz = None
    if sc is not None and np.size(sc) == 0:
        sc, scales = None, None
    out = list(s)
    if sz is not None:
        if len(sz) != len(ax):
            raise InferError(f"sizes {sz} must have one entry per resized axis ({len(ax)})")
        if keep_aspect_ratio_policy == "stretch":
            for a, n in zip(ax, sz):
                out[a] = n
        elif all(known_int(s[a]) for a in ax):
            try:
                dims, _ = _plan_sizes(s, ax, None, sz, keep_aspect_ratio_policy)
            except ValueError as e:
                raise InferError(str(e)) from None
            for a, n in zip(ax, dims):
                out[a] = n
        else:
            for a in ax:
                out[a] = None
    elif sc is not None:
        sc = [float(v) for v in np.asarray(sc, np.float32).reshape(-1)]
        if len(sc) != len(ax):
            raise InferError(f"scales {sc} must have one entry per resized axis ({len(ax)})")
        for a, f in zip(ax, sc):
            if f != 1.0:
                out[a] = int(math.floor(s[a] * f)) if known_int(s[a]) else None
    else:
        for a in ax:
            out[a] = None
    return tensor(x.dtype, tuple(out))


_ATTRS_11 = {"mode": "nearest", "coordinate_transformation_mode": "half_pixel", "nearest_mode": "round_prefer_floor",
             "cubic_coeff_a": -0.75, "exclude_outside": 0, "extrapolation_value": 0.0}
_ATTRS_18 = {**_ATTRS_11, "antialias": 0, "axes": None, "keep_aspect_ratio_policy": "stretch"}


@defop("Resize", inputs=["X", "roi", "scales", "sizes?"], outputs=["Y"], attrs=_ATTRS_11,
       infer=_infer_resize, since=11)
def resize_v11(x, roi, scales, sizes=None, **attrs):
    """Resize with nearest/linear/cubic interpolation; output size from `sizes`, or floor(in * scales)."""
    return _resize_v11(x, roi, scales, sizes, **attrs)


@defop("Resize", inputs=["X", "roi?", "scales?", "sizes?"], outputs=["Y"], attrs=_ATTRS_11,
       infer=_infer_resize, since=13)
def resize_v13(x, roi=None, scales=None, sizes=None, **attrs):
    """Resize (opset 13: roi and scales optional)."""
    return _resize_v11(x, roi, scales, sizes, **attrs)


@defop("Resize", inputs=["X", "roi?", "scales?", "sizes?"], outputs=["Y"], attrs=_ATTRS_18,
       infer=_infer_resize, since=18)
def resize(x, roi=None, scales=None, sizes=None, **attrs):
    """Resize over `axes` (all by default) with nearest/linear/cubic interpolation, optional
    antialiasing when downscaling, and `keep_aspect_ratio_policy` for `sizes`."""
    return _resize_v11(x, roi, scales, sizes, **attrs)


# --- Resize-10 and Upsample: asymmetric coordinates, nearest rounds down ----------------------------
def _upsample(x, scales, mode):
    scales = list(np.asarray(scales, np.float32).reshape(-1))
    if len(scales) != x.ndim:
        raise ValueError(f"scales {scales} must have one entry per axis ({x.ndim})")
    if mode == "bilinear":
        mode = "linear"
    if mode not in ("nearest", "linear"):
        raise ValueError(f"mode must be 'nearest' or 'linear', got {mode!r}")
    out_sizes = [int(math.floor(n * float(s))) for n, s in zip(x.shape, scales)]
    return _resize(x, list(range(x.ndim)), out_sizes, scales, mode=mode, ctm="asymmetric", nearest_mode="floor")


def _infer_upsample_scales(x, sc, mode):
    if mode not in ("nearest", "linear", "bilinear"):
        raise InferError(f"mode must be 'nearest' or 'linear', got {mode!r}")
    s = x.shape
    if s is None:
        return tensor(x.dtype, None)
    if sc is None:
        return tensor(x.dtype, (None,) * len(s))
    sc = [float(v) for v in np.asarray(sc, np.float32).reshape(-1)]
    if len(sc) != len(s):
        raise InferError(f"scales {sc} must have one entry per axis ({len(s)})")
    return tensor(x.dtype, tuple(d if f == 1.0 else int(math.floor(d * f)) if known_int(d) else None
                                 for d, f in zip(s, sc)))


@defop("Resize", inputs=["X", "scales"], outputs=["Y"], attrs={"mode": "nearest"},
       infer=lambda x, scales, *, mode: _infer_upsample_scales(x, scales.const, mode), since=10)
def resize_v10(x, scales, *, mode):
    """Resize by `scales` with asymmetric coordinates (opset 10)."""
    return _upsample(x, scales, mode)


def _hw_scales(x_rank: int, height_scale: float, width_scale: float):
    if x_rank != 4:
        raise ValueError(f"Upsample-1 takes a 4-D input, got rank {x_rank}")
    return [1.0, 1.0, height_scale, width_scale]


@defop("Upsample", inputs=["X"], outputs=["Y"],
       attrs={"height_scale": REQUIRED, "width_scale": REQUIRED, "mode": "nearest"},
       infer=lambda x, *, height_scale, width_scale, mode: _infer_upsample_scales(
           x, None if x.shape is None else [1.0, 1.0, height_scale, width_scale][-len(x.shape):], mode))
def upsample_v1(x, *, height_scale, width_scale, mode):
    """Upsample the H and W of an NCHW tensor (opset 1)."""
    return _upsample(x, _hw_scales(x.ndim, height_scale, width_scale), mode)


@defop("Upsample", inputs=["X"], outputs=["Y"], attrs={"scales": REQUIRED, "mode": "nearest"},
       infer=lambda x, *, scales, mode: _infer_upsample_scales(x, scales, mode), since=7)
def upsample_v7(x, *, scales, mode):
    """Upsample by the `scales` attribute (nearest or linear, asymmetric coordinates)."""
    return _upsample(x, scales, mode)


@defop("Upsample", inputs=["X", "scales"], outputs=["Y"], attrs={"mode": "nearest"},
       infer=lambda x, scales, *, mode: _infer_upsample_scales(x, scales.const, mode), since=9)
def upsample_v9(x, scales, *, mode):
    """Upsample by input `scales` (nearest or linear, asymmetric coordinates)."""
    return _upsample(x, scales, mode)
