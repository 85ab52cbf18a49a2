"""`graph-fold-qdq`: products of dequantized 8-bit tensors become integer kernels.

A QDQ model (what `mlc.quantize` and onnxruntime's `quantize_static` write) keeps every
product in float between `dequantize_linear` and `quantize_linear` ops. This pass gives
the product the 8-bit operands themselves: `graph.conv` / `graph.gemm` / `graph.matmul`
whose operands are dequantized i8 / ui8 tensors become `conv_integer` / `matmul_integer`
(exact in i32), and the scales, the bias and the following requantization become a
float64 epilogue:

    %x = graph.dequantize_linear %xq, %sx, %zx {axis = 1 : i64} : (tensor<1x3x8x8xui8>, tensor<f32>, tensor<ui8>) -> tensor<1x3x8x8xf32>
    %w = graph.dequantize_linear %wq, %sw, %zw {axis = 0 : i64} : (tensor<4x3x3x3xi8>, tensor<4xf32>, tensor<4xi8>) -> tensor<4x3x3x3xf32>
    %y = graph.conv %x, %w, %b {...} : (...) -> tensor<1x4x8x8xf32>
    %r = graph.relu %y : (tensor<1x4x8x8xf32>) -> tensor<1x4x8x8xf32>
    %q = graph.quantize_linear %r, %sy, %zy {axis = 1 : i64} : (...) -> tensor<1x4x8x8xui8>
    ->
    %acc = graph.conv_integer %xq, %wq, %zx, %zw {...} : (...) -> tensor<1x4x8x8xi32>
    %t = f64(%acc) * (sx * sw[c]) + b[c]          (graph.cast, graph.mul, graph.add in f64)
    %q = graph.quantize_linear relu(%t), f64(sy), %zy

Without a following `quantize_linear` the product's result is `f32(%t)`. The rewrite
computes what the QDQ program means (the dequantized values' exact product) in i32 and
float64 where the original rounds every product and sum to f32: results agree except
where f32 rounding moved a value across a rounding boundary of the requantization (one
step at most for ordinary reductions).

A clip (Relu6) between the product and its requantization is kept in the float64
epilogue as a relu is. `FoldReluIntoQuantize` drops a relu between a value and its
quantization when the zero point is the lowest code (saturation already maps every
negative value to it, exactly), and a clip when its bounds quantize to the end codes or
beyond.

Conditions: 8-bit quantized operands, per-tensor activations (`conv` input, `gemm` A,
`matmul` lhs), weights per tensor or per output channel, constant scales (positive,
finite) and zero points, a constant bias (or none), `gemm` without `trans_a`, and
reductions short enough that i32 cannot overflow (K * 255 * 255 < 2^31).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from xdsl.context import Context
from xdsl.dialects.builtin import Float32Type, Float64Type, ModuleOp, TensorType
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
from mlc.dialects.graph.quant import PRODUCT_TYPES
from mlc.dialects.graph.types import numpy_dtype
from mlc.transforms.graph.common import constant_array, tensor_shape

#: largest |q - zero_point| product of two 8-bit codes; K * this must stay below 2^31
_MAX_PRODUCT = 255 * 255


@dataclass(frozen=True)
class Dequantized:
    """`value = (q - zero_point) * scale`, read from a `dequantize_linear` with constant
    scale and zero point; `axis` is None for one scale for the whole tensor."""

    op: g.DequantizeLinearOp
    scale: np.ndarray
    zero_point: np.ndarray
    axis: int | None

    @property
    def q(self) -> SSAValue:
        return self.op.input

    def real(self) -> np.ndarray | None:
        """The dequantized value in float64 when `q` is a constant, else None."""
        q = constant_array(self.q)
        if q is None:
            return None
        shape = [1] * q.ndim
        if self.axis is not None:
            shape[self.axis] = -1
        scale = self.scale.astype(np.float64).reshape(shape if self.scale.size > 1 else ())
        zero = self.zero_point.astype(np.float64).reshape(shape if self.scale.size > 1 else ())
        return (q.astype(np.float64) - zero) * scale


def dequantized(value: SSAValue, *, codes: Sequence[str] = PRODUCT_TYPES) -> Dequantized | None:
    """`value` as a `Dequantized` when a `dequantize_linear` of a `codes` tensor with
    constant, positive, finite scales and constant zero points defines it."""
    op = value.owner
    if not isinstance(op, g.DequantizeLinearOp):
        return None
    q_type = op.input.type
    assert isinstance(q_type, TensorType)
    if numpy_dtype(q_type.element_type).name not in codes:
        return None
    scale, zero_point = constant_array(op.scale), constant_array(op.zero_point)
    if scale is None or zero_point is None or not _positive_finite(scale):
        return None
    return Dequantized(op, scale.reshape(-1), zero_point.reshape(-1), op.scale_axis())


def _positive_finite(scale: np.ndarray) -> bool:
    return bool(scale.size) and bool(np.all(np.isfinite(scale) & (scale > 0)))


@dataclass(frozen=True)
class Requantization:
    """The `quantize_linear` (per tensor, constant positive scale and zero point) that is
    a product's only user, or the only user of its only relu or clip (a Relu6)."""

    quantize: g.QuantizeLinearOp
    relu: g.ReluOp | g.ClipOp | None


