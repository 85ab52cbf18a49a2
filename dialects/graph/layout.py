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

from xdsl.dialects.builtin import I64, DenseArrayBase, IntegerAttr, TensorType
from xdsl.irdl import irdl_op_definition, operand_def, opt_operand_def, prop_def, result_def

from mlc.dialects.graph.base import GraphError, GraphOp, Props
from mlc.dialects.graph.nn import check_window
from mlc.dialects.graph.types import is_float, tensor


def _rank_at_least(name: str, shape: Sequence[int], rank: int, what: str) -> None:
    if len(shape) < rank:
        raise GraphError(f"{name} {what} must have rank >= {rank}, got shape {tuple(shape)}")


@irdl_op_definition
class ToBlockedOp(GraphOp):
    """N x C x D1..Dn -> N x C/c x D1..Dn x c with `c = block`, which must divide C:
    `y[n, cb, d..., ci] = x[n, cb * c + ci, d...]`.

    %y = graph.to_blocked %x {block = 8 : i64} : (tensor<1x16x5x5xf32>) -> tensor<1x2x5x5x8xf32>
    """

    name = "graph.to_blocked"
    input = operand_def(TensorType)
    output = result_def(TensorType)
    block = prop_def(IntegerAttr[I64])

    @classmethod
    def infer_result_types(
        cls, operand_types: Sequence[TensorType], props: Props
    ) -> list[TensorType]:
        (ty,) = operand_types
        shape = tuple(ty.get_shape())
        _rank_at_least(cls.name, shape, 3, "input")
        c = props.int("block")
        if c < 1:
            raise GraphError(f"{cls.name} block must be positive, got {c}")
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

    @classmethod
    def infer_result_types(
        cls, operand_types: Sequence[TensorType], props: Props
    ) -> list[TensorType]:
        (ty,) = operand_types
        shape = tuple(ty.get_shape())
        _rank_at_least(cls.name, shape, 4, "input")
        n, blocks, *spatial, c = shape
        return [tensor((n, blocks * c, *spatial), ty.element_type)]


class _BlockedConvBase(GraphOp):
    """Operands, properties and shared checks of the blocked convolutions."""

    input = operand_def(TensorType)
    weight = operand_def(TensorType)
    bias = opt_operand_def(TensorType)
    output = result_def(TensorType)
    strides = prop_def(DenseArrayBase[I64])
    pads = prop_def(DenseArrayBase[I64])
    dilations = prop_def(DenseArrayBase[I64])

    @classmethod
    def _shapes(
        cls, operand_types: Sequence[TensorType], input_dims: int, weight_dims: int
    ) -> tuple[tuple[int, ...], tuple[int, ...]]:
        """(input, weight) shapes, after checking the operand count, the element types,
        and the ranks: the input has `input_dims` non-spatial dims and at least one
        spatial one, the weight `weight_dims` non-spatial dims and as many spatial ones."""
        if len(operand_types) not in (2, 3):
            raise GraphError(f"{cls.name} takes 2 or 3 operands (input, weight, bias)")
        x_ty, w_ty = operand_types[:2]
        if not is_float(x_ty.element_type):
            raise GraphError(f"{cls.name} expects a floating-point input, got {x_ty}")
        if len({t.element_type for t in operand_types}) > 1:
            raise GraphError(f"{cls.name} operands must have the same element type")
        x, w = tuple(x_ty.get_shape()), tuple(w_ty.get_shape())
        _rank_at_least(cls.name, x, input_dims + 1, "input")
        rank = len(x) - input_dims + weight_dims
        if len(w) != rank:
            raise GraphError(f"{cls.name} weight must have rank {rank}, got shape {w}")
        return x, w

    @classmethod
    def _check_bias(cls, operand_types: Sequence[TensorType], channels: int) -> None:
        if len(operand_types) == 3 and tuple(operand_types[2].get_shape()) != (channels,):
            raise GraphError(
                f"{cls.name} bias must have shape ({channels},), got {operand_types[2]}"
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

    @classmethod
    def infer_result_types(
        cls, operand_types: Sequence[TensorType], props: Props
    ) -> list[TensorType]:
        # N x C/ic x D.. x ic; M/oc x C/ic x K.. x ic x oc
        x, w = cls._shapes(operand_types, 3, 4)
        n, cblocks, *spatial, ic = x
        mblocks, wcblocks, *kernel, wic, oc = w
        if (wcblocks, wic) != (cblocks, ic):
            raise GraphError(
                f"{cls.name} weight expects {wcblocks} x {wic} input channels, "
                f"the input has {cblocks} x {ic}"
            )
        cls._check_bias(operand_types, mblocks * oc)
        out = check_window(cls.name, spatial, kernel, props)
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

    @classmethod
    def infer_result_types(
        cls, operand_types: Sequence[TensorType], props: Props
    ) -> list[TensorType]:
        # N x G x C/G/ic x D.. x ic; G x M/G/oc x C/G/ic x K.. x ic x oc
        x, w = cls._shapes(operand_types, 4, 5)
        n, groups, cblocks, *spatial, ic = x
        wg, mblocks, wcblocks, *kernel, wic, oc = w
        if (wg, wcblocks, wic) != (groups, cblocks, ic):
            raise GraphError(
                f"{cls.name} weight expects {wg} groups of {wcblocks} x {wic} input "
                f"channels, the input has {groups} of {cblocks} x {ic}"
            )
        cls._check_bias(operand_types, groups * mblocks * oc)
        out = check_window(cls.name, spatial, kernel, props)
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

    @classmethod
    def infer_result_types(
        cls, operand_types: Sequence[TensorType], props: Props
    ) -> list[TensorType]:
        # N x C/c x D.. x c; C/c x K.. x c
        x, w = cls._shapes(operand_types, 3, 2)
        n, cblocks, *spatial, c = x
        if (w[0], w[-1]) != (cblocks, c):
            raise GraphError(
                f"{cls.name} weight has {w[0]} x {w[-1]} channels, the input {cblocks} x {c}"
            )
        cls._check_bias(operand_types, cblocks * c)
        out = check_window(cls.name, spatial, list(w[1:-1]), props)
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
