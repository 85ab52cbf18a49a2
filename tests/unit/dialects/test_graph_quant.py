"""The integer path: ONNX MatMulInteger, ConvInteger, QuantizeLinear, DequantizeLinear,
QLinearMatMul, QLinearConv -> quant graph ops (reference semantics vs onnxruntime),
interpreter vs native, unsigned buffers at the boundary, and MatMulInteger / ConvInteger
through `vpdpbusd` (skipped where the CPU lacks AVX-512 VNNI) and through AVX2's exact
`vpmaddwd` (skipped where it lacks AVX2)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from onnx import TensorProto as TP
from onnx import helper, numpy_helper
from xdsl.dialects.builtin import TensorType, f32, i8, i32

import mlc
from mlc.dialects.graph import GraphError, quant
from mlc.dialects.graph import elementwise as ew
from mlc.dialects.graph.types import tensor
from mlc.interpreters import interpret
from mlc.parser.onnx import OnnxImportError, import_onnx
from mlc.targets.compiled import InvalidInputError, compile_model, lower_model
from mlc.targets.cpu import host_features

HOST = host_features()
needs_vnni = pytest.mark.skipif(not HOST.avx512vnni, reason="CPU lacks AVX-512 VNNI")
needs_avx2 = pytest.mark.skipif(not HOST.avx2, reason="CPU lacks AVX2")

ONNX_TYPE = {
    np.dtype(np.uint8): TP.UINT8,
    np.dtype(np.int8): TP.INT8,
    np.dtype(np.int16): TP.INT16,
    np.dtype(np.uint16): TP.UINT16,
    np.dtype(np.int32): TP.INT32,
    np.dtype(np.float32): TP.FLOAT,
}


def make_model(
    op_type: str,
    inputs: Sequence[tuple[str, np.ndarray | None]],
    constants: dict[str, np.ndarray] | None = None,
    opset: int = 13,
    **attrs: Any,
) -> tuple[onnx.ModelProto, dict[str, np.ndarray]]:
    """A one-node model; `inputs` in node order (None: omitted), names in `constants`
    become initializers. Returns the model and the feeds of its graph inputs."""
    constants = constants or {}
    names = [n if a is not None else "" for n, a in inputs]
    while names and not names[-1]:
        names.pop()
    feeds = {n: a for n, a in inputs if a is not None and n not in constants}
    graph = helper.make_graph(
        [helper.make_node(op_type, names, ["y"], **attrs)],
        "g",
        [helper.make_tensor_value_info(n, ONNX_TYPE[a.dtype], a.shape) for n, a in feeds.items()],
        [onnx.ValueInfoProto(name="y")],
        [numpy_helper.from_array(a, n) for n, a in constants.items()],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    return model, feeds


def onnxruntime(model: onnx.ModelProto, feeds: dict[str, np.ndarray]) -> np.ndarray:
    return ort.InferenceSession(model.SerializeToString()).run(None, feeds)[0]


def check(model: onnx.ModelProto, feeds: dict[str, np.ndarray], native: bool = False) -> np.ndarray:
    """Interpreter (and optionally native) results equal onnxruntime's bit for bit."""
    expected = onnxruntime(model, feeds)
    (got,) = interpret(import_onnx(model), *feeds.values())
    assert got.dtype == expected.dtype
    np.testing.assert_array_equal(got, expected)
    if native:
        (out,) = compile_model(model)(*feeds.values())
        assert out.dtype == expected.dtype
        np.testing.assert_array_equal(out, expected)
    return expected


def ints(rng: np.random.Generator, shape: Sequence[int], dtype: Any) -> np.ndarray:
    info = np.iinfo(dtype)
    return rng.integers(info.min, int(info.max) + 1, size=tuple(shape), dtype=dtype)


