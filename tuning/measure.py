"""Measurement in isolated workers, with a timeout per candidate.

    with make_measurer(jobs=2, timeout=60, backend="process") as measurer:
        for index, result in measurer.run(requests):     # as they finish
            print(index, result.status, result.seconds, result.target)

Candidates are compiled and checked in parallel (one per worker), then timed one at a
time while no other worker runs (`SlotMeasurer.run`). The scheduling is the same for
every backend; only what a job slot's worker is differs (`Worker`):

- `Measurer`: a single-process `ProcessPoolExecutor` per slot, started with the "spawn"
  context (never fork: the parent may have run OpenMP-parallel native code);
- `mlc.tuning.ray_measure.RayMeasurer`: a Ray actor per slot (a local Ray instance, or
  a cluster's machines).

A candidate that crashes its worker (a segfault), hangs (the worker is killed at its
deadline) or raises is recorded as `crash` / `timeout` against exactly that candidate,
its slot gets a fresh worker, and the tuner goes on. Workers share a private compile
cache directory (`MLC_CACHE_DIR`), removed when the measurer closes. Only JSON-able
dicts (text and numbers) cross the process boundary; every result carries the target
(`target.target_id()`) of the machine that measured it.
"""

from __future__ import annotations

import abc
import concurrent.futures as cf
import multiprocessing
import os
import shutil
import signal
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from typing import Any, Protocol, Self

from mlc.tuning.database import STATUSES
from mlc.tuning.task import Task
from mlc.tuning.worker import build_candidate, init_worker, time_candidate, worker_ready

__all__ = [
    "BACKENDS",
    "STATUSES",
    "MeasureRequest",
    "MeasureResult",
    "Measurer",
    "SlotMeasurer",
    "Worker",
    "WorkerFn",
    "make_measurer",
]

WorkerFn = Callable[[dict[str, Any]], dict[str, Any]]


@dataclass(frozen=True)
class MeasureRequest:
    """One candidate to measure: the task's module, the trace, how to time it."""

    task: Task
    trace: str
    #: the trace runs loops on threads (timed with every core, else one)
    parallel: bool = False
    seed: int = 0
    repeat: int = 5
    min_run_s: float = 0.002
    #: the default schedule's trace (the reference for kernels too large to interpret)
    reference_trace: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "task_key": self.task.key,
            "module": self.task.module_text,
            "work": self.task.work,
            "trace": self.trace,
            "parallel": self.parallel,
            "seed": self.seed,
            "repeat": self.repeat,
            "min_run_s": self.min_run_s,
            "reference_trace": self.reference_trace,
        }


@dataclass(frozen=True)
class MeasureResult:
    """The outcome of one measurement (`seconds`: the median, for status "ok");
    `target`: the `target_id()` of the machine that measured it ("" if unknown)."""

    status: str
    seconds: float | None = None
    runs: tuple[float, ...] = ()
    error: str = ""
    compile_s: float | None = None
    target: str = ""

    @staticmethod
    def from_json(data: dict[str, Any]) -> MeasureResult:
        status = str(data.get("status", "crash"))
        target = str(data.get("target", ""))
        if status not in STATUSES:
            return MeasureResult("crash", error=f"worker returned status {status!r}", target=target)
        seconds = data.get("seconds")
        return MeasureResult(
            status,
            float(seconds) if seconds is not None else None,
            tuple(float(x) for x in data.get("runs", ())),
            str(data.get("error", "")),
            data.get("compile_s"),
            target,
        )


class Worker(Protocol):
    """The worker of one job slot (a process, a Ray actor): runs one call at a time."""

    #: `target_id()` of the machine it runs on
    target: str

    def submit(self, fn: Callable[..., Any], *args: Any) -> cf.Future[Any]:
        """Run `fn(*args)` in the worker (calls run in the order submitted)."""
        ...

    def raised(self, error: BaseException) -> BaseException | None:
        """What the call raised, given its future's exception; None: the worker died."""
        ...

    def stop(self, kill: bool) -> None:
        """Stop the worker; `kill`: it is hung (running a call past its deadline)."""
        ...


