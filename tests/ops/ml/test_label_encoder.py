"""ai.onnx.ml LabelEncoder across its opsets."""

import numpy as np

ML = "ai.onnx.ml"


def test_opset1_both_directions(run_op):
    classes = ["cat", "dog"]
    got = run_op("LabelEncoder", [np.array(["dog", "emu", "cat"], dtype=object)], {"classes_strings": classes},
                 domain=ML, opset=1)
    assert got.dtype == np.int64 and got.tolist() == [1, -1, 0]
    got = run_op("LabelEncoder", [np.array([[1, 5]], np.int64)], {"classes_strings": classes, "default_string": "?"},
                 domain=ML, opset=1)
    assert got.tolist() == [["dog", "?"]]


def test_opset2_float_keys_to_strings(run_op, infer_op, tt):
    attrs = {"keys_floats": [0.5, 1.5], "values_strings": ["half", "one and a half"], "default_string": "none"}
    got = run_op("LabelEncoder", [np.array([1.5, 2.0, 0.5], np.float32)], attrs, domain=ML, opset=2)
    assert got.tolist() == ["one and a half", "none", "half"]
    assert infer_op("LabelEncoder", [tt("float32", "n")], attrs, domain=ML, opset=2).dtype.name == "string"


def test_opset4_tensors_nan_key_and_last_key_wins(run_op):
    attrs = {"keys_tensor": np.array([1.0, np.nan, 1.0]), "values_tensor": np.array([10, 20, 30], np.int32),
             "default_tensor": np.array([-7], np.int32)}
    got = run_op("LabelEncoder", [np.array([1.0, np.nan, 3.0])], attrs, domain=ML, opset=4)
    assert got.dtype == np.int32 and got.tolist() == [30, 20, -7]
