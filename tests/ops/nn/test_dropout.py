"""Dropout: inference identity across versions, seeded training draws, mask dtypes."""

import numpy as np
import pytest

import opencann
from opencann import dtypes, ops
from opencann.ir import Graph, TensorType, Value
from opencann.ops.infer import InferError


def run(op, inputs, attrs=None, opset=22, outputs=1):
    """Run one `op` node through `opencann.compile` (inference and the interpreter's dtype/shape
    check included); None in `inputs` omits an optional input. One array, or a tuple."""
    g = Graph(op, {"": opset})
    ins, feeds = [], {}
    for i, x in enumerate(inputs):
        if x is None:
            ins.append(None)
            continue
        x = np.asarray(x)
        ins.append(g.add_input(f"x{i}", TensorType(dtypes.from_numpy(x.dtype), x.shape)))
        feeds[f"x{i}"] = x
    g.outputs.extend(g.add_node(op, ins, [f"y{i}" for i in range(outputs)], dict(attrs or {})))
    result = opencann.compile(g).run(feeds)
    ys = tuple(result[f"y{i}"] for i in range(outputs))
    return ys[0] if outputs == 1 else ys


def infer_types(op, types, attrs=None, opset=22):
    """What `op` infers for inputs of `types` (None for an omitted optional input)."""
    d = ops.lookup(op, "", opset)
    resolved, problems = d.resolve_attrs(dict(attrs or {}))
    assert not problems, problems
    vals = [None if t is None else Value(f"x{i}", t) for i, t in enumerate(types)]
    while len(vals) < len(d.inputs) and not d.inputs[-1].variadic:
        vals.append(None)
    return d.infer(*vals, **resolved)


def f32(*shape):
    return TensorType(dtypes.float32, shape)


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
