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
import hashlib
import io
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from xdsl.dialects import func
from xdsl.dialects.builtin import MemRefType, ModuleOp, StringAttr
from xdsl.ir import Block, Operation, Region, SSAValue
from xdsl.printer import Printer

from mlc.dialects.tl import BlockOp, KernelOp
from mlc.transforms.loops.default_schedule import apply_default_schedules
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


class TaskError(ValueError):
    """A kernel that cannot be tuned on its own (e.g. it uses a non-buffer value)."""


class KernelPatternError(ValueError):
    """Kernel-name patterns (`select_tasks`) of which some match no task."""

    def __init__(self, unmatched: Sequence[str], names: Sequence[str]) -> None:
        self.unmatched = list(unmatched)
        self.names = list(names)
        quoted = ", ".join(repr(p) for p in self.unmatched)
        super().__init__(
            f"no kernel matches {quoted}; the kernels are: {', '.join(self.names) or '(none)'}"
        )


def canonical_label(index: int) -> str:
    """The label of the `index`-th kernel of a task."""
    return f"t{index}"


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
    from mlc.parser.mlir import parse_module
    from mlc.registry import make_context

    return parse_module(make_context(), text, "<task>")


# ---------------------------------------------------------------------- standalone


def _captures(ops: Sequence[Operation]) -> list[SSAValue]:
    """Values the ops use that none of them defines, in order of first use."""
    inside: set[SSAValue] = set()
    for op in ops:
        for inner in op.walk():
            inside.update(inner.results)
            for region in inner.regions:
                for block in region.blocks:
                    inside.update(block.args)
    seen: dict[SSAValue, None] = {}
    for op in ops:
        for inner in op.walk():
            for v in inner.operands:
                if v not in inside:
                    seen.setdefault(v, None)
    return list(seen)


def standalone_module(ops: Sequence[Operation]) -> tuple[ModuleOp, list[str]]:
    """A module with one function `@task` holding copies of `ops`, the buffers they use
    from outside as its arguments; kernels labelled `t0`, `t1`, ... in order and every
    SSA name hint dropped (so equal structures print equally). Returns the module and
    the kernels' original labels. `ops` are not modified."""
    captures = _captures(ops)
    for v in captures:
        if not isinstance(v.type, MemRefType):
            raise TaskError(f"the kernel uses a non-buffer value of type {v.type}")
    block = Block(arg_types=[v.type for v in captures])
    mapping: dict[SSAValue, SSAValue] = dict(zip(captures, block.args))
    for op in ops:
        block.add_op(op.clone(value_mapper=mapping))
    block.add_op(func.ReturnOp())
    f = func.FuncOp(TASK_FUNCTION, ([v.type for v in captures], []), Region(block))
    module = ModuleOp([f])
    labels: list[str] = []
    for op in module.walk():
        if isinstance(op, KernelOp | BlockOp):
            labels.append(op.label.data)
            op.label = StringAttr(canonical_label(len(labels) - 1))
        for v in op.results:
            v.name_hint = None
        for region in op.regions:
            for b in region.blocks:
                for arg in b.args:
                    arg.name_hint = None
    return module, labels


def structural_key(module: ModuleOp) -> str:
    """SHA-256 (24 hex digits) of the module's text: its kernels' iterators, index maps,
    body, buffer shapes and element types (labels and names are canonical)."""
    out = io.StringIO()
    Printer(out).print_op(module)
    return hashlib.sha256(out.getvalue().encode()).hexdigest()[:24]


def _work(module: ModuleOp) -> int:
    total = 0
    for op in module.walk():
        if isinstance(op, KernelOp):
            points = math.prod(it.extent.data for it in op.iterator_list)
            total += points * max(1, sum(1 for _ in op.body.walk()) - 1)
    return total


def _arguments(module: ModuleOp) -> tuple[tuple[tuple[int, ...], str], ...]:
    from mlc.interpreters.tl.buffers import numpy_dtype

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
    from mlc.targets.compiled import cpu_pipeline
    from mlc.targets.pipeline import StrategySchedulePass

    passes = cpu_pipeline(**options).passes(module, _Marker())  # type: ignore[arg-type]
    end = next(i for i, p in enumerate(passes) if isinstance(p, StrategySchedulePass))
    return passes[:end]


def load_module(
    model: ModuleOp | str | os.PathLike[str] | bytes | Any,
    input_shapes: dict[str, list[int]] | None = None,
) -> ModuleOp:
    """`model` (ONNX path / bytes / ModelProto, `.mlir` path or module) as a module (a
    copy)."""
    from mlc.registry import make_context

    if isinstance(model, ModuleOp):
        return model.clone()
    if isinstance(model, str | os.PathLike) and os.fspath(model).endswith(".mlir"):
        from pathlib import Path

        from mlc.parser.mlir import parse_module

        return parse_module(make_context(), Path(model).read_text(), os.fspath(model))
    from mlc.parser.onnx import import_onnx

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
    from mlc.registry import make_context

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


def canonical_labels(ops: Sequence[Operation]) -> dict[str, str]:
    """Canonical label -> label of each kernel among `ops`, in order (the inverse of
    `standalone_module`'s renaming)."""
    labels = [op.label.data for o in ops for op in o.walk() if isinstance(op, KernelOp | BlockOp)]
    return {canonical_label(i): label for i, label in enumerate(labels)}
