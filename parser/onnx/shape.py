"""Converters of ONNX operators to the shape graph ops.

Reshape, Flatten, Squeeze and Unsqueeze all become `graph.reshape`; Shape, Size,
ConstantOfShape and Range become constants (shapes are static). Shape-like inputs
(Reshape's shape, Slice's starts/ends/axes/steps, Pad's pads, Expand's shape, Tile's
repeats, Squeeze/Unsqueeze axes, Split's split) must be known at import time.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from onnx import numpy_helper
from xdsl.dialects.builtin import FloatAttr, IntegerAttr, f32, f64, i64
from xdsl.ir import Attribute, SSAValue

from mlc.dialects.graph import shape as sh
from mlc.dialects.graph.base import GraphError, broadcast_shapes
from mlc.dialects.graph.types import (
    UnsupportedTypeError,
    element_type_from_numpy,
    element_type_from_onnx,
    is_float,
)
from mlc.parser.onnx.node import FOLD_LIMIT_ELEMENTS, NodeContext, converter


def _axis(axis: int, rank: int, what: str) -> int:
    """ONNX axis (negative counts from the end) -> 0 <= axis < rank."""
    if not -rank <= axis < rank:
        raise GraphError(f"{what} {axis} is out of range for rank {rank}")
    return axis % rank


def _axes(axes: Sequence[int], rank: int, what: str) -> list[int]:
    normalized = [_axis(a, rank, what) for a in axes]
    if len(set(normalized)) != len(normalized):
        raise GraphError(f"{what}s {list(axes)} repeat an axis")
    return normalized


def _reshape(node: NodeContext, shape: Sequence[int]) -> list[SSAValue]:
    return [node.emit(sh.ReshapeOp.to(node.input(0), shape)).output]


# --------------------------------------------------------------------------- reshapes


def resolve_reshape(in_shape: Sequence[int], target: Sequence[int], allowzero: bool) -> list[int]:
    """ONNX Reshape's target shape -> the static result shape (0 copies, -1 infers)."""
    out: list[int] = []
    infer = None
    for i, d in enumerate(target):
        if d == -1:
            if infer is not None:
                raise GraphError(f"Reshape shape {list(target)} has more than one -1")
            infer = i
            out.append(1)
        elif d == 0 and not allowzero:
            if i >= len(in_shape):
                raise GraphError(
                    f"Reshape shape {list(target)} copies dimension {i} (0) of a rank "
                    f"{len(in_shape)} input"
                )
            out.append(in_shape[i])
        elif d < 0:
            raise GraphError(f"Reshape shape {list(target)} has the invalid dimension {d}")
        else:
            out.append(d)
    total = math.prod(in_shape)
    if infer is not None:
        known = math.prod(out)
        if allowzero and 0 in target:
            raise GraphError("Reshape with allowzero=1 cannot have both 0 and -1 in its shape")
        if known == 0 or total % known:
            raise GraphError(
                f"Reshape cannot infer the -1 of {list(target)} for an input of shape "
                f"{list(in_shape)}"
            )
        out[infer] = total // known
    if math.prod(out) != total:
        raise GraphError(f"cannot reshape {list(in_shape)} ({total} elements) to {out}")
    return out


@converter("Reshape")
def reshape(node: NodeContext) -> list[SSAValue]:
    if node.opset < 5:
        target = node.ints("shape")
    else:
        target = node.constant_ints(1, "shape")
    allowzero = node.opset >= 14 and bool(node.int("allowzero", 0))
    return _reshape(node, resolve_reshape(node.shape(0), target, allowzero))


@converter("Flatten")
def flatten(node: NodeContext) -> list[SSAValue]:
    shape = node.shape(0)
    axis = node.int("axis", 1)
    if not -len(shape) <= axis <= len(shape):
        raise GraphError(f"Flatten axis {axis} is out of range for rank {len(shape)}")
    if axis < 0:
        axis += len(shape)
    return _reshape(node, [math.prod(shape[:axis]), math.prod(shape[axis:])])


