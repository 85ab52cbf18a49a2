"""Templates of op families, their instantiation, and the `Expression` they produce.

A family template is tensor-expression text with three kinds of holes:

1. ``?flag`` / ``!flag`` at the start of a line: the line is kept only if ``flag`` is
   set / not set (optional operands such as a bias).
2. Axis macros ``@list(body)``: ``body`` repeated for every axis of the named axis list
   (the unnamed list for ``@(...)``), with ``#`` replaced by the axis number, joined by
   ``, ``. ``@list+(...)``, ``@list*(...)`` and ``@list&(...)`` join with ``+``, ``*`` and
   ``and`` (empty: ``0``, ``1``, ``true``). Macros nest; the innermost expands first.
   ``@(o# * S# + k# * D# - P#)`` over axes 0, 1 is ``o0 * S0 + k0 * D0 - P0, o1 * ...``.
3. ``$name``: text from the family code (dtypes, attribute literals, index lists); the
   text may itself hold macros. A hole a macro makes (``$start#`` -> ``$start0``) is
   filled after the macros.

A separator left dangling by an empty expansion (``X[n, c, ]``, ``<>``, ``where``) is
removed. The text is then parsed (and bounds-checked for all sizes) and specialized to
the op's sizes. ``<...>`` size parameters hold the attributes a template is valid for
symbolically (strides, pads, groups, kernel sizes); attributes whose validity the
bounds check cannot see from the shapes (slice starts, pad regions) are substituted as
literals instead.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace

import numpy as np
from xdsl.dialects import memref
from xdsl.dialects.builtin import (
    DenseIntOrFPElementsAttr,
    TensorType,
    UnrealizedConversionCastOp,
)
from xdsl.ir import Operation, SSAValue
from xdsl.traits import SymbolTable

from mlc.dialects.graph.elementwise import ConstantOp, dense_to_array
from mlc.dialects.graph.types import numpy_dtype
from mlc.texpr import (
    Binary,
    Call,
    Cast,
    Const,
    Definition,
    Expr,
    Guarded,
    Index,
    Iterator,
    Poly,
    Read,
    Statement,
    TensorDecl,
    Unary,
    check_bounds_at,
    const,
    evaluate,
    infer_sizes,
    it,
    parse,
    reads,
    specialize,
)
from mlc.texpr import numpy_dtype as texpr_numpy_dtype
from mlc.texpr.affine import FloorDiv, Iter, Mod
from mlc.texpr.dtypes import dtype_name, is_float

Array = np.ndarray


class ExpressionError(Exception):
    """An op instance outside what its family's expression covers (see `LIMITATIONS`)."""


@dataclass(frozen=True)
class Expression:
    """An op's semantics as a texpr definition, specialized to its attributes and shapes.

    ``operands[i]`` / ``results[i]`` name the definition input / output that stands for
    ``op.operands[i]`` / ``op.results[i]``. ``template`` is the family definition before
    specialization and ``sizes`` the values its sizes took.
    """

    definition: Definition
    operands: tuple[str, ...]
    results: tuple[str, ...]
    template: Definition
    sizes: Mapping[str, int] = field(default_factory=dict)

    def evaluate(self, *arrays: Array) -> tuple[Array, ...]:
        """The results for operand arrays given in op operand order."""
        if len(arrays) != len(self.operands):
            raise ExpressionError(f"expected {len(self.operands)} operands, got {len(arrays)}")
        out = evaluate(self.definition, **dict(zip(self.operands, arrays, strict=True)))
        return tuple(out[name] for name in self.results)


# -- dtypes and literals ----------------------------------------------------------------


def dtype_of(value: SSAValue) -> str:
    """The texpr element type of a tensor value (``i1`` -> ``bool``, ``ui8`` -> ``u8``)."""
    ty = value.type
    assert isinstance(ty, TensorType)
    name = dtype_name(numpy_dtype(ty.element_type))
    assert name is not None, ty
    return name


def shape_of(value: SSAValue) -> tuple[int, ...]:
    """The static shape of a tensor value."""
    ty = value.type
    assert isinstance(ty, TensorType)
    return tuple(ty.get_shape())


