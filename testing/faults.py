"""Deliberately wrong rewrites, for testing the testing tools (never registered).

`mlc-opt --load-passes mlc.testing.faults` makes the passes of `MLC_PASSES` available,
so `--bisect-semantics` can be tested on a pipeline with a known bad pass.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from xdsl.context import Context
from xdsl.dialects.builtin import ModuleOp
from xdsl.passes import ModulePass
from xdsl.pattern_rewriter import (
    PatternRewriter,
    PatternRewriteWalker,
    RewritePattern,
    op_type_rewrite_pattern,
)

from mlc.dialects import graph as g


class AddToSub(RewritePattern):
    """WRONG on purpose: x + y -> x - y."""

    @op_type_rewrite_pattern
    def match_and_rewrite(self, op: g.AddOp, rewriter: PatternRewriter) -> None:
        rewriter.replace(op, g.SubOp.create(list(op.operands)))


@dataclass(frozen=True)
class BrokenAddToSubPass(ModulePass):
    """`mlc-test-add-to-sub`: applies `AddToSub` everywhere (wrong on purpose)."""

    name = "mlc-test-add-to-sub"

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        PatternRewriteWalker(AddToSub()).rewrite_module(op)


MLC_PASSES: dict[str, Callable[[], type[ModulePass]]] = {
    "mlc-test-add-to-sub": lambda: BrokenAddToSubPass,
}
