"""Helpers shared by the graph passes: reading and building `graph.constant` values."""

from __future__ import annotations

import math

import numpy as np
from xdsl.dialects.builtin import BytesAttr, DenseIntOrFPElementsAttr, TensorType
from xdsl.ir import Attribute, SSAValue

from mlc.dialects.graph import ConstantOp
from mlc.dialects.graph.types import numpy_dtype


def constant_array(value: SSAValue) -> np.ndarray | None:
    """The value of `value` when a `graph.constant` defines it, else None."""
    owner = value.owner
    if isinstance(owner, ConstantOp):
        return owner.to_array()
    return None


def is_constant(value: SSAValue) -> bool:
    return isinstance(value.owner, ConstantOp)


def make_constant(array: np.ndarray, ty: Attribute) -> ConstantOp:
    """A `graph.constant` of type `ty` (a static tensor type) holding `array` cast to its
    element type."""
    assert isinstance(ty, TensorType)
    dtype = numpy_dtype(ty.element_type)
    data = np.ascontiguousarray(np.broadcast_to(array, tuple(ty.get_shape())), dtype=dtype)
    attr = DenseIntOrFPElementsAttr(ty, BytesAttr(data.tobytes()))
    return ConstantOp.build(result_types=[ty], properties={"value": attr})


def num_elements(ty: Attribute) -> int:
    """Element count of a tensor type (1 for anything else)."""
    if isinstance(ty, TensorType):
        return math.prod(ty.get_shape())
    return 1


def tensor_shape(value: SSAValue) -> tuple[int, ...]:
    ty = value.type
    assert isinstance(ty, TensorType)
    return tuple(ty.get_shape())


def is_splat_of(array: np.ndarray, scalar: float, *, negative_zero: bool = False) -> bool:
    """Every element equals `scalar` exactly (for 0: with the sign bit set iff
    `negative_zero`); NaN never matches."""
    if array.size == 0:
        return False
    if array.dtype == np.bool_:
        return False
    values = array if array.dtype.kind in "iu" else array.astype(np.float64)
    if not np.all(values == scalar):
        return False
    if scalar == 0 and array.dtype.kind not in "iu":
        signs = np.signbit(array.astype(np.float64))
        return bool(np.all(signs)) if negative_zero else not bool(np.any(signs))
    return True
