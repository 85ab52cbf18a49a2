"""The coverage contract: every registered pass and rewrite pattern has a property test.

A property test declares what it checks with `@covers`:

    @covers("tl-split")
    @given(case=kernel_modules(), data=st.data())
    def test_split_preserves_semantics(case, data): ...

`covered_names(tests_dir)` finds these declarations statically (no test is imported or
run), so the meta-test `tests/test_coverage_contract.py` can name every registered pass or
pattern that lacks one.
"""

from __future__ import annotations

import ast
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

F = TypeVar("F", bound=Callable[..., object])


def covers(*names: str) -> Callable[[F], F]:
    """Declare the passes / rewrite patterns whose semantics this property test checks."""

    def mark(fn: F) -> F:
        fn.__mlc_covers__ = names  # type: ignore[attr-defined]
        return fn

    return mark


def _decorator_name(node: ast.expr) -> str:
    target = node.func if isinstance(node, ast.Call) else node
    if isinstance(target, ast.Attribute):
        return target.attr
    if isinstance(target, ast.Name):
        return target.id
    return ""


def covered_names(tests_dir: Path) -> dict[str, list[str]]:
    """Name -> property tests (`file::function`) declaring `@covers(name)` with `@given`."""
    found: dict[str, list[str]] = {}
    for path in sorted(tests_dir.rglob("test_*.py")):
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            if not isinstance(node, ast.FunctionDef):
                continue
            decorators = {_decorator_name(d): d for d in node.decorator_list}
            if "covers" not in decorators or "given" not in decorators:
                continue
            call = decorators["covers"]
            assert isinstance(call, ast.Call)
            for arg in call.args:
                if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                    found.setdefault(arg.value, []).append(f"{path.name}::{node.name}")
    return found
