"""Small valid ONNX models: the seeds the ONNX fuzzer mutates (opset 17, IR version 8;
`attention` opset 23, IR version 10).

Every seed imports, compiles and runs; `SEEDS` maps a name to a function building it
fresh (the fuzzer mutates the protobuf in place).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

F32 = TensorProto.FLOAT
I64 = TensorProto.INT64


def _model(
    nodes: Sequence[onnx.NodeProto],
    inputs: Sequence[tuple[str, int, Sequence[int]]],
    outputs: Sequence[tuple[str, int, Sequence[int]]],
    initializers: dict[str, np.ndarray] | None = None,
    name: str = "seed",
    opset: int = 17,
) -> onnx.ModelProto:
    graph = helper.make_graph(
        list(nodes),
        name,
        [helper.make_tensor_value_info(n, t, list(s)) for n, t, s in inputs],
        [helper.make_tensor_value_info(n, t, list(s)) for n, t, s in outputs],
        [numpy_helper.from_array(np.asarray(a), n) for n, a in (initializers or {}).items()],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8 if opset <= 17 else 10
    return model


def _weights(*shape: int) -> np.ndarray:
    return np.linspace(-1.0, 1.0, int(np.prod(shape)), dtype=np.float32).reshape(shape)


def relu() -> onnx.ModelProto:
    return _model(
        [helper.make_node("Relu", ["x"], ["y"])], [("x", F32, [2, 3])], [("y", F32, [2, 3])]
    )


def add_mul() -> onnx.ModelProto:
    nodes = [helper.make_node("Add", ["x", "y"], ["s"]), helper.make_node("Mul", ["s", "c"], ["z"])]
    return _model(
        nodes,
        [("x", F32, [2, 3]), ("y", F32, [2, 3])],
        [("z", F32, [2, 3])],
        {"c": _weights(3)},
    )


def gemm() -> onnx.ModelProto:
    node = helper.make_node("Gemm", ["x", "w", "b"], ["y"], alpha=1.0, beta=0.5, transB=1)
    return _model(
        [node], [("x", F32, [2, 4])], [("y", F32, [2, 3])], {"w": _weights(3, 4), "b": _weights(3)}
    )


def conv() -> onnx.ModelProto:
    node = helper.make_node(
        "Conv", ["x", "w", "b"], ["y"], kernel_shape=[3, 3], pads=[1, 1, 1, 1], strides=[1, 1]
    )
    relu = helper.make_node("Relu", ["y"], ["z"])
    return _model(
        [node, relu],
        [("x", F32, [1, 2, 5, 5])],
        [("z", F32, [1, 3, 5, 5])],
        {"w": _weights(3, 2, 3, 3), "b": _weights(3)},
    )


def gather() -> onnx.ModelProto:
    node = helper.make_node("Gather", ["table", "idx"], ["y"], axis=0)
    return _model([node], [("idx", I64, [4])], [("y", F32, [4, 3])], {"table": _weights(10, 3)})


def reshape_transpose() -> onnx.ModelProto:
    nodes = [
        helper.make_node("Reshape", ["x", "shape"], ["r"]),
        helper.make_node("Transpose", ["r"], ["y"], perm=[2, 0, 1]),
    ]
    return _model(
        nodes,
        [("x", F32, [2, 3, 4])],
        [("y", F32, [2, 4, 3])],
        {"shape": np.array([4, 3, 2], np.int64)},
    )


def reduce_softmax() -> onnx.ModelProto:
    nodes = [
        helper.make_node("ReduceSum", ["x", "axes"], ["s"], keepdims=1),
        helper.make_node("Sub", ["x", "s"], ["d"]),
        helper.make_node("Softmax", ["d"], ["y"], axis=-1),
    ]
    return _model(
        nodes, [("x", F32, [3, 4])], [("y", F32, [3, 4])], {"axes": np.array([1], np.int64)}
    )


def concat_slice() -> onnx.ModelProto:
    nodes = [
        helper.make_node("Concat", ["x", "y"], ["c"], axis=1),
        helper.make_node("Slice", ["c", "starts", "ends", "axes"], ["z"]),
    ]
    return _model(
        nodes,
        [("x", F32, [2, 3]), ("y", F32, [2, 3])],
        [("z", F32, [2, 4])],
        {
            "starts": np.array([1], np.int64),
            "ends": np.array([5], np.int64),
            "axes": np.array([1], np.int64),
        },
    )


def cast_where() -> onnx.ModelProto:
    nodes = [
        helper.make_node("Greater", ["x", "zero"], ["g"]),
        helper.make_node("Cast", ["x"], ["i"], to=TensorProto.INT32),
        helper.make_node("Cast", ["i"], ["f"], to=F32),
        helper.make_node("Where", ["g", "f", "x"], ["y"]),
    ]
    return _model(
        nodes,
        [("x", F32, [2, 3])],
        [("y", F32, [2, 3])],
        {"zero": np.zeros([1], np.float32)},
    )


def matmul_bias_relu() -> onnx.ModelProto:
    nodes = [
        helper.make_node("MatMul", ["x", "w"], ["m"]),
        helper.make_node("Add", ["m", "b"], ["a"]),
        helper.make_node("Relu", ["a"], ["y"]),
    ]
    return _model(
        nodes, [("x", F32, [2, 4])], [("y", F32, [2, 5])], {"w": _weights(4, 5), "b": _weights(5)}
    )


def maxpool() -> onnx.ModelProto:
    node = helper.make_node("MaxPool", ["x"], ["y"], kernel_shape=[2, 2], strides=[2, 2])
    return _model([node], [("x", F32, [1, 1, 4, 4])], [("y", F32, [1, 1, 2, 2])])


def shape_chain() -> onnx.ModelProto:
    nodes = [
        helper.make_node("Shape", ["x"], ["s"]),
        helper.make_node(
            "ConstantOfShape", ["s"], ["c"], value=numpy_helper.from_array(np.ones(1, np.float32))
        ),
        helper.make_node("Add", ["x", "c"], ["y"]),
    ]
    return _model(nodes, [("x", F32, [2, 3])], [("y", F32, [2, 3])])


def resize() -> onnx.ModelProto:
    """Bilinear 2x upsampling (per-axis tables, `parser.onnx.resize`)."""
    node = helper.make_node("Resize", ["x", "", "scales"], ["y"], mode="linear")
    return _model(
        [node],
        [("x", F32, [1, 1, 3, 4])],
        [("y", F32, [1, 1, 6, 8])],
        {"scales": np.array([1.0, 1.0, 2.0, 2.0], np.float32)},
    )


def attention() -> onnx.ModelProto:
    """The opset-23 Attention operator (imported through its function body)."""
    node = helper.make_node("Attention", ["q", "k", "v"], ["y"], is_causal=1)
    shape = [1, 2, 3, 4]
    return _model(
        [node],
        [("q", F32, shape), ("k", F32, shape), ("v", F32, shape)],
        [("y", F32, shape)],
        opset=23,
    )


def lstm() -> onnx.ModelProto:
    """A bidirectional LSTM over 3 steps (unrolled, `parser.onnx.recurrent`)."""
    node = helper.make_node(
        "LSTM", ["x", "w", "r"], ["y", "y_h"], hidden_size=2, direction="bidirectional"
    )
    return _model(
        [node],
        [("x", F32, [3, 1, 2])],
        [("y", F32, [3, 2, 1, 2]), ("y_h", F32, [2, 1, 2])],
        {"w": _weights(2, 8, 2), "r": _weights(2, 8, 2)},
    )


def scan() -> onnx.ModelProto:
    """A running sum over the rows of x (a Scan, unrolled, `parser.onnx.control_flow`)."""
    body = helper.make_graph(
        [
            helper.make_node("Add", ["s_in", "row"], ["s_out"]),
            helper.make_node("Identity", ["s_out"], ["out"]),
        ],
        "body",
        [helper.make_tensor_value_info(n, F32, [2]) for n in ("s_in", "row")],
        [helper.make_tensor_value_info(n, F32, [2]) for n in ("s_out", "out")],
    )
    node = helper.make_node("Scan", ["s0", "x"], ["s", "ys"], body=body, num_scan_inputs=1)
    return _model(
        [node],
        [("s0", F32, [2]), ("x", F32, [3, 2])],
        [("s", F32, [2]), ("ys", F32, [3, 2])],
    )


SEEDS: dict[str, Callable[[], onnx.ModelProto]] = {
    f.__name__: f
    for f in (
        relu,
        add_mul,
        gemm,
        conv,
        gather,
        reshape_transpose,
        reduce_softmax,
        concat_slice,
        cast_where,
        matmul_bias_relu,
        maxpool,
        shape_chain,
        resize,
        attention,
        lstm,
        scan,
    )
}
