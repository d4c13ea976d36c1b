"""Normalization layers: BatchNormalization, InstanceNormalization, LayerNormalization,
GroupNormalization, RMSNormalization, LRN, LpNormalization, MeanVarianceNormalization.

Statistics of float16/bfloat16 inputs are computed in float32 (for LayerNormalization,
GroupNormalization and RMSNormalization, in the dtype named by `stash_type`) and the result is cast
back to the input's dtype. Layouts are channel-first: X is [N, C, D1, ..., Dk].
"""

from __future__ import annotations

import numpy as np

from ... import dtypes
from .. import context, infer
from ..registry import REQUIRED, defop
from .activation import compute_dtype


def _channel_shape(x: np.ndarray) -> tuple:
    """Shape that puts a per-channel vector of length C against X = [N, C, D1, ..., Dk]."""
    return (-1,) + (1,) * (x.ndim - 2)


def _stash_dtype(stash_type: int) -> np.dtype:
    dt = dtypes.from_onnx(int(stash_type))
    if not dt.is_float:
        raise ValueError(f"stash_type {stash_type} ({dt.name}) is not a floating-point type")
    return dt.np


def _check_channels(x, params: dict, what: str = "C") -> None:
    """InferError when a 1-D parameter's known length differs from X's known channel dim."""
    if x.shape is None or len(x.shape) < 2 or not infer.known_int(x.shape[1]):
        return
    c = x.shape[1]
    for name, v in params.items():
        if v is None or v.shape is None or len(v.shape) != 1 or not infer.known_int(v.shape[0]):
            continue
        if v.shape[0] != c:
            raise infer.InferError(f"{name} has {v.shape[0]} elements but X {x.type!r} has {c} channels ({what})")


# --- BatchNormalization --------------------------------------------------------------------------
def _bn_param(p: np.ndarray, x: np.ndarray, spatial: bool, wide) -> np.ndarray:
    p = p.astype(wide, copy=False)
    if x.ndim <= 2 or (p.ndim == 1 and spatial):
        return p.reshape(_channel_shape(x)) if x.ndim >= 2 else p
    # non-spatial (opsets 1-8, spatial=0): one value per feature, shaped [C, D1, ..., Dk]
    return p.reshape(x.shape[1:])


def _batch_norm(x, scale, b, mean, var, *, epsilon, momentum, training, spatial=True):
    """Returns (Y, running_mean, running_var, batch_mean, batch_var); the last four only when
    `training`, else None. A 1-D X is [N] with one channel."""
    xx = x if x.ndim != 1 else x.reshape(-1, 1)
    wide = compute_dtype(x.dtype)
    xw = xx.astype(wide, copy=False)
    if training:
        axes = (0,) if not spatial else (0,) + tuple(range(2, xx.ndim))
        bmean = xw.mean(axis=axes)
        bvar = np.square(xw - np.expand_dims(bmean, axes)).mean(axis=axes)
        use_mean, use_var = bmean, bvar
    else:
        use_mean, use_var = mean, var
    m = _bn_param(use_mean, xx, spatial, wide)
    v = _bn_param(use_var, xx, spatial, wide)
    a = _bn_param(scale, xx, spatial, wide) / np.sqrt(v + wide.type(epsilon))
    y = (xw * a + (_bn_param(b, xx, spatial, wide) - m * a)).astype(x.dtype, copy=False).reshape(x.shape)
    if not training:
        return y, None, None, None, None
    mom = wide.type(momentum)
    run_mean = (mean.astype(wide) * mom + bmean.reshape(mean.shape) * (1 - mom)).astype(mean.dtype)
    run_var = (var.astype(wide) * mom + bvar.reshape(var.shape) * (1 - mom)).astype(var.dtype)
    return y, run_mean, run_var, bmean.reshape(mean.shape).astype(mean.dtype), bvar.reshape(var.shape).astype(var.dtype)


def _infer_batch_norm(x, scale, b, mean, var, **attrs):
    _check_channels(x, {"scale": scale, "B": b, "mean": mean, "var": var})
    return x.type, mean.type, var.type, mean.type, var.type


@defop("BatchNormalization", inputs=["X", "scale", "B", "mean", "var"],
       outputs=["Y", "mean?", "var?", "saved_mean?", "saved_var?"], infer=_infer_batch_norm,
       attrs={"consumed_inputs": REQUIRED, "epsilon": 1e-5, "is_test": 0, "momentum": 0.9, "spatial": 1})
@defop("BatchNormalization", inputs=["X", "scale", "B", "mean", "var"],
       outputs=["Y", "mean?", "var?", "saved_mean?", "saved_var?"], infer=_infer_batch_norm,
       attrs={"epsilon": 1e-5, "is_test": 0, "momentum": 0.9, "spatial": 1}, since=6)
