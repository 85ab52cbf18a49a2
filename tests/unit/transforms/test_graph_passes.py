"""Graph passes (`mlc.transforms.graph`): property tests that each registered pass and
pattern preserves the reference semantics, on generated programs that contain what it
rewrites, plus deterministic tests that each rewrite fires."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from xdsl.dialects.builtin import ModuleOp, TensorType, f32, f64, i32
from xdsl.ir import Attribute, SSAValue
from xdsl.passes import ModulePass
from xdsl.pattern_rewriter import PatternRewriteWalker, RewritePattern
from xdsl.transforms.dead_code_elimination import region_dce

import mlc
from mlc.dialects import graph as g
from mlc.dialects.graph.types import numpy_dtype
from mlc.parser.mlir import parse_module
from mlc.testing.coverage import covers
from mlc.testing.semantics import assert_preserves_semantics
from mlc.testing.strategies import (
    GRAPH_OP_GENERATORS,
    OpGenerator,
    Program,
    ProgramBuilder,
    graph_programs,
)
from mlc.transforms.graph import (
    ComposeReshapes,
    ComposeTransposes,
    FoldBatchNorm,
    FoldBatchNormPass,
    FoldChannelAffine,
    FoldConstantOp,
    FoldConstantsPass,
    FoldPadIntoConv,
    GraphCanonicalizePass,
    GraphOptimizePass,
    PretransposeGemmWeight,
    RemoveNeutralOperand,
    RemoveNoOp,
    channel_vector,
)

# --------------------------------------------------------------------------- generators


def _shape(v: SSAValue) -> list[int]:
    assert isinstance(v.type, TensorType)
    return list(v.type.get_shape())


def _not_constant(v: SSAValue) -> bool:
    return not isinstance(v.owner, g.ConstantOp)


def _input(draw: st.DrawFn, p: ProgramBuilder) -> SSAValue:
    x = p.pick(
        lambda v: _not_constant(v) and v.type.element_type == p.element_type and bool(_shape(v))  # type: ignore[attr-defined]
    )
    assert x is not None  # graph_programs always starts with one argument
    return x


def _splat(p: ProgramBuilder, shape: Sequence[int], value: float) -> SSAValue:
    data = np.full(tuple(shape), value, dtype=numpy_dtype(p.element_type))
    return p.insert(g.ConstantOp.from_array(data))


def _random_shape(draw: st.DrawFn, n: int) -> list[int]:
    """A shape of rank 1..4 holding `n` elements."""
    dims: list[int] = []
    rest = n
    for _ in range(draw(st.integers(0, 3))):
        divisors = [d for d in range(1, rest + 1) if rest % d == 0]
        d = draw(st.sampled_from(divisors))
        dims.append(d)
        rest //= d
    dims.append(rest)
    return list(draw(st.permutations(dims)))


def gen_constant_subgraph(draw: st.DrawFn, p: ProgramBuilder) -> None:
    # x + f(c1, c2): an op (or two) on constants only, feeding an op on x
    x = _input(draw, p)
    shape = _shape(x)
    c = p.constant(shape)
    kind = draw(st.sampled_from(["unary", "binary", "transpose", "reshape", "reduce", "concat"]))
    if kind == "unary":
        y = p.insert(draw(st.sampled_from([g.NegOp, g.AbsOp, g.ReluOp])).create([c]))
    elif kind == "binary":
        other = p.constant([d if draw(st.booleans()) else 1 for d in shape])
        cls = draw(st.sampled_from([g.AddOp, g.SubOp, g.MulOp, g.MaxOp]))
        y = p.insert(cls.create([c, other]))
    elif kind == "transpose":
        perm = list(draw(st.permutations(range(len(shape)))))
        t = p.insert(g.TransposeOp.create([c], perm=perm))
        y = p.insert(g.TransposeOp.create([t], perm=[int(i) for i in np.argsort(perm)]))
    elif kind == "reshape":
        flat = p.insert(g.ReshapeOp.to(c, [math.prod(shape)]))
        y = p.insert(g.ReshapeOp.to(flat, shape))
    elif kind == "reduce":
        y = p.insert(g.ReduceSumOp.create([c], axes=[0], keepdims=True))
    else:
        y = p.insert(g.ConcatOp.create([c, c], axis=0))
    p.insert(g.AddOp.create([x, y]) if _shape(y) == shape else g.NegOp.create([y]))


def gen_neutral(draw: st.DrawFn, p: ProgramBuilder) -> None:
    # x op splat(v), v in {1, 0, -0.0, 2}; the splat may broadcast x to a larger shape
    x = _input(draw, p)
    shape = _shape(x)
    cls = draw(st.sampled_from([g.AddOp, g.SubOp, g.MulOp, g.DivOp]))
    neutral = {g.AddOp: -0.0 if p.is_float else 0.0, g.SubOp: 0.0}.get(cls, 1.0)
    # mostly the neutral value (the pattern's case), sometimes a near miss it must keep:
    # another value in about one op in six, a broadcast, 0 - x or 1 / x in one in ten; the
    # simplest draws are the pattern's case
    value = draw(st.sampled_from([neutral] * 12 + [1.0, 0.0, -0.0, 2.0]))
    c_shape = [d if draw(st.booleans()) else 1 for d in shape][
        draw(st.integers(0, len(shape) - 1)) :
    ]
    if draw(st.sampled_from([False] * 9 + [True])):
        c_shape = [2, *shape]  # broadcasting makes the result larger than x
    c = _splat(p, c_shape, value)
    # x - 0 and x / 1 need the constant on the right: mostly put it there
    if cls in (g.AddOp, g.MulOp):
        right = draw(st.booleans())
    else:
        right = draw(st.sampled_from([True] * 9 + [False]))
    operands = [x, c] if right else [c, x]
    p.insert(cls.create(operands))


def gen_no_op(draw: st.DrawFn, p: ProgramBuilder) -> None:
    # identity / dropout / cast / reshape / transpose that may or may not change anything
    x = _input(draw, p)
    shape, et = _shape(x), p.element_type
    kind = draw(st.sampled_from(["identity", "dropout", "cast", "reshape", "transpose"]))
    if kind == "identity":
        p.insert(g.IdentityOp.create([x]))
    elif kind == "dropout":
        p.insert(g.DropoutOp.create([x], ratio=0.5))
    elif kind == "cast":
        to = draw(st.sampled_from([et, f64 if et == f32 else f32]))
        cast = g.CastOp.to(x, to)
        if to == et:
            p.insert(cast)
        else:  # a real cast, and back: the other type stays out of the program's values
            p.builder.insert(cast)
            p.insert(g.CastOp.to(cast.output, et))
    elif kind == "reshape":
        new = shape if draw(st.booleans()) else [*shape, 1]
        p.insert(g.ReshapeOp.create([x], result_types=[TensorType(et, new)]))
    else:
        perm = list(range(len(shape)))
        if draw(st.booleans()):
            perm = list(draw(st.permutations(perm)))
        p.insert(g.TransposeOp.create([x], perm=perm))


def gen_transpose_chain(draw: st.DrawFn, p: ProgramBuilder) -> None:
    # transpose(transpose(...(x))) with random perms, sometimes composing to the identity
    x = _input(draw, p)
    rank = len(_shape(x))
    total = list(range(rank))
    for i in range(draw(st.integers(2, 3))):
        perm = list(draw(st.permutations(range(rank))))
        if i > 0 and draw(st.booleans()):
            perm = [int(j) for j in np.argsort(total)]  # undo everything so far
        x = p.insert(g.TransposeOp.create([x], perm=perm))
        total = [total[j] for j in perm]


def gen_reshape_chain(draw: st.DrawFn, p: ProgramBuilder) -> None:
    # reshape(reshape(...(x))) through random shapes, sometimes back to x's shape
    x = _input(draw, p)
    shape = _shape(x)
    n = math.prod(shape)
    for _ in range(draw(st.integers(2, 3))):
        new = shape if draw(st.integers(0, 2)) == 0 else _random_shape(draw, n)
        x = p.insert(g.ReshapeOp.create([x], result_types=[TensorType(p.element_type, new)]))


def gen_gemm(draw: st.DrawFn, p: ProgramBuilder) -> None:
    # gemm(a, B, C) with B a constant (usually transposed), C absent, constant or argument
    x = _input(draw, p)
    n_shape = _shape(x)
    k = n_shape[-1]
    m = math.prod(n_shape[:-1])
    trans_a = draw(st.booleans())
    a = p.insert(g.ReshapeOp.to(x, [m, k]))
    if trans_a:
        a = p.insert(g.TransposeOp.create([a], perm=[1, 0]))
    n = draw(st.integers(1, 3))
    trans_b = draw(st.integers(0, 3)) > 0
    b = p.constant([n, k] if trans_b else [k, n])
    operands = [a, b]
    c_kind = draw(st.sampled_from(["none", "constant", "arg"]))
    if c_kind != "none":
        c_shape = draw(st.sampled_from([[n], [1, n], [m, n], [m, 1], [1]]))
        operands.append(p.constant(c_shape) if c_kind == "constant" else p.new_arg(c_shape))
    alpha = draw(st.sampled_from([1.0, 0.5, -2.0]))
    beta = draw(st.sampled_from([1.0, 0.0, 3.0]))
    p.insert(g.GemmOp.create(operands, alpha=alpha, beta=beta, trans_a=trans_a, trans_b=trans_b))
    if draw(st.integers(0, 3)) == 0:
        p.insert(g.NegOp.create([b]))  # a second use of B: not pre-transposed


def _producer(draw: st.DrawFn, p: ProgramBuilder) -> SSAValue:
    """A float conv (N x M x H x W) or gemm (M x N) on the program's input."""
    x = _input(draw, p)
    if draw(st.booleans()):  # conv
        if len(_shape(x)) != 4:
            x = p.new_arg([draw(st.integers(1, 2)), 2, draw(st.integers(2, 4)), 3])
        n, c, h, w = _shape(x)
        group = draw(st.sampled_from([d for d in (1, 2) if c % d == 0]))
        m = group * draw(st.integers(1, 2))
        k = draw(st.sampled_from([1, 3]))
        pad = draw(st.sampled_from([0, k // 2]))
        if h + 2 * pad < k or w + 2 * pad < k:
            pad = k // 2
        weight = p.constant([m, c // group, k, k])
        operands = [x, weight] + ([p.constant([m])] if draw(st.booleans()) else [])
        return p.insert(
            g.ConvOp.create(
                operands,
                strides=[draw(st.sampled_from([1, 2]))] * 2,
                pads=[pad] * 4,
                dilations=[1, 1],
                group=group,
            )
        )
    shape = _shape(x)
    a = p.insert(g.ReshapeOp.to(x, [math.prod(shape[:-1]), shape[-1]]))
    n = draw(st.integers(1, 3))
    trans_b = draw(st.booleans())
    b = p.constant([n, shape[-1]] if trans_b else [shape[-1], n])
    operands = [a, b]
    if draw(st.booleans()):
        operands.append(p.constant(draw(st.sampled_from([[n], [1, n], [1]]))))
    beta = draw(st.sampled_from([1.0, 0.5, 0.0]))
    return p.insert(
        g.GemmOp.create(
            operands,
            alpha=draw(st.sampled_from([1.0, 2.0])),
            beta=beta,
            trans_a=False,
            trans_b=trans_b,
        )
    )


def gen_pad_conv(draw: st.DrawFn, p: ProgramBuilder) -> None:
    # conv(pad(x)): zero / non-zero / channel padding (only zero spatial padding folds)
    n, c, h, w = draw(st.integers(1, 2)), 2, draw(st.integers(1, 4)), draw(st.integers(1, 4))
    x = p.new_arg([n, c, h, w])
    spatial = [draw(st.integers(0, 2)) for _ in range(4)]
    channel = draw(st.sampled_from([0, 0, 0, 1]))
    pads = [0, channel, spatial[0], spatial[1], 0, 0, spatial[2], spatial[3]]
    value = draw(st.sampled_from([0.0, 0.0, 0.5]))
    xp = p.insert(g.PadOp.create([x], pads=pads, mode="constant", value=value))
    _, cp, hp, wp = _shape(xp)
    k = draw(st.sampled_from([1, 3]))
    if hp < k or wp < k:
        k = 1
    weight = p.constant([2, cp, k, k])
    conv_pads = [draw(st.integers(0, 1)) for _ in range(4)]
    p.insert(
        g.ConvOp.create([xp, weight], strides=[1, 1], pads=conv_pads, dilations=[1, 1], group=1)
    )


def _positive(p: ProgramBuilder, shape: Sequence[int], low: float, high: float) -> SSAValue:
    data = p.rng.uniform(low, high, tuple(shape)).astype(numpy_dtype(p.element_type))
    return p.insert(g.ConstantOp.from_array(data))


def gen_batchnorm(draw: st.DrawFn, p: ProgramBuilder) -> None:
    # batch_norm(conv(x) or gemm(a)) with constant parameters
    y = _producer(draw, p)
    m = _shape(y)[1]
    gamma, var = _positive(p, [m], 0.5, 1.5), _positive(p, [m], 0.5, 2.0)
    beta, mean = p.constant([m]), p.constant([m])
    p.insert(g.BatchNormOp.create([y, gamma, beta, mean, var], epsilon=1e-5))
    if draw(st.integers(0, 4)) == 0:
        p.insert(g.ReluOp.create([y]))  # a second user of the conv: no fold


def gen_channel_affine(draw: st.DrawFn, p: ProgramBuilder) -> None:
    # conv/gemm(...) op c with c per-channel (or not: then nothing folds)
    y = _producer(draw, p)
    shape = _shape(y)
    per_channel = [1] * len(shape)
    per_channel[1] = draw(st.sampled_from([shape[1], 1]))
    c_shape = draw(
        st.sampled_from(
            [per_channel, per_channel[1:], per_channel[draw(st.integers(0, 1)) :], shape]
        )
    )
    c = p.constant(c_shape)
    cls = draw(st.sampled_from([g.MulOp, g.AddOp, g.SubOp]))
    p.insert(cls.create([y, c] if draw(st.booleans()) else [c, y]))


FLOATS = (f32, f64)


def programs(
    *generators: OpGenerator,
    element_types: Sequence[Attribute] = (f32, i32),
    mix: bool = False,
    share: float = 0.5,
    max_ops: int = 3,
) -> st.SearchStrategy[Program]:
    """Graph programs whose steps are `generators` (plus the default ones when `mix`:
    then `share` of the steps, about, are drawn from `generators`)."""
    weight = max(1, int(share / (1 - share) * len(GRAPH_OP_GENERATORS)) // len(generators))
    gens = (*generators * weight, *GRAPH_OP_GENERATORS) if mix else generators
    return graph_programs(gens, element_types=element_types, max_ops=max_ops)


# --------------------------------------------------------------------------- helpers


def check(transform: RewritePattern | ModulePass, program: Program) -> None:
    """`transform` preserves the semantics of the drawn program on its drawn inputs."""
    assert_preserves_semantics(transform, program.module, inputs=program.inputs)


def count(module: ModuleOp, op_type: type) -> int:
    return sum(isinstance(op, op_type) for op in module.walk())


def _no_draw(strategy: st.SearchStrategy[object]) -> object:
    raise AssertionError("deterministic tests do not draw")


def build(
    arg_types: Sequence[TensorType], body: Callable[[ProgramBuilder, list[SSAValue]], None]
) -> ModuleOp:
    """A module whose function takes `arg_types` and returns what `body` leaves unused."""
    p = ProgramBuilder(_no_draw, arg_types[0].element_type, np.random.default_rng(0))
    args = [p.new_arg(t.get_shape(), t.element_type) for t in arg_types]
    body(p, args)
    return p.finish()


def run_checked(
    transform: RewritePattern | ModulePass, module: ModuleOp, *inputs: np.ndarray
) -> ModuleOp:
    """Apply `transform` (a pattern: with DCE) to a copy of `module`; outputs must match
    the original's."""
    before = mlc.interpret(module, *inputs)
    after = module.clone()
    if isinstance(transform, ModulePass):
        transform.apply(mlc.context(), after)
    else:
        PatternRewriteWalker(transform, post_walk_func=region_dce).rewrite_module(after)
    after.verify()
    got = mlc.interpret(after, *inputs)
    for w, o in zip(before, got):
        np.testing.assert_allclose(o, w, rtol=1e-5, atol=1e-5)
    return after


def t(shape: Sequence[int], et: Attribute = f32) -> TensorType:
    return TensorType(et, list(shape))


RNG = np.random.default_rng(1)


def rand(*shape: int) -> np.ndarray:
    return RNG.standard_normal(shape).astype(np.float32)


# --------------------------------------------------------------------------- fold-constants


@covers("fold-constants")
@given(programs(gen_constant_subgraph, mix=True, max_ops=4))
def test_fold_constants_preserves_semantics(program: Program) -> None:
    check(FoldConstantsPass(), program)


@covers("graph-fold-constant-op")
@given(programs(gen_constant_subgraph, mix=True))
def test_fold_constant_op_preserves_semantics(program: Program) -> None:
    check(FoldConstantOp(), program)


def test_fold_constants_folds_constant_subgraphs() -> None:
    def body(p: ProgramBuilder, args: list[SSAValue]) -> None:
        c = p.insert(g.ConstantOp.from_array(np.arange(6, dtype=np.float32).reshape(2, 3)))
        ct = p.insert(g.TransposeOp.create([c], perm=[1, 0]))
        w = p.insert(g.ReluOp.create([p.insert(g.NegOp.create([ct]))]))
        p.insert(g.MatMulOp.create([args[0], w]))

    module = build([t([4, 3])], body)
    after = run_checked(FoldConstantsPass(), module, rand(4, 3))
    assert count(after, g.TransposeOp) == count(after, g.NegOp) == count(after, g.ReluOp) == 0
    assert count(after, g.ConstantOp) == 1 and count(after, g.MatMulOp) == 1


def test_fold_constants_size_limit() -> None:
    def body(p: ProgramBuilder, args: list[SSAValue]) -> None:
        c = p.insert(g.ConstantOp.from_array(np.ones((1, 4), np.float32)))
        big = p.insert(g.ExpandOp.create([c], shape=[64, 4]))  # grows: 4 -> 256 elements
        small = p.insert(g.ReduceSumOp.create([big], axes=[0], keepdims=True))
        p.insert(g.AddOp.create([args[0], small]))

    module = build([t([1, 4])], body)
    limited = run_checked(FoldConstantsPass(max_elements=100), module, rand(1, 4))
    assert count(limited, g.ExpandOp) == 1 and count(limited, g.ReduceSumOp) == 1
    unlimited = run_checked(FoldConstantsPass(), module, rand(1, 4))
    assert count(unlimited, g.ExpandOp) == count(unlimited, g.ReduceSumOp) == 0


def test_fold_constants_keeps_types_and_multiple_results() -> None:
    def body(p: ProgramBuilder, args: list[SSAValue]) -> None:
        c = p.insert(g.ConstantOp.from_array(np.arange(6, dtype=np.int64)))
        split = g.SplitOp.create([c], axis=0, sizes=[2, 4])
        p.insert(split)
        a, b = split.results
        p.insert(g.AddOp.create([args[0], p.insert(g.CastOp.to(a, i32))]))
        p.insert(g.NegOp.create([b]))

    module = build([t([2], i32)], body)
    after = run_checked(FoldConstantsPass(), module, np.array([5, -7], np.int32))
    assert count(after, g.SplitOp) == count(after, g.CastOp) == count(after, g.NegOp) == 0
    assert count(after, g.AddOp) == 1


# --------------------------------------------------------------------------- canonicalize


@covers("graph-canonicalize")
@given(
    programs(
        gen_neutral,
        gen_no_op,
        gen_transpose_chain,
        gen_reshape_chain,
        gen_gemm,
        mix=True,
        share=0.75,  # most steps something to canonicalize, a quarter other ops around it
        element_types=(f32, i32, f64),
    )
)
def test_canonicalize_preserves_semantics(program: Program) -> None:
    check(GraphCanonicalizePass(), program)


@covers("graph-remove-neutral-operand")
@given(programs(gen_neutral, gen_neutral, gen_neutral, gen_no_op, element_types=(f32, i32, f64)))
def test_remove_neutral_operand_preserves_semantics(program: Program) -> None:
    check(RemoveNeutralOperand(), program)


@covers("graph-remove-no-op")
@given(programs(gen_no_op, gen_no_op, gen_neutral, element_types=(f32, i32)))
def test_remove_no_op_preserves_semantics(program: Program) -> None:
    check(RemoveNoOp(), program)


@covers("graph-compose-transposes")
@given(programs(gen_transpose_chain, mix=True))
def test_compose_transposes_preserves_semantics(program: Program) -> None:
    check(ComposeTransposes(), program)


@covers("graph-compose-reshapes")
@given(programs(gen_reshape_chain, mix=True))
def test_compose_reshapes_preserves_semantics(program: Program) -> None:
    check(ComposeReshapes(), program)


@covers("graph-fold-pad-into-conv")
@given(programs(gen_pad_conv, element_types=FLOATS))
def test_fold_pad_into_conv_preserves_semantics(program: Program) -> None:
    check(FoldPadIntoConv(), program)


def test_fold_pad_into_conv_fires() -> None:
    x_t = "tensor<1x2x4x4xf32>"
    text = f"""
    func.func @f(%x: {x_t}, %w: tensor<3x2x3x3xf32>) -> tensor<1x3x4x4xf32> {{
      %p = graph.pad %x {{pads = array<i64: 0, 0, 1, 0, 0, 0, 1, 0>, mode = "constant", value = 0.0 : f32}} : ({x_t}) -> tensor<1x2x6x4xf32>
      %y = graph.conv %p, %w {{strides = array<i64: 1, 1>, pads = array<i64: 0, 1, 0, 1>, dilations = array<i64: 1, 1>, group = 1 : i64}} : (tensor<1x2x6x4xf32>, tensor<3x2x3x3xf32>) -> tensor<1x3x4x4xf32>
      func.return %y : tensor<1x3x4x4xf32>
    }}"""
    module = parse_module(mlc.context(), text)
    PatternRewriteWalker(FoldPadIntoConv()).rewrite_module(module)
    module.verify()
    assert count(module, g.PadOp) == 0
    (conv,) = [op for op in module.walk() if isinstance(op, g.ConvOp)]
    assert list(conv.pads) == [1, 1, 1, 1]


@covers("graph-pretranspose-gemm-weight")
@given(programs(gen_gemm, element_types=(f32, i32, f64)))
def test_pretranspose_gemm_weight_preserves_semantics(program: Program) -> None:
    check(PretransposeGemmWeight(), program)


@pytest.mark.parametrize(
    ("op_type", "value", "const_first", "fires"),
    [
        (g.MulOp, 1.0, False, True),  # x * 1
        (g.MulOp, 1.0, True, True),  # 1 * x
        (g.DivOp, 1.0, False, True),  # x / 1
        (g.DivOp, 1.0, True, False),  # 1 / x
        (g.AddOp, -0.0, False, True),  # x + -0.0
        (g.AddOp, -0.0, True, True),  # -0.0 + x
        (g.AddOp, 0.0, False, False),  # x + 0.0 is +0.0 for x = -0.0
        (g.SubOp, 0.0, False, True),  # x - 0.0
        (g.SubOp, -0.0, False, False),  # x - -0.0 is +0.0 for x = -0.0
        (g.SubOp, 0.0, True, False),  # 0 - x
        (g.MulOp, 2.0, False, False),
    ],
)
def test_remove_neutral_operand_floats(
    op_type: type[g.BinaryOp], value: float, const_first: bool, fires: bool
) -> None:
    def body(p: ProgramBuilder, args: list[SSAValue]) -> None:
        c = _splat(p, [3], value)
        p.insert(op_type.create([c, args[0]] if const_first else [args[0], c]))

    module = build([t([2, 3])], body)
    x = np.array([[-0.0, 0.0, 1.5], [-2.0, np.nan, np.inf]], np.float32)
    after = run_checked(RemoveNeutralOperand(), module, x)
    assert count(after, op_type) == (0 if fires else 1)
    if fires:  # bit-exact, -0.0 included
        (got,) = mlc.interpret(after, x)
        (want,) = mlc.interpret(module, x)
        assert got.tobytes() == want.tobytes()


def test_remove_neutral_operand_integers_and_broadcast() -> None:
    def body(p: ProgramBuilder, args: list[SSAValue]) -> None:
        p.insert(g.AddOp.create([args[0], _splat(p, [1], 0)]))  # x + 0 -> x
        p.insert(g.MulOp.create([args[0], _splat(p, [2, 3], 1)]))  # broadcasts x: kept

    module = build([t([3], i32)], body)
    after = run_checked(RemoveNeutralOperand(), module, np.array([1, -2, 3], np.int32))
    assert count(after, g.AddOp) == 0 and count(after, g.MulOp) == 1


def test_remove_no_op_fires() -> None:
    def body(p: ProgramBuilder, args: list[SSAValue]) -> None:
        x = p.insert(g.IdentityOp.create([args[0]]))
        x = p.insert(g.DropoutOp.create([x], ratio=0.1))
        x = p.insert(g.CastOp.to(x, f32))
        x = p.insert(g.ReshapeOp.to(x, [2, 3]))
        x = p.insert(g.TransposeOp.create([x], perm=[0, 1]))
        p.insert(g.CastOp.to(x, f64))  # a real cast stays

    module = build([t([2, 3])], body)
    after = run_checked(RemoveNoOp(), module, rand(2, 3))
    assert [op.name for op in after.walk()][2:] == ["graph.cast", "func.return"]


def test_compose_transposes_fires() -> None:
    def body(p: ProgramBuilder, args: list[SSAValue]) -> None:
        a = p.insert(g.TransposeOp.create([args[0]], perm=[1, 2, 0]))
        b = p.insert(g.TransposeOp.create([a], perm=[0, 2, 1]))
        p.insert(g.TransposeOp.create([b], perm=[2, 1, 0]))

    module = build([t([2, 3, 4])], body)
    after = run_checked(ComposeTransposes(), module, rand(2, 3, 4))
    assert count(after, g.TransposeOp) == 1

    def inverse(p: ProgramBuilder, args: list[SSAValue]) -> None:
        a = p.insert(g.TransposeOp.create([args[0]], perm=[1, 2, 0]))
        p.insert(g.TransposeOp.create([a], perm=[2, 0, 1]))  # composes to the identity

    module = build([t([2, 3, 4])], inverse)
    assert count(run_checked(ComposeTransposes(), module, rand(2, 3, 4)), g.TransposeOp) == 0


def test_compose_reshapes_fires() -> None:
    def body(p: ProgramBuilder, args: list[SSAValue]) -> None:
        a = p.insert(g.ReshapeOp.to(args[0], [6, 4]))
        b = p.insert(g.ReshapeOp.to(a, [24]))
        p.insert(g.ReshapeOp.to(b, [4, 6]))
        c = p.insert(g.ReshapeOp.to(args[0], [24]))
        p.insert(g.ReshapeOp.to(c, [2, 3, 4]))  # back to x's shape -> x

    module = build([t([2, 3, 4])], body)
    after = run_checked(GraphCanonicalizePass(), module, rand(2, 3, 4))
    assert count(after, g.ReshapeOp) == 1


def test_pretranspose_gemm_weight_fires() -> None:
    b = rand(5, 3)

    def body(p: ProgramBuilder, args: list[SSAValue]) -> None:
        bc = p.insert(g.ConstantOp.from_array(b))
        p.insert(g.GemmOp.create([args[0], bc], alpha=1.0, beta=1.0, trans_a=False, trans_b=True))

    module = build([t([2, 3])], body)
    after = run_checked(PretransposeGemmWeight(), module, rand(2, 3))
    (gemm,) = [op for op in after.walk() if isinstance(op, g.GemmOp)]
    assert not gemm.trans_b
    weight = gemm.b.owner
    assert isinstance(weight, g.ConstantOp)
    np.testing.assert_array_equal(weight.to_array(), b.T)


# --------------------------------------------------------------------------- fold-batchnorm


@covers("fold-batchnorm")
@given(programs(gen_batchnorm, gen_channel_affine, element_types=FLOATS))
def test_fold_batchnorm_preserves_semantics(program: Program) -> None:
    check(FoldBatchNormPass(), program)


@covers("graph-fold-batchnorm")
@given(programs(gen_batchnorm, element_types=FLOATS, max_ops=2))
def test_fold_batchnorm_pattern_preserves_semantics(program: Program) -> None:
    check(FoldBatchNorm(), program)


@covers("graph-fold-channel-affine")
@given(programs(gen_channel_affine, element_types=FLOATS, max_ops=2))
def test_fold_channel_affine_preserves_semantics(program: Program) -> None:
    check(FoldChannelAffine(), program)


def _conv_bn(p: ProgramBuilder, x: SSAValue, bias: bool, group: int = 1) -> SSAValue:
    m, c = 4, _shape(x)[1]
    w = p.insert(g.ConstantOp.from_array(rand(m, c // group, 3, 3)))
    operands = [x, w] + ([p.insert(g.ConstantOp.from_array(rand(m)))] if bias else [])
    y = p.insert(
        g.ConvOp.create(operands, strides=[1, 1], pads=[1] * 4, dilations=[1, 1], group=group)
    )
    params = [
        p.insert(g.ConstantOp.from_array(a.astype(np.float32)))
        for a in (RNG.uniform(0.5, 1.5, m), rand(m), rand(m), RNG.uniform(0.5, 2, m))
    ]
    return p.insert(g.BatchNormOp.create([y, *params], epsilon=1e-3))


@pytest.mark.parametrize(("bias", "group"), [(False, 1), (True, 1), (True, 2)])
def test_fold_batchnorm_into_conv(bias: bool, group: int) -> None:
    module = build([t([1, 2, 5, 5])], lambda p, a: _conv_bn(p, a[0], bias, group) and None)
    after = run_checked(FoldBatchNorm(), module, rand(1, 2, 5, 5))
    assert count(after, g.BatchNormOp) == 0
    (conv,) = [op for op in after.walk() if isinstance(op, g.ConvOp)]
    assert conv.bias is not None


def test_fold_batchnorm_needs_a_single_user() -> None:
    def body(p: ProgramBuilder, args: list[SSAValue]) -> None:
        bn = _conv_bn(p, args[0], bias=True)
        assert isinstance(bn.owner, g.BatchNormOp)
        p.insert(g.ReluOp.create([bn.owner.input]))

    module = build([t([1, 2, 4, 4])], body)
    assert count(run_checked(FoldBatchNormPass(), module, rand(1, 2, 4, 4)), g.BatchNormOp) == 1


def test_fold_batchnorm_into_gemm() -> None:
    def body(p: ProgramBuilder, args: list[SSAValue]) -> None:
        b = p.insert(g.ConstantOp.from_array(rand(4, 3)))
        c = p.insert(g.ConstantOp.from_array(rand(1, 4)))
        y = p.insert(
            g.GemmOp.create([args[0], b, c], alpha=2.0, beta=0.5, trans_a=False, trans_b=True)
        )
        params = [
            p.insert(g.ConstantOp.from_array(a.astype(np.float32)))
            for a in (RNG.uniform(0.5, 1.5, 4), rand(4), rand(4), RNG.uniform(0.5, 2, 4))
        ]
        p.insert(g.BatchNormOp.create([y, *params], epsilon=1e-5))

    module = build([t([2, 3])], body)
    after = run_checked(FoldBatchNormPass(), module, rand(2, 3))
    assert count(after, g.BatchNormOp) == 0 and count(after, g.GemmOp) == 1


@pytest.mark.parametrize(
    ("op_type", "c_shape", "fires"),
    [
        (g.MulOp, [4, 1, 1], True),
        (g.AddOp, [1, 4, 1, 1], True),
        (g.SubOp, [4, 1, 1], True),
        (g.MulOp, [1], True),
        (g.AddOp, [4, 5, 5], False),  # varies along a spatial axis
        (g.MulOp, [2, 1, 4, 1, 1], False),  # broadcasts the result to rank 5
    ],
)
def test_fold_channel_affine_into_conv(op_type: type, c_shape: list[int], fires: bool) -> None:
    def body(p: ProgramBuilder, args: list[SSAValue]) -> None:
        w = p.insert(g.ConstantOp.from_array(rand(4, 2, 3, 3)))
        y = p.insert(
            g.ConvOp.create([args[0], w], strides=[1, 1], pads=[1] * 4, dilations=[1, 1], group=1)
        )
        c = p.insert(g.ConstantOp.from_array(rand(*c_shape)))
        p.insert(op_type.create([y, c]))

    module = build([t([1, 2, 5, 5])], body)
    after = run_checked(FoldChannelAffine(), module, rand(1, 2, 5, 5))
    assert count(after, op_type) == (0 if fires else 1)


def test_channel_vector() -> None:
    assert channel_vector(np.ones((3, 1, 1)), (2, 3, 4, 4)) is not None
    assert channel_vector(np.ones((1, 3)), (5, 3)) is not None
    assert channel_vector(np.ones((3,)), (2, 3, 4, 4)) is None  # aligns with the last axis
    assert channel_vector(np.ones((2, 3, 1, 1)), (2, 3, 4, 4)) is None


# --------------------------------------------------------------------------- graph-optimize


@covers("graph-optimize")
@given(
    programs(
        gen_constant_subgraph,
        gen_neutral,
        gen_no_op,
        gen_transpose_chain,
        gen_reshape_chain,
        gen_batchnorm,
        gen_channel_affine,
        mix=True,
        element_types=FLOATS,
        max_ops=4,
    )
)
def test_graph_optimize_preserves_semantics(program: Program) -> None:
    check(GraphOptimizePass(), program)


def test_graph_optimize_cse_merges_duplicates() -> None:
    def body(p: ProgramBuilder, args: list[SSAValue]) -> None:
        a = p.insert(g.ReluOp.create([args[0]]))
        b = p.insert(g.ReluOp.create([args[0]]))
        p.insert(g.AddOp.create([a, b]))

    module = build([t([3])], body)
    after = run_checked(GraphOptimizePass(), module, rand(3))
    assert count(after, g.ReluOp) == 1


def test_graph_optimize_resnet_basic_block() -> None:
    from mlc.benchmarks.models import resnet_basic_block
    from mlc.parser.onnx import import_onnx

    case = resnet_basic_block(channels=8, size=8)
    module = import_onnx(case.model)
    assert count(module, g.BatchNormOp) == 2
    before = mlc.interpret(module, *case.inputs)
    GraphOptimizePass().apply(mlc.context(), module)
    module.verify()
    assert count(module, g.BatchNormOp) == 0 and count(module, g.ConvOp) == 2
    after = mlc.interpret(module, *case.inputs)
    for w, o in zip(before, after):
        np.testing.assert_allclose(o, w, rtol=1e-4, atol=1e-4)
