"""The expression library (`mlc.texpr.library`) against the graph reference semantics.

Every covered op is built over its attribute variations (Hypothesis) and its specialized
tensor expression, evaluated by the texpr evaluator, must equal `evaluate_op`: exactly
for integers and booleans, to rtol 1e-5 for f32/f64 (1e-2 for f16/bf16).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import ml_dtypes
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from xdsl.dialects.builtin import TensorType
from xdsl.ir import Block, SSAValue

from mlc.dialects import graph
from mlc.dialects.graph import elementwise as ew
from mlc.dialects.graph import nn
from mlc.dialects.graph import reduce as rd
from mlc.dialects.graph import shape as sh
from mlc.dialects.graph.types import element_type_from_numpy, numpy_dtype, tensor
from mlc.interpreters.graph import evaluate as evaluate_op
from mlc.texpr import check_bounds_at, const, it
from mlc.texpr.library import (
    LIMITATIONS,
    NOT_AFFINE,
    Expression,
    ExpressionError,
    covered_ops,
    expression_for,
)
from mlc.texpr.library.template import expand, simplify_index

BF16 = np.dtype(ml_dtypes.bfloat16)
F32, F64, F16 = np.dtype(np.float32), np.dtype(np.float64), np.dtype(np.float16)
I8, I32, I64, U8 = np.dtype(np.int8), np.dtype(np.int32), np.dtype(np.int64), np.dtype(np.uint8)
I16, U64 = np.dtype(np.int16), np.dtype(np.uint64)
BOOL = np.dtype(np.bool_)
FLOATS = [F32, F64, F16, BF16]
INTS = [I32, I64, I8, U8]

# -- helpers ----------------------------------------------------------------------------


def values(*specs: tuple[Sequence[int], np.dtype]) -> tuple[SSAValue, ...]:
    """Block arguments of the given shapes and dtypes, to build ops on."""
    types = [tensor(shape, element_type_from_numpy(dtype)) for shape, dtype in specs]
    return tuple(Block(arg_types=types).args)


def random_array(shape: Sequence[int], dtype: np.dtype, seed: int) -> np.ndarray:
    """Test data: normal floats (scale 3), small integers, fair booleans."""
    rng = np.random.default_rng(seed)
    if dtype == BOOL:
        return rng.random(shape) < 0.5
    if dtype.kind == "u":
        return rng.integers(0, 20, shape).astype(dtype)
    if dtype.kind == "i":
        return rng.integers(-20, 20, shape).astype(dtype)
    return (rng.standard_normal(shape) * 3).astype(dtype)


def inputs_for(op: Any, seed: int) -> list[np.ndarray]:
    """Random arrays for every operand of ``op``."""
    result = []
    for k, operand in enumerate(op.operands):
        ty = operand.type
        assert isinstance(ty, TensorType)
        result.append(random_array(tuple(ty.get_shape()), numpy_dtype(ty.element_type), seed + k))
    return result


def assert_same(got: np.ndarray, ref: np.ndarray) -> None:
    """Exact for integers and booleans; rtol 1e-5 (atol scaled to the result) for floats."""
    assert got.dtype == ref.dtype and got.shape == ref.shape, (got.dtype, ref.dtype)
    if got.dtype.kind not in "fV" and got.dtype != BF16:
        np.testing.assert_array_equal(got, ref)
        return
    low = got.dtype in (F16, BF16)
    g, r = got.astype(np.float64), ref.astype(np.float64)
    finite = np.abs(r[np.isfinite(r)])
    scale = max(1.0, float(finite.max())) if finite.size else 1.0
    tol = 1e-2 if low else 1e-5
    np.testing.assert_allclose(g, r, rtol=tol, atol=tol * scale, equal_nan=True)


def check(op: Any, inputs: Sequence[np.ndarray] | None = None, seed: int = 0) -> Expression:
    """The op's expression equals its reference semantics on ``inputs`` (random if None)."""
    expression = expression_for(op)
    defn = expression.definition
    assert defn.params == ()
    assert all(d.is_const() for t in (*defn.inputs, *defn.outputs) for d in t.shape)
    check_bounds_at(defn, {})
    arrays = list(inputs) if inputs is not None else inputs_for(op, seed)
    got = expression.evaluate(*arrays)
    ref = evaluate_op(op, arrays)
    assert len(got) == len(ref)
    for g, r in zip(got, ref, strict=True):
        assert_same(g, r)
    return expression


def shapes(min_rank: int = 0, max_rank: int = 3, max_dim: int = 4) -> st.SearchStrategy:
    return st.lists(st.integers(1, max_dim), min_size=min_rank, max_size=max_rank).map(tuple)


@st.composite
def broadcast_shapes(draw: st.DrawFn, n: int) -> list[tuple[int, ...]]:
    """``n`` shapes that broadcast together (dims dropped or set to 1 per operand)."""
    out = draw(shapes(0, 4))
    result = []
    for _ in range(n):
        rank = draw(st.integers(0, len(out)))
        dims = out[len(out) - rank :]
        result.append(tuple(1 if draw(st.booleans()) else d for d in dims))
    return result


seeds = st.integers(0, 2**16)

# -- elementwise --------------------------------------------------------------------------

