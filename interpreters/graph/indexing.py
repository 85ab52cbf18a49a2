"""Reference semantics of the indexing graph ops (ONNX semantics).

Index values outside `[-size, size)` raise `IndexError` (onnxruntime fails the call too);
scatters apply their updates one at a time in row-major order of the update positions,
so a position written twice keeps the last update (`reduction = "none"`) or combines
them in that order.
"""

from __future__ import annotations

from collections.abc import Callable

import ml_dtypes
import numpy as np

from mlc.dialects.graph import indexing as ix
from mlc.interpreters.graph.registry import reference
from mlc.texpr.numerics import maximum, minimum

_LOW_PRECISION = (np.dtype(np.float16), np.dtype(ml_dtypes.bfloat16))


def _checked(indices: np.ndarray, dim: int, what: str) -> np.ndarray:
    """`indices` as i64 counted from the end when negative; out of range is an error."""
    idx = indices.astype(np.int64)
    if np.any((idx < -dim) | (idx >= dim)):
        raise IndexError(f"{what}: an index is out of range [-{dim}, {dim})")
    return np.where(idx < 0, idx + dim, idx)


# --------------------------------------------------------------------------- trilu


@reference(ix.TriluOp)
def trilu(op: ix.TriluOp, x: np.ndarray) -> np.ndarray:
    rows, cols = x.shape[-2:]
    i = np.arange(rows)[:, None]
    j = np.arange(cols)[None, :]
    keep = (j - i >= op.k) if op.upper else (j - i <= op.k)
    return np.where(keep, x, np.zeros((), dtype=x.dtype))


# --------------------------------------------------------------------------- one_hot


def one_hot_positions(indices: np.ndarray, depth: int) -> np.ndarray:
    """Each index as the position it marks: truncated to an integer, counted from `depth`
    when negative; -1 where it marks none (out of range, NaN or infinite)."""
    if indices.dtype.kind in "iu":
        idx = indices.astype(np.int64) if indices.dtype != np.uint64 else indices
        ok = (idx < depth) if indices.dtype.kind == "u" else (idx >= -depth) & (idx < depth)
        wrapped = np.where(idx < 0, idx + depth, idx) if indices.dtype.kind == "i" else idx
        return np.where(ok, wrapped, -1).astype(np.int64)
    v = indices.astype(np.float64)
    t = np.trunc(np.where(np.isfinite(v), v, depth))  # non-finite: no position
    ok = (t >= -depth) & (t < depth)
    t = np.where(ok, t, -1).astype(np.int64)
    return np.where(t < 0, np.where(ok, t + depth, -1), t)


@reference(ix.OneHotOp)
def one_hot(op: ix.OneHotOp, indices: np.ndarray, values: np.ndarray) -> np.ndarray:
    axis, depth = op.axis, op.depth
    pos = np.expand_dims(one_hot_positions(indices, depth), axis)
    shape = [1] * pos.ndim
    shape[axis] = depth
    hit = pos == np.arange(depth).reshape(shape)
    return np.where(hit, values[1], values[0])


# --------------------------------------------------------------------------- gather_nd


@reference(ix.GatherNDOp)
def gather_nd(op: ix.GatherNDOp, data: np.ndarray, indices: np.ndarray) -> np.ndarray:
    b, k = op.batch_dims, indices.shape[-1]
    batch = data.shape[:b]
    positions = indices.reshape(*batch, -1, k)  # batch..., tuples, k
    columns = [
        _checked(positions[..., j], data.shape[b + j], f"{op.name} (axis {b + j})")
        for j in range(k)
    ]
    grids = np.meshgrid(*[np.arange(n) for n in batch], indexing="ij")
    where = tuple(g.reshape(*batch, 1) for g in grids) + tuple(columns)
    return data[where].reshape(op.output.type.get_shape())  # type: ignore[attr-defined]


# --------------------------------------------------------------------------- scatters


def _combine(reduction: str, dtype: np.dtype) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
    """How an update combines with the value it lands on (f16/bf16 in f32, rounded)."""
    wide = np.float32 if dtype in _LOW_PRECISION else dtype

    def apply(fn: Callable[[np.ndarray, np.ndarray], np.ndarray]) -> Callable[..., np.ndarray]:
        return lambda a, u: np.asarray(fn(a.astype(wide), u.astype(wide))).astype(dtype)

    table: dict[str, Callable[..., np.ndarray]] = {
        "none": lambda a, u: u,
        "add": apply(np.add),
        "mul": apply(np.multiply),
        "max": apply(maximum),
        "min": apply(minimum),
    }
    return table[reduction]


def _scatter(
    out: np.ndarray,
    targets: tuple[np.ndarray, ...],
    updates: np.ndarray,
    reduction: str,
) -> np.ndarray:
    """Write (or combine) update i at out[targets[...][i]], in order; each target array
    is flat over the update positions (an update may be a slice of `out`)."""
    combine = _combine(reduction, out.dtype)
    count = targets[0].shape[0] if targets else 0
    flat = np.ravel_multi_index(targets, out.shape[: len(targets)]) if count else targets
    if count and np.unique(flat).size == count:  # no position twice: all at once
        out[targets] = combine(out[targets], updates)
        return out
    for i in range(count):
        where = tuple(t[i] for t in targets)
        out[where] = combine(out[where], updates[i])
    return out


@reference(ix.ScatterElementsOp)
def scatter_elements(
    op: ix.ScatterElementsOp, data: np.ndarray, indices: np.ndarray, updates: np.ndarray
) -> np.ndarray:
    axis = op.axis
    idx = _checked(indices, data.shape[axis], f"{op.name} (axis {axis})")
    grids = list(np.meshgrid(*[np.arange(n) for n in indices.shape], indexing="ij"))
    grids[axis] = idx
    targets = tuple(g.reshape(-1) for g in grids)
    return _scatter(data.copy(), targets, updates.reshape(-1), op.reduction)


@reference(ix.ScatterNDOp)
def scatter_nd(
    op: ix.ScatterNDOp, data: np.ndarray, indices: np.ndarray, updates: np.ndarray
) -> np.ndarray:
    k = indices.shape[-1]
    tuples = indices.reshape(-1, k)
    targets = tuple(
        _checked(tuples[:, j], data.shape[j], f"{op.name} (axis {j})") for j in range(k)
    )
    flat = updates.reshape(-1, *data.shape[k:])
    return _scatter(data.copy(), targets, flat, op.reduction)
