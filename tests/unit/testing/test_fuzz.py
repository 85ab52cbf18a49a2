"""The fuzzers `mlc.testing.fuzz`: the child-process classifier (crash, hang, internal
error, clean error), deterministic case generation, saving and replaying a case, and a
bounded smoke run of each fuzzer with a fixed seed that must find no crash, hang,
internal error or mismatch.
The long runs are a command (`python -m mlc.testing.fuzz ir --cases 5000 --jobs 2`, see
docs/testing.md), not a test."""

from __future__ import annotations

import ctypes
import json
import os
import time
from pathlib import Path

import pytest

from mlc.testing.fuzz import (
    ACCEPTED,
    CLEAN_ERROR,
    CRASH,
    HANG,
    INTERNAL_ERROR,
    Report,
    Result,
    classify_child,
    classify_cli,
    load_case,
    make_fuzzer,
    replay,
    run_child,
    run_fuzzer,
    save_case,
)
from mlc.testing.fuzz.outcomes import guarded

# --------------------------------------------------------------------------- the classifier


def _classify(work, tmp_path: Path, timeout: float = 10.0) -> tuple[str, str]:
    return classify_child(run_child(work, root=tmp_path, timeout=timeout), timeout)


def test_a_segfault_is_a_crash(tmp_path: Path) -> None:
    outcome, detail = _classify(lambda wd: {"n": ctypes.string_at(0)}, tmp_path)
    assert outcome == CRASH
    assert "SIGSEGV" in detail


def test_a_child_past_the_timeout_is_a_hang(tmp_path: Path) -> None:
    began = time.monotonic()
    outcome, _ = _classify(lambda wd: {"n": time.sleep(60)}, tmp_path, timeout=0.5)
    assert outcome == HANG
    assert time.monotonic() - began < 10


def test_an_unexpected_exception_type_is_an_internal_error(tmp_path: Path) -> None:
    outcome, detail = _classify(lambda wd: guarded(lambda: {}["missing"], "import"), tmp_path)
    assert (outcome, detail) == (INTERNAL_ERROR, "import: KeyError: 'missing'")


def test_a_documented_error_is_clean_and_success_accepted(tmp_path: Path) -> None:
    from mlc.parser.onnx import OnnxImportError

    def bad() -> None:
        raise OnnxImportError("not a model")

    assert _classify(lambda wd: guarded(bad), tmp_path) == (
        CLEAN_ERROR,
        "OnnxImportError: not a model",
    )
    assert _classify(lambda wd: guarded(lambda: None), tmp_path)[0] == ACCEPTED


def test_an_exit_without_a_report_is_a_crash(tmp_path: Path) -> None:
    outcome, detail = _classify(lambda wd: os._exit(3), tmp_path)
    assert outcome == CRASH
    assert "status 3" in detail


def test_the_child_environment_is_private(tmp_path: Path) -> None:
    def work(wd: Path) -> dict[str, str]:
        return {k: os.environ.get(k, "") for k in ("MLC_NUM_THREADS", "MLC_CACHE_DIR")} | {
            "cwd": os.getcwd()
        }

    child = run_child(work, root=tmp_path)
    assert child.report is not None
    assert child.report["MLC_NUM_THREADS"] == "1"
    assert child.report["MLC_CACHE_DIR"].startswith(str(tmp_path))
    assert child.report["cwd"].startswith(str(tmp_path))


@pytest.mark.parametrize(
    ("status", "stderr", "outcome"),
    [
        (0, "", ACCEPTED),
        (1, "in.mlir:3:7: error: expected ':'", CLEAN_ERROR),
        (1, "in.mlir: error: pass 'tl-split' failed: GraphToTlError: unsupported", CLEAN_ERROR),
        (1, "in.mlir: error: pass 'tl-split' failed: KeyError: 'k'", INTERNAL_ERROR),
        (2, "mlc-opt: internal error: RecursionError: too deep; please report", INTERNAL_ERROR),
        (1, 'Traceback (most recent call last):\n  File "x.py"', INTERNAL_ERROR),
        (1, "", INTERNAL_ERROR),
    ],
)
def test_cli_runs_are_classified(status: int, stderr: str, outcome: str) -> None:
    assert classify_cli(status, stderr)[0] == outcome


# --------------------------------------------------------------------------- cases


@pytest.mark.parametrize("name", ["ir", "onnx", "values"])
def test_cases_depend_on_seed_and_index_only(name: str) -> None:
    fuzzer = make_fuzzer(name)
    if name == "ir":
        from mlc.testing.fuzz.ir_fuzzer import load_corpus

        fuzzer.corpus = load_corpus()
        fuzzer.prepare()
    a, b = fuzzer.generate(3, 7), fuzzer.generate(3, 7)
    assert (a.data, a.args, a.mutations) == (b.data, b.args, b.mutations)
    assert json.dumps(a.inputs) == json.dumps(b.inputs)  # (NaN != NaN)
    assert a.mutations
    others = {fuzzer.generate(4, 7).data, fuzzer.generate(3, 8).data}
    assert a.data not in others


def test_a_saved_case_replays(tmp_path: Path) -> None:
    from mlc.testing.fuzz.ir_fuzzer import load_corpus

    fuzzer = make_fuzzer("ir")
    fuzzer.corpus = load_corpus()
    fuzzer.prepare()
    case = fuzzer.generate(0, 1)
    case.data = b"func.func @f() {\n  %0 = arith.constant 1 : i32\n  func.return\n}\n" + b"%"
    case.args = ["{input}"]
    saved = save_case(Result(case, CLEAN_ERROR, "x"), tmp_path, ".mlir")
    loaded, meta = load_case(saved)
    assert (loaded.data, loaded.args, meta["outcome"]) == (case.data, case.args, CLEAN_ERROR)
    assert (tmp_path / f"{case.name}.mlir").read_bytes() == case.data
    again = replay(saved)
    assert again.outcome == CLEAN_ERROR, again.detail


# --------------------------------------------------------------------------- smoke runs

SMOKE = {"ir": (60, 5.0), "onnx": (30, 30.0), "values": (20, 30.0)}
"""Cases and per-case timeout of each fuzzer's smoke run (seed 0, two children)."""

_REPORTS: dict[str, Report] = {}


def smoke_report(name: str) -> Report:
    if name not in _REPORTS:
        cases, timeout = SMOKE[name]
        _REPORTS[name] = run_fuzzer(name, seed=0, cases=cases, jobs=2, timeout=timeout)
    return _REPORTS[name]


def _listing(results: list[Result]) -> str:
    return "\n".join(
        f"case {r.case.index} [{r.case.source}; {', '.join(r.case.mutations)}]: "
        f"{r.outcome}: {r.detail}"
        for r in results
    )


@pytest.mark.parametrize("name", list(SMOKE))
def test_smoke_run_finds_nothing_new(name: str) -> None:
    report = smoke_report(name)
    assert len(report.results) == SMOKE[name][0]
    assert report.counts().get(ACCEPTED, 0) + report.counts().get(CLEAN_ERROR, 0) > 0
    assert not report.failures(), _listing(report.failures())
