"""ScatterND as a tile kernel: rows of `updates` written into (or combined with) rows of a copy of
`data`.

`data` is viewed as (R, W): R index tuples over its first k dims, W elements each; `updates` as
(U, W), one row per index tuple of `indices` (..., k). The launcher turns the index tuples into row
numbers (negative indices counted from the end, out-of-range ones an error). Each program owns a
BLOCK-wide run of the W columns and walks the U updates in order, so repeated indices combine in
the reference's order and programs never touch the same element.

    >>> out = scatter_nd(np.zeros((5, 3), np.float32), np.array([[1], [1]]),
    ...                  np.ones((2, 3), np.float32), "add")            # doctest: +SKIP
"""

from __future__ import annotations

import numpy as np

from opencann import tile

__all__ = ["REDUCTIONS", "scatter_rows_kernel", "scatter_nd", "row_numbers"]

REDUCTIONS = ("none", "add", "mul")


@tile.kernel(do_not_specialize=("U", "W"))
def scatter_rows_kernel(out, upd, rows, U, W, REDUCTION: tile.constexpr, BLOCK: tile.constexpr):
    """BLOCK columns of every update row u, into row rows[u] of out."""
    cols = tile.program_id(0) * BLOCK + tile.arange(0, BLOCK)
    m = cols < W
    for u in range(0, U):
        r = tile.load(rows + u)
        v = tile.load(upd + u * W + cols, mask=m)
        if REDUCTION == "none":
            tile.store(out + r * W + cols, v, mask=m)
        else:
            o = tile.load(out + r * W + cols, mask=m)
            tile.store(out + r * W + cols, o + v if REDUCTION == "add" else o * v, mask=m)


def row_numbers(indices: np.ndarray, shape: tuple) -> np.ndarray:
    """The row of `shape` viewed as (prod(shape[:k]), rest) that each index tuple of `indices`
    (..., k) names, as a flat int64 array."""
    k = indices.shape[-1]
    idx = np.asarray(indices, np.int64).reshape(int(np.prod(indices.shape[:-1], dtype=np.int64)), k)
    rows = np.zeros(idx.shape[0], np.int64)
    for j in range(k):
        dim = shape[j]
        col = idx[:, j]
        if col.size and (col.min() < -dim or col.max() >= dim):
            bad = col[(col < -dim) | (col >= dim)][0]
            raise ValueError(f"index {bad} is out of range for a dim of size {dim}")
        rows = rows * dim + np.where(col < 0, col + dim, col)
    return rows


def scatter_nd(data, indices, updates, reduction="none", out=None, backend="cpu"):
    """ONNX ScatterND of float32 arrays: a copy of `data` (or `out`, already holding data's
    values) with `updates` written at (none) or added to (add) or multiplied into (mul) the
    slices that the last dim of `indices` names."""
    if reduction not in REDUCTIONS:
        raise ValueError(f"reduction must be one of {REDUCTIONS}, got {reduction!r}")
    indices = np.asarray(indices)
    k = indices.shape[-1]
    if k > data.ndim:
        raise ValueError(f"indices address {k} dims, data has rank {data.ndim}")
    want = indices.shape[:-1] + data.shape[k:]
    if updates.shape != want:
        raise ValueError(f"updates must have shape {list(want)}, got {list(updates.shape)}")
    rows = row_numbers(indices, data.shape)
    if out is None:
        out = np.array(data, np.float32, order="C", copy=True)
    w = int(np.prod(data.shape[k:], dtype=np.int64))
    if rows.size and w:
        upd = np.ascontiguousarray(updates, np.float32)
        block = 256 if w >= 1024 else max(16, min(64, 1 << (w - 1).bit_length()))
        scatter_rows_kernel[(-(-w // block),)](out, upd, rows, rows.size, w, REDUCTION=reduction,
                                               BLOCK=block, backend=backend)
    return out
