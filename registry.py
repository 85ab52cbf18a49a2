"""The one registry of mlc's dialects, passes and rewrite patterns.

Everything registered here is visible to `mlc-opt`, `mlc.context()` and the coverage
meta-test (every registered pass and pattern must have a semantics property test).
"""

from __future__ import annotations

from collections.abc import Callable

from xdsl.context import Context
from xdsl.dialects import get_all_dialects
from xdsl.ir import Dialect
from xdsl.passes import ModulePass
from xdsl.pattern_rewriter import RewritePattern


def _graph() -> Dialect:
    from mlc.dialects.graph import Graph

    return Graph


def _llvmx() -> Dialect:
    from mlc.dialects.llvmx import LLVMX

    return LLVMX


def _hw() -> Dialect:
    """All hardware dialects as one `hw` dialect: xDSL finds a dialect by the first
    segment of an op or type name (`hw.x86.vpdpbusd` -> `hw`), so `hw.x86` and `hw.accel`
    are registered together under it."""
    from mlc.dialects.hw.accel import Accel
    from mlc.dialects.hw.x86 import HW_X86

    parts = (HW_X86, Accel)
    return Dialect(
        "hw",
        [op for d in parts for op in d.operations],
        [attr for d in parts for attr in d.attributes],
    )


def _accel_placement() -> type[ModulePass]:
    from mlc.transforms.graph.placement import AccelPlacementPass

    return AccelPlacementPass


def _tl() -> Dialect:
    from mlc.dialects.tl import Tl

    return Tl


def _convert_graph_to_tl() -> type[ModulePass]:
    from mlc.lowering.graph_to_tl import ConvertGraphToTlPass

    return ConvertGraphToTlPass


def _convert_tl_to_llvm() -> type[ModulePass]:
    from mlc.lowering.tl_to_llvm import ConvertTlToLlvmPass

    return ConvertTlToLlvmPass


def _convert_tl_kernel_to_loops() -> type[ModulePass]:
    from mlc.lowering.tl_kernel_to_loops import ConvertTlKernelToLoopsPass

    return ConvertTlKernelToLoopsPass


def _llvm_profile_kernels() -> type[ModulePass]:
    from mlc.lowering.llvm_profile import LlvmProfileKernelsPass

    return LlvmProfileKernelsPass


def _llvm_merge_kernels() -> type[ModulePass]:
    from mlc.lowering.llvm_merge_kernels import LlvmMergeKernelsPass

    return LlvmMergeKernelsPass


def _rfactor() -> type[ModulePass]:
    from mlc.transforms.loops.rfactor import RfactorPass

    return RfactorPass


def _target_pass(module_name: str, class_name: str) -> Callable[[], type[ModulePass]]:
    def factory() -> type[ModulePass]:
        import importlib

        return getattr(importlib.import_module(f"mlc.targets.{module_name}"), class_name)

    return factory


def _tl_fusion(class_name: str) -> Callable[[], type[ModulePass]]:
    def factory() -> type[ModulePass]:
        from mlc.transforms.loops import fusion

        return getattr(fusion, class_name)

    return factory


def _loop_pass(class_name: str) -> Callable[[], type[ModulePass]]:
    def factory() -> type[ModulePass]:
        from mlc.transforms.loops import passes

        return getattr(passes, class_name)

    return factory


_LOOP_PASSES = {
    "tl-split": "TlSplitPass",
    "tl-reorder": "TlReorderPass",
    "tl-fuse": "TlFusePass",
    "tl-parallel": "TlParallelPass",
    "tl-vectorize": "TlVectorizePass",
    "tl-unroll": "TlUnrollPass",
    "tl-decompose-reduction": "TlDecomposeReductionPass",
    "tl-cache-read": "TlCacheReadPass",
    "tl-apply-schedule": "TlApplySchedulePass",
    "tl-compute-at": "TlComputeAtPass",
    "tl-reverse-compute-at": "TlReverseComputeAtPass",
    "tl-cache-write": "TlCacheWritePass",
    "tl-outline-kernels": "TlOutlineKernelsPass",
    "tl-concat-in-place": "TlConcatInPlacePass",
    "tl-fuse-outer-loops": "TlFuseOuterLoopsPass",
}


def _tensorize() -> type[ModulePass]:
    from mlc.transforms.loops.tensorize import TlTensorizePass

    return TlTensorizePass


def _graph_transform(class_name: str) -> Callable[[], type]:
    def factory() -> type:
        from mlc.transforms import graph

        return getattr(graph, class_name)

    return factory


_GRAPH_PASSES = {
    "fold-constants": "FoldConstantsPass",
    "graph-canonicalize": "GraphCanonicalizePass",
    "fold-batchnorm": "FoldBatchNormPass",
    "graph-optimize": "GraphOptimizePass",
    "pad-gemm-columns": "PadGemmColumnsPass",
    "pack-matmul-weights": "PackMatmulWeightsPass",
    "graph-blocked-layout": "BlockedLayoutPass",
    "pointwise-conv-to-matmul": "PointwiseConvToMatmulPass",
    "tree-ensemble-strategy": "TreeEnsembleStrategyPass",
    "graph-fold-qdq": "FoldQdqPass",
}

