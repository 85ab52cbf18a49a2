"""The coverage contract: every registered pass and rewrite pattern has a property test.

A property test declares what it checks with `@covers`:

    @covers("tl-split")
    @given(case=kernel_modules(), data=st.data())
    def test_split_preserves_semantics(case, data): ...

Static half: `covered_names(tests_dir)` finds these declarations (no test is imported or
run), so the meta-test `tests/test_coverage_contract.py` can name every registered pass or
pattern that lacks one.

Dynamic half (the long profile, docs/testing.md "Dynamic coverage contract"): with
`MLC_COVERAGE_RECORD=cov.json`, `tests/conftest.py` registers `RecordingPlugin`, which
counts for each `@covers` test, per Hypothesis example (one call of the test body), whether
each named pass or pattern *applied*: a registered `RewritePattern` class's
`match_and_rewrite` rewrote something (`PatternRewriter.has_done_action`), a registered
`ModulePass` class's `apply` changed its module (the printed IR differs). Patterns that a
pass applies count too. Then

    python -m mlc.testing.coverage --check cov.json --floor 0.5

reports, per registered name, the best fraction of examples that applied it among its
covering tests and fails for every name below the floor or without a recorded test.
"""

from __future__ import annotations

import argparse
import ast
import fcntl
import functools
import json
import os
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from hypothesis.errors import UnsatisfiedAssumption
from xdsl.passes import ModulePass
from xdsl.pattern_rewriter import PatternRewriter, RewritePattern

from mlc.registry import all_pass_factories, all_rewrite_patterns

F = TypeVar("F", bound=Callable[..., object])

RECORD_ENV = "MLC_COVERAGE_RECORD"
"""Environment variable: the JSON file the recording run writes (unset: no recording)."""


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


def _declarations(tests_dir: Path) -> Iterator[tuple[Path, str | None, str, str]]:
    """(file, pytest name or None, function, covered name) of every `@covers(name)` +
    `@given` test under `tests_dir`; the pytest name (`function`, `Class::method`) is None
    for a function nested in another one, which pytest does not collect."""
    for path in sorted(tests_dir.rglob("test_*.py")):
        tree = ast.parse(path.read_text(), str(path))
        collected: dict[ast.AST, str] = {}
        for top in tree.body:
            if isinstance(top, ast.FunctionDef):
                collected[top] = top.name
            elif isinstance(top, ast.ClassDef):
                for member in top.body:
                    if isinstance(member, ast.FunctionDef):
                        collected[member] = f"{top.name}::{member.name}"
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
                    yield path, collected.get(node), node.name, arg.value


def covered_names(tests_dir: Path) -> dict[str, list[str]]:
    """Name -> property tests (`file::function`) declaring `@covers(name)` with `@given`."""
    found: dict[str, list[str]] = {}
    for path, _, function, name in _declarations(tests_dir):
        found.setdefault(name, []).append(f"{path.name}::{function}")
    return found


def covering_node_ids(tests_dir: Path, root: Path) -> list[str]:
    """The pytest node ids (`path/relative/to/root.py::function`) of every collected
    `@covers` property test under `tests_dir`, each once, sorted: what a recording run
    runs."""
    ids = {
        f"{path.resolve().relative_to(root.resolve())}::{test}"
        for path, test, _, _ in _declarations(tests_dir)
        if test is not None
    }
    return sorted(ids)


# --- the recorder -------------------------------------------------------------------------


def _fingerprint(op: object) -> int | None:
    """A cheap structural fingerprint of an IR object: the hash of its printed form
    (None when it cannot be printed, e.g. half-rewritten IR)."""
    try:
        return hash(str(op))
    except Exception:
        return None


