"""`tl-concat-in-place`: concatenations without copies, at the tl.kernel level.

`convert-graph-to-tl` lowers a `Concat` to one copy kernel per input into a fresh buffer:

    %c = memref.alloc() : memref<1x48x8x8xf32>
    tl.kernel "concat_0" ... ins(%x[i0, i1, i2, i3] : memref<1x16x8x8xf32>)
                             outs(%c[i0, i1, i2, i3] : memref<1x48x8x8xf32>) {...}
    tl.kernel "concat_1" ... ins(%y[i0, i1, i2, i3] : memref<1x32x8x8xf32>)
                             outs(%c[i0, i1 + 16, i2, i3] : memref<1x48x8x8xf32>) {...}

Two rewrites remove copies, each only where it is exact:

1. **Shared prefixes.** A DenseNet block concatenates all earlier features again for every
   layer (`Concat(x0, x1)`, `Concat(x0, x1, x2)`, ...): quadratic copying. When every copy
   into a buffer `A` also goes, from the same source to the same place, into a later
   buffer `B` that extends `A` along the concatenated axis (the axes before it of size 1,
   so `A`'s elements are a prefix of `B`'s in memory, indexed alike), `A` becomes `B`: its
   readers read `B`'s prefix, and `B`'s repeated copies are dropped. Nothing but those
   copies writes `A` or `B`, and no source is written between the two sets of copies.
2. **Producers write in place.** A source buffer that only its producers write and only
   its copy reads is replaced by its slice of the destination: the producers' output
   maps are shifted by the copy's offset, and the copy and the source buffer go away
   (when no other kernel touches the destination while the producers run).

A copy kernel is a `tl.kernel` with one input read at the identity map of its iterators
(no padding), one output written at that identity plus a constant offset on one axis (no
init), no reduction, and a body that yields its input.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from xdsl.context import Context
from xdsl.dialects import func, memref
from xdsl.dialects.builtin import AffineMapAttr, ArrayAttr, MemRefType, ModuleOp
from xdsl.ir import Block, Operation, SSAValue
from xdsl.ir.affine import AffineConstantExpr, AffineExpr, AffineMap
from xdsl.passes import ModulePass

from mlc.dialects.tl import KernelOp, linear_form

__all__ = ["Copy", "TlConcatInPlacePass", "concat_in_place", "copy_of"]


@dataclass(frozen=True)
class Copy:
    """A copy kernel: all of `source` into `dest`, shifted by `offset` along `axis`."""

    kernel: KernelOp
    axis: int
    offset: int

    @property
    def source(self) -> SSAValue:
        return self.kernel.inputs[0]

    @property
    def dest(self) -> SSAValue:
        return self.kernel.outputs[0]

    @property
    def placement(self) -> tuple[SSAValue, int, int]:
        """What it copies where (the same for a repeat of this copy into another buffer)."""
        return self.source, self.axis, self.offset


def _shifted_axis(m: AffineMap, extents: Sequence[int]) -> tuple[int, int] | None:
    """(axis, offset) when `m` is the identity plus a constant on one axis (identity:
    axis 0, offset 0), over iterators of `extents` (an iterator of extent 1 is 0: a
    constant stands for it)."""
    if m.num_symbols or len(m.results) != m.num_dims:
        return None
    found: tuple[int, int] | None = None
    for axis, e in enumerate(m.results):
        coeffs, atoms, const = linear_form(e)
        if extents[axis] == 1:
            coeffs = {d: c for d, c in coeffs.items() if d != axis} or {axis: 1}
        if atoms or coeffs != {axis: 1} or const < 0:
            return None
        if const:
            if found is not None:
                return None
            found = (axis, const)
    return found or (0, 0)


def copy_of(op: Operation) -> Copy | None:
    """`op` as a `Copy`, if it is a copy kernel (see the module docstring)."""
    if (
        not isinstance(op, KernelOp)
        or len(op.inputs) != 1
        or len(op.outputs) != 1
        or op.reduction_dims
        or op.pad_values[0] is not None
        or op.init_values[0] is not None
    ):
        return None
    block = op.body_block
    if len(block.ops) != 1 or list(op.yield_op.operands) != [block.args[0]]:
        return None
    source_type, dest_type = op.buffer_types
    in_map, out_map = op.maps
    extents = op.extents
    if _shifted_axis(in_map, extents) != (0, 0) or source_type.get_shape() != tuple(extents):
        return None
    shifted = _shifted_axis(out_map, extents)
    if shifted is None or source_type.element_type != dest_type.element_type:
        return None
    axis, offset = shifted
    return Copy(op, axis, offset)


def _writers_and_readers(
    buffer: SSAValue, returned: bool = False
) -> tuple[list[KernelOp], list[Operation]] | None:
    """The kernels that write `buffer` (as an output) and the ops that read it otherwise;
    None if some use is neither (a call, a view, a return unless `returned`, ...)."""
    writers: list[KernelOp] = []
    readers: list[Operation] = []
    for use in buffer.uses:
        op = use.operation
        if returned and isinstance(op, func.ReturnOp):
            continue
        if not isinstance(op, KernelOp):
            return None
        if use.index >= len(op.inputs):
            if buffer in op.inputs:
                return None
            writers.append(op)
        else:
            readers.append(op)
    return writers, readers


def _is_alloc(value: SSAValue, block: Block) -> bool:
    return isinstance(value.owner, memref.AllocOp) and value.owner.parent_block() is block


def _prefix_layout(inner: MemRefType, outer: MemRefType, axis: int) -> bool:
    """`inner`'s elements are the first ones of `outer`, at the same indices: the shapes
    agree except along `axis` (not longer in `inner`), and every axis before it is 1."""
    a, b = inner.get_shape(), outer.get_shape()
    return (
        len(a) == len(b)
        and inner.element_type == outer.element_type
        and all(a[i] == b[i] for i in range(len(a)) if i != axis)
        and a[axis] <= b[axis]
        and all(d == 1 for d in a[:axis])
    )


def _between(first: Operation, last: Operation) -> list[Operation]:
    ops: list[Operation] = []
    op = first.next_op
    while op is not None and op is not last:
        ops.append(op)
        op = op.next_op
    return ops


def _positions(block: Block) -> dict[Operation, float]:
    """Each op's place in `block` (kept up to date by `_hoist_before`: the passes below
    only hoist allocs and erase ops, so the order of the others never changes)."""
    return {op: float(i) for i, op in enumerate(block.ops)}


def _hoist_before(alloc: Operation, anchor: Operation, position: dict[Operation, float]) -> None:
    """Move `alloc` (an op without operands) up to just before `anchor` if it is later."""
    if position[alloc] > position[anchor]:
        block = anchor.parent_block()
        assert block is not None
        alloc.detach()
        block.insert_op_before(alloc, anchor)
        position[alloc] = position[anchor] - 0.5 / (1 + len(position))


def _share_prefixes(block: Block) -> int:
    """Rewrite 1; returns how many buffers were merged into later ones."""
    position = _positions(block)
    by_dest: dict[SSAValue, list[Copy]] = {}
    for op in block.ops:
        if (c := copy_of(op)) is not None:
            by_dest.setdefault(c.dest, []).append(c)
    dests = [d for d in by_dest if _is_alloc(d, block)]
    merged = 0
    for i, a in enumerate(dests):
        later = _merge_target(a, by_dest, dests[i + 1 :], position)
        if later is None:
            continue
        b, repeats = later
        _hoist_before(b.owner, a.owner, position)  # type: ignore[arg-type]
        a.replace_all_uses_with(b)
        a.owner.detach()  # type: ignore[union-attr]
        a.owner.erase()  # type: ignore[union-attr]
        for c in repeats:
            c.kernel.detach()
            c.kernel.erase()
        kept = [c for c in by_dest[b] if all(c is not r for r in repeats)]
        by_dest[b] = sorted([*by_dest.pop(a), *kept], key=lambda c: position[c.kernel])
        merged += 1
    return merged


def _merge_target(
    a: SSAValue,
    by_dest: dict[SSAValue, list[Copy]],
    candidates: Sequence[SSAValue],
    position: dict[Operation, float],
) -> tuple[SSAValue, list[Copy]] | None:
    """The later buffer `a` can become, and the copies into it that repeat `a`'s."""
    into_a = by_dest[a]
    uses_a = _writers_and_readers(a)
    if uses_a is None or len(uses_a[0]) != len(into_a):
        return None  # something besides its copies writes `a`, or it escapes
    a_type = a.type
    assert isinstance(a_type, MemRefType)
    for b in candidates:
        into_b = by_dest[b]
        axes = {c.axis for c in (*into_a, *into_b) if c.offset}
        if len(axes) != 1:
            continue  # not one concatenated axis (or nothing to share)
        axis = axes.pop()
        b_type = b.type
        assert isinstance(b_type, MemRefType)
        if not _prefix_layout(a_type, b_type, axis):
            continue
        placements = {c.placement: c for c in into_b}
        repeats = [r for c in into_a if (r := placements.get(c.placement)) is not None]
        if len(repeats) != len(into_a):
            continue
        uses_b = _writers_and_readers(b, returned=True)
        if uses_b is None or len(uses_b[0]) != len(into_b):
            continue
        last_a = max(into_a, key=lambda c: position[c.kernel]).kernel
        first_b = min(repeats, key=lambda c: position[c.kernel]).kernel
        if position[first_b] < position[last_a]:
            continue
        window = _between(last_a, first_b)
        sources = {c.source for c in into_a}
        if any(
            (sources & set(op.outputs)) if isinstance(op, KernelOp) else _uses(op, sources)
            for op in window
        ):
            continue  # a source may change between the two sets of copies
        return b, repeats
    return None


