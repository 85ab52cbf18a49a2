"""Sizes that hostile IR can blow up: static element counts and byte sizes of types.

A type is only a description: `tensor<9223372036854775807xf32>` costs nothing until
something materializes it. These helpers compute sizes without allocating, so that the
parser, the verifier and the tools can refuse what no 64-bit machine can hold.
"""

from __future__ import annotations

import math
from functools import lru_cache

from xdsl.dialects.builtin import ContainerType, ShapedType
from xdsl.ir import Attribute

MAX_ADDRESSABLE_BYTES = 2**63 - 1
"""The largest byte size mlc can address (sizes and offsets are signed 64-bit)."""

_UNKNOWN_ELEMENT_BYTES = 8
"""The byte size assumed for an element type without a bit width (`index`, ...)."""


def static_element_count(ty: Attribute) -> int | None:
    """The number of elements of a shaped type's static dimensions (a dynamic dimension
    counts as 1); None for a type that is not shaped."""
    if not isinstance(ty, ShapedType):
        return None
    return math.prod(max(dim, 1) for dim in ty.get_shape())


def byte_size(ty: Attribute) -> int:
    """The bytes one value of type `ty` takes (its static part), computed without
    allocating anything; nested shaped element types multiply."""
    count = static_element_count(ty)
    if count is None:
        width = getattr(ty, "bitwidth", None)
        return max(1, -(-width // 8)) if isinstance(width, int) else _UNKNOWN_ELEMENT_BYTES
    if count == 0 or not isinstance(ty, ContainerType):
        return count
    element: Attribute = ty.get_element_type()  # pyright: ignore[reportUnknownMemberType]
    return count * byte_size(element)


@lru_cache(maxsize=4096)
def oversized_type_problem(ty: Attribute) -> str | None:
    """Why a value of type `ty` can exist in no 64-bit address space (None if it can), as
    the end of a sentence whose subject is the value."""
    count = static_element_count(ty)
    if count is None:
        return None
    size = byte_size(ty)
    if size <= MAX_ADDRESSABLE_BYTES:
        return None
    return (
        f"of type {ty} has {count} elements ({size} bytes): more than a 64-bit address "
        f"space holds ({MAX_ADDRESSABLE_BYTES} bytes)"
    )
