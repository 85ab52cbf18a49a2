"""Differential tests of the LLVM path: `convert-tl-to-llvm` + emitter + CPU JIT against
the reference interpreter (exact for integers, allclose for floats), the MLP example end
to end, re-parseable llvm-dialect output, and input validation before native code runs."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, note
from hypothesis import strategies as st
from xdsl.dialects import llvm
from xdsl.dialects.builtin import ModuleOp
from xdsl.printer import Printer

import mlc
from mlc.dialects.tl import ForOp
from mlc.interpreters.tl import run_buffers
from mlc.lowering.tl_kernel_to_loops import ConvertTlKernelToLoopsPass
from mlc.lowering.tl_to_llvm import ConvertTlToLlvmPass
from mlc.parser.mlir import parse_module
from mlc.targets.compiled import CompiledModel, InvalidInputError, compile_model
from mlc.targets.cpu import host_features
from mlc.testing.coverage import covers
from mlc.testing.strategies import KernelCase, kernel_modules
from mlc.transforms.loops.tiling import split

EXAMPLES = Path(__file__).resolve().parents[3] / "examples"


def _text(module: ModuleOp) -> str:
    out = io.StringIO()
    Printer(out).print_op(module)
    return out.getvalue()


def _compare(got: list[np.ndarray], want: list[np.ndarray]) -> None:
    assert len(got) == len(want)
    for g, w in zip(got, want):
        assert g.dtype == w.dtype and g.shape == w.shape
        if np.issubdtype(w.dtype, np.floating):
            np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-5)
        else:
            np.testing.assert_array_equal(g, w)


def _loops(case: KernelCase, keep_inits: bool = False) -> ModuleOp:
    module = case.module.clone()
    ConvertTlKernelToLoopsPass(keep_inits=keep_inits).apply(mlc.context(), module)
    return module


@covers("convert-tl-to-llvm")
@given(kernel_modules(), st.integers(1, 3), st.booleans(), st.booleans())
def test_jit_matches_interpreter(
    case: KernelCase, factor: int, do_split: bool, keep_inits: bool
) -> None:
    """Kernels lowered to loops (inits in their own nests, or kept in the blocks: a select
    of the init where every reduction iterator is 0), some split imperfectly, give the
    interpreter's results natively."""
    module = _loops(case, keep_inits)
    if do_split:  # an imperfect split gives predicated blocks
        loops = [op for op in module.walk() if isinstance(op, ForOp)]
        split(loops[-1], min(factor + 1, loops[-1].trip_count))
    note(_text(module))
    want = run_buffers(module, *case.arrays)
    got = compile_model(module).run_buffers(*case.arrays)
    _compare(got, want)


@given(kernel_modules())
def test_llvm_dialect_output_reparses(case: KernelCase) -> None:
    module = _loops(case)
    ConvertTlToLlvmPass().apply(mlc.context(), module)
    module.verify()
    assert all(isinstance(op, llvm.FuncOp | llvm.GlobalOp) for op in module.ops)
    text = _text(module)
    again = parse_module(mlc.context(), text)
    assert _text(again) == text


@pytest.fixture(scope="module")
def mlp() -> CompiledModel:
    return compile_model(EXAMPLES / "mlp.onnx")


def test_mlp_end_to_end(mlp: CompiledModel) -> None:
    x = np.random.default_rng(0).standard_normal((8, 784)).astype(np.float32)
    (want,) = mlc.interpret(mlc.import_onnx(EXAMPLES / "mlp.onnx"), x)
    (got,) = mlp(x)
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)
    assert "llvm.func @main" in mlp.llvm_dialect


def test_mlp_matches_onnxruntime(mlp: CompiledModel) -> None:
    ort = pytest.importorskip("onnxruntime")
    sess = ort.InferenceSession(str(EXAMPLES / "mlp.onnx"), providers=["CPUExecutionProvider"])
    x = np.random.default_rng(1).standard_normal((8, 784)).astype(np.float32)
    (want,) = sess.run(None, {sess.get_inputs()[0].name: x})
    (got,) = mlp(x)
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((), "takes 1 inputs"),
        ((np.zeros((8, 784), np.float32),) * 2, "takes 1 inputs"),
        ((np.zeros((8, 783), np.float32),), "must have shape [8, 784]"),
        ((np.zeros((8, 784), np.float64),), "must have dtype float32"),
        ((np.zeros((784, 8), np.float32).T,), "not C-contiguous"),
        (([[0.0] * 784] * 8,), "must be a numpy array"),
    ],
)
def test_inputs_validated_before_native_code(
    mlp: CompiledModel, args: tuple[object, ...], message: str
) -> None:
    with pytest.raises(InvalidInputError, match=message.replace("[", r"\[").replace("]", r"\]")):
        mlp(*args)  # type: ignore[arg-type]


def test_unaligned_and_aliased_inputs_are_copied() -> None:
    text = """
    func.func @f(%a: memref<5xf32>, %b: memref<5xf32>, %c: memref<5xf32>) {
      tl.for %i = 0 to 5 {
        tl.block "add" iterators(i: 5 parallel) at(i = %i)
            ins(%a[i] : memref<5xf32>, %b[i] : memref<5xf32>) outs(%c[i] : memref<5xf32>) {
        ^bb0(%x: f32, %y: f32, %z: f32):
          %s = arith.addf %x, %y : f32
          tl.yield %s : f32
        }
      }
      func.return
    }
    """
    module = parse_module(mlc.context(), text)
    model = compile_model(module)
    raw = np.arange(11, dtype=np.float32)
    a = raw[1:6]  # 4-byte aligned only
    out = model.run_buffers(a, a, np.zeros(5, np.float32))
    np.testing.assert_array_equal(out[2], 2 * a)
    np.testing.assert_array_equal(a, raw[1:6])  # inputs are not written


def test_host_features() -> None:
    f = host_features()
    assert f.vector_bits in (128, 256, 512)
    assert f.vector_width(4) == f.vector_bits // 32
    if f.avx512f:
        assert f.vector_width(4) == 16


def test_tiny_resnet_end_to_end() -> None:
    model = compile_model(EXAMPLES / "tiny_resnet.onnx")
    (spec,) = model.inputs
    x = np.random.default_rng(2).standard_normal(spec.shape).astype(np.float32)
    want = mlc.interpret(mlc.import_onnx(EXAMPLES / "tiny_resnet.onnx"), x)
    _compare(model(x), want)
