"""Quantization ops: inference with symbolic dims, and values the conformance suite does not reach
(rounding ties, blocks that do not divide the axis, precision, conv geometry, per-channel params)."""

import itertools

import ml_dtypes
import numpy as np
import pytest

from opencann import dtypes
from opencann.ops.infer import InferError


# --- inference -----------------------------------------------------------------------------------
def test_quantize_output_type_comes_from_attr_zero_point_or_default(infer_op, tt):
    x, s = tt("float32", "n", 4), tt("float32")
    assert infer_op("QuantizeLinear", [x, s]).dtype == dtypes.uint8
    assert infer_op("QuantizeLinear", [x, s, tt("int4")]).dtype == dtypes.int4
    out = infer_op("QuantizeLinear", [x, s], {"output_dtype": 5})
    assert out.dtype == dtypes.int16 and out.shape == ("n", 4)
    with pytest.raises(InferError, match="differs from the zero point"):
        infer_op("QuantizeLinear", [x, s, tt("int8")], {"output_dtype": 2})


def test_blocked_scale_shape_is_checked(infer_op, tt):
    x = tt("float32", "n", 5)
    ok = infer_op("QuantizeLinear", [x, tt("float32", "n", 2)], {"axis": 1, "block_size": 3})
    assert ok.shape == ("n", 5)
    with pytest.raises(InferError, match="needs 3"):
        infer_op("QuantizeLinear", [x, tt("float32", "n", 2)], {"axis": 1, "block_size": 2})
    with pytest.raises(InferError, match="entries"):
        infer_op("DequantizeLinear", [tt("uint8", 2, 5), tt("float32", 4)], {"axis": 1})


def test_dequantize_types(infer_op, tt):
    assert infer_op("DequantizeLinear", [tt("int8", "n"), tt("bfloat16")]).dtype == dtypes.bfloat16
    out = infer_op("DequantizeLinear", [tt("float8e4m3fn", "n"), tt("float32")], {"output_dtype": 10}, opset=23)
    assert out.dtype == dtypes.float16 and out.shape == ("n",)
    with pytest.raises(InferError, match="must match"):
        infer_op("DequantizeLinear", [tt("int8", 3), tt("float32"), tt("uint8")])


def test_dynamic_quantize_types(infer_op, tt):
    y, s, z = infer_op("DynamicQuantizeLinear", [tt("float32", "b", 7)])
    assert (y.dtype, y.shape, s.dtype, s.shape, z.dtype, z.shape) == \
        (dtypes.uint8, ("b", 7), dtypes.float32, (), dtypes.uint8, ())


def test_matmul_shapes_with_symbols(infer_op, tt):
    out = infer_op("MatMulInteger", [tt("uint8", "b", "m", 4), tt("int8", 4, 3)])
    assert out.dtype == dtypes.int32 and out.shape == ("b", "m", 3)
    q = infer_op("QLinearMatMul", [tt("int8", 4), tt("float32"), tt("int8"), tt("int8", 2, 4, 3),
                                   tt("float32"), tt("int8"), tt("float32"), tt("uint8")])
    assert q.dtype == dtypes.uint8 and q.shape == (2, 3)
    with pytest.raises(InferError, match="inner dims"):
        infer_op("MatMulInteger", [tt("uint8", 2, 4), tt("uint8", 5, 3)])


def test_conv_shapes(infer_op, tt):
    x, w = tt("uint8", "n", 4, 10, 9), tt("int8", 6, 2, 3, 3)
    out = infer_op("ConvInteger", [x, w], {"group": 2, "strides": [2, 2], "pads": [1, 1, 1, 1]})
    assert out.dtype == dtypes.int32 and out.shape == ("n", 6, 5, 5)
    same = infer_op("ConvInteger", [x, w], {"group": 2, "strides": [3, 2], "auto_pad": "SAME_LOWER"})
    assert same.shape == ("n", 6, 4, 5)
    sym = infer_op("ConvInteger", [tt("uint8", 1, 4, "h", 9), w], {"group": 2})
    assert sym.shape == (1, 6, None, 7)
    with pytest.raises(InferError, match="channels"):
        infer_op("ConvInteger", [x, w], {"group": 1})


