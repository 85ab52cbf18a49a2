"""Shape graph ops: import + reference semantics against onnxruntime, verifier errors."""

from __future__ import annotations

import numpy as np
import pytest
from xdsl.dialects.builtin import FloatAttr, f32, i64

from mlc.dialects.graph import GraphError
from mlc.dialects.graph import shape as sh
from mlc.dialects.graph.elementwise import ConstantOp
from mlc.dialects.graph.types import tensor
from mlc.parser.onnx import OnnxImportError, import_onnx
from mlc.testing.onnx_models import assert_matches_onnxruntime, single_node_model

RNG = np.random.default_rng(0)
X = RNG.standard_normal((2, 3, 4)).astype(np.float32)
DTYPES = [np.float32, np.int64, np.bool_]


def as_dtype(x: np.ndarray, dtype: type) -> np.ndarray:
    if dtype is np.bool_:
        return x > 0
    if np.dtype(dtype).kind in "iu":
        return (x * 10).astype(dtype)
    return x.astype(dtype)


def i64s(*values: int) -> np.ndarray:
    return np.array(values, dtype=np.int64)


def check(
    op_type: str,
    inputs: dict[str, np.ndarray],
    attrs: dict | None = None,
    initializers: dict[str, np.ndarray] | None = None,
    opset: int = 17,
    **kwargs: object,
) -> list[np.ndarray]:
    model = single_node_model(
        op_type, inputs, attrs, initializers=initializers, opset=opset, **kwargs
    )
    return assert_matches_onnxruntime(model, inputs)


def interpret_model(model: object, *inputs: np.ndarray) -> list[np.ndarray]:
    """mlc alone, for old opsets that onnxruntime (or ONNX shape inference) lacks."""
    from mlc.interpreters import interpret

    return interpret(import_onnx(model), *inputs)


def constant(shape: tuple[int, ...], dtype: type = np.float32) -> ConstantOp:
    return ConstantOp.from_array(np.zeros(shape, dtype=dtype))


# --------------------------------------------------------------------------- reshapes


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(
    "target",
    [(4, 6), (-1,), (0, -1), (2, 0, 2, 2), (4, 3, 2), (1, 24), (-1, 2, 1)],
)
def test_reshape(target: tuple[int, ...], dtype: type) -> None:
    x = as_dtype(X, dtype)
    check("Reshape", {"x": x}, initializers={"shape": i64s(*target)})


def test_reshape_allowzero() -> None:
    x = np.zeros((0, 3, 4), np.float32)
    check("Reshape", {"x": x}, {"allowzero": 1}, {"shape": i64s(3, 4, 0)}, opset=14)


def test_reshape_opset4_attribute() -> None:
    model = single_node_model("Reshape", {"x": X}, {"shape": [6, -1]}, opset=4)
    (y,) = interpret_model(model, X)
    np.testing.assert_array_equal(y, X.reshape(6, 4))


def test_reshape_dynamic_shape_is_unsupported() -> None:
    model = single_node_model("Reshape", {"x": X, "shape": i64s(6, 4)})
    with pytest.raises(OnnxImportError, match="must be a constant known at import time"):
        import_onnx(model)


@pytest.mark.parametrize(
    "axis, opset", [(0, 9), (2, 9), (None, 9), (0, 13), (1, 13), (3, 13), (-1, 13), (-3, 11)]
)
def test_flatten(axis: int | None, opset: int) -> None:
    check("Flatten", {"x": X}, {} if axis is None else {"axis": axis}, opset=opset)


def test_flatten_dtypes() -> None:
    for dtype in DTYPES:
        check("Flatten", {"x": as_dtype(X, dtype)}, {"axis": 2})


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("opset", [11, 13])
@pytest.mark.parametrize("axes", [(0,), (-1,), (0, 2), None])
def test_squeeze(axes: tuple[int, ...] | None, opset: int, dtype: type) -> None:
    x = as_dtype(RNG.standard_normal((1, 3, 1)), dtype)
    if axes is None:
        check("Squeeze", {"x": x}, opset=opset)
    elif opset < 13:
        check("Squeeze", {"x": x}, {"axes": list(axes)}, opset=opset)
    else:
        check("Squeeze", {"x": x}, initializers={"axes": i64s(*axes)}, opset=opset)


