"""Write a quantization plan into an ONNX model in QDQ form.

Every quantized activation `t` gets `QuantizeLinear -> DequantizeLinear` right after its
producer, and every reader of `t` reads the dequantized tensor (graph outputs keep the
float `t`). Weights become int8 initializers read through a `DequantizeLinear` (per
output channel along `axis`), biases int32 initializers with scale
input_scale * weight_scale. The result is standard ONNX (opset >= 13) that onnxruntime
runs as well; mlc's `graph-fold-qdq` turns each dequantize -> product -> quantize into an
integer kernel.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import onnx
from onnx import helper, numpy_helper

from mlc.quantization.params import (
    QuantParams,
    bias_params,
    quantize_bias,
    weight_params,
)
from mlc.quantization.plan import Layer, LayerPlan, node_name
from mlc.quantization.prepare import prune_initializers

#: QuantizeLinear / DequantizeLinear with per-axis scales need opset 13
MIN_OPSET = 13


def default_opset(model: onnx.ModelProto) -> int:
    for entry in model.opset_import:
        if entry.domain in ("", "ai.onnx"):
            return int(entry.version)
    return 1


def with_min_opset(model: onnx.ModelProto) -> onnx.ModelProto:
    """`model` converted to opset 13 when it is older (QDQ needs per-axis scales)."""
    if default_opset(model) >= MIN_OPSET:
        return model
    from onnx import version_converter

    return version_converter.convert_version(model, MIN_OPSET)


class _Writer:
    def __init__(self, model: onnx.ModelProto) -> None:
        self.model = onnx.ModelProto()
        self.model.CopyFrom(model)
        graph = self.model.graph
        self.initializers = {init.name: init for init in graph.initializer}
        self.taken = set(self.initializers) | {i.name for i in graph.input}
        for node in graph.node:
            self.taken.update(node.output)
        self.inits: list[onnx.TensorProto] = []
        self.head: list[onnx.NodeProto] = []

    def fresh(self, name: str) -> str:
        candidate, k = name, 1
        while candidate in self.taken:
            candidate, k = f"{name}_{k}", k + 1
        self.taken.add(candidate)
        return candidate

    def constant(self, array: np.ndarray, name: str) -> str:
        name = self.fresh(name)
        self.inits.append(numpy_helper.from_array(np.asarray(array), name))
        return name

    def params(self, p: QuantParams, base: str) -> tuple[str, str]:
        return self.constant(p.scale, f"{base}_scale"), self.constant(
            p.zero_point, f"{base}_zero_point"
        )

    def dequantize(self, codes: str, p: QuantParams, base: str) -> tuple[str, onnx.NodeProto]:
        scale, zero = self.params(p, base)
        out = self.fresh(f"{base}_dequantized")
        attrs = {"axis": p.axis} if p.axis is not None else {}
        node = helper.make_node(
            "DequantizeLinear", [codes, scale, zero], [out], name=self.fresh(f"{base}_DQ"), **attrs
        )
        return out, node

    def qdq(self, tensor: str, p: QuantParams) -> tuple[str, list[onnx.NodeProto]]:
        scale, zero = self.params(p, tensor)
        codes = self.fresh(f"{tensor}_quantized")
        q = helper.make_node(
            "QuantizeLinear", [tensor, scale, zero], [codes], name=self.fresh(f"{tensor}_Q")
        )
        out = self.fresh(f"{tensor}_dequantized")
        dq = helper.make_node(
            "DequantizeLinear", [codes, scale, zero], [out], name=self.fresh(f"{tensor}_DQ")
        )
        return out, [q, dq]

    def weight(self, name: str, p: QuantParams) -> str:
        w = numpy_helper.to_array(self.initializers[name])
        codes = self.constant(p.quantize(w), f"{name}_quantized")
        out, node = self.dequantize(codes, p, name)
        self.head.append(node)
        return out


def write_qdq(
    model: onnx.ModelProto,
    plan: LayerPlan,
    activations: Mapping[str, QuantParams],
    *,
    per_channel: bool = True,
) -> onnx.ModelProto:
    """`model` with `plan` applied; `activations` has the parameters of every tensor in
    `plan.activations()` (shared tensors take their source's)."""
    writer = _Writer(model)
    graph = writer.model.graph
    params = dict(activations)
    for shared, source in plan.shared.items():
        params[shared] = params[source]
    quantized = plan.quantized_tensors()
    renamed: dict[str, str] = {}
    after: dict[str, list[onnx.NodeProto]] = {}
    for tensor in quantized:
        renamed[tensor], after[tensor] = writer.qdq(tensor, params[tensor])
    slot_names = _weight_and_bias_inputs(writer, plan, params, per_channel)
    nodes: list[onnx.NodeProto] = []
    graph_inputs = {i.name for i in graph.input}
    for tensor in quantized:
        if tensor in graph_inputs:
            nodes += after[tensor]
    for i, node in enumerate(graph.node):
        slots = slot_names.get(node_name(node, i), {})
        for j, name in enumerate(node.input):
            node.input[j] = slots.get(j, renamed.get(name, name))
        nodes.append(node)
        for out in node.output:
            nodes += after.get(out, [])
    del graph.node[:]
    graph.node.extend([*writer.head, *nodes])
    graph.initializer.extend(writer.inits)
    prune_initializers(graph)  # the float weights and biases the codes replaced
    onnx.checker.check_model(writer.model)
    return writer.model


def _weight_and_bias_inputs(
    writer: _Writer,
    plan: LayerPlan,
    params: Mapping[str, QuantParams],
    per_channel: bool,
) -> dict[str, dict[int, str]]:
    """Per layer node: input slot -> the dequantized weight / bias it reads."""
    slots: dict[str, dict[int, str]] = {}
    weights: dict[str, tuple[str, QuantParams]] = {}
    for layer in plan.layers:
        if layer.weight is None:
            continue
        if layer.weight not in weights:
            w = numpy_helper.to_array(writer.initializers[layer.weight])
            p = weight_params(w, layer.weight_axis if per_channel else None)
            weights[layer.weight] = (writer.weight(layer.weight, p), p)
        name, p = weights[layer.weight]
        slots[layer.node] = {1: name}
        if layer.bias is not None:
            slots[layer.node][2] = _bias(writer, layer, params[layer.inputs[0]], p)
    return slots


def _bias(writer: _Writer, layer: Layer, x: QuantParams, w: QuantParams) -> str:
    assert layer.bias is not None
    b = numpy_helper.to_array(writer.initializers[layer.bias]).astype(np.float64)
    p = bias_params(x.scale, w, b.shape[0])
    codes = writer.constant(quantize_bias(b, p), f"{layer.node}_bias_quantized")
    out, node = writer.dequantize(codes, p, f"{layer.node}_bias")
    writer.head.append(node)
    return out
