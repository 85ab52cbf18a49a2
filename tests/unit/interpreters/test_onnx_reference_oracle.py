"""mlc's ONNX semantics against an independent oracle, onnx's reference implementation.

For every ONNX operator that mlc imports and `onnx.reference.ReferenceEvaluator` runs,
Hypothesis draws single-node models (`mlc.testing.oracle`: random shapes, attributes,
opsets and dtypes, float data with NaN, +-inf, +-0.0 and subnormals) and both of mlc's
semantics are compared with onnx's: the interpreter (`mlc.interpret`) and the expression
library (`expression_for`, evaluated op by op). A model mlc refuses on import is rejected;
at least `MIN_COMPARED` of the drawn cases of every operator must be compared, so no
test passes vacuously.

Disagreements where mlc is wrong (decided by the ONNX spec, with onnxruntime as a
tie-breaker) are listed in `KNOWN` while open: each has a minimal failing case, run by
`test_known_disagreement` as a strict xfail, and the random cases it reaches are compared
with the fault's trigger removed (and the unaffected path on the case as drawn). When the
fault is fixed its xfail passes, which fails the suite: its minimal case then moves to
`FIXED`, run by `test_fixed_disagreement` on both paths (every fault found so far).
Disagreements where onnx.reference is wrong are not drawn or judged by onnxruntime; the
reasons are in `mlc.testing.oracle`'s docstring and next to each exclusion there.

Examples per operator: a fifth of the profile's (`ci`: 10, 122 operators, about 1200
cases compared in about 25 s; `HYPOTHESIS_PROFILE=thorough`: 200, about 5 minutes).
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


def _set(
    mask: Callable[[np.ndarray], np.ndarray], value: float
) -> Callable[[np.ndarray], np.ndarray]:
    def fix(a: np.ndarray) -> np.ndarray:
        with np.errstate(invalid="ignore"):
            a[mask(a)] = value
        return a

    return fix


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


#: Open faults (none at present): e.g. Known("name", "expressions", OracleCase(...),
#: "-0.0", "0.0", "why", lambda c: <reaches>, lambda c: _with_input(c, "x", _set(<mask>,
#: 1.0))); once fixed, the entry moves to `FIXED`.
KNOWN: list[Known] = []


@dataclass(frozen=True)
class Fixed:
    """A fault the oracle found in mlc, fixed: its minimal `case` must give onnx's
    `expected` result on both paths. `fault` says what mlc did."""

    name: str
    case: OracleCase
    expected: str
    fault: str


def _float(op: str, values: list[float], dtype: type = np.float32, **kw: object) -> OracleCase:
    return OracleCase(op, [("x", np.asarray(values, dtype))], **kw)  # type: ignore[arg-type]


FIXED: list[Fixed] = [
    Fixed(
        "round-keeps-negative-zero",
        _float("Round", [-0.3, -0.5, 0.5, 1.5, 2.5]),
        "[-0.0, -0.0, 0.0, 2.0, 2.0]",
        "The expression computed round-half-even as floor(x) + 1.0 = +0.0 for x in "
        "(-0.5, 0); it is texpr's `round` (llvm.roundeven natively) now.",
    ),
    Fixed(
        "softplus-log1p",
        _float("Softplus", [-20.0]),
        "2.0611537e-09",
        "The expression's max(x, 0) + log(1.0 + exp(-|x|)) rounded 1 + 2e-9 to 1: 100 % "
        "relative error below x = -17 (log1p now).",
    ),
    Fixed(
        "elu-expm1",
        _float("Elu", [-0.0, -1e-10]),
        "[-0.0, -1e-10]",
        "The expression computed exp(x) - 1.0: +0.0 at -0.0 and 0 for |x| below eps (expm1 now).",
    ),
    Fixed(
        "selu-expm1",
        _float("Selu", [-1e-10]),
        "-1.7580994e-10",
        "As Elu: exp(x) - 1.0 lost every digit for |x| below eps (expm1 now).",
    ),
    Fixed(
        "sign-of-negative-zero",
        _float("Sign", [-0.0, 0.0, np.nan]),
        "[0.0, 0.0, nan]",
        "ONNX Sign: 'if input == 0, output 0'; the expression returned -0.0 itself.",
    ),
    Fixed(
        "conv-transpose-nonfinite-weight-leaks",
        OracleCase(
            "ConvTranspose",
            [
                ("x", np.ones((1, 1, 1), np.float32)),
                ("w", np.asarray([[[np.nan, 2.0]]], np.float32)),
            ],
            {"pads": [1, 0]},
        ),
        "[[[2.0]]] (y[1] before the crop only receives x[0] * w[1])",
        "The expression multiplied every kernel tap, with 0.0 for an input position out "
        "of range, so w[0] = NaN leaked into outputs it does not reach (0.0 * NaN); the "
        "guard covers the product now.",
    ),
    Fixed(
        "lrn-running-sum-poisons-channels",
        OracleCase(
            "LRN",
            [("x", np.asarray([np.inf] + [1.0] * 8, np.float32).reshape(3, 3, 1, 1))],
            {"size": 1},
            opset=13,
        ),
        "x[0, 1] = 0.999925 (channel 1 squares only itself)",
        "The interpreter took window sums as differences of a cumulative sum: inf - inf = "
        "NaN in channels whose window does not hold the inf (onnxruntime's running sum "
        "does the same, against the spec).",
    ),
    Fixed(
        "clip-6-default-bounds",
        _float("Clip", [np.inf, -np.inf], opset=6),
        "[3.4028235e+38, -3.4028235e+38]",
        "Clip-6's min and max default to -+FLT_MAX (the schema's defaults); the importer "
        "left a missing bound out.",
    ),
    Fixed(
        "batchnorm-params-wider-than-x",
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
        "9.999949 (f32 x, f64 scale 1e39)",
        "From opset 15 the parameters may be wider than x; mlc cast them to x's f32 "
        "first (1e39 -> inf). It computes in the widest type now, rounding once.",
    ),
    Fixed(
        "clip-runtime-min-above-constant-max",
        OracleCase(
            "Clip",
            [("x", np.asarray(0.0, np.float32)), ("min", np.asarray(0.0, np.float32))],
            {},
            [("max", np.asarray(-1.0, np.float32))],
            ["x", "min", "max"],
            opset=13,
        ),
        "-1.0 (min = 0 a graph input, max = -1 an initializer)",
        "Clip-13: 'When min is greater than max, the clip operator sets all the input "
        "values to the value of max'. The importer clipped to the constant max first and "
        "applied the run-time min (a graph.max) afterwards.",
    ),
    Fixed(
        "pow-f64-exponent",
        OracleCase("Pow", [("a", np.asarray([0.0], np.float32)), ("b", np.asarray([5e-324]))]),
        "0.0 (0 ** 5e-324, an f32 base and an f64 exponent)",
        "mlc rounded the f64 exponent (T1) to the f32 base's type: 0 ** 0 = 1.",
    ),
    Fixed(
        "pow-f64-exponent-f16-base",
        OracleCase("Pow", [("a", np.asarray([0.0], np.float16)), ("b", np.asarray([5e-324]))]),
        "0.0 (0 ** 5e-324, an f16 base and an f64 exponent)",
        "The expression computed in f32 (f16 widened) and rounded the exponent to it.",
    ),
    Fixed(
        "reduce-prod-integer-overflow-wraps",
        OracleCase(
            "ReduceProd", [("x", np.asarray([65536, 65536], np.int32))], {"keepdims": 0}, opset=13
        ),
        "0 (wraps)",
        "The texpr evaluator's product reduction widened int32 to int64 (numpy's reduce) "
        "and raised OverflowError storing 2^32 into the int32 accumulator.",
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


@pytest.mark.parametrize("fixed", [pytest.param(f, id=f.name) for f in FIXED])
def test_fixed_disagreement(fixed: Fixed) -> None:
    """The minimal case of a fixed fault agrees with onnx on both paths."""
    result = check_case(fixed.case)
    assert result.status == "compared", result.reason
    assert not result.problems, f"expected {fixed.expected}\n" + "\n".join(result.problems)


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
