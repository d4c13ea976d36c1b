"""Lowering of single nodes to the `cpu` backend: a table op -> function(node, attrs) that returns a
`Lowered` step (a callable over the node's runtime inputs, calling the tile-language kernels'
launchers) or a string saying why the node does not fit (it then runs its NumPy reference).

Fused groups (GEMM epilogues, elementwise chains, attention) are built in `fusion.py`; this table
covers what runs one node per kernel.

    >>> low = lower(node, attrs)                     # doctest: +SKIP
    >>> low.fn(x, w) if isinstance(low, Lowered) else print("falls back:", low)  # doctest: +SKIP
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from .. import dtypes
from ..ir import Node, TensorType, Value
from ..ops.math.kernels import gemm as gemm_k
from ..ops.math.kernels import reduce as reduce_k
from ..ops.nn.kernels import conv as conv_k
from ..ops.nn.kernels import normalization as norm_k
from ..ops.nn.kernels import pool as pool_k
from ..ops.nn.kernels import softmax as softmax_k
from ..ops.tensor.kernels import scatter as scatter_k
from ..runtime.host import release_file_pages
from .launch import Checked, Prepared

__all__ = ["LOWERINGS", "Lowered", "MatMulPlan", "const_of", "is_f32", "lower", "matmul_plan"]


@dataclass
class Lowered:
    """A node (or fused group) made into one step: `fn(*arrays of inputs) -> tuple of outputs`."""

    fn: Callable
    inputs: list[Value]
    kernel: str
    outputs: int = 1  # how many of the node's outputs `fn` returns


def is_f32(v: Value | None) -> bool:
    return v is not None and isinstance(v.type, TensorType) and v.type.dtype == dtypes.float32


def const_of(v: Value | None):
    return None if v is None else v.const


def _rank(v: Value) -> int | None:
    return None if not isinstance(v.type, TensorType) or v.type.shape is None else len(v.type.shape)


def _f32_all(node: Node, n_in: int | None = None) -> str | None:
    ins = [v for v in node.inputs[:n_in] if v is not None]
    bad = [v for v in ins + node.outputs[:1] if not is_f32(v)]
    if bad:
        return f"needs float32, has {', '.join(repr(v.type) for v in bad)}"
    return None


# --- MatMul / Gemm ------------------------------------------------------------------------------
@dataclass
class MatMulPlan:
    """How a MatMul/Gemm maps onto the GEMM kernel: `a` (runtime) times `b` (constant, already
    transposed and scaled, possibly a strided view of the graph's constant; or a runtime value),
    plus an optional constant bias (N,) and a runtime addend `c` (Gemm's C when it is not a
    vector)."""

    a: Value
    b: Value | None          # runtime B, or None when `b_const` holds it
    b_const: np.ndarray | None
    bias: np.ndarray | None
    c: Value | None
    trans_a: bool = False
    trans_b: bool = False   # a runtime B given as (N, K) (Gemm's transB)
    c_bias: bool = False    # the runtime C is one value per output column
    gemm2d: bool = False    # a Gemm with a runtime B: 2-d operands, transposes as kernel flags


def matmul_plan(node: Node, attrs: dict) -> MatMulPlan | str:
    """The GEMM form of a MatMul or Gemm node, or why it has none."""
    bad = _f32_all(node, 2)
    if bad:
        return bad
    a, b = node.inputs[0], node.inputs[1]
    if node.op == "MatMul":
        ra, rb = _rank(a), _rank(b)
        if ra is None or rb is None:
            return "operand ranks unknown"
        if ra < 2 or rb < 2:
            return "1-d operand (vector product)"
        bc = const_of(b)
        if bc is not None and rb == 2:
            return MatMulPlan(a, None, np.asarray(bc, np.float32), None, None)
        if ra != rb:
            return "batched operands of different ranks"
        sa, sb = a.type.shape[:-2], b.type.shape[:-2]
        if any(x != y for x, y in zip(sa, sb)):
            return f"batch dims differ ({list(sa)} vs {list(sb)}): broadcasting batch"
        return MatMulPlan(a, b, None, None, None)
    # Gemm: alpha * A' B' + beta * C
    alpha, beta = float(attrs.get("alpha", 1.0)), float(attrs.get("beta", 1.0))
    ta, tb = bool(attrs.get("transA", 0)), bool(attrs.get("transB", 0))
    bc = const_of(b)
    if bc is None:  # weights fed at run time (training graphs): transposes become kernel flags
        if alpha != 1.0:
            return "Gemm with a runtime B and alpha != 1"
        c = node.inputs[2] if len(node.inputs) > 2 else None
        if c is None:
            return MatMulPlan(a, b, None, None, None, ta, tb, gemm2d=True)
        if beta != 1.0:
            return "Gemm with a runtime B and beta != 1"
        n = b.type.shape[0] if tb else b.type.shape[1]
        cshape = c.type.shape
        c_bias = cshape is not None and isinstance(n, int) and (tuple(cshape) in ((n,), (1, n)))
        return MatMulPlan(a, b, None, None, c, ta, tb, c_bias=c_bias, gemm2d=True)
    bmat = np.asarray(bc, np.float32)
    if tb:
        bmat = bmat.T  # a view: `gemm_call` makes the kernel's own form of it
    if alpha != 1.0:
        bmat = bmat * np.float32(alpha)
    n = bmat.shape[1]
    c = node.inputs[2] if len(node.inputs) > 2 else None
    bias = None
    cv = None
    if c is not None:
        cc = const_of(c)
        if cc is not None and cc.size == n and (cc.ndim == 1 or cc.shape[-1] == n):
            bias = np.ascontiguousarray(cc.reshape(n) * np.float32(beta), np.float32)
        elif beta == 1.0 and is_f32(c):
            cv = c
        else:
            return "Gemm with a scaled runtime C"
    return MatMulPlan(a, None, bmat, bias, cv, ta)


def gemm_call(plan: MatMulPlan, activation=None, residual: bool = False, bias=None,
              shaped_like_residual: bool = False):
    """fn(*runtime inputs) for `plan` with a fused bias (N,), activation and an optional residual
    input. Runtime inputs, in order: a, [b], [c], [residual]. With `shaped_like_residual` (a
    Reshape between the product and the residual Add) the residual is read as the product's
    (M, N) and the result takes the residual's shape."""
    bconst, trans_a = plan.b_const, plan.trans_a
    bias = plan.bias if bias is None else (bias if plan.bias is None else bias + plan.bias)
    has_b, has_c = plan.b is not None, plan.c is not None
    # constant weights are packed once into the panels `dot` reads without packing (unless a
    # library GEMM may run, which needs the plain matrix); the mapped file's pages can go
    panels = None
    if bconst is not None:
        if bconst.ndim == 2 and bconst.size and \
                os.environ.get("OPENCANN_GEMM_IMPL", "tile") == "tile":
            panels = gemm_k.pack_panels(bconst)
            release_file_pages(bconst)
            bconst = panels  # only its shape is read from here on
        else:
            own = np.ascontiguousarray(bconst, np.float32)
            if not np.shares_memory(own, bconst):
                release_file_pages(bconst)
            bconst = own
    bmat = bconst

    def fn(*args):
        a = args[0]
        i = 1
        if has_b:
            b, i = args[1], 2
        else:
            b = bmat
        c = res = None
        if has_c:
            c, i = args[i], i + 1
        if residual:
            res = args[i]
        if plan.gemm2d:
            return (_gemm2d(plan, a, b, c, res, bias, activation, shaped_like_residual),)
        if trans_a:
            a = a.T
        n = b.shape[-1]
        if has_b and b.ndim != 2:
            out_shape = a.shape[:-1] + (n,)
            a = a.reshape(-1, *a.shape[-2:])
            b = b.reshape(-1, *b.shape[-2:])
            flat = (a.shape[0], a.shape[1], n)
        else:  # (..., K) @ (K, N): one 2-d product over all leading rows
            out_shape = a.shape[:-1] + (n,)
            a = a.reshape(-1, a.shape[-1])
            flat = (a.shape[0], n)
        if shaped_like_residual:
            if res.size != int(np.prod(out_shape, dtype=np.int64)):
                raise ValueError(f"reshape of the product {list(out_shape)} to the residual's "
                                 f"shape {list(res.shape)} changes its size")
            out_shape = res.shape
            r = res.reshape(flat)
        else:
            r = c if c is not None else res
            if r is not None:
                r = np.broadcast_to(r, out_shape).reshape(flat)
        y = gemm_k.batched_gemm(a, b, bias, activation, r, impl="auto")
        if c is not None and res is not None:
            y += np.broadcast_to(res, out_shape).reshape(flat)
        return (y.reshape(out_shape),)

    if has_c or trans_a or plan.gemm2d:
        return fn

    def prepare(*args):
        """A direct launch of the GEMM kernel into a given buffer (what `batched_gemm` does)."""
        if not all(x.flags.c_contiguous for x in args):  # views: the launcher reads them as stored
            raise ValueError("strided operands")
        a = args[0]
        b = args[1] if has_b else bconst
        res = args[-1] if residual else None
        n, k = b.shape[-1], a.shape[-1]
        if b.ndim == 2:
            m, batch = int(np.prod(a.shape[:-1], dtype=np.int64)), 1
            out_shape = a.shape[:-1] + (n,)
            strides = (0, 0)
        else:
            m = a.shape[-2]
            batch = int(np.prod(a.shape[:-2], dtype=np.int64))
            out_shape = a.shape[:-1] + (n,)
            if b.shape[:-2] != a.shape[:-2]:
                raise ValueError("batch dims differ")
            strides = (m * k, k * n)
        if shaped_like_residual:
            if res.size != int(np.prod(out_shape, dtype=np.int64)):
                raise ValueError("reshape changes the size")
            out_shape = res.shape
        elif res is not None and res.shape != out_shape:
            raise ValueError("residual is broadcast")
        if m * n * k * batch == 0:
            raise ValueError("empty")
        if gemm_k.choose_impl(m, n, k, batch, bias=bias is not None, activation=activation,
                              residual=res is not None) == "library":
            raise ValueError("library GEMM: the launcher's path")
        launch = gemm_k.prepare_gemm(m, n, k, batch, strides[0] > 0, strides[1] > 0,
                                     res is not None and batch > 1,
                                     has_bias=0 if bias is None else 1, activation=activation,
                                     residual=res is not None,
                                     b_panels=0 if has_b or panels is None else panels.nr)
        extra = [] if bias is None else [bias]
        bfixed = None if has_b else bconst if panels is None else panels.data

        def run(out, *args):
            a = np.ascontiguousarray(args[0], np.float32)
            b = np.ascontiguousarray(args[1], np.float32) if has_b else bfixed
            if residual:
                launch(a, b, out, *extra, np.ascontiguousarray(args[-1], np.float32))
            else:
                launch(a, b, out, *extra)
        return run, out_shape

    return Checked(_layouts, prepare, fn)


def _gemm2d(plan: MatMulPlan, a, b, c, res, bias, activation, shaped_like_residual):
    """A Gemm whose B is a runtime value: act(A' B' + C [+ bias]) [+ residual], transposes read
    in place by the kernel."""
    ta, tb = plan.trans_a, plan.trans_b
    m = a.shape[1] if ta else a.shape[0]
    n = b.shape[0] if tb else b.shape[1]
    if c is not None and plan.c_bias:
        cb = np.asarray(c, np.float32).reshape(-1)
        bias = cb if bias is None else bias + cb
        c = None
    r = None if c is None else np.broadcast_to(c, (m, n))
    if res is not None:
        rr = res.reshape(m, n) if shaped_like_residual else np.broadcast_to(res, (m, n))
        r = rr if r is None else r + rr
    y = gemm_k.batched_gemm(a, b, bias, activation, r, trans_a=ta, trans_b=tb, impl="auto")
    return y.reshape(res.shape) if shaped_like_residual else y


def _shapes(*xs):
    return tuple([x.shape for x in xs])


def _layouts(*xs):
    """Shapes and whether each is C-contiguous: a prepared launch is per layout too."""
    return tuple([(x.shape, x.flags.c_contiguous) for x in xs])


def _lower_matmul(node: Node, attrs: dict):
    plan = matmul_plan(node, attrs)
    if isinstance(plan, str):
        return plan
    ins = [plan.a] + ([plan.b] if plan.b is not None else []) + ([plan.c] if plan.c else [])
    return Lowered(gemm_call(plan), ins, "gemm" if plan.b is None else "batched_gemm")


# --- Conv and pooling ---------------------------------------------------------------------------
def _sym_pads(pads, k):
    if not pads:
        return (0,) * k
    pads = list(pads)
    if pads[:k] != pads[k:]:
        return None
    return tuple(pads[:k])


def conv_plan(node: Node, attrs: dict):
    """(weight, bias, stride, padding, dilation, groups) of a 2-d Conv, or why it does not fit."""
    bad = _f32_all(node, 3)
    if bad:
        return bad
    w = const_of(node.inputs[1])
    if w is None:
        return "runtime weights"
    if w.ndim != 4:
        return f"{w.ndim - 2}-d convolution (only 2-d)"
    if attrs.get("auto_pad", "NOTSET") not in ("NOTSET", "VALID"):
        return f"auto_pad={attrs.get('auto_pad')}"
    pads = _sym_pads(attrs.get("pads"), 2) if attrs.get("auto_pad", "NOTSET") == "NOTSET" else (0, 0)
    if pads is None:
        return f"asymmetric pads {list(attrs.get('pads'))}"
    b = None
    if len(node.inputs) > 2 and node.inputs[2] is not None:
        b = const_of(node.inputs[2])
        if b is None:
            return "runtime bias"
    stride = tuple(attrs.get("strides") or (1, 1))
    dil = tuple(attrs.get("dilations") or (1, 1))
    ks = attrs.get("kernel_shape")
    if ks and tuple(ks) != tuple(w.shape[2:]):
        return "kernel_shape differs from the weight's"
    return (np.ascontiguousarray(w, np.float32), None if b is None else np.ascontiguousarray(b, np.float32),
            stride, pads, dil, int(attrs.get("group", 1)))


def conv_call(plan, activation=None, residual=False, res_activation=None):
    """A step computing `res_act(act(conv(x) + bias) + residual)`: fn(x) or fn(x, residual). The
    convolution is prepared once (`conv_k.Conv2d`: algorithm per shape, Winograd weights made
    once)."""
    w, b, stride, pads, dil, groups = plan
    conv = conv_k.Conv2d(w, b, stride, pads, dil, groups, activation, res_activation, impl="auto")
    if residual:
        def fn(x, r):
            return (conv(x, r),)
    else:
        def fn(x):
            return (conv(x),)
    return fn


def _lower_conv(node: Node, attrs: dict):
    plan = conv_plan(node, attrs)
    if isinstance(plan, str):
        return plan
    if _rank(node.inputs[0]) != 4:
        return "input is not NCHW"
    return Lowered(conv_call(plan), [node.inputs[0]], "conv2d")


def _lower_pool(node: Node, attrs: dict):
    bad = _f32_all(node, 1)
    if bad:
        return bad
    if len([v for v in node.outputs if v is not None]) > 1:
        return "Indices output"
    if _rank(node.inputs[0]) != 4:
        return "not a 2-d pooling over NCHW"
    if attrs.get("auto_pad", "NOTSET") != "NOTSET":
        return f"auto_pad={attrs.get('auto_pad')}"
    ks = tuple(attrs["kernel_shape"])
    pads = _sym_pads(attrs.get("pads"), 2)
    if pads is None:
        return f"asymmetric pads {list(attrs.get('pads'))}"
    stride = tuple(attrs.get("strides") or (1, 1))
    ceil = bool(attrs.get("ceil_mode", 0))
    if node.op == "MaxPool":
        if int(attrs.get("storage_order", 0)):
            return "storage_order=1"
        dil = tuple(attrs.get("dilations") or (1, 1))

        def fn(x):
            return (pool_k.max_pool2d(x, ks, stride, pads, dil, ceil),)
        return Lowered(fn, [node.inputs[0]], "max_pool2d")
    if tuple(attrs.get("dilations") or (1, 1)) != (1, 1):
        return "dilated average pooling"
    cip = bool(attrs.get("count_include_pad", 0))

    def fn_avg(x):
        return (pool_k.avg_pool2d(x, ks, stride, pads, cip, ceil),)
    return Lowered(fn_avg, [node.inputs[0]], "avg_pool2d")


def _lower_global_avg(node: Node, attrs: dict):
    bad = _f32_all(node, 1)
    if bad:
        return bad
    r = _rank(node.inputs[0])
    if r is None or r < 3:
        return "rank unknown or < 3"

    def fn(x):
        lead = x.shape[:2]
        y = reduce_k.reduce(x.reshape(*lead, -1), axis=-1, kind="mean")
        return (y.reshape(lead + (1,) * (x.ndim - 2)),)
    return Lowered(fn, [node.inputs[0]], "reduce_mean")


# --- Softmax, LayerNorm, reductions -------------------------------------------------------------
def _lower_softmax(node: Node, attrs: dict):
    bad = _f32_all(node, 1)
    if bad:
        return bad
    r = _rank(node.inputs[0])
    if r is None or r == 0:
        return "rank unknown"
    axis = int(attrs.get("axis", -1))
    if axis % r != r - 1:
        return f"axis={axis} is not the last"
    f = softmax_k.log_softmax if node.op == "LogSoftmax" else softmax_k.softmax
    return Lowered(lambda x: (f(x),), [node.inputs[0]],
                   "log_softmax" if node.op == "LogSoftmax" else "softmax")


def _lower_layernorm(node: Node, attrs: dict):
    bad = _f32_all(node, 3)
    if bad:
        return bad
    r = _rank(node.inputs[0])
    if r is None or r == 0:
        return "rank unknown"
    if int(attrs.get("axis", -1)) % r != r - 1:
        return f"axis={attrs.get('axis')} normalizes more than the last dim"
    w, b = node.inputs[1], node.inputs[2] if len(node.inputs) > 2 else None
    wc, bc = const_of(w), const_of(b)
    eps = float(attrs.get("epsilon", 1e-5))
    n = node.inputs[0].type.shape[-1]
    n_out = len(node.outputs)
    if n_out > 1 or wc is None or (b is not None and bc is None):
        # a training graph's: scale and bias fed at run time, mean and 1/std kept for backward
        return _layernorm_runtime(node, attrs, n, eps)
    if not isinstance(n, int) or wc.size != n or (bc is not None and bc.size != n):
        return "scale/bias do not match the last dim"
    wc = np.ascontiguousarray(wc.reshape(n), np.float32)
    bc = None if bc is None else np.ascontiguousarray(bc.reshape(n), np.float32)

    def prepare(x):
        if x.size == 0 or n > norm_k.MAX_BLOCK:
            raise ValueError("empty or long rows")
        rows, block = norm_k._tiles(n)
        r = x.size // n
        dummy = np.empty(1, np.float32)
        launch = Prepared(norm_k.layer_norm_kernel, ((r + rows - 1) // rows,),
                          [dummy, dummy, None if bc is None else dummy, dummy, r, n, float(eps), None, None],
                          {"HAS_W": True, "HAS_B": bc is not None, "ROWS": rows, "BLOCK": block})
        ws = [wc] if bc is None else [wc, bc]

        def run(out, x):
            x = np.ascontiguousarray(x, np.float32)
            launch(x, *ws, out)
        return run, x.shape

    slow = lambda x: (norm_k.layer_norm(x, wc, bc, eps),)
    return Lowered(Checked(_shapes, prepare, slow), [node.inputs[0]], "layer_norm")


def _layernorm_runtime(node: Node, attrs: dict, n, eps: float):
    """LayerNormalization with runtime scale/bias and/or the Mean and InvStdDev outputs."""
    if int(attrs.get("stash_type", 1)) != 1:
        return f"stash_type={attrs.get('stash_type')}"
    if not isinstance(n, int) or n > norm_k.MAX_BLOCK:
        return "last dim unknown or longer than the kernel's tile"
    ins = [v for v in node.inputs[1:3] if v is not None]
    for v in ins:
        s = v.type.shape if isinstance(v.type, TensorType) else None
        if s is None or tuple(s) != (n,):
            return "scale/bias are not vectors over the last dim"
    outs = [v is not None for v in node.outputs]
    if any(v is not None and not is_f32(v) for v in node.outputs):
        return "statistics are not float32"
    has_b = len(node.inputs) > 2 and node.inputs[2] is not None

    def fn(x, w, b=None):
        y, mean, rstd = norm_k.layer_norm(x, w, b if has_b else None, eps, stats=True)
        res = (y, mean, rstd)[:len(outs)]
        return tuple(r if keep else None for r, keep in zip(res, outs))
    return Lowered(fn, [node.inputs[0]] + ins, "layer_norm", outputs=len(outs))


def _lower_reduce(node: Node, attrs: dict):
    bad = _f32_all(node, 1)
    if bad:
        return bad
    r = _rank(node.inputs[0])
    if r is None or r == 0:
        return "rank unknown"
    axes = attrs.get("axes")
    if len(node.inputs) > 1 and node.inputs[1] is not None:
        axes = const_of(node.inputs[1])
        if axes is None:
            return "runtime axes"
        axes = [int(a) for a in np.asarray(axes).reshape(-1)]
    if axes is None or len(axes) == 0:
        if int(attrs.get("noop_with_empty_axes", 0)):
            return "noop_with_empty_axes"
        axes = list(range(r))
    axes = sorted(int(a) % r for a in axes)
    if axes != list(range(axes[0], axes[-1] + 1)):
        return f"non-adjacent axes {axes}"
    keep = bool(attrs.get("keepdims", 1))
    a0, a1 = axes[0], axes[-1] + 1

    kind = _REDUCE_KINDS[node.op]
    empty_value = np.float32(_REDUCE_EMPTY[kind])

    def fn(x):
        shp = x.shape
        out = shp[:a0] + ((1,) if keep else ()) * (a1 - a0) + shp[a1:]
        mid = int(np.prod(shp[a0:a1], dtype=np.int64))
        if mid == 0 or x.size == 0:  # ONNX: reducing an empty set gives the op's identity
            return (np.full(out, empty_value, np.float32),)
        y = reduce_k.reduce(np.ascontiguousarray(x).reshape(*shp[:a0], mid, *shp[a1:]), axis=a0,
                            kind=kind)
        return (y.reshape(out),)
    return Lowered(fn, [node.inputs[0]], f"reduce_{kind}")


# ONNX reduction -> the reduce kernel's kind, and the value of a reduction over an empty set
_REDUCE_KINDS = {"ReduceSum": "sum", "ReduceMean": "mean", "ReduceMax": "max", "ReduceMin": "min",
                 "ReduceLogSumExp": "logsumexp"}
_REDUCE_EMPTY = {"sum": 0.0, "mean": np.nan, "max": -np.inf, "min": np.inf, "logsumexp": -np.inf}


# --- ScatterND ------------------------------------------------------------------------------------
def _lower_scatter_nd(node: Node, attrs: dict):
    """ScatterND of float32 data (an embedding gradient: rows added into a table of zeros)."""
    data, indices, updates = node.inputs[:3]
    bad = [v for v in (data, updates, node.outputs[0]) if not is_f32(v)]
    if bad:
        return f"needs float32 data and updates, has {', '.join(repr(v.type) for v in bad)}"
    reduction = attrs.get("reduction", "none")
    if reduction not in scatter_k.REDUCTIONS:
        return f"reduction={reduction!r}"
    ishape = indices.type.shape if isinstance(indices.type, TensorType) else None
    if ishape is None or not ishape or not isinstance(ishape[-1], int) or ishape[-1] < 1:
        return "the index tuples' length is unknown or 0"
    dc = const_of(data)
    zeros = dc is not None and not np.any(dc)  # scattering into zeros: no copy of data to make

    def fn(d, idx, upd):
        out = np.zeros(d.shape, np.float32) if zeros else None
        return (scatter_k.scatter_nd(d, idx, upd, reduction, out=out),)
    return Lowered(fn, [data, indices, updates], f"scatter_nd_{reduction}")


LOWERINGS: dict[str, Callable] = {
    "MatMul": _lower_matmul,
    "Gemm": _lower_matmul,
    "Conv": _lower_conv,
    "MaxPool": _lower_pool,
    "AveragePool": _lower_pool,
    "GlobalAveragePool": _lower_global_avg,
    "Softmax": _lower_softmax,
    "LogSoftmax": _lower_softmax,
    "LayerNormalization": _lower_layernorm,
    "ReduceMean": _lower_reduce,
    "ReduceSum": _lower_reduce,
    "ReduceMax": _lower_reduce,
    "ReduceMin": _lower_reduce,
    "ReduceLogSumExp": _lower_reduce,
    "ScatterND": _lower_scatter_nd,
}


def lower(node: Node, attrs: dict) -> Lowered | str:
    """A cpu step for `node`, or the reason it runs its reference. (Elementwise ops are lowered by
    `fusion.py` as fused elementwise kernels.)"""
    if node.domain not in ("", "ai.onnx"):
        return f"domain {node.domain!r} has no cpu kernels"
    f = LOWERINGS.get(node.op)
    if f is None:
        return "no cpu kernel for this op"
    return f(node, attrs)
