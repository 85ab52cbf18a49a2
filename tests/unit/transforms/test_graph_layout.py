"""The blocked layout (`graph.to_blocked` / `from_blocked` / `conv_blocked`,
`graph-blocked-layout`): property tests that the pass and each of its patterns preserve
the reference semantics, and deterministic tests of the ops and of what the pass leaves."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from xdsl.dialects.builtin import ModuleOp, TensorType, f32, f64
from xdsl.ir import SSAValue
from xdsl.passes import ModulePass
from xdsl.pattern_rewriter import RewritePattern

import mlc
from mlc.dialects import graph as g
from mlc.interpreters.graph.layout import block_weight, from_blocked, to_blocked
from mlc.parser.mlir import IRDiagnostic, parse_module
from mlc.testing.coverage import covers
from mlc.testing.semantics import assert_preserves_semantics
from mlc.testing.strategies import OpGenerator, Program, ProgramBuilder, graph_programs
from mlc.transforms.graph import (
    BlockConv,
    BlockedLayoutPass,
    CancelBlockedPair,
    PropagateBinary,
    PropagateConcat,
    PropagatePool,
    PropagateUnary,
    default_block,
)
from mlc.transforms.graph.layout import worth_blocking

# --------------------------------------------------------------------------- generators


def _shape(v: SSAValue) -> list[int]:
    assert isinstance(v.type, TensorType)
    return list(v.type.get_shape())


def _image(v: SSAValue, p: ProgramBuilder) -> bool:
    """A non-constant float N x C x H x W value with an even channel count."""
    ty = v.type
    return (
        isinstance(ty, TensorType)
        and ty.element_type == p.element_type
        and len(ty.get_shape()) == 4
        and ty.get_shape()[1] % 2 == 0
        and not isinstance(v.owner, g.ConstantOp)
    )


def _nchw(draw: st.DrawFn, p: ProgramBuilder) -> SSAValue:
    """An existing image (preferably a from_blocked result) or a new argument."""
    blocked = p.pick(lambda v: _image(v, p) and isinstance(v.owner, g.FromBlockedOp))
    if blocked is not None and draw(st.integers(0, 3)):
        return blocked
    x = p.pick(lambda v: _image(v, p))
    if x is not None and draw(st.booleans()):
        return x
    shape = [
        draw(st.integers(1, 2)),
        draw(st.sampled_from([2, 4, 6, 8])),
        draw(st.integers(1, 5)),
        draw(st.integers(1, 5)),
    ]
    x = p.new_arg(shape)
    if blocked is None and draw(st.integers(0, 3)):  # mostly: give the patterns something to move
        xb = p.insert(g.ToBlockedOp.create([x], block=_divisor(draw, shape[1])))
        x = p.insert(g.FromBlockedOp.create([xb]))
    return x


def _divisor(draw: st.DrawFn, n: int, limit: int = 8) -> int:
    return draw(st.sampled_from([d for d in range(1, min(n, limit) + 1) if n % d == 0]))


def _mostly_blocked(draw: st.DrawFn, p: ProgramBuilder) -> SSAValue:
    """`_nchw`, passed through the blocked layout (from_blocked(to_blocked(x))) in two
    draws of three (the simplest included) when it is not a from_blocked result already:
    the operand the propagation patterns move; the others are near misses."""
    x = _nchw(draw, p)
    if not isinstance(x.owner, g.FromBlockedOp) and draw(st.sampled_from([True, True, False])):
        xb = p.insert(g.ToBlockedOp.create([x], block=_divisor(draw, _shape(x)[1])))
        x = p.insert(g.FromBlockedOp.create([xb]))
    return x


def gen_blocked(draw: st.DrawFn, p: ProgramBuilder) -> None:
    # from_blocked(to_blocked(x)): an image in NCHW that was blocked
    x = _nchw(draw, p)
    xb = p.insert(g.ToBlockedOp.create([x], block=_divisor(draw, _shape(x)[1])))
    p.insert(g.FromBlockedOp.create([xb]))


def gen_conv(draw: st.DrawFn, p: ProgramBuilder) -> None:
    # conv(x, w, b?) with constant (or argument) weights, sometimes grouped
    x = _nchw(draw, p)
    n, c, h, w = _shape(x)
    group = draw(st.sampled_from([1, 1, 1, 2, c]))  # c: depthwise
    m = c if group == c else group * draw(st.sampled_from([2, 4, 8]))
    k = [draw(st.sampled_from([1, 2, 3])) for _ in range(2)]
    dil = [draw(st.integers(1, 2)) for _ in range(2)]
    pads = [draw(st.integers(0, 2)) for _ in range(4)]
    for d, size in enumerate((h, w)):  # the window must fit the padded input
        while size + pads[d] + pads[d + 2] < dil[d] * (k[d] - 1) + 1:
            pads[d] += 1
    shape = [m, c // group, *k]
    weight = p.new_arg(shape) if draw(st.integers(0, 4)) == 0 else p.constant(shape)
    operands = [x, weight] + ([p.constant([m])] if draw(st.booleans()) else [])
    conv = g.ConvOp.create(
        operands,
        strides=[draw(st.integers(1, 2)) for _ in range(2)],
        pads=pads,
        dilations=dil,
        group=group,
    )
    p.insert(conv)


UNARY = [g.ReluOp, g.NegOp, g.SigmoidOp, g.AbsOp, g.ExpOp, g.TanhOp]


def gen_unary(draw: st.DrawFn, p: ProgramBuilder) -> None:
    # f(x) for elementwise unary f (or a cast), x mostly in the blocked layout
    x = _mostly_blocked(draw, p)
    if draw(st.integers(0, 5)) == 0:
        p.insert(g.CastOp.to(x, f64 if p.element_type == f32 else f32))
        return
    cls = draw(st.sampled_from(UNARY))
    p.insert(cls.create([x]))


def _other_operand(draw: st.DrawFn, p: ProgramBuilder, x: SSAValue) -> SSAValue:
    n, c, h, w = _shape(x)
    # mostly an operand with a blocked form (another blocked image, a per-channel / scalar /
    # full constant, an argument blocked elsewhere); the near misses (an unblocked image or
    # argument, a spatial constant, a broadcast to a larger shape) about one op in four
    good = ["channel", "scalar", "full", "same", "arg"]
    kind = draw(st.sampled_from(good * 2 + ["spatial", "bigger"]))
    if kind == "same":
        other = p.pick(lambda v: _image(v, p) and _shape(v) == [n, c, h, w] and v is not x)
        if other is not None:
            return other
        kind = "full"
    if kind == "channel":
        shape = draw(st.sampled_from([[c, 1, 1], [1, c, 1, 1], [n, c, 1, 1]]))
        return p.constant(shape)
    if kind == "scalar":
        return p.constant(draw(st.sampled_from([[], [1], [1, 1, 1], [1, 1, 1, 1]])))
    if kind == "full":
        return p.constant([n, c, h, w])
    if kind == "arg":
        arg = p.new_arg([n, c, h, w])
        if draw(st.booleans()):  # already blocked elsewhere: converting it is free
            blocks = [b for b in range(1, 9) if c % b == 0]
            p.insert(g.ToBlockedOp.create([arg], block=draw(st.sampled_from(blocks))))
        return arg
    if kind == "spatial":
        return p.constant([1, 1, h, w])
    return p.constant([2, n, c, h, w])  # broadcasting makes the result larger


def gen_binary(draw: st.DrawFn, p: ProgramBuilder) -> None:
    # x op o for o another image, a per-channel / scalar / full constant, an argument
    x = _mostly_blocked(draw, p)
    other = _other_operand(draw, p, x)
    operands = [x, other] if draw(st.booleans()) else [other, x]
    cls = draw(st.sampled_from([g.AddOp, g.SubOp, g.MulOp, g.DivOp, g.MaxOp, g.PReluOp]))
    if cls is g.PReluOp and len(_shape(other)) > 4:
        cls = g.AddOp
    p.insert(cls.create(operands))


def gen_pool(draw: st.DrawFn, p: ProgramBuilder) -> None:
    # max / average / lp / global pools, x mostly in the blocked layout
    x = _mostly_blocked(draw, p)
    kind = draw(st.sampled_from(["max", "average", "lp", "global_average", "global_max"]))
    if kind == "global_average":
        p.insert(g.GlobalAveragePoolOp.create([x]))
        return
    if kind == "global_max":
        p.insert(g.GlobalMaxPoolOp.create([x]))
        return
    _, _, h, w = _shape(x)
    kernel = [draw(st.integers(1, min(3, h))), draw(st.integers(1, min(3, w)))]
    pads = [draw(st.integers(0, k - 1)) for k in kernel] * 2
    props = {
        "kernel_shape": kernel,
        "strides": [draw(st.integers(1, 2)) for _ in range(2)],
        "pads": pads,
        "dilations": [1, 1],
        "ceil_mode": draw(st.booleans()),
    }
    if kind == "max":
        p.insert(g.MaxPoolOp.create([x], **props))
    elif kind == "average":
        p.insert(g.AveragePoolOp.create([x], count_include_pad=draw(st.booleans()), **props))
    else:
        p.insert(g.LpPoolOp.create([x], p=draw(st.sampled_from([1, 2])), **props))


def gen_concat(draw: st.DrawFn, p: ProgramBuilder) -> None:
    # concat(x, others..) along the channels (or, a near miss, the height): the others
    # mostly blocked in x's block, else in another block or not blocked at all
    x = _mostly_blocked(draw, p)
    n, c, h, w = _shape(x)
    fb = x.owner
    block = _shape(fb.input)[-1] if isinstance(fb, g.FromBlockedOp) else 1
    axis = draw(st.sampled_from([1, 1, 1, 2]))
    operands = [x]
    for _ in range(draw(st.integers(1, 2))):
        size = block * draw(st.integers(1, 3))
        shape = [n, size, h, w] if axis == 1 else [n, c, draw(st.integers(1, 3)), w]
        other = p.new_arg(shape)
        kind = draw(st.sampled_from(["same", "same", "same", "other", "plain"]))
        if kind != "plain":
            b = block if kind == "same" else _divisor(draw, shape[1])
            ob = p.insert(g.ToBlockedOp.create([other], block=b))
            other = p.insert(g.FromBlockedOp.create([ob]))
        operands.insert(draw(st.integers(0, len(operands))), other)
    p.insert(g.ConcatOp.create(operands, axis=axis))


def gen_to_blocked(draw: st.DrawFn, p: ProgramBuilder) -> None:
    # to_blocked(x) (of a from_blocked value: a pair that may cancel), maybe from_blocked
    x = _nchw(draw, p)
    fb = x.owner
    c = _shape(x)[1]
    block = _shape(fb.input)[-1] if isinstance(fb, g.FromBlockedOp) else _divisor(draw, c)
    if draw(st.integers(0, 3)) == 0:
        block = _divisor(draw, c)
    xb = p.insert(g.ToBlockedOp.create([x], block=block))
    if draw(st.booleans()):
        p.insert(g.FromBlockedOp.create([xb]))


def programs(*generators: OpGenerator, max_ops: int = 4) -> st.SearchStrategy[Program]:
    return graph_programs(generators, element_types=(f32,), max_ops=max_ops)


ALL = (gen_conv, gen_conv, gen_unary, gen_binary, gen_pool, gen_concat, gen_blocked, gen_to_blocked)


def check(transform: RewritePattern | ModulePass, program: Program) -> None:
    assert_preserves_semantics(transform, program.module, inputs=program.inputs)


def count(module: ModuleOp, op_type: type) -> int:
    return sum(isinstance(op, op_type) for op in module.walk())


# --------------------------------------------------------------------------- properties


@covers("graph-blocked-layout")
@given(programs(*ALL, max_ops=5), st.sampled_from([2, 4, 8]))
def test_blocked_layout_preserves_semantics(program: Program, block: int) -> None:
    check(BlockedLayoutPass(block=block), program)


@covers("graph-block-conv")
@given(programs(gen_conv, gen_conv, gen_unary, max_ops=3), st.sampled_from([2, 4, 8]))
def test_block_conv_preserves_semantics(program: Program, block: int) -> None:
    check(BlockConv(block), program)


@covers("graph-propagate-blocked-unary")
@given(programs(gen_unary, gen_unary, gen_blocked, max_ops=4))
def test_propagate_unary_preserves_semantics(program: Program) -> None:
    check(PropagateUnary(), program)


@covers("graph-propagate-blocked-binary")
@given(programs(gen_binary, gen_binary, gen_unary, max_ops=4))
def test_propagate_binary_preserves_semantics(program: Program) -> None:
    check(PropagateBinary(), program)


@covers("graph-propagate-blocked-pool")
@given(programs(gen_pool, gen_pool, gen_unary, max_ops=4))
def test_propagate_pool_preserves_semantics(program: Program) -> None:
    check(PropagatePool(), program)


@covers("graph-propagate-blocked-concat")
@given(programs(gen_concat, gen_concat, gen_unary, max_ops=4))
def test_propagate_concat_preserves_semantics(program: Program) -> None:
    check(PropagateConcat(), program)


@covers("graph-cancel-blocked-pair")
@given(programs(gen_blocked, gen_to_blocked, gen_to_blocked, gen_unary, max_ops=4))
def test_cancel_blocked_pair_preserves_semantics(program: Program) -> None:
    check(CancelBlockedPair(), program)


# --------------------------------------------------------------------------- ops

RNG = np.random.default_rng(3)


def rand(*shape: int) -> np.ndarray:
    return RNG.standard_normal(shape).astype(np.float32)


def test_blocking_helpers_round_trip() -> None:
    x = rand(2, 12, 3, 5)
    xb = to_blocked(x, 4)
    assert xb.shape == (2, 3, 3, 5, 4)
    assert xb[1, 2, 0, 4, 3] == x[1, 2 * 4 + 3, 0, 4]
    np.testing.assert_array_equal(from_blocked(xb), x)
    w = rand(8, 6, 3, 2)
    wb = block_weight(w, 3, 4)
    assert wb.shape == (2, 2, 3, 2, 3, 4)
    assert wb[1, 1, 2, 0, 2, 3] == w[1 * 4 + 3, 1 * 3 + 2, 2, 0]


CONV = (
    "{{strides = array<i64: {s}, {s}>, pads = array<i64: 1, 0, 1, 2>, "
    "dilations = array<i64: 1, 1>{extra}}}"
)


@pytest.mark.parametrize("stride", [1, 2])
def test_conv_blocked_matches_conv(stride: int) -> None:
    x, w, b = rand(2, 6, 7, 6), rand(8, 6, 3, 2), rand(8)
    s = stride
    ho, wo = (7 + 2 - 3) // s + 1, (6 + 2 - 2) // s + 1
    text = f"""
    func.func @f(%x: tensor<2x6x7x6xf32>, %w: tensor<8x6x3x2xf32>, %wb: tensor<2x2x3x2x3x4xf32>, %b: tensor<8xf32>) -> (tensor<2x8x{ho}x{wo}xf32>, tensor<2x8x{ho}x{wo}xf32>) {{
      %y = graph.conv %x, %w, %b {CONV.format(s=s, extra=", group = 1 : i64")} : (tensor<2x6x7x6xf32>, tensor<8x6x3x2xf32>, tensor<8xf32>) -> tensor<2x8x{ho}x{wo}xf32>
      %xb = graph.to_blocked %x {{block = 3 : i64}} : (tensor<2x6x7x6xf32>) -> tensor<2x2x7x6x3xf32>
      %yb = graph.conv_blocked %xb, %wb, %b {CONV.format(s=s, extra="")} : (tensor<2x2x7x6x3xf32>, tensor<2x2x3x2x3x4xf32>, tensor<8xf32>) -> tensor<2x2x{ho}x{wo}x4xf32>
      %z = graph.from_blocked %yb : (tensor<2x2x{ho}x{wo}x4xf32>) -> tensor<2x8x{ho}x{wo}xf32>
      func.return %y, %z : tensor<2x8x{ho}x{wo}xf32>, tensor<2x8x{ho}x{wo}xf32>
    }}"""
    module = parse_module(mlc.context(), text)
    wb = np.ascontiguousarray(block_weight(w, 3, 4))
    y, z = mlc.interpret(module, x, w, wb, b)
    np.testing.assert_allclose(z, y, rtol=1e-5, atol=1e-5)
    compiled = mlc.compile(module)
    y2, z2 = compiled(x, w, wb, b)
    np.testing.assert_allclose(z2, y, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(y2, y, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("stride", [1, 2])
def test_depthwise_conv_is_blocked_and_matches_conv(stride: int) -> None:
    """A depthwise conv (group = channels) becomes graph.depthwise_conv_blocked between
    to_blocked / from_blocked; interpreted and compiled, it equals the plain conv."""
    x, w, b = rand(1, 16, 9, 7), rand(16, 1, 3, 3), rand(16)
    t = f"""
    func.func @f(%x: tensor<1x16x9x7xf32>, %w: tensor<16x1x3x3xf32>, %b: tensor<16xf32>) -> tensor<1x16x?x?xf32> {{
      %y = graph.conv %x, %w, %b {{strides = array<i64: {stride}, {stride}>, pads = array<i64: 1, 1, 1, 1>, dilations = array<i64: 1, 1>, group = 16 : i64}} : (tensor<1x16x9x7xf32>, tensor<16x1x3x3xf32>, tensor<16xf32>) -> tensor<1x16x?x?xf32>
      func.return %y : tensor<1x16x?x?xf32>
    }}"""
    ho, wo = (9 - 1) // stride + 1, (7 - 1) // stride + 1
    module = parse_module(mlc.context(), t.replace("?x?", f"{ho}x{wo}"))
    (want,) = mlc.interpret(module, x, w, b)
    blocked = module.clone()
    BlockedLayoutPass(block=8).apply(mlc.context(), blocked)
    assert count(blocked, g.DepthwiseConvBlockedOp) == 1 and count(blocked, g.ConvOp) == 0
    (got,) = mlc.interpret(blocked, x, w, b)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
    (native,) = mlc.compile(module, layout="nchwc")(x, w, b)
    np.testing.assert_allclose(native, want, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize(("group", "stride"), [(2, 1), (4, 2)])
def test_grouped_conv_is_blocked_and_matches_conv(group: int, stride: int) -> None:
    """A grouped conv becomes graph.group_conv_blocked between reshapes that split and
    merge the group axis; interpreted and compiled, it equals the plain conv."""
    x, w, b = rand(1, 32, 13, 13), rand(64, 32 // group, 3, 3), rand(64)
    o = (13 - 1) // stride + 1
    t_in, t_w, t_out = (
        "tensor<1x32x13x13xf32>",
        f"tensor<64x{32 // group}x3x3xf32>",
        f"tensor<1x64x{o}x{o}xf32>",
    )
    module = parse_module(
        mlc.context(),
        f"""func.func @f(%x: {t_in}, %w: {t_w}, %b: tensor<64xf32>) -> {t_out} {{
          %y = graph.conv %x, %w, %b {{strides = array<i64: {stride}, {stride}>, pads = array<i64: 1, 1, 1, 1>, dilations = array<i64: 1, 1>, group = {group} : i64}} : ({t_in}, {t_w}, tensor<64xf32>) -> {t_out}
          func.return %y : {t_out}
        }}""",
    )
    (want,) = mlc.interpret(module, x, w, b)
    blocked = module.clone()
    BlockedLayoutPass(block=8).apply(mlc.context(), blocked)
    assert count(blocked, g.GroupConvBlockedOp) == 1 and count(blocked, g.ConvOp) == 0
    (got,) = mlc.interpret(blocked, x, w, b)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
    (native,) = mlc.compile(module)(x, w, b)  # blocked by default: grouped
    np.testing.assert_allclose(native, want, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "%w = graph.constant dense<1.0> : tensor<2x3x3x4xf32>\n"
            "%xb = graph.to_blocked %x {block = 3 : i64} : (tensor<1x6x2x2xf32>) -> tensor<1x2x2x2x3xf32>\n"
            "%y = graph.depthwise_conv_blocked %xb, %w {strides = array<i64: 1, 1>, pads = array<i64: 1, 1, 1, 1>, dilations = array<i64: 1, 1>} : (tensor<1x2x2x2x3xf32>, tensor<2x3x3x4xf32>) -> tensor<1x2x2x2x3xf32>",
            "channels",
        ),
        (
            "%y = graph.to_blocked %x {block = 4 : i64} : (tensor<1x6x2x2xf32>) -> tensor<1x1x2x2x4xf32>",
            "does not divide",
        ),
        (
            "%y = graph.to_blocked %x {block = 2 : i64} : (tensor<1x6x2x2xf32>) -> tensor<1x3x2x2x3xf32>",
            "result type",
        ),
        (
            "%w = graph.constant dense<1.0> : tensor<1x2x1x1x4x2xf32>\n"
            "%xb = graph.to_blocked %x {block = 3 : i64} : (tensor<1x6x2x2xf32>) -> tensor<1x2x2x2x3xf32>\n"
            "%y = graph.conv_blocked %xb, %w {strides = array<i64: 1, 1>, pads = array<i64: 0, 0, 0, 0>, dilations = array<i64: 1, 1>} : (tensor<1x2x2x2x3xf32>, tensor<1x2x1x1x4x2xf32>) -> tensor<1x1x2x2x2xf32>",
            "input channels",
        ),
    ],
)
def test_layout_ops_verify(text: str, message: str) -> None:
    module_text = f"""
    func.func @f(%x: tensor<1x6x2x2xf32>) {{
      {text}
      func.return
    }}"""
    with pytest.raises(IRDiagnostic, match=message):
        parse_module(mlc.context(), module_text)


# --------------------------------------------------------------------------- the pass

CHAIN = """
func.func @chain(%x: tensor<1x16x6x6xf32>, %w1: tensor<16x16x3x3xf32>, %b1: tensor<16xf32>, %w2: tensor<16x16x3x3xf32>) -> tensor<1x16x3x3xf32> {
  %a = graph.conv %x, %w1, %b1 {strides = array<i64: 1, 1>, pads = array<i64: 1, 1, 1, 1>, dilations = array<i64: 1, 1>, group = 1 : i64} : (tensor<1x16x6x6xf32>, tensor<16x16x3x3xf32>, tensor<16xf32>) -> tensor<1x16x6x6xf32>
  %r = graph.relu %a : (tensor<1x16x6x6xf32>) -> tensor<1x16x6x6xf32>
  %c = graph.conv %r, %w2 {strides = array<i64: 1, 1>, pads = array<i64: 1, 1, 1, 1>, dilations = array<i64: 1, 1>, group = 1 : i64} : (tensor<1x16x6x6xf32>, tensor<16x16x3x3xf32>) -> tensor<1x16x6x6xf32>
  %s = graph.add %c, %x : (tensor<1x16x6x6xf32>, tensor<1x16x6x6xf32>) -> tensor<1x16x6x6xf32>
  %t = graph.relu %s : (tensor<1x16x6x6xf32>) -> tensor<1x16x6x6xf32>
  %p = graph.max_pool %t {kernel_shape = array<i64: 2, 2>, strides = array<i64: 2, 2>, pads = array<i64: 0, 0, 0, 0>, dilations = array<i64: 1, 1>, ceil_mode = false} : (tensor<1x16x6x6xf32>) -> tensor<1x16x3x3xf32>
  func.return %p : tensor<1x16x3x3xf32>
}"""


@pytest.mark.parametrize("block", [4, 8, 16])
def test_chain_has_transposes_only_at_the_boundaries(block: int) -> None:
    module = parse_module(mlc.context(), CHAIN)
    inputs = [rand(1, 16, 6, 6), rand(16, 16, 3, 3), rand(16), rand(16, 16, 3, 3)]
    expected = mlc.interpret(module, *inputs)
    BlockedLayoutPass(block=block).apply(mlc.context(), module)
    module.verify()
    assert count(module, g.ToBlockedOp) == 1
    assert count(module, g.FromBlockedOp) == 1
    assert count(module, g.ConvBlockedOp) == 2
    assert count(module, g.ConvOp) == 0
    (got,) = mlc.interpret(module, *inputs)
    np.testing.assert_allclose(got, expected[0], rtol=1e-5, atol=1e-5)


def test_constant_weights_are_blocked_by_folding() -> None:
    text = """
    func.func @f(%x: tensor<1x8x4x4xf32>) -> tensor<1x8x4x4xf32> {
      %w = graph.constant dense<0.5> : tensor<8x8x1x1xf32>
      %y = graph.conv %x, %w {strides = array<i64: 1, 1>, pads = array<i64: 0, 0, 0, 0>, dilations = array<i64: 1, 1>, group = 1 : i64} : (tensor<1x8x4x4xf32>, tensor<8x8x1x1xf32>) -> tensor<1x8x4x4xf32>
      func.return %y : tensor<1x8x4x4xf32>
    }"""
    module = parse_module(mlc.context(), text)
    BlockedLayoutPass(block=4).apply(mlc.context(), module)
    assert count(module, g.ReshapeOp) == count(module, g.TransposeOp) == 0
    (conv,) = [op for op in module.walk() if isinstance(op, g.ConvBlockedOp)]
    assert isinstance(conv.weight.owner, g.ConstantOp)
    assert _shape(conv.weight) == [2, 2, 1, 1, 4, 4]


def test_ineligible_convs_stay() -> None:
    # group 2, and 6 output channels with block 4 (neither 4 nor 2 ... 2 < 4 is too narrow)
    text = """
    func.func @f(%x: tensor<1x4x4x4xf32>, %w: tensor<4x2x1x1xf32>, %v: tensor<6x4x1x1xf32>) -> (tensor<1x4x4x4xf32>, tensor<1x6x4x4xf32>) {
      %y = graph.conv %x, %w {strides = array<i64: 1, 1>, pads = array<i64: 0, 0, 0, 0>, dilations = array<i64: 1, 1>, group = 2 : i64} : (tensor<1x4x4x4xf32>, tensor<4x2x1x1xf32>) -> tensor<1x4x4x4xf32>
      %z = graph.conv %x, %v {strides = array<i64: 1, 1>, pads = array<i64: 0, 0, 0, 0>, dilations = array<i64: 1, 1>, group = 1 : i64} : (tensor<1x4x4x4xf32>, tensor<6x4x1x1xf32>) -> tensor<1x6x4x4xf32>
      func.return %y, %z : tensor<1x4x4x4xf32>, tensor<1x6x4x4xf32>
    }"""
    module = parse_module(mlc.context(), text)
    BlockedLayoutPass(block=8).apply(mlc.context(), module)
    assert count(module, g.ConvOp) == 2
    assert count(module, g.ToBlockedOp) == 0


def test_global_average_pool_becomes_a_blocked_reduction() -> None:
    text = """
    func.func @f(%x: tensor<1x8x4x4xf32>, %w: tensor<8x8x1x1xf32>) -> tensor<1x8x1x1xf32> {
      %y = graph.conv %x, %w {strides = array<i64: 1, 1>, pads = array<i64: 0, 0, 0, 0>, dilations = array<i64: 1, 1>, group = 1 : i64} : (tensor<1x8x4x4xf32>, tensor<8x8x1x1xf32>) -> tensor<1x8x4x4xf32>
      %p = graph.global_average_pool %y : (tensor<1x8x4x4xf32>) -> tensor<1x8x1x1xf32>
      func.return %p : tensor<1x8x1x1xf32>
    }"""
    module = parse_module(mlc.context(), text)
    inputs = [rand(1, 8, 4, 4), rand(8, 8, 1, 1)]
    (expected,) = mlc.interpret(module, *inputs)
    BlockedLayoutPass(block=4).apply(mlc.context(), module)
    (fb,) = [op for op in module.walk() if isinstance(op, g.FromBlockedOp)]
    assert isinstance(fb.input.owner, g.ReduceMeanOp)
    (got,) = mlc.interpret(module, *inputs)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(("bits", "block"), [(512, 16), (256, 8), (128, 4)])
def test_default_block(bits: int, block: int) -> None:
    assert default_block(bits) == block


def _compile_both(module: ModuleOp, inputs: Sequence[np.ndarray]) -> None:
    (expected,) = mlc.interpret(module, *inputs)
    got = mlc.compile(module, layout="nchwc")(*inputs)
    got = got[0] if isinstance(got, list | tuple) else got
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4)


def test_compile_with_the_blocked_layout() -> None:
    module = parse_module(mlc.context(), CHAIN)
    inputs = [rand(1, 16, 6, 6), rand(16, 16, 3, 3), rand(16), rand(16, 16, 3, 3)]
    _compile_both(module, inputs)
    with pytest.raises(ValueError, match="unknown layout"):
        mlc.compile(module, layout="nhwc")


def test_worth_blocking_counts_eligible_convs() -> None:
    chain = parse_module(mlc.context(), CHAIN)  # two 16 -> 16 channel convs
    assert worth_blocking(chain, 8)
    assert worth_blocking(chain, 32)  # 16 = 32 / 2 divides the channels
    assert not worth_blocking(chain, 64)
    # three needed, but a 6-wide output is not a whole number of 4- or 8-lane vectors
    assert worth_blocking(chain, 8, min_convs=3)
    t, w = "tensor<1x16x16x16xf32>", "tensor<16x16x3x3xf32>"
    attrs = "strides = array<i64: 1, 1>, pads = array<i64: 1, 1, 1, 1>, dilations = array<i64: 1, 1>, group = 1 : i64"
    wide = parse_module(
        mlc.context(),
        f"""func.func @f(%x: {t}, %w: {w}) -> {t} {{
          %a = graph.conv %x, %w {{{attrs}}} : ({t}, {w}) -> {t}
          %b = graph.conv %a, %w {{{attrs}}} : ({t}, {w}) -> {t}
          func.return %b : {t}
        }}""",
    )
    assert not worth_blocking(wide, 8, min_convs=3)
    assert worth_blocking(wide, 8, min_convs=2)


def test_a_single_grouped_or_ragged_conv_is_worth_blocking() -> None:
    """One conv does not pay for two transposes, unless NCHW handles it badly."""

    def conv(channels: int, width: int, group: int) -> ModuleOp:
        t = f"tensor<1x{channels}x{width}x{width}xf32>"
        w = f"tensor<{channels}x{channels // group}x3x3xf32>"
        return parse_module(
            mlc.context(),
            f"""func.func @f(%x: {t}, %w: {w}) -> {t} {{
              %y = graph.conv %x, %w {{strides = array<i64: 1, 1>, pads = array<i64: 1, 1, 1, 1>, dilations = array<i64: 1, 1>, group = {group} : i64}} : ({t}, {w}) -> {t}
              func.return %y : {t}
            }}""",
        )

    assert not worth_blocking(conv(16, 16, 1), 8)
    assert worth_blocking(conv(16, 13, 1), 8)  # 13 columns: masked lanes in NCHW
    assert worth_blocking(conv(16, 16, 2), 8)  # grouped
    assert worth_blocking(conv(16, 16, 16), 8)  # depthwise


def test_half_width_grouped_convs_go_to_products_only_when_products_take_them() -> None:
    """A grouped 1x1 conv with half-width channel blocks is left in NCHW for
    `pointwise-conv-to-matmul`, but only one that pass rewrites (stride 1, unpadded): a
    strided one is blocked, not left as a slow NCHW grouped conv."""
    from mlc.transforms.graph.layout import group_blocks

    def conv(stride: int) -> g.ConvOp:
        t, w = "tensor<1x16x8x8xf32>", "tensor<16x4x1x1xf32>"
        o = f"tensor<1x16x{8 // stride}x{8 // stride}xf32>"
        module = parse_module(
            mlc.context(),
            f"""func.func @f(%x: {t}, %w: {w}) -> {o} {{
              %y = graph.conv %x, %w {{strides = array<i64: {stride}, {stride}>, pads = array<i64: 0, 0, 0, 0>, dilations = array<i64: 1, 1>, group = 4 : i64}} : ({t}, {w}) -> {o}
              func.return %y : {o}
            }}""",
        )
        return next(op for op in module.walk() if isinstance(op, g.ConvOp))

    assert group_blocks(conv(1), 8) is None  # 4 output channels per group: half of 8
    assert group_blocks(conv(2), 8) == (4, 4, 4)


def test_a_single_channel_block_gets_a_row_tile() -> None:
    """16 output channels in one 16-lane block: no channel blocks to give NR vectors, so
    the tile is MR output columns x 1 vector (not the vector split in halves), and the
    compiled chain still matches the interpreter."""
    from mlc.lowering.graph_to_tl import ConvertGraphToTlPass
    from mlc.transforms.loops.default_schedule import CpuDefaultSchedule, apply_default_schedules

    module = parse_module(mlc.context(), CHAIN)
    inputs = [rand(1, 16, 6, 6), rand(16, 16, 3, 3), rand(16), rand(16, 16, 3, 3)]
    (expected,) = mlc.interpret(module, *inputs)
    BlockedLayoutPass(block=16).apply(mlc.context(), module)
    ConvertGraphToTlPass().apply(mlc.context(), module)
    texts = apply_default_schedules(module, CpuDefaultSchedule(vector_bits=512))
    # the products, not their bias fills
    convs = [t for label, t in texts.items() if label.startswith("conv_blocked") and "/ci" in t]
    assert len(convs) == 2
    for text in convs:
        label = text.split()[1]
        assert f"vectorize {label}/mi 16" in text and f"split {label}/mi" not in text
        assert f"unroll {label}/o1\n" in text  # the 6 output columns of a row
    (got,) = mlc.compile(module)(*inputs)
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize(("vector_bits", "block"), [(256, 4), (512, 8)])
def test_half_vector_channel_blocks_get_a_register_tile(vector_bits: int, block: int) -> None:
    """Channel blocks of half a vector (4 lanes on AVX2: a channel count such as
    ShuffleNet's 68 is not a multiple of 8) still get an MR x NR register tile of
    half-width vectors, not one vector per output point; compiled, the chain matches
    the interpreter."""
    from mlc.lowering.graph_to_tl import ConvertGraphToTlPass
    from mlc.transforms.loops.default_schedule import CpuDefaultSchedule, apply_default_schedules

    module = parse_module(mlc.context(), CHAIN)
    inputs = [rand(1, 16, 6, 6), rand(16, 16, 3, 3), rand(16), rand(16, 16, 3, 3)]
    (expected,) = mlc.interpret(module, *inputs)
    BlockedLayoutPass(block=block).apply(mlc.context(), module)
    ConvertGraphToTlPass().apply(mlc.context(), module)
    texts = apply_default_schedules(module, CpuDefaultSchedule(vector_bits=vector_bits))
    convs = [t for label, t in texts.items() if label.startswith("conv_blocked") and "/ci" in t]
    assert len(convs) == 2
    for text in convs:
        label = text.split()[1]
        assert f"vectorize {label}/mi {block}" in text
        assert f"unroll {label}/o1" in text  # output columns of a row: the tile's MR
    (got,) = mlc.compile(parse_module(mlc.context(), CHAIN))(*inputs)
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4)
