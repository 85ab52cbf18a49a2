"""Reference semantics of constants and elementwise graph ops (ONNX semantics)."""

from __future__ import annotations

from collections.abc import Callable
from functools import reduce

import ml_dtypes
import numpy as np

from mlc.dialects.graph import elementwise as ew
from mlc.dialects.graph.types import numpy_dtype
from mlc.interpreters.graph.registry import reference
from mlc.texpr import numerics

_LOW_PRECISION = (np.dtype(np.float16), np.dtype(ml_dtypes.bfloat16))


def in_float32(fn: Callable[[np.ndarray], np.ndarray]) -> Callable[[np.ndarray], np.ndarray]:
    """Compute f16/bf16 math in f32 and round once at the end, as onnxruntime does."""

    def wrapped(x: np.ndarray) -> np.ndarray:
        if x.dtype in _LOW_PRECISION:
            return fn(x.astype(np.float32)).astype(x.dtype)
        return fn(x)

    return wrapped


@reference(ew.ConstantOp)
def constant(op: ew.ConstantOp) -> np.ndarray:
    return op.to_array()


def _sigmoid(x: np.ndarray) -> np.ndarray:
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1 / (1 + e), e / (1 + e))


def _softplus(x: np.ndarray) -> np.ndarray:
    """log(1 + exp(x)) without overflow."""
    return np.maximum(x, 0) + np.log1p(np.exp(-np.abs(x)))


def _gelu(x: np.ndarray, approximate: str) -> np.ndarray:
    if approximate == "tanh":
        return 0.5 * x * (1 + np.tanh(np.sqrt(2 / np.pi) * (x + 0.044715 * x**3)))
    return 0.5 * x * (1 + numerics.erf(x / np.sqrt(2)))


_FLOAT_UNARY: dict[type, Callable[[np.ndarray], np.ndarray]] = {
    ew.SigmoidOp: _sigmoid,
    ew.TanhOp: np.tanh,
    ew.ErfOp: numerics.erf,
    ew.ExpOp: np.exp,
    ew.LogOp: np.log,
    ew.SqrtOp: np.sqrt,
    ew.ReciprocalOp: np.reciprocal,
    ew.SinOp: np.sin,
    ew.CosOp: np.cos,
    ew.TanOp: np.tan,
    ew.AsinOp: np.arcsin,
    ew.AcosOp: np.arccos,
    ew.AtanOp: np.arctan,
    ew.SinhOp: np.sinh,
    ew.CoshOp: np.cosh,
    ew.AsinhOp: np.arcsinh,
    ew.AcoshOp: np.arccosh,
    ew.AtanhOp: np.arctanh,
    ew.MishOp: lambda x: x * np.tanh(_softplus(x)),
    ew.SoftplusOp: lambda x: np.logaddexp(np.zeros_like(x), x),
    ew.SoftsignOp: lambda x: x / (1 + np.abs(x)),
    ew.HardSwishOp: lambda x: x * np.clip(x / 6 + 0.5, 0, 1),
    ew.FloorOp: np.floor,
    ew.CeilOp: np.ceil,
    ew.RoundOp: np.round,
}

_ANY_UNARY: dict[type, Callable[[np.ndarray], np.ndarray]] = {
    ew.ReluOp: lambda x: numerics.maximum(x, np.zeros((), x.dtype)),
    ew.NegOp: np.negative,
    ew.AbsOp: np.abs,
    ew.SignOp: np.sign,
    ew.IdentityOp: np.copy,
    ew.DropoutOp: np.copy,
    ew.NotOp: np.logical_not,
    ew.BitwiseNotOp: np.invert,
    ew.IsNaNOp: np.isnan,
}


def _register_table(table: dict[type, Callable[[np.ndarray], np.ndarray]], upcast: bool) -> None:
    for op_type, fn in table.items():
        math = in_float32(fn) if upcast else fn
        reference(op_type)(lambda op, x, math=math: math(x))


_register_table(_FLOAT_UNARY, upcast=True)
_register_table(_ANY_UNARY, upcast=False)


@reference(ew.LeakyReluOp)
def leaky_relu(op: ew.LeakyReluOp, x: np.ndarray) -> np.ndarray:
    alpha = op.alpha
    return in_float32(lambda v: np.where(v >= 0, v, alpha * v))(x)


