"""Elementwise graph ops: import + reference semantics against onnxruntime."""

import numpy as np
import pytest

from mlc.testing.onnx_models import assert_matches_onnxruntime, single_node_model

RNG = np.random.default_rng(0)
X = RNG.standard_normal((2, 3, 4)).astype(np.float32)
Y = RNG.standard_normal((3, 1)).astype(np.float32)
POS = np.abs(X) + 0.1


@pytest.mark.parametrize(
    "op_type, x",
    [
        ("Relu", X), ("Sigmoid", X), ("Tanh", X), ("Erf", X), ("Exp", X), ("Log", POS),
        ("Sqrt", POS), ("Reciprocal", POS), ("Neg", X), ("Abs", X), ("Sin", X), ("Cos", X),
        ("Softplus", X), ("Softsign", X), ("HardSwish", X), ("Floor", X), ("Ceil", X),
        ("Round", X * 3), ("Sign", X), ("Identity", X),
        ("Relu", np.array([-3, 0, 5], np.int32)), ("Neg", np.array([-3, 0, 5], np.int64)),
        ("Abs", np.array([-3, 0, 5], np.int8)), ("Not", X > 0),
    ],
)
def test_unary(op_type: str, x: np.ndarray) -> None:
    assert_matches_onnxruntime(single_node_model(op_type, {"x": x}), {"x": x})


@pytest.mark.parametrize(
    "op_type, attrs, opset",
    [
        ("LeakyRelu", {"alpha": 0.2}, 17), ("LeakyRelu", {}, 17), ("Elu", {"alpha": 0.5}, 17),
        ("Selu", {}, 17), ("HardSigmoid", {"alpha": 0.3, "beta": 0.4}, 17),
        ("Gelu", {}, 20), ("Gelu", {"approximate": "tanh"}, 20),
    ],
)
def test_unary_with_attributes(op_type: str, attrs: dict, opset: int) -> None:
    model = single_node_model(op_type, {"x": X}, attrs, opset=opset)
    assert_matches_onnxruntime(model, {"x": X})


@pytest.mark.parametrize(
    "op_type", ["Add", "Sub", "Mul", "Div", "Pow", "Equal", "Less", "Greater", "LessOrEqual",
                "GreaterOrEqual", "PRelu"]
)
def test_binary_broadcasting(op_type: str) -> None:
    x = POS if op_type == "Pow" else X
    model = single_node_model(op_type, {"x": x, "y": Y})
    assert_matches_onnxruntime(model, {"x": x, "y": Y})


@pytest.mark.parametrize("dtype", [np.int32, np.int64, np.uint8])
@pytest.mark.parametrize("op_type", ["Add", "Sub", "Mul", "Div"])
def test_integer_arithmetic_is_exact(op_type: str, dtype: type) -> None:
    x = np.array([[7, -7, 9], [100, 3, -1]]).astype(dtype)
    y = np.array([2, 3, -4]).astype(dtype) if np.dtype(dtype).kind == "i" else np.array([2, 3, 4]).astype(dtype)
    assert_matches_onnxruntime(single_node_model(op_type, {"x": x, "y": y}), {"x": x, "y": y})


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
        "Clip", {"x": X}, initializers={"hi": np.array(0.1, np.float32)},
        input_order=["x", "", "hi"],
    )
    assert_matches_onnxruntime(model, {"x": X})


@pytest.mark.parametrize(
    "src, to", [(np.float32, 6), (np.float32, 7), (np.int64, 1), (np.float32, 9), (np.bool_, 1),
                (np.float32, 10), (np.float32, 2), (np.int32, 11)]
)
def test_cast(src: type, to: int) -> None:
    x = (X * 10).astype(src)
    assert_matches_onnxruntime(single_node_model("Cast", {"x": x}, {"to": to}), {"x": x})


@pytest.mark.parametrize("opset, attrs", [(7, {"ratio": 0.3}), (13, {})])
def test_dropout_is_identity_in_inference(opset: int, attrs: dict) -> None:
    model = single_node_model("Dropout", {"x": X}, attrs, opset=opset)
    assert_matches_onnxruntime(model, {"x": X})
