"""From a Lark parse tree to the typed AST: names, types and iteration domains.

Names fall in three disjoint classes: tensors (inputs, outputs and the locals that
statements define), sizes (names in shapes, ranges and ``<...>`` parameters) and
iterators (every other name in a statement's indices or ``where`` clause).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any, Literal, cast

from lark import Token, Tree

from mlc.texpr.affine import Poly, const, it, sym
from mlc.texpr.ast import (
    FLOAT_FUNCTIONS,
    FUNCTIONS,
    INT_FUNCTIONS,
    AssignOp,
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
    SizeParam,
    Statement,
    TensorDecl,
    Unary,
    reads,
)
from mlc.texpr.dtypes import DTYPES, is_float
from mlc.texpr.errors import Loc, TexprError, error_at
from mlc.texpr.types import (
    UNTYPED_ANY,
    UNTYPED_FLOAT,
    UNTYPED_INT,
    arith,
    default_type,
    describe,
    fits,
    is_untyped,
    negate,
    require_bool,
    resolve,
    unify,
)

#: Literal names: name -> (value, type).
CONSTANTS: dict[str, tuple[float | bool, str]] = {
    "inf": (math.inf, UNTYPED_FLOAT),
    "nan": (math.nan, UNTYPED_FLOAT),
    "lowest": (-math.inf, UNTYPED_ANY),
    "highest": (math.inf, UNTYPED_ANY),
    "true": (True, "bool"),
    "false": (False, "bool"),
}
RESERVED = frozenset(CONSTANTS) | frozenset(DTYPES)


def _kids(tree: Tree[Token]) -> list[Any]:
    """The children of a parse-tree node: trees, tokens or ``None`` (absent optionals)."""
    return list(tree.children)


def loc_of(node: Tree[Token] | Token) -> Loc:
    """The source position of a parse-tree node or token."""
    if isinstance(node, Token):
        return Loc(node.line or 0, node.column or 0)
    return Loc(node.meta.line, node.meta.column)


def _names_in(tree: Tree[Token] | Token) -> Iterable[Token]:
    """The ``name`` tokens of a subtree, in source order."""
    if isinstance(tree, Tree):
        if tree.data == "name":
            yield _kids(tree)[0]
        else:
            for child in _kids(tree):
                if child is not None:
                    yield from _names_in(child)


def _subtrees(tree: Tree[Token], data: str) -> Iterable[Tree[Token]]:
    """Subtrees labelled ``data``, in source order (pre-order)."""
    if tree.data == data:
        yield tree
    for child in _kids(tree):
        if isinstance(child, Tree):
            yield from _subtrees(child, data)


def build_definition(tree: Tree[Token]) -> Definition:
    """The typed, unchecked-for-bounds `Definition` of a ``definition`` parse tree."""
    return _DefinitionBuilder(tree).build()


class _DefinitionBuilder:
    """Builds one definition; holds its name tables."""

    def __init__(self, tree: Tree[Token]) -> None:
        self.tree = tree
        self.symbols: set[str] = set()
        self.tensors: dict[str, TensorDecl] = {}
        self.input_names: set[str] = set()
        self.defined: set[str] = set()
        self.locals: list[TensorDecl] = []

    # -- header ---------------------------------------------------------------------------

    def build(self) -> Definition:
        name_tok, *rest = _kids(self.tree)
        params: tuple[SizeParam, ...] = ()
        if rest and isinstance(rest[0], Tree) and rest[0].data == "size_params":
            params = self._size_params(rest.pop(0))
        params_tree, outputs_tree, *statement_trees = rest
        self._collect_names(params_tree, outputs_tree, statement_trees)
        inputs = self._params(params_tree)
        for decl in inputs:
            self.tensors[decl.name] = decl
            self.input_names.add(decl.name)
            self.defined.add(decl.name)
        outputs_node = _kids(outputs_tree)[0]
        out_params = _kids(outputs_node) if outputs_node.data == "params" else [outputs_node]
        outputs = tuple(self._param(p) for p in out_params)
        self.output_names = {o.name for o in outputs}
        self._add_outputs(outputs)
        statements = tuple(self._statement(t) for t in statement_trees)
        for out in outputs:
            if out.name not in {s.target for s in statements}:
                raise loc_of(self.tree).error(f"output `{out.name}` is never written")
        return Definition(
            str(name_tok),
            params,
            inputs,
            outputs,
            tuple(self.locals),
            statements,
            loc_of(self.tree),
        )

    def _collect_names(
        self, params_tree: Tree[Token] | None, outputs_tree: Tree[Token], stmts: list[Tree[Token]]
    ) -> None:
        """Sizes are the names in shapes and range bounds; check they clash with nothing."""
        decls = list(_subtrees(params_tree, "param")) if params_tree is not None else []
        decls += list(_subtrees(outputs_tree, "param"))
        for decl in decls:
            if _kids(decl)[2] is not None:
                self.symbols.update(str(t) for t in _names_in(_kids(decl)[2]))
        for stmt in stmts:
            for rng in _subtrees(stmt, "range"):
                for bound in _kids(rng)[1:]:
                    self.symbols.update(str(t) for t in _names_in(bound))
        tensor_names = {str(_kids(d)[0]) for d in decls}
        tensor_names |= {str(_kids(s)[0].children[0]) for s in stmts}
        for decl in decls:
            self._check_fresh_name(_kids(decl)[0], "tensor")
        for name in sorted(self.symbols & tensor_names):
            raise loc_of(self.tree).error(f"`{name}` is both a tensor and a size")
        self.tensor_names = tensor_names

    def _check_fresh_name(self, tok: Token, what: str) -> None:
        if str(tok) in RESERVED:
            raise loc_of(tok).error(f"`{tok}` is reserved and cannot name a {what}")

    def _size_params(self, tree: Tree[Token]) -> tuple[SizeParam, ...]:
        params: list[SizeParam] = []
        for node in _kids(tree):
            name_tok, default = _kids(node)
            self._check_fresh_name(name_tok, "size")
            if str(name_tok) in self.symbols or any(p.name == str(name_tok) for p in params):
                raise loc_of(name_tok).error(f"size parameter `{name_tok}` is declared twice")
            params.append(SizeParam(str(name_tok), int(default) if default is not None else None))
            self.symbols.add(str(name_tok))
        return tuple(params)

    def _params(self, tree: Tree[Token] | None) -> tuple[TensorDecl, ...]:
        decls: list[TensorDecl] = []
        for node in _kids(tree) if tree is not None else []:
            decl = self._param(node)
            if any(d.name == decl.name for d in decls):
                raise loc_of(node).error(f"input `{decl.name}` is declared twice")
            decls.append(decl)
        return tuple(decls)

    def _param(self, tree: Tree[Token]) -> TensorDecl:
        name_tok, dtype_tok, dims = _kids(tree)
        if str(dtype_tok) not in DTYPES:
            raise loc_of(dtype_tok).error(
                f"unknown element type `{dtype_tok}`; expected one of {', '.join(DTYPES)}"
            )
        shape = tuple(self._size(d) for d in _kids(dims)) if dims is not None else ()
        return TensorDecl(str(name_tok), str(dtype_tok), shape, loc_of(tree))

    def _add_outputs(self, outputs: tuple[TensorDecl, ...]) -> None:
        seen: set[str] = set()
        for out in outputs:
            if out.name in seen:
                raise error_at(out.loc, f"output `{out.name}` is declared twice")
            seen.add(out.name)
            previous = self.tensors.get(out.name)
            if previous is not None and (previous.dtype, previous.shape) != (out.dtype, out.shape):
                raise error_at(
                    out.loc,
                    f"in-out tensor `{out.name}` is {out.dtype}{_shape(out.shape)} as an output "
                    f"but {previous.dtype}{_shape(previous.shape)} as an input",
                )
            self.tensors[out.name] = out

    def _size(self, tree: Tree[Token] | Token) -> Poly:
        """A size expression: integers and sizes with ``+ - * / %``."""
        if isinstance(tree, Tree):
            kind = tree.data
            if kind == "int_lit":
                return const(int(_kids(tree)[0]))
            if kind == "name":
                tok = _kids(tree)[0]
                if str(tok) in RESERVED:
                    raise loc_of(tok).error(f"`{tok}` cannot be a size")
                self.symbols.add(str(tok))
                return sym(str(tok))
            if kind == "neg":
                return -self._size(_kids(tree)[0])
            if kind == "binary":
                lhs, op, rhs = _kids(tree)
                a, b = self._size(lhs), self._size(rhs)
                return _poly_op(str(op), a, b, loc_of(op))
        raise loc_of(tree).error("a size must be an integer expression of sizes (+, -, *, /, %)")

    # -- statements ----------------------------------------------------------------------

    def _statement(self, tree: Tree[Token]) -> Statement:
        access, op_tok, body_tree, *rest = _kids(tree)
        op = cast(AssignOp, str(op_tok))
        target_tok, target_args = _kids(access)
        target = str(target_tok)
        self._check_fresh_name(target_tok, "tensor")
        if target in self.input_names and target not in self.output_names:
            raise loc_of(target_tok).error(f"cannot assign to input `{target}`")
        lhs = self._lhs_indices(target_args, loc_of(access))
        ranges = self._ranges(rest[0]) if rest else {}
        self.iterators: set[str] = set(lhs) | set(ranges)
        order: dict[str, None] = dict.fromkeys(lhs)
        for arg_tree in _subtrees(body_tree, "access"):
            if _kids(arg_tree)[1] is None:
                continue
            for tok in _names_in(_kids(arg_tree)[1]):
                name = str(tok)
                if (
                    name not in self.symbols
                    and name not in self.tensor_names
                    and name not in RESERVED
                ):
                    self.iterators.add(name)
                    order.setdefault(name)
        order.update(dict.fromkeys(ranges))
        self.direct: dict[str, list[tuple[Poly, str, bool]]] = {}
        body = self._scalar(body_tree, guarded=False)

        decl = self.tensors.get(target)
        if decl is not None:
            if decl.rank != len(lhs):
                raise loc_of(access).error(
                    f"`{target}` has rank {decl.rank} but is indexed with {len(lhs)} indices"
                )
            for d, name in enumerate(lhs):
                self.direct.setdefault(name, []).insert(
                    0, (decl.shape[d], f"{target} dim {d}", False)
                )
        iterators = self._iterators(order, lhs, ranges, loc_of(tree))
        reduction = [i.name for i in iterators if i.kind == "reduction"]
        if op == "=" and reduction:
            raise loc_of(op_tok).error(
                f"`=` cannot reduce over {', '.join(reduction)}: they do not index `{target}`; "
                "use a reduction (`+=`, `*=`, `max=`, `min=`)"
            )
        self._check_reads(body, target)
        if decl is None:
            if is_untyped(body.dtype):
                raise loc_of(access).error(
                    f"cannot infer the dtype of `{target}` from {describe(body.dtype)}; "
                    "give the literal a type, e.g. f32(0)"
                )
            decl = TensorDecl(
                target, body.dtype, tuple(i.upper for i in iterators[: len(lhs)]), loc_of(access)
            )
            self.tensors[target] = decl
            self.locals.append(decl)
        dtype = unify(decl.dtype, body.dtype, f"`{op}` to `{target}`", loc_of(op_tok))
        body = resolve(body, dtype)
        init = target not in self.defined
        self.defined.add(target)
        return Statement(target, lhs, op, body, iterators, init, loc_of(tree))

    def _lhs_indices(self, args: Tree[Token] | None, loc: Loc) -> tuple[str, ...]:
        names: list[str] = []
        for arg in _kids(args) if args is not None else []:
            tok = _kids(arg)[0] if isinstance(arg, Tree) and arg.data == "name" else None
            name = str(tok) if tok is not None else ""
            if tok is None or name in self.symbols or name in self.tensor_names or name in RESERVED:
                raise loc_of(arg).error("a target index must be an iterator name, e.g. C[m, n]")
            if name in names:
                raise loc_of(arg).error(f"iterator `{name}` indexes the target twice")
            names.append(name)
        return tuple(names)

    def _ranges(self, tree: Tree[Token]) -> dict[str, tuple[Poly, Poly]]:
        ranges: dict[str, tuple[Poly, Poly]] = {}
        for rng in _kids(tree):
            name_tok, lo, hi = _kids(rng)
            name = str(name_tok)
            if name in self.symbols or name in self.tensor_names or name in RESERVED:
                raise loc_of(name_tok).error(f"`{name}` is not an iterator name")
            if name in ranges:
                raise loc_of(name_tok).error(f"iterator `{name}` has two ranges")
            ranges[name] = (self._size(lo), self._size(hi))
        return ranges

    def _iterators(
        self,
        order: dict[str, None],
        lhs: tuple[str, ...],
        ranges: dict[str, tuple[Poly, Poly]],
        loc: Loc,
    ) -> tuple[Iterator, ...]:
        result = []
        for name in order:
            kind: Literal["parallel", "reduction"] = "parallel" if name in lhs else "reduction"
            if name in ranges:
                lo, hi = ranges[name]
            else:
                uses = self.direct.get(name, [])
                unguarded = [u for u in uses if not u[2]] or uses
                if not unguarded:
                    raise loc.error(
                        f"iterator `{name}` has no range: it indexes no dimension directly; "
                        f"add `where {name} in 0..SIZE`"
                    )
                size, what, _ = unguarded[0]
                for other, other_what, _ in unguarded[1:]:
                    if other != size:
                        raise loc.error(
                            f"iterator `{name}` indexes dimensions of different sizes: "
                            f"{size} ({what}) and {other} ({other_what}); "
                            f"give its range with `where {name} in 0..SIZE`"
                        )
                lo, hi = const(0), size
            result.append(Iterator(name, lo, hi, kind))
        return tuple(result)

    def _check_reads(self, body: Expr, target: str) -> None:
        for read, _ in reads(body):
            if read.tensor == target:
                raise error_at(
                    read.loc,
                    f"a statement cannot read its own target `{target}`; "
                    "use a reduction operator or a separate local",
                )
            if read.tensor not in self.defined:
                raise error_at(read.loc, f"`{read.tensor}` is read before it is written")

    # -- index expressions ---------------------------------------------------------------

    def _index(self, tree: Tree[Token] | Token) -> Poly:
        """An integer-affine index expression over iterators and sizes."""
        if isinstance(tree, Tree):
            kind = tree.data
            if kind == "int_lit":
                return const(int(_kids(tree)[0]))
            if kind == "name":
                name = str(_kids(tree)[0])
                if name in self.symbols:
                    return sym(name)
                if name in self.tensor_names:
                    raise loc_of(tree).error(f"data-dependent index `{name}` is not supported")
                if name in RESERVED:
                    raise loc_of(tree).error(f"`{name}` cannot be used in an index")
                return it(name)
            if kind == "neg":
                return -self._index(_kids(tree)[0])
            if kind == "binary":
                lhs, op, rhs = _kids(tree)
                a, b = self._index(lhs), self._index(rhs)
                return _poly_op(str(op), a, b, loc_of(op))
            if kind in ("access", "call"):
                raise loc_of(tree).error("data-dependent indices are not supported")
        raise loc_of(tree).error(
            "an index must be an integer-affine expression of iterators and sizes"
        )

    # -- scalar expressions --------------------------------------------------------------

    def _scalar(self, tree: Tree[Token], guarded: bool) -> Expr:
        """A (possibly untyped) scalar expression; see `mlc.texpr.types`."""
        loc = loc_of(tree)
        kind = tree.data
        if kind == "int_lit":
            return Const(int(_kids(tree)[0]), UNTYPED_INT, loc)
        if kind == "float_lit":
            return Const(float(_kids(tree)[0]), UNTYPED_FLOAT, loc)
        if kind == "name":
            return self._name(str(_kids(tree)[0]), loc)
        if kind == "access":
            return self._read(tree, guarded)
        if kind == "call":
            return self._call(tree, guarded)
        if kind == "neg":
            operand = self._scalar(_kids(tree)[0], guarded)
            return negate(operand, loc)
        if kind == "not_op":
            operand = self._scalar(_kids(tree)[0], guarded)
            require_bool(operand, "`not`")
            return Unary("not", operand, "bool", loc)
        if kind in ("and_op", "or_op"):
            op = "and" if kind == "and_op" else "or"
            a, b = (self._scalar(c, guarded) for c in _kids(tree))
            require_bool(a, f"`{op}`")
            require_bool(b, f"`{op}`")
            return Binary(op, a, b, "bool", loc)
        if kind == "compare":
            lhs, op_tok, rhs = _kids(tree)
            a, b = self._scalar(lhs, guarded), self._scalar(rhs, guarded)
            dtype = default_type(unify(a.dtype, b.dtype, f"`{op_tok}`", loc), loc)
            return Binary(str(op_tok), resolve(a, dtype), resolve(b, dtype), "bool", loc)
        if kind == "binary":
            lhs, op_tok, rhs = _kids(tree)
            a, b = self._scalar(lhs, guarded), self._scalar(rhs, guarded)
            return arith(str(op_tok), a, b, loc_of(op_tok))
        if kind == "guarded":
            subject = self._scalar(_kids(tree)[0], True)
            fallback = self._scalar(_kids(tree)[1], guarded)
            if not any(not inner for _, inner in reads(subject)):
                raise loc.error("`if in bounds` guards no tensor read")
            dtype = unify(subject.dtype, fallback.dtype, "`if in bounds else`", loc)
            return Guarded(resolve(subject, dtype), resolve(fallback, dtype), dtype, loc)
        raise loc.error(f"unexpected expression `{kind}`")  # pragma: no cover

    def _name(self, name: str, loc: Loc) -> Expr:
        if name in CONSTANTS:
            value, dtype = CONSTANTS[name]
            return Const(value, dtype, loc)
        if name in self.symbols:
            return Index(sym(name), "i64", loc)
        if name in self.iterators:
            return Index(it(name), "i64", loc)
        decl = self.tensors.get(name)
        if decl is not None or name in self.tensor_names:
            if decl is None or decl.rank != 0:
                raise loc.error(f"tensor `{name}` needs indices: `{name}[...]`")
            return Read(name, (), decl.dtype, loc)
        raise loc.error(f"unknown name `{name}`")

    def _read(self, tree: Tree[Token], guarded: bool) -> Read:
        name_tok, args = _kids(tree)
        name = str(name_tok)
        loc = loc_of(tree)
        decl = self.tensors.get(name)
        if decl is None:
            if name in self.tensor_names:
                raise loc.error(f"`{name}` is read before it is written")
            raise loc.error(f"unknown tensor `{name}`")
        arg_trees = _kids(args) if args is not None else []
        if len(arg_trees) != decl.rank:
            raise loc.error(
                f"`{name}` has rank {decl.rank} but is indexed with {len(arg_trees)} indices"
            )
        indices = tuple(self._index(a) for a in arg_trees)
        for d, index in enumerate(indices):
            name_of = index.as_iterator()
            if name_of is not None:
                self.direct.setdefault(name_of, []).append(
                    (decl.shape[d], f"{name} dim {d}", guarded)
                )
        return Read(name, indices, decl.dtype, loc)

    def _call(self, tree: Tree[Token], guarded: bool) -> Expr:
        name_tok, args_tree = _kids(tree)
        fn = str(name_tok)
        loc = loc_of(tree)
        args = [
            self._scalar(a, guarded) for a in (_kids(args_tree) if args_tree is not None else [])
        ]
        if fn in DTYPES:
            if len(args) != 1:
                raise loc.error(f"cast `{fn}` takes 1 argument, got {len(args)}")
            (arg,) = args
            source = (
                fn
                if is_untyped(arg.dtype) and fits(arg.dtype, fn)
                else default_type(arg.dtype, loc)
            )
            return Cast(resolve(arg, source), fn, loc)
        if fn not in FUNCTIONS:
            known = ", ".join(sorted(FUNCTIONS))
            raise loc.error(
                f"unknown function `{fn}`; expected one of {known} or a cast such as f32"
            )
        if len(args) != FUNCTIONS[fn]:
            raise loc.error(f"`{fn}` takes {FUNCTIONS[fn]} argument(s), got {len(args)}")
        if fn == "select":
            cond, a, b = args
            require_bool(cond, "the condition of `select`")
            dtype = unify(a.dtype, b.dtype, "`select`", loc)
            return Call(fn, (cond, resolve(a, dtype), resolve(b, dtype)), dtype, loc)
        dtype = args[0].dtype
        for arg in args[1:]:
            dtype = unify(dtype, arg.dtype, f"`{fn}`", loc)
        if fn in FLOAT_FUNCTIONS:
            if is_untyped(dtype):
                dtype = UNTYPED_FLOAT
            elif not is_float(dtype):
                raise loc.error(f"`{fn}` needs a float operand, got {dtype}")
        elif fn in INT_FUNCTIONS:
            if dtype == UNTYPED_FLOAT or dtype == "bool" or is_float(dtype):
                raise loc.error(f"`{fn}` needs integer operands, got {describe(dtype)}")
        elif fn == "abs" and dtype == "bool":
            raise loc.error("`abs` needs a numeric operand, got bool")
        return Call(fn, tuple(resolve(a, dtype) for a in args), dtype, loc)


def _shape(shape: tuple[Poly, ...]) -> str:
    return "[" + ", ".join(str(d) for d in shape) + "]"


def _poly_op(op: str, a: Poly, b: Poly, loc: Loc) -> Poly:
    """``a op b`` on polynomials, rejecting non-affine products and bad divisors."""
    if op == "+":
        return a + b
    if op == "-":
        return a - b
    if op == "*":
        if a.iterators() and b.iterators():
            text = " * ".join(f"({p})" if len(p.terms) > 1 else str(p) for p in (a, b))
            raise loc.error(f"index `{text}` is not affine: it multiplies two iterators")
        return a * b
    if b.iterators():
        raise loc.error(f"the divisor `{b}` of an index may not depend on iterators")
    if b.is_const() and b.const_value() <= 0:
        raise loc.error(f"the divisor of `{a} {op} {b}` must be positive")
    try:
        return a.floordiv(b) if op == "/" else a.mod(b)
    except TexprError as exc:  # pragma: no cover - zero divisors are rejected above
        raise loc.error(exc.detail) from None


__all__ = ["build_definition", "loc_of"]
