"""Arithmetic ops: ONNX integer semantics, mixed-dtype Pow, legacy broadcasting, Clip versions."""

import ml_dtypes
import numpy as np
import pytest

from opencann.ir import TensorType
from opencann.ops.infer import InferError


def test_integer_div_truncates_toward_zero(run_op):
    a = np.array([7, -7, 7, -7, 0, 5], np.int32)
    b = np.array([2, 2, -2, -2, 3, 0], np.int32)
    got = run_op("Div", [a, b])
    assert got.dtype == np.int32
    np.testing.assert_array_equal(got, [3, -3, -3, 3, 0, 0])  # division by zero gives 0


def test_unsigned_div(run_op):
    np.testing.assert_array_equal(run_op("Div", [np.array([250, 7], np.uint8), np.array([3, 2], np.uint8)]), [83, 3])


def test_mod_sign_rules(run_op):
    a = np.array([-7, 7, -7, 7], np.int64)
    b = np.array([3, -3, -3, 3], np.int64)
    np.testing.assert_array_equal(run_op("Mod", [a, b]), [2, -2, -1, 1])                # Python
    np.testing.assert_array_equal(run_op("Mod", [a, b], {"fmod": 1}), [-1, 1, -1, 1])   # C


def test_mod_float16_fmod(run_op):
    a = np.array([5.5, -5.5], np.float16)
    b = np.array([2.0, 2.0], np.float16)
    got = run_op("Mod", [a, b], {"fmod": 1})
    assert got.dtype == np.float16
    np.testing.assert_array_equal(got, [1.5, -1.5])


def test_pow_returns_base_dtype(run_op):
    got = run_op("Pow", [np.array([2, 3, -2], np.int32), np.array([0.5, 2.0, 3.0], np.float32)])
    assert got.dtype == np.int32
    np.testing.assert_array_equal(got, [1, 9, -8])
    got = run_op("Pow", [np.array([2.0, 4.0], np.float32), np.array([3, -1], np.int64)])
    assert got.dtype == np.float32
    np.testing.assert_array_equal(got, [8.0, 0.25])


def test_pow_integer_negative_exponent(run_op):
    got = run_op("Pow", [np.array([2, 1, -1, 5], np.int64), np.array([-1, -3, -3, 2], np.int64)])
    np.testing.assert_array_equal(got, [0, 1, -1, 25])


def test_add_wraps_and_keeps_narrow_dtypes(run_op):
    np.testing.assert_array_equal(run_op("Add", [np.array([250], np.uint8), np.array([10], np.uint8)]), [4])
    x = np.array([1.5, 2.25], ml_dtypes.bfloat16)
    got = run_op("Mul", [x, x])
    assert got.dtype == ml_dtypes.bfloat16
    np.testing.assert_array_equal(got.astype(np.float32), [2.25, 5.0625])


def test_legacy_broadcast_with_axis(run_op):
    a = np.zeros((2, 3, 4), np.float32)
    b = np.array([1.0, 2.0, 3.0], np.float32)
    got = run_op("Add", [a, b], {"broadcast": 1, "axis": 1}, opset=6)
    np.testing.assert_array_equal(got[1, :, 0], [1.0, 2.0, 3.0])
    np.testing.assert_array_equal(got[0, 2, :], [3.0] * 4)


def test_binary_inference(infer_op, tt):
    assert infer_op("Add", [tt("float32", "batch", 1, 8), tt("float32", 4, 1)]) == tt("float32", "batch", 4, 8)
    assert infer_op("Sub", [tt("int64", "n"), tt("int64", "m")]) == tt("int64", None)
    assert infer_op("Add", [TensorType(tt("float32").dtype, None), tt("float32", 3)]).shape is None
    assert infer_op("Pow", [tt("int32", 3), tt("float32", 1)]) == tt("int32", 3)
    with pytest.raises(InferError, match="float32, int64"):
        infer_op("Add", [tt("float32", 3), tt("int64", 3)])
    with pytest.raises(InferError, match="broadcast"):
        infer_op("Mul", [tt("float32", 3), tt("float32", 4)])


def test_variadic_ops(run_op, infer_op, tt):
    a = np.array([[1.0, 5.0]], np.float32)
    b = np.array([[3.0], [2.0]], np.float32)
    c = np.array(4.0, np.float32)
    np.testing.assert_array_equal(run_op("Max", [a, b, c]), [[4, 5], [4, 5]])
    np.testing.assert_array_equal(run_op("Min", [a, b, c]), [[1, 3], [1, 2]])
    np.testing.assert_array_equal(run_op("Sum", [a, b, c]), [[8, 12], [7, 11]])
    np.testing.assert_allclose(run_op("Mean", [a, b, c]), [[8 / 3, 4], [7 / 3, 11 / 3]], rtol=1e-6)
    only = run_op("Sum", [a])
    np.testing.assert_array_equal(only, a)
    assert infer_op("Max", [tt("int8", "n", 1), tt("int8", 3)]) == tt("int8", "n", 3)


def test_mean_float16_accumulates_in_float32(run_op):
    x = np.full(4, 65504.0, np.float16)  # the sum overflows float16, the mean does not
    got = run_op("Mean", [x, x])
    assert got.dtype == np.float16
    np.testing.assert_array_equal(got, x)


def test_clip_versions(run_op):
    x = np.array([-3.0, 0.5, 9.0], np.float32)
    np.testing.assert_array_equal(run_op("Clip", [x, np.float32(-1), np.float32(1)]), [-1, 0.5, 1])
    np.testing.assert_array_equal(run_op("Clip", [x, None, np.float32(1)]), [-3, 0.5, 1])
    np.testing.assert_array_equal(run_op("Clip", [x], {"min": 0.0}, opset=6), [0, 0.5, 9])
    np.testing.assert_array_equal(run_op("Clip", [x], {"max": 2.0}, opset=1), [-3, 0.5, 2])
    xi = np.array([-100, 5, 100], np.int8)
    got = run_op("Clip", [xi, np.int8(-10), np.int8(10)], opset=13)
    assert got.dtype == np.int8
    np.testing.assert_array_equal(got, [-10, 5, 10])
    # min > max: every element becomes max
    np.testing.assert_array_equal(run_op("Clip", [x, np.float32(2), np.float32(1)]), [1, 1, 1])


def test_untyped_inputs_in_loop_bodies(infer_op, tt):
    # a loop body's carried value has no type until the loop's own inference runs
    assert infer_op("Add", ["untyped", tt("float32")]) == TensorType(tt("float32").dtype, None)
    assert infer_op("Add", ["untyped", "untyped"]) is None
    assert infer_op("Less", ["untyped", "untyped"]) == TensorType(tt("bool").dtype, None)
    assert infer_op("MatMul", ["untyped", tt("float16", 4, 4)]) == TensorType(tt("float16").dtype, None)
    assert infer_op("ReduceSum", ["untyped", None], opset=13) is None
    assert infer_op("Sum", ["untyped", tt("int32", 3)]) == TensorType(tt("int32").dtype, None)
