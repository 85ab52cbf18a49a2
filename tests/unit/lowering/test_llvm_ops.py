"""`lowering.llvm_ops` builds the same ops as xDSL's constructors: same name, operands,
result types, properties and attributes, verified, printed alike."""

from __future__ import annotations

import io

import pytest
from xdsl.dialects import llvm
from xdsl.dialects.builtin import DenseArrayBase, IntegerAttr, VectorType, f32, i1, i32, i64
from xdsl.dialects.utils.fast_math import FastMathFlag
from xdsl.ir import Block, Operation, Region
from xdsl.printer import Printer

from mlc.lowering import llvm_ops

PTR = llvm.LLVMPointerType()
V8 = VectorType(f32, [8])


def _args() -> Block:
    return Block(arg_types=[PTR, i64, i64, V8, V8])


def _same(fast: Operation, slow: Operation) -> None:
    assert fast.name == slow.name
    assert list(fast.operands) == list(slow.operands)
    assert [r.type for r in fast.results] == [r.type for r in slow.results]
    assert fast.properties == slow.properties
    assert fast.attributes == slow.attributes
    fast.verify()
    assert _printed(fast) == _printed(slow)


def _printed(op: Operation) -> str:
    out = io.StringIO()
    Printer(stream=out).print_op(op)
    return out.getvalue()


def test_vector_type_is_shared_and_equal() -> None:
    assert llvm_ops.vector_type(f32, 8) == V8
    assert llvm_ops.vector_type(f32, 8) is llvm_ops.vector_type(f32, 8)
    assert llvm_ops.vector_type(i1, 4) == VectorType(i1, [4])


@pytest.mark.parametrize("cls", [llvm.AddOp, llvm.SubOp, llvm.MulOp])
def test_overflow_op(cls: type[llvm.ArithmeticBinOpOverflow]) -> None:
    _, i, j, _, _ = _args().args
    _same(llvm_ops.overflow_op(cls, i, j), cls(i, j))


@pytest.mark.parametrize("cls", [llvm.FAddOp, llvm.FSubOp, llvm.FMulOp])
def test_float_op(cls: type[llvm.AbstractFloatArithOp]) -> None:
    _, _, _, x, y = _args().args
    flags = llvm.FastMathAttr((FastMathFlag.ALLOW_CONTRACT,))
    _same(llvm_ops.float_op(cls, x, y, llvm_ops.CONTRACT), cls(x, y, flags))


@pytest.mark.parametrize("inbounds", [True, False])
def test_gep_ssa_and_constant_offsets(inbounds: bool) -> None:
    p, i, _, _, _ = _args().args
    _same(
        llvm_ops.gep(p, i, f32, inbounds),
        llvm.GEPOp(p, [llvm.GEP_USE_SSA_VAL], f32, ssa_indices=[i], inbounds=inbounds),
    )
    _same(llvm_ops.gep(p, 5, f32, inbounds), llvm.GEPOp(p, [5], f32, inbounds=inbounds))


@pytest.mark.parametrize("alignment", [None, 4, 32])
def test_load_and_store(alignment: int | None) -> None:
    p, _, _, x, _ = _args().args
    _same(llvm_ops.load(p, V8, alignment), llvm.LoadOp(p, V8, alignment=alignment))
    _same(llvm_ops.store(x, p, alignment), llvm.StoreOp(x, p, alignment=alignment))


def test_undef_and_shuffle() -> None:
    _, _, _, x, y = _args().args
    _same(llvm_ops.undef(V8), llvm.UndefOp(V8))
    mask = [0, 2, 4, 6, 8, 10, 12, 14]
    _same(
        llvm_ops.shuffle(x, y, mask, V8),
        llvm.ShuffleVectorOp(x, y, DenseArrayBase.from_list(i32, mask), V8),
    )


def test_insert_element_and_constant_ops_match_xdsl_s() -> None:
    from xdsl.dialects.builtin import FloatAttr, IntegerAttr

    block = _args()
    value = FloatAttr(1.5, f32)
    _same(llvm_ops.constant_op(value, f32), llvm.ConstantOp(value, f32))
    c = llvm.ConstantOp(IntegerAttr(0, i64), i64)
    block.add_op(c)
    x = llvm.ConstantOp(value, f32)
    block.add_op(x)
    _same(
        llvm_ops.insert_element(block.args[3], x.result, c.result),
        llvm.InsertElementOp(block.args[3], x.result, c.result),
    )


def test_cached_constants_keep_signed_zeros_and_types_apart() -> None:
    """`arith_to_llvm.constant` makes each attribute once per value and type: -0.0 and
    0.0 (equal as Python floats, and as numpy floats) stay distinct, as do 1 and 1.0."""
    import numpy as np
    from xdsl.builder import Builder, InsertPoint
    from xdsl.dialects.builtin import FloatAttr, IntegerAttr

    from mlc.lowering.arith_to_llvm import constant

    block = Block()
    b = Builder(InsertPoint.at_end(block))
    values = [0.0, -0.0, np.float32(0.0), np.float32(-0.0), 1, 1.0]
    types = [f32, f32, f32, f32, i64, f32]
    made = [constant(b, v, t).owner.value for v, t in zip(values, types)]  # type: ignore[union-attr]
    assert [str(m.value.data) for m in made[:4]] == ["0.0", "-0.0", "0.0", "-0.0"]
    assert isinstance(made[4], IntegerAttr) and isinstance(made[5], FloatAttr)


@pytest.mark.parametrize("results", [[], [V8]])
def test_call_intrinsic(results: list) -> None:
    _, _, _, x, y = _args().args
    _same(
        llvm_ops.call_intrinsic("llvm.maxnum.v8f32", [x, y], results),
        llvm.CallIntrinsicOp("llvm.maxnum.v8f32", [x, y], results),
    )


def test_branches() -> None:
    """Branches built in a block of a region (a terminator verifies only there)."""
    block = _args()
    dest, other = Block(arg_types=[i64, i64]), Block(arg_types=[PTR])
    Region([block, dest, other])
    p, i, j, _, _ = block.args
    compare = llvm_ops.icmp(i, j, _SLT)
    block.add_op(compare)
    c = compare.results[0]
    cases = [
        (llvm_ops.br(dest, i, j), llvm.BrOp(dest, i, j)),
        (llvm_ops.br(other, p), llvm.BrOp(other, p)),
        (llvm_ops.cond_br(c, dest, [i, j], other, [p]), llvm.CondBrOp(c, dest, [i, j], other, [p])),
        (llvm_ops.cond_br(c, other, [p], dest, [i, j]), llvm.CondBrOp(c, other, [p], dest, [i, j])),
    ]
    for fast, slow in cases:
        block.add_op(fast)
        _same(fast, slow)
        block.detach_op(fast)


_SLT = IntegerAttr(2, i64)


def test_icmp_scalars_and_vectors() -> None:
    _, i, j, _, _ = _args().args
    _same(llvm_ops.icmp(i, j, _SLT), llvm.ICmpOp(i, j, _SLT))
    lanes = Block(arg_types=[VectorType(i64, [8])] * 2).args
    _same(llvm_ops.icmp(*lanes, _SLT), llvm.ICmpOp(*lanes, _SLT))
