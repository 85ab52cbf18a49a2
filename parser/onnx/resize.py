"""Resize (opset 11 and later) as per-axis interpolation tables.

ONNX's Resize is separable: along each resized axis, an output element is a weighted
sum of the input elements along that axis (one-hot weights for nearest, 2 or 4 taps for
linear or cubic, more with antialias), or, with `tf_crop_and_resize`, the extrapolation
value where the sampled coordinate leaves the input. One axis's table, weights
`W[m, n]` and extrapolation bias `b[m]`, depends only on that axis's length, scale and
roi and on the node's attributes, so it is computed at import time by onnx's reference
evaluator on a probe: the identity matrix resized along its second axis (zeros give
`b`). The node becomes, for each axis the tables change,

    nearest:         graph.gather(x, row -> its one input index, axis)
                     (graph.where(extrapolated rows, value, .) where there are any)
    linear, cubic:   graph.matmul along the axis by W (+ b)

e.g. a 2x bilinear upsampling of NCHW `x`: matmul(W_h, matmul(x, W_w^T)).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from onnx import TensorProto, helper
from xdsl.ir import SSAValue

from mlc.dialects.graph import elementwise as ew
from mlc.dialects.graph import nn
from mlc.dialects.graph import shape as sh
from mlc.dialects.graph.types import is_float, numpy_dtype
from mlc.parser.onnx.node import NodeContext, converter
from mlc.parser.onnx.probe import reference_run

__all__ = ["resize"]

#: the attributes a probe passes on (axes and the aspect-ratio policy are resolved here)
_PROBE_ATTRIBUTES = (
    "antialias",
    "coordinate_transformation_mode",
    "cubic_coeff_a",
    "exclude_outside",
    "extrapolation_value",
    "mode",
    "nearest_mode",
)


def _optional_constant(node: NodeContext, i: int, what: str) -> np.ndarray | None:
    """Input `i` as a constant, None where omitted or empty."""
    if not node.has_input(i):
        return None
    value = np.asarray(node.constant(i, what))
    return value if value.size else None


def _axis_parameters(
    node: NodeContext, shape: Sequence[int]
) -> tuple[list[float | None], list[int | None], list[tuple[float, float]] | None]:
    """Per axis: the scale or the size to probe with (one of them, None where the axis
    is not resized), and the roi (start, end) where one is given."""
    rank = len(shape)
    axes = [a % rank for a in node.ints("axes", list(range(rank)))]
    roi = _optional_constant(node, 1, "roi")
    scales = _optional_constant(node, 2, "scales")
    sizes = _optional_constant(node, 3, "sizes")
    if (scales is None) == (sizes is None):
        node.unsupported("exactly one of scales and sizes must be given")
    by_scale: list[float | None] = [None] * rank
    by_size: list[int | None] = [None] * rank
    if scales is not None:
        for a, s in zip(axes, scales.reshape(-1).tolist(), strict=True):
            by_scale[a] = float(s)
    else:
        assert sizes is not None
        wanted = [int(v) for v in sizes.reshape(-1)]
        policy = node.string("keep_aspect_ratio_policy", "stretch")
        if policy == "stretch":
            for a, m in zip(axes, wanted, strict=True):
                by_size[a] = m
        else:  # one scale for every axis in `axes`: the output size is round(scale * n)
            ratios = [m / shape[a] for a, m in zip(axes, wanted, strict=True)]
            scale = min(ratios) if policy == "not_larger" else max(ratios)
            for a in axes:
                if round(scale * shape[a]) != int(np.floor(scale * shape[a])):
                    node.unsupported(
                        f"keep_aspect_ratio_policy={policy!r} with an output size that rounds up"
                    )
                by_scale[a] = scale
    regions = None
    if roi is not None:
        flat = [float(v) for v in roi.reshape(-1)]
        if len(flat) != 2 * len(axes):
            node.unsupported(f"roi has {len(flat)} values for {len(axes)} axes")
        regions = [(0.0, 1.0)] * rank
        for k, a in enumerate(axes):
            regions[a] = (flat[k], flat[len(axes) + k])
    return by_scale, by_size, regions


def _probe(
    node: NodeContext,
    n: int,
    scale: float | None,
    size: int | None,
    region: tuple[float, float] | None,
) -> tuple[np.ndarray, np.ndarray]:
    """Weights `W[m, n]` and bias `b[m]` of one axis of length `n` (onnx's reference
    evaluator on the identity with a row of zeros below it, resized along its second
    axis: the zeros give `b`)."""
    inputs = ["x", "", "", ""]
    initializers = []
    if region is not None:
        inputs[1] = "roi"
        initializers.append(
            helper.make_tensor("roi", TensorProto.FLOAT, [4], [0.0, region[0], 1.0, region[1]])
        )
    if scale is not None:
        inputs[2] = "scales"
        initializers.append(helper.make_tensor("scales", TensorProto.FLOAT, [2], [1.0, scale]))
    else:
        inputs[3] = "sizes"
        initializers.append(helper.make_tensor("sizes", TensorProto.INT64, [2], [n + 1, size]))
    while not inputs[-1]:
        inputs.pop()
    probe = helper.make_node("Resize", inputs, ["y"])
    probe.attribute.extend(a for a in node.node.attribute if a.name in _PROBE_ATTRIBUTES)
    out = reference_run(probe, np.vstack([np.eye(n), np.zeros((1, n))]), initializers, node.opset)
    bias = out[n]
    return (out[:n] - bias).T, bias


def _along_axis(node: NodeContext, x: SSAValue, axis: int, weights: np.ndarray) -> SSAValue:
    """`x` with axis `axis` (length n) replaced by `weights @ x` along it (length m)."""
    rank = len(x.type.get_shape())  # type: ignore[attr-defined]
    dtype = numpy_dtype(x.type.element_type)  # type: ignore[attr-defined]
    if axis == rank - 1:
        w = node.emit_constant(weights.T.astype(dtype))
        return node.emit(nn.MatMulOp.create([x, w])).output
    if axis == rank - 2:
        w = node.emit_constant(weights.astype(dtype))
        return node.emit(nn.MatMulOp.create([w, x])).output
    perm = [d for d in range(rank) if d != axis] + [axis]
    moved = node.emit(sh.TransposeOp.create([x], perm=perm)).output
    w = node.emit_constant(weights.T.astype(dtype))
    y = node.emit(nn.MatMulOp.create([moved, w])).output
    back = [perm.index(d) for d in range(rank)]
    return node.emit(sh.TransposeOp.create([y], perm=back)).output


def _along_axis_shape(rank: int, axis: int, length: int) -> list[int]:
    return [length if d == axis else 1 for d in range(rank)]


@converter("Resize")
def resize(node: NodeContext) -> list[SSAValue]:
    if node.opset < 11:
        node.unsupported("Resize before opset 11 (inputs X, scales) is not supported")
    x = node.input(0)
    shape = node.shape(0)
    rank = len(shape)
    element = node.input_type(0).element_type
    mode = node.string("mode", "nearest")
    if mode != "nearest" and not is_float(element):
        node.unsupported(f"mode={mode!r} on {element} (only nearest on integers)")
    by_scale, by_size, regions = _axis_parameters(node, shape)
    for axis in range(rank):
        if by_scale[axis] is None and by_size[axis] is None:
            continue
        region = regions[axis] if regions is not None else None
        weights, bias = _probe(node, shape[axis], by_scale[axis], by_size[axis], region)
        m = weights.shape[0]
        if m == shape[axis] and np.array_equal(weights, np.eye(m)) and not bias.any():
            continue  # this axis is unchanged
        extrapolated = ~weights.any(axis=1)
        if mode == "nearest":
            rows = weights[~extrapolated]
            if not np.all((rows == 0) | (rows == 1)) or np.any(rows.sum(axis=1) != 1):
                node.unsupported("nearest-mode weights are not one-hot")  # not expected
            picks = node.emit_constant(np.argmax(weights, axis=1).astype(np.int64))
            x = node.emit(sh.GatherOp.create([x, picks], axis=axis)).output
            if extrapolated.any():
                where = node.emit_constant(extrapolated.reshape(_along_axis_shape(rank, axis, m)))
                value = node.emit_constant(np.full([1] * rank, bias[0], numpy_dtype(element)))
                x = node.emit(ew.WhereOp.create([where, value, x])).output
            continue
        x = _along_axis(node, x, axis, weights)
        if bias.any():
            shift = bias.reshape(_along_axis_shape(rank, axis, m)).astype(numpy_dtype(element))
            x = node.emit(ew.AddOp.create([x, node.emit_constant(shift)])).output
    return [x]
