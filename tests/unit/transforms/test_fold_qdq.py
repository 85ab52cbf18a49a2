"""`graph-fold-qdq` (transforms/graph/quantize.py): products of dequantized 8-bit tensors
become integer kernels with a float64 epilogue.

The fold is not bit-identical to the float program it replaces (that one rounds every
product and sum to f32): it computes what the QDQ program means exactly. So the property
tests check three things on drawn programs (conv / gemm / matmul; signed and unsigned
codes, nonzero zero points, per-tensor and per-channel scales, biases as floats or int32
codes, with and without relu and requantization, near misses the fold must refuse):
the folded program equals an independent numpy evaluation in integers and float64,
bit for bit; it is within one code (or f32 accumulation error) of the unfolded program;
and native code computes what the interpreter does."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from hypothesis import example, given, note, settings
from hypothesis import strategies as st
from xdsl.dialects.builtin import ModuleOp
from xdsl.ir import SSAValue

import mlc
from mlc.dialects import graph as g
from mlc.dialects.graph.types import element_type_from_numpy
from mlc.testing.coverage import covers
from mlc.testing.semantics import Tolerance, assert_preserves_semantics
from mlc.testing.strategies import ProgramBuilder
from mlc.transforms.graph import FoldQdqDataMovement, FoldQdqPass, FoldReluIntoQuantize

CODES = (np.uint8, np.int8)


def _const(p: ProgramBuilder, array: np.ndarray) -> SSAValue:
    return p.insert(g.ConstantOp.from_array(np.asarray(array)))


def _codes(
    draw: st.DrawFn, rng: np.random.Generator, dtype: type, shape: tuple[int, ...]
) -> np.ndarray:
    info = np.iinfo(dtype)
    return rng.integers(info.min, int(info.max) + 1, shape).astype(dtype)


def _zero_point(draw: st.DrawFn, dtype: type, size: int | None = None) -> np.ndarray:
    info = np.iinfo(dtype)
    special = st.sampled_from(
        [0, int(info.min), int(info.max), (int(info.min) + int(info.max)) // 2]
    )
    value = st.one_of(special, st.integers(int(info.min), int(info.max)))
    if size is None:
        return np.array(draw(value), dtype)
    return np.array(draw(st.lists(value, min_size=size, max_size=size)), dtype)


_SCALES = st.floats(2.0**-10, 0.5, allow_nan=False, allow_infinity=False, width=32)


@dataclass
class QdqProduct:
    """A drawn program, its input, and what the exact evaluation gives."""

    module: ModuleOp
    inputs: list[np.ndarray]
    exact: np.ndarray
    bound: np.ndarray  # f32 accumulation error bound of the float program, per element
    quantized: bool  # the result is requantized (codes), else float
    foldable: bool  # the drawn program is one the fold must rewrite


def conv_reference(
    x: np.ndarray, w: np.ndarray, strides, pads, dilations, group: int
) -> np.ndarray:
    """Direct convolution over int64 or float64 arrays (an independent reference)."""
    n, c, h, wd = x.shape
    m, cg, kh, kw = w.shape
    xp = np.pad(x, ((0, 0), (0, 0), (pads[0], pads[2]), (pads[1], pads[3])))
    (sh, sw), (dh, dw) = strides, dilations
    oh = (xp.shape[2] - (dh * (kh - 1) + 1)) // sh + 1
    ow = (xp.shape[3] - (dw * (kw - 1) + 1)) // sw + 1
    out = np.zeros((n, m, oh, ow), dtype=np.result_type(x, w))
    mg = m // group
    for gi in range(group):
        xs = xp[:, gi * cg : (gi + 1) * cg]
        ws = w[gi * mg : (gi + 1) * mg]
        for i in range(kh):
            for j in range(kw):
                patch = xs[
                    :,
                    :,
                    i * dh : i * dh + sh * (oh - 1) + 1 : sh,
                    j * dw : j * dw + sw * (ow - 1) + 1 : sw,
                ]
                out[:, gi * mg : (gi + 1) * mg] += np.einsum("nchw,mc->nmhw", patch, ws[:, :, i, j])
    return out


@st.composite
def qdq_products(draw: st.DrawFn) -> QdqProduct:
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    kind = draw(st.sampled_from(["conv", "gemm", "matmul"]))
    x_dtype, w_dtype = draw(st.sampled_from(CODES)), draw(st.sampled_from(CODES))
    foldable = True
    if kind == "conv":
        group = draw(st.integers(1, 2))
        c, m = group * draw(st.integers(1, 3)), group * draw(st.integers(1, 3))
        k = draw(st.integers(1, 3))
        strides = [draw(st.integers(1, 2)), draw(st.integers(1, 2))]
        dilations = [draw(st.integers(1, 2)), 1]
        pads = [draw(st.integers(0, 1)) for _ in range(4)]
        h, wd = draw(st.integers(dilations[0] * (k - 1) + 1, 6)), draw(st.integers(k, 6))
        x_shape, w_shape = (draw(st.integers(1, 2)), c, h, wd), (m, c // group, k, k)
        channels, w_axis = m, 0
    elif kind == "gemm":
        rows, depth, cols = (
            draw(st.integers(1, 4)),
            draw(st.integers(1, 8)),
            draw(st.integers(1, 6)),
        )
        trans_b = draw(st.booleans())
        x_shape, w_shape = (rows, depth), (cols, depth) if trans_b else (depth, cols)
        channels, w_axis = cols, 0 if trans_b else 1
        alpha, beta = draw(st.sampled_from([1.0, 0.5])), draw(st.sampled_from([1.0, 2.0]))
    else:
        batch = draw(st.sampled_from([(), (2,)]))
        rows, depth, cols = (
            draw(st.integers(1, 4)),
            draw(st.integers(1, 8)),
            draw(st.integers(1, 6)),
        )
        x_shape, w_shape = (*batch, rows, depth), (depth, cols)
        channels, w_axis = cols, 1
    per_channel = draw(st.booleans())
    if (
        per_channel
        and draw(st.integers(0, 5)) == 0
        and len(w_shape) > 1
        and w_shape[1 - w_axis if w_axis < 2 else 0] > 1
    ):
        w_axis = 1 - w_axis if w_axis < 2 else 0  # a near miss: scales along the reduction
        foldable = False
    p = ProgramBuilder(draw, element_type_from_numpy(np.float32), rng)
    xq = p.new_arg(x_shape, element_type_from_numpy(x_dtype))
    sx, zx = np.float32(draw(_SCALES)), _zero_point(draw, x_dtype)
    x = p.insert(g.DequantizeLinearOp.create([xq, _const(p, sx), _const(p, zx)], axis=1))
    wq = _codes(draw, rng, w_dtype, w_shape)
    n_w = w_shape[w_axis] if per_channel else None
    sw = np.array(draw(st.lists(_SCALES, min_size=n_w or 1, max_size=n_w or 1)), np.float32)
    sw = sw if per_channel else sw.reshape(())
    zw = _zero_point(draw, w_dtype, n_w)
    w = p.insert(
        g.DequantizeLinearOp.create([_const(p, wq), _const(p, sw), _const(p, zw)], axis=w_axis)
    )
    bias_kind = draw(st.sampled_from(["none", "float", "codes"])) if kind != "matmul" else "none"
    bias_value, bias_real = None, np.zeros(())
    if bias_kind == "float":
        b = rng.standard_normal(channels).astype(np.float32)
        bias_value, bias_real = _const(p, b), b.astype(np.float64)
    elif bias_kind == "codes":
        bq = rng.integers(-5000, 5000, channels).astype(np.int32)
        sb = np.array(
            draw(st.lists(_SCALES, min_size=channels, max_size=channels)), np.float32
        ) * np.float32(1e-3)
        bias_value = p.insert(
            g.DequantizeLinearOp.create(
                [_const(p, bq), _const(p, sb), _const(p, np.zeros(channels, np.int32))], axis=0
            )
        )
        bias_real = bq.astype(np.float64) * sb.astype(np.float64)
    xi = xq_values = _codes(draw, rng, x_dtype, x_shape)
    xi = xq_values.astype(np.int64) - int(zx)
    w_shape_b = [1] * len(w_shape)
    if per_channel:
        w_shape_b[w_axis] = -1
    wi = wq.astype(np.int64) - zw.astype(np.int64).reshape(w_shape_b if per_channel else ())
    w_scale = sw.astype(np.float64).reshape(w_shape_b if per_channel else ())
    if kind == "conv":
        product = g.ConvOp.create(
            [x, w, *([bias_value] if bias_value is not None else [])],
            strides=strides,
            pads=pads,
            dilations=dilations,
            group=group,
        )
    elif kind == "gemm":
        product = g.GemmOp.create(
            [x, w, *([bias_value] if bias_value is not None else [])],
            alpha=alpha,
            beta=beta,
            trans_a=False,
            trans_b=trans_b,
        )
    else:
        product = g.MatMulOp.create([x, w])
    y = p.insert(product)
    real = magnitude = np.zeros(tuple(y.type.get_shape()))  # type: ignore[attr-defined]
    if foldable and kind == "conv":
        acc = conv_reference(xi, wi, strides, pads, dilations, group)
        magnitude = conv_reference(
            np.abs(xi * float(sx)), np.abs(wi * w_scale), strides, pads, dilations, group
        )
        multiplier = float(sx) * sw.astype(np.float64).reshape((-1, 1, 1) if per_channel else ())
        bias_term = bias_real.reshape(-1, 1, 1) if bias_kind != "none" else 0.0
        real = acc * multiplier + bias_term if bias_kind != "none" else acc * multiplier
    elif foldable and kind == "gemm":
        wm = wi.T if trans_b else wi
        acc = xi @ wm
        magnitude = np.abs(xi * float(sx)) @ np.abs((wi * w_scale).T if trans_b else wi * w_scale)
        multiplier = alpha * float(sx) * sw.astype(np.float64).reshape(-1 if per_channel else ())
        real = acc * multiplier
        if bias_kind != "none":
            real = real + beta * bias_real
        magnitude = abs(alpha) * magnitude
    elif foldable:
        acc = xi @ wi
        magnitude = np.abs(xi * float(sx)) @ np.abs(wi * w_scale)
        real = acc * (float(sx) * sw.astype(np.float64).reshape(-1 if per_channel else ()))
    depth_k = int(np.prod(w_shape[1:])) if kind == "conv" else x_shape[-1]
    bound = (depth_k + 3) * 2.0**-23 * (magnitude + np.abs(real)) + 1e-30
    quantized = draw(st.integers(0, 2)) > 0
    activation = draw(st.sampled_from(["none", "relu", "clip"]))
    if activation == "relu":
        y = p.insert(g.ReluOp.create([y]))
        real = np.maximum(real, 0.0)
    elif activation == "clip":  # a Relu6-like clip, kept in the epilogue
        lo, hi = draw(st.sampled_from([(0.0, 6.0), (-0.5, 0.25), (None, 0.125)]))
        bounds = {k: v for k, v in (("min", lo), ("max", hi)) if v is not None}
        y = p.insert(g.ClipOp.create([y], **bounds))
        real = np.clip(real, -np.inf if lo is None else np.float32(lo), np.float32(hi))
    if quantized:
        q_dtype = draw(st.sampled_from(CODES))
        sy, zy = np.float32(draw(_SCALES)) * np.float32(4), _zero_point(draw, q_dtype)
        p.insert(g.QuantizeLinearOp.create([y, _const(p, sy), _const(p, zy)], axis=1))
        info = np.iinfo(q_dtype)
        exact = np.clip(np.rint(real / np.float64(sy)) + int(zy), info.min, info.max).astype(
            q_dtype
        )
    else:
        exact = real.astype(np.float32)
    module = p.finish()
    return QdqProduct(module, [xq_values], exact, bound, quantized, foldable)


def _products(module: ModuleOp) -> int:
    return sum(isinstance(op, g.ConvOp | g.GemmOp | g.MatMulOp) for op in module.walk())


def _run(module: ModuleOp, inputs: list[np.ndarray]) -> np.ndarray:
    return mlc.interpret(module, *inputs)[-1]


@covers("graph-fold-qdq", "graph-fold-qdq-product")
@given(case=qdq_products())
def test_fold_qdq_products_compute_the_exact_quantized_result(case: QdqProduct) -> None:
    before = _run(case.module, case.inputs)
    folded = case.module.clone()
    FoldQdqPass().apply(mlc.context(), folded)
    folded.verify()
    note(str(folded))
    assert (_products(folded) == 0) == case.foldable
    after = _run(folded, case.inputs)
    assert after.dtype == before.dtype and after.shape == before.shape
    if case.foldable:
        np.testing.assert_array_equal(after, case.exact)
    if case.quantized:
        diff = np.abs(after.astype(np.int64) - before.astype(np.int64))
        assert diff.max(initial=0) <= 1
    else:
        assert np.all(np.abs(after.astype(np.float64) - before) <= case.bound)


@covers("graph-fold-qdq-product", "convert-tl-to-llvm")
@settings(max_examples=6)
@given(case=qdq_products())
def test_folded_products_run_natively_as_interpreted(case: QdqProduct) -> None:
    folded = case.module.clone()
    FoldQdqPass().apply(mlc.context(), folded)
    want = _run(folded, case.inputs)
    got = mlc.compile(folded)(*case.inputs)
    got = got[-1] if isinstance(got, list | tuple) else got
    if not case.foldable:  # a float product: f32 sums in another order than numpy's
        if case.quantized:
            assert np.abs(got.astype(np.int64) - want.astype(np.int64)).max(initial=0) <= 1
        else:
            np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    elif case.quantized:
        np.testing.assert_array_equal(got, want)
    else:  # LLVM may contract the f64 multiply-add: one f64 rounding, then f32
        np.testing.assert_allclose(got, want, rtol=2e-7, atol=1e-30)


# ------------------------------------------------------------------ relu into quantize

_FLOATS = st.floats(-50, 50, width=32) | st.sampled_from([0.0, -0.0, np.inf, -np.inf, np.nan])


@st.composite
def relu_quantize_programs(
    draw: st.DrawFn, clip: bool | None = None
) -> tuple[ModuleOp, list[np.ndarray]]:
    shape = (draw(st.integers(4, 6)), *draw(st.lists(st.integers(1, 3), max_size=2)))
    dtype = draw(st.sampled_from(CODES))
    info = np.iinfo(dtype)
    p = ProgramBuilder(draw, element_type_from_numpy(np.float32), np.random.default_rng(0))
    x = p.new_arg(shape, element_type_from_numpy(np.float32))
    # mostly the lowest code (the fold's case), sometimes a near miss it must keep
    zero = draw(st.sampled_from([int(info.min)] * 6 + [int(info.min) + 1, 0, int(info.max)]))
    scale = np.float32(draw(_SCALES))
    if not (draw(st.booleans()) if clip is None else clip):
        r = p.insert(g.ReluOp.create([x]))
    else:  # a clip (Relu6): bounds at, inside (near misses) or beyond the codes' range
        low, high = (float(scale) * (int(b) - zero) for b in (info.min, info.max))
        step = float(scale)
        lo = draw(st.sampled_from([low, low + step, low - step, low + step, 0.0, None]))
        hi = draw(st.sampled_from([high, high - step, high + 1.0, high - step, 6.0, None]))
        bounds = {k: v for k, v in (("min", lo), ("max", hi)) if v is not None}
        r = p.insert(g.ClipOp.create([x], **bounds))
    p.insert(
        g.QuantizeLinearOp.create([r, _const(p, scale), _const(p, np.array(zero, dtype))], axis=0)
    )
    data = np.array(
        draw(st.lists(_FLOATS, min_size=int(np.prod(shape)), max_size=int(np.prod(shape)))),
        np.float32,
    )
    # the values a wrong fold changes first: just past either end of the codes' range
    low, high = (float(scale) * (int(b) - zero) for b in (info.min, info.max))
    edges = np.array([high + float(scale), low - float(scale), np.inf, -np.inf], np.float32)
    data[: len(edges)] = edges[: data.size]
    return p.finish(), [data.reshape(shape)]


@covers("graph-fold-relu-into-quantize")
@given(program=relu_quantize_programs())
def test_relu_folds_into_the_lowest_zero_point_exactly(
    program: tuple[ModuleOp, list[np.ndarray]],
) -> None:
    module, inputs = program
    assert_preserves_semantics(
        FoldReluIntoQuantize(), module, inputs=inputs, tolerance=Tolerance(0, 0)
    )


@covers("graph-fold-relu-into-quantize")
@given(program=relu_quantize_programs(clip=True))
def test_a_clip_folds_into_saturation_exactly(
    program: tuple[ModuleOp, list[np.ndarray]],
) -> None:
    """A Relu6-style clip before a quantization goes only where both bounds quantize to
    the end codes or beyond (near misses one step inside either end are kept): the
    values just past either end, and infinities, give the same codes."""
    module, inputs = program
    assert_preserves_semantics(
        FoldReluIntoQuantize(), module, inputs=inputs, tolerance=Tolerance(0, 0)
    )


# ------------------------------------------------------------------ data movement


@st.composite
def movement_programs(draw: st.DrawFn) -> tuple[ModuleOp, list[np.ndarray]]:
    dtype = draw(st.sampled_from(CODES))
    n, c, h, w = (
        draw(st.integers(1, 2)),
        draw(st.integers(1, 3)),
        draw(st.integers(2, 5)),
        draw(st.integers(2, 5)),
    )
    p = ProgramBuilder(draw, element_type_from_numpy(np.float32), np.random.default_rng(0))
    xq = p.new_arg((n, c, h, w), element_type_from_numpy(dtype))
    scale, zero = np.float32(draw(_SCALES)), _zero_point(draw, dtype)
    x = p.insert(g.DequantizeLinearOp.create([xq, _const(p, scale), _const(p, zero)], axis=1))
    kind = draw(st.sampled_from(["reshape", "transpose", "slice", "max_pool"]))
    if kind == "reshape":
        y = p.insert(g.ReshapeOp.to(x, [n, c * h * w]))
    elif kind == "transpose":
        y = p.insert(g.TransposeOp.create([x], perm=list(draw(st.permutations(range(4))))))
    elif kind == "slice":
        y = p.insert(
            g.SliceOp.create([x], starts=[0, 0, 1, 0], ends=[n, c, h, w], steps=[1, 1, 1, 2])
        )
    else:
        pad = draw(st.integers(0, 1))
        y = p.insert(
            g.MaxPoolOp.create(
                [x],
                kernel_shape=[2, 2],
                strides=[1, 2],
                pads=[pad, 0, pad, 1],
                dilations=[1, 1],
                ceil_mode=False,
            )
        )
    # mostly the same parameters (the fold's case), sometimes another scale or zero point
    near_miss = draw(st.integers(0, 4)) == 0
    out_scale = scale * np.float32(2) if near_miss and draw(st.booleans()) else scale
    out_zero = zero if not near_miss or out_scale != scale else np.array(int(zero) // 2, dtype)
    p.insert(g.QuantizeLinearOp.create([y, _const(p, out_scale), _const(p, out_zero)], axis=1))
    data = np.random.default_rng(draw(st.integers(0, 99))).integers(
        np.iinfo(dtype).min, int(np.iinfo(dtype).max) + 1, (n, c, h, w)
    )
    return p.finish(), [data.astype(dtype)]


@covers("graph-fold-qdq-data-movement")
@given(program=movement_programs())
def test_data_movement_on_codes_is_exact(program: tuple[ModuleOp, list[np.ndarray]]) -> None:
    module, inputs = program
    assert_preserves_semantics(
        FoldQdqDataMovement(), module, inputs=inputs, tolerance=Tolerance(0, 0)
    )


@example(None)
@given(st.none())
def test_a_maxpool_between_quantized_convs_runs_on_codes(_: None) -> None:
    """conv -> relu -> Q -> DQ -> max_pool -> Q -> DQ -> conv -> Q: two integer convs and
    an integer max pool, nothing dequantized in between."""
    p = ProgramBuilder(
        lambda s: None, element_type_from_numpy(np.float32), np.random.default_rng(0)
    )
    rng = np.random.default_rng(1)
    xq = p.new_arg((1, 2, 6, 6), element_type_from_numpy(np.uint8))
    s, z = _const(p, np.float32(0.05)), _const(p, np.array(3, np.uint8))

    def conv(codes: SSAValue, c: int) -> SSAValue:
        x = p.insert(g.DequantizeLinearOp.create([codes, s, z], axis=1))
        wq = rng.integers(-127, 128, (2, c, 3, 3)).astype(np.int8)
        w = p.insert(
            g.DequantizeLinearOp.create(
                [_const(p, wq), _const(p, np.float32(0.02)), _const(p, np.array(0, np.int8))],
                axis=1,
            )
        )
        y = p.insert(
            g.ConvOp.create([x, w], strides=[1, 1], pads=[1] * 4, dilations=[1, 1], group=1)
        )
        return p.insert(g.QuantizeLinearOp.create([p.insert(g.ReluOp.create([y])), s, z], axis=1))

    first = conv(xq, 2)
    pooled = p.insert(
        g.MaxPoolOp.create(
            [p.insert(g.DequantizeLinearOp.create([first, s, z], axis=1))],
            kernel_shape=[2, 2],
            strides=[2, 2],
            pads=[0] * 4,
            dilations=[1, 1],
            ceil_mode=False,
        )
    )
    conv(p.insert(g.QuantizeLinearOp.create([pooled, s, z], axis=1)), 2)
    module = p.finish()
    x = rng.integers(0, 256, (1, 2, 6, 6)).astype(np.uint8)
    before = _run(module, [x])
    FoldQdqPass().apply(mlc.context(), module)
    names = [
        op.name
        for op in module.walk()
        if op.name.startswith("graph.") and op.name != "graph.constant"
    ]
    assert "graph.dequantize_linear" not in names and "graph.conv" not in names
    assert names.count("graph.conv_integer") == 2 and "graph.max_pool" in names
    assert np.abs(_run(module, [x]).astype(int) - before.astype(int)).max() <= 1
