"""Scalar `arith` / `math` ops -> xDSL's `llvm` dialect, as tables of builders.

Used by `convert-tl-to-llvm` for `tl.block` bodies and for index arithmetic outside them;
combined pipelines reuse `lower_scalar_op` directly. `index` is `i64`. No fast-math flags
are set except `contract` on fadd / fsub / fmul (a*b+c may become one FMA); otherwise
every float op keeps IEEE semantics (the interpreter's). The same lowerings build vector
code: when the lowered operands are `vector<N x T>` values the result is too
(`result_type`), and `select` picks per lane.

Where MLIR leaves behaviour undefined and the reference interpreter defines it, the
lowering follows the interpreter so that compiled code never traps:

    divsi(a, b) -> sdiv(a, b') with b' = 1 where b == 0 or (a, b) == (MIN, -1)
                   (interpreter: a / 0 = a, MIN / -1 = MIN; remainders 0)
    divui / remui(a, 0) -> udiv / urem(a, 1)
    floordivsi(a, 0) -> a (the interpreter's numpy gives 0: documented difference)
"""

from __future__ import annotations

import functools
import struct
from collections.abc import Callable, Sequence

import ml_dtypes
import numpy as np
from xdsl.builder import Builder
from xdsl.dialects import arith, llvm
from xdsl.dialects import math as xmath
from xdsl.dialects.builtin import (
    AnyFloat,
    BFloat16Type,
    DenseIntOrFPElementsAttr,
    Float16Type,
    Float32Type,
    Float64Type,
    FloatAttr,
    IndexType,
    IntegerAttr,
    IntegerType,
    VectorType,
    f32,
    i16,
    i32,
    i64,
)
from xdsl.ir import Attribute, Operation, SSAValue

from mlc.dialects import llvmx
from mlc.lowering import llvm_ops
from mlc.lowering.llvm_ops import CONTRACT, constant_op, float_op, overflow_op, vector_type

__all__ = [
    "LlvmLoweringError",
    "SCALAR_LOWERINGS",
    "constant",
    "constant_key",
    "lanes_of",
    "result_type",
    "select",
    "llvm_scalar_type",
    "lower_scalar_op",
]


class LlvmLoweringError(Exception):
    """An op or type the LLVM lowering does not handle (names the op)."""


def llvm_scalar_type(ty: Attribute) -> Attribute:
    """The LLVM-dialect type of a builtin scalar type (`index` is `i64`; `bf16` is `i16`
    holding the bits, since llvmlite has no `bfloat`: see `_extf` / `_truncf`)."""
    if isinstance(ty, IndexType):
        return i64
    if isinstance(ty, IntegerType | Float16Type | Float32Type | Float64Type):
        return ty
    if isinstance(ty, BFloat16Type):
        return i16
    raise LlvmLoweringError(f"type {ty} is not supported by the LLVM lowering yet")


def lanes_of(value: SSAValue) -> int:
    """1 for a scalar, the lane count for a `vector<N x T>` value."""
    ty = value.type
    return ty.get_shape()[0] if isinstance(ty, VectorType) else 1


def _element(ty: Attribute) -> Attribute:
    """The element type of a vector type, a scalar type itself."""
    return ty.element_type if isinstance(ty, VectorType) else ty


def _like(ty: Attribute, lanes: int) -> Attribute:
    """Scalar type `ty`, as a vector of `lanes` lanes where lanes > 1."""
    return vector_type(ty, lanes) if lanes > 1 else ty


def result_type(op: Operation, args: Sequence[SSAValue]) -> Attribute:
    """The LLVM type of `op`'s result: its scalar type, as a vector when the (lowered)
    operands are vectors (a `tl.block` body in a vectorized loop)."""
    ty = llvm_scalar_type(op.results[0].type)
    return _like(ty, max((lanes_of(a) for a in args), default=1))


