"""The tensor-intrinsic benchmark: declared microkernels against the default schedule and
onnxruntime, side by side in one run, and the simulated accelerator's cycle count.

    python -m mlc.benchmarks.intrinsics                  # full size (1024^3)
    python -m mlc.benchmarks.intrinsics --small --repeat 2

Three parts:

- fp32 GEMM 1024^3 (`models.gemm`): mlc's default schedule, mlc with the declared
  `x86.avx512.fma_tile` microkernel (`FmaGemmSchedule`), onnxruntime (1 thread) and numpy;
  GFLOP/s and % of the measured fp32 FMA peak (`benchmarks.peak`).
- int8 GEMM 1024^3, ONNX `MatMulInteger` (u8 activations x s8 weights -> i32): mlc through
  `vpdpbusd` (`VnniGemmSchedule`, AVX-512 VNNI hosts) and through the exact AVX2
  `vpmaddwd` (`Avx2Int8GemmSchedule`, AVX2 hosts without VNNI) against onnxruntime; GOP/s,
  % of the measured int8 peak (`vpdpbusd`, else `vpmaddwd` + `vpaddd`) and the ratio to
  mlc's own fp32 GEMM. A row whose ISA the host lacks is n/a.
- int8 conv, ONNX `ConvInteger` 3x3 64 -> 64 on 56 x 56, pad 1, u8 activations with zero
  point 128 x s8 weights: mlc's default pipeline (im2col patches, the product through
  `vpdpbusd` or `vpmaddwd`, zero-point correction) against its direct one-kernel form,
  onnxruntime, and mlc's fp32 `Conv` of the same shape (the "x mlc fp32" column).
- the simulated accelerator (`lowering.graph_to_accel`): a 3x3 conv layer, 32 -> 64 channels on a
  16 x 16 output, int8: cycles and GEMM-unit utilisation from the simulator's cost model.

Timing is `run.benchmark_case`'s: interleaved rotated rounds, medians, outputs checked
against onnxruntime. Everything runs on one thread (`MLC_NUM_THREADS=1`).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import Any

import numpy as np
from onnx import TensorProto, helper, numpy_helper

from mlc.benchmarks.models import IR_VERSION, OPSET, Case, gemm
from mlc.benchmarks.peak import fp32_peak_gflops, vnni_peak_gops, vpmaddwd_peak_gops
from mlc.benchmarks.run import (
    Result,
    Runner,
    _env,
    benchmark_case,
    mlc_runner,
    numpy_runner,
    ort_runner,
)
from mlc.interpreters.accel import simulate
from mlc.lowering.graph_to_accel import lower_conv2d, program_of
from mlc.targets.cpu import host_features
from mlc.targets.x86 import Avx2Int8GemmSchedule, FmaGemmSchedule, VnniGemmSchedule
from mlc.texpr.library import quant


def weight_range() -> tuple[int, int]:
    """The s8 weights' range `[lo, hi)`: the full range on AVX-512 VNNI hosts; elsewhere
    [-64, 64), because onnxruntime's AVX2 u8 x s8 kernel (`vpmaddubsw`) saturates a pair
    of products to i16 beyond it and the outputs are checked against onnxruntime's (mlc
    is exact either way; the timing does not depend on the values)."""
    return (-128, 128) if host_features().avx512vnni else (-64, 64)


def int8_gemm(m: int = 1024, k: int = 1024, n: int = 1024, seed: int = 0) -> Case:
    """`Y = MatMulInteger(A, B)`: A a u8 [M, K] input, B an s8 [K, N] weight
    (`weight_range`), Y i32."""
    rng = np.random.default_rng(seed)
    b = rng.integers(*weight_range(), (k, n)).astype(np.int8)
    graph = helper.make_graph(
        [helper.make_node("MatMulInteger", ["A", "B"], ["Y"])],
        "int8_gemm",
        [helper.make_tensor_value_info("A", TensorProto.UINT8, [m, k])],
        [helper.make_tensor_value_info("Y", TensorProto.INT32, [m, n])],
        [numpy_helper.from_array(b, "B")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    model.ir_version = IR_VERSION
    a = rng.integers(0, 256, (m, k)).astype(np.uint8)

    def numpy_fn(x: np.ndarray) -> list[np.ndarray]:
        return [x.astype(np.int32) @ b.astype(np.int32)]

    return Case("gemm_int8", model, [a], numpy_fn, 2 * m * k * n, f"{m}x{k}x{n} u8*s8")


def int8_conv(size: int = 56, channels: int = 64, seed: int = 0) -> Case:
    """`Y = ConvInteger(X, W, zx=128)`: X a u8 [1, C, S, S] input, W an s8 [C, C, 3, 3]
    weight (`weight_range`), pad 1, Y i32 [1, C, S, S]."""
    rng = np.random.default_rng(seed)
    c, s = channels, size
    w = rng.integers(*weight_range(), (c, c, 3, 3)).astype(np.int8)
    zx = np.array(128, np.uint8)
    graph = helper.make_graph(
        [helper.make_node("ConvInteger", ["X", "W", "zx"], ["Y"], pads=[1, 1, 1, 1])],
        "int8_conv",
        [helper.make_tensor_value_info("X", TensorProto.UINT8, [1, c, s, s])],
        [helper.make_tensor_value_info("Y", TensorProto.INT32, [1, c, s, s])],
        [numpy_helper.from_array(w, "W"), numpy_helper.from_array(zx, "zx")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    model.ir_version = IR_VERSION
    x = rng.integers(0, 256, (1, c, s, s)).astype(np.uint8)
    return Case("conv_int8", model, [x], None, 2 * c * c * 9 * s * s, f"1x{c}x{s}x{s} u8*s8")


def fp32_conv(size: int = 56, channels: int = 64, seed: int = 0) -> Case:
    """`Y = Conv(X, W)`, fp32, the shape of `int8_conv` (3x3, pad 1, no bias): the float
    baseline the int8 convolution is compared with."""
    rng = np.random.default_rng(seed)
    c, s = channels, size
    w = (rng.standard_normal((c, c, 3, 3)) / np.sqrt(9 * c)).astype(np.float32)
    graph = helper.make_graph(
        [helper.make_node("Conv", ["X", "W"], ["Y"], pads=[1, 1, 1, 1])],
        "fp32_conv",
        [helper.make_tensor_value_info("X", TensorProto.FLOAT, [1, c, s, s])],
        [helper.make_tensor_value_info("Y", TensorProto.FLOAT, [1, c, s, s])],
        [numpy_helper.from_array(w, "W")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    model.ir_version = IR_VERSION
    x = rng.standard_normal((1, c, s, s)).astype(np.float32)
    return Case("conv_fp32", model, [x], None, 2 * c * c * 9 * s * s, f"1x{c}x{s}x{s} f32")


def int8_conv_runners() -> list[Runner]:
    """mlc's default pipeline, mlc with the direct conv_integer kernel, onnxruntime."""
    return [
        mlc_runner("mlc", "mlc default (im2col, int8 product)", 1),
        _direct_conv_runner(),
        ort_runner(1),
    ]


