"""Expressions of elementwise graph ops: one template, one scalar formula per op.

Operands are ``X0, X1, ...`` and broadcast to ``Y`` by numpy rules: a missing leading
axis is not indexed, a stretched size-1 axis is indexed with the constant 0. A formula
is texpr scalar text over the operand reads ``$x0, $x1, ...`` and the op's float
attributes (``$alpha``), given as literals of the result's compute type.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

from mlc.dialects.graph import elementwise as ew
from mlc.dialects.graph.base import GraphOp
from mlc.texpr.dtypes import is_float
from mlc.texpr.library.registry import expresses
from mlc.texpr.library.template import (
    Expression,
    ExpressionError,
    broadcast,
    build,
    compute_dtype,
    dtype_of,
    float_dtype,
    instantiate,
    lit,
    shape_of,
    size_names,
)

ELEMENTWISE = """
$name($params) -> Y: $TY[$dims] {
  Y[$index] = $body
}"""

#: Formula of each op (operand dtypes as argument where the formula depends on them).
Formula = str | Callable[[Sequence[str]], str]

#: ONNX Round (and QuantizeLinear's rounding): to nearest, ties to even, -0.3 -> -0.0
ROUND_HALF_EVEN = "round($x0)"
#: ONNX Mod (fmod = 0): the remainder takes the divisor's sign; texpr `%` takes the dividend's.
SIGNED_MOD = (
    "select(($x0 % $x1 < 0 and $x1 > 0) or ($x0 % $x1 > 0 and $x1 < 0), $x0 % $x1 + $x1, $x0 % $x1)"
)


def _bool_or(arith: str, logic: str) -> Formula:
    return lambda dtypes: logic if dtypes[0] == "bool" else arith


def _sign(dtypes: Sequence[str]) -> str:
    if dtypes[0].startswith("u"):
        return "select($x0 > 0, 1, $x0)"
    # ONNX: 0 for x == 0, so +0.0 for -0.0 too; NaN is itself
    rest = "select($x0 == 0, 0, $x0)" if is_float(dtypes[0]) else "0"
    return f"select($x0 > 0, 1, select($x0 < 0, -1, {rest}))"


def _pow(dtypes: Sequence[str]) -> str:
    base, exponent = dtypes
    if not is_float(base):
        return "$T0(pow(f64($x0), f64($x1)))"  # integers: in f64, truncated back
    if exponent == "f64" and compute_dtype(base) != "f64":
        # an f64 exponent (T1) is not rounded to the base's type: the power is computed
        # in f64 and rounded once, as onnx.reference and onnxruntime do
        return "$T0(pow(f64($x0), $x1))"
    return "pow($x0, $T0($x1))"


#: ONNX Mod (fmod = 0) of floats: as SIGNED_MOD, and a zero remainder takes the divisor's
#: sign (numpy's `mod`); NaN for a zero divisor or an infinite dividend (from fmod)
FLOAT_MOD = (
    "select($x0 % $x1 == 0, select($x1 < 0, -abs($x0 % $x1), abs($x0 % $x1)), " + SIGNED_MOD + ")"
)


def _mod(dtypes: Sequence[str]) -> str:
    if is_float(dtypes[0]):
        return FLOAT_MOD
    return "$x0 % $x1" if dtypes[0].startswith("u") else SIGNED_MOD


#: log(1 + exp(x)) without overflow
SOFTPLUS = "max($x0, 0) + log1p(exp(-abs($x0)))"


FORMULAS: dict[type, Formula] = {
    ew.ReluOp: "max($x0, 0)",
    ew.LeakyReluOp: "select($x0 >= 0, $x0, $alpha * $x0)",
    ew.EluOp: "select($x0 > 0, $x0, $alpha * expm1($x0))",
    ew.SeluOp: "$gamma * select($x0 > 0, $x0, $alpha * expm1($x0))",
    ew.HardSigmoidOp: "max(0, min(1, $alpha * $x0 + $beta))",
    ew.SigmoidOp: "sigmoid($x0)",
    ew.TanhOp: "tanh($x0)",
    ew.ErfOp: "erf($x0)",
    ew.ExpOp: "exp($x0)",
    ew.LogOp: "log($x0)",
    ew.SqrtOp: "sqrt($x0)",
    ew.ReciprocalOp: "1 / $x0",
    ew.SinOp: "sin($x0)",
    ew.CosOp: "cos($x0)",
    ew.TanOp: "tan($x0)",
    ew.AsinOp: "asin($x0)",
    ew.AcosOp: "acos($x0)",
    ew.AtanOp: "atan($x0)",
    ew.SinhOp: "sinh($x0)",
    ew.CoshOp: "cosh($x0)",
    ew.AsinhOp: "asinh($x0)",
    ew.AcoshOp: "acosh($x0)",
    ew.AtanhOp: "atanh($x0)",
    ew.MishOp: f"$x0 * tanh({SOFTPLUS})",
    ew.CeluOp: "max($x0, 0) + min(0, $alpha * expm1($x0 / $alpha))",
    ew.ThresholdedReluOp: "select($x0 > $alpha, $x0, 0)",
    ew.SwishOp: "$x0 * sigmoid($alpha * $x0)",
    ew.IsNaNOp: "($x0) != $x0",
    ew.BitwiseNotOp: "bitnot($x0)",
    ew.SoftplusOp: SOFTPLUS,
    ew.SoftsignOp: "$x0 / (1 + abs($x0))",
    ew.HardSwishOp: "$x0 * max(0, min(1, $x0 / 6 + 0.5))",
    ew.FloorOp: "floor($x0)",
    ew.CeilOp: "ceil($x0)",
    ew.RoundOp: ROUND_HALF_EVEN,
    ew.NegOp: "-$x0",
    ew.AbsOp: "abs($x0)",
    ew.SignOp: _sign,
    ew.IdentityOp: "$x0",
    ew.DropoutOp: "$x0",
    ew.NotOp: "not $x0",
    ew.CastOp: "$TY($x0)",
    ew.AddOp: _bool_or("$x0 + $x1", "$x0 or $x1"),
    ew.SubOp: "$x0 - $x1",
    ew.MulOp: _bool_or("$x0 * $x1", "$x0 and $x1"),
    ew.DivOp: "$x0 / $x1",
    ew.PowOp: _pow,
    ew.ModOp: _mod,
    ew.FmodOp: "$x0 % $x1",
    ew.PReluOp: "select($x0 >= 0, $x0, $x1 * $x0)",
    # `X[i] == ...` does not parse (the lexer takes `=` for an assignment): parenthesize
    ew.EqualOp: "($x0) == $x1",
    ew.LessOp: "$x0 < $x1",
    ew.LessOrEqualOp: "$x0 <= $x1",
    ew.GreaterOp: "$x0 > $x1",
    ew.GreaterOrEqualOp: "$x0 >= $x1",
    ew.AndOp: "$x0 and $x1",
    ew.OrOp: "$x0 or $x1",
    ew.XorOp: "$x0 != $x1",
    ew.BitwiseAndOp: "bitand($x0, $x1)",
    ew.BitwiseOrOp: "bitor($x0, $x1)",
    ew.BitwiseXorOp: "bitxor($x0, $x1)",
    ew.WhereOp: "select($x0, $x1, $x2)",
}


def _variadic(op: ew.VariadicOp, dtypes: Sequence[str]) -> str:
    """max(max(x0, x1), x2), x0 + x1 + x2, ...; the mean of integers in f64, truncated."""
    xs = [f"$x{k}" for k in range(len(dtypes))]
    if isinstance(op, ew.MaxOp | ew.MinOp):
        fn = "max" if isinstance(op, ew.MaxOp) else "min"
        body = xs[0]
        for x in xs[1:]:
            body = f"{fn}({body}, {x})"
        return body
    if dtypes[0] == "bool":
        if isinstance(op, ew.SumOp):
            return " or ".join(xs)
        raise ExpressionError("graph.mean of booleans has no expression")
    if isinstance(op, ew.SumOp):
        return " + ".join(xs)
    if is_float(dtypes[0]):
        return f"({' + '.join(xs)}) / {len(xs)}"
    return f"$T0(({' + '.join(f'f64({x})' for x in xs)}) / {len(xs)})"


def _clip(op: ew.ClipOp, real: str) -> str:
    """min(max(x, lo), hi) as the reference compares: NaN stays NaN."""
    body = "$x0"
    for value, cmp in ((op.min, "<"), (op.max, ">")):
        if value is not None:
            bound = lit(value, compute_dtype(real), via=real)
            body = f"select({body} {cmp} {bound}, {bound}, {body})"
    return body


def _shrink(op: ew.ShrinkOp, real: str) -> str:
    """Floats in their compute type; integers in f64, converted back as the reference does."""
    dtype = float_dtype(real)
    x = "$x0" if is_float(real) else "f64($x0)"
    bias, lambd, low = (lit(v, dtype) for v in (op.bias, op.lambd, -op.lambd))
    body = f"select({x} < {low}, {x} + {bias}, select({x} > {lambd}, {x} - {bias}, 0))"
    return body if is_float(real) else f"$TY({body})"


def _is_inf(op: ew.IsInfOp) -> str:
    if op.detect_positive and op.detect_negative:
        return "abs($x0) == inf"
    if op.detect_positive:
        return "($x0) == inf"
    if op.detect_negative:
        return "($x0) == -inf"
    return "($x0) != $x0 and false"


def _attributes(op: GraphOp, formula: str, dtype: str) -> dict[str, str]:
    """Literals for the ``$alpha``-style attribute holes of a formula."""
    names = set(re.findall(r"\$([a-z]+)\b", formula)) - {"x"}
    return {name: lit(float(getattr(op, name)), dtype) for name in names}


@expresses(
    *FORMULAS,
    ew.MaxOp,
    ew.MinOp,
    ew.SumOp,
    ew.MeanOp,
    ew.ClipOp,
    ew.GeluOp,
    ew.ShrinkOp,
    ew.IsInfOp,
    ew.BitShiftOp,
)
def elementwise(op: GraphOp) -> Expression:
    """Y[i...] = formula(X0[broadcast i...], X1[...], ...)."""
    real = [dtype_of(v) for v in op.operands]
    dtypes = [compute_dtype(d) for d in real]
    out = shape_of(op.results[0])
    out_type = compute_dtype(dtype_of(op.results[0]))
    iters = [f"i{a}" for a in range(len(out))]
    names = size_names(out)
    if isinstance(op, ew.VariadicOp):
        formula = _variadic(op, real)
    elif isinstance(op, ew.ClipOp):
        formula = _clip(op, real[0])
    elif isinstance(op, ew.GeluOp):
        formula = GELU[op.approximate]
    elif isinstance(op, ew.ShrinkOp):
        formula = _shrink(op, real[0])
    elif isinstance(op, ew.IsInfOp):
        formula = _is_inf(op)
    elif isinstance(op, ew.BitShiftOp):
        formula = f"{'shl' if op.direction == 'LEFT' else 'shr'}($x0, $x1)"
    else:
        entry = FORMULAS[type(op)]
        formula = entry if isinstance(entry, str) else entry(real)
    subs: dict[str, object] = {
        "name": op.name.removeprefix("graph."),
        "TY": out_type,
        "dims": ", ".join(names),
        "index": ", ".join(iters),
        "body": formula,
        **_attributes(op, formula, out_type),
    }
    params = []
    for k, (value, dtype) in enumerate(zip(op.operands, dtypes)):
        dims, index = broadcast(shape_of(value), iters, names)
        params.append(f"X{k}: {dtype}[{', '.join(dims)}]")
        subs[f"x{k}"] = f"X{k}[{', '.join(index)}]"
        subs[f"T{k}"] = dtype
    subs["params"] = ", ".join(params)
    template = instantiate(ELEMENTWISE, subs=subs)
    return build(op, template, [f"X{k}" for k in range(len(dtypes))], ["Y"])


GELU = {
    "none": "0.5 * $x0 * (1 + erf($x0 * 0.7071067811865476))",
    "tanh": "0.5 * $x0 * (1 + tanh(0.7978845608028654 * ($x0 + 0.044715 * $x0 * $x0 * $x0)))",
}
