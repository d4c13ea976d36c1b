"""Reduction kernels over any axis against NumPy."""

import numpy as np
import pytest

pytestmark = pytest.mark.filterwarnings("ignore:Mean of empty slice")

from opencann.ops.math.kernels.reduce import KINDS, reduce


@pytest.mark.parametrize("backend", ["ref", "cpu"])
@pytest.mark.parametrize("shape", [(7,), (3, 5), (4, 600), (2, 3, 17), (5, 0, 3)])
def test_reduce_every_axis(backend, shape):
    x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    for axis in range(len(shape)):
        for kind in KINDS:
            if kind in ("max", "min", "argmax") and 0 in shape:
                continue
            out = reduce(x, axis, kind, backend=backend)
            with np.errstate(invalid="ignore"):
                ref = getattr(np, kind)(x, axis=axis)
            assert out.shape == ref.shape
            np.testing.assert_allclose(out, ref, rtol=1e-5, atol=1e-5)


def test_keepdims_ties_and_long_rows():
    x = np.zeros((3, 5000), np.float32)
    x[:, 7] = x[:, 4000] = 1.0  # argmax takes the first of equal maxima
    assert (reduce(x, -1, "argmax") == 7).all()
    assert reduce(x, 1, "sum", keepdims=True).shape == (3, 1)
    np.testing.assert_allclose(reduce(x, 0, "max"), x.max(0))
