"""The textual-IR fuzzer: mutants of the FileCheck corpus (and of the IR of a few imported
ONNX models) fed to `mlc-opt`.

Each case takes a corpus file, applies `ir_mutations.mutate` and draws the command line:
the options of one of the file's `RUN:` lines that run `mlc-opt` on it (`-p`,
`--split-input-file`, `--verify-diagnostics`, ...; `--bisect-semantics` dropped) or a
default pipeline; now and then a number in the `-p` pipeline is made extreme too. The
child calls the CLI's `main(argv)` in-process (the target is named by a string and
imported at run time: `mlc.tools` is a layer above `mlc.testing`) and the exit status and
stderr are classified with `outcomes.classify_cli`.
"""

from __future__ import annotations

import contextlib
import importlib
import io
import re
import shlex
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mlc
from mlc.registry import all_pass_factories
from mlc.testing.fuzz.case import INPUT, Case, Fuzzer, case_rng
from mlc.testing.fuzz.ir_mutations import EXTREME_NUMBERS, mutate
from mlc.testing.fuzz.onnx_seeds import SEEDS
from mlc.testing.fuzz.outcomes import classify_cli

ROOT = Path(__file__).resolve().parents[2]
"""The package root (the repository root in a checkout)."""
CORPUS_DIR = ROOT / "tests" / "filecheck"
TARGET = "mlc.tools.mlc_opt:main"
"""The CLI under test, `module:function` with `function(argv) -> exit status`."""

DEFAULT_ARGS: tuple[tuple[str, ...], ...] = (
    (),
    ("--print-op-generic",),
    ("-p", "canonicalize,cse"),
    ("-p", "graph-optimize"),
    ("-p", "convert-graph-to-tl"),
    ("-p", "convert-graph-to-tl,convert-tl-kernel-to-loops"),
    ("-p", "convert-tl-kernel-to-loops,convert-tl-to-llvm"),
    ("--split-input-file", "--verify-diagnostics"),
)
"""Command lines for files without `RUN:` lines of their own, and now and then for any."""

_DROPPED_FLAGS = {"--bisect-semantics"}  # slow (Hypothesis), not the parser's business
_DROPPED_WITH_VALUE = {"-o", "--output-file"}


@dataclass
class CorpusFile:
    """A seed input: its text and the `mlc-opt` command lines (with `INPUT`) it is run
    with."""

    name: str
    text: str
    commands: list[list[str]]


def run_commands(text: str) -> list[list[str]]:
    """The `mlc-opt` arguments of the file's `RUN:` lines that read the file itself."""
    commands = []
    for line in text.splitlines():
        found = re.match(r"\s*//\s*RUN:\s*(.*)", line)
        if not found:
            continue
        for segment in found.group(1).split("|"):
            try:
                words = shlex.split(segment)
            except ValueError:
                continue
            if words[:1] == ["not"]:
                words = words[1:]
            if words[:1] != ["mlc-opt"] or not ({"%s", "-"} & set(words)):
                continue
            commands.append(_clean_args(words[1:]))
            break
    return commands


def _clean_args(words: list[str]) -> list[str]:
    args: list[str] = []
    skip = False
    for w in words:
        if skip:
            skip = False
        elif w in _DROPPED_WITH_VALUE:
            skip = True
        elif w in _DROPPED_FLAGS or re.fullmatch(r"\d?>&?\d|\d?>/dev/null|>/dev/null", w):
            continue
        else:
            args.append(INPUT if w in ("%s", "-") else w)
    return args if INPUT in args else [INPUT, *args]


def load_corpus(directory: Path = CORPUS_DIR) -> list[CorpusFile]:
    """The `.mlir` files under `directory` (sorted, so a seed means the same cases)."""
    files = []
    for path in sorted(directory.rglob("*.mlir")) if directory.is_dir() else []:
        text = path.read_text()
        files.append(CorpusFile(str(path.relative_to(directory)), text, run_commands(text)))
    return files


def onnx_corpus() -> list[CorpusFile]:
    """The graph-dialect IR of a few small ONNX models (the ONNX fuzzer's seeds)."""
    files = []
    for name in ("gather", "conv", "reduce_softmax", "reshape_transpose", "cast_where"):
        text = str(mlc.import_onnx(SEEDS[name]()))
        files.append(CorpusFile(f"onnx:{name}", text, []))
    return files


def mutate_pipeline(rng: Any, args: list[str]) -> tuple[list[str], str | None]:
    """`args` with one number inside a `-p` / `--pass-pipeline` value made extreme."""
    for i, a in enumerate(args):
        if i > 0 and args[i - 1] in ("-p", "--passes") or a.startswith("--pass-pipeline="):
            found = list(re.finditer(r"(?<=[=\s])-?\d+", a))
            if found:
                m = rng.choice(found)
                new = a[: m.start()] + rng.choice(EXTREME_NUMBERS) + a[m.end() :]
                return [*args[:i], new, *args[i + 1 :]], "pipeline-number"
    return args, None


def resolve(target: str) -> Callable[[Sequence[str]], int]:
    """The function named `module:function`."""
    module, _, function = target.partition(":")
    return getattr(importlib.import_module(module), function)


class IrFuzzer(Fuzzer):
    """Mutated textual IR through `mlc-opt`."""

    name = "ir"
    extension = ".mlir"
    timeout = 10.0

    def __init__(self, corpus: Sequence[CorpusFile] | None = None, target: str = TARGET):
        self.corpus: list[CorpusFile] = list(corpus) if corpus is not None else []
        self.target = target
        self._main: Callable[[Sequence[str]], int] | None = None
        self._donors: list[str] = []

    def prepare(self) -> None:
        if not self.corpus:
            self.corpus = load_corpus() + onnx_corpus()
        self._donors = [line for f in self.corpus for line in f.text.splitlines() if line.strip()]
        self._main = resolve(self.target)
        # import what the passes and dialects import now, not in every child
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            self._main(["--list-passes"])

        for factory in all_pass_factories().values():
            factory()

    def generate(self, seed: int, index: int) -> Case:
        rng = case_rng(self.name, seed, index)
        source = self.corpus[rng.randrange(len(self.corpus))]
        text, applied = mutate(rng, source.text, self._donors)
        data = text.encode()
        if rng.random() < 0.03:
            at = rng.randrange(len(data) + 1)
            data = data[:at] + b"\xff\xfe" + data[at:]
            applied.append("invalid-utf8")
        commands = source.commands
        if not commands or rng.random() < 0.3:
            args = [INPUT, *rng.choice(DEFAULT_ARGS)]
        else:
            args = list(rng.choice(commands))
        if rng.random() < 0.1:
            args, changed = mutate_pipeline(rng, args)
            applied += [changed] if changed else []
        return Case(self.name, seed, index, data, args, source.name, applied)

    def execute(self, case: Case, workdir: Path) -> dict[str, Any]:
        path = workdir / f"input{self.extension}"
        path.write_bytes(case.data)
        argv = [str(path) if a == INPUT else a for a in case.args]
        main = self._main or resolve(self.target)
        err = io.StringIO()
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(err):
            status = main(argv)
        outcome, detail = classify_cli(status, err.getvalue().replace(str(path), "<input>"))
        return {"outcome": outcome, "detail": detail}
