"""The tensor-expression language: syntax, type and bounds errors name line:col and the cause."""

from __future__ import annotations

import pytest

from mlc.texpr import TexprError, parse


def error_of(text: str) -> TexprError:
    """The `TexprError` that parsing ``text`` raises."""
    with pytest.raises(TexprError) as info:
        parse(text)
    return info.value


def test_syntax_error_has_line_col_and_expectation() -> None:
    err = error_of(
        "matmul(A: f32[M, K], B: f32[K, N]) -> C: f32[M, N] {\n  C[m, n] += A[m, k] * \n}"
    )
    assert (err.line, err.column) == (3, 1)
    assert str(err).startswith("3:1: unexpected `}`; expected ")
    assert "a name" in str(err) and "a number" in str(err)
    assert "\n" not in str(err)
    assert "Traceback" not in str(err) and "Lark" not in str(err)


def test_syntax_error_unexpected_character() -> None:
    err = error_of("f(A: f32[N]) -> Y: f32[N] {\n  Y[i] = A[i] @ 2\n}")
    assert str(err) == "2:15: unexpected character `@`"


def test_syntax_error_end_of_input() -> None:
    err = error_of("f(A: f32[N]) -> Y: f32[N] { Y[i] = A[i]")
    assert str(err).startswith("1:40: unexpected end of input; expected")


def test_syntax_error_bad_operator() -> None:
    err = error_of("f(A: f32[N]) -> Y: f32[N] { Y[i] := A[i] }")
    assert str(err).startswith("1:34: unexpected character `:`") or str(err).startswith(
        "1:34: unexpected"
    )


def test_rank_mismatch() -> None:
    err = error_of("f(A: f32[M, K]) -> B: f32[M] {\n  B[m] += A[m, k, 0]\n}")
    assert str(err) == "2:11: `A` has rank 2 but is indexed with 3 indices"
    err = error_of("f(A: f32[M, K]) -> B: f32[M] { B[m, k] += A[m, k] }")
    assert "`B` has rank 1 but is indexed with 2 indices" in str(err)


def test_dtype_mismatch() -> None:
    err = error_of("f(A: f32[M], I: i32[M]) -> B: f32[M] {\n  B[m] = A[m] * I[m]\n}")
    assert str(err) == "2:15: dtype mismatch in `*`: f32 vs i32 (insert a cast, e.g. f32(x))"
    err = error_of("f(A: f32[M]) -> B: i32[M] { B[m] = A[m] }")
    assert "dtype mismatch in `=` to `B`: i32 vs f32" in str(err)
    err = error_of("f(A: f32[M]) -> B: f32[M] { B[m] = A[m] * m }")
    assert "f32 vs i64 (iterators and sizes are i64 values: cast them, e.g. f32(i))" in str(err)


def test_unguarded_out_of_bounds_access_is_named() -> None:
    err = error_of("shift(A: f32[M, K]) -> B: f32[M] {\n  B[m] += A[m + 1, k]\n}")
    assert (err.line, err.column) == (2, 11)
    message = str(err)
    assert "A[m + 1, k] can go out of bounds" in message
    assert (
        "index 0 `m + 1` ranges over [1, 1] but `A` has size 1 in dim 0 (`M`) when M = 1" in message
    )
    assert "if in bounds else 0" in message


def test_unguarded_padding_is_rejected_and_guard_accepted() -> None:
    conv = """
    conv<S = 1, P = 0>(X: f32[N, C, H, W], Wt: f32[F, C, K, K])
        -> Y: f32[N, F, (H + 2 * P - K) / S + 1, (W + 2 * P - K) / S + 1] {
      Y[n, f, oh, ow] += X[n, c, oh * S + kh - P, ow * S + kw - P] * Wt[f, c, kh, kw]
    }"""
    err = error_of(conv)
    assert "X[n, c, kh + oh * S - P, kw + ow * S - P] can go out of bounds" in str(err)
    assert "P = 1" in str(err)
    guarded = conv.replace(
        "X[n, c, oh * S + kh - P, ow * S + kw - P]",
        "(X[n, c, oh * S + kh - P, ow * S + kw - P] if in bounds else 0)",
    )
    parse(guarded)
    valid = conv.replace(" - P", "").replace("2 * P", "0")
    parse(valid)


def test_target_out_of_bounds() -> None:
    err = error_of(
        "f(A: f32[N]) -> Y: f32[N] { Y[i] = A[i] if in bounds else 0 where i in 0..N + 1 }"
    )
    assert "target Y[i] can go out of bounds" in str(err)


