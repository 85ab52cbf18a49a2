"""The blocked conv's loop order: output rows outermost while the weights stay in the L2
cache, the weights' channel blocks outermost where re-reading them for every output row
would move more bytes than re-reading the image for every block (ResNet-50's last
stage: 9.4 MiB of weights, 7 x 7 outputs)."""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper

import mlc
from mlc.registry import make_context
from mlc.targets.pipeline import MlcCpuPipelinePass
from mlc.transforms.loops.default_schedule import CpuDefaultSchedule, apply_default_schedules


def _conv(channels: int, size: int) -> tuple[onnx.ModelProto, np.ndarray]:
    """Two 3x3 convs (pad 1, bias) of `channels` -> `channels` over size x size, so
    `graph-blocked-layout` blocks them."""
    rng = np.random.default_rng(channels + size)
    inits, nodes, cur = [], [], "x"
    for i in range(2):
        w = (rng.standard_normal((channels, channels, 3, 3)) / (3 * channels**0.5)).astype(
            np.float32
        )
        b = rng.standard_normal(channels).astype(np.float32)
        inits += [
            onnx.numpy_helper.from_array(w, f"w{i}"),
            onnx.numpy_helper.from_array(b, f"b{i}"),
        ]
        nodes.append(helper.make_node("Conv", [cur, f"w{i}", f"b{i}"], [f"y{i}"], pads=[1] * 4))
        cur = f"y{i}"
    graph = helper.make_graph(
        nodes,
        "convs",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, channels, size, size])],
        [helper.make_tensor_value_info(cur, TensorProto.FLOAT, None)],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    return model, rng.standard_normal((1, channels, size, size)).astype(np.float32)


def _reorders(model: onnx.ModelProto) -> list[str]:
    module = mlc.import_onnx(model)
    ctx = make_context()
    for p in MlcCpuPipelinePass().passes(module):
        if p.name == "tl-default-schedule":
            break
        p.apply(ctx, module)
    texts = apply_default_schedules(module, CpuDefaultSchedule(vector_bits=512))
    return [
        line
        for label, text in texts.items()
        if label.startswith("conv_blocked_1")
        for line in text.splitlines()
        if line.startswith("reorder")
    ]


def test_large_weights_over_few_rows_are_read_once() -> None:
    """256 -> 256 channels (2.25 MiB of weights) over 4 x 4 outputs: the output channel
    blocks are the outermost loop; 16 -> 16 over 16 x 16 (9 KiB of weights): the output
    rows are. Compiled, the first matches the reference interpreter."""
    large, x = _conv(256, 4)
    (reorder, *_) = _reorders(large)
    assert reorder.split()[1].endswith("/mb.o")
    small, _ = _conv(16, 16)
    assert all(not line.split()[1].endswith("/mb.o") for line in _reorders(small))
    (want,) = mlc.interpret(mlc.import_onnx(large), x)
    (got,) = mlc.compile(large, cache=False)(x)
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)
