"""Producer / consumer fusion: `reverse_compute_at` moves an elementwise consumer (a
bias add, a relu, ...) into a loop of its producer's nest, right after the loops inside
it finish the output points of that iteration — "elementwise epilogues into a
reduction's output loop"; `compute_at` moves an elementwise producer into a loop of its
consumer's nest, recomputing in each iteration the elements the loops inside it read.

The consumer is recomputed on exactly the points the producer completes in one
iteration of the loop: the producer's loops inside it that bind parallel iterators are
replicated around the consumer (reduction-only loops are not), and each consumer
iterator is bound to the binding of the producer iterator writing the same element of
the shared buffer (plus the producer's `where(it < extent)` clips of imperfect splits).
"""

from __future__ import annotations

from collections.abc import Sequence

from xdsl.ir import Operation, SSAValue
from xdsl.ir.affine import AffineExpr, AffineMap

from mlc.dialects.tl import BlockOp, ForOp, LoopKind, YieldOp, linear_form
from mlc.transforms.loops.common import (
    ScheduleError,
    block_loops,
    blocks_under,
    dims_of,
    loop_name,
    plain_dim,
)

__all__ = ["compute_at", "reverse_compute_at"]


def _plain_dims(m: AffineMap) -> list[int] | None:
    """The iterator each result of `m` is (`it` exactly), or None if one is not."""
    out: list[int] = []
    for e in m.results:
        d = plain_dim(e)
        if d is None:
            return None
        out.append(d)
    return out


def _top(op: Operation) -> Operation:
    loops = block_loops(op)
    return loops[0] if loops else op


def _touches(op: Operation, reads: set[SSAValue], writes: set[SSAValue]) -> str | None:
    """A description of the first op under `op` that writes a buffer of `reads` or reads
    or writes one of `writes`, or None."""
    for o in op.walk():
        if isinstance(o, BlockOp):
            outs = set(o.outputs)
            if outs & (reads | writes) or set(o.inputs) & writes:
                return f'tl.block "{o.label.data}"'
        elif isinstance(o, ForOp | YieldOp) or isinstance(o.parent_op(), BlockOp):
            continue
        elif set(o.operands) & (reads | writes):
            return f"'{o.name}'"
    return None


def _clip(cond: AffineExpr, extents: Sequence[int]) -> int | None:
    """The iterator `cond` clips to its extent (`it - extent`), or None."""
    coeffs, atoms, const = linear_form(cond)
    if atoms or len(coeffs) != 1 or next(iter(coeffs.values())) != 1:
        return None
    d = next(iter(coeffs))
    return d if -const == extents[d] else None


def _only(top: Operation, block: BlockOp) -> bool:
    return blocks_under(top) == [block] and all(
        isinstance(o, ForOp | BlockOp | YieldOp) or isinstance(o.parent_op(), BlockOp)
        for o in top.walk()
    )


def _like(f: ForOp) -> ForOp:
    """An empty loop with `f`'s bounds and kind (`vectorize` / `unroll` stay, so a moved
    epilogue runs on the producer's register tile in the same shape; a `parallel` loop
    nested here becomes serial)."""
    kind = f.loop_kind if f.loop_kind != LoopKind.PARALLEL else LoopKind.SERIAL
    return ForOp(
        f.lb,
        f.ub,
        f.step_value,
        kind,
        width=f.width.value.data if f.width is not None and kind == LoopKind.VECTORIZE else None,
        factor=f.factor.value.data if f.factor is not None and kind == LoopKind.UNROLL else None,
        masked=f.masked is not None and kind == LoopKind.VECTORIZE,
    )


