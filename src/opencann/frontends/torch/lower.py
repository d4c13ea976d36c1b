"""ATen -> opencann IR: the lowering table for ATen-level FX graphs (what AOTAutograd hands over
after the core ATen decompositions).

Each entry of `LOWERINGS` maps an ATen overload to a function `fn(L, node, *args, **kwargs)` that
emits IR nodes through `L` (a `GraphLowering`) and returns the IR value(s) of the FX node: one
`Value`, a list of them for tuple results, or None. An entry may carry a `when(node)` predicate:
a node it rejects is not lowered and runs in eager PyTorch (see `partition.py`).

Values of two kinds flow through a lowered graph: tensors, and symbolic sizes (`torch.SymInt`),
which are int64 scalars in the IR, so one compiled graph serves every batch or sequence length.

    >>> L = GraphLowering(gm.graph, "model_fw")             # doctest: +SKIP
    >>> graph = L.run()                                      # doctest: +SKIP
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.fx

from ... import dtypes
from ...ir import Graph, TensorType, Value

aten = torch.ops.aten

# The opset the lowered graphs use: Gelu needs 20, everything else here is older.
OPSET = 21

# torch dtype -> opencann dtype, for the dtypes opencann computes in; any other dtype (bfloat16,
# complex, float8...) keeps its nodes in eager PyTorch.
DTYPES = {
    torch.float32: dtypes.float32, torch.float64: dtypes.float64, torch.float16: dtypes.float16,
    torch.int64: dtypes.int64, torch.int32: dtypes.int32, torch.int16: dtypes.int16,
    torch.int8: dtypes.int8, torch.uint8: dtypes.uint8, torch.bool: dtypes.bool_,
}

INT64_MAX = 2**63 - 1


class LoweringError(Exception):
    """A node the table claimed to support turned out not to fit (its message names the node)."""


@dataclass
class Lowering:
    fn: Callable
    when: Callable[[torch.fx.Node], bool] | None = None


LOWERINGS: dict[Any, Lowering] = {}


def lowers(*targets, when: Callable[[torch.fx.Node], bool] | None = None):
    """Register the decorated function as the lowering of each ATen overload in `targets`."""

    def register(fn):
        for t in targets:
            LOWERINGS[t] = Lowering(fn, when)
        return fn

    return register


# -- symbolic sizes --------------------------------------------------------------------------------
def ir_dim(d):
    """A torch size (int or SymInt) as an IR dim: an int, a symbol name, or None for an expression."""
    if isinstance(d, int):
        return d
    if isinstance(d, torch.SymInt):
        expr = d.node.expr
        if expr.is_Integer:
            return int(expr)
        if expr.is_Symbol:
            return str(expr)
    return None


def meta_of(arg):
    return arg.meta.get("val") if isinstance(arg, torch.fx.Node) else arg


def is_symbolic_scalar(v) -> bool:
    return isinstance(v, (torch.SymInt, torch.SymFloat, torch.SymBool))


def ir_type_of(val) -> TensorType:
    """The IR type of an FX value (a FakeTensor, a SymInt or a Python number)."""
    if isinstance(val, torch.Tensor):
        return TensorType(DTYPES[val.dtype], tuple(ir_dim(d) for d in val.shape))
    if isinstance(val, (torch.SymBool, bool)):
        return TensorType(dtypes.bool_, ())
    if isinstance(val, (torch.SymInt, int)):
        return TensorType(dtypes.int64, ())
    if isinstance(val, (torch.SymFloat, float)):
        return TensorType(dtypes.float64, ())
    raise LoweringError(f"no IR type for a {type(val).__name__}")


def _np_dtype(torch_dtype) -> np.dtype:
    return DTYPES[torch_dtype].np


def dtype_supported(val) -> bool:
    """Whether every tensor in `val` (a meta value, possibly a tuple of them) has a dtype opencann runs."""
    if isinstance(val, torch.Tensor):
        return val.dtype in DTYPES
    if isinstance(val, (list, tuple)):
        return all(dtype_supported(v) for v in val)
    return True


# -- the lowering context ------------------------------------------------------------------------------
class GraphLowering:
    """Translates one ATen-level FX graph into an IR `Graph`. `in_vals` gives the meta values of the
    placeholders when their own `meta["val"]` is missing (fused submodules)."""

    def __init__(self, fx_graph: torch.fx.Graph, name: str, in_vals: list | None = None,
                 attrs: dict[str, Any] | None = None):
        self.fx = fx_graph
        self.name = name
        self.g = Graph(name, {"": OPSET})
        self.env: dict[torch.fx.Node, Any] = {}
        self.in_vals = in_vals
        self.attrs = attrs or {}  # get_attr target -> tensor
        self.input_kinds: list[str] = []  # "tensor" | "sym" | "none" per placeholder
        self.output_spec: list[tuple] = []
        self.current = ""  # the FX node being lowered: IR nodes carry its name, so errors point back

    # graph building
    def emit(self, op: str, inputs: list, attrs: dict | None = None, n_out: int = 1, hint: str = ""):
        hint = hint or op.lower()
        names = [self.g.fresh_name(hint if n_out == 1 else f"{hint}_o{i}") for i in range(n_out)]
        outs = self.g.add_node(op, inputs, names, attrs or {}, name=self.current)
        return outs[0] if n_out == 1 else outs

    def const(self, array, hint: str = "c") -> Value:
        return self.g.add_constant(self.g.fresh_name(hint), np.asarray(array))

    def ints(self, seq) -> Value:
        """A list of ints and symbolic sizes (FX nodes) as an int64 vector."""
        seq = list(seq)
        if all(isinstance(s, int) for s in seq):
            return self.const(np.array(seq, dtype=np.int64), "ints")
        parts = []
        for s in seq:
            if isinstance(s, int):
                parts.append(self.const(np.array([s], dtype=np.int64), "int"))
            else:
                parts.append(self.emit("Unsqueeze", [self.sym(s), self.const(np.array([0], np.int64), "ax")]))
        return parts[0] if len(parts) == 1 else self.emit("Concat", parts, {"axis": 0}, hint="shape")

    def sym(self, arg) -> Value:
        """A symbolic size (an FX node or a Python int) as an int64 scalar."""
        if isinstance(arg, (int, bool)):
            return self.const(np.array(arg, dtype=np.int64), "int")
        v = self.env[arg]
        if isinstance(meta_of(arg), torch.Tensor):
            return v
        if ir_type_of(meta_of(arg)).dtype is not dtypes.int64:
            return self.emit("Cast", [v], {"to": dtypes.int64.onnx})
        return v

    def tensor(self, arg, dtype=None) -> Value:
        """The IR value of a tensor argument (an FX node, or a Python number made a constant), cast
        to the torch `dtype` when given."""
        if isinstance(arg, torch.fx.Node):
            v = self.env[arg]
            have = self.dtype(arg)
            if dtype is not None and have != dtype:
                v = self.emit("Cast", [v], {"to": DTYPES[dtype].onnx}, hint="cast")
            return v
        if dtype is None:
            dtype = self.dtype(arg)
        return self.const(np.array(arg, dtype=_np_dtype(dtype)), "scalar")

    def dtype(self, arg):
        """The torch dtype of an argument: a tensor's own, int64/float64/bool for scalars."""
        val = meta_of(arg)
        if isinstance(val, torch.Tensor):
            return val.dtype
        if isinstance(val, (bool, torch.SymBool)):
            return torch.bool
        if isinstance(val, (int, torch.SymInt)):
            return torch.int64
        if isinstance(val, (float, torch.SymFloat)):
            return torch.float64
        raise LoweringError(f"argument {arg!r} has no dtype")

    def rank(self, arg) -> int:
        return meta_of(arg).dim()

    def shape(self, arg) -> list:
        return list(meta_of(arg).shape)

    def shape_of(self, arg) -> Value:
        return self.emit("Shape", [self.tensor(arg)])

    # the translation
    def run(self) -> Graph:
        placeholders = [n for n in self.fx.nodes if n.op == "placeholder"]
        for i, n in enumerate(placeholders):
            val = n.meta.get("val") if self.in_vals is None else self.in_vals[i]
            if val is None:
                self.env[n] = None
                self.input_kinds.append("none")
                continue
            self.env[n] = self.g.add_input(n.name, ir_type_of(val))
            self.input_kinds.append("tensor" if isinstance(val, torch.Tensor) else "sym")
        for n in self.fx.nodes:
            if n.op == "placeholder":
                continue
            if n.op == "get_attr":
                from torch._subclasses.fake_tensor import unset_fake_temporarily

                with unset_fake_temporarily():  # backends compile inside dynamo's fake mode
                    data = self.attrs[n.target].detach().cpu().numpy().copy()
                self.env[n] = self.g.add_constant(self.g.fresh_name(n.name), data)
            elif n.op == "call_function":
                self.env[n] = self.lower_node(n)
            elif n.op == "output":
                self._outputs(n.args[0])
            else:
                raise LoweringError(f"FX node {n.name} ({n.op}) cannot be lowered")
        return self.g

    def lower_node(self, n: torch.fx.Node):
        if n.target is operator.getitem:
            src, idx = n.args
            return self.env[src][idx]
        self.current = n.name
        entry = LOWERINGS.get(n.target)
        if entry is None:
            raise LoweringError(f"node {n.name}: no lowering for {n.target}")
        try:
            out = entry.fn(self, n, *n.args, **n.kwargs)
        except LoweringError:
            raise
        except Exception as e:
            raise LoweringError(f"node {n.name} ({n.target}): {type(e).__name__}: {e}") from e
        return out

    def _outputs(self, outs):
        outs = outs if isinstance(outs, (list, tuple)) else (outs,)
        inputs = [n for n in self.fx.nodes if n.op == "placeholder"]
        for o in outs:
            if o is None:
                self.output_spec.append(("none", None))
            elif not isinstance(o, torch.fx.Node):
                self.output_spec.append(("const", o))
            elif o.op == "placeholder":
                self.output_spec.append(("input", inputs.index(o)))
            else:
                v = self.env[o]
                val = meta_of(o)
                if not isinstance(v, Value):
                    raise LoweringError(f"output {o.name} is not a single value")
                self.g.outputs.append(v)
                self.output_spec.append(("tensor" if isinstance(val, torch.Tensor) else "sym",
                                         v.name, val))


