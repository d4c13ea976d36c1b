"""Padding and cropping: Pad (constant, reflect, edge, wrap; all versions) and CenterCropPad."""

from __future__ import annotations

import numpy as np

from ..infer import InferError, known_int, tensor
from ..registry import REQUIRED
from ._common import check_axes, const_ints, defop, dim_add, ints_of, length_of, normalize_axes

_MODES = ("constant", "reflect", "edge", "wrap")


def _full_pads(pads: list[int], rank: int, axes) -> tuple[list[int], list[int]]:
    """(begins, ends) for every axis from ONNX's [b1, b2, ..., e1, e2, ...] over `axes`."""
    axes = list(range(rank)) if axes is None else axes
    if len(pads) != 2 * len(axes):
        raise ValueError(f"pads {pads} must have 2 * {len(axes)} entries")
    begin, end = [0] * rank, [0] * rank
    n = len(axes)
    for i, a in enumerate(axes):
        begin[a] = pads[i]
        end[a] = pads[n + i]
    return begin, end


def _pad(x, pads, mode, value, axes=None):
    if mode not in _MODES:
        raise ValueError(f"mode must be one of {', '.join(_MODES)}; got {mode!r}")
    axes = None if axes is None else check_axes(axes, x.ndim)
    begin, end = _full_pads([int(p) for p in pads], x.ndim, axes)
    # negative pads crop first
    crop = tuple(slice(max(-b, 0), x.shape[i] - max(-e, 0)) for i, (b, e) in enumerate(zip(begin, end)))
    x = x[crop]
    widths = [(max(b, 0), max(e, 0)) for b, e in zip(begin, end)]
    if not any(b or e for b, e in widths):
        return x.copy()
    if mode == "constant":
        if value is None:
            value = x.dtype.type(0) if x.dtype != object else ""
        out = np.empty(tuple(d + b + e for d, (b, e) in zip(x.shape, widths)), dtype=x.dtype)
        out[...] = np.asarray(value).astype(x.dtype) if x.dtype != object else value
        out[tuple(slice(b, b + d) for d, (b, _) in zip(x.shape, widths))] = x
        return out
    for i, (b, e) in enumerate(widths):
        if (b or e) and x.shape[i] == 0:
            raise ValueError(f"mode {mode!r} cannot pad axis {i} of size 0")
    if mode == "reflect":
        for i, (b, e) in enumerate(widths):
            if (b or e) and x.shape[i] == 1:
                widths[i] = (0, 0)  # reflecting a single element repeats it
                x = np.repeat(x, 1 + b + e, axis=i)
    return np.pad(x, widths, mode={"edge": "edge", "reflect": "reflect", "wrap": "wrap"}[mode])


def _scalar(v):
    """An optional scalar input's value (None when absent or empty)."""
    if v is None or not np.size(v):
        return None
    return np.asarray(v).reshape(-1)[0]


def _infer_pad_dims(x, pads, axes=None, mode="constant"):
    if mode not in _MODES:
        raise InferError(f"mode must be one of {', '.join(_MODES)}; got {mode!r}")
    s = x.shape
    if s is None:
        return tensor(x.dtype, None)
    if pads is None:
        if axes is None:
            return tensor(x.dtype, (None,) * len(s))
        return tensor(x.dtype, tuple(None if i in axes else d for i, d in enumerate(s)))
    ax = list(range(len(s))) if axes is None else axes
    if len(pads) != 2 * len(ax):
        raise InferError(f"pads {pads} must have 2 * {len(ax)} entries")
    out = list(s)
    n = len(ax)
    for i, a in enumerate(ax):
        out[a] = dim_add(dim_add(s[a], pads[i]), pads[n + i])
        if known_int(out[a]) and out[a] < 0:
            raise InferError(f"pads {pads} crop axis {a} below zero")
    return tensor(x.dtype, tuple(out))


@defop("Pad", inputs=["data"], outputs=["output"],
       attrs={"paddings": REQUIRED, "mode": "constant", "value": 0.0},
       infer=lambda data, *, paddings, mode, value: _infer_pad_dims(data, list(paddings), None, mode))