def _copy_into_loops(
    moving: BlockOp,
    anchor: BlockOp,
    replicate: Sequence[ForOp],
    dim_pairs: Sequence[tuple[int, int]],
    clips: Sequence[AffineExpr],
) -> tuple[Operation, BlockOp]:
    """A copy of `moving` inside fresh copies of the `replicate` loops, binding each of
    its iterators `md` to `anchor`'s binding of iterator `ad` (`(md, ad)` in
    `dim_pairs`), with `anchor`'s loop variables renamed to the fresh loops' ones.
    Returns the outermost new op (loop or block) and the new block."""
    new_loops = [_like(f) for f in replicate]
    var_map: dict[SSAValue, SSAValue] = {}
    for f, g in zip(replicate, new_loops):
        g.induction_var.name_hint = loop_name(f)
        var_map[f.induction_var] = g.induction_var
    anchor_vars = list(anchor.loop_vars)
    moving_vars: list[SSAValue] = []
    n_moving = len(moving.iterators.data)
    exprs: list[AffineExpr] = [AffineExpr.constant(0)] * n_moving
    for md, ad in dim_pairs:
        e = anchor.binding_map.results[ad]
        for d in sorted(e.used_dims()):
            v = var_map.get(anchor_vars[d], anchor_vars[d])
            if v not in moving_vars:
                moving_vars.append(v)
        exprs[md] = e
    remap = [
        AffineExpr.dimension(moving_vars.index(var_map.get(v, v)))
        if var_map.get(v, v) in moving_vars
        else AffineExpr.constant(0)
        for v in anchor_vars
    ]
    bindings = AffineMap(len(anchor_vars), 0, tuple(exprs)).replace_dims_and_symbols(
        remap, [], len(moving_vars), 0
    )
    moved = BlockOp(
        moving.label.data,
        moving.iterator_list,
        moving_vars,
        bindings,
        list(moving.inputs),
        list(moving.outputs),
        moving.maps,
        list(moving.pads.data),
        list(moving.inits.data),
        moving.clone_body(),
        AffineMap(n_moving, 0, tuple(clips)) if clips else None,
        dict(moving.attributes),
    )
    for outer, inner in zip(new_loops, new_loops[1:]):
        outer.body.block.insert_op_before(inner, outer.body.block.last_op)  # type: ignore[arg-type]
    if not new_loops:
        return moved, moved
    innermost = new_loops[-1].body.block
    innermost.insert_op_before(moved, innermost.last_op)  # type: ignore[arg-type]
    return new_loops[0], moved


