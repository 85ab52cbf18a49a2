"""Property tests of the tensor-expression language: random shapes and expressions vs numpy."""

from __future__ import annotations

import re

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from mlc.texpr import Poly, TexprError, const, evaluate, parse, sym
from mlc.texpr import evaluator as evaluator_module

MATMUL = "matmul(A: f32[M, K], B: f32[K, N]) -> C: f32[M, N] { C[m, n] += A[m, k] * B[k, n] }"
_MATMUL = parse(MATMUL)
_MATMUL_I32 = parse(MATMUL.replace("f32", "i32"))
_CONV = parse("""
conv2d<S, D, P>(X: f64[N, C, H, W], Wt: f64[F, C, KH, KW])
    -> Y: f64[N, F, (H + 2 * P - D * (KH - 1) - 1) / S + 1, (W + 2 * P - D * (KW - 1) - 1) / S + 1] {
  Y[n, f, oh, ow] += (X[n, c, oh * S + kh * D - P, ow * S + kw * D - P] if in bounds else 0)
                     * Wt[f, c, kh, kw]
}""")
_POOL = parse("""
maxpool<S, K, P>(X: f32[N, C, H, W]) -> Y: f32[N, C, (H + 2 * P - K) / S + 1, (W + 2 * P - K) / S + 1] {
  Y[n, c, oh, ow] max= X[n, c, oh * S + kh - P, ow * S + kw - P] if in bounds else lowest
      where kh in 0..K, kw in 0..K
}""")


def ref_conv2d(x: np.ndarray, w: np.ndarray, s: int, d: int, p: int) -> np.ndarray:
    """Convolution, one output pixel at a time, over the window clipped to the input."""
    n, _, h, wd = x.shape
    f, _, kh, kw = w.shape
    oh, ow = (h + 2 * p - d * (kh - 1) - 1) // s + 1, (wd + 2 * p - d * (kw - 1) - 1) // s + 1
    y = np.zeros((n, f, oh, ow))
    for i in range(oh):
        for j in range(ow):
            for a in range(kh):
                for b in range(kw):
                    r, q = i * s + a * d - p, j * s + b * d - p
                    if 0 <= r < h and 0 <= q < wd:
                        y[:, :, i, j] += x[:, :, r, q] @ w[:, :, a, b].T
    return y


def ref_maxpool(x: np.ndarray, s: int, k: int, p: int) -> np.ndarray:
    """Max pooling over windows clipped to the input."""
    n, c, h, w = x.shape
    oh, ow = (h + 2 * p - k) // s + 1, (w + 2 * p - k) // s + 1
    y = np.full((n, c, oh, ow), -np.inf, dtype=x.dtype)
    for i in range(oh):
        for j in range(ow):
            r0, q0 = max(i * s - p, 0), max(j * s - p, 0)
            window = x[:, :, r0 : i * s - p + k, q0 : j * s - p + k]
            if window.size:
                y[:, :, i, j] = window.max(axis=(2, 3))
    return y


