"""Where threads pay: the break-even work of a parallel region, measured.

    python -m mlc.benchmarks.threads                   # elementwise and matmul kernels
    python -m mlc.benchmarks.threads --threads 2 --repeat 200

For kernels of growing size (an elementwise `x * y + x` over N floats, and an N x N x N
matmul), each is compiled twice with the default schedule, once with every parallel loop
kept (`min_parallel_work=0`) and once serial, and both are profiled (`CompiledModel.profile`:
native timestamps around the kernel, no Python in the measurement) in alternating rounds.
The table gives the kernel's `block_work` (the unit of `CpuDefaultSchedule.
min_parallel_work`), the serial and parallel medians and their ratio; the smallest work
from which the parallel kernel is faster is what `min_parallel_work` should be on this
machine.
"""

from __future__ import annotations

import argparse
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from xdsl.dialects.builtin import ModuleOp

from mlc.host import host_features
from mlc.parser.mlir import parse_module
from mlc.registry import make_context
from mlc.targets.compiled import compile_model
from mlc.transforms.loops.default_schedule import CpuDefaultSchedule

__all__ = ["Point", "main", "measure"]


@dataclass(frozen=True)
class Point:
    kernel: str
    work: int
    serial_s: float
    parallel_s: float

    @property
    def speedup(self) -> float:
        return self.serial_s / self.parallel_s if self.parallel_s > 0 else float("nan")


def _elementwise(n: int) -> tuple[ModuleOp, list[np.ndarray], int]:
    text = f"""
    func.func @main(%x: tensor<{n}xf32>, %y: tensor<{n}xf32>) -> tensor<{n}xf32> {{
      %p = graph.mul %x, %y : (tensor<{n}xf32>, tensor<{n}xf32>) -> tensor<{n}xf32>
      %s = graph.add %p, %x : (tensor<{n}xf32>, tensor<{n}xf32>) -> tensor<{n}xf32>
      func.return %s : tensor<{n}xf32>
    }}"""
    rng = np.random.default_rng(0)
    inputs = [rng.standard_normal(n).astype(np.float32) for _ in range(2)]
    return parse_module(make_context(), text), inputs, 2 * n


def _matmul(n: int) -> tuple[ModuleOp, list[np.ndarray], int]:
    t = f"tensor<{n}x{n}xf32>"
    text = f"""
    func.func @main(%a: {t}, %b: {t}) -> {t} {{
      %c = graph.matmul %a, %b : ({t}, {t}) -> {t}
      func.return %c : {t}
    }}"""
    rng = np.random.default_rng(0)
    inputs = [rng.standard_normal((n, n)).astype(np.float32) for _ in range(2)]
    return parse_module(make_context(), text), inputs, 2 * n**3


def measure(kind: str, size: int, threads: int = 2, repeat: int = 100, rounds: int = 5) -> Point:
    """Serial vs parallel median kernel time (summed over the model's kernel calls)."""
    module, inputs, work = (_elementwise if kind == "elementwise" else _matmul)(size)
    bits = host_features().vector_bits
    variants = {}
    for name, par in (("serial", False), ("parallel", True)):
        strategy = CpuDefaultSchedule(vector_bits=bits, threads=par, min_parallel_work=0)
        compiled = compile_model(module, schedule=strategy, profile=True, cache=False)
        compiled.num_threads = threads
        variants[name] = compiled
    samples: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(rounds):
        for name, compiled in variants.items():
            prof = compiled.profile(*inputs, repeat=repeat, warmup=2)
            samples[name].append(sum(k.seconds for k in prof.kernels))
    return Point(
        f"{kind} {size}",
        work,
        statistics.median(samples["serial"]),
        statistics.median(samples["parallel"]),
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mlc.benchmarks.threads")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--elementwise", default="1024,4096,16384,65536,262144,1048576")
    parser.add_argument("--matmul", default="8,16,32,48,64,128")
    args = parser.parse_args(argv)
    print(f"| kernel | work | serial µs | {args.threads} threads µs | speedup |")
    print("|---|---:|---:|---:|---:|")
    for kind, sizes in (("elementwise", args.elementwise), ("matmul", args.matmul)):
        for size in (int(s) for s in sizes.split(",") if s):
            p = measure(kind, size, args.threads, args.repeat, args.rounds)
            print(
                f"| {p.kernel} | {p.work} | {p.serial_s * 1e6:.2f} | {p.parallel_s * 1e6:.2f} "
                f"| {p.speedup:.2f} |",
                flush=True,
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
