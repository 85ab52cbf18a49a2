"""The numpy evaluator of kernel and block bodies (arith / math / `tl.index` on scalars or
whole arrays, in the element type's precision), and recognition of reduction combiners."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from xdsl.dialects import arith, llvm
from xdsl.dialects import math as xmath
from xdsl.dialects.builtin import AnyFloat, FloatAttr, IntegerAttr, IntegerType
from xdsl.ir import Attribute, Block, Operation, SSAValue
from xdsl.utils.exceptions import InterpretationError

from mlc.dialects.tl import IndexOp, StructuredOp, YieldOp
from mlc.interpreters.tl.buffers import numpy_dtype
from mlc.texpr import numerics

Impl = Callable[[Operation, list[Any]], Any]
IMPLS: dict[type[Operation], Impl] = {}


def _impl(*ops: type[Operation]) -> Callable[[Impl], Impl]:
    def register(fn: Impl) -> Impl:
        for op in ops:
            IMPLS[op] = fn
        return fn

    return register


def _is_bool(ty: Attribute) -> bool:
    return isinstance(ty, IntegerType) and ty.width.data == 1


def _signed(x: Any, ty: Attribute) -> Any:
    """An integer value as a signed number (i1 true is -1)."""
    if _is_bool(ty):
        return np.where(x, -1, 0).astype(np.int8)
    return x


def _unsigned(x: Any, ty: Attribute) -> Any:
    if _is_bool(ty):
        return np.asarray(x).astype(np.uint8)
    dtype = numpy_dtype(ty)
    return np.asarray(x).astype(np.dtype(f"uint{dtype.itemsize * 8}"))


def _wrap(x: Any, ty: Attribute) -> Any:
    """An integer result wrapped to the width of `ty`."""
    if _is_bool(ty):
        return (np.asarray(x).astype(np.int64) & 1).astype(np.bool_)
    return np.asarray(x).astype(numpy_dtype(ty))


def _result_type(op: Operation) -> Attribute:
    return op.results[0].type


def _int_binary(fn: Callable[[Any, Any], Any], unsigned: bool = False) -> Impl:
    def run(op: Operation, args: list[Any]) -> Any:
        ty = _result_type(op)
        conv = _unsigned if unsigned else _signed
        return _wrap(fn(conv(args[0], ty), conv(args[1], ty)), ty)

    return run


def _float_binary(fn: Callable[[Any, Any], Any]) -> Impl:
    def run(op: Operation, args: list[Any]) -> Any:
        return np.asarray(fn(args[0], args[1])).astype(numpy_dtype(_result_type(op)))

    return run


def _float_unary(fn: Callable[[Any], Any]) -> Impl:
    def run(op: Operation, args: list[Any]) -> Any:
        return np.asarray(fn(args[0])).astype(numpy_dtype(_result_type(op)))

    return run


def _divsi(a: Any, b: Any) -> Any:
    r = np.fmod(a, b)
    return (a - r) // np.where(b == 0, 1, b)


def _ceildiv(a: Any, b: Any) -> Any:
    q = np.floor_divide(a, b)
    return q + (np.mod(a, b) != 0)


def _round_half_away(x: Any) -> Any:
    t = np.trunc(x)
    return np.where(np.abs(x - t) >= 0.5, t + np.sign(x), t)


for _op, _fn in {
    arith.AddiOp: np.add,
    arith.SubiOp: np.subtract,
    arith.MuliOp: np.multiply,
    arith.DivSIOp: _divsi,
    arith.RemSIOp: np.fmod,
    arith.FloorDivSIOp: np.floor_divide,
    arith.CeilDivSIOp: _ceildiv,
    arith.AndIOp: np.bitwise_and,
    arith.OrIOp: np.bitwise_or,
    arith.XOrIOp: np.bitwise_xor,
    arith.ShLIOp: np.left_shift,
    arith.ShRSIOp: np.right_shift,
    arith.MaxSIOp: np.maximum,
    arith.MinSIOp: np.minimum,
}.items():
    IMPLS[_op] = _int_binary(_fn)

for _op, _fn in {
    arith.DivUIOp: np.floor_divide,
    arith.RemUIOp: np.mod,
    arith.CeilDivUIOp: _ceildiv,
    arith.ShRUIOp: np.right_shift,
    arith.MaxUIOp: np.maximum,
    arith.MinUIOp: np.minimum,
}.items():
    IMPLS[_op] = _int_binary(_fn, unsigned=True)

for _op, _fn in {
    arith.AddfOp: np.add,
    arith.SubfOp: np.subtract,
    arith.MulfOp: np.multiply,
    arith.DivfOp: np.divide,
    llvm.FRemOp: np.fmod,  # float `%` of tensor expressions (xDSL has no arith.remf)
    arith.MaximumfOp: numerics.maximum,  # NaN-propagating, -0.0 < +0.0 (llvm.maximum)
    arith.MinimumfOp: numerics.minimum,
    arith.MaxnumfOp: np.fmax,
    arith.MinnumfOp: np.fmin,
    xmath.PowFOp: np.power,
    xmath.Atan2Op: np.arctan2,
    xmath.CopySignOp: np.copysign,
}.items():
    IMPLS[_op] = _float_binary(_fn)

for _op, _fn in {
    arith.NegfOp: np.negative,
    xmath.AbsFOp: np.abs,
    xmath.AcosOp: np.arccos,
    xmath.AcoshOp: np.arccosh,
    xmath.AsinOp: np.arcsin,
    xmath.AsinhOp: np.arcsinh,
    xmath.AtanOp: np.arctan,
    xmath.AtanhOp: np.arctanh,
    xmath.CbrtOp: np.cbrt,
    xmath.CeilOp: np.ceil,
    xmath.CosOp: np.cos,
    xmath.CoshOp: np.cosh,
    xmath.ErfOp: numerics.erf,
    xmath.Exp2Op: np.exp2,
    xmath.ExpM1Op: np.expm1,
    xmath.ExpOp: np.exp,
    xmath.FloorOp: np.floor,
    xmath.Log10Op: np.log10,
    xmath.Log1pOp: np.log1p,
    xmath.Log2Op: np.log2,
    xmath.LogOp: np.log,
    xmath.RoundEvenOp: np.rint,
    xmath.RoundOp: _round_half_away,
    xmath.RsqrtOp: lambda x: 1 / np.sqrt(x),
    xmath.SinOp: np.sin,
    xmath.SinhOp: np.sinh,
    xmath.SqrtOp: np.sqrt,
    xmath.TanOp: np.tan,
    xmath.TanhOp: np.tanh,
    xmath.TruncOp: np.trunc,
}.items():
    IMPLS[_op] = _float_unary(_fn)


@_impl(arith.ConstantOp)
def _constant(op: Operation, args: list[Any]) -> Any:
    assert isinstance(op, arith.ConstantOp)
    value = op.value
    if not isinstance(value, IntegerAttr | FloatAttr):
        raise InterpretationError(f"arith.constant {value} is not a scalar")
    ty = _result_type(op)
    if _is_bool(ty):
        return np.bool_(value.value.data != 0)
    return numpy_dtype(ty).type(value.value.data)


@_impl(arith.SelectOp)
def _select(op: Operation, args: list[Any]) -> Any:
    return np.where(args[0], args[1], args[2]).astype(numpy_dtype(_result_type(op)))


_CMPI: dict[int, tuple[Callable[[Any, Any], Any], bool]] = {
    0: (np.equal, False),
    1: (np.not_equal, False),
    2: (np.less, False),
    3: (np.less_equal, False),
    4: (np.greater, False),
    5: (np.greater_equal, False),
    6: (np.less, True),
    7: (np.less_equal, True),
    8: (np.greater, True),
    9: (np.greater_equal, True),
}


@_impl(arith.CmpiOp)
def _cmpi(op: Operation, args: list[Any]) -> Any:
    assert isinstance(op, arith.CmpiOp)
    fn, unsigned = _CMPI[op.predicate.value.data]
    ty = op.lhs.type
    conv = _unsigned if unsigned else _signed
    return np.asarray(fn(conv(args[0], ty), conv(args[1], ty)))


def _cmpf_value(pred: int, x: Any, y: Any) -> Any:
    unordered = np.isnan(x) | np.isnan(y)
    if pred in (0, 15):
        return np.broadcast_to(np.bool_(pred == 15), np.broadcast(x, y).shape).copy()
    if pred in (7, 14):
        return ~unordered if pred == 7 else unordered
    base = {
        1: np.equal,
        2: np.greater,
        3: np.greater_equal,
        4: np.less,
        5: np.less_equal,
        6: np.not_equal,
    }[pred if pred < 7 else pred - 7]
    result = base(x, y)
    return (result & ~unordered) if pred < 7 else (result | unordered)


@_impl(arith.CmpfOp)
def _cmpf(op: Operation, args: list[Any]) -> Any:
    assert isinstance(op, arith.CmpfOp)
    return np.asarray(_cmpf_value(op.predicate.value.data, args[0], args[1]))


@_impl(arith.ExtFOp, arith.TruncFOp)
def _float_cast(op: Operation, args: list[Any]) -> Any:
    return np.asarray(args[0]).astype(numpy_dtype(_result_type(op)))


@_impl(arith.SIToFPOp)
def _sitofp(op: Operation, args: list[Any]) -> Any:
    return np.asarray(_signed(args[0], op.operands[0].type)).astype(numpy_dtype(_result_type(op)))


@_impl(arith.UIToFPOp)
def _uitofp(op: Operation, args: list[Any]) -> Any:
    return _unsigned(args[0], op.operands[0].type).astype(numpy_dtype(_result_type(op)))


@_impl(arith.FPToSIOp)
def _fptosi(op: Operation, args: list[Any]) -> Any:
    return _wrap(np.trunc(args[0]).astype(np.int64), _result_type(op))


@_impl(arith.FPToUIOp)
def _fptoui(op: Operation, args: list[Any]) -> Any:
    return _wrap(np.trunc(args[0]).astype(np.uint64).astype(np.int64), _result_type(op))


@_impl(arith.ExtSIOp, arith.TruncIOp, arith.IndexCastOp)
def _int_cast(op: Operation, args: list[Any]) -> Any:
    return _wrap(
        np.asarray(_signed(args[0], op.operands[0].type)).astype(np.int64), _result_type(op)
    )


@_impl(arith.ExtUIOp)
def _extui(op: Operation, args: list[Any]) -> Any:
    return _wrap(
        _unsigned(args[0], op.operands[0].type).astype(np.uint64).astype(np.int64), _result_type(op)
    )


@_impl(arith.BitcastOp)
def _bitcast(op: Operation, args: list[Any]) -> Any:
    return np.ascontiguousarray(args[0]).view(numpy_dtype(_result_type(op)))


@_impl(xmath.AbsIOp)
def _absi(op: Operation, args: list[Any]) -> Any:
    ty = _result_type(op)
    return _wrap(np.abs(_signed(args[0], ty)), ty)


@_impl(xmath.CtPopOp, xmath.CountLeadingZerosOp, xmath.CountTrailingZerosOp)
def _bit_count(op: Operation, args: list[Any]) -> Any:
    ty = _result_type(op)
    width = 1 if _is_bool(ty) else numpy_dtype(ty).itemsize * 8
    x = _unsigned(args[0], ty).astype(np.uint64)
    bits = [(x >> np.uint64(i)) & np.uint64(1) for i in range(width)]
    if isinstance(op, xmath.CtPopOp):
        count = sum(b.astype(np.int64) for b in bits)
    else:
        order = bits[::-1] if isinstance(op, xmath.CountLeadingZerosOp) else bits
        count = np.zeros(np.shape(x), np.int64)
        seen = np.zeros(np.shape(x), np.bool_)
        for b in order:
            seen = seen | (b != 0)
            count = count + (~seen)
    return _wrap(count, ty)


@_impl(xmath.IPowIOp)
def _ipowi(op: Operation, args: list[Any]) -> Any:
    ty = _result_type(op)
    base, exp = _signed(args[0], ty).astype(np.int64), _signed(args[1], ty).astype(np.int64)
    result = np.ones(np.broadcast(base, exp).shape, np.int64)
    e = np.maximum(exp, 0)
    b = np.broadcast_to(base, result.shape).copy()
    while np.any(e > 0):
        result = np.where(e & 1, result * b, result)
        b = b * b
        e = e >> 1
    # negative exponents: 1 / base**|e| in integers
    neg = exp < 0
    result = np.where(
        neg, np.where(base == 1, 1, np.where(base == -1, np.where(exp & 1, -1, 1), 0)), result
    )
    return _wrap(result, ty)


@_impl(xmath.FPowIOp)
def _fpowi(op: Operation, args: list[Any]) -> Any:
    dtype = numpy_dtype(_result_type(op))
    return np.power(np.asarray(args[0]), np.asarray(args[1]).astype(dtype)).astype(dtype)


@_impl(xmath.FmaOp)
def _fma(op: Operation, args: list[Any]) -> Any:
    dtype = numpy_dtype(_result_type(op))
    wide = np.longdouble if dtype == np.float64 else np.float64
    a, b, c = (np.asarray(x).astype(wide) for x in args)
    return (a * b + c).astype(dtype)


IndexFn = Callable[[str], Any]


def evaluate_body(block: Block, args: Sequence[Any], index: IndexFn) -> dict[SSAValue, Any]:
    """Evaluate a kernel/block body on numpy values (scalars or broadcastable arrays).

    `args` are the block arguments' values; `index(name)` gives the value of `tl.index
    name`. Returns the value of every SSA value of the body."""
    env: dict[SSAValue, Any] = dict(zip(block.args, args))
    with np.errstate(all="ignore"):
        for op in block.ops:
            if isinstance(op, YieldOp):
                break
            if isinstance(op, IndexOp):
                env[op.result] = index(op.iterator.data)
                continue
            fn = IMPLS.get(type(op))
            if fn is None:
                raise InterpretationError(f"{op.name} is not supported in tl bodies")
            value = fn(op, [env[o] for o in op.operands])
            env[op.results[0]] = value
    return env


def yielded(block: Block, env: dict[SSAValue, Any]) -> list[Any]:
    last = block.last_op
    assert isinstance(last, YieldOp)
    return [env[v] for v in last.arguments]


Reducer = Callable[[np.ndarray, tuple[int, ...]], np.ndarray]


@dataclass
class Combiner:
    """Output j's yield is `op(current, e)` (or `op(e, current)`)."""

    op: Operation
    current_first: bool
    e: SSAValue
    reduce: Reducer


def _ufunc_reducer(ufunc: np.ufunc) -> Reducer:
    def reduce(x: np.ndarray, axes: tuple[int, ...]) -> np.ndarray:
        return ufunc.reduce(x, axis=axes, keepdims=True, dtype=x.dtype)

    return reduce


def _reducer(fn: Callable[..., np.ndarray]) -> Reducer:
    def reduce(x: np.ndarray, axes: tuple[int, ...]) -> np.ndarray:
        return fn(x, axis=axes, keepdims=True)

    return reduce


def _unsigned_reducer(ufunc: np.ufunc) -> Callable[[np.ndarray, tuple[int, ...]], np.ndarray]:
    def reduce(x: np.ndarray, axes: tuple[int, ...]) -> np.ndarray:
        u = x.astype(np.dtype(f"uint{x.dtype.itemsize * 8}"))
        return ufunc.reduce(u, axis=axes, keepdims=True).astype(x.dtype)

    return reduce


_FLOAT_COMBINERS: dict[type[Operation], Reducer] = {
    arith.AddfOp: _ufunc_reducer(np.add),
    arith.MulfOp: _ufunc_reducer(np.multiply),
    arith.MaximumfOp: _reducer(numerics.reduce_maximum),
    arith.MinimumfOp: _reducer(numerics.reduce_minimum),
    arith.MaxnumfOp: _ufunc_reducer(np.fmax),
    arith.MinnumfOp: _ufunc_reducer(np.fmin),
}
_INT_COMBINERS: dict[type[Operation], np.ufunc] = {
    arith.AddiOp: np.add,
    arith.MuliOp: np.multiply,
    arith.MaxSIOp: np.maximum,
    arith.MinSIOp: np.minimum,
    arith.AndIOp: np.bitwise_and,
    arith.OrIOp: np.bitwise_or,
    arith.XOrIOp: np.bitwise_xor,
}
_BOOL_COMBINERS: dict[type[Operation], np.ufunc] = {
    arith.AndIOp: np.logical_and,
    arith.OrIOp: np.logical_or,
    arith.XOrIOp: np.logical_xor,
}
_UNSIGNED_COMBINERS: dict[type[Operation], np.ufunc] = {
    arith.MaxUIOp: np.maximum,
    arith.MinUIOp: np.minimum,
}


def find_combiners(op: StructuredOp) -> list[Combiner] | None:
    """The combiner of every output, or None if some output's update is not of the form
    `combiner(current, e)` with `e` independent of every output's current value."""
    block = op.body.block
    n_in = len(op.inputs)
    out_args = set(block.args[n_in:])
    depends: dict[SSAValue, bool] = {a: a in out_args for a in block.args}
    for inner in block.ops:
        for r in inner.results:
            depends[r] = any(depends.get(o, False) for o in inner.operands)
    combiners: list[Combiner] = []
    for j, v in enumerate(op.yield_op.arguments):
        current = block.args[n_in + j]
        owner = v.owner
        if not isinstance(owner, Operation) or len(owner.operands) != 2:
            return None
        ty = v.type
        if _is_bool(ty):
            ufunc = _BOOL_COMBINERS.get(type(owner))
            reduce = _ufunc_reducer(ufunc) if ufunc else None
        elif isinstance(ty, AnyFloat):
            reduce = _FLOAT_COMBINERS.get(type(owner))
        elif type(owner) in _UNSIGNED_COMBINERS:
            reduce = _unsigned_reducer(_UNSIGNED_COMBINERS[type(owner)])
        else:
            ufunc = _INT_COMBINERS.get(type(owner))
            reduce = _ufunc_reducer(ufunc) if ufunc else None
        if reduce is None:
            return None
        a, b = owner.operands
        if a is current and not depends[b]:
            combiners.append(Combiner(owner, True, b, reduce))
        elif b is current and not depends[a]:
            combiners.append(Combiner(owner, False, a, reduce))
        else:
            return None
    return combiners
