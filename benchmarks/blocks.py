"""CNN and transformer building blocks, mlc side by side with onnxruntime ("no performance
cliffs": every common block should run about as fast as onnxruntime's, on 1 and 2 threads).

    python -m mlc.benchmarks.blocks                         # every block, full size
    python -m mlc.benchmarks.blocks --only lrn,maxpool --repeat 5 --budget-s 5
    python -m mlc.benchmarks.blocks --small --markdown out.md --json out.json
    python -m mlc.benchmarks.blocks --latency-calls 1000    # + median / p99 of single calls

    from mlc.benchmarks.blocks import BLOCKS
    case = BLOCKS["shuffle_unit"].make(small=True)   # a `Case` (see `mlc.benchmarks.models`)

The blocks (batch 1, fp32, opset 17, random weights from a fixed seed, `numpy_fn=None`
except where `models`' builders supply one; onnxruntime is the reference):

- `inverted_residual`: MobileNetV2's, 1x24x56x56: 1x1 expand x6 (144) + BN + Relu6 (`Clip`),
  depthwise 3x3 + BN + Relu6, 1x1 projection + BN, residual Add.
- `shuffle_unit`: ShuffleNet v1 stride-1 unit, groups 4, 1x272x28x28: grouped 1x1 (68) + BN +
  Relu, channel shuffle (Reshape, Transpose, Reshape), depthwise 3x3 + BN, grouped 1x1 + BN,
  Add, Relu.
- `fire_module`: SqueezeNet's fire3, 1x128x55x55: squeeze 1x1 to 16 + Relu, expand 1x1 and 3x3
  to 64 each + Relu, Concat.
- `alexnet_head`: AlexNet's classifier: Flatten 1x256x6x6, Gemm(transB=1) 9216 -> 4096 + Relu,
  4096 -> 4096 + Relu, 4096 -> 1000 (235 MB of weights: memory bound at batch 1).
- `grouped_conv`: AlexNet's conv4: 3x3, 384 -> 384, group 2, pad 1, bias, Relu on 13x13.
- `dense_block`: a DenseNet block of 4 layers (BN-Relu-1x1 to 128-BN-Relu-3x3 to 32, Concat),
  1x64x56x56 -> 1x192x56x56.
- `lrn`: Relu then LRN(size 5, alpha 1e-4, beta 0.75, bias 1) on 1x96x55x55 (AlexNet's).
- `maxpool`, `avgpool`: 3x3, stride 2, pad 1 on 1x64x112x112.
- `softmax_rows`: Softmax over the last axis of 256x1024 (`models.softmax`).
- `layernorm_rows`: LayerNormalization over the last axis of 128x768 (`models.layer_norm`).
- `broadcast_chain`: `x * scale[64,1,1] + bias[64,1,1]`, SiLU (`Sigmoid(y) * y`), `+ r`, on
  1x64x56x56 inputs x and r.
- `mini_mobilenet`: MobileNetV2's stem and first three inverted residuals (1x3x224x224 ->
  24x56x56), GlobalAveragePool, Gemm to 1000.
- `mini_shufflenet`: stem conv 3x3/2 + MaxPool, a stride-2 ShuffleNet unit (AveragePool
  shortcut, Concat) to 272x28x28, three stride-1 units, GlobalAveragePool, Gemm to 1000.

`flops` counts a Conv or Gemm multiply-add as 2 flops; the memory-bound blocks (`extra["bound"]
== "memory"`) count one nominal flop per elementwise operation (exp, pow, Sigmoid and
division one each) and are reported in GB/s of compulsory traffic (`extra["bytes"]`: inputs,
output and initializers, each moved once); `alexnet_head` also has `extra["weight_bytes"]`.

The command line times every block with `run.benchmark_case` (interleaved rotated rounds,
medians, outputs checked against onnxruntime on the first thread count): mlc with
`MLC_NUM_THREADS` set to each `--threads` entry and onnxruntime with as many intra-op threads.
The table has the medians, the ratios mlc/ORT per thread count, mlc's scaling from the first
thread count to the others, mlc's GFLOP/s (GB/s for memory-bound blocks) and whether the
outputs match; below it the geometric mean of each ratio and the blocks over 1.2x.

`--latency-calls N` adds a latency table: N single calls each of mlc with its default thread
count (`MLC_NUM_THREADS` unset while compiling and calling: "auto", one thread or all cores
by measured latency, `targets.threads`), mlc with `MLC_NUM_THREADS=1`, and onnxruntime with its
default intra-op thread count (spinning off, as in `run.ort_runner`), interleaved in chunks of
`--latency-chunk` calls in rotated order; median and p99 per runner.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import math
import os
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import numpy_helper

from mlc.benchmarks.models import (
    Benchmark,
    Case,
    _Builder,
    _input,
    layer_norm,
    softmax,
)
from mlc.benchmarks.run import (
    Column,
    Result,
    Runner,
    _env,
    _ints,
    _ms,
    _num,
    _setup,
    benchmark_case,
    markdown_table,
    mlc_runner,
    ort_runner,
    to_json,
)
from mlc.benchmarks.zoo import _MOBILENET_V2, CLASSES, _divisible, _Net

__all__ = [
    "BLOCKS",
    "Latency",
    "alexnet_head",
    "avgpool",
    "block_columns",
    "block_runners",
    "broadcast_chain",
    "dense_block",
    "fire_module",
    "geomean",
    "grouped_conv",
    "inverted_residual",
    "latency_runners",
    "latency_table",
    "layernorm_rows",
    "lrn",
    "main",
    "maxpool",
    "measure_latency",
    "mini_mobilenet",
    "mini_shufflenet",
    "shuffle_unit",
    "softmax_rows",
    "summary",
]

#: a block whose mlc/ORT ratio exceeds this is listed as a cliff
CLIFF = 1.2


# --- building --------------------------------------------------------------------------------


def _net(channels: int, size: int) -> _Net:
    """A `_Net` whose input "x" is [1, channels, size, size]."""
    n = _Net(size)
    n.shapes["x"] = (channels, size, size)
    return n


def _traffic(model: onnx.ModelProto, inputs: Sequence[np.ndarray]) -> int:
    """Compulsory bytes: the inputs, the fp32 outputs and the initializers, each once."""
    out = sum(
        4 * math.prod(d.dim_value for d in o.type.tensor_type.shape.dim) for o in model.graph.output
    )
    weights = sum(len(t.raw_data) for t in model.graph.initializer)
    return sum(a.nbytes for a in inputs) + out + weights


def _finish(case: Case, bound: str = "compute") -> Case:
    """`case` with `extra["bound"]` ("compute" or "memory") and `extra["bytes"]` set."""
    case.extra.update(bound=bound, bytes=_traffic(case.model, case.inputs))
    return case


def _block_case(
    n: _Net | _Builder,
    name: str,
    y: str,
    inputs: Sequence[tuple[str, tuple[int, ...]]],
    out_shape: Sequence[int],
    flops: int,
    bound: str = "compute",
) -> Case:
    """The model of `n`'s nodes with graph inputs `inputs` (random, seeds 1, 2, ...)."""
    b = n.b if isinstance(n, _Net) else n
    model = b.model(name, [(i, list(s)) for i, s in inputs], y, list(out_shape))
    arrays = [_input(s, seed=1 + k) for k, (_, s) in enumerate(inputs)]
    shape = " + ".join("x".join(map(str, s)) for _, s in inputs)
    return _finish(Case(name, model, arrays, None, flops, shape), bound)


