"""RotaryEmbedding (ONNX opset 23): rotary positional embeddings (RoPE, arXiv 2104.09864).

The first `rotary_embedding_dim` features of each head are rotated pairwise by a position-dependent
angle: pairs are the two halves of that span, or neighbouring features when `interleaved`. The
angles' cosines and sines come from `cos_cache`/`sin_cache`, indexed by `position_ids` when given
(caches `(max_position, rot/2)`), or already per token (caches `(batch, seq, rot/2)`).
"""

from __future__ import annotations

import numpy as np

from ..infer import InferError
from ..registry import defop


def _infer_rope(x, cos_cache, sin_cache, position_ids, *, interleaved, num_heads, rotary_embedding_dim):
    if x.shape is not None:
        if len(x.shape) not in (3, 4):
            raise InferError(f"input must be 3-D (batch, seq, hidden) or 4-D (batch, heads, seq, head), got {x.type!r}")
        if len(x.shape) == 3 and not num_heads:
            raise InferError("a 3-D input needs attribute num_heads")
    if cos_cache.dtype != x.dtype or sin_cache.dtype != x.dtype:
        raise InferError(f"cos_cache and sin_cache must have the input's dtype {x.dtype}")
    if position_ids is None and cos_cache.shape is not None and len(cos_cache.shape) != 3:
        raise InferError("without position_ids, the caches must be 3-D (batch, seq, rotary_dim/2)")
    return x.type


@defop("RotaryEmbedding", inputs=["X", "cos_cache", "sin_cache", "position_ids?"], outputs=["Y"],
       attrs={"interleaved": 0, "num_heads": None, "rotary_embedding_dim": 0}, infer=_infer_rope, since=23)
def rotary_embedding(x, cos_cache, sin_cache, position_ids, *, interleaved, num_heads, rotary_embedding_dim):
    """Rotates the first `rotary_embedding_dim` features of each head (all of them by default)."""
    shape = x.shape
    if x.ndim == 4:  # (batch, heads, seq, head) -> (batch, seq, heads, head)
        h = x.transpose(0, 2, 1, 3)
    elif x.ndim == 3:
        if not num_heads:
            raise ValueError("a 3-D input needs attribute num_heads")
        b, s, hidden = shape
        h = x.reshape(b, s, num_heads, hidden // num_heads)
    else:
        raise ValueError(f"input must be 3-D or 4-D, got shape {list(shape)}")
    head = h.shape[-1]
    rot = rotary_embedding_dim or head
    if rot % 2 or rot > head:
        raise ValueError(f"rotary_embedding_dim {rot} must be even and at most the head size {head}")
    if position_ids is not None:
        cos, sin = cos_cache[position_ids], sin_cache[position_ids]  # (batch, seq, rot/2)
    else:
        cos, sin = cos_cache, sin_cache
    if cos.shape[-1] != rot // 2 or sin.shape[-1] != rot // 2:
        raise ValueError(f"the caches' last dim ({cos.shape[-1]}) must be rotary_embedding_dim/2 ({rot // 2})")
    ct = np.float64 if x.dtype == np.float64 else np.float32
    cos = cos.astype(ct)[:, :, None, :]
    sin = sin.astype(ct)[:, :, None, :]
    part = h[..., :rot].astype(ct)
    if interleaved:
        x1, x2 = part[..., 0::2], part[..., 1::2]
    else:
        x1, x2 = part[..., :rot // 2], part[..., rot // 2:]
    real = cos * x1 - sin * x2
    imag = sin * x1 + cos * x2
    if interleaved:
        rotated = np.stack([real, imag], axis=-1).reshape(part.shape)
    else:
        rotated = np.concatenate([real, imag], axis=-1)
    out = np.concatenate([rotated.astype(x.dtype), h[..., rot:]], axis=-1)
    return out.reshape(shape) if x.ndim == 3 else out.transpose(0, 2, 1, 3)
