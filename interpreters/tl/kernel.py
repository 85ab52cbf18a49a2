"""Execution of `tl.kernel` (vectorized over the iteration space) and `tl.block` (one
point)."""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Sequence
from math import prod
from typing import Any

import numpy as np
from xdsl.ir.affine import (
    AffineBinaryOpExpr,
    AffineBinaryOpKind,
    AffineConstantExpr,
    AffineDimExpr,
    AffineExpr,
)
from xdsl.utils.exceptions import InterpretationError

from mlc.dialects.tl import BlockOp, KernelOp, StructuredOp, scalar_value
from mlc.interpreters.tl.body import IMPLS, IndexFn, evaluate_body, find_combiners, yielded
from mlc.interpreters.tl.buffers import buffer_view, numpy_dtype

#: iteration points evaluated at once by the vectorized kernel evaluator
CHUNK_POINTS = 1 << 21


def _eval_affine(expr: AffineExpr, dims: Sequence[Any]) -> Any:
    if isinstance(expr, AffineDimExpr):
        return dims[expr.position]
    if isinstance(expr, AffineConstantExpr):
        return np.int64(expr.value)
    assert isinstance(expr, AffineBinaryOpExpr)
    lhs = _eval_affine(expr.lhs, dims)
    rhs = _eval_affine(expr.rhs, dims)
    match expr.kind:
        case AffineBinaryOpKind.Add:
            return lhs + rhs
        case AffineBinaryOpKind.Mul:
            return lhs * rhs
        case AffineBinaryOpKind.FloorDiv:
            return np.floor_divide(lhs, rhs)
        case AffineBinaryOpKind.CeilDiv:
            return -np.floor_divide(-lhs, rhs)
        case AffineBinaryOpKind.Mod:
            return np.mod(lhs, rhs)


class Operands:
    """The buffers of a structured op, with their maps, types, pads and inits."""

    def __init__(self, op: StructuredOp, buffers: Sequence[Any]) -> None:
        self.op = op
        self.n_in = len(op.inputs)
        self.arrays = [buffer_view(b) for b in buffers]
        self.maps = op.maps
        self.types = op.buffer_types
        self.elem = [t.element_type for t in self.types]
        self.dtypes = [numpy_dtype(t) for t in self.elem]
        for a, t in zip(self.arrays, self.types):
            if tuple(a.shape) != tuple(t.get_shape()):
                raise InterpretationError(
                    f'{op.name} "{op.label.data}": buffer of shape {a.shape} passed for {t}'
                )
        self.pads = [
            None if p is None else np.asarray(scalar_value(p)).astype(self.dtypes[k])
            for k, p in enumerate(op.pad_values)
        ]
        self.inits = [
            None if v is None else np.asarray(scalar_value(v)).astype(self.dtypes[self.n_in + j])
            for j, v in enumerate(op.init_values)
        ]

    def indices(self, k: int, dims: Sequence[Any]) -> list[Any]:
        return [_eval_affine(e, dims) for e in self.maps[k].results]

    def gather(self, k: int, dims: Sequence[Any]) -> Any:
        arr = self.arrays[k]
        idx = self.indices(k, dims)
        pad = self.pads[k] if k < self.n_in else None
        if pad is None:
            value = arr[tuple(idx)]
        else:
            valid: Any = True
            clipped = []
            for i, size in zip(idx, arr.shape):
                valid = valid & (i >= 0) & (i < size)
                clipped.append(np.clip(i, 0, size - 1))
            value = np.where(valid, arr[tuple(clipped)], pad)
        if self.dtypes[k] == np.bool_:
            return np.asarray(value) != 0
        return np.asarray(value).astype(self.dtypes[k], copy=False)

    def scatter(self, j: int, dims: Sequence[Any], value: Any, shape: tuple[int, ...]) -> None:
        k = self.n_in + j
        arr = self.arrays[k]
        values = np.broadcast_to(np.asarray(value), shape).astype(arr.dtype)
        if arr.ndim == 0:  # no parallel iterators: the iteration space writes one element
            arr[()] = values.reshape(())
            return
        idx = [np.broadcast_to(i, shape) for i in self.indices(k, dims)]
        arr[tuple(idx)] = values


