"""Graph ops: blocked (NCHW[x]c) layouts.

A blocked tensor splits the channel axis of an `N x C x D1..Dn` tensor into `C / c`
blocks of `c` channels and moves the block's channels innermost:
`N x C/c x D1..Dn x c`, element `[n, cb, d..., ci]` = channel `cb * c + ci`. A CPU
kernel whose innermost axis is `c` (a multiple of the vector width) loads and stores
whole vectors of channels.

- `graph.to_blocked {block = c}`: NCHW -> NCHW[c]c. `C` must be a multiple of `c` (no
  padding: layout passes choose blocks that divide the channel counts, so padded lanes,
  which an elementwise op could turn into inf or NaN, never exist).
- `graph.from_blocked`: the inverse; the block is the operand's last dimension.
- `graph.conv_blocked`: a group-1 convolution on a blocked input with a pre-blocked
  weight `M/oc x C/ic x K1..Kn x ic x oc` (OIHW -> OIHW[ic]i[oc]o) and an optional bias
  (M), producing a blocked output `N x M/oc x O1..On x oc`.
- `graph.group_conv_blocked`: a grouped convolution on a blocked input with an explicit
  group axis, `N x G x C/G/ic x D1..Dn x ic` (a reshape of the blocked input), weight
  `G x M/G/oc x C/G/ic x K1..Kn x ic x oc`, output `N x G x M/G/oc x O1..On x oc`: an
  output channel block reads only its group's input blocks, which do not depend on it.
- `graph.depthwise_conv_blocked`: a depthwise convolution (group = channels, one output
  channel per input channel) on a blocked input, weight `C/c x K1..Kn x c`: each lane
  of a vector is one channel, so the channels are the vector.

Elementwise ops, pools (with a unit window along the block axis) and reductions over the
spatial axes act on blocked tensors unchanged; `transforms/graph/layout.py` moves
`from_blocked` past them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar, Self

from xdsl.dialects.builtin import TensorType
from xdsl.irdl import irdl_op_definition, operand_def, opt_operand_def, result_def

from mlc.dialects.graph.base import GraphError, GraphOp, IntProp, IntsProp
from mlc.dialects.graph.constraints import (
    Constraints,
    Float,
    MinRank,
    Positive,
    SameElementType,
    Window,
)
from mlc.dialects.graph.nn import check_bias, window_output_sizes
from mlc.dialects.graph.types import tensor


@irdl_op_definition
class ToBlockedOp(GraphOp):
    """N x C x D1..Dn -> N x C/c x D1..Dn x c with `c = block`, which must divide C:
    `y[n, cb, d..., ci] = x[n, cb * c + ci, d...]`.

    %y = graph.to_blocked %x {block = 8 : i64} : (tensor<1x16x5x5xf32>) -> tensor<1x2x5x5x8xf32>
    """

    name = "graph.to_blocked"
    input = operand_def(TensorType)
    output = result_def(TensorType)
    block = IntProp()
    CONSTRAINTS: ClassVar[Constraints] = (MinRank("input", 3), Positive("block"))

    @classmethod
    def infer_result_types(
        cls, operand_types: Sequence[TensorType], props: Self
    ) -> list[TensorType]:
        (ty,) = operand_types
        shape, c = tuple(ty.get_shape()), props.block
        if shape[1] % c:
            raise GraphError(f"{cls.name} block {c} does not divide {shape[1]} channels")
        return [tensor((shape[0], shape[1] // c, *shape[2:], c), ty.element_type)]


@irdl_op_definition
class FromBlockedOp(GraphOp):
    """N x C/c x D1..Dn x c -> N x C x D1..Dn, the inverse of `graph.to_blocked`:
    `y[n, cb * c + ci, d...] = x[n, cb, d..., ci]`.

    %y = graph.from_blocked %x : (tensor<1x2x5x5x8xf32>) -> tensor<1x16x5x5xf32>
    """

    name = "graph.from_blocked"
    input = operand_def(TensorType)
    output = result_def(TensorType)
    CONSTRAINTS: ClassVar[Constraints] = (MinRank("input", 4),)

    @classmethod
    def infer_result_types(
        cls, operand_types: Sequence[TensorType], props: Self
    ) -> list[TensorType]:
        (ty,) = operand_types
        n, blocks, *spatial, c = tuple(ty.get_shape())
        return [tensor((n, blocks * c, *spatial), ty.element_type)]


class _BlockedConvBase(GraphOp):
    """Operands, properties and shared checks of the blocked convolutions. The input has
    `INPUT_DIMS` non-spatial dims and at least one spatial one, the weight `WEIGHT_DIMS`
    non-spatial dims and as many spatial ones."""

    input = operand_def(TensorType)
    weight = operand_def(TensorType)
    bias = opt_operand_def(TensorType)
    output = result_def(TensorType)
    strides = IntsProp()
    pads = IntsProp()
    dilations = IntsProp()

    INPUT_DIMS: ClassVar[int]
    WEIGHT_DIMS: ClassVar[int]

    @classmethod
    def _shapes(
        cls, operand_types: Sequence[TensorType]
    ) -> tuple[tuple[int, ...], tuple[int, ...]]:
        """(input, weight) shapes, after checking the weight's rank."""
        x, w = (tuple(t.get_shape()) for t in operand_types[:2])
        rank = len(x) - cls.INPUT_DIMS + cls.WEIGHT_DIMS
        if len(w) != rank:
            raise GraphError(f"{cls.name} weight must have rank {rank}, got shape {w}")
        return x, w

    @classmethod
    def _output_sizes(cls, props: Self, spatial: Sequence[int], kernel: Sequence[int]) -> list[int]:
        return window_output_sizes(
            cls.name, spatial, kernel, props.strides, props.pads, props.dilations
        )


