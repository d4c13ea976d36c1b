"""2-d convolution (NCHW, any stride, padding, dilation and groups) as im2col + the GEMM kernel.

`im2col_kernel` writes, for one image and group, the (C/g * KH * KW, OH * OW) matrix of input
taps (zero where the window hangs over the padding); the GEMM kernel multiplies the group's
(Cout/g, C/g * KH * KW) weights by it, with the bias and activation fused in its epilogue.
"""

from __future__ import annotations

import numpy as np

from opencann import tile
from opencann.ops.math.kernels.gemm import batched_gemm

__all__ = ["im2col_kernel", "im2col", "conv2d"]


@tile.kernel
def im2col_kernel(x, cols, C, H, W, OH, OW, SH, SW, PH, PW, DH, DW, c0, K,
                  KH: tile.constexpr, KW: tile.constexpr, BLOCK: tile.constexpr):
    """Row r = (c, kh, kw) of image `img`'s tap matrix, BLOCK output pixels at a time."""
    r = tile.program_id(1)  # row of the tap matrix: (c, kh, kw)
    img = tile.program_id(2)
    c = r // (KH * KW)
    kh = (r // KW) % KH
    kw = r % KW
    p = tile.program_id(0) * BLOCK + tile.arange(0, BLOCK)
    valid = p < OH * OW
    ih = (p // OW) * SH - PH + kh * DH
    iw = (p % OW) * SW - PW + kw * DW
    m = valid & (ih >= 0) & (ih < H) & (iw >= 0) & (iw < W)
    v = tile.load(x + ((img * C + c0 + c) * H + ih) * W + iw, mask=m, other=0.0)
    tile.store(cols + (img * K + r) * (OH * OW) + p, v, mask=valid)


def _pair(v):
    return (v, v) if isinstance(v, int) else tuple(v)


def im2col(x, c0, cg, kh, kw, stride, padding, dilation, oh, ow, backend="cpu"):
    """The (N, cg*kh*kw, oh*ow) tap matrices of channels [c0, c0+cg) of NCHW float32 `x`."""
    n, c, h, w = x.shape
    (sh, sw), (ph, pw), (dh, dw) = stride, padding, dilation
    k = cg * kh * kw
    cols = np.empty((n, k, oh * ow), np.float32)
    block = 256
    im2col_kernel[(-(-(oh * ow) // block), k, n)](
        x, cols, c, h, w, oh, ow, sh, sw, ph, pw, dh, dw, c0, k, KH=kh, KW=kw, BLOCK=block,
        backend=backend)
    return cols


def conv2d(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1, activation=None,
           backend="cpu"):
    """Convolution of x (N, C, H, W) with weight (Cout, C/groups, KH, KW) -> (N, Cout, OH, OW).

    `activation` (relu, gelu, silu) is fused into the GEMM epilogue with the bias.
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
    for g in range(groups):
        cols = im2col(x, g * cg, cg, kh, kw, stride, padding, dilation, oh, ow, backend)
        res = batched_gemm(wmat[g], cols, row_bias=None if b is None else b[g],
                           activation=activation, backend=backend)
        out[:, g * og:(g + 1) * og] = res.reshape(n, og, oh, ow)
    return out
