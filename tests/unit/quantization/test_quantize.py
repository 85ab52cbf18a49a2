"""Post-training quantization (`mlc.quantization`): calibrators against hand-computed
ranges, quantize/dequantize round trips, the layer plan, and whole models quantized,
checked against onnx's reference evaluator and run by onnxruntime."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from hypothesis import given
from hypothesis import strategies as st
from onnx import TensorProto, helper, numpy_helper
from onnx.reference import ReferenceEvaluator

from mlc.quantization import (
    CALIBRATORS,
    make_calibrator,
    plan_layers,
    quantize,
)
from mlc.quantization.params import (
    activation_params,
    bias_params,
    quantize_bias,
    weight_params,
)
from mlc.tools.mlc import main as mlc_main

RNG = np.random.default_rng(0)


# ------------------------------------------------------------------ calibrators


def test_minmax_sees_every_batch() -> None:
    cal = make_calibrator("minmax")
    for batch in ([1.0, 2.0], [-3.0, 0.5], [np.nan, 7.0, np.inf]):
        cal.observe(np.array(batch))
    assert cal.range(128) == (-3.0, 7.0)


def test_percentile_clips_the_tail() -> None:
    cal = make_calibrator("percentile")
    cal.observe(np.arange(1000, dtype=np.float64))  # |x| uniform on 0..999
    lo, hi = cal.range(128)
    width = 2 * cal.histogram.limit / cal.histogram.bins
    assert lo == 0.0
    assert 999 - 2 * width <= hi <= 999  # the 99.999th percentile of 1000 values: the top


def test_percentile_on_outliers() -> None:
    cal = make_calibrator("percentile")
    cal.percentile = 99.0  # type: ignore[attr-defined]
    cal.observe(np.concatenate([np.linspace(-1, 1, 9900), np.full(100, 50.0)]))
    lo, hi = cal.range(128)
    assert lo == -1.0 and 0.9 < hi < 1.2  # the 1 % at 50 is clipped


def test_histogram_doubles_without_losing_counts() -> None:
    cal = make_calibrator("entropy")
    cal.observe(np.full(10, 0.5))
    cal.observe(np.full(20, 37.0))
    cal.observe(np.full(5, -300.0))
    hist = cal.histogram
    assert hist.counts.sum() == 35 and hist.limit >= 300
    centers = hist.centers()
    assert abs(centers[np.argmax(hist.counts)] - 37.0) <= hist.width  # type: ignore[attr-defined]


@pytest.mark.parametrize("name", ["entropy", "mse"])
def test_gaussian_thresholds_clip_the_tails_only(name: str) -> None:
    cal = make_calibrator(name)
    x = RNG.standard_normal(100_000)
    cal.observe(x)
    lo, hi = cal.range(128)
    assert lo == -hi  # symmetric data, symmetric clip
    assert 2.5 < hi < np.abs(x).max()


@given(
    data=st.lists(st.floats(-1e4, 1e4), min_size=1, max_size=200),
    name=st.sampled_from(sorted(CALIBRATORS)),
    levels=st.sampled_from([128, 256]),
)
def test_every_range_lies_within_the_observed_extremes(
    data: list[float], name: str, levels: int
) -> None:
    cal = make_calibrator(name)
    cal.observe(np.array(data))
    lo, hi = cal.range(levels)
    assert min(data) <= lo <= hi <= max(data)


# ------------------------------------------------------------------ parameters


@given(
    lo=st.floats(-100, 0),
    width=st.floats(1e-3, 200),
    scheme=st.sampled_from(["u8", "s8"]),
    fractions=st.lists(st.floats(0, 1), min_size=1, max_size=50),
)
def test_round_trips_within_half_a_step(
    lo: float, width: float, scheme: str, fractions: list[float]
) -> None:
    hi = lo + width
    p = activation_params(lo, hi, scheme)
    x = np.array([lo + f * width for f in fractions], np.float32)
    err = np.abs(p.dequantize(p.quantize(x)) - x)
    assert np.all(err <= float(p.scale) * 0.5 * (1 + 1e-5) + 1e-6 * np.abs(x))
    assert p.dequantize(p.quantize(np.zeros(1, np.float32)))[0] == 0  # 0 is exact


@given(
    shape=st.sampled_from([(4, 3, 3, 3), (6, 5), (1, 2)]),
    axis=st.sampled_from([None, 0]),
    seed=st.integers(0, 99),
)
def test_weights_round_trip_per_channel(
    shape: tuple[int, ...], axis: int | None, seed: int
) -> None:
    w = np.random.default_rng(seed).standard_normal(shape).astype(np.float32)
    w[0] = 0.0  # an all-zero channel keeps a usable scale
    p = weight_params(w, axis)
    q = p.quantize(w)
    assert q.dtype == np.int8 and q.min() >= -127
    step = p.scale.reshape((-1,) + (1,) * (w.ndim - 1)) if axis == 0 else p.scale
    assert np.all(np.abs(p.dequantize(q) - w) <= step * 0.5 * (1 + 1e-5))


def test_bias_codes_within_half_a_step() -> None:
    w = weight_params(RNG.standard_normal((4, 8)).astype(np.float32), 0)
    p = bias_params(np.array(0.02, np.float32), w, 4)
    b = RNG.standard_normal(4)
    q = quantize_bias(b, p)
    assert q.dtype == np.int32
    assert np.all(np.abs(q * p.scale.astype(np.float64) - b) <= p.scale * 0.5 + 1e-12)
    np.testing.assert_array_equal(p.scale, np.float32(0.02) * w.scale)


# ------------------------------------------------------------------ models


def small_cnn(batch: int = 2) -> onnx.ModelProto:
    """conv-relu-maxpool-conv-relu-flatten-gemm-softmax on 1x8x8 images."""
    init = [
        numpy_helper.from_array(RNG.standard_normal((4, 1, 3, 3)).astype(np.float32) * 0.5, "w1"),
        numpy_helper.from_array(RNG.standard_normal(4).astype(np.float32) * 0.1, "b1"),
        numpy_helper.from_array(RNG.standard_normal((6, 4, 3, 3)).astype(np.float32) * 0.3, "w2"),
        numpy_helper.from_array(
            RNG.standard_normal((6 * 4 * 4, 10)).astype(np.float32) * 0.2, "w3"
        ),
        numpy_helper.from_array(RNG.standard_normal(10).astype(np.float32) * 0.1, "b3"),
    ]
    nodes = [
        helper.make_node("Conv", ["x", "w1", "b1"], ["c1"], pads=[1] * 4, name="conv1"),
        helper.make_node("Relu", ["c1"], ["r1"], name="relu1"),
        helper.make_node("MaxPool", ["r1"], ["p1"], kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("Conv", ["p1", "w2"], ["c2"], pads=[1] * 4, name="conv2"),
        helper.make_node("Relu", ["c2"], ["r2"], name="relu2"),
        helper.make_node("Flatten", ["r2"], ["f"]),
        helper.make_node("Gemm", ["f", "w3", "b3"], ["logits"], name="fc"),
        helper.make_node("Softmax", ["logits"], ["y"], axis=1, name="softmax"),
    ]
    graph = helper.make_graph(
        nodes,
        "cnn",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [batch, 1, 8, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [batch, 10])],
        init,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model


def samples(n: int) -> np.ndarray:
    return np.abs(RNG.standard_normal((n, 1, 8, 8))).astype(np.float32)


def reference(model: onnx.ModelProto, x: np.ndarray) -> np.ndarray:
    """onnx's reference evaluator (its QDQ kernels need opset 19+: same semantics here)."""
    newer = onnx.ModelProto()
    newer.CopyFrom(model)
    for entry in newer.opset_import:
        if entry.domain in ("", "ai.onnx"):
            entry.version = 21
    return ReferenceEvaluator(newer).run(None, {"x": x})[0]


