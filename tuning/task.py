"""Tuning tasks: the distinct kernels of a model, each a standalone module.

    tasks = extract_tasks("model.onnx")          # [Task], one per distinct kernel
    task.module()                                # func @task(buffers...) { tl.kernel "t0" ... }
    task.key                                     # structural hash (labels, SSA names aside)

A task is what `apply_default_schedules` hands one `ScheduleStrategy.schedule_kernel`
call: a `tl.kernel` after graph -> tl, fusion and rfactor (the passes `mlc.compile` runs
before scheduling), with the elementwise kernel that finishes its output in place, if
any. Its standalone module has one function whose arguments are the buffers the kernels
use (constants too: a task is timed on random data), and canonical labels (`t0`, `t1`,
...), so that structurally identical kernels of different models, or of one model, are
one task, and a schedule trace recorded on the standalone module replays on any of them
once their labels are renamed (`canonical_labels`).
"""

from __future__ import annotations

import fnmatch
import functools
import io
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from xdsl.dialects import func
from xdsl.dialects.builtin import MemRefType, ModuleOp
from xdsl.ir import Operation
from xdsl.printer import Printer

from mlc.dialects.tl import KernelOp
from mlc.interpreters.tl.buffers import numpy_dtype
from mlc.parser.mlir import parse_module
from mlc.parser.onnx import import_onnx
from mlc.registry import make_context
from mlc.targets.compiled import cpu_pipeline
from mlc.targets.pipeline import StrategySchedulePass
from mlc.transforms.loops.default_schedule import apply_default_schedules
from mlc.transforms.loops.kernel_scope import (
    ScopeError,
    canonical_labels,
    standalone_module,
    structural_key,
)
from mlc.transforms.loops.schedule import Schedule

__all__ = [
    "TASK_FUNCTION",
    "KernelPatternError",
    "Task",
    "TaskError",
    "canonical_labels",
    "extract_tasks",
    "kernel_scopes",
    "scheduling_prefix",
    "select_tasks",
    "standalone_module",
    "structural_key",
    "tasks_in",
]

#: the name of a task's function
TASK_FUNCTION = "task"


#: a kernel that cannot be tuned on its own (e.g. it uses a non-buffer value)
TaskError = ScopeError


class KernelPatternError(ValueError):
    """Kernel-name patterns (`select_tasks`) of which some match no task."""

    def __init__(self, unmatched: Sequence[str], names: Sequence[str]) -> None:
        self.unmatched = list(unmatched)
        self.names = list(names)
        quoted = ", ".join(repr(p) for p in self.unmatched)
        super().__init__(
            f"no kernel matches {quoted}; the kernels are: {', '.join(self.names) or '(none)'}"
        )


@dataclass(frozen=True)
class Task:
    """One distinct kernel (with its in-place epilogue) to tune."""

    key: str
    #: the standalone module's text (parse with `module()`)
    module_text: str
    #: the kernels' labels where first found in the model (e.g. ("conv_1", "conv_1_relu"))
    labels: tuple[str, ...]
    #: how often the model runs it
    count: int = 1
    #: iteration points times body ops, summed over its kernels (`work`)
    work: int = 0
    #: the buffer shapes and numpy dtypes of its arguments
    arguments: tuple[tuple[tuple[int, ...], str], ...] = field(default=())

    @property
    def name(self) -> str:
        """A readable name: the first kernel's label in the model."""
        return self.labels[0] if self.labels else self.key

    def module(self) -> ModuleOp:
        """A fresh copy of the standalone module (parsed once, then cloned)."""
        return _parsed(self.module_text).clone()


@functools.lru_cache(maxsize=32)
def _parsed(text: str) -> ModuleOp:
    return parse_module(make_context(), text, "<task>")


def _work(module: ModuleOp) -> int:
    total = 0
    for op in module.walk():
        if isinstance(op, KernelOp):
            points = math.prod(it.extent.data for it in op.iterator_list)
            total += points * max(1, sum(1 for _ in op.body.walk()) - 1)
    return total


def _arguments(module: ModuleOp) -> tuple[tuple[tuple[int, ...], str], ...]:
    f = next(op for op in module.ops if isinstance(op, func.FuncOp))
    return tuple(
        (tuple(t.get_shape()), str(numpy_dtype(t.element_type)))
        for t in f.function_type.inputs.data
        if isinstance(t, MemRefType)
    )


def _print(module: ModuleOp) -> str:
    out = io.StringIO()
    Printer(out).print_op(module)
    return out.getvalue()


