"""FlashAttention / FlashAttentionGrad (domain ai.opencann): the references against the full
score-matrix computation and finite differences, the cpu kernels against the references, and
type inference."""

import numpy as np
import pytest

from opencann.ops.infer import InferError
from opencann.ops.transformer.flash_attention import DOMAIN, flash_attention, flash_attention_grad


def _inputs(rng, B=2, H=4, Hk=2, Sq=9, Skv=11, D=8):
    q = rng.standard_normal((B, H, Sq, D)).astype(np.float32)
    k, v = (rng.standard_normal((B, Hk, Skv, D)).astype(np.float32) for _ in range(2))
    return q, k, v


@pytest.mark.parametrize("causal", [0, 1])
def test_reference_matches_softmax_attention(rng, causal):
    q, k, v = _inputs(rng, Sq=9, Skv=9)
    y, lse = flash_attention(q, k, v, causal=causal, scale=None)
    kk, vv = np.repeat(k, 2, axis=1).astype(np.float64), np.repeat(v, 2, axis=1)
    s = q @ np.swapaxes(kk, -1, -2) / np.sqrt(8)
    if causal:
        s = np.where(np.tril(np.ones((9, 9), bool)), s, -np.inf)
    p = np.exp(s - s.max(-1, keepdims=True))
    np.testing.assert_allclose(y, (p / p.sum(-1, keepdims=True)) @ vv, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(lse, np.log(np.exp(s).sum(-1)), rtol=1e-5, atol=1e-6)
    assert lse.dtype == np.float32 and lse.shape == (2, 4, 9)


@pytest.mark.parametrize("causal", [0, 1])
def test_gradient_reference_matches_finite_differences(rng, causal):
    """d<dY, Y>/dX by central differences in float64, for one element of each of Q, K and V."""
    q, k, v = (t.astype(np.float64) for t in _inputs(rng, B=1, H=2, Hk=1, Sq=5, Skv=5, D=4))
    dy = rng.standard_normal((1, 2, 5, 4))
    y, lse = flash_attention(q, k, v, causal=causal, scale=0.7)
    grads = flash_attention_grad(dy, q, k, v, y, lse, causal=causal, scale=0.7)
    for which, g in enumerate(grads):
        for idx in [(0, 0, 1, 2), (0, 0, 4, 3)] if which == 0 else [(0, 0, 2, 1), (0, 0, 0, 0)]:
            args = [q.copy(), k.copy(), v.copy()]
            eps = 1e-6
            args[which][idx] += eps
            up = (flash_attention(*args, causal=causal, scale=0.7)[0] * dy).sum()
            args[which][idx] -= 2 * eps
            down = (flash_attention(*args, causal=causal, scale=0.7)[0] * dy).sum()
            assert abs((up - down) / (2 * eps) - g[idx]) < 1e-5, (which, idx)


@pytest.mark.parametrize("causal", [0, 1])
def test_cpu_kernels_match_the_references(run_op, rng, causal):
    q, k, v = _inputs(rng, Sq=70, Skv=70 if causal else 90, D=16)
    attrs = {"causal": causal, "scale": 0.25}
    got = run_op("FlashAttention", [q, k, v], attrs, domain=DOMAIN, outputs=2, backend="cpu")
    want = run_op("FlashAttention", [q, k, v], attrs, domain=DOMAIN, outputs=2)
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, rtol=1e-4, atol=1e-5)
    dy = rng.standard_normal(q.shape).astype(np.float32)
    ins = [dy, q, k, v, want[0], want[1]]
    got = run_op("FlashAttentionGrad", ins, attrs, domain=DOMAIN, outputs=3, backend="cpu")
    want = run_op("FlashAttentionGrad", ins, attrs, domain=DOMAIN, outputs=3)
    for g, w in zip(got, want):
        assert g.shape == w.shape
        np.testing.assert_allclose(g, w, rtol=1e-4, atol=1e-4 * np.abs(w).max())


def test_inference(infer_op, tt):
    y, lse = infer_op("FlashAttention", [tt("float32", "b", 4, "s", 8), tt("float32", "b", 2, "s", 8),
                                         tt("float32", "b", 2, "s", 6)], domain=DOMAIN)
    assert y.shape == ("b", 4, "s", 6) and lse.shape == ("b", 4, "s") and lse.dtype.name == "float32"
    with pytest.raises(InferError, match="multiple of kv heads"):
        infer_op("FlashAttention", [tt("float32", 1, 3, 5, 8), tt("float32", 1, 2, 5, 8),
                                    tt("float32", 1, 2, 5, 8)], domain=DOMAIN)