def constant(b: Builder, value: int | float, ty: Attribute) -> SSAValue:
    """`llvm.mlir.constant` of scalar type `ty` (builtin or index), or a splat of a
    `vector<N x T>` type."""
    value_attr, result_type = _constant_attributes(constant_key(value), ty)
    return b.insert(constant_op(value_attr, result_type)).result


def constant_key(value: int | float) -> int | bytes:
    """`value` as a cache key of constants: an int itself, a float (numpy's too) its bits
    (-0.0 is not 0.0, every NaN is its own)."""
    return struct.pack("<d", value) if isinstance(value, float | np.floating) else value


@functools.cache
def _constant_attributes(key: int | bytes, ty: Attribute) -> tuple[Attribute, Attribute]:
    """The value attribute and result type of `constant`, made once per value and type
    (xDSL builds an attribute in 10-100 us; a CNN's lowering asks for thousands). A float
    is keyed by its bits (-0.0 is not 0.0, every NaN is its own)."""
    value: int | float = struct.unpack("<d", key)[0] if isinstance(key, bytes) else key
    if isinstance(ty, VectorType):
        element = llvm_scalar_type(ty.element_type)
        vty = VectorType(element, ty.get_shape())
        if isinstance(ty.element_type, BFloat16Type):
            v: int | float = _bf16_bits(value)
        elif isinstance(element, AnyFloat):
            v = float(value)
        else:
            v = _int_value(value, element)
        return DenseIntOrFPElementsAttr.from_list(vty, [v] * ty.get_shape()[0]), vty
    if isinstance(ty, BFloat16Type):
        return IntegerAttr(_bf16_bits(value), i16), i16
    ty = llvm_scalar_type(ty)
    if isinstance(ty, AnyFloat):
        return FloatAttr(float(value), ty), ty
    assert isinstance(ty, IntegerType)
    return IntegerAttr(_int_value(value, ty), ty), ty


def _bf16_bits(value: int | float) -> int:
    """The bits of `value` as bf16 (round to nearest even, as ml_dtypes), as an i16."""
    return int(np.array(value, ml_dtypes.bfloat16).view(np.int16))


def _int_value(value: int | float, ty: Attribute) -> int:
    assert isinstance(ty, IntegerType)
    v = int(value)
    return (1 if v else 0) if ty.width.data == 1 else v


Lowering = Callable[[Builder, Operation, Sequence[SSAValue]], SSAValue]
SCALAR_LOWERINGS: dict[type[Operation], Lowering] = {}


def _binary(op_cls: Callable[[SSAValue, SSAValue], Operation]) -> Lowering:
    if isinstance(op_cls, type) and issubclass(op_cls, llvm.ArithmeticBinOpOverflow):
        overflow_cls = op_cls  # built cheaply: the lowering's most frequent ops

        def lower_overflow(b: Builder, op: Operation, args: Sequence[SSAValue]) -> SSAValue:
            return b.insert(overflow_op(overflow_cls, args[0], args[1])).results[0]

        return lower_overflow

    def lower(b: Builder, op: Operation, args: Sequence[SSAValue]) -> SSAValue:
        return b.insert(op_cls(args[0], args[1])).results[0]

    return lower


def _contractable(op_cls: type[llvm.AbstractFloatArithOp]) -> Lowering:
    """A float binary op with the `contract` fast-math flag: LLVM may fuse a*b+c into one
    FMA (rounding once instead of twice: more accurate, not bit-identical to the
    interpreter). No other fast-math flag is set: NaN, inf and signed zeros keep IEEE
    semantics."""

    def lower(b: Builder, op: Operation, args: Sequence[SSAValue]) -> SSAValue:
        return b.insert(float_op(op_cls, args[0], args[1], CONTRACT)).results[0]

    return lower


def _intrinsic(name: str) -> Lowering:
    """A call of the overloaded intrinsic `llvm.<name>.<f32|f64>` on every operand."""

    def lower(b: Builder, op: Operation, args: Sequence[SSAValue]) -> SSAValue:
        ty = result_type(op, args)
        element = llvm_scalar_type(op.results[0].type)
        suffix = "f32" if isinstance(element, Float32Type) else "f64"
        if ty != element:
            suffix = f"v{lanes_of(args[0])}{suffix}"
        call = llvm_ops.call_intrinsic(f"llvm.{name}.{suffix}", list(args), [ty])
        return b.insert(call).results[0]

    return lower


