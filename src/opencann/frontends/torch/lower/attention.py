"""Scaled dot-product attention (the CPU flash-attention ops, forward and backward)."""

from __future__ import annotations

import math

import numpy as np
import torch

from ....ops.registry import OPENCANN_DOMAIN as DOMAIN
from .core import (
    DTYPES,
    _out_dtype,
    aten,
    ir_dim,
    lowers,
    meta_of,
)

# -- attention -----------------------------------------------------------------------------------------
# torch's own decomposition of the CPU flash-attention forward returns the attention weights where the
# backward expects the log-sum-exp, so gradients through it are wrong; `DECOMPOSITION_EXCLUDES` keeps
# the fused op whole and these lowerings give both directions their exact meaning.
DECOMPOSITION_EXCLUDES = (aten._scaled_dot_product_flash_attention_for_cpu.default,)


def _sdpa_ok(n):
    q, k = meta_of(n.args[0]), meta_of(n.args[1])
    dropout = n.args[3] if len(n.args) > 3 else n.kwargs.get("dropout_p", 0.0)
    if n.target is aten._scaled_dot_product_flash_attention_for_cpu_backward.default:
        q, k, dropout = meta_of(n.args[1]), meta_of(n.args[2]), n.args[6]
    heads = [ir_dim(q.shape[1]) if q.dim() == 4 else None, ir_dim(k.shape[1]) if k.dim() == 4 else None]
    return (dropout == 0 and q.dim() == 4 and isinstance(ir_dim(q.shape[-1]), int)
            and all(isinstance(h, int) for h in heads) and heads[0] % heads[1] == 0)


def _groups(q, k) -> int:
    """Query heads per key/value head (grouped-query attention)."""
    return int(meta_of(q).shape[1]) // int(meta_of(k).shape[1])


def _repeat_heads(L, x, x_heads: int, g: int, e: int):
    """[B, Hk, S, E] -> [B, Hk*g, S, E], each head repeated g times in place (repeat_interleave)."""
    if g == 1:
        return x
    x = L.emit("Unsqueeze", [x, L.const(np.array([2], np.int64), "ax")])
    hk = int(x_heads)
    x = L.emit("Expand", [x, L.const(np.array([1, 1, g, 1, 1], np.int64))])
    return L.emit("Reshape", [x, L.const(np.array([0, hk * g, -1, e], np.int64))], hint="gqa")


def _sum_heads(L, dx, g: int, hk: int, e: int):
    """The inverse of `_repeat_heads` for gradients: sum each group of g heads."""
    if g == 1:
        return dx
    dx = L.emit("Reshape", [dx, L.const(np.array([0, hk, g, -1, e], np.int64))])
    return L.emit("ReduceSum", [dx, L.const(np.array([2], np.int64), "axes")], {"keepdims": 0})


def _attention_scores(L, q, k, is_causal, attn_mask, scale, dt):
    """Masked, scaled q @ k^T: [B, H, L, S]."""
    e = int(meta_of(q).shape[-1])
    scale = 1 / math.sqrt(e) if scale is None else scale
    qv = L.tensor(q, dt)
    kv = _repeat_heads(L, L.tensor(k, dt), meta_of(k).shape[1], _groups(q, k), int(meta_of(k).shape[-1]))
    s = L.emit("MatMul", [qv, L.emit("Transpose", [kv], {"perm": [0, 1, 3, 2]})], hint="scores")
    s = L.emit("Mul", [s, L.tensor(scale, dt)])
    if is_causal:  # top-left aligned: query i sees keys j <= i
        zero, one = L.const(np.array(0, np.int64)), L.const(np.array(1, np.int64))
        sq = L.emit("Squeeze", [L.emit("Shape", [qv], {"start": 2, "end": 3}), L.const(np.array([0], np.int64))])
        sk = L.emit("Squeeze", [L.emit("Shape", [kv], {"start": 2, "end": 3}), L.const(np.array([0], np.int64))])
        rows = L.emit("Unsqueeze", [L.emit("Range", [zero, sq, one]), L.const(np.array([1], np.int64))])
        cols = L.emit("Range", [zero, sk, one])
        allowed = L.emit("LessOrEqual", [cols, rows])
        s = L.emit("Where", [allowed, s, L.tensor(-math.inf, dt)])
    if attn_mask is not None:
        if L.dtype(attn_mask) == torch.bool:
            s = L.emit("Where", [L.tensor(attn_mask), s, L.tensor(-math.inf, dt)])
        else:
            s = L.emit("Add", [s, L.tensor(attn_mask, dt)])
    return s, scale


