"""The host's measured fp32 FMA peak on one core: the denominator of "% of peak".

Nominal peaks mislead: a Zen 4 core executes AVX-512 FMAs on two 256-bit pipes (32 fp32
FLOP per cycle, about 115 GFLOP/s at 3.6 GHz), half of what a 512-bit-FMA Intel core does.
So the peak is measured: a JIT-compiled loop of `accumulators` independent
`llvm.fma` chains on the widest host vector (enough to cover the FMA latency on every
pipe), timed over a few runs; the best run counts.

    python -m mlc.benchmarks.peak          # prints e.g. "fp32 FMA peak: 114.8 GFLOP/s ..."

The same probe with 512-bit `vpdpbusd` gives the int8 peak (VNNI): on Zen 4 about twice
the fp32 peak, not four times, so int8 can be at most ~2x faster than fp32 there. On AVX2
hosts without VNNI the int8 probe is 256-bit `vpmaddwd` + `vpaddd` (16 i16 multiply-adds
per pair, the exact u8 x s8 path): Zen 3 issues two `vpmaddwd` per cycle, about twice
its fp32 FMA rate.
"""

from __future__ import annotations

import ctypes
import time
from collections.abc import Callable
from typing import Any

from mlc.targets.cpu import JitEngine, host_features


def _splat(element: str, value: str, lanes: int) -> str:
    return "<" + ", ".join([f"{element} {value}"] * lanes) + ">"


def fma_loop_ir(lanes: int, accumulators: int) -> str:
    """`float @fma_peak(i64 %n)`: `n` iterations of `accumulators` independent
    `<lanes x float>` FMAs (a * 0.5 + 0.25, which stays finite), summed at the end."""
    vec = f"<{lanes} x float>"
    half, quarter = _splat("float", "0.5", lanes), _splat("float", "0.25", lanes)
    return _loop_ir(
        "fma_peak",
        "float",
        lanes,
        accumulators,
        lambda a: f"call {vec} @llvm.fma.v{lanes}f32({vec} {a}, {vec} {half}, {vec} {quarter})",
        "fadd",
        f"declare {vec} @llvm.fma.v{lanes}f32({vec}, {vec}, {vec})",
    )


def vpdpbusd_loop_ir(accumulators: int) -> str:
    """`i32 @vnni_peak(i64 %n)`: `n` iterations of `accumulators` independent 512-bit
    `vpdpbusd`s (each 64 u8 x s8 multiply-adds into 16 i32 lanes), summed at the end."""
    vec = "<16 x i32>"
    ones = _splat("i32", "16843009", 16)  # bytes 0x01: each lane gains 4 per step
    name = "@llvm.x86.avx512.vpdpbusd.512"
    return _loop_ir(
        "vnni_peak",
        "i32",
        16,
        accumulators,
        lambda a: f"call {vec} {name}({vec} {a}, {vec} {ones}, {vec} {ones})",
        "add",
        f"declare {vec} {name}({vec}, {vec}, {vec})",
    )


def vpmaddwd_loop_ir(accumulators: int) -> str:
    """`i32 @pmaddwd_peak(i64 %n)`: `n` iterations of `accumulators` independent steps
    `a = vpmaddwd(a as 16 x i16, ones) + 1` on 256-bit vectors (16 i16 multiply-adds into
    8 i32 lanes, then a `vpaddd`: the instruction pair of the AVX2 int8 product), summed
    at the end. Each lane counts the steps (its high half stays 0 below 32768 steps)."""
    vec, pairs = "<8 x i32>", "<16 x i16>"
    ones = _splat("i16", "1", 16)
    one = _splat("i32", "1", 8)
    name = "@llvm.x86.avx2.pmadd.wd"
    return _loop_ir(
        "pmaddwd_peak",
        "i32",
        8,
        accumulators,
        lambda a: [
            f"{a}.w = bitcast {vec} {a} to {pairs}",
            f"{a}.p = call {vec} {name}({pairs} {a}.w, {pairs} {ones})",
            f"add {vec} {a}.p, {one}",
        ],
        "add",
        f"declare {vec} {name}({pairs}, {pairs})",
    )


