"""Tuning benchmark: default schedule vs tuned (`mlc.tuning.tune`) vs onnxruntime, per
kernel, in one interleaved timing run (docs/tuning.md).

    python -m mlc.benchmarks.tuning --trials 64 --jobs 2          # the issue's six kernels
    python -m mlc.benchmarks.tuning --only gemm,conv3x3 --trials 16
    python -m mlc.benchmarks.tuning --small --trials 2             # tiny shapes (the test)
    python -m mlc.benchmarks.tuning --efficiency --only conv3x3 --random-trials 1000


Each kernel is a one-node ONNX model (constant weights). It is tuned into a fresh
database, then compiled twice (default schedule; `tuning_db=`) and timed next to
onnxruntime (one thread each, interleaved rotated rounds, medians; so the search is for
one thread too: `parallel=False`). Reported: the three
times, tuned / default and tuned / onnxruntime, trials measured, candidates rejected
before measurement, and the wall time the search took.

`--efficiency` measures the search instead, on each kernel's main task (the one with
the most work): random search (`search="random"`, `--random-trials`) and the
cost-model-guided evolutionary search (`--guided-trials`), each into a fresh database.
Reported: each search's best speed-up over the default schedule (both confirmed by
re-measurement, each against the default measured in the same run, so a machine whose
speed drifts between the runs does not decide), the guided best as a fraction of the
random best (the issue's sample efficiency), the cost model's Kendall τ on held-out
random measurements (trained on the first 70 %, in measurement order, ranking the rest)
and on what the guided search chose (scored before measuring), and the wall times.
"""

from __future__ import annotations

import argparse
import math
import os
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from onnx import TensorProto, helper, numpy_helper

from mlc.benchmarks.models import Case, gemm
from mlc.benchmarks.run import benchmark_case, mlc_runner, ort_runner
from mlc.tuning import extract_tasks, tune
from mlc.tuning.cost_model import LightGBMRanker, held_out_tau
from mlc.tuning.database import TuningDatabase
from mlc.tuning.space import Candidate

__all__ = ["KERNELS", "EfficiencyRow", "TuningRow", "efficiency", "main", "measure"]


