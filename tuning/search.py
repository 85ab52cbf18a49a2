"""The search loop: random (optionally cost-model-ranked) search per task, measured in
batches, every result written to the database as it arrives.

    report = tune("model.onnx", trials=64, db="tuning.db", seed=0, jobs=2)
    print(report.table())
    mlc.compile("model.onnx", tuning_db="tuning.db")

Per task: candidate 0 is the default schedule (measured unless the database has it);
then batches of sampled candidates (`SearchSpace.sample`, from a `random.Random` seeded
by `seed` and the task key), each rejected before measurement if invalid (recorded with
the reason), skipped if its trace was measured before (in this run or the database),
measured (`Measurer`) and recorded. A batch is drawn only from what earlier batches
found, so with a deterministic measurer a seed gives the same records whatever the job
count. `trials` counts measured candidates per task (the default included);
`time_budget` (seconds) is shared out over the tasks not yet tuned. Interrupting
(Ctrl-C) returns what was measured so far (`TuneReport.interrupted`): it is all in the
database already.
"""

from __future__ import annotations

import os
import random
import statistics
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from mlc.transforms.loops.schedule import parse_schedule
from mlc.tuning.database import TuningDatabase, TuningRecord
from mlc.tuning.measure import Measurer, MeasureRequest, MeasureResult
from mlc.tuning.space import Candidate, SearchSpace
from mlc.tuning.target import environment, target_id
from mlc.tuning.task import Task, extract_tasks

__all__ = ["MeasureBackend", "Ranker", "TaskResult", "TuneReport", "tune"]


class MeasureBackend(Protocol):
    """What measures candidates: `Measurer`, or a fake in tests."""

    def run(self, requests: Sequence[dict[str, Any]]) -> Iterator[tuple[int, MeasureResult]]: ...

    def close(self) -> None: ...


class Ranker(Protocol):
    """Orders sampled candidates before measurement (a cost model)."""

    def select(
        self, task: Task, candidates: Sequence[Candidate], n: int, rng: random.Random
    ) -> list[Candidate]: ...

    def update(self, task: Task, candidate: Candidate, seconds: float | None) -> None: ...


@dataclass
class TaskResult:
    """One task's tuning outcome: default vs best time (seconds). Each trace counts by the
    median of its measurements (in this run and the database's), as
    `TuningDatabase.best` does; after the search the default and the few best are
    measured again, interleaved (`confirmed`), so a machine whose speed drifts or
    bursts during the search does not fake a speed-up."""

    task: Task
    default_trace: str = ""
    #: ok times per trace, in this run and from the database
    times: dict[str, list[float]] = field(default_factory=dict)
    #: whether the default and the best were measured again after the search
    confirmed: bool = False
    #: candidates measured in this run (the default included; the confirmation not)
    trials: int = 0
    #: candidates rejected before measurement
    invalid: int = 0
    statuses: Counter[str] = field(default_factory=Counter)
    wall_s: float = 0.0

    def median(self, trace: str) -> float | None:
        times = self.times.get(trace)
        return statistics.median(times) if times else None

    def ranked(self) -> list[str]:
        """The measured traces, fastest (median) first."""
        return sorted(self.times, key=lambda t: statistics.median(self.times[t]))

    @property
    def best_trace(self) -> str:
        """The trace with the lowest median time ("" before any measurement)."""
        ranked = self.ranked()
        return ranked[0] if ranked else ""

    @property
    def default_seconds(self) -> float | None:
        return self.median(self.default_trace)

    @property
    def best_seconds(self) -> float | None:
        return self.median(self.best_trace) if self.times else None

    @property
    def speedup(self) -> float | None:
        if not self.default_seconds or not self.best_seconds:
            return None
        return self.default_seconds / self.best_seconds

    def _offer(self, trace: str, seconds: float) -> None:
        self.times.setdefault(trace, []).append(seconds)