def _grids(extents: Sequence[int], fixed: dict[int, int]) -> tuple[list[Any], tuple[int, ...]]:
    """Broadcastable index arrays of every iterator (fixed ones are scalars)."""
    n = len(extents)
    grids: list[Any] = []
    shape = []
    for d, e in enumerate(extents):
        s = [1] * n
        if d in fixed:
            grids.append(np.full(s, fixed[d], np.int64))
            shape.append(1)
        else:
            s[d] = e
            grids.append(np.arange(e, dtype=np.int64).reshape(s))
            shape.append(e)
    return grids, tuple(shape)


def _chunk_dims(extents: Sequence[int], candidates: Sequence[int], points: int) -> list[int]:
    """Leading `candidates` to iterate over so that a chunk has at most `points` points."""
    fixed: list[int] = []
    total = prod(extents)
    for d in candidates:
        if total <= points:
            break
        fixed.append(d)
        total //= extents[d]
    return fixed


def _index_fn(op: StructuredOp, dims: Sequence[Any]) -> IndexFn:
    names = op.iterator_names

    def index(name: str) -> Any:
        return dims[names.index(name)]

    return index


def _fill_inits(ops: Operands) -> None:
    op = ops.op
    extents = op.extents
    reduction = op.reduction_dims
    grids, shape = _grids(extents, {d: 0 for d in reduction})
    for j, init in enumerate(ops.inits):
        if init is not None:
            ops.scatter(j, grids, init, shape)


def _injective(ops: Operands) -> bool:
    """Every output map is injective over the parallel iterators."""
    op = ops.op
    extents = op.extents
    n_points = prod(extents[d] for d in op.parallel_dims)
    grids, shape = _grids(extents, {d: 0 for d in op.reduction_dims})
    for j in range(len(op.outputs)):
        arr = ops.arrays[ops.n_in + j]
        if n_points > arr.size:
            return False
        if arr.ndim == 0:
            continue
        idx = [np.broadcast_to(i, shape).ravel() for i in ops.indices(ops.n_in + j, grids)]
        flat = np.ravel_multi_index(tuple(idx), arr.shape)
        if np.unique(flat).size != flat.size:
            return False
    return True


def _overlapping(ops: Operands) -> bool:
    outs = ops.arrays[ops.n_in :]
    for k, a in enumerate(ops.arrays):
        for j, o in enumerate(outs):
            if k != ops.n_in + j and np.may_share_memory(a, o):
                return True
    return False


def run_kernel(op: KernelOp, buffers: Sequence[Any], chunk_points: int | None = None) -> None:
    """Execute a `tl.kernel` on its buffers (vectorized over chunks of at most
    `chunk_points` iteration points; default `CHUNK_POINTS`)."""
    if chunk_points is None:
        chunk_points = CHUNK_POINTS
    ops = Operands(op, buffers)
    _fill_inits(ops)
    if _overlapping(ops) or not _injective(ops):
        _run_points(ops, apply_block_init=False)
        return
    extents = op.extents
    reduction = op.reduction_dims
    block = op.body.block
    n_in = ops.n_in
    combiners = find_combiners(op) if reduction else []
    with np.errstate(all="ignore"):
        if combiners is None:
            _run_reductions_in_order(ops, chunk_points)
            return
        for fixed_values in _chunks(extents, op.parallel_dims, chunk_points):
            grids, shape = _grids(extents, fixed_values)
            values = [ops.gather(k, grids) for k in range(len(ops.arrays))]
            env = evaluate_body(block, values, _index_fn(op, grids))
            if not reduction:
                for j, v in enumerate(yielded(block, env)):
                    ops.scatter(j, grids, v, shape)
                continue
            axes = tuple(reduction)
            out_shape = tuple(1 if d in reduction else s for d, s in enumerate(shape))
            for j, c in enumerate(combiners):
                e = np.broadcast_to(np.asarray(env[c.e]), shape)
                r = c.reduce(e, axes)
                current = np.broadcast_to(values[n_in + j], out_shape)
                pair = [current, r] if c.current_first else [r, current]
                new = IMPLS[type(c.op)](c.op, pair)
                ops.scatter(j, grids, new, out_shape)