def _requantization(product: Operation) -> Requantization | None:
    (result,) = product.results
    if not result.has_one_use():
        return None
    user = next(iter(result.uses)).operation
    relu = None
    if isinstance(user, g.ReluOp | g.ClipOp):
        if not user.output.has_one_use():
            return None
        relu, user = user, next(iter(user.output.uses)).operation
    if not isinstance(user, g.QuantizeLinearOp) or user.scale_axis() is not None:
        return None
    scale, zero_point = constant_array(user.scale), constant_array(user.zero_point)
    if scale is None or zero_point is None or not _positive_finite(scale):
        return None
    return Requantization(user, relu)


def _channel_shape(m: int, rank: int, axis: int) -> tuple[int, ...]:
    """Shape of a per-channel vector of length `m` broadcasting along `axis` of a result of
    rank `rank`."""
    shape = [1] * rank
    shape[axis] = m
    return tuple(shape)


class _Epilogue:
    """Builds the float64 epilogue of an integer product: ops are collected in order."""

    def __init__(self) -> None:
        self.ops: list[Operation] = []

    def add(self, op: Operation) -> SSAValue:
        self.ops.append(op)
        return op.results[0]

    def constant(self, array: np.ndarray) -> SSAValue:
        return self.add(g.ConstantOp.from_array(array))

    def real(self, acc: SSAValue, multiplier: np.ndarray, bias: np.ndarray | None) -> SSAValue:
        """f64(acc) * multiplier (+ bias)."""
        t = self.add(g.CastOp.to(acc, Float64Type()))
        t = self.add(g.MulOp.create([t, self.constant(multiplier)]))
        if bias is not None:
            t = self.add(g.AddOp.create([t, self.constant(bias)]))
        return t


def _bias_real(value: SSAValue | None) -> np.ndarray | None | bool:
    """The bias in float64: None when absent, False when it cannot fold (not constant)."""
    if value is None:
        return None
    deq = dequantized(value, codes=("int8", "uint8", "int32"))
    if deq is not None and (real := deq.real()) is not None:
        return real
    const = constant_array(value)
    if const is None or const.dtype.kind != "f":
        return False
    return const.astype(np.float64)


class FoldQdqProduct(RewritePattern):
    """`graph-fold-qdq-product`: conv / gemm / matmul of dequantized 8-bit operands ->
    `conv_integer` / `matmul_integer` with a float64 epilogue (see the module doc)."""

    def match_and_rewrite(self, op: Operation, rewriter: PatternRewriter) -> None:
        if isinstance(op, g.ConvOp):
            folded = _fold_conv(op)
        elif isinstance(op, g.GemmOp):
            folded = _fold_gemm(op)
        elif isinstance(op, g.MatMulOp):
            folded = _fold_matmul(op)
        else:
            return
        if folded is None:
            return
        epilogue, t = folded
        requant = _requantization(op)
        if requant is None:
            out = epilogue.add(g.CastOp.to(t, Float32Type()))
            rewriter.replace(op, epilogue.ops, [out])
            return
        if isinstance(requant.relu, g.ClipOp):  # the bounds, in the epilogue's f64
            t = epilogue.add(g.ClipOp.create([t], **dict(requant.relu.properties)))
        elif requant.relu is not None:
            t = epilogue.add(g.ReluOp.create([t]))
        quantize = requant.quantize
        scale = constant_array(quantize.scale)
        assert scale is not None
        scale64 = epilogue.constant(scale.astype(np.float64))
        q = epilogue.add(
            g.QuantizeLinearOp.create([t, scale64, quantize.zero_point], axis=quantize.axis)
        )
        rewriter.replace(quantize, epilogue.ops, [q])
        if requant.relu is not None:
            rewriter.erase(requant.relu)
        rewriter.erase(op)