def test_plan_names_what_stays_float_and_why() -> None:
    plan = plan_layers(small_cnn(), exclude=["conv2"])
    assert [layer.node for layer in plan.layers] == ["conv1", "fc"]
    assert plan.layers[0].output == "r1"  # the relu's output: its range starts at 0
    kept = {k.node: k.reason for k in plan.kept_float}
    assert kept["conv2"] == "excluded"
    assert "no integer kernel" in kept["softmax"]
    assert "relu1" not in kept  # folded into conv1's quantization


def test_plan_refuses_a_transposed_gemm_lhs() -> None:
    model = small_cnn()
    fc = next(n for n in model.graph.node if n.name == "fc")
    fc.attribute.append(helper.make_attribute("transA", 1))
    kept = {k.node: k.reason for k in plan_layers(model).kept_float}
    assert "transA" in kept["fc"]


@pytest.mark.parametrize("calibrator,activations", [("minmax", "u8"), ("entropy", "s8")])
def test_quantized_cnn_matches_the_onnx_reference(calibrator: str, activations: str) -> None:
    model = small_cnn()
    q = quantize(model, samples(16), calibrator=calibrator, activations=activations)
    onnx.checker.check_model(q.model)
    ops = [n.op_type for n in q.model.graph.node]
    assert ops.count("QuantizeLinear") >= 3 and "Softmax" in ops
    text = q.to_mlir()
    assert text.count("graph.conv_integer") == 2 and "graph.matmul_integer" in text
    assert "graph.max_pool" in text and " graph.conv " not in text
    x = samples(2)
    want = reference(q.model, x)
    got = q.compile()(x)
    got = got[0] if isinstance(got, list | tuple) else got
    # integer kernels compute the QDQ program exactly where the reference rounds to f32:
    # the logits may move by one code of their scale, through softmax
    np.testing.assert_allclose(got, want, atol=0.05)
    assert np.mean(np.argmax(got, 1) == np.argmax(want, 1)) >= 0.5
    import onnxruntime as ort

    ort_out = ort.InferenceSession(q.model.SerializeToString()).run(None, {"x": x})[0]
    assert ort_out.shape == want.shape
    float_out = reference(model, x)
    assert np.abs(got - float_out).max() < 0.2  # int8 stays close to float here


