"""Op coverage of `convert-tl-to-llvm` on hand-written IR, each checked against the
interpreter: scf.for with iter_args and memref.load/store, returned allocations (in place)
and returned arguments (copied), i1 buffers, floordiv/mod bindings, integer division edge
cases, math intrinsics, memref globals, unsupported ops."""

from __future__ import annotations

import numpy as np
import pytest

import mlc
from mlc.interpreters.tl import run_buffers
from mlc.lowering.arith_to_llvm import LlvmLoweringError
from mlc.parser.mlir import parse_module
from mlc.targets.compiled import compile_model


def _check(text: str, *arrays: np.ndarray) -> list[np.ndarray]:
    module = parse_module(mlc.context(), text)
    want = run_buffers(module, *arrays)
    got = compile_model(module).run_buffers(*arrays)
    assert len(got) == len(want)
    for g, w in zip(got, want):
        assert g.dtype == w.dtype
        if np.issubdtype(w.dtype, np.floating):
            np.testing.assert_allclose(g, w, rtol=1e-6, atol=1e-6)
        else:
            np.testing.assert_array_equal(g, w)
    return got


def test_scf_for_iter_args_and_memref_load_store() -> None:
    text = """
    func.func @gather(%x: memref<6xf32>, %idx: memref<3xi32>) -> memref<3xf32> {
      %out = memref.alloc() : memref<3xf32>
      %c0 = arith.constant 0 : index
      %c1 = arith.constant 1 : index
      %c3 = arith.constant 3 : index
      %z = arith.constant 0.0 : f32
      %sum = scf.for %i = %c0 to %c3 step %c1 iter_args(%acc = %z) -> (f32) {
        %j = memref.load %idx[%i] : memref<3xi32>
        %k = arith.index_cast %j : i32 to index
        %v = memref.load %x[%k] : memref<6xf32>
        memref.store %v, %out[%i] : memref<3xf32>
        %a = arith.addf %acc, %v : f32
        scf.yield %a : f32
      }
      memref.store %sum, %out[%c0] : memref<3xf32>
      func.return %out : memref<3xf32>
    }
    """
    x = np.arange(6, dtype=np.float32) * 1.5
    got = _check(text, x, np.array([5, 0, 2], np.int32))
    np.testing.assert_allclose(got[-1], [7.5 + 0 + 3.0, 0.0, 3.0])


def test_returned_argument_is_copied_and_i1_buffers() -> None:
    text = """
    func.func @f(%a: memref<2x3xi1>, %b: memref<2x3xi1>) -> (memref<2x3xi1>, memref<2x3xi1>) {
      tl.for %i = 0 to 2 {
        tl.for %j = 0 to 3 {
          tl.block "xor" iterators(i: 2 parallel, j: 3 parallel) at(i = %i, j = %j)
              ins(%a[i, j] : memref<2x3xi1>) outs(%b[i, j] : memref<2x3xi1>) {
          ^bb0(%x: i1, %y: i1):
            %r = arith.xori %x, %y : i1
            tl.yield %r : i1
          }
        }
      }
      func.return %b, %a : memref<2x3xi1>, memref<2x3xi1>
    }
    """
    a = np.array([[True, False, True], [False, False, True]])
    b = np.array([[True, True, False], [False, True, True]])
    got = _check(text, a, b)
    np.testing.assert_array_equal(got[2], a ^ b)
    np.testing.assert_array_equal(got[3], a)


def test_floordiv_mod_bindings_pads_and_init() -> None:
    # out[i] = init 1 then (+)= x[(i + r) mod 5] for i in 0..3, r in 0..1, reading
    # y[i floordiv 2 - 1] with pad 10
    text = """
    func.func @f(%x: memref<5xi32>, %y: memref<2xi32>, %o: memref<4xi32>) {
      tl.for %i = 0 to 4 {
        tl.for %r = 0 to 2 {
          tl.block "k" iterators(i: 4 parallel, r: 2 reduction) at(i = %i, r = %r)
              ins(%x[(i + r) mod 5] : memref<5xi32>, %y[i floordiv 2 - 1] pad 10 : memref<2xi32>)
              outs(%o[i] init 1 : memref<4xi32>) {
          ^bb0(%a: i32, %b: i32, %c: i32):
            %s = arith.addi %a, %b : i32
            %t = arith.addi %c, %s : i32
            tl.yield %t : i32
          }
        }
      }
      func.return
    }
    """
    _check(text, np.arange(5, dtype=np.int32), np.array([7, -3], np.int32), np.zeros(4, np.int32))


