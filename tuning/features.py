"""Features of a scheduled loop nest, for the cost model.

    x = trace_features(task, trace)          # a fixed-length list of floats

Computed on the task's first kernel (`t0`) after replaying the trace: per loop (the
innermost `LOOPS`, innermost first) its trip count, kind (serial / parallel / vectorize
/ unroll), whether it runs a reduction iterator, and for each buffer (the first
`BUFFERS`) the element stride along it; for the nest the work, the product of the
unrolled and vectorized trips (the register tile), the bytes each level of the nest
touches (the footprint of the loops inside it: a proxy for reuse per cache level), and
how often each schedule step occurs. All counts are log2-scaled.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence

from xdsl.dialects.builtin import MemRefType

from mlc.dialects.tl import BlockOp, ForOp, LoopKind, linear_form
from mlc.transforms.loops.common import block_loops, find_block
from mlc.transforms.loops.schedule import Schedule, parse_schedule
from mlc.tuning.task import Task, canonical_label

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
)
_KINDS = (LoopKind.SERIAL, LoopKind.PARALLEL, LoopKind.VECTORIZE, LoopKind.UNROLL)
_PER_LOOP = 3 + len(_KINDS) + 2 * BUFFERS


def _log(x: float) -> float:
    return math.log2(1 + abs(x))


def feature_count() -> int:
    return 4 + LOOPS * _PER_LOOP + LOOPS + len(VERBS)


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
    # bytes touched by the innermost 1..LOOPS loops (footprint per nest level)
    for level in range(1, LOOPS + 1):
        total = 0
        for k, per_loop in enumerate(strides):
            span = 1
            for j in range(min(level, len(inner))):
                if per_loop[len(loops) - 1 - j]:
                    span *= inner[j].trip_count
            total += span * element_bytes[k]
        x.append(_log(total))
    x += [float(steps[v]) for v in VERBS]
    return x


def trace_features(task: Task, trace: str) -> list[float]:
    """The features of `task`'s first kernel scheduled by `trace` (replayed here)."""
    module = task.module()
    Schedule(module).replay(trace)
    block = find_block(module, canonical_label(0))
    return nest_features(block, trace, task.work)
