"""Reference semantics of the nn graph ops (ONNX semantics).

f16/bf16 math runs in f32 and is rounded once at the end, as onnxruntime does; integer
matrix products are exact (wrapping in the element type).

Window ops are vectorized over the batch, channels and output positions and loop only
over kernel offsets: convolutions gather the strided slice of every kernel offset into
columns (im2col) and do one batched matrix product; pools reduce the slices.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Sequence

import ml_dtypes
import numpy as np

from mlc.dialects.graph import nn
from mlc.interpreters.graph.registry import reference
from mlc.texpr.numerics import maximum, reduce_maximum

_LOW_PRECISION = (np.dtype(np.float16), np.dtype(ml_dtypes.bfloat16))


def _compute(x: np.ndarray) -> np.ndarray:
    """x in the precision its math runs in (f32 for f16/bf16)."""
    return x.astype(np.float32) if x.dtype in _LOW_PRECISION else x


# --------------------------------------------------------------------------- products


@reference(nn.MatMulOp)
def matmul(op: nn.MatMulOp, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.matmul(_compute(a), _compute(b))


def _scaled(y: np.ndarray, factor: float) -> np.ndarray:
    """factor * y; integers stay exact for integral factors (else float, truncated later)."""
    if factor == 1.0:
        return y
    if y.dtype.kind in "iu":
        return y * int(factor) if factor.is_integer() else y * factor
    return y * y.dtype.type(factor)


@reference(nn.GemmOp)
def gemm(op: nn.GemmOp, a: np.ndarray, b: np.ndarray, c: np.ndarray | None = None) -> np.ndarray:
    alpha, beta = op.alpha, op.beta
    a, b = _compute(a), _compute(b)
    if op.trans_a:
        a = a.T
    if op.trans_b:
        b = b.T
    y = _scaled(a @ b, alpha)
    if c is not None and beta != 0.0:
        y = y + _scaled(_compute(c), beta)
    return y


# --------------------------------------------------------------------------- windows


def _padded(
    x: np.ndarray,
    kernel: Sequence[int],
    strides: Sequence[int],
    pads: Sequence[int],
    dilations: Sequence[int],
    out: Sequence[int],
    fill: object,
) -> np.ndarray:
    """x padded with `fill`: `pads` at the begins, and at the ends exactly what the last
    window reaches (more or less than the end pads when ceil_mode extends or floor drops)."""
    rank = len(kernel)
    widths = [(0, 0)] * (x.ndim - rank)
    crop = [slice(None)] * x.ndim
    for d in range(rank):
        needed = (out[d] - 1) * strides[d] + dilations[d] * (kernel[d] - 1) + 1
        end = needed - x.shape[x.ndim - rank + d] - pads[d]
        widths.append((pads[d], max(end, 0)))
        if end < 0:
            crop[x.ndim - rank + d] = slice(0, x.shape[x.ndim - rank + d] + end)
    x = x[tuple(crop)]
    if any(w != (0, 0) for w in widths):
        x = np.pad(x, widths, constant_values=np.asarray(fill, x.dtype))
    return x


def _windows(
    xp: np.ndarray,
    kernel: Sequence[int],
    strides: Sequence[int],
    dilations: Sequence[int],
    out: Sequence[int],
) -> Iterator[tuple[tuple[int, ...], np.ndarray]]:
    """(kernel offset, strided view of padded `xp` at that offset) for every offset."""
    lead = (slice(None),) * (xp.ndim - len(kernel))
    for offset in itertools.product(*(range(k) for k in kernel)):
        view = tuple(
            slice(o * dil, o * dil + (n - 1) * s + 1, s)
            for o, dil, n, s in zip(offset, dilations, out, strides)
        )
        yield offset, xp[lead + view]


@reference(nn.ConvOp)
def conv(op: nn.ConvOp, x: np.ndarray, w: np.ndarray, b: np.ndarray | None = None) -> np.ndarray:
    out = tuple(op.output.type.get_shape()[2:])  # type: ignore[attr-defined]
    return convolve(x, w, b, op.strides, op.pads, op.dilations, op.group, out)


def convolve(
    x: np.ndarray,
    w: np.ndarray,
    b: np.ndarray | None,
    strides: Sequence[int],
    pads: Sequence[int],
    dilations: Sequence[int],
    group: int,
    out: tuple[int, ...],
) -> np.ndarray:
    """`graph.conv` of x (N x C x D..), w (M x C/group x K..) and the optional bias b,
    with output spatial sizes `out`."""
    x, w = _compute(x), _compute(w)
    n, c = x.shape[:2]
    m, cg = w.shape[:2]
    kernel = w.shape[2:]
    xp = _padded(x, kernel, strides, pads, dilations, out, 0)
    xp = xp.reshape(n, group, cg, *xp.shape[2:])
    taps = int(np.prod(kernel))
    positions = int(np.prod(out))
    cols = np.empty((n, group, cg, taps, *out), dtype=x.dtype)
    for i, (_, view) in enumerate(_windows(xp, kernel, strides, dilations, out)):
        cols[:, :, :, i] = view
    cols = cols.reshape(n, group, cg * taps, positions)
    wg = w.reshape(group, m // group, cg * taps)
    y = np.matmul(wg, cols).reshape(n, m, *out)
    if b is not None:
        y += _compute(b).reshape(m, *[1] * len(out))
    return y


@reference(nn.ConvTransposeOp)
def conv_transpose(
    op: nn.ConvTransposeOp, x: np.ndarray, w: np.ndarray, b: np.ndarray | None = None
) -> np.ndarray:
    strides, pads = op.strides, op.pads
    dilations, group = op.dilations, op.group
    out = tuple(op.output.type.get_shape()[2:])  # type: ignore[attr-defined]
    x, w = _compute(x), _compute(w)
    n, c = x.shape[:2]
    mg = w.shape[1]
    kernel = w.shape[2:]
    size = x.shape[2:]
    rank = len(kernel)
    cg = c // group
    taps = int(np.prod(kernel))
    # cols[n, g, m, tap, pixel] = sum_c w[g, c, m, tap] * x[n, g, c, pixel]
    wg = w.reshape(group, cg, mg * taps).transpose(0, 2, 1)
    xg = x.reshape(n, group, cg, -1)
    cols = np.matmul(wg, xg).reshape(n, group, mg, taps, *size)
    full = [
        max((size[d] - 1) * strides[d] + dilations[d] * (kernel[d] - 1) + 1, pads[d] + out[d])
        for d in range(rank)
    ]
    y = np.zeros((n, group, mg, *full), dtype=x.dtype)
    for i, offset in enumerate(itertools.product(*(range(k) for k in kernel))):
        view = tuple(
            slice(o * dil, o * dil + (sz - 1) * s + 1, s)
            for o, dil, sz, s in zip(offset, dilations, size, strides)
        )
        y[(slice(None),) * 3 + view] += cols[:, :, :, i]
    crop = tuple(slice(pads[d], pads[d] + out[d]) for d in range(rank))
    y = y[(slice(None),) * 3 + crop].reshape(n, group * mg, *out)
    if b is not None:
        y = y + _compute(b).reshape(group * mg, *[1] * rank)
    return y


def _pool_geometry(
    op: nn.PoolOp,
) -> tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...], tuple[int, ...], tuple[int, ...]]:
    out = tuple(op.output.type.get_shape()[2:])  # type: ignore[attr-defined]
    return (
        op.kernel_shape,
        op.strides,
        op.pads,
        op.dilations,
        out,
    )


def _lowest(dtype: np.dtype) -> object:
    return np.iinfo(dtype).min if dtype.kind in "iu" else -np.inf


@reference(nn.MaxPoolOp)
def max_pool(op: nn.MaxPoolOp, x: np.ndarray) -> np.ndarray:
    kernel, strides, pads, dilations, out = _pool_geometry(op)
    xp = _padded(x, kernel, strides, pads, dilations, out, _lowest(x.dtype))
    y = np.full((*x.shape[:2], *out), _lowest(x.dtype), dtype=x.dtype)
    for _, view in _windows(xp, kernel, strides, dilations, out):
        y = maximum(y, view)
    return y


@reference(nn.MaxPoolIndicesOp)
def max_pool_indices(op: nn.MaxPoolIndicesOp, x: np.ndarray) -> np.ndarray:
    kernel, strides, pads, dilations, out = _pool_geometry(op)
    spatial = x.shape[2:]
    rank = len(kernel)
    column_major = op.storage_order == 1
    # the flat index of every input element, padded with -1
    order = "F" if column_major else "C"
    pixel = np.arange(int(np.prod(spatial)), dtype=np.int64).reshape(spatial, order=order)
    base = np.arange(x.shape[0] * x.shape[1], dtype=np.int64).reshape(*x.shape[:2], *[1] * rank)
    index = base * int(np.prod(spatial)) + pixel
    xp = _padded(x, kernel, strides, pads, dilations, out, _lowest(x.dtype))
    ip = _padded(np.broadcast_to(index, x.shape), kernel, strides, pads, dilations, out, -1)
    best = np.full((*x.shape[:2], *out), _lowest(x.dtype), dtype=x.dtype)
    best_index = np.full(best.shape, -1, dtype=np.int64)
    values = _windows(xp, kernel, strides, dilations, out)
    indices = _windows(ip, kernel, strides, dilations, out)
    for (_, v), (_, i) in zip(values, indices):
        better = (v > best) | ((best_index < 0) & (i >= 0))
        best = np.where(better, v, best)
        best_index = np.where(better, i, best_index)
    return best_index


def _tap_counts(
    kernel: int, stride: int, dilation: int, pad_begin: int, n: int, lo: int, hi: int
) -> np.ndarray:
    """For each of `n` windows along one axis: how many of its taps t have lo <= t < hi
    (t in input coordinates, the first window starting at -pad_begin)."""
    starts = np.arange(n) * stride - pad_begin
    taps = starts[:, None] + np.arange(kernel)[None, :] * dilation
    return np.count_nonzero((taps >= lo) & (taps < hi), axis=1)


@reference(nn.AveragePoolOp)
def average_pool(op: nn.AveragePoolOp, x: np.ndarray) -> np.ndarray:
    kernel, strides, pads, dilations, out = _pool_geometry(op)
    rank = len(kernel)
    x = _compute(x)
    xp = _padded(x, kernel, strides, pads, dilations, out, 0)
    y = np.zeros((*x.shape[:2], *out), dtype=x.dtype)
    for _, view in _windows(xp, kernel, strides, dilations, out):
        y += view
    include_pad = op.count_include_pad
    divisor = np.ones((), dtype=np.int64)
    for d in range(rank):
        size = x.shape[2 + d]
        # taps inside the input, or with count_include_pad inside the padded input
        lo, hi = (-pads[d], size + pads[rank + d]) if include_pad else (0, size)
        counts = _tap_counts(kernel[d], strides[d], dilations[d], pads[d], out[d], lo, hi)
        divisor = np.multiply.outer(divisor, counts)
    return y / divisor.astype(y.dtype)


@reference(nn.LpPoolOp)
def lp_pool(op: nn.LpPoolOp, x: np.ndarray) -> np.ndarray:
    kernel, strides, pads, dilations, out = _pool_geometry(op)
    p = op.p
    x = _compute(x)
    xp = _padded(np.abs(x) ** p, kernel, strides, pads, dilations, out, 0)
    y = np.zeros((*x.shape[:2], *out), dtype=x.dtype)
    for _, view in _windows(xp, kernel, strides, dilations, out):
        y += view
    return y ** (1.0 / p)


@reference(nn.GlobalAveragePoolOp)
def global_average_pool(op: nn.GlobalAveragePoolOp, x: np.ndarray) -> np.ndarray:
    axes = tuple(range(2, x.ndim))
    return np.mean(_compute(x), axis=axes, keepdims=True)


@reference(nn.GlobalMaxPoolOp)
def global_max_pool(op: nn.GlobalMaxPoolOp, x: np.ndarray) -> np.ndarray:
    axes = tuple(range(2, x.ndim))
    return reduce_maximum(x, axis=axes, keepdims=True)


# --------------------------------------------------------------------------- normalization


def _per_channel(v: np.ndarray, rank: int, dtype: np.dtype) -> np.ndarray:
    return _compute(v).astype(dtype).reshape(-1, *[1] * (rank - 2))


@reference(nn.BatchNormOp)
def batch_norm(
    op: nn.BatchNormOp,
    x: np.ndarray,
    scale: np.ndarray,
    bias: np.ndarray,
    mean: np.ndarray,
    var: np.ndarray,
) -> np.ndarray:
    """In the widest type of x and the parameters (from opset 15 they may be wider than
    x, and are not rounded to it); the result is rounded to x's type once."""
    eps = op.epsilon
    xc = _compute(x)
    params = [_compute(p) for p in (scale, bias, mean, var)]
    dt, r = np.result_type(xc.dtype, *(p.dtype for p in params)), x.ndim
    scale, bias, mean, var = (_per_channel(p, r, dt) for p in params)
    inv = scale / np.sqrt(var + dt.type(eps))
    return (xc.astype(dt, copy=False) - mean) * inv + bias


