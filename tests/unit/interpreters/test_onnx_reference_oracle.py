"""mlc's ONNX semantics against an independent oracle, onnx's reference implementation.

For every ONNX operator that mlc imports and `onnx.reference.ReferenceEvaluator` runs,
Hypothesis draws single-node models (`mlc.testing.oracle`: random shapes, attributes,
opsets and dtypes, float data with NaN, +-inf, +-0.0 and subnormals) and both of mlc's
semantics are compared with onnx's: the interpreter (`mlc.interpret`) and the expression
library (`expression_for`, evaluated op by op). A model mlc refuses on import is rejected;
at least `MIN_COMPARED` of the drawn cases of every operator must be compared, so no
test passes vacuously.

Disagreements where mlc is wrong (decided by the ONNX spec, with onnxruntime as a
tie-breaker) are listed in `KNOWN`: each has a minimal failing case, run by
`test_known_disagreement` as a strict xfail, and the random cases it reaches are compared
with the fault's trigger removed (and the unaffected path on the case as drawn). When the
fault is fixed its xfail passes, which fails the suite: delete the entry then.
Disagreements where onnx.reference is wrong are not drawn or judged by onnxruntime; the
reasons are in `mlc.testing.oracle`'s docstring and next to each exclusion there.

Examples per operator: a fifth of the profile's (`ci`: 10, 102 operators, about 1000
cases compared in about 20 s; `HYPOTHESIS_PROFILE=thorough`: 200, about 4 minutes).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pytest
from hypothesis import given, reject, settings

from mlc.testing.oracle import (
    OPS,
    CheckResult,
    OracleCase,
    OracleMismatch,
    OracleStats,
    check_case,
    compare_arrays,
    oracle_cases,
)

#: the fraction of drawn cases that must reach a comparison, per operator
MIN_COMPARED = 0.7
#: operators whose graph ops have no tensor expression (data-dependent reads, or folded
#: to constants at import): only the interpreter is compared
NO_EXPRESSION = {
    "Gather",
    "GatherElements",
    "Constant",
    "Shape",
    "Size",
    "ConstantOfShape",
    "Range",
}
EXAMPLES = max(8, settings.default.max_examples // 5)


# --------------------------------------------------------------------------- known faults


def _with_input(case: OracleCase, name: str, fix: Callable[[np.ndarray], np.ndarray]) -> OracleCase:
    """`case` with input `name` replaced by `fix(copy of it)`."""
    inputs = [(n, fix(a.copy()) if n == name else a) for n, a in case.inputs]
    return dataclasses.replace(case, inputs=inputs)


def _input(case: OracleCase, name: str = "x") -> np.ndarray:
    return dict(case.inputs)[name]


def _set(
    mask: Callable[[np.ndarray], np.ndarray], value: float
) -> Callable[[np.ndarray], np.ndarray]:
    def fix(a: np.ndarray) -> np.ndarray:
        with np.errstate(invalid="ignore"):
            a[mask(a)] = value
        return a

    return fix


def _negative_zero(a: np.ndarray) -> np.ndarray:
    return (a == 0) & np.signbit(a)


@dataclass(frozen=True)
class Known:
    """A disagreement that is mlc's fault: the `path` that is wrong ("interpreter",
    "expressions" or "both"), a minimal `case` with onnx's `expected` and mlc's `got`,
    the drawn cases it `reaches`, and the input fix (`avoid`) that removes its trigger."""

    name: str
    path: str
    case: OracleCase
    expected: str
    got: str
    evidence: str
    reaches: Callable[[OracleCase], bool]
    avoid: Callable[[OracleCase], OracleCase]


def _float(op: str, values: list[float], dtype: type = np.float32, **kw: object) -> OracleCase:
    return OracleCase(op, [("x", np.asarray(values, dtype))], **kw)  # type: ignore[arg-type]


def _is_float(case: OracleCase, name: str = "x") -> bool:
    return _input(case, name).dtype.kind == "f"


def _prod_overflows(case: OracleCase) -> bool:
    x = _input(case)
    if x.dtype.kind not in "iu" or not x.size:
        return False
    bound = 1
    for v in np.abs(x.astype(object)).reshape(-1):
        bound *= max(int(v), 1)
    return bound > np.iinfo(x.dtype).max


_BN_PARAMS = ("scale", "b", "mean", "var")


def _bn_params_leave_range(case: OracleCase) -> bool:
    """Whether a BatchNormalization parameter turns 0 or inf in x's (narrower) dtype."""
    if case.op_type != "BatchNormalization":
        return False
    dtype = _input(case).dtype
    for name in _BN_PARAMS:
        p = _input(case, name)
        with np.errstate(over="ignore"):
            narrow = p.astype(dtype)
        if np.any((p != 0) & ((narrow == 0) | np.isinf(narrow)) & np.isfinite(p)):
            return True
    return False


