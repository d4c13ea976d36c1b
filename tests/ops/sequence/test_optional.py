import numpy as np
import pytest

import opencann
from opencann import dtypes, ops
from opencann.ir import Graph, OptionalType, SequenceType, TensorType, Value
from opencann.ops.infer import InferError

F2 = TensorType(dtypes.float32, (2,))


def _graph(with_input: bool, opset=18):
    g = Graph("opt", {"": opset})
    ins = [g.add_input("x", F2)] if with_input else []
    (o,) = g.add_node("Optional", ins or [None], ["o"], {} if with_input else {"type": F2})
    (has,) = g.add_node("OptionalHasElement", [o], ["has"])
    g.outputs.extend([o, has])
    return g, o


def test_optional_round_trip():
    g, o = _graph(True)
    (y,) = g.add_node("OptionalGetElement", [o], ["y"])
    g.outputs.append(y)
    x = np.array([1, 2], np.float32)
    out = opencann.compile(g).run({"x": x})
    assert out["has"] == np.array(True) and out["has"].dtype == np.bool_
    np.testing.assert_array_equal(out["y"], x)
    assert o.type == OptionalType(F2) and y.type == F2


def test_empty_optional():
    g, o = _graph(False)
    out = opencann.compile(g).run({})
    assert out["o"] is None and not out["has"]
    assert o.type == OptionalType(F2)


def test_get_element_of_empty_fails():
    g, o = _graph(False)
    g.outputs.extend(g.add_node("OptionalGetElement", [o], ["y"]))
    with pytest.raises(Exception, match="empty"):
        opencann.compile(g).run({})


def test_versions():
    # opset 15: the input must be an optional; 18 also passes tensors and sequences through
    with pytest.raises(InferError, match="optional"):
        ops.lookup("OptionalGetElement", "", 15).infer(Value("x", F2))
    assert ops.lookup("OptionalGetElement", "", 18).infer(Value("x", SequenceType(F2))) == SequenceType(F2)
    assert ops.lookup("OptionalHasElement", "", 18).reference(None) == np.array(False)
    with pytest.raises(InferError, match="type"):
        ops.lookup("Optional", "", 15).infer(None, type=None)
