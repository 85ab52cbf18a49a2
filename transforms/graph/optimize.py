"""`graph-optimize`: fold-constants, graph-canonicalize, fold-batchnorm, cse and dce,
repeated until nothing changes.

    %w = graph.constant dense<...> : tensor<4x3x3x3xf32>
    %y = graph.conv %x, %w {...} : (...) -> tensor<1x4x8x8xf32>
    %z = graph.batch_norm %y, %gamma, %beta, %mean, %var {epsilon = 1.0e-05 : f32} : ...
    %i = graph.identity %z : (tensor<1x4x8x8xf32>) -> tensor<1x4x8x8xf32>
    func.return %i : tensor<1x4x8x8xf32>
    ->
    %w2 = graph.constant dense<...> : tensor<4x3x3x3xf32>
    %b2 = graph.constant dense<...> : tensor<4xf32>
    %z = graph.conv %x, %w2, %b2 {...} : (...) -> tensor<1x4x8x8xf32>
    func.return %z : tensor<1x4x8x8xf32>

All rewrite patterns run in one greedy walk (each rewrite can enable the others: a folded
constant feeds a batch-norm fold, a removed identity exposes a transpose pair), with dead
code removed between rounds; xDSL's CSE then merges equal ops (graph ops are `Pure`), and
the whole repeats while CSE changed something (at most `max_rounds` times).
"""

from __future__ import annotations

from dataclasses import dataclass

from xdsl.context import Context
from xdsl.dialects.builtin import ModuleOp
from xdsl.passes import ModulePass
from xdsl.pattern_rewriter import GreedyRewritePatternApplier, PatternRewriteWalker
from xdsl.transforms.common_subexpression_elimination import cse
from xdsl.transforms.dead_code_elimination import region_dce

from mlc.transforms.graph.canonicalize import CANONICALIZATION_PATTERNS
from mlc.transforms.graph.fold_batchnorm import BATCHNORM_PATTERNS
from mlc.transforms.graph.fold_constants import DEFAULT_MAX_ELEMENTS, FoldConstantOp


def _op_count(module: ModuleOp) -> int:
    return sum(1 for _ in module.walk())


@dataclass(frozen=True)
class GraphOptimizePass(ModulePass):
    """`graph-optimize{max-elements=N max-rounds=R}`: the graph-level clean-up pipeline
    (see the module docstring); `max-elements` is `fold-constants`' size limit."""

    name = "graph-optimize"
    max_elements: int = DEFAULT_MAX_ELEMENTS
    max_rounds: int = 8

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        patterns = [
            FoldConstantOp(self.max_elements),
            *(p() for p in CANONICALIZATION_PATTERNS),
            *(p() for p in BATCHNORM_PATTERNS),
        ]
        walker = PatternRewriteWalker(
            GreedyRewritePatternApplier(patterns), post_walk_func=region_dce
        )
        for _ in range(max(self.max_rounds, 1)):
            walker.rewrite_module(op)
            before = _op_count(op)
            cse(op)
            region_dce(op.body)
            if _op_count(op) == before:
                break
