"""Normalization ops: versions and modes the conformance suite skips (BatchNormalization training
before opset 14, GroupNormalization 18, stash types, narrow floats) and symbolic inference."""

import functools

import numpy as np
import pytest

from opencann import dtypes
from opencann.ir import TensorType
from opencann.ops.infer import InferError
from opencann.testing import infer_op, run_op, tensor_type

# these tests run at opset 22 unless they name an opset
run = functools.partial(run_op, opset=22)
infer_types = functools.partial(infer_op, opset=22)
f32 = functools.partial(tensor_type, "float32")


RNG = np.random.default_rng(1)
X4 = RNG.normal(size=(2, 4, 3, 5)).astype(np.float32)
C4 = [RNG.normal(size=4).astype(np.float32) for _ in range(3)] + [RNG.random(4).astype(np.float32) + 0.5]


def test_layer_norm_infers_stats_with_symbols_and_stash_type():
    x = TensorType(dtypes.float16, ("batch", "seq", 768))
    y, mean, inv = infer_types("LayerNormalization", [x, TensorType(dtypes.float16, (768,))], opset=17)
    assert y == x
    assert mean == inv == f32("batch", "seq", 1)
    _, mean, _ = infer_types("LayerNormalization", [x, TensorType(dtypes.float16, (768,))],
                             {"axis": 1, "stash_type": 11}, opset=17)
    assert mean == TensorType(dtypes.float64, ("batch", 1, 1))
    with pytest.raises(InferError, match="axis"):
        infer_types("LayerNormalization", [x, x], {"axis": 3}, opset=17)


def test_layer_norm_float16_without_bias():
    x = (RNG.normal(size=(3, 8)) * 100 + 1000).astype(np.float16)
    s = np.full(8, 2.0, np.float16)
    y, mean, inv = run("LayerNormalization", [x, s], opset=17, outputs=3)
    assert y.dtype == np.float16 and mean.dtype == inv.dtype == np.float32
    xf = x.astype(np.float32)
    m = xf.mean(-1, keepdims=True)
    want = (xf - m) / np.sqrt(((xf - m) ** 2).mean(-1, keepdims=True) + 1e-5) * 2
    np.testing.assert_allclose(y.astype(np.float32), want, atol=4e-3)
    np.testing.assert_allclose(mean, m, rtol=1e-6)


