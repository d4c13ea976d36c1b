"""2-d max and average pooling over NCHW tensors (any kernel size, stride, padding, dilation).

Program (oh, nc) computes output row oh of one (n, c) plane; a window of up to 9 taps is unrolled
at trace time (its size is constexpr), a bigger one swept by loops, and every tap is a masked
load along the row.
"""

from __future__ import annotations

import numpy as np

from opencann import tile

__all__ = ["pool2d_kernel", "max_pool2d", "avg_pool2d"]


def _tap(x, acc, cnt, nc, ih, row_ok, ow, valid, H, W, SW, PW, kw, DW, fill, MAX):
    """One window tap along an output row (inside the kernel): max or sum in, count the valid."""
    iw = ow * SW - PW + kw * DW
    m = valid & row_ok & (iw >= 0) & (iw < W)
    v = tile.load(x + (nc * H + ih) * W + iw, mask=m, other=fill).to(tile.float32)
    if MAX:
        return tile.maximum(acc, v), cnt
    return acc + v, cnt + tile.where(m, 1.0, 0.0)


@tile.kernel(do_not_specialize=("H", "W", "OH", "OW", "PH", "PW"))
def pool2d_kernel(x, out, H, W, OH, OW, PH, PW, DH, DW, SH: tile.constexpr, SW: tile.constexpr,
                  KH: tile.constexpr, KW: tile.constexpr, MAX: tile.constexpr,
                  COUNT_PAD: tile.constexpr, BLOCK: tile.constexpr, UNROLL: tile.constexpr = True):
    """Output row oh of one (n, c) plane, BLOCK pixels at a time: max or average over the
    window (no division per pixel; unit-stride loads when the stride is 1). The window is
    unrolled when UNROLL, else swept by loops (big windows: no code growth)."""
    oh = tile.program_id(0)
    nc = tile.program_id(1)
    fill = float("-inf") if MAX else 0.0
    for ow0 in range(0, OW, BLOCK):
        ow = ow0 + tile.arange(0, BLOCK)
        valid = ow < OW
        acc = tile.full((BLOCK,), fill, tile.float32)
        cnt = tile.zeros((BLOCK,), tile.float32)
        if UNROLL:
            for kh in tile.static_range(KH):
                ih = oh * SH - PH + kh * DH
                row_ok = (ih >= 0) & (ih < H)
                for kw in tile.static_range(KW):
                    acc, cnt = _tap(x, acc, cnt, nc, ih, row_ok, ow, valid, H, W, SW, PW, kw, DW,
                                    fill, MAX)
        else:
            for kh in range(0, KH):
                ih = oh * SH - PH + kh * DH
                row_ok = (ih >= 0) & (ih < H)
                for kw in range(0, KW):
                    acc, cnt = _tap(x, acc, cnt, nc, ih, row_ok, ow, valid, H, W, SW, PW, kw, DW,
                                    fill, MAX)
        if not MAX:
            if COUNT_PAD:
                acc = acc / (KH * KW)
            else:
                acc = acc / tile.maximum(cnt, 1.0)
        tile.store(out + (nc * OH + oh) * OW + ow, acc, mask=valid)


UNROLL_TAPS = 9  # windows up to this many taps are unrolled


def _pair(v):
    return (v, v) if isinstance(v, int) else tuple(v)


def _pool(x, kernel_size, stride, padding, dilation, is_max, count_include_pad, ceil_mode, backend):
    x = np.ascontiguousarray(x)
    if not tile.is_float_storage(x.dtype):
        x = x.astype(np.float32)
    n, c, h, w = x.shape
    kh, kw = _pair(kernel_size)
    sh, sw = _pair(stride if stride is not None else kernel_size)
    ph, pw = _pair(padding)
    dh, dw = _pair(dilation)
    rnd = (lambda a, b: -(-a // b)) if ceil_mode else (lambda a, b: a // b)
    oh = rnd(h + 2 * ph - dh * (kh - 1) - 1, sh) + 1
    ow = rnd(w + 2 * pw - dw * (kw - 1) - 1, sw) + 1
    if ceil_mode:  # a window may not start in the right padding
        oh -= (oh - 1) * sh >= h + ph
        ow -= (ow - 1) * sw >= w + pw
    out = np.empty((n, c, max(oh, 0), max(ow, 0)), x.dtype)
    if out.size:
        block = min(512, max(16, 1 << (ow - 1).bit_length()))
        pool2d_kernel[(oh, n * c)](
            x, out, h, w, oh, ow, ph, pw, dh, dw, SH=sh, SW=sw, KH=kh, KW=kw, MAX=is_max,
            COUNT_PAD=count_include_pad, BLOCK=block, UNROLL=kh * kw <= UNROLL_TAPS,
            backend=backend)
    return out


def max_pool2d(x, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, backend="cpu"):
    """Max pooling of an NCHW array (padding never wins the max)."""
    return _pool(x, kernel_size, stride, padding, dilation, True, False, ceil_mode, backend)


def avg_pool2d(x, kernel_size, stride=None, padding=0, count_include_pad=False, ceil_mode=False,
               backend="cpu"):
    """Average pooling of an NCHW array."""
    return _pool(x, kernel_size, stride, padding, 1, False, count_include_pad, ceil_mode, backend)
