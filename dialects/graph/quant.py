"""Graph ops: quantization group (the integer path), with ONNX semantics.

`matmul_integer` and `conv_integer` are ONNX MatMulInteger / ConvInteger: 8-bit operands
(`i8` or `ui8`) minus their zero points, products and sums exact in `i32` (wrapping).
`quantize_linear` / `dequantize_linear` are ONNX QuantizeLinear / DequantizeLinear,
per tensor (a scalar or one-element scale) or per axis (a 1-D scale along `axis`).

Zero points are always operands here: the ONNX importer materializes omitted ones as
zero constants, so a lowering can see that a zero point is the constant 0 (the form
VNNI's `vpdpbusd` computes). QLinearMatMul / QLinearConv have no op of their own: the
importer decomposes them into `matmul_integer` / `conv_integer` and a requantization.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar, Self

from xdsl.dialects.builtin import TensorType, i32
from xdsl.irdl import irdl_op_definition, operand_def, result_def

from mlc.dialects.graph.base import (
    GraphError,
    GraphOp,
    IntProp,
    IntsProp,
    broadcast_shapes,
    normalize_axis,
)
from mlc.dialects.graph.constraints import IMAGE, Constraints, MinRank, Positive, SameRank, Window
from mlc.dialects.graph.nn import check_groups, window_output_sizes
from mlc.dialects.graph.types import numpy_dtype, tensor

#: operand element types of the integer products
PRODUCT_TYPES = ("int8", "uint8")
#: quantized element types of quantize_linear (and dequantize_linear, which adds int32)
QUANT_TYPES = ("int8", "uint8", "int16", "uint16")


def _dtype_name(ty: TensorType) -> str:
    return numpy_dtype(ty.element_type).name


def _require(name: str, ty: TensorType, allowed: Sequence[str], what: str) -> None:
    if _dtype_name(ty) not in allowed:
        shown = ", ".join(allowed)
        raise GraphError(f"{name} {what} must have element type in ({shown}), got {ty}")


def _product_shapes(
    name: str, a: TensorType, b: TensorType, what: tuple[str, str]
) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """The shapes of an integer product's two operands, after checking that both hold
    8-bit codes (`what`: their names in the error)."""
    _require(name, a, PRODUCT_TYPES, what[0])
    _require(name, b, PRODUCT_TYPES, what[1])
    return tuple(a.get_shape()), tuple(b.get_shape())


def _zero_point(name: str, zp: TensorType, of: TensorType, sizes: Sequence[int], what: str) -> None:
    """A zero point matches its operand's element type and has shape (), (1,) or (size,)
    for one of `sizes` (per row / column / output channel)."""
    if zp.element_type != of.element_type:
        raise GraphError(
            f"{name} {what} must have the element type of its operand "
            f"({of.element_type}), got {zp.element_type}"
        )
    shape = tuple(zp.get_shape())
    allowed = [(), (1,), *((s,) for s in sizes)]
    if shape not in allowed:
        raise GraphError(f"{name} {what} must have shape in {allowed}, got {shape}")


def quant_axis(name: str, x: TensorType, scale: TensorType, axis: int) -> int | None:
    """The axis a scale applies along, `axis` normalized (None: one scale for the whole
    tensor)."""
    shape = tuple(scale.get_shape())
    rank = len(x.get_shape())
    if shape in ((), (1,)):
        return None
    if len(shape) != 1:
        raise GraphError(f"{name} scale must be a scalar or 1-D, got shape {shape}")
    axis = normalize_axis(axis, rank)
    if x.get_shape()[axis] != shape[0]:
        raise GraphError(
            f"{name} scale has {shape[0]} values but axis {axis} of the input has "
            f"{x.get_shape()[axis]}"
        )
    return axis


def _scale_and_zero_point(
    name: str, x: TensorType, scale: TensorType, zp: TensorType, axis: int
) -> None:
    quant_axis(name, x, scale, axis)
    per_tensor = ((), (1,))
    zs, ss = tuple(zp.get_shape()), tuple(scale.get_shape())
    if zs != ss and not (zs in per_tensor and ss in per_tensor):
        raise GraphError(f"{name} zero point shape {zs} differs from the scale's {ss}")


@irdl_op_definition
class MatMulIntegerOp(GraphOp):
    """ONNX MatMulInteger: (A - a_zero_point) @ (B - b_zero_point) in i32, batch axes
    broadcast as `graph.matmul`; A, B are i8 or ui8; a_zero_point is a scalar or per row
    of A (shape (M,)), b_zero_point a scalar or per column of B (shape (N,)).

    %y = graph.matmul_integer %a, %b, %za, %zb : (tensor<4x8xui8>, tensor<8x16xi8>, tensor<ui8>, tensor<i8>) -> tensor<4x16xi32>
    """

    name = "graph.matmul_integer"
    a = operand_def(TensorType)
    b = operand_def(TensorType)
    a_zero_point = operand_def(TensorType)
    b_zero_point = operand_def(TensorType)
    output = result_def(TensorType)
    CONSTRAINTS: ClassVar[Constraints] = (MinRank("a", 2), MinRank("b", 2))

    @classmethod
    def infer_result_types(
        cls, operand_types: Sequence[TensorType], props: Self
    ) -> list[TensorType]:
        a_ty, b_ty, za, zb = operand_types
        a, b = _product_shapes(cls.name, a_ty, b_ty, ("A", "B"))
        if a[-1] != b[-2]:
            raise GraphError(
                f"{cls.name} contraction dimensions differ: {a} and {b} ({a[-1]} != {b[-2]})"
            )
        _zero_point(cls.name, za, a_ty, [a[-2]], "a_zero_point")
        _zero_point(cls.name, zb, b_ty, [b[-1]], "b_zero_point")
        batch = broadcast_shapes(a[:-2], b[:-2])
        return [tensor([*batch, a[-2], b[-1]], i32)]


class _ConvIntegerBase(GraphOp):
    """Operands and window properties of the integer convolutions: input, weight, their
    zero points, the i32 output; strides, pads and dilations as for `graph.conv`."""

    input = operand_def(TensorType)
    weight = operand_def(TensorType)
    x_zero_point = operand_def(TensorType)
    w_zero_point = operand_def(TensorType)
    output = result_def(TensorType)
    strides = IntsProp()
    pads = IntsProp()
    dilations = IntsProp()


@irdl_op_definition
class ConvIntegerOp(_ConvIntegerBase):
    """ONNX ConvInteger: `graph.conv` of (X - x_zero_point) and (W - w_zero_point) in i32
    (padding holds x_zero_point, i.e. 0 after the subtraction); X, W are i8 or ui8,
    x_zero_point a scalar, w_zero_point a scalar or per output channel (shape (M,)).

    %y = graph.conv_integer %x, %w, %zx, %zw {strides = array<i64: 1, 1>, pads = array<i64: 1, 1, 1, 1>, dilations = array<i64: 1, 1>, group = 1 : i64} : (tensor<1x3x8x8xui8>, tensor<4x3x3x3xi8>, tensor<ui8>, tensor<4xi8>) -> tensor<1x4x8x8xi32>
    """

    name = "graph.conv_integer"
    group = IntProp()
    CONSTRAINTS: ClassVar[Constraints] = (
        MinRank("input", 3, IMAGE),
        SameRank("weight", "input"),
        Positive("group"),
        Window(),
    )

    @classmethod
    def infer_result_types(
        cls, operand_types: Sequence[TensorType], props: Self
    ) -> list[TensorType]:
        x_ty, w_ty, zx, zw = operand_types
        x, w = _product_shapes(cls.name, x_ty, w_ty, ("input", "weight"))
        (n, c), (m, cg) = x[:2], w[:2]
        check_groups(cls.name, c, cg, m, props.group)
        _zero_point(cls.name, zx, x_ty, [], "x_zero_point")
        _zero_point(cls.name, zw, w_ty, [m], "w_zero_point")
        out = window_output_sizes(
            cls.name, x[2:], w[2:], props.strides, props.pads, props.dilations
        )
        return [tensor([n, m, *out], i32)]


@irdl_op_definition
class ConvIntegerBlockedOp(_ConvIntegerBase):
    """`graph.conv_integer` (group 1, 2-D) on a blocked input `N x C/ic x H x W x ic`
    (`graph.to_blocked`), giving a blocked output `N x M/oc x OH x OW x oc` with
    `oc = block`: `from_blocked(conv_integer_blocked(to_blocked(x, ic), w, zx, zw))` =
    `conv_integer(x, w, zx, zw)`. The weight keeps its `M x C x KH x KW` layout. With
    `ic = C` and `oc = M` the input and output are channels-last (NHWC), the layout an
    im2col product reads and writes without transposing.

    %y = graph.conv_integer_blocked %x, %w, %zx, %zw {strides = array<i64: 1, 1>, pads = array<i64: 1, 1, 1, 1>, dilations = array<i64: 1, 1>, block = 4 : i64} : (tensor<1x1x8x8x3xui8>, tensor<8x3x3x3xi8>, tensor<ui8>, tensor<i8>) -> tensor<1x2x8x8x4xi32>
    """

    name = "graph.conv_integer_blocked"
    block = IntProp()
    CONSTRAINTS: ClassVar[Constraints] = (
        MinRank("input", 5),
        Positive("block"),
        Window(lead=2, trail=1),
    )

    @classmethod
    def infer_result_types(
        cls, operand_types: Sequence[TensorType], props: Self
    ) -> list[TensorType]:
        x_ty, w_ty, zx, zw = operand_types
        x, w = _product_shapes(cls.name, x_ty, w_ty, ("input", "weight"))
        if len(x) != 5 or len(w) != 4:
            raise GraphError(
                f"{cls.name} takes a 2-D blocked input and an M x C x KH x KW weight, got "
                f"shapes {x} and {w}"
            )
        n, cblocks, h, width, ic = x
        m, c = w[:2]
        if cblocks * ic != c:
            raise GraphError(
                f"{cls.name} weight expects {c} input channels, the input has {cblocks} x {ic}"
            )
        if m % props.block:
            raise GraphError(f"{cls.name} block {props.block} does not divide {m} channels")
        _zero_point(cls.name, zx, x_ty, [], "x_zero_point")
        _zero_point(cls.name, zw, w_ty, [m], "w_zero_point")
        out = window_output_sizes(
            cls.name, (h, width), w[2:], props.strides, props.pads, props.dilations
        )
        return [tensor([n, m // props.block, *out, props.block], i32)]


class LinearQuantOp(GraphOp):
    """Base of `quantize_linear` and `dequantize_linear`: operands x, scale, zero point;
    the scale and zero point apply per tensor or along `axis`."""

    input = operand_def(TensorType)
    scale = operand_def(TensorType)
    zero_point = operand_def(TensorType)
    output = result_def(TensorType)
    axis = IntProp()

    def scale_axis(self) -> int | None:
        """The axis the scale applies along (None: one scale for the whole tensor)."""
        x, scale = self.input.type, self.scale.type
        assert isinstance(x, TensorType) and isinstance(scale, TensorType)
        return quant_axis(self.name, x, scale, self.axis)


@irdl_op_definition
class QuantizeLinearOp(LinearQuantOp):
    """ONNX QuantizeLinear: saturate(round_half_even(x / scale) + zero_point) in the zero
    point's element type (i8, ui8, i16, ui16); x and scale are f32 (or f64); the scale and
    zero point are scalars (per tensor) or 1-D along `axis` (per axis). NaN has no
    defined result.

    %y = graph.quantize_linear %x, %s, %z {axis = 1 : i64} : (tensor<2x3xf32>, tensor<3xf32>, tensor<3xui8>) -> tensor<2x3xui8>
    """

    name = "graph.quantize_linear"

    @classmethod
    def infer_result_types(
        cls, operand_types: Sequence[TensorType], props: Self
    ) -> list[TensorType]:
        x, scale, zp = operand_types
        _require(cls.name, x, ("float32", "float64"), "input")
        if scale.element_type != x.element_type:
            raise GraphError(f"{cls.name} scale must have the input's element type, got {scale}")
        _require(cls.name, zp, QUANT_TYPES, "zero point")
        _scale_and_zero_point(cls.name, x, scale, zp, props.axis)
        return [tensor(x.get_shape(), zp.element_type)]


@irdl_op_definition
class DequantizeLinearOp(LinearQuantOp):
    """ONNX DequantizeLinear: (f32(x) - f32(zero_point)) * scale; x is i8, ui8, i16, ui16
    or i32 (then the zero point must be 0), scale f32; scale and zero point per tensor or
    1-D along `axis`.

    %y = graph.dequantize_linear %x, %s, %z {axis = 1 : i64} : (tensor<2x3xi8>, tensor<f32>, tensor<i8>) -> tensor<2x3xf32>
    """

    name = "graph.dequantize_linear"

    @classmethod
    def infer_result_types(
        cls, operand_types: Sequence[TensorType], props: Self
    ) -> list[TensorType]:
        x, scale, zp = operand_types
        _require(cls.name, x, (*QUANT_TYPES, "int32"), "input")
        _require(cls.name, scale, ("float32",), "scale")
        if zp.element_type != x.element_type:
            raise GraphError(f"{cls.name} zero point must have the input's element type, got {zp}")
        _scale_and_zero_point(cls.name, x, scale, zp, props.axis)
        return [tensor(x.get_shape(), scale.element_type)]


QUANT_OPS: list[type[GraphOp]] = [
    MatMulIntegerOp,
    ConvIntegerOp,
    ConvIntegerBlockedOp,
    QuantizeLinearOp,
    DequantizeLinearOp,
]

__all__ = [
    "QUANT_OPS",
    "ConvIntegerBlockedOp",
    "ConvIntegerOp",
    "DequantizeLinearOp",
    "LinearQuantOp",
    "MatMulIntegerOp",
    "QuantizeLinearOp",
]
