"""opencann.backend implements ONNX's backend API (prepare, run_model, run_node, supports_device)."""

import numpy as np
from onnx import TensorProto, helper

import opencann.backend as backend


def test_supports_cpu_only():
    assert backend.supports_device("CPU")
    assert not backend.supports_device("CUDA")


def test_run_node():
    (y,) = backend.run_node(helper.make_node("Add", ["a", "b"], ["c"]),
                            [np.array([1, 2], np.float32), np.array([10, 20], np.float32)])
    np.testing.assert_array_equal(y, [11, 22])


def test_prepare_and_run_model_by_position_and_name():
    g = helper.make_graph([helper.make_node("Add", ["a", "b"], ["c"])], "g",
                          [helper.make_tensor_value_info(n, TensorProto.INT64, [2]) for n in "ab"],
                          [helper.make_tensor_value_info("c", TensorProto.INT64, [2])])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    a, b = np.array([1, 2]), np.array([3, 4])
    np.testing.assert_array_equal(backend.run_model(m, [a, b])[0], [4, 6])
    rep = backend.prepare(m)
    np.testing.assert_array_equal(rep.run({"b": b, "a": a})[0], [4, 6])


def test_run_node_uses_the_newest_version_of_a_custom_domain():
    node = helper.make_node("LabelEncoder", ["x"], ["y"], domain="ai.onnx.ml", keys_int64s=[1, 2],
                            values_strings=["one", "two"], default_string="?")
    (y,) = backend.run_node(node, [np.array([2, 1, 7], np.int64)])
    assert list(y) == ["two", "one", "?"]
