"""Graph ops: reduce group.

Reductions over an explicit set of axes (`reduce_sum`, `reduce_mean`, `reduce_max`, ...),
index reductions along one axis (`argmax`, `argmin`), running reductions along one axis
(`cumsum`, `cumprod`) and the `k` largest or smallest elements along one axis (`top_k`),
with ONNX semantics.

`axes` is always explicit: normalized (non-negative), strictly increasing and in range.
An empty `axes` reduces over no axis, so each element is reduced on its own:
`reduce_sum` is then the identity and `reduce_sum_square` is `x * x` (ONNX's
`noop_with_empty_axes = 1`). Reducing an axis of size 0 gives the reduction's identity
value (ONNX's empty-set semantics): 0 for sums, 1 for products, -inf / the least integer
for max, +inf / the greatest integer for min, -inf for the log-sums (ONNX leaves the
mean undefined; it is 0, as in onnxruntime).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar, Self

from xdsl.dialects.builtin import TensorType, i64
from xdsl.irdl import irdl_op_definition, operand_def, result_def

from mlc.dialects.graph.base import BoolProp, GraphError, GraphOp, IntProp, IntsProp
from mlc.dialects.graph.constraints import AxesIn, AxisIn, Constraints, Numeric
from mlc.dialects.graph.types import tensor

__all__ = [
    "REDUCE_OPS",
    "ArgMaxOp",
    "ArgMinOp",
    "ArgReduceOp",
    "CumProdOp",
    "CumSumOp",
    "ReduceL1Op",
    "ReduceL2Op",
    "ReduceLogSumExpOp",
    "ReduceLogSumOp",
    "ReduceMaxOp",
    "ReduceMeanOp",
    "ReduceMinOp",
    "ReduceOp",
    "ReduceProdOp",
    "ReduceSumOp",
    "ReduceSumSquareOp",
    "ScanOp",
    "TopKOp",
    "reduced_shape",
]


def reduced_shape(shape: Sequence[int], axes: Sequence[int], keepdims: bool) -> tuple[int, ...]:
    """The shape left after reducing `axes` (normalized) of `shape`."""
    if keepdims:
        return tuple(1 if i in axes else d for i, d in enumerate(shape))
    return tuple(d for i, d in enumerate(shape) if i not in axes)


class ReduceOp(GraphOp):
    """Base of reductions over the axes `axes`; the result keeps the element type."""

    input = operand_def(TensorType)
    output = result_def(TensorType)
    axes = IntsProp()
    keepdims = BoolProp()
    CONSTRAINTS: ClassVar[Constraints] = (Numeric(), AxesIn("axes", "input"))

    @classmethod
    def infer_result_types(
        cls, operand_types: Sequence[TensorType], props: Self
    ) -> list[TensorType]:
        (ty,) = operand_types
        shape = reduced_shape(ty.get_shape(), props.axes, props.keepdims)
        return [tensor(shape, ty.element_type)]


def _reduce(op_name: str, doc: str, allows_bool: bool = False) -> type[ReduceOp]:
    class_name = "".join(p.capitalize() for p in op_name.split("_")) + "Op"
    example = (
        f"\n\n        %y = graph.{op_name} %x {{axes = array<i64: 1>, keepdims = true}} : "
        "(tensor<2x3xf32>) -> tensor<2x1xf32>\n    "
    )
    namespace: dict[str, object] = {"name": f"graph.{op_name}", "__doc__": doc + example}
    if allows_bool:  # any element type: the constraints without `Numeric`
        namespace["__annotations__"] = {"CONSTRAINTS": ClassVar[Constraints]}
        namespace["CONSTRAINTS"] = ReduceOp.CONSTRAINTS[1:]
    cls = type(class_name, (ReduceOp,), namespace)
    cls.__module__ = __name__
    return irdl_op_definition(cls)


ReduceSumOp = _reduce("reduce_sum", "Sum over `axes`; 0 over an empty set.")
ReduceMeanOp = _reduce(
    "reduce_mean", "Arithmetic mean over `axes`; integer means truncate toward zero."
)
ReduceMaxOp = _reduce(
    "reduce_max", "Maximum over `axes` (logical or of booleans).", allows_bool=True
)
ReduceMinOp = _reduce(
    "reduce_min", "Minimum over `axes` (logical and of booleans).", allows_bool=True
)
ReduceProdOp = _reduce("reduce_prod", "Product over `axes`; 1 over an empty set.")
ReduceL1Op = _reduce("reduce_l1", "Sum of |x| over `axes`.")
ReduceL2Op = _reduce("reduce_l2", "sqrt of the sum of x * x over `axes`.")
ReduceLogSumOp = _reduce("reduce_log_sum", "log of the sum over `axes`.")
ReduceLogSumExpOp = _reduce(
    "reduce_log_sum_exp", "log of the sum of exp(x) over `axes`, computed stably."
)
ReduceSumSquareOp = _reduce("reduce_sum_square", "Sum of x * x over `axes`.")


class ArgReduceOp(GraphOp):
    """Base of index reductions along `axis`; the result holds i64 indices."""

    input = operand_def(TensorType)
    output = result_def(TensorType)
    axis = IntProp()
    keepdims = BoolProp()
    select_last_index = BoolProp()
    CONSTRAINTS: ClassVar[Constraints] = (AxisIn("axis", "input"),)

    @classmethod
    def infer_result_types(
        cls, operand_types: Sequence[TensorType], props: Self
    ) -> list[TensorType]:
        (ty,) = operand_types
        shape, axis = tuple(ty.get_shape()), props.axis
        if shape[axis] == 0:
            raise GraphError(f"{cls.name} along axis {axis} of size 0 has no index to return")
        return [tensor(reduced_shape(shape, [axis], props.keepdims), i64)]


@irdl_op_definition
class ArgMaxOp(ArgReduceOp):
    """Index of the maximum along `axis` (the first, or the last with `select_last_index`).

    %i = graph.argmax %x {axis = 1 : i64, keepdims = false, select_last_index = false} : (tensor<2x3xf32>) -> tensor<2xi64>
    """

    name = "graph.argmax"


@irdl_op_definition
class ArgMinOp(ArgReduceOp):
    """Index of the minimum along `axis` (the first, or the last with `select_last_index`).

    %i = graph.argmin %x {axis = 0 : i64, keepdims = true, select_last_index = true} : (tensor<2x3xi32>) -> tensor<1x3xi64>
    """

    name = "graph.argmin"


class ScanOp(GraphOp):
    """Base of running reductions along `axis`: result[..., i, ...] reduces the elements
    at positions j <= i (j >= i with `reverse`) along `axis`, without j = i when
    `exclusive` (an empty set gives the identity: 0 for sums, 1 for products)."""

    input = operand_def(TensorType)
    output = result_def(TensorType)
    axis = IntProp()
    exclusive = BoolProp()
    reverse = BoolProp()
    CONSTRAINTS: ClassVar[Constraints] = (Numeric(), AxisIn("axis", "input"))

    @classmethod
    def infer_result_types(
        cls, operand_types: Sequence[TensorType], props: Self
    ) -> list[TensorType]:
        return [operand_types[0]]


@irdl_op_definition
class CumSumOp(ScanOp):
    """Running sum along `axis` (ONNX CumSum); integers wrap in the element type.

    %y = graph.cumsum %x {axis = 1 : i64, exclusive = false, reverse = true} : (tensor<2x3xf32>) -> tensor<2x3xf32>
    """

    name = "graph.cumsum"


@irdl_op_definition
class CumProdOp(ScanOp):
    """Running product along `axis` (ONNX CumProd); integers wrap in the element type.

    %y = graph.cumprod %x {axis = 0 : i64, exclusive = true, reverse = false} : (tensor<2x3xi32>) -> tensor<2x3xi32>
    """

    name = "graph.cumprod"


@irdl_op_definition
class TopKOp(GraphOp):
    """The `k` largest (`largest`) or smallest elements along `axis`, sorted (largest or
    smallest first), and their i64 indices along `axis`. Equal elements keep their order
    (the lower index first); NaN ranks above every number (first when `largest`, last
    otherwise), and -0.0 equals +0.0.

    %v, %i = graph.top_k %x {axis = 1 : i64, k = 2 : i64, largest = true} : (tensor<3x4xf32>) -> (tensor<3x2xf32>, tensor<3x2xi64>)
    """

    name = "graph.top_k"
    input = operand_def(TensorType)
    values = result_def(TensorType)
    indices = result_def(TensorType)
    axis = IntProp()
    k = IntProp()
    largest = BoolProp()
    CONSTRAINTS: ClassVar[Constraints] = (Numeric(), AxisIn("axis", "input"))

    @classmethod
    def infer_result_types(
        cls, operand_types: Sequence[TensorType], props: Self
    ) -> list[TensorType]:
        (ty,) = operand_types
        shape, axis, k = list(ty.get_shape()), props.axis, props.k
        if not 0 <= k <= shape[axis]:
            raise GraphError(
                f"{cls.name} k = {k} must be in [0, {shape[axis]}] (the size of axis {axis})"
            )
        shape[axis] = k
        return [tensor(shape, ty.element_type), tensor(shape, i64)]


REDUCE_OPS: list[type[GraphOp]] = [
    ReduceSumOp,
    ReduceMeanOp,
    ReduceMaxOp,
    ReduceMinOp,
    ReduceProdOp,
    ReduceL1Op,
    ReduceL2Op,
    ReduceLogSumOp,
    ReduceLogSumExpOp,
    ReduceSumSquareOp,
    ArgMaxOp,
    ArgMinOp,
    CumSumOp,
    CumProdOp,
    TopKOp,
]
