import numpy as np
import pytest

from opencann import dtypes
from opencann.ir import TensorType
from opencann.ops.infer import InferError


def test_values_and_alpha(run_op, rng):
    a = rng.standard_normal((3, 5)).astype(np.float32) * 4
    b = rng.standard_normal((3, 5)).astype(np.float32)
    for alpha in (1.0, 0.5):
        y = run_op("SwiGLU", [a, b], {"alpha": alpha}, opset=28)
        expected = a.astype(np.float64) / (1 + np.exp(-alpha * a.astype(np.float64))) * b
        np.testing.assert_allclose(y, expected, rtol=1e-6, atol=1e-7)


def test_no_overflow_for_large_gates(run_op):
    a = np.array([-1e4, -100.0, 100.0, 1e4], np.float32)
    y = run_op("SwiGLU", [a, np.ones_like(a)], opset=28)
    assert np.all(np.isfinite(y))
    np.testing.assert_allclose(y, [0, -100 * np.exp(-100.0), 100, 1e4], rtol=1e-6, atol=1e-40)


def test_float16(run_op, rng):
    a = rng.standard_normal((4,)).astype(np.float16)
    y = run_op("SwiGLU", [a, a], opset=28)
    assert y.dtype == np.float16
    af = a.astype(np.float64)
    np.testing.assert_allclose(y, af * af / (1 + np.exp(-af)), rtol=2e-3)


def test_infer_requires_equal_shapes(infer_op):
    t = TensorType(dtypes.float32, ("N", 8))
    assert infer_op("SwiGLU", [t, TensorType(dtypes.float32, (4, 8))], opset=28).shape == (4, 8)
    with pytest.raises(InferError, match="same shape"):
        infer_op("SwiGLU", [t, TensorType(dtypes.float32, ("N", 1))], opset=28)
