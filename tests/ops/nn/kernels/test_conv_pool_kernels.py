"""conv2d (im2col + GEMM) and pooling kernels against direct NumPy loops."""

import numpy as np
import pytest

from opencann.ops.nn.kernels.conv import conv2d
from opencann.ops.nn.kernels.pool import avg_pool2d, max_pool2d


def conv_ref(x, w, b, stride, pad, dil, groups):
    n, c, h, wd = x.shape
    co, cg, kh, kw = w.shape
    xp = np.pad(x.astype(np.float64), ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    oh = (h + 2 * pad - dil * (kh - 1) - 1) // stride + 1
    ow = (wd + 2 * pad - dil * (kw - 1) - 1) // stride + 1
    out = np.zeros((n, co, oh, ow))
    og = co // groups
    for g in range(groups):
        for i in range(kh):
            for j in range(kw):
                patch = xp[:, g * cg:(g + 1) * cg, i * dil:i * dil + stride * oh:stride,
                           j * dil:j * dil + stride * ow:stride]
                out[:, g * og:(g + 1) * og] += np.einsum("nchw,oc->nohw", patch, w[g * og:(g + 1) * og, :, i, j])
    return out if b is None else out + b[None, :, None, None]


CASES = [  # n, c, h, w, cout, k, stride, pad, dilation, groups
    (2, 4, 9, 7, 6, 3, 2, 1, 1, 2), (1, 3, 8, 8, 4, 1, 1, 0, 1, 1), (1, 4, 6, 6, 4, 3, 1, 2, 2, 4),
    (1, 2, 5, 5, 3, 5, 1, 0, 1, 1)]


@pytest.mark.parametrize("backend", ["ref", "cpu"])
@pytest.mark.parametrize("case", CASES)
def test_conv2d(backend, case):
    n, c, h, w, co, k, s, p, d, g = case
    rng = np.random.default_rng(0)
    x = rng.standard_normal((n, c, h, w)).astype(np.float32)
    wt = rng.standard_normal((co, c // g, k, k)).astype(np.float32)
    b = rng.standard_normal(co).astype(np.float32)
    np.testing.assert_allclose(conv2d(x, wt, b, s, p, d, g, backend=backend), conv_ref(x, wt, b, s, p, d, g),
                               rtol=1e-4, atol=1e-4)


def test_conv2d_relu_and_empty():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((1, 2, 6, 6)).astype(np.float32)
    wt = rng.standard_normal((3, 2, 3, 3)).astype(np.float32)
    np.testing.assert_allclose(conv2d(x, wt, padding=1, activation="relu"),
                               np.maximum(conv_ref(x, wt, None, 1, 1, 1, 1), 0), rtol=1e-4, atol=1e-4)
    assert conv2d(np.zeros((0, 2, 6, 6), np.float32), wt).shape == (0, 3, 4, 4)


def pool_ref(x, k, s, p, d, is_max):
    n, c, h, w = x.shape
    oh = (h + 2 * p - d * (k - 1) - 1) // s + 1
    ow = (w + 2 * p - d * (k - 1) - 1) // s + 1
    out = np.zeros((n, c, oh, ow), np.float32)
    for i in range(oh):
        for j in range(ow):
            vals = []
            for a in range(k):
                for b in range(k):
                    y, z = i * s - p + a * d, j * s - p + b * d
                    if 0 <= y < h and 0 <= z < w:
                        vals.append(x[:, :, y, z])
            v = np.stack(vals)
            out[:, :, i, j] = v.max(0) if is_max else v.mean(0)
    return out


@pytest.mark.parametrize("backend", ["ref", "cpu"])
@pytest.mark.parametrize("k,s,p,d", [(3, 2, 1, 1), (2, 2, 0, 1), (3, 1, 1, 2), (4, 2, 1, 1), (5, 1, 2, 1)])
def test_pooling(backend, k, s, p, d):
    x = np.random.default_rng(2).standard_normal((2, 3, 9, 8)).astype(np.float32)
    np.testing.assert_allclose(max_pool2d(x, k, s, p, d, backend=backend), pool_ref(x, k, s, p, d, True))
    if d == 1:
        np.testing.assert_allclose(avg_pool2d(x, k, s, p, backend=backend), pool_ref(x, k, s, p, 1, False),
                                   rtol=1e-5, atol=1e-6)


def test_big_window_is_swept_by_loops():
    """Windows over UNROLL_TAPS taps (a ResNet's 7x7 average pool) run the looped form, with
    the same results as the unrolled one."""
    from opencann.ops.nn.kernels import pool

    x = np.random.default_rng(3).standard_normal((1, 4, 7, 7)).astype(np.float32)
    assert 7 * 7 > pool.UNROLL_TAPS
    np.testing.assert_allclose(avg_pool2d(x, 7, 1), x.mean(axis=(2, 3), keepdims=True), rtol=1e-5,
                               atol=1e-6)
    np.testing.assert_allclose(max_pool2d(x, 7, 1), x.max(axis=(2, 3), keepdims=True))


@pytest.mark.parametrize("backend", ["ref", "cpu"])
def test_small_outputs_take_the_transposed_form(backend):
    """Convolutions with a window of more than one tap run as taps^T @ W^T (tap rows copied from
    the input made NHWC, the weights as panels, the result stored straight into NCHW): bias,
    activation, residual, stride, padding, dilation, few channels and a batch of two give the
    direct sum."""
    from opencann.ops.nn.kernels import conv as conv_k

    rng = np.random.default_rng(3)
    c = 19
    x = rng.standard_normal((2, c, 9, 8)).astype(np.float32)
    wt = rng.standard_normal((40, c, 3, 3)).astype(np.float32)
    b = rng.standard_normal(40).astype(np.float32)
    res = rng.standard_normal((2, 40, 5, 4)).astype(np.float32)
    conv = conv_k.Conv2d(wt, b, 2, 1, activation="relu", res_activation="relu", algo="im2col",
                         backend=backend)
    got = conv(x, res)
    assert conv._panels is not None  # the transposed form ran
    want = np.maximum(np.maximum(conv_ref(x, wt, b, 2, 1, 1, 1), 0) + res, 0)
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)
    for cin, dil in ((3, 1), (3, 2)):  # spans of KW*C floats per window row; dilated: per tap
        few = conv_k.Conv2d(wt[:, :cin], None, 1, dil, dil, algo="im2col", backend=backend)
        np.testing.assert_allclose(few(x[:, :cin]),
                                   conv_ref(x[:, :cin], wt[:, :cin], None, 1, dil, dil, 1),
                                   rtol=1e-4, atol=1e-4)
        assert few._panels is not None
