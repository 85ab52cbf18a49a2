"""Register tiles for contractions whose vector axis is one channel block (NCHW[c]c
convolutions, `graph.conv_blocked`): the default schedule's step 3 when the output's
contiguous iterator `v` is exactly one vector (`c` lanes) and so cannot supply NR vectors,
or half of one (4-channel blocks on AVX2, for channel counts such as ShuffleNet's 68 that
are not a multiple of 8: the tile is then of half-width vectors; a 1x1 conv 24 -> 68 on
56 x 56 went from 0.356 to 0.280 ms, profiled in one process).

The NR vectors of the tile then come from a second parallel iterator `q` (the output
channel blocks `mb`; with a single block there is no `q` and the tile is MR x 1): the
vector inputs (the blocked weight) and the output depend on `q`, the other inputs (the
blocked image) do not. The MR rows come from a parallel
iterator `r` the vector inputs do not depend on (the output width: the image is read as
broadcast scalars, one per row). Loop order, with `q` split by NR and `r` by MR:

    others (n, output rows), q.o, r.o, reductions (cb, kh, kw, ci), r.i, q.i, v

with `r.i` and `q.i` unrolled and `v` vectorized: MR x NR accumulators (e.g. 14 x 2 x 16
lanes on AVX-512 for a 56-wide row) stay in registers across the reductions. Where the
weights do not stay in the L2 cache and re-reading them for every output row would move
more bytes than re-reading the image for every channel block (`_weights_stream`:
ResNet-50's last stage, 9.4 MiB of weights over 7 output rows), `q.o` goes outermost
instead (`q.o, others, r.o, ...`): its last 3x3 convs went from 3.4-3.8 to 2.1-2.7 ms. A depthwise
conv (`graph.depthwise_conv_blocked`: the image is a vector input too, there is no `q`)
gets an MR x 1 tile over the output width: each weight vector is loaded once for MR rows. A padded
input is copied once into a buffer holding its padding (no bounds checks in the tile).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

from mlc.dialects.tl import BlockOp
from mlc.lowering.workspace import buffer_bytes
from mlc.transforms.loops.common import ScheduleError, block_loops, loop_name
from mlc.transforms.loops.schedule import Schedule

if TYPE_CHECKING:
    from mlc.transforms.loops.default_schedule import CpuDefaultSchedule

MAX_CHANNEL_BLOCKS = 2
"""Channel blocks (vectors) per register tile row at most."""
MAX_HALF_WIDTH_BLOCKS = 6
"""The same for blocks of half a register (8-channel blocks on AVX-512, for channel
counts 16 does not divide): more of them per row keep the loads per FMA down, and a
count such as 125 or 3 blocks (1000 or 24 channels) has a divisor up to 6."""


def _used(block: BlockOp, k: int) -> set[int]:
    out: set[int] = set()
    for e in block.input_maps[k].results:
        out |= e.used_dims()
    return out


def _output_used(block: BlockOp) -> set[int]:
    out: set[int] = set()
    for m in block.output_maps:
        for e in m.results:
            out |= e.used_dims()
    return out


def channel_block_dims(
    block: BlockOp, v: int, vector_inputs: list[int]
) -> tuple[int, int | None] | None:
    """(r, q): the row and channel-block iterators of the tile (q None: one channel block,
    an MR x 1 tile), or None if the block does not have the shape described in the module
    docstring. Failing that, a depthwise conv's rows: an `r` that some input does not use
    (its vectors, the weights, stay in registers across the MR rows) and another does."""
    others = [k for k in range(len(block.inputs)) if k not in vector_inputs]
    out = _output_used(block)
    extents = [it.extent.data for it in block.iterator_list]
    candidates = [d for d in block.parallel_dims if d != v and d in out and extents[d] >= 2]
    if vector_inputs and others:
        q_dims = [
            d
            for d in candidates
            if all(d in _used(block, k) for k in vector_inputs)
            and not any(d in _used(block, k) for k in others)
        ]
        r_dims = [
            d
            for d in candidates
            if not any(d in _used(block, k) for k in vector_inputs)
            and any(d in _used(block, k) for k in others)
        ]
        if r_dims:  # the innermost: the output width, the channel blocks
            return r_dims[-1], (q_dims[-1] if q_dims else None)
    inputs = range(len(block.inputs))
    rows = [
        d
        for d in candidates
        if any(d not in _used(block, k) for k in inputs)
        and any(d in _used(block, k) for k in inputs)
    ]
    return (rows[-1], None) if rows else None


#: bytes of an operand that stay in the L2 cache across the loops that reuse it (a
#: quarter of a 2 MiB L2, half of a 512 KiB one: it shares the cache with the other)
L2_REUSE_BYTES = 256 * 1024


def _bytes(block: BlockOp, k: int) -> int:
    return buffer_bytes(block.buffer_types[k]) or 0


def _weights_stream(
    block: BlockOp, vector_inputs: list[int], other_dims: list[int], q_blocks: int
) -> bool:
    """With the channel blocks `q` inside the other parallel loops (output rows, batch),
    every iteration of those loops reads all the weights (the vector inputs) again; with
    `q` outermost, each of its `q_blocks` iterations reads the whole image (the other
    inputs) again. True where the second moves fewer bytes from beyond the L2 cache:
    ResNet-50's last 3x3 convs (9.4 MiB of weights, 7 output rows) read 66 MiB of weights
    per call the first way, 2.6 MiB of image the second."""
    weights = sum(_bytes(block, k) for k in vector_inputs)
    image = sum(_bytes(block, k) for k in range(len(block.inputs)) if k not in vector_inputs)
    if weights <= L2_REUSE_BYTES:
        return False
    passes = math.prod(block.iterator_list[d].extent.data for d in other_dims)
    image_traffic = image * (q_blocks if image > L2_REUSE_BYTES else 1)
    return image_traffic < weights * passes


#: the cost of a tile that does not divide the rows, beyond the rows it wastes (its last
#: tile runs in a second, guarded copy of the nest)
RAGGED_PENALTY = 0.08


def row_waste(rows: int, mr: int) -> float:
    """Tile slots per useful row when `rows` rows are covered by tiles of `mr` (1.0 when
    `mr` divides them), plus `RAGGED_PENALTY` when it does not: a 13-wide row in tiles of
    5 costs 15 / 13 + 0.08; in tiles of 1 it costs nothing extra but reuses no load."""
    tiles = -(-rows // mr)
    return tiles * mr / rows + (RAGGED_PENALTY if rows % mr else 0.0)


def choose_tile(
    strategy: CpuDefaultSchedule,
    r_extent: int,
    q_extent: int,
    max_blocks: int = MAX_CHANNEL_BLOCKS,
) -> tuple[int, int]:
    """(MR, NR): the fewest loads per FMA ((MR + NR) / (MR * NR)) with at most the
    strategy's accumulators and a register left for the loaded vectors and a broadcast,
    counting the rows a partial last tile wastes (`row_waste`)."""
    limit = strategy.max_accumulators or (28 if strategy.vector_bits >= 512 else 12)
    registers = 32 if strategy.vector_bits >= 512 else 16
    best: tuple[float, int, int] | None = None
    for nr in range(1, min(max_blocks, q_extent) + 1):
        if q_extent % nr:
            continue
        for mr in range(1, min(r_extent, limit) + 1):
            if mr * nr > limit or mr * nr + nr + 1 > registers:
                break
            cost = (mr + nr) / (mr * nr) * row_waste(r_extent, mr)
            key = (cost, -mr, -nr)
            if best is None or key < best:
                best = key
    assert best is not None
    return -best[1], -best[2]


def schedule_channel_block_tile(
    strategy: CpuDefaultSchedule,
    sch: Schedule,
    label: str,
    block: BlockOp,
    v: int,
    width: int,
    vector_inputs: list[int],
) -> bool:
    """Apply the schedule of the module docstring; False (nothing done) when the block
    does not qualify."""
    names = block.iterator_names
    extents = [it.extent.data for it in block.iterator_list]
    if extents[v] not in (width, width // 2) or extents[v] < 4:
        return False  # one vector, or half of one (4-channel blocks of an odd count)
    max_blocks = MAX_CHANNEL_BLOCKS if extents[v] == width else MAX_HALF_WIDTH_BLOCKS
    width = extents[v]
    dims = channel_block_dims(block, v, vector_inputs)
    if dims is None:
        return False
    r, q = dims
    mr, nr = choose_tile(strategy, extents[r], 1 if q is None else extents[q], max_blocks)
    rname = names[r]

    def split(name: str, factor: int) -> tuple[str | None, str]:
        if factor >= extents[names.index(name)]:
            return None, name
        outer, inner = sch.split(f"{label}/{name}", factor)
        return outer.rpartition("/")[2], inner.rpartition("/")[2]

    q_outer, q_inner = split(names[q], nr) if q is not None else (None, None)
    r_outer, r_inner = split(rname, mr)
    reductions = [names[d] for d in block.reduction_dims]
    other_dims = [d for d in block.parallel_dims if d not in (r, q, v)]
    others = [names[d] for d in other_dims]
    tile_inner = [n for n in (r_inner, q_inner) if n]
    if q_outer and _weights_stream(block, vector_inputs, other_dims, extents[q] // nr):
        # the weights outermost: each block of them is read once, the image once per block
        order = [q_outer, *others, *([r_outer] if r_outer else [])]
    else:
        order = others + [n for n in (q_outer, r_outer) if n]
    order += reductions + tile_inner + [names[v]]
    sch.reorder(*(f"{label}/{n}" for n in order))
    for name in tile_inner:
        sch.unroll(f"{label}/{name}")
    sch.vectorize(f"{label}/{names[v]}", width)
    materialize_pads(sch, label, strategy)
    strategy._parallel(sch, label, sch.block(label), order)
    return True


def materialize_pads(
    sch: Schedule,
    label: str,
    strategy: CpuDefaultSchedule | None = None,
    inputs: Sequence[int] | None = None,
) -> None:
    """Copy each guarded (padded) input (of `inputs`, default all) into a buffer holding
    its padding, once before the nest (a cache_read at the outermost loop), so the hot
    loop reads without bounds checks; with `strategy`, the copy is scheduled too
    (vectorized along its rows)."""
    block = sch.block(label)
    outer = f"{label}/{loop_name(block_loops(block)[0])}"
    for k in range(len(block.inputs)) if inputs is None else inputs:
        if block.pad_values[k] is None:
            continue
        try:
            copy = sch.cache_read(label, k, outer)
        except ScheduleError:
            continue
        if strategy is not None:
            _vectorize_rows(strategy, sch, copy)
        block = sch.block(label)


def _vectorize_rows(strategy: CpuDefaultSchedule, sch: Schedule, label: str) -> None:
    """Vectorize the innermost loop of the copy block `label` (contiguous in both
    buffers; its guarded reads become masked loads); a copy without loops (a rank-0
    input, such as a zero point) stays as it is."""
    block = sch.block(label)
    loops = block_loops(block)
    if not loops:
        return
    inner = loops[-1]
    width = strategy.lanes(block.buffer_types[len(block.inputs)].element_type)
    if width < 2 or inner.trip_count < width:
        return
    name = f"{label}/{loop_name(inner)}"
    if inner.trip_count > width:
        name = sch.split(name, width)[1]
    sch.vectorize(name, width)