def compute_at(producer: BlockOp, loop: ForOp, names: Sequence[str] = ()) -> BlockOp:
    """Move the elementwise `producer` of a buffer read by a block of `loop`'s nest to the
    start of `loop`'s body, recomputing in each iteration the elements that the loops
    inside `loop` read (the consumer's loops inside `loop` that bind the iterators
    indexing the buffer are replicated around the producer). The producer must be
    elementwise and idempotent (no reduction iterators, not reading the current value of
    its output without an init). Returns the moved block.

    The consumer may instead accumulate into the producer's output (a bias fill before
    a convolution that adds its products to it): then it must be the only block of the
    nest touching the buffer, and `loop` and the loops outside it must bind iterators of
    its output only (no reduction loop outside: each element is filled once, right
    before its tile is accumulated, so the fill stays in registers or L1).

        tl.for %i = 0 to 4 { tl.for %k = 0 to 2 {
          tl.block "act" iterators(i: 4 parallel, k: 2 parallel) at(i = %i, k = %k)
              ins(%X[i, k] : ...) outs(%A[i, k] : ...) } }
        tl.for %m = 0 to 4 { tl.for %n = 0 to 3 { tl.for %k = 0 to 2 {
          tl.block "mm" ... at(m = %m, n = %n, k = %k) ins(%A[m, k] : ..., ...) ... } } }

    moved to loop %m becomes

        tl.for %m = 0 to 4 {
          tl.for %k_1 = 0 to 2 {
            tl.block "act" iterators(i: 4 parallel, k: 2 parallel) at(i = %m, k = %k_1)
                ins(%X[i, k] : ...) outs(%A[i, k] : ...) }
          tl.for %n = 0 to 3 { tl.for %k = 0 to 2 { tl.block "mm" ... } } }
    """
    name = names[0] if names else loop_name(loop)
    plabel = producer.label.data
    fail = f"cannot compute tl.block \"{plabel}\" at loop '{name}'"
    if loop.is_ancestor(producer):
        raise ScheduleError(f"{fail}: it is already inside it")
    if len(producer.outputs) != 1:
        raise ScheduleError(f"{fail}: it must have exactly one output")
    (buf,) = producer.outputs
    readers = [b for b in blocks_under(loop) if buf in b.inputs]
    updaters = [b for b in blocks_under(loop) if buf in b.outputs]
    accumulate = not readers and len(updaters) == 1
    if accumulate:
        readers = updaters  # a fill of the buffer the consumer accumulates into
    if len(readers) != 1:
        raise ScheduleError(
            f"{fail}: {len(readers)} tl.blocks inside it read its output; expected one"
        )
    (consumer,) = readers
    clabel = consumer.label.data
    shape = buf.type.get_shape()  # pyright: ignore[reportAttributeAccessIssue]
    p_dims = _plain_dims(producer.output_maps[0])
    n_p = len(producer.iterators.data)
    if (
        producer.reduction_dims
        or p_dims is None
        or sorted(p_dims) != list(range(n_p))
        or any(producer.extents[d] != s for d, s in zip(p_dims, shape))
    ):
        raise ScheduleError(
            f"{fail}: it must be elementwise (each iterator parallel and writing exactly one "
            "dim of its output, over its whole extent)"
        )
    out_arg = producer.body_block.args[len(producer.inputs)]
    if producer.init_values[0] is None and out_arg.uses:
        raise ScheduleError(
            f"{fail}: it reads the current value of its output, so recomputing it is not idempotent"
        )
    for cond in producer.predicate_map.results if producer.predicate_map else ():
        if _clip(cond, producer.extents) is None:
            raise ScheduleError(f"{fail}: its predicate excludes points of its output")
    operands = [*consumer.inputs, *consumer.outputs]
    if operands.count(buf) != 1:
        raise ScheduleError(f'{fail}: "{clabel}" reads its output more than once')
    if accumulate and consumer.init_values[list(consumer.outputs).index(buf)] is not None:
        raise ScheduleError(f'{fail}: "{clabel}" overwrites its output (it has an init)')
    c_dims = _plain_dims(consumer.maps[operands.index(buf)])
    if (
        c_dims is None
        or len(set(c_dims)) != len(c_dims)
        or any(consumer.extents[d] != s for d, s in zip(c_dims, shape))
    ):
        raise ScheduleError(
            f'{fail}: "{clabel}" must read it with one iterator per dim over its whole extent'
        )
    clips: list[AffineExpr] = []
    for cond in consumer.predicate_map.results if consumer.predicate_map else ():
        d = _clip(cond, consumer.extents)
        if d is None:
            raise ScheduleError(f'{fail}: the predicate of "{clabel}" excludes points')
        if d in c_dims:
            pd = p_dims[c_dims.index(d)]
            clips.append(AffineExpr.dimension(pd) - producer.extents[pd])
    for cond in producer.predicate_map.results if producer.predicate_map else ():
        if cond not in clips:
            clips.append(cond)
    loops = block_loops(consumer)
    ivs = [f.induction_var for f in loops]
    if any(v not in ivs for v in consumer.loop_vars):
        raise ScheduleError(f'{fail}: a loop variable of "{clabel}" is not a tl.for')
    k = loops.index(loop)
    t_iters = set(c_dims)
    for f in loops[: k + 1] if accumulate else ():
        # each iteration must fill elements no other iteration accumulates into
        dims = dims_of(consumer, f.induction_var)
        if not dims or not dims <= t_iters:
            raise ScheduleError(
                f"{fail}: loop '{clabel}/{loop_name(f)}' does not bind iterators of "
                f'"{clabel}"\'s output only, so a fill in it would reset partial results'
            )
    for f in loops[: k + 1]:
        if f.loop_kind == LoopKind.PARALLEL and not dims_of(consumer, f.induction_var) & t_iters:
            raise ScheduleError(
                f"{fail}: parallel loop '{clabel}/{loop_name(f)}' would recompute the same "
                "elements in each of its iterations"
            )
    replicate = [f for f in loops[k + 1 :] if dims_of(consumer, f.induction_var) & t_iters]
    top_p, top_c = _top(producer), _top(consumer)
    if top_p.parent_block() is not top_c.parent_block():
        raise ScheduleError(f'{fail}: it is not in the same region as "{clabel}"\'s nest')
    if not _only(top_p, producer):
        raise ScheduleError(f'{fail}: its loop nest holds more than "{plabel}"')
    reads = set(producer.inputs)
    op = top_p.next_op
    while op is not None and op is not top_c:
        hit = _touches(op, reads, {buf})
        if hit:
            raise ScheduleError(
                f'{fail}: {hit} between the nests writes a buffer "{plabel}" reads, or '
                "uses its output"
            )
        op = op.next_op
    if op is None:
        raise ScheduleError(f'{fail}: "{clabel}" does not come after "{plabel}"')
    for b in blocks_under(top_c):
        if b is consumer and accumulate:
            if set(b.outputs) & reads:
                raise ScheduleError(f'{fail}: "{clabel}" writes a buffer "{plabel}" reads')
            continue
        if set(b.outputs) & (reads | {buf}):
            raise ScheduleError(
                f'{fail}: tl.block "{b.label.data}" in the nest of "{clabel}" writes a buffer '
                f'"{plabel}" reads or writes'
            )
        if b is not consumer and buf in b.inputs:
            raise ScheduleError(
                f'{fail}: tl.block "{b.label.data}" in the nest of "{clabel}" also reads its output'
            )
    # legal: rewrite
    top, moved = _copy_into_loops(producer, consumer, replicate, list(zip(p_dims, c_dims)), clips)
    body = loop.body.block
    first = body.first_op
    assert first is not None
    body.insert_op_before(top, first)
    parent = top_p.parent_block()
    assert parent is not None
    parent.erase_op(top_p)
    return moved


