"""Scalar lowerings added for the conformance suite, checked against the interpreter on edge
values: float <-> integer conversions (NaN, +-inf, out of range: no poison, the
interpreter's x86-64 results), shifts by the width or more, integer bit intrinsics, and
math functions without an LLVM instruction (LLVM >= 20 intrinsics and libm calls). Each is
run as a scalar `tl.block` body and, through `lower_scalar_op` on vector values, as vector
code (the libm calls scalarized by the emitter)."""

from __future__ import annotations

import ctypes
import platform
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from xdsl.builder import Builder
from xdsl.dialects import arith, llvm
from xdsl.dialects import math as xmath
from xdsl.dialects.builtin import (
    Float32Type,
    Float64Type,
    IntegerType,
    ModuleOp,
    VectorType,
    f32,
    f64,
    i8,
    i16,
    i32,
    i64,
)
from xdsl.ir import Attribute, Block, Operation, Region, SSAValue
from xdsl.rewriter import InsertPoint

import mlc
from mlc.interpreters.tl import run_buffers
from mlc.interpreters.tl.body import IMPLS
from mlc.lowering.arith_to_llvm import lower_scalar_op
from mlc.parser.mlir import parse_module
from mlc.targets.compiled import aligned_empty, compile_model
from mlc.targets.cpu import JitEngine
from mlc.targets.llvm_emit import emit_module
from mlc.transforms.loops.default_schedule import CpuDefaultSchedule, apply_default_schedules

X86 = platform.machine().lower() in ("x86_64", "amd64")
x86_only = pytest.mark.skipif(
    not X86, reason="out-of-range float -> int follows the interpreter's x86-64 numpy"
)

_NP = {
    "f32": np.float32,
    "f64": np.float64,
    "i8": np.int8,
    "i16": np.int16,
    "i32": np.int32,
    "i64": np.int64,
}
_TYPES: dict[str, Attribute] = {
    "f32": f32,
    "f64": f64,
    "i8": i8,
    "i16": i16,
    "i32": i32,
    "i64": i64,
}

NASTY = [0.0, -0.0, 0.5, -0.5, 1.5, -1.5, 2.5, -2.7, 100.9, -128.5, 255.5, 3e9, -3e9, 1e10]
OUT_OF_RANGE = [2.0**63, -(2.0**63), 1.8e19, 2.0**64, 1e30, -1e30, np.nan, np.inf, -np.inf]
#: around the i32 / u32 wrap points, where the <= 32-bit conversions change paths
WRAPS = [
    2.0**31,
    -(2.0**31),
    2.0**31 + 256,
    -(2.0**31) - 256,
    2.0**32 - 256,
    2.0**32,
    2.0**33 + 512,
    -(2.0**33) - 512,
    2.0**62,
    -(2.0**62),
    2.0**63 - 2.0**40,
    4294967295.5,
    2147483647.75,
    -2147483648.5,
    65535.9,
    -32768.7,
]


def _assert_same(got: np.ndarray, want: np.ndarray, rtol: float) -> None:
    assert got.dtype == want.dtype
    if np.issubdtype(want.dtype, np.floating):
        np.testing.assert_allclose(got, want, rtol=rtol, atol=0)
        zeros = want == 0
        np.testing.assert_array_equal(np.signbit(got[zeros]), np.signbit(want[zeros]))
    else:
        np.testing.assert_array_equal(got, want)


def _tl_check(body: str, ins: Sequence[np.ndarray], out: str, rtol: float = 0.0) -> None:
    """Compile a one-op `tl.block` over len(ins[0]) points; compare with the interpreter."""
    n = len(ins[0])
    names = [f"%a{k}" for k in range(len(ins))]
    types = [_mlir_type(a.dtype) for a in ins]
    params = ", ".join(f"{nm}: memref<{n}x{t}>" for nm, t in zip(names, types))
    reads = ", ".join(f"{nm}[i] : memref<{n}x{t}>" for nm, t in zip(names, types))
    bb = ", ".join(f"%x{k}: {t}" for k, t in enumerate(types))
    text = f"""
    func.func @f({params}, %o: memref<{n}x{out}>) {{
      tl.for %i = 0 to {n} {{
        tl.block "op" iterators(i: {n} parallel) at(i = %i)
            ins({reads}) outs(%o[i] : memref<{n}x{out}>) {{
        ^bb0({bb}, %y: {out}):
          %r = {body}
          tl.yield %r : {out}
        }}
      }}
      func.return
    }}
    """
    module = parse_module(mlc.context(), text)
    o = np.zeros(n, np.bool_ if out == "i1" else _NP[out])
    want = run_buffers(module, *ins, o)
    got = compile_model(module).run_buffers(*ins, o)
    _assert_same(got[-1], want[-1], rtol)


