"""`tl-fuse-outer-loops`: adjacent row loops of scheduled kernels fused into one, exact
on the reference semantics, and only where every iteration keeps to its own slice."""

from __future__ import annotations

import numpy as np
import onnx
from hypothesis import given, note, settings
from hypothesis import strategies as st
from onnx import TensorProto, helper
from xdsl.dialects import func, memref
from xdsl.dialects.builtin import ModuleOp

import mlc
from mlc.dialects.tl import ForOp, LoopKind, LoopKindAttr
from mlc.lowering.graph_to_tl import ConvertGraphToTlPass
from mlc.lowering.tl_kernel_to_loops import ConvertTlKernelToLoopsPass
from mlc.parser.mlir import parse_module
from mlc.registry import make_context
from mlc.targets.pipeline import TlDefaultSchedulePass, rfactor_pass
from mlc.testing.coverage import covers
from mlc.transforms.loops.common import blocks_under
from mlc.transforms.loops.fusion import TlFuseEpiloguesPass, TlInlineElementwisePass
from mlc.transforms.loops.loop_fusion import (
    MIN_FLOW_BYTES,
    TlFuseOuterLoopsPass,
    fuse_outer_loops,
)

#: row-wise steps (each iteration of a row loop reads and writes its own row) and steps
#: that mix rows (a column mean, a transpose), which must keep their loops apart
ROW_STEPS = ("softmax", "log_softmax", "layer_norm", "center", "scale_by_max", "exp", "relu")
MIXING_STEPS = ("column_center", "transpose")


@st.composite
def row_programs(draw: st.DrawFn) -> tuple[onnx.ModelProto, np.ndarray]:
    """A chain of row-wise and row-mixing ONNX steps on an [R, C] input."""
    rows, cols = draw(st.integers(1, 5)), draw(st.integers(1, 40))
    steps = draw(st.lists(st.sampled_from(ROW_STEPS + MIXING_STEPS), min_size=1, max_size=4))
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    nodes: list[onnx.NodeProto] = []
    inits: list[onnx.TensorProto] = []
    shape = [rows, cols]
    cur = "x"
    for i, step in enumerate(steps):
        out = f"t{i}"
        if step in ("softmax", "log_softmax"):
            op = "Softmax" if step == "softmax" else "LogSoftmax"
            nodes.append(helper.make_node(op, [cur], [out], axis=-1))
        elif step == "layer_norm":
            scale, bias = f"scale{i}", f"bias{i}"
            inits.append(
                helper.make_tensor(
                    scale, TensorProto.FLOAT, [shape[1]], rng.uniform(0.5, 1.5, shape[1]).tolist()
                )
            )
            inits.append(
                helper.make_tensor(
                    bias, TensorProto.FLOAT, [shape[1]], rng.uniform(-1, 1, shape[1]).tolist()
                )
            )
            nodes.append(
                helper.make_node(
                    "LayerNormalization", [cur, scale, bias], [out], axis=-1, epsilon=1e-5
                )
            )
        elif step in ("center", "column_center", "scale_by_max"):
            axis = 0 if step == "column_center" else 1
            reduce = "ReduceMax" if step == "scale_by_max" else "ReduceMean"
            nodes.append(helper.make_node(reduce, [cur], [f"r{i}"], axes=[axis], keepdims=1))
            combine = "Div" if step == "scale_by_max" else "Sub"
            nodes.append(helper.make_node(combine, [cur, f"r{i}"], [out]))
        elif step == "transpose":
            nodes.append(helper.make_node("Transpose", [cur], [out], perm=[1, 0]))
            shape = shape[::-1]
        else:
            nodes.append(helper.make_node({"exp": "Exp", "relu": "Relu"}[step], [cur], [out]))
        cur = out
    graph = helper.make_graph(
        nodes,
        "rows",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [rows, cols])],
        [helper.make_tensor_value_info(cur, TensorProto.FLOAT, shape)],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    x = rng.uniform(-3, 3, (rows, cols)).astype(np.float32)
    return model, x


