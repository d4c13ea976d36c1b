import numpy as np

from opencann.ir import Graph


def test_if_runs_the_chosen_branch_and_joins_types(Body, tensor, run):
    then_b = Body(name="then")
    then_b.out(then_b.const(np.ones((2, 3), np.float32)))
    else_b = Body(name="else")
    else_b.out(else_b.const(np.zeros((2, 4), np.float32)))
    g = Graph("if", {"": 21})
    c = g.add_input("c", tensor("bool"))
    (y,) = g.add_node("If", [c], ["y"], {"then_branch": then_b.g, "else_branch": else_b.g})
    g.outputs.append(y)
    out = run(g, {"c": np.array(True)})["y"]
    np.testing.assert_array_equal(out, np.ones((2, 3)))
    assert y.type == tensor("float32", 2, None)  # [2,3] or [2,4]
    np.testing.assert_array_equal(run(g, {"c": np.array(False)})["y"], np.zeros((2, 4)))


def test_if_branch_reads_outer_values(Body, tensor, run):
    g = Graph("if", {"": 21})
    c = g.add_input("c", tensor("bool", 1))
    x = g.add_input("x", tensor("float32", 3))
    then_b = Body(name="then")
    then_b.out(then_b.node("Add", [x, x]))
    else_b = Body(name="else")
    else_b.out(else_b.node("Mul", [x, x]))
    g.outputs.extend(g.add_node("If", [c, ], ["y"], {"then_branch": then_b.g, "else_branch": else_b.g}))
    xv = np.array([1, 2, 3], np.float32)
    np.testing.assert_array_equal(run(g, {"c": np.array([True]), "x": xv})["y"], xv + xv)
    np.testing.assert_array_equal(run(g, {"c": np.array([False]), "x": xv})["y"], xv * xv)
