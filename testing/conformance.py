"""ONNX conformance: run onnx's own backend node cases through `import_onnx` + `interpret`.

    python -m mlc.testing.conformance --report docs/conformance.md --json tests/conformance/baseline.json

Each case ends as one of: passed, wrong (a result differs), unsupported (import refused
it, with the reason) or crashed (any other exception: always a bug).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
import warnings
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import ml_dtypes
import numpy as np

#: The operators the foundation issue puts in scope; a case is "in scope" when every node
#: of its model is one of these.
IN_SCOPE_OPS = frozenset(
    """Constant MatMul Gemm Conv Add Sub Mul Div Pow Max Min Sum Relu LeakyRelu Sigmoid
    Tanh Erf Gelu Exp Log Sqrt Neg Abs Clip Reciprocal Equal Less LessOrEqual Greater
    GreaterOrEqual Where BatchNormalization MaxPool AveragePool GlobalAveragePool
    GlobalMaxPool Softmax LogSoftmax LayerNormalization LRN Reshape Flatten Transpose
    Concat Split Slice Squeeze Unsqueeze Gather Pad Expand ReduceMean ReduceSum ReduceMax
    ReduceMin ReduceProd ArgMax Cast Identity Dropout""".split()
)

STATUSES = ("passed", "wrong", "unsupported", "crashed")


@dataclass
class CaseResult:
    name: str
    ops: tuple[str, ...]
    status: str
    detail: str = ""

    @property
    def in_scope(self) -> bool:
        return all(op in IN_SCOPE_OPS for op in self.ops)


def _compare(expected: np.ndarray, actual: np.ndarray, rtol: float, atol: float) -> str:
    expected = np.asarray(expected)
    if actual.shape != expected.shape:
        return f"shape {actual.shape}, expected {expected.shape}"
    if actual.dtype != expected.dtype:
        return f"dtype {actual.dtype}, expected {expected.dtype}"
    if expected.dtype.kind in "fc" or expected.dtype.name == "bfloat16":
        if expected.dtype.itemsize <= 2:
            # f16/bf16: expected outputs are often computed without the intermediate
            # roundings the graph prescribes; allow two rounding steps of the type.
            rtol = max(rtol, 2 * float(ml_dtypes.finfo(expected.dtype).eps))
        e, a = expected.astype(np.float64), actual.astype(np.float64)
        ok = np.isclose(a, e, rtol=rtol, atol=atol, equal_nan=True)
    else:
        ok = actual == expected
    if not np.all(ok):
        bad = int(np.size(ok) - np.count_nonzero(ok))
        return f"{bad} of {np.size(ok)} elements differ"
    return ""


def _arrays(values: Sequence[object]) -> list[np.ndarray]:
    from onnx import TensorProto, numpy_helper

    return [
        numpy_helper.to_array(v) if isinstance(v, TensorProto) else np.asarray(v) for v in values
    ]


def run_case(case: object) -> CaseResult:
    from mlc.interpreters import interpret
    from mlc.parser.onnx import OnnxImportError, import_onnx

    model = case.model  # type: ignore[attr-defined]
    ops = tuple(sorted({n.op_type for n in model.graph.node}))
    name = case.name  # type: ignore[attr-defined]
    bound: list[str] = []
    try:
        module = import_onnx(model)
    except OnnxImportError as e:
        bound = _inputs_to_bind(str(e), model)
        if not bound:
            reason = "; ".join(line.strip() for line in str(e).splitlines()[1:]) or str(e)
            return CaseResult(name, ops, "unsupported", reason)
    except Exception as e:  # noqa: BLE001 - a crash is a result here
        return CaseResult(name, ops, "crashed", f"import: {type(e).__name__}: {e}"[:300])
    # rtol/atol: the case's own, loosened to the 1e-4 relative tolerance ORT is held to
    rtol = max(case.rtol, 1e-4)  # type: ignore[attr-defined]
    atol = max(case.atol, 1e-6)  # type: ignore[attr-defined]
    input_names = [i.name for i in model.graph.input]
    for raw_inputs, raw_outputs in case.data_sets:  # type: ignore[attr-defined]
        inputs, outputs = _arrays(raw_inputs), _arrays(raw_outputs)
        if bound:
            # Static shapes: inputs that decide shapes are bound to this data set's values
            # (a node reports one such input at a time, so bind until none is missing).
            values = dict(zip(input_names, inputs))
            for _ in range(len(input_names)):
                try:
                    module = import_onnx(model, input_values={n: values[n] for n in bound})
                    break
                except OnnxImportError as e:
                    more = _inputs_to_bind(str(e), model)
                    if not more or set(more) <= set(bound):
                        reason = "; ".join(line.strip() for line in str(e).splitlines()[1:])
                        return CaseResult(name, ops, "unsupported", reason)
                    bound = sorted(set(bound) | set(more))
                except Exception as e:  # noqa: BLE001
                    return CaseResult(
                        name, ops, "crashed", f"import: {type(e).__name__}: {e}"[:300]
                    )
            inputs = [x for n, x in zip(input_names, inputs) if n not in bound]
        try:
            results = interpret(module, *inputs)
        except Exception as e:  # noqa: BLE001
            return CaseResult(name, ops, "crashed", f"interpret: {type(e).__name__}: {e}"[:300])
        if len(results) != len(outputs):
            return CaseResult(
                name, ops, "wrong", f"{len(results)} results, expected {len(outputs)}"
            )
        for i, (exp, act) in enumerate(zip(outputs, results)):
            why = _compare(exp, act, rtol, atol)
            if why:
                return CaseResult(name, ops, "wrong", f"output #{i}: {why}")
    return CaseResult(name, ops, "passed", f"bound at import: {', '.join(bound)}" if bound else "")


def _inputs_to_bind(message: str, model: object) -> list[str]:
    """Graph inputs that the import needs as constants, if that is the only problem."""
    from mlc.parser.onnx.node import BIND_HINT

    problems = [line for line in message.splitlines()[1:] if line.strip()]
    graph_inputs = {i.name for i in model.graph.input}  # type: ignore[attr-defined]
    names: list[str] = []
    for line in problems:
        match = re.search(r"input '([^']*)'.*must be a constant known at import time", line)
        if not match or BIND_HINT not in line or match.group(1) not in graph_inputs:
            return []
        names.append(match.group(1))
    return sorted(set(names))


def collect_cases(pattern: str | None = None) -> list[object]:
    from onnx.backend.test.case.node import collect_testcases

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with np.errstate(all="ignore"):
            cases = collect_testcases(None)
    if pattern:
        cases = [c for c in cases if pattern in c.name]
    return cases


def run_all(cases: Iterable[object]) -> list[CaseResult]:
    results = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for case in cases:
            results.append(run_case(case))
    return results


def summarize(results: Sequence[CaseResult]) -> dict[str, dict[str, int]]:
    def counts(rs: Iterable[CaseResult]) -> dict[str, int]:
        c = Counter(r.status for r in rs)
        return {s: c.get(s, 0) for s in STATUSES}

    def bound(rs: Iterable[CaseResult]) -> int:
        return sum(1 for r in rs if r.status == "passed" and r.detail.startswith("bound"))

    in_scope = [r for r in results if r.in_scope]
    return {
        "all": {
            "total": len(results),
            **counts(results),
            "passed_with_bound_inputs": bound(results),
        },
        "in_scope": {
            "total": len(in_scope),
            **counts(in_scope),
            "passed_with_bound_inputs": bound(in_scope),
        },
    }


def render_report(results: Sequence[CaseResult], elapsed: float) -> str:
    summary = summarize(results)
    lines = [
        "# ONNX conformance report",
        "",
        "onnx's backend node test cases run through `mlc.import_onnx` + `mlc.interpret`",
        "(reference semantics). Regenerate with",
        "`python -m mlc.testing.conformance --report docs/conformance.md "
        "--json tests/conformance/baseline.json`.",
        "",
        "mlc compiles for static shapes. Where a case feeds a shape-deciding value (reduction",
        "axes, a target shape, pads) as a graph *input*, the harness binds that input to the",
        "data set's value at import (`import_onnx(..., input_values=...)`) and runs the rest;",
        "such cases are counted as passed and listed in the column *of which bound*.",
        "",
        "| cases | total | passed | of which bound | wrong | unsupported | crashed |",
        "|---|---|---|---|---|---|---|",
    ]
    for key, label in (("all", "all node cases"), ("in_scope", "in-scope ops only")):
        s = summary[key]
        lines.append(
            f"| {label} | {s['total']} | {s['passed']} | {s['passed_with_bound_inputs']} | "
            f"{s['wrong']} | {s['unsupported']} | {s['crashed']} |"
        )
    lines += ["", f"Run time: {elapsed:.0f} s.", "", "## In-scope cases that do not pass", ""]
    failing = [r for r in results if r.in_scope and r.status != "passed"]
    if not failing:
        lines.append("None.")
    for r in sorted(failing, key=lambda r: r.name):
        lines.append(f"- `{r.name}` — {r.status}: {r.detail}")
    lines += ["", "## Per operator (cases whose model contains the op)", ""]
    lines += [
        "| op | in scope | passed | wrong | unsupported | crashed |",
        "|---|---|---|---|---|---|",
    ]
    per_op: dict[str, Counter[str]] = defaultdict(Counter)
    for r in results:
        for op in r.ops:
            per_op[op][r.status] += 1
    for op in sorted(per_op):
        c = per_op[op]
        lines.append(
            f"| {op} | {'yes' if op in IN_SCOPE_OPS else 'no'} | {c['passed']} | {c['wrong']} | "
            f"{c['unsupported']} | {c['crashed']} |"
        )
    lines += ["", "## Out-of-scope cases: reasons", ""]
    reasons = Counter(
        r.detail.split(":")[-1].strip()[:80] or r.status
        for r in results
        if not r.in_scope and r.status != "passed"
    )
    for reason, n in reasons.most_common(25):
        lines.append(f"- {n} × {reason}")
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mlc.testing.conformance", description=__doc__)
    parser.add_argument("--report", help="write a Markdown report here")
    parser.add_argument("--json", help="write per-case statuses and the summary here")
    parser.add_argument("-k", "--pattern", help="only cases whose name contains this")
    parser.add_argument("-v", "--verbose", action="store_true", help="print every failing case")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    results = run_all(collect_cases(args.pattern))
    elapsed = time.perf_counter() - start
    summary = summarize(results)
    if args.verbose:
        for r in results:
            if r.status != "passed":
                print(f"{r.name}: {r.status}: {r.detail}")
    for key in ("all", "in_scope"):
        s = summary[key]
        print(
            f"{key}: {s['passed']}/{s['total']} passed "
            f"({s['passed_with_bound_inputs']} with bound inputs), {s['wrong']} wrong, "
            f"{s['unsupported']} unsupported, {s['crashed']} crashed"
        )
    if args.report:
        with open(args.report, "w") as f:
            f.write(render_report(results, elapsed))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(
                {
                    "summary": summary,
                    "cases": {r.name: r.status for r in sorted(results, key=lambda r: r.name)},
                },
                f,
                indent=1,
                sort_keys=True,
            )
            f.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
