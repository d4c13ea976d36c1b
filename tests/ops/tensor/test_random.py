"""Random generators: shapes, dtypes, seeding and the distributions' basic statistics."""

import numpy as np

from opencann import dtypes
from opencann.ir import TensorType


def test_random_uniform_seeded_repeats(run_op):
    attrs = {"shape": [1000], "low": 2.0, "high": 3.0, "seed": 1.0, "dtype": 11}
    a = run_op("RandomUniform", [], attrs)
    b = run_op("RandomUniform", [], attrs)
    assert a.dtype == np.float64 and a.shape == (1000,)
    np.testing.assert_array_equal(a, b)
    assert 2 <= a.min() and a.max() < 3


def test_random_normal_like_statistics(run_op):
    y = run_op("RandomNormalLike", [np.zeros((200, 100), np.float16)], {"mean": 5.0, "scale": 2.0, "seed": 3.0})
    assert y.dtype == np.float16
    assert abs(float(y.astype(np.float32).mean()) - 5) < 0.1
    assert abs(float(y.astype(np.float32).std()) - 2) < 0.1


def test_bernoulli_extremes(run_op):
    p = np.array([0.0, 1.0, 0.0, 1.0])
    np.testing.assert_array_equal(run_op("Bernoulli", [p], {"dtype": 6}, opset=15), [0, 1, 0, 1])


def test_multinomial_picks_the_only_likely_class(run_op, infer_op):
    logits = np.array([[-100, 0, -100], [0, -100, -100]], np.float32)
    y = run_op("Multinomial", [logits], {"sample_size": 5, "dtype": 7})
    assert y.dtype == np.int64
    np.testing.assert_array_equal(y, [[1] * 5, [0] * 5])
    t = infer_op("Multinomial", [TensorType(dtypes.float32, ("b", 3))], {"sample_size": 4})
    assert (t.dtype, t.shape) == (dtypes.int32, ("b", 4))
