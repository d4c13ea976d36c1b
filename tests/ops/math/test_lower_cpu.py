"""The Reduce* ops' cpu kernels (`ops/math/lower_cpu.py`) against the op references."""

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
