"""Time mlc side by side with onnxruntime and numpy on the benchmark models.

    python -m mlc.benchmarks.run                          # every model, full size
    python -m mlc.benchmarks.run --only gemm,mlp --repeat 5 --budget-s 20
    python -m mlc.benchmarks.run --small --markdown out.md --json out.json

For each model (`mlc.benchmarks.models.BENCHMARKS`) it measures:

- mlc: compile time (`mlc.compile(model)`, once), then latency of `compiled(*inputs)` called as
  a user would (input copies included), with `MLC_NUM_THREADS` set (`--mlc-threads`, 1);
- onnxruntime: one `InferenceSession` per `--threads` entry (CPUExecutionProvider,
  ORT_ENABLE_ALL, intra_op_num_threads=t, inter_op_num_threads=1), session creation time and
  latency of `session.run`;
- numpy: the model written with numpy matmul (OpenBLAS threads pinned to `--numpy-threads`
  where the BLAS allows it), where a numpy version is meaningful, else n/a.

Timing: every runner is first called `--warmup` times untimed; then rounds run every still
active runner once, in an order rotated each round, so machine noise hits all of them alike.
A runner stays active until it has `--repeat` samples, or, once it has at least one, until its
share of `--budget-s` (the budget split evenly over the runners) is spent: slow runners get
fewer samples instead of stalling the run. Reported latencies are medians.

Correctness: each runner's output is compared with the first onnxruntime session's output;
`max_abs_diff` and `ok` (diff <= 1e-3 * max(1, max |reference|)) are reported.

The harness is table driven: `Runner`s produce per-runner metrics (`Measurement`) and the
table's `Column`s are functions of a `Result`, so a new variant (say mlc with the graph passes
off) is a new `Runner` and a new metric (say intermediate buffer bytes) is an `extra` entry
plus a `Column`. `main(argv)` is the command line (for a future `mlc bench`).
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import glob
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

import mlc
from mlc.benchmarks.models import BENCHMARKS, Case

__all__ = [
    "Column",
    "Measurement",
    "Result",
    "Runner",
    "benchmark_case",
    "default_columns",
    "default_runners",
    "main",
    "markdown_table",
    "run",
]

RunFn = Callable[[], list[np.ndarray]]


@dataclass
class Runner:
    """A competitor. `prepare(case)` returns the zero-argument function to time and extra
    metrics (e.g. `{"setup_s": 1.2}`), or None where the runner does not apply (n/a)."""

    name: str
    label: str
    prepare: Callable[[Case], tuple[RunFn, dict[str, Any]] | None]
    #: environment variables set around `prepare` and around every (timed) call only
    env: dict[str, str] = field(default_factory=dict)


@dataclass
class Measurement:
    """One runner on one model."""

    runner: str
    times_s: list[float] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)
    max_abs_diff: float | None = None
    ok: bool | None = None
    error: str | None = None

    @property
    def median_s(self) -> float | None:
        return statistics.median(self.times_s) if self.times_s else None


@dataclass
class Result:
    """Every runner on one model."""

    model: str
    shape: str
    flops: int | None
    measurements: dict[str, Measurement]

    def median_ms(self, runner: str) -> float | None:
        m = self.measurements.get(runner)
        t = m.median_s if m else None
        return None if t is None else t * 1e3

    def ratio(self, num: str, den: str) -> float | None:
        a, b = self.median_ms(num), self.median_ms(den)
        return None if a is None or b is None or b == 0 else a / b

    def gflops(self, runner: str) -> float | None:
        t = self.median_ms(runner)
        return None if t is None or not self.flops else self.flops / (t * 1e-3) / 1e9


# --- runners ----------------------------------------------------------------------------------


@contextlib.contextmanager
def _env(values: dict[str, str]) -> Iterator[None]:
    old = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def mlc_runner(
    name: str = "mlc",
    label: str = "mlc",
    threads: int = 1,
    compile_options: dict[str, Any] | None = None,
) -> Runner:
    """mlc: `mlc.compile(model, **compile_options)`, run with MLC_NUM_THREADS=threads."""

    def prepare(case: Case) -> tuple[RunFn, dict[str, Any]]:
        start = time.perf_counter()
        compiled = mlc.compile(case.model, **(compile_options or {}))
        setup = time.perf_counter() - start
        inputs = case.inputs
        return (lambda: compiled(*inputs)), {
            "setup_s": setup,
            "threads": threads,
            "intermediate_bytes": compiled.intermediate_bytes,
            "workspace_bytes": compiled.workspace_bytes,
        }

    return Runner(name, label, prepare, {"MLC_NUM_THREADS": str(threads)})


def ort_runner(threads: int) -> Runner:
    """onnxruntime, CPUExecutionProvider, all graph optimizations, `threads` intra-op."""

    def prepare(case: Case) -> tuple[RunFn, dict[str, Any]]:
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        # idle worker threads would otherwise spin on the cores the next runner times on
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        start = time.perf_counter()
        session = ort.InferenceSession(
            case.model.SerializeToString(), opts, providers=["CPUExecutionProvider"]
        )
        setup = time.perf_counter() - start
        feed = {i.name: a for i, a in zip(session.get_inputs(), case.inputs)}
        return (lambda: session.run(None, feed)), {"setup_s": setup, "threads": threads}

    return Runner(f"ort{threads}", f"ORT {threads}t", prepare)


def _openblas() -> ctypes.CDLL | None:
    """numpy's bundled OpenBLAS (already loaded; dlopen returns the same handle), if any."""
    base = os.path.dirname(np.__file__)
    for path in glob.glob(base + ".libs/*openblas*") + glob.glob(base + "/.dylibs/*openblas*"):
        with contextlib.suppress(OSError):
            return ctypes.CDLL(path)
    return None


