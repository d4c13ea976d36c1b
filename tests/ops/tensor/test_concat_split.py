"""Concat, Split and Slice: symbolic inference and legacy forms."""

import numpy as np
import pytest

from opencann import dtypes
from opencann.ir import TensorType
from opencann.ops.infer import InferError

i64 = np.int64


def f32(*shape):
    return TensorType(dtypes.float32, shape)


def test_concat_infer_symbolic(infer_op):
    assert infer_op("Concat", [f32("b", 2), f32("b", 3)], {"axis": -1}).shape == ("b", 5)
    assert infer_op("Concat", [f32("b", 2), f32("c", 2)], {"axis": 0}).shape == (None, 2)
    with pytest.raises(InferError, match="differ"):
        infer_op("Concat", [f32(2, 2), f32(3, 3)], {"axis": 0})


def test_split_infer_from_split_input(infer_op):
    ts = infer_op("Split", [f32("b", 10), np.array([3, 7], i64)], {"axis": 1})
    assert [t.shape for t in ts] == [("b", 3), ("b", 7)]
    ts = infer_op("Split", [f32("b", 10)], {"axis": 1, "num_outputs": 3}, opset=18)
    assert [t.shape for t in ts] == [("b", 4), ("b", 4), ("b", 2)]


def test_split_uneven_num_outputs(run_op):
    x = np.arange(7, dtype=np.float32)
    ys = run_op("Split", [x], {"num_outputs": 3}, opset=18, outputs=3)
    assert [y.tolist() for y in ys] == [[0, 1, 2], [3, 4, 5], [6]]


def test_split_legacy_attribute(run_op):
    x = np.arange(6, dtype=np.float32).reshape(2, 3)
    a, b = run_op("Split", [x], {"axis": 1, "split": [1, 2]}, opset=11, outputs=2)
    np.testing.assert_array_equal(a, x[:, :1])
    np.testing.assert_array_equal(b, x[:, 1:])
    a, b = run_op("Split", [x], {"axis": 0}, opset=11, outputs=2)
    np.testing.assert_array_equal(b, x[1:])


def test_slice_negative_steps_and_clamping(run_op):
    x = np.arange(10, dtype=np.float32)
    y = run_op("Slice", [x, np.array([-1], i64), np.array([-(2**63)], i64), np.array([0], i64),
                         np.array([-3], i64)], opset=13)
    np.testing.assert_array_equal(y, x[::-3])
    y = run_op("Slice", [x, np.array([20], i64), np.array([0], i64), None, np.array([-1], i64)], opset=13)
    np.testing.assert_array_equal(y, x[:0:-1])
    y = run_op("Slice", [x.reshape(2, 5)], {"starts": [1], "ends": [100], "axes": [1]}, opset=1)
    np.testing.assert_array_equal(y, x.reshape(2, 5)[:, 1:])


def test_slice_infer(infer_op):
    t = infer_op("Slice", [f32("b", 10), np.array([1], i64), np.array([-1], i64), np.array([1], i64)])
    assert t.shape == ("b", 8)
    t = infer_op("Slice", [f32("b", 10), np.array([0], i64), np.array([2**62], i64), np.array([0], i64)])
    assert t.shape == ("b", 10)
    t = infer_op("Slice", [f32("b", 10), TensorType(dtypes.int64, (1,)), TensorType(dtypes.int64, (1,)),
                           np.array([1], i64)])
    assert t.shape == ("b", None)


def test_slice_backwards_from_before_the_start_is_empty(run_op):
    x = np.arange(4, dtype=np.float32)
    y = run_op("Slice", [x, np.array([-6], i64), np.array([-5], i64), np.array([0], i64), np.array([-1], i64)])
    assert y.shape == (0,)
