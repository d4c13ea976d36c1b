"""TopK: tie order, largest/smallest, NaN, K known or unknown at compile time, opset 1."""

import numpy as np
import pytest

from opencann.ops.infer import InferError


def test_ties_keep_index_order(run_op):
    x = np.array([[2, 2, 1, 1, 3]], np.int64)
    v, i = run_op("TopK", [x, np.array([4])], {"axis": 1}, outputs=2)
    np.testing.assert_array_equal(v, [[3, 2, 2, 1]])
    np.testing.assert_array_equal(i, [[4, 0, 1, 2]])
    v, i = run_op("TopK", [x, np.array([3])], {"axis": 1, "largest": 0}, outputs=2)
    np.testing.assert_array_equal(v, [[1, 1, 2]])
    np.testing.assert_array_equal(i, [[2, 3, 0]])


def test_unsigned_and_axis0(run_op):
    x = np.array([[5, 1], [7, 0], [6, 9]], np.uint64)
    v, i = run_op("TopK", [x, np.array([2])], {"axis": 0}, outputs=2)
    assert v.dtype == np.uint64 and i.dtype == np.int64
    np.testing.assert_array_equal(v, [[7, 9], [6, 1]])
    np.testing.assert_array_equal(i, [[1, 2], [2, 0]])


def test_nan_counts_as_largest(run_op):
    x = np.array([1.0, np.nan, 3.0], np.float32)
    v, i = run_op("TopK", [x, np.array([2])], outputs=2)
    np.testing.assert_array_equal(i, [1, 2])
    v, i = run_op("TopK", [x, np.array([2])], {"largest": 0}, outputs=2)
    np.testing.assert_array_equal(i, [0, 2])


def test_k_zero_and_too_large(run_op):
    x = np.array([1.0, 2.0], np.float32)
    v, i = run_op("TopK", [x, np.array([0])], outputs=2)
    assert v.shape == (0,) and i.shape == (0,)
    with pytest.raises(Exception, match="k=3"):
        run_op("TopK", [x, np.array([3])], outputs=2)


def test_inference(infer_op, tt):
    x = tt("float32", "b", 10)
    k = tt("int64", 1)
    assert infer_op("TopK", [x, (k, [3])]) == (tt("float32", "b", 3), tt("int64", "b", 3))
    assert infer_op("TopK", [x, k], {"axis": 0}) == (tt("float32", None, 10), tt("int64", None, 10))
    with pytest.raises(InferError, match="larger"):
        infer_op("TopK", [x, (k, [11])])
    with pytest.raises(InferError, match="one element"):
        infer_op("TopK", [x, tt("int64", 2)])
    assert infer_op("TopK", [x], {"k": 2}, opset=1) == (tt("float32", "b", 2), tt("int64", "b", 2))


def test_opset1_attribute_k(run_op):
    v, i = run_op("TopK", [np.array([3.0, 1.0, 2.0], np.float32)], {"k": 2}, opset=1, outputs=2)
    np.testing.assert_array_equal(v, [3.0, 2.0])
    np.testing.assert_array_equal(i, [0, 2])
