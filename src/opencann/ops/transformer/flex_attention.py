"""FlexAttention (domain `ai.onnx.preview`): scaled dot-product attention over rank-4 inputs with
optional user subgraphs that modify the scores before the softmax (`score_mod`, e.g. masks and
relative-position biases) and the probabilities after it (`prob_mod`)."""

from __future__ import annotations

import numpy as np

from ... import dtypes
from ..context import run_graph
from ..infer import InferError, known_int, tensor
from ..registry import defop

_PRECISION = {1: np.float32, 10: np.float16, 11: np.float64, 16: dtypes.bfloat16.np}


def _infer_flex(q, k, v, *, prob_mod, score_mod, scale, softmax_precision):
    for x, what in ((q, "Q"), (k, "K"), (v, "V")):
        if x.shape is not None and len(x.shape) != 4:
            raise InferError(f"{what} must be rank 4 (batch, heads, seq, head_size), got {x.type!r}")
    if not (q.dtype == k.dtype == v.dtype):
        raise InferError(f"Q, K and V must share a dtype, got {q.dtype}, {k.dtype}, {v.dtype}")
    qs = q.shape or (None,) * 4
    ks = k.shape or (None,) * 4
    vs = v.shape or (None,) * 4
    if known_int(qs[1]) and known_int(ks[1]) and qs[1] % ks[1]:
        raise InferError(f"q heads ({qs[1]}) must be a multiple of kv heads ({ks[1]})")
    return tensor(q.dtype, (qs[0], qs[1], qs[2], vs[3]))


def _softmax_dtype(dt: np.dtype, softmax_precision) -> np.dtype:
    if softmax_precision:
        if softmax_precision not in _PRECISION:
            raise ValueError(f"softmax_precision {softmax_precision} is not a float type (1, 10, 11 or 16)")
        return np.dtype(_PRECISION[softmax_precision])
    return np.dtype(np.float64 if dt == np.float64 else np.float32)


@defop("FlexAttention", domain="ai.onnx.preview", inputs=["Q", "K", "V"], outputs=["Y"],
       attrs={"prob_mod": None, "score_mod": None, "scale": None, "softmax_precision": None},
       infer=_infer_flex, since=1)
def flex_attention(q, k, v, *, prob_mod, score_mod, scale, softmax_precision):
    """`softmax(score_mod(Q K^T * scale))`, then `prob_mod`, times V; scores and probabilities
    are kept in the softmax precision (float32, or float64 for double inputs, by default)."""
    if q.ndim != 4 or k.ndim != 4 or v.ndim != 4:
        raise ValueError("Q, K and V must be rank 4")
    hq, hkv = q.shape[1], k.shape[1]
    if hq % hkv:
        raise ValueError(f"q heads ({hq}) must be a multiple of kv heads ({hkv})")
    st = _softmax_dtype(q.dtype, softmax_precision)
    ct = np.dtype(np.float64) if st == np.float64 else np.dtype(np.float32)
    qc, kc, vc = q.astype(ct), k.astype(ct), v.astype(ct)
    if hq != hkv:
        kc = np.repeat(kc, hq // hkv, axis=1)
        vc = np.repeat(vc, hq // hkv, axis=1)
    s = ct.type(1.0 / np.sqrt(q.shape[-1]) if scale is None else scale)
    scores = (np.matmul(qc, np.swapaxes(kc, -1, -2)) * s).astype(st)
    if score_mod is not None:
        scores = np.asarray(run_graph(score_mod, [scores])[0]).astype(st)
    x = scores.astype(ct)
    m = np.max(x, axis=-1, keepdims=True)
    m = np.where(np.isneginf(m), 0, m)
    e = np.exp(x - m)
    denom = np.sum(e, axis=-1, keepdims=True)
    probs = (e / np.where(denom == 0, 1, denom)).astype(st)
    if prob_mod is not None:
        probs = np.asarray(run_graph(prob_mod, [probs])[0]).astype(st)
    return np.matmul(probs.astype(ct), vc).astype(q.dtype)
