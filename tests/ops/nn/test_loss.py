"""NegativeLogLikelihoodLoss and SoftmaxCrossEntropyLoss: hand-computed reductions with weights and
ignore_index, bad targets, dtypes and inference."""

import functools

import numpy as np
import pytest

from opencann import dtypes, ops
from opencann.ir import TensorType
from opencann.ops.infer import InferError
from opencann.testing import infer_op, run_op, tensor_type

# these tests run at opset 22 unless they name an opset
run = functools.partial(run_op, opset=22)
infer_types = functools.partial(infer_op, opset=22)
f32 = functools.partial(tensor_type, "float32")


LOGP = np.log(np.array([[0.1, 0.2, 0.7], [0.5, 0.25, 0.25], [0.3, 0.3, 0.4], [0.6, 0.3, 0.1]], np.float32))
TARGET = np.array([2, 0, 1, 1], np.int64)
W = np.array([1.0, 2.0, 0.5], np.float32)


def test_nll_reductions_with_weights_and_ignore_index():
    picked = -LOGP[np.arange(4), TARGET]  # -log of 0.7, 0.5, 0.3, 0.3
    w = W[TARGET]
    got = run("NegativeLogLikelihoodLoss", [LOGP, TARGET, W], {"reduction": "none"})
    np.testing.assert_allclose(got, picked * w, rtol=1e-6)
    got = run("NegativeLogLikelihoodLoss", [LOGP, TARGET, W], {"reduction": "mean", "ignore_index": 1})
    np.testing.assert_allclose(got, (picked[0] * 0.5 + picked[1] * 1.0) / 1.5, rtol=1e-6)
    got = run("NegativeLogLikelihoodLoss", [LOGP, TARGET, None], {"reduction": "sum", "ignore_index": 0})
    np.testing.assert_allclose(got, picked[0] + picked[2] + picked[3], rtol=1e-6)
    assert got.shape == () and got.dtype == np.float32


def test_nll_ignored_target_may_be_out_of_range_but_others_may_not():
    t = np.array([2, -100, 1, -100], np.int64)
    got = run("NegativeLogLikelihoodLoss", [LOGP, t], {"reduction": "none", "ignore_index": -100})
    np.testing.assert_allclose(got, [-LOGP[0, 2], 0, -LOGP[2, 1], 0], rtol=1e-6)
    ref = ops.lookup("NegativeLogLikelihoodLoss").reference
    with pytest.raises(ValueError, match="out of range"):
        ref(LOGP, np.array([0, 3, 1, 1]), None, reduction="mean", ignore_index=None)
    all_ignored = ref(LOGP, np.zeros(4, np.int64), None, reduction="mean", ignore_index=0)
    assert np.isnan(all_ignored)


def test_sce_spatial_float16_and_log_prob():
    rng = np.random.default_rng(3)
    scores = rng.normal(size=(2, 3, 4)).astype(np.float16)
    labels = rng.integers(0, 3, size=(2, 4)).astype(np.int32)
    loss, log_prob = run("SoftmaxCrossEntropyLoss", [scores, labels], {"reduction": "mean"}, opset=13, outputs=2)
    assert loss.dtype == log_prob.dtype == np.float16 and log_prob.shape == scores.shape
    s = scores.astype(np.float64)
    lp = s - s.max(1, keepdims=True)
    lp -= np.log(np.exp(lp).sum(1, keepdims=True))
    np.testing.assert_allclose(log_prob.astype(np.float64), lp, atol=2e-3)
    want = -np.take_along_axis(lp, labels[:, None].astype(np.int64), 1)[:, 0].mean()
    np.testing.assert_allclose(float(loss), want, rtol=2e-3)


def test_infer_shapes_and_errors():
    assert infer_types("NegativeLogLikelihoodLoss", [f32("n", 5, "h"), TensorType(dtypes.int64, ("n", "h"))],
                       {"reduction": "none"}) == f32("n", "h")
    loss, log_prob = infer_types("SoftmaxCrossEntropyLoss", [f32("n", 5), TensorType(dtypes.int32, ("n",))],
                                 opset=13)
    assert loss == f32() and log_prob == f32("n", 5)
    with pytest.raises(InferError, match="reduction"):
        infer_types("NegativeLogLikelihoodLoss", [f32("n", 5), TensorType(dtypes.int64, ("n",))],
                    {"reduction": "avg"})
    with pytest.raises(InferError, match="rank 2"):
        infer_types("NegativeLogLikelihoodLoss", [f32("n", 5, 7), TensorType(dtypes.int64, ("n",))])
    with pytest.raises(InferError, match="int32 or int64"):
        infer_types("SoftmaxCrossEntropyLoss", [f32("n", 5), f32("n")], opset=13)
