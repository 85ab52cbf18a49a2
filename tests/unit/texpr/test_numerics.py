"""IEEE 754-2019 maximum / minimum (`mlc.texpr.numerics`) and the evaluator semantics
built on them and on the precise functions (`round`, `expm1`, `log1p`)."""

from __future__ import annotations

import ml_dtypes
import numpy as np
import pytest

from mlc.texpr import evaluate, parse
from mlc.texpr.numerics import maximum, minimum, reduce_maximum, reduce_minimum

A = np.array([-0.0, 0.0, -0.0, 0.0, np.nan, -1.0, 2.0], np.float32)
B = np.array([0.0, -0.0, -0.0, 0.0, 0.0, -0.0, np.nan], np.float32)


def _bits(x: np.ndarray) -> list[str]:
    """Values with the sign of zero spelled out (-0.0 != 0.0, NaN == NaN)."""
    return [repr(float(v)) for v in np.asarray(x, np.float64).reshape(-1)]


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64, ml_dtypes.bfloat16])
def test_maximum_and_minimum_order_signed_zeros_and_propagate_nan(dtype: type) -> None:
    a, b = A.astype(dtype), B.astype(dtype)
    with np.errstate(invalid="ignore"):  # NaN operands (bfloat16's maximum reports them)
        for x, y in ((a, b), (b, a)):  # commutative, unlike numpy's
            assert _bits(maximum(x, y)) == ["0.0", "0.0", "-0.0", "0.0", "nan", "-0.0", "nan"]
            assert _bits(minimum(x, y)) == ["-0.0", "-0.0", "-0.0", "0.0", "nan", "-1.0", "nan"]
        assert maximum(a, b).dtype == np.dtype(dtype)


def test_integers_and_booleans_are_numpy_s() -> None:
    a = np.array([3, -4], np.int32)
    assert maximum(a, np.int32(0)).tolist() == [3, 0]
    assert minimum(np.array([True, False]), True).tolist() == [True, False]
    assert reduce_maximum(a).item() == 3


def test_reductions_order_signed_zeros_and_propagate_nan() -> None:
    x = np.array([[-0.0, 0.0], [0.0, -0.0], [-0.0, -0.0], [np.nan, 0.0]], np.float32)
    assert _bits(reduce_maximum(x, axis=1)) == ["0.0", "0.0", "-0.0", "nan"]
    assert _bits(reduce_minimum(x, axis=1)) == ["-0.0", "-0.0", "-0.0", "nan"]
    assert reduce_maximum(x, axis=(1,), keepdims=True).shape == (4, 1)
    empty = np.zeros((2, 0), np.float32)
    assert reduce_minimum(empty, axis=1, initial=np.inf).tolist() == [np.inf, np.inf]


def test_evaluator_max_reductions_and_functions_keep_signed_zeros() -> None:
    defn = parse(
        """f(X: f32[M, N]) -> (Hi: f32[M], Lo: f32[M], Mx: f32[M, N], R: f32[M, N]) {
        Hi[m] max= X[m, n]; Lo[m] min= X[m, n]
        Mx[m, n] = max(X[m, n], 0); R[m, n] = round(X[m, n]) }"""
    )
    x = np.array([[-0.0, 0.0], [-0.3, -0.0], [0.5, 2.5]], np.float32)
    out = evaluate(defn, X=x)
    assert _bits(out["Hi"]) == ["0.0", "-0.0", "2.5"]
    assert _bits(out["Lo"]) == ["-0.0", "-0.30000001192092896", "0.5"]
    assert _bits(out["Mx"]) == ["0.0", "0.0", "0.0", "0.0", "0.5", "2.5"]
    assert _bits(out["R"]) == ["-0.0", "0.0", "-0.0", "-0.0", "0.0", "2.0"]


def test_evaluator_precise_functions() -> None:
    defn = parse(
        "f(X: f32[N]) -> (E: f32[N], L: f32[N]) { E[i] = expm1(X[i]); L[i] = log1p(X[i]) }"
    )
    x = np.array([-1e-10, 2e-9, -0.0], np.float32)
    out = evaluate(defn, X=x)
    np.testing.assert_array_equal(out["E"], np.expm1(x))
    np.testing.assert_array_equal(out["L"], np.log1p(x))
    assert np.signbit(out["E"][2]) and np.signbit(out["L"][2])


def test_evaluator_integer_products_wrap() -> None:
    defn = parse("f(X: i32[N]) -> Y: i32[] { Y[] *= X[i] }")
    assert evaluate(defn, X=np.array([65536, 65536, 3], np.int32))["Y"].item() == 0
    defn = parse("f(X: i8[N]) -> Y: i8[] { Y[] += X[i] }")
    assert evaluate(defn, X=np.array([100, 100], np.int8))["Y"].item() == -56
