"""The tensor-expression language: example definitions evaluated against plain numpy."""

from __future__ import annotations

import time

import ml_dtypes
import numpy as np
import pytest

from mlc.texpr import (
    Definition,
    TexprError,
    const,
    evaluate,
    infer_sizes,
    it,
    parse,
    parse_all,
    specialize,
    sym,
)

MATMUL = "matmul(A: f32[M, K], B: f32[K, N]) -> C: f32[M, N] { C[m, n] += A[m, k] * B[k, n] }"
BMM = """
bmm(A: f32[Bt, M, K], B: f32[Bt, K, N]) -> C: f32[Bt, M, N] {
  C[b, m, n] += A[b, m, k] * B[b, k, n]
}"""
CONV2D = """
# NCHW convolution; padding by guarded reads
conv2d<S = 1, D = 1, P = 0>(X: f32[N, C, H, W], Wt: f32[F, C, KH, KW])
    -> Y: f32[N, F, (H + 2 * P - D * (KH - 1) - 1) / S + 1, (W + 2 * P - D * (KW - 1) - 1) / S + 1] {
  Y[n, f, oh, ow] += (X[n, c, oh * S + kh * D - P, ow * S + kw * D - P] if in bounds else 0)
                     * Wt[f, c, kh, kw]
}"""
MAXPOOL = """
maxpool<S, KH, KW, P = 0>(X: f32[N, C, H, W])
    -> Y: f32[N, C, (H + 2 * P - KH) / S + 1, (W + 2 * P - KW) / S + 1] {
  Y[n, c, oh, ow] max= X[n, c, oh * S + kh - P, ow * S + kw - P] if in bounds else lowest
      where kh in 0..KH, kw in 0..KW
}"""
ADD_BROADCAST = """
add(A: f32[M, N], B: f32[1, N]) -> C: f32[M, N] { C[m, n] = A[m, n] + B[0, n] }"""
SUM_HW = "sum_hw(X: f32[N, C, H, W]) -> Y: f32[N, C] { Y[n, c] += X[n, c, h, w] }"
SOFTMAX = """
softmax(X: f32[N, C]) -> Y: f32[N, C] {
  mx[n] max= X[n, c]
  e[n, c] = exp(X[n, c] - mx[n])
  s[n] += e[n, c]
  Y[n, c] = e[n, c] / s[n]
}"""
TRANSPOSE = "transpose(A: f32[M, N]) -> B: f32[N, M] { B[j, i] = A[i, j] }"
CONCAT_GUARDED = """
concat(A: f32[N, CA], B: f32[N, CB]) -> C: f32[N, CA + CB] {
  C[n, c] = A[n, c] if in bounds else B[n, c - CA] if in bounds else 0
}"""
CONCAT_SELECT = """
concat(A: f32[N, CA], B: f32[N, CB]) -> C: f32[N, CA + CB] {
  C[n, c] = select(c < CA, A[n, c] if in bounds else 0, B[n, c - CA] if in bounds else 0)
}"""
CONCAT_RANGES = """
concat(A: f32[N, CA], B: f32[N, CB]) -> C: f32[N, CA + CB] {
  C[n, c] = A[n, c] where c in 0..CA
  C[n, c] = B[n, c - CA] where c in CA..CA + CB
}"""
EQUAL = "equal(A: f32[N], B: f32[N]) -> C: bool[N] { C[i] = A[i] == B[i] }"
HARDMAX = """
hardmax(X: f32[N, C]) -> Y: f32[N, C] {
  mx[n] max= X[n, c]
  Y[n, c] = select(X[n, c] == mx[n], 1.0, 0.0)
}"""
ARGMAX = """
argmax(X: f32[N, C]) -> Y: i64[N] {
  mx[n] max= X[n, c]
  Y[n] min= select(X[n, c] == mx[n], c, C)
}"""
EXAMPLES = [
    MATMUL,
    BMM,
    CONV2D,
    MAXPOOL,
    ADD_BROADCAST,
    SUM_HW,
    SOFTMAX,
    TRANSPOSE,
    CONCAT_GUARDED,
    CONCAT_SELECT,
    CONCAT_RANGES,
    EQUAL,
    HARDMAX,
    ARGMAX,
]

RNG = np.random.default_rng(0)