def _conv(
    name: str, cin: int, cout: int, size: int, k: int, stride: int = 1, group: int = 1
) -> Case:
    """Conv k x k, `cin` -> `cout` channels on size x size, "same" padding, no bias."""
    rng = np.random.default_rng(0)
    pad = k // 2
    weight = rng.standard_normal((cout, cin // group, k, k)).astype(np.float32) * 0.1
    node = helper.make_node(
        "Conv",
        ["x", "w"],
        ["y"],
        kernel_shape=[k, k],
        strides=[stride] * 2,
        pads=[pad] * 4,
        group=group,
    )
    out = (size + 2 * pad - k) // stride + 1
    graph = helper.make_graph(
        [node],
        name,
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, cin, size, size])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, cout, out, out])],
        [numpy_helper.from_array(weight, "w")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    x = rng.standard_normal((1, cin, size, size)).astype(np.float32)
    flops = 2 * cout * out * out * (cin // group) * k * k
    shape = f"{cin}->{cout} {size}x{size} k{k} s{stride}" + (f" g{group}" if group > 1 else "")
    return Case(name, model, [x], None, flops, shape)


def _fully_connected(name: str, inputs: int, outputs: int) -> Case:
    """Batch-1 Gemm: x[1, inputs] by a constant W[outputs, inputs] (transB)."""
    rng = np.random.default_rng(0)
    weight = rng.standard_normal((outputs, inputs)).astype(np.float32) * 0.01
    graph = helper.make_graph(
        [helper.make_node("Gemm", ["x", "w"], ["y"], transB=1)],
        name,
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, inputs])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, outputs])],
        [numpy_helper.from_array(weight, "w")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    x = rng.standard_normal((1, inputs)).astype(np.float32)
    return Case(name, model, [x], None, 2 * inputs * outputs, f"1x{inputs} by {outputs}")


def _gemm(m: int) -> Case:
    case = gemm(m, m, m)
    case.name = "gemm"
    return case


#: name -> (full-size case, tiny case)
KERNELS: dict[str, tuple[Callable[[], Case], Callable[[], Case]]] = {
    "gemm": (lambda: _gemm(1024), lambda: _gemm(32)),
    "conv3x3": (lambda: _conv("conv3x3", 64, 64, 56, 3), lambda: _conv("conv3x3", 8, 8, 8, 3)),
    "depthwise3x3": (
        lambda: _conv("depthwise3x3", 128, 128, 56, 3, group=128),
        lambda: _conv("depthwise3x3", 8, 8, 8, 3, group=8),
    ),
    "grouped1x1": (
        lambda: _conv("grouped1x1", 272, 272, 28, 1, group=4),
        lambda: _conv("grouped1x1", 16, 16, 6, 1, group=4),
    ),
    "fc": (lambda: _fully_connected("fc", 9216, 4096), lambda: _fully_connected("fc", 64, 32)),
    "stem7x7": (
        lambda: _conv("stem7x7", 3, 64, 224, 7, stride=2),
        lambda: _conv("stem7x7", 3, 8, 16, 7, stride=2),
    ),
}


@dataclass
class TuningRow:
    """One kernel: times (ms, medians) and what the search cost."""

    name: str
    shape: str
    default_ms: float | None
    tuned_ms: float | None
    ort_ms: float | None
    trials: int
    invalid: int
    tune_s: float
    outputs_ok: bool

    def ratio(self, a: float | None, b: float | None) -> float | None:
        return None if a is None or b is None or b == 0 else a / b


def measure(
    name: str,
    *,
    trials: int,
    jobs: int,
    small: bool = False,
    repeat: int = 20,
    seed: int = 0,
    backend: str = "auto",
    cost_model: bool = False,
) -> TuningRow:
    """Tune kernel `name` into a fresh database (`cost_model`: guided by the LightGBM
    model), then time default, tuned and onnxruntime."""
    case = KERNELS[name][1 if small else 0]()
    with tempfile.TemporaryDirectory(prefix="mlc-tuning-bench-") as tmp:
        db = os.path.join(tmp, "tuning.db")
        start = time.perf_counter()
        report = tune(
            case.model,
            db=db,
            trials=trials,
            jobs=jobs,
            seed=seed,
            backend=backend,
            parallel=False,  # timed on one thread below: tuned for one thread
            ranker=LightGBMRanker() if cost_model else None,
        )
        tune_s = time.perf_counter() - start
        runners = [
            mlc_runner("default", "default"),
            mlc_runner("tuned", "tuned", compile_options={"tuning_db": db}),
            ort_runner(1),
        ]
        result = benchmark_case(case, runners, repeat=repeat, budget_s=30.0)
    ok = all(m.ok is not False and m.error is None for m in result.measurements.values())
    return TuningRow(
        name,
        case.shape,
        result.median_ms("default"),
        result.median_ms("tuned"),
        result.median_ms("ort1"),
        sum(r.trials for r in report.tasks),
        sum(r.invalid for r in report.tasks),
        tune_s,
        ok,
    )


@dataclass
class EfficiencyRow:
    """One kernel's search comparison (speed-ups over the default schedule)."""

    name: str
    shape: str
    random_trials: int
    random_speedup: float | None
    random_s: float
    guided_trials: int
    guided_speedup: float | None
    guided_s: float
    held_out_tau: float | None
    guided_tau: float | None

    @property
    def fraction(self) -> float | None:
        """The guided best as a fraction of the random best (1.0: as fast)."""
        if not self.random_speedup or not self.guided_speedup:
            return None
        return self.guided_speedup / self.random_speedup


def efficiency(
    name: str,
    *,
    random_trials: int,
    guided_trials: int,
    jobs: int,
    small: bool = False,
    seed: int = 0,
    backend: str = "auto",
    db_dir: str | None = None,
) -> EfficiencyRow:
    """Random search vs cost-model-guided evolutionary search on kernel `name`'s main
    task, each into a fresh database (see the module docstring) — `random.db` and
    `guided.db` in `db_dir` if given (kept, e.g. to study the cost model), else in a
    temporary directory."""
    case = KERNELS[name][1 if small else 0]()
    task = max(extract_tasks(case.model), key=lambda t: t.work)
    runs = {}
    with tempfile.TemporaryDirectory(prefix="mlc-tuning-efficiency-") as tmp:
        where = db_dir or tmp
        os.makedirs(where, exist_ok=True)
        for label, trials, ranker in (
            ("random", random_trials, None),
            ("guided", guided_trials, LightGBMRanker()),
        ):
            path = os.path.join(where, f"{label}.db")
            if os.path.exists(path):
                raise FileExistsError(f"{path} exists: the comparison needs fresh databases")
            db = TuningDatabase(path)
            start = time.perf_counter()
            report = tune(
                task,
                db=db,
                trials=trials,
                jobs=jobs,
                seed=seed,
                ranker=ranker,
                search="random" if ranker is None else "evolutionary",
                backend=backend,
                parallel=False,
            )
            runs[label] = (report.tasks[0], time.perf_counter() - start, db)
        random_result, random_s, random_db = runs["random"]
        guided_result, guided_s, _ = runs["guided"]
        first: dict[str, float] = {}
        for r in random_db.records(status="ok"):
            if not r.is_default:
                first.setdefault(r.trace, r.seconds)  # type: ignore[arg-type]
        measured = [(Candidate(t), s) for t, s in first.items()]
        tau = held_out_tau(task, measured) if len(measured) >= 10 else None
    return EfficiencyRow(
        name,
        case.shape,
        random_result.trials,
        random_result.speedup,
        random_s,
        guided_result.trials,
        guided_result.speedup,
        guided_s,
        tau,
        guided_result.tau,
    )


def efficiency_table(rows: Sequence[EfficiencyRow]) -> str:
    head = (
        f"{'kernel':<14}{'random':>8}{'speed-up':>9}{'s':>7}{'guided':>8}{'speed-up':>9}"
        f"{'s':>7}{'guided/random':>14}{'tau held-out':>13}{'tau chosen':>11}"
    )
    lines = [head]
    for r in rows:
        lines.append(
            f"{r.name:<14}{r.random_trials:>8}{_fmt(r.random_speedup, '.2f'):>9}"
            f"{r.random_s:>7.0f}{r.guided_trials:>8}{_fmt(r.guided_speedup, '.2f'):>9}"
            f"{r.guided_s:>7.0f}{_fmt(r.fraction, '.2f'):>14}{_fmt(r.held_out_tau, '.2f'):>13}"
            f"{_fmt(r.guided_tau, '.2f'):>11}"
        )
    return "\n".join(lines)


def _fmt(x: float | None, spec: str = ".3f") -> str:
    return "-" if x is None or math.isnan(x) else format(x, spec)


def table(rows: Sequence[TuningRow]) -> str:
    head = (
        f"{'kernel':<14}{'shape':<30}{'default ms':>11}{'tuned ms':>10}{'ORT ms':>9}"
        f"{'tuned/def':>10}{'tuned/ORT':>10}{'trials':>7}{'invalid':>8}{'tune s':>8}  ok"
    )
    lines = [head]
    for r in rows:
        lines.append(
            f"{r.name:<14}{r.shape:<30}{_fmt(r.default_ms):>11}{_fmt(r.tuned_ms):>10}"
            f"{_fmt(r.ort_ms):>9}{_fmt(r.ratio(r.tuned_ms, r.default_ms), '.2f'):>10}"
            f"{_fmt(r.ratio(r.tuned_ms, r.ort_ms), '.2f'):>10}{r.trials:>7}{r.invalid:>8}"
            f"{r.tune_s:>8.0f}  {'yes' if r.outputs_ok else 'NO'}"
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mlc.benchmarks.tuning")
    parser.add_argument("--only", help=f"comma-separated subset of {', '.join(KERNELS)}")
    parser.add_argument("--trials", type=int, default=64, help="measured candidates per kernel")
    parser.add_argument("--jobs", type=int, default=1, help="measurement worker processes")
    parser.add_argument("--repeat", type=int, default=20, help="timed calls per runner")
    parser.add_argument("--small", action="store_true", help="tiny shapes (a smoke test)")
    parser.add_argument(
        "--backend", choices=["auto", "ray", "process"], default="auto", help="where to measure"
    )
    parser.add_argument(
        "--efficiency",
        action="store_true",
        help="compare random and cost-model-guided search instead (sample efficiency, tau)",
    )
    parser.add_argument(
        "--cost-model", action="store_true", help="guide the search with the LightGBM model"
    )
    parser.add_argument("--random-trials", type=int, default=1000, help="with --efficiency")
    parser.add_argument("--guided-trials", type=int, default=64, help="with --efficiency")
    parser.add_argument("--db-dir", help="with --efficiency: keep random.db / guided.db here")
    args = parser.parse_args(argv)
    names = args.only.split(",") if args.only else list(KERNELS)
    unknown = [n for n in names if n not in KERNELS]
    if unknown:
        parser.error(f"unknown kernel(s) {', '.join(unknown)}; known: {', '.join(KERNELS)}")
    if args.trials < 1 or args.jobs < 1:
        parser.error("--trials and --jobs must be at least 1")
    if args.efficiency:
        if min(args.random_trials, args.guided_trials) < 1:
            parser.error("--random-trials and --guided-trials must be at least 1")
        found = []
        for name in names:
            found.append(
                efficiency(
                    name,
                    random_trials=args.random_trials,
                    guided_trials=args.guided_trials,
                    jobs=args.jobs,
                    small=args.small,
                    backend=args.backend,
                    db_dir=os.path.join(args.db_dir, name) if args.db_dir else None,
                )
            )
            print(f"{name}: done", flush=True)
        print(efficiency_table(found))
        return 0
    rows = []
    for name in names:
        rows.append(
            measure(
                name,
                trials=args.trials,
                jobs=args.jobs,
                small=args.small,
                repeat=args.repeat,
                backend=args.backend,
                cost_model=args.cost_model,
            )
        )
        print(f"{name}: done in {rows[-1].tune_s:.0f} s of tuning", flush=True)
    print(table(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