@reference(nn.InstanceNormOp)
def instance_norm(
    op: nn.InstanceNormOp, x: np.ndarray, scale: np.ndarray, bias: np.ndarray
) -> np.ndarray:
    eps = op.epsilon
    xc = _compute(x)
    dt, r = xc.dtype, x.ndim
    axes = tuple(range(2, r))
    mean = np.mean(xc, axis=axes, keepdims=True)
    var = np.mean(np.square(xc - mean), axis=axes, keepdims=True)
    y = (xc - mean) / np.sqrt(var + dt.type(eps))
    return y * _per_channel(scale, r, dt) + _per_channel(bias, r, dt)


@reference(nn.LayerNormOp)
def layer_norm(
    op: nn.LayerNormOp, x: np.ndarray, scale: np.ndarray, bias: np.ndarray | None = None
) -> np.ndarray:
    axis, eps = op.axis, op.epsilon
    xc = _compute(x)
    axes = tuple(range(axis, x.ndim))
    mean = np.mean(xc, axis=axes, keepdims=True)
    diff = xc - mean
    var = np.mean(np.square(diff), axis=axes, keepdims=True)
    y = diff / np.sqrt(var + xc.dtype.type(eps)) * _compute(scale)
    if bias is not None:
        y = y + _compute(bias)
    return y


