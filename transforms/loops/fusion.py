"""Kernel fusion at the structured `tl` level: an elementwise producer is inlined into its
only consumer (TVM's `compute_inline`), so chains of elementwise ops become one kernel and
their intermediate buffers disappear.

    %t = memref.alloc() : memref<4x8xf32>
    tl.kernel "bn" iterators(i: 4 parallel, j: 8 parallel)
        ins(%x[i, j] : ..., %s[j] : ...) outs(%t[i, j] : ...) { %y = mulf %a, %b ... }
    tl.kernel "relu" iterators(p: 4 parallel, q: 8 parallel)
        ins(%t[p, q] : ...) outs(%out[p, q] : ...) { %r = maximumf %v, 0 ... }

becomes

    tl.kernel "bn_relu" iterators(p: 4 parallel, q: 8 parallel)
        ins(%x[p, q] : ..., %s[q] : ...) outs(%out[p, q] : ...) {
      %y = mulf %a, %b ; %r = maximumf %y, 0 ... }

The producer must be a `tl.kernel` without reduction iterators whose single output is a
`memref.alloc`'d buffer written at plain iterators (a permutation: every point is written
once), whose body does not read its output or use `tl.index`; the buffer must have exactly
one other user, a `tl.kernel` that reads it without a pad guard (or with one that never
fires) and, if that kernel reduces, reads each element once (a matmul rereads A[m, k]
for every column: inlining a ReLU there would recompute it N times; the ReLU becomes the
producing kernel's in-place epilogue instead, `fuse_epilogues`). The consumer's read `T[f(q)]` then means the producer's iterators are `f(q)`, and
the producer's inputs are read at their maps composed with `f`.
"""

from __future__ import annotations

from dataclasses import dataclass

from xdsl.context import Context
from xdsl.dialects import memref
from xdsl.dialects.builtin import ModuleOp, UnitAttr
from xdsl.ir import Block, Operation, Region, SSAValue
from xdsl.ir.affine import AffineDimExpr, AffineExpr, AffineMap
from xdsl.passes import ModulePass

from mlc.dialects.tl import IndexOp, KernelOp, YieldOp, linear_form
from mlc.lowering.tl_vector_to_llvm import always_in_bounds
from mlc.transforms.loops.common import loop_structure

__all__ = [
    "TlFuseEpiloguesPass",
    "TlInlineElementwisePass",
    "epilogue_in_place",
    "fuse_epilogues",
    "inline_elementwise",
    "inline_into_consumer",
]


def _producer_of(kernel: KernelOp) -> tuple[SSAValue, KernelOp] | None:
    """(the buffer, its consumer) if `kernel` can be inlined (see the module docstring)."""
    if kernel.reduction_dims or len(kernel.outputs) != 1:
        return None
    if kernel.init_values[0] is None and kernel.body_block.args[-1].uses:
        return None  # reads the buffer's previous contents
    if any(isinstance(op, IndexOp) for op in kernel.body_block.ops):
        return None
    buffer = kernel.outputs[0]
    if not isinstance(buffer.owner, memref.AllocOp):
        return None
    out_map = kernel.output_maps[0]
    dims = [e.position for e in out_map.results if isinstance(e, AffineDimExpr)]
    if len(dims) != len(out_map.results) or sorted(dims) != list(range(len(kernel.extents))):
        return None
    users = {u.operation for u in buffer.uses} - {kernel}
    if any(isinstance(u, memref.DeallocOp) for u in users):
        users = {u for u in users if not isinstance(u, memref.DeallocOp)}
    if len(users) != 1:
        return None
    (consumer,) = users
    if not isinstance(consumer, KernelOp) or consumer.parent_block() is not kernel.parent_block():
        return None
    if buffer in consumer.outputs or list(consumer.inputs).count(buffer) != 1:
        return None
    j = list(consumer.inputs).index(buffer)
    if consumer.reduction_dims and not _reads_once(consumer, consumer.maps[j]):
        return None  # a contraction rereads its inputs: inlining would recompute them
    if consumer.pad_values[j] is not None and not always_in_bounds(
        consumer,
        consumer.maps[j],
        buffer.type.get_shape(),  # type: ignore[attr-defined]
    ):
        return None
    return buffer, consumer


def _reads_once(consumer: KernelOp, read: AffineMap) -> bool:
    """`read` uses every parallel iterator of `consumer` linearly: no element it reads is
    read again for another output point (a matmul's A[m, k] is read once per column n; a
    grouped conv's X[n, m / MG * CG + c, ...] once per output channel m of a group, as
    `m` is only under a division)."""
    used: set[int] = set()
    for e in read.results:
        coeffs, _, _ = linear_form(e)
        used |= {d for d, k in coeffs.items() if k}
    return all(d in used for d in consumer.parallel_dims)


def _fused_label(producer: str, consumer: str) -> str:
    """`producer_consumer`, or for long chains the first and last names only (a chain of
    n kernels would otherwise carry a label of n names)."""
    joined = f"{producer}_{consumer}"
    if len(joined) <= 48:
        return joined
    return f"{producer.split('_')[0]}_{consumer.rsplit('_', 1)[-1]}_fused"


