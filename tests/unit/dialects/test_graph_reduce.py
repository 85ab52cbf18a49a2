"""Reduce graph ops: verifier, import and reference semantics against onnxruntime."""

import numpy as np
import onnx
import pytest
from xdsl.dialects import test as xdsl_test
from xdsl.dialects.builtin import TensorType, f32, i1, i32, i64
from xdsl.ir import SSAValue

from mlc.dialects.graph import GraphError
from mlc.dialects.graph import reduce as rd
from mlc.dialects.graph.types import tensor
from mlc.interpreters.graph import evaluate
from mlc.parser.onnx import OnnxImportError, import_onnx
from mlc.testing.onnx_models import assert_matches_onnxruntime, single_node_model

RNG = np.random.default_rng(0)
X = RNG.standard_normal((3, 4, 5)).astype(np.float32)
XI = RNG.integers(-50, 50, (3, 4, 5)).astype(np.int32)

REDUCE_OPS = [
    "ReduceSum",
    "ReduceMean",
    "ReduceMax",
    "ReduceMin",
    "ReduceProd",
    "ReduceL1",
    "ReduceL2",
    "ReduceLogSum",
    "ReduceLogSumExp",
    "ReduceSumSquare",
]
#: the opset in which `axes` moved from an attribute to an input
AXES_INPUT_SINCE = {op: 13 if op == "ReduceSum" else 18 for op in REDUCE_OPS}


def data_for(op_type: str, x: np.ndarray) -> np.ndarray:
    if op_type == "ReduceLogSum":
        return np.abs(x) + 1  # log of a positive sum
    if op_type == "ReduceProd" and x.dtype.kind == "f":
        return (x / 2 + 1).astype(x.dtype)  # products of moderate magnitude
    if op_type == "ReduceProd":
        return (x % 5 - 2).astype(x.dtype)
    return x


def reduce_model(
    op_type: str, x: np.ndarray, axes: list[int] | None, opset: int, **attrs: int
) -> onnx.ModelProto:
    """A Reduce* model naming `axes` the way `opset` does (attribute or constant input)."""
    if axes is not None and opset < AXES_INPUT_SINCE[op_type]:
        attrs = {**attrs, "axes": axes}
        return single_node_model(op_type, {"x": x}, attrs, opset=opset)
    initializers = {} if axes is None else {"axes": np.array(axes, np.int64)}
    return single_node_model(op_type, {"x": x}, attrs, initializers=initializers, opset=opset)


# --------------------------------------------------------------------------- verifier


def _value(ty: TensorType) -> SSAValue:
    return xdsl_test.TestOp.create(result_types=[ty]).results[0]


def test_result_type_inference() -> None:
    x = _value(tensor((3, 4, 5), f32))
    op = rd.ReduceSumOp.create([x], axes=[0, 2], keepdims=False)
    assert op.output.type == tensor((4,), f32)
    op = rd.ReduceMaxOp.create([x], axes=[1], keepdims=True)
    assert op.output.type == tensor((3, 1, 5), f32)
    op = rd.ReduceMeanOp.create([x], axes=[], keepdims=False)
    assert op.output.type == tensor((3, 4, 5), f32)
    op = rd.ArgMaxOp.create([x], axis=2, keepdims=False, select_last_index=False)
    assert op.output.type == tensor((3, 4), i64)


@pytest.mark.parametrize(
    "axes, message",
    [
        ([3], "out of range"),
        ([-1], "out of range"),
        ([2, 0], "strictly increasing"),
        ([1, 1], "strictly increasing"),
    ],
)
def test_axes_must_be_normalized(axes: list[int], message: str) -> None:
    x = _value(tensor((3, 4, 5), f32))
    with pytest.raises(GraphError, match=message):
        rd.ReduceSumOp.create([x], axes=axes, keepdims=True)


def test_verifier_rejects_a_wrong_result_type() -> None:
    x = _value(tensor((3, 4), f32))
    op = rd.ReduceSumOp.create([x], result_types=[tensor((3, 1), f32)], axes=[1], keepdims=False)
    with pytest.raises(GraphError, match="should be tensor<3xf32>"):
        op.verify()


