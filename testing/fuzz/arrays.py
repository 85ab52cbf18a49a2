"""Random input arrays (with extreme values) and their JSON encoding."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import ml_dtypes
import numpy as np

MAX_ELEMENTS = 1 << 20
"""Inputs larger than this are not made (the call is skipped)."""


def _is_float(dtype: np.dtype) -> bool:
    return np.issubdtype(dtype, np.floating) or dtype == np.dtype(ml_dtypes.bfloat16)


def float_specials(dtype: np.dtype) -> list[float]:
    """NaN, the infinities, signed zeros, the largest and smallest values of `dtype`."""
    info = ml_dtypes.finfo(dtype) if dtype == np.dtype(ml_dtypes.bfloat16) else np.finfo(dtype)
    big, tiny = float(info.max), float(info.tiny)
    return [math.nan, math.inf, -math.inf, 0.0, -0.0, big, -big, tiny, -tiny, 1.0, -1.0, 1e30]


def int_specials(dtype: np.dtype) -> list[int]:
    """0, ±1, the extremes of `dtype` and their neighbours."""
    if dtype == np.dtype(bool):
        return [0, 1]
    info = np.iinfo(dtype)
    values = [0, 1, -1, int(info.min), int(info.max), int(info.min) + 1, int(info.max) - 1, 2, 7]
    return [v for v in values if info.min <= v <= info.max]


def random_array(
    rng: np.random.Generator, shape: Sequence[int], dtype: Any, special_rate: float = 0.2
) -> np.ndarray:
    """Values of `dtype` (ordinary ones, and each with probability `special_rate` one of
    the type's special values)."""
    dtype = np.dtype(dtype)
    shape = tuple(int(d) for d in shape)
    if dtype == np.dtype(bool):
        return np.array(rng.random(shape) < 0.5)
    if _is_float(dtype):
        base = rng.normal(0.0, 3.0, shape)
        specials = np.array(float_specials(dtype), np.float64)
    else:
        info = np.iinfo(dtype)
        base = rng.integers(max(int(info.min), -20), min(int(info.max), 20), shape, endpoint=True)
        specials = np.array(int_specials(dtype), dtype)
    pick = rng.random(shape) < special_rate
    if specials.size and pick.any():
        base = np.where(pick, specials[rng.integers(0, specials.size, shape)], base)
    with np.errstate(over="ignore", invalid="ignore"):
        return np.array(np.asarray(base).astype(dtype), order="C")  # (0-d stays 0-d)


def encode_array(a: np.ndarray) -> dict[str, Any]:
    """An array as JSON values (floats through float64: exact; NaN and infinities as
    JSON's NaN / Infinity extensions)."""
    values = a.astype(np.float64).tolist() if _is_float(a.dtype) else a.tolist()
    return {"dtype": str(a.dtype), "shape": list(a.shape), "values": values}


def decode_array(data: dict[str, Any]) -> np.ndarray:
    """The array `encode_array` encoded."""
    dtype = np.dtype(ml_dtypes.bfloat16) if data["dtype"] == "bfloat16" else np.dtype(data["dtype"])
    raw = np.array(data["values"], dtype=np.float64 if _is_float(dtype) else dtype)
    return np.array(raw.astype(dtype).reshape(data["shape"]), order="C")
