"""`pack-matmul-weights`: a product by a constant weight, read through panel-major packed
panels, computes the same product."""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st
from xdsl.dialects.builtin import ModuleOp, TensorType, f32, f64
from xdsl.ir import SSAValue
from xdsl.pattern_rewriter import PatternRewriteWalker
from xdsl.transforms.dead_code_elimination import region_dce

import mlc
from mlc.dialects import graph as g
from mlc.testing.coverage import covers
from mlc.testing.semantics import assert_preserves_semantics
from mlc.testing.strategies import Program, ProgramBuilder, graph_programs
from mlc.transforms.graph import PackMatmulWeights, PackMatmulWeightsPass
from mlc.transforms.graph.pack_weights import packed_panels

PANEL = 4


def _shape(v: SSAValue) -> list[int]:
    assert isinstance(v.type, TensorType)
    return list(v.type.get_shape())


def gen_product(draw: st.DrawFn, p: ProgramBuilder) -> None:
    # matmul(a, B) or gemm(a, B, C) with a constant B: mostly an N of two or more panels
    # of 4 (what the pattern packs); near misses it leaves alone about one product in
    # four (N = 4 or 6, B used twice, alpha != 1, a transposed A, more than 12 rows)
    x = p.pick(lambda v: not isinstance(v.owner, g.ConstantOp) and bool(_shape(v)))
    assert x is not None
    k = _shape(x)[-1]
    n = draw(st.sampled_from([8, 12, 16] * 3 + [4, 6]))
    if draw(st.booleans()):
        if len(_shape(x)) < 2:
            x = p.insert(g.ReshapeOp.to(x, [1, k]))
        b = p.constant([k, n])
        p.insert(g.MatMulOp.create([x, b]))
    else:
        a = p.insert(g.ReshapeOp.to(x, [int(np.prod(_shape(x)[:-1])), k]))
        trans_a = draw(st.sampled_from([False] * 7 + [True]))
        if trans_a:
            a = p.insert(g.TransposeOp.create([a], perm=[1, 0]))
        rows, depth = _shape(a)[1] if trans_a else _shape(a)[0], _shape(a)[0 if trans_a else 1]
        trans_b = draw(st.booleans())
        b = p.constant([n, depth] if trans_b else [depth, n])
        operands = [a, b]
        if draw(st.booleans()):
            c_shape = draw(st.sampled_from([[n], [1, n], [rows, n], [rows, 1], [1]]))
            operands.append(p.constant(c_shape) if draw(st.booleans()) else p.new_arg(c_shape))
        alpha = draw(st.sampled_from([1.0] * 5 + [-2.0]))
        p.insert(g.GemmOp.create(operands, alpha=alpha, beta=1.0, trans_a=trans_a, trans_b=trans_b))
    if draw(st.sampled_from([False] * 9 + [True])):
        p.insert(g.NegOp.create([b]))  # a second use of B: left alone


def programs() -> st.SearchStrategy[Program]:
    return graph_programs([gen_product], element_types=(f32, f64), max_ops=2)


@covers("graph-pack-matmul-weights")
@given(programs())
def test_pack_matmul_weights_pattern_preserves_semantics(program: Program) -> None:
    assert_preserves_semantics(
        PackMatmulWeights(PANEL, max_rows=12), program.module, inputs=program.inputs
    )


@covers("pack-matmul-weights")
@given(programs())
def test_pack_matmul_weights_pass_preserves_semantics(program: Program) -> None:
    assert_preserves_semantics(
        PackMatmulWeightsPass(panel=PANEL, max_rows=12), program.module, inputs=program.inputs
    )


def test_packed_panels_layout() -> None:
    b = np.arange(3 * 8).reshape(3, 8)
    packed = packed_panels(b, 4)
    assert packed.shape == (2, 3, 4)
    for j in range(2):
        for k in range(3):
            np.testing.assert_array_equal(packed[j, k], b[k, 4 * j : 4 * j + 4])


def _product_module(rows: int, n: int, gemm: bool) -> ModuleOp:
    rng = np.random.default_rng(0)
    p = ProgramBuilder(lambda s: None, f32, rng)  # type: ignore[arg-type, return-value]
    x = p.new_arg([rows, 5])
    w = p.insert(g.ConstantOp.from_array(rng.standard_normal((5, n)).astype(np.float32)))
    if gemm:
        bias = p.insert(g.ConstantOp.from_array(rng.standard_normal(n).astype(np.float32)))
        p.insert(g.GemmOp.create([x, w, bias], alpha=1.0, beta=1.0, trans_a=False, trans_b=False))
    else:
        p.insert(g.MatMulOp.create([x, w]))
    return p.finish()


def _apply(module: ModuleOp, max_rows: int = 512) -> ModuleOp:
    after = module.clone()
    pattern = PackMatmulWeights(PANEL, max_rows)
    PatternRewriteWalker(pattern, post_walk_func=region_dce).rewrite_module(after)
    after.verify()
    return after


def test_a_product_becomes_an_einsum_over_packed_panels_natively_too() -> None:
    for gemm in (False, True):
        module = _product_module(3, 8, gemm)
        after = _apply(module)
        (einsum,) = [op for op in after.walk() if isinstance(op, g.EinsumOp)]
        assert einsum.equation == "mk,jkp->mjp" and _shape(einsum.inputs[1]) == [2, 5, 4]
        assert not any(isinstance(op, g.MatMulOp | g.GemmOp) for op in after.walk())
        x = np.random.default_rng(1).standard_normal((3, 5)).astype(np.float32)
        expected = mlc.interpret(module, x)[0]
        np.testing.assert_allclose(mlc.interpret(after, x)[0], expected, rtol=1e-5, atol=1e-6)
        (native,) = mlc.compile(after, cache=False)(x)
        np.testing.assert_allclose(native, expected, rtol=1e-5, atol=1e-6)


def test_narrow_and_tall_products_are_left_alone() -> None:
    # one panel; a ragged panel; too many rows; one row (a matrix-vector product)
    for rows, n, max_rows in ((3, 4, 512), (3, 6, 512), (8, 8, 4), (1, 8, 512)):
        after = _apply(_product_module(rows, n, gemm=False), max_rows)
        assert not any(isinstance(op, g.EinsumOp) for op in after.walk())


def test_a_product_split_into_heads_is_left_alone() -> None:
    # a projection reshaped into attention heads: packing it made the score product slow
    rng = np.random.default_rng(0)
    p = ProgramBuilder(lambda s: None, f32, rng)  # type: ignore[arg-type, return-value]
    x = p.new_arg([3, 5])
    w = p.insert(g.ConstantOp.from_array(rng.standard_normal((5, 8)).astype(np.float32)))
    p.insert(g.ReshapeOp.to(p.insert(g.MatMulOp.create([x, w])), [3, 2, 4]))
    after = _apply(p.finish())
    assert not any(isinstance(op, g.EinsumOp) for op in after.walk())
