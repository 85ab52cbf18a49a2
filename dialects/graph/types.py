"""Element types of the graph dialect and their ONNX and numpy counterparts.

Signless integers (`i8`, `i32`, ...) are signed; unsigned ONNX types use the builtin
unsigned integer types (`ui8`, ...); `bool` is `i1`.
"""

from __future__ import annotations

from collections.abc import Sequence

import ml_dtypes
import numpy as np
from onnx import TensorProto
from xdsl.dialects.builtin import (
    BFloat16Type,
    Float16Type,
    Float32Type,
    Float64Type,
    IntegerType,
    Signedness,
    TensorType,
)
from xdsl.ir import Attribute

ElementType = Float16Type | BFloat16Type | Float32Type | Float64Type | IntegerType


def _int(width: int, unsigned: bool = False) -> IntegerType:
    return IntegerType(width, Signedness.UNSIGNED if unsigned else Signedness.SIGNLESS)


# (ONNX data type, numpy dtype, element type factory)
_TABLE: list[tuple[int, np.dtype, ElementType]] = [
    (TensorProto.FLOAT, np.dtype(np.float32), Float32Type()),
    (TensorProto.DOUBLE, np.dtype(np.float64), Float64Type()),
    (TensorProto.FLOAT16, np.dtype(np.float16), Float16Type()),
    (TensorProto.BFLOAT16, np.dtype(ml_dtypes.bfloat16), BFloat16Type()),
    (TensorProto.BOOL, np.dtype(np.bool_), _int(1)),
    (TensorProto.INT8, np.dtype(np.int8), _int(8)),
    (TensorProto.INT16, np.dtype(np.int16), _int(16)),
    (TensorProto.INT32, np.dtype(np.int32), _int(32)),
    (TensorProto.INT64, np.dtype(np.int64), _int(64)),
    (TensorProto.UINT8, np.dtype(np.uint8), _int(8, True)),
    (TensorProto.UINT16, np.dtype(np.uint16), _int(16, True)),
    (TensorProto.UINT32, np.dtype(np.uint32), _int(32, True)),
    (TensorProto.UINT64, np.dtype(np.uint64), _int(64, True)),
]

_ONNX_TO_ELEMENT = {onnx_type: et for onnx_type, _, et in _TABLE}
_NUMPY_TO_ELEMENT = {dt: et for _, dt, et in _TABLE}
_ELEMENT_TO_NUMPY = {et: dt for _, dt, et in _TABLE}


class UnsupportedTypeError(ValueError):
    """A dtype that the graph dialect cannot represent."""


def element_type_from_onnx(onnx_type: int) -> ElementType:
    """`TensorProto.FLOAT` -> `f32`."""
    try:
        return _ONNX_TO_ELEMENT[onnx_type]
    except KeyError:
        name = TensorProto.DataType.Name(onnx_type) if onnx_type else "UNDEFINED"
        raise UnsupportedTypeError(f"element type {name} is not supported") from None


def element_type_from_numpy(dtype: np.dtype | type) -> ElementType:
    """`np.float32` -> `f32`."""
    dt = np.dtype(dtype)
    try:
        return _NUMPY_TO_ELEMENT[dt]
    except KeyError:
        raise UnsupportedTypeError(f"numpy dtype {dt} is not supported") from None


def numpy_dtype(element_type: Attribute) -> np.dtype:
    """`f32` -> `np.float32`."""
    try:
        return _ELEMENT_TO_NUMPY[element_type]  # type: ignore[index]
    except KeyError:
        raise UnsupportedTypeError(f"element type {element_type} is not supported") from None


def is_supported_element_type(element_type: Attribute) -> bool:
    return element_type in _ELEMENT_TO_NUMPY


def is_float(element_type: Attribute) -> bool:
    return isinstance(element_type, Float16Type | BFloat16Type | Float32Type | Float64Type)


def is_integer(element_type: Attribute) -> bool:
    """True for integer types other than `i1` (bool)."""
    return isinstance(element_type, IntegerType) and element_type.width.data > 1


def is_bool(element_type: Attribute) -> bool:
    return isinstance(element_type, IntegerType) and element_type.width.data == 1


def tensor(shape: Sequence[int], element_type: Attribute) -> TensorType:
    """`tensor((2, 3), f32)` -> `tensor<2x3xf32>`."""
    return TensorType(element_type, list(shape))


def tensor_for_array(array: np.ndarray) -> TensorType:
    return tensor(array.shape, element_type_from_numpy(array.dtype))
