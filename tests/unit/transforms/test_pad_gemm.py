"""`pad-gemm-columns`: zero columns appended to a gemm's constant weight keep the first N
columns of the product unchanged."""

from __future__ import annotations

import math

import numpy as np
from hypothesis import given
from hypothesis import strategies as st
from xdsl.dialects.builtin import ModuleOp, TensorType, f32, f64, i32
from xdsl.ir import SSAValue
from xdsl.pattern_rewriter import PatternRewriteWalker
from xdsl.transforms.dead_code_elimination import region_dce

import mlc
from mlc.dialects import graph as g
from mlc.dialects.graph.types import element_type_from_numpy
from mlc.testing.coverage import covers
from mlc.testing.semantics import assert_preserves_semantics
from mlc.testing.strategies import Program, ProgramBuilder, graph_programs
from mlc.transforms.graph import (
    PadGemmColumns,
    PadGemmColumnsPass,
    PadMatmulColumns,
    PadMatmulIntegerColumns,
)


def _shape(v: SSAValue) -> list[int]:
    assert isinstance(v.type, TensorType)
    return list(v.type.get_shape())


def gen_gemm(draw: st.DrawFn, p: ProgramBuilder) -> None:
    # gemm(a, B, C): B constant (maybe transposed, maybe used twice), C absent, constant
    # (along N or broadcast) or an argument, N around the multiple 4 used below
    x = p.pick(lambda v: not isinstance(v.owner, g.ConstantOp) and bool(_shape(v)))
    assert x is not None
    shape = _shape(x)
    m, k = math.prod(shape[:-1]), shape[-1]
    a = p.insert(g.ReshapeOp.to(x, [m, k]))
    # mostly an N the pattern pads (not a multiple of 4, padding at most doubles it); each
    # near miss it must leave alone (N = 1, 4, 8; C an argument; B used twice) about one
    # gemm in seven to ten, the simplest draws being the padded case
    n = draw(st.sampled_from([2, 3, 5, 6, 7, 9] * 3 + [1, 4, 8]))
    trans_b = draw(st.booleans())
    b = p.constant([n, k] if trans_b else [k, n])
    operands = [a, b]
    c_kind = draw(st.sampled_from(["none", "constant"] * 3 + ["arg"]))
    if c_kind != "none":
        c_shape = draw(st.sampled_from([[n], [1, n], [m, n], [m, 1], [1]]))
        operands.append(p.constant(c_shape) if c_kind == "constant" else p.new_arg(c_shape))
    alpha = draw(st.sampled_from([1.0, -2.0]))
    beta = draw(st.sampled_from([1.0, 0.5]))
    p.insert(g.GemmOp.create(operands, alpha=alpha, beta=beta, trans_a=False, trans_b=trans_b))
    if draw(st.sampled_from([False] * 9 + [True])):
        p.insert(g.NegOp.create([b]))  # a second use of B: left alone


def programs() -> st.SearchStrategy[Program]:
    return graph_programs([gen_gemm], element_types=(f32, f64, i32), max_ops=2)


@covers("graph-pad-gemm-columns")
@given(programs())
def test_pad_gemm_columns_pattern_preserves_semantics(program: Program) -> None:
    assert_preserves_semantics(PadGemmColumns(4), program.module, inputs=program.inputs)


@covers("pad-gemm-columns")
@given(programs())
def test_pad_gemm_columns_pass_preserves_semantics(program: Program) -> None:
    assert_preserves_semantics(
        PadGemmColumnsPass(multiple=4), program.module, inputs=program.inputs
    )


def _gemm_module(n: int, trans_b: bool, bias_shape: list[int] | None) -> ModuleOp:
    rng = np.random.default_rng(0)
    p = ProgramBuilder(lambda s: None, f32, rng)  # type: ignore[arg-type, return-value]
    x = p.new_arg([3, 8])
    w = p.insert(
        g.ConstantOp.from_array(
            rng.standard_normal((n, 8) if trans_b else (8, n)).astype(np.float32)
        )
    )
    ops = [x, w]
    if bias_shape is not None:
        ops.append(
            p.insert(g.ConstantOp.from_array(rng.standard_normal(bias_shape).astype(np.float32)))
        )
    p.insert(g.GemmOp.create(ops, alpha=1.0, beta=1.0, trans_a=False, trans_b=trans_b))
    return p.finish()


def _apply(module: ModuleOp, multiple: int) -> ModuleOp:
    after = module.clone()
    PatternRewriteWalker(PadGemmColumns(multiple), post_walk_func=region_dce).rewrite_module(after)
    after.verify()
    return after


