"""Transformations that add loop nests: decompose-reduction (hoist a block's init into its
own nest) and cache-read / pack (copy an input into a local buffer first)."""

from __future__ import annotations

from collections.abc import Sequence

from xdsl.builder import Builder, InsertPoint
from xdsl.dialects import arith, memref
from xdsl.dialects.builtin import MemRefType, ModuleOp, UnitAttr
from xdsl.ir import Block, Operation, Region, SSAValue
from xdsl.ir.affine import AffineExpr, AffineMap

from mlc.dialects.tl import BlockOp, ForOp, IteratorAttr, LoopKind, YieldOp, build_loop_nest
from mlc.transforms.loops.common import (
    ScheduleError,
    block_loops,
    blocks_under,
    dims_of,
    fresh_label,
    injective_outputs,
    loop_name,
    remake_block,
)

__all__ = ["cache_read", "decompose_reduction"]


def _root(op: Operation) -> Operation:
    while (parent := op.parent_op()) is not None and not isinstance(op, ModuleOp):
        op = parent
    return op


def _nest(
    anchor: Operation,
    bounds: Sequence[tuple[int, int, int]],
    hints: Sequence[str],
    inner: Operation,
) -> Operation:
    """Insert loops with `bounds` around `inner` before `anchor`; return the top op."""
    holder = Block()
    loops, builder = build_loop_nest(Builder(InsertPoint.at_end(holder)), list(bounds))
    for loop, hint in zip(loops, hints):
        loop.induction_var.name_hint = hint
    builder.insert(inner)
    top = holder.first_op
    assert top is not None
    top.detach()
    parent = anchor.parent_block()
    assert parent is not None
    parent.insert_op_before(top, anchor)
    return top