def _fused_body(producer: KernelOp, consumer: KernelOp, j: int) -> Block:
    """The consumer's body block, taken over and extended in place (linear in the
    producer's body, however long the consumer's: a chain fuses in linear time): its
    arguments become [consumer inputs but #j, producer inputs, consumer outputs], the
    producer's body ops move in front, and what read input #j reads the producer's
    yielded value. Both kernels are left with empty bodies."""
    block = consumer.body.detach_block(0)
    c_read = block.args[j]
    n_cin, p_body = len(consumer.inputs), producer.body_block
    n_pin = len(producer.inputs)
    for k, p_arg in enumerate(p_body.args[:n_pin]):
        p_arg.replace_all_uses_with(block.insert_arg(p_arg.type, n_cin + k))
    first = block.first_op
    for op in list(p_body.ops):
        op.detach()
        if isinstance(op, YieldOp):
            c_read.replace_all_uses_with(op.arguments[0])
            op.erase()
        elif first is not None:
            block.insert_op_before(op, first)
        else:
            block.add_op(op)
    block.erase_arg(c_read)
    return block


def inline_into_consumer(producer: KernelOp) -> KernelOp | None:
    """Inline `producer` into its consumer; returns the fused kernel (None: not legal)."""
    found = _producer_of(producer)
    if found is None:
        return None
    buffer, consumer = found
    j = list(consumer.inputs).index(buffer)
    read = consumer.maps[j]  # over the consumer's iterators
    # producer iterator d = the consumer's expression at the position d is written
    written = [e.position for e in producer.output_maps[0].results]  # type: ignore[union-attr]
    at: list[AffineExpr] = [AffineExpr.constant(0)] * len(written)
    for position, d in enumerate(written):
        at[d] = read.results[position]
    n_iters = len(consumer.extents)
    inputs = [v for k, v in enumerate(consumer.inputs) if k != j] + list(producer.inputs)
    maps = [m for k, m in enumerate(consumer.input_maps) if k != j]
    maps += [
        AffineMap(n_iters, 0, tuple(e.replace_dims_and_symbols(at, []) for e in m.results))
        for m in producer.input_maps
    ]
    maps += list(consumer.output_maps)
    pads = [p for k, p in enumerate(consumer.pad_values) if k != j] + list(producer.pad_values)
    inits = [init if init is not None else UnitAttr() for init in consumer.init_values]
    fused = KernelOp(
        _fused_label(producer.label.data, consumer.label.data),
        consumer.iterator_list,
        inputs,
        list(consumer.outputs),
        maps,
        [p if p is not None else UnitAttr() for p in pads],
        inits,
        Region(_fused_body(producer, consumer, j)),
        attributes=dict(consumer.attributes),
    )
    parent = consumer.parent_block()
    assert parent is not None
    parent.insert_op_before(fused, consumer)
    parent.erase_op(consumer)
    parent.erase_op(producer)
    alloc = buffer.owner
    assert isinstance(alloc, Operation)
    for use in list(buffer.uses):
        use.operation.parent_block().erase_op(use.operation)  # type: ignore[union-attr]
    alloc.parent_block().erase_op(alloc)  # type: ignore[union-attr]
    return fused


def inline_elementwise(root: Operation) -> int:
    """Inline every inlinable elementwise kernel under `root` (repeatedly: a chain folds
    into its last kernel); returns how many were inlined."""
    count = 0
    changed = True
    while changed:  # last kernel first: a chain folds into its consumer in one sweep
        changed = False
        for kernel in reversed([op for op in loop_structure(root) if isinstance(op, KernelOp)]):
            if kernel.parent is not None and inline_into_consumer(kernel) is not None:
                count += 1
                changed = True
    return count


@dataclass(frozen=True)
class TlInlineElementwisePass(ModulePass):
    """`tl-inline-elementwise`: fuse elementwise producer kernels into their consumers."""

    name = "tl-inline-elementwise"

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        inline_elementwise(op)


