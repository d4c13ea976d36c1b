"""Elementwise arithmetic, comparisons, logic and activations (and their gradients)."""

from __future__ import annotations

import math

import torch

from .core import (
    DTYPES,
    LoweringError,
    _as_bool,
    _out_dtype,
    _promoted,
    aten,
    lowers,
)

# -- elementwise -------------------------------------------------------------------------------------
_BINARY = {
    aten.add.Tensor: "Add", aten.add.Scalar: "Add", aten.sub.Tensor: "Sub", aten.sub.Scalar: "Sub",
    aten.mul.Tensor: "Mul", aten.mul.Scalar: "Mul", aten.div.Tensor: "Div", aten.div.Scalar: "Div",
    aten.maximum.default: "Max", aten.minimum.default: "Min",
    aten.pow.Tensor_Scalar: "Pow", aten.pow.Tensor_Tensor: "Pow", aten.pow.Scalar: "Pow",
    aten.fmod.Tensor: "Mod", aten.fmod.Scalar: "Mod",
}


def _binary(L, n, a, b, alpha=1):
    op = _BINARY[n.target]
    dt = _out_dtype(n)
    if op == "Pow" and dt.is_floating_point and not isinstance(b, torch.fx.Node):
        if b in (2, 3, 4):  # small integral powers as products (np.power with a float exponent is slow)
            x = L.tensor(a, dt)
            y = L.emit("Mul", [x, x], hint="square")
            return y if b == 2 else L.emit("Mul", [y, x if b == 3 else y], hint="power")
        if b == 0.5:
            return L.emit("Sqrt", [L.tensor(a, dt)])
        if b == 1:
            return L.emit("Identity", [L.tensor(a, dt)])
    x, y = L.tensor(a, dt), L.tensor(b, dt)
    if alpha != 1:
        y = L.emit("Mul", [y, L.tensor(alpha, dt)])
    attrs = {"fmod": 1} if op == "Mod" else None
    if op == "Div" and not dt.is_floating_point:
        raise LoweringError("integer true division")
    return L.emit(op, [x, y], attrs, hint=op.lower())


lowers(*_BINARY, when=lambda n: not (n.target in (aten.fmod.Tensor, aten.fmod.Scalar)
                                     and not _out_dtype(n).is_floating_point))(_binary)


@lowers(aten.rsub.Scalar, aten.rsub.Tensor)
def _rsub(L, n, a, b, alpha=1):
    dt = _out_dtype(n)
    x, y = L.tensor(a, dt), L.tensor(b, dt)
    if alpha != 1:
        x = L.emit("Mul", [x, L.tensor(alpha, dt)])
    return L.emit("Sub", [y, x])


def _div_mode_ok(n):
    return n.kwargs.get("rounding_mode", n.args[2] if len(n.args) > 2 else None) in (None, "floor", "trunc")


@lowers(aten.div.Tensor_mode, aten.div.Scalar_mode, when=_div_mode_ok)
def _div_mode(L, n, a, b, rounding_mode=None):
    dt = _out_dtype(n)
    if dt.is_floating_point:
        q = L.emit("Div", [L.tensor(a, dt), L.tensor(b, dt)])
    else:
        q = L.emit("Div", [L.tensor(a, torch.float64), L.tensor(b, torch.float64)])
    if rounding_mode == "floor":
        q = L.emit("Floor", [q])
    elif rounding_mode == "trunc":
        q = L.emit("Mul", [L.emit("Sign", [q]), L.emit("Floor", [L.emit("Abs", [q])])])
    if not dt.is_floating_point:
        q = L.emit("Cast", [q], {"to": DTYPES[dt].onnx})
    return q


@lowers(aten.remainder.Tensor, aten.remainder.Scalar)
def _remainder(L, n, a, b):
    dt = _out_dtype(n)
    x, y = L.tensor(a, dt), L.tensor(b, dt)
    if dt.is_floating_point:  # Python's modulo: the sign of the divisor
        q = L.emit("Floor", [L.emit("Div", [x, y])])
        return L.emit("Sub", [x, L.emit("Mul", [q, y])])
    return L.emit("Mod", [x, y], {"fmod": 0})


_COMPARE = {
    aten.eq.Tensor: "Equal", aten.eq.Scalar: "Equal", aten.ne.Tensor: "NotEqual",
    aten.ne.Scalar: "NotEqual", aten.lt.Tensor: "Less", aten.lt.Scalar: "Less",
    aten.le.Tensor: "LessOrEqual", aten.le.Scalar: "LessOrEqual", aten.gt.Tensor: "Greater",
    aten.gt.Scalar: "Greater", aten.ge.Tensor: "GreaterOrEqual", aten.ge.Scalar: "GreaterOrEqual",
}


