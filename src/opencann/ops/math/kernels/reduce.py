"""Reductions over one axis: sum, mean, max, min, argmax.

The launcher views the input as (outer, n, inner). With inner == 1 (the last axis) each program
reduces ROWS rows, sweeping n in BLOCK-wide chunks into a (ROWS, BLOCK) partial that is reduced at
the end; otherwise each program reduces a BLOCK-wide run of inner columns, sweeping n row by row
(contiguous loads either way).
"""

from __future__ import annotations

import numpy as np

from opencann import tile

__all__ = ["reduce_rows_kernel", "reduce_cols_kernel", "reduce", "KINDS"]

KINDS = ("sum", "mean", "max", "min", "argmax")


def _init(kind):
    return 0.0 if kind in ("sum", "mean") else (float("-inf") if kind in ("max", "argmax") else
                                              float("inf"))


@tile.kernel
def reduce_rows_kernel(x, out, R, N, KIND: tile.constexpr, ROWS: tile.constexpr,
                       BLOCK: tile.constexpr):
    """ROWS rows reduced along their (contiguous) length."""
    rows = tile.program_id(0) * ROWS + tile.arange(0, ROWS)
    cols = tile.arange(0, BLOCK)
    fill = 0.0 if KIND == "sum" or KIND == "mean" else (
        float("-inf") if KIND == "max" or KIND == "argmax" else float("inf"))
    acc = tile.full((ROWS, BLOCK), fill, tile.float32)
    idx = tile.zeros((ROWS, BLOCK), tile.int32)
    for n0 in range(0, N, BLOCK):
        c = n0 + cols
        m = (rows[:, None] < R) & (c[None, :] < N)
        v = tile.load(x + rows[:, None] * N + c[None, :], mask=m, other=fill).to(tile.float32)
        if KIND == "sum" or KIND == "mean":
            acc = acc + v
        elif KIND == "max":
            acc = tile.maximum(acc, v)
        elif KIND == "min":
            acc = tile.minimum(acc, v)
        else:
            better = v > acc
            idx = tile.where(better, c[None, :], idx)
            acc = tile.where(better, v, acc)
    if KIND == "sum":
        r = tile.sum(acc, axis=1)
    elif KIND == "mean":
        r = tile.sum(acc, axis=1) / N
    elif KIND == "max":
        r = tile.max(acc, axis=1)
    elif KIND == "min":
        r = tile.min(acc, axis=1)
    else:
        best = tile.max(acc, axis=1)
        r = tile.min(tile.where(acc == best[:, None], idx, 2147483647), axis=1)
    tile.store(out + rows, r, mask=rows < R)


@tile.kernel
def reduce_cols_kernel(x, out, N, I, KIND: tile.constexpr, BLOCK: tile.constexpr):
    """BLOCK columns of one outer index reduced down the middle axis."""
    o = tile.program_id(1)
    cols = tile.program_id(0) * BLOCK + tile.arange(0, BLOCK)
    m = cols < I
    fill = 0.0 if KIND == "sum" or KIND == "mean" else (
        float("-inf") if KIND == "max" or KIND == "argmax" else float("inf"))
    acc = tile.full((BLOCK,), fill, tile.float32)
    idx = tile.zeros((BLOCK,), tile.int32)
    for n in range(0, N):
        v = tile.load(x + (o * N + n) * I + cols, mask=m, other=fill).to(tile.float32)
        if KIND == "sum" or KIND == "mean":
            acc = acc + v
        elif KIND == "max":
            acc = tile.maximum(acc, v)
        elif KIND == "min":
            acc = tile.minimum(acc, v)
        else:
            better = v > acc
            idx = tile.where(better, n.to(tile.int32), idx)
            acc = tile.where(better, v, acc)
    if KIND == "mean":
        acc = acc / N
    if KIND == "argmax":
        tile.store(out + o * I + cols, idx, mask=m)
    else:
        tile.store(out + o * I + cols, acc, mask=m)


def reduce(x, axis=-1, kind="sum", keepdims=False, backend="cpu"):
    """Reduce float array `x` along `axis` with `kind` (sum, mean, max, min, argmax)."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    x = np.ascontiguousarray(x)
    if not tile.is_float_storage(x.dtype):
        x = x.astype(np.float32)
    axis = axis % x.ndim
    shape = x.shape
    outer = int(np.prod(shape[:axis], dtype=np.int64))
    n, inner = shape[axis], int(np.prod(shape[axis + 1:], dtype=np.int64))
    out_dtype = np.int64 if kind == "argmax" else np.float32
    out_shape = shape[:axis] + ((1,) if keepdims else ()) + shape[axis + 1:]
    if kind in ("max", "min", "argmax") and n == 0 and outer * inner:
        raise ValueError(f"{kind} of an empty axis")
    res = np.empty(outer * inner, np.int32 if kind == "argmax" else np.float32)
    if res.size:
        if inner == 1:
            rows, block = 8, 512 if n >= 512 else max(16, 1 << (n - 1).bit_length())
            reduce_rows_kernel[((outer + rows - 1) // rows,)](x, res, outer, n, KIND=kind,
                                                              ROWS=rows, BLOCK=block,
                                                              backend=backend)
        else:
            block = 256
            reduce_cols_kernel[((inner + block - 1) // block, outer)](x, res, n, inner, KIND=kind,
                                                                     BLOCK=block, backend=backend)
    return res.astype(out_dtype, copy=False).reshape(out_shape)