# -- helpers for the table -------------------------------------------------------------------------
def _out_dtype(n):
    val = n.meta["val"]
    return (val[0] if isinstance(val, (tuple, list)) else val).dtype


def _dummy(L, arg):
    val = meta_of(arg)
    if isinstance(val, torch.Tensor):
        return torch.empty((1,) * min(val.dim(), 1), dtype=val.dtype)
    if isinstance(val, (torch.SymInt,)):
        return 1
    if isinstance(val, torch.SymFloat):
        return 1.0
    if isinstance(val, torch.SymBool):
        return True
    return val


def _promoted(L, a, b):
    return torch.result_type(_dummy(L, a), _dummy(L, b))


def _axes(dims, rank):
    if dims is None:
        return list(range(rank))
    if isinstance(dims, int):
        dims = [dims]
    return [d % rank if rank else 0 for d in dims]


def _all_static(seq) -> bool:
    return all(isinstance(s, int) for s in seq)


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


def _as_bool(L, a):
    if L.dtype(a) == torch.bool:
        return L.tensor(a)
    return L.emit("Not", [L.emit("Equal", [L.tensor(a), L.tensor(0, L.dtype(a))])])


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


# -- shapes and views ----------------------------------------------------------------------------
@lowers(aten.view.default, aten._unsafe_view.default, aten.reshape.default)
def _view(L, n, a, size):
    return L.emit("Reshape", [L.tensor(a), L.ints(size)], {"allowzero": 1}, hint="view")


@lowers(aten.permute.default)
def _permute(L, n, a, dims):
    r = L.rank(a)
    return L.emit("Transpose", [L.tensor(a)], {"perm": [d % r for d in dims]}, hint="permute")


@lowers(aten.t.default)
def _t(L, n, a):
    if L.rank(a) < 2:
        return L.emit("Identity", [L.tensor(a)])
    return L.emit("Transpose", [L.tensor(a)], {"perm": [1, 0]})


@lowers(aten.transpose.int)
def _transpose(L, n, a, d0, d1):
    r = L.rank(a)
    perm = list(range(r))
    perm[d0 % r], perm[d1 % r] = perm[d1 % r], perm[d0 % r]
    return L.emit("Transpose", [L.tensor(a)], {"perm": perm})


