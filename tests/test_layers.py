"""The layer order is a checked contract: every import in mlc (function-level ones too)
goes down or sideways, never up. From the bottom:

    host, texpr (the language)  ->  dialects  ->  interpreters, texpr.library (graph-op
    semantics)  ->  parser  ->  lowering, transforms  ->  targets, registry, tuning  ->
    deploy (wheels, serving)  ->  testing, benchmarks  ->  tools

`mlc/__init__.py` and `universe.py` are the package's front door and may import
anything (lazily)."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

LAYERS: list[set[str]] = [
    {"host", "texpr"},
    {"dialects"},
    {"interpreters", "texpr.library"},
    {"parser"},
    {"lowering", "transforms"},
    {"targets", "registry", "tuning"},
    {"deploy"},
    {"testing", "benchmarks"},
    {"tools"},
]
EXEMPT = {"__init__", "universe"}


def layer_of(module: str) -> int | None:
    """The layer of `mlc.<module>` (dotted, without `mlc.`): its longest listed prefix."""
    parts = module.split(".")
    for n in range(len(parts), 0, -1):
        prefix = ".".join(parts[:n])
        for i, names in enumerate(LAYERS):
            if prefix in names:
                return i
    return None


def _module_name(path: Path, root: Path) -> str:
    rel = path.relative_to(root).with_suffix("")
    parts = [p for p in rel.parts if p != "__init__"]
    return ".".join(parts) or "__init__"


def imports_against_the_flow(root: Path = ROOT) -> list[str]:
    found = []
    for path in sorted(root.rglob("*.py")):
        rel = path.relative_to(root)
        if rel.parts[0] in ("tests", "examples") or rel.parts[0].startswith("."):
            continue
        name = _module_name(path, root)
        if name in EXEMPT:
            continue
        here = layer_of(name)
        assert here is not None, f"{rel} is in no layer: add its package to LAYERS"
        for node in ast.walk(ast.parse(path.read_text(), str(rel))):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                targets = [node.module]
            for target in targets:
                if not target.startswith("mlc."):
                    continue
                there = layer_of(target[4:])
                if there is not None and there > here:
                    found.append(f"{rel}:{node.lineno}: {name} imports {target}")
    return found


def test_no_import_goes_up_a_layer() -> None:
    assert imports_against_the_flow() == []


def test_layer_of_uses_the_longest_prefix() -> None:
    assert layer_of("texpr.parser") == 0
    assert layer_of("texpr.library.nn") == 2
    assert layer_of("targets.cpu") == 5
    assert layer_of("deploy.server") == 6  # above the targets it compiles with
    assert layer_of("nowhere") is None


def test_an_upward_import_is_reported(tmp_path: Path) -> None:
    """A dialect importing a target inside a function is caught; a target importing a
    dialect is not."""
    (tmp_path / "dialects").mkdir()
    (tmp_path / "targets").mkdir()
    (tmp_path / "dialects" / "op.py").write_text(
        "def verify():\n    from mlc.targets.cpu import host_features\n"
    )
    (tmp_path / "targets" / "cpu.py").write_text("from mlc.dialects.op import verify\n")
    assert imports_against_the_flow(tmp_path) == [
        "dialects/op.py:2: dialects.op imports mlc.targets.cpu"
    ]
