"""Binding sizes: from input shapes, defaults and explicit values; specialization."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from mlc.texpr.affine import Poly
from mlc.texpr.ast import (
    Binary,
    Call,
    Cast,
    Const,
    Definition,
    Expr,
    Guarded,
    Index,
    Iterator,
    Read,
    Statement,
    TensorDecl,
    Unary,
)
from mlc.texpr.bounds import check_bounds_at
from mlc.texpr.errors import TexprError


def infer_sizes(
    defn: Definition, shapes: Mapping[str, Sequence[int]], sizes: Mapping[str, int] | None = None
) -> dict[str, int]:
    """Every size of ``defn``: given in ``sizes``, else read off an input dimension that is
    exactly that size, else the parameter's default. Checks all input shapes."""
    bound: dict[str, int] = {}
    origin: dict[str, str] = {}
    for name, value in (sizes or {}).items():
        if name not in defn.symbols:
            raise TexprError(f"`{defn.name}` has no size `{name}`")
        bound[name] = int(value)
        origin[name] = "given"
    for decl in defn.inputs:
        if decl.name not in shapes:
            raise TexprError(f"missing input `{decl.name}` of `{defn.name}`")
        shape = tuple(shapes[decl.name])
        if len(shape) != decl.rank:
            raise TexprError(
                f"input `{decl.name}` must have rank {decl.rank} ({decl.dtype}{_fmt(decl.shape)}) "
                f"but has shape {shape}"
            )
        for d, dim in enumerate(decl.shape):
            bare = dim.as_symbol()
            if bare is not None and bare not in bound:
                bound[bare] = shape[d]
                origin[bare] = f"{decl.name} dim {d}"
    for param in defn.params:
        if param.name not in bound and param.default is not None:
            bound[param.name] = param.default
            origin[param.name] = "default"
    missing = [s for s in defn.symbols if s not in bound]
    if missing:
        example = ", ".join(f"{s}=..." for s in missing)
        raise TexprError(
            f"size(s) {', '.join(missing)} of `{defn.name}` are not determined by the input shapes; "
            f"pass them explicitly ({example})"
        )
    for name, value in bound.items():
        if value < 0:
            raise TexprError(f"size {name} = {value} is negative")
    for decl in defn.inputs:
        for d, dim in enumerate(decl.shape):
            expected = dim.evaluate(bound)
            actual = tuple(shapes[decl.name])[d]
            if expected != actual:
                src = ", ".join(f"{s} = {bound[s]} ({origin[s]})" for s in sorted(dim.symbols()))
                raise TexprError(
                    f"input `{decl.name}` has size {actual} in dim {d} but `{dim}` = {expected}"
                    + (f" with {src}" if src else "")
                )
    for decl in (*defn.outputs, *defn.locals):
        for d, dim in enumerate(decl.shape):
            if int(dim.evaluate(bound)) < 0:
                raise TexprError(
                    f"`{decl.name}` would have negative size {dim.evaluate(bound)} in dim {d}"
                )
    return {s: bound[s] for s in defn.symbols}


def _fmt(shape: tuple[Poly, ...]) -> str:
    return "[" + ", ".join(str(d) for d in shape) + "]"


def substitute_expr(expr: Expr, mapping: Mapping[str, Poly | int]) -> Expr:
    """``expr`` with sizes/iterators replaced in every index."""
    if isinstance(expr, Read):
        return Read(
            expr.tensor, tuple(i.substitute(mapping) for i in expr.indices), expr.dtype, expr.loc
        )
    if isinstance(expr, Index):
        return Index(expr.expr.substitute(mapping), expr.dtype, expr.loc)
    if isinstance(expr, Unary):
        return Unary(expr.op, substitute_expr(expr.operand, mapping), expr.dtype, expr.loc)
    if isinstance(expr, Cast):
        return Cast(substitute_expr(expr.operand, mapping), expr.dtype, expr.loc)
    if isinstance(expr, Binary):
        lhs, rhs = substitute_expr(expr.lhs, mapping), substitute_expr(expr.rhs, mapping)
        return Binary(expr.op, lhs, rhs, expr.dtype, expr.loc)
    if isinstance(expr, Call):
        args = tuple(substitute_expr(a, mapping) for a in expr.args)
        return Call(expr.fn, args, expr.dtype, expr.loc)
    if isinstance(expr, Guarded):
        subject, fallback = (
            substitute_expr(expr.subject, mapping),
            substitute_expr(expr.fallback, mapping),
        )
        return Guarded(subject, fallback, expr.dtype, expr.loc)
    assert isinstance(expr, Const)
    return expr


def specialize(defn: Definition, sizes: Mapping[str, int] | None = None, **more: int) -> Definition:
    """``defn`` with every size replaced by its value (defaults fill in the rest), so all
    shapes, ranges and indices are integer-affine constants; bounds are re-checked."""
    values = {
        **{p.name: p.default for p in defn.params if p.default is not None},
        **(sizes or {}),
        **more,
    }
    missing = [s for s in defn.symbols if s not in values]
    if missing:
        raise TexprError(f"specialize `{defn.name}`: no value for size(s) {', '.join(missing)}")
    unknown = [s for s in values if s not in defn.symbols]
    if unknown:
        raise TexprError(f"`{defn.name}` has no size {', '.join(unknown)}")

    def decl(d: TensorDecl) -> TensorDecl:
        return TensorDecl(d.name, d.dtype, tuple(s.substitute(values) for s in d.shape), d.loc)

    def statement(s: Statement) -> Statement:
        iters = tuple(
            Iterator(i.name, i.lower.substitute(values), i.upper.substitute(values), i.kind)
            for i in s.iterators
        )
        return Statement(
            s.target, s.indices, s.op, substitute_expr(s.body, values), iters, s.init, s.loc
        )

    result = Definition(
        defn.name,
        (),
        tuple(decl(d) for d in defn.inputs),
        tuple(decl(d) for d in defn.outputs),
        tuple(decl(d) for d in defn.locals),
        tuple(statement(s) for s in defn.statements),
        defn.loc,
    )
    for d in (*result.outputs, *result.locals, *result.inputs):
        if any(s.const_value() < 0 for s in d.shape):
            raise TexprError(f"`{d.name}` would have a negative size: {_fmt(d.shape)}")
    check_bounds_at(result, {})
    return result
