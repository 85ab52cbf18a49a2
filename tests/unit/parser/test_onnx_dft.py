"""DFT imports as one matrix product along the signal axis (`parser.onnx.spectral`):
against onnx's reference evaluator over lengths, axes, real and complex signals,
one-sided and inverse transforms and dft_length; natively too."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from onnx import TensorProto, helper
from onnx.reference import ReferenceEvaluator

import mlc
from mlc.parser.onnx import OnnxImportError, import_onnx


def _model(
    shape: list[int], opset: int, axis: int, length: int | None, **attrs: int
) -> onnx.ModelProto:
    inputs, inits = ["x"], []
    if length is not None:
        inputs.append("length")
        inits.append(helper.make_tensor("length", TensorProto.INT64, [], [length]))
    if opset >= 20:
        inputs += [""] * (2 - len(inputs)) + ["axis"]
        inits.append(helper.make_tensor("axis", TensorProto.INT64, [], [axis]))
    else:
        attrs["axis"] = axis
    node = helper.make_node("DFT", inputs, ["y"], **attrs)
    graph = helper.make_graph(
        [node],
        "dft",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, shape)],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 9
    return model


@settings(max_examples=25)
@given(
    opset=st.sampled_from([19, 20]),
    dims=st.lists(st.integers(1, 6), min_size=2, max_size=3),
    parts=st.sampled_from([1, 2]),
    axis_pick=st.integers(0, 10),
    onesided=st.booleans(),
    inverse=st.booleans(),
    length_delta=st.sampled_from([None, -1, 0, 2]),
    seed=st.integers(0, 2**16),
)
def test_dft_matches_the_reference(
    opset: int,
    dims: list[int],
    parts: int,
    axis_pick: int,
    onesided: bool,
    inverse: bool,
    length_delta: int | None,
    seed: int,
) -> None:
    shape = [*dims, parts]
    axis = 1 + axis_pick % (len(dims) - 1)  # a signal axis (not the batch, not the parts)
    if onesided:  # a forward one-sided DFT takes a real signal, an inverse a half spectrum
        shape[-1] = 2 if inverse else 1
    n = shape[axis]
    assume(not (onesided and inverse and n < 2))  # (an empty signal: the reference fails)
    length = None if length_delta is None else max(1, n + length_delta)
    model = _model(shape, opset, axis, length, onesided=int(onesided), inverse=int(inverse))
    x = np.random.default_rng(seed).standard_normal(shape).astype(np.float32)
    expected = ReferenceEvaluator(model).run(None, {"x": x})[0]
    (actual,) = mlc.interpret(import_onnx(model), x)
    assert actual.shape == expected.shape
    np.testing.assert_allclose(actual, expected, rtol=1e-4, atol=1e-4)


def test_a_complex_dft_along_a_middle_axis_natively() -> None:
    model = _model([2, 5, 7, 2], 20, 2, None)
    x = np.random.default_rng(0).standard_normal([2, 5, 7, 2]).astype(np.float32)
    expected = ReferenceEvaluator(model).run(None, {"x": x})[0]
    (native,) = mlc.compile(model, cache=False)(x)
    np.testing.assert_allclose(native, expected, rtol=1e-4, atol=1e-4)


def test_the_parts_axis_is_not_a_signal_axis() -> None:
    with pytest.raises(OnnxImportError, match="is not a signal axis"):
        import_onnx(_model([1, 4, 2], 19, 2, None))