def scheduled_loops(
    model: onnx.ModelProto, vector_bits: int = 256, threads: bool = True
) -> ModuleOp:
    """`model` through the CPU pipeline up to explicit loops (default schedules, threads)."""
    module = mlc.import_onnx(model)
    ctx = make_context()
    for p in (
        ConvertGraphToTlPass(),
        TlInlineElementwisePass(),
        TlFuseEpiloguesPass(),
        rfactor_pass(vector_bits),
        TlDefaultSchedulePass(vector_bits=vector_bits, threads=threads),
        ConvertTlKernelToLoopsPass(),
    ):
        p.apply(ctx, module)
    return module


def top_level_loops(module: ModuleOp) -> list[ForOp]:
    main = next(op for op in module.ops if isinstance(op, func.FuncOp))
    return [op for op in main.body.block.ops if isinstance(op, ForOp)]


@covers("tl-fuse-outer-loops")
@settings(max_examples=40)
@given(row_programs())
def test_fusing_row_loops_preserves_semantics(case: tuple[onnx.ModelProto, np.ndarray]) -> None:
    """The scheduled module interpreted before and after fusion gives bit-identical
    results (each element is computed by the same operations in the same order)."""
    model, x = case
    module = scheduled_loops(model)
    want = mlc.interpret(module, x)
    via_pass = module.clone()
    loops = len(top_level_loops(module))
    fused = fuse_outer_loops(module)
    note(str(module))
    module.verify()
    assert len(top_level_loops(module)) == loops - fused
    TlFuseOuterLoopsPass(min_bytes=0).apply(make_context(), via_pass)  # the registered class
    assert str(via_pass) == str(module)
    for got, expected in zip(mlc.interpret(module, x), want):
        np.testing.assert_array_equal(got, expected)


@st.composite
def poolings(draw: st.DrawFn) -> tuple[onnx.ModelProto, np.ndarray]:
    """A padded max or average pooling of a batch of one (its padded copy, output fill
    and window loops are nests under a single-iteration batch loop)."""
    channels, h, w = draw(st.integers(1, 4)), draw(st.integers(2, 9)), draw(st.integers(2, 9))
    kernel = draw(st.integers(2, min(3, h, w)))
    stride, pad = draw(st.integers(1, 2)), draw(st.integers(0, kernel - 1))
    op = draw(st.sampled_from(["MaxPool", "AveragePool"]))
    node = helper.make_node(
        op, ["x"], ["y"], kernel_shape=[kernel] * 2, strides=[stride] * 2, pads=[pad] * 4
    )
    model = _model([node], 0, 0, shape=[1, channels, h, w])
    seed = draw(st.integers(0, 2**16))
    x = np.random.default_rng(seed).uniform(-3, 3, (1, channels, h, w)).astype(np.float32)
    return model, x


@covers("tl-fuse-outer-loops")
@settings(max_examples=25)
@given(poolings())
def test_fusing_through_a_batch_of_one_preserves_semantics(
    case: tuple[onnx.ModelProto, np.ndarray],
) -> None:
    """Nests under single-iteration batch loops fuse on their channel loops, with the
    same results bit for bit."""
    model, x = case
    module = scheduled_loops(model)
    want = mlc.interpret(module, x)
    fuse_outer_loops(module)
    note(str(module))
    module.verify()
    for got, expected in zip(mlc.interpret(module, x), want):
        np.testing.assert_array_equal(got, expected)


def test_a_padded_pooling_copies_and_pools_one_channel_at_a_time() -> None:
    """MaxPool 3x3 / 2, pad 1: the padded copy of the input and the window loop (with
    the output fill in its tiles) run in one channel loop under the batch loop, so each
    channel's copy is read back from the cache; compiled, it matches the interpreter."""
    node = helper.make_node(
        "MaxPool", ["x"], ["y"], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1]
    )
    model = _model([node], 0, 0, shape=[1, 16, 64, 64])  # a padded copy >= MIN_FLOW_BYTES
    x = np.random.default_rng(1).uniform(-3, 3, (1, 16, 64, 64)).astype(np.float32)
    module = scheduled_loops(model)
    assert fuse_outer_loops(module) == 1
    (batch,) = top_level_loops(module)
    (channels,) = [op for op in batch.body.block.ops if isinstance(op, ForOp)]
    assert channels.ub == 16
    copy, window = [op for op in channels.body.block.ops if isinstance(op, ForOp)]
    assert [b.label.data for b in blocks_under(copy)] == ["max_pool_cache"]
    # the output fill runs in the window's tiles (the default schedule's compute_at)
    assert [b.label.data for b in blocks_under(window)] == ["max_pool_init", "max_pool"]
    (want,) = mlc.interpret(mlc.import_onnx(model), x)
    (got,) = mlc.compile(model, cache=False)(x)
    np.testing.assert_array_equal(got, want)


