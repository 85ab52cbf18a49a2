"""Features of a scheduled loop nest, for the cost model.

    x = trace_features(task, trace)          # a fixed-length list of floats

Computed on the task's first kernel (`t0`) after replaying the trace: per loop (the
innermost `LOOPS`, innermost first) its trip count, kind (serial / parallel / vectorize
/ unroll), whether it runs a reduction iterator, and for each buffer (the first
`BUFFERS`) the element stride along it; for the nest the work, the product of the
unrolled and vectorized trips (the register tile), the bytes each level of the nest
touches (the footprint of the loops inside it), and how often each schedule step
occurs. Then a reuse model per cache level of the host (L1, L2, L3 data caches from
sysfs): the deepest nest level whose footprint fits in the cache, the bytes that level
moves in all (its footprint once per iteration of the loops outside it) and the
arithmetic intensity against them (work per byte); the vector width, the unrolled
copies, and the work per thread of a parallel loop. All counts are log2-scaled.
"""

from __future__ import annotations

import functools
import math
import os
from collections import Counter
from collections.abc import Sequence

from xdsl.dialects.builtin import MemRefType

from mlc.dialects.tl import BlockOp, ForOp, LoopKind, linear_form
from mlc.transforms.loops.common import block_loops, find_block
from mlc.transforms.loops.kernel_scope import canonical_label
from mlc.transforms.loops.schedule import Schedule, parse_schedule
from mlc.tuning.task import Task

__all__ = ["BUFFERS", "LOOPS", "VERBS", "feature_count", "nest_features", "trace_features"]

LOOPS = 6
BUFFERS = 4
VERBS = (
    "split",
    "reorder",
    "vectorize",
    "unroll",
    "parallel",
    "cache_read",
    "decompose_reduction",
    "reverse_compute_at",
    "cache_write",
    "fuse",
)
_KINDS = (LoopKind.SERIAL, LoopKind.PARALLEL, LoopKind.VECTORIZE, LoopKind.UNROLL)
_PER_LOOP = 3 + len(_KINDS) + 2 * BUFFERS
#: per cache level: fitting level, bytes moved, arithmetic intensity
_PER_CACHE = 3
#: data-cache sizes assumed when sysfs does not say (L1, L2, L3)
_DEFAULT_CACHES = (32 << 10, 1 << 20, 32 << 20)


@functools.cache
def cache_sizes() -> tuple[int, ...]:
    """The host's data / unified cache sizes in bytes, by level (L1, L2, L3)."""
    found: dict[int, int] = {}
    root = "/sys/devices/system/cpu/cpu0/cache"
    try:
        for entry in sorted(e for e in os.listdir(root) if e.startswith("index")):
            path = os.path.join(root, entry)
            with open(os.path.join(path, "type")) as f:
                if f.read().strip() == "Instruction":
                    continue
            with open(os.path.join(path, "level")) as f:
                level = int(f.read())
            with open(os.path.join(path, "size")) as f:
                text = f.read().strip().upper()
            scale = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}.get(text[-1:], 1)
            found[level] = int(text.rstrip("KMG")) * scale
    except (OSError, ValueError):
        return _DEFAULT_CACHES
    sizes = tuple(found.get(level, 0) for level in (1, 2, 3))
    return sizes if all(sizes) else _DEFAULT_CACHES


def _log(x: float) -> float:
    return math.log2(1 + abs(x))


def feature_count() -> int:
    return 4 + LOOPS * _PER_LOOP + LOOPS + len(VERBS) + 3 * _PER_CACHE + 4


def _strides(block: BlockOp, loops: Sequence[ForOp]) -> list[list[int]]:
    """strides[k][j]: elements between consecutive iterations of loop j in buffer k."""
    binding = block.binding_map
    positions = {v: i for i, v in enumerate(block.loop_vars)}
    iter_coeffs = [linear_form(e)[0] for e in binding.results]
    maps = [*block.input_maps, *block.output_maps]
    out: list[list[int]] = []
    for m, ty in zip(maps, block.buffer_types):
        shape = ty.get_shape() if isinstance(ty, MemRefType) else ()
        row = [math.prod(shape[i + 1 :]) for i in range(len(shape))]
        per_loop = []
        for f in loops:
            p = positions.get(f.induction_var)
            stride = 0
            if p is not None:
                for i, e in enumerate(m.results):
                    coeffs = linear_form(e)[0]
                    for d, c in coeffs.items():
                        stride += c * iter_coeffs[d].get(p, 0) * (row[i] if i < len(row) else 1)
            per_loop.append(stride)
        out.append(per_loop)
    return out


