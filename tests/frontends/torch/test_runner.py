"""The boundary between torch tensors and the engine: zero-copy where safe, never aliasing inputs
or the graph's constants, eager's strides for non-contiguous outputs, symbolic-size inputs."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import opencann.frontends.torch as oc
from opencann.errors import OpenCannError
from opencann.frontends.torch.runner import _layout, _span, _Spans, _to_torch, make_executor


def _compile(fn, **opts):
    return torch.compile(fn, backend="opencann", options={"fallback": False, **opts})


def test_outputs_do_not_alias_inputs():
    f = _compile(lambda x: (x.clone(), x.reshape(-1).clone(), x * 2))
    x = torch.arange(6.0).reshape(2, 3)
    with torch.no_grad():
        a, b, c = f(x)
    x.add_(100)  # the caller's input changes; outputs computed before must not
    assert torch.equal(a, torch.arange(6.0).reshape(2, 3))
    assert torch.equal(b, torch.arange(6.0))
    assert torch.equal(c, torch.arange(6.0).reshape(2, 3) * 2)


def test_constant_outputs_are_fresh_each_call():
    f = _compile(lambda x: (x + 1, torch.ones(3) * 4))
    with torch.no_grad():
        _, first = f(torch.zeros(2))
        first.add_(1)
        _, second = f(torch.zeros(2))
    assert torch.equal(second, torch.full((3,), 4.0))


def test_non_contiguous_outputs_have_eager_strides():
    def fn(x, w):
        return (x @ w).t(), (x @ w).permute(1, 0).contiguous(), (x + 1).transpose(0, 1)

    x, w = torch.randn(3, 4), torch.randn(4, 5)
    with torch.no_grad():
        expect, got = fn(x, w), _compile(fn)(x, w)
    for e, g in zip(expect, got):
        assert g.shape == e.shape and g.stride() == e.stride()
        assert torch.allclose(g, e, atol=1e-6)


def test_outputs_in_eager_layout_copy_at_most_once():
    """An output already in eager's memory order (the transpose of a product) crosses without a
    copy; a strided view in that order, or a view of an input, is copied once into that order."""
    prod = np.arange(12, dtype=np.float32).reshape(4, 3)
    none = _Spans([])
    t = _to_torch(prod.T, none, [1, 0], torch.float32)
    assert t.data_ptr() == prod.ctypes.data and t.stride() == (1, 3)
    assert torch.equal(t, torch.from_numpy(prod).t())
    qkv = np.arange(2 * 5 * 12, dtype=np.float32).reshape(2, 5, 12)
    q = qkv[:, :, :6].reshape(2, 5, 3, 2).transpose(0, 2, 1, 3)  # heads of a fused projection
    want = torch.from_numpy(np.ascontiguousarray(q.transpose(0, 2, 1, 3))).permute(0, 2, 1, 3)
    t = _to_torch(q, none, [0, 2, 1, 3], torch.float32)
    assert t.stride() == want.stride() and torch.equal(t, want)
    assert t.data_ptr() != qkv.ctypes.data
    # eager's own strides (it returns the head as a view of its projection too): no copy
    t = _to_torch(q, none, [0, 2, 1, 3], torch.float32, strides=(60, 2, 12, 1))
    assert t.data_ptr() == q.ctypes.data and t.stride() == (60, 2, 12, 1) and torch.equal(t, want)
    inp = np.arange(6, dtype=np.float32).reshape(2, 3)
    t = _to_torch(inp.T, _Spans([_span(inp)]), [1, 0], torch.float64)  # an input's view: a copy
    assert t.dtype == torch.float64 and t.stride() == (1, 3)
    assert torch.equal(t, torch.from_numpy(inp).double().t())
    inp[0, 0] = 100.0
    assert t[0, 0] == 0.0


def test_non_contiguous_inputs():
    f = _compile(lambda x, y: x * y + 1)
    x = torch.randn(4, 6)[:, ::2]
    y = torch.randn(3, 4).t()
    with torch.no_grad():
        assert torch.allclose(f(x, y), x * y + 1)


def test_a_node_returned_twice_is_one_tensor_and_heads_cross_as_views():
    """A training forward returns the same FX node as a user output and as a saved activation:
    one tensor for both (one copy, as eager has one). Heads split off a projection come back with
    eager's strides, and the backward reads them as they lie."""
    def fn(x, w):
        qkv = x @ w
        q = qkv[:, :, :4].reshape(2, 3, 2, 2).transpose(1, 2)
        k = qkv[:, :, 4:].reshape(2, 3, 2, 2).transpose(1, 2).contiguous()
        return q, k, k

    x, w = torch.randn(2, 3, 5), torch.randn(5, 8)
    with torch.no_grad():
        want, got = fn(x, w), _compile(fn)(x, w)
    assert got[1] is got[2]
    for e, g in zip(want, got):
        assert g.stride() == e.stride() and torch.allclose(g, e, atol=1e-6)
    x.requires_grad_(True)
    w.requires_grad_(True)
    f = _compile(lambda x, w: fn(x, w)[0].exp().sum())
    f(x, w).backward()
    gx, gw = x.grad.clone(), w.grad.clone()
    x.grad = w.grad = None
    fn(x, w)[0].exp().sum().backward()
    assert torch.allclose(gx, x.grad, atol=1e-5) and torch.allclose(gw, w.grad, atol=1e-5)


