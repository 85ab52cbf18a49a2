"""RNN, GRU and LSTM import unrolled (`parser.onnx.recurrent`): against onnxruntime (its
reference evaluator ignores directions, activations, clip and sequence_lens) over
directions, activations with their alpha / beta, clip, sequence lengths, initial
states, peepholes, GRU's linear_before_reset and LSTM's input_forget; natively too."""

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

GATES = {"RNN": 1, "GRU": 3, "LSTM": 4}
PER_DIRECTION = {"RNN": 1, "GRU": 2, "LSTM": 3}
ACTIVATIONS = ["Sigmoid", "Tanh", "Relu", "HardSigmoid", "LeakyRelu", "Softsign", "Elu"]


def _case(draw: st.DrawFn) -> tuple[onnx.ModelProto, dict[str, np.ndarray]]:
    kind = draw(st.sampled_from(sorted(GATES)))
    seq, batch, features, hidden = (draw(st.integers(1, 4)) for _ in range(4))
    direction = draw(st.sampled_from(["forward", "reverse", "bidirectional"]))
    dirs = 2 if direction == "bidirectional" else 1
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    g = GATES[kind] * hidden

    def arr(*shape: int) -> np.ndarray:
        return (0.5 * rng.standard_normal(shape)).astype(np.float32)

    feeds = {"X": arr(seq, batch, features), "W": arr(dirs, g, features), "R": arr(dirs, g, hidden)}
    names = ["X", "W", "R"]
    optional = {
        "B": lambda: arr(dirs, 2 * g),
        "sequence_lens": lambda: rng.integers(1, seq + 1, batch).astype(np.int32),
        "initial_h": lambda: arr(dirs, batch, hidden),
    }
    if kind == "LSTM":
        optional |= {
            "initial_c": lambda: arr(dirs, batch, hidden),
            "P": lambda: arr(dirs, 3 * hidden),
        }
    for name, make in optional.items():
        if draw(st.booleans()):
            feeds[name] = make()
            names.append(name)
        else:
            names.append("")
    while not names[-1]:
        names.pop()
    attrs: dict[str, object] = {"hidden_size": hidden, "direction": direction}
    if draw(st.booleans()):
        acts = [draw(st.sampled_from(ACTIVATIONS)) for _ in range(PER_DIRECTION[kind] * dirs)]
        attrs["activations"] = acts
        if draw(st.booleans()):
            attrs["activation_alpha"] = [draw(st.sampled_from([0.1, 0.3])) for _ in acts]
            attrs["activation_beta"] = [draw(st.sampled_from([0.4, 0.6])) for _ in acts]
    if draw(st.booleans()):
        attrs["clip"] = draw(st.sampled_from([0.5, 2.0]))
    if kind == "GRU":
        attrs["linear_before_reset"] = draw(st.sampled_from([0, 1]))
    if kind == "LSTM":
        attrs["input_forget"] = draw(st.sampled_from([0, 0, 1]))
    outputs = ["Y", "Y_h"] + (["Y_c"] if kind == "LSTM" else [])
    node = helper.make_node(kind, names, outputs, **attrs)
    inputs = [
        helper.make_tensor_value_info(
            n, TensorProto.INT32 if n == "sequence_lens" else TensorProto.FLOAT, feeds[n].shape
        )
        for n in names
        if n
    ]
    outs = [helper.make_tensor_value_info(o, TensorProto.FLOAT, None) for o in outputs]
    model = helper.make_model(
        helper.make_graph([node], "rnn", inputs, outs),
        opset_imports=[helper.make_opsetid("", 14)],
    )
    model.ir_version = 8
    return model, feeds


@settings(max_examples=30)
@given(st.data())
def test_recurrences_match_onnxruntime(data: st.DataObject) -> None:
    model, feeds = _case(data.draw)
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    expected = session.run(None, feeds)
    names = [i.name for i in model.graph.input]
    actual = mlc.interpret(import_onnx(model), *(feeds[n] for n in names))
    for a, e in zip(actual, expected, strict=True):
        np.testing.assert_allclose(a, e, rtol=1e-4, atol=1e-5)


def test_a_bidirectional_lstm_with_sequence_lengths_natively() -> None:
    rng = np.random.default_rng(3)
    seq, batch, features, hidden = 5, 3, 4, 6
    feeds = {
        "X": rng.standard_normal((batch, seq, features)).astype(np.float32),
        "W": rng.standard_normal((2, 4 * hidden, features)).astype(np.float32),
        "R": rng.standard_normal((2, 4 * hidden, hidden)).astype(np.float32),
    }
    node = helper.make_node(
        "LSTM",
        ["X", "W", "R"],
        ["Y", "Y_h", "Y_c"],
        hidden_size=hidden,
        direction="bidirectional",
        layout=1,
    )
    inputs = [
        helper.make_tensor_value_info(n, TensorProto.FLOAT, a.shape) for n, a in feeds.items()
    ]
    outs = [helper.make_tensor_value_info(o, TensorProto.FLOAT, None) for o in ("Y", "Y_h", "Y_c")]
    model = helper.make_model(
        helper.make_graph([node], "lstm", inputs, outs), opset_imports=[helper.make_opsetid("", 14)]
    )
    model.ir_version = 8
    interpreted = mlc.interpret(import_onnx(model), *feeds.values())
    native = mlc.compile(model, cache=False)(*feeds.values())
    assert [a.shape for a in native] == [(batch, seq, 2, hidden), (batch, 2, hidden)] * 1 + [
        (batch, 2, hidden)
    ]
    for n, i in zip(native, interpreted, strict=True):
        np.testing.assert_allclose(n, i, rtol=1e-5, atol=1e-5)


def test_an_unknown_activation_is_refused_with_its_name() -> None:
    node = helper.make_node("RNN", ["X", "W", "R"], ["Y"], hidden_size=2, activations=["Gelu"])
    shapes = {"X": [1, 1, 2], "W": [1, 2, 2], "R": [1, 2, 2]}
    inputs = [helper.make_tensor_value_info(n, TensorProto.FLOAT, s) for n, s in shapes.items()]
    out = helper.make_tensor_value_info("Y", TensorProto.FLOAT, None)
    model = helper.make_model(
        helper.make_graph([node], "rnn", inputs, [out]), opset_imports=[helper.make_opsetid("", 14)]
    )
    with pytest.raises(OnnxImportError, match="activation 'gelu'"):
        import_onnx(model)