def reverse_compute_at(consumer: BlockOp, loop: ForOp, names: Sequence[str] = ()) -> BlockOp:
    """Move the elementwise `consumer` of a buffer written by a block of `loop`'s nest to
    the end of `loop`'s body, computing in each iteration exactly the elements the
    producer finished in it (the loops outside `loop`, and `loop`, must bind parallel
    iterators of the producer only). Returns the moved block.

        tl.for %m = 0 to 4 { tl.for %n = 0 to 3 { tl.for %k = 0 to 2 {
          tl.block "mm" ... at(m = %m, n = %n, k = %k) ... outs(%C[m, n] : ...) } } }
        tl.for %i = 0 to 4 { tl.for %j = 0 to 3 {
          tl.block "relu" iterators(i: 4 parallel, j: 3 parallel) at(i = %i, j = %j)
              ins(%C[i, j] : ...) outs(%D[i, j] : ...) } }

    moved to loop %m becomes

        tl.for %m = 0 to 4 {
          tl.for %n = 0 to 3 { tl.for %k = 0 to 2 { tl.block "mm" ... } }
          tl.for %n_1 = 0 to 3 {
            tl.block "relu" iterators(i: 4 parallel, j: 3 parallel) at(i = %m, j = %n_1)
                ins(%C[i, j] : ...) outs(%D[i, j] : ...) } }
    """
    name = names[0] if names else loop_name(loop)
    clabel = consumer.label.data
    fail = f"cannot move tl.block \"{clabel}\" into loop '{name}'"
    if loop.is_ancestor(consumer):
        raise ScheduleError(f"{fail}: it is already inside it")
    # an output without init is read too: an epilogue updating the producer's buffer in
    # place (mlc.transforms.loops.fusion.epilogue_in_place)
    updated = {o for o, init in zip(consumer.outputs, consumer.init_values) if init is None}
    reads = set(consumer.inputs) | updated
    writers = [b for b in blocks_under(loop) if set(b.outputs) & reads]
    if not writers:
        raise ScheduleError(f'{fail}: no tl.block inside it writes a buffer "{clabel}" reads')
    producer = writers[-1]
    plabel = producer.label.data
    shared = set(producer.outputs) & reads
    if len(shared) != 1:
        raise ScheduleError(f'{fail}: it reads {len(shared)} outputs of "{plabel}"; expected one')
    (buf,) = shared
    order = blocks_under(_top(producer))
    for w in writers[:-1]:  # fills of the buffer before the producer accumulates into it
        fill = not set(w.inputs) & ({buf} | set(consumer.outputs))
        if not fill or order.index(w) > order.index(producer) or set(w.outputs) - {buf}:
            raise ScheduleError(
                f'{fail}: tl.block "{w.label.data}" also writes a buffer "{clabel}" reads'
            )
    in_place = buf in updated
    if [*consumer.inputs, *consumer.outputs].count(buf) != 1:
        raise ScheduleError(f'{fail}: it reads the output of "{plabel}" more than once')
    # the consumer: elementwise over the shared buffer
    operands = [*consumer.inputs, *consumer.outputs]
    c_map = consumer.maps[operands.index(buf)]
    shape = buf.type.get_shape()  # pyright: ignore[reportAttributeAccessIssue]
    c_dims = _plain_dims(c_map)
    n_c = len(consumer.iterators.data)
    if (
        consumer.reduction_dims
        or c_dims is None
        or sorted(c_dims) != list(range(n_c))
        or any(consumer.extents[d] != s for d, s in zip(c_dims, shape))
    ):
        raise ScheduleError(
            f'{fail}: it must be elementwise over the output of "{plabel}" (each iterator '
            "parallel and reading exactly one dim of it, over its whole extent)"
        )
    if consumer.predicate_map is not None:
        raise ScheduleError(f"{fail}: it has a predicate")
    # the producer: writes every element of the buffer once per reduction point
    j = list(producer.outputs).index(buf)
    p_dims = _plain_dims(producer.output_maps[j])
    if (
        p_dims is None
        or sorted(p_dims) != sorted(producer.parallel_dims)
        or any(producer.extents[d] != s for d, s in zip(p_dims, shape))
    ):
        raise ScheduleError(
            f'{fail}: "{plabel}" must write its output with each parallel iterator indexing '
            "one dim over its whole extent"
        )
    par = set(producer.parallel_dims)
    clips: list[AffineExpr] = []
    for cond in producer.predicate_map.results if producer.predicate_map else ():
        used = cond.used_dims()
        if not used & par:
            continue
        coeffs, atoms, const = linear_form(cond)
        if (
            atoms
            or len(coeffs) != 1
            or next(iter(coeffs.values())) != 1
            or -const != producer.extents[next(iter(coeffs))]
        ):
            raise ScheduleError(
                f'{fail}: the predicate of "{plabel}" excludes points of its output'
            )
        d = next(iter(coeffs))
        c = c_dims[p_dims.index(d)]
        clips.append(AffineExpr.dimension(c) - consumer.extents[c])
    loops = block_loops(producer)
    ivs = [f.induction_var for f in loops]
    if any(v not in ivs for v in producer.loop_vars):
        raise ScheduleError(f'{fail}: a loop variable of "{plabel}" is not a tl.for')
    k = loops.index(loop)
    red = set(producer.reduction_dims)
    replicate: list[ForOp] = []
    for i, f in enumerate(loops):
        dims = dims_of(producer, f.induction_var)
        if i <= k and (not dims or dims & red):
            raise ScheduleError(
                f"{fail}: loop '{plabel}/{loop_name(f)}' "
                + ("is not used by" if not dims else "binds a reduction iterator of")
                + f' "{plabel}", so its output is not complete after an iteration'
            )
        if dims & red and dims - red:
            raise ScheduleError(
                f"{fail}: loop '{plabel}/{loop_name(f)}' binds both parallel and reduction iterators "
                f'of "{plabel}"'
            )
        if i > k and dims:
            if not dims & red:
                replicate.append(f)
    # nothing between the producer's nest and the consumer may conflict with the move
    top_p, top_c = _top(producer), _top(consumer)
    if top_p.parent_block() is not top_c.parent_block():
        raise ScheduleError(f'{fail}: "{clabel}" is not in the same region as "{plabel}"\'s nest')
    if blocks_under(top_c) != [consumer] or any(
        not isinstance(o, ForOp | BlockOp | YieldOp) and not isinstance(o.parent_op(), BlockOp)
        for o in top_c.walk()
    ):
        raise ScheduleError(f'{fail}: its loop nest holds more than "{clabel}"')
    writes = set(consumer.outputs) - ({buf} if in_place else set())
    others = reads - {buf}
    op = top_p.next_op
    while op is not None and op is not top_c:
        hit = _touches(op, reads, writes)
        if hit:
            raise ScheduleError(
                f'{fail}: {hit} between the nests uses a buffer "{clabel}" reads or writes'
            )
        op = op.next_op
    if op is None:
        raise ScheduleError(f'{fail}: "{clabel}" does not come after the nest of "{plabel}"')
    between = set()
    op = top_p.next_op
    while op is not None and op is not top_c:
        between.update(op.results)
        op = op.next_op
    if between & set(consumer.operands):
        raise ScheduleError(f'{fail}: it uses a value defined after the nest of "{plabel}"')
    for b in order:
        late_writer = (
            buf in b.outputs and b not in writers and order.index(b) > order.index(producer)
        )
        if late_writer or set(b.inputs) & writes or set(b.outputs) & writes:
            raise ScheduleError(
                f'{fail}: tl.block "{b.label.data}" in the nest of "{plabel}" uses a buffer '
                f'"{clabel}" writes, or writes its output later'
            )
        if b is producer or b in writers:
            continue
        if set(b.outputs) & others:
            raise ScheduleError(
                f'{fail}: tl.block "{b.label.data}" in the nest of "{plabel}" writes a buffer '
                f'"{clabel}" reads'
            )
    # legal: rewrite
    top, moved = _copy_into_loops(consumer, producer, replicate, list(zip(c_dims, p_dims)), clips)
    body = loop.body.block
    last = body.last_op
    if isinstance(last, YieldOp):
        body.insert_op_before(top, last)
    else:
        body.add_op(top)
    parent = top_c.parent_block()
    assert parent is not None
    parent.erase_op(top_c)
    return moved
