"""RoiAlign: pooling of regions of interest with bilinear sampling (Mask R-CNN).

Sampling follows the common implementation (Detectron, ONNX Runtime): a sample more than one pixel
outside the feature map contributes 0; one inside is clamped to the map and interpolated
bilinearly. In "max" mode each sample contributes the largest of its four weighted corner values.
"""

import math

import numpy as np

from .. import infer
from ..infer import InferError
from ..registry import defop


def _roi_align_infer(x, rois, batch_indices, *, output_height, output_width, **attrs):
    xs, rs, bs = x.shape, rois.shape, batch_indices.shape
    if xs is not None and len(xs) != 4:
        raise InferError(f"RoiAlign X must be 4-D (N, C, H, W), got rank {len(xs)}")
    if rs is not None and (len(rs) != 2 or (infer.known_int(rs[1]) and rs[1] != 4)):
        raise InferError(f"RoiAlign rois must be [num_rois, 4], got {list(rs)}")
    if bs is not None and len(bs) != 1:
        raise InferError(f"RoiAlign batch_indices must be 1-D, got rank {len(bs)}")
    num = rs[0] if rs is not None else (bs[0] if bs is not None else None)
    if rs is not None and bs is not None and not infer.known_int(num):
        num = bs[0] if infer.known_int(bs[0]) else num
    return infer.tensor(x.dtype, (num, xs[1] if xs is not None else None, int(output_height), int(output_width)))


def _axis_samples(start: float, extent: float, pooled: int, grid: int, size: int):
    """Sample positions along one axis: (low index, high index, low weight, high weight), each
    [pooled * grid]; samples outside the map get zero weights."""
    bin_size = extent / pooled
    p = np.repeat(np.arange(pooled), grid)
    i = np.tile(np.arange(grid), pooled)
    pos = start + p * bin_size + (i + 0.5) * bin_size / grid
    valid = (pos >= -1.0) & (pos <= size)
    pos = np.maximum(pos, 0.0)
    low = np.floor(pos).astype(np.int64)
    at_edge = low >= size - 1
    low = np.where(at_edge, size - 1, low)
    high = np.where(at_edge, size - 1, low + 1)
    pos = np.where(at_edge, low.astype(np.float64), pos)
    frac = pos - low
    return low, high, (1 - frac) * valid, frac * valid


def _roi_align(x, rois, batch_indices, *, mode, output_height, output_width, sampling_ratio,
               spatial_scale, half_pixel: bool):
    x = np.asarray(x)
    rois = np.asarray(rois, dtype=np.float64)
    batch_indices = np.asarray(batch_indices).astype(np.int64)
    if x.ndim != 4 or rois.ndim != 2 or rois.shape[1] != 4 or batch_indices.shape != (rois.shape[0],):
        raise ValueError(f"RoiAlign needs X [N, C, H, W], rois [R, 4] and batch_indices [R]; got "
                         f"{list(x.shape)}, {list(rois.shape)}, {list(batch_indices.shape)}")
    if mode not in ("avg", "max"):
        raise ValueError(f"RoiAlign mode must be 'avg' or 'max', got {mode!r}")
    oh, ow = int(output_height), int(output_width)
    _, c, h, w = x.shape
    out = np.zeros((rois.shape[0], c, oh, ow), np.float64)
    offset = 0.5 if half_pixel else 0.0
    xf = x.astype(np.float64)
    for r, (x1, y1, x2, y2) in enumerate(rois * float(spatial_scale) - offset):
        b = int(batch_indices[r])
        if not 0 <= b < x.shape[0]:
            raise ValueError(f"RoiAlign batch index {b} is out of range for batch size {x.shape[0]}")
        rw, rh = x2 - x1, y2 - y1
        if not half_pixel:
            rw, rh = max(rw, 1.0), max(rh, 1.0)
        gh = int(sampling_ratio) if sampling_ratio > 0 else int(math.ceil(rh / oh))
        gw = int(sampling_ratio) if sampling_ratio > 0 else int(math.ceil(rw / ow))
        if gh <= 0 or gw <= 0:
            continue
        ylo, yhi, wylo, wyhi = _axis_samples(y1, rh, oh, gh, h)
        xlo, xhi, wxlo, wxhi = _axis_samples(x1, rw, ow, gw, w)
        img = xf[b]
        if mode == "avg":
            # bilinear sampling is separable: average = Ay @ img @ Ax^T
            ay = np.zeros((oh * gh, h))
            np.add.at(ay, (np.arange(oh * gh), ylo), wylo)
            np.add.at(ay, (np.arange(oh * gh), yhi), wyhi)
            ax = np.zeros((ow * gw, w))
            np.add.at(ax, (np.arange(ow * gw), xlo), wxlo)
            np.add.at(ax, (np.arange(ow * gw), xhi), wxhi)
            ay = ay.reshape(oh, gh, h).mean(axis=1)
            ax = ax.reshape(ow, gw, w).mean(axis=1)
            out[r] = ay @ img @ ax.T
        else:
            corners = [img[:, yi][:, :, xi] * (wy[:, None] * wx[None, :])
                       for yi, wy in ((ylo, wylo), (yhi, wyhi)) for xi, wx in ((xlo, wxlo), (xhi, wxhi))]
            m = np.maximum.reduce(corners)  # [C, oh*gh, ow*gw]
            out[r] = m.reshape(c, oh, gh, ow, gw).max(axis=(2, 4))
    return out.astype(x.dtype)


_ATTRS_10 = {"mode": "avg", "output_height": 1, "output_width": 1, "sampling_ratio": 0, "spatial_scale": 1.0}


@defop("RoiAlign", inputs=["X", "rois", "batch_indices"], outputs=["Y"], attrs=_ATTRS_10, since=10,
       infer=_roi_align_infer)
def roi_align_10(x, rois, batch_indices, **attrs):
    """RoiAlign without the half-pixel shift (opset 10 behaves as 'output_half_pixel')."""
    return _roi_align(x, rois, batch_indices, half_pixel=False, **attrs)


@defop("RoiAlign", inputs=["X", "rois", "batch_indices"], outputs=["Y"],
       attrs={**_ATTRS_10, "coordinate_transformation_mode": "half_pixel"}, since=16,
       infer=_roi_align_infer)
def roi_align_16(x, rois, batch_indices, *, coordinate_transformation_mode, **attrs):
    """RoiAlign; coordinate_transformation_mode 'half_pixel' shifts input coordinates by -0.5."""
    if coordinate_transformation_mode not in ("half_pixel", "output_half_pixel"):
        raise ValueError(f"RoiAlign coordinate_transformation_mode must be 'half_pixel' or "
                         f"'output_half_pixel', got {coordinate_transformation_mode!r}")
    return _roi_align(x, rois, batch_indices, half_pixel=coordinate_transformation_mode == "half_pixel",
                      **attrs)