@lowers(*_COMPARE)
def _compare(L, n, a, b):
    op = _COMPARE[n.target]
    dt = _promoted(L, a, b)
    x, y = L.tensor(a, dt), L.tensor(b, dt)
    if op == "NotEqual":
        return L.emit("Not", [L.emit("Equal", [x, y])])
    return L.emit(op, [x, y], hint=op.lower())


_LOGICAL = {aten.logical_and.default: "And", aten.logical_or.default: "Or", aten.logical_xor.default: "Xor"}


@lowers(*_LOGICAL)
def _logical(L, n, a, b):
    x = _as_bool(L, a)
    y = _as_bool(L, b)
    return L.emit(_LOGICAL[n.target], [x, y])




@lowers(aten.logical_not.default)
def _logical_not(L, n, a):
    return L.emit("Not", [_as_bool(L, a)])


_BITWISE = {aten.bitwise_and.Tensor: ("And", "BitwiseAnd"), aten.bitwise_and.Scalar: ("And", "BitwiseAnd"),
            aten.bitwise_or.Tensor: ("Or", "BitwiseOr"), aten.bitwise_or.Scalar: ("Or", "BitwiseOr"),
            aten.bitwise_xor.Tensor: ("Xor", "BitwiseXor"), aten.bitwise_xor.Scalar: ("Xor", "BitwiseXor")}


@lowers(*_BITWISE)
def _bitwise(L, n, a, b):
    dt = _out_dtype(n)
    op = _BITWISE[n.target][0 if dt == torch.bool else 1]
    return L.emit(op, [L.tensor(a, dt), L.tensor(b, dt)])


@lowers(aten.bitwise_not.default)
def _bitwise_not(L, n, a):
    return L.emit("Not" if L.dtype(a) == torch.bool else "BitwiseNot", [L.tensor(a)])


_UNARY = {
    aten.neg.default: "Neg", aten.abs.default: "Abs", aten.exp.default: "Exp", aten.log.default: "Log",
    aten.sqrt.default: "Sqrt", aten.sin.default: "Sin", aten.cos.default: "Cos", aten.tanh.default: "Tanh",
    aten.sigmoid.default: "Sigmoid", aten.relu.default: "Relu", aten.erf.default: "Erf",
    aten.reciprocal.default: "Reciprocal", aten.floor.default: "Floor", aten.ceil.default: "Ceil",
    aten.round.default: "Round", aten.sign.default: "Sign", aten.isnan.default: "IsNaN",
    aten.tan.default: "Tan", aten.asin.default: "Asin", aten.acos.default: "Acos", aten.atan.default: "Atan",
    aten.sinh.default: "Sinh", aten.cosh.default: "Cosh", aten.asinh.default: "Asinh",
    aten.acosh.default: "Acosh", aten.atanh.default: "Atanh",
}


@lowers(*_UNARY)
def _unary(L, n, a):
    op = _UNARY[n.target]
    x = L.tensor(a)
    if op not in ("IsNaN", "Neg", "Abs", "Sign", "Relu") and not L.dtype(a).is_floating_point:
        x = L.tensor(a, _out_dtype(n))
    return L.emit(op, [x], hint=op.lower())


@lowers(aten.rsqrt.default)
def _rsqrt(L, n, a):
    return L.emit("Reciprocal", [L.emit("Sqrt", [L.tensor(a, _out_dtype(n))])], hint="rsqrt")


@lowers(aten.log1p.default)
def _log1p(L, n, a):
    dt = _out_dtype(n)
    return L.emit("Log", [L.emit("Add", [L.tensor(a, dt), L.tensor(1, dt)])])


@lowers(aten.expm1.default)
def _expm1(L, n, a):
    dt = _out_dtype(n)
    return L.emit("Sub", [L.emit("Exp", [L.tensor(a, dt)]), L.tensor(1, dt)])


@lowers(aten.trunc.default)
def _trunc(L, n, a):
    x = L.tensor(a)
    return L.emit("Mul", [L.emit("Sign", [x]), L.emit("Floor", [L.emit("Abs", [x])])])


@lowers(aten.isinf.default)
def _isinf(L, n, a):
    return L.emit("IsInf", [L.tensor(a)])


@lowers(aten.gelu.default)
def _gelu(L, n, a, approximate="none"):
    return L.emit("Gelu", [L.tensor(a)], {"approximate": approximate})


@lowers(aten.silu.default)
def _silu(L, n, a):
    x = L.tensor(a)
    return L.emit("Mul", [x, L.emit("Sigmoid", [x])], hint="silu")


@lowers(aten.leaky_relu.default)
def _leaky_relu(L, n, a, negative_slope=0.01):
    return L.emit("LeakyRelu", [L.tensor(a)], {"alpha": float(negative_slope)})


