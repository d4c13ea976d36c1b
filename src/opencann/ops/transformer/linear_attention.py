"""LinearAttention (ONNX opset 27): recurrent linear attention with a `(d_k, d_v)` state per KV head,
for autoregressive decoding (T=1) and prefill (T>1).

Update rules, with `S` the state, `g` the log-space decay and `beta` the update rate:
  linear       S = S + k v^T
  gated        S = exp(g) * S + k v^T
  delta        S = S + beta * k (v - S^T k)^T
  gated_delta  S' = exp(g) * S;  S = S' + beta * k (v - S'^T k)^T
and the output of each token is `scale * q^T S` with the state after that token. Query heads share
KV heads in groups (GQA/MQA): query head `h` reads KV head `h // (q_num_heads / kv_num_heads)`.
"""

from __future__ import annotations

import numpy as np

from ..infer import InferError, known_int, tensor
from ..registry import REQUIRED, defop

_RULES = ("linear", "gated", "delta", "gated_delta")


def _infer_linear_attention(query, key, value, past_state, decay, beta, *, chunk_size, kv_num_heads,
                            q_num_heads, scale, update_rule):
    if update_rule not in _RULES:
        raise InferError(f"update_rule must be one of {', '.join(_RULES)}, got {update_rule!r}")
    if q_num_heads <= 0 or kv_num_heads <= 0 or q_num_heads % kv_num_heads:
        raise InferError(f"q_num_heads ({q_num_heads}) must be a positive multiple of kv_num_heads ({kv_num_heads})")
    if update_rule in ("gated", "gated_delta") and decay is None:
        raise InferError(f"update_rule {update_rule!r} needs the decay input")
    if update_rule in ("delta", "gated_delta") and beta is None:
        raise InferError(f"update_rule {update_rule!r} needs the beta input")
    for v, what in ((query, "query"), (key, "key"), (value, "value")):
        if v.shape is not None and len(v.shape) != 3:
            raise InferError(f"{what} must be 3-D (B, T, heads * dim), got {v.type!r}")
    b = t = dk = dv = None
    if query.shape is not None:
        b, t = query.shape[0], query.shape[1]
    if key.shape is not None and known_int(key.shape[2]):
        dk = key.shape[2] // kv_num_heads
    if value.shape is not None and known_int(value.shape[2]):
        dv = value.shape[2] // kv_num_heads
    out = tensor(query.dtype, (b, t, q_num_heads * dv if dv is not None else None))
    state_dtype = past_state.dtype if past_state is not None else query.dtype
    return out, tensor(state_dtype, (b, kv_num_heads, dk, dv))


@defop("LinearAttention", inputs=["query", "key", "value", "past_state?", "decay?", "beta?"],
       outputs=["output", "present_state"],
       attrs={"chunk_size": 64, "kv_num_heads": REQUIRED, "q_num_heads": REQUIRED, "scale": 0.0,
              "update_rule": "gated_delta"},
       infer=_infer_linear_attention, since=27)
def linear_attention(query, key, value, past_state, decay, beta, *, chunk_size, kv_num_heads, q_num_heads,
                     scale, update_rule):
    """Runs the recurrence token by token (vectorised over batch and heads); `chunk_size` is only a
    tuning hint for chunk-parallel kernels and does not change the result."""
    if update_rule not in _RULES:
        raise ValueError(f"update_rule must be one of {', '.join(_RULES)}, got {update_rule!r}")
    b, t, _ = query.shape
    hq, hkv = q_num_heads, kv_num_heads
    if hq % hkv:
        raise ValueError(f"q_num_heads ({hq}) must be a multiple of kv_num_heads ({hkv})")
    group = hq // hkv
    dk = key.shape[2] // hkv
    dv = value.shape[2] // hkv
    if query.shape[2] != hq * dk:
        raise ValueError(f"query's last dim {query.shape[2]} is not q_num_heads * d_k = {hq} * {dk}")
    ct = np.float32
    q = query.astype(ct).reshape(b, t, hkv, group, dk)
    k = key.astype(ct).reshape(b, t, hkv, dk)
    v = value.astype(ct).reshape(b, t, hkv, dv)
    gated = update_rule in ("gated", "gated_delta")
    delta = update_rule in ("delta", "gated_delta")
    if gated:
        if decay is None:
            raise ValueError(f"update_rule {update_rule!r} needs the decay input")
        g = decay.astype(ct)
        # per key dim (B, T, H_kv * d_k) -> (B, T, H_kv, d_k, 1); per head (B, T, H_kv) -> (B, T, H_kv, 1, 1)
        g = g.reshape(b, t, hkv, dk, 1) if g.shape[2] == hkv * dk else g.reshape(b, t, hkv, 1, 1)
        gate = np.exp(g)
    if delta:
        if beta is None:
            raise ValueError(f"update_rule {update_rule!r} needs the beta input")
        bt = np.broadcast_to(beta.astype(ct), (b, t, hkv))[..., None]  # (B, T, H_kv, 1)
    sc = ct(scale) if scale else ct(1.0 / np.sqrt(dk))
    state = (np.zeros((b, hkv, dk, dv), ct) if past_state is None else past_state.astype(ct))
    out = np.empty((b, t, hkv, group, dv), ct)
    for i in range(t):
        if gated:
            state = gate[:, i] * state
        ki, vi = k[:, i], v[:, i]
        if delta:
            pred = np.einsum("bhkv,bhk->bhv", state, ki)  # S^T k
            vi = bt[:, i] * (vi - pred)
        state = state + ki[..., :, None] * vi[..., None, :]
        out[:, i] = sc * np.einsum("bhgk,bhkv->bhgv", q[:, i], state)
    state_dtype = past_state.dtype if past_state is not None else query.dtype
    return out.reshape(b, t, hq * dv).astype(query.dtype), state.astype(state_dtype)
