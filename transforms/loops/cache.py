"""Tile-level buffers: cache-read / pack of the tile a loop nest reads, and cache-write
(compute into a local tile, write it back after a loop) — the basis of GEMM panel packing
and register-tile accumulation.

The tile of an operand at loop `at` is the region its index map reaches while `at` and
the loops inside it run, the loops outside `at` fixed. Per buffer dim `d` the access
`e_d` (the index map composed with the block's bindings, affine in loop variables) is
split into an outer part `O_d` (loops outside `at`) and an inner part `I_d` (the rest,
plus the constant) whose interval `[lo, hi]` gives the tile extent. The block reads the
tile at `e_d - (O_d + lo)`; since index maps are over iterators, that offset is written
over iterators as `(e_d - lo) mod a` where `a` (the gcd of the outer coefficients) is at
least the tile extent — exact because `O_d` is a multiple of `a`. A dim where this does
not hold (an inner floordiv / mod, a too-small `a`) keeps its whole extent.

The copy block iterates the tile (`t0, t1, ...`) and reads the origin from the loops
outside `at` through extra iterators (`o0, ...`, bound to those loops): it reads
`src[O_d(o) + lo + t_d]` (guarded: a tile may stick out of the buffer at an edge) and
writes `local[t_d]`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from xdsl.builder import Builder, InsertPoint
from xdsl.dialects import memref
from xdsl.dialects.builtin import MemRefType, UnitAttr
from xdsl.ir import Attribute, Block, Operation, Region, SSAValue
from xdsl.ir.affine import AffineExpr, AffineMap

from mlc.dialects.tl import (
    BlockOp,
    ForOp,
    IteratorAttr,
    LoopKind,
    YieldOp,
    affine_range,
    build_loop_nest,
    linear_form,
)
from mlc.dialects.tl.base import scalar_attr
from mlc.dialects.tl.loops import loop_var_range
from mlc.transforms.loops import buffers
from mlc.transforms.loops.common import (
    ScheduleError,
    block_loops,
    blocks_under,
    fresh_label,
    loop_name,
    remake_block,
)

__all__ = ["cache_read", "cache_write", "tile_region"]


@dataclass
class Tile:
    """The region of one operand that the loops from `at` inward touch."""

    #: loops outside `at` whose variables place the tile (copy iterators o0, o1, ...)
    outer: list[ForOp]
    #: per buffer dim: the tile index, over the block's iterators
    local: list[AffineExpr]
    #: per buffer dim: the source index, over the copy iterators (t0.., o0..)
    source: list[AffineExpr]
    #: per buffer dim: the tile extent
    extents: list[int]


def _root(op: Operation) -> Operation:
    return buffers._root(op)  # pyright: ignore[reportPrivateUsage]


def tile_region(
    block: BlockOp, index_map: AffineMap, shape: Sequence[int], at: ForOp, in_bounds: bool
) -> Tile:
    """The tile of an operand of `block` (its `index_map`, over `shape`) at loop `at`.
    With `in_bounds`, a dim whose tile could leave the buffer keeps its whole extent."""
    loops = block_loops(block)
    k = loops.index(at)
    outer_ivs = [f.induction_var for f in loops[:k]]
    ranges = []
    for v in block.loop_vars:
        r = loop_var_range(v)
        if r is None:
            raise ScheduleError(
                f'cannot take a tile of tl.block "{block.label.data}": a loop variable is '
                "not a tl.for"
            )
        ranges.append(r)
    for f in loops[:k]:
        if f.lb != 0 or f.step_value != 1:
            raise ScheduleError(
                f"loop '{block.label.data}/{loop_name(f)}' is not normalised (expected 0 to N "
                "step 1)"
            )
    vars_ = list(block.loop_vars)
    is_outer = [v in outer_ivs for v in vars_]
    rank = len(shape)
    used_outer: list[ForOp] = []
    it_ranges = [(0, e - 1) for e in block.extents]
    parts: list[tuple[AffineExpr, int, int, int] | None] = []  # (O + c, c, lo, a)
    for m_d in index_map.results:
        e = m_d.replace_dims_and_symbols(list(block.binding_map.results), [])
        coeffs, atoms, const = linear_form(e)
        if any(not is_outer[p] for _, atom in atoms for p in atom.used_dims()):
            parts.append(None)
            continue
        inner = AffineExpr.constant(const)
        for p, c in coeffs.items():
            if not is_outer[p]:
                inner = inner + AffineExpr.dimension(p) * c
        lo, hi = affine_range(inner, ranges)
        outer_coeffs = [c for p, c in coeffs.items() if is_outer[p]] + [c for c, _ in atoms]
        a = math.gcd(*outer_coeffs) if outer_coeffs else 0
        if outer_coeffs and a < hi - lo + 1:
            parts.append(None)
            continue
        zero_inner = [
            AffineExpr.dimension(p) if is_outer[p] else AffineExpr.constant(0)
            for p in range(len(vars_))
        ]
        parts.append((e.replace_dims_and_symbols(zero_inner, []), const, lo, a))
        for p in sorted(e.used_dims()):
            f = loops[outer_ivs.index(vars_[p])] if is_outer[p] else None
            if f is not None and f not in used_outer:
                used_outer.append(f)
    used_outer.sort(key=loops.index)
    # the copy's dims: t0..t{rank-1}, then o0.. for the outer loops used
    to_copy = [
        AffineExpr.dimension(rank + used_outer.index(loops[outer_ivs.index(v)]))
        if is_outer[p] and loops[outer_ivs.index(v)] in used_outer
        else AffineExpr.constant(0)
        for p, v in enumerate(vars_)
    ]
    copy_ranges = [(0, 0)] * rank + [(0, f.trip_count - 1) for f in used_outer]
    local: list[AffineExpr] = []
    source: list[AffineExpr] = []
    extents: list[int] = []
    for d, (m_d, part) in enumerate(zip(index_map.results, parts)):
        t = AffineExpr.dimension(d)
        if part is not None:
            origin, const, lo, a = part
            loc = (m_d - lo) % a if a else m_d - lo
            vlo, vhi = affine_range(loc, it_ranges)
            src = origin.replace_dims_and_symbols(to_copy, []) + (lo - const) + t
            copy_ranges[d] = (0, vhi)
            slo, shi = affine_range(src, copy_ranges)
            if vlo >= 0 and (not in_bounds or (slo >= 0 and shi <= shape[d] - 1)):
                local.append(loc)
                source.append(src)
                extents.append(vhi + 1)
                continue
        local.append(m_d)
        source.append(t)
        extents.append(shape[d])
        copy_ranges[d] = (0, shape[d] - 1)
    # drop outer loops no kept dim uses
    used = set().union(*(s.used_dims() for s in source)) if source else set()
    keep = [i for i in range(len(used_outer)) if rank + i in used]
    renum = [AffineExpr.dimension(d) for d in range(rank)] + [
        AffineExpr.dimension(rank + keep.index(i)) if i in keep else AffineExpr.constant(0)
        for i in range(len(used_outer))
    ]
    source = [s.replace_dims_and_symbols(renum, []) for s in source]
    return Tile([used_outer[i] for i in keep], local, source, extents)


def _insert_copy(
    anchor: Operation,
    tile: Tile,
    make: Callable[[list[SSAValue], list[IteratorAttr], AffineMap], BlockOp],
) -> BlockOp:
    """Insert the copy nest over the tile before `anchor`; `make(loop_vars, iterators,
    bindings)` builds the copy block."""
    holder = Block()
    loops, builder = build_loop_nest(Builder(InsertPoint.at_end(holder)), tile.extents)
    for d, loop in enumerate(loops):
        loop.induction_var.name_hint = f"c{d}"
    iters = [IteratorAttr(f"t{d}", e, "parallel") for d, e in enumerate(tile.extents)]
    iters += [IteratorAttr(f"o{i}", f.trip_count, "reduction") for i, f in enumerate(tile.outer)]
    loop_vars: list[SSAValue] = [f.induction_var for f in loops]
    loop_vars += [f.induction_var for f in tile.outer]
    bindings = AffineMap.identity(len(loop_vars))
    copy = make(loop_vars, iters, bindings)
    builder.insert(copy)
    top = holder.first_op
    assert top is not None
    top.detach()
    parent = anchor.parent_block()
    assert parent is not None
    parent.insert_op_before(top, anchor)
    return copy


def _copy_body(ty: Attribute) -> Region:
    body = Block(arg_types=[ty, ty])
    body.add_op(YieldOp(body.args[0]))
    return Region(body)


def _check_outer_loops(block: BlockOp, at: ForOp, what: str) -> None:
    for f in block_loops(block):
        if f is at:
            return
        if f.loop_kind in (LoopKind.PARALLEL, LoopKind.VECTORIZE):
            raise ScheduleError(
                f"{what} inside {f.loop_kind.value} loop '{block.label.data}/{loop_name(f)}': "
                "the local buffer "
                "would be shared by its iterations"
            )


def _alloc(block: BlockOp, buf: SSAValue, extents: Sequence[int], perm: Sequence[int]) -> SSAValue:
    ty = buf.type
    assert isinstance(ty, MemRefType)
    loops = block_loops(block)
    top: Operation = loops[0] if loops else block
    alloc = memref.AllocOp.get(ty.element_type, shape=[extents[p] for p in perm])
    parent = top.parent_block()
    assert parent is not None
    parent.insert_op_before(alloc, top)
    parent.insert_op_after(memref.DeallocOp.get(alloc), top)
    local = alloc.memref
    local.name_hint = f"{buf.name_hint}_local" if buf.name_hint else "local"
    return local


def cache_read(
    block: BlockOp,
    index: int,
    at: ForOp | None = None,
    layout: Sequence[int] | None = None,
    names: Sequence[str] = (),
) -> BlockOp:
    """Copy input `index` of `block` into a local buffer before loop `at` and read it
    from there (`layout[i]` is the source dim of local dim i: a pack). Without `at` the
    whole buffer is copied before the outermost loop (`buffers.cache_read`); with `at`
    only the tile that `at` and the loops inside it read (see the module docstring).
    Returns the copy block.

        tl.for %k.o = 0 to 2 { tl.for %n = 0 to 3 { tl.for %k.i = 0 to 4 {
          tl.block "mm" ... at(n = %n, k = %k.o * 4 + %k.i) ins(%B[k, n] : memref<8x3xf32>) ...

    packed at n with layout (1, 0) becomes

        %B_local = memref.alloc() : memref<3x4xf32>
        tl.for %k.o = 0 to 2 {
          tl.for %c0 = 0 to 4 { tl.for %c1 = 0 to 3 {
            tl.block "mm_cache" iterators(t0: 4 parallel, t1: 3 parallel, o0: 2 reduction)
                at(t0 = %c0, t1 = %c1, o0 = %k.o) ins(%B[o0 * 4 + t0, t1] pad 0.0 : ...)
                outs(%B_local[t1, t0] : memref<3x4xf32>) { yield %b } } }
          tl.for %n = 0 to 3 { tl.for %k.i = 0 to 4 {
            tl.block "mm" ... ins(%B_local[n, k mod 4] : memref<3x4xf32>) ...
    """
    if at is None:
        return buffers.cache_read(block, index, at, layout, names)
    label = block.label.data
    buf, ty, shape, perm = buffers.checked_cache_input(block, index, layout)
    rank = len(shape)
    name = names[0] if names else loop_name(at)
    if at not in block_loops(block):
        raise ScheduleError(f"cannot cache at loop '{name}': it does not enclose \"{label}\"")
    _check_outer_loops(block, at, f'cannot cache input #{index} of "{label}"')
    for b in blocks_under(at):
        if buf in b.outputs:
            raise ScheduleError(
                f'cannot cache input #{index} of "{label}": tl.block "{b.label.data}" '
                "writes it inside the nest"
            )
    tile = tile_region(block, block.input_maps[index], shape, at, in_bounds=False)
    # legal: rewrite
    local = _alloc(block, buf, tile.extents, perm)
    pad = block.pad_values[index]
    pad_attr = pad if pad is not None else scalar_attr(0, ty.element_type)
    n_it = rank + len(tile.outer)

    def make(loop_vars: list[SSAValue], iters: list[IteratorAttr], bindings: AffineMap) -> BlockOp:
        return BlockOp(
            fresh_label(_root(block), f"{label}_cache"),
            iters,
            loop_vars,
            bindings,
            [buf],
            [local],
            [
                AffineMap(n_it, 0, tuple(tile.source)),
                AffineMap(n_it, 0, tuple(AffineExpr.dimension(p) for p in perm)),
            ],
            [pad_attr],
            [UnitAttr()],
            _copy_body(ty.element_type),
        )

    copy = _insert_copy(at, tile, make)
    inputs = list(block.inputs)
    inputs[index] = local
    maps = list(block.maps)
    m = maps[index]
    maps[index] = AffineMap(m.num_dims, 0, tuple(tile.local[p] for p in perm))
    remake_block(block, inputs=inputs, maps=maps)
    return copy


def cache_write(
    block: BlockOp, index: int, at: ForOp | None = None, names: Sequence[str] = ()
) -> tuple[BlockOp, BlockOp]:
    """Make `block` compute output `index` into a local tile buffer (`memref.alloc`): the
    tile that loop `at` (default: the outermost) and the loops inside it write is copied
    in before `at` and written back right after it — register-tile accumulation. Returns
    the copy-in and copy-out blocks.

        tl.for %m = 0 to 4 { tl.for %n = 0 to 3 { tl.for %k = 0 to 2 {
          tl.block "mm" ... at(m = %m, n = %n, k = %k) ... outs(%C[m, n] : memref<4x3xf32>) ...

    cached at n becomes

        %C_local = memref.alloc() : memref<1x3xf32>
        tl.for %m = 0 to 4 {
          tl.for %c0 = 0 to 1 { tl.for %c1 = 0 to 3 {
            tl.block "mm_load" iterators(t0: 1 parallel, t1: 3 parallel, o0: 4 reduction)
                ... ins(%C[o0 + t0, t1] ...) outs(%C_local[t0, t1] ...) } }
          tl.for %n = 0 to 3 { tl.for %k = 0 to 2 {
            tl.block "mm" ... outs(%C_local[0, n] : memref<1x3xf32>) ... } }
          tl.for %c0 = 0 to 1 { tl.for %c1 = 0 to 3 {
            tl.block "mm_store" iterators(t0: 1 parallel, t1: 3 parallel, o0: 4 parallel)
                ... ins(%C_local[t0, t1] ...) outs(%C[o0 + t0, t1] ...) } } }
    """
    label = block.label.data
    if not 0 <= index < len(block.outputs):
        raise ScheduleError(
            f'cannot cache output #{index} of tl.block "{label}": it has '
            f"{len(block.outputs)} outputs"
        )
    loops = block_loops(block)
    if not loops:
        raise ScheduleError(f'cannot cache-write tl.block "{label}": it is in no loop')
    name = names[0] if names else loop_name(at if at is not None else loops[0])
    if at is None:
        at = loops[0]
    if at not in loops:
        raise ScheduleError(f"cannot cache-write at loop '{name}': it does not enclose \"{label}\"")
    buf = block.outputs[index]
    _check_outer_loops(block, at, f'cannot cache output #{index} of "{label}"')
    for b in blocks_under(at):
        if b is not block and (buf in b.outputs or buf in b.inputs):
            raise ScheduleError(
                f"cannot cache-write at loop '{name}': tl.block \"{b.label.data}\" also "
                f'accesses output #{index} of "{label}" inside the nest'
            )
    for op in at.walk():
        if (
            not isinstance(op, BlockOp | ForOp | YieldOp)
            and not isinstance(op.parent_op(), BlockOp)
            and buf in op.operands
        ):
            raise ScheduleError(
                f"cannot cache-write at loop '{name}': '{op.name}' uses the buffer inside the nest"
            )
    ty = buf.type
    assert isinstance(ty, MemRefType)
    shape = list(ty.get_shape())
    rank = len(shape)
    tile = tile_region(block, block.output_maps[index], shape, at, in_bounds=True)
    # legal: rewrite
    local = _alloc(block, buf, tile.extents, list(range(rank)))
    n_it = rank + len(tile.outer)
    src = AffineMap(n_it, 0, tuple(tile.source))
    dst = AffineMap(n_it, 0, tuple(AffineExpr.dimension(d) for d in range(rank)))
    root = _root(block)

    def load(loop_vars: list[SSAValue], iters: list[IteratorAttr], bindings: AffineMap) -> BlockOp:
        return BlockOp(
            fresh_label(root, f"{label}_load"),
            iters,
            loop_vars,
            bindings,
            [buf],
            [local],
            [src, dst],
            [UnitAttr()],
            [UnitAttr()],
            _copy_body(ty.element_type),
        )

    def store(loop_vars: list[SSAValue], iters: list[IteratorAttr], bindings: AffineMap) -> BlockOp:
        iters = [IteratorAttr(it.label, it.size, "parallel") for it in iters]
        return BlockOp(
            fresh_label(root, f"{label}_store"),
            iters,
            loop_vars,
            bindings,
            [local],
            [buf],
            [dst, src],
            [UnitAttr()],
            [UnitAttr()],
            _copy_body(ty.element_type),
        )

    copy_in = _insert_copy(at, tile, load)
    after = at.next_op
    assert after is not None
    copy_out = _insert_copy(after, tile, store)
    outputs = list(block.outputs)
    outputs[index] = local
    maps = list(block.maps)
    m = maps[len(block.inputs) + index]
    maps[len(block.inputs) + index] = AffineMap(m.num_dims, 0, tuple(tile.local))
    new = BlockOp(
        label,
        block.iterator_list,
        list(block.loop_vars),
        block.binding_map,
        list(block.inputs),
        outputs,
        maps,
        list(block.pads.data),
        list(block.inits.data),
        block.clone_body(),
        block.predicate_map,
        dict(block.attributes),
    )
    parent = block.parent_block()
    assert parent is not None
    parent.insert_op_before(new, block)
    parent.erase_op(block)
    return copy_in, copy_out
