"""2-d convolution (NCHW, any stride, padding, dilation and groups): im2col + the GEMM kernel,
Winograd's F(4x4,3x3) / F(2x2,3x3) for 3x3 stride-1 convolutions (`winograd.py`), or a direct
implicit GEMM over a padded NHWC copy of the input (`direct.py`) for strided ones.

`im2col_kernel` writes, for one image and group, the (C/g * KH * KW, OH * OW) matrix of input
taps (zero where the window hangs over the padding), a program per row of it; the GEMM kernel
multiplies the group's (Cout/g, C/g * KH * KW) weights by it, with the bias and activation fused in
its epilogue.
"""

from __future__ import annotations

import os

import numpy as np

from opencann import tile
from opencann.ops.math.kernels.gemm import batched_gemm, choose_impl, pack_panels, prepare_gemm
from opencann.ops.tensor.kernels.transpose import transpose_kernel
from opencann.runtime.host import release_file_pages

from . import winograd
from .direct import DirectPlan

__all__ = ["ALGOS", "Conv2d", "choose_algo", "conv2d", "im2col", "im2col_kernel", "im2row_kernel"]


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


@tile.kernel(do_not_specialize=("C", "H", "W", "OH", "OW", "PH", "PW"))
def im2row_kernel(x, rows, C, H, W, OH, OW, PH, PW, SH: tile.constexpr, SW: tile.constexpr,
                  DH: tile.constexpr, DW: tile.constexpr, KH: tile.constexpr, KW: tile.constexpr,
                  BC: tile.constexpr):
    """Output row oh of image img's transposed tap matrix, from an NHWC input: a row per output
    pixel holding KH*KW*C floats in (kh, kw, c) order, zeros over the padding. Undilated, the KW
    taps of one window row are KW adjacent pixels, so each (pixel, kh) is one contiguous span of
    KW*C floats (the 7 taps x 3 channels of a ResNet stem: one copy of 21, not 7 of 3)."""
    oh = tile.program_id(0)
    img = tile.program_id(1)
    K = KH * KW * C
    for ow in range(0, OW):
        dst = rows + (img * OH * OW + oh * OW + ow) * K
        iw0 = ow * SW - PW
        for kh in tile.static_range(KH):
            ih = oh * SH - PH + kh * DH
            row_in = (ih >= 0) & (ih < H)
            src = x + ((img * H + ih) * W) * C
            if DW == 1:
                for j0 in range(0, KW * C, BC):
                    j = j0 + tile.arange(0, BC)
                    e = iw0 * C + j  # element of the input row (its pixels' channels, in a row)
                    v = tile.load(src + e, mask=(j < KW * C) & row_in & (e >= 0) & (e < W * C),
                                  other=0.0)
                    tile.store(dst + kh * KW * C + j, v, mask=j < KW * C)
            else:
                for kw in tile.static_range(KW):
                    iw = iw0 + kw * DW
                    inside = row_in & (iw >= 0) & (iw < W)
                    for c0 in range(0, C, BC):
                        c = c0 + tile.arange(0, BC)
                        v = tile.load(src + iw * C + c, mask=(c < C) & inside, other=0.0)
                        tile.store(dst + (kh * KW + kw) * C + c, v, mask=c < C)


def _pair(v):
    return (v, v) if isinstance(v, int) else tuple(v)


def im2col(x, c0, cg, kh, kw, stride, padding, dilation, oh, ow, backend="cpu"):
    """The (N, cg*kh*kw, oh*ow) tap matrices of channels [c0, c0+cg) of NCHW float32 `x`."""
    n, c, h, w = x.shape
    cols = np.empty((n, cg * kh * kw, oh * ow), np.float32)
    prepare_im2col(x.shape, c0, cg, kh, kw, stride, padding, dilation, oh, ow, backend)(x, cols)
    return cols


