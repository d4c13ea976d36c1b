"""FlashAttention and FlashAttentionGrad on the cpu backend: the flash-attention kernels of
`kernels/attention.py` (registered in each op's `OpDef.kernels["cpu"]`, see
`opencann.ops.lowering`). The kernel module is imported when a lowering runs, so `import
opencann.ops` loads no tile kernels."""

from __future__ import annotations

import numpy as np

from ...ir import Node, Value
from ..lowering import Lowered, f32_all
from ..registry import defkernel
from .flash_attention import DOMAIN


def _fits(node: Node, attrs: dict):
    """(causal, scale) of a float32 rank-4 attention node, or why it does not fit."""
    bad = f32_all(node)
    if bad:
        return bad
    for v in node.inputs[:3]:
        if v.type.shape is not None and len(v.type.shape) != 4:
            return "inputs are not rank 4"
    return bool(attrs.get("causal", 0)), attrs.get("scale")


@defkernel("cpu", "FlashAttention", domain=DOMAIN)
def _lower_flash_attention(node: Node, attrs: dict):
    fits = _fits(node, attrs)
    if isinstance(fits, str):
        return fits
    causal, scale = fits

    def fn(q, k, v):
        from .kernels.attention import attention

        b, h, sq, _ = q.shape
        # heads merged in memory, (B, Sq, H, D): the usual Transpose + Reshape after is a view
        out = np.empty((b, sq, h, v.shape[-1]), np.float32).transpose(0, 2, 1, 3)
        lse = np.empty((b, h, sq), np.float32)
        attention(q, k, v, causal=causal, scale=scale, out=out, lse=lse)
        return out, lse

    return Lowered(fn, list(node.inputs[:3]), "flash_attention", outputs=2)


@defkernel("cpu", "FlashAttentionGrad", domain=DOMAIN)
def _lower_flash_attention_grad(node: Node, attrs: dict):
    return flash_attention_grad_lowering(node, attrs)


def flash_attention_grad_lowering(node: Node, attrs: dict, add_k: Value | None = None,
                                  add_v: Value | None = None, packed: tuple | None = None):
    """FlashAttentionGrad on the cpu backend, or why it does not fit. With `add_k` and `add_v`
    (values of K's shape, given together: the engine fuses the Adds that sum dK and dV with
    gradients from other paths) the step's inputs end with them and its dK and dV are the sums,
    made in the kernel's pass. `packed`: the places of dQ, dK, dV in the Concat of their merged
    heads that follows (see `attention_backward`)."""
    fits = _fits(node, attrs)
    if isinstance(fits, str):
        return fits
    causal, scale = fits
    adds = [] if add_k is None else [add_k, add_v]

    def fn(dy, q, k, v, y, lse, dk_add=None, dv_add=None):
        from .kernels.attention import attention_backward

        return attention_backward(q, k, v, y, dy, lse, causal=causal, scale=scale,
                                  dk_add=dk_add, dv_add=dv_add, packed=packed)

    return Lowered(fn, list(node.inputs[:6]) + adds, "flash_attention_grad", outputs=3)