def _direct_conv_runner() -> Runner:
    """mlc with the im2col form off (`quant.IM2COL_MAX_BYTES = 0` while it compiles;
    without the compile cache, whose model key does not see that setting: a warm cache
    would return the im2col model compiled by the default runner)."""
    base = mlc_runner("mlc_direct", "mlc direct conv kernel", 1, {"cache": False})

    def prepare(case: Case) -> Any:
        saved, quant.IM2COL_MAX_BYTES = quant.IM2COL_MAX_BYTES, 0
        try:
            return base.prepare(case)
        finally:
            quant.IM2COL_MAX_BYTES = saved

    return Runner(base.name, base.label, prepare, base.env)


def fp32_runners() -> list[Runner]:
    return [
        mlc_runner("mlc", "mlc default", 1),
        mlc_runner("mlc_fma", "mlc fma_tile", 1, {"schedule": FmaGemmSchedule()}),
        ort_runner(1),
        numpy_runner(1),
    ]


def int8_runners() -> list[Runner]:
    """mlc through the host's int8 instruction (`vpdpbusd`, else AVX2 `vpmaddwd`) and
    onnxruntime's MatMulInteger."""
    runners = [ort_runner(1)]
    host = host_features()
    if host.avx512vnni:
        runners.insert(
            0, mlc_runner("mlc_vnni", "mlc vpdpbusd", 1, {"schedule": VnniGemmSchedule()})
        )
    elif host.avx2:
        schedule = Avx2Int8GemmSchedule()
        runners.insert(0, mlc_runner("mlc_avx2", "mlc vpmaddwd", 1, {"schedule": schedule}))
    return runners


