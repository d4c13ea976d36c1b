"""The IR's text form prints and parses back to an equal graph."""

import numpy as np
import pytest

from opencann import dtypes
from opencann.ir import (Graph, OptionalType, SequenceType, TensorType, TextError, graphs_equal, parse,
                         verify)


def _sample_graph() -> Graph:
    g = Graph("sample", {"": 17, "ai.onnx.ml": 3})
    x = g.add_input("x", TensorType(dtypes.float32, ("batch", 4)))
    s = g.add_input("s", SequenceType(TensorType(dtypes.int64, None)))
    o = g.add_input("o", OptionalType(TensorType(dtypes.float16, (None, 2))))
    w = g.add_constant("w", np.arange(8, dtype=np.float32).reshape(4, 2))
    big = g.add_constant("odd/name:0", np.random.default_rng(0).standard_normal((20, 20)).astype(np.float32))
    bf = g.add_constant("bf", np.array([1.5, -2.0], dtype=dtypes.bfloat16.np))
    txt = g.add_constant("txt", np.array(["a", 'quote"d'], dtype=object))
    h, = g.add_node("MatMul", [x, w], ["h"], types=[TensorType(dtypes.float32, ("batch", 2))])
    body = Graph("body")
    bi = body.add_input("i", TensorType(dtypes.int64, ()))
    bo, = body.add_node("Add", [bi, bi], ["bo"], types=[TensorType(dtypes.int64, ())])
    body.outputs.append(bo)
    y, z = g.add_node("Custom", [h, None, big, bf, txt, s, o], ["y", "z"], name="custom node",
                      domain="com.example",
                      attrs={"f": 0.5, "i": -3, "s": "text\n", "fs": [1.0, float("inf")], "is": [1, 2],
                             "ss": ["a", "b"], "t": np.array([[1, 2]], dtype=np.int32), "body": body,
                             "nan": float("nan"), "ty": TensorType(dtypes.float32, (1,))})
    g.outputs += [y, z, h]
    return g


def test_round_trip_is_equal():
    g = _sample_graph()
    text = g.to_text()
    g2 = parse(text)
    assert graphs_equal(g, g2)
    assert g2.to_text() == text


def test_round_trip_detects_difference():
    g = _sample_graph()
    g2 = parse(g.to_text().replace("f=0.5", "f=0.25"))
    assert not graphs_equal(g, g2)


def test_printed_form_is_readable():
    text = str(_sample_graph())
    assert "%h: float32[batch,2] = MatMul(%x, %w)" in text
    assert "<20x20 float32>" in text  # big constants elided in the human form
    assert 'as "custom node"' in text


def test_parse_error_names_line_and_column():
    with pytest.raises(TextError, match=r"line 2, column \d+: value %nope is used before"):
        parse("graph g(%x: float32[2]) -> (%y) {\n  %y: float32[2] = Relu(%nope)\n}")
    with pytest.raises(TextError, match="unknown dtype"):
        parse("graph g(%x: floaty[2]) -> (%x) {\n}")


def test_parsed_graph_verifies():
    verify(parse(_sample_graph().to_text()))