def set_numpy_threads(n: int) -> int | None:
    """Pin numpy's OpenBLAS to `n` threads where possible; the thread count now, or None."""
    lib = _openblas()
    if lib is None:
        return None
    for suffix in ("64_", ""):
        setter = getattr(lib, f"scipy_openblas_set_num_threads{suffix}", None)
        getter = getattr(lib, f"scipy_openblas_get_num_threads{suffix}", None)
        if setter is None:
            setter = getattr(lib, f"openblas_set_num_threads{suffix}", None)
            getter = getattr(lib, f"openblas_get_num_threads{suffix}", None)
        if setter is not None and getter is not None:
            setter(ctypes.c_int(n))
            return int(getter())
    return None


def numpy_runner(threads: int = 1) -> Runner:
    """The case's numpy baseline (n/a where the case has none)."""

    def prepare(case: Case) -> tuple[RunFn, dict[str, Any]] | None:
        if case.numpy_fn is None:
            return None
        actual = set_numpy_threads(threads)
        fn, inputs = case.numpy_fn, case.inputs
        return (lambda: fn(*inputs)), {"setup_s": 0.0, "threads": actual}

    return Runner("numpy", "numpy", prepare)


def default_runners(
    ort_threads: Sequence[int] = (1, 2),
    mlc_threads: int = 1,
    numpy_threads: int = 1,
    passes_off: bool = False,
    nchw: bool = False,
) -> list[Runner]:
    """mlc, (mlc without graph passes and fusion,) (mlc without the blocked layout,)
    onnxruntime per thread count, numpy.
    The first ORT runner is the reference."""
    return [
        mlc_runner(threads=mlc_threads),
        *(
            [mlc_runner("mlc_off", "mlc passes off", mlc_threads, {"fuse": False})]
            if passes_off
            else []
        ),
        *([mlc_runner("mlc_nchw", "mlc nchw", mlc_threads, {"layout": None})] if nchw else []),
        *(ort_runner(t) for t in ort_threads),
        numpy_runner(numpy_threads),
    ]


# --- measuring -------------------------------------------------------------------------------


def _compare(outputs: list[np.ndarray], reference: list[np.ndarray]) -> tuple[float, bool]:
    diff, ok = 0.0, len(outputs) == len(reference)
    for out, ref in zip(outputs, reference):
        out, ref = np.asarray(out), np.asarray(ref)
        if out.shape != ref.shape:
            return float("inf"), False
        d = float(np.max(np.abs(out.astype(np.float64) - ref))) if ref.size else 0.0
        diff = max(diff, d)
        scale = float(np.max(np.abs(ref))) if ref.size else 0.0
        ok = ok and d <= 1e-3 * max(1.0, scale)
    return diff, ok


