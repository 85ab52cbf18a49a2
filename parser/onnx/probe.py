"""Linear operators whose tables come from onnx's reference evaluator at import time.

Resize along one axis and DFT are linear in their input for fixed attributes and sizes:
running onnx's reference implementation once on a probe input (an identity or one-hot
basis) gives their matrix, so mlc's tables match onnx's semantics by construction
(`parser.onnx.resize`, `parser.onnx.spectral`).

    y = reference_run(helper.make_node("DFT", ["x"], ["y"], axis=1), basis, [], opset=20)
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import onnx
from onnx import TensorProto, helper

__all__ = ["reference_run"]


def reference_run(
    node: onnx.NodeProto, x: np.ndarray, initializers: Sequence[onnx.TensorProto], opset: int
) -> np.ndarray:
    """`node`'s output #0 for the float64 input `x` (its input "x"; the other inputs
    `initializers`), by onnx's reference evaluator at `opset`."""
    from onnx.reference import ReferenceEvaluator

    graph = helper.make_graph(
        [node],
        "probe",
        [helper.make_tensor_value_info("x", TensorProto.DOUBLE, list(x.shape))],
        [helper.make_tensor_value_info(node.output[0], TensorProto.DOUBLE, None)],
        list(initializers),
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    return np.asarray(ReferenceEvaluator(model).run(None, {"x": x})[0])
