"""Element types shared by every layer: the IR, the operator library, the tile language, backends.

Each `DType` knows its name, its ONNX enum value and the NumPy dtype that stores it. Narrow floats
and sub-byte integers (bfloat16, float8, int4, ...) are stored with the `ml_dtypes` NumPy types,
which onnx already depends on.

    >>> from opencann.dtypes import float32, DType
    >>> float32.np, float32.itemsize, DType.from_numpy("int64").name
    (dtype('float32'), 4, 'int64')
"""

from __future__ import annotations

from dataclasses import dataclass

import ml_dtypes
import numpy as np

__all__ = ["DType", "ALL", "by_name", "from_onnx", "from_numpy"]


@dataclass(frozen=True)
class DType:
    """One element type. Compare with `==` or by identity; instances are module-level singletons."""

    name: str
    onnx: int  # TensorProto.DataType value
    np: np.dtype
    bits: int
    kind: str  # "float", "int", "uint", "bool", "string", "complex"

    @property
    def itemsize(self) -> int:
        return self.np.itemsize

    @property
    def is_float(self) -> bool:
        return self.kind == "float"

    @property
    def is_int(self) -> bool:
        return self.kind in ("int", "uint")

    def __repr__(self) -> str:
        return self.name

    __str__ = __repr__

    @staticmethod
    def from_numpy(dt) -> DType:
        return from_numpy(dt)


def _d(name, onnx_id, np_type, bits, kind) -> DType:
    return DType(name, onnx_id, np.dtype(np_type), bits, kind)


float32 = _d("float32", 1, np.float32, 32, "float")
uint8 = _d("uint8", 2, np.uint8, 8, "uint")
int8 = _d("int8", 3, np.int8, 8, "int")
uint16 = _d("uint16", 4, np.uint16, 16, "uint")
int16 = _d("int16", 5, np.int16, 16, "int")
int32 = _d("int32", 6, np.int32, 32, "int")
int64 = _d("int64", 7, np.int64, 64, "int")
string = _d("string", 8, object, 0, "string")
bool_ = _d("bool", 9, np.bool_, 8, "bool")
float16 = _d("float16", 10, np.float16, 16, "float")
float64 = _d("float64", 11, np.float64, 64, "float")
uint32 = _d("uint32", 12, np.uint32, 32, "uint")
uint64 = _d("uint64", 13, np.uint64, 64, "uint")
complex64 = _d("complex64", 14, np.complex64, 64, "complex")
complex128 = _d("complex128", 15, np.complex128, 128, "complex")
bfloat16 = _d("bfloat16", 16, ml_dtypes.bfloat16, 16, "float")
float8e4m3fn = _d("float8e4m3fn", 17, ml_dtypes.float8_e4m3fn, 8, "float")
float8e4m3fnuz = _d("float8e4m3fnuz", 18, ml_dtypes.float8_e4m3fnuz, 8, "float")
float8e5m2 = _d("float8e5m2", 19, ml_dtypes.float8_e5m2, 8, "float")
float8e5m2fnuz = _d("float8e5m2fnuz", 20, ml_dtypes.float8_e5m2fnuz, 8, "float")
uint4 = _d("uint4", 21, ml_dtypes.uint4, 4, "uint")
int4 = _d("int4", 22, ml_dtypes.int4, 4, "int")
float4e2m1 = _d("float4e2m1", 23, ml_dtypes.float4_e2m1fn, 4, "float")
float8e8m0 = _d("float8e8m0", 24, ml_dtypes.float8_e8m0fnu, 8, "float")
uint2 = _d("uint2", 25, ml_dtypes.uint2, 2, "uint")
int2 = _d("int2", 26, ml_dtypes.int2, 2, "int")

ALL: tuple[DType, ...] = (
    float32, uint8, int8, uint16, int16, int32, int64, string, bool_, float16, float64, uint32,
    uint64, complex64, complex128, bfloat16, float8e4m3fn, float8e4m3fnuz, float8e5m2,
    float8e5m2fnuz, uint4, int4, float4e2m1, float8e8m0, uint2, int2,
)
_BY_NAME = {d.name: d for d in ALL}
_BY_NAME.update({"bool_": bool_, "f32": float32, "f16": float16, "f64": float64, "bf16": bfloat16,
                 "i8": int8, "i16": int16, "i32": int32, "i64": int64, "u8": uint8})
_BY_ONNX = {d.onnx: d for d in ALL}
_BY_NP = {d.np: d for d in ALL}
_BY_NP[np.dtype(np.str_)] = string


def by_name(name: str) -> DType:
    """Look a dtype up by its name (`float32`) or short name (`f32`)."""
    try:
        return _BY_NAME[name]
    except KeyError:
        raise ValueError(f"unknown dtype {name!r}; known: {', '.join(d.name for d in ALL)}") from None


def from_onnx(elem_type: int) -> DType:
    """The dtype of an ONNX `TensorProto.DataType` value."""
    try:
        return _BY_ONNX[elem_type]
    except KeyError:
        raise ValueError(f"ONNX element type {elem_type} is not supported by opencann") from None


def from_numpy(dt) -> DType:
    """The dtype that stores NumPy dtype `dt` (strings and objects map to `string`)."""
    dt = np.dtype(dt)
    if dt.kind in "US":
        return string
    try:
        return _BY_NP[dt]
    except KeyError:
        raise ValueError(f"NumPy dtype {dt} has no opencann dtype") from None
