"""Pooling: inference with symbolic dims, and values against direct loop implementations for
ceil_mode/padding/count_include_pad combinations, Indices layouts and the ops the ONNX suite does
not test (MaxRoiPool, GlobalLpPool, old LpPool)."""

import functools
import itertools

import numpy as np
import pytest

from opencann.ops.infer import InferError
from opencann.testing import infer_op, run_op, tensor_type

rng = np.random.default_rng(1)


# these tests run at opset 22 unless they name an opset
run = functools.partial(run_op, opset=22)
infer_types = functools.partial(infer_op, opset=22)
t = tensor_type


def naive_avg_pool_1d(x, k, s, pads, ceil_mode, count_include_pad):
    n = x.shape[-1]
    span = n + pads[0] + pads[1] - k
    out = -(-span // s) + 1 if ceil_mode else span // s + 1
    if ceil_mode and (out - 1) * s >= n + pads[0]:
        out -= 1
    y = np.zeros(x.shape[:-1] + (out,))
    for o in range(out):
        lo = o * s - pads[0]
        idx = [i for i in range(lo, lo + k)]
        inside = [i for i in idx if 0 <= i < n]
        counted = [i for i in idx if -pads[0] <= i < n + pads[1]] if count_include_pad else inside
        y[..., o] = x[..., inside].sum(-1) / len(counted)
    return y


@pytest.mark.parametrize("ceil_mode,count_include_pad,pads", itertools.product([0, 1], [0, 1], [[0, 0], [1, 2], [2, 1]]))
def test_average_pool_1d_matches_loops(ceil_mode, count_include_pad, pads):
    x = rng.standard_normal((2, 3, 10)).astype(np.float32)
    got = run("AveragePool", [x], {"kernel_shape": [3], "strides": [2], "pads": pads,
                                   "ceil_mode": ceil_mode, "count_include_pad": count_include_pad})
    want = naive_avg_pool_1d(x, 3, 2, pads, ceil_mode, count_include_pad)
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6)


def test_pool_infer_symbolic_and_ceil():
    typ = infer_types("AveragePool", [t("float32", "n", "c", 5, 7)],
                      {"kernel_shape": [2, 2], "strides": [2, 2], "ceil_mode": 1})
    assert typ.shape == ("n", "c", 3, 4)
    y, idx = infer_types("MaxPool", [t("float16", "n", 3, "h", 9)],
                         {"kernel_shape": [3, 3], "auto_pad": "SAME_UPPER", "strides": [2, 2]})
    assert y.shape == idx.shape == ("n", 3, None, 5)
    assert y.dtype.name == "float16" and idx.dtype.name == "int64"
    with pytest.raises(InferError, match="kernel_shape"):
        infer_types("MaxPool", [t("float32", 1, 1, 4, 4)], {"kernel_shape": [2]})
    with pytest.raises(InferError, match="larger than the padded input"):
        infer_types("MaxPool", [t("float32", 1, 1, 2, 2)], {"kernel_shape": [3, 3]})


def test_max_pool_indices_row_and_column_major_with_batch_and_pads():
    x = rng.standard_normal((2, 3, 5, 6)).astype(np.float32)
    attrs = {"kernel_shape": [2, 3], "strides": [2, 2], "pads": [1, 0, 0, 1]}
    y, idx = run("MaxPool", [x], attrs, outputs=2)
    np.testing.assert_array_equal(x.reshape(-1)[idx], y)  # row-major flat indices into x
    _, idx_col = run("MaxPool", [x], {**attrs, "storage_order": 1}, outputs=2)
    n, c, h, w = np.unravel_index(idx, x.shape)
    np.testing.assert_array_equal(idx_col, (n * 3 + c) * 30 + h + w * 5)
    np.testing.assert_array_equal(run("MaxPool", [x], attrs), y)


def test_max_pool_int8_pads_never_win():
    x = np.full((1, 1, 3, 3), -100, np.int8)
    x[0, 0, 1, 1] = -5
    got = run("MaxPool", [x], {"kernel_shape": [2, 2], "pads": [1, 1, 1, 1]})
    assert got.dtype == np.int8
    np.testing.assert_array_equal(got[0, 0], [[-100, -100, -100, -100], [-100, -5, -5, -100],
                                              [-100, -5, -5, -100], [-100, -100, -100, -100]])


def test_max_unpool_inverts_max_pool_positions():
    x = rng.standard_normal((2, 2, 4, 6)).astype(np.float32)
    y, idx = run("MaxPool", [x], {"kernel_shape": [2, 2], "strides": [2, 2]}, outputs=2)
    up = run("MaxUnpool", [y, idx], {"kernel_shape": [2, 2], "strides": [2, 2]})
    assert up.shape == x.shape
    assert np.count_nonzero(up) == y.size
    np.testing.assert_array_equal(up.reshape(-1)[idx], y)
    typ = infer_types("MaxUnpool", [t("float32", "n", 2, 2, 3), t("int64", "n", 2, 2, 3)],
                      {"kernel_shape": [2, 2], "strides": [2, 2]})
    assert typ.shape == ("n", 2, 4, 6)


def test_lp_pools():
    x = rng.standard_normal((1, 2, 4, 4)).astype(np.float32)
    got = run("GlobalLpPool", [x], {"p": 3})
    np.testing.assert_allclose(got[..., 0, 0], (np.abs(x) ** 3).sum((2, 3)) ** (1 / 3), rtol=1e-5)
    assert got.shape == (1, 2, 1, 1)
    old = run("LpPool", [x], {"kernel_shape": [2, 2], "strides": [2, 2], "p": 2.0}, opset=1)
    want = np.sqrt((x.reshape(1, 2, 2, 2, 2, 2) ** 2).sum((3, 5)))
    np.testing.assert_allclose(old, want, rtol=1e-5)


def test_global_pools_keep_dims_and_dtype():
    x = rng.standard_normal((2, 3, 4, 5, 6)).astype(np.float16)
    avg = run("GlobalAveragePool", [x])
    assert avg.dtype == np.float16 and avg.shape == (2, 3, 1, 1, 1)
    np.testing.assert_allclose(avg.reshape(2, 3), x.astype(np.float32).mean((2, 3, 4)), rtol=1e-2, atol=1e-3)
    np.testing.assert_array_equal(run("GlobalMaxPool", [x]).reshape(2, 3), x.max((2, 3, 4)))
    assert infer_types("GlobalMaxPool", [t("float32", "b", 3, "h", "w")]).shape == ("b", 3, 1, 1)


def test_max_roi_pool_bins():
    x = np.arange(2 * 1 * 6 * 8, dtype=np.float32).reshape(2, 1, 6, 8)
    rois = np.array([[1, 0, 0, 3, 3], [0, 2, 1, 7, 5]], np.float32)  # batch, x1, y1, x2, y2
    got = run("MaxRoiPool", [x, rois], {"pooled_shape": [2, 2]}, opset=1)
    assert got.shape == (2, 1, 2, 2)
    # roi 0 covers rows 0..3, cols 0..3 of image 1: bins of 2x2
    np.testing.assert_array_equal(got[0, 0], x[1, 0, [1, 3]][:, [1, 3]])
    # roi 1: rows 1..5 (5 rows -> bins [1,4) and [3,6)), cols 2..7 (6 cols -> [2,5) and [5,8))
    np.testing.assert_array_equal(got[1, 0], [[x[0, 0, 3, 4], x[0, 0, 3, 7]], [x[0, 0, 5, 4], x[0, 0, 5, 7]]])
