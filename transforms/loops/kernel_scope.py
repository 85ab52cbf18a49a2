"""Kernel scopes as standalone modules: the unit that scheduling, tuning and schedule
reuse share.

A kernel scope is what one `ScheduleStrategy.schedule_kernel` call is handed: a
`tl.kernel` (with the elementwise kernel that finishes its output in place, if any).
`standalone_module` copies it into a module of its own, the buffers it uses from outside
as function arguments and its labels canonical (`t0`, `t1`, ...), so that structurally
identical scopes print identically and share one `structural_key`:

    tl.kernel "conv_7" ... ins(%12[...], %w3[...]) outs(%13[...]) {...}
 -> func.func @task(%0: memref<...>, %1: memref<...>, %2: memref<...>) {
      tl.kernel "t0" ... ins(%0[...], %1[...]) outs(%2[...]) {...}
      func.return
    }

`relabel` renames labels back and forth (`conv_7 -> t0`, and the blocks a schedule made
from it, `t0_init -> conv_7_init`).
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Iterable, Mapping, Sequence

from xdsl.dialects import func
from xdsl.dialects.builtin import MemRefType, ModuleOp, StringAttr
from xdsl.ir import Block, Operation, Region, SSAValue
from xdsl.printer import Printer

from mlc.dialects.tl import BlockOp, KernelOp

__all__ = [
    "ScopeError",
    "canonical_label",
    "canonical_labels",
    "captures",
    "labels_under",
    "relabel",
    "renamed",
    "scope_key",
    "standalone_module",
    "structural_key",
]


class ScopeError(ValueError):
    """A kernel scope that cannot stand alone (e.g. it uses a non-buffer value)."""


def canonical_label(index: int) -> str:
    """The canonical label of the `index`-th kernel or block of a scope."""
    return f"t{index}"


def labels_under(ops: Iterable[Operation]) -> list[str]:
    """The labels of the kernels and blocks among `ops`, in walk order."""
    return [op.label.data for o in ops for op in o.walk() if isinstance(op, KernelOp | BlockOp)]


def canonical_labels(ops: Sequence[Operation]) -> dict[str, str]:
    """Canonical label -> label of each kernel and block among `ops`, in order (the inverse
    of `standalone_module`'s renaming)."""
    return {canonical_label(i): label for i, label in enumerate(labels_under(ops))}


def captures(ops: Sequence[Operation]) -> list[SSAValue]:
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


def standalone_module(
    ops: Sequence[Operation], function: str = "task"
) -> tuple[ModuleOp, list[str]]:
    """A module with one function `@<function>` holding copies of `ops`, the buffers they
    use from outside as its arguments; kernels and blocks labelled `t0`, `t1`, ... in
    order and every SSA name hint dropped (so equal structures print equally). Returns the
    module and the original labels. `ops` are not modified."""
    used = captures(ops)
    for v in used:
        if not isinstance(v.type, MemRefType):
            raise ScopeError(f"the kernel uses a non-buffer value of type {v.type}")
    block = Block(arg_types=[v.type for v in used])
    mapping: dict[SSAValue, SSAValue] = dict(zip(used, block.args))
    for op in ops:
        block.add_op(op.clone(value_mapper=mapping))
    block.add_op(func.ReturnOp())
    f = func.FuncOp(function, ([v.type for v in used], []), Region(block))
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


def scope_key(ops: Sequence[Operation]) -> tuple[str, list[SSAValue], list[str]]:
    """The structural key of `ops` in this process (a hash of their text with canonical
    labels and unnamed values, the types of the values they use from outside appended),
    those values in order of first use, and the ops' labels. Equal to `structural_key` of
    `standalone_module(ops)` in what it tells apart, without copying `ops`: they are
    renamed while printed, then restored."""
    used = captures(ops)
    labelled = [op for o in ops for op in o.walk() if isinstance(op, KernelOp | BlockOp)]
    labels = [op.label.data for op in labelled]
    named = [v for v in used if v.name_hint]
    for o in ops:
        for op in o.walk():
            named += [v for v in op.results if v.name_hint]
            named += [a for r in op.regions for b in r.blocks for a in b.args if a.name_hint]
    hints = [v.name_hint for v in named]
    out = io.StringIO()
    try:
        for i, op in enumerate(labelled):
            op.label = StringAttr(canonical_label(i))
        for v in named:
            v.name_hint = None
        printer = Printer(out)
        for op in ops:
            printer.print_op(op)
            out.write("\n")
    finally:
        for op, label in zip(labelled, labels):
            op.label = StringAttr(label)
        for v, hint in zip(named, hints):
            v.name_hint = hint
    out.write(" ".join(str(v.type) for v in used))
    return hashlib.sha256(out.getvalue().encode()).hexdigest()[:24], used, labels


def renamed(label: str, mapping: Mapping[str, str], suffixes: bool = False) -> str | None:
    """`label` under `old -> new` in `mapping` (the longest `old` that matches); with
    `suffixes`, `old_<suffix>` (a block a schedule step made from `old`) becomes
    `new_<suffix>` too. None where no `old` matches."""
    for old in sorted(mapping, key=len, reverse=True):
        if label == old or (suffixes and label.startswith(old + "_")):
            return mapping[old] + label[len(old) :]
    return None


def relabel(root: Operation, mapping: Mapping[str, str], suffixes: bool = False) -> None:
    """Rename every kernel / block label under `root` by `renamed` (labels no `old`
    matches stay)."""
    for op in root.walk():
        if isinstance(op, KernelOp | BlockOp):
            new = renamed(op.label.data, mapping, suffixes)
            if new is not None:
                op.label = StringAttr(new)
