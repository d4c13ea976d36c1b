"""Cast, CastLike, BitCast: inference with symbolic dims, and the conversion rules the conformance
suite does not reach (float64 rounding, e8m0 modes, strings, sub-byte wrap-around, bit patterns)."""

import ml_dtypes
import numpy as np
import pytest

from opencann import dtypes
from opencann.ops.infer import InferError
from opencann.ops.math._cast_convert import convert, to_float8e8m0

FLOAT8E4M3FN, FLOAT8E5M2, FLOAT8E8M0, INT4, UINT4, FLOAT4E2M1 = 17, 19, 24, 22, 21, 23


def test_cast_infers_target_type_and_keeps_symbolic_dims(infer_op, tt):
    out = infer_op("Cast", [tt("float32", "batch", 3)], {"to": FLOAT8E4M3FN}, opset=21)
    assert out.dtype == dtypes.float8e4m3fn and out.shape == ("batch", 3)
    like = infer_op("CastLike", [tt("float16", "n", None), tt("int4", 7)], opset=21)
    assert like.dtype == dtypes.int4 and like.shape == ("n", None)


def test_cast_rejects_bad_round_mode_and_target(infer_op, tt):
    with pytest.raises(InferError, match="round_mode"):
        infer_op("Cast", [tt("float32", 2)], {"to": FLOAT8E8M0, "round_mode": "sideways"}, opset=24)
    with pytest.raises(InferError, match="unsupported target type"):
        infer_op("Cast", [tt("float32", 2)], {"to": 999}, opset=21)


def test_cast1_takes_a_type_name(run_op):
    got = run_op("Cast", [np.array([1.7, -2.2], np.float32)], {"to": "INT32"}, opset=1)
    assert got.dtype == np.int32
    np.testing.assert_array_equal(got, [1, -2])


def test_float8_saturation_tables(run_op):
    x = np.array([1e6, -1e6, np.inf, -np.inf, np.nan, 470.0], np.float32)
    sat = run_op("Cast", [x], {"to": FLOAT8E4M3FN}, opset=19).astype(np.float32)
    np.testing.assert_array_equal(sat, [448, -448, 448, -448, np.nan, 448])
    raw = run_op("Cast", [x], {"to": FLOAT8E4M3FN, "saturate": 0}, opset=19).astype(np.float32)
    assert np.isnan(raw).all()  # e4m3fn has no infinity: overflow (470 rounds to 480) is NaN
    e5 = run_op("Cast", [x], {"to": FLOAT8E5M2, "saturate": 0}, opset=19).astype(np.float32)
    np.testing.assert_array_equal(e5, [np.inf, -np.inf, np.inf, -np.inf, np.nan, 448])


def test_float64_rounds_once_into_narrow_floats():
    # 1.0625 is halfway between e4m3 neighbours 1.0 and 1.125; a tiny excess must round up,
    # which a float32 intermediate with round-to-nearest would lose
    x = np.array([1.0625 + 2.0 ** -40, 1.0625, -(1.0625 + 2.0 ** -40)])
    np.testing.assert_array_equal(convert(x, dtypes.float8e4m3fn).astype(np.float32), [1.125, 1.0, -1.125])
    y = convert(np.array([1 + 2.0 ** -8 + 2.0 ** -40]), dtypes.bfloat16)
    assert float(y[0]) == 1 + 2.0 ** -7


@pytest.mark.parametrize("mode, saturate, codes", [
    #           0   2^-130  0.75  1.0  1.5  1.49  3e38  inf  nan
    ("up", True, [0, 0, 127, 127, 128, 128, 254, 254, 255]),
    ("down", True, [0, 0, 126, 127, 127, 127, 254, 254, 255]),
    ("nearest", True, [0, 0, 127, 127, 128, 127, 254, 254, 255]),
    ("nearest", False, [255, 255, 127, 127, 128, 127, 255, 255, 255]),
])
def test_float8e8m0_rounding_modes(mode, saturate, codes):
    x = np.array([0, 2.0 ** -130, 0.75, 1.0, 1.5, 1.49, 3e38, np.inf, np.nan], np.float32)
    got = to_float8e8m0(x, saturate, mode)
    assert got.dtype == ml_dtypes.float8_e8m0fnu
    np.testing.assert_array_equal(got.view(np.uint8), codes)


def test_cast_to_e8m0_through_the_op(run_op):
    x = np.array([0.3, 5.0], np.float32)
    down = run_op("Cast", [x], {"to": FLOAT8E8M0, "round_mode": "down"}, opset=24)
    np.testing.assert_array_equal(down.astype(np.float32), [0.25, 4.0])


