"""Less common kernel shapes: nested loops, general reshapes, 3-d tiles, gathers, odd masks.

Each kernel runs compiled and interpreted; both must agree with NumPy.
"""

import numpy as np
import pytest

from opencann import tile

BACKENDS = ["ref", "cpu"]


@tile.kernel
def nested_loop_kernel(x, out, R, C, BR: tile.constexpr, BC: tile.constexpr):
    # sum of x[r, c] * (r + 1) over a runtime 2-level loop nest, with a scalar pointer advanced
    acc = tile.zeros((BC,), tile.float32)
    cols = tile.arange(0, BC)
    p = x
    for r0 in range(0, R, BR):
        part = tile.zeros((BC,), tile.float32)
        for r in range(r0, tile.minimum(r0 + BR, R)):
            part += tile.load(p + r * C + cols, mask=cols < C, other=0.0) * (r + 1).to(tile.float32)
        acc = acc + part
    tile.store(out + cols, acc, mask=cols < C)


@pytest.mark.parametrize("backend", BACKENDS)
def test_nested_loops(backend):
    x = np.random.default_rng(0).standard_normal((11, 13)).astype(np.float32)
    out = np.zeros(13, np.float32)
    nested_loop_kernel[(1,)](x, out, 11, 13, BR=4, BC=16, backend=backend)
    np.testing.assert_allclose(out, (x * np.arange(1, 12)[:, None]).sum(0), rtol=1e-5, atol=1e-5)


@tile.kernel
def reshape_kernel(x, out, B: tile.constexpr):
    v = tile.load(x + tile.arange(0, 4 * B))            # (4B,)
    m = tile.reshape(v, (4, B))                          # general reshape
    s = tile.sum(m, axis=0)                              # reduce a leading axis
    t = tile.trans(m)                                    # (B, 4)
    three = tile.reshape(t, (B, 2, 2))                   # a 3-d tile
    mx = tile.max(three, axis=2)                         # (B, 2)
    tile.store(out + tile.arange(0, B), s)
    tile.store(out + B + tile.arange(0, B)[:, None] * 2 + tile.arange(0, 2)[None, :], mx)


@pytest.mark.parametrize("backend", BACKENDS)
def test_reshape_transpose_three_d(backend):
    x = np.random.default_rng(1).standard_normal(32).astype(np.float32)
    out = np.zeros(8 + 16, np.float32)
    reshape_kernel[(1,)](x, out, B=8, backend=backend)
    m = x.reshape(4, 8)
    np.testing.assert_allclose(out[:8], m.sum(0), rtol=1e-6)
    np.testing.assert_allclose(out[8:], m.T.reshape(8, 2, 2).max(2).reshape(-1))


@tile.kernel
def gather_kernel(x, idx, out, n, BLOCK: tile.constexpr):
    offs = tile.program_id(0) * BLOCK + tile.arange(0, BLOCK)
    m = offs < n
    i = tile.load(idx + offs, mask=m, other=0)
    even = (offs % 2) == 0                                   # not an interval: a per-element test
    v = tile.load(x + i, mask=m & even, other=tile.full((BLOCK,), -1.0, tile.float32))
    tile.store(out + offs, v, mask=m & (v > -10.0))


@pytest.mark.parametrize("backend", BACKENDS)
def test_gather_and_elementwise_masks(backend):
    rng = np.random.default_rng(2)
    x = rng.standard_normal(50).astype(np.float32)
    idx = rng.integers(0, 50, 37).astype(np.int64)
    out = np.full(37, 99.0, np.float32)
    gather_kernel[(3,)](x, idx, out, 37, BLOCK=16, backend=backend)
    ref = np.where(np.arange(37) % 2 == 0, x[idx], -1.0)
    np.testing.assert_array_equal(out, ref.astype(np.float32))


@tile.kernel
def scalar_kernel(x, out, n, f):
    s = tile.load(x)                       # scalar load through a scalar pointer
    t = tile.where(n > 3, s * f, -s)       # scalar select
    tile.store(out, t)
    tile.store(out + 1, tile.sum(tile.load(x + tile.arange(0, 4)), axis=0), mask=n > 0)


@pytest.mark.parametrize("backend", BACKENDS)
def test_scalar_programs(backend):
    x = np.array([2.0, 3.0, 4.0, 5.0], np.float32)
    out = np.zeros(2, np.float32)
    scalar_kernel[(1,)](x, out, 5, 0.5, backend=backend)
    np.testing.assert_array_equal(out, [1.0, 14.0])
    scalar_kernel[(1,)](x, out, 0, 0.5, backend=backend)
    np.testing.assert_array_equal(out, [-2.0, 14.0])


@tile.kernel
def inplace_kernel(x, n, BLOCK: tile.constexpr):
    offs = tile.program_id(0) * BLOCK + tile.arange(0, BLOCK)
    m = offs < n
    v = tile.load(x + offs, mask=m)
    tile.store(x + offs, v * v, mask=m)       # read and write the same tensor


