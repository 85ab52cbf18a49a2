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
from mlc.transforms.loops.channel_block_schedule import MAX_HALF_WIDTH_BLOCKS, choose_tile
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


def test_half_width_blocks_take_more_blocks_per_tile_row() -> None:
    """8-channel blocks on AVX-512 (half a register): a tile row takes up to
    `MAX_HALF_WIDTH_BLOCKS` of them, a divisor of the block count (SqueezeNet's 1000
    classes: 125 blocks, 5 per row; MobileNet's 24-channel projections: 3 blocks),
    where full-width blocks take at most `MAX_CHANNEL_BLOCKS`."""
    avx512 = CpuDefaultSchedule(vector_bits=512)
    assert choose_tile(avx512, 13, 125) == (13, 1)
    assert choose_tile(avx512, 13, 125, MAX_HALF_WIDTH_BLOCKS)[1] == 5
    assert choose_tile(avx512, 56, 3, MAX_HALF_WIDTH_BLOCKS)[1] == 3
    mr, nr = choose_tile(avx512, 56, 3, MAX_HALF_WIDTH_BLOCKS)
    assert mr * nr <= 28 and mr * nr + nr + 1 <= 32


def _two_convs(cin: int, cout: int, size: int, kernel: int) -> tuple[onnx.ModelProto, np.ndarray]:
    """cin -> cin 3x3 then cin -> cout kernel x kernel (bias, pad kernel // 2)."""
    rng = np.random.default_rng(cin * 7 + cout)
    w0 = rng.standard_normal((cin, cin, 3, 3)).astype(np.float32) / (3 * cin**0.5)
    w1 = rng.standard_normal((cout, cin, kernel, kernel)).astype(np.float32) / cin**0.5
    b1 = rng.standard_normal(cout).astype(np.float32)
    nodes = [
        helper.make_node("Conv", ["x", "w0"], ["y0"], pads=[1] * 4),
        helper.make_node("Conv", ["y0", "w1", "b1"], ["y"], pads=[kernel // 2] * 4),
    ]
    inits = [onnx.numpy_helper.from_array(a, n) for a, n in ((w0, "w0"), (w1, "w1"), (b1, "b1"))]
    graph = helper.make_graph(
        nodes,
        "convs",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, cin, size, size])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    return model, rng.standard_normal((1, cin, size, size)).astype(np.float32)


def test_tiles_of_several_half_width_blocks_compute_the_reference() -> None:
    """24 and 40 output channels (3 and 5 blocks of 8) over ragged rows, 1x1 and 3x3:
    compiled, each matches the reference interpreter."""
    for cin, cout, size, kernel in ((32, 24, 9, 1), (16, 40, 13, 3), (32, 1000, 5, 1)):
        model, x = _two_convs(cin, cout, size, kernel)
        (want,) = mlc.interpret(mlc.import_onnx(model), x)
        (got,) = mlc.compile(model, cache=False)(x)
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)
