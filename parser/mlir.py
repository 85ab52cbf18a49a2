"""Textual IR in and out, with `file:line:col` diagnostics.

xDSL's parser attaches source locations only to ops written with `loc(...)`; ours records
where every op starts, so verification errors can point at the op's line. Errors are
raised as `IRDiagnostic`, whose message is one `file:line:col: error: ...` line (plus the
offending source line for parse errors) — never a dump of the whole module.

Hostile input is an error too, never a crash or a hang: nesting deeper than the stack
allows, values out of range for their type, splats too large to build, unclosed strings
(lexed in linear time, `mlc.parser.lexer`). Verification adds what xDSL's lacks: SSA
dominance (`mlc.parser.dominance`) and types too large for a 64-bit address space.
"""

from __future__ import annotations

import os
import re
import struct

from xdsl.context import Context
from xdsl.dialects.builtin import (
    AnyFloat,
    ComplexType,
    FileLineColLoc,
    IndexType,
    IntAttr,
    IntegerType,
    ModuleOp,
    RankedStructure,
    StringAttr,
)
from xdsl.ir import Attribute, Operation, SSAValue
from xdsl.parser import Parser
from xdsl.parser.core import ForwardDeclaredValue, UnresolvedOperand
from xdsl.parser.generic_parser import ParserState
from xdsl.utils.exceptions import DiagnosticException, ParseError
from xdsl.utils.lexer import Input, Span

from mlc.parser.dominance import DominanceChecker
from mlc.parser.lexer import LinearTimeLexer
from mlc.parser.limits import oversized_type_problem, static_element_count

_OP_NAME = re.compile(r'(?:[%#\w:, ]+=\s*)?"?([A-Za-z_][\w.$]*)')
"""An op's name at the start of its text, after its results (`%a, %b = `)."""

_DENSE_ARRAY = re.compile(r"array\s*<\s*([^\s:>]+)")
"""The element type at the start of a dense array attribute's text."""

MAX_OP_NESTING = 100
"""The deepest op nesting the parser accepts: deeper IR would exhaust Python's stack in
the parser, the verifier, the printer or a pass."""

MAX_SPLAT_ELEMENTS = 2**24
"""The most elements a dense literal's type may have (`MLC_MAX_SPLAT_ELEMENTS` overrides),
unless the input is longer (in characters) than that: a literal written out in full takes a
character per element at least, but a splat `dense<1.0> : tensor<NxT>` is built as N
elements."""


def max_splat_elements() -> int:
    """`MLC_MAX_SPLAT_ELEMENTS` if set to a positive integer, else `MAX_SPLAT_ELEMENTS`."""
    env = os.environ.get("MLC_MAX_SPLAT_ELEMENTS", "").strip()
    return int(env) if env.isdigit() and int(env) > 0 else MAX_SPLAT_ELEMENTS

BAD_VALUE_ERRORS = (
    OverflowError,
    ValueError,
    ZeroDivisionError,
    NotImplementedError,
    struct.error,
)
"""What building an attribute from out-of-range or unsupported values raises in xDSL."""


class IRDiagnostic(DiagnosticException):
    """A located error in textual IR or in a module (parse, verification, pass failure)."""


class LocatingParser(Parser):
    """An xDSL parser that records each op's source position as its location, and reports
    a value that is never defined at its first use (xDSL reports it at the end of input)."""

    def __init__(self, ctx: Context, text: str, name: str = "<stdin>", line_offset: int = 0):
        super().__init__(ctx, "", name)
        # xDSL's lexer takes exponential time on an unclosed string literal: use ours
        self._parser_state = ParserState(LinearTimeLexer(Input(text, name)))
        self._name = name
        self._line_offset = line_offset
        self._text = text
        self._first_forward_use: dict[str, Span] = {}
        self._op_depth = 0

    def resolve_operand(self, operand: UnresolvedOperand, type: Attribute) -> SSAValue:
        name = operand.operand_name
        if name not in self.ssa_values:
            self._first_forward_use.setdefault(name, operand.span)
        return super().resolve_operand(operand, type)

    def parse_module(self, allow_implicit_module: bool = True) -> ModuleOp:
        try:
            return super().parse_module(allow_implicit_module)
        except ParseError as e:
            undefined = [n for n in self.forward_ssa_references if n in self._first_forward_use]
            if not e.msg.startswith("values used but not defined") or not undefined:
                raise
            first = min(undefined, key=lambda n: self._first_forward_use[n].start)
            raise ParseError(
                self._first_forward_use[first], f"use of undefined value %{first}"
            ) from None

    def parse_optional_attribute(self) -> Attribute | None:
        start = self.pos
        try:
            return super().parse_optional_attribute()
        except BAD_VALUE_ERRORS as e:  # a value that its type cannot hold, say
            text = self._text[start : self.pos]
            self.raise_error(invalid_attribute_message(text, e), start, max(self.pos, start + 1))

    def _parse_dense_literal_type(
        self,
    ) -> RankedStructure[IntegerType | IndexType | AnyFloat | ComplexType]:
        """xDSL 0.74's hook for the type of `dense<...> : type`, which it then fills with
        as many elements as the type has, even for a one-element splat."""
        start = self.pos
        ty = super()._parse_dense_literal_type()
        count = static_element_count(ty) or 0
        limit = max(max_splat_elements(), len(self._text))
        if count > limit:
            self.raise_error(
                f"dense literal of type {ty} has {count} elements: too many to build "
                f"(at most {limit}; MLC_MAX_SPLAT_ELEMENTS raises the limit)",
                start,
                self.pos,
            )
        return ty

    def parse_operation(self) -> Operation:
        start = self.pos
        if self._op_depth >= MAX_OP_NESTING:
            self.raise_error(f"ops nested more than {MAX_OP_NESTING} deep", start, start + 1)
        self._op_depth += 1
        try:
            op = super().parse_operation()
        except (DiagnosticException, *BAD_VALUE_ERRORS) as e:  # rejected while being built
            name = _OP_NAME.match(self._text, start)
            end = name.end() if name else start + 1
            prefix = f"'{name.group(1)}' op " if name else ""
            self.raise_error(f"{prefix}{str(e).strip() or type(e).__name__}", start, end)
        finally:
            self._op_depth -= 1
        if not isinstance(op.location, FileLineColLoc):
            line_start = self._text.rfind("\n", 0, start) + 1
            line = self._text.count("\n", 0, start) + 1 + self._line_offset
            op.location = FileLineColLoc(
                StringAttr(self._name), IntAttr(line), IntAttr(start - line_start + 1)
            )
        return op


