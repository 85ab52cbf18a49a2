"""Write a quantization plan into an ONNX model in bf16: each layer's constant weight is
stored as a bfloat16 initializer read through `Cast(to=FLOAT)`, and each of its float
activation inputs is rounded to bfloat16 (`Cast(to=BFLOAT16) -> Cast(to=FLOAT)`) just
before the layer, whose products and sums stay f32 (as `vdpbf16ps` accumulates).

    w (f32) -> Conv                 w_bf16 (bf16) -> Cast(f32) -> Conv
    x -------> Conv        ->       x -> Cast(bf16) -> Cast(f32) -> Conv

ONNX's Conv takes no bf16 operands, so the rounding is written with casts around f32
layers: standard ONNX that onnxruntime runs, half the weights' bytes, and the accuracy a
bf16 model has. Biases and every other node stay f32.
"""

from __future__ import annotations

import ml_dtypes
import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from mlc.quantization.plan import LayerPlan, node_name

__all__ = ["write_bf16"]


def _bf16_initializer(array: np.ndarray, name: str) -> onnx.TensorProto:
    bits = array.astype(np.float32).astype(ml_dtypes.bfloat16).view(np.uint16)
    return helper.make_tensor(name, TensorProto.BFLOAT16, array.shape, bits.tobytes(), raw=True)


def write_bf16(model: onnx.ModelProto, plan: LayerPlan) -> onnx.ModelProto:
    """A copy of `model` with `plan`'s layers' weights stored in bf16 and their activation
    inputs rounded to bf16 (see the module docstring)."""
    out = onnx.ModelProto()
    out.CopyFrom(model)
    graph = out.graph
    initializers = {init.name: init for init in graph.initializer}
    layers = {layer.node: layer for layer in plan.layers}
    weight_casts: list[onnx.NodeProto] = []
    stored: set[str] = set()
    nodes: list[onnx.NodeProto] = []
    rounded: dict[str, str] = {}  # activation -> its bf16-rounded f32 copy
    for i, node in enumerate(graph.node):
        layer = layers.get(node_name(node, i))
        if layer is None:
            nodes.append(node)
            continue
        weight = layer.weight
        if weight in initializers and weight not in stored:
            array = numpy_helper.to_array(initializers[weight])
            graph.initializer.append(_bf16_initializer(array, f"{weight}_bf16"))
            weight_casts.append(
                helper.make_node("Cast", [f"{weight}_bf16"], [weight], to=TensorProto.FLOAT)
            )
            stored.add(weight)
        for k, name in enumerate(node.input):
            if name not in layer.inputs:
                continue
            if name not in rounded:
                rounded[name] = f"{name}_bf16_rounded"
                nodes.append(
                    helper.make_node("Cast", [name], [f"{name}_bf16"], to=TensorProto.BFLOAT16)
                )
                nodes.append(
                    helper.make_node(
                        "Cast", [f"{name}_bf16"], [rounded[name]], to=TensorProto.FLOAT
                    )
                )
            node.input[k] = rounded[name]
        nodes.append(node)
    for weight in stored:  # the f32 weight is now the cast's output
        graph.initializer.remove(initializers[weight])
    del graph.node[:]
    graph.node.extend([*weight_casts, *nodes])
    return out
