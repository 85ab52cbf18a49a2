"""`tl.kernel` (the structured form) and `tl.block` (one point of it, inside loops)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from xdsl.dialects.builtin import AffineMapAttr, IndexType, UnitAttr
from xdsl.ir import Attribute, Operation, Region, SSAValue
from xdsl.ir.affine import (
    AffineBinaryOpExpr,
    AffineBinaryOpKind,
    AffineConstantExpr,
    AffineExpr,
    AffineMap,
)
from xdsl.irdl import irdl_op_definition, opt_prop_def, prop_def, traits_def, var_operand_def
from xdsl.parser import Parser, UnresolvedOperand
from xdsl.printer import Printer

from mlc.dialects.tl.affine import (
    Interval,
    affine_range,
    affine_tokens,
    format_affine_expr,
    linear_form,
    name_leaf,
    parse_affine_expr,
)
from mlc.dialects.tl.attrs import IteratorAttr, TlError
from mlc.dialects.tl.base import (
    IsolatedBody,
    StructuredMemoryEffects,
    StructuredOp,
    structured_properties,
)


@irdl_op_definition
class KernelOp(StructuredOp):
    """A structured kernel: the body runs at every point of the iteration space.

    tl.kernel "matmul" iterators(m: 4 parallel, n: 3 parallel, k: 2 reduction) ins(%A[m, k] : memref<4x2xf32>, %B[k, n] : memref<2x3xf32>) outs(%C[m, n] init 0.000000e+00 : memref<4x3xf32>) {
    ^bb0(%a: f32, %b: f32, %c: f32):
      %p = arith.mulf %a, %b : f32
      %s = arith.addf %c, %p : f32
      tl.yield %s : f32
    }
    """

    name = "tl.kernel"

    traits = traits_def(IsolatedBody(), StructuredMemoryEffects())

    def __init__(
        self,
        label: str,
        iterators: Sequence[IteratorAttr],
        inputs: Sequence[SSAValue | Operation],
        outputs: Sequence[SSAValue | Operation],
        maps: Sequence[AffineMapAttr | AffineMap],
        pads: Sequence[Attribute],
        inits: Sequence[Attribute],
        body: Region,
        attributes: Mapping[str, Attribute] | None = None,
    ) -> None:
        super().__init__(
            operands=[list(inputs), list(outputs)],
            properties=structured_properties(label, iterators, maps, pads, inits),
            regions=[body],
            attributes=dict(attributes or {}),
        )

    def print(self, printer: Printer) -> None:
        self._print_header(printer)
        self._print_tail(printer)

    @classmethod
    def parse(cls, parser: Parser) -> KernelOp:
        label, iterators = cls._parse_header(parser)
        names = [it.label for it in iterators]
        ins, outs, maps, pads, inits, body, attrs = cls._parse_tail(parser, names)
        return cls(label, iterators, ins, outs, maps, pads, inits, body, attrs)


@irdl_op_definition
class BlockOp(StructuredOp):
    """One point of a kernel's iteration space, placed inside loops.

    `at(...)` binds every iterator (in order) to an affine expression of index values
    (normally enclosing `tl.for` variables); `where(e < c, ...)` (optional) skips points
    that fail the predicate. An output's `init` replaces its current value at points where
    every reduction iterator is 0 (TVM's block init); lowering normally moves inits into
    their own loop nest instead.

    tl.block "scale" iterators(m: 10 parallel) at(m = %mo * 4 + %mi) where(m < 10) ins(%X[m] : memref<10xf32>) outs(%Y[m] : memref<10xf32>) {
    ^bb0(%x: f32, %y: f32):
      %s = arith.addf %x, %x : f32
      tl.yield %s : f32
    }
    """

    name = "tl.block"

    loop_vars = var_operand_def(IndexType)
    #: (loop vars) -> (one value per iterator)
    bindings = prop_def(AffineMapAttr)
    #: (iterators) -> (e_0, ...): the block runs where every e_i < 0
    predicate = opt_prop_def(AffineMapAttr)

    traits = traits_def(IsolatedBody(), StructuredMemoryEffects())

    def __init__(
        self,
        label: str,
        iterators: Sequence[IteratorAttr],
        loop_vars: Sequence[SSAValue | Operation],
        bindings: AffineMap | AffineMapAttr,
        inputs: Sequence[SSAValue | Operation],
        outputs: Sequence[SSAValue | Operation],
        maps: Sequence[AffineMapAttr | AffineMap],
        pads: Sequence[Attribute],
        inits: Sequence[Attribute],
        body: Region,
        predicate: AffineMap | AffineMapAttr | None = None,
        attributes: Mapping[str, Attribute] | None = None,
    ) -> None:
        props = structured_properties(label, iterators, maps, pads, inits)
        props["bindings"] = (
            bindings if isinstance(bindings, AffineMapAttr) else AffineMapAttr(bindings)
        )
        if isinstance(predicate, AffineMap):
            predicate = AffineMapAttr(predicate)
        if predicate is not None and predicate.data.results:  # no conditions: no predicate
            props["predicate"] = predicate
        super().__init__(
            operands=[list(loop_vars), list(inputs), list(outputs)],
            properties=props,
            regions=[body],
            attributes=dict(attributes or {}),
        )

    @staticmethod
    def like(
        op: StructuredOp,
        loop_vars: Sequence[SSAValue | Operation],
        bindings: AffineMap,
        predicate: AffineMap | None = None,
        keep_inits: bool = True,
        label: str | None = None,
    ) -> BlockOp:
        """A block with `op`'s iterators, operands, maps, pads and (a copy of its) body."""
        inits = list(op.inits.data) if keep_inits else [UnitAttr()] * len(op.outputs)
        return BlockOp(
            op.label.data if label is None else label,
            op.iterator_list,
            loop_vars,
            bindings,
            op.inputs,
            op.outputs,
            op.indexing_maps.data,
            op.pads.data,
            inits,
            op.clone_body(),
            predicate,
        )

    @property
    def binding_map(self) -> AffineMap:
        return self.bindings.data

    @property
    def predicate_map(self) -> AffineMap | None:
        return None if self.predicate is None else self.predicate.data

    def verify_(self) -> None:
        super().verify_()
        b = self.binding_map
        n = len(self.iterators.data)
        if b.num_symbols != 0 or b.num_dims != len(self.loop_vars):
            raise TlError(
                f"bindings must be a map over the {len(self.loop_vars)} loop variables "
                f"without symbols, got {b}"
            )
        if len(b.results) != n:
            raise TlError(f"bindings give {len(b.results)} values for {n} iterators")
        p = self.predicate_map
        if p is not None and (p.num_dims != n or p.num_symbols != 0):
            raise TlError(f"predicate must be a map over the {n} iterators, got {p}")
        self._verify_domain()

    def _verify_domain(self) -> None:
        """Where every loop variable is a `tl.for` variable, every iterator must stay in
        [0, extent) at every executed point (the predicate's `it + c < 0` conditions
        narrow the iterator's range)."""
        from mlc.dialects.tl.loops import loop_var_range

        ranges: list[Interval] = []
        for v in self.loop_vars:
            r = loop_var_range(v)
            if r is None:
                return
            if r[0] > r[1]:
                return  # an empty loop: the block never runs
            ranges.append(r)
        bounds = [affine_range(e, ranges) for e in self.binding_map.results]
        p = self.predicate_map
        if p is not None:
            for e in p.results:
                # `it + c < 0` with a single iterator: it <= -c - 1
                nz, atoms, const = linear_form(e)
                if not atoms and len(nz) == 1:
                    ((d, c),) = nz.items()
                    lo, hi = bounds[d]
                    if c > 0:  # c*it + const < 0  <=>  it <= ceil(-const / c) - 1
                        bounds[d] = (lo, min(hi, -(const // c) - 1))
                    else:  # c*it + const < 0  <=>  it >= floor(const / -c) + 1
                        bounds[d] = (max(lo, const // (-c) + 1), hi)
        for d, ((lo, hi), it) in enumerate(zip(bounds, self.iterator_list)):
            if lo > hi:
                continue
            if lo < 0 or hi > it.size - 1:
                expr = self._format_binding(d)
                raise TlError(
                    f"iterator '{it.label}' = {expr} ranges over [{lo}, {hi}] outside its "
                    f"extent {it.size}; add a predicate `where({it.label} < {it.size})`"
                    if hi > it.size - 1
                    else f"iterator '{it.label}' = {expr} ranges over [{lo}, {hi}], below 0"
                )

    def _format_binding(self, d: int) -> str:
        names = [_value_name(v) for v in self.loop_vars]
        return format_affine_expr(self.binding_map.results[d], names)

    def print(self, printer: Printer) -> None:
        self._print_header(printer)
        printer.print_string(" at(")
        for d, (it, expr) in enumerate(zip(self.iterator_list, self.binding_map.results)):
            if d:
                printer.print_string(", ")
            printer.print_string(f"{it.label} = ")
            for tok in affine_tokens(expr):
                if isinstance(tok, int):
                    printer.print_ssa_value(self.loop_vars[tok])
                else:
                    printer.print_string(tok)
        printer.print_string(")")
        p = self.predicate_map
        if p is not None and p.results:
            names = self.iterator_names
            parts: list[str] = []
            for e in p.results:
                lhs, bound = e, 0
                if isinstance(e, AffineConstantExpr):
                    lhs, bound = AffineExpr.constant(0), -e.value
                elif (
                    isinstance(e, AffineBinaryOpExpr)
                    and e.kind == AffineBinaryOpKind.Add
                    and isinstance(e.rhs, AffineConstantExpr)
                ):
                    lhs, bound = e.lhs, -e.rhs.value
                parts.append(f"{format_affine_expr(lhs, names)} < {bound}")
            printer.print_string(f" where({', '.join(parts)})")
        self._print_tail(printer)

    @classmethod
    def parse(cls, parser: Parser) -> BlockOp:
        label, iterators = cls._parse_header(parser)
        names = [it.label for it in iterators]
        parser.parse_keyword("at")
        ssa_order: dict[str, int] = {}
        unresolved: list[UnresolvedOperand] = []

        def ssa_leaf() -> AffineExpr | None:
            operand = parser.parse_optional_unresolved_operand()
            if operand is None:
                return None
            key = f"{operand.span.text}#{operand.index}"
            if key not in ssa_order:
                ssa_order[key] = len(unresolved)
                unresolved.append(operand)
            return AffineExpr.dimension(ssa_order[key])

        exprs: list[AffineExpr] = []

        def parse_binding() -> None:
            pos = parser.pos
            name = parser.parse_identifier(" (iterator name)")
            if len(exprs) >= len(names) or names[len(exprs)] != name:
                expected = names[len(exprs)] if len(exprs) < len(names) else "nothing"
                parser.raise_error(f"expected a binding of '{expected}', got '{name}'", pos)
            parser.parse_punctuation("=")
            exprs.append(parse_affine_expr(parser, ssa_leaf))

        parser.parse_comma_separated_list(Parser.Delimiter.PAREN, parse_binding)
        if len(exprs) != len(names):
            parser.raise_error(f"at(...) must bind every iterator ({', '.join(names)})")
        loop_vars = [parser.resolve_operand(u, IndexType()) for u in unresolved]
        bindings = AffineMap(len(loop_vars), 0, tuple(exprs))
        predicate: AffineMap | None = None
        if parser.parse_optional_keyword("where"):
            leaf = name_leaf(parser, names)

            def parse_condition() -> AffineExpr:
                lhs = parse_affine_expr(parser, leaf)
                parser.parse_punctuation("<")
                return lhs - parse_affine_expr(parser, leaf)

            conds = parser.parse_comma_separated_list(Parser.Delimiter.PAREN, parse_condition)
            predicate = AffineMap(len(names), 0, tuple(conds))
        ins, outs, maps, pads, inits, body, attrs = cls._parse_tail(parser, names)
        return cls(
            label,
            iterators,
            loop_vars,
            bindings,
            ins,
            outs,
            maps,
            pads,
            inits,
            body,
            predicate,
            attrs,
        )


def _value_name(value: SSAValue) -> str:
    return f"%{value.name_hint}" if value.name_hint else "%?"
