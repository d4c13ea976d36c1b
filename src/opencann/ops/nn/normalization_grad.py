"""LayerNormalizationGrad (domain `ai.opencann`): the backward of LayerNormalization from the
forward's Mean and InvStdDev, what a training graph keeps. One op instead of the dozen elementwise
ops and reductions it decomposes into, so the cpu backend runs it as one pass over dY and X."""

from __future__ import annotations

import numpy as np

from ..infer import InferError, tensor
from ..registry import OPENCANN_DOMAIN, defop


def _infer(dy, x, mean, inv_std, scale=None, *, axis):
    if dy.shape is not None and x.shape is not None and len(dy.shape) != len(x.shape):
        raise InferError(f"dY and X must have one shape, got {dy.type!r} and {x.type!r}")
    if dy.dtype != x.dtype:
        raise InferError(f"dY and X must share a dtype, got {dy.dtype} and {x.dtype}")
    rank = len(x.shape) if x.shape is not None else None
    if rank is not None and not -rank <= axis < max(rank, 1):
        raise InferError(f"axis {axis} is out of range for an input of rank {rank}")
    norm = None if rank is None else x.shape[axis % rank:]
    return (tensor(x.dtype, x.shape), tensor(x.dtype, norm if scale is None else scale.shape),
            tensor(x.dtype, norm if scale is None else scale.shape))


@defop("LayerNormalizationGrad", domain=OPENCANN_DOMAIN,
       inputs=["dY", "X", "Mean", "InvStdDev", "Scale?"], outputs=["dX", "dScale?", "dB?"],
       attrs={"axis": -1}, infer=_infer)
def layer_norm_grad(dy, x, mean, inv_std, scale, *, axis):
    """With x̂ = (X - Mean) * InvStdDev over the dims from `axis` on and g = dY * Scale:
    dX = InvStdDev * (g - mean(g) - x̂ * mean(g * x̂)), dScale = sum of dY * x̂ and dB = sum of dY
    over the leading dims. Computed in float64, returned in X's dtype."""
    axes = tuple(range(axis % x.ndim, x.ndim))
    lead = tuple(range(axis % x.ndim))
    x64, dy64 = x.astype(np.float64), dy.astype(np.float64)
    rs = inv_std.astype(np.float64)
    xhat = (x64 - mean.astype(np.float64)) * rs
    g = dy64 if scale is None else dy64 * scale.astype(np.float64)
    dx = rs * (g - g.mean(axis=axes, keepdims=True) - xhat * (g * xhat).mean(axis=axes, keepdims=True))
    return (dx.astype(x.dtype), (dy64 * xhat).sum(axis=lead).astype(x.dtype),
            dy64.sum(axis=lead).astype(x.dtype))
