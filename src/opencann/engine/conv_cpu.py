"""2-d convolution for the cpu executor: im2col by output rows, then the library's GEMM kernel
with bias and activation in its epilogue.

The library's `im2col_kernel` indexes output pixels linearly, so every tap pays an integer
division and a modulo by the output width; here a program fills one row of the tap matrix (one
(channel, kh, kw) tap), output row by output row: no division per element, unit-stride loads when
the stride is 1, and few enough programs that scheduling them costs nothing. A stand-in until the library
kernel does the same (see the engine's report of requests to the kernel owners).

    >>> y = conv2d_rows(x, w, b, (1, 1), (1, 1), (1, 1), 1, "relu")    # doctest: +SKIP
"""

from __future__ import annotations

import numpy as np

from opencann import tile

from ..ops.math.kernels.gemm import batched_gemm

__all__ = ["conv2d_rows", "im2col_rows_kernel"]


@tile.kernel(do_not_specialize=("C", "H", "W", "OH", "OW", "PH", "PW", "c0", "K"))
def im2col_rows_kernel(x, cols, C, H, W, OH, OW, SH, SW, PH, PW, DH, DW, c0, K,
                       KH: tile.constexpr, KW: tile.constexpr, BLOCK: tile.constexpr):
    """Row r = (c, kh, kw) of image img's tap matrix, one output row (oh) at a time."""
    r = tile.program_id(0)  # row of the tap matrix: (c, kh, kw)
    img = tile.program_id(1)
    c = r // (KH * KW)
    kh = (r // KW) % KH
    kw = r % KW
    ow = tile.arange(0, BLOCK)
    iw = ow * SW - PW + kw * DW
    cols_ok = (ow < OW) & (iw >= 0) & (iw < W)
    src = x + (img * C + c0 + c) * H * W + iw
    dst = cols + (img * K + r) * (OH * OW) + ow
    for oh in range(0, OH):
        ih = oh * SH - PH + kh * DH
        v = tile.load(src + ih * W, mask=cols_ok & (ih >= 0) & (ih < H), other=0.0)
        tile.store(dst + oh * OW, v, mask=ow < OW)


def conv2d_rows(x, weight, bias, stride, padding, dilation, groups, activation=None):
    """Convolution of float32 x (N, C, H, W) with weight (Cout, C/groups, KH, KW)."""
    x = np.ascontiguousarray(x, np.float32)
    n, c, h, w = x.shape
    cout, cg, kh, kw = weight.shape
    if c != cg * groups or cout % groups:
        raise ValueError(f"conv2d: input has {c} channels, weight {weight.shape} with "
                         f"groups={groups} expects {cg * groups}")
    (sh, sw), (ph, pw), (dh, dw) = stride, padding, dilation
    oh = (h + 2 * ph - dh * (kh - 1) - 1) // sh + 1
    ow = (w + 2 * pw - dw * (kw - 1) - 1) // sw + 1
    out = np.empty((n, cout, max(oh, 0), max(ow, 0)), np.float32)
    if out.size == 0:
        return out
    og = cout // groups
    k = cg * kh * kw
    wmat = weight.reshape(groups, og, k)
    b = None if bias is None else bias.reshape(groups, og)
    block = max(16, 1 << (ow - 1).bit_length())
    direct = kh == kw == 1 and sh == sw == 1 and ph == pw == 0  # the input is the tap matrix
    for g in range(groups):
        if direct:
            cols = x[:, g * cg:(g + 1) * cg].reshape(n, cg, h * w)
        else:
            cols = np.empty((n, k, oh * ow), np.float32)
            im2col_rows_kernel[(k, n)](x, cols, c, h, w, oh, ow, sh, sw, ph, pw, dh, dw,
                                       g * cg, k, KH=kh, KW=kw, BLOCK=block)
        res = batched_gemm(wmat[g], cols, row_bias=None if b is None else b[g],
                           activation=activation, impl="auto")
        if groups == 1:
            return res.reshape(n, cout, oh, ow)
        out[:, g * og:(g + 1) * og] = res.reshape(n, og, oh, ow)
    return out
