"""Textual IR in and out, with `file:line:col` diagnostics.

xDSL's parser attaches source locations only to ops written with `loc(...)`; ours records
where every op starts, so verification errors can point at the op's line. Errors are
raised as `IRDiagnostic`, whose message is one `file:line:col: error: ...` line (plus the
offending source line for parse errors) — never a dump of the whole module.
"""

from __future__ import annotations

import re

from xdsl.context import Context
from xdsl.dialects.builtin import FileLineColLoc, IntAttr, ModuleOp, StringAttr
from xdsl.ir import Attribute, Operation, SSAValue
from xdsl.parser import Parser
from xdsl.parser.core import UnresolvedOperand
from xdsl.utils.exceptions import DiagnosticException, ParseError
from xdsl.utils.lexer import Span

_OP_NAME = re.compile(r'(?:[%#\w:, ]+=\s*)?"?([A-Za-z_][\w.$]*)')
"""An op's name at the start of its text, after its results (`%a, %b = `)."""


class IRDiagnostic(DiagnosticException):
    """A located error in textual IR or in a module (parse, verification, pass failure)."""


class LocatingParser(Parser):
    """An xDSL parser that records each op's source position as its location, and reports
    a value that is never defined at its first use (xDSL reports it at the end of input)."""

    def __init__(self, ctx: Context, text: str, name: str = "<stdin>", line_offset: int = 0):
        super().__init__(ctx, text, name)
        self._name = name
        self._line_offset = line_offset
        self._text = text
        self._first_forward_use: dict[str, Span] = {}

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

    def parse_operation(self) -> Operation:
        start = self.pos
        try:
            op = super().parse_operation()
        except DiagnosticException as e:  # an op (or attribute) rejected while being built
            name = _OP_NAME.match(self._text, start)
            end = name.end() if name else start + 1
            prefix = f"'{name.group(1)}' op " if name else ""
            self.raise_error(f"{prefix}{str(e).strip() or type(e).__name__}", start, end)
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


def parse_module(
    ctx: Context, text: str, name: str = "<stdin>", line_offset: int = 0, verify: bool = True
) -> ModuleOp:
    """Parse (and verify) textual IR; raises `IRDiagnostic` on any error."""
    try:
        module = LocatingParser(ctx, text, name, line_offset).parse_module()
    except ParseError as e:
        if line_offset:
            e.span = type(e.span)(e.span.start, e.span.end, e.span.input, line_offset)
        raise IRDiagnostic(parse_error_message(e)) from None
    if verify:
        verify_module(module)
    return module


def verify_module(module: Operation, context: str = "") -> None:
    """Verify every op; the first failure is raised with the op's location."""
    for op in module.walk():
        try:
            op.verify(verify_nested_ops=False)
        except DiagnosticException as e:
            message = str(e).strip() or type(e).__name__
            prefix = f"{context}: " if context else ""
            raise IRDiagnostic(
                f"{format_location(op)}: error: {prefix}'{op.name}' op {message}"
            ) from None
