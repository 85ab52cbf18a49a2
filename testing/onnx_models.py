"""Build small ONNX models and compare mlc's reference semantics with onnxruntime.

model = single_node_model("Relu", {"x": x}, opset=17)
assert_matches_onnxruntime(model, {"x": x})
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import onnx
from onnx import helper

from mlc.dialects.graph.types import element_type_from_numpy
from mlc.interpreters import interpret
from mlc.parser.onnx import import_onnx

_NP_TO_ONNX = {
    np.dtype(np.float32): onnx.TensorProto.FLOAT,
    np.dtype(np.float64): onnx.TensorProto.DOUBLE,
    np.dtype(np.float16): onnx.TensorProto.FLOAT16,
    np.dtype(np.bool_): onnx.TensorProto.BOOL,
    np.dtype(np.int8): onnx.TensorProto.INT8,
    np.dtype(np.int16): onnx.TensorProto.INT16,
    np.dtype(np.int32): onnx.TensorProto.INT32,
    np.dtype(np.int64): onnx.TensorProto.INT64,
    np.dtype(np.uint8): onnx.TensorProto.UINT8,
    np.dtype(np.uint16): onnx.TensorProto.UINT16,
    np.dtype(np.uint32): onnx.TensorProto.UINT32,
    np.dtype(np.uint64): onnx.TensorProto.UINT64,
}


def onnx_dtype(dtype: np.dtype | type) -> int:
    element_type_from_numpy(dtype)  # rejects what mlc cannot represent
    return _NP_TO_ONNX[np.dtype(dtype)]


def single_node_model(
    op_type: str,
    inputs: Mapping[str, np.ndarray],
    attrs: Mapping[str, Any] | None = None,
    *,
    initializers: Mapping[str, np.ndarray] | None = None,
    num_outputs: int = 1,
    opset: int = 17,
    input_order: Sequence[str] | None = None,
) -> onnx.ModelProto:
    """A model with one node; `inputs` become graph inputs, `initializers` constants.

    Node inputs follow `input_order` (names; "" for an omitted optional input), or the
    graph inputs followed by the initializers. Output shapes come from ONNX inference.
    """
    initializers = dict(initializers or {})
    order = list(input_order) if input_order is not None else [*inputs, *initializers]
    outputs = [f"out{i}" for i in range(num_outputs)]
    node = helper.make_node(op_type, order, outputs, **dict(attrs or {}))
    graph = helper.make_graph(
        [node],
        f"{op_type.lower()}_test",
        [helper.make_tensor_value_info(n, onnx_dtype(a.dtype), a.shape) for n, a in inputs.items()],
        [helper.make_tensor_value_info(o, onnx.TensorProto.UNDEFINED, None) for o in outputs],
        [onnx.numpy_helper.from_array(np.asarray(a), n) for n, a in initializers.items()],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = min(model.ir_version, 10)
    return onnx.shape_inference.infer_shapes(model)


def onnxruntime_session(model: onnx.ModelProto, threads: int = 1) -> Any:
    """An onnxruntime CPU session with all graph optimizations and `threads` threads."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3
    return ort.InferenceSession(
        model.SerializeToString(), options, providers=["CPUExecutionProvider"]
    )


def run_onnxruntime(model: onnx.ModelProto, inputs: Mapping[str, np.ndarray]) -> list[np.ndarray]:
    session = onnxruntime_session(model)
    return [np.asarray(r) for r in session.run(None, dict(inputs))]


def assert_matches_onnxruntime(
    model: onnx.ModelProto,
    inputs: Mapping[str, np.ndarray],
    rtol: float = 1e-4,
    atol: float = 1e-5,
) -> list[np.ndarray]:
    """Import + interpret `model` and check every output against onnxruntime.

    Floats: |mlc - ort| <= atol + rtol * |ort|; integers and booleans: exact.
    Returns mlc's outputs.
    """
    expected = run_onnxruntime(model, inputs)
    module = import_onnx(model)
    ordered = [inputs[i.name] for i in model.graph.input if i.name in inputs]
    actual = interpret(module, *ordered)
    assert len(actual) == len(expected), f"{len(actual)} outputs, onnxruntime gave {len(expected)}"
    for i, (a, e) in enumerate(zip(actual, expected)):
        assert a.shape == e.shape, f"output #{i}: shape {a.shape}, onnxruntime {e.shape}"
        assert a.dtype == e.dtype, f"output #{i}: dtype {a.dtype}, onnxruntime {e.dtype}"
        if e.dtype.kind == "f":
            np.testing.assert_allclose(a, e, rtol=rtol, atol=atol, err_msg=f"output #{i}")
        else:
            np.testing.assert_array_equal(a, e, err_msg=f"output #{i}")
    return actual
