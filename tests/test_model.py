"""opencann.compile / CompiledModel.run: feeds are checked against declared, symbolic types."""

import numpy as np
import pytest
from onnx import TensorProto, helper

import opencann
from opencann.ir import Graph


@pytest.fixture
def two_input_model():
    g = helper.make_graph(
        [helper.make_node("Add", ["a", "b"], ["y"])], "pair",
        [helper.make_tensor_value_info("a", TensorProto.FLOAT, ["n", 4]),
         helper.make_tensor_value_info("b", TensorProto.FLOAT, ["n", 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)])
    return opencann.compile(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]))


def test_runs(two_input_model):
    a = np.ones((2, 4), np.float32)
    np.testing.assert_array_equal(two_input_model.run({"a": a, "b": a})["y"], a * 2)


def test_missing_and_unknown_inputs(two_input_model):
    with pytest.raises(opencann.InputError, match=r"model 'pair': missing input\(s\) b: float32\[n,4\]; unknown input name\(s\) 'c'"):
        two_input_model.run({"a": np.ones((2, 4), np.float32), "c": 1})


def test_wrong_dtype(two_input_model):
    with pytest.raises(opencann.InputError, match=r"input 'a' expects dtype float32 but got float64; convert it with \.astype\(np\.float32\)"):
        two_input_model.run({"a": np.ones((2, 4)), "b": np.ones((2, 4), np.float32)})


def test_wrong_shape(two_input_model):
    with pytest.raises(opencann.InputError, match=r"input 'a' expects float32\[n,4\] but got shape \[2, 5\] \(dim 1 must be 4\)"):
        two_input_model.run({"a": np.ones((2, 5), np.float32), "b": np.ones((2, 4), np.float32)})
    with pytest.raises(opencann.InputError, match="expects rank 2"):
        two_input_model.run({"a": np.ones(4, np.float32), "b": np.ones((2, 4), np.float32)})


def test_symbol_must_agree_across_inputs(two_input_model):
    with pytest.raises(opencann.InputError, match=r"input 'b' has n=3 \(dim 0\) but input 'a' has n=2"):
        two_input_model.run({"a": np.ones((2, 4), np.float32), "b": np.ones((3, 4), np.float32)})


def test_unknown_backend():
    with pytest.raises(opencann.OpenCannError, match="backend 'tpu9000'"):
        opencann.compile(Graph("g"), backend="tpu9000")
