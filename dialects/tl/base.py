"""What `tl.kernel` and `tl.block` share (`StructuredOp`: iterators, operands with index
maps, pads, inits, a scalar body; its verifier, printer and parser), the body ops
`tl.yield` and `tl.index`, and pad/init scalar values."""

from __future__ import annotations

from abc import ABC
from collections.abc import Sequence
from typing import cast

from xdsl.dialects.builtin import (
    AffineMapAttr,
    AnyFloat,
    ArrayAttr,
    FloatAttr,
    IndexType,
    IntegerAttr,
    IntegerType,
    MemRefType,
    StringAttr,
    UnitAttr,
)
from xdsl.dialects.utils import AbstractYieldOperation
from xdsl.ir import Attribute, Block, BlockArgument, Operation, OpResult, Region, SSAValue
from xdsl.ir.affine import AffineMap
from xdsl.irdl import (
    AttrSizedOperandSegments,
    IRDLOperation,
    irdl_op_definition,
    lazy_traits_def,
    prop_def,
    region_def,
    result_def,
    var_operand_def,
)
from xdsl.parser import Parser, UnresolvedOperand
from xdsl.printer import Printer
from xdsl.traits import (
    EffectInstance,
    HasParent,
    IsolatedFromAbove,
    IsTerminator,
    MemoryEffect,
    MemoryEffectKind,
    Pure,
)

from mlc.dialects.tl.affine import (
    IDENTIFIER,
    RESERVED_NAMES,
    affine_range,
    format_affine_expr,
    name_leaf,
    parse_affine_expr,
)
from mlc.dialects.tl.attrs import IteratorAttr, IteratorKind, TlError

# --------------------------------------------------------------------------- scalar values

ScalarAttr = FloatAttr | IntegerAttr


def is_scalar_type(ty: Attribute) -> bool:
    return isinstance(ty, AnyFloat | IntegerType | IndexType)


def scalar_attr(value: float | int | bool | ScalarAttr, ty: Attribute) -> ScalarAttr:
    """A pad/init value of element type `ty` as the attribute `tl` ops store it as."""
    if isinstance(value, FloatAttr | IntegerAttr):
        return value
    if isinstance(ty, AnyFloat):
        return FloatAttr(float(value), ty)
    if isinstance(ty, IntegerType | IndexType):
        if isinstance(value, float) and not value.is_integer():
            raise TlError(f"{value} is not a value of type {ty}")
        v = int(value)
        if isinstance(ty, IntegerType) and ty.width.data == 1:
            v = 1 if v else 0
        return IntegerAttr(v, ty)
    raise TlError(f"element type {ty} has no scalar values")


def scalar_value(attr: Attribute | None) -> float | int | None:
    """The Python value of a pad/init attribute (None when absent)."""
    if isinstance(attr, FloatAttr):
        return float(attr.value.data)
    if isinstance(attr, IntegerAttr):
        return int(attr.value.data)
    return None


def _print_scalar(printer: Printer, attr: Attribute) -> None:
    if isinstance(attr, FloatAttr):
        printer.print_float(attr.value.data, cast(AnyFloat, attr.type))
    elif isinstance(attr, IntegerAttr):
        printer.print_string(str(attr.value.data))
    else:
        printer.print_attribute(attr)


def _parse_scalar(parser: Parser) -> tuple[int | float, bool]:
    """A number and whether it was written in hexadecimal (a float's bit pattern)."""
    is_hex = parser.lexer.input.content.startswith(("0x", "0X"), parser.pos)
    value = parser.parse_number(allow_boolean=True)
    return value, is_hex


def _make_scalar(value: int | float, is_hex: bool, ty: Attribute) -> ScalarAttr:
    """The pad/init attribute for `value` (hexadecimal: a float's bit pattern) of type
    `ty`; a `TlError` if `ty` cannot hold it."""
    if isinstance(ty, AnyFloat) and is_hex and isinstance(value, int):
        if value.bit_length() > ty.bitwidth:
            raise TlError(
                f"{hex(value)} is not a bit pattern of {ty}: it has more than {ty.bitwidth} bits"
            )
        raw = value.to_bytes(ty.compile_time_size, "little")
        return FloatAttr(next(iter(ty.iter_unpack(raw))), ty)
    try:
        return scalar_attr(value, ty)
    except OverflowError:
        raise TlError(f"{value} is out of range for {ty}") from None