def _bn_params_in_range(case: OracleCase) -> OracleCase:
    dtype = _input(case).dtype
    info = np.finfo(dtype)
    for name in _BN_PARAMS:
        case = _with_input(
            case,
            name,
            _set(lambda a: (a != 0) & ((np.abs(a) < info.tiny) | (np.abs(a) > info.max)), 1.0),
        )
    return case


def _clip_min_after_max(case: OracleCase) -> bool:
    """A run-time min above a constant max (mlc applies the run-time bound last)."""
    if case.op_type != "Clip" or case.opset < 11:
        return False
    inputs, constants = dict(case.inputs), dict(case.constants)
    return "min" in inputs and "max" in constants and bool(inputs["min"] > constants["max"])


def _pow_f64_exponent_rounded(base: type) -> Callable[[OracleCase], bool]:
    """Pow cases with a `base`-typed base and an f64 exponent float32 cannot hold."""

    def reaches(case: OracleCase) -> bool:
        if case.op_type != "Pow":
            return False
        a, b = _input(case, "a"), _input(case, "b")
        if a.dtype != base or b.dtype != np.float64:
            return False
        return bool(np.any((_in_float32(b) != b) & ~np.isnan(b)))

    return reaches


def _in_float32(a: np.ndarray) -> np.ndarray:
    """`a` rounded to float32 values (so that casting it to float32 is exact)."""
    with np.errstate(over="ignore"):
        return a.astype(np.float32).astype(a.dtype)