@reference(ew.EluOp)
def elu(op: ew.EluOp, x: np.ndarray) -> np.ndarray:
    alpha = op.alpha
    return in_float32(lambda v: np.where(v > 0, v, alpha * np.expm1(v)))(x)


@reference(ew.SeluOp)
def selu(op: ew.SeluOp, x: np.ndarray) -> np.ndarray:
    alpha, gamma = op.alpha, op.gamma
    return in_float32(lambda v: gamma * np.where(v > 0, v, alpha * np.expm1(v)))(x)


@reference(ew.HardSigmoidOp)
def hard_sigmoid(op: ew.HardSigmoidOp, x: np.ndarray) -> np.ndarray:
    alpha, beta = op.alpha, op.beta
    return in_float32(lambda v: np.clip(alpha * v + beta, 0, 1))(x)


@reference(ew.GeluOp)
def gelu(op: ew.GeluOp, x: np.ndarray) -> np.ndarray:
    approximate = op.approximate
    return in_float32(lambda v: _gelu(v, approximate))(x)


@reference(ew.CeluOp)
def celu(op: ew.CeluOp, x: np.ndarray) -> np.ndarray:
    alpha = op.alpha

    def celu_(v: np.ndarray) -> np.ndarray:
        zero = np.zeros((), v.dtype)  # IEEE maximum / minimum: -0.0 < +0.0, as compiled
        return numerics.maximum(v, zero) + numerics.minimum(zero, alpha * np.expm1(v / alpha))

    return in_float32(celu_)(x)


@reference(ew.ThresholdedReluOp)
def thresholded_relu(op: ew.ThresholdedReluOp, x: np.ndarray) -> np.ndarray:
    alpha = op.alpha
    return in_float32(lambda v: np.where(v > alpha, v, 0))(x)


@reference(ew.SwishOp)
def swish(op: ew.SwishOp, x: np.ndarray) -> np.ndarray:
    alpha = op.alpha
    return in_float32(lambda v: v * _sigmoid(alpha * v))(x)


@reference(ew.ShrinkOp)
def shrink(op: ew.ShrinkOp, x: np.ndarray) -> np.ndarray:
    """Floats in their own type (f16/bf16 in f32), integers in f64, truncated back."""
    bias, lambd = op.bias, op.lambd
    v = x.astype(np.float64) if x.dtype.kind in "iu" else x
    if v.dtype in _LOW_PRECISION:
        v = v.astype(np.float32)
    bias_, lambd_ = np.asarray(bias, v.dtype), np.asarray(lambd, v.dtype)
    out = np.where(v < -lambd_, v + bias_, np.where(v > lambd_, v - bias_, 0))
    with np.errstate(invalid="ignore"):
        return out.astype(x.dtype)


@reference(ew.IsInfOp)
def is_inf(op: ew.IsInfOp, x: np.ndarray) -> np.ndarray:
    return (op.detect_positive & (x == np.inf)) | (op.detect_negative & (x == -np.inf))


@reference(ew.ClipOp)
def clip(op: ew.ClipOp, x: np.ndarray) -> np.ndarray:
    out = x
    if (low := _bound(op.min, x.dtype)) is not None:
        out = np.where(out < low, low, out)
    if (high := _bound(op.max, x.dtype)) is not None:
        out = np.where(out > high, high, out)
    return out


def _bound(bound: int | float | None, dtype: np.dtype) -> np.ndarray | None:
    """A clip bound in the tensor's dtype; integer bounds are read exactly (no float)."""
    if bound is None:
        return None
    return np.array(bound).astype(dtype)


@reference(ew.CastOp)
def cast(op: ew.CastOp, x: np.ndarray) -> np.ndarray:
    dtype = numpy_dtype(op.output.type.element_type)  # type: ignore[attr-defined]
    if x.dtype in _LOW_PRECISION and dtype.kind in "iub":
        x = x.astype(np.float32)
    with np.errstate(invalid="ignore"):
        return x.astype(dtype)


# --------------------------------------------------------------------------- binary