def fp32_conv_runners() -> list[Runner]:
    """mlc's default pipeline on the fp32 conv."""
    return [mlc_runner("mlc", "mlc default fp32 conv", 1)]


def accel_conv_report() -> Any:
    """Simulate the accelerator's 3x3 conv layer on random int8 data; the `Report`."""
    rng = np.random.default_rng(0)
    shape, m = (1, 18, 18, 32), 64
    x = rng.integers(-128, 128, shape).astype(np.int8)
    w = rng.integers(-128, 128, (3 * 3 * 32, m)).astype(np.int8)
    bias = rng.integers(-20000, 20000, (m,)).astype(np.int32)
    _, report = simulate(
        program_of(lower_conv2d(shape, (3, 3), m, shift=8, relu=True)), [x, w, bias]
    )
    return report


def _ms(result: Result, runner: str) -> str:
    ms = result.median_ms(runner)
    return "n/a" if ms is None else f"{ms:.3f}"


def _rate(result: Result, runner: str) -> float | None:
    return result.gflops(runner)


def _fmt(x: float | None, spec: str = "{:.1f}") -> str:
    return "n/a" if x is None else spec.format(x)


def _check(result: Result, runner: str) -> str:
    m = result.measurements.get(runner)
    if m is None or m.error:
        return f"error: {m.error}" if m is not None else "n/a"
    return "ok" if m.ok else ("n/a" if m.ok is None else "WRONG")


