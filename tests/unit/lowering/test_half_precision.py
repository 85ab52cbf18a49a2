"""f16 and bf16 in native code: conversions round to nearest even like numpy / ml_dtypes
(bf16 has no LLVM type in llvmlite: it is carried as i16 bits and converted with integer
ops), arithmetic runs in f32 and rounds once, as the reference interpreter does. Sizes
cover whole vectors and the remainder lanes."""

from __future__ import annotations

from typing import Any

import ml_dtypes
import numpy as np
import onnx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from onnx import TensorProto as TP
from onnx import helper

import mlc
from mlc.interpreters import interpret
from mlc.parser.onnx import import_onnx

BF16 = np.dtype(ml_dtypes.bfloat16)
ONNX = {np.dtype(np.float16): TP.FLOAT16, BF16: TP.BFLOAT16}
ONNX |= {np.dtype(np.float32): TP.FLOAT, np.dtype(np.float64): TP.DOUBLE}


def _model(op: str, src: np.dtype, dst: np.dtype, n: int, inputs: int = 1) -> onnx.ModelProto:
    names = [f"x{i}" for i in range(inputs)]
    attrs = {"to": ONNX[dst]} if op == "Cast" else {}
    graph = helper.make_graph(
        [helper.make_node(op, names, ["y"], **attrs)],
        "g",
        [helper.make_tensor_value_info(x, ONNX[src], [n]) for x in names],
        [helper.make_tensor_value_info("y", ONNX[dst], [n])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 19)])
    model.ir_version = 9
    return model


def _same(got: np.ndarray, want: np.ndarray, signed_zeros: bool = True) -> None:
    """Equal bit for bit, except that a NaN only has to stay a NaN (and, unless
    `signed_zeros`, -0 and +0 are equal: which one Max picks is not specified)."""
    assert got.dtype == want.dtype and got.shape == want.shape
    nan = np.isnan(want.astype(np.float64))
    np.testing.assert_array_equal(np.isnan(got.astype(np.float64)), nan)
    if signed_zeros:
        bits = f"u{want.dtype.itemsize}"
        np.testing.assert_array_equal(got[~nan].view(bits), want[~nan].view(bits))
    else:
        np.testing.assert_array_equal(got[~nan].astype(np.float64), want[~nan].astype(np.float64))


#: ties to even, down and up: bf16 (7 fraction bits), f16 (10); f16 overflow, subnormal
TIES = [1 + 2.0**-8, 1 + 3 * 2.0**-8, 1 + 2.0**-11, 1 + 3 * 2.0**-11, 65520.0, 2.0**-25]
EDGES = [*TIES, *(-t for t in TIES), 0.0, -0.0, np.inf, -np.inf, np.nan, 65519.0, 3.4e38]
EDGES += [2.0**-14, 2.0**-24, 2.0**-133, 1e-45, -1e-45, 3.0, 0.1]
CASTS = [
    (np.float32, BF16),
    (BF16, np.float32),
    (np.float32, np.float16),
    (np.float16, np.float32),
    (np.float64, np.float16),
    (np.float16, np.float64),
]


@pytest.mark.parametrize(("src", "dst"), CASTS)
def test_casts_of_edge_values(src: Any, dst: Any) -> None:
    """Each edge value in a vector lane and, past the last whole vector, a scalar one."""
    src, dst = np.dtype(src), np.dtype(dst)
    with np.errstate(over="ignore"):
        x = np.array(EDGES * 2, np.float64).astype(np.float32).astype(src)
    (y,) = mlc.compile(_model("Cast", src, dst, x.size))(x)
    _same(y, x.astype(dst))


def _floats(dtype: Any, n: int) -> st.SearchStrategy[np.ndarray]:
    """Any value of `dtype` (NaN, inf, subnormals, both zeros) or, for wider types, values
    just around the narrow type's rounding ties and overflow."""
    width = 16 if dtype == np.float16 else np.dtype(dtype).itemsize * 8
    elements = st.floats(width=width, allow_nan=True, allow_infinity=True)
    special = st.sampled_from(EDGES)
    return hnp.arrays(dtype, n, elements=elements | special)


@settings(max_examples=25, deadline=None)
@given(
    st.sampled_from(CASTS),
    st.data(),
)
def test_casts_round_like_numpy(types: tuple[Any, Any], data: st.DataObject) -> None:
    src, dst = np.dtype(types[0]), np.dtype(types[1])
    n = data.draw(st.integers(1, 40))
    with np.errstate(over="ignore"):
        x = data.draw(_floats(np.float32 if src == BF16 else src, n)).astype(src)
    (y,) = mlc.compile(_model("Cast", src, dst, n))(x)
    _same(y, x.astype(dst))


@settings(max_examples=15, deadline=None)
@given(
    st.sampled_from(["Add", "Mul", "Max", "Div"]), st.sampled_from([np.float16, BF16]), st.data()
)
def test_arithmetic_matches_the_interpreter(op: str, dtype: Any, data: st.DataObject) -> None:
    """Computed in f32, rounded once to the narrow type: the reference's semantics."""
    dtype = np.dtype(dtype)
    n = data.draw(st.integers(1, 40))
    with np.errstate(over="ignore"):  # large f32 values become inf
        a, b = (data.draw(_floats(np.float32, n)).astype(dtype) for _ in range(2))
    model = _model(op, dtype, dtype, n, inputs=2)
    (want,) = interpret(import_onnx(model), a, b)
    (got,) = mlc.compile(model)(a, b)
    _same(got, np.asarray(want), signed_zeros=op != "Max")