def batch_norm_v1(x, scale, b, mean, var, *, epsilon, is_test, momentum, spatial, consumed_inputs=None):
    """Opsets 1-6: training (batch statistics, updated running statistics, saved batch
    statistics) unless `is_test` is set."""
    out = _batch_norm(x, scale, b, mean, var, epsilon=epsilon, momentum=momentum,
                      training=not is_test, spatial=bool(spatial))
    return out if not is_test else out[0]


@defop("BatchNormalization", inputs=["X", "scale", "B", "mean", "var"],
       outputs=["Y", "mean?", "var?", "saved_mean?", "saved_var?"], infer=_infer_batch_norm,
       attrs={"epsilon": 1e-5, "momentum": 0.9, "spatial": 1}, since=7)
def batch_norm_v7(x, scale, b, mean, var, *, epsilon, momentum, spatial=1):
    """Opsets 7-13: inference with one output; training (the five outputs) when the node asks for
    the statistics."""
    training = context.num_outputs() > 1
    out = _batch_norm(x, scale, b, mean, var, epsilon=epsilon, momentum=momentum,
                      training=training, spatial=bool(spatial))
    return out if training else out[0]


# opset 9 dropped `spatial` (always spatial)
defop("BatchNormalization", inputs=["X", "scale", "B", "mean", "var"],
      outputs=["Y", "mean?", "var?", "saved_mean?", "saved_var?"], infer=_infer_batch_norm,
      attrs={"epsilon": 1e-5, "momentum": 0.9}, since=9)(batch_norm_v7)


def _infer_batch_norm_14(x, scale, b, mean, var, *, training_mode, **attrs):
    _check_channels(x, {"scale": scale, "B": b, "input_mean": mean, "input_var": var})
    return x.type, mean.type, var.type


@defop("BatchNormalization", inputs=["X", "scale", "B", "input_mean", "input_var"],
       outputs=["Y", "running_mean?", "running_var?"], infer=_infer_batch_norm_14,
       attrs={"epsilon": 1e-5, "momentum": 0.9, "training_mode": 0}, since=14)
def batch_norm(x, scale, b, input_mean, input_var, *, epsilon, momentum, training_mode):
    """Y = (X - mean) / sqrt(var + epsilon) * scale + B per channel, with the given statistics, or
    with the batch's own (population) statistics when `training_mode`, which also returns the
    updated running statistics."""
    if not training_mode and context.num_outputs() > 1:
        raise ValueError("running_mean and running_var are outputs only when training_mode is set "
                         f"(the node has {context.num_outputs()} outputs and training_mode=0)")
    y, run_mean, run_var, _, _ = _batch_norm(x, scale, b, input_mean, input_var, epsilon=epsilon,
                                             momentum=momentum, training=bool(training_mode))
    return (y, run_mean, run_var) if training_mode else y


# --- InstanceNormalization -----------------------------------------------------------------------
def _infer_instance_norm(x, scale, b, **attrs):
    if x.shape is not None and len(x.shape) < 3:
        raise infer.InferError(f"input {x.type!r} must be [N, C, D1, ...] (rank 3 or more)")
    _check_channels(x, {"scale": scale, "B": b})
    return x.type


@defop("InstanceNormalization", inputs=["input", "scale", "B"], outputs=["output"],
       infer=_infer_instance_norm, attrs={"consumed_inputs": None, "epsilon": 1e-5})
@defop("InstanceNormalization", inputs=["input", "scale", "B"], outputs=["output"],
       infer=_infer_instance_norm, attrs={"epsilon": 1e-5}, since=6)
def instance_norm(x, scale, b, *, epsilon, consumed_inputs=None):
    """(x - mean) / sqrt(var + epsilon) * scale + B, statistics per instance and channel."""
    wide = compute_dtype(x.dtype)
    xw = x.astype(wide, copy=False)
    axes = tuple(range(2, x.ndim))
    mean = xw.mean(axis=axes, keepdims=True)
    d = xw - mean
    inv = 1 / np.sqrt(np.square(d).mean(axis=axes, keepdims=True) + wide.type(epsilon))
    shape = _channel_shape(x)
    y = d * (inv * scale.astype(wide).reshape(shape)) + b.astype(wide).reshape(shape)
    return y.astype(x.dtype, copy=False)


# --- LayerNormalization, RMSNormalization --------------------------------------------------------
def _stats_shape(x, axis: int):
    r = infer.rank_of(x)
    if r is None:
        return None
    a = infer.normalize_axis(axis, r)
    return tuple(x.shape[:a]) + (1,) * (r - a)


def _infer_layer_norm(x, scale, b, *, axis, epsilon, stash_type):
    stash = dtypes.from_onnx(int(stash_type))
    if not stash.is_float:
        raise infer.InferError(f"stash_type {stash_type} ({stash.name}) is not a floating-point type")
    return x.type, infer.tensor(stash, _stats_shape(x, axis)), infer.tensor(stash, _stats_shape(x, axis))


