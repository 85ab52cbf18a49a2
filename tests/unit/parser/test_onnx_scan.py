"""Scan imports unrolled over its static trip count, If as the branch a constant picks or
a Where of both (`parser.onnx.control_flow`). Scan
against onnxruntime over input / output axes and directions, states, a body that reads
an outer value; natively too."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from onnx import TensorProto, helper

import mlc
from mlc.parser.onnx import OnnxImportError, import_onnx

ort = pytest.importorskip("onnxruntime")
F = TensorProto.FLOAT


def _model(
    steps: int, width: int, in_axis: int, in_reverse: bool, out_axis: int, out_reverse: bool
) -> onnx.ModelProto:
    """A running sum and product of the rows of `x` (read along `in_axis`), each step's
    sum times the outer value `scale` stacked as the scan output."""
    body = helper.make_graph(
        [
            helper.make_node("Add", ["sum_in", "row"], ["sum_out"]),
            helper.make_node("Mul", ["prod_in", "row"], ["prod_out"]),
            helper.make_node("Mul", ["sum_out", "scale"], ["scaled"]),
        ],
        "body",
        [helper.make_tensor_value_info(n, F, [width]) for n in ("sum_in", "prod_in", "row")],
        [helper.make_tensor_value_info(n, F, [width]) for n in ("sum_out", "prod_out", "scaled")],
    )
    node = helper.make_node(
        "Scan",
        ["s0", "p0", "x"],
        ["s", "p", "ys"],
        body=body,
        num_scan_inputs=1,
        scan_input_axes=[in_axis],
        scan_input_directions=[int(in_reverse)],
        scan_output_axes=[out_axis],
        scan_output_directions=[int(out_reverse)],
    )
    x_shape = [steps, width] if in_axis == 0 else [width, steps]
    graph = helper.make_graph(
        [helper.make_node("Constant", [], ["scale"], value_float=0.5), node],
        "scan",
        [
            helper.make_tensor_value_info("s0", F, [width]),
            helper.make_tensor_value_info("p0", F, [width]),
            helper.make_tensor_value_info("x", F, x_shape),
        ],
        [helper.make_tensor_value_info(n, F, None) for n in ("s", "p", "ys")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 16)])
    model.ir_version = 8
    return model


@settings(max_examples=20)
@given(
    steps=st.integers(1, 5),
    width=st.integers(1, 4),
    in_axis=st.sampled_from([0, 1]),
    in_reverse=st.booleans(),
    out_axis=st.sampled_from([0, 1, -1]),
    out_reverse=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_scan_matches_onnxruntime(
    steps: int,
    width: int,
    in_axis: int,
    in_reverse: bool,
    out_axis: int,
    out_reverse: bool,
    seed: int,
) -> None:
    model = _model(steps, width, in_axis, in_reverse, out_axis, out_reverse)
    rng = np.random.default_rng(seed)
    x_shape = [steps, width] if in_axis == 0 else [width, steps]
    feeds = {
        "s0": rng.standard_normal(width).astype(np.float32),
        "p0": rng.standard_normal(width).astype(np.float32),
        "x": rng.standard_normal(x_shape).astype(np.float32),
    }
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    expected = session.run(None, feeds)
    actual = mlc.interpret(import_onnx(model), *feeds.values())
    for a, e in zip(actual, expected, strict=True):
        np.testing.assert_allclose(a, e, rtol=1e-5, atol=1e-6)


def test_scan_natively() -> None:
    model = _model(4, 3, 1, True, 0, False)
    rng = np.random.default_rng(0)
    args = [rng.standard_normal(s).astype(np.float32) for s in ([3], [3], [3, 4])]
    interpreted = mlc.interpret(import_onnx(model), *args)
    for n, i in zip(mlc.compile(model, cache=False)(*args), interpreted, strict=True):
        np.testing.assert_allclose(n, i, rtol=1e-6)


def test_a_scan_with_a_batch_axis_is_refused() -> None:
    model = _model(2, 2, 0, False, 0, False)
    model.opset_import[0].version = 8
    with pytest.raises(OnnxImportError, match="Scan before opset 9"):
        import_onnx(model)


def _if_model(condition: bool | None, declared: bool = True) -> onnx.ModelProto:
    """If(c) then x + 1 else x * 2 (both reading the outer `x`); `condition` None: `c` is
    a graph input, else a constant."""
    shape = [3] if declared else None

    def branch(op: str, name: str) -> onnx.GraphProto:
        k = helper.make_node("Constant", [], [f"{name}_k"], value_float=1.0 if op == "Add" else 2.0)
        out = helper.make_node(op, ["x", f"{name}_k"], [f"{name}_y"])
        return helper.make_graph(
            [k, out], name, [], [helper.make_tensor_value_info(f"{name}_y", F, shape)]
        )

    nodes = [
        helper.make_node(
            "If", ["c"], ["y"], then_branch=branch("Add", "then"), else_branch=branch("Mul", "else")
        )
    ]
    inputs = [helper.make_tensor_value_info("x", F, [3])]
    if condition is None:
        inputs.append(helper.make_tensor_value_info("c", TensorProto.BOOL, []))
    else:
        nodes.insert(
            0,
            helper.make_node(
                "Constant",
                [],
                ["c"],
                value=helper.make_tensor("v", TensorProto.BOOL, [], [condition]),
            ),
        )
    graph = helper.make_graph(nodes, "if", inputs, [helper.make_tensor_value_info("y", F, None)])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 16)])
    model.ir_version = 8
    return model


def test_an_if_on_a_constant_is_the_branch_it_picks() -> None:
    x = np.array([1.0, 2.0, 3.0], np.float32)
    for condition, expected in ((True, x + 1), (False, x * 2)):
        module = import_onnx(_if_model(condition))
        assert "graph.where" not in str(module)
        np.testing.assert_array_equal(mlc.interpret(module, x)[0], expected)


def test_an_if_on_a_run_time_condition_selects_between_both_branches() -> None:
    model = _if_model(None)
    x = np.array([1.0, -2.0, 3.0], np.float32)
    compiled = mlc.compile(model, cache=False)
    for c in (True, False):
        flag = np.array(c)
        np.testing.assert_array_equal(compiled(x, flag)[0], x + 1 if c else x * 2)
    with pytest.raises(OnnxImportError, match="declared with one static shape"):
        import_onnx(_if_model(None, declared=False))
