"""Models with dynamic input dimensions compile to a `SpecializingModel`
(`targets.specialize`): any shape, checked before native code, compiled per shape."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

import mlc
from mlc.parser.onnx import OnnxImportError
from mlc.targets.compiled import CompiledModel, InvalidInputError
from mlc.targets.specialize import SpecializingModel

HIDDEN = 6


def _model(dims: list[int | str | None]) -> onnx.ModelProto:
    """y = softmax(x @ w + bias[tokens]) over a [batch, tokens, HIDDEN] input `x` and a
    [batch, 1, tokens] additive mask: the batch and token counts are dynamic."""
    rng = np.random.default_rng(0)
    w = numpy_helper.from_array(rng.standard_normal((HIDDEN, HIDDEN)).astype(np.float32), "w")
    nodes = [
        helper.make_node("MatMul", ["x", "w"], ["h"]),
        helper.make_node("Transpose", ["h"], ["t"], perm=[0, 2, 1]),
        helper.make_node("Add", ["t", "mask"], ["s"]),
        helper.make_node("Softmax", ["s"], ["y"], axis=-1),
    ]
    batch, tokens = dims[0], dims[1]
    inputs = [
        helper.make_tensor_value_info("x", TensorProto.FLOAT, [batch, tokens, HIDDEN]),
        helper.make_tensor_value_info("mask", TensorProto.FLOAT, [batch, 1, tokens]),
    ]
    out = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
    graph = helper.make_graph(nodes, "g", inputs, [out], [w])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model


def _inputs(batch: int, tokens: int, seed: int = 1) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((batch, tokens, HIDDEN)).astype(np.float32)
    mask = np.where(rng.random((batch, 1, tokens)) < 0.2, -1e4, 0).astype(np.float32)
    return [x, mask]


def _reference(model: onnx.ModelProto, x: np.ndarray, mask: np.ndarray) -> np.ndarray:
    from onnx.reference import ReferenceEvaluator

    return ReferenceEvaluator(model).run(None, {"x": x, "mask": mask})[0]


def test_one_compile_serves_every_shape() -> None:
    model = _model(["batch", "tokens"])
    compiled = mlc.compile(model, cache=False)
    assert isinstance(compiled, SpecializingModel)
    assert compiled.symbols == ["batch", "tokens"]
    for batch, tokens in [(1, 5), (3, 2), (1, 5)]:
        x, mask = _inputs(batch, tokens)
        (y,) = compiled(x, mask)
        np.testing.assert_allclose(y, _reference(model, x, mask), rtol=1e-5, atol=1e-6)
    assert compiled.specializations == [{"batch": 3, "tokens": 2}, {"batch": 1, "tokens": 5}]
    first = compiled.compiled(batch=1, tokens=5)
    assert isinstance(first, CompiledModel)
    assert compiled.compiled(batch=1, tokens=5) is first  # kept, not compiled again


def test_unnamed_dimensions_are_symbols_of_their_own() -> None:
    compiled = mlc.compile(_model([None, None]), cache=False)
    assert isinstance(compiled, SpecializingModel)
    assert compiled.symbols == ["mask[0]", "mask[2]", "x[0]", "x[1]"]
    x, mask = _inputs(2, 3)
    (y,) = compiled(x, mask)
    assert y.shape == (2, HIDDEN, 3)


def test_specialize_compiles_ahead_and_least_recently_used_are_dropped() -> None:
    model = _model(["batch", "tokens"])
    compiled = mlc.compile(
        model, cache=False, specialize={"batch": [1], "tokens": [2, 4]}, max_specializations=2
    )
    assert compiled.specializations == [{"batch": 1, "tokens": 2}, {"batch": 1, "tokens": 4}]
    compiled(*_inputs(1, 3))
    assert compiled.specializations == [{"batch": 1, "tokens": 4}, {"batch": 1, "tokens": 3}]
    with pytest.raises(ValueError, match=r"missing \['tokens'\]"):
        mlc.compile(model, cache=False, specialize={"batch": [1]})
    with pytest.raises(ValueError, match=r"not a dimension of this model: \['seq'\]"):
        mlc.compile(model, cache=False, specialize={"batch": [1], "tokens": [2], "seq": [3]})


@pytest.mark.parametrize(
    ("arrays", "message"),
    [
        (lambda: _inputs(1, 4)[:1], r"expected 2 input\(s\) \(x: float32\[batch, tokens, 6\]"),
        (lambda: [_inputs(1, 4)[0], _inputs(1, 5)[1]], "dimension 'tokens' is 4 in input 'x'"),
        (lambda: [_inputs(1, 4)[0][..., :5], _inputs(1, 4)[1]], "input 'x' axis 2 must be 6"),
        (lambda: [_inputs(1, 4)[0].astype(np.float64), _inputs(1, 4)[1]], "dtype float32"),
        (lambda: [_inputs(1, 4)[0][0], _inputs(1, 4)[1]], "input 'x' must be 3-D"),
        (lambda: _inputs(1, 0), "axis 1 \\('tokens'\\) must be at least 1"),
    ],
)
def test_wrong_inputs_are_refused_before_compiling(arrays, message: str) -> None:  # type: ignore[no-untyped-def]
    compiled = mlc.compile(_model(["batch", "tokens"]), cache=False)
    with pytest.raises(InvalidInputError, match=message):
        compiled(*arrays())
    assert compiled.specializations == []


def test_static_models_and_given_shapes_compile_as_before() -> None:
    assert isinstance(mlc.compile(_model([2, 3]), cache=False), CompiledModel)
    given = mlc.compile(
        _model(["batch", "tokens"]),
        cache=False,
        input_shapes={"x": [1, 2, HIDDEN], "mask": [1, 1, 2]},
    )
    assert isinstance(given, CompiledModel)


def test_an_unknown_operator_behind_dynamic_inputs_is_reported_at_compile() -> None:
    model = _model(["batch", "tokens"])
    model.graph.node[3].op_type = "NoSuchOp"
    with pytest.raises(OnnxImportError, match="NoSuchOp"):
        mlc.compile(model, cache=False)


def test_reshapes_that_keep_dynamic_dimensions_specialize() -> None:
    model = _model(["batch", "tokens"])
    shape = numpy_helper.from_array(np.array([0, 0, 2, 3], np.int64), "split")
    model.graph.initializer.append(shape)
    model.graph.node.insert(1, helper.make_node("Reshape", ["h", "split"], ["h4"]))
    model.graph.node.insert(2, helper.make_node("Reshape", ["h4", "back"], ["h3"]))
    back = numpy_helper.from_array(np.array([0, 0, HIDDEN], np.int64), "back")
    model.graph.initializer.append(back)
    model.graph.node[3].input[0] = "h3"
    compiled = mlc.compile(model, cache=False)
    (y,) = compiled(*_inputs(1, 3))
    assert y.shape == (1, HIDDEN, 3)