def s8_times_u8(rng: np.random.Generator, shape: Sequence[int]) -> np.ndarray:
    """Int8 values multiplied by uint8 ones inside onnxruntime's integer kernels. Without
    AVX-512 VNNI, onnxruntime's x86 u8 x s8 kernel (`vpmaddubsw`) saturates each pair of
    products to int16 (its "reduce_range" caveat), so full-range operands would compare
    mlc's exact results with saturated ones; there they are drawn from [-64, 63], where no
    pair saturates. `test_matmul_integer_full_range_is_exact` covers the full range."""
    if HOST.avx512vnni:
        return ints(rng, shape, np.int8)
    return rng.integers(-64, 64, size=tuple(shape), dtype=np.int8)


# -- MatMulInteger --------------------------------------------------------------------------


@settings(max_examples=30, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    m=st.integers(1, 5),
    k=st.integers(1, 9),
    n=st.integers(1, 6),
    types=st.sampled_from([(np.uint8, np.int8), (np.uint8, np.uint8), (np.int8, np.int8)]),
    zero_points=st.sampled_from(["none", "scalar", "per_row_col"]),
    batch=st.booleans(),
)
def test_matmul_integer_matches_onnxruntime(
    seed: int, m: int, k: int, n: int, types: Any, zero_points: str, batch: bool
) -> None:
    rng = np.random.default_rng(seed)
    ta, tb = types
    a = ints(rng, (2, m, k) if batch else (m, k), ta)
    b = s8_times_u8(rng, (k, n)) if (ta, tb) == (np.uint8, np.int8) else ints(rng, (k, n), tb)
    za = zb = None
    if zero_points == "scalar":
        za, zb = ints(rng, (), ta), ints(rng, (), tb)
    elif zero_points == "per_row_col" and ta is np.uint8:
        # onnxruntime: a_zero_point per tensor only; b_zero_point per column
        za, zb = ints(rng, (), ta), ints(rng, (n,), tb)
    model, feeds = make_model("MatMulInteger", [("a", a), ("b", b), ("za", za), ("zb", zb)])
    check(model, feeds)


def test_matmul_integer_full_range_is_exact() -> None:
    """Full-range u8 x s8 operands (whose pairs of products overflow int16) against an
    exact int64 oracle, interpreted and native."""
    rng = np.random.default_rng(7)
    a = np.full((3, 16), 255, np.uint8)
    a[1:] = ints(rng, (2, 16), np.uint8)
    b = np.full((16, 8), 127, np.int8)
    b[:, 4:] = ints(rng, (16, 4), np.int8)
    za, zb = np.array(3, np.uint8), np.array(-5, np.int8)
    model, feeds = make_model("MatMulInteger", [("a", a), ("b", b), ("za", za), ("zb", zb)])
    exact = ((a.astype(np.int64) - 3) @ (b.astype(np.int64) + 5)).astype(np.int32)
    (got,) = interpret(import_onnx(model), *feeds.values())
    np.testing.assert_array_equal(got, exact)
    (out,) = compile_model(model)(*feeds.values())
    np.testing.assert_array_equal(out, exact)


@pytest.mark.parametrize("zero_points", [False, True])
@pytest.mark.parametrize("batch", [False, True])
def test_matmul_integer_native(zero_points: bool, batch: bool) -> None:
    rng = np.random.default_rng(1)
    a = ints(rng, (2, 4, 12) if batch else (4, 12), np.uint8)
    b = s8_times_u8(rng, (12, 32))
    za = ints(rng, (), np.uint8) if zero_points else None
    zb = ints(rng, (32,), np.int8) if zero_points else None
    model, feeds = make_model("MatMulInteger", [("a", a), ("b", b), ("za", za), ("zb", zb)])
    check(model, feeds, native=True)


# -- ConvInteger -----------------------------------------------------------------------------


