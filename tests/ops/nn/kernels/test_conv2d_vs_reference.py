"""The library convolution (im2col by tap rows + GEMM), compiled, against the Conv reference."""

import numpy as np
import pytest

import opencann
from opencann.ops.nn.kernels.conv import conv2d
from opencann.testing import run_op

pytestmark = pytest.mark.skipif(not opencann.backends.get("cpu").is_available(),
                                reason="no C compiler")


@pytest.mark.parametrize("cin,cout,hw,k,stride,pad,dil,groups", [
    (3, 8, 17, 7, 2, 3, 1, 1),    # a stem: odd size, big window, stride 2
    (8, 8, 9, 3, 1, 1, 1, 1),
    (8, 16, 10, 3, 2, 1, 1, 2),   # groups
    (4, 6, 12, 3, 1, 2, 2, 1),    # dilation
    (8, 4, 9, 1, 2, 0, 1, 1),     # 1x1 stride 2: a subsampling im2col
    (4, 4, 5, 3, 1, 0, 1, 4),     # depthwise
    (6, 5, 7, 1, 1, 0, 1, 1),     # 1x1 stride 1: the input is the tap matrix
])
def test_conv2d_matches_reference(cin, cout, hw, k, stride, pad, dil, groups):
    rng = np.random.default_rng(cin * 100 + hw)
    x = rng.standard_normal((2, cin, hw, hw + 3)).astype(np.float32)
    w = rng.standard_normal((cout, cin // groups, k, k)).astype(np.float32)
    b = rng.standard_normal(cout).astype(np.float32)
    attrs = {"strides": [stride] * 2, "pads": [pad] * 4, "dilations": [dil] * 2, "group": groups}
    want = run_op("Conv", [x, w, b], attrs)
    got = conv2d(x, w, b, stride, pad, dil, groups, "relu")
    np.testing.assert_allclose(got, np.maximum(want, 0), rtol=1e-4, atol=1e-4)


def test_conv2d_wider_than_one_block():
    """Output rows longer than the im2col kernel's block are swept in chunks."""
    rng = np.random.default_rng(3)
    x = rng.standard_normal((1, 2, 3, 2100)).astype(np.float32)
    w = rng.standard_normal((3, 2, 3, 3)).astype(np.float32)
    want = run_op("Conv", [x, w], {"pads": [1, 1, 1, 1]})
    np.testing.assert_allclose(conv2d(x, w, padding=1), want, rtol=1e-4, atol=1e-4)
