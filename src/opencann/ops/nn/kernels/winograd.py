"""3x3 stride-1 convolution by Winograd's minimal filtering, F(m x m, 3 x 3), m = 2 or 4.

A convolution's output is cut into m x m tiles; each tile needs an (m+2) x (m+2) patch of the
input. With the transforms of Lavin & Gray ("Fast Algorithms for Convolutional Neural Networks",
2015), the patch d and the filter g become Bᵀ d B and G g Gᵀ, their elementwise product summed
over input channels gives M, and Aᵀ M A is the output tile. Summing over channels is, for each of
the (m+2)² transform positions ξ, a matrix product:

    V[ξ] (tiles x C)  @  U[ξ] (C x Cout)  ->  M[ξ] (tiles x Cout)

so the work is `(m+2)²` GEMMs of (tiles, C, Cout) instead of one of (OH*OW, 9*C, Cout): 2.25x
fewer multiplications for m = 2, 4x for m = 4, plus two cheap transforms. The filter transform is
done once, when the convolution is planned (`transform_weights`); the input transform
(`wino_input_kernel`, over a zero-padded NHWC copy of the input so that each load is a vector of
contiguous channels) and output transform (`wino_output_kernel`, which also adds the bias and
applies the activation) are tile kernels, and the GEMMs are the library's batched GEMM.

Accuracy: the transforms' coefficients are small (m = 4 uses the points 0, ±1, ±2, ±1/2), so the
float32 result stays within a few 1e-6 of the direct sum, relative to the output's scale (tested).
"""

from __future__ import annotations

import numpy as np

from opencann import tile
from opencann.ops.math.kernels.gemm import ACTIVATIONS, activate, prepare_gemm

from .direct import prepare_padded_nhwc

__all__ = ["TRANSFORMS", "WinogradPlan", "supports", "transform_weights", "winograd_conv3x3",
           "wino_input_kernel", "wino_output_kernel"]

# m -> (Bᵀ, G, Aᵀ) for F(m, 3); alpha = m + 2 points
TRANSFORMS = {
    2: (((1, 0, -1, 0),
         (0, 1, 1, 0),
         (0, -1, 1, 0),
         (0, 1, 0, -1)),
        ((1, 0, 0),
         (0.5, 0.5, 0.5),
         (0.5, -0.5, 0.5),
         (0, 0, 1)),
        ((1, 1, 1, 0),
         (0, 1, -1, -1))),
    4: (((4, 0, -5, 0, 1, 0),
         (0, -4, -4, 1, 1, 0),
         (0, 4, -4, -1, 1, 0),
         (0, -2, -1, 2, 1, 0),
         (0, 2, -1, -2, 1, 0),
         (0, 4, 0, -5, 0, 1)),
        ((1 / 4, 0, 0),
         (-1 / 6, -1 / 6, -1 / 6),
         (-1 / 6, 1 / 6, -1 / 6),
         (1 / 24, 1 / 12, 1 / 6),
         (1 / 24, -1 / 12, 1 / 6),
         (0, 0, 1)),
        ((1, 1, 1, 1, 1, 0),
         (0, 1, -1, 2, -2, 0),
         (0, 1, 1, 4, 4, 0),
         (0, 1, -1, 8, -8, 1))),
}


def _combine(row, xs):
    """sum(c * x for c, x in zip(row, xs)) over the nonzero constants `row`, at trace time: a
    coefficient of ±1 is an add or a subtract, any other a multiply-add."""
    acc = None
    for c, x in zip(row, xs):
        if c == 0:
            continue
        if acc is None:
            acc = x if c == 1 else x * float(c)
        elif c == 1:
            acc = acc + x
        elif c == -1:
            acc = acc - x
        elif c > 0:
            acc = acc + x * float(c)
        else:
            acc = acc - x * float(-c)
    return acc


def _sandwich(left, d):
    """left · d · leftᵀ for a square list-of-lists of tiles `d` (trace time)."""
    cols = len(d[0])
    rows = [[_combine(r, [d[k][j] for k in range(len(d))]) for j in range(cols)] for r in left]
    return [[_combine(r, rows[i]) for r in left] for i in range(len(left))]


@tile.kernel(do_not_specialize=("C", "HP", "WP", "TH", "TW", "T"))
def wino_input_kernel(x, v, C, HP, WP, TH, TW, T, M: tile.constexpr, BC: tile.constexpr):
    """Bᵀ d B of the input patches of tile row pid(0), channels [pid(1)*BC, +BC), image pid(2):
    V[ξ, tile, c]. `x` is the input zero-padded and channels-last, (HP, WP, C) per image with
    HP >= TH*M + 2 and WP >= TW*M + 2 (`direct.prepare_padded_nhwc`): every load is BC
    contiguous channels, with no test for the border."""
    th = tile.program_id(0)
    c = tile.program_id(1) * BC + tile.arange(0, BC)
    img = tile.program_id(2)
    bt = TRANSFORMS[M][0]
    alpha = M + 2
    cm = c < C
    for tw in range(0, TW):
        t = (img * TH + th) * TW + tw
        src = x + ((img * HP + th * M) * WP + tw * M) * C
        d = [[tile.load(src + (i * WP + j) * C + c, mask=cm, other=0.0)
              for j in tile.static_range(alpha)] for i in tile.static_range(alpha)]
        out = _sandwich(bt, d)
        for i in tile.static_range(alpha):
            for j in tile.static_range(alpha):
                tile.store(v + ((i * alpha + j) * T + t) * C + c, out[i][j], mask=cm)


