"""Elementwise graph ops: import + reference semantics against onnxruntime."""

import numpy as np
import pytest

from mlc.interpreters import interpret
from mlc.parser.onnx import OnnxImportError, import_onnx
from mlc.testing.onnx_models import assert_matches_onnxruntime, single_node_model

RNG = np.random.default_rng(0)
X = RNG.standard_normal((2, 3, 4)).astype(np.float32)
Y = RNG.standard_normal((3, 1)).astype(np.float32)
POS = np.abs(X) + 0.1


@pytest.mark.parametrize(
    "op_type, x",
    [
        ("Relu", X),
        ("Sigmoid", X),
        ("Tanh", X),
        ("Erf", X),
        ("Exp", X),
        ("Log", POS),
        ("Sqrt", POS),
        ("Reciprocal", POS),
        ("Neg", X),
        ("Abs", X),
        ("Sin", X),
        ("Cos", X),
        ("Softplus", X),
        ("Softsign", X),
        ("HardSwish", X),
        ("Floor", X),
        ("Ceil", X),
        ("Round", X * 3),
        ("Sign", X),
        ("Identity", X),
        ("Relu", np.array([-3, 0, 5], np.int32)),
        ("Neg", np.array([-3, 0, 5], np.int64)),
        ("Abs", np.array([-3, 0, 5], np.int8)),
        ("Not", X > 0),
    ],
)
def test_unary(op_type: str, x: np.ndarray) -> None:
    assert_matches_onnxruntime(single_node_model(op_type, {"x": x}), {"x": x})


@pytest.mark.parametrize(
    "op_type, attrs, opset",
    [
        ("LeakyRelu", {"alpha": 0.2}, 17),
        ("LeakyRelu", {}, 17),
        ("Elu", {"alpha": 0.5}, 17),
        ("Selu", {}, 17),
        ("HardSigmoid", {"alpha": 0.3, "beta": 0.4}, 17),
        ("Gelu", {}, 20),
        ("Gelu", {"approximate": "tanh"}, 20),
    ],
)
def test_unary_with_attributes(op_type: str, attrs: dict, opset: int) -> None:
    model = single_node_model(op_type, {"x": X}, attrs, opset=opset)
    assert_matches_onnxruntime(model, {"x": X})


@pytest.mark.parametrize(
    "op_type",
    [
        "Add",
        "Sub",
        "Mul",
        "Div",
        "Pow",
        "Equal",
        "Less",
        "Greater",
        "LessOrEqual",
        "GreaterOrEqual",
        "PRelu",
    ],
)
def test_binary_broadcasting(op_type: str) -> None:
    x = POS if op_type == "Pow" else X
    model = single_node_model(op_type, {"x": x, "y": Y})
    assert_matches_onnxruntime(model, {"x": x, "y": Y})


@pytest.mark.parametrize("dtype", [np.int32, np.int64, np.uint8])
@pytest.mark.parametrize("op_type", ["Add", "Sub", "Mul", "Div"])
def test_integer_arithmetic_is_exact(op_type: str, dtype: type) -> None:
    x = np.array([[7, -7, 9], [100, 3, -1]]).astype(dtype)
    y = (
        np.array([2, 3, -4]).astype(dtype)
        if np.dtype(dtype).kind == "i"
        else np.array([2, 3, 4]).astype(dtype)
    )
    assert_matches_onnxruntime(single_node_model(op_type, {"x": x, "y": y}), {"x": x, "y": y})


