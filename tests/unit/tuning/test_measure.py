"""Measurement: real candidates are checked and timed; crashing, hanging and wrong ones
are contained and recorded, and the measurer goes on."""

from __future__ import annotations

import ctypes
import time
from typing import Any

import numpy as np
import pytest

from mlc.parser.mlir import parse_module
from mlc.registry import make_context
from mlc.tuning.measure import Measurer, MeasureRequest
from mlc.tuning.space import SearchSpace
from mlc.tuning.task import Task, tasks_in
from mlc.tuning.worker import build_candidate, measure_candidate, same_outputs, time_candidate

SCALE = """
func.func @f(%x: memref<4x16xf32>, %y: memref<4x16xf32>) {
  tl.kernel "scale" iterators(i: 4 parallel, j: 16 parallel) ins(%x[i, j] : memref<4x16xf32>) outs(%y[i, j] : memref<4x16xf32>) {
  ^bb0(%a: f32, %b: f32):
    %two = arith.constant 2.0 : f32
    %r = arith.mulf %a, %two : f32
    tl.yield %r : f32
  }
  func.return
}
"""


def scale_task() -> Task:
    (task,) = tasks_in(parse_module(make_context(), SCALE))
    return task


def faulty_builder(request: dict[str, Any]) -> dict[str, Any]:
    """Builds as `request["kind"]` says (module-level: the spawned worker imports it by
    name)."""
    kind = request["kind"]
    if kind == "segfault":
        ctypes.string_at(0)  # reads address 0: SIGSEGV kills the process
    if kind == "hang":
        time.sleep(600)
    if kind == "raise":
        raise RuntimeError("a bug in the candidate's compile")
    return build_candidate({**request["request"], "token": request["token"]})


def faulty_runner(token: int) -> dict[str, Any]:
    """Times a built candidate; candidate #4 hangs while timed."""
    if token == 4:
        time.sleep(600)
    return time_candidate(token)


def test_crashing_hanging_and_raising_candidates_are_contained() -> None:
    task = scale_task()
    real = MeasureRequest(task, SearchSpace(task).default().trace).to_json()
    requests = [
        {"kind": "segfault"},
        {"kind": "hang"},
        {"kind": "raise"},
        {"kind": "ok", "request": real},
        {"kind": "ok", "request": real},
    ]
    measurer = Measurer(jobs=2, timeout=3, builder=faulty_builder, runner=faulty_runner)
    with measurer:
        results = dict(measurer.run(requests))
        assert len(results) == 5
    assert results[0].status == "crash" and "died" in results[0].error
    assert results[1].status == "timeout"
    assert results[2].status == "crash" and "RuntimeError" in results[2].error
    assert results[3].status == "ok" and results[3].seconds and results[3].seconds > 0
    assert results[3].compile_s is not None
    assert results[4].status == "timeout"  # hung while timed
    assert measurer.started >= 3  # two, and fresh ones after lost processes (when needed)


def test_a_candidate_is_checked_and_timed_in_process() -> None:
    task = scale_task()
    default = SearchSpace(task).default()
    out = measure_candidate(MeasureRequest(task, default.trace, repeat=3).to_json())
    assert out["status"] == "ok", out
    assert len(out["runs"]) == 3 and out["seconds"] == sorted(out["runs"])[1]


def test_wrong_outputs_are_detected() -> None:
    ref = [np.arange(6, dtype=np.float32), np.arange(3, dtype=np.int32)]
    assert same_outputs([r.copy() for r in ref], ref) == ""
    near = [ref[0] * (1 + 1e-5), ref[1]]
    assert same_outputs(near, ref) == ""  # reassociation-sized differences pass
    off = [ref[0] + np.float32(0.5), ref[1]]
    assert "buffer #0" in same_outputs(off, ref)
    assert "buffer #1" in same_outputs([ref[0], ref[1] + 1], ref)


def test_only_spawn_or_forkserver() -> None:
    with pytest.raises(ValueError, match="spawn"):
        Measurer(context="fork")


def test_a_wrong_candidate_is_recorded_as_wrong(monkeypatch: pytest.MonkeyPatch) -> None:
    """A compiled candidate whose output differs from the interpreter's is "wrong" and
    gets no time."""
    from mlc.tuning import worker

    task = scale_task()
    real = worker.compile_candidate

    class Off:
        def __init__(self, compiled: Any) -> None:
            self.compiled = compiled
            self.num_threads = 1

        def run_buffers(self, *arrays: np.ndarray) -> list[np.ndarray]:
            out = self.compiled.run_buffers(*arrays)
            out[-1][0, 0] += 1.0
            return out

    monkeypatch.setattr(worker, "compile_candidate", lambda m, t: Off(real(m, t)))
    out = measure_candidate(MeasureRequest(task, SearchSpace(task).default().trace).to_json())
    assert out["status"] == "wrong" and "buffer #1" in out["error"]
    assert "seconds" not in out


def test_a_candidate_lost_with_its_worker_is_built_again() -> None:
    """Candidate #4 hangs while timed: its worker is killed, and #5, built in that worker
    but not yet timed, is built again in a fresh one."""
    task = scale_task()
    real = MeasureRequest(task, SearchSpace(task).default().trace).to_json()
    requests = [{"kind": "ok", "request": real} for _ in range(6)]
    with Measurer(jobs=1, timeout=3, builder=faulty_builder, runner=faulty_runner) as measurer:
        order = [(i, r.status) for i, r in measurer.run(requests)]
        assert measurer.started == 2
    assert order == [(0, "ok"), (1, "ok"), (2, "ok"), (3, "ok"), (4, "timeout"), (5, "ok")]