@reference(nn.LrnOp)
def lrn(op: nn.LrnOp, x: np.ndarray) -> np.ndarray:
    size = op.size
    alpha, beta, bias = op.alpha, op.beta, op.bias
    xc = _compute(x)
    channels = x.shape[1]
    lo, hi = (size - 1) // 2, size // 2  # channels [c - lo, c + hi]
    sq = np.square(xc)
    padded = np.pad(sq, [(0, 0), (lo, hi)] + [(0, 0)] * (x.ndim - 2))
    # each window summed on its own (not as a difference of running sums, where an
    # inf in one channel would make other channels' windows inf - inf = NaN)
    window = np.zeros_like(sq)
    for j in range(size):
        window += padded[:, j : j + channels]
    return xc / (bias + alpha / size * window) ** beta


# --------------------------------------------------------------------------- softmax


@reference(nn.SoftmaxOp)
def softmax(op: nn.SoftmaxOp, x: np.ndarray) -> np.ndarray:
    axes = op.axes
    xc = _compute(x)
    e = np.exp(xc - np.max(xc, axis=axes, keepdims=True))
    return e / np.sum(e, axis=axes, keepdims=True)


@reference(nn.LogSoftmaxOp)
def log_softmax(op: nn.LogSoftmaxOp, x: np.ndarray) -> np.ndarray:
    axes = op.axes
    xc = _compute(x)
    shifted = xc - np.max(xc, axis=axes, keepdims=True)
    return shifted - np.log(np.sum(np.exp(shifted), axis=axes, keepdims=True))