@settings(max_examples=15, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    types=st.sampled_from([(np.uint8, np.uint8), (np.uint8, np.int8)]),
    pads=st.sampled_from([[0, 0, 0, 0], [1, 1, 1, 1], [0, 1, 1, 0]]),
    strides=st.sampled_from([[1, 1], [2, 1]]),
    group=st.sampled_from([1, 2]),
    zero_points=st.booleans(),
)
def test_conv_integer_matches_onnxruntime(
    seed: int, types: Any, pads: list[int], strides: list[int], group: int, zero_points: bool
) -> None:
    rng = np.random.default_rng(seed)
    tx, tw = types
    x = ints(rng, (1, 4, 5, 6), tx)
    w_shape = (4, 4 // group, 3, 2)
    u8_s8 = (np.dtype(tx), np.dtype(tw)) == (np.dtype(np.uint8), np.dtype(np.int8))
    w = s8_times_u8(rng, w_shape) if u8_s8 else ints(rng, w_shape, tw)
    zx = ints(rng, (), tx) if zero_points else None
    zw = ints(rng, (), tw) if zero_points else None
    model, feeds = make_model(
        "ConvInteger",
        [("x", x), ("w", w), ("zx", zx), ("zw", zw)],
        constants={"w": w},
        pads=pads,
        strides=strides,
        group=group,
    )
    check(model, feeds)


def test_conv_integer_native_with_padding_and_zero_points() -> None:
    rng = np.random.default_rng(2)
    x, w = ints(rng, (1, 3, 6, 6), np.uint8), ints(rng, (4, 3, 3, 3), np.uint8)
    zx, zw = np.array(17, np.uint8), np.array(200, np.uint8)
    model, feeds = make_model(
        "ConvInteger", [("x", x), ("w", w), ("zx", zx), ("zw", zw)], pads=[1, 1, 1, 1]
    )
    check(model, feeds, native=True)


# -- QuantizeLinear / DequantizeLinear -------------------------------------------------------


@settings(max_examples=30, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    dtype=st.sampled_from([np.uint8, np.int8, np.int16, np.uint16]),
    per_axis=st.booleans(),
    zero_point=st.booleans(),
)
def test_quantize_linear_matches_onnxruntime(
    seed: int, dtype: Any, per_axis: bool, zero_point: bool
) -> None:
    rng = np.random.default_rng(seed)
    x = (rng.normal(size=(2, 3, 4)) * 300).astype(np.float32)
    x[0, 0, :] = [0.5, 1.5, -2.5, 2.5]  # ties round to even
    shape = (3,) if per_axis else ()
    scale = rng.uniform(0.01, 3.0, size=shape).astype(np.float32)
    zp = ints(rng, shape, dtype) if zero_point or dtype is not np.uint8 else None
    model, feeds = make_model(
        "QuantizeLinear", [("x", x), ("s", scale), ("z", zp)], opset=21, axis=1
    )
    check(model, feeds)


@settings(max_examples=30, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    dtype=st.sampled_from([np.uint8, np.int8, np.int16, np.uint16, np.int32]),
    per_axis=st.booleans(),
)
def test_dequantize_linear_matches_onnxruntime(seed: int, dtype: Any, per_axis: bool) -> None:
    rng = np.random.default_rng(seed)
    x = (
        ints(rng, (2, 3, 4), dtype)
        if dtype is not np.int32
        else rng.integers(-9999, 9999, (2, 3, 4)).astype(np.int32)
    )
    shape = (4,) if per_axis else ()
    scale = rng.uniform(0.01, 3.0, size=shape).astype(np.float32)
    zp = ints(rng, shape, dtype) if dtype is not np.int32 else None
    model, feeds = make_model(
        "DequantizeLinear", [("x", x), ("s", scale), ("z", zp)], opset=21, axis=-1
    )
    check(model, feeds)


@pytest.mark.parametrize("dtype", [np.uint8, np.int8])
def test_quantize_dequantize_native(dtype: Any) -> None:
    rng = np.random.default_rng(3)
    x = (rng.normal(size=(4, 8)) * 100).astype(np.float32)
    x[0, :4] = [0.5, 1.5, -2.5, 1e9]
    scale, zp = np.array([0.7] * 8, np.float32), ints(rng, (8,), dtype)
    model, feeds = make_model("QuantizeLinear", [("x", x), ("s", scale), ("z", zp)], axis=1)
    q = check(model, feeds, native=True)
    model, feeds = make_model("DequantizeLinear", [("x", q), ("s", scale), ("z", zp)], axis=1)
    check(model, feeds, native=True)


# -- QLinearMatMul / QLinearConv (decomposed) ------------------------------------------------


def _qlinear_scales(rng: np.random.Generator, dtype: Any) -> list[np.ndarray]:
    return [
        np.array([rng.uniform(0.001, 0.05)], np.float32),
        ints(rng, (1,), dtype),
    ]


@settings(max_examples=20, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    dtype=st.sampled_from([np.uint8, np.int8]),
    batch=st.booleans(),
)
def test_qlinear_matmul_matches_onnxruntime(seed: int, dtype: Any, batch: bool) -> None:
    rng = np.random.default_rng(seed)
    a = ints(rng, (2, 3, 8) if batch else (3, 8), dtype)
    b = ints(rng, (8, 5), dtype)
    sa, za = _qlinear_scales(rng, dtype)
    sb, zb = _qlinear_scales(rng, dtype)
    sy, zy = _qlinear_scales(rng, dtype)
    sy *= 20
    names = [("a", a), ("sa", sa), ("za", za), ("b", b), ("sb", sb), ("zb", zb)]
    model, feeds = make_model("QLinearMatMul", [*names, ("sy", sy), ("zy", zy)])
    check(model, feeds)


def test_qlinear_matmul_native_reaches_vnni_form() -> None:
    rng = np.random.default_rng(4)
    a, b = ints(rng, (4, 16), np.uint8), s8_times_u8(rng, (16, 64))
    consts = {
        "sa": np.array([0.02], np.float32),
        "za": np.array([100], np.uint8),
        "b": b,
        "sb": np.array([0.01], np.float32),
        "zb": np.array([0], np.int8),
        "sy": np.array([0.05], np.float32),
        "zy": np.array([120], np.uint8),
    }
    inputs = [("a", a), *((n, consts[n]) for n in ("sa", "za", "b", "sb", "zb", "sy", "zy"))]
    model, feeds = make_model("QLinearMatMul", inputs, constants=consts)
    check(model, feeds, native=True)
    if HOST.avx512vnni:
        assert "vpdpbusd" in compile_model(model).llvm_ir


@settings(max_examples=10, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), per_channel=st.booleans(), bias=st.booleans())
def test_qlinear_conv_matches_onnxruntime(seed: int, per_channel: bool, bias: bool) -> None:
    rng = np.random.default_rng(seed)
    x, w = ints(rng, (1, 3, 5, 5), np.uint8), s8_times_u8(rng, (4, 3, 3, 3))
    sx, zx = _qlinear_scales(rng, np.uint8)
    sw = rng.uniform(0.001, 0.05, size=(4,) if per_channel else (1,)).astype(np.float32)
    zw = np.zeros(sw.shape, np.int8)  # onnxruntime: int8 weights are symmetric
    sy, zy = _qlinear_scales(rng, np.uint8)
    sy *= 10
    b = rng.integers(-500, 500, (4,)).astype(np.int32) if bias else None
    names = [("x", x), ("sx", sx), ("zx", zx), ("w", w), ("sw", sw), ("zw", zw)]
    model, feeds = make_model(
        "QLinearConv",
        [*names, ("sy", sy), ("zy", zy), ("b", b)],
        constants={"w": w, "sw": sw, "zw": zw},
        pads=[1, 1, 1, 1],
    )
    check(model, feeds)


