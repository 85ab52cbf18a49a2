"""Native lowering of the indexing graph ops at data-dependent indices
(`convert-graph-to-tl`, hand-written): `graph.gather_nd`, `graph.scatter_elements` and
`graph.scatter_nd`.

Each is `scf.for` loops with `memref.load` / `memref.store`. Every index read from the
`indices` operand is checked (`tl.check`: out of `[-size, size)` fails the call, as the
reference semantics raise) and a failing one reads as 0, so no input makes native code
touch memory outside a buffer. Unsigned indices are zero-extended (never negative).

A scatter first copies `data` into the result (a copy kernel), then applies the updates
one at a time in row-major order of the update positions, which is the reference's
order: with `reduction = "none"` a position written twice keeps the last update,
otherwise each update is combined into the value there (f16 / bf16 in f32, rounded
once, as the reference computes one combination).
"""

from __future__ import annotations

from collections.abc import Sequence

from xdsl.builder import Builder
from xdsl.dialects import arith, memref
from xdsl.dialects.builtin import (
    BFloat16Type,
    Float16Type,
    IndexType,
    IntegerAttr,
    IntegerType,
    Signedness,
    TensorType,
    f32,
)
from xdsl.ir import Attribute, Operation, SSAValue

from mlc.dialects.graph import indexing as ix
from mlc.dialects.graph.types import is_float
from mlc.dialects.tl import CheckOp, build_kernel
from mlc.lowering.buffers import handwritten, memref_type_of, scf_loop_nest

__all__ = ["lower_gather_nd", "lower_scatter"]


def _const(builder: Builder, value: int) -> SSAValue:
    return builder.insert(arith.ConstantOp(IntegerAttr(value, IndexType()))).result


def _unsigned(value: SSAValue) -> bool:
    """Whether a graph operand holds unsigned integers (its buffer is signless)."""
    ty = value.type
    assert isinstance(ty, TensorType)
    element = ty.element_type
    return isinstance(element, IntegerType) and element.signedness.data == Signedness.UNSIGNED


def _checked_index(
    builder: Builder, raw: SSAValue, dim: int, unsigned: bool, what: str
) -> SSAValue:
    """An ``index`` value of integer ``raw`` (counted from the end when negative), checked
    to lie in ``[-dim, dim)`` (`tl.check`); out of range it reads as 0 (``dim`` > 0)."""
    width = raw.type.width.data if isinstance(raw.type, IntegerType) else 64
    if unsigned and width < 64:
        raw = builder.insert(arith.ExtUIOp(raw, IntegerType(64))).result
    idx = builder.insert(arith.IndexCastOp(raw, IndexType())).result
    size, zero = _const(builder, dim), _const(builder, 0)
    if unsigned:
        ok = builder.insert(arith.CmpiOp(idx, size, "ult")).result
        normalized = idx
    else:
        above = builder.insert(arith.CmpiOp(idx, _const(builder, -dim), "sge")).result
        below = builder.insert(arith.CmpiOp(idx, size, "slt")).result
        ok = builder.insert(arith.AndIOp(above, below)).result
        neg = builder.insert(arith.CmpiOp(idx, zero, "slt")).result
        wrapped = builder.insert(arith.AddiOp(idx, size)).result
        normalized = builder.insert(arith.SelectOp(neg, wrapped, idx)).result
    builder.insert(CheckOp(ok, f"{what}: an index is out of range [-{dim}, {dim})"))
    return builder.insert(arith.SelectOp(ok, normalized, zero)).result


def _fail(builder: Builder, what: str) -> None:
    """A check that always fails: there is an index but no element it could name."""
    false = builder.insert(arith.ConstantOp(IntegerAttr(0, IntegerType(1)))).result
    builder.insert(CheckOp(false, f"{what}: an index is out of range of an empty axis"))


# -- gather_nd ------------------------------------------------------------------------------


@handwritten(ix.GatherNDOp)
def lower_gather_nd(
    builder: Builder, op: Operation, operands: Sequence[SSAValue], results: Sequence[SSAValue]
) -> None:
    """Y[p..., s...] = X[p[:b]..., idx[p..., 0], ..., idx[p..., K-1], s...]."""
    assert isinstance(op, ix.GatherNDOp)
    data, indices = operands
    out = results[0]
    out_shape = memref_type_of(out).get_shape()
    if 0 in out_shape:
        return
    data_shape = memref_type_of(data).get_shape()
    index_shape = memref_type_of(indices).get_shape()
    b, k = op.batch_dims, index_shape[-1]
    outer = len(index_shape) - 1  # the output axes that index `indices`
    unsigned = _unsigned(op.indices)
    inner, ivs = scf_loop_nest(builder, out_shape)
    where = list(ivs[:b])
    for j in range(k):
        axis = b + j
        what = f"{op.name} (axis {axis}, size {data_shape[axis]})"
        if data_shape[axis] == 0:
            _fail(inner, what)
            return
        raw = inner.insert(memref.LoadOp.get(indices, [*ivs[:outer], _const(inner, j)])).res
        where.append(_checked_index(inner, raw, data_shape[axis], unsigned, what))
    where += ivs[outer:]
    value = inner.insert(memref.LoadOp.get(data, where)).res
    inner.insert(memref.StoreOp.get(value, out, ivs))


