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
}


def all_dialect_factories() -> dict[str, Callable[[], Dialect]]:
    """Dialect name -> lazy factory, for every dialect mlc defines."""
    return {"graph": _graph, "tl": _tl, "llvmx": _llvmx}


def all_pass_factories() -> dict[str, Callable[[], type[ModulePass]]]:
    """Pass name -> lazy factory, for every pass mlc defines."""
    return {
        "convert-graph-to-tl": _convert_graph_to_tl,
        "convert-tl-kernel-to-loops": _convert_tl_kernel_to_loops,
        "convert-tl-to-llvm": _convert_tl_to_llvm,
        **{name: _loop_pass(cls) for name, cls in _LOOP_PASSES.items()},
    }


def make_context(allow_unregistered: bool = False) -> Context:
    """An xDSL `Context` with every xDSL dialect and every mlc dialect registered."""
    ctx = Context(allow_unregistered=allow_unregistered)
    for name, factory in get_all_dialects().items():
        ctx.register_dialect(name, factory)
    for name, factory in all_dialect_factories().items():
        ctx.register_dialect(name, factory)
    return ctx


def all_rewrite_patterns() -> dict[str, Callable[[], type[RewritePattern]]]:
    """Pattern name -> lazy factory, for every rewrite pattern mlc exposes on its own
    (patterns used only inside one pass are covered by that pass's property test)."""

    def kernel_to_loops() -> type[RewritePattern]:
        from mlc.lowering.tl_kernel_to_loops import KernelToLoops

        return KernelToLoops

    return {"tl-kernel-to-loops": kernel_to_loops}