def test_bool_reductions() -> None:
    b = _value(tensor((2, 3), i1))
    assert rd.ReduceMaxOp.create([b], axes=[1], keepdims=False).output.type == tensor((2,), i1)
    with pytest.raises(GraphError, match="boolean"):
        rd.ReduceSumOp.create([b], axes=[1], keepdims=False)


def test_argmax_of_an_empty_axis_is_invalid() -> None:
    x = _value(tensor((3, 0), i32))
    with pytest.raises(GraphError, match="size 0"):
        rd.ArgMinOp.create([x], axis=1, keepdims=True, select_last_index=False)
    with pytest.raises(GraphError, match="out of range"):
        rd.ArgMinOp.create([x], axis=2, keepdims=True, select_last_index=False)


def test_reduce_over_no_axes_applies_the_elementwise_part() -> None:
    x = _value(tensor((2,), f32))
    data = np.array([-2.0, 3.0], np.float32)
    for op_type, expected in [
        (rd.ReduceSumOp, data),
        (rd.ReduceSumSquareOp, data * data),
        (rd.ReduceL1Op, np.abs(data)),
        (rd.ReduceLogSumExpOp, data),
    ]:
        op = op_type.create([x], axes=[], keepdims=False)
        np.testing.assert_allclose(evaluate(op, [data])[0], expected, rtol=1e-6)


# --------------------------------------------------------------------------- vs onnxruntime


@pytest.mark.parametrize("op_type", REDUCE_OPS)
@pytest.mark.parametrize("axes", [None, [1], [-1, 0], [0, 1, 2]])
@pytest.mark.parametrize("keepdims", [0, 1])
def test_reduce_axes_and_keepdims(op_type: str, axes: list[int] | None, keepdims: int) -> None:
    x = data_for(op_type, X)
    model = reduce_model(op_type, x, axes, opset=18, keepdims=keepdims)
    assert_matches_onnxruntime(model, {"x": x})


@pytest.mark.parametrize("op_type", REDUCE_OPS)
@pytest.mark.parametrize("opset", [11, 13, 18])
def test_reduce_opsets(op_type: str, opset: int) -> None:
    """Axes as an attribute (opset 11, and 13 except ReduceSum) or an input."""
    x = data_for(op_type, X)
    model = reduce_model(op_type, x, [-2], opset=opset, keepdims=0)
    assert_matches_onnxruntime(model, {"x": x})
    model = reduce_model(op_type, x, None, opset=opset)
    assert_matches_onnxruntime(model, {"x": x})


@pytest.mark.parametrize("op_type", REDUCE_OPS)
@pytest.mark.parametrize("dtype", [np.int32, np.int64])
def test_integer_reductions_are_exact(op_type: str, dtype: type) -> None:
    x = data_for(op_type, XI.astype(dtype))
    model = reduce_model(op_type, x, [0, 2], opset=18, keepdims=0)
    assert_matches_onnxruntime(model, {"x": x})


@pytest.mark.parametrize("op_type", ["ReduceMax", "ReduceMin"])
@pytest.mark.parametrize("dtype", [np.uint8, np.int8])
def test_small_integer_max_min(op_type: str, dtype: type) -> None:
    x = XI.astype(dtype)
    model = reduce_model(op_type, x, [1], opset=18, keepdims=1)
    assert_matches_onnxruntime(model, {"x": x})


@pytest.mark.parametrize("op_type", REDUCE_OPS)
@pytest.mark.parametrize("dtype", [np.float16, np.float64])
def test_other_float_types(op_type: str, dtype: type) -> None:
    x = data_for(op_type, X.astype(dtype))
    model = reduce_model(op_type, x, [2], opset=18, keepdims=1)
    rtol = 1e-3 if dtype == np.float16 else 1e-4
    assert_matches_onnxruntime(model, {"x": x}, rtol=rtol, atol=1e-3)