# --- values --------------------------------------------------------------------------------------
def test_quantize_rounds_half_to_even_and_saturates(run_op):
    x = np.array([0.5, 1.5, 2.5, -0.5, -1.5, 1e9, -1e9], np.float32)
    got = run_op("QuantizeLinear", [x, np.float32(1), np.int16(0)])
    assert got.dtype == np.int16
    np.testing.assert_array_equal(got, [0, 2, 2, 0, -2, 32767, -32768])


def test_quantize_blocks_that_do_not_divide_the_axis(run_op):
    x = np.arange(10, dtype=np.float32).reshape(2, 5)
    scale = np.array([[1, 2], [3, 4]], np.float32)
    got = run_op("QuantizeLinear", [x, scale, np.zeros((2, 2), np.uint8)], {"axis": 1, "block_size": 3})
    # row 1 is [5..9]: scale 3 for the first three, 4 for the last two
    np.testing.assert_array_equal(got, [[0, 1, 2, 2, 2], [2, 2, 2, 2, 2]])
    back = run_op("DequantizeLinear", [got, scale, np.zeros((2, 2), np.uint8)], {"axis": 1, "block_size": 3})
    np.testing.assert_array_equal(back, [[0, 1, 2, 4, 4], [6, 6, 6, 8, 8]])


def test_quantize_precision_attribute(run_op):
    x = np.array([1000.7], np.float32)
    # in float16, 1000.7 is 1000.5 and 1000.5 / 1 rounds (half to even) to 1000; float32 gives 1001
    assert run_op("QuantizeLinear", [x, np.float32(1)], {"output_dtype": 5}, opset=23)[0] == 1001
    assert run_op("QuantizeLinear", [x, np.float32(1)], {"output_dtype": 5, "precision": 10}, opset=23)[0] == 1000


def test_quantize_to_float8_honours_saturate(run_op):
    x = np.array([1e6, 3.0], np.float32)
    zp = np.zeros((), ml_dtypes.float8_e4m3fn)
    sat = run_op("QuantizeLinear", [x, np.float32(2), zp], opset=19)
    np.testing.assert_array_equal(sat.astype(np.float32), [448, 1.5])
    raw = run_op("QuantizeLinear", [x, np.float32(2), zp], {"saturate": 0}, opset=19)
    assert np.isnan(raw.astype(np.float32)[0])


def test_dequantize_per_axis_negative_axis(run_op):
    x = np.array([[10, 20, 30], [40, 50, 60]], np.uint8)
    got = run_op("DequantizeLinear", [x, np.array([0.5, 1, 2], np.float32), np.array([10, 0, 30], np.uint8)],
                 {"axis": -1})
    np.testing.assert_array_equal(got, [[0, 20, 0], [15, 50, 60]])


def test_dynamic_quantize_all_zero_input(run_op):
    y, s, z = run_op("DynamicQuantizeLinear", [np.zeros((2, 2), np.float32)], outputs=3, opset=11)
    np.testing.assert_array_equal(y, 0)
    assert s == 0 and z == 0 and s.dtype == np.float32 and z.dtype == np.uint8


def test_matmul_integer_per_row_and_column_zero_points(run_op):
    a = np.array([[1, 2, 3], [4, 5, 6]], np.uint8)
    b = np.array([[1, 0], [0, 1], [1, 1]], np.int8)
    azp, bzp = np.array([1, 4], np.uint8), np.array([1, 0], np.int8)
    got = run_op("MatMulInteger", [a, b, azp, bzp])
    expect = (a.astype(np.int32) - azp[:, None]) @ (b.astype(np.int32) - bzp)
    assert got.dtype == np.int32
    np.testing.assert_array_equal(got, expect)