def decompose_reduction(block: BlockOp, loop: ForOp, names: Sequence[str] = ()) -> BlockOp:
    """Move `block`'s output inits into an init nest placed right before `loop` (the loops
    outside `loop` must bind parallel iterators only); returns the init block.

        tl.for %m = 0 to 4 { tl.for %k = 0 to 2 {
          tl.block "mm" iterators(m: 4 parallel, k: 2 reduction) at(m = %m, k = %k)
              ... outs(%C[m] init 0.0 : ...) ...

    decomposed at %k becomes

        tl.for %m = 0 to 4 {
          tl.block "mm_init" iterators(m: 4 parallel) at(m = %m) outs(%C[m] : ...) {0.0}
          tl.for %k = 0 to 2 {
            tl.block "mm" ... at(m = %m, k = %k) ... outs(%C[m] : ...) ...
    """
    label = block.label.data
    name = names[0] if names else loop_name(loop)
    loops = block_loops(block)
    if loop not in loops:
        raise ScheduleError(f"cannot decompose at loop '{name}': it does not enclose \"{label}\"")
    inits = block.init_values
    if all(v is None for v in inits):
        raise ScheduleError(f'cannot decompose tl.block "{label}": it has no output init')
    if not injective_outputs(block):
        raise ScheduleError(
            f'cannot decompose tl.block "{label}": an output is written by several parallel '
            "points, so its init is not a separate fill"
        )
    ivs = [f.induction_var for f in loops]
    if any(v not in ivs for v in block.loop_vars):
        raise ScheduleError(f'cannot decompose "{label}": a loop variable is not a tl.for')
    red = set(block.reduction_dims)
    k = loops.index(loop)
    replicate: list[ForOp] = []
    for i, f in enumerate(loops):
        dims = dims_of(block, f.induction_var)
        if i < k and (not dims or dims & red):
            raise ScheduleError(
                f"cannot decompose at loop '{name}': the enclosing loop '{loop_name(f)}' "
                "does not bind parallel iterators only; decompose further out"
            )
        if dims & red and dims - red:
            raise ScheduleError(
                f"cannot decompose at loop '{name}': loop '{loop_name(f)}' binds both "
                "parallel and reduction iterators"
            )
        if i >= k and dims and not dims & red:
            replicate.append(f)
    par = block.parallel_dims
    n = len(block.iterators.data)
    conds: list[AffineExpr] = []
    pred = block.predicate_map
    to_par = [
        AffineExpr.dimension(par.index(d)) if d in par else AffineExpr.constant(0) for d in range(n)
    ]
    for c in pred.results if pred else ():
        used = c.used_dims()
        if used <= set(par):
            conds.append(c.replace_dims_and_symbols(to_par, []))
        elif used <= red:
            if AffineMap(n, 0, (c,)).eval([0] * n, [])[0] >= 0:
                raise ScheduleError(
                    f'cannot decompose "{label}": its predicate excludes the '
                    "point where the reduction iterators are 0"
                )
        else:
            raise ScheduleError(
                f'cannot decompose "{label}": its predicate mixes parallel and reduction iterators'
            )
    # legal: build the init block over the parallel iterators
    new_loops = [ForOp(f.lb, f.ub, f.step_value) for f in replicate]
    var_map = {f.induction_var: g.induction_var for f, g in zip(replicate, new_loops)}
    old_vars = list(block.loop_vars)
    init_vars: list[SSAValue] = []
    for d in par:
        for p in sorted(block.binding_map.results[d].used_dims()):
            v = var_map.get(old_vars[p], old_vars[p])
            if v not in init_vars:
                init_vars.append(v)
    dim_exprs = [
        AffineExpr.dimension(init_vars.index(var_map.get(v, v)))
        if var_map.get(v, v) in init_vars
        else AffineExpr.constant(0)
        for v in old_vars
    ]
    bindings = AffineMap(
        len(old_vars), 0, tuple(block.binding_map.results[d] for d in par)
    ).replace_dims_and_symbols(dim_exprs, [], len(init_vars), 0)
    outs, maps, types = [], [], []
    for j, (v, m, init) in enumerate(zip(block.outputs, block.output_maps, inits)):
        if init is not None:
            outs.append(v)
            maps.append(m.replace_dims_and_symbols(to_par, [], len(par), 0))
            types.append(block.buffer_types[len(block.inputs) + j].element_type)
    body = Block(arg_types=types)
    consts = [arith.ConstantOp(init) for init in inits if init is not None]
    body.add_ops([*consts, YieldOp(*[c.result for c in consts])])
    init_block = BlockOp(
        fresh_label(_root(block), f"{label}_init"),
        [block.iterator_list[d] for d in par],
        init_vars,
        bindings,
        [],
        outs,
        maps,
        [],
        [UnitAttr()] * len(outs),
        Region(body),
        AffineMap(len(par), 0, tuple(conds)) if conds else None,
    )
    if new_loops:
        for f, g in zip(replicate, new_loops):
            g.induction_var.name_hint = loop_name(f)
        for outer, inner in zip(new_loops, new_loops[1:]):
            outer.body.block.insert_op_before(inner, outer.body.block.last_op)  # type: ignore[arg-type]
        innermost = new_loops[-1].body.block
        innermost.insert_op_before(init_block, innermost.last_op)  # type: ignore[arg-type]
        top: Operation = new_loops[0]
    else:
        top = init_block
    parent = loop.parent_block()
    assert parent is not None
    parent.insert_op_before(top, loop)
    remake_block(block, inits=[UnitAttr()] * len(block.outputs))
    return init_block


def checked_cache_input(
    block: BlockOp, index: int, layout: Sequence[int] | None
) -> tuple[SSAValue, MemRefType, list[int], list[int]]:
    """Input #`index` of `block`, its type, shape and the layout permutation to pack it
    with (identity when `layout` is None); a `ScheduleError` names what is wrong."""
    label = block.label.data
    if not 0 <= index < len(block.inputs):
        raise ScheduleError(
            f'cannot cache input #{index} of tl.block "{label}": it has {len(block.inputs)} inputs'
        )
    buf = block.inputs[index]
    ty = buf.type
    assert isinstance(ty, MemRefType)
    shape = list(ty.get_shape())
    perm = list(range(len(shape))) if layout is None else list(layout)
    if sorted(perm) != list(range(len(shape))):
        raise ScheduleError(
            f'cannot pack input #{index} of "{label}": layout {perm} is not a permutation '
            f"of its {len(shape)} dims"
        )
    return buf, ty, shape, perm