def _output_epilogue(y, res, out, b, dst, th, tw, ok, OH, OW, M, HAS_BIAS, ACT, HAS_RES,
                     RES_ACT):
    """Store the M x M output tiles `out` (tiles of any shape; `tw` and `ok` broadcast to them)
    with the GEMM's epilogue (inside the kernel)."""
    for i in tile.static_range(M):
        oh = th * M + i
        for j in tile.static_range(M):
            ow = tw * M + j
            okp = ok & (oh < OH) & (ow < OW)
            at_ = dst + oh * OW + ow
            acc = out[i][j]
            if HAS_BIAS:
                acc = acc + b
            acc = activate(acc, ACT)
            if HAS_RES:
                acc = acc + tile.load(res + at_, mask=okp, other=0.0)
            acc = activate(acc, RES_ACT)
            tile.store(y + at_, acc, mask=okp)


@tile.kernel(do_not_specialize=("Cout", "OH", "OW", "TH", "TW", "T"))
def wino_output_kernel(mx, y, bias, res, Cout, OH, OW, TH, TW, T, M: tile.constexpr,
                       BC: tile.constexpr, BT: tile.constexpr, HAS_BIAS: tile.constexpr,
                       ACT: tile.constexpr, HAS_RES: tile.constexpr, RES_ACT: tile.constexpr):
    """Aᵀ M A of the tiles of tile row pid(0), output channels [pid(1)*BC, +BC), image pid(2),
    then the GEMM's epilogue, res_act(act(. + bias) + res), stored NCHW. BT == 1: a vector of BC
    channels per tile; BT > 1: (BC channels, BT tiles of the row) at a time, so the stores and
    residual loads run along the output's rows rather than touching a cache line per channel."""
    th = tile.program_id(0)
    co = tile.program_id(1) * BC + tile.arange(0, BC)
    img = tile.program_id(2)
    at = TRANSFORMS[M][2]
    alpha = M + 2
    cm = co < Cout
    b = None
    if BT == 1:
        if HAS_BIAS:
            b = tile.load(bias + co, mask=cm, other=0.0)
        dst = (img * Cout + co) * (OH * OW)
        for tw in range(0, TW):
            t = (img * TH + th) * TW + tw
            m = [[tile.load(mx + ((i * alpha + j) * T + t) * Cout + co, mask=cm, other=0.0)
                  for j in tile.static_range(alpha)] for i in tile.static_range(alpha)]
            _output_epilogue(y, res, _sandwich(at, m), b, dst, th, tw, cm, OH, OW, M, HAS_BIAS,
                             ACT, HAS_RES, RES_ACT)
    else:
        if HAS_BIAS:
            b = tile.load(bias + co, mask=cm, other=0.0)[:, None]
        dst = (img * Cout + co[:, None]) * (OH * OW)
        for tw0 in range(0, TW, BT):
            tw = tw0 + tile.arange(0, BT)
            t = (img * TH + th) * TW + tw
            ok = cm[:, None] & (tw[None, :] < TW)
            m = [[tile.load(mx + ((i * alpha + j) * T + t[None, :]) * Cout + co[:, None],
                            mask=ok, other=0.0)
                  for j in tile.static_range(alpha)] for i in tile.static_range(alpha)]
            _output_epilogue(y, res, _sandwich(at, m), b, dst, th, tw[None, :], ok, OH, OW, M,
                             HAS_BIAS, ACT, HAS_RES, RES_ACT)


def supports(weight_shape, stride=(1, 1), dilation=(1, 1), groups=1) -> bool:
    """Whether a convolution is one `winograd_conv3x3` computes: 3x3, stride 1, dilation 1,
    one group."""
    return (len(weight_shape) == 4 and tuple(weight_shape[2:]) == (3, 3) and tuple(stride) == (1, 1)
            and tuple(dilation) == (1, 1) and groups == 1)


def transform_weights(weight, m: int) -> np.ndarray:
    """U = G g Gᵀ of (Cout, C, 3, 3) float weights, laid out (alpha², C, Cout) for the GEMMs;
    computed in float64, returned as float32."""
    if m not in TRANSFORMS:
        raise ValueError(f"winograd: tile size m must be one of {sorted(TRANSFORMS)}, got {m}")
    w = np.asarray(weight, np.float64)
    if w.ndim != 4 or w.shape[2:] != (3, 3):
        raise ValueError(f"winograd: weights must be (Cout, C, 3, 3), got {w.shape}")
    g = np.asarray(TRANSFORMS[m][1], np.float64)
    u = np.einsum("ak,ockl,bl->abco", g, w, g)  # (alpha, alpha, C, Cout)
    alpha = m + 2
    return np.ascontiguousarray(u.reshape(alpha * alpha, w.shape[1], w.shape[0]), np.float32)