def test_squeeze_of_non_unit_axis_is_invalid() -> None:
    model = single_node_model("Squeeze", {"x": X}, {"axes": [1]}, opset=11)
    with pytest.raises(OnnxImportError, match="Squeeze axis 1 of shape"):
        import_onnx(model)


@pytest.mark.parametrize("opset", [11, 13, 21])
@pytest.mark.parametrize("axes", [(0,), (3,), (-1,), (1, 0), (4, 0, 2), (-5, -1)])
def test_unsqueeze(axes: tuple[int, ...], opset: int) -> None:
    if opset < 13:
        check("Unsqueeze", {"x": X}, {"axes": list(axes)}, opset=opset)
    else:
        check("Unsqueeze", {"x": X}, initializers={"axes": i64s(*axes)}, opset=opset)


# --------------------------------------------------------------------------- transpose, concat, split


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("perm", [None, (0, 1, 2), (2, 0, 1), (1, 0, 2), (0, 2, 1)])
def test_transpose(perm: tuple[int, ...] | None, dtype: type) -> None:
    x = as_dtype(X, dtype)
    check("Transpose", {"x": x}, {} if perm is None else {"perm": list(perm)})


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("axis", [0, 1, 2, -1, -3])
def test_concat(axis: int, dtype: type) -> None:
    shapes = [list(X.shape) for _ in range(3)]
    for i, s in enumerate(shapes):
        s[axis] = i + 1
    inputs = {f"x{i}": as_dtype(RNG.standard_normal(s), dtype) for i, s in enumerate(shapes)}
    check("Concat", inputs, {"axis": axis})


def test_concat_single_input_and_opset1_default_axis() -> None:
    check("Concat", {"x": X}, {"axis": 0})
    y = RNG.standard_normal((2, 5, 4)).astype(np.float32)
    (z,) = interpret_model(single_node_model("Concat", {"x": X, "y": y}, opset=1), X, y)
    np.testing.assert_array_equal(z, np.concatenate([X, y], axis=1))


@pytest.mark.parametrize("dtype", DTYPES)
def test_split_equal(dtype: type) -> None:
    x = as_dtype(RNG.standard_normal((6, 4)), dtype)
    check("Split", {"x": x}, {"axis": 0}, num_outputs=3, opset=11)
    check("Split", {"x": x}, {"axis": -1}, num_outputs=2, opset=13)


def test_split_sizes_by_opset() -> None:
    x = RNG.standard_normal((2, 7)).astype(np.float32)
    check("Split", {"x": x}, {"axis": 1, "split": [2, 5]}, num_outputs=2, opset=11)
    check("Split", {"x": x}, {"axis": 1}, {"split": i64s(3, 0, 4)}, num_outputs=3, opset=13)
    check("Split", {"x": x}, {"axis": -1}, {"split": i64s(1, 6)}, num_outputs=2, opset=18)


@pytest.mark.parametrize("dim, n", [(7, 4), (7, 3), (6, 3), (2, 2)])
def test_split_num_outputs_uneven(dim: int, n: int) -> None:
    x = RNG.standard_normal((3, dim)).astype(np.float32)
    check("Split", {"x": x}, {"axis": 1, "num_outputs": n}, num_outputs=n, opset=18)


# --------------------------------------------------------------------------- slice

BIG = np.iinfo(np.int64).max


@pytest.mark.parametrize(
    "starts, ends, axes, steps",
    [
        ((0, 1), (2, 3), None, None),
        ((1,), (BIG,), (1,), None),
        ((-2,), (-1,), (-1,), None),
        ((10,), (20,), (2,), None),
        ((-10,), (2,), (0,), None),
        ((-1,), (-BIG,), (2,), (-1,)),
        ((3, 2), (0, -BIG), (2, 1), (-2, -1)),
        ((20,), (0,), (1,), (-1,)),
        ((-10,), (-20,), (1,), (-1,)),
        ((0, 0, 3), (-1, 1000, 0), (0, 1, 2), (1, 2, -1)),
        ((1,), (1,), (0,), (1,)),
    ],
)
@pytest.mark.parametrize("dtype", [np.float32, np.int64])
def test_slice(
    starts: tuple[int, ...],
    ends: tuple[int, ...],
    axes: tuple[int, ...] | None,
    steps: tuple[int, ...] | None,
    dtype: type,
) -> None:
    x = as_dtype(X, dtype)
    init = {"starts": i64s(*starts), "ends": i64s(*ends)}
    if axes is not None:
        init["axes"] = i64s(*axes)
    if steps is not None:
        init["steps"] = i64s(*steps)
    check("Slice", {"x": x}, initializers=init, opset=13)


