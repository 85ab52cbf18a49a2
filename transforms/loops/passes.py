"""The loop transformations as `mlc-opt` passes. Each names a block by its kernel label
(a `tl.kernel` of that label is lowered first) and loops by their short names:

    mlc-opt f.mlir -p 'tl-split{kernel="matmul" loop="m" factor=8},tl-parallel{kernel="matmul" loop="m.o"}'

Illegal requests raise `ScheduleError` (a `DiagnosticException`), which mlc-opt reports
as `error: in pass 'tl-split': ...`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from xdsl.context import Context
from xdsl.dialects.builtin import ModuleOp
from xdsl.passes import ModulePass

from mlc.dialects.tl import KernelOp
from mlc.transforms.loops.common import ScheduleError
from mlc.transforms.loops.concat_in_place import TlConcatInPlacePass
from mlc.transforms.loops.loop_fusion import TlFuseOuterLoopsPass
from mlc.transforms.loops.outline import TlOutlineKernelsPass
from mlc.transforms.loops.schedule import Schedule

__all__ = [
    "TlApplySchedulePass",
    "TlCacheReadPass",
    "TlCacheWritePass",
    "TlConcatInPlacePass",
    "TlFuseOuterLoopsPass",
    "TlOutlineKernelsPass",
    "TlComputeAtPass",
    "TlDecomposeReductionPass",
    "TlFusePass",
    "TlParallelPass",
    "TlReorderPass",
    "TlReverseComputeAtPass",
    "TlSplitPass",
    "TlUnrollPass",
    "TlVectorizePass",
]


def _schedule(op: ModuleOp, kernel: str, keep_inits: bool = False) -> Schedule:
    sch = Schedule(op)
    if not kernel:
        raise ScheduleError("the `kernel` option (a block label) is required")
    if keep_inits and any(isinstance(k, KernelOp) and k.label.data == kernel for k in op.walk()):
        sch.lower(kernel, keep_inits=True)
    sch.get_loops(kernel)
    return sch


@dataclass(frozen=True)
class TlSplitPass(ModulePass):
    """`tl-split{kernel="mm" loop="m" factor=8}`: loop m -> m.o, m.i."""

    name = "tl-split"
    kernel: str = ""
    loop: str = ""
    factor: int = 1

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        _schedule(op, self.kernel).split(f"{self.kernel}/{self.loop}", self.factor)


@dataclass(frozen=True)
class TlReorderPass(ModulePass):
    """`tl-reorder{kernel="mm" order="n,m,k"}`: permute perfectly nested loops."""

    name = "tl-reorder"
    kernel: str = ""
    order: str = ""

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        names = [f"{self.kernel}/{n.strip()}" for n in self.order.split(",") if n.strip()]
        _schedule(op, self.kernel).reorder(*names)


@dataclass(frozen=True)
class TlFusePass(ModulePass):
    """`tl-fuse{kernel="mm" outer="m" inner="n"}`: one loop `m.n` over both."""

    name = "tl-fuse"
    kernel: str = ""
    outer: str = ""
    inner: str = ""

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        k = self.kernel
        _schedule(op, k).fuse(f"{k}/{self.outer}", f"{k}/{self.inner}")


@dataclass(frozen=True)
class TlParallelPass(ModulePass):
    """`tl-parallel{kernel="mm" loop="m"}`: mark a loop parallel."""

    name = "tl-parallel"
    kernel: str = ""
    loop: str = ""

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        _schedule(op, self.kernel).parallel(f"{self.kernel}/{self.loop}")


@dataclass(frozen=True)
class TlVectorizePass(ModulePass):
    """`tl-vectorize{kernel="mm" loop="n" width=8}` (width 0: the trip count)."""

    name = "tl-vectorize"
    kernel: str = ""
    loop: str = ""
    width: int = 0

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        _schedule(op, self.kernel).vectorize(f"{self.kernel}/{self.loop}", self.width or None)


@dataclass(frozen=True)
class TlUnrollPass(ModulePass):
    """`tl-unroll{kernel="mm" loop="k" factor=2}` (factor 0: the trip count)."""

    name = "tl-unroll"
    kernel: str = ""
    loop: str = ""
    factor: int = 0

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        _schedule(op, self.kernel).unroll(f"{self.kernel}/{self.loop}", self.factor or None)


@dataclass(frozen=True)
class TlDecomposeReductionPass(ModulePass):
    """`tl-decompose-reduction{kernel="mm" loop="k"}`: hoist the block's inits into a nest
    before loop k (a tl.kernel is lowered keeping its inits in the block first)."""

    name = "tl-decompose-reduction"
    kernel: str = ""
    loop: str = ""

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        sch = _schedule(op, self.kernel, keep_inits=True)
        sch.decompose_reduction(self.kernel, f"{self.kernel}/{self.loop}")


@dataclass(frozen=True)
class TlCacheReadPass(ModulePass):
    """`tl-cache-read{kernel="mm" operand=1 at="k" layout="1,0"}`: copy an input into a
    local buffer (`layout` permutes its dims: a pack) before loop `at`: with `at`, only
    the tile that `at` and the loops inside it read (panel packing); without, the whole
    buffer before the outermost loop."""

    name = "tl-cache-read"
    kernel: str = ""
    operand: int = 0
    at: str = ""
    layout: str = ""

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        layout = [int(x) for x in self.layout.split(",")] if self.layout else None
        at = f"{self.kernel}/{self.at}" if self.at else None
        _schedule(op, self.kernel).cache_read(self.kernel, self.operand, at, layout)


@dataclass(frozen=True)
class TlCacheWritePass(ModulePass):
    """`tl-cache-write{kernel="mm" operand=0 at="n"}`: compute output `operand` into a
    local tile loaded before loop `at` (default: the outermost) and written back after
    it."""

    name = "tl-cache-write"
    kernel: str = ""
    operand: int = 0
    at: str = ""

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        at = f"{self.kernel}/{self.at}" if self.at else None
        _schedule(op, self.kernel).cache_write(self.kernel, self.operand, at)


@dataclass(frozen=True)
class TlComputeAtPass(ModulePass):
    """`tl-compute-at{kernel="act" consumer="mm" loop="m"}`: move the elementwise
    producer block `kernel` into loop `loop` of the consumer `consumer`'s nest (both
    kernels are lowered first if needed)."""

    name = "tl-compute-at"
    kernel: str = ""
    consumer: str = ""
    loop: str = ""

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        if not self.consumer:
            raise ScheduleError("the `consumer` option (a block label) is required")
        sch = _schedule(op, self.kernel)
        sch.get_loops(self.consumer)
        sch.compute_at(self.kernel, f"{self.consumer}/{self.loop}")


@dataclass(frozen=True)
class TlReverseComputeAtPass(ModulePass):
    """`tl-reverse-compute-at{kernel="relu" producer="mm" loop="n"}`: move the
    elementwise consumer block `kernel` into loop `loop` of the producer `producer`'s
    nest (both kernels are lowered first if needed)."""

    name = "tl-reverse-compute-at"
    kernel: str = ""
    producer: str = ""
    loop: str = ""

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        if not self.producer:
            raise ScheduleError("the `producer` option (a block label) is required")
        sch = _schedule(op, self.kernel)
        sch.get_loops(self.producer)
        sch.reverse_compute_at(self.kernel, f"{self.producer}/{self.loop}")


@dataclass(frozen=True)
class TlApplySchedulePass(ModulePass):
    """`tl-apply-schedule{text="split mm/m 4; parallel mm/m.o"}` or `{file="s.sched"}`:
    replay a schedule in the text format (`;` also separates steps)."""

    name = "tl-apply-schedule"
    text: str = ""
    file: str = ""

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        text = self.text.replace(";", "\n")
        if self.file:
            try:
                text += "\n" + Path(self.file).read_text()
            except OSError as e:
                raise ScheduleError(f"cannot read schedule file: {e}") from None
        Schedule(op).replay(text)