def _mlir_type(dtype: np.dtype) -> str:
    return {v: k for k, v in _NP.items()}[np.dtype(dtype).type]


# -- float <-> integer ------------------------------------------------------------------------


@pytest.mark.parametrize("src", ["f32", "f64"])
@pytest.mark.parametrize("dst", ["i8", "i32", "i64"])
@pytest.mark.parametrize("op", ["fptosi", "fptoui"])
def test_float_to_int_in_range(op: str, src: str, dst: str) -> None:
    x = np.array(NASTY, _NP[src])
    _tl_check(f"arith.{op} %x0 : {src} to {dst}", [x], dst)


@x86_only
@pytest.mark.parametrize("src", ["f32", "f64"])
@pytest.mark.parametrize("dst", ["i8", "i16", "i32", "i64"])
@pytest.mark.parametrize("op", ["fptosi", "fptoui"])
def test_float_to_int_out_of_range_does_not_trap(op: str, src: str, dst: str) -> None:
    x = np.array(OUT_OF_RANGE + WRAPS + [-1.0, -(2.0**40)], _NP[src])
    _tl_check(f"arith.{op} %x0 : {src} to {dst}", [x], dst)


def test_fptosi_to_i1_takes_the_low_bit() -> None:
    _tl_check("arith.fptosi %x0 : f64 to i1", [np.array([0.0, 1.0, 2.0, -1.0, 3.7])], "i1")


