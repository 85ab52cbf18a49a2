"""Schedule reuse: a kernel scope structurally identical to one scheduled before gets a
copy of that schedule's result instead of running the strategy again.

A ResNet-50 has 117 kernel scopes (162 kernels) but 51 distinct ones. For a strategy whose decisions
depend only on a scope's structure (`structural = True`: iterators, index maps, body,
buffer shapes and types; not labels, names or what surrounds the scope), scheduling a
scope equal to an earlier one (`kernel_scope.structural_key`) is the earlier result with
its buffers and labels substituted:

    scheduled once:   tl.for ... { tl.block "conv_3" ... ins(%7[...], %w3[...]) ... }
    reused:           tl.for ... { tl.block "conv_9" ... ins(%21[...], %w9[...]) ... }

and its schedule text is the earlier one's, relabelled. The result is the same IR the
strategy would have built (tests compare the two on whole models). A scope is reused
only where that is certain: every label the schedule made derives from a kernel label of
the scope (`<label>` or `<label>_<suffix>`), no kernel of the scope is left unscheduled
(an epilogue that did not fuse is scheduled on its own later), the schedule uses no value
from outside
the scope that the scope did not use before, no value the scope defines is used outside
it, and the renamed labels are new to the module.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from xdsl.dialects.builtin import ModuleOp
from xdsl.ir import Operation, SSAValue

from mlc.dialects.tl import KernelOp
from mlc.transforms.loops.kernel_scope import (
    captures,
    labels_under,
    relabel,
    renamed,
    scope_key,
)
from mlc.transforms.loops.schedule import Step, parse_schedule

__all__ = ["ScheduleReuse", "ScopeShape"]


@dataclass(frozen=True)
class ScopeShape:
    """An unscheduled kernel scope's structural key, the values it uses from outside (in
    order of first use) and its kernels' labels (in order)."""

    key: str
    used: list[SSAValue]
    labels: list[str]


@dataclass(frozen=True)
class _Template:
    """A scope scheduled before: its ops (in the module again, unchanged until the
    scheduling of the module ends), the values its unscheduled form used from outside,
    its kernels' labels, the labels its schedule made, and the schedule's steps."""

    ops: list[Operation]
    used: list[SSAValue]
    kernel_labels: list[str]
    made_labels: list[str]
    steps: tuple[Step, ...]


def _defines_for_outside(scope: ModuleOp) -> bool:
    """Some value defined in `scope` is used outside it."""
    for op in scope.walk():
        for result in op.results:
            for use in result.uses:
                if use.operation.get_toplevel_object() is not scope:
                    return True
    return False


def _relabelled_steps(steps: Sequence[Step], mapping: dict[str, str]) -> tuple[Step, ...]:
    def arg(a: str) -> str:
        label, slash, loop = a.partition("/")
        new = renamed(label, mapping, suffixes=True)
        return a if new is None else new + slash + loop

    return tuple(Step(s.verb, tuple(arg(a) for a in s.args)) for s in steps)


class ScheduleReuse:
    """Scheduled kernel scopes by structural key (see the module docstring)."""

    def __init__(self) -> None:
        self._templates: dict[str, _Template] = {}
        #: scopes scheduled by copying an earlier result
        self.reused = 0

    @staticmethod
    def shape(scope: ModuleOp) -> ScopeShape:
        """The unscheduled `scope`'s shape."""
        return ScopeShape(*scope_key(list(scope.body.block.ops)))

    def record(self, shape: ScopeShape, scope: ModuleOp, text: str) -> None:
        """Keep `scope`, just scheduled by the schedule `text`, for scopes of `shape`."""
        if shape.key in self._templates or _defines_for_outside(scope):
            return
        ops = list(scope.body.block.ops)
        if any(isinstance(op, KernelOp) for op in ops):
            return  # a kernel left for later (an epilogue that did not fuse): schedule each
        if not set(captures(ops)) <= set(shape.used):
            return
        mapping = {label: label for label in shape.labels}
        made = labels_under(ops)
        if any(renamed(label, mapping, suffixes=True) is None for label in made):
            return
        steps = tuple(parse_schedule(text)) if text else ()
        self._templates[shape.key] = _Template(ops, shape.used, shape.labels, made, steps)

    def reuse(self, shape: ScopeShape, scope: ModuleOp, taken: set[str]) -> str | None:
        """Replace the unscheduled `scope` by a copy of the recorded schedule result for
        its shape, relabelled; returns the schedule's text. None (and `scope` untouched)
        where there is none, or its labels would clash with `taken`."""
        template = self._templates.get(shape.key)
        if template is None or _defines_for_outside(scope):
            return None
        mapping = dict(zip(template.kernel_labels, shape.labels))
        made = [renamed(label, mapping, suffixes=True) for label in template.made_labels]
        if len(set(made)) != len(made) or any(label in taken for label in made):
            return None
        for op in reversed(list(scope.body.block.ops)):  # users before what they use
            op.detach()
            op.erase()
        to_value: dict[SSAValue, SSAValue] = dict(zip(template.used, shape.used))
        for op in template.ops:
            scope.body.block.add_op(op.clone(value_mapper=to_value))
        relabel(scope, mapping, suffixes=True)
        self.reused += 1
        return "".join(f"{s}\n" for s in _relabelled_steps(template.steps, mapping))