KNOWN: list[Known] = [
    Known(
        "round-loses-negative-zero",
        "expressions",
        _float("Round", [-0.3]),
        "-0.0",
        "0.0",
        "ONNX Round rounds half to even (IEEE roundToIntegralTiesToEven keeps the sign: "
        "-0.3 -> -0.0); onnxruntime and the interpreter give -0.0. The expression "
        "computes floor(x) + 1.0 = -1.0 + 1.0 = +0.0 for x in (-0.5, 0).",
        lambda c: c.op_type == "Round" and bool(np.any((_input(c) > -0.5) & (_input(c) < 0))),
        lambda c: _with_input(c, "x", _set(lambda a: (a > -0.5) & (a < 0), -1.0)),
    ),
    Known(
        "softplus-loses-precision",
        "expressions",
        _float("Softplus", [-20.0]),
        "2.0611537e-09",
        "0.0",
        "Softplus is ln(exp(x) + 1) = 2.06e-9 at x = -20 (onnx.reference, onnxruntime, "
        "the interpreter's logaddexp); the expression's max(x, 0) + log(1.0 + exp(-|x|)) "
        "rounds 1 + 2e-9 to 1 (log1p is needed): 100 % relative error below x = -17, "
        "16 ulps at x = -4.",
        lambda c: (
            c.op_type == "Softplus" and bool(np.any(np.isfinite(_input(c)) & (_input(c) < -1)))
        ),
        lambda c: _with_input(c, "x", _set(lambda a: np.isfinite(a) & (a < -1), 1.0)),
    ),
    Known(
        "elu-expm1",
        "expressions",
        _float("Elu", [-0.0, -1e-10]),
        "[-0.0, -1e-10]",
        "[0.0, 0.0]",
        "ONNX Elu: f(x) = x for x >= 0 (so -0.0 stays -0.0: onnx.reference, onnxruntime and "
        "the interpreter agree) and alpha * (exp(x) - 1) for x < 0, which is -1e-10 at "
        "x = -1e-10 (onnx.reference and the interpreter use expm1). The expression "
        "computes exp(x) - 1.0: +0.0 at -0.0, and 0 (100 % error) for |x| below eps.",
        lambda c: (
            c.op_type == "Elu"
            and bool(np.any(((_input(c) > -0.5) & (_input(c) < 0)) | _negative_zero(_input(c))))
        ),
        lambda c: _with_input(
            c, "x", _set(lambda a: ((a > -0.5) & (a < 0)) | _negative_zero(a), -1.0)
        ),
    ),
    Known(
        "selu-expm1",
        "expressions",
        _float("Selu", [-1e-10]),
        "-1.7580994e-10",
        "0.0",
        "Selu is gamma * alpha * (exp(x) - 1) = -1.758e-10 at x = -1e-10 (onnx.reference and "
        "the interpreter use expm1; onnxruntime's naive exp(x) - 1 gives 0 too). The "
        "expression loses every digit for |x| below eps.",
        lambda c: c.op_type == "Selu" and bool(np.any((_input(c) > -0.5) & (_input(c) < 0))),
        lambda c: _with_input(c, "x", _set(lambda a: (a > -0.5) & (a < 0), -1.0)),
    ),
    Known(
        "sign-of-negative-zero",
        "expressions",
        _float("Sign", [-0.0]),
        "0.0",
        "-0.0",
        "ONNX Sign: 'if input == 0, output 0'; onnx.reference, onnxruntime and the "
        "interpreter give +0.0 for -0.0; the expression returns x itself (-0.0).",
        lambda c: c.op_type == "Sign" and _is_float(c) and bool(np.any(_negative_zero(_input(c)))),
        lambda c: _with_input(c, "x", _set(_negative_zero, 0.0)),
    ),
    Known(
        "conv-transpose-nonfinite-weight-leaks",
        "expressions",
        OracleCase(
            "ConvTranspose",
            [
                ("x", np.ones((1, 1, 1), np.float32)),
                ("w", np.asarray([[[np.nan, 2.0]]], np.float32)),
            ],
            {"pads": [1, 0]},
        ),
        "[[[2.0]]]",
        "[[[nan]]]",
        "y[1] (before the crop) only receives x[0] * w[1] = 2; onnx.reference, onnxruntime "
        "and the interpreter give 2. The expression multiplies every kernel tap, with 0.0 "
        "for an input position out of range, so w[0] = NaN (or inf) leaks into outputs "
        "it does not reach (0.0 * NaN = NaN).",
        lambda c: c.op_type == "ConvTranspose" and bool(np.any(~np.isfinite(_input(c, "w")))),
        lambda c: _with_input(c, "w", _set(lambda a: ~np.isfinite(a), 1.0)),
    ),
    Known(
        "lrn-running-sum-poisons-channels",
        "interpreter",
        OracleCase(
            "LRN",
            [("x", np.asarray([np.inf] + [1.0] * 8, np.float32).reshape(3, 3, 1, 1))],
            {"size": 1},
            opset=13,
        ),
        "x[0, 1] = 0.999925 (channel 1 squares only itself)",
        "nan",
        "ONNX LRN sums x^2 over channels max(0, c - floor((size-1)/2)) .. min(C-1, c + "
        "ceil((size-1)/2)): channel 1 never sees channel 0's inf (onnx.reference and the "
        "expression give 0.999925). The interpreter takes window sums as differences of a "
        "cumulative sum, inf - inf = NaN (onnxruntime's running sum does the same, against "
        "the spec).",
        lambda c: c.op_type == "LRN" and bool(np.any(~np.isfinite(_input(c)))),
        lambda c: _with_input(c, "x", _set(lambda a: ~np.isfinite(a), 1.0)),
    ),
    Known(
        "clip-6-default-bounds",
        "both",
        _float("Clip", [np.inf], opset=6),
        "3.4028235e+38",
        "inf",
        "Clip-6's min and max default to -3.402823e+38 and 3.402823e+38 (the schema's "
        "defaults); onnx.reference and onnxruntime clip inf to FLT_MAX. The importer "
        "leaves a missing bound out (no clipping).",
        lambda c: c.op_type == "Clip" and c.opset < 11 and bool(np.any(np.isinf(_input(c)))),
        lambda c: _with_input(c, "x", _set(np.isinf, 1.0)),
    ),
    Known(
        "batchnorm-params-rounded-to-x-dtype",
        "both",
        OracleCase(
            "BatchNormalization",
            [
                ("x", np.asarray([1e-38], np.float32).reshape(1, 1, 1)),
                ("scale", np.asarray([1e39])),
                ("b", np.zeros(1)),
                ("mean", np.zeros(1)),
                ("var", np.ones(1)),
            ],
            {"epsilon": 1e-5},
            opset=15,
        ),
        "9.999949 (f32 x, f64 scale 1e39: (x - mean) / sqrt(var + eps) * scale)",
        "inf",
        "From opset 15 scale / bias (T1) and mean / var (T2) may have other types than x "
        "(T); the result, 9.99995, is an f32. mlc casts the parameters to x's type first, "
        "so 1e39 becomes inf (and 3e-142 becomes 0: inf * 0 = NaN for x = inf). "
        "onnx.reference computes in the wider type; onnxruntime has no mixed-type kernel.",
        _bn_params_leave_range,
        _bn_params_in_range,
    ),
    Known(
        "clip-runtime-min-applied-after-constant-max",
        "both",
        OracleCase(
            "Clip",
            [("x", np.asarray(0.0, np.float32)), ("min", np.asarray(0.0, np.float32))],
            {},
            [("max", np.asarray(-1.0, np.float32))],
            ["x", "min", "max"],
            opset=13,
        ),
        "-1.0 (min = 0 a graph input, max = -1 an initializer)",
        "0.0",
        "Clip-13: 'When min is greater than max, the clip operator sets all the input "
        "values to the value of max' (onnx.reference and onnxruntime: -1). The importer "
        "clips to the constant bound first and applies a run-time min afterwards (a "
        "graph.max), so the min wins.",
        _clip_min_after_max,
        lambda c: dataclasses.replace(
            c,
            inputs=[
                (n, np.minimum(a, dict(c.constants)["max"]) if n == "min" else a)
                for n, a in c.inputs
            ],
        ),
    ),
    Known(
        "pow-f64-exponent-rounded-to-f32",
        "both",
        OracleCase("Pow", [("a", np.asarray([0.0], np.float32)), ("b", np.asarray([5e-324]))]),
        "0.0 (0 ** 5e-324, a float32 base and a float64 exponent)",
        "1.0",
        "Pow's exponent (T1) may be wider than its base (T); onnx.reference and "
        "onnxruntime compute 0 ** 5e-324 = 0. mlc rounds a float64 exponent to the "
        "float32 base's type first: 5e-324 becomes 0 and 0 ** 0 = 1 (and large bases "
        "lose |ln x| * 6e-8 relative precision).",
        _pow_f64_exponent_rounded(np.float32),
        lambda c: _with_input(c, "b", _in_float32),
    ),
    Known(
        "pow-f64-exponent-rounded-to-f32-f16-base",
        "expressions",
        OracleCase("Pow", [("a", np.asarray([0.0], np.float16)), ("b", np.asarray([5e-324]))]),
        "0.0 (0 ** 5e-324, a float16 base and a float64 exponent)",
        "1.0",
        "As above with a float16 base: the interpreter computes in float64 and is right; "
        "the expression computes in float32 (f16 widened) and rounds the exponent to it.",
        _pow_f64_exponent_rounded(np.float16),
        lambda c: _with_input(c, "b", _in_float32),
    ),
    Known(
        "reduce-prod-integer-overflow-raises",
        "expressions",
        OracleCase(
            "ReduceProd", [("x", np.asarray([65536, 65536], np.int32))], {"keepdims": 0}, opset=13
        ),
        "0 (wraps: onnx.reference and the interpreter)",
        "OverflowError: Python integer 4294967296 out of bounds for int32",
        "The texpr evaluator documents that integer overflow wraps, but its product "
        "reduction raises (a Python integer is stored into the int32 accumulator).",
        lambda c: c.op_type == "ReduceProd" and _prod_overflows(c),
        lambda c: _with_input(c, "x", lambda a: np.clip(a, -1, 1).astype(a.dtype)),
    ),
]


