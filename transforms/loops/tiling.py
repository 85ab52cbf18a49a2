"""Loop-structure transformations: split, fuse, reorder.

All three check legality first and only then change the IR, so a rejected request
(`ScheduleError`) leaves the IR untouched. Loops must be normalised (`0 to N step 1`),
which every loop the lowering and these transformations create is.
"""

from __future__ import annotations

from collections.abc import Sequence

from xdsl.ir import SSAValue
from xdsl.ir.affine import AffineExpr, AffineMap

from mlc.dialects.tl import BlockOp, ForOp, LoopKind, YieldOp, affine_range, linear_form
from mlc.dialects.tl.loops import loop_var_range
from mlc.transforms.loops.common import (
    ScheduleError,
    blocks_under,
    check_only_block_users,
    dims_of,
    fresh_loop_name,
    injective_outputs,
    loop_name,
    order_insensitive,
    rebind,
    remake_block,
)

__all__ = ["fuse", "reorder", "split"]


def _check_normalized(loop: ForOp, name: str) -> None:
    if loop.lb != 0 or loop.step_value != 1:
        raise ScheduleError(
            f"loop '{name}' is not normalised (it runs {loop.lb} to {loop.ub} step "
            f"{loop.step_value}; expected 0 to N step 1)"
        )


def _body_ops(loop: ForOp) -> list:
    return [op for op in loop.body.block.ops if not isinstance(op, YieldOp)]


def _taken_names(loop: ForOp) -> list[str]:
    names = [loop_name(f) for f in loop.walk() if isinstance(f, ForOp)]
    parent = loop.parent_op()
    while parent is not None:
        if isinstance(parent, ForOp):
            names.append(loop_name(parent))
        parent = parent.parent_op()
    return names


def _split_guard(block: BlockOp, iv: SSAValue, trip: int, name: str) -> AffineExpr | None:
    """The predicate condition (`it - extent < 0`) excluding the excess iterations of a
    non-dividing split of the loop `iv`, or None if the block already has it."""
    dims = dims_of(block, iv)
    if len(dims) != 1:
        raise ScheduleError(
            f"cannot split loop '{name}' by a factor that does not divide its trip count "
            f'{trip}: tl.block "{block.label.data}" binds {len(dims)} iterators to it '
            "(exactly one is needed to mask the excess iterations); choose a divisor"
        )
    (d,) = dims
    pos = list(block.loop_vars).index(iv)
    expr = block.binding_map.results[d]
    coeffs, atoms, _ = linear_form(expr)
    a = coeffs.get(pos, 0)
    ranges = []
    for v in block.loop_vars:
        r = loop_var_range(v)
        if r is None:
            raise ScheduleError(f"loop '{name}': a loop variable of the block is not a tl.for")
        ranges.append(r)
    rest = expr - AffineExpr.dimension(pos) * a
    it = block.iterator_list[d]
    if a <= 0 or any(pos in atom.used_dims() for _, atom in atoms):
        raise ScheduleError(
            f"cannot split loop '{name}' by a non-divisor: iterator '{it.label}' is not "
            "increasing linearly in it; choose a divisor of its trip count"
        )
    if a * trip + affine_range(rest, ranges)[0] < it.size:
        raise ScheduleError(
            f"cannot split loop '{name}' by a non-divisor: its excess iterations keep "
            f"iterator '{it.label}' inside its extent {it.size}, so `where({it.label} < "
            f"{it.size})` cannot mask them; choose a divisor of its trip count {trip}"
        )
    cond = AffineExpr.dimension(d) + AffineExpr.constant(-it.size)
    existing = block.predicate_map
    if existing is not None and cond in existing.results:
        return None
    return cond


