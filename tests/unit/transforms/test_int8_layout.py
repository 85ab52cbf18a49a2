"""Integer convolutions in the blocked (channels-last) layout: `graph.conv_integer_blocked`,
`graph-block-conv-integer` and `graph-propagate-blocked-linear-quant`, and what
`graph-blocked-layout` makes of a quantized block. The property tests draw u8 x i8
convolutions (zero points of every kind, pads, strides, dilations, blocks that split the
channels or hold them all) and per-tensor / per-axis (de)quantizations of blocked values,
and compare the reference semantics before and after; the compiled code is checked
against the interpreter."""

from __future__ import annotations

import numpy as np
from hypothesis import given, note, settings
from hypothesis import strategies as st
from xdsl.dialects.builtin import ModuleOp
from xdsl.ir import SSAValue

import mlc
from mlc.dialects import graph as g
from mlc.dialects.graph.types import element_type_from_numpy
from mlc.parser.mlir import parse_module
from mlc.testing.coverage import covers
from mlc.testing.semantics import assert_preserves_semantics
from mlc.testing.strategies import ProgramBuilder
from mlc.transforms.graph import BlockedLayoutPass
from mlc.transforms.graph.layout import BlockConvInteger, PropagateLinearQuant

U8 = element_type_from_numpy(np.uint8)


def _const(p: ProgramBuilder, array: np.ndarray) -> SSAValue:
    return p.insert(g.ConstantOp.from_array(np.asarray(array)))


def _codes(rng: np.random.Generator, dtype: type, shape: tuple[int, ...]) -> np.ndarray:
    info = np.iinfo(dtype)
    return rng.integers(info.min, int(info.max) + 1, shape).astype(dtype)


