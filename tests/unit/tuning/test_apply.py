"""Compiling with a tuning database: records applied with no measurement; stale or
foreign records never miscompile."""

from __future__ import annotations

import random
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import mlc
from mlc.tuning import measure, worker
from mlc.tuning.apply import StaleRecordWarning, TunedSchedule
from mlc.tuning.database import TuningDatabase, TuningRecord
from mlc.tuning.space import SearchSpace
from mlc.tuning.target import target_id
from mlc.tuning.task import Task, extract_tasks

MLP = Path(__file__).resolve().parents[3] / "examples" / "mlp.onnx"


def ok_record(task: Task, trace: str, seconds: float, target: str | None = None) -> TuningRecord:
    return TuningRecord(task.key, target or target_id(), trace, "ok", seconds, task_name=task.name)


def no_measuring(*args: Any, **kwargs: Any) -> Any:
    raise AssertionError("compiling with a tuning database must not measure")


def test_records_are_applied_without_measurement_and_stale_ones_are_skipped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(measure.Measurer, "_start", no_measuring)
    monkeypatch.setattr(worker, "measure_candidate", no_measuring)
    tasks = {t.labels[0]: t for t in extract_tasks(MLP)}
    gemm = tasks["einsum"]  # the first layer, over its packed weight (pack-matmul-weights)
    assert gemm.labels == ("einsum",)
    space = SearchSpace(gemm)
    rng = random.Random(4)
    candidate = next(c for c in (space.sample(rng) for _ in range(50)) if c.valid)
    assert candidate.trace != space.default().trace
    path = tmp_path / "tuning.db"
    with TuningDatabase(path) as db:
        db.add(ok_record(gemm, candidate.trace, 1e-6))
        db.add(ok_record(gemm, space.default().trace, 2e-6))
        # another machine's record is never used (its trace would not even apply)
        db.add(ok_record(tasks["gemm_0"], "lower t0\nsplit t0/gone 2\n", 1e-9, "other/cpu/x"))

    x = np.random.default_rng(0).standard_normal((8, 784)).astype(np.float32)
    (expected,) = mlc.interpret(mlc.import_onnx(MLP), x)

    strategy = TunedSchedule(path)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        compiled = mlc.compile(MLP, schedule=strategy)
    assert strategy.applied == {"einsum": gemm.key}
    assert not strategy.skipped
    np.testing.assert_allclose(compiled(x)[0], expected, rtol=1e-4, atol=1e-4)

    (tuned,) = mlc.compile(MLP, tuning_db=str(path))(x)
    np.testing.assert_allclose(tuned, expected, rtol=1e-4, atol=1e-4)

    # a stale record (its trace names a loop the kernel does not have) is the best of
    # the second gemm: skipped with a warning naming the kernel, the default used
    with TuningDatabase(path) as db:
        db.add(ok_record(tasks["gemm_1"], "lower t0\nsplit t0/gone 4\n", 1e-12))
    with pytest.warns(StaleRecordWarning, match='kernel "gemm_1".*gone'):
        (stale,) = mlc.compile(MLP, tuning_db=path)(x)
    np.testing.assert_allclose(stale, expected, rtol=1e-4, atol=1e-4)


def test_tuning_db_options(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="fall back"):
        mlc.compile(MLP, tuning_db=tmp_path / "t.db", schedule=None)
    with pytest.raises(FileNotFoundError, match="no tuning database"):
        mlc.compile(MLP, tuning_db=tmp_path / "missing.db")