FLOAT_UNARY = [
    ew.SigmoidOp,
    ew.TanhOp,
    ew.ErfOp,
    ew.ExpOp,
    ew.LogOp,
    ew.SqrtOp,
    ew.ReciprocalOp,
    ew.SinOp,
    ew.CosOp,
    ew.TanOp,
    ew.AsinOp,
    ew.AcosOp,
    ew.AtanOp,
    ew.SinhOp,
    ew.CoshOp,
    ew.AsinhOp,
    ew.AcoshOp,
    ew.AtanhOp,
    ew.MishOp,
    ew.SoftplusOp,
    ew.SoftsignOp,
    ew.HardSwishOp,
    ew.FloorOp,
    ew.CeilOp,
    ew.RoundOp,
]
FLOAT_UNARY_PROPS: list[tuple[type, dict[str, Any]]] = [
    (ew.LeakyReluOp, {"alpha": 0.1}),
    (ew.EluOp, {"alpha": 1.5}),
    (ew.SeluOp, {"alpha": 1.6732632, "gamma": 1.050701}),
    (ew.HardSigmoidOp, {"alpha": 0.2, "beta": 0.5}),
    (ew.GeluOp, {"approximate": "none"}),
    (ew.GeluOp, {"approximate": "tanh"}),
    (ew.CeluOp, {"alpha": 1.0}),
    (ew.CeluOp, {"alpha": 0.3}),
    (ew.ThresholdedReluOp, {"alpha": 0.5}),
    (ew.ThresholdedReluOp, {"alpha": -1.25}),
    (ew.SwishOp, {"alpha": 1.0}),
    (ew.SwishOp, {"alpha": 1.702}),
    (ew.ShrinkOp, {"bias": 0.0, "lambd": 0.5}),
    (ew.ShrinkOp, {"bias": 1.5, "lambd": 2.0}),
]
ANY_UNARY = [ew.ReluOp, ew.NegOp, ew.AbsOp, ew.SignOp, ew.IdentityOp, ew.DropoutOp]


@pytest.mark.parametrize(
    ("op_type", "props"),
    [(t, {}) for t in FLOAT_UNARY] + FLOAT_UNARY_PROPS,
    ids=lambda v: v.name if isinstance(v, type) else "",
)
@given(shape=shapes(), dtype=st.sampled_from(FLOATS), seed=seeds)
def test_float_unary(
    op_type: type, props: dict[str, Any], shape: tuple[int, ...], dtype: np.dtype, seed: int
) -> None:
    (x,) = values((shape, dtype))
    op = op_type.create([x], **props)
    inputs = [random_array(shape, dtype, seed)]
    if op_type is ew.RoundOp:  # exercise the ties
        inputs = [(np.round(inputs[0].astype(np.float32) * 2) / 2).astype(dtype)]
    check(op, inputs)


@pytest.mark.parametrize("op_type", ANY_UNARY, ids=lambda t: t.name)
@given(shape=shapes(), dtype=st.sampled_from([F32, F16, *INTS]), seed=seeds)
def test_any_unary(op_type: type, shape: tuple[int, ...], dtype: np.dtype, seed: int) -> None:
    (x,) = values((shape, dtype))
    check(op_type.create([x]), seed=seed)


#: NaN, infinities and signed zeros, mixed into random data
SPECIAL = [np.nan, np.inf, -np.inf, 0.0, -0.0, 1.0, -1.0]


