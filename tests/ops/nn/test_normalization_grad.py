"""LayerNormalizationGrad (domain ai.opencann): the reference against finite differences of
LayerNormalization, the cpu kernel against the reference, and type inference."""

import numpy as np
import pytest

from opencann.ops.infer import InferError
from opencann.ops.nn.normalization import layer_norm
from opencann.ops.nn.normalization_grad import layer_norm_grad
from opencann.ops.registry import OPENCANN_DOMAIN


@pytest.mark.parametrize("axis", [-1, -2])
def test_reference_matches_finite_differences(axis):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((3, 4, 5))
    w = rng.standard_normal(x.shape[axis % 3:])
    b = rng.standard_normal(w.shape)
    dy = rng.standard_normal(x.shape)
    _, mean, rstd = layer_norm(x, w, b, axis=axis, epsilon=1e-5, stash_type=11)
    dx, dw, db = layer_norm_grad(dy, x, mean, rstd, w, axis=axis)

    def loss(x_, w_, b_):
        return (layer_norm(x_, w_, b_, axis=axis, epsilon=1e-5, stash_type=11)[0] * dy).sum()

    eps = 1e-6
    for arr, grad, idx in ((x, dx, (1, 2, 3)), (x, dx, (0, 0, 0)), (w, dw, (2,) * w.ndim),
                           (b, db, (1,) * b.ndim)):
        up, down = arr.copy(), arr.copy()
        up[idx] += eps
        down[idx] -= eps
        args_up = [up if a is arr else a for a in (x, w, b)]
        args_down = [down if a is arr else a for a in (x, w, b)]
        assert abs((loss(*args_up) - loss(*args_down)) / (2 * eps) - grad[idx]) < 1e-6


@pytest.mark.parametrize("shape", [(2, 7, 384), (37, 20)])
@pytest.mark.parametrize("with_scale", [True, False])
def test_cpu_kernel_matches_the_reference(run_op, shape, with_scale):
    rng = np.random.default_rng(1)
    x = rng.standard_normal(shape).astype(np.float32)
    dy = rng.standard_normal(shape).astype(np.float32)
    w = rng.standard_normal(shape[-1]).astype(np.float32)
    _, mean, rstd = layer_norm(x, w, None, axis=-1, epsilon=1e-5, stash_type=1)
    ins = [dy, x, mean, rstd] + ([w] if with_scale else [])
    got = run_op("LayerNormalizationGrad", ins, domain=OPENCANN_DOMAIN, outputs=3, backend="cpu")
    want = run_op("LayerNormalizationGrad", ins, domain=OPENCANN_DOMAIN, outputs=3)
    for g, e in zip(got, want):
        assert g.shape == e.shape and g.dtype == np.float32
        np.testing.assert_allclose(g, e, rtol=1e-4, atol=1e-4 * max(1.0, np.abs(e).max()))


def test_inference(infer_op, tt):
    dx, dw, db = infer_op("LayerNormalizationGrad", [tt("float32", "b", 4, 8), tt("float32", "b", 4, 8),
                                                     tt("float32", "b", 4, 1), tt("float32", "b", 4, 1),
                                                     tt("float32", 8)], domain=OPENCANN_DOMAIN)
    assert dx.shape == ("b", 4, 8) and dw.shape == (8,) and db.shape == (8,)
    with pytest.raises(InferError, match="share a dtype"):
        infer_op("LayerNormalizationGrad", [tt("float16", 2, 8), tt("float32", 2, 8), tt("float32", 2, 1),
                                            tt("float32", 2, 1)], domain=OPENCANN_DOMAIN)