def test_fallback_keeps_the_most_sensitive_layers_in_float() -> None:
    q = quantize(small_cnn(), samples(8), fallback=1)
    assert sorted(s.node for s in q.sensitivity) == ["conv1", "conv2", "fc"]
    assert [s.error for s in q.sensitivity] == sorted(
        (s.error for s in q.sensitivity), reverse=True
    )
    worst = q.sensitivity[0].node
    assert q.fallback == [worst]
    assert worst not in [layer.node for layer in q.plan.layers]
    assert "(kept in float)" in q.report()


def test_save_writes_onnx_or_mlir(tmp_path: Path) -> None:
    q = quantize(small_cnn(), samples(4))
    q.save(tmp_path / "m.onnx")
    onnx.checker.check_model(onnx.load(str(tmp_path / "m.onnx")))
    q.save(tmp_path / "m.mlir")
    assert "graph.conv_integer" in (tmp_path / "m.mlir").read_text()
    with pytest.raises(ValueError, match="use .onnx or .mlir"):
        q.save(tmp_path / "m.txt")


def test_calibration_data_must_split_into_model_batches() -> None:
    with pytest.raises(ValueError, match="do not split into batches"):
        quantize(small_cnn(batch=2), samples(3))
    with pytest.raises(ValueError, match="unknown calibrator"):
        quantize(small_cnn(), samples(2), calibrator="kl")


def test_mlc_quantize_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    onnx.save(small_cnn(), str(tmp_path / "m.onnx"))
    np.savez(tmp_path / "cal.npz", x=samples(8))
    out = tmp_path / "m.int8.onnx"
    args = ["quantize", str(tmp_path / "m.onnx"), "--calibrate", str(tmp_path / "cal.npz")]
    assert mlc_main([*args, "-o", str(out), "--calibrator", "percentile"]) == 0
    assert out.exists() and "int8   Conv" in capsys.readouterr().out
    assert mlc_main([*args, "-o", str(tmp_path / "m.txt")]) == 1
    assert "use .onnx or .mlir" in capsys.readouterr().err


def test_batch_norms_fold_into_their_convolutions() -> None:
    from mlc.benchmarks.models import resnet_basic_block
    from mlc.quantization.prepare import fold_batch_norms

    case = resnet_basic_block(channels=8, size=6)
    folded = fold_batch_norms(case.model)
    ops = [n.op_type for n in folded.graph.node]
    assert "BatchNormalization" not in ops and ops.count("Conv") == 2
    onnx.checker.check_model(folded)
    x = case.inputs[0]
    want = ReferenceEvaluator(case.model).run(None, {"x": x})[0]
    got = ReferenceEvaluator(folded).run(None, {"x": x})[0]
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)
    used = {i for n in folded.graph.node for i in n.input}
    assert all(init.name in used for init in folded.graph.initializer)


def test_quantized_weights_replace_the_float_ones() -> None:
    q = quantize(small_cnn(), samples(4))
    floats = [i.name for i in q.model.graph.initializer if i.data_type == TensorProto.FLOAT]
    assert not any(name in ("w1", "w2", "w3", "b1", "b3") for name in floats)
    assert q.model.ByteSize() < small_cnn().ByteSize()


