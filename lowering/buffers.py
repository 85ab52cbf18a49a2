"""Buffers and the hand-written-lowering registry of `convert-graph-to-tl`, below both
`graph_to_tl` (the patterns) and the modules that register hand-written lowerings
(`trees_to_tl`), so neither imports the other's user.

Buffers are signless memrefs of the tensors' shapes; constants become private
`memref.global`s of the module (`add_global`, `constant_buffer`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
from xdsl.builder import Builder, InsertPoint
from xdsl.dialects import arith, memref, scf
from xdsl.dialects.builtin import (
    DenseIntOrFPElementsAttr,
    IndexType,
    IntegerAttr,
    IntegerType,
    MemRefType,
    ModuleOp,
    Signedness,
    StringAttr,
    TensorType,
    UnitAttr,
)
from xdsl.ir import Attribute, Block, Operation, Region, SSAValue

from mlc.dialects.graph.base import dense_attr


class GraphToTlError(Exception):
    """A graph op that `convert-graph-to-tl` cannot lower."""


def fail(op: Operation, reason: str) -> GraphToTlError:
    return GraphToTlError(f"convert-graph-to-tl: cannot lower '{op.name}': {reason}")


def memref_type(ty: Attribute) -> MemRefType:
    """The buffer type of a tensor type. Buffers are signless: a `ui8` tensor is an `i8`
    buffer (xDSL's arith ops take signless integers); the kernels' texpr dtype (`u8`)
    carries the signedness into their bodies (extui, uitofp, divui, cmpi ult, ...)."""
    assert isinstance(ty, TensorType)
    return MemRefType(signless(ty.element_type), ty.get_shape())


def signless(element_type: Attribute) -> Attribute:
    """`ui8` -> `i8`; other element types unchanged."""
    if (
        isinstance(element_type, IntegerType)
        and element_type.signedness.data != Signedness.SIGNLESS
    ):
        return IntegerType(element_type.width.data)
    return element_type


def memref_type_of(value: SSAValue) -> MemRefType:
    ty = value.type
    assert isinstance(ty, MemRefType)
    return ty


# -- hand-written lowerings --------------------------------------------------------------

Lowering = Callable[[Builder, Operation, Sequence[SSAValue], Sequence[SSAValue]], None]
HANDWRITTEN: dict[type[Operation], Lowering] = {}


def handwritten(*op_types: type[Operation]) -> Callable[[Lowering], Lowering]:
    """Register a hand-written lowering: ``fn(builder, op, operand_buffers, result_buffers)``."""

    def register(fn: Lowering) -> Lowering:
        for t in op_types:
            HANDWRITTEN[t] = fn
        return fn

    return register


def module_of(op: Operation) -> ModuleOp:
    parent = op.parent_op()
    while parent is not None and not isinstance(parent, ModuleOp):
        parent = parent.parent_op()
    if parent is None:
        raise fail(op, "it is not inside a builtin.module (constants become memref.globals)")
    return parent


def add_global(module: ModuleOp, value: DenseIntOrFPElementsAttr, ty: MemRefType) -> str:
    """Add a private constant `memref.global @__constant_<n>` holding `value` (after the
    module's other globals); returns its name."""
    block = module.body.block
    globals_ = [o for o in block.ops if isinstance(o, memref.GlobalOp)]
    taken = {o.sym_name.data for o in globals_}
    n = len(taken)
    while f"__constant_{n}" in taken:
        n += 1
    name = f"__constant_{n}"
    glob = memref.GlobalOp.get(StringAttr(name), ty, value, constant=UnitAttr())
    if globals_:
        block.insert_op_after(glob, globals_[-1])
    elif block.first_op is None:
        block.add_op(glob)
    else:
        block.insert_op_before(glob, block.first_op)
    return name


def constant_buffer(builder: Builder, at: Operation, array: np.ndarray) -> SSAValue:
    """A constant buffer holding `array` (a private global of the module holding `at`),
    read through `memref.get_global` at the builder's insertion point."""
    value = dense_attr(array)
    ty = memref_type(value.get_type())
    name = add_global(module_of(at), value, ty)
    return builder.insert(memref.GetGlobalOp(name, ty)).memref


def scf_loop_nest(builder: Builder, shape: Sequence[int]) -> tuple[Builder, list[SSAValue]]:
    """``scf.for`` loops over ``shape``; a builder inside the innermost and the induction
    variables."""
    ivs: list[SSAValue] = []
    zero = builder.insert(arith.ConstantOp(IntegerAttr(0, IndexType()))).result
    one = builder.insert(arith.ConstantOp(IntegerAttr(1, IndexType()))).result
    for size in shape:
        ub = builder.insert(arith.ConstantOp(IntegerAttr(size, IndexType()))).result
        block = Block(arg_types=[IndexType()])
        yield_op = scf.YieldOp()
        block.add_op(yield_op)
        builder.insert(scf.ForOp(zero, ub, one, [], Region(block)))
        builder = Builder(InsertPoint.before(yield_op))
        ivs.append(block.args[0])
    return builder, ivs
