"""Transpose kernel against NumPy."""

import numpy as np
import pytest

from opencann.ops.tensor.kernels.transpose import transpose


@pytest.mark.parametrize("backend", ["ref", "cpu"])
@pytest.mark.parametrize("shape,dtype", [((33, 70), np.float32), ((3, 5, 64), np.int64),
                                         ((1, 1), np.float32), ((0, 4), np.float32),
                                         ((2, 40, 31), np.float16)])
def test_transpose(backend, shape, dtype):
    x = (np.random.default_rng(0).standard_normal(shape) * 100).astype(dtype)
    np.testing.assert_array_equal(transpose(x, backend=backend), np.swapaxes(x, -1, -2))
