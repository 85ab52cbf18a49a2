"""Converters of ONNX operators to the reduce graph ops.

ReduceX: `axes` is an attribute up to opset 12 (ReduceSum) / 17 (the others) and an
optional input from then on; it must be known at import time. Missing or empty axes mean
all axes, unless `noop_with_empty_axes = 1`, which reduces over no axis (the identity for
ReduceSum/Mean/Max/Min/Prod, |x| for ReduceL1, x * x for ReduceSumSquare, ...).
"""

from __future__ import annotations

from xdsl.ir import SSAValue

from mlc.dialects.graph import reduce as rd
from mlc.dialects.graph.base import GraphError, normalize_axis
from mlc.parser.onnx.node import NodeContext, converter

#: ONNX operator -> (graph op, first opset in which `axes` is an input)
_REDUCE: dict[str, tuple[type[rd.ReduceOp], int]] = {
    "ReduceSum": (rd.ReduceSumOp, 13),
    "ReduceMean": (rd.ReduceMeanOp, 18),
    "ReduceMax": (rd.ReduceMaxOp, 18),
    "ReduceMin": (rd.ReduceMinOp, 18),
    "ReduceProd": (rd.ReduceProdOp, 18),
    "ReduceL1": (rd.ReduceL1Op, 18),
    "ReduceL2": (rd.ReduceL2Op, 18),
    "ReduceLogSum": (rd.ReduceLogSumOp, 18),
    "ReduceLogSumExp": (rd.ReduceLogSumExpOp, 18),
    "ReduceSumSquare": (rd.ReduceSumSquareOp, 18),
}


def _requested_axes(node: NodeContext, axes_input_since: int) -> list[int] | None:
    """The axes the node names (attribute or constant input), or None when it names none."""
    if node.opset >= axes_input_since:
        if node.has_attr("axes"):
            node.unsupported(
                f"attribute 'axes' is not defined in opset {node.opset} "
                f"(it is an input since opset {axes_input_since})"
            )
        if not node.has_input(1):
            return None
        if node.is_constant(1):
            return node.constant_ints(1, "axes")
        if node.shape(1) == (0,):
            return []  # a runtime input, but its static shape says it is empty
        return node.constant_ints(1, "axes decide the result's static shape")
    if node.num_inputs > 1:
        node.unsupported(f"'axes' is an attribute, not an input, before opset {axes_input_since}")
    return node.ints("axes") if node.has_attr("axes") else None


def normalized_axes(axes: list[int], rank: int) -> list[int]:
    """[-1, 0] -> [0, rank - 1]; out-of-range or repeated axes make the node invalid."""
    normalized = [normalize_axis(a, rank) for a in axes]
    if len(set(normalized)) != len(normalized):
        raise GraphError(f"axes {axes} name an axis more than once")
    return sorted(normalized)


@converter(*_REDUCE)
def reduce(node: NodeContext) -> list[SSAValue]:
    op_type, axes_input_since = _REDUCE[node.node.op_type]
    rank = node.rank(0)
    axes = _requested_axes(node, axes_input_since)
    if not axes:
        axes = [] if node.int("noop_with_empty_axes", 0) else list(range(rank))
    keepdims = bool(node.int("keepdims", 1))
    op = op_type.create([node.input(0)], axes=normalized_axes(axes, rank), keepdims=keepdims)
    return [node.emit(op).output]


@converter("ArgMax", "ArgMin")
def arg_reduce(node: NodeContext) -> list[SSAValue]:
    op_type = rd.ArgMaxOp if node.node.op_type == "ArgMax" else rd.ArgMinOp
    axis = normalize_axis(node.int("axis", 0), node.rank(0))
    op = op_type.create(
        [node.input(0)],
        axis=axis,
        keepdims=bool(node.int("keepdims", 1)),
        select_last_index=bool(node.int("select_last_index", 0)),
    )
    return [node.emit(op).output]
