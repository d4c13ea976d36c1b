"""Reduction kernels over any axis against NumPy."""

import numpy as np
import pytest

pytestmark = pytest.mark.filterwarnings("ignore:Mean of empty slice")

from opencann.ops.math.kernels.reduce import KINDS, reduce


def _np_reduce(x, axis, kind, keepdims=False):
    """NumPy's value of each kind (sums in float64; logsumexp shifted by the finite maximum)."""
    if kind in ("sum", "mean"):
        return getattr(np, kind)(x.astype(np.float64), axis=axis, keepdims=keepdims)
    if kind != "logsumexp":
        return getattr(np, kind)(x, axis=axis, keepdims=keepdims)
    w = x.astype(np.float64)
    if w.shape[axis] == 0:
        return np.full(np.sum(w, axis=axis, keepdims=keepdims).shape, -np.inf)
    m = np.max(w, axis=axis, keepdims=True)
    m = np.where(np.isfinite(m), m, 0.0)
    r = np.log(np.sum(np.exp(w - m), axis=axis, keepdims=True)) + m
    return r if keepdims else np.squeeze(r, axis=axis)


@pytest.mark.parametrize("backend", ["ref", "cpu"])
@pytest.mark.parametrize("shape", [(7,), (3, 5), (4, 600), (2, 3, 17), (5, 0, 3), (3, 2500),
                                   (1, 1030, 384), (40, 130, 3)])
def test_reduce_every_axis(backend, shape):
    x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    for axis in range(len(shape)):
        for kind in KINDS:
            if kind in ("max", "min", "argmax") and 0 in shape:
                continue
            out = reduce(x, axis, kind, backend=backend)
            with np.errstate(invalid="ignore", divide="ignore"):
                ref = _np_reduce(x, axis, kind)
            assert out.shape == ref.shape
            # float32 sums drift with the length summed
            np.testing.assert_allclose(out, ref, rtol=1e-5, atol=1e-5 * max(1, shape[axis]) ** 0.5)


def test_keepdims_ties_and_long_rows():
    x = np.zeros((3, 5000), np.float32)
    x[:, 7] = x[:, 4000] = 1.0  # argmax takes the first of equal maxima
    assert (reduce(x, -1, "argmax") == 7).all()
    assert reduce(x, 1, "sum", keepdims=True).shape == (3, 1)
    np.testing.assert_allclose(reduce(x, 0, "max"), x.max(0))


@pytest.mark.parametrize("backend", ["ref", "cpu"])
@pytest.mark.parametrize("n", [5, 600, 3000])
def test_non_finite_values_follow_numpy(backend, n):
    """max/min propagate NaN; logsumexp of a row of -inf is -inf, with +inf it is +inf, with NaN
    NaN, and a row of large values does not overflow (the maximum is taken out first)."""
    rows = np.zeros((6, n), np.float32)
    rows[0, :] = -np.inf
    rows[1, n // 2] = np.inf
    rows[2, n - 1] = np.nan
    rows[3, :] = 1e30
    rows[4, 0] = -np.inf
    rows[5, :] = np.linspace(-50, 40, n)
    for x, axis in ((rows, 1), (np.ascontiguousarray(rows.T), 0), (rows.T.reshape(n, 2, 3), 0)):
        for kind in ("max", "min", "logsumexp", "sum"):
            got = reduce(x, axis, kind, backend=backend)
            with np.errstate(all="ignore"):
                want = _np_reduce(x, axis, kind)
            np.testing.assert_allclose(got, want, rtol=1e-5, err_msg=f"{kind} axis {axis}")


def test_empty_axis_values():
    x = np.zeros((3, 0, 2), np.float32)
    np.testing.assert_array_equal(reduce(x, 1, "sum"), np.zeros((3, 2)))
    np.testing.assert_array_equal(reduce(x, 1, "logsumexp"), np.full((3, 2), -np.inf))
    assert np.isnan(reduce(x, 1, "mean")).all()
    with pytest.raises(ValueError):
        reduce(x, 1, "max")
