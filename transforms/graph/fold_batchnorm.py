"""`fold-batchnorm`: fold inference batch normalization, and multiplications / additions by
per-channel constants, into the weights and bias of the conv or gemm that feeds them.

    %y = graph.conv %x, %w {...} : (tensor<1x3x8x8xf32>, tensor<4x3x3x3xf32>) -> tensor<1x4x8x8xf32>
    %z = graph.batch_norm %y, %gamma, %beta, %mean, %var {epsilon = 1.0e-05 : f32} : ...
    ->
    %z = graph.conv %x, %w2, %b2 {...} : (tensor<1x3x8x8xf32>, tensor<4x3x3x3xf32>, tensor<4xf32>) -> tensor<1x4x8x8xf32>

with, per output channel, s = gamma / sqrt(var + epsilon), W' = W * s and
b' = (b - mean) * s + beta (b = 0 without a bias), computed in float64 and rounded once to
the weights' type. The same affine map y * s + t folds from `graph.mul` (s), `graph.add`
(t) and `graph.sub` (t = -c) by a constant c that varies along the channel axis only
(axis 1 of the conv's N x M x ... or the gemm's M x N result; shape broadcastable to it
without changing it). A gemm folds s into the columns of op(B) and t into C:
alpha * op(A) @ (op(B) * s) + (beta * C * s + t), with beta = 1.

Conditions: the conv / gemm result has no other user; its weight (and bias / C, when
present) and the folded parameters are constants; floating-point element types; the
folded parameters are finite. The result differs from the unfolded program only by
rounding (the products are reassociated).
"""

from __future__ import annotations

from collections.abc import Sequence
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
from mlc.dialects.graph.types import is_float
from mlc.transforms.graph.common import constant_array, make_constant, tensor_shape


def _foldable_producer(value: SSAValue) -> g.ConvOp | g.GemmOp | None:
    """The conv / gemm defining `value`, if `value` is its only use and it is float."""
    owner = value.owner
    if not isinstance(owner, g.ConvOp | g.GemmOp) or not value.has_one_use():
        return None
    ty = owner.output.type
    assert isinstance(ty, TensorType)
    return owner if is_float(ty.element_type) else None


def channel_vector(c: np.ndarray, out_shape: Sequence[int]) -> np.ndarray | None:
    """`c` as a float64 vector over axis 1 of `out_shape`, if it is constant along every
    other axis and broadcasting it to `out_shape` keeps that shape; else None."""
    rank = len(out_shape)
    if c.ndim > rank or rank < 2:
        return None
    padded = (1,) * (rank - c.ndim) + c.shape
    if any(d != 1 for i, d in enumerate(padded) if i != 1):
        return None
    if padded[1] not in (1, out_shape[1]):
        return None
    return np.broadcast_to(c.astype(np.float64).reshape(-1), (out_shape[1],)).copy()


def fold_channel_affine(
    producer: g.ConvOp | g.GemmOp, s: np.ndarray | None, t: np.ndarray | None
) -> list[Operation] | None:
    """New ops (constants, then the producer's replacement, last) computing
    `producer(...) * s + t` per output channel, or None when it does not fold."""
    if isinstance(producer, g.ConvOp):
        return _fold_into_conv(producer, s, t)
    return _fold_into_gemm(producer, s, t)


def _named(op: Operation, hint: str | None) -> SSAValue:
    op.results[0].name_hint = hint
    return op.results[0]


def _suffixed(hint: str | None, suffix: str) -> str | None:
    return None if hint is None else f"{hint}_{suffix}"


def _finite(*arrays: np.ndarray | None) -> bool:
    return all(a is None or bool(np.all(np.isfinite(a))) for a in arrays)


def _fold_into_conv(
    conv: g.ConvOp, s: np.ndarray | None, t: np.ndarray | None
) -> list[Operation] | None:
    w = constant_array(conv.weight)
    b = constant_array(conv.bias) if conv.bias is not None else None
    if w is None or (conv.bias is not None and b is None):
        return None
    m = w.shape[0]
    new_w = None if s is None else w.astype(np.float64) * s.reshape(m, *[1] * (w.ndim - 1))
    new_b = None if b is None else b.astype(np.float64)
    if s is not None and new_b is not None:
        new_b = new_b * s
    if t is not None:
        new_b = t if new_b is None else new_b + t
    if not _finite(new_w, new_b):
        return None
    ops: list[Operation] = []
    weight = conv.weight
    if new_w is not None:
        ops.append(make_constant(new_w, conv.weight.type))
        weight = _named(ops[-1], conv.weight.name_hint)
    operands = [conv.input, weight]
    if new_b is not None:
        et = conv.weight.type.element_type  # type: ignore[attr-defined]
        ops.append(make_constant(new_b, TensorType(et, [m])))
        hint = conv.bias.name_hint if conv.bias is not None else None
        operands.append(_named(ops[-1], hint or _suffixed(conv.weight.name_hint, "bias")))
    ops.append(g.ConvOp.create(operands, **dict(conv.properties)))
    return ops


