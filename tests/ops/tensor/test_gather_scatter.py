"""Gather/Scatter family: inference, batch_dims, reductions and error cases."""

import numpy as np
import pytest

from opencann import dtypes
from opencann.errors import OpenCannError
from opencann.ir import TensorType

i64 = np.int64


def test_gather_infer_symbolic(infer_op):
    t = infer_op("Gather", [TensorType(dtypes.float32, ("vocab", 768)), TensorType(dtypes.int64, ("b", "s"))])
    assert t.shape == ("b", "s", 768)


def test_gather_nd_batch_dims(run_op, infer_op):
    data = np.arange(2 * 3 * 4, dtype=np.float32).reshape(2, 3, 4)
    idx = np.array([[[1], [0]], [[2], [2]]], i64)  # (2, 2, 1)
    y = run_op("GatherND", [data, idx], {"batch_dims": 1})
    expected = np.stack([data[0][[1, 0]], data[1][[2, 2]]])
    np.testing.assert_array_equal(y, expected)
    t = infer_op("GatherND", [TensorType(dtypes.float32, ("b", 3, 4)), TensorType(dtypes.int64, ("b", 2, 1))],
                 {"batch_dims": 1})
    assert t.shape == ("b", 2, 4)


def test_gather_out_of_range_is_an_error(run_op):
    with pytest.raises(OpenCannError, match="out of range"):
        run_op("Gather", [np.zeros(3, np.float32), np.array([3], i64)])


def test_scatter_elements_add_with_duplicates(run_op):
    data = np.zeros((2, 3), np.float32)
    idx = np.array([[0, 0, 2], [1, 1, 1]], i64)
    upd = np.ones((2, 3), np.float32)
    y = run_op("ScatterElements", [data, idx, upd], {"axis": 1, "reduction": "add"})
    np.testing.assert_array_equal(y, [[2, 0, 1], [0, 3, 0]])


def test_scatter_nd_mul_and_negative_indices(run_op):
    data = np.full((3, 2), 2, np.float32)
    idx = np.array([[-1], [0], [-1]], i64)
    upd = np.full((3, 2), 3, np.float32)
    y = run_op("ScatterND", [data, idx, upd], {"reduction": "mul"})
    np.testing.assert_array_equal(y, [[6, 6], [2, 2], [18, 18]])


def test_tensor_scatter_axis_and_default_indices(run_op):
    past = np.zeros((2, 5, 3), np.float32)
    upd = np.ones((2, 2, 3), np.float32)
    y = run_op("TensorScatter", [past, upd], {"axis": 1}, opset=24)
    assert y[:, :2].sum() == 12 and y[:, 2:].sum() == 0
    y = run_op("TensorScatter", [past, upd, np.array([4, 0], i64)], {"axis": 1, "mode": "circular"}, opset=24)
    assert y[0, 4].sum() == 3 and y[0, 0].sum() == 3 and y[1, :2].sum() == 6


def test_gather_elements_indices_smaller_than_data(run_op):
    data = np.arange(9, dtype=np.float32).reshape(3, 3)
    idx = np.array([[2, 0]], i64)  # (1, 2): reads the corner data[:, :2]
    np.testing.assert_array_equal(run_op("GatherElements", [data, idx], {"axis": 0}), [[6, 1]])