def _normalized_axes(x: np.ndarray, axis: int) -> tuple:
    if not -x.ndim <= axis < max(x.ndim, 1):
        raise ValueError(f"axis {axis} is out of range for an input of rank {x.ndim}")
    return tuple(range(axis % x.ndim, x.ndim))


@defop("LayerNormalization", inputs=["X", "Scale", "B?"], outputs=["Y", "Mean?", "InvStdDev?"],
       infer=_infer_layer_norm, attrs={"axis": -1, "epsilon": 1e-5, "stash_type": 1}, since=17)
def layer_norm(x, scale, b, *, axis, epsilon, stash_type):
    """Standardise over the dims from `axis` on (in the `stash_type` precision), then scale and
    shift: Y = (X - Mean) * InvStdDev * Scale + B. Mean and InvStdDev keep X's leading dims, with
    1 for the normalized ones."""
    axes = _normalized_axes(x, axis)
    wide = _stash_dtype(stash_type)
    xw = x.astype(wide)  # a fresh array: updated in place below
    mean = xw.mean(axis=axes, keepdims=True)
    xw -= mean
    inv_std = np.square(xw).mean(axis=axes, keepdims=True)
    inv_std += wide.type(epsilon)
    np.sqrt(inv_std, out=inv_std)
    np.reciprocal(inv_std, out=inv_std)
    xw *= inv_std
    y_wide = np.promote_types(wide, compute_dtype(x.dtype))
    y = xw.astype(y_wide, copy=False) * scale.astype(y_wide, copy=False)
    if b is not None:
        y += b.astype(y_wide, copy=False)
    return y.astype(x.dtype, copy=False), mean, inv_std


def _infer_rms_norm(x, scale, *, axis, epsilon, stash_type):
    # ONNX's own shape inference gives Y the dtype of X (the schema's V is scale's; models keep
    # the two equal, since the function body multiplies them)
    _stats_shape(x, axis)
    return x.type


@defop("RMSNormalization", inputs=["X", "scale"], outputs=["Y"], infer=_infer_rms_norm,
       attrs={"axis": -1, "epsilon": 1e-5, "stash_type": 1}, since=23)
def rms_norm(x, scale, *, axis, epsilon, stash_type):
    """Y = X / sqrt(mean(X^2) + epsilon) * scale, the mean over the dims from `axis` on."""
    axes = _normalized_axes(x, axis)
    wide = _stash_dtype(stash_type)
    xw = x.astype(wide, copy=False)
    rms = np.square(xw).mean(axis=axes, keepdims=True)
    rms += wide.type(epsilon)
    y_wide = np.promote_types(wide, compute_dtype(x.dtype))
    y = (xw / np.sqrt(rms)).astype(y_wide, copy=False) * scale.astype(y_wide, copy=False)
    return y.astype(x.dtype, copy=False)


# --- GroupNormalization --------------------------------------------------------------------------
def _infer_group_norm(per_group: bool):
    def infer_fn(x, scale, bias, *, num_groups, epsilon, stash_type=1):
        if num_groups <= 0:
            raise infer.InferError(f"num_groups must be positive, got {num_groups}")
        if x.shape is not None and len(x.shape) < 2:
            raise infer.InferError(f"input {x.type!r} must be [N, C, ...] (rank 2 or more)")
        c = x.shape[1] if x.shape is not None else None
        if infer.known_int(c) and c % num_groups:
            raise infer.InferError(f"num_groups {num_groups} does not divide the {c} channels of X")
        want = num_groups if per_group else c
        for name, v in (("scale", scale), ("bias", bias)):
            if infer.known_int(want) and v.shape is not None and len(v.shape) == 1 \
                    and infer.known_int(v.shape[0]) and v.shape[0] != want:
                raise infer.InferError(f"{name} has {v.shape[0]} elements, expected {want} "
                                       f"({'one per group' if per_group else 'one per channel'})")
        return x.type

    return infer_fn