def _net_case(
    n: _Net, name: str, y: str, note: str = "", flops: int | None = None, bound: str = "compute"
) -> Case:
    """A `_Net` block: input "x" -> `y`, shape "in -> out", flops default the net's."""
    c, h, w = n.shapes["x"]
    out_shape = (1, *n.shapes[y])
    case = _block_case(n, name, y, [("x", (1, c, h, w))], out_shape, flops or n.flops, bound)
    out = "x".join(map(str, n.shapes[y]))
    case.shape = f"{case.shape} -> {out}" + (f" {note}" if note else "")
    return case


def _shape_const(n: _Net, dims: Sequence[int]) -> str:
    """An int64 initializer (a Reshape target); `_Builder.const` makes fp32 only."""
    name = f"shape{len(n.b.inits)}"
    n.b.inits.append(numpy_helper.from_array(np.array(dims, dtype=np.int64), name))
    return name


def _inverted_residual(n: _Net, x: str, cout: int, t: int, stride: int = 1) -> str:
    """MobileNetV2: 1x1 expand x`t` + BN + Relu6, depthwise 3x3 + BN + Relu6, 1x1 + BN (+x)."""
    cin = n.shapes[x][0]
    hidden = cin * t
    y = n.relu6(n.conv_bn(x, hidden, 1)) if t != 1 else x
    y = n.relu6(n.bn(n.conv(y, hidden, 3, stride, 1, group=hidden)))
    y = n.conv_bn(y, cout, 1)
    return n.add(y, x) if stride == 1 and cin == cout else y