def test_slice_opset9_attributes() -> None:
    x = as_dtype(X, np.bool_)
    check("Slice", {"x": x}, {"starts": [1, -3], "ends": [BIG, -1], "axes": [2, 1]}, opset=9)
    check("Slice", {"x": X}, {"starts": [0, 1], "ends": [1, 3]}, opset=1)


def test_slice_omitted_optional_inputs() -> None:
    init = {"starts": i64s(1), "ends": i64s(3), "steps": i64s(2)}
    order = ["x", "starts", "ends", "", "steps"]
    check("Slice", {"x": X}, initializers=init, opset=13, input_order=order)


# --------------------------------------------------------------------------- gather


@pytest.mark.parametrize("index_dtype", [np.int64, np.int32])
@pytest.mark.parametrize("axis", [0, 1, 2, -1])
@pytest.mark.parametrize("indices", [[0], [1, -1, 0], [[0, 1], [-2, 1]], 1])
def test_gather(axis: int, indices: object, index_dtype: type) -> None:
    idx = np.array(indices, dtype=index_dtype)
    check("Gather", {"x": X, "i": idx}, {"axis": axis})


@pytest.mark.parametrize("dtype", DTYPES)
def test_gather_dtypes_and_constant_indices(dtype: type) -> None:
    x = as_dtype(X, dtype)
    check("Gather", {"x": x}, {"axis": 1}, {"i": i64s(2, 0, -1)})


@pytest.mark.parametrize("axis", [0, 1, -1])
def test_gather_elements(axis: int) -> None:
    x = RNG.standard_normal((3, 4)).astype(np.float32)
    idx = np.array([[0, -1, 2], [1, 1, 0]], dtype=np.int64)
    check("GatherElements", {"x": x, "i": idx}, {"axis": axis})


# --------------------------------------------------------------------------- pad


@pytest.mark.parametrize("mode", ["constant", "reflect", "edge"])
@pytest.mark.parametrize("pads", [(0, 1, 2, 0, 1, 1), (0, 0, 0, 0, 0, 0), (1, 0, 1, 1, 2, 3)])
def test_pad_modes(mode: str, pads: tuple[int, ...]) -> None:
    check("Pad", {"x": X}, {"mode": mode}, {"pads": i64s(*pads)}, opset=13)


def test_pad_wrap_opset19() -> None:
    check("Pad", {"x": X}, {"mode": "wrap"}, {"pads": i64s(0, 2, 1, 1, 1, 5)}, opset=19)


def test_pad_negative_pads_crop() -> None:
    check("Pad", {"x": X}, {}, {"pads": i64s(0, -1, 2, -1, 1, -1)}, opset=13)
    check("Pad", {"x": X}, {"mode": "edge"}, {"pads": i64s(0, -1, 2, 1, 1, -2)}, opset=13)
    check("Pad", {"x": X}, {"mode": "reflect"}, {"pads": i64s(0, -1, 2, 0, 1, -1)}, opset=13)
    check("Pad", {"x": X}, {"mode": "wrap"}, {"pads": i64s(0, 1, -2, 0, 4, 1)}, opset=19)


@pytest.mark.parametrize("dtype", [np.float32, np.int64, np.int32, np.float64])
def test_pad_constant_value(dtype: type) -> None:
    x = as_dtype(X, dtype)
    init = {"pads": i64s(1, 0, 0, 0, 2, 1), "value": np.array(7, dtype=dtype)}
    check("Pad", {"x": x}, {}, init, opset=13)


