"""Convolutions: inference with symbolic dims, and values against direct loop implementations for
the cases the ONNX suite does not cover (groups with dilations, asymmetric pads, fp16, adjointness
of ConvTranspose, streaming CausalConvWithState)."""

import functools
import itertools

import numpy as np
import pytest

from opencann.ops.infer import InferError
from opencann.testing import infer_op, run_op, tensor_type

rng = np.random.default_rng(0)


# these tests run at opset 22 unless they name an opset
run = functools.partial(run_op, opset=22)
infer_types = functools.partial(infer_op, opset=22)
t = tensor_type


def naive_conv2d(x, w, b, strides, pads, dilations, group):
    N, C, H, W = x.shape
    M, Cg, KH, KW = w.shape
    xp = np.pad(x.astype(np.float64), [(0, 0), (0, 0), (pads[0], pads[2]), (pads[1], pads[3])])
    OH = (H + pads[0] + pads[2] - (KH - 1) * dilations[0] - 1) // strides[0] + 1
    OW = (W + pads[1] + pads[3] - (KW - 1) * dilations[1] - 1) // strides[1] + 1
    y = np.zeros((N, M, OH, OW))
    Mg = M // group
    for n, m, i, j in itertools.product(range(N), range(M), range(OH), range(OW)):
        g = m // Mg
        for c, ki, kj in itertools.product(range(Cg), range(KH), range(KW)):
            y[n, m, i, j] += w[m, c, ki, kj] * xp[n, g * Cg + c, i * strides[0] + ki * dilations[0],
                                                  j * strides[1] + kj * dilations[1]]
    if b is not None:
        y += b[None, :, None, None]
    return y


def test_conv_infer_symbolic_batch_and_spatial():
    got = infer_types("Conv", [t("float32", "n", 4, 32, "w"), t("float32", 8, 2, 3, 3)],
                      {"group": 2, "strides": [2, 2], "pads": [1, 1, 1, 1]})
    assert got.shape == ("n", 8, 16, None)
    got = infer_types("Conv", [t("float32", "n", 3, 17, 10), t("float32", 6, 3, 3, 2)],
                      {"auto_pad": "SAME_UPPER", "strides": [2, 3]})
    assert got.shape == ("n", 6, 9, 4)
    got = infer_types("Conv", [t("float32", 1, 3, 10), t("float32", 6, 3, 3)], {"auto_pad": "VALID", "dilations": [2]})
    assert got.shape == (1, 6, 6)


def test_conv_infer_rejects_channel_mismatch():
    with pytest.raises(InferError, match="channels"):
        infer_types("Conv", [t("float32", 1, 5, 8, 8), t("float32", 8, 2, 3, 3)], {"group": 2})


def test_conv_grouped_dilated_strided_asymmetric_pads():
    x = rng.standard_normal((2, 4, 9, 8)).astype(np.float32)
    w = rng.standard_normal((6, 2, 3, 2)).astype(np.float32)
    b = rng.standard_normal(6).astype(np.float32)
    attrs = {"group": 2, "strides": [2, 1], "pads": [1, 0, 2, 1], "dilations": [2, 3]}
    got = run("Conv", [x, w, b], attrs)
    want = naive_conv2d(x, w, b, attrs["strides"], attrs["pads"], attrs["dilations"], 2)
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def test_conv_depthwise_same_lower():
    x = rng.standard_normal((1, 3, 6, 7)).astype(np.float32)
    w = rng.standard_normal((3, 1, 2, 2)).astype(np.float32)
    got = run("Conv", [x, w], {"group": 3, "auto_pad": "SAME_LOWER"})
    # total padding 1 per axis; SAME_LOWER puts it at the beginning
    want = naive_conv2d(x, w, None, [1, 1], [1, 1, 0, 0], [1, 1], 3)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def test_conv_float16_computes_in_float32_and_keeps_dtype():
    x = rng.standard_normal((1, 8, 5, 5)).astype(np.float16)
    w = rng.standard_normal((4, 8, 3, 3)).astype(np.float16)
    got = run("Conv", [x, w])
    assert got.dtype == np.float16
    want = naive_conv2d(x.astype(np.float32), w.astype(np.float32), None, [1, 1], [0] * 4, [1, 1], 1)
    np.testing.assert_allclose(got.astype(np.float32), want, rtol=2e-3, atol=2e-2)


def test_conv_1d_and_3d_match_2d_embedding():
    x = rng.standard_normal((1, 2, 7)).astype(np.float32)
    w = rng.standard_normal((3, 2, 3)).astype(np.float32)
    got = run("Conv", [x, w], {"pads": [1, 2], "strides": [2]})
    want = naive_conv2d(x[:, :, None], w[:, :, None], None, [1, 2], [0, 1, 0, 2], [1, 1], 1)[:, :, 0]
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
    x3 = rng.standard_normal((1, 2, 1, 5, 4)).astype(np.float32)
    w3 = rng.standard_normal((3, 2, 1, 2, 2)).astype(np.float32)
    got3 = run("Conv", [x3, w3])
    want3 = naive_conv2d(x3[:, :, 0], w3[:, :, 0], None, [1, 1], [0] * 4, [1, 1], 1)[:, :, None]
    np.testing.assert_allclose(got3, want3, rtol=1e-5, atol=1e-5)