def _reduction_fits(k: int) -> bool:
    return k * _MAX_PRODUCT < 2**31


def _fold_conv(op: g.ConvOp) -> tuple[_Epilogue, SSAValue] | None:
    x, w = dequantized(op.input), dequantized(op.weight)
    if x is None or w is None or x.axis is not None or w.axis not in (None, 0):
        return None
    bias = _bias_real(op.bias)
    w_shape = tensor_shape(op.weight)
    if bias is False or not _reduction_fits(math.prod(w_shape[1:])):
        return None
    m, rank = w_shape[0], len(w_shape)
    channel = _channel_shape(m, rank, 1)
    epilogue = _Epilogue()
    acc = epilogue.add(
        g.ConvIntegerOp.create(
            [x.q, w.q, x.op.zero_point, w.op.zero_point],
            strides=list(op.strides),
            pads=list(op.pads),
            dilations=list(op.dilations),
            group=op.group,
        )
    )
    multiplier = x.scale.astype(np.float64)[0] * w.scale.astype(np.float64)
    multiplier = multiplier.reshape(channel) if multiplier.size > 1 else multiplier.reshape(())
    bias_real = None if bias is None else np.asarray(bias).reshape(channel)
    return epilogue, epilogue.real(acc, multiplier, bias_real)


def _fold_gemm(op: g.GemmOp) -> tuple[_Epilogue, SSAValue] | None:
    a, b = dequantized(op.a), dequantized(op.b)
    if a is None or b is None or a.axis is not None or op.trans_a:
        return None
    n_axis = 0 if op.trans_b else 1
    if b.axis not in (None, n_axis):
        return None
    c = _bias_real(op.c)
    k = tensor_shape(op.a)[1]
    if c is False or not _reduction_fits(k):
        return None
    epilogue = _Epilogue()
    bq = b.q
    if op.trans_b:
        bq = epilogue.add(g.TransposeOp.create([bq], perm=[1, 0]))
    acc = epilogue.add(g.MatMulIntegerOp.create([a.q, bq, a.op.zero_point, b.op.zero_point]))
    multiplier = float(op.alpha) * a.scale.astype(np.float64)[0] * b.scale.astype(np.float64)
    multiplier = multiplier.reshape(-1) if multiplier.size > 1 else multiplier.reshape(())
    bias_real = None if c is None else float(op.beta) * np.asarray(c)
    return epilogue, epilogue.real(acc, multiplier, bias_real)


def _fold_matmul(op: g.MatMulOp) -> tuple[_Epilogue, SSAValue] | None:
    a, b = dequantized(op.lhs), dequantized(op.rhs)
    if a is None or b is None or a.axis is not None:
        return None
    a_shape, b_shape = tensor_shape(op.lhs), tensor_shape(op.rhs)
    if len(a_shape) < 2 or len(b_shape) < 2 or b.axis not in (None, len(b_shape) - 1):
        return None
    if not _reduction_fits(a_shape[-1]):
        return None
    epilogue = _Epilogue()
    acc = epilogue.add(g.MatMulIntegerOp.create([a.q, b.q, a.op.zero_point, b.op.zero_point]))
    multiplier = a.scale.astype(np.float64)[0] * b.scale.astype(np.float64)
    multiplier = multiplier.reshape(-1) if multiplier.size > 1 else multiplier.reshape(())
    return epilogue, epilogue.real(acc, multiplier, None)


class FoldReluIntoQuantize(RewritePattern):
    """`graph-fold-relu-into-quantize`: quantize_linear(relu(x), s, z) ->
    quantize_linear(x, s, z) when every zero point is its type's lowest code and every
    scale is positive: saturation maps each negative x to that code, as relu's 0 is.
    Likewise quantize_linear(clip(x, lo, hi), s, z) (a Relu6) when `lo` quantizes to the
    lowest code or below and `hi` to the highest or above, in every channel: quantization
    is increasing, so saturation then does what the clip did."""

    @op_type_rewrite_pattern
    def match_and_rewrite(self, op: g.QuantizeLinearOp, rewriter: PatternRewriter) -> None:
        activation = op.input.owner
        if not isinstance(activation, g.ReluOp | g.ClipOp):
            return
        scale, zero_point = constant_array(op.scale), constant_array(op.zero_point)
        if scale is None or zero_point is None or not _positive_finite(scale):
            return
        if isinstance(activation, g.ReluOp):
            lo, hi = 0.0, None
        else:
            lo, hi = activation.min, activation.max
        input_type = op.input.type
        assert isinstance(input_type, TensorType)
        dtype = numpy_dtype(input_type.element_type)
        info = np.iinfo(zero_point.dtype)
        if lo is not None and not np.all(_codes_of(lo, scale, zero_point, dtype) <= info.min):
            return
        if hi is not None and not np.all(_codes_of(hi, scale, zero_point, dtype) >= info.max):
            return
        rewriter.replace(
            op,
            g.QuantizeLinearOp.create([activation.input, op.scale, op.zero_point], axis=op.axis),
        )


