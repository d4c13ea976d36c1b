import numpy as np
import pytest

import opencann
from opencann import dtypes, ops
from opencann.ir import Graph, SequenceType, TensorType, Value
from opencann.ops.infer import InferError
from opencann.testing import tensor_type as t


def test_construct_insert_erase_at_length():
    g = Graph("seq", {"": 17})
    a = g.add_input("a", t("float32", 2))
    b = g.add_input("b", t("float32", 3))
    (s,) = g.add_node("SequenceConstruct", [a, b], ["s"])
    (s2,) = g.add_node("SequenceInsert", [s, a, g.add_constant("p0", np.array(0, np.int64))], ["s2"])
    (s3,) = g.add_node("SequenceErase", [s2, g.add_constant("pm1", np.array(-1, np.int32))], ["s3"])
    (n,) = g.add_node("SequenceLength", [s3], ["n"])
    (last,) = g.add_node("SequenceAt", [s2, g.add_constant("p2", np.array(-1, np.int64))], ["last"])
    (app,) = g.add_node("SequenceInsert", [s3, b], ["app"])
    g.outputs.extend([s3, n, last, app])
    av, bv = np.array([1, 2], np.float32), np.array([3, 4, 5], np.float32)
    out = opencann.compile(g).run({"a": av, "b": bv})
    assert [list(x) for x in out["s3"]] == [[1, 2], [1, 2]]
    assert out["n"] == 2 and out["n"].dtype == np.int64
    np.testing.assert_array_equal(out["last"], bv)
    assert len(out["app"]) == 3
    assert s.type == SequenceType(t("float32", None))  # elements of shape [2] and [3]
    assert n.type == t("int64")


def test_position_out_of_range():
    g = Graph("seq", {"": 17})
    a = g.add_input("a", t("float32", 2))
    (s,) = g.add_node("SequenceConstruct", [a], ["s"])
    g.outputs.extend(g.add_node("SequenceAt", [s, g.add_constant("p", np.array(1, np.int64))], ["y"]))
    with pytest.raises(Exception, match="out of range"):
        opencann.compile(g).run({"a": np.zeros(2, np.float32)})


def test_empty_sequence_type():
    d = ops.lookup("SequenceEmpty", "", 17)
    assert d.infer(dtype=7) == SequenceType(TensorType(dtypes.int64, None))
    assert d.infer(**d.resolve_attrs({})[0]) == SequenceType(TensorType(dtypes.float32, None))


@pytest.mark.parametrize("split, keepdims, sizes, elem", [
    (None, 1, [1, 1, 1], ("N", 1)),
    (None, 0, [1, 1, 1], ("N",)),
    (np.array(2, np.int64), 1, [2, 1], ("N", None)),
    (np.array([1, 2], np.int64), 0, [1, 2], ("N", None)),
])
def test_split_to_sequence(split, keepdims, sizes, elem):
    x = np.arange(6, dtype=np.float32).reshape(2, 3)
    g = Graph("split", {"": 17})
    xv = g.add_input("x", t("float32", "N", 3))
    ins = [xv] if split is None else [xv, g.add_constant("split", split)]
    (s,) = g.add_node("SplitToSequence", ins, ["s"], {"axis": 1, "keepdims": keepdims})
    g.outputs.append(s)
    out = opencann.compile(g).run({"x": x})["s"]
    assert [p.shape[1] if p.ndim == 2 else 1 for p in out] == sizes
    np.testing.assert_array_equal(np.concatenate([p.reshape(2, -1) for p in out], axis=1), x)
    assert s.type == SequenceType(t("float32", *elem))


def test_concat_from_sequence_and_new_axis():
    g = Graph("cat", {"": 17})
    a = g.add_input("a", t("float32", 2, 3))
    (s,) = g.add_node("SequenceConstruct", [a, a], ["s"])
    (c,) = g.add_node("ConcatFromSequence", [s], ["c"], {"axis": 1})
    (st,) = g.add_node("ConcatFromSequence", [s], ["st"], {"axis": -1, "new_axis": 1})
    g.outputs.extend([c, st])
    x = np.arange(6, dtype=np.float32).reshape(2, 3)
    out = opencann.compile(g).run({"a": x})
    np.testing.assert_array_equal(out["c"], np.concatenate([x, x], 1))
    np.testing.assert_array_equal(out["st"], np.stack([x, x], -1))
    assert c.type == t("float32", 2, None) and st.type == t("float32", 2, 3, None)


def test_sequence_map_with_a_tensor_argument():
    body = Graph("body")
    e = body.add_input("e", t("float32", "K"))
    k = body.add_input("k", t("float32", 1))
    (y,) = body.add_node("Mul", [e, k], ["y"])
    (n,) = body.add_node("Shape", [e], ["n"])
    body.outputs.extend([y, n])
    g = Graph("map", {"": 17})
    a = g.add_input("a", t("float32", 2))
    b = g.add_input("b", t("float32", 3))
    k2 = g.add_input("k", t("float32", 1))
    (s,) = g.add_node("SequenceConstruct", [a, b], ["s"])
    outs = g.add_node("SequenceMap", [s, k2], ["ys", "ns"], {"body": body})
    g.outputs.extend(outs)
    out = opencann.compile(g).run({"a": np.ones(2, np.float32), "b": np.ones(3, np.float32), "k": np.array([3], np.float32)})
    assert [list(x) for x in out["ys"]] == [[3, 3], [3, 3, 3]]
    assert [int(x[0]) for x in out["ns"]] == [2, 3]
    assert outs[0].type == SequenceType(t("float32", "K"))


def test_infer_rejects_non_sequences():
    d = ops.lookup("SequenceLength", "", 17)
    with pytest.raises(InferError, match="sequence"):
        d.infer(Value("x", t("float32", 2)))
    d = ops.lookup("SequenceInsert", "", 17)
    with pytest.raises(InferError, match="insert"):
        d.infer(Value("s", SequenceType(t("float32", 2))), Value("x", t("int64", 2)), None)