@given(m=st.integers(0, 9), k=st.integers(0, 9), n=st.integers(0, 9), seed=st.integers(0, 2**16))
def test_matmul_matches_numpy(m: int, k: int, n: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    a, b = (
        rng.integers(-50, 50, (m, k), dtype=np.int32),
        rng.integers(-50, 50, (k, n), dtype=np.int32),
    )
    np.testing.assert_array_equal(evaluate(_MATMUL_I32, A=a, B=b)["C"], a @ b)
    af, bf = a.astype(np.float32) / 7, b.astype(np.float32) / 3
    np.testing.assert_allclose(evaluate(_MATMUL, A=af, B=bf)["C"], af @ bf, rtol=1e-5, atol=1e-4)


@st.composite
def conv_cases(draw: st.DrawFn) -> dict[str, int]:
    """Convolution parameters with a non-empty output."""
    p = {
        "N": draw(st.integers(1, 2)),
        "C": draw(st.integers(1, 3)),
        "F": draw(st.integers(1, 3)),
        "KH": draw(st.integers(1, 3)),
        "KW": draw(st.integers(1, 3)),
        "S": draw(st.integers(1, 3)),
        "D": draw(st.integers(1, 2)),
        "P": draw(st.integers(0, 2)),
    }
    min_h = max(1, p["D"] * (p["KH"] - 1) + 1 - 2 * p["P"])
    min_w = max(1, p["D"] * (p["KW"] - 1) + 1 - 2 * p["P"])
    p["H"] = draw(st.integers(min_h, min_h + 6))
    p["W"] = draw(st.integers(min_w, min_w + 6))
    return p


@given(p=conv_cases(), seed=st.integers(0, 2**16))
def test_conv2d_matches_numpy(p: dict[str, int], seed: int) -> None:
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((p["N"], p["C"], p["H"], p["W"]))
    w = rng.standard_normal((p["F"], p["C"], p["KH"], p["KW"]))
    y = evaluate(_CONV, X=x, Wt=w, S=p["S"], D=p["D"], P=p["P"])["Y"]
    np.testing.assert_allclose(y, ref_conv2d(x, w, p["S"], p["D"], p["P"]), rtol=1e-10, atol=1e-10)


@given(
    h=st.integers(1, 9),
    w=st.integers(1, 9),
    k=st.integers(1, 3),
    s=st.integers(1, 3),
    pad=st.integers(0, 1),
    seed=st.integers(0, 2**16),
)
def test_maxpool_matches_numpy(h: int, w: int, k: int, s: int, pad: int, seed: int) -> None:
    x = np.random.default_rng(seed).standard_normal((1, 2, h, w)).astype(np.float32)
    if h + 2 * pad < k or w + 2 * pad < k:
        return
    y = evaluate(_POOL, X=x, S=s, K=k, P=pad)["Y"]
    np.testing.assert_array_equal(y, ref_maxpool(x, s, k, pad))


@given(shift=st.integers(-6, 6), n=st.integers(0, 6), fill=st.integers(-3, 3))
def test_guarded_shift_matches_padding(shift: int, n: int, fill: int) -> None:
    defn = parse(
        f"shift(X: i32[N]) -> Y: i32[N] {{ Y[i] = X[i + {shift}] if in bounds else {fill} }}"
    )
    x = np.arange(1, n + 1, dtype=np.int32)
    padded = np.pad(x, (6, 6), constant_values=fill)
    np.testing.assert_array_equal(evaluate(defn, X=x)["Y"], padded[6 + shift : 6 + shift + n])


@st.composite
def contractions(draw: st.DrawFn) -> tuple[str, dict[str, int], list[str], str]:
    """A random einsum-like statement: two operands over random iterator subsets."""
    names = ["i", "j", "k", "l"][: draw(st.integers(1, 4))]
    extents = {n: draw(st.integers(1, 4)) for n in names}
    a = draw(st.lists(st.sampled_from(names), min_size=1, max_size=3, unique=True))
    b = draw(st.lists(st.sampled_from(names), min_size=0, max_size=3, unique=True))
    used = [n for n in names if n in a or n in b]
    out = draw(st.lists(st.sampled_from(used), max_size=len(used), unique=True))
    return "".join(a), extents, [n for n in used if n not in out], "".join(out) + "|" + "".join(b)


@given(case=contractions(), seed=st.integers(0, 2**16))
def test_contractions_match_einsum_and_generic_path(
    case: tuple[str, dict[str, int], list[str], str], seed: int
) -> None:
    a_idx, extents, _, rest = case
    out_idx, b_idx = rest.split("|")
    size = {n: n.upper() for n in extents}
    text = (
        f"c(A: i64[{', '.join(size[n] for n in a_idx)}], B: i64[{', '.join(size[n] for n in b_idx)}])"
        f" -> Y: i64[{', '.join(size[n] for n in out_idx)}] {{"
        f" Y[{', '.join(out_idx)}] += A[{', '.join(a_idx)}] * B[{', '.join(b_idx)}] }}"
    )
    defn = parse(text)
    rng = np.random.default_rng(seed)
    a = rng.integers(-9, 9, tuple(extents[n] for n in a_idx))
    b = rng.integers(-9, 9, tuple(extents[n] for n in b_idx))
    expected = np.einsum(f"{a_idx},{b_idx}->{out_idx}", a, b)
    np.testing.assert_array_equal(evaluate(defn, A=a, B=b)["Y"], expected)
    generic = pytest.MonkeyPatch()
    generic.setattr(evaluator_module, "_EINSUM_TYPES", frozenset())
    try:
        np.testing.assert_array_equal(evaluate(defn, A=a, B=b)["Y"], expected)
    finally:
        generic.undo()


# -- size expressions: canonical form, printing and evaluation --------------------------------


@st.composite
def size_exprs(draw: st.DrawFn, depth: int = 3) -> tuple[str, Poly, object]:
    """Random size expression: its source text, `Poly`, and a Python evaluator."""
    if depth == 0 or draw(st.booleans()):
        if draw(st.booleans()):
            v = draw(st.integers(0, 5))
            return str(v), const(v), lambda env, v=v: v
        name = draw(st.sampled_from(["A", "B", "C"]))
        return name, sym(name), lambda env, name=name: env[name]
    op = draw(st.sampled_from(["+", "-", "*", "/", "%"]))
    lt, lp, lf = draw(size_exprs(depth - 1))
    if op in "/%":
        d = draw(st.integers(1, 4))
        poly = lp.floordiv(d) if op == "/" else lp.mod(d)
        fn = (
            (lambda env, f=lf, d=d: f(env) // d)
            if op == "/"
            else (lambda env, f=lf, d=d: f(env) % d)
        )
        return f"({lt}) {op} {d}", poly, fn
    rt, rp, rf = draw(size_exprs(depth - 1))
    poly = lp + rp if op == "+" else lp - rp if op == "-" else lp * rp
    fns = {"+": lambda x, y: x + y, "-": lambda x, y: x - y, "*": lambda x, y: x * y}
    return f"({lt}) {op} ({rt})", poly, lambda env, f=lf, g=rf, h=fns[op]: h(f(env), g(env))


@given(expr=size_exprs(), a=st.integers(0, 9), b=st.integers(0, 9), c=st.integers(0, 9))
def test_size_expressions_parse_print_and_evaluate(
    expr: tuple[str, Poly, object], a: int, b: int, c: int
) -> None:
    text, poly, fn = expr
    template = "f<A, B, C>(X: f32[{}]) -> Y: f32[] {{ Y[] += X[i] }}"
    parsed = parse(template.format(text)).inputs[0].shape[0]
    assert parsed == poly
    assert parse(template.format(poly)).inputs[0].shape[0] == poly
    env = {"A": a, "B": b, "C": c}
    assert poly.evaluate(env) == fn(env)  # type: ignore[operator]


# -- printing: printed definitions re-parse to equal definitions --------------------------------

_NUM_LEAVES = [
    "A[i]",
    "B[i]",
    "A[N - 1 - i]",
    "(A[i + 1] if in bounds else 0)",
    "2",
    "0.5",
    "-1",
    "f32(i)",
    "f32(N - i)",
    "lowest",
    "(-highest)",
]
_BOOL_LEAVES = [
    "P[i]",
    "true",
    "(i == 0)",
    "(i < N - 1)",
    "(i % 2 != 0)",
    "(A[i] == B[i])",
    "(I[i] >= lowest + 1)",
    "(I[i] != -highest)",
]
_COMPARE = ["==", "!=", "<=", ">=", "<", ">"]


@st.composite
def num_exprs(draw: st.DrawFn, depth: int = 3) -> str:
    """Source text of a random f32 expression, fully parenthesized."""
    if depth == 0 or draw(st.integers(0, 3)) == 0:
        return draw(st.sampled_from(_NUM_LEAVES))
    kind = draw(st.sampled_from(["neg", "binary", "call", "select", "guard"]))
    x = draw(num_exprs(depth - 1))
    if kind == "neg":
        return f"(-{x})"
    y = draw(num_exprs(depth - 1))
    if kind == "binary":
        return f"({x} {draw(st.sampled_from(['+', '-', '*', '/']))} {y})"
    if kind == "call":
        return draw(st.sampled_from([f"max({x}, {y})", f"min({x}, {y})", f"exp({x})"]))
    if kind == "select":
        return f"select({draw(bool_exprs(depth - 1))}, {x}, {y})"
    return f"((A[i - 1] * {x}) if in bounds else {y})"


@st.composite
def bool_exprs(draw: st.DrawFn, depth: int = 3) -> str:
    """Source text of a random bool expression, comparisons of reads included."""
    if depth == 0 or draw(st.integers(0, 3)) == 0:
        return draw(st.sampled_from(_BOOL_LEAVES))
    kind = draw(st.sampled_from(["compare", "compare", "logic", "not", "bool_eq"]))
    if kind == "compare":
        op = draw(st.sampled_from(_COMPARE))
        return f"({draw(num_exprs(depth - 1))} {op} {draw(num_exprs(depth - 1))})"
    a = draw(bool_exprs(depth - 1))
    if kind == "not":
        return f"(not {a})"
    b = draw(bool_exprs(depth - 1))
    if kind == "bool_eq":
        return f"({a} {draw(st.sampled_from(['==', '!=']))} {b})"
    return f"({a} {draw(st.sampled_from(['and', 'or']))} {b})"


@st.composite
def comparison_definitions(draw: st.DrawFn) -> str:
    """A definition whose statements assign and reduce comparisons and selects."""
    statements = [
        f"C[i] = {draw(bool_exprs())}",
        f"D[i] = {draw(num_exprs())}",
        f"Q[i] = select({draw(bool_exprs())}, {draw(num_exprs())}, D[i])",
    ]
    reductions = {
        "S[] += f32({})": bool_exprs,
        "S[] max= {}": num_exprs,
        "S[] min= select({}, A[i], 0)": bool_exprs,
        "S[] *= {}": num_exprs,
    }
    for template in draw(st.lists(st.sampled_from(sorted(reductions)), min_size=1, max_size=3)):
        statements.append(template.format(draw(reductions[template]())) + " where i in 0..N")
    return (
        "cmp(A: f32[N], B: f32[N], P: bool[N], I: i32[N])\n"
        "    -> (C: bool[N], D: f32[N], Q: f32[N], S: f32[]) {\n"
        + "\n".join("  " + s for s in statements)
        + "\n}"
    )


def _compact(text: str) -> str:
    """``text`` without spaces around operators: ``C[i]=A[i]==B[i]``, ``S[]max=...``."""
    text = re.sub(r" (==|!=|<=|>=|<|>|\+|\*|/|=|\+=|\*=) ", r"\1", text)
    return re.sub(r"\] (max=|min=) ", r"]\1", text)


@settings(deadline=None)
@given(text=comparison_definitions())
def test_printed_definitions_reparse_to_equal_definitions(text: str) -> None:
    try:
        defn = parse(text)
    except TexprError:  # e.g. two untyped literals compared: `2 == -lowest` overflows i64
        assume(False)
    printed = str(defn)
    again = parse(printed)
    assert again == defn
    assert str(again) == printed
    assert parse(_compact(printed)) == defn


@settings(deadline=None)
@given(
    n=st.integers(1, 4),
    k=st.integers(1, 4),
    s=st.integers(-2, 2),
    t=st.integers(-2, 2),
    op=st.sampled_from(["+=", "max="]),
    path=st.sampled_from(["default", "generic", "blocked"]),
    seed=st.integers(0, 2**16),
)
def test_guarded_reads_over_different_iterators_match_loops(
    n: int, k: int, s: int, t: int, op: str, path: str, seed: int
) -> None:
    """One guard over reads of X[n, k + s] and B[n + t]: masks of different shapes."""
    fallback = "0" if op == "+=" else "lowest"
    defn = parse(
        f"g(X: i64[N, K], B: i64[N]) -> Y: i64[N] {{ Y[i] {op} (X[i, j + {s}] * B[i + {t}])"
        f" if in bounds else {fallback} where j in 0..K }}"
    )
    rng = np.random.default_rng(seed)
    x, b = rng.integers(-9, 9, (n, k)), rng.integers(-9, 9, n)
    expected = np.zeros(n, dtype=np.int64)
    for i in range(n):
        terms = [
            x[i, j + s] * b[i + t] if 0 <= j + s < k and 0 <= i + t < n else None for j in range(k)
        ]
        if op == "+=":
            expected[i] = sum(v for v in terms if v is not None)
        else:
            expected[i] = max(np.iinfo(np.int64).min if v is None else v for v in terms)
    with pytest.MonkeyPatch.context() as patch:
        if path == "generic":
            patch.setattr(evaluator_module, "_EINSUM_TYPES", frozenset())
        if path == "blocked":
            patch.setattr(evaluator_module, "BLOCK_ELEMENTS", 2)
            patch.setattr(evaluator_module, "EINSUM_ELEMENTS", 2)
        np.testing.assert_array_equal(evaluate(defn, X=x, B=b)["Y"], expected)