def test_qlinear_conv_native() -> None:
    rng = np.random.default_rng(5)
    x, w = ints(rng, (1, 3, 5, 5), np.uint8), ints(rng, (4, 3, 3, 3), np.uint8)
    consts = {
        "sx": np.array(0.02, np.float32),
        "zx": np.array(10, np.uint8),
        "w": w,
        "sw": rng.uniform(0.001, 0.05, (4,)).astype(np.float32),
        "zw": np.array([128] * 4, np.uint8),
        "sy": np.array(0.3, np.float32),
        "zy": np.array(100, np.uint8),
        "b": rng.integers(-500, 500, (4,)).astype(np.int32),
    }
    order = ("sx", "zx", "w", "sw", "zw", "sy", "zy", "b")
    model, feeds = make_model(
        "QLinearConv", [("x", x), *((n, consts[n]) for n in order)], constants=consts
    )
    check(model, feeds, native=True)


# -- errors ---------------------------------------------------------------------------------


def _import_error(model: onnx.ModelProto) -> str:
    with pytest.raises(OnnxImportError) as info:
        import_onnx(model)
    return str(info.value)


def test_importer_names_op_and_reason() -> None:
    x = np.zeros((2, 4), np.float32)
    model, _ = make_model(
        "QuantizeLinear",
        [("x", x), ("s", np.ones((2, 2), np.float32)), ("z", np.zeros((2, 2), np.uint8))],
        opset=21,
        block_size=2,
    )
    message = _import_error(model)
    assert "QuantizeLinear" in message and "block_size=2" in message
    model, _ = make_model(
        "MatMulInteger", [("a", np.zeros((4,), np.uint8)), ("b", np.zeros((4, 2), np.int8))]
    )
    assert "MatMulInteger with a 1-D operand is not supported" in _import_error(model)
    model, _ = make_model(
        "MatMulInteger", [("a", np.zeros((2, 4), np.int16)), ("b", np.zeros((4, 2), np.int8))]
    )
    assert "MatMulInteger with A of type int16 is not supported" in _import_error(model)
    a = np.zeros((2, 4), np.uint8)
    inputs = [
        ("a", a),
        ("sa", np.ones((2,), np.float32)),
        ("za", np.zeros((2,), np.uint8)),
        ("b", np.zeros((4, 3), np.uint8)),
        ("sb", np.ones((), np.float32)),
        ("zb", np.zeros((), np.uint8)),
        ("sy", np.ones((), np.float32)),
        ("zy", np.zeros((), np.uint8)),
    ]
    model, _ = make_model("QLinearMatMul", inputs)
    assert "QLinearMatMul with a per-axis a_scale" in _import_error(model)


