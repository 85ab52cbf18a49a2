"""Running a fuzzer: cases generated in the parent, each run in a forked child, results
classified and the failing inputs kept; replaying a kept case.

The parent never compiles or runs a model: libgomp's thread pool does not survive a
fork, so a child of a process that already ran OpenMP code can deadlock in its first
parallel region. When the current process has loaded libgomp anyway (a test session that
compiled models before), a fuzzer that runs native code is run from a fresh
`python -m mlc.testing.fuzz` process instead, which forks the children.
"""

from __future__ import annotations

import functools
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

from mlc.testing.fuzz.case import Case, Fuzzer, Result, load_case, save_case
from mlc.testing.fuzz.child import run_children
from mlc.testing.fuzz.ir_fuzzer import IrFuzzer
from mlc.testing.fuzz.onnx_fuzzer import OnnxFuzzer
from mlc.testing.fuzz.outcomes import FAILURES
from mlc.testing.fuzz.report import Report, classify_child
from mlc.testing.fuzz.values_fuzzer import ValuesFuzzer

DEFAULT_MEMORY_LIMIT = 8 << 30
"""The address-space cap of a child (bytes): a huge tensor fails to allocate instead of
pushing a shared machine into swap or the OOM killer."""


def make_fuzzer(name: str) -> Fuzzer:
    """A fuzzer by name: `ir`, `onnx` or `values`."""
    if name == "ir":
        return IrFuzzer()
    if name == "onnx":
        return OnnxFuzzer()
    if name == "values":
        return ValuesFuzzer()
    raise ValueError(f"unknown fuzzer '{name}' (known: ir, onnx, values)")


FUZZERS: tuple[str, ...] = ("ir", "onnx", "values")


def openmp_loaded() -> bool:
    """Whether this process has libgomp loaded (forking it is unsafe for native code)."""
    try:
        return "libgomp" in Path("/proc/self/maps").read_text()
    except OSError:
        return False


def run_fuzzer(
    fuzzer: Fuzzer | str,
    *,
    seed: int = 0,
    cases: int = 100,
    start: int = 0,
    timeout: float | None = None,
    jobs: int = 1,
    out: Path | str | None = None,
    memory_limit: int | None = DEFAULT_MEMORY_LIMIT,
    on_result: Callable[[Result], None] | None = None,
) -> Report:
    """Run cases `start .. start + cases - 1` of `fuzzer` with `seed`, `jobs` children at a
    time; failing cases are saved into `out` (when given). Returns the report, results in
    case order."""
    fuzzer = make_fuzzer(fuzzer) if isinstance(fuzzer, str) else fuzzer
    limit = timeout if timeout is not None else fuzzer.timeout
    if fuzzer.native and openmp_loaded():
        return _run_fresh(fuzzer.name, seed, cases, start, limit, jobs, out, memory_limit)
    began = time.monotonic()
    fuzzer.prepare()
    generated = (fuzzer.generate(seed, i) for i in range(start, start + cases))  # lazily
    results = _run(fuzzer, generated, limit, jobs, memory_limit, out, on_result)
    results.sort(key=lambda r: r.case.index)
    return Report(fuzzer.name, seed, results, time.monotonic() - began)


def _run(
    fuzzer: Fuzzer,
    cases: Iterable[Case],
    timeout: float,
    jobs: int,
    memory_limit: int | None,
    out: Path | str | None = None,
    on_result: Callable[[Result], None] | None = None,
) -> list[Result]:
    """Run `cases` in children; results in the order they finish."""
    results: list[Result] = []
    with tempfile.TemporaryDirectory(prefix="mlc-fuzz-") as tmp:
        root = Path(tmp)
        works = ((case, functools.partial(fuzzer.execute, case)) for case in cases)
        for case, child in run_children(
            works,
            root=root,
            cache_dir=root / "cache",
            jobs=jobs,
            timeout=timeout,
            memory_limit=memory_limit,
        ):
            outcome, detail = classify_child(child, timeout)
            result = Result(case, outcome, detail, child.seconds)
            if out is not None and outcome in FAILURES:
                result.saved = str(save_case(result, Path(out), fuzzer.extension))
            results.append(result)
            if on_result is not None:
                on_result(result)
    return results


def _run_fresh(
    name: str,
    seed: int,
    cases: int,
    start: int,
    timeout: float,
    jobs: int,
    out: Path | str | None,
    memory_limit: int | None,
) -> Report:
    """`run_fuzzer` in a fresh `python -m mlc.testing.fuzz` process (see the module
    docstring); its JSON report is read back."""
    with tempfile.TemporaryDirectory(prefix="mlc-fuzz-") as tmp:
        report = Path(tmp) / "report.json"
        argv = [sys.executable, "-m", "mlc.testing.fuzz", name, "--seed", str(seed)]
        argv += ["--cases", str(cases), "--start", str(start), "--timeout", str(timeout)]
        argv += ["--jobs", str(jobs), "--json", str(report), "--quiet"]
        argv += ["--memory-limit", str(memory_limit or 0)]
        if out is not None:
            argv += ["--out", str(out)]
        env = {k: v for k, v in os.environ.items() if k != "PYTEST_CURRENT_TEST"}
        subprocess.run(argv, env=env, check=False, cwd=tmp, stdout=subprocess.DEVNULL)
        if not report.exists():
            raise RuntimeError(f"the fuzz process for '{name}' wrote no report")
        return Report.from_json(json.loads(report.read_text()))


def replay(
    path: Path | str,
    *,
    timeout: float | None = None,
    memory_limit: int | None = DEFAULT_MEMORY_LIMIT,
) -> Result:
    """Run a saved case (its `.json` file or input file) again, in a child."""
    case, _ = load_case(path)
    return run_cases(case.fuzzer, [case], timeout=timeout, memory_limit=memory_limit)[0]


def run_cases(
    fuzzer: Fuzzer | str,
    cases: Sequence[Case],
    *,
    timeout: float | None = None,
    jobs: int = 1,
    memory_limit: int | None = DEFAULT_MEMORY_LIMIT,
) -> list[Result]:
    """Run given cases (made by `fuzzer`) in children; results in the given order. For
    the native fuzzers, only from a process without libgomp (`python -m mlc.testing.fuzz
    replay` is one)."""
    fuzzer = make_fuzzer(fuzzer) if isinstance(fuzzer, str) else fuzzer
    if fuzzer.native and openmp_loaded():
        raise RuntimeError(
            "this process has loaded libgomp: forked children could deadlock in native code; "
            "replay with `python -m mlc.testing.fuzz replay CASE.json`"
        )
    fuzzer.prepare()
    limit = timeout if timeout is not None else fuzzer.timeout
    results = _run(fuzzer, cases, limit, jobs, memory_limit)
    order = {id(c): i for i, c in enumerate(cases)}
    return sorted(results, key=lambda r: order[id(r.case)])
