"""GEMM in the tile language: `act(a @ b + bias) + residual`, float32, and its batched form.

Each program computes one BM x BN block of the output, stepping through K in BK-wide slabs; `dot`
lowers to a packed, register-blocked micro-kernel on the cpu backend. The epilogue (bias, ReLU /
GELU / SiLU, residual add) runs on the accumulator before the single store.

The library kernel: on the cpu backend a GEMM may instead go to the BLAS that NumPy bundles
(OpenBLAS), with the epilogue as one tile kernel over the product in place (`library_gemm`).
`impl="auto"` asks `choose_impl`, which follows OPENCANN_GEMM_IMPL: `tile` (the default),
`library`, or `auto` (whichever of the two measured faster for the shape, once per shape and
process). The tile kernel is the default because BLAS brings its own thread pool: alternating
its threads with the OpenMP team of the other kernels cost more than BLAS gained (MiniLM: 34 ms
with library GEMMs, 29 ms with tile GEMMs, same machine and hour).
"""

from __future__ import annotations

import functools
import os
import time
from dataclasses import dataclass

import numpy as np

from opencann import tile

__all__ = ["gemm_kernel", "gemm_epilogue_kernel", "gemm", "batched_gemm", "library_gemm",
           "choose_impl", "gemm_launch", "prepare_gemm", "Panels", "pack_panels", "IMPL_CHOICES",
           "ACTIVATIONS", "IMPLS"]

ACTIVATIONS = (None, "relu", "gelu", "silu")
IMPLS = ("tile", "library", "auto")


def bias_act(acc, bias, rm, rn, M, N, HAS_BIAS, ACT):
    """The epilogue's first part on a (rows rm, columns rn) tile (called inside kernels): add a
    bias per column (HAS_BIAS 1) or per row (2, a convolution's output channels), then ReLU,
    GELU or SiLU."""
    if HAS_BIAS == 1:
        acc = acc + tile.load(bias + rn, mask=rn < N, other=0.0)[None, :]
    elif HAS_BIAS == 2:
        acc = acc + tile.load(bias + rm, mask=rm < M, other=0.0)[:, None]
    return activate(acc, ACT)


def activate(acc, ACT):
    """ReLU, GELU (erf form) or SiLU of a tile, or the tile itself for None (inside kernels)."""
    if ACT == "relu":
        acc = tile.maximum(acc, 0.0)
    elif ACT == "gelu":
        acc = 0.5 * acc * (1.0 + tile.erf(acc * 0.7071067811865476))
    elif ACT == "silu":
        acc = acc * tile.sigmoid(acc)
    return acc


@dataclass(frozen=True)
class Panels:
    """A constant right operand B (K, N) stored once as ceil(N / NR) panels of (K, NR), zero
    past N: the form the cpu backend's `dot` reads without packing it again on every launch
    (NR from `tile.dot_panel_width()`). `pack_panels` makes one; `matrix()` gives B back.

        >>> p = pack_panels(np.arange(6, dtype=np.float32).reshape(2, 3), nr=2)
        >>> p.data.shape, p.shape
        ((2, 2, 2), (2, 3))
    """

    data: np.ndarray  # (P, K, NR) float32, C-contiguous; (batch, P, K, NR) for a batch of B
    n: int

    @property
    def nr(self) -> int:
        return self.data.shape[-1]

    @property
    def ndim(self) -> int:  # B's: 2, or 3 for a batch
        return self.data.ndim - 1

    @property
    def shape(self) -> tuple:
        return self.data.shape[:-3] + (self.data.shape[-2], self.n)

    def matrix(self) -> np.ndarray:
        """B as a (K, N) array, or (batch, K, N) (a copy)."""
        *lead, p, k, nr = self.data.shape
        m = np.swapaxes(self.data, -3, -2).reshape(*lead, k, p * nr)[..., :self.n]
        return np.ascontiguousarray(m)