def test_verifier_rejects_bad_types_and_shapes() -> None:
    from xdsl.ir import Block

    a, b, za, zb_bad = Block(
        arg_types=[tensor((2, 4), f32), tensor((4, 3), i8), tensor((), f32), tensor((5,), i8)]
    ).args
    with pytest.raises(GraphError, match="A must have element type"):
        quant.MatMulIntegerOp.create([a, b, za, zb_bad])
    (x,) = Block(arg_types=[tensor((2, 4), i8)]).args
    b2, zb_ok = Block(arg_types=[tensor((4, 3), i8), tensor((), i8)]).args
    with pytest.raises(GraphError, match="b_zero_point must have shape"):
        quant.MatMulIntegerOp.create([x, b2, zb_ok, zb_bad])
    op = quant.MatMulIntegerOp.create([x, b2, zb_ok, zb_ok])
    assert op.output.type == TensorType(i32, [2, 3])


# -- the boundary: ui8 tensors are i8 buffers, callers see uint8 ------------------------------


def test_uint8_inputs_and_outputs_natively() -> None:
    x = np.array([[1, 2, 200, 255]], np.uint8)
    model, feeds = make_model("Add", [("x", x), ("y", x)])
    compiled = compile_model(model)
    assert [s.dtype for s in compiled.inputs] == [np.dtype(np.uint8)] * 2
    (out,) = compiled(x, x)
    assert out.dtype == np.uint8
    np.testing.assert_array_equal(out, x + x)
    with pytest.raises(InvalidInputError, match="dtype uint8"):
        compiled(x.astype(np.int8), x)


def test_uint8_constants_keep_their_bits() -> None:
    x = np.array([3, 4, 5], np.uint8)
    c = np.array([250, 128, 1], np.uint8)
    model, feeds = make_model("Max", [("x", x), ("c", c)], constants={"c": c})
    (out,) = compile_model(model)(x)
    np.testing.assert_array_equal(out, np.maximum(x, c))


