"""Copies, casts and new tensors (full, zeros, arange, ...)."""

from __future__ import annotations

import numpy as np
import torch

from ....ir import Value
from .core import (
    DTYPES,
    _all_static,
    _as_bool,
    _np_dtype,
    _out_dtype,
    aten,
    lowers,
)


# -- copies, casts, constants ---------------------------------------------------------------------
@lowers(aten.clone.default, aten.alias.default, aten.lift_fresh_copy.default, aten.detach.default,
        aten.contiguous.default)
def _identity(L, n, a, *args, **kwargs):
    return L.emit("Identity", [L.tensor(a)], hint="copy")


@lowers(aten._to_copy.default)
def _to_copy(L, n, a, **kwargs):
    dt = _out_dtype(n)
    if L.dtype(a) == dt:
        return L.emit("Identity", [L.tensor(a)], hint="copy")
    if dt == torch.bool:
        return _as_bool(L, a)
    return L.emit("Cast", [L.tensor(a)], {"to": DTYPES[dt].onnx}, hint="cast")


@lowers(aten.copy.default)
def _copy(L, n, dst, src, non_blocking=False):
    v = L.tensor(src, L.dtype(dst))
    return L.emit("Expand", [v, L.shape_of(dst)])


def _filled(L, n, size_arg, value, dt):
    """A tensor of `size_arg` (a list of ints/sym nodes, or a Shape value) filled with `value`."""
    npd = _np_dtype(dt)
    if isinstance(size_arg, Value):
        shape = size_arg
    else:
        if _all_static(size_arg) and not isinstance(value, torch.fx.Node):
            return L.const(np.full(size_arg, value, dtype=npd), "full")
        shape = L.ints(size_arg)
    v = L.tensor(value, dt) if isinstance(value, torch.fx.Node) else L.const(np.array(value, dtype=npd), "fill")
    return L.emit("Expand", [v, shape], hint="full")


def _value_ok(n):
    v = n.args[1] if len(n.args) > 1 else None
    return not isinstance(v, complex)


@lowers(aten.full.default, when=_value_ok)
def _full(L, n, size, value, **kwargs):
    return _filled(L, n, list(size), value, _out_dtype(n))


@lowers(aten.full_like.default, when=_value_ok)
def _full_like(L, n, a, value, **kwargs):
    shape = L.shape(a)
    if _all_static(shape):
        return _filled(L, n, shape, value, _out_dtype(n))
    return _filled(L, n, L.shape_of(a), value, _out_dtype(n))


@lowers(aten.zeros_like.default, aten.ones_like.default, aten.empty_like.default)
def _zeros_like(L, n, a, **kwargs):
    value = 1 if n.target is aten.ones_like.default else 0
    shape = L.shape(a)
    return _filled(L, n, shape if _all_static(shape) else L.shape_of(a), value, _out_dtype(n))


@lowers(aten.zeros.default, aten.ones.default, aten.empty.memory_format)
def _zeros(L, n, size, **kwargs):
    return _filled(L, n, list(size), 1 if n.target is aten.ones.default else 0, _out_dtype(n))


@lowers(aten.new_zeros.default, aten.new_ones.default, aten.new_empty.default)
def _new_zeros(L, n, a, size, **kwargs):
    return _filled(L, n, list(size), 1 if n.target is aten.new_ones.default else 0, _out_dtype(n))


@lowers(aten.new_full.default)
def _new_full(L, n, a, size, value, **kwargs):
    return _filled(L, n, list(size), value, _out_dtype(n))


@lowers(aten.scalar_tensor.default)
def _scalar_tensor(L, n, value, **kwargs):
    dt = _out_dtype(n)
    if isinstance(value, torch.fx.Node):
        return L.tensor(value, dt)
    return L.const(np.array(value, dtype=_np_dtype(dt)), "scalar")


@lowers(aten.arange.start_step, aten.arange.default, aten.arange.start)
def _arange(L, n, *args, **kwargs):
    dt = _out_dtype(n)
    if n.target is aten.arange.default:
        start, end, step = 0, args[0], 1
    else:
        start, end = args[0], args[1]
        step = args[2] if len(args) > 2 else 1
    if not any(isinstance(x, torch.fx.Node) for x in (start, end, step)):
        return L.const(np.arange(start, end, step).astype(_np_dtype(dt)), "arange")
    return L.emit("Range", [L.tensor(start, dt), L.tensor(end, dt), L.tensor(step, dt)])