def test_conv_transpose_is_the_adjoint_of_conv():
    # <conv(x), y> == <x, conv_transpose(y)> for the same weights, strides, pads, dilations, groups
    attrs = {"group": 2, "strides": [2, 3], "pads": [1, 0, 0, 2], "dilations": [1, 2]}
    x = rng.standard_normal((2, 4, 9, 11))
    w = rng.standard_normal((6, 2, 3, 3))
    y = run("Conv", [x, w], attrs)
    g = rng.standard_normal(y.shape)
    out_pad = [(9 + 1 - 3) % 2, (11 + 2 - 5) % 3]  # restores the conv input size exactly
    # ConvTranspose's W is (C_in, C_out/group, ...): Conv's (M, C/group, ...) weights as they are
    xt = run("ConvTranspose", [g, w], {**attrs, "output_padding": out_pad})
    assert xt.shape == x.shape
    np.testing.assert_allclose(np.sum(y * g), np.sum(x * xt), rtol=1e-9)


def test_conv_transpose_output_shape_and_infer():
    x = rng.standard_normal((1, 2, 3, 3)).astype(np.float32)
    w = rng.standard_normal((2, 3, 3, 3)).astype(np.float32)
    full = run("ConvTranspose", [x, w], {"strides": [2, 2]})
    assert full.shape == (1, 3, 7, 7)
    got = run("ConvTranspose", [x, w], {"strides": [2, 2], "output_shape": [6, 5]})
    # total padding 1 and 2: NOTSET puts the odd extra at the beginning
    np.testing.assert_allclose(got, full[:, :, 1:7, 1:6], rtol=1e-6)
    same = run("ConvTranspose", [x, w], {"strides": [2, 2], "auto_pad": "SAME_UPPER"})
    np.testing.assert_allclose(same, full[:, :, 0:6, 0:6], rtol=1e-6)
    typ = infer_types("ConvTranspose", [t("float32", "b", 2, 3, "h"), t("float32", 2, 3, 3, 3)],
                      {"strides": [2, 2], "group": 1, "output_padding": [1, 1]})
    assert typ.shape == ("b", 3, 8, None)


def test_deform_conv_with_zero_offsets_is_conv():
    x = rng.standard_normal((2, 4, 6, 5)).astype(np.float32)
    w = rng.standard_normal((4, 2, 3, 3)).astype(np.float32)
    attrs = {"group": 2, "pads": [1, 1, 1, 1], "strides": [2, 1]}
    want = run("Conv", [x, w], attrs)
    offset = np.zeros((2, 2 * 9 * 2, *want.shape[2:]), np.float32)
    got = run("DeformConv", [x, w, offset], {**attrs, "offset_group": 2})
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
    # a whole-pixel offset along W equals sampling the shifted input (zero beyond the edge)
    attrs = {**attrs, "pads": [1, 0, 1, 0]}
    want = run("Conv", [np.concatenate([x[..., 1:], np.zeros_like(x[..., :1])], axis=-1), w], attrs)
    offset = np.zeros((2, 2 * 9 * 2, *want.shape[2:]), np.float32)
    offset[:, 1::2] = 1.0
    got = run("DeformConv", [x, w, offset], {**attrs, "offset_group": 2})
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def test_col2im_counts_overlaps():
    # folding all-ones columns counts how many blocks cover each pixel
    cols = np.ones((1, 1 * 2 * 2, 2 * 3), np.float32)
    got = run("Col2Im", [cols, np.array([3, 4]), np.array([2, 2])], opset=18, consts=(1, 2))
    np.testing.assert_array_equal(got[0, 0], [[1, 2, 2, 1], [2, 4, 4, 2], [1, 2, 2, 1]])
    typ = infer_types("Col2Im", [t("float32", "n", 8, 6), (t("int64", 2), [3, 4]), (t("int64", 2), [2, 2])], opset=18)
    assert typ.shape == ("n", 2, 3, 4)


def test_causal_conv_streaming_equals_one_shot():
    B, C, L, k = 2, 3, 7, 4
    x = rng.standard_normal((B, C, L)).astype(np.float32)
    w = rng.standard_normal((C, 1, k)).astype(np.float32)
    bias = rng.standard_normal(C).astype(np.float32)
    y, state = run("CausalConvWithState", [x, w, bias], {"activation": "silu"}, opset=27, outputs=2)
    y1, s1 = run("CausalConvWithState", [x[..., :5], w, bias], {"activation": "silu"}, opset=27, outputs=2)
    y2, s2 = run("CausalConvWithState", [x[..., 5:], w, bias, s1], {"activation": "silu"}, opset=27, outputs=2)
    np.testing.assert_allclose(np.concatenate([y1, y2], -1), y, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(s2, state)
    np.testing.assert_array_equal(state, x[..., -3:])
    # first output: only the newest tap sees data (zero history)
    pre = w[None, :, 0, -1] * x[..., 0] + bias
    np.testing.assert_allclose(y[..., 0], pre / (1 + np.exp(-pre)), rtol=1e-5)
    typ = infer_types("CausalConvWithState", [t("float16", "b", 3, "l"), t("float16", 3, 1, 4)], opset=27)
    assert [x.shape for x in typ] == [("b", 3, "l"), ("b", 3, 3)]


def test_conv_rejects_integer_and_mixed_dtypes():
    with pytest.raises(InferError, match="float"):
        infer_types("Conv", [t("int32", 1, 2, 4, 4), t("int32", 3, 2, 3, 3)])
    with pytest.raises(InferError, match="one dtype"):
        infer_types("ConvTranspose", [t("float32", 1, 2, 4, 4), t("float16", 2, 3, 3, 3)])