def test_a_softmax_becomes_one_row_loop() -> None:
    """Softmax over rows: the max, exp, sum, reciprocal and scale kernels run in one loop
    over the rows (only the fills of the two row results stay apart); compiled, it
    matches the reference interpreter."""
    model, x = _single("Softmax", rows=16, cols=64)
    module = scheduled_loops(model)
    assert fuse_outer_loops(module) >= 5
    row_loops = [loop for loop in top_level_loops(module) if loop.ub == 16 and loop.step_value == 1]
    assert len(row_loops) == 1
    (want,) = mlc.interpret(mlc.import_onnx(model), x)
    (got,) = mlc.compile(model, cache=False)(x)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-7)


def test_only_large_intermediates_make_fusion_pay() -> None:
    """With the pipeline's threshold, a softmax over 256 x 1024 rows fuses (its 1 MiB of
    exponentials is read twice), a layer norm over 128 x 768 rows does not (per-row
    statistics and the result itself flow between its nests, no large intermediate);
    with no threshold both fuse."""
    softmax = scheduled_loops(_single("Softmax", rows=256, cols=1024)[0])
    assert TlFuseOuterLoopsPass().min_bytes == MIN_FLOW_BYTES
    TlFuseOuterLoopsPass().apply(make_context(), softmax)
    assert len([loop for loop in top_level_loops(softmax) if loop.ub == 256]) == 1
    norm = _layer_norm(rows=128, cols=768)
    assert fuse_outer_loops(scheduled_loops(norm), MIN_FLOW_BYTES) == 0
    assert fuse_outer_loops(scheduled_loops(norm), 0) >= 4


def test_a_column_reduction_keeps_its_loops_apart() -> None:
    """`x - mean(x, axis=0)` reads every row in every column: no loop is fused across it."""
    nodes = [
        helper.make_node("ReduceMean", ["x"], ["m"], axes=[0], keepdims=1),
        helper.make_node("Sub", ["x", "m"], ["y"]),
    ]
    model = _model(nodes, 8, 8)
    module = scheduled_loops(model)
    text = str(module)
    assert fuse_outer_loops(module) == 0
    assert str(module) == text


_NEIGHBOUR = """
func.func @main(%x: memref<4x8xf32>) -> memref<4x8xf32> {
  %a = memref.alloc() : memref<4x8xf32>
  %b = memref.alloc() : memref<4x8xf32>
  tl.for %i = 0 to 4 {
    tl.for %j = 0 to 8 {
      tl.block "double" iterators(i: 4 parallel, j: 8 parallel) at(i = %i, j = %j) ins(%x[i, j] : memref<4x8xf32>) outs(%a[i, j] : memref<4x8xf32>) {
      ^bb0(%v: f32, %o: f32):
        %w = arith.addf %v, %v : f32
        tl.yield %w : f32
      }
    }
  }
  tl.for %i2 = 0 to 4 {
    tl.for %j2 = 0 to 8 {
      tl.block "next_row" iterators(i: 4 parallel, j: 8 parallel) at(i = %i2, j = %j2) ins(%a[(i + 1) mod 4, j] : memref<4x8xf32>) outs(%b[i, j] : memref<4x8xf32>) {
      ^bb0(%v: f32, %o: f32):
        tl.yield %v : f32
      }
    }
  }
  func.return %b : memref<4x8xf32>
}
"""


def test_reading_another_iterations_slice_blocks_fusion() -> None:
    """The second loop reads row i + 1 of what the first writes: fused, row i would read
    row i + 1 before the first loop has written it. Not fused."""
    module = parse_module(make_context(), _NEIGHBOUR)
    x = np.arange(32, dtype=np.float32).reshape(4, 8)
    (want,) = mlc.interpret(module, x)
    assert fuse_outer_loops(module) == 0
    (got,) = mlc.interpret(module, x)
    np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(want, np.roll(2 * x, -1, axis=0))


