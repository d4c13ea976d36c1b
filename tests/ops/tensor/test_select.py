"""Where, NonZero, OneHot, Compress, ReverseSequence, Unique."""

import numpy as np

from opencann import dtypes
from opencann.ir import TensorType

i64 = np.int64


def test_where_keeps_value_dtype(run_op, infer_op):
    y = run_op("Where", [np.array([True, False]), np.array([1, 2], np.int8), np.array([[3], [4]], np.int8)])
    assert y.dtype == np.int8
    np.testing.assert_array_equal(y, [[1, 3], [1, 4]])
    t = infer_op("Where", [TensorType(dtypes.bool_, ("b", 1)), TensorType(dtypes.float16, (4,)),
                           TensorType(dtypes.float16, (1,))])
    assert (t.dtype, t.shape) == (dtypes.float16, ("b", 4))


def test_nonzero_shape(run_op):
    y = run_op("NonZero", [np.array([[0, 1], [2, 0]], np.float32)])
    np.testing.assert_array_equal(y, [[0, 1], [1, 0]])


def test_one_hot_axis_and_depth_infer(run_op, infer_op):
    y = run_op("OneHot", [np.array([0, -1, 5], i64), np.array(3, i64), np.array([0, 1], np.float32)],
               {"axis": 0})
    np.testing.assert_array_equal(y, [[1, 0, 0], [0, 0, 0], [0, 1, 0]])
    t = infer_op("OneHot", [TensorType(dtypes.int64, ("b",)), np.array(10, i64),
                            TensorType(dtypes.int32, (2,))])
    assert (t.dtype, t.shape) == (dtypes.int32, ("b", 10))


def test_compress_short_condition(run_op):
    x = np.arange(6, dtype=np.float32).reshape(3, 2)
    np.testing.assert_array_equal(run_op("Compress", [x, np.array([False, True])], {"axis": 0}), [[2, 3]])
    np.testing.assert_array_equal(run_op("Compress", [x, np.array([True, False, True])]), [0, 2])


def test_reverse_sequence_batch_first(run_op):
    x = np.arange(8, dtype=np.float32).reshape(2, 4)
    y = run_op("ReverseSequence", [x, np.array([3, 0], i64)], {"batch_axis": 0, "time_axis": 1})
    np.testing.assert_array_equal(y, [[2, 1, 0, 3], [4, 5, 6, 7]])


def test_unique_unsorted_with_axis(run_op):
    x = np.array([[3, 3], [1, 1], [3, 3], [2, 2]], np.int32)
    y, idx, inv, cnt = run_op("Unique", [x], {"axis": 0, "sorted": 0}, outputs=4)
    np.testing.assert_array_equal(y, [[3, 3], [1, 1], [2, 2]])
    np.testing.assert_array_equal(idx, [0, 1, 3])
    np.testing.assert_array_equal(inv, [0, 1, 0, 2])
    np.testing.assert_array_equal(cnt, [2, 1, 1])
