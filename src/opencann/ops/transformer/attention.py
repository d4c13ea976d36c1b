"""Attention (ONNX opset 23+): scaled dot-product attention with multi-head, grouped-query and
multi-query variants, boolean or additive masks, causal and sliding-window masking, softcap, an
in-op KV cache (past/present key and value) and an external cache (`nonpad_kv_seqlen`).

Inputs are 4-D `(batch, heads, seq, head_size)` or 3-D `(batch, seq, heads * head_size)` with
`q_num_heads`/`kv_num_heads` given. Opset 24 added `nonpad_kv_seqlen` (bottom-right causal
alignment for an external cache), opset 25 `left_window_size`/`right_window_size`.
"""

from __future__ import annotations

import numpy as np

from ... import dtypes
from ..infer import InferError, known_int, tensor
from ..registry import defop

_SOFTMAX_PRECISION = {1: np.float32, 10: np.float16, 11: np.float64, 16: dtypes.bfloat16.np}


# --- type inference ------------------------------------------------------------------------------
def _dim_add(a, b):
    return a + b if known_int(a) and known_int(b) else None


def _dim_div(a, n):
    if known_int(a) and n:
        if a % n:
            raise InferError(f"hidden size {a} is not divisible by the number of heads {n}")
        return a // n
    return None


def _heads_4d(v, num_heads, what: str):
    """(batch, heads, seq, head_size) of a 3-D or 4-D input, as dims."""
    s = v.shape
    if s is None:
        return (None, num_heads or None, None, None)
    if len(s) == 4:
        return tuple(s)
    if len(s) == 3:
        if not num_heads:
            raise InferError(f"{what} is 3-D, so attribute {'q' if what == 'Q' else 'kv'}_num_heads is required")
        return (s[0], num_heads, s[1], _dim_div(s[2], num_heads))
    raise InferError(f"{what} must be 3-D or 4-D, got rank {len(s)}")


def _infer_attention(q, k, v, attn_mask, past_key, past_value, nonpad_kv_seqlen=None, *,
                     is_causal, kv_num_heads, q_num_heads, qk_matmul_output_mode, scale, softcap,
                     softmax_precision, left_window_size=-1, right_window_size=-1):
    if (past_key is None) != (past_value is None):
        raise InferError("past_key and past_value must be given together")
    b, hq, sq, _ = _heads_4d(q, q_num_heads, "Q")
    _, hkv, skv, dk = _heads_4d(k, kv_num_heads, "K")
    _, _, _, dv = _heads_4d(v, kv_num_heads, "V")
    if known_int(hq) and known_int(hkv) and hkv and hq % hkv:
        raise InferError(f"q heads ({hq}) must be a multiple of kv heads ({hkv})")
    total = skv
    if past_key is not None:
        p = past_key.shape[2] if past_key.shape is not None and len(past_key.shape) == 4 else None
        total = _dim_add(p, skv)
    if q.shape is None:
        y = tensor(q.dtype, None)  # 3-D or 4-D: not known
    elif len(q.shape) == 3:
        y = tensor(q.dtype, (b, sq, hq * dv if known_int(hq) and known_int(dv) else None))
    else:
        y = tensor(q.dtype, (b, hq, sq, dv))
    present_k = tensor(k.dtype, (b, hkv, total, dk))
    present_v = tensor(v.dtype, (b, hkv, total, dv))
    qk = tensor(q.dtype, (b, hq, sq, total))
    return y, present_k, present_v, qk


