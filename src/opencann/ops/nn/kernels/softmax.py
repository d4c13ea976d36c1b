"""Softmax (and log-softmax) over the last axis.

Rows of up to MAX_BLOCK elements are done in one tile: load, max, exp, sum, scale, store, one read
and one write of memory. Longer rows use the looped kernel: an online max/sum pass, then a pass
that writes.
"""

from __future__ import annotations

import numpy as np

from opencann import tile

__all__ = ["softmax_kernel", "softmax_looped_kernel", "softmax", "log_softmax", "MAX_BLOCK"]

MAX_BLOCK = 8192


@tile.kernel
def softmax_kernel(x, out, R, N, LOG: tile.constexpr, ROWS: tile.constexpr, BLOCK: tile.constexpr):
    """ROWS rows of up to BLOCK elements in one tile."""
    rows = tile.program_id(0) * ROWS + tile.arange(0, ROWS)
    cols = tile.arange(0, BLOCK)
    m = (rows[:, None] < R) & (cols[None, :] < N)
    offs = rows[:, None] * N + cols[None, :]
    v = tile.load(x + offs, mask=m, other=float("-inf")).to(tile.float32)
    mx = tile.max(v, axis=1)
    mx = tile.where(mx == float("-inf"), 0.0, mx)
    e = tile.exp(v - mx[:, None])
    s = tile.sum(e, axis=1)
    if LOG:
        y = v - mx[:, None] - tile.log(s)[:, None]
    else:
        y = e * (1.0 / s)[:, None]
    tile.store(out + offs, y, mask=m)


@tile.kernel
def softmax_looped_kernel(x, out, N, LOG: tile.constexpr, BLOCK: tile.constexpr):
    """One long row: online max and sum in one sweep, the output in a second."""
    row = tile.program_id(0)
    cols = tile.arange(0, BLOCK)
    mx = tile.full((BLOCK,), float("-inf"), tile.float32)
    s = tile.zeros((BLOCK,), tile.float32)
    for n0 in range(0, N, BLOCK):
        c = n0 + cols
        v = tile.load(x + row * N + c, mask=c < N, other=float("-inf")).to(tile.float32)
        new = tile.maximum(mx, v)
        safe = tile.where(new == float("-inf"), 0.0, new)
        s = s * tile.exp(mx - safe) + tile.exp(v - safe)
        mx = new
    m_all = tile.max(mx, axis=0)
    m_all = tile.where(m_all == float("-inf"), 0.0, m_all)
    total = tile.sum(s * tile.exp(mx - m_all), axis=0)
    for n0 in range(0, N, BLOCK):
        c = n0 + cols
        v = tile.load(x + row * N + c, mask=c < N, other=0.0).to(tile.float32)
        if LOG:
            y = v - m_all - tile.log(total)
        else:
            y = tile.exp(v - m_all) / total
        tile.store(out + row * N + c, y, mask=c < N)


def _launch(x, log, backend):
    x = np.asarray(x)
    if not tile.is_float_storage(x.dtype):
        x = x.astype(np.float32)
    x = np.ascontiguousarray(x)
    out = np.empty_like(x)
    if x.size == 0:
        return out
    n = x.shape[-1]
    r = x.size // n
    if n <= MAX_BLOCK:
        block = max(16, 1 << (n - 1).bit_length())
        rows = max(1, min(16, 2048 // block))
        softmax_kernel[((r + rows - 1) // rows,)](x, out, r, n, LOG=log, ROWS=rows, BLOCK=block,
                                                  backend=backend)
    else:
        softmax_looped_kernel[(r,)](x, out, n, LOG=log, BLOCK=2048, backend=backend)
    return out


def softmax(x, backend="cpu"):
    """Softmax over the last axis of a float array (float32 / float16 / bfloat16)."""
    return _launch(x, False, backend)


def log_softmax(x, backend="cpu"):
    """Log-softmax over the last axis."""
    return _launch(x, True, backend)
