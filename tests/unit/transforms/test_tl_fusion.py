"""Kernel fusion (`tl-inline-elementwise`, `tl-fuse-epilogues`): random chains of a
contraction followed by elementwise ops keep their reference semantics when fused, the
fusions fire, intermediate buffers disappear, and the default schedule moves in-place
epilogues into the contraction's register tile (natively checked too)."""

from __future__ import annotations

import numpy as np
from hypothesis import given, note
from hypothesis import strategies as st
from xdsl.dialects import func, memref
from xdsl.dialects.builtin import ModuleOp, TensorType, f32

import mlc
from mlc.dialects import graph
from mlc.dialects.tl import BlockOp, KernelOp
from mlc.lowering.graph_to_tl import ConvertGraphToTlPass
from mlc.parser.mlir import parse_module
from mlc.targets.compiled import compile_model
from mlc.testing.coverage import covers
from mlc.transforms.loops.default_schedule import CpuDefaultSchedule, apply_default_schedules
from mlc.transforms.loops.fusion import (
    TlFuseEpiloguesPass,
    TlInlineElementwisePass,
    fuse_epilogues,
    inline_elementwise,
)

ELEMENTWISE = ["relu", "add_bias", "mul_self", "neg", "add_input", "sigmoid"]


@st.composite
def chains(draw: st.DrawFn) -> tuple[ModuleOp, list[np.ndarray]]:
    """main(x: MxK, w: KxN) = elementwise chain of (matmul or x+1) on random shapes."""
    m, k, n = (draw(st.integers(1, 9)) for _ in range(3))
    contraction = draw(st.integers(0, 3)) > 0  # mostly: epilogues need a contraction
    ops = draw(st.lists(st.sampled_from(ELEMENTWISE), min_size=1, max_size=4))
    x_t, w_t = TensorType(f32, [m, k]), TensorType(f32, [k, n])
    f = func.FuncOp("main", ([x_t, w_t], [TensorType(f32, [m, n] if contraction else [m, k])]))
    block = f.body.block
    x, w = block.args

    def add(op):  # type: ignore[no-untyped-def]
        block.add_op(op)
        return op.results[0]

    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    if contraction:
        v = add(graph.MatMulOp.create([x, w]))
    else:
        one = add(graph.ConstantOp.from_array(np.ones((m, k), np.float32)))
        v = add(graph.AddOp.create([x, one]))
    cols = v.type.get_shape()[1]
    for name in ops:
        if name == "relu":
            v = add(graph.ReluOp.create([v]))
        elif name == "add_bias":
            bias = rng.standard_normal(cols).astype(np.float32)
            c = add(graph.ConstantOp.from_array(bias))
            v = add(graph.AddOp.create([v, c]))
        elif name == "mul_self":
            v = add(graph.MulOp.create([v, v]))
        elif name == "neg":
            v = add(graph.NegOp.create([v]))
        elif name == "sigmoid":
            v = add(graph.SigmoidOp.create([v]))
        elif contraction is False or (m, n) == (m, k):
            v = add(graph.AddOp.create([v, x]))
    block.add_op(func.ReturnOp(v))
    arrays = [
        rng.standard_normal((m, k)).astype(np.float32),
        rng.standard_normal((k, n)).astype(np.float32),
    ]
    return ModuleOp([f]), arrays


def _tl(module: ModuleOp) -> ModuleOp:
    module = module.clone()
    ConvertGraphToTlPass().apply(mlc.context(), module)
    return module


def _close(got, want) -> None:  # type: ignore[no-untyped-def]
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-5)


@covers("tl-inline-elementwise", "tl-fuse-epilogues")
@given(chains())
def test_fusion_preserves_semantics(case: tuple[ModuleOp, list[np.ndarray]]) -> None:
    graph_module, arrays = case
    module = _tl(graph_module)
    want = mlc.interpret(module, *arrays)
    TlInlineElementwisePass().apply(mlc.context(), module)
    TlFuseEpiloguesPass().apply(mlc.context(), module)
    module.verify()
    note(str(module))
    _close(mlc.interpret(module, *arrays), want)
    # and natively, with the default schedule moving epilogues into the tiles
    apply_default_schedules(module, CpuDefaultSchedule(vector_bits=512))
    _close(compile_model(module)(*arrays), want)


