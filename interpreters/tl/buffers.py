"""Buffers of the tl interpreter: xDSL `ShapedArray`s (what xDSL's memref interpreter uses)
seen through zero-copy numpy views; element types and their numpy dtypes."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import ml_dtypes
import numpy as np
from xdsl.dialects.builtin import (
    BFloat16Type,
    Float16Type,
    Float32Type,
    Float64Type,
    IndexType,
    IntegerType,
    Signedness,
)
from xdsl.ir import Attribute
from xdsl.utils.exceptions import InterpretationError

if TYPE_CHECKING:
    from xdsl.interpreters.shaped_array import ShapedArray

# xDSL's interpreter package is imported where a buffer is made or read, not here: it
# loads every interpreter xDSL has (0.15 s), and compiling imports this module


def numpy_dtype(ty: Attribute) -> np.dtype:
    """The numpy dtype values of element type `ty` have in bodies (i1 -> bool)."""
    if isinstance(ty, Float32Type):
        return np.dtype(np.float32)
    if isinstance(ty, Float64Type):
        return np.dtype(np.float64)
    if isinstance(ty, Float16Type):
        return np.dtype(np.float16)
    if isinstance(ty, BFloat16Type):
        return np.dtype(ml_dtypes.bfloat16)
    if isinstance(ty, IndexType):
        return np.dtype(np.int64)
    if isinstance(ty, IntegerType):
        width = ty.width.data
        if width == 1:
            return np.dtype(np.bool_)
        if width not in (8, 16, 32, 64):
            raise InterpretationError(f"no numpy dtype for {ty}")
        unsigned = ty.signedness.data == Signedness.UNSIGNED
        return np.dtype(f"{'u' if unsigned else ''}int{width}")
    raise InterpretationError(f"no numpy dtype for {ty}")


def buffer_view(value: Any) -> np.ndarray:
    """A writable numpy view of a buffer (a `ShapedArray` or a numpy array), no copy."""
    if isinstance(value, np.ndarray):
        return value
    from xdsl.interpreters.shaped_array import ShapedArray

    if isinstance(value, ShapedArray):
        ptr = value.data_ptr
        dtype = np.dtype(ptr.xtype.format)  # struct format: the bytes as xDSL packs them
        return np.frombuffer(
            ptr.raw.memory, dtype=dtype, count=value.size, offset=ptr.raw.offset
        ).reshape(value.shape)
    raise InterpretationError(f"expected a buffer, got {type(value).__name__}")


def to_buffer(array: np.ndarray, element_type: Attribute, index_bitwidth: int = 64) -> ShapedArray:
    """A fresh `ShapedArray` of `element_type` holding a copy of `array`."""
    from xdsl.interpreters.builtin import xtype_for_el_type
    from xdsl.interpreters.shaped_array import ShapedArray
    from xdsl.interpreters.utils.ptr import RawPtr, TypedPtr

    xtype = xtype_for_el_type(element_type, index_bitwidth)  # type: ignore[arg-type]
    data = np.ascontiguousarray(np.asarray(array), dtype=np.dtype(xtype.format))
    raw = RawPtr(bytearray(data.tobytes()))
    return ShapedArray(TypedPtr(raw, xtype=xtype), list(np.shape(array)))


def from_buffer(value: Any, element_type: Attribute) -> np.ndarray:
    """A copy of a buffer's contents with the element type's numpy dtype."""
    return buffer_view(value).astype(numpy_dtype(element_type))
