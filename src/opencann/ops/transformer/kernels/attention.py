"""Scaled dot-product attention as one kernel (flash-attention style online softmax).

Program (i, b*H + h) owns BM query rows of one head: it sweeps the keys in BN-wide blocks,
keeping a running row max `m`, row sum `l` and the unnormalized output `acc`, so the (Sq, Skv)
score matrix never exists in memory. Masks: `causal` (query i sees keys j <= i; key blocks past
the diagonal are skipped), `kv_lens` (per-batch number of valid keys), `key_padding_mask`
((B, Skv) bool, True = attend) and `additive_mask` (float, broadcastable to (B, H, Sq, Skv), added
to the scaled scores: what exporters emit, e.g. 0 / -inf or 0 / finfo.min). Rows that see no key
through the boolean masks produce zeros; an additive mask follows softmax (a row masked with
finite values everywhere averages its values).
"""

from __future__ import annotations

import math

import numpy as np

from opencann import tile

__all__ = ["attention_kernel", "attention"]


@tile.kernel(do_not_specialize=("Sq", "Skv", "H", "sqb", "sqh", "sqs", "skb", "skh", "sks", "svb",
                                "svh", "svs", "sob", "soh", "sos", "smb", "smh", "sms"))
def attention_kernel(q, k, v, out, lens, kmask, amask, Sq, Skv, H, scale,
                     sqb, sqh, sqs, skb, skh, sks, svb, svh, svs, sob, soh, sos, smb, smh, sms,
                     D: tile.constexpr, BM: tile.constexpr, BN: tile.constexpr,
                     CAUSAL: tile.constexpr, HAS_MASK: tile.constexpr,
                     HAS_ADD: tile.constexpr = False):
    """BM query rows of one (batch, head), keys swept BN at a time."""
    pid_m = tile.program_id(0)
    bh = tile.program_id(1)
    b = bh // H
    h = bh % H
    rm = pid_m * BM + tile.arange(0, BM)
    rd = tile.arange(0, D)
    qt = tile.load(q + b * sqb + h * sqh + rm[:, None] * sqs + rd[None, :],
                   mask=rm[:, None] < Sq, other=0.0).to(tile.float32) * scale
    m_i = tile.full((BM,), float("-inf"), tile.float32)
    l_i = tile.zeros((BM,), tile.float32)
    acc = tile.zeros((BM, D), tile.float32)
    kv_len = tile.minimum(tile.load(lens + b).to(tile.int64), Skv)
    hi = kv_len
    if CAUSAL:
        hi = tile.minimum(hi, (pid_m + 1) * BM)
    for n0 in range(0, hi, BN):
        cols = n0 + tile.arange(0, BN)
        kt = tile.load(k + b * skb + h * skh + cols[:, None] * sks + rd[None, :],
                       mask=cols[:, None] < kv_len, other=0.0).to(tile.float32)
        s = tile.dot(qt, tile.trans(kt))
        if HAS_ADD:  # an additive mask, strided over (batch, head, query), keys contiguous
            s = s + tile.load(amask + b * smb + h * smh + rm[:, None] * sms + cols[None, :],
                              mask=(rm[:, None] < Sq) & (cols[None, :] < kv_len), other=0.0)
        valid = cols[None, :] < kv_len
        if CAUSAL:
            valid = valid & (cols[None, :] <= rm[:, None])
        if HAS_MASK:
            valid = valid & tile.load(kmask + b * Skv + cols, mask=cols < Skv, other=False)[None, :]
        s = tile.where(valid, s, float("-inf"))
        m_new = tile.maximum(m_i, tile.max(s, axis=1))
        m_safe = m_new  # finite: every block sees a key, unless a mask hides a whole row
        if HAS_MASK or HAS_ADD:
            m_safe = tile.where(m_new == float("-inf"), 0.0, m_new)
        p = tile.exp(s - m_safe[:, None])
        alpha = tile.exp(m_i - m_safe)
        l_i = l_i * alpha + tile.sum(p, axis=1)
        vt = tile.load(v + b * svb + h * svh + cols[:, None] * svs + rd[None, :],
                       mask=cols[:, None] < kv_len, other=0.0).to(tile.float32)
        acc = tile.dot(p, vt, acc * alpha[:, None])
        m_i = m_new
    o = acc / tile.where(l_i == 0.0, 1.0, l_i)[:, None]
    tile.store(out + b * sob + h * soh + rm[:, None] * sos + rd[None, :], o, mask=rm[:, None] < Sq)


PREPARED_MAX = 64
_PREPARED: dict = {}  # launch signature -> tile.kernel.Prepared


