"""Per-kernel profiles: the instrumentation changes no result, every kernel call is timed
and described (label, flops, bytes), the times add up, the Chrome trace nests, and
`mlc profile` prints the table."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from hypothesis import given, settings
from xdsl.dialects.builtin import f32, i32

import mlc
from mlc.lowering.llvm_profile import LlvmProfileKernelsPass
from mlc.registry import make_context
from mlc.targets.compiled import NativeFunction, _signature, compile_model
from mlc.targets.cpu import JitEngine, target_machine
from mlc.targets.llvm_emit import emit_module
from mlc.targets.pipeline import MlcCpuPipelinePass
from mlc.targets.profile import ProfileError, profile_native
from mlc.testing.coverage import covers
from mlc.testing.strategies import Program, graph_programs
from mlc.tools.mlc import main as mlc_main

ROOT = Path(__file__).resolve().parents[3]
CNN = ROOT / "examples" / "tiny_resnet.onnx"
X = np.random.default_rng(0).standard_normal((1, 3, 32, 32)).astype(np.float32)


def _jit(module, signature) -> tuple[NativeFunction, JitEngine]:  # type: ignore[no-untyped-def]
    tm = target_machine()
    engine = JitEngine()
    engine.add_module(emit_module(module, tm.triple, str(tm.target_data)))
    name, ins, outs = signature
    return NativeFunction(name, ins, outs, engine.function_address(name)), engine


@covers("llvm-profile-kernels")
@settings(max_examples=25)
@given(graph_programs(element_types=[f32, i32]))
def test_profiling_preserves_semantics(program: Program) -> None:
    """The llvm-dialect module with and without timestamps around its kernel calls gives
    bit-identical results, and the instrumented one times every kernel call."""
    base = program.module.clone()
    signature = _signature(base, None)
    MlcCpuPipelinePass().apply(make_context(), base)
    profiled = base.clone()
    LlvmProfileKernelsPass().apply(make_context(), profiled)
    calls = str(base).count("llvm.call @mlc_kernel_") - str(base).count("_par0_body(")
    fn, _ = _jit(base, signature)
    want = fn(*program.inputs)
    pfn, engine = _jit(profiled, signature)
    got = pfn(*program.inputs)
    for g, w in zip(got, want):
        np.testing.assert_array_equal(g, w)
    prof = profile_native(
        lambda: pfn(*program.inputs),
        engine.engine.get_global_value_address,
        signature[0],
        repeat=3,
        warmup=0,
    )
    assert len(prof.kernels) == calls
    for start, kernels, end in prof.raw:
        assert start <= end
        for a, b in kernels:
            assert start <= a <= b <= end


def test_cnn_profile_times_and_describes_every_kernel() -> None:
    compiled = compile_model(CNN, profile=True)
    compiled.num_threads = 1
    prof = compiled.profile(X, repeat=5, warmup=1)
    assert prof.runs == 5 and prof.threads == 1
    labels = [k.label for k in prof.kernels]
    # the first convolution (its bias fill in its tiles): 16 x 3 x 3 x 3 weights over a
    # 32 x 32 output, 2 flops each
    first_conv = next(k for k in prof.kernels if k.label == "conv_blocked_0+conv_blocked_1")
    assert first_conv.flops == 2 * 16 * 3 * 3 * 3 * 32 * 32
    assert first_conv.bytes > 0 and first_conv.kernel.startswith("mlc_kernel_")
    assert any(label.startswith("softmax") for label in labels)
    for start, calls, end in prof.raw:  # kernel calls are disjoint and inside the model call
        previous = start
        for a, b in calls:
            assert previous <= a <= b <= end
            previous = b
    assert prof.total_seconds > 0
    assert sum(k.seconds for k in prof.kernels) <= 1.5 * prof.total_seconds
    table = prof.table(top=3)
    assert "GFLOP/s" in table and "other (outside kernels)" in table and "more)" in table
    # and the outputs are the uninstrumented model's
    (want,) = compile_model(CNN)(X)
    np.testing.assert_array_equal(compiled(X)[0], want)


def test_chrome_trace_nests_kernels_in_model_calls(tmp_path: Path) -> None:
    prof = compile_model(CNN, profile=True).profile(X, repeat=3, warmup=0)
    path = tmp_path / "trace.json"
    prof.save_chrome_trace(path)
    events = json.loads(path.read_text())["traceEvents"]
    models = [e for e in events if e["cat"] == "model"]
    kernels = [e for e in events if e["cat"] == "kernel"]
    assert len(models) == 3 and len(kernels) == 3 * len(prof.kernels)
    for e in kernels:
        run = models[e["args"]["run"]]
        assert e["ph"] == "X" and e["dur"] >= 0
        assert run["ts"] <= e["ts"] and e["ts"] + e["dur"] <= run["ts"] + run["dur"] + 1e-3


def test_profiling_an_unprofiled_model_compiles_a_profiled_twin() -> None:
    compiled = compile_model(CNN)
    assert "mlc_profile_stamp" not in compiled.llvm_dialect
    prof = compiled.profile(X, repeat=2, warmup=0)
    assert prof.kernels and prof.model == compiled.name
    assert compiled.profile(X, repeat=1, warmup=0).kernels  # the twin is kept


def test_a_model_without_instrumentation_is_refused() -> None:
    import pytest

    compiled = compile_model(CNN)
    with pytest.raises(ProfileError, match="profile=True"):
        profile_native(lambda: None, compiled.engine.engine.get_global_value_address, "main")


def test_profile_command_prints_table_and_writes_trace(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    trace = tmp_path / "t.json"
    code = mlc_main(
        [
            "profile",
            str(CNN),
            "--repeat",
            "3",
            "--top",
            "4",
            "--threads",
            "1",
            "--trace",
            str(trace),
        ]
    )
    out = capsys.readouterr().out
    assert code == 0, out
    assert "profile of @main: 3 runs, 1 thread(s)" in out
    assert len([line for line in out.splitlines() if "conv_blocked" in line]) == 4
    assert json.loads(trace.read_text())["traceEvents"]


def test_profile_command_reports_bad_inputs(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    bad = tmp_path / "x.npy"
    np.save(bad, np.zeros((2, 2), np.float32))
    assert mlc_main(["profile", str(CNN), "--input", f"image={bad}"]) == 1
    assert "input #0 of @main must be float32[1, 3, 32, 32]" in capsys.readouterr().err


def test_compile_option_is_in_the_pipeline_text() -> None:
    from mlc.targets.compiled import cpu_pipeline

    assert "llvm-profile-kernels" in cpu_pipeline(profile=True).pipeline_text()
    assert "llvm-profile-kernels" not in cpu_pipeline().pipeline_text()
    assert mlc.compile(CNN, profile=True).profile(X, repeat=1).kernels