def _codes_of(
    bound: float, scale: np.ndarray, zero_point: np.ndarray, dtype: np.dtype
) -> np.ndarray:
    """round_half_even(bound / scale) + zero_point before saturation, computed as
    `quantize_linear` computes it in the input's float type (per channel: one each)."""
    quotient = np.asarray(bound, dtype) / scale.astype(dtype)
    return np.rint(quotient) + zero_point.astype(dtype)


#: ops that move or select elements (max pools select them; dequantization is increasing):
#: they commute with dequantize_linear
ORDER_PRESERVING_OPS: tuple[type[Operation], ...] = (
    g.ReshapeOp,
    g.TransposeOp,
    g.SliceOp,
    g.MaxPoolOp,
)


def _same_quantization(deq: Dequantized, quantize: g.QuantizeLinearOp) -> bool:
    scale, zero_point = constant_array(quantize.scale), constant_array(quantize.zero_point)
    if scale is None or zero_point is None or quantize.scale_axis() is not None:
        return False
    return (
        deq.axis is None
        and zero_point.dtype == deq.zero_point.dtype
        and scale.reshape(-1).tolist() == deq.scale.tolist()
        and zero_point.reshape(-1).tolist() == deq.zero_point.tolist()
    )


class FoldQdqDataMovement(RewritePattern):
    """`graph-fold-qdq-data-movement`: quantize_linear(f(dequantize_linear(q, s, z)), s, z)
    -> f(q) for f in `ORDER_PRESERVING_OPS`, per tensor with equal scale and zero point:
    f moves or selects codes as it would their (increasing) dequantized values, and
    quantizing a dequantized code with its own parameters gives it back, exactly.

        %x = graph.dequantize_linear %q, %s, %z {axis = 1 : i64} : (tensor<1x4x8x8xui8>, tensor<f32>, tensor<ui8>) -> tensor<1x4x8x8xf32>
        %p = graph.max_pool %x {...} : (tensor<1x4x8x8xf32>) -> tensor<1x4x4x4xf32>
        %y = graph.quantize_linear %p, %s, %z {axis = 1 : i64} : (...) -> tensor<1x4x4x4xui8>
        ->
        %y = graph.max_pool %q {...} : (tensor<1x4x8x8xui8>) -> tensor<1x4x4x4xui8>
    """

    @op_type_rewrite_pattern
    def match_and_rewrite(self, op: g.QuantizeLinearOp, rewriter: PatternRewriter) -> None:
        mover = op.input.owner
        if not isinstance(mover, ORDER_PRESERVING_OPS) or len(mover.operands) != 1:
            return
        deq = dequantized(mover.operands[0], codes=("int8", "uint8", "int16", "uint16"))
        if deq is None or not _same_quantization(deq, op):
            return
        result_type = op.output.type
        assert isinstance(result_type, TensorType)
        moved = type(mover).create(
            operands=[deq.q],
            result_types=[result_type],
            properties=dict(mover.properties),
            attributes=dict(mover.attributes),
        )
        rewriter.replace(op, moved)


QDQ_PATTERNS: tuple[type[RewritePattern], ...] = (
    FoldQdqProduct,
    FoldReluIntoQuantize,
    FoldQdqDataMovement,
)


@dataclass(frozen=True)
class FoldQdqPass(ModulePass):
    """`graph-fold-qdq`: every `QDQ_PATTERNS` rewrite, greedily, then dead code removal.
    Runs before constant folding (which would turn dequantized weights into floats)."""

    name = "graph-fold-qdq"

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        PatternRewriteWalker(
            GreedyRewritePatternApplier([p() for p in QDQ_PATTERNS]),
            post_walk_func=region_dce,
        ).rewrite_module(op)