def test_pads_columns_and_slices_the_result() -> None:
    module = _gemm_module(10, trans_b=False, bias_shape=[10])
    after = _apply(module, 16)
    (gemm,) = [op for op in after.walk() if isinstance(op, g.GemmOp)]
    assert _shape(gemm.output) == [3, 16]
    assert gemm.c is not None and _shape(gemm.c) == [16]
    assert [type(op) for op in after.walk() if isinstance(op, g.SliceOp)] == [g.SliceOp]
    x = np.random.default_rng(1).standard_normal((3, 8)).astype(np.float32)
    np.testing.assert_array_equal(mlc.interpret(after, x)[0], mlc.interpret(module, x)[0])


def test_transposed_weight_pads_rows_and_scalar_bias_is_kept() -> None:
    after = _apply(_gemm_module(5, trans_b=True, bias_shape=[1]), 4)
    (gemm,) = [op for op in after.walk() if isinstance(op, g.GemmOp)]
    assert _shape(gemm.b) == [8, 8] and _shape(gemm.output) == [3, 8]
    assert gemm.c is not None and _shape(gemm.c) == [1]


def test_leaves_whole_and_too_narrow_gemms_alone() -> None:
    for n, multiple in ((16, 16), (4, 16), (1, 4)):  # no remainder; padding > 2x N
        after = _apply(_gemm_module(n, trans_b=False, bias_shape=None), multiple)
        assert not any(isinstance(op, g.SliceOp) for op in after.walk())


def test_compiled_classifier_layer_matches_numpy() -> None:
    from mlc.benchmarks.models import mlp

    case = mlp(batch=4, sizes=(32, 10))
    model = mlc.compile(case.model)
    (got,) = model(*case.inputs)
    (want,) = case.numpy_fn(*case.inputs)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


@st.composite
def integer_products(draw: st.DrawFn) -> tuple[ModuleOp, list[np.ndarray]]:
    """matmul_integer(a, B, za, zb) with u8 / i8 codes, a constant B (N mostly one the
    pattern pads; near misses: N a multiple of 4, N = 1, B an argument, 3-D a) and zero
    points zero, scalar or per row / column."""
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    p = ProgramBuilder(draw, element_type_from_numpy(np.uint8), rng)
    m, k = draw(st.integers(1, 6)), draw(st.integers(1, 9))
    n = draw(st.sampled_from([2, 3, 5, 6, 7, 9] * 3 + [1, 4, 8]))
    a_type, b_type = draw(
        st.sampled_from([(np.uint8, np.int8), (np.int8, np.int8), (np.uint8, np.uint8)])
    )
    batched = draw(st.sampled_from([False] * 9 + [True]))
    a_shape = [2, m, k] if batched else [m, k]
    a = p.new_arg(a_shape, element_type_from_numpy(a_type))
    inputs = [_codes(rng, a_type, a_shape)]
    b_array = _codes(rng, b_type, (k, n))
    if draw(st.sampled_from([True] * 7 + [False])):
        b = p.insert(g.ConstantOp.from_array(b_array))
    else:
        b = p.new_arg([k, n], element_type_from_numpy(b_type))
        inputs.append(b_array)
    za_shape = draw(st.sampled_from([[], [1], [m]])) if not batched else []
    zb_shape = draw(st.sampled_from([[], [1], [n]]))
    za = p.insert(g.ConstantOp.from_array(_codes(rng, a_type, tuple(za_shape))))
    zb = p.insert(g.ConstantOp.from_array(_codes(rng, b_type, tuple(zb_shape))))
    p.insert(g.MatMulIntegerOp.create([a, b, za, zb]))
    return p.finish(), inputs


def _codes(rng: np.random.Generator, dtype: type, shape: tuple[int, ...]) -> np.ndarray:
    info = np.iinfo(dtype)
    return rng.integers(info.min, int(info.max) + 1, shape).astype(dtype)


@covers("graph-pad-matmul-integer-columns")
@given(integer_products())
def test_pad_matmul_integer_columns_is_exact(case: tuple[ModuleOp, list[np.ndarray]]) -> None:
    """The padded integer product's kept columns are the same integers (zero points of
    every shape, the padded per-column ones zero)."""
    module, inputs = case
    assert_preserves_semantics(PadMatmulIntegerColumns(4), module, inputs=inputs)


def test_an_integer_classifier_head_gets_whole_vnni_vectors() -> None:
    """64 x 512 u8 times a constant 512 x 10 s8 with a per-column zero point: padded to 16
    columns (a `vpdpbusd` tile), sliced back; compiled, the same integers."""
    rng = np.random.default_rng(7)
    p = ProgramBuilder(lambda s: None, element_type_from_numpy(np.uint8), rng)  # type: ignore[arg-type, return-value]
    a = p.new_arg([64, 512], element_type_from_numpy(np.uint8))
    b = p.insert(g.ConstantOp.from_array(_codes(rng, np.int8, (512, 10))))
    za = p.insert(g.ConstantOp.from_array(np.array(3, np.uint8)))
    zb = p.insert(g.ConstantOp.from_array(_codes(rng, np.int8, (10,))))
    p.insert(g.MatMulIntegerOp.create([a, b, za, zb]))
    module = p.finish()
    x = _codes(rng, np.uint8, (64, 512))
    (want,) = mlc.interpret(module, x)
    padded = module.clone()
    PadGemmColumnsPass(multiple=16).apply(mlc.context(), padded)
    shapes = [
        list(op.output.type.get_shape())
        for op in padded.walk()
        if isinstance(op, g.MatMulIntegerOp)
    ]
    assert shapes == [[64, 16]]
    (got,) = mlc.interpret(padded, x)
    np.testing.assert_array_equal(got, want)
    (native,) = mlc.compile(module, cache=False)(x)
    np.testing.assert_array_equal(native, want)


