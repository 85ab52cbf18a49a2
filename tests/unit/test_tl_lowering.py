"""`convert-tl-kernel-to-loops` preserves semantics: random kernels (elementwise with
broadcasts and pads, matmul-like in any iterator order, strided/dilated convolutions with
guarded inputs, reductions with add/mul/max/min/xor and non-combiner updates, argmax) on
random inputs give the same buffers when interpreted before and after lowering (exact for
integers, allclose for floats)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import pytest
from hypothesis import given, note
from hypothesis import strategies as st
from xdsl.builder import Builder, InsertPoint
from xdsl.context import Context
from xdsl.dialects import arith, func, get_all_dialects
from xdsl.dialects.builtin import (
    FloatAttr,
    IndexType,
    IntegerAttr,
    MemRefType,
    ModuleOp,
    f32,
    i1,
    i32,
    i64,
)
from xdsl.ir import Attribute, BlockArgument, SSAValue

from mlc.dialects.tl import BlockOp, ForOp, IndexOp, KernelOp, Tl, build_kernel
from mlc.interpreters.tl import run_buffers
from mlc.lowering.tl_kernel_to_loops import (
    ConvertTlKernelToLoopsPass,
    KernelToLoops,
    kernel_to_loops,
)
from mlc.parser.mlir import parse_module
from mlc.testing.coverage import covers


def tl_context() -> Context:
    ctx = Context()
    for name, factory in get_all_dialects().items():
        ctx.register_dialect(name, factory)
    if "tl" not in ctx.registered_dialect_names:
        ctx.register_dialect("tl", lambda: Tl)
    return ctx


# --------------------------------------------------------------------------- IR building


def const(b: Builder, value: float | int, ty: Attribute) -> SSAValue:
    attr = FloatAttr(float(value), ty) if ty == f32 else IntegerAttr(int(value), ty)
    return b.insert(arith.ConstantOp(attr)).result


def binary(b: Builder, name: str, x: SSAValue, y: SSAValue) -> SSAValue:
    ty = x.type
    if name == "select":
        pred = "olt" if ty == f32 else "slt"
        cmp = arith.CmpfOp(x, y, pred) if ty == f32 else arith.CmpiOp(x, y, pred)
        c = b.insert(cmp).result
        return b.insert(arith.SelectOp(c, x, y)).result
    if name in ("divsi", "remsi"):  # never divide by zero: y | 1
        y = b.insert(arith.OrIOp(y, const(b, 1, ty))).result
    cls = {
        "add": arith.AddfOp if ty == f32 else arith.AddiOp,
        "sub": arith.SubfOp if ty == f32 else arith.SubiOp,
        "mul": arith.MulfOp if ty == f32 else arith.MuliOp,
        "max": arith.MaximumfOp if ty == f32 else arith.MaxSIOp,
        "min": arith.MinimumfOp if ty == f32 else arith.MinSIOp,
        "maxnum": arith.MaxnumfOp,
        "xor": arith.XOrIOp,
        "and": arith.AndIOp,
        "divsi": arith.DivSIOp,
        "remsi": arith.RemSIOp,
    }[name]
    return b.insert(cls(x, y)).result


FLOAT_OPS = ["add", "sub", "mul", "max", "min", "select"]
INT_OPS = ["add", "sub", "mul", "max", "min", "select", "xor", "and", "divsi", "remsi"]


def random_expr(
    draw: st.DrawFn, b: Builder, leaves: Sequence[SSAValue], ty: Attribute, depth: int
) -> SSAValue:
    if depth == 0 or draw(st.integers(0, 2)) == 0:
        k = draw(st.integers(0, len(leaves)))
        if k < len(leaves):
            return leaves[k]
        return const(b, draw(st.integers(-3, 3)), ty)
    name = draw(st.sampled_from(FLOAT_OPS if ty == f32 else INT_OPS))
    x = random_expr(draw, b, leaves, ty, depth - 1)
    y = random_expr(draw, b, leaves, ty, depth - 1)
    return binary(b, name, x, y)


def index_leaf(b: Builder, iterator: str, ty: Attribute) -> SSAValue:
    """`tl.index iterator` converted to the element type."""
    i = b.insert(IndexOp(iterator)).result
    as_int = b.insert(arith.IndexCastOp(i, i32)).result
    return as_int if ty == i32 else b.insert(arith.SIToFPOp(as_int, f32)).result


KernelFn = Callable[[Sequence[BlockArgument]], KernelOp]


@st.composite
def element_types(draw: st.DrawFn) -> Attribute:
    return draw(st.sampled_from([f32, i32]))


def random_array(draw: st.DrawFn, shape: Sequence[int], ty: Attribute) -> np.ndarray:
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    if ty == f32:
        return rng.standard_normal(tuple(shape)).astype(np.float32)
    if ty == i1:
        return rng.integers(0, 2, tuple(shape)).astype(bool)
    if ty == i64:
        return rng.integers(-5, 6, tuple(shape)).astype(np.int64)
    return rng.integers(-5, 6, tuple(shape)).astype(np.int32)


# --------------------------------------------------------------------------- kernel families

Case = tuple[list[MemRefType], KernelFn]


@st.composite
def elementwise(draw: st.DrawFn) -> Case:
    ty = draw(element_types())
    rank = draw(st.integers(1, 3))
    extents = draw(st.lists(st.integers(1, 4), min_size=rank, max_size=rank))
    names = [f"i{d}" for d in range(rank)]
    out_order = draw(st.permutations(range(rank)))
    specs: list[tuple[list[int], str, float | None]] = []
    for _ in range(draw(st.integers(1, 3))):
        dims = draw(st.lists(st.sampled_from(range(rank)), unique=True, max_size=rank))
        shifted = dims and draw(st.booleans())
        idx = [names[d] for d in dims]
        shape = [extents[d] for d in dims]
        pad = None
        if shifted:
            off = draw(st.integers(-2, 2))
            idx[0] = f"{idx[0]} + {off}" if off >= 0 else f"{idx[0]} - {-off}"
            pad = draw(st.integers(-2, 2))
        specs.append((shape, ", ".join(idx), pad))
    out_shape = [extents[d] for d in out_order]
    out_index = [names[d] for d in out_order]
    if draw(st.booleans()):  # not injective: pairs of points update one element, in order
        out_index[0] = f"{out_index[0]} floordiv 2"
        out_shape[0] = (out_shape[0] + 1) // 2
    init = draw(st.sampled_from([None, 0, 3]))
    types = [MemRefType(ty, s) for s, _, _ in specs] + [MemRefType(ty, out_shape)]
    use_current = draw(st.booleans())
    use_index = draw(st.booleans())

    def make(args: Sequence[BlockArgument]) -> KernelOp:
        def body(b: Builder, vals: Sequence[BlockArgument]) -> SSAValue:
            leaves = list(vals[: len(specs)])
            if use_index:
                leaves.append(index_leaf(b, draw(st.sampled_from(names)), ty))
            e = random_expr(draw, b, leaves, ty, 3)
            if use_current:  # update the current value: c op e
                return binary(b, draw(st.sampled_from(["add", "max", "sub"])), vals[-1], e)
            return e

        return build_kernel(
            "ew",
            [(n, e, "parallel") for n, e in zip(names, extents)],
            inputs=[(a, idx, pad) for a, (_, idx, pad) in zip(args, specs)],
            outputs=[(args[len(specs)], ", ".join(out_index), init)],
            body=body,
        )

    return types, make


@st.composite
def matmul_like(draw: st.DrawFn) -> Case:
    ty = draw(element_types())
    m, n, k = (draw(st.integers(1, 4)) for _ in range(3))
    order = draw(
        st.permutations([("m", m, "parallel"), ("n", n, "parallel"), ("k", k, "reduction")])
    )
    a_t, b_t, c_t = (draw(st.booleans()) for _ in range(3))
    init = draw(st.sampled_from([None, 0, 2]))
    types = [
        MemRefType(ty, [k, m] if a_t else [m, k]),
        MemRefType(ty, [n, k] if b_t else [k, n]),
        MemRefType(ty, [n, m] if c_t else [m, n]),
    ]
    swap = draw(st.booleans())

    def make(args: Sequence[BlockArgument]) -> KernelOp:
        def body(b: Builder, vals: Sequence[BlockArgument]) -> SSAValue:
            p = binary(b, "mul", vals[0], vals[1])
            return binary(b, "add", p, vals[2]) if swap else binary(b, "add", vals[2], p)

        return build_kernel(
            "mm",
            order,
            inputs=[(args[0], "k, m" if a_t else "m, k"), (args[1], "n, k" if b_t else "k, n")],
            outputs=[(args[2], "n, m" if c_t else "m, n", init)],
            body=body,
        )

    return types, make


@st.composite
def conv_like(draw: st.DrawFn) -> Case:
    """out[f, o] (+)= x[c, o * stride + kk * dilation - pad] * w[f, c, kk], guarded."""
    ty = draw(element_types())
    f, c, kk, o = (draw(st.integers(1, 3)) for _ in range(4))
    stride, dilation, pad = (
        draw(st.integers(1, 2)),
        draw(st.integers(1, 2)),
        draw(st.integers(0, 2)),
    )
    length = draw(st.integers(1, 8))
    pad_value = draw(st.sampled_from([0, 1]))
    init = draw(st.sampled_from([None, 0]))
    types = [MemRefType(ty, [c, length]), MemRefType(ty, [f, c, kk]), MemRefType(ty, [f, o])]
    x_index = f"c, o * {stride} + kk * {dilation} - {pad}"

    def make(args: Sequence[BlockArgument]) -> KernelOp:
        return build_kernel(
            "conv",
            [
                ("f", f, "parallel"),
                ("o", o, "parallel"),
                ("c", c, "reduction"),
                ("kk", kk, "reduction"),
            ],
            inputs=[(args[0], x_index, pad_value), (args[1], "f, c, kk")],
            outputs=[(args[2], "f, o", init)],
            body=lambda b, v: binary(b, "add", v[2], binary(b, "mul", v[0], v[1])),
        )

    return types, make


@st.composite
def reduction(draw: st.DrawFn) -> Case:
    ty = draw(element_types())
    rank = draw(st.integers(1, 3))
    extents = draw(st.lists(st.integers(1, 4), min_size=rank, max_size=rank))
    reduced = set(draw(st.lists(st.sampled_from(range(rank)), unique=True, min_size=1)))
    names = [f"r{d}" if d in reduced else f"p{d}" for d in range(rank)]
    order = draw(st.permutations(range(rank)))
    kept = [d for d in range(rank) if d not in reduced]
    combiner = draw(
        st.sampled_from(
            ["add", "mul", "max", "min", "maxnum", "smooth"]
            if ty == f32
            else ["add", "mul", "max", "min", "xor", "smooth"]
        )
    )
    init = draw(st.sampled_from([None, 1]))
    types = [MemRefType(ty, extents), MemRefType(ty, [extents[d] for d in kept])]
    current_first = draw(st.booleans())

    def make(args: Sequence[BlockArgument]) -> KernelOp:
        def body(b: Builder, v: Sequence[BlockArgument]) -> SSAValue:
            e = random_expr(draw, b, [v[0]], ty, 1)
            if combiner == "smooth":  # c * 2 + e: no combiner, reduction points in order
                scaled = binary(b, "mul", v[1], const(b, 2, ty))
                return binary(b, "add", scaled, e)
            pair = (v[1], e) if current_first else (e, v[1])
            return binary(b, combiner, *pair)

        return build_kernel(
            "reduce",
            [(names[d], extents[d], "reduction" if d in reduced else "parallel") for d in order],
            inputs=[(args[0], ", ".join(names))],
            outputs=[(args[1], ", ".join(names[d] for d in kept), init)],
            body=body,
        )

    return types, make


@st.composite
def argmax(draw: st.DrawFn) -> Case:
    rows, cols = draw(st.integers(1, 4)), draw(st.integers(1, 5))
    types = [MemRefType(f32, [rows, cols]), MemRefType(f32, [rows]), MemRefType(i64, [rows])]

    def make(args: Sequence[BlockArgument]) -> KernelOp:
        def body(b: Builder, v: Sequence[BlockArgument]) -> list[SSAValue]:
            j = b.insert(arith.IndexCastOp(b.insert(IndexOp("j")).result, i64)).result
            gt = b.insert(arith.CmpfOp(v[0], v[1], "ogt")).result
            return [
                b.insert(arith.SelectOp(gt, v[0], v[1])).result,
                b.insert(arith.SelectOp(gt, j, v[2])).result,
            ]

        return build_kernel(
            "argmax",
            [("i", rows, "parallel"), ("j", cols, "reduction")],
            inputs=[(args[0], "i, j")],
            outputs=[(args[1], "i", float("-inf")), (args[2], "i", 0)],
            body=body,
        )

    return types, make


FAMILIES = [elementwise(), matmul_like(), conv_like(), reduction(), argmax()]


class KernelCase:
    """A generated module and its inputs; shown as textual IR when a property fails."""

    def __init__(self, module: ModuleOp, arrays: list[np.ndarray]) -> None:
        self.module = module
        self.arrays = arrays

    def __repr__(self) -> str:
        inputs = "\n".join(
            f"// input #{i}: {a.dtype}{list(a.shape)} {a.tolist()}"
            for i, a in enumerate(self.arrays)
        )
        return f"{self.module}\n{inputs}"


@st.composite
def kernel_modules(draw: st.DrawFn) -> KernelCase:
    types, make = draw(st.one_of(FAMILIES))
    f = func.FuncOp("f", (list(types), []))
    builder = Builder(InsertPoint.at_end(f.body.block))
    builder.insert(make(f.body.block.args))
    builder.insert(func.ReturnOp())
    module = ModuleOp([f])
    arrays = [random_array(draw, t.get_shape(), t.element_type) for t in types]
    return KernelCase(module, arrays)


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
    ctx = tl_context()
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
    module = parse_module(tl_context(), MATMUL, "mm")
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
    module = parse_module(tl_context(), MATMUL, "mm")
    ConvertTlKernelToLoopsPass().apply(tl_context(), module)
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
    ctx = tl_context()
    module = parse_module(ctx, text, "pairs")
    x, y = np.array([1, 2, 3, 4], np.int32), np.array([9, 9], np.int32)
    assert_same(run_buffers(module, x, y), [x, np.array([3, 7], np.int32)])
    ConvertTlKernelToLoopsPass(keep_inits=True).apply(ctx, module)
    assert "pairs_init" in str(module)
    assert_same(run_buffers(module, x, y), [x, np.array([3, 7], np.int32)])