def nest_features(block: BlockOp, trace: str, work: int) -> list[float]:
    """The features of `block`'s nest (see the module docstring)."""
    loops = block_loops(block)
    strides = _strides(block, loops)
    element_bytes = [
        max(1, (getattr(t.element_type, "bitwidth", 32) or 32) // 8) for t in block.buffer_types
    ]
    reductions = set(block.reduction_dims)
    binding = block.binding_map
    positions = {v: i for i, v in enumerate(block.loop_vars)}
    inner = list(reversed(loops))
    tile = 1
    for f in loops:
        if f.loop_kind in (LoopKind.VECTORIZE, LoopKind.UNROLL):
            tile *= f.trip_count
    steps = Counter(s.verb for s in parse_schedule(trace))
    x: list[float] = [
        _log(work),
        float(len(loops)),
        _log(tile),
        float(any(f.loop_kind == LoopKind.PARALLEL for f in loops)),
    ]
    for j in range(LOOPS):
        if j >= len(inner):
            x += [0.0] * _PER_LOOP
            continue
        f = inner[j]
        index = len(loops) - 1 - j
        p = positions.get(f.induction_var)
        runs_reduction = p is not None and any(
            p in binding.results[d].used_dims() for d in reductions
        )
        x += [_log(f.trip_count), float(runs_reduction), float(j)]
        x += [float(f.loop_kind == k) for k in _KINDS]
        for k in range(BUFFERS):
            s = strides[k][index] if k < len(strides) else 0
            x += [_log(s), float(abs(s) == 1)]
    footprints = [
        _footprint(inner, strides, element_bytes, level) for level in range(len(inner) + 1)
    ]
    x += [_log(footprints[min(level, len(inner))]) for level in range(1, LOOPS + 1)]
    x += [float(steps[v]) for v in VERBS]
    x += _reuse(inner, footprints, work)
    vector = [f.trip_count for f in loops if f.loop_kind == LoopKind.VECTORIZE]
    unrolled = math.prod(f.trip_count for f in loops if f.loop_kind == LoopKind.UNROLL)
    parallel = [f.trip_count for f in loops if f.loop_kind == LoopKind.PARALLEL]
    threads = min(parallel[0], os.cpu_count() or 1) if parallel else 1
    x += [_log(vector[-1] if vector else 0), _log(unrolled), _log(threads), _log(work / threads)]
    return x


def _footprint(
    inner: Sequence[ForOp],
    strides: Sequence[Sequence[int]],
    element_bytes: Sequence[int],
    level: int,
) -> int:
    """Bytes the innermost `level` loops touch: per buffer, the product of the trips of
    those loops it moves along (a stride-0 loop re-reads the same elements)."""
    n = len(inner)
    total = 0
    for k, per_loop in enumerate(strides):
        span = 1
        for j in range(level):
            if per_loop[n - 1 - j]:
                span *= inner[j].trip_count
        total += span * element_bytes[k]
    return total


def _reuse(inner: Sequence[ForOp], footprints: Sequence[int], work: int) -> list[float]:
    """Per cache level: the deepest nest level that fits, the bytes moved through the
    cache (that level's footprint once per iteration of the loops outside it), and the
    work per byte moved."""
    x: list[float] = []
    for size in cache_sizes():
        level = max((lv for lv, b in enumerate(footprints) if b <= size), default=0)
        outside = math.prod(f.trip_count for f in inner[level:])
        moved = max(1, footprints[level] * outside)
        x += [float(level), _log(moved), math.log2(max(work, 1) / moved)]
    return x


def trace_features(task: Task, trace: str) -> list[float]:
    """The features of `task`'s first kernel scheduled by `trace` (replayed here)."""
    module = task.module()
    Schedule(module).replay(trace)
    block = find_block(module, canonical_label(0))
    return nest_features(block, trace, task.work)
