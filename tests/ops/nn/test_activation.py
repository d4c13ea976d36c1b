"""Activation ops: values the conformance suite does not cover (extreme inputs, narrow floats,
integer types, legacy opsets) and inference with symbolic dims."""

import functools
import math

import ml_dtypes
import numpy as np
import pytest

from opencann.ops.infer import InferError
from opencann.testing import infer_op, run_op, tensor_type

# these tests run at opset 22 unless they name an opset
run = functools.partial(run_op, opset=22)
infer_types = functools.partial(infer_op, opset=22)
f32 = functools.partial(tensor_type, "float32")


def test_infer_keeps_symbolic_shape():
    t = infer_types("LeakyRelu", [f32("batch", "seq", 8)])
    assert t == f32("batch", "seq", 8)
    assert infer_types("PRelu", [f32("batch", 3, 4), f32(3, 1)]) == f32("batch", 3, 4)


def test_prelu_slope_of_higher_rank_is_rejected():
    with pytest.raises(InferError, match="broadcast to X"):
        infer_types("PRelu", [f32(3, 4), f32(2, 3, 4)])


def test_prelu_legacy_per_channel_slope():
    x = np.arange(-4, 4, dtype=np.float32).reshape(1, 2, 4)
    got = run("PRelu", [x, np.array([0.5, 2.0], np.float32)], opset=6)
    np.testing.assert_allclose(got, [[[-2, -1.5, -1, -0.5], [0, 1, 2, 3]]])


def test_gelu_matches_math_erf():
    x = np.array([-5.0, -1.5, -0.3, -1e-4, 0.0, 1e-4, 0.3, 0.7, 2.0, 6.0])
    want = [0.5 * v * (1 + math.erf(v / math.sqrt(2))) for v in x]
    np.testing.assert_allclose(run("Gelu", [x]), want, rtol=1e-7, atol=1e-12)
    tanh = run("Gelu", [x.astype(np.float32)], {"approximate": "tanh"})
    np.testing.assert_allclose(tanh, want, rtol=2e-3, atol=1e-3)  # the approximation's own error


def test_gelu_rejects_unknown_approximation():
    with pytest.raises(Exception, match="approximate"):
        run("Gelu", [np.ones(2, np.float32)], {"approximate": "fast"})


def test_sigmoid_softplus_mish_swish_do_not_overflow():
    x = np.array([-1000.0, -50.0, 0.0, 50.0, 1000.0], np.float32)
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        np.testing.assert_allclose(run("Sigmoid", [x]), [0, 1.9287e-22, 0.5, 1, 1], rtol=1e-4)
        np.testing.assert_allclose(run("Softplus", [x]), [0, 1.9287e-22, math.log(2), 50, 1000], rtol=1e-4)
        np.testing.assert_allclose(run("Mish", [x]), [0, -9.6437e-21, 0, 50, 1000], rtol=1e-4, atol=1e-30)
        np.testing.assert_allclose(run("Swish", [x], {"alpha": 2.0}, opset=24), [0, 0, 0, 50, 1000], atol=1e-30)


def test_narrow_floats_keep_their_dtype():
    x = np.array([-2.0, -0.5, 0.5, 3.0], np.float16)
    for op in ("Elu", "Selu", "Celu", "HardSigmoid", "HardSwish", "Softsign", "Tanh", "Mish"):
        got = run(op, [x])
        assert got.dtype == np.float16, op
    b = np.array([-2.0, 0.5, 3.0], ml_dtypes.bfloat16)
    got = run("Gelu", [b])
    assert got.dtype == ml_dtypes.bfloat16
    np.testing.assert_allclose(got.astype(np.float32), [-0.0455, 0.3457, 2.996], rtol=1e-2)


def test_relu_and_shrink_on_integers():
    np.testing.assert_array_equal(run("Relu", [np.array([-128, -1, 0, 127], np.int8)]), [0, 0, 0, 127])
    got = run("Shrink", [np.array([-5, -1, 0, 1, 5], np.int32)], {"lambd": 1.5, "bias": 2.0})
    assert got.dtype == np.int32
    # lambd and bias are cast to int32 (1 and 2), as the function body's CastLike does
    np.testing.assert_array_equal(got, [-3, 0, 0, 0, 3])


def test_selu_legacy_constants():
    x = np.array([-1.0], np.float64)
    v1, v6 = run("Selu", [x], opset=1), run("Selu", [x], opset=6)
    np.testing.assert_allclose(v1, [1.0506999492645264 * 1.673200011253357 * math.expm1(-1)])
    np.testing.assert_allclose(v6, [1.0507010221481323 * 1.6732631921768188 * math.expm1(-1)])


def test_legacy_consumed_inputs_is_accepted_only_before_opset_6():
    x = np.array([-1.0, 1.0], np.float32)
    np.testing.assert_array_equal(run("Relu", [x], {"consumed_inputs": [0]}, opset=1), [0, 1])
    with pytest.raises(Exception, match="consumed_inputs"):
        run("Relu", [x], {"consumed_inputs": [0]}, opset=6)


def test_thresholded_relu_and_celu_values():
    x = np.array([-3.0, 0.5, 1.0, 2.0], np.float32)
    np.testing.assert_array_equal(run("ThresholdedRelu", [x]), [0, 0, 0, 2])
    np.testing.assert_allclose(run("Celu", [x], {"alpha": 2.0}), [2 * math.expm1(-1.5), 0.5, 1, 2], rtol=1e-6)
