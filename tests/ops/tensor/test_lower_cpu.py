"""ScatterND's cpu kernel (`ops/tensor/lower_cpu.py`) against the op reference."""

import numpy as np
import pytest

import opencann
from opencann import dtypes
from opencann.engine import Interpreter, bind_ops
from opencann.engine.executor import CpuExecutor
from opencann.engine.infer import infer_graph
from opencann.ir import Graph, TensorType

pytestmark = pytest.mark.skipif(not opencann.backends.get("cpu").is_available(),
                                reason="no C compiler")

F32 = dtypes.float32
rng = np.random.default_rng(0)


def _scatter_graph(dshape, ishape, reduction, data_const=None, opset=18):
    g = Graph("scatter", {"": opset})
    data = g.add_constant("data", data_const) if data_const is not None else \
        g.add_input("data", TensorType(F32, dshape))
    idx = g.add_input("idx", TensorType(dtypes.int64, ishape))
    upd = g.add_input("upd", TensorType(F32, ishape[:-1] + dshape[ishape[-1]:]))
    attrs = {"reduction": reduction} if opset >= 16 else {}
    (y,) = g.add_node("ScatterND", [data, idx, upd], ["y"], attrs)
    g.outputs = [y]
    infer_graph(g, bind_ops(g, g.name), g.name)
    return g


@pytest.mark.parametrize("reduction", ["none", "add", "mul"])
@pytest.mark.parametrize("dshape,ishape,zeros", [
    ((64, 12), (3, 9, 1), True),      # an embedding gradient: repeated rows added into zeros
    ((64, 12), (3, 9, 1), False),
    ((5, 4, 6), (7, 2), False),
    ((5, 4), (6, 2), False),          # single elements
])
def test_scatter_nd_runs_the_scatter_kernel(reduction, dshape, ishape, zeros):
    data = np.zeros(dshape, np.float32) if zeros else rng.standard_normal(dshape).astype(np.float32)
    g = _scatter_graph(dshape, ishape, reduction, data if zeros else None)
    k = ishape[-1]
    feeds = {"idx": np.stack([rng.integers(-d, d, ishape[:-1]) for d in dshape[:k]], axis=-1),
             "upd": rng.standard_normal(ishape[:-1] + dshape[k:]).astype(np.float32)}
    if not zeros:
        feeds["data"] = data
    ex = CpuExecutor(g, g.name)
    assert [s.kernel for s in ex.placement.steps] == [f"scatter_nd_{reduction}"]
    want = Interpreter(g, g.name).run(feeds)["y"]
    for _ in range(2):  # the zeros are fresh each run
        np.testing.assert_allclose(ex.run(feeds)["y"], want, rtol=1e-6, atol=1e-6)
    if not zeros:
        np.testing.assert_array_equal(feeds["data"], data)  # data itself is not written


def test_scatter_nd_that_does_not_fit_runs_its_reference():
    g = _scatter_graph((6, 3), (4, 1), "max")
    ex = CpuExecutor(g, g.name)
    assert ex.placement.steps[0].device == "ref" and "reduction" in ex.placement.steps[0].reason
    g = _scatter_graph((6, 3), (4, 1), "none", opset=11)
    feeds = {"data": np.zeros((6, 3), np.float32), "idx": np.array([[7], [0], [1], [2]]),
             "upd": np.ones((4, 3), np.float32)}
    with pytest.raises(Exception, match="out of range"):
        CpuExecutor(g, g.name).run(feeds)


@pytest.mark.parametrize("shape,n", [((8, 128, 96), 3), ((4, 3), 2)])
def test_concat_kernel_matches_the_reference(shape, n):
    """Concat's cpu kernel (large inputs copied by the copy kernel, small ones by NumPy)."""
    g = Graph("concat", {"": 13})
    ins = [g.add_input(f"x{i}", TensorType(F32, shape)) for i in range(n)]
    g.outputs = g.add_node("Concat", ins, ["y"], {"axis": 1})
    m = opencann.compile(g, backend="cpu")
    assert "concat x1" in m._exec.report()
    xs = [rng.standard_normal(shape).astype(np.float32) for _ in range(n)]
    got = m.run({f"x{i}": x for i, x in enumerate(xs)})["y"]
    np.testing.assert_array_equal(got, np.concatenate(xs, axis=1))


@pytest.mark.parametrize("reduction", ["none", "add"])
def test_scatter_elements_into_zeros(reduction):
    """ScatterElements into a constant of zeros runs the cpu kernel (no copy of the constant) and
    gives what the reference does, negative indices included."""
    g = Graph("scatter_el", {"": 18})
    data = g.add_constant("zeros", np.zeros((6, 10), np.float32))
    idx = g.add_input("idx", TensorType(dtypes.int64, (6, 2)))
    upd = g.add_input("upd", TensorType(F32, (6, 2)))
    g.outputs = g.add_node("ScatterElements", [data, idx, upd], ["y"],
                           {"axis": 1, "reduction": reduction})
    feeds = {"idx": np.array([[0, -1], [3, 3], [9, 0], [1, 2], [5, 6], [7, -10]]),
             "upd": rng.standard_normal((6, 2)).astype(np.float32)}
    m = opencann.compile(g, backend="cpu")
    assert "scatter_elements x1" in m._exec.report()
    want = opencann.compile(g, backend="ref").run(feeds)["y"]
    np.testing.assert_array_equal(m.run(feeds)["y"], want)
