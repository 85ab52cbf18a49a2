"""The host's measured fp32 FMA peak on one core: the denominator of "% of peak".

Nominal peaks mislead: a Zen 4 core executes AVX-512 FMAs on two 256-bit pipes (32 fp32
FLOP per cycle, about 115 GFLOP/s at 3.6 GHz), half of what a 512-bit-FMA Intel core does.
So the peak is measured: a JIT-compiled loop of `accumulators` independent
`llvm.fma` chains on the widest host vector (enough to cover the FMA latency on every
pipe), timed over a few runs; the best run counts.

    python -m mlc.benchmarks.peak          # prints e.g. "fp32 FMA peak: 114.8 GFLOP/s ..."
"""

from __future__ import annotations

import ctypes
import time

from mlc.targets.cpu import JitEngine, host_features


def fma_loop_ir(lanes: int, accumulators: int) -> str:
    """`float @fma_peak(i64 %n)`: `n` iterations of `accumulators` independent
    `<lanes x float>` FMAs (a * 0.5 + 0.25, which stays finite), summed at the end."""
    vec = f"<{lanes} x float>"

    def splat(x: str) -> str:
        return "<" + ", ".join([f"float {x}"] * lanes) + ">"

    zero, half, quarter = splat("0.0"), splat("0.5"), splat("0.25")
    body = ["  %i = phi i64 [0, %entry], [%i.next, %loop]"]
    body += [f"  %a{j} = phi {vec} [{zero}, %entry], [%b{j}, %loop]" for j in range(accumulators)]
    body += [
        f"  %b{j} = call {vec} @llvm.fma.v{lanes}f32({vec} %a{j}, {vec} {half}, {vec} {quarter})"
        for j in range(accumulators)
    ]
    total = "%b0"
    done = []
    for j in range(1, accumulators):
        done.append(f"  %s{j} = fadd {vec} {total}, %b{j}")
        total = f"%s{j}"
    return "\n".join(
        [
            "define float @fma_peak(i64 %n) {",
            "entry:",
            "  br label %loop",
            "loop:",
            *body,
            "  %i.next = add i64 %i, 1",
            "  %more = icmp ult i64 %i.next, %n",
            "  br i1 %more, label %loop, label %done",
            "done:",
            *done,
            f"  %r = extractelement {vec} {total}, i32 0",
            "  ret float %r",
            "}",
            f"declare {vec} @llvm.fma.v{lanes}f32({vec}, {vec}, {vec})",
        ]
    )


def fp32_peak_gflops(iterations: int = 5_000_000, runs: int = 5, accumulators: int = 24) -> float:
    """The best of `runs` timings of `fma_loop_ir` on the host's widest fp32 vector, in
    GFLOP/s (2 FLOP per lane per FMA)."""
    lanes = max(host_features().vector_width(4), 1)
    engine = JitEngine(opt=2)
    engine.add_module(fma_loop_ir(lanes, accumulators))
    fn = ctypes.CFUNCTYPE(ctypes.c_float, ctypes.c_int64)(engine.function_address("fma_peak"))
    fn(1000)  # warm up: page in the code, lift the clock
    best = float("inf")
    for _ in range(runs):
        start = time.perf_counter()
        fn(iterations)
        best = min(best, time.perf_counter() - start)
    return iterations * accumulators * lanes * 2 / best / 1e9


def main() -> int:
    lanes = host_features().vector_width(4)
    print(f"fp32 FMA peak: {fp32_peak_gflops():.1f} GFLOP/s (1 core, {lanes} lanes)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