@dataclass
class TuneReport:
    """Every task's result, and the whole run's."""

    tasks: list[TaskResult]
    wall_s: float = 0.0
    interrupted: bool = False

    def model_speedup(self) -> float | None:
        """Estimated model speed-up: sum of default over sum of best kernel times, each
        weighted by how often the model runs it (tasks with both times only)."""
        pairs = [(r.default_seconds, r.best_seconds, r.task.count) for r in self.tasks]
        pairs = [(d, b, n) for d, b, n in pairs if d and b]
        if not pairs:
            return None
        return sum(d * n for d, _, n in pairs) / sum(b * n for _, b, n in pairs)

    def table(self) -> str:
        """A text table: per kernel default, best, speed-up, trials; and a summary."""
        rows = [("kernel", "calls", "default", "best", "speed-up", "trials", "invalid", "failed")]
        for r in self.tasks:
            failed = sum(n for s, n in r.statuses.items() if s not in ("ok", "invalid"))
            rows.append(
                (
                    r.task.name,
                    str(r.task.count),
                    _time(r.default_seconds),
                    _time(r.best_seconds),
                    f"{r.speedup:.2f}x" if r.speedup else "-",
                    str(r.trials),
                    str(r.invalid),
                    str(failed),
                )
            )
        widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
        lines = [
            "  ".join(
                c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths))
            )
            for row in rows
        ]
        speedup = self.model_speedup()
        trials = sum(r.trials for r in self.tasks)
        lines.append(
            f"{len(self.tasks)} kernels, {trials} trials in {self.wall_s:.1f} s; "
            f"estimated model speed-up {f'{speedup:.2f}x' if speedup else '-'}"
            + (" (interrupted)" if self.interrupted else "")
        )
        return "\n".join(lines)


