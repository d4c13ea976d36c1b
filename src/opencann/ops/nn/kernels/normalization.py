"""Layer normalization and RMS normalization over the last axis.

One program normalizes ROWS rows held in one tile (rows up to MAX_BLOCK long): statistics in
float32, then the affine transform, one read and one write of memory. Longer rows sweep the row
twice in BLOCK-wide chunks.
"""

from __future__ import annotations

import os

import numpy as np

from opencann import tile

__all__ = ["layer_norm_kernel", "layer_norm_bwd_kernel", "rms_norm_kernel", "norm_looped_kernel",
           "layer_norm", "layer_norm_backward", "rms_norm", "MAX_BLOCK"]

MAX_BLOCK = 8192


@tile.kernel
def layer_norm_kernel(x, w, b, out, R, N, eps, mean_out, rstd_out, HAS_W: tile.constexpr,
                      HAS_B: tile.constexpr, ROWS: tile.constexpr, BLOCK: tile.constexpr,
                      HAS_STATS: tile.constexpr = False):
    """ROWS rows normalized in one tile; with HAS_STATS also each row's mean and 1/std (what a
    training graph keeps for the backward pass)."""
    rows = tile.program_id(0) * ROWS + tile.arange(0, ROWS)
    cols = tile.arange(0, BLOCK)
    m = (rows[:, None] < R) & (cols[None, :] < N)
    offs = rows[:, None] * N + cols[None, :]
    v = tile.load(x + offs, mask=m, other=0.0).to(tile.float32)
    mean = tile.sum(v, axis=1) / N
    xc = tile.where(m, v - mean[:, None], 0.0)
    var = tile.sum(xc * xc, axis=1) / N
    rstd = tile.rsqrt(var + eps)
    if HAS_STATS:
        tile.store(mean_out + rows, mean, mask=rows < R)
        tile.store(rstd_out + rows, rstd, mask=rows < R)
    y = xc * rstd[:, None]
    if HAS_W:
        y = y * tile.load(w + cols, mask=cols < N, other=0.0)[None, :]
    if HAS_B:
        y = y + tile.load(b + cols, mask=cols < N, other=0.0)[None, :]
    tile.store(out + offs, y, mask=m)


@tile.kernel
def layer_norm_bwd_kernel(dy, x, mean, rstd, w, dx, dwp, dbp, R, N, HAS_W: tile.constexpr,
                          ROWS: tile.constexpr, BLOCK: tile.constexpr, acc=None,
                          HAS_ACC: tile.constexpr = False):
    """The backward of ROWS rows of a layer norm from the forward's mean and 1/std: dx (plus
    `acc`, x's shape, with HAS_ACC: a gradient from another path, such as a residual branch), and
    this program's partial sums of the scale's and bias's gradients (row program_id(0) of dwp,
    dbp; the launcher adds the programs' rows)."""
    pid = tile.program_id(0)
    rows = pid * ROWS + tile.arange(0, ROWS)
    cols = tile.arange(0, BLOCK)
    m = (rows[:, None] < R) & (cols[None, :] < N)
    offs = rows[:, None] * N + cols[None, :]
    g = tile.load(dy + offs, mask=m, other=0.0)
    v = tile.load(x + offs, mask=m, other=0.0)
    mu = tile.load(mean + rows, mask=rows < R, other=0.0)
    rs = tile.load(rstd + rows, mask=rows < R, other=0.0)
    xhat = tile.where(m, (v - mu[:, None]) * rs[:, None], 0.0)
    gw = g
    if HAS_W:
        gw = g * tile.load(w + cols, mask=cols < N, other=0.0)[None, :]
    s1 = tile.sum(gw, axis=1) / N
    s2 = tile.sum(gw * xhat, axis=1) / N
    d = (gw - s1[:, None] - xhat * s2[:, None]) * rs[:, None]
    if HAS_ACC:
        d = d + tile.load(acc + offs, mask=m, other=0.0)
    tile.store(dx + offs, d, mask=m)
    tile.store(dwp + pid * N + cols, tile.sum(g * xhat, axis=0), mask=cols < N)
    tile.store(dbp + pid * N + cols, tile.sum(g, axis=0), mask=cols < N)


