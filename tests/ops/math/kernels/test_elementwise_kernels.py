"""Broadcasting binary, unary and triad kernels against NumPy."""

import math

import ml_dtypes
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from opencann.ops.math.kernels import elementwise as ew

SHAPES = [((5, 7), (7,)), ((3, 1, 5), (1, 4, 1)), ((1000,), (1000,)), ((2, 3, 4, 5), (3, 1, 5)),
          ((0, 3), (3,)), ((4, 1), ()), ((2, 1, 3, 1, 2), (1, 5, 1, 4, 1))]


@pytest.mark.parametrize("backend", ["ref", "cpu"])
@pytest.mark.parametrize("sa,sb", SHAPES)
def test_broadcasting_binary(backend, sa, sb):
    rng = np.random.default_rng(0)
    a = rng.standard_normal(sa).astype(np.float32)
    b = rng.standard_normal(sb).astype(np.float32)
    for op, f in [("add", np.add), ("mul", np.multiply), ("max", np.maximum), ("sub", np.subtract)]:
        out = ew.binary(a, b, op, backend=backend)
        assert out.shape == np.broadcast_shapes(sa, sb)
        np.testing.assert_allclose(out, f(a, b), rtol=1e-6)


@settings(max_examples=10, deadline=None)
@given(shape=st.lists(st.integers(1, 6), min_size=1, max_size=4), data=st.data())
def test_broadcasting_random_shapes_cpu(shape, data):
    other = [data.draw(st.sampled_from([1, d])) for d in shape][data.draw(st.integers(0, len(shape) - 1)):]
    rng = np.random.default_rng(len(shape))
    a = rng.standard_normal(shape).astype(np.float32)
    b = rng.standard_normal(other).astype(np.float32)
    np.testing.assert_allclose(ew.binary(b, a, "div"), b / a, rtol=1e-6)


@pytest.mark.parametrize("dtype", [np.float16, ml_dtypes.bfloat16, np.int32, np.int64])
def test_binary_dtypes(dtype):
    rng = np.random.default_rng(1)
    a = (rng.standard_normal((6, 50)) * 10).astype(dtype)
    b = (rng.standard_normal(50) * 10).astype(dtype)
    out = ew.add(a, b)
    assert out.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(out, (a.astype(np.float64) + b.astype(np.float64)).astype(dtype)
                                  if np.dtype(dtype).kind == "i" else
                                  (a.astype(np.float32) + b.astype(np.float32)).astype(dtype))


@pytest.mark.parametrize("backend", ["ref", "cpu"])
@pytest.mark.parametrize("op", ew.UNARY_OPS)
def test_unary(backend, op):
    rng = np.random.default_rng(2)
    x = rng.standard_normal(2500).astype(np.float32) * 3
    if op in ("log", "sqrt", "rsqrt"):
        x = np.abs(x) + np.float32(0.01)
    xd = x.astype(np.float64)
    erf = np.vectorize(math.erf)
    with np.errstate(invalid="ignore"):
        ref = _unary_ref(xd, erf)[op]
    np.testing.assert_allclose(ew.unary(x, op, backend=backend), ref, rtol=3e-6, atol=1e-6)


def _unary_ref(xd, erf):
    return {"neg": -xd, "abs": abs(xd), "exp": np.exp(xd), "log": np.log(xd), "sqrt": np.sqrt(xd),
           "rsqrt": 1 / np.sqrt(xd), "tanh": np.tanh(xd), "erf": erf(xd), "sigmoid": 1 / (1 + np.exp(-xd)),
           "relu": np.maximum(xd, 0), "gelu": 0.5 * xd * (1 + erf(xd / math.sqrt(2))),
           "silu": xd / (1 + np.exp(-xd)), "floor": np.floor(xd), "ceil": np.ceil(xd)}


@pytest.mark.parametrize("backend", ["ref", "cpu"])
def test_triad(backend):
    b = np.arange(10001, dtype=np.float32)
    c = np.ones(10001, np.float32)
    np.testing.assert_array_equal(ew.triad(b, c, 3.0, backend=backend), b + 3 * c)
    assert ew.triad(np.zeros(0, np.float32), np.zeros(0, np.float32), 1.0).shape == (0,)
