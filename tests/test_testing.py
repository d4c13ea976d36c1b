"""opencann.testing: the one-node helpers the op tests are built on."""

import numpy as np
import pytest

from opencann import dtypes
from opencann.frontends.onnx import MAX_OPSET
from opencann.ir import TensorType
from opencann.testing import infer_op, opset_map, run_op, tensor_type

ML = "ai.onnx.ml"


def test_opset_map():
    assert opset_map("Relu") == {"": MAX_OPSET}
    assert opset_map("Relu", opset=13) == {"": 13}
    assert opset_map("LabelEncoder", ML, 2) == {"": MAX_OPSET, ML: 2}
    assert opset_map("LabelEncoder", ML, {"": 22, ML: 1, "other": 3}) == {"": 22, ML: 1, "other": 3}
    assert opset_map("Relu", "ai.onnx", {"ai.onnx": 14}) == {"": 14}
    assert opset_map("TreeEnsemble", ML)[ML] == 5  # the newest version opencann defines
    assert opset_map("NoSuchOp", "my.domain") == {"": MAX_OPSET, "my.domain": 1}


def test_run_op_inputs_consts_and_outputs():
    x = np.array([[3.0, 1.0, 2.0]], np.float32)
    np.testing.assert_array_equal(run_op("Relu", [-x]), np.zeros_like(x))
    values, indices = run_op("TopK", [x, np.array([2])], outputs=2, consts=(1,))
    np.testing.assert_array_equal(values, [[3.0, 2.0]])
    np.testing.assert_array_equal(indices, [[0, 2]])
    assert run_op("Clip", [x, None, np.float32(2.0)]).max() == 2.0  # None omits `min`
    assert run_op("Softmax", [x], {"axis": 0}, opset=13).tolist() == [[1.0, 1.0, 1.0]]


def test_run_op_in_another_domain():
    got = run_op("LabelEncoder", [np.array(["b", "z"], dtype=object)], {"classes_strings": ["a", "b"]},
                 domain=ML, opset=1)
    assert got.tolist() == [1, -1]


def test_infer_op_input_forms():
    f = tensor_type("float32", 2, 4)
    assert f == TensorType(dtypes.float32, (2, 4))
    assert tensor_type(dtypes.int8, "n") == tensor_type("int8", "n")
    assert infer_op("Relu", [tensor_type("float32", "n", 4)]) == tensor_type("float32", "n", 4)
    assert infer_op("Reshape", [f, tensor_type("int64", 2)]) == tensor_type("float32", None, None)
    # a (type, data) pair and a NumPy array are constants whose data inference reads
    assert infer_op("Reshape", [f, (tensor_type("int64", 1), np.array([-1]))]) == tensor_type("float32", 8)
    assert infer_op("Reshape", [f, np.array([4, -1])]) == tensor_type("float32", 4, 2)
    assert infer_op("Less", ["untyped", "untyped"]) == TensorType(dtypes.bool_, None)
    assert infer_op("Softmax", [f], {"axis": 0}, opset=13) == f
    with pytest.raises(ValueError, match="untyped"):
        infer_op("Relu", ["float32"])
    with pytest.raises(KeyError, match="NoSuchOp"):
        infer_op("NoSuchOp", [f])
