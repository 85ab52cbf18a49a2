"""Tree-ensemble benchmark: mlc (each strategy and the one `auto` chooses) vs onnxruntime
vs the library's own predict, one thread each, in one interleaved run.

    python -m mlc.benchmarks.trees                       # the three models, batch 1 / 1000 / 100000
    python -m mlc.benchmarks.trees --quick               # 100 trees, batch 1 / 1000
    python -m mlc.benchmarks.trees --models rf --batches 1 1000 --json trees.json

Models (trained here, deterministically, on a synthetic binary task with 28 features and
20 000 rows: `make_classification`, HIGGS-sized): a scikit-learn random forest (500 trees,
depth 8), XGBoost (500 trees, depth 6) and LightGBM (500 trees, 31 leaves), converted with
skl2onnx / onnxmltools. For every (model, batch) cell each runner is timed in rounds that
cycle through the runners, so load from elsewhere on this shared machine hits them alike;
the table reports the median per call and the ratio to onnxruntime. Every mlc result is
checked against onnxruntime's (labels equal, probabilities within 1e-5). mlc compiles
once per batch size (static shapes); its compile time is reported per strategy. The GEMM
strategy is skipped where its intermediates would exceed `--gemm-limit-gb`.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

import mlc
from mlc.benchmarks.run import _env
from mlc.dialects.graph.trees import TreeEnsembleOp
from mlc.parser.estimators import to_onnx_model
from mlc.transforms.graph.trees import choose_strategy

__all__ = ["Model", "main", "make_models", "run"]

STRATEGIES = ("gemm", "traversal", "perfect", "auto")
N_FEATURES = 28
TRAIN_ROWS = 20_000


@dataclass
class Model:
    """A trained model, its ONNX form and the library's predict (one thread)."""

    name: str
    onnx_bytes: bytes
    predict: Callable[[np.ndarray], np.ndarray]
    trees: int
    train_s: float