def cache_read(
    block: BlockOp,
    index: int,
    at: ForOp | None = None,
    layout: Sequence[int] | None = None,
    names: Sequence[str] = (),
) -> BlockOp:
    """Copy input `index` of `block` into a new local buffer (`memref.alloc`, optionally
    with permuted dims: `layout[i]` is the source dim of local dim i — a pack) by a copy
    nest placed before loop `at` (default: the block's outermost loop), and read the local
    buffer instead. The copy writes the whole buffer each time it runs. Returns the copy
    block.

        tl.for %k = 0 to 2 { tl.block "mm" ... ins(%B[k, n] : memref<2x3xf32>) ...

    with layout (1, 0) becomes

        %Bp = memref.alloc() : memref<3x2xf32>
        tl.for %c0 = 0 to 2 { tl.for %c1 = 0 to 3 {
          tl.block "mm_cache" iterators(c0: 2 parallel, c1: 3 parallel) at(...)
              ins(%B[c0, c1] : ...) outs(%Bp[c1, c0] : ...) { yield %b } } }
        tl.for %k = 0 to 2 { tl.block "mm" ... ins(%Bp[n, k] : memref<3x2xf32>) ...
        memref.dealloc %Bp : memref<3x2xf32>
    """
    label = block.label.data
    buf, ty, shape, perm = checked_cache_input(block, index, layout)
    rank = len(shape)
    loops = block_loops(block)
    if at is not None and at not in loops:
        name = names[0] if names else loop_name(at)
        raise ScheduleError(f"cannot cache at loop '{name}': it does not enclose \"{label}\"")
    anchor: Operation = at if at is not None else (loops[0] if loops else block)
    for f in loops:
        if f is anchor:
            break
        if f.loop_kind in (LoopKind.PARALLEL, LoopKind.VECTORIZE):
            raise ScheduleError(
                f'cannot cache input #{index} of "{label}" inside {f.loop_kind.value} loop '
                f"'{loop_name(f)}': the local buffer would be shared by its iterations"
            )
    for b in blocks_under(anchor) if anchor is not block else [block]:
        if buf in b.outputs:
            raise ScheduleError(
                f'cannot cache input #{index} of "{label}": tl.block "{b.label.data}" '
                "writes it inside the nest"
            )
    top: Operation = loops[0] if loops else block
    local_ty = MemRefType(ty.element_type, [shape[p] for p in perm])
    alloc = memref.AllocOp.get(ty.element_type, shape=[shape[p] for p in perm])
    parent = top.parent_block()
    assert parent is not None
    parent.insert_op_before(alloc, top)
    parent.insert_op_after(memref.DeallocOp.get(alloc), top)
    local = alloc.memref
    assert local.type == local_ty
    local.name_hint = f"{buf.name_hint}_local" if buf.name_hint else "local"
    iters = [IteratorAttr(f"c{d}", shape[d], "parallel") for d in range(rank)]
    body = Block(arg_types=[ty.element_type, ty.element_type])
    body.add_op(YieldOp(body.args[0]))
    copy_label = fresh_label(_root(block), f"{label}_cache")
    copy = BlockOp(
        copy_label,
        iters,
        [],
        AffineMap(0, 0, ()),
        [buf],
        [local],
        [
            AffineMap.identity(rank),
            AffineMap(rank, 0, tuple(AffineExpr.dimension(p) for p in perm)),
        ],
        [UnitAttr()],
        [UnitAttr()],
        Region(body),
    )
    bounds = [(0, s, 1) for s in shape]
    _nest(anchor, bounds, [f"c{d}" for d in range(rank)], copy)
    loop_vars = [f.induction_var for f in block_loops(copy)][-rank:] if rank else []
    copy = remake_block(copy, loop_vars=loop_vars, bindings=AffineMap.identity(rank))
    inputs = list(block.inputs)
    inputs[index] = local
    maps = list(block.maps)
    m = maps[index]
    maps[index] = AffineMap(m.num_dims, 0, tuple(m.results[p] for p in perm))
    remake_block(block, inputs=inputs, maps=maps)
    return copy
