"""Which nodes of an ONNX model get integer kernels, and which tensors that quantizes.

`plan_layers(model)` walks the graph once:

- a `Conv` with a constant weight, a `Gemm` with a constant B (no transA), a `MatMul`
  whose lhs has rank >= 2 (a constant rhs, or two activations) becomes a `Layer`: its
  float activation inputs are quantized, its weight per output channel, its bias to
  int32, and its output (or, when a Relu or a Clip with constant bounds is its only
  reader, that activation's output) unless only the graph's outputs read it;
- every other computing node is `KeptFloat` with the reason (excluded, no integer kernel,
  a weight that is not a constant);
- order-preserving nodes (MaxPool, Reshape, Flatten, Transpose, ...) whose input is
  quantized pass its parameters on to their output (`shared`), so `graph-fold-qdq` moves
  the codes themselves.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field

import onnx

QUANTIZABLE_OPS = frozenset({"Conv", "Gemm", "MatMul"})
#: ops whose output may share its input's quantization (they move or select values)
ORDER_PRESERVING_OPS = frozenset(
    {"MaxPool", "Reshape", "Flatten", "Transpose", "Squeeze", "Unsqueeze"}
)
#: ops that compute nothing worth reporting as "kept in float"
_STRUCTURAL_OPS = frozenset({"Constant", "Identity", "Shape", *ORDER_PRESERVING_OPS})


@dataclass(frozen=True)
class Layer:
    """A node that gets an integer kernel: its quantized activation inputs, constant
    weight (with the axis of its output channels), bias and observed output."""

    node: str
    op_type: str
    inputs: tuple[str, ...]
    weight: str | None
    weight_axis: int | None
    bias: str | None
    output: str


@dataclass(frozen=True)
class KeptFloat:
    """A node that stays in float, and why."""

    node: str
    op_type: str
    reason: str


@dataclass
class LayerPlan:
    layers: list[Layer] = field(default_factory=list)
    kept_float: list[KeptFloat] = field(default_factory=list)
    #: order-preserving node outputs -> the quantized input whose parameters they share
    shared: dict[str, str] = field(default_factory=dict)
    #: layer outputs no node reads (graph outputs only): they stay float
    unread: set[str] = field(default_factory=set)

    def activations(self) -> list[str]:
        """Tensors that need calibrated ranges (in graph order, no duplicates)."""
        names: list[str] = []
        for layer in self.layers:
            for name in (*layer.inputs, layer.output):
                if name not in names and name not in self.shared and name not in self.unread:
                    names.append(name)
        return names

    def quantized_tensors(self) -> list[str]:
        """Every tensor that gets a QuantizeLinear / DequantizeLinear pair."""
        return [*self.activations(), *self.shared]


def node_name(node: onnx.NodeProto, index: int) -> str:
    return node.name or f"{node.op_type}_{index}"


def _attribute(node: onnx.NodeProto, name: str, default: int | float) -> int | float:
    for attr in node.attribute:
        if attr.name == name:
            return onnx.helper.get_attribute_value(attr)  # type: ignore[no-any-return]
    return default


def plan_layers(model: onnx.ModelProto, exclude: Collection[str] = ()) -> LayerPlan:
    """The quantization plan of `model`; `exclude` names nodes or op types kept in float."""
    graph = model.graph
    constants = {init.name for init in graph.initializer} | {
        n.output[0] for n in graph.node if n.op_type == "Constant"
    }
    outputs = {o.name for o in graph.output}
    readers: dict[str, list[onnx.NodeProto]] = {}
    for node in graph.node:
        for name in node.input:
            readers.setdefault(name, []).append(node)
    ranks = _ranks(model)
    plan = LayerPlan()
    fused: set[str] = set()  # relus / clips whose output a layer's quantization covers
    for i, node in enumerate(graph.node):
        name = node_name(node, i)
        if node.op_type in _STRUCTURAL_OPS or name in fused:
            continue
        if name in exclude or node.op_type in exclude:
            plan.kept_float.append(KeptFloat(name, node.op_type, "excluded"))
            continue
        if node.op_type not in QUANTIZABLE_OPS:
            reason = "no integer kernel for this op: computed in float"
            plan.kept_float.append(KeptFloat(name, node.op_type, reason))
            continue
        layer_or_reason = _layer(node, name, constants, ranks)
        if isinstance(layer_or_reason, str):
            plan.kept_float.append(KeptFloat(name, node.op_type, layer_or_reason))
            continue
        out = layer_or_reason.output
        relu = readers.get(out, [])
        if len(relu) == 1 and _activation(relu[0], constants) and out not in outputs:
            layer_or_reason = _with_output(layer_or_reason, relu[0].output[0])
            fused.add(node_name(relu[0], _index(graph, relu[0])))
        if not readers.get(layer_or_reason.output):
            plan.unread.add(layer_or_reason.output)
        plan.layers.append(layer_or_reason)
    _share_through_order_preserving(graph, plan)
    return plan


def _activation(node: onnx.NodeProto, constants: set[str]) -> bool:
    """A Relu, or a Clip with constant bounds (a Relu6): its output is quantized instead
    of the layer's, and `graph-fold-qdq` keeps it in the integer layer's epilogue."""
    if node.op_type == "Relu":
        return True
    return node.op_type == "Clip" and all(not name or name in constants for name in node.input[1:])


def _index(graph: onnx.GraphProto, node: onnx.NodeProto) -> int:
    return next(i for i, n in enumerate(graph.node) if n is node)


def _with_output(layer: Layer, output: str) -> Layer:
    return Layer(
        layer.node,
        layer.op_type,
        layer.inputs,
        layer.weight,
        layer.weight_axis,
        layer.bias,
        output,
    )


def _ranks(model: onnx.ModelProto) -> dict[str, int]:
    inferred = onnx.shape_inference.infer_shapes(model)
    ranks: dict[str, int] = {}
    for info in (*inferred.graph.input, *inferred.graph.value_info, *inferred.graph.output):
        if info.type.HasField("tensor_type") and info.type.tensor_type.HasField("shape"):
            ranks[info.name] = len(info.type.tensor_type.shape.dim)
    for init in model.graph.initializer:
        ranks[init.name] = len(init.dims)
    return ranks


def _layer(
    node: onnx.NodeProto, name: str, constants: set[str], ranks: dict[str, int]
) -> Layer | str:
    """The node as a Layer, or the reason it stays in float."""
    inputs = list(node.input) + [""] * 3
    if node.op_type == "Conv":
        if inputs[1] not in constants:
            return "the weight is not a constant"
        bias = inputs[2] or None
        if bias is not None and bias not in constants:
            return "the bias is not a constant"
        return Layer(name, "Conv", (inputs[0],), inputs[1], 0, bias, node.output[0])
    if node.op_type == "Gemm":
        if _attribute(node, "transA", 0):
            return "Gemm with transA has no integer kernel"
        if inputs[1] not in constants:
            return "B is not a constant"
        c = inputs[2] or None
        if c is not None and c not in constants:
            return "C is not a constant"
        plain = _attribute(node, "alpha", 1.0) == 1.0 and _attribute(node, "beta", 1.0) == 1.0
        bias = c if plain and ranks.get(c or "", 0) == 1 else None
        axis = 0 if _attribute(node, "transB", 0) else 1
        return Layer(name, "Gemm", (inputs[0],), inputs[1], axis, bias, node.output[0])
    # MatMul
    if ranks.get(inputs[0], 0) < 2:
        return "MatMul with a 1-D lhs has no integer kernel"
    if inputs[1] in constants:
        if ranks.get(inputs[1]) != 2:
            return "MatMul with a constant rhs of rank other than 2"
        return Layer(name, "MatMul", (inputs[0],), inputs[1], 1, None, node.output[0])
    if ranks.get(inputs[1], 0) < 2:
        return "MatMul with a 1-D rhs has no integer kernel"
    return Layer(name, "MatMul", (inputs[0], inputs[1]), None, None, None, node.output[0])


def _share_through_order_preserving(graph: onnx.GraphProto, plan: LayerPlan) -> None:
    """Outputs of order-preserving nodes that layers read share their input's parameters
    (transitively), when that input is itself quantized."""
    producers = {out: node for node in graph.node for out in node.output}
    quantized = set(plan.activations())
    for layer in plan.layers:
        for name in layer.inputs:
            chain: list[str] = []
            current = name
            while current not in quantized and current in producers:
                node = producers[current]
                if node.op_type not in ORDER_PRESERVING_OPS or not node.input:
                    break
                chain.append(current)
                current = node.input[0]
            if current in quantized and chain:
                for link in chain:
                    plan.shared[link] = current