def test_pad_attributes_before_opset11() -> None:
    check("Pad", {"x": X}, {"pads": [0, 1, 1, 0, 1, 2], "value": 1.5}, opset=2)
    check("Pad", {"x": X}, {"pads": [0, 1, 1, 0, 1, 2], "mode": "reflect"}, opset=10)


def test_pad_axes_opset18() -> None:
    init = {"pads": i64s(1, 2, 3, 0), "value": np.array(-1, np.float32), "axes": i64s(-1, 0)}
    check("Pad", {"x": X}, {}, init, opset=18)


# --------------------------------------------------------------------------- expand, tile


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(
    "in_shape, target",
    [((3, 1), (2, 3, 4)), ((1, 4), (3, 1)), ((2, 1, 4), (1,)), ((1,), (2, 0)), ((3,), (3,))],
)
def test_expand(in_shape: tuple[int, ...], target: tuple[int, ...], dtype: type) -> None:
    x = as_dtype(RNG.standard_normal(in_shape), dtype)
    check("Expand", {"x": x}, initializers={"shape": i64s(*target)})


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("repeats", [(1, 1, 1), (2, 1, 3), (1, 0, 2)])
def test_tile(repeats: tuple[int, ...], dtype: type) -> None:
    x = as_dtype(X, dtype)
    check("Tile", {"x": x}, initializers={"repeats": i64s(*repeats)})


# --------------------------------------------------------------------------- folded at import


@pytest.mark.parametrize(
    "attrs", [{}, {"start": 1}, {"end": -1}, {"start": -2, "end": 3}, {"start": 5}, {"end": -9}]
)
def test_shape(attrs: dict) -> None:
    check("Shape", {"x": X}, attrs, opset=15)


def test_shape_and_size_are_constants() -> None:
    module = import_onnx(single_node_model("Shape", {"x": X}))
    assert "graph.constant" in str(module)
    check("Size", {"x": X})


@pytest.mark.parametrize(
    "value", [None, np.array([1.5], np.float32), np.array([3], np.int64), np.array([1], np.bool_)]
)
def test_constant_of_shape(value: np.ndarray | None) -> None:
    from onnx import numpy_helper

    attrs = {} if value is None else {"value": numpy_helper.from_array(value)}
    check("ConstantOfShape", {}, attrs, {"shape": i64s(2, 3)})
    check("ConstantOfShape", {}, attrs, {"shape": i64s(0)})


@pytest.mark.parametrize(
    "start, limit, delta",
    [
        (np.int64(1), np.int64(10), np.int64(3)),
        (np.int32(10), np.int32(-2), np.int32(-4)),
        (np.int64(5), np.int64(1), np.int64(1)),
        (np.float32(0.1), np.float32(3.3), np.float32(0.3)),
        (np.float32(1.0), np.float32(-1.5), np.float32(-0.25)),
        (np.float32(0.1), np.float32(100.0), np.float32(0.1)),  # accumulates like onnxruntime
    ],
)
def test_range(start: np.generic, limit: np.generic, delta: np.generic) -> None:
    init = {"start": np.array(start), "limit": np.array(limit), "delta": np.array(delta)}
    check("Range", {}, initializers=init)


