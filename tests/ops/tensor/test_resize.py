"""Resize and Upsample: inference, legacy opsets, dtypes and hand-computed values."""

import numpy as np

from opencann import dtypes
from opencann.ir import TensorType

i64 = np.int64


def test_resize_infer_from_scales_and_sizes(infer_op):
    x = TensorType(dtypes.float32, ("n", 3, 10, 20))
    t = infer_op("Resize", [x, None, np.array([1, 1, 2, 0.5], np.float32)], {"mode": "linear"})
    assert t.shape == ("n", 3, 20, 10)
    t = infer_op("Resize", [x, None, None, np.array([5, 5], i64)], {"axes": [2, 3]})
    assert t.shape == ("n", 3, 5, 5)
    t = infer_op("Resize", [x, None, None, np.array([5, 5], i64)],
                 {"axes": [2, 3], "keep_aspect_ratio_policy": "not_larger"})
    assert t.shape == ("n", 3, 3, 5)
    t = infer_op("Resize", [x, None, TensorType(dtypes.float32, (4,))])
    assert t.shape == (None, None, None, None)


def test_resize_linear_half_pixel_by_hand(run_op):
    x = np.array([[[[0, 4]]]], np.float32)
    y = run_op("Resize", [x, None, np.array([1, 1, 1, 2], np.float32)], {"mode": "linear"}, opset=19)
    # output samples at input positions -0.25, 0.25, 0.75, 1.25 (edges clamp)
    np.testing.assert_allclose(y.reshape(-1), [0, 1, 3, 4])


def test_resize_nearest_keeps_integer_dtype(run_op):
    x = np.arange(4, dtype=np.uint8).reshape(1, 1, 2, 2)
    y = run_op("Resize", [x, None, None, np.array([1, 1, 4, 4], i64)], {"mode": "nearest"}, opset=19)
    assert y.dtype == np.uint8
    np.testing.assert_array_equal(y[0, 0], np.repeat(np.repeat(x[0, 0], 2, 0), 2, 1))


def test_resize_linear_float16(run_op):
    x = np.array([[0, 2]], np.float16)
    y = run_op("Resize", [x, None, np.array([1, 2], np.float32)],
               {"mode": "linear", "coordinate_transformation_mode": "align_corners"}, opset=19)
    assert y.dtype == np.float16
    np.testing.assert_allclose(y.reshape(-1).astype(np.float32), [0, 2 / 3, 4 / 3, 2], rtol=1e-3)


def test_resize_opset10_and_upsample_are_asymmetric_floor(run_op):
    x = np.array([[1, 2]], np.float32)
    scales = np.array([1, 3], np.float32)
    want = [[1, 1, 1, 2, 2, 2]]
    np.testing.assert_array_equal(run_op("Resize", [x, scales], opset=10), want)
    np.testing.assert_array_equal(run_op("Upsample", [x, scales], opset=9), want)
    np.testing.assert_array_equal(run_op("Upsample", [x], {"scales": [1.0, 3.0]}, opset=7), want)
    lin = run_op("Upsample", [x], {"scales": [1.0, 2.0], "mode": "linear"}, opset=7)
    np.testing.assert_allclose(lin, [[1, 1.5, 2, 2]])


def test_resize_tf_crop_extrapolates(run_op):
    x = np.arange(4, dtype=np.float32).reshape(1, 4)
    roi = np.array([0, 0.5, 1, 1.5], np.float32)  # crops past the right edge on axis 1
    y = run_op("Resize", [x, roi, None, np.array([1, 3], i64)],
               {"mode": "linear", "coordinate_transformation_mode": "tf_crop_and_resize",
                "extrapolation_value": -1.0}, opset=19)
    np.testing.assert_allclose(y, [[1.5, 3, -1]])


def test_resize_linear_long_axis_matches_interp(run_op):
    # long axes take the few-taps path rather than a dense matrix
    v = np.random.default_rng(0).standard_normal(50).astype(np.float32)
    y = run_op("Resize", [v.reshape(1, 50), None, np.array([1, 2.5], np.float32)], {"mode": "linear"}, opset=19)
    xo = (np.arange(125) + 0.5) / 2.5 - 0.5
    np.testing.assert_allclose(y.reshape(-1), np.interp(xo, np.arange(50), v), rtol=1e-5, atol=1e-6)


def test_resize_cubic_taps_agree_with_dense_weights():
    from opencann.ops.tensor import resize

    x = np.random.default_rng(1).standard_normal((3, 40))
    xo = resize._source_coords(60, 40, 1.5, "half_pixel", 0.0, 1.0)
    idx, w = resize._taps(xo, 40, 1.5, "cubic", -0.75, False, True)
    dense = np.zeros((60, 40))
    for i in range(60):
        for j in range(idx.shape[1]):
            dense[i, idx[i, j]] += w[i, j]
    np.testing.assert_allclose(resize._apply_taps(x, idx, w, 1), x @ dense.T, rtol=1e-12)
    np.testing.assert_allclose(dense.sum(axis=1), 1.0)