# -- scatters -------------------------------------------------------------------------------


def _copy(builder: Builder, src: SSAValue, dst: SSAValue) -> None:
    shape = memref_type_of(src).get_shape()
    if 0 in shape:
        return
    names = [f"i{d}" for d in range(len(shape))]
    index = ", ".join(names)
    builder.insert(
        build_kernel(
            "scatter_copy",
            [(n, s, "parallel") for n, s in zip(names, shape, strict=True)],
            inputs=[(src, index)],
            outputs=[(dst, index)],
            body=lambda b, args: args[0],
        )
    )


def _combine(
    builder: Builder,
    reduction: str,
    element: Attribute,
    unsigned: bool,
    old: SSAValue,
    new: SSAValue,
) -> SSAValue:
    """The value a scatter stores: the update, or it combined with the old value."""
    if reduction == "none":
        return new
    if is_float(element):
        narrow = isinstance(element, Float16Type | BFloat16Type)
        if narrow:  # in f32, rounded once
            old = builder.insert(arith.ExtFOp(old, f32)).result
            new = builder.insert(arith.ExtFOp(new, f32)).result
        float_ops = {
            "add": arith.AddfOp,
            "mul": arith.MulfOp,
            "max": arith.MaximumfOp,
            "min": arith.MinimumfOp,
        }
        value = builder.insert(float_ops[reduction](old, new)).result
        if narrow:
            value = builder.insert(arith.TruncFOp(value, element)).result
        return value
    int_ops = {
        "add": arith.AddiOp,
        "mul": arith.MuliOp,
        "max": arith.MaxUIOp if unsigned else arith.MaxSIOp,
        "min": arith.MinUIOp if unsigned else arith.MinSIOp,
    }
    return builder.insert(int_ops[reduction](old, new)).result


@handwritten(ix.ScatterElementsOp, ix.ScatterNDOp)
def lower_scatter(
    builder: Builder, op: Operation, operands: Sequence[SSAValue], results: Sequence[SSAValue]
) -> None:
    """Y = X; then for each update position p in row-major order: scatter_elements
    Y[p with p[axis] = idx[p]] op= U[p]; scatter_nd Y[idx[p, :]..., s...] op= U[p..., s...]."""
    assert isinstance(op, ix.ScatterElementsOp | ix.ScatterNDOp)
    data, indices, updates = operands
    out = results[0]
    _copy(builder, data, out)
    data_type = memref_type_of(data)
    data_shape = data_type.get_shape()
    index_shape = memref_type_of(indices).get_shape()
    data_element = op.data.type.element_type  # type: ignore[attr-defined]
    unsigned_data, unsigned_index = _unsigned(op.data), _unsigned(op.indices)
    if isinstance(op, ix.ScatterElementsOp):
        if 0 in index_shape:
            return
        axis = op.axis
        what = f"{op.name} (axis {axis}, size {data_shape[axis]})"
        inner, ivs = scf_loop_nest(builder, index_shape)
        if data_shape[axis] == 0:
            _fail(inner, what)
            return
        raw = inner.insert(memref.LoadOp.get(indices, ivs)).res
        idx = _checked_index(inner, raw, data_shape[axis], unsigned_index, what)
        where = [*ivs[:axis], idx, *ivs[axis + 1 :]]
        source = ivs
    else:
        k = index_shape[-1]
        positions = index_shape[:-1]
        if 0 in positions or 0 in data_shape[k:]:
            return
        middle, ivs = scf_loop_nest(builder, positions)
        where = []
        for j in range(k):
            what = f"{op.name} (axis {j}, size {data_shape[j]})"
            if data_shape[j] == 0:
                _fail(middle, what)
                return
            raw = middle.insert(memref.LoadOp.get(indices, [*ivs, _const(middle, j)])).res
            where.append(_checked_index(middle, raw, data_shape[j], unsigned_index, what))
        inner, slice_ivs = scf_loop_nest(middle, data_shape[k:])
        where += slice_ivs
        source = [*ivs, *slice_ivs]
    update = inner.insert(memref.LoadOp.get(updates, source)).res
    old = inner.insert(memref.LoadOp.get(out, where)).res if op.reduction != "none" else update
    value = _combine(inner, op.reduction, data_element, unsigned_data, old, update)
    inner.insert(memref.StoreOp.get(value, out, where))
