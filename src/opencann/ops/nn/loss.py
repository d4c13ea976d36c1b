"""Classification losses: NegativeLogLikelihoodLoss and SoftmaxCrossEntropyLoss.

Both take class scores [N, C, D1, ..., Dk] and integer targets [N, D1, ..., Dk]. Each element's
loss is -input[n, target, d...] times the target class's weight (1 without weights); a target
equal to `ignore_index` contributes nothing and has weight 0. Reduction "mean" divides the sum by
the total weight of the counted elements, "sum" adds them, "none" keeps the target's shape.
"""

from __future__ import annotations

import numpy as np

from .. import infer
from ..registry import defop
from .activation import compute_dtype
from .softmax import log_softmax

_REDUCTIONS = ("none", "sum", "mean")


def _infer_loss(scores, target, weight, *, reduction, ignore_index):
    if reduction not in _REDUCTIONS:
        raise infer.InferError(f"reduction must be one of {', '.join(_REDUCTIONS)}, got {reduction!r}")
    if target.dtype is not None and target.dtype.name not in ("int32", "int64"):
        raise infer.InferError(f"the target must be int32 or int64, got {target.type!r}")
    xs, ts = scores.shape, target.shape
    if xs is not None and len(xs) < 2:
        raise infer.InferError(f"the scores {scores.type!r} must be [N, C, D1, ...] (rank 2 or more)")
    if xs is not None and ts is not None:
        if len(ts) != len(xs) - 1:
            raise infer.InferError(f"the target {target.type!r} must have rank {len(xs) - 1} "
                                   f"for scores {scores.type!r}")
        for a, b in zip((xs[0],) + tuple(xs[2:]), ts):
            if infer.known_int(a) and infer.known_int(b) and a != b:
                raise infer.InferError(f"the target {target.type!r} must have the scores' shape "
                                       f"{scores.type!r} without the class dim C")
    if weight is not None and weight.shape is not None and len(weight.shape) != 1:
        raise infer.InferError(f"the weights {weight.type!r} must be 1-D, one per class")
    out_shape = ts if reduction == "none" else ()
    if reduction == "none" and ts is None and xs is not None:
        out_shape = (xs[0],) + tuple(xs[2:])
    return infer.tensor(scores.dtype, out_shape)


def _nll(log_p: np.ndarray, target: np.ndarray, weight, reduction: str, ignore_index) -> np.ndarray:
    """The loss in log_p's dtype; log_p is already widened by the caller."""
    if reduction not in _REDUCTIONS:
        raise ValueError(f"reduction must be one of {', '.join(_REDUCTIONS)}, got {reduction!r}")
    if log_p.ndim < 2 or target.shape != (log_p.shape[0],) + log_p.shape[2:]:
        raise ValueError(f"target of shape {list(target.shape)} does not fit scores of shape "
                         f"{list(log_p.shape)} (expected {[log_p.shape[0], *log_p.shape[2:]]})")
    c = log_p.shape[1]
    tgt = target.astype(np.int64, copy=False)
    counted = np.ones(tgt.shape, dtype=bool) if ignore_index is None else tgt != int(ignore_index)
    bad = counted & ((tgt < 0) | (tgt >= c))
    if bad.any():
        raise ValueError(f"target value {int(tgt[bad][0])} is out of range for {c} classes "
                         f"(and is not ignore_index {ignore_index})")
    safe = np.where(counted, tgt, 0)
    picked = np.take_along_axis(log_p, safe[:, None], axis=1)[:, 0]
    if weight is not None:
        w = np.where(counted, weight.astype(log_p.dtype)[safe], log_p.dtype.type(0))
    else:
        w = counted.astype(log_p.dtype)
    loss = -picked * w
    if reduction == "none":
        return loss
    if reduction == "sum":
        return loss.sum()
    with np.errstate(invalid="ignore", divide="ignore"):  # all elements ignored: 0 / 0 = nan
        return loss.sum() / w.sum()


@defop("NegativeLogLikelihoodLoss", inputs=["input", "target", "weight?"], outputs=["loss"],
       infer=_infer_loss, attrs={"ignore_index": None, "reduction": "mean"}, since=12)
def negative_log_likelihood_loss(x, target, weight, *, ignore_index, reduction):
    """-x[n, target[n, d...], d...] * weight[target], reduced by `reduction`; x holds
    log-probabilities."""
    wide = compute_dtype(x.dtype)
    return np.asarray(_nll(x.astype(wide, copy=False), target, weight, reduction, ignore_index)).astype(x.dtype)


def _infer_sce(scores, labels, weights, *, reduction, ignore_index):
    return _infer_loss(scores, labels, weights, reduction=reduction, ignore_index=ignore_index), scores.type


@defop("SoftmaxCrossEntropyLoss", inputs=["scores", "labels", "weights?"], outputs=["output", "log_prob?"],
       infer=_infer_sce, attrs={"ignore_index": None, "reduction": "mean"}, since=12)
def softmax_cross_entropy_loss(scores, labels, weights, *, ignore_index, reduction):
    """NegativeLogLikelihoodLoss of LogSoftmax(scores) over the class axis 1; also returns those
    log-probabilities."""
    wide = compute_dtype(scores.dtype)
    if scores.ndim < 2:
        raise ValueError(f"scores of shape {list(scores.shape)} must be [N, C, D1, ...]")
    log_p = log_softmax(scores.astype(wide, copy=False), axis=1)
    loss = _nll(log_p, labels, weights, reduction, ignore_index)
    return np.asarray(loss).astype(scores.dtype), log_p.astype(scores.dtype, copy=False)
