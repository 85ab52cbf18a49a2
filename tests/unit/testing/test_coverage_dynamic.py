"""The dynamic coverage contract (`mlc.testing.coverage`): the recorder counts, per
example, whether an instrumented pattern rewrote or a pass changed its module (a pattern
applied by a pass counts for both; a pass that changes nothing does not count); rejected
examples are not counted; instrumentation is undone; per-process files merge; the check
reports the best fraction per registered name and fails below the floor or without a test.
One test runs pytest with the plugin under xdist in a subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from xdsl.context import Context
from xdsl.dialects import arith
from xdsl.dialects.builtin import IntegerAttr, ModuleOp, i32
from xdsl.passes import ModulePass
from xdsl.pattern_rewriter import (
    PatternRewriter,
    PatternRewriteWalker,
    RewritePattern,
    op_type_rewrite_pattern,
)

from mlc.testing import coverage as C


class BumpEven(RewritePattern):
    """Rewrites an even i32 constant to the next (odd) one."""

    @op_type_rewrite_pattern
    def match_and_rewrite(self, op: arith.ConstantOp, rewriter: PatternRewriter) -> None:
        value = op.value
        assert isinstance(value, IntegerAttr)
        if value.value.data % 2 == 0:
            rewriter.replace(op, arith.ConstantOp.from_int_and_width(value.value.data + 1, 32))


@dataclass(frozen=True)
class BumpEvenPass(ModulePass):
    name = "bump-even"

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        PatternRewriteWalker(BumpEven()).rewrite_module(op)


@dataclass(frozen=True)
class NoChangePass(ModulePass):
    """Runs (walks the module) but changes nothing."""

    name = "no-change"

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        for _ in op.walk():
            pass


CLASSES = {"bump": BumpEven, "bump-pass": BumpEvenPass, "no-change": NoChangePass}


def module(values: list[int]) -> ModuleOp:
    return ModuleOp([arith.ConstantOp(IntegerAttr(v, i32)) for v in values])


def instrumented() -> C.ApplicationRecorder:
    recorder = C.ApplicationRecorder()
    recorder.instrument(CLASSES)
    return recorder


def test_a_pattern_and_a_pass_count_only_the_examples_they_change() -> None:
    recorder = instrumented()
    try:
        record = C.TestRecord("t", ("bump", "bump-pass", "no-change"))
        for values in ([1, 3], [2], [4, 6], [5]):
            with recorder.example(record):
                BumpEvenPass().apply(Context(), module(values))
                NoChangePass().apply(Context(), module(values))
        assert record.examples == 4
        # the pattern applied through the pass counts for the pattern too
        assert record.applied == {"bump": 2, "bump-pass": 2}
        assert record.fraction("bump-pass") == 0.5
        assert record.fraction("no-change") == 0.0
    finally:
        recorder.restore()


def test_only_the_named_items_are_watched_and_restore_undoes_the_wrapping() -> None:
    original = BumpEven.__dict__["match_and_rewrite"]
    recorder = instrumented()
    assert BumpEven.__dict__["match_and_rewrite"] is not original
    record = C.TestRecord("t", ("bump",))
    with recorder.example(record):
        BumpEvenPass().apply(Context(), module([2]))
    BumpEvenPass().apply(Context(), module([2]))  # outside an example: not counted
    recorder.restore()
    assert record.applied == {"bump": 1} and record.examples == 1
    assert BumpEven.__dict__["match_and_rewrite"] is original
    assert "apply" in BumpEvenPass.__dict__ and "apply" in NoChangePass.__dict__


def test_a_rewrite_is_still_reported_to_the_walker() -> None:
    """The wrapper leaves `has_done_action` as the pattern set it: the walker reruns."""
    recorder = instrumented()
    try:
        with recorder.example(C.TestRecord("t", ("bump",))):
            m = module([2, 4])
            assert PatternRewriteWalker(BumpEven()).rewrite_module(m)
        assert "3" in str(m) and "5" in str(m)
    finally:
        recorder.restore()


def test_hypothesis_examples_are_counted_and_rejected_ones_are_not() -> None:
    recorder = instrumented()
    seen: list[list[int]] = []

    @settings(
        max_examples=40,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(st.lists(st.integers(0, 9), min_size=1, max_size=3))
    def prop(values: list[int]) -> None:
        assume(values[0] != 7)
        seen.append(values)
        BumpEvenPass().apply(Context(), module(values))

    record = C.TestRecord("prop", ("bump-pass",))
    prop.hypothesis.inner_test = recorder.counting(prop.hypothesis.inner_test, record)
    try:
        prop()
    finally:
        recorder.restore()
    assert record.examples == len(seen) > 0
    assert record.applied["bump-pass"] == sum(any(v % 2 == 0 for v in vs) for vs in seen)


def test_covers_of_reads_the_declaration_above_or_below_given() -> None:
    def body(x: int) -> None: ...

    # decorated by calls: the static scan (`covered_names`) must not see these toys
    above = C.covers("a", "b")(given(st.integers())(body))
    below = given(st.integers())(C.covers("c")(body))
    assert C.covers_of(above) == ("a", "b")
    assert C.covers_of(below) == ("c",)
    assert C.covers_of(lambda: None) == ()


def test_records_merge_and_the_check_takes_the_best_test(tmp_path: Path) -> None:
    path = tmp_path / "cov.json"
    weak = C.TestRecord("a.py::weak", ("x",), examples=10, applied={"x": 2})
    strong = C.TestRecord("b.py::strong", ("x", "y"), examples=4, applied={"x": 3, "y": 1})
    C.merge_into(path, [weak])  # two processes, one file
    C.merge_into(path, [strong])
    records = C.load_records([path])
    assert sorted(r.test for r in records) == ["a.py::weak", "b.py::strong"]
    results = {r.name: r for r in C.check(records, ["x", "y", "z"])}
    assert (results["x"].test, results["x"].fraction) == ("b.py::strong", 0.75)
    assert results["y"].fraction == 0.25
    assert results["z"].test is None
    table = C.format_table(results.values(), 0.5)
    assert "no recorded test" in table and "below" in table
    assert "**(below)**" in C.format_table(results.values(), 0.5, markdown=True)


def test_main_fails_below_the_floor_and_without_a_recorded_test(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "cov.json"
    monkeypatch.setattr(C, "all_pass_factories", lambda: {"p": None})
    monkeypatch.setattr(C, "all_rewrite_patterns", lambda: {"q": None})
    C.merge_into(path, [C.TestRecord("t.py::t", ("p",), examples=4, applied={"p": 3})])
    assert C.main(["--check", str(path), "--floor", "0.5"]) == 1
    err = capsys.readouterr().err
    assert "q (no recorded test)" in err and "below the floor: p" not in err
    C.merge_into(path, [C.TestRecord("t.py::u", ("q",), examples=4, applied={"q": 1})])
    assert C.main(["--check", str(path), "--floor", "0.5"]) == 1
    assert "below the floor: q (25% in t.py::u)" in capsys.readouterr().err
    assert C.main(["--check", str(path), "--floor", "0.25"]) == 0


def test_covering_node_ids_are_paths_from_the_root() -> None:
    root = Path(__file__).resolve().parents[3]
    ids = C.covering_node_ids(root / "tests", root)
    assert "tests/unit/transforms/test_loop_schedule.py::test_split_preserves_semantics" in ids
    assert len(ids) == len(set(ids))


CONFTEST = """
import os
from mlc.testing.coverage import RecordingPlugin
from test_coverage_dynamic import CLASSES