def _paths(path: str) -> dict[str, bool]:
    return {
        "interpreter": path in ("interpreter", "both"),
        "expressions": path in ("expressions", "both"),
    }


def check_around_known(case: OracleCase) -> CheckResult:
    """`check_case`, except that a path a `KNOWN` fault reaches is compared on the case
    with that fault's trigger removed."""
    reached = [k for k in KNOWN if k.reaches(case)]
    if not reached:
        return check_case(case)
    wrong = {p for k in reached for p, on in _paths(k.path).items() if on}
    result = check_case(
        case, interpreter="interpreter" not in wrong, expressions="expressions" not in wrong
    )
    if result.status != "compared":
        return result
    fixed = case
    for k in reached:
        fixed = k.avoid(fixed)
    again = check_case(
        fixed, interpreter="interpreter" in wrong, expressions="expressions" in wrong
    )
    return dataclasses.replace(
        result,
        problems=result.problems + [f"(trigger removed) {p}" for p in again.problems],
        expression_ops=max(result.expression_ops, again.expression_ops),
    )


# --------------------------------------------------------------------------- tests


@pytest.mark.parametrize("op_type", sorted(OPS))
def test_matches_onnx_reference(op_type: str) -> None:
    stats = OracleStats()

    @settings(max_examples=EXAMPLES)
    @given(case=oracle_cases(op_type))
    def compare(case: OracleCase) -> None:
        result = check_around_known(case)
        stats.record(result)
        if result.status != "compared":
            reject()
        if result.problems:
            raise OracleMismatch(
                f"mlc disagrees with onnx.reference on\n{case!r}\n" + "\n".join(result.problems)
            )

    compare()
    assert stats.fraction >= MIN_COMPARED, f"{op_type}: too few cases compared\n{stats}"
    if op_type not in NO_EXPRESSION:
        assert stats.with_expressions >= MIN_COMPARED * stats.compared, (
            f"{op_type}: too few cases went through the expression library\n{stats}"
        )


