"""The ScatterND kernel against the op's reference."""

import numpy as np
import pytest

from opencann.ops.tensor.gather_scatter import scatter_nd as scatter_nd_ref
from opencann.ops.tensor.kernels.scatter import row_numbers, scatter_nd

rng = np.random.default_rng(0)


@pytest.mark.parametrize("backend", ["ref", "cpu"])
@pytest.mark.parametrize("reduction", ["none", "add", "mul"])
@pytest.mark.parametrize("dshape,ishape", [
    ((50, 24), (4, 7, 1)),        # embedding-gradient form: rows of a table, repeated indices
    ((6, 5, 3), (10, 2)),         # two index dims
    ((4, 3), (5, 2)),             # whole index tuples: single elements
    ((3, 1100), (4, 1)),          # wide rows (several programs)
])
def test_scatter_nd_matches_reference(backend, reduction, dshape, ishape):
    data = rng.standard_normal(dshape).astype(np.float32)
    k = ishape[-1]
    idx = np.stack([rng.integers(-d, d, ishape[:-1]) for d in dshape[:k]], axis=-1) if k else \
        np.zeros(ishape, np.int64)
    upd = rng.standard_normal(ishape[:-1] + dshape[k:]).astype(np.float32)
    got = scatter_nd(data, idx, upd, reduction, backend=backend)
    want = scatter_nd_ref(data, idx, upd, reduction=reduction)
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6)
    assert got.dtype == np.float32 and got.shape == dshape


def test_scatter_nd_edges():
    data = np.arange(12, dtype=np.float32).reshape(4, 3)
    empty = scatter_nd(data, np.zeros((0, 1), np.int64), np.zeros((0, 3), np.float32), "add")
    np.testing.assert_array_equal(empty, data)
    assert empty is not data
    with pytest.raises(ValueError, match="out of range"):
        scatter_nd(data, np.array([[4]]), np.zeros((1, 3), np.float32))
    with pytest.raises(ValueError, match="updates must have shape"):
        scatter_nd(data, np.array([[1]]), np.zeros((1, 2), np.float32))
    upd = rng.standard_normal((2, 4, 3)).astype(np.float32)  # k = 0: each update is all of data
    np.testing.assert_allclose(scatter_nd(data, np.zeros((2, 0), np.int64), upd, "add"),
                               data + upd[0] + upd[1], rtol=1e-6)
    np.testing.assert_array_equal(row_numbers(np.array([[1, -1], [0, 2]]), (2, 3, 5)), [5, 2])