def _int_div(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Integer division truncating toward zero (C semantics, as onnxruntime): floor
    division corrected where the remainder is non-zero and the signs differ (no `abs`,
    which overflows on the type's minimum). The minimum divided by -1 wraps to itself;
    a zero divisor counts as 1 (as the compiled code does)."""
    safe = np.where(y == 0, 1, y).astype(x.dtype)
    with np.errstate(over="ignore"):
        q = np.floor_divide(x, safe)
        r = x - q * safe
    return np.where((r != 0) & ((x < 0) != (safe < 0)), q + 1, q).astype(x.dtype)


def _div(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    if x.dtype.kind in "iu":
        return _int_div(x, y)
    return x / y


def _pow(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Integer and f16 / bf16 bases in f64; an f32 base in f32, unless the exponent is
    f64 (not rounded to f32: the power is computed in f64 and rounded once)."""
    if x.dtype.kind in "iu" or x.dtype in _LOW_PRECISION or y.dtype == np.float64:
        return np.power(x.astype(np.float64), y.astype(np.float64)).astype(x.dtype)
    return np.power(x, y.astype(x.dtype))


def _mod(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """The remainder with the divisor's sign (floats: fmod corrected, -0.0 / +0.0 by the
    divisor's sign, f16 / bf16 in f32)."""
    if x.dtype in _LOW_PRECISION:
        return np.mod(x.astype(np.float32), y.astype(np.float32)).astype(x.dtype)
    return np.mod(x, y)


def _fmod(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    if x.dtype in _LOW_PRECISION:
        return np.fmod(x.astype(np.float32), y.astype(np.float32)).astype(x.dtype)
    return np.fmod(x, y)


def _bit_shift(direction: str, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """numpy's shifts take the amount unsigned: negative or >= the width gives 0 (or -1
    for a right shift of a negative signed x), as ONNX BitShift prescribes."""
    shift = np.left_shift if direction == "LEFT" else np.right_shift
    return shift(x, y)


def _prelu(x: np.ndarray, slope: np.ndarray) -> np.ndarray:
    return np.where(x >= 0, x, slope * x)


_BINARY: dict[type, Callable[[np.ndarray, np.ndarray], np.ndarray]] = {
    ew.AddOp: np.add,
    ew.SubOp: np.subtract,
    ew.MulOp: np.multiply,
    ew.DivOp: _div,
    ew.PowOp: _pow,
    ew.ModOp: _mod,
    ew.FmodOp: _fmod,
    ew.PReluOp: _prelu,
    ew.EqualOp: np.equal,
    ew.LessOp: np.less,
    ew.LessOrEqualOp: np.less_equal,
    ew.GreaterOp: np.greater,
    ew.GreaterOrEqualOp: np.greater_equal,
    ew.AndOp: np.logical_and,
    ew.OrOp: np.logical_or,
    ew.XorOp: np.logical_xor,
    ew.BitwiseAndOp: np.bitwise_and,
    ew.BitwiseOrOp: np.bitwise_or,
    ew.BitwiseXorOp: np.bitwise_xor,
}

for _op_type, _fn in _BINARY.items():
    reference(_op_type)(lambda op, x, y, fn=_fn: fn(x, y))


@reference(ew.BitShiftOp)
def bit_shift(op: ew.BitShiftOp, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    return _bit_shift(op.direction, x, y)


@reference(ew.MaxOp)
def maximum(op: ew.MaxOp, *xs: np.ndarray) -> np.ndarray:
    return reduce(numerics.maximum, xs)


@reference(ew.MinOp)
def minimum(op: ew.MinOp, *xs: np.ndarray) -> np.ndarray:
    return reduce(numerics.minimum, xs)


@reference(ew.SumOp)
def total(op: ew.SumOp, *xs: np.ndarray) -> np.ndarray:
    return reduce(np.add, xs)


@reference(ew.MeanOp)
def mean(op: ew.MeanOp, *xs: np.ndarray) -> np.ndarray:
    total = reduce(np.add, [x.astype(np.float64) for x in xs])
    return (total / len(xs)).astype(xs[0].dtype)


@reference(ew.WhereOp)
def where(op: ew.WhereOp, cond: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    return np.where(cond, x, y)
