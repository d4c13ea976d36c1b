"""Reductions over one axis: sum, mean, max, min, logsumexp, argmax.

The launcher views the input as (outer, n, inner).

- inner == 1 (the last axis): each program reduces ROWS rows. A row that fits one BLOCK-wide tile
  (ONE) is loaded once and reduced; a longer one is swept in BLOCK-wide chunks into a
  (ROWS, BLOCK) partial that is reduced at the end.
- otherwise each program reduces a BLOCK-wide run of inner columns, sweeping n RB rows at a time
  (contiguous loads of (RB, BLOCK) tiles, summed down into a (BLOCK,) partial). BLOCK shrinks
  until there are enough programs for the threads.

Semantics follow NumPy: max and min propagate NaN; logsumexp is log(sum(exp(x))) computed as
m + log(sum(exp(x - m))) with m the row's maximum (0 when that is not finite, so a row of -inf
gives -inf and a row holding +inf gives +inf); argmax takes the first of equal maxima. The sum of
an empty axis is 0, its mean NaN, its logsumexp -inf; max, min and argmax of one raise.
"""

from __future__ import annotations

import numpy as np

from opencann import tile

__all__ = ["reduce_rows_kernel", "reduce_cols_kernel", "reduce", "prepare_reduce", "KINDS"]

KINDS = ("sum", "mean", "max", "min", "logsumexp", "argmax")
ONE_MAX = 4096      # rows up to this long are loaded as one tile
TILE = 4096         # elements per loaded tile


def _fill(kind):
    """What masked-off lanes hold: the identity of the kind's first pass."""
    if kind in ("sum", "mean"):
        return 0.0
    return float("inf") if kind == "min" else float("-inf")


def _nan_flag(v, axis):
    """1.0 where a NaN was seen along `axis`, else 0.0."""
    return tile.max(tile.where(v != v, 1.0, 0.0), axis=axis)


def _shift(m):
    """The row maximum as the logsumexp shift, 0 where it is not finite (a row of -inf, +inf, or
    NaN: the sum of exponentials then gives the answer by itself)."""
    return tile.where(tile.abs(m) < float("inf"), m, 0.0)


