"""Loop transformations on `tl` loop nests (split, fuse, reorder, parallel, vectorize,
unroll, decompose-reduction, cache-read / pack, cache-write, compute-at / reverse-compute-at), as
functions, as a recording `Schedule` and as mlc-opt passes."""

from mlc.transforms.loops.annotate import parallel, unroll, vectorize
from mlc.transforms.loops.buffers import decompose_reduction
from mlc.transforms.loops.cache import cache_read, cache_write
from mlc.transforms.loops.common import ScheduleError
from mlc.transforms.loops.compute_at import compute_at, reverse_compute_at
from mlc.transforms.loops.passes import (
    TlApplySchedulePass,
    TlCacheReadPass,
    TlCacheWritePass,
    TlComputeAtPass,
    TlDecomposeReductionPass,
    TlFusePass,
    TlParallelPass,
    TlReorderPass,
    TlReverseComputeAtPass,
    TlSplitPass,
    TlUnrollPass,
    TlVectorizePass,
)
from mlc.transforms.loops.schedule import Schedule, Step, parse_schedule
from mlc.transforms.loops.tiling import fuse, reorder, split

__all__ = [
    "Schedule",
    "ScheduleError",
    "Step",
    "TlApplySchedulePass",
    "TlCacheReadPass",
    "TlCacheWritePass",
    "TlComputeAtPass",
    "TlDecomposeReductionPass",
    "TlFusePass",
    "TlParallelPass",
    "TlReorderPass",
    "TlReverseComputeAtPass",
    "TlSplitPass",
    "TlUnrollPass",
    "TlVectorizePass",
    "cache_read",
    "cache_write",
    "compute_at",
    "decompose_reduction",
    "fuse",
    "parallel",
    "parse_schedule",
    "reorder",
    "reverse_compute_at",
    "split",
    "unroll",
    "vectorize",
]
