"""Textual IR in and out, with `file:line:col` diagnostics.

xDSL's parser attaches source locations only to ops written with `loc(...)`; ours records
where every op starts, so verification errors can point at the op's line. Errors are
raised as `IRDiagnostic`, whose message is one `file:line:col: error: ...` line (plus the
offending source line for parse errors) — never a dump of the whole module.
"""

from __future__ import annotations

from xdsl.context import Context
from xdsl.dialects.builtin import FileLineColLoc, IntAttr, ModuleOp, StringAttr
from xdsl.ir import Operation
from xdsl.parser import Parser
from xdsl.utils.exceptions import DiagnosticException, ParseError


class IRDiagnostic(DiagnosticException):
    """A located error in textual IR or in a module (parse, verification, pass failure)."""


class LocatingParser(Parser):
    """An xDSL parser that records each op's source position as its location."""

    def __init__(self, ctx: Context, text: str, name: str = "<stdin>", line_offset: int = 0):
        super().__init__(ctx, text, name)
        self._name = name
        self._line_offset = line_offset
        self._text = text

    def parse_operation(self) -> Operation:
        start = self.pos
        op = super().parse_operation()
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
