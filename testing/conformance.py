"""ONNX conformance: run onnx's own backend node cases through `import_onnx` + `interpret`.

    python -m mlc.testing.conformance --report docs/conformance.md --json tests/conformance/baseline.json

Each case ends as one of: passed, wrong (a result differs), unsupported (import refused
it, with the reason) or crashed (any other exception: always a bug). Every case that passes
the interpreter is also compiled (`mlc.compile`) and run natively, in worker processes (a
segfault is a crash of that case, not of the harness), and gets a native status of the
same four kinds (unsupported: a clean refusal of the compile pipeline).
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing
import multiprocessing.connection
import re
import sys
import time
import warnings
from collections import Counter, defaultdict, deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from typing import Any

import ml_dtypes
import numpy as np

from mlc.interpreters import interpret
from mlc.parser.onnx import OnnxImportError, import_onnx
from mlc.parser.onnx.functions import FunctionBodyError, defined_values, expand
from mlc.parser.onnx.node import BIND_HINT
from mlc.targets.compiled import compile_model

#: The operators mlc set out to cover first; a case is "in scope" when every node
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
    #: graph inputs bound to each data set's values at import
    bound: tuple[str, ...] = ()
    #: compiled-and-run-natively status (one of STATUSES), "" where not run
    native: str = ""
    native_detail: str = ""

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
    detail = f"bound at import: {', '.join(bound)}" if bound else ""
    return CaseResult(name, ops, "passed", detail, tuple(bound))


def _inputs_to_bind(message: str, model: object) -> list[str]:
    """Graph inputs that the import needs as constants, if that is the only problem: the
    input named, or the small integer inputs a named value is computed from (a window
    function's size cast to float before its Range)."""
    problems = [line for line in message.splitlines()[1:] if line.strip()]
    graph_inputs = {i.name for i in model.graph.input}  # type: ignore[attr-defined]
    names: list[str] = []
    for line in problems:
        match = re.search(r"input '([^']*)'.*must be a constant known at import time", line)
        if not match or BIND_HINT not in line:
            return []
        sources = [match.group(1)] if match.group(1) in graph_inputs else []
        sources = sources or _shape_sources(match.group(1), model)
        if not sources:
            return []
        names.extend(sources)
    return sorted(set(names))


#: graph inputs bound for a value computed from them: integer tensors of at most this
#: many elements (sizes, shapes, axes; never data)
_SHAPE_SOURCE_ELEMENTS = 16


def _body_producers(value: str, model: Any) -> dict[str, Any]:
    """Output name -> node of the function body `value` is inside (`<caller>::<name>`, as
    the importer names them), or {} where it is not inside one or it does not expand."""
    import onnx

    graph = model.graph
    callers = {node.name or f"{node.op_type}_{i}": node for i, node in enumerate(graph.node)}
    prefix = value.split("::")[0]
    if "::" not in value or prefix not in callers:
        return {}
    caller = callers[prefix]
    inferred = onnx.shape_inference.infer_shapes(model).graph
    types = {v.name: v.type for v in [*inferred.input, *inferred.value_info, *inferred.output]}
    opset = next((int(o.version) for o in model.opset_import if o.domain in ("", "ai.onnx")), 1)
    try:
        body = expand(caller, opset, [types.get(i) for i in caller.input], f"{prefix}::")
    except FunctionBodyError:
        return {}
    if body is None:  # inside an If or Scan: computed from (at least) the caller's inputs
        return {value: caller}
    return {out: node for node in body.nodes for out in node.output}


def _free_values(node: Any) -> list[str]:
    """The values `node`'s subgraphs (an If's branches, a Scan's body) read from the
    graph around them."""
    import onnx

    found: list[str] = []
    for attr in node.attribute:
        graphs = [attr.g] if attr.type == onnx.AttributeProto.GRAPH else list(attr.graphs)
        for g in graphs:
            own = defined_values(g)
            for n in g.node:
                found += [v for v in n.input if v and v not in own]
                found += [v for v in _free_values(n) if v not in own]
    return found


def _shape_sources(value: str, model: object) -> list[str]:
    """The graph inputs `value` is computed from (not through Shape / Size, whose results
    are static), if all are small integer tensors with static shapes; else []."""
    from onnx import TensorProto

    graph = model.graph  # type: ignore[attr-defined]
    producer = {out: node for node in graph.node for out in node.output}
    # a value inside a function body the importer expanded (`<node>::<value>`): traced
    # through the body's nodes, expanded here the same way (`parser.onnx.functions`)
    producer |= _body_producers(value, model)
    inputs = {i.name: i for i in graph.input}
    initializers = {t.name for t in graph.initializer}
    found: set[str] = set()
    seen: set[str] = set()
    stack = [value]
    while stack:
        name = stack.pop()
        if name in seen or not name or name in initializers:
            continue
        seen.add(name)
        if name in inputs:
            found.add(name)
        elif name in producer and producer[name].op_type not in ("Shape", "Size"):
            node = producer[name]
            # CastLike reads only the element type of its second input
            stack.extend(node.input[:1] if node.op_type == "CastLike" else node.input)
            stack.extend(_free_values(node))  # what an If's / Scan's subgraphs read
    ints = {getattr(TensorProto, t) for t in ("INT8", "INT16", "INT32", "INT64")}
    for name in found:
        ty = inputs[name].type.tensor_type
        dims = [d.dim_value if d.HasField("dim_value") else -1 for d in ty.shape.dim]
        if ty.elem_type not in ints or min(dims, default=0) < 0:
            return []
        if math.prod(dims) > _SHAPE_SOURCE_ELEMENTS:
            return []
    return sorted(found)


# -- native: compile every interpreter-passing case and run it, in worker processes ---------

#: clean refusals of the compile pipeline (the rest of a failure is a crash)
_UNSUPPORTED_ERRORS = (
    "GraphToTlError",
    "TranslationError",
    "ExpressionError",
    "UnsupportedTypeError",
    "LlvmLoweringError",
    "EmitError",
)


@dataclass
class NativeTask:
    """What a worker needs to compile and run one case (picklable)."""

    name: str
    model: bytes
    bound: tuple[str, ...]
    data_sets: list[tuple[list[np.ndarray], list[np.ndarray]]]
    rtol: float
    atol: float


def native_task(case: object, result: CaseResult) -> NativeTask:
    data_sets = [
        (_arrays(i), _arrays(o))
        for i, o in case.data_sets  # type: ignore[attr-defined]
    ]
    return NativeTask(
        result.name,
        case.model.SerializeToString(),  # type: ignore[attr-defined]
        result.bound,
        data_sets,
        max(case.rtol, 1e-4),  # type: ignore[attr-defined]
        max(case.atol, 1e-6),  # type: ignore[attr-defined]
    )


def _c_array(x: np.ndarray) -> np.ndarray:
    """`x` as a C-contiguous array of the same shape (0-d stays 0-d)."""
    return x if x.flags.c_contiguous else x.copy(order="C")


def run_native(task: NativeTask) -> tuple[str, str]:
    """(status, detail) of `mlc.compile` + a native run of every data set, in this process."""
    import onnx

    model = onnx.load_from_string(task.model)
    input_names = [i.name for i in model.graph.input]
    compiled = None
    for inputs, outputs in task.data_sets:
        values = dict(zip(input_names, inputs))
        if compiled is None or task.bound:
            try:
                module = import_onnx(model, input_values={n: values[n] for n in task.bound})
                compiled = compile_model(module)
            except Exception as e:  # noqa: BLE001 - a crash is a result here
                kind = type(e).__name__
                if kind in _UNSUPPORTED_ERRORS:
                    return "unsupported", f"{kind}: {e}"[:300]
                return "crashed", f"compile: {kind}: {e}"[:300]
        args = [_c_array(x) for n, x in zip(input_names, inputs) if n not in task.bound]
        try:
            results = compiled(*args)
        except Exception as e:  # noqa: BLE001
            return "crashed", f"run: {type(e).__name__}: {e}"[:300]
        if len(results) != len(outputs):
            return "wrong", f"{len(results)} results, expected {len(outputs)}"
        for i, (exp, act) in enumerate(zip(outputs, results)):
            why = _compare(exp, act, task.rtol, task.atol)
            if why:
                return "wrong", f"output #{i}: {why}"
    return "passed", ""


def _native_worker(conn: Connection) -> None:
    """Worker loop: receive a task, send back (status, detail); stop on None."""
    warnings.simplefilter("ignore")
    np.seterr(all="ignore")
    while True:
        task = conn.recv()
        if task is None:
            return
        conn.send(run_native(task))


@dataclass
class _Worker:
    process: BaseProcess
    conn: Connection
    task: NativeTask | None = None
    started: float = 0.0
    done: int = 0


def run_native_all(
    tasks: Sequence[NativeTask], jobs: int = 2, timeout: float = 120.0, recycle: int = 100
) -> dict[str, tuple[str, str]]:
    """Run `run_native` on every task in `jobs` worker processes, each replaced after
    `recycle` cases. A worker that dies (a segfault in native code) or exceeds `timeout`
    seconds on one case records that case as crashed; the others are unaffected."""
    methods = multiprocessing.get_all_start_methods()
    ctx = multiprocessing.get_context("fork" if "fork" in methods else "spawn")
    pending = deque(tasks)
    results: dict[str, tuple[str, str]] = {}
    workers: list[_Worker] = []

    def start() -> None:
        parent, child = ctx.Pipe()
        process = ctx.Process(target=_native_worker, args=(child,), daemon=True)
        process.start()
        child.close()
        workers.append(_Worker(process, parent))

    def stop(w: _Worker, kill: bool = False) -> None:
        if kill:
            w.process.kill()
        else:
            try:
                w.conn.send(None)
            except OSError:
                pass
        w.process.join(5)
        if w.process.is_alive():
            w.process.kill()
            w.process.join()
        w.conn.close()
        workers.remove(w)

    try:
        while pending or any(w.task is not None for w in workers):
            for w in [w for w in workers if w.task is None]:
                if not pending or w.done >= recycle:
                    stop(w)
            while len(workers) < min(jobs, len(pending)):
                start()
            for w in workers:
                if w.task is None and pending:
                    w.task, w.started = pending.popleft(), time.monotonic()
                    w.conn.send(w.task)
            busy = [w for w in workers if w.task is not None]
            multiprocessing.connection.wait(
                [w.conn for w in busy] + [w.process.sentinel for w in busy], timeout=1.0
            )
            for w in busy:
                assert w.task is not None
                name = w.task.name
                try:
                    if w.conn.poll():
                        results[name] = w.conn.recv()
                        w.task, w.done = None, w.done + 1
                        continue
                except (EOFError, OSError):
                    pass
                if not w.process.is_alive():
                    code = w.process.exitcode
                    why = f"signal {-code}" if code is not None and code < 0 else f"exit {code}"
                    results[name] = ("crashed", f"worker process died ({why})")
                    stop(w, kill=True)
                elif time.monotonic() - w.started > timeout:
                    results[name] = ("crashed", f"timeout after {timeout:.0f} s")
                    stop(w, kill=True)
    finally:
        for w in list(workers):
            stop(w, kill=True)
    return results


def collect_cases(pattern: str | None = None) -> list[object]:
    from onnx.backend.test.case.node import collect_testcases

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with np.errstate(all="ignore"):
            cases = collect_testcases(None)
    if pattern:
        cases = [c for c in cases if pattern in c.name]
    return cases


def run_all(
    cases: Iterable[object],
    native: bool | Callable[[str], bool] = False,
    jobs: int = 2,
    progress: bool = False,
) -> list[CaseResult]:
    """Every case through the interpreter; with `native` (True, or a filter on case names),
    every (selected) case that passed it is also compiled and run natively. `progress`:
    a progress bar over the interpreted cases on stderr (tqdm)."""
    results = []
    tasks = []
    if progress:
        from tqdm import tqdm

        cases = tqdm(list(cases), desc="conformance", unit="case", leave=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for case in cases:
            r = run_case(case)
            results.append(r)
            if r.status == "passed" and (native is True or (native and native(r.name))):
                tasks.append(native_task(case, r))
    if tasks:
        statuses = run_native_all(tasks, jobs=jobs)
        for r in results:
            if r.name in statuses:
                r.native, r.native_detail = statuses[r.name]
    return results


def summarize(results: Sequence[CaseResult]) -> dict[str, dict[str, Any]]:
    """Counts per status, for all cases and the in-scope ones; under "native", the same for
    the cases that were compiled (those that pass the interpreter, where native ran)."""

    def counts(rs: Iterable[CaseResult], native: bool = False) -> dict[str, int]:
        c = Counter(r.native if native else r.status for r in rs)
        return {s: c.get(s, 0) for s in STATUSES}

    def bound(rs: Iterable[CaseResult]) -> int:
        return sum(1 for r in rs if r.status == "passed" and r.detail.startswith("bound"))

    in_scope = [r for r in results if r.in_scope]
    summary: dict[str, dict[str, Any]] = {
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
    compiled = [r for r in results if r.native]
    if compiled:
        compiled_in_scope = [r for r in compiled if r.in_scope]
        summary["native"] = {
            "all": {"total": len(compiled), **counts(compiled, native=True)},
            "in_scope": {"total": len(compiled_in_scope), **counts(compiled_in_scope, True)},
        }
    return summary


def _reason(detail: str) -> str:
    """A failure's reason without case-specific names and widths (for grouping)."""
    detail = re.sub(r"'[^']*'", "'…'", detail)
    detail = re.sub(r"@\w+", "@…", detail)
    detail = re.sub(r"\b([iu])(8|16|32|64)\b", r"\1N", detail)
    return detail[:160]


def render_report(results: Sequence[CaseResult], elapsed: float) -> str:
    summary = summarize(results)
    lines = [
        "# ONNX conformance report",
        "",
        "onnx's backend node test cases run through `mlc.import_onnx` + `mlc.interpret`",
        "(reference semantics); every case that passes the interpreter is then compiled",
        "with `mlc.compile` and run natively, against the same expected outputs and",
        "tolerances. Regenerate with",
        "`python -m mlc.testing.conformance --report docs/conformance.md "
        "--json tests/conformance/baseline.json`.",
        "",
        "mlc compiles for static shapes. Where a case feeds a shape-deciding value (reduction",
        "axes, a target shape, pads) as a graph *input*, the harness binds that input to the",
        "data set's value at import (`import_onnx(..., input_values=...)`) and runs the rest;",
        "such cases are counted as passed and listed in the column *of which bound*.",
        "",
        "## Interpreter",
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
    native = summary.get("native")
    if native:
        lines += [
            "",
            "## Native (`mlc.compile`, host CPU)",
            "",
            "Of the cases that pass the interpreter. Each case is compiled and run in a worker",
            "process, so a crash of native code is recorded as *crashed* (as is any exception",
            "other than a clean refusal of the compile pipeline, which is *unsupported*).",
            "`tests/conformance/test_conformance.py` compiles a deterministic twelfth of these",
            "cases (all of them with `MLC_CONFORMANCE_NATIVE=all`).",
            "",
            "| cases | compiled | passed | wrong | unsupported | crashed |",
            "|---|---|---|---|---|---|",
        ]
        for key, label in (("all", "all node cases"), ("in_scope", "in-scope ops only")):
            s = native[key]
            lines.append(
                f"| {label} | {s['total']} | {s['passed']} | {s['wrong']} | "
                f"{s['unsupported']} | {s['crashed']} |"
            )
        lines += ["", "Reasons of the native failures (cases):", ""]
        reasons = Counter(
            f"{r.native}: {_reason(r.native_detail)}"
            for r in results
            if r.native and r.native != "passed"
        )
        for reason, n in sorted(reasons.items(), key=lambda kv: (-kv[1], kv[0])):
            lines.append(f"- {n} × {reason}")
        if not reasons:
            lines.append("None.")
    lines += ["", f"Run time: {elapsed:.0f} s.", "", "## In-scope cases that do not pass", ""]
    failing = [r for r in results if r.in_scope and r.status != "passed"]
    if not failing:
        lines.append("None.")
    for r in sorted(failing, key=lambda r: r.name):
        lines.append(f"- `{r.name}` — {r.status}: {r.detail}")
    if native:
        lines += ["", "## In-scope cases that pass the interpreter but not natively", ""]
        failing = [r for r in results if r.in_scope and r.native not in ("", "passed")]
        if not failing:
            lines.append("None.")
        for r in sorted(failing, key=lambda r: r.name):
            lines.append(f"- `{r.name}` — {r.native}: {r.native_detail}")
    lines += ["", "## Per operator (cases whose model contains the op)", ""]
    lines += [
        "| op | in scope | passed | wrong | unsupported | crashed | native passed |",
        "|---|---|---|---|---|---|---|",
    ]
    per_op: dict[str, Counter[str]] = defaultdict(Counter)
    for r in results:
        for op in r.ops:
            per_op[op][r.status] += 1
            per_op[op]["native " + r.native] += 1
    for op in sorted(per_op):
        c = per_op[op]
        lines.append(
            f"| {op} | {'yes' if op in IN_SCOPE_OPS else 'no'} | {c['passed']} | {c['wrong']} | "
            f"{c['unsupported']} | {c['crashed']} | {c['native passed']} |"
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
    parser.add_argument(
        "--no-native", action="store_true", help="only the interpreter: do not compile cases"
    )
    parser.add_argument("-j", "--jobs", type=int, default=2, help="native worker processes")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    results = run_all(
        collect_cases(args.pattern),
        native=not args.no_native,
        jobs=args.jobs,
        progress=not args.quiet and sys.stderr.isatty(),
    )
    elapsed = time.perf_counter() - start
    summary = summarize(results)
    if args.verbose:
        for r in results:
            if r.status != "passed":
                print(f"{r.name}: {r.status}: {r.detail}")
            elif r.native not in ("", "passed"):
                print(f"{r.name}: native {r.native}: {r.native_detail}")
    for key in ("all", "in_scope"):
        s = summary[key]
        print(
            f"{key}: {s['passed']}/{s['total']} passed "
            f"({s['passed_with_bound_inputs']} with bound inputs), {s['wrong']} wrong, "
            f"{s['unsupported']} unsupported, {s['crashed']} crashed"
        )
        if "native" in summary:
            n = summary["native"][key]
            print(
                f"{key} native: {n['passed']}/{n['total']} passed, {n['wrong']} wrong, "
                f"{n['unsupported']} unsupported, {n['crashed']} crashed"
            )
    if args.report:
        with open(args.report, "w") as f:
            f.write(render_report(results, elapsed))
    if args.json:
        ordered = sorted(results, key=lambda r: r.name)
        data: dict[str, Any] = {
            "summary": summary,
            "cases": {r.name: r.status for r in ordered},
        }
        if "native" in summary:
            data["native_cases"] = {r.name: r.native for r in ordered if r.native}
        with open(args.json, "w") as f:
            json.dump(data, f, indent=1, sort_keys=True)
            f.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
