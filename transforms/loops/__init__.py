"""Loop transformations on `tl` loop nests (split, fuse, reorder, parallel, vectorize,
unroll, decompose-reduction, cache-read / pack), as functions, as a recording
`Schedule` and as mlc-opt passes."""

from mlc.transforms.loops.annotate import parallel, unroll, vectorize
from mlc.transforms.loops.buffers import cache_read, decompose_reduction
from mlc.transforms.loops.common import ScheduleError
from mlc.transforms.loops.passes import (
    TlApplySchedulePass,
    TlCacheReadPass,
    TlDecomposeReductionPass,
    TlFusePass,
    TlParallelPass,
    TlReorderPass,
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
    "TlDecomposeReductionPass",
    "TlFusePass",
    "TlParallelPass",
    "TlReorderPass",
    "TlSplitPass",
    "TlUnrollPass",
    "TlVectorizePass",
    "cache_read",
    "decompose_reduction",
    "fuse",
    "parallel",
    "parse_schedule",
    "reorder",
    "split",
    "unroll",
    "vectorize",
]