def constant_value(value: SSAValue) -> np.ndarray | None:
    """The value of a tensor that is a constant, or None: a `graph.constant`, or (once
    `convert-graph-to-tl` lowered it, before the op that reads it) the cast of a
    `memref.get_global` of a constant global, read with the tensor's element type."""
    owner = value.owner
    if isinstance(owner, ConstantOp):
        return owner.to_array()
    if not isinstance(owner, UnrealizedConversionCastOp) or len(owner.inputs) != 1:
        return None
    get = owner.inputs[0].owner
    if not isinstance(get, memref.GetGlobalOp):
        return None
    glob = SymbolTable.lookup_symbol(get, get.name_)
    if not isinstance(glob, memref.GlobalOp) or glob.constant is None:
        return None
    init = glob.initial_value
    if not isinstance(init, DenseIntOrFPElementsAttr):
        return None
    assert isinstance(value.type, TensorType)
    return dense_to_array(init).view(numpy_dtype(value.type.element_type))


def compute_dtype(dtype: str) -> str:
    """The type math runs in: f32 for f16/bf16 (rounded once at the end), else ``dtype``."""
    return "f32" if dtype in ("f16", "bf16") else dtype


def float_dtype(dtype: str) -> str:
    """The float type of float math on ``dtype`` (f64 for integers, as the reference)."""
    return compute_dtype(dtype) if is_float(dtype) else "f64"


def lit(value: float | int | bool, dtype: str, via: str | None = None) -> str:
    """``value`` converted to ``dtype`` (as numpy converts; first to ``via`` if given, e.g.
    a bound stored as f16 but compared in f32) as a texpr literal."""
    array = np.asarray(value)
    with np.errstate(over="ignore"):  # out of range: +-inf, as numpy converts
        if via is not None:
            array = array.astype(texpr_numpy_dtype(via))
        v = array.astype(texpr_numpy_dtype(dtype)).item()
    if dtype == "bool":
        return "true" if v else "false"
    if not is_float(dtype):
        return str(int(v)) if v >= 0 else f"({int(v)})"
    f = float(v)
    if f != f:
        return "nan"
    text = "inf" if f == float("inf") else "-inf" if f == float("-inf") else repr(f)
    return f"({text})" if text.startswith("-") else text


# -- instantiation ----------------------------------------------------------------------

_MACRO = re.compile(r"@(\w*)([+*&]?)\(")
_JOIN = {"": (", ", ""), "+": (" + ", "0"), "*": (" * ", "1"), "&": (" and ", "true")}
_SUB = re.compile(r"\$(\w+)")


def expand(
    text: str,
    axes: Mapping[str, Sequence[int]] | None = None,
    subs: Mapping[str, object] | None = None,
    flags: Mapping[str, bool] | None = None,
) -> str:
    """Template text with flags, axis macros and ``$`` substitutions filled in."""
    flags = flags or {}
    lines = []
    for line in text.splitlines():
        m = re.match(r"\s*([?!])(\w+)\s", line)
        if m:
            if flags[m.group(2)] != (m.group(1) == "?"):
                continue
            line = line[m.end() :]
        lines.append(line)
    text = "\n".join(lines)
    values = {k: str(v) for k, v in (subs or {}).items()}
    for _ in range(4):  # substituted text may hold further holes (formula operands, macros)
        text = _SUB.sub(lambda m: values.get(m.group(1), m.group(0)), text)
    axes = axes or {}
    while matches := list(_MACRO.finditer(text)):
        m = matches[-1]  # the last macro contains no other: innermost first
        depth, end = 1, m.end()
        while depth:
            depth += {"(": 1, ")": -1}.get(text[end], 0)
            end += 1
        body = text[m.end() : end - 1]
        sep, empty = _JOIN[m.group(2)]
        items = [body.replace("#", str(a)) for a in axes[m.group(1)]]
        text = text[: m.start()] + (sep.join(items) if items else empty) + text[end:]
    text = _SUB.sub(lambda m: values[m.group(1)], text)  # holes made by macros: `$start#`
    text = re.sub(r",\s*(?=[\]\)>,])", "", text)
    text = re.sub(r"(?<=[\[\(<])\s*,", "", text)
    text = re.sub(r"<\s*>", "", text)
    text = re.sub(r"\s+where\s*(?=[\n;}])", "", text)  # a `where` over no axes
    if any(c in text for c in "#$@"):
        raise AssertionError(f"unexpanded template text:\n{text}")
    return text


def instantiate(
    text: str,
    axes: Mapping[str, Sequence[int]] | None = None,
    subs: Mapping[str, object] | None = None,
    flags: Mapping[str, bool] | None = None,
) -> Definition:
    """Parse an expanded template (cached by text, bounds-checked for all sizes)."""
    return parse(expand(text, axes, subs, flags))


