"""Transpose of the last two axes (batched over the leading ones), tile by tile."""

from __future__ import annotations

import numpy as np

from opencann import tile

__all__ = ["transpose_kernel", "transpose"]


@tile.kernel
def transpose_kernel(x, out, M, N, BM: tile.constexpr, BN: tile.constexpr):
    """One BM x BN block of batch entry program_id(2), written transposed."""
    rm = tile.program_id(0) * BM + tile.arange(0, BM)
    rn = tile.program_id(1) * BN + tile.arange(0, BN)
    z = tile.program_id(2)
    t = tile.load(x + z * M * N + rm[:, None] * N + rn[None, :],
                  mask=(rm[:, None] < M) & (rn[None, :] < N))
    tile.store(out + z * M * N + rn[:, None] * M + rm[None, :], tile.trans(t),
               mask=(rn[:, None] < N) & (rm[None, :] < M))


def transpose(x, backend="cpu"):
    """x with its last two axes swapped (any dtype the tile language supports)."""
    x = np.ascontiguousarray(x)
    if x.ndim < 2:
        return x.copy()
    *batch, m, n = x.shape
    out = np.empty((*batch, n, m), x.dtype)
    b = int(np.prod(batch, dtype=np.int64))
    if out.size:
        transpose_kernel[(-(-m // 32), -(-n // 32), b)](x, out, m, n, BM=32, BN=32,
                                                        backend=backend)
    return out
