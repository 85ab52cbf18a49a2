"""Measurement on Ray (`mlc.tuning.ray_measure`): crashing, hanging, wrong and good
candidates are contained and reported exactly as the local process pool reports them,
both backends give the same tuning records, and every result names its worker's target.
One local Ray instance (2 CPUs) serves the whole module."""

from __future__ import annotations

import ctypes
import hashlib
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mlc.tests.unit.tuning.test_search import matmul_task
from mlc.tuning import worker
from mlc.tuning.database import TuningDatabase
from mlc.tuning.measure import Measurer, MeasureRequest, MeasureResult, SlotMeasurer, make_measurer
from mlc.tuning.ray_measure import INSTALL_HINT, RayMeasurer
from mlc.tuning.search import tune
from mlc.tuning.space import SearchSpace
from mlc.tuning.target import target_id
from mlc.tuning.worker import build_candidate, time_candidate

ray = pytest.importorskip("ray")


@pytest.fixture(scope="module", autouse=True)
def ray_instance() -> Iterator[None]:
    """A local Ray instance for the module; this module's functions travel by value (a
    Ray worker cannot import a test module by name, as a spawned process can)."""
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
    ray.init(num_cpus=2, num_gpus=0, include_dashboard=False, log_to_driver=False)
    try:
        yield
    finally:
        ray.shutdown()
        ray.cloudpickle.unregister_pickle_by_value(sys.modules[__name__])


def _digest(text: str) -> int:
    return int(hashlib.sha256(text.encode()).hexdigest(), 16)


def faulty_builder(request: dict[str, Any]) -> dict[str, Any]:
    """Builds as `request["kind"]` says (module-level: a worker runs it by name)."""
    kind = request["kind"]
    if kind == "segfault":
        ctypes.string_at(0)  # reads address 0: SIGSEGV kills the process
    if kind == "hang":
        time.sleep(600)
    if kind == "raise":
        raise RuntimeError("a bug in the candidate's compile")
    real = {**request["request"], "token": request["token"]}
    if kind == "wrong":  # an off reference: the real check finds the output wrong
        inputs, expected = worker._reference(real)
        worker._REFERENCES[(real["task_key"], real["seed"])] = (
            inputs,
            [*expected[:-1], expected[-1] + 1],
        )
    return build_candidate(real)


def faulty_runner(token: int) -> dict[str, Any]:
    """Times a built candidate; candidate #5 says it was measured elsewhere."""
    if token == 5:
        return {**time_candidate(token), "target": "other/cpu/x"}
    return time_candidate(token)


def hashed_builder(request: dict[str, Any]) -> dict[str, Any]:
    """A real build, except that a third of the candidates (never the default) crash."""
    if _digest(request["trace"]) % 3 == 0 and request["trace"] != request["reference_trace"]:
        raise RuntimeError("fake crash")
    return build_candidate(request)


def hashed_runner(token: int) -> dict[str, Any]:
    """A real timing, its seconds replaced by a hash of the trace (deterministic)."""
    trace = worker._BUILT[token][2]["trace"]
    seconds = (_digest(trace) % 1000 + 1) * 1e-6
    return {**time_candidate(token), "seconds": seconds, "runs": [seconds]}


def _outcomes(measurer: SlotMeasurer, requests: list[dict[str, Any]]) -> dict[int, MeasureResult]:
    with measurer:
        results = dict(measurer.run(requests))
    assert sorted(results) == list(range(len(requests)))
    return results


def test_faulty_candidates_are_contained_and_reported_as_the_process_pool_does() -> None:
    task = matmul_task()
    real = MeasureRequest(task, SearchSpace(task).default().trace).to_json()
    kinds = ["segfault", "hang", "raise", "wrong", "ok", "ok"]
    requests = [{"kind": kind, "request": {**real, "seed": i}} for i, kind in enumerate(kinds)]

    def measurer(cls: type[SlotMeasurer]) -> SlotMeasurer:
        return cls(jobs=2, timeout=8, builder=faulty_builder, runner=faulty_runner)

    on_ray = _outcomes(measurer(RayMeasurer), requests)
    assert [on_ray[i].status for i in range(len(kinds))] == [
        "crash",  # its actor died
        "timeout",  # hung (its actor is killed)
        "crash",
        "wrong",
        "ok",
        "ok",
    ]
    assert "died" in on_ray[0].error and on_ray[2].error.startswith("RuntimeError: a bug")
    assert "buffer #2 differs" in on_ray[3].error
    assert on_ray[4].seconds and on_ray[4].seconds > 0 and on_ray[4].compile_s is not None
    # every result names the machine that measured it: the worker's own word (#5), else
    # its actor's target (also for a dead or hung one)
    assert on_ray[5].target == "other/cpu/x"
    assert {r.target for i, r in on_ray.items() if i != 5} == {target_id()}

    local = _outcomes(measurer(Measurer), requests)

    def report(r: MeasureResult) -> tuple[Any, ...]:
        return (r.status, "died" in r.error, r.error if r.status == "crash" else "", r.target)

    for i in range(len(requests)):
        if i == 0:  # "the worker process died: <the backend's own account>"
            assert report(local[i])[:2] == report(on_ray[i])[:2]
        else:
            assert report(local[i]) == report(on_ray[i]), i
        assert (local[i].seconds is None) == (on_ray[i].seconds is None)


def test_ray_and_process_pool_give_the_same_records(tmp_path: Path) -> None:
    task = matmul_task()
    records = []
    for cls in (Measurer, RayMeasurer):
        measurer = cls(jobs=2, timeout=60, builder=hashed_builder, runner=hashed_runner)
        with TuningDatabase(tmp_path / f"{cls.__name__}.db") as db:
            tune(task, db=db, trials=6, seed=3, batch_size=4, measurer=measurer, confirm=False)
            measurer.close()
            records.append(
                sorted((r.trace, r.status, r.seconds, r.error, r.target) for r in db.records())
            )
    assert records[0] == records[1]
    statuses = {status for _, status, _, _, _ in records[0]}
    assert "ok" in statuses and len(records[0]) >= 6
    assert {target for *_, target in records[0]} == {target_id()}
    assert ray.is_initialized()  # the measurer did not start it, so left it running


def test_make_measurer_picks_the_backend(monkeypatch: pytest.MonkeyPatch) -> None:
    assert type(make_measurer(backend="process")) is Measurer
    assert type(make_measurer(backend="ray", jobs=2)) is RayMeasurer
    auto = make_measurer(ray_address="auto")
    assert type(auto) is RayMeasurer and auto.address == "auto"
    with pytest.raises(ValueError, match="ray_address"):
        make_measurer(backend="process", ray_address="auto")
    with pytest.raises(ValueError, match="backend"):
        make_measurer(backend="slurm")
    monkeypatch.setitem(sys.modules, "ray", None)  # as if Ray were not installed
    assert type(make_measurer()) is Measurer
    with pytest.raises(ImportError, match=r"pip install -e \"\.\[distributed\]\"") as error:
        make_measurer(backend="ray")
    assert str(error.value) == INSTALL_HINT
    with pytest.raises(ImportError, match="distributed"):
        make_measurer(ray_address="auto")  # a cluster needs Ray, "auto" or not