def test_strings_parse_and_print(run_op):
    s = np.array(["1.5", "-INF", "+inf", "NaN", "1E8", "-2.5e-3"], dtype=object)
    f = run_op("Cast", [s], {"to": 1}, opset=13)
    assert f.dtype == np.float32
    np.testing.assert_array_equal(f, np.array([1.5, -np.inf, np.inf, np.nan, 1e8, -2.5e-3], np.float32))
    big = run_op("Cast", [np.array(["9223372036854775807", "100.5"], dtype=object)], {"to": 7}, opset=13)
    np.testing.assert_array_equal(big, [9223372036854775807, 100])
    out = run_op("Cast", [np.array([0.47892547, 3.0], np.float32)], {"to": 8}, opset=13)
    assert out.dtype == object and list(out) == ["0.47892547", "3.0"]


def test_sub_byte_integers_wrap(run_op):
    got = run_op("Cast", [np.array([7.9, -8.5, 2.7, -2.7], np.float32)], {"to": INT4}, opset=21)
    assert got.dtype == ml_dtypes.int4
    np.testing.assert_array_equal(got.astype(np.int8), [7, -8, 2, -2])  # floats truncate
    # out of range is undefined in ONNX; the conformance data takes it from ml_dtypes, and so do we
    far = np.array([-9, 15, np.nan], np.float32)
    got = run_op("Cast", [far], {"to": INT4}, opset=21)
    np.testing.assert_array_equal(got.astype(np.int8), far.astype(ml_dtypes.int4).astype(np.int8))
    # integers keep their low bits
    np.testing.assert_array_equal(convert(np.array([-9, 15], np.int32), dtypes.int4).astype(np.int8), [7, -1])
    np.testing.assert_array_equal(convert(np.array([7, -8, 5], ml_dtypes.int4), dtypes.uint2).astype(np.uint8), [3, 0, 1])
    np.testing.assert_array_equal(convert(np.array([300, -129], np.int32), dtypes.int8), [44, 127])


def test_float4_saturates_and_bool_casts(run_op):
    got = run_op("Cast", [np.array([1e6, -np.inf, 2.6, 0.2], np.float32)], {"to": FLOAT4E2M1}, opset=23)
    np.testing.assert_array_equal(got.astype(np.float32), [6, -6, 3, 0])
    b = run_op("Cast", [np.array([0.5, 0.0, np.nan], ml_dtypes.float8_e4m3fn)], {"to": 9}, opset=21)
    np.testing.assert_array_equal(b, [True, False, True])


def test_castlike_uses_target_dtype_only(run_op):
    got = run_op("CastLike", [np.array([1e6, 0.3], np.float32), np.zeros(3, ml_dtypes.float8_e5m2)],
                 {"saturate": 0}, opset=19)
    assert got.dtype == ml_dtypes.float8_e5m2
    np.testing.assert_array_equal(got.astype(np.float32), [np.inf, 0.3125])


def test_bitcast_reinterprets_bits(run_op, infer_op, tt):
    got = run_op("BitCast", [np.array([1.0, -2.0], np.float32)], {"to": 6}, opset=26)
    np.testing.assert_array_equal(got, [1065353216, -1073741824])
    nib = run_op("BitCast", [np.array([-1, 7, -8], ml_dtypes.int4)], {"to": UINT4}, opset=26)
    np.testing.assert_array_equal(nib.astype(np.uint8), [15, 7, 8])
    f4 = run_op("BitCast", [np.array([15, 2], ml_dtypes.uint4)], {"to": FLOAT4E2M1}, opset=26)
    np.testing.assert_array_equal(f4.astype(np.float32), [-6.0, 1.0])
    assert infer_op("BitCast", [tt("float16", "n")], {"to": 5}, opset=26).shape == ("n",)
    with pytest.raises(InferError, match="same bit width"):
        infer_op("BitCast", [tt("float32", 2)], {"to": 7}, opset=26)


def test_castlike_with_an_untyped_target_leaves_the_type_open(tt):
    # a Scan body input may carry no type until run time: guessing one (NumPy's float64) would
    # make the interpreter reject the real output
    from opencann import ops
    from opencann.ir import Value
    d = ops.lookup("CastLike", "", 21)
    assert d.infer(Value("x", tt("float32", 2)), Value("t", None), saturate=1) is None