@st.composite
def conv_integers(draw: st.DrawFn) -> tuple[ModuleOp, list[np.ndarray], int]:
    """A u8 x i8 `conv_integer` (constant or argument weight; zero points zero, scalar or
    per output channel; near misses: an i8 input, a group of 2, an argument x zero point
    with padding) and the block `BlockConvInteger` is given."""
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    p = ProgramBuilder(draw, U8, rng)
    n, c = draw(st.integers(1, 2)), draw(st.sampled_from([1, 2, 3, 4, 6, 8]))
    m = draw(st.sampled_from([1, 2, 4, 6, 8]))
    h, w = draw(st.integers(1, 6)), draw(st.integers(1, 6))
    k = [draw(st.integers(1, 3)) for _ in range(2)]
    dil = [draw(st.integers(1, 2)) for _ in range(2)]
    pads = [draw(st.integers(0, 2)) for _ in range(4)]
    for d, size in enumerate((h, w)):  # the window must fit the padded input
        while size + pads[d] + pads[d + 2] < dil[d] * (k[d] - 1) + 1:
            pads[d] += 1
    miss = draw(st.sampled_from(["none"] * 10 + ["signed", "group", "zx-arg"]))
    x_dtype = np.int8 if miss == "signed" else np.uint8
    group = 2 if miss == "group" and c % 2 == 0 and m % 2 == 0 else 1
    x = p.new_arg([n, c, h, w], element_type_from_numpy(x_dtype))
    inputs = [_codes(rng, x_dtype, (n, c, h, w))]
    wshape = (m, c // group, *k)
    if draw(st.integers(0, 4)):
        weight = _const(p, _codes(rng, np.int8, wshape))
    else:
        weight = p.new_arg(list(wshape), element_type_from_numpy(np.int8))
        inputs.append(_codes(rng, np.int8, wshape))
    zx_choices = [0, 1, 128, 255] if x_dtype == np.uint8 else [0, 1, -128, 127]
    zx_value = np.array(draw(st.sampled_from(zx_choices)), x_dtype)
    if miss == "zx-arg":
        zx = p.new_arg([], element_type_from_numpy(zx_value.dtype.type))
        inputs.append(zx_value)
    else:
        zx = _const(p, zx_value)
    zw_kind = draw(st.sampled_from(["zero", "scalar", "channel"]))
    zw_shape: tuple[int, ...] = (m,) if zw_kind == "channel" else ()
    zw_array = np.zeros(zw_shape, np.int8) if zw_kind == "zero" else _codes(rng, np.int8, zw_shape)
    zw = _const(p, zw_array)
    p.insert(
        g.ConvIntegerOp.create(
            [x, weight, zx, zw],
            strides=[draw(st.integers(1, 2)) for _ in range(2)],
            pads=pads,
            dilations=dil,
            group=group,
        )
    )
    block = draw(st.sampled_from([2, 4, 64, 64]))
    return p.finish(), inputs, block


@covers("graph-block-conv-integer")
@given(conv_integers())
def test_block_conv_integer_preserves_semantics(
    case: tuple[ModuleOp, list[np.ndarray], int],
) -> None:
    module, inputs, block = case
    note(str(module))
    assert_preserves_semantics(BlockConvInteger(block), module, inputs=inputs)


@st.composite
def blocked_quantizations(draw: st.DrawFn) -> tuple[ModuleOp, list[np.ndarray]]:
    """quantize_linear or dequantize_linear of from_blocked(to_blocked(x)) with a
    per-tensor scale and zero point (shape () or (1,)), or per channel (a near miss)."""
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    p = ProgramBuilder(draw, element_type_from_numpy(np.float32), rng)
    n, c = draw(st.integers(1, 2)), draw(st.sampled_from([1, 2, 4, 6]))
    shape = [n, c, draw(st.integers(1, 4)), draw(st.integers(1, 4))]
    block = draw(st.sampled_from([d for d in range(1, c + 1) if c % d == 0]))
    quantize = draw(st.booleans())
    codes = draw(st.sampled_from([np.uint8, np.int8]))
    per_channel = draw(st.integers(0, 4)) == 0
    scalar_shape: tuple[int, ...] = (c,) if per_channel else draw(st.sampled_from([(), (1,)]))
    if quantize:
        x = p.new_arg(shape, element_type_from_numpy(np.float32))
        data = (rng.standard_normal(shape) * draw(st.sampled_from([1.0, 50.0, 1e4]))).astype(
            np.float32
        )
    else:
        x = p.new_arg(shape, element_type_from_numpy(codes))
        data = _codes(rng, codes, tuple(shape))
    xb = p.insert(g.ToBlockedOp.create([x], block=block))
    back = p.insert(g.FromBlockedOp.create([xb]))
    scale = _const(p, rng.uniform(2.0**-8, 2.0, scalar_shape).astype(np.float32))
    zp = _const(p, _codes(rng, codes, scalar_shape))
    cls = g.QuantizeLinearOp if quantize else g.DequantizeLinearOp
    p.insert(cls.create([back, scale, zp], axis=1))
    return p.finish(), [data]


@covers("graph-propagate-blocked-linear-quant")
@given(blocked_quantizations())
def test_propagate_linear_quant_preserves_semantics(
    case: tuple[ModuleOp, list[np.ndarray]],
) -> None:
    module, inputs = case
    note(str(module))
    assert_preserves_semantics(PropagateLinearQuant(), module, inputs=inputs)


QUANTIZED_BLOCK = """
func.func @main(%x: tensor<1x{c}x6x6xui8>) -> tensor<1x{c}x6x6xf32> {{
  %zx = graph.constant dense<3> : tensor<ui8>
  %zw = graph.constant dense<[{zw}]> : tensor<{c}xi8>
  %w1 = graph.constant dense<{w1}> : tensor<{c}x{c}x3x3xi8>
  %w2 = graph.constant dense<{w2}> : tensor<{c}x{c}x3x3xi8>
  %s = graph.constant dense<0.25> : tensor<1x{c}x1x1xf64>
  %b = graph.constant dense<-1.5> : tensor<1x{c}x1x1xf64>
  %ys = graph.constant dense<0.125> : tensor<f64>
  %ysf = graph.constant dense<0.125> : tensor<f32>
  %a1 = graph.conv_integer %x, %w1, %zx, %zw {{strides = array<i64: 1, 1>, pads = array<i64: 1, 1, 1, 1>, dilations = array<i64: 1, 1>, group = 1 : i64}} : (tensor<1x{c}x6x6xui8>, tensor<{c}x{c}x3x3xi8>, tensor<ui8>, tensor<{c}xi8>) -> tensor<1x{c}x6x6xi32>
  %f1 = graph.cast %a1 : (tensor<1x{c}x6x6xi32>) -> tensor<1x{c}x6x6xf64>
  %m1 = graph.mul %f1, %s : (tensor<1x{c}x6x6xf64>, tensor<1x{c}x1x1xf64>) -> tensor<1x{c}x6x6xf64>
  %e1 = graph.add %m1, %b : (tensor<1x{c}x6x6xf64>, tensor<1x{c}x1x1xf64>) -> tensor<1x{c}x6x6xf64>
  %q1 = graph.quantize_linear %e1, %ys, %zx {{axis = 1 : i64}} : (tensor<1x{c}x6x6xf64>, tensor<f64>, tensor<ui8>) -> tensor<1x{c}x6x6xui8>
  %a2 = graph.conv_integer %q1, %w2, %zx, %zw {{strides = array<i64: 1, 1>, pads = array<i64: 1, 1, 1, 1>, dilations = array<i64: 1, 1>, group = 1 : i64}} : (tensor<1x{c}x6x6xui8>, tensor<{c}x{c}x3x3xi8>, tensor<ui8>, tensor<{c}xi8>) -> tensor<1x{c}x6x6xi32>
  %f2 = graph.cast %a2 : (tensor<1x{c}x6x6xi32>) -> tensor<1x{c}x6x6xf64>
  %q2 = graph.quantize_linear %f2, %ys, %zx {{axis = 1 : i64}} : (tensor<1x{c}x6x6xf64>, tensor<f64>, tensor<ui8>) -> tensor<1x{c}x6x6xui8>
  %d2 = graph.dequantize_linear %q2, %ysf, %zx {{axis = 1 : i64}} : (tensor<1x{c}x6x6xui8>, tensor<f32>, tensor<ui8>) -> tensor<1x{c}x6x6xf32>
  func.return %d2 : tensor<1x{c}x6x6xf32>
}}
"""


def test_a_quantized_block_stays_channels_last() -> None:
    """Two requantized integer convolutions: the pass leaves one transpose into the
    channels-last layout (the input codes) and one out of it (the dequantized result);
    the epilogue between them (cast, per-channel scale and bias, quantize) runs on the
    channels-last values; interpreted and compiled, the results are the original's."""
    c = 8
    rng = np.random.default_rng(4)
    w1, w2 = (rng.integers(-128, 128, (c, c, 3, 3)) for _ in range(2))
    zw = ", ".join(str(v) for v in rng.integers(-5, 6, c))
    text = QUANTIZED_BLOCK.format(c=c, zw=zw, w1=_dense(w1), w2=_dense(w2))
    module = parse_module(mlc.context(), text)
    x = rng.integers(0, 256, (1, c, 6, 6)).astype(np.uint8)
    (want,) = mlc.interpret(module, x)
    blocked = module.clone()
    BlockedLayoutPass(block=16, min_convs=2).apply(mlc.context(), blocked)
    names = [op.name for op in blocked.walk()]
    assert names.count("graph.conv_integer_blocked") == 2
    assert names.count("graph.to_blocked") == 1 and names.count("graph.from_blocked") == 1
    (got,) = mlc.interpret(blocked, x)
    np.testing.assert_array_equal(got, want)
    (native,) = mlc.compile(module, cache=False)(x)
    np.testing.assert_array_equal(native, want)


def _dense(array: np.ndarray) -> str:
    return np.array2string(array, separator=", ", threshold=10**6).replace("\n", "")


@settings(max_examples=8, deadline=None)
@given(
    c=st.sampled_from([3, 16, 96, 128]),
    m=st.sampled_from([16, 80, 128]),
    kernel=st.sampled_from([1, 3]),
    stride=st.integers(1, 2),
    zw_kind=st.sampled_from(["zero", "scalar", "channel"]),
    seed=st.integers(0, 2**16),
)
def test_blocked_integer_convs_compile_to_the_reference(
    c: int, m: int, kernel: int, stride: int, zw_kind: str, seed: int
) -> None:
    """The compiled channels-last form (the im2col texpr over blocked buffers, VNNI or
    not) computes ONNX ConvInteger's integers, also with several channel blocks on either
    side (96 channels: two blocks of 48; 80: five of 16), strides, 1x1 and padded 3x3
    windows and every kind of weight zero point."""
    rng = np.random.default_rng(seed)
    p = ProgramBuilder(lambda s: None, U8, rng)  # type: ignore[arg-type, return-value]
    x = p.new_arg([2, c, 7, 6], U8)
    weight = _const(p, _codes(rng, np.int8, (m, c, kernel, kernel)))
    zx = _const(p, np.array(rng.integers(0, 256), np.uint8))
    zw_shape: tuple[int, ...] = (m,) if zw_kind == "channel" else ()
    zw_array = np.zeros(zw_shape, np.int8) if zw_kind == "zero" else _codes(rng, np.int8, zw_shape)
    zw = _const(p, zw_array)
    pad = kernel // 2
    p.insert(
        g.ConvIntegerOp.create(
            [x, weight, zx, zw],
            strides=[stride, stride],
            pads=[pad, pad, pad, pad],
            dilations=[1, 1],
            group=1,
        )
    )
    module = p.finish()
    data = _codes(rng, np.uint8, (2, c, 7, 6))
    (want,) = mlc.interpret(module, data)
    blocked = module.clone()
    BlockedLayoutPass(min_convs=1).apply(mlc.context(), blocked)
    assert any(op.name == "graph.conv_integer_blocked" for op in blocked.walk())
    (got,) = mlc.compile(module, cache=False)(data)
    np.testing.assert_array_equal(got, want)
