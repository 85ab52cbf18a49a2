"""Graph ops: shape group.

Ops that move elements without computing on them: `reshape`, `transpose`, `concat`,
`split`, `slice`, `gather`, `gather_elements`, `pad`, `expand` and `tile`, with ONNX
semantics.

Conventions (the ONNX importer normalizes to them):

- axes are normalized: `0 <= axis < rank` (no negative axes in the IR);
- properties that are per axis (`perm`, slice `starts`/`ends`/`steps`, `repeats`) have one
  entry for every axis of the operand;
- `slice` bounds are already clamped, so the slice of an axis is exactly the Python
  `range(start, end, step)` of indices (`end = -1` with a negative step means "down to
  and including index 0");
- ONNX Flatten, Squeeze and Unsqueeze are imported as `reshape`; Shape, Size,
  ConstantOfShape and Range are folded to constants at import (shapes are static).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import ClassVar, Self

from xdsl.dialects.builtin import IntegerAttr, TensorType
from xdsl.ir import SSAValue
from xdsl.irdl import (
    irdl_op_definition,
    operand_def,
    result_def,
    var_operand_def,
    var_result_def,
)

from mlc.dialects.graph.base import (
    GraphError,
    GraphOp,
    IntProp,
    IntsProp,
    NumberProp,
    StrProp,
    broadcast_shapes,
)
from mlc.dialects.graph.constraints import (
    AxisIn,
    Constraints,
    NonNegative,
    OneOf,
    OnePerAxis,
    SameElementType,
)
from mlc.dialects.graph.types import is_float, is_integer, tensor


def _shape(ty: TensorType) -> tuple[int, ...]:
    return tuple(ty.get_shape())


# --------------------------------------------------------------------------- reshape


@irdl_op_definition
class ReshapeOp(GraphOp):
    """The same elements in row-major order, viewed with the result's shape.

    The result type is explicit; it must hold as many elements as the operand, of the
    same element type. ONNX Reshape, Flatten, Squeeze and Unsqueeze become this op.

    %y = graph.reshape %x : (tensor<2x3xf32>) -> tensor<3x2xf32>
    """

    name = "graph.reshape"
    input = operand_def(TensorType)
    output = result_def(TensorType)
    EXPLICIT_RESULT_TYPES: ClassVar[bool] = True

    @classmethod
    def infer_result_types(
        cls, operand_types: Sequence[TensorType], props: Self
    ) -> list[TensorType]:
        raise GraphError("graph.reshape needs an explicit result type")

    @classmethod
    def to(cls, value: SSAValue, shape: Sequence[int]) -> ReshapeOp:
        """Reshape `value` to `shape` (static, no -1 or 0 placeholders)."""
        ty = value.type
        assert isinstance(ty, TensorType)
        return cls.create([value], result_types=[tensor(shape, ty.element_type)])

    def verify_(self) -> None:
        super().verify_()
        src, dst = self.input.type, self.output.type
        assert isinstance(src, TensorType) and isinstance(dst, TensorType)
        if src.element_type != dst.element_type:
            raise GraphError(
                f"graph.reshape must keep the element type, got {src.element_type} "
                f"-> {dst.element_type}"
            )
        n_src, n_dst = math.prod(src.get_shape()), math.prod(dst.get_shape())
        if n_src != n_dst:
            raise GraphError(
                f"graph.reshape must keep the number of elements: {src} has {n_src}, "
                f"{dst} has {n_dst}"
            )


# --------------------------------------------------------------------------- transpose


@irdl_op_definition
class TransposeOp(GraphOp):
    """Permutes the axes: result axis i is operand axis perm[i].

    %y = graph.transpose %x {perm = array<i64: 1, 0>} : (tensor<2x3xf32>) -> tensor<3x2xf32>
    """

    name = "graph.transpose"
    input = operand_def(TensorType)
    output = result_def(TensorType)
    perm = IntsProp()

    @classmethod
    def infer_result_types(
        cls, operand_types: Sequence[TensorType], props: Self
    ) -> list[TensorType]:
        (ty,) = operand_types
        shape = _shape(ty)
        perm = props.perm
        if sorted(perm) != list(range(len(shape))):
            raise GraphError(
                f"graph.transpose perm {list(perm)} is not a permutation of the "
                f"{len(shape)} axes of {ty}"
            )
        return [tensor([shape[p] for p in perm], ty.element_type)]


# --------------------------------------------------------------------------- concat


@irdl_op_definition
class ConcatOp(GraphOp):
    """Joins tensors along `axis`; all other dimensions must agree.

    %z = graph.concat %a, %b {axis = 1 : i64} : (tensor<2x3xf32>, tensor<2x1xf32>) -> tensor<2x4xf32>
    """

    name = "graph.concat"
    inputs = var_operand_def(TensorType)
    output = result_def(TensorType)
    axis = IntProp(IntegerAttr)
    CONSTRAINTS: ClassVar[Constraints] = (AxisIn("axis", "inputs"), SameElementType())

    @classmethod
    def infer_result_types(
        cls, operand_types: Sequence[TensorType], props: Self
    ) -> list[TensorType]:
        first, axis = operand_types[0], props.axis
        rank = len(first.get_shape())
        total = 0
        for i, ty in enumerate(operand_types):
            shape = _shape(ty)
            if len(shape) != rank:
                raise GraphError(
                    f"graph.concat operands must have the same rank, operand #{i} is {ty}"
                )
            for d in range(rank):
                if d != axis and shape[d] != first.get_shape()[d]:
                    raise GraphError(
                        f"graph.concat operand #{i} ({ty}) differs from {first} in axis {d}, "
                        f"which is not the concatenation axis {axis}"
                    )
            total += shape[axis]
        out = list(_shape(first))
        out[axis] = total
        return [tensor(out, first.element_type)]


# --------------------------------------------------------------------------- split


@irdl_op_definition
class SplitOp(GraphOp):
    """Cuts a tensor along `axis` into consecutive pieces of the given `sizes`.

    %a, %b = graph.split %x {axis = 0 : i64, sizes = array<i64: 1, 2>} : (tensor<3xf32>) -> (tensor<1xf32>, tensor<2xf32>)
    """

    name = "graph.split"
    input = operand_def(TensorType)
    outputs = var_result_def(TensorType)
    axis = IntProp(IntegerAttr)
    sizes = IntsProp()
    CONSTRAINTS: ClassVar[Constraints] = (AxisIn("axis", "input"), NonNegative("sizes"))

    @classmethod
    def infer_result_types(
        cls, operand_types: Sequence[TensorType], props: Self
    ) -> list[TensorType]:
        (ty,) = operand_types
        shape = _shape(ty)
        axis, sizes = props.axis, props.sizes
        if not sizes:
            raise GraphError("graph.split needs at least one piece")
        if sum(sizes) != shape[axis]:
            raise GraphError(
                f"graph.split sizes {list(sizes)} sum to {sum(sizes)}, but axis {axis} of "
                f"{ty} has {shape[axis]} elements"
            )
        results = []
        for size in sizes:
            out = list(shape)
            out[axis] = size
            results.append(tensor(out, ty.element_type))
        return results


# --------------------------------------------------------------------------- slice


def slice_length(start: int, end: int, step: int) -> int:
    return len(range(start, end, step))


@irdl_op_definition
class SliceOp(GraphOp):
    """Takes indices range(starts[i], ends[i], steps[i]) of every axis i.

    Bounds are normalized: for step > 0, 0 <= start, end <= dim; for step < 0,
    -1 <= start, end <= dim - 1, where end = -1 reaches index 0.

    %y = graph.slice %x {starts = array<i64: 0, 2>, ends = array<i64: 2, -1>, steps = array<i64: 1, -2>} : (tensor<2x3xf32>) -> tensor<2x2xf32>
    """

    name = "graph.slice"
    input = operand_def(TensorType)
    output = result_def(TensorType)
    starts = IntsProp()
    ends = IntsProp()
    steps = IntsProp()
    CONSTRAINTS: ClassVar[Constraints] = (OnePerAxis("starts", "ends", "steps"),)

    @classmethod
    def infer_result_types(
        cls, operand_types: Sequence[TensorType], props: Self
    ) -> list[TensorType]:
        (ty,) = operand_types
        shape = _shape(ty)
        out = []
        bounds = zip(shape, props.starts, props.ends, props.steps)
        for axis, (dim, start, end, step) in enumerate(bounds):
            if step == 0:
                raise GraphError(f"graph.slice step of axis {axis} must not be 0")
            low, high = (0, dim) if step > 0 else (-1, dim - 1)
            for name, bound in (("start", start), ("end", end)):
                if not low <= bound <= high:
                    raise GraphError(
                        f"graph.slice {name} {bound} of axis {axis} is out of range "
                        f"[{low}, {high}] for dimension {dim} and step {step}"
                    )
            out.append(slice_length(start, end, step))
        return [tensor(out, ty.element_type)]


# --------------------------------------------------------------------------- gather


def _check_indices(ty: TensorType, what: str) -> None:
    if not is_integer(ty.element_type):
        raise GraphError(f"{what} indices must be an integer tensor, got {ty}")


@irdl_op_definition
class GatherOp(GraphOp):
    """Picks slices of `data` along `axis` at `indices` (negative: from the end).

    The result shape is data[:axis] + indices + data[axis + 1:].

    %y = graph.gather %x, %i {axis = 0 : i64} : (tensor<5x3xf32>, tensor<2xi64>) -> tensor<2x3xf32>
    """

    name = "graph.gather"
    data = operand_def(TensorType)
    indices = operand_def(TensorType)
    output = result_def(TensorType)
    axis = IntProp(IntegerAttr)
    CONSTRAINTS: ClassVar[Constraints] = (AxisIn("axis", "data"),)

    @classmethod
    def infer_result_types(
        cls, operand_types: Sequence[TensorType], props: Self
    ) -> list[TensorType]:
        data, indices = operand_types
        shape, axis = _shape(data), props.axis
        _check_indices(indices, "graph.gather")
        if shape[axis] == 0 and math.prod(indices.get_shape()) > 0:
            raise GraphError(f"graph.gather cannot index the empty axis {axis} of {data}")
        out = [*shape[:axis], *indices.get_shape(), *shape[axis + 1 :]]
        return [tensor(out, data.element_type)]


@irdl_op_definition
class GatherElementsOp(GraphOp):
    """result[i][j][k] = data[indices[i][j][k]][j][k] for axis 0 (and so on for others).

    `indices` has the rank of `data`; the result has the shape of `indices`.

    %y = graph.gather_elements %x, %i {axis = 1 : i64} : (tensor<2x3xf32>, tensor<2x2xi64>) -> tensor<2x2xf32>
    """

    name = "graph.gather_elements"
    data = operand_def(TensorType)
    indices = operand_def(TensorType)
    output = result_def(TensorType)
    axis = IntProp(IntegerAttr)
    CONSTRAINTS: ClassVar[Constraints] = (AxisIn("axis", "data"),)

    @classmethod
    def infer_result_types(
        cls, operand_types: Sequence[TensorType], props: Self
    ) -> list[TensorType]:
        data, indices = operand_types
        shape, ishape, axis = _shape(data), _shape(indices), props.axis
        _check_indices(indices, "graph.gather_elements")
        if len(ishape) != len(shape):
            raise GraphError(
                f"graph.gather_elements indices {indices} must have the rank of data {data}"
            )
        if any(i > d for a, (i, d) in enumerate(zip(ishape, shape)) if a != axis):
            raise GraphError(
                f"graph.gather_elements indices {indices} exceed data {data} outside axis {axis}"
            )
        return [tensor(ishape, data.element_type)]


# --------------------------------------------------------------------------- pad

PAD_MODES = ("constant", "reflect", "edge", "wrap")


@irdl_op_definition
class PadOp(GraphOp):
    """Pads (or, with negative amounts, crops) every axis.

    `pads` is ONNX's [begin_0, ..., begin_n-1, end_0, ..., end_n-1]. `mode` is "constant"
    (fill with `value`, default 0), "reflect" (mirror without the edge), "edge" (repeat the
    edge) or "wrap" (periodic).

    %y = graph.pad %x {pads = array<i64: 0, 1, 0, 2>, mode = "constant", value = 5.000000e-01 : f32} : (tensor<2x3xf32>) -> tensor<2x6xf32>
    """

    name = "graph.pad"
    input = operand_def(TensorType)
    output = result_def(TensorType)
    pads = IntsProp()
    mode = StrProp()
    value = NumberProp()
    CONSTRAINTS: ClassVar[Constraints] = (OneOf("mode", PAD_MODES),)

    @classmethod
    def infer_result_types(
        cls, operand_types: Sequence[TensorType], props: Self
    ) -> list[TensorType]:
        (ty,) = operand_types
        shape = _shape(ty)
        rank = len(shape)
        pads = props.pads
        if len(pads) != 2 * rank:
            raise GraphError(
                f"graph.pad pads must have 2 * rank = {2 * rank} entries, got {len(pads)}"
            )
        mode = props.mode
        out = []
        for axis, dim in enumerate(shape):
            begin, end = pads[axis], pads[axis + rank]
            size = dim + begin + end
            if size < 0:
                raise GraphError(f"graph.pad crops more than the {dim} elements of axis {axis}")
            kept = dim + min(begin, 0) + min(end, 0)
            grow = max(begin, 0), max(end, 0)
            if mode != "constant" and max(grow) > 0:
                if kept <= 0:
                    raise GraphError(f"graph.pad mode {mode!r} cannot pad the empty axis {axis}")
                if mode == "reflect" and max(grow) >= kept:
                    raise GraphError(
                        f"graph.pad mode 'reflect' pads axis {axis} by {max(grow)}, "
                        f"which must be less than its size {kept}"
                    )
            out.append(size)
        if props.value is not None and mode != "constant":
            raise GraphError("graph.pad value is only meaningful in mode 'constant'")
        return [tensor(out, ty.element_type)]

    def verify_props(self) -> None:
        ty = self.input.type
        if isinstance(self.value, float) and isinstance(ty, TensorType):
            if not is_float(ty.element_type):
                raise GraphError(f"graph.pad value for {ty} must be an integer")

    def pad_value(self) -> int | float:
        """The constant fill value (0 when absent)."""
        return 0 if self.value is None else self.value


# --------------------------------------------------------------------------- expand / tile


@irdl_op_definition
class ExpandOp(GraphOp):
    """Broadcasts the operand to broadcast(operand shape, `shape`) (numpy rules).

    %y = graph.expand %x {shape = array<i64: 2, 3>} : (tensor<3xf32>) -> tensor<2x3xf32>
    """

    name = "graph.expand"
    input = operand_def(TensorType)
    output = result_def(TensorType)
    shape = IntsProp()
    CONSTRAINTS: ClassVar[Constraints] = (NonNegative("shape"),)

    @classmethod
    def infer_result_types(
        cls, operand_types: Sequence[TensorType], props: Self
    ) -> list[TensorType]:
        (ty,) = operand_types
        target = props.shape
        try:
            out = broadcast_shapes(_shape(ty), target)
        except GraphError:
            raise GraphError(
                f"graph.expand cannot broadcast {ty} to shape {list(target)}"
            ) from None
        return [tensor(out, ty.element_type)]


@irdl_op_definition
class TileOp(GraphOp):
    """Repeats the operand `repeats[i]` times along every axis i.

    %y = graph.tile %x {repeats = array<i64: 2, 1>} : (tensor<2x3xf32>) -> tensor<4x3xf32>
    """

    name = "graph.tile"
    input = operand_def(TensorType)
    output = result_def(TensorType)
    repeats = IntsProp()
    CONSTRAINTS: ClassVar[Constraints] = (OnePerAxis("repeats"), NonNegative("repeats"))

    @classmethod
    def infer_result_types(
        cls, operand_types: Sequence[TensorType], props: Self
    ) -> list[TensorType]:
        (ty,) = operand_types
        repeats = props.repeats
        return [tensor([d * r for d, r in zip(_shape(ty), repeats)], ty.element_type)]


SHAPE_OPS: list[type[GraphOp]] = [
    ReshapeOp,
    TransposeOp,
    ConcatOp,
    SplitOp,
    SliceOp,
    GatherOp,
    GatherElementsOp,
    PadOp,
    ExpandOp,
    TileOp,
]

__all__ = [
    "SHAPE_OPS",
    "ConcatOp",
    "ExpandOp",
    "GatherElementsOp",
    "GatherOp",
    "PadOp",
    "ReshapeOp",
    "SliceOp",
    "SplitOp",
    "TileOp",
    "TransposeOp",
    "slice_length",
]