def _icmp_select(pred: str) -> Lowering:
    """max/min on integers: select(icmp pred a b, a, b)."""

    def lower(b: Builder, op: Operation, args: Sequence[SSAValue]) -> SSAValue:
        c = _icmp(b, pred, args[0], args[1])
        return select(b, c, args[0], args[1])

    return lower


def select(b: Builder, cond: SSAValue, x: SSAValue, y: SSAValue) -> SSAValue:
    """`cond ? x : y`; a `vector<N x i1>` condition picks per lane.

    xDSL's `llvm.select` takes a scalar `i1` only, so a per-lane select is written as the
    bitwise blend `(x & m) | (y & ~m)` with `m = sext(cond)` (floats through a bitcast),
    which LLVM's instcombine turns back into one vector select (a blend instruction)."""
    if lanes_of(cond) == 1:
        return b.insert(llvm.SelectOp(cond, x, y)).results[0]
    vty = x.type
    assert isinstance(vty, VectorType)
    element = vty.element_type
    bits = element.width.data if isinstance(element, IntegerType) else element.bitwidth
    ity = VectorType(IntegerType(bits), vty.get_shape())
    if bits == 1:
        m = cond
    else:
        m = b.insert(llvm.SExtOp(cond, ity)).results[0]
    if ity != vty:
        x = b.insert(llvm.BitcastOp(x, ity)).results[0]
        y = b.insert(llvm.BitcastOp(y, ity)).results[0]
    ones = constant(b, -1, ity)
    not_m = b.insert(llvm.XOrOp(m, ones)).results[0]
    xm = b.insert(llvm.AndOp(x, m)).results[0]
    ym = b.insert(llvm.AndOp(y, not_m)).results[0]
    out = b.insert(llvm.OrOp(xm, ym)).results[0]
    if ity != vty:
        out = b.insert(llvm.BitcastOp(out, vty)).results[0]
    return out


_ICMP = ["eq", "ne", "slt", "sle", "sgt", "sge", "ult", "ule", "ugt", "uge"]


def _icmp(b: Builder, pred: str, x: SSAValue, y: SSAValue) -> SSAValue:
    return b.insert(llvm_ops.icmp(x, y, IntegerAttr(_ICMP.index(pred), i64))).results[0]


def _safe_divisor(b: Builder, x: SSAValue, y: SSAValue, signed: bool) -> SSAValue:
    ty = x.type
    element = _element(ty)
    assert isinstance(element, IntegerType)
    one = constant(b, 1, ty)
    bad = _icmp(b, "eq", y, constant(b, 0, ty))
    if signed and element.width.data > 1:
        width = element.width.data
        is_min = _icmp(b, "eq", x, constant(b, -(1 << (width - 1)), ty))
        is_m1 = _icmp(b, "eq", y, constant(b, -1, ty))
        overflow = b.insert(llvm.AndOp(is_min, is_m1)).results[0]
        bad = b.insert(llvm.OrOp(bad, overflow)).results[0]
    return select(b, bad, one, y)


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
    return constant(b, value.value.data, op.result.type)  # uniform: splatted where used


def _cmpi(b: Builder, op: Operation, args: Sequence[SSAValue]) -> SSAValue:
    assert isinstance(op, arith.CmpiOp)
    pred = IntegerAttr(op.predicate.value.data, i64)  # same numbering as llvm.icmp
    return b.insert(llvm_ops.icmp(args[0], args[1], pred)).results[0]


def _cmpf(b: Builder, op: Operation, args: Sequence[SSAValue]) -> SSAValue:
    assert isinstance(op, arith.CmpfOp)
    pred = op.predicate.value.data  # same numbering as llvm.fcmp
    if pred in (0, 15):
        return constant(b, pred == 15, result_type(op, args))
    return fcmp(b, args[0], args[1], pred)


