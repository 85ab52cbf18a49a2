"""Ahead-of-time export: a shared library + C header that a C program compiles against and
runs (numbers checked against onnxruntime), `mlc.load` round trips, errors, the thread
accessors and cross-compiled object files."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

import mlc
from mlc.benchmarks.models import mlp as benchmark_mlp
from mlc.targets.aot import AotError, LoadedModel, export_library, export_object, load
from mlc.targets.compiled import CompiledModel, InvalidInputError, lower_model
from mlc.testing.onnx_models import run_onnxruntime

EXAMPLES = Path(__file__).resolve().parents[3] / "examples"
needs_cc = pytest.mark.skipif(
    shutil.which("cc") is None, reason="no C compiler (`cc`) on PATH to link or build C programs"
)

C_PROGRAM = r"""
#include <stdio.h>
#include <stdlib.h>
#include "mlp.h"

static void *aligned(size_t bytes) {
    size_t a = MLP_ALIGNMENT;
    return aligned_alloc(a, (bytes + a - 1) / a * a);
}

int main(void) {
    static const long in_shape[MLP_IN0_RANK] = MLP_IN0_SHAPE;
    float *x = aligned(MLP_IN0_BYTES);
    float *y = aligned(MLP_OUT0_BYTES);
    if (!x || !y) return 1;
    for (int i = 0; i < MLP_IN0_SIZE; i++) x[i] = (float)((i * 37) % 101 - 50) / 50.0f;
    mlp_run(x, y);
    printf("shape %ld %ld\n", in_shape[0], in_shape[1]);
    for (int i = 0; i < MLP_OUT0_SIZE; i++) printf("%.9g\n", y[i]);
    free(x);
    free(y);
    return 0;
}
"""


def _c_input(n: int) -> np.ndarray:
    """What C_PROGRAM writes into x, computed the same way in float32."""
    i = np.arange(n)
    return ((i * 37) % 101 - 50).astype(np.float32) / np.float32(50.0)


@pytest.fixture(scope="module")
def compiled() -> CompiledModel:
    return mlc.compile(EXAMPLES / "mlp.onnx")


@pytest.fixture(scope="module")
def library(compiled: CompiledModel, tmp_path_factory: pytest.TempPathFactory) -> Path:
    if shutil.which("cc") is None:
        pytest.skip("no C compiler (`cc`) on PATH to link the shared library")
    path = tmp_path_factory.mktemp("lib") / "mlp.so"
    exported = compiled.export(path)
    assert exported.path == path and exported.header == path.with_suffix(".h")
    assert exported.entry == "mlp_run"
    return path


def test_header_documents_the_abi(library: Path) -> None:
    header = library.with_suffix(".h").read_text()
    assert "int64_t mlp_run(const float *x, float *gemm_3);" in header
    assert re.search(r"x\s+float32\[8, 784\]", header)
    assert re.search(r"gemm_3\s+float32\[8, 10\]", header)
    assert "16-byte aligned" in header and "no two buffers overlap" in header
    for line in (
        "#define MLP_ALIGNMENT 16",
        "#define MLP_IN0_SIZE 6272",
        "#define MLP_IN0_BYTES 25088",
        "#define MLP_IN0_SHAPE {8, 784}",
        "#define MLP_OUT0_SHAPE {8, 10}",
        "extern const char mlc_signature[];",
    ):
        assert line in header


@needs_cc
def test_c_program_matches_onnxruntime(library: Path, tmp_path: Path) -> None:
    source = tmp_path / "main.c"
    source.write_text(C_PROGRAM)
    exe = tmp_path / "main"
    cmd = ["cc", "-std=c11", "-Wall", "-Wextra", "-pedantic", "-Werror", "-I", str(library.parent)]
    cmd += [str(source), "-o", str(exe), str(library), f"-Wl,-rpath,{library.parent}"]
    build = subprocess.run(cmd, capture_output=True, text=True)
    assert build.returncode == 0, build.stderr
    run = subprocess.run([str(exe)], capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    lines = run.stdout.split("\n")
    assert lines[0] == "shape 8 784"
    got = np.array([float(v) for v in lines[1:] if v], np.float32).reshape(8, 10)
    pytest.importorskip("onnxruntime")
    x = _c_input(8 * 784).reshape(8, 784)
    (want,) = run_onnxruntime(onnx.load(EXAMPLES / "mlp.onnx"), {"x": x})
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)


def test_load_round_trip_equals_the_jit(compiled: CompiledModel, library: Path) -> None:
    loaded = mlc.load(library)
    assert isinstance(loaded, LoadedModel)
    assert loaded.inputs == compiled.inputs and loaded.outputs == compiled.outputs
    assert [s.name for s in loaded.inputs] == ["x"]
    assert [s.name for s in loaded.outputs] == ["gemm_3"]
    for seed in range(3):
        x = np.random.default_rng(seed).standard_normal((8, 784)).astype(np.float32)
        (got,) = loaded(x)
        (want,) = compiled(x)
        np.testing.assert_array_equal(got, want)
    # this small MLP (8 rows) has no parallel loops: one thread, as the JIT reports
    assert loaded.num_threads == compiled.num_threads == 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((), "takes 1 inputs"),
        ((np.zeros((8, 783), np.float32),), "must have shape [8, 784]"),
        ((np.zeros((8, 784), np.float64),), "must have dtype float32"),
        ((np.zeros((784, 8), np.float32).T,), "not C-contiguous"),
        (([[0.0] * 784] * 8,), "must be a numpy array"),
    ],
)
def test_loaded_model_validates_inputs(
    library: Path, args: tuple[object, ...], message: str
) -> None:
    loaded = load(library)
    with pytest.raises(InvalidInputError, match=re.escape(message)):
        loaded(*args)  # type: ignore[arg-type]


def test_load_errors_are_one_line(tmp_path: Path) -> None:
    with pytest.raises(AotError, match="no such file"):
        mlc.load(tmp_path / "missing.so")
    text = tmp_path / "text.so"
    text.write_text("not a library\n")
    with pytest.raises(AotError, match="cannot load it as a shared library") as info:
        mlc.load(text)
    assert "\n" not in str(info.value)


@needs_cc
def test_loading_a_library_not_made_by_mlc(tmp_path: Path) -> None:
    source = tmp_path / "other.c"
    source.write_text("int answer(void) { return 42; }\n")
    lib = tmp_path / "libother.so"
    subprocess.run(["cc", "-shared", "-fPIC", "-o", str(lib), str(source)], check=True)
    with pytest.raises(AotError, match="not a library exported by mlc"):
        mlc.load(lib)


def _mixed_model() -> onnx.ModelProto:
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [3, 4])
    n = helper.make_tensor_value_info("n", TensorProto.INT32, [3, 4])
    mask = helper.make_tensor_value_info("x > 0", TensorProto.BOOL, [3, 4])
    twice = helper.make_tensor_value_info("twice", TensorProto.INT32, [3, 4])
    zero = helper.make_tensor("zero", TensorProto.FLOAT, [], [0.0])
    nodes = [
        helper.make_node("Greater", ["x", "zero"], ["x > 0"]),
        helper.make_node("Add", ["n", "n"], ["twice"]),
    ]
    graph = helper.make_graph(nodes, "g", [x, n], [mask, twice], [zero])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


@needs_cc
def test_integer_and_bool_buffers(tmp_path: Path) -> None:
    model = mlc.compile(_mixed_model(), schedule=None)  # plain loops: the ABI is what counts
    exported = model.export(tmp_path / "libmixed.so")
    assert exported.entry == "mixed_run"
    header = exported.header.read_text()  # type: ignore[union-attr]
    assert (
        "int64_t mixed_run(const float *x, const int32_t *n, bool *x_0, int32_t *twice);" in header
    )
    assert 'ONNX name "x > 0"' in header
    x = np.linspace(-3, 3, 12, dtype=np.float32).reshape(3, 4)
    n = np.arange(12, dtype=np.int32).reshape(3, 4)
    mask, twice = mlc.load(exported.path)(x, n)
    np.testing.assert_array_equal(mask, x > 0)
    np.testing.assert_array_equal(twice, 2 * n)


@needs_cc
def test_thread_count_accessors(tmp_path: Path) -> None:
    """A model with parallel loops exports `<prefix>_set/get_num_threads` for its
    `@mlc_num_threads` global; one without gets none."""
    # batch 64 through 784 -> 1024 -> 1024 -> 10: enough work per layer for threads
    model = benchmark_mlp().model
    exported = export_library(lower_model(model), tmp_path / "mlp_mt.so", prefix="net")
    header = exported.header.read_text()  # type: ignore[union-attr]
    assert "void net_set_num_threads(int32_t n);" in header
    assert "int32_t net_get_num_threads(void);" in header
    symbols = subprocess.run(
        ["nm", "-D", "--defined-only", str(exported.path)], capture_output=True, text=True
    ).stdout
    if symbols:  # binutils present: only the documented symbols are exported
        names = {line.split()[-1] for line in symbols.splitlines() if line.strip()}
        assert names == {"net_run", "net_set_num_threads", "net_get_num_threads", "mlc_signature"}
    loaded = mlc.load(exported.path)
    assert loaded.num_threads == 0
    x = np.random.default_rng(0).standard_normal((64, 784)).astype(np.float32)
    (want,) = mlc.compile(model)(x)
    for threads in (1, 2, 3):
        loaded.num_threads = threads
        assert loaded.num_threads == threads
        (got,) = loaded(x)
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
    serial = export_library(lower_model(model, schedule=None), tmp_path / "serial.so", prefix="s")
    assert "set_num_threads" not in serial.header.read_text()  # type: ignore[union-attr]


def test_cross_compiled_object(compiled: CompiledModel, tmp_path: Path) -> None:
    path = tmp_path / "mlp_arm.o"
    try:
        exported = export_object(compiled, path, triple="aarch64-unknown-linux-gnu")
    except AotError as e:
        pytest.skip(f"LLVM here has no AArch64 target: {e}")
    data = path.read_bytes()
    assert data[:4] == b"\x7fELF"
    assert int.from_bytes(data[18:20], "little") == 183  # e_machine: EM_AARCH64
    assert exported.signature["triple"] == "aarch64-unknown-linux-gnu"
    assert "int64_t mlp_arm_run(const float *x, float *gemm_3);" in exported.header.read_text()  # type: ignore[union-attr]


def test_unknown_triple_is_one_line(compiled: CompiledModel, tmp_path: Path) -> None:
    with pytest.raises(AotError, match="unknown target triple 'nonsense-cpu-os'"):
        export_object(compiled, tmp_path / "x.o", triple="nonsense-cpu-os")


def test_missing_c_compiler_is_reported(
    compiled: CompiledModel, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CC", "no-such-cc-for-mlc")
    with pytest.raises(AotError, match="no C compiler"):
        compiled.export(tmp_path / "mlp.so")
    assert not (tmp_path / "mlp.so").exists()
