"""The search loop: evolutionary search per task (guided by a cost model when one is
given), measured in batches, every result written to the database as it arrives.

    report = tune("model.onnx", trials=64, db="tuning.db", seed=0, jobs=2)
    print(report.table())
    mlc.compile("model.onnx", tuning_db="tuning.db")

Per task: candidate 0 is the default schedule (measured unless the database has it);
then batches of new candidates, from a `random.Random` seeded by `seed` and the task
key. The first batch is sampled at random (`SearchSpace.sample`); later ones are
*evolved*: children of the fastest measured candidates (`SearchSpace.mutate`: a few of a
parent's sampling decisions re-drawn; now and then `crossover` of two parents; for 30 %
of children, whatever the parent — the only way to breed from the default schedule,
which has no decisions — `SearchSpace.neighbour`: one mutation of the trace itself),
parents picked by tournament, and a fraction `epsilon` of fresh random samples.
With a cost model (`ranker`), each batch evolves a population over the model's
predictions for a few generations without measuring, then measures the best predicted
candidates (and `epsilon` of them at random from the rest); candidates predicted but
not measured stay in the pool for the next batch, re-scored by the updated model.
A candidate is rejected before measurement if invalid (recorded with the reason),
skipped if its trace was measured before (in this run or the database), measured
(`Measurer`) and recorded. A batch is drawn only from what earlier batches found (the
model learns from a batch in the batch's order, not the order results arrive in), so
with a deterministic measurer a seed gives the same records whatever the job count.
A result measured on another machine (a Ray cluster of mixed hosts) is recorded under
that machine's target and not counted for this one. `trials` counts measured candidates per task (the default included);
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
from mlc.tuning.cost_model import kendall_tau
from mlc.tuning.database import TuningDatabase, TuningRecord
from mlc.tuning.measure import MeasureRequest, MeasureResult, make_measurer
from mlc.tuning.space import Candidate, SearchSpace
from mlc.tuning.target import environment, target_id
from mlc.tuning.task import Task, extract_tasks, select_tasks

__all__ = ["MeasureBackend", "Ranker", "TaskResult", "TuneReport", "tune"]


class MeasureBackend(Protocol):
    """What measures candidates: `Measurer`, or a fake in tests."""

    def run(self, requests: Sequence[dict[str, Any]]) -> Iterator[tuple[int, MeasureResult]]: ...

    def close(self) -> None: ...


class Ranker(Protocol):
    """Scores candidates before measurement (a cost model): higher is predicted faster;
    `ready` once the scores mean something (a trained model)."""

    @property
    def ready(self) -> bool: ...

    def predict(self, task: Task, candidates: Sequence[Candidate]) -> list[float]: ...

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
    #: the sampling decisions of measured traces (what the evolution mutates)
    decisions: dict[str, tuple[float, ...]] = field(default_factory=dict)
    #: (the cost model's score before measuring, the measured seconds) per candidate
    #: the trained model chose: its ranking quality on data it had not seen
    predictions: list[tuple[float, float]] = field(default_factory=list)
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
        """The measured traces, fastest (median) first (ties by trace text)."""
        return sorted(self.times, key=lambda t: (statistics.median(self.times[t]), t))

    def parents(self, k: int) -> list[Candidate]:
        """The `k` fastest measured candidates (with their sampling decisions, if the
        search space drew them; the default and imported traces have none)."""
        return [Candidate(t, decisions=self.decisions.get(t, ())) for t in self.ranked()[:k]]

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

    @property
    def tau(self) -> float | None:
        """Kendall τ between the cost model's scores and the measured speeds of the
        candidates it chose (None with fewer than 4)."""
        if len(self.predictions) < 4:
            return None

        return kendall_tau([p for p, _ in self.predictions], [-s for _, s in self.predictions])

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
        guided = any(r.predictions for r in self.tasks)
        rows = [("kernel", "calls", "default", "best", "speed-up", "trials", "invalid", "failed")]
        rows[0] += ("model tau",) if guided else ()
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
                + ((f"{r.tau:.2f}" if r.tau is not None else "-",) if guided else ())
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


def _tournament(pool: Sequence[Candidate], rng: random.Random) -> Candidate:
    """The fitter of two drawn from `pool` (best first)."""
    return pool[min(rng.randrange(len(pool)), rng.randrange(len(pool)))]


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
    #: False: every candidate sampled afresh (random search; the baseline)
    evolutionary: bool = True
    #: the share of each batch drawn at random instead of evolved or predicted
    epsilon: float = 0.2
    #: parents: the fastest this many measured candidates
    population: int = 16
    #: the chance that a child is a crossover of two parents (else a mutation)
    crossover: float = 0.2
    #: the chance that a child mutates its parent's trace, not its decisions (the only
    #: way to breed from a parent without decisions, such as the default schedule)
    trace_mutation: float = 0.3
    #: cost-model generations per batch, each of `pool_factor` x batch candidates
    generations: int = 2
    pool_factor: int = 4
    target: str = field(default_factory=target_id)
    env: dict[str, str] = field(default_factory=environment)
    #: the trained model's score of each candidate it chose, until measured
    scores: dict[tuple[str, str], float] = field(default_factory=dict)

    def record(
        self, result: TaskResult, candidate: Candidate, target: str = "", **fields: Any
    ) -> TuningRecord:
        record = TuningRecord(
            task_key=result.task.key,
            target=target or self.target,
            trace=candidate.trace,
            task_name=result.task.name,
            environment=self.env,
            decisions=candidate.decisions,
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
                if old.decisions:
                    result.decisions[old.trace] = old.decisions
                if self.ranker is not None:
                    self.ranker.update(task, Candidate(old.trace), old.seconds)
        pool: dict[str, Candidate] = {}  # predicted, not measured yet
        batch: list[Candidate] = []
        if default.trace not in seen:
            seen.add(default.trace)
            if default.valid:
                batch = [default]
            else:
                self.record(result, default, status="invalid", error=default.error, is_default=True)
        while result.trials < trials and (deadline is None or time.monotonic() < deadline):
            if not batch:
                n = min(self.batch_size, trials - result.trials)
                batch = self.next_batch(result, space, rng, seen, pool, n)
            if not batch:
                break  # nothing new found: the space is (nearly) exhausted
            self.measure(result, batch, default.trace)
            batch = []
        top = [t for t in result.ranked() if t != default.trace][: self.confirm_top]
        if self.confirm and default.trace in result.times and top:
            pair = [default, *(Candidate(t, decisions=result.decisions.get(t, ())) for t in top)]
            self.measure(result, pair * self.confirm_rounds, default.trace, confirm=True)
            result.confirmed = True
        result.wall_s = time.monotonic() - start

    def next_batch(
        self,
        result: TaskResult,
        space: SearchSpace,
        rng: random.Random,
        seen: set[str],
        pool: dict[str, Candidate],
        n: int,
    ) -> list[Candidate]:
        """Up to `n` new valid candidates to measure (see the module docstring)."""
        if not self.evolutionary:
            if self.ranker is None:
                return self.draw(result, space, rng, seen, n, ())
            found = self.draw(result, space, rng, seen, 8 * n, (), replay=False)
            ranked = [c for c, _ in self.scored(result.task, found)]
            return self.replayed(result, space, ranked)[:n]
        if self.ranker is None:
            return self.draw(result, space, rng, seen, n, result.parents(self.population))
        return self.evolve(result, space, rng, seen, pool, n)

    def propose(
        self,
        space: SearchSpace,
        rng: random.Random,
        parents: Sequence[Candidate],
        replay: bool = True,
    ) -> Candidate:
        """One candidate: random with chance `epsilon` (always, without parents), else a
        child of parents picked by tournament (the fitter of two; `parents` best first).
        `replay=False`: checked cheaply (`SearchSpace.sample`)."""
        if not parents or rng.random() < self.epsilon:
            return space.sample(rng, replay=replay)
        parent = _tournament(parents, rng)
        if rng.random() < self.trace_mutation:
            return space.neighbour(parent, rng)
        sampled = [p for p in parents if p.decisions]
        if not sampled:
            return space.sample(rng, replay=replay)
        if not parent.decisions:  # (the default): another parent's decisions instead
            parent = _tournament(sampled, rng)
        other = _tournament(parents, rng)
        if other.decisions and rng.random() < self.crossover:
            return space.crossover(parent, other, rng, replay=replay)
        return space.mutate(parent, rng, replay=replay)

    def draw(
        self,
        result: TaskResult,
        space: SearchSpace,
        rng: random.Random,
        seen: set[str],
        n: int,
        parents: Sequence[Candidate],
        replay: bool = True,
    ) -> list[Candidate]:
        """Up to `n` new valid candidates proposed from `parents`; invalid ones are
        recorded as such, traces in `seen` skipped (and new ones added to it).
        `replay=False`: checked cheaply; `replayed` before measuring."""
        found: list[Candidate] = []
        for _ in range(10 * n + 20):
            if len(found) >= n:
                break
            candidate = self.propose(space, rng, parents, replay)
            if candidate.trace in seen:
                continue
            seen.add(candidate.trace)
            if candidate.valid:
                found.append(candidate)
            else:
                self.reject(result, candidate)
        return found

    def reject(self, result: TaskResult, candidate: Candidate) -> None:
        result.invalid += 1
        result.statuses["invalid"] += 1
        self.record(result, candidate, status="invalid", error=candidate.error)

    def replayed(
        self, result: TaskResult, space: SearchSpace, candidates: Sequence[Candidate]
    ) -> list[Candidate]:
        """The `candidates` whose traces replay on a fresh module; the others rejected."""
        valid = []
        for c in map(space.replayed, candidates):
            if c.valid:
                valid.append(c)
            else:
                self.reject(result, c)
        return valid

    def evolve(
        self,
        result: TaskResult,
        space: SearchSpace,
        rng: random.Random,
        seen: set[str],
        pool: dict[str, Candidate],
        n: int,
    ) -> list[Candidate]:
        """Evolve candidates over the cost model for `generations`, starting from the
        fastest measured ones; return the `n` best predicted of the pool, `epsilon` of
        them picked at random instead. The rest stays in `pool`."""
        assert self.ranker is not None
        task = result.task
        population = result.parents(self.population)
        for _ in range(self.generations):
            drawn = self.draw(result, space, rng, seen, self.pool_factor * n, population, False)
            for c in drawn:
                pool[c.trace] = c
            if not pool:
                break
            scored = self.scored(task, [*population, *pool.values()])
            population = [c for c, _ in scored[: self.population]]
        scored = self.scored(task, list(pool.values()))
        ranked = [c for c, _ in scored]
        explore = min(n - 1, round(self.epsilon * n)) if n > 1 else 0
        chosen = ranked[: n - explore]
        rest = ranked[n - explore :]
        chosen += rng.sample(rest, min(explore, len(rest)))
        for c in chosen:
            del pool[c.trace]
        chosen = self.replayed(result, space, chosen)
        if self.ranker.ready:
            scores = dict(scored)
            self.scores.update(((task.key, c.trace), scores[c]) for c in chosen)
        return chosen

    def scored(self, task: Task, candidates: Sequence[Candidate]) -> list[tuple[Candidate, float]]:
        """`candidates` with the model's predictions, best first (ties in given order)."""
        assert self.ranker is not None
        scores = self.ranker.predict(task, candidates)
        order = sorted(range(len(candidates)), key=lambda i: -scores[i])
        return [(candidates[i], scores[i]) for i in order]

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
        learned: dict[int, float | None] = {}
        for index, outcome in self.measurer.run(requests):
            candidate = batch[index]
            is_default = candidate.trace == default
            self.record(
                result,
                candidate,
                target=outcome.target,
                status=outcome.status,
                seconds=outcome.seconds,
                runs=outcome.runs,
                error=outcome.error,
                is_default=is_default,
            )
            if not confirm:
                result.trials += 1
                result.statuses[outcome.status] += 1
            if outcome.target and outcome.target != self.target:
                continue  # measured on another kind of machine: not a time for this one
            ok = outcome.status == "ok" and outcome.seconds is not None
            score = self.scores.pop((result.task.key, candidate.trace), None)
            if ok and score is not None and not confirm:
                result.predictions.append((score, outcome.seconds))
            if ok:
                result._offer(candidate.trace, outcome.seconds)
                if candidate.decisions:
                    result.decisions[candidate.trace] = candidate.decisions
            learned[index] = outcome.seconds if ok else None
        if self.ranker is not None:  # in the batch's order: the same model whatever the jobs
            for index in sorted(learned):
                self.ranker.update(result.task, batch[index], learned[index])


