"""`pointwise-conv-to-matmul`: 1x1 convolutions (grouped or not, with or without bias)
as matrix products over the flattened image preserve semantics; other convs are left
alone; in `mlc.compile` only the 1x1 convs the blocked layout does not take become
products."""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st
from xdsl.dialects.builtin import ModuleOp, f32

import mlc
from mlc.dialects import graph as g
from mlc.parser.mlir import parse_module
from mlc.testing.coverage import covers
from mlc.testing.semantics import assert_preserves_semantics
from mlc.testing.strategies import Program, ProgramBuilder, graph_programs
from mlc.transforms.graph import PointwiseConvToMatmul, PointwiseConvToMatmulPass


def gen_conv(draw: st.DrawFn, p: ProgramBuilder) -> None:
    """A conv over a new N x C x H x W argument: mostly 1x1 stride 1 unpadded (grouped
    or not, bias or not), sometimes with a stride, padding or a 3x3 kernel."""
    group = draw(st.sampled_from([1, 1, 2, 3]))
    c = group * draw(st.integers(1, 4))
    m = group * draw(st.integers(1, 4))
    spatial = [draw(st.integers(2, 5)) for _ in range(draw(st.sampled_from([1, 2, 2, 3])))]
    x = p.new_arg([draw(st.integers(1, 2)), c, *spatial])
    kind = draw(st.sampled_from(["pointwise", "pointwise", "pointwise", "strided", "padded"]))
    k = 3 if kind == "padded" else 1
    rank = len(spatial)
    weight = p.constant([m, c // group, *([k] * rank)])
    operands = [x, weight] + ([p.constant([m])] if draw(st.booleans()) else [])
    conv = g.ConvOp.create(
        operands,
        strides=[2 if kind == "strided" else 1] * rank,
        pads=[1 if kind == "padded" else 0] * (2 * rank),
        dilations=[1 if kind == "padded" else draw(st.integers(1, 2))] * rank,
        group=group,
    )
    p.insert(conv)


def programs() -> st.SearchStrategy[Program]:
    return graph_programs((gen_conv,), element_types=(f32,), max_ops=2)


def _count(module: ModuleOp, op_type: type) -> int:
    return sum(isinstance(op, op_type) for op in module.walk())


@covers("graph-pointwise-conv-to-matmul")
@given(programs())
def test_pattern_preserves_semantics(program: Program) -> None:
    assert_preserves_semantics(PointwiseConvToMatmul(), program.module, inputs=program.inputs)


@covers("pointwise-conv-to-matmul")
@given(programs())
def test_pass_preserves_semantics(program: Program) -> None:
    assert_preserves_semantics(PointwiseConvToMatmulPass(), program.module, inputs=program.inputs)


GROUPED = """
func.func @f(%x: tensor<1x8x5x7xf32>, %w: tensor<12x4x1x1xf32>, %b: tensor<12xf32>) -> tensor<1x12x5x7xf32> {
  %y = graph.conv %x, %w, %b {strides = array<i64: 1, 1>, pads = array<i64: 0, 0, 0, 0>, dilations = array<i64: 1, 1>, group = 2 : i64} : (tensor<1x8x5x7xf32>, tensor<12x4x1x1xf32>, tensor<12xf32>) -> tensor<1x12x5x7xf32>
  func.return %y : tensor<1x12x5x7xf32>
}"""


def test_a_grouped_pointwise_conv_becomes_one_batched_product() -> None:
    module = parse_module(mlc.context(), GROUPED)
    rng = np.random.default_rng(0)
    inputs = [
        rng.standard_normal(s).astype(np.float32) for s in ((1, 8, 5, 7), (12, 4, 1, 1), (12,))
    ]
    (want,) = mlc.interpret(module, *inputs)
    rewritten = module.clone()
    PointwiseConvToMatmulPass().apply(mlc.context(), rewritten)
    assert _count(rewritten, g.ConvOp) == 0 and _count(rewritten, g.MatMulOp) == 1
    matmul = next(op for op in rewritten.walk() if isinstance(op, g.MatMulOp))
    assert matmul.output.type.get_shape() == (1, 2, 6, 35)  # N x G x M/G x H*W
    (got,) = mlc.interpret(rewritten, *inputs)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
    (native,) = mlc.compile(module, layout=None)(*inputs)
    np.testing.assert_allclose(native, want, rtol=1e-4, atol=1e-4)


def test_the_compile_pipeline_leaves_blocked_convs_alone() -> None:
    """Two 16-channel convs are blocked first (graph-blocked-layout runs before), so no
    product appears; with layout=None the 1x1 conv becomes one."""
    from mlc.targets.compiled import cpu_pipeline

    t, w1, w3 = "tensor<1x16x8x8xf32>", "tensor<16x16x1x1xf32>", "tensor<16x16x3x3xf32>"
    attrs = "strides = array<i64: 1, 1>, dilations = array<i64: 1, 1>, group = 1 : i64"
    text = f"""func.func @f(%x: {t}, %a: {w1}, %b: {w3}) -> {t} {{
      %y = graph.conv %x, %a {{{attrs}, pads = array<i64: 0, 0, 0, 0>}} : ({t}, {w1}) -> {t}
      %z = graph.conv %y, %b {{{attrs}, pads = array<i64: 1, 1, 1, 1>}} : ({t}, {w3}) -> {t}
      func.return %z : {t}
    }}"""
    for layout, products in (("default", 0), (None, 1)):
        module = parse_module(mlc.context(), text)
        for p in cpu_pipeline(layout=layout).graph_passes():
            if p.name == "convert-graph-to-tl":
                break
            p.apply(mlc.context(), module)
        assert _count(module, g.MatMulOp) == products, layout
