"""Direct convolution over a zero-padded NHWC copy of the input: an implicit GEMM, no tap matrix.

With the input padded and channels-last, the taps of window row kh for the output pixels of one
output row are a strided view of the input: output pixel ow reads the KW*C contiguous floats at

    xpad[img, oh*SH + kh, ow*SW : ow*SW + KW, :]

so for each kh the convolution is a GEMM whose left operand's rows are SW*C floats apart (they
overlap when SW < KW) and are read where they lie, by the `dot` micro-kernel, against the weights
stored as panels in (kh, kw, c) order. Nothing the size of the tap matrix is written or read back:
for a ResNet stem (7x7, stride 2, 3 channels in, 224x224) the tap matrix is 7.4 MB against the
padded input's 0.6 MB.

`to_padded_nhwc_kernel` makes the padded copy (zeros over the border), `conv_nhwc_kernel` computes
one block of output pixels of one output row against one panel of output channels and stores it
into the NCHW output with the GEMM's epilogue (bias, activation, residual, activation).
"""

from __future__ import annotations

import numpy as np

from opencann import tile
from opencann.ops.math.kernels.gemm import ACTIVATIONS, activate

__all__ = ["DirectPlan", "conv_nhwc_kernel", "prepare_padded_nhwc", "to_padded_nhwc_kernel"]


@tile.kernel(do_not_specialize=("C", "H", "W", "HP", "WP", "PH", "PW", "WC"))
def to_padded_nhwc_kernel(x, y, C, H, W, HP, WP, PH, PW, WC, BC: tile.constexpr,
                          BW: tile.constexpr, S: tile.constexpr = 1):
    """Row pid(0) of image pid(1) of the (HP, WP, C) zero-padded NHWC copy of NCHW `x` (H, W):
    the first WC input columns of a row read along W and stored channels-last from column PW,
    zeros elsewhere (PW <= WP, PW + WC <= WP). With S > 1 (no padding), every S-th row and
    column: the input of a 1x1 convolution of stride S."""
    hp = tile.program_id(0)
    img = tile.program_id(1)
    ih = hp * S - PH
    dst = y + (img * HP + hp) * WP * C
    row_in = (ih >= 0) & (ih < H)
    for c0 in range(0, C, BC):
        c = c0 + tile.arange(0, BC)
        for w0 in range(0, WC, BW):
            w = w0 + tile.arange(0, BW)
            ok = (c[:, None] < C) & (w[None, :] < WC)
            v = tile.load(x + ((img * C + c[:, None]) * H + ih) * W + w[None, :] * S,
                          mask=ok & row_in, other=0.0)
            tile.store(dst + (PW + w[None, :]) * C + c[:, None], v, mask=ok)
    z = tile.zeros((BW,), tile.float32)
    for j0 in range(0, PW * C, BW):  # the left border
        j = j0 + tile.arange(0, BW)
        tile.store(dst + j, z, mask=j < PW * C)
    for j0 in range((PW + WC) * C, WP * C, BW):  # the right border
        j = j0 + tile.arange(0, BW)
        tile.store(dst + j, z, mask=j < WP * C)


@tile.kernel(do_not_specialize=("OH", "OW", "HP", "WP"))
def conv_nhwc_kernel(x, w, y, bias, res, OH, OW, HP, WP, C: tile.constexpr,
                     COUT: tile.constexpr, KH: tile.constexpr, KW: tile.constexpr,
                     SH: tile.constexpr, SW: tile.constexpr, LIN: tile.constexpr,
                     BM: tile.constexpr, BN: tile.constexpr, BK: tile.constexpr,
                     HAS_BIAS: tile.constexpr, ACT: tile.constexpr, HAS_RES: tile.constexpr,
                     RES_ACT: tile.constexpr):
    """One block of BM output pixels against the output channels of panel pid(2) % P, image
    pid(2) // P (P panels of BN channels): res_act(act(conv + bias) + res), stored NCHW.
    `x` is the (HP, WP, C) padded NHWC input, `w` the weights as panels of (KH*KW*C, BN).

    Row mode (LIN false): the block is pixels [pid(0)*BM, +BM) of output row pid(1).
    Linear mode (LIN, stride 1 only): the block is [pid(0)*BM, +BM) of the pixels m = oh*WP + ow
    of an output WP wide, of which the first OW columns are real: pixel m's window row kh starts
    at padded row kh, pixel m, so the whole map is one GEMM per kh with rows C apart, and a block
    spans output rows (a 7x7 map is one block, not seven of 7 rows)."""
    npan = tile.cdiv(COUT, BN)
    img = tile.program_id(2) // npan
    pn = tile.program_id(2) % npan
    rm = tile.program_id(0) * BM + tile.arange(0, BM)
    co = pn * BN + tile.arange(0, BN)
    kwc = KW * C
    ns = tile.cdiv(kwc, BK)
    if LIN:
        mtot = (OH - 1) * WP + OW
        base = x + img * HP * WP * C
    else:
        oh = tile.program_id(1)
        mtot = OW
        base = x + (img * HP + oh * SH) * WP * C
    acc = tile.zeros((BM, BN), tile.float32)
    for t in range(0, KH * ns):  # (window row, slab of its KW*C floats) in one loop
        kh = t // ns
        ka = (t % ns) * BK + tile.arange(0, BK)
        a = tile.load(base + kh * WP * C + rm[:, None] * (SW * C) + ka[None, :],
                      mask=(rm[:, None] < mtot) & (ka[None, :] < kwc), other=0.0)
        b = tile.load(w + (pn * KH + kh) * kwc * BN + ka[:, None] * BN
                      + tile.arange(0, BN)[None, :], mask=ka[:, None] < kwc, other=0.0)
        acc = tile.dot(a, b, acc)
    if HAS_BIAS:
        acc = acc + tile.load(bias + co, mask=co < COUT, other=0.0)[None, :]
    acc = activate(acc, ACT)
    if LIN:
        mask = (rm[:, None] < mtot) & (rm[:, None] % WP < OW) & (co[None, :] < COUT)
        at = (img * COUT + co[None, :]) * (OH * OW) + rm[:, None] // WP * OW + rm[:, None] % WP
    else:
        mask = (rm[:, None] < OW) & (co[None, :] < COUT)
        at = ((img * COUT + co[None, :]) * OH + oh) * OW + rm[:, None]
    if HAS_RES:
        acc = acc + tile.load(res + at, mask=mask, other=0.0)
    acc = activate(acc, RES_ACT)
    tile.store(y + at, acc, mask=mask)


