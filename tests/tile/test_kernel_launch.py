"""`Kernel.launch`: the generic launch through a kept prepared launch, one per argument pattern."""

import numpy as np

from opencann import tile


@tile.kernel
def _axpy(x, y, out, n, a, extra=None, BLOCK: tile.constexpr = 64, HAS_EXTRA: tile.constexpr = False):
    offs = tile.program_id(0) * BLOCK + tile.arange(0, BLOCK)
    m = offs < n
    v = a * tile.load(x + offs, mask=m) + tile.load(y + offs, mask=m)
    if HAS_EXTRA:
        v = v + tile.load(extra + offs, mask=m)
    tile.store(out + offs, v, mask=m)


def test_launch_keeps_one_prepared_launch_per_pattern():
    rng = np.random.default_rng(0)
    x, y, e = (rng.standard_normal(100).astype(np.float32) for _ in range(3))
    outs = []
    for a in (2.0, 2.0, 3.0):
        out = np.empty(100, np.float32)
        _axpy.launch((2,), x, y, out, 100, a)
        outs.append(out)
    np.testing.assert_allclose(outs[0], 2 * x + y, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(outs[2], 3 * x + y, rtol=1e-6, atol=1e-6)
    assert len(_axpy._prepared) == 2  # a = 2.0 twice, then 3.0
    out = np.empty(100, np.float32)
    _axpy.launch((2,), x, y, out, 100, 1.0, extra=e, HAS_EXTRA=True)  # an array by keyword
    np.testing.assert_allclose(out, x + y + e, rtol=1e-6, atol=1e-6)
    ref = np.empty(100, np.float32)
    _axpy[(2,)](x, y, ref, 100, 1.0, extra=e, HAS_EXTRA=True)
    np.testing.assert_array_equal(out, ref)


def test_launch_on_the_interpreter_takes_new_keyword_arrays():
    """A kept launch on the ref backend (the interpreter) reads each call's arrays, those given
    by keyword too: the second call must not write into the first call's `out`."""
    rng = np.random.default_rng(1)
    x, y = (rng.standard_normal(100).astype(np.float32) for _ in range(2))
    for e in (rng.standard_normal(100).astype(np.float32) for _ in range(2)):
        out = np.full(100, np.nan, np.float32)
        _axpy.launch((2,), x, y, out=out, n=100, a=1.0, extra=e, HAS_EXTRA=True, backend="ref")
        np.testing.assert_allclose(out, x + y + e, rtol=1e-6, atol=1e-6)
