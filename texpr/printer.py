"""Source text of definitions and expressions (parseable back by `parse`)."""

from __future__ import annotations

import math
from collections.abc import Mapping

from mlc.texpr.affine import Poly, const
from mlc.texpr.ast import (
    COMPARE_OPS,
    Binary,
    Call,
    Cast,
    Const,
    Definition,
    Expr,
    Guarded,
    Index,
    Read,
    Statement,
    TensorDecl,
    Unary,
    reads,
)
from mlc.texpr.dtypes import DTYPES, highest, is_float, lowest

# Binding strength, loosest first.
_GUARD, _OR, _AND, _NOT, _COMPARE, _SUM, _PRODUCT, _UNARY, _ATOM = range(9)
_BINARY_LEVEL = {
    "or": _OR,
    "and": _AND,
    "+": _SUM,
    "-": _SUM,
    "*": _PRODUCT,
    "/": _PRODUCT,
    "%": _PRODUCT,
}


def format_expr(expr: Expr) -> str:
    """Source text of a scalar expression."""
    return _format(expr)[0]


def _poly_level(poly: Poly) -> int:
    if len(poly.terms) > 1:
        return _SUM
    if poly.terms and (poly.terms[0][1] < 0):
        return _UNARY
    if poly.terms and (poly.terms[0][1] != 1 or len(poly.terms[0][0]) > 1):
        return _PRODUCT
    return _ATOM


def _const(expr: Const) -> tuple[str, int]:
    value = expr.value
    if isinstance(value, bool):
        return ("true" if value else "false"), _ATOM
    if is_float(expr.dtype):
        value = float(value)
        if math.isnan(value):
            return "nan", _ATOM
        text = "inf" if math.isinf(value) else repr(abs(value))
        return ("-" + text, _UNARY) if value < 0 else (text, _ATOM)
    if expr.dtype in DTYPES and value in (lowest(expr.dtype), highest(expr.dtype)):
        # Integer literals fold (`2 + -128` parses as `-126`) but `lowest` does not.
        return ("lowest" if value == lowest(expr.dtype) else "highest"), _ATOM
    return (str(value), _UNARY) if int(value) < 0 else (str(value), _ATOM)


def _format(expr: Expr) -> tuple[str, int]:
    """Text and binding level of ``expr``."""
    if isinstance(expr, Const):
        return _const(expr)
    if isinstance(expr, Read):
        return f"{expr.tensor}[{', '.join(str(i) for i in expr.indices)}]", _ATOM
    if isinstance(expr, Index):
        return str(expr.expr), _poly_level(expr.expr)
    if isinstance(expr, Cast):
        return f"{expr.dtype}({format_expr(expr.operand)})", _ATOM
    if isinstance(expr, Call):
        return f"{expr.fn}({', '.join(format_expr(a) for a in expr.args)})", _ATOM
    if isinstance(expr, Unary):
        if expr.op == "not":
            return f"not {_wrap(expr.operand, _NOT)}", _NOT
        operand = expr.operand
        if isinstance(operand, Const) and is_float(operand.dtype) and math.isinf(operand.value):
            # Only `-lowest`/`-highest` parse to a negated literal (`-` folds into other
            # literals, so `--inf` would re-parse as `inf`).
            return ("-lowest" if operand.value < 0 else "-highest"), _UNARY
        return f"-{_wrap(operand, _UNARY)}", _UNARY
    if isinstance(expr, Guarded):
        return (
            f"{_wrap(expr.subject, _OR)} if in bounds else {_wrap(expr.fallback, _GUARD)}",
            _GUARD,
        )
    assert isinstance(expr, Binary)
    if expr.op in COMPARE_OPS:
        return f"{_wrap(expr.lhs, _SUM)} {expr.op} {_wrap(expr.rhs, _SUM)}", _COMPARE
    level = _BINARY_LEVEL[expr.op]
    return f"{_wrap(expr.lhs, level)} {expr.op} {_wrap(expr.rhs, level + 1)}", level


def _wrap(expr: Expr, level: int) -> str:
    text, own = _format(expr)
    return text if own >= level else f"({text})"


def _decl(decl: TensorDecl) -> str:
    return f"{decl.name}: {decl.dtype}[{', '.join(str(d) for d in decl.shape)}]"


def _implied_ranges(
    stmt: Statement, shapes: Mapping[str, tuple[Poly, ...]], lhs_counts: bool
) -> set[str]:
    """Iterators whose range the parser would infer from the dimensions they index."""
    uses: dict[str, list[tuple[Poly, bool]]] = {}
    if lhs_counts:
        for d, name in enumerate(stmt.indices):
            uses.setdefault(name, []).append((shapes[stmt.target][d], False))
    for read, guarded in reads(stmt.body):
        for d, index in enumerate(read.indices):
            used = index.as_iterator()
            if used is not None:
                uses.setdefault(used, []).append((shapes[read.tensor][d], guarded))
    implied = set()
    for itr in stmt.iterators:
        found = uses.get(itr.name, [])
        sizes = [s for s, g in found if not g] or [s for s, _ in found]
        if sizes and itr.lower == const(0) and all(s == itr.upper for s in sizes):
            implied.add(itr.name)
    return implied


def format_statement(stmt: Statement, implied: set[str] | frozenset[str] = frozenset()) -> str:
    """Source text of a statement; a ``where`` clause gives the ranges not in ``implied``."""
    text = f"{stmt.target}[{', '.join(stmt.indices)}] {stmt.op} {format_expr(stmt.body)}"
    ranges = [f"{i.name} in {i.lower}..{i.upper}" for i in stmt.iterators if i.name not in implied]
    return text + " where " + ", ".join(ranges) if ranges else text


def format_definition(defn: Definition) -> str:
    """Source text of a definition (ranges the shapes imply are left out)."""
    params = ""
    if defn.params:
        parts = [p.name if p.default is None else f"{p.name} = {p.default}" for p in defn.params]
        params = "<" + ", ".join(parts) + ">"
    inputs = ", ".join(_decl(d) for d in defn.inputs)
    outputs = ", ".join(_decl(d) for d in defn.outputs)
    if len(defn.outputs) != 1:
        outputs = f"({outputs})"
    shapes = {d.name: d.shape for d in (*defn.inputs, *defn.outputs, *defn.locals)}
    local_names = {d.name for d in defn.locals}
    lines = []
    for stmt in defn.statements:
        implied = _implied_ranges(stmt, shapes, not (stmt.init and stmt.target in local_names))
        lines.append("  " + format_statement(stmt, implied))
    body = "\n".join(lines)
    return f"{defn.name}{params}({inputs}) -> {outputs} {{\n{body}\n}}"