def benchmark_case(
    case: Case,
    runners: Sequence[Runner],
    *,
    repeat: int = 10,
    warmup: int = 1,
    budget_s: float = 60.0,
    reference: str | None = None,
    log: Callable[[str], None] | None = None,
) -> Result:
    """Prepare every runner, check outputs against `reference` (default: the first ORT
    runner, else the first runner), then time in interleaved, rotated rounds."""
    say = log or (lambda _: None)
    envs = {r.name: r.env for r in runners}
    fns: dict[str, RunFn] = {}
    measurements: dict[str, Measurement] = {}
    outputs: dict[str, list[np.ndarray]] = {}
    for r in runners:
        m = measurements[r.name] = Measurement(r.name)
        try:
            with _env(r.env):
                prepared = r.prepare(case)
                if prepared is None:
                    continue
                fn, m.extra = prepared
                for _ in range(max(1, warmup)):
                    outputs[r.name] = [np.asarray(o) for o in fn()]
            fns[r.name] = fn
            say(f"  {r.name}: prepared in {m.extra.get('setup_s', 0.0):.2f}s")
        except Exception as e:  # a failing runner is reported, not fatal
            m.error = f"{type(e).__name__}: {e}".splitlines()[0][:200]
            say(f"  {r.name}: error: {m.error}")
    ref = reference or next((n for n in fns if n.startswith("ort")), next(iter(fns), None))
    if ref is not None and ref in outputs:
        for name, outs in outputs.items():
            measurements[name].max_abs_diff, measurements[name].ok = _compare(outs, outputs[ref])
    share = budget_s / max(1, len(fns))
    spent = dict.fromkeys(fns, 0.0)
    order = list(fns)
    rnd = 0
    while True:
        active = [
            n
            for n in order
            if len(measurements[n].times_s) < repeat
            and (not measurements[n].times_s or spent[n] < share)
        ]
        if not active:
            break
        k = rnd % len(active)
        for name in active[k:] + active[:k]:
            with _env(envs[name]):
                start = time.perf_counter()
                fns[name]()
                dt = time.perf_counter() - start
            spent[name] += dt
            measurements[name].times_s.append(dt)
        rnd += 1
    return Result(case.name, case.shape, case.flops, measurements)


def run(
    names: Sequence[str] | None = None,
    *,
    small: bool = False,
    runners: Sequence[Runner] | None = None,
    repeat: int = 10,
    warmup: int = 1,
    budget_s: float = 60.0,
    log: Callable[[str], None] | None = None,
) -> list[Result]:
    """Benchmark the named models (default: all) with `runners` (default: `default_runners`)."""
    say = log or (lambda _: None)
    runners = list(runners) if runners is not None else default_runners()
    results = []
    for name in names or list(BENCHMARKS):
        if name not in BENCHMARKS:
            raise KeyError(f"unknown benchmark '{name}' (known: {', '.join(BENCHMARKS)})")
        say(f"{name}:")
        case = BENCHMARKS[name].make(small)
        results.append(
            benchmark_case(case, runners, repeat=repeat, warmup=warmup, budget_s=budget_s, log=log)
        )
    return results


# --- reporting -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Column:
    """A table column: header and a cell formatter over a `Result`."""

    header: str
    cell: Callable[[Result], str]


def _num(x: float | None, fmt: str = "{:.3g}") -> str:
    return "n/a" if x is None else fmt.format(x)


def _ms(runner: str) -> Callable[[Result], str]:
    def cell(r: Result) -> str:
        m = r.measurements.get(runner)
        if m is not None and m.error:
            return "error"
        return _num(r.median_ms(runner), "{:.3f}")

    return cell


def _setup(runner: str) -> Callable[[Result], str]:
    def cell(r: Result) -> str:
        m = r.measurements.get(runner)
        return _num(m.extra.get("setup_s") if m else None, "{:.2f}")

    return cell


def _bytes(runner: str, key: str) -> Callable[[Result], str]:
    def cell(r: Result) -> str:
        m = r.measurements.get(runner)
        value = m.extra.get(key) if m else None
        return _num(value / 1024 if value is not None else None, "{:.0f}")

    return cell


def _check(runner: str) -> Callable[[Result], str]:
    def cell(r: Result) -> str:
        m = r.measurements.get(runner)
        if m is None or m.max_abs_diff is None:
            return "n/a"
        return f"{m.max_abs_diff:.1e}" + ("" if m.ok else " MISMATCH")

    return cell


def default_columns(runners: Sequence[Runner], primary: str = "mlc") -> list[Column]:
    """model, shape, compile/setup times, medians, ratios vs ORT, GFLOP/s, check, samples."""
    orts = [r for r in runners if r.name.startswith("ort")]
    cols = [Column("model", lambda r: r.model), Column("shape", lambda r: r.shape)]
    cols.append(Column(f"{primary} compile s", _setup(primary)))
    if orts:
        cols.append(Column(f"{orts[0].label} init s", _setup(orts[0].name)))
    cols += [Column(f"{r.label} ms", _ms(r.name)) for r in runners]
    for o in orts:
        cols.append(
            Column(f"{primary}/{o.label}", lambda r, o=o: _num(r.ratio(primary, o.name), "{:.2f}"))
        )
    for m in runners:
        if m.name.startswith("mlc") and m.name != primary and orts:
            cols.append(
                Column(
                    f"{m.label}/{orts[0].label}",
                    lambda r, m=m: _num(r.ratio(m.name, orts[0].name), "{:.2f}"),
                )
            )
    for name in [primary, *(o.name for o in orts[:1])]:
        label = next((r.label for r in runners if r.name == name), name)
        cols.append(Column(f"{label} GFLOP/s", lambda r, n=name: _num(r.gflops(n), "{:.2f}")))
    for r in runners:
        if r.name.startswith("mlc") and len([x for x in runners if x.name.startswith("mlc")]) > 1:
            cols.append(
                Column(f"{r.label} intermediates KiB", _bytes(r.name, "intermediate_bytes"))
            )
    cols.append(Column(f"{primary} workspace KiB", _bytes(primary, "workspace_bytes")))
    cols.append(Column(f"{primary} max abs diff", _check(primary)))
    cols.append(
        Column(
            "samples (" + "/".join(r.label for r in runners) + ")",
            lambda r: "/".join(str(len(m.times_s)) for m in r.measurements.values()),
        )
    )
    return cols


