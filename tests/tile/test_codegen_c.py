"""The C code generator and its runtime: masks on strided indices (k * i + s against a bound,
k > 1) become loop bounds instead of a test per element, compiled and interpreted kernels agreeing
at every offset, negative ones included; the panel width `dot` packs B to follows the ISA."""

import numpy as np
import pytest

from opencann import tile
from opencann.backends.cpu.compiler import find_compiler

pytestmark = pytest.mark.skipif(find_compiler() is None, reason="needs a C compiler")


@tile.kernel
def gather_stride(x, out, n, off, m, K: tile.constexpr, BLOCK: tile.constexpr):
    i = tile.arange(0, BLOCK)
    idx = K * i + off
    v = tile.load(x + idx, mask=(idx >= 0) & (idx < n), other=-1.0)
    w = tile.load(x + idx, mask=(idx > 0) & (idx <= n - 1), other=-2.0)
    tile.store(out + i, v + 10.0 * w, mask=i < m)


@pytest.mark.parametrize("k", [2, 3])
@pytest.mark.parametrize("off", [-7, -1, 0, 1, 5])
def test_strided_mask_bounds(k, off):
    x = np.arange(1, 21, dtype=np.float32)
    got = {}
    for backend in ("cpu", "ref"):
        out = np.zeros(16, np.float32)
        gather_stride[(1,)](x, out, x.size, off, 16, K=k, BLOCK=16, backend=backend)
        got[backend] = out
    idx = k * np.arange(16) + off
    v = np.where((idx >= 0) & (idx < 20), x[np.clip(idx, 0, 19)], -1.0)
    w = np.where((idx > 0) & (idx <= 19), x[np.clip(idx, 0, 19)], -2.0)
    np.testing.assert_array_equal(got["ref"], v + 10 * w)
    np.testing.assert_array_equal(got["cpu"], got["ref"])
    src = gather_stride.c_source(x, np.zeros(16, np.float32), 20, off, 16, K=k, BLOCK=16)
    assert "OC_FLOORDIV" in src  # the bounds, not a test per element


def test_dot_panel_width_follows_the_isa(monkeypatch):
    """The panel width weights are packed to is the one the C side picks, narrowed by
    OPENCANN_CPU_ISA like it (a wrong guess would cost packing, never correctness)."""
    from opencann.backends.cpu.compiler import simd_flags

    monkeypatch.delenv("OPENCANN_CPU_ISA", raising=False)
    flags = simd_flags()
    want = 32 if {"avx512f", "avx2", "fma"} <= flags else 16 if {"avx2", "fma"} <= flags else 8
    assert tile.dot_panel_width() == want
    monkeypatch.setenv("OPENCANN_CPU_ISA", "avx2")
    assert tile.dot_panel_width() == min(want, 16)
    monkeypatch.setenv("OPENCANN_CPU_ISA", "generic")
    assert tile.dot_panel_width() == 8


@tile.kernel
def _matmul_sweep(a, b, c, K, BM: tile.constexpr, BK: tile.constexpr, PARTIAL: tile.constexpr):
    """c = a @ b for one BM x BM block; with PARTIAL the running product is also stored after
    every K slab (a second store to c, so the accumulator must not live in c)."""
    rm = tile.arange(0, BM)
    rk = tile.arange(0, BK)
    acc = tile.zeros((BM, BM), tile.float32)
    for k0 in range(0, K, BK):
        at = tile.load(a + rm[:, None] * K + (k0 + rk)[None, :])
        bt = tile.load(b + (k0 + rk)[:, None] * BM + rm[None, :])
        acc = tile.dot(at, bt, acc)
        if PARTIAL:
            tile.store(c + rm[:, None] * BM + rm[None, :], acc * 0.0)
    tile.store(c + rm[:, None] * BM + rm[None, :], acc + 1.0)


@pytest.mark.parametrize("partial", [False, True])
@pytest.mark.parametrize("k", [0, 48])
def test_dot_accumulating_in_the_output(partial, k):
    """The accumulator lives in the output block only when nothing else writes or reads the
    output; the first product overwrites it, and K = 0 leaves the zeros it started from."""
    rng = np.random.default_rng(3)
    a = rng.standard_normal((16, max(k, 1))).astype(np.float32)[:, :k].copy()
    b = rng.standard_normal((max(k, 1), 16)).astype(np.float32)[:k].copy()
    c = np.full((16, 16), np.nan, np.float32)
    _matmul_sweep[(1,)](a, b, c, k, BM=16, BK=16, PARTIAL=partial)
    np.testing.assert_allclose(c, a @ b + 1.0, rtol=1e-5, atol=1e-5)
    src = _matmul_sweep.c_source(a, b, c, k, BM=16, BK=16, PARTIAL=partial)
    assert ("= &a_c[0];" in src) != partial  # the accumulator pointed at the output, or not
