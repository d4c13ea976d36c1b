"""The cpu executor: slots, freeing, profiling, subgraphs, memory plans."""

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

import opencann
from opencann import dtypes, profiler
from opencann.engine import bind_ops
from opencann.engine.executor import CpuExecutor
from opencann.errors import ExecutionError
from opencann.engine.infer import infer_graph
from opencann.ir import Graph, TensorType

pytestmark = pytest.mark.skipif(not opencann.backends.get("cpu").is_available(),
                                reason="no C compiler")
F32 = dtypes.float32


def _chain():
    g = Graph("chain", {"": 18})
    x = g.add_input("x", TensorType(F32, ("n", 16)))
    w = g.add_constant("w", np.eye(16, dtype=np.float32) * 2)
    (a,) = g.add_node("MatMul", [x, w], ["a"], name="mm")
    (b,) = g.add_node("Softmax", [a], ["b"], {"axis": -1}, name="sm")
    (c,) = g.add_node("Transpose", [b], ["c"], {"perm": [1, 0]}, name="tr")
    (d,) = g.add_node("Exp", [c], ["d"], name="exp")
    g.outputs = [d, x]  # an input may also be an output
    infer_graph(g, bind_ops(g, g.name), g.name)
    return g


def test_runs_and_matches_reference():
    g = _chain()
    x = np.random.default_rng(0).standard_normal((3, 16)).astype(np.float32)
    out = CpuExecutor(g, "chain").run({"x": x})
    a = x * 2
    e = np.exp(a - a.max(-1, keepdims=True))
    np.testing.assert_allclose(out["d"], np.exp((e / e.sum(-1, keepdims=True)).T), rtol=1e-5)
    assert out["x"] is x


def test_intermediates_are_freed_after_last_read():
    ex = CpuExecutor(_chain(), "chain")
    freed = [len(frees) for _, _, _, frees in ex._steps]
    assert sum(freed) == 3  # a, b, c die; d is an output


def test_profiler_records_each_step_with_kernel_name():
    ex = CpuExecutor(_chain(), "chain")
    x = np.ones((4, 16), np.float32)
    with profiler.profile() as prof:
        ex.run({"x": x})
    kernels = [s.kernel for s in prof.slices]
    assert kernels == ["gemm", "softmax", "ref:Transpose", "fused_exp"]
    assert prof.slices[0].flops == 2 * 4 * 16 * 16


def test_memory_plan_reuses_bytes():
    ex = CpuExecutor(_chain(), "chain")
    plan = ex.memory_plan({"x": np.ones((64, 16), np.float32)})
    plan.check()
    assert plan.arena_bytes < plan.total_bytes


def test_if_subgraph_reads_outer_values():
    then_g = helper.make_graph([helper.make_node("Relu", ["y"], ["t"])], "then", [],
                               [helper.make_tensor_value_info("t", TensorProto.FLOAT, [2])])
    else_g = helper.make_graph([helper.make_node("Neg", ["y"], ["e"])], "else", [],
                               [helper.make_tensor_value_info("e", TensorProto.FLOAT, [2])])
    nodes = [helper.make_node("Mul", ["x", "x"], ["y"]),
             helper.make_node("If", ["c"], ["z"], then_branch=then_g, else_branch=else_g)]
    model = helper.make_model(helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2]),
                     helper.make_tensor_value_info("c", TensorProto.BOOL, [])],
        [helper.make_tensor_value_info("z", TensorProto.FLOAT, [2])]),
        opset_imports=[helper.make_opsetid("", 18)])
    m = opencann.compile(model.SerializeToString(), backend="cpu")
    x = np.array([-2, 3], np.float32)
    np.testing.assert_allclose(m.run({"x": x, "c": np.array(True)})["z"], [4, 9])
    np.testing.assert_allclose(m.run({"x": x, "c": np.array(False)})["z"], [-4, -9])
    assert onnx is not None


def test_arena_runs_match_and_reuse_buffers():
    g = Graph("arena", {"": 18})
    x = g.add_input("x", TensorType(F32, ("n", 32)))
    w = g.add_constant("w", (np.random.default_rng(2).standard_normal((32, 32)) * 0.2).astype(np.float32))
    y = x
    for i in range(4):
        (y,) = g.add_node("MatMul", [y, w], [f"m{i}"])
        (y,) = g.add_node("Tanh", [y], [f"t{i}"])
    (sh,) = g.add_node("Reshape", [y, g.add_constant("s", np.array([-1], np.int64))], ["flat"])
    g.outputs = [sh]
    infer_graph(g, bind_ops(g, g.name), g.name)
    ex = CpuExecutor(g, "arena")
    want = opencann.compile(g, backend="ref").run
    first = {}
    for n in (3, 3, 5, 3, 5):
        xv = np.random.default_rng(n).standard_normal((n, 32)).astype(np.float32)
        got = ex.run({"x": xv})["flat"].copy()
        np.testing.assert_allclose(got, want({"x": xv})["flat"], rtol=1e-4, atol=1e-5)
        # later runs write the arena; the same kernels give the same bits as the first run
        np.testing.assert_array_equal(got, first.setdefault(n, got))
    assert ex.arena_plan is not None
    ex.arena_plan.check()
    # 7 of the 8 steps write planned buffers (the last Tanh feeds a ref Reshape); two buffers suffice
    assert sum(s is not None for s in ex._arena_slot) == 7
    assert ex.arena_plan.arena_bytes <= 2 * 5 * 32 * 4 + 64
    assert "arena" in ex.report()


