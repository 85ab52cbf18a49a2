"""Operators without a converter of their own import through their ONNX function body
(`parser.onnx.functions`): the expansion's renaming, attribute references, and the
results against onnx's reference evaluator."""

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
from mlc.parser.onnx.functions import expand, has_function_body


def test_expansion_renames_the_body_into_the_calling_graph() -> None:
    node = helper.make_node("ThresholdedRelu", ["x"], ["y"], name="t")
    expansion = expand(node, 22, [None], "t::")
    assert expansion is not None
    assert expansion.opset == 18  # the body is written against opset 18
    outputs = [o for n in expansion.nodes for o in n.output]
    assert outputs[-1] == "y"  # the function's output is the node's
    assert all(o.startswith("t::") for o in outputs[:-1])
    assert all(n.name.startswith("t::") for n in expansion.nodes)
    inputs = {i for n in expansion.nodes for i in n.input}
    assert "x" in inputs and all(i == "x" or i.startswith("t::") for i in inputs)


@pytest.mark.parametrize(("given_alpha", "expected"), [(None, 1.0), (2.5, 2.5)])
def test_attribute_references_take_the_node_then_the_schema_default(
    given_alpha: float | None, expected: float
) -> None:
    attrs = {} if given_alpha is None else {"alpha": given_alpha}
    node = helper.make_node("ThresholdedRelu", ["x"], ["y"], name="t", **attrs)
    expansion = expand(node, 22, [None], "t::")
    assert expansion is not None
    alpha = expansion.nodes[0]
    assert alpha.op_type == "Constant"
    assert [(a.name, a.f) for a in alpha.attribute] == [("value_float", expected)]
    assert not any(a.ref_attr_name for n in expansion.nodes for a in n.attribute)


def test_only_operators_with_a_body_expand() -> None:
    assert has_function_body(helper.make_node("Attention", ["q", "k", "v"], ["y"]), 23)
    assert not has_function_body(helper.make_node("Conv", ["x", "w"], ["y"]), 22)
    assert not has_function_body(helper.make_node("NoSuchOp", ["x"], ["y"]), 22)
    assert expand(helper.make_node("Conv", ["x", "w"], ["y"]), 22, [None, None], "c::") is None
    # an opset past what onnx's schema lookup takes (a fuzzed model) is no body, not a crash
    assert not has_function_body(helper.make_node("NoSuchOp", ["x"], ["y"]), 2**40)


def _attention_model(
    batch: int, q_heads: int, kv_heads: int, q_len: int, kv_len: int, head: int, **attrs: object
) -> onnx.ModelProto:
    f = TensorProto.FLOAT
    inputs = [
        helper.make_tensor_value_info("q", f, [batch, q_heads, q_len, head]),
        helper.make_tensor_value_info("k", f, [batch, kv_heads, kv_len, head]),
        helper.make_tensor_value_info("v", f, [batch, kv_heads, kv_len, head]),
    ]
    node = helper.make_node("Attention", ["q", "k", "v"], ["y"], name="attn", **attrs)
    out = helper.make_tensor_value_info("y", f, [batch, q_heads, q_len, head])
    graph = helper.make_graph([node], "attention", inputs, [out])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 23)])
    model.ir_version = 10
    return model


def _inputs(model: onnx.ModelProto, seed: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    shapes = [[d.dim_value for d in i.type.tensor_type.shape.dim] for i in model.graph.input]
    return [rng.standard_normal(s).astype(np.float32) for s in shapes]


@settings(max_examples=12)
@given(
    heads=st.sampled_from([(2, 2), (4, 2), (3, 1)]),  # (q heads, kv heads): MHA, GQA, MQA
    q_len=st.integers(1, 5),
    kv_len=st.integers(1, 6),
    head=st.integers(1, 6),
    causal=st.booleans(),
    scale=st.sampled_from([None, 0.3]),
    softcap=st.sampled_from([None, 2.0]),
    seed=st.integers(0, 2**16),
)
def test_attention_through_its_function_body_matches_the_reference(
    heads: tuple[int, int],
    q_len: int,
    kv_len: int,
    head: int,
    causal: bool,
    scale: float | None,
    softcap: float | None,
    seed: int,
) -> None:
    attrs: dict[str, object] = {"is_causal": int(causal)}
    if scale is not None:
        attrs["scale"] = scale
    if softcap is not None:
        attrs["softcap"] = softcap
    model = _attention_model(1, heads[0], heads[1], q_len, kv_len, head, **attrs)
    args = _inputs(model, seed)
    expected = ReferenceEvaluator(model).run(None, dict(zip("qkv", args)))[0]
    (actual,) = mlc.interpret(import_onnx(model), *args)
    np.testing.assert_allclose(actual, expected, rtol=1e-5, atol=1e-6)


def test_attention_compiles_natively() -> None:
    model = _attention_model(2, 4, 2, 5, 7, 8, is_causal=1)
    args = _inputs(model, 0)
    expected = ReferenceEvaluator(model).run(None, dict(zip("qkv", args)))[0]
    compiled = mlc.compile(model, cache=False)
    (actual,) = compiled(*args)
    np.testing.assert_allclose(actual, expected, rtol=1e-4, atol=1e-5)


def test_an_unsupported_node_inside_a_body_is_reported_as_the_callers() -> None:
    # Bernoulli's body draws with RandomUniformLike, which mlc does not support
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [3])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [3])
    node = helper.make_node("Bernoulli", ["x"], ["y"], name="coin")
    graph = helper.make_graph([node], "g", [x], [y])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 22)])
    with pytest.raises(OnnxImportError) as info:
        import_onnx(model)
    message = str(info.value)
    assert "node 'coin' (Bernoulli" in message
    assert "function body" in message and "RandomUniformLike" in message