def fcmp(b: Builder, x: SSAValue, y: SSAValue, pred: int) -> SSAValue:
    """`x <pred> y` (`arith.cmpf` numbering, the same as llvm.fcmp's), scalars or vectors."""
    if lanes_of(x) > 1:  # xDSL's llvm.fcmp is scalar only
        return b.insert(llvmx.FCmpOp(x, y, llvmx.FCMP_PREDICATES[pred])).res
    return b.insert(llvm.FCmpOp(x, y, IntegerAttr(pred, i64))).results[0]


def _select(b: Builder, op: Operation, args: Sequence[SSAValue]) -> SSAValue:
    return select(b, args[0], args[1], args[2])


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
    dst_type = result_type(op, args)
    sw, dw = src.width.data, dst.width.data
    if sw == dw:
        return args[0]
    if dw < sw:
        return b.insert(llvm.TruncOp(args[0], dst_type)).results[0]
    # i1 is signed in the interpreter's extsi/index_cast (true -> -1), like MLIR
    if isinstance(op, arith.ExtUIOp):
        return b.insert(llvm.ZExtOp(args[0], dst_type)).results[0]
    return b.insert(llvm.SExtOp(args[0], dst_type)).results[0]


def _bf16_to_f32(b: Builder, bits: SSAValue) -> SSAValue:
    """bf16 bits (i16) -> f32: the bits are the top half of the f32's."""
    n = lanes_of(bits)
    wide = b.insert(llvm.ZExtOp(bits, _like(i32, n))).results[0]
    shifted = b.insert(llvm.ShlOp(wide, constant(b, 16, _like(i32, n)))).results[0]
    return b.insert(llvm.BitcastOp(shifted, _like(f32, n))).results[0]


def _f32_to_bf16(b: Builder, x: SSAValue) -> SSAValue:
    """f32 -> bf16 bits (i16), rounding to nearest even; NaN stays a (quiet) NaN."""
    n = lanes_of(x)
    i32n = _like(i32, n)
    bits = b.insert(llvm.BitcastOp(x, i32n)).results[0]
    sixteen = constant(b, 16, i32n)
    high = b.insert(llvm.LShrOp(bits, sixteen)).results[0]
    lsb = b.insert(llvm.AndOp(high, constant(b, 1, i32n))).results[0]
    bias = b.insert(llvm.AddOp(lsb, constant(b, 0x7FFF, i32n))).results[0]
    rounded = b.insert(llvm.AddOp(bits, bias)).results[0]
    rounded = b.insert(llvm.LShrOp(rounded, sixteen)).results[0]
    quiet = b.insert(llvm.OrOp(high, constant(b, 0x40, i32n))).results[0]
    nan = fcmp(b, x, x, llvmx.FCMP_PREDICATES.index("uno"))
    out = select(b, nan, quiet, rounded)
    return b.insert(llvm.TruncOp(out, _like(i16, n))).results[0]


def _extf(b: Builder, op: Operation, args: Sequence[SSAValue]) -> SSAValue:
    """f16 / f32 -> wider: fpext; bf16 -> f32 by its bits (then fpext to f64)."""
    x = args[0]
    if isinstance(_element(op.operands[0].type), BFloat16Type):
        x = _bf16_to_f32(b, x)
        if isinstance(_element(op.results[0].type), Float32Type):
            return x
    return b.insert(llvm.FPExtOp(x, result_type(op, args))).results[0]


def _truncf(b: Builder, op: Operation, args: Sequence[SSAValue]) -> SSAValue:
    """-> f16 / f32: fptrunc; -> bf16 by bits, from f32 (an f64 is rounded to f32 first:
    two roundings, which differ from one only on exact ties of the f32 rounding)."""
    x = args[0]
    if isinstance(_element(op.results[0].type), BFloat16Type):
        if not isinstance(_element(op.operands[0].type), Float32Type):
            x = b.insert(llvm.FPTruncOp(x, _like(f32, lanes_of(x)))).results[0]
        return _f32_to_bf16(b, x)
    return b.insert(llvm.FPTruncOp(x, result_type(op, args))).results[0]


