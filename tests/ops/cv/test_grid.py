"""AffineGrid and GridSample: identity sampling, padding modes, N-D inputs, inference."""

import numpy as np
import pytest

from opencann.errors import ExecutionError
from opencann.ops.infer import InferError


def _identity_theta(n, r):
    return np.tile(np.eye(r, r + 1, dtype=np.float32), (n, 1, 1))


def test_affine_grid_identity_align_corners(run_op):
    grid = run_op("AffineGrid", [_identity_theta(1, 2), np.array([1, 1, 3, 4], np.int64)], {"align_corners": 1})
    assert grid.shape == (1, 3, 4, 2) and grid.dtype == np.float32
    np.testing.assert_allclose(grid[0, 0, :, 0], np.linspace(-1, 1, 4), atol=1e-6)  # x along W
    np.testing.assert_allclose(grid[0, :, 0, 1], np.linspace(-1, 1, 3), atol=1e-6)  # y along H


def test_affine_grid_translation_3d_pixel_centres(run_op):
    theta = _identity_theta(2, 3)
    theta[:, 2, 3] = 0.5  # shift z
    grid = run_op("AffineGrid", [theta, np.array([2, 1, 2, 2, 2], np.int64)])
    assert grid.shape == (2, 2, 2, 2, 3)
    np.testing.assert_allclose(grid[0, :, 0, 0, 2], [-0.5 + 0.5, 0.5 + 0.5], atol=1e-6)
    np.testing.assert_allclose(grid[1, 0, 0, :, 0], [-0.5, 0.5], atol=1e-6)


def test_affine_grid_infer(infer_op, tt):
    out = infer_op("AffineGrid", [tt("float32", "n", 2, 3), (tt("int64", 4), np.array([2, 3, 5, 7]))])
    assert out.shape == (2, 5, 7, 2)
    out = infer_op("AffineGrid", [tt("float32", "n", 3, 4), tt("int64", 5)])
    assert out.shape == ("n", None, None, None, 3)


@pytest.mark.parametrize("mode", ["linear", "nearest", "cubic"])
def test_identity_grid_reproduces_input_2d(run_op, mode):
    x = np.random.default_rng(0).standard_normal((2, 3, 4, 5)).astype(np.float32)
    grid = run_op("AffineGrid", [_identity_theta(2, 2), np.array(x.shape, np.int64)])
    y = run_op("GridSample", [x, grid], {"mode": mode})
    assert y.dtype == np.float32
    np.testing.assert_allclose(y, x, atol=1e-5)


def test_identity_grid_reproduces_input_3d(run_op):
    x = np.random.default_rng(1).standard_normal((1, 2, 3, 4, 5)).astype(np.float64)
    grid = run_op("AffineGrid", [_identity_theta(1, 3).astype(np.float64), np.array(x.shape, np.int64)],
                  {"align_corners": 1})
    y = run_op("GridSample", [x, grid], {"mode": "linear", "align_corners": 1})
    np.testing.assert_allclose(y, x, atol=1e-12)


def test_padding_modes_1d(run_op):
    x = np.array([[[1.0, 2.0, 3.0]]], np.float32)           # N=1, C=1, W=3
    grid = np.array([[[2.0], [-0.5], [0.25]]], np.float32)  # x = 3, 0.5, 1.25 with align_corners
    zeros = run_op("GridSample", [x, grid], {"align_corners": 1})
    border = run_op("GridSample", [x, grid], {"align_corners": 1, "padding_mode": "border"})
    reflect = run_op("GridSample", [x, grid], {"align_corners": 1, "padding_mode": "reflection"})
    np.testing.assert_allclose(zeros[0, 0], [0.0, 1.5, 2.25])
    np.testing.assert_allclose(border[0, 0], [3.0, 1.5, 2.25])
    np.testing.assert_allclose(reflect[0, 0], [2.0, 1.5, 2.25])  # 3 reflects off 2 to 1


def test_nearest_rounds_half_to_even(run_op):
    x = np.array([[[10.0, 20.0, 30.0, 40.0]]], np.float32)
    grid = np.array([[[-1 + 2 * 0.5 / 3], [-1 + 2 * 1.5 / 3]]], np.float32)  # x = 0.5, 1.5
    y = run_op("GridSample", [x, grid], {"mode": "nearest", "align_corners": 1})
    np.testing.assert_allclose(y[0, 0], [10.0, 30.0])


def test_opset16_mode_names(run_op):
    x = np.ones((1, 1, 2, 2), np.float32)
    grid = np.zeros((1, 1, 1, 2), np.float32)
    # border padding: all 16 taps read ones; zeros padding: only the inner 2x2 taps (4 * 0.59375^2)
    np.testing.assert_allclose(run_op("GridSample", [x, grid], {"mode": "bicubic", "padding_mode": "border"},
                                      opset=16), [[[[1.0]]]], atol=1e-6)
    np.testing.assert_allclose(run_op("GridSample", [x, grid], {"mode": "bicubic"}, opset=16), [[[[1.1875 ** 2]]]],
                               atol=1e-6)
    with pytest.raises(ExecutionError, match="bilinear, nearest or bicubic"):
        run_op("GridSample", [x, grid], {"mode": "linear"}, opset=16)


def test_grid_sample_infer(infer_op, tt):
    out = infer_op("GridSample", [tt("float16", "n", 3, "h", "w"), tt("float32", "n", 5, 7, 2)])
    assert out.shape == ("n", 3, 5, 7) and out.dtype.name == "float16"
    with pytest.raises(InferError, match="last dim must be 2"):
        infer_op("GridSample", [tt("float32", 1, 3, 4, 4), tt("float32", 1, 5, 7, 3)])


def test_opset16_is_4d_only(infer_op, tt):
    with pytest.raises(InferError, match="opset 20"):
        infer_op("GridSample", [tt("float32", 1, 1, 2, 2, 2), tt("float32", 1, 1, 1, 1, 3)], opset=16)
