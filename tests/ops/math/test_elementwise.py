"""Unary math ops: values the conformance suite does not pin down, dtypes, legacy schemas."""

import math

import ml_dtypes
import numpy as np
import pytest

import opencann
from opencann.ops.infer import InferError
from opencann.ops.math.elementwise import erf_float


def test_erf_float64_matches_math_erf():
    x = np.concatenate([np.linspace(-7, 7, 20001), [1e-300, -1e-12, 5.9999, 6.0, 2.0, -2.0]])
    want = np.array([math.erf(v) for v in x])
    got = erf_float(x)
    assert np.max(np.abs(got - want) / np.maximum(np.abs(want), 1e-300)) < 2e-14


def test_erf_float32_within_one_ulp(run_op):
    rng = np.random.default_rng(0)
    x = (rng.standard_normal(5000) * 3).astype(np.float32)
    got = run_op("Erf", [x])
    want = np.array([math.erf(v) for v in x.astype(np.float64)]).astype(np.float32)
    assert got.dtype == np.float32
    assert np.max(np.abs(got - want)) <= 6e-8


def test_erf_specials(run_op):
    x = np.array([0.0, -0.0, np.inf, -np.inf, np.nan], np.float32)
    got = run_op("Erf", [x])
    np.testing.assert_array_equal(got[:4], [0.0, -0.0, 1.0, -1.0])
    assert np.signbit(got[1]) and np.isnan(got[4])


def test_round_halves_to_even(run_op):
    x = np.array([0.5, 1.5, 2.5, -0.5, -1.5, -2.5, 2.3, -2.7], np.float32)
    np.testing.assert_array_equal(run_op("Round", [x]), [0, 2, 2, -0, -2, -2, 2, -3])


def test_isinf_attributes(run_op):
    x = np.array([np.inf, -np.inf, 1.0, np.nan], np.float32)
    np.testing.assert_array_equal(run_op("IsInf", [x], {"detect_negative": 0}), [True, False, False, False])
    np.testing.assert_array_equal(run_op("IsInf", [x], {"detect_positive": 0}), [False, True, False, False])


def test_isnan_on_bfloat16(run_op):
    x = np.array([1.0, np.nan, np.inf], ml_dtypes.bfloat16)
    np.testing.assert_array_equal(run_op("IsNaN", [x]), [False, True, False])


def test_abs_and_neg_on_integers(run_op):
    np.testing.assert_array_equal(run_op("Abs", [np.array([0, 200, 255], np.uint8)]), [0, 200, 255])
    np.testing.assert_array_equal(run_op("Abs", [np.array([-5, 5, -128], np.int8)]), [5, 5, -128])
    np.testing.assert_array_equal(run_op("Neg", [np.array([-5, 7], np.int32)]), [5, -7])


def test_sign_keeps_dtype(run_op):
    got = run_op("Sign", [np.array([-3, 0, 9], np.int64)])
    assert got.dtype == np.int64
    np.testing.assert_array_equal(got, [-1, 0, 1])


def test_narrow_floats_computed_in_float32(run_op):
    x = np.array([0.1, 1.0, 2.5], np.float16)
    got = run_op("Sin", [x])
    assert got.dtype == np.float16
    np.testing.assert_array_equal(got, np.sin(x.astype(np.float32)).astype(np.float16))
    xb = np.array([0.5, 1.0, -2.0], ml_dtypes.bfloat16)
    gotb = run_op("Exp", [xb])
    assert gotb.dtype == ml_dtypes.bfloat16
    np.testing.assert_array_equal(gotb, np.exp(xb.astype(np.float32)).astype(ml_dtypes.bfloat16))


def test_not_and_bitwise_not(run_op):
    np.testing.assert_array_equal(run_op("Not", [np.array([True, False])]), [False, True])
    np.testing.assert_array_equal(run_op("BitwiseNot", [np.array([0, 5], np.uint8)], opset=18), [255, 250])


def test_float_only_ops_reject_integers(infer_op, tt):
    with pytest.raises(InferError, match="int32"):
        infer_op("Sin", [tt("int32", 3)])
    with pytest.raises(InferError, match="bool"):
        infer_op("Not", [tt("float32", 3)])


def test_inference_keeps_symbolic_shape(infer_op, tt):
    assert infer_op("Sqrt", [tt("float32", "batch", 4)]) == tt("float32", "batch", 4)
    assert infer_op("IsNaN", [tt("float16", "n")]) == tt("bool", "n")


def test_opset1_consumed_inputs_is_accepted(run_op):
    got = run_op("Abs", [np.array([-1.0, 2.0], np.float32)], {"consumed_inputs": [0]}, opset=1)
    np.testing.assert_array_equal(got, [1.0, 2.0])
    with pytest.raises(opencann.OpenCannError, match="consumed_inputs"):
        run_op("Abs", [np.array([-1.0], np.float32)], {"consumed_inputs": [0]}, opset=6)