# --- reference -----------------------------------------------------------------------------------
def _to_4d(x: np.ndarray, num_heads, what: str) -> np.ndarray:
    if x.ndim == 4:
        return x
    if x.ndim != 3:
        raise ValueError(f"{what} must be 3-D or 4-D, got shape {list(x.shape)}")
    if not num_heads:
        raise ValueError(f"{what} is 3-D, so the number of heads must be given as an attribute")
    b, s, hidden = x.shape
    if hidden % num_heads:
        raise ValueError(f"{what}'s hidden size {hidden} is not divisible by {num_heads} heads")
    return x.reshape(b, s, num_heads, hidden // num_heads).transpose(0, 2, 1, 3)


def _compute_dtype(dt: np.dtype) -> np.dtype:
    return np.dtype(np.float64) if dt == np.float64 else np.dtype(np.float32)


def attention(q, k, v, attn_mask=None, past_key=None, past_value=None, nonpad_kv_seqlen=None, *,
              is_causal=0, kv_num_heads=None, q_num_heads=None, qk_matmul_output_mode=0,
              scale=None, softcap=0.0, softmax_precision=None, left_window_size=-1,
              right_window_size=-1):
    """Scaled dot-product attention; returns (Y, present_key, present_value, qk_matmul_output)."""
    out_dtype = q.dtype
    three_d = q.ndim == 3
    q4 = _to_4d(q, q_num_heads, "Q")
    k4 = _to_4d(k, kv_num_heads, "K")
    v4 = _to_4d(v, kv_num_heads, "V")
    if (past_key is None) != (past_value is None):
        raise ValueError("past_key and past_value must be given together")
    if past_key is not None:
        k4 = np.concatenate([past_key, k4], axis=2)
        v4 = np.concatenate([past_value, v4], axis=2)
    present_key, present_value = k4, v4
    batch, hq, sq, d = q4.shape
    hkv, total = k4.shape[1], k4.shape[2]
    if hq % hkv:
        raise ValueError(f"q heads ({hq}) must be a multiple of kv heads ({hkv})")

    cdt = _compute_dtype(out_dtype)
    qc, kc, vc = q4.astype(cdt), k4.astype(cdt), v4.astype(cdt)
    if hq != hkv:  # grouped-query: each kv head serves hq // hkv consecutive query heads
        kc = np.repeat(kc, hq // hkv, axis=1)
        vc = np.repeat(vc, hq // hkv, axis=1)
    s = cdt.type(1.0 / np.sqrt(d) if scale is None else scale)
    root = np.sqrt(s)
    scores = np.matmul(qc * root, np.swapaxes(kc * root, -1, -2))  # (B, Hq, Sq, total)
    qk_out = scores
    if softcap:
        c = cdt.type(softcap)
        scores = c * np.tanh(scores / c)
    if qk_matmul_output_mode == 1:
        qk_out = scores

    # where each query may look: causal frontier, window, external-cache padding, boolean mask
    allowed = np.ones((batch, 1, sq, total), dtype=bool)
    past = 0 if past_key is None else past_key.shape[2]
    if past_key is None and nonpad_kv_seqlen is not None:
        offset = np.asarray(nonpad_kv_seqlen).astype(np.int64).reshape(batch, 1, 1, 1) - sq
    else:
        offset = np.full((batch, 1, 1, 1), past, dtype=np.int64)
    pos = offset + np.arange(sq).reshape(1, 1, sq, 1)  # absolute position of each query
    keys = np.arange(total).reshape(1, 1, 1, total)
    if is_causal:
        allowed &= keys <= pos
    if left_window_size is not None and left_window_size >= 0:
        allowed &= keys >= pos - left_window_size
    if right_window_size is not None and right_window_size >= 0:
        allowed &= keys <= pos + right_window_size
    if nonpad_kv_seqlen is not None:
        allowed &= keys < np.asarray(nonpad_kv_seqlen).astype(np.int64).reshape(batch, 1, 1, 1)

    bias = None
    if attn_mask is not None:
        m = np.asarray(attn_mask)
        if m.shape[-1] < total:  # a mask shorter than the cache: the rest is padding
            pad = [(0, 0)] * (m.ndim - 1) + [(0, total - m.shape[-1])]
            m = np.pad(m, pad, constant_values=False if m.dtype == bool else -np.inf)
        if m.dtype == bool:
            allowed = allowed & m
        else:
            bias = m.astype(cdt)
    neg_inf = cdt.type(-np.inf)
    scores = np.where(allowed, scores, neg_inf)
    if bias is not None:
        scores = scores + bias
    if qk_matmul_output_mode == 2:
        qk_out = scores

    sm_dt = _SOFTMAX_PRECISION.get(softmax_precision) if softmax_precision else None
    x = scores.astype(sm_dt) if sm_dt is not None else scores
    if sm_dt is not None and np.dtype(sm_dt).itemsize < 4:
        x = x.astype(np.float32)  # emulate the narrow softmax: round its input and output
    row_max = np.max(x, axis=-1, keepdims=True)
    row_max = np.where(np.isneginf(row_max), 0, row_max)
    e = np.exp(x - row_max)
    denom = np.sum(e, axis=-1, keepdims=True)
    probs = e / np.where(denom == 0, 1, denom)  # a fully masked row gives zeros, not NaN
    if sm_dt is not None:
        probs = probs.astype(sm_dt)
    probs = probs.astype(cdt)
    if qk_matmul_output_mode == 3:
        qk_out = probs

    y = np.matmul(probs, vc)  # (B, Hq, Sq, Dv)
    if three_d:
        y = y.transpose(0, 2, 1, 3).reshape(batch, sq, -1)
    return (y.astype(out_dtype), present_key.astype(k.dtype, copy=False),
            present_value.astype(v.dtype, copy=False), qk_out.astype(out_dtype))


_ATTRS23 = {"is_causal": 0, "kv_num_heads": None, "q_num_heads": None, "qk_matmul_output_mode": 0,
            "scale": None, "softcap": 0.0, "softmax_precision": None}
_OUTS = ["Y", "present_key?", "present_value?", "qk_matmul_output?"]


@defop("Attention", inputs=["Q", "K", "V", "attn_mask?", "past_key?", "past_value?"], outputs=_OUTS,
       attrs=_ATTRS23, infer=_infer_attention, since=23)
def attention23(q, k, v, attn_mask, past_key, past_value, **attrs):
    """Attention-23: scaled dot-product attention (see the module doc)."""
    return attention(q, k, v, attn_mask, past_key, past_value, **attrs)


@defop("Attention", inputs=["Q", "K", "V", "attn_mask?", "past_key?", "past_value?", "nonpad_kv_seqlen?"],
       outputs=_OUTS, attrs=_ATTRS23, infer=_infer_attention, since=24)
def attention24(q, k, v, attn_mask, past_key, past_value, nonpad_kv_seqlen, **attrs):
    """Attention-24: adds `nonpad_kv_seqlen`, the valid length of an external KV cache per batch."""
    return attention(q, k, v, attn_mask, past_key, past_value, nonpad_kv_seqlen, **attrs)


@defop("Attention", inputs=["Q", "K", "V", "attn_mask?", "past_key?", "past_value?", "nonpad_kv_seqlen?"],
       outputs=_OUTS, attrs={**_ATTRS23, "left_window_size": -1, "right_window_size": -1},
       infer=_infer_attention, since=25)
def attention25(q, k, v, attn_mask, past_key, past_value, nonpad_kv_seqlen, **attrs):
    """Attention-25: adds sliding-window masking (`left_window_size`, `right_window_size`)."""
    return attention(q, k, v, attn_mask, past_key, past_value, nonpad_kv_seqlen, **attrs)
