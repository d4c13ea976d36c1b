"""The `cpu` kernels of the nn family's Conv, MaxPool, AveragePool, GlobalAveragePool, Softmax,
LogSoftmax and LayerNormalization ops: lowerings of one node to the tile-language kernels,
registered in each op's `OpDef.kernels["cpu"]` (see `opencann.ops.lowering`). The engine's fusion
builds convolution epilogues on `conv_plan` and `conv_call`.

The kernel modules are imported where a lowering launches them, so `import opencann.ops` loads no
tile kernels.
"""

from __future__ import annotations

import numpy as np

from ...ir import Node, TensorType, Value
from ..lowering import Checked, Lowered, const_of, f32_all, f32_ranked, is_f32, rank
from ..registry import OPENCANN_DOMAIN, defkernel

__all__ = ["conv_call", "conv_plan"]


def _sym_pads(pads, k):
    if not pads:
        return (0,) * k
    pads = list(pads)
    if pads[:k] != pads[k:]:
        return None
    return tuple(pads[:k])


def conv_plan(node: Node, attrs: dict):
    """(weight, bias, stride, padding, dilation, groups) of a 2-d Conv, or why it does not fit."""
    bad = f32_all(node, 3)
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
    from .kernels import conv as conv_k

    w, b, stride, pads, dil, groups = plan
    conv = conv_k.Conv2d(w, b, stride, pads, dil, groups, activation, res_activation, impl="auto")
    if residual:
        def fn(x, r):
            return (conv(x, r),)
    else:
        def fn(x):
            return (conv(x),)
    return fn


@defkernel("cpu", "Conv")
def _lower_conv(node: Node, attrs: dict):
    plan = conv_plan(node, attrs)
    if isinstance(plan, str):
        return plan
    if rank(node.inputs[0]) != 4:
        return "input is not NCHW"
    return Lowered(conv_call(plan), [node.inputs[0]], "conv2d")


@defkernel("cpu", "MaxPool", "AveragePool")
def _lower_pool(node: Node, attrs: dict):
    from .kernels import pool as pool_k

    bad = f32_all(node, 1)
    if bad:
        return bad
    if len([v for v in node.outputs if v is not None]) > 1:
        return "Indices output"
    if rank(node.inputs[0]) != 4:
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


@defkernel("cpu", "GlobalAveragePool")
def _lower_global_avg(node: Node, attrs: dict):
    from ..math.kernels import reduce as reduce_k

    bad = f32_all(node, 1)
    if bad:
        return bad
    r = rank(node.inputs[0])
    if r is None or r < 3:
        return "rank unknown or < 3"

    plans: dict = {}  # input shape -> prepared launch

    def fn(x):
        lead = x.shape[:2]
        flat = np.ascontiguousarray(x).reshape(*lead, -1)
        run = plans.get(flat.shape)
        if run is None:
            run = plans[flat.shape] = reduce_k.prepare_reduce(flat.shape, flat.dtype, -1, "mean")
        return (run(flat).reshape(lead + (1,) * (x.ndim - 2)),)
    return Lowered(fn, [node.inputs[0]], "reduce_mean")


@defkernel("cpu", "Softmax", "LogSoftmax")
def _lower_softmax(node: Node, attrs: dict):
    from .kernels import softmax as softmax_k

    r, bad = f32_ranked(node, 1)
    if bad:
        return bad
    axis = int(attrs.get("axis", -1))
    if axis % r != r - 1:
        return f"axis={axis} is not the last"
    f = softmax_k.log_softmax if node.op == "LogSoftmax" else softmax_k.softmax
    return Lowered(lambda x: (f(x),), [node.inputs[0]],
                   "log_softmax" if node.op == "LogSoftmax" else "softmax")


def _shapes(*xs):
    return tuple([x.shape for x in xs])


def _last_axis(node: Node, attrs: dict, n_in: int) -> str | None:
    """Why a (layer) normalization node does not fit the kernels, which normalize float32 rows
    over the last axis; None when it does."""
    r, bad = f32_ranked(node, n_in)
    if bad:
        return bad
    if int(attrs.get("axis", -1)) % r != r - 1:
        return f"axis={attrs.get('axis')} normalizes more than the last dim"
    return None


@defkernel("cpu", "LayerNormalization")
def _lower_layernorm(node: Node, attrs: dict):
    from ...tile.kernel import Prepared
    from .kernels import normalization as norm_k

    bad = _last_axis(node, attrs, 3)
    if bad:
        return bad
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
    from .kernels import normalization as norm_k

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


@defkernel("cpu", "LayerNormalizationGrad", domain=OPENCANN_DOMAIN)
def _lower_layernorm_grad(node: Node, attrs: dict):
    return layer_norm_grad_lowering(node, attrs)


def layer_norm_grad_lowering(node: Node, attrs: dict, add: Value | None = None):
    """LayerNormalizationGrad on the cpu backend, or why it does not fit. With `add` (a value of
    x's shape: the engine fuses the Add that sums dX with a gradient from another path) the
    step's inputs end with it and its dX is the sum, made in the kernel's pass."""
    from .kernels import normalization as norm_k

    bad = _last_axis(node, attrs, 2)
    if bad:
        return bad
    n = node.inputs[1].type.shape[-1]
    if not isinstance(n, int) or n > norm_k.MAX_BLOCK:
        return "last dim unknown or longer than the kernel's tile"
    ins = [v for v in node.inputs[:5] if v is not None]
    if any(not is_f32(v) for v in ins):
        return "statistics or scale are not float32"
    has_w = len(node.inputs) > 4 and node.inputs[4] is not None

    def fn(dy, x, mean, rstd, *rest):  # rest: the scale when given, then the added gradient
        return norm_k.layer_norm_backward(dy, x, mean, rstd, rest[0] if has_w else None,
                                          add=rest[-1] if add is not None else None)

    return Lowered(fn, ins + ([add] if add is not None else []), "layer_norm_grad",
                   outputs=min(3, len(node.outputs)))
