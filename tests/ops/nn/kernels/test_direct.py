"""The direct (implicit-GEMM) convolution over a padded NHWC copy against the Conv reference."""

import numpy as np
import pytest

import opencann
from opencann.ops.math.kernels.gemm import pack_panels
from opencann.ops.nn.kernels import conv as conv_k
from opencann.ops.nn.kernels import direct
from opencann.testing import run_op

pytestmark = pytest.mark.skipif(not opencann.backends.get("cpu").is_available(),
                                reason="no C compiler")


def _rel(got, want):
    return float(np.abs(got - want).max() / max(np.abs(want).max(), 1e-30))


@pytest.mark.parametrize("n,c,cout,h,w,k,s,p", [
    (1, 3, 64, 30, 28, 7, 2, 3),   # a ResNet stem's shape, smaller: 3 channels, 7x7 stride 2
    (2, 5, 7, 9, 11, 3, 2, 1),     # two images; channels off every block size
    (1, 16, 40, 15, 15, 3, 1, 1),  # stride 1: the linear mode, blocks across output rows
    (1, 8, 33, 7, 6, 3, 3, 2),     # stride 3, padding past the window's half
    (1, 12, 20, 13, 13, 1, 2, 0),  # a strided 1x1: the pixels gathered, then one GEMM
    (2, 70, 9, 5, 4, 1, 1, 0),     # a 1x1 of stride 1
    (1, 300, 34, 6, 6, 3, 2, 1),   # KW*C past 256: the window row in several K slabs
    (1, 4, 4, 3, 3, 3, 1, 0),      # a single output pixel
])
def test_direct_matches_reference(n, c, cout, h, w, k, s, p):
    rng = np.random.default_rng(n * 1000 + c * 10 + h + k)
    x = rng.standard_normal((n, c, h, w)).astype(np.float32)
    wt = rng.standard_normal((cout, c, k, k)).astype(np.float32)
    b = rng.standard_normal(cout).astype(np.float32)
    want = run_op("Conv", [x, wt, b], {"pads": [p] * 4, "strides": [s, s]})
    panels = pack_panels(wt.transpose(2, 3, 1, 0).reshape(-1, cout))
    plan = direct.DirectPlan(n, c, h, w, cout, k, k, (s, s), (p, p), panels.nr, has_bias=True)
    assert plan.out_shape == want.shape
    out = np.full(want.shape, np.nan, np.float32)
    plan(x, panels.data, b, None, out)
    assert _rel(out, want) < 2e-6


def test_direct_epilogue_order():
    """res_act(act(conv + bias) + residual), through Conv2d with the algorithm forced."""
    rng = np.random.default_rng(3)
    x = rng.standard_normal((1, 6, 17, 16)).astype(np.float32)
    wt = rng.standard_normal((10, 6, 3, 3)).astype(np.float32)
    b = rng.standard_normal(10).astype(np.float32)
    r = rng.standard_normal((1, 10, 9, 8)).astype(np.float32) * 10
    conv = conv_k.Conv2d(wt, b, 2, 1, activation="relu", res_activation="relu", algo="direct")
    want = np.maximum(np.maximum(run_op("Conv", [x, wt, b], {"pads": [1] * 4,
                                                             "strides": [2, 2]}), 0) + r, 0)
    got = conv(x, r)
    assert _rel(got, want) < 2e-6
    assert (got == 0).any() and (got > 0).any()  # both ReLUs did something


def test_direct_on_the_interpreter():
    """The kernels are plain tile code: the ref backend runs them too."""
    rng = np.random.default_rng(4)
    x = rng.standard_normal((1, 3, 7, 6)).astype(np.float32)
    wt = rng.standard_normal((5, 3, 3, 3)).astype(np.float32)
    panels = pack_panels(wt.transpose(2, 3, 1, 0).reshape(-1, 5), nr=8)
    for s in (1, 2):
        plan = direct.DirectPlan(1, 3, 7, 6, 5, 3, 3, (s, s), (1, 1), 8, backend="ref")
        out = np.empty(plan.out_shape, np.float32)
        plan(x, panels.data, None, None, out)
        assert _rel(out, run_op("Conv", [x, wt], {"pads": [1] * 4, "strides": [s, s]})) < 2e-6


def test_direct_needs_one_group_undilated():
    conv = conv_k.Conv2d(np.zeros((4, 2, 3, 3), np.float32), groups=2, algo="direct")
    with pytest.raises(ValueError, match="one group"):
        conv(np.zeros((1, 4, 8, 8), np.float32))
