"""Element-type conversion: Cast, CastLike (value conversion) and BitCast (reinterpreting bits).

The conversion rules (float8 saturation, float8e8m0 rounding, sub-byte integers, strings) live in
`_cast_convert.convert`, shared with the quantization ops.
"""

from __future__ import annotations

import numpy as np

from ... import dtypes
from .. import infer
from ..infer import InferError
from ..registry import REQUIRED, defop
from ._cast_convert import convert

# Cast-1 named its target type with a TensorProto.DataType name instead of the enum value
_ONNX_NAMES = {
    "FLOAT": dtypes.float32, "UINT8": dtypes.uint8, "INT8": dtypes.int8, "UINT16": dtypes.uint16,
    "INT16": dtypes.int16, "INT32": dtypes.int32, "INT64": dtypes.int64, "STRING": dtypes.string,
    "BOOL": dtypes.bool_, "FLOAT16": dtypes.float16, "DOUBLE": dtypes.float64, "UINT32": dtypes.uint32,
    "UINT64": dtypes.uint64, "COMPLEX64": dtypes.complex64, "COMPLEX128": dtypes.complex128,
    "BFLOAT16": dtypes.bfloat16,
}
_ROUND_MODES = ("up", "down", "nearest")


def target_dtype(to, error=InferError) -> dtypes.DType:
    """The dtype named by a `to`/`output_dtype` attribute (an ONNX enum value, or a name)."""
    try:
        if isinstance(to, str):
            return _ONNX_NAMES.get(to.upper()) or dtypes.by_name(to.lower())
        return dtypes.from_onnx(int(to))
    except ValueError as e:
        raise error(f"unsupported target type {to!r}: {e}") from None


def _check_round_mode(round_mode: str, error=InferError) -> None:
    if round_mode not in _ROUND_MODES:
        raise error(f"round_mode must be one of {', '.join(_ROUND_MODES)}, got {round_mode!r}")


def _infer_cast(x, *, to, saturate=1, round_mode="up"):
    _check_round_mode(round_mode)
    return infer.tensor(target_dtype(to), x.shape)


def _cast(x, to, saturate=1, round_mode="up"):
    _check_round_mode(round_mode, ValueError)
    return convert(x, target_dtype(to, ValueError), saturate=bool(saturate), round_mode=round_mode)


@defop("Cast", inputs=["input"], outputs=["output"], attrs={"to": REQUIRED}, infer=_infer_cast)
def cast_1(x, *, to):
    """Convert each element to type `to` (see `_cast_convert.convert` for the rules)."""
    return _cast(x, to)


@defop("Cast", inputs=["input"], outputs=["output"], attrs={"saturate": 1, "to": REQUIRED},
       infer=_infer_cast, since=19)
def cast_19(x, *, to, saturate):
    """Convert each element to type `to`; `saturate` clamps float8 overflow to the largest value."""
    return _cast(x, to, saturate)


@defop("Cast", inputs=["input"], outputs=["output"],
       attrs={"round_mode": "up", "saturate": 1, "to": REQUIRED}, infer=_infer_cast, since=24)
def cast_24(x, *, to, saturate, round_mode):
    """Convert each element to type `to`; `round_mode` applies to float8e8m0."""
    return _cast(x, to, saturate, round_mode)


def _infer_cast_like(x, target, *, saturate=1, round_mode="up"):
    _check_round_mode(round_mode)
    if target.dtype is None:
        return None  # the target's type is not known yet (e.g. an untyped subgraph input)
    return infer.tensor(target.dtype, x.shape)


@defop("CastLike", inputs=["input", "target_type"], outputs=["output"], infer=_infer_cast_like, since=15)
def cast_like_15(x, target):
    """Convert `x` to the element type of `target_type` (whose values are ignored)."""
    return convert(x, dtypes.from_numpy(target.dtype))


@defop("CastLike", inputs=["input", "target_type"], outputs=["output"], attrs={"saturate": 1},
       infer=_infer_cast_like, since=19)
def cast_like_19(x, target, *, saturate):
    """Convert `x` to the element type of `target_type`; `saturate` as in Cast."""
    return convert(x, dtypes.from_numpy(target.dtype), saturate=bool(saturate))


@defop("CastLike", inputs=["input", "target_type"], outputs=["output"],
       attrs={"round_mode": "up", "saturate": 1}, infer=_infer_cast_like, since=24)
def cast_like_24(x, target, *, saturate, round_mode):
    """Convert `x` to the element type of `target_type`; `saturate`, `round_mode` as in Cast."""
    _check_round_mode(round_mode, ValueError)
    return convert(x, dtypes.from_numpy(target.dtype), saturate=bool(saturate), round_mode=round_mode)


# --- BitCast -------------------------------------------------------------------------------------
def _bitcast_types(src: dtypes.DType, to, error) -> dtypes.DType:
    dst = target_dtype(to, error)
    if dtypes.string in (src, dst):
        raise error("BitCast does not take string tensors")
    if src.bits != dst.bits:
        raise error(f"BitCast needs types of the same bit width: {src} has {src.bits} bits, "
                    f"{dst} has {dst.bits}")
    return dst


def _infer_bitcast(x, *, to):
    if x.dtype is None:  # unknown input type: the width check waits for run time
        return infer.tensor(target_dtype(to), x.shape)
    return infer.tensor(_bitcast_types(x.dtype, to, InferError), x.shape)


@defop("BitCast", inputs=["input"], outputs=["output"], attrs={"to": REQUIRED}, infer=_infer_bitcast,
       since=26)
def bitcast(x, *, to):
    """Reinterpret the bits of each element (little endian) as type `to` of the same width.

    >>> bitcast(np.array([1.0], np.float32), to=6)   # int32
    array([1065353216], dtype=int32)
    """
    x = np.asarray(x)
    src = dtypes.from_numpy(x.dtype)
    dst = _bitcast_types(src, to, ValueError)
    if not x.flags.c_contiguous:
        x = x.copy()  # (np.ascontiguousarray would turn a scalar into shape [1])
    if src.bits < 8:
        # sub-byte values each sit in the low bits of one byte: move the bit pattern only
        bits = x.view(np.uint8) & np.uint8((1 << src.bits) - 1)
        if dst.kind == "int":
            sign = 1 << (dst.bits - 1)
            return ((bits.astype(np.int8) ^ sign) - sign).astype(dst.np)
        return bits.astype(dst.np) if dst.kind == "uint" else bits.view(dst.np)
    if dst == dtypes.bool_:
        return x.view(np.uint8) != 0  # NumPy bools must be 0 or 1
    return x.view(dst.np)