@dataclass
class _Slot:
    """One job slot's worker and what it is running."""

    worker: Worker
    future: cf.Future[dict[str, Any]] | None = None
    index: int = -1
    deadline: float = 0.0
    #: False once its worker died or was found hung: replaced before the next candidate
    alive: bool = True


@dataclass
class SlotMeasurer(abc.ABC):
    """Measures requests in `jobs` isolated workers (`_launch` starts one): `builder`
    (default: `worker.build_candidate`) compiles and checks each (status "built" when it
    passes), `runner` (default: `worker.time_candidate`) times a built one by its index
    in the worker that built it; each step within `timeout` seconds (worker start-up,
    within `startup_timeout`, excluded). `builder` and `runner` must be module-level
    functions (the worker imports them by name)."""

    jobs: int = 1
    timeout: float = 60.0
    builder: WorkerFn = build_candidate
    runner: Callable[[int], dict[str, Any]] = time_candidate
    startup_timeout: float = 120.0
    #: workers started so far (a test can check that none was)
    started: int = 0
    _slots: list[_Slot] = field(default_factory=list)
    _cache_dir: str = ""

    def __post_init__(self) -> None:
        if self.jobs < 1:
            raise ValueError(f"jobs must be >= 1, got {self.jobs}")

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ workers

    @abc.abstractmethod
    def _launch(self, cache_dir: str) -> Worker:
        """A new worker with `init_worker(cache_dir)` run, ready for calls (waiting at
        most `startup_timeout` seconds for it)."""

    def _start(self) -> _Slot:
        if not self._cache_dir:
            self._cache_dir = tempfile.mkdtemp(prefix="mlc-tune-cache-")
        self.started += 1
        return _Slot(self._launch(self._cache_dir))

    def close(self) -> None:
        """Stop every worker and remove the private compile cache."""
        for slot in self._slots:
            if slot.alive:
                slot.worker.stop(kill=slot.future is not None and not slot.future.done())
        self._slots = []
        if self._cache_dir:
            shutil.rmtree(self._cache_dir, ignore_errors=True)
            self._cache_dir = ""

    # ------------------------------------------------------------------ running

    def run(self, requests: Sequence[dict[str, Any]]) -> Iterator[tuple[int, MeasureResult]]:
        """Measure `requests` (JSON-able dicts for the worker); yield `(index, result)`
        as each finishes. Candidates are built (compiled and checked) in parallel, then
        timed one at a time with nothing else running (on a small machine a compile in
        another worker would distort the time). A candidate built in a worker that died
        before timing it (another candidate crashed or hung there) is built again.
        Leaving the iteration early leaves candidates running until `close`."""
        queue = list(range(len(requests)))
        while queue:
            built: list[tuple[int, _Slot, dict[str, Any]]] = []
            jobs = [(i, self.builder, {**requests[i], "token": i}, None) for i in queue]
            for index, slot, data in self._dispatch(jobs):
                if data.get("status") == "built":
                    built.append((index, slot, data))
                else:
                    yield index, MeasureResult.from_json(data)
            queue = []
            for index, slot, build in built:
                if not slot.alive or slot not in self._slots:
                    queue.append(index)  # its worker was replaced: build it again
                    continue
                for _, _, data in self._dispatch([(index, self.runner, index, slot)]):
                    yield (
                        index,
                        MeasureResult.from_json({**data, "compile_s": build.get("compile_s")}),
                    )

    def _dispatch(
        self, jobs: Sequence[tuple[int, Callable[[Any], dict[str, Any]], Any, _Slot | None]]
    ) -> Iterator[tuple[int, _Slot, dict[str, Any]]]:
        """Run each job `(index, fn, argument, slot or None: any)` in a worker, at most
        one per worker at a time; yield `(index, slot, result)` as each finishes (a
        timeout or a dead worker is a "timeout" / "crash" result; a result without a
        "target" gets its worker's)."""
        pending = list(jobs)[::-1]
        while len(self._slots) < min(self.jobs, len(pending)):
            self._slots.append(self._start())
        while True:
            for i, slot in enumerate(self._slots):
                if slot.future is not None:
                    continue
                job = next((j for j in reversed(pending) if j[3] in (None, slot)), None)
                if job is None:
                    continue
                pending.remove(job)
                if not slot.alive:  # its worker died or hung: a fresh one
                    slot = self._slots[i] = self._start()
                slot.index = job[0]
                slot.future = slot.worker.submit(job[1], job[2])
                slot.deadline = time.monotonic() + self.timeout
            running = [s for s in self._slots if s.future is not None]
            if not running:
                return
            wait_s = max(0.0, min(s.deadline for s in running) - time.monotonic())
            cf.wait([s.future for s in running], wait_s, cf.FIRST_COMPLETED)  # type: ignore[misc]
            for slot in running:
                data = self._collect(slot)
                if data is None:
                    continue
                slot.future = None
                if not slot.alive:  # kill only a hung worker: a dead process's id may be reused
                    slot.worker.stop(kill=data["status"] == "timeout")
                yield slot.index, slot, {"target": slot.worker.target, **data}

    def _collect(self, slot: _Slot) -> dict[str, Any] | None:
        """The slot's result if it is done or past its deadline, else None."""
        future = slot.future
        assert future is not None
        if not future.done():
            if time.monotonic() < slot.deadline:
                return None
            slot.alive = False
            return {"status": "timeout", "error": f"no result within {self.timeout:g} s"}
        try:
            data = future.result()
        except Exception as e:
            raised = slot.worker.raised(e)
            if raised is None:
                slot.alive = False
                return {"status": "crash", "error": f"the worker process died: {e}"[:2000]}
            # the worker raised (a custom worker, or a pickling error)
            return {"status": "crash", "error": f"{type(raised).__name__}: {raised}"[:2000]}
        return data if isinstance(data, dict) else {"status": "crash", "error": "not a dict"}


