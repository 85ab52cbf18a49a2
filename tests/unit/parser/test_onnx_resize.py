"""Resize imports as per-axis interpolation tables (`parser.onnx.resize`): the whole
N-dimensional operator against onnx's reference evaluator, over modes, coordinate
transformations, scales and sizes; natively too."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from onnx import TensorProto, helper
from onnx.reference import ReferenceEvaluator

import mlc
from mlc.parser.onnx import OnnxImportError, import_onnx

COORDINATES = [
    "half_pixel",
    "half_pixel_symmetric",
    "pytorch_half_pixel",
    "align_corners",
    "asymmetric",
    "tf_crop_and_resize",
]


def _model(
    shape: list[int],
    attrs: dict[str, object],
    scales: list[float] | None = None,
    sizes: list[int] | None = None,
    roi: list[float] | None = None,
    dtype: int = TensorProto.FLOAT,
) -> onnx.ModelProto:
    inits = []
    inputs = ["x", "", "", ""]
    if roi is not None:
        inits.append(helper.make_tensor("roi", TensorProto.FLOAT, [len(roi)], roi))
        inputs[1] = "roi"
    if scales is not None:
        inits.append(helper.make_tensor("scales", TensorProto.FLOAT, [len(scales)], scales))
        inputs[2] = "scales"
    if sizes is not None:
        inits.append(helper.make_tensor("sizes", TensorProto.INT64, [len(sizes)], sizes))
        inputs[3] = "sizes"
    while not inputs[-1]:
        inputs.pop()
    node = helper.make_node("Resize", inputs, ["y"], **attrs)
    graph = helper.make_graph(
        [node],
        "resize",
        [helper.make_tensor_value_info("x", dtype, shape)],
        [helper.make_tensor_value_info("y", dtype, None)],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 19)])
    model.ir_version = 9
    return model


def _check(model: onnx.ModelProto, x: np.ndarray, native: bool = False) -> None:
    expected = ReferenceEvaluator(model).run(None, {"x": x})[0]
    (actual,) = mlc.interpret(import_onnx(model), x)
    tol = 1e-5 if x.dtype == np.float32 else 0
    np.testing.assert_allclose(actual, expected, rtol=tol, atol=tol)
    if native:
        (compiled,) = mlc.compile(model, cache=False)(x)
        np.testing.assert_allclose(compiled, expected, rtol=1e-5, atol=1e-5)


@settings(max_examples=30)
@given(
    mode=st.sampled_from(["nearest", "linear", "cubic"]),
    coordinates=st.sampled_from(COORDINATES),
    nearest_mode=st.sampled_from(["round_prefer_floor", "round_prefer_ceil", "floor", "ceil"]),
    antialias=st.booleans(),
    h=st.integers(1, 6),
    w=st.integers(1, 6),
    factors=st.tuples(st.sampled_from([0.5, 0.6, 1.0, 1.5, 2.0, 3.0]), st.sampled_from([0.5, 2.5])),
    by_size=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_resize_matches_the_reference(
    mode: str,
    coordinates: str,
    nearest_mode: str,
    antialias: bool,
    h: int,
    w: int,
    factors: tuple[float, float],
    by_size: bool,
    seed: int,
) -> None:
    attrs: dict[str, object] = {"mode": mode, "coordinate_transformation_mode": coordinates}
    if mode == "nearest":
        attrs["nearest_mode"] = nearest_mode
    elif antialias:
        attrs["antialias"] = 1
    shape = [1, 2, h, w]
    roi = None
    if coordinates == "tf_crop_and_resize":
        roi = [0.0, 0.0, 0.2, -0.1, 1.0, 1.0, 0.9, 1.2]  # leaves the input: extrapolated
        attrs["extrapolation_value"] = -3.0
    if by_size:
        sizes = [1, 2, max(1, round(h * factors[0])), max(1, round(w * factors[1]))]
        model = _model(shape, attrs, sizes=sizes, roi=roi)
    else:
        model = _model(shape, attrs, scales=[1.0, 1.0, *factors], roi=roi)
    x = np.random.default_rng(seed).standard_normal(shape).astype(np.float32)
    _check(model, x)


def test_nearest_upsampling_of_integers_and_natively() -> None:
    model = _model([1, 3, 4, 5], {"mode": "nearest"}, scales=[1, 1, 2, 2], dtype=TensorProto.INT32)
    _check(model, np.arange(60, dtype=np.int32).reshape(1, 3, 4, 5), native=True)


def test_bilinear_upsampling_natively() -> None:
    model = _model([1, 3, 7, 5], {"mode": "linear"}, scales=[1, 1, 2, 2])
    x = np.random.default_rng(0).standard_normal([1, 3, 7, 5]).astype(np.float32)
    _check(model, x, native=True)


def test_resizing_a_leading_axis_with_axes() -> None:
    model = _model([3, 4, 2], {"mode": "linear", "axes": [0]}, scales=[1.7])
    x = np.random.default_rng(1).standard_normal([3, 4, 2]).astype(np.float32)
    _check(model, x, native=True)


def test_linear_resize_of_integers_is_refused_with_a_reason() -> None:
    model = _model([1, 1, 2, 2], {"mode": "linear"}, scales=[1, 1, 2, 2], dtype=TensorProto.INT32)
    with pytest.raises(OnnxImportError, match="mode='linear' on i32"):
        import_onnx(model)
