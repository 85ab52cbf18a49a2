"""`mlc-cpu-pipeline`: `mlc.compile` is exactly the registered pipeline plus code
generation; its own passes (`tl-default-schedule`, `llvm-use-vector-math`) and the whole
pipeline preserve the reference semantics; the expanded pipeline text replays it."""

from __future__ import annotations

import numpy as np
from hypothesis import given, note
from hypothesis import strategies as st
from xdsl.dialects.builtin import ModuleOp, f32, i32

import mlc
from mlc.lowering.graph_to_tl import ConvertGraphToTlPass
from mlc.parser.mlir import parse_module
from mlc.registry import make_context
from mlc.targets.compiled import NativeFunction, _signature, compile_model, cpu_pipeline
from mlc.targets.cpu import JitEngine, target_machine
from mlc.targets.llvm_emit import emit_module
from mlc.targets.pipeline import (
    LlvmUseVectorMathPass,
    MlcCpuPipelinePass,
    TlDefaultSchedulePass,
    pass_text,
)
from mlc.targets.timings import Timings
from mlc.testing.coverage import covers
from mlc.testing.strategies import Program, graph_programs
from mlc.tools.mlc_opt import main as mlc_opt


def _compare(got: list[np.ndarray], want: list[np.ndarray]) -> None:
    assert len(got) == len(want)
    for g, w in zip(got, want):
        g, w = np.asarray(g), np.asarray(w)
        assert g.dtype == w.dtype and g.shape == w.shape
        if np.issubdtype(w.dtype, np.floating):
            np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-5)
        else:
            np.testing.assert_array_equal(g, w)


def _run_llvm_module(module: ModuleOp, signature: tuple, inputs: list[np.ndarray]) -> list:
    """Emit, JIT-compile and call a module already lowered to the llvm dialect."""
    tm = target_machine()
    engine = JitEngine()
    engine.add_module(emit_module(module, tm.triple, str(tm.target_data)))
    name, ins, outs = signature
    return NativeFunction(name, ins, outs, engine.function_address(name))(*inputs)


@covers("mlc-cpu-pipeline")
@given(graph_programs(element_types=[f32, i32]))
def test_the_pipeline_pass_preserves_semantics(program: Program) -> None:
    """Random graph programs through `mlc-cpu-pipeline` (as mlc-opt runs it), emitted and
    JIT-compiled, against the graph-level reference interpreter."""
    want = mlc.interpret(program.module, *program.inputs)
    module = program.module.clone()
    signature = _signature(module, None)
    MlcCpuPipelinePass().apply(make_context(), module)
    _compare(_run_llvm_module(module, signature, program.inputs), want)


@covers("tl-default-schedule")
@given(graph_programs(element_types=[f32, i32]))
def test_default_schedules_preserve_semantics(program: Program) -> None:
    """tl kernels interpreted before and after their default schedules."""
    module = program.module.clone()
    ctx = make_context()
    ConvertGraphToTlPass().apply(ctx, module)
    want = mlc.interpret(module, *program.inputs)
    TlDefaultSchedulePass().apply(ctx, module)
    note(str(module))
    _compare(mlc.interpret(module, *program.inputs), want)


UNARY = """
func.func @main(%x: tensor<4x37xf32>) -> tensor<4x37xf32> {
  %e = graph.OP %x : (tensor<4x37xf32>) -> tensor<4x37xf32>
  func.return %e : tensor<4x37xf32>
}
"""


@covers("llvm-use-vector-math")
@given(graph_programs(element_types=[f32]))
def test_vector_math_preserves_semantics(program: Program) -> None:
    """The same llvm-dialect module with per-lane libm calls and with libmvec calls gives
    the same results (within libmvec's 4 ulp)."""
    base = program.module.clone()
    signature = _signature(base, None)
    MlcCpuPipelinePass(vector_math=False).apply(make_context(), base)
    vec = base.clone()
    LlvmUseVectorMathPass().apply(make_context(), vec)
    _compare(
        _run_llvm_module(vec, signature, program.inputs),
        _run_llvm_module(base, signature, program.inputs),
    )


#: graph ops whose kernels call a function libmvec has, and an input range it is defined on
_MATH_OPS = {
    "exp": (-20.0, 20.0), "tanh": (-8.0, 8.0), "log": (0.01, 50.0), "sin": (-6.0, 6.0),
    "cos": (-6.0, 6.0), "erf": (-3.0, 3.0), "sigmoid": (-20.0, 20.0),
}  # fmt: skip


