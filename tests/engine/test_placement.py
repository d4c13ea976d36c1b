"""Placement for the cpu backend: what runs on cpu, what falls back to ref, and the report."""

import numpy as np
import pytest

import opencann
from opencann import dtypes
from opencann.engine import bind_ops
from opencann.engine.infer import infer_graph
from opencann.engine.placement import place
from opencann.ir import Graph, TensorType

F32, F64, I64 = dtypes.float32, dtypes.float64, dtypes.int64


def _graph():
    g = Graph("mixed", {"": 18})
    x = g.add_input("x", TensorType(F32, ("n", 8)))
    d = g.add_input("d", TensorType(F64, ("n", 8)))
    i = g.add_input("i", TensorType(I64, ("k",)))
    w = g.add_constant("w", np.ones((8, 4), np.float32))
    (m,) = g.add_node("MatMul", [x, w], ["m"], name="mm")
    (s,) = g.add_node("Softmax", [m], ["s"], {"axis": 0}, name="softmax_axis0")
    (d2,) = g.add_node("Add", [d, d], ["d2"], name="add_f64")
    (gi,) = g.add_node("Gather", [x, i], ["gi"], {"axis": 0}, name="gather")
    (ln,) = g.add_node("LayerNormalization", [x, g.add_constant("sc", np.ones(8, np.float32))],
                       ["ln"], {"axis": -1}, name="ln")
    g.outputs = [s, d2, gi, ln]
    infer_graph(g, bind_ops(g, g.name), g.name)
    return g


def test_placement_fallbacks_and_reasons():
    g = _graph()
    p = place(g, bind_ops(g, g.name), "mixed")
    by_name = {s.name: s for s in p.steps}
    assert by_name["mm"].device == "cpu" and by_name["mm"].kernel == "gemm"
    assert by_name["ln"].device == "cpu" and by_name["ln"].kernel == "layer_norm"
    fallbacks = {s.name: s.reason for s in p.fallbacks}
    assert set(fallbacks) == {"softmax_axis0", "add_f64", "gather"}
    assert "axis=0" in fallbacks["softmax_axis0"]
    assert "float32" in fallbacks["add_f64"]
    assert "no cpu kernel" in fallbacks["gather"]
    text = p.report()
    for name in fallbacks:
        assert repr(name) in text
    assert "float64[n,8]" in text  # the shapes of a fallback's inputs are listed
    assert "5 nodes -> 5 steps" in text


@pytest.mark.skipif(not opencann.backends.get("cpu").is_available(), reason="no C compiler")
def test_compiled_model_report_and_values():
    g = _graph()
    m = opencann.compile(g, backend="cpu", optimize=False)
    assert "ref fallbacks (3)" in m.report()
    rng = np.random.default_rng(1)
    feeds = {"x": rng.standard_normal((5, 8)).astype(np.float32),
             "d": rng.standard_normal((5, 8)), "i": np.array([4, 0, 2], np.int64)}
    want = opencann.compile(_graph(), backend="ref").run(feeds)
    got = m.run(feeds)
    for k in want:
        assert got[k].dtype == want[k].dtype
        np.testing.assert_allclose(got[k], want[k], rtol=1e-5, atol=1e-6)
    assert "NumPy references" in opencann.compile(_graph(), backend="ref").report()


def test_matmul_fallback_reasons():
    g = Graph("mm", {"": 18})
    a = g.add_input("a", TensorType(F32, (2, 3, 4)))
    b = g.add_input("b", TensorType(F32, (1, 4, 5)))
    v = g.add_input("v", TensorType(F32, (4,)))
    (y,) = g.add_node("MatMul", [a, b], ["y"], name="bcast")
    (z,) = g.add_node("MatMul", [a, v], ["z"], name="vec")
    g.outputs = [y, z]
    infer_graph(g, bind_ops(g, g.name), g.name)
    reasons = {s.name: s.reason for s in place(g, bind_ops(g, g.name)).fallbacks}
    assert "batch" in reasons["bcast"] and "1-d" in reasons["vec"]
