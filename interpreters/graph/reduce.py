"""Reference semantics of the reduce graph ops (ONNX semantics).

Floating-point reductions of f16/bf16 accumulate in f32 and round once, as onnxruntime
does; integer reductions are exact (wrapping in the element type). Reductions over an
axis of size 0 give the reduction's identity value (ONNX empty-set semantics).
"""

from __future__ import annotations

from collections.abc import Callable

import ml_dtypes
import numpy as np

from mlc.dialects.graph import reduce as rd
from mlc.interpreters.graph.registry import reference
from mlc.texpr.numerics import reduce_maximum, reduce_minimum

_LOW_PRECISION = (np.dtype(np.float16), np.dtype(ml_dtypes.bfloat16))

Axes = tuple[int, ...]


def _accumulator(x: np.ndarray) -> np.ndarray:
    return x.astype(np.float32) if x.dtype in _LOW_PRECISION else x


def _lowest(dtype: np.dtype) -> object:
    """The identity of max: -inf, the least integer, or False."""
    if dtype.kind == "b":
        return False
    if dtype.kind in "iu":
        return np.iinfo(dtype).min
    return -np.inf


def _highest(dtype: np.dtype) -> object:
    """The identity of min: +inf, the greatest integer, or True."""
    if dtype.kind == "b":
        return True
    if dtype.kind in "iu":
        return np.iinfo(dtype).max
    return np.inf


def _sum(x: np.ndarray, axes: Axes) -> np.ndarray:
    x = _accumulator(x)
    return np.sum(x, axis=axes, dtype=x.dtype, keepdims=True)


def _prod(x: np.ndarray, axes: Axes) -> np.ndarray:
    x = _accumulator(x)
    return np.prod(x, axis=axes, dtype=x.dtype, keepdims=True)


def _max(x: np.ndarray, axes: Axes) -> np.ndarray:
    return reduce_maximum(x, axis=axes, keepdims=True, initial=_lowest(x.dtype))


def _min(x: np.ndarray, axes: Axes) -> np.ndarray:
    return reduce_minimum(x, axis=axes, keepdims=True, initial=_highest(x.dtype))


def _mean(x: np.ndarray, axes: Axes) -> np.ndarray:
    count = int(np.prod([x.shape[a] for a in axes]))
    total = _sum(x, axes)
    if count == 0:
        return np.zeros_like(total)  # undefined in ONNX; onnxruntime gives 0
    if x.dtype.kind in "iu":
        if x.dtype.kind == "u":
            return total // total.dtype.type(count)
        q = np.abs(total.astype(np.int64)) // count  # truncate toward zero, as C does
        return np.where(total < 0, -q, q)
    return total / total.dtype.type(count)


def _in_float(fn: Callable[[np.ndarray], np.ndarray]) -> Callable[[np.ndarray], np.ndarray]:
    """Apply float math to an integer or low-precision accumulator in f64/f32."""

    def wrapped(v: np.ndarray) -> np.ndarray:
        return fn(v.astype(np.float64) if v.dtype.kind in "iu" else v)

    return wrapped


def _l1(x: np.ndarray, axes: Axes) -> np.ndarray:
    return _sum(np.abs(x), axes)


def _sum_square(x: np.ndarray, axes: Axes) -> np.ndarray:
    x = _accumulator(x)
    return _sum(x * x, axes)


def _l2(x: np.ndarray, axes: Axes) -> np.ndarray:
    return _in_float(np.sqrt)(_sum_square(x, axes))


def _log_sum(x: np.ndarray, axes: Axes) -> np.ndarray:
    return _in_float(np.log)(_sum(x, axes))


def _log_sum_exp(x: np.ndarray, axes: Axes) -> np.ndarray:
    v = _accumulator(x)
    if v.dtype.kind in "iu":
        v = v.astype(np.float64)
    peak = np.max(v, axis=axes, keepdims=True, initial=-np.inf)
    peak = np.where(np.isfinite(peak), peak, np.zeros_like(peak))
    return np.log(np.sum(np.exp(v - peak), axis=axes, keepdims=True)) + peak