def split(loop: ForOp, factor: int, name: str = "") -> tuple[ForOp, ForOp]:
    """Split `loop` into an outer loop over tiles and an inner loop of `factor` iterations,
    rebinding `iv = outer * factor + inner`. A factor that does not divide the trip count
    adds the predicate `where(it < extent)` to each block.

        tl.for %m = 0 to 10 {
          tl.block "s" iterators(m: 10 parallel) at(m = %m) ...

    split by 4 becomes

        tl.for %m.o = 0 to 3 {
          tl.for %m.i = 0 to 4 {
            tl.block "s" iterators(m: 10 parallel) at(m = %m.o * 4 + %m.i) where(m < 10) ...
    """
    name = name or loop_name(loop)
    _check_normalized(loop, name)
    trip = loop.trip_count
    if factor <= 0 or factor > trip:
        raise ScheduleError(
            f"cannot split loop '{name}' by {factor}: the factor must be in [1, {trip}] "
            "(its trip count)"
        )
    check_only_block_users(loop, name)
    iv = loop.induction_var
    blocks = blocks_under(loop)
    guards: list[AffineExpr | None] = [None] * len(blocks)
    if trip % factor:
        for i, b in enumerate(blocks):
            if iv not in b.loop_vars:
                raise ScheduleError(
                    f"cannot split loop '{name}' by a non-divisor: tl.block "
                    f'"{b.label.data}" does not use it, so excess iterations would repeat it'
                )
            guards[i] = _split_guard(b, iv, trip, name)
    # legal: rewrite
    base = loop_name(loop)
    taken = _taken_names(loop)
    outer_kind = LoopKind.PARALLEL if loop.loop_kind == LoopKind.PARALLEL else LoopKind.SERIAL
    region = loop.detach_region(loop.body)
    inner = ForOp(0, factor, body=region)
    outer = ForOp(0, -(-trip // factor), kind=outer_kind, attributes=dict(loop.attributes))
    outer.body.block.insert_op_before(inner, outer.body.block.last_op)  # type: ignore[arg-type]
    parent = loop.parent_block()
    assert parent is not None
    parent.insert_op_before(outer, loop)
    parent.erase_op(loop)
    outer.induction_var.name_hint = fresh_loop_name(taken, f"{base}.o")
    iv.name_hint = fresh_loop_name(taken, f"{base}.i")
    expr = AffineExpr.dimension(0) * factor + AffineExpr.dimension(1)
    for b, guard in zip(blocks, guards):
        new = rebind(b, {iv: ([outer.induction_var, iv], expr)})
        if guard is not None:
            old = new.predicate_map
            conds = (*(old.results if old else ()), guard)
            remake_block(new, predicate=AffineMap(len(new.iterators.data), 0, conds))
    return outer, inner


def fuse(outer: ForOp, inner: ForOp, names: Sequence[str] = ()) -> ForOp:
    """Fuse two perfectly nested loops into one over the product of their trip counts,
    rebinding `o = f floordiv N` and `i = f mod N`.

        tl.for %m = 0 to 4 { tl.for %n = 0 to 3 {
          tl.block "s" ... at(m = %m, n = %n) ...

    becomes

        tl.for %m.n = 0 to 12 {
          tl.block "s" ... at(m = %m.n floordiv 3, n = %m.n mod 3) ...
    """
    n_outer, n_inner = (list(names) + [loop_name(outer), loop_name(inner)][len(names) :])[:2]
    _check_normalized(outer, n_outer)
    _check_normalized(inner, n_inner)
    if _body_ops(outer) != [inner]:
        raise ScheduleError(
            f"cannot fuse loops '{n_outer}' and '{n_inner}': they are not perfectly nested "
            f"('{n_inner}' must be the only op in the body of '{n_outer}')"
        )
    check_only_block_users(outer, n_outer)
    check_only_block_users(inner, n_inner)
    taken = _taken_names(outer)
    t_inner = inner.trip_count
    total = outer.trip_count * t_inner
    base = f"{loop_name(outer)}.{loop_name(inner)}"
    iv_outer, iv = outer.induction_var, inner.induction_var
    blocks = blocks_under(inner)
    region = inner.detach_region(inner.body)
    fused = ForOp(0, total, body=region, attributes=dict(outer.attributes))
    parent = outer.parent_block()
    assert parent is not None
    parent.insert_op_before(fused, outer)
    parent.erase_op(outer)
    iv.name_hint = fresh_loop_name([t for t in taken if t not in (base,)], base)
    d0 = AffineExpr.dimension(0)
    for b in blocks:
        rebind(b, {iv_outer: ([iv], d0 // t_inner), iv: ([iv], d0 % t_inner)})
    return fused


def _chain(loops: Sequence[ForOp], names: Sequence[str]) -> list[ForOp]:
    """The perfect nest from the outermost to the innermost of `loops`."""
    depth = {id(f): len(_ancestors(f)) for f in loops}
    ordered = sorted(loops, key=lambda f: depth[id(f)])
    for a, b in zip(ordered, ordered[1:]):
        if not a.is_ancestor(b):
            raise ScheduleError(
                f"cannot reorder loops '{names[loops.index(a)]}' and "
                f"'{names[loops.index(b)]}': they are not nested in one another"
            )
    chain = [ordered[0]]
    while chain[-1] is not ordered[-1]:
        ops = _body_ops(chain[-1])
        if len(ops) != 1 or not isinstance(ops[0], ForOp):
            what = ", ".join(op.name for op in ops) or "nothing"
            raise ScheduleError(
                f"cannot reorder: loops are not perfectly nested (loop "
                f"'{loop_name(chain[-1])}' contains {what})"
            )
        chain.append(ops[0])
    return chain


def _ancestors(op: ForOp) -> list:
    out = []
    parent = op.parent_op()
    while parent is not None:
        out.append(parent)
        parent = parent.parent_op()
    return out


def _check_reorder(chain: list[ForOp], new_chain: list[ForOp], names: dict[int, str]) -> None:
    """Dependence rule (per block under the nest):
    - no buffer a block writes is read by a block of the nest, and no op other than
      tl.for / tl.block / tl.yield sits in it (cache copies pin the loops around them);
    - outputs updated by an associative and commutative combiner (add / mul / max / min /
      and / or / xor; floats up to reassociation) allow any order of the points writing
      one element; otherwise the loops that enumerate those points (reduction loops,
      loops the block does not use, and every loop if an output is not injective over
      the parallel iterators) keep their relative order;
    - a block with an init, or an order-sensitive one, must have no loop bound to both
      parallel and reduction iterators, and (with an init) no loop it does not use.
    """
    moved = [f is not g for f, g in zip(chain, new_chain)]
    if not any(moved):
        return
    innermost = chain[-1]
    blocks = blocks_under(innermost)
    for op in chain[0].walk():
        if (
            op is chain[0]
            or isinstance(op, ForOp | BlockOp | YieldOp)
            or isinstance(op.parent_op(), BlockOp)
        ):
            continue
        raise ScheduleError(f"cannot reorder loops around '{op.name}' (only tl.blocks)")
    written: dict[SSAValue, str] = {}
    for b in blocks:
        for out in b.outputs:
            if out in written:
                raise ScheduleError(
                    f'cannot reorder: tl.blocks "{written[out]}" and "{b.label.data}" write '
                    "the same buffer inside the nest"
                )
            written[out] = b.label.data
    for b in blocks:
        for buf in b.inputs:
            if buf in written:
                raise ScheduleError(
                    f'cannot reorder: tl.block "{b.label.data}" reads a buffer written by '
                    f'"{written[buf]}" inside the nest (a dependence between iterations)'
                )
    for b in blocks:
        red = set(b.reduction_dims)
        classes: dict[int, str] = {}
        for f in chain:
            dims = dims_of(b, f.induction_var)
            classes[id(f)] = (
                "unused"
                if not dims
                else "mixed"
                if dims & red and dims - red
                else "reduction"
                if dims & red
                else "parallel"
            )
        has_init = any(v is not None for v in b.init_values)
        commutative = order_insensitive(b)
        injective = injective_outputs(b)
        label = b.label.data
        if has_init or not commutative:
            for f in chain:
                bad = classes[id(f)] == "mixed" or (has_init and classes[id(f)] == "unused")
                if bad:
                    raise ScheduleError(
                        f"cannot reorder loop '{names[id(f)]}': it is {classes[id(f)]} for "
                        f'tl.block "{label}", whose '
                        + ("init" if has_init else "update is not a commutative reduction")
                        + " needs the order of its reduction points kept"
                    )
        if commutative and injective:
            continue
        keep = [f for f in chain if not injective or classes[id(f)] in ("reduction", "unused")]
        old_order = [id(f) for f in chain if f in keep]
        new_order = [id(f) for f in new_chain if f in keep]
        if old_order != new_order:
            culprit = next(f for f in new_chain if f in keep and id(f) != old_order[0])
            why = (
                "an output is written by several parallel points"
                if not injective
                else "the reduction is not associative and commutative"
            )
            raise ScheduleError(
                f"cannot reorder loop '{names[id(culprit)]}': tl.block \"{label}\" needs its "
                f"points in their original order ({why})"
            )


def reorder(loops: Sequence[ForOp], names: Sequence[str] = ()) -> None:
    """Permute perfectly nested loops: the i-th outermost position of the given loops
    gets `loops[i]`. Bindings refer to loop variables, so only the loop headers move.

        tl.for %m = 0 to 4 { tl.for %n = 0 to 3 {
          tl.block "s" ... at(m = %m, n = %n) ...

    reordered (n, m) becomes

        tl.for %n = 0 to 3 { tl.for %m = 0 to 4 {
          tl.block "s" ... at(m = %m, n = %n) ...
    """
    loops = list(loops)
    names = list(names) + [loop_name(f) for f in loops[len(names) :]]
    if len({id(f) for f in loops}) != len(loops):
        raise ScheduleError(f"cannot reorder: a loop is given twice ({', '.join(names)})")
    if len(loops) < 2:
        return
    chain = _chain(loops, names)
    selected = {id(f) for f in loops}
    positions = [f for f in chain if id(f) in selected]
    assignment = {id(p): src for p, src in zip(positions, loops)}
    new_chain = [assignment.get(id(f), f) for f in chain]
    name_of = {id(f): loop_name(f) for f in chain}
    name_of.update({id(f): n for f, n in zip(loops, names)})
    _check_reorder(chain, new_chain, name_of)
    headers = {
        id(f): (
            dict(f.properties),
            dict(f.attributes),
            loop_name(f),
            [(u.operation, u.index) for u in f.induction_var.uses],
        )
        for f in positions
    }
    for pos, src in zip(positions, loops):
        props, attrs, hint, uses = headers[id(src)]
        pos.properties = dict(props)
        pos.attributes = dict(attrs)
        iv = pos.induction_var
        for user, index in uses:
            user.operands[index] = iv
        iv.name_hint = hint
