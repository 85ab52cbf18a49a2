"""`tl-fuse-outer-loops`: adjacent top-level loop nests over the same range become one,
when each iteration of both touches only its own slice of every buffer they share.

A softmax over rows is four kernels (row max, `exp(x - max)`, row sum, division); once
scheduled, each is a loop over the rows, and the intermediate `exp` buffer makes a round
trip through memory between them. Fused, one row is finished before the next starts and
its intermediates are still in the L1 cache when they are read again:

    tl.for %i = 0 to 256 { tl.block "max" ... ins(%x[i, j]) outs(%m[i]) ... }
    tl.for %i2 = 0 to 256 { tl.block "exp" ... ins(%x[i, j], %m[i]) outs(%e[i, j]) ... }
 ->
    tl.for %i = 0 to 256 {
      tl.block "max" ... ins(%x[i, j]) outs(%m[i]) ...
      tl.block "exp" ... ins(%x[i, j], %m[i]) outs(%e[i, j]) ...
    }

Legality (checked on the index maps composed with the blocks' bindings): for every buffer
the two nests share and at least one of them writes, every access of both indexes one
and the same buffer axis by exactly the loop variable and no other axis by it. Iteration
`i` then touches only slice `i` of that buffer, so only accesses of the same iteration
can depend on each other, and fusion keeps their order. Nests are fused when both loops
have the same bounds and step, run at least twice (fusing one iteration changes no order
and only merges kernels, which defeats their deduplication) and are serial or parallel
(not vectorized or unrolled), contain only loops and `tl.block`s, and use whole
buffers (function arguments, `memref.alloc` or `memref.get_global` results: no views,
so distinct values never overlap). The fused loop is parallel if either was and every write of a serial one is
sliced by its loop variable (its iterations are independent too).

A nest is fused only when data flows into it: it touches a buffer the first writes.
Unrelated nests gain nothing from fusion, and kept apart, identical ones stay one
deduplicated kernel. A fill (a nest without inputs, a reduction's initial value) first
moves down to just before the first op using what it writes, and goes with the nest
after it when that one reads from both.

Single-iteration loops around a nest (a batch of one: `tl.for %n = 0 to 1`) are looked
through: nests fuse on the first loop that runs more than once (a pooling's channel
loop, under its batch loop), when their single-iteration loops have the same ranges.

A group of nests is fused only when an intermediate buffer (allocated by the function and
not returned) of at least `min_bytes` (`MIN_FLOW_BYTES` in the pipeline) is written by
one of them and read by a later one: an intermediate that would leave the L1 and L2
caches between separate nests.

Between the two nests may stand buffer allocations and loop nests that touch nothing the
first nest touches; those move above the first nest, so the fused nests become adjacent.
Nothing else is reordered.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import cast

from xdsl.context import Context
from xdsl.dialects import arith, func, memref
from xdsl.dialects.builtin import MemRefType, ModuleOp
from xdsl.ir import Block, BlockArgument, Operation, SSAValue
from xdsl.ir.affine import AffineExpr, AffineMap
from xdsl.passes import ModulePass

from mlc.dialects.tl import BlockOp, ForOp, LoopKind, LoopKindAttr, YieldOp
from mlc.lowering.workspace import buffer_bytes
from mlc.transforms.loops.common import plain_dim, remake_block

__all__ = ["MIN_FLOW_BYTES", "TlFuseOuterLoopsPass", "fuse_outer_loops"]

#: fusion pays when an intermediate buffer (allocated, not returned) at least this large
#: is produced and consumed inside the fused nest (half of a 512 KiB L2): smaller ones
#: stay in the cache between separate nests anyway, and fusing them only merges kernels
#: (fewer shared between identical sites). Measured at 1 thread, interleaved, as a ratio
#: to onnxruntime's time: softmax over 256 x 1024 rows (1 MiB of exponentials read
#: twice) 1.07 fused vs 1.24; layer norm over 128 x 768 rows (only per-row statistics
#: flow) 0.65 vs 0.63, no gain
MIN_FLOW_BYTES = 1 << 18

#: top-level ops without operands or memory effects on buffers: free to move up
_MOVABLE = (memref.AllocOp, memref.GetGlobalOp, arith.ConstantOp)
_FUSABLE_KINDS = (LoopKind.SERIAL, LoopKind.PARALLEL)


@dataclass(frozen=True)
class _Access:
    """One buffer access of a nest: is it a write, and the buffer axis that the nest's
    loop variable indexes exactly (None: the access is not sliced by the loop variable)."""

    buffer: SSAValue
    write: bool
    sliced_axis: int | None


@dataclass
class _Nest:
    """A top-level loop nest (or nests to be fused, with the fused loop's kind): the loop
    fused on, the single-iteration loops around it (`wrappers`, outermost first: a batch
    of one), its buffer accesses, and whether it only writes (a fill: its blocks have no
    inputs)."""

    loop: ForOp
    wrappers: list[ForOp]
    accesses: list[_Access]
    kind: LoopKind
    fill: bool = False

    @property
    def top(self) -> ForOp:
        """The top-level op of the nest."""
        return self.wrappers[0] if self.wrappers else self.loop

    def touched(self) -> set[SSAValue]:
        return {a.buffer for a in self.accesses}

    def written(self) -> set[SSAValue]:
        return {a.buffer for a in self.accesses if a.write}

    def independent_iterations(self) -> bool:
        """Every buffer it writes is only accessed in the iteration's own slice."""
        return all(_sliced_alike(self.accesses, b) for b in self.written())

    def merged(self, other: _Nest, kind: LoopKind) -> _Nest:
        return _Nest(self.loop, self.wrappers, self.accesses + other.accesses, kind)


def _whole_buffer(value: SSAValue) -> bool:
    if isinstance(value, BlockArgument):
        return isinstance(value.owner.parent_op(), func.FuncOp)
    return isinstance(value.owner, memref.AllocOp | memref.GetGlobalOp)


def _sliced_axis(exprs: Sequence[AffineExpr], iv_pos: int | None) -> int | None:
    """The axis indexed exactly by loop variable `iv_pos` when no other axis uses it."""
    if iv_pos is None:
        return None
    axis = None
    for d, e in enumerate(exprs):
        if iv_pos not in e.used_dims():
            continue
        if axis is not None or plain_dim(e) != iv_pos:
            return None
        axis = d
    return axis


def _block_accesses(
    block: BlockOp, iv: SSAValue, constants: dict[SSAValue, int]
) -> Iterator[_Access]:
    """The accesses of `block`, sliced by loop variable `iv` or not; the variables of
    single-iteration loops (`constants`) are their one value."""
    loop_vars = list(block.loop_vars)
    iv_pos = loop_vars.index(iv) if iv in loop_vars else None
    dims = [
        AffineExpr.constant(constants[v]) if v in constants else AffineExpr.dimension(k)
        for k, v in enumerate(loop_vars)
    ]
    binding = block.binding_map.replace_dims_and_symbols(dims, [], len(loop_vars), 0)
    for value, m, write in [
        *((v, m, False) for v, m in zip(block.inputs, block.input_maps)),
        *((v, m, True) for v, m in zip(block.outputs, block.output_maps)),
    ]:
        axis = _sliced_axis(list(m.compose(binding).results), iv_pos)
        yield _Access(value, write, axis)
        if write:  # an output is read too (reductions, partial updates)
            yield _Access(value, False, axis)


def _only_loop(loop: ForOp) -> ForOp | None:
    """The loop that is the only op (besides the terminator) of `loop`'s body, if any."""
    ops = [o for o in loop.body.block.ops if not isinstance(o, YieldOp)]
    return ops[0] if len(ops) == 1 and isinstance(ops[0], ForOp) else None


def _nest(op: Operation) -> _Nest | None:
    """`op` as a fusable nest: single-iteration loops (a batch of one), each holding
    only the next, around a loop of a fusable kind that runs at least twice, holding
    only loops and blocks over whole buffers; None otherwise."""
    if not isinstance(op, ForOp):
        return None
    wrappers: list[ForOp] = []
    loop: ForOp | None = op
    while loop is not None and loop.trip_count == 1:
        wrappers.append(loop)
        loop = _only_loop(loop)
    if loop is None or loop.loop_kind not in _FUSABLE_KINDS or loop.trip_count < 2:
        return None  # one iteration: fusing would change no order, only merge kernels
    if loop.width is not None or loop.factor is not None:
        return None
    constants = {w.induction_var: w.lb for w in wrappers}
    accesses: list[_Access] = []
    fill = True
    stack: list[Operation] = [loop]
    while stack:
        o = stack.pop()
        if isinstance(o, BlockOp):
            if not all(_whole_buffer(v) for v in (*o.inputs, *o.outputs)):
                return None
            accesses.extend(_block_accesses(o, loop.induction_var, constants))
            fill = fill and not o.inputs
        elif isinstance(o, ForOp):
            stack.extend(o.body.block.ops)
        elif not isinstance(o, YieldOp):
            return None
    return _Nest(loop, wrappers, accesses, loop.loop_kind, fill)


class _Nests(dict[Operation, "_Nest | None"]):
    """`_nest` of each top-level op, computed once per block (the scans look at an op
    again as a candidate, a pending op and a head; a fused nest is updated in place)."""

    def of(self, op: Operation) -> _Nest | None:
        if op not in self:
            self[op] = _nest(op)
        return self[op]


def _same_range(a: ForOp, b: ForOp) -> bool:
    return (a.lb, a.ub, a.step_value) == (b.lb, b.ub, b.step_value)


def _sliced_alike(accesses: list[_Access], buffer: SSAValue) -> bool:
    axes = {a.sliced_axis for a in accesses if a.buffer is buffer}
    return len(axes) == 1 and None not in axes


def _independent(a: _Nest, b: _Nest) -> bool:
    """Neither writes a buffer the other touches: the two may run in either order."""
    return not (a.written() & b.touched() or b.written() & a.touched())


def _fused_kind(first: _Nest, second: _Nest) -> LoopKind | None:
    """The kind of the loop fusing the two (legality only), or None if they may not be
    fused."""
    if not _same_range(first.loop, second.loop) or len(first.wrappers) != len(second.wrappers):
        return None
    if not all(_same_range(a, b) for a, b in zip(first.wrappers, second.wrappers)):
        return None
    both = first.accesses + second.accesses
    shared = first.touched() & second.touched()
    for buffer in shared & (first.written() | second.written()):
        if not _sliced_alike(both, buffer):
            return None
    kinds = {first.kind, second.kind}
    if kinds == {LoopKind.SERIAL}:
        return LoopKind.SERIAL
    serial = [n for n in (first, second) if n.kind == LoopKind.SERIAL]
    if all(n.independent_iterations() for n in serial):
        return LoopKind.PARALLEL
    return None  # fusing would serialize a parallel loop


@dataclass
class _Plan:
    """What to fuse into the first nest next: the nests with the fused loop's kind after
    each, the movable ops between them (they move above the first nest), and the op
    after the last nest."""

    nests: list[tuple[_Nest, LoopKind]]
    movables: list[Operation]
    following: Operation | None
    flows: set[SSAValue]  # the buffers data flows through from the first nest


def _plan(first: _Nest, op: Operation, nests: _Nests) -> _Plan | None:
    """Fuse the nest `op` if data flows into it from `first` (it touches a buffer `first`
    writes: fusing unrelated nests gains nothing and breaks the sharing of identical
    kernels); a fill that no data flows into goes with the nest after it when that one
    reads from both."""
    candidate = nests.of(op)
    kind = _fused_kind(first, candidate) if candidate is not None else None
    if candidate is None or kind is None:
        return None
    if first.written() & candidate.touched():
        return _Plan([(candidate, kind)], [], op.next_op, first.written() & candidate.touched())
    if not candidate.fill:
        return None
    movables: list[Operation] = []
    after = op.next_op
    while isinstance(after, _MOVABLE):
        movables.append(after)
        after = after.next_op
    consumer = nests.of(after) if after is not None else None
    if consumer is None or after is None:
        return None
    if not (first.written() & consumer.touched() and candidate.written() & consumer.touched()):
        return None
    consumer_kind = _fused_kind(first.merged(candidate, kind), consumer)
    if consumer_kind is None:
        return None
    flows = first.written() & consumer.touched()
    return _Plan([(candidate, kind), (consumer, consumer_kind)], movables, after.next_op, flows)


def _fuse_into(first: _Nest, second: _Nest, kind: LoopKind) -> None:
    """Append `second`'s body to `first`'s loop (same iterations) and erase it."""
    loop = first.loop
    if loop.loop_kind != kind:
        loop.properties["kind"] = LoopKindAttr(kind)
    first.kind = kind
    target = loop.body.block
    terminator = target.last_op
    second.loop.induction_var.replace_all_uses_with(loop.induction_var)
    for outer, inner in zip(second.wrappers, first.wrappers):
        outer.induction_var.replace_all_uses_with(inner.induction_var)
    for op in list(second.loop.body.block.ops):
        if isinstance(op, YieldOp):
            continue
        op.detach()
        if terminator is None:
            target.add_op(op)
        else:
            target.insert_op_before(op, terminator)
    top = second.top
    top.detach()
    top.erase()
    first.accesses += second.accesses
    first.fill = first.fill and second.fill


def _uses_any(op: Operation, buffers: set[SSAValue]) -> bool:
    return any(v in buffers for o in op.walk() for v in o.operands)


def _sink_fills(block: Block, nests: _Nests) -> None:
    """Move every fill nest down to just before the first op that uses a buffer it
    writes (nothing in between touches them, and a fill reads nothing): there, it can be
    fused with its consumer."""
    for op in list(block.ops):
        nest = nests.of(op)
        if nest is None or not nest.fill:
            continue
        written = nest.written()
        user = op.next_op
        while user is not None and not _uses_any(user, written):
            user = user.next_op
        if user is not None and user is not op.next_op:
            op.detach()
            block.insert_op_before(op, user)


def _intermediate(buffer: SSAValue) -> bool:
    """A buffer the function allocates and does not return."""
    return isinstance(buffer.owner, memref.AllocOp) and not any(
        isinstance(use.operation, func.ReturnOp) for use in buffer.uses
    )


def _group(
    first: _Nest, nests: _Nests
) -> tuple[list[tuple[list[Operation], _Plan]], set[SSAValue]]:
    """What fusing into `first` would do, without doing it: the steps (ops to move above
    `first`, then a plan) and the buffers data flows through inside the fused nest."""
    steps: list[tuple[list[Operation], _Plan]] = []
    flows: set[SSAValue] = set()
    group = first
    pending: list[Operation] = []  # between `first` and the next candidate: movable
    op = first.top.next_op
    while op is not None:
        plan = _plan(group, op, nests)
        if plan is not None:
            steps.append((pending, plan))
            pending = []
            for nest, kind in plan.nests:
                group = group.merged(nest, kind)
            flows |= plan.flows
            op = plan.following
            continue
        candidate = nests.of(op)
        if isinstance(op, _MOVABLE) or (candidate is not None and _independent(group, candidate)):
            pending.append(op)
            op = op.next_op
        else:
            break
    return steps, flows


def _contract(nest: _Nest) -> None:
    """Shrink each intermediate buffer that lives only inside `nest`'s serial loop to the
    one slice an iteration uses: every access indexes its sliced axis by the loop
    variable, so an iteration never reads what another wrote, and slice 0 serves them all
    (a softmax's 1 MiB of exponentials becomes one 4 KiB row that stays in L1). A
    parallel loop keeps its buffers whole: its iterations would share the slice."""
    if nest.kind != LoopKind.SERIAL:
        return
    for buffer in nest.written():
        owner = buffer.owner
        if not _intermediate(buffer) or not _sliced_alike(nest.accesses, buffer):
            continue
        users = [use.operation for use in buffer.uses]
        if not all(isinstance(u, BlockOp) and nest.loop.is_ancestor(u) for u in users):
            continue
        axis = next(a.sliced_axis for a in nest.accesses if a.buffer is buffer)
        assert axis is not None and isinstance(owner, memref.AllocOp)
        old = cast(MemRefType, buffer.type)
        shape = [1 if d == axis else n for d, n in enumerate(old.get_shape())]
        alloc = memref.AllocOp.get(old.element_type, shape=shape)
        owner.parent_block().insert_op_before(alloc, owner)  # type: ignore[union-attr]
        for user in dict.fromkeys(cast(BlockOp, u) for u in users):
            maps = [
                _slice_zero(m, axis) if v is buffer else m
                for v, m in zip((*user.inputs, *user.outputs), user.maps)
            ]
            remake_block(user, maps=maps)
        buffer.replace_all_uses_with(alloc.memref)
        owner.detach()
        owner.erase()
        nest.accesses = [
            _Access(alloc.memref, a.write, a.sliced_axis) if a.buffer is buffer else a
            for a in nest.accesses
        ]


def _slice_zero(m: AffineMap, axis: int) -> AffineMap:
    """`m` with its result `axis` folded to slice 0 (`e mod 1`: storage folding with a
    factor of 1, as Halide's `fold_storage`; the iterator still indexes the output, as a
    block's parallel iterators must, and the lowering folds it to 0)."""
    results = [e % 1 if d == axis else e for d, e in enumerate(m.results)]
    return AffineMap(m.num_dims, m.num_symbols, tuple(results))


def _fuse_block(block: Block, min_bytes: int) -> int:
    """Fuse the top-level nests of `block` where an intermediate buffer of at least
    `min_bytes` is produced and consumed inside the fused nest; returns how many nests
    were fused away."""
    nests = _Nests()
    _sink_fills(block, nests)
    fused = 0
    head = block.first_op
    while head is not None:
        first = nests.of(head)
        if first is None:
            head = head.next_op
            continue
        steps, flows = _group(first, nests)
        if any(_intermediate(b) and (buffer_bytes(b.type) or 0) >= min_bytes for b in flows):
            for moved, plan in steps:
                for p in [*moved, *plan.movables]:
                    p.detach()
                    block.insert_op_before(p, first.top)
                for nest, kind in plan.nests:
                    _fuse_into(first, nest, kind)
                    fused += 1
            _contract(first)
        head = first.top.next_op  # ops left where they were are scanned again as heads
    return fused


def fuse_outer_loops(module: ModuleOp, min_bytes: int = 0) -> int:
    """Fuse the top-level loop nests of every function of `module` (see the module
    docstring) where a buffer of at least `min_bytes` is produced and consumed inside
    the fused nest; returns how many nests were fused into another."""
    fused = 0
    for op in module.walk():
        if isinstance(op, func.FuncOp) and op.body.blocks:
            fused += _fuse_block(op.body.block, min_bytes)
    return fused


@dataclass(frozen=True)
class TlFuseOuterLoopsPass(ModulePass):
    """`tl-fuse-outer-loops{min-bytes=262144}`: adjacent top-level loop nests over the
    same range whose iterations touch disjoint slices of their shared buffers become one
    nest, where a buffer of at least `min-bytes` flows inside it."""

    name = "tl-fuse-outer-loops"
    min_bytes: int = MIN_FLOW_BYTES

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        fuse_outer_loops(op, self.min_bytes)
