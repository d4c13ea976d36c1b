"""Softmax, LogSoftmax, Hardmax: the opset 1-12 2-D coercion against the opset 13 single axis,
stability, dtypes and inference."""

import functools

import numpy as np
import pytest

from opencann.ops.infer import InferError
from opencann.testing import infer_op, run_op, tensor_type

# these tests run at opset 22 unless they name an opset
run = functools.partial(run_op, opset=22)
infer_types = functools.partial(infer_op, opset=22)
f32 = functools.partial(tensor_type, "float32")


def _np_softmax(x, axis):
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


X = np.random.default_rng(0).normal(size=(2, 3, 4)).astype(np.float32)


def test_opset_13_runs_along_one_axis():
    np.testing.assert_allclose(run("Softmax", [X], {"axis": 1}, opset=13), _np_softmax(X, 1), rtol=1e-6)
    np.testing.assert_allclose(run("LogSoftmax", [X], {"axis": 1}, opset=13), np.log(_np_softmax(X, 1)),
                               rtol=1e-5, atol=1e-6)


def test_opset_11_coerces_to_2d():
    want = _np_softmax(X.reshape(2, 12), 1).reshape(2, 3, 4)
    got = run("Softmax", [X], {"axis": 1}, opset=11)
    np.testing.assert_allclose(got, want, rtol=1e-6)
    np.testing.assert_allclose(got.sum(axis=(1, 2)), [1, 1], rtol=1e-6)
    # default axis is 1 before opset 13 and -1 from 13
    np.testing.assert_allclose(run("Softmax", [X], opset=11), want, rtol=1e-6)
    np.testing.assert_allclose(run("Softmax", [X], opset=13), _np_softmax(X, -1), rtol=1e-6)


def test_hardmax_picks_the_first_maximum():
    x = np.array([[1, 3, 3, 0], [2, 2, 2, 2]], np.float32)
    np.testing.assert_array_equal(run("Hardmax", [x], opset=13), [[0, 1, 0, 0], [1, 0, 0, 0]])
    # coerced: one 1 over all of dims 1.. for each row of dim 0
    x3 = np.array([[[1, 5], [7, 2]], [[9, 0], [0, 9]]], np.float32)
    np.testing.assert_array_equal(run("Hardmax", [x3], {"axis": 1}, opset=11),
                                  [[[0, 0], [1, 0]], [[1, 0], [0, 0]]])


def test_large_inputs_and_float16():
    x = np.array([[1000, 1001, 1002], [-1000, -1000, -1000]], np.float16)
    got = run("Softmax", [x], opset=13)
    assert got.dtype == np.float16
    np.testing.assert_allclose(got.astype(np.float32), [[0.0900, 0.2447, 0.6652], [1 / 3] * 3], rtol=2e-3)
    got = run("LogSoftmax", [x.astype(np.float32) * 1e3], opset=13)
    assert np.all(np.isfinite(got))
    np.testing.assert_allclose(got[0], [-2e3, -1e3, 0], rtol=1e-6)


def test_infer_checks_axis_and_keeps_symbols():
    assert infer_types("Softmax", [f32("batch", 12, "seq", "seq")], {"axis": -1}, opset=13) == \
        f32("batch", 12, "seq", "seq")
    with pytest.raises(InferError, match="axis 3"):
        infer_types("LogSoftmax", [f32("batch", 4, 5)], {"axis": 3}, opset=13)


def test_empty_input_keeps_its_shape():
    for opset in (11, 13):
        got = run("Softmax", [np.zeros((0, 3, 4), np.float32)], {"axis": 1}, opset=opset)
        assert got.shape == (0, 3, 4) and got.dtype == np.float32
