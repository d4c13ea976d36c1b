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
import os

import numpy as np

from opencann import tile

__all__ = ["attention_kernel", "attention_bwd_kv_kernel", "attention_bwd_q_kernel", "attention",
           "attention_backward"]


def _block_of_head(H, G, BLOCK):
    """(rows of block program_id(0), batch * H + head, batch, head, key/value head) of the
    program (called inside kernels; G query heads share a key/value head)."""
    bh = tile.program_id(1)
    h = bh % H
    return tile.program_id(0) * BLOCK + tile.arange(0, BLOCK), bh, bh // H, h, h // G


@tile.kernel(do_not_specialize=("Sq", "Skv", "H", "sqb", "sqh", "sqs", "skb", "skh", "sks", "svb",
                                "svh", "svs", "sob", "soh", "sos", "smb", "smh", "sms"))
def attention_kernel(q, k, v, out, lens, kmask, amask, Sq, Skv, H, scale,
                     sqb, sqh, sqs, skb, skh, sks, svb, svh, svs, sob, soh, sos, smb, smh, sms,
                     D: tile.constexpr, BM: tile.constexpr, BN: tile.constexpr,
                     CAUSAL: tile.constexpr, HAS_MASK: tile.constexpr,
                     HAS_ADD: tile.constexpr = False, lse=None, HAS_LSE: tile.constexpr = False,
                     G: tile.constexpr = 1):
    """BM query rows of one (batch, head), keys swept BN at a time. With HAS_LSE the rows'
    log-sum-exp of the scaled scores goes to `lse` ((B, H, Sq), contiguous): what the backward
    kernels recompute the probabilities from. G query heads share one key/value head."""
    rm, bh, b, h, hk = _block_of_head(H, G, BM)
    pid_m = tile.program_id(0)
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
        kt = tile.load(k + b * skb + hk * skh + cols[:, None] * sks + rd[None, :],
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
        vt = tile.load(v + b * svb + hk * svh + cols[:, None] * svs + rd[None, :],
                       mask=cols[:, None] < kv_len, other=0.0).to(tile.float32)
        acc = tile.dot(p, vt, acc * alpha[:, None])
        m_i = m_new
    o = acc / tile.where(l_i == 0.0, 1.0, l_i)[:, None]
    tile.store(out + b * sob + h * soh + rm[:, None] * sos + rd[None, :], o, mask=rm[:, None] < Sq)
    if HAS_LSE:
        tile.store(lse + bh * Sq + rm, m_i + tile.log(l_i), mask=rm < Sq)


def _query_rows(q, o, do, lse, b, h, bh, rm, rd, Sq, sq, so, sg):
    """A block of query rows for the backward (called inside kernels): q, dO, the forward's
    log-sum-exp and D = rowsum(dO * O); sq, so, sg: (batch, head, row) strides of q, o, dO."""
    qmask = rm[:, None] < Sq
    qt = tile.load(q + b * sq[0] + h * sq[1] + rm[:, None] * sq[2] + rd[None, :], mask=qmask,
                   other=0.0)
    dot_ = tile.load(do + b * sg[0] + h * sg[1] + rm[:, None] * sg[2] + rd[None, :], mask=qmask,
                     other=0.0)
    ot = tile.load(o + b * so[0] + h * so[1] + rm[:, None] * so[2] + rd[None, :], mask=qmask,
                   other=0.0)
    lse_r = tile.load(lse + bh * Sq + rm, mask=rm < Sq, other=0.0)
    return qt, dot_, lse_r, tile.sum(dot_ * ot, axis=1)


def _key_rows(k, v, b, hk, rn, rd, Skv, sk, sv):
    """A block of keys and values (called inside kernels); sk, sv: their (batch, head, row)
    strides."""
    kmask = rn[:, None] < Skv
    kt = tile.load(k + b * sk[0] + hk * sk[1] + rn[:, None] * sk[2] + rd[None, :], mask=kmask,
                   other=0.0)
    vt = tile.load(v + b * sv[0] + hk * sv[1] + rn[:, None] * sv[2] + rd[None, :], mask=kmask,
                   other=0.0)
    return kt, vt


def _recompute(qt, kt, vt, dot_, lse_r, di, rm, rn, Sq, Skv, scale, CAUSAL):
    """The backward's shared step on one (query block, key block) pair (called inside kernels):
    the probabilities p = exp(scale * q k^T - lse) (zero outside the causal triangle and past
    the edges) and ds = p * (dO v^T - D) * scale, the gradient of the scaled scores."""
    s = tile.dot(qt, tile.trans(kt)) * scale
    valid = (rm[:, None] < Sq) & (rn[None, :] < Skv)
    if CAUSAL:
        valid = valid & (rn[None, :] <= rm[:, None])
    p = tile.where(valid, tile.exp(s - lse_r[:, None]), 0.0)
    dp = tile.dot(dot_, tile.trans(vt))
    return p, p * (dp - di[:, None]) * scale


def _kv_start(dka, dva, b, h, rn, rd, Skv, sak, sav, BN, D, ACC):
    """dK and dV sums of a key block at their start (called inside kernels): zeros, or with ACC
    the gradients from other paths at dka, dva ((batch, head, row) strides sak, sav)."""
    if not ACC:
        return tile.zeros((BN, D), tile.float32), tile.zeros((BN, D), tile.float32)
    kmask = rn[:, None] < Skv
    return (tile.load(dka + b * sak[0] + h * sak[1] + rn[:, None] * sak[2] + rd[None, :],
                      mask=kmask, other=0.0),
            tile.load(dva + b * sav[0] + h * sav[1] + rn[:, None] * sav[2] + rd[None, :],
                      mask=kmask, other=0.0))


def _kv_sweep_step(q, o, do, lse, b, h, bh, rm, rn, rd, kt, vt, Sq, Skv, scale, CAUSAL, sq, so,
                   sg, dk_acc, dv_acc):
    """One query block of a key block's sweep (called inside kernels): the block pair's
    probabilities and score gradients, added into the dK and dV sums. Returns (ds, dk, dv)."""
    qt, dot_, lse_r, di = _query_rows(q, o, do, lse, b, h, bh, rm, rd, Sq, sq, so, sg)
    p, ds = _recompute(qt, kt, vt, dot_, lse_r, di, rm, rn, Sq, Skv, scale, CAUSAL)
    return ds, tile.dot(tile.trans(ds), qt, dk_acc), tile.dot(tile.trans(p), dot_, dv_acc)


def _kv_store(dk, dv, b, h, rn, rd, Skv, sd, dk_acc, dv_acc):
    """A key block's dK and dV stored (called inside kernels; (batch, head, row) strides sd)."""
    kmask = rn[:, None] < Skv
    tile.store(dk + b * sd[0] + h * sd[1] + rn[:, None] * sd[2] + rd[None, :], dk_acc, mask=kmask)
    tile.store(dv + b * sd[0] + h * sd[1] + rn[:, None] * sd[2] + rd[None, :], dv_acc, mask=kmask)


@tile.kernel(do_not_specialize=("Sq", "Skv", "H", "sqb", "sqh", "sqs", "skb", "skh", "sks", "svb",
                                "svh", "svs", "sob", "soh", "sos", "sgb", "sgh", "sgs", "sdb",
                                "sdh", "sds", "sakb", "sakh", "saks", "savb", "savh", "savs"))
def attention_bwd_kv_kernel(q, k, v, o, do, lse, dk, dv, Sq, Skv, H, scale,
                            sqb, sqh, sqs, skb, skh, sks, svb, svh, svs, sob, soh, sos,
                            sgb, sgh, sgs, sdb, sdh, sds, dka=None, dva=None, sakb=0, sakh=0,
                            saks=0, savb=0, savh=0, savs=0,
                            D: tile.constexpr = 64, BM: tile.constexpr = 64,
                            BN: tile.constexpr = 64, CAUSAL: tile.constexpr = False,
                            G: tile.constexpr = 1, ACC: tile.constexpr = False):
    """dK and dV of BN keys for one query head (program (key block, batch * H + head)): the
    query blocks are swept, the probabilities recomputed from `lse`. dk and dv are per query
    head ((B, H, Skv, D), strides sd*); grouped heads are summed afterwards. With ACC (G = 1),
    dk and dv start from dka and dva (strides sak*, sav*) instead of zero: the gradients that
    reach K and V by other paths (a returned key/value cache) are added in the same pass."""
    rn, bh, b, h, hk = _block_of_head(H, G, BN)
    pid_n = tile.program_id(0)
    rd = tile.arange(0, D)
    kt, vt = _key_rows(k, v, b, hk, rn, rd, Skv, (skb, skh, sks), (svb, svh, svs))
    dk_acc, dv_acc = _kv_start(dka, dva, b, h, rn, rd, Skv, (sakb, sakh, saks),
                               (savb, savh, savs), BN, D, ACC)
    lo = 0
    if CAUSAL:  # queries before this key block's first key see none of it
        lo = pid_n * BN // BM * BM
    for m0 in range(lo, Sq, BM):
        rm = m0 + tile.arange(0, BM)
        _, dk_acc, dv_acc = _kv_sweep_step(q, o, do, lse, b, h, bh, rm, rn, rd, kt, vt, Sq, Skv,
                                           scale, CAUSAL, (sqb, sqh, sqs), (sob, soh, sos),
                                           (sgb, sgh, sgs), dk_acc, dv_acc)
    _kv_store(dk, dv, b, h, rn, rd, Skv, (sdb, sdh, sds), dk_acc, dv_acc)


@tile.kernel(do_not_specialize=("Sq", "Skv", "H", "sqb", "sqh", "sqs", "skb", "skh", "sks", "svb",
                                "svh", "svs", "sob", "soh", "sos", "sgb", "sgh", "sgs", "sdb",
                                "sdh", "sds", "sqdb", "sqdh", "sqds", "sakb", "sakh", "saks",
                                "savb", "savh", "savs"))
def attention_bwd_kernel(q, k, v, o, do, lse, dq, dk, dv, Sq, Skv, H, scale,
                         sqb, sqh, sqs, skb, skh, sks, svb, svh, svs, sob, soh, sos,
                         sgb, sgh, sgs, sdb, sdh, sds, sqdb, sqdh, sqds, dka=None, dva=None,
                         sakb=0, sakh=0, saks=0, savb=0, savh=0, savs=0,
                         D: tile.constexpr = 64, BM: tile.constexpr = 64,
                         BN: tile.constexpr = 64, CAUSAL: tile.constexpr = False,
                         G: tile.constexpr = 1, ACC: tile.constexpr = False):
    """dQ, dK and dV of one query head in one pass (program (0, batch * H + head)): for each
    key block, the query blocks are swept once; each (query, key) block pair recomputes its
    probabilities once and feeds all three gradients, dQ added to its rows in `dq` (strides
    sqd*; the first key block writes them). The two-kernel split recomputes the scores and dP
    in both kernels: 7 products a pair instead of 5. dk, dv per query head as in
    `attention_bwd_kv_kernel` (ACC: starting from dka, dva)."""
    bh = tile.program_id(1)
    h = bh % H
    b = bh // H
    hk = h // G
    rd = tile.arange(0, D)
    for n0 in range(0, Skv, BN):
        rn = n0 + tile.arange(0, BN)
        kt, vt = _key_rows(k, v, b, hk, rn, rd, Skv, (skb, skh, sks), (svb, svh, svs))
        dk_acc, dv_acc = _kv_start(dka, dva, b, h, rn, rd, Skv, (sakb, sakh, saks),
                                   (savb, savh, savs), BN, D, ACC)
        lo = 0
        if CAUSAL:  # queries before this key block's first key see none of it
            lo = n0 // BM * BM
        for m0 in range(lo, Sq, BM):
            rm = m0 + tile.arange(0, BM)
            ds, dk_acc, dv_acc = _kv_sweep_step(q, o, do, lse, b, h, bh, rm, rn, rd, kt, vt, Sq,
                                                Skv, scale, CAUSAL, (sqb, sqh, sqs),
                                                (sob, soh, sos), (sgb, sgh, sgs), dk_acc, dv_acc)
            qm = rm[:, None] < Sq
            dq_at = dq + b * sqdb + h * sqdh + rm[:, None] * sqds + rd[None, :]
            prev = tile.load(dq_at, mask=qm & (n0 > 0), other=0.0)  # the first key block writes
            tile.store(dq_at, tile.dot(ds, kt, prev), mask=qm)
        _kv_store(dk, dv, b, h, rn, rd, Skv, (sdb, sdh, sds), dk_acc, dv_acc)


@tile.kernel(do_not_specialize=("Sq", "Skv", "H", "sqb", "sqh", "sqs", "skb", "skh", "sks", "svb",
                                "svh", "svs", "sob", "soh", "sos", "sgb", "sgh", "sgs", "sdb",
                                "sdh", "sds"))
def attention_bwd_q_kernel(q, k, v, o, do, lse, dq, Sq, Skv, H, scale,
                           sqb, sqh, sqs, skb, skh, sks, svb, svh, svs, sob, soh, sos,
                           sgb, sgh, sgs, sdb, sdh, sds,
                           D: tile.constexpr, BM: tile.constexpr, BN: tile.constexpr,
                           CAUSAL: tile.constexpr, G: tile.constexpr = 1):
    """dQ of BM query rows of one head (program (query block, batch * H + head)), the key blocks
    swept and the probabilities recomputed from `lse`."""
    rm, bh, b, h, hk = _block_of_head(H, G, BM)
    pid_m = tile.program_id(0)
    rd = tile.arange(0, D)
    qt, dot_, lse_r, di = _query_rows(q, o, do, lse, b, h, bh, rm, rd, Sq, (sqb, sqh, sqs),
                                      (sob, soh, sos), (sgb, sgh, sgs))
    dq_acc = tile.zeros((BM, D), tile.float32)
    hi = Skv
    if CAUSAL:  # keys past this block's last query are masked for all of it
        hi = tile.minimum(hi, (pid_m + 1) * BM)
    for n0 in range(0, hi, BN):
        rn = n0 + tile.arange(0, BN)
        kt, vt = _key_rows(k, v, b, hk, rn, rd, Skv, (skb, skh, sks), (svb, svh, svs))
        p, ds = _recompute(qt, kt, vt, dot_, lse_r, di, rm, rn, Sq, Skv, scale, CAUSAL)
        dq_acc = tile.dot(ds, kt, dq_acc)
    tile.store(dq + b * sdb + h * sdh + rm[:, None] * sds + rd[None, :], dq_acc,
               mask=rm[:, None] < Sq)


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
              backend="cpu", blocks=None, additive_mask=None, out=None, lse=None):
    """softmax(q @ k^T * scale + masks) @ v for q (B, H, Sq, D), k and v (B, H, Skv, D).

    Also accepts 3-d (H, S, D) inputs. float32/float16/bfloat16 inputs; the output has q's dtype.
    k and v may have fewer heads than q (grouped-query attention: each serves H / Hk query heads).
    `lse`: a C-contiguous float32 (B, H, Sq) array that receives each row's log-sum-exp of the
    scaled scores (what `attention_backward` needs).
    `additive_mask` broadcasts to (B, H, Sq, Skv) and is added to the scaled scores. Inputs whose
    last dim is contiguous (e.g. heads split off a projection by reshape and transpose) are read
    where they lie; `out` may be such a view too (e.g. the (B, H, Sq, D) transpose of a
    (B, Sq, H, D) buffer, so the heads come out merged).
    """
    q, k, v = (np.asarray(t) for t in (q, k, v))
    squeeze = q.ndim == 3
    if squeeze:
        q, k, v = q[None], k[None], v[None]
    if (q.ndim != 4 or k.shape != v.shape or q.shape[0] != k.shape[0] or q.shape[3] != k.shape[3]
            or not k.shape[1] or q.shape[1] % k.shape[1]):
        raise ValueError(f"attention needs q (B,H,Sq,D), k and v (B,Hk,Skv,D) with Hk dividing H; "
                         f"got {q.shape}, {k.shape}, {v.shape}")
    q, k, v = (t if tile.is_float_storage(t.dtype) else t.astype(np.float32) for t in (q, k, v))
    B, H, Sq, D = q.shape
    Skv, groups = k.shape[2], H // k.shape[1]
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
        if lse is not None and (lse.shape != (B, H, Sq) or lse.dtype != np.float32
                                or not lse.flags.c_contiguous):
            raise ValueError(f"attention: lse must be a C-contiguous float32 {(B, H, Sq)}, got "
                             f"{lse.dtype} {lse.shape}")
        meta = {"D": D, "BM": bm, "BN": bn, "CAUSAL": bool(causal), "HAS_MASK": kmask is not None,
                "HAS_ADD": amask is not None, "HAS_LSE": lse is not None, "G": groups}
        attention_kernel.launch(grid, *args, backend=backend, lse=lse, **meta)
    elif out.size:
        out[...] = 0  # no keys: every row sees nothing
        if lse is not None:
            lse[...] = -np.inf
    return out[0] if squeeze else out


