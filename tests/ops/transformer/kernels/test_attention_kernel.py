"""Scaled dot-product attention kernel (online softmax, causal and padding masks) against NumPy."""

import numpy as np
import pytest

from opencann.ops.transformer.kernels.attention import attention, attention_backward


def attention_ref(q, k, v, causal=False, lens=None, kpm=None):
    q, k, v = (t.astype(np.float64) for t in (q, k, v))
    s = q @ np.swapaxes(k, -1, -2) / np.sqrt(q.shape[-1])
    B, H, Sq, Skv = s.shape
    valid = np.ones((B, 1, Sq, Skv), bool)
    if causal:
        valid &= np.tril(np.ones((Sq, Skv), bool))[None, None]
    if lens is not None:
        valid &= (np.arange(Skv)[None, :] < np.asarray(lens)[:, None])[:, None, None, :]
    if kpm is not None:
        valid &= kpm[:, None, None, :]
    s = np.where(valid, s, -np.inf)
    m = s.max(-1, keepdims=True)
    m = np.where(np.isinf(m), 0, m)
    e = np.exp(s - m)
    l = e.sum(-1, keepdims=True)
    return (e / np.where(l == 0, 1, l)) @ v


def _qkv(B, H, Sq, Skv, D, seed=0):
    rng = np.random.default_rng(seed)
    return (rng.standard_normal((B, H, Sq, D)).astype(np.float32),
            rng.standard_normal((B, H, Skv, D)).astype(np.float32),
            rng.standard_normal((B, H, Skv, D)).astype(np.float32))


