"""Scalar `arith` / `math` ops -> xDSL's `llvm` dialect, as tables of builders.

Used by `convert-tl-to-llvm` for `tl.block` bodies and for index arithmetic outside them;
combined pipelines reuse `lower_scalar_op` directly. `index` is `i64`. No fast-math flags
are set: every float op keeps IEEE semantics (the interpreter's).

Where MLIR leaves behaviour undefined and the reference interpreter defines it, the
lowering follows the interpreter so that compiled code never traps:

    divsi(a, b) -> sdiv(a, b') with b' = 1 where b == 0 or (a, b) == (MIN, -1)
                   (interpreter: a / 0 = a, MIN / -1 = MIN; remainders 0)
    divui / remui(a, 0) -> udiv / urem(a, 1)
    floordivsi(a, 0) -> a (the interpreter's numpy gives 0: documented difference)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from xdsl.builder import Builder
from xdsl.dialects import arith, llvm
from xdsl.dialects import math as xmath
from xdsl.dialects.builtin import (
    AnyFloat,
    Float32Type,
    Float64Type,
    FloatAttr,
    IndexType,
    IntegerAttr,
    IntegerType,
    i1,
    i64,
)
from xdsl.ir import Attribute, Operation, SSAValue

__all__ = [
    "LlvmLoweringError",
    "SCALAR_LOWERINGS",
    "constant",
    "llvm_scalar_type",
    "lower_scalar_op",
]


class LlvmLoweringError(Exception):
    """An op or type the LLVM lowering does not handle (names the op)."""


def llvm_scalar_type(ty: Attribute) -> Attribute:
    """The LLVM-dialect type of a builtin scalar type (`index` is `i64`)."""
    if isinstance(ty, IndexType):
        return i64
    if isinstance(ty, IntegerType | Float32Type | Float64Type):
        return ty
    raise LlvmLoweringError(f"type {ty} is not supported by the LLVM lowering yet")


def constant(b: Builder, value: int | float, ty: Attribute) -> SSAValue:
    """`llvm.mlir.constant` of scalar type `ty` (builtin or index)."""
    ty = llvm_scalar_type(ty)
    if isinstance(ty, AnyFloat):
        attr: Attribute = FloatAttr(float(value), ty)
    else:
        assert isinstance(ty, IntegerType)
        v = int(value)
        if ty.width.data == 1:
            v = 1 if v else 0
        attr = IntegerAttr(v, ty)
    return b.insert(llvm.ConstantOp(attr, ty)).result


Lowering = Callable[[Builder, Operation, Sequence[SSAValue]], SSAValue]
SCALAR_LOWERINGS: dict[type[Operation], Lowering] = {}


def _binary(op_cls: Callable[[SSAValue, SSAValue], Operation]) -> Lowering:
    def lower(b: Builder, op: Operation, args: Sequence[SSAValue]) -> SSAValue:
        return b.insert(op_cls(args[0], args[1])).results[0]

    return lower


def _intrinsic(name: str) -> Lowering:
    """A call of the overloaded intrinsic `llvm.<name>.<f32|f64>` on every operand."""

    def lower(b: Builder, op: Operation, args: Sequence[SSAValue]) -> SSAValue:
        ty = llvm_scalar_type(op.results[0].type)
        suffix = "f32" if isinstance(ty, Float32Type) else "f64"
        call = llvm.CallIntrinsicOp(f"llvm.{name}.{suffix}", list(args), [ty])
        return b.insert(call).results[0]

    return lower


def _icmp_select(pred: str) -> Lowering:
    """max/min on integers: select(icmp pred a b, a, b)."""

    def lower(b: Builder, op: Operation, args: Sequence[SSAValue]) -> SSAValue:
        c = _icmp(b, pred, args[0], args[1])
        return b.insert(llvm.SelectOp(c, args[0], args[1])).results[0]

    return lower


_ICMP = ["eq", "ne", "slt", "sle", "sgt", "sge", "ult", "ule", "ugt", "uge"]


def _icmp(b: Builder, pred: str, x: SSAValue, y: SSAValue) -> SSAValue:
    return b.insert(llvm.ICmpOp(x, y, IntegerAttr(_ICMP.index(pred), i64))).results[0]


def _safe_divisor(b: Builder, x: SSAValue, y: SSAValue, signed: bool) -> SSAValue:
    ty = x.type
    assert isinstance(ty, IntegerType)
    one = constant(b, 1, ty)
    bad = _icmp(b, "eq", y, constant(b, 0, ty))
    if signed and ty.width.data > 1:
        width = ty.width.data
        is_min = _icmp(b, "eq", x, constant(b, -(1 << (width - 1)), ty))
        is_m1 = _icmp(b, "eq", y, constant(b, -1, ty))
        overflow = b.insert(llvm.AndOp(is_min, is_m1)).results[0]
        bad = b.insert(llvm.OrOp(bad, overflow)).results[0]
    return b.insert(llvm.SelectOp(bad, one, y)).results[0]


def _division(op_cls: Callable[[SSAValue, SSAValue], Operation], signed: bool) -> Lowering:
    def lower(b: Builder, op: Operation, args: Sequence[SSAValue]) -> SSAValue:
        d = _safe_divisor(b, args[0], args[1], signed)
        return b.insert(op_cls(args[0], d)).results[0]

    return lower


def _floordivsi(b: Builder, op: Operation, args: Sequence[SSAValue]) -> SSAValue:
    # floor(a / b) = q - 1 where the remainder is non-zero and its sign differs from b's
    x, y = args
    d = _safe_divisor(b, x, y, signed=True)
    q = b.insert(llvm.SDivOp(x, d)).results[0]
    r = b.insert(llvm.SRemOp(x, d)).results[0]
    zero = constant(b, 0, x.type)
    nonzero = _icmp(b, "ne", r, zero)
    signs = b.insert(llvm.XOrOp(r, d)).results[0]
    differ = _icmp(b, "slt", signs, zero)
    adjust = b.insert(llvm.AndOp(nonzero, differ)).results[0]
    wide = b.insert(llvm.ZExtOp(adjust, x.type)).results[0]
    return b.insert(llvm.SubOp(q, wide)).results[0]


def _constant_op(b: Builder, op: Operation, args: Sequence[SSAValue]) -> SSAValue:
    assert isinstance(op, arith.ConstantOp)
    value = op.value
    if not isinstance(value, IntegerAttr | FloatAttr):
        raise LlvmLoweringError(f"arith.constant {value} is not a scalar")
    return constant(b, value.value.data, op.result.type)


def _cmpi(b: Builder, op: Operation, args: Sequence[SSAValue]) -> SSAValue:
    assert isinstance(op, arith.CmpiOp)
    pred = IntegerAttr(op.predicate.value.data, i64)  # same numbering as llvm.icmp
    return b.insert(llvm.ICmpOp(args[0], args[1], pred)).results[0]


def _cmpf(b: Builder, op: Operation, args: Sequence[SSAValue]) -> SSAValue:
    assert isinstance(op, arith.CmpfOp)
    pred = op.predicate.value.data  # same numbering as llvm.fcmp
    if pred in (0, 15):
        return constant(b, pred == 15, i1)
    return b.insert(llvm.FCmpOp(args[0], args[1], IntegerAttr(pred, i64))).results[0]


def _select(b: Builder, op: Operation, args: Sequence[SSAValue]) -> SSAValue:
    return b.insert(llvm.SelectOp(args[0], args[1], args[2])).results[0]


def _negf(b: Builder, op: Operation, args: Sequence[SSAValue]) -> SSAValue:
    return b.insert(llvm.FNegOp(args[0])).results[0]


def _rsqrt(b: Builder, op: Operation, args: Sequence[SSAValue]) -> SSAValue:
    root = _intrinsic("sqrt")(b, op, args)
    one = constant(b, 1.0, root.type)
    return b.insert(llvm.FDivOp(one, root)).results[0]


def _int_cast(b: Builder, op: Operation, args: Sequence[SSAValue]) -> SSAValue:
    """index_cast / extsi / extui / trunci: sext, zext or trunc by width."""
    src, dst = llvm_scalar_type(op.operands[0].type), llvm_scalar_type(op.results[0].type)
    assert isinstance(src, IntegerType) and isinstance(dst, IntegerType)
    sw, dw = src.width.data, dst.width.data
    if sw == dw:
        return args[0]
    if dw < sw:
        return b.insert(llvm.TruncOp(args[0], dst)).results[0]
    # i1 is signed in the interpreter's extsi/index_cast (true -> -1), like MLIR
    if isinstance(op, arith.ExtUIOp):
        return b.insert(llvm.ZExtOp(args[0], dst)).results[0]
    return b.insert(llvm.SExtOp(args[0], dst)).results[0]


def _cast(op_cls: Callable[[SSAValue, Attribute], Operation]) -> Lowering:
    def lower(b: Builder, op: Operation, args: Sequence[SSAValue]) -> SSAValue:
        dst = llvm_scalar_type(op.results[0].type)
        return b.insert(op_cls(args[0], dst)).results[0]

    return lower


SCALAR_LOWERINGS.update(
    {
        arith.ConstantOp: _constant_op,
        # a + b -> llvm.add (wrapping), float ops without fast-math flags
        arith.AddiOp: _binary(llvm.AddOp),
        arith.SubiOp: _binary(llvm.SubOp),
        arith.MuliOp: _binary(llvm.MulOp),
        arith.AndIOp: _binary(llvm.AndOp),
        arith.OrIOp: _binary(llvm.OrOp),
        arith.XOrIOp: _binary(llvm.XOrOp),
        arith.DivSIOp: _division(llvm.SDivOp, signed=True),
        arith.RemSIOp: _division(llvm.SRemOp, signed=True),
        arith.DivUIOp: _division(llvm.UDivOp, signed=False),
        arith.RemUIOp: _division(llvm.URemOp, signed=False),
        arith.FloorDivSIOp: _floordivsi,
        arith.MaxSIOp: _icmp_select("sgt"),
        arith.MinSIOp: _icmp_select("slt"),
        arith.MaxUIOp: _icmp_select("ugt"),
        arith.MinUIOp: _icmp_select("ult"),
        arith.CmpiOp: _cmpi,
        arith.CmpfOp: _cmpf,
        arith.SelectOp: _select,
        arith.AddfOp: _binary(llvm.FAddOp),
        arith.SubfOp: _binary(llvm.FSubOp),
        arith.MulfOp: _binary(llvm.FMulOp),
        arith.DivfOp: _binary(llvm.FDivOp),
        arith.NegfOp: _negf,
        # maximumf propagates NaN (llvm.maximum); maxnumf ignores it (llvm.maxnum)
        arith.MaximumfOp: _intrinsic("maximum"),
        arith.MinimumfOp: _intrinsic("minimum"),
        arith.MaxnumfOp: _intrinsic("maxnum"),
        arith.MinnumfOp: _intrinsic("minnum"),
        arith.IndexCastOp: _int_cast,
        arith.ExtSIOp: _int_cast,
        arith.ExtUIOp: _int_cast,
        arith.TruncIOp: _int_cast,
        arith.SIToFPOp: _cast(llvm.SIToFPOp),
        arith.ExtFOp: _cast(llvm.FPExtOp),
        arith.TruncFOp: _cast(llvm.FPTruncOp),
        arith.BitcastOp: _cast(llvm.BitcastOp),
        xmath.AbsFOp: _intrinsic("fabs"),
        xmath.CeilOp: _intrinsic("ceil"),
        xmath.FloorOp: _intrinsic("floor"),
        xmath.TruncOp: _intrinsic("trunc"),
        xmath.RoundOp: _intrinsic("round"),
        xmath.RoundEvenOp: _intrinsic("roundeven"),
        xmath.SqrtOp: _intrinsic("sqrt"),
        xmath.RsqrtOp: _rsqrt,
        xmath.ExpOp: _intrinsic("exp"),
        xmath.Exp2Op: _intrinsic("exp2"),
        xmath.LogOp: _intrinsic("log"),
        xmath.Log2Op: _intrinsic("log2"),
        xmath.Log10Op: _intrinsic("log10"),
        xmath.SinOp: _intrinsic("sin"),
        xmath.CosOp: _intrinsic("cos"),
        xmath.PowFOp: _intrinsic("pow"),
        xmath.CopySignOp: _intrinsic("copysign"),
        xmath.FmaOp: _intrinsic("fma"),
    }
)


def lower_scalar_op(b: Builder, op: Operation, args: Sequence[SSAValue]) -> SSAValue:
    """Insert the LLVM-dialect ops computing `op` on the (already lowered) `args`."""
    lowering = SCALAR_LOWERINGS.get(type(op))
    if lowering is None:
        raise LlvmLoweringError(f"{op.name} has no LLVM lowering yet")
    if len(op.results) != 1:
        raise LlvmLoweringError(f"{op.name}: expected one result")
    return lowering(b, op, args)
