"""The tile language: kernels run under the interpreter (`ref`) and compiled (`cpu`) agree with NumPy."""

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from opencann import tile

BACKENDS = ["ref", "cpu"]


@tile.kernel
def add_kernel(x, y, out, n, BLOCK: tile.constexpr):
    offs = tile.program_id(0) * BLOCK + tile.arange(0, BLOCK)
    mask = offs < n
    tile.store(out + offs, tile.load(x + offs, mask=mask) + tile.load(y + offs, mask=mask), mask=mask)


def _grid(meta):
    return (tile.cdiv(meta["n"], meta["BLOCK"]),)


@pytest.mark.parametrize("backend", BACKENDS)
@settings(max_examples=8, deadline=None)
@given(n=st.integers(0, 3000))
def test_vector_add_any_size(backend, n):
    rng = np.random.default_rng(n)
    x, y = rng.standard_normal(n).astype(np.float32), rng.standard_normal(n).astype(np.float32)
    out = np.full(n, np.nan, np.float32)
    add_kernel[_grid](x, y, out, n, BLOCK=256, backend=backend)
    np.testing.assert_array_equal(out, x + y)


@tile.kernel
def rowsum_loop_kernel(x, out, R, N, BR: tile.constexpr, BN: tile.constexpr):
    rows = tile.program_id(0) * BR + tile.arange(0, BR)
    cols = tile.arange(0, BN)
    acc = tile.zeros((BR,), tile.float32)
    count = 0
    for n0 in range(0, N, BN):  # runtime trip count, loop-carried tile and scalar
        c = n0 + cols
        v = tile.load(x + rows[:, None] * N + c[None, :], mask=(rows[:, None] < R) & (c[None, :] < N))
        acc += tile.sum(v, axis=1)
        count = count + 1
    tile.store(out + rows, acc / tile.maximum(count, 1), mask=rows < R)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("shape", [(1, 1), (5, 33), (17, 100), (3, 0)])