@dataclass
class TestRecord:
    """What one `@covers` test did: examples run and, per covered name, the examples in
    which it applied."""

    test: str
    covers: tuple[str, ...]
    examples: int = 0
    applied: dict[str, int] = field(default_factory=dict)
    outcome: str = ""
    seconds: float = 0.0

    def fraction(self, name: str) -> float:
        """Fraction of examples in which `name` applied (0 without examples)."""
        return self.applied.get(name, 0) / self.examples if self.examples else 0.0

    def to_json(self) -> dict[str, Any]:
        return {
            "covers": list(self.covers),
            "examples": self.examples,
            "applied": {n: self.applied.get(n, 0) for n in self.covers},
            "fraction": {n: round(self.fraction(n), 4) for n in self.covers},
            "outcome": self.outcome,
            "seconds": round(self.seconds, 2),
        }

    @staticmethod
    def from_json(test: str, data: Mapping[str, Any]) -> TestRecord:
        return TestRecord(
            test,
            tuple(data["covers"]),
            int(data["examples"]),
            {k: int(v) for k, v in data["applied"].items()},
            str(data.get("outcome", "")),
            float(data.get("seconds", 0.0)),
        )


class ApplicationRecorder:
    """Counts, per example, which instrumented passes and patterns applied.

    `instrument({name: cls})` wraps each class's `apply` (a `ModulePass`) or
    `match_and_rewrite` (a `RewritePattern`); the wrappers only observe while an example
    of a test that covers their name is open, and call straight through otherwise.
    `restore()` undoes the instrumentation."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._interest: frozenset[str] = frozenset()
        self._applied: set[str] | None = None
        self._saved: list[tuple[type, str, object]] = []
        self._instrumented: set[type] = set()
        self.registry_instrumented = False

    # instrumentation

    def instrument(self, classes: Mapping[str, type]) -> None:
        """Wrap the classes (name -> registered ModulePass or RewritePattern class)."""
        by_class: dict[type, list[str]] = {}
        for name, cls in classes.items():
            by_class.setdefault(cls, []).append(name)
        for cls, names in by_class.items():
            if cls in self._instrumented:
                continue
            if issubclass(cls, RewritePattern):
                self._wrap(cls, "match_and_rewrite", self._pattern_wrapper, tuple(names))
            elif issubclass(cls, ModulePass):
                self._wrap(cls, "apply", self._pass_wrapper, tuple(names))
            else:
                raise TypeError(f"{cls!r} is neither a ModulePass nor a RewritePattern")
            self._instrumented.add(cls)

    def instrument_registry(self) -> None:
        """Instrument every registered pass and pattern (once)."""
        if self.registry_instrumented:
            return
        factories = {**all_pass_factories(), **all_rewrite_patterns()}
        self.instrument({name: factory() for name, factory in factories.items()})
        self.registry_instrumented = True

    def restore(self) -> None:
        """Put back every wrapped method."""
        for cls, attr, old in reversed(self._saved):
            if old is None:
                delattr(cls, attr)
            else:
                setattr(cls, attr, old)
        self._saved.clear()
        self._instrumented.clear()
        self.registry_instrumented = False

    def _wrap(
        self,
        cls: type,
        attr: str,
        make: Callable[[Callable[..., Any], tuple[str, ...]], Callable[..., Any]],
        names: tuple[str, ...],
    ) -> None:
        own = cls.__dict__.get(attr)
        self._saved.append((cls, attr, own))
        setattr(cls, attr, make(getattr(cls, attr), names))

    def _watching(self, names: tuple[str, ...]) -> bool:
        return self._applied is not None and not self._interest.isdisjoint(names)

    def _mark(self, names: tuple[str, ...]) -> None:
        with self._lock:
            if self._applied is not None:
                self._applied.update(n for n in names if n in self._interest)

    def _pattern_wrapper(
        self, method: Callable[..., Any], names: tuple[str, ...]
    ) -> Callable[..., Any]:
        recorder = self

        @functools.wraps(method)
        def match_and_rewrite(self: RewritePattern, op: Any, rewriter: Any, *a: Any) -> Any:
            if not (recorder._watching(names) and isinstance(rewriter, PatternRewriter)):
                return method(self, op, rewriter, *a)
            before = rewriter.has_done_action
            rewriter.has_done_action = False
            try:
                return method(self, op, rewriter, *a)
            finally:
                if rewriter.has_done_action:
                    recorder._mark(names)
                rewriter.has_done_action = before or rewriter.has_done_action

        return match_and_rewrite

    def _pass_wrapper(
        self, method: Callable[..., Any], names: tuple[str, ...]
    ) -> Callable[..., Any]:
        recorder = self

        @functools.wraps(method)
        def apply(self: ModulePass, ctx: Any, op: Any, *a: Any, **kw: Any) -> Any:
            if not recorder._watching(names):
                return method(self, ctx, op, *a, **kw)
            before = _fingerprint(op)
            result = method(self, ctx, op, *a, **kw)
            after = _fingerprint(op)
            if before is None or after != before:
                recorder._mark(names)
            return result

        return apply

    # examples

    @contextmanager
    def example(self, record: TestRecord) -> Iterator[None]:
        """One example of `record`'s test: counted unless Hypothesis rejects it
        (`assume`, an overrun), with the covered names that applied during it."""
        with self._lock:
            self._interest = frozenset(record.covers)
            self._applied = set()
        counted = True
        try:
            yield
        except UnsatisfiedAssumption:
            counted = False
            raise
        except Exception:  # a failing example still counts
            raise
        except BaseException:  # Hypothesis's StopTest (an overrun) and the like
            counted = False
            raise
        finally:
            with self._lock:
                applied, self._applied = self._applied or set(), None
                self._interest = frozenset()
            if counted:
                record.examples += 1
                for name in applied:
                    record.applied[name] = record.applied.get(name, 0) + 1

    def counting(self, body: Callable[..., Any], record: TestRecord) -> Callable[..., Any]:
        """`body` (a test body, e.g. Hypothesis's `inner_test`), each call one example."""

        @functools.wraps(body)
        def counted(*args: Any, **kwargs: Any) -> Any:
            with self.example(record):
                return body(*args, **kwargs)

        return counted


def covers_of(fn: object) -> tuple[str, ...]:
    """The names a test function declares with `@covers` (above or below `@given`)."""
    names = getattr(fn, "__mlc_covers__", None)
    if names is None:
        inner = getattr(getattr(fn, "hypothesis", None), "inner_test", None)
        names = getattr(inner, "__mlc_covers__", None)
    return tuple(names or ())


# --- the pytest plugin (registered by tests/conftest.py when MLC_COVERAGE_RECORD is set) --


def merge_into(path: Path, records: Iterable[TestRecord]) -> None:
    """Add `records` to the JSON file at `path` (a later record of a test replaces an
    earlier one), under an exclusive lock: xdist workers each merge their own."""
    records = list(records)
    if not records:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(f"{path}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            data: dict[str, Any] = {"tests": {}}
            if path.exists() and path.stat().st_size:
                data = json.loads(path.read_text())
            for record in records:
                data["tests"][record.test] = record.to_json()
            tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
            tmp.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")
            tmp.replace(path)
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


class RecordingPlugin:
    """pytest plugin: records each `@covers` test (see the module docstring). The main
    process (no xdist, or xdist's controller) starts the file afresh; each process that
    runs tests merges its records at the end of its session."""

    def __init__(self, path: str | Path, worker: bool) -> None:
        self.path = Path(path)
        self.recorder = ApplicationRecorder()
        self.records: dict[str, TestRecord] = {}
        self._current: tuple[Any, Any, float] | None = None
        if not worker:
            for stale in (self.path, Path(f"{self.path}.lock")):
                stale.unlink(missing_ok=True)

    def pytest_runtest_call(self, item: Any) -> None:
        names = covers_of(item.obj)
        if not names:
            return
        self.recorder.instrument_registry()
        record = TestRecord(item.nodeid, names)
        self.records[item.nodeid] = record
        handle = getattr(item.obj, "hypothesis", None)
        if handle is not None:
            original = handle.inner_test
            handle.inner_test = self.recorder.counting(original, record)
            self._current = (handle, original, time.perf_counter())
        else:  # not a Hypothesis test: the whole call is one example
            context = self.recorder.example(record)
            context.__enter__()
            self._current = (context, None, time.perf_counter())

    def pytest_runtest_makereport(self, item: Any, call: Any) -> None:
        if call.when != "call" or self._current is None:
            return
        target, original, start = self._current
        self._current = None
        if original is not None:
            target.inner_test = original
        else:
            exc = call.excinfo
            target.__exit__(*((exc.type, exc.value, exc.tb) if exc else (None, None, None)))
        record = self.records[item.nodeid]
        record.outcome = "failed" if call.excinfo else "passed"
        record.seconds = time.perf_counter() - start

    def pytest_sessionfinish(self, session: Any) -> None:
        merge_into(self.path, self.records.values())
        self.recorder.restore()


# --- the check ----------------------------------------------------------------------------


def load_records(paths: Iterable[Path]) -> list[TestRecord]:
    """The test records of one or more recording files."""
    records: dict[str, TestRecord] = {}
    for path in paths:
        for test, data in json.loads(Path(path).read_text())["tests"].items():
            records[test] = TestRecord.from_json(test, data)
    return list(records.values())


@dataclass
class NameResult:
    """The best covering test of one registered name (test None: no recorded test)."""

    name: str
    test: str | None
    examples: int
    applied: int
    fraction: float


def check(records: Iterable[TestRecord], registered: Iterable[str]) -> list[NameResult]:
    """Per registered name (sorted), its covering test with the best applied fraction."""
    by_name: dict[str, list[TestRecord]] = {}
    for record in records:
        for name in record.covers:
            by_name.setdefault(name, []).append(record)
    results = []
    for name in sorted(set(registered)):
        tests = by_name.get(name, [])
        if not tests:
            results.append(NameResult(name, None, 0, 0, 0.0))
            continue
        best = max(tests, key=lambda r: (r.fraction(name), r.examples))
        results.append(
            NameResult(
                name, best.test, best.examples, best.applied.get(name, 0), best.fraction(name)
            )
        )
    return results


def format_table(results: Iterable[NameResult], floor: float, markdown: bool = False) -> str:
    """The results as a plain or Markdown table (names below `floor` flagged)."""
    rows = [
        (
            r.name,
            r.test or "(no recorded test)",
            str(r.examples),
            str(r.applied),
            f"{r.fraction:.0%}",
            "" if r.test and r.fraction >= floor else "below",
        )
        for r in results
    ]
    head = ("name", "test", "examples", "applied", "fraction", "")
    if markdown:
        lines = ["| " + " | ".join(head[:-1]) + " |", "|---|---|--:|--:|--:|"]
        for name, test, ex, ap, fr, flag in rows:
            mark = " **(below)**" if flag else ""
            lines.append(f"| {name} | `{test.rsplit('/', 1)[-1]}` | {ex} | {ap} | {fr}{mark} |")
        return "\n".join(lines)
    widths = [max(len(row[i]) for row in [head, *rows]) for i in range(len(head))]
    return "\n".join(
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in [head, *rows]
    )


def main(argv: list[str] | None = None) -> int:
    """`python -m mlc.testing.coverage --check cov.json [--floor 0.5] [--markdown]`, or
    `--tests` to print the node ids of every `@covers` test (what a recording run runs)."""
    parser = argparse.ArgumentParser(prog="python -m mlc.testing.coverage", description=__doc__)
    parser.add_argument("--check", nargs="+", type=Path, metavar="JSON")
    parser.add_argument("--floor", type=float, default=0.5)
    parser.add_argument("--markdown", action="store_true", help="print a Markdown table")
    parser.add_argument("--tests", type=Path, metavar="DIR", help="list the @covers tests")
    args = parser.parse_args(argv)
    if args.tests is not None:
        print("\n".join(covering_node_ids(args.tests, Path.cwd())))
        return 0
    if not args.check:
        parser.error("give --check JSON or --tests DIR")
    registered = set(all_pass_factories()) | set(all_rewrite_patterns())
    results = check(load_records(args.check), registered)
    print(format_table(results, args.floor, args.markdown))
    failing = [r for r in results if r.test is None or r.fraction < args.floor]
    ok = len(results) - len(failing)
    print(f"\n{ok} of {len(results)} names applied in >= {args.floor:.0%} of their examples")
    for r in failing:
        why = "no recorded test" if r.test is None else f"{r.fraction:.0%} in {r.test}"
        print(f"below the floor: {r.name} ({why})", file=sys.stderr)
    return 1 if failing else 0


if __name__ == "__main__":
    sys.exit(main())
