"""`mlc-opt --verify-diagnostics`: check diagnostics against `// expected-...` annotations.

MLIR's syntax: `// expected-error {{text}}` expects a diagnostic on the annotation's own
line, `@+N` / `@-N` on the line N below / above, `@above` / `@below` on the previous / next
line, `@unknown` one without a location (e.g. a pass failure). `expected-warning`,
`expected-note` and `expected-remark` work alike. `text` must be a substring of the message.
Each diagnostic must match an annotation and each annotation a diagnostic; every mismatch
is reported as one line. mlc stops a chunk at its first error, so a chunk (of
`--split-input-file`) expects at most one error.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass
from io import BytesIO

from xdsl.utils.exceptions import DiagnosticException, ParseError
from xdsl.xdsl_opt_main import xDSLOptMain

from mlc.parser.mlir import parse_error_message

_SEVERITY = r"(error|warning|note|remark)"
_ANNOTATION = re.compile(
    rf"//\s*expected-{_SEVERITY}\s*(?:@(above|below|unknown|[+-]\d+))?\s*\{{\{{(.*)\}}\}}\s*$"
)
_ANY_ANNOTATION = re.compile(rf"//\s*expected-{_SEVERITY}\b")
_LOCATED = re.compile(rf"^(.*?):(\d+):(\d+): {_SEVERITY}: (.*)$")
_UNLOCATED = re.compile(rf"^(?:.*?: )?{_SEVERITY}: (.*)$")


@dataclass
class Expectation:
    """One `// expected-<severity>@where {{text}}` annotation."""

    severity: str
    text: str
    line: int | None
    """The line the diagnostic is expected on; None for `@unknown`."""
    written_at: int
    matched: bool = False


@dataclass(frozen=True)
class Diagnostic:
    """One diagnostic line produced by mlc-opt."""

    severity: str
    message: str
    line: int | None = None
    column: int | None = None


def parse_expectations(text: str, first_line: int, name: str) -> list[Expectation]:
    """The annotations in `text`, whose first line is line `first_line` of file `name`."""
    found: list[Expectation] = []
    for number, source in enumerate(text.splitlines(), first_line):
        match = _ANNOTATION.search(source)
        if match is None:
            if bad := _ANY_ANNOTATION.search(source):
                raise DiagnosticException(
                    f"{name}:{number}: error: malformed expected-{bad.group(1)} annotation: "
                    "write '// expected-error {{text}}' (optionally @+N, @-N, @above, "
                    "@below or @unknown after the severity)"
                )
            continue
        severity, where, expected = match.groups()
        offsets = {None: 0, "above": -1, "below": 1, "unknown": None}
        offset = offsets[where] if where in offsets else int(where)
        line = None if offset is None else number + offset
        found.append(Expectation(severity, expected.strip(), line, number))
    return found


def parse_diagnostics(text: str) -> list[Diagnostic]:
    """The diagnostics in an error's text: its located lines, else its first line."""
    located = [
        Diagnostic(m.group(4), m.group(5).strip(), int(m.group(2)), int(m.group(3)))
        for line in text.splitlines()
        if (m := _LOCATED.match(line))
    ]
    if located:
        return located
    first = (text.strip().splitlines() or ["(empty message)"])[0]
    if m := _UNLOCATED.match(first):
        return [Diagnostic(m.group(1), m.group(2).strip())]
    return [Diagnostic("error", first.strip())]


def check(expected: list[Expectation], produced: list[Diagnostic], name: str) -> list[str]:
    """One line per diagnostic without an annotation and per annotation not produced."""
    problems: list[str] = []
    for diag in produced:
        match = next(
            (
                e
                for e in expected
                if not e.matched
                and e.severity == diag.severity
                and e.line == diag.line
                and e.text in diag.message
            ),
            None,
        )
        if match is not None:
            match.matched = True
        elif diag.line is None:
            problems.append(f"{name}: error: unexpected {diag.severity}: {diag.message}")
        else:
            problems.append(
                f"{name}:{diag.line}:{diag.column}: error: unexpected {diag.severity}: "
                f"{diag.message}"
            )
    for e in expected:
        if not e.matched:
            where = "without a location" if e.line is None else f"on line {e.line}"
            elsewhere = [d.line for d in produced if d.line != e.line and e.text in d.message]
            hint = ""
            if elsewhere:
                at = "without a location" if elsewhere[0] is None else f"on line {elsewhere[0]}"
                hint = f" (it is reported {at})"
            problems.append(
                f"{name}:{e.written_at}: error: expected {e.severity} {where} was not "
                f'produced: "{e.text}"{hint}'
            )
    return problems


def run_verify_diagnostics(opt: xDSLOptMain) -> bool:
    """Process every chunk, comparing its diagnostics with its annotations; report each
    mismatch on stderr. Returns whether everything matched."""
    chunks, extension = opt.prepare_input()
    output = opt.prepare_output()
    name = opt.get_input_name()
    problems: list[str] = []
    try:
        for i, (chunk, offset) in enumerate(chunks):
            data = chunk.read()
            chunk.close()
            text = data.decode(errors="replace") if extension == "mlir" else ""
            expected = parse_expectations(text, offset + 1, name)
            produced: list[Diagnostic] = []
            if i > 0:
                output.write("// -----\n")
            try:
                module = opt.parse_chunk(BytesIO(data), extension, offset)
                if module is not None:
                    opt.apply_passes(module)
                    output.write(opt.output_resulting_program(module))
            except ParseError as e:
                produced = parse_diagnostics(parse_error_message(e))
            except DiagnosticException as e:
                produced = parse_diagnostics(str(e))
            problems += check(expected, produced, name)
        output.flush()
    finally:
        if output is not sys.stdout:
            output.close()
    for problem in problems:
        print(problem, file=sys.stderr)
    return not problems