def _fold_into_gemm(
    gemm: g.GemmOp, s: np.ndarray | None, t: np.ndarray | None
) -> list[Operation] | None:
    props = dict(gemm.properties)
    trans_b, beta = gemm.trans_b, gemm.beta
    b = constant_array(gemm.b)
    c = constant_array(gemm.c) if gemm.c is not None and beta != 0.0 else None
    if b is None or (gemm.c is not None and beta != 0.0 and c is None):
        return None
    new_b = None
    if s is not None:
        new_b = b.astype(np.float64) * (s[:, None] if trans_b else s[None, :])
    new_c = None if c is None else beta * c.astype(np.float64)
    if s is not None and new_c is not None:
        new_c = new_c * s
    if t is not None:
        new_c = t if new_c is None else new_c + t
    if not _finite(new_b, new_c):
        return None
    ops: list[Operation] = []
    et = gemm.b.type.element_type  # type: ignore[attr-defined]
    operand_b = gemm.b
    if new_b is not None:
        ops.append(make_constant(new_b, gemm.b.type))
        operand_b = _named(ops[-1], gemm.b.name_hint)
    operands = [gemm.a, operand_b]
    if new_c is not None:
        ops.append(make_constant(new_c, TensorType(et, new_c.shape)))
        hint = gemm.c.name_hint if gemm.c is not None else None
        operands.append(_named(ops[-1], hint or _suffixed(gemm.b.name_hint, "bias")))
        props["beta"] = 1.0
    ops.append(g.GemmOp.create(operands, **props))
    return ops


def _replace(
    op: Operation, producer: Operation, new_ops: list[Operation], rewriter: PatternRewriter
) -> None:
    new_ops[-1].results[0].name_hint = op.results[0].name_hint or producer.results[0].name_hint
    rewriter.replace(op, new_ops, [new_ops[-1].results[0]])
    rewriter.erase(producer)


class FoldBatchNorm(RewritePattern):
    """batch_norm(conv/gemm(x, W, b)) -> conv/gemm(x, W * s, (b - mean) * s + beta)."""

    @op_type_rewrite_pattern
    def match_and_rewrite(self, op: g.BatchNormOp, rewriter: PatternRewriter, /) -> None:
        producer = _foldable_producer(op.input)
        if producer is None:
            return
        params = [constant_array(v) for v in (op.scale, op.bias, op.mean, op.var)]
        if any(p is None for p in params):
            return
        gamma, beta, mean, var = (np.asarray(p, dtype=np.float64) for p in params)
        eps = op.epsilon
        with np.errstate(all="ignore"):
            # bn(y) = y * s + t,  s = gamma / sqrt(var + eps),  t = beta - mean * s
            s = gamma / np.sqrt(var + eps)
            t = beta - mean * s
        if not _finite(s, t):
            return
        new_ops = fold_channel_affine(producer, s, t)
        if new_ops is not None:
            _replace(op, producer, new_ops, rewriter)


class FoldChannelAffine(RewritePattern):
    """conv/gemm(...) * c, c * conv/gemm(...), conv/gemm(...) + c, c + conv/gemm(...),
    conv/gemm(...) - c -> conv/gemm with c folded into the weights / bias."""

    def match_and_rewrite(self, op: Operation, rewriter: PatternRewriter, /) -> None:
        if not isinstance(op, g.MulOp | g.AddOp | g.SubOp):
            return
        lhs, rhs = op.operands
        candidates = [(lhs, rhs)] if isinstance(op, g.SubOp) else [(lhs, rhs), (rhs, lhs)]
        for y, c_value in candidates:
            producer = _foldable_producer(y)
            c = constant_array(c_value)
            if producer is None or c is None or op.results[0].type != y.type:
                continue
            vec = channel_vector(c, tensor_shape(y))
            if vec is None:
                continue
            if isinstance(op, g.MulOp):
                s, t = vec, None  # conv(x, W, b) * c -> conv(x, W * c, b * c)
            elif isinstance(op, g.AddOp):
                s, t = None, vec  # conv(x, W, b) + c -> conv(x, W, b + c)
            else:
                s, t = None, -vec  # conv(x, W, b) - c -> conv(x, W, b - c)
            new_ops = fold_channel_affine(producer, s, t)
            if new_ops is not None:
                _replace(op, producer, new_ops, rewriter)
                return


BATCHNORM_PATTERNS: tuple[type[RewritePattern], ...] = (FoldBatchNorm, FoldChannelAffine)
"""The patterns `fold-batchnorm` applies."""


@dataclass(frozen=True)
class FoldBatchNormPass(ModulePass):
    """`fold-batchnorm`: apply `FoldBatchNorm` and `FoldChannelAffine` to a fixpoint and
    remove the dead weights. See the module docstring."""

    name = "fold-batchnorm"

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        pattern = GreedyRewritePatternApplier([p() for p in BATCHNORM_PATTERNS])
        PatternRewriteWalker(pattern, post_walk_func=region_dce).rewrite_module(op)
