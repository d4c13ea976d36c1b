import numpy as np
import pytest

from opencann.ir import Graph


def _sum_loop(Body, tensor, with_cond_stop=False):
    """Loop carrying `s` (float32[2]); each iteration adds the iteration number and emits s."""
    b = Body(("i", "int64"), ("cond", "bool"), ("s", "float32", 2))
    i, cond, s = b.ins
    fi = b.node("Cast", [i], to=1)
    s2 = b.node("Add", [s, fi])
    keep = b.node("Less", [i, b.const(np.array(2, np.int64))]) if with_cond_stop else b.node("Identity", [cond])
    b.out(keep, s2, b.node("Identity", [s2]))
    g = Graph("loop", {"": 21})
    m = g.add_input("M", tensor("int64"))
    c = g.add_input("c", tensor("bool"))
    s0 = g.add_input("s0", tensor("float32", 2))
    outs = g.add_node("Loop", [m, c, s0], ["s_final", "scan"], {"body": b.g})
    g.outputs.extend(outs)
    return g, outs


def test_trip_count_and_scan_outputs(Body, tensor, run):
    g, (final, scan) = _sum_loop(Body, tensor)
    out = run(g, {"M": np.array(4, np.int64), "c": np.array(True), "s0": np.zeros(2, np.float32)})
    np.testing.assert_array_equal(out["s_final"], [6, 6])  # 0+1+2+3
    np.testing.assert_array_equal(out["scan"][:, 0], [0, 1, 3, 6])
    assert final.type == tensor("float32", 2)
    assert scan.type == tensor("float32", None, 2)


def test_condition_stops_the_loop(Body, tensor, run):
    g, _ = _sum_loop(Body, tensor, with_cond_stop=True)
    out = run(g, {"M": np.array(100, np.int64), "c": np.array(True), "s0": np.zeros(2, np.float32)})
    # iterations 0, 1, 2 run; the third returns cond = (2 < 2) = False
    np.testing.assert_array_equal(out["s_final"], [3, 3])
    assert out["scan"].shape == (3, 2)


def test_zero_iterations_keep_initial_values(Body, tensor, run):
    g, _ = _sum_loop(Body, tensor)
    out = run(g, {"M": np.array(0, np.int64), "c": np.array(True), "s0": np.ones(2, np.float32)})
    np.testing.assert_array_equal(out["s_final"], [1, 1])
    assert out["scan"].shape == (0, 2) and out["scan"].dtype == np.float32


def test_body_input_types_come_from_the_node(Body, tensor):
    from opencann import ops

    b = Body(("i", None), ("cond", None), ("s", None))
    d = ops.lookup("Loop", "", 21)
    from opencann.ir import Value
    types = d.infer_subgraph_inputs(Value("M", tensor("int64")), None, Value("s0", tensor("float32", "N")), body=b.g)
    # carried values keep their rank only: they may grow from one iteration to the next
    assert types["body"] == [tensor("int64"), tensor("bool"), tensor("float32", None)]


def test_body_output_count_is_checked(Body, tensor, run):
    b = Body(("i", "int64"), ("cond", "bool"))
    b.out(b.ins[1])
    g = Graph("loop", {"": 21})
    s0 = g.add_input("s0", tensor("float32", 2))
    g.outputs.extend(g.add_node("Loop", [None, None, s0], ["s"], {"body": b.g}))
    with pytest.raises(Exception, match="loop-carried"):
        run(g, {"s0": np.zeros(2, np.float32)})


def test_carried_value_may_grow(Body, tensor, run):
    b = Body(("i", "int64"), ("cond", "bool"), ("acc", "float32", None))
    i, cond, acc = b.ins
    grown = b.node("Concat", [acc, b.node("Cast", [b.node("Unsqueeze", [i, b.const(np.array([0], np.int64))])], to=1)],
                   axis=0)
    b.out(b.node("Identity", [cond]), grown)
    g = Graph("loop", {"": 21})
    m = g.add_input("M", tensor("int64"))
    a0 = g.add_input("a0", tensor("float32", 0))
    (final,) = g.add_node("Loop", [m, None, a0], ["final"], {"body": b.g})
    g.outputs.append(final)
    out = run(g, {"M": np.array(3, np.int64), "a0": np.zeros(0, np.float32)})
    np.testing.assert_array_equal(out["final"], [0, 1, 2])
    assert final.type == tensor("float32", None)