def rand(*shape: int, dtype: type = np.float32) -> np.ndarray:
    """Standard-normal test data of ``dtype``."""
    return RNG.standard_normal(shape).astype(dtype)


def ref_conv2d(x: np.ndarray, w: np.ndarray, stride: int, dilation: int, pad: int) -> np.ndarray:
    """NCHW convolution in float64 by explicit padding and strided slices."""
    n, c, h, wd = x.shape
    f, _, kh, kw = w.shape
    xp = np.pad(x.astype(np.float64), ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    oh = (h + 2 * pad - dilation * (kh - 1) - 1) // stride + 1
    ow = (wd + 2 * pad - dilation * (kw - 1) - 1) // stride + 1
    y = np.zeros((n, f, oh, ow))
    for i in range(kh):
        for j in range(kw):
            hs, ws = i * dilation, j * dilation
            patch = xp[
                :,
                :,
                hs : hs + stride * (oh - 1) + 1 : stride,
                ws : ws + stride * (ow - 1) + 1 : stride,
            ]
            y += np.einsum("nchw,fc->nfhw", patch, w[:, :, i, j].astype(np.float64))
    return y


def ref_maxpool(x: np.ndarray, stride: int, kh: int, kw: int, pad: int) -> np.ndarray:
    """Max pooling with -inf padding."""
    n, c, h, w = x.shape
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)), constant_values=-np.inf)
    oh, ow = (h + 2 * pad - kh) // stride + 1, (w + 2 * pad - kw) // stride + 1
    y = np.full((n, c, oh, ow), -np.inf, dtype=x.dtype)
    for i in range(kh):
        for j in range(kw):
            y = np.maximum(
                y,
                xp[
                    :,
                    :,
                    i : i + stride * (oh - 1) + 1 : stride,
                    j : j + stride * (ow - 1) + 1 : stride,
                ],
            )
    return y


# -- the AST -------------------------------------------------------------------------------


def test_matmul_ast() -> None:
    defn = parse(MATMUL)
    assert isinstance(defn, Definition)
    assert defn.name == "matmul"
    assert [(d.name, d.dtype, d.shape) for d in defn.inputs] == [
        ("A", "f32", (sym("M"), sym("K"))),
        ("B", "f32", (sym("K"), sym("N"))),
    ]
    assert [(d.name, d.shape) for d in defn.outputs] == [("C", (sym("M"), sym("N")))]
    assert [(i.name, i.extent, i.kind) for i in defn.iterators] == [
        ("m", sym("M"), "parallel"),
        ("n", sym("N"), "parallel"),
        ("k", sym("K"), "reduction"),
    ]
    (stmt,) = defn.statements
    assert (stmt.target, stmt.indices, stmt.op, stmt.init) == ("C", ("m", "n"), "+=", True)
    assert [(r.tensor, r.indices) for r in stmt.reads()] == [
        ("A", (it("m"), it("k"))),
        ("B", (it("k"), it("n"))),
    ]
    assert defn.symbols == ("M", "K", "N")


def test_conv_ast_has_affine_indices_and_explicit_sizes() -> None:
    defn = parse(CONV2D)
    assert [p.name for p in defn.params] == ["S", "D", "P"]
    assert [p.default for p in defn.params] == [1, 1, 0]
    x_read = defn.statements[0].reads()[0]
    assert x_read.indices[2] == it("oh") * sym("S") + it("kh") * sym("D") - sym("P")
    assert [i.kind for i in defn.iterators] == ["parallel"] * 4 + ["reduction"] * 3
    assert [i.name for i in defn.statements[0].reduction] == ["c", "kh", "kw"]


def test_explicit_ranges_and_locals() -> None:
    pool = parse(MAXPOOL)
    kh = pool.statements[0].iterator("kh")
    assert (kh.lower, kh.upper, kh.kind) == (const(0), sym("KH"), "reduction")
    soft = parse(SOFTMAX)
    assert [(d.name, d.dtype, d.shape) for d in soft.locals] == [
        ("mx", "f32", (sym("N"),)),
        ("e", "f32", (sym("N"), sym("C"))),
        ("s", "f32", (sym("N"),)),
    ]
    with pytest.raises(ValueError, match="per statement"):
        _ = soft.iterators


