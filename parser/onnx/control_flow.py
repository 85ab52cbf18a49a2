"""Scan (opset 9 and later), unrolled over its static trip count into plain ONNX nodes.

Shapes are static, so a Scan over T elements is T copies of its body, each copy's values
renamed (`<scan>::<t>::<name>`), its state inputs the previous copy's state outputs:

    Scan(s0, x) body(s, x_t) -> (s', y_t)
    ==>  x_0 = Gather(x, 0, axis)   s_1, y_0 = body(s0, x_0)
         x_1 = Gather(x, 1, axis)   s_2, y_1 = body(s_1, x_1)   ...
         final state = Identity(s_T);  y = Concat(Unsqueeze(y_0), ..., axis)

`scan_input_directions` / `scan_output_directions` reverse the order an input is read or
an output is stacked; the body may read values of the enclosing graph (they keep their
names). The importer converts the nodes like a function body's (`Expansion`).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import onnx
from onnx import helper, numpy_helper

from mlc.parser.onnx.functions import Expansion, FunctionBodyError

__all__ = ["MAX_SCAN_STEPS", "unroll_scan"]

#: the most iterations unrolled
MAX_SCAN_STEPS = 4096


def _attr(node: onnx.NodeProto, name: str, default: object) -> object:
    for a in node.attribute:
        if a.name == name:
            return helper.get_attribute_value(a)
    return default


def _constant(name: str, array: np.ndarray) -> onnx.NodeProto:
    return helper.make_node("Constant", [], [name], value=numpy_helper.from_array(array))


def unroll_scan(
    node: onnx.NodeProto, opset: int, shapes: Sequence[Sequence[int] | None], prefix: str
) -> Expansion:
    """`node` (a Scan) as plain nodes; `shapes[i]` is the shape of `node.input[i]`.
    `FunctionBodyError` says why a Scan cannot be unrolled."""
    if opset < 9:
        raise FunctionBodyError("Scan before opset 9 (a batch axis and sequence_lens)")
    body = _attr(node, "body", None)
    if not isinstance(body, onnx.GraphProto):
        raise FunctionBodyError("a Scan without a body graph")
    for inner in body.node:
        if any(
            a.type in (onnx.AttributeProto.GRAPH, onnx.AttributeProto.GRAPHS)
            for a in inner.attribute
        ):
            raise FunctionBodyError(f"its body has a subgraph (node {inner.op_type})")
    m = int(_attr(node, "num_scan_inputs", 0))  # type: ignore[call-overload]
    n = len(node.input) - m
    k = len(body.output) - n
    if m < 1 or n < 0 or k < 0 or len(body.input) != n + m:
        raise FunctionBodyError("its body's inputs and outputs do not match the node's")
    in_axes = list(_attr(node, "scan_input_axes", [0] * m))  # type: ignore[call-overload]
    in_dirs = list(_attr(node, "scan_input_directions", [0] * m))  # type: ignore[call-overload]
    out_axes = list(_attr(node, "scan_output_axes", [0] * k))  # type: ignore[call-overload]
    out_dirs = list(_attr(node, "scan_output_directions", [0] * k))  # type: ignore[call-overload]
    scanned = [shapes[n + j] for j in range(m)]
    if any(s is None for s in scanned):
        raise FunctionBodyError("a scan input without a static shape")
    in_axes = [a % len(s) for a, s in zip(in_axes, scanned)]  # type: ignore[arg-type]
    lengths = {s[a] for a, s in zip(in_axes, scanned)}  # type: ignore[index]
    if len(lengths) != 1:
        raise FunctionBodyError(f"scan inputs of different lengths {sorted(lengths)}")
    steps = lengths.pop()
    if steps < 1 or steps > MAX_SCAN_STEPS:
        raise FunctionBodyError(f"{steps} iterations (1 to {MAX_SCAN_STEPS} are unrolled)")

    nodes: list[onnx.NodeProto] = []
    defined = {i.name for i in body.input} | {t.name for t in body.initializer}
    defined |= {o for inner in body.node for o in inner.output}
    state = list(node.input[:n])
    pieces: list[list[str]] = [[] for _ in range(k)]
    for t in range(steps):
        at = f"{prefix}{t}::"
        names = {v: at + v for v in defined}
        for j in range(m):
            index = t if in_dirs[j] == 0 else steps - 1 - t
            idx = f"{at}index{j}"
            nodes.append(_constant(idx, np.array(index, np.int64)))
            nodes.append(
                helper.make_node(
                    "Gather",
                    [node.input[n + j], idx],
                    [names[body.input[n + j].name]],
                    axis=in_axes[j],
                )
            )
        for i in range(n):
            nodes.append(helper.make_node("Identity", [state[i]], [names[body.input[i].name]]))
        for init in body.initializer:
            nodes.append(_constant(names[init.name], numpy_helper.to_array(init)))
        for c, inner in enumerate(body.node):
            copy = onnx.NodeProto()
            copy.CopyFrom(inner)
            copy.name = at + (inner.name or f"{inner.op_type}_{c}")
            copy.input[:] = [names.get(v, v) for v in inner.input]
            copy.output[:] = [names.get(v, v) for v in inner.output]
            nodes.append(copy)
        state = [names.get(o.name, o.name) for o in body.output[:n]]
        for j in range(k):
            pieces[j].append(names.get(body.output[n + j].name, body.output[n + j].name))
    for i in range(n):
        if i < len(node.output) and node.output[i]:
            nodes.append(helper.make_node("Identity", [state[i]], [node.output[i]]))
    for j in range(k):
        out = node.output[n + j] if n + j < len(node.output) else ""
        if not out:
            continue
        order = pieces[j] if out_dirs[j] == 0 else pieces[j][::-1]
        axis = out_axes[j]  # a negative axis counts from the stacked output's end
        stacked = []
        for t, piece in enumerate(order):
            name = f"{prefix}stack{j}_{t}"
            if opset >= 13:
                axes = f"{prefix}stack_axes{j}_{t}"
                nodes.append(_constant(axes, np.array([axis], np.int64)))
                nodes.append(helper.make_node("Unsqueeze", [piece, axes], [name]))
            else:
                nodes.append(helper.make_node("Unsqueeze", [piece], [name], axes=[axis]))
            stacked.append(name)
        nodes.append(helper.make_node("Concat", stacked, [out], axis=axis))
    return Expansion(nodes, opset)