def attention_backward(q, k, v, out, dout, lse, causal=False, scale=None, backend="cpu",
                       blocks=None, dk_add=None, dv_add=None, one_pass=None, packed=None):
    """(dq, dk, dv) of `attention(q, k, v, causal, scale=scale)` given its output `out`, the
    gradient `dout` of the output and the rows' log-sum-exp `lse` (B, H, Sq) from the forward.
    `dk_add`, `dv_add` (k's shape, given together): gradients of K and V from elsewhere, added
    to dk and dv (in the kernel's pass when heads are not grouped). `one_pass`: one kernel per
    query head for all three gradients (`attention_bwd_kernel`), else a kernel for dK, dV and one
    for dQ, each with a program per block; by default one pass when there are at least twice as
    many query heads (B x H) as cores. `packed`: the places (a permutation of 0, 1, 2) of dq, dk
    and dv side by side in one (B, S, 3, H, D) buffer (`copy.side_by_side`), for a Concat of
    their merged heads in that order that follows (a fused QKV projection's backward): the
    Concat is then the buffer itself. Without grouped heads and with Sq = Skv only.

    q, out, dout: (B, H, Sq, D); k, v: (B, Hk, Skv, D), Hk dividing H. Views whose last dim is
    contiguous are read where they lie; dq (and dk, dv without grouped heads) come back as (B, H,
    S, D) views of (B, S, H, D) buffers. The probabilities are recomputed block by block (flash
    attention's backward): one kernel sweeps the queries for each key block (dk, dv), another
    the keys for each query block (dq), so nothing of size (Sq, Skv) is stored."""
    q, k, v, out, dout = (np.asarray(t, np.float32) for t in (q, k, v, out, dout))
    B, H, Sq, D = q.shape
    Hk, Skv = k.shape[1], k.shape[2]
    if (k.shape != v.shape or k.shape[0] != B or k.shape[3] != D or not Hk or H % Hk
            or out.shape != q.shape or dout.shape != q.shape):
        raise ValueError(f"attention_backward: q/out/dout (B,H,Sq,D), k and v (B,Hk,Skv,D); got "
                         f"{q.shape}, {k.shape}, {v.shape}, {out.shape}, {dout.shape}")
    lse = np.ascontiguousarray(lse, np.float32)
    if lse.shape != (B, H, Sq):
        raise ValueError(f"attention_backward: lse must be {(B, H, Sq)}, got {lse.shape}")
    g = H // Hk
    if (dk_add is None) != (dv_add is None):
        raise ValueError("attention_backward: give dk_add and dv_add together")
    if dk_add is not None:
        dk_add, dv_add = (np.asarray(t, np.float32) for t in (dk_add, dv_add))
        if dk_add.shape != k.shape or dv_add.shape != k.shape:
            raise ValueError(f"attention_backward: dk_add and dv_add must be {k.shape}, got "
                             f"{dk_add.shape} and {dv_add.shape}")

    def merged(s):  # (B, H, s, D) views of (B, s, H, D) buffers: the usual Transpose + Reshape
        return np.empty((B, s, H, D), np.float32).transpose(0, 2, 1, 3)  # after them are views

    if packed is not None and g == 1 and Sq == Skv:
        from ...tensor.kernels.copy import side_by_side

        buf = side_by_side((B, Sq, 3, H, D))
        dq, dkh, dvh = (buf[:, :, i].transpose(0, 2, 1, 3) for i in packed)
    else:
        dq = merged(Sq)
        dkh = merged(Skv) if g == 1 else np.empty((B, H, Skv, D), np.float32)  # per query head;
        dvh = merged(Skv) if g == 1 else np.empty((B, H, Skv, D), np.float32)  # groups summed below
    if dq.size == 0 or Skv == 0:
        dq[...] = 0
        dkh[...] = 0
        dvh[...] = 0
    else:
        scale = 1.0 / math.sqrt(D) if scale is None else float(scale)
        # 64 x 64 blocks: both kernels keep about 100 KiB of tiles per program and give 2 x 48
        # programs at B=8, H=6, S=128 (measured: 128 x 128 blocks halve the programs and gain nothing)
        bm, bn = blocks or (min(64, max(8, -(-Sq // 8) * 8)), min(64, max(8, -(-Skv // 8) * 8)))
        views = [_in_place(t) for t in (q, k, v, out, dout)]
        ins = [a for a, _ in views]
        strides = [x for _, st in views for x in st]
        meta = {"D": D, "BM": bm, "BN": bn, "CAUSAL": bool(causal), "G": g}
        (dkw, sd), (dvw, _), (dqw, sq) = _in_place(dkh), _in_place(dvh), _in_place(dq)
        acc = ()
        if dk_add is not None and g == 1:
            (ka, sa), (va, sv) = _in_place(dk_add), _in_place(dv_add)
            acc = (ka, va, *sa, *sv)
        if one_pass is None:
            one_pass = B * H >= 2 * (os.cpu_count() or 1)
        if one_pass:  # GPT-2 small's shape (B=8, H=6, S=128, causal): 3.4 -> 2.4 ms, 2 threads
            attention_bwd_kernel.launch((1, B * H), *ins, lse, dqw, dkw, dvw, Sq, Skv, H, scale,
                                        *strides, *sd, *sq, *acc, backend=backend,
                                        ACC=bool(acc), **meta)
        else:
            attention_bwd_kv_kernel.launch((-(-Skv // bn), B * H), *ins, lse, dkw, dvw, Sq, Skv,
                                           H, scale, *strides, *sd, *acc, backend=backend,
                                           ACC=bool(acc), **meta)
            attention_bwd_q_kernel.launch((-(-Sq // bm), B * H), *ins, lse, dqw, Sq, Skv, H,
                                          scale, *strides, *sq, backend=backend, **meta)
    if g == 1:
        if dk_add is not None and (dq.size == 0 or Skv == 0):
            dkh += dk_add
            dvh += dv_add
        return dq, dkh, dvh
    dk, dv = dkh.reshape(B, Hk, g, Skv, D).sum(axis=2), dvh.reshape(B, Hk, g, Skv, D).sum(axis=2)
    if dk_add is not None:
        dk += dk_add
        dv += dv_add
    return dq, dk, dv