@pytest.mark.parametrize("dtype", [np.int32, np.int64])
def test_integer_division_at_the_type_minimum(dtype: type) -> None:
    """Truncating division where |x| overflows (found by the values fuzzer: the reference
    took abs(INT_MIN)); INT_MIN / -1 is left out (undefined in C, onnxruntime's too)."""
    low = np.iinfo(dtype).min
    x = np.array([19, low, low, -7, 7, low + 1]).astype(dtype)
    y = np.array([low, -2, 3, 2, -2, low]).astype(dtype)
    assert_matches_onnxruntime(single_node_model("Div", {"x": x, "y": y}), {"x": x, "y": y})
    (out,) = interpret(import_onnx(single_node_model("Div", {"x": x, "y": y})), x, y)
    np.testing.assert_array_equal(out, [0, low // -2, -(-low // 3), -3, -3, 0])


@pytest.mark.parametrize("fmod", [0, 1])
def test_mod(fmod: int) -> None:
    x = np.array([-7, 7, 5, -5], np.int32)
    y = np.array([3, -3, 2, 2], np.int32)
    model = single_node_model("Mod", {"x": x, "y": y}, {"fmod": fmod})
    assert_matches_onnxruntime(model, {"x": x, "y": y})


@pytest.mark.parametrize("op_type", ["Max", "Min", "Sum", "Mean"])
def test_variadic(op_type: str) -> None:
    z = RNG.standard_normal((4,)).astype(np.float32)
    inputs = {"x": X, "y": Y, "z": z}
    assert_matches_onnxruntime(single_node_model(op_type, inputs), inputs)


def test_logical_and_where() -> None:
    a, b = X > 0, Y > 0
    for op_type in ("And", "Or", "Xor"):
        assert_matches_onnxruntime(single_node_model(op_type, {"a": a, "b": b}), {"a": a, "b": b})
    inputs = {"c": a, "x": X, "y": Y}
    assert_matches_onnxruntime(single_node_model("Where", inputs), inputs)


@pytest.mark.parametrize("opset", [6, 13])
def test_clip(opset: int) -> None:
    if opset < 11:
        model = single_node_model("Clip", {"x": X}, {"min": -0.5, "max": 0.5}, opset=opset)
    else:
        bounds = {"lo": np.array(-0.5, np.float32), "hi": np.array(0.5, np.float32)}
        model = single_node_model("Clip", {"x": X}, initializers=bounds, opset=opset)
    assert_matches_onnxruntime(model, {"x": X})


def test_clip_with_one_bound() -> None:
    model = single_node_model(
        "Clip",
        {"x": X},
        initializers={"hi": np.array(0.1, np.float32)},
        input_order=["x", "", "hi"],
    )
    assert_matches_onnxruntime(model, {"x": X})


@pytest.mark.parametrize(
    "src, to",
    [
        (np.float32, 6),
        (np.float32, 7),
        (np.int64, 1),
        (np.float32, 9),
        (np.bool_, 1),
        (np.float32, 10),
        (np.float32, 2),
        (np.int32, 11),
    ],
)
def test_cast(src: type, to: int) -> None:
    x = (X * 10).astype(src)
    assert_matches_onnxruntime(single_node_model("Cast", {"x": x}, {"to": to}), {"x": x})


@pytest.mark.parametrize("opset, attrs", [(7, {"ratio": 0.3}), (13, {})])
def test_dropout_is_identity_in_inference(opset: int, attrs: dict) -> None:
    model = single_node_model("Dropout", {"x": X}, attrs, opset=opset)
    assert_matches_onnxruntime(model, {"x": X})


def test_clip_with_runtime_bounds() -> None:
    bounds = {"lo": np.array(-0.5, np.float32), "hi": np.array(0.5, np.float32)}
    model = single_node_model("Clip", {"x": X, **bounds}, opset=13)
    assert_matches_onnxruntime(model, {"x": X, **bounds})
    # one bound at run time, the other a constant
    model = single_node_model(
        "Clip",
        {"x": X, "hi": bounds["hi"]},
        initializers={"lo": bounds["lo"]},
        input_order=["x", "lo", "hi"],
        opset=13,
    )
    assert_matches_onnxruntime(model, {"x": X, "hi": bounds["hi"]})


def test_clip_with_min_greater_than_max_gives_max() -> None:
    bounds = {"lo": np.array(1.0, np.float32), "hi": np.array(-1.0, np.float32)}
    model = single_node_model("Clip", {"x": X, **bounds}, opset=13)
    assert_matches_onnxruntime(model, {"x": X, **bounds})
    model = single_node_model("Clip", {"x": X}, initializers=bounds, opset=13)
    assert_matches_onnxruntime(model, {"x": X})


def test_clip_runtime_int8_bound() -> None:
    x = np.array([-128, -5, 0, 5, 127], np.int8)
    lo = np.array(-3, np.int8)
    model = single_node_model("Clip", {"x": x, "lo": lo}, opset=13)
    assert_matches_onnxruntime(model, {"x": x, "lo": lo})


def test_clip_bounds_are_exact_for_f64_and_int64() -> None:
    """Bounds are not rounded through f32 (or float, for 64-bit integers)."""
    x = np.array([0.1, 0.1 + 1e-12, 0.1 - 1e-12, 5.0], np.float64)
    model = single_node_model("Clip", {"x": x}, initializers={"lo": np.array(0.1)}, opset=13)
    assert_matches_onnxruntime(model, {"x": x}, rtol=0, atol=0)
    big = 2**60
    xi = np.array([big, big + 1, big + 2, -3], np.int64)
    bounds = {"lo": np.array(0, np.int64), "hi": np.array(big + 1, np.int64)}
    model = single_node_model("Clip", {"x": xi}, initializers=bounds, opset=13)
    assert_matches_onnxruntime(model, {"x": xi})
    xu = np.array([2**64 - 1, 5, 0], np.uint64)
    bounds = {"lo": np.array(1, np.uint64), "hi": np.array(2**64 - 2, np.uint64)}
    model = single_node_model("Clip", {"x": xu}, initializers=bounds, opset=13)
    assert_matches_onnxruntime(model, {"x": xu})


def test_dropout_training_mode() -> None:
    # training mode with ratio 0 is the identity, mask all true
    consts = {"r": np.array(0.0, np.float32), "t": np.array(True)}
    model = single_node_model("Dropout", {"x": X}, initializers=consts, num_outputs=2, opset=13)
    assert_matches_onnxruntime(model, {"x": X})
    consts = {"r": np.array(0.3, np.float32), "t": np.array(False)}
    model = single_node_model("Dropout", {"x": X}, initializers=consts, num_outputs=2, opset=13)
    assert_matches_onnxruntime(model, {"x": X})
    consts = {"r": np.array(0.3, np.float32), "t": np.array(True)}
    model = single_node_model("Dropout", {"x": X}, initializers=consts, opset=13)
    with pytest.raises(OnnxImportError, match="training_mode=true"):
        import_onnx(model)
    model = single_node_model(
        "Dropout",
        {"x": X, "t": np.array(True)},
        initializers={"r": consts["r"]},
        input_order=["x", "r", "t"],
        opset=13,
    )
    with pytest.raises(OnnxImportError, match=r"training_mode \(input 't'\) is a run-time input"):
        import_onnx(model)


def test_dropout_mask_before_opset_10_has_the_input_type() -> None:
    model = single_node_model("Dropout", {"x": X}, {"ratio": 0.2}, num_outputs=2, opset=7)
    out, mask = interpret(import_onnx(model), X)
    np.testing.assert_array_equal(out, X)
    assert mask.dtype == np.float32 and np.all(mask == 1)


def test_dropout_before_opset_7_defaults_to_training() -> None:
    model = single_node_model("Dropout", {"x": X}, {"ratio": 0.2}, opset=6)
    with pytest.raises(OnnxImportError, match="is_test=0"):
        import_onnx(model)
    model = single_node_model("Dropout", {"x": X}, {"is_test": 1}, opset=6)
    np.testing.assert_array_equal(interpret(import_onnx(model), X)[0], X)


def test_cast_with_a_type_name_before_opset_6() -> None:
    model = single_node_model("Cast", {"x": X * 10}, {"to": "INT32"}, opset=1)
    (out,) = interpret(import_onnx(model), X * 10)
    np.testing.assert_array_equal(out, (X * 10).astype(np.int32))
    model = single_node_model("Cast", {"x": X}, {"to": "STRING"}, opset=1)
    with pytest.raises(OnnxImportError, match="STRING is not supported"):
        import_onnx(model)