def _data(rows: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import make_classification

    x, y = make_classification(
        rows, N_FEATURES, n_informative=14, n_redundant=6, random_state=seed, flip_y=0.05
    )
    return x.astype(np.float32), y


def make_models(names: list[str], n_trees: int) -> list[Model]:
    """Train the requested models ("rf", "xgb", "lgbm") on the synthetic task."""
    warnings.filterwarnings("ignore")
    x, y = _data(TRAIN_ROWS)
    models = []
    for name in names:
        start = time.perf_counter()
        if name == "rf":
            from sklearn.ensemble import RandomForestClassifier

            est = RandomForestClassifier(n_trees, max_depth=8, random_state=0, n_jobs=-1).fit(x, y)
            est.set_params(n_jobs=1)
            label = f"random forest ({n_trees} trees, depth 8)"
        elif name == "xgb":
            import xgboost

            est = xgboost.XGBClassifier(
                n_estimators=n_trees, max_depth=6, random_state=0, tree_method="hist"
            ).fit(x, y)
            est.set_params(n_jobs=1)
            label = f"XGBoost ({n_trees} trees, depth 6)"
        elif name == "lgbm":
            import lightgbm

            est = lightgbm.LGBMClassifier(
                n_estimators=n_trees, num_leaves=31, random_state=0, verbose=-1
            ).fit(x, y)
            est.set_params(n_jobs=1)
            label = f"LightGBM ({n_trees} trees, 31 leaves)"
        else:
            raise ValueError(f"unknown model {name!r} (rf, xgb, lgbm)")
        train_s = time.perf_counter() - start
        onnx_model = to_onnx_model(est, N_FEATURES)
        models.append(
            Model(label, onnx_model.SerializeToString(), est.predict_proba, n_trees, train_s)
        )
    return models


@dataclass
class Cell:
    model: str
    batch: int
    times_ms: dict[str, list[float]] = field(default_factory=dict)
    compile_s: dict[str, float] = field(default_factory=dict)
    chosen: str = ""
    notes: list[str] = field(default_factory=list)

    def median(self, runner: str) -> float | None:
        t = self.times_ms.get(runner)
        return statistics.median(t) if t else None


def _gemm_bytes(model: Model, batch: int) -> int:
    """The largest GEMM-strategy intermediate: batch x trees x leaves (f32), leaves up to
    2**depth per tree (a bound from the ONNX node count)."""
    import onnx

    proto = onnx.load_from_string(model.onnx_bytes)
    nodes = max((len(a.ints) for n in proto.graph.node for a in n.attribute
                 if a.name == "nodes_nodeids"), default=0)  # fmt: skip
    per_tree = nodes / max(model.trees, 1)
    return int(batch * model.trees * (per_tree / 2 + 1) * 4 * 2)


def run(models: list[Model], batches: list[int], strategies: list[str], rounds: int,
        gemm_limit_gb: float, min_time_s: float) -> list[Cell]:  # fmt: skip
    """Time every (model, batch) cell; see the module docstring."""
    import onnxruntime as ort

    cells = []
    for model in models:
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        options.log_severity_level = 3  # the converters declare a batch-1 label shape
        session = ort.InferenceSession(
            model.onnx_bytes, options, providers=["CPUExecutionProvider"]
        )
        for batch in batches:
            x, _ = _data(batch, seed=1)
            cell = Cell(model.name, batch)
            expected = session.run(None, {"X": x})
            runners: dict[str, Callable[[], Any]] = {
                "onnxruntime": lambda s=session, x=x: s.run(None, {"X": x}),
                "library": lambda m=model, x=x: m.predict(x),
            }
            module = mlc.import_onnx(model.onnx_bytes, input_shapes={"X": (batch, N_FEATURES)})
            ops = [op for op in module.walk() if isinstance(op, TreeEnsembleOp)]
            cell.chosen = choose_strategy(ops[0]) if ops else "?"
            for strategy in strategies:
                name = f"mlc {strategy}"
                if strategy == "gemm" and _gemm_bytes(model, batch) > gemm_limit_gb * 2**30:
                    cell.notes.append(
                        f"gemm skipped (~{_gemm_bytes(model, batch) / 2**30:.0f} GB of intermediates)"
                    )
                    continue
                start = time.perf_counter()
                try:
                    compiled = mlc.compile(model.onnx_bytes, input_shapes={"X": (batch, N_FEATURES)},
                                           tree_strategy=strategy, cache=False)  # fmt: skip
                except Exception as e:  # noqa: BLE001  (reported in the table)
                    cell.notes.append(f"{name}: {type(e).__name__}: {str(e).splitlines()[0][:120]}")
                    continue
                cell.compile_s[name] = time.perf_counter() - start
                compiled.num_threads = 1
                got = compiled(x)
                if not (
                    np.array_equal(got[0], expected[0])
                    and np.allclose(got[1], expected[1], rtol=1e-5, atol=1e-6)
                ):
                    cell.notes.append(f"{name}: results differ from onnxruntime")
                runners[name] = lambda c=compiled, x=x: c(x)
            _time_interleaved(cell, runners, rounds, min_time_s)
            cells.append(cell)
            print(_row(cell, strategies), flush=True)
    return cells


def _time_interleaved(
    cell: Cell, runners: dict[str, Callable[[], Any]], rounds: int, min_time_s: float
) -> None:
    """`rounds` rounds; in each, every runner is called repeatedly for ~min_time_s and the
    mean per call recorded (one sample per runner per round)."""
    for fn in runners.values():
        fn()  # warm up
    for _ in range(rounds):
        for name, fn in runners.items():
            calls, start = 0, time.perf_counter()
            while True:
                fn()
                calls += 1
                elapsed = time.perf_counter() - start
                if elapsed >= min_time_s:
                    break
            cell.times_ms.setdefault(name, []).append(elapsed / calls * 1e3)


def _fmt(v: float | None) -> str:
    return "-" if v is None else f"{v:.3g}"


def _row(cell: Cell, strategies: list[str]) -> str:
    ort_ms = cell.median("onnxruntime")
    parts = [f"{cell.model}", f"{cell.batch}", _fmt(ort_ms), _fmt(cell.median("library"))]
    for s in strategies:
        m = cell.median(f"mlc {s}")
        parts.append(f"{_fmt(m)} ({_fmt(m / ort_ms if m and ort_ms else None)}x)")
    parts.append(cell.chosen)
    lib = cell.median("library")
    auto = cell.median("mlc auto")
    parts.append(_fmt(lib / auto if lib and auto else None))
    parts.append(", ".join(f"{k.split()[1]} {v:.1f}" for k, v in cell.compile_s.items()))
    parts.append("; ".join(cell.notes))
    return "| " + " | ".join(parts) + " |"


def table(cells: list[Cell], strategies: list[str]) -> str:
    head = ["model", "batch", "onnxruntime ms", "library ms", *(f"mlc {s} ms (x ORT)" for s in strategies),
            "auto chose", "library / mlc auto", "compile s", "notes"]  # fmt: skip
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    return "\n".join([*lines, *(_row(c, strategies) for c in cells)])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m mlc.benchmarks.trees", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--models", nargs="+", default=["rf", "xgb", "lgbm"])
    parser.add_argument("--batches", nargs="+", type=int, default=[1, 1000, 100_000])
    parser.add_argument("--strategies", nargs="+", default=list(STRATEGIES))
    parser.add_argument("--trees", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--min-time", type=float, default=0.2, help="seconds per runner per round")
    parser.add_argument("--gemm-limit-gb", type=float, default=1.0)
    parser.add_argument(
        "--quick", action="store_true", help="100 trees, batches 1 and 1000, 3 rounds"
    )
    parser.add_argument("--json", help="write the results here")
    args = parser.parse_args(argv)
    if args.quick:
        args.trees, args.batches, args.rounds = 100, [1, 1000], 3
    models = make_models(args.models, args.trees)
    print(table([], args.strategies), flush=True)
    # one thread unless the caller chose: for this run only (restored after it, so a
    # caller in the same process, e.g. a test, keeps its own setting)
    with _env({"MLC_NUM_THREADS": os.environ.get("MLC_NUM_THREADS", "1")}):
        cells = run(
            models, args.batches, args.strategies, args.rounds, args.gemm_limit_gb, args.min_time
        )
    if args.json:
        data = {
            "machine": {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count()},
            "settings": vars(args),
            "cells": [c.__dict__ for c in cells],
        }
        with open(args.json, "w") as f:
            json.dump(data, f, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
