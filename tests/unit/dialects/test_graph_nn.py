"""nn graph ops: import + reference semantics against onnxruntime, and verifier errors."""

import numpy as np
import pytest
from xdsl.dialects.builtin import TensorType, f32
from xdsl.ir import Block

from mlc.dialects.graph import GraphError, nn
from mlc.dialects.graph.types import tensor
from mlc.parser.onnx import OnnxImportError, import_onnx
from mlc.testing.onnx_models import assert_matches_onnxruntime, single_node_model

RNG = np.random.default_rng(0)


def randn(*shape: int, dtype: type = np.float32) -> np.ndarray:
    return RNG.standard_normal(shape).astype(dtype)


def check(op_type, inputs, attrs=None, *, initializers=None, opset=17, rtol=1e-4, atol=1e-5, **kw):
    model = single_node_model(op_type, inputs, attrs, initializers=initializers, opset=opset, **kw)
    return assert_matches_onnxruntime(model, inputs, rtol=rtol, atol=atol)


# --------------------------------------------------------------------------- MatMul / Gemm


@pytest.mark.parametrize(
    "a_shape, b_shape",
    [
        ((3, 4), (4, 5)),
        ((4,), (4, 5)),
        ((3, 4), (4,)),
        ((4,), (4,)),
        ((2, 1, 3, 4), (5, 4, 2)),
        ((6,), (2, 6, 3)),
        ((2, 3, 6), (6,)),
    ],
)
def test_matmul_shapes(a_shape: tuple, b_shape: tuple) -> None:
    check("MatMul", {"a": randn(*a_shape), "b": randn(*b_shape)})


@pytest.mark.parametrize("dtype", [np.float64, np.float16])
def test_matmul_float_types(dtype: type) -> None:
    tol = 1e-2 if dtype == np.float16 else 1e-6
    check("MatMul", {"a": randn(2, 3, 8, dtype=dtype), "b": randn(8, 4, dtype=dtype)}, rtol=tol)


@pytest.mark.parametrize("dtype", [np.int32, np.int64, np.uint32])
def test_matmul_integer_is_exact(dtype: type) -> None:
    a = RNG.integers(0, 1000, (2, 3, 5)).astype(dtype)
    b = RNG.integers(0, 1000, (5, 4)).astype(dtype)
    check("MatMul", {"a": a, "b": b})


@pytest.mark.parametrize(
    "attrs, c_shape",
    [
        ({}, (5,)),
        ({"alpha": 0.5, "beta": 2.0}, (3, 5)),
        ({"transA": 1}, (1, 5)),
        ({"transB": 1, "alpha": -1.5}, (3, 1)),
        ({"transA": 1, "transB": 1, "beta": 0.25}, ()),
        ({"transB": 1}, None),
    ],
)
def test_gemm(attrs: dict, c_shape: tuple | None) -> None:
    a = randn(4, 3) if attrs.get("transA") else randn(3, 4)
    b = randn(5, 4) if attrs.get("transB") else randn(4, 5)
    inputs = {"a": a, "b": b}
    if c_shape is not None:
        inputs["c"] = randn(*c_shape)
    check("Gemm", inputs, attrs)


@pytest.mark.parametrize("opset", [7, 9, 13])
def test_gemm_opsets_and_constant_weights(opset: int) -> None:
    a = randn(3, 4, dtype=np.float64)
    attrs = {"transB": 1}
    weights = {"w": randn(5, 4, dtype=np.float64), "bias": randn(5, dtype=np.float64)}
    check("Gemm", {"a": a}, attrs, initializers=weights, opset=opset)


# --------------------------------------------------------------------------- Conv


def conv_inputs(x_shape, w_shape, bias=True, dtype=np.float32):
    inputs = {"x": randn(*x_shape, dtype=dtype), "w": randn(*w_shape, dtype=dtype)}
    if bias:
        inputs["b"] = randn(w_shape[0], dtype=dtype)
    return inputs


