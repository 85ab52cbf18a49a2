"""Applying tuning records at compile time, with no measurement.

    mlc.compile("model.onnx", tuning_db="tuning.db")
    # = mlc.compile("model.onnx", schedule=TunedSchedule("tuning.db"))

`TunedSchedule` is a `ScheduleStrategy` that runs where the default schedule would
(after `tl-rfactor`: `rfactor_first`): for each kernel scope it computes the task key
(`task.task_of`), looks up the best record of that key on this target, checks that its
trace still replays and verifies on the task's standalone module, and replays it on the
kernel (labels renamed to the canonical `t0`, `t1`, ... for the replay and back after).
A kernel without a record gets `fallback` (the host's default schedule); one whose
record no longer applies too, with a warning naming the kernel: a stale record is
never half-applied.
"""

from __future__ import annotations

import os
import warnings
from typing import Any

from mlc.dialects.tl import KernelOp
from mlc.targets.pipeline import default_strategy
from mlc.transforms.loops.default_schedule import ScheduleStrategy
from mlc.transforms.loops.kernel_scope import relabel
from mlc.transforms.loops.schedule import Schedule
from mlc.tuning.database import TuningDatabase
from mlc.tuning.space import validate
from mlc.tuning.target import target_id
from mlc.tuning.task import TaskError, canonical_labels, task_of

__all__ = ["StaleRecordWarning", "TunedSchedule", "tuned_strategy"]


class StaleRecordWarning(UserWarning):
    """A tuning record whose trace no longer applies to its kernel (skipped)."""


class TunedSchedule:
    """Schedules each kernel with the best record of `db` for its task on this target,
    else with `fallback` (default: the host's default schedule)."""

    #: runs after tl-rfactor, as the default schedule does (see `targets.pipeline`)
    rfactor_first = True

    def __init__(
        self,
        db: TuningDatabase | str | os.PathLike[str],
        fallback: ScheduleStrategy | None = None,
        target: str | None = None,
    ) -> None:
        self.db = db if isinstance(db, TuningDatabase) else TuningDatabase(db, create=False)
        self.fallback = fallback if fallback is not None else default_strategy()
        self.target = target or target_id()
        #: kernel label -> task key of each kernel a record scheduled
        self.applied: dict[str, str] = {}
        #: kernel label -> why its record was skipped
        self.skipped: dict[str, str] = {}

    def schedule_kernel(self, sch: Schedule, kernel: KernelOp) -> None:
        ops = list(sch.root.body.block.ops)  # type: ignore[attr-defined]
        label = kernel.label.data
        try:
            task = task_of(ops)
        except TaskError:
            self.fallback.schedule_kernel(sch, kernel)
            return
        record = self.db.best(task.key, self.target)
        if record is None:
            self.fallback.schedule_kernel(sch, kernel)
            return
        problem = validate(task.module(), record.trace)
        if problem:
            self.skipped[label] = problem
            warnings.warn(
                f'tuning record for kernel "{label}" (task {task.key}) no longer applies '
                f"({problem}); using the default schedule",
                StaleRecordWarning,
                stacklevel=2,
            )
            self.fallback.schedule_kernel(sch, kernel)
            return
        to_canonical = {v: k for k, v in canonical_labels(ops).items()}
        relabel(sch.root, to_canonical)
        try:
            sch.replay(record.trace)
        finally:
            relabel(sch.root, {k: v for v, k in to_canonical.items()}, suffixes=True)
        self.applied[label] = task.key


def tuned_strategy(tuning_db: Any, schedule: Any) -> TunedSchedule:
    """The strategy for `mlc.compile(..., schedule=schedule, tuning_db=tuning_db)`: the
    records of `tuning_db` (a path or a `TuningDatabase`) over `schedule` ("default" or a
    `ScheduleStrategy`)."""
    if schedule is None:
        raise ValueError("tuning_db needs a schedule to fall back on (schedule=None given)")
    return TunedSchedule(tuning_db, None if schedule == "default" else schedule)
