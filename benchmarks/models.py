"""The benchmark models, built with `onnx.helper`, and their numpy baselines.

    from mlc.benchmarks.models import BENCHMARKS
    case = BENCHMARKS["gemm"].make(small=False)     # a `Case`: model, inputs, numpy fn, flops
    (y,) = case.numpy_fn(*case.inputs)              # the numpy baseline (None where n/a)

Every builder is deterministic: weights come from `numpy.random.default_rng(seed)` and the
models use opset 17 (IR version 8). Sizes are parameters so tests can use tiny shapes; the
defaults are the sizes the benchmark reports use:

- `gemm`: one MatMul `Y = A @ B`, A a [M, K] graph input and B a [K, N] constant initializer
  (a weight, as in a linear layer without bias); 1024x1024x1024 fp32.
- `mlp`: batch 64, 784 -> 1024 -> 1024 -> 10, `Gemm(transB=1)` + `Relu` between layers (the
  layout PyTorch exports: weights stored [out, in]).
- `conv`: Conv 3x3, 64 -> 64 channels on 56x56, batch 1, pad 1, with bias, then Relu.
- `resnet_block`: a ResNet basic block on 1x64x56x56: conv3x3-BN-Relu-conv3x3-BN, identity
  shortcut Add, Relu; convs without bias, BN as real `BatchNormalization` nodes.
- `cnn`: the bundled `examples/tiny_resnet.onnx` (a full small CNN; no numpy baseline).
- `softmax`: Softmax over the last axis of a 64x1024 fp32 input (attention-score rows).
- `layernorm`: LayerNormalization over the last axis of 128x768 fp32 (a transformer's
  hidden size), with constant scale and bias.
- `bert_layer`: one BERT-base encoder layer (hidden 768, 12 heads, FFN 3072) on a batch of
  1 x 128 tokens, as exported from PyTorch: Q/K/V projections (MatMul + Add), heads split by
  Reshape + Transpose, scores scaled and masked (an additive [1, 1, 1, seq] mask input),
  Softmax, context MatMul, output projection, residual + LayerNormalization, FFN with the
  erf form of GELU, residual + LayerNormalization. BERT-base is twelve of them.
- `attention`: the opset-23 `Attention` operator (scaled dot-product attention, causal), 12
  heads of 64 over 128 tokens; mlc imports it through its ONNX function body.

The numpy baselines compute the same function with numpy's BLAS-backed matmul (convolution by
im2col through `sliding_window_view` + one matmul); they are what a user would write in numpy.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

__all__ = [
    "BENCHMARKS",
    "Benchmark",
    "Case",
    "cnn",
    "conv_bias_relu",
    "gemm",
    "layer_norm",
    "mlp",
    "resnet_basic_block",
    "attention",
    "bert_layer",
    "softmax",
]

OPSET = 17
IR_VERSION = 8
EXAMPLES = Path(__file__).resolve().parents[1] / "examples"

NumpyFn = Callable[..., list[np.ndarray]]


@dataclass
class Case:
    """One instantiated benchmark: the model, its inputs, a numpy baseline and its flops."""

    name: str
    model: onnx.ModelProto
    inputs: list[np.ndarray]
    numpy_fn: NumpyFn | None = None
    #: multiply-adds count 2 flops; None where not meaningful
    flops: int | None = None
    #: a one-line description of the shapes, for the report
    shape: str = ""
    extra: dict[str, object] = field(default_factory=dict)

    def onnxruntime_outputs(self) -> list[np.ndarray]:
        """onnxruntime's outputs for `inputs` (the reference the harness checks against)."""
        from mlc.testing.onnx_models import run_onnxruntime

        initializers = {t.name for t in self.model.graph.initializer}
        names = [i.name for i in self.model.graph.input if i.name not in initializers]
        return run_onnxruntime(self.model, dict(zip(names, self.inputs, strict=True)))


