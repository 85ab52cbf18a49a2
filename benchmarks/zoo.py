"""Standard ImageNet CNNs as ONNX models, for compile-time benchmarks.

    from mlc.benchmarks.zoo import ZOO, resnet50
    case = ZOO["resnet50"].make(small=True)   # a `Case` (see `mlc.benchmarks.models`)
    full = resnet50()                         # batch 1, 3x224x224, 1000 classes, 53 Conv nodes

The builders follow torchvision's topologies with random weights from a fixed seed (He-scaled
convs, random inference `BatchNormalization` statistics), batch 1, opset 17, IR version 8, and
`numpy_fn=None` (onnxruntime is the reference). `flops` counts the Conv and Gemm
multiply-adds as 2 flops each. Every builder takes `size` (the input height and width) and a
channel multiplier (`width`; `growth` for DenseNet); the `small` entries of `ZOO` keep the full
layer structure (the same Conv counts) on 32x32 inputs with 1/4 to 1/16 of the channels.

- `resnet50`: ResNet-50 v1.5, bottlenecks [3, 4, 6, 3], stride on the 3x3 conv (53 Convs);
  each bottleneck's last conv has weights scaled by 0.2 so that 16 residual Adds keep the
  activations O(1) (as trained nets' small last-BN gammas do).
- `densenet121`: DenseNet-121, dense blocks [6, 12, 24, 16], growth 32, bn_size 4 (120 Convs).
- `inception_v1`: GoogLeNet without aux heads or LRN, convs with bias + Relu, the original
  5x5 branch (57 Convs); its max pools use explicit pads with `ceil_mode=0`, giving the
  standard 112/56/28/14/7 feature maps.
- `squeezenet`: SqueezeNet 1.1, eight Fire modules, final Conv 1x1 to the classes (26 Convs).
- `mobilenet_v2`: MobileNetV2, depthwise (grouped) convs, `Clip(0, 6)` as Relu6 (52 Convs).
"""

from __future__ import annotations

import numpy as np

from mlc.benchmarks.models import Benchmark, Case, _Builder, _input

__all__ = [
    "ZOO",
    "densenet121",
    "inception_v1",
    "mobilenet_v2",
    "param_count",
    "resnet50",
    "squeezenet",
]

CLASSES = 1000


def _ch(c: int, width: float) -> int:
    """`c` channels scaled by `width`, at least 1."""
    return max(1, round(c * width))


