"""The typed AST of a tensor-expression definition.

Every node is a frozen dataclass; source positions (``loc``) do not take part in
equality, so two definitions that print the same compare equal. Index and size
expressions are `Poly` values (see `mlc.texpr.affine`). `format_definition` /
`format_expr` (and `str(definition)`) print source text that `parse` reads back; they are
here, with the nodes, and `mlc.texpr.printer` re-exports them.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterator as PyIterator
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from mlc.texpr.affine import Poly, const
from mlc.texpr.dtypes import DTYPES, highest, is_float, lowest
from mlc.texpr.errors import Loc

#: Reduction and assignment operators of a statement.
AssignOp = Literal["=", "+=", "*=", "max=", "min="]
REDUCTION_OPS: tuple[str, ...] = ("+=", "*=", "max=", "min=")
#: Scalar functions: name -> arity. Casts (``f32(x)``) are `Cast` nodes instead.
FLOAT_FUNCTIONS = frozenset(
    {
        *("exp", "expm1", "log", "log1p", "sqrt", "rsqrt", "tanh", "sigmoid", "erf"),
        *("sin", "cos", "tan", "asin", "acos", "atan", "sinh", "cosh", "asinh", "acosh"),
        *("atanh", "floor", "ceil", "round", "pow"),
    }
)
#: Bitwise functions of integers (not bool): ``bitnot(x)``, ``bitand(x, y)``, ...;
#: ``shl(x, n)`` / ``shr(x, n)`` shift by ``n`` taken unsigned (so a negative ``n`` is
#: out of range), an amount >= the width giving 0 (``shr`` of a negative signed ``x``: -1).
INT_FUNCTIONS: dict[str, int] = {
    "bitnot": 1,
    "bitand": 2,
    "bitor": 2,
    "bitxor": 2,
    "shl": 2,
    "shr": 2,
}
FUNCTIONS: dict[str, int] = {
    **{name: 1 for name in FLOAT_FUNCTIONS},
    **INT_FUNCTIONS,
    "pow": 2,
    "abs": 1,
    "max": 2,
    "min": 2,
    "select": 3,
}
ARITH_OPS = frozenset({"+", "-", "*", "/", "%"})
COMPARE_OPS = frozenset({"<", "<=", ">", ">=", "==", "!="})
LOGIC_OPS = frozenset({"and", "or"})


@dataclass(frozen=True)
class Const:
    """A literal (``2``, ``0.5``, ``inf``, ``lowest``, ``true``) resolved to ``dtype``."""

    value: int | float | bool
    dtype: str
    loc: Loc | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True)
class Read:
    """A tensor element ``tensor[indices]``; indices are integer-affine in the iterators."""

    tensor: str
    indices: tuple[Poly, ...]
    dtype: str
    loc: Loc | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True)
class Index:
    """An iterator/size expression used as an i64 value (``f32(i)``, ``c < CA``)."""

    expr: Poly
    dtype: str = "i64"
    loc: Loc | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True)
class Unary:
    """``-x`` or ``not x``."""

    op: Literal["-", "not"]
    operand: Expr
    dtype: str
    loc: Loc | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True)
class Binary:
    """Arithmetic (``+ - * / %``), comparison or logical (``and or``) operation.

    Operands share one dtype. Integer ``/`` truncates towards zero and ``%`` takes the
    dividend's sign (C, LLVM ``sdiv``/``srem``); float ``%`` is ``fmod``.
    """

    op: str
    lhs: Expr
    rhs: Expr
    dtype: str
    loc: Loc | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True)
class Call:
    """A scalar function: a math function, ``max``/``min``/``pow`` or ``select(c, a, b)``."""

    fn: str
    args: tuple[Expr, ...]
    dtype: str
    loc: Loc | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True)
class Cast:
    """``f32(x)``: conversion (float->int truncates; x->bool is x != 0)."""

    operand: Expr
    dtype: str
    loc: Loc | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True)
class Guarded:
    """``subject if in bounds else fallback``: ``fallback`` where any read of ``subject``
    (outside nested guards) is out of bounds, else ``subject``."""

    subject: Expr
    fallback: Expr
    dtype: str
    loc: Loc | None = field(default=None, compare=False, repr=False)


Expr = Const | Read | Index | Unary | Binary | Call | Cast | Guarded


def children(expr: Expr) -> tuple[Expr, ...]:
    """The direct sub-expressions of a node."""
    if isinstance(expr, Unary | Cast):
        return (expr.operand,)
    if isinstance(expr, Binary):
        return (expr.lhs, expr.rhs)
    if isinstance(expr, Call):
        return expr.args
    if isinstance(expr, Guarded):
        return (expr.subject, expr.fallback)
    return ()


def walk(expr: Expr) -> PyIterator[Expr]:
    """Every node of ``expr``, pre-order."""
    yield expr
    for child in children(expr):
        yield from walk(child)


def reads(expr: Expr) -> PyIterator[tuple[Read, bool]]:
    """Every `Read` of ``expr`` with whether a `Guarded` subject encloses it."""

    def go(e: Expr, guarded: bool) -> PyIterator[tuple[Read, bool]]:
        if isinstance(e, Read):
            yield e, guarded
        elif isinstance(e, Guarded):
            yield from go(e.subject, True)
            yield from go(e.fallback, guarded)
        else:
            for child in children(e):
                yield from go(child, guarded)

    return go(expr, False)


def free_iterators(expr: Expr) -> frozenset[str]:
    """Names of the iterators ``expr`` depends on."""
    names: set[str] = set()
    for node in walk(expr):
        if isinstance(node, Read):
            for index in node.indices:
                names |= index.iterators()
        elif isinstance(node, Index):
            names |= node.expr.iterators()
    return frozenset(names)


@dataclass(frozen=True)
class Iterator:
    """An index variable ranging over ``[lower, upper)``; parallel iff it indexes the target."""

    name: str
    lower: Poly
    upper: Poly
    kind: Literal["parallel", "reduction"]

    @property
    def extent(self) -> Poly:
        """``upper - lower``."""
        return self.upper - self.lower


@dataclass(frozen=True)
class TensorDecl:
    """A typed tensor: an input, an output or a statement-defined local."""

    name: str
    dtype: str
    shape: tuple[Poly, ...]
    loc: Loc | None = field(default=None, compare=False, repr=False)

    @property
    def rank(self) -> int:
        """Number of dimensions."""
        return len(self.shape)


@dataclass(frozen=True)
class Statement:
    """``target[indices] op body``, over the iteration domain ``iterators``.

    ``iterators`` lists the parallel iterators in target-index order, then the
    reduction iterators in order of first use. ``init`` is true where the statement
    is the first write of its target: a reduction then starts from its identity
    (0, 1, lowest, highest); otherwise it accumulates into the current value.
    """

    target: str
    indices: tuple[str, ...]
    op: AssignOp
    body: Expr
    iterators: tuple[Iterator, ...]
    init: bool
    loc: Loc | None = field(default=None, compare=False, repr=False)

    @property
    def parallel(self) -> tuple[Iterator, ...]:
        """The parallel iterators, in target-index order."""
        return tuple(i for i in self.iterators if i.kind == "parallel")

    @property
    def reduction(self) -> tuple[Iterator, ...]:
        """The reduction iterators."""
        return tuple(i for i in self.iterators if i.kind == "reduction")

    def iterator(self, name: str) -> Iterator:
        """The iterator called ``name``."""
        for i in self.iterators:
            if i.name == name:
                return i
        raise KeyError(name)

    def reads(self) -> tuple[Read, ...]:
        """Every tensor read in the body."""
        return tuple(r for r, _ in reads(self.body))


@dataclass(frozen=True)
class SizeParam:
    """A declared size parameter ``<S = 1>``, for sizes that are not input dimensions."""

    name: str
    default: int | None = None


@dataclass(frozen=True)
class Definition:
    """A parsed, type- and bounds-checked tensor-expression definition.

    An output whose name is also an input is in-out: it starts with the input's value.
    """

    name: str
    params: tuple[SizeParam, ...]
    inputs: tuple[TensorDecl, ...]
    outputs: tuple[TensorDecl, ...]
    locals: tuple[TensorDecl, ...]
    statements: tuple[Statement, ...]
    loc: Loc | None = field(default=None, compare=False, repr=False)

    def tensor(self, name: str) -> TensorDecl:
        """The input, output or local called ``name``."""
        for decl in (*self.inputs, *self.outputs, *self.locals):
            if decl.name == name:
                return decl
        raise KeyError(name)

    @property
    def inouts(self) -> frozenset[str]:
        """Names of the in-out tensors (declared as both input and output)."""
        return frozenset(d.name for d in self.inputs) & frozenset(d.name for d in self.outputs)

    @functools.cached_property
    def symbols(self) -> tuple[str, ...]:
        """Every size symbol: parameters, then those of shapes and ranges, in order of
        appearance (computed once: a definition is immutable)."""
        names: dict[str, None] = {p.name: None for p in self.params}
        for decl in (*self.inputs, *self.outputs, *self.locals):
            for dim in decl.shape:
                names.update(dict.fromkeys(sorted(dim.symbols())))
        for stmt in self.statements:
            for itr in stmt.iterators:
                names.update(dict.fromkeys(sorted(itr.lower.symbols() | itr.upper.symbols())))
            for node in walk(stmt.body):
                if isinstance(node, Read):
                    for index in node.indices:
                        names.update(dict.fromkeys(sorted(index.symbols())))
                elif isinstance(node, Index):
                    names.update(dict.fromkeys(sorted(node.expr.symbols())))
        return tuple(names)

    @property
    def iterators(self) -> tuple[Iterator, ...]:
        """The iterators of a single-statement definition (else use ``statements[i].iterators``)."""
        if len(self.statements) != 1:
            raise ValueError(
                f"`{self.name}` has {len(self.statements)} statements; "
                "iterators are per statement: use .statements[i].iterators"
            )
        return self.statements[0].iterators

    def __str__(self) -> str:
        return format_definition(self)


# --------------------------------------------------------------------------- source text
# (here, not in a module of its own, so that `Definition.__str__` needs no import)

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
