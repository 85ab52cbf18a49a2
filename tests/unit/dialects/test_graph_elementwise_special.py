"""Unary math, activations, IsInf / IsNaN, bitwise ops, BitShift and Mod (issue #18):
import + interpret against onnx.reference on special values (NaN, +-inf, -0.0, negative
and extreme integers, shift amounts that are negative or >= the bit width), and the same
models compiled natively (`mlc.compile`) against the interpreter: vector lanes and a
tail (37 elements), exact where the op is exact (signs of zero included)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import onnx
import pytest
from onnx import helper
from onnx.reference import ReferenceEvaluator

from mlc.interpreters import interpret
from mlc.parser.onnx import OnnxImportError, import_onnx
from mlc.targets.compiled import compile_model
from mlc.testing.onnx_models import onnx_dtype, single_node_model

FLOAT_SPECIAL = [np.nan, np.inf, -np.inf, 0.0, -0.0, 1e-30, -1e-8, 0.25, -0.5, 0.999]
FLOAT_SPECIAL += [1.0, -1.0, 1.5, -3.0, 10.0, 30.0, -100.0, 1e30, -7.25, 2.5]

#: (ONNX op, attributes, opset) of the float unary ops
FLOAT_UNARY: list[tuple[str, dict[str, Any], int]] = [
    ("Tan", {}, 22),
    ("Asin", {}, 22),
    ("Acos", {}, 22),
    ("Atan", {}, 22),
    ("Sinh", {}, 22),
    ("Cosh", {}, 22),
    ("Asinh", {}, 22),
    ("Acosh", {}, 22),
    ("Atanh", {}, 22),
    ("Cos", {}, 22),
    ("Ceil", {}, 22),
    ("Mish", {}, 22),
    ("Celu", {}, 22),
    ("Celu", {"alpha": 0.5}, 22),
    ("ThresholdedRelu", {}, 22),
    ("ThresholdedRelu", {"alpha": -0.5}, 22),
    ("Swish", {}, 24),
    ("Swish", {"alpha": 1.702}, 24),
    ("Shrink", {}, 9),
    ("Shrink", {"bias": 1.5, "lambd": 1.0}, 9),
    ("IsNaN", {}, 20),
    ("IsInf", {}, 20),
    ("IsInf", {"detect_negative": 0}, 20),
    ("IsInf", {"detect_positive": 0}, 20),
    ("IsInf", {"detect_negative": 0, "detect_positive": 0}, 20),
]
#: results that are exact (no libm function involved): compared bit for bit natively
EXACT = {"Ceil", "ThresholdedRelu", "Shrink", "IsNaN", "IsInf"}

INT_TYPES = [np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint16, np.uint32, np.uint64]


def _ids(case: tuple[str, dict[str, Any], int]) -> str:
    op, attrs, _ = case
    return op + "".join(f"-{k}={v}" for k, v in attrs.items())


def reference(model: onnx.ModelProto, inputs: Mapping[str, np.ndarray]) -> list[np.ndarray]:
    with np.errstate(all="ignore"):
        return [np.asarray(r) for r in ReferenceEvaluator(model).run(None, dict(inputs))]


def assert_same(
    got: Sequence[np.ndarray], want: Sequence[np.ndarray], rtol: float, exact: bool
) -> None:
    """Same dtypes and NaNs; floats within `rtol` (exact: equal, signs of zero too)."""
    assert len(got) == len(want)
    for i, (g, w) in enumerate(zip(got, want, strict=True)):
        g, w = np.asarray(g), np.asarray(w)
        assert g.dtype == w.dtype and g.shape == w.shape, (i, g.dtype, w.dtype)
        if w.dtype.kind != "f":
            np.testing.assert_array_equal(g, w, err_msg=f"output #{i}")
            continue
        np.testing.assert_array_equal(np.isnan(g), np.isnan(w), err_msg=f"NaNs of #{i}")
        if exact:
            np.testing.assert_array_equal(g, w, err_msg=f"output #{i}")
            np.testing.assert_array_equal(np.signbit(g), np.signbit(w), err_msg=f"zeros #{i}")
        else:
            np.testing.assert_allclose(g, w, rtol=rtol, atol=rtol * 1e-2, err_msg=f"#{i}")


def _rtol(dtype: type) -> float:
    return {np.float16: 2e-3, np.float32: 1e-5, np.float64: 1e-12}[dtype]


def multi_node_model(
    nodes: Sequence[tuple[str, Sequence[str], Mapping[str, Any]]],
    inputs: Mapping[str, np.ndarray],
    opset: int,
) -> onnx.ModelProto:
    """One node per entry (op, input names, attributes), each output a graph output."""
    made = [
        helper.make_node(op, list(ins), [f"out{k}"], **dict(attrs))
        for k, (op, ins, attrs) in enumerate(nodes)
    ]
    graph = helper.make_graph(
        made,
        "ops",
        [helper.make_tensor_value_info(n, onnx_dtype(a.dtype), a.shape) for n, a in inputs.items()],
        [
            helper.make_tensor_value_info(f"out{k}", onnx.TensorProto.UNDEFINED, None)
            for k in range(len(made))
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = min(model.ir_version, 10)
    return onnx.shape_inference.infer_shapes(model)


def native_matches_interpreter(
    model: onnx.ModelProto, inputs: Mapping[str, np.ndarray], rtol: float, exact: Sequence[bool]
) -> None:
    ordered = [inputs[i.name] for i in model.graph.input]
    want = interpret(import_onnx(model), *ordered)
    with np.errstate(all="ignore"):
        got = compile_model(import_onnx(model))(*ordered)
    assert len(got) == len(want) == len(exact)
    for g, w, e in zip(got, want, exact, strict=True):
        assert_same([g], [w], rtol, e)


# -- float unary ops ---------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.float16])
@pytest.mark.parametrize("case", FLOAT_UNARY, ids=_ids)
def test_float_unary_ops_match_onnx_reference(
    case: tuple[str, dict[str, Any], int], dtype: type
) -> None:
    op, attrs, opset = case
    with np.errstate(over="ignore"):  # 1e30 is inf in f16
        x = np.array(FLOAT_SPECIAL, dtype)
    model = single_node_model(op, {"x": x}, attrs, opset=opset)
    want = reference(model, {"x": x})
    with np.errstate(all="ignore"):
        got = interpret(import_onnx(model), x)
    assert_same(got, want, _rtol(dtype), exact=op in EXACT)


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.float16])
def test_float_unary_ops_natively(dtype: type) -> None:
    """All of them in one model, on 37 elements (vector lanes and a tail)."""
    with np.errstate(over="ignore"):
        x = np.resize(np.array(FLOAT_SPECIAL, dtype), 37)
    model = multi_node_model([(op, ["x"], attrs) for op, attrs, _ in FLOAT_UNARY], {"x": x}, 24)
    exact = [op in EXACT for op, _, _ in FLOAT_UNARY]
    native_matches_interpreter(model, {"x": x}, 4 * _rtol(dtype), exact)


def test_asinh_and_atanh_keep_precision_near_zero() -> None:
    x = np.array([1e-30, -1e-20, 1e-8, -3e-5, 1e-3], np.float32)
    for op, fn in (("Asinh", np.arcsinh), ("Atanh", np.arctanh), ("Sinh", np.sinh)):
        model = single_node_model(op, {"x": x}, opset=22)
        (want,) = [fn(x.astype(np.float64)).astype(np.float32)]
        np.testing.assert_allclose(interpret(import_onnx(model), x)[0], want, rtol=1e-6)
        np.testing.assert_allclose(compile_model(import_onnx(model))(x)[0], want, rtol=1e-6)


def test_shrink_of_integers_computes_in_float() -> None:
    x = np.array([-7, -2, -1, 0, 1, 2, 7, 127, -128], np.int8)
    for attrs in ({"bias": 1.5, "lambd": 1.0}, {"bias": -2.0, "lambd": 0.5}, {}):
        model = single_node_model("Shrink", {"x": x}, attrs, opset=9)
        want = reference(model, {"x": x})
        assert_same(interpret(import_onnx(model), x), want, 0, exact=True)
        assert_same(compile_model(import_onnx(model))(x), want, 0, exact=True)


def test_celu_with_alpha_zero_is_refused() -> None:
    x = np.ones(3, np.float32)
    with pytest.raises(OnnxImportError, match="alpha=0"):
        import_onnx(single_node_model("Celu", {"x": x}, {"alpha": 0.0}, opset=12))


# -- bitwise ops and shifts --------------------------------------------------------------


def _int_values(dtype: type, n: int, seed: int) -> np.ndarray:
    info = np.iinfo(dtype)
    corners = [0, 1, int(info.max), int(info.min), int(info.max) - 1, 2, 3, 96]
    if info.min < 0:
        corners += [-1, -2, -96, int(info.min) + 1]
    rng = np.random.default_rng(seed)
    random = rng.integers(info.min, info.max, n, dtype=dtype, endpoint=True)
    return np.concatenate([np.array(corners, dtype), random])[:n]


def _shift_amounts(dtype: type, n: int, seed: int) -> np.ndarray:
    bits = np.iinfo(dtype).bits
    amounts = [0, 1, bits - 1, bits, bits + 1, 2 * bits, 3, bits // 2]
    if np.iinfo(dtype).min < 0:
        amounts += [-1, -bits, int(np.iinfo(dtype).min)]
    else:
        amounts += [int(np.iinfo(dtype).max)]
    rng = np.random.default_rng(seed)
    extra = rng.integers(0, bits + 3, n).astype(dtype)
    return np.concatenate([np.array(amounts, dtype), extra])[:n]


@pytest.mark.parametrize("dtype", INT_TYPES, ids=lambda t: np.dtype(t).name)
def test_bitwise_ops_and_shifts_match_onnx_reference(dtype: type) -> None:
    x = _int_values(dtype, 37, 1)
    y = _int_values(dtype, 37, 2)
    s = _shift_amounts(dtype, 37, 3)
    nodes: list[tuple[str, Sequence[str], Mapping[str, Any]]] = [
        ("BitwiseAnd", ["x", "y"], {}),
        ("BitwiseOr", ["x", "y"], {}),
        ("BitwiseXor", ["x", "y"], {}),
        ("BitwiseNot", ["x"], {}),
        ("BitShift", ["x", "s"], {"direction": "LEFT"}),
        ("BitShift", ["x", "s"], {"direction": "RIGHT"}),
    ]
    inputs = {"x": x, "y": y, "s": s}
    model = multi_node_model(nodes, inputs, 28)
    want = reference(model, inputs)
    assert_same(interpret(import_onnx(model), x, y, s), want, 0, exact=True)
    assert_same(compile_model(import_onnx(model))(x, y, s), want, 0, exact=True)


def test_bitwise_ops_broadcast() -> None:
    x = np.arange(-12, 12, dtype=np.int32).reshape(2, 3, 4)
    y = np.array([1, -2, 0x55, -0x56], np.int32)
    s = np.array([[0], [31], [33]], np.uint32)
    for op, inputs in (("BitwiseXor", {"x": x, "y": y}), ("BitShift", {"x": x, "s": s})):
        if op == "BitShift":
            inputs = {"x": np.abs(x).astype(np.uint32)[0], "s": s}
        attrs = {"direction": "RIGHT"} if op == "BitShift" else {}
        model = single_node_model(op, inputs, attrs, opset=18)
        want = reference(model, inputs)
        assert_same(interpret(import_onnx(model), *inputs.values()), want, 0, exact=True)
        assert_same(compile_model(import_onnx(model))(*inputs.values()), want, 0, exact=True)


def test_bitwise_ops_refuse_floats_and_bad_directions() -> None:
    x = np.ones(3, np.float32)
    with pytest.raises(OnnxImportError, match="integer"):
        import_onnx(single_node_model("BitwiseAnd", {"x": x, "y": x}, opset=18))
    u = np.ones(3, np.uint8)
    with pytest.raises(OnnxImportError):
        import_onnx(single_node_model("BitShift", {"x": u, "y": u}, {"direction": "UP"}))


# -- Mod ------------------------------------------------------------------------------------

#: the edge cases of onnx's Mod tests and more: signed zeros, infinities, NaN, zero divisors
MOD_X = [0.0, -0.0, 0.0, -0.0, -3.0, 3.0, -1.0, 1.0, np.inf, -np.inf, 1.0, 1.0, np.nan, 1.0]
MOD_Y = [-2.0, 2.0, 2.0, -2.0, np.inf, np.inf, -np.inf, -np.inf, 2.0, 2.0, 0.0, -0.0, 2.0, np.nan]
MOD_X += [-4.3, 7.2, 5.0, 4.3, -7.2, 8.0, 1e30, -1e30, 6.0, -6.0, 5.5, -5.5, 3e-30, 7.0]
MOD_Y += [2.1, -3.4, 8.0, -2.1, 3.4, 5.0, 3.1, 3.1, -3.0, 3.0, 0.5, -1e-3, 1e-30, -np.inf]


@pytest.mark.parametrize("fmod", [0, 1])
@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.float16])
def test_float_mod_matches_onnx_reference_exactly(fmod: int, dtype: type) -> None:
    """fmod=0: numpy's mod (the divisor's sign, zeros too); fmod=1: C's fmod, exact
    natively (frem), where x - trunc(x / y) * y is not (1e30 % 3.1, 1 % inf)."""
    with np.errstate(over="ignore"):
        x = np.resize(np.array(MOD_X, dtype), 37)
        y = np.resize(np.array(MOD_Y, dtype), 37)
    model = single_node_model("Mod", {"x": x, "y": y}, {"fmod": fmod}, opset=13)
    want = reference(model, {"x": x, "y": y})
    with np.errstate(all="ignore"):
        assert_same(interpret(import_onnx(model), x, y), want, 0, exact=True)
        assert_same(compile_model(import_onnx(model))(x, y), want, 0, exact=True)


@pytest.mark.parametrize("fmod", [0, 1])
@pytest.mark.parametrize("dtype", INT_TYPES, ids=lambda t: np.dtype(t).name)
def test_integer_mod_matches_onnx_reference(fmod: int, dtype: type) -> None:
    """fmod=0 takes the divisor's sign, fmod=1 the dividend's (C's %); the type's minimum
    divided by -1 included (no trap)."""
    x = _int_values(dtype, 37, 4)
    y = _int_values(dtype, 37, 5)
    y = np.where(y == 0, 7, y).astype(dtype)
    model = single_node_model("Mod", {"x": x, "y": y}, {"fmod": fmod}, opset=13)
    want = reference(model, {"x": x, "y": y})
    assert_same(interpret(import_onnx(model), x, y), want, 0, exact=True)
    assert_same(compile_model(import_onnx(model))(x, y), want, 0, exact=True)
