"""`fold-constants`: evaluate graph ops whose operands are all constants.

Any graph op with a reference semantics (`mlc.interpreters.graph.evaluate`) whose operands
are all `graph.constant` results is replaced by constants holding its results, computed by
that same reference semantics (so folding cannot change what the program computes):

    %a = graph.constant dense<[1.0, 2.0]> : tensor<2xf32>
    %b = graph.constant dense<3.0> : tensor<2xf32>
    %c = graph.mul %a, %b : (tensor<2xf32>, tensor<2xf32>) -> tensor<2xf32>
    ->
    %c = graph.constant dense<[3.0, 6.0]> : tensor<2xf32>

Size limit: an op is not folded when its results hold more than `max_elements` elements
(default 2**22, 16 MiB of f32) *and* more than its operands together, so a huge
`expand`/`tile` of a small constant stays an op instead of being materialised at compile
time; ops that shrink or keep the size (transpose, reshape, matmul of big weights) always
fold. Constants left without users are removed afterwards (DCE).
"""

from __future__ import annotations

from dataclasses import dataclass

from xdsl.context import Context
from xdsl.dialects.builtin import ModuleOp, TensorType
from xdsl.ir import Operation
from xdsl.passes import ModulePass
from xdsl.pattern_rewriter import PatternRewriter, PatternRewriteWalker, RewritePattern
from xdsl.transforms.dead_code_elimination import region_dce

from mlc.dialects.graph import ConstantOp, GraphOp
from mlc.interpreters.graph import evaluate, has_reference
from mlc.transforms.graph.common import constant_array, make_constant, num_elements

DEFAULT_MAX_ELEMENTS = 1 << 22
"""Default size limit of `fold-constants` (elements of an op's results; see module doc)."""


def should_fold(op: Operation, max_elements: int = DEFAULT_MAX_ELEMENTS) -> bool:
    """`op` is a foldable graph op: constant operands, tensor results, within the limit."""
    if not isinstance(op, GraphOp) or isinstance(op, ConstantOp) or not op.operands:
        return False
    if not all(isinstance(o.owner, ConstantOp) for o in op.operands):
        return False
    if not op.results or not all(isinstance(r.type, TensorType) for r in op.results):
        return False
    if not has_reference(op):
        return False
    out = sum(num_elements(r.type) for r in op.results)
    inputs = sum(num_elements(o.type) for o in op.operands)
    return not (out > max_elements and out > inputs)


class FoldConstantOp(RewritePattern):
    """op(constant, ..., constant) -> constant(evaluate(op)) (see `fold-constants`)."""

    def __init__(self, max_elements: int = DEFAULT_MAX_ELEMENTS) -> None:
        self.max_elements = max_elements

    def match_and_rewrite(self, op: Operation, rewriter: PatternRewriter, /) -> None:
        # op(c1, ..., cn) -> evaluate(op, [c1, ..., cn])
        if not should_fold(op, self.max_elements):
            return
        arrays = [constant_array(o) for o in op.operands]
        try:
            results = evaluate(op, [a for a in arrays if a is not None])
        except (ArithmeticError, ValueError, NotImplementedError):
            return  # not foldable here; the op stays and fails (or not) at run time
        constants = [make_constant(a, r.type) for a, r in zip(results, op.results)]
        for new, old in zip(constants, op.results):
            new.result.name_hint = old.name_hint
        rewriter.replace(op, constants, [c.result for c in constants])


@dataclass(frozen=True)
class FoldConstantsPass(ModulePass):
    """`fold-constants{max-elements=N}`: replace graph ops with constant operands by their
    value (reference semantics), then remove dead constants. See the module docstring."""

    name = "fold-constants"
    max_elements: int = DEFAULT_MAX_ELEMENTS

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        PatternRewriteWalker(
            FoldConstantOp(self.max_elements), post_walk_func=region_dce
        ).rewrite_module(op)
