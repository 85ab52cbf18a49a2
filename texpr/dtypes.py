"""Element types of the tensor-expression language and their numpy dtypes."""

from __future__ import annotations

import ml_dtypes
import numpy as np

#: Element type name -> numpy dtype.
DTYPES: dict[str, np.dtype] = {
    "f16": np.dtype(np.float16),
    "bf16": np.dtype(ml_dtypes.bfloat16),
    "f32": np.dtype(np.float32),
    "f64": np.dtype(np.float64),
    "i8": np.dtype(np.int8),
    "i16": np.dtype(np.int16),
    "i32": np.dtype(np.int32),
    "i64": np.dtype(np.int64),
    "u8": np.dtype(np.uint8),
    "u16": np.dtype(np.uint16),
    "u32": np.dtype(np.uint32),
    "u64": np.dtype(np.uint64),
    "bool": np.dtype(np.bool_),
}

FLOAT_TYPES = frozenset({"f16", "bf16", "f32", "f64"})
SIGNED_TYPES = frozenset({"i8", "i16", "i32", "i64"})
UNSIGNED_TYPES = frozenset({"u8", "u16", "u32", "u64"})
INT_TYPES = SIGNED_TYPES | UNSIGNED_TYPES
#: The type of iterator and size values used as scalars (``f32(i)``, ``c < CA``).
INDEX_TYPE = "i64"


def numpy_dtype(name: str) -> np.dtype:
    """The numpy dtype of element type ``name``."""
    return DTYPES[name]


def dtype_name(dtype: np.dtype) -> str | None:
    """The element type name of a numpy dtype, or ``None`` if it has none."""
    for name, dt in DTYPES.items():
        if dt == dtype:
            return name
    return None


def is_float(name: str) -> bool:
    """Whether ``name`` is a floating-point type."""
    return name in FLOAT_TYPES


def is_int(name: str) -> bool:
    """Whether ``name`` is a (signed or unsigned) integer type."""
    return name in INT_TYPES


def accumulator_type(name: str) -> str:
    """The type a reduction into ``name`` accumulates in (f32 for f16/bf16)."""
    return "f32" if name in ("f16", "bf16") else name


def lowest(name: str) -> float | int | bool:
    """The smallest value of a type (-inf for floats): the identity of ``max=``."""
    if name == "bool":
        return False
    if is_float(name):
        return float("-inf")
    return int(np.iinfo(DTYPES[name]).min)


def highest(name: str) -> float | int | bool:
    """The largest value of a type (+inf for floats): the identity of ``min=``."""
    if name == "bool":
        return True
    if is_float(name):
        return float("inf")
    return int(np.iinfo(DTYPES[name]).max)


def int_range(name: str) -> tuple[int, int]:
    """The inclusive value range of an integer type."""
    info = np.iinfo(DTYPES[name])
    return int(info.min), int(info.max)
