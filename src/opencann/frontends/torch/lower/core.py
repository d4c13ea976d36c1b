"""The lowering context (`GraphLowering`), the table (`LOWERINGS`, `lowers`) and the helpers the
lowerings share."""

from __future__ import annotations

import operator
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.fx

from .... import dtypes
from ....ir import Graph, TensorType, Value

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
    def emit(self, op: str, inputs: list, attrs: dict | None = None, n_out: int = 1, hint: str = "",
             domain: str = ""):
        hint = hint or op.lower()
        names = [self.g.fresh_name(hint if n_out == 1 else f"{hint}_o{i}") for i in range(n_out)]
        outs = self.g.add_node(op, inputs, names, attrs or {}, name=self.current, domain=domain)
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
        except LoweringError as e:
            e.fx_node = getattr(e, "fx_node", None) or n.name  # the node that goes to eager on a retry
            raise
        except Exception as e:
            err = LoweringError(f"node {n.name} ({n.target}): {type(e).__name__}: {e}")
            err.fx_node = n.name
            raise err from e
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
                                         v.name, val, o.name))


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


# -- shared by several families ------------------------------------------------------------------
def _as_bool(L, a):
    if L.dtype(a) == torch.bool:
        return L.tensor(a)
    return L.emit("Not", [L.emit("Equal", [L.tensor(a), L.tensor(0, L.dtype(a))])])


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


def _count(L, x_val, reduced_val, dt):
    """How many elements each reduction of `x_val` into `reduced_val` (keepdim) covers, as `dt`."""
    total = L.emit("Cast", [L.emit("Size", [x_val])], {"to": DTYPES[dt].onnx})
    part = L.emit("Cast", [L.emit("Size", [reduced_val])], {"to": DTYPES[dt].onnx})
    return L.emit("Div", [total, part])
