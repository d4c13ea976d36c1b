"""Reductions, ArgMax/ArgMin, CumSum/CumProd: axes as attribute or input, empty sets, inference."""

import numpy as np
import pytest

from opencann.ir import TensorType
from opencann.ops.infer import InferError

X = np.arange(24, dtype=np.float32).reshape(2, 3, 4)


def test_axes_input_and_attribute_agree(run_op):
    want = X.sum(axis=(0, 2), keepdims=True)
    np.testing.assert_array_equal(run_op("ReduceSum", [X, np.array([0, -1])], opset=13), want)
    np.testing.assert_array_equal(run_op("ReduceSum", [X], {"axes": [0, -1]}, opset=11), want)
    np.testing.assert_array_equal(run_op("ReduceMean", [X], {"axes": [1], "keepdims": 0}, opset=13),
                                  X.mean(axis=1))


def test_axes_known_at_compile_time(run_op):
    got = run_op("ReduceMax", [X, np.array([1])], {"keepdims": 0}, opset=18, consts=(1,))
    np.testing.assert_array_equal(got, X.max(axis=1))


def test_empty_axes(run_op):
    np.testing.assert_array_equal(run_op("ReduceProd", [X, np.array([], np.int64)], opset=18),
                                  np.prod(X, keepdims=True))
    np.testing.assert_array_equal(
        run_op("ReduceL1", [X, np.array([], np.int64)], {"noop_with_empty_axes": 1}, opset=18), X)
    np.testing.assert_array_equal(run_op("ReduceSum", [X, None], {"keepdims": 0}, opset=13), X.sum())


@pytest.mark.parametrize("op,want", [("ReduceSum", 0), ("ReduceProd", 1), ("ReduceMax", np.iinfo(np.int32).min),
                                     ("ReduceMin", np.iinfo(np.int32).max), ("ReduceL2", 0)])
def test_empty_set_on_integers(run_op, op, want):
    x = np.zeros((2, 0, 3), np.int32)
    got = run_op(op, [x, np.array([1])], opset=18)
    assert got.dtype == np.int32 and got.shape == (2, 1, 3)
    assert (got == want).all()


def test_empty_set_float(run_op):
    x = np.zeros((0, 2), np.float32)
    np.testing.assert_array_equal(run_op("ReduceLogSumExp", [x, np.array([0])], opset=18), [[-np.inf, -np.inf]])
    np.testing.assert_array_equal(run_op("ReduceMin", [x, np.array([0])], opset=18), [[np.inf, np.inf]])


def test_integer_reductions_keep_dtype(run_op):
    x = np.array([[1, 2], [4, 4]], np.int32)
    got = run_op("ReduceMean", [x, np.array([1])], {"keepdims": 0}, opset=18)
    assert got.dtype == np.int32
    np.testing.assert_array_equal(got, [1, 4])  # 1.5 truncates
    np.testing.assert_array_equal(run_op("ReduceSumSquare", [x, np.array([0])], opset=18), [[17, 20]])
    big = np.array([2**31 - 1, 1], np.uint32)
    assert run_op("ReduceSum", [big, None], opset=13).dtype == np.uint32


def test_logsumexp_is_stable(run_op):
    x = np.array([[1000.0, 1000.0], [-1000.0, -1000.0]], np.float32)
    got = run_op("ReduceLogSumExp", [x, np.array([1])], {"keepdims": 0}, opset=18)
    np.testing.assert_allclose(got, [1000 + np.log(2), -1000 + np.log(2)], rtol=1e-6)


def test_float16_reduction_accumulates_in_float32(run_op):
    x = np.full(4, 65504.0, np.float16)  # the float16 maximum: a float16 sum would overflow
    got = run_op("ReduceMean", [x, None], opset=18)
    assert got.dtype == np.float16
    np.testing.assert_array_equal(got, [65504.0])


def test_reduce_inference(infer_op, tt):
    data = tt("float32", "b", "s", 8)
    axes = tt("int64", 1)
    assert infer_op("ReduceSum", [data, (axes, [-1])], {"keepdims": 0}, opset=13) == tt("float32", "b", "s")
    assert infer_op("ReduceSum", [data, axes], opset=13) == tt("float32", None, None, None)
    assert infer_op("ReduceMax", [data, axes], {"keepdims": 0}, opset=18) == tt("float32", None, None)
    assert infer_op("ReduceMax", [data, None], {"keepdims": 0}, opset=18) == tt("float32")
    assert infer_op("ReduceMean", [data, None], {"noop_with_empty_axes": 1}, opset=18) == data
    assert infer_op("ReduceL2", [data], {"axes": [1]}, opset=11) == tt("float32", "b", 1, 8)
    assert infer_op("ReduceSum", [data, TensorType(axes.dtype, None)], {"keepdims": 0}, opset=13).shape is None
    with pytest.raises(InferError, match="out of range"):
        infer_op("ReduceSum", [data, (axes, [3])], opset=13)


def test_argmax_argmin(run_op, infer_op, tt):
    x = np.array([[1, 5, 5], [7, 7, 0]], np.float32)
    np.testing.assert_array_equal(run_op("ArgMax", [x], {"axis": 1}), [[1], [0]])
    np.testing.assert_array_equal(run_op("ArgMax", [x], {"axis": 1, "select_last_index": 1}), [[2], [1]])
    got = run_op("ArgMin", [x], {"axis": 0, "keepdims": 0})
    assert got.dtype == np.int64
    np.testing.assert_array_equal(got, [0, 0, 1])
    assert infer_op("ArgMax", [tt("float16", "n", 4)], {"axis": -1}) == tt("int64", "n", 1)


@pytest.mark.parametrize("exclusive,reverse,want", [
    (0, 0, [[1, 3, 6], [4, 9, 15]]),
    (1, 0, [[0, 1, 3], [0, 4, 9]]),
    (0, 1, [[6, 5, 3], [15, 11, 6]]),
    (1, 1, [[5, 3, 0], [11, 6, 0]]),
])
def test_cumsum(run_op, exclusive, reverse, want):
    x = np.array([[1, 2, 3], [4, 5, 6]], np.int32)
    got = run_op("CumSum", [x, np.array(1, np.int32)], {"exclusive": exclusive, "reverse": reverse})
    assert got.dtype == np.int32
    np.testing.assert_array_equal(got, want)


def test_cumprod(run_op):
    x = np.array([1.0, 2.0, 3.0, 4.0], np.float32)
    got = run_op("CumProd", [x, np.array([0])], {"exclusive": 1, "reverse": 1}, opset=26)
    np.testing.assert_array_equal(got, [24, 12, 4, 1])
