"""The conformance harness binds the graph inputs a shape-deciding value is computed from
(a window function's size cast to float before its Range), never data inputs."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from mlc.interpreters import interpret
from mlc.parser.onnx import OnnxImportError, import_onnx
from mlc.testing.conformance import _inputs_to_bind


def _window_model(
    size_type: int = TensorProto.INT64, size_shape: list[int] | None = None
) -> onnx.ModelProto:
    """cos(Range(0, float(size) + 0 * sum(x), 1)): the Range limit derives from `size`
    (and, through Shape, from `x`'s static shape only)."""
    nodes = [
        helper.make_node("Cast", ["size"], ["size_f"], to=TensorProto.FLOAT),
        helper.make_node("Shape", ["x"], ["x_shape"]),
        helper.make_node("ReduceSum", ["x_shape"], ["n"], keepdims=0),
        helper.make_node("Cast", ["n"], ["n_f"], to=TensorProto.FLOAT),
        helper.make_node("Sub", ["n_f", "n_f"], ["zero"]),
        helper.make_node("Add", ["size_f", "zero"], ["limit"]),
        helper.make_node("Constant", [], ["start"], value_float=0.0),
        helper.make_node("Constant", [], ["delta"], value_float=1.0),
        helper.make_node("Range", ["start", "limit", "delta"], ["r"]),
        helper.make_node("Cos", ["r"], ["y"]),
    ]
    graph = helper.make_graph(
        nodes,
        "window",
        [
            helper.make_tensor_value_info("size", size_type, size_shape or []),
            helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3]),
        ],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model


def _import_error(model: onnx.ModelProto) -> str:
    with pytest.raises(OnnxImportError) as info:
        import_onnx(model)
    return str(info.value)


def test_the_integer_input_a_range_limit_comes_from_is_bound() -> None:
    model = _window_model()
    assert _inputs_to_bind(_import_error(model), model) == ["size"]
    module = import_onnx(model, input_values={"size": np.array(5, np.int64)})
    (y,) = interpret(module, np.ones((2, 3), np.float32))
    np.testing.assert_allclose(y, np.cos(np.arange(5, dtype=np.float32)), rtol=1e-6)


@pytest.mark.parametrize(
    ("size_type", "size_shape"), [(TensorProto.FLOAT, []), (TensorProto.INT64, [17])]
)
def test_float_or_large_sources_are_not_bound(size_type: int, size_shape: list[int]) -> None:
    model = _window_model(size_type, size_shape)
    assert _inputs_to_bind(_import_error(model), model) == []


def test_a_value_inside_an_expanded_function_body_is_traced_through_the_body() -> None:
    # HannWindow has no converter of its own: its body's Range limit comes from `size`
    node = helper.make_node("HannWindow", ["size"], ["y"], name="hann")
    graph = helper.make_graph(
        [node],
        "hann",
        [helper.make_tensor_value_info("size", TensorProto.INT64, [])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    message = _import_error(model)
    assert "hann::" in message  # the problem is inside the body
    assert _inputs_to_bind(message, model) == ["size"]
    module = import_onnx(model, input_values={"size": np.array(6, np.int64)})
    (y,) = interpret(module)
    np.testing.assert_allclose(y, 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(6) / 6), atol=1e-6)


def test_values_an_if_branch_reads_and_castlike_types_are_traced() -> None:
    # Range's limit comes out of an If whose branch reads `size`; CastLike takes only the
    # element type of the float data input `x` (which must not be bound)
    then_branch = helper.make_graph(
        [helper.make_node("Cast", ["size"], ["t"], to=TensorProto.DOUBLE)],
        "then",
        [],
        [helper.make_tensor_value_info("t", TensorProto.DOUBLE, [])],
    )
    nodes = [
        helper.make_node(
            "Constant", [], ["c"], value=helper.make_tensor("v", TensorProto.BOOL, [], [True])
        ),
        helper.make_node(
            "If", ["c"], ["limit_d"], then_branch=then_branch, else_branch=then_branch
        ),
        helper.make_node("CastLike", ["limit_d", "x"], ["limit"]),
        helper.make_node("Constant", [], ["start"], value_float=0.0),
        helper.make_node("Constant", [], ["delta"], value_float=1.0),
        helper.make_node("Range", ["start", "limit", "delta"], ["y"]),
    ]
    graph = helper.make_graph(
        nodes,
        "if_range",
        [
            helper.make_tensor_value_info("size", TensorProto.INT64, []),
            helper.make_tensor_value_info("x", TensorProto.FLOAT, [2]),
        ],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    assert _inputs_to_bind(_import_error(model), model) == ["size"]