# --------------------------------------------------------------------------- small ops


def _body_owners() -> tuple[type[Operation], ...]:
    from mlc.dialects.tl.structured import BlockOp, KernelOp

    return KernelOp, BlockOp


def _for_op() -> type[Operation]:
    from mlc.dialects.tl.loops import ForOp

    return ForOp


@irdl_op_definition
class YieldOp(AbstractYieldOperation[Attribute]):
    """Terminator of kernel/block bodies (the new output values) and of loop bodies (no
    values; omitted in the printed form of `tl.for`).

    tl.yield %s : f32
    """

    name = "tl.yield"

    traits = lazy_traits_def(
        lambda: (IsTerminator(), Pure(), HasParent(*_body_owners(), _for_op()))
    )


@irdl_op_definition
class IndexOp(IRDLOperation):
    """The current value of a named iterator, inside a kernel or block body (for iota,
    argmax, masks, ...).

    %i = tl.index "k"
    """

    name = "tl.index"

    iterator = prop_def(StringAttr)
    result = result_def(IndexType)

    traits = lazy_traits_def(lambda: (Pure(), HasParent(*_body_owners())))
    assembly_format = "$iterator attr-dict"

    def __init__(self, iterator: str) -> None:
        super().__init__(properties={"iterator": StringAttr(iterator)}, result_types=[IndexType()])

    def verify_(self) -> None:
        parent = self.parent_op()
        if isinstance(parent, StructuredOp):
            names = parent.iterator_names
            if self.iterator.data not in names:
                raise TlError(
                    f"'{self.iterator.data}' is not an iterator of the enclosing "
                    f"{parent.name} (iterators: {', '.join(names)})"
                )


# --------------------------------------------------------------------------- structured ops


class IsolatedBody(IsolatedFromAbove):
    """Kernel and block bodies only use their arguments and values they define."""

    def verify(self, op: Operation) -> None:
        for inner in op.walk():
            if inner is op:
                continue
            for operand in inner.operands:
                if not is_defined_inside(operand, op):
                    raise TlError(
                        f"the body uses a value defined outside the {op.name} "
                        f"(operand of {inner.name}); bodies only use their block "
                        "arguments and values they define"
                    )


def is_defined_inside(value: SSAValue, op: Operation) -> bool:
    if isinstance(value, OpResult):
        return value.op is not op and op.is_ancestor(value.op)
    assert isinstance(value, BlockArgument)
    parent = value.block.parent_op()
    return parent is not None and op.is_ancestor(parent)


class StructuredMemoryEffects(MemoryEffect):
    """Reads every input; reads and writes every output."""

    @classmethod
    def get_effects(cls, op: Operation) -> set[EffectInstance]:
        assert isinstance(op, StructuredOp)
        effects = {EffectInstance(MemoryEffectKind.READ, v) for v in op.inputs}
        for v in op.outputs:
            effects.add(EffectInstance(MemoryEffectKind.READ, v))
            effects.add(EffectInstance(MemoryEffectKind.WRITE, v))
        return effects


def row_major_strides(shape: Sequence[int]) -> list[int]:
    """Element strides of a dense row-major buffer of `shape` (`[4, 8]` -> `[8, 1]`)."""
    strides, acc = [], 1
    for d in reversed(shape):
        strides.append(acc)
        acc *= d
    return strides[::-1]


def _static_memref(value: SSAValue, what: str) -> MemRefType:
    ty = value.type
    if not isinstance(ty, MemRefType):
        raise TlError(f"{what} must be a memref, got {ty}")
    ty = cast(MemRefType, ty)
    if any(d < 0 for d in ty.get_shape()):
        raise TlError(f"{what} must have a static shape, got {ty}")
    if not is_scalar_type(ty.element_type):
        raise TlError(f"{what} has unsupported element type {ty.element_type}")
    return ty