@lowers(aten.expand.default)
def _expand(L, n, a, size, implicit=False):
    size = [1 if (isinstance(s, int) and s == -1) else s for s in size]
    return L.emit("Expand", [L.tensor(a), L.ints(size)])


@lowers(aten.unsqueeze.default)
def _unsqueeze(L, n, a, dim):
    r = L.rank(a) + 1
    return L.emit("Unsqueeze", [L.tensor(a), L.const(np.array([dim % r], np.int64), "ax")])


@lowers(aten.squeeze.dim, aten.squeeze.dims, aten.squeeze.default)
def _squeeze(L, n, a, dims=None):
    shape = L.shape(a)
    r = len(shape)
    if r == 0:
        return L.emit("Identity", [L.tensor(a)])
    dims = range(r) if dims is None else ([dims] if isinstance(dims, int) else dims)
    # torch squeezes only dims of size 1 and silently keeps the others
    keep = [d % r for d in dims if ir_dim(shape[d % r]) == 1]
    if not keep:
        return L.emit("Identity", [L.tensor(a)])
    return L.emit("Squeeze", [L.tensor(a), L.const(np.array(sorted(keep), np.int64), "ax")])


@lowers(aten.cat.default)
def _cat(L, n, tensors, dim=0):
    dt = _out_dtype(n)
    r = meta_of(n).dim()
    # torch accepts (and skips) 1-D empty tensors next to tensors of any rank
    parts = [t for t in tensors if not (meta_of(t).dim() == 1 and meta_of(t).shape[0] == 0 and r != 1)]
    vals = [L.tensor(t, dt) for t in parts]
    if len(vals) == 1:
        return L.emit("Identity", vals)
    return L.emit("Concat", vals, {"axis": dim % r}, hint="cat")


@lowers(aten.split_with_sizes.default)
def _split_with_sizes(L, n, a, sizes, dim=0):
    r = L.rank(a)
    if len(sizes) == 1:
        return [L.emit("Identity", [L.tensor(a)])]
    return L.emit("Split", [L.tensor(a), L.ints(sizes)], {"axis": dim % r}, n_out=len(sizes), hint="split")


@lowers(aten.split.Tensor, when=lambda n: all(isinstance(ir_dim(t.shape[0 if len(n.args) < 3 else n.args[2]]), int)
                                            for t in n.meta["val"]))
def _split(L, n, a, split_size, dim=0):
    r = L.rank(a)
    sizes = [int(t.shape[dim]) for t in n.meta["val"]]
    if len(sizes) == 1:
        return [L.emit("Identity", [L.tensor(a)])]
    return L.emit("Split", [L.tensor(a), L.ints(sizes)], {"axis": dim % r}, n_out=len(sizes), hint="split")


@lowers(aten.unbind.int)
def _unbind(L, n, a, dim=0):
    r = L.rank(a)
    k = len(n.meta["val"])
    ax = L.const(np.array([dim % r], np.int64), "ax")
    parts = [L.tensor(a)] if k == 1 else L.emit("Split", [L.tensor(a), L.ints([1] * k)], {"axis": dim % r}, n_out=k)
    return [L.emit("Squeeze", [p, ax]) for p in parts]


@lowers(aten.slice.Tensor)
def _slice(L, n, a, dim=0, start=None, end=None, step=1):
    r = L.rank(a)
    start = 0 if start is None else start
    end = INT64_MAX if end is None else end
    if isinstance(end, int):
        end = min(end, INT64_MAX)
    return L.emit("Slice", [L.tensor(a), L.ints([start]), L.ints([end]),
                            L.const(np.array([dim % r], np.int64), "ax"), L.ints([step])], hint="slice")


@lowers(aten.select.int)
def _select(L, n, a, dim, index):
    r = L.rank(a)
    return L.emit("Gather", [L.tensor(a), L.sym(index)], {"axis": dim % r}, hint="select")


@lowers(aten.narrow.default)
def _narrow(L, n, a, dim, start, length):
    r = L.rank(a)
    s = L.sym(start)
    e = L.emit("Add", [s, L.sym(length)])
    ax = L.const(np.array([0], np.int64), "ax")
    return L.emit("Slice", [L.tensor(a), L.emit("Unsqueeze", [s, ax]), L.emit("Unsqueeze", [e, ax]),
                            L.const(np.array([dim % r], np.int64), "ax")])


def _int_indices(n):
    real = [i for i in n.args[1] if i is not None]
    return bool(real) and all(meta_of(i).dtype in (torch.int64, torch.int32) for i in real)


def _stacked_indices(L, a, indices, dims):
    """The index tensors of `dims`, broadcast together, negatives wrapped, stacked on a last axis
    (GatherND / ScatterND indices)."""
    idx = [L.tensor(indices[d], torch.int64) for d in dims]
    zero = L.const(np.array(0, np.int64))
    total = idx[0]
    for v in idx[1:]:
        total = L.emit("Add", [total, L.emit("Mul", [v, zero])])
    total = L.emit("Mul", [total, zero])  # zeros of the broadcast shape
    ax = L.const(np.array([-1], np.int64))
    parts = []
    for d, v in zip(dims, idx):
        size = L.emit("Shape", [L.tensor(a)], {"start": d, "end": d + 1})
        v = L.emit("Where", [L.emit("Less", [v, zero]), L.emit("Add", [v, size]), v])  # negatives from the end
        parts.append(L.emit("Unsqueeze", [L.emit("Add", [v, total]), ax]))
    return L.emit("Concat", parts, {"axis": -1})


