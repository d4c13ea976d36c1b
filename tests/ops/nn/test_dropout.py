"""Dropout: inference identity across versions, seeded training draws, mask dtypes."""

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


X = np.random.default_rng(2).normal(size=(4, 50)).astype(np.float32)


def test_inference_is_identity_with_all_true_mask():
    for opset in (10, 12, 13, 22):
        y, mask = run("Dropout", [X], opset=opset, outputs=2)
        np.testing.assert_array_equal(y, X)
        assert mask.dtype == np.bool_ and mask.all()
    # opset 7 (and 1/6 in test mode): the mask has the data's dtype
    y, mask = run("Dropout", [X], {"ratio": 0.3}, opset=7, outputs=2)
    np.testing.assert_array_equal(y, X)
    assert mask.dtype == np.float32 and (mask == 1).all()
    y, mask = run("Dropout", [X], {"is_test": 1}, opset=6, outputs=2)
    np.testing.assert_array_equal(y, X)


def test_seeded_training_matches_the_legacy_numpy_draw():
    r = np.float32(0.3)
    y, mask = run("Dropout", [X, r, np.bool_(True)], {"seed": 7}, opset=13, outputs=2)
    keep = np.random.RandomState(7).uniform(0, 1, X.shape) >= 0.3
    np.testing.assert_array_equal(mask, keep)
    np.testing.assert_allclose(y, X * keep / 0.7, rtol=1e-6)
    assert 0.5 < keep.mean() < 0.9  # a real draw, not all kept
    y2, _ = run("Dropout", [X, r, np.bool_(True)], {"seed": 7}, opset=13, outputs=2)
    np.testing.assert_array_equal(y, y2)


def test_unseeded_training_scales_kept_values():
    y, mask = run("Dropout", [X, np.float32(0.5), np.bool_(True)], opset=22, outputs=2)
    np.testing.assert_allclose(y[mask], X[mask] * 2, rtol=1e-6)
    assert (y[~mask] == 0).all() and 0 < mask.sum() < mask.size


def test_training_with_ratio_zero_or_one():
    y, mask = run("Dropout", [X, np.float32(0.0), np.bool_(True)], opset=13, outputs=2)
    np.testing.assert_array_equal(y, X)
    assert mask.all()
    y, mask = run("Dropout", [X, np.float32(1.0), np.bool_(True)], opset=13, outputs=2)
    assert (y == 0).all() and not mask.any()


def test_opset_6_training_unless_is_test():
    y, mask = run("Dropout", [X], {"ratio": 0.5}, opset=6, outputs=2)
    assert mask.dtype == np.float32 and set(np.unique(mask)) <= {0.0, 1.0}
    np.testing.assert_allclose(y, X * mask * 2, rtol=1e-6)


def test_infer_mask_and_scalar_inputs():
    y, mask = infer_types("Dropout", [f32("batch", 8)], opset=13)
    assert y == f32("batch", 8) and mask == TensorType(dtypes.bool_, ("batch", 8))
    _, mask = infer_types("Dropout", [f32("batch", 8)], opset=7)
    assert mask == f32("batch", 8)
    with pytest.raises(InferError, match="ratio must be a scalar"):
        infer_types("Dropout", [f32("batch", 8), f32(2)], opset=13)
