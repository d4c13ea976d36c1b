"""RoiAlign: averages and maxima of bilinear samples, coordinate modes, inference."""

import numpy as np

def test_avg_on_linear_ramp_is_exact(run_op):
    x = np.tile(np.arange(8, dtype=np.float32), (1, 1, 8, 1))  # X[..., y, x] = x
    rois = np.array([[0, 0, 4, 4]], np.float32)
    y = run_op("RoiAlign", [x, rois, np.array([0], np.int64)],
               {"output_height": 2, "output_width": 2, "sampling_ratio": 2})  # half_pixel: samples at 0, 1, 2, 3
    assert y.shape == (1, 1, 2, 2) and y.dtype == np.float32
    np.testing.assert_allclose(y[0, 0], [[0.5, 2.5], [0.5, 2.5]], atol=1e-6)
    y = run_op("RoiAlign", [x, rois, np.array([0], np.int64)],
               {"output_height": 1, "output_width": 2, "sampling_ratio": 2,
                "coordinate_transformation_mode": "output_half_pixel"})  # samples at 0.5, 1.5, 2.5, 3.5
    np.testing.assert_allclose(y[0, 0], [[1.0, 3.0]], atol=1e-6)


def test_max_mode_on_integer_samples(run_op):
    x = np.random.default_rng(0).random((2, 3, 6, 6)).astype(np.float32)
    rois = np.array([[0, 0, 4, 4], [1, 1, 5, 5]], np.float32)
    y = run_op("RoiAlign", [x, rois, np.array([1, 0], np.int64)],
               {"mode": "max", "sampling_ratio": 2, "coordinate_transformation_mode": "output_half_pixel"})
    assert y.shape == (2, 3, 1, 1)
    np.testing.assert_allclose(y[0, :, 0, 0], x[1][:, [1, 3]][:, :, [1, 3]].max(axis=(1, 2)))
    np.testing.assert_allclose(y[1, :, 0, 0], x[0][:, [2, 4]][:, :, [2, 4]].max(axis=(1, 2)))


def test_opset10_has_no_half_pixel_shift(run_op):
    x = np.tile(np.arange(8, dtype=np.float32), (1, 1, 8, 1))
    y = run_op("RoiAlign", [x, np.array([[0, 0, 4, 4]], np.float32), np.array([0], np.int64)],
               {"output_width": 2, "sampling_ratio": 2}, opset=10)
    np.testing.assert_allclose(y[0, 0], [[1.0, 3.0]], atol=1e-6)


def test_infer(infer_op, tt):
    out = infer_op("RoiAlign", [tt("float16", "n", 16, "h", "w"), tt("float16", "r", 4), tt("int64", "r")],
                   {"output_height": 7, "output_width": 5})
    assert out.shape == ("r", 16, 7, 5) and out.dtype.name == "float16"