def prepare_im2col(x_shape, c0, cg, kh, kw, stride, padding, dilation, oh, ow, backend="cpu"):
    """The `im2col` launch for an input of `x_shape`, prepared: call it with (x, cols)."""
    n, c, h, w = x_shape
    (sh, sw), (ph, pw), (dh, dw) = stride, padding, dilation
    k = cg * kh * kw
    block = min(1024, max(16, 1 << (ow - 1).bit_length()))
    d = np.empty(1, np.float32)
    return im2col_kernel.prepare((k, n), d, d, c, h, w, oh, ow, sh, sw, ph, pw, dh, dw, c0, k,
                                 KH=kh, KW=kw, BLOCK=block, backend=backend)


def conv2d(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1, activation=None,
           backend="cpu", impl="tile", residual=None, res_activation=None, algo="auto"):
    """Convolution of x (N, C, H, W) with weight (Cout, C/groups, KH, KW) -> (N, Cout, OH, OW).

    The epilogue is `res_act(act(conv + bias) + residual)`: `activation` and `res_activation`
    are relu, gelu, silu or None, `residual` an array of the output's shape (a ResNet block's
    shortcut). `impl` is the GEMM's (see `batched_gemm`). `algo`: "im2col" (a tap matrix and one
    GEMM; a 1x1 convolution with stride 1 and no padding needs no tap matrix: the input is one),
    "winograd2" / "winograd4" (F(2x2,3x3) / F(4x4,3x3), 3x3 stride-1 convolutions only),
    "direct" (implicit GEMM over a padded NHWC copy, one group, undilated), or "auto"
    (`choose_algo`). For repeated calls with the same weights use `Conv2d`, which
    transforms them once.
    """
    return Conv2d(weight, bias, stride, padding, dilation, groups, activation, res_activation,
                  algo, backend, impl)(x, residual)


ALGOS = ("auto", "im2col", "winograd2", "winograd4", "direct")


