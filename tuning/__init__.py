"""`mlc.tuning`: schedule search per kernel, a tuning database, and compiling with it.

    from mlc.tuning import tune, TuningDatabase
    report = tune("model.onnx", trials=64, db="tuning.db", jobs=2)   # measures
    print(report.table())
    model = mlc.compile("model.onnx", tuning_db="tuning.db")         # applies, no measuring

Modules: `task` (the kernels of a model as standalone tasks, keyed by a structural
hash), `space` (sampled schedule traces; candidate 0 is the default schedule),
`measure` / `worker` (isolated workers with timeouts: local processes, or Ray actors
with `ray_measure`), `database` (SQLite records, JSON lines), `apply` (`TunedSchedule`,
what `tuning_db=` uses), `search` (`tune`), `cost_model` (optional LightGBM ranking),
`plot` (tuning curves, optional matplotlib), `target` (the target id). See
docs/tuning.md. Names are imported on first use (compiling with a database needs only
`apply` and what it imports).
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "Task": "task",
    "extract_tasks": "task",
    "select_tasks": "task",
    "KernelPatternError": "task",
    "tasks_in": "task",
    "Candidate": "space",
    "SearchSpace": "space",
    "MeasureRequest": "measure",
    "MeasureResult": "measure",
    "Measurer": "measure",
    "make_measurer": "measure",
    "RayMeasurer": "ray_measure",
    "TuningDatabase": "database",
    "TuningRecord": "database",
    "StaleRecordWarning": "apply",
    "TunedSchedule": "apply",
    "TaskResult": "search",
    "TuneReport": "search",
    "tune": "search",
    "LightGBMRanker": "cost_model",
    "CurveRecorder": "plot",
    "plot_curves": "plot",
    "target_id": "target",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'mlc.tuning' has no attribute {name!r}")
    return getattr(importlib.import_module(f"mlc.tuning.{module}"), name)