def _loop_ir(
    name: str,
    element: str,
    lanes: int,
    accumulators: int,
    step: Callable[[str], str | list[str]],
    add: str,
    declare: str,
) -> str:
    """`element @name(i64 %n)`: `n` iterations of `accumulators` independent chains
    `a = step(a)` from zero, summed and lane 0 returned (a step of several instructions
    is a list: the last is the new value's, the others name their own values)."""
    vec = f"<{lanes} x {element}>"
    zero = "zeroinitializer"
    body = ["  %i = phi i64 [0, %entry], [%i.next, %loop]"]
    body += [f"  %a{j} = phi {vec} [{zero}, %entry], [%b{j}, %loop]" for j in range(accumulators)]
    for j in range(accumulators):
        lines = step(f"%a{j}")
        *pre, last = [lines] if isinstance(lines, str) else lines
        body += [f"  {line}" for line in pre] + [f"  %b{j} = {last}"]
    total = "%b0"
    done = []
    for j in range(1, accumulators):
        done.append(f"  %s{j} = {add} {vec} {total}, %b{j}")
        total = f"%s{j}"
    return "\n".join(
        [
            f"define {element} @{name}(i64 %n) {{",
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
            f"  ret {element} %r",
            "}",
            declare,
        ]
    )


def _best_seconds(ir: str, name: str, result: Any, iterations: int, runs: int) -> float:
    engine = JitEngine(opt=2)
    engine.add_module(ir)
    fn = ctypes.CFUNCTYPE(result, ctypes.c_int64)(engine.function_address(name))
    fn(1000)  # warm up: page in the code, lift the clock
    best = float("inf")
    for _ in range(runs):
        start = time.perf_counter()
        fn(iterations)
        best = min(best, time.perf_counter() - start)
    return best


def _accumulators() -> int:
    """Independent chains that fit the vector registers with room to spare: 24 of
    AVX-512's 32, 12 of AVX2's 16 (24 on AVX2 spill to the stack every iteration and
    measured about 45 GFLOP/s instead of 75 on a Zen 3)."""
    return 24 if host_features().avx512f else 12


def fp32_peak_gflops(
    iterations: int = 5_000_000, runs: int = 5, accumulators: int | None = None
) -> float:
    """The best of `runs` timings of `fma_loop_ir` on the host's widest fp32 vector, in
    GFLOP/s (2 FLOP per lane per FMA); `accumulators` defaults to what fits the
    registers (`_accumulators`)."""
    lanes = max(host_features().vector_width(4), 1)
    accumulators = accumulators or _accumulators()
    ir = fma_loop_ir(lanes, accumulators)
    seconds = _best_seconds(ir, "fma_peak", ctypes.c_float, iterations, runs)
    return iterations * accumulators * lanes * 2 / seconds / 1e9


def vnni_peak_gops(
    iterations: int = 5_000_000, runs: int = 5, accumulators: int = 24
) -> float | None:
    """Like `fp32_peak_gflops` for 512-bit `vpdpbusd` (128 int8 ops each); None without
    AVX-512 VNNI."""
    if not host_features().avx512vnni:
        return None
    ir = vpdpbusd_loop_ir(accumulators)
    seconds = _best_seconds(ir, "vnni_peak", ctypes.c_int32, iterations, runs)
    return iterations * accumulators * 128 / seconds / 1e9


def vpmaddwd_peak_gops(
    iterations: int = 5_000_000, runs: int = 5, accumulators: int | None = None
) -> float | None:
    """Like `fp32_peak_gflops` for 256-bit `vpmaddwd` + `vpaddd` (32 int8-equivalent ops
    each: 16 multiply-adds); None without AVX2."""
    if not host_features().avx2:
        return None
    accumulators = accumulators or _accumulators()
    ir = vpmaddwd_loop_ir(accumulators)
    seconds = _best_seconds(ir, "pmaddwd_peak", ctypes.c_int32, iterations, runs)
    return iterations * accumulators * 32 / seconds / 1e9


def main() -> int:
    lanes = host_features().vector_width(4)
    print(f"fp32 FMA peak: {fp32_peak_gflops():.1f} GFLOP/s (1 core, {lanes} lanes)")
    vnni = vnni_peak_gops()
    if vnni is not None:
        print(f"int8 vpdpbusd peak: {vnni:.1f} GOP/s (1 core, 512-bit)")
    pmaddwd = vpmaddwd_peak_gops()
    if pmaddwd is not None:
        print(f"int8 vpmaddwd peak: {pmaddwd:.1f} GOP/s (1 core, 256-bit, exact u8 x s8)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
