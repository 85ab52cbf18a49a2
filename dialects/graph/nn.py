"""Graph ops: nn group.

Matrix products (`matmul`, `gemm`, `einsum`), convolutions (`conv`, `conv_transpose`),
pooling (`max_pool`, `max_pool_indices`, `average_pool`, `lp_pool`, `global_average_pool`,
`global_max_pool`), normalizations (`batch_norm`, `instance_norm`, `layer_norm`,
`rms_norm`, `lrn`) and `softmax`, `log_softmax`, `hardmax`, with ONNX semantics.

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
from typing import ClassVar, Self

from xdsl.dialects.builtin import TensorType, i64
from xdsl.irdl import (
    irdl_op_definition,
    operand_def,
    opt_operand_def,
    result_def,
    var_operand_def,
)

from mlc.dialects.graph.base import (
    BoolProp,
    FloatProp,
    GraphError,
    GraphOp,
    IntProp,
    IntsProp,
    StrProp,
    broadcast_shapes,
)
from mlc.dialects.graph.constraints import (
    IMAGE,
    N_C,
    AxesIn,
    AxisIn,
    Constraints,
    Float,
    MinRank,
    Numeric,
    OneOf,
    PerChannel,
    Positive,
    SameElementType,
    SameRank,
    Window,
)
from mlc.dialects.graph.types import tensor

# --------------------------------------------------------------------------- helpers


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


def window_output_sizes(
    name: str,
    spatial_shape: Sequence[int],
    kernel: Sequence[int],
    strides: Sequence[int],
    pads: Sequence[int],
    dilations: Sequence[int],
    ceil_mode: bool = False,
) -> list[int]:
    """The output sizes of a window op over `spatial_shape` whose window properties passed
    the `Window` constraint: every kernel size positive, every window fitting."""
    if any(k < 1 for k in kernel):
        raise GraphError(f"{name} kernel sizes must be positive, got {list(kernel)}")
    rank = len(spatial_shape)
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


def check_groups(name: str, channels: int, weight_channels: int, outputs: int, group: int) -> None:
    """A grouped convolution's input has `weight_channels` x `group` channels, and its
    `outputs` channels split evenly into the groups."""
    if channels != weight_channels * group:
        raise GraphError(
            f"{name} input has {channels} channels, but the weight expects "
            f"{weight_channels} x group {group} = {weight_channels * group}"
        )
    if outputs % group:
        raise GraphError(f"{name} {outputs} output channels are not divisible by group {group}")


def check_bias(name: str, operand_types: Sequence[TensorType], channels: int) -> None:
    """The optional third operand (a convolution's bias) has shape (channels,)."""
    if len(operand_types) == 3 and tuple(operand_types[2].get_shape()) != (channels,):
        raise GraphError(f"{name} bias must have shape ({channels},), got {operand_types[2]}")


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
    CONSTRAINTS: ClassVar[Constraints] = (
        SameElementType(),
        Numeric(),
        MinRank("lhs", 1),
        MinRank("rhs", 1),
    )

    @classmethod
    def infer_result_types(
        cls, operand_types: Sequence[TensorType], props: Self
    ) -> list[TensorType]:
        lhs, rhs = operand_types
        a, b = tuple(lhs.get_shape()), tuple(rhs.get_shape())
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
    alpha = FloatProp()
    beta = FloatProp()
    trans_a = BoolProp()
    trans_b = BoolProp()
    CONSTRAINTS: ClassVar[Constraints] = (SameElementType(), Numeric())

    @classmethod
    def infer_result_types(
        cls, operand_types: Sequence[TensorType], props: Self
    ) -> list[TensorType]:
        a_ty, b_ty = operand_types[:2]
        a, b = tuple(a_ty.get_shape()), tuple(b_ty.get_shape())
        if len(a) != 2 or len(b) != 2:
            raise GraphError(f"{cls.name} A and B must be matrices, got shapes {a} and {b}")
        m, k = (a[1], a[0]) if props.trans_a else a
        k2, n = (b[1], b[0]) if props.trans_b else b
        if k != k2:
            raise GraphError(f"{cls.name} contraction dimensions differ: {k} != {k2}")
        if len(operand_types) == 3:
            c = tuple(operand_types[2].get_shape())
            if len(c) > 2 or broadcast_shapes(c, (m, n)) != (m, n):
                raise GraphError(f"{cls.name} C of shape {c} does not broadcast to ({m}, {n})")
        return [tensor((m, n), a_ty.element_type)]


def parse_einsum(equation: str) -> tuple[list[str], str]:
    """The operand terms and the output term of an explicit einsum equation
    ("ij,jk->ik": (["ij", "jk"], "ik")); letters only, no ellipsis."""
    lhs, arrow, out = equation.partition("->")
    if not arrow:
        raise GraphError(f"einsum equation {equation!r} has no '->' (it must be explicit)")
    terms = lhs.split(",")
    for term in (*terms, out):
        if not all(c.isascii() and c.isalpha() for c in term):
            raise GraphError(f"einsum equation {equation!r}: terms must be letters only")
    if len(set(out)) != len(out):
        raise GraphError(f"einsum equation {equation!r} repeats a letter in its output")
    if set(out) - set("".join(terms)):
        raise GraphError(f"einsum equation {equation!r}: an output letter is in no operand")
    return terms, out


def einsum_sizes(
    name: str, equation: str, shapes: Sequence[Sequence[int]]
) -> tuple[list[str], str, dict[str, int]]:
    """The terms, the output and each letter's size (size-1 axes broadcast)."""
    terms, out = parse_einsum(equation)
    if len(terms) != len(shapes):
        raise GraphError(
            f"{name} equation {equation!r} has {len(terms)} operand terms, got {len(shapes)} operands"
        )
    sizes: dict[str, int] = {}
    for term, shape in zip(terms, shapes):
        if len(term) != len(shape):
            raise GraphError(
                f"{name} term {term!r} does not match an operand of shape {tuple(shape)}"
            )
        for letter, dim in zip(term, shape):
            known = sizes.get(letter, 1)
            if dim != 1 and known != 1 and dim != known:
                raise GraphError(f"{name} letter {letter!r} has sizes {known} and {dim}")
            sizes[letter] = dim if dim != 1 else known
    return terms, out, sizes


@irdl_op_definition
class EinsumOp(GraphOp):
    """Einstein summation: the product of the operands summed over the letters that are
    not in the output. `equation` is explicit ("bij,bjk->bik": letters only, no ellipsis);
    a letter repeated in one term takes a diagonal, and a letter's size-1 axes broadcast.

    %y = graph.einsum %a, %b {equation = "bij,bjk->bik"} : (tensor<2x3x4xf32>, tensor<2x4x5xf32>) -> tensor<2x3x5xf32>
    """

    name = "graph.einsum"
    inputs = var_operand_def(TensorType)
    output = result_def(TensorType)
    equation = StrProp()
    CONSTRAINTS: ClassVar[Constraints] = (SameElementType(), Numeric())

    @classmethod
    def infer_result_types(
        cls, operand_types: Sequence[TensorType], props: Self
    ) -> list[TensorType]:
        shapes = [tuple(t.get_shape()) for t in operand_types]
        _, out, sizes = einsum_sizes(cls.name, props.equation, shapes)
        return [tensor([sizes[c] for c in out], operand_types[0].element_type)]


# --------------------------------------------------------------------------- convolution


class _ConvBase(GraphOp):
    """Operands, properties and shared checks of `conv` and `conv_transpose`."""

    input = operand_def(TensorType)
    weight = operand_def(TensorType)
    bias = opt_operand_def(TensorType)
    output = result_def(TensorType)
    strides = IntsProp()
    pads = IntsProp()
    dilations = IntsProp()
    group = IntProp()
    CONSTRAINTS: ClassVar[Constraints] = (
        Float("input"),
        SameElementType(),
        MinRank("input", 3, IMAGE),
        SameRank("weight", "input"),
        Positive("group"),
        Window(),
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
        cls, operand_types: Sequence[TensorType], props: Self
    ) -> list[TensorType]:
        x, w = (tuple(t.get_shape()) for t in operand_types[:2])
        (n, c), (m, cg) = x[:2], w[:2]
        check_groups(cls.name, c, cg, m, props.group)
        check_bias(cls.name, operand_types, m)
        out = window_output_sizes(
            cls.name, x[2:], w[2:], props.strides, props.pads, props.dilations
        )
        return [tensor((n, m, *out), operand_types[0].element_type)]


@irdl_op_definition
class ConvTransposeOp(_ConvBase):
    """N-d transposed convolution: input N x C x D1..Dn, weight C x M/group x K1..Kn,
    optional bias (M). Output size: stride * (size - 1) + output_padding +
    dilation * (kernel - 1) + 1 - pad_begin - pad_end.

    %y = graph.conv_transpose %x, %w {strides = array<i64: 2, 2>, pads = array<i64: 0, 0, 0, 0>, dilations = array<i64: 1, 1>, output_padding = array<i64: 1, 1>, group = 1 : i64} : (tensor<1x3x4x4xf32>, tensor<3x2x3x3xf32>) -> tensor<1x2x10x10xf32>
    """

    name = "graph.conv_transpose"
    output_padding = IntsProp()

    @classmethod
    def infer_result_types(
        cls, operand_types: Sequence[TensorType], props: Self
    ) -> list[TensorType]:
        x, w = (tuple(t.get_shape()) for t in operand_types[:2])
        n, c = x[:2]
        group = props.group
        if w[0] != c:
            raise GraphError(
                f"{cls.name} input has {c} channels, but the weight's first dimension is {w[0]}"
            )
        if c % group:
            raise GraphError(f"{cls.name} {c} input channels are not divisible by group {group}")
        m = w[1] * group
        check_bias(cls.name, operand_types, m)
        rank = len(x) - 2
        strides, pads, dilations = props.strides, props.pads, props.dilations
        out_pad = props.output_padding
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
    kernel_shape = IntsProp()
    strides = IntsProp()
    pads = IntsProp()
    dilations = IntsProp()
    ceil_mode = BoolProp()
    CONSTRAINTS: ClassVar[Constraints] = (
        Float("input"),
        MinRank("input", 3, IMAGE),
        Window(kernel=True),
    )

    @classmethod
    def output_shape(cls, operand_types: Sequence[TensorType], props: Self) -> tuple[int, ...]:
        x = tuple(operand_types[0].get_shape())
        out = window_output_sizes(
            cls.name,
            x[2:],
            props.kernel_shape,
            props.strides,
            props.pads,
            props.dilations,
            props.ceil_mode,
        )
        return (*x[:2], *out)

    @classmethod
    def infer_result_types(
        cls, operand_types: Sequence[TensorType], props: Self
    ) -> list[TensorType]:
        return [tensor(cls.output_shape(operand_types, props), operand_types[0].element_type)]


#: max pooling (and its indices) is defined on integers too
_NUMERIC_POOL: Constraints = (Numeric("input"), *PoolOp.CONSTRAINTS[1:])


@irdl_op_definition
class MaxPoolOp(PoolOp):
    """Maximum over each window; padding never wins.

    %y = graph.max_pool %x {kernel_shape = array<i64: 2, 2>, strides = array<i64: 2, 2>, pads = array<i64: 0, 0, 0, 0>, dilations = array<i64: 1, 1>, ceil_mode = false} : (tensor<1x3x8x8xf32>) -> tensor<1x3x4x4xf32>
    """

    name = "graph.max_pool"
    CONSTRAINTS: ClassVar[Constraints] = _NUMERIC_POOL


@irdl_op_definition
class MaxPoolIndicesOp(PoolOp):
    """The flat index (into the N x C x D1..Dn input) of each window's maximum, the first
    in row-major window order on ties; `storage_order = 1` numbers the spatial axes
    column-major (ONNX MaxPool's Indices output).

    %i = graph.max_pool_indices %x {kernel_shape = array<i64: 2, 2>, strides = array<i64: 2, 2>, pads = array<i64: 0, 0, 0, 0>, dilations = array<i64: 1, 1>, ceil_mode = false, storage_order = 0 : i64} : (tensor<1x3x8x8xf32>) -> tensor<1x3x4x4xi64>
    """

    name = "graph.max_pool_indices"
    storage_order = IntProp()
    CONSTRAINTS: ClassVar[Constraints] = (OneOf("storage_order", (0, 1)), *_NUMERIC_POOL)

    @classmethod
    def infer_result_types(
        cls, operand_types: Sequence[TensorType], props: Self
    ) -> list[TensorType]:
        return [tensor(cls.output_shape(operand_types, props), i64)]


@irdl_op_definition
class AveragePoolOp(PoolOp):
    """Mean over each window. The divisor counts the window's elements inside the input,
    or with `count_include_pad` those inside the explicitly padded input.

    %y = graph.average_pool %x {kernel_shape = array<i64: 3, 3>, strides = array<i64: 1, 1>, pads = array<i64: 1, 1, 1, 1>, dilations = array<i64: 1, 1>, ceil_mode = false, count_include_pad = false} : (tensor<1x3x8x8xf32>) -> tensor<1x3x8x8xf32>
    """

    name = "graph.average_pool"
    count_include_pad = BoolProp()


@irdl_op_definition
class LpPoolOp(PoolOp):
    """(sum of |x| ** p over each window) ** (1 / p); padding counts as zeros.

    %y = graph.lp_pool %x {kernel_shape = array<i64: 2, 2>, strides = array<i64: 1, 1>, pads = array<i64: 0, 0, 0, 0>, dilations = array<i64: 1, 1>, ceil_mode = false, p = 2 : i64} : (tensor<1x3x8x8xf32>) -> tensor<1x3x7x7xf32>
    """

    name = "graph.lp_pool"
    p = IntProp()
    CONSTRAINTS: ClassVar[Constraints] = (Positive("p"), *PoolOp.CONSTRAINTS)


class GlobalPoolOp(GraphOp):
    """Base of pools over all spatial axes: N x C x D1..Dn -> N x C x 1..1."""

    input = operand_def(TensorType)
    output = result_def(TensorType)
    CONSTRAINTS: ClassVar[Constraints] = (Float("input"), MinRank("input", 2, N_C))

    @classmethod
    def infer_result_types(
        cls, operand_types: Sequence[TensorType], props: Self
    ) -> list[TensorType]:
        (ty,) = operand_types
        shape = tuple(ty.get_shape())
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
    epsilon = FloatProp()
    CONSTRAINTS: ClassVar[Constraints] = (
        Float("input", "scale", "bias", "mean", "var"),
        MinRank("input", 2, N_C),
        PerChannel("scale", "bias", "mean", "var"),
    )

    @classmethod
    def infer_result_types(
        cls, operand_types: Sequence[TensorType], props: Self
    ) -> list[TensorType]:
        return [operand_types[0]]


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
    epsilon = FloatProp()
    CONSTRAINTS: ClassVar[Constraints] = (
        Float("input"),
        SameElementType(),
        MinRank("input", 3, IMAGE),
        PerChannel("scale", "bias"),
    )

    @classmethod
    def infer_result_types(
        cls, operand_types: Sequence[TensorType], props: Self
    ) -> list[TensorType]:
        return [operand_types[0]]


def check_broadcasts_to_normalized(
    name: str, what: str, shape: tuple[int, ...], normalized: tuple[int, ...]
) -> None:
    """A normalization's `what` operand of `shape` must broadcast to the normalized shape
    (the input's axes from `axis` on) without changing it."""
    ok = len(shape) <= len(normalized)
    if ok:
        try:
            ok = broadcast_shapes(shape, normalized) == normalized
        except GraphError:
            ok = False
    if not ok:
        raise GraphError(
            f"{name} {what} of shape {shape} does not broadcast to the normalized shape "
            f"{normalized}"
        )


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
    axis = IntProp()
    epsilon = FloatProp()
    CONSTRAINTS: ClassVar[Constraints] = (
        Float("input"),
        SameElementType(),
        AxisIn("axis", "input"),
    )

    @classmethod
    def infer_result_types(
        cls, operand_types: Sequence[TensorType], props: Self
    ) -> list[TensorType]:
        x_ty = operand_types[0]
        normalized = tuple(x_ty.get_shape())[props.axis :]
        for what, ty in zip(("scale", "bias"), operand_types[1:]):
            check_broadcasts_to_normalized(cls.name, what, tuple(ty.get_shape()), normalized)
        return [x_ty]


@irdl_op_definition
class RmsNormOp(GraphOp):
    """Normalize over the axes `axis`..rank-1 by the root mean square:
    x / sqrt(mean(x * x) + epsilon) * scale, scale broadcast to x's shape from `axis` on.

    %y = graph.rms_norm %x, %scale {axis = 2 : i64, epsilon = 1.000000e-05 : f32} : (tensor<2x3x4xf32>, tensor<4xf32>) -> tensor<2x3x4xf32>
    """

    name = "graph.rms_norm"
    input = operand_def(TensorType)
    scale = operand_def(TensorType)
    output = result_def(TensorType)
    axis = IntProp()
    epsilon = FloatProp()
    CONSTRAINTS: ClassVar[Constraints] = (
        Float("input"),
        SameElementType(),
        AxisIn("axis", "input"),
    )

    @classmethod
    def infer_result_types(
        cls, operand_types: Sequence[TensorType], props: Self
    ) -> list[TensorType]:
        x_ty, scale = operand_types
        normalized = tuple(x_ty.get_shape())[props.axis :]
        check_broadcasts_to_normalized(cls.name, "scale", tuple(scale.get_shape()), normalized)
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
    size = IntProp()
    alpha = FloatProp()
    beta = FloatProp()
    bias = FloatProp()
    CONSTRAINTS: ClassVar[Constraints] = (
        Float("input"),
        MinRank("input", 3, IMAGE),
        Positive("size"),
    )

    @classmethod
    def infer_result_types(
        cls, operand_types: Sequence[TensorType], props: Self
    ) -> list[TensorType]:
        return [operand_types[0]]


# --------------------------------------------------------------------------- softmax


class SoftmaxLikeOp(GraphOp):
    """Base of normalizations over the axes `axes` (one axis since ONNX opset 13; all axes
    from `axis` on before, ONNX's "coerce to 2-D" semantics)."""

    input = operand_def(TensorType)
    output = result_def(TensorType)
    axes = IntsProp()
    CONSTRAINTS: ClassVar[Constraints] = (
        Float("input"),
        AxesIn("axes", "input", may_be_empty=False),
    )

    @classmethod
    def infer_result_types(
        cls, operand_types: Sequence[TensorType], props: Self
    ) -> list[TensorType]:
        return [operand_types[0]]


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
    RmsNormOp,
    LrnOp,
    SoftmaxOp,
    LogSoftmaxOp,
    HardmaxOp,
    EinsumOp,
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
    "RmsNormOp",
    "EinsumOp",
    "einsum_sizes",
    "parse_einsum",
    "LrnOp",
    "SoftmaxOp",
    "LogSoftmaxOp",
    "HardmaxOp",
]
