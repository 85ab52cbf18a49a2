"""`pad-gemm-columns`: give a gemm with a constant weight a column count that is a
multiple of the target's vector width, so its kernel runs on whole vectors.

A gemm whose N is not a multiple of the vector width gets a ragged register tile: the
last vector of every row is masked, and masked loads and stores of the accumulators
cannot be kept in registers across the reduction loop (LLVM does not promote them), which
makes a 64 x 1024 x 10 classifier layer ten times slower than the same layer with 16
columns. Zero columns appended to the constant B (and C) cost at most twice the work and
a slice of the result:

    %w = graph.constant dense<...> : tensor<1024x10xf32>
    %b = graph.constant dense<...> : tensor<10xf32>
    %y = graph.gemm %x, %w, %b {... trans_b = false} : (tensor<64x1024xf32>, tensor<1024x10xf32>, tensor<10xf32>) -> tensor<64x10xf32>
    ->  (multiple = 16)
    %w = graph.constant dense<...> : tensor<1024x16xf32>
    %b = graph.constant dense<...> : tensor<16xf32>
    %p = graph.gemm %x, %w, %b {... trans_b = false} : (tensor<64x1024xf32>, tensor<1024x16xf32>, tensor<16xf32>) -> tensor<64x16xf32>
    %y = graph.slice %p {starts = array<i64: 0, 0>, ends = array<i64: 64, 10>, steps = array<i64: 1, 1>} : (tensor<64x16xf32>) -> tensor<64x10xf32>

Conditions: B is a constant used only by this gemm; C is absent or a constant (a C that
varies along N is padded with zeros, one that is constant along N is kept); the padded
N is at most twice N (a 1- or 3-column gemm is left alone). The kept columns are
computed exactly as before: the padding only adds columns.

`mlc.compile` runs this after `graph-optimize` with the host's vector width for the
gemm's element type.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from xdsl.context import Context
from xdsl.dialects.builtin import ModuleOp, TensorType
from xdsl.ir import SSAValue
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
from mlc.transforms.graph.common import constant_array, make_constant, tensor_shape


def _padded(array: np.ndarray, axis: int, size: int) -> np.ndarray:
    widths = [(0, 0)] * array.ndim
    widths[axis] = (0, size - array.shape[axis])
    return np.pad(array, widths)


def _constant_like(array: np.ndarray, like: TensorType) -> g.ConstantOp:
    return make_constant(array, TensorType(like.element_type, array.shape))


def _padded_columns(n: int, multiple: int) -> int | None:
    """N rounded up to a multiple of `multiple`, where it is not one already and padding
    at most doubles it; else None."""
    padded = -(-n // multiple) * multiple
    return None if n % multiple == 0 or padded > 2 * n else padded


def _paddable(b: SSAValue, n: int, multiple: int) -> tuple[int, np.ndarray] | None:
    """(the padded column count, B's array) when a product's N columns get zero columns up
    to a multiple of `multiple` (`_padded_columns`) and B is a constant only this product
    uses."""
    padded = _padded_columns(n, multiple)
    if padded is None or not b.has_one_use():
        return None
    array = constant_array(b)
    return None if array is None else (padded, array)


@dataclass
class PadGemmColumns(RewritePattern):
    """gemm(a, B, C) with N % multiple != 0 -> slice(gemm(a, B', C')) where B' and C'
    have zero columns up to the next multiple of `multiple` (see the module docstring)."""

    multiple: int = 16

    @op_type_rewrite_pattern
    def match_and_rewrite(self, op: g.GemmOp, rewriter: PatternRewriter, /) -> None:
        m, n = tensor_shape(op.output)
        found = _paddable(op.b, n, self.multiple)
        if found is None:
            return
        padded, b = found
        c = constant_array(op.c) if op.c is not None else None
        if op.c is not None and c is None:
            return
        b_ty, out_ty = op.b.type, op.output.type
        assert isinstance(b_ty, TensorType) and isinstance(out_ty, TensorType)
        # B's columns are op(B)'s: rows of B when it is transposed
        new_ops: list = [_constant_like(_padded(b, 0 if op.trans_b else 1, padded), b_ty)]
        operands = [op.a, new_ops[0].result]
        if c is not None and op.c is not None:
            c_ty = op.c.type
            assert isinstance(c_ty, TensorType)
            if c.ndim >= 1 and c.shape[-1] == n:  # varies along N: zero columns too
                c = _padded(c, c.ndim - 1, padded)
            new_ops.append(_constant_like(c, c_ty))
            operands.append(new_ops[-1].result)
        gemm = g.GemmOp.create(operands, **dict(op.properties))
        # keep the first n columns of the padded product
        result = g.SliceOp.create([gemm.output], starts=[0, 0], ends=[m, n], steps=[1, 1])
        gemm.output.name_hint = f"{op.output.name_hint or 'gemm'}_padded"
        result.output.name_hint = op.output.name_hint
        rewriter.replace(op, [*new_ops, gemm, result])


@dataclass
class PadMatmulColumns(RewritePattern):
    """matmul(A, B) of operands of rank 2 or more whose N (B's last axis) is not a multiple
    of `multiple` -> slice(matmul(A, B')): B' has zero columns up to the next multiple (at
    most twice N), a padded copy of a constant B only this product uses, else a
    `graph.pad` of B, a copy of K x N elements that costs far less than the masked vector
    tail it removes (1000 x 512 by 512 x 169: 1.96 -> 1.22 ms, onnxruntime 1.16 ms; 77 x 64
    by 64 x 77: 0.036 -> 0.010 ms). The kept columns are computed exactly as before.

        %y = graph.matmul %a, %b : (tensor<8x4xf32>, tensor<4x5xf32>) -> tensor<8x5xf32>
        ->  (multiple = 8)
        %p = graph.pad %b {pads = array<i64: 0, 0, 0, 3>, mode = "constant"} : (tensor<4x5xf32>) -> tensor<4x8xf32>
        %q = graph.matmul %a, %p : (tensor<8x4xf32>, tensor<4x8xf32>) -> tensor<8x8xf32>
        %y = graph.slice %q {starts = array<i64: 0, 0>, ends = array<i64: 8, 5>, steps = array<i64: 1, 1>} : (tensor<8x8xf32>) -> tensor<8x5xf32>
    """

    multiple: int = 16

    @op_type_rewrite_pattern
    def match_and_rewrite(self, op: g.MatMulOp, rewriter: PatternRewriter, /) -> None:
        b_shape, out_shape = tensor_shape(op.rhs), tensor_shape(op.output)
        if len(tensor_shape(op.lhs)) < 2 or len(b_shape) < 2:
            return  # a 1-D operand: its axis is promoted and removed (numpy semantics)
        n = b_shape[-1]
        padded = _padded_columns(n, self.multiple)
        if padded is None:
            return
        new_ops: list = []
        array = constant_array(op.rhs) if op.rhs.has_one_use() else None
        b_ty = op.rhs.type
        assert isinstance(b_ty, TensorType)
        if array is not None:
            new_ops.append(_constant_like(_padded(array, len(b_shape) - 1, padded), b_ty))
        else:
            pads = [0] * (2 * len(b_shape))
            pads[-1] = padded - n
            new_ops.append(g.PadOp.create([op.rhs], pads=pads, mode="constant"))
        product = g.MatMulOp.create([op.lhs, new_ops[-1].results[0]])
        rank = len(out_shape)
        result = g.SliceOp.create(
            [product.output], starts=[0] * rank, ends=list(out_shape), steps=[1] * rank
        )
        product.output.name_hint = f"{op.output.name_hint or 'matmul'}_padded"
        result.output.name_hint = op.output.name_hint
        rewriter.replace(op, [*new_ops, product, result])


@dataclass
class PadMatmulIntegerColumns(RewritePattern):
    """matmul_integer(a, B, za, zb) of 2-D operands with a constant B whose N is not a
    multiple of `multiple` -> slice(matmul_integer(a, B', za, zb')): B' has zero columns up
    to the next multiple (at most twice N), a per-column zb (a constant) zero entries;
    the kept columns are the same integers (the padded ones only add columns), and the
    product gets whole 16-lane `vpdpbusd` vectors (a 10-class head: N = 16)."""

    multiple: int = 16

    @op_type_rewrite_pattern
    def match_and_rewrite(self, op: g.MatMulIntegerOp, rewriter: PatternRewriter, /) -> None:
        if len(tensor_shape(op.a)) != 2 or len(tensor_shape(op.b)) != 2:
            return
        m, n = tensor_shape(op.output)
        found = _paddable(op.b, n, self.multiple)
        if found is None:
            return
        padded, b = found
        b_ty, zb_ty = op.b.type, op.b_zero_point.type
        assert isinstance(b_ty, TensorType) and isinstance(zb_ty, TensorType)
        new_ops: list = [_constant_like(_padded(b, 1, padded), b_ty)]
        zb = op.b_zero_point
        if tensor_shape(zb) == (n,) and n > 1:  # per column: zero points for the new ones
            zb_array = constant_array(zb)
            if zb_array is None:
                return
            new_ops.append(_constant_like(_padded(zb_array, 0, padded), zb_ty))
            zb = new_ops[-1].result
        product = g.MatMulIntegerOp.create([op.a, new_ops[0].result, op.a_zero_point, zb])
        result = g.SliceOp.create([product.output], starts=[0, 0], ends=[m, n], steps=[1, 1])
        product.output.name_hint = f"{op.output.name_hint or 'matmul_integer'}_padded"
        result.output.name_hint = op.output.name_hint
        rewriter.replace(op, [*new_ops, product, result])


@dataclass(frozen=True)
class PadGemmColumnsPass(ModulePass):
    """`pad-gemm-columns{multiple=16}`: `PadGemmColumns`, `PadMatmulColumns` and
    `PadMatmulIntegerColumns` everywhere, dead weights removed."""

    name = "pad-gemm-columns"
    multiple: int = 16

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        if self.multiple < 1:
            raise ValueError(f"pad-gemm-columns: multiple must be positive, got {self.multiple}")
        patterns = GreedyRewritePatternApplier(
            [
                PadGemmColumns(self.multiple),
                PadMatmulColumns(self.multiple),
                PadMatmulIntegerColumns(self.multiple),
            ]
        )
        walker = PatternRewriteWalker(patterns, post_walk_func=region_dce)
        walker.rewrite_module(op)