def markdown_table(results: Sequence[Result], columns: Sequence[Column]) -> str:
    """The table, then one line per runner error below it."""
    rows = [[c.header for c in columns], ["---"] * len(columns)]
    rows += [[c.cell(r) for c in columns] for r in results]
    text = "\n".join("| " + " | ".join(row) + " |" for row in rows) + "\n"
    errors = [
        f"- {r.model} / {m.runner}: {m.error}"
        for r in results
        for m in r.measurements.values()
        if m.error
    ]
    return text + ("\nErrors:\n\n" + "\n".join(errors) + "\n" if errors else "")


def machine_info() -> dict[str, Any]:
    info: dict[str, Any] = {
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cpu_count": os.cpu_count(),
        "numpy": np.__version__,
    }
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                info["cpu"] = line.split(":", 1)[1].strip()
                break
    with contextlib.suppress(ImportError):
        import onnxruntime

        info["onnxruntime"] = onnxruntime.__version__
    return info


def to_json(results: Sequence[Result], settings: dict[str, Any]) -> dict[str, Any]:
    return {
        "machine": machine_info(),
        "settings": settings,
        "results": [
            {
                "model": r.model,
                "shape": r.shape,
                "flops": r.flops,
                "measurements": {
                    n: {**asdict(m), "median_s": m.median_s} for n, m in r.measurements.items()
                },
            }
            for r in results
        ],
    }


def _ints(text: str) -> list[int]:
    return [int(t) for t in text.split(",") if t.strip()]


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m mlc.benchmarks.run",
        description="Time mlc against onnxruntime and numpy (medians, interleaved rounds).",
    )
    p.add_argument("--only", default="", help=f"comma-separated subset of {','.join(BENCHMARKS)}")
    p.add_argument("--repeat", type=int, default=10, help="timed samples per runner (max)")
    p.add_argument("--warmup", type=int, default=1, help="untimed calls per runner first")
    p.add_argument(
        "--budget-s", type=float, default=60.0, help="time budget per model, split over runners"
    )
    p.add_argument("--threads", default="1,2", help="onnxruntime intra-op thread counts")
    p.add_argument("--mlc-threads", type=int, default=1, help="MLC_NUM_THREADS for mlc")
    p.add_argument("--numpy-threads", type=int, default=1, help="OpenBLAS threads for numpy")
    p.add_argument("--small", action="store_true", help="tiny shapes (a smoke test)")
    p.add_argument("--markdown", help="write the table as markdown to this file")
    p.add_argument("--json", help="write every sample and setting as JSON to this file")
    p.add_argument("--quiet", action="store_true", help="no progress on stderr")
    p.add_argument(
        "--passes-off",
        action="store_true",
        help="also run mlc without graph passes and kernel fusion (mlc.compile(fuse=False))",
    )
    p.add_argument(
        "--nchw",
        action="store_true",
        help="also run mlc with convolutions in NCHW, no blocked layout (mlc.compile(layout=None))",
    )
    args = p.parse_args(argv)

    names = [n for n in args.only.split(",") if n] or None
    unknown = [n for n in names or [] if n not in BENCHMARKS]
    if unknown:
        p.error(f"unknown benchmark(s) {', '.join(unknown)}; known: {', '.join(BENCHMARKS)}")
    runners = default_runners(
        _ints(args.threads), args.mlc_threads, args.numpy_threads, args.passes_off, args.nchw
    )

    def log(msg: str) -> None:
        if not args.quiet:
            print(msg, file=sys.stderr, flush=True)

    results = run(
        names,
        small=args.small,
        runners=runners,
        repeat=args.repeat,
        warmup=args.warmup,
        budget_s=args.budget_s,
        log=log,
    )
    table = markdown_table(results, default_columns(runners))
    print(table, end="")
    if args.markdown:
        Path(args.markdown).write_text(table)
    if args.json:
        settings = {k: v for k, v in vars(args).items() if k not in {"markdown", "json", "quiet"}}
        Path(args.json).write_text(json.dumps(to_json(results, settings), indent=2) + "\n")
    failed = any(m.error or m.ok is False for r in results for m in r.measurements.values())
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
