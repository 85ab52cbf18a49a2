"""Compile-time benchmark: cold (empty compile cache) and warm (cache hit) `mlc.compile`
of standard CNNs and the benchmark models, next to onnxruntime's session creation for the
same model in the same run, with mlc's per-stage breakdown.

    python -m mlc.benchmarks.compile_time                      # every model
    python -m mlc.benchmarks.compile_time resnet50 densenet121 --stages
    python -m mlc.benchmarks.compile_time --scaling            # lowering vs model length
    MLC_COMPILE_JOBS=1 python -m mlc.benchmarks.compile_time cnn   # one core

`--scaling` lowers chains of 500 to 4000 elementwise ops (graph -> llvm dialect, no LLVM)
and prints the time per op: constant if the pipeline is linear in model length.

Each model is written to an .onnx file and compiled from it twice in a fresh temporary
cache directory (cold, then warm); the outputs of both are checked against onnxruntime
before a time is reported.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from collections.abc import Sequence

import numpy as np

import mlc
from mlc.benchmarks.models import BENCHMARKS
from mlc.benchmarks.zoo import ZOO
from mlc.targets.compiled import lower_model

__all__ = ["chain_model", "main", "measure", "scaling"]

MODELS = {**ZOO, **{k: v for k, v in BENCHMARKS.items() if k in ("cnn", "resnet_block", "mlp")}}


def measure(name: str, small: bool = False) -> dict[str, object]:
    """Cold and warm compile seconds, onnxruntime session seconds and the stage table."""
    import onnxruntime as ort

    case = MODELS[name].make(small=small)
    data = case.model.SerializeToString()
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    start = time.perf_counter()
    session = ort.InferenceSession(data, options, providers=["CPUExecutionProvider"])
    ort_s = time.perf_counter() - start
    feeds = {i.name: x for i, x in zip(session.get_inputs(), case.inputs)}
    (ref,) = session.run(None, feeds)[:1]
    with tempfile.TemporaryDirectory(prefix="mlc-bench-cache-") as cache_dir:
        path = os.path.join(cache_dir, f"{name}.onnx")  # compiled from a file, as users do
        with open(path, "wb") as f:
            f.write(data)
        old = os.environ.get("MLC_CACHE_DIR")
        os.environ["MLC_CACHE_DIR"] = cache_dir
        try:
            start = time.perf_counter()
            cold = mlc.compile(path)
            cold_s = time.perf_counter() - start
            start = time.perf_counter()
            warm = mlc.compile(path)
            warm_s = time.perf_counter() - start
        finally:
            if old is None:
                del os.environ["MLC_CACHE_DIR"]
            else:
                os.environ["MLC_CACHE_DIR"] = old
    for model in (cold, warm):
        (y,) = model(*case.inputs)[:1]
        np.testing.assert_allclose(y, ref, rtol=1e-3, atol=1e-3)
    return {
        "model": name,
        "cold_s": cold_s,
        "warm_s": warm_s,
        "ort_s": ort_s,
        "kernels": cold.object_count - 1,
        "warm_hits": warm.cache_hits,
        "stages": cold.timings.table(f"{name}: cold compile"),
    }


def chain_model(n: int) -> object:
    """An ONNX model of `n` elementwise ops in a chain (Relu, Neg, Abs, Sigmoid, ...) on
    a 4x16 tensor: one long fused kernel."""
    from onnx import TensorProto, helper

    kinds = ["Relu", "Neg", "Abs", "Sigmoid"]
    names = ["x", *(f"t{i}" for i in range(n))]
    nodes = [helper.make_node(kinds[i % 4], [names[i]], [names[i + 1]]) for i in range(n)]
    graph = helper.make_graph(
        nodes,
        "chain",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [4, 16])],
        [helper.make_tensor_value_info(names[-1], TensorProto.FLOAT, [4, 16])],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])


def scaling(lengths: Sequence[int] = (500, 1000, 2000, 4000)) -> list[tuple[int, float]]:
    """(ops, seconds to lower a chain of that many ops to the llvm dialect)."""
    rows = []
    for n in lengths:
        model = chain_model(n)
        start = time.perf_counter()
        lower_model(model)
        rows.append((n, time.perf_counter() - start))
    return rows


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mlc.benchmarks.compile_time")
    parser.add_argument("models", nargs="*", help=f"any of {', '.join(MODELS)} (default: all)")
    parser.add_argument("--small", action="store_true", help="the tiny test variants")
    parser.add_argument("--stages", action="store_true", help="print the per-stage tables")
    parser.add_argument(
        "--scaling", action="store_true", help="lowering time of 500..4000-op chains"
    )
    args = parser.parse_args(argv)
    if args.scaling:
        print(f"{'ops':>6}{'lower s':>10}{'ms/op':>8}")
        for n, seconds in scaling():
            print(f"{n:>6}{seconds:>10.2f}{1000 * seconds / n:>8.2f}")
        return 0
    unknown = [m for m in args.models if m not in MODELS]
    if unknown:
        parser.error(f"unknown model(s) {', '.join(unknown)}; known: {', '.join(MODELS)}")
    rows = [measure(m, args.small) for m in args.models or MODELS]
    print(f"jobs: {os.environ.get('MLC_COMPILE_JOBS', os.cpu_count())}")
    print(
        f"{'model':<14}{'mlc cold s':>11}{'mlc warm s':>11}{'ort session s':>14}"
        f"{'kernels':>9}{'warm hits':>10}"
    )
    for r in rows:
        print(
            f"{r['model']:<14}{r['cold_s']:>11.2f}{r['warm_s']:>11.2f}{r['ort_s']:>14.3f}"
            f"{r['kernels']:>9}{r['warm_hits']:>10}"
        )
    if args.stages:
        for r in rows:
            print()
            print(r["stages"])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