_GRAPH_PATTERNS = {
    "graph-fold-constant-op": "FoldConstantOp",
    "graph-remove-neutral-operand": "RemoveNeutralOperand",
    "graph-remove-no-op": "RemoveNoOp",
    "graph-compose-transposes": "ComposeTransposes",
    "graph-compose-reshapes": "ComposeReshapes",
    "graph-pretranspose-gemm-weight": "PretransposeGemmWeight",
    "graph-fold-pad-into-conv": "FoldPadIntoConv",
    "graph-fold-batchnorm": "FoldBatchNorm",
    "graph-fold-channel-affine": "FoldChannelAffine",
    "graph-pad-gemm-columns": "PadGemmColumns",
    "graph-pad-matmul-columns": "PadMatmulColumns",
    "graph-pad-matmul-integer-columns": "PadMatmulIntegerColumns",
    "graph-pack-matmul-weights": "PackMatmulWeights",
    "graph-block-conv": "BlockConv",
    "graph-propagate-blocked-unary": "PropagateUnary",
    "graph-propagate-blocked-binary": "PropagateBinary",
    "graph-propagate-blocked-pool": "PropagatePool",
    "graph-propagate-blocked-concat": "PropagateConcat",
    "graph-cancel-blocked-pair": "CancelBlockedPair",
    "graph-block-conv-integer": "BlockConvInteger",
    "graph-propagate-blocked-linear-quant": "PropagateLinearQuant",
    "graph-pointwise-conv-to-matmul": "PointwiseConvToMatmul",
    "graph-tree-ensemble-to-perfect": "TreeEnsembleToPerfect",
    "graph-tree-ensemble-to-gemm": "TreeEnsembleToGemm",
    "graph-fold-qdq-product": "FoldQdqProduct",
    "graph-fold-relu-into-quantize": "FoldReluIntoQuantize",
    "graph-fold-qdq-data-movement": "FoldQdqDataMovement",
}


XDSL_NAME_CLASHES = frozenset({"hw"})
"""mlc dialect names that xDSL also uses (its CIRCT `hw`): mlc's replace xDSL's in
mlc's contexts and are not exported through the xDSL plugin (`universe.py`)."""


def all_dialect_factories() -> dict[str, Callable[[], Dialect]]:
    """Dialect name -> lazy factory, for every dialect mlc defines."""
    return {"graph": _graph, "tl": _tl, "llvmx": _llvmx, "hw": _hw}


def all_pass_factories() -> dict[str, Callable[[], type[ModulePass]]]:
    """Pass name -> lazy factory, for every pass mlc defines."""
    return {
        "convert-graph-to-tl": _convert_graph_to_tl,
        "convert-tl-kernel-to-loops": _convert_tl_kernel_to_loops,
        "convert-tl-to-llvm": _convert_tl_to_llvm,
        **{name: _loop_pass(cls) for name, cls in _LOOP_PASSES.items()},
        "tl-tensorize": _tensorize,
        "tl-inline-elementwise": _tl_fusion("TlInlineElementwisePass"),
        "tl-rfactor": _rfactor,
        "tl-fuse-epilogues": _tl_fusion("TlFuseEpiloguesPass"),
        **{name: _graph_transform(cls) for name, cls in _GRAPH_PASSES.items()},
        "accel-placement": _accel_placement,
        "tl-default-schedule": _target_pass("pipeline", "TlDefaultSchedulePass"),
        "llvm-use-vector-math": _target_pass("pipeline", "LlvmUseVectorMathPass"),
        "llvm-profile-kernels": _llvm_profile_kernels,
        "llvm-merge-kernels": _llvm_merge_kernels,
        "mlc-cpu-pipeline": _target_pass("pipeline", "MlcCpuPipelinePass"),
    }


def make_context(allow_unregistered: bool = False) -> Context:
    """An xDSL `Context` with every xDSL dialect and every mlc dialect registered."""
    ctx = Context(allow_unregistered=allow_unregistered)
    ours = all_dialect_factories()
    for name, factory in get_all_dialects().items():
        if name not in ours:  # mlc's `hw` (hardware dialects) replaces xDSL's CIRCT `hw`
            ctx.register_dialect(name, factory)
    for name, factory in ours.items():
        ctx.register_dialect(name, factory)
    return ctx


def all_rewrite_patterns() -> dict[str, Callable[[], type[RewritePattern]]]:
    """Pattern name -> lazy factory, for every rewrite pattern mlc exposes on its own
    (patterns used only inside one pass are covered by that pass's property test)."""

    def kernel_to_loops() -> type[RewritePattern]:
        from mlc.lowering.tl_kernel_to_loops import KernelToLoops

        return KernelToLoops

    return {
        "tl-kernel-to-loops": kernel_to_loops,
        **{name: _graph_transform(cls) for name, cls in _GRAPH_PATTERNS.items()},
    }
