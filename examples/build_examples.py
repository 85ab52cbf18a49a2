"""Build the bundled example models (deterministic weights) with onnx.helper.

    python examples/build_examples.py      # rewrites examples/*.onnx

- tiny_resnet.onnx: a ResNet-style CNN on 1x3x32x32 images: conv-bn-relu stem, max pool,
  two basic residual blocks (the second strided, with a 1x1 projection), global average
  pool, flatten, a Gemm classifier and softmax.
- mlp.onnx: a two-layer perceptron, 8x784 -> 128 (Relu) -> 10.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

HERE = Path(__file__).resolve().parent
OPSET = 17


class GraphBuilder:
    def __init__(self, seed: int = 0) -> None:
        self.rng = np.random.default_rng(seed)
        self.nodes: list[onnx.NodeProto] = []
        self.inits: list[onnx.TensorProto] = []
        self.count = 0

    def weight(self, name: str, shape: tuple[int, ...], scale: float | None = None) -> str:
        fan_in = int(np.prod(shape[1:])) if len(shape) > 1 else shape[0]
        std = scale if scale is not None else np.sqrt(2.0 / fan_in)
        self.inits.append(
            numpy_helper.from_array(
                (self.rng.standard_normal(shape) * std).astype(np.float32), name
            )
        )
        return name

    def node(self, op: str, inputs: list[str], **attrs: object) -> str:
        self.count += 1
        out = f"{op.lower()}_{self.count}"
        self.nodes.append(helper.make_node(op, inputs, [out], name=f"{op}_{self.count}", **attrs))
        return out

    def conv_bn(self, x: str, cin: int, cout: int, k: int, stride: int, relu: bool) -> str:
        n = self.count
        w = self.weight(f"conv{n}.w", (cout, cin, k, k))
        y = self.node(
            "Conv", [x, w], kernel_shape=[k, k], strides=[stride, stride], pads=[k // 2] * 4
        )
        gamma = self.weight(f"bn{n}.gamma", (cout,), 0.1)
        self.inits[-1] = numpy_helper.from_array(1 + numpy_helper.to_array(self.inits[-1]), gamma)
        beta = self.weight(f"bn{n}.beta", (cout,), 0.1)
        mean = self.weight(f"bn{n}.mean", (cout,), 0.1)
        var = f"bn{n}.var"
        self.inits.append(
            numpy_helper.from_array(self.rng.uniform(0.5, 1.5, cout).astype(np.float32), var)
        )
        y = self.node("BatchNormalization", [y, gamma, beta, mean, var], epsilon=1e-5)
        return self.node("Relu", [y]) if relu else y

    def basic_block(self, x: str, cin: int, cout: int, stride: int) -> str:
        y = self.conv_bn(x, cin, cout, 3, stride, relu=True)
        y = self.conv_bn(y, cout, cout, 3, 1, relu=False)
        shortcut = (
            x if stride == 1 and cin == cout else self.conv_bn(x, cin, cout, 1, stride, relu=False)
        )
        return self.node("Relu", [self.node("Add", [y, shortcut])])

    def model(
        self, name: str, inputs: list[onnx.ValueInfoProto], output: str, out_shape: list[int]
    ) -> onnx.ModelProto:
        graph = helper.make_graph(
            self.nodes,
            name,
            inputs,
            [helper.make_tensor_value_info(output, TensorProto.FLOAT, out_shape)],
            self.inits,
        )
        model = helper.make_model(
            graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="mlc-examples"
        )
        model.ir_version = 8
        onnx.checker.check_model(model, full_check=True)
        return model


def tiny_resnet() -> onnx.ModelProto:
    b = GraphBuilder(seed=0)
    x = b.conv_bn("image", 3, 16, 3, 1, relu=True)
    x = b.node("MaxPool", [x], kernel_shape=[2, 2], strides=[2, 2])
    x = b.basic_block(x, 16, 16, 1)
    x = b.basic_block(x, 16, 32, 2)
    x = b.node("GlobalAveragePool", [x])
    x = b.node("Flatten", [x], axis=1)
    w = b.weight("fc.w", (10, 32))
    bias = b.weight("fc.b", (10,), 0.1)
    x = b.node("Gemm", [x, w, bias], transB=1)
    x = b.node("Softmax", [x], axis=1)
    image = helper.make_tensor_value_info("image", TensorProto.FLOAT, [1, 3, 32, 32])
    return b.model("tiny_resnet", [image], x, [1, 10])


def mlp() -> onnx.ModelProto:
    b = GraphBuilder(seed=1)
    w1, b1 = b.weight("fc1.w", (784, 128)), b.weight("fc1.b", (128,), 0.1)
    w2, b2 = b.weight("fc2.w", (128, 10)), b.weight("fc2.b", (10,), 0.1)
    x = b.node("Gemm", ["x", w1, b1])
    x = b.node("Relu", [x])
    x = b.node("Gemm", [x, w2, b2])
    inp = helper.make_tensor_value_info("x", TensorProto.FLOAT, [8, 784])
    return b.model("mlp", [inp], x, [8, 10])


def main() -> None:
    for name, build in (("tiny_resnet", tiny_resnet), ("mlp", mlp)):
        path = HERE / f"{name}.onnx"
        onnx.save(build(), path)
        print(f"wrote {path} ({path.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