@covers("llvm-use-vector-math")
@given(
    op=st.sampled_from(sorted(_MATH_OPS)),
    rows=st.integers(1, 3),
    cols=st.sampled_from([8, 13, 16, 37, 64]),
    seed=st.integers(0, 2**16),
)
def test_vector_math_rewrites_vectorized_math_and_preserves_it(
    op: str, rows: int, cols: int, seed: int
) -> None:
    """Math kernels wide enough to vectorize (whole vectors and masked tails): the pass
    replaces their per-lane calls by libmvec's and the results stay within 4 ulp."""
    text = UNARY.replace("OP", op).replace("4x37", f"{rows}x{cols}")
    base = parse_module(make_context(), text)
    signature = _signature(base, None)
    MlcCpuPipelinePass(vector_math=False).apply(make_context(), base)
    vec = base.clone()
    LlvmUseVectorMathPass().apply(make_context(), vec)
    from mlc.lowering.llvm_vector_math import _libmvec

    if _libmvec() is not None:
        assert str(vec) != str(base), "no call was rewritten"
    low, high = _MATH_OPS[op]
    x = np.random.default_rng(seed).uniform(low, high, (rows, cols)).astype(np.float32)
    got, want = _run_llvm_module(vec, signature, [x]), _run_llvm_module(base, signature, [x])
    np.testing.assert_allclose(got[0], want[0], rtol=4 * 2**-23, atol=1e-37)


def test_vector_math_pass_rewrites_math_calls() -> None:
    """`exp` calls the inline `mlc_expf_v<lanes>` (no library needed); `tanh` libmvec's."""
    for op, symbol in (("exp", "vecmath.mlc_expf_v"), ("tanh", "vecmath._ZGV")):
        module = parse_module(make_context(), UNARY.replace("OP", op))
        MlcCpuPipelinePass(vector_math=False).apply(make_context(), module)
        before = str(module)
        LlvmUseVectorMathPass().apply(make_context(), module)
        from mlc.lowering.llvm_vector_math import _libmvec

        if _libmvec() is not None or op == "exp":
            assert symbol in str(module) and "vecmath" not in before


def test_compile_runs_exactly_the_pipeline_passes() -> None:
    model = compile_model("examples/tiny_resnet.onnx", cache=False)
    expanded = [p.name for p in cpu_pipeline().passes()]
    stages = list(model.timings.seconds)
    assert stages[0] == "import"
    assert stages[1 : 1 + len(expanded)] == expanded
    assert {"verify", "emit LLVM IR"} <= set(stages)


def test_pipeline_text_replays_in_mlc_opt(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    """`mlc-opt -p <expanded pipeline>` and `-p mlc-cpu-pipeline` print the llvm-dialect
    module that `mlc.compile` compiles."""
    path = tmp_path / "m.mlir"
    path.write_text(UNARY.replace("OP", "tanh"))
    model = compile_model(parse_module(make_context(), path.read_text()))
    text = cpu_pipeline().pipeline_text()
    assert text.startswith(
        'tree-ensemble-strategy{strategy="auto" max-depth=12},graph-fold-qdq,graph-optimize{'
    )
    assert "tl-default-schedule{vector-bits=" in text
    assert mlc_opt([str(path), "-p", text]) == 0
    replayed = capsys.readouterr().out
    assert mlc_opt([str(path), "-p", "mlc-cpu-pipeline"]) == 0
    assert capsys.readouterr().out == replayed
    assert replayed.strip() == model.llvm_dialect.strip()


def test_pass_text_uses_mlir_option_names() -> None:
    assert pass_text(TlDefaultSchedulePass(vector_bits=256)) == (
        "tl-default-schedule{vector-bits=256 threads=true}"
    )


def test_unknown_layout_is_an_error() -> None:
    import pytest

    with pytest.raises(ValueError, match="layout must be one of"):
        MlcCpuPipelinePass(layout="nhwc")


def test_timings_table_sums_stages() -> None:
    t = Timings()
    t.add("a", 1.0)
    t.add("b", 3.0)
    t.add("a", 1.0)
    table = t.table()
    assert "2.000" in table and "40.0%" in table and "5.000   100.0%  total" in table


def test_compile_reads_a_mlir_file(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """`mlc.compile("model.mlir")` parses the textual IR (errors located in the file)."""
    import pytest

    from mlc.parser.mlir import IRDiagnostic

    path = tmp_path / "exp.mlir"
    path.write_text(UNARY.replace("OP", "exp"))
    x = np.random.default_rng(0).standard_normal((4, 37)).astype(np.float32)
    (got,) = mlc.compile(path)(x)
    (want,) = mlc.compile(parse_module(make_context(), UNARY.replace("OP", "exp")))(x)
    np.testing.assert_array_equal(got, want)
    bad = tmp_path / "bad.mlir"
    bad.write_text(
        UNARY.replace("OP", "exp").replace("(tensor<4x37xf32>) ->", "(tensor<4x3xf32>) ->")
    )
    with pytest.raises(IRDiagnostic, match=r"bad\.mlir:\d+:\d+: error"):
        mlc.compile(bad)
    with pytest.raises(FileNotFoundError, match="missing.mlir"):
        mlc.compile(tmp_path / "missing.mlir")
