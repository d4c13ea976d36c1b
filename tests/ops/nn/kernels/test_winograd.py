"""Winograd F(2x2,3x3) / F(4x4,3x3) convolution against the Conv reference, and the algorithm
choice of the library convolution."""

import numpy as np
import pytest

import opencann
from opencann.ops.nn.kernels import conv as conv_k
from opencann.ops.nn.kernels import winograd
from opencann.testing import run_op

pytestmark = pytest.mark.skipif(not opencann.backends.get("cpu").is_available(),
                                reason="no C compiler")


@pytest.mark.parametrize("m", [2, 4])
def test_transforms_compute_a_correlation(m):
    """Aᵀ[(G g) ⊙ (Bᵀ d)] is the valid correlation of d (m+2 values) with g (3 values)."""
    bt, g_mat, at = (np.asarray(t, np.float64) for t in winograd.TRANSFORMS[m])
    rng = np.random.default_rng(m)
    for _ in range(5):
        d, g = rng.standard_normal(m + 2), rng.standard_normal(3)
        got = at @ ((g_mat @ g) * (bt @ d))
        want = np.array([d[i:i + 3] @ g for i in range(m)])
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)


def _ref(x, w, b, pad):
    return run_op("Conv", [x, w] + ([b] if b is not None else []), {"pads": [pad] * 4})


def _rel(got, want):
    return float(np.abs(got - want).max() / max(np.abs(want).max(), 1e-30))


@pytest.mark.parametrize("m", [2, 4])
@pytest.mark.parametrize("n,c,cout,h,w,pad", [
    (1, 3, 5, 7, 9, 1),      # output not a multiple of the tile; few channels
    (2, 16, 24, 10, 13, 1),  # two images
    (1, 70, 9, 6, 6, 0),     # channels past one 64-wide block; no padding
    (1, 8, 66, 5, 11, 1),    # output channels past one block
    (1, 4, 4, 3, 3, 0),      # a single output pixel
])
def test_winograd_matches_reference(m, n, c, cout, h, w, pad):
    rng = np.random.default_rng(n * 1000 + c * 10 + h)
    x = rng.standard_normal((n, c, h, w)).astype(np.float32)
    wt = rng.standard_normal((cout, c, 3, 3)).astype(np.float32)
    b = rng.standard_normal(cout).astype(np.float32)
    u = winograd.transform_weights(wt, m)
    assert u.shape == ((m + 2) ** 2, c, cout) and u.dtype == np.float32
    got = winograd.winograd_conv3x3(x, u, m, b, (pad, pad))
    want = _ref(x, wt, b, pad)
    assert got.shape == want.shape
    assert _rel(got, want) < (1e-5 if m == 4 else 2e-6)


@pytest.mark.parametrize("m", [2, 4])
def test_winograd_epilogue_order(m):
    """res_act(act(conv + bias) + residual), written into a given buffer."""
    rng = np.random.default_rng(7)
    x = rng.standard_normal((1, 20, 12, 12)).astype(np.float32)
    wt = rng.standard_normal((18, 20, 3, 3)).astype(np.float32)
    b = rng.standard_normal(18).astype(np.float32)
    r = rng.standard_normal((1, 18, 12, 12)).astype(np.float32) * 10
    conv = _ref(x, wt, b, 1)
    out = np.full((1, 18, 12, 12), np.nan, np.float32)
    got = winograd.winograd_conv3x3(x, winograd.transform_weights(wt, m), m, b, (1, 1), "relu",
                                    r, out=out, res_activation="relu")
    assert got is out
    want = np.maximum(np.maximum(conv, 0) + r, 0)
    assert _rel(got, want) < 1e-5
    assert (got == 0).any() and (got > 0).any()  # both ReLUs did something
    got2 = winograd.winograd_conv3x3(x, winograd.transform_weights(wt, m), m, None, (1, 1),
                                     None, r, res_activation="silu")
    y = conv - b[None, :, None, None] + r
    assert _rel(got2, y / (1 + np.exp(-y))) < 1e-5


def test_winograd_on_the_interpreter():
    """The kernels are plain tile code: the ref backend runs them too."""
    rng = np.random.default_rng(11)
    x = rng.standard_normal((1, 3, 6, 5)).astype(np.float32)
    wt = rng.standard_normal((4, 3, 3, 3)).astype(np.float32)
    for m in (2, 4):
        got = winograd.winograd_conv3x3(x, winograd.transform_weights(wt, m), m, None, (1, 1),
                                        "relu", backend="ref")
        assert _rel(got, np.maximum(_ref(x, wt, None, 1), 0)) < 1e-5


def test_winograd_errors():
    x = np.zeros((1, 4, 8, 8), np.float32)
    wt = np.zeros((2, 4, 3, 3), np.float32)
    with pytest.raises(ValueError, match="tile size"):
        winograd.transform_weights(wt, 3)
    with pytest.raises(ValueError, match=r"\(Cout, C, 3, 3\)"):
        winograd.transform_weights(np.zeros((2, 4, 5, 5)), 2)
    with pytest.raises(ValueError, match="do not fit"):
        winograd.winograd_conv3x3(x, winograd.transform_weights(wt, 2), 4)
    with pytest.raises(ValueError, match="out must be"):
        winograd.winograd_conv3x3(x, winograd.transform_weights(wt, 2), 2,
                                  out=np.zeros((1, 2, 6, 6), np.float32))


