import numpy as np

from opencann import ops
from opencann.ir import Graph, Value


def _cumsum_body(Body, typed=True):
    b = Body(("acc", "float32" if typed else None, 2), ("x", "float32" if typed else None, 2))
    acc, x = b.ins
    s = b.node("Add", [acc, x])
    return b.out(s, b.node("Identity", [s]))


def test_scan9_reverse_input_and_output_axis(Body, tensor, run):
    body = _cumsum_body(Body)
    g = Graph("scan", {"": 21})
    init = g.add_input("init", tensor("float32", 2))
    xs = g.add_input("xs", tensor("float32", 2, 3))  # scanned along axis 1
    outs = g.add_node("Scan", [init, xs], ["final", "ys"],
                      {"body": body, "num_scan_inputs": 1, "scan_input_axes": [1],
                       "scan_input_directions": [1], "scan_output_axes": [1]})
    g.outputs.extend(outs)
    x = np.arange(6, dtype=np.float32).reshape(2, 3)
    out = run(g, {"init": np.zeros(2, np.float32), "xs": x})
    np.testing.assert_array_equal(out["final"], x.sum(1))
    # steps visit columns 2, 1, 0; outputs are stacked along axis 1 in step order
    np.testing.assert_array_equal(out["ys"], np.cumsum(x[:, ::-1], axis=1))
    assert outs[1].type == tensor("float32", 2, 3)


def test_scan8_batches_and_sequence_lens(Body, tensor, run):
    body = _cumsum_body(Body)
    g = Graph("scan8", {"": 8})
    lens = g.add_input("lens", tensor("int64", 2))
    init = g.add_input("init", tensor("float32", 2, 2))
    xs = g.add_input("xs", tensor("float32", 2, 3, 2))
    outs = g.add_node("Scan", [lens, init, xs], ["final", "ys"], {"body": body, "num_scan_inputs": 1})
    g.outputs.extend(outs)
    x = np.arange(12, dtype=np.float32).reshape(2, 3, 2)
    out = run(g, {"lens": np.array([3, 2], np.int64), "init": np.zeros((2, 2), np.float32), "xs": x})
    np.testing.assert_array_equal(out["final"], [x[0].sum(0), x[1, :2].sum(0)])
    np.testing.assert_array_equal(out["ys"][0], np.cumsum(x[0], 0))
    np.testing.assert_array_equal(out["ys"][1], np.concatenate([np.cumsum(x[1, :2], 0), np.zeros((1, 2))]))
    assert outs[1].type == tensor("float32", 2, 3, 2)


def test_body_input_types_from_scan_axes(Body, tensor):
    body = _cumsum_body(Body, typed=False)
    d = ops.lookup("Scan", "", 21)
    types = d.infer_subgraph_inputs(Value("a", tensor("float32", "N")), Value("b", tensor("float32", "N", "T")),
                                    body=body, num_scan_inputs=1, scan_input_axes=[-1],
                                    scan_input_directions=None, scan_output_axes=None, scan_output_directions=None)
    assert types["body"] == [tensor("float32", "N"), tensor("float32", "N")]
    d8 = ops.lookup("Scan", "", 8)
    types = d8.infer_subgraph_inputs(None, Value("a", tensor("float32", "B", 4)), Value("b", tensor("float32", "B", "T", 5)),
                                     body=body, num_scan_inputs=1, directions=None)
    assert types["body"] == [tensor("float32", 4), tensor("float32", 5)]