@pytest.mark.parametrize("text", EXAMPLES, ids=lambda t: t.split("(")[0].split()[-1])
def test_print_round_trip(text: str) -> None:
    defn = parse(text)
    again = parse(str(defn))
    assert again == defn
    assert str(again) == str(defn)


@pytest.mark.parametrize("op", ["==", "!=", "<=", ">=", "<", ">"])
@pytest.mark.parametrize("space", [" ", ""])
def test_comparisons_after_indexed_reads(op: str, space: str) -> None:
    """`A[i] == B[i]`: the `=` after `]` is part of a comparison, not an assignment."""
    defn = parse(
        f"cmp(A: f32[N], B: f32[N]) -> C: bool[N] {{ C[i]{space}={space}A[i]{space}{op}{space}B[i] }}"
    )
    assert str(defn) == f"cmp(A: f32[N], B: f32[N]) -> C: bool[N] {{\n  C[i] = A[i] {op} B[i]\n}}"
    assert parse(str(defn)) == defn
    a = np.array([1, 2, 3, 4, 5], dtype=np.float32)
    b = np.array([5, 2, 1, 4, 0], dtype=np.float32)
    expected = {"==": a == b, "!=": a != b, "<=": a <= b, ">=": a >= b, "<": a < b, ">": a > b}
    np.testing.assert_array_equal(evaluate(defn, A=a, B=b)["C"], expected[op])


@pytest.mark.parametrize("op", ["+=", "*=", "max=", "min="])
def test_assignments_without_spaces_next_to_comparisons(op: str) -> None:
    """`]+=`, `]max=`, `]=` still assign; `]==` compares."""
    defn = parse(
        f"r(X: i64[N, K], A: i64[N]) -> (Y: i64[N], Z: bool[N]) {{ Y[n]{op}X[n, k]\nZ[n]=Y[n]==A[n] }}"
    )
    assert [s.op for s in defn.statements] == [op, "="]
    assert parse(str(defn)) == defn
    x = np.array([[3, 1, 2], [0, 5, -1]])
    reduce = {"+=": np.sum, "*=": np.prod, "max=": np.max, "min=": np.min}[op]
    out = evaluate(defn, X=x, A=x[:, 0].copy())
    np.testing.assert_array_equal(out["Y"], reduce(x, axis=1))
    np.testing.assert_array_equal(out["Z"], reduce(x, axis=1) == x[:, 0])


def test_comparison_templates() -> None:
    """equal, hardmax and argmax (which compare indexed reads) against numpy."""
    a, b = np.array([1.0, 2.0, 3.0], dtype=np.float32), np.array([1.0, 0.0, 3.0], dtype=np.float32)
    np.testing.assert_array_equal(evaluate(parse(EQUAL), A=a, B=b)["C"], a == b)
    x = rand(4, 6)
    x[2, 1] = x[2, 4] = x[2].max() + 1  # a tie: argmax takes the first
    hard = evaluate(parse(HARDMAX), X=x)["Y"]
    np.testing.assert_array_equal(hard, (x == x.max(axis=1, keepdims=True)).astype(np.float32))
    np.testing.assert_array_equal(evaluate(parse(ARGMAX), X=x)["Y"], np.argmax(x, axis=1))


def test_parse_all_and_comments() -> None:
    defs = parse_all(MATMUL + "\n# a comment\n" + TRANSPOSE)
    assert list(defs) == ["matmul", "transpose"]
    with pytest.raises(TexprError, match="expected one definition"):
        parse(MATMUL + TRANSPOSE)


# -- evaluation against numpy ---------------------------------------------------------------


def test_matmul() -> None:
    a, b = rand(37, 19), rand(19, 23)
    c = evaluate(parse(MATMUL), A=a, B=b)["C"]
    assert c.dtype == np.float32
    np.testing.assert_allclose(c, a @ b, rtol=1e-5, atol=1e-5)


