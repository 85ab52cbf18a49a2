"""`targets.inline_math`: the inline vector `exp` against float64 `exp`: within 2 ulp for
normal results, IEEE special values, subnormal results, every lane width it is defined for."""

from __future__ import annotations

import ctypes
import functools
import re

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from llvmlite import binding as llvm
from llvmlite import ir

import mlc
from mlc.lowering.llvm_vector_math import inline_symbol
from mlc.parser.mlir import parse_module
from mlc.registry import make_context
from mlc.targets.inline_math import define_inline, is_inline

LANES = (4, 8, 16)
TINY = np.float32(2.0**-149)  # the smallest subnormal


@functools.cache
def compiled_exp(lanes: int) -> tuple[object, ctypes.CFUNCTYPE]:
    """`void f(float *in, float *out, i64 n)`: `mlc_expf_v<lanes>` on each vector of `in`
    (n a multiple of `lanes`), JIT-compiled at O3 for this machine."""
    symbol = inline_symbol("exp", 32, lanes)
    assert symbol is not None and is_inline(symbol)
    module = ir.Module()
    exp = define_inline(module, symbol)
    assert define_inline(module, symbol) is exp  # defined once per module
    vec = ir.VectorType(ir.FloatType(), lanes)
    ptr = ir.PointerType(ir.FloatType())
    fn = ir.Function(module, ir.FunctionType(ir.VoidType(), [ptr, ptr, ir.IntType(64)]), "run")
    src, dst, n = fn.args
    entry, loop, done = (fn.append_basic_block(name) for name in ("entry", "loop", "done"))
    b = ir.IRBuilder(entry)
    b.cbranch(b.icmp_signed(">", n, ir.Constant(ir.IntType(64), 0)), loop, done)
    b.position_at_end(loop)
    i = b.phi(ir.IntType(64))
    i.add_incoming(ir.Constant(ir.IntType(64), 0), entry)
    x = b.load(b.bitcast(b.gep(src, [i]), vec.as_pointer()), align=4)
    b.store(b.call(exp, [x]), b.bitcast(b.gep(dst, [i]), vec.as_pointer()), align=4)
    following = b.add(i, ir.Constant(ir.IntType(64), lanes))
    i.add_incoming(following, loop)
    b.cbranch(b.icmp_signed("<", following, n), loop, done)
    b.position_at_end(done)
    b.ret_void()

    llvm.initialize_native_target()
    llvm.initialize_native_asmprinter()
    parsed = llvm.parse_assembly(str(module))
    parsed.verify()
    target = llvm.Target.from_default_triple().create_target_machine(
        cpu=llvm.get_host_cpu_name(), features=llvm.get_host_cpu_features().flatten(), opt=3
    )
    engine = llvm.create_mcjit_compiler(parsed, target)
    engine.finalize_object()
    run = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64)(
        engine.get_function_address("run")
    )
    return engine, run  # the engine owns the code: keep it alive with the function


def inline_exp(x: np.ndarray, lanes: int) -> np.ndarray:
    _, run = compiled_exp(lanes)
    padded = np.zeros(-(-x.size // lanes) * lanes, np.float32)
    padded[: x.size] = x.ravel()
    out = np.empty_like(padded)
    run(padded.ctypes.data, out.ctypes.data, padded.size)
    return out[: x.size].reshape(x.shape)


def assert_close_to_exp(x: np.ndarray, got: np.ndarray) -> None:
    """Within 2 ulp of float64 `exp` rounded to float32 where that is normal; within one
    subnormal step of it (plus 2 ulp) where it is subnormal; specials exact."""
    with np.errstate(over="ignore", under="ignore"):
        want = np.exp(x.astype(np.float64)).astype(np.float32)
    nan = np.isnan(x)
    assert np.isnan(got[nan]).all()
    ok = ~nan
    tolerance = 2 * np.spacing(np.abs(want[ok])) + TINY
    tolerance[np.isinf(want[ok])] = 0
    with np.errstate(invalid="ignore"):  # inf - inf where both overflow
        error = np.abs(got[ok].astype(np.float64) - want[ok].astype(np.float64))
    bad = ~((error <= tolerance) | (got[ok] == want[ok]))
    assert not bad.any(), list(zip(x[ok][bad][:5], got[ok][bad][:5], want[ok][bad][:5]))


@pytest.mark.parametrize("lanes", LANES)
def test_exp_on_a_dense_range_is_within_2_ulp(lanes: int) -> None:
    """Every 97th float32 from -110 to 95 (normal, subnormal, zero and inf results)."""
    x = np.linspace(-110, 95, 200_003, dtype=np.float32)
    assert_close_to_exp(x, inline_exp(x, lanes))


@pytest.mark.parametrize("lanes", LANES)
def test_exp_of_special_values(lanes: int) -> None:
    """IEEE specials, the normal / subnormal / overflow boundaries, alone and mixed with
    ordinary lanes (a special lane sends its whole vector down the exact path)."""
    specials = np.array(
        [0.0, -0.0, np.inf, -np.inf, np.nan, -np.nan, 1e-30, -1e-30, 88.72283, 88.72284,
         88.7229, 89.0, 1e30, -87.33654, -87.33655, -103.9, -104.0, -150.0, -1e30, 1.0],
        np.float32,
    )  # fmt: skip
    got = inline_exp(specials, lanes)
    assert_close_to_exp(specials, got)
    assert got[0] == 1 and got[1] == 1
    assert got[2] == np.inf and got[3] == 0 and np.isnan(got[4:6]).all()
    assert (got[-6:-1] >= 0).all() and got[-3] == 0 and got[-2] == 0


@settings(max_examples=60)
@given(
    x=arrays(np.float32, st.integers(1, 40), elements=st.floats(width=32, allow_nan=True)),
    lanes=st.sampled_from(LANES),
)
def test_exp_of_any_float32(x: np.ndarray, lanes: int) -> None:
    """Arbitrary float32 vectors (NaNs, infinities, huge and tiny values mixed)."""
    assert_close_to_exp(x, inline_exp(x, lanes))


def test_compiled_exp_calls_the_inline_function() -> None:
    """A vectorized Exp kernel calls `mlc_expf_v<lanes>` (defined in its module, no
    libmvec call left) and matches numpy within 2 ulp, tails and specials included."""
    text = """
func.func @main(%x: tensor<3x37xf32>) -> tensor<3x37xf32> {
  %y = graph.exp %x : (tensor<3x37xf32>) -> tensor<3x37xf32>
  func.return %y : tensor<3x37xf32>
}
"""
    model = mlc.compile(parse_module(make_context(), text), cache=False)
    unoptimized = model.llvm_ir_unoptimized
    assert re.search(r'define internal <\d+ x float> @"?mlc_expf_v\d+', unoptimized)
    assert "_ZGV" not in unoptimized and "_ZGV" not in model.llvm_ir
    x = np.random.default_rng(0).uniform(-100, 100, (3, 37)).astype(np.float32)
    x[0, :4] = [np.nan, np.inf, -np.inf, -95.0]
    (y,) = model(x)
    assert_close_to_exp(x, y)