class _Net:
    """A `_Builder` that tracks each NCHW tensor's (channels, height, width) and the flops."""

    def __init__(self, size: int, seed: int = 0) -> None:
        self.b = _Builder(seed)
        self.size = size
        self.shapes: dict[str, tuple[int, int, int]] = {"x": (3, size, size)}
        self.flops = 0
        self.layers = 0

    def _name(self, prefix: str) -> str:
        self.layers += 1
        return f"{prefix}{self.layers}"

    def conv(
        self,
        x: str,
        cout: int,
        k: int,
        stride: int = 1,
        pad: int = 0,
        *,
        group: int = 1,
        bias: bool = False,
        gain: float = 1.0,
    ) -> str:
        """Conv with He-scaled weights times `gain`, optionally with a bias."""
        c, h, w = self.shapes[x]
        name = self._name("conv")
        shape = (cout, c // group, k, k)
        std = gain * np.sqrt(2.0 / (shape[1] * k * k))
        inputs = [
            x,
            self.b.const(
                f"{name}.w", self.b.rng.standard_normal(shape, np.float32) * np.float32(std)
            ),
        ]
        if bias:
            inputs.append(self.b.const(f"{name}.b", 0.1 * self.b.rng.standard_normal(cout)))
        y = self.b.node(
            "Conv", inputs, kernel_shape=[k, k], strides=[stride] * 2, pads=[pad] * 4, group=group
        )
        oh, ow = (h + 2 * pad - k) // stride + 1, (w + 2 * pad - k) // stride + 1
        self.flops += 2 * cout * oh * ow * (c // group) * k * k
        self.shapes[y] = (cout, oh, ow)
        return y

    def _same(self, x: str, y: str) -> str:
        self.shapes[y] = self.shapes[x]
        return y

    def bn(self, x: str) -> str:
        return self._same(x, self.b.batch_norm(x, self.shapes[x][0], self._name("bn")))

    def relu(self, x: str) -> str:
        return self._same(x, self.b.node("Relu", [x]))

    def relu6(self, x: str) -> str:
        if "relu6.min" not in self.b.weights:
            self.b.const("relu6.min", np.array(0.0))
            self.b.const("relu6.max", np.array(6.0))
        return self._same(x, self.b.node("Clip", [x, "relu6.min", "relu6.max"]))

    def conv_bn(
        self, x: str, cout: int, k: int, stride: int = 1, pad: int = 0, gain: float = 1.0
    ) -> str:
        """Conv (no bias) + BatchNormalization."""
        return self.bn(self.conv(x, cout, k, stride, pad, gain=gain))

    def pool(self, op: str, x: str, k: int, stride: int, pad: int = 0) -> str:
        c, h, w = self.shapes[x]
        y = self.b.node(op, [x], kernel_shape=[k, k], strides=[stride] * 2, pads=[pad] * 4)
        self.shapes[y] = (c, (h + 2 * pad - k) // stride + 1, (w + 2 * pad - k) // stride + 1)
        return y

    def add(self, a: str, b: str) -> str:
        return self._same(a, self.b.node("Add", [a, b]))

    def concat(self, xs: list[str]) -> str:
        if len(xs) == 1:
            return xs[0]
        _, h, w = self.shapes[xs[0]]
        y = self.b.node("Concat", xs, axis=1)
        self.shapes[y] = (sum(self.shapes[x][0] for x in xs), h, w)
        return y

    def pool_flatten(self, x: str) -> str:
        """GlobalAveragePool + Flatten: [1, C, H, W] -> [1, C]."""
        return self.b.node("Flatten", [self.b.node("GlobalAveragePool", [x])], axis=1)

    def classifier(self, x: str, classes: int) -> str:
        """GlobalAveragePool, Flatten, Gemm(transB=1) to `classes` (a linear layer)."""
        c = self.shapes[x][0]
        wt = self.b.weight("fc.w", (classes, c))
        bias = self.b.const("fc.b", 0.01 * self.b.rng.standard_normal(classes))
        self.flops += 2 * c * classes
        return self.b.node("Gemm", [self.pool_flatten(x), wt, bias], transB=1)

    def case(self, name: str, y: str, classes: int, shape: str) -> Case:
        model = self.b.model(name, [("x", [1, 3, self.size, self.size])], y, [1, classes])
        image = _input((1, 3, self.size, self.size))
        return Case(name, model, [image], None, self.flops, f"1x3x{self.size}x{self.size} {shape}")


def param_count(case: Case) -> int:
    """The number of floats in the model's initializers (BN running statistics included)."""
    return sum(int(np.prod(t.dims)) for t in case.model.graph.initializer)


# --- ResNet-50 -------------------------------------------------------------------------------


def resnet50(
    size: int = 224,
    width: float = 1.0,
    blocks: tuple[int, ...] = (3, 4, 6, 3),
    classes: int = CLASSES,
) -> Case:
    """ResNet-50 v1.5: bottlenecks (1x1, 3x3 with the stride, 1x1 x4), projection shortcuts."""
    n = _Net(size)
    x = n.relu(n.conv_bn("x", _ch(64, width), 7, 2, 3))
    x = n.pool("MaxPool", x, 3, 2, 1)
    for stage, count in enumerate(blocks):
        mid = _ch(64 * 2**stage, width)
        for i in range(count):
            stride = 2 if stage > 0 and i == 0 else 1
            y = n.relu(n.conv_bn(x, mid, 1))
            y = n.relu(n.conv_bn(y, mid, 3, stride, 1))
            y = n.conv_bn(y, 4 * mid, 1, gain=0.2)  # a damped residual keeps outputs O(1)
            shortcut = n.conv_bn(x, 4 * mid, 1, stride) if i == 0 else x
            x = n.relu(n.add(y, shortcut))
    return n.case("resnet50", n.classifier(x, classes), classes, f"width {width}")


# --- DenseNet-121 ----------------------------------------------------------------------------


def densenet121(
    size: int = 224,
    growth: int = 32,
    blocks: tuple[int, ...] = (6, 12, 24, 16),
    bn_size: int = 4,
    classes: int = CLASSES,
) -> Case:
    """DenseNet-121: each layer BN-Relu-Conv1x1-BN-Relu-Conv3x3 on the Concat of all the
    block's previous features; transitions BN-Relu-Conv1x1 (halving)-AveragePool 2x2/2."""
    n = _Net(size)
    x = n.relu(n.conv_bn("x", 2 * growth, 7, 2, 3))
    x = n.pool("MaxPool", x, 3, 2, 1)
    for stage, count in enumerate(blocks):
        features = [x]
        for _ in range(count):
            y = n.conv(n.relu(n.bn(n.concat(features))), bn_size * growth, 1)
            features.append(n.conv(n.relu(n.bn(y)), growth, 3, 1, 1))
        x = n.concat(features)
        if stage < len(blocks) - 1:
            x = n.conv(n.relu(n.bn(x)), n.shapes[x][0] // 2, 1)
            x = n.pool("AveragePool", x, 2, 2)
    x = n.relu(n.bn(x))
    return n.case("densenet121", n.classifier(x, classes), classes, f"growth {growth}")


# --- GoogLeNet (Inception v1) ----------------------------------------------------------------

#: (1x1, 3x3 reduce, 3x3, 5x5 reduce, 5x5, pool proj) of each inception module; "M" a max pool
_INCEPTION: list[tuple[int, ...] | str] = [
    (64, 96, 128, 16, 32, 32),  # 3a
    (128, 128, 192, 32, 96, 64),  # 3b
    "M",
    (192, 96, 208, 16, 48, 64),  # 4a
    (160, 112, 224, 24, 64, 64),  # 4b
    (128, 128, 256, 24, 64, 64),  # 4c
    (112, 144, 288, 32, 64, 64),  # 4d
    (256, 160, 320, 32, 128, 128),  # 4e
    "M",
    (256, 160, 320, 32, 128, 128),  # 5a
    (384, 192, 384, 48, 128, 128),  # 5b
]


def inception_v1(size: int = 224, width: float = 1.0, classes: int = CLASSES) -> Case:
    """GoogLeNet: stem, inception 3a-3b, 4a-4e, 5a-5b (four branches, Concat), classifier."""
    n = _Net(size)

    def conv_relu(x: str, c: int, k: int, stride: int = 1, pad: int = 0) -> str:
        return n.relu(n.conv(x, _ch(c, width), k, stride, pad, bias=True))

    x = n.pool("MaxPool", conv_relu("x", 64, 7, 2, 3), 3, 2, 1)
    x = conv_relu(conv_relu(x, 64, 1), 192, 3, 1, 1)
    x = n.pool("MaxPool", x, 3, 2, 1)
    for spec in _INCEPTION:
        if isinstance(spec, str):
            x = n.pool("MaxPool", x, 3, 2, 1)
            continue
        c1, r3, c3, r5, c5, cp = spec
        branches = [
            conv_relu(x, c1, 1),
            conv_relu(conv_relu(x, r3, 1), c3, 3, 1, 1),
            conv_relu(conv_relu(x, r5, 1), c5, 5, 1, 2),
            conv_relu(n.pool("MaxPool", x, 3, 1, 1), cp, 1),
        ]
        x = n.concat(branches)
    return n.case("inception_v1", n.classifier(x, classes), classes, f"width {width}")


# --- SqueezeNet 1.1 --------------------------------------------------------------------------

#: (squeeze, expand) channels of the Fire modules; "M" a max pool 3x3/2
_FIRE: list[tuple[int, int] | str] = [
    (16, 64), (16, 64), "M", (32, 128), (32, 128), "M", (48, 192), (48, 192), (64, 256),
    (64, 256),
]  # fmt: skip


def squeezenet(size: int = 224, width: float = 1.0, classes: int = CLASSES) -> Case:
    """SqueezeNet 1.1: Fire = squeeze 1x1 + Relu, Concat(expand 1x1, expand 3x3) + Relu;
    convs with bias; classifier Conv 1x1 + Relu, GlobalAveragePool, Flatten."""
    n = _Net(size)

    def conv_relu(x: str, c: int, k: int, stride: int = 1, pad: int = 0) -> str:
        return n.relu(n.conv(x, c, k, stride, pad, bias=True))

    x = n.pool("MaxPool", conv_relu("x", _ch(64, width), 3, 2), 3, 2)
    for spec in _FIRE:
        if isinstance(spec, str):
            x = n.pool("MaxPool", x, 3, 2)
            continue
        s = conv_relu(x, _ch(spec[0], width), 1)
        e = _ch(spec[1], width)
        x = n.concat([conv_relu(s, e, 1), conv_relu(s, e, 3, 1, 1)])
    y = n.pool_flatten(conv_relu(x, classes, 1))
    return n.case("squeezenet1_1", y, classes, f"width {width}")


# --- MobileNetV2 -----------------------------------------------------------------------------

#: (expansion t, channels c, repeats n, first stride s) of the inverted residual stages
_MOBILENET_V2 = [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1)] + [
    (6, 160, 3, 2),
    (6, 320, 1, 1),
]


def _divisible(v: float, divisor: int = 8) -> int:
    """torchvision's `_make_divisible`: round to a multiple of `divisor`, losing < 10%."""
    new = max(divisor, int(v + divisor / 2) // divisor * divisor)
    return new + divisor if new < 0.9 * v else new


def mobilenet_v2(size: int = 224, width: float = 1.0, classes: int = CLASSES) -> Case:
    """MobileNetV2: inverted residuals (1x1 expand, 3x3 depthwise, 1x1 linear projection)."""
    n = _Net(size)
    x = n.relu6(n.conv_bn("x", _divisible(32 * width), 3, 2, 1))
    for t, c, repeats, s in _MOBILENET_V2:
        cout = _divisible(c * width)
        for i in range(repeats):
            cin, stride = n.shapes[x][0], s if i == 0 else 1
            y = n.relu6(n.conv_bn(x, cin * t, 1)) if t != 1 else x
            hidden = cin * t
            y = n.relu6(n.bn(n.conv(y, hidden, 3, stride, 1, group=hidden)))
            y = n.conv_bn(y, cout, 1)
            x = n.add(y, x) if stride == 1 and cin == cout else y
    x = n.relu6(n.conv_bn(x, _divisible(1280 * max(1.0, width)), 1))
    return n.case("mobilenet_v2", n.classifier(x, classes), classes, f"width {width}")


ZOO: dict[str, Benchmark] = {
    z.name: z
    for z in (
        Benchmark(
            "resnet50",
            "ResNet-50 v1.5, 1x3x224x224 (53 Conv, BN)",
            resnet50,
            lambda: resnet50(32, 1 / 16),
        ),
        Benchmark(
            "densenet121",
            "DenseNet-121, 1x3x224x224 (120 Conv, BN, Concat)",
            densenet121,
            lambda: densenet121(32, growth=4),
        ),
        Benchmark(
            "inception_v1",
            "GoogLeNet / Inception v1, 1x3x224x224 (57 Conv+bias)",
            inception_v1,
            lambda: inception_v1(32, 1 / 8),
        ),
        Benchmark(
            "squeezenet",
            "SqueezeNet 1.1, 1x3x224x224 (26 Conv+bias, Fire Concat)",
            squeezenet,
            lambda: squeezenet(32, 1 / 8),
        ),
        Benchmark(
            "mobilenet_v2",
            "MobileNetV2, 1x3x224x224 (52 Conv, depthwise, Clip)",
            mobilenet_v2,
            lambda: mobilenet_v2(32, 1 / 4),
        ),
    )
}
