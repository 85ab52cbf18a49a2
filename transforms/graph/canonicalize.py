"""`graph-canonicalize`: algebraic identities on graph ops, each exact under the reference
semantics (bit for bit, -0.0 and NaN included).

    %one = graph.constant dense<1.0> : tensor<4xf32>
    %y = graph.mul %x, %one : (tensor<4xf32>, tensor<4xf32>) -> tensor<4xf32>
    %t = graph.transpose %y {perm = array<i64: 0>} : (tensor<4xf32>) -> tensor<4xf32>
    func.return %t : tensor<4xf32>
    ->
    func.return %x : tensor<4xf32>

Patterns (one identity per line comment in each):

- `RemoveNeutralOperand`: x * 1, 1 * x, x / 1, integer x + 0 / 0 + x / x - 0, float
  x + (-0.0) / (-0.0) + x / x - (+0.0) -> x, when the constant is a splat and broadcasting
  leaves x's type unchanged. Float x + (+0.0) is *not* x (-0.0 + 0.0 = +0.0), so it stays.
- `RemoveNoOp`: identity, dropout (inference), cast to the same type, reshape to the same
  shape, transpose by the identity permutation -> x.
- `ComposeTransposes`: transpose(transpose(x, p), q) -> transpose(x, p[q]) (or x).
- `ComposeReshapes`: reshape(reshape(x)) -> reshape(x) (or x).
- `PretransposeGemmWeight`: gemm(a, B^T) with a constant B of one use -> gemm(a, B') with
  B' = the transposed constant and trans_b = false, so kernels read B contiguously along N.
- `FoldPadIntoConv`: conv(pad(x)) with zero padding of the spatial dims only -> conv(x)
  with the pad amounts added to the conv's pads (the kernel reads x with a guard).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from xdsl.context import Context
from xdsl.dialects.builtin import ModuleOp, TensorType
from xdsl.ir import Operation, SSAValue
from xdsl.passes import ModulePass
from xdsl.pattern_rewriter import (
    GreedyRewritePatternApplier,
    PatternRewriter,
    PatternRewriteWalker,
    RewritePattern,
    op_type_rewrite_pattern,
)
from xdsl.transforms.dead_code_elimination import region_dce

from mlc.dialects import graph as g
from mlc.dialects.graph.types import is_float, is_integer
from mlc.transforms.graph.common import constant_array, is_splat_of, make_constant


def _element_type(value: SSAValue) -> object:
    ty = value.type
    assert isinstance(ty, TensorType)
    return ty.element_type


def _splat(value: SSAValue, scalar: float, *, negative_zero: bool = False) -> bool:
    """`value` is a constant whose every element is exactly `scalar` (see `is_splat_of`)."""
    array = constant_array(value)
    return array is not None and is_splat_of(array, scalar, negative_zero=negative_zero)


class RemoveNeutralOperand(RewritePattern):
    """Binary ops with a neutral constant operand -> the other operand (see module doc)."""

    def match_and_rewrite(self, op: Operation, rewriter: PatternRewriter, /) -> None:
        if not isinstance(op, g.AddOp | g.SubOp | g.MulOp | g.DivOp):
            return
        lhs, rhs = op.operands
        et = _element_type(op.output)
        integer, floating = is_integer(et), is_float(et)
        if not (integer or floating):
            return
        keep: SSAValue | None = None
        if isinstance(op, g.MulOp):
            if _splat(rhs, 1):  # x * 1 -> x
                keep = lhs
            elif _splat(lhs, 1):  # 1 * x -> x
                keep = rhs
        elif isinstance(op, g.DivOp):
            if _splat(rhs, 1):  # x / 1 -> x
                keep = lhs
        elif isinstance(op, g.AddOp):
            # floats: x + (-0.0) -> x is exact, x + 0.0 is not (-0.0 + 0.0 = +0.0)
            if _splat(rhs, 0, negative_zero=floating):  # x + 0 -> x (int), x + -0.0 -> x
                keep = lhs
            elif _splat(lhs, 0, negative_zero=floating):  # 0 + x -> x (int), -0.0 + x -> x
                keep = rhs
        elif _splat(rhs, 0):  # x - 0 -> x (floats: +0.0 only; x - (-0.0) = x + 0.0)
            keep = lhs
        if keep is None or keep.type != op.output.type:
            return  # the constant broadcasts x to a larger shape
        rewriter.replace(op, [], [keep])


class RemoveNoOp(RewritePattern):
    """Ops that return their operand unchanged -> the operand."""

    def match_and_rewrite(self, op: Operation, rewriter: PatternRewriter, /) -> None:
        if isinstance(op, g.IdentityOp | g.DropoutOp):
            # identity(x) -> x;  dropout(x) -> x (inference)
            rewriter.replace(op, [], [op.input])
        elif isinstance(op, g.CastOp | g.ReshapeOp) and op.input.type == op.output.type:
            # cast(x : T) : T -> x;  reshape(x : T) : T -> x
            rewriter.replace(op, [], [op.input])
        elif isinstance(op, g.TransposeOp) and op.perm == tuple(range(len(op.perm))):
            # transpose(x, [0, 1, ..., n-1]) -> x
            rewriter.replace(op, [], [op.input])


class ComposeTransposes(RewritePattern):
    """transpose(transpose(x, p), q) -> transpose(x, [p[i] for i in q]), or x."""

    @op_type_rewrite_pattern
    def match_and_rewrite(self, op: g.TransposeOp, rewriter: PatternRewriter, /) -> None:
        inner = op.input.owner
        if not isinstance(inner, g.TransposeOp):
            return
        # transpose(transpose(x, p), q) -> transpose(x, p[q])
        p, q = inner.perm, op.perm
        perm = [p[i] for i in q]
        if perm == list(range(len(perm))):
            rewriter.replace(op, [], [inner.input])  # ... -> x when p[q] is the identity
            return
        new = g.TransposeOp.create([inner.input], perm=perm)
        new.output.name_hint = op.output.name_hint
        rewriter.replace(op, new)


class ComposeReshapes(RewritePattern):
    """reshape(reshape(x)) -> reshape(x), or x when the shapes agree."""

    @op_type_rewrite_pattern
    def match_and_rewrite(self, op: g.ReshapeOp, rewriter: PatternRewriter, /) -> None:
        inner = op.input.owner
        if not isinstance(inner, g.ReshapeOp):
            return
        x = inner.input
        if x.type == op.output.type:
            rewriter.replace(op, [], [x])  # reshape(reshape(x : T)) : T -> x
            return
        # reshape(reshape(x)) -> reshape(x)
        new = g.ReshapeOp.create([x], result_types=[op.output.type])
        new.output.name_hint = op.output.name_hint
        rewriter.replace(op, new)


class PretransposeGemmWeight(RewritePattern):
    """gemm(a, B, trans_b) with a constant B -> gemm(a, B^T as a constant, not trans_b)."""

    @op_type_rewrite_pattern
    def match_and_rewrite(self, op: g.GemmOp, rewriter: PatternRewriter, /) -> None:
        if not op.trans_b or not op.b.has_one_use():
            return
        b = constant_array(op.b)
        if b is None:
            return
        # gemm(a, B, trans_b = 1) -> gemm(a, const(B^T), trans_b = 0)
        bt = make_constant(np.ascontiguousarray(b.T), TensorType(_element_type(op.b), b.T.shape))
        props = dict(op.properties)
        props["trans_b"] = False
        operands = [op.a, bt.result] + ([op.c] if op.c is not None else [])
        new = g.GemmOp.create(operands, **props)
        new.output.name_hint = op.output.name_hint
        rewriter.replace(op, [bt, new])


class FoldPadIntoConv(RewritePattern):
    """conv(pad(x, zeros around the spatial dims), w) -> conv(x, w) with larger pads."""

    @op_type_rewrite_pattern
    def match_and_rewrite(self, op: g.ConvOp, rewriter: PatternRewriter, /) -> None:
        pad = op.operands[0].owner
        if not isinstance(pad, g.PadOp) or not op.operands[0].has_one_use():
            return
        if pad.mode != "constant" or pad.pad_value() != 0:
            return
        rank = len(_shape_of(pad.input))
        amounts = list(pad.pads)
        begin, end = amounts[:rank], amounts[rank:]
        if any(begin[:2]) or any(end[:2]) or min(amounts) < 0:
            return  # only zero padding of the spatial dims (no crop) folds
        # conv(pad(x)) -> conv(x) with the pad amounts added to the conv's own
        conv_pads = op.pads
        k = rank - 2
        new_pads = [conv_pads[i] + begin[2 + i] for i in range(k)]
        new_pads += [conv_pads[k + i] + end[2 + i] for i in range(k)]
        props = dict(op.properties)
        props["pads"] = new_pads
        new = g.ConvOp.create([pad.input, *op.operands[1:]], **props)
        new.output.name_hint = op.output.name_hint
        rewriter.replace(op, new)
        rewriter.erase_op(pad)


def _shape_of(value: SSAValue) -> tuple[int, ...]:
    ty = value.type
    assert isinstance(ty, TensorType)
    return tuple(ty.get_shape())


CANONICALIZATION_PATTERNS: tuple[type[RewritePattern], ...] = (
    RemoveNeutralOperand,
    RemoveNoOp,
    ComposeTransposes,
    ComposeReshapes,
    PretransposeGemmWeight,
    FoldPadIntoConv,
)
"""The patterns `graph-canonicalize` applies."""


@dataclass(frozen=True)
class GraphCanonicalizePass(ModulePass):
    """`graph-canonicalize`: apply `CANONICALIZATION_PATTERNS` greedily to a fixpoint,
    removing dead ops between rounds. See the module docstring for the identities."""

    name = "graph-canonicalize"

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        pattern = GreedyRewritePatternApplier([p() for p in CANONICALIZATION_PATTERNS])
        PatternRewriteWalker(pattern, post_walk_func=region_dce).rewrite_module(op)