def test_shape_chain_folds_into_reshape() -> None:
    """Shape -> Gather -> Unsqueeze -> Concat -> Reshape: the shape is known at import."""
    import onnx
    from onnx import helper

    nodes = [
        helper.make_node("Shape", ["x"], ["s"]),
        helper.make_node("Gather", ["s", "zero"], ["b"], axis=0),
        helper.make_node("Unsqueeze", ["b", "zero"], ["b1"]),
        helper.make_node("Concat", ["b1", "minus1"], ["target"], axis=0),
        helper.make_node("Reshape", ["x", "target"], ["y"]),
    ]
    graph = helper.make_graph(
        nodes,
        "chain",
        [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, X.shape)],
        [helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, None)],
        [
            onnx.numpy_helper.from_array(i64s(0)[0:1].reshape(()), "zero"),
            onnx.numpy_helper.from_array(i64s(-1), "minus1"),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    text = str(import_onnx(model))
    assert text.count("graph.") == 1 and "graph.reshape" in text
    assert_matches_onnxruntime(model, {"x": X})


# --------------------------------------------------------------------------- verifier


def test_create_infers_result_types() -> None:
    x = constant((2, 3, 4))
    assert sh.TransposeOp.create([x], perm=[2, 0, 1]).output.type == tensor((4, 2, 3), f32)
    split = sh.SplitOp.create([x], axis=2, sizes=[1, 3])
    assert [r.type for r in split.outputs] == [tensor((2, 3, 1), f32), tensor((2, 3, 3), f32)]
    sliced = sh.SliceOp.create([x], starts=[1, 2, 0], ends=[2, -1, 4], steps=[1, -1, 3])
    assert sliced.output.type == tensor((1, 3, 2), f32)
    pad = sh.PadOp.create([x], pads=[0, 1, -1, 0, 1, 2], mode="constant")
    assert pad.output.type == tensor((2, 5, 5), f32)
    idx = constant((5,), np.int64)
    assert sh.GatherOp.create([x, idx], axis=1).output.type == tensor((2, 5, 4), f32)


@pytest.mark.parametrize(
    "build, message",
    [
        (lambda x: sh.TransposeOp.create([x], perm=[0, 0, 1]), "not a permutation"),
        (lambda x: sh.TransposeOp.create([x], perm=[1, 0]), "not a permutation"),
        (lambda x: sh.ConcatOp.create([x, constant((2, 4, 4))], axis=2), "differs from"),
        (lambda x: sh.ConcatOp.create([x, x], axis=-1), "out of range"),
        (lambda x: sh.ConcatOp.create([x, constant((2, 3, 4), np.int64)], axis=0), "element"),
        (lambda x: sh.SplitOp.create([x], axis=1, sizes=[1, 1]), "sum to 2"),
        (lambda x: sh.SplitOp.create([x], axis=3, sizes=[4]), "out of range"),
        (lambda x: sh.SliceOp.create([x], starts=[0], ends=[1], steps=[1]), "3 entries"),
        (
            lambda x: sh.SliceOp.create([x], starts=[0, 0, 0], ends=[2, 3, 5], steps=[1] * 3),
            "end 5",
        ),
        (lambda x: sh.SliceOp.create([x], starts=[0, 0, 0], ends=[2, 3, 4], steps=[1, 0, 1]), "0"),
        (lambda x: sh.GatherOp.create([x, constant((2,))], axis=0), "integer tensor"),
        (lambda x: sh.PadOp.create([x], pads=[0, 1], mode="constant"), "6 entries"),
        (lambda x: sh.PadOp.create([x], pads=[0] * 6, mode="mirror"), "mode must be"),
        (lambda x: sh.PadOp.create([x], pads=[0, 0, 4, 0, 0, 0], mode="reflect"), "less than"),
        (lambda x: sh.PadOp.create([x], pads=[0, 0, -5, 0, 0, 0], mode="constant"), "crops"),
        (lambda x: sh.ExpandOp.create([x], shape=[5, 4]), "cannot broadcast"),
        (lambda x: sh.TileOp.create([x], repeats=[1, 2]), "3 entries"),
        (lambda x: sh.ReshapeOp.create([x]), "explicit result type"),
    ],
)
def test_invalid_ops_raise(build, message: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(GraphError, match=message):
        build(constant((2, 3, 4)))


def test_reshape_verifier() -> None:
    x = constant((2, 3))
    sh.ReshapeOp.to(x.result, (3, 2)).verify()
    with pytest.raises(GraphError, match="number of elements"):
        sh.ReshapeOp.to(x.result, (4, 2)).verify()
    bad = sh.ReshapeOp.create([x], result_types=[tensor((6,), i64)])
    with pytest.raises(GraphError, match="element type"):
        bad.verify()


def test_pad_float_value_for_integers_is_invalid() -> None:
    op = sh.PadOp.create(
        [constant((2,), np.int64)], pads=[1, 1], mode="constant", value=FloatAttr(1.5, f32)
    )
    with pytest.raises(GraphError, match="must be an integer"):
        op.verify()


def test_invalid_onnx_node_is_reported() -> None:
    model = single_node_model("Reshape", {"x": X}, initializers={"shape": i64s(5, -1)})
    with pytest.raises(OnnxImportError, match="invalid node: Reshape cannot infer"):
        import_onnx(model)
