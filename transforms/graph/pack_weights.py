"""`pack-matmul-weights`: a matrix product by a constant weight reads it in panels packed
at compile time, as onnxruntime's MLAS packs B when a session is created.

The register tile of a matrix product (`CpuDefaultSchedule`) multiplies MR rows of A by
a panel of `panel` columns of B, one k at a time: row-major B puts the panel's rows a
whole row of B apart (4 KiB for N = 1024), so each k touches another cache line and,
at power-of-two widths, the same cache sets. Packed panel-major, `Bp[j, k, p] =
B[k, j * panel + p]`, a panel is one contiguous run that streams through L1; the product
is an einsum over the packed weight whose [.., M, N / panel, panel] result is the
row-major [.., M, N] result, reshaped:

    %w = graph.constant dense<...> : tensor<784x1024xf32>
    %y = graph.matmul %x, %w : (tensor<64x784xf32>, tensor<784x1024xf32>) -> tensor<64x1024xf32>
    ->  (panel = 16)
    %wp = graph.constant dense<...> : tensor<64x784x16xf32>
    %e = graph.einsum %x, %wp {equation = "mk,jkp->mjp"} : (...) -> tensor<64x64x16xf32>
    %y = graph.reshape %e : (tensor<64x64x16xf32>) -> tensor<64x1024xf32>

A `graph.gemm` (alpha 1, A not transposed; B either way, the packed panels are op(B)'s
columns) becomes the same, its C added after (`graph.add`, the same broadcast).
Measured on Zen 3, 1 thread: 64 x 784 x 1024 0.86 -> 0.74 ms, 128 x 768 x 3072 5.1 ->
4.6 ms, a batch-1 row unchanged; 512 rows by 3072 columns 28 % slower and a 1024^3
product 8 % slower (A no longer stays in L2 across a panel's row tiles, where per-call
packing of blocks of B does better), so products of more than `max_rows` rows are left
alone.

Conditions: B is a floating-point constant used only by this product, N a multiple of
`panel` and at least two panels, A at least 2-D with 2 to `max_rows` rows (the product
of its leading dimensions; a single row is a matrix-vector product, which `tl-rfactor`
splits across B's rows for threads instead), and only elementwise ops use the product
(`_elementwise_uses`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from xdsl.context import Context
from xdsl.dialects import func
from xdsl.dialects.builtin import Float32Type, Float64Type, ModuleOp, TensorType
from xdsl.ir import Operation, SSAValue
from xdsl.passes import ModulePass
from xdsl.pattern_rewriter import (
    PatternRewriter,
    PatternRewriteWalker,
    RewritePattern,
    op_type_rewrite_pattern,
)
from xdsl.transforms.dead_code_elimination import region_dce

from mlc.dialects import graph as g
from mlc.dialects.graph import elementwise as ew
from mlc.transforms.graph.common import constant_array, make_constant, tensor_shape

__all__ = ["PackMatmulWeights", "PackMatmulWeightsPass", "packed_panels"]

#: batch letters of an einsum over A's leading axes (not m, k, j or p)
_BATCH_LETTERS = "abcdefghi"


def packed_panels(b: np.ndarray, panel: int) -> np.ndarray:
    """`B[K, N]` as panel-major `Bp[N / panel, K, panel]`: `Bp[j, k, p] = B[k, j * panel + p]`."""
    k, n = b.shape
    return np.ascontiguousarray(b.reshape(k, n // panel, panel).transpose(1, 0, 2))


def _elementwise_uses(value: SSAValue) -> bool:
    """Every user of `value` is elementwise (or returns it): the packed product's reshape
    then fuses into them. A reshape / transpose into attention heads is left unpacked: the
    head split read through the panel reshape made BERT's score product 8x slower."""
    elementwise = (ew.UnaryOp, ew.BinaryOp, ew.VariadicOp, ew.WhereOp, ew.CastOp, func.ReturnOp)
    return all(isinstance(use.operation, elementwise) for use in value.uses)


def _packed_product(a: SSAValue, b: np.ndarray, b_type: TensorType, panel: int) -> list[Operation]:
    """The ops computing `a @ b` through the packed weight; the last one's result is it."""
    rank = len(tensor_shape(a))
    batch = _BATCH_LETTERS[: rank - 2]
    packed = packed_panels(b, panel)
    weight = make_constant(packed, TensorType(b_type.element_type, packed.shape))
    einsum = g.EinsumOp.create([a, weight.result], equation=f"{batch}mk,jkp->{batch}mjp")
    shape = [*tensor_shape(a)[:-1], b.shape[1]]
    return [weight, einsum, g.ReshapeOp.to(einsum.output, shape)]


@dataclass
class PackMatmulWeights(RewritePattern):
    """matmul(a, B) / gemm(a, B, C) with a constant B -> reshape(einsum(a, packed B))
    (+ C) (see the module docstring)."""

    panel: int = 16
    max_rows: int = 256

    def _weight(self, a: SSAValue, b: SSAValue, transposed: bool) -> np.ndarray | None:
        """op(B) as a [K, N] array where the product qualifies, else None."""
        a_shape, b_type = tensor_shape(a), b.type
        if len(a_shape) < 2 or len(a_shape) > len(_BATCH_LETTERS) + 2:
            return None
        rows = math.prod(a_shape[:-1])
        if rows < 2 or rows > self.max_rows or not b.has_one_use():
            return None  # one row: a matrix-vector product, which tl-rfactor splits
        assert isinstance(b_type, TensorType)
        if not isinstance(b_type.element_type, Float32Type | Float64Type):
            return None
        array = constant_array(b)
        if array is None or array.ndim != 2:
            return None
        weight = array.T if transposed else array
        n = weight.shape[1]
        if n % self.panel or n < 2 * self.panel:
            return None
        return weight

    @op_type_rewrite_pattern
    def match_and_rewrite(self, op: g.MatMulOp | g.GemmOp, rewriter: PatternRewriter, /) -> None:
        if isinstance(op, g.MatMulOp):
            a, b, transposed, c = op.lhs, op.rhs, False, None
        else:
            if op.trans_a or op.alpha != 1.0 or (op.c is not None and op.beta != 1.0):
                return
            a, b, transposed, c = op.a, op.b, bool(op.trans_b), op.c
        if not _elementwise_uses(op.output):  # (before the weight's bytes are decoded)
            return
        weight = self._weight(a, b, transposed)
        if weight is None:
            return
        b_type = b.type
        assert isinstance(b_type, TensorType)
        ops = _packed_product(a, weight, b_type, self.panel)
        if c is not None:
            ops.append(g.AddOp.create([ops[-1].results[0], c]))
        ops[-1].results[0].name_hint = op.output.name_hint
        rewriter.replace(op, ops)


@dataclass(frozen=True)
class PackMatmulWeightsPass(ModulePass):
    """`pack-matmul-weights{panel=16 max-rows=256}`: `PackMatmulWeights` everywhere, the
    unpacked weights removed."""

    name = "pack-matmul-weights"
    panel: int = 16
    max_rows: int = 256

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        if self.panel < 1 or self.max_rows < 1:
            raise ValueError(
                f"pack-matmul-weights: panel and max-rows must be positive, got {self.panel}, "
                f"{self.max_rows}"
            )
        pattern = PackMatmulWeights(self.panel, self.max_rows)
        PatternRewriteWalker(pattern, post_walk_func=region_dce).rewrite_module(op)
