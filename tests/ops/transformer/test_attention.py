import numpy as np
import pytest

from opencann import dtypes
from opencann.ir import TensorType
from opencann.ops.infer import InferError


def f32(*shape):
    return TensorType(dtypes.float32, shape)


def naive_attention(q, k, v, allowed=None, bias=None, scale=None):
    """Per-head loops, float64: the textbook definition to check the vectorised op against."""
    b, hq, sq, d = q.shape
    hkv, sk = k.shape[1], k.shape[2]
    scale = 1 / np.sqrt(d) if scale is None else scale
    y = np.zeros((b, hq, sq, v.shape[-1]))
    for bi in range(b):
        for h in range(hq):
            kh = h // (hq // hkv)
            s = q[bi, h].astype(np.float64) @ k[bi, kh].T.astype(np.float64) * scale
            if bias is not None:
                s = s + np.broadcast_to(bias, (b, hq, sq, sk))[bi, h]
            if allowed is not None:
                s = np.where(np.broadcast_to(allowed, (b, hq, sq, sk))[bi, h], s, -np.inf)
            for i in range(sq):
                if np.all(np.isneginf(s[i])):
                    continue  # fully masked row: zero output
                p = np.exp(s[i] - s[i].max())
                y[bi, h, i] = (p / p.sum()) @ v[bi, kh]
    return y


def test_infer_4d_symbolic_and_cache(infer_op):
    y, pk, pv, qk = infer_op("Attention", [f32("B", 8, "S", 64), f32("B", 2, "S", 64), f32("B", 2, "S", 32),
                                           None, f32("B", 2, 5, 64), f32("B", 2, 5, 32)])
    assert y.shape == ("B", 8, "S", 32)
    assert pk.shape == ("B", 2, None, 64)  # 5 + S is not a single symbol
    assert pv.shape == ("B", 2, None, 32)
    assert qk.shape == ("B", 8, "S", None)
    y, pk, _, qk = infer_op("Attention", [f32(1, 4, 3, 8), f32(1, 4, 3, 8), f32(1, 4, 3, 8), None,
                                          f32(1, 4, 5, 8), f32(1, 4, 5, 8)])
    assert pk.shape == (1, 4, 8, 8) and qk.shape == (1, 4, 3, 8)


def test_infer_3d_needs_heads_and_divisible_groups(infer_op):
    y, pk, _, _ = infer_op("Attention", [f32(2, "S", 64), f32(2, "T", 32), f32(2, "T", 48)],
                           {"q_num_heads": 8, "kv_num_heads": 4})
    assert y.shape == (2, "S", 96)  # 8 heads * v head size 12
    assert pk.shape == (2, 4, "T", 8)
    with pytest.raises(InferError, match="q_num_heads"):
        infer_op("Attention", [f32(2, 3, 64), f32(2, 3, 64), f32(2, 3, 64)])
    with pytest.raises(InferError, match="multiple"):
        infer_op("Attention", [f32(1, 6, 3, 8), f32(1, 4, 3, 8), f32(1, 4, 3, 8)])


def test_gqa_causal_bool_mask_matches_naive(run_op, rng):
    q = rng.standard_normal((2, 4, 5, 8)).astype(np.float32)
    k = rng.standard_normal((2, 2, 5, 8)).astype(np.float32)
    v = rng.standard_normal((2, 2, 5, 6)).astype(np.float32)
    mask = rng.random((5, 5)) > 0.3
    y = run_op("Attention", [q, k, v, mask], {"is_causal": 1})
    causal = np.tril(np.ones((5, 5), bool))
    np.testing.assert_allclose(y, naive_attention(q, k, v, allowed=mask & causal), rtol=1e-5, atol=1e-6)
    assert y.dtype == np.float32


def test_3d_inputs_equal_4d(run_op, rng):
    q = rng.standard_normal((1, 3, 2 * 4)).astype(np.float32)
    k = rng.standard_normal((1, 5, 2 * 4)).astype(np.float32)
    v = rng.standard_normal((1, 5, 2 * 4)).astype(np.float32)
    y3 = run_op("Attention", [q, k, v], {"q_num_heads": 2, "kv_num_heads": 2})
    to4 = lambda x: x.reshape(1, x.shape[1], 2, 4).transpose(0, 2, 1, 3)  # noqa: E731
    y4 = run_op("Attention", [to4(q), to4(k), to4(v)])
    np.testing.assert_allclose(y3, y4.transpose(0, 2, 1, 3).reshape(1, 3, 8), rtol=1e-6)


