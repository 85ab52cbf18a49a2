"""`pointwise-conv-to-matmul`: a 1x1 convolution (stride 1, no padding) left in
NCHW is a (batched) matrix product over the flattened image.

In NCHW a conv's kernel vectorizes along the image width, which is rarely a whole number
of vectors (28, 13, 7 columns), and a grouped conv reads its input through a division
(`x[n, m / MG * CG + c, ...]`), so no register tile reuses a loaded vector. As a product
over the `H * W` pixels, the vector axis is long and contiguous and each group's weight
is a matrix (a ShuffleNet's 1x1 group-4 conv, 272 -> 68 channels on 28 x 28: 1.4 ms as a
conv, 0.11 ms as this product, 1 thread):

    %y = graph.conv %x, %w, %b {..., group = 4 : i64} : (tensor<1x272x28x28xf32>, tensor<68x68x1x1xf32>, tensor<68xf32>) -> tensor<1x68x28x28xf32>
    ->
    %xg = graph.reshape %x : (tensor<1x272x28x28xf32>) -> tensor<1x4x68x784xf32>
    %wg = graph.reshape %w : (tensor<68x68x1x1xf32>) -> tensor<4x17x68xf32>
    %p = graph.matmul %wg, %xg : (tensor<4x17x68xf32>, tensor<1x4x68x784xf32>) -> tensor<1x4x17x784xf32>
    %bg = graph.reshape %b : (tensor<68xf32>) -> tensor<4x17x1xf32>
    %q = graph.add %p, %bg : (tensor<1x4x17x784xf32>, tensor<4x17x1xf32>) -> tensor<1x4x17x784xf32>
    %y = graph.reshape %q : (tensor<1x4x17x784xf32>) -> tensor<1x68x28x28xf32>

(a group-1 conv has no group axis: `[M, C] @ [N, C, H * W]`). `mlc.compile` runs it after
`graph-blocked-layout`, so it rewrites only the 1x1 convs that stay in NCHW.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from xdsl.context import Context
from xdsl.dialects.builtin import ModuleOp
from xdsl.ir import Operation
from xdsl.passes import ModulePass
from xdsl.pattern_rewriter import (
    PatternRewriter,
    PatternRewriteWalker,
    RewritePattern,
    op_type_rewrite_pattern,
)

from mlc.dialects import graph as g
from mlc.transforms.graph.common import tensor_shape

__all__ = ["PointwiseConvToMatmul", "PointwiseConvToMatmulPass", "is_pointwise"]


def is_pointwise(op: g.ConvOp) -> bool:
    """A 2-D or higher conv with a 1x..x1 kernel, unit strides and no padding."""
    kernel = tensor_shape(op.weight)[2:]
    return (
        len(kernel) >= 1
        and all(k == 1 for k in kernel)
        and all(s == 1 for s in op.strides)
        and not any(op.pads)
        and math.prod(tensor_shape(op.input)) > 0
    )


class PointwiseConvToMatmul(RewritePattern):
    """conv(x, w, b) with a 1x1 kernel -> reshape(matmul(w', x') + b') (module docstring)."""

    @op_type_rewrite_pattern
    def match_and_rewrite(self, op: g.ConvOp, rewriter: PatternRewriter, /) -> None:
        if not is_pointwise(op):
            return
        n, c, *spatial = tensor_shape(op.input)
        m = tensor_shape(op.weight)[0]
        groups = op.group
        pixels = math.prod(spatial)
        lead = [groups] if groups > 1 else []
        new: list[Operation] = [
            x := g.ReshapeOp.to(op.input, [n, *lead, c // groups, pixels]),
            w := g.ReshapeOp.to(op.weight, [*lead, m // groups, c // groups]),
            product := g.MatMulOp.create([w.output, x.output]),
        ]
        result = product.output
        if op.bias is not None:
            new.append(b := g.ReshapeOp.to(op.bias, [*lead, m // groups, 1]))
            new.append(biased := g.AddOp.create([result, b.output]))
            result = biased.output
        new.append(y := g.ReshapeOp.to(result, [n, m, *spatial]))
        y.output.name_hint = op.output.name_hint
        rewriter.replace(op, new, [y.output])


@dataclass(frozen=True)
class PointwiseConvToMatmulPass(ModulePass):
    """`pointwise-conv-to-matmul`: `PointwiseConvToMatmul` everywhere."""

    name = "pointwise-conv-to-matmul"

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        PatternRewriteWalker(PointwiseConvToMatmul()).rewrite_module(op)
