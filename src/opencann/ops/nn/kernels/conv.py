"""2-d convolution (NCHW, any stride, padding, dilation and groups) as im2col + the GEMM kernel.

`im2col_kernel` writes, for one image and group, the (C/g * KH * KW, OH * OW) matrix of input
taps (zero where the window hangs over the padding), a program per row of it; the GEMM kernel
multiplies the group's (Cout/g, C/g * KH * KW) weights by it, with the bias and activation fused in
its epilogue.
"""

from __future__ import annotations

import numpy as np

from opencann import tile
from opencann.ops.math.kernels.gemm import batched_gemm

__all__ = ["im2col_kernel", "im2col", "conv2d"]


@tile.kernel(do_not_specialize=("C", "H", "W", "OH", "OW", "PH", "PW", "c0", "K"))
def im2col_kernel(x, cols, C, H, W, OH, OW, SH, SW, PH, PW, DH, DW, c0, K,
                  KH: tile.constexpr, KW: tile.constexpr, BLOCK: tile.constexpr):
    """Row r = (c, kh, kw) of image img's tap matrix, output row by output row, BLOCK output
    columns at a time: no division per element, unit-stride loads when the stride is 1, and few
    programs (one per tap row) to schedule."""
    r = tile.program_id(0)  # row of the tap matrix: (c, kh, kw)
    img = tile.program_id(1)
    c = r // (KH * KW)
    kh = (r // KW) % KH
    kw = r % KW
    src = x + (img * C + c0 + c) * H * W
    dst = cols + (img * K + r) * (OH * OW)
    for ow0 in range(0, OW, BLOCK):
        ow = ow0 + tile.arange(0, BLOCK)
        iw = ow * SW - PW + kw * DW
        cols_ok = (ow < OW) & (iw >= 0) & (iw < W)
        for oh in range(0, OH):
            ih = oh * SH - PH + kh * DH
            v = tile.load(src + ih * W + iw, mask=cols_ok & (ih >= 0) & (ih < H), other=0.0)
            tile.store(dst + oh * OW + ow, v, mask=ow < OW)


def _pair(v):
    return (v, v) if isinstance(v, int) else tuple(v)


def im2col(x, c0, cg, kh, kw, stride, padding, dilation, oh, ow, backend="cpu"):
    """The (N, cg*kh*kw, oh*ow) tap matrices of channels [c0, c0+cg) of NCHW float32 `x`."""
    n, c, h, w = x.shape
    (sh, sw), (ph, pw), (dh, dw) = stride, padding, dilation
    k = cg * kh * kw
    cols = np.empty((n, k, oh * ow), np.float32)
    block = min(1024, max(16, 1 << (ow - 1).bit_length()))
    im2col_kernel[(k, n)](x, cols, c, h, w, oh, ow, sh, sw, ph, pw, dh, dw, c0, k, KH=kh, KW=kw,
                          BLOCK=block, backend=backend)
    return cols


def conv2d(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1, activation=None,
           backend="cpu", impl="tile"):
    """Convolution of x (N, C, H, W) with weight (Cout, C/groups, KH, KW) -> (N, Cout, OH, OW).

    `activation` (relu, gelu, silu) is fused into the GEMM epilogue with the bias; `impl` is
    the GEMM's (see `batched_gemm`). A 1x1 convolution with stride 1 and no padding needs no tap
    matrix: the input is one.
    """
    x = np.ascontiguousarray(x, np.float32)
    weight = np.ascontiguousarray(weight, np.float32)
    n, c, h, w = x.shape
    cout, cg, kh, kw = weight.shape
    if c != cg * groups or cout % groups:
        raise ValueError(f"conv2d: input has {c} channels, weight {weight.shape} with "
                         f"groups={groups} expects {cg * groups}")
    stride, padding, dilation = _pair(stride), _pair(padding), _pair(dilation)
    oh = (h + 2 * padding[0] - dilation[0] * (kh - 1) - 1) // stride[0] + 1
    ow = (w + 2 * padding[1] - dilation[1] * (kw - 1) - 1) // stride[1] + 1
    out = np.empty((n, cout, max(oh, 0), max(ow, 0)), np.float32)
    if out.size == 0:
        return out
    og = cout // groups
    wmat = weight.reshape(groups, og, cg * kh * kw)
    b = None if bias is None else np.ascontiguousarray(bias, np.float32).reshape(groups, og)
    direct = kh == kw == 1 and stride == (1, 1) and padding == (0, 0)
    for g in range(groups):
        if direct:
            cols = x[:, g * cg:(g + 1) * cg].reshape(n, cg, h * w)
        else:
            cols = im2col(x, g * cg, cg, kh, kw, stride, padding, dilation, oh, ow, backend)
        res = batched_gemm(wmat[g], cols, row_bias=None if b is None else b[g],
                           activation=activation, backend=backend, impl=impl)
        if groups == 1:
            return res.reshape(n, cout, oh, ow)
        out[:, g * og:(g + 1) * og] = res.reshape(n, og, oh, ow)
    return out
