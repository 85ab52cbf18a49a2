"""`graph-blocked-layout`: convolutions in the blocked NCHW[c]c layout, with the layout
propagated through elementwise ops and pools so transposes remain only at the boundaries.

    %a = graph.conv %x, %w1 {...} : (tensor<1x16x8x8xf32>, ...) -> tensor<1x16x8x8xf32>
    %r = graph.relu %a : (tensor<1x16x8x8xf32>) -> tensor<1x16x8x8xf32>
    %y = graph.conv %r, %w2 {...} : (tensor<1x16x8x8xf32>, ...) -> tensor<1x16x8x8xf32>
    ->                                                         (block = 8)
    %xb = graph.to_blocked %x {block = 8 : i64} : (...) -> tensor<1x2x8x8x8xf32>
    %ab = graph.conv_blocked %xb, %w1b {...} : (...) -> tensor<1x2x8x8x8xf32>
    %rb = graph.relu %ab : (tensor<1x2x8x8x8xf32>) -> tensor<1x2x8x8x8xf32>
    %yb = graph.conv_blocked %rb, %w2b {...} : (...) -> tensor<1x2x8x8x8xf32>
    %y = graph.from_blocked %yb : (tensor<1x2x8x8x8xf32>) -> tensor<1x16x8x8xf32>

Patterns (each registered and property-tested on its own):

- `BlockConv`: conv(x, w, b) with group 1 and float operands ->
  from_blocked(conv_blocked(to_blocked(x, ic), block(w), b)). The output block `oc` is
  the pass's block (or half of it) and must divide the output channels, else the conv is
  left alone; the input block `ic` is the largest divisor of the input channels up to
  the block (3 for an RGB image). A depthwise conv (group = input = output channels) ->
  from_blocked(depthwise_conv_blocked(to_blocked(x, c), block(w), b)), `c` the block or
  half of it dividing the channels. A grouped conv whose groups' channel counts the blocks
  divide -> from_blocked(reshape(group_conv_blocked(reshape(to_blocked(x, ic)), block(w),
  b))), the reshapes splitting and merging the group axis. The weight is blocked by `graph.reshape` +
  `graph.transpose`, which constant folding turns into a blocked constant.
- `PropagateUnary`: f(from_blocked(y)) -> from_blocked(f(y)) for elementwise unary ops
  and casts.
- `PropagateBinary`: from_blocked(a) op o -> from_blocked(a op o') when the result keeps
  from_blocked(a)'s shape and o is from_blocked(b) (o' = b), a per-channel or scalar
  broadcast (o' = o reshaped to 1 x C/c x 1.. x c, or o itself), or a full-size value
  that is a constant or already converted to the same block elsewhere (o' =
  to_blocked(o), merged by CSE / folded).
- `PropagatePool`: max / average / lp pool of from_blocked(y) -> from_blocked(the same
  pool over y with a unit window along the block axis); global average / max pool ->
  reduce_mean / reduce_max over y's spatial axes.
- `PropagateConcat`: concat(from_blocked(a), from_blocked(b).., axis=1) ->
  from_blocked(concat(a, b.., axis=1)) when all are in the same block.
- `CancelBlockedPair`: to_blocked(from_blocked(y)) -> y when the blocks agree;
  from_blocked(to_blocked(x)) -> x.
- `BlockConvInteger`: a u8 x i8 `conv_integer` with the im2col form ->
  from_blocked(conv_integer_blocked(to_blocked(x, ic), w, zx, zw)) with blocks of up to
  `INT8_BLOCK` (64) channels, so 64 channels or fewer are channels-last as a whole.
- `PropagateLinearQuant`: quantize_linear / dequantize_linear of from_blocked(y) with a
  per-tensor scale and zero point -> from_blocked(the same op on y), so an integer
  convolution's epilogue and the next one's input stay blocked.

The pass runs all of them with constant folding, CSE and DCE. Its block (`block=0`:
from the host's vector width, 16 fp32 lanes with AVX-512, 8 with AVX2, 4 otherwise).
`mlc.compile` runs it by default when `worth_blocking` (two or more convs to block, or one
that the NCHW schedules handle badly: grouped, an output width not a multiple of the
vector, or an integer convolution).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from xdsl.context import Context
from xdsl.dialects.builtin import ModuleOp, TensorType
from xdsl.ir import Operation, SSAValue
from xdsl.passes import ModulePass
from xdsl.pattern_rewriter import (
    GreedyRewritePatternApplier,
    PatternRewriter,
    PatternRewriteWalker,
    RewritePattern,
)
from xdsl.transforms.common_subexpression_elimination import cse
from xdsl.transforms.dead_code_elimination import region_dce

from mlc.dialects import graph as g
from mlc.dialects.graph.elementwise import BinaryOp, UnaryOp, VariadicOp
from mlc.dialects.graph.nn import PoolOp
from mlc.dialects.graph.types import is_float
from mlc.host import host_features
from mlc.texpr.library.quant import im2col_applies
from mlc.transforms.graph.common import is_constant, tensor_shape
from mlc.transforms.graph.conv_to_matmul import is_pointwise
from mlc.transforms.graph.fold_constants import DEFAULT_MAX_ELEMENTS, FoldConstantOp


def default_block(vector_bits: int | None = None, element_bits: int = 32) -> int:
    """Channels per block: one vector register of `element_bits` elements (16 fp32 lanes
    with AVX-512, 8 with AVX2), from the host's vector width when not given."""
    if vector_bits is None:
        vector_bits = host_features().vector_bits
    return max(4, min(16, vector_bits // element_bits))


#: channels per block of the u8 input and i32 output of an integer convolution
#: (`BlockConvInteger`): one 512-bit register of bytes, so 64 or fewer channels are
#: channels-last (NHWC) as a whole
INT8_BLOCK = 64


def input_block(channels: int, block: int) -> int:
    """The largest divisor of `channels` up to `block`."""
    return max(d for d in range(1, min(channels, block) + 1) if channels % d == 0)


def output_block(channels: int, block: int) -> int | None:
    """`block` or half of it (at least 4) if it divides `channels`, else None."""
    for oc in (block, block // 2):
        if oc >= min(4, block) and channels % oc == 0:
            return oc
    return None


def _element_type(value: SSAValue) -> object:
    ty = value.type
    assert isinstance(ty, TensorType)
    return ty.element_type


def _from_blocked(value: SSAValue) -> g.FromBlockedOp | None:
    owner = value.owner
    return owner if isinstance(owner, g.FromBlockedOp) else None


def _block_of(value: SSAValue) -> int:
    return tensor_shape(value)[-1]


def block_weight(weight: SSAValue, ic: int, oc: int) -> tuple[list[Operation], SSAValue]:
    """M x C x K.. -> M/oc x C/ic x K.. x ic x oc as graph.reshape + graph.transpose."""
    m, c, *kernel = tensor_shape(weight)
    split = g.ReshapeOp.to(weight, [m // oc, oc, c // ic, ic, *kernel])
    rank = len(kernel)
    perm = [0, 2, *range(4, 4 + rank), 3, 1]
    blocked = g.TransposeOp.create([split], perm=perm)
    return [split, blocked], blocked.results[0]


def conv_blocks(op: Operation, block: int) -> tuple[int, int] | None:
    """(input block, output block) when `BlockConv` rewrites `op` (a group-1 float conv
    whose output channels `block` or `block / 2` divides), else None."""
    if not isinstance(op, g.ConvOp) or op.group != 1:
        return None
    if not is_float(_element_type(op.output)):
        return None
    x_shape, w_shape = tensor_shape(op.input), tensor_shape(op.weight)
    oc = output_block(w_shape[0], block)
    if oc is None or math.prod(x_shape) == 0:
        return None
    return input_block(x_shape[1], block), oc


def depthwise_block(op: Operation, block: int) -> int | None:
    """The channel block when `BlockConv` rewrites `op` (a float depthwise conv: group =
    input channels = output channels) as `graph.depthwise_conv_blocked`, else None."""
    if not isinstance(op, g.ConvOp) or not is_float(_element_type(op.output)):
        return None
    channels, group = tensor_shape(op.input)[1], op.group
    if group == 1 or group != channels or tensor_shape(op.weight)[0] != channels:
        return None
    return output_block(channels, block)


def group_blocks(op: Operation, block: int) -> tuple[int, int, int] | None:
    """(groups, input block, output block) when `BlockConv` rewrites `op` (a float conv
    with 1 < group, not depthwise, whose per-group output channels `block` or `block / 2`
    divides) as `graph.group_conv_blocked`, else None. A 1x1 unpadded conv that would get
    half-width blocks is left to `pointwise-conv-to-matmul` (ShuffleNet's 68 -> 272 group-4
    conv on 28x28: 0.30 ms blocked with 4 lanes, 0.08 ms as a product)."""
    if not isinstance(op, g.ConvOp) or not is_float(_element_type(op.output)):
        return None
    group = op.group
    x_shape, w_shape = tensor_shape(op.input), tensor_shape(op.weight)
    if group == 1 or depthwise_block(op, block) is not None or math.prod(x_shape) == 0:
        return None
    oc = output_block(w_shape[0] // group, block)
    if oc is None:
        return None
    if oc < block and is_pointwise(op):
        return None  # half vectors: a product over the pixels does better (conv_to_matmul)
    return group, input_block(x_shape[1] // group, block), oc


def conv_integer_blocks(op: Operation, block: int = INT8_BLOCK) -> tuple[int, int] | None:
    """(input block, output block) when `BlockConvInteger` rewrites `op` (a
    `conv_integer` with the im2col form: u8 x i8, 2-D, group 1): the largest divisors of
    the input and output channels up to `block`, else None."""
    if not isinstance(op, g.ConvIntegerOp) or not im2col_applies(op):
        return None
    x_shape, w_shape = tensor_shape(op.input), tensor_shape(op.weight)
    if math.prod(x_shape) == 0:
        return None
    return input_block(x_shape[1], block), input_block(w_shape[0], block)


def _blockable(op: Operation, block: int) -> bool:
    return (
        conv_blocks(op, block) is not None
        or depthwise_block(op, block) is not None
        or group_blocks(op, block) is not None
        or conv_integer_blocks(op) is not None
    )


def _poor_in_nchw(op: Operation, block: int) -> bool:
    """A conv the NCHW schedules handle badly: grouped (no register tile: every output
    channel of a group reads the same inputs through a division) or with an output
    width that is not a whole number of vectors (masked lanes in every tile)."""
    if isinstance(op, g.ConvIntegerOp):
        return True  # its NCHW form transposes around every product
    assert isinstance(op, g.ConvOp)
    width = tensor_shape(op.output)[-1]
    return op.group != 1 or width % block != 0


def worth_blocking(module: Operation, block: int = 0, min_convs: int = 2) -> bool:
    """At least `min_convs` convs would be blocked, or one that is poor in NCHW
    (`_poor_in_nchw`): the transposes where the layout meets NCHW values cost about what
    one blocked conv saves (3x3 64->64 56x56 on one core: 2.73 ms with, 2.64 ms without
    the layout; a ResNet basic block 4.9 vs 6.1 ms), far less than a conv the NCHW
    schedules handle badly (AlexNet's 13x13 group-2 conv4: 20.5 ms in NCHW, 3.2 ms
    blocked)."""
    block = block or default_block()
    convs = [op for op in module.walk() if _blockable(op, block)]
    return len(convs) >= min_convs or any(_poor_in_nchw(op, block) for op in convs)


class BlockConv(RewritePattern):
    """conv(x, w, b) -> from_blocked(conv_blocked(to_blocked(x), block(w), b))."""

    def __init__(self, block: int = 0):
        self.block = block or default_block()

    def match_and_rewrite(self, op: Operation, rewriter: PatternRewriter, /) -> None:
        blocks = conv_blocks(op, self.block)
        if blocks is None:
            self._depthwise(op, rewriter)
            self._grouped(op, rewriter)
            return
        assert isinstance(op, g.ConvOp)
        ic, oc = blocks
        to = g.ToBlockedOp.create([op.input], block=ic)
        weight_ops, wb = block_weight(op.weight, ic, oc)
        operands = [to.results[0], wb] + ([op.bias] if op.bias is not None else [])
        conv = g.ConvBlockedOp.create(
            operands, strides=op.strides, pads=op.pads, dilations=op.dilations
        )
        back = g.FromBlockedOp.create([conv])
        rewriter.replace(op, [to, *weight_ops, conv, back], [back.results[0]])

    def _depthwise(self, op: Operation, rewriter: PatternRewriter) -> None:
        c = depthwise_block(op, self.block)
        if c is None:
            return
        assert isinstance(op, g.ConvOp)
        to = g.ToBlockedOp.create([op.input], block=c)
        channels, _, *kernel = tensor_shape(op.weight)
        split = g.ReshapeOp.to(op.weight, [channels // c, c, *kernel])  # C/c x c x K..
        wb = g.TransposeOp.create([split], perm=[0, *range(2, 2 + len(kernel)), 1])
        operands = [to.results[0], wb.results[0]] + ([op.bias] if op.bias is not None else [])
        conv = g.DepthwiseConvBlockedOp.create(
            operands, strides=op.strides, pads=op.pads, dilations=op.dilations
        )
        back = g.FromBlockedOp.create([conv])
        rewriter.replace(op, [to, split, wb, conv, back], [back.results[0]])

    def _grouped(self, op: Operation, rewriter: PatternRewriter) -> None:
        blocks = group_blocks(op, self.block)
        if blocks is None:
            return
        assert isinstance(op, g.ConvOp)
        groups, ic, oc = blocks
        n, c, *spatial = tensor_shape(op.input)
        m, cg, *kernel = tensor_shape(op.weight)
        to = g.ToBlockedOp.create([op.input], block=ic)
        split_x = g.ReshapeOp.to(to.results[0], [n, groups, cg // ic, *spatial, ic])
        # M x C/G x K.. -> G x MB x oc x CB x ic x K.. -> G x MB x CB x K.. x ic x oc
        split_w = g.ReshapeOp.to(op.weight, [groups, m // groups // oc, oc, cg // ic, ic, *kernel])
        rank = len(kernel)
        perm = [0, 1, 3, *range(5, 5 + rank), 4, 2]
        wb = g.TransposeOp.create([split_w], perm=perm)
        operands = [split_x.results[0], wb.results[0]]
        operands += [op.bias] if op.bias is not None else []
        conv = g.GroupConvBlockedOp.create(
            operands, strides=op.strides, pads=op.pads, dilations=op.dilations
        )
        out_spatial = tensor_shape(conv.results[0])[3:-1]
        merged = g.ReshapeOp.to(conv.results[0], [n, m // oc, *out_spatial, oc])
        back = g.FromBlockedOp.create([merged])
        new = [to, split_x, split_w, wb, conv, merged, back]
        rewriter.replace(op, new, [back.results[0]])


class BlockConvInteger(RewritePattern):
    """conv_integer(x, w, zx, zw) -> from_blocked(conv_integer_blocked(to_blocked(x, ic),
    w, zx, zw)) with blocks of up to `INT8_BLOCK` channels (`conv_integer_blocks`): the
    im2col product then reads its patches from, and writes its result to, channel-minor
    buffers instead of transposing on both sides."""

    def __init__(self, block: int = INT8_BLOCK):
        self.block = block

    def match_and_rewrite(self, op: Operation, rewriter: PatternRewriter, /) -> None:
        blocks = conv_integer_blocks(op, self.block)
        if blocks is None:
            return
        assert isinstance(op, g.ConvIntegerOp)
        ic, oc = blocks
        to = g.ToBlockedOp.create([op.input], block=ic)
        conv = g.ConvIntegerBlockedOp.create(
            [to.results[0], op.weight, op.x_zero_point, op.w_zero_point],
            strides=op.strides,
            pads=op.pads,
            dilations=op.dilations,
            block=oc,
        )
        back = g.FromBlockedOp.create([conv])
        rewriter.replace(op, [to, conv, back], [back.results[0]])


def _blocked_type(op: Operation, operand: SSAValue) -> TensorType:
    ty = op.results[0].type
    assert isinstance(ty, TensorType)
    return TensorType(ty.element_type, tensor_shape(operand))


def _rebuild(op: Operation, operands: list[SSAValue], like: SSAValue) -> Operation:
    """`op` on other operands (result shape: `like`'s)."""
    assert isinstance(op, g.GraphOp)
    props = dict(op.properties)
    if op.EXPLICIT_RESULT_TYPES:
        return type(op).create(operands, result_types=[_blocked_type(op, like)], **props)
    return type(op).create(operands, **props)


class PropagateUnary(RewritePattern):
    """f(from_blocked(y)) -> from_blocked(f(y)) for elementwise unary ops and casts."""

    def match_and_rewrite(self, op: Operation, rewriter: PatternRewriter, /) -> None:
        if not isinstance(op, UnaryOp | g.CastOp):
            return
        fb = _from_blocked(op.operands[0])
        if fb is None:
            return
        new = _rebuild(op, [fb.input], fb.input)
        back = g.FromBlockedOp.create([new])
        rewriter.replace(op, [new, back], [back.results[0]])


class PropagateLinearQuant(RewritePattern):
    """quantize_linear / dequantize_linear(from_blocked(y), s, z) -> from_blocked(the same
    op on y) for a per-tensor scale and zero point (a per-axis one would need its axis
    split)."""

    def match_and_rewrite(self, op: Operation, rewriter: PatternRewriter, /) -> None:
        if not isinstance(op, g.QuantizeLinearOp | g.DequantizeLinearOp):
            return
        fb = _from_blocked(op.input)
        if fb is None or op.scale_axis() is not None:
            return
        if any(d != 1 for d in tensor_shape(op.zero_point)):
            return
        new = _rebuild(op, [fb.input, op.scale, op.zero_point], fb.input)
        back = g.FromBlockedOp.create([new])
        rewriter.replace(op, [new, back], [back.results[0]])


def _has_blocked_user(value: SSAValue, block: int) -> bool:
    return any(
        isinstance(u.operation, g.ToBlockedOp) and u.operation.block == block for u in value.uses
    )


def _blocked_operand(
    other: SSAValue, full: tuple[int, ...], blocked: tuple[int, ...]
) -> tuple[list[Operation], SSAValue] | None:
    """`other` (an operand broadcast against a `full`-shaped NCHW tensor) for the blocked
    form of the op, or None when no cheap form exists."""
    c = blocked[-1]
    fb = _from_blocked(other)
    if fb is not None and tensor_shape(fb.input) == blocked:
        return [], fb.input
    shape = tensor_shape(other)
    if len(shape) > len(full):
        return None
    padded = (1,) * (len(full) - len(shape)) + shape
    if all(d == 1 for d in padded):
        return [], other  # a scalar broadcast: unchanged
    if shape == full:
        if is_constant(other) or _has_blocked_user(other, c):
            to = g.ToBlockedOp.create([other], block=c)
            return [to], to.results[0]
        return None
    if padded[1] == full[1] and all(d == 1 for i, d in enumerate(padded) if i != 1):
        rank = len(full)
        reshaped = g.ReshapeOp.to(other, [1, full[1] // c, *[1] * (rank - 2), c])
        return [reshaped], reshaped.results[0]
    return None


class PropagateBinary(RewritePattern):
    """from_blocked(a) op o -> from_blocked(a op o') (see the module docstring); also
    the n-ary max / min / sum / mean."""

    def match_and_rewrite(self, op: Operation, rewriter: PatternRewriter, /) -> None:
        if not isinstance(op, BinaryOp | VariadicOp):
            return
        full = tensor_shape(op.output)
        blocked: tuple[int, ...] | None = None
        for operand in op.operands:
            fb = _from_blocked(operand)
            if fb is not None and tensor_shape(fb.output) == full:
                blocked = tensor_shape(fb.input)
                break
        if blocked is None:
            return
        new_ops: list[Operation] = []
        operands: list[SSAValue] = []
        for operand in op.operands:
            converted = _blocked_operand(operand, full, blocked)
            if converted is None:
                return
            new_ops += converted[0]
            operands.append(converted[1])
        new = _rebuild(op, operands, _first_blocked(operands, blocked))
        back = g.FromBlockedOp.create([new])
        rewriter.replace(op, [*new_ops, new, back], [back.results[0]])


def _first_blocked(values: list[SSAValue], blocked: tuple[int, ...]) -> SSAValue:
    return next(v for v in values if tensor_shape(v) == blocked)


class PropagatePool(RewritePattern):
    """pool(from_blocked(y)) -> from_blocked(pool'(y)) (see the module docstring)."""

    def match_and_rewrite(self, op: Operation, rewriter: PatternRewriter, /) -> None:
        if not isinstance(op, PoolOp | g.GlobalAveragePoolOp | g.GlobalMaxPoolOp):
            return
        if isinstance(op, g.MaxPoolIndicesOp):
            return  # indices into the NCHW input
        fb = _from_blocked(op.operands[0])
        if fb is None:
            return
        y = fb.input
        rank = len(tensor_shape(y)) - 3  # spatial axes
        new: Operation
        if isinstance(op, PoolOp):
            props = dict(op.properties)
            pads = op.pads
            props["kernel_shape"] = g.to_attr([*op.kernel_shape, 1])
            props["strides"] = g.to_attr([*op.strides, 1])
            props["dilations"] = g.to_attr([*op.dilations, 1])
            props["pads"] = g.to_attr([*pads[:rank], 0, *pads[rank:], 0])
            new = type(op).create([y], **props)
        else:
            reduce = g.ReduceMeanOp if isinstance(op, g.GlobalAveragePoolOp) else g.ReduceMaxOp
            new = reduce.create([y], axes=list(range(2, 2 + rank)), keepdims=True)
        back = g.FromBlockedOp.create([new])
        rewriter.replace(op, [new, back], [back.results[0]])


class PropagateConcat(RewritePattern):
    """concat(from_blocked(a), from_blocked(b).., axis=1) -> from_blocked(concat(a, b..,
    axis=1)) when every operand is in the same block `c`: each channel count is a multiple
    of `c`, so joining the channel-block axis is the channel concatenation, blocked
    (SqueezeNet's Fire modules: their expand branches stay blocked, and
    `tl-concat-in-place` has the convs write their slices).

        %a = graph.from_blocked %ab : (tensor<1x2x5x5x8xf32>) -> tensor<1x16x5x5xf32>
        %b = graph.from_blocked %bb : (tensor<1x1x5x5x8xf32>) -> tensor<1x8x5x5xf32>
        %y = graph.concat %a, %b {axis = 1 : i64} : (...) -> tensor<1x24x5x5xf32>
     ->
        %yb = graph.concat %ab, %bb {axis = 1 : i64} : (...) -> tensor<1x3x5x5x8xf32>
        %y = graph.from_blocked %yb : (tensor<1x3x5x5x8xf32>) -> tensor<1x24x5x5xf32>
    """

    def match_and_rewrite(self, op: Operation, rewriter: PatternRewriter, /) -> None:
        if not isinstance(op, g.ConcatOp):
            return
        if op.axis != 1:  # axes are normalized (no negative ones)
            return
        blocked = [_from_blocked(v) for v in op.operands]
        if any(fb is None for fb in blocked):
            return
        inputs = [fb.input for fb in blocked if fb is not None]
        if len({_block_of(v) for v in inputs}) != 1:
            return
        new = g.ConcatOp.create(inputs, axis=1)
        back = g.FromBlockedOp.create([new])
        rewriter.replace(op, [new, back], [back.results[0]])


class CancelBlockedPair(RewritePattern):
    """to_blocked(from_blocked(y)) -> y (same block); from_blocked(to_blocked(x)) -> x."""

    def match_and_rewrite(self, op: Operation, rewriter: PatternRewriter, /) -> None:
        if isinstance(op, g.ToBlockedOp):
            fb = _from_blocked(op.input)
            if fb is not None and _block_of(fb.input) == op.block:
                rewriter.replace(op, [], [fb.input])
        elif isinstance(op, g.FromBlockedOp):
            inner = op.input.owner
            if isinstance(inner, g.ToBlockedOp):
                rewriter.replace(op, [], [inner.input])


PROPAGATION_PATTERNS: tuple[type[RewritePattern], ...] = (
    PropagateUnary,
    PropagateBinary,
    PropagatePool,
    PropagateConcat,
    PropagateLinearQuant,
    CancelBlockedPair,
)


@dataclass(frozen=True)
class BlockedLayoutPass(ModulePass):
    """`graph-blocked-layout{block=N min-convs=K}`: see the module docstring (`block=0`:
    the host's fp32 vector lanes). With `min-convs=K` the module is left as it is unless at
    least K convolutions would be blocked or one that NCHW handles badly (`worth_blocking`:
    one ordinary conv alone does not pay for the two transposes)."""

    name = "graph-blocked-layout"
    block: int = 0
    max_elements: int = DEFAULT_MAX_ELEMENTS
    min_convs: int = 0

    def __post_init__(self) -> None:
        for option in ("block", "max_elements", "min_convs"):
            value = getattr(self, option)
            if value < 0:
                hint = " (block=0 picks the host's fp32 vector lanes)" if option == "block" else ""
                raise ValueError(
                    f"{option.replace('_', '-')} must not be negative, got {value}{hint}"
                )

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        if self.min_convs and not worth_blocking(op, self.block, self.min_convs):
            return
        patterns: list[RewritePattern] = [
            BlockConv(self.block),
            BlockConvInteger(),
            *(p() for p in PROPAGATION_PATTERNS),
            FoldConstantOp(self.max_elements),
        ]
        walker = PatternRewriteWalker(
            GreedyRewritePatternApplier(patterns), post_walk_func=region_dce
        )
        walker.rewrite_module(op)
        cse(op)
        walker.rewrite_module(op)  # CSE may expose pairs (two to_blocked of one value)
        region_dce(op.body)
