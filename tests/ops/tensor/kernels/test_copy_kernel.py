"""The strided 2-d copy kernel and the Concat built on it, against np.concatenate."""

import numpy as np
import pytest

from opencann.ops.tensor.kernels.copy import concat


@pytest.mark.parametrize("shapes,axis", [
    ([(8, 128, 384)] * 3, 2),               # a training graph's q, k, v gradients
    ([(3, 5, 7), (3, 2, 7)], 1),
    ([(10, 3), (10, 5), (10, 1)], 1),       # narrow inputs: short rows, many per block
    ([(4, 6), (2, 6)], 0),
    ([(5, 1000), (5, 3)], -1),              # a row wider than a block
    ([(0, 4), (0, 2)], 1),                  # empty
])
def test_concat_matches_numpy(shapes, axis):
    rng = np.random.default_rng(0)
    xs = [rng.standard_normal(s).astype(np.float32) for s in shapes]
    np.testing.assert_array_equal(concat(xs, axis), np.concatenate(xs, axis))
    ints = [(x * 100).astype(np.int32) for x in xs]
    np.testing.assert_array_equal(concat(ints, axis), np.concatenate(ints, axis))


def test_concat_reads_views():
    base = np.arange(2 * 3 * 8, dtype=np.float32).reshape(2, 3, 8)
    xs = [base[:, :, :4], base.transpose(0, 2, 1)[:, :3, :].transpose(0, 2, 1)]
    np.testing.assert_array_equal(concat(xs, 2), np.concatenate(xs, 2))


def test_outputs_written_side_by_side_concatenate_without_a_copy():
    """Views that fill a `side_by_side` buffer in order concatenate to the buffer itself; the
    same views out of order, a part of the buffer, or any other arrays are copied."""
    from opencann.ops.tensor.kernels.copy import concat, joined, side_by_side

    buf = side_by_side((2, 5, 3, 4))
    buf[...] = np.arange(buf.size, dtype=np.float32).reshape(buf.shape)
    parts = [buf[:, :, i] for i in range(3)]  # (2, 5, 4) each, strided
    got = concat(parts, -1)
    assert np.shares_memory(got, buf) and got.shape == (2, 5, 12)
    np.testing.assert_array_equal(got, np.concatenate(parts, -1))
    swapped = concat([parts[1], parts[0], parts[2]], -1)
    assert not np.shares_memory(swapped, buf)
    np.testing.assert_array_equal(swapped, np.concatenate([parts[1], parts[0], parts[2]], -1))
    assert joined(parts[:2], 2) is None  # two thirds of the buffer
    plain = np.arange(24, dtype=np.float32).reshape(2, 3, 4)
    assert joined([plain[:, :, :2], plain[:, :, 2:]], 2) is None  # not made side by side
