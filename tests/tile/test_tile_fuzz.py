"""Random kernels: the C code generator and the interpreter agree on random expression recipes.

A recipe (a constexpr tuple of steps) combines broadcasting tiles with elementwise ops, reductions
and a runtime loop; each recipe compiles its own kernel.
"""

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from opencann import tile

OPS = ("add", "mul", "sub", "max", "where", "exp", "sum1", "sum0", "max1", "loop")


@tile.kernel
def recipe_kernel(x, y, z, out, R, C, RECIPE: tile.constexpr, BR: tile.constexpr, BC: tile.constexpr):
    rows = tile.program_id(0) * BR + tile.arange(0, BR)
    cols = tile.arange(0, BC)
    m = (rows[:, None] < R) & (cols[None, :] < C)
    vals = [tile.load(x + rows[:, None] * C + cols[None, :], mask=m, other=0.5),
            tile.load(y + cols, mask=cols < C, other=1.0)[None, :],
            tile.load(z + rows, mask=rows < R, other=2.0)[:, None],
            tile.load(z) * 0.5]
    for op, a, b in RECIPE:
        u, v = vals[a % len(vals)], vals[b % len(vals)]
        if op == "add":
            r = u + v
        elif op == "mul":
            r = u * v
        elif op == "sub":
            r = u - v
        elif op == "max":
            r = tile.maximum(u, v)
        elif op == "where":
            r = tile.where(u > v, u, v * 0.25)
        elif op == "exp":
            r = tile.exp(tile.minimum(u, 3.0))
        elif op == "sum1":
            r = tile.sum(tile.broadcast_to(u, (BR, BC)), axis=1, keep_dims=True)
        elif op == "sum0":
            r = tile.sum(tile.broadcast_to(u, (BR, BC)), axis=0, keep_dims=True) * 0.01
        elif op == "max1":
            r = tile.max(tile.broadcast_to(u, (BR, BC)), axis=1)[:, None]
        else:
            acc = tile.broadcast_to(u, (BR, BC)) * 1.0
            for _ in range(0, R % 3 + 1):
                acc = acc * 0.5 + v
            r = acc
        vals.append(r)
    tile.store(out + rows[:, None] * C + cols[None, :], tile.broadcast_to(vals[-1], (BR, BC)), mask=m)


@pytest.mark.slow
@settings(max_examples=6, deadline=None)
@given(recipe=st.lists(st.tuples(st.sampled_from(OPS), st.integers(0, 7), st.integers(0, 7)),
                       min_size=1, max_size=6),
       R=st.integers(1, 20), C=st.integers(1, 20))
def test_compiled_matches_interpreted(recipe, R, C):
    rng = np.random.default_rng(R * 100 + C)
    x = rng.standard_normal((R, C)).astype(np.float32)
    y = rng.standard_normal(C).astype(np.float32)
    z = rng.standard_normal(R).astype(np.float32)
    outs = []
    for backend in ("ref", "cpu"):
        out = np.zeros((R, C), np.float32)
        recipe_kernel[(-(-R // 8),)](x, y, z, out, R, C, RECIPE=tuple(recipe), BR=8, BC=16,
                                     backend=backend)
        outs.append(out)
    np.testing.assert_allclose(outs[1], outs[0], rtol=1e-4, atol=1e-4, equal_nan=True)