def epilogue_in_place(producer: KernelOp) -> KernelOp | None:
    """Make the elementwise consumer of a reduction's output update the final buffer in
    place: the producer writes the consumer's output buffer directly and the consumer
    reads the value there (no intermediate buffer). Returns the rewritten consumer.

        tl.kernel "mm" ... outs(%t[m, n] init 0.0 ...)
        tl.kernel "relu" ... ins(%t[p, q] ...) outs(%y[p, q] ...) { max(%v, 0) }
    ->  tl.kernel "mm" ... outs(%y[m, n] init 0.0 ...)
        tl.kernel "mm_relu" ... outs(%y[p, q] ...) { max(%y_value, 0) }

    The schedule later moves the consumer into the producer's tile loop
    (`reverse_compute_at`), so each tile is finished while it is in registers or cache."""
    if not producer.reduction_dims or len(producer.outputs) != 1:
        return None
    buffer = producer.outputs[0]
    if not isinstance(buffer.owner, memref.AllocOp):
        return None
    users = {u.operation for u in buffer.uses if not isinstance(u.operation, memref.DeallocOp)}
    users.discard(producer)
    # earlier writers of the buffer (a bias fill before the accumulation) move along
    writers = [
        u
        for u in users
        if isinstance(u, KernelOp)
        and buffer in u.outputs
        and buffer not in u.inputs
        and _before(u, producer)
    ]
    readers = users - set(writers)
    if len(readers) != 1:
        return None
    (consumer,) = readers
    if (
        not isinstance(consumer, KernelOp)
        or consumer.parent_block() is not producer.parent_block()
        or consumer.reduction_dims
        or len(consumer.outputs) != 1
        or buffer in consumer.outputs
        or list(consumer.inputs).count(buffer) != 1
        or consumer.init_values[0] is not None
        or consumer.body_block.args[-1].uses
    ):
        return None
    j = list(consumer.inputs).index(buffer)
    target = consumer.outputs[0]
    if (
        consumer.pad_values[j] is not None
        or not _same_points(consumer, consumer.input_maps[j], consumer.output_maps[0])
        or target.type != buffer.type
    ):
        return None
    first = min([producer, *writers], key=lambda k: k.parent_block().get_operation_index(k))  # type: ignore[union-attr]
    if _defined_after(target, first):
        alloc = target.owner
        if not isinstance(alloc, memref.AllocOp) or alloc.operands:
            return None
        alloc.detach()  # allocate the final buffer before the first write
        first.parent_block().insert_op_before(alloc, first)  # type: ignore[union-attr]
    n_in = len(consumer.inputs)
    c_args = consumer.body_block.args
    block = Block(arg_types=[a.type for k, a in enumerate(c_args) if k != j])
    mapping: dict[SSAValue, SSAValue] = {}
    kept = [a for k, a in enumerate(c_args) if k != j]
    for old, new in zip(kept, block.args):
        mapping[old] = new
    mapping[c_args[j]] = block.args[-1]  # the value is read from the output itself
    for op in consumer.body_block.ops:
        block.add_op(op.clone(value_mapper=mapping))
    keep = [k for k in range(n_in) if k != j]
    fused = KernelOp(
        f"{producer.label.data}_{consumer.label.data}",
        consumer.iterator_list,
        [consumer.inputs[k] for k in keep],
        [target],
        [consumer.input_maps[k] for k in keep] + list(consumer.output_maps),
        [consumer.pads.data[k] for k in keep],
        [UnitAttr()],
        Region(block),
        attributes=dict(consumer.attributes),
    )
    parent = consumer.parent_block()
    assert parent is not None
    for writer in [producer, *writers]:
        writer.operands = [target if v is buffer else v for v in writer.operands]
    for value in consumer.inputs:  # constants the epilogue reads: defined before the nest
        owner = value.owner
        if isinstance(owner, memref.GetGlobalOp) and _before(first, owner):
            owner.detach()
            parent.insert_op_before(owner, first)
    parent.insert_op_before(fused, consumer)
    parent.erase_op(consumer)
    for use in list(buffer.uses):
        use.operation.parent_block().erase_op(use.operation)  # type: ignore[union-attr]
    alloc = buffer.owner
    alloc.parent_block().erase_op(alloc)  # type: ignore[union-attr]
    return fused


def _same_points(kernel: KernelOp, a: AffineMap, b: AffineMap) -> bool:
    """`a` and `b` give the same element at every point (iterators of extent 1 are 0)."""
    at = [
        AffineExpr.constant(0) if n == 1 else AffineExpr.dimension(d)
        for d, n in enumerate(kernel.extents)
    ]
    return [e.replace_dims_and_symbols(at, []) for e in a.results] == [
        e.replace_dims_and_symbols(at, []) for e in b.results
    ]


def _before(a: Operation, b: Operation) -> bool:
    """`a` comes before `b` in the same block."""
    block = b.parent_block()
    return (
        block is not None
        and a.parent_block() is block
        and block.get_operation_index(a) < block.get_operation_index(b)
    )


def _defined_after(value: SSAValue, op: Operation) -> bool:
    """`value` is defined by an op after `op` in the same block (not usable by `op`)."""
    owner = value.owner
    if not isinstance(owner, Operation) or owner.parent_block() is not op.parent_block():
        return False
    block = op.parent_block()
    assert block is not None
    return block.get_operation_index(owner) > block.get_operation_index(op)


def fuse_epilogues(root: Operation) -> int:
    """`epilogue_in_place` for every reduction kernel under `root`; returns the count."""
    return sum(
        epilogue_in_place(k) is not None
        for k in [op for op in root.walk() if isinstance(op, KernelOp)]
        if k.parent is not None
    )


@dataclass(frozen=True)
class TlFuseEpiloguesPass(ModulePass):
    """`tl-fuse-epilogues`: make elementwise consumers of reductions update the
    reduction's final buffer in place (`epilogue_in_place`); the default schedule then
    moves them into the reduction's tile loop."""

    name = "tl-fuse-epilogues"

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        fuse_epilogues(op)
