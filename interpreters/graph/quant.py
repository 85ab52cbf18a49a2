"""Reference semantics of the quantization graph ops (ONNX semantics, as onnx.reference).

Integer products are exact in i32 (wrapping, as numpy's int32 matmul). QuantizeLinear
rounds half to even (`np.rint`) and saturates; the clamp happens before the conversion,
so values beyond i32 saturate too (onnxruntime's behaviour; onnx.reference converts to
int32 first).
"""

from __future__ import annotations

import numpy as np

from mlc.dialects.graph import quant
from mlc.dialects.graph.types import numpy_dtype
from mlc.interpreters.graph.layout import from_blocked, to_blocked
from mlc.interpreters.graph.nn import _padded, _windows
from mlc.interpreters.graph.registry import reference


def _along(value: np.ndarray, rank: int, axis: int | None) -> np.ndarray:
    """A scale / zero point shaped to broadcast against a rank-`rank` tensor."""
    if axis is None:
        return value.reshape(())
    shape = [1] * rank
    shape[axis] = value.size
    return value.reshape(shape)


@reference(quant.MatMulIntegerOp)
def matmul_integer(
    op: quant.MatMulIntegerOp, a: np.ndarray, b: np.ndarray, za: np.ndarray, zb: np.ndarray
) -> np.ndarray:
    a32 = a.astype(np.int32) - za.astype(np.int32).reshape(-1, 1)  # a scalar or per row
    b32 = b.astype(np.int32) - zb.astype(np.int32).reshape(-1)  # a scalar or per column
    return np.matmul(a32, b32)


@reference(quant.ConvIntegerOp)
def conv_integer(
    op: quant.ConvIntegerOp, x: np.ndarray, w: np.ndarray, zx: np.ndarray, zw: np.ndarray
) -> np.ndarray:
    out = tuple(op.output.type.get_shape()[2:])  # type: ignore[attr-defined]
    return _conv_integer(op, x, w, zx, zw, op.group, out)


@reference(quant.ConvIntegerBlockedOp)
def conv_integer_blocked(
    op: quant.ConvIntegerBlockedOp, x: np.ndarray, w: np.ndarray, zx: np.ndarray, zw: np.ndarray
) -> np.ndarray:
    out = tuple(op.output.type.get_shape()[2:-1])  # type: ignore[attr-defined]
    y = _conv_integer(op, from_blocked(x), w, zx, zw, 1, out)
    return to_blocked(y, op.block)


def _conv_integer(
    op: quant.ConvIntegerOp | quant.ConvIntegerBlockedOp,
    x: np.ndarray,
    w: np.ndarray,
    zx: np.ndarray,
    zw: np.ndarray,
    group: int,
    out: tuple[int, ...],
) -> np.ndarray:
    """ONNX ConvInteger of NCHW `x` with `op`'s window into spatial sizes `out`."""
    strides, pads, dilations = op.strides, op.pads, op.dilations
    x32 = x.astype(np.int32) - zx.astype(np.int32).reshape(())
    w32 = w.astype(np.int32) - zw.astype(np.int32).reshape(-1, *[1] * (w.ndim - 1))
    n, c = x.shape[:2]
    m, cg = w.shape[:2]
    kernel = w.shape[2:]
    xp = _padded(x32, kernel, strides, pads, dilations, out, 0)
    xp = xp.reshape(n, group, cg, *xp.shape[2:])
    taps = int(np.prod(kernel))
    cols = np.empty((n, group, cg, taps, *out), dtype=np.int32)
    for i, (_, view) in enumerate(_windows(xp, kernel, strides, dilations, out)):
        cols[:, :, :, i] = view
    cols = cols.reshape(n, group, cg * taps, int(np.prod(out)))
    wg = w32.reshape(group, m // group, cg * taps)
    return np.matmul(wg, cols).reshape(n, m, *out)


@reference(quant.QuantizeLinearOp)
def quantize_linear(
    op: quant.QuantizeLinearOp, x: np.ndarray, scale: np.ndarray, zp: np.ndarray
) -> np.ndarray:
    axis = op.scale_axis()
    dtype = numpy_dtype(op.output.type.element_type)  # type: ignore[attr-defined]
    info = np.iinfo(dtype)
    q = np.rint(x / _along(scale, x.ndim, axis)) + _along(zp, x.ndim, axis).astype(x.dtype)
    return np.clip(q, info.min, info.max).astype(dtype)


@reference(quant.DequantizeLinearOp)
def dequantize_linear(
    op: quant.DequantizeLinearOp, x: np.ndarray, scale: np.ndarray, zp: np.ndarray
) -> np.ndarray:
    axis = op.scale_axis()
    dx = x.astype(np.float32) - _along(zp, x.ndim, axis).astype(np.float32)
    return dx * _along(scale, x.ndim, axis)
