"""The one library of graph-op semantics as tensor expressions.

For every graph op that is affine tensor algebra, `expression_for(op)` returns its
semantics as a texpr `Definition` specialized to the op's attributes and static shapes
(all shapes, ranges and indices are integer constants), with the mapping from the op's
operands and results to the definition's inputs and outputs::

    >>> from xdsl.dialects.builtin import TensorType, f32
    >>> from xdsl.ir import Block
    >>> from mlc.dialects import graph
    >>> x, w = Block(arg_types=[TensorType(f32, [1, 3, 8, 8]), TensorType(f32, [4, 3, 3, 3])]).args
    >>> op = graph.ConvOp.create([x, w], strides=[2, 2], pads=[1, 1, 1, 1], dilations=[1, 1], group=1)
    >>> e = expression_for(op)
    >>> print(e.definition)
    conv(X: f32[1, 3, 8, 8], Wt: f32[4, 3, 3, 3]) -> Y: f32[1, 4, 4, 4] {
      Y[n, m, o0, o1] += (X[n, c, k0 + o0 * 2 - 1, k1 + o1 * 2 - 1] if in bounds else 0.0) * Wt[m, c, k0, k1]
    }
    >>> e.operands, e.results
    (('X', 'Wt'), ('Y',))

Graph -> tl lowering reads these expressions instead of restating semantics. Ops that
are not affine tensor algebra are listed, with the reason, in `NOT_AFFINE`; instances a
covered op's expression does not handle raise `ExpressionError` (see `LIMITATIONS`).

Families live in `elementwise`, `nn`, `reduce` and `shape`, one template per family;
`template` holds the template language, specialization and the clean-ups applied to
every instance (`simplify`, and `widen`, which computes f16/bf16 in f32 and rounds once,
as the reference semantics do).
"""

from __future__ import annotations

from xdsl.ir import Operation

from mlc.dialects.graph import elementwise as _ew
from mlc.dialects.graph import indexing as _ix
from mlc.dialects.graph import shape as _sh
from mlc.dialects.graph import trees as _tr
from mlc.dialects.text import attribute_text
from mlc.texpr.library import (  # noqa: F401  (register)
    elementwise,
    indexing,
    layout,
    nn,
    quant,
    reduce,
    shape,
)
from mlc.texpr.library.registry import BUILDERS, READS_CONSTANTS
from mlc.texpr.library.template import Expression, ExpressionError, simplify, widen

#: Graph ops without an expression, and why; they get hand-written lowerings.
NOT_AFFINE: dict[type[Operation], str] = {
    _ew.ConstantOp: "data, not computation: lowered to a global buffer (memref.global)",
    _sh.GatherOp: "reads at data-dependent indices (the `indices` operand)",
    _sh.GatherElementsOp: "reads at data-dependent indices (the `indices` operand)",
    _ix.GatherNDOp: "reads at data-dependent indices (the `indices` operand)",
    _ix.ScatterElementsOp: "writes at data-dependent indices (the `indices` operand)",
    _ix.ScatterNDOp: "writes at data-dependent indices (the `indices` operand)",
    _tr.TreeEnsembleOp: "walks data-dependent paths (each row's node decides the next)",
    _tr.PerfectTreeEnsembleOp: "walks data-dependent paths (each row's node decides the next)",
}

#: Instances of covered ops that raise `ExpressionError` instead.
LIMITATIONS: dict[str, str] = {
    "graph.gemm": "integer operands with a non-integral alpha or beta",
    "graph.mean": "boolean operands",
    "graph.tile": "an empty input (no index modulo a zero size)",
    "graph.reshape": "an empty input (no index modulo a zero size)",
}


def covered_ops() -> frozenset[type[Operation]]:
    """The graph op classes `expression_for` handles."""
    return frozenset(BUILDERS)


def has_expression(op: Operation) -> bool:
    """Whether ``op``'s class has an expression."""
    return type(op) in BUILDERS


def expression_for(op: Operation) -> Expression:
    """``op``'s semantics as a specialized tensor expression.

    Raises `NotImplementedError` for ops in `NOT_AFFINE` (or unknown), `ExpressionError`
    for instances listed in `LIMITATIONS`.
    """
    try:
        builder = BUILDERS[type(op)]
    except KeyError:
        reason = NOT_AFFINE.get(type(op), "unknown op")
        raise NotImplementedError(f"{op.name} has no tensor expression: {reason}") from None
    if type(op) in READS_CONSTANTS:
        return builder(op)
    key = signature(op)
    found = _BUILT.get(key)
    if found is None:
        found = builder(op)
        if len(_BUILT) >= _BUILT_MAX:
            _BUILT.pop(next(iter(_BUILT)))
        _BUILT[key] = found
    return found


#: expressions built before, by `signature` (a ResNet-50's 53 convolutions are 16 kinds)
_BUILT: dict[str, Expression] = {}
_BUILT_MAX = 4096


def signature(op: Operation) -> str:
    """What an op's expression depends on (outside `READS_CONSTANTS`): its name,
    properties, and operand and result types."""
    props = ", ".join(f"{k}={attribute_text(v)}" for k, v in sorted(op.properties.items()))
    types = ", ".join(attribute_text(v.type) for v in (*op.operands, *op.results))
    return f"{op.name} {{{props}}} ({types})"


__all__ = [
    "LIMITATIONS",
    "NOT_AFFINE",
    "Expression",
    "ExpressionError",
    "covered_ops",
    "expression_for",
    "has_expression",
    "signature",
    "simplify",
    "widen",
]
