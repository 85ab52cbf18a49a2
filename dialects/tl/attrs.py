"""Attributes of the tl dialect: named iterators, iterator and loop kinds; and the
dialect's verification error."""

from __future__ import annotations

from typing import cast

from xdsl.dialects.builtin import IntAttr, StringAttr
from xdsl.dialects.utils import EnumAttribute
from xdsl.ir import Attribute, ParametrizedAttribute
from xdsl.irdl import irdl_attr_definition
from xdsl.parser import AttrParser
from xdsl.printer import Printer
from xdsl.utils.exceptions import VerifyException
from xdsl.utils.str_enum import StrEnum


class TlError(VerifyException):
    """A `tl` op whose iterators, operands, maps or body are inconsistent."""


# --------------------------------------------------------------------------- attributes


class IteratorKind(StrEnum):
    """How an iterator relates to the outputs: `parallel` ones index every output,
    `reduction` ones index none (the body combines into the current output value)."""

    PARALLEL = "parallel"
    REDUCTION = "reduction"


@irdl_attr_definition
class IteratorKindAttr(EnumAttribute[IteratorKind]):
    """`#tl.iterator_kind<parallel>`"""

    name = "tl.iterator_kind"

    @classmethod
    def parse_parameter(cls, parser: AttrParser) -> IteratorKind:
        with parser.in_angle_brackets():
            return cast(IteratorKind, parser.parse_str_enum(IteratorKind))

    def print_parameter(self, printer: Printer) -> None:
        with printer.in_angle_brackets():
            printer.print_string(self.data.value)


@irdl_attr_definition
class IteratorAttr(ParametrizedAttribute):
    """One named dimension of an iteration space: `#tl.iterator<m, 64, parallel>`."""

    name = "tl.iterator"

    iter_name: StringAttr
    extent: IntAttr
    kind: IteratorKindAttr

    def __init__(
        self,
        iter_name: str | StringAttr,
        extent: int | IntAttr,
        kind: str | IteratorKind | IteratorKindAttr = IteratorKind.PARALLEL,
    ) -> None:
        if isinstance(iter_name, str):
            iter_name = StringAttr(iter_name)
        if isinstance(extent, int):
            extent = IntAttr(extent)
        if not isinstance(kind, IteratorKindAttr):
            kind = IteratorKindAttr(IteratorKind(kind))
        super().__init__(iter_name, extent, kind)

    @property
    def label(self) -> str:
        return self.iter_name.data

    @property
    def size(self) -> int:
        return self.extent.data

    @property
    def is_reduction(self) -> bool:
        return self.kind.data == IteratorKind.REDUCTION

    @classmethod
    def parse_parameters(cls, parser: AttrParser) -> list[Attribute]:
        with parser.in_angle_brackets():
            name = parser.parse_identifier("iterator name")
            parser.parse_punctuation(",")
            extent = parser.parse_integer(allow_boolean=False)
            parser.parse_punctuation(",")
            kind = cast(IteratorKind, parser.parse_str_enum(IteratorKind))
        return [StringAttr(name), IntAttr(extent), IteratorKindAttr(kind)]

    def print_parameters(self, printer: Printer) -> None:
        printer.print_string(f"<{self.label}, {self.size}, {self.kind.data.value}>")


class LoopKind(StrEnum):
    """How a `tl.for` is to be executed by code generation (the interpreter runs every
    kind sequentially): `serial`, `parallel` (threads), `vectorize` (SIMD lanes of
    `width`), `unroll` (by `factor`)."""

    SERIAL = "serial"
    PARALLEL = "parallel"
    VECTORIZE = "vectorize"
    UNROLL = "unroll"


@irdl_attr_definition
class LoopKindAttr(EnumAttribute[LoopKind]):
    """`#tl.loop_kind<vectorize>`"""

    name = "tl.loop_kind"

    @classmethod
    def parse_parameter(cls, parser: AttrParser) -> LoopKind:
        with parser.in_angle_brackets():
            return cast(LoopKind, parser.parse_str_enum(LoopKind))

    def print_parameter(self, printer: Printer) -> None:
        with printer.in_angle_brackets():
            printer.print_string(self.data.value)
