"""GEMM kernel (fused epilogue, batched) against NumPy, compiled and interpreted."""

import math

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from opencann.ops.math.kernels.gemm import batched_gemm, gemm

SMALL = (12, 16, 16)  # fixed block sizes keep the number of compiled variants small


def _act(x, act):
    if act == "relu":
        return np.maximum(x, 0)
    if act == "gelu":
        return 0.5 * x * (1 + np.vectorize(math.erf)(x / math.sqrt(2)))
    if act == "silu":
        return x / (1 + np.exp(-x))
    return x


@pytest.mark.parametrize("backend", ["ref", "cpu"])
@settings(max_examples=6, deadline=None)
@given(m=st.integers(0, 40), n=st.integers(0, 40), k=st.integers(0, 40))
def test_gemm_random_shapes(backend, m, n, k):
    rng = np.random.default_rng(m * 10000 + n * 100 + k)
    a = rng.standard_normal((m, k)).astype(np.float32)
    b = rng.standard_normal((k, n)).astype(np.float32)
    out = gemm(a, b, backend=backend, blocks=SMALL)
    assert out.shape == (m, n)
    np.testing.assert_allclose(out, a @ b, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("backend", ["ref", "cpu"])
@pytest.mark.parametrize("act", [None, "relu", "gelu", "silu"])
def test_fused_epilogue(backend, act):
    rng = np.random.default_rng(1)
    a = rng.standard_normal((30, 20)).astype(np.float32)
    b = rng.standard_normal((20, 25)).astype(np.float32)
    bias = rng.standard_normal(25).astype(np.float32)
    res = rng.standard_normal((30, 25)).astype(np.float32)
    out = gemm(a, b, bias=bias, activation=act, residual=res, backend=backend, blocks=SMALL)
    ref = _act((a @ b + bias).astype(np.float64), act) + res
    np.testing.assert_allclose(out, ref, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("backend", ["ref", "cpu"])
def test_batched_gemm_and_broadcast_operand(backend):
    rng = np.random.default_rng(2)
    a = rng.standard_normal((3, 13, 17)).astype(np.float32)
    b = rng.standard_normal((3, 17, 9)).astype(np.float32)
    w = rng.standard_normal((17, 9)).astype(np.float32)
    np.testing.assert_allclose(batched_gemm(a, b, backend=backend, blocks=SMALL), a @ b, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(batched_gemm(a, w, backend=backend, blocks=SMALL), a @ w, rtol=1e-4, atol=1e-4)
    rb = rng.standard_normal(13).astype(np.float32)
    np.testing.assert_allclose(batched_gemm(a, w, row_bias=rb, backend=backend, blocks=SMALL),
                               a @ w + rb[:, None], rtol=1e-4, atol=1e-4)


@pytest.mark.slow
def test_default_blocks_large_odd_shape():
    rng = np.random.default_rng(3)
    a = rng.standard_normal((301, 257)).astype(np.float32)
    b = rng.standard_normal((257, 130)).astype(np.float32)
    np.testing.assert_allclose(gemm(a, b), a @ b, rtol=1e-4, atol=2e-4)


def test_gemm_rejects_bad_shapes():
    with pytest.raises(ValueError):
        gemm(np.zeros((2, 3), np.float32), np.zeros((4, 2), np.float32))
    with pytest.raises(ValueError):
        gemm(np.zeros((2, 3), np.float32), np.zeros((3, 2), np.float32), activation="tanh")


@pytest.mark.slow
@pytest.mark.parametrize("isa", ["avx2", "generic"])
def test_every_micro_kernel_isa(isa):
    """The micro-kernel is chosen at run time from the CPU flags; force the narrower ones."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    code = ("import numpy as np\n"
            "from opencann.ops.math.kernels.gemm import gemm\n"
            "rng = np.random.default_rng(0)\n"
            "for m, n, k in [(301, 257, 130), (5, 3, 7), (13, 40, 33)]:\n"
            "    a = rng.standard_normal((m, k)).astype(np.float32)\n"
            "    b = rng.standard_normal((k, n)).astype(np.float32)\n"
            "    c = rng.standard_normal(n).astype(np.float32)\n"
            "    np.testing.assert_allclose(gemm(a, b), a @ b, rtol=1e-4, atol=2e-4)\n"
            "    np.testing.assert_allclose(gemm(a, b, c), a @ b + c, rtol=1e-4, atol=2e-4)\n")
    src = str(Path(__file__).resolve().parents[4] / "src")
    env = dict(os.environ, OPENCANN_CPU_ISA=isa,
               PYTHONPATH=src + os.pathsep + os.environ.get("PYTHONPATH", ""))
    r = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr


@pytest.mark.parametrize("backend", ["ref", "cpu"])
@pytest.mark.parametrize("ta,tb", [(True, False), (False, True), (True, True)])
def test_transposed_operands(backend, ta, tb):
    rng = np.random.default_rng(4)
    a = rng.standard_normal((19, 23)).astype(np.float32)
    b = rng.standard_normal((23, 29)).astype(np.float32)
    out = gemm(a.T.copy() if ta else a, b.T.copy() if tb else b, trans_a=ta, trans_b=tb,
               backend=backend, blocks=SMALL)
    np.testing.assert_allclose(out, a @ b, rtol=1e-4, atol=1e-4)
    w = rng.standard_normal((2, 29, 23)).astype(np.float32)  # batched, weights stored (N, K)
    np.testing.assert_allclose(batched_gemm(a, w, trans_b=True, backend=backend, blocks=SMALL),
                               a @ np.swapaxes(w, 1, 2), rtol=1e-4, atol=1e-4)
    if backend == "cpu":  # default blocks: whole 12-row blocks read as stored, a remainder, K slabs
        a = rng.standard_normal((100, 300)).astype(np.float32)
        b = rng.standard_normal((300, 70)).astype(np.float32)
        out = gemm(a.T.copy() if ta else a, b.T.copy() if tb else b, trans_a=ta, trans_b=tb)
        np.testing.assert_allclose(out, a @ b, rtol=1e-4, atol=1e-3)


@pytest.mark.parametrize("act", [None, "gelu"])
@pytest.mark.parametrize("ta,tb", [(False, False), (True, True)])
def test_library_gemm_matches_the_tile_kernel(act, ta, tb):
    """BLAS product + tile epilogue computes what the tile kernel does, into a given buffer."""
    rng = np.random.default_rng(3)
    a = rng.standard_normal((2, 19, 23) if ta else (2, 23, 19)).astype(np.float32)  # (K, M) if ta
    b = rng.standard_normal((17, 19) if tb else (19, 17)).astype(np.float32)
    bias = rng.standard_normal(17).astype(np.float32)
    res = rng.standard_normal((2, 23, 17)).astype(np.float32)
    want = batched_gemm(a, b, bias, act, res, trans_a=ta, trans_b=tb, impl="tile")
    out = np.full((2, 23, 17), np.nan, np.float32)
    got = batched_gemm(a, b, bias, act, res, trans_a=ta, trans_b=tb, impl="library", out=out)
    assert got is out
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
    row_bias = rng.standard_normal(23).astype(np.float32)
    np.testing.assert_allclose(
        batched_gemm(a, b, row_bias=row_bias, trans_a=ta, trans_b=tb, impl="library"),
        batched_gemm(a, b, row_bias=row_bias, trans_a=ta, trans_b=tb, impl="tile"),
        rtol=1e-5, atol=1e-5)


def test_choose_impl_measures_once_and_honours_the_override(monkeypatch):
    from opencann.ops.math.kernels import gemm as g

    monkeypatch.setattr(g, "IMPL_CHOICES", {})
    monkeypatch.delenv("OPENCANN_GEMM_IMPL", raising=False)
    assert g.choose_impl(24, 40, 32, bias=True) == "tile"  # the default
    g.IMPL_CHOICES.clear()
    monkeypatch.setenv("OPENCANN_GEMM_IMPL", "auto")
    first = g.choose_impl(24, 40, 32, bias=True)
    assert first in ("tile", "library")
    assert list(g.IMPL_CHOICES.values()) == [first]
    assert g.choose_impl(24, 40, 32, bias=True) == first  # cached: not measured again
    monkeypatch.setenv("OPENCANN_GEMM_IMPL", "library")
    assert g.choose_impl(24, 48, 32) == "library"
    with pytest.raises(ValueError, match="impl must be one of"):
        batched_gemm(np.ones((2, 2), np.float32), np.ones((2, 2), np.float32), impl="blas")
    with pytest.raises(ValueError, match="C-contiguous float32"):
        batched_gemm(np.ones((2, 3), np.float32), np.ones((3, 2), np.float32),
                     out=np.empty((2, 3), np.float32))


def test_transposed_views_are_read_as_stored():
    rng = np.random.default_rng(5)
    a = rng.standard_normal((9, 13)).astype(np.float32)
    b = rng.standard_normal((11, 9)).astype(np.float32)
    np.testing.assert_allclose(gemm(a.T, b.T), a.T @ b.T, rtol=1e-5, atol=1e-5)
    b2 = rng.standard_normal((13, 4)).astype(np.float32)
    np.testing.assert_allclose(gemm(a.T, b2, trans_a=True), a @ b2, rtol=1e-5, atol=1e-5)
    a3 = rng.standard_normal((2, 9, 13)).astype(np.float32)
    b3 = rng.standard_normal((2, 11, 9)).astype(np.float32)
    np.testing.assert_allclose(batched_gemm(a3.swapaxes(1, 2), b3.swapaxes(1, 2)),
                               a3.swapaxes(1, 2) @ b3.swapaxes(1, 2), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("backend", ["ref", "cpu"])
@pytest.mark.parametrize("nr", [8, 32])
def test_panels_compute_what_the_matrix_does(backend, nr):
    """B packed once as panels (the form `dot` reads without packing) gives the same product,
    epilogue and batch broadcast included; edges in M, N and K are cut short."""
    from opencann.ops.math.kernels.gemm import pack_panels

    rng = np.random.default_rng(5)
    a = rng.standard_normal((2, 29, 37)).astype(np.float32)
    b = rng.standard_normal((37, 45)).astype(np.float32)
    bias = rng.standard_normal(45).astype(np.float32)
    p = pack_panels(b, nr)
    assert p.shape == (37, 45) and p.data.shape == (-(-45 // nr), 37, nr)
    np.testing.assert_array_equal(p.matrix(), b)
    assert not p.data[-1, :, 45 % nr:].any()  # zero past N
    blocks = (12, nr, 16)
    got = batched_gemm(a, p, bias, "relu", backend=backend, blocks=blocks)
    np.testing.assert_allclose(got, np.maximum(a @ b + bias, 0), rtol=1e-4, atol=1e-4)
    with pytest.raises(ValueError, match="trans_b"):
        batched_gemm(a, p, trans_b=True, backend=backend)
    # a batch of B (Winograd's transformed weights): one panel set per batch entry
    bb = rng.standard_normal((2, 37, 45)).astype(np.float32)
    pb = pack_panels(bb, nr)
    assert pb.shape == (2, 37, 45) and pb.ndim == 3
    np.testing.assert_array_equal(pb.matrix(), bb)
    np.testing.assert_allclose(batched_gemm(a, pb, backend=backend, blocks=blocks), a @ bb,
                               rtol=1e-4, atol=1e-4)


def test_dot_reads_blocks_cut_short_in_place():
    """A GEMM whose row and column blocks run past M and N (M=128 in blocks of 132, as every
    sequence-128 transformer GEMM is) reads its operands in place: the result is the same as
    NumPy's, and the C source takes the valid row count instead of copying the block."""
    from opencann.ops.math.kernels.gemm import gemm_kernel, gemm_launch

    rng = np.random.default_rng(6)
    for trans_b in (False, True):
        a = rng.standard_normal((128, 200)).astype(np.float32)
        b = rng.standard_normal((200, 70)).astype(np.float32)
        bt = np.ascontiguousarray(b.T)
        out = gemm(a, bt if trans_b else b, trans_b=trans_b, blocks=(132, 64, 64))
        np.testing.assert_allclose(out, a @ b, rtol=1e-4, atol=1e-3)
    d = np.empty(1, np.float32)
    _, args, meta = gemm_launch(d, d, d, None, None, 128, 70, 200, blocks=(132, 64, 64))
    src = gemm_kernel.c_source(*args, **meta)
    assert "oc_dot_f32_ld(dn" in src


def test_accumulating_in_the_output():
    """A block wholly inside C accumulates in C itself (the first K slab overwrites it, the C
    source says so); blocks at the edges, a residual that is the output array itself and K = 0
    keep the scratch accumulator, and every case computes what NumPy does."""
    from opencann.ops.math.kernels.gemm import gemm_kernel, gemm_launch

    d = np.empty(1, np.float32)
    _, args, meta = gemm_launch(d, d, d, None, None, 64, 64, 64, blocks=(24, 32, 16))
    src = gemm_kernel.c_source(*args, **meta)
    assert "oc_unset" in src and "= a_scm;" in src
    rng = np.random.default_rng(7)
    a = rng.standard_normal((50, 70)).astype(np.float32)   # 24-row blocks: 2 whole, 1 cut short
    b = rng.standard_normal((70, 45)).astype(np.float32)
    r = rng.standard_normal((50, 45)).astype(np.float32)
    want = a @ b + r
    out = np.full((50, 45), np.nan, np.float32)
    got = batched_gemm(a, b, residual=r, out=out, blocks=(24, 32, 16))
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)
    c = r.copy()  # C += A @ B in place: the residual is the output array
    batched_gemm(a, b, residual=c, out=c, blocks=(24, 32, 16))
    np.testing.assert_allclose(c, want, rtol=1e-4, atol=1e-4)
    z = batched_gemm(np.ones((30, 0), np.float32), np.ones((0, 40), np.float32), residual=r[:30, :40],
                     blocks=(24, 32, 16))
    np.testing.assert_array_equal(z, r[:30, :40])


def test_wide_blocks_keep_the_threads_busy():
    from opencann.ops.math.kernels.gemm import _balance, _wide_blocks

    for m, n, k, ta in [(1024, 1536, 384, False), (1024, 1152, 384, False), (384, 4096, 1024, True),
                        (1000, 1000, 1000, False), (133, 7, 5, False), (5000, 3, 4, False)]:
        for threads in (1, 2, 3, 8):
            bm, bn, bk = _wide_blocks(m, n, k, ta, threads)
            assert bn % 32 == 0 and 32 <= bn <= 384 and bm % 6 == 0 or m % bm == 0
            rows = [min(bm, m - i * bm) for i in range(-(-m // bm))]
            cols = [min(bn, n - j * bn) for j in range(-(-n // bn))]
            busy = _balance([r * c for c in cols for r in rows], threads)
            assert busy >= 0.95 or m * n < 2000, (m, n, threads, busy)
            assert bk % 8 == 0 and bk >= min(k, 8) and -(-k // bk) * bk - k < bk
    assert _wide_blocks(1024, 1152, 384, False, 2)[:2] == (1024, 288)  # 4 whole blocks of 288
    assert _balance([3, 3, 2], 2) == pytest.approx(8 / 10)


@pytest.mark.parametrize("ta,tb", [(False, False), (True, False), (False, True)])
def test_wide_blocks_with_every_layout(ta, tb):
    """More than 132 rows: large blocks, each 12-row block of A swept across several B panels
    (rows outer), a last block of 1-11 rows, K in slabs."""
    rng = np.random.default_rng(7)
    for m, n, k in [(301, 200, 300), (150, 97, 1030)]:
        a = rng.standard_normal((m, k)).astype(np.float32)
        b = rng.standard_normal((k, n)).astype(np.float32)
        out = gemm(a.T.copy() if ta else a, b.T.copy() if tb else b, trans_a=ta, trans_b=tb)
        np.testing.assert_allclose(out, a @ b, rtol=1e-4, atol=2e-3)


def test_repeated_calls_take_the_remembered_launch():
    """The second call with the same shapes and layouts goes through the remembered launch and
    computes what the first did: transposed views, bias, residual, a batch, an `out`."""
    from opencann.ops.math.kernels import gemm as g

    rng = np.random.default_rng(11)
    a = rng.standard_normal((37, 20)).astype(np.float32)
    bt = rng.standard_normal((45, 20)).astype(np.float32)  # B stored (N, K): bt.T is a view
    bias = rng.standard_normal(45).astype(np.float32)
    res = rng.standard_normal((37, 45)).astype(np.float32)
    g._LAUNCHES.clear()
    for trial in range(3):
        a2, b2 = a + trial, bt - trial
        got = batched_gemm(a2, b2.T, bias, "relu", res)
        np.testing.assert_allclose(got, np.maximum(a2 @ b2.T + bias, 0) + res, rtol=1e-4, atol=1e-4)
    assert len(g._LAUNCHES) == 1
    xb = rng.standard_normal((3, 20, 37)).astype(np.float32)  # a batch of A^T views
    w = rng.standard_normal((20, 9)).astype(np.float32)
    out = np.empty((3, 37, 9), np.float32)
    for trial in range(2):
        x = xb * (trial + 1)
        got = batched_gemm(np.swapaxes(x, 1, 2), w, out=out)
        assert got is out
        np.testing.assert_allclose(out, np.swapaxes(x, 1, 2) @ w, rtol=1e-4, atol=1e-4)
    assert len(g._LAUNCHES) == 2
    small = rng.standard_normal(45).astype(np.float32)  # a broadcast residual is copied: not kept
    n = len(g._LAUNCHES)
    for _ in range(2):
        np.testing.assert_allclose(batched_gemm(a, bt.T, residual=small), a @ bt.T + small,
                                   rtol=1e-4, atol=1e-4)
    assert len(g._LAUNCHES) == n


@pytest.mark.parametrize("ta", [False, True])
def test_bias_starts_the_sums(ta):
    """A column bias is where the sums start: the first K slab writes product + bias as it
    stores each 12-row block (no pass over the block after), later slabs add to it, and K = 0
    gives the bias alone. Tails of rows (the 6-row kernels) and columns, several panels, several
    K slabs, blocks wholly inside C and cut short."""
    from opencann.ops.math.kernels.gemm import gemm_kernel, gemm_launch

    d = np.empty(1, np.float32)
    _, args, meta = gemm_launch(d, d, d, d, None, 301, 200, 64, has_bias=1)
    src = gemm_kernel.c_source(*args, **meta)
    import re

    dots = re.findall(r"oc_dot_f32_ld\((.*)\);", src)
    rows = [d.split(", ")[-1] for d in dots]  # the dot's last argument: the row sums start from
    assert rows and all(re.fullmatch(r"[A-Za-z_]\w*", r) and r != "NULL" for r in rows), rows
    rng = np.random.default_rng(12)
    for m, n, k, blocks in [(301, 200, 300, None), (150, 97, 1030, None), (50, 45, 70, (24, 32, 16)),
                            (7, 70, 5, None), (30, 40, 0, (24, 32, 16))]:
        a = rng.standard_normal((m, k)).astype(np.float32)
        b = rng.standard_normal((k, n)).astype(np.float32)
        c = rng.standard_normal(n).astype(np.float32)
        got = batched_gemm(a.T.copy() if ta else a, b, c, trans_a=ta, blocks=blocks)
        np.testing.assert_allclose(got, a @ b + c, rtol=1e-4, atol=2e-3)
        got = batched_gemm(a.T.copy() if ta else a, b, c, "relu", trans_a=ta, blocks=blocks)
        np.testing.assert_allclose(got, np.maximum(a @ b + c, 0), rtol=1e-4, atol=2e-3)
