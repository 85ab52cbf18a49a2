"""The search loop with a fake (deterministic) measurer: seeded, recorded, resumable."""

from __future__ import annotations

import hashlib
import random
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from mlc.parser.mlir import parse_module
from mlc.registry import make_context
from mlc.tuning.database import TuningDatabase
from mlc.tuning.measure import MeasureResult
from mlc.tuning.search import tune
from mlc.tuning.space import SearchSpace
from mlc.tuning.target import target_id
from mlc.tuning.task import Task, tasks_in

MATMUL = """
func.func @f(%A: memref<8x12xf32>, %B: memref<12x16xf32>, %C: memref<8x16xf32>) {
  tl.kernel "mm" iterators(m: 8 parallel, n: 16 parallel, k: 12 reduction) ins(%A[m, k] : memref<8x12xf32>, %B[k, n] : memref<12x16xf32>) outs(%C[m, n] init 0.0 : memref<8x16xf32>) {
  ^bb0(%a: f32, %b: f32, %c: f32):
    %p = arith.mulf %a, %b : f32
    %s = arith.addf %c, %p : f32
    tl.yield %s : f32
  }
  func.return
}
"""


def matmul_task() -> Task:
    (task,) = tasks_in(parse_module(make_context(), MATMUL))
    return task


class FakeMeasurer:
    """Seconds from a hash of the trace; every third candidate "crashes"; results come
    back in reverse order (as parallel workers might return them)."""

    def __init__(self, interrupt_after: int | None = None) -> None:
        self.requests: list[dict[str, Any]] = []
        self.interrupt_after = interrupt_after

    def run(self, requests: Sequence[dict[str, Any]]) -> Iterator[tuple[int, MeasureResult]]:
        for i in reversed(range(len(requests))):
            if self.interrupt_after is not None and len(self.requests) >= self.interrupt_after:
                raise KeyboardInterrupt
            self.requests.append(requests[i])
            digest = int(hashlib.sha256(requests[i]["trace"].encode()).hexdigest(), 16)
            if digest % 3 == 0 and len(self.requests) > 1:
                yield i, MeasureResult("crash", error="fake crash")
            else:
                yield i, MeasureResult("ok", seconds=(digest % 1000 + 1) * 1e-6)

    def close(self) -> None:
        pass


def rows(db: TuningDatabase) -> list[tuple[str, str, float | None, bool]]:
    return [(r.trace, r.status, r.seconds, r.is_default) for r in db.records()]


def test_a_fixed_seed_gives_the_same_records(tmp_path: Path) -> None:
    task = matmul_task()
    runs = []
    for name in ("a", "b"):
        db = TuningDatabase(tmp_path / f"{name}.db")
        report = tune(task, db=db, trials=8, seed=5, measurer=FakeMeasurer())
        runs.append(rows(db))
    assert runs[0] == runs[1]
    first = runs[0][0]
    assert first[3] and first[1] == "ok"  # candidate 0 is the default schedule
    (result,) = report.tasks
    assert result.trials == 8
    ok = [s for _, status, s, _ in runs[0] if status == "ok"]
    # the default and the 3 best are measured again, 3 times each, interleaved
    assert result.confirmed
    again = runs[0][-12:]
    assert [r[0] for r in again[:4]] * 3 == [r[0] for r in again]
    assert [r[0] for r in again].count(first[0]) == 3  # the default, 3 times
    assert result.best_trace in {r[0] for r in again}
    assert result.default_seconds == first[2] and result.best_seconds == min(ok)
    assert (result.speedup or 0) >= 1.0
    assert db.best(task.key, target_id()).trace == result.best_trace  # type: ignore[union-attr]
    other = TuningDatabase(tmp_path / "c.db")
    tune(task, db=other, trials=8, seed=6, measurer=FakeMeasurer())
    assert rows(other) != runs[0]


def test_results_are_recorded_and_a_rerun_measures_only_new_candidates(tmp_path: Path) -> None:
    task = matmul_task()
    db = TuningDatabase(tmp_path / "t.db")
    fake = FakeMeasurer()
    tune(task, db=db, trials=5, seed=1, measurer=fake, confirm=False)
    measured = [r["trace"] for r in fake.requests]
    assert len(measured) == 5 == len(set(measured))
    assert {r.trace for r in db.records() if r.status != "invalid"} == set(measured)
    assert all(r.target == target_id() and r.environment["mlc"] for r in db.records())
    again = FakeMeasurer()
    report = tune(task, db=db, trials=3, seed=1, measurer=again, confirm=False)
    assert not set(r["trace"] for r in again.requests) & set(measured)
    assert report.tasks[0].default_seconds is not None  # from the database