def _shift(m: AffineMap, axis: int, offset: int) -> AffineMap:
    results: list[AffineExpr] = list(m.results)
    results[axis] = results[axis] + AffineConstantExpr(offset)
    return AffineMap(m.num_dims, m.num_symbols, tuple(results))


def _touches(op: Operation, c: Copy) -> bool:
    """`op` uses `c`'s destination, other than by copying into a disjoint part of it."""
    if not _uses(op, {c.dest}):
        return False
    other = copy_of(op)
    if other is None or other.dest is not c.dest or other.source is c.dest:
        return True
    if other.axis != c.axis and other.offset and c.offset:
        return True
    axis = c.axis if c.offset else other.axis
    mine = (c.offset, c.offset + c.kernel.extents[axis])
    theirs = (other.offset, other.offset + other.kernel.extents[axis])
    return mine[0] < theirs[1] and theirs[0] < mine[1]


def _uses(op: Operation, values: set[SSAValue]) -> bool:
    """`op`, or an op nested in it (a loop nest at a later stage), uses one of `values`."""
    return any(v in values for inner in op.walk() for v in inner.operands)


def _write_in_place(block: Block) -> int:
    """Rewrite 2; returns how many copies were removed."""
    removed = 0
    position = _positions(block)
    for op in list(block.ops):
        c = copy_of(op)
        if c is None or not _is_alloc(c.source, block) or c.source is c.dest:
            continue
        uses = _writers_and_readers(c.source)
        if uses is None or uses[1] != [c.kernel] or not uses[0]:
            continue
        writers = uses[0]
        if any(w.parent_block() is not block for w in writers):
            continue  # a writer inside a loop nest: not this pass's level
        if any(position[w] > position[c.kernel] for w in writers):
            continue
        if not _is_alloc(c.dest, block) or any(c.dest in w.operands for w in writers):
            continue
        first = min(writers, key=lambda w: position[w])
        window = [first, *_between(first, c.kernel)]
        if any(_touches(o, c) for o in window if o not in writers):
            continue  # the destination is used while the producers run
        _hoist_before(c.dest.owner, first, position)  # type: ignore[arg-type]
        for w in writers:
            maps = list(w.maps)
            for k, v in enumerate(w.outputs):
                if v is c.source:
                    index = len(w.inputs) + k
                    maps[index] = _shift(maps[index], c.axis, c.offset)
                    w.operands[index] = c.dest
            w.indexing_maps = ArrayAttr([AffineMapAttr(m) for m in maps])
        source = c.source
        c.kernel.detach()
        c.kernel.erase()
        source.owner.detach()  # type: ignore[union-attr]
        source.owner.erase()  # type: ignore[union-attr]
        removed += 1
    return removed


def concat_in_place(module: ModuleOp) -> tuple[int, int]:
    """Both rewrites in every function of `module`; returns (buffers merged, copies
    removed by writing in place)."""
    merged = removed = 0
    for f in module.walk():
        if isinstance(f, func.FuncOp) and not f.is_declaration:
            block = f.body.block
            merged += _share_prefixes(block)
            removed += _write_in_place(block)
    return merged, removed


@dataclass(frozen=True)
class TlConcatInPlacePass(ModulePass):
    """`tl-concat-in-place`: concatenations without copies (see the module docstring)."""

    name = "tl-concat-in-place"

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        concat_in_place(op)