@dataclass(frozen=True)
class Benchmark:
    """A named benchmark: `make(small)` builds the full-size or a tiny (test) instance."""

    name: str
    description: str
    full: Callable[[], Case]
    small: Callable[[], Case]

    def make(self, small: bool = False) -> Case:
        return self.small() if small else self.full()


class _Builder:
    """Accumulates nodes and initializers with deterministic random weights."""

    def __init__(self, seed: int = 0) -> None:
        self.rng = np.random.default_rng(seed)
        self.nodes: list[onnx.NodeProto] = []
        self.inits: list[onnx.TensorProto] = []
        self.weights: dict[str, np.ndarray] = {}
        self.count = 0

    def const(self, name: str, array: np.ndarray) -> str:
        array = np.ascontiguousarray(array, dtype=np.float32)
        self.inits.append(numpy_helper.from_array(array, name))
        self.weights[name] = array
        return name

    def weight(self, name: str, shape: tuple[int, ...], fan_in: int | None = None) -> str:
        fan = fan_in if fan_in is not None else int(np.prod(shape[1:])) or 1
        return self.const(name, self.rng.standard_normal(shape) * np.sqrt(2.0 / fan))

    def node(self, op: str, inputs: list[str], **attrs: object) -> str:
        self.count += 1
        out = f"{op.lower()}_{self.count}"
        self.nodes.append(helper.make_node(op, inputs, [out], name=f"{op}_{self.count}", **attrs))
        return out

    def batch_norm(self, x: str, c: int, prefix: str) -> str:
        gamma = self.const(f"{prefix}.gamma", 1 + 0.1 * self.rng.standard_normal(c))
        beta = self.const(f"{prefix}.beta", 0.1 * self.rng.standard_normal(c))
        mean = self.const(f"{prefix}.mean", 0.1 * self.rng.standard_normal(c))
        var = self.const(f"{prefix}.var", self.rng.uniform(0.5, 1.5, c))
        return self.node("BatchNormalization", [x, gamma, beta, mean, var], epsilon=1e-5)

    def model(
        self,
        name: str,
        inputs: list[tuple[str, list[int]]],
        output: str,
        out_shape: list[int],
        opset: int = OPSET,
    ) -> onnx.ModelProto:
        graph = helper.make_graph(
            self.nodes,
            name,
            [helper.make_tensor_value_info(n, TensorProto.FLOAT, s) for n, s in inputs],
            [helper.make_tensor_value_info(output, TensorProto.FLOAT, out_shape)],
            self.inits,
        )
        model = helper.make_model(
            graph, opset_imports=[helper.make_opsetid("", opset)], producer_name="mlc-benchmarks"
        )
        model.ir_version = IR_VERSION if opset == OPSET else 10
        onnx.checker.check_model(model, full_check=True)
        return model