@pytest.mark.parametrize("op_type", REDUCE_OPS)
def test_noop_with_empty_axes(op_type: str) -> None:
    x = data_for(op_type, X)
    for axes in (None, []):
        model = reduce_model(op_type, x, axes, opset=18, noop_with_empty_axes=1)
        assert_matches_onnxruntime(model, {"x": x})
    # empty axes without noop_with_empty_axes reduce over all axes
    assert_matches_onnxruntime(reduce_model(op_type, x, [], opset=18, keepdims=0), {"x": x})


@pytest.mark.parametrize("op_type", REDUCE_OPS)
@pytest.mark.parametrize("dtype", [np.float32, np.int32, np.int64])
def test_empty_set(op_type: str, dtype: type) -> None:
    x = np.zeros((2, 0, 4), dtype)
    for axes in ([1], [2]):  # the empty axis reduced, or kept
        model = reduce_model(op_type, x, axes, opset=18)
        assert_matches_onnxruntime(model, {"x": x})


@pytest.mark.parametrize("op_type", ["ReduceMax", "ReduceMin"])
def test_bool_max_min(op_type: str) -> None:
    x = RNG.standard_normal((3, 4)) > 0.5
    model = reduce_model(op_type, x, [1], opset=20, keepdims=0)
    assert_matches_onnxruntime(model, {"x": x})


def test_reduce_of_a_scalar() -> None:
    x = np.array(2.5, np.float32)
    assert_matches_onnxruntime(reduce_model("ReduceSum", x, None, opset=18), {"x": x})


def test_log_sum_exp_is_stable() -> None:
    x = np.array([[1000.0, 1000.0], [-1000.0, -1000.0]], np.float32)
    assert_matches_onnxruntime(reduce_model("ReduceLogSumExp", x, [1], opset=18), {"x": x})


@pytest.mark.parametrize("op_type", ["ArgMax", "ArgMin"])
@pytest.mark.parametrize("axis", [0, 1, -1])
@pytest.mark.parametrize("keepdims", [0, 1])
@pytest.mark.parametrize("select_last_index", [0, 1])
def test_arg_reduce(op_type: str, axis: int, keepdims: int, select_last_index: int) -> None:
    x = RNG.integers(0, 3, (3, 4, 5)).astype(np.float32)  # many ties
    attrs = {"axis": axis, "keepdims": keepdims, "select_last_index": select_last_index}
    assert_matches_onnxruntime(single_node_model(op_type, {"x": x}, attrs, opset=13), {"x": x})


@pytest.mark.parametrize("op_type", ["ArgMax", "ArgMin"])
@pytest.mark.parametrize("dtype", [np.int32, np.int64, np.float64])
@pytest.mark.parametrize("opset", [11, 13])
def test_arg_reduce_dtypes_and_defaults(op_type: str, dtype: type, opset: int) -> None:
    x = XI.astype(dtype)
    assert_matches_onnxruntime(single_node_model(op_type, {"x": x}, opset=opset), {"x": x})


# --------------------------------------------------------------------------- import errors


def test_runtime_axes_are_unsupported() -> None:
    model = single_node_model(
        "ReduceSum", {"x": X, "axes": np.array([1], np.int64)}, {"keepdims": 0}, opset=13
    )
    with pytest.raises(
        OnnxImportError,
        match=r"input .axes. \(axes decide .*must be a constant known at import time",
    ):
        import_onnx(model)


def test_runtime_axes_with_static_empty_shape_are_known() -> None:
    axes = np.zeros((0,), np.int64)
    model = single_node_model("ReduceSum", {"x": X, "axes": axes}, {"keepdims": 0}, opset=13)
    assert_matches_onnxruntime(model, {"x": X, "axes": axes})


@pytest.mark.parametrize("axes", [[3], [1, -2]])
def test_invalid_axes_are_reported(axes: list[int]) -> None:
    model = reduce_model("ReduceMean", X, axes, opset=18)
    with pytest.raises(OnnxImportError, match="invalid node"):
        import_onnx(model)
