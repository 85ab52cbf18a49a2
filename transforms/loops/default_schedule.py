"""Default schedules: what every `tl.kernel` gets without tuning.

    strategy = CpuDefaultSchedule(vector_bits=512, threads=True)
    texts = apply_default_schedules(module, strategy)   # {kernel label: schedule text}

A strategy is anything with `schedule_kernel(sch: Schedule, kernel: KernelOp) -> None`
(`ScheduleStrategy`); `mlc.compile(..., schedule=...)` takes one, so a tuned or
hardware-specific strategy (`targets.x86.VnniGemmSchedule`) replaces this one without touching
the compiler. Every step goes through the recording `Schedule`, so the chosen schedule is
plain text (`Schedule.text()`) and replays with `tl-apply-schedule`.

`CpuDefaultSchedule`, per kernel:

1. Lower to loops; a reduction with an init value is decomposed at its outermost loop
   (a separate fill, then updates without a select in the hot loop).
2. The vector iterator `v` is the parallel iterator of the output's last index (contiguous
   in memory); it is split by the vector width (a lane mask covers a remainder) and the
   inner loop vectorized. A reduction is vectorized only if some input is contiguous
   along `v` too (else the lanes would be gathers).
3. Register blocking for contractions (matmul, conv, ...: a reduction whose vector inputs
   do not depend on some other parallel iterator `r`): `r` is split by MR (<= 8) and `v`
   by NR vectors (`_register_tile`: the fewest loads per FMA that fit the register file,
   preferring tiles without a remainder), both inner loops unrolled, so an MR x NR tile
   of accumulators lives in registers across the reduction loops, which sit between the
   tile loops and the tile (Goto / BLIS order: `v.o.o, r.o, reductions, r.i, v.o.i, v.i`:
   one panel of the contiguous operand stays in cache while all rows pass). A single long
   reduction (> 512) is split by 256 (or the divisor of its length nearest below,
   `k_block_for`: K = 784 by 196) and its outer loop moved outermost (K blocking for the
   L2 cache). A padded vector input (a conv's input) is first copied into a buffer
   that holds its padding, so the tile loop reads it without bounds checks.
   A tall matrix product (one reduction, at least `min_pack_row_tiles` row tiles, B
   wider than one block) runs in MLAS / BLIS order instead: `k.o, v-block, r.o, panel,
   k.i, r.i, v.o.i, v.i`, B's block of panels (`panel_block_bytes`, 128 KiB: 8 panels of
   16 x 256 floats on AVX2) copied into a dense buffer before the row loop (`cache_read`),
   so each MR x K row slice of A stays in L1 across the block's panels, the block stays
   in L2, and its rows are not 4 KiB apart (a power-of-two leading dimension maps every
   row of a panel to the same L1 / L2 sets). The row loop then runs on threads.
   The tile is chosen per useful output lane (`tile_cost`), so on AVX2 a 56-wide row gets
   8-lane vectors in a 4 x 3 tile with a guarded remainder, not 4-lane vectors.
   When `v` is exactly one vector (a blocked conv's output-channel block), the NR vectors
   come from another parallel iterator instead (`channel_block_schedule`).
   A small sliding window with no such row (a depthwise conv in NCHW: every parallel
   iterator moves the input) gets its padding copied once and the window unrolled
   around a tile of `MIN_ACCUMULATORS` independent vectors (`_vectorize_strided`).
   The fill of a reduction's output (a conv's bias, a decomposed init) then moves into
   the start of each tile (`compute_at`), and an in-place epilogue to its end.
4. The outermost parallel loop runs on threads (`parallel`) when `threads` is set and
   each parallel region has enough work to pay for its fork and join
   (`min_parallel_work`, measured: `python -m mlc.benchmarks.threads`).
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Protocol

from xdsl.dialects import arith, memref
from xdsl.dialects.builtin import AnyFloat, IntegerType, ModuleOp
from xdsl.ir import Attribute, Operation
from xdsl.ir.affine import (
    AffineBinaryOpExpr,
    AffineBinaryOpKind,
    AffineConstantExpr,
    AffineDimExpr,
    AffineExpr,
    AffineMap,
)

from mlc.dialects.tl import BlockOp, ForOp, KernelOp, linear_form
from mlc.lowering.tl_vector_to_llvm import MAX_DEINTERLEAVE, always_in_bounds
from mlc.lowering.workspace import buffer_bytes
from mlc.transforms.loops.channel_block_schedule import (
    materialize_pads,
    row_waste,
    schedule_channel_block_tile,
)
from mlc.transforms.loops.common import (
    ScheduleError,
    block_loops,
    block_work,
    blocks_under,
    lane_stride,
    loop_name,
)
from mlc.transforms.loops.loop_fusion import MIN_FLOW_BYTES
from mlc.transforms.loops.schedule import Schedule
from mlc.transforms.loops.schedule_reuse import ScheduleReuse

__all__ = [
    "CpuDefaultSchedule",
    "ScheduleStrategy",
    "apply_default_schedules",
    "k_block_for",
]

MAX_VECTOR_LANES = 16
"""Lanes per vector at most (wider element counts would need several registers)."""
MAX_NARROW_LANES = 64
"""Lanes per vector at most for bodies of 8- and 16-bit values only (`narrow_lanes`)."""
#: reduction windows up to this many points are unrolled under a strided vector loop
MAX_UNROLLED_WINDOW = 16


class ScheduleStrategy(Protocol):
    """Chooses the schedule of one kernel through `sch` (the kernel is still a tl.kernel)."""

    def schedule_kernel(self, sch: Schedule, kernel: KernelOp) -> None: ...


def k_block_for(k: int, k_block: int) -> int | None:
    """The K block of a `k`-long reduction: `k_block` where it divides `k`, else the
    largest divisor of `k` between `k_block / 2` and `k_block` that splits it into
    equal blocks (784 -> 196: four blocks, not one 784-deep panel that leaves L1); None
    where there is none."""
    for blocks in range(-(-k // k_block), k // max(k_block // 2, 1) + 1):
        if k % blocks == 0:
            return k // blocks
    return None


@dataclass(frozen=True)
class CpuDefaultSchedule:
    """The schedule described in the module docstring, for a CPU with `vector_bits`-wide
    vector registers."""

    #: decisions depend only on a kernel scope's structure (see `schedule_reuse`)
    structural = True
    #: a kernel's scope includes the nest filling its output before (`_fill_before`),
    #: which `schedule_kernel` moves into its tiles; strategies without this attribute
    #: (tuned traces, the tuner's recorder) get the kernel and its epilogue only
    fuses_fills = True

    vector_bits: int = 512
    threads: bool = False
    max_tile_rows: int = 8
    max_accumulators: int = 0  # 0: 28 with 32 vector registers (AVX-512), else 12
    k_block: int = 256
    #: allow NR vectors that do not divide a row's vectors (the last tile is guarded)
    #: where that beats every dividing tile by `RAGGED_VECTOR_GAIN`
    ragged_vectors: bool = True
    #: bytes of a packed block of B panels of a matrix product (kept in L2; 0: no packing)
    panel_block_bytes: int = 128 * 1024
    #: row tiles that must reuse a packed block for the copy to pay
    min_pack_row_tiles: int = 16
    #: the least work (`block_work`) per parallel region: smaller nests run on one thread
    min_parallel_work: int = 1 << 20

    def lanes(self, element: Attribute) -> int:
        bits = element.width.data if isinstance(element, IntegerType) else 0
        if isinstance(element, AnyFloat):
            bits = element.bitwidth
        bits = max(bits, 8)
        return max(1, min(MAX_VECTOR_LANES, self.vector_bits // bits))

    def narrow_lanes(self, block: BlockOp) -> int:
        """Lanes for a body computing in 8- or 16-bit values only (a u8 copy such as an
        im2col patch): one register of them, up to `MAX_NARROW_LANES` (64 bytes per
        vector, not 16); 0 where the body has wider or index values."""
        body = block.body.block
        types = [a.type for a in body.args] + [r.type for op in body.ops for r in op.results]
        bits = [_bits(t) for t in types]
        if any(b is None or b > 16 for b in bits) or not any(bits):
            return 0
        widest = max(b for b in bits if b is not None)
        return min(MAX_NARROW_LANES, self.vector_bits // max(widest, 8))

    def schedule_kernel(self, sch: Schedule, kernel: KernelOp) -> None:
        label = kernel.label.data
        epilogue = _in_place_epilogue(kernel)
        decompose = bool(kernel.reduction_dims) and any(v is not None for v in kernel.init_values)
        sch.lower(label, keep_inits=decompose)
        if decompose:
            first = block_loops(sch.block(label))[0]
            try:
                init = sch.decompose_reduction(label, f"{label}/{loop_name(first)}")
            except ScheduleError:
                init = None
            if init is not None:
                self._schedule_block(sch, init)
        self._schedule_block(sch, label)
        if epilogue is None or not epilogue.inputs:
            # with an epilogue reading another buffer too (a residual add), LLVM stopped
            # holding the tile's accumulators in registers across the reduction loops:
            # ResNet-50's residual 1x1 convs took 1.5x as long; their fill stays first
            self._fuse_fill(sch, label)
        if epilogue is not None:
            self._fuse_epilogue(sch, label, epilogue)

    def _fuse_fill(self, sch: Schedule, label: str) -> None:
        """Move the nest that fills `label`'s output before it accumulates (a conv's bias,
        `_fill_before`, in the kernel's scope) to the start of each tile, right before the
        reduction loops (`compute_at`): the tile starts from its bias in registers
        instead of a pass over the whole output first."""
        block = sch.block(label)
        at = _tile_loop(block)
        fills = [
            b
            for b in blocks_under(sch.root)
            if b is not block and list(b.outputs) == list(block.outputs)
        ]
        if at is None or len(fills) != 1:
            return
        try:
            sch.compute_at(fills[0].label.data, f"{label}/{loop_name(at)}")
        except ScheduleError:
            pass  # not movable there (see `compute_at`): the fill stays a nest of its own

    def _fuse_epilogue(self, sch: Schedule, label: str, epilogue: KernelOp) -> None:
        """Move the kernel that finishes `label`'s output in place (a bias, activation or
        residual add: `transforms.loops.fusion.epilogue_in_place`) into `label`'s nest right after the
        reduction loops, so each register tile is finished before it is stored for good."""
        at = _tile_loop(sch.block(label))
        if at is None:
            return
        name = epilogue.label.data
        sch.lower(name)
        try:
            sch.reverse_compute_at(name, f"{label}/{loop_name(at)}")
        except ScheduleError:
            self._schedule_block(sch, name)

    # ------------------------------------------------------------------ one block

    def _schedule_block(self, sch: Schedule, label: str) -> None:
        block = sch.block(label)
        names = block.iterator_names
        extents = [block.iterator_list[d].extent.data for d in range(len(names))]
        loops = {loop_name(f): f for f in block_loops(block)}
        if set(loops) != set(names):
            return  # not the plain nest of a freshly lowered kernel
        v = _vector_dim(block)
        reductions = block.reduction_dims
        order: list[str] = [names[d] for d in range(len(names))]
        width = self.lanes(block.buffer_types[len(block.inputs)].element_type)
        if not reductions and v is not None and _unit_or_invariant_inputs(block, v):
            width = max(width, _dividing_runs(self.narrow_lanes(block), block, v))
        if v is None or extents[v] < 4 or width < 2:
            self._parallel(sch, label, block, order)
            return
        if reductions and not _contiguous_inputs(block, v):
            materialize_pads(sch, label, self)  # no bounds check per scalar load
            block = sch.block(label)
            if _strided_inputs(block, v):  # a stride-2 pooling window: wide loads
                self._vectorize_strided(sch, label, block, v, width)
            else:
                self._parallel(sch, label, block, order)
            return
        if reductions and schedule_channel_block_tile(
            self, sch, label, block, v, width, _contiguous_inputs(block, v)
        ):
            return  # one channel block per vector: a rows x channel-blocks tile
        r = _tile_dim(block, v) if reductions else None
        if (
            reductions
            and r is None
            and _sliding_window(block)
            and _window(block) <= MAX_UNROLLED_WINDOW
        ):
            # a small sliding window and no row to reuse loaded vectors along (a depthwise
            # conv in NCHW): padding copied once, the window unrolled inside the vectors
            materialize_pads(sch, label, self, inputs=_contiguous_inputs(block, v))
            self._vectorize_strided(sch, label, sch.block(label), v, width)
            return
        vname = names[v]
        if r is not None:
            width, rows, vectors = self._register_tile(width, extents[v], extents[r])
        else:
            width, rows, vectors = min(width, _floor_pow2(extents[v])), 1, 1
        if extents[v] > width:
            v_outer, v_inner = sch.split(f"{label}/{vname}", width)
            v_outer, v_inner = _short(v_outer), _short(v_inner)
        else:
            v_outer, v_inner = None, vname
        if r is None or v_outer is None:
            rest = [n for n in order if n != vname]
            new_order = rest + ([v_outer] if v_outer else []) + [v_inner]
            sch.reorder(*(f"{label}/{n}" for n in new_order))
            sch.vectorize(f"{label}/{v_inner}", width)
            self._parallel(sch, label, sch.block(label), new_order)
            return
        rname = names[r]
        if rows < extents[r]:
            r_outer, r_inner = map(_short, sch.split(f"{label}/{rname}", rows))
        else:
            r_outer, r_inner = None, rname
        chunks = -(-extents[v] // width)
        v_tile: str | None = None
        if vectors < chunks:
            if vectors > 1:
                v_outer, v_tile = map(_short, sch.split(f"{label}/{v_outer}", vectors))
        else:
            v_outer, v_tile = None, v_outer
        red_names = [names[d] for d in reductions]
        k_outer: list[str] = []
        kc = extents[reductions[0]] if len(reductions) == 1 else 0
        if len(reductions) == 1 and extents[reductions[0]] > 2 * self.k_block:
            found = k_block_for(extents[reductions[0]], self.k_block)
            if found is not None:
                kc = found
                ko, ki = map(_short, sch.split(f"{label}/{red_names[0]}", kc))
                k_outer, red_names = [ko], [ki]
        others = [names[d] for d in block.parallel_dims if d not in (r, v)]
        # column panels outside row blocks: one K x (vectors * width) panel of the
        # contiguous operand stays in cache while every row block passes over it
        tile_outer = [n for n in (v_outer, r_outer) if n]
        packed = None
        if v_outer and r_outer:
            packed = self._panel_block(block, v, r, reductions, extents, width, vectors, rows, kc)
        if packed is not None:
            # packed panel blocks (MLAS / BLIS order): a block of `per_block` panels is
            # copied into a dense buffer, then every row block multiplies its rows (which
            # stay in L1) with each panel of the block (which stays in L2)
            index, per_block = packed
            assert v_outer is not None and r_outer is not None
            v_block: str | None = v_outer
            v_panel: str | None = None
            if per_block > 1:
                v_block, v_panel = map(_short, sch.split(f"{label}/{v_outer}", per_block))
            tile_outer = [n for n in (v_block, r_outer, v_panel) if n]
        tile_inner = [n for n in (r_inner, v_tile) if n]
        new_order = k_outer + others + tile_outer + red_names + tile_inner + [v_inner]
        sch.reorder(*(f"{label}/{n}" for n in new_order))
        for n in tile_inner:
            sch.unroll(f"{label}/{n}")
        sch.vectorize(f"{label}/{v_inner}", width)
        if packed is not None:
            sch.cache_read(label, packed[0], f"{label}/{r_outer}")
        materialize_pads(sch, label, inputs=_contiguous_inputs(sch.block(label), v))
        self._parallel(sch, label, sch.block(label), new_order)

    def _panel_block(
        self,
        block: BlockOp,
        v: int,
        r: int,
        reductions: Sequence[int],
        extents: Sequence[int],
        width: int,
        vectors: int,
        rows: int,
        kc: int,
    ) -> tuple[int, int] | None:
        """(input index, panels per block) when the contiguous operand of a matrix product
        is to be packed in blocks of panels (`panel_block_bytes`), else None: one
        reduction, one unpadded input contiguous along `v` that `r` does not index (B of
        `A @ B`), at least `min_pack_row_tiles` row tiles to reuse each copy, and a block
        narrower than the operand's rows (else it is contiguous already)."""
        if self.panel_block_bytes <= 0 or len(reductions) != 1:
            return None
        if -(-extents[r] // rows) < self.min_pack_row_tiles:
            return None
        candidates = [
            k
            for k in _contiguous_inputs(block, v)
            if block.pad_values[k] is None and r not in _used_dims(block.input_maps[k])
        ]
        if len(candidates) != 1:
            return None
        index = candidates[0]
        element = block.buffer_types[index].element_type
        bits = element.bitwidth if isinstance(element, AnyFloat) else 32
        if isinstance(element, IntegerType):
            bits = element.width.data
        panel_bytes = kc * vectors * width * max(bits, 8) // 8
        panels = -(-extents[v] // (vectors * width))
        per_block = max(1, self.panel_block_bytes // max(panel_bytes, 1))
        per_block = max(d for d in range(1, min(per_block, panels) + 1) if panels % d == 0)
        if per_block >= panels:
            return None
        return index, per_block

    def _vectorize_strided(
        self, sch: Schedule, label: str, block: BlockOp, v: int, width: int
    ) -> None:
        """A small-window reduction with no row that reuses loaded vectors (pooling, a
        depthwise conv in NCHW): vectors along the output's contiguous iterator `v`
        outside the reductions (an input moving by a small stride along `v` is one wide
        load and a shuffle, `strided_load` in the lowering), small windows unrolled.
        With the window unrolled, a tile of `MIN_ACCUMULATORS` independent accumulators
        (vectors of a row, then rows of a further iterator, `_disjoint_row`) is unrolled
        inside it, so the chains of FMAs or maxima overlap."""
        names = block.iterator_names
        extents = [it.extent.data for it in block.iterator_list]
        width = _dividing_width(width, extents[v])

        def split(d: int, factor: int) -> tuple[str, str]:
            """(outer, inner) loop names of iterator `d`; no outer loop where `factor`
            covers it all."""
            if factor >= extents[d]:
                return "", names[d]
            outer, inner = sch.split(f"{label}/{names[d]}", factor)
            return _short(outer), _short(inner)

        v_outer, v_inner = split(v, width)
        others = [names[d] for d in block.parallel_dims if d != v]
        reductions = [names[d] for d in block.reduction_dims]
        unrolled = _window(block) <= MAX_UNROLLED_WINDOW
        tile: list[str] = []
        if unrolled:
            chunks = -(-extents[v] // width)
            per_row = _largest_divisor(chunks, MIN_ACCUMULATORS)
            if v_outer and per_row == chunks:
                v_outer, tile = "", [v_outer]
            elif v_outer and per_row > 1:
                v_outer, v_tile = map(_short, sch.split(f"{label}/{v_outer}", per_row))
                tile = [v_tile]
            row = _disjoint_row(block, v, chunks * width)
            rows = 1 if row is None else _largest_divisor(extents[row], MIN_ACCUMULATORS // per_row)
            if row is not None and rows > 1:
                r_outer, r_inner = split(row, rows)
                # the row's outer loop keeps its place; no outer loop if one tile is all
                others = [r_outer if n == names[row] else n for n in others]
                others = [n for n in others if n]
                tile = [r_inner, *tile]
        order = [*others, *([v_outer] if v_outer else []), *reductions, *tile, v_inner]
        sch.reorder(*(f"{label}/{n}" for n in order))
        if unrolled:
            for n in [*reductions, *tile]:
                sch.unroll(f"{label}/{n}")
        sch.vectorize(f"{label}/{v_inner}", width)
        self._parallel(sch, label, sch.block(label), order)

    def _register_tile(self, lanes: int, v_extent: int, r_extent: int) -> tuple[int, int, int]:
        """(vector width, tile rows MR, vectors per row NR) for a tile over an `r_extent` x
        `v_extent` output, by `tile_cost` (loads per useful output lane: a half-width
        vector costs twice, a 56-wide conv row gets 8-lane vectors, not 4), preferring a
        width that divides the vector extent (no lane masks) and then wider vectors. NR
        divides the row's vectors, unless `ragged_vectors` and a tile with a guarded
        remainder costs less than 1 / `RAGGED_VECTOR_GAIN` of the best dividing one (a
        56-wide row: 7 vectors, 4 x 3 with a remainder of one, not 8 x 1)."""
        best: dict[bool, tuple[float, int, int, int]] = {}
        limit = self.max_accumulators or (28 if self.vector_bits >= 512 else 12)
        registers = 32 if self.vector_bits >= 512 else 16
        # AVX-512: two registers to spare (a 5 x 5 tile, 31 of 32, ran a 192 x 256 x 208
        # product 1.6x slower than 3 x 7, 29); AVX2's 6 x 2 (MLAS's, 15 of 16) is right
        usable = registers - 2 if registers == 32 else registers
        widths = [w for w in (lanes, lanes // 2) if w >= 4 and w <= _floor_pow2(v_extent)]
        for width in widths or [min(lanes, _floor_pow2(v_extent))]:
            chunks = -(-v_extent // width)
            for vectors in range(1, min(chunks, limit) + 1):
                ragged = chunks % vectors != 0
                if ragged and not self.ragged_vectors:
                    continue
                for rows in range(1, min(r_extent, self.max_tile_rows) + 1):
                    if rows * vectors > limit or rows * vectors + vectors + 1 > usable:
                        break  # accumulators + one row of loaded vectors + a broadcast
                    cost = tile_cost(rows, vectors, width, lanes, r_extent, chunks)
                    cost += v_extent % width != 0
                    key = (cost, -width, -rows, vectors)
                    if ragged not in best or key < best[ragged]:
                        best[ragged] = key
        choice = best.get(False)
        if True in best and (choice is None or best[True][0] * RAGGED_VECTOR_GAIN < choice[0]):
            choice = best[True]
        assert choice is not None
        return -choice[1], -choice[2], choice[3]

    def _parallel(self, sch: Schedule, label: str, block: BlockOp, order: Sequence[str]) -> None:
        """Mark the outermost loop over parallel iterators only as `parallel`, where each
        parallel region (one per iteration of the serial loops around it) has at least
        `min_parallel_work` (`block_work`) to share: a smaller one loses more to the fork
        and join than the threads win."""
        if not self.threads:
            return
        regions = 1
        work = block_work(block)
        for f in block_loops(block):
            if f.trip_count < 2:
                continue
            if work < self.min_parallel_work * regions:
                return
            try:
                sch.parallel(f"{label}/{loop_name(f)}")
            except ScheduleError:
                regions *= f.trip_count  # serial: a region inside forks on every iteration
                continue
            return


def apply_default_schedules(
    root: Operation,
    strategy: ScheduleStrategy | None = None,
    *,
    reuse: bool | ScheduleReuse = True,
) -> dict[str, str]:
    """Schedule every `tl.kernel` under `root` with `strategy` (default:
    `CpuDefaultSchedule()`); returns each kernel's schedule as text. With `reuse` (True,
    or a `ScheduleReuse` to count with) and a strategy that declares `structural = True`,
    a kernel scope identical to one scheduled before gets a copy of its result
    (`schedule_reuse`: the same IR, built faster)."""
    strategy = strategy or CpuDefaultSchedule()
    reused: ScheduleReuse | None = None
    if reuse is not False and getattr(strategy, "structural", False):
        reused = reuse if isinstance(reuse, ScheduleReuse) else ScheduleReuse()
    texts: dict[str, str] = {}
    kernels = [op for op in root.walk() if isinstance(op, KernelOp)]
    outside = _block_labels(root)  # blocks lowered before: no new block may take a label
    for kernel in kernels:
        if kernel.parent is None:
            continue  # already scheduled with another kernel (a fused epilogue)
        label = kernel.label.data
        with _kernel_scope(kernel, getattr(strategy, "fuses_fills", False)) as scope:
            inside = _block_labels(scope)  # a fill scheduled before moves into this kernel
            outside -= inside
            shape = reused.shape(scope) if reused is not None else None
            text = reused.reuse(shape, scope, outside) if shape is not None else None
            if text is None:
                sch = Schedule(scope)
                strategy.schedule_kernel(sch, kernel)
                text = sch.text()
                if shape is not None:
                    reused.record(shape, scope, text)  # type: ignore[union-attr]
            new = _block_labels(scope)
        if clash := sorted(new & outside):
            raise ScheduleError(f'scheduling "{label}" made labels used elsewhere: {clash}')
        outside |= new
        texts[label] = text
    return texts


def _block_labels(root: Operation) -> set[str]:
    return {op.label.data for op in root.walk() if isinstance(op, BlockOp)}


@contextmanager
def _kernel_scope(kernel: KernelOp, with_fill: bool = False) -> Iterator[ModuleOp]:
    """`kernel` (with the nest filling its output before, `_fill_before`, if
    `with_fill`, and the epilogue kernel that finishes its output in place, with the ops
    between them) moved into a scratch module for the time it is scheduled, then put back
    where it was. Every schedule step looks blocks and loops up by name under its root:
    over the kernel alone, scheduling a model is linear in its size instead of quadratic."""
    parent = kernel.parent_block()
    assert parent is not None
    last: Operation = _in_place_epilogue(kernel) or kernel
    ops: list[Operation] = [(_fill_before(kernel) if with_fill else None) or kernel]
    while ops[-1] is not last:
        nxt = ops[-1].next_op
        assert nxt is not None
        ops.append(nxt)
    anchor = last.next_op
    for op in ops:
        op.detach()
    scope = ModuleOp(ops)
    try:
        yield scope
    finally:
        for op in list(scope.body.block.ops):
            op.detach()
            if anchor is None:
                parent.add_op(op)
            else:
                parent.insert_op_before(op, anchor)


# ---------------------------------------------------------------------- analysis


def _tile_loop(block: BlockOp) -> ForOp | None:
    """The innermost loop of `block`'s nest outside its reduction loops (after an
    iteration of it, a tile of the output is complete), or None."""
    at = None
    for f in block_loops(block):
        dims = {
            d for d, e in enumerate(block.binding_map.results) if f.induction_var in _vars(block, e)
        }
        if dims & set(block.reduction_dims):
            break
        at = f
    return at


def _fill_before(kernel: KernelOp) -> Operation | None:
    """The nest right before `kernel` (allocations and constants aside) that fills the
    output `kernel` accumulates into, elementwise and reading nothing of it (a conv's
    bias), if any: `kernel`'s schedule moves it into its tiles (`_fuse_fill`)."""
    if not kernel.reduction_dims or len(kernel.outputs) != 1:
        return None
    if kernel.init_values[0] is not None:
        return None  # it overwrites its output
    (buf,) = kernel.outputs
    op = kernel.prev_op
    while isinstance(op, memref.AllocOp | memref.GetGlobalOp | arith.ConstantOp):
        op = op.prev_op
    if isinstance(op, KernelOp):
        blocks: list[BlockOp | KernelOp] = [op]
    elif isinstance(op, ForOp):
        blocks = list(blocks_under(op))
    else:
        return None
    if len(blocks) != 1:
        return None
    (fill,) = blocks
    if list(fill.outputs) != [buf] or buf in fill.inputs or fill.reduction_dims:
        return None
    return op


def _in_place_epilogue(kernel: KernelOp) -> KernelOp | None:
    """The next kernel, if it updates `kernel`'s (single) output in place elementwise."""
    if not kernel.reduction_dims or len(kernel.outputs) != 1:
        return None
    op = kernel.next_op
    while op is not None and not isinstance(op, KernelOp):
        op = op.next_op
    if (
        isinstance(op, KernelOp)
        and not op.reduction_dims
        and list(op.outputs) == list(kernel.outputs)
        and op.init_values[0] is None
    ):
        return op
    return None


def _vars(block: BlockOp, e: AffineExpr) -> set:
    return {block.loop_vars[d] for d in e.used_dims()}


def _short(name: str) -> str:
    return name.rpartition("/")[2]


#: how much cheaper (`tile_cost`) a tile whose NR does not divide the row's vectors must be
#: than the best dividing one: measured on Zen 3 (AVX2), a 56-wide conv row ran 1.40x
#: onnxruntime's time in 8 x 1 x 8 lanes (cost 1.13) and 1.19x in 4 x 3 x 8 (0.75), while a
#: 512^3 GEMM lost in 4 x 3 x 8 (0.59; 1.39x) against 6 x 2 x 8 (0.72; 1.18x)
RAGGED_VECTOR_GAIN = 1.3

#: independent FMAs needed to cover the FMA latency on every pipe (4 cycles x 2 pipes on
#: Zen 3 / Zen 4 and recent Intel cores): a tile with fewer accumulators waits on them
MIN_ACCUMULATORS = 8


def tile_cost(rows: int, vectors: int, width: int, lanes: int, r_extent: int, chunks: int) -> float:
    """Loads per useful output lane, relative, of an MR x NR register tile of `width`-lane
    vectors (the register holds `lanes`): (MR + NR) / (MR x NR) loads per FMA, times the
    lanes a narrower vector leaves idle (half-width vectors halve the FMA throughput), an
    FMA chain too short to hide the latency (fewer than `MIN_ACCUMULATORS`) counted as the
    stall it causes, and the slots that partial last tiles waste along the rows
    (`row_waste`) and the row's vectors."""
    accumulators = rows * vectors
    loads = (rows + vectors) / accumulators
    latency = max(1.0, MIN_ACCUMULATORS / accumulators)
    vector_waste = -(-chunks // vectors) * vectors / chunks
    return loads * lanes / width * latency * row_waste(r_extent, rows) * vector_waste


def _sliding_window(block: BlockOp) -> bool:
    """Some input index moves with a reduction iterator by less than the whole range of
    a parallel iterator it also moves with (`o + k`, `2 * o + k`: a conv's or pooling's
    overlapping windows; not `64 * k + i`, an rfactor's partial sums, whose reads of
    different `k` never overlap)."""
    extents = [it.extent.data for it in block.iterator_list]
    reductions = set(block.reduction_dims)
    for m in block.input_maps:
        for e in m.results:
            coeffs, _, _ = linear_form(e)
            moving = [d for d in coeffs if d not in reductions]
            for r in reductions & set(coeffs):
                if any(abs(coeffs[r]) < abs(coeffs[p]) * extents[p] for p in moving):
                    return True
    return False


def _window(block: BlockOp) -> int:
    """The points of `block`'s reduction window (1 for no reduction)."""
    return math.prod(block.iterator_list[d].extent.data for d in block.reduction_dims)


def _disjoint_row(block: BlockOp, v: int, span: int) -> int | None:
    """The innermost parallel iterator (not `v`, extent > 1) along which the output moves
    by at least `span` elements, so a tile's rows of `span`-lane vectors never overlap (an
    overlapping masked store keeps LLVM from holding the accumulators in registers). Not
    the outermost loop of a block with a padded input large enough for `tl-fuse-outer-
    loops` to fuse its copy into that loop (`MIN_FLOW_BYTES`), which must stay whole."""
    out = block.buffer_types[len(block.inputs)].get_shape()
    candidates = [d for d in block.parallel_dims if block.iterator_list[d].extent.data > 1]
    if any(
        pad is not None and (buffer_bytes(ty) or 0) >= MIN_FLOW_BYTES
        for pad, ty in zip(block.pad_values, block.buffer_types)
    ):
        candidates = candidates[1:]
    for d in reversed(candidates):
        stride = lane_stride(block.output_maps[0], d, out)
        if d != v and (stride or 0) >= span:
            return d
    return None


def _largest_divisor(n: int, limit: int) -> int:
    """The largest divisor of `n` that is at most `limit` (at least 1)."""
    return max(d for d in range(1, max(1, min(n, limit)) + 1) if n % d == 0)


def _dividing_width(lanes: int, extent: int) -> int:
    """The vector width for `extent` elements: `lanes`, or half of it when that divides
    `extent` and `lanes` does not (a 56-wide row gets 7 full 8-lane vectors, not 3 of 16
    and a masked tail), at most the largest power of two in `extent`."""
    width = min(lanes, _floor_pow2(extent))
    if extent % width and width >= 8 and extent % (width // 2) == 0:
        return width // 2
    return width


def _bits(ty: Attribute) -> int | None:
    """The width of an integer or float body value; 0 for i1 (a predicate); None for
    anything else (index)."""
    if isinstance(ty, IntegerType):
        return 0 if ty.width.data == 1 else ty.width.data
    if isinstance(ty, AnyFloat):
        return ty.bitwidth
    return None


def _floor_pow2(n: int) -> int:
    p = 1
    while p * 2 <= n:
        p *= 2
    return p


def _plain_dim(m: AffineMap, position: int) -> int | None:
    e = m.results[position]
    return e.position if isinstance(e, AffineDimExpr) else None


def _vector_dim(block: BlockOp) -> int | None:
    """The parallel iterator that is the last index of every output (if there is one)."""
    dims = {_plain_dim(m, -1) if m.results else None for m in block.output_maps}
    if len(dims) != 1:
        return None
    d = dims.pop()
    return d if d is not None and d in block.parallel_dims else None


def _strided_inputs(block: BlockOp, v: int) -> list[int]:
    """The inputs read with a small stride (2 .. MAX_DEINTERLEAVE) along iterator `v`, when
    every other input is contiguous or constant along it and no read is guarded."""
    types = block.buffer_types
    strides = [lane_stride(m, v, types[k].get_shape()) for k, m in enumerate(block.input_maps)]
    for k, (m, pad) in enumerate(zip(block.input_maps, block.pad_values)):
        if pad is not None and not always_in_bounds(block, m, types[k].get_shape()):
            return []  # a guarded read (its padding not materialized)
    if any(s is None or not (0 <= s <= MAX_DEINTERLEAVE) for s in strides):
        return []
    return [k for k, s in enumerate(strides) if s is not None and s >= 2]


def _contiguous_inputs(block: BlockOp, v: int) -> list[int]:
    types = block.buffer_types
    return [
        k for k, m in enumerate(block.input_maps) if lane_stride(m, v, types[k].get_shape()) == 1
    ]


def _dividing_runs(lanes: int, block: BlockOp, v: int) -> int:
    """The largest power of two up to `lanes` dividing every divisor by which an input's
    index takes `v` apart (`k mod C`, `k floordiv C`: runs of C contiguous elements), so
    no vector straddles a run; `lanes` where no index does."""
    divisors = [d for m in block.input_maps for e in m.results for d in _divisors_of(e, v)]
    run = math.gcd(*divisors) if divisors else 0
    while lanes > 1 and run % lanes:
        lanes //= 2
    return lanes


_DIVISIONS = (AffineBinaryOpKind.FloorDiv, AffineBinaryOpKind.CeilDiv)


def _divisors_of(expr: AffineExpr, v: int) -> list[int]:
    """The constants `c` of the `e mod c` / `e floordiv c` / `e ceildiv c` terms of `expr`
    whose `e` moves with iterator `v` inside runs: `e` uses `v` but not through a division
    (`(k floordiv 64) mod 3` is constant over runs of 64 and adds nothing to the 64)."""
    if not isinstance(expr, AffineBinaryOpExpr):
        return []
    found = _divisors_of(expr.lhs, v) + _divisors_of(expr.rhs, v)
    split = expr.kind == AffineBinaryOpKind.Mod or expr.kind in _DIVISIONS
    if (
        split
        and isinstance(expr.rhs, AffineConstantExpr)
        and v in expr.lhs.used_dims()
        and not _divides(expr.lhs, v)
    ):
        found.append(expr.rhs.value)
    return found


def _divides(expr: AffineExpr, v: int) -> bool:
    """`expr` has a floordiv / ceildiv of a term using `v`."""
    if not isinstance(expr, AffineBinaryOpExpr):
        return False
    if expr.kind in _DIVISIONS and v in expr.lhs.used_dims():
        return True
    return _divides(expr.lhs, v) or _divides(expr.rhs, v)


def _unit_or_invariant_inputs(block: BlockOp, v: int) -> bool:
    """No input is known to move along `v` by more than one element (a transposition's
    gathers, which wider vectors would only make wider); a stride the map does not show
    before splitting (an im2col row's `k % C`) is left to the lowering."""
    types = block.buffer_types
    return all(
        lane_stride(m, v, types[k].get_shape()) in (None, 0, 1)
        for k, m in enumerate(block.input_maps)
    )


def _tile_dim(block: BlockOp, v: int) -> int | None:
    """A parallel iterator that the vector inputs do not depend on (so a tile of rows
    reuses each loaded vector), the one with the largest extent."""
    vector_inputs = _contiguous_inputs(block, v)
    best: int | None = None
    for d in block.parallel_dims:
        if d == v:
            continue
        if any(d in _used_dims(block.input_maps[k]) for k in vector_inputs):
            continue
        if not any(d in _used_dims(m) for m in block.input_maps):
            continue  # nothing is reused along d (e.g. a batch of 1)
        if (
            best is None
            or block.iterator_list[d].extent.data > block.iterator_list[best].extent.data
        ):
            best = d
    if best is not None and block.iterator_list[best].extent.data < 2:
        return None
    return best


def _used_dims(m: AffineMap) -> set[int]:
    out: set[int] = set()
    for e in m.results:
        out |= e.used_dims()
    return out