def test_runtime_loop_with_carried_values(backend, shape):
    R, N = shape
    x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    out = np.zeros(R, np.float32)
    rowsum_loop_kernel[(tile.cdiv(R, 4),)](x, out, R, N, BR=4, BN=16, backend=backend)
    chunks = max(1, -(-N // 16))
    np.testing.assert_allclose(out, x.sum(1) / chunks, rtol=1e-5, atol=1e-6)


@tile.kernel
def math_kernel(x, out, n, OP: tile.constexpr, BLOCK: tile.constexpr):
    offs = tile.program_id(0) * BLOCK + tile.arange(0, BLOCK)
    m = offs < n
    v = tile.load(x + offs, mask=m, other=1.0)
    if OP == "exp":
        r = tile.exp(v)
    elif OP == "log":
        r = tile.log(v)
    elif OP == "sqrt":
        r = tile.sqrt(v)
    elif OP == "rsqrt":
        r = tile.rsqrt(v)
    elif OP == "tanh":
        r = tile.tanh(v)
    elif OP == "erf":
        r = tile.erf(v)
    elif OP == "sigmoid":
        r = tile.sigmoid(v)
    elif OP == "where":
        r = tile.where(v > 0, v * 2, -v)
    else:
        r = tile.minimum(tile.maximum(v, -0.5), 0.5)
    tile.store(out + offs, r, mask=m)


def _np_math(op, x):
    import math

    x = x.astype(np.float64)
    return {"exp": np.exp, "log": np.log, "sqrt": np.sqrt, "rsqrt": lambda a: 1 / np.sqrt(a),
            "tanh": np.tanh, "erf": np.vectorize(math.erf), "sigmoid": lambda a: 1 / (1 + np.exp(-a)),
            "where": lambda a: np.where(a > 0, 2 * a, -a),
            "clip": lambda a: np.clip(a, -0.5, 0.5)}[op](x)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("op", ["exp", "log", "sqrt", "rsqrt", "tanh", "erf", "sigmoid", "where", "clip"])
def test_math_matches_numpy(backend, op):
    rng = np.random.default_rng(1)
    x = rng.standard_normal(1000).astype(np.float32) * 4
    if op in ("log", "sqrt", "rsqrt"):
        x = np.abs(x) + np.float32(1e-3)
    x[:4] = [0.0 if op not in ("log", "sqrt", "rsqrt") else 1.0, 1e-7, -1e-7 if op not in ("log", "sqrt", "rsqrt") else 2.0, 30.0]
    out = np.empty_like(x)
    math_kernel[(4,)](x, out, x.size, OP=op, BLOCK=256, backend=backend)
    np.testing.assert_allclose(out, _np_math(op, x), rtol=3e-6, atol=1e-7)


def test_exp_limits_on_cpu():
    x = np.array([-np.inf, -200, -87.5, 0, 88.5, 89, np.inf, np.nan], np.float32)
    out = np.empty_like(x)
    math_kernel[(1,)](x, out, x.size, OP="exp", BLOCK=8, backend="cpu")
    with np.errstate(over="ignore"):
        ref = np.exp(x.astype(np.float64)).astype(np.float32)
    np.testing.assert_allclose(out[2:], ref[2:], rtol=3e-6, atol=1e-37)
    assert out[0] == 0 and out[1] == 0


@tile.kernel
def cast_kernel(x, out, n, BLOCK: tile.constexpr):
    offs = tile.program_id(0) * BLOCK + tile.arange(0, BLOCK)
    m = offs < n
    v = tile.load(x + offs, mask=m)
    tile.store(out + offs, v * 2 + 1, mask=m)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("src,dst", [("float16", "float32"), ("float32", "float16"),
                                     ("float32", "bfloat16"), ("bfloat16", "float32"),
                                     ("int32", "int64"), ("float32", "int32")])
def test_storage_dtypes(backend, src, dst):
    from opencann import dtypes

    s, d = dtypes.by_name(src).np, dtypes.by_name(dst).np
    x = (np.random.default_rng(2).standard_normal(300) * 50).astype(s)
    out = np.zeros(300, d)
    cast_kernel[(2,)](x, out, 300, BLOCK=256, backend=backend)
    src_float = dtypes.by_name(src).is_float
    xf = x.astype(np.float32) if src_float else x.astype(np.int64)
    if not dtypes.by_name(dst).is_float and src_float:
        ref = np.trunc(xf * 2 + 1).astype(d)
    else:
        ref = (xf * 2 + 1).astype(d)
    np.testing.assert_array_equal(out, ref)


@tile.kernel
def tile_dot_kernel(a, b, c, M, N, K, BM: tile.constexpr, BN: tile.constexpr, BK: tile.constexpr):
    rm = tile.arange(0, BM)
    rn = tile.arange(0, BN)
    rk = tile.arange(0, BK)
    acc = tile.zeros((BM, BN), tile.float32)
    for k0 in range(0, K, BK):
        ka = k0 + rk
        x = tile.load(a + rm[:, None] * K + ka[None, :], mask=(rm[:, None] < M) & (ka[None, :] < K))
        y = tile.load(b + ka[:, None] * N + rn[None, :], mask=(ka[:, None] < K) & (rn[None, :] < N))
        acc = tile.dot(x, y, acc)
    i = tile.argmax(acc, axis=1)
    tile.store(c + rm[:, None] * N + rn[None, :], acc, mask=(rm[:, None] < M) & (rn[None, :] < N))
    tile.store(c + M * N + rm, i.to(tile.float32), mask=rm < M)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("mnk", [(13, 37, 19), (1, 1, 1), (32, 40, 64)])
def test_dot_and_argmax(backend, mnk):
    M, N, K = mnk
    rng = np.random.default_rng(3)
    a, b = rng.standard_normal((M, K)).astype(np.float32), rng.standard_normal((K, N)).astype(np.float32)
    c = np.zeros(M * N + M, np.float32)
    tile_dot_kernel[(1,)](a, b, c, M, N, K, BM=32, BN=40, BK=16, backend=backend)
    ref = a @ b
    np.testing.assert_allclose(c[:M * N].reshape(M, N), ref, rtol=1e-4, atol=1e-4)
    np.testing.assert_array_equal(c[M * N:], np.argmax(np.pad(ref, ((0, 0), (0, 40 - N))) if N < 40 and (ref < 0).all(axis=1).any() else ref, axis=1))


@tile.kernel
def grid_kernel(out, W: tile.constexpr):
    x, y, z = tile.program_id(0), tile.program_id(1), tile.program_id(2)
    n = tile.num_programs(0) * tile.num_programs(1) * tile.num_programs(2)
    i = (z * tile.num_programs(1) + y) * tile.num_programs(0) + x
    tile.store(out + i * W + tile.arange(0, W), tile.full((W,), 0, tile.int32) + i * 1000 + n)


@pytest.mark.parametrize("backend", BACKENDS)
def test_three_d_grid_and_num_programs(backend):
    out = np.zeros(2 * 3 * 4 * 2, np.int32)
    grid_kernel[(2, 3, 4)](out, W=2, backend=backend)
    ref = np.repeat(np.arange(24) * 1000 + 24, 2)
    np.testing.assert_array_equal(out, ref)


def test_empty_grid_runs_nothing():
    out = np.zeros(4, np.int32)
    grid_kernel[(0,)](out, W=2, backend="cpu")
    assert not out.any()


def test_ir_prints_and_names_ops():
    x = np.zeros(10, np.float32)
    text = str(add_kernel.ir(x, x, x, 10, BLOCK=64))
    assert text.startswith("kernel add_kernel(x: *float32, y: *float32, out: *float32, n: int64)")
    assert "[BLOCK=64]" in text and "program_id 0" in text and "load" in text and "store" in text
    loop = str(rowsum_loop_kernel.ir(np.zeros((2, 2), np.float32), np.zeros(2, np.float32), 2, 2, BR=4, BN=16))
    assert "for %" in loop and "yield" in loop


def test_one_compiled_kernel_serves_all_sizes():
    x = np.ones(100, np.float32)
    add_kernel[(1,)](x, x, x.copy(), 100, BLOCK=128, backend="cpu")
    before = len(add_kernel._programs)
    for n in (3, 50, 77, 99):
        y = np.ones(n, np.float32)
        out = np.zeros(n, np.float32)
        add_kernel[(1,)](y, y, out, n, BLOCK=128, backend="cpu")
        assert (out == 2).all()
    assert len(add_kernel._programs) == before


def test_compiled_source_is_vectorizable_loops():
    x = np.zeros(10, np.float32)
    src = add_kernel.c_source(x, x, x, 10, BLOCK=64)
    body = src.split("void oc_add_kernel")[1]
    assert "#pragma omp for" in body
    # the mask `offs < n` became a loop bound: a unit-stride copy with no per-element test
    assert "a_x[(v" in body and "?" not in body


def test_interpreter_allows_print_debugging(capsys):
    @tile.kernel
    def debug_kernel(out, BLOCK: tile.constexpr):
        v = tile.arange(0, BLOCK) * 2
        print("values", v.h)  # under the interpreter, tiles hold NumPy arrays
        tile.store(out + tile.arange(0, BLOCK), v)

    out = np.zeros(4, np.int32)
    debug_kernel[(1,)](out, BLOCK=4, backend="ref")
    assert "values [0 2 4 6]" in capsys.readouterr().out
    np.testing.assert_array_equal(out, [0, 2, 4, 6])


def test_compile_many_then_launch():
    x = np.arange(10, dtype=np.float32)
    out = np.zeros(10, np.float32)
    tile.compile_many([(add_kernel, (x, x, out, 10), {"BLOCK": 32}),
                       (cast_kernel, (x, out, 10), {"BLOCK": 32})])
    add_kernel[(1,)](x, x, out, 10, BLOCK=32)
    np.testing.assert_array_equal(out, 2 * x)


@tile.kernel
def dead_code_kernel(x, out, n, BLOCK: tile.constexpr):
    offs = tile.arange(0, BLOCK)
    unused = tile.exp(tile.load(x + offs, mask=offs < n))  # noqa: F841 - never stored
    for i in range(n):  # a loop without stores whose results are unused
        _ = tile.sum(offs, axis=0)
    tile.store(out + offs, offs, mask=offs < n)


def test_dead_code_is_removed_and_ir_verifies():
    from opencann.tile.passes import verify

    x = np.zeros(8, np.float32)
    ir = dead_code_kernel.ir(x, np.zeros(8, np.int32), 8, BLOCK=8)
    text = str(ir)
    assert "exp" not in text and "for " not in text and "load" not in text
    verify(ir)


def test_dump_env_prints_ir_and_c(monkeypatch, capsys, tmp_path):
    monkeypatch.setenv("OPENCANN_TILE_DUMP", "ir,c")
    monkeypatch.setenv("OPENCANN_CACHE_DIR", str(tmp_path))  # nothing cached: it compiles
    x = np.arange(5, dtype=np.float32)
    out = np.zeros(5, np.float32)
    add_kernel[(1,)](x, x, out, 5, BLOCK=8, backend="cpu")  # BLOCK=8: used by no other test
    err = capsys.readouterr().err
    assert "kernel IR of add_kernel" in err and "void oc_add_kernel" in err
    np.testing.assert_array_equal(out, 2 * x)