@lowers(aten.index.Tensor, when=_int_indices)
def _index(L, n, a, indices):
    """Advanced indexing with integer tensors (boolean masks have data-dependent shapes: eager)."""
    r = L.rank(a)
    indices = list(indices) + [None] * (r - len(indices))
    dims = [d for d, i in enumerate(indices) if i is not None]
    x = L.tensor(a)
    if len(dims) == 1:
        return L.emit("Gather", [x, L.tensor(indices[dims[0]])], {"axis": dims[0]}, hint="index")
    others = [d for d in range(r) if d not in dims]
    if dims != list(range(len(dims))):
        x = L.emit("Transpose", [x], {"perm": dims + others})
    out = L.emit("GatherND", [x, _stacked_indices(L, a, indices, dims)], {"batch_dims": 0}, hint="index")
    adjacent = dims == list(range(dims[0], dims[0] + len(dims)))
    if adjacent and dims[0] > 0:  # torch keeps the indexed block in place when it is contiguous
        nb = meta_of(n).dim() - len(others)
        k = dims[0]
        perm = list(range(nb, nb + k)) + list(range(nb)) + list(range(nb + k, nb + len(others)))
        out = L.emit("Transpose", [out], {"perm": perm})
    return out


@lowers(aten.index_select.default)
def _index_select(L, n, a, dim, index):
    return L.emit("Gather", [L.tensor(a), L.tensor(index)], {"axis": dim % max(L.rank(a), 1)})


@lowers(aten.embedding.default)
def _embedding(L, n, weight, indices, padding_idx=-1, scale_grad=False, sparse=False):
    return L.emit("Gather", [L.tensor(weight), L.tensor(indices)], {"axis": 0}, hint="embedding")


@lowers(aten.gather.default)
def _gather(L, n, a, dim, index, sparse_grad=False):
    return L.emit("GatherElements", [L.tensor(a), L.tensor(index)], {"axis": dim % max(L.rank(a), 1)})


def _same_shape_index(n):
    # ONNX ScatterElements needs indices and updates of one shape (torch allows a bigger src)
    idx, src = meta_of(n.args[2]), meta_of(n.args[3])
    return not isinstance(src, torch.Tensor) or list(idx.shape) == list(src.shape)


@lowers(aten.scatter_add.default, when=_same_shape_index)
def _scatter_add(L, n, a, dim, index, src):
    return L.emit("ScatterElements", [L.tensor(a), L.tensor(index), L.tensor(src, L.dtype(a))],
                  {"axis": dim % L.rank(a), "reduction": "add"})


@lowers(aten.scatter.src, aten.scatter.value, when=_same_shape_index)
def _scatter(L, n, a, dim, index, src):
    if not isinstance(src, torch.fx.Node):
        src_v = L.emit("Expand", [L.tensor(src, L.dtype(a)), L.shape_of(index)])
    else:
        src_v = L.tensor(src, L.dtype(a))
    return L.emit("ScatterElements", [L.tensor(a), L.tensor(index), src_v], {"axis": dim % L.rank(a)})


@lowers(aten.index_put.default, when=_int_indices)
def _index_put(L, n, a, indices, values, accumulate=False):
    r = L.rank(a)
    indices = list(indices) + [None] * (r - len(indices))
    dims = [d for d, i in enumerate(indices) if i is not None]
    others = [d for d in range(r) if d not in dims]
    m, k = len(dims), dims[0]
    x = L.tensor(a)
    perm = dims + others
    if perm != list(range(r)):
        x = L.emit("Transpose", [x], {"perm": perm})
    stacked = _stacked_indices(L, a, indices, dims)
    batch = L.emit("Shape", [stacked], {"end": -1})
    nb = max(L.rank(indices[d]) for d in dims)  # the rank of the broadcast index block
    vals = L.tensor(values, L.dtype(a))
    adjacent = dims == list(range(k, k + m))
    if adjacent and k > 0:
        # torch's values broadcast to x[indices], whose index block sits at dim k: move it first
        full = L.emit("Concat", [L.emit("Shape", [L.tensor(a)], {"end": k}), batch,
                                 L.emit("Shape", [L.tensor(a)], {"start": k + m})], {"axis": 0})
        vals = L.emit("Expand", [vals, full])
        vperm = list(range(k, k + nb)) + list(range(k)) + list(range(k + nb, k + nb + r - k - m))
        vals = L.emit("Transpose", [vals], {"perm": vperm})
    else:
        upd = L.emit("Concat", [batch, L.emit("Shape", [x], {"start": m})], {"axis": 0})
        vals = L.emit("Expand", [vals, upd])
    out = L.emit("ScatterND", [x, stacked, vals], {"reduction": "add" if accumulate else "none"}, hint="index_put")
    if perm != list(range(r)):
        out = L.emit("Transpose", [out], {"perm": [perm.index(d) for d in range(r)]})
    return out


@lowers(aten.constant_pad_nd.default)
def _constant_pad(L, n, a, pad, value=0):
    r = L.rank(a)
    k = len(pad) // 2
    begins, ends = [0] * r, [0] * r
    for i in range(k):  # torch lists (begin, end) pairs from the last dim backwards
        begins[r - 1 - i], ends[r - 1 - i] = pad[2 * i], pad[2 * i + 1]
    if not _all_static(begins + ends):
        raise LoweringError("symbolic padding")
    x = L.tensor(a)
    if any(p > 0 for p in begins + ends):
        grow = [max(p, 0) for p in begins + ends]
        x = L.emit("Pad", [x, L.ints(grow), L.tensor(value, L.dtype(a))], {"mode": "constant"})
    cut = [d for d in range(r) if begins[d] < 0 or ends[d] < 0]
    if cut:  # negative padding crops (the gradient of padding)
        starts = [-min(begins[d], 0) for d in cut]
        stops = [ends[d] if ends[d] < 0 else INT64_MAX for d in cut]
        x = L.emit("Slice", [x, L.ints(starts), L.ints(stops), L.const(np.array(cut, np.int64), "ax")])
    return x if x is not L.env.get(a) else L.emit("Identity", [x])


@lowers(aten.flip.default)
def _flip(L, n, a, dims):
    r = L.rank(a)
    axes = [d % r for d in dims]
    k = len(axes)
    return L.emit("Slice", [L.tensor(a), L.ints([-1] * k), L.ints([-INT64_MAX] * k),
                            L.const(np.array(axes, np.int64), "ax"), L.ints([-1] * k)])


@lowers(aten.triu.default, aten.tril.default)
def _triu(L, n, a, diagonal=0):
    return L.emit("Trilu", [L.tensor(a), L.sym(diagonal)], {"upper": int(n.target is aten.triu.default)})


@lowers(aten.cumsum.default)
def _cumsum(L, n, a, dim, dtype=None):
    dt = _out_dtype(n)
    return L.emit("CumSum", [L.tensor(a, dt), L.const(np.array(dim % max(L.rank(a), 1), np.int64), "ax")])


