"""The llvm-dialect ops `convert-tl-to-llvm` builds by the thousand, built cheaply.

xDSL's op constructors rebuild their constant attributes at every call (a binary op's
`IntegerAttr(0, 32)` of overflow flags, a load's ordering, a GEP's index array, a
vector type's scalable-dimension flags) and check each argument: 15-55 us an op, the
larger part of lowering a CNN. The functions here build the same ops (equal operands,
result types and properties: `tests/unit/lowering/test_llvm_ops.py`) with
`Operation.create` from attributes made once, at about 6 us an op:

    ptr = gep(base, offset, f32)               # llvm.getelementptr inbounds %base[%offset]
    x = load(ptr, vector_type(f32, 8), 4)      # llvm.load %ptr {alignment = 4 : i64}
    y = overflow_op(llvm.AddOp, x, x)          # llvm.add %x, %x : vector<8xf32>
    store(y, ptr, 4)

The ops are not verified here: the pass verifies its result once.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache

from xdsl.dialects import llvm
from xdsl.dialects.builtin import (
    DenseArrayBase,
    IntegerAttr,
    StringAttr,
    UnitAttr,
    VectorType,
    i1,
    i32,
    i64,
)
from xdsl.dialects.utils.fast_math import FastMathFlag
from xdsl.ir import Attribute, Block, SSAValue

__all__ = [
    "CONTRACT",
    "br",
    "call_intrinsic",
    "cond_br",
    "constant_op",
    "float_op",
    "gep",
    "icmp",
    "insert_element",
    "load",
    "overflow_op",
    "shuffle",
    "store",
    "undef",
    "vector_type",
]

_NO_OVERFLOW = IntegerAttr(0, 32)
_NO_WRAP = IntegerAttr(0, 32)
_ORDERING = IntegerAttr(0, i64)
_INBOUNDS = UnitAttr()
_PTR = llvm.LLVMPointerType()

#: the `contract` fast-math flag alone (see `arith_to_llvm._contractable`)
CONTRACT = llvm.FastMathAttr((FastMathFlag.ALLOW_CONTRACT,))


@cache
def vector_type(element: Attribute, lanes: int) -> VectorType:
    """`vector<lanes x element>`, one instance per type."""
    return VectorType(element, [lanes])


@cache
def _alignment(bytes_: int) -> IntegerAttr:
    return IntegerAttr(bytes_, i64)


@cache
def _i32_array(values: tuple[int, ...]) -> DenseArrayBase:
    return DenseArrayBase.from_list(i32, values)


def overflow_op(
    cls: type[llvm.ArithmeticBinOpOverflow], lhs: SSAValue, rhs: SSAValue
) -> llvm.ArithmeticBinOpOverflow:
    """`cls(lhs, rhs)` without overflow flags (`llvm.add`, `llvm.sub`, `llvm.mul`, ...)."""
    return cls.create(
        operands=[lhs, rhs], result_types=[lhs.type], properties={"overflowFlags": _NO_OVERFLOW}
    )


def float_op(
    cls: type[llvm.AbstractFloatArithOp], lhs: SSAValue, rhs: SSAValue, fastmath: Attribute
) -> llvm.AbstractFloatArithOp:
    """`cls(lhs, rhs, fastmath)` (`llvm.fadd`, `llvm.fmul`, ...; `fastmath` a
    `FastMathAttr` made once, e.g. `CONTRACT`)."""
    return cls.create(
        operands=[lhs, rhs], result_types=[lhs.type], properties={"fastmathFlags": fastmath}
    )


def gep(ptr: SSAValue, offset: SSAValue | int, element: Attribute, inbounds: bool) -> llvm.GEPOp:
    """`ptr` advanced by `offset` elements of type `element` (an SSA value, or a
    constant index folded into the op)."""
    if isinstance(offset, int):
        indices, operands = _i32_array((offset,)), [ptr]
    else:
        indices, operands = _i32_array((llvm.GEP_USE_SSA_VAL,)), [ptr, offset]
    properties: dict[str, Attribute] = {
        "rawConstantIndices": indices,
        "elem_type": element,
        "noWrapFlags": _NO_WRAP,
    }
    if inbounds:
        properties["inbounds"] = _INBOUNDS
    return llvm.GEPOp.create(operands=operands, result_types=[_PTR], properties=properties)


def load(ptr: SSAValue, ty: Attribute, alignment: int | None = None) -> llvm.LoadOp:
    """`llvm.load` of a `ty` from `ptr`."""
    properties: dict[str, Attribute] = {"ordering": _ORDERING}
    if alignment is not None:
        properties["alignment"] = _alignment(alignment)
    return llvm.LoadOp.create(operands=[ptr], result_types=[ty], properties=properties)


def store(value: SSAValue, ptr: SSAValue, alignment: int | None = None) -> llvm.StoreOp:
    """`llvm.store` of `value` at `ptr`."""
    properties: dict[str, Attribute] = {"ordering": _ORDERING}
    if alignment is not None:
        properties["alignment"] = _alignment(alignment)
    return llvm.StoreOp.create(operands=[value, ptr], result_types=[], properties=properties)


def undef(ty: Attribute) -> llvm.UndefOp:
    """`llvm.mlir.undef : ty`."""
    return llvm.UndefOp.create(result_types=[ty])


def shuffle(v1: SSAValue, v2: SSAValue, mask: Sequence[int], ty: Attribute) -> llvm.ShuffleVectorOp:
    """`llvm.shufflevector v1, v2 [mask]` with result type `ty`."""
    return llvm.ShuffleVectorOp.create(
        operands=[v1, v2], result_types=[ty], properties={"mask": _i32_array(tuple(mask))}
    )


def insert_element(vector: SSAValue, value: SSAValue, index: SSAValue) -> llvm.InsertElementOp:
    """`llvm.insertelement value, vector[index]`."""
    return llvm.InsertElementOp.create(operands=[vector, value, index], result_types=[vector.type])


def constant_op(value: Attribute, ty: Attribute) -> llvm.ConstantOp:
    """`llvm.mlir.constant(value) : ty` (`value` an attribute made once, e.g. by
    `arith_to_llvm.constant`'s cache)."""
    return llvm.ConstantOp.create(properties={"value": value}, result_types=[ty])


_NO_FASTMATH = llvm.FastMathAttr(())
_NO_BUNDLES = _i32_array(())


def call_intrinsic(
    name: str, args: Sequence[SSAValue], result_types: Sequence[Attribute]
) -> llvm.CallIntrinsicOp:
    """`llvm.call_intrinsic name(args)` (no fast-math flags, no operand bundles)."""
    return llvm.CallIntrinsicOp.create(
        operands=list(args),
        result_types=list(result_types),
        properties={
            "intrin": _string(name),
            "op_bundle_sizes": _NO_BUNDLES,
            "operandSegmentSizes": _i32_array((len(args), 0)),
            "fastmathFlags": _NO_FASTMATH,
        },
    )


@cache
def _string(text: str) -> StringAttr:
    return StringAttr(text)


def br(dest: Block, *args: SSAValue) -> llvm.BrOp:
    """`llvm.br ^dest(args)`."""
    return llvm.BrOp.create(operands=list(args), successors=[dest])


def cond_br(
    cond: SSAValue,
    then: Block,
    then_args: Sequence[SSAValue],
    other: Block,
    other_args: Sequence[SSAValue],
) -> llvm.CondBrOp:
    """`llvm.cond_br cond, ^then(then_args), ^other(other_args)`."""
    return llvm.CondBrOp.create(
        operands=[cond, *then_args, *other_args],
        successors=[then, other],
        properties={"operandSegmentSizes": _i32_array((1, len(then_args), len(other_args)))},
    )


def icmp(lhs: SSAValue, rhs: SSAValue, predicate: IntegerAttr) -> llvm.ICmpOp:
    """`llvm.icmp predicate lhs, rhs` (`predicate`: an `i64` attribute of the predicate's
    number); an i1 result, or a vector of i1 for vector operands."""
    ty = lhs.type
    result = vector_type(i1, ty.get_shape()[0]) if isinstance(ty, VectorType) else i1
    return llvm.ICmpOp.create(
        operands=[lhs, rhs], result_types=[result], properties={"predicate": predicate}
    )