def _flash_attrs(is_causal, scale) -> dict:
    attrs = {"causal": int(bool(is_causal))}
    if scale is not None:
        attrs["scale"] = float(scale)
    return attrs


def _fused(n, attn_mask) -> bool:
    """Whether the node becomes opencann's FlashAttention / FlashAttentionGrad: float32, no mask
    beyond causal (the others are spelled out in ONNX ops below)."""
    return attn_mask is None and _out_dtype(n) == torch.float32


@lowers(aten._scaled_dot_product_flash_attention_for_cpu.default, when=_sdpa_ok)
def _sdpa_flash(L, n, q, k, v, dropout_p=0.0, is_causal=False, *, attn_mask=None, scale=None):
    dt = _out_dtype(n)
    if _fused(n, attn_mask):
        out, lse = L.emit("FlashAttention", [L.tensor(q, dt), L.tensor(k, dt), L.tensor(v, dt)],
                          _flash_attrs(is_causal, scale), n_out=2, hint="attention", domain=DOMAIN)
        return [out, lse]
    s, _ = _attention_scores(L, q, k, is_causal, attn_mask, scale, dt)
    p = L.emit("Softmax", [s], {"axis": -1})
    vv = _repeat_heads(L, L.tensor(v, dt), meta_of(v).shape[1], _groups(q, v), int(meta_of(v).shape[-1]))
    out = L.emit("MatMul", [p, vv], hint="attention")
    lse = L.emit("ReduceLogSumExp", [s, L.const(np.array([-1], np.int64), "axes")], {"keepdims": 0})
    return [out, L.emit("Cast", [lse], {"to": DTYPES[meta_of(n)[1].dtype].onnx})]


@lowers(aten._scaled_dot_product_flash_attention_for_cpu_backward.default, when=_sdpa_ok)
def _sdpa_flash_backward(L, n, grad_out, q, k, v, out, lse, dropout_p, is_causal, *, attn_mask=None, scale=None):
    dt = _out_dtype(n)
    if _fused(n, attn_mask):
        ins = [L.tensor(x, dt) for x in (grad_out, q, k, v, out)] + [L.tensor(lse, torch.float32)]
        return list(L.emit("FlashAttentionGrad", ins, _flash_attrs(is_causal, scale), n_out=3,
                           hint="attention_grad", domain=DOMAIN))
    s, scale = _attention_scores(L, q, k, is_causal, attn_mask, scale, dt)
    lse_v = L.emit("Unsqueeze", [L.tensor(lse, dt), L.const(np.array([-1], np.int64), "ax")])
    p = L.emit("Exp", [L.emit("Sub", [s, lse_v])], hint="probs")
    t = {"perm": [0, 1, 3, 2]}
    g, hk = _groups(q, k), int(meta_of(k).shape[1])
    ek, ev = int(meta_of(k).shape[-1]), int(meta_of(v).shape[-1])
    go, qv = L.tensor(grad_out, dt), L.tensor(q, dt)
    vv, kv = _repeat_heads(L, L.tensor(v, dt), hk, g, ev), _repeat_heads(L, L.tensor(k, dt), hk, g, ek)
    dv = L.emit("MatMul", [L.emit("Transpose", [p], t), go], hint="grad_v")
    dp = L.emit("MatMul", [go, L.emit("Transpose", [vv], t)])
    d = L.emit("ReduceSum", [L.emit("Mul", [go, L.tensor(out, dt)]), L.const(np.array([-1], np.int64), "axes")],
               {"keepdims": 1})
    # the scale goes into ds (one elementwise kernel with the rest of ds) rather than onto both
    # products after them (two more passes over [B, H, L, E])
    ds = L.emit("Mul", [L.emit("Mul", [p, L.emit("Sub", [dp, d])]), L.tensor(scale, dt)])
    dq = L.emit("MatMul", [ds, kv], hint="grad_q")
    dk = L.emit("MatMul", [L.emit("Transpose", [ds], t), qv], hint="grad_k")
    return [dq, _sum_heads(L, dk, g, hk, ek), _sum_heads(L, dv, g, hk, ev)]