# -- VNNI ------------------------------------------------------------------------------------


def _matmul_integer_model(m: int, k: int, n: int, zero_points: bool) -> tuple[Any, Any]:
    rng = np.random.default_rng(6)
    a, b = ints(rng, (m, k), np.uint8), ints(rng, (k, n), np.int8)
    consts: dict[str, np.ndarray] = {"b": b}
    inputs: list[tuple[str, np.ndarray | None]] = [("a", a), ("b", b)]
    if zero_points:
        consts |= {"za": np.array(7, np.uint8), "zb": np.array(-3, np.int8)}
        inputs += [("za", consts["za"]), ("zb", consts["zb"])]
    return make_model("MatMulInteger", inputs, constants=consts)


def test_plain_matmul_integer_kernel_is_the_vnni_form() -> None:
    from mlc.dialects.tl import KernelOp
    from mlc.lowering.graph_to_tl import ConvertGraphToTlPass
    from mlc.registry import make_context
    from mlc.targets.x86 import _is_u8s8_matmul

    for zero_points in (False, True):
        model, _ = _matmul_integer_model(4, 8, 16, zero_points)
        module = import_onnx(model)
        ConvertGraphToTlPass().apply(make_context(), module)
        kernels = [op for op in module.walk() if isinstance(op, KernelOp)]
        assert sum(_is_u8s8_matmul(k) for k in kernels) == 1


@needs_vnni
@pytest.mark.parametrize("zero_points", [False, True])
def test_matmul_integer_compiles_to_vpdpbusd(zero_points: bool) -> None:
    from mlc.lowering.graph_to_tl import ConvertGraphToTlPass
    from mlc.registry import make_context
    from mlc.targets.x86 import VnniGemmSchedule
    from mlc.transforms.loops.default_schedule import apply_default_schedules

    model, feeds = _matmul_integer_model(8, 32, 64, zero_points)
    module = import_onnx(model)
    ConvertGraphToTlPass().apply(make_context(), module)
    apply_default_schedules(module, VnniGemmSchedule())
    assert any(op.name == "hw.x86.vpdpbusd" for op in module.walk())
    a = feeds["a"]
    b = numpy_helper.to_array(model.graph.initializer[0])
    za, zb = (7, -3) if zero_points else (0, 0)
    expected = (a.astype(np.int32) - za) @ (b.astype(np.int32) - zb)
    for schedule in (VnniGemmSchedule(), "default"):  # the default uses VNNI on this host
        compiled = mlc.compile(model, schedule=schedule)
        assert "vpdpbusd" in compiled.llvm_ir
        np.testing.assert_array_equal(compiled(a)[0], expected)
    assert "vpdpbusd" in lower_model(model).llvm_ir_unoptimized


def _avx2_schedules() -> list[Any]:
    """`Avx2Int8GemmSchedule` itself and, on an AVX2 host without VNNI, the default
    (which puts it in front of the `CpuDefaultSchedule` there)."""
    from mlc.targets.x86 import Avx2Int8GemmSchedule

    return [Avx2Int8GemmSchedule()] + ([] if HOST.avx512vnni else ["default"])


@needs_avx2
@pytest.mark.parametrize("zero_points", [False, True])
def test_matmul_integer_compiles_to_vpmaddwd(zero_points: bool) -> None:
    """MatMulInteger (u8 255 / s8 -128 rows and columns, zero points 7 / -3 or none)
    through `vpmaddwd` equals the interpreter bit for bit."""
    model, feeds = _matmul_integer_model(32, 40, 48, zero_points)
    a = feeds["a"]
    a[0, :] = 255
    b = numpy_helper.to_array(model.graph.initializer[0]).copy()
    b[:, 0] = -128
    model.graph.initializer[0].CopyFrom(numpy_helper.from_array(b, "b"))
    (expected,) = interpret(import_onnx(model), a)
    za, zb = (7, -3) if zero_points else (0, 0)
    exact = (a.astype(np.int64) - za) @ (b.astype(np.int64) - zb)
    np.testing.assert_array_equal(expected, exact)
    for schedule in _avx2_schedules():
        compiled = mlc.compile(model, schedule=schedule)
        assert "llvm.x86.avx2.pmadd.wd" in compiled.llvm_ir
        np.testing.assert_array_equal(compiled(a)[0], expected)


