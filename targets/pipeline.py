"""`mlc-cpu-pipeline`: what `mlc.compile` runs, as one registered pipeline of registered
passes, from the graph (or tl) level down to the llvm dialect.

    mlc-opt model.mlir -p 'mlc-cpu-pipeline{fuse=true layout=default vector-math=true}'
    mlc compile model.onnx --print-pipeline      # the expanded pipeline, pass by pass
    mlc-opt model.mlir -p "$(mlc compile model.onnx --print-pipeline)"   # the same module

Expanded with the host's vector width (AVX-512: 16 fp32 lanes) and every option at its
default, it is

    tree-ensemble-strategy{strategy="auto" max-depth=12}, graph-fold-qdq, graph-optimize,
    pad-gemm-columns{multiple=16}, pack-matmul-weights{panel=32 max-rows=256},
    graph-blocked-layout{block=16 min-convs=2}, pointwise-conv-to-matmul, convert-graph-to-tl, tl-concat-in-place,
    tl-inline-elementwise, tl-fuse-epilogues, tl-rfactor{lanes=16}, tl-default-schedule{vector-bits=512
    threads=true}, convert-tl-kernel-to-loops, tl-outline-kernels,
    convert-tl-to-llvm{threads=true}, llvm-use-vector-math{vector-bits=512},
    llvm-merge-kernels

(`fuse=false` drops the graph optimizations, 1x1 convs as products, concatenation in
place and kernel fusion,
`layout=none` the blocked layout, `layout=nchwc` blocks even a single convolution,
`schedule=none` keeps kernels as plain loops in iterator order, `vector-math=false` keeps
per-lane libm calls, `outline=false` keeps every loop nest inside the model's function
instead of deduplicated kernel functions, `merge=false` keeps kernels that differ only in
integer constants apart, `trees=gemm|traversal|perfect` runs every tree
ensemble with that strategy instead of choosing per ensemble, docs/trees.md). A module that is already at the tl level
skips the graph stage; `mlc.compile` then emits the llvm dialect
as LLVM IR and compiles it (`targets.compiled`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

from xdsl.context import Context
from xdsl.dialects import func
from xdsl.dialects.builtin import ModuleOp, TensorType
from xdsl.passes import ModulePass

from mlc.host import HostFeatures, host_features
from mlc.lowering.graph_to_tl import ConvertGraphToTlPass
from mlc.lowering.llvm_merge_kernels import LlvmMergeKernelsPass
from mlc.lowering.llvm_profile import LlvmProfileKernelsPass
from mlc.lowering.llvm_vector_math import use_vector_math
from mlc.lowering.tl_kernel_to_loops import ConvertTlKernelToLoopsPass
from mlc.lowering.tl_to_llvm import ConvertTlToLlvmPass
from mlc.targets.timings import Timings
from mlc.targets.x86 import Avx2Int8GemmSchedule, VnniGemmSchedule
from mlc.transforms.graph.conv_to_matmul import PointwiseConvToMatmulPass
from mlc.transforms.graph.layout import BlockedLayoutPass
from mlc.transforms.graph.optimize import GraphOptimizePass
from mlc.transforms.graph.pack_weights import PackMatmulWeightsPass
from mlc.transforms.graph.pad_gemm import PadGemmColumnsPass
from mlc.transforms.graph.quantize import FoldQdqPass
from mlc.transforms.graph.trees import STRATEGIES as TREE_STRATEGIES
from mlc.transforms.graph.trees import TreeEnsembleStrategyPass
from mlc.transforms.loops.concat_in_place import TlConcatInPlacePass
from mlc.transforms.loops.default_schedule import (
    CpuDefaultSchedule,
    ScheduleStrategy,
    apply_default_schedules,
)
from mlc.transforms.loops.fusion import TlFuseEpiloguesPass, TlInlineElementwisePass
from mlc.transforms.loops.loop_fusion import TlFuseOuterLoopsPass
from mlc.transforms.loops.outline import TlOutlineKernelsPass
from mlc.transforms.loops.rfactor import RfactorPass

__all__ = [
    "LAYOUTS",
    "SCHEDULES",
    "LlvmUseVectorMathPass",
    "MlcCpuPipelinePass",
    "TlDefaultSchedulePass",
    "default_strategy",
    "pass_text",
    "run_passes",
]

LAYOUTS = ("default", "nchwc", "none")
#: contiguous reductions are split into this many vectors of partial results (independent
#: accumulator chains: a row max or sum of 256 x 1024 floats 20-30 % faster than one)
RFACTOR_ACCUMULATORS = 4
SCHEDULES = ("default", "none")


def _features(vector_bits: int) -> HostFeatures:
    """The host's features, narrowed to `vector_bits`-wide vectors (0: the host's)."""
    host = host_features()
    if not vector_bits:
        return host
    return replace(
        host,
        avx512f=host.avx512f and vector_bits >= 512,
        avx512vnni=host.avx512vnni and vector_bits >= 512,
        avx512bf16=host.avx512bf16 and vector_bits >= 512,
        avx2=host.avx2 and vector_bits >= 256,
    )


def default_strategy(vector_bits: int = 0, threads: bool = True) -> ScheduleStrategy:
    """`CpuDefaultSchedule` for `vector_bits` (0: the host's width); on a host with
    AVX-512 VNNI, `VnniGemmSchedule` in front of it (u8 x s8 -> i32 matmul kernels, e.g.
    from ONNX MatMulInteger / QLinearMatMul, tensorized to `vpdpbusd`; every other kernel,
    and matmuls whose sizes do not fit its tiles, get the `CpuDefaultSchedule`); on an
    AVX2 host without it, `Avx2Int8GemmSchedule` (the same kernels through the exact
    `vpmaddwd`)."""
    features = _features(vector_bits)
    cpu = CpuDefaultSchedule(vector_bits=features.vector_bits, threads=threads)
    if features.avx512vnni:
        return VnniGemmSchedule(threads=threads, fallback=cpu)
    if features.avx2:
        return Avx2Int8GemmSchedule(threads=threads, fallback=cpu)
    return cpu


@dataclass(frozen=True)
class TlDefaultSchedulePass(ModulePass):
    """`tl-default-schedule{vector-bits=0 threads=true}`: every `tl.kernel` gets the
    default schedule for the host (`default_strategy`; `vector-bits=0`: the host's vector
    width), recorded as replayable text, and is lowered to loops."""

    name = "tl-default-schedule"
    vector_bits: int = 0
    threads: bool = True

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        apply_default_schedules(op, default_strategy(self.vector_bits, self.threads))


@dataclass(frozen=True)
class StrategySchedulePass(ModulePass):
    """Every `tl.kernel` scheduled by a Python `ScheduleStrategy` object (what
    `mlc.compile(..., schedule=strategy)` puts in place of `tl-default-schedule`; not
    registered: a strategy object has no textual form)."""

    name = "tl-schedule-with-strategy"
    strategy: object = None

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        apply_default_schedules(op, self.strategy)  # type: ignore[arg-type]


@dataclass(frozen=True)
class LlvmUseVectorMathPass(ModulePass):
    """`llvm-use-vector-math{vector-bits=0}`: vector math calls in the llvm dialect call
    glibc's libmvec where it has a variant for the vector width (`lowering.llvm_vector_math`)."""

    name = "llvm-use-vector-math"
    vector_bits: int = 0

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        use_vector_math(op, _features(self.vector_bits))


def rfactor_pass(vector_bits: int) -> RfactorPass:
    """`tl-rfactor` for vectors of `vector_bits` (f32 lanes, `RFACTOR_ACCUMULATORS`)."""
    return RfactorPass(lanes=max(vector_bits // 32, 1), accumulators=RFACTOR_ACCUMULATORS)


def is_graph_level(module: ModuleOp) -> bool:
    """The module holds graph ops or a function over tensors (an identity model)."""
    for op in module.walk():
        if op.name.startswith("graph."):
            return True
        if isinstance(op, func.FuncOp) and any(
            isinstance(t, TensorType)
            for t in (*op.function_type.inputs.data, *op.function_type.outputs.data)
        ):
            return True
    return False


@dataclass(frozen=True)
class MlcCpuPipelinePass(ModulePass):
    """`mlc-cpu-pipeline{fuse=true layout=default schedule=default vector-math=true
    threads=true vector-bits=0 outline=true merge=true profile=false trees=auto}`: the whole
    compile of `mlc.compile` for the host CPU (see the module docstring); `vector-bits=0` is
    the host's vector width; `merge=true` (with `outline`) runs `llvm-merge-kernels`;
    `profile=true` ends with `llvm-profile-kernels`."""

    name = "mlc-cpu-pipeline"
    fuse: bool = True
    layout: str = "default"
    schedule: str = "default"
    vector_math: bool = True
    threads: bool = True
    vector_bits: int = 0
    outline: bool = True
    merge: bool = True
    profile: bool = False
    trees: str = "auto"

    def __post_init__(self) -> None:
        if self.layout not in LAYOUTS:
            raise ValueError(
                f"mlc-cpu-pipeline: layout must be one of {LAYOUTS}, got {self.layout!r}"
            )
        if self.trees not in TREE_STRATEGIES:
            raise ValueError(
                f"mlc-cpu-pipeline: trees must be one of {TREE_STRATEGIES}, got {self.trees!r}"
            )
        if self.schedule not in SCHEDULES:
            raise ValueError(
                f"mlc-cpu-pipeline: schedule must be one of {SCHEDULES}, got {self.schedule!r}"
            )

    def graph_passes(self) -> list[ModulePass]:
        bits = _features(self.vector_bits).vector_bits
        lanes = max(bits // 32, 1)
        passes: list[ModulePass] = [TreeEnsembleStrategyPass(strategy=self.trees)]
        if self.fuse:
            passes += [FoldQdqPass(), GraphOptimizePass(), PadGemmColumnsPass(multiple=lanes)]
            passes.append(PackMatmulWeightsPass(panel=2 * lanes))  # the register tile's width
        if self.layout == "nchwc" or (self.layout == "default" and self.fuse):
            min_convs = 2 if self.layout == "default" else 0
            passes.append(BlockedLayoutPass(block=lanes, min_convs=min_convs))
        if self.fuse:
            passes.append(PointwiseConvToMatmulPass())
        return [*passes, ConvertGraphToTlPass()]

    def tl_passes(self, strategy: ScheduleStrategy | None = None) -> list[ModulePass]:
        bits = _features(self.vector_bits).vector_bits
        passes: list[ModulePass] = []
        if self.fuse:
            passes += [TlConcatInPlacePass(), TlInlineElementwisePass(), TlFuseEpiloguesPass()]
        if strategy is not None:
            if getattr(strategy, "rfactor_first", False):  # it schedules what tl-rfactor made
                passes.append(rfactor_pass(bits))
            passes.append(StrategySchedulePass(strategy))
        elif self.schedule == "default":
            passes += [
                rfactor_pass(bits),
                TlDefaultSchedulePass(vector_bits=bits, threads=self.threads),
            ]
        passes.append(ConvertTlKernelToLoopsPass())
        if self.fuse:
            passes.append(TlFuseOuterLoopsPass())
        if self.outline:
            passes.append(TlOutlineKernelsPass())
        passes.append(ConvertTlToLlvmPass(threads=self.threads))
        if self.vector_math:
            passes.append(LlvmUseVectorMathPass(vector_bits=bits))
        if self.outline and self.merge:
            passes.append(LlvmMergeKernelsPass())
        if self.profile:
            passes.append(LlvmProfileKernelsPass())
        return passes

    def passes(
        self, module: ModuleOp | None = None, strategy: ScheduleStrategy | None = None
    ) -> list[ModulePass]:
        """The expanded pipeline; for `module`, without the graph stage if it is not at
        the graph level. `strategy` replaces `tl-rfactor` and `tl-default-schedule`
        (only the latter if it has `rfactor_first = True`, as `mlc.tuning.TunedSchedule`)."""
        graph = module is None or is_graph_level(module)
        return [*(self.graph_passes() if graph else []), *self.tl_passes(strategy)]

    def pipeline_text(self, module: ModuleOp | None = None) -> str:
        """The expanded pipeline in `-p` syntax (replays the compile pass by pass)."""
        return ",".join(pass_text(p) for p in self.passes(module))

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        run_passes(self.passes(op), ctx, op)


def pass_text(p: ModulePass) -> str:
    """`p` in `-p` syntax with every option, named MLIR-style (`vector-bits=512`)."""
    spec = p.spec(include_default=True)
    spec = type(spec)(spec.name, {k.replace("_", "-"): v for k, v in spec.parameters.items()})
    return str(spec)


def run_passes(
    passes: Sequence[ModulePass],
    ctx: Context,
    module: ModuleOp,
    timings: Timings | None = None,
    after: Callable[[ModulePass, ModuleOp], None] | None = None,
    progress: bool = False,
) -> None:
    """Apply `passes` in order, timing each under its name; `after(pass, module)` runs
    after each (printing, verification). `progress`: a progress bar on stderr (tqdm)."""
    if progress:
        from tqdm import tqdm

        passes = tqdm(passes, desc="mlc compile", unit="pass", leave=False)
    for p in passes:
        if progress:
            passes.set_postfix_str(p.name)  # type: ignore[attr-defined]
        if timings is None:
            p.apply(ctx, module)
        else:
            with timings.stage(p.name):
                p.apply(ctx, module)
        if after is not None:
            after(p, module)