def _blocked_conv_constraints(input_dims: int) -> Constraints:
    """The checks of a blocked convolution whose input has `input_dims` non-spatial dims
    (all but the last lead the spatial ones)."""
    return (
        Float("input"),
        SameElementType(),
        MinRank("input", input_dims + 1),
        Window(lead=input_dims - 1, trail=1),
    )


@irdl_op_definition
class ConvBlockedOp(_BlockedConvBase):
    """Convolution (group 1) in blocked layout: input N x C/ic x D1..Dn x ic, weight
    M/oc x C/ic x K1..Kn x ic x oc, optional bias (M), output N x M/oc x O1..On x oc:
    `from_blocked(conv_blocked(to_blocked(x), wb, b))` = `conv(x, w, b)` where
    `wb[mb, cb, k..., ci, mi] = w[mb * oc + mi, cb * ic + ci, k...]`. Strides, pads and
    dilations as for `graph.conv`.

    %y = graph.conv_blocked %x, %w, %b {strides = array<i64: 1, 1>, pads = array<i64: 1, 1, 1, 1>, dilations = array<i64: 1, 1>} : (tensor<1x2x8x8x8xf32>, tensor<1x2x3x3x8x16xf32>, tensor<16xf32>) -> tensor<1x1x8x8x16xf32>
    """

    name = "graph.conv_blocked"
    # N x C/ic x D.. x ic; M/oc x C/ic x K.. x ic x oc
    INPUT_DIMS: ClassVar[int] = 3
    WEIGHT_DIMS: ClassVar[int] = 4
    CONSTRAINTS: ClassVar[Constraints] = _blocked_conv_constraints(INPUT_DIMS)

    @classmethod
    def infer_result_types(
        cls, operand_types: Sequence[TensorType], props: Self
    ) -> list[TensorType]:
        x, w = cls._shapes(operand_types)
        n, cblocks, *spatial, ic = x
        mblocks, wcblocks, *kernel, wic, oc = w
        if (wcblocks, wic) != (cblocks, ic):
            raise GraphError(
                f"{cls.name} weight expects {wcblocks} x {wic} input channels, "
                f"the input has {cblocks} x {ic}"
            )
        check_bias(cls.name, operand_types, mblocks * oc)
        out = cls._output_sizes(props, spatial, kernel)
        return [tensor((n, mblocks, *out, oc), operand_types[0].element_type)]