def test_layout_of_meta_tensors():
    t = torch.empty(2, 3, 4)
    assert _layout(t) is None
    assert _layout(t.permute(2, 0, 1)) == [1, 2, 0]
    assert _layout(torch.empty(3, 1).expand(3, 5)) is None  # broadcast views come back dense


def test_spans_find_overlaps():
    spans = _Spans([(100, 200), (300, 400), (50, 60)])
    assert spans.overlaps((150, 160)) and spans.overlaps((390, 500)) and spans.overlaps((0, 51))
    assert not spans.overlaps((200, 300)) and not spans.overlaps((60, 100)) and not spans.overlaps((400, 900))


def test_symbolic_sizes_cross_as_python_ints():
    def fn(x):
        return x.reshape(x.shape[0] * x.shape[1]), x.new_zeros(x.shape[1], 2)

    f = torch.compile(fn, backend="opencann", dynamic=True)
    with torch.no_grad():
        for shape in ((2, 3), (5, 7), (4, 2)):
            x = torch.randn(shape)
            a, b = f(x)
            assert torch.equal(a, x.reshape(-1)) and b.shape == (shape[1], 2)
    r = oc.report()
    assert r.graphs == 1 and r.records[0].symbolic


def test_one_executor_choice():
    from opencann.ir import Graph

    with pytest.raises(OpenCannError, match="engine .gpu."):
        make_executor(Graph("g"), "g", "gpu")
    with pytest.raises(Exception, match="engine"):
        torch.compile(lambda x: x + 1, backend="opencann", options={"engine": "gpu"})(torch.ones(1))


def test_default_engine_is_the_best_available(monkeypatch):
    """Without options the backend runs where models do: OPENCANN_BACKEND, else the compiled cpu
    engine where a C compiler exists, else the reference interpreter."""
    from opencann.backends import default_backend
    from opencann.frontends.torch import _options

    monkeypatch.delenv("OPENCANN_BACKEND", raising=False)
    assert _options(None)["engine"] == default_backend()
    assert _options({"engine": "ref"})["engine"] == "ref"
    monkeypatch.setenv("OPENCANN_BACKEND", "ref")
    assert _options(None)["engine"] == "ref"
    monkeypatch.setenv("OPENCANN_BACKEND", "gpu")
    with pytest.raises(OpenCannError, match="engine .gpu."):
        _options(None)


def test_bool_and_int_outputs_round_trip():
    f = _compile(lambda x: (x > 0, (x * 10).long(), x.argmax()))
    x = torch.randn(5)
    with torch.no_grad():
        m, i, a = f(x)
    assert torch.equal(m, x > 0) and torch.equal(i, (x * 10).long()) and a.item() == int(np.argmax(x.numpy()))


def test_batched_matmul_matches_numpy():
    from opencann.frontends.torch.runner import batched_matmul

    rng = np.random.default_rng(0)
    a = rng.standard_normal((2, 3, 4, 5)).astype(np.float32).transpose(0, 1, 3, 2)  # non-contiguous
    b = rng.standard_normal((3, 4, 6)).astype(np.float32)
    np.testing.assert_allclose(batched_matmul(a, b), np.matmul(a, b), rtol=1e-5, atol=1e-6)
    c = rng.standard_normal((2, 1, 4, 2)).astype(np.float64)
    d = rng.standard_normal((1, 5, 2, 3)).astype(np.float64)
    np.testing.assert_allclose(batched_matmul(c, d), np.matmul(c, d), rtol=1e-12)
    assert batched_matmul(a.astype(np.int64), b.astype(np.int64)) is None


def test_unsupported_dtype_inputs_passed_through():
    def fn(x, h):
        return x * 2, h  # h (bfloat16) goes straight back out

    f = torch.compile(fn, backend="opencann")
    x, h = torch.randn(3), torch.randn(3).to(torch.bfloat16)
    with torch.no_grad():
        a, b = f(x, h)
    assert torch.equal(a, x * 2) and torch.equal(b, h)


def test_cpu_engine_runs_forward_and_backward():
    torch.manual_seed(8)
    m = torch.nn.Sequential(torch.nn.Linear(16, 32), torch.nn.GELU(), torch.nn.LayerNorm(32), torch.nn.Linear(32, 4))
    x = torch.randn(5, 16)
    f = torch.compile(m, backend="opencann", options={"engine": "cpu", "fallback": False})
    out = f(x)
    out.sum().backward()
    grads = [p.grad.clone() for p in m.parameters()]
    m.zero_grad()
    ref = m(x)
    ref.sum().backward()
    assert torch.allclose(out, ref, atol=1e-5)
    for g, p in zip(grads, m.parameters()):
        assert torch.allclose(g, p.grad, atol=1e-5)
