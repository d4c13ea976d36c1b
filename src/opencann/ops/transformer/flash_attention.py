"""FlashAttention and FlashAttentionGrad (domain `ai.opencann`): scaled dot-product attention that
also gives each query row's log-sum-exp, and its backward from that log-sum-exp. They are what a
training graph needs: the forward keeps (out, lse) instead of the (Sq, Skv) probabilities, and the
backward recomputes the probabilities block by block. The torch frontend lowers PyTorch's CPU
flash-attention ops to them; ONNX has no such pair.

Inputs are (batch, heads, seq, head_size); K and V may have fewer heads than Q (grouped-query
attention, each key/value head serving heads / kv_heads query heads). `causal` is top-left
aligned: query i sees keys j <= i. `scale` defaults to 1 / sqrt(head_size).
"""

from __future__ import annotations

import math

import numpy as np

from ... import dtypes
from ..infer import InferError, known_int, tensor
from ..registry import OPENCANN_DOMAIN as DOMAIN, defop
_ATTRS = {"causal": 0, "scale": None}


def _check(q, k, v):
    for x, what in ((q, "Q"), (k, "K"), (v, "V")):
        if x.shape is not None and len(x.shape) != 4:
            raise InferError(f"{what} must be rank 4 (batch, heads, seq, head_size), got {x.type!r}")
    if not (q.dtype == k.dtype == v.dtype):
        raise InferError(f"Q, K and V must share a dtype, got {q.dtype}, {k.dtype}, {v.dtype}")
    qs, ks = q.shape or (None,) * 4, k.shape or (None,) * 4
    if known_int(qs[1]) and known_int(ks[1]) and (not ks[1] or qs[1] % ks[1]):
        raise InferError(f"q heads ({qs[1]}) must be a multiple of kv heads ({ks[1]})")
    return qs


def _infer_forward(q, k, v, *, causal, scale):
    qs = _check(q, k, v)
    vs = v.shape or (None,) * 4
    return tensor(q.dtype, (qs[0], qs[1], qs[2], vs[3])), tensor(dtypes.float32, qs[:3])


def _infer_backward(dy, q, k, v, y, lse, *, causal, scale):
    _check(q, k, v)
    return tensor(q.dtype, q.shape), tensor(k.dtype, k.shape), tensor(v.dtype, v.shape)


def _probs(q, k, causal, scale):
    """(p, lse) in float64: the softmax of the scaled, masked scores and its log-sum-exp."""
    g = q.shape[1] // k.shape[1]
    kk = np.repeat(k.astype(np.float64), g, axis=1)
    scale = 1.0 / math.sqrt(q.shape[-1]) if scale is None else float(scale)
    s = q.astype(np.float64) @ kk.swapaxes(-1, -2) * scale
    if causal:
        sq, skv = s.shape[-2:]
        s = np.where(np.tril(np.ones((sq, skv), bool)), s, -np.inf)
    m = s.max(axis=-1, keepdims=True)
    m = np.where(np.isfinite(m), m, 0.0)
    e = np.exp(s - m)
    l = e.sum(axis=-1, keepdims=True)
    with np.errstate(divide="ignore"):
        lse = (m + np.log(l))[..., 0]
    return e / np.where(l == 0, 1.0, l), lse, g, scale


@defop("FlashAttention", domain=DOMAIN, inputs=["Q", "K", "V"], outputs=["Y", "LSE"], attrs=_ATTRS,
       infer=_infer_forward)
def flash_attention(q, k, v, *, causal, scale):
    """Y = softmax(scale * Q K^T [causal]) V and LSE, the log-sum-exp of each row of the scaled
    scores ((batch, heads, seq_q), float32)."""
    p, lse, g, _ = _probs(q, k, causal, scale)
    y = p @ np.repeat(v.astype(np.float64), g, axis=1)
    return y.astype(q.dtype), lse.astype(np.float32)


@defop("FlashAttentionGrad", domain=DOMAIN, inputs=["dY", "Q", "K", "V", "Y", "LSE"],
       outputs=["dQ", "dK", "dV"], attrs=_ATTRS, infer=_infer_backward)
def flash_attention_grad(dy, q, k, v, y, lse, *, causal, scale):
    """The gradients of FlashAttention's Y with respect to Q, K and V, given dY, the forward's
    output Y and its LSE (the probabilities are recomputed from Q, K and LSE)."""
    g = q.shape[1] // k.shape[1]
    scale = 1.0 / math.sqrt(q.shape[-1]) if scale is None else float(scale)
    kk = np.repeat(k.astype(np.float64), g, axis=1)
    vv = np.repeat(v.astype(np.float64), g, axis=1)
    q64, dy64 = q.astype(np.float64), dy.astype(np.float64)
    s = q64 @ kk.swapaxes(-1, -2) * scale
    p = np.exp(s - lse.astype(np.float64)[..., None])
    if causal:
        p = np.where(np.tril(np.ones(p.shape[-2:], bool)), p, 0.0)
    dv = p.swapaxes(-1, -2) @ dy64
    dp = dy64 @ vv.swapaxes(-1, -2)
    d = (dy64 * y.astype(np.float64)).sum(axis=-1, keepdims=True)
    ds = p * (dp - d) * scale
    dq = ds @ kk
    dk = ds.swapaxes(-1, -2) @ q64
    b, h, skv, e = dk.shape
    dk = dk.reshape(b, h // g, g, skv, e).sum(axis=2)
    dv = dv.reshape(b, h // g, g, skv, dv.shape[-1]).sum(axis=2)
    return dq.astype(q.dtype), dk.astype(k.dtype), dv.astype(v.dtype)
