"""Copies of 2-d blocks between strided row-major views, tile by tile on every core: what Concat
does per input (NumPy's concatenate copies on one core at about half the memory's bandwidth).
A kernel that knows its outputs are concatenated next writes them side by side into one
`side_by_side` buffer; their concatenation is then that buffer, with nothing copied."""

from __future__ import annotations

import weakref

import numpy as np

from opencann import tile

__all__ = ["copy2d_kernel", "concat", "joined", "side_by_side"]

_SIDE_BY_SIDE: dict = {}  # id -> weak reference, of the buffers `side_by_side` made


def side_by_side(shape, dtype=np.float32) -> np.ndarray:
    """An empty C-contiguous buffer for outputs that a Concat joins next: views of it that lie
    side by side in it, in order, concatenate (`concat`) to the buffer itself, not a copy. Only
    buffers made here are taken so: a producer asks for it, knowing the Concat comes."""
    buf = np.empty(shape, dtype)
    key = id(buf)
    _SIDE_BY_SIDE[key] = weakref.ref(buf, lambda _, key=key: _SIDE_BY_SIDE.pop(key, None))
    return buf


def joined(arrays, axis: int) -> np.ndarray | None:
    """The concatenation of `arrays` along `axis` as a view of the `side_by_side` buffer they
    fill exactly, in order; else None."""
    first = arrays[0]
    root = first
    while isinstance(root.base, np.ndarray):
        root = root.base
    ref = _SIDE_BY_SIDE.get(id(root))
    if ref is None or ref() is not root:
        return None
    shape = list(first.shape)
    shape[axis] = sum(a.shape[axis] for a in arrays)
    if root.dtype != first.dtype or root.size != int(np.prod(shape, dtype=np.int64)):
        return None
    out = root.reshape(shape)
    at = 0
    for a in arrays:
        want = out[(slice(None),) * axis + (slice(at, at + a.shape[axis]),)]
        at += a.shape[axis]
        if a.dtype != want.dtype or a.shape != want.shape or \
                a.__array_interface__["data"][0] != want.__array_interface__["data"][0] or \
                any(n > 1 and s != t for n, s, t in zip(a.shape, a.strides, want.strides)):
            return None
    return out


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
    columns of the output seen as (rows before `axis`, elements from `axis` on), unless they lie
    side by side in a `side_by_side` buffer already (then that buffer, viewed in the output's
    shape)."""
    axis %= np.ndim(arrays[0])
    done = joined(arrays, axis) if all(isinstance(a, np.ndarray) for a in arrays) else None
    if done is not None:
        return done
    arrays = [np.ascontiguousarray(a) for a in arrays]
    first = arrays[0]
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
