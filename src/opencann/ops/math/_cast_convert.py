"""Element-type conversion with ONNX's rules: the engine of Cast, CastLike and the quantization ops.

    >>> import numpy as np
    >>> from opencann import dtypes
    >>> convert(np.array([1e6, -0.3], np.float32), dtypes.float8e4m3fn)   # saturates by default
    array([448, -0.3125], dtype='float8_e4m3fn')

NumPy and ml_dtypes do most conversions; this module adds what ONNX specifies beyond them:
saturation for the float8 types, float8e8m0 with its rounding modes, wrap-around (two's complement)
for integer conversions into the sub-byte integer types (floats truncate), single rounding from float64 into narrow floats,
and strings in and out.
"""

from __future__ import annotations

import ml_dtypes
import numpy as np

from ... import dtypes

__all__ = ["convert", "to_float8e8m0", "FLOAT8_TYPES", "SUBBYTE_INT_TYPES", "int_range"]

# the float8 types whose conversion honours `saturate` (OCP FP8 and the fnuz variants)
FLOAT8_TYPES = frozenset({dtypes.float8e4m3fn, dtypes.float8e4m3fnuz, dtypes.float8e5m2, dtypes.float8e5m2fnuz})
SUBBYTE_INT_TYPES = frozenset({dtypes.int4, dtypes.uint4, dtypes.int2, dtypes.uint2})
# ml_dtypes' narrow floats: NumPy cannot compute with them directly
_NARROW_FLOATS = frozenset({dtypes.bfloat16, dtypes.float4e2m1, dtypes.float8e8m0} | FLOAT8_TYPES)


def int_range(dt: dtypes.DType) -> tuple[int, int]:
    """The smallest and largest value of integer type `dt` (sub-byte types included)."""
    if dt.kind == "uint":
        return 0, (1 << dt.bits) - 1
    return -(1 << (dt.bits - 1)), (1 << (dt.bits - 1)) - 1


def _dtype_of(x: np.ndarray) -> dtypes.DType:
    return dtypes.from_numpy(x.dtype)


def _round_to_odd_f32(x: np.ndarray) -> np.ndarray:
    """float64 -> float32, truncating and setting the last bit when inexact ("round to odd").

    A later round-to-nearest-even into any format with at most 22 significand bits then gives the
    same result as rounding the float64 value directly, which ml_dtypes (going through float32
    with round-to-nearest) does not."""
    x = np.asarray(x, np.float64)
    with np.errstate(over="ignore", invalid="ignore"):
        f = x.astype(np.float32)
        too_far = np.abs(f.astype(np.float64)) > np.abs(x)  # rounded away from zero: step back
        f = np.where(too_far, np.nextafter(f, np.float32(0)), f)
        inexact = (f.astype(np.float64) != x) & np.isfinite(x)
    bits = f.view(np.uint32) | inexact.astype(np.uint32)
    return bits.view(np.float32)


def _as_float(x: np.ndarray) -> np.ndarray:
    """`x` as float32 or float64, whichever holds it exactly (float64 for wide ints/floats)."""
    src = _dtype_of(x)
    if src in (dtypes.float64, dtypes.int32, dtypes.uint32, dtypes.int64, dtypes.uint64):
        return x.astype(np.float64)
    if src in (dtypes.float32, dtypes.float16) or src.kind in ("float", "int", "uint", "bool"):
        return x.astype(np.float32)
    raise ValueError(f"cannot convert {src} to a number")


def _narrow_float_input(x: np.ndarray) -> np.ndarray:
    """The value to hand to ml_dtypes' rounding into a narrow float: float32 (exact, or rounded to
    odd from float64) so that the final rounding is the only one."""
    f = _as_float(x)
    return _round_to_odd_f32(f) if f.dtype == np.float64 else f


def to_float8e8m0(x: np.ndarray, saturate: bool = True, round_mode: str = "up") -> np.ndarray:
    """Convert to float8e8m0 (a power of two 2**(k-127), k in 0..254; 255 is NaN).

    `round_mode` is `up` (towards +inf), `down` (towards zero) or `nearest` (ties up). Out of
    range values clamp to the smallest/largest power when `saturate`, else become NaN; zero counts
    as below the smallest. The sign is ignored (negative inputs are unspecified by ONNX)."""
    if round_mode not in ("up", "down", "nearest"):
        raise ValueError(f"round_mode must be 'up', 'down' or 'nearest', got {round_mode!r}")
    f = np.abs(_as_float(x).astype(np.float64))
    mant, exp = np.frexp(f)  # f = mant * 2**exp, mant in [0.5, 1)
    if round_mode == "up":
        k = np.where(mant == 0.5, exp - 1, exp)
    elif round_mode == "down":
        k = exp - 1
    else:
        k = np.where(mant >= 0.75, exp, exp - 1)
    code = k.astype(np.int64) + 127
    low, high = (0, 254) if saturate else (255, 255)
    code = np.where(code > 254, high, code)
    if round_mode == "up":  # rounding up, tiny values land on the smallest power exactly
        code = np.where((code < 0) & (f > 0), 0, code)
    code = np.where((code < 0) | (f == 0), low, code)
    code = np.where(np.isinf(f), high, code)
    code = np.where(np.isnan(f), 255, code)
    return code.astype(np.uint8).view(ml_dtypes.float8_e8m0fnu)