def test_an_output_only_the_graph_reads_stays_float() -> None:
    model = small_cnn()
    del model.graph.node[-1]  # no Softmax: the Gemm's logits are the graph's output
    model.graph.output[0].name = "logits"
    plan = plan_layers(model)
    assert plan.unread == {"logits"} and "logits" not in plan.quantized_tensors()
    q = quantize(model, samples(4))
    quantized = {n.input[0] for n in q.model.graph.node if n.op_type == "QuantizeLinear"}
    assert "logits" not in quantized and {"x", "r1"} <= quantized
    x = samples(2)
    got = q.compile()(x)
    got = got[0] if isinstance(got, list | tuple) else got
    np.testing.assert_allclose(got, reference(q.model, x), rtol=1e-5, atol=1e-5)


def test_a_relu6_clip_folds_into_the_integer_layer() -> None:
    """conv -> Clip(0, 6) (MobileNet's Relu6, bounds as constant inputs): the plan
    quantizes the clip's output, graph-fold-qdq keeps the clip in the integer conv's
    epilogue and folds it into saturation where the calibrated range ends inside [0, 6];
    no float conv or clip is left, and the result is the QDQ reference's."""
    model = small_cnn()
    relu = next(n for n in model.graph.node if n.name == "relu1")
    relu.op_type = "Clip"
    relu.input.extend(["lo", "hi"])
    model.graph.initializer.extend(
        [
            numpy_helper.from_array(np.array(0.0, np.float32), "lo"),
            numpy_helper.from_array(np.array(6.0, np.float32), "hi"),
        ]
    )
    plan = plan_layers(model)
    assert plan.layers[0].output == "r1"
    assert "relu1" not in {k.node for k in plan.kept_float}
    q = quantize(model, samples(16))
    text = q.to_mlir()
    assert text.count("graph.conv_integer") == 2 and " graph.conv " not in text
    assert "graph.clip" not in text  # u8 codes from 0 and a range below 6: saturation
    x = samples(2)
    got = q.compile()(x)
    got = got[0] if isinstance(got, list | tuple) else got
    np.testing.assert_allclose(got, reference(q.model, x), atol=0.05)


def test_bf16_stores_weights_in_bf16_and_rounds_layer_inputs() -> None:
    """activations="bf16": every layer's weight becomes a bfloat16 initializer read
    through a Cast, its inputs are rounded to bfloat16 (the f32 bias stays); the model is
    valid ONNX that onnxruntime runs, mlc computes what onnxruntime does, and both
    differ from the f32 model by bf16 rounding only."""
    import onnxruntime as ort

    model = small_cnn()
    q = quantize(model, None, activations="bf16")
    onnx.checker.check_model(q.model)
    types = {init.name: init.data_type for init in q.model.graph.initializer}
    assert types["w1_bf16"] == types["w2_bf16"] == types["w3_bf16"] == TensorProto.BFLOAT16
    assert types["b1"] == TensorProto.FLOAT and "w1" not in types
    weight_bytes = {i.name: len(i.raw_data) for i in model.graph.initializer}
    for name in ("w1", "w2", "w3"):  # half the bytes
        stored = next(i for i in q.model.graph.initializer if i.name == f"{name}_bf16")
        assert 2 * len(stored.raw_data) == weight_bytes[name]
    casts = [n for n in q.model.graph.node if n.op_type == "Cast"]
    assert len(casts) == 3 + 2 * 3  # a weight cast and an input round trip per layer
    assert "bf16   Conv" in q.report()
    x = samples(2)
    session = ort.InferenceSession(q.model.SerializeToString(), providers=["CPUExecutionProvider"])
    want = session.run(None, {"x": x})[0]
    got = q.compile()(x)
    got = got[0] if isinstance(got, list | tuple) else got
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)
    rounded = reference(model, x)
    np.testing.assert_allclose(got, rounded, atol=0.02)  # bf16: 8 significant bits
    assert not np.array_equal(got, rounded)


def test_mlc_quantize_bf16_needs_no_calibration(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    onnx.save(small_cnn(), str(tmp_path / "m.onnx"))
    out = tmp_path / "m.bf16.onnx"
    assert (
        mlc_main(["quantize", str(tmp_path / "m.onnx"), "--activations", "bf16", "-o", str(out)])
        == 0
    )
    assert out.exists() and "bf16   Gemm" in capsys.readouterr().out
    assert mlc_main(["quantize", str(tmp_path / "m.onnx"), "-o", str(out)]) == 2
    assert "--calibrate" in capsys.readouterr().err
