import numpy as np
import pytest

from opencann import dtypes
from opencann.ir import TensorType
from opencann.ops.infer import InferError


def rope_complex(x_bshd, theta_bs_half):
    """RoPE as complex multiplication: feature pairs (i, i + d/2) rotate by theta (float64)."""
    half = x_bshd.shape[-1] // 2
    z = x_bshd[..., :half] + 1j * x_bshd[..., half:]
    z = z * np.exp(1j * theta_bs_half)[:, :, None, :]
    return np.concatenate([z.real, z.imag], axis=-1)


def test_matches_complex_rotation_with_position_ids(run_op, rng):
    b, h, s, d = 2, 3, 4, 8
    x = rng.standard_normal((b, h, s, d)).astype(np.float32)
    angles = rng.random((16, d // 2))
    pos = rng.integers(0, 16, (b, s))
    y = run_op("RotaryEmbedding", [x, np.cos(angles).astype(np.float32), np.sin(angles).astype(np.float32), pos])
    expected = rope_complex(x.transpose(0, 2, 1, 3).astype(np.float64), angles[pos]).transpose(0, 2, 1, 3)
    np.testing.assert_allclose(y, expected, rtol=1e-5, atol=1e-6)


def test_interleaved_pairs_neighbours(run_op, rng):
    x = rng.standard_normal((1, 2, 4)).astype(np.float32)  # 3-D: (batch, seq, heads * head)
    theta = rng.random((1, 2, 2))
    y = run_op("RotaryEmbedding", [x, np.cos(theta).astype(np.float32), np.sin(theta).astype(np.float32)],
               {"interleaved": 1, "num_heads": 1})
    z = (x[..., 0::2] + 1j * x[..., 1::2]) * np.exp(1j * theta)
    expected = np.stack([z.real, z.imag], axis=-1).reshape(x.shape)
    np.testing.assert_allclose(y, expected, rtol=1e-5, atol=1e-6)


def test_partial_rotation_keeps_the_tail(run_op, rng):
    x = rng.standard_normal((1, 3, 2, 8)).astype(np.float32)
    theta = rng.random((1, 2, 2))
    y = run_op("RotaryEmbedding", [x, np.cos(theta).astype(np.float32), np.sin(theta).astype(np.float32)],
               {"rotary_embedding_dim": 4})
    np.testing.assert_array_equal(y[..., 4:], x[..., 4:])
    expected = rope_complex(x[..., :4].transpose(0, 2, 1, 3).astype(np.float64), theta).transpose(0, 2, 1, 3)
    np.testing.assert_allclose(y[..., :4], expected, rtol=1e-5, atol=1e-6)


def test_infer(infer_op):
    t = TensorType(dtypes.float16, ("B", "S", 64))
    c = TensorType(dtypes.float16, (128, 16))
    assert infer_op("RotaryEmbedding", [t, c, c, TensorType(dtypes.int64, ("B", "S"))],
                    {"num_heads": 2}, opset=23) == t
    with pytest.raises(InferError, match="num_heads"):
        infer_op("RotaryEmbedding", [t, c, c, TensorType(dtypes.int64, ("B", "S"))], opset=23)
    with pytest.raises(InferError, match="dtype"):
        infer_op("RotaryEmbedding", [t, TensorType(dtypes.float32, (128, 16)), c], {"num_heads": 2}, opset=23)