def per_axis(prefix: str, values: Iterable[int]) -> dict[str, int]:
    """``per_axis("S", [2, 1])`` -> ``{"S0": 2, "S1": 1}``."""
    return {f"{prefix}{i}": int(v) for i, v in enumerate(values)}


def build(
    op: Operation,
    template: Definition,
    operands: Sequence[str],
    results: Sequence[str],
    sizes: Mapping[str, int] | None = None,
) -> Expression:
    """Specialize ``template`` to ``op``: bind sizes (checking the operand shapes), specialize,
    simplify, compute f16/bf16 in f32, and check the result shapes."""
    names = {d.name for d in template.inputs}
    shapes = {n: shape_of(v) for n, v in zip(operands, op.operands, strict=True) if n in names}
    bound = infer_sizes(template, shapes, sizes or {})
    defn = simplify(specialize(template, bound))
    real = {n: dtype_of(v) for n, v in zip(operands, op.operands, strict=True)}
    real.update({n: dtype_of(v) for n, v in zip(results, op.results, strict=True)})
    defn = widen(defn, real)
    for name, value in zip(results, op.results, strict=True):
        decl = defn.tensor(name)
        got = tuple(d.const_value() for d in decl.shape)
        if got != shape_of(value) or decl.dtype != real[name]:
            raise AssertionError(
                f"{op.name}: expression gives {name}: {decl.dtype}{list(got)}, "
                f"op has {real[name]}{list(shape_of(value))}"
            )
    return Expression(defn, tuple(operands), tuple(results), template, bound)


# -- index lists ------------------------------------------------------------------------


def broadcast(
    shape: Sequence[int], iters: Sequence[str], names: Sequence[str]
) -> tuple[list[str], list[str]]:
    """Dims and indices of an operand of ``shape`` broadcast (numpy rules) to the output
    iterators ``iters`` with size names ``names``: missing leading axes are not indexed,
    and a size-1 axis is declared ``1`` and read at 0."""
    skip = len(iters) - len(shape)
    dims = ["1" if d == 1 else names[skip + j] for j, d in enumerate(shape)]
    index = ["0" if d == 1 else iters[skip + j] for j, d in enumerate(shape)]
    return dims, index


def size_names(shape: Sequence[int], prefix: str = "D") -> list[str]:
    """Size names of an output shape: ``D0, D1, ...``, or ``1`` for unit axes (which no input
    may bind when every operand broadcasts there)."""
    return [f"{prefix}{a}" if d != 1 else "1" for a, d in enumerate(shape)]


# -- simplification ---------------------------------------------------------------------

Interval = tuple[int, int]


def simplify(defn: Definition) -> Definition:
    """Exact clean-ups after specialization: ``/`` and ``%`` in indices resolved by the
    iterator ranges (``m / 4 * 3 + c`` -> ``c`` when ``m < 4``), guards that no read can
    leave dropped, identity casts and ``1 *`` removed, constant conditions folded."""
    shapes = {
        d.name: tuple(s.const_value() for s in d.shape)
        for d in (*defn.inputs, *defn.outputs, *defn.locals)
        if all(s.is_const() for s in d.shape)
    }
    statements = []
    for stmt in defn.statements:
        ranges: dict[str, Interval] = {}
        for itr in stmt.iterators:
            if itr.lower.is_const() and itr.upper.is_const():
                lo, hi = itr.lower.const_value(), itr.upper.const_value() - 1
                if hi >= lo:
                    ranges[itr.name] = (lo, hi)
        if len(ranges) < len(stmt.iterators):  # an empty domain: nothing to decide by ranges
            ranges = {}
        body = _rewrite(stmt.body, lambda e, r=ranges: _fold(e, r, shapes))  # type: ignore[misc]
        statements.append(replace(stmt, body=body))
    return replace(defn, statements=tuple(statements))


def _rewrite(expr: Expr, fn: Callable[[Expr], Expr]) -> Expr:
    """Bottom-up rewrite of every node with ``fn``."""
    if isinstance(expr, Unary | Cast):
        expr = replace(expr, operand=_rewrite(expr.operand, fn))
    elif isinstance(expr, Binary):
        expr = replace(expr, lhs=_rewrite(expr.lhs, fn), rhs=_rewrite(expr.rhs, fn))
    elif isinstance(expr, Call):
        expr = replace(expr, args=tuple(_rewrite(a, fn) for a in expr.args))
    elif isinstance(expr, Guarded):
        expr = replace(
            expr, subject=_rewrite(expr.subject, fn), fallback=_rewrite(expr.fallback, fn)
        )
    return fn(expr)


