"""Python helpers building tl IR concisely: kernels from index strings and a body
callback, loop nests."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import cast

from xdsl.builder import Builder, InsertPoint
from xdsl.dialects.builtin import MemRefType, UnitAttr
from xdsl.ir import Attribute, Block, BlockArgument, Operation, Region, SSAValue
from xdsl.ir.affine import AffineExpr, AffineMap

from mlc.dialects.tl.affine import parse_index_list
from mlc.dialects.tl.attrs import IteratorAttr
from mlc.dialects.tl.base import YieldOp, scalar_attr
from mlc.dialects.tl.loops import ForOp
from mlc.dialects.tl.structured import KernelOp

IndexSpec = str | AffineMap | Sequence[AffineExpr | int]


@dataclass
class Access:
    """An operand of a kernel under construction: the buffer, its indices over the
    iterators (`"m, k"`, `"oh * 2 + kh - 1, ..."`, an `AffineMap` or expressions) and a
    pad value (inputs) or init value (outputs)."""

    value: SSAValue | Operation
    indices: IndexSpec
    value_if_absent: float | int | None = None


def _to_access(spec: object) -> Access:
    if isinstance(spec, Access):
        return spec
    if isinstance(spec, tuple) and len(spec) in (2, 3):
        return Access(*spec)  # type: ignore[arg-type]
    raise TypeError(f"expected Access or (value, indices[, pad/init]), got {spec!r}")


def _index_map(spec: IndexSpec, names: Sequence[str]) -> AffineMap:
    if isinstance(spec, AffineMap):
        return spec
    if isinstance(spec, str):
        exprs = parse_index_list(spec, names)
    else:
        exprs = [AffineExpr.constant(e) if isinstance(e, int) else e for e in spec]
    return AffineMap(len(names), 0, tuple(exprs))


BodyFn = Callable[
    [Builder, Sequence[BlockArgument]], SSAValue | Operation | Sequence[SSAValue | Operation]
]


def build_body(element_types: Sequence[Attribute], body: BodyFn) -> Region:
    """A body region: `body(builder, args)` inserts scalar ops and returns the values to
    yield (one per output)."""
    block = Block(arg_types=list(element_types))
    builder = Builder(InsertPoint.at_end(block))
    result = body(builder, block.args)
    if isinstance(result, SSAValue | Operation):
        result = [result]
    values = [SSAValue.get(v) for v in result]
    builder.insert(YieldOp(*values))
    return Region(block)


def build_kernel(
    label: str,
    iterators: Sequence[tuple[str, int, str] | tuple[str, int] | IteratorAttr],
    inputs: Sequence[Access | tuple],
    outputs: Sequence[Access | tuple],
    body: BodyFn,
) -> KernelOp:
    """Build a `tl.kernel` concisely:

    build_kernel(
        "matmul",
        [("m", 64, "parallel"), ("n", 32, "parallel"), ("k", 16, "reduction")],
        inputs=[(A, "m, k"), (B, "k, n")],
        outputs=[(C, "m, n", 0.0)],          # third item: init (outputs) / pad (inputs)
        body=lambda b, args: b.insert(arith.AddfOp(args[2], b.insert(
            arith.MulfOp(args[0], args[1])).result)).result,
    )
    """
    iters = [it if isinstance(it, IteratorAttr) else IteratorAttr(*it) for it in iterators]
    names = [it.label for it in iters]
    ins = [_to_access(s) for s in inputs]
    outs = [_to_access(s) for s in outputs]
    maps = [_index_map(a.indices, names) for a in (*ins, *outs)]
    types = [cast(MemRefType, SSAValue.get(a.value).type) for a in (*ins, *outs)]
    extras: list[Attribute] = [
        UnitAttr() if a.value_if_absent is None else scalar_attr(a.value_if_absent, t.element_type)
        for a, t in zip((*ins, *outs), types)
    ]
    region = build_body([t.element_type for t in types], body)
    return KernelOp(
        label,
        iters,
        [a.value for a in ins],
        [a.value for a in outs],
        maps,
        extras[: len(ins)],
        extras[len(ins) :],
        region,
    )


def build_loop_nest(
    builder: Builder, bounds: Sequence[tuple[int, int, int] | int]
) -> tuple[list[ForOp], Builder]:
    """Insert perfectly nested serial `tl.for`s (`(lb, ub, step)` or an extent each) and
    return them with a builder positioned inside the innermost one."""
    loops: list[ForOp] = []
    for b in bounds:
        lb, ub, step = (0, b, 1) if isinstance(b, int) else b
        loop = ForOp(lb, ub, step)
        builder.insert(loop)
        loops.append(loop)
        builder = loop.body_builder()
    return loops, builder