@lowers(aten.repeat.default)
def _repeat(L, n, a, repeats):
    r = L.rank(a)
    x = L.tensor(a)
    if len(repeats) > r:
        x = L.emit("Reshape", [x, L.ints([1] * (len(repeats) - r) + L.shape(a))], {"allowzero": 1})
    return L.emit("Tile", [x, L.ints(repeats)])


# -- reductions ------------------------------------------------------------------------------------
def _reduce(L, op, x, axes, keepdim):
    attrs = {"keepdims": int(bool(keepdim))}
    if axes is None:
        return L.emit(op, [x], attrs)
    return L.emit(op, [x, L.const(np.array(axes, np.int64), "axes")], attrs)


def _dims(L, a, dims):
    r = L.rank(a)
    if dims is None or (isinstance(dims, (list, tuple)) and len(dims) == 0):
        return None
    return _axes(dims, r)


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


def _count(L, x_val, reduced_val, dt):
    """How many elements each reduction of `x_val` into `reduced_val` (keepdim) covers, as `dt`."""
    total = L.emit("Cast", [L.emit("Size", [x_val])], {"to": DTYPES[dt].onnx})
    part = L.emit("Cast", [L.emit("Size", [reduced_val])], {"to": DTYPES[dt].onnx})
    return L.emit("Div", [total, part])


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


# -- linear algebra and nn -------------------------------------------------------------------------
@lowers(aten.mm.default, aten.bmm.default, aten.matmul.default)
def _mm(L, n, a, b):
    dt = _out_dtype(n)
    return L.emit("MatMul", [L.tensor(a, dt), L.tensor(b, dt)], hint="mm")


@lowers(aten.addmm.default)
def _addmm(L, n, bias, a, b, beta=1, alpha=1):
    dt = _out_dtype(n)
    if not dt.is_floating_point:
        y = L.emit("MatMul", [L.tensor(a, dt), L.tensor(b, dt)])
        return L.emit("Add", [y, L.tensor(bias, dt)])
    return L.emit("Gemm", [L.tensor(a, dt), L.tensor(b, dt), L.tensor(bias, dt)],
                  {"alpha": float(alpha), "beta": float(beta)}, hint="addmm")


@lowers(aten.baddbmm.default)
def _baddbmm(L, n, bias, a, b, beta=1, alpha=1):
    dt = _out_dtype(n)
    y = L.emit("MatMul", [L.tensor(a, dt), L.tensor(b, dt)])
    if alpha != 1:
        y = L.emit("Mul", [y, L.tensor(alpha, dt)])
    c = L.tensor(bias, dt)
    if beta != 1:
        c = L.emit("Mul", [c, L.tensor(beta, dt)])
    return y if beta == 0 else L.emit("Add", [y, c])


def _conv_ok(n):
    return meta_of(n.args[0]).dim() in (3, 4, 5)


@lowers(aten.convolution.default, when=_conv_ok)
def _convolution(L, n, x, w, b, stride, padding, dilation, transposed, output_padding, groups):
    k = L.rank(x) - 2
    stride, padding, dilation = list(stride), list(padding), list(dilation)
    if len(padding) == 1 and k > 1:
        padding = padding * k
    if len(stride) == 1 and k > 1:
        stride = stride * k
    if len(dilation) == 1 and k > 1:
        dilation = dilation * k
    kernel = [int(d) for d in L.shape(w)[2:]]
    attrs = {"strides": stride, "pads": padding + padding, "dilations": dilation, "group": int(groups),
             "kernel_shape": kernel}
    dt = _out_dtype(n)
    ins = [L.tensor(x, dt), L.tensor(w, dt)] + ([L.tensor(b, dt)] if b is not None else [])
    if transposed:
        attrs["output_padding"] = list(output_padding) if len(output_padding) == k else list(output_padding) * k
        return L.emit("ConvTranspose", ins, attrs, hint="convt")
    return L.emit("Conv", ins, attrs, hint="conv")


@lowers(aten._native_batch_norm_legit_no_training.default)
def _batch_norm_eval(L, n, x, w, b, mean, var, momentum, eps):
    dt = _out_dtype(n)
    c = meta_of(x).shape[1]
    ones = lambda v: L.const(np.full((int(c),), v, _np_dtype(dt)), "bn")
    scale = L.tensor(w, dt) if w is not None else ones(1)
    shift = L.tensor(b, dt) if b is not None else ones(0)
    y = L.emit("BatchNormalization", [L.tensor(x, dt), scale, shift, L.tensor(mean, dt), L.tensor(var, dt)],
               {"epsilon": float(eps), "momentum": float(1 - momentum)}, hint="batchnorm")
    empty = L.const(np.zeros((0,), _np_dtype(dt)), "empty")
    return [y, empty, L.const(np.zeros((0,), _np_dtype(dt)), "empty")]


@lowers(aten._native_batch_norm_legit.no_stats, aten._native_batch_norm_legit_functional.default,
        when=lambda n: n.target is aten._native_batch_norm_legit.no_stats or n.args[5])
def _batch_norm_train(L, n, x, w, b, *args):
    # training statistics over (N, *spatial); running stats, when present, updated with momentum
    if n.target is aten._native_batch_norm_legit.no_stats:
        (_, momentum, eps), rm, rv = args, None, None
    else:
        rm, rv, _, momentum, eps = args
    dt = _out_dtype(n)
    r = L.rank(x)
    axes = [0] + list(range(2, r))
    xv = L.tensor(x, dt)
    mean = _reduce(L, "ReduceMean", xv, axes, True)
    d = L.emit("Sub", [xv, mean])
    var = _reduce(L, "ReduceMean", L.emit("Mul", [d, d]), axes, True)
    rstd = L.emit("Reciprocal", [L.emit("Sqrt", [L.emit("Add", [var, L.tensor(eps, dt)])])])
    y = L.emit("Mul", [d, rstd])
    bshape = L.ints([-1] + [1] * (r - 2))
    if w is not None:
        y = L.emit("Mul", [y, L.emit("Reshape", [L.tensor(w, dt), bshape])])
    if b is not None:
        y = L.emit("Add", [y, L.emit("Reshape", [L.tensor(b, dt), bshape])])
    flat = L.ints([-1])
    save_mean = L.emit("Reshape", [mean, flat])
    save_rstd = L.emit("Reshape", [rstd, flat])
    if rm is None:
        return [y, save_mean, save_rstd]
    m = L.tensor(momentum, dt)
    keep = L.tensor(1 - momentum, dt)
    count = _count(L, xv, mean, dt)
    unbiased = L.emit("Mul", [L.emit("Reshape", [var, flat]),
                              L.emit("Div", [count, L.emit("Sub", [count, L.tensor(1, dt)])])])
    new_rm = L.emit("Add", [L.emit("Mul", [L.tensor(rm, dt), keep]), L.emit("Mul", [save_mean, m])])
    new_rv = L.emit("Add", [L.emit("Mul", [L.tensor(rv, dt), keep]), L.emit("Mul", [unbiased, m])])
    return [y, save_mean, save_rstd, new_rm, new_rv]