@pytest.mark.parametrize(("src", "dst"), [("i8", "f32"), ("i32", "f64"), ("i64", "f32")])
def test_uitofp_reads_unsigned(src: str, dst: str) -> None:
    info = np.iinfo(_NP[src])
    x = np.array([0, 1, -1, info.min, info.max, info.max // 3, -7], _NP[src])
    _tl_check(f"arith.uitofp %x0 : {src} to {dst}", [x], dst)


def test_uitofp_i64_rounds_once() -> None:
    # values >= 2^63 whose halving drops a bit that decides the rounding
    raw = [2**63, 2**63 + 1, 2**64 - 1, 2**63 + 2**11, 2**63 + 2**11 + 1, 2**63 + 3 * 2**10]
    x = np.array(raw, np.uint64).view(np.int64)
    for dst in ("f64", "f32"):
        _tl_check(f"arith.uitofp %x0 : i64 to {dst}", [x], dst)
        want = np.array([float(v) for v in raw]).astype(_NP[dst])  # one rounding for f64
        if dst == "f64":
            got = _vector_run(lambda a: arith.UIToFPOp(a[0], f64), [x], np.dtype(np.float64))
            np.testing.assert_array_equal(got, want)


# -- integer ops ----------------------------------------------------------------------------


@pytest.mark.parametrize("ty", ["i8", "i32", "i64"])
@pytest.mark.parametrize("op", ["shli", "shrsi", "shrui"])
def test_shifts_by_the_width_or_more(op: str, ty: str) -> None:
    info = np.iinfo(_NP[ty])
    width = info.bits
    a = np.array([1, -1, 5, info.min, info.max, -100, 77, 3, 12, -12], _NP[ty])
    b = np.array([0, 1, width - 1, width, width + 1, -1, 2, 127, width // 2, 3], _NP[ty])
    _tl_check(f"arith.{op} %x0, %x1 : {ty}", [a, b], ty)


@pytest.mark.parametrize("ty", ["i8", "i32", "i64"])
@pytest.mark.parametrize("op", ["math.absi", "math.ctpop", "math.ctlz", "math.cttz"])
def test_integer_bit_ops(op: str, ty: str) -> None:
    info = np.iinfo(_NP[ty])
    a = np.array([0, 1, -1, info.min, info.max, 96, -96, 2**6], _NP[ty])
    _tl_check(f"{op} %x0 : {ty}", [a], ty)


# -- math functions -------------------------------------------------------------------------

UNARY_MATH = [
    "tanh",
    "sinh",
    "cosh",
    "tan",
    "asin",
    "acos",
    "atan",
    "erf",
    "expm1",
    "log1p",
    "cbrt",
    "asinh",
    "acosh",
    "atanh",
]
MATH_VALUES = [0.0, -0.0, 1e-30, -1e-8, 0.25, -0.5, 0.999, 1.0, -1.0, 1.5, -3.0, 10.0, 30.0]
MATH_VALUES += [-100.0, 1e30, np.nan, np.inf, -np.inf]
RTOL = {"f32": 4e-6, "f64": 1e-13}


@pytest.mark.parametrize("ty", ["f32", "f64"])
@pytest.mark.parametrize("fn", UNARY_MATH)
def test_unary_math_functions(fn: str, ty: str) -> None:
    _tl_check(f"math.{fn} %x0 : {ty}", [np.array(MATH_VALUES, _NP[ty])], ty, RTOL[ty])


#: float remainders (texpr's `%`: C fmod): exact where x - trunc(x / y) * y is not
FREM_X = [1.0, -1.0, 1e30, -1e30, 5.5, -5.5, -0.0, 0.0, np.inf, 3.0, np.nan, 7.0, 1e-30, 2.5]
FREM_Y = [np.inf, -np.inf, 3.1, 3.1, 2.0, 2.0, 3.0, -3.0, 2.0, 0.0, 1.0, -2.5, 3e-31, np.nan]


@pytest.mark.parametrize("ty", ["f32", "f64"])
def test_float_remainder_is_exact(ty: str) -> None:
    x, y = np.array(FREM_X, _NP[ty]), np.array(FREM_Y, _NP[ty])
    _tl_check(f"llvm.frem %x0, %x1 : {ty}", [x, y], ty)
    with np.errstate(invalid="ignore"):
        want = np.fmod(x, y)
    np.testing.assert_array_equal(run_buffers_of_frem(x, y), want)


def run_buffers_of_frem(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """The interpreter's `llvm.frem` (numpy's fmod)."""
    op = llvm.FRemOp(*Block(arg_types=[_TYPES[_mlir_type(x.dtype)]] * 2).args)
    with np.errstate(invalid="ignore"):
        return np.asarray(IMPLS[llvm.FRemOp](op, [x, y]))


@pytest.mark.parametrize("ty", ["f32", "f64"])
def test_atan2(ty: str) -> None:
    y = np.array([0.0, -0.0, 1.0, -1.0, np.inf, np.nan, 3.0, -0.0], _NP[ty])
    x = np.array([-0.0, -1.0, 0.0, -np.inf, np.inf, 1.0, 4.0, 0.0], _NP[ty])
    _tl_check(f"math.atan2 %x0, %x1 : {ty}", [y, x], ty, RTOL[ty])


# -- the same lowerings on vector values ------------------------------------------------------


def _vector_run(
    make: Callable[[Sequence[SSAValue]], Operation], ins: Sequence[np.ndarray], out: np.dtype
) -> np.ndarray:
    """Lower `make(scalar placeholders)` with `lower_scalar_op` on `vector<n x T>` loads of
    `ins`, JIT it and return the stored vector."""
    n = len(ins[0])
    ptr = llvm.LLVMPointerType()
    scalars = Block(arg_types=[_TYPES[_mlir_type(a.dtype)] for a in ins])
    op = make(scalars.args)
    body = Block(arg_types=[ptr] * (len(ins) + 1))
    b = Builder(InsertPoint.at_end(body))
    vectors = [
        b.insert(llvm.LoadOp(p, VectorType(t.type, [n]))).dereferenced_value
        for p, t in zip(body.args, scalars.args)
    ]
    result = lower_scalar_op(b, op, vectors)
    assert isinstance(result.type, VectorType)
    b.insert(llvm.StoreOp(result, body.args[-1]))
    b.insert(llvm.ReturnOp())
    fn = llvm.FuncOp(
        "k",
        llvm.LLVMFunctionType([ptr] * (len(ins) + 1), llvm.LLVMVoidType()),
        linkage=llvm.LinkageAttr("external"),
        body=Region(body),
    )
    module = ModuleOp([fn])
    module.verify()
    engine = JitEngine()
    engine.add_module(emit_module(module, engine.triple, engine.data_layout))
    # unannotated vector loads / stores assume the vector's natural alignment
    arrays = [aligned_empty(a.shape, a.dtype, 512) for a in ins]
    for buf, a in zip(arrays, ins):
        buf[...] = a
    o = aligned_empty((n,), np.dtype(out), 512)
    proto = ctypes.CFUNCTYPE(None, *([ctypes.c_void_p] * (len(ins) + 1)))
    proto(engine.function_address("k"))(*(a.ctypes.data for a in (*arrays, o)))
    return o


def _reference(make: Callable[[Sequence[SSAValue]], Operation], ins: Sequence[np.ndarray]) -> Any:
    scalars = Block(arg_types=[_TYPES[_mlir_type(a.dtype)] for a in ins])
    op = make(scalars.args)
    with np.errstate(all="ignore"):
        return np.asarray(IMPLS[type(op)](op, list(ins)))


def _float_vectors() -> list[np.ndarray]:
    return [np.array(NASTY + OUT_OF_RANGE, np.float32), np.array(NASTY + OUT_OF_RANGE)]


VECTOR_CASES: list[tuple[str, Callable[[Sequence[SSAValue]], Operation], list[np.ndarray]]] = [
    ("fptosi f32->i32", lambda a: arith.FPToSIOp(a[0], i32), _float_vectors()[:1]),
    ("fptosi f64->i64", lambda a: arith.FPToSIOp(a[0], i64), _float_vectors()[1:]),
    ("fptoui f64->i32", lambda a: arith.FPToUIOp(a[0], i32), _float_vectors()[1:]),
    ("fptoui f32->i64", lambda a: arith.FPToUIOp(a[0], i64), _float_vectors()[:1]),
    *[
        (
            f"{name} {src}->{dst}",
            (lambda c, t: lambda a: c(a[0], t))(cls, ty),
            [np.array(NASTY + OUT_OF_RANGE + WRAPS, _NP[src])],
        )
        for name, cls in (("fptosi", arith.FPToSIOp), ("fptoui", arith.FPToUIOp))
        for src in ("f32", "f64")
        for dst, ty in (("i8", i8), ("i16", i16), ("i32", i32))
    ],
    (
        "uitofp i64->f32",
        lambda a: arith.UIToFPOp(a[0], f32),
        [np.array([0, 1, -1, 2**62, -(2**62), 7, -(2**63), 2**63 - 1], np.int64)],
    ),
    (
        "uitofp i8->f64",
        lambda a: arith.UIToFPOp(a[0], f64),
        [np.array([0, 1, -1, -128, 127, 3, -3, 64], np.int8)],
    ),
    *[
        (
            f"{cls.name} i32",
            (lambda c: lambda a: c(a[0], a[1]))(cls),
            [
                np.array([1, -1, 5, -(2**31), 2**31 - 1, -100, 77, 3], np.int32),
                np.array([0, 1, 31, 32, 33, -1, 2, 100], np.int32),
            ],
        )
        for cls in (arith.ShLIOp, arith.ShRSIOp, arith.ShRUIOp)
    ],
    (
        "absi i32",
        lambda a: xmath.AbsIOp(a[0]),
        [np.array([0, 1, -1, -(2**31), 2**31 - 1, -5, 5, 9], np.int32)],
    ),
    (
        "ctlz i64",
        lambda a: xmath.CountLeadingZerosOp(a[0]),
        [np.array([0, 1, -1, -(2**63), 2**40, 3, 5, 9], np.int64)],
    ),
    *[
        (
            f"{fn} {ty}",
            (lambda f: lambda a: f(a[0]))(getattr(xmath, cls)),
            [np.array(MATH_VALUES[:16], _NP[ty])],
        )
        for fn, cls in (("erf", "ErfOp"), ("tanh", "TanhOp"), ("log1p", "Log1pOp"))
        for ty in ("f32", "f64")
    ],
    *[
        (
            f"frem {ty}",
            lambda a: llvm.FRemOp(a[0], a[1]),
            [np.array(FREM_X, _NP[ty]), np.array(FREM_Y, _NP[ty])],
        )
        for ty in ("f32", "f64")
    ],
    (
        "atan2 f32",
        lambda a: xmath.Atan2Op(a[0], a[1]),
        [np.array(MATH_VALUES[:8], np.float32), np.array(MATH_VALUES[8:16], np.float32)],
    ),
]


@x86_only
@pytest.mark.parametrize(("label", "make", "ins"), VECTOR_CASES, ids=[c[0] for c in VECTOR_CASES])
def test_vector_lowering_matches_interpreter(
    label: str, make: Callable[[Sequence[SSAValue]], Operation], ins: list[np.ndarray]
) -> None:
    want = _reference(make, ins)
    got = _vector_run(make, ins, want.dtype)
    element = make(Block(arg_types=[_TYPES[_mlir_type(a.dtype)] for a in ins]).args)
    ty = element.results[0].type
    rtol = 4e-6 if isinstance(ty, Float32Type) else 1e-13 if isinstance(ty, Float64Type) else 0
    assert isinstance(ty, IntegerType | Float32Type | Float64Type)
    _assert_same(got, want.astype(got.dtype), rtol)


CLAMPED = """
func.func @f(%x: memref<{n}x{src}>, %y: memref<{n}x{dst}>) {{
  tl.kernel "q" iterators(i: {n} parallel) ins(%x[i] : memref<{n}x{src}>)
      outs(%y[i] : memref<{n}x{dst}>) {{
  ^bb0(%a: {src}, %b: {dst}):
    %lo = arith.constant {lo:.17g} : {src}
    %hi = arith.constant {hi:.17g} : {src}
    %c0 = {first} %a, {first_bound} : {src}
    %c1 = {second} %c0, {second_bound} : {src}
    %r = arith.{op} %c1 : {src} to {dst}
    tl.yield %r : {dst}
  }}
  func.return
}}
"""


@x86_only
@settings(max_examples=30, deadline=None)
@given(
    src=st.sampled_from(["f32", "f64"]),
    dst=st.sampled_from(["i8", "i16", "i32"]),
    op=st.sampled_from(["fptosi", "fptoui"]),
    nan_propagating=st.booleans(),
    max_first=st.booleans(),
    bounds=st.tuples(
        st.sampled_from([-(2.0**31) + 128, -129.5, -128.0, -1.0, 0.0, 3.0]),
        st.sampled_from([2.0**31 - 128, 127.0, 255.0, 255.9, 65535.0, 1e10]),
    ),
)
def test_clamped_conversion_matches_the_interpreter(
    src: str, dst: str, op: str, nan_propagating: bool, max_first: bool, bounds: tuple[float, float]
) -> None:
    """`quantize_linear`'s saturate-then-convert: a value clamped to constant bounds is
    converted by one `cvttps2dq` where the bounds fit i32 and the result has at most 16
    bits; vectorized and scalar, NaN, infinities and the bounds' edges give the
    interpreter's integers, whatever the bounds and the order of min and max."""
    lo, hi = bounds
    names = ("maximumf", "minimumf") if nan_propagating else ("maxnumf", "minnumf")
    ops = [(f"arith.{names[0]}", "%lo"), (f"arith.{names[1]}", "%hi")]
    if not max_first:
        ops.reverse()
    values = NASTY + OUT_OF_RANGE + [lo, hi, lo - 0.5, hi + 0.5, -1.0, 127.5, 128.0, -128.5]
    x = np.array(values * 2, _NP[src])  # 46 values: vector bodies and a tail
    text = CLAMPED.format(
        n=len(x), src=src, dst=dst, op=op, lo=lo, hi=hi,
        first=ops[0][0], first_bound=ops[0][1], second=ops[1][0], second_bound=ops[1][1],
    )  # fmt: skip
    module = parse_module(mlc.context(), text)
    y = np.zeros(len(x), _NP[dst])
    want = run_buffers(module, x, y)
    apply_default_schedules(module, CpuDefaultSchedule(vector_bits=256))
    compiled = compile_model(module)
    got = compiled.run_buffers(x, y)
    np.testing.assert_array_equal(got[-1], want[-1])
    fast = dst != "i32" and -(2.0**31) < lo and hi < 2.0**31
    assert ("llvm.floor" not in compiled.llvm_ir_unoptimized) == fast