def test_batch_norm_v9_training_outputs():
    scale, b, mean, var = C4
    y, run_mean, run_var, saved_mean, saved_var = run("BatchNormalization", [X4, scale, b, mean, var],
                                                      {"momentum": 0.8}, opset=9, outputs=5)
    bm, bv = X4.mean(axis=(0, 2, 3)), X4.var(axis=(0, 2, 3))
    np.testing.assert_allclose(saved_mean, bm, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(saved_var, bv, rtol=1e-5)
    np.testing.assert_allclose(run_mean, mean * 0.8 + bm * 0.2, rtol=1e-5)
    np.testing.assert_allclose(run_var, var * 0.8 + bv * 0.2, rtol=1e-5)
    want = (X4 - bm[:, None, None]) / np.sqrt(bv[:, None, None] + 1e-5) * scale[:, None, None] + b[:, None, None]
    np.testing.assert_allclose(y, want, rtol=1e-4, atol=1e-5)


def test_batch_norm_inference_across_versions():
    scale, b, mean, var = C4
    want = (X4 - mean[:, None, None]) / np.sqrt(var[:, None, None] + 1e-5) * scale[:, None, None] + b[:, None, None]
    for opset, attrs in ((6, {"is_test": 1}), (7, {}), (9, {}), (15, {})):
        np.testing.assert_allclose(run("BatchNormalization", [X4, scale, b, mean, var], attrs, opset=opset),
                                   want, rtol=1e-5, atol=1e-5, err_msg=f"opset {opset}")


def test_batch_norm_15_mixed_dtypes_and_1d_input():
    scale, b, mean, var = C4
    x = X4.astype(np.float16)
    y, rm, rv = run("BatchNormalization", [x, scale, b, mean.astype(np.float64), var.astype(np.float64)],
                    {"training_mode": 1}, opset=15, outputs=3)
    assert (y.dtype, rm.dtype, rv.dtype) == (np.float16, np.float64, np.float64)
    # a 1-D X is [N] with one channel
    x1 = np.array([1.0, 2.0, 3.0, 6.0], np.float32)
    one = np.ones(1, np.float32)
    np.testing.assert_allclose(run("BatchNormalization", [x1, one * 2, one, one, one * 3], opset=15),
                               (x1 - 1) / np.sqrt(3 + 1e-5) * 2 + 1, rtol=1e-6)


def test_batch_norm_rejects_wrong_channel_count():
    with pytest.raises(InferError, match="channels"):
        infer_types("BatchNormalization", [f32("n", 4, 3), f32(3), f32(4), f32(4), f32(4)], opset=15)


def test_group_norm_18_per_group_equals_21_per_channel():
    g18_scale, g18_bias = np.array([2.0, -1.0], np.float32), np.array([0.5, 0.0], np.float32)
    y18 = run("GroupNormalization", [X4, g18_scale, g18_bias], {"num_groups": 2}, opset=18)
    y21 = run("GroupNormalization", [X4, np.repeat(g18_scale, 2), np.repeat(g18_bias, 2)],
              {"num_groups": 2}, opset=21)
    np.testing.assert_allclose(y18, y21, rtol=1e-6)
    grp = X4.reshape(2, 2, -1)
    want = ((grp - grp.mean(-1, keepdims=True)) / np.sqrt(grp.var(-1, keepdims=True) + 1e-5)).reshape(X4.shape)
    want = want * np.repeat(g18_scale, 2)[:, None, None] + np.repeat(g18_bias, 2)[:, None, None]
    np.testing.assert_allclose(y21, want, rtol=1e-4, atol=1e-5)


def test_group_norm_checks_groups_and_scale_length():
    with pytest.raises(InferError, match="does not divide"):
        infer_types("GroupNormalization", [f32("n", 6, 4), f32(6), f32(6)], {"num_groups": 4}, opset=21)
    with pytest.raises(InferError, match="one per group"):
        infer_types("GroupNormalization", [f32("n", 6, 4), f32(6), f32(6)], {"num_groups": 3}, opset=18)


def test_instance_norm_and_mvn():
    scale, b, _, _ = C4
    m, v = X4.mean(axis=(2, 3), keepdims=True), X4.var(axis=(2, 3), keepdims=True)
    want = (X4 - m) / np.sqrt(v + 1e-3) * scale[:, None, None] + b[:, None, None]
    np.testing.assert_allclose(run("InstanceNormalization", [X4, scale, b], {"epsilon": 1e-3}), want,
                               rtol=1e-4, atol=1e-5)
    m, v = X4.mean(axis=(0, 2, 3), keepdims=True), X4.var(axis=(0, 2, 3), keepdims=True)
    np.testing.assert_allclose(run("MeanVarianceNormalization", [X4]), (X4 - m) / (np.sqrt(v) + 1e-9),
                               rtol=1e-4, atol=1e-5)


def test_rms_norm():
    x = RNG.normal(size=(2, 3, 4)).astype(np.float32)
    s = RNG.normal(size=(3, 4)).astype(np.float32)
    want = x / np.sqrt((x * x).mean(axis=(1, 2), keepdims=True) + 1e-5) * s
    np.testing.assert_allclose(run("RMSNormalization", [x, s], {"axis": 1}, opset=23), want, rtol=1e-5)


def test_lrn_matches_a_direct_window_sum():
    x = RNG.normal(size=(2, 6, 3)).astype(np.float32)
    size, alpha, beta, bias = 4, 1e-2, 0.6, 2.0
    want = np.empty_like(x)
    for c in range(6):
        lo, hi = max(0, c - (size - 1) // 2), min(5, c + (size - 1 + 1) // 2)
        s = (x[:, lo:hi + 1] ** 2).sum(axis=1)
        want[:, c] = x[:, c] / (bias + alpha / size * s) ** beta
    got = run("LRN", [x], {"size": size, "alpha": alpha, "beta": beta, "bias": bias})
    np.testing.assert_allclose(got, want, rtol=1e-5)


def test_lp_norm_p1_and_zero_vector():
    x = np.array([[3.0, -1.0], [0.0, 0.0]], np.float32)
    np.testing.assert_allclose(run("LpNormalization", [x], {"p": 1}), [[0.75, -0.25], [0, 0]])
    np.testing.assert_allclose(run("LpNormalization", [x], {"p": 2, "axis": 0}), [[1, -1], [0, 0]])
    with pytest.raises(InferError, match="p must be"):
        infer_types("LpNormalization", [f32(2, 2)], {"p": 3})


def test_batch_norm_15_statistics_outputs_need_training_mode():
    scale, b, mean, var = C4
    with pytest.raises(Exception, match="only when training_mode"):
        run("BatchNormalization", [X4, scale, b, mean, var], opset=15, outputs=3)


def test_inference_with_unknown_rank():
    unknown = TensorType(dtypes.float32, None)
    y, mean, _ = infer_types("LayerNormalization", [unknown, f32(8)], opset=17)
    assert y == unknown and mean == TensorType(dtypes.float32, None)
    assert infer_types("GroupNormalization", [unknown, f32(6), f32(6)], {"num_groups": 3}, opset=21) == unknown
    assert infer_types("BatchNormalization", [unknown, f32(6), f32(6), f32(6), f32(6)], opset=15)[0] == unknown