def _channel_shuffle(n: _Net, x: str, groups: int) -> str:
    """[1, C, H, W] -> [1, g, C/g, H, W] -> transpose the group axes -> [1, C, H, W]."""
    c, h, w = n.shapes[x]
    y = n.b.node("Reshape", [x, _shape_const(n, [1, groups, c // groups, h, w])])
    y = n.b.node("Transpose", [y], perm=[0, 2, 1, 3, 4])
    y = n.b.node("Reshape", [y, _shape_const(n, [1, c, h, w])])
    n.shapes[y] = (c, h, w)
    return y


def _shuffle_branch(n: _Net, x: str, cout: int, groups: int, stride: int, first: int) -> str:
    """Grouped 1x1 (`first` groups) + BN + Relu, shuffle, depthwise 3x3 + BN, grouped 1x1 + BN."""
    mid = (cout + n.shapes[x][0] if stride == 2 else cout) // 4
    y = n.relu(n.bn(n.conv(x, mid, 1, group=first)))
    y = _channel_shuffle(n, y, groups)
    y = n.bn(n.conv(y, mid, 3, stride, 1, group=mid))
    return n.bn(n.conv(y, cout, 1, group=groups))


def _shuffle_unit(n: _Net, x: str, groups: int) -> str:
    """ShuffleNet v1 stride-1 unit: the branch, Add x, Relu."""
    return n.relu(n.add(_shuffle_branch(n, x, n.shapes[x][0], groups, 1, groups), x))


def _shuffle_down(n: _Net, x: str, cout: int, groups: int, first: int) -> str:
    """ShuffleNet v1 stride-2 unit: Concat(AveragePool 3x3/2 of x, the branch), Relu."""
    cin = n.shapes[x][0]
    branch = _shuffle_branch(n, x, cout - cin, groups, 2, first)
    return n.relu(n.concat([n.pool("AveragePool", x, 3, 2, 1), branch]))


def _conv_relu(n: _Net, x: str, cout: int, k: int, pad: int = 0, group: int = 1) -> str:
    return n.relu(n.conv(x, cout, k, 1, pad, group=group, bias=True))


# --- convolution blocks ----------------------------------------------------------------------


def inverted_residual(channels: int = 24, size: int = 56, t: int = 6) -> Case:
    """MobileNetV2 inverted residual, stride 1, `channels` -> `channels * t` -> `channels`."""
    n = _net(channels, size)
    y = _inverted_residual(n, "x", channels, t)
    return _net_case(n, "inverted_residual", y, f"(expand {channels * t})")


def shuffle_unit(channels: int = 272, size: int = 28, groups: int = 4) -> Case:
    """ShuffleNet v1 stride-1 unit with `groups` groups (bottleneck `channels / 4`)."""
    n = _net(channels, size)
    y = _shuffle_unit(n, "x", groups)
    return _net_case(n, "shuffle_unit", y, f"(g {groups})")


def fire_module(channels: int = 128, size: int = 55, squeeze: int = 16, expand: int = 64) -> Case:
    """SqueezeNet Fire: squeeze 1x1 + Relu, Concat(expand 1x1 + Relu, expand 3x3 + Relu)."""
    n = _net(channels, size)
    s = _conv_relu(n, "x", squeeze, 1)
    y = n.concat([_conv_relu(n, s, expand, 1), _conv_relu(n, s, expand, 3, 1)])
    return _net_case(n, "fire_module", y, f"(squeeze {squeeze})")


def grouped_conv(channels: int = 384, size: int = 13, cout: int = 384, groups: int = 2) -> Case:
    """Conv 3x3, pad 1, `groups` groups, with bias, then Relu (AlexNet's conv4)."""
    n = _net(channels, size)
    y = _conv_relu(n, "x", cout, 3, 1, groups)
    return _net_case(n, "grouped_conv", y, f"(g {groups})")


def dense_block(
    channels: int = 64, size: int = 56, layers: int = 4, growth: int = 32, bn_size: int = 4
) -> Case:
    """DenseNet block: `layers` x (BN-Relu-1x1 to bn_size*growth-BN-Relu-3x3 to growth) on
    the Concat of all the previous features, then the Concat of them all."""
    n = _net(channels, size)
    features = ["x"]
    for _ in range(layers):
        y = n.conv(n.relu(n.bn(n.concat(features))), bn_size * growth, 1)
        features.append(n.conv(n.relu(n.bn(y)), growth, 3, 1, 1))
    return _net_case(n, "dense_block", n.concat(features), f"({layers} layers)")


def alexnet_head(
    features: tuple[int, int, int] = (256, 6, 6), hidden: int = 4096, classes: int = CLASSES
) -> Case:
    """Flatten, Gemm(transB=1) + Relu, Gemm + Relu, Gemm: AlexNet's classifier, batch 1."""
    b = _Builder(seed=0)
    sizes = [math.prod(features), hidden, hidden, classes]
    x = b.node("Flatten", ["x"], axis=1)
    for i, (fin, fout) in enumerate(zip(sizes, sizes[1:])):
        w = b.const(f"fc{i}.w", b.rng.standard_normal((fout, fin), np.float32) / np.sqrt(fin))
        bias = b.const(f"fc{i}.b", 0.01 * b.rng.standard_normal(fout))
        x = b.node("Gemm", [x, w, bias], transB=1)
        if i < len(sizes) - 2:
            x = b.node("Relu", [x])
    flops = sum(2 * fin * fout for fin, fout in zip(sizes, sizes[1:]))
    case = _block_case(b, "alexnet_head", x, [("x", (1, *features))], (1, classes), flops)
    case.shape += " -> " + "-".join(map(str, sizes))
    case.extra.update(bound="memory", weight_bytes=sum(a.nbytes for a in b.weights.values()))
    return case


# --- memory-bound blocks ---------------------------------------------------------------------


def lrn(channels: int = 96, size: int = 55, window: int = 5) -> Case:
    """Relu, then LRN(size `window`, alpha 1e-4, beta 0.75, bias 1) across channels."""
    b = _Builder(seed=0)
    y = b.node("Relu", ["x"])
    y = b.node("LRN", [y], size=window, alpha=1e-4, beta=0.75, bias=1.0)
    shape = (1, channels, size, size)
    # relu, square, window sum, scale, bias, pow, divide
    flops = (window + 5) * math.prod(shape)
    case = _block_case(b, "lrn", y, [("x", shape)], shape, flops, "memory")
    case.inputs[0] *= np.float32(30)  # conv1-sized activations: the normalization bites
    return case


def _pool(name: str, op: str, channels: int, size: int) -> Case:
    """`op` 3x3, stride 2, pad 1 on [1, channels, size, size]; 9 flops per output."""
    n = _net(channels, size)
    y = n.pool(op, "x", 3, 2, 1)
    return _net_case(n, name, y, flops=9 * math.prod(n.shapes[y]), bound="memory")


def maxpool(channels: int = 64, size: int = 112) -> Case:
    """MaxPool 3x3, stride 2, pad 1."""
    return _pool("maxpool", "MaxPool", channels, size)


def avgpool(channels: int = 64, size: int = 112) -> Case:
    """AveragePool 3x3, stride 2, pad 1 (count_include_pad 0)."""
    return _pool("avgpool", "AveragePool", channels, size)


def softmax_rows(rows: int = 256, cols: int = 1024) -> Case:
    """`models.softmax` on [rows, cols]; max, subtract, exp, sum, divide: 5 flops each."""
    case = dataclasses.replace(softmax(rows, cols), name="softmax_rows", flops=5 * rows * cols)
    return _finish(case, "memory")


def layernorm_rows(rows: int = 128, cols: int = 768) -> Case:
    """`models.layer_norm` on [rows, cols]; 7 flops per element."""
    case = dataclasses.replace(layer_norm(rows, cols), name="layernorm_rows", flops=7 * rows * cols)
    return _finish(case, "memory")


def broadcast_chain(channels: int = 64, size: int = 56) -> Case:
    """`y = x * scale + bias` (per channel, broadcast), `y * Sigmoid(y)`, `+ r`."""
    b = _Builder(seed=0)
    scale = b.const("scale", 1 + 0.1 * b.rng.standard_normal((channels, 1, 1)))
    bias = b.const("bias", 0.1 * b.rng.standard_normal((channels, 1, 1)))
    y = b.node("Add", [b.node("Mul", ["x", scale]), bias])
    y = b.node("Mul", [b.node("Sigmoid", [y]), y])
    y = b.node("Add", [y, "r"])
    shape = (1, channels, size, size)
    flops = 5 * math.prod(shape)
    return _block_case(
        b, "broadcast_chain", y, [("x", shape), ("r", shape)], shape, flops, "memory"
    )


# --- small networks --------------------------------------------------------------------------


def mini_mobilenet(size: int = 224, width: float = 1.0, classes: int = CLASSES) -> Case:
    """MobileNetV2's stem and first three inverted residuals, GlobalAveragePool, Gemm."""
    n = _Net(size)
    x = n.relu6(n.conv_bn("x", _divisible(32 * width), 3, 2, 1))
    for t, c, repeats, s in _MOBILENET_V2[:2]:
        for i in range(repeats):
            x = _inverted_residual(n, x, _divisible(c * width), t, s if i == 0 else 1)
    return _finish(n.case("mini_mobilenet", n.classifier(x, classes), classes, f"width {width}"))


def mini_shufflenet(
    size: int = 224, stem: int = 24, channels: int = 272, groups: int = 4, classes: int = CLASSES
) -> Case:
    """Stem conv 3x3/2 + BN + Relu, MaxPool 3x3/2, a stride-2 ShuffleNet v1 unit (first 1x1
    ungrouped) to `channels`, three stride-1 units, GlobalAveragePool, Gemm."""
    n = _Net(size)
    x = n.pool("MaxPool", n.relu(n.conv_bn("x", stem, 3, 2, 1)), 3, 2, 1)
    x = _shuffle_down(n, x, channels, groups, first=1)
    for _ in range(3):
        x = _shuffle_unit(n, x, groups)
    y = n.classifier(x, classes)
    return _finish(n.case("mini_shufflenet", y, classes, f"g {groups}, {channels} channels"))


BLOCKS: dict[str, Benchmark] = {
    b.name: b
    for b in (
        Benchmark(
            "inverted_residual",
            "MobileNetV2 inverted residual, 1x24x56x56, expand 6",
            inverted_residual,
            lambda: inverted_residual(8, 6),
        ),
        Benchmark(
            "shuffle_unit",
            "ShuffleNet v1 stride-1 unit, g 4, 1x272x28x28",
            shuffle_unit,
            lambda: shuffle_unit(32, 6),
        ),
        Benchmark(
            "fire_module",
            "SqueezeNet Fire, 1x128x55x55, squeeze 16, expand 64+64",
            fire_module,
            lambda: fire_module(16, 7, 4, 8),
        ),
        Benchmark(
            "alexnet_head",
            "AlexNet classifier, Gemm 9216-4096-4096-1000, batch 1",
            alexnet_head,
            lambda: alexnet_head((16, 2, 2), 32, 10),
        ),
        Benchmark(
            "grouped_conv",
            "Conv 3x3 384->384, group 2, 13x13 (AlexNet conv4)",
            grouped_conv,
            lambda: grouped_conv(8, 5, 8),
        ),
        Benchmark(
            "dense_block",
            "DenseNet block, 4 layers, 1x64x56x56 -> 192 channels",
            dense_block,
            lambda: dense_block(8, 6, growth=4),
        ),
        Benchmark("lrn", "Relu + LRN size 5, 1x96x55x55", lrn, lambda: lrn(8, 7)),
        Benchmark("maxpool", "MaxPool 3x3/2 pad 1, 1x64x112x112", maxpool, lambda: maxpool(4, 9)),
        Benchmark(
            "avgpool", "AveragePool 3x3/2 pad 1, 1x64x112x112", avgpool, lambda: avgpool(4, 9)
        ),
        Benchmark(
            "softmax_rows",
            "Softmax over the last axis, 256x1024",
            softmax_rows,
            lambda: softmax_rows(3, 64),
        ),
        Benchmark(
            "layernorm_rows",
            "LayerNormalization over the last axis, 128x768",
            layernorm_rows,
            lambda: layernorm_rows(3, 64),
        ),
        Benchmark(
            "broadcast_chain",
            "x*scale+bias, SiLU, +r on 1x64x56x56",
            broadcast_chain,
            lambda: broadcast_chain(4, 5),
        ),
        Benchmark(
            "mini_mobilenet",
            "MobileNetV2 stem + 3 inverted residuals + GAP + Gemm, 1x3x224x224",
            mini_mobilenet,
            lambda: mini_mobilenet(32, 0.25, 10),
        ),
        Benchmark(
            "mini_shufflenet",
            "ShuffleNet v1 stem + 4 units + GAP + Gemm, 1x3x224x224",
            mini_shufflenet,
            lambda: mini_shufflenet(32, 8, 32, 4, 10),
        ),
    )
}


# --- runners and table -----------------------------------------------------------------------


def _mlc_name(threads: int) -> str:
    return "mlc" if threads == 1 else f"mlc{threads}"


def block_runners(threads: Sequence[int] = (1, 2)) -> list[Runner]:
    """mlc with `MLC_NUM_THREADS=t` and onnxruntime with t intra-op threads, per t."""
    mlcs = [
        mlc_runner(threads=1) if t == 1 else mlc_runner(_mlc_name(t), f"mlc {t}t", threads=t)
        for t in threads
    ]
    return [*mlcs, *(ort_runner(t) for t in threads)]


def _throughput(runner: str, extras: dict[str, dict[str, Any]]) -> Callable[[Result], str]:
    """GFLOP/s, or GB/s of `extra["bytes"]` for a memory-bound block."""

    def cell(r: Result) -> str:
        extra, ms = extras.get(r.model, {}), r.median_ms(runner)
        if ms is None:
            return "n/a"
        if extra.get("bound") == "memory" and extra.get("bytes"):
            return f"{extra['bytes'] / (ms * 1e-3) / 1e9:.2f} GB/s"
        return _num(r.gflops(runner), "{:.2f} GFLOP/s")

    return cell


def _ok(runners: Sequence[str]) -> Callable[[Result], str]:
    """ "yes" when every mlc runner matches onnxruntime, else what went wrong."""

    def cell(r: Result) -> str:
        ms = [r.measurements[n] for n in runners if n in r.measurements]
        if any(m.error for m in ms):
            return "error"
        if any(m.ok is False for m in ms):
            worst = max(m.max_abs_diff or 0.0 for m in ms)
            return f"MISMATCH {worst:.1e}"
        return "yes" if ms and all(m.ok for m in ms) else "n/a"

    return cell


def block_columns(threads: Sequence[int], extras: dict[str, dict[str, Any]]) -> list[Column]:
    """block, shape, mlc compile s, per thread count mlc / ORT ms and their ratio, mlc's
    scaling, mlc's throughput on the first thread count, ok."""
    first = _mlc_name(threads[0])
    cols = [
        Column("block", lambda r: r.model),
        Column("shape", lambda r: r.shape),
        Column("mlc compile s", _setup(first)),
    ]
    for t in threads:
        mlc, ort = _mlc_name(t), f"ort{t}"
        cols += [
            Column(f"mlc {t}t ms", _ms(mlc)),
            Column(f"ORT {t}t ms", _ms(ort)),
            Column(f"mlc/ORT {t}t", lambda r, a=mlc, b=ort: _num(r.ratio(a, b), "{:.2f}")),
        ]
    for t, name in ((t, _mlc_name(t)) for t in threads[1:]):
        cols.append(
            Column(
                f"mlc scaling {threads[0]}t/{t}t",
                lambda r, m=name: _num(r.ratio(first, m), "{:.2f}"),
            )
        )
    cols.append(Column(f"mlc {threads[0]}t GFLOP/s or GB/s", _throughput(first, extras)))
    cols.append(Column("ok", _ok([_mlc_name(t) for t in threads])))
    return cols


def geomean(values: Sequence[float]) -> float | None:
    """The geometric mean of positive `values`, None for none."""
    return math.exp(sum(map(math.log, values)) / len(values)) if values else None


def summary(results: Sequence[Result], threads: Sequence[int]) -> tuple[str, dict[str, Any]]:
    """Markdown lines: the geometric mean of mlc/ORT per thread count and the blocks over
    `CLIFF`; and the same as data."""
    lines, data = [], {}
    for t in threads:
        ratios = {
            r.model: x for r in results if (x := r.ratio(_mlc_name(t), f"ort{t}")) is not None
        }
        mean = geomean(list(ratios.values()))
        cliffs = sorted((m for m, x in ratios.items() if x > CLIFF), key=lambda m: -ratios[m])
        lines.append(
            f"- geometric mean mlc/ORT {t}t: {_num(mean, '{:.2f}')} over {len(ratios)} blocks; "
            f"over {CLIFF}x: " + (", ".join(f"{m} ({ratios[m]:.2f})" for m in cliffs) or "none")
        )
        data[f"{t}t"] = {"geomean": mean, "ratios": ratios, "cliffs": cliffs}
    return "\n".join(lines) + "\n", data


# --- latency ---------------------------------------------------------------------------------


@contextlib.contextmanager
def _without(names: Sequence[str]) -> Iterator[None]:
    """Environment variables `names` unset inside, restored after."""
    old = {k: os.environ.pop(k) for k in names if k in os.environ}
    try:
        yield
    finally:
        os.environ.update(old)


@dataclass
class Latency:
    """Single-call times of one runner on one block."""

    block: str
    runner: str
    label: str
    times_s: list[float] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)
    error: str | None = None

    def quantile_ms(self, q: float) -> float | None:
        return float(np.quantile(self.times_s, q)) * 1e3 if self.times_s else None


#: per latency runner, environment variables unset around its preparation and calls
_UNSET: dict[str, tuple[str, ...]] = {"mlc_default": ("MLC_NUM_THREADS",)}


def latency_runners() -> list[Runner]:
    """mlc with its default threads (MLC_NUM_THREADS unset), mlc 1 thread, ORT default."""
    default = dataclasses.replace(
        mlc_runner("mlc_default", "mlc default", threads=0), env={}
    )  # threads=0 only labels it; the environment is unset (`_UNSET`)
    ort_default = dataclasses.replace(ort_runner(0), name="ort_default", label="ORT default")
    return [default, mlc_runner("mlc_1t", "mlc 1t", threads=1), ort_default]


@contextlib.contextmanager
def _runner_env(r: Runner) -> Iterator[None]:
    with _without(_UNSET.get(r.name, ())), _env(r.env):
        yield


def measure_latency(
    case: Case, runners: Sequence[Runner], calls: int, chunk: int = 50, warmup: int = 10
) -> list[Latency]:
    """`calls` single timed calls per runner, in chunks of `chunk` calls, the runners in an
    order rotated every round (so noise hits them alike)."""
    results = [Latency(case.name, r.name, r.label) for r in runners]
    fns: list[tuple[Runner, Callable[[], Any], Latency]] = []
    for r, lat in zip(runners, results):
        try:
            with _runner_env(r):
                prepared = r.prepare(case)
                if prepared is None:
                    continue
                fn, lat.extra = prepared
                for _ in range(warmup):
                    fn()
            fns.append((r, fn, lat))
        except Exception as e:  # reported, not fatal
            lat.error = f"{type(e).__name__}: {e}".splitlines()[0][:200]
    for rnd in range(math.ceil(calls / chunk) if fns else 0):
        count = min(chunk, calls - rnd * chunk)
        k = rnd % len(fns)
        for r, fn, lat in fns[k:] + fns[:k]:
            with _runner_env(r):
                for _ in range(count):
                    start = time.perf_counter()
                    fn()
                    lat.times_s.append(time.perf_counter() - start)
    return results


def latency_table(rows: Sequence[list[Latency]]) -> str:
    """block, then median and p99 (ms) per runner."""
    if not rows:
        return ""
    header = ["block"] + [f"{x.label} {q}" for x in rows[0] for q in ("median ms", "p99 ms")]
    lines = [header, ["---"] * len(header)]
    for row in rows:
        cells = [row[0].block]
        for x in row:
            if x.error:
                cells += ["error", "error"]
            else:
                cells += [_num(x.quantile_ms(0.5), "{:.3f}"), _num(x.quantile_ms(0.99), "{:.3f}")]
        lines.append(cells)
    text = "\n".join("| " + " | ".join(cells) + " |" for cells in lines) + "\n"
    errors = [f"- {x.block} / {x.runner}: {x.error}" for row in rows for x in row if x.error]
    return text + ("\nErrors:\n\n" + "\n".join(errors) + "\n" if errors else "")


# --- command line ----------------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m mlc.benchmarks.blocks",
        description="Time CNN / transformer building blocks with mlc against onnxruntime.",
    )
    p.add_argument("--only", default="", help=f"comma-separated subset of {','.join(BLOCKS)}")
    p.add_argument("--small", action="store_true", help="tiny shapes (a smoke test)")
    p.add_argument("--threads", default="1,2", help="thread counts for mlc and onnxruntime")
    p.add_argument("--repeat", type=int, default=10, help="timed samples per runner (max)")
    p.add_argument("--warmup", type=int, default=1, help="untimed calls per runner first")
    p.add_argument(
        "--budget-s", type=float, default=20.0, help="time budget per block, split over runners"
    )
    p.add_argument(
        "--latency-calls", type=int, default=0, help="single calls per latency runner (0: skip)"
    )
    p.add_argument("--latency-chunk", type=int, default=50, help="calls per interleaved chunk")
    p.add_argument("--markdown", help="write the table(s) as markdown to this file")
    p.add_argument("--json", help="write every sample and setting as JSON to this file")
    p.add_argument("--quiet", action="store_true", help="no progress on stderr")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    p = _parser()
    args = p.parse_args(argv)
    names = [n for n in args.only.split(",") if n] or list(BLOCKS)
    unknown = [n for n in names if n not in BLOCKS]
    if unknown:
        p.error(f"unknown block(s) {', '.join(unknown)}; known: {', '.join(BLOCKS)}")
    threads = _ints(args.threads)
    if not threads:
        p.error("--threads needs at least one thread count")

    def log(msg: str) -> None:
        if not args.quiet:
            print(msg, file=sys.stderr, flush=True)

    runners = block_runners(threads)
    results: list[Result] = []
    extras: dict[str, dict[str, Any]] = {}
    latencies: list[list[Latency]] = []
    for name in names:
        log(f"{name}:")
        case = BLOCKS[name].make(args.small)
        extras[case.name] = case.extra
        results.append(
            benchmark_case(
                case,
                runners,
                repeat=args.repeat,
                warmup=args.warmup,
                budget_s=args.budget_s,
                log=log,
            )
        )
        if args.latency_calls > 0:
            log(f"  latency: {args.latency_calls} calls per runner")
            latencies.append(
                measure_latency(case, latency_runners(), args.latency_calls, args.latency_chunk)
            )
    lines, means = summary(results, threads)
    text = markdown_table(results, block_columns(threads, extras)) + "\n" + lines
    if latencies:
        text += f"\nLatency, {args.latency_calls} single calls:\n\n" + latency_table(latencies)
    print(text, end="")
    if args.markdown:
        Path(args.markdown).write_text(text)
    if args.json:
        settings = {k: v for k, v in vars(args).items() if k not in {"markdown", "json", "quiet"}}
        data = to_json(results, settings)
        for r in data["results"]:
            r["extra"] = extras.get(r["model"], {})
        data["summary"] = means
        data["latency"] = [dataclasses.asdict(x) for row in latencies for x in row]
        Path(args.json).write_text(json.dumps(data, indent=2) + "\n")
    failed = any(m.error or m.ok is False for r in results for m in r.measurements.values())
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
