"""Constant, ConstantOfShape, Range, EyeLike, Trilu."""

import ml_dtypes
import numpy as np
import pytest

from opencann import dtypes, ops
from opencann.ir import TensorType
from opencann.ops.infer import InferError

i64 = np.int64


def test_constant_value_attributes():
    ref = ops.lookup("Constant").reference
    full = dict.fromkeys(ops.lookup("Constant").attrs)
    assert ref(**{**full, "value_ints": [1, 2]}).dtype == np.int64
    assert ref(**{**full, "value_float": 2.5}).shape == ()
    assert ref(**{**full, "value_strings": ["a", "b"]}).tolist() == ["a", "b"]
    with pytest.raises(ValueError, match="exactly one"):
        ref(**full)


def test_constant_of_shape_infer(infer_op):
    t = infer_op("ConstantOfShape", [np.array([2, 3], i64)], {"value": np.array([7], np.int32)})
    assert (t.dtype, t.shape) == (dtypes.int32, (2, 3))
    t = infer_op("ConstantOfShape", [TensorType(dtypes.int64, (3,))])
    assert (t.dtype, t.shape) == (dtypes.float32, (None, None, None))


def test_range_values_and_infer(run_op, infer_op):
    np.testing.assert_array_equal(run_op("Range", [np.int64(10), np.int64(4), np.int64(-3)]), [10, 7])
    y = run_op("Range", [np.float32(0), np.float32(1), np.float32(0.25)])
    np.testing.assert_allclose(y, [0, 0.25, 0.5, 0.75])
    assert y.dtype == np.float32
    t = infer_op("Range", [np.array(0, i64), np.array(10, i64), np.array(3, i64)])
    assert t.shape == (4,)
    t = infer_op("Range", [TensorType(dtypes.int64, ()), np.array(10, i64), np.array(3, i64)])
    assert t.shape == (None,)


def test_range_bfloat16_stash(run_op):
    b = ml_dtypes.bfloat16
    y = run_op("Range", [np.array(256, b), np.array(260, b), np.array(1, b)], opset=27)
    assert y.dtype == b and len(y) == 4


def test_eye_like_dtype_and_offset(run_op):
    y = run_op("EyeLike", [np.zeros((3, 4), np.float32)], {"k": 1, "dtype": 7})
    assert y.dtype == np.int64
    np.testing.assert_array_equal(y, np.eye(3, 4, 1))


def test_trilu_batched(run_op, infer_op):
    x = np.ones((2, 3, 3), np.float32)
    y = run_op("Trilu", [x, np.array(-1, i64)], {"upper": 0})
    np.testing.assert_array_equal(y[1], np.tril(np.ones((3, 3)), -1))
    with pytest.raises(InferError, match="rank >= 2"):
        infer_op("Trilu", [TensorType(dtypes.float32, (3,))])
