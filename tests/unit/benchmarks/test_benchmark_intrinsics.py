"""The intrinsic benchmark's harness on tiny shapes: every runner's output matches
onnxruntime's and the report has each part (speed itself is measured, not tested)."""

import re

import pytest

from mlc.benchmarks import intrinsics


def test_small_run_checks_every_runner(capsys: pytest.CaptureFixture[str]) -> None:
    assert intrinsics.main(["--small", "--repeat", "1", "--budget-s", "1"]) == 0
    out = capsys.readouterr().out
    assert "fp32 FMA peak" in out
    assert "| mlc fma_tile microkernel |" in out and "WRONG" not in out and "error" not in out
    assert re.search(
        r"\| mlc default \(im2col, (vpdpbusd|vpmaddwd|none)\) \| \d+\.\d+ \|.*\| ok \|", out
    )
    assert re.search(r"\| mlc fp32 Conv, same shape \| \d+\.\d+ \|.*\| ok \|", out)
    if intrinsics.host_features().avx2 and not intrinsics.host_features().avx512vnni:
        assert re.search(r"\| mlc vpmaddwd \(AVX2\) \| \d+\.\d+ \|.*\| ok \|", out)
    assert re.search(r"\| mlc direct conv kernel \| \d+\.\d+ \|.*\| ok \|", out)
    assert re.search(
        r"\| simulated \(`lowering.graph_to_accel`\) \| [1-9]\d* \| [1-9]\d* \| \d+\.\d%", out
    )


def test_int8_case_is_matmul_integer() -> None:
    case = intrinsics.int8_gemm(4, 8, 16)
    assert [n.op_type for n in case.model.graph.node] == ["MatMulInteger"]
    assert case.numpy_fn is not None
    (y,) = case.numpy_fn(*case.inputs)
    assert y.shape == (4, 16) and y.dtype.kind == "i"


def test_fp32_conv_case_has_the_int8_conv_shape() -> None:
    case, int8 = intrinsics.fp32_conv(6, 4), intrinsics.int8_conv(6, 4)
    assert [n.op_type for n in case.model.graph.node] == ["Conv"]
    assert case.inputs[0].shape == int8.inputs[0].shape and case.flops == int8.flops


def test_int8_conv_case_is_conv_integer_with_a_zero_point() -> None:
    case = intrinsics.int8_conv(6, 4)
    (node,) = case.model.graph.node
    assert node.op_type == "ConvInteger" and list(node.input) == ["X", "W", "zx"]
    assert case.inputs[0].shape == (1, 4, 6, 6) and case.inputs[0].dtype.name == "uint8"