def with_special_values(x: np.ndarray, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    special = np.array(SPECIAL, np.float64)[rng.integers(0, len(SPECIAL), x.shape)]
    return np.where(rng.random(x.shape) < 0.5, special, x).astype(x.dtype)


@pytest.mark.parametrize(
    ("op_type", "props"),
    [
        (ew.IsNaNOp, {}),
        *[
            (ew.IsInfOp, {"detect_negative": neg, "detect_positive": pos})
            for neg in (False, True)
            for pos in (False, True)
        ],
        (ew.ModOp, {}),
        (ew.FmodOp, {}),
    ],
    ids=lambda v: v.name if isinstance(v, type) else "-".join(map(str, v.values())),
)
@given(shape=shapes(), dtype=st.sampled_from(FLOATS), seed=seeds)
def test_float_ops_on_special_values(
    op_type: type, props: dict[str, Any], shape: tuple[int, ...], dtype: np.dtype, seed: int
) -> None:
    """NaN, +-inf and +-0.0 (Mod: the divisor's sign on a zero remainder, NaN from an
    infinite dividend or a zero divisor)."""
    n = len(op_type.get_irdl_definition().operands)
    args = values(*[(shape, dtype)] * n)
    inputs = [with_special_values(random_array(shape, dtype, seed + k), seed + k) for k in range(n)]
    expression = check(op_type.create(list(args), **props), inputs)
    if op_type in (ew.ModOp, ew.FmodOp):  # signs of zero too
        (got,) = expression.evaluate(*inputs)
        (want,) = evaluate_op(op_type.create(list(args)), inputs)
        np.testing.assert_array_equal(np.signbit(got), np.signbit(want))


@pytest.mark.parametrize(
    "op_type", [ew.BitwiseAndOp, ew.BitwiseOrOp, ew.BitwiseXorOp], ids=lambda t: t.name
)
@given(shapes_=broadcast_shapes(2), dtype=st.sampled_from([*INTS, I16, U64]), seed=seeds)
def test_bitwise(op_type: type, shapes_: list[tuple[int, ...]], dtype: np.dtype, seed: int) -> None:
    a, b = values((shapes_[0], dtype), (shapes_[1], dtype))
    inputs = [full_range_ints(s, dtype, seed + k) for k, s in enumerate(shapes_)]
    check(op_type.create([a, b]), inputs)


@given(shape=shapes(), dtype=st.sampled_from([*INTS, I16, U64]), seed=seeds)
def test_bitwise_not(shape: tuple[int, ...], dtype: np.dtype, seed: int) -> None:
    (x,) = values((shape, dtype))
    check(ew.BitwiseNotOp.create([x]), [full_range_ints(shape, dtype, seed)])


@given(
    shapes_=broadcast_shapes(2),
    dtype=st.sampled_from([*INTS, I16, U64]),
    direction=st.sampled_from(["LEFT", "RIGHT"]),
    seed=seeds,
)
def test_bit_shift(
    shapes_: list[tuple[int, ...]], dtype: np.dtype, direction: str, seed: int
) -> None:
    """Amounts from negative to past the bit width: 0, or -1 for a negative x shifted
    right (ONNX BitShift-28)."""
    a, b = values((shapes_[0], dtype), (shapes_[1], dtype))
    bits = dtype.itemsize * 8
    rng = np.random.default_rng(seed)
    low = -3 if dtype.kind == "i" else 0
    amounts = rng.integers(low, bits + 3, shapes_[1]).astype(dtype)
    inputs = [full_range_ints(shapes_[0], dtype, seed), amounts]
    check(ew.BitShiftOp.create([a, b], direction=direction), inputs)


@given(
    shape=shapes(),
    dtype=st.sampled_from([I8, I32, I64, U8]),
    props=st.fixed_dictionaries({"bias": st.floats(-3, 3), "lambd": st.floats(-1, 3)}),
    seed=seeds,
)
def test_shrink_of_integers(
    shape: tuple[int, ...], dtype: np.dtype, props: dict[str, float], seed: int
) -> None:
    (x,) = values((shape, dtype))
    check(ew.ShrinkOp.create([x], **props), [full_range_ints(shape, dtype, seed)])


def full_range_ints(shape: Sequence[int], dtype: np.dtype, seed: int) -> np.ndarray:
    """Integers over the whole range of `dtype` (the extremes included)."""
    info = np.iinfo(dtype)
    rng = np.random.default_rng(seed)
    x = rng.integers(info.min, info.max, shape, dtype=dtype, endpoint=True)
    extremes = np.array([info.min, info.max, 0, 1], dtype)[rng.integers(0, 4, shape)]
    return np.where(rng.random(shape) < 0.3, extremes, x).astype(dtype)


@given(shape=shapes(), seed=seeds)
def test_not(shape: tuple[int, ...], seed: int) -> None:
    (x,) = values((shape, BOOL))
    check(ew.NotOp.create([x]), seed=seed)


@given(
    shape=shapes(),
    src=st.sampled_from([F32, F64, F16, BF16, I32, I8, U8, BOOL]),
    dst=st.sampled_from([F32, F64, F16, BF16, I32, I64, I8, U8, BOOL]),
    seed=seeds,
)
def test_cast(shape: tuple[int, ...], src: np.dtype, dst: np.dtype, seed: int) -> None:
    (x,) = values((shape, src))
    op = ew.CastOp.to(x, element_type_from_numpy(dst))
    data = random_array(shape, src, seed)
    if src.kind == "f" or src == BF16:
        data = np.clip(data, 0 if dst.kind == "u" else -100, 100).astype(src)  # in range
    check(op, [data])


@given(
    bounds=st.tuples(st.none() | st.floats(-3, 0), st.none() | st.floats(0, 3)),
    shape=shapes(),
    dtype=st.sampled_from([F32, F16, I32, U8]),
    seed=seeds,
)
def test_clip(
    bounds: tuple[float | None, float | None], shape: tuple[int, ...], dtype: np.dtype, seed: int
) -> None:
    (x,) = values((shape, dtype))
    low, high = bounds
    if dtype.kind in "iu":
        low = None if low is None else int(low * 4)
        high = None if high is None else int(high * 4)
    check(ew.ClipOp.create([x], min=low, max=high), seed=seed)


ARITH = [ew.AddOp, ew.SubOp, ew.MulOp, ew.DivOp, ew.ModOp, ew.FmodOp]
COMPARE = [ew.EqualOp, ew.LessOp, ew.LessOrEqualOp, ew.GreaterOp, ew.GreaterOrEqualOp]
LOGIC = [ew.AndOp, ew.OrOp, ew.XorOp]


@pytest.mark.parametrize("op_type", ARITH + COMPARE + LOGIC, ids=lambda t: t.name)
@given(shapes_=broadcast_shapes(2), data=st.data(), seed=seeds)
def test_binary(op_type: type, shapes_: list[tuple[int, ...]], data: Any, seed: int) -> None:
    if op_type in LOGIC:
        dtype = BOOL
    elif op_type in (ew.AddOp, ew.MulOp, *COMPARE):
        dtype = data.draw(st.sampled_from([*FLOATS, *INTS, BOOL]))
    else:
        dtype = data.draw(st.sampled_from([*FLOATS, *INTS]))
    a, b = values((shapes_[0], dtype), (shapes_[1], dtype))
    inputs = [random_array(s, dtype, seed + k) for k, s in enumerate(shapes_)]
    if op_type in (ew.DivOp, ew.ModOp, ew.FmodOp) and dtype.kind in "iu":
        inputs[1] = np.where(inputs[1] == 0, 3, inputs[1]).astype(dtype)  # no division by 0
    if op_type in COMPARE:  # some equal elements
        inputs[1] = np.where(random_array(shapes_[1], BOOL, seed), inputs[1], 1).astype(dtype)
        inputs[0] = np.where(random_array(shapes_[0], BOOL, seed), inputs[0], 1).astype(dtype)
    check(op_type.create([a, b]), inputs)


@given(
    shapes_=broadcast_shapes(2),
    dtypes=st.sampled_from([(F32, F32), (F32, I32), (F64, F32), (F16, F16), (I32, I32), (U8, I8)]),
    seed=seeds,
)
def test_pow(shapes_: list[tuple[int, ...]], dtypes: tuple[np.dtype, np.dtype], seed: int) -> None:
    a, b = values((shapes_[0], dtypes[0]), (shapes_[1], dtypes[1]))
    base = np.abs(random_array(shapes_[0], dtypes[0], seed)).astype(dtypes[0])
    exponent = random_array(shapes_[1], dtypes[1], seed + 1)
    if dtypes[1].kind in "iu":
        exponent = (np.abs(exponent) % 4).astype(dtypes[1])
    else:
        exponent = (exponent / 3).astype(dtypes[1])
    check(ew.PowOp.create([a, b]), [base, exponent])


@given(shapes_=broadcast_shapes(2), dtype=st.sampled_from([F32, F64, F16]), seed=seeds)
def test_prelu(shapes_: list[tuple[int, ...]], dtype: np.dtype, seed: int) -> None:
    x, slope = values((shapes_[0], dtype), (shapes_[1], dtype))
    check(ew.PReluOp.create([x, slope]), seed=seed)


@pytest.mark.parametrize("op_type", [ew.MaxOp, ew.MinOp, ew.SumOp, ew.MeanOp], ids=str)
@given(n=st.integers(1, 4), data=st.data(), seed=seeds)
def test_variadic(op_type: type, n: int, data: Any, seed: int) -> None:
    shapes_ = data.draw(broadcast_shapes(n))
    dtypes = [*FLOATS, *INTS] + ([BOOL] if op_type is not ew.MeanOp else [])
    dtype = data.draw(st.sampled_from(dtypes))
    args = values(*[(s, dtype) for s in shapes_])
    check(op_type.create(list(args)), seed=seed)


@given(shapes_=broadcast_shapes(3), dtype=st.sampled_from([F32, F16, I32, BOOL]), seed=seeds)
def test_where(shapes_: list[tuple[int, ...]], dtype: np.dtype, seed: int) -> None:
    c, x, y = values((shapes_[0], BOOL), (shapes_[1], dtype), (shapes_[2], dtype))
    check(ew.WhereOp.create([c, x, y]), seed=seed)


# -- products -----------------------------------------------------------------------------


@st.composite
def matmul_shapes(draw: st.DrawFn) -> tuple[tuple[int, ...], tuple[int, ...]]:
    m, k, n = draw(st.integers(1, 5)), draw(st.integers(0, 5)), draw(st.integers(1, 5))
    batch = draw(shapes(0, 2, 3))
    a_batch = tuple(1 if draw(st.booleans()) else d for d in batch[draw(st.integers(0, 2)) :])
    b_batch = tuple(1 if draw(st.booleans()) else d for d in batch[draw(st.integers(0, 2)) :])
    a = (k,) if draw(st.booleans()) and not a_batch else (*a_batch, m, k)
    b = (k,) if draw(st.booleans()) and not b_batch else (*b_batch, k, n)
    return a, b


@given(shapes_=matmul_shapes(), dtype=st.sampled_from([F32, F64, F16, I32, I8]), seed=seeds)
def test_matmul(shapes_: tuple[tuple[int, ...], ...], dtype: np.dtype, seed: int) -> None:
    a, b = values((shapes_[0], dtype), (shapes_[1], dtype))
    check(nn.MatMulOp.create([a, b]), seed=seed)


@given(
    mkn=st.tuples(st.integers(1, 5), st.integers(1, 5), st.integers(1, 5)),
    trans=st.tuples(st.booleans(), st.booleans()),
    scalars=st.sampled_from([(1.0, 1.0), (0.5, 2.0), (2.0, 0.0), (-1.0, 3.0)]),
    c_shape=st.sampled_from([None, "mn", "n", "1n", "m1", "1", "11", ""]),
    dtype=st.sampled_from([F32, F16, I32]),
    seed=seeds,
)
def test_gemm(
    mkn: tuple[int, int, int],
    trans: tuple[bool, bool],
    scalars: tuple[float, float],
    c_shape: str | None,
    dtype: np.dtype,
    seed: int,
) -> None:
    m, k, n = mkn
    a_shape = (k, m) if trans[0] else (m, k)
    b_shape = (n, k) if trans[1] else (k, n)
    specs = [(a_shape, dtype), (b_shape, dtype)]
    if c_shape is not None:
        specs.append((tuple({"m": m, "n": n, "1": 1}[c] for c in c_shape), dtype))
    args = values(*specs)
    alpha, beta = scalars if dtype.kind == "f" else (float(int(scalars[0])), scalars[1])
    props = {"alpha": alpha, "beta": beta, "trans_a": trans[0], "trans_b": trans[1]}
    check(nn.GemmOp.create(list(args), **props), seed=seed)


def test_integer_gemm_with_fractional_alpha_is_a_limitation() -> None:
    a, b = values(((2, 3), I32), ((3, 2), I32))
    op = nn.GemmOp.create([a, b], alpha=0.5, beta=1.0, trans_a=False, trans_b=False)
    with pytest.raises(ExpressionError):
        expression_for(op)
    assert "graph.gemm" in LIMITATIONS


# -- convolutions ---------------------------------------------------------------------------


@st.composite
def window(draw: st.DrawFn, rank: int, pool: bool = False) -> dict[str, Any]:
    """Kernel, strides, dilations, pads and an input size along each spatial axis that fit."""
    kernel = [draw(st.integers(1, 3)) for _ in range(rank)]
    strides = [draw(st.integers(1, 3)) for _ in range(rank)]
    dilations = [draw(st.integers(1, 2)) for _ in range(rank)]
    pads = [draw(st.integers(0, k - 1 if pool else 2)) for k in kernel for _ in range(2)]
    pads = pads[0::2] + pads[1::2]
    sizes = []
    for d in range(rank):
        span = dilations[d] * (kernel[d] - 1) + 1 - pads[d] - pads[rank + d]
        sizes.append(draw(st.integers(max(span, 1), max(span, 1) + 4)))
    return {
        "kernel": kernel,
        "strides": strides,
        "dilations": dilations,
        "pads": pads,
        "size": sizes,
    }


@given(rank=st.integers(1, 3), data=st.data(), seed=seeds)
def test_conv(rank: int, data: Any, seed: int) -> None:
    w = data.draw(window(rank))
    group = data.draw(st.sampled_from([1, 1, 2, 3]))
    cg, mg = data.draw(st.integers(1, 2)), data.draw(st.integers(1, 2))
    n = data.draw(st.integers(1, 2))
    dtype = data.draw(st.sampled_from([F32, F64, F16]))
    specs = [((n, group * cg, *w["size"]), dtype), ((group * mg, cg, *w["kernel"]), dtype)]
    if data.draw(st.booleans()):
        specs.append(((group * mg,), dtype))
    props = {k: w[k] for k in ("strides", "dilations", "pads")}
    check(nn.ConvOp.create(list(values(*specs)), group=group, **props), seed=seed)


@given(rank=st.integers(1, 2), data=st.data(), seed=seeds)
def test_conv_transpose(rank: int, data: Any, seed: int) -> None:
    kernel = [data.draw(st.integers(1, 3)) for _ in range(rank)]
    strides = [data.draw(st.integers(1, 3)) for _ in range(rank)]
    dilations = [data.draw(st.integers(1, 2)) for _ in range(rank)]
    size = [data.draw(st.integers(1, 4)) for _ in range(rank)]
    out_pad = [data.draw(st.integers(0, s - 1)) for s in strides]
    full = [s * (x - 1) + d * (k - 1) + 1 for s, x, d, k in zip(strides, size, dilations, kernel)]
    pads = [data.draw(st.integers(0, max(0, (f - 1) // 2))) for f in full for _ in range(2)]
    pads = pads[0::2] + pads[1::2]
    group = data.draw(st.sampled_from([1, 2]))
    cg, mg = data.draw(st.integers(1, 2)), data.draw(st.integers(1, 2))
    specs = [((1, group * cg, *size), F32), ((group * cg, mg, *kernel), F32)]
    if data.draw(st.booleans()):
        specs.append(((group * mg,), F32))
    op = nn.ConvTransposeOp.create(
        list(values(*specs)),
        strides=strides,
        dilations=dilations,
        pads=pads,
        output_padding=out_pad,
        group=group,
    )
    check(op, seed=seed)


# -- pools --------------------------------------------------------------------------------


POOLS = [nn.MaxPoolOp, nn.AveragePoolOp, nn.LpPoolOp, nn.MaxPoolIndicesOp]


@pytest.mark.parametrize("op_type", POOLS, ids=lambda t: t.name)
@given(rank=st.integers(1, 3), data=st.data(), seed=seeds)
def test_pool(op_type: type, rank: int, data: Any, seed: int) -> None:
    w = data.draw(window(rank, pool=True))
    ceil_mode = data.draw(st.booleans())
    dtypes = [F32, F64] + ([I32, I8] if op_type in (nn.MaxPoolOp, nn.MaxPoolIndicesOp) else [])
    dtype = data.draw(st.sampled_from([*dtypes, F16]))
    (x,) = values(((2, 2, *w["size"]), dtype))
    props: dict[str, Any] = {
        "kernel_shape": w["kernel"],
        "strides": w["strides"],
        "dilations": w["dilations"],
        "pads": w["pads"],
        "ceil_mode": ceil_mode,
    }
    if op_type is nn.AveragePoolOp:
        props["count_include_pad"] = data.draw(st.booleans())
    elif op_type is nn.LpPoolOp:
        props["p"] = data.draw(st.integers(1, 3))
    elif op_type is nn.MaxPoolIndicesOp:
        props["storage_order"] = data.draw(st.integers(0, 1))
    try:
        op = op_type.create([x], **props)
    except graph.GraphError:  # a ceil_mode window that does not fit
        return
    inputs = [random_array(tuple(x.type.get_shape()), dtype, seed)]  # type: ignore[attr-defined]
    if dtype.kind in "iu":  # ties
        inputs[0] = (inputs[0] // 8).astype(dtype)
    elif op_type is nn.MaxPoolIndicesOp and data.draw(st.booleans()):
        inputs[0].flat[:: data.draw(st.integers(2, 5))] = np.nan
    check(op, inputs)


@pytest.mark.parametrize(
    ("pads", "include", "uniform"),
    [
        ([0, 0, 0, 0], False, 4),  # every 2x2 window inside
        ([1, 1, 1, 1], True, 4),  # the padding counted: every window has 4 taps
        ([1, 1, 1, 1], False, None),  # border windows have fewer taps
        ([0, 0, 1, 1], True, 4),
    ],
)
def test_average_pool_divides_by_a_constant_where_windows_are_uniform(
    pads: list[int], include: bool, uniform: int | None
) -> None:
    """Where every window counts the same number of taps, the expression divides by that
    constant (no `count` tensor to fill at run time), and still equals the reference."""
    (x,) = values(((1, 2, 6, 6), F32))
    op = nn.AveragePoolOp.create(
        [x],
        kernel_shape=[2, 2],
        strides=[2, 2],
        dilations=[1, 1],
        pads=pads,
        ceil_mode=False,
        count_include_pad=include,
    )
    names = {d.name for d in expression_for(op).definition.locals}
    assert ("count" not in names) == (uniform is not None)
    from mlc.texpr.library.nn import _window_sizes, counted_padding, uniform_window_count

    sizes = _window_sizes(op) | counted_padding(op, 2)
    assert uniform_window_count(sizes, 2, [6, 6]) == uniform
    check(op, [random_array((1, 2, 6, 6), F32, 0)])


@pytest.mark.parametrize("op_type", [nn.GlobalAveragePoolOp, nn.GlobalMaxPoolOp], ids=str)
@given(shape=shapes(2, 5), dtype=st.sampled_from([F32, F16]), seed=seeds)
def test_global_pool(op_type: type, shape: tuple[int, ...], dtype: np.dtype, seed: int) -> None:
    (x,) = values((shape, dtype))
    check(op_type.create([x]), seed=seed)


# -- normalizations -----------------------------------------------------------------------


@given(
    shape=shapes(2, 4),
    dtype=st.sampled_from([F32, F64, F16]),
    param=st.sampled_from([None, F32, F64]),
    seed=seeds,
)
def test_batch_norm(
    shape: tuple[int, ...], dtype: np.dtype, param: np.dtype | None, seed: int
) -> None:
    p = param or dtype
    args = values((shape, dtype), *[((shape[1],), p)] * 4)
    inputs = inputs_for(nn.BatchNormOp.create(list(args), epsilon=1e-5), seed)
    inputs[4] = np.abs(inputs[4])
    check(nn.BatchNormOp.create(list(args), epsilon=1e-5), inputs)


@given(shape=shapes(3, 4), dtype=st.sampled_from([F32, F16]), seed=seeds)
def test_instance_norm(shape: tuple[int, ...], dtype: np.dtype, seed: int) -> None:
    args = values((shape, dtype), ((shape[1],), dtype), ((shape[1],), dtype))
    check(nn.InstanceNormOp.create(list(args), epsilon=1e-5), seed=seed)


@given(shape=shapes(1, 4), data=st.data(), seed=seeds)
def test_layer_norm(shape: tuple[int, ...], data: Any, seed: int) -> None:
    axis = data.draw(st.integers(0, len(shape) - 1))
    inner = shape[axis:]
    dtype = data.draw(st.sampled_from([F32, F64, F16]))

    def param() -> tuple[int, ...]:
        dims = inner[data.draw(st.integers(0, len(inner))) :]
        return tuple(1 if data.draw(st.booleans()) else d for d in dims)

    specs = [(shape, dtype), (param(), dtype)]
    if data.draw(st.booleans()):
        specs.append((param(), dtype))
    op = nn.LayerNormOp.create(list(values(*specs)), axis=axis, epsilon=1e-5)
    check(op, seed=seed)


@given(shape=shapes(3, 4), size=st.integers(1, 5), dtype=st.sampled_from([F32, F16]), seed=seeds)
def test_lrn(shape: tuple[int, ...], size: int, dtype: np.dtype, seed: int) -> None:
    (x,) = values((shape, dtype))
    op = nn.LrnOp.create([x], size=size, alpha=1e-2, beta=0.75, bias=1.0)
    check(op, seed=seed)


@pytest.mark.parametrize("op_type", [nn.SoftmaxOp, nn.LogSoftmaxOp, nn.HardmaxOp], ids=str)
@given(shape=shapes(1, 4), data=st.data(), seed=seeds)
def test_softmax_family(op_type: type, shape: tuple[int, ...], data: Any, seed: int) -> None:
    axes = sorted(data.draw(st.sets(st.integers(0, len(shape) - 1), min_size=1)))
    dtype = data.draw(st.sampled_from([F32, F64, F16]))
    (x,) = values((shape, dtype))
    op = op_type.create([x], axes=axes)
    inputs = [random_array(shape, dtype, seed)]
    if op_type is nn.HardmaxOp:  # ties and NaN
        inputs[0] = np.round(inputs[0] / 3).astype(dtype)
        if data.draw(st.booleans()):
            inputs[0].flat[:: data.draw(st.integers(2, 7))] = np.nan
    check(op, inputs)


# -- reductions ---------------------------------------------------------------------------

REDUCTIONS = [
    rd.ReduceSumOp,
    rd.ReduceMeanOp,
    rd.ReduceMaxOp,
    rd.ReduceMinOp,
    rd.ReduceProdOp,
    rd.ReduceL1Op,
    rd.ReduceL2Op,
    rd.ReduceLogSumOp,
    rd.ReduceLogSumExpOp,
    rd.ReduceSumSquareOp,
]


@pytest.mark.parametrize("op_type", REDUCTIONS, ids=lambda t: t.name)
@given(shape=shapes(0, 4), data=st.data(), seed=seeds)
def test_reduction(op_type: type, shape: tuple[int, ...], data: Any, seed: int) -> None:
    axes = sorted(data.draw(st.sets(st.integers(0, max(len(shape) - 1, 0)), max_size=len(shape))))
    dtypes = [*FLOATS, I32, I64, I8, U8]
    if op_type in (rd.ReduceMaxOp, rd.ReduceMinOp):
        dtypes.append(BOOL)
    dtype = data.draw(st.sampled_from(dtypes))
    (x,) = values((shape, dtype))
    op = op_type.create([x], axes=axes, keepdims=data.draw(st.booleans()))
    inputs = [random_array(shape, dtype, seed)]
    if op_type in (rd.ReduceL2Op, rd.ReduceLogSumOp) and dtype.kind in "iu":
        inputs = [np.abs(inputs[0]).astype(dtype) % 8]  # no wrapping into negative sums
    if op_type is rd.ReduceProdOp and dtype.kind != "b":
        inputs = [(inputs[0] % 3).astype(dtype)]
    check(op, inputs)


@pytest.mark.parametrize("op_type", [rd.ArgMaxOp, rd.ArgMinOp], ids=str)
@given(shape=shapes(1, 4), data=st.data(), seed=seeds)
def test_arg_reduction(op_type: type, shape: tuple[int, ...], data: Any, seed: int) -> None:
    axis = data.draw(st.integers(0, len(shape) - 1))
    dtype = data.draw(st.sampled_from([F32, F16, I32, U8, BOOL]))
    (x,) = values((shape, dtype))
    props = {"keepdims": data.draw(st.booleans()), "select_last_index": data.draw(st.booleans())}
    op = op_type.create([x], axis=axis, **props)
    inputs = [random_array(shape, dtype, seed)]
    if dtype.kind in "iuf" and dtype != BOOL:
        inputs[0] = (inputs[0] // 4).astype(dtype)  # ties
        if dtype.kind == "f" and data.draw(st.booleans()):
            inputs[0].flat[:: data.draw(st.integers(2, 7))] = np.nan
    check(op, inputs)


# -- shape ops ------------------------------------------------------------------------------


@given(shape=shapes(0, 4), data=st.data(), seed=seeds)
def test_transpose(shape: tuple[int, ...], data: Any, seed: int) -> None:
    perm = data.draw(st.permutations(range(len(shape))))
    (x,) = values((shape, F32))
    check(sh.TransposeOp.create([x], perm=list(perm)), seed=seed)


@given(shapes_=broadcast_shapes(2), dtype=st.sampled_from([F32, I8, BOOL]), seed=seeds)
def test_expand(shapes_: list[tuple[int, ...]], dtype: np.dtype, seed: int) -> None:
    (x,) = values((shapes_[0], dtype))
    check(sh.ExpandOp.create([x], shape=list(shapes_[1])), seed=seed)


@given(shape=shapes(0, 3), data=st.data(), seed=seeds)
def test_tile(shape: tuple[int, ...], data: Any, seed: int) -> None:
    repeats = [data.draw(st.integers(0, 3)) for _ in shape]
    (x,) = values((shape, I32))
    check(sh.TileOp.create([x], repeats=repeats), seed=seed)


@st.composite
def factorizations(draw: st.DrawFn) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Two shapes with the same number of elements."""
    primes = draw(st.lists(st.sampled_from([1, 2, 2, 3, 5]), min_size=0, max_size=5))

    def split() -> tuple[int, ...]:
        rank = draw(st.integers(0, 4))
        dims = [1] * rank if rank else []
        for p in primes:
            if not dims:
                dims = [1]
            dims[draw(st.integers(0, len(dims) - 1))] *= p
        if not dims and math.prod(primes) != 1:
            dims = [math.prod(primes)]
        return tuple(dims)

    return split(), split()


@given(shapes_=factorizations(), seed=seeds)
def test_reshape(shapes_: tuple[tuple[int, ...], tuple[int, ...]], seed: int) -> None:
    (x,) = values((shapes_[0], F32))
    check(sh.ReshapeOp.to(x, shapes_[1]), seed=seed)


@given(shape=shapes(1, 3), data=st.data(), seed=seeds)
def test_concat(shape: tuple[int, ...], data: Any, seed: int) -> None:
    axis = data.draw(st.integers(0, len(shape) - 1))
    n = data.draw(st.integers(1, 4))
    lengths = [data.draw(st.integers(0, 3)) for _ in range(n)]
    specs = [(tuple(n_ if a == axis else d for a, d in enumerate(shape)), F32) for n_ in lengths]
    check(sh.ConcatOp.create(list(values(*specs)), axis=axis), seed=seed)


@given(shape=shapes(1, 3), data=st.data(), seed=seeds)
def test_split(shape: tuple[int, ...], data: Any, seed: int) -> None:
    axis = data.draw(st.integers(0, len(shape) - 1))
    cuts = sorted(data.draw(st.lists(st.integers(0, shape[axis]), max_size=3)))
    sizes = [b - a for a, b in zip([0, *cuts], [*cuts, shape[axis]])]
    (x,) = values((shape, I32))
    check(sh.SplitOp.create([x], axis=axis, sizes=sizes), seed=seed)


@given(shape=shapes(0, 3, 6), data=st.data(), seed=seeds)
def test_slice(shape: tuple[int, ...], data: Any, seed: int) -> None:
    starts, ends, steps = [], [], []
    for dim in shape:
        step = data.draw(st.sampled_from([1, 2, 3, -1, -2]))
        if step > 0:
            start, end = sorted(data.draw(st.tuples(st.integers(0, dim), st.integers(0, dim))))
        else:
            end, start = sorted(
                data.draw(st.tuples(st.integers(-1, dim - 1), st.integers(-1, dim - 1)))
            )
        starts.append(start), ends.append(end), steps.append(step)
    (x,) = values((shape, F32))
    check(sh.SliceOp.create([x], starts=starts, ends=ends, steps=steps), seed=seed)


@given(shape=shapes(1, 3, 5), data=st.data(), seed=seeds)
def test_pad(shape: tuple[int, ...], data: Any, seed: int) -> None:
    mode = data.draw(st.sampled_from(["constant", "reflect", "edge", "wrap"]))
    dtype = data.draw(st.sampled_from([F32, I32, F16]))
    begins, ends = [], []
    for dim in shape:
        crop_b = -data.draw(st.integers(0, (dim - 1) // 2))
        crop_e = -data.draw(st.integers(0, (dim - 1) // 2))
        kept = dim + crop_b + crop_e
        grow = kept - 1 if mode == "reflect" else 7
        begins.append(data.draw(st.sampled_from([crop_b, data.draw(st.integers(0, grow))])))
        ends.append(data.draw(st.sampled_from([crop_e, data.draw(st.integers(0, grow))])))
    props: dict[str, Any] = {"pads": begins + ends, "mode": mode}
    if mode == "constant" and data.draw(st.booleans()):
        props["value"] = 0.5 if dtype.kind == "f" else 7
    (x,) = values((shape, dtype))
    check(sh.PadOp.create([x], **props), seed=seed)


# -- the library as a whole ---------------------------------------------------------------


def test_every_graph_op_is_covered_or_not_affine() -> None:
    covered = covered_ops()
    assert not covered & NOT_AFFINE.keys()
    missing = [op.name for op in graph.ALL_OPS if op not in covered and op not in NOT_AFFINE]
    assert not missing, f"graph ops neither covered nor in NOT_AFFINE: {missing}"
    assert all(reason.strip() for reason in NOT_AFFINE.values())
    names = {op.name for op in graph.ALL_OPS}
    assert set(LIMITATIONS) <= names


def test_not_affine_ops_raise() -> None:
    data, indices = values(((5, 3), F32), ((2,), I64))
    with pytest.raises(NotImplementedError, match="data-dependent"):
        expression_for(sh.GatherOp.create([data, indices], axis=0))


def _single(expression: Expression) -> str:
    """The text of the one statement of an expression."""
    assert len(expression.definition.statements) == 1
    return str(expression.definition).splitlines()[1].strip()


def test_ungrouped_unpadded_conv_is_a_plain_contraction() -> None:
    """G = 1 drops the group arithmetic and P = 0 the guard: what tensorize wants."""
    x, w = values(((1, 3, 6, 6), F32), ((4, 3, 3, 3), F32))
    props = {"strides": [1, 1], "pads": [0, 0, 0, 0], "dilations": [1, 1], "group": 1}
    text = _single(check(nn.ConvOp.create([x, w], **props)))
    assert text == "Y[n, m, o0, o1] += X[n, c, k0 + o0, k1 + o1] * Wt[m, c, k0, k1]"


def test_reshape_maps_simplify() -> None:
    (x,) = values(((2, 3, 4), F32))
    assert _single(check(sh.ReshapeOp.to(x, (6, 4)))).endswith("= X[i0 / 3, i0 % 3, i1]")
    assert _single(check(sh.ReshapeOp.to(x, (2, 12)))).endswith("= X[i0, i1 / 4, i1 % 4]")
    assert _single(check(sh.ReshapeOp.to(x, (1, 2, 3, 1, 4)))).endswith("= X[i1, i2, i4]")


def test_broadcast_reads_index_zero() -> None:
    a, b = values(((2, 1, 3), F32), ((4, 1), F32))
    text = _single(check(ew.AddOp.create([a, b])))
    assert text == "Y[i0, i1, i2] = X0[i0, 0, i2] + X1[i1, 0]"


def test_half_precision_computes_in_f32_and_rounds_once() -> None:
    (x,) = values(((3, 4), F16))
    defn = check(nn.SoftmaxOp.create([x], axes=[1])).definition
    assert [d.dtype for d in (*defn.inputs, *defn.outputs)] == ["f16", "f16"]
    assert {d.dtype for d in defn.locals} == {"f32"}
    assert str(defn).splitlines()[-2].strip() == "Y[i0, i1] = f16(Y_f32[i0, i1])"


def test_expression_maps_operands_and_results() -> None:
    (x,) = values(((2, 6), F32))
    e = check(sh.SplitOp.create([x], axis=1, sizes=[2, 4]))
    assert e.operands == ("X",) and e.results == ("Y0", "Y1")
    assert e.template.params == () and e.sizes["L1"] == 4
    a, b, c = values(((2, 3), F32), ((3, 4), F32), ((4,), F32))
    e = expression_for(
        nn.GemmOp.create([a, b, c], alpha=1.0, beta=1.0, trans_a=False, trans_b=False)
    )
    assert e.operands == ("A", "B", "C")
    assert [i.name for i in e.definition.inputs] == ["A", "B", "C"]


def test_template_macros() -> None:
    axes = {"": [0, 1], "k": [1], "none": []}
    text = "f<@(S#)>(X: $T[N, @(H#)]) -> Y: $T[@k(H#)] { Y[@k(i#)] += X[n, @(i# * S#)] }"
    assert expand(text, axes, {"T": "f32"}) == (
        "f<S0, S1>(X: f32[N, H0, H1]) -> Y: f32[H1] { Y[i1] += X[n, i0 * S0, i1 * S1] }"
    )
    assert expand("@+(a#) @*(b#) @&(c# > 0) @none+(x#) [n, @none(i#)]", axes) == (
        "a0 + a1 b0 * b1 c0 > 0 and c1 > 0 0 [n]"
    )
    assert expand("@(x[@k(j#)] * $s#)", axes, {"s0": "2", "s1": "3"}) == "x[j1] * 2, x[j1] * 3"
    assert expand("a\n?on b\n!on c", flags={"on": False}) == "a\nc"


def test_index_simplification() -> None:
    i, j = it("i"), it("j")
    ranges = {"i": (0, 5), "j": (0, 3)}
    assert simplify_index((i * 4 + j).floordiv(4), ranges) == i
    assert simplify_index((i * 4 + j).mod(4), ranges) == j
    assert simplify_index((i * 4 + j).floordiv(12), ranges) == i.floordiv(3)
    assert simplify_index(j.floordiv(4) + (i * 6).mod(3), ranges) == const(0)
    assert simplify_index(i.mod(4), ranges) == i.mod(4)  # i reaches 4: no simplification


def test_module_docstring_example() -> None:
    import doctest

    import mlc.texpr.library as expressions

    assert doctest.testmod(expressions).failed == 0