@dataclass
class _ProcessWorker:
    """A one-process `ProcessPoolExecutor` (its process's id: to kill it if hung)."""

    executor: cf.ProcessPoolExecutor
    pid: int
    target: str

    def submit(self, fn: Callable[..., Any], *args: Any) -> cf.Future[Any]:
        return self.executor.submit(fn, *args)

    def raised(self, error: BaseException) -> BaseException | None:
        return None if isinstance(error, BrokenProcessPool) else error

    def stop(self, kill: bool) -> None:
        if kill:
            try:
                os.kill(self.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.executor.shutdown(wait=True, cancel_futures=True)


@dataclass
class Measurer(SlotMeasurer):
    """`SlotMeasurer` on local worker processes, each a one-process pool started with
    `context` ("spawn" or "forkserver")."""

    context: str = "spawn"

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.context not in ("spawn", "forkserver"):
            raise ValueError(f"context must be 'spawn' or 'forkserver', got {self.context!r}")

    def _launch(self, cache_dir: str) -> Worker:
        executor = cf.ProcessPoolExecutor(
            max_workers=1,
            mp_context=multiprocessing.get_context(self.context),
            initializer=init_worker,
            initargs=(cache_dir,),
        )
        try:
            ready = executor.submit(worker_ready).result(timeout=self.startup_timeout)
        except BaseException:
            executor.shutdown(wait=False, cancel_futures=True)
            raise
        return _ProcessWorker(executor, ready["pid"], ready["target"])


#: what `make_measurer`'s `backend` may be
BACKENDS = ("auto", "process", "ray")


def make_measurer(
    *, jobs: int = 1, timeout: float = 60.0, backend: str = "auto", ray_address: str | None = None
) -> SlotMeasurer:
    """The measurer `tune` uses: `backend` "process" (a local process pool), "ray" (a
    local Ray instance, or the cluster at `ray_address`) or "auto" (Ray when it is
    installed, else a process pool)."""
    if backend not in BACKENDS:
        raise ValueError(f"backend must be 'auto', 'process' or 'ray', got {backend!r}")
    if backend == "process" and ray_address:
        raise ValueError("ray_address needs the Ray backend (backend='ray' or 'auto')")
    if backend == "auto" and not ray_address:
        try:
            import ray  # noqa: F401
        except ImportError:
            backend = "process"
    if backend == "process":
        return Measurer(jobs=jobs, timeout=timeout)
    from mlc.tuning.ray_measure import RayMeasurer

    return RayMeasurer(jobs=jobs, timeout=timeout, address=ray_address or None)
