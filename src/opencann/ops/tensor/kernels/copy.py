"""Copies of 2-d blocks between strided row-major views, tile by tile on every core: what Concat
does per input (NumPy's concatenate copies on one core at about half the memory's bandwidth)."""

from __future__ import annotations

import numpy as np

from opencann import tile

__all__ = ["copy2d_kernel", "concat"]


@tile.kernel(do_not_specialize=("R", "C", "lds", "ldd"))
def copy2d_kernel(src, dst, R, C, lds, ldd, BR: tile.constexpr, BC: tile.constexpr):
    """dst[r, c] = src[r, c] for one BR x BC block; rows lds / ldd elements apart."""
    rr = tile.program_id(0) * BR + tile.arange(0, BR)
    cc = tile.program_id(1) * BC + tile.arange(0, BC)
    m = (rr[:, None] < R) & (cc[None, :] < C)
    tile.store(dst + rr[:, None] * ldd + cc[None, :],
               tile.load(src + rr[:, None] * lds + cc[None, :], mask=m), mask=m)


def concat(arrays, axis: int, backend="cpu") -> np.ndarray:
    """np.concatenate(arrays, axis) for arrays of one 4-byte dtype: each input is copied into its
    columns of the output seen as (rows before `axis`, elements from `axis` on)."""
    arrays = [np.ascontiguousarray(a) for a in arrays]
    first = arrays[0]
    axis %= first.ndim
    shape = list(first.shape)
    shape[axis] = sum(a.shape[axis] for a in arrays)
    out = np.empty(shape, first.dtype)
    rows = int(np.prod(shape[:axis], dtype=np.int64))
    total = int(np.prod(shape[axis:], dtype=np.int64))
    if out.size == 0:
        return out
    flat = out.reshape(rows, total)
    col = 0
    for a in arrays:
        width = a.size // rows if rows else 0
        if width:
            src = a.reshape(rows, width).view(np.float32)
            br, bc = (8, 512) if width >= 512 else (max(8, 4096 // max(width, 1) // 8 * 8), width)
            dst = flat.view(np.float32).reshape(-1)[col:]  # from this input's first column on
            copy2d_kernel.launch((-(-rows // br), -(-width // bc)), src.reshape(-1), dst, rows,
                                 width, width, total, BR=br, BC=bc, backend=backend)
        col += width
    return out