def test_choose_algo_rule(monkeypatch):
    monkeypatch.delenv("OPENCANN_CONV_ALGO", raising=False)
    big = (64, 64, 3, 3)
    assert conv_k.choose_algo(big, (56, 56)) == "winograd4"
    assert conv_k.choose_algo(big, (28, 28)) == "winograd4"
    assert conv_k.choose_algo(big, (14, 14)) == "winograd2"
    assert conv_k.choose_algo(big, (7, 7)) == "im2col"
    assert conv_k.choose_algo((8, 64, 3, 3), (56, 56)) == "im2col"      # few output channels
    assert conv_k.choose_algo(big, (56, 56), stride=(2, 2)) == "direct"  # strided, 14+ wide
    assert conv_k.choose_algo(big, (7, 7), stride=(2, 2)) == "im2col"
    assert conv_k.choose_algo((64, 64, 1, 1), (28, 28), stride=(2, 2)) == "im2col"
    assert conv_k.choose_algo((256, 128, 1, 1), (14, 14), stride=(2, 2)) == "direct"
    assert conv_k.choose_algo(big, (56, 56), dilation=(2, 2)) == "im2col"
    assert conv_k.choose_algo(big, (56, 56), groups=2) == "im2col"
    assert conv_k.choose_algo((64, 64, 5, 5), (56, 56)) == "im2col"
    monkeypatch.setenv("OPENCANN_CONV_ALGO", "winograd2")
    assert conv_k.choose_algo(big, (56, 56)) == "winograd2"
    assert conv_k.choose_algo(big, (56, 56), stride=(2, 2)) == "direct"  # where it applies only
    monkeypatch.setenv("OPENCANN_CONV_ALGO", "direct")
    assert conv_k.choose_algo(big, (7, 7)) == "direct"
    assert conv_k.choose_algo(big, (7, 7), groups=2) == "im2col"
    monkeypatch.setenv("OPENCANN_CONV_ALGO", "fft")
    with pytest.raises(ValueError, match="OPENCANN_CONV_ALGO"):
        conv_k.choose_algo(big, (56, 56))


@pytest.mark.parametrize("algo", ["auto", "im2col", "winograd2", "winograd4", "direct"])
def test_conv2d_algorithms_agree(algo, monkeypatch):
    monkeypatch.delenv("OPENCANN_CONV_ALGO", raising=False)
    rng = np.random.default_rng(5)
    x = rng.standard_normal((2, 16, 25, 24)).astype(np.float32)
    wt = rng.standard_normal((32, 16, 3, 3)).astype(np.float32)
    b = rng.standard_normal(32).astype(np.float32)
    r = rng.standard_normal((2, 32, 25, 24)).astype(np.float32)
    conv = conv_k.Conv2d(wt, b, 1, 1, activation="relu", res_activation="relu", algo=algo)
    assert conv.algo_for(25, 24) == ("winograd4" if algo == "auto" else algo)
    want = np.maximum(np.maximum(_ref(x, wt, b, 1), 0) + r, 0)
    assert _rel(conv(x, r), want) < 1e-5
    if algo.startswith("winograd"):
        m = int(algo[-1])
        assert conv.winograd_weights(m) is conv.winograd_weights(m)  # transformed once


def test_conv2d_im2col_epilogue_with_groups():
    """The GEMM path takes the residual and the activation after it, per group too."""
    rng = np.random.default_rng(9)
    x = rng.standard_normal((2, 8, 9, 10)).astype(np.float32)
    wt = rng.standard_normal((6, 4, 3, 3)).astype(np.float32)
    r = rng.standard_normal((2, 6, 5, 5)).astype(np.float32)
    want = run_op("Conv", [x, wt], {"pads": [1] * 4, "strides": [2, 2], "group": 2})
    got = conv_k.conv2d(x, wt, stride=2, padding=1, groups=2, residual=r, res_activation="relu")
    np.testing.assert_allclose(got, np.maximum(want + r, 0), rtol=1e-5, atol=1e-5)


def test_forced_winograd_on_an_unsupported_conv_says_why():
    conv = conv_k.Conv2d(np.zeros((4, 4, 3, 3), np.float32), stride=2, algo="winograd4")
    with pytest.raises(ValueError, match="3x3 stride-1"):
        conv(np.zeros((1, 4, 8, 8), np.float32))


@pytest.mark.parametrize("impl,env", [("library", "tile"), ("auto", "library"), ("auto", "tile")])
def test_conv2d_gemm_forms_agree(impl, env, monkeypatch):
    """The im2col path through the library GEMM (asked for, or chosen by OPENCANN_GEMM_IMPL) and
    through the prepared tile launches give the same convolution."""
    monkeypatch.setenv("OPENCANN_GEMM_IMPL", env)
    monkeypatch.setattr(conv_k, "choose_impl", _fresh_choice(conv_k.choose_impl))
    rng = np.random.default_rng(13)
    x = rng.standard_normal((2, 6, 11, 9)).astype(np.float32)
    wt = rng.standard_normal((10, 6, 3, 3)).astype(np.float32)
    b = rng.standard_normal(10).astype(np.float32)
    r = rng.standard_normal((2, 10, 6, 5)).astype(np.float32)
    conv = conv_k.Conv2d(wt, b, 2, 1, activation="relu", res_activation="relu", impl=impl)
    want = np.maximum(np.maximum(run_op("Conv", [x, wt, b], {"pads": [1] * 4, "strides": [2, 2]}),
                                 0) + r, 0)
    np.testing.assert_allclose(conv(x, r), want, rtol=1e-5, atol=1e-5)
    assert conv(x, r).shape == (2, 10, 6, 5)  # the second call runs the kept plan


def _fresh_choice(choose):
    """choose_impl without the process-wide memo of earlier tests' choices."""
    from opencann.ops.math.kernels import gemm as gemm_k

    def fresh(*a, **k):
        gemm_k.IMPL_CHOICES.clear()
        return choose(*a, **k)
    return fresh