@lowers(aten.native_layer_norm.default,
        when=lambda n: all(isinstance(ir_dim(d), int) for d in n.args[1]))
def _layer_norm(L, n, x, normalized_shape, w, b, eps):
    dt = _out_dtype(n)
    k = len(normalized_shape)
    shape = [int(d) for d in normalized_shape]
    scale = L.tensor(w, dt) if w is not None else L.const(np.ones(shape, _np_dtype(dt)), "ln_scale")
    ins = [L.tensor(x, dt), scale] + ([L.tensor(b, dt)] if b is not None else [])
    stash = dtypes.float32 if dt in (torch.float16, torch.float32) else DTYPES[dt]
    y, mean, rstd = L.emit("LayerNormalization", ins, {"axis": -k, "epsilon": float(eps), "stash_type": stash.onnx},
                           n_out=3, hint="layernorm")
    if stash is not DTYPES[dt]:
        mean = L.emit("Cast", [mean], {"to": DTYPES[dt].onnx})
        rstd = L.emit("Cast", [rstd], {"to": DTYPES[dt].onnx})
    return [y, mean, rstd]


def _pool_ok(n):
    return meta_of(n.args[0]).dim() == 4


@lowers(aten.max_pool2d_with_indices.default, when=_pool_ok)
def _max_pool(L, n, x, kernel, stride=(), padding=0, dilation=1, ceil_mode=False):
    kernel = list(kernel) if len(kernel) == 2 else list(kernel) * 2
    stride = list(stride) if stride else kernel
    stride = stride if len(stride) == 2 else stride * 2
    padding = [padding] * 2 if isinstance(padding, int) else (list(padding) * 2 if len(padding) == 1 else list(padding))
    dilation = [dilation] * 2 if isinstance(dilation, int) else (list(dilation) * 2 if len(dilation) == 1 else list(dilation))
    xv = L.tensor(x)
    y, idx = L.emit("MaxPool", [xv], {"kernel_shape": kernel, "strides": stride, "pads": padding + padding,
                                      "dilations": dilation, "ceil_mode": int(bool(ceil_mode))}, n_out=2, hint="maxpool")
    # ONNX counts indices over the whole tensor, torch within each (H, W) plane
    hw = L.emit("ReduceProd", [L.emit("Shape", [xv], {"start": 2})], {"keepdims": 0})
    return [y, L.emit("Mod", [idx, hw], {"fmod": 0})]


@lowers(aten.avg_pool2d.default, when=lambda n: _pool_ok(n) and (len(n.args) < 7 or n.args[6] is None))
def _avg_pool(L, n, x, kernel, stride=(), padding=0, ceil_mode=False, count_include_pad=True, divisor_override=None):
    kernel = list(kernel) if len(kernel) == 2 else list(kernel) * 2
    stride = list(stride) if stride else kernel
    stride = stride if len(stride) == 2 else stride * 2
    padding = [padding] * 2 if isinstance(padding, int) else (list(padding) * 2 if len(padding) == 1 else list(padding))
    return L.emit("AveragePool", [L.tensor(x)], {"kernel_shape": kernel, "strides": stride, "pads": padding + padding,
                                                 "ceil_mode": int(bool(ceil_mode)),
                                                 "count_include_pad": int(bool(count_include_pad))})


@lowers(aten._adaptive_avg_pool2d.default, when=lambda n: list(n.args[1]) == [1, 1])
def _adaptive_avg_pool(L, n, x, size):
    return L.emit("GlobalAveragePool", [L.tensor(x)])


@lowers(aten.native_dropout.default, when=lambda n: n.args[1] == 0 or n.args[2] is False)
def _dropout_eval(L, n, x, p, train):
    xv = L.emit("Identity", [L.tensor(x)])
    mask = L.emit("Expand", [L.const(np.array(True)), L.shape_of(x)])
    return [xv, mask]


@lowers(aten.native_dropout_backward.default)
def _dropout_backward(L, n, grad, mask, scale):
    dt = _out_dtype(n)
    m = L.emit("Cast", [L.tensor(mask)], {"to": DTYPES[dt].onnx})
    return L.emit("Mul", [L.emit("Mul", [L.tensor(grad, dt), m]), L.tensor(scale, dt)])


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


# -- attention -----------------------------------------------------------------------------------------
# torch's own decomposition of the CPU flash-attention forward returns the attention weights where the
# backward expects the log-sum-exp, so gradients through it are wrong; `DECOMPOSITION_EXCLUDES` keeps
# the fused op whole and these lowerings give both directions their exact meaning.
DECOMPOSITION_EXCLUDES = (aten._scaled_dot_product_flash_attention_for_cpu.default,)


def _sdpa_ok(n):
    q, k = meta_of(n.args[0]), meta_of(n.args[1])
    dropout = n.args[3] if len(n.args) > 3 else n.kwargs.get("dropout_p", 0.0)
    if n.target is aten._scaled_dot_product_flash_attention_for_cpu_backward.default:
        q, k, dropout = meta_of(n.args[1]), meta_of(n.args[2]), n.args[6]
    heads = [ir_dim(q.shape[1]) if q.dim() == 4 else None, ir_dim(k.shape[1]) if k.dim() == 4 else None]
    return (dropout == 0 and q.dim() == 4 and isinstance(ir_dim(q.shape[-1]), int)
            and all(isinstance(h, int) for h in heads) and heads[0] % heads[1] == 0)


