"""The building-block benchmark (`mlc.benchmarks.blocks`): valid small models that mlc
compiles to onnxruntime's outputs, the block structure the benchmark promises, and the
command line end to end on tiny shapes. No timing is asserted."""

from __future__ import annotations

import json
import os
from collections import Counter
from pathlib import Path

import numpy as np
import onnx
import pytest

import mlc
from mlc.benchmarks import blocks
from mlc.benchmarks.blocks import BLOCKS
from mlc.benchmarks.models import Case

pytest.importorskip("onnxruntime")


def _ops(case: Case) -> Counter[str]:
    return Counter(n.op_type for n in case.model.graph.node)


@pytest.mark.parametrize("name", list(BLOCKS))
def test_small_block_is_valid_and_mlc_matches_ort(name: str) -> None:
    case = BLOCKS[name].make(small=True)
    onnx.checker.check_model(case.model, full_check=True)
    assert case.name == name and case.shape
    assert case.flops is not None and case.flops > 0
    assert case.extra["bound"] in ("compute", "memory") and case.extra["bytes"] > 0
    expected = case.onnxruntime_outputs()
    actual = mlc.compile(case.model)(*case.inputs)
    assert len(actual) == len(expected)
    for a, e in zip(actual, expected):
        assert np.isfinite(e).all()
        scale = max(1.0, float(np.max(np.abs(e))))
        np.testing.assert_allclose(a, e, rtol=1e-4, atol=1e-4 * scale)


def test_blocks_are_deterministic() -> None:
    a, b = BLOCKS["shuffle_unit"].make(small=True), BLOCKS["shuffle_unit"].make(small=True)
    assert a.model.SerializeToString() == b.model.SerializeToString()
    np.testing.assert_array_equal(a.inputs[0], b.inputs[0])


def test_full_size_structure() -> None:
    """The full-size graphs of the cheap blocks (built, not run): shapes, ops, flops."""
    ir = blocks.inverted_residual()
    assert ir.inputs[0].shape == (1, 24, 56, 56)
    assert _ops(ir) == {"Conv": 3, "BatchNormalization": 3, "Clip": 2, "Add": 1}
    assert ir.flops == 2 * 56 * 56 * (24 * 144 * 2 + 144 * 9)
    su = blocks.shuffle_unit()
    assert _ops(su)["Reshape"] == 2 and _ops(su)["Transpose"] == 1
    groups = [a.i for n in su.model.graph.node for a in n.attribute if a.name == "group"]
    assert groups == [4, 68, 4]
    fire = blocks.fire_module()
    assert _ops(fire) == {"Conv": 3, "Relu": 3, "Concat": 1}
    dense = blocks.dense_block()
    out = dense.model.graph.output[0].type.tensor_type.shape.dim
    assert [d.dim_value for d in out] == [1, 192, 56, 56] and _ops(dense)["Conv"] == 8
    gc = blocks.grouped_conv()
    assert gc.flops == 2 * 13 * 13 * 384 * 192 * 9
    assert blocks.softmax_rows().inputs[0].shape == (256, 1024)
    assert blocks.layernorm_rows().inputs[0].shape == (128, 768)
    assert _ops(blocks.broadcast_chain())["Sigmoid"] == 1
    for name in ("maxpool", "avgpool", "lrn", "softmax_rows", "broadcast_chain"):
        assert BLOCKS[name].make().extra["bound"] == "memory"


def test_alexnet_head_reports_weight_bytes() -> None:
    case = blocks.alexnet_head((16, 2, 2), 32, 10)
    assert [n.op_type for n in case.model.graph.node] == ["Flatten"] + ["Gemm", "Relu"] * 2 + [
        "Gemm"
    ]
    assert all(a.i == 1 for n in case.model.graph.node for a in n.attribute if a.name == "transB")
    floats = 64 * 32 + 32 + 32 * 32 + 32 + 32 * 10 + 10
    assert case.extra["weight_bytes"] == 4 * floats
    assert case.flops == 2 * (64 * 32 + 32 * 32 + 32 * 10)


def test_geomean() -> None:
    assert blocks.geomean([]) is None
    assert blocks.geomean([2.0, 8.0]) == pytest.approx(4.0)


def test_cli_end_to_end_on_small_shapes(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    md, js = tmp_path / "out.md", tmp_path / "out.json"
    argv = ["--small", "--only", "lrn,softmax_rows", "--repeat", "2", "--budget-s", "1"]
    argv += ["--quiet", "--latency-calls", "3", "--markdown", str(md), "--json", str(js)]
    assert blocks.main(argv) == 0
    text = md.read_text()
    assert text == capsys.readouterr().out
    header = text.splitlines()[0]
    for col in ("block", "mlc 1t ms", "ORT 1t ms", "mlc/ORT 1t", "mlc/ORT 2t", "ok"):
        assert f"| {col} |" in header
    assert "| mlc scaling 1t/2t |" in header
    lines = text.splitlines()
    assert lines[2].startswith("| lrn |") and lines[3].startswith("| softmax_rows |")
    assert lines[2].endswith("| yes |") and "GB/s" in lines[2]
    assert "- geometric mean mlc/ORT 1t: " in text and "- geometric mean mlc/ORT 2t: " in text
    assert "| mlc default median ms |" in text and "| ORT default p99 ms |" in text
    assert "error" not in text and "MISMATCH" not in text
    data = json.loads(js.read_text())
    assert [r["model"] for r in data["results"]] == ["lrn", "softmax_rows"]
    assert data["results"][0]["extra"]["bound"] == "memory"
    assert set(data["summary"]) == {"1t", "2t"}
    assert all(len(x["times_s"]) == 3 for x in data["latency"])


def test_default_latency_runner_uses_the_default_thread_count(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """ "mlc default" compiles and runs with MLC_NUM_THREADS unset (num_threads 0: OpenMP's
    default) even when the caller's environment sets it; "mlc 1t" with it 1."""
    monkeypatch.setenv("MLC_NUM_THREADS", "3")
    default, one, ort_default = blocks.latency_runners()
    case = BLOCKS["broadcast_chain"].make()  # full size: a model with parallel loops
    if mlc.compile(case.model).num_threads != 3:
        pytest.skip("the model has no parallel loops (no thread count to set)")
    with blocks._runner_env(default):
        assert "MLC_NUM_THREADS" not in os.environ
        assert mlc.compile(case.model).num_threads == 0
    with blocks._runner_env(one):
        assert mlc.compile(case.model).num_threads == 1
    assert os.environ["MLC_NUM_THREADS"] == "3"
    (lat_default, lat_one, lat_ort) = blocks.measure_latency(
        case, [default, one, ort_default], calls=5, chunk=2, warmup=1
    )
    assert [len(x.times_s) for x in (lat_default, lat_one, lat_ort)] == [5, 5, 5]
    assert lat_default.quantile_ms(0.99) is not None and lat_ort.error is None


def test_unknown_block_is_a_usage_error() -> None:
    with pytest.raises(SystemExit):
        blocks.main(["--only", "nope"])
