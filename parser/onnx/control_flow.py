"""Scan (opset 9 and later) and If, inlined into plain ONNX nodes.

An If whose condition is a constant (as in most exported models, once shapes fold) is
the branch it picks; on a run-time condition both branches are computed and each output
is a `Where` of the two (their outputs must be declared with one static shape).

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

from mlc.parser.onnx.functions import (
    Expansion,
    FunctionBodyError,
    defined_values,
    rename_free,
    renamed_copy,
)
from mlc.parser.onnx.node import BIND_HINT

__all__ = ["MAX_SCAN_STEPS", "unroll_if", "unroll_scan"]

#: the most iterations unrolled
MAX_SCAN_STEPS = 4096


def _attr(node: onnx.NodeProto, name: str, default: object) -> object:
    for a in node.attribute:
        if a.name == name:
            return helper.get_attribute_value(a)
    return default


def _int_attr(node: onnx.NodeProto, name: str, default: int) -> int:
    value = _attr(node, name, default)
    if not isinstance(value, int):
        raise FunctionBodyError(f"attribute {name} must be an int, got {type(value).__name__}")
    return value


def _ints_attr(node: onnx.NodeProto, name: str, default: list[int]) -> list[int]:
    value = _attr(node, name, default)
    if not isinstance(value, list) or not all(isinstance(v, int) for v in value):
        raise FunctionBodyError(f"attribute {name} must be a list of ints")
    return value


def _constant(name: str, array: np.ndarray) -> onnx.NodeProto:
    return helper.make_node("Constant", [], [name], value=numpy_helper.from_array(array))


def _inline_graph(
    graph: onnx.GraphProto, prefix: str, bound: dict[str, str]
) -> tuple[list[onnx.NodeProto], list[str]]:
    """`graph`'s nodes (its initializers as Constants) with every value it defines renamed
    `<prefix><name>`, its inputs taken from `bound` (input name -> a value of the calling
    graph, passed on by an Identity); values it reads from outside keep their names, in
    nested subgraphs too. Returns the nodes and the names of its outputs."""
    names = {v: prefix + v for v in defined_values(graph)}

    def renamed(value: str) -> str:
        return names.get(value, value)

    nodes = [helper.make_node("Identity", [v], [names[k]]) for k, v in bound.items()]
    nodes += [_constant(names[t.name], numpy_helper.to_array(t)) for t in graph.initializer]
    for c, inner in enumerate(graph.node):
        copy = renamed_copy(inner, c, prefix, renamed)
        for attr in copy.attribute:  # a nested Scan / If reads this graph's values
            for sub in [attr.g] if attr.type == onnx.AttributeProto.GRAPH else attr.graphs:
                rename_free(sub, renamed, set())
        nodes.append(copy)
    return nodes, [renamed(o.name) for o in graph.output]


def unroll_if(
    node: onnx.NodeProto, opset: int, condition: np.ndarray | None, prefix: str
) -> Expansion:
    """`node` (an If) as plain nodes: the branch a constant `condition` picks, else both
    branches and a `Where` per output (which needs both branches' outputs declared with
    one static shape). `FunctionBodyError` says why an If cannot be inlined."""
    then_branch, else_branch = _attr(node, "then_branch", None), _attr(node, "else_branch", None)
    if not isinstance(then_branch, onnx.GraphProto) or not isinstance(else_branch, onnx.GraphProto):
        raise FunctionBodyError("an If without both branches")
    outputs = list(node.output)
    if condition is not None:
        if condition.size != 1:
            raise FunctionBodyError(f"a condition of {condition.size} elements")
        if bool(condition.reshape(-1)[0]):
            nodes, results = _inline_graph(then_branch, f"{prefix}then::", {})
        else:
            nodes, results = _inline_graph(else_branch, f"{prefix}else::", {})
        nodes += [helper.make_node("Identity", [r], [o]) for r, o in zip(results, outputs) if o]
        return Expansion(nodes, opset)
    for a, b in zip(then_branch.output, else_branch.output):
        sa, sb = _declared_shape(a), _declared_shape(b)
        if sa is None or sa != sb:
            raise FunctionBodyError(
                f"input '{node.input[0]}' (the condition of an If whose branches' outputs are "
                f"not declared with one static shape: {a.name}: {sa}, {b.name}: {sb}) must be "
                f"a constant known at import time{BIND_HINT}"
            )
    then_nodes, then_results = _inline_graph(then_branch, f"{prefix}then::", {})
    else_nodes, else_results = _inline_graph(else_branch, f"{prefix}else::", {})
    nodes = then_nodes + else_nodes
    for t, e, o in zip(then_results, else_results, outputs):
        if o:
            nodes.append(helper.make_node("Where", [node.input[0], t, e], [o]))
    return Expansion(nodes, opset)


def _declared_shape(info: onnx.ValueInfoProto) -> list[int] | None:
    """A graph output's declared static shape, None where it has none."""
    tensor = info.type.tensor_type
    if not info.type.HasField("tensor_type") or not tensor.HasField("shape"):
        return None
    dims = list(tensor.shape.dim)
    return None if any(not d.HasField("dim_value") for d in dims) else [d.dim_value for d in dims]


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
    m = _int_attr(node, "num_scan_inputs", 0)
    n = len(node.input) - m
    k = len(body.output) - n
    if m < 1 or n < 0 or k < 0 or len(body.input) != n + m:
        raise FunctionBodyError("its body's inputs and outputs do not match the node's")
    in_axes = _ints_attr(node, "scan_input_axes", [0] * m)
    in_dirs = _ints_attr(node, "scan_input_directions", [0] * m)
    out_axes = _ints_attr(node, "scan_output_axes", [0] * k)
    out_dirs = _ints_attr(node, "scan_output_directions", [0] * k)
    if len(in_axes) != m or len(in_dirs) != m or len(out_axes) != k or len(out_dirs) != k:
        raise FunctionBodyError("scan axes / directions do not match the inputs and outputs")
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
    state = list(node.input[:n])
    pieces: list[list[str]] = [[] for _ in range(k)]
    for t in range(steps):
        at = f"{prefix}{t}::"
        bound = {body.input[i].name: state[i] for i in range(n)}
        for j in range(m):
            index = t if in_dirs[j] == 0 else steps - 1 - t
            idx, row = f"{at}index{j}", f"{at}row{j}"
            nodes.append(_constant(idx, np.array(index, np.int64)))
            nodes.append(
                helper.make_node("Gather", [node.input[n + j], idx], [row], axis=in_axes[j])
            )
            bound[body.input[n + j].name] = row
        copy, results = _inline_graph(body, at, bound)
        nodes += copy
        state = results[:n]
        for j in range(k):
            pieces[j].append(results[n + j])
    for i in range(n):
        if i < len(node.output) and node.output[i]:
            nodes.append(helper.make_node("Identity", [state[i]], [node.output[i]]))
    for j in range(k):
        out = node.output[n + j] if n + j < len(node.output) else ""
        if not out:
            continue
        order = pieces[j] if out_dirs[j] == 0 else pieces[j][::-1]
        axis = out_axes[j]  # a negative axis counts from the stacked output's end
        axes = f"{prefix}stack_axes{j}"  # Unsqueeze's axes input from opset 13
        if opset >= 13:
            nodes.append(_constant(axes, np.array([axis], np.int64)))
        stacked = []
        for t, piece in enumerate(order):
            name = f"{prefix}stack{j}_{t}"
            if opset >= 13:
                nodes.append(helper.make_node("Unsqueeze", [piece, axes], [name]))
            else:
                nodes.append(helper.make_node("Unsqueeze", [piece], [name], axes=[axis]))
            stacked.append(name)
        nodes.append(helper.make_node("Concat", stacked, [out], axis=axis))
    return Expansion(nodes, opset)
