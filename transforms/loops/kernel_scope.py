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

from mlc.dialects.text import attribute_text
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
    """The structural key of `ops` (a hash of their structure with canonical labels and
    unnamed values: op names, operands by position, types, properties, attributes,
    regions, successors; the types of the values they use from outside appended), those
    values in order of first use, and the ops' labels. It tells apart what
    `structural_key` of `standalone_module(ops)` tells apart, without copying or printing
    `ops` (an attribute is printed once per process)."""
    used = captures(ops)
    numbers: dict[SSAValue, int] = {v: i for i, v in enumerate(used)}
    labels: list[str] = []
    tokens: list[str] = []
    for op in ops:
        _fingerprint_op(op, numbers, labels, tokens)
        tokens.append("\n")
    tokens.append(" ".join(attribute_text(v.type) for v in used))
    digest = hashlib.sha256("\x1f".join(tokens).encode()).hexdigest()[:24]
    return digest, used, labels


def _fingerprint_op(
    op: Operation, numbers: dict[SSAValue, int], labels: list[str], tokens: list[str]
) -> None:
    """Append `op`'s structure to `tokens` (values numbered in order of definition, the
    labels of kernels and blocks canonical, in walk order)."""
    labelled = isinstance(op, KernelOp | BlockOp)
    if labelled:
        labels.append(op.label.data)  # type: ignore[attr-defined]
    tokens.append(op.name)
    tokens.append(",".join(str(numbers[v]) for v in op.operands))
    for kind, attrs in (("p", op.properties), ("a", op.attributes)):
        for name, attr in attrs.items():
            if labelled and name == "label":
                text = canonical_label(len(labels) - 1)
            else:
                text = attribute_text(attr)
            tokens.append(f"{kind}:{name}={text}")
    for v in op.results:
        numbers[v] = len(numbers)
        tokens.append(attribute_text(v.type))
    if op.successors:  # blocks of the region holding `op`, by position
        region = op.parent_region()
        siblings = list(region.blocks) if region is not None else []
        tokens.append("->" + ",".join(str(siblings.index(b)) for b in op.successors))
    for region in op.regions:
        tokens.append("{")
        for block in region.blocks:
            tokens.append("^")
            for arg in block.args:
                numbers[arg] = len(numbers)
                tokens.append(attribute_text(arg.type))
            for inner in block.ops:
                _fingerprint_op(inner, numbers, labels, tokens)
        tokens.append("}")


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