def prepare_padded_nhwc(n, c, h, w, hp, wp, ph, pw, sub=1, backend="cpu"):
    """The `to_padded_nhwc_kernel` launch that copies an (n, c, h, w) NCHW input into an
    (n, hp, wp, c) buffer, the input's pixel (ih, iw) at (ih + ph, iw + pw) (or, with `sub` > 1
    and no padding, every sub-th pixel), zeros elsewhere: call it with (x, buffer)."""
    d = np.empty(1, np.float32)
    left = min(pw, wp)
    wc = max(0, min(-(-w // sub), wp - pw))  # the input columns that land inside the buffer
    return to_padded_nhwc_kernel.prepare(
        (hp, n), d, d, c, h, w, hp, wp, ph, left, wc, BC=min(32, c),
        BW=min(64, max(8, 1 << (w - 1).bit_length())), S=sub, backend=backend)


def _slab(k: int) -> int:
    """The K slab for a window row of k = KW*C floats: all of it up to 256, else equal slabs of
    at most 128 rounded up to 8 (a BK x 32 panel of weights stays in L1)."""
    if k <= 256:
        return k
    slabs = -(-k // 128)
    return -(-(-(-k // slabs)) // 8) * 8


class DirectPlan:
    """The two launches of a direct convolution of an (n, c, h, w) input with weights given as
    panels (`gemm.Panels` of the (KH*KW*C, Cout) matrix in (kh, kw, c) order, panel width `nr`),
    resolved once: `run = DirectPlan(...)`, then `run(x, panels, bias, residual, out)` with
    C-contiguous float32 arrays (bias and residual None when not given at preparation)."""

    def __init__(self, n, c, h, w, cout, kh, kw, stride, padding, nr, has_bias=False,
                 activation=None, has_res=False, res_activation=None, backend="cpu"):
        for act in (activation, res_activation):
            if act not in ACTIVATIONS:
                raise ValueError(f"activation must be one of {ACTIVATIONS}, got {act!r}")
        (sh, sw), (ph, pw) = stride, padding
        oh, ow = (h + 2 * ph - kh) // sh + 1, (w + 2 * pw - kw) // sw + 1
        self.out_shape = (n, cout, max(oh, 0), max(ow, 0))
        self.empty = min(self.out_shape) <= 0
        if self.empty:
            return
        # the padded input, without the rows and columns no window reaches
        hp, wp = (oh - 1) * sh + kh, (ow - 1) * sw + kw
        sub = 1
        if kh == kw == 1 and ph == pw == 0 and sh == sw:
            # a strided 1x1 convolution: the copy takes only the pixels read, and the
            # convolution is one plain GEMM over them
            sub, sh, sw, hp, wp = sh, 1, 1, oh, ow
        self.xp_shape = (n, hp, wp, c)
        self.has_bias, self.has_res = has_bias, has_res
        d = np.empty(1, np.float32)
        self.pad = prepare_padded_nhwc(n, c, h, w, hp, wp, ph, pw, sub, backend)
        lin = sh == sw == 1
        mtot = (oh - 1) * wp + ow if lin else ow  # GEMM rows (pixels) per program row
        bm = mtot if mtot <= 132 else -(-mtot // -(-mtot // 120))
        npan = -(-cout // nr)
        self.conv = conv_nhwc_kernel.prepare(
            (-(-mtot // bm), 1 if lin else oh, n * npan), d, d, d, d if has_bias else None,
            d if has_res else None, oh, ow, hp, wp, C=c, COUT=cout, KH=kh, KW=kw, SH=sh, SW=sw,
            LIN=lin, BM=bm, BN=nr, BK=_slab(kw * c), HAS_BIAS=has_bias, ACT=activation,
            HAS_RES=has_res, RES_ACT=res_activation, backend=backend)

    def __call__(self, x, panels, bias, res, out):
        if self.empty:
            return
        xp = np.empty(self.xp_shape, np.float32)
        self.pad(x, xp)
        extra = ([bias] if self.has_bias else []) + ([res] if self.has_res else [])
        self.conv(xp, panels, out, *extra)