def report(
    fp32: Result,
    int8: Result,
    conv: Result,
    peak: float,
    int8_peak: float | None,
    accel: Any,
    conv_fp32: Result | None = None,
) -> str:
    """The markdown tables of one run (`int8_peak`: the host's int8 instruction's)."""
    lines = [
        f"fp32 FMA peak, 1 core (measured): {peak:.1f} GFLOP/s; "
        f"int8 peak ({_int8_instruction()}): {_fmt(int8_peak)} GOP/s",
        "",
        "| fp32 GEMM " + fp32.shape + " | ms | GFLOP/s | % of peak | / ORT time | check |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    ort = fp32.median_ms("ort1")
    for name, label in (
        ("mlc", "mlc default schedule"),
        ("mlc_fma", "mlc fma_tile microkernel"),
        ("ort1", "onnxruntime 1 thread"),
        ("numpy", "numpy (OpenBLAS, 1 thread)"),
    ):
        rate, ms = _rate(fp32, name), fp32.median_ms(name)
        ratio = ms / ort if ms is not None and ort else None
        pct = 100 * rate / peak if rate is not None else None
        lines.append(
            f"| {label} | {_ms(fp32, name)} | {_fmt(rate)} | {_fmt(pct, '{:.0f}%')} | "
            f"{_fmt(ratio, '{:.2f}')} | {_check(fp32, name)} |"
        )
    best_fp32 = max((r for r in (_rate(fp32, "mlc"), _rate(fp32, "mlc_fma")) if r), default=None)
    ort_rate = _rate(int8, "ort1")
    lines += [
        "",
        "| int8 GEMM " + int8.shape + " | ms | GOP/s | % of peak | x ORT throughput | x mlc fp32 "
        "| check |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for name, label in (
        ("mlc_vnni", "mlc vpdpbusd"),
        ("mlc_avx2", "mlc vpmaddwd (AVX2)"),
        ("ort1", "onnxruntime MatMulInteger 1t"),
    ):
        rate = _rate(int8, name)
        vs_ort = rate / ort_rate if rate is not None and ort_rate else None
        vs_fp32 = rate / best_fp32 if rate is not None and best_fp32 else None
        pct = 100 * rate / int8_peak if rate is not None and int8_peak else None
        lines.append(
            f"| {label} | {_ms(int8, name)} | {_fmt(rate)} | {_fmt(pct, '{:.0f}%')} | "
            f"{_fmt(vs_ort, '{:.2f}')} | "
            f"{_fmt(vs_fp32, '{:.2f}')} | {_check(int8, name)} |"
        )
    lines += [
        "",
        "| int8 conv "
        + conv.shape
        + " 3x3 pad 1, zx 128 | ms | GOP/s | x ORT throughput | x mlc fp32 | check |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    conv_ort = _rate(conv, "ort1")
    fp32_conv_rate = _rate(conv_fp32, "mlc") if conv_fp32 is not None else None
    for name, label in (
        ("mlc", f"mlc default (im2col, {_int8_instruction()})"),
        ("mlc_direct", "mlc direct conv kernel"),
        ("ort1", "onnxruntime ConvInteger 1t"),
    ):
        rate = _rate(conv, name)
        vs_ort = rate / conv_ort if rate is not None and conv_ort else None
        vs_fp32 = rate / fp32_conv_rate if rate is not None and fp32_conv_rate else None
        lines.append(
            f"| {label} | {_ms(conv, name)} | {_fmt(rate)} | {_fmt(vs_ort, '{:.2f}')} | "
            f"{_fmt(vs_fp32, '{:.2f}')} | {_check(conv, name)} |"
        )
    if conv_fp32 is not None:
        lines.append(
            f"| mlc fp32 Conv, same shape | {_ms(conv_fp32, 'mlc')} | "
            f"{_fmt(fp32_conv_rate)} | n/a | 1.00 | {_check(conv_fp32, 'mlc')} |"
        )
    lines += [
        "",
        "| accelerator conv 1x18x18x32 * 3x3x32x64, int8 | cycles | GEMM busy | utilisation |",
        "| --- | --- | --- | --- |",
        f"| simulated (`lowering.graph_to_accel`) | {accel.cycles} | {accel.gemm_busy} | "
        f"{accel.utilization:.1%} |",
    ]
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m mlc.benchmarks.intrinsics", description=__doc__)
    p.add_argument("--small", action="store_true", help="64^3 GEMMs (a smoke test)")
    p.add_argument("--repeat", type=int, default=15, help="timed samples per runner (max)")
    p.add_argument("--budget-s", type=float, default=60.0, help="time budget per GEMM")
    p.add_argument("--markdown", help="also write the tables to this file")
    args = p.parse_args(argv)
    size = 64 if args.small else 1024
    timing = {"repeat": args.repeat, "warmup": 2, "budget_s": args.budget_s}
    with _one_thread():
        iterations = 200_000 if args.small else 5_000_000
        peak = fp32_peak_gflops(iterations=iterations)
        int8_peak = vnni_peak_gops(iterations=iterations)
        if int8_peak is None:
            int8_peak = vpmaddwd_peak_gops(iterations=iterations)
        fp32 = benchmark_case(gemm(size, size, size), fp32_runners(), **timing)
        int8 = benchmark_case(int8_gemm(size, size, size), int8_runners(), **timing)
        conv_shape = (8, 16) if args.small else (56, 64)
        conv = benchmark_case(int8_conv(*conv_shape), int8_conv_runners(), **timing)
        conv_fp32 = benchmark_case(fp32_conv(*conv_shape), fp32_conv_runners(), **timing)
    text = report(fp32, int8, conv, peak, int8_peak, accel_conv_report(), conv_fp32)
    print(text, end="")
    if args.markdown:
        from pathlib import Path

        Path(args.markdown).write_text(text)
    results = (fp32, int8, conv, conv_fp32)
    failed = any(m.error or m.ok is False for r in results for m in r.measurements.values())
    return 1 if failed else 0


def _int8_instruction() -> str:
    """The instruction mlc's int8 products use on this host."""
    host = host_features()
    return "vpdpbusd" if host.avx512vnni else ("vpmaddwd" if host.avx2 else "none")


def _one_thread() -> Any:
    return _env({"MLC_NUM_THREADS": "1"})


if __name__ == "__main__":
    sys.exit(main())