def _tasks(
    model_or_task: Any,
    input_shapes: dict[str, list[int]] | None,
    kernels: Sequence[str] | None = None,
) -> list[Task]:
    """The tasks to tune: those given, or `model_or_task`'s; with `kernels`, only those
    whose name matches one of the patterns (`select_tasks`)."""
    if isinstance(model_or_task, Task):
        tasks = [model_or_task]
    elif isinstance(model_or_task, list | tuple) and all(
        isinstance(t, Task) for t in model_or_task
    ):
        tasks = list(model_or_task)
    else:
        tasks = extract_tasks(model_or_task, input_shapes=input_shapes)
    return tasks if kernels is None else select_tasks(tasks, kernels)


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
    backend: str = "auto",
    ray_address: str | None = None,
    ranker: Ranker | None = None,
    search: str = "evolutionary",
    input_shapes: dict[str, list[int]] | None = None,
    kernels: Sequence[str] | None = None,
    on_record: Callable[[TaskResult, TuningRecord], None] | None = None,
    on_task: Callable[[TaskResult], None] | None = None,
    confirm: bool = True,
) -> TuneReport:
    """Tune every task of `model_or_task` (a model as `mlc.compile` takes, a `Task` or a
    list of them): up to `trials` measured candidates per task, within `time_budget`
    seconds overall (None: no limit), `jobs` worker processes (`timeout` seconds per
    candidate), `batch_size` candidates per round (default: 2 x jobs, at least 4).
    `parallel=False` keeps candidates single-threaded. `backend` measures on "ray" (a
    local Ray instance, or the cluster at `ray_address`), "process" (a local process
    pool) or "auto" (Ray when it is installed); `measurer` replaces it (e.g. a fake);
    `ranker` scores candidates before measurement (a cost model). `search`:
    "evolutionary" (children of the fastest measured candidates, see the module doc) or
    "random" (every candidate sampled afresh; the baseline). `kernels`: tune only the tasks
    whose name matches one of these patterns (exact names or `fnmatch` globs such as
    "conv*"; one that matches no task raises `KernelPatternError`, before measuring).
    `on_record` sees each record as it is written, `on_task` each finished task.
    `confirm`: after each task's search, measure the default and the 3 best again, 3
    times each, interleaved (every trace counts by its median: `TaskResult`)."""
    if search not in ("evolutionary", "random"):
        raise ValueError(f"search must be 'evolutionary' or 'random', got {search!r}")
    start = time.monotonic()
    tasks = _tasks(model_or_task, input_shapes, kernels)
    database = db if isinstance(db, TuningDatabase) else TuningDatabase(db)
    owned = measurer is None
    measure: MeasureBackend = measurer or make_measurer(
        jobs=jobs, timeout=timeout, backend=backend, ray_address=ray_address
    )
    tuner = _Tuner(
        database,
        measure,
        seed,
        batch_size or max(4, 2 * jobs),
        parallel,
        ranker,
        on_record,
        confirm,
        evolutionary=search == "evolutionary",
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
            measure.close()
        if database is not db:
            database.close()
        report.wall_s = time.monotonic() - start
    return report