@lowers(aten.elu.default, when=lambda n: len(n.args) < 3 or n.args[2] == 1)
def _elu(L, n, a, alpha=1.0, scale=1, input_scale=1):
    return L.emit("Elu", [L.tensor(a)], {"alpha": float(alpha)})


@lowers(aten.hardtanh.default)
def _hardtanh(L, n, a, lo=-1.0, hi=1.0):
    dt = L.dtype(a)
    return L.emit("Clip", [L.tensor(a), L.tensor(lo, dt), L.tensor(hi, dt)])


@lowers(aten.clamp.default, aten.clamp.Tensor)
def _clamp(L, n, a, lo=None, hi=None):
    dt = _out_dtype(n)
    x = L.tensor(a, dt)
    if lo is not None:
        x = L.emit("Max", [x, L.tensor(lo, dt)])
    if hi is not None:
        x = L.emit("Min", [x, L.tensor(hi, dt)])
    return x


@lowers(aten.clamp_min.default, aten.clamp_min.Tensor)
def _clamp_min(L, n, a, lo):
    dt = _out_dtype(n)
    return L.emit("Max", [L.tensor(a, dt), L.tensor(lo, dt)])


@lowers(aten.clamp_max.default, aten.clamp_max.Tensor)
def _clamp_max(L, n, a, hi):
    dt = _out_dtype(n)
    return L.emit("Min", [L.tensor(a, dt), L.tensor(hi, dt)])


@lowers(aten.where.self, aten.where.ScalarSelf, aten.where.ScalarOther, aten.where.Scalar)
def _where(L, n, cond, a, b):
    dt = _out_dtype(n)
    return L.emit("Where", [_as_bool(L, cond), L.tensor(a, dt), L.tensor(b, dt)])


@lowers(aten.masked_fill.Scalar, aten.masked_fill.Tensor)
def _masked_fill(L, n, a, mask, value):
    dt = _out_dtype(n)
    return L.emit("Where", [_as_bool(L, mask), L.tensor(value, dt), L.tensor(a, dt)])


@lowers(aten.threshold_backward.default)
def _threshold_backward(L, n, grad, x, threshold):
    dt = _out_dtype(n)
    keep = L.emit("Greater", [L.tensor(x), L.tensor(threshold, L.dtype(x))])
    return L.emit("Where", [keep, L.tensor(grad, dt), L.tensor(0, dt)])


@lowers(aten.gelu_backward.default)
def _gelu_backward(L, n, grad, a, approximate="none"):
    dt = _out_dtype(n)
    x, g = L.tensor(a, dt), L.tensor(grad, dt)
    c = lambda v: L.tensor(v, dt)
    if approximate == "tanh":
        k = math.sqrt(2 / math.pi)
        x2 = L.emit("Mul", [x, x])
        inner = L.emit("Mul", [c(k), L.emit("Add", [x, L.emit("Mul", [c(0.044715), L.emit("Mul", [x2, x])])])])
        t = L.emit("Tanh", [inner])
        left = L.emit("Mul", [c(0.5), L.emit("Add", [c(1), t])])
        dinner = L.emit("Mul", [c(k), L.emit("Add", [c(1), L.emit("Mul", [c(3 * 0.044715), x2])])])
        sech2 = L.emit("Sub", [c(1), L.emit("Mul", [t, t])])
        right = L.emit("Mul", [L.emit("Mul", [c(0.5), x]), L.emit("Mul", [sech2, dinner])])
        return L.emit("Mul", [g, L.emit("Add", [left, right])])
    cdf = L.emit("Mul", [c(0.5), L.emit("Add", [c(1), L.emit("Erf", [L.emit("Mul", [x, c(1 / math.sqrt(2))])])])])
    pdf = L.emit("Mul", [c(1 / math.sqrt(2 * math.pi)),
                         L.emit("Exp", [L.emit("Mul", [c(-0.5), L.emit("Mul", [x, x])])])])
    return L.emit("Mul", [g, L.emit("Add", [cdf, L.emit("Mul", [x, pdf])])])


@lowers(aten.tanh_backward.default)
def _tanh_backward(L, n, grad, y):
    dt = _out_dtype(n)
    yv = L.tensor(y, dt)
    return L.emit("Mul", [L.tensor(grad, dt), L.emit("Sub", [L.tensor(1, dt), L.emit("Mul", [yv, yv])])])


@lowers(aten.sigmoid_backward.default)
def _sigmoid_backward(L, n, grad, y):
    dt = _out_dtype(n)
    yv = L.tensor(y, dt)
    return L.emit("Mul", [L.tensor(grad, dt), L.emit("Mul", [yv, L.emit("Sub", [L.tensor(1, dt), yv])])])