def _time(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 1e-3:
        return f"{seconds * 1e6:.1f} us"
    return f"{seconds * 1e3:.3f} ms"


def _is_parallel(trace: str) -> bool:
    return any(step.verb == "parallel" for step in parse_schedule(trace))


@dataclass
class _Tuner:
    """The state of one `tune` run."""

    db: TuningDatabase
    measurer: MeasureBackend
    seed: int
    batch_size: int
    parallel: bool
    ranker: Ranker | None
    on_record: Callable[[TaskResult, TuningRecord], None] | None
    confirm: bool = True
    confirm_top: int = 3
    confirm_rounds: int = 3
    target: str = field(default_factory=target_id)
    env: dict[str, str] = field(default_factory=environment)

    def record(self, result: TaskResult, candidate: Candidate, **fields: Any) -> TuningRecord:
        record = TuningRecord(
            task_key=result.task.key,
            target=self.target,
            trace=candidate.trace,
            task_name=result.task.name,
            environment=self.env,
            **fields,
        )
        self.db.add(record)
        if self.on_record is not None:
            self.on_record(result, record)
        return record

    def tune_task(self, result: TaskResult, trials: int, deadline: float | None) -> None:
        """Tune `result.task`, updating `result` as measurements arrive."""
        start = time.monotonic()
        task = result.task
        space = SearchSpace(task, parallel=self.parallel, features=self.ranker is not None)
        rng = random.Random(f"{self.seed}/{task.key}")
        seen: set[str] = set()
        default = space.default()
        result.default_trace = default.trace
        for old in self.db.records(task.key, self.target):
            seen.add(old.trace)
            if old.status == "ok" and old.seconds is not None:
                result._offer(old.trace, old.seconds)
                if self.ranker is not None:
                    self.ranker.update(task, Candidate(old.trace), old.seconds)
        batch: list[Candidate] = []
        if default.trace not in seen:
            seen.add(default.trace)
            if default.valid:
                batch = [default]
            else:
                self.record(result, default, status="invalid", error=default.error, is_default=True)
        while result.trials < trials and (deadline is None or time.monotonic() < deadline):
            if not batch:
                batch = self.sample(
                    result, space, rng, seen, min(self.batch_size, trials - result.trials)
                )
            if not batch:
                break  # nothing new found: the space is (nearly) exhausted
            self.measure(result, batch, default.trace)
            batch = []
        top = [t for t in result.ranked() if t != default.trace][: self.confirm_top]
        if self.confirm and default.trace in result.times and top:
            pair = [default, *(Candidate(t) for t in top)]
            self.measure(result, pair * self.confirm_rounds, default.trace, confirm=True)
            result.confirmed = True
        result.wall_s = time.monotonic() - start

    def sample(
        self,
        result: TaskResult,
        space: SearchSpace,
        rng: random.Random,
        seen: set[str],
        n: int,
    ) -> list[Candidate]:
        """Up to `n` new valid candidates (ranked by the cost model, if any); invalid ones
        are recorded as such."""
        want = n if self.ranker is None else 8 * n
        found: list[Candidate] = []
        for _ in range(10 * want + 20):
            if len(found) >= want:
                break
            candidate = space.sample(rng)
            if candidate.trace in seen:
                continue
            seen.add(candidate.trace)
            if candidate.valid:
                found.append(candidate)
            else:
                result.invalid += 1
                result.statuses["invalid"] += 1
                self.record(result, candidate, status="invalid", error=candidate.error)
        if self.ranker is not None:
            return self.ranker.select(result.task, found, n, rng)
        return found

    def measure(
        self, result: TaskResult, batch: Sequence[Candidate], default: str, confirm: bool = False
    ) -> None:
        """Measure `batch`, recording each result; `confirm`: measurements again of
        candidates measured before (not trials)."""
        requests = [
            MeasureRequest(
                result.task,
                c.trace,
                parallel=_is_parallel(c.trace),
                seed=self.seed,
                reference_trace=default,
            ).to_json()
            for c in batch
        ]
        for index, outcome in self.measurer.run(requests):
            candidate = batch[index]
            is_default = candidate.trace == default
            if not confirm:
                result.trials += 1
                result.statuses[outcome.status] += 1
            self.record(
                result,
                candidate,
                status=outcome.status,
                seconds=outcome.seconds,
                runs=outcome.runs,
                error=outcome.error,
                is_default=is_default,
            )
            if outcome.status == "ok" and outcome.seconds is not None:
                result._offer(candidate.trace, outcome.seconds)
            if self.ranker is not None:
                seconds = outcome.seconds if outcome.status == "ok" else None
                self.ranker.update(result.task, candidate, seconds)


def _tasks(model_or_task: Any, input_shapes: dict[str, list[int]] | None) -> list[Task]:
    if isinstance(model_or_task, Task):
        return [model_or_task]
    if isinstance(model_or_task, list | tuple) and all(isinstance(t, Task) for t in model_or_task):
        return list(model_or_task)
    return extract_tasks(model_or_task, input_shapes=input_shapes)


def tune(
    model_or_task: Any,
    *,
    db: TuningDatabase | str | os.PathLike[str],
    trials: int = 64,
    seed: int = 0,
    jobs: int = 1,
    time_budget: float | None = None,
    batch_size: int | None = None,
    timeout: float = 60.0,
    parallel: bool = True,
    measurer: MeasureBackend | None = None,
    ranker: Ranker | None = None,
    input_shapes: dict[str, list[int]] | None = None,
    on_record: Callable[[TaskResult, TuningRecord], None] | None = None,
    on_task: Callable[[TaskResult], None] | None = None,
    confirm: bool = True,
) -> TuneReport:
    """Tune every task of `model_or_task` (a model as `mlc.compile` takes, a `Task` or a
    list of them): up to `trials` measured candidates per task, within `time_budget`
    seconds overall (None: no limit), `jobs` worker processes (`timeout` seconds per
    candidate), `batch_size` candidates per round (default: 2 x jobs, at least 4).
    `parallel=False` keeps candidates single-threaded. `measurer` replaces the worker
    processes (e.g. a fake); `ranker` orders sampled candidates (a cost model).
    `on_record` sees each record as it is written, `on_task` each finished task.
    `confirm`: after each task's search, measure the default and the 3 best again, 3
    times each, interleaved (every trace counts by its median: `TaskResult`)."""
    start = time.monotonic()
    tasks = _tasks(model_or_task, input_shapes)
    database = db if isinstance(db, TuningDatabase) else TuningDatabase(db)
    owned = measurer is None
    backend: MeasureBackend = measurer or Measurer(jobs=jobs, timeout=timeout)
    tuner = _Tuner(
        database,
        backend,
        seed,
        batch_size or max(4, 2 * jobs),
        parallel,
        ranker,
        on_record,
        confirm,
    )
    report = TuneReport([])
    try:
        for i, task in enumerate(tasks):
            deadline = None
            if time_budget is not None:
                left = time_budget - (time.monotonic() - start)
                if left <= 0:
                    break
                deadline = time.monotonic() + left / (len(tasks) - i)
            result = TaskResult(task)
            report.tasks.append(result)  # before tuning: an interrupted task is reported too
            tuner.tune_task(result, trials, deadline)
            if on_task is not None:
                on_task(result)
    except KeyboardInterrupt:
        report.interrupted = True
    finally:
        if owned:
            backend.close()
        if database is not db:
            database.close()
        report.wall_s = time.monotonic() - start
    return report