def _to_string(x: np.ndarray) -> np.ndarray:
    src = _dtype_of(x)
    if src in _NARROW_FLOATS or src in SUBBYTE_INT_TYPES:
        # print the value with the shortest repr of the narrow type itself
        flat = [str(v) for v in x.ravel()]
        return np.array(flat, dtype=object).reshape(x.shape)
    return x.astype(np.str_).astype(object)


def _from_string(x: np.ndarray, to: dtypes.DType) -> np.ndarray:
    """Parse numbers: plain and scientific notation, INF/+INF/-INF/NaN in any case."""
    s = np.asarray(x, dtype=object)
    if to.is_int:
        # Python ints: exact for large integers (which float64 would round), then wrapped
        ints = [_parse_int(v) for v in s.ravel()]
        lo, hi = int_range(to)
        span = hi - lo + 1
        return np.array([(v - lo) % span + lo for v in ints], dtype=object).astype(to.np).reshape(s.shape)
    return convert(_parse_floats(s), to)


def _parse_int(v) -> int:
    try:
        return int(v)
    except (ValueError, TypeError):
        f = float(_check_number(v))
        return int(f) if np.isfinite(f) else 0  # "2.718" -> 2 (ONNX leaves this undefined)


def _check_number(v):
    if not _parses(v):
        raise ValueError(f"cannot parse string {v!r} as a number")
    return v


def _parse_floats(s: np.ndarray) -> np.ndarray:
    try:
        return s.astype(np.float64)
    except (ValueError, TypeError):
        bad = next(v for v in s.ravel() if not _parses(v))
        raise ValueError(f"cannot parse string {bad!r} as a number") from None


def _parses(v) -> bool:
    try:
        float(v)
        return True
    except (ValueError, TypeError):
        return False


def _wrap_int(x: np.ndarray, to: dtypes.DType) -> np.ndarray:
    """Integer -> integer keeping the low bits (two's complement), as ONNX specifies for ints."""
    if to.bits >= 8:
        return x.astype(to.np)
    v = x.astype(np.int64) & ((1 << to.bits) - 1)
    if to.kind == "int":
        sign = 1 << (to.bits - 1)
        v = (v ^ sign) - sign
    return v.astype(to.np)


def convert(x, to: dtypes.DType, saturate: bool = True, round_mode: str = "up") -> np.ndarray:
    """`x` converted to element type `to` by the rules of ONNX Cast (see the module doc).

    `saturate` applies to the float8 types (out of range values clamp to the largest finite
    value instead of becoming inf/NaN); `round_mode` to float8e8m0."""
    x = np.asarray(x)
    if not isinstance(to, dtypes.DType):
        to = dtypes.from_numpy(to)
    src = _dtype_of(x)
    if src == to:
        return x
    if to == dtypes.string:
        return _to_string(x)
    if src == dtypes.string:
        return _from_string(x, to)
    with np.errstate(over="ignore", invalid="ignore", under="ignore"):
        if src.kind == "complex" and to.kind != "complex":
            x = x.real  # ONNX leaves complex -> real open; keep the real part as NumPy does
            src = _dtype_of(x)
            if src == to:
                return x.copy()
        if to == dtypes.bool_:
            return (x != 0) if src not in _NARROW_FLOATS and src not in SUBBYTE_INT_TYPES \
                else (_as_float(x) != 0)
        if to == dtypes.float8e8m0:
            return to_float8e8m0(x, bool(saturate), round_mode)
        if to in FLOAT8_TYPES:
            f = _narrow_float_input(x)
            if saturate:
                top = float(ml_dtypes.finfo(to.np).max)
                f = np.clip(f, f.dtype.type(-top), f.dtype.type(top))  # NaN stays NaN
            return f.astype(to.np)
        if to in _NARROW_FLOATS:  # bfloat16, float4e2m1 (which always saturates)
            return _narrow_float_input(x).astype(to.np)
        if to.is_int and (src.is_int or src == dtypes.bool_):
            return _wrap_int(x, to)
        if to in SUBBYTE_INT_TYPES:
            # from a float: truncate toward zero. ONNX leaves values outside the target's range
            # undefined, and its conformance data takes them from ml_dtypes (whose answer changed
            # between releases: the low bits before 0.7, zero since), so out-of-range values follow
            # the installed ml_dtypes, the library that stores these types.
            f = _as_float(x)
            t = np.trunc(f)
            lo, hi = int_range(to)
            inside = (t >= lo) & (t <= hi)
            if np.all(inside):
                return t.astype(np.int64).astype(to.np)
            return np.where(inside, t, f).astype(to.np)
        if src in _NARROW_FLOATS or src in SUBBYTE_INT_TYPES:
            # exact widening first: ml_dtypes does not convert every pair directly
            if to.is_float or to.kind == "complex":
                return _as_float(x).astype(to.np)
            return convert(_as_float(x), to)
        return x.astype(to.np)
