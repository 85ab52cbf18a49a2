"""The new graph ops of the indexing, scan, top-k, einsum and rms-norm families built
directly (any element type, bf16 and u64 included): their tensor expressions (texpr
library) against their reference semantics (interpreter), and a few ONNX models against
onnxruntime where onnx.reference departs from the spec (NaN ranks in TopK, |x| in
LpNormalization p = 1)."""

from __future__ import annotations

from typing import Any

import ml_dtypes
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from xdsl.ir import Block, SSAValue

from mlc.dialects.graph import indexing as ix
from mlc.dialects.graph import nn
from mlc.dialects.graph import reduce as rd
from mlc.dialects.graph.types import element_type_from_numpy, tensor
from mlc.interpreters.graph import evaluate as evaluate_op
from mlc.testing.onnx_models import assert_matches_onnxruntime, single_node_model
from mlc.texpr import check_bounds_at
from mlc.texpr.library import NOT_AFFINE, expression_for

BF16 = np.dtype(ml_dtypes.bfloat16)
DTYPES = (
    [np.dtype(t) for t in (np.float32, np.float64, np.float16)]
    + [BF16]
    + [np.dtype(t) for t in (np.int32, np.int64, np.int8, np.uint8, np.uint64)]
)


def values(*specs: tuple[tuple[int, ...], np.dtype]) -> tuple[SSAValue, ...]:
    types = [tensor(shape, element_type_from_numpy(dtype)) for shape, dtype in specs]
    return tuple(Block(arg_types=types).args)