@reference(nn.HardmaxOp)
def hardmax(op: nn.HardmaxOp, x: np.ndarray) -> np.ndarray:
    axes = op.axes
    rest = [a for a in range(x.ndim) if a not in axes]
    moved = np.transpose(x, rest + list(axes))
    lead = moved.shape[: len(rest)]
    flat = moved.reshape(*lead, -1)
    one_hot = np.zeros_like(flat)
    if flat.shape[-1]:
        np.put_along_axis(one_hot, np.argmax(flat, axis=-1)[..., None], 1, axis=-1)
    return np.transpose(one_hot.reshape(moved.shape), np.argsort(rest + list(axes)))


# --------------------------------------------------------------------------- rms norm, einsum


@reference(nn.RmsNormOp)
def rms_norm(op: nn.RmsNormOp, x: np.ndarray, scale: np.ndarray) -> np.ndarray:
    axis, eps = op.axis, op.epsilon
    xc = _compute(x)
    axes = tuple(range(axis, x.ndim))
    mean_square = np.mean(np.square(xc), axis=axes, keepdims=True)
    return xc / np.sqrt(mean_square + xc.dtype.type(eps)) * _compute(scale)


@reference(nn.EinsumOp)
def einsum(op: nn.EinsumOp, *xs: np.ndarray) -> np.ndarray:
    """np.einsum of the operands broadcast to each letter's size, computed in the
    precision of their math (f32 for f16/bf16)."""
    shapes = [x.shape for x in xs]
    terms, out, sizes = nn.einsum_sizes(op.name, op.equation, shapes)
    full = [np.broadcast_to(_compute(x), [sizes[c] for c in t]) for x, t in zip(xs, terms)]
    return np.asarray(np.einsum(f"{','.join(terms)}->{out}", *full))
