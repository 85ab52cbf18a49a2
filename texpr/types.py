"""Type inference for scalar expressions: untyped literals, dtype unification, typed operations.

Literals are untyped until context fixes their type (as Go's constants are): ``2``
fits any numeric type, ``0.5``/``inf``/``nan`` any float type, ``lowest``/``highest``
any type. While inferring, a node's dtype may be one of the placeholders below;
`resolve` rewrites a subtree to a concrete dtype.
"""

from __future__ import annotations

import dataclasses

from mlc.texpr.affine import Poly, const
from mlc.texpr.ast import ARITH_OPS, Binary, Call, Cast, Const, Expr, Guarded, Index, Unary
from mlc.texpr.dtypes import DTYPES, highest, int_range, is_float, is_int, lowest
from mlc.texpr.errors import Loc, TexprError, error_at

UNTYPED_INT = "#int"
UNTYPED_FLOAT = "#float"
UNTYPED_ANY = "#any"
_UNTYPED_RANK = {UNTYPED_ANY: 0, UNTYPED_INT: 1, UNTYPED_FLOAT: 2}
_DESCRIPTION = {
    UNTYPED_INT: "an integer literal",
    UNTYPED_FLOAT: "a float literal",
    UNTYPED_ANY: "`lowest`/`highest`",
}


def is_untyped(dtype: str) -> bool:
    """Whether ``dtype`` is a placeholder of an untyped literal expression."""
    return dtype.startswith("#")


def describe(dtype: str) -> str:
    """A dtype or placeholder in words."""
    return _DESCRIPTION.get(dtype, dtype)


def fits(untyped: str, dtype: str) -> bool:
    """Whether an untyped expression can take type ``dtype``."""
    if untyped == UNTYPED_ANY:
        return True
    if untyped == UNTYPED_INT:
        return dtype != "bool"
    return is_float(dtype)


def unify(a: str, b: str, what: str, loc: Loc | None) -> str:
    """The common dtype of two operands of ``what``; raises on a mismatch."""
    if not is_untyped(a) and not is_untyped(b):
        if a != b:
            raise error_at(loc, f"dtype mismatch in {what}: {a} vs {b}{_hint(a, b)}")
        return a
    if is_untyped(a) and is_untyped(b):
        return a if _UNTYPED_RANK[a] >= _UNTYPED_RANK[b] else b
    typed, untyped = (b, a) if is_untyped(a) else (a, b)
    if not fits(untyped, typed):
        raise error_at(loc, f"dtype mismatch in {what}: {describe(untyped)} cannot be {typed}")
    return typed


def _hint(a: str, b: str) -> str:
    if "i64" in (a, b):
        return " (iterators and sizes are i64 values: cast them, e.g. f32(i))"
    return " (insert a cast, e.g. f32(x))"


def default_type(dtype: str, loc: Loc | None) -> str:
    """The dtype an untyped expression takes where nothing else decides (i64, f64)."""
    if dtype == UNTYPED_INT:
        return "i64"
    if dtype == UNTYPED_FLOAT:
        return "f64"
    if dtype == UNTYPED_ANY:
        raise error_at(loc, "cannot infer the dtype of `lowest`/`highest` here")
    return dtype


def resolve(expr: Expr, dtype: str) -> Expr:
    """``expr`` with its untyped literals given type ``dtype`` (checked by the caller)."""
    if not is_untyped(expr.dtype) or is_untyped(dtype):
        return expr
    if isinstance(expr, Const):
        return Const(_literal_value(expr, dtype), dtype, expr.loc)
    if isinstance(expr, Unary):
        return Unary(expr.op, resolve(expr.operand, dtype), dtype, expr.loc)
    if isinstance(expr, Binary):
        return Binary(expr.op, resolve(expr.lhs, dtype), resolve(expr.rhs, dtype), dtype, expr.loc)
    if isinstance(expr, Call):
        args = expr.args
        resolved: tuple[Expr, ...]
        if expr.fn == "select":
            resolved = (args[0], resolve(args[1], dtype), resolve(args[2], dtype))
        else:
            resolved = tuple(resolve(a, dtype) for a in args)
        return Call(expr.fn, resolved, dtype, expr.loc)
    if isinstance(expr, Guarded):
        return Guarded(resolve(expr.subject, dtype), resolve(expr.fallback, dtype), dtype, expr.loc)
    if isinstance(expr, Cast):  # pragma: no cover - casts are always typed
        return expr
    return dataclasses.replace(expr, dtype=dtype)


def _literal_value(const: Const, dtype: str) -> int | float | bool:
    value = const.value
    if const.dtype == UNTYPED_ANY:  # `lowest` is -inf and `highest` +inf, saturated to dtype
        return lowest(dtype) if value < 0 else highest(dtype)
    if dtype == "bool":
        if not isinstance(value, bool):
            raise error_at(const.loc, f"literal {value} is not a bool")
        return value
    if is_int(dtype):
        lo, hi = int_range(dtype)
        if not isinstance(value, int) or not lo <= value <= hi:
            raise error_at(const.loc, f"literal {value} does not fit in {dtype}")
        return int(value)
    assert dtype in DTYPES
    return float(value)


# -- typed construction of operations --------------------------------------------------


def require_bool(expr: Expr, what: str) -> None:
    """Raise unless ``expr`` is a bool."""
    if expr.dtype != "bool":
        raise _expr_error(expr, f"{what} needs a bool operand, got {describe(expr.dtype)}")


def _expr_error(expr: Expr, message: str) -> TexprError:
    return expr.loc.error(message) if expr.loc is not None else TexprError(message)


def negate(operand: Expr, loc: Loc) -> Expr:
    """``-operand``, folded into literals and iterator expressions."""
    if operand.dtype == "bool":
        raise loc.error("unary `-` needs a numeric operand, got bool")
    if isinstance(operand, Const) and operand.dtype in (UNTYPED_INT, UNTYPED_FLOAT):
        return Const(-operand.value, operand.dtype, loc)
    if isinstance(operand, Index):
        return Index(-operand.expr, "i64", loc)
    return Unary("-", operand, operand.dtype, loc)


def arith(op: str, a: Expr, b: Expr, loc: Loc) -> Expr:
    """``a op b`` for ``+ - * / %``; folds integer constants and iterator arithmetic."""
    assert op in ARITH_OPS
    dtype = unify(a.dtype, b.dtype, f"`{op}`", loc)
    if dtype == "bool":
        raise loc.error(f"`{op}` needs numeric operands, got bool")
    if op in "+-*":
        folded = _fold(op, a, b, loc)
        if folded is not None:
            return folded
    return Binary(op, resolve(a, dtype), resolve(b, dtype), dtype, loc)


def _fold(op: str, a: Expr, b: Expr, loc: Loc) -> Expr | None:
    """``a op b`` as an `Index` (or integer literal) when both are iterator/size/int terms."""

    def as_poly(e: Expr) -> Poly | None:
        if isinstance(e, Index):
            return e.expr
        if isinstance(e, Const) and e.dtype == UNTYPED_INT:
            return const(int(e.value))
        return None

    pa, pb = as_poly(a), as_poly(b)
    if pa is None or pb is None:
        return None
    result = pa + pb if op == "+" else pa - pb if op == "-" else pa * pb
    if isinstance(a, Const) and isinstance(b, Const):
        return Const(result.const_value(), UNTYPED_INT, loc)
    return Index(result, "i64", loc)
