"""Softmax, log-softmax, layer norm and RMS norm kernels against NumPy."""

import ml_dtypes
import numpy as np
import pytest

from opencann.ops.nn.kernels.normalization import layer_norm, rms_norm
from opencann.ops.nn.kernels.softmax import log_softmax, softmax

SHAPES = [(3, 5), (7, 1000), (2, 3, 17), (1, 1), (0, 8), (2, 9000)]


def _softmax(x):
    e = np.exp(x - x.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


@pytest.mark.parametrize("backend", ["ref", "cpu"])
@pytest.mark.parametrize("shape", SHAPES)
def test_softmax(backend, shape):
    x = np.random.default_rng(0).standard_normal(shape).astype(np.float32) * 5
    np.testing.assert_allclose(softmax(x, backend=backend), _softmax(x), rtol=1e-5, atol=1e-7)
    if x.size:
        np.testing.assert_allclose(log_softmax(x, backend=backend), np.log(_softmax(x)), rtol=1e-5, atol=1e-5)


def test_softmax_masked_rows_and_half_precision():
    x = np.array([[-np.inf, 0, 1], [-np.inf] * 3], np.float32)
    out = softmax(x)
    np.testing.assert_allclose(out[0], _softmax(x[:1])[0], rtol=1e-6)
    assert np.isnan(out[1]).all()  # as NumPy: a row of -inf has no softmax
    h = np.random.default_rng(1).standard_normal((4, 30)).astype(ml_dtypes.bfloat16)
    out = softmax(h)
    assert out.dtype == h.dtype
    np.testing.assert_allclose(out.astype(np.float32), _softmax(h.astype(np.float32)), atol=1e-2)


@pytest.mark.parametrize("backend", ["ref", "cpu"])
@pytest.mark.parametrize("shape", SHAPES)
def test_layer_norm_and_rms_norm(backend, shape):
    rng = np.random.default_rng(1)
    x = rng.standard_normal(shape).astype(np.float32) + 3
    w = rng.standard_normal(shape[-1]).astype(np.float32)
    b = rng.standard_normal(shape[-1]).astype(np.float32)
    ln = (x - x.mean(-1, keepdims=True)) / np.sqrt(x.var(-1, keepdims=True) + 1e-5) * w + b
    np.testing.assert_allclose(layer_norm(x, w, b, backend=backend), ln, rtol=1e-4, atol=1e-4)
    rn = x / np.sqrt((x * x).mean(-1, keepdims=True) + 1e-6) * w
    np.testing.assert_allclose(rms_norm(x, w, backend=backend), rn, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(layer_norm(x, backend=backend), (x - x.mean(-1, keepdims=True)) /
                               np.sqrt(x.var(-1, keepdims=True) + 1e-5), rtol=1e-4, atol=1e-4)
