"""Single-node cpu lowerings (`engine/lower_cpu.py`) against the op references."""

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
REDUCTIONS = ["ReduceSum", "ReduceMean", "ReduceMax", "ReduceMin", "ReduceLogSumExp"]


def _reduce_graph(op, shape, axes, keepdims, opset=18):
    g = Graph("reduce", {"": opset})
    x = g.add_input("x", TensorType(F32, shape))
    attrs = {"keepdims": keepdims}
    ins = [x]
    if axes is not None:
        if opset >= 18 or (op == "ReduceSum" and opset >= 13):
            ins.append(g.add_constant("axes", np.array(axes, np.int64)))
        else:
            attrs["axes"] = list(axes)
    (y,) = g.add_node(op, ins, ["y"], attrs)
    g.outputs = [y]
    infer_graph(g, bind_ops(g, g.name), g.name)
    return g


def _run_both(g, feeds):
    ex = CpuExecutor(g, g.name)
    with np.errstate(all="ignore"):
        want = Interpreter(g, g.name).run(feeds)["y"]
    got = ex.run(feeds)["y"]
    return ex, got, want


@pytest.mark.parametrize("op", REDUCTIONS)
@pytest.mark.parametrize("shape,axes", [
    ((8, 6, 16, 16), [-1]),          # attention's log-sum-exp over the keys
    ((4, 5, 7), [0, 1]),             # leading axes (a bias gradient)
    ((4, 5, 7), [1]),                # a middle axis
    ((3, 2500), [1]),                # rows longer than one tile
    ((3, 4, 5), None),               # no axes: every axis
    ((2, 3, 4), [2, 1]),             # adjacent axes given out of order
])
@pytest.mark.parametrize("keepdims", [0, 1])
def test_reductions_run_the_reduce_kernel(op, shape, axes, keepdims):
    g = _reduce_graph(op, shape, axes, keepdims)
    x = (rng.standard_normal(shape) * 4).astype(np.float32)
    ex, got, want = _run_both(g, {"x": x})
    assert [s.device for s in ex.placement.steps] == ["cpu"], ex.placement.report()
    assert got.shape == want.shape and got.dtype == np.float32
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize("op", ["ReduceMax", "ReduceMin", "ReduceLogSumExp"])
def test_reductions_with_axes_attribute(op):
    g = _reduce_graph(op, (3, 4, 5), [-2], 1, opset=13)
    x = rng.standard_normal((3, 4, 5)).astype(np.float32)
    ex, got, want = _run_both(g, {"x": x})
    assert ex.placement.steps[0].device == "cpu"
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("op", REDUCTIONS)
@pytest.mark.parametrize("shape,axes", [((3, 0, 4), [1]), ((0, 5), [1]), ((2, 0), None)])
@pytest.mark.parametrize("keepdims", [0, 1])
def test_reductions_of_empty_tensors(op, shape, axes, keepdims):
    """An empty reduced axis gives the op's identity (0, NaN for the mean, -inf for max and
    log-sum-exp, +inf for min); an empty kept dim gives an empty result."""
    g = _reduce_graph(op, shape, axes, keepdims)
    x = np.zeros(shape, np.float32)
    _, got, want = _run_both(g, {"x": x})
    assert got.shape == want.shape and got.dtype == want.dtype
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("op", REDUCTIONS)
@pytest.mark.parametrize("axis", [0, 1])
def test_reductions_of_non_finite_values(op, axis):
    x = np.zeros((5, 300), np.float32)
    x[0] = -np.inf
    x[1, 7] = np.inf
    x[2, 9] = np.nan
    x[3] = 80.0  # exp overflows float32 unless the maximum is taken out
    x[4, 3] = -np.inf
    if axis == 0:
        x = np.ascontiguousarray(x.T)
    g = _reduce_graph(op, x.shape, [axis], 0)
    _, got, want = _run_both(g, {"x": x})
    np.testing.assert_allclose(got, want, rtol=1e-5)


def test_reductions_that_do_not_fit_say_why():
    g = _reduce_graph("ReduceMax", (3, 4, 5), [0, 2], 1)   # non-adjacent axes
    ex = CpuExecutor(g, g.name)
    assert ex.placement.steps[0].device == "ref"
    assert "non-adjacent" in ex.placement.steps[0].reason
    x = rng.standard_normal((3, 4, 5)).astype(np.float32)
    np.testing.assert_array_equal(ex.run({"x": x})["y"], x.max(axis=(0, 2), keepdims=True))


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