@pytest.mark.parametrize(
    "x_shape, w_shape, attrs",
    [
        ((1, 3, 7, 7), (4, 3, 3, 3), {}),
        ((2, 3, 8, 9), (4, 3, 3, 3), {"pads": [1, 1, 1, 1]}),
        ((1, 2, 9, 8), (3, 2, 3, 2), {"strides": [2, 3], "pads": [1, 0, 2, 1]}),
        ((1, 2, 10, 10), (3, 2, 3, 3), {"dilations": [2, 3], "pads": [2, 1, 0, 3]}),
        ((1, 4, 6, 6), (6, 2, 3, 3), {"group": 2, "pads": [1, 1, 1, 1]}),
        ((2, 6, 7, 7), (6, 1, 3, 3), {"group": 6, "strides": [2, 2], "pads": [1, 1, 1, 1]}),
        ((1, 3, 11, 10), (4, 3, 3, 3), {"auto_pad": "SAME_UPPER", "strides": [2, 2]}),
        ((1, 3, 11, 10), (4, 3, 4, 2), {"auto_pad": "SAME_LOWER", "strides": [2, 3]}),
        ((1, 3, 11, 10), (4, 3, 3, 3), {"auto_pad": "VALID", "strides": [2, 2]}),
        ((1, 3, 7, 7), (4, 3, 3, 3), {"kernel_shape": [3, 3], "strides": [2, 2]}),
        ((2, 3, 12), (5, 3, 4), {"strides": [2], "pads": [2, 1]}),
        ((1, 2, 5, 6, 7), (3, 2, 2, 3, 2), {"pads": [1, 0, 1, 0, 1, 1], "strides": [1, 2, 2]}),
        ((1, 4, 5, 6, 5), (4, 2, 3, 3, 3), {"group": 2, "dilations": [1, 2, 1]}),
    ],
)
@pytest.mark.parametrize("bias", [True, False])
def test_conv(x_shape: tuple, w_shape: tuple, attrs: dict, bias: bool) -> None:
    check("Conv", conv_inputs(x_shape, w_shape, bias), attrs)


def run_mlc(model, *inputs: np.ndarray) -> list[np.ndarray]:
    from mlc.interpreters import interpret

    return interpret(import_onnx(model), *inputs)


def test_conv_f16() -> None:
    inputs = conv_inputs((1, 3, 6, 6), (4, 3, 3, 3), dtype=np.float16)
    check("Conv", inputs, {"pads": [1, 1, 1, 1]}, rtol=1e-2, atol=1e-2)