def _chunks(
    extents: Sequence[int], parallel: Sequence[int], points: int
) -> Iterator[dict[int, int]]:
    """Values of the leading parallel iterators fixed in each chunk."""
    fixed = _chunk_dims(extents, parallel, points)
    for values in itertools.product(*(range(extents[d]) for d in fixed)):
        yield dict(zip(fixed, values))


def _run_reductions_in_order(ops: Operands, chunk_points: int) -> None:
    """Walk the reduction points in order, vectorized over the parallel iterators."""
    op = ops.op
    extents = op.extents
    reduction = op.reduction_dims
    block = op.body.block
    for fixed_values in _chunks(
        [1 if d in reduction else e for d, e in enumerate(extents)], op.parallel_dims, chunk_points
    ):
        for point in itertools.product(*(range(extents[d]) for d in reduction)):
            fixed = dict(fixed_values)
            fixed.update(zip(reduction, point))
            grids, shape = _grids(extents, fixed)
            values = [ops.gather(k, grids) for k in range(len(ops.arrays))]
            env = evaluate_body(block, values, _index_fn(op, grids))
            for j, v in enumerate(yielded(block, env)):
                ops.scatter(j, grids, v, shape)


def _run_points(ops: Operands, apply_block_init: bool) -> None:
    """Execute every point of the iteration space in order, one at a time."""
    for point in itertools.product(*(range(e) for e in ops.op.extents)):
        run_point(ops, point, apply_block_init)


def run_point(ops: Operands, point: Sequence[int], apply_block_init: bool) -> None:
    """Execute the body at one point of the iteration space (exact scalar semantics)."""
    op = ops.op
    values: list[Any] = []
    out_idx: list[tuple[int, ...]] = []
    for k, arr in enumerate(ops.arrays):
        idx = tuple(int(e.eval(point, ())) for e in ops.maps[k].results)
        inside = all(0 <= i < s for i, s in zip(idx, arr.shape))
        if k < ops.n_in:
            if inside:
                v = arr[idx]
            elif ops.pads[k] is not None:
                v = ops.pads[k]
            else:
                raise InterpretationError(
                    f'{op.name} "{op.label.data}" reads input #{k} at {list(idx)}, outside '
                    f"its shape {list(arr.shape)}"
                )
        else:
            if not inside:
                raise InterpretationError(
                    f'{op.name} "{op.label.data}" writes output #{k - ops.n_in} at '
                    f"{list(idx)}, outside its shape {list(arr.shape)}"
                )
            out_idx.append(idx)
            v = arr[idx]
            init = ops.inits[k - ops.n_in]
            if (
                apply_block_init
                and init is not None
                and all(point[d] == 0 for d in op.reduction_dims)
            ):
                v = init
        values.append(np.asarray(v != 0) if ops.dtypes[k] == np.bool_ else ops.dtypes[k].type(v))
    dims = [np.int64(p) for p in point]
    env = evaluate_body(op.body.block, values, _index_fn(op, dims))
    for j, (idx, v) in enumerate(zip(out_idx, yielded(op.body.block, env))):
        arr = ops.arrays[ops.n_in + j]
        arr[idx] = np.asarray(v).astype(arr.dtype)


def run_block(op: BlockOp, loop_values: Sequence[int], buffers: Sequence[Any]) -> None:
    """Execute a `tl.block` at the point its bindings give for `loop_values`."""
    point = [int(v) for v in op.binding_map.eval([int(x) for x in loop_values], [])]
    pred = op.predicate_map
    if pred is not None and any(v >= 0 for v in pred.eval(point, [])):
        return
    with np.errstate(all="ignore"):
        run_point(Operands(op, buffers), point, apply_block_init=True)
