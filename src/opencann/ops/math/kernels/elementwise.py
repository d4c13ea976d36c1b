"""Elementwise kernels: broadcasting binary ops, unary ops, and the triad `b + s * c`.

The launcher folds NumPy broadcasting into at most three dims (merging dims that stay adjacent
in every operand), so one kernel serves all shapes: program (i, r) handles a BLOCK-wide run of the
last dim of row r; an operand broadcast along a dim gets stride 0 there (a specialized constant,
so the load becomes a broadcast).
"""

from __future__ import annotations

import numpy as np

from opencann import tile

__all__ = ["binary_kernel", "unary_kernel", "triad_kernel", "binary", "unary", "add", "sub", "mul",
           "div", "maximum", "minimum", "triad", "BINARY_OPS", "UNARY_OPS"]

BINARY_OPS = ("add", "sub", "mul", "div", "max", "min", "pow")
UNARY_OPS = ("neg", "abs", "exp", "log", "sqrt", "rsqrt", "tanh", "erf", "sigmoid", "relu",
             "gelu", "silu", "floor", "ceil")
BLOCK = 2048


def apply_binary(x, y, op):
    """`op(x, y)` on tiles (called inside kernels)."""
    return _BIN[op](x, y)


_BIN = {"add": lambda x, y: x + y, "sub": lambda x, y: x - y, "mul": lambda x, y: x * y,
        "div": lambda x, y: x / y, "max": tile.maximum, "min": tile.minimum,
        "pow": lambda x, y: x ** y}


def apply_unary(x, op):
    """`op(x)` on a tile (called inside kernels)."""
    if op == "relu":
        return tile.maximum(x, 0)
    if op == "gelu":
        return 0.5 * x * (1.0 + tile.erf(x * 0.7071067811865476))
    if op == "silu":
        return x * tile.sigmoid(x)
    if op == "neg":
        return -x
    return getattr(tile, op)(x)


@tile.kernel(do_not_specialize=("D1", "C"))
def binary_kernel(a, b, out, D1, C, sa0, sa1, sa2, sb0, sb1, sb2, OP: tile.constexpr,
                  BLOCK: tile.constexpr):
    """A BLOCK-wide run of row r of the (up to 3-d) broadcast output."""
    r = tile.program_id(1)
    r0 = r // D1
    r1 = r % D1
    cols = tile.program_id(0) * BLOCK + tile.arange(0, BLOCK)
    m = cols < C
    x = tile.load(a + r0 * sa0 + r1 * sa1 + cols * sa2, mask=m)
    y = tile.load(b + r0 * sb0 + r1 * sb1 + cols * sb2, mask=m)
    tile.store(out + r * C + cols, apply_binary(x, y, OP), mask=m)


@tile.kernel(do_not_specialize=("n",))
def unary_kernel(x, out, n, OP: tile.constexpr, BLOCK: tile.constexpr):
    """BLOCK elements of op(x)."""
    offs = tile.program_id(0) * BLOCK + tile.arange(0, BLOCK)
    m = offs < n
    tile.store(out + offs, apply_unary(tile.load(x + offs, mask=m), OP), mask=m)


@tile.kernel(do_not_specialize=("n",))
def triad_kernel(b, c, out, s, n, BLOCK: tile.constexpr):
    """BLOCK elements of b + s * c."""
    offs = tile.program_id(0) * BLOCK + tile.arange(0, BLOCK)
    m = offs < n
    tile.store(out + offs, tile.load(b + offs, mask=m) + s * tile.load(c + offs, mask=m), mask=m)


def collapse_dims(shape, strides_list):
    """Merge adjacent dims that are contiguous in every operand; drop unit dims. Returns a list of
    (size, [stride per operand])."""
    dims = [(n, [s[d] for s in strides_list]) for d, n in enumerate(shape) if n != 1]
    out = []
    for n, st in dims:
        if out:
            pn, pst = out[-1]
            if all(ps == s * n for ps, s in zip(pst, st)):
                out[-1] = (pn * n, st)
                continue
        out.append((n, st))
    return out


