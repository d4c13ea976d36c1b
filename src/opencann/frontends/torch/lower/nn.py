"""Matrix products, convolutions, normalizations, pooling and dropout (and their gradients)."""

from __future__ import annotations

import numpy as np
import torch

from .... import dtypes
from ....ops.registry import OPENCANN_DOMAIN
from .core import (
    DTYPES,
    _count,
    _np_dtype,
    _out_dtype,
    _reduce,
    aten,
    ir_dim,
    lowers,
    meta_of,
)


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


# kept whole (not decomposed by AOTAutograd): one LayerNormalizationGrad node, one pass on the cpu
DECOMPOSITION_EXCLUDES = (aten.native_layer_norm_backward.default,)


@lowers(aten.native_layer_norm_backward.default)
def _layer_norm_backward(L, n, grad, x, normalized_shape, mean, rstd, w, b, output_mask):
    dt = L.dtype(x)
    ins = [L.tensor(grad, dt), L.tensor(x, dt), L.tensor(mean), L.tensor(rstd)]
    if w is not None:
        ins.append(L.tensor(w, dt))
    dx, dw, db = L.emit("LayerNormalizationGrad", ins, {"axis": -len(normalized_shape)}, n_out=3,
                        hint="grad_layernorm", domain=OPENCANN_DOMAIN)
    return [dx if output_mask[0] else None, dw if output_mask[1] and w is not None else None,
            db if output_mask[2] and b is not None else None]


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