def _naive_conv(x, w, group, strides, dilations, pads_begin, pads_end):
    n, _ = x.shape[:2]
    m, cg = w.shape[:2]
    k = w.shape[2:]
    xp = np.pad(x, [(0, 0), (0, 0)] + list(zip(pads_begin, pads_end)))
    out = [(xp.shape[2 + i] - ((k[i] - 1) * dilations[i] + 1)) // strides[i] + 1 for i in range(len(k))]
    y = np.zeros([n, m] + out)
    for b, oc in itertools.product(range(n), range(m)):
        g = oc // (m // group)
        for o in itertools.product(*map(range, out)):
            for c, kk in itertools.product(range(cg), itertools.product(*map(range, k))):
                idx = tuple(o[i] * strides[i] + kk[i] * dilations[i] for i in range(len(k)))
                y[(b, oc) + o] += xp[(b, g * cg + c) + idx] * w[(oc, c) + kk]
    return y


def test_conv_integer_groups_strides_dilations_padding(run_op):
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (2, 4, 7, 6)).astype(np.uint8)
    w = rng.integers(-128, 128, (6, 2, 3, 2)).astype(np.int8)
    xzp, wzp = np.uint8(128), np.array([0, 1, -1, 2, -2, 3], np.int8)
    attrs = {"group": 2, "strides": [2, 1], "dilations": [1, 2], "pads": [1, 0, 2, 1]}
    got = run_op("ConvInteger", [x, w, xzp, wzp], attrs)
    expect = _naive_conv(x.astype(np.float64) - 128, w.astype(np.float64) - wzp.reshape(6, 1, 1, 1),
                         2, [2, 1], [1, 2], [1, 0], [2, 1])
    assert got.dtype == np.int32
    np.testing.assert_array_equal(got, expect)


def test_conv_integer_same_upper_1d(run_op):
    x = np.array([[[1, 2, 3, 4, 5]]], np.uint8)
    w = np.array([[[1, 1, 1, 1]]], np.uint8)
    got = run_op("ConvInteger", [x, w], {"auto_pad": "SAME_UPPER", "strides": [2]})
    # total pad 3 for output 3: one before, two after
    np.testing.assert_array_equal(got, [[[6, 14, 9]]])


def test_qlinear_conv_per_channel_scales_and_bias(run_op):
    x = np.array([[[[10, 20], [30, 40]]]], np.uint8)
    w = np.array([[[[1]]], [[[-2]]]], np.int8)
    w_scale = np.array([0.5, 0.25], np.float32)
    bias = np.array([4, -8], np.int32)
    got = run_op("QLinearConv", [x, np.float32(0.1), np.uint8(10), w, w_scale, np.zeros(2, np.int8),
                                 np.float32(0.2), np.uint8(100), bias])
    acc = np.stack([(x[0, 0].astype(np.float64) - 10) * 1 + 4, (x[0, 0].astype(np.float64) - 10) * -2 - 8])
    expect = np.clip(np.rint(acc * (0.1 * w_scale.astype(np.float64)[:, None, None]) / 0.2) + 100, 0, 255)
    assert got.dtype == np.uint8
    np.testing.assert_array_equal(got[0], expect)


def test_qlinear_matmul_float8(run_op):
    a = np.array([[1, 2], [0.5, -1]], ml_dtypes.float8_e4m3fn)
    b = np.array([[1, 0], [0, 2]], ml_dtypes.float8_e4m3fn)
    z = np.zeros((), ml_dtypes.float8_e4m3fn)
    got = run_op("QLinearMatMul", [a, np.float32(1), z, b, np.float32(1), z, np.float32(0.5), z])
    assert got.dtype == ml_dtypes.float8_e4m3fn
    np.testing.assert_array_equal(got.astype(np.float32), [[2, 8], [1, -4]])


def test_untyped_zero_point_leaves_the_output_type_open(tt):
    from opencann import ops
    from opencann.ir import Value
    q = ops.lookup("QuantizeLinear", "", 21)
    attrs = {"axis": 1, "block_size": 0, "output_dtype": 0, "saturate": 1}
    x, s = Value("x", tt("float32", 3)), Value("s", tt("float32"))
    assert q.infer(x, s, Value("z", None), **attrs) is None
    assert q.infer(x, s, Value("z", None), **{**attrs, "output_dtype": 3}).dtype == dtypes.int8