def data(draw: Any, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
    """Small values with ties; floats with NaN, infinities and signed zeros."""
    lo = 0 if dtype.kind == "u" else -3
    a = np.asarray(
        draw(
            st.lists(st.integers(lo, 3), min_size=int(np.prod(shape)), max_size=int(np.prod(shape)))
        )
    )
    a = a.reshape(shape).astype(dtype)
    if dtype.kind in "fV" and a.size:
        specials = [np.nan, np.inf, -np.inf, -0.0, 0.5]
        for _ in range(draw(st.integers(0, 3))):
            a.reshape(-1)[draw(st.integers(0, a.size - 1))] = draw(st.sampled_from(specials))
    return a


def expression_agrees(op: Any, arrays: list[np.ndarray]) -> None:
    """The op's expression (bounds-checked) gives its reference semantics' results:
    exactly (NaN in the same places), or to 1e-5 (1e-2 for f16 / bf16) where it sums."""
    expression = expression_for(op)
    check_bounds_at(expression.definition, {})
    with np.errstate(all="ignore"):
        got = expression.evaluate(*arrays)
    want = evaluate_op(op, arrays)
    for g, w in zip(got, want, strict=True):
        assert g.dtype == w.dtype and g.shape == w.shape
        if w.dtype.kind in "iub":
            np.testing.assert_array_equal(g, w)
        else:
            tol = 1e-2 if w.dtype.itemsize == 2 else 1e-5
            np.testing.assert_allclose(
                g.astype(np.float64), w.astype(np.float64), rtol=tol, atol=tol, equal_nan=True
            )


@given(st.data())
@settings(max_examples=40)
def test_scan_expressions(draw: st.DataObject) -> None:
    shape = tuple(draw.draw(st.lists(st.integers(0, 4), min_size=1, max_size=3)))
    dtype = draw.draw(st.sampled_from(DTYPES))
    (x,) = values((shape, dtype))
    op_type = draw.draw(st.sampled_from([rd.CumSumOp, rd.CumProdOp]))
    op = op_type.create(
        [x],
        axis=draw.draw(st.integers(0, len(shape) - 1)),
        exclusive=draw.draw(st.booleans()),
        reverse=draw.draw(st.booleans()),
    )
    expression_agrees(op, [data(draw.draw, shape, dtype)])


@given(st.data())
@settings(max_examples=40)
def test_top_k_expression(draw: st.DataObject) -> None:
    shape = tuple(draw.draw(st.lists(st.integers(0, 5), min_size=1, max_size=3)))
    dtype = draw.draw(st.sampled_from(DTYPES))
    (x,) = values((shape, dtype))
    axis = draw.draw(st.integers(0, len(shape) - 1))
    k = draw.draw(st.integers(0, shape[axis]))
    op = rd.TopKOp.create([x], axis=axis, k=k, largest=draw.draw(st.booleans()))
    expression_agrees(op, [data(draw.draw, shape, dtype)])


@given(st.data())
@settings(max_examples=40)
def test_trilu_expression(draw: st.DataObject) -> None:
    shape = tuple(draw.draw(st.lists(st.integers(0, 4), min_size=2, max_size=3)))
    dtype = draw.draw(st.sampled_from([*DTYPES, np.dtype(np.bool_)]))
    (x,) = values((shape, dtype))
    k = draw.draw(st.one_of(st.integers(-6, 6), st.sampled_from([-(2**63), 2**63 - 1])))
    op = ix.TriluOp.create([x], upper=draw.draw(st.booleans()), k=k)
    a = data(draw.draw, shape, dtype) if dtype.kind != "b" else np.ones(shape, bool)
    expression_agrees(op, [a])


@given(st.data())
@settings(max_examples=40)
def test_one_hot_expression(draw: st.DataObject) -> None:
    shape = tuple(draw.draw(st.lists(st.integers(0, 3), min_size=0, max_size=2)))
    index_type = draw.draw(st.sampled_from(DTYPES))
    values_type = draw.draw(st.sampled_from([*DTYPES, np.dtype(np.bool_)]))
    depth = draw.draw(st.integers(1, 4))
    indices, vals = values((shape, index_type), ((2,), values_type))
    op = ix.OneHotOp.create(
        [indices, vals], axis=draw.draw(st.integers(0, len(shape))), depth=depth
    )
    lo = 0 if index_type.kind == "u" else -depth - 2
    raw = draw.draw(
        st.lists(
            st.integers(lo, depth + 2), min_size=int(np.prod(shape)), max_size=int(np.prod(shape))
        )
    )
    idx = np.asarray(raw).reshape(shape).astype(index_type)
    if index_type.kind in "fV" and idx.size:
        idx.reshape(-1)[0] = draw.draw(st.sampled_from([np.nan, np.inf, -1.5, 1.5, -0.0, 2.99]))
    if index_type == np.uint64 and idx.size:
        idx.reshape(-1)[0] = 2**64 - 1  # not -1: no position
    v = (
        np.array([0, 1]).astype(values_type)
        if values_type.kind == "b"
        else np.array([2, 7]).astype(values_type)
    )
    expression_agrees(op, [idx, v])


EQUATIONS = [
    ("ij,jk->ik", [(2, 3), (3, 4)]),
    ("ii->i", [(3, 3)]),
    ("iij->", [(2, 2, 3)]),
    ("ij,ij->ij", [(1, 3), (2, 1)]),
    ("->", [()]),
    ("i,j,k->kji", [(2,), (1,), (3,)]),
    ("ab,b->", [(0, 2), (2,)]),
]


@pytest.mark.parametrize(("equation", "shapes"), EQUATIONS)
@pytest.mark.parametrize(
    "dtype", [np.dtype(np.float32), BF16, np.dtype(np.int32), np.dtype(np.uint8)]
)
def test_einsum_expression(equation: str, shapes: list[tuple[int, ...]], dtype: np.dtype) -> None:
    operands = values(*[(s, dtype) for s in shapes])
    op = nn.EinsumOp.create(list(operands), equation=equation)
    rng = np.random.default_rng(0)
    arrays = [rng.integers(0, 4, s).astype(dtype) for s in shapes]
    expression_agrees(op, arrays)


@pytest.mark.parametrize(
    "dtype", [np.dtype(np.float32), np.dtype(np.float16), BF16, np.dtype(np.float64)]
)
@pytest.mark.parametrize(
    ("shape", "axis", "scale"), [((2, 3, 4), 2, (4,)), ((2, 3), 0, (1, 3)), ((5,), 0, (1,))]
)
def test_rms_norm_expression(
    dtype: np.dtype, shape: tuple[int, ...], axis: int, scale: tuple[int, ...]
) -> None:
    x, s = values((shape, dtype), (scale, dtype))
    op = nn.RmsNormOp.create([x, s], axis=axis, epsilon=1e-3)
    rng = np.random.default_rng(1)
    expression_agrees(
        op, [rng.standard_normal(shape).astype(dtype), rng.standard_normal(scale).astype(dtype)]
    )


def test_data_dependent_ops_are_not_affine() -> None:
    for op in (ix.GatherNDOp, ix.ScatterElementsOp, ix.ScatterNDOp):
        assert "data-dependent" in NOT_AFFINE[op]


# --------------------------------------------------------------------------- onnxruntime


def test_top_k_nan_and_ties_match_onnxruntime() -> None:
    x = np.array([[1, np.nan, 3, 3, -0.0, 0.0, np.nan], [2, 2, 2, 1, 1, 1, 0]], np.float32)
    for largest in (0, 1):
        model = single_node_model(
            "TopK",
            {"x": x},
            {"axis": 1, "largest": largest},
            initializers={"k": np.array([5])},
            num_outputs=2,
            opset=11,
        )
        assert_matches_onnxruntime(model, {"x": x})


def test_lp_normalization_matches_onnxruntime() -> None:
    x = np.array([[1, -3, 0.5], [0, 0, 0]], np.float32)
    for p in (1, 2):
        for axis in (0, -1):
            model = single_node_model("LpNormalization", {"x": x}, {"axis": axis, "p": p}, opset=22)
            assert_matches_onnxruntime(model, {"x": x})


def test_scatter_and_gather_nd_match_onnxruntime() -> None:
    d = np.arange(24, dtype=np.float32).reshape(2, 3, 4)
    i = np.array([[1, -1], [0, 2]])
    model = single_node_model("GatherND", {"d": d, "i": i}, opset=13)
    assert_matches_onnxruntime(model, {"d": d, "i": i})
    u = np.ones((2, 4), np.float32)
    for reduction in ("none", "add", "mul", "max", "min"):
        model = single_node_model(
            "ScatterND", {"d": d, "i": i, "u": u}, {"reduction": reduction}, opset=18
        )
        assert_matches_onnxruntime(model, {"d": d, "i": i, "u": u})