def test_an_interrupted_run_keeps_what_it_measured(tmp_path: Path) -> None:
    db = TuningDatabase(tmp_path / "t.db")
    report = tune(matmul_task(), db=db, trials=20, seed=2, batch_size=4, measurer=FakeMeasurer(3))
    assert report.interrupted
    assert report.tasks[0].trials == 3
    assert len([r for r in db.records() if r.status != "invalid"]) == 3
    assert "interrupted" in report.table()


class LandscapeMeasurer(FakeMeasurer):
    """A machine on which the fastest schedule is one particular trace: a candidate's
    time grows with the schedule steps it does not share with `goal`."""

    def __init__(self, goal: str) -> None:
        super().__init__()
        self.goal = set(goal.splitlines())

    def run(self, requests: Sequence[dict[str, Any]]) -> Iterator[tuple[int, MeasureResult]]:
        for i, request in enumerate(requests):
            self.requests.append(request)
            steps = set(request["trace"].splitlines())
            yield i, MeasureResult("ok", seconds=1e-6 * (1 + len(steps ^ self.goal)))


def best_found(search: str, seed: int, goal: str) -> float:
    report = tune(
        MATMUL_TASK,
        db=TuningDatabase(":memory:"),
        trials=40,
        seed=seed,
        batch_size=4,
        measurer=LandscapeMeasurer(goal),
        search=search,
        confirm=False,
    )
    (result,) = report.tasks
    assert result.trials == 40
    return result.best_seconds  # type: ignore[return-value]


MATMUL_TASK = matmul_task()


def test_records_keep_decisions_and_evolution_resumes_from_the_database(tmp_path: Path) -> None:
    task = matmul_task()
    db = TuningDatabase(tmp_path / "t.db")
    tune(task, db=db, trials=8, seed=1, measurer=FakeMeasurer(), confirm=False)
    sampled = [r for r in db.records() if r.status == "ok" and r.decisions]
    assert sampled  # (children of the default's trace have no decisions)
    space = SearchSpace(task)
    for r in sampled:  # the decisions replay to the recorded trace
        assert space.sample(random.Random(0), r.decisions).trace == r.trace
    again = FakeMeasurer()
    tune(task, db=db, trials=4, seed=9, measurer=again, confirm=False)
    assert again.requests  # new candidates, bred from the database's records


class ElsewhereMeasurer(FakeMeasurer):
    """Every other result comes from a worker on another kind of machine."""

    def run(self, requests: Sequence[dict[str, Any]]) -> Iterator[tuple[int, MeasureResult]]:
        for i, (index, result) in enumerate(super().run(requests)):
            target = "x86_64-other/znver9/0000" if i % 2 else target_id()
            yield (
                index,
                MeasureResult(result.status, result.seconds, error=result.error, target=target),
            )


def test_results_from_another_target_are_recorded_there_and_never_mixed(tmp_path: Path) -> None:
    task = matmul_task()
    db = TuningDatabase(tmp_path / "t.db")
    report = tune(task, db=db, trials=8, seed=4, measurer=ElsewhereMeasurer(), confirm=False)
    (result,) = report.tasks
    here = {r.trace for r in db.records(target=target_id()) if r.status == "ok"}
    there = {r.trace for r in db.records(target="x86_64-other/znver9/0000")}
    assert here and there
    assert set(result.times) == here  # only this machine's times count
    best = db.best(task.key, target_id())
    assert best is not None and best.trace in here


def test_the_default_schedule_breeds_through_its_trace() -> None:
    """The default schedule has no sampling decisions, yet it is a parent: about 30 % of
    its children are one mutation of its trace (`SearchSpace.neighbour`: one or two
    lines differ), the others fresh samples or children of sampled parents."""
    from mlc.tuning.search import _Tuner

    space = SearchSpace(MATMUL_TASK)
    default = space.default()
    tuner = _Tuner(TuningDatabase(":memory:"), FakeMeasurer(), 0, 4, True, None, None)
    rng = random.Random(4)
    before = set(default.trace.splitlines())
    children = [tuner.propose(space, rng, [default]) for _ in range(40)]
    near = [c for c in children if len(set(c.trace.splitlines()) ^ before) <= 2]
    assert 6 <= len(near) <= 20, len(near)
    assert all(c.trace != default.trace for c in near)