def test_kernel_failure_names_the_node():
    ex = CpuExecutor(_chain(), "chain")
    with pytest.raises(opencann.errors.ExecutionError, match="gemm for node 'mm'"):
        ex.run({"x": np.ones((3, 7), np.float32)})  # K=7 does not match the weight's 16


def _shape_arith(data_dependent=False):
    """x -> [NonZero ->] Shape -> Gather -> Unsqueeze -> Concat -> Reshape(x): shape arithmetic as
    exporters write it. With NonZero the shape read is data-dependent."""
    g = Graph("shapes", {"": 18})
    x = g.add_input("x", TensorType(F32, ("n", 6)))
    src = x
    if data_dependent:
        (src,) = g.add_node("NonZero", [x], ["nz"])
    (s,) = g.add_node("Shape", [src], ["s"])
    (d,) = g.add_node("Gather", [s, g.add_constant("i1", np.array(1, np.int64))], ["d"], {"axis": 0})
    (u,) = g.add_node("Unsqueeze", [d, g.add_constant("ax", np.array([0], np.int64))], ["u"])
    (c,) = g.add_node("Concat", [g.add_constant("m1", np.array([-1], np.int64)), u], ["c"],
                      {"axis": 0})
    flat = g.add_constant("flat", np.arange(120, dtype=np.float32))
    (y,) = g.add_node("Reshape", [flat, c], ["y"])
    (z,) = g.add_node("Exp", [x], ["z"])
    g.outputs = [y, z]
    infer_graph(g, bind_ops(g, g.name), g.name)
    return g


def test_planned_runs_skip_shape_arithmetic(monkeypatch):
    ex = CpuExecutor(_shape_arith(), "shapes")
    op = {i: ex.placement.steps[i].nodes[0].op for i in ex._derived}
    assert set(op.values()) == {"Gather", "Unsqueeze", "Concat", "Reshape"}
    calls = []
    for i in ex._derived:  # count the calls of every derived step
        fn, ins, outs, frees = ex._steps[i]
        ex._steps[i] = (lambda *a, _i=i, _f=fn: calls.append(op[_i]) or _f(*a), ins, outs, frees)
    x = np.ones((4, 6), np.float32)
    first = ex.run({"x": x})  # plans: every step runs once
    assert sorted(calls) == ["Concat", "Gather", "Reshape", "Unsqueeze"]
    calls.clear()
    again = ex.run({"x": x})
    assert calls == ["Reshape"]  # the graph output's step runs; the shape arithmetic does not
    np.testing.assert_array_equal(again["y"], first["y"])
    assert again["y"].shape == (20, 6)


def test_a_changed_intermediate_shape_drops_the_plan():
    """NonZero's output shape depends on the data: same input shape, another intermediate shape.
    The planned run notices at the Shape step and runs every step again."""
    ex = CpuExecutor(_shape_arith(data_dependent=True), "shapes")
    assert ex._derived
    few = np.zeros((4, 6), np.float32)
    few[0, :3] = 1
    many = np.ones((4, 6), np.float32)
    assert ex.run({"x": few})["y"].shape == (40, 3)  # NonZero: (2, 3)
    assert ex.run({"x": few})["y"].shape == (40, 3)  # planned
    assert ex.run({"x": many})["y"].shape == (5, 24)  # NonZero: (2, 24), not (2, 3)
    assert ex.run({"x": many})["y"].shape == (5, 24)
    assert ex.run({"x": few})["y"].shape == (40, 3)


def test_small_integer_results_are_memoized_read_only():
    from opencann.engine.executor import _memoized

    calls = []

    def fn(a, b=None):
        calls.append(1)
        return (a + 1,)

    m = _memoized(fn)
    k = np.array([1, 2], np.int64)
    r1 = m(k, None)
    r2 = m(k.copy(), None)
    assert r1 is r2 and len(calls) == 1 and not r1[0].flags.writeable
    m(np.array([1, 3], np.int64), None)
    assert len(calls) == 2
    big = np.arange(1000, dtype=np.int64)  # not "small": called every time
    m(big)
    m(big)
    assert len(calls) == 4


def test_reshape_to_a_constant_shape_is_a_view_and_names_its_node():
    g = Graph("rs", {"": 14})
    x = g.add_input("x", TensorType(dtypes.float32, (2, 6)))
    s = g.add_constant("s", np.array([3, -1], np.int64))
    (y,) = g.add_node("Reshape", [x, s], ["y"])
    (z,) = g.add_node("Relu", [y], ["z"])
    g.outputs = [y, z]
    ex = CpuExecutor(g, "rs")
    xv = np.arange(12, dtype=np.float32).reshape(2, 6) - 6
    out = ex.run({"x": xv})
    np.testing.assert_array_equal(out["y"], xv.reshape(3, 4))
    np.testing.assert_array_equal(out["z"], np.maximum(xv, 0).reshape(3, 4))
    bad = Graph("rs_bad", {"": 14})
    xb = bad.add_input("x", TensorType(dtypes.float32, (None, 6)))
    (yb,) = bad.add_node("Reshape", [xb, bad.add_constant("s", np.array([5, 2], np.int64))], ["y"])
    bad.outputs = [yb]
    with pytest.raises(ExecutionError, match="Reshape"):
        CpuExecutor(bad, "rs_bad").run({"x": np.zeros((2, 6), np.float32)})