def test_a_parallel_loop_fused_with_a_serial_one_stays_parallel() -> None:
    """Softmax rows scheduled with threads: the fused loop is parallel when any part was
    and every serial part only touches its own rows."""
    model, x = _single("Softmax", rows=64, cols=1024)
    module = scheduled_loops(model)
    kinds = {loop.loop_kind for loop in top_level_loops(module) if loop.ub == 64}
    fuse_outer_loops(module)
    (row_loop,) = [loop for loop in top_level_loops(module) if loop.ub == 64]
    want = LoopKind.PARALLEL if LoopKind.PARALLEL in kinds else LoopKind.SERIAL
    assert row_loop.loop_kind == want


def _model(
    nodes: list[onnx.NodeProto], rows: int, cols: int, shape: list[int] | None = None
) -> onnx.ModelProto:
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, shape or [rows, cols])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def _layer_norm(rows: int, cols: int) -> onnx.ModelProto:
    rng = np.random.default_rng(0)
    scale = helper.make_tensor("scale", TensorProto.FLOAT, [cols], rng.uniform(size=cols).tolist())
    bias = helper.make_tensor("bias", TensorProto.FLOAT, [cols], rng.uniform(size=cols).tolist())
    node = helper.make_node("LayerNormalization", ["x", "scale", "bias"], ["y"], axis=-1)
    model = _model([node], rows, cols)
    model.graph.initializer.extend([scale, bias])
    return model


def _single(op: str, rows: int, cols: int) -> tuple[onnx.ModelProto, np.ndarray]:
    model = _model([helper.make_node(op, ["x"], ["y"], axis=-1)], rows, cols)
    x = np.random.default_rng(0).uniform(-3, 3, (rows, cols)).astype(np.float32)
    return model, x


def _allocs(module: ModuleOp) -> list[str]:
    return [str(op.memref.type) for op in module.walk() if isinstance(op, memref.AllocOp)]


def test_a_serial_row_loop_keeps_one_row_of_its_intermediates() -> None:
    """Softmax over 256 x 1024 rows at the pipeline's 512-bit vectors: fused into one
    serial row loop, the 1 MiB of exponentials and the partial maxima and sums shrink to
    the one row an iteration uses (`memref<1x1024xf32>`: the row stays in L1), and so do
    the rows' maxima and sums (their fills run in the loop). Compiled, it matches the
    reference interpreter (the property test above checks the pass on small shapes,
    where it shrinks buffers too, against the interpreted loops)."""
    model, x = _single("Softmax", rows=256, cols=1024)
    module = scheduled_loops(model, vector_bits=512, threads=False)
    assert _allocs(module).count("memref<256x1024xf32>") == 2  # exponentials, result
    TlFuseOuterLoopsPass().apply(make_context(), module)
    module.verify()
    (row_loop,) = [loop for loop in top_level_loops(module) if loop.ub == 256]
    assert row_loop.loop_kind == LoopKind.SERIAL
    allocs = _allocs(module)
    assert allocs.count("memref<256x1024xf32>") == 1 and "memref<1x1024xf32>" in allocs
    # the partial maxima and sums, and the row's maximum and sum (filled in the loop)
    assert allocs.count("memref<1xf32>") == 2 and "memref<256xf32>" not in allocs
    # + the two 1x64 partials and their two 1x16 lane sums (`rfactor`)
    assert sum(a.startswith("memref<1x") for a in allocs) == 7
    (want,) = mlc.interpret(mlc.import_onnx(model), x)
    (got,) = mlc.compile(model, cache=False)(x)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-7)


def test_a_parallel_row_loop_keeps_its_intermediates_whole() -> None:
    """The same softmax with its row loop parallel: its iterations run at once, so each
    keeps its own row of the intermediates (nothing is shrunk)."""
    model, _ = _single("Softmax", rows=256, cols=1024)
    module = scheduled_loops(model, vector_bits=512, threads=True)
    for loop in top_level_loops(module):
        if loop.ub == 256:
            loop.properties["kind"] = LoopKindAttr(LoopKind.PARALLEL)
    TlFuseOuterLoopsPass().apply(make_context(), module)
    (row_loop,) = [loop for loop in top_level_loops(module) if loop.ub == 256]
    assert row_loop.loop_kind == LoopKind.PARALLEL
    assert not any(a.startswith("memref<1x") for a in _allocs(module))
