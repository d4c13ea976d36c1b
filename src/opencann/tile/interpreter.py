"""The interpreter: runs a kernel body on NumPy arrays, one program at a time (the CPU twin).

Every operation is computed eagerly, so a kernel can be stepped through in a debugger or printed
from. Loads and stores check bounds: an unmasked access outside its tensor raises `TileIndexError`
naming the kernel source line.
"""

from __future__ import annotations

import math

import numpy as np

from .. import dtypes as _dt
from .errors import (TileCompileError, TileError, TileIndexError, error, format_exception,
                     location_from_traceback)
from .ir import PtrType
from .language import CONTEXT, Tile, _is_py_number

__all__ = ["EagerBuilder", "run_program", "kernel_arguments"]

_erf = np.frompyfunc(math.erf, 1, 1)


def _c_div(a, b):
    return (a - np.fmod(a, b)) // np.where(b == 0, 1, b)


_UNARY = {
    "neg": np.negative, "exp": np.exp, "log": np.log, "sqrt": np.sqrt,
    "rsqrt": lambda x: 1 / np.sqrt(x), "tanh": np.tanh, "erf": lambda x: _erf(x).astype(np.float32),
    "sigmoid": lambda x: 1 / (1 + np.exp(-x)), "abs": np.abs, "floor": np.floor, "ceil": np.ceil,
    "cos": np.cos, "sin": np.sin,
}
_BINARY = {
    "add": np.add, "sub": np.subtract, "mul": np.multiply, "div": np.divide, "pow": np.power,
    "max": np.maximum, "min": np.minimum, "and": np.bitwise_and, "or": np.bitwise_or,
    "xor": np.bitwise_xor, "lt": np.less, "le": np.less_equal, "gt": np.greater,
    "ge": np.greater_equal, "eq": np.equal, "ne": np.not_equal, "mod": np.fmod,
}


def _eval(op, dtype, shape, arg, vals):
    if op == "const" or op == "full":
        return np.full(shape, arg, dtype.np)
    if op == "arange":
        return np.arange(arg, arg + shape[0], dtype=np.int32)
    if op in _UNARY:
        return _UNARY[op](vals[0])
    if op == "not":
        return np.logical_not(vals[0]) if vals[0].dtype == np.bool_ else np.invert(vals[0])
    if op == "floordiv":
        a, b = vals
        return np.floor(a / b) if a.dtype.kind == "f" else _c_div(a, b)
    if op in _BINARY:
        return _BINARY[op](*vals)
    if op == "where":
        return np.where(*vals)
    if op == "cast":
        x = vals[0]
        if dtype is _dt.bool_:
            return x != 0
        if dtype.is_int and x.dtype.kind == "f":
            x = np.trunc(np.nan_to_num(x.astype(np.float64)))
        return x.astype(dtype.np)
    if op == "addptr":
        return vals[0] + vals[1].astype(np.int64)
    if op == "view":
        return vals[0].reshape(shape)
    if op == "broadcast":
        return np.broadcast_to(vals[0], shape)
    if op == "trans":
        return np.transpose(vals[0], arg)
    if op == "reduce":
        kind, axis = arg
        x = vals[0]
        if kind == "sum":
            return np.sum(x, axis=axis, dtype=dtype.np)
        if kind == "max":
            return np.max(x, axis=axis)
        if kind == "min":
            return np.min(x, axis=axis)
        return np.argmax(x, axis=axis).astype(np.int32)
    if op == "dot":
        r = vals[0].astype(np.float32) @ vals[1].astype(np.float32)
        return r + vals[2] if len(vals) == 3 else r
    raise TileCompileError(f"the interpreter has no rule for op {op!r}")


class EagerBuilder:
    """Computes each tile operation with NumPy as the kernel body runs."""

    def __init__(self, pid, grid):
        self.pid, self.grid = pid, grid

    def emit(self, op, srcs, dtype, shape, arg=None, base=None) -> Tile:
        if op == "program_id":
            return Tile(np.asarray(self.pid[arg], np.int32), dtype, ())
        if op == "num_programs":
            return Tile(np.asarray(self.grid[arg], np.int32), dtype, ())
        with np.errstate(all="ignore"):
            r = np.asarray(_eval(op, dtype, shape, arg, [s.h for s in srcs]))
        if isinstance(dtype, PtrType):
            r = r.astype(np.int64, copy=False)
        elif r.dtype != dtype.np:
            r = r.astype(dtype.np)
        return Tile(r, dtype, shape, base)

    def _check(self, ptr, valid, kind):
        arr, name = ptr.base
        offs = np.broadcast_to(ptr.h, ptr.shape)
        bad = valid & ((offs < 0) | (offs >= arr.size))
        if bad.any():
            o = int(offs[bad].flat[0])
            raise error(f"{kind} out of bounds: element offset {o} of argument '{name}' is outside "
                        f"[0, {arr.size}); mask the access (mask=...) or fix the offsets",
                        TileIndexError)
        return arr, offs

    def load(self, ptr, mask, other) -> Tile:
        valid = np.ones(ptr.shape, bool) if mask is None else np.broadcast_to(mask.h, ptr.shape)
        arr, offs = self._check(ptr, valid, "load")
        if arr.size:
            vals = arr[np.where(valid, offs, 0)]
        else:
            vals = np.zeros(ptr.shape, arr.dtype)
        if mask is not None:
            vals = np.where(valid, vals, other.h).astype(arr.dtype)
        return Tile(np.asarray(vals), ptr.dtype.elem, ptr.shape)

    def store(self, ptr, value, mask) -> None:
        valid = np.ones(ptr.shape, bool) if mask is None else np.broadcast_to(mask.h, ptr.shape)
        arr, offs = self._check(ptr, valid, "store")
        vals = np.broadcast_to(value.h, ptr.shape)
        arr[offs[valid]] = vals[valid].astype(arr.dtype)

    def for_loop(self, lo, hi, step, body, names, inits, line):
        lo, hi, step = (int(x.h) if isinstance(x, Tile) else int(x) for x in (lo, hi, step))
        vals = tuple(inits)
        for i in range(lo, hi, step):
            vals = tuple(body(Tile(np.asarray(i, np.int64), _dt.int64, ()), vals))
        return vals


def kernel_arguments(names_values):
    """Kernel-body arguments for the interpreter: arrays become pointer tiles, numbers scalars."""
    out = {}
    for name, v in names_values:
        if isinstance(v, np.ndarray):
            d = _dt.from_numpy(v.dtype)
            flat = v.reshape(-1)
            out[name] = Tile(np.asarray(0, np.int64), PtrType(d), (), base=(flat, name))
        elif isinstance(v, (bool, np.bool_)) or (_is_py_number(v) and not isinstance(v, (float, np.floating))):
            out[name] = Tile(np.asarray(int(v), np.int64), _dt.int64, ())
        elif isinstance(v, (float, np.floating)):
            out[name] = Tile(np.asarray(v, np.float32), _dt.float32, ())
        else:
            out[name] = v
    return out


def run_program(fn, pid, grid, kwargs):
    """Run one program of kernel body `fn` (already rewritten) under the interpreter."""
    prev = CONTEXT.builder
    CONTEXT.builder = EagerBuilder(pid, grid)
    try:
        fn(**kwargs)
    except TileError:
        raise
    except Exception as e:  # an error in kernel code: name the kernel line
        loc = location_from_traceback(e.__traceback__)
        raise TileCompileError(f"{loc}: {format_exception(e)}" if loc else format_exception(e)) from e
    finally:
        CONTEXT.builder = prev