def broadcast_strides(shape, out_shape):
    """Element strides of a contiguous array of `shape` broadcast to `out_shape` (0 along
    broadcast dims)."""
    xs = (1,) * (len(out_shape) - len(shape)) + tuple(shape)
    st = [0] * len(out_shape)
    acc = 1
    for d in range(len(out_shape) - 1, -1, -1):
        st[d] = 0 if xs[d] == 1 else acc
        acc *= xs[d]
    return st


def _result_dtype(a, b):
    d = np.result_type(a.dtype, b.dtype)
    if d == np.float64:
        d = np.dtype(np.float32)
    return d


def binary(a, b, op="add", backend="cpu"):
    """`op(a, b)` with NumPy broadcasting; float32/16/bf16 and int32/int64 arrays."""
    if op not in BINARY_OPS:
        raise ValueError(f"op must be one of {BINARY_OPS}, got {op!r}")
    a, b = np.asarray(a), np.asarray(b)
    d = _result_dtype(a, b)
    if op == "div" and d.kind != "f":
        d = np.dtype(np.float32)
    a = np.ascontiguousarray(a, d)
    b = np.ascontiguousarray(b, d)
    shape = np.broadcast_shapes(a.shape, b.shape)
    out = np.empty(shape, d)
    if out.size == 0:
        return out
    dims = collapse_dims(shape, [broadcast_strides(a.shape, shape), broadcast_strides(b.shape, shape)])
    if len(dims) > 3:  # rare: materialize the broadcast of both operands
        a = np.ascontiguousarray(np.broadcast_to(a, shape))
        b = np.ascontiguousarray(np.broadcast_to(b, shape))
        dims = [(out.size, [1, 1])]
    dims = [(1, [0, 0])] * (3 - len(dims)) + dims
    (d0, s0), (d1, s1), (c, s2) = dims
    grid = ((c + BLOCK - 1) // BLOCK, d0 * d1)
    binary_kernel[grid](a, b, out, d1, c, s0[0], s1[0], s2[0], s0[1], s1[1], s2[1], OP=op,
                        BLOCK=BLOCK, backend=backend)
    return out


def add(a, b, backend="cpu"):
    """a + b, broadcasting."""
    return binary(a, b, "add", backend)


def sub(a, b, backend="cpu"):
    """a - b, broadcasting."""
    return binary(a, b, "sub", backend)


def mul(a, b, backend="cpu"):
    """a * b, broadcasting."""
    return binary(a, b, "mul", backend)


def div(a, b, backend="cpu"):
    """a / b, broadcasting."""
    return binary(a, b, "div", backend)


def maximum(a, b, backend="cpu"):
    """Elementwise max, broadcasting."""
    return binary(a, b, "max", backend)


def minimum(a, b, backend="cpu"):
    """Elementwise min, broadcasting."""
    return binary(a, b, "min", backend)


def unary(x, op, backend="cpu"):
    """`op(x)` elementwise for float arrays (float32, float16, bfloat16)."""
    if op not in UNARY_OPS:
        raise ValueError(f"op must be one of {UNARY_OPS}, got {op!r}")
    x = np.ascontiguousarray(x)
    if not tile.is_float_storage(x.dtype):
        x = x.astype(np.float32)
    out = np.empty_like(x)
    if x.size:
        unary_kernel[((x.size + BLOCK - 1) // BLOCK,)](x, out, x.size, OP=op, BLOCK=BLOCK,
                                                       backend=backend)
    return out


def triad(b, c, s, out=None, backend="cpu"):
    """`b + s * c` for float32 arrays of one shape (the STREAM triad)."""
    b = np.ascontiguousarray(b, np.float32)
    c = np.ascontiguousarray(c, np.float32)
    if b.shape != c.shape:
        raise ValueError(f"triad needs equal shapes, got {b.shape} and {c.shape}")
    out = np.empty_like(b) if out is None else out
    if b.size:
        triad_kernel[((b.size + 8191) // 8192,)](b, c, out, float(s), b.size, BLOCK=8192,
                                                 backend=backend)
    return out