def _axes_operand(node: NodeContext, required: bool) -> list[int] | None:
    """Squeeze/Unsqueeze axes: an attribute before opset 13, an input from it."""
    if node.opset < 13:
        if not node.has_attr("axes"):
            if required:
                node.unsupported("attribute 'axes' is required")
            return None
        return node.ints("axes")
    if not node.has_input(1):
        if required:
            node.unsupported("input 'axes' is required")
        return None
    return node.constant_ints(1, "axes")


@converter("Squeeze")
def squeeze(node: NodeContext) -> list[SSAValue]:
    shape = node.shape(0)
    axes = _axes_operand(node, required=False)
    if axes is None:
        drop = {i for i, d in enumerate(shape) if d == 1}
    else:
        drop = set(_axes(axes, len(shape), "Squeeze axis"))
        for a in sorted(drop):
            if shape[a] != 1:
                raise GraphError(f"Squeeze axis {a} of shape {list(shape)} is not 1")
    return _reshape(node, [d for i, d in enumerate(shape) if i not in drop])


@converter("Unsqueeze")
def unsqueeze(node: NodeContext) -> list[SSAValue]:
    shape = node.shape(0)
    axes = _axes_operand(node, required=True)
    assert axes is not None
    rank = len(shape) + len(axes)
    inserted = set(_axes(axes, rank, "Unsqueeze axis"))
    rest = iter(shape)
    return _reshape(node, [1 if i in inserted else next(rest) for i in range(rank)])


# --------------------------------------------------------------------------- transpose, concat, split


@converter("Transpose")
def transpose(node: NodeContext) -> list[SSAValue]:
    rank = node.rank(0)
    perm = node.ints("perm", list(reversed(range(rank))))
    return [node.emit(sh.TransposeOp.create([node.input(0)], perm=perm)).output]


@converter("Concat")
def concat(node: NodeContext) -> list[SSAValue]:
    inputs = node.inputs()
    if not inputs:
        raise GraphError("Concat needs at least one input")
    axis = node.int("axis", 1 if node.opset < 4 else None)
    axis = _axis(axis, node.rank(0), "Concat axis")
    return [node.emit(sh.ConcatOp.create(inputs, axis=axis)).output]


