"""`tl.for`: static loops with a kind (serial / parallel / vectorize / unroll), and the
checks that make a `parallel` loop race-free."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from xdsl.builder import Builder, InsertPoint
from xdsl.dialects.builtin import IndexType, IntegerAttr, UnitAttr
from xdsl.dialects.memref import StoreOp
from xdsl.ir import Attribute, Block, BlockArgument, Operation, OpResult, Region, SSAValue
from xdsl.irdl import (
    IRDLOperation,
    irdl_op_definition,
    opt_prop_def,
    prop_def,
    region_def,
    traits_def,
)
from xdsl.parser import Parser
from xdsl.printer import Printer
from xdsl.traits import RecursiveMemoryEffect, SingleBlockImplicitTerminator, ensure_terminator

from mlc.dialects.tl.affine import Interval
from mlc.dialects.tl.attrs import LoopKind, LoopKindAttr, TlError
from mlc.dialects.tl.base import YieldOp, is_defined_inside
from mlc.dialects.tl.structured import BlockOp, KernelOp


def loop_var_range(value: SSAValue) -> Interval | None:
    """Inclusive range of a `tl.for` induction variable (None for other values)."""
    if not isinstance(value, BlockArgument) or value.index != 0:
        return None
    owner = value.block.parent_op()
    if not isinstance(owner, ForOp):
        return None
    lb, ub, step = owner.lb, owner.ub, owner.step_value
    if ub <= lb:
        return (lb, lb - 1)
    return lb, lb + ((ub - lb - 1) // step) * step


@irdl_op_definition
class ForOp(IRDLOperation):
    """A loop with static bounds over an `index` induction variable; the kind says how
    code generation executes it (the interpreter runs every kind in order).

    tl.for %i = 0 to 64 step 8 vectorize(8) {
      memref.store %v, %buf[%i] : memref<64xf32>
    }
    """

    name = "tl.for"

    lower_bound = prop_def(IntegerAttr[IndexType])
    upper_bound = prop_def(IntegerAttr[IndexType])
    step = prop_def(IntegerAttr[IndexType])
    kind = prop_def(LoopKindAttr)
    #: vectorize: SIMD width
    width = opt_prop_def(IntegerAttr[IndexType])
    #: unroll: unroll factor
    factor = opt_prop_def(IntegerAttr[IndexType])
    #: vectorize: the last vector is partial (the width need not divide the trip count)
    masked = opt_prop_def(UnitAttr)

    body = region_def("single_block")

    traits = traits_def(SingleBlockImplicitTerminator(YieldOp), RecursiveMemoryEffect())

    def __init__(
        self,
        lb: int,
        ub: int,
        step: int = 1,
        kind: LoopKind | str = LoopKind.SERIAL,
        *,
        width: int | None = None,
        factor: int | None = None,
        masked: bool = False,
        body: Region | None = None,
        attributes: Mapping[str, Attribute] | None = None,
    ) -> None:
        if body is None:
            block = Block(arg_types=[IndexType()])
            block.add_op(YieldOp())
            body = Region(block)
        props: dict[str, Attribute] = {
            "lower_bound": IntegerAttr(lb, IndexType()),
            "upper_bound": IntegerAttr(ub, IndexType()),
            "step": IntegerAttr(step, IndexType()),
            "kind": LoopKindAttr(LoopKind(kind)),
        }
        if width is not None:
            props["width"] = IntegerAttr(width, IndexType())
        if factor is not None:
            props["factor"] = IntegerAttr(factor, IndexType())
        if masked:
            props["masked"] = UnitAttr()
        super().__init__(properties=props, regions=[body], attributes=dict(attributes or {}))

    @property
    def lb(self) -> int:
        return self.lower_bound.value.data

    @property
    def ub(self) -> int:
        return self.upper_bound.value.data

    @property
    def step_value(self) -> int:
        return self.step.value.data

    @property
    def loop_kind(self) -> LoopKind:
        return self.kind.data

    @property
    def induction_var(self) -> BlockArgument:
        return self.body.block.args[0]

    @property
    def trip_count(self) -> int:
        s = self.step_value
        return max(0, -(-(self.ub - self.lb) // s)) if s > 0 else 0

    def body_builder(self) -> Builder:
        """A builder inserting before the loop body's terminator."""
        last = self.body.block.last_op
        if isinstance(last, YieldOp):
            return Builder(InsertPoint.before(last))
        return Builder(InsertPoint.at_end(self.body.block))

    def verify_(self) -> None:
        block = self.body.block
        if len(block.args) != 1 or not isinstance(block.args[0].type, IndexType):
            raise TlError("the body must have exactly one argument, the index induction variable")
        if self.step_value <= 0:
            raise TlError(f"step must be positive, got {self.step_value}")
        last = block.last_op
        if isinstance(last, YieldOp) and last.arguments:
            raise TlError("the loop body's tl.yield takes no values")
        kind = self.loop_kind
        if (self.width is not None) != (kind == LoopKind.VECTORIZE):
            raise TlError("`width` is given exactly for vectorize loops")
        if (self.factor is not None) != (kind == LoopKind.UNROLL):
            raise TlError("`factor` is given exactly for unroll loops")
        if self.masked is not None and kind != LoopKind.VECTORIZE:
            raise TlError("only vectorize loops can be masked")
        if kind == LoopKind.VECTORIZE:
            assert self.width is not None
            w = self.width.value.data
            if w <= 0:
                raise TlError(f"vector width must be positive, got {w}")
            if self.masked is None and self.trip_count % w:
                raise TlError(
                    f"vector width {w} does not divide the trip count {self.trip_count}; "
                    "mark the loop `masked` or split it"
                )
        if kind == LoopKind.UNROLL:
            assert self.factor is not None
            if self.factor.value.data <= 0:
                raise TlError(f"unroll factor must be positive, got {self.factor.value.data}")
        if kind == LoopKind.PARALLEL:
            self._verify_parallel()

    def _verify_parallel(self) -> None:
        """A parallel loop must not carry a reduction, and every iteration must write
        different elements of each buffer defined outside the loop."""
        iv = self.induction_var
        deps = _Dependence(iv, self)
        for op in self.body.walk():
            if isinstance(op, BlockOp):
                b = op.binding_map
                dep_dims = {d for d, v in enumerate(op.loop_vars) if deps.depends(v)}
                indexed = False
                for it, expr in zip(op.iterator_list, b.results):
                    if expr.used_dims() & dep_dims:
                        if it.is_reduction:
                            raise TlError(
                                f"parallel loop carries a reduction: iterator '{it.label}' of "
                                f'tl.block "{op.label.data}" is bound to its induction '
                                "variable"
                            )
                        indexed = True
                if not indexed:
                    self._check_written(op, op.outputs, deps, f'tl.block "{op.label.data}"')
            elif isinstance(op, KernelOp):
                self._check_written(op, op.outputs, deps, f'tl.kernel "{op.label.data}"')
            elif isinstance(op, StoreOp):
                if not any(deps.depends(i) for i in op.indices):
                    self._check_written(op, [op.memref], deps, "memref.store")

    def _check_written(
        self, op: Operation, buffers: Iterable[SSAValue], deps: _Dependence, what: str
    ) -> None:
        for buf in buffers:
            if is_defined_inside(buf, self) or deps.depends(buf):
                continue
            raise TlError(
                f"{what} writes the same elements of a buffer in every iteration of this "
                "parallel loop (nothing it writes depends on the induction variable)"
            )

    def print(self, printer: Printer) -> None:
        printer.print_string(" ")
        printer.print_ssa_value(self.induction_var)
        printer.print_string(f" = {self.lb} to {self.ub}")
        if self.step_value != 1:
            printer.print_string(f" step {self.step_value}")
        kind = self.loop_kind
        if kind == LoopKind.PARALLEL:
            printer.print_string(" parallel")
        elif kind == LoopKind.VECTORIZE and self.width is not None:
            masked = ", masked" if self.masked is not None else ""
            printer.print_string(f" vectorize({self.width.value.data}{masked})")
        elif kind == LoopKind.UNROLL and self.factor is not None:
            printer.print_string(f" unroll({self.factor.value.data})")
        printer.print_string(" ")
        printer.print_region(
            self.body,
            print_entry_block_args=False,
            print_empty_block=False,
            print_block_terminators=False,
        )
        printer.print_op_attributes(self.attributes, print_keyword=True)

    @classmethod
    def parse(cls, parser: Parser) -> ForOp:
        iv = parser.parse_argument(expect_type=False)
        parser.parse_punctuation("=")
        lb = parser.parse_integer(allow_boolean=False)
        parser.parse_keyword("to")
        ub = parser.parse_integer(allow_boolean=False)
        step = 1
        if parser.parse_optional_keyword("step"):
            step = parser.parse_integer(allow_boolean=False)
        kind = LoopKind.SERIAL
        width = factor = None
        masked = False
        if parser.parse_optional_keyword("parallel"):
            kind = LoopKind.PARALLEL
        elif parser.parse_optional_keyword("vectorize"):
            kind = LoopKind.VECTORIZE
            parser.parse_punctuation("(")
            width = parser.parse_integer(allow_boolean=False)
            if parser.parse_optional_punctuation(","):
                parser.parse_keyword("masked")
                masked = True
            parser.parse_punctuation(")")
        elif parser.parse_optional_keyword("unroll"):
            kind = LoopKind.UNROLL
            parser.parse_punctuation("(")
            factor = parser.parse_integer(allow_boolean=False)
            parser.parse_punctuation(")")
        body = parser.parse_region((iv.resolve(IndexType()),))
        attrs = parser.parse_optional_attr_dict_with_keyword()
        op = cls(
            lb,
            ub,
            step,
            kind,
            width=width,
            factor=factor,
            masked=masked,
            body=body,
            attributes=dict(attrs.data) if attrs else None,
        )
        for trait in op.get_traits_of_type(SingleBlockImplicitTerminator):
            ensure_terminator(op, trait)
        return op


class _Dependence:
    """Which SSA values depend on a loop's induction variable (through ops in the loop)."""

    def __init__(self, iv: SSAValue, loop: Operation) -> None:
        self.iv = iv
        self.loop = loop
        self._memo: dict[SSAValue, bool] = {}

    def depends(self, value: SSAValue) -> bool:
        if value is self.iv:
            return True
        if value in self._memo:
            return self._memo[value]
        self._memo[value] = False
        result = False
        if isinstance(value, OpResult) and self.loop.is_ancestor(value.op):
            result = any(self.depends(o) for o in value.op.operands)
        self._memo[value] = result
        return result