def _cast(op_cls: Callable[[SSAValue, Attribute], Operation]) -> Lowering:
    def lower(b: Builder, op: Operation, args: Sequence[SSAValue]) -> SSAValue:
        return b.insert(op_cls(args[0], result_type(op, args))).results[0]

    return lower


SCALAR_LOWERINGS.update(
    {
        arith.ConstantOp: _constant_op,
        # a + b -> llvm.add (wrapping); float ops only with `contract` (see above)
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
        arith.AddfOp: _contractable(llvm.FAddOp),
        arith.SubfOp: _contractable(llvm.FSubOp),
        arith.MulfOp: _contractable(llvm.FMulOp),
        arith.DivfOp: _binary(llvm.FDivOp),
        # float `%` of tensor expressions: C fmod (xDSL has no arith.remf)
        llvm.FRemOp: _binary(llvm.FRemOp),
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
        arith.ExtFOp: _extf,
        arith.TruncFOp: _truncf,
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


# -- conversions, shifts, integer bit ops and libm functions ---------------------------------
#
# Float -> integer follows the interpreter (numpy on x86-64), never LLVM's poison:
#     fptosi(x) -> trunc(cvt64(x)),  cvt64(x) = trunc-toward-zero to i64 where x is in
#                  [-2^63, 2^63), else INT64_MIN (NaN, +-inf, out of range)
#     fptoui(x) -> trunc(x >= 2^63 ? cvt64(x - 2^63) ^ INT64_MIN : cvt64(x))
#                  (so -1.0 -> all ones, +inf and >= 2^64 -> 0, NaN -> 2^63)
# Shifts by an amount >= the width (unsigned) give numpy's results, not poison:
#     shli / shrui -> 0,  shrsi -> the sign (a >> (width - 1)).


def _vector_like(ty: Attribute, like: Attribute) -> Attribute:
    """`ty` as a vector of `like`'s lane count when `like` is a vector type."""
    return VectorType(ty, like.get_shape()) if isinstance(like, VectorType) else ty


def _overload_suffix(ty: Attribute) -> str:
    """The intrinsic name suffix of an LLVM type: i64, f32, v8f32, ..."""
    if isinstance(ty, VectorType):
        return f"v{ty.get_shape()[0]}{_overload_suffix(ty.element_type)}"
    if isinstance(ty, IntegerType):
        return f"i{ty.width.data}"
    return "f32" if isinstance(ty, Float32Type) else "f64"


def _cvt64(b: Builder, x: SSAValue) -> SSAValue:
    """x truncated toward zero to i64; INT64_MIN where that is out of range or x is NaN
    (x86's `cvttsd2si`, which numpy's float -> int64 conversion gives)."""
    wide = _vector_like(i64, x.type)
    name = f"llvm.fptosi.sat.{_overload_suffix(wide)}.{_overload_suffix(x.type)}"
    sat = b.insert(llvm_ops.call_intrinsic(name, [x], [wide])).results[0]
    # below -2^63 saturates to INT64_MIN already; NaN compares unordered (false)
    in_range = _fcmp(b, "olt", x, constant(b, 2.0**63, x.type))
    return select(b, in_range, sat, constant(b, -(2**63), wide))


_FCMP = ["false", "oeq", "ogt", "oge", "olt", "ole", "one", "ord"]


def _fcmp(b: Builder, pred: str, x: SSAValue, y: SSAValue) -> SSAValue:
    if lanes_of(x) > 1:  # xDSL's llvm.fcmp is scalar only
        return b.insert(llvmx.FCmpOp(x, y, pred)).res
    return b.insert(llvm.FCmpOp(x, y, IntegerAttr(_FCMP.index(pred), i64))).results[0]


def _from_i64(b: Builder, op: Operation, args: Sequence[SSAValue], wide: SSAValue) -> SSAValue:
    """An i64 (vector) value truncated to `op`'s integer result type."""
    ty = result_type(op, args)
    element = llvm_scalar_type(op.results[0].type)
    assert isinstance(element, IntegerType)
    if element.width.data == 64:
        return wide
    return b.insert(llvm.TruncOp(wide, ty)).results[0]


def _float_call(b: Builder, name: str, x: SSAValue) -> SSAValue:
    """`llvm.<name>` (floor, trunc, ...) of a float scalar or vector."""
    return b.insert(
        llvm_ops.call_intrinsic(f"llvm.{name}.{_overload_suffix(x.type)}", [x], [x.type])
    ).results[0]


def _low32_of_cvt64(b: Builder, x: SSAValue, unsigned: bool) -> SSAValue:
    """The low 32 bits of `_cvt64(x)` without 64-bit conversions (AVX2 has no packed
    float -> i64; these vectorize as 32-bit `cvttps2dq`):

        t = trunc(x)
        |t| < 2^31:          fptosi(t)
        2^31 <= |t| < 2^63:  r = t - floor(t / 2^32) * 2^32 (exact: t is an integer and r
                             has at most 32 significant bits), then r or r - 2^32 as i32
        else (NaN, inf):     0 (INT64_MIN's low bits)

    `unsigned`: the low bits of `_fptoui`'s result instead, which is the same after
    t -= 2^63 where t >= 2^63 (its XOR with INT64_MIN leaves the low bits alone)."""
    ty = x.type
    wide = _vector_like(i32, ty)
    t = _float_call(b, "trunc", x)
    if unsigned:
        two63 = constant(b, 2.0**63, ty)
        big = _fcmp(b, "oge", t, two63)
        t = select(b, big, b.insert(llvm.FSubOp(t, two63)).results[0], t)
    magnitude = _float_call(b, "fabs", t)
    two32 = constant(b, 2.0**32, ty)
    scaled = b.insert(llvm.FMulOp(t, constant(b, 2.0**-32, ty))).results[0]
    wraps = b.insert(llvm.FMulOp(_float_call(b, "floor", scaled), two32)).results[0]
    r = b.insert(llvm.FSubOp(t, wraps)).results[0]
    high = _fcmp(b, "oge", r, constant(b, 2.0**31, ty))
    signed = select(b, high, b.insert(llvm.FSubOp(r, two32)).results[0], r)
    small = _fcmp(b, "olt", magnitude, constant(b, 2.0**31, ty))
    in_range = _fcmp(b, "olt", magnitude, constant(b, 2.0**63, ty))
    value = select(b, small, t, select(b, in_range, signed, constant(b, 0.0, ty)))
    return b.insert(llvmx.FPToSIOp(value, wide)).res  # every lane in [-2^31, 2^31)


_UPPER_BOUNDS = (arith.MinimumfOp, arith.MinnumfOp)
_LOWER_BOUNDS = (arith.MaximumfOp, arith.MaxnumfOp)


def _constant_float(value: SSAValue) -> float | None:
    owner = value.owner
    if isinstance(owner, arith.ConstantOp) and isinstance(owner.value, FloatAttr):
        return owner.value.value.data
    return None


def _clamped_bounds(value: SSAValue) -> tuple[float, float] | None:
    """(lo, hi) when `value` is `min(max(x, lo), hi)` or `max(min(x, hi), lo)` of float
    constants (NaN-propagating or not): every lane is then in [lo, hi] or NaN."""
    outer = value.owner
    if not isinstance(outer, _UPPER_BOUNDS + _LOWER_BOUNDS):
        return None
    first = _constant_float(outer.operands[1])
    inner = outer.operands[0].owner
    if first is None or not isinstance(inner, _UPPER_BOUNDS + _LOWER_BOUNDS):
        return None
    second = _constant_float(inner.operands[1])
    if second is None or isinstance(inner, _UPPER_BOUNDS) == isinstance(outer, _UPPER_BOUNDS):
        return None
    return (second, first) if isinstance(outer, _UPPER_BOUNDS) else (first, second)


def _narrow(b: Builder, op: Operation, args: Sequence[SSAValue], unsigned: bool) -> SSAValue | None:
    """`_low32_of_cvt64` truncated to the result type, when that has 32 bits or fewer.

    A value clamped to constant bounds inside (-2^31, 2^31) (`quantize_linear`'s
    saturation) converts with one `cvttps2dq` instead: in range the truncation is exact,
    and a NaN lane converts as 0, which is the low 16 bits of `_cvt64`'s INT64_MIN, so
    results of 16 bits or fewer are the same."""
    element = llvm_scalar_type(op.results[0].type)
    assert isinstance(element, IntegerType)
    if element.width.data > 32:
        return None
    bounds = _clamped_bounds(op.operands[0])
    if (
        bounds is not None
        and element.width.data <= 16
        and -(2.0**31) < bounds[0] <= bounds[1] < 2.0**31
    ):
        x = args[0]
        ordered = select(b, _fcmp(b, "ord", x, x), x, constant(b, 0.0, x.type))
        low = b.insert(llvmx.FPToSIOp(ordered, _vector_like(i32, x.type))).res
        return b.insert(llvm.TruncOp(low, result_type(op, args))).results[0]
    low = _low32_of_cvt64(b, args[0], unsigned)
    if element.width.data == 32:
        return low
    return b.insert(llvm.TruncOp(low, result_type(op, args))).results[0]


def _fptosi(b: Builder, op: Operation, args: Sequence[SSAValue]) -> SSAValue:
    narrow = _narrow(b, op, args, unsigned=False)
    if narrow is not None:
        return narrow
    return _from_i64(b, op, args, _cvt64(b, args[0]))


def _fptoui(b: Builder, op: Operation, args: Sequence[SSAValue]) -> SSAValue:
    narrow = _narrow(b, op, args, unsigned=True)
    if narrow is not None:
        return narrow
    x = args[0]
    two63 = constant(b, 2.0**63, x.type)
    small = _cvt64(b, x)
    shifted = b.insert(llvm.FSubOp(x, two63)).results[0]
    wide_ty = _vector_like(i64, x.type)
    big = b.insert(llvm.XOrOp(_cvt64(b, shifted), constant(b, -(2**63), wide_ty))).results[0]
    is_big = _fcmp(b, "oge", x, two63)
    return _from_i64(b, op, args, select(b, is_big, big, small))


def _uitofp(b: Builder, op: Operation, args: Sequence[SSAValue]) -> SSAValue:
    """Unsigned -> float, rounded once (xDSL's llvm dialect has no uitofp): zero-extend
    narrow values and use sitofp; for i64, halve values >= 2^63 keeping the lowest bit
    sticky (round to odd), convert and double."""
    x = args[0]
    ty = result_type(op, args)
    src = llvm_scalar_type(op.operands[0].type)
    assert isinstance(src, IntegerType)
    if src.width.data < 64:
        wide = b.insert(llvm.ZExtOp(x, _vector_like(i64, x.type))).results[0]
        return b.insert(llvm.SIToFPOp(wide, ty)).results[0]
    one = constant(b, 1, x.type)
    half = b.insert(llvm.LShrOp(x, one)).results[0]
    odd = b.insert(llvm.OrOp(half, b.insert(llvm.AndOp(x, one)).results[0])).results[0]
    halved = b.insert(llvm.SIToFPOp(odd, ty)).results[0]
    doubled = b.insert(llvm.FAddOp(halved, halved)).results[0]
    direct = b.insert(llvm.SIToFPOp(x, ty)).results[0]
    negative = _icmp(b, "slt", x, constant(b, 0, x.type))
    return select(b, negative, doubled, direct)


def _shift(op_cls: Callable[[SSAValue, SSAValue], Operation], arithmetic: bool) -> Lowering:
    """shl / lshr / ashr with the amount taken unsigned; amounts >= the width give 0
    (or the sign for ashr), as numpy does."""

    def lower(b: Builder, op: Operation, args: Sequence[SSAValue]) -> SSAValue:
        x, amount = args
        element = llvm_scalar_type(op.results[0].type)
        assert isinstance(element, IntegerType)
        width = element.width.data
        ty = result_type(op, args)
        in_range = _icmp(b, "ult", amount, constant(b, width, ty))
        last = constant(b, width - 1, ty)
        if arithmetic:
            clamped = select(b, in_range, amount, last)
            return b.insert(op_cls(x, clamped)).results[0]
        masked = b.insert(llvm.AndOp(amount, last)).results[0]
        shifted = b.insert(op_cls(x, masked)).results[0]
        return select(b, in_range, shifted, constant(b, 0, ty))

    return lower


def _int_intrinsic(name: str, poison_flag: bool = False) -> Lowering:
    """`llvm.<name>.<iN>` on the operand; `poison_flag` adds the `i1 false` argument
    (abs of INT_MIN is INT_MIN, ctlz / cttz of 0 is the width: no poison)."""

    def lower(b: Builder, op: Operation, args: Sequence[SSAValue]) -> SSAValue:
        ty = result_type(op, args)
        operands = list(args)
        if poison_flag:
            operands.append(constant(b, 0, IntegerType(1)))
        call = llvm_ops.call_intrinsic(f"llvm.{name}.{_overload_suffix(ty)}", operands, [ty])
        return b.insert(call).results[0]

    return lower


#: prefix of the calls that `targets.llvm_emit` turns into libm calls, one per lane
LIBM_PREFIX = "llvm.mlc.libm."


def _libm(name: str) -> Lowering:
    """The C function `name` (`namef` for f32) applied to every lane, for math functions
    LLVM has no intrinsic for: `llvm.call_intrinsic "llvm.mlc.libm.<name>"`, which
    `targets.llvm_emit` emits as calls of the declared libm function (scalarized for
    vectors)."""

    def lower(b: Builder, op: Operation, args: Sequence[SSAValue]) -> SSAValue:
        call = llvm_ops.call_intrinsic(LIBM_PREFIX + name, list(args), [result_type(op, args)])
        return b.insert(call).results[0]

    return lower


SCALAR_LOWERINGS.update(
    {
        arith.FPToSIOp: _fptosi,
        arith.FPToUIOp: _fptoui,
        arith.UIToFPOp: _uitofp,
        arith.ShLIOp: _shift(llvm.ShlOp, arithmetic=False),
        arith.ShRUIOp: _shift(llvm.LShrOp, arithmetic=False),
        arith.ShRSIOp: _shift(llvm.AShrOp, arithmetic=True),
        xmath.AbsIOp: _int_intrinsic("abs", poison_flag=True),
        xmath.CtPopOp: _int_intrinsic("ctpop"),
        xmath.CountLeadingZerosOp: _int_intrinsic("ctlz", poison_flag=True),
        xmath.CountTrailingZerosOp: _int_intrinsic("cttz", poison_flag=True),
        # LLVM >= 20 intrinsics (libm calls in the end, per lane for vectors)
        xmath.TanOp: _intrinsic("tan"),
        xmath.TanhOp: _intrinsic("tanh"),
        xmath.SinhOp: _intrinsic("sinh"),
        xmath.CoshOp: _intrinsic("cosh"),
        xmath.AsinOp: _intrinsic("asin"),
        xmath.AcosOp: _intrinsic("acos"),
        xmath.AtanOp: _intrinsic("atan"),
        xmath.Atan2Op: _intrinsic("atan2"),
        # no intrinsic: libm, through the emitter
        xmath.ErfOp: _libm("erf"),
        xmath.ExpM1Op: _libm("expm1"),
        xmath.Log1pOp: _libm("log1p"),
        xmath.CbrtOp: _libm("cbrt"),
        xmath.AsinhOp: _libm("asinh"),
        xmath.AcoshOp: _libm("acosh"),
        xmath.AtanhOp: _libm("atanh"),
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