def test_unknown_function() -> None:
    err = error_of("f(A: f32[N]) -> Y: f32[N] { Y[i] = softplus(A[i]) }")
    assert str(err).startswith("1:36: unknown function `softplus`; expected one of abs, acos,")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("f(A: f33[N]) -> Y: f32[N] { Y[i] = A[i] }", "unknown element type `f33`"),
        ("f(A: f32[N]) -> Y: f32[N] { Y[i] += A[i + k] }", "iterator `k` has no range"),
        (
            "f(A: f32[N], B: f32[M]) -> Y: f32[N] { Y[i] = A[i] + B[i] }",
            "indexes dimensions of different sizes: N (Y dim 0) and M (B dim 0)",
        ),
        ("f(A: f32[N, M]) -> Y: f32[N] { Y[i] = A[i, j] }", "`=` cannot reduce over j"),
        ("f(A: f32[N, M]) -> Y: f32[N] { Y[i] += A[i, j * i] }", "index `j * i` is not affine"),
        (
            "f(A: f32[N]) -> Y: f32[N] { Y[i] = A[i * 1.5] }",
            "an index must be an integer-affine expression",
        ),
        ("f(A: f32[N]) -> Y: f32[N] { Y[i] = A[i / 0] }", "must be positive"),
        ("f(A: f32[N]) -> Y: f32[N] { Y[i] = A[i / i] }", "may not depend on iterators"),
        (
            "f(A: f32[N], I: i64[N]) -> Y: f32[N] { Y[i] = A[I[i]] }",
            "data-dependent indices are not supported",
        ),
        ("f(A: f32[N]) -> Y: f32[N] { A[i] = 1.0  Y[i] = A[i] }", "cannot assign to input `A`"),
        ("f(A: f32[N]) -> (Y: f32[N], Z: f32[N]) { Y[i] = A[i] }", "output `Z` is never written"),
        (
            "f(A: f32[N]) -> (Y: f32[N], Z: f32[N]) { Y[i] = Z[i]  Z[i] = A[i] }",
            "`Z` is read before it is written",
        ),
        (
            "f(A: f32[N]) -> Y: f32[N] { Y[i] = A[i]  Y[i] = Y[i] * 2 }",
            "cannot read its own target `Y`",
        ),
        ("f(A: i8[N]) -> Y: i8[N] { Y[i] = A[i] + 300 }", "literal 300 does not fit in i8"),
        ("f(A: i32[N]) -> Y: i32[N] { Y[i] = A[i] * 0.5 }", "a float literal cannot be i32"),
        ("f(A: i32[N]) -> Y: i32[N] { Y[i] = exp(A[i]) }", "`exp` needs a float operand, got i32"),
        (
            "f(A: f32[N]) -> Y: f32[N] { Y[i] = bitand(A[i], A[i]) }",
            "`bitand` needs integer operands, got f32",
        ),
        (
            "f(A: i32[N]) -> Y: i32[N] { Y[i] = shl(A[i], 1.5) }",
            "a float literal cannot be i32",
        ),
        (
            "f(A: bool[N]) -> Y: bool[N] { Y[i] = bitnot(A[i]) }",
            "`bitnot` needs integer operands, got bool",
        ),
        ("f(A: i8[N]) -> Y: i8[N] { Y[i] = shr(A[i]) }", "`shr` takes 2 argument(s), got 1"),
        (
            "f(A: f32[N]) -> Y: f32[N] { Y[i] = select(A[i], 1, 2) }",
            "condition of `select` needs a bool operand",
        ),
        ("f(A: f32[N]) -> Y: f32[N] { Y[i] = max(A[i]) }", "`max` takes 2 argument(s), got 1"),
        ("f(A: f32[N]) -> Y: f32[N] { Y[i] = A[i] + q }", "unknown name `q`"),
        ("f(A: f32[N]) -> Y: f32[N] { Y[i] = B[i] }", "unknown tensor `B`"),
        (
            "f(A: f32[N]) -> Y: f32[N] { t[i] = 0 where i in 0..N  Y[i] = A[i] }",
            "cannot infer the dtype of `t`",
        ),
        (
            "f(A: f32[N]) -> Y: f32[N] { Y[i] = A[i] + (1.0 if in bounds else 0.0) }",
            "guards no tensor read",
        ),
        ("f(A: f32[A]) -> Y: f32[A] { Y[i] = A[i] }", "`A` is both a tensor and a size"),
        (
            "f(A: f32[N]) -> Y: f32[N] { Y[i + 1] = A[i] }",
            "a target index must be an iterator name",
        ),
        (
            "f(A: f32[N]) -> Y: f32[N] { Y[i] = A[i]  }\nf(A: f32[N]) -> Y: f32[N] { Y[i] = A[i] }",
            "`f` is defined twice",
        ),
        ("f(A: bool[N]) -> Y: bool[N] { Y[i] = -A[i] }", "unary `-` needs a numeric operand"),
        ("f(A: bool[N]) -> Y: bool[N] { Y[i] = A[i] + A[i] }", "`+` needs numeric operands"),
        ("f(A: f32[N]) -> Y: f32[N] { Y[i] = A[i] and true }", "`and` needs a bool operand"),
        (
            "f(A: f32[N], C: f32[M]) -> C: f32[N] { C[i] = A[i] }",
            "in-out tensor `C` is f32[N] as an output but f32[M]",
        ),
        ("f(inf: f32[N]) -> Y: f32[N] { Y[i] = inf[i] }", "`inf` is reserved"),
        ("f(A: f32[N]) -> Y: f32[N] { Y[i, i] = A[i] }", "iterator `i` indexes the target twice"),
        ("f(A: f32[N]) -> Y: f32[N] { Y[i] = A }", "tensor `A` needs indices"),
    ],
)
def test_semantic_errors(text: str, message: str) -> None:
    err = error_of(text)
    assert message in str(err)
    assert err.line is not None and err.column is not None


def test_comparison_as_statement_operator() -> None:
    err = error_of("f(A: f32[N]) -> Y: bool[N] { Y[i] == A[i] }")
    assert str(err) == "1:35: unexpected `==`; expected `=`, `+=`, `*=`, `max=` or `min=`"