_COMPARE: dict[str, Callable[[int, int], bool]] = {  # folded on constant indices
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
    "==": lambda a, b: a == b,
    "!=": lambda a, b: a != b,
}


def _fold(e: Expr, ranges: Mapping[str, Interval], shapes: Mapping[str, tuple[int, ...]]) -> Expr:
    if (
        isinstance(e, Guarded)
        and ranges
        and all(_in_bounds(r, ranges, shapes) for r, inner in reads(e.subject) if not inner)
    ):
        return e.subject
    if isinstance(e, Read):
        return replace(e, indices=tuple(simplify_index(i, ranges) for i in e.indices))
    if isinstance(e, Index):
        index = simplify_index(e.expr, ranges)
        if index.is_const():  # as the parser reads a number
            return Const(index.const_value(), e.dtype, e.loc)
        return replace(e, expr=index)
    if isinstance(e, Cast):
        if isinstance(e.operand, Const):  # `f32(64)`, as the parser reads it
            value = np.asarray(e.operand.value).astype(texpr_numpy_dtype(e.dtype)).item()
            return replace(e, operand=Const(value, e.dtype, e.operand.loc))
        if e.operand.dtype == e.dtype:
            return e.operand
    if isinstance(e, Binary):
        lhs, rhs = e.lhs, e.rhs
        if e.op == "*" and _is_const(lhs, 1) and rhs.dtype == e.dtype:
            return rhs
        if e.op == "*" and _is_const(rhs, 1) and lhs.dtype == e.dtype:
            return lhs
        if e.op == "%" and e.dtype == "i64" and _is_const(rhs, 1):  # stride-1 divisibility
            return Const(0, "i64", e.loc)
        if e.op in _COMPARE and isinstance(lhs, Const) and isinstance(rhs, Const):
            if lhs.dtype == rhs.dtype == "i64":
                return Const(_COMPARE[e.op](int(lhs.value), int(rhs.value)), "bool", e.loc)
        if e.op in ("and", "or"):
            unit = e.op == "and"
            for a, b in ((lhs, rhs), (rhs, lhs)):
                if isinstance(a, Const):
                    return b if bool(a.value) == unit else a
    if isinstance(e, Call) and e.fn == "select" and isinstance(e.args[0], Const):
        return e.args[1] if e.args[0].value else e.args[2]
    return e


def _in_bounds(
    read: Read, ranges: Mapping[str, Interval], shapes: Mapping[str, tuple[int, ...]]
) -> bool:
    """Whether every index of ``read`` stays inside its tensor over ``ranges``."""
    if read.tensor not in shapes:
        return False
    for index, size in zip(read.indices, shapes[read.tensor], strict=True):
        bounds = _interval(index, ranges)
        if bounds is None or bounds[0] < 0 or bounds[1] >= size:
            return False
    return True


def _is_const(e: Expr, value: float) -> bool:
    return isinstance(e, Const) and e.value == value


def simplify_index(poly: Poly, ranges: Mapping[str, Interval]) -> Poly:
    """``poly`` with floor divisions and modulos by constants resolved where the iterator
    ranges (inclusive) decide them, e.g. ``(4 * i + j) / 4 -> i`` for ``0 <= j < 4``, and
    iterators of a single value replaced by it inside compound indices (``i + u`` -> ``i``
    for ``u in 0..1``; a bare ``u`` stays)."""
    single = {n: lo for n, (lo, hi) in ranges.items() if lo == hi and n in poly.iterators()}
    if single and poly.as_iterator() is None:
        poly = poly.substitute(single)
    if not poly.has_div():
        return poly
    result = const(0)
    for mono, coeff in poly.terms:
        value = const(coeff)
        for atom in mono:
            if isinstance(atom, FloorDiv | Mod):
                num = simplify_index(atom.num, ranges)
                value = value * _divide(num, atom.den, isinstance(atom, Mod), ranges)
            else:
                value = value * Poly.from_terms({(atom,): 1})
        result = result + value
    return result