_REDUCTIONS: dict[type[rd.ReduceOp], Callable[[np.ndarray, Axes], np.ndarray]] = {
    rd.ReduceSumOp: _sum,
    rd.ReduceMeanOp: _mean,
    rd.ReduceMaxOp: _max,
    rd.ReduceMinOp: _min,
    rd.ReduceProdOp: _prod,
    rd.ReduceL1Op: _l1,
    rd.ReduceL2Op: _l2,
    rd.ReduceLogSumOp: _log_sum,
    rd.ReduceLogSumExpOp: _log_sum_exp,
    rd.ReduceSumSquareOp: _sum_square,
}


def _run_reduction(
    fn: Callable[[np.ndarray, Axes], np.ndarray], op: rd.ReduceOp, x: np.ndarray
) -> np.ndarray:
    axes = op.axes
    out = fn(x, axes)  # reduced axes kept as size 1
    if not op.keepdims:
        out = np.squeeze(out, axis=axes)
    # back to the element type (float -> integer truncates, as C does); cast here, where
    # the registry ignores floating-point errors (-inf -> integer for empty log-sums)
    return out.astype(x.dtype, copy=False)


for _op_type, _fn in _REDUCTIONS.items():
    reference(_op_type)(lambda op, x, fn=_fn: _run_reduction(fn, op, x))


def _arg_reduce(op: rd.ArgReduceOp, x: np.ndarray, find: Callable[..., np.ndarray]) -> np.ndarray:
    axis = op.axis
    if op.select_last_index:
        flipped = np.flip(x, axis=axis)
        index = x.shape[axis] - 1 - find(flipped, axis=axis, keepdims=True)
    else:
        index = find(x, axis=axis, keepdims=True)
    if not op.keepdims:
        index = np.squeeze(index, axis=axis)
    return index.astype(np.int64)


@reference(rd.ArgMaxOp)
def argmax(op: rd.ArgMaxOp, x: np.ndarray) -> np.ndarray:
    return _arg_reduce(op, x, np.argmax)


@reference(rd.ArgMinOp)
def argmin(op: rd.ArgMinOp, x: np.ndarray) -> np.ndarray:
    return _arg_reduce(op, x, np.argmin)


# --------------------------------------------------------------------------- scans


def _scan(op: rd.ScanOp, x: np.ndarray, fn: Callable[..., np.ndarray], identity: int) -> np.ndarray:
    """The running reduction `fn` (np.cumsum / np.cumprod) along `op.axis`, exclusive
    and / or reversed, in the accumulator type (f32 for f16/bf16; rounded once later)."""
    axis = op.axis
    v = _accumulator(x)
    if op.reverse:
        v = np.flip(v, axis=axis)
    out = fn(v, axis=axis, dtype=v.dtype)
    if op.exclusive:
        pad = [(0, 0)] * v.ndim
        pad[axis] = (1, 0)
        out = np.pad(out, pad, constant_values=identity)
        out = np.take(out, np.arange(v.shape[axis]), axis=axis)
    if op.reverse:
        out = np.flip(out, axis=axis)
    return out


@reference(rd.CumSumOp)
def cumsum(op: rd.CumSumOp, x: np.ndarray) -> np.ndarray:
    return _scan(op, x, np.cumsum, 0)


@reference(rd.CumProdOp)
def cumprod(op: rd.CumProdOp, x: np.ndarray) -> np.ndarray:
    return _scan(op, x, np.cumprod, 1)


# --------------------------------------------------------------------------- top k


@reference(rd.TopKOp)
def top_k(op: rd.TopKOp, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A stable sort along `axis` (largest first when `largest`), NaN above every number;
    the first `k` values and their indices."""
    axis, k = op.axis, op.k
    moved = np.moveaxis(x, axis, -1)
    v = _accumulator(moved)
    if v.dtype.kind == "f":
        nan = np.isnan(v)
        v = np.where(nan, v.dtype.type(0), v)
        key = -v if op.largest else v
    else:
        nan = np.zeros(v.shape, dtype=bool)
        key = ~v if op.largest else v  # ~v: strictly decreasing, without overflow
    primary = ~nan if op.largest else nan  # False sorts first
    order = np.lexsort((key, primary), axis=-1)[..., :k]
    values = np.take_along_axis(moved, order, axis=-1)
    return np.moveaxis(values, -1, axis), np.moveaxis(order.astype(np.int64), -1, axis)