@pytest.mark.parametrize("backend", BACKENDS)
def test_in_place_update(backend):
    x = np.arange(20, dtype=np.float32)
    inplace_kernel[(2,)](x, 20, BLOCK=16, backend=backend)
    np.testing.assert_array_equal(x, np.arange(20, dtype=np.float32) ** 2)


@tile.kernel
def pointer_tile_loop_kernel(x, out, n, BLOCK: tile.constexpr):
    ptrs = x + tile.arange(0, BLOCK)
    acc = tile.zeros((BLOCK,), tile.float32)
    for i in range(0, n):
        acc += tile.load(ptrs)
        ptrs += BLOCK
    tile.store(out + tile.arange(0, BLOCK), acc)


def test_loop_carried_pointer_tiles():
    x = np.arange(12, dtype=np.float32)
    out = np.zeros(4, np.float32)
    pointer_tile_loop_kernel[(1,)](x, out, 3, BLOCK=4, backend="ref")  # the interpreter runs it
    np.testing.assert_array_equal(out, x.reshape(3, 4).sum(0))
    with pytest.raises(tile.TileCompileError, match="carry integer offsets"):
        pointer_tile_loop_kernel[(1,)](x, out, 3, BLOCK=4, backend="cpu")


@tile.kernel
def block_ptr_gemm_kernel(a, b, c, M, N, K, BM: tile.constexpr, BN: tile.constexpr,
                          BK: tile.constexpr):
    pm, pn = tile.program_id(0), tile.program_id(1)
    a_blk = tile.make_block_ptr(a, (M, K), (K, 1), (pm * BM, 0), (BM, BK), order=(1, 0))
    b_blk = tile.make_block_ptr(b, (K, N), (N, 1), (0, pn * BN), (BK, BN), order=(1, 0))
    acc = tile.zeros((BM, BN), tile.float32)
    for _ in range(0, K, BK):  # block pointers carried through the loop and advanced
        acc = tile.dot(tile.load(a_blk, boundary_check=(0, 1)), tile.load(b_blk, boundary_check=(0, 1)), acc)
        a_blk = tile.advance(a_blk, (0, BK))
        b_blk = tile.advance(b_blk, (BK, 0))
    c_blk = tile.make_block_ptr(c, (M, N), (N, 1), (pm * BM, pn * BN), (BM, BN), order=(1, 0))
    tile.store(c_blk, acc, boundary_check=(0, 1))


@pytest.mark.parametrize("backend", BACKENDS)
def test_block_pointers(backend):
    rng = np.random.default_rng(5)
    M, N, K = 21, 30, 37
    a = rng.standard_normal((M, K)).astype(np.float32)
    b = rng.standard_normal((K, N)).astype(np.float32)
    c = np.zeros((M, N), np.float32)
    block_ptr_gemm_kernel[(2, 2)](a, b, c, M, N, K, BM=16, BN=16, BK=8, backend=backend)
    np.testing.assert_allclose(c, a @ b, rtol=1e-4, atol=1e-4)


@tile.kernel
def scalar_carry_kernel(x, out, n, step, BLOCK: tile.constexpr):
    best = float("-inf")              # a Python float promoted to a loop-carried scalar
    total = tile.zeros((BLOCK,), tile.float32)
    cols = tile.arange(0, BLOCK)
    start = tile.where(step > 0, 0, n - 1)
    stop = tile.where(step > 0, n, -1)
    for i in range(start, stop, step):  # runtime bounds and a runtime (possibly negative) step
        v = tile.load(x + i * BLOCK + cols)
        best = tile.maximum(best, tile.max(v, axis=0))
        total = total * 0.5 + v
    tile.store(out + cols, total)
    tile.store(out + BLOCK, best)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("n,step", [(3, 1), (4, -1), (0, 1), (5, 2)])
def test_scalar_carry_and_steps(backend, n, step):
    x = np.random.default_rng(6).standard_normal((max(n, 1), 8)).astype(np.float32)
    out = np.zeros(9, np.float32)
    scalar_carry_kernel[(1,)](x, out, n, step, BLOCK=8, backend=backend)
    order = list(range(0, n, step)) if step > 0 else list(range(n - 1, -1, step))
    total = np.zeros(8, np.float32)
    for i in order:
        total = total * np.float32(0.5) + x[i]
    np.testing.assert_allclose(out[:8], total, rtol=1e-6)
    assert out[8] == (max(x[i].max() for i in order) if order else -np.inf)


@tile.kernel
def shift_kernel(x, n, BLOCK: tile.constexpr):
    offs = tile.arange(0, BLOCK)
    m = offs < n - 1
    v = tile.load(x + offs, mask=m)
    tile.store(x + offs + 1, v, mask=m)  # in place, one element to the right


@pytest.mark.parametrize("backend", BACKENDS)
def test_in_place_shift_reads_old_values(backend):
    x = np.arange(1000, dtype=np.float32)
    shift_kernel[(1,)](x, 1000, BLOCK=1024, backend=backend)
    np.testing.assert_array_equal(x, np.concatenate([[0], np.arange(999)]).astype(np.float32))
