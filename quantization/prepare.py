"""Float-model preparation before quantization: inference batch normalization folded into
the convolution that feeds it (W' = W * s, b' = (b - mean) * s + beta with
s = gamma / sqrt(var + epsilon), in float64), so the folded convolution is one quantized
layer instead of a float batch norm between two quantized tensors. The same fold as the
graph pass `fold-batchnorm`, on the ONNX graph, whose tensor names the QDQ model keeps.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import helper, numpy_helper


def fold_batch_norms(model: onnx.ModelProto) -> onnx.ModelProto:
    """A copy of `model` with each Conv -> BatchNormalization pair (constant weights and
    statistics, the conv read by the batch norm only, one batch-norm output) folded."""
    out = onnx.ModelProto()
    out.CopyFrom(model)
    graph = out.graph
    inits = {init.name: init for init in graph.initializer}
    readers: dict[str, int] = {}
    for node in graph.node:
        for name in node.input:
            readers[name] = readers.get(name, 0) + 1
    outputs = {o.name for o in graph.output}
    producers = {node.output[0]: node for node in graph.node if node.output}
    drop: set[int] = set()
    for index, bn in enumerate(graph.node):
        conv = producers.get(bn.input[0]) if bn.op_type == "BatchNormalization" else None
        if conv is None or conv.op_type != "Conv" or len(bn.output) != 1:
            continue
        names = [conv.input[1], *bn.input[1:5]] + (
            [conv.input[2]] if len(conv.input) > 2 and conv.input[2] else []
        )
        if not all(n in inits for n in names) or readers.get(conv.output[0]) != 1:
            continue
        if conv.output[0] in outputs:
            continue
        w = numpy_helper.to_array(inits[conv.input[1]]).astype(np.float64)
        gamma, beta, mean, var = (
            numpy_helper.to_array(inits[n]).astype(np.float64) for n in bn.input[1:5]
        )
        epsilon = next((a.f for a in bn.attribute if a.name == "epsilon"), 1e-5)
        scale = gamma / np.sqrt(var + epsilon)
        bias = numpy_helper.to_array(inits[names[5]]).astype(np.float64) if len(names) > 5 else 0.0
        dtype = numpy_helper.to_array(inits[conv.input[1]]).dtype
        w_name, b_name = f"{conv.output[0]}_folded_weight", f"{conv.output[0]}_folded_bias"
        graph.initializer.extend(
            [
                numpy_helper.from_array(
                    (w * scale.reshape(-1, *[1] * (w.ndim - 1))).astype(dtype), w_name
                ),
                numpy_helper.from_array(((bias - mean) * scale + beta).astype(dtype), b_name),
            ]
        )
        attrs = {a.name: helper.get_attribute_value(a) for a in conv.attribute}
        folded = helper.make_node(
            "Conv", [conv.input[0], w_name, b_name], [bn.output[0]], name=conv.name, **attrs
        )
        conv.CopyFrom(folded)
        drop.add(index)
    kept = [node for i, node in enumerate(graph.node) if i not in drop]
    del graph.node[:]
    graph.node.extend(kept)
    prune_initializers(graph)
    return out


def prune_initializers(graph: onnx.GraphProto) -> None:
    """Remove the initializers no node reads (and no graph output names)."""
    read = {name for node in graph.node for name in node.input} | {o.name for o in graph.output}
    unused = [init for init in graph.initializer if init.name not in read]
    for init in unused:
        graph.initializer.remove(init)