def _groups(q, k) -> int:
    """Query heads per key/value head (grouped-query attention)."""
    return int(meta_of(q).shape[1]) // int(meta_of(k).shape[1])


def _repeat_heads(L, x, x_heads: int, g: int, e: int):
    """[B, Hk, S, E] -> [B, Hk*g, S, E], each head repeated g times in place (repeat_interleave)."""
    if g == 1:
        return x
    x = L.emit("Unsqueeze", [x, L.const(np.array([2], np.int64), "ax")])
    hk = int(x_heads)
    x = L.emit("Expand", [x, L.const(np.array([1, 1, g, 1, 1], np.int64))])
    return L.emit("Reshape", [x, L.const(np.array([0, hk * g, -1, e], np.int64))], hint="gqa")


def _sum_heads(L, dx, g: int, hk: int, e: int):
    """The inverse of `_repeat_heads` for gradients: sum each group of g heads."""
    if g == 1:
        return dx
    dx = L.emit("Reshape", [dx, L.const(np.array([0, hk, g, -1, e], np.int64))])
    return L.emit("ReduceSum", [dx, L.const(np.array([2], np.int64), "axes")], {"keepdims": 0})


def _attention_scores(L, q, k, is_causal, attn_mask, scale, dt):
    """Masked, scaled q @ k^T: [B, H, L, S]."""
    e = int(meta_of(q).shape[-1])
    scale = 1 / math.sqrt(e) if scale is None else scale
    qv = L.tensor(q, dt)
    kv = _repeat_heads(L, L.tensor(k, dt), meta_of(k).shape[1], _groups(q, k), int(meta_of(k).shape[-1]))
    s = L.emit("MatMul", [qv, L.emit("Transpose", [kv], {"perm": [0, 1, 3, 2]})], hint="scores")
    s = L.emit("Mul", [s, L.tensor(scale, dt)])
    if is_causal:  # top-left aligned: query i sees keys j <= i
        zero, one = L.const(np.array(0, np.int64)), L.const(np.array(1, np.int64))
        sq = L.emit("Squeeze", [L.emit("Shape", [qv], {"start": 2, "end": 3}), L.const(np.array([0], np.int64))])
        sk = L.emit("Squeeze", [L.emit("Shape", [kv], {"start": 2, "end": 3}), L.const(np.array([0], np.int64))])
        rows = L.emit("Unsqueeze", [L.emit("Range", [zero, sq, one]), L.const(np.array([1], np.int64))])
        cols = L.emit("Range", [zero, sk, one])
        allowed = L.emit("LessOrEqual", [cols, rows])
        s = L.emit("Where", [allowed, s, L.tensor(-math.inf, dt)])
    if attn_mask is not None:
        if L.dtype(attn_mask) == torch.bool:
            s = L.emit("Where", [L.tensor(attn_mask), s, L.tensor(-math.inf, dt)])
        else:
            s = L.emit("Add", [s, L.tensor(attn_mask, dt)])
    return s, scale


@lowers(aten._scaled_dot_product_flash_attention_for_cpu.default, when=_sdpa_ok)
def _sdpa_flash(L, n, q, k, v, dropout_p=0.0, is_causal=False, *, attn_mask=None, scale=None):
    dt = _out_dtype(n)
    s, _ = _attention_scores(L, q, k, is_causal, attn_mask, scale, dt)
    p = L.emit("Softmax", [s], {"axis": -1})
    vv = _repeat_heads(L, L.tensor(v, dt), meta_of(v).shape[1], _groups(q, v), int(meta_of(v).shape[-1]))
    out = L.emit("MatMul", [p, vv], hint="attention")
    lse = L.emit("ReduceLogSumExp", [s, L.const(np.array([-1], np.int64), "axes")], {"keepdims": 0})
    return [out, L.emit("Cast", [lse], {"to": DTYPES[meta_of(n)[1].dtype].onnx})]


@lowers(aten._scaled_dot_product_flash_attention_for_cpu_backward.default, when=_sdpa_ok)
def _sdpa_flash_backward(L, n, grad_out, q, k, v, out, lse, dropout_p, is_causal, *, attn_mask=None, scale=None):
    dt = _out_dtype(n)
    s, scale = _attention_scores(L, q, k, is_causal, attn_mask, scale, dt)
    lse_v = L.emit("Unsqueeze", [L.tensor(lse, dt), L.const(np.array([-1], np.int64), "ax")])
    p = L.emit("Exp", [L.emit("Sub", [s, lse_v])], hint="probs")
    t = {"perm": [0, 1, 3, 2]}
    g, hk = _groups(q, k), int(meta_of(k).shape[1])
    ek, ev = int(meta_of(k).shape[-1]), int(meta_of(v).shape[-1])
    go, qv = L.tensor(grad_out, dt), L.tensor(q, dt)
    vv, kv = _repeat_heads(L, L.tensor(v, dt), hk, g, ev), _repeat_heads(L, L.tensor(k, dt), hk, g, ek)
    dv = L.emit("MatMul", [L.emit("Transpose", [p], t), go], hint="grad_v")
    dp = L.emit("MatMul", [go, L.emit("Transpose", [vv], t)])
    d = L.emit("ReduceSum", [L.emit("Mul", [go, L.tensor(out, dt)]), L.const(np.array([-1], np.int64), "axes")],
               {"keepdims": 1})
    ds = L.emit("Mul", [p, L.emit("Sub", [dp, d])])
    c = L.tensor(scale, dt)
    dq = L.emit("Mul", [L.emit("MatMul", [ds, kv]), c], hint="grad_q")
    dk = L.emit("Mul", [L.emit("MatMul", [L.emit("Transpose", [ds], t), qv]), c], hint="grad_k")
    return [dq, _sum_heads(L, dk, g, hk, ek), _sum_heads(L, dv, g, hk, ev)]