def pack_panels(b, nr: int | None = None) -> Panels:
    """B (K, N), or a batch (batch, K, N), as `Panels` of width `nr` (default: this host's
    `tile.dot_panel_width()`)."""
    b = np.asarray(b)
    if b.ndim not in (2, 3):
        raise ValueError(f"pack_panels needs a (K, N) matrix or a batch of them, got shape {b.shape}")
    nr = nr or tile.dot_panel_width()
    *lead, k, n = b.shape
    p = -(-n // nr)
    data = np.empty((*lead, p, k, nr), np.float32)
    for j in range(p):  # panel by panel: `b` may be a strided view (a transposed weight), and
        cols = b[..., j * nr:(j + 1) * nr]  # no whole-size temporary is made
        data[..., j, :, :cols.shape[-1]] = cols
        data[..., j, :, cols.shape[-1]:] = 0.0
    return Panels(data, n)


# sam and sbk are specialized: the operand stored transposed has its unit stride there, and
# with the stride known the kernel hands `dot` a pointer into it instead of copying each K slab
# through a strided loop first (X^T @ dY and dY @ W^T, 2 threads: 3-12% faster)
@tile.kernel(do_not_specialize=("M", "N", "K", "scm", "srm"))
def gemm_kernel(a, b, c, bias, res, M, N, K, sam, sak, sbk, sbn, scm, scn, srm, srn, batch_a,
                batch_b, batch_c, batch_r,
                BM: tile.constexpr, BN: tile.constexpr, BK: tile.constexpr,
                HAS_BIAS: tile.constexpr, ACT: tile.constexpr, HAS_RES: tile.constexpr,
                TRANS_A: tile.constexpr = False, TRANS_B: tile.constexpr = False,
                RES_ACT: tile.constexpr = None, B_PANELS: tile.constexpr = 0):
    """One BM x BN block of res_act(act(a @ b + bias) + res) for batch entry program_id(2).

    With B_PANELS (== BN), b is stored as panels (`Panels`): block column j of B is the
    contiguous (K, BN) array at b + j * K * BN, zero past N."""
    pid_m = tile.program_id(0)
    pid_n = tile.program_id(1)
    z = tile.program_id(2)
    rm = pid_m * BM + tile.arange(0, BM)
    rn = pid_n * BN + tile.arange(0, BN)
    rk = tile.arange(0, BK)
    if HAS_BIAS == 1:  # the sums start at the bias: the first product is written with it added
        acc = tile.broadcast_to(tile.load(bias + rn, mask=rn < N, other=0.0)[None, :], (BM, BN))
    else:
        acc = tile.zeros((BM, BN), tile.float32)
    for k0 in range(0, K, BK):
        ka = k0 + rk
        if TRANS_A:  # a stored (K, M): load the block as stored (rows contiguous), then transpose
            a_t = tile.trans(tile.load(a + z * batch_a + ka[:, None] * sak + rm[None, :] * sam,
                                       mask=(ka[:, None] < K) & (rm[None, :] < M), other=0.0))
        else:
            a_t = tile.load(a + z * batch_a + rm[:, None] * sam + ka[None, :] * sak,
                            mask=(rm[:, None] < M) & (ka[None, :] < K), other=0.0)
        if B_PANELS:  # one panel: rows BN apart, columns past N already zero
            b_t = tile.load(b + z * batch_b + pid_n * K * BN + ka[:, None] * BN
                            + tile.arange(0, BN)[None, :], mask=ka[:, None] < K, other=0.0)
        elif TRANS_B:  # b stored (N, K), as linear-layer weights are
            b_t = tile.trans(tile.load(b + z * batch_b + rn[:, None] * sbn + ka[None, :] * sbk,
                                       mask=(rn[:, None] < N) & (ka[None, :] < K), other=0.0))
        else:
            b_t = tile.load(b + z * batch_b + ka[:, None] * sbk + rn[None, :] * sbn,
                            mask=(ka[:, None] < K) & (rn[None, :] < N), other=0.0)
        acc = tile.dot(a_t, b_t, acc)
    acc = bias_act(acc, bias, rm, rn, M, N, 0 if HAS_BIAS == 1 else HAS_BIAS, ACT)
    mask = (rm[:, None] < M) & (rn[None, :] < N)
    if HAS_RES:
        acc = acc + tile.load(res + z * batch_r + rm[:, None] * srm + rn[None, :] * srn, mask=mask,
                              other=0.0)
    acc = activate(acc, RES_ACT)
    tile.store(c + z * batch_c + rm[:, None] * scm + rn[None, :] * scn, acc, mask=mask)


@tile.kernel(do_not_specialize=("M", "N", "scm", "srm"))
def gemm_epilogue_kernel(c, bias, res, M, N, scm, srm, BM: tile.constexpr, BN: tile.constexpr,
                         HAS_BIAS: tile.constexpr, ACT: tile.constexpr, HAS_RES: tile.constexpr,
                         RES_ACT: tile.constexpr = None):
    """`c = res_act(act(c + bias) + res)` in place over BM rows of a row-major (M, N) product: the
    epilogue of a library GEMM, the same arithmetic as `gemm_kernel`'s."""
    rm = tile.program_id(0) * BM + tile.arange(0, BM)
    for n0 in range(0, N, BN):
        rn = n0 + tile.arange(0, BN)
        mask = (rm[:, None] < M) & (rn[None, :] < N)
        acc = tile.load(c + rm[:, None] * scm + rn[None, :], mask=mask, other=0.0)
        acc = bias_act(acc, bias, rm, rn, M, N, HAS_BIAS, ACT)
        if HAS_RES:
            acc = acc + tile.load(res + rm[:, None] * srm + rn[None, :], mask=mask, other=0.0)
        acc = activate(acc, RES_ACT)
        tile.store(c + rm[:, None] * scm + rn[None, :], acc, mask=mask)


def _blocks(M, N, K, bn=None, trans_a=False):
    """Block sizes (BM, BN, BK) for an M x N x K product (see `_choose_blocks`), cached: asked
    on every `batched_gemm` call, where the host's panel width and core count cost tens of
    microseconds to find."""
    return _choose_blocks(M, N, K, bn, trans_a, os.environ.get("OPENCANN_CPU_ISA"))


@functools.lru_cache(maxsize=4096)
def _choose_blocks(M, N, K, bn, trans_a, _isa):
    """Block sizes (BM, BN, BK) for an M x N x K product (BN fixed when given: B as panels) on
    this host (`_isa`: OPENCANN_CPU_ISA, which narrows the panel width). With AVX-512 and more
    than 132 rows, `_wide_blocks`; otherwise as follows.

    BM is a multiple of the 6-row micro-kernel: all of M up to 132 rows (splitting M would load
    and pack every B tile once per row block), else the size up to 264 trading rows wasted on
    padding against per-block overhead (each row block packs B again: 1024x1536x384 went from
    269 to 306 GFLOP/s when blocks of 114 rows became blocks of 258). BN splits the columns
    among the threads instead: the largest of 192, 128, 96, 64 (multiples of the 32-wide
    micro-kernel) that gives at least two programs per thread, a count the threads share evenly
    and a last block at least half full (measured with 2 threads on transformer and MLP shapes:
    128x384x384 went from 127 to 145 GFLOP/s, 128x1536x384 from 114 to 152)."""
    bn_fixed = bn is not None
    threads = os.cpu_count() or 1
    if not bn_fixed and M > 132 and tile.dot_panel_width() == 32:
        return _wide_blocks(M, N, K, trans_a, threads)
    if M <= 132:
        bm = max(6, -(-M // 6) * 6)
    else:
        bm = min(range(48, 265, 6), key=lambda b: (-(-M // b) * b / M + 6.0 / b, -b))
    mb = -(-M // bm)
    for cand in (() if bn else (192, 128, 96, 64)):
        nb = -(-N // cand)
        progs = mb * nb
        if (N >= cand and nb * cand - N <= cand // 2  # the last column block at least half full
                and progs >= 2 * threads and (progs % threads == 0 or progs >= 8 * threads)):
            bn = cand
            break
    if bn is None or -(-N // bn) * mb < 2 * threads:  # few columns: the rows must be shared
        bn = bn or (64 if N >= 64 else max(16, -(-N // 16) * 16))
        while bm > 24 and mb * -(-N // bn) < 2 * threads:
            bm = -(-bm // 12) * 6
            mb = -(-M // bm)
    # K is cut into equal slabs (K=147 as 80+67 rather than 128+19: a thin last slab costs a
    # whole pass of packing; the stem of a ResNet went from about 80 to 115 GFLOP/s). Slabs of
    # at most 128 keep a BK x 32 panel of B (16 KiB) in L1 beside the A rows the micro-kernel
    # reads: what A stored transposed and B given as panels want. With A read by rows, fewer
    # and longer slabs did better (2 threads, accumulating in C): K <= 384 as one slab, whole A
    # rows (1024x1536x384 from 272 to 284 GFLOP/s), else slabs of at most 512 (1024x384x4096
    # from 231 to 269, 1024x384x1536 from 281 to 292); slabs of 256 in rows of 384 were slow.
    cap = 128 if (trans_a or bn_fixed) else (K if K <= 384 else 512)
    slabs = -(-K // cap)
    bk = max(8, -(-(-(-K // slabs)) // 8) * 8)
    return bm, bn, bk


def _wide_blocks(M, N, K, trans_a, threads):
    """Block sizes for AVX-512's `dot`, which sweeps each 12-row block of A across all of the
    block's B panels (A's rows stay in L1, B's packed K x BN slab streams from L2). Every
    program packs its own slab of B, and reads its rows of A once: a GEMM packs B M / BM times
    and reads A N / BN times, so the blocks are as large as the threads allow: BM up to 1032
    rows, BN a multiple of 32 up to 384 columns (a 512 x 384 slab of B is 768 KiB, under L2's 2
    MiB), chosen to make 1/BM + 1/BN smallest among the splits that keep the threads at least
    95% busy (`_balance`: 1024x1152 as 4 blocks of 288 columns, not 4 of 320 with a short last
    one, 238 -> 271 GFLOP/s). Against the 258 x 192 blocks before, on 2 threads, hot:
    1024x1536x384 256 -> 279 GFLOP/s, 1024x4096x384 244 -> 257, X^T @ dY of 384x1536x1024
    179 -> 258; cold (operands evicted) 2-40% better but for 1024x384x384 (190 -> 181). K is
    cut into equal slabs of at most 512 (256 when A is stored transposed), one slab up to 384.
    The search costs milliseconds: `_blocks` caches it."""
    best = fallback = None
    for mb in range(1, 65):
        bm = -(-M // mb)
        if bm > 1032 and mb < 64:
            continue
        bm = -(-bm // 6) * 6 if bm * mb != M else bm  # an exact split keeps every block whole
        for bn in range(min(384, -(-N // 32) * 32), 0, -32):
            nb = -(-N // bn)
            rows = [min(bm, M - i * bm) for i in range(-(-M // bm))]
            cols = [min(bn, N - j * bn) for j in range(nb)]
            # the mean block's rows and columns; a cut-short block costs a copy through scratch
            score = len(rows) / M + nb / N + (0.0 if N % bn == 0 and M % bm == 0 else 1e-4)
            busy = _balance([r * c for c in cols for r in rows], threads)
            if fallback is None or (busy, -score) > fallback[0]:
                fallback = ((busy, -score), bm, bn)
            if busy >= 0.95 and (best is None or score < best[0] - 1e-12):
                best = (score, bm, bn)
        if best is not None and mb >= 4 * threads:
            break
    best = best or fallback  # too small to keep every thread busy: the best balance there is
    cap = K if K <= 384 else (256 if trans_a else 512)
    slabs = -(-K // cap)
    bk = max(8, -(-(-(-K // slabs)) // 8) * 8)
    return best[1], best[2], bk


def _balance(work, threads):
    """The threads' busy share when programs of these sizes go, in order, each to the thread
    that is free first: the total work over threads x the time the last thread finishes."""
    free = [0] * threads
    for w in work:
        i = free.index(min(free))
        free[i] += w
    return sum(work) / (threads * max(free))


def _as_stored(x, trans):
    """(x or its contiguous transpose, flag): a (.., K, M) view that is the transpose of a
    C-contiguous float32 array comes back as that array with `trans` flipped."""
    x = np.asarray(x)
    if x.ndim >= 2 and x.dtype == np.float32 and not x.flags.c_contiguous:
        t = x.swapaxes(-1, -2)
        if t.flags.c_contiguous:
            return t, not trans
    return x, trans


def _epilogue_blocks(M, N):
    bn = min(512, max(16, 1 << (N - 1).bit_length()))
    bm = max(1, min(64, 4096 // bn))
    cores = os.cpu_count() or 1
    while bm > 1 and -(-M // bm) < 4 * cores:
        bm //= 2
    return bm, bn


def library_gemm(a, b, out, bias=None, activation=None, residual=None, row_bias=None,
                 backend="cpu", res_activation=None):
    """`out[...] = res_act(act(a @ b + bias) + residual)` with NumPy's BLAS for the product and
    `gemm_epilogue_kernel` for the rest, in place. a (.., M, K) and b (.., K, N) may be
    transposed views (BLAS reads them as stored); `out` is a C-contiguous float32 (.., M, N);
    `residual` has out's shape."""
    np.matmul(a, b, out=out)
    if out.size == 0 or (bias is None and row_bias is None and activation is None
                         and residual is None and res_activation is None):
        return out
    n = out.shape[-1]
    if row_bias is not None and out.ndim == 3:  # a row bias repeats per batch entry: one launch each
        for z in range(out.shape[0]):
            library_gemm_epilogue(out[z], None, row_bias, activation,
                                  None if residual is None else residual[z], backend,
                                  res_activation)
        return out
    library_gemm_epilogue(out.reshape(-1, n), bias, row_bias, activation,
                          None if residual is None else residual.reshape(-1, n), backend,
                          res_activation)
    return out


def library_gemm_epilogue(c, bias, row_bias, activation, residual, backend="cpu",
                          res_activation=None):
    """The epilogue of `library_gemm` on a 2-d C-contiguous `c`, in place."""
    m, n = c.shape
    has_bias = 0 if bias is None and row_bias is None else (1 if bias is not None else 2)
    bias_arr = None if has_bias == 0 else np.ascontiguousarray(
        bias if bias is not None else row_bias, np.float32).reshape(-1)
    res = None if residual is None else np.ascontiguousarray(residual, np.float32)
    bm, bn = _epilogue_blocks(m, n)
    gemm_epilogue_kernel[(-(-m // bm),)](c, bias_arr, res, m, n, n, n, BM=bm, BN=bn,
                                         HAS_BIAS=has_bias, ACT=activation,
                                         HAS_RES=res is not None, RES_ACT=res_activation,
                                         backend=backend)


# (M, N, K, batch, trans_a, trans_b, epilogue) -> "tile" | "library", measured in this process
IMPL_CHOICES: dict = {}


def choose_impl(M, N, K, batch=1, trans_a=False, trans_b=False, bias=False, activation=None,
                residual=False, row_bias=False, repeats=3, res_activation=None) -> str:
    """"tile" or "library" for a GEMM of this shape: OPENCANN_GEMM_IMPL when it names one
    (default "tile"); under `auto`, whichever ran faster when timed here (best of `repeats`
    alternating runs on random operands of the shape), measured once per shape."""
    key = (M, N, K, batch, bool(trans_a), bool(trans_b), bool(bias), activation, bool(residual),
           bool(row_bias), res_activation)
    got = IMPL_CHOICES.get(key)
    if got is not None:
        return got
    forced = os.environ.get("OPENCANN_GEMM_IMPL", "tile")
    if forced != "auto":
        if forced not in IMPLS:
            raise ValueError(f"OPENCANN_GEMM_IMPL must be one of {IMPLS}, got {forced!r}")
        IMPL_CHOICES[key] = forced
        return forced
    rng = np.random.default_rng(0)
    lead = (batch,) if batch > 1 else ()
    a = rng.standard_normal(lead + ((K, M) if trans_a else (M, K)), np.float32)
    b = rng.standard_normal(lead + ((N, K) if trans_b else (K, N)), np.float32)
    bv = rng.standard_normal(N, np.float32) if bias else None
    rv = rng.standard_normal(M, np.float32) if row_bias else None
    res = rng.standard_normal(lead + (M, N), np.float32) if residual else None
    best = {"tile": float("inf"), "library": float("inf")}
    for i in range(2 * repeats + 2):  # the first of each warms up (compiles, BLAS threads)
        impl = "tile" if i % 2 == 0 else "library"
        t0 = time.perf_counter()
        batched_gemm(a, b, bv, activation, res, row_bias=rv, trans_a=trans_a, trans_b=trans_b,
                     impl=impl, res_activation=res_activation)
        dt = time.perf_counter() - t0
        if i >= 2:
            best[impl] = min(best[impl], dt)
    got = IMPL_CHOICES[key] = min(best, key=best.get)
    return got


def batched_gemm(a, b, bias=None, activation=None, residual=None, backend="cpu", blocks=None,
                 row_bias=None, trans_a=False, trans_b=False, impl="tile", out=None,
                 res_activation=None):
    """`res_act(act(a @ b + bias) + residual)` over a batch: a (B, M, K) or (M, K), b (B, K, N)
    or (K, N).

    `bias` has one value per output column (N,); `row_bias` one per output row (M,).
    `trans_a` / `trans_b`: a is given as (.., K, M) / b as (.., N, K), and used transposed.
    `impl`: "tile" (the tile-language kernel), "library" (BLAS product + tile epilogue, cpu
    backend only) or "auto" (the one measured faster for this shape, see `choose_impl`).
    `out`: a C-contiguous float32 array of the result's shape to write into.
    `res_activation`: an activation applied last, after the residual (a ResNet block's ReLU).
    `b` may be `Panels` (a constant B packed once, see `pack_panels`; not with `trans_b`).

    A call whose operands are all float32 and C-contiguous (or, for a and b, the transposes of
    C-contiguous arrays) is remembered by its shapes and layouts: the next such call is one
    prepared launch (`_LAUNCHES`), without the argument checks and the launcher's binding.
    """
    key = _launch_key(a, b, bias, activation, residual, backend, blocks, row_bias, trans_a,
                      trans_b, impl, out, res_activation)
    if key is not None:
        fast = _LAUNCHES.get(key)
        if fast is not None:
            return fast(a, b, bias if bias is not None else row_bias, residual, out)
    panels = b if isinstance(b, Panels) else None
    for act in (activation, res_activation):
        if act not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {ACTIVATIONS}, got {act!r}")
    if impl not in IMPLS:
        raise ValueError(f"impl must be one of {IMPLS}, got {impl!r}")
    if impl != "tile" and backend != "cpu":
        impl = "tile"  # the library kernel is the cpu backend's
    # a transposed view of a contiguous matrix is read as stored, with the flag flipped (no copy)
    a, trans_a = _as_stored(a, trans_a)
    a = np.ascontiguousarray(a, np.float32)
    if panels is not None:
        if trans_b:
            raise ValueError("gemm: Panels are B as (K, N); trans_b does not apply")
        b = panels.data
        Kb, N = panels.shape[-2:]
    else:
        b, trans_b = _as_stored(b, trans_b)
        b = np.ascontiguousarray(b, np.float32)
        Kb, N = b.shape[-2:][::-1] if trans_b else b.shape[-2:]
    if a.ndim < 2 or b.ndim < 2:
        raise ValueError(f"gemm needs (..., M, K) @ (..., K, N), got {a.shape} @ {b.shape}")
    M, K = a.shape[-2:][::-1] if trans_a else a.shape[-2:]
    if K != Kb:
        raise ValueError(f"gemm: inner dims differ: {a.shape}{'^T' if trans_a else ''} @ "
                         f"{b.shape}{'^T' if trans_b else ''}")
    b_batched = b.ndim == (4 if panels is not None else 3)
    batch = max(a.shape[0] if a.ndim == 3 else 1, b.shape[0] if b_batched else 1)
    out_shape = (batch, M, N) if (a.ndim == 3 or b_batched) else (M, N)
    if out is not None:
        if out.shape != out_shape or out.dtype != np.float32 or not out.flags.c_contiguous:
            raise ValueError(f"gemm: out must be a C-contiguous float32 {out_shape}, got "
                             f"{out.dtype} {out.shape}")
        c = out
    else:
        c = np.empty(out_shape, np.float32)
    if c.size == 0:
        return c
    if K == 0:
        c[...] = 0
    if bias is not None and row_bias is not None:
        raise ValueError("give bias or row_bias, not both")
    if impl == "auto":
        impl = choose_impl(M, N, K, batch, trans_a, trans_b, bias is not None, activation,
                           residual is not None, row_bias is not None,
                           res_activation=res_activation)
    if impl == "library":
        at = a.swapaxes(-1, -2) if trans_a else a
        bt = panels.matrix() if panels is not None else b.swapaxes(-1, -2) if trans_b else b
        res = None if residual is None else np.broadcast_to(
            np.asarray(residual, np.float32), out_shape)
        return library_gemm(at, bt, c, bias, activation, res, row_bias,
                            res_activation=res_activation)
    has_bias = 0 if bias is None and row_bias is None else (1 if bias is not None else 2)
    bias_arr = None if has_bias == 0 else np.ascontiguousarray(
        bias if bias is not None else row_bias, np.float32).reshape(-1)
    res = None
    if residual is not None:
        res = np.ascontiguousarray(np.broadcast_to(residual, out_shape), np.float32)
    grid, args, meta = gemm_launch(a, b, c, bias_arr, res, M, N, K, batch, a.ndim == 3,
                                   b_batched, res is not None and res.ndim == 3, trans_a,
                                   trans_b, has_bias, activation, res_activation, blocks,
                                   b_panels=0 if panels is None else panels.nr)
    gemm_kernel.launch(grid, *args, backend=backend, **meta)
    if key is not None and (residual is None or residual.shape == out_shape):  # no copies made
        if len(_LAUNCHES) >= _LAUNCHES_MAX:
            _LAUNCHES.pop(next(iter(_LAUNCHES)))
        _LAUNCHES[key] = _FastGemm(gemm_kernel.prepare(grid, *args, backend=backend, **meta),
                                   out_shape, key[1], key[3])
    return c


_LAUNCHES: dict = {}  # `_launch_key` -> `_FastGemm`
_LAUNCHES_MAX = 256


def _layout(x):
    """0: a C-contiguous float32 array, 1: the transpose (last two axes) of one, None: other."""
    if type(x) is not np.ndarray or x.dtype != np.float32 or x.ndim < 2:
        return None
    if x.flags.c_contiguous:
        return 0
    return 1 if x.swapaxes(-1, -2).flags.c_contiguous else None


def _vector(v):
    return v is None or (type(v) is np.ndarray and v.dtype == np.float32 and v.ndim == 1
                         and v.flags.c_contiguous)


def _launch_key(a, b, bias, activation, residual, backend, blocks, row_bias, trans_a, trans_b,
                impl, out, res_activation):
    """The key under which `batched_gemm` keeps a call's prepared launch, or None when the call
    needs more than the launch (copies, a library GEMM, an odd backend or blocks)."""
    if backend != "cpu" or blocks is not None or impl == "library":
        return None
    la, lb = _layout(a), _layout(b)
    if la is None or lb is None or not (_vector(bias) and _vector(row_bias)) or \
            (bias is not None and row_bias is not None) or 0 in a.shape or 0 in b.shape:
        return None
    for x in (residual, out):
        if x is not None and not (type(x) is np.ndarray and x.dtype == np.float32
                                  and x.flags.c_contiguous):
            return None
    return (a.shape, la, b.shape, lb, bool(trans_a), bool(trans_b), activation, res_activation,
            impl, *(None if x is None else x.shape for x in (bias, row_bias, residual, out)))


class _FastGemm:
    """A `batched_gemm` call remembered: its prepared launch, result shape and which operands
    are read through their transposes."""

    __slots__ = ("launch", "shape", "swap_a", "swap_b")

    def __init__(self, launch, shape, swap_a, swap_b):
        self.launch, self.shape, self.swap_a, self.swap_b = launch, shape, swap_a, swap_b

    def __call__(self, a, b, bias, residual, out):
        c = np.empty(self.shape, np.float32) if out is None else out
        arrays = [a.swapaxes(-1, -2) if self.swap_a else a,
                  b.swapaxes(-1, -2) if self.swap_b else b, c]
        if bias is not None:
            arrays.append(bias)
        if residual is not None:
            arrays.append(residual)
        self.launch(*arrays)
        return c


def gemm_launch(a, b, c, bias, res, M, N, K, batch=1, a_batched=False, b_batched=False,
                res_batched=False, trans_a=False, trans_b=False, has_bias=0, activation=None,
                res_activation=None, blocks=None, b_panels=0, c_trans=False):
    """(grid, args, meta) of the `gemm_kernel` launch for C-contiguous operands: a (batch?, M, K)
    or its (K, M) transpose, b (batch?, K, N) or (N, K) or, with `b_panels` = NR, the data of
    `Panels` (batch?, P, K, NR), c (batch?, M, N); `has_bias` 1 for a bias per column, 2 per row;
    `*_batched` whether an operand has the batch dim; `c_trans`: c (and res) hold the result
    transposed, (batch?, N, M). `batched_gemm` launches it; `prepare_gemm` keeps it."""
    bm, bn, bk = blocks or _blocks(M, N, K, bn=b_panels or None, trans_a=trans_a)
    if b_panels and bn != b_panels:
        raise ValueError(f"gemm: B as panels of {b_panels} needs BN={b_panels}, got {bn}")
    b_batch = K * (-(-N // b_panels) * b_panels if b_panels else N)  # one B's floats
    grid = (-(-M // bm), -(-N // bn), batch)
    args = (a, b, c, bias, res, M, N, K, *((1, M) if trans_a else (K, 1)),
            *((1, K) if trans_b else (N, 1)), *(((1, M) if c_trans else (N, 1)) * 2),
            M * K if a_batched else 0, b_batch if b_batched else 0, M * N,
            M * N if res_batched else 0)
    meta = {"BM": bm, "BN": bn, "BK": bk, "HAS_BIAS": has_bias, "ACT": activation,
            "HAS_RES": res is not None, "TRANS_A": bool(trans_a), "TRANS_B": bool(trans_b),
            "RES_ACT": res_activation, "B_PANELS": b_panels}
    return grid, args, meta


def prepare_gemm(M, N, K, batch=1, a_batched=False, b_batched=False, res_batched=False,
                 trans_a=False, trans_b=False, has_bias=0, activation=None, residual=False,
                 res_activation=None, backend="cpu", b_panels=0, c_trans=False):
    """The tile GEMM launch of `gemm_launch`, prepared: call it with (a, b, c[, bias][, res]),
    C-contiguous float32 arrays of the shapes given (b: `Panels.data` when `b_panels` is its
    width; c and res transposed with `c_trans`)."""
    dummy = np.empty(1, np.float32)
    grid, args, meta = gemm_launch(dummy, dummy, dummy, dummy if has_bias else None,
                                   dummy if residual else None, M, N, K, batch, a_batched,
                                   b_batched, res_batched, trans_a, trans_b, has_bias, activation,
                                   res_activation, b_panels=b_panels, c_trans=c_trans)
    return gemm_kernel.prepare(grid, *args, backend=backend, **meta)


def gemm(a, b, bias=None, activation=None, residual=None, backend="cpu", blocks=None,
         trans_a=False, trans_b=False):
    """`act(a @ b + bias) + residual` for a (M, K), b (K, N) float32 -> (M, N).

    `trans_b=True` takes b as (N, K) (a linear layer's weight), `trans_a=True` a as (K, M).

        >>> gemm(np.ones((2, 3), np.float32), np.ones((3, 4), np.float32), activation="relu")[0, 0]
        3.0
    """
    if np.ndim(a) != 2 or np.ndim(b) != 2:
        raise ValueError(f"gemm needs 2-d operands, got {np.shape(a)} and {np.shape(b)}")
    return batched_gemm(a, b, bias, activation, residual, backend, blocks, trans_a=trans_a,
                        trans_b=trans_b)