def _input(shape: tuple[int, ...], seed: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


# --- numpy helpers --------------------------------------------------------------------------


def _relu(x: np.ndarray) -> np.ndarray:
    return np.maximum(x, np.float32(0))


def np_conv2d(x: np.ndarray, w: np.ndarray, pad: int) -> np.ndarray:
    """NCHW stride-1 convolution by im2col (`sliding_window_view`) and one matmul."""
    n, c, _, _ = x.shape
    cout, _, kh, kw = w.shape
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    win = np.lib.stride_tricks.sliding_window_view(xp, (kh, kw), axis=(2, 3))
    oh, ow = win.shape[2], win.shape[3]
    # [n, oh, ow, c, kh, kw] -> [n*oh*ow, c*kh*kw]
    cols = np.ascontiguousarray(win.transpose(0, 2, 3, 1, 4, 5)).reshape(n * oh * ow, -1)
    y = cols @ w.reshape(cout, c * kh * kw).T
    return np.ascontiguousarray(y.reshape(n, oh, ow, cout).transpose(0, 3, 1, 2))


def _bn_fold(b: _Builder, prefix: str) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel (scale, shift) of an inference BatchNormalization, shaped [C, 1, 1]."""
    g, beta = b.weights[f"{prefix}.gamma"], b.weights[f"{prefix}.beta"]
    mean, var = b.weights[f"{prefix}.mean"], b.weights[f"{prefix}.var"]
    scale = g / np.sqrt(var + np.float32(1e-5))
    shift = beta - mean * scale
    return scale[:, None, None].astype(np.float32), shift[:, None, None].astype(np.float32)


# --- builders -------------------------------------------------------------------------------


def gemm(m: int = 1024, n: int = 1024, k: int = 1024) -> Case:
    """`Y = A @ B`: A a [m, k] input, B a constant [k, n] initializer."""
    b = _Builder(seed=0)
    w = b.const("B", b.rng.standard_normal((k, n)) / np.sqrt(k))
    y = b.node("MatMul", ["A", w])
    model = b.model("gemm", [("A", [m, k])], y, [m, n])
    wb = b.weights["B"]

    def numpy_fn(a: np.ndarray) -> list[np.ndarray]:
        return [a @ wb]

    return Case("gemm", model, [_input((m, k))], numpy_fn, 2 * m * n * k, f"{m}x{n}x{k}")


def mlp(batch: int = 64, sizes: tuple[int, ...] = (784, 1024, 1024, 10)) -> Case:
    """Gemm(transB=1)+Relu layers `sizes[0] -> ... -> sizes[-1]` (no Relu after the last)."""
    b = _Builder(seed=0)
    x = "x"
    layers: list[tuple[np.ndarray, np.ndarray]] = []
    for i, (fin, fout) in enumerate(zip(sizes, sizes[1:])):
        w = b.weight(f"fc{i}.w", (fout, fin))
        bias = b.const(f"fc{i}.b", 0.1 * b.rng.standard_normal(fout))
        x = b.node("Gemm", [x, w, bias], transB=1)
        if i < len(sizes) - 2:
            x = b.node("Relu", [x])
        layers.append((np.ascontiguousarray(b.weights[w].T), b.weights[bias]))
    model = b.model("mlp", [("x", [batch, sizes[0]])], x, [batch, sizes[-1]])

    def numpy_fn(a: np.ndarray) -> list[np.ndarray]:
        for i, (wt, bias) in enumerate(layers):
            a = a @ wt + bias
            if i < len(layers) - 1:
                a = _relu(a)
        return [a]

    flops = sum(2 * batch * fin * fout for fin, fout in zip(sizes, sizes[1:]))
    shape = f"{batch}x" + "->".join(map(str, sizes))
    return Case("mlp", model, [_input((batch, sizes[0]))], numpy_fn, flops, shape)


def _conv_flops(n: int, cin: int, cout: int, h: int, w: int, k: int) -> int:
    return 2 * n * cout * h * w * cin * k * k


def conv_bias_relu(batch: int = 1, channels: int = 64, size: int = 56) -> Case:
    """Conv 3x3 `channels -> channels`, pad 1, stride 1, with bias, then Relu."""
    b = _Builder(seed=0)
    w = b.weight("conv.w", (channels, channels, 3, 3))
    bias = b.const("conv.b", 0.1 * b.rng.standard_normal(channels))
    y = b.node("Conv", ["x", w, bias], kernel_shape=[3, 3], pads=[1, 1, 1, 1])
    y = b.node("Relu", [y])
    shape = [batch, channels, size, size]
    model = b.model("conv_bias_relu", [("x", shape)], y, shape)
    wa, ba = b.weights[w], b.weights[bias][:, None, None]

    def numpy_fn(x: np.ndarray) -> list[np.ndarray]:
        return [_relu(np_conv2d(x, wa, 1) + ba)]

    flops = _conv_flops(batch, channels, channels, size, size, 3)
    return Case("conv", model, [_input(tuple(shape))], numpy_fn, flops, "x".join(map(str, shape)))


def resnet_basic_block(batch: int = 1, channels: int = 64, size: int = 56) -> Case:
    """conv3x3-BN-Relu-conv3x3-BN, + identity, Relu (convs without bias, as in torchvision)."""
    b = _Builder(seed=0)
    w1 = b.weight("conv1.w", (channels, channels, 3, 3))
    y = b.node("Conv", ["x", w1], kernel_shape=[3, 3], pads=[1, 1, 1, 1])
    y = b.node("Relu", [b.batch_norm(y, channels, "bn1")])
    w2 = b.weight("conv2.w", (channels, channels, 3, 3))
    y = b.node("Conv", [y, w2], kernel_shape=[3, 3], pads=[1, 1, 1, 1])
    y = b.batch_norm(y, channels, "bn2")
    y = b.node("Relu", [b.node("Add", [y, "x"])])
    shape = [batch, channels, size, size]
    model = b.model("resnet_basic_block", [("x", shape)], y, shape)
    wa1, wa2 = b.weights[w1], b.weights[w2]
    (s1, t1), (s2, t2) = _bn_fold(b, "bn1"), _bn_fold(b, "bn2")

    def numpy_fn(x: np.ndarray) -> list[np.ndarray]:
        h = _relu(np_conv2d(x, wa1, 1) * s1 + t1)
        return [_relu(np_conv2d(h, wa2, 1) * s2 + t2 + x)]

    flops = 2 * _conv_flops(batch, channels, channels, size, size, 3)
    return Case(
        "resnet_block", model, [_input(tuple(shape))], numpy_fn, flops, "x".join(map(str, shape))
    )


def cnn() -> Case:
    """The bundled ResNet-style CNN `examples/tiny_resnet.onnx` on a 1x3x32x32 image."""
    model = onnx.load(EXAMPLES / "tiny_resnet.onnx")
    return Case("cnn", model, [_input((1, 3, 32, 32))], None, None, "tiny_resnet 1x3x32x32")


def softmax(rows: int = 64, cols: int = 1024) -> Case:
    """`Softmax(x, axis=-1)` on a [rows, cols] input."""
    b = _Builder(seed=0)
    y = b.node("Softmax", ["x"], axis=-1)
    model = b.model("softmax", [("x", [rows, cols])], y, [rows, cols])

    def numpy_fn(x: np.ndarray) -> list[np.ndarray]:
        e = np.exp(x - x.max(axis=-1, keepdims=True))
        return [e / e.sum(axis=-1, keepdims=True)]

    return Case("softmax", model, [_input((rows, cols))], numpy_fn, None, f"{rows}x{cols}")


def layer_norm(rows: int = 128, cols: int = 768) -> Case:
    """`LayerNormalization(x, scale, bias, axis=-1)` on a [rows, cols] input."""
    b = _Builder(seed=0)
    scale = b.const("scale", 1 + 0.1 * b.rng.standard_normal(cols))
    bias = b.const("bias", 0.1 * b.rng.standard_normal(cols))
    y = b.node("LayerNormalization", ["x", scale, bias], axis=-1, epsilon=1e-5)
    model = b.model("layernorm", [("x", [rows, cols])], y, [rows, cols])
    g, beta = b.weights["scale"], b.weights["bias"]

    def numpy_fn(x: np.ndarray) -> list[np.ndarray]:
        mean = x.mean(axis=-1, keepdims=True)
        var = ((x - mean) ** 2).mean(axis=-1, keepdims=True)
        return [(x - mean) / np.sqrt(var + 1e-5) * g + beta]

    return Case("layernorm", model, [_input((rows, cols))], numpy_fn, None, f"{rows}x{cols}")


def _layer_norm_np(x: np.ndarray, g: np.ndarray, beta: np.ndarray, eps: float) -> np.ndarray:
    mean = x.mean(axis=-1, keepdims=True)
    var = ((x - mean) ** 2).mean(axis=-1, keepdims=True)
    return (x - mean) / np.sqrt(var + eps) * g + beta


def _softmax_np(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def bert_layer(seq: int = 128, hidden: int = 768, heads: int = 12, ffn: int = 3072) -> Case:
    """One BERT encoder layer on [1, seq, hidden] with an additive attention mask (see the
    module docstring)."""
    b = _Builder(seed=0)
    head = hidden // heads
    # 0 keeps the input's size (batch, tokens), as exporters write it
    b.inits.append(numpy_helper.from_array(np.array([0, 0, heads, head], np.int64), "split"))
    b.inits.append(numpy_helper.from_array(np.array([0, 0, hidden], np.int64), "merge"))
    b.const("scale", np.array(1 / np.sqrt(head)))
    b.const("sqrt2", np.array(np.sqrt(2.0)))
    b.const("one", np.array(1.0))
    b.const("half", np.array(0.5))

    def linear(x: str, n_in: int, n_out: int, name: str) -> str:
        w = b.weight(f"{name}.w", (n_in, n_out), fan_in=n_in)
        bias = b.const(f"{name}.b", 0.02 * b.rng.standard_normal(n_out))
        return b.node("Add", [b.node("MatMul", [x, w]), bias])

    def heads_of(x: str, perm: list[int]) -> str:
        return b.node("Transpose", [b.node("Reshape", [x, "split"])], perm=perm)

    q = heads_of(linear("x", hidden, hidden, "q"), [0, 2, 1, 3])
    k = heads_of(linear("x", hidden, hidden, "k"), [0, 2, 3, 1])
    v = heads_of(linear("x", hidden, hidden, "v"), [0, 2, 1, 3])
    scores = b.node("Add", [b.node("Mul", [b.node("MatMul", [q, k]), "scale"]), "mask"])
    probs = b.node("Softmax", [scores], axis=-1)
    context = b.node("Transpose", [b.node("MatMul", [probs, v])], perm=[0, 2, 1, 3])
    attended = b.node(
        "Add", [linear(b.node("Reshape", [context, "merge"]), hidden, hidden, "o"), "x"]
    )
    g1 = b.const("ln1.g", 1 + 0.1 * b.rng.standard_normal(hidden))
    b1 = b.const("ln1.b", 0.1 * b.rng.standard_normal(hidden))
    h1 = b.node("LayerNormalization", [attended, g1, b1], axis=-1, epsilon=1e-12)
    f = linear(h1, hidden, ffn, "f1")
    erf = b.node("Erf", [b.node("Div", [f, "sqrt2"])])
    gelu = b.node("Mul", [b.node("Mul", [f, "half"]), b.node("Add", ["one", erf])])
    out = b.node("Add", [linear(gelu, ffn, hidden, "f2"), h1])
    g2 = b.const("ln2.g", 1 + 0.1 * b.rng.standard_normal(hidden))
    b2 = b.const("ln2.b", 0.1 * b.rng.standard_normal(hidden))
    y = b.node("LayerNormalization", [out, g2, b2], axis=-1, epsilon=1e-12)
    model = b.model(
        "bert_layer", [("x", [1, seq, hidden]), ("mask", [1, 1, 1, seq])], y, [1, seq, hidden]
    )
    w = b.weights

    def numpy_fn(x: np.ndarray, mask: np.ndarray) -> list[np.ndarray]:
        from scipy.special import erf as erf_np

        def lin(t: np.ndarray, name: str) -> np.ndarray:
            return t @ w[f"{name}.w"] + w[f"{name}.b"]

        def split(t: np.ndarray) -> np.ndarray:
            return t.reshape(1, seq, heads, head).transpose(0, 2, 1, 3)

        qh, kh, vh = split(lin(x, "q")), split(lin(x, "k")), split(lin(x, "v"))
        p = _softmax_np(qh @ kh.transpose(0, 1, 3, 2) / np.sqrt(head) + mask)
        ctx = (p @ vh).transpose(0, 2, 1, 3).reshape(1, seq, hidden)
        a = _layer_norm_np(lin(ctx, "o") + x, w["ln1.g"], w["ln1.b"], 1e-12)
        t = lin(a, "f1")
        t = 0.5 * t * (1 + erf_np(t / np.sqrt(2.0)))
        return [_layer_norm_np(lin(t, "f2") + a, w["ln2.g"], w["ln2.b"], 1e-12)]

    mask = np.zeros((1, 1, 1, seq), np.float32)
    mask[..., seq - seq // 8 :] = -10000.0  # padding tokens at the end
    # 2 flops per multiply-add: 4 projections, the FFN, and the two attention products
    flops = 2 * seq * (4 * hidden * hidden + 2 * hidden * ffn) + 4 * seq * seq * hidden
    return Case(
        "bert_layer",
        model,
        [_input((1, seq, hidden)), mask],
        numpy_fn,
        flops,
        f"1x{seq}x{hidden}, {heads} heads, FFN {ffn}",
    )


def attention(seq: int = 128, heads: int = 12, head: int = 64) -> Case:
    """The opset-23 `Attention` operator, causal, on [1, heads, seq, head] Q, K, V."""
    b = _Builder(seed=0)
    y = b.node("Attention", ["q", "k", "v"], is_causal=1)
    shape = [1, heads, seq, head]
    model = b.model("attention", [("q", shape), ("k", shape), ("v", shape)], y, shape, opset=23)

    def numpy_fn(q: np.ndarray, k: np.ndarray, v: np.ndarray) -> list[np.ndarray]:
        scores = q @ k.transpose(0, 1, 3, 2) / np.sqrt(head)
        scores = np.where(np.tril(np.ones((seq, seq), bool)), scores, -np.inf)
        return [_softmax_np(scores) @ v]

    inputs = [_input(tuple(shape), seed) for seed in (1, 2, 3)]
    flops = 4 * heads * seq * seq * head
    return Case("attention", model, inputs, numpy_fn, flops, f"1x{heads}x{seq}x{head} causal")


BENCHMARKS: dict[str, Benchmark] = {
    b.name: b
    for b in (
        Benchmark("gemm", "MatMul, input A by constant B (fp32)", gemm, lambda: gemm(32, 48, 64)),
        Benchmark(
            "mlp",
            "Gemm+Relu MLP, batch 64, 784-1024-1024-10",
            mlp,
            lambda: mlp(4, (20, 16, 16, 10)),
        ),
        Benchmark(
            "conv",
            "Conv 3x3 64->64 on 56x56, pad 1, +bias+Relu",
            conv_bias_relu,
            lambda: conv_bias_relu(1, 4, 8),
        ),
        Benchmark(
            "resnet_block",
            "ResNet basic block, 64 channels, 56x56",
            resnet_basic_block,
            lambda: resnet_basic_block(1, 4, 8),
        ),
        Benchmark("cnn", "examples/tiny_resnet.onnx, 1x3x32x32", cnn, cnn),
        Benchmark(
            "softmax", "Softmax over the last axis, 64x1024", softmax, lambda: softmax(3, 64)
        ),
        Benchmark(
            "layernorm",
            "LayerNormalization over the last axis, 128x768",
            layer_norm,
            lambda: layer_norm(3, 64),
        ),
        Benchmark(
            "bert_layer",
            "a BERT-base encoder layer, 128 tokens",
            bert_layer,
            lambda: bert_layer(seq=8, hidden=16, heads=2, ffn=32),
        ),
        Benchmark(
            "attention",
            "the opset-23 Attention operator, causal, 12 heads x 64, 128 tokens",
            attention,
            lambda: attention(seq=6, heads=2, head=4),
        ),
    )
}
