"""The default schedule of small sliding windows with no row to reuse loaded vectors along
(a depthwise conv in NCHW, pooling): the padding copied once, the window unrolled inside
the vector loop, and a tile of independent accumulators, whose rows never overlap in
the output; compiled, each matches the reference interpreter for any shape."""

from __future__ import annotations

import numpy as np
import onnx
from hypothesis import given, note, settings
from hypothesis import strategies as st
from onnx import TensorProto, helper

import mlc
from mlc.dialects.tl import BlockOp
from mlc.lowering.graph_to_tl import ConvertGraphToTlPass
from mlc.registry import make_context
from mlc.targets.pipeline import rfactor_pass
from mlc.testing.coverage import covers
from mlc.transforms.loops.default_schedule import (
    CpuDefaultSchedule,
    _sliding_window,
    apply_default_schedules,
)


def _window_model(
    op: str, channels: int, height: int, width: int, kernel: int, stride: int, pad: int
) -> tuple[onnx.ModelProto, list[np.ndarray]]:
    """A depthwise conv (with bias) or a pooling over 1 x channels x height x width."""
    rng = np.random.default_rng(channels * 1009 + height * 31 + width)
    attrs = {"kernel_shape": [kernel, kernel], "strides": [stride] * 2, "pads": [pad] * 4}
    inits = []
    if op == "Conv":
        w = rng.standard_normal((channels, 1, kernel, kernel)).astype(np.float32)
        b = rng.standard_normal(channels).astype(np.float32)
        inits = [onnx.numpy_helper.from_array(w, "w"), onnx.numpy_helper.from_array(b, "b")]
        node = helper.make_node(op, ["x", "w", "b"], ["y"], group=channels, **attrs)
    else:
        node = helper.make_node(op, ["x"], ["y"], **attrs)
    graph = helper.make_graph(
        [node],
        "window",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, channels, height, width])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    x = rng.uniform(-3, 3, (1, channels, height, width)).astype(np.float32)
    return model, [x]


def _schedule_text(model: onnx.ModelProto, vector_bits: int) -> tuple[str, list[BlockOp]]:
    """The default schedules' text and the scheduled blocks of `model`."""
    module = mlc.import_onnx(model)
    ConvertGraphToTlPass().apply(make_context(), module)
    texts = apply_default_schedules(module, CpuDefaultSchedule(vector_bits=vector_bits))
    return "\n".join(texts.values()), [op for op in module.walk() if isinstance(op, BlockOp)]


@covers("tl-default-schedule")
@settings(max_examples=12, deadline=None)
@given(
    st.sampled_from(["Conv", "MaxPool", "AveragePool"]),
    st.integers(1, 9),
    st.integers(3, 30),
    st.integers(3, 40),
    st.integers(1, 3),
    st.integers(1, 2),
    st.booleans(),
)
def test_small_windows_compute_the_reference(
    op: str, channels: int, height: int, width: int, kernel: int, stride: int, padded: bool
) -> None:
    """Depthwise convs and poolings of any size, stride and padding (ragged vectors,
    tiles over rows or channels), compiled, equal the reference interpreter."""
    model, inputs = _window_model(op, channels, height, width, kernel, stride, kernel // 2 * padded)
    note(_schedule_text(model, 512)[0])
    (want,) = mlc.interpret(mlc.import_onnx(model), *inputs)
    (got,) = mlc.compile(model, cache=False)(*inputs)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def test_a_depthwise_conv_in_nchw_gets_a_channel_tile_of_unrolled_windows() -> None:
    """ShuffleNet's depthwise 3x3 over 68 channels of 28 x 28: the padded input copied
    once, the 3 x 3 window unrolled around a tile of 4 channels x 2 vectors (8
    accumulators); not a tile of output rows, whose 32-lane spans would overlap in a
    28-wide row."""
    model, _ = _window_model("Conv", 68, 28, 28, 3, 1, 1)
    text, _ = _schedule_text(model, 512)
    assert "cache_read conv_1 0 conv_1/n" in text
    assert "split conv_1/m 4" in text and "unroll conv_1/m.i" in text
    assert "unroll conv_1/k0" in text and "unroll conv_1/k1" in text
    assert "split conv_1/o0" not in text


def test_partial_sums_of_an_rfactor_are_not_a_sliding_window() -> None:
    """`x[i, 64 * k + j]` (an rfactor's partial sums: reads of different `k` never
    overlap) is no window; `x[o + k]` (a conv's) is."""
    conv, _ = _window_model("Conv", 4, 8, 8, 3, 1, 1)
    _, blocks = _schedule_text(conv, 512)
    assert any(_sliding_window(b) for b in blocks if b.reduction_dims)
    softmax = helper.make_model(
        helper.make_graph(
            [helper.make_node("ReduceMax", ["x"], ["y"], axes=[1], keepdims=0)],
            "rows",
            [helper.make_tensor_value_info("x", TensorProto.FLOAT, [4, 1024])],
            [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        ),
        opset_imports=[helper.make_opsetid("", 17)],
    )
    module = mlc.import_onnx(softmax)
    ctx = make_context()
    ConvertGraphToTlPass().apply(ctx, module)
    rfactor_pass(512).apply(ctx, module)
    apply_default_schedules(module, CpuDefaultSchedule(vector_bits=512))
    partial = [b for op in module.walk() if isinstance(b := op, BlockOp) and b.reduction_dims]
    assert partial and not any(_sliding_window(b) for b in partial)