@needs_avx2
def test_conv_integer_compiles_to_vpmaddwd() -> None:
    """ConvInteger (im2col form) with zero points zx = 131, per-channel zw, extremes in
    X and W, through `vpmaddwd`: the interpreter's result bit for bit."""
    rng = np.random.default_rng(10)
    x, w = ints(rng, (1, 16, 8, 8), np.uint8), ints(rng, (32, 16, 3, 3), np.int8)
    x[0, 0] = 255
    w[0] = -128
    zx, zw = np.array(131, np.uint8), ints(rng, (32,), np.int8)
    model, feeds = make_model(
        "ConvInteger",
        [("x", x), ("w", w), ("zx", zx), ("zw", zw)],
        constants={"w": w, "zx": zx, "zw": zw},
        pads=[1, 1, 1, 1],
    )
    (expected,) = interpret(import_onnx(model), x)
    for schedule in _avx2_schedules():
        compiled = mlc.compile(model, schedule=schedule)
        assert "llvm.x86.avx2.pmadd.wd" in compiled.llvm_ir
        np.testing.assert_array_equal(compiled(x)[0], expected)


def test_conv_integer_direct_form_compiles(monkeypatch: pytest.MonkeyPatch) -> None:
    """The one-kernel form (im2col off) with a padded scalar zero point compiles and is
    exact: its rank-0 pad copy has no loop to vectorize (it used to raise IndexError in
    `channel_block_schedule._vectorize_rows`)."""
    from mlc.texpr.library import quant as quant_library

    monkeypatch.setattr(quant_library, "IM2COL_MAX_BYTES", 0)
    rng = np.random.default_rng(11)
    x, w = ints(rng, (1, 16, 8, 8), np.uint8), ints(rng, (16, 16, 3, 3), np.int8)
    zx = np.array(128, np.uint8)
    model, _ = make_model(
        "ConvInteger",
        [("x", x), ("w", w), ("zx", zx)],
        constants={"w": w, "zx": zx},
        pads=[1, 1, 1, 1],
    )
    (expected,) = interpret(import_onnx(model), x)
    np.testing.assert_array_equal(mlc.compile(model, cache=False)(x)[0], expected)


def test_dequantize_zero_point_must_match_input_type() -> None:
    from xdsl.ir import Block

    x, s, z = Block(arg_types=[tensor((2,), i8), tensor((), f32), tensor((), i32)]).args
    with pytest.raises(GraphError, match="zero point must have the input's element type"):
        quant.DequantizeLinearOp.create([x, s, z], axis=1)
    assert ew.ConstantOp  # the importer's zero points are graph.constants


# -- ConvInteger: im2col + VNNI ---------------------------------------------------------------


def _conv_integer_op(model: onnx.ModelProto) -> quant.ConvIntegerOp:
    (op,) = [o for o in import_onnx(model).walk() if isinstance(o, quant.ConvIntegerOp)]
    return op


def test_zero_points_are_seen_through_lowered_constants() -> None:
    """convert-graph-to-tl lowers constants first: the plain form still sees za = zb = 0."""
    from mlc.dialects.tl import KernelOp
    from mlc.lowering.graph_to_tl import ConvertGraphToTlPass
    from mlc.registry import make_context

    for zero_points, kernels in ((False, 1), (True, 4)):
        model, _ = _matmul_integer_model(4, 8, 16, zero_points)
        module = import_onnx(model)
        ConvertGraphToTlPass().apply(make_context(), module)
        assert sum(isinstance(op, KernelOp) for op in module.walk()) == kernels


