"""The single-op API (`opencann.ops.<Op>(...)`, src/opencann/ops/single.py): results against the
ops' NumPy references on `ref` and `cpu`, Tensors in and out, several outputs, attributes, the
per-signature cache, and its errors."""

import subprocess
import sys

import numpy as np
import pytest

import opencann
import opencann.model  # noqa: F401 - registers the compiler (a call would import it lazily too)
from opencann import backends, ops, runtime
from opencann.errors import InputError, InvalidModelError, OpenCannError
from opencann.ops import single

HAVE_CC = backends.get("cpu").is_available()
BACKENDS = ["ref", pytest.param("cpu", marks=pytest.mark.skipif(not HAVE_CC, reason="no C compiler"))]

rng = np.random.default_rng(0)


def rand(*shape, dtype=np.float32):
    return rng.standard_normal(shape).astype(dtype)


@pytest.fixture(autouse=True)
def fresh_cache():
    size = ops.cache_size()
    ops.cache_clear()
    yield
    ops.cache_size(size)
    ops.cache_clear()


def reference(name, *inputs, **attrs):
    d = ops.lookup(name)
    full, problems = d.resolve_attrs(attrs)
    assert not problems
    return d.reference(*inputs, **full)


@pytest.mark.parametrize("backend", BACKENDS)
def test_numpy_in_numpy_out_matches_the_references(backend):
    x, y, w = rand(4, 8), rand(4, 8), rand(8, 5)
    cases = [("Add", (x, y), {}), ("Mul", (x, y), {}), ("Relu", (x,), {}), ("MatMul", (x, w), {}),
             ("Softmax", (x,), {"axis": -1}), ("Gemm", (x, w.T.copy()), {"alpha": 0.5, "transB": 1}),
             ("ReduceSum", (x, np.array([1])), {"keepdims": 0}), ("Transpose", (x,), {"perm": [1, 0]})]
    for name, args, attrs in cases:
        got = getattr(ops, name)(*args, backend=backend, **attrs)
        assert isinstance(got, np.ndarray), name
        want = reference(name, *args, **attrs)
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5, err_msg=name)
        assert got.dtype == want.dtype and got.shape == want.shape, name
    np.testing.assert_allclose(ops.MatMul(x, w, backend=backend), x @ w, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("backend", BACKENDS)
def test_tensors_in_tensors_out_on_the_inputs_device(backend):
    x = rand(2, 3)
    for dev in ("cpu", "ref"):
        a = runtime.Tensor.from_numpy(x, dev)
        y = ops.Add(a, a, backend=backend)
        assert isinstance(y, runtime.Tensor) and y.device is a.device
        np.testing.assert_allclose(y.numpy(), x + x, rtol=1e-6)
        z = ops.Softmax(y, axis=-1, backend=backend)
        np.testing.assert_allclose(z.numpy(), reference("Softmax", x + x, axis=-1), rtol=1e-5, atol=1e-6)
        np.testing.assert_array_equal(a.numpy(), x)  # inputs untouched
    mixed = ops.Add(runtime.Tensor.from_numpy(x), x, backend=backend)  # a Tensor among the inputs: Tensor out
    assert isinstance(mixed, runtime.Tensor)


def test_tensor_inputs_pick_their_devices_backend_and_must_share_a_device():
    x = rand(2, 3)
    ops.Relu(runtime.Tensor.from_numpy(x, "ref"))
    (key,) = single._cache.entries
    assert key[-1] == "ref"
    with pytest.raises(InputError, match="different devices"):
        ops.Add(runtime.Tensor.from_numpy(x, "ref"), runtime.Tensor.from_numpy(x, "cpu"))


@pytest.mark.parametrize("backend", BACKENDS)
def test_several_outputs_come_back_as_a_tuple(backend):
    x = rand(3, 6)
    vals, idx = ops.TopK(x, np.array([2]), axis=-1, backend=backend)
    want = np.sort(x, axis=-1)[:, ::-1][:, :2]
    np.testing.assert_allclose(vals, want)
    np.testing.assert_array_equal(np.take_along_axis(x, idx, axis=-1), vals)
    parts = ops.Split(x, axis=1, num_outputs=3, backend=backend)
    assert len(parts) == 3 and all(p.shape == (3, 2) for p in parts)
    a, b = ops.Split(x, np.array([1, 5]), axis=1, backend=backend)  # the count from the split input
    assert a.shape == (3, 1) and b.shape == (3, 5)
    y, indices = ops.MaxPool(x[None, None], kernel_shape=[1, 2], strides=[1, 2], n_outputs=2, backend=backend)
    assert y.shape == (1, 1, 3, 3) and indices.dtype == np.int64


def test_attributes_opsets_scalars_and_omitted_inputs():
    x = rand(2, 3, 4)
    e = np.exp(x - x.max(axis=1, keepdims=True))
    np.testing.assert_allclose(ops.Softmax(x, axis=1), e / e.sum(axis=1, keepdims=True), rtol=1e-5)
    flat = x.reshape(2, 12)  # opset 1-12: Softmax over the dims from `axis` on, flattened
    e = np.exp(flat - flat.max(axis=1, keepdims=True))
    np.testing.assert_allclose(ops.Softmax(x, axis=1, opset=11), (e / e.sum(axis=1, keepdims=True)).reshape(x.shape),
                               rtol=1e-5)
    np.testing.assert_allclose(ops.LeakyRelu(x, alpha=1), x)  # an int where the attribute is a float
    assert ops.Add(x, 1.0).dtype == np.float32  # Python scalars take their kind's input dtype
    assert ops.Add(np.arange(3, dtype=np.int32), 2).dtype == np.int32
    np.testing.assert_allclose(ops.Clip(x, None, 0.5), np.minimum(x, np.float32(0.5)))  # None: omitted
    assert ops.SequenceLength([x, x]) == 2  # a list of arrays is a sequence
    assert ops.ConcatFromSequence([x, x], axis=0).shape == (4, 3, 4)


def test_outputs_never_alias_the_callers_arrays():
    x = rand(2, 3)
    for y in (ops.Identity(x), ops.Reshape(x, np.array([3, 2]))):
        y[...] = 7
        assert not np.any(x == 7)


def test_cache_reuses_a_signature_and_separates_others(monkeypatch):
    compiles = []
    real = single._compiler["compile"]
    monkeypatch.setitem(single._compiler, "compile", lambda g, be: compiles.append(g.name) or real(g, be))
    x = rand(2, 3)
    ops.Softmax(x, axis=-1, backend="ref")
    assert ops.cache_info()[:2] == (0, 1) and len(compiles) == 1
    first = next(iter(single._cache.entries.values()))[0]
    for _ in range(3):
        ops.Softmax(rand(2, 3), axis=-1, backend="ref")  # same signature, new values
    info = ops.cache_info()
    assert (info.hits, info.misses, info.currsize) == (3, 1, 1) and len(compiles) == 1
    assert next(iter(single._cache.entries.values()))[0] is first
    ops.Softmax(rand(4, 3), axis=-1, backend="ref")  # another shape
    ops.Softmax(x, axis=0, backend="ref")  # another attribute value
    ops.Softmax(x.astype(np.float16), axis=-1, backend="ref")  # another dtype
    ops.Softmax(x, axis=-1, backend="ref", opset=11)  # another definition
    assert ops.cache_info()[:2] == (3, 5) and len(compiles) == 5
    ops.cache_clear()
    assert ops.cache_info() == (0, 0, ops.cache_size(), 0)


def test_cache_is_bounded_least_recently_used_first():
    ops.cache_size(2)
    a, b, c = rand(1), rand(2), rand(3)
    ops.Relu(a, backend="ref")
    ops.Relu(b, backend="ref")
    ops.Relu(a, backend="ref")  # a is now the most recent
    ops.Relu(c, backend="ref")  # drops b
    assert ops.cache_info().currsize == 2
    ops.Relu(a, backend="ref")
    assert ops.cache_info().hits == 2
    ops.Relu(b, backend="ref")
    assert ops.cache_info().misses == 4


def test_unknown_op_names_the_closest_ops():
    with pytest.raises(AttributeError, match=r"no op 'Reluu'.*did you mean 'Relu'") as e:
        ops.Reluu  # noqa: B018
    assert isinstance(e.value, OpenCannError)
    with pytest.raises(AttributeError, match="'MatMul'"):
        ops.matmul  # noqa: B018 - case differs
    assert not hasattr(ops, "NoSuchOp")
    with pytest.raises(AttributeError):
        ops.call("Softmx", rand(2))


def test_bad_attributes_and_inputs_raise_the_librarys_errors():
    x = rand(2, 3)
    with pytest.raises(InvalidModelError, match=r"unknown attribute 'axs' \(known: axis\)"):
        ops.Softmax(x, axs=1)
    with pytest.raises(InvalidModelError, match="required attribute 'axis' is missing"):
        ops.Concat(x, x)
    with pytest.raises(InvalidModelError, match="out of range"):
        ops.Softmax(x, axis=5)
    with pytest.raises(InvalidModelError, match="inner dims"):
        ops.MatMul(x, x)
    with pytest.raises(InvalidModelError, match="opset=0 is older"):
        ops.Relu(x, opset=0)
    with pytest.raises(InputError, match="no tensor"):
        ops.Relu(object())
    with pytest.raises(InvalidModelError, match="pass n_outputs"):
        ops.Split(x)
    assert ops.cache_info().currsize == 0  # failures are not cached


def test_ops_with_bodies_are_not_single_ops():
    for name in ("If", "Loop", "Scan"):
        with pytest.raises(InvalidModelError, match="not a single op"):
            getattr(ops, name)(np.array(True))


def test_the_registry_api_and_families_are_unchanged():
    assert ops.lookup("Relu").family == "nn"
    assert ops.math.__name__ == "opencann.ops.math"
    assert callable(ops.defop) and ops.all_ops()
    assert "Relu" in dir(ops) and "lookup" in dir(ops)
    assert "Softmax(input, *, axis=-1" in repr(ops.Softmax)
    assert opencann.ops.Relu is ops.Relu


def test_importing_ops_loads_no_engine_and_a_call_finds_the_compiler():
    code = ("import sys, numpy as np, opencann.ops as ops\n"
            "assert not any(m.startswith(('opencann.engine', 'opencann.model')) for m in sys.modules)\n"
            "print(ops.Add(np.ones(2, np.float32), 1.0, backend='ref'))\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "[2. 2.]" in r.stdout
