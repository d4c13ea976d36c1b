"""The `cpu` kernels of the math family's MatMul, Gemm and Reduce* ops: lowerings of one node to
the tile-language GEMM and reduce kernels, registered in each op's `OpDef.kernels["cpu"]` (see
`opencann.ops.lowering`). The engine's fusion builds GEMM epilogues on `matmul_plan` and
`gemm_call`.

The kernel modules are imported where a lowering launches them, so `import opencann.ops` loads no
tile kernels.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from ...ir import Node, Value
from ..lowering import Checked, Lowered, const_of, f32_all, f32_ranked, is_f32, rank
from ..registry import defkernel

__all__ = ["MatMulPlan", "gemm_call", "matmul_plan"]


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
    bad = f32_all(node, 2)
    if bad:
        return bad
    a, b = node.inputs[0], node.inputs[1]
    if node.op == "MatMul":
        ra, rb = rank(a), rank(b)
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
    from ...runtime.host import release_file_pages
    from .kernels import gemm as gemm_k

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
            bconst = panels  # from here on B is its panels
        else:
            own = np.ascontiguousarray(bconst, np.float32)
            if not np.shares_memory(own, bconst):
                release_file_pages(bconst)
            bconst = own

    def fn(*args):
        a = args[0]
        i = 1
        if has_b:
            b, i = args[1], 2
        else:
            b = bconst
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
    from .kernels import gemm as gemm_k

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


def _layouts(*xs):
    """Shapes and whether each is C-contiguous: a prepared launch is per layout too."""
    return tuple([(x.shape, x.flags.c_contiguous) for x in xs])


@defkernel("cpu", "MatMul", "Gemm")
def _lower_matmul(node: Node, attrs: dict):
    plan = matmul_plan(node, attrs)
    if isinstance(plan, str):
        return plan
    ins = [plan.a] + ([plan.b] if plan.b is not None else []) + ([plan.c] if plan.c else [])
    return Lowered(gemm_call(plan), ins, "gemm" if plan.b is None else "batched_gemm")


# ONNX reduction -> the reduce kernel's kind, and the value of a reduction over an empty set
_REDUCE_KINDS = {"ReduceSum": "sum", "ReduceMean": "mean", "ReduceMax": "max", "ReduceMin": "min",
                 "ReduceLogSumExp": "logsumexp"}
_REDUCE_EMPTY = {"sum": 0.0, "mean": np.nan, "max": -np.inf, "min": np.inf, "logsumexp": -np.inf}


@defkernel("cpu", *_REDUCE_KINDS)
def _lower_reduce(node: Node, attrs: dict):
    from .kernels import reduce as reduce_k

    r, bad = f32_ranked(node, 1)
    if bad:
        return bad
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

    plans: dict = {}  # input shape -> prepared launch

    def fn(x):
        shp = x.shape
        out = shp[:a0] + ((1,) if keep else ()) * (a1 - a0) + shp[a1:]
        mid = int(np.prod(shp[a0:a1], dtype=np.int64))
        if mid == 0 or x.size == 0:  # ONNX: reducing an empty set gives the op's identity
            return (np.full(out, empty_value, np.float32),)
        run = plans.get((shp, x.dtype))
        if run is None:
            run = plans[(shp, x.dtype)] = reduce_k.prepare_reduce(
                (*shp[:a0], mid, *shp[a1:]), x.dtype, a0, kind)
        y = run(np.ascontiguousarray(x).reshape(*shp[:a0], mid, *shp[a1:]))
        return (y.reshape(out),)
    return Lowered(fn, [node.inputs[0]], f"reduce_{kind}")
