"""The ONNX frontend: symbolic dims, external data, subgraphs, and clear errors for bad models."""

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

import opencann
from opencann.frontends.onnx import MAX_OPSET, import_model


def _model(nodes, inputs, outputs, inits=(), opset=17, name="tiny"):
    g = helper.make_graph(nodes, name, inputs, outputs, list(inits))
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])


def _relu_add(opset=17):
    return _model(
        [helper.make_node("Add", ["x", "w"], ["h"], name="add"), helper.make_node("Relu", ["h"], ["y"], name="relu")],
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 3])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        [numpy_helper.from_array(np.array([1, -1, 0.5], np.float32), "w")], opset=opset)


def test_symbolic_dims_flow_through_inference():
    m = opencann.compile(_relu_add())
    assert m.graph.inputs[0].type.shape == ("batch", 3)
    assert m.graph.outputs[0].type.shape == ("batch", 3)
    y = m.run({"x": np.array([[1, 2, 3], [-4, 5, -6]], np.float32)})["y"]
    np.testing.assert_array_equal(y, [[2, 1, 3.5], [0, 4, 0]])


def test_external_data_initializers(tmp_path):
    m = _relu_add()
    m.graph.initializer[0].CopyFrom(numpy_helper.from_array(np.arange(3, dtype=np.float32) * 100, "w"))
    path = tmp_path / "ext.onnx"
    onnx.save_model(m, str(path), save_as_external_data=True, all_tensors_to_one_file=True,
                    location="weights.bin", size_threshold=0)
    assert (tmp_path / "weights.bin").exists()
    y = opencann.compile(str(path)).run({"x": np.zeros((1, 3), np.float32)})["y"]
    np.testing.assert_array_equal(y, [[0, 100, 200]])


def test_truncated_file(tmp_path):
    path = tmp_path / "cut.onnx"
    path.write_bytes(_relu_add().SerializeToString()[:40])
    with pytest.raises(opencann.ModelLoadError, match=r"cut\.onnx"):
        opencann.compile(str(path))


def test_not_an_onnx_file(tmp_path):
    path = tmp_path / "notes.onnx"
    path.write_text("these are not the weights you are looking for\n" * 10)
    with pytest.raises(opencann.ModelLoadError, match=r"notes\.onnx.*(not a readable ONNX model|holds no ONNX graph)"):
        opencann.compile(str(path))


def test_missing_file():
    with pytest.raises(opencann.ModelLoadError, match="does not exist"):
        opencann.compile("/nonexistent/model.onnx")


def test_opset_too_new():
    with pytest.raises(opencann.ModelLoadError, match=rf"opset {MAX_OPSET + 1}, newer than the newest"):
        opencann.compile(_relu_add(opset=MAX_OPSET + 1))


def test_all_unsupported_ops_are_listed_at_once():
    body = helper.make_graph([helper.make_node("InnerMystery", ["x"], ["b"])], "body", [],
                             [helper.make_tensor_value_info("b", TensorProto.FLOAT, None)])
    m = _model(
        [helper.make_node("FooOp", ["x"], ["a"], name="foo1"),
         helper.make_node("FooOp", ["a"], ["a2"], name="foo2"),
         helper.make_node("BarOp", ["a2"], ["c"], name="bar", domain="com.example"),
         helper.make_node("Relu", ["c"], ["d"]),
         helper.make_node("If", ["cond"], ["y"], then_branch=body, else_branch=body)],
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2]),
         helper.make_tensor_value_info("cond", TensorProto.BOOL, [])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], name="mystery")
    m.opset_import.append(helper.make_opsetid("com.example", 1))
    with pytest.raises(opencann.UnsupportedOpsError) as e:
        opencann.compile(m)
    msg = str(e.value)
    assert "model 'mystery' uses 3 op(s)" in msg
    assert "FooOp (opset 17): 2 node(s): 'foo1', 'foo2'" in msg
    assert "com.example::BarOp (opset 1): 1 node(s): 'bar'" in msg
    assert "InnerMystery" in msg


def test_malformed_node_is_named():
    m = _model([helper.make_node("Relu", ["x"], ["y"], name="r1", bogus=3)],
               [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2])],
               [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)])
    with pytest.raises(opencann.InvalidModelError, match=r"node 'r1' \(Relu\): unknown attribute 'bogus'"):
        opencann.compile(m)


def test_shape_mismatch_in_model_is_named():
    m = _model([helper.make_node("Add", ["x", "z"], ["y"], name="bad_add")],
               [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3]),
                helper.make_tensor_value_info("z", TensorProto.FLOAT, [4])],
               [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], name="m")
    with pytest.raises(opencann.InvalidModelError, match=r"model 'm': node 'bad_add' \(Add\) cannot take inputs .*do not broadcast"):
        opencann.compile(m)


def test_constants_and_unused_outputs_import():
    g = import_model(_model(
        [helper.make_node("Constant", [], ["c"], value=numpy_helper.from_array(np.float32(2.0))),
         helper.make_node("Add", ["x", "c"], ["y"])],
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])]))
    assert [c.const.item() for c in g.constants] == [2.0]
    assert [n.op for n in g.nodes] == ["Add"]


def test_external_weights_are_memory_mapped_not_copied(tmp_path):
    m = _relu_add()
    m.graph.initializer[0].CopyFrom(numpy_helper.from_array(np.arange(3, dtype=np.float32), "w"))
    path = tmp_path / "ext.onnx"
    onnx.save_model(m, str(path), save_as_external_data=True, all_tensors_to_one_file=True,
                    location="w.bin", size_threshold=0)
    g = import_model(str(path))
    w = g.constants[0].const
    assert isinstance(w, np.memmap) or isinstance(w.base, np.memmap)  # a view of the mapped file
    assert not w.flags.writeable
    np.testing.assert_array_equal(w, [0, 1, 2])


def test_missing_external_data_file_is_named(tmp_path):
    m = _relu_add()
    path = tmp_path / "ext.onnx"
    onnx.save_model(m, str(path), save_as_external_data=True, all_tensors_to_one_file=True,
                    location="weights.bin", size_threshold=0)
    (tmp_path / "weights.bin").unlink()
    with pytest.raises(opencann.ModelLoadError, match="initializer 'w': its external data file 'weights.bin' is missing"):
        opencann.compile(str(path))
