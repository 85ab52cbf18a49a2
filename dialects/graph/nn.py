"""Graph ops: nn group.

Matrix products (`matmul`, `gemm`), convolutions (`conv`, `conv_transpose`), pooling
(`max_pool`, `max_pool_indices`, `average_pool`, `lp_pool`, `global_average_pool`,
`global_max_pool`), normalizations (`batch_norm`, `instance_norm`, `layer_norm`, `lrn`)
and `softmax`, `log_softmax`, `hardmax`, with ONNX semantics.

Window ops (convolutions and pools) act on `N x C x D1 x ... x Dn` tensors and always
carry explicit `strides`, `pads` and `dilations` (ONNX's `auto_pad` and defaults are
resolved by the importer). `pads` has ONNX's order: all begins, then all ends.
The output size along a spatial axis is

    floor_or_ceil((size + pad_begin + pad_end - dilation * (kernel - 1) - 1) / stride) + 1

where pools with `ceil_mode` round up but drop a last window that would start in the end
padding (onnxruntime's rule).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from xdsl.dialects.builtin import (
    I64,
    BoolAttr,
    DenseArrayBase,
    FloatAttr,
    IntegerAttr,
    TensorType,
    i64,
)
from xdsl.irdl import (
    irdl_op_definition,
    operand_def,
    opt_operand_def,
    prop_def,
    result_def,
)

from mlc.dialects.graph.base import GraphError, GraphOp, Props, broadcast_shapes
from mlc.dialects.graph.types import is_float, is_integer, tensor

# --------------------------------------------------------------------------- helpers


def _require_float(name: str, ty: TensorType, what: str = "operand") -> None:
    if not is_float(ty.element_type):
        raise GraphError(f"{name} expects a floating-point {what}, got {ty}")


def _same_element_type(name: str, types: Sequence[TensorType], what: str) -> None:
    if len({t.element_type for t in types}) > 1:
        shown = ", ".join(str(t.element_type) for t in types)
        raise GraphError(f"{name} {what} must have the same element type, got {shown}")


def check_axes(name: str, axes: Sequence[int], rank: int) -> None:
    """`axes` must be non-empty, normalized (0 <= axis < rank) and strictly increasing."""
    if not axes:
        raise GraphError(f"{name} needs at least one axis")
    for axis in axes:
        if not 0 <= axis < rank:
            raise GraphError(f"{name} axis {axis} is out of range [0, {rank})")
    if any(a >= b for a, b in zip(axes, axes[1:])):
        raise GraphError(f"{name} axes {list(axes)} must be strictly increasing")


def window_output_size(
    size: int,
    kernel: int,
    stride: int,
    dilation: int,
    pad_begin: int,
    pad_end: int,
    ceil_mode: bool = False,
) -> int:
    """Number of window positions along one spatial axis (see the module docstring)."""
    span = size + pad_begin + pad_end - dilation * (kernel - 1) - 1
    if span < 0:
        return 0
    if not ceil_mode:
        return span // stride + 1
    out = -(-span // stride) + 1
    if (out - 1) * stride >= size + pad_begin:
        out -= 1  # the last window would start in the end padding
    return out


def check_window(
    name: str,
    spatial_shape: Sequence[int],
    kernel: Sequence[int],
    props: Props,
    ceil_mode: bool = False,
) -> list[int]:
    """Check `strides`, `pads` and `dilations` against the spatial rank; the output sizes."""
    rank = len(spatial_shape)
    strides = props.ints("strides")
    pads = props.ints("pads")
    dilations = props.ints("dilations")
    for prop, values, expected in (
        ("strides", strides, rank),
        ("dilations", dilations, rank),
        ("pads", pads, 2 * rank),
    ):
        if len(values) != expected:
            raise GraphError(
                f"{name} {prop} has {len(values)} values, expected {expected} "
                f"for {rank} spatial dimension(s)"
            )
    if any(s < 1 for s in strides):
        raise GraphError(f"{name} strides must be positive, got {list(strides)}")
    if any(d < 1 for d in dilations):
        raise GraphError(f"{name} dilations must be positive, got {list(dilations)}")
    if any(p < 0 for p in pads):
        raise GraphError(f"{name} pads must be non-negative, got {list(pads)}")
    if any(k < 1 for k in kernel):
        raise GraphError(f"{name} kernel sizes must be positive, got {list(kernel)}")
    out: list[int] = []
    for d in range(rank):
        n = window_output_size(
            spatial_shape[d],
            kernel[d],
            strides[d],
            dilations[d],
            pads[d],
            pads[rank + d],
            ceil_mode,
        )
        if n < 1:
            raise GraphError(
                f"{name}: the window (kernel {kernel[d]}, dilation {dilations[d]}) does not "
                f"fit spatial dimension {d} of size {spatial_shape[d]} with pads "
                f"({pads[d]}, {pads[rank + d]})"
            )
        out.append(n)
    return out


def _image(name: str, ty: TensorType, what: str = "input") -> tuple[int, ...]:
    shape = tuple(ty.get_shape())
    if len(shape) < 3:
        raise GraphError(
            f"{name} {what} must have rank >= 3 (N x C x D1 ... Dn), got rank {len(shape)}"
        )
    return shape


# --------------------------------------------------------------------------- products


@irdl_op_definition
class MatMulOp(GraphOp):
    """Matrix product with numpy semantics: batch dimensions broadcast, a 1-D operand is
    promoted to a matrix and its unit dimension removed from the result.

    %z = graph.matmul %x, %y : (tensor<5x2x3xf32>, tensor<3x4xf32>) -> tensor<5x2x4xf32>
    """

    name = "graph.matmul"
    lhs = operand_def(TensorType)
    rhs = operand_def(TensorType)
    output = result_def(TensorType)

    @classmethod
    def infer_result_types(
        cls, operand_types: Sequence[TensorType], props: Props
    ) -> list[TensorType]:
        lhs, rhs = operand_types
        _same_element_type(cls.name, [lhs, rhs], "operands")
        if not (is_float(lhs.element_type) or is_integer(lhs.element_type)):
            raise GraphError(f"{cls.name} expects numeric tensors, got {lhs}")
        a, b = tuple(lhs.get_shape()), tuple(rhs.get_shape())
        if not a or not b:
            raise GraphError(f"{cls.name} operands must have rank >= 1")
        a2 = (1, *a) if len(a) == 1 else a
        b2 = (*b, 1) if len(b) == 1 else b
        if a2[-1] != b2[-2]:
            raise GraphError(
                f"{cls.name} contraction dimensions differ: {a} and {b} ({a2[-1]} != {b2[-2]})"
            )
        batch = broadcast_shapes(a2[:-2], b2[:-2])
        shape = [*batch]
        if len(a) > 1:
            shape.append(a2[-2])
        if len(b) > 1:
            shape.append(b2[-1])
        return [tensor(shape, lhs.element_type)]


@irdl_op_definition
class GemmOp(GraphOp):
    """alpha * op(A) @ op(B) + beta * C, op = transpose when `trans_a` / `trans_b`;
    the optional C broadcasts to the M x N result.

    %y = graph.gemm %a, %b, %c {alpha = 1.000000e+00 : f32, beta = 1.000000e+00 : f32, trans_a = false, trans_b = true} : (tensor<2x3xf32>, tensor<4x3xf32>, tensor<4xf32>) -> tensor<2x4xf32>
    """

    name = "graph.gemm"
    a = operand_def(TensorType)
    b = operand_def(TensorType)
    c = opt_operand_def(TensorType)
    output = result_def(TensorType)
    alpha = prop_def(FloatAttr)
    beta = prop_def(FloatAttr)
    trans_a = prop_def(BoolAttr)
    trans_b = prop_def(BoolAttr)

    @classmethod
    def infer_result_types(
        cls, operand_types: Sequence[TensorType], props: Props
    ) -> list[TensorType]:
        if len(operand_types) not in (2, 3):
            raise GraphError(f"{cls.name} takes 2 or 3 operands")
        _same_element_type(cls.name, operand_types, "operands")
        a_ty, b_ty = operand_types[:2]
        if not (is_float(a_ty.element_type) or is_integer(a_ty.element_type)):
            raise GraphError(f"{cls.name} expects numeric tensors, got {a_ty}")
        a, b = tuple(a_ty.get_shape()), tuple(b_ty.get_shape())
        if len(a) != 2 or len(b) != 2:
            raise GraphError(f"{cls.name} A and B must be matrices, got shapes {a} and {b}")
        m, k = (a[1], a[0]) if props.bool("trans_a") else a
        k2, n = (b[1], b[0]) if props.bool("trans_b") else b
        if k != k2:
            raise GraphError(f"{cls.name} contraction dimensions differ: {k} != {k2}")
        if len(operand_types) == 3:
            c = tuple(operand_types[2].get_shape())
            if len(c) > 2 or broadcast_shapes(c, (m, n)) != (m, n):
                raise GraphError(f"{cls.name} C of shape {c} does not broadcast to ({m}, {n})")
        return [tensor((m, n), a_ty.element_type)]


# --------------------------------------------------------------------------- convolution


class _ConvBase(GraphOp):
    input = operand_def(TensorType)
    weight = operand_def(TensorType)
    bias = opt_operand_def(TensorType)
    output = result_def(TensorType)
    strides = prop_def(DenseArrayBase[I64])
    pads = prop_def(DenseArrayBase[I64])
    dilations = prop_def(DenseArrayBase[I64])
    group = prop_def(IntegerAttr[I64])

    @classmethod
    def _common(
        cls, operand_types: Sequence[TensorType], props: Props
    ) -> tuple[tuple[int, ...], tuple[int, ...], int]:
        if len(operand_types) not in (2, 3):
            raise GraphError(f"{cls.name} takes 2 or 3 operands (input, weight, bias)")
        x_ty, w_ty = operand_types[:2]
        _require_float(cls.name, x_ty, "input")
        _same_element_type(cls.name, operand_types, "operands")
        x = _image(cls.name, x_ty)
        w = tuple(w_ty.get_shape())
        if len(w) != len(x):
            raise GraphError(
                f"{cls.name} weight must have the input's rank {len(x)}, got shape {w}"
            )
        group = props.int("group")
        if group < 1:
            raise GraphError(f"{cls.name} group must be positive, got {group}")
        return x, w, group

    @classmethod
    def _check_bias(cls, operand_types: Sequence[TensorType], channels: int) -> None:
        if len(operand_types) == 3 and tuple(operand_types[2].get_shape()) != (channels,):
            raise GraphError(
                f"{cls.name} bias must have shape ({channels},), got {operand_types[2]}"
            )


@irdl_op_definition
class ConvOp(_ConvBase):
    """N-d convolution (cross-correlation): input N x C x D1..Dn, weight M x C/group x
    K1..Kn, optional bias (M); the kernel shape is the weight's.

    %y = graph.conv %x, %w, %b {strides = array<i64: 1, 1>, pads = array<i64: 1, 1, 1, 1>, dilations = array<i64: 1, 1>, group = 1 : i64} : (tensor<1x3x8x8xf32>, tensor<4x3x3x3xf32>, tensor<4xf32>) -> tensor<1x4x8x8xf32>
    """

    name = "graph.conv"

    @classmethod
    def infer_result_types(
        cls, operand_types: Sequence[TensorType], props: Props
    ) -> list[TensorType]:
        x, w, group = cls._common(operand_types, props)
        n, c = x[:2]
        m, cg = w[:2]
        if c != cg * group:
            raise GraphError(
                f"{cls.name} input has {c} channels, but the weight expects "
                f"{cg} x group {group} = {cg * group}"
            )
        if m % group:
            raise GraphError(f"{cls.name} {m} output channels are not divisible by group {group}")
        cls._check_bias(operand_types, m)
        out = check_window(cls.name, x[2:], w[2:], props)
        return [tensor((n, m, *out), operand_types[0].element_type)]


@irdl_op_definition
class ConvTransposeOp(_ConvBase):
    """N-d transposed convolution: input N x C x D1..Dn, weight C x M/group x K1..Kn,
    optional bias (M). Output size: stride * (size - 1) + output_padding +
    dilation * (kernel - 1) + 1 - pad_begin - pad_end.

    %y = graph.conv_transpose %x, %w {strides = array<i64: 2, 2>, pads = array<i64: 0, 0, 0, 0>, dilations = array<i64: 1, 1>, output_padding = array<i64: 1, 1>, group = 1 : i64} : (tensor<1x3x4x4xf32>, tensor<3x2x3x3xf32>) -> tensor<1x2x10x10xf32>
    """

    name = "graph.conv_transpose"
    output_padding = prop_def(DenseArrayBase[I64])

    @classmethod
    def infer_result_types(
        cls, operand_types: Sequence[TensorType], props: Props
    ) -> list[TensorType]:
        x, w, group = cls._common(operand_types, props)
        n, c = x[:2]
        if w[0] != c:
            raise GraphError(
                f"{cls.name} input has {c} channels, but the weight's first dimension is {w[0]}"
            )
        if c % group:
            raise GraphError(f"{cls.name} {c} input channels are not divisible by group {group}")
        m = w[1] * group
        cls._check_bias(operand_types, m)
        rank = len(x) - 2
        strides, pads = props.ints("strides"), props.ints("pads")
        dilations, out_pad = props.ints("dilations"), props.ints("output_padding")
        check_window(cls.name, [1] * rank, [1] * rank, props)  # lengths and signs
        if len(out_pad) != rank or any(p < 0 for p in out_pad):
            raise GraphError(
                f"{cls.name} output_padding must have {rank} non-negative values, "
                f"got {list(out_pad)}"
            )
        out: list[int] = []
        for d in range(rank):
            if w[2 + d] < 1:
                raise GraphError(f"{cls.name} kernel sizes must be positive")
            size = (
                strides[d] * (x[2 + d] - 1)
                + out_pad[d]
                + dilations[d] * (w[2 + d] - 1)
                + 1
                - pads[d]
                - pads[rank + d]
            )
            if size < 1:
                raise GraphError(f"{cls.name}: pads leave no output along spatial axis {d}")
            out.append(size)
        return [tensor((n, m, *out), operand_types[0].element_type)]


# --------------------------------------------------------------------------- pooling


class PoolOp(GraphOp):
    """Base of windowed pools over the spatial axes of N x C x D1..Dn tensors."""

    input = operand_def(TensorType)
    output = result_def(TensorType)
    kernel_shape = prop_def(DenseArrayBase[I64])
    strides = prop_def(DenseArrayBase[I64])
    pads = prop_def(DenseArrayBase[I64])
    dilations = prop_def(DenseArrayBase[I64])
    ceil_mode = prop_def(BoolAttr)

    #: max pooling is defined on integers too
    ALLOWS_INTEGER: ClassVar[bool] = False

    @classmethod
    def output_shape(cls, operand_types: Sequence[TensorType], props: Props) -> tuple[int, ...]:
        (ty,) = operand_types
        if not (is_float(ty.element_type) or (cls.ALLOWS_INTEGER and is_integer(ty.element_type))):
            kinds = "numeric" if cls.ALLOWS_INTEGER else "floating-point"
            raise GraphError(f"{cls.name} expects a {kinds} input, got {ty}")
        x = _image(cls.name, ty)
        kernel = props.ints("kernel_shape")
        if len(kernel) != len(x) - 2:
            raise GraphError(
                f"{cls.name} kernel_shape has {len(kernel)} values, expected {len(x) - 2}"
            )
        out = check_window(cls.name, x[2:], kernel, props, props.bool("ceil_mode"))
        return (*x[:2], *out)

    @classmethod
    def infer_result_types(
        cls, operand_types: Sequence[TensorType], props: Props
    ) -> list[TensorType]:
        return [tensor(cls.output_shape(operand_types, props), operand_types[0].element_type)]


@irdl_op_definition
class MaxPoolOp(PoolOp):
    """Maximum over each window; padding never wins.

    %y = graph.max_pool %x {kernel_shape = array<i64: 2, 2>, strides = array<i64: 2, 2>, pads = array<i64: 0, 0, 0, 0>, dilations = array<i64: 1, 1>, ceil_mode = false} : (tensor<1x3x8x8xf32>) -> tensor<1x3x4x4xf32>
    """

    name = "graph.max_pool"
    ALLOWS_INTEGER: ClassVar[bool] = True


@irdl_op_definition
class MaxPoolIndicesOp(PoolOp):
    """The flat index (into the N x C x D1..Dn input) of each window's maximum, the first
    in row-major window order on ties; `storage_order = 1` numbers the spatial axes
    column-major (ONNX MaxPool's Indices output).

    %i = graph.max_pool_indices %x {kernel_shape = array<i64: 2, 2>, strides = array<i64: 2, 2>, pads = array<i64: 0, 0, 0, 0>, dilations = array<i64: 1, 1>, ceil_mode = false, storage_order = 0 : i64} : (tensor<1x3x8x8xf32>) -> tensor<1x3x4x4xi64>
    """

    name = "graph.max_pool_indices"
    storage_order = prop_def(IntegerAttr[I64])
    ALLOWS_INTEGER: ClassVar[bool] = True

    @classmethod
    def infer_result_types(
        cls, operand_types: Sequence[TensorType], props: Props
    ) -> list[TensorType]:
        if props.int("storage_order") not in (0, 1):
            raise GraphError(f"{cls.name} storage_order must be 0 or 1")
        return [tensor(cls.output_shape(operand_types, props), i64)]


@irdl_op_definition
class AveragePoolOp(PoolOp):
    """Mean over each window. The divisor counts the window's elements inside the input,
    or with `count_include_pad` those inside the explicitly padded input.

    %y = graph.average_pool %x {kernel_shape = array<i64: 3, 3>, strides = array<i64: 1, 1>, pads = array<i64: 1, 1, 1, 1>, dilations = array<i64: 1, 1>, ceil_mode = false, count_include_pad = false} : (tensor<1x3x8x8xf32>) -> tensor<1x3x8x8xf32>
    """

    name = "graph.average_pool"
    count_include_pad = prop_def(BoolAttr)


@irdl_op_definition
class LpPoolOp(PoolOp):
    """(sum of |x| ** p over each window) ** (1 / p); padding counts as zeros.

    %y = graph.lp_pool %x {kernel_shape = array<i64: 2, 2>, strides = array<i64: 1, 1>, pads = array<i64: 0, 0, 0, 0>, dilations = array<i64: 1, 1>, ceil_mode = false, p = 2 : i64} : (tensor<1x3x8x8xf32>) -> tensor<1x3x7x7xf32>
    """

    name = "graph.lp_pool"
    p = prop_def(IntegerAttr[I64])

    @classmethod
    def infer_result_types(
        cls, operand_types: Sequence[TensorType], props: Props
    ) -> list[TensorType]:
        if props.int("p") < 1:
            raise GraphError(f"{cls.name} p must be positive, got {props.int('p')}")
        return super().infer_result_types(operand_types, props)


class GlobalPoolOp(GraphOp):
    """Base of pools over all spatial axes: N x C x D1..Dn -> N x C x 1..1."""

    input = operand_def(TensorType)
    output = result_def(TensorType)

    @classmethod
    def infer_result_types(
        cls, operand_types: Sequence[TensorType], props: Props
    ) -> list[TensorType]:
        (ty,) = operand_types
        _require_float(cls.name, ty, "input")
        shape = tuple(ty.get_shape())
        if len(shape) < 2:
            raise GraphError(f"{cls.name} input must have rank >= 2 (N x C x ...), got {ty}")
        return [tensor((*shape[:2], *[1] * (len(shape) - 2)), ty.element_type)]


@irdl_op_definition
class GlobalAveragePoolOp(GlobalPoolOp):
    """Mean over all spatial axes.

    %y = graph.global_average_pool %x : (tensor<1x3x8x8xf32>) -> tensor<1x3x1x1xf32>
    """

    name = "graph.global_average_pool"


@irdl_op_definition
class GlobalMaxPoolOp(GlobalPoolOp):
    """Maximum over all spatial axes.

    %y = graph.global_max_pool %x : (tensor<1x3x8x8xf32>) -> tensor<1x3x1x1xf32>
    """

    name = "graph.global_max_pool"


# --------------------------------------------------------------------------- normalization


@irdl_op_definition
class BatchNormOp(GraphOp):
    """Inference batch normalization over axis 1 of N x C x ...:
    (x - mean) / sqrt(var + epsilon) * scale + bias, the four parameters of shape (C).

    %y = graph.batch_norm %x, %scale, %bias, %mean, %var {epsilon = 1.000000e-05 : f32} : (tensor<2x3x4x4xf32>, tensor<3xf32>, tensor<3xf32>, tensor<3xf32>, tensor<3xf32>) -> tensor<2x3x4x4xf32>
    """

    name = "graph.batch_norm"
    input = operand_def(TensorType)
    scale = operand_def(TensorType)
    bias = operand_def(TensorType)
    mean = operand_def(TensorType)
    var = operand_def(TensorType)
    output = result_def(TensorType)
    epsilon = prop_def(FloatAttr)

    @classmethod
    def infer_result_types(
        cls, operand_types: Sequence[TensorType], props: Props
    ) -> list[TensorType]:
        x_ty, *params = operand_types
        _require_float(cls.name, x_ty, "input")
        x = tuple(x_ty.get_shape())
        if len(x) < 2:
            raise GraphError(f"{cls.name} input must have rank >= 2 (N x C x ...), got {x_ty}")
        for what, ty in zip(("scale", "bias", "mean", "var"), params):
            _require_float(cls.name, ty, what)
            if tuple(ty.get_shape()) != (x[1],):
                raise GraphError(f"{cls.name} {what} must have shape ({x[1]},), got {ty}")
        return [x_ty]


@irdl_op_definition
class InstanceNormOp(GraphOp):
    """Normalize each (n, c) slice of N x C x D1..Dn over its spatial axes:
    (x - mean) / sqrt(var + epsilon) * scale[c] + bias[c].

    %y = graph.instance_norm %x, %scale, %bias {epsilon = 1.000000e-05 : f32} : (tensor<2x3x4x4xf32>, tensor<3xf32>, tensor<3xf32>) -> tensor<2x3x4x4xf32>
    """

    name = "graph.instance_norm"
    input = operand_def(TensorType)
    scale = operand_def(TensorType)
    bias = operand_def(TensorType)
    output = result_def(TensorType)
    epsilon = prop_def(FloatAttr)

    @classmethod
    def infer_result_types(
        cls, operand_types: Sequence[TensorType], props: Props
    ) -> list[TensorType]:
        x_ty, scale, bias = operand_types
        _require_float(cls.name, x_ty, "input")
        _same_element_type(cls.name, operand_types, "operands")
        x = _image(cls.name, x_ty)
        for what, ty in (("scale", scale), ("bias", bias)):
            if tuple(ty.get_shape()) != (x[1],):
                raise GraphError(f"{cls.name} {what} must have shape ({x[1]},), got {ty}")
        return [x_ty]


@irdl_op_definition
class LayerNormOp(GraphOp):
    """Normalize over the axes `axis`..rank-1: (x - mean) / sqrt(var + epsilon) * scale
    + bias, scale and the optional bias broadcast to x's shape from `axis` on.

    %y = graph.layer_norm %x, %scale, %bias {axis = 2 : i64, epsilon = 1.000000e-05 : f32} : (tensor<2x3x4xf32>, tensor<4xf32>, tensor<4xf32>) -> tensor<2x3x4xf32>
    """

    name = "graph.layer_norm"
    input = operand_def(TensorType)
    scale = operand_def(TensorType)
    bias = opt_operand_def(TensorType)
    output = result_def(TensorType)
    axis = prop_def(IntegerAttr[I64])
    epsilon = prop_def(FloatAttr)

    @classmethod
    def infer_result_types(
        cls, operand_types: Sequence[TensorType], props: Props
    ) -> list[TensorType]:
        if len(operand_types) not in (2, 3):
            raise GraphError(f"{cls.name} takes 2 or 3 operands (input, scale, bias)")
        x_ty = operand_types[0]
        _require_float(cls.name, x_ty, "input")
        _same_element_type(cls.name, operand_types, "operands")
        x = tuple(x_ty.get_shape())
        axis = props.int("axis")
        if not 0 <= axis < len(x):
            raise GraphError(f"{cls.name} axis {axis} is out of range [0, {len(x)})")
        normalized = x[axis:]
        for what, ty in zip(("scale", "bias"), operand_types[1:]):
            shape = tuple(ty.get_shape())
            ok = len(shape) <= len(normalized)
            if ok:
                try:
                    ok = broadcast_shapes(shape, normalized) == normalized
                except GraphError:
                    ok = False
            if not ok:
                raise GraphError(
                    f"{cls.name} {what} of shape {shape} does not broadcast to the "
                    f"normalized shape {normalized}"
                )
        return [x_ty]


@irdl_op_definition
class LrnOp(GraphOp):
    """Local response normalization across channels (axis 1):
    x / (bias + alpha / size * sum of x ** 2 over channels [c - (size-1)//2, c + size//2]) ** beta.

    %y = graph.lrn %x {size = 3 : i64, alpha = 1.000000e-04 : f32, beta = 7.500000e-01 : f32, bias = 1.000000e+00 : f32} : (tensor<1x5x4x4xf32>) -> tensor<1x5x4x4xf32>
    """

    name = "graph.lrn"
    input = operand_def(TensorType)
    output = result_def(TensorType)
    size = prop_def(IntegerAttr[I64])
    alpha = prop_def(FloatAttr)
    beta = prop_def(FloatAttr)
    bias = prop_def(FloatAttr)

    @classmethod
    def infer_result_types(
        cls, operand_types: Sequence[TensorType], props: Props
    ) -> list[TensorType]:
        (ty,) = operand_types
        _require_float(cls.name, ty, "input")
        _image(cls.name, ty)
        if props.int("size") < 1:
            raise GraphError(f"{cls.name} size must be positive, got {props.int('size')}")
        return [ty]


# --------------------------------------------------------------------------- softmax


class SoftmaxLikeOp(GraphOp):
    """Base of normalizations over the axes `axes` (one axis since ONNX opset 13; all axes
    from `axis` on before, ONNX's "coerce to 2-D" semantics)."""

    input = operand_def(TensorType)
    output = result_def(TensorType)
    axes = prop_def(DenseArrayBase[I64])

    @classmethod
    def infer_result_types(
        cls, operand_types: Sequence[TensorType], props: Props
    ) -> list[TensorType]:
        (ty,) = operand_types
        _require_float(cls.name, ty, "input")
        check_axes(cls.name, props.ints("axes"), len(ty.get_shape()))
        return [ty]


@irdl_op_definition
class SoftmaxOp(SoftmaxLikeOp):
    """exp(x - max) / sum(exp(x - max)) over `axes`.

    %y = graph.softmax %x {axes = array<i64: 1>} : (tensor<2x3xf32>) -> tensor<2x3xf32>
    """

    name = "graph.softmax"


@irdl_op_definition
class LogSoftmaxOp(SoftmaxLikeOp):
    """x - max - log(sum(exp(x - max))) over `axes`.

    %y = graph.log_softmax %x {axes = array<i64: 1>} : (tensor<2x3xf32>) -> tensor<2x3xf32>
    """

    name = "graph.log_softmax"


@irdl_op_definition
class HardmaxOp(SoftmaxLikeOp):
    """1 at the first maximum over `axes` (row-major), 0 elsewhere.

    %y = graph.hardmax %x {axes = array<i64: 1>} : (tensor<2x3xf32>) -> tensor<2x3xf32>
    """

    name = "graph.hardmax"


NN_OPS: list[type[GraphOp]] = [
    MatMulOp,
    GemmOp,
    ConvOp,
    ConvTransposeOp,
    MaxPoolOp,
    MaxPoolIndicesOp,
    AveragePoolOp,
    LpPoolOp,
    GlobalAveragePoolOp,
    GlobalMaxPoolOp,
    BatchNormOp,
    InstanceNormOp,
    LayerNormOp,
    LrnOp,
    SoftmaxOp,
    LogSoftmaxOp,
    HardmaxOp,
]

__all__ = [
    "NN_OPS",
    "MatMulOp",
    "GemmOp",
    "ConvOp",
    "ConvTransposeOp",
    "MaxPoolOp",
    "MaxPoolIndicesOp",
    "AveragePoolOp",
    "LpPoolOp",
    "GlobalAveragePoolOp",
    "GlobalMaxPoolOp",
    "BatchNormOp",
    "InstanceNormOp",
    "LayerNormOp",
    "LrnOp",
    "SoftmaxOp",
    "LogSoftmaxOp",
    "HardmaxOp",
]
