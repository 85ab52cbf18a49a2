"""`convert-tl-kernel-to-loops` preserves semantics: random kernels (elementwise with
broadcasts and pads, matmul-like in any iterator order, strided/dilated convolutions with
guarded inputs, reductions with add/mul/max/min/xor and non-combiner updates, argmax) on
random inputs give the same buffers when interpreted before and after lowering (exact for
integers, allclose for floats)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pytest
from hypothesis import given, note
from hypothesis import strategies as st
from xdsl.dialects.builtin import (
    IndexType,
)

from mlc.dialects.tl import BlockOp, ForOp, KernelOp
from mlc.interpreters.tl import run_buffers
from mlc.lowering.tl_kernel_to_loops import (
    ConvertTlKernelToLoopsPass,
    KernelToLoops,
    kernel_to_loops,
)
from mlc.parser.mlir import parse_module
from mlc.registry import make_context
from mlc.testing.coverage import covers
from mlc.testing.strategies import KernelCase, kernel_modules

# --------------------------------------------------------------------------- properties


def assert_same(before: Sequence[np.ndarray], after: Sequence[np.ndarray]) -> None:
    assert len(before) == len(after)
    for x, y in zip(before, after):
        assert x.dtype == y.dtype and x.shape == y.shape
        if np.issubdtype(x.dtype, np.floating):
            np.testing.assert_allclose(x, y, rtol=1e-4, atol=1e-5, equal_nan=True)
        else:
            np.testing.assert_array_equal(x, y)


@covers("convert-tl-kernel-to-loops", "tl-kernel-to-loops")
@given(case=kernel_modules(), keep_inits=st.booleans())
def test_lowering_preserves_semantics(case: KernelCase, keep_inits: bool) -> None:
    module, arrays = case.module, case.arrays
    module.verify()
    text = str(module)
    ctx = make_context()
    assert str(parse_module(ctx, text, "generated")) == text
    before = run_buffers(module, *arrays)
    ConvertTlKernelToLoopsPass(keep_inits=keep_inits).apply(ctx, module)
    module.verify()
    note(f"after lowering:\n{module}")
    assert not any(isinstance(op, KernelOp) for op in module.walk())
    after = run_buffers(module, *arrays)
    assert_same(before, after)


# --------------------------------------------------------------------------- structure


MATMUL = """
func.func @mm(%A: memref<4x2xf32>, %B: memref<2x3xf32>, %C: memref<4x3xf32>) {
  tl.kernel "mm" iterators(m: 4 parallel, n: 3 parallel, k: 2 reduction) ins(%A[m, k] : memref<4x2xf32>, %B[k, n] : memref<2x3xf32>) outs(%C[m, n] init 0.0 : memref<4x3xf32>) {
  ^bb0(%a: f32, %b: f32, %c: f32):
    %p = arith.mulf %a, %b : f32
    %s = arith.addf %c, %p : f32
    tl.yield %s : f32
  }
  func.return
}
"""


@pytest.mark.parametrize("keep_inits", [False, True])
def test_kernel_becomes_one_loop_per_iterator(keep_inits: bool) -> None:
    module = parse_module(make_context(), MATMUL, "mm")
    kernel = next(op for op in module.walk() if isinstance(op, KernelOp))
    ops = kernel_to_loops(kernel, keep_inits)
    assert len(ops) == (1 if keep_inits else 2)
    nest = ops[-1]
    extents = []
    while isinstance(nest, ForOp):
        extents.append(nest.ub)
        nest = nest.body.block.first_op
    assert extents == [4, 3, 2]
    assert isinstance(nest, BlockOp)
    assert (nest.init_values[0] is not None) == keep_inits
    assert [v.name_hint for v in nest.loop_vars] == ["m", "n", "k"]


def test_pattern_and_pass_are_exposed() -> None:
    assert ConvertTlKernelToLoopsPass.name == "convert-tl-kernel-to-loops"
    assert isinstance(KernelToLoops(keep_inits=True), KernelToLoops)
    module = parse_module(make_context(), MATMUL, "mm")
    ConvertTlKernelToLoopsPass().apply(make_context(), module)
    module.verify()
    labels = [op.label.data for op in module.walk() if isinstance(op, BlockOp)]
    assert labels == ["mm_init", "mm"]
    assert all(
        isinstance(v.type, IndexType)
        for op in module.walk()
        if isinstance(op, BlockOp)
        for v in op.loop_vars
    )


def test_keep_inits_decomposes_non_injective_outputs() -> None:
    """A block init applies at every point whose reduction iterators are 0; with an output
    reached by several parallel points that differs from "fill first", so such an init
    gets its own nest even with keep_inits."""
    text = """
func.func @f(%X: memref<4xi32>, %Y: memref<2xi32>) {
  tl.kernel "pairs" iterators(i: 4 parallel) ins(%X[i] : memref<4xi32>) outs(%Y[i floordiv 2] init 0 : memref<2xi32>) {
  ^bb0(%x: i32, %y: i32):
    %s = arith.addi %y, %x : i32
    tl.yield %s : i32
  }
  func.return
}
"""
    ctx = make_context()
    module = parse_module(ctx, text, "pairs")
    x, y = np.array([1, 2, 3, 4], np.int32), np.array([9, 9], np.int32)
    assert_same(run_buffers(module, x, y), [x, np.array([3, 7], np.int32)])
    ConvertTlKernelToLoopsPass(keep_inits=True).apply(ctx, module)
    assert "pairs_init" in str(module)
    assert_same(run_buffers(module, x, y), [x, np.array([3, 7], np.int32)])