def test_past_present_and_offset_causal(run_op, rng):
    q = rng.standard_normal((1, 1, 2, 4)).astype(np.float32)
    k = rng.standard_normal((1, 1, 2, 4)).astype(np.float32)
    v = rng.standard_normal((1, 1, 2, 4)).astype(np.float32)
    pk = rng.standard_normal((1, 1, 3, 4)).astype(np.float32)
    pv = rng.standard_normal((1, 1, 3, 4)).astype(np.float32)
    y, present_k, present_v = run_op("Attention", [q, k, v, None, pk, pv], {"is_causal": 1}, outputs=3)
    np.testing.assert_array_equal(present_k, np.concatenate([pk, k], axis=2))
    np.testing.assert_array_equal(present_v, np.concatenate([pv, v], axis=2))
    # query i sits at position 3 + i: it sees keys 0..3+i
    allowed = np.arange(5)[None, :] <= 3 + np.arange(2)[:, None]
    np.testing.assert_allclose(y, naive_attention(q, present_k, present_v, allowed=allowed), rtol=1e-5)


def test_fully_masked_rows_are_zero_and_qk_modes(run_op, rng):
    q = rng.standard_normal((1, 1, 2, 4)).astype(np.float32)
    k = rng.standard_normal((1, 1, 3, 4)).astype(np.float32)
    v = rng.standard_normal((1, 1, 3, 4)).astype(np.float32)
    mask = np.array([[True, False, True], [False, False, False]])
    y, _, _, probs = run_op("Attention", [q, k, v, mask], {"qk_matmul_output_mode": 3}, outputs=4)
    assert np.all(y[0, 0, 1] == 0) and np.all(probs[0, 0, 1] == 0)
    np.testing.assert_allclose(probs[0, 0, 0].sum(), 1, rtol=1e-6)
    assert probs[0, 0, 0, 1] == 0
    _, _, _, raw = run_op("Attention", [q, k, v, mask], {"qk_matmul_output_mode": 0, "scale": 0.5}, outputs=4)
    np.testing.assert_allclose(raw[0, 0], q[0, 0] @ k[0, 0].T * 0.5, rtol=1e-5)
    _, _, _, capped = run_op("Attention", [q, k, v], {"qk_matmul_output_mode": 1, "softcap": 0.5}, outputs=4)
    np.testing.assert_allclose(capped[0, 0], 0.5 * np.tanh(q[0, 0] @ k[0, 0].T / 2 / 0.5), rtol=1e-5)


def test_float_mask_is_added(run_op, rng):
    q = rng.standard_normal((1, 2, 3, 4)).astype(np.float32)
    k = rng.standard_normal((1, 2, 4, 4)).astype(np.float32)
    v = rng.standard_normal((1, 2, 4, 4)).astype(np.float32)
    bias = rng.standard_normal((3, 4)).astype(np.float32)
    y = run_op("Attention", [q, k, v, bias])
    np.testing.assert_allclose(y, naive_attention(q, k, v, bias=bias), rtol=1e-5, atol=1e-6)


def test_nonpad_kv_seqlen_bottom_right_and_window(run_op, rng):
    q = rng.standard_normal((2, 1, 2, 4)).astype(np.float32)
    k = rng.standard_normal((2, 1, 6, 4)).astype(np.float32)
    v = rng.standard_normal((2, 1, 6, 4)).astype(np.float32)
    nonpad = np.array([4, 6], np.int64)
    y = run_op("Attention", [q, k, v, None, None, None, nonpad],
               {"is_causal": 1, "left_window_size": 1})
    for b in range(2):
        pos = nonpad[b] - 2 + np.arange(2)[:, None]  # absolute positions of the queries
        keys = np.arange(6)[None, :]
        allowed = (keys <= pos) & (keys >= pos - 1) & (keys < nonpad[b])
        np.testing.assert_allclose(y[b:b + 1], naive_attention(q[b:b + 1], k[b:b + 1], v[b:b + 1], allowed=allowed),
                                   rtol=1e-5, atol=1e-6)


def test_fp16_stays_fp16(run_op, rng):
    q = rng.random((1, 2, 3, 8)).astype(np.float16)
    y = run_op("Attention", [q, q, q])
    assert y.dtype == np.float16
    np.testing.assert_allclose(y.astype(np.float32), naive_attention(q, q, q), rtol=2e-3, atol=1e-3)