@tile.kernel
def rms_norm_kernel(x, w, out, R, N, eps, HAS_W: tile.constexpr, ROWS: tile.constexpr,
                    BLOCK: tile.constexpr):
    """ROWS rows RMS-normalized in one tile."""
    rows = tile.program_id(0) * ROWS + tile.arange(0, ROWS)
    cols = tile.arange(0, BLOCK)
    m = (rows[:, None] < R) & (cols[None, :] < N)
    offs = rows[:, None] * N + cols[None, :]
    v = tile.load(x + offs, mask=m, other=0.0).to(tile.float32)
    y = v * tile.rsqrt(tile.sum(v * v, axis=1) / N + eps)[:, None]
    if HAS_W:
        y = y * tile.load(w + cols, mask=cols < N, other=0.0)[None, :]
    tile.store(out + offs, y, mask=m)


@tile.kernel
def norm_looped_kernel(x, w, b, out, N, eps, RMS: tile.constexpr, HAS_W: tile.constexpr,
                       HAS_B: tile.constexpr, BLOCK: tile.constexpr):
    """One long row: statistics in one sweep, normalization in a second."""
    row = tile.program_id(0)
    cols = tile.arange(0, BLOCK)
    s1 = tile.zeros((BLOCK,), tile.float32)
    s2 = tile.zeros((BLOCK,), tile.float32)
    for n0 in range(0, N, BLOCK):
        c = n0 + cols
        v = tile.load(x + row * N + c, mask=c < N, other=0.0).to(tile.float32)
        s1 = s1 + v
        s2 = s2 + v * v
    if RMS:
        mean = 0.0
        rstd = tile.rsqrt(tile.sum(s2, axis=0) / N + eps)
    else:
        mean = tile.sum(s1, axis=0) / N
        rstd = tile.rsqrt(tile.maximum(tile.sum(s2, axis=0) / N - mean * mean, 0.0) + eps)
    for n0 in range(0, N, BLOCK):
        c = n0 + cols
        v = tile.load(x + row * N + c, mask=c < N, other=0.0).to(tile.float32)
        y = (v - mean) * rstd
        if HAS_W:
            y = y * tile.load(w + c, mask=c < N, other=0.0)
        if HAS_B:
            y = y + tile.load(b + c, mask=c < N, other=0.0)
        tile.store(out + row * N + c, y, mask=c < N)


def _prep(x, weight, bias):
    x = np.asarray(x)
    if not tile.is_float_storage(x.dtype):
        x = x.astype(np.float32)
    x = np.ascontiguousarray(x)
    n = x.shape[-1] if x.ndim else 1
    w = None if weight is None else np.ascontiguousarray(np.broadcast_to(weight, (n,)), np.float32)
    b = None if bias is None else np.ascontiguousarray(np.broadcast_to(bias, (n,)), np.float32)
    return x, w, b, n