def choose_algo(weight_shape, out_hw, stride=(1, 1), dilation=(1, 1), groups=1) -> str:
    """The algorithm for a convolution, by the rule measured on a 2-core AVX-512 machine
    (ResNet-18 layers, batch 1): Winograd F(4x4,3x3) for a 3x3 stride-1 convolution with at
    least 6x6 output tiles of 4x4 per image (28x28: 0.85 ms against 2.06 for im2col), F(2x2,3x3)
    with at least 6x6 tiles of 2x2 (14x14: 1.10 ms against 2.44), im2col below that (7x7: the
    transformed weights, 16/9 the size, are read once per call for only 16 tiles). Also
    fewer than 16 channels in or out stay on im2col, where the transforms would dominate.
    A strided convolution of more than one tap with outputs at least 14 wide goes direct (the
    ResNet stem, 7x7/2 on 224x224: 1.93 -> 1.27 ms; 3x3/2 from 56x56: 0.73 -> 0.52; from 28x28:
    0.57 -> 0.53; from 14x14 direct was slower, 0.74 against 0.52, as were stride-1 layers
    against Winograd). So does a strided 1x1 convolution of at least 128 channels (its pixels
    gathered, then one GEMM: 128 -> 256 channels from 28x28 0.118 -> 0.109 ms, 256 -> 512 from
    14x14 0.110 -> 0.092; from 64 channels it was slower, 0.154 against 0.139).
    OPENCANN_CONV_ALGO (im2col, winograd2, winograd4, direct) overrides the rule where it
    applies."""
    forced = os.environ.get("OPENCANN_CONV_ALGO", "auto")
    if forced not in ALGOS:
        raise ValueError(f"OPENCANN_CONV_ALGO must be one of {ALGOS}, got {forced!r}")
    oh, ow = out_hw
    direct_ok = tuple(dilation) == (1, 1) and groups == 1
    if forced == "direct" and direct_ok:
        return forced
    if not winograd.supports(weight_shape, stride, dilation, groups):
        taps = weight_shape[2] * weight_shape[3]
        if direct_ok and max(stride) > 1 and (taps > 1 and ow >= 14 or
                                              taps == 1 and weight_shape[1] >= 128):
            return "direct"
        return "im2col"
    if forced != "auto":
        return forced
    cout, cin = weight_shape[:2]
    if min(cout, cin) < 16:
        return "im2col"
    if -(-oh // 4) * -(-ow // 4) >= 36:
        return "winograd4"
    if -(-oh // 2) * -(-ow // 2) >= 36:
        return "winograd2"
    return "im2col"


class Conv2d:
    """A 2-d convolution with fixed weights, for repeated calls: `Conv2d(w, b, ...)(x)`.

    The algorithm is chosen per input shape (`choose_algo`, or the `algo` given) and Winograd's
    transformed weights are made once per tile size. Arguments are `conv2d`'s.
    """

    def __init__(self, weight, bias=None, stride=1, padding=0, dilation=1, groups=1,
                 activation=None, res_activation=None, algo="auto", backend="cpu", impl="tile"):
        if algo not in ALGOS:
            raise ValueError(f"conv2d: algo must be one of {ALGOS}, got {algo!r}")
        self.weight = np.ascontiguousarray(weight, np.float32)
        if self.weight.ndim != 4:
            raise ValueError(f"conv2d: weight must be (Cout, C/groups, KH, KW), got "
                             f"{self.weight.shape}")
        self.bias = None if bias is None else np.ascontiguousarray(bias, np.float32).reshape(-1)
        self.stride, self.padding, self.dilation = _pair(stride), _pair(padding), _pair(dilation)
        self.groups = int(groups)
        self.activation, self.res_activation = activation, res_activation
        self.algo, self.backend, self.impl = algo, backend, impl
        self._u: dict = {}                    # tile size m -> Winograd weights (gemm.Panels)
        self._plans: dict = {}                # (input shape, has residual) -> (out shape, run)
        self._panels = None                   # weights as GEMM panels (`weight_panels`)

    def out_hw(self, h, w):
        (sh, sw), (ph, pw), (dh, dw) = self.stride, self.padding, self.dilation
        kh, kw = self.weight.shape[2:]
        return (h + 2 * ph - dh * (kh - 1) - 1) // sh + 1, (w + 2 * pw - dw * (kw - 1) - 1) // sw + 1

    def algo_for(self, h, w) -> str:
        if self.algo == "auto":
            return choose_algo(self.weight.shape, self.out_hw(h, w), self.stride, self.dilation,
                               self.groups)
        if self.algo == "direct":
            if self.dilation != (1, 1) or self.groups != 1:
                raise ValueError(f"conv2d: direct needs an undilated convolution with one group, "
                                 f"got dilation {self.dilation}, groups {self.groups}")
            return self.algo
        if self.algo != "im2col" and not winograd.supports(self.weight.shape, self.stride,
                                                           self.dilation, self.groups):
            raise ValueError(f"conv2d: {self.algo} needs a 3x3 stride-1 undilated convolution with "
                             f"one group, got weight {self.weight.shape}, stride {self.stride}, "
                             f"dilation {self.dilation}, groups {self.groups}")
        return self.algo

    def winograd_weights(self, m: int):
        """Winograd's transformed weights for tile size m, as GEMM panels (`gemm.Panels`): made
        once, streamed from memory by the GEMMs without being packed again on every call (the
        transformed weights of a 14x14 ResNet layer are 4 MB)."""
        u = self._u.get(m)
        if u is None:
            u = self._u[m] = pack_panels(winograd.transform_weights(self.weight, m))
            release_file_pages(self.weight)  # weights mapped from a file: read again if needed
        return u

    def __call__(self, x, residual=None, out=None):
        x = np.ascontiguousarray(x, np.float32)
        if x.ndim != 4:
            raise ValueError(f"conv2d: input must be NCHW, got shape {x.shape}")
        n, c, h, w = x.shape
        weight, groups = self.weight, self.groups
        cout, cg = weight.shape[:2]
        if c != cg * groups or cout % groups:
            raise ValueError(f"conv2d: input has {c} channels, weight {weight.shape} with "
                             f"groups={groups} expects {cg * groups}")
        key = (x.shape, residual is not None)
        plan = self._plans.get(key)
        if plan is None:
            plan = self._plans[key] = self._plan(n, c, h, w, residual is not None)
        shape, run = plan
        if residual is not None:
            residual = np.ascontiguousarray(np.broadcast_to(np.asarray(residual, np.float32),
                                                            shape))
        if out is None:
            out = np.empty(shape, np.float32)
        elif out.shape != shape or out.dtype != np.float32 or not out.flags.c_contiguous:
            raise ValueError(f"conv2d: out must be a C-contiguous float32 {shape}, got "
                             f"{out.dtype} {out.shape}")
        if out.size:
            run(x, residual, out)
        return out

    def _plan(self, n, c, h, w, has_res):
        """(output shape, run(x, residual, out)) for an (n, c, h, w) input: the launches of the
        chosen algorithm, prepared once."""
        cout, cg, kh, kw = self.weight.shape
        oh, ow = self.out_hw(h, w)
        shape = (n, cout, max(oh, 0), max(ow, 0))
        if min(shape) == 0:
            return shape, None
        algo = self.algo_for(h, w)
        has_bias = self.bias is not None
        if algo == "direct":
            panels = self.weight_panels()
            plan = DirectPlan(n, c, h, w, cout, kh, kw, self.stride, self.padding, panels.nr,
                              has_bias, self.activation, has_res, self.res_activation,
                              self.backend)
            return shape, lambda x, r, out: plan(x, panels.data, self.bias, r, out)
        if algo != "im2col":
            m = 4 if algo == "winograd4" else 2
            u = self.winograd_weights(m)
            wino = winograd.WinogradPlan(n, c, h, w, cout, m, self.padding, has_bias,
                                         self.activation, has_res, self.res_activation,
                                         self.backend, u_panels=u.nr)
            return shape, lambda x, r, out: wino(x, u.data, self.bias, r, out)
        k, p = cg * kh * kw, oh * ow
        lib = self.impl == "library" or self.impl == "auto" and choose_impl(
            cout // self.groups, p, k, n, row_bias=has_bias, activation=self.activation,
            residual=has_res, res_activation=self.res_activation) == "library"
        if self.groups > 1 or lib:
            return shape, self._run_groups
        # a window of more than one tap takes the transposed form; measured on ResNet-18's
        # layers at batch 1 (2 threads): the 7x7 layers 1.39 -> 0.91 ms, 14x14 stride 2 0.70 ->
        # 0.50, the 7x7 stride-2 stem 2.06 -> 1.81; 1x1 convolutions were as fast as they were
        if kh * kw > 1:
            return shape, self._plan_rows(n, c, h, w, oh, ow, has_res)
        direct = kh == kw == 1 and self.stride == (1, 1) and self.padding == (0, 0)
        cols_shape = (n, k, p)
        taps = None if direct else prepare_im2col(
            (n, c, h, w), 0, c, kh, kw, self.stride, self.padding, self.dilation, oh, ow,
            self.backend)
        gemm = prepare_gemm(cout, p, k, n, False, True, has_res, has_bias=2 if has_bias else 0,
                            activation=self.activation, residual=has_res,
                            res_activation=self.res_activation, backend=self.backend)
        wmat = self.weight.reshape(cout, k)
        extra = [self.bias] if has_bias else []

        def run(x, r, out):
            if taps is None:
                cols = x
            else:
                cols = np.empty(cols_shape, np.float32)
                taps(x, cols)
            gemm(wmat, cols, out, *extra, *([r] if r is not None else []))
        return shape, run


    def weight_panels(self):
        """The weights as the GEMM's constant right operand, (KH*KW*C, Cout) in the tap order of
        `im2row_kernel`, packed into panels once (see `_plan_rows`)."""
        if self._panels is None:
            cout = self.weight.shape[0]
            self._panels = pack_panels(self.weight.transpose(2, 3, 1, 0).reshape(-1, cout))
            release_file_pages(self.weight)  # weights mapped from a file: read again if needed
        return self._panels

    def _plan_rows(self, n, c, h, w, oh, ow, has_res):
        """The transposed im2col form of a multi-tap convolution: per image out^T (P, Cout) =
        taps^T (P, K) @ W^T (K, Cout), the tap matrix written a row per output pixel and the
        weights as panels. On a 7x7 map the plain form read the weights (up to 9.4 MB a layer) a
        few strided rows at a time for only 49 columns; as panels they stream contiguously, and
        the result is stored straight into NCHW (`c_trans`). The rows are copied from the input
        made NHWC first, channels contiguous (writing them tap by tap from NCHW scattered every
        element)."""
        cout, cg, kh, kw = self.weight.shape
        k, p = cg * kh * kw, oh * ow
        panels = self.weight_panels()
        d = np.empty(1, np.float32)
        to_nhwc = transpose_kernel.prepare((-(-c // 32), -(-(h * w) // 32), n), d, d, c, h * w,
                                           BM=32, BN=32, backend=self.backend)
        (sh, sw), (ph, pw), (dh, dw) = self.stride, self.padding, self.dilation
        span = kw * c if dw == 1 else c
        bc = min(512, max(16, 1 << (span - 1).bit_length()))
        taps = im2row_kernel.prepare((oh, n), d, d, c, h, w, oh, ow, ph, pw, SH=sh, SW=sw, DH=dh,
                                     DW=dw, KH=kh, KW=kw, BC=bc, backend=self.backend)
        has_bias = self.bias is not None
        gemm = prepare_gemm(p, cout, k, n, True, False, has_res, has_bias=1 if has_bias else 0,
                            activation=self.activation, residual=has_res,
                            res_activation=self.res_activation, backend=self.backend,
                            b_panels=panels.nr, c_trans=True)
        extra = [self.bias] if has_bias else []

        def run(x, r, out):
            nhwc = np.empty((n, h * w, c), np.float32)
            to_nhwc(x, nhwc)
            rows = np.empty((n, p, k), np.float32)
            taps(nhwc, rows)
            gemm(rows, panels.data, out, *extra, *([r] if r is not None else []))
        return run

    def _run_groups(self, x, residual, out):
        """im2col + GEMM per group (and the library GEMM when asked for), through the launchers."""
        n, c, h, w = x.shape
        cout, cg, kh, kw = self.weight.shape
        groups = self.groups
        oh, ow = self.out_hw(h, w)
        og = cout // groups
        wmat = self.weight.reshape(groups, og, cg * kh * kw)
        b = None if self.bias is None else self.bias.reshape(groups, og)
        direct = kh == kw == 1 and self.stride == (1, 1) and self.padding == (0, 0)
        for g in range(groups):
            if direct:
                cols = x[:, g * cg:(g + 1) * cg].reshape(n, cg, h * w)
            else:
                cols = im2col(x, g * cg, cg, kh, kw, self.stride, self.padding, self.dilation,
                              oh, ow, self.backend)
            res = None if residual is None else residual[:, g * og:(g + 1) * og].reshape(
                n, og, oh * ow)
            dst = out.reshape(n, cout, oh * ow)[:, g * og:(g + 1) * og]
            y = batched_gemm(wmat[g], cols, row_bias=None if b is None else b[g],
                             activation=self.activation, residual=res, backend=self.backend,
                             impl=self.impl, res_activation=self.res_activation,
                             out=dst if groups == 1 else None)
            if groups > 1:
                dst[...] = y
