"""Reference semantics of tl: vectorized kernels against numpy references, the sequential
fallbacks, chunking, scalar blocks and loops next to xDSL's memref ops, and the body
evaluator's integer semantics against xDSL's own arith interpreter."""

from __future__ import annotations

import numpy as np
import pytest
from xdsl.dialects.builtin import ModuleOp
from xdsl.interpreter import Interpreter
from xdsl.interpreters.arith import ArithFunctions
from xdsl.interpreters.func import FuncFunctions

import mlc.interpreters.tl.kernel as tl_kernel
from mlc.dialects.tl import KernelOp
from mlc.interpreters import InterpretError
from mlc.interpreters.tl import buffer_view, run_buffers, run_kernel, to_buffer
from mlc.parser.mlir import parse_module
from mlc.registry import make_context

RNG = np.random.default_rng(1234)


def module(text: str) -> ModuleOp:
    return parse_module(make_context(), text, "test")


def kernel_of(m: ModuleOp) -> KernelOp:
    return next(op for op in m.walk() if isinstance(op, KernelOp))


MATMUL = """
func.func @mm(%A: memref<5x3x{t}>, %B: memref<3x4x{t}>, %C: memref<5x4x{t}>) {{
  tl.kernel "mm" iterators(m: 5 parallel, n: 4 parallel, k: 3 reduction) ins(%A[m, k] : memref<5x3x{t}>, %B[k, n] : memref<3x4x{t}>) outs(%C[m, n]{init} : memref<5x4x{t}>) {{
  ^bb0(%a: {t}, %b: {t}, %c: {t}):
    %p = arith.mul{s} %a, %b : {t}
    %s = arith.add{s} %c, %p : {t}
    tl.yield %s : {t}
  }}
  func.return
}}
"""


@pytest.mark.parametrize("t", ["f32", "i32", "f64", "i8"])
@pytest.mark.parametrize("init", [True, False])
def test_matmul(t: str, init: bool) -> None:
    s = "f" if t.startswith("f") else "i"
    zero = " init 0.0" if s == "f" else " init 0"
    m = module(MATMUL.format(t=t, s=s, init=zero if init else ""))
    dtype = {"f32": np.float32, "f64": np.float64, "i32": np.int32, "i8": np.int8}[t]
    A = RNG.integers(-50, 50, (5, 3)).astype(dtype)
    B = RNG.integers(-50, 50, (3, 4)).astype(dtype)
    C = RNG.integers(-5, 5, (5, 4)).astype(dtype)
    _, _, out = run_buffers(m, A, B, C)
    with np.errstate(over="ignore"):
        expected = (A @ B).astype(dtype) + (0 if init else C)
    if s == "i":
        np.testing.assert_array_equal(out, expected.astype(dtype))  # wraps at the width
    else:
        np.testing.assert_allclose(out, expected, rtol=1e-6)


CONV = """
func.func @conv(%I: memref<1x3x7x7xf32>, %W: memref<4x3x3x3xf32>, %O: memref<1x4x4x4xf32>) {
  tl.kernel "conv" iterators(n: 1 parallel, f: 4 parallel, oh: 4 parallel, ow: 4 parallel, c: 3 reduction, kh: 3 reduction, kw: 3 reduction) ins(%I[n, c, oh * 2 + kh - 1, ow * 2 + kw - 1] pad 0.5 : memref<1x3x7x7xf32>, %W[f, c, kh, kw] : memref<4x3x3x3xf32>) outs(%O[n, f, oh, ow] init 0.0 : memref<1x4x4x4xf32>) {
  ^bb0(%x: f32, %w: f32, %o: f32):
    %p = arith.mulf %x, %w : f32
    %s = arith.addf %o, %p : f32
    tl.yield %s : f32
  }
  func.return
}
"""


def conv_reference(
    x: np.ndarray, w: np.ndarray, stride: int, pad: int, pad_value: float
) -> np.ndarray:
    n, c, h, wd = x.shape
    f, _, kh, kw = w.shape
    xp = np.full((n, c, h + 2 * pad + stride, wd + 2 * pad + stride), pad_value, np.float64)
    xp[:, :, pad : pad + h, pad : pad + wd] = x
    oh = (h + 2 * pad - kh) // stride + 1
    ow = (wd + 2 * pad - kw) // stride + 1
    out = np.zeros((n, f, oh, ow))
    for i in range(oh):
        for j in range(ow):
            patch = xp[:, :, i * stride : i * stride + kh, j * stride : j * stride + kw]
            out[:, :, i, j] = np.einsum("nchw,fchw->nf", patch, w)
    return out


