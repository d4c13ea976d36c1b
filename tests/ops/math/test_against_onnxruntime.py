"""Math references against onnxruntime as an oracle, over dtypes and attributes the conformance
suite leaves out (integer Div/Mod/Pow, unsigned reductions, select_last_index, ...)."""

import warnings

import numpy as np
import pytest
from onnx import TypeProto, helper

import opencann
from opencann import dtypes

ort = pytest.importorskip("onnxruntime")

rng = np.random.default_rng(7)


def _arr(dt, shape, lo=-10, hi=10):
    dt = np.dtype(dt)
    if dt.kind == "f":
        return rng.uniform(lo, hi, shape).astype(dt)
    return rng.integers(0 if dt.kind == "u" else lo, hi, shape).astype(dt)


def _nonzero(x):
    x = x.copy()
    x[x == 0] = 3
    return x


def _cases():
    out = []
    for dt in (np.float32, np.float16, np.int8, np.int32, np.int64, np.uint8, np.uint64):
        a, b = _arr(dt, (3, 4)), _arr(dt, (4,))
        out += [("Add", [a, b], {}), ("Sub", [a, b], {}), ("Mul", [a, b], {}), ("Max", [a, b], {}),
                ("Div", [a, _nonzero(b)], {}), ("Mod", [a, _nonzero(b)], {"fmod": 1}),
                ("Less", [a, b], {}), ("GreaterOrEqual", [a, b], {})]
        if np.dtype(dt).kind != "f":
            out.append(("Mod", [a, _nonzero(b)], {}))
    for dt in (np.float32, np.int32, np.int64):
        a = _arr(dt, (3, 4))
        out += [(op, [a, np.array([1])], {"keepdims": 0})
                for op in ("ReduceSum", "ReduceMax", "ReduceProd", "ReduceMean", "ReduceL2", "ReduceSumSquare")]
        out += [("ArgMax", [a], {"axis": 1, "select_last_index": 1}), ("ArgMin", [a], {"axis": 0}),
                ("CumSum", [a, np.array(1)], {"exclusive": 1, "reverse": 1}),
                ("TopK", [a, np.array([2])], {"largest": 0}),
                ("MatMul", [_arr(dt, (2, 3, 4)), _arr(dt, (4, 5))], {}),
                ("Einsum", [_arr(dt, (2, 3, 4)), _arr(dt, (2, 4, 5))], {"equation": "bij,bjk->bik"})]
    for dt in (np.int32, np.int64):
        out += [("Pow", [_arr(dt, (3, 4), -5, 5), _arr(dt, (4,), 0, 4)], {}),
                ("Pow", [_arr(dt, (3, 4), 0, 5), _arr(np.float32, (4,), 0, 3)], {})]
    for dt in (np.float32, np.float16):
        x = _arr(dt, (64,), -0.99, 0.99)
        out += [(op, [x], {}) for op in ("Acos", "Atan", "Sin", "Tan", "Exp", "Erf", "Round", "Reciprocal")]
        out += [("ReduceLogSumExp", [_arr(dt, (3, 4)), np.array([0])], {}),
                ("Pow", [np.abs(_arr(dt, (3, 4))), _arr(dt, (4,), -2, 2)], {}),
                ("Mean", [_arr(dt, (3, 4)), _arr(dt, (4,)), _arr(dt, (3, 1))], {})]
    out += [("Gemm", [_arr(np.float32, (4, 3)), _arr(np.float32, (5, 4)), _arr(np.float32, (5,))],
             {"transA": 1, "transB": 1, "alpha": 2.0, "beta": 0.5}),
            ("Det", [_arr(np.float32, (2, 3, 3))], {}),
            ("BitShift", [_arr(np.uint8, (6,), 0, 200), np.array([0, 1, 2, 3, 7, 5], np.uint8)], {"direction": "LEFT"}),
            ("BitShift", [_arr(np.uint64, (6,), 0, 200), np.array([0, 1, 2, 3, 7, 5], np.uint64)], {"direction": "RIGHT"})]
    return out


CASES = _cases()


@pytest.mark.parametrize("op,inputs,attrs", CASES,
                         ids=[f"{op}-{'-'.join(str(x.dtype) for x in ins)}-{i}" for i, (op, ins, _) in enumerate(CASES)])
def test_matches_onnxruntime(op, inputs, attrs):
    names = [f"x{i}" for i in range(len(inputs))]
    nout = 2 if op == "TopK" else 1
    node = helper.make_node(op, names, [f"y{i}" for i in range(nout)], **attrs)
    graph = helper.make_graph(
        [node], op,
        [helper.make_tensor_value_info(n, dtypes.from_numpy(x.dtype).onnx, x.shape) for n, x in zip(names, inputs)],
        [helper.make_value_info(f"y{i}", TypeProto()) for i in range(nout)])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21)])
    model.ir_version = 10
    feeds = dict(zip(names, inputs))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        want = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, feeds)
    got = opencann.compile(model).run(feeds)
    for i, w in enumerate(want):
        g = got[f"y{i}"]
        assert g.dtype == w.dtype and g.shape == w.shape
        if g.dtype.kind == "f":
            np.testing.assert_allclose(g, w, rtol=1e-3 if g.dtype == np.float16 else 1e-5, atol=1e-6)
        else:
            np.testing.assert_array_equal(g, w)