def task_of(ops: Sequence[Operation]) -> Task:
    """The task of one kernel scope (a kernel and its in-place epilogue)."""
    module, labels = standalone_module(ops)
    return Task(
        key=structural_key(module),
        module_text=_print(module),
        labels=tuple(labels),
        work=_work(module),
        arguments=_arguments(module),
    )


# ---------------------------------------------------------------------- scopes


@dataclass
class _ScopeRecorder:
    """A `ScheduleStrategy` that schedules nothing and records each kernel scope it is
    handed (kernels already seen inside an earlier scope are skipped)."""

    scopes: list[Task] = field(default_factory=list)
    seen: set[int] = field(default_factory=set)
    skipped: int = 0

    def schedule_kernel(self, sch: Schedule, kernel: KernelOp) -> None:
        if id(kernel) in self.seen:
            return
        ops = list(sch.root.body.block.ops)  # type: ignore[attr-defined]
        self.seen.update(id(op) for op in ops if isinstance(op, KernelOp))
        try:
            self.scopes.append(task_of(ops))
        except TaskError:
            self.skipped += 1


def kernel_scopes(module: ModuleOp) -> list[Task]:
    """One task per kernel scope of `module` (at the tl.kernel level), in order,
    duplicates included. `module` is left as it was."""
    recorder = _ScopeRecorder()
    apply_default_schedules(module, recorder)
    return recorder.scopes


def tasks_in(module: ModuleOp) -> list[Task]:
    """The distinct tasks of a module at the tl.kernel level (counted), in first-seen
    order."""
    found: dict[str, Task] = {}
    for task in kernel_scopes(module):
        if task.key in found:
            old = found[task.key]
            found[task.key] = Task(
                old.key, old.module_text, old.labels, old.count + 1, old.work, old.arguments
            )
        else:
            found[task.key] = task
    return list(found.values())


# ---------------------------------------------------------------------- models


class _Marker:
    """Stands for a strategy that runs after rfactor (what `TunedSchedule` is)."""

    rfactor_first = True

    def schedule_kernel(self, sch: Schedule, kernel: KernelOp) -> None:  # pragma: no cover
        raise AssertionError("never scheduled")


def scheduling_prefix(module: ModuleOp, **options: Any) -> list[Any]:
    """The passes `mlc.compile(module, tuning_db=...)` runs before scheduling (graph
    passes, graph -> tl, fusion, rfactor), for `cpu_pipeline`'s `options`."""
    passes = cpu_pipeline(**options).passes(module, _Marker())  # type: ignore[arg-type]
    end = next(i for i, p in enumerate(passes) if isinstance(p, StrategySchedulePass))
    return passes[:end]


def load_module(
    model: ModuleOp | str | os.PathLike[str] | bytes | Any,
    input_shapes: dict[str, list[int]] | None = None,
) -> ModuleOp:
    """`model` (ONNX path / bytes / ModelProto, `.mlir` path or module) as a module (a
    copy)."""
    if isinstance(model, ModuleOp):
        return model.clone()
    if isinstance(model, str | os.PathLike) and os.fspath(model).endswith(".mlir"):
        from pathlib import Path

        return parse_module(make_context(), Path(model).read_text(), os.fspath(model))

    return import_onnx(model, input_shapes=input_shapes)


def extract_tasks(
    model: ModuleOp | str | os.PathLike[str] | bytes | Any,
    *,
    input_shapes: dict[str, list[int]] | None = None,
    fuse: bool = True,
    layout: str | None = "default",
) -> list[Task]:
    """The distinct tuning tasks of `model`, as `mlc.compile(model, fuse=..., layout=...)`
    would schedule them (a tl.kernel that cannot stand alone is left out)."""
    module = load_module(model, input_shapes)
    ctx = make_context()
    for p in scheduling_prefix(module, fuse=fuse, layout=layout):
        p.apply(ctx, module)
    return tasks_in(module)


def select_tasks(tasks: Sequence[Task], patterns: str | Sequence[str]) -> list[Task]:
    """The tasks (in their order) whose `name` is one of `patterns` or matches one as a
    shell glob (`fnmatch`, case-sensitive: `conv*`, `*_relu`, `matmul_[12]`). Raises
    `KernelPatternError`, listing the task names, if a pattern matches none."""
    if isinstance(patterns, str):
        patterns = [patterns]

    def matches(name: str, pattern: str) -> bool:
        return name == pattern or fnmatch.fnmatchcase(name, pattern)

    unmatched = [p for p in patterns if not any(matches(t.name, p) for t in tasks)]
    if unmatched:
        raise KernelPatternError(unmatched, [t.name for t in tasks])
    return [t for t in tasks if any(matches(t.name, p) for p in patterns)]