def _el(x):
    return [s // x.itemsize for s in x.strides[:3]]


def _readable(x) -> bool:
    """Whether the kernel can address `x` where it lies: last dim contiguous, strides >= 0."""
    isz = x.itemsize
    return x.size > 0 and x.strides[-1] == isz and all(s >= 0 and s % isz == 0 for s in x.strides)


def _in_place(x):
    """`x` as the kernel reads it: a (B, H, S, D) view whose last dim is contiguous is passed as
    it lies in memory (a 1-d window over its elements, with x's strides); other layouts are
    copied. Returns (array to pass, strides in elements of the first three dims)."""
    if not _readable(x):
        x = np.ascontiguousarray(x)
    if x.flags.c_contiguous:
        return x, _el(x)
    isz = x.itemsize
    extent = 1 + sum((n - 1) * (s // isz) for n, s in zip(x.shape, x.strides))
    return np.lib.stride_tricks.as_strided(x, shape=(extent,), strides=(isz,)), _el(x)


def attention(q, k, v, causal=False, kv_lens=None, key_padding_mask=None, scale=None,
              backend="cpu", blocks=None, additive_mask=None, out=None):
    """softmax(q @ k^T * scale + masks) @ v for q (B, H, Sq, D), k and v (B, H, Skv, D).

    Also accepts 3-d (H, S, D) inputs. float32/float16/bfloat16 inputs; the output has q's dtype.
    `additive_mask` broadcasts to (B, H, Sq, Skv) and is added to the scaled scores. Inputs whose
    last dim is contiguous (e.g. heads split off a projection by reshape and transpose) are read
    where they lie; `out` may be such a view too (e.g. the (B, H, Sq, D) transpose of a
    (B, Sq, H, D) buffer, so the heads come out merged).
    """
    q, k, v = (np.asarray(t) for t in (q, k, v))
    squeeze = q.ndim == 3
    if squeeze:
        q, k, v = q[None], k[None], v[None]
    if q.ndim != 4 or k.shape != v.shape or q.shape[:2] != k.shape[:2] or q.shape[3] != k.shape[3]:
        raise ValueError(f"attention needs q (B,H,Sq,D), k and v (B,H,Skv,D); got {q.shape}, "
                         f"{k.shape}, {v.shape}")
    q, k, v = (t if tile.is_float_storage(t.dtype) else t.astype(np.float32) for t in (q, k, v))
    B, H, Sq, D = q.shape
    Skv = k.shape[2]
    if out is None:
        out = np.empty(q.shape, q.dtype)
    else:
        if out.ndim == 3:
            out = out[None]
        if out.shape != q.shape or out.dtype != q.dtype:
            raise ValueError(f"attention: out must be {q.dtype} {q.shape}, got {out.dtype} {out.shape}")
    if out.size and k.size:
        scale = 1.0 / math.sqrt(D) if scale is None else float(scale)
        lens = np.ascontiguousarray(np.broadcast_to(Skv if kv_lens is None else kv_lens, (B,)),
                                    np.int32)
        kmask = None if key_padding_mask is None else np.ascontiguousarray(
            np.broadcast_to(key_padding_mask, (B, Skv)), np.bool_)
        amask, mstrides = None, (0, 0, 0)
        if additive_mask is not None:
            amask = np.asarray(additive_mask, np.float32)
            np.broadcast_shapes(amask.shape, (B, H, Sq, Skv))  # raises when it does not fit
            amask = amask.reshape((1,) * (4 - amask.ndim) + amask.shape)
            if amask.shape[-1] != Skv:  # one value for every key: spell it out
                amask = np.broadcast_to(amask, amask.shape[:-1] + (Skv,))
            amask = np.ascontiguousarray(amask)
            # the kernel reads the mask where it is: stride 0 along broadcast dims
            mstrides = tuple(0 if n == 1 else st // 4 for n, st in zip(amask.shape[:3], amask.strides[:3]))
        # one program per 128 queries of a head (64 under a causal mask, so that more key
        # blocks are skipped); measured on 12 heads at S=128 and 512, D=32 and 64
        top = 64 if causal else 128
        bm, bn = blocks or (top if Sq >= top else max(8, -(-Sq // 8) * 8), 64)
        (q, sq), (k, sk), (v, sv) = _in_place(q), _in_place(k), _in_place(v)
        if not _readable(out):
            raise ValueError("attention: out's last dim must be contiguous, its strides >= 0")
        o, so = _in_place(out)
        grid = (-(-Sq // bm), B * H)
        args = (q, k, v, o, lens, kmask, amask, Sq, Skv, H, scale, *sq, *sk, *sv, *so, *mstrides)
        meta = {"D": D, "BM": bm, "BN": bn, "CAUSAL": bool(causal), "HAS_MASK": kmask is not None,
                "HAS_ADD": amask is not None}
        arrays = [a for a in args[:7] if a is not None]
        # a launch through the kernel's generic launcher binds and specializes its 30 arguments
        # in Python (about 80 us, a quarter of a MiniLM layer's attention): the launches made
        # so far are kept prepared, keyed by everything but the arrays' data
        key = (backend, grid, tuple(a.dtype.char for a in arrays), args[7:], tuple(meta.values()))
        launch = _PREPARED.get(key) if isinstance(backend, str) else None
        if launch is None:
            launch = attention_kernel.prepare(grid, *args, backend=backend, **meta)
            if isinstance(backend, str):
                if len(_PREPARED) >= PREPARED_MAX:
                    _PREPARED.pop(next(iter(_PREPARED)))
                _PREPARED[key] = launch
        launch(*arrays)
    elif out.size:
        out[...] = 0  # no keys: every row sees nothing
    return out[0] if squeeze else out