@pytest.mark.parametrize(
    "known",
    [
        pytest.param(
            k,
            id=k.name,
            marks=pytest.mark.xfail(
                strict=True,
                reason=f"{k.case.op_type} ({k.path}): expected {k.expected}, got {k.got}",
            ),
        )
        for k in KNOWN
    ],
)
def test_known_disagreement(known: Known) -> None:
    """The minimal case of a known fault: fails (strict xfail) until mlc is fixed."""
    result = check_case(known.case, **_paths(known.path))
    assert result.status == "compared", result.reason
    assert not result.problems, "\n".join(result.problems)


def test_known_disagreements_are_reached_and_avoided() -> None:
    """Every known fault's predicate recognizes its own minimal case, and its fix removes
    the trigger (so the random tests compare the affected path on the fixed case)."""
    for k in KNOWN:
        assert k.reaches(k.case), k.name
        assert not k.reaches(k.avoid(k.case)), k.name
        assert not check_case(k.avoid(k.case), **_paths(k.path)).problems, k.name


def test_oracle_rejects_a_wrong_semantics() -> None:
    """The comparison is not vacuous: a wrong expected value, NaN placement or zero sign
    is reported."""
    want = np.asarray([1.0, np.nan, -0.0, np.inf], np.float32)
    assert not compare_arrays(want, want.copy())
    assert compare_arrays(want, np.asarray([1.001, np.nan, -0.0, np.inf], np.float32))
    assert compare_arrays(want, np.asarray([1.0, 0.0, -0.0, np.inf], np.float32))
    assert compare_arrays(want, np.asarray([1.0, np.nan, 0.0, np.inf], np.float32))
    assert not compare_arrays(
        want, np.asarray([1.0, np.nan, 0.0, np.inf], np.float32), signed=False
    )
    assert compare_arrays(want, np.asarray([1.0, np.nan, -0.0, -np.inf], np.float32))
    assert compare_arrays(np.asarray([1, 2], np.int8), np.asarray([1, 3], np.int8))