def test_conv_integer_forms() -> None:
    """u8 x i8 group-1 2-D convolutions take the im2col form, unless padding needs a zero
    point that is not a constant; everything else keeps the direct form."""
    from mlc.texpr.library.quant import _conv_integer_im2col

    rng = np.random.default_rng(8)
    x = ints(rng, (1, 4, 5, 5), np.uint8)
    zx = np.array(9, np.uint8)

    def form(w: np.ndarray, constants: dict[str, np.ndarray], **attrs: Any) -> bool:
        model, _ = make_model(
            "ConvInteger", [("x", x), ("w", w), ("zx", zx)], constants=constants, **attrs
        )
        return _conv_integer_im2col(_conv_integer_op(model)) is not None

    w8, wu8 = ints(rng, (4, 4, 3, 3), np.int8), ints(rng, (4, 4, 3, 3), np.uint8)
    assert form(w8, {"w": w8, "zx": zx}, pads=[1, 1, 1, 1])
    assert form(w8, {"w": w8}, pads=[0, 0, 0, 0])  # zx a graph input, no padding
    assert not form(w8, {"w": w8}, pads=[1, 1, 1, 1])  # zx a graph input, padding
    assert not form(wu8, {"w": wu8, "zx": zx})  # u8 weights: not the VNNI form
    w_grouped = ints(rng, (4, 2, 3, 3), np.int8)
    assert not form(w_grouped, {"w": w_grouped, "zx": zx}, group=2)


@settings(max_examples=8, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    channels=st.sampled_from([3, 16]),
    batch=st.sampled_from([1, 2]),
    pads=st.sampled_from([[0, 0, 0, 0], [1, 1, 1, 1], [2, 0, 1, 1]]),
    strides=st.sampled_from([[1, 1], [2, 1]]),
    dilations=st.sampled_from([[1, 1], [1, 2]]),
    zx=st.sampled_from([None, 0, 131]),
    zw=st.sampled_from(["none", "tensor", "channel"]),
)
def test_conv_integer_im2col_native_matches_reference(
    seed: int,
    channels: int,
    batch: int,
    pads: list[int],
    strides: list[int],
    dilations: list[int],
    zx: int | None,
    zw: str,
) -> None:
    """The im2col form (patches, VNNI product, zero-point corrections, transpose back)
    compiled natively equals the graph reference bit for bit."""
    from mlc.texpr.library.quant import _conv_integer_im2col

    rng = np.random.default_rng(seed)
    x = ints(rng, (batch, channels, 7, 6), np.uint8)
    w = ints(rng, (32, channels, 3, 2), np.int8)
    consts: dict[str, np.ndarray] = {"w": w}
    if zx is not None:
        consts["zx"] = np.array(zx, np.uint8)
    if zw == "tensor":
        consts["zw"] = np.array(-5, np.int8)
    elif zw == "channel":
        consts["zw"] = ints(rng, (32,), np.int8)
    inputs = [("x", x), ("w", w), ("zx", consts.get("zx")), ("zw", consts.get("zw"))]
    attrs = {"pads": pads, "strides": strides, "dilations": dilations}
    model, feeds = make_model("ConvInteger", inputs, constants=consts, **attrs)
    assert _conv_integer_im2col(_conv_integer_op(model)) is not None
    (expected,) = interpret(import_onnx(model), x)
    (got,) = compile_model(model)(x)
    np.testing.assert_array_equal(got, expected)


@needs_vnni
def test_conv_integer_compiles_to_vpdpbusd() -> None:
    rng = np.random.default_rng(9)
    x, w = ints(rng, (1, 16, 8, 8), np.uint8), ints(rng, (64, 16, 3, 3), np.int8)
    zx = np.array(128, np.uint8)
    model, feeds = make_model(
        "ConvInteger",
        [("x", x), ("w", w), ("zx", zx)],
        constants={"w": w, "zx": zx},
        pads=[1, 1, 1, 1],
    )
    compiled = compile_model(model)
    assert "vpdpbusd" in compiled.llvm_ir
    np.testing.assert_array_equal(compiled(x)[0], onnxruntime(model, feeds))
