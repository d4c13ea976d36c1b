"""Logical, comparison, bitwise and shift ops."""

import numpy as np
import pytest

from opencann.ops.infer import InferError


def test_bitshift_unsigned(run_op):
    x = np.array([16, 4, 255], np.uint8)
    y = np.array([1, 2, 4], np.uint8)
    np.testing.assert_array_equal(run_op("BitShift", [x, y], {"direction": "RIGHT"}), [8, 1, 15])
    np.testing.assert_array_equal(run_op("BitShift", [x, y], {"direction": "LEFT"}), [32, 16, 240])
    big = np.array([1, 1], np.uint64)
    np.testing.assert_array_equal(
        run_op("BitShift", [big, np.array([63, 64], np.uint64)], {"direction": "LEFT"}), [1 << 63, 0])


def test_bitshift_signed_edges(run_op):
    x = np.array([-8, 64, -1, 5], np.int8)
    y = np.array([1, 1, 8, -1], np.int8)
    np.testing.assert_array_equal(run_op("BitShift", [x, y], {"direction": "RIGHT"}, opset=22), [-4, 32, -1, 0])
    np.testing.assert_array_equal(run_op("BitShift", [x, y], {"direction": "LEFT"}, opset=22), [-16, -128, 0, 0])


def test_bitshift_needs_direction(infer_op, tt, run_op):
    with pytest.raises(Exception, match="direction"):
        run_op("BitShift", [np.array([1], np.uint8), np.array([1], np.uint8)])
    with pytest.raises(InferError, match="direction"):
        infer_op("BitShift", [tt("uint8", 2), tt("uint8", 2)], {"direction": "UP"})


def test_equal_on_strings_broadcasts(run_op):
    a = np.array([["a", "b"], ["c", "d"]], dtype=object)
    b = np.array(["a", "d"], dtype=object)
    np.testing.assert_array_equal(run_op("Equal", [a, b], opset=19), [[True, False], [False, True]])


def test_comparisons(run_op, infer_op, tt):
    a = np.array([1, 2, 3], np.int16)
    b = np.array([2], np.int16)
    np.testing.assert_array_equal(run_op("Greater", [a, b]), [False, False, True])
    np.testing.assert_array_equal(run_op("LessOrEqual", [a, b]), [True, True, False])
    np.testing.assert_array_equal(run_op("GreaterOrEqual", [a, b]), [False, True, True])
    assert infer_op("Less", [tt("float32", "n", 1), tt("float32", 5)]) == tt("bool", "n", 5)
    with pytest.raises(InferError, match="bool"):
        infer_op("Greater", [tt("bool", 2), tt("bool", 2)])


def test_logical_and_legacy_broadcast(run_op):
    a = np.array([[True, False], [True, True]])
    b = np.array([True, False])
    np.testing.assert_array_equal(run_op("Xor", [a, b]), [[False, False], [False, True]])
    got = run_op("And", [a, b], {"broadcast": 1, "axis": 0}, opset=1)
    np.testing.assert_array_equal(got, [[True, False], [False, False]])


def test_bitwise(run_op):
    a = np.array([0b1100, 0b1010], np.int32)
    b = np.array([0b1010], np.int32)
    np.testing.assert_array_equal(run_op("BitwiseAnd", [a, b], opset=18), [0b1000, 0b1010])
    np.testing.assert_array_equal(run_op("BitwiseOr", [a, b], opset=18), [0b1110, 0b1010])
    np.testing.assert_array_equal(run_op("BitwiseXor", [a, b], opset=18), [0b0110, 0])