@pytest.mark.parametrize("chunk_points", [tl_kernel.CHUNK_POINTS, 40, 1])
def test_conv_with_padding_and_stride(chunk_points: int, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tl_kernel, "CHUNK_POINTS", chunk_points)
    m = module(CONV)
    x = RNG.standard_normal((1, 3, 7, 7)).astype(np.float32)
    w = RNG.standard_normal((4, 3, 3, 3)).astype(np.float32)
    _, _, out = run_buffers(m, x, w, np.zeros((1, 4, 4, 4), np.float32))
    np.testing.assert_allclose(out, conv_reference(x, w, 2, 1, 0.5), rtol=1e-5, atol=1e-5)


REDUCE = """
func.func @r(%X: memref<3x6xf32>, %Y: memref<3xf32>) {{
  tl.kernel "r" iterators(j: 6 reduction, i: 3 parallel) ins(%X[i, j] : memref<3x6xf32>) outs(%Y[i]{init} : memref<3xf32>) {{
  ^bb0(%x: f32, %y: f32):
{body}
  }}
  func.return
}}
"""


@pytest.mark.parametrize(
    "body,init,reference",
    [
        (
            "    %r = arith.maximumf %x, %y : f32\n    tl.yield %r : f32",
            " init 0xFF800000",
            lambda x, y: x.max(axis=1),
        ),
        (
            "    %r = arith.addf %y, %x : f32\n    tl.yield %r : f32",
            "",
            lambda x, y: y + x.sum(axis=1),
        ),
        (
            "    %r = arith.minnumf %y, %x : f32\n    tl.yield %r : f32",
            " init 1.0",
            lambda x, y: np.minimum(x.min(axis=1), 1.0),
        ),
        # y * 0.5 + x is not a recognised combiner: reduction points in order
        (
            "    %h = arith.constant 0.5 : f32\n    %s = arith.mulf %y, %h : f32\n"
            "    %r = arith.addf %s, %x : f32\n    tl.yield %r : f32",
            "",
            lambda x, y: _smooth(x, y),
        ),
    ],
)
def test_reductions(body: str, init: str, reference) -> None:
    m = module(REDUCE.format(body=body, init=init))
    x = RNG.standard_normal((3, 6)).astype(np.float32)
    y = RNG.standard_normal(3).astype(np.float32)
    _, out = run_buffers(m, x, y)
    np.testing.assert_allclose(out, reference(x, y), rtol=1e-5)


