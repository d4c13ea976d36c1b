"""Pad (all versions and modes) and CenterCropPad."""

import numpy as np

from opencann import dtypes
from opencann.ir import TensorType

i64 = np.int64


def test_pad_modes(run_op):
    x = np.arange(1, 5, dtype=np.float32).reshape(1, 4)
    pads = np.array([0, 2, 0, 1], i64)
    for mode, np_mode in (("reflect", "reflect"), ("edge", "edge"), ("wrap", "wrap")):
        y = run_op("Pad", [x, pads], {"mode": mode}, opset=19)
        np.testing.assert_array_equal(y, np.pad(x, [(0, 0), (2, 1)], mode=np_mode))
    y = run_op("Pad", [x, pads, np.array(9, np.float32)], opset=19)
    np.testing.assert_array_equal(y, [[9, 9, 1, 2, 3, 4, 9]])


def test_pad_negative_crops(run_op):
    x = np.arange(6, dtype=np.int32).reshape(2, 3)
    y = run_op("Pad", [x, np.array([0, -1, 1, 0], i64)], opset=13)
    np.testing.assert_array_equal(y, [[1, 2], [4, 5], [0, 0]])


def test_pad_legacy_attributes(run_op):
    x = np.ones((1, 2), np.float32)
    y = run_op("Pad", [x], {"pads": [0, 1, 0, 1], "value": 5.0}, opset=2)
    np.testing.assert_array_equal(y, [[5, 1, 1, 5]])
    y = run_op("Pad", [x], {"paddings": [1, 0, 0, 0], "mode": "edge"}, opset=1)
    np.testing.assert_array_equal(y, np.ones((2, 2)))


def test_pad_infer_with_axes(infer_op):
    t = infer_op("Pad", [TensorType(dtypes.float32, ("b", 3, 4)), np.array([1, 2, 3, 4], i64), None,
                         np.array([1, -1], i64)], opset=18)
    assert t.shape == ("b", 7, 10)
    t = infer_op("Pad", [TensorType(dtypes.float32, ("b", 3)), TensorType(dtypes.int64, (4,))], opset=18)
    assert t.shape == (None, None)


def test_center_crop_pad_odd_difference(run_op):
    x = np.arange(5, dtype=np.float32)
    np.testing.assert_array_equal(run_op("CenterCropPad", [x, np.array([2], i64)], opset=18), [1, 2])
    np.testing.assert_array_equal(run_op("CenterCropPad", [x[:2], np.array([5], i64)], opset=18), [0, 0, 1, 0, 0])