def _tiles(n, r=None):
    """(ROWS, BLOCK) for r rows of n: BLOCK is n rounded up to 16 (a row of 384 is one tile of 384,
    not 512 with a masked quarter to zero, skip and mask again in every pass). ROWS: tiles of up
    to 8192 floats and 32 rows while every core still gets about 4 programs (1024 rows of 384:
    21 rows a program, 0.18 -> 0.13 ms; the backward's partial sums stay few); 2048 floats
    without r."""
    block = max(16, -(-n // 16) * 16)
    if r is None:
        return max(1, min(16, 2048 // block)), block
    return int(min(32, max(1, 8192 // block), max(1, r // (4 * (os.cpu_count() or 1))))), block


def layer_norm(x, weight=None, bias=None, eps=1e-5, backend="cpu", stats=False):
    """`(x - mean) / sqrt(var + eps) * weight + bias` over the last axis. With `stats`, returns
    (y, mean, 1/std), the two float32 (..., 1) (rows up to MAX_BLOCK long)."""
    x, w, b, n = _prep(x, weight, bias)
    out = np.empty_like(x)
    r = x.size // n if n else 0
    mean = rstd = None
    if stats:
        if n > MAX_BLOCK:
            raise ValueError(f"layer_norm: statistics of rows longer than {MAX_BLOCK}")
        mean = np.empty(x.shape[:-1] + (1,), np.float32)
        rstd = np.empty(x.shape[:-1] + (1,), np.float32)
    if x.size == 0:
        return (out, mean, rstd) if stats else out
    if n <= MAX_BLOCK:
        rows, block = _tiles(n, r if stats else None)  # statistics: larger blocks did better
        layer_norm_kernel.launch(
            ((r + rows - 1) // rows,), x, w, b, out, r, n, float(eps), mean, rstd,
            HAS_W=w is not None, HAS_B=b is not None, ROWS=rows, BLOCK=block, HAS_STATS=stats,
            backend=backend)
    else:
        norm_looped_kernel[(r,)](x, w, b, out, n, float(eps), RMS=False, HAS_W=w is not None,
                                 HAS_B=b is not None, BLOCK=2048, backend=backend)
    return (out, mean, rstd) if stats else out


def layer_norm_backward(dy, x, mean, rstd, weight=None, backend="cpu", add=None):
    """(dx, dweight, dbias) of `layer_norm(x, weight, bias)` over the last axis, from the upstream
    gradient `dy` and the forward's `mean` and `rstd` (one per row, any shape holding x.size / n
    values). One pass over dy and x: each program writes its rows of dx and its partial column
    sums for dweight and dbias, added here (rows up to MAX_BLOCK long). `add` (x's shape): a
    gradient added to dx in the same pass."""
    x, w, _, n = _prep(x, weight, None)
    dy = np.ascontiguousarray(dy, np.float32)
    if dy.shape != x.shape or x.dtype != np.float32:
        raise ValueError(f"layer_norm_backward: float32 dy and x of one shape, got {dy.dtype} "
                         f"{dy.shape} and {x.dtype} {x.shape}")
    if n > MAX_BLOCK:
        raise ValueError(f"layer_norm_backward: rows longer than {MAX_BLOCK}")
    r = x.size // n if n else 0
    mean = np.ascontiguousarray(mean, np.float32).reshape(-1)
    rstd = np.ascontiguousarray(rstd, np.float32).reshape(-1)
    if mean.size != r or rstd.size != r:
        raise ValueError(f"layer_norm_backward: {r} rows, but {mean.size} means and {rstd.size} "
                         f"inverse standard deviations")
    if add is not None:
        add = np.ascontiguousarray(add, np.float32)
        if add.shape != x.shape:
            raise ValueError(f"layer_norm_backward: add must be x's shape {x.shape}, got "
                             f"{add.shape}")
    dx = np.empty_like(x)
    if r == 0 or n == 0:
        if add is not None:
            dx[...] = add
        return dx, np.zeros(n, np.float32), np.zeros(n, np.float32)
    rows, block = _tiles(n, r)
    progs = (r + rows - 1) // rows
    dwp = np.empty((progs, n), np.float32)
    dbp = np.empty((progs, n), np.float32)
    layer_norm_bwd_kernel.launch((progs,), dy, x, mean, rstd, w, dx, dwp, dbp, r, n,
                                 HAS_W=w is not None, ROWS=rows, BLOCK=block, acc=add,
                                 HAS_ACC=add is not None, backend=backend)
    return dx, dwp.sum(axis=0), dbp.sum(axis=0)


def rms_norm(x, weight=None, eps=1e-6, backend="cpu"):
    """`x / sqrt(mean(x^2) + eps) * weight` over the last axis."""
    x, w, _, n = _prep(x, weight, None)
    out = np.empty_like(x)
    if x.size == 0:
        return out
    r = x.size // n
    if n <= MAX_BLOCK:
        rows, block = _tiles(n)
        rms_norm_kernel[((r + rows - 1) // rows,)](x, w, out, r, n, float(eps), HAS_W=w is not None,
                                                   ROWS=rows, BLOCK=block, backend=backend)
    else:
        norm_looped_kernel[(r,)](x, w, None, out, n, float(eps), RMS=True, HAS_W=w is not None,
                                 HAS_B=False, BLOCK=2048, backend=backend)
    return out
