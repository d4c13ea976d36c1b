import numpy as np
import pytest

from opencann import dtypes
from opencann.ir import TensorType
from opencann.ops.infer import InferError


def test_linear_rule_is_unnormalised_causal_attention(run_op, rng):
    b, t, h, d = 1, 5, 2, 4
    q, k, v = (rng.standard_normal((b, t, h * d)).astype(np.float32) for _ in range(3))
    out, state = run_op("LinearAttention", [q, k, v],
                        {"q_num_heads": h, "kv_num_heads": h, "update_rule": "linear"}, opset=27, outputs=2)
    q4, k4, v4 = (x.reshape(b, t, h, d).transpose(0, 2, 1, 3).astype(np.float64) for x in (q, k, v))
    scores = np.tril(q4 @ np.swapaxes(k4, -1, -2)) / np.sqrt(d)
    expected = (scores @ v4).transpose(0, 2, 1, 3).reshape(b, t, h * d)
    np.testing.assert_allclose(out, expected, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(state, np.swapaxes(k4, -1, -2) @ v4, rtol=1e-4, atol=1e-5)


def test_gated_delta_single_step_from_past(run_op, rng):
    b, hq, hkv, dk, dv = 1, 4, 2, 3, 2
    q = rng.standard_normal((b, 1, hq * dk)).astype(np.float32)
    k = rng.standard_normal((b, 1, hkv * dk)).astype(np.float32)
    v = rng.standard_normal((b, 1, hkv * dv)).astype(np.float32)
    past = rng.standard_normal((b, hkv, dk, dv)).astype(np.float32)
    decay = -rng.random((b, 1, hkv)).astype(np.float32)
    beta = rng.random((b, 1, hkv)).astype(np.float32)
    out, state = run_op("LinearAttention", [q, k, v, past, decay, beta],
                        {"q_num_heads": hq, "kv_num_heads": hkv, "scale": 0.5}, opset=27, outputs=2)
    for kh in range(hkv):
        s = np.exp(decay[0, 0, kh]) * past[0, kh].astype(np.float64)
        kk, vv = k[0, 0, kh * dk:(kh + 1) * dk], v[0, 0, kh * dv:(kh + 1) * dv]
        s = s + beta[0, 0, kh] * np.outer(kk, vv - s.T @ kk)
        np.testing.assert_allclose(state[0, kh], s, rtol=1e-5, atol=1e-6)
        for g in range(hq // hkv):  # query heads 2*kh and 2*kh+1 share this state
            qh = kh * (hq // hkv) + g
            np.testing.assert_allclose(out[0, 0, qh * dv:(qh + 1) * dv], 0.5 * q[0, 0, qh * dk:(qh + 1) * dk] @ s,
                                       rtol=1e-5, atol=1e-6)


def test_infer(infer_op):
    f = lambda *s: TensorType(dtypes.float32, s)  # noqa: E731
    out, state = infer_op("LinearAttention", [f("B", "T", 32), f("B", "T", 16), f("B", "T", 24)],
                          {"q_num_heads": 4, "kv_num_heads": 2, "update_rule": "linear"}, opset=27)
    assert out.shape == ("B", "T", 48) and state.shape == ("B", 2, 8, 12)
    with pytest.raises(InferError, match="decay"):
        infer_op("LinearAttention", [f(1, 1, 8), f(1, 1, 8), f(1, 1, 8)],
                 {"q_num_heads": 2, "kv_num_heads": 2, "update_rule": "gated"}, opset=27)
    with pytest.raises(InferError, match="multiple"):
        infer_op("LinearAttention", [f(1, 1, 8), f(1, 1, 8), f(1, 1, 8)],
                 {"q_num_heads": 3, "kv_num_heads": 2, "update_rule": "linear"}, opset=27)