def winograd_conv3x3(x, u, m: int, bias=None, padding=(1, 1), activation=None, residual=None,
                     backend="cpu", out=None, res_activation=None):
    """`res_act(act(conv3x3(x, w) + bias) + residual)` for NCHW float32 `x`, stride 1, with
    `u = transform_weights(w, m)`. `padding` (ph, pw) is symmetric; `out` an optional
    C-contiguous (N, Cout, OH, OW) float32 array to write into."""
    x = np.ascontiguousarray(x, np.float32)
    n, c, h, w = x.shape
    alpha = m + 2
    if u.shape[:2] != (alpha * alpha, c):
        raise ValueError(f"winograd: transformed weights {u.shape} do not fit F({m},3) on an input "
                         f"with {c} channels (want ({alpha * alpha}, {c}, Cout))")
    run = WinogradPlan(n, c, h, w, u.shape[2], m, padding, bias is not None, activation,
                       residual is not None, res_activation, backend)
    shape = run.out_shape
    if out is None:
        out = np.empty(shape, np.float32)
    elif out.shape != shape or out.dtype != np.float32 or not out.flags.c_contiguous:
        raise ValueError(f"winograd: out must be a C-contiguous float32 {shape}, got {out.dtype} "
                         f"{out.shape}")
    b = None if bias is None else np.ascontiguousarray(bias, np.float32).reshape(-1)
    res = None
    if residual is not None:
        res = np.ascontiguousarray(np.broadcast_to(residual, shape), np.float32)
    run(x, u, b, res, out)
    return out


class WinogradPlan:
    """The three launches of a Winograd convolution of an (n, c, h, w) input into `cout`
    channels, resolved once: `run = WinogradPlan(...)`, then `run(x, u, bias, residual, out)` with
    C-contiguous float32 arrays (bias and residual None when not given at preparation). With
    `u_panels` = NR, `u` is `pack_panels(transform_weights(...)).data`: the transformed weights
    stored once as GEMM panels (what `Conv2d` keeps)."""

    def __init__(self, n, c, h, w, cout, m, padding=(1, 1), has_bias=False, activation=None,
                 has_res=False, res_activation=None, backend="cpu", u_panels=0):
        if m not in TRANSFORMS:
            raise ValueError(f"winograd: tile size m must be one of {sorted(TRANSFORMS)}, got {m}")
        for act in (activation, res_activation):
            if act not in ACTIVATIONS:
                raise ValueError(f"activation must be one of {ACTIVATIONS}, got {act!r}")
        ph, pw = padding
        oh, ow = h + 2 * ph - 2, w + 2 * pw - 2
        self.out_shape = (n, cout, max(oh, 0), max(ow, 0))
        self.empty = min(self.out_shape) <= 0
        if self.empty:
            return
        alpha = m + 2
        th, tw = -(-oh // m), -(-ow // m)
        t = n * th * tw
        self.v_shape, self.m_shape = (alpha * alpha, t, c), (alpha * alpha, t, cout)
        self.has_bias, self.has_res = has_bias, has_res
        d = np.empty(1, np.float32)
        # the input padded and channels-last, over every tile's patch
        hp, wp = th * m + 2, tw * m + 2
        self.xp_shape = (n, hp, wp, c)
        self.pad = prepare_padded_nhwc(n, c, h, w, hp, wp, ph, pw, backend=backend)
        bc = min(64, max(8, 1 << (c - 1).bit_length()))
        self.inp = wino_input_kernel.prepare((th, -(-c // bc), n), d, d, c, hp, wp, th, tw, t,
                                             M=m, BC=bc, backend=backend)
        self.gemm = prepare_gemm(t, cout, c, alpha * alpha, True, True, backend=backend,
                                 b_panels=u_panels)
        # (channels, tiles of a row) per step: F(2x2) takes a row's tiles 8 or 16 at a time, so
        # its stores run along output rows (14x14, 256 channels: 0.166 -> 0.06 ms); F(4x4) is
        # faster with 64 channels of one tile (56x56, 64 channels: 0.16 against 0.185 ms)
        bt = 1 if m == 4 else min(16, max(4, 1 << (tw - 1).bit_length()))
        bo = min(64 // bt, max(1, 1 << (cout - 1).bit_length()))
        self.outp = wino_output_kernel.prepare(
            (th, -(-cout // bo), n), d, d, d if has_bias else None, d if has_res else None, cout,
            oh, ow, th, tw, t, M=m, BC=bo, BT=bt, HAS_BIAS=has_bias, ACT=activation,
            HAS_RES=has_res, RES_ACT=res_activation, backend=backend)

    def __call__(self, x, u, bias, res, out):
        if self.empty:
            return
        xp = np.empty(self.xp_shape, np.float32)
        self.pad(x, xp)
        v = np.empty(self.v_shape, np.float32)
        self.inp(xp, v)
        del xp
        mx = np.empty(self.m_shape, np.float32)
        self.gemm(v, u, mx)
        extra = ([bias] if self.has_bias else []) + ([res] if self.has_res else [])
        self.outp(mx, out, *extra)