def _divide(num: Poly, den: Poly, mod: bool, ranges: Mapping[str, Interval]) -> Poly:
    """``num / den`` or ``num % den`` (floor semantics), simplified by ``ranges``."""
    if not den.is_const() or den.const_value() <= 0:
        return num.mod(den) if mod else num.floordiv(den)
    d = den.const_value()
    # multiples of d come out whole: (d * a + r) / d = a + r / d and (d * a + r) % d = r % d
    whole = Poly.from_terms({m: c // d for m, c in num.terms if c % d == 0})
    rest = num - whole * d
    if mod:
        return _divide_rest(rest, d, mod, ranges)
    return whole + _divide_rest(rest, d, mod, ranges)


def _divide_rest(num: Poly, d: int, mod: bool, ranges: Mapping[str, Interval]) -> Poly:
    bounds = _interval(num, ranges)
    if bounds is not None and bounds[0] // d == bounds[1] // d:  # one quotient over the range
        q = bounds[0] // d
        return num - d * q if mod else const(q)
    # num = g * big + small with 0 <= small < g and g | d:
    # num / d = big / (d / g) and num % d = g * (big % (d / g)) + small
    for g in _divisors(d):
        big = Poly.from_terms({m: c // g for m, c in num.terms if c % g == 0})
        small = num - big * g
        bounds = _interval(small, ranges)
        if g == d or bounds is None or bounds[0] < 0 or bounds[1] >= g or not big.terms:
            continue
        inner = _divide(big, const(d // g), mod, ranges)
        return inner * g + small if mod else inner
    return num.mod(d) if mod else num.floordiv(d)


def _divisors(d: int) -> list[int]:
    """The divisors of ``d`` greater than 1, largest first."""
    small = [g for g in range(1, int(d**0.5) + 1) if d % g == 0]
    return sorted({*small, *(d // g for g in small)} - {1}, reverse=True)


def _interval(poly: Poly, ranges: Mapping[str, Interval]) -> Interval | None:
    """Inclusive bounds of ``poly`` over ``ranges``; ``None`` if it is not affine in them."""
    lo = hi = 0
    for mono, coeff in poly.terms:
        if not mono:
            lo, hi = lo + coeff, hi + coeff
            continue
        if len(mono) != 1:
            return None
        atom = mono[0]
        if isinstance(atom, Iter) and atom.name in ranges:
            a, b = ranges[atom.name]
        elif isinstance(atom, FloorDiv | Mod) and atom.den.is_const():
            inner = _interval(atom.num, ranges)
            d = atom.den.const_value()
            if inner is None or d <= 0:
                return None
            a, b = (inner[0] // d, inner[1] // d) if isinstance(atom, FloorDiv) else (0, d - 1)
        else:
            return None
        lo, hi = lo + min(coeff * a, coeff * b), hi + max(coeff * a, coeff * b)
    return lo, hi


# -- f16/bf16: compute in f32, round once ---------------------------------------------


def widen(defn: Definition, real: Mapping[str, str]) -> Definition:
    """``defn`` (written in the compute type) with the tensors whose real type differs
    (f16/bf16 declared as f32) restored: their reads are converted to f32, and outputs
    are computed in an f32 local and rounded once by a final statement."""
    changed = {d.name for d in (*defn.inputs, *defn.outputs) if real[d.name] != d.dtype}
    if not changed:
        return defn
    outputs = {d.name for d in defn.outputs} & changed
    local = {name: f"{name}_f32" for name in outputs}

    def fix(e: Expr) -> Expr:
        if isinstance(e, Read) and e.tensor in local:
            return replace(e, tensor=local[e.tensor])
        if isinstance(e, Read) and e.tensor in changed:
            return Cast(replace(e, dtype=real[e.tensor]), e.dtype, e.loc)
        return e

    statements = [
        replace(s, target=local.get(s.target, s.target), body=_rewrite(s.body, fix))
        for s in defn.statements
    ]
    locals_ = list(defn.locals)
    for decl in defn.outputs:
        if decl.name not in local:
            continue
        locals_.append(TensorDecl(local[decl.name], decl.dtype, decl.shape))
        idx = tuple(f"i{d}" for d in range(decl.rank))
        body = Cast(Read(local[decl.name], tuple(it(i) for i in idx), decl.dtype), real[decl.name])
        iters = tuple(Iterator(i, const(0), dim, "parallel") for i, dim in zip(idx, decl.shape))
        statements.append(Statement(decl.name, idx, "=", body, iters, True))
    result = Definition(
        defn.name,
        defn.params,
        tuple(replace(d, dtype=real[d.name]) for d in defn.inputs),
        tuple(replace(d, dtype=real[d.name]) for d in defn.outputs),
        tuple(locals_),
        tuple(statements),
        defn.loc,
    )
    check_bounds_at(result, {})
    return result
