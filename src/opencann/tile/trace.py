"""The tracer: runs a kernel body once with proxy tiles and records kernel IR.

`for ... in range(...)` loops reach `for_loop` (see rewrite.py) with their body as a function; the
body is traced once into its own block, with one parameter per loop-carried tile.
"""

from __future__ import annotations

import itertools

from .. import dtypes as _dt
from .errors import error, location
from .ir import Block, PtrType, Value
from .language import (UNDEFINED, Tile, _check_shapes_equal, _const, _is_py_number, _lift, cast,
                       flatten_carried, full)

__all__ = ["TraceBuilder"]


class TraceBuilder:
    """Builds a kernel's IR while the kernel body runs on proxy tiles."""

    def __init__(self):
        self.blocks = [Block()]
        self._ids = itertools.count()

    def value(self, op, srcs, dtype, shape, arg=None) -> Value:
        v = Value(next(self._ids), op, [s.h for s in srcs], dtype, shape, arg, location())
        self.blocks[-1].values.append(v)
        return v

    def emit(self, op, srcs, dtype, shape, arg=None, base=None) -> Tile:
        return Tile(self.value(op, srcs, dtype, shape, arg), dtype, shape)

    def param(self, name, dtype) -> Value:
        return Value(next(self._ids), "arg", (), dtype, (), name)

    def load(self, ptr, mask, other) -> Tile:
        srcs = (ptr,) if mask is None else (ptr, mask, other)
        return self.emit("load", srcs, ptr.dtype.elem, ptr.shape)

    def store(self, ptr, value, mask) -> None:
        srcs = (ptr, value) if mask is None else (ptr, value, mask)
        self.value("store", srcs, None, ptr.shape)

    def _bound(self, x, what):
        if _is_py_number(x) and not isinstance(x, float):
            return _const(int(x), _dt.int64)
        x = _lift(x)
        if x.shape != () or isinstance(x.dtype, PtrType) or not x.dtype.is_int:
            raise error(f"range {what} must be an int scalar, got {x.type_str()}")
        return cast(x, _dt.int64)

    def for_loop(self, lo, hi, step, body, names, inits, line):
        # block pointers (and any other structured value) travel as their leaves
        structure, flat_names, flat_inits = [], [], []
        for name, init in zip(names, inits):
            leaves, rebuild = flatten_carried(init)
            structure.append((len(leaves), rebuild, init))
            flat_names += [name] if len(leaves) == 1 and leaves[0] is init else [
                f"{name}.offsets[{i}]" for i in range(len(leaves))]
            flat_inits += leaves

        def flat_body(iv, leaves):
            args, k = [], 0
            for n, rebuild, _ in structure:
                args.append(rebuild(list(leaves[k:k + n])))
                k += n
            outs = []
            for (n, _, init), out in zip(structure, body(iv, tuple(args))):
                got = flatten_carried(out)[0]
                if len(got) != n or type(out) is not type(init) and n > 1:
                    raise error("a loop-carried block pointer must stay a block pointer of the "
                                "same rank")
                outs += got
            return outs

        flat_out = self._for_loop(lo, hi, step, flat_body, flat_names, flat_inits)
        results, k = [], 0
        for n, rebuild, _ in structure:
            results.append(rebuild(list(flat_out[k:k + n])))
            k += n
        return tuple(results)

    def _for_loop(self, lo, hi, step, body, names, inits):
        lo, hi, step = self._bound(lo, "start"), self._bound(hi, "stop"), self._bound(step, "step")
        inits = list(inits)
        for _attempt in range(4):
            blk = Block()
            self.blocks.append(blk)
            promote = {}
            try:
                iv = Value(next(self._ids), "param", (), _dt.int64, (), "iv")
                blk.params.append(iv)
                args = []
                for name, init in zip(names, inits):
                    if isinstance(init, Tile):
                        p = Value(next(self._ids), "param", (), init.dtype, init.shape, name)
                        blk.params.append(p)
                        args.append(Tile(p, init.dtype, init.shape))
                    else:
                        args.append(init)
                outs = body(Tile(iv, _dt.int64, ()), tuple(args))
                for name, init, out in zip(names, inits, outs):
                    if isinstance(init, Tile):
                        if not isinstance(out, Tile):
                            out = _lift(out, init)
                            if out.shape != init.shape:
                                out = full(init.shape, out, init.dtype)
                        if out.dtype != init.dtype and not isinstance(init.dtype, PtrType) \
                                and out.shape == init.shape and init.h.op in ("const", "full"):
                            promote[name] = out  # e.g. `x = 0` then `x += 0.5` inside the loop
                            continue
                        _check_shapes_equal(name, init, out)
                        blk.yields.append(out.h)
                    elif init is UNDEFINED or out is init or (
                            _is_py_number(init) and type(out) is type(init) and out == init):
                        continue
                    elif isinstance(out, Tile) and _is_py_number(init):
                        promote[name] = out
                    elif _is_py_number(init) and _is_py_number(out):
                        promote[name] = _lift(out)  # a Python counter: carry it as a scalar tile
                    elif out is UNDEFINED:
                        continue
                    else:
                        raise error(f"variable '{name}' is rebound to a different Python value "
                                    f"inside a tile loop ({init!r} before, {out!r} inside); "
                                    "make it a tile")
            finally:
                self.blocks.pop()
            if not promote:
                break
            for i, name in enumerate(names):
                if name in promote:
                    out = promote[name]
                    v = inits[i].h.arg if isinstance(inits[i], Tile) else inits[i]
                    inits[i] = full(out.shape, v, out.dtype) if out.shape else _const(v, out.dtype)
        else:
            raise error("loop-carried variables keep changing type while tracing this loop")
        carried = [i for i in inits if isinstance(i, Tile)]
        loop = self.value("for", [lo, hi, step, *carried], None, (), blk)
        results, k = [], 0
        for init in inits:
            if isinstance(init, Tile):
                r = self.value("result", [Tile(loop, None, ())], init.dtype, init.shape, k)
                results.append(Tile(r, init.dtype, init.shape))
                k += 1
            else:
                results.append(UNDEFINED if init is UNDEFINED else init)
        # names first assigned in the body are not visible after the loop
        return tuple(results)