@converter("Split")
def split(node: NodeContext) -> list[SSAValue]:
    shape = node.shape(0)
    if not shape:
        raise GraphError("Split of a scalar")
    axis = _axis(node.int("axis", 0), len(shape), "Split axis")
    dim = shape[axis]
    n_out = len(node.node.output)
    sizes: list[int] | None = None
    if node.has_attr("split") and node.opset < 13:
        sizes = node.ints("split")
    elif node.has_input(1) and (node.opset < 2 or node.opset >= 13):
        sizes = node.constant_ints(1, "split")
    if sizes is None:
        if node.opset >= 18 and node.has_attr("num_outputs"):
            n = node.int("num_outputs")
            if n < 1:
                raise GraphError(f"Split num_outputs={n} must be positive")
            chunk = -(-dim // n)
            sizes = [chunk] * (n - 1) + [dim - chunk * (n - 1)]
            if sizes[-1] < 0:
                raise GraphError(f"Split cannot cut {dim} elements into {n} pieces of {chunk}")
        else:
            if dim % n_out:
                raise GraphError(f"Split cannot cut {dim} elements into {n_out} equal pieces")
            sizes = [dim // n_out] * n_out
    if len(sizes) != n_out:
        raise GraphError(f"Split has {n_out} outputs but {len(sizes)} split sizes")
    op = node.emit(sh.SplitOp.create([node.input(0)], axis=axis, sizes=sizes))
    return list(op.outputs)


# --------------------------------------------------------------------------- slice


def normalize_slice(dim: int, start: int, end: int, step: int) -> tuple[int, int]:
    """ONNX Slice bounds of one axis -> the clamped bounds graph.slice holds."""
    if step == 0:
        raise GraphError("Slice step must not be 0")
    if start < 0:
        start += dim
    if end < 0:
        end += dim
    if step > 0:
        return min(max(start, 0), dim), min(max(end, 0), dim)
    return min(max(start, 0), dim - 1), min(max(end, -1), dim - 1)


@converter("Slice")
def slice_(node: NodeContext) -> list[SSAValue]:
    shape = node.shape(0)
    rank = len(shape)
    if node.opset < 10:
        starts, ends = node.ints("starts"), node.ints("ends")
        axes = node.ints("axes", list(range(len(starts))))
        steps = [1] * len(starts)
    else:
        starts = node.constant_ints(1, "starts")
        ends = node.constant_ints(2, "ends")
        axes = node.constant_ints(3, "axes") if node.has_input(3) else list(range(len(starts)))
        steps = node.constant_ints(4, "steps") if node.has_input(4) else [1] * len(starts)
    if not len(starts) == len(ends) == len(axes) == len(steps):
        raise GraphError(
            f"Slice starts, ends, axes and steps have different lengths "
            f"({len(starts)}, {len(ends)}, {len(axes)}, {len(steps)})"
        )
    full_starts, full_ends, full_steps = [0] * rank, list(shape), [1] * rank
    for axis, start, end, step in zip(_axes(axes, rank, "Slice axis"), starts, ends, steps):
        full_starts[axis], full_ends[axis] = normalize_slice(shape[axis], start, end, step)
        full_steps[axis] = step
    op = sh.SliceOp.create([node.input(0)], starts=full_starts, ends=full_ends, steps=full_steps)
    return [node.emit(op).output]


# --------------------------------------------------------------------------- gather


@converter("Gather")
def gather(node: NodeContext) -> list[SSAValue]:
    axis = _axis(node.int("axis", 0), node.rank(0), "Gather axis")
    op = sh.GatherOp.create([node.input(0), node.input(1)], axis=axis)
    return [node.emit(op).output]


@converter("GatherElements")
def gather_elements(node: NodeContext) -> list[SSAValue]:
    axis = _axis(node.int("axis", 0), node.rank(0), "GatherElements axis")
    op = sh.GatherElementsOp.create([node.input(0), node.input(1)], axis=axis)
    return [node.emit(op).output]


# --------------------------------------------------------------------------- pad


def _pad_value(node: NodeContext, value: object) -> Attribute:
    """The fill value as an attribute matching the element type of the padded tensor."""
    element = node.input_type(0).element_type
    scalar = np.asarray(value).reshape(-1)
    if scalar.size != 1:
        raise GraphError(f"Pad constant_value must be a scalar, got {scalar.size} values")
    if is_float(element):
        return FloatAttr(float(scalar[0]), f64 if element == f64 else f32)
    return IntegerAttr(int(scalar.astype(np.int64)[0]), i64)


@converter("Pad")
def pad(node: NodeContext) -> list[SSAValue]:
    rank = node.rank(0)
    mode = node.string("mode", "constant")
    node.reject_attr_values("mode", ["constant", "reflect", "edge", "wrap"], "constant")
    value: object = 0
    if node.opset < 11:
        pads = node.ints("paddings" if node.opset < 2 else "pads")
        value = node.float("value", 0.0)
    else:
        pads = node.constant_ints(1, "pads")
        if node.has_input(2):
            value = node.constant(2, "constant_value")
        if node.has_input(3):
            axes = _axes(node.constant_ints(3, "axes"), rank, "Pad axis")
            if len(pads) != 2 * len(axes):
                raise GraphError(f"Pad has {len(pads)} pads for {len(axes)} axes")
            full = [0] * (2 * rank)
            for i, axis in enumerate(axes):
                full[axis], full[axis + rank] = pads[i], pads[i + len(axes)]
            pads = full
    props: dict[str, object] = {"pads": pads, "mode": mode}
    if mode == "constant":
        props["value"] = _pad_value(node, value)
    return [node.emit(sh.PadOp.create([node.input(0)], **props)).output]  # type: ignore[arg-type]


# --------------------------------------------------------------------------- expand, tile


@converter("Expand")
def expand(node: NodeContext) -> list[SSAValue]:
    target = node.constant_ints(1, "shape")
    try:
        out = broadcast_shapes(node.shape(0), target)
    except GraphError:
        raise GraphError(f"Expand cannot broadcast {list(node.shape(0))} to {target}") from None
    return [node.emit(sh.ExpandOp.create([node.input(0)], shape=list(out))).output]


@converter("Tile")
def tile(node: NodeContext) -> list[SSAValue]:
    rank = node.rank(0)
    if node.opset < 6:  # Tile-1: `tiles` copies along one `axis`
        tiles = int(node.constant_ints(1, "tiles")[0])
        axis = _axis(int(node.constant_ints(2, "axis")[0]), rank, "Tile axis")
        repeats = [1] * rank
        repeats[axis] = tiles
    else:
        repeats = node.constant_ints(1, "repeats")
    return [node.emit(sh.TileOp.create([node.input(0)], repeats=repeats)).output]


# --------------------------------------------------------------------------- folded at import


@converter("Shape")
def shape_(node: NodeContext) -> list[SSAValue]:
    shape = node.shape(0)
    start = node.int("start", 0) if node.opset >= 15 else 0
    end = node.int("end", len(shape)) if node.opset >= 15 else len(shape)
    return [node.emit_constant(np.array(shape[start:end], dtype=np.int64))]


@converter("Size")
def size(node: NodeContext) -> list[SSAValue]:
    return [node.emit_constant(np.array(math.prod(node.shape(0)), dtype=np.int64))]


@converter("ConstantOfShape")
def constant_of_shape(node: NodeContext) -> list[SSAValue]:
    shape = node.constant_ints(0, "shape")
    if any(d < 0 for d in shape):
        raise GraphError(f"ConstantOfShape shape {shape} must not be negative")
    if node.has_attr("value"):
        proto = node.attr("value")
        try:
            element_type_from_onnx(proto.data_type)
        except UnsupportedTypeError as e:
            node.unsupported(str(e))
        value = numpy_helper.to_array(proto).reshape(-1)
        if value.size != 1:
            raise GraphError("ConstantOfShape value must hold exactly one element")
    else:
        value = np.zeros(1, dtype=np.float32)
    if math.prod(shape) <= FOLD_LIMIT_ELEMENTS:  # small: a constant later folds can read
        return [node.emit_constant(np.full(shape, value[0], dtype=value.dtype))]
    # large: a one-element constant broadcast (filled at run time, never built here)
    scalar = node.emit_constant(value.reshape([1] * len(shape)))
    return [node.emit(sh.ExpandOp.create([scalar], shape=list(shape))).output]


@converter("Range")
def range_(node: NodeContext) -> list[SSAValue]:
    what = "a Range output's shape depends on it"
    start, limit, delta = (node.constant(i, what).reshape(-1)[0] for i in range(3))
    dtype = np.asarray(start).dtype
    try:
        element_type_from_numpy(dtype)
    except UnsupportedTypeError as e:
        node.unsupported(str(e))
    if delta == 0:
        raise GraphError("Range delta must not be 0")
    if dtype.kind in "iu":
        s, lim, d = int(start), int(limit), int(delta)
        count = max(-((s - lim) // d), 0)
        return [node.emit_constant(np.array([s + i * d for i in range(count)], dtype=dtype))]
    count = max(math.ceil((float(limit) - float(start)) / float(delta)), 0)
    # onnxruntime accumulates: x[0] = start, x[i + 1] = x[i] + delta, in the element type
    steps = np.full(count, delta, dtype=dtype)
    if count:
        steps[0] = start
    return [node.emit_constant(np.cumsum(steps, dtype=dtype))]
