"""The layer order is a checked contract: every import in mlc (function-level ones too)
goes down or sideways, never up. From the bottom:

    host, texpr (the language)  ->  dialects  ->  interpreters, texpr.library (graph-op
    semantics)  ->  parser  ->  lowering, transforms  ->  targets, registry, tuning  ->
    deploy (wheels, serving)  ->  testing, benchmarks  ->  tools

`mlc/__init__.py` and `universe.py` are the package's front door and may import
anything (lazily).

Imports of mlc modules are at module level. An import inside a function (or lambda) is
allowed only in a module listed in `LAZY_IMPORTS`, with the reason: the front door and the
command-line tools start without the compiler, `registry` builds passes and dialects on
first use, a heavy or optional part loads when used, ops of one dialect that name each
other. An import that only breaks an import cycle is not a reason: move the shared code
down (a helper to the module both sides import, a registry's entries imported by its
package) instead. An entry whose module has no function-level import left fails too, so
the list only shrinks."""

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
    {"deploy", "quantization"},
    {"testing", "benchmarks"},
    {"tools"},
]
EXEMPT = {"__init__", "universe"}

#: module (as `layer_of` names it) -> why it imports mlc modules inside functions
LAZY_IMPORTS: dict[str, str] = {
    "__init__": "the front door: `import mlc` loads none of the compiler",
    "registry": "pass and dialect factories: each is imported when first used",
    "tools.mlc": "command line: each subcommand imports what it runs (`mlc --help` is fast)",
    "tools.mlc_opt": "command line: the interpreter, ONNX import and bisection load when asked",
    "interpreters": "`InterpretError` (which `mlc --help` imports) comes without scipy or the "
    "texpr language: `make_interpreter` loads every dialect's implementation when first run",
    "targets.compiled": "`mlc --help` imports it (InvalidInputError): the pass pipeline, parsers, "
    "code generation, profiling and tuning load at the first compile; export needs "
    "targets.aot and estimators / rowwise=True need targets.rowwise, which build on this "
    "module",
    "dialects.tl.base": "ops of the tl dialect name each other: tl.yield's parents "
    "(tl.kernel, tl.block, tl.for) in xDSL's lazy_traits_def",
    "dialects.tl.structured": "tl.block's domain check reads tl.for's loop ranges, and "
    "tl.for's verifier reads tl.block",
    "tuning.measure": "the Ray backend (optional `ray`) is loaded when chosen",
    "testing.fuzz.onnx_fuzzer": "prepare_native loads the compiler just before children "
    "fork (the fuzz command starts without it)",
    "testing.fuzz.outcomes": "the error types of every layer, loaded when an outcome is "
    "classified (the fuzz command starts without them)",
    "benchmarks.models": "onnxruntime's reference outputs: `mlc.testing` (hypothesis, "
    "seconds to import) loads only when outputs are checked",
    "deploy.backends": "the compiler (targets.compiled, targets.aot) loads only for an mlc "
    "backend: serving with onnxruntime starts without it",
}


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


def _sources(root: Path) -> list[tuple[Path, str]]:
    """(path relative to `root`, module name) of every mlc source file."""
    found = []
    for path in sorted(root.rglob("*.py")):
        rel = path.relative_to(root)
        if rel.parts[0] in ("tests", "examples") or rel.parts[0].startswith("."):
            continue
        found.append((rel, _module_name(path, root)))
    return found


def _mlc_targets(node: ast.Import | ast.ImportFrom) -> list[str]:
    """The mlc modules an import statement names (a relative import counts as mlc)."""
    if isinstance(node, ast.Import):
        names = [a.name for a in node.names]
    elif node.level:
        names = ["." * node.level + (node.module or "")]
    else:
        names = [node.module or ""]
    return [n for n in names if n == "mlc" or n.startswith(("mlc.", "."))]


def function_level_imports(root: Path = ROOT) -> list[tuple[str, str, str]]:
    """(`file:line`, module, imported module) of every import of an mlc module inside a
    function or lambda body."""
    found: list[tuple[str, str, str]] = []
    for rel, name in _sources(root):

        def visit(node: ast.AST, in_function: bool, rel: Path = rel, name: str = name) -> None:
            for child in ast.iter_child_nodes(node):
                if in_function and isinstance(child, ast.Import | ast.ImportFrom):
                    for target in _mlc_targets(child):
                        found.append((f"{rel}:{child.lineno}", name, target))
                functions = ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda
                visit(child, in_function or isinstance(child, functions))

        visit(ast.parse((root / rel).read_text(), str(rel)), False)
    return found


def unlisted_function_level_imports(root: Path = ROOT) -> list[str]:
    return [
        f"{where}: {name} imports {target} inside a function"
        for where, name, target in function_level_imports(root)
        if name not in LAZY_IMPORTS
    ]


def imports_against_the_flow(root: Path = ROOT) -> list[str]:
    found = []
    for rel, name in _sources(root):
        path = root / rel
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


def test_function_level_imports_are_listed_with_a_reason() -> None:
    """Move an import that only breaks a cycle to module level (and the shared code down);
    a lazy one needs its module in LAZY_IMPORTS."""
    assert unlisted_function_level_imports() == []


def test_every_lazy_import_entry_is_still_needed() -> None:
    lazy = {name for _, name, _ in function_level_imports()}
    assert sorted(set(LAZY_IMPORTS) - lazy) == []


def test_a_function_level_import_is_reported(tmp_path: Path) -> None:
    """An mlc import inside a function (or lambda) of an unlisted module is reported; one at
    module level, of another package, or in a listed module is not."""
    (tmp_path / "lowering").mkdir()
    (tmp_path / "tools").mkdir()
    (tmp_path / "lowering" / "a.py").write_text(
        "import numpy\nfrom mlc.dialects import tl\n\n"
        "def f():\n    import json\n    from mlc.texpr import parse\n\n"
        "g = lambda: __import__('os')\n"
        "class C:\n    def m(self):\n        import mlc.host\n"
    )
    (tmp_path / "tools" / "mlc_opt.py").write_text("def main():\n    import mlc.parser\n")
    assert unlisted_function_level_imports(tmp_path) == [
        "lowering/a.py:6: lowering.a imports mlc.texpr inside a function",
        "lowering/a.py:11: lowering.a imports mlc.host inside a function",
    ]
