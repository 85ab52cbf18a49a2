"""The affine index syntax of tl ops (`%A[oh * 2 + kh - 1, k]`, `at(m = %mo * 8 + %mi)`):
parsing and printing affine expressions with named dims, and exact / interval bounds of
an expression over a box of dim values."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

from xdsl.context import Context
from xdsl.ir.affine import (
    AffineBinaryOpExpr,
    AffineBinaryOpKind,
    AffineConstantExpr,
    AffineDimExpr,
    AffineExpr,
)
from xdsl.parser import Parser

from mlc.dialects.tl.attrs import TlError

RESERVED_NAMES = frozenset({"floordiv", "ceildiv", "mod"})
IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


def parse_affine_expr(parser: Parser, leaf: Callable[[], AffineExpr | None]) -> AffineExpr:
    """Parse `term (('+' | '-') term)*` where a term is `factor (('*' | 'floordiv' |
    'ceildiv' | 'mod') factor)*` and a factor is `(expr)`, `-factor`, an integer, or
    whatever `leaf` parses (iterator names, SSA values)."""
    expr = _parse_affine_term(parser, leaf)
    while True:
        if parser.parse_optional_punctuation("+"):
            expr = expr + _parse_affine_term(parser, leaf)
        elif parser.parse_optional_punctuation("-"):
            expr = expr - _parse_affine_term(parser, leaf)
        else:
            return expr


def _parse_affine_term(parser: Parser, leaf: Callable[[], AffineExpr | None]) -> AffineExpr:
    expr = _parse_affine_factor(parser, leaf)
    while True:
        pos = parser.pos
        if parser.parse_optional_punctuation("*"):
            rhs = _parse_affine_factor(parser, leaf)
            if not isinstance(rhs, AffineConstantExpr) and not isinstance(expr, AffineConstantExpr):
                parser.raise_error("non-affine product: one factor must be a constant", pos)
            expr = expr * rhs
            continue
        keyword = parser.parse_optional_keyword_in(("floordiv", "ceildiv", "mod"))
        if keyword is None:
            return expr
        rhs = _parse_affine_factor(parser, leaf)
        if not isinstance(rhs, AffineConstantExpr) or rhs.value <= 0:
            parser.raise_error(f"'{keyword}' needs a positive constant divisor", pos)
        if keyword == "floordiv":
            expr = expr // rhs
        elif keyword == "ceildiv":
            expr = expr.ceil_div(rhs)
        else:
            expr = expr % rhs


def _parse_affine_factor(parser: Parser, leaf: Callable[[], AffineExpr | None]) -> AffineExpr:
    if parser.parse_optional_punctuation("("):
        expr = parse_affine_expr(parser, leaf)
        parser.parse_punctuation(")")
        return expr
    if parser.parse_optional_punctuation("-"):
        return -_parse_affine_factor(parser, leaf)
    if (
        value := parser.parse_optional_integer(allow_boolean=False, allow_negative=False)
    ) is not None:
        return AffineExpr.constant(value)
    if (expr := leaf()) is not None:
        return expr
    parser.raise_error("expected an affine expression")


def affine_tokens(expr: AffineExpr) -> list[str | int]:
    """The printed form of `expr` as a token list: strings, and ints standing for dims
    (the caller prints a dim by name). Parsing the printed text gives `expr` back."""
    out: list[str | int] = []
    _expr_tokens(expr, out)
    return out


def _expr_tokens(expr: AffineExpr, out: list[str | int]) -> None:
    if isinstance(expr, AffineDimExpr):
        out.append(expr.position)
    elif isinstance(expr, AffineConstantExpr):
        out.append(str(expr.value))
    elif isinstance(expr, AffineBinaryOpExpr):
        if expr.kind == AffineBinaryOpKind.Add:
            _expr_tokens(expr.lhs, out)
            rhs = expr.rhs
            if isinstance(rhs, AffineConstantExpr) and rhs.value < 0:
                out.append(f" - {-rhs.value}")
            elif (
                isinstance(rhs, AffineBinaryOpExpr)
                and rhs.kind == AffineBinaryOpKind.Mul
                and isinstance(rhs.rhs, AffineConstantExpr)
                and rhs.rhs.value < 0
            ):
                out.append(" - ")
                if rhs.rhs.value == -1:
                    _term_tokens(rhs.lhs, out)
                else:
                    _term_tokens(rhs.lhs, out)
                    out.append(f" * {-rhs.rhs.value}")
            elif isinstance(rhs, AffineBinaryOpExpr) and rhs.kind == AffineBinaryOpKind.Add:
                out.append(" + (")
                _expr_tokens(rhs, out)
                out.append(")")
            else:
                out.append(" + ")
                _expr_tokens(rhs, out)
        else:
            _term_tokens(expr.lhs, out)
            out.append(f" {expr.kind.get_token()} ")
            if isinstance(expr.rhs, AffineDimExpr | AffineConstantExpr):
                _expr_tokens(expr.rhs, out)
            else:
                out.append("(")
                _expr_tokens(expr.rhs, out)
                out.append(")")
    else:
        raise TlError(f"unsupported affine expression {expr}")


def _term_tokens(expr: AffineExpr, out: list[str | int]) -> None:
    """`expr` as the left operand of a multiplicative operator."""
    if isinstance(expr, AffineBinaryOpExpr) and expr.kind == AffineBinaryOpKind.Add:
        out.append("(")
        _expr_tokens(expr, out)
        out.append(")")
    else:
        _expr_tokens(expr, out)


def format_affine_expr(expr: AffineExpr, names: Sequence[str]) -> str:
    """`expr` printed with dim `i` written as `names[i]`: `oh * 2 + kh - 1`."""
    return "".join(names[t] if isinstance(t, int) else t for t in affine_tokens(expr))


def parse_index_list(text: str, names: Sequence[str]) -> list[AffineExpr]:
    """Parse `"m, k"`, `"[m, k]"` or `"(m, n, k) -> (m, k)"` into affine expressions over
    the iterators `names` (in the arrow form the dim list must be `names`)."""
    parser = Parser(Context(), text, "<index list>")
    if "->" in text:
        dims = parser.parse_comma_separated_list(Parser.Delimiter.PAREN, parser.parse_identifier)
        if list(dims) != list(names):
            raise TlError(f"index map over ({', '.join(dims)}) but the iterators are {names}")
        parser.parse_punctuation("->")
        delimiter = Parser.Delimiter.PAREN
    elif text.strip().startswith("["):
        delimiter = Parser.Delimiter.SQUARE
    else:
        delimiter = Parser.Delimiter.NONE
    if delimiter == Parser.Delimiter.NONE and not text.strip():
        return []
    leaf = name_leaf(parser, names)
    return parser.parse_comma_separated_list(delimiter, lambda: parse_affine_expr(parser, leaf))


def name_leaf(parser: Parser, names: Sequence[str]) -> Callable[[], AffineExpr | None]:
    def leaf() -> AffineExpr | None:
        pos = parser.pos
        name = parser.parse_optional_identifier()
        if name is None:
            return None
        if name not in names:
            parser.raise_error(f"unknown iterator '{name}' (iterators: {', '.join(names)})", pos)
        return AffineExpr.dimension(list(names).index(name))

    return leaf


Interval = tuple[int, int]


def affine_range(expr: AffineExpr, ranges: Sequence[Interval]) -> Interval:
    """Inclusive bounds of `expr` when dim `i` ranges over `ranges[i]` (inclusive).

    Exact for linear expressions (a sum of distinct dims times constants); floordiv,
    ceildiv and mod are bounded by interval arithmetic (conservative)."""
    coeffs: dict[int, int] = {}
    atoms: list[tuple[int, AffineExpr]] = []
    const = _linearize(expr, 1, coeffs, atoms)
    lo = hi = const
    for dim, c in coeffs.items():
        a, b = c * ranges[dim][0], c * ranges[dim][1]
        lo, hi = lo + min(a, b), hi + max(a, b)
    for c, atom in atoms:
        alo, ahi = _atom_range(atom, ranges)
        a, b = c * alo, c * ahi
        lo, hi = lo + min(a, b), hi + max(a, b)
    return lo, hi


def linear_form(expr: AffineExpr) -> tuple[dict[int, int], list[tuple[int, AffineExpr]], int]:
    """`expr` as `sum(c_d * dim_d) + sum(c_a * atom_a) + const`: dim coefficients (zero ones
    dropped), non-linear atoms (floordiv / ceildiv / mod terms) with coefficients, and the
    constant."""
    coeffs: dict[int, int] = {}
    atoms: list[tuple[int, AffineExpr]] = []
    const = _linearize(expr, 1, coeffs, atoms)
    return {d: c for d, c in coeffs.items() if c}, atoms, const


def _linearize(
    expr: AffineExpr, scale: int, coeffs: dict[int, int], atoms: list[tuple[int, AffineExpr]]
) -> int:
    if isinstance(expr, AffineConstantExpr):
        return scale * expr.value
    if isinstance(expr, AffineDimExpr):
        coeffs[expr.position] = coeffs.get(expr.position, 0) + scale
        return 0
    if isinstance(expr, AffineBinaryOpExpr):
        if expr.kind == AffineBinaryOpKind.Add:
            return _linearize(expr.lhs, scale, coeffs, atoms) + _linearize(
                expr.rhs, scale, coeffs, atoms
            )
        if expr.kind == AffineBinaryOpKind.Mul:
            if isinstance(expr.rhs, AffineConstantExpr):
                return _linearize(expr.lhs, scale * expr.rhs.value, coeffs, atoms)
            if isinstance(expr.lhs, AffineConstantExpr):
                return _linearize(expr.rhs, scale * expr.lhs.value, coeffs, atoms)
    atoms.append((scale, expr))
    return 0


def _atom_range(expr: AffineExpr, ranges: Sequence[Interval]) -> Interval:
    assert isinstance(expr, AffineBinaryOpExpr)
    lo, hi = affine_range(expr.lhs, ranges)
    if not isinstance(expr.rhs, AffineConstantExpr) or expr.rhs.value <= 0:
        raise TlError(f"unsupported affine expression {expr}")
    d = expr.rhs.value
    if expr.kind == AffineBinaryOpKind.FloorDiv:
        return lo // d, hi // d
    if expr.kind == AffineBinaryOpKind.CeilDiv:
        return -(-lo // d), -(-hi // d)
    if expr.kind == AffineBinaryOpKind.Mod:
        if lo // d == hi // d:
            return lo % d, hi % d
        return 0, d - 1
    raise TlError(f"unsupported affine expression {expr}")