def pad_v1(data, *, paddings, mode, value):
    """Pad by the `paddings` attribute (opset 1)."""
    return _pad(data, paddings, mode, value)


@defop("Pad", inputs=["data"], outputs=["output"],
       attrs={"pads": REQUIRED, "mode": "constant", "value": 0.0},
       infer=lambda data, *, pads, mode, value: _infer_pad_dims(data, list(pads), None, mode), since=2)
def pad_v2(data, *, pads, mode, value):
    """Pad by the `pads` attribute [b1, b2, ..., e1, e2, ...]; negative pads crop."""
    return _pad(data, pads, mode, value)


def _infer_pad11(data, pads, constant_value=None, axes=None, *, mode):
    ax = None
    if axes is not None:
        ax = const_ints(axes)
        if ax is None:
            s = data.shape
            return tensor(data.dtype, None if s is None else (None,) * len(s))
        if data.shape is not None:
            ax = normalize_axes(ax, len(data.shape))
    p = const_ints(pads)
    if p is None and length_of(pads) is not None and ax is None and data.shape is not None:
        if length_of(pads) != 2 * len(data.shape):
            raise InferError(f"pads has {length_of(pads)} entries for rank {len(data.shape)}")
    return _infer_pad_dims(data, p, ax, mode)


@defop("Pad", inputs=["data", "pads", "constant_value?"], outputs=["output"], attrs={"mode": "constant"},
       infer=_infer_pad11, since=11)
def pad_v11(data, pads, constant_value=None, *, mode):
    """Pad by input `pads` [b1, b2, ..., e1, e2, ...] with `mode` constant, reflect or edge."""
    return _pad(data, ints_of(pads), mode, _scalar(constant_value))


@defop("Pad", inputs=["data", "pads", "constant_value?", "axes?"], outputs=["output"], attrs={"mode": "constant"},
       infer=_infer_pad11, since=18)
def pad_v18(data, pads, constant_value=None, axes=None, *, mode):
    """Pad the listed `axes` (all when absent) by `pads`, with `mode` constant, reflect, edge or wrap."""
    return _pad(data, ints_of(pads), mode, _scalar(constant_value), ints_of(axes))


# --- CenterCropPad ---------------------------------------------------------------------------------
def _infer_center_crop_pad(x, shape, *, axes):
    s = x.shape
    target = const_ints(shape)
    if s is None:
        return tensor(x.dtype, None)
    ax = list(range(len(s))) if axes is None else normalize_axes(axes, len(s))
    if target is None:
        return tensor(x.dtype, tuple(None if i in ax else d for i, d in enumerate(s)))
    if len(target) != len(ax):
        raise InferError(f"shape {target} must have one entry per axis ({len(ax)})")
    out = list(s)
    for a, t in zip(ax, target):
        out[a] = t
    return tensor(x.dtype, tuple(out))


@defop("CenterCropPad", inputs=["input_data", "shape"], outputs=["output_data"], attrs={"axes": None},
       infer=_infer_center_crop_pad, since=18)
def center_crop_pad(x, shape, *, axes):
    """Crop (centered, window start rounded down) or zero-pad (extra pixel on the right) each of
    `axes` to `shape`."""
    target = ints_of(shape)
    ax = list(range(x.ndim)) if axes is None else check_axes(axes, x.ndim)
    if len(target) != len(ax):
        raise ValueError(f"shape {target} must have one entry per axis ({len(ax)})")
    src = [slice(None)] * x.ndim
    dst = [slice(None)] * x.ndim
    out_shape = list(x.shape)
    for a, t in zip(ax, target):
        d = x.shape[a]
        out_shape[a] = t
        if t < d:
            b = (d - t) // 2
            src[a] = slice(b, b + t)
        elif t > d:
            b = (t - d) // 2
            dst[a] = slice(b, b + d)
    out = np.zeros(out_shape, dtype=x.dtype)
    out[tuple(dst)] = x[tuple(src)]
    return out
