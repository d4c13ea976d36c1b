"""Reductions, statistics and softmax."""

from __future__ import annotations

import numpy as np

from .... import dtypes
from .core import (
    _as_bool,
    _count,
    _dims,
    _out_dtype,
    _reduce,
    aten,
    lowers,
)

# -- reductions ------------------------------------------------------------------------------------




@lowers(aten.sum.dim_IntList, aten.sum.default)
def _sum(L, n, a, dims=None, keepdim=False, dtype=None):
    dt = _out_dtype(n)
    if L.rank(a) == 0:
        return L.tensor(a, dt) if L.dtype(a) != dt else L.emit("Identity", [L.tensor(a)])
    return _reduce(L, "ReduceSum", L.tensor(a, dt), _dims(L, a, dims), keepdim)


@lowers(aten.mean.dim, aten.mean.default)
def _mean(L, n, a, dims=None, keepdim=False, dtype=None):
    dt = _out_dtype(n)
    if L.rank(a) == 0:
        return L.emit("Identity", [L.tensor(a, dt)])
    return _reduce(L, "ReduceMean", L.tensor(a, dt), _dims(L, a, dims), keepdim)


@lowers(aten.prod.dim_int, aten.prod.default)
def _prod(L, n, a, dim=None, keepdim=False, dtype=None):
    dt = _out_dtype(n)
    if L.rank(a) == 0:
        return L.emit("Identity", [L.tensor(a, dt)])
    return _reduce(L, "ReduceProd", L.tensor(a, dt), _dims(L, a, dim), keepdim)


@lowers(aten.amax.default, aten.amin.default)
def _amax(L, n, a, dims=(), keepdim=False):
    op = "ReduceMax" if n.target is aten.amax.default else "ReduceMin"
    if L.rank(a) == 0:
        return L.emit("Identity", [L.tensor(a)])
    return _reduce(L, op, L.tensor(a), _dims(L, a, dims), keepdim)


@lowers(aten.max.dim, aten.min.dim)
def _max_dim(L, n, a, dim, keepdim=False):
    r = L.rank(a)
    x = L.tensor(a)
    red, arg = ("ReduceMax", "ArgMax") if n.target is aten.max.dim else ("ReduceMin", "ArgMin")
    if r == 0:
        return [L.emit("Identity", [x]), L.const(np.array(0, np.int64))]
    values = _reduce(L, red, x, [dim % r], keepdim)
    index = L.emit(arg, [x], {"axis": dim % r, "keepdims": int(bool(keepdim)), "select_last_index": 0})
    return [values, index]


@lowers(aten.max.default, aten.min.default)
def _max_all(L, n, a):
    return _reduce(L, "ReduceMax" if n.target is aten.max.default else "ReduceMin", L.tensor(a), None, False)


@lowers(aten.argmax.default, aten.argmin.default)
def _argmax(L, n, a, dim=None, keepdim=False):
    op = "ArgMax" if n.target is aten.argmax.default else "ArgMin"
    x = L.tensor(a)
    if dim is None:
        x = L.emit("Reshape", [x, L.ints([-1])])
        out = L.emit(op, [x], {"axis": 0, "keepdims": 0})
        if keepdim:
            out = L.emit("Reshape", [out, L.ints([1] * L.rank(a))])
        return out
    return L.emit(op, [x], {"axis": dim % max(L.rank(a), 1), "keepdims": int(bool(keepdim))})


@lowers(aten.any.dim, aten.any.dims, aten.any.default, aten.all.dim, aten.all.dims, aten.all.default)
def _any(L, n, a, dims=None, keepdim=False):
    is_any = n.target in (aten.any.dim, aten.any.dims, aten.any.default)
    x = L.emit("Cast", [_as_bool(L, a)], {"to": dtypes.int64.onnx})
    if L.rank(a) == 0:
        red = x
    else:
        red = _reduce(L, "ReduceMax" if is_any else "ReduceMin", x, _dims(L, a, dims), keepdim)
    return L.emit("Cast", [red], {"to": dtypes.bool_.onnx})




def _var_mean(L, n, a, dims, correction, keepdim):
    dt = _out_dtype(n)
    x = L.tensor(a, dt)
    axes = _dims(L, a, dims)
    mean_k = _reduce(L, "ReduceMean", x, axes, True)
    d = L.emit("Sub", [x, mean_k])
    ss = _reduce(L, "ReduceSum", L.emit("Mul", [d, d]), axes, keepdim)
    count = _count(L, x, mean_k, dt)
    corr = 1 if correction is None else correction
    var = L.emit("Div", [ss, L.emit("Sub", [count, L.tensor(corr, dt)])])
    mean = mean_k if keepdim else _reduce(L, "ReduceMean", x, axes, False)
    return var, mean


@lowers(aten.var_mean.correction)
def _var_mean_lower(L, n, a, dims=None, *, correction=None, keepdim=False):
    return list(_var_mean(L, n, a, dims, correction, keepdim))


@lowers(aten.var.correction)
def _var_lower(L, n, a, dims=None, *, correction=None, keepdim=False):
    return _var_mean(L, n, a, dims, correction, keepdim)[0]


@lowers(aten.linalg_vector_norm.default, when=lambda n: (n.args[1] if len(n.args) > 1 else 2) in (1, 2))
def _vector_norm(L, n, a, ord=2, dim=None, keepdim=False, dtype=None):
    x = L.tensor(a, _out_dtype(n))
    return _reduce(L, "ReduceL2" if ord == 2 else "ReduceL1", x, _dims(L, a, dim), keepdim)


@lowers(aten._softmax.default)
def _softmax(L, n, a, dim, half_to_float=False):
    return L.emit("Softmax", [L.tensor(a, _out_dtype(n))], {"axis": dim % max(L.rank(a), 1)})


@lowers(aten._log_softmax.default)
def _log_softmax(L, n, a, dim, half_to_float=False):
    return L.emit("LogSoftmax", [L.tensor(a, _out_dtype(n))], {"axis": dim % max(L.rank(a), 1)})


@lowers(aten._softmax_backward_data.default)
def _softmax_backward(L, n, grad, out, dim, input_dtype):
    dt = _out_dtype(n)
    g, y = L.tensor(grad, dt), L.tensor(out, dt)
    gy = L.emit("Mul", [g, y])
    s = _reduce(L, "ReduceSum", gy, [dim % L.rank(out)], True)
    return L.emit("Sub", [gy, L.emit("Mul", [y, s])])


@lowers(aten._log_softmax_backward_data.default)
def _log_softmax_backward(L, n, grad, out, dim, input_dtype):
    dt = _out_dtype(n)
    g, y = L.tensor(grad, dt), L.tensor(out, dt)
    s = _reduce(L, "ReduceSum", g, [dim % L.rank(out)], True)
    return L.emit("Sub", [g, L.emit("Mul", [L.emit("Exp", [y]), s])])