@pytest.mark.parametrize("backend", ["ref", "cpu"])
@pytest.mark.parametrize("causal", [False, True])
def test_attention_small(backend, causal):
    q, k, v = _qkv(1, 2, 5, 7, 16)
    np.testing.assert_allclose(attention(q, k, v, causal=causal, backend=backend),
                               attention_ref(q, k, v, causal), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("backend", ["ref", "cpu"])
@pytest.mark.parametrize("causal", [False, True])
def test_attention_blocks_and_padding(backend, causal):
    q, k, v = _qkv(2, 3, 70, 130, 32)
    lens = [3, 130]
    np.testing.assert_allclose(attention(q, k, v, causal=causal, kv_lens=lens, backend=backend),
                               attention_ref(q, k, v, causal, lens=lens), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(attention(q, k, v, causal=causal, backend=backend),
                               attention_ref(q, k, v, causal), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("backend", ["ref", "cpu"])
def test_attention_key_padding_mask(backend):
    q, k, v = _qkv(2, 3, 70, 130, 32)
    kpm = np.random.default_rng(1).random((2, 130)) > 0.3
    np.testing.assert_allclose(attention(q, k, v, causal=True, key_padding_mask=kpm, backend=backend),
                               attention_ref(q, k, v, True, kpm=kpm), rtol=1e-4, atol=1e-4)


def test_attention_three_d_and_fully_masked_rows():
    rng = np.random.default_rng(1)
    q = rng.standard_normal((2, 4, 8)).astype(np.float32)
    out = attention(q, q, q, key_padding_mask=np.zeros((1, 4), bool))
    assert out.shape == (2, 4, 8) and not out.any()


@pytest.mark.parametrize("backend", ["ref", "cpu"])
@pytest.mark.parametrize("shape", [(2, 1, 70, 130), (1, 1, 70, 130), (2, 3, 1, 130), (70, 130)])
def test_attention_additive_mask(backend, shape):
    """An additive mask of any broadcastable shape, with 0 / finfo.min / -inf / arbitrary values,
    including a row masked everywhere by finite values (softmax averages it)."""
    q, k, v = _qkv(2, 3, 70, 130, 32)
    rng = np.random.default_rng(2)
    mask = rng.standard_normal(shape).astype(np.float32)
    mask[..., :5] = np.finfo(np.float32).min
    mask[..., 5:9] = -np.inf
    if len(shape) == 4 and shape[2] > 1:
        mask[0, 0, 3, :] = np.finfo(np.float32).min  # a query that sees no key
    s = q.astype(np.float64) @ np.swapaxes(k, -1, -2).astype(np.float64) / np.sqrt(32) + mask
    e = np.exp(s - s.max(-1, keepdims=True))
    want = (e / e.sum(-1, keepdims=True)) @ v
    got = attention(q, k, v, additive_mask=mask, backend=backend)
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("backend", ["ref", "cpu"])
def test_attention_reads_and_writes_head_views(backend):
    """Heads split off (B, S, H*D) projections by reshape + transpose are read where they lie,
    and `out` may be the (B, H, S, D) view of a (B, S, H, D) buffer."""
    rng = np.random.default_rng(4)
    B, S, H, D = 2, 37, 3, 16
    qkv = rng.standard_normal((B, S, 3 * H * D)).astype(np.float32)
    q, k, v = (qkv[..., i * H * D:(i + 1) * H * D].reshape(B, S, H, D).transpose(0, 2, 1, 3)
               for i in range(3))
    assert not q.flags.c_contiguous
    buf = np.full((B, S, H, D), np.nan, np.float32)
    got = attention(q, k, v, causal=True, backend=backend, out=buf.transpose(0, 2, 1, 3))
    want = attention_ref(q, k, v, True)
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(buf, want.transpose(0, 2, 1, 3), rtol=1e-4, atol=1e-4)
    with pytest.raises(ValueError, match="last dim must be contiguous"):
        attention(q, k, v, backend=backend, out=np.empty((B, H, D, S), np.float32).swapaxes(2, 3))


def _grads_ref(q, k, v, dout, causal, scale):
    """(out, lse, dq, dk, dv) in float64, from the full score matrix (grouped heads repeated)."""
    g = q.shape[1] // k.shape[1]
    q, dout = q.astype(np.float64), dout.astype(np.float64)
    kk, vv = (np.repeat(t.astype(np.float64), g, axis=1) for t in (k, v))
    s = q @ np.swapaxes(kk, -1, -2) * scale
    if causal:
        s = np.where(np.tril(np.ones(s.shape[-2:], bool)), s, -np.inf)
    m = s.max(-1, keepdims=True)
    e = np.exp(s - m)
    l = e.sum(-1, keepdims=True)
    p = e / l
    out = p @ vv
    ds = p * (dout @ np.swapaxes(vv, -1, -2) - (dout * out).sum(-1, keepdims=True)) * scale
    b, h, skv, d = kk.shape
    dk = (np.swapaxes(ds, -1, -2) @ q).reshape(b, h // g, g, skv, d).sum(2)
    dv = (np.swapaxes(p, -1, -2) @ dout).reshape(b, h // g, g, skv, d).sum(2)
    return out, (m + np.log(l))[..., 0], ds @ kk, dk, dv


@pytest.mark.parametrize("one_pass", [False, True])
@pytest.mark.parametrize("backend", ["ref", "cpu"])
@pytest.mark.parametrize("B,H,Hk,Sq,Skv,D,causal", [
    (2, 3, 3, 70, 130, 32, False),   # edge blocks on both sides
    (2, 3, 3, 70, 70, 32, True),
    (1, 4, 2, 5, 7, 16, False),      # grouped-query attention
    (2, 4, 1, 33, 33, 16, True),     # multi-query, causal
])
def test_attention_lse_and_backward(one_pass, backend, B, H, Hk, Sq, Skv, D, causal):
    """The forward's log-sum-exp and the flash-attention backward (dq, dk, dv recomputed from
    it; one kernel or two) against the full-matrix gradients; gradients from elsewhere added to
    dk and dv in the same call."""
    rng = np.random.default_rng(5)
    q = rng.standard_normal((B, H, Sq, D)).astype(np.float32)
    k, v = (rng.standard_normal((B, Hk, Skv, D)).astype(np.float32) for _ in range(2))
    dout = rng.standard_normal((B, H, Sq, D)).astype(np.float32)
    want = _grads_ref(q, k, v, dout, causal, 0.3)
    lse = np.empty((B, H, Sq), np.float32)
    out = attention(q, k, v, causal=causal, scale=0.3, lse=lse, backend=backend)
    got = (out, lse) + attention_backward(q, k, v, out, dout, lse, causal=causal, scale=0.3,
                                          backend=backend, one_pass=one_pass)
    for name, g, w in zip(("out", "lse", "dq", "dk", "dv"), got, want):
        assert g.shape == w.shape, name
        np.testing.assert_allclose(g, w, rtol=1e-4, atol=1e-4 * np.abs(w).max(), err_msg=name)
    ka, va = (rng.standard_normal(k.shape).astype(np.float32) for _ in range(2))
    got = attention_backward(q, k, v, out, dout, lse, causal=causal, scale=0.3, backend=backend,
                             one_pass=one_pass, dk_add=ka, dv_add=va.transpose(0, 2, 1, 3).copy()
                             .transpose(0, 2, 1, 3))
    for name, g, w in zip(("dk", "dv"), got[1:], (want[3] + ka, want[4] + va)):
        np.testing.assert_allclose(g, w, rtol=1e-4, atol=1e-4 * np.abs(w).max(), err_msg=name)


def test_attention_backward_reads_head_views():
    """q, k, v as heads of one (B, S, 3*H*D) projection and dout as a transposed view are read
    where they lie; the result matches contiguous copies bit for bit."""
    rng = np.random.default_rng(6)
    B, S, H, D = 2, 40, 3, 16
    qkv = rng.standard_normal((B, S, 3 * H * D)).astype(np.float32)
    q, k, v = (qkv[..., i * H * D:(i + 1) * H * D].reshape(B, S, H, D).transpose(0, 2, 1, 3)
               for i in range(3))
    dout = rng.standard_normal((B, S, H, D)).astype(np.float32).transpose(0, 2, 1, 3)
    lse = np.empty((B, H, S), np.float32)
    out = attention(q, k, v, causal=True, lse=lse)
    got = attention_backward(q, k, v, out, dout, lse, causal=True)
    want = attention_backward(*(np.ascontiguousarray(t) for t in (q, k, v, out, dout)), lse,
                              causal=True)
    for g, w in zip(got, want):
        np.testing.assert_array_equal(g, w)
        assert g.transpose(0, 2, 1, 3).flags.c_contiguous  # heads merged: (B, S, H, D) in memory
    with pytest.raises(ValueError, match="lse must be"):
        attention_backward(q, k, v, out, dout, lse[:, :1])