def pytest_configure(config):
    plugin = RecordingPlugin(os.environ["MLC_COVERAGE_RECORD"], hasattr(config, "workerinput"))
    plugin.recorder.instrument(CLASSES)
    plugin.recorder.registry_instrumented = True  # only the toy classes
    config.pluginmanager.register(plugin, "mlc-coverage-record")
"""

TESTS = """
from hypothesis import given, settings, strategies as st
from mlc.testing.coverage import covers
from test_coverage_dynamic import BumpEvenPass, module
from xdsl.context import Context

@covers("bump", "bump-pass")
@settings(max_examples=20, derandomize=True, database=None)
@given(st.lists(st.integers(0, 9), min_size=1, max_size=2))
def test_sometimes(values):
    BumpEvenPass().apply(Context(), module(values))

@covers("no-change")
@settings(max_examples=10, derandomize=True, database=None)
@given(st.integers())
def test_never(x):
    pass

@covers("bump")
def test_plain():
    BumpEvenPass().apply(Context(), module([2]))
"""


def test_the_plugin_records_every_test_under_xdist(tmp_path: Path) -> None:
    (tmp_path / "conftest.py").write_text(CONFTEST)
    (tmp_path / "test_toy.py").write_text(TESTS)
    out = tmp_path / "cov.json"
    out.write_text('{"tests": {"stale::test": {}}}')  # a previous run's file is replaced
    env = {**os.environ, "MLC_COVERAGE_RECORD": str(out), "PYTHONPATH": str(Path(__file__).parent)}
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-n", "2", "-p", "no:cacheprovider", "."],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    tests = json.loads(out.read_text())["tests"]
    assert sorted(tests) == [
        "test_toy.py::test_never",
        "test_toy.py::test_plain",
        "test_toy.py::test_sometimes",
    ]
    sometimes = tests["test_toy.py::test_sometimes"]
    assert sometimes["examples"] >= 10 and 0 < sometimes["applied"]["bump"] < sometimes["examples"]
    assert sometimes["applied"]["bump"] == sometimes["applied"]["bump-pass"]
    assert tests["test_toy.py::test_never"]["fraction"] == {"no-change": 0.0}
    assert tests["test_toy.py::test_plain"] == {
        **tests["test_toy.py::test_plain"],
        "examples": 1,
        "applied": {"bump": 1},
        "outcome": "passed",
    }