class StructuredOp(IRDLOperation, ABC):
    """Shared structure of `tl.kernel` and `tl.block`: iterators, operands with index
    maps, pad values of inputs, init values of outputs, and a scalar body."""

    inputs = var_operand_def(MemRefType)
    outputs = var_operand_def(MemRefType)

    label = prop_def(StringAttr)
    iterators = prop_def(ArrayAttr[IteratorAttr])
    indexing_maps = prop_def(ArrayAttr[AffineMapAttr])
    #: one per input: `unit` (unguarded) or the value an out-of-bounds read yields
    pads = prop_def(ArrayAttr[Attribute])
    #: one per output: `unit` (none) or the value written before the body runs
    inits = prop_def(ArrayAttr[Attribute])

    body = region_def("single_block")

    irdl_options = (AttrSizedOperandSegments(as_property=True),)

    # ---- accessors

    @property
    def iterator_list(self) -> list[IteratorAttr]:
        return list(self.iterators.data)

    @property
    def iterator_names(self) -> list[str]:
        return [it.label for it in self.iterators.data]

    @property
    def extents(self) -> list[int]:
        return [it.size for it in self.iterators.data]

    @property
    def reduction_dims(self) -> list[int]:
        return [i for i, it in enumerate(self.iterators.data) if it.is_reduction]

    @property
    def parallel_dims(self) -> list[int]:
        return [i for i, it in enumerate(self.iterators.data) if not it.is_reduction]

    @property
    def maps(self) -> list[AffineMap]:
        return [m.data for m in self.indexing_maps.data]

    @property
    def input_maps(self) -> list[AffineMap]:
        return self.maps[: len(self.inputs)]

    @property
    def output_maps(self) -> list[AffineMap]:
        return self.maps[len(self.inputs) :]

    @property
    def pad_values(self) -> list[ScalarAttr | None]:
        return [a if isinstance(a, FloatAttr | IntegerAttr) else None for a in self.pads.data]

    @property
    def init_values(self) -> list[ScalarAttr | None]:
        return [a if isinstance(a, FloatAttr | IntegerAttr) else None for a in self.inits.data]

    @property
    def body_block(self) -> Block:
        return self.body.block

    @property
    def yield_op(self) -> YieldOp:
        last = self.body.block.last_op
        assert isinstance(last, YieldOp)
        return last

    @property
    def buffer_types(self) -> list[MemRefType]:
        return [cast(MemRefType, v.type) for v in (*self.inputs, *self.outputs)]

    # ---- verification

    def verify_(self) -> None:
        iters = self.iterator_list
        names = [it.label for it in iters]
        for it in iters:
            if not IDENTIFIER.match(it.label) or it.label in RESERVED_NAMES:
                raise TlError(f"'{it.label}' is not a valid iterator name")
            if it.size <= 0:
                raise TlError(f"iterator '{it.label}' has extent {it.size}; extents must be > 0")
        if len(set(names)) != len(names):
            raise TlError(f"iterator names must be unique, got {', '.join(names)}")
        n_in, n_out = len(self.inputs), len(self.outputs)
        if n_out == 0:
            raise TlError("needs at least one output")
        maps = self.maps
        if len(maps) != n_in + n_out:
            raise TlError(
                f"expects one index map per operand: {n_in + n_out} operands, {len(maps)} maps"
            )
        if len(self.pads.data) != n_in:
            raise TlError(f"expects one pad entry per input: {n_in} inputs, {len(self.pads)} pads")
        if len(self.inits.data) != n_out:
            raise TlError(
                f"expects one init entry per output: {n_out} outputs, {len(self.inits)} inits"
            )
        operands = [*self.inputs, *self.outputs]
        whats = [f"input #{i}" for i in range(n_in)] + [f"output #{j}" for j in range(n_out)]
        types = [_static_memref(v, w) for v, w in zip(operands, whats)]
        for m, ty, what in zip(maps, types, whats):
            if m.num_symbols != 0:
                raise TlError(f"index map of {what} must not have symbols")
            if m.num_dims != len(iters):
                raise TlError(
                    f"index map of {what} has {m.num_dims} dims but there are "
                    f"{len(iters)} iterators"
                )
            if len(m.results) != ty.get_num_dims():
                raise TlError(
                    f"index map of {what} has {len(m.results)} results but {ty} has rank "
                    f"{ty.get_num_dims()}"
                )
        for what, attr, ty in zip(
            [*whats[:n_in], *whats[n_in:]], [*self.pads.data, *self.inits.data], types
        ):
            if isinstance(attr, UnitAttr):
                continue
            kind = "pad" if what.startswith("input") else "init"
            if not isinstance(attr, FloatAttr | IntegerAttr) or attr.type != ty.element_type:
                raise TlError(
                    f"{kind} value of {what} must be a {ty.element_type} scalar, got {attr}"
                )
        seen_out: set[SSAValue] = set()
        for j, v in enumerate(self.outputs):
            if v in seen_out:
                raise TlError(f"output #{j} is the same buffer as an earlier output")
            if v in self.inputs:
                raise TlError(
                    f"output #{j} is also an input; read its current value through the "
                    "output's body argument instead"
                )
            seen_out.add(v)
        for j, m in enumerate(maps[n_in:]):
            used = m.used_dims()
            for d, it in enumerate(iters):
                if it.is_reduction and d in used:
                    raise TlError(f"reduction iterator '{it.label}' indexes output #{j}")
                if not it.is_reduction and d not in used:
                    raise TlError(
                        f"parallel iterator '{it.label}' does not index output #{j}: every "
                        "value of it would write the same elements; make it a reduction"
                    )
        self._verify_bounds(maps, types, whats)
        self._verify_body(types)

    def _verify_bounds(
        self, maps: Sequence[AffineMap], types: Sequence[MemRefType], whats: Sequence[str]
    ) -> None:
        names = self.iterator_names
        ranges = [(0, e - 1) for e in self.extents]
        pads = self.pad_values
        for k, (m, ty, what) in enumerate(zip(maps, types, whats)):
            if k < len(pads) and pads[k] is not None:
                continue
            for d, (expr, size) in enumerate(zip(m.results, ty.get_shape())):
                lo, hi = affine_range(expr, ranges)
                if lo < 0 or hi > size - 1:
                    hint = (
                        "; give the input a pad value"
                        if what.startswith("input")
                        else "; outputs cannot be padded"
                    )
                    raise TlError(
                        f"{what} index {d} ({format_affine_expr(expr, names)}) ranges over "
                        f"[{lo}, {hi}] but dimension {d} of {ty} has size {size}{hint}"
                    )

    def _verify_body(self, types: Sequence[MemRefType]) -> None:
        block = self.body.block
        n_in = len(self.inputs)
        if len(block.args) != len(types):
            raise TlError(
                f"body takes {len(block.args)} arguments but there are {len(types)} operands "
                "(one element per input, then one per output)"
            )
        for k, (arg, ty) in enumerate(zip(block.args, types)):
            if arg.type != ty.element_type:
                what = f"input #{k}" if k < n_in else f"output #{k - n_in}"
                raise TlError(
                    f"body argument #{k} has type {arg.type} but {what} has element type "
                    f"{ty.element_type}"
                )
        last = block.last_op
        if not isinstance(last, YieldOp):
            raise TlError("body must end with tl.yield")
        out_types = [ty.element_type for ty in types[n_in:]]
        got = [v.type for v in last.arguments]
        if got != out_types:
            raise TlError(
                f"body yields ({', '.join(map(str, got))}) but the outputs have element types "
                f"({', '.join(map(str, out_types))})"
            )
        for op in block.ops:
            if op.regions:
                raise TlError(f"body ops cannot have regions, got {op.name}")

    # ---- printing and parsing

    def _print_operand_list(self, printer: Printer, keyword: str, start: int) -> None:
        values = self.inputs if keyword == "ins" else self.outputs
        if not values:
            return
        names = self.iterator_names
        extras = self.pads.data if keyword == "ins" else self.inits.data
        maps = self.maps
        printer.print_string(f" {keyword}(")
        for k, (value, extra) in enumerate(zip(values, extras)):
            if k:
                printer.print_string(", ")
            printer.print_ssa_value(value)
            exprs = maps[start + k].results
            printer.print_string("[")
            printer.print_string(", ".join(format_affine_expr(e, names) for e in exprs))
            printer.print_string("]")
            if not isinstance(extra, UnitAttr):
                printer.print_string(" pad " if keyword == "ins" else " init ")
                _print_scalar(printer, extra)
            printer.print_string(" : ")
            printer.print_attribute(value.type)
        printer.print_string(")")

    def _print_header(self, printer: Printer) -> None:
        printer.print_string(" ")
        printer.print_string_literal(self.label.data)
        printer.print_string(" iterators(")
        printer.print_string(
            ", ".join(f"{it.label}: {it.size} {it.kind.data.value}" for it in self.iterator_list)
        )
        printer.print_string(")")

    def _print_tail(self, printer: Printer) -> None:
        self._print_operand_list(printer, "ins", 0)
        self._print_operand_list(printer, "outs", len(self.inputs))
        printer.print_string(" ")
        printer.print_region(self.body)
        printer.print_op_attributes(self.attributes, print_keyword=True)

    @staticmethod
    def _parse_header(parser: Parser) -> tuple[str, list[IteratorAttr]]:
        label = parser.parse_str_literal("kernel label")
        parser.parse_keyword("iterators")

        def parse_iterator() -> IteratorAttr:
            name = parser.parse_identifier(" (iterator name)")
            parser.parse_punctuation(":")
            extent = parser.parse_integer(allow_boolean=False)
            kind = cast(IteratorKind, parser.parse_str_enum(IteratorKind))
            return IteratorAttr(name, extent, kind)

        iterators = parser.parse_comma_separated_list(Parser.Delimiter.PAREN, parse_iterator)
        return label, iterators

    @staticmethod
    def _parse_operand_list(
        parser: Parser, keyword: str, names: Sequence[str]
    ) -> tuple[list[SSAValue], list[AffineMapAttr], list[Attribute]]:
        values: list[SSAValue] = []
        maps: list[AffineMapAttr] = []
        extras: list[Attribute] = []
        if not parser.parse_optional_keyword(keyword):
            return values, maps, extras
        extra_kw = "pad" if keyword == "ins" else "init"
        leaf = name_leaf(parser, names)

        def parse_operand() -> None:
            unresolved: UnresolvedOperand = parser.parse_unresolved_operand()
            exprs = parser.parse_comma_separated_list(
                Parser.Delimiter.SQUARE, lambda: parse_affine_expr(parser, leaf)
            )
            scalar: tuple[int | float, bool] | None = None
            if parser.parse_optional_keyword(extra_kw):
                scalar = _parse_scalar(parser)
            parser.parse_punctuation(":")
            pos = parser.pos
            ty = parser.parse_type()
            if not isinstance(ty, MemRefType):
                parser.raise_error(f"expected a memref type, got {ty}", pos)
            values.append(parser.resolve_operand(unresolved, ty))
            maps.append(AffineMapAttr(AffineMap(len(names), 0, tuple(exprs))))
            if scalar is None:
                extras.append(UnitAttr())
            else:
                try:
                    extras.append(_make_scalar(*scalar, cast(MemRefType, ty).element_type))
                except (TlError, ValueError) as e:
                    parser.raise_error(str(e), pos)

        parser.parse_comma_separated_list(Parser.Delimiter.PAREN, parse_operand)
        return values, maps, extras

    @classmethod
    def _parse_tail(
        cls, parser: Parser, names: Sequence[str]
    ) -> tuple[
        list[SSAValue],
        list[SSAValue],
        list[AffineMapAttr],
        list[Attribute],
        list[Attribute],
        Region,
        dict[str, Attribute],
    ]:
        ins, in_maps, pads = cls._parse_operand_list(parser, "ins", names)
        outs, out_maps, inits = cls._parse_operand_list(parser, "outs", names)
        body = parser.parse_region()
        attrs = parser.parse_optional_attr_dict_with_keyword()
        return ins, outs, in_maps + out_maps, pads, inits, body, dict(attrs.data) if attrs else {}

    # ---- structure helpers for transformations

    def clone_body(self) -> Region:
        """A copy of the body region (for building another op with the same body)."""
        return self.body.clone()


def structured_properties(
    label: str,
    iterators: Sequence[IteratorAttr],
    maps: Sequence[AffineMapAttr | AffineMap],
    pads: Sequence[Attribute],
    inits: Sequence[Attribute],
) -> dict[str, Attribute]:
    return {
        "label": StringAttr(label),
        "iterators": ArrayAttr(iterators),
        "indexing_maps": ArrayAttr(
            [m if isinstance(m, AffineMapAttr) else AffineMapAttr(m) for m in maps]
        ),
        "pads": ArrayAttr(pads),
        "inits": ArrayAttr(inits),
    }