# -- scatters of views (the gradients of slicing and selecting) -------------------------------------
def _start_of(L, a, dim, start):
    """A non-negative start index along `dim` as an int64 scalar value."""
    if isinstance(start, int) and start >= 0:
        return L.const(np.array(start, np.int64))
    size = L.emit("Squeeze", [L.emit("Shape", [L.tensor(a)], {"start": dim, "end": dim + 1}),
                              L.const(np.array([0], np.int64))])
    s = L.sym(start)
    if isinstance(start, int):  # negative: counts from the end
        return L.emit("Add", [size, s])
    return L.emit("Where", [L.emit("Less", [s, L.const(np.array(0, np.int64))]), L.emit("Add", [size, s]), s])


def _positions(L, src_val, dim: int, rank: int, first, step):
    """int64 indices of src's elements along `dim` (first, first+step, ...), broadcast to src's shape."""
    n = L.emit("Squeeze", [L.emit("Shape", [src_val], {"start": dim, "end": dim + 1}),
                           L.const(np.array([0], np.int64))])
    steps = L.emit("Range", [L.const(np.array(0, np.int64)), n, L.const(np.array(1, np.int64))])
    idx = L.emit("Add", [L.emit("Mul", [steps, L.sym(step)]), first])
    shape = [1] * rank
    shape[dim] = -1
    idx = L.emit("Reshape", [idx, L.const(np.array(shape, np.int64))])
    return L.emit("Expand", [idx, L.emit("Shape", [src_val])])


@lowers(aten.slice_scatter.default,
        when=lambda n: all(isinstance(a, int) or a is None for a in n.args[3:6]))
def _slice_scatter(L, n, a, src, dim=0, start=None, end=None, step=1):
    r = L.rank(a)
    dim = dim % r
    first = _start_of(L, a, dim, 0 if start is None else start)
    srcv = L.tensor(src, L.dtype(a))
    idx = _positions(L, srcv, dim, r, first, step)
    return L.emit("ScatterElements", [L.tensor(a), idx, srcv], {"axis": dim}, hint="slice_scatter")


@lowers(aten.select_scatter.default)
def _select_scatter(L, n, a, src, dim, index):
    r = L.rank(a)
    dim = dim % r
    srcv = L.emit("Unsqueeze", [L.tensor(src, L.dtype(a)), L.const(np.array([dim], np.int64))])
    first = _start_of(L, a, dim, index)
    idx = L.emit("Expand", [first, L.emit("Shape", [srcv])])
    return L.emit("ScatterElements", [L.tensor(a), idx, srcv], {"axis": dim}, hint="select_scatter")


# -- convolution gradients ---------------------------------------------------------------------------
def _conv_backward_ok(n):
    g, x, w = (meta_of(a) for a in n.args[:3])
    static = all(isinstance(ir_dim(d), int) for t in (g, x, w) for d in t.shape[1:])
    return static and not n.args[7] and x.dim() in (3, 4, 5) and int(n.args[9]) <= 8


@lowers(aten.convolution_backward.default, when=_conv_backward_ok)
def _convolution_backward(L, n, grad, x, w, bias_sizes, stride, padding, dilation, transposed,
                          output_padding, groups, output_mask):
    k = L.rank(x) - 2
    stride, padding, dilation = (list(v) * (k if len(v) == 1 else 1) for v in (stride, padding, dilation))
    dt = _out_dtype(n) if n.meta["val"][0] is not None else L.dtype(x)
    in_sp = [int(d) for d in L.shape(x)[2:]]
    out_sp = [int(d) for d in L.shape(grad)[2:]]
    kernel = [int(d) for d in L.shape(w)[2:]]
    gv, xv, wv = L.tensor(grad, dt), L.tensor(x, dt), L.tensor(w, dt)
    results = [None, None, None]
    if output_mask[0]:  # the input gradient: the transposed convolution of the output gradient
        base = [(o - 1) * s - 2 * p + d * (kk - 1) + 1
                for o, s, p, d, kk in zip(out_sp, stride, padding, dilation, kernel)]
        results[0] = L.emit("ConvTranspose", [gv, wv], {
            "strides": stride, "pads": padding + padding, "dilations": dilation, "group": int(groups),
            "kernel_shape": kernel, "output_padding": [i - b for i, b in zip(in_sp, base)]}, hint="grad_input")
    if output_mask[1]:  # the weight gradient: input and output gradient correlated over the batch
        perm = [1, 0] + list(range(2, k + 2))
        co, ci = int(L.shape(w)[0]), int(L.shape(x)[1])
        xs = [xv] if groups == 1 else L.emit("Split", [xv, L.ints([ci // groups] * groups)], {"axis": 1}, n_out=groups)
        gs = [gv] if groups == 1 else L.emit("Split", [gv, L.ints([co // groups] * groups)], {"axis": 1}, n_out=groups)
        parts = []
        for xg, gg in zip(xs, gs):
            c = L.emit("Conv", [L.emit("Transpose", [xg], {"perm": perm}), L.emit("Transpose", [gg], {"perm": perm})],
                       {"strides": dilation, "dilations": stride, "pads": padding + padding, "group": 1,
                        "kernel_shape": out_sp})
            c = L.emit("Slice", [c, L.ints([0] * k), L.ints(kernel), L.const(np.arange(2, k + 2, dtype=np.int64))])
            parts.append(L.emit("Transpose", [c], {"perm": perm}))
        results[1] = parts[0] if len(parts) == 1 else L.emit("Concat", parts, {"axis": 0})
    if output_mask[2]:
        results[2] = L.emit("ReduceSum", [gv, L.const(np.array([0] + list(range(2, k + 2)), np.int64))],
                            {"keepdims": 0}, hint="grad_bias")
    return results


@lowers(aten.max_pool2d_with_indices_backward.default, when=lambda n: meta_of(n.args[1]).dim() == 4)
def _max_pool_backward(L, n, grad, x, kernel, stride, padding, dilation, ceil_mode, indices):
    # each output gradient goes to the input element its window picked (indices within each plane)
    dt = _out_dtype(n)
    flat = L.ints([0, 0, -1])
    zeros = L.emit("Reshape", [L.emit("Expand", [L.tensor(0, dt), L.shape_of(x)]), flat])
    idx = L.emit("Reshape", [L.tensor(indices), flat])
    g = L.emit("Reshape", [L.tensor(grad, dt), flat])
    out = L.emit("ScatterElements", [zeros, idx, g], {"axis": 2, "reduction": "add"})
    return L.emit("Reshape", [out, L.shape_of(x)], hint="grad_maxpool")