def format_location(op: Operation) -> str:
    loc = op.location
    if isinstance(loc, FileLineColLoc):
        return f"{loc.filename.data}:{loc.line.data}:{loc.column.data}"
    return "<unknown>"


def parse_error_message(err: ParseError) -> str:
    """`file:line:col: error: message` followed by the source line and a caret."""
    loc = err.span.get_location()
    context = err.span.print_with_context().split("\n", 1)[-1].rstrip("\n")
    return f"{loc.file}:{loc.line}:{loc.col}: error: {err.msg}\n{context}"


def invalid_attribute_message(text: str, error: Exception) -> str:
    """The one-line message for attribute `text` that xDSL could not build (`error`)."""
    array = _DENSE_ARRAY.match(text)
    if array and isinstance(error, NotImplementedError | ZeroDivisionError):
        return (
            f"dense arrays of {array.group(1)} are not supported: their elements must be "
            "integers or floats of 1 to 64 bits"
        )
    detail = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    if isinstance(error, OverflowError | struct.error):
        return f"invalid attribute: a value is out of range for its type ({detail})"
    if isinstance(error, NotImplementedError):
        return f"unsupported attribute: {detail}"
    return f"invalid attribute: {detail}"


def _nesting_error(parser: LocatingParser) -> ParseError:
    """The error for input nested deeper than Python's stack lets the parser go."""
    start = min(parser.pos, max(len(parser.lexer.input.content) - 1, 0))
    span = Span(start, start + 1, parser.lexer.input)
    return ParseError(span, "nesting too deep (parentheses, brackets, types or regions)")


def parse_module(
    ctx: Context, text: str, name: str = "<stdin>", line_offset: int = 0, verify: bool = True
) -> ModuleOp:
    """Parse (and verify) textual IR; raises `IRDiagnostic` on any error."""
    parser: LocatingParser | None = None
    try:
        parser = LocatingParser(ctx, text, name, line_offset)
        module = parser.parse_module()
    except ParseError as e:
        raise _diagnostic(e, line_offset) from None
    except RecursionError:
        if parser is None:
            raise
        raise _diagnostic(_nesting_error(parser), line_offset) from None
    if verify:
        verify_module(module)
    return module


def _diagnostic(error: ParseError, line_offset: int) -> IRDiagnostic:
    if line_offset:
        error.span = type(error.span)(
            error.span.start, error.span.end, error.span.input, line_offset
        )
    return IRDiagnostic(parse_error_message(error))


def verify_module(module: Operation, context: str = "") -> None:
    """Verify every op, that each value's type fits a 64-bit address space and that each
    operand is defined before its use (SSA dominance); the first failure is raised with
    the op's location."""
    for op in module.walk():  # first: verifiers of enclosing ops look at these operands
        undefined = _undefined_operand(op)
        if undefined is not None:
            raise _verify_error(op, undefined, context)
    dominance = DominanceChecker()
    for op in module.walk():
        try:
            op.verify(verify_nested_ops=False)
        except DiagnosticException as e:
            message = str(e).strip() or type(e).__name__
            raise _verify_error(op, message, context) from None
        problem = _oversized_value_problem(op) or dominance.problem(op)
        if problem is not None:
            raise _verify_error(op, problem, context)


def _undefined_operand(op: Operation) -> str | None:
    """Why an operand of `op` is not a value at all: a name the parser saw used but never
    defined where it is visible (e.g. defined only inside a later op's region)."""
    for i, operand in enumerate(op.operands):
        if isinstance(operand, ForwardDeclaredValue):
            name = f"%{operand.name_hint}" if operand.name_hint else "a value"
            return f"operand #{i} uses {name}, which is never defined where it is visible"
    return None


def _verify_error(op: Operation, message: str, context: str) -> IRDiagnostic:
    prefix = f"{context}: " if context else ""
    return IRDiagnostic(f"{format_location(op)}: error: {prefix}'{op.name}' op {message}")


def _oversized_value_problem(op: Operation) -> str | None:
    """Why a result or block argument of `op` cannot exist on a 64-bit machine, if so."""
    values = [(f"result #{r.index}", r.type) for r in op.results]
    values += [
        (f"block argument #{a.index}", a.type)
        for region in op.regions
        for block in region.blocks
        for a in block.args
    ]
    for what, ty in values:
        if (problem := oversized_type_problem(ty)) is not None:
            return f"{what} {problem}"
    return None