def gen_matmul(draw: st.DrawFn, p: ProgramBuilder) -> None:
    # matmul(A, B): B an argument or a constant (used once, or twice: then padded by a
    # graph.pad like an argument), 2-D or batched (3-D, broadcast against a 2-D side), N
    # mostly one the pattern pads (multiple 4); near misses N = 1, 4, 8 and a 1-D A
    x = p.pick(lambda v: not isinstance(v.owner, g.ConstantOp) and bool(_shape(v)))
    assert x is not None
    shape = _shape(x)
    m, k = math.prod(shape[:-1]), shape[-1]
    n = draw(st.sampled_from([2, 3, 5, 6, 7, 9] * 3 + [1, 4, 8]))
    layout = draw(st.sampled_from(["2d"] * 4 + ["batched_b", "batched_a", "vector_a"]))
    if layout == "vector_a":
        a = p.insert(g.ReshapeOp.to(x, [m * k]))
        k = m * k
    elif layout == "batched_a" and m % 2 == 0:
        a = p.insert(g.ReshapeOp.to(x, [2, m // 2, k]))
    else:
        a = p.insert(g.ReshapeOp.to(x, [m, k]))
    b_shape = [3, k, n] if layout == "batched_b" else [k, n]
    b = p.constant(b_shape) if draw(st.booleans()) else p.new_arg(b_shape)
    p.insert(g.MatMulOp.create([a, b]))
    if draw(st.sampled_from([False] * 9 + [True])):
        p.insert(g.NegOp.create([b]))  # a second use of B


def matmul_programs() -> st.SearchStrategy[Program]:
    return graph_programs([gen_matmul], element_types=(f32, f64, i32), max_ops=2)


@covers("graph-pad-matmul-columns")
@given(matmul_programs())
def test_pad_matmul_columns_preserves_semantics(program: Program) -> None:
    """Padded products (B an argument padded by graph.pad, or a padded constant; 2-D and
    batched) keep the first N columns exactly."""
    assert_preserves_semantics(PadMatmulColumns(4), program.module, inputs=program.inputs)


def test_an_activation_product_is_padded_and_sliced() -> None:
    """77 x 64 by a 64 x 77 argument (attention scores of 77 tokens): the argument padded
    to 80 columns by graph.pad, the product sliced back; compiled, the same values."""
    rng = np.random.default_rng(3)
    p = ProgramBuilder(lambda s: None, f32, rng)  # type: ignore[arg-type, return-value]
    a, b = p.new_arg([77, 64]), p.new_arg([64, 77])
    p.insert(g.MatMulOp.create([a, b]))
    module = p.finish()
    padded = module.clone()
    PadGemmColumnsPass(multiple=16).apply(mlc.context(), padded)
    pads = [op for op in padded.walk() if isinstance(op, g.PadOp)]
    products = [op for op in padded.walk() if isinstance(op, g.MatMulOp)]
    assert len(pads) == 1 and list(pads[0].pads) == [0, 0, 0, 3]
    assert [_shape(op.output) for op in products] == [[77, 80]]
    x = rng.standard_normal((77, 64)).astype(np.float32)
    y = rng.standard_normal((64, 77)).astype(np.float32)
    (want,) = mlc.interpret(module, x, y)
    (got,) = mlc.interpret(padded, x, y)
    np.testing.assert_array_equal(got, want)
    (native,) = mlc.compile(module, cache=False)(x, y)
    np.testing.assert_allclose(native, x @ y, rtol=1e-5, atol=1e-4)


def test_matmuls_with_whole_vectors_or_a_vector_operand_are_left_alone() -> None:
    rng = np.random.default_rng(4)
    for a_shape, b_shape in (([8, 4], [4, 16]), ([4], [4, 5]), ([8, 4], [4, 1])):
        p = ProgramBuilder(lambda s: None, f32, rng)  # type: ignore[arg-type, return-value]
        p.insert(g.MatMulOp.create([p.new_arg(a_shape), p.new_arg(b_shape)]))
        module = p.finish()
        PadGemmColumnsPass(multiple=16).apply(mlc.context(), module)
        assert not any(isinstance(op, g.PadOp | g.SliceOp) for op in module.walk())
