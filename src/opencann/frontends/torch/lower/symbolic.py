"""Symbolic sizes (`torch.SymInt` arithmetic as int64 scalars) and ops that compute nothing."""

from __future__ import annotations

import operator

import numpy as np
import torch

from .... import dtypes
from .core import (
    LOWERINGS,
    Lowering,
    aten,
    lowers,
    meta_of,
)


# -- symbolic sizes and no-ops -------------------------------------------------------------------------
@lowers(aten.sym_size.int)
def _sym_size(L, n, a, dim):
    r = L.rank(a)
    d = dim % r
    s = L.emit("Shape", [L.tensor(a)], {"start": d, "end": d + 1}, hint="size")
    return L.emit("Squeeze", [s, L.const(np.array([0], np.int64), "ax")], hint="size")


@lowers(aten.sym_numel.default)
def _sym_numel(L, n, a):
    return L.emit("Size", [L.tensor(a)], hint="numel")


_SYM_BINARY = {operator.add: "Add", operator.sub: "Sub", operator.mul: "Mul", operator.floordiv: "Div",
               operator.mod: "Mod"}


def _sym_binary(L, n, a, b):
    op = _SYM_BINARY[n.target]
    x, y = L.sym(a), L.sym(b)
    if op == "Div":  # floor division of sizes, which may be negative in index arithmetic
        q = L.emit("Div", [L.emit("Cast", [x], {"to": dtypes.float64.onnx}),
                           L.emit("Cast", [y], {"to": dtypes.float64.onnx})])
        return L.emit("Cast", [L.emit("Floor", [q])], {"to": dtypes.int64.onnx})
    return L.emit(op, [x, y], {"fmod": 0} if op == "Mod" else None, hint="sym")


def _int_operands(n):
    return isinstance(meta_of(n), (torch.SymInt, int)) and all(
        isinstance(meta_of(a), (torch.SymInt, int)) for a in n.args)


for _t in _SYM_BINARY:
    LOWERINGS[_t] = Lowering(_sym_binary, _int_operands)


@lowers(operator.neg, when=_int_operands)
def _sym_neg(L, n, a):
    return L.emit("Neg", [L.sym(a)])


@lowers(torch.sym_max, torch.sym_min, when=_int_operands)
def _sym_max(L, n, a, b):
    return L.emit("Max" if n.target is torch.sym_max else "Min", [L.sym(a), L.sym(b)])


_NO_OPS = [aten._assert_scalar.default, aten.sym_constrain_range_for_size.default,
           aten._assert_tensor_metadata.default]


@lowers(*_NO_OPS)
def _no_op(L, n, *args, **kwargs):
    return None