def _group_norm(x, scale, bias, num_groups, epsilon, wide, per_group: bool):
    n, c = x.shape[0], x.shape[1]
    if c % num_groups:
        raise ValueError(f"num_groups {num_groups} does not divide the {c} channels of X")
    g = x.reshape(n, num_groups, -1).astype(wide, copy=True)
    g -= g.mean(axis=-1, keepdims=True)
    g *= 1 / np.sqrt(np.square(g).mean(axis=-1, keepdims=True) + wide.type(epsilon))
    y_wide = np.promote_types(wide, compute_dtype(x.dtype))
    normalized = g.reshape(x.shape).astype(y_wide, copy=False)
    if per_group:  # opset 18: one scale and bias per group, shared by its channels
        scale, bias = np.repeat(scale, c // num_groups), np.repeat(bias, c // num_groups)
    shape = _channel_shape(x)
    y = normalized * scale.astype(y_wide).reshape(shape) + bias.astype(y_wide).reshape(shape)
    return y.astype(x.dtype, copy=False)


@defop("GroupNormalization", inputs=["X", "scale", "bias"], outputs=["Y"], infer=_infer_group_norm(True),
       attrs={"epsilon": 1e-5, "num_groups": REQUIRED}, since=18)
def group_norm_v18(x, scale, bias, *, epsilon, num_groups):
    """Opsets 18-20: statistics per instance and group of channels; scale and bias per group."""
    return _group_norm(x, scale, bias, num_groups, epsilon, compute_dtype(x.dtype), per_group=True)


@defop("GroupNormalization", inputs=["X", "scale", "bias"], outputs=["Y"], infer=_infer_group_norm(False),
       attrs={"epsilon": 1e-5, "num_groups": REQUIRED, "stash_type": 1}, since=21)
def group_norm(x, scale, bias, *, epsilon, num_groups, stash_type):
    """Statistics per instance and group of channels (in the `stash_type` precision); scale and
    bias per channel."""
    return _group_norm(x, scale, bias, num_groups, epsilon, _stash_dtype(stash_type), per_group=False)


# --- LRN, LpNormalization, MeanVarianceNormalization ---------------------------------------------
def _infer_lrn(x, *, size, **attrs):
    if size <= 0:
        raise infer.InferError(f"size must be positive, got {size}")
    if x.shape is not None and len(x.shape) < 2:
        raise infer.InferError(f"input {x.type!r} must be [N, C, D1, ...] (rank 2 or more)")
    return x.type


@defop("LRN", inputs=["X"], outputs=["Y"], infer=_infer_lrn,
       attrs={"alpha": 1e-4, "beta": 0.75, "bias": 1.0, "size": REQUIRED})
def lrn(x, *, alpha, beta, bias, size):
    """Local response normalization across channels: Y = X / (bias + alpha / size * S)^beta where
    S sums X^2 over the channels c - floor((size-1)/2) .. c + ceil((size-1)/2)."""
    wide = compute_dtype(x.dtype)
    sq = np.square(x.astype(wide, copy=False))
    before, after = (size - 1) // 2, size - 1 - (size - 1) // 2
    pad = [(0, 0)] * x.ndim
    pad[1] = (before, after)
    padded = np.pad(sq, pad)
    c = x.shape[1]
    square_sum = np.zeros_like(sq)
    for k in range(size):  # `size` shifted windows: small, and exact (no cumulative-sum error)
        square_sum += padded[:, k:k + c]
    y = x.astype(wide, copy=False) / (wide.type(bias) + wide.type(alpha / size) * square_sum) ** wide.type(beta)
    return y.astype(x.dtype, copy=False)


def _infer_lp_norm(x, *, axis, p):
    if p not in (1, 2):
        raise infer.InferError(f"p must be 1 or 2, got {p}")
    infer.normalize_axis(axis, infer.rank_of(x))
    return x.type


@defop("LpNormalization", inputs=["input"], outputs=["output"], infer=_infer_lp_norm,
       attrs={"axis": -1, "p": 2})
def lp_norm(x, *, axis, p):
    """x divided by its L1 (p=1) or L2 (p=2) norm along `axis`; a zero vector stays zero."""
    if p not in (1, 2):
        raise ValueError(f"p must be 1 or 2, got {p}")
    wide = compute_dtype(x.dtype)
    xw = x.astype(wide, copy=False)
    norm = np.abs(xw).sum(axis=axis, keepdims=True) if p == 1 else \
        np.sqrt(np.square(xw).sum(axis=axis, keepdims=True))
    with np.errstate(invalid="ignore", divide="ignore"):
        y = np.where(norm == 0, xw, xw / norm)
    return y.astype(x.dtype, copy=False)


def _infer_mvn(x, *, axes):
    r = infer.rank_of(x)
    for a in axes:
        infer.normalize_axis(a, r, "axes entry")
    return x.type


@defop("MeanVarianceNormalization", inputs=["X"], outputs=["Y"], infer=_infer_mvn,
       attrs={"axes": [0, 2, 3]}, since=9)
def mean_variance_norm(x, *, axes):
    """(X - E[X]) / (sqrt(E[(X - E[X])^2]) + 1e-9), the expectations over `axes`."""
    wide = compute_dtype(x.dtype)
    ax = tuple(sorted({int(a) % x.ndim for a in axes}))
    xw = x.astype(wide, copy=True)
    xw -= xw.mean(axis=ax, keepdims=True)
    std = np.sqrt(np.square(xw).mean(axis=ax, keepdims=True))
    y = xw / (std + wide.type(1e-9))
    return y.astype(x.dtype, copy=False)