def test_batched_matmul() -> None:
    a, b = rand(3, 5, 7), rand(3, 7, 4)
    np.testing.assert_allclose(evaluate(parse(BMM), A=a, B=b)["C"], a @ b, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(
    ("stride", "dilation", "pad"), [(1, 1, 0), (2, 1, 1), (1, 2, 2), (3, 2, 1)]
)
def test_conv2d(stride: int, dilation: int, pad: int) -> None:
    x, w = rand(2, 3, 11, 9), rand(4, 3, 3, 2)
    y = evaluate(parse(CONV2D), X=x, Wt=w, S=stride, D=dilation, P=pad)["Y"]
    np.testing.assert_allclose(y, ref_conv2d(x, w, stride, dilation, pad), rtol=1e-4, atol=1e-4)


def test_conv2d_defaults_and_sizes() -> None:
    defn = parse(CONV2D)
    sizes = infer_sizes(defn, {"X": (2, 3, 8, 8), "Wt": (5, 3, 3, 3)}, {"P": 1})
    assert sizes == {
        "S": 1,
        "D": 1,
        "P": 1,
        "N": 2,
        "C": 3,
        "H": 8,
        "W": 8,
        "F": 5,
        "KH": 3,
        "KW": 3,
    }
    x, w = rand(2, 3, 8, 8), rand(5, 3, 3, 3)
    np.testing.assert_allclose(
        evaluate(defn, X=x, Wt=w)["Y"], ref_conv2d(x, w, 1, 1, 0), rtol=1e-4, atol=1e-4
    )


@pytest.mark.parametrize(("stride", "k", "pad"), [(2, 2, 0), (1, 3, 1), (2, 3, 1)])
def test_maxpool(stride: int, k: int, pad: int) -> None:
    x = rand(2, 3, 9, 8)
    y = evaluate(parse(MAXPOOL), X=x, S=stride, KH=k, KW=k, P=pad)["Y"]
    np.testing.assert_array_equal(y, ref_maxpool(x, stride, k, k, pad))


def test_elementwise_add_with_explicit_broadcast() -> None:
    a, b = rand(4, 5), rand(1, 5)
    np.testing.assert_array_equal(evaluate(parse(ADD_BROADCAST), A=a, B=b)["C"], a + b)


def test_reduction_over_two_axes() -> None:
    x = rand(2, 3, 4, 5)
    np.testing.assert_allclose(
        evaluate(parse(SUM_HW), X=x)["Y"], x.sum(axis=(2, 3)), rtol=1e-5, atol=1e-5
    )


def test_softmax() -> None:
    x = rand(6, 10) * 10
    e = np.exp(x - x.max(axis=1, keepdims=True))
    np.testing.assert_allclose(
        evaluate(parse(SOFTMAX), X=x)["Y"], e / e.sum(axis=1, keepdims=True), rtol=1e-5
    )


def test_transpose() -> None:
    a = rand(3, 7)
    np.testing.assert_array_equal(evaluate(parse(TRANSPOSE), A=a)["B"], a.T)


@pytest.mark.parametrize(
    "text", [CONCAT_GUARDED, CONCAT_SELECT, CONCAT_RANGES], ids=["guarded", "select", "ranges"]
)
def test_concat(text: str) -> None:
    a, b = rand(3, 4), rand(3, 2)
    np.testing.assert_array_equal(
        evaluate(parse(text), A=a, B=b)["C"], np.concatenate([a, b], axis=1)
    )


def test_specialize_gives_constant_affine_maps() -> None:
    conv = specialize(parse(CONV2D), N=1, C=3, H=8, W=8, F=4, KH=3, KW=3, S=2, P=1)
    assert conv.params == ()
    assert conv.outputs[0].shape == (const(1), const(4), const(4), const(4))
    assert conv.statements[0].reads()[0].indices[2] == it("oh") * 2 + it("kh") - 1
    assert [i.upper for i in conv.iterators] == [const(v) for v in (1, 4, 4, 4, 3, 3, 3)]
    x, w = rand(1, 3, 8, 8), rand(4, 3, 3, 3)
    np.testing.assert_allclose(
        evaluate(conv, X=x, Wt=w)["Y"], ref_conv2d(x, w, 2, 1, 1), rtol=1e-4, atol=1e-4
    )
    with pytest.raises(TexprError, match="no value for size"):
        specialize(parse(CONV2D), N=1)


# -- semantics in detail ---------------------------------------------------------------------


def test_reductions_accumulate_after_the_first_write() -> None:
    defn = parse("""
    linear(X: f32[M, K], Wt: f32[N, K], Bias: f32[N]) -> Y: f32[M, N] {
      Y[m, n] = Bias[n]
      Y[m, n] += X[m, k] * Wt[n, k]
    }""")
    assert [s.init for s in defn.statements] == [True, False]
    x, w, bias = rand(5, 6), rand(3, 6), rand(3)
    np.testing.assert_allclose(
        evaluate(defn, X=x, Wt=w, Bias=bias)["Y"], x @ w.T + bias, rtol=1e-5, atol=1e-5
    )


def test_in_out_tensor_accumulates_into_its_input() -> None:
    defn = parse("fma(A: f32[M, K], B: f32[K], C: f32[M]) -> C: f32[M] { C[m] += A[m, k] * B[k] }")
    assert defn.inouts == {"C"} and not defn.statements[0].init
    a, b, c = rand(4, 3), rand(3), rand(4)
    out = evaluate(defn, A=a, B=b, C=c)["C"]
    np.testing.assert_allclose(out, c + a @ b, rtol=1e-5, atol=1e-5)
    assert out is not c


@pytest.mark.parametrize(
    ("op", "expected"),
    [("+=", 0.0), ("*=", 1.0), ("max=", -np.inf), ("min=", np.inf)],
)
def test_reduction_identities_on_empty_domains(op: str, expected: float) -> None:
    defn = parse(f"r(A: f32[M, K]) -> Y: f32[M] {{ Y[m] {op} A[m, k] }}")
    np.testing.assert_array_equal(
        evaluate(defn, A=np.zeros((3, 0), np.float32))["Y"], np.full(3, expected, np.float32)
    )


def test_reductions() -> None:
    a = rand(4, 6)
    for op, ref in [("+=", a.sum(1)), ("*=", a.prod(1)), ("max=", a.max(1)), ("min=", a.min(1))]:
        out = evaluate(parse(f"r(A: f32[M, K]) -> Y: f32[M] {{ Y[m] {op} A[m, k] }}"), A=a)["Y"]
        np.testing.assert_allclose(out, ref, rtol=1e-5)


def test_integer_semantics_are_exact() -> None:
    defn = parse("""
    ints(A: i32[N], B: i32[N]) -> (Q: i32[N], R: i32[N], S: i32[], W: i8[N]) {
      Q[i] = A[i] / B[i]
      R[i] = A[i] % B[i]
      S[] += A[i] * B[i]
      W[i] = i8(A[i]) * 100
    }""")
    a = np.array([7, -7, 7, -7, 5], np.int32)
    b = np.array([2, 2, -2, -2, 0], np.int32)
    out = evaluate(defn, A=a, B=b)
    np.testing.assert_array_equal(out["Q"][:4], [3, -3, -3, 3])  # truncating, like C
    np.testing.assert_array_equal(out["R"][:4], [1, -1, 1, -1])
    assert out["Q"][4] == 0  # integer division by zero: undefined, 0 here
    assert out["S"] == int((a.astype(np.int64) * b).sum())
    np.testing.assert_array_equal(out["W"], (a.astype(np.int8) * np.int8(100)).astype(np.int8))


def test_int8_dot_accumulates_in_int32() -> None:
    defn = parse("""
    vnni(A: u8[M, K], B: i8[N, K], C: i32[M, N]) -> C: i32[M, N] {
      C[m, n] += i32(A[m, k]) * i32(B[n, k])
    }""")
    a = RNG.integers(0, 256, (4, 64), dtype=np.uint8)
    b = RNG.integers(-128, 128, (16, 64), dtype=np.int8)
    c = RNG.integers(-1000, 1000, (4, 16), dtype=np.int32)
    expected = c + a.astype(np.int32) @ b.astype(np.int32).T
    np.testing.assert_array_equal(evaluate(defn, A=a, B=b, C=c)["C"], expected)


def test_bf16_dot_into_f32() -> None:
    defn = parse("""
    dpbf16(A: bf16[M, K], B: bf16[K, N]) -> C: f32[M, N] { C[m, n] += f32(A[m, k]) * f32(B[k, n]) }""")
    a, b = rand(3, 8).astype(ml_dtypes.bfloat16), rand(8, 5).astype(ml_dtypes.bfloat16)
    expected = a.astype(np.float32) @ b.astype(np.float32)
    np.testing.assert_allclose(evaluate(defn, A=a, B=b)["C"], expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("dtype", ["f16", "bf16"])
def test_half_precision(dtype: str) -> None:
    np_dtype = np.float16 if dtype == "f16" else ml_dtypes.bfloat16
    defn = parse(f"""
    half(A: {dtype}[M, K]) -> (Y: {dtype}[M], Z: {dtype}[M, K]) {{
      Y[m] += A[m, k] * 2
      Z[m, k] = tanh(A[m, k]) + exp(A[m, k])
    }}""")
    a = rand(3, 300).astype(np_dtype)
    out = evaluate(defn, A=a)
    assert out["Y"].dtype == np_dtype and out["Z"].dtype == np_dtype
    wide = a.astype(np.float32)
    np.testing.assert_allclose(out["Y"].astype(np.float32), (wide * 2).sum(1), rtol=2e-2, atol=1e-1)
    np.testing.assert_allclose(
        out["Z"].astype(np.float32), np.tanh(wide) + np.exp(wide), rtol=2e-2, atol=2e-2
    )


def test_math_functions_casts_and_select() -> None:
    defn = parse("""
    fns(X: f32[N]) -> (Y: f32[N], I: i32[N], B: bool[N]) {
      Y[i] = sigmoid(X[i]) + erf(X[i]) + sqrt(abs(X[i])) + pow(abs(X[i]), 1.5) - max(X[i], 0.0)
             + min(X[i], -X[i]) + log(1 + abs(X[i])) + floor(X[i]) + f32(i) * 0.5
      I[i] = select(X[i] > 0 and not (X[i] > 1), i32(X[i] * 10), -1)
      B[i] = X[i] >= 0 or i == 0
    }""")
    import scipy.special

    x = rand(50) * 3
    out = evaluate(defn, X=x)
    expected = (
        scipy.special.expit(x)
        + scipy.special.erf(x)
        + np.sqrt(np.abs(x))
        + np.abs(x) ** 1.5
        - np.maximum(x, 0)
        + np.minimum(x, -x)
        + np.log1p(np.abs(x))
        + np.floor(x)
        + np.arange(50) * 0.5
    )
    np.testing.assert_allclose(out["Y"], expected, rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(
        out["I"], np.where((x > 0) & (x <= 1), (x * 10).astype(np.int32), -1)
    )
    np.testing.assert_array_equal(out["B"], (x >= 0) | (np.arange(50) == 0))


def test_bool_reductions_and_literals() -> None:
    defn = parse("""
    anyall(A: bool[M, K]) -> (Any: bool[M], All: bool[M], T: bool[M]) {
      Any[m] max= A[m, k]
      All[m] *= A[m, k]
      T[m] = true
    }""")
    a = RNG.random((5, 3)) > 0.5
    out = evaluate(defn, A=a)
    np.testing.assert_array_equal(out["Any"], a.any(1))
    np.testing.assert_array_equal(out["All"], a.all(1))
    assert out["T"].all()


def test_lowest_saturates_to_the_integer_minimum() -> None:
    defn = parse("""
    pool1d(X: i8[N]) -> Y: i8[N] { Y[i] max= X[i + k - 1] if in bounds else lowest where k in 0..3 }""")
    x = np.array([-5, -128, 7, -2], np.int8)
    np.testing.assert_array_equal(evaluate(defn, X=x)["Y"], [-5, 7, 7, 7])


def test_floordiv_and_mod_indices() -> None:
    defn = parse("""
    shuffle(X: f32[N]) -> Y: f32[N / 2, 2] { Y[i, j] = X[(i * 2 + j) / 2 * 2 + (i * 2 + j) % 2] }
    """)
    x = rand(10)
    np.testing.assert_array_equal(evaluate(defn, X=x)["Y"], x.reshape(5, 2))
    up = parse("upsample(X: f32[N]) -> Y: f32[2 * N] { Y[i] = X[i / 2] }")
    np.testing.assert_array_equal(evaluate(up, X=x)["Y"], np.repeat(x, 2))


def test_sizes_given_explicitly_and_iota() -> None:
    defn = parse("iota() -> Y: i64[N] { Y[i] = i * 3 - 1 }")
    np.testing.assert_array_equal(evaluate(defn, N=4)["Y"], [-1, 2, 5, 8])


def test_scalar_inputs() -> None:
    defn = parse("axpy(a: f32[], X: f32[N], Y: f32[N]) -> Z: f32[N] { Z[i] = a * X[i] + Y[i] }")
    x, y = rand(5), rand(5)
    np.testing.assert_allclose(
        evaluate(defn, a=np.float32(2.0), X=x, Y=y)["Z"], 2 * x + y, rtol=1e-6
    )


def test_evaluation_errors() -> None:
    mm = parse(MATMUL)
    with pytest.raises(TexprError, match="input `B` has size 4 in dim 0 but `K` = 3"):
        evaluate(mm, A=rand(2, 3), B=rand(4, 5))
    with pytest.raises(TexprError, match="must be f32 but is f64"):
        evaluate(mm, A=np.zeros((2, 3)), B=rand(3, 5))
    with pytest.raises(TexprError, match="missing input `B`"):
        evaluate(mm, A=rand(2, 3))
    with pytest.raises(TexprError, match="no input or size called `Q`"):
        evaluate(mm, A=rand(2, 3), B=rand(3, 5), Q=1)
    with pytest.raises(TexprError, match="must have rank 2"):
        evaluate(mm, A=rand(2), B=rand(3, 5))
    with pytest.raises(TexprError, match="S, KH, KW .* not determined"):
        evaluate(parse(MAXPOOL), X=rand(1, 1, 4, 4))


def test_blocked_evaluation_matches(monkeypatch: pytest.MonkeyPatch) -> None:
    from mlc.texpr import evaluator as evaluate_module

    x, w = rand(2, 3, 9, 9), rand(4, 3, 3, 3)
    xs = rand(5, 7)
    conv, pool, soft = parse(CONV2D), parse(MAXPOOL), parse(SOFTMAX)
    expected = (
        evaluate(conv, X=x, Wt=w, S=2, P=1)["Y"],
        evaluate(pool, X=x, S=2, KH=3, KW=3, P=1)["Y"],
        evaluate(soft, X=xs)["Y"],
    )
    monkeypatch.setattr(evaluate_module, "BLOCK_ELEMENTS", 60)
    monkeypatch.setattr(evaluate_module, "EINSUM_ELEMENTS", 50)
    blocked = (
        evaluate(conv, X=x, Wt=w, S=2, P=1)["Y"],
        evaluate(pool, X=x, S=2, KH=3, KW=3, P=1)["Y"],
        evaluate(soft, X=xs)["Y"],
    )
    for a, b in zip(expected, blocked, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)


GUARDED_MIXED = """
f(X: f32[N, K], B: f32[N]) -> Y: f32[N] {
  Y[n] += (X[n, k - 1] * B[n]) if in bounds else 0 where k in 0..K
}"""


@pytest.mark.parametrize("path", ["einsum", "generic", "blocked"])
def test_guarded_subject_reading_over_different_iterators(
    path: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The guard's masks (over n, k; over n; a scalar for unpadded reads) broadcast together."""
    from mlc.texpr import evaluator as evaluate_module

    if path == "generic":
        monkeypatch.setattr(evaluate_module, "_EINSUM_TYPES", frozenset())
    if path == "blocked":
        monkeypatch.setattr(evaluate_module, "BLOCK_ELEMENTS", 2)
        monkeypatch.setattr(evaluate_module, "EINSUM_ELEMENTS", 2)
    x = np.arange(12, dtype=np.float32).reshape(3, 4)
    b = np.array([1.0, -2.0, 0.5], dtype=np.float32)
    expected = (x[:, :-1] * b[:, None]).sum(axis=1)  # k - 1 < 0 reads the fallback 0
    np.testing.assert_allclose(evaluate(parse(GUARDED_MIXED), X=x, B=b)["Y"], expected)
    xs = np.array([1.0, -2.0, 3.0, 0.5], dtype=np.float32)
    bs = np.arange(12, dtype=np.float32).reshape(4, 3) - 5
    xp = np.concatenate([[np.nan], xs, [np.nan, np.nan, np.nan]])  # xp[i + 1] is X[i]
    window = np.stack([xp[1 + j : 5 + j] for j in range(3)], axis=1) * bs  # X[i + j] * B[i, j]
    cases = [
        ("Y[i] = (X[i - 1] + X[i]) if in bounds else 0", np.nan_to_num(xp[:4] + xs)),
        (
            "Y[i] = (X[i + 1] - B[i, 2]) if in bounds else 9",
            np.nan_to_num(xp[2:6] - bs[:, 2], nan=9),
        ),
        ("Y[i] max= (X[i + j] * B[i, j]) if in bounds else lowest", np.nanmax(window, axis=1)),
        ("Y[i] += (X[i + j] * B[i, j]) if in bounds else 0", np.nansum(window, axis=1)),
    ]
    for statement, ref in cases:
        defn = parse(f"g(X: f32[N], B: f32[N, 3]) -> Y: f32[N] {{ {statement} }}")
        np.testing.assert_allclose(evaluate(defn, X=xs, B=bs)["Y"], ref, err_msg=statement)


def _best_time(fn: object, repeat: int = 3) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        fn()  # type: ignore[operator]
        best = min(best, time.perf_counter() - start)
    return best


def test_matmul_and_conv_are_fast() -> None:
    """Vectorized evaluation: a 512^3 matmul and a 1.6M-output convolution in well under 1 s."""
    mm, conv = parse(MATMUL), parse(CONV2D)
    a, b = rand(512, 512), rand(512, 512)
    x, w = rand(8, 32, 56, 56), rand(64, 32, 3, 3)
    assert _best_time(lambda: evaluate(mm, A=a, B=b)) < 1.0
    assert _best_time(lambda: evaluate(conv, X=x, Wt=w, P=1)) < 1.0


# -- corner cases -------------------------------------------------------------------------------


def test_iterators_missing_from_the_body() -> None:
    bcast = parse("f(A: f32[M, K]) -> Y: f32[M, K] { Y[i, j] += A[0, k] where k in 0..K }")
    a = rand(2, 3)
    np.testing.assert_allclose(
        evaluate(bcast, A=a)["Y"], np.broadcast_to(a[0].sum(), (2, 3)), rtol=1e-6
    )
    count = parse("f(A: f32[M, K]) -> Y: i32[K] { Y[i] += 1 where j in 0..M }")
    np.testing.assert_array_equal(evaluate(count, A=a)["Y"], [2, 2, 2])


def test_zero_sized_inputs() -> None:
    a, b = rand(3, 0), rand(3, 2)
    for text in (CONCAT_GUARDED, CONCAT_RANGES):
        np.testing.assert_array_equal(evaluate(parse(text), A=a, B=b)["C"], b)
    assert evaluate(parse(MATMUL), A=rand(0, 4), B=rand(4, 2))["C"].shape == (0, 2)


def test_negative_coefficients_and_diagonals() -> None:
    x = rand(5)
    rev = parse("rev(X: f32[N]) -> Y: f32[N] { Y[i] = X[N - 1 - i] }")
    np.testing.assert_array_equal(evaluate(rev, X=x[::-1].copy())["Y"], x)
    np.testing.assert_array_equal(evaluate(rev, X=x[::-1])["Y"], x)  # a negatively strided input
    trace = parse("trace(A: i64[N, N]) -> T: i64[] { T[] += A[i, i] }")
    a = np.arange(16).reshape(4, 4)
    assert evaluate(trace, A=a)["T"] == np.trace(a)


def test_poly_algebra_and_printing() -> None:
    h, s, p = sym("H"), sym("S"), sym("P")
    out = (h + 2 * p - 3).floordiv(s) + 1
    assert str(out) == "(H + 2 * P - 3) / S + 1"
    assert out.evaluate({"H": 8, "P": 1, "S": 2}) == 4
    index = it("oh") * s + it("kh") - p
    assert str(index) == "kh + oh * S - P"
    assert index.affine_form() == ({"kh": const(1), "oh": s}, -p)
    assert (it("i") * 4 + 2).floordiv(2) == it("i") * 2 + 1
    assert (it("i") * 4).mod(2) == const(0)
    assert it("i").floordiv(2).affine_form() is None
    assert index.substitute({"S": 2, "P": 1}) == it("oh") * 2 + it("kh") - 1


def test_parse_is_cached_and_definitions_are_immutable() -> None:
    assert parse(MATMUL) is parse(MATMUL)
    with pytest.raises(AttributeError):
        parse(MATMUL).name = "other"  # type: ignore[misc]


def test_specialize_rejects_impossible_sizes() -> None:
    with pytest.raises(TexprError, match="negative size"):
        specialize(parse(MAXPOOL), N=1, C=1, H=1, W=1, S=1, KH=3, KW=3)


def test_module_docstring_examples() -> None:
    import doctest

    import mlc.texpr as texpr

    assert doctest.testmod(texpr).failed == 0
