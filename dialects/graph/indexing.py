"""Graph ops: indexing group.

Ops whose results depend on index values or positions: `trilu` (keep a triangle of the
last two axes), `one_hot` (compare index values with positions), `gather_nd` (read at
index tuples), `scatter_elements` and `scatter_nd` (write at index values), with ONNX
semantics.

Index operands hold integers; a negative index counts from the end of its axis
(`-1` is the last element) and an index outside `[-size, size)` is an error (the
reference semantics raise, native code fails the call with a run-time check). Axes are
normalized (`0 <= axis < rank`).

Scatters write the updates in row-major order of the update positions: with
`reduction = "none"` a position written twice keeps the last update; otherwise each
update is combined into the value there: "add", "mul", "max" or "min" (IEEE maximum /
minimum: a NaN wins).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import ClassVar, Self

from xdsl.dialects.builtin import TensorType
from xdsl.irdl import irdl_op_definition, operand_def, result_def

from mlc.dialects.graph.base import BoolProp, GraphError, GraphOp, IntProp, StrProp
from mlc.dialects.graph.constraints import (
    AxisIn,
    Constraints,
    MinRank,
    NonNegative,
    Numeric,
    OneOf,
    Positive,
    SameElementType,
)
from mlc.dialects.graph.types import is_bool, is_integer, tensor

__all__ = [
    "INDEXING_OPS",
    "SCATTER_REDUCTIONS",
    "GatherNDOp",
    "OneHotOp",
    "ScatterElementsOp",
    "ScatterNDOp",
    "TriluOp",
]

#: how a scatter combines an update with the value it lands on
SCATTER_REDUCTIONS = ("none", "add", "mul", "max", "min")


def _shape(ty: TensorType) -> tuple[int, ...]:
    return tuple(ty.get_shape())


def _check_indices(name: str, ty: TensorType) -> None:
    if not is_integer(ty.element_type):
        raise GraphError(f"{name} indices must be an integer tensor, got {ty}")


# --------------------------------------------------------------------------- trilu


@irdl_op_definition
class TriluOp(GraphOp):
    """Keeps the upper (`upper`) or lower triangle of each matrix in the last two axes and
    zeroes the rest: element [i, j] is kept where j - i >= k (upper) or j - i <= k (lower).

    %y = graph.trilu %x {upper = true, k = -1 : i64} : (tensor<2x3x4xf32>) -> tensor<2x3x4xf32>
    """

    name = "graph.trilu"
    input = operand_def(TensorType)
    output = result_def(TensorType)
    upper = BoolProp()
    k = IntProp()
    CONSTRAINTS: ClassVar[Constraints] = (MinRank("input", 2, "... x N x M"),)

    @classmethod
    def infer_result_types(
        cls, operand_types: Sequence[TensorType], props: Self
    ) -> list[TensorType]:
        return [operand_types[0]]


# --------------------------------------------------------------------------- one_hot


@irdl_op_definition
class OneHotOp(GraphOp):
    """values[1] where an index equals the position along the new axis `axis` (of size
    `depth`), values[0] elsewhere. An index is converted to an integer first (a float
    truncated toward zero); a negative one counts from `depth`; one outside [-depth,
    depth) matches no position. The result has the element type of `values` (shape (2)).

    %y = graph.one_hot %i, %v {axis = 1 : i64, depth = 4 : i64} : (tensor<3xi64>, tensor<2xf32>) -> tensor<3x4xf32>
    """

    name = "graph.one_hot"
    indices = operand_def(TensorType)
    values = operand_def(TensorType)
    output = result_def(TensorType)
    axis = IntProp()
    depth = IntProp()
    CONSTRAINTS: ClassVar[Constraints] = (Numeric("indices"), Positive("depth"))

    @classmethod
    def infer_result_types(
        cls, operand_types: Sequence[TensorType], props: Self
    ) -> list[TensorType]:
        indices, values = operand_types
        shape = _shape(indices)
        axis = props.axis
        if not 0 <= axis <= len(shape):
            raise GraphError(
                f"{cls.name} axis {axis} is out of range [0, {len(shape)}] for indices {indices}"
            )
        if _shape(values) != (2,):
            raise GraphError(f"{cls.name} values must have shape (2) (off, on), got {values}")
        out = [*shape[:axis], props.depth, *shape[axis:]]
        return [tensor(out, values.element_type)]


# --------------------------------------------------------------------------- gather_nd


@irdl_op_definition
class GatherNDOp(GraphOp):
    """Slices of `data` at index tuples: with K = the last dimension of `indices` and
    b = `batch_dims`, result[p..., s...] = data[p[:b]..., indices[p..., :]..., s...],
    of shape indices.shape[:-1] + data.shape[b + K:] (the first b axes of both
    operands agree: they are batch axes).

    %y = graph.gather_nd %x, %i {batch_dims = 0 : i64} : (tensor<4x5x6xf32>, tensor<3x2xi64>) -> tensor<3x6xf32>
    """

    name = "graph.gather_nd"
    data = operand_def(TensorType)
    indices = operand_def(TensorType)
    output = result_def(TensorType)
    batch_dims = IntProp()
    CONSTRAINTS: ClassVar[Constraints] = (MinRank("indices", 1), NonNegative("batch_dims"))

    @classmethod
    def infer_result_types(
        cls, operand_types: Sequence[TensorType], props: Self
    ) -> list[TensorType]:
        data, indices = operand_types
        shape, ishape, b = _shape(data), _shape(indices), props.batch_dims
        _check_indices(cls.name, indices)
        k = ishape[-1]
        if b >= len(ishape) or b >= len(shape):
            raise GraphError(
                f"{cls.name} batch_dims {b} must be less than the ranks of data {data} "
                f"and indices {indices}"
            )
        if shape[:b] != ishape[:b]:
            raise GraphError(
                f"{cls.name} the {b} batch axes of data {data} and indices {indices} differ"
            )
        if not 1 <= k <= len(shape) - b:
            raise GraphError(
                f"{cls.name} index tuples of length {k} do not fit the {len(shape) - b} "
                f"non-batch axes of data {data}"
            )
        if 0 in shape[b : b + k] and math.prod(ishape[:-1]) > 0:
            raise GraphError(f"{cls.name} cannot index an empty axis of {data}")
        return [tensor([*ishape[:-1], *shape[b + k :]], data.element_type)]


# --------------------------------------------------------------------------- scatters


class ScatterOp(GraphOp):
    """Base of the scatters: `data` with `updates` written at positions `indices` name."""

    data = operand_def(TensorType)
    indices = operand_def(TensorType)
    updates = operand_def(TensorType)
    output = result_def(TensorType)
    reduction = StrProp()

    def verify_props(self) -> None:
        ty = self.data.type
        if self.reduction != "none" and isinstance(ty, TensorType) and is_bool(ty.element_type):
            raise GraphError(f"{self.name} reduction {self.reduction!r} needs numeric data")


@irdl_op_definition
class ScatterElementsOp(ScatterOp):
    """data with updates[p] combined into the element at p with p[axis] replaced by
    indices[p], for every position p of `indices` (the shape of `updates`; at most the
    shape of `data` outside `axis`).

    %y = graph.scatter_elements %x, %i, %u {axis = 1 : i64, reduction = "add"} : (tensor<2x5xf32>, tensor<2x3xi64>, tensor<2x3xf32>) -> tensor<2x5xf32>
    """

    name = "graph.scatter_elements"
    axis = IntProp()
    CONSTRAINTS: ClassVar[Constraints] = (
        AxisIn("axis", "data"),
        SameElementType("data", "updates"),
        OneOf("reduction", SCATTER_REDUCTIONS),
    )

    @classmethod
    def infer_result_types(
        cls, operand_types: Sequence[TensorType], props: Self
    ) -> list[TensorType]:
        data, indices, updates = operand_types
        shape, ishape, axis = _shape(data), _shape(indices), props.axis
        _check_indices(cls.name, indices)
        if _shape(updates) != ishape:
            raise GraphError(f"{cls.name} updates {updates} must have the shape of {indices}")
        if len(ishape) != len(shape):
            raise GraphError(f"{cls.name} indices {indices} must have the rank of data {data}")
        if any(i > d for a, (i, d) in enumerate(zip(ishape, shape)) if a != axis):
            raise GraphError(f"{cls.name} indices {indices} exceed data {data} outside axis {axis}")
        if shape[axis] == 0 and math.prod(ishape) > 0:
            raise GraphError(f"{cls.name} cannot index the empty axis {axis} of {data}")
        return [data]


@irdl_op_definition
class ScatterNDOp(ScatterOp):
    """data with each slice updates[p] combined into data[indices[p]...] (K = the last
    dimension of `indices` indexes the first K axes of `data`); `updates` has shape
    indices.shape[:-1] + data.shape[K:].

    %y = graph.scatter_nd %x, %i, %u {reduction = "none"} : (tensor<4x4xf32>, tensor<2x1xi64>, tensor<2x4xf32>) -> tensor<4x4xf32>
    """

    name = "graph.scatter_nd"
    CONSTRAINTS: ClassVar[Constraints] = (
        MinRank("indices", 1),
        SameElementType("data", "updates"),
        OneOf("reduction", SCATTER_REDUCTIONS),
    )

    @classmethod
    def infer_result_types(
        cls, operand_types: Sequence[TensorType], props: Self
    ) -> list[TensorType]:
        data, indices, updates = operand_types
        shape, ishape = _shape(data), _shape(indices)
        _check_indices(cls.name, indices)
        k = ishape[-1]
        if not 1 <= k <= len(shape):
            raise GraphError(
                f"{cls.name} index tuples of length {k} do not fit the {len(shape)} axes "
                f"of data {data}"
            )
        expected = (*ishape[:-1], *shape[k:])
        if _shape(updates) != expected:
            raise GraphError(
                f"{cls.name} updates {updates} must have shape {list(expected)} "
                f"(indices.shape[:-1] + data.shape[{k}:])"
            )
        if 0 in shape[:k] and math.prod(ishape[:-1]) > 0:
            raise GraphError(f"{cls.name} cannot index an empty axis of {data}")
        return [data]


INDEXING_OPS: list[type[GraphOp]] = [
    TriluOp,
    OneHotOp,
    GatherNDOp,
    ScatterElementsOp,
    ScatterNDOp,
]
