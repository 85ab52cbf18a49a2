"""Reference semantics of the shape graph ops (ONNX semantics)."""

from __future__ import annotations

import numpy as np

from mlc.dialects.graph import shape as sh
from mlc.interpreters.graph.registry import reference


@reference(sh.ReshapeOp)
def reshape(op: sh.ReshapeOp, x: np.ndarray) -> np.ndarray:
    return x.reshape(op.output.type.get_shape())  # type: ignore[attr-defined]


@reference(sh.TransposeOp)
def transpose(op: sh.TransposeOp, x: np.ndarray) -> np.ndarray:
    return np.transpose(x, op.perm)


@reference(sh.ConcatOp)
def concat(op: sh.ConcatOp, *xs: np.ndarray) -> np.ndarray:
    return np.concatenate(xs, axis=op.axis)


@reference(sh.SplitOp)
def split(op: sh.SplitOp, x: np.ndarray) -> tuple[np.ndarray, ...]:
    axis = op.axis
    bounds = np.cumsum(op.sizes)[:-1]
    return tuple(np.split(x, bounds, axis=axis))


@reference(sh.SliceOp)
def slice_(op: sh.SliceOp, x: np.ndarray) -> np.ndarray:
    index = tuple(
        _python_slice(start, end, step) for start, end, step in zip(op.starts, op.ends, op.steps)
    )
    return x[index]


def _python_slice(start: int, end: int, step: int) -> slice:
    """The Python slice of exactly range(start, end, step) (where -1 is no index)."""
    if start < 0:  # only with a negative step: nothing to take
        return slice(0, 0)
    return slice(start, None if end < 0 else end, step)


def _normalized_indices(indices: np.ndarray, dim: int, op_name: str) -> np.ndarray:
    """Negative indices count from the end; out-of-range indices are an error."""
    idx = indices.astype(np.int64)
    if np.any((idx < -dim) | (idx >= dim)):
        raise IndexError(f"{op_name}: an index is out of range [-{dim}, {dim})")
    return np.where(idx < 0, idx + dim, idx)


@reference(sh.GatherOp)
def gather(op: sh.GatherOp, data: np.ndarray, indices: np.ndarray) -> np.ndarray:
    axis = op.axis
    idx = _normalized_indices(indices, data.shape[axis], op.name)
    return np.take(data, idx, axis=axis)


@reference(sh.GatherElementsOp)
def gather_elements(op: sh.GatherElementsOp, data: np.ndarray, indices: np.ndarray) -> np.ndarray:
    axis = op.axis
    idx = _normalized_indices(indices, data.shape[axis], op.name)
    # indices may be smaller than data in the other axes: gather from the matching corner
    corner = tuple(slice(None) if a == axis else slice(0, n) for a, n in enumerate(indices.shape))
    return np.take_along_axis(data[corner], idx, axis=axis)


@reference(sh.PadOp)
def pad(op: sh.PadOp, x: np.ndarray) -> np.ndarray:
    pads = op.pads
    rank = x.ndim
    begins, ends = pads[:rank], pads[rank:]
    # negative pads crop first
    crop = tuple(
        slice(-min(b, 0), x.shape[a] + min(e, 0)) for a, (b, e) in enumerate(zip(begins, ends))
    )
    x = x[crop]
    widths = [(max(b, 0), max(e, 0)) for b, e in zip(begins, ends)]
    mode = op.mode
    if mode == "constant":
        value = np.array(op.pad_value()).astype(x.dtype)
        return np.pad(x, widths, mode="constant", constant_values=value)
    return np.pad(x, widths, mode=mode)  # reflect, edge and wrap mean what numpy means


@reference(sh.ExpandOp)
def expand(op: sh.ExpandOp, x: np.ndarray) -> np.ndarray:
    return np.broadcast_to(x, op.output.type.get_shape())  # type: ignore[attr-defined]


@reference(sh.TileOp)
def tile(op: sh.TileOp, x: np.ndarray) -> np.ndarray:
    return np.tile(x, op.repeats)
