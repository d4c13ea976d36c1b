"""ai.onnx.ml TreeEnsemble: branching modes, missing values, aggregation, post transforms."""

import numpy as np

ML = "ai.onnx.ml"


def _forest(**overrides):
    # tree 0 (root 0): x0 < 1 ? leaf 0 : (x1 >= 2 ? leaf 1 : leaf 2)
    # tree 1 (root 2): x1 == 5 ? leaf 3 : leaf 4   (NaN in x1 goes to the true branch)
    attrs = {
        "tree_roots": [0, 2],
        "nodes_modes": np.array([1, 2, 4], np.uint8),
        "nodes_featureids": [0, 1, 1],
        "nodes_splits": np.array([1.0, 2.0, 5.0]),
        "nodes_truenodeids": [0, 1, 3], "nodes_trueleafs": [1, 1, 1],
        "nodes_falsenodeids": [1, 2, 4], "nodes_falseleafs": [0, 1, 1],
        "nodes_missing_value_tracks_true": [0, 0, 1],
        "leaf_targetids": [0, 0, 1, 0, 1],
        "leaf_weights": np.array([1.0, 2.0, 3.0, 10.0, 20.0]),
        "n_targets": 2,
    }
    attrs.update(overrides)
    return attrs


X = np.array([[0.0, 5.0], [3.0, 2.0], [3.0, np.nan], [3.0, 0.0]])


def test_sum(run_op, infer_op, tt):
    got = run_op("TreeEnsemble", [X], _forest(), domain=ML, opset=5)
    assert got.dtype == np.float64
    np.testing.assert_allclose(got, [[11, 0], [2, 20], [10, 3], [0, 23]])
    assert infer_op("TreeEnsemble", [tt("float32", "n", 2)], _forest(), domain=ML, opset=5).shape == ("n", 2)


def test_average_and_max(run_op):
    got = run_op("TreeEnsemble", [X], _forest(aggregate_function=0), domain=ML, opset=5)
    np.testing.assert_allclose(got, np.array([[11, 0], [2, 20], [10, 3], [0, 23]]) / 2)
    got = run_op("TreeEnsemble", [X], _forest(aggregate_function=3), domain=ML, opset=5)
    np.testing.assert_allclose(got, [[10, 0], [2, 20], [10, 3], [0, 20]])


def test_logistic_float32(run_op):
    got = run_op("TreeEnsemble", [X.astype(np.float32)], _forest(post_transform=2), domain=ML, opset=5)
    assert got.dtype == np.float32
    want = 1 / (1 + np.exp(-np.array([[11, 0], [2, 20], [10, 3], [0, 23]], np.float64)))
    np.testing.assert_allclose(got, want, rtol=1e-6)


def test_softmax_and_probit(run_op):
    from statistics import NormalDist

    attrs = _forest(leaf_weights=np.array([0.1, 0.2, 0.3, 0.4, 0.5]))
    sums = np.array([[0.5, 0.0], [0.2, 0.5], [0.4, 0.3], [0.0, 0.8]])
    got = run_op("TreeEnsemble", [X], {**attrs, "post_transform": 1}, domain=ML, opset=5)
    np.testing.assert_allclose(got, np.exp(sums) / np.exp(sums).sum(axis=1, keepdims=True), rtol=1e-12)
    got = run_op("TreeEnsemble", [X[1:3]], {**attrs, "post_transform": 4}, domain=ML, opset=5)
    want = [[NormalDist().inv_cdf(p) for p in row] for row in sums[1:3]]
    np.testing.assert_allclose(got, want, rtol=1e-9)