def test_conv_f64_agrees_with_onnxruntime_f32() -> None:
    # onnxruntime has no f64 Conv kernel: compare with its f32 result
    inputs = conv_inputs((1, 3, 6, 6), (4, 3, 3, 3), dtype=np.float64)
    attrs = {"pads": [1, 0, 1, 2], "strides": [2, 1]}
    (y,) = run_mlc(single_node_model("Conv", inputs, attrs), *inputs.values())
    assert y.dtype == np.float64
    inputs32 = {k: v.astype(np.float32) for k, v in inputs.items()}
    (y32,) = check("Conv", inputs32, attrs)
    np.testing.assert_allclose(y, y32, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize(
    "auto_pad, pads", [("SAME_UPPER", [1, 2, 2, 2]), ("SAME_LOWER", [2, 2, 1, 2])]
)
def test_conv_same_padding_with_dilations(auto_pad: str, pads: list) -> None:
    # onnxruntime rejects auto_pad=SAME with dilations; ONNX pads the dilated kernel
    # (here 5 x 5, stride 2 on 8 x 9 -> total pads 3 and 4) to get ceil(size / stride)
    inputs = conv_inputs((1, 2, 8, 9), (3, 2, 3, 3))
    attrs = {"strides": [2, 1], "dilations": [2, 2]}
    (y,) = run_mlc(
        single_node_model("Conv", inputs, {**attrs, "auto_pad": auto_pad}), *inputs.values()
    )
    (expected,) = check("Conv", inputs, {**attrs, "pads": pads})
    np.testing.assert_array_equal(y, expected)


@pytest.mark.parametrize("opset", [1, 11])
def test_conv_constant_weights_old_opsets(opset: int) -> None:
    weights = {"w": randn(4, 3, 3, 3), "b": randn(4)}
    check("Conv", {"x": randn(1, 3, 6, 6)}, {"strides": [2, 2]}, initializers=weights, opset=opset)


@pytest.mark.parametrize(
    "x_shape, w_shape, attrs",
    [
        ((1, 3, 4, 4), (3, 2, 3, 3), {}),
        ((1, 3, 4, 5), (3, 2, 3, 3), {"strides": [2, 3], "pads": [1, 0, 1, 2]}),
        ((1, 3, 4, 4), (3, 2, 3, 3), {"strides": [2, 2], "output_padding": [1, 0]}),
        ((1, 4, 3, 3), (4, 1, 2, 2), {"group": 2, "dilations": [2, 1]}),
        ((1, 2, 3, 3), (2, 2, 3, 3), {"strides": [2, 2], "output_shape": [8, 7]}),
        ((1, 2, 3, 3), (2, 2, 3, 3), {"strides": [2, 2], "output_shape": [6, 5]}),
        ((1, 2, 3, 3), (2, 2, 3, 3), {"strides": [2, 2], "auto_pad": "SAME_LOWER"}),
        ((1, 2, 3, 3), (2, 2, 3, 3), {"strides": [2, 2], "auto_pad": "SAME_UPPER"}),
        ((2, 3, 5), (3, 2, 3), {"strides": [3]}),
        ((1, 2, 3, 2, 3), (2, 1, 2, 2, 2), {"strides": [2, 1, 2]}),
    ],
)
def test_conv_transpose(x_shape: tuple, w_shape: tuple, attrs: dict) -> None:
    inputs = {
        "x": randn(*x_shape),
        "w": randn(*w_shape),
        "b": randn(w_shape[1] * attrs.get("group", 1)),
    }
    check("ConvTranspose", inputs, attrs)


# --------------------------------------------------------------------------- pools


POOL_CASES = [
    ((1, 3, 8, 8), {"kernel_shape": [2, 2], "strides": [2, 2]}),
    ((2, 2, 7, 9), {"kernel_shape": [3, 2], "strides": [2, 3], "pads": [1, 0, 1, 1]}),
    ((1, 2, 7, 7), {"kernel_shape": [3, 3], "strides": [2, 2], "ceil_mode": 1}),
    (
        (1, 2, 6, 6),
        {"kernel_shape": [3, 3], "strides": [2, 2], "pads": [1, 1, 1, 1], "ceil_mode": 1},
    ),
    ((1, 2, 9, 9), {"kernel_shape": [3, 3], "dilations": [2, 2], "pads": [1, 2, 1, 0]}),
    ((1, 2, 9, 8), {"kernel_shape": [3, 3], "strides": [2, 2], "auto_pad": "SAME_UPPER"}),
    ((1, 2, 9, 8), {"kernel_shape": [2, 3], "strides": [2, 2], "auto_pad": "SAME_LOWER"}),
    ((1, 2, 9, 8), {"kernel_shape": [3, 3], "strides": [2, 2], "auto_pad": "VALID"}),
    ((2, 3, 11), {"kernel_shape": [4], "strides": [3], "pads": [2, 1]}),
    (
        (1, 2, 5, 6, 7),
        {"kernel_shape": [2, 3, 2], "strides": [2, 1, 2], "pads": [1, 1, 0, 0, 1, 1]},
    ),
]


@pytest.mark.parametrize("shape, attrs", POOL_CASES)
def test_max_pool(shape: tuple, attrs: dict) -> None:
    check("MaxPool", {"x": randn(*shape)}, attrs)


@pytest.mark.parametrize("shape, attrs", POOL_CASES)
@pytest.mark.parametrize("count_include_pad", [0, 1])
def test_average_pool(shape: tuple, attrs: dict, count_include_pad: int) -> None:
    attrs = {**attrs, "count_include_pad": count_include_pad}
    check("AveragePool", {"x": randn(*shape)}, attrs, opset=19)


@pytest.mark.parametrize("shape, attrs", POOL_CASES[:3])
def test_lp_pool(shape: tuple, attrs: dict) -> None:
    check("LpPool", {"x": randn(*shape)}, {**attrs, "p": 3}, opset=18)


@pytest.mark.parametrize("dtype", [np.int8, np.uint8])
def test_max_pool_integers(dtype: type) -> None:
    x = RNG.integers(0, 100, (1, 2, 6, 6)).astype(dtype)
    attrs = {"kernel_shape": [3, 3], "strides": [2, 2], "pads": [1, 1, 1, 1]}
    check("MaxPool", {"x": x}, attrs, opset=12)


@pytest.mark.parametrize("storage_order", [0, 1])
@pytest.mark.parametrize(
    "shape, attrs", [POOL_CASES[1], POOL_CASES[3], POOL_CASES[8], POOL_CASES[9]]
)
def test_max_pool_indices(shape: tuple, attrs: dict, storage_order: int) -> None:
    attrs = {**attrs, "storage_order": storage_order}
    check("MaxPool", {"x": randn(*shape)}, attrs, num_outputs=2)


@pytest.mark.parametrize("op_type", ["MaxPool", "AveragePool"])
@pytest.mark.parametrize("opset", [1, 7, 8, 10])
def test_pool_old_opsets(op_type: str, opset: int) -> None:
    if op_type == "AveragePool" and opset < 7:
        pytest.skip("onnxruntime implements AveragePool from opset 7")
    attrs = {"kernel_shape": [3, 3], "strides": [2, 2], "pads": [1, 1, 0, 0]}
    check(op_type, {"x": randn(1, 2, 7, 7)}, attrs, opset=opset)


@pytest.mark.parametrize("op_type", ["GlobalAveragePool", "GlobalMaxPool"])
@pytest.mark.parametrize("shape", [(2, 3, 5), (1, 3, 4, 5), (1, 2, 3, 4, 2)])
def test_global_pools(op_type: str, shape: tuple) -> None:
    check(op_type, {"x": randn(*shape)})


# --------------------------------------------------------------------------- normalization


def bn_params(c: int, dtype: type = np.float32) -> dict[str, np.ndarray]:
    return {
        "scale": randn(c, dtype=dtype),
        "bias": randn(c, dtype=dtype),
        "mean": randn(c, dtype=dtype),
        "var": (np.abs(randn(c)) + 0.5).astype(dtype),
    }


@pytest.mark.parametrize("shape", [(2, 3), (2, 3, 5), (2, 3, 4, 5), (1, 3, 2, 3, 2)])
def test_batch_norm(shape: tuple) -> None:
    check("BatchNormalization", {"x": randn(*shape)}, {"epsilon": 1e-3}, initializers=bn_params(3))


@pytest.mark.parametrize("opset, attrs", [(7, {"spatial": 1}), (9, {}), (14, {"training_mode": 0})])
def test_batch_norm_opsets(opset: int, attrs: dict) -> None:
    check(
        "BatchNormalization", {"x": randn(2, 3, 4)}, attrs, initializers=bn_params(3), opset=opset
    )


@pytest.mark.parametrize("dtype, tol", [(np.float64, 1e-7), (np.float16, 1e-2)])
def test_batch_norm_float_types(dtype: type, tol: float) -> None:
    inputs = {"x": randn(2, 3, 4, 4, dtype=dtype), **bn_params(3, dtype)}
    check("BatchNormalization", inputs, rtol=tol, atol=tol)


def test_batch_norm_spatial_0_uses_per_activation_parameters() -> None:
    x = randn(2, 3, 4)
    params = {k: np.broadcast_to(v[:, None], (3, 4)).copy() for k, v in bn_params(3).items()}
    params = {k: v + RNG.random((3, 4)).astype(np.float32) for k, v in params.items()}
    model = single_node_model(
        "BatchNormalization", {"x": x}, {"spatial": 0}, initializers=params, opset=7
    )
    (y,) = run_mlc(model, x)
    p = params
    expected = (x - p["mean"]) / np.sqrt(p["var"] + 1e-5) * p["scale"] + p["bias"]
    np.testing.assert_allclose(y, expected, rtol=1e-5, atol=1e-6)


def test_batch_norm_training_is_unsupported() -> None:
    model = single_node_model(
        "BatchNormalization",
        {"x": randn(2, 3, 4)},
        {"training_mode": 1},
        initializers=bn_params(3),
        opset=15,
        num_outputs=3,
    )
    with pytest.raises(OnnxImportError, match="training_mode=1"):
        import_onnx(model)
    old = single_node_model(
        "BatchNormalization", {"x": randn(2, 3, 4)}, initializers=bn_params(3), opset=6
    )
    with pytest.raises(OnnxImportError, match="is_test=0"):
        import_onnx(old)


def test_instance_norm() -> None:
    params = {"scale": randn(3), "bias": randn(3)}
    check("InstanceNormalization", {"x": randn(2, 3, 4, 5)}, {"epsilon": 1e-3}, initializers=params)


@pytest.mark.parametrize(
    "shape, axis", [((2, 3, 4), -1), ((2, 3, 4), 1), ((2, 3, 4), 0), ((4, 6), -2)]
)
@pytest.mark.parametrize("bias", [True, False])
def test_layer_norm(shape: tuple, axis: int, bias: bool) -> None:
    norm = shape[axis:]
    inputs = {"x": randn(*shape), "scale": randn(*norm)}
    if bias:
        inputs["b"] = randn(*norm)
    check("LayerNormalization", inputs, {"axis": axis, "epsilon": 1e-3})


def test_layer_norm_mean_and_inv_std_dev_outputs() -> None:
    inputs = {"x": randn(2, 3, 4), "scale": randn(4), "b": randn(4)}
    check("LayerNormalization", inputs, {"axis": -1}, num_outputs=3)


def test_layer_norm_f16_with_statistics_in_f32() -> None:
    inputs = {"x": randn(2, 8, dtype=np.float16), "scale": randn(8, dtype=np.float16)}
    check("LayerNormalization", inputs, num_outputs=3, rtol=1e-2, atol=1e-2)


@pytest.mark.parametrize("size", [1, 3, 5])
def test_lrn(size: int) -> None:
    attrs = {"size": size, "alpha": 0.01, "beta": 0.6, "bias": 2.0}
    check("LRN", {"x": randn(2, 6, 3, 4)}, attrs)


def test_lrn_even_size() -> None:
    # onnxruntime requires an odd size; ONNX sums channels [c - 1, c + 2] for size 4
    x = randn(1, 6, 2, 3)
    (y,) = run_mlc(single_node_model("LRN", {"x": x}, {"size": 4, "alpha": 0.1}), x)
    sq = np.pad(x**2, [(0, 0), (1, 2), (0, 0), (0, 0)])
    window = sum(sq[:, i : i + 6] for i in range(4))
    np.testing.assert_allclose(y, x / (1 + 0.1 / 4 * window) ** 0.75, rtol=1e-5)


# --------------------------------------------------------------------------- softmax


@pytest.mark.parametrize("op_type", ["Softmax", "LogSoftmax", "Hardmax"])
@pytest.mark.parametrize("opset", [11, 13])
@pytest.mark.parametrize("axis", [None, 0, 1, 2, -1])
def test_softmax_family(op_type: str, opset: int, axis: int | None) -> None:
    x = randn(2, 3, 4) * 3
    check(op_type, {"x": x}, {} if axis is None else {"axis": axis}, opset=opset)


def test_softmax_f16() -> None:
    x = randn(3, 5, dtype=np.float16)
    check("Softmax", {"x": x}, rtol=1e-2, atol=1e-3)


# --------------------------------------------------------------------------- whole models


def test_tiny_resnet_example_matches_onnxruntime() -> None:
    from pathlib import Path

    import onnx

    model = onnx.load(Path(__file__).parents[3] / "examples" / "tiny_resnet.onnx")
    x = randn(1, 3, 32, 32)
    assert_matches_onnxruntime(model, {model.graph.input[0].name: x}, rtol=1e-3, atol=1e-4)


# --------------------------------------------------------------------------- verifier


def value(shape: tuple, element_type=f32):
    block = Block(arg_types=[tensor(shape, element_type)])
    return block.args[0]


CONV_PROPS = {"strides": [1, 1], "pads": [0, 0, 0, 0], "dilations": [1, 1]}
POOL_PROPS = {**CONV_PROPS, "kernel_shape": [2, 2], "ceil_mode": False}


def test_created_ops_infer_their_types() -> None:
    op = nn.ConvOp.create([value((1, 4, 8, 8)), value((6, 2, 3, 3))], **CONV_PROPS, group=2)
    assert op.bias is None
    assert op.output.type == tensor((1, 6, 6, 6), f32)
    op.verify()
    mm = nn.MatMulOp.create([value((5, 1, 2, 3)), value((4, 3, 7))])
    assert isinstance(mm.output.type, TensorType)
    assert tuple(mm.output.type.get_shape()) == (5, 4, 2, 7)


@pytest.mark.parametrize(
    "build, message",
    [
        (
            lambda: nn.ConvOp.create(
                [value((1, 4, 8, 8)), value((6, 3, 3, 3))], **CONV_PROPS, group=1
            ),
            "input has 4 channels",
        ),
        (
            lambda: nn.ConvOp.create(
                [value((1, 4, 8, 8)), value((5, 2, 3, 3))], **CONV_PROPS, group=2
            ),
            "not divisible by group",
        ),
        (
            lambda: nn.ConvOp.create(
                [value((1, 4, 8, 8)), value((6, 4, 3, 3)), value((5,))], **CONV_PROPS, group=1
            ),
            "bias must have shape",
        ),
        (
            lambda: nn.ConvOp.create(
                [value((1, 4, 8, 8)), value((6, 4, 3, 3))],
                strides=[1],
                pads=[0, 0, 0, 0],
                dilations=[1, 1],
                group=1,
            ),
            "strides has 1 values",
        ),
        (
            lambda: nn.ConvOp.create(
                [value((1, 4, 2, 2)), value((6, 4, 3, 3))], **CONV_PROPS, group=1
            ),
            "does not fit",
        ),
        (lambda: nn.MatMulOp.create([value((2, 3)), value((4, 5))]), "contraction"),
        (lambda: nn.MatMulOp.create([value((2, 2, 3)), value((3, 3, 5))]), "do not broadcast"),
        (
            lambda: nn.MaxPoolOp.create([value((1, 3, 8, 8))], **{**POOL_PROPS, "pads": [0, 0]}),
            "pads has 2 values",
        ),
        (
            lambda: nn.BatchNormOp.create(
                [value((2, 3, 4)), value((3,)), value((3,)), value((4,)), value((3,))],
                epsilon=1e-5,
            ),
            "mean must have shape",
        ),
        (lambda: nn.SoftmaxOp.create([value((2, 3))], axes=[2]), "out of range"),
        (
            lambda: nn.GemmOp.create(
                [value((2, 3)), value((3, 4)), value((3,))],
                alpha=1.0,
                beta=1.0,
                trans_a=False,
                trans_b=False,
            ),
            "broadcast",
        ),
    ],
)
def test_invalid_ops_are_rejected(build, message: str) -> None:
    with pytest.raises(GraphError, match=message):
        build()


def test_invalid_conv_node_is_reported_by_the_importer() -> None:
    model = single_node_model("Conv", {"x": randn(1, 4, 8, 8), "w": randn(6, 3, 3, 3)})
    with pytest.raises(OnnxImportError, match="input has 4 channels"):
        import_onnx(model)