def test_integer_division_never_traps() -> None:
    text = """
    func.func @f(%a: memref<6xi32>, %b: memref<6xi32>, %q: memref<6xi32>, %r: memref<6xi32>) {
      tl.for %i = 0 to 6 {
        tl.block "div" iterators(i: 6 parallel) at(i = %i)
            ins(%a[i] : memref<6xi32>, %b[i] : memref<6xi32>)
            outs(%q[i] : memref<6xi32>, %r[i] : memref<6xi32>) {
        ^bb0(%x: i32, %y: i32, %u: i32, %v: i32):
          %d = arith.divsi %x, %y : i32
          %m = arith.remsi %x, %y : i32
          tl.yield %d, %m : i32, i32
        }
      }
      func.return
    }
    """
    lo = np.iinfo(np.int32).min
    a = np.array([7, -7, lo, lo, 5, 0], np.int32)
    b = np.array([2, 2, -1, 0, 0, 3], np.int32)
    _check(text, a, b, np.zeros(6, np.int32), np.zeros(6, np.int32))


@pytest.mark.parametrize(
    "op", ["math.exp", "math.sqrt", "math.floor", "math.absf", "arith.negf", "math.sin"]
)
def test_unary_math(op: str) -> None:
    text = f"""
    func.func @f(%a: memref<7xf64>, %b: memref<7xf64>) {{
      tl.for %i = 0 to 7 {{
        tl.block "u" iterators(i: 7 parallel) at(i = %i)
            ins(%a[i] : memref<7xf64>) outs(%b[i] : memref<7xf64>) {{
        ^bb0(%x: f64, %y: f64):
          %r = {op} %x : f64
          tl.yield %r : f64
        }}
      }}
      func.return
    }}
    """
    a = np.array([0.0, 0.5, 1.25, 2.0, 3.5, 0.1, 4.0])
    _check(text, a, np.zeros(7))


def test_memref_global_constant() -> None:
    text = """
    "memref.global"() <{sym_name = "w", type = memref<2x2xf32>, sym_visibility = "private",
        initial_value = dense<[[1.0, 2.0], [3.0, 4.0]]> : tensor<2x2xf32>, constant}> : () -> ()
    "memref.global"() <{sym_name = "s", type = memref<2xf32>, sym_visibility = "private",
        initial_value = dense<0.5> : tensor<2xf32>, constant}> : () -> ()
    func.func @f(%a: memref<2x2xf32>) -> memref<2x2xf32> {
      %w = memref.get_global @w : memref<2x2xf32>
      %s = memref.get_global @s : memref<2xf32>
      %o = memref.alloc() : memref<2x2xf32>
      tl.for %i = 0 to 2 {
        tl.for %j = 0 to 2 {
          tl.block "m" iterators(i: 2 parallel, j: 2 parallel) at(i = %i, j = %j)
              ins(%a[i, j] : memref<2x2xf32>, %w[i, j] : memref<2x2xf32>,
                  %s[j] : memref<2xf32>) outs(%o[i, j] : memref<2x2xf32>) {
          ^bb0(%x: f32, %y: f32, %z: f32, %u: f32):
            %p = arith.mulf %x, %y : f32
            %q = arith.addf %p, %z : f32
            tl.yield %q : f32
          }
        }
      }
      func.return %o : memref<2x2xf32>
    }
    """
    got = _check(text, np.ones((2, 2), np.float32))
    np.testing.assert_allclose(got[-1], [[1.5, 2.5], [3.5, 4.5]])


def test_unsupported_op_is_named() -> None:
    text = """
    func.func @f(%a: memref<2xi32>, %b: memref<2xi32>) {
      tl.for %i = 0 to 2 {
        tl.block "u" iterators(i: 2 parallel) at(i = %i)
            ins(%a[i] : memref<2xi32>) outs(%b[i] : memref<2xi32>) {
        ^bb0(%x: i32, %y: i32):
          %r = math.ipowi %x, %x : i32
          tl.yield %r : i32
        }
      }
      func.return
    }
    """
    with pytest.raises(LlvmLoweringError, match="math.ipowi"):
        compile_model(parse_module(mlc.context(), text))
