"""Quantization parameters: scales and zero points from ranges and weights.

`x ~ (q - zero_point) * scale`, with `q = saturate(round_half_even(x / scale) + zero_point)`
(ONNX QuantizeLinear). Activations are quantized per tensor, asymmetric uint8 (the range
stretched to include 0, zero point where 0 lands: VNNI's u8 x s8 product) or symmetric
int8 (zero point 0); weights symmetric int8 over [-127, 127] (so -w quantizes exactly),
per output channel or per tensor; biases int32 with the scale of the product they are
added to.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: activation schemes: name -> (code dtype, symmetric)
ACTIVATION_SCHEMES: dict[str, tuple[str, bool]] = {"u8": ("uint8", False), "s8": ("int8", True)}

_WEIGHT_LIMIT = 127


@dataclass(frozen=True)
class QuantParams:
    """Scale (float32) and zero point (code dtype), one per tensor (`axis` None) or one
    per index of `axis`."""

    scale: np.ndarray
    zero_point: np.ndarray
    axis: int | None = None

    @property
    def dtype(self) -> np.dtype:
        return self.zero_point.dtype

    def _broadcast(self, array: np.ndarray, ndim: int) -> np.ndarray:
        if self.axis is None:
            return array.reshape(())
        shape = [1] * ndim
        shape[self.axis] = -1
        return array.reshape(shape)

    def quantize(self, x: np.ndarray) -> np.ndarray:
        """ONNX QuantizeLinear of `x` (float32 arithmetic, ties to even, saturating)."""
        scale = self._broadcast(self.scale, x.ndim).astype(np.float32)
        zero = self._broadcast(self.zero_point, x.ndim).astype(np.float32)
        info = np.iinfo(self.dtype)
        q = np.rint(x.astype(np.float32) / scale) + zero
        return np.clip(q, info.min, info.max).astype(self.dtype)

    def dequantize(self, q: np.ndarray) -> np.ndarray:
        """ONNX DequantizeLinear of `q` (float32)."""
        scale = self._broadcast(self.scale, q.ndim).astype(np.float32)
        zero = self._broadcast(self.zero_point, q.ndim).astype(np.float32)
        return (q.astype(np.float32) - zero) * scale


def _safe_scale(scale: np.ndarray) -> np.ndarray:
    """float32 scales, 1.0 where a range was empty (a constant-zero tensor)."""
    scale = np.asarray(scale, dtype=np.float32)
    return np.where(scale > 0, scale, np.float32(1.0)).astype(np.float32)


def activation_params(lo: float, hi: float, scheme: str) -> QuantParams:
    """Per-tensor parameters covering [lo, hi] (stretched to include 0) for `scheme`."""
    dtype, symmetric = ACTIVATION_SCHEMES[scheme]
    info = np.iinfo(dtype)
    lo, hi = min(float(lo), 0.0), max(float(hi), 0.0)
    if symmetric:
        peak = max(-lo, hi)
        scale = _safe_scale(np.array(peak / _WEIGHT_LIMIT))
        return QuantParams(scale, np.zeros((), dtype))
    scale = _safe_scale(np.array((hi - lo) / (info.max - info.min)))
    zero = np.clip(np.rint(info.min - lo / scale.astype(np.float64)), info.min, info.max)
    return QuantParams(scale, zero.astype(dtype))


def weight_params(w: np.ndarray, axis: int | None) -> QuantParams:
    """Symmetric int8 parameters for a weight, per index of `axis` or per tensor."""
    magnitude = np.abs(w.astype(np.float64))
    if axis is None:
        peak = np.array(magnitude.max() if magnitude.size else 0.0)
        return QuantParams(_safe_scale(peak / _WEIGHT_LIMIT), np.zeros((), np.int8))
    peak = np.moveaxis(magnitude, axis, 0).reshape(w.shape[axis], -1).max(axis=1)
    scale = _safe_scale(peak / _WEIGHT_LIMIT)
    return QuantParams(scale, np.zeros(scale.shape, np.int8), axis)


def bias_params(input_scale: np.ndarray, weight: QuantParams, channels: int) -> QuantParams:
    """int32 parameters of a bias added to a product of an activation with scale
    `input_scale` and `weight`: scale input_scale * weight scale (float32), per channel."""
    scale = np.float32(input_scale.reshape(())) * weight.scale.astype(np.float32)
    scale = np.broadcast_to(_safe_scale(scale), (channels,)).copy()
    return QuantParams(scale, np.zeros((channels,), np.int32), 0)


def quantize_bias(b: np.ndarray, params: QuantParams) -> np.ndarray:
    """`b` as int32 codes of `params` (rounded to nearest, saturated)."""
    info = np.iinfo(np.int32)
    q = np.rint(b.astype(np.float64) / params.scale.astype(np.float64))
    return np.clip(q, info.min, info.max).astype(np.int32)
