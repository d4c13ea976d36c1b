"""ai.onnx.ml ArrayFeatureExtractor and Binarizer."""

import numpy as np
import pytest

from opencann.errors import ExecutionError

ML = "ai.onnx.ml"


def test_array_feature_extractor(run_op, infer_op, tt):
    x = np.arange(24, dtype=np.int64).reshape(2, 3, 4)
    got = run_op("ArrayFeatureExtractor", [x, np.array([3, 0, 3], np.int64)], domain=ML)
    np.testing.assert_array_equal(got, x[..., [3, 0, 3]])
    got = run_op("ArrayFeatureExtractor", [np.array(["a", "b", "c"], dtype=object), np.array([2], np.int64)], domain=ML)
    assert got.shape == (1, 1) and got[0, 0] == "c"
    assert infer_op("ArrayFeatureExtractor", [tt("float32", "n", 4), tt("int64", 2)],
                    domain=ML, opset=1).shape == ("n", 2)
    with pytest.raises(ExecutionError, match="out of range"):
        run_op("ArrayFeatureExtractor", [x, np.array([4], np.int64)], domain=ML)


def test_binarizer(run_op):
    got = run_op("Binarizer", [np.array([-1.0, 0.5, 0.7, 2.0])], {"threshold": 0.5}, domain=ML)
    assert got.dtype == np.float64 and got.tolist() == [0.0, 0.0, 1.0, 1.0]
