"""The verifier finds dangling values, cycles, duplicates and type mismatches, naming the node."""

import numpy as np
import pytest

from opencann import dtypes
from opencann.ir import Graph, Node, TensorType, Value, VerifyError, verify

F = TensorType(dtypes.float32, ("n",))


def test_valid_graph_passes():
    g = Graph("ok")
    x = g.add_input("x", F)
    y, = g.add_node("Relu", [x], ["y"], types=[F])
    g.outputs.append(y)
    verify(g)


def test_dangling_input_is_named():
    g = Graph("g")
    ghost = Value("ghost", F)
    g.add_node("Relu", [ghost], ["y"], name="relu1")
    with pytest.raises(VerifyError, match=r"graph 'g': node 'relu1' \(Relu\) input 0 %ghost is never defined"):
        verify(g)


def test_cycle_is_detected():
    g = Graph("g")
    x = g.add_input("x", F)
    a = Value("a", F)
    b, = g.add_node("Add", [x, a], ["b"], name="first")
    g.nodes.append(Node("Relu", [b], [a], name="second"))
    a.producer = g.nodes[-1]
    with pytest.raises(VerifyError, match=r"node 'first' \(Add\) input 1 %a is produced later"):
        verify(g)


def test_duplicate_name_and_bad_constant():
    g = Graph("g")
    g.add_input("x", F)
    with pytest.raises(ValueError, match="defined twice"):
        g.add_input("x", F)
    g.add_constant("c", np.zeros((2, 3), np.float32), TensorType(dtypes.float32, (3, 2)))
    with pytest.raises(VerifyError, match=r"constant %c is declared float32\[3,2\] but holds shape \(2, 3\)"):
        verify(g)


def test_type_mismatch_against_inference():
    g = Graph("g")
    x = g.add_input("x", TensorType(dtypes.float32, (2, 3)))
    g.add_node("Relu", [x], ["y"], types=[TensorType(dtypes.float32, (3, 2))], name="r")

    def infer(node):
        return [node.inputs[0].type]

    with pytest.raises(VerifyError, match=r"node 'r' \(Relu\) output %y is typed float32\[3,2\] but its inputs give float32\[2,3\]"):
        verify(g, infer)


def test_subgraph_may_read_outer_values():
    g = Graph("outer")
    x = g.add_input("x", F)
    body = Graph("body")
    r, = body.add_node("Relu", [x], ["r"], types=[F])
    body.outputs.append(r)
    y, = g.add_node("If", [x], ["y"], {"then_branch": body, "else_branch": body})
    g.outputs.append(y)
    verify(g)