@tile.kernel(do_not_specialize=("R", "N"))
def reduce_rows_kernel(x, out, R, N, KIND: tile.constexpr, ROWS: tile.constexpr,
                       BLOCK: tile.constexpr, ONE: tile.constexpr = False):
    """ROWS rows reduced along their (contiguous) length."""
    rows = tile.program_id(0) * ROWS + tile.arange(0, ROWS)
    cols = tile.arange(0, BLOCK)
    fill = _fill(KIND)
    if ONE:  # the whole row in one tile: load once, reduce
        m = (rows[:, None] < R) & (cols[None, :] < N)
        v = tile.load(x + rows[:, None] * N + cols[None, :], mask=m, other=fill).to(tile.float32)
        if KIND == "sum":
            r = tile.sum(v, axis=1)
        elif KIND == "mean":
            r = tile.sum(v, axis=1) / N
        elif KIND == "max" or KIND == "min":
            r = tile.max(v, axis=1) if KIND == "max" else tile.min(v, axis=1)
            r = tile.where(_nan_flag(v, 1) > 0.0, float("nan"), r)
        else:  # logsumexp
            s = _shift(tile.max(v, axis=1))
            r = tile.log(tile.sum(tile.exp(v - s[:, None]), axis=1)) + s
        tile.store(out + rows, r, mask=rows < R)
        return
    acc = tile.full((ROWS, BLOCK), fill, tile.float32)
    if KIND == "argmax":
        idx = tile.zeros((ROWS, BLOCK), tile.int32)
    if KIND == "max" or KIND == "min":
        bad = tile.zeros((ROWS, BLOCK), tile.float32)
    for n0 in range(0, N, BLOCK):
        c = n0 + cols
        m = (rows[:, None] < R) & (c[None, :] < N)
        v = tile.load(x + rows[:, None] * N + c[None, :], mask=m, other=fill).to(tile.float32)
        if KIND == "sum" or KIND == "mean":
            acc = acc + v
        elif KIND == "max" or KIND == "logsumexp":
            acc = tile.maximum(acc, v)
        elif KIND == "min":
            acc = tile.minimum(acc, v)
        else:
            better = v > acc
            idx = tile.where(better, c[None, :], idx)
            acc = tile.where(better, v, acc)
        if KIND == "max" or KIND == "min":
            bad = tile.maximum(bad, tile.where(v != v, 1.0, 0.0))
    if KIND == "sum":
        r = tile.sum(acc, axis=1)
    elif KIND == "mean":
        r = tile.sum(acc, axis=1) / N
    elif KIND == "max":
        r = tile.where(tile.max(bad, axis=1) > 0.0, float("nan"), tile.max(acc, axis=1))
    elif KIND == "min":
        r = tile.where(tile.max(bad, axis=1) > 0.0, float("nan"), tile.min(acc, axis=1))
    elif KIND == "logsumexp":  # a second sweep: the sum of exp(x - max)
        s = _shift(tile.max(acc, axis=1))
        tot = tile.zeros((ROWS, BLOCK), tile.float32)
        for n0 in range(0, N, BLOCK):
            c = n0 + cols
            m = (rows[:, None] < R) & (c[None, :] < N)
            v = tile.load(x + rows[:, None] * N + c[None, :], mask=m, other=fill).to(tile.float32)
            tot = tot + tile.exp(v - s[:, None])
        r = tile.log(tile.sum(tot, axis=1)) + s
    else:
        best = tile.max(acc, axis=1)
        r = tile.min(tile.where(acc == best[:, None], idx, 2147483647), axis=1)
    tile.store(out + rows, r, mask=rows < R)


@tile.kernel(do_not_specialize=("N", "I"))
def reduce_cols_kernel(x, out, N, I, KIND: tile.constexpr, BLOCK: tile.constexpr,
                       RB: tile.constexpr = 1):
    """BLOCK columns of one outer index reduced down the middle axis, RB rows at a time."""
    o = tile.program_id(1)
    cols = tile.program_id(0) * BLOCK + tile.arange(0, BLOCK)
    cm = cols < I
    fill = _fill(KIND)
    acc = tile.full((BLOCK,), fill, tile.float32)
    if KIND == "argmax":  # row by row: the first of equal maxima wins
        idx = tile.zeros((BLOCK,), tile.int32)
        for n in range(0, N):
            v = tile.load(x + (o * N + n) * I + cols, mask=cm, other=fill).to(tile.float32)
            better = v > acc
            idx = tile.where(better, n.to(tile.int32), idx)
            acc = tile.where(better, v, acc)
        tile.store(out + o * I + cols, idx, mask=cm)
        return
    rr = tile.arange(0, RB)
    if KIND == "max" or KIND == "min":
        bad = tile.zeros((BLOCK,), tile.float32)
    for n0 in range(0, N, RB):
        r = n0 + rr
        m = (r[:, None] < N) & cm[None, :]
        v = tile.load(x + (o * N + r[:, None]) * I + cols[None, :], mask=m, other=fill).to(tile.float32)
        if KIND == "sum" or KIND == "mean":
            acc = acc + tile.sum(v, axis=0)
        elif KIND == "max" or KIND == "logsumexp":
            acc = tile.maximum(acc, tile.max(v, axis=0))
        else:
            acc = tile.minimum(acc, tile.min(v, axis=0))
        if KIND == "max" or KIND == "min":
            bad = tile.maximum(bad, _nan_flag(v, 0))
    if KIND == "mean":
        acc = acc / N
    if KIND == "max" or KIND == "min":
        acc = tile.where(bad > 0.0, float("nan"), acc)
    if KIND == "logsumexp":
        s = _shift(acc)
        tot = tile.zeros((BLOCK,), tile.float32)
        for n0 in range(0, N, RB):
            r = n0 + rr
            m = (r[:, None] < N) & cm[None, :]
            v = tile.load(x + (o * N + r[:, None]) * I + cols[None, :], mask=m, other=fill).to(tile.float32)
            tot = tot + tile.sum(tile.exp(v - s[None, :]), axis=0)
        acc = tile.log(tot) + s
    tile.store(out + o * I + cols, acc, mask=cm)


