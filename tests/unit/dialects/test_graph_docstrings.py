"""Every graph op's docstring carries an IR example that parses, verifies and prints back
to exactly the same text (custom syntax), and survives a generic-syntax round trip."""

import re
from io import StringIO

import pytest
from xdsl.dialects.builtin import ModuleOp
from xdsl.printer import Printer

from mlc.dialects.graph import ALL_OPS, GraphOp
from mlc.parser.mlir import parse_module
from mlc.registry import make_context

EXAMPLE = re.compile(r"^\s*((?:%\w+(?:, %\w+)* = )?graph\.\w+.*)$", re.MULTILINE)


def example_of(op: type[GraphOp]) -> str:
    matches = EXAMPLE.findall(op.__doc__ or "")
    assert len(matches) == 1, f"{op.name}: expected one IR example line in the docstring"
    return matches[0].strip()


def _split_top_level(text: str) -> list[str]:
    parts, depth, current = [], 0, ""
    for ch in text:
        if ch in "<([{":
            depth += 1
        elif ch in ">)]}":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append(current.strip())
            current = ""
        else:
            current += ch
    if current.strip():
        parts.append(current.strip())
    return parts


def wrap_in_function(line: str) -> str:
    """Give the example's operands as arguments of a function around it."""
    lhs, _, rhs = line.partition(" = ") if " = " in line.split("graph.")[0] else ("", "", line)
    body, _, signature = rhs.rpartition(" : ")
    operands = re.findall(r"%\w+", body.split("{")[0])
    if signature.startswith("("):
        inner = signature[1 : signature.index(") ->")] if ") ->" in signature else ""
        types = _split_top_level(inner)
    else:
        types = []
    assert len(types) == len(operands), f"cannot match operands {operands} to types {types}"
    args = ", ".join(f"{o}: {t}" for o, t in zip(operands, types))
    return f"func.func @example({args}) {{\n  {line}\n  func.return\n}}\n"


def body_text(module: ModuleOp) -> str:
    printed = str(module).splitlines()
    return next(line.strip() for line in printed if "graph." in line)


@pytest.mark.parametrize("op", ALL_OPS, ids=lambda op: op.name)
def test_docstring_example_round_trips(op: type[GraphOp]) -> None:
    line = example_of(op)
    ctx = make_context()
    module = parse_module(ctx, wrap_in_function(line), op.name)
    assert body_text(module) == line, "the docstring example is not in canonical printed form"
    out = StringIO()
    Printer(stream=out, print_generic_format=True).print_op(module)
    reparsed = parse_module(ctx, out.getvalue(), "generic")
    assert str(reparsed) == str(module)