@irdl_op_definition
class GroupConvBlockedOp(_BlockedConvBase):
    """Grouped convolution in blocked layout with an explicit group axis: input
    N x G x CB x D1..Dn x ic, weight G x MB x CB x K1..Kn x ic x oc, optional bias
    (G * MB * oc), output N x G x MB x O1..On x oc. With `x` of C = G * CB * ic channels
    and `w` of M = G * MB * oc, `reshape(conv_out, [N, G * MB, O.., oc])` after
    `group_conv_blocked(reshape(to_blocked(x, ic), [N, G, CB, D.., ic]), wb, b)` is
    `to_blocked(conv(x, w, b, group = G), oc)`, where
    `wb[g, mb, cb, k..., ci, mi] = w[(g * MB + mb) * oc + mi, cb * ic + ci, k...]`.

    %y = graph.group_conv_blocked %x, %w {strides = array<i64: 1, 1>, pads = array<i64: 1, 1, 1, 1>, dilations = array<i64: 1, 1>} : (tensor<1x2x3x6x6x8xf32>, tensor<2x4x3x3x3x8x8xf32>) -> tensor<1x2x4x6x6x8xf32>
    """

    name = "graph.group_conv_blocked"
    # N x G x C/G/ic x D.. x ic; G x M/G/oc x C/G/ic x K.. x ic x oc
    INPUT_DIMS: ClassVar[int] = 4
    WEIGHT_DIMS: ClassVar[int] = 5
    CONSTRAINTS: ClassVar[Constraints] = _blocked_conv_constraints(INPUT_DIMS)

    @classmethod
    def infer_result_types(
        cls, operand_types: Sequence[TensorType], props: Self
    ) -> list[TensorType]:
        x, w = cls._shapes(operand_types)
        n, groups, cblocks, *spatial, ic = x
        wg, mblocks, wcblocks, *kernel, wic, oc = w
        if (wg, wcblocks, wic) != (groups, cblocks, ic):
            raise GraphError(
                f"{cls.name} weight expects {wg} groups of {wcblocks} x {wic} input "
                f"channels, the input has {groups} of {cblocks} x {ic}"
            )
        check_bias(cls.name, operand_types, groups * mblocks * oc)
        out = cls._output_sizes(props, spatial, kernel)
        return [tensor((n, groups, mblocks, *out, oc), operand_types[0].element_type)]


@irdl_op_definition
class DepthwiseConvBlockedOp(_BlockedConvBase):
    """Depthwise convolution in blocked layout: input N x C/c x D1..Dn x c, weight
    C/c x K1..Kn x c, optional bias (C), output N x C/c x O1..On x c:
    `from_blocked(depthwise_conv_blocked(to_blocked(x), wb, b))` = `conv(x, w, b)` with
    `group = C` and `w: C x 1 x K1..Kn`, where `wb[cb, k..., ci] = w[cb * c + ci, 0, k...]`.
    Strides, pads and dilations as for `graph.conv`.

    %y = graph.depthwise_conv_blocked %x, %w, %b {strides = array<i64: 1, 1>, pads = array<i64: 1, 1, 1, 1>, dilations = array<i64: 1, 1>} : (tensor<1x2x8x8x8xf32>, tensor<2x3x3x8xf32>, tensor<16xf32>) -> tensor<1x2x8x8x8xf32>
    """

    name = "graph.depthwise_conv_blocked"
    # N x C/c x D.. x c; C/c x K.. x c
    INPUT_DIMS: ClassVar[int] = 3
    WEIGHT_DIMS: ClassVar[int] = 2
    CONSTRAINTS: ClassVar[Constraints] = _blocked_conv_constraints(INPUT_DIMS)

    @classmethod
    def infer_result_types(
        cls, operand_types: Sequence[TensorType], props: Self
    ) -> list[TensorType]:
        x, w = cls._shapes(operand_types)
        n, cblocks, *spatial, c = x
        if (w[0], w[-1]) != (cblocks, c):
            raise GraphError(
                f"{cls.name} weight has {w[0]} x {w[-1]} channels, the input {cblocks} x {c}"
            )
        check_bias(cls.name, operand_types, cblocks * c)
        out = cls._output_sizes(props, spatial, list(w[1:-1]))
        return [tensor((n, cblocks, *out, c), operand_types[0].element_type)]


LAYOUT_OPS: list[type[GraphOp]] = [
    ToBlockedOp,
    FromBlockedOp,
    ConvBlockedOp,
    GroupConvBlockedOp,
    DepthwiseConvBlockedOp,
]

__all__ = [
    "LAYOUT_OPS",
    "ConvBlockedOp",
    "DepthwiseConvBlockedOp",
    "FromBlockedOp",
    "GroupConvBlockedOp",
    "ToBlockedOp",
]