def _pow2_at_least(n: int, lo: int = 1) -> int:
    return max(lo, 1 << max(n - 1, 0).bit_length())


def rows_launch(r: int, n: int, kind: str):
    """(grid, meta-parameters) of `reduce_rows_kernel` for r rows of n."""
    if kind != "argmax" and n <= ONE_MAX:
        block = _pow2_at_least(n, 8)
        one = True
    else:
        block = 512 if n >= 512 else _pow2_at_least(n, 16)
        one = False
    rows = max(1, min(TILE // block, 64))
    while rows > 1 and -(-r // rows) < 8:  # enough programs for the threads
        rows //= 2
    return (-(-r // rows),), {"ROWS": rows, "BLOCK": block, "ONE": one}


def cols_launch(outer: int, n: int, inner: int, kind: str):
    """(grid, meta-parameters) of `reduce_cols_kernel` for (outer, n, inner)."""
    block = min(256, _pow2_at_least(inner, 8))
    while block > 32 and outer * -(-inner // block) < 8:
        block //= 2
    rb = 1 if kind == "argmax" else max(1, min(TILE // block, _pow2_at_least(n)))
    return (-(-inner // block), outer), {"BLOCK": block, "RB": rb}


def reduce(x, axis=-1, kind="sum", keepdims=False, backend="cpu"):
    """Reduce float array `x` along `axis` with `kind` (sum, mean, max, min, logsumexp, argmax)."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    x = np.ascontiguousarray(x)
    if not tile.is_float_storage(x.dtype):
        x = x.astype(np.float32)
    return prepare_reduce(x.shape, x.dtype, axis, kind, keepdims, backend)(x)


def prepare_reduce(shape, dtype, axis=-1, kind="sum", keepdims=False, backend="cpu"):
    """`reduce` for C-contiguous inputs of one shape and float dtype, with its launch prepared
    once: call it with the array (the generic launcher binds and specializes arguments on every
    call, tens of microseconds)."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    shape = tuple(shape)
    axis = axis % len(shape)
    outer = int(np.prod(shape[:axis], dtype=np.int64))
    n, inner = shape[axis], int(np.prod(shape[axis + 1:], dtype=np.int64))
    out_dtype = np.int64 if kind == "argmax" else np.float32
    res_dtype = np.int32 if kind == "argmax" else np.float32
    out_shape = shape[:axis] + ((1,) if keepdims else ()) + shape[axis + 1:]
    if kind in ("max", "min", "argmax") and n == 0 and outer * inner:
        raise ValueError(f"{kind} of an empty axis")
    size = outer * inner
    launch = None
    if size and n:
        d = np.empty(1, dtype)
        r = np.empty(1, res_dtype)
        if inner == 1:
            grid, meta = rows_launch(outer, n, kind)
            launch = reduce_rows_kernel.prepare(grid, d, r, outer, n, KIND=kind, backend=backend,
                                                **meta)
        else:
            grid, meta = cols_launch(outer, n, inner, kind)
            launch = reduce_cols_kernel.prepare(grid, d, r, n, inner, KIND=kind,
                                                backend=backend, **meta)

    def run(x):
        res = np.empty(size, res_dtype)
        if launch is not None:
            launch(x, res)
        elif size:  # the kernels' loops would not run: the empty reductions' values
            res[:] = {"sum": 0.0, "mean": np.nan, "logsumexp": -np.inf}[kind]
        return res.astype(out_dtype, copy=False).reshape(out_shape)
    return run