def _smooth(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    acc = y.astype(np.float32).copy()
    for j in range(x.shape[1]):
        acc = acc * np.float32(0.5) + x[:, j]
    return acc


ARGMAX = """
func.func @argmax(%X: memref<4x10xf32>, %V: memref<4xf32>, %I: memref<4xi64>) {
  tl.kernel "argmax" iterators(i: 4 parallel, j: 10 reduction) ins(%X[i, j] : memref<4x10xf32>) outs(%V[i] init 0xFF800000 : memref<4xf32>, %I[i] init 0 : memref<4xi64>) {
  ^bb0(%x: f32, %v: f32, %idx: i64):
    %j = tl.index "j"
    %ji = arith.index_cast %j : index to i64
    %gt = arith.cmpf ogt, %x, %v : f32
    %nv = arith.select %gt, %x, %v : f32
    %ni = arith.select %gt, %ji, %idx : i64
    tl.yield %nv, %ni : f32, i64
  }
  func.return
}
"""


def test_argmax_uses_iterator_index() -> None:
    x = RNG.integers(0, 4, (4, 10)).astype(np.float32)  # ties: the first maximum wins
    _, v, i = run_buffers(module(ARGMAX), x, np.zeros(4, np.float32), np.zeros(4, np.int64))
    np.testing.assert_array_equal(v, x.max(axis=1))
    np.testing.assert_array_equal(i, x.argmax(axis=1))


def test_non_injective_output_runs_point_by_point() -> None:
    m = module("""
func.func @pairs(%X: memref<8xi32>, %Y: memref<4xi32>) {
  tl.kernel "pairs" iterators(i: 8 parallel) ins(%X[i] : memref<8xi32>) outs(%Y[i floordiv 2] : memref<4xi32>) {
  ^bb0(%x: i32, %y: i32):
    %c = arith.constant 3 : i32
    %m = arith.muli %y, %c : i32
    %s = arith.addi %m, %x : i32
    tl.yield %s : i32
  }
  func.return
}
""")
    x = RNG.integers(-9, 9, 8).astype(np.int32)
    y = RNG.integers(-9, 9, 4).astype(np.int32)
    _, out = run_buffers(m, x, y)
    expected = y.copy()
    for i in range(8):
        expected[i // 2] = expected[i // 2] * 3 + x[i]
    np.testing.assert_array_equal(out, expected)


def test_iota_bool_and_xor_reduction() -> None:
    m = module("""
func.func @f(%X: memref<3x5xf32>, %P: memref<3x5xi1>, %Q: memref<3xi1>, %J: memref<3x5xindex>) {
  tl.kernel "positive" iterators(i: 3 parallel, j: 5 parallel) ins(%X[i, j] : memref<3x5xf32>) outs(%P[i, j] : memref<3x5xi1>, %J[i, j] : memref<3x5xindex>) {
  ^bb0(%x: f32, %p: i1, %jj: index):
    %z = arith.constant 0.0 : f32
    %g = arith.cmpf ogt, %x, %z : f32
    %j = tl.index "j"
    %i = tl.index "i"
    %c = arith.constant 10 : index
    %t = arith.muli %i, %c : index
    %s = arith.addi %t, %j : index
    tl.yield %g, %s : i1, index
  }
  tl.kernel "parity" iterators(i: 3 parallel, j: 5 reduction) ins(%P[i, j] : memref<3x5xi1>) outs(%Q[i] init 0 : memref<3xi1>) {
  ^bb0(%p: i1, %q: i1):
    %r = arith.xori %q, %p : i1
    tl.yield %r : i1
  }
  func.return
}
""")
    x = RNG.standard_normal((3, 5)).astype(np.float32)
    _, p, q, j = run_buffers(
        m, x, np.zeros((3, 5), bool), np.ones(3, bool), np.zeros((3, 5), np.int64)
    )
    np.testing.assert_array_equal(p, x > 0)
    np.testing.assert_array_equal(q, (x > 0).sum(axis=1) % 2 == 1)
    np.testing.assert_array_equal(j, np.arange(3)[:, None] * 10 + np.arange(5))


def test_math_ops_in_f32() -> None:
    m = module("""
func.func @f(%X: memref<16xf32>, %Y: memref<16xf32>) {
  tl.kernel "m" iterators(i: 16 parallel) ins(%X[i] : memref<16xf32>) outs(%Y[i] : memref<16xf32>) {
  ^bb0(%x: f32, %y: f32):
    %a = math.absf %x : f32
    %s = math.sqrt %a : f32
    %e = math.exp %x : f32
    %t = math.tanh %e : f32
    %r = math.round %x : f32
    %f = math.fma %s, %t, %r : f32
    %d = arith.divf %f, %e : f32
    tl.yield %d : f32
  }
  func.return
}
""")
    x = (RNG.standard_normal(16) * 2).astype(np.float32)
    _, y = run_buffers(m, x, np.zeros(16, np.float32))
    r = np.where(np.abs(x - np.trunc(x)) >= 0.5, np.trunc(x) + np.sign(x), np.trunc(x))
    expected = (np.sqrt(np.abs(x)) * np.tanh(np.exp(x)) + r) / np.exp(x)
    np.testing.assert_allclose(y, expected, rtol=1e-5)
    assert y.dtype == np.float32


def test_blocks_in_loops_with_memref_ops() -> None:
    """Pack X into a local buffer with memref.load/store, then scale it with a predicated
    block in a split loop (10 = 3 x 4, the last 2 points skipped)."""
    m = module("""
func.func @f(%X: memref<10xf32>, %Y: memref<10xf32>) {
  %buf = memref.alloc() : memref<10xf32>
  tl.for %t = 0 to 10 {
    %v = memref.load %X[%t] : memref<10xf32>
    memref.store %v, %buf[%t] : memref<10xf32>
  }
  tl.for %mo = 0 to 3 parallel {
    tl.for %mi = 0 to 4 vectorize(4) {
      tl.block "scale" iterators(m: 10 parallel) at(m = %mo * 4 + %mi) where(m < 10) ins(%buf[m] : memref<10xf32>, %X[m + 1] pad 1.0 : memref<10xf32>) outs(%Y[m] : memref<10xf32>) {
      ^bb0(%b: f32, %x: f32, %y: f32):
        %s = arith.mulf %b, %x : f32
        tl.yield %s : f32
      }
    }
  }
  memref.dealloc %buf : memref<10xf32>
  func.return
}
""")
    x = RNG.standard_normal(10).astype(np.float32)
    _, y = run_buffers(m, x, np.zeros(10, np.float32))
    np.testing.assert_array_equal(y, x * np.append(x[1:], np.float32(1.0)))


def test_block_init_applies_where_reductions_are_zero() -> None:
    m = module("""
func.func @f(%X: memref<2x3xi32>, %Y: memref<2xi32>) {
  tl.for %k = 0 to 3 {
    tl.for %i = 0 to 2 {
      tl.block "sum" iterators(i: 2 parallel, k: 3 reduction) at(i = %i, k = %k) ins(%X[i, k] : memref<2x3xi32>) outs(%Y[i] init 100 : memref<2xi32>) {
      ^bb0(%x: i32, %y: i32):
        %s = arith.addi %y, %x : i32
        tl.yield %s : i32
      }
    }
  }
  func.return
}
""")
    x = RNG.integers(-9, 9, (2, 3)).astype(np.int32)
    _, y = run_buffers(m, x, np.full(2, -7, np.int32))
    np.testing.assert_array_equal(y, 100 + x.sum(axis=1))


def test_buffers_are_views_of_shaped_arrays() -> None:
    from xdsl.dialects.builtin import f32

    buf = to_buffer(np.arange(6, dtype=np.float32).reshape(2, 3), f32)
    view = buffer_view(buf)
    view[1, 2] = 42.0
    assert buf.load((1, 2)) == 42.0
    buf.store((0, 0), -1.0)
    assert view[0, 0] == -1.0


def test_run_kernel_accepts_numpy_buffers() -> None:
    kernel = kernel_of(module(MATMUL.format(t="f32", s="f", init=" init 0.0")))
    A = RNG.standard_normal((5, 3)).astype(np.float32)
    B = RNG.standard_normal((3, 4)).astype(np.float32)
    C = np.full((5, 4), np.nan, np.float32)
    run_kernel(kernel, [A, B, C])
    np.testing.assert_allclose(C, A @ B, rtol=1e-5)


def test_run_buffers_checks_inputs() -> None:
    m = module(MATMUL.format(t="f32", s="f", init=""))
    with pytest.raises(InterpretError, match="takes 3 inputs, got 1"):
        run_buffers(m, np.zeros((5, 3), np.float32))
    with pytest.raises(InterpretError, match=r"must have shape \[3, 4\], got \[4, 3\]"):
        run_buffers(m, np.zeros((5, 3)), np.zeros((4, 3)), np.zeros((5, 4)))


# --------------------------------------------------------------------------- integer semantics

INT_OPS = [
    "addi",
    "subi",
    "muli",
    "divsi",
    "remsi",
    "floordivsi",
    "andi",
    "ori",
    "xori",
    "shli",
    "shrsi",
]
CMP_PREDICATES = ["eq", "ne", "slt", "sle", "sgt", "sge", "ult", "ule", "ugt", "uge"]


def xdsl_reference(op_text: str, result_type: str, a: int, b: int) -> int:
    m = module(f"""
func.func @f(%a: i32, %b: i32) -> {result_type} {{
  %r = {op_text} : i32
  func.return %r : {result_type}
}}
""")
    interpreter = Interpreter(m)
    interpreter.register_implementations(FuncFunctions())
    interpreter.register_implementations(ArithFunctions())
    (r,) = interpreter.call_op("f", (a, b))
    return int(r)


@pytest.mark.parametrize("op", INT_OPS + [f"cmpi {p}," for p in CMP_PREDICATES])
def test_integer_ops_match_xdsl_arith(op: str) -> None:
    is_cmp = op.startswith("cmpi")
    out_type = "i1" if is_cmp else "i32"
    text = f"arith.{op} %a, %b" if is_cmp else f"arith.{op} %a, %b"
    a = RNG.integers(-(2**31), 2**31, 12).astype(np.int32)
    b = RNG.integers(-(2**31), 2**31, 12).astype(np.int32)
    a[:4] = [7, -7, 7, -7]
    b[:4] = [2, 2, -2, -2]
    if op in ("shli", "shrsi"):
        b = np.abs(b) % 31
    if op in ("divsi", "remsi", "floordivsi"):
        b[b == 0] = 1
    m = module(f"""
func.func @k(%A: memref<12xi32>, %B: memref<12xi32>, %R: memref<12x{out_type}>) {{
  tl.kernel "k" iterators(i: 12 parallel) ins(%A[i] : memref<12xi32>, %B[i] : memref<12xi32>) outs(%R[i] : memref<12x{out_type}>) {{
  ^bb0(%a: i32, %b: i32, %r: {out_type}):
    %v = {text} : i32
    tl.yield %v : {out_type}
  }}
  func.return
}}
""")
    *_, got = run_buffers(m, a, b, np.zeros(12, bool if is_cmp else np.int32))
    expected = [xdsl_reference(text, out_type, int(x), int(y)) for x, y in zip(a, b)]
    np.testing.assert_array_equal(
        got.astype(np.int64),
        np.array(expected, np.int64) != 0 if is_cmp else np.array(expected, np.int64),
    )