def test_a_chain_becomes_one_kernel_and_an_epilogue_updates_in_place() -> None:
    x_t, w_t = TensorType(f32, [24, 16]), TensorType(f32, [16, 64])
    text = f"""
    func.func @main(%x: {x_t}, %w: {w_t}) -> tensor<24x64xf32> {{
      %y = graph.matmul %x, %w : ({x_t}, {w_t}) -> tensor<24x64xf32>
      %n = graph.neg %y : (tensor<24x64xf32>) -> tensor<24x64xf32>
      %r = graph.relu %n : (tensor<24x64xf32>) -> tensor<24x64xf32>
      func.return %r : tensor<24x64xf32>
    }}"""
    module = _tl(parse_module(mlc.context(), text))
    allocs_before = sum(isinstance(op, memref.AllocOp) for op in module.walk())
    assert inline_elementwise(module) == 1
    assert fuse_epilogues(module) == 1
    labels = [op.label.data for op in module.walk() if isinstance(op, KernelOp)]
    assert labels[-1].endswith("neg_relu") and labels[-1].startswith("matmul")
    allocs_after = sum(isinstance(op, memref.AllocOp) for op in module.walk())
    assert allocs_after == allocs_before - 2  # both intermediates are gone
    (text,) = [
        t
        for t in apply_default_schedules(module, CpuDefaultSchedule(vector_bits=512)).values()
        if "reverse_compute_at" in t
    ]
    assert "reverse_compute_at matmul" in text
    blocks = [op for op in module.walk() if isinstance(op, BlockOp)]
    epilogue = next(b for b in blocks if b.label.data == labels[-1])
    producer = next(b for b in blocks if b.label.data == "matmul")
    assert producer.parent_op().parent_op() is not None  # type: ignore[union-attr]
    assert epilogue.parent_op() is not None and epilogue.parent_op().parent_op() is not None  # type: ignore[union-attr]


def test_an_elementwise_producer_is_not_recomputed_inside_a_contraction() -> None:
    # relu(x) feeds a matmul that reads x[m, k] once per column n: not inlined there,
    # but a row sum reads each element once: inlined
    text = """
    func.func @main(%x: tensor<8x16xf32>, %w: tensor<16x32xf32>) -> (tensor<8x32xf32>, tensor<8xf32>) {
      %r = graph.relu %x : (tensor<8x16xf32>) -> tensor<8x16xf32>
      %y = graph.matmul %r, %w : (tensor<8x16xf32>, tensor<16x32xf32>) -> tensor<8x32xf32>
      %n = graph.neg %x : (tensor<8x16xf32>) -> tensor<8x16xf32>
      %s = graph.reduce_sum %n {axes = array<i64: 1>, keepdims = false} : (tensor<8x16xf32>) -> tensor<8xf32>
      func.return %y, %s : tensor<8x32xf32>, tensor<8xf32>
    }"""
    module = _tl(parse_module(mlc.context(), text))
    rng = np.random.default_rng(0)
    arrays = [rng.standard_normal(s).astype(np.float32) for s in ((8, 16), (16, 32))]
    want = mlc.interpret(module, *arrays)
    assert inline_elementwise(module) == 1
    labels = sorted(op.label.data for op in module.walk() if isinstance(op, KernelOp))
    assert "relu" in labels and "relu_matmul" not in labels
    assert any(label.startswith("neg_") for label in labels)
    _close(mlc.interpret(module, *arrays), want)


def test_an_elementwise_producer_is_not_recomputed_inside_a_grouped_conv() -> None:
    """A grouped conv reads x[n, m / MG * CG + c, ...]: `m` appears only under the
    division, so every input element is read once per output channel of its group, and
    inlining relu(x) would recompute it that many times."""
    t_x, t_w, t_y = "tensor<1x8x6x6xf32>", "tensor<8x4x1x1xf32>", "tensor<1x8x6x6xf32>"
    text = f"""
    func.func @main(%x: {t_x}, %w: {t_w}) -> {t_y} {{
      %r = graph.relu %x : ({t_x}) -> {t_x}
      %y = graph.conv %r, %w {{strides = array<i64: 1, 1>, pads = array<i64: 0, 0, 0, 0>, dilations = array<i64: 1, 1>, group = 2 : i64}} : ({t_x}, {t_w}) -> {t_y}
      func.return %y : {t_y}
    }}"""
    module = _tl(parse_module(mlc.context(), text))
    rng = np.random.default_rng(0)
    arrays = [rng.standard_normal(s).astype(np.float32) for s in ((1, 8, 6, 6), (8, 4, 1, 1))]
    want = mlc.interpret(module, *arrays)
    assert inline_elementwise(module) == 0
    labels = sorted(op.label.data for op in module.walk() if isinstance(op, KernelOp))
    assert "relu" in labels
    _close(mlc.interpret(module, *arrays), want)
