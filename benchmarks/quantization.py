"""Post-training quantization benchmark: accuracy, latency and size of quantized models.

    python -m mlc.benchmarks.quantization [--repeat 30] [--plot pareto.png] [--no-large]

Trains (once, cached: `benchmarks.digits`) an MLP and a small CNN on scikit-learn's
digits, calibrates on 256 training images, and for each variant reports test accuracy,
the median latency at batch 1 and 64 (runners timed in interleaved rounds, 1 thread),
and the serialized model size:

- mlc fp32; mlc bf16 (weights stored in bfloat16, layer inputs rounded to it, f32
  products); mlc int8 per tensor (minmax); mlc int8 per channel with each calibrator;
  mixed precision (the most sensitive layer kept in float);
- onnxruntime fp32; onnxruntime running mlc's bf16 model and its int8 model (the same
  files); the model
  quantized by `onnxruntime.quantization.quantize_static` (QDQ, per channel, minmax, the
  same calibration images) in onnxruntime.

Then a ResNet basic block (1x64x56x56, random weights) fp32 against int8, mlc and
onnxruntime. `--plot` writes accuracy against batch-64 latency (matplotlib).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx

import mlc
from mlc.benchmarks.digits import (
    DigitsSplit,
    accuracy,
    flatten,
    load_digits_split,
    mlc_runner,
    model_path,
    ort_runner,
)
from mlc.benchmarks.models import resnet_basic_block
from mlc.quantization import quantize

Runner = Callable[[np.ndarray], np.ndarray]
CALIBRATION_IMAGES = 256
BATCHES = (1, 64)


@dataclass
class Variant:
    model: str
    name: str
    engine: str
    onnx_model: onnx.ModelProto
    runners: dict[int, Runner]
    accuracy: float = float("nan")
    latency_ms: dict[int, float] | None = None

    @property
    def size_kib(self) -> float:
        return len(self.onnx_model.SerializeToString()) / 1024


def _ort_quantized(model: onnx.ModelProto, calibration: np.ndarray) -> onnx.ModelProto:
    from onnxruntime.quantization import (
        CalibrationDataReader,
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )

    class Reader(CalibrationDataReader):  # type: ignore[misc]
        def __init__(self) -> None:
            self.batches = iter([{"x": calibration}])

        def get_next(self) -> dict[str, np.ndarray] | None:
            return next(self.batches, None)

    with tempfile.TemporaryDirectory() as tmp:
        src, dst = Path(tmp) / "f.onnx", Path(tmp) / "q.onnx"
        onnx.save(model, str(src))
        quantize_static(
            str(src),
            str(dst),
            Reader(),
            quant_format=QuantFormat.QDQ,
            per_channel=True,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            calibrate_method=CalibrationMethod.MinMax,
        )
        return onnx.load(str(dst))


def _mlc_runners(model: onnx.ModelProto) -> dict[int, Runner]:
    return {b: mlc_runner(model, b) for b in BATCHES}


def _ort_runners(model: onnx.ModelProto) -> dict[int, Runner]:
    run = ort_runner(model)
    return dict.fromkeys(BATCHES, run)


def variants(kind: str, split: DigitsSplit) -> list[Variant]:
    model = onnx.load(str(model_path(kind, split=split)))
    images = split.x_train[:CALIBRATION_IMAGES]
    calibration = flatten(images) if kind == "mlp" else images
    out = [Variant(kind, "fp32", "mlc", model, _mlc_runners(model))]
    quantized = {
        "bf16 weights and layer inputs": quantize(model, calibration, activations="bf16"),
        "int8 per tensor minmax": quantize(model, calibration, per_channel=False),
        **{
            f"int8 per channel {c}": quantize(model, calibration, calibrator=c)
            for c in ("minmax", "percentile", "entropy", "mse")
        },
        "mixed (1 layer float)": quantize(model, calibration, fallback=1),
    }
    for name, q in quantized.items():
        out.append(Variant(kind, name, "mlc", q.model, _mlc_runners(q.model)))
    out.append(Variant(kind, "fp32", "onnxruntime", model, _ort_runners(model)))
    bf16 = quantized["bf16 weights and layer inputs"].model
    out.append(
        Variant(kind, "bf16 weights and layer inputs", "onnxruntime", bf16, _ort_runners(bf16))
    )
    same = quantized["int8 per channel minmax"].model
    out.append(
        Variant(kind, "mlc's int8 per channel minmax", "onnxruntime", same, _ort_runners(same))
    )
    theirs = _ort_quantized(model, calibration)
    out.append(
        Variant(
            kind, "quantize_static per channel minmax", "onnxruntime", theirs, _ort_runners(theirs)
        )
    )
    return out


def measure(items: list[Variant], split: DigitsSplit, repeat: int) -> None:
    """Accuracy per variant, then latency in interleaved rounds (median per batch)."""
    for v in items:
        v.accuracy = accuracy(v.runners[64], split, flat=v.model == "mlp", batch=64)
    rng = np.random.default_rng(0)
    inputs = {}
    for v in items:
        for b in BATCHES:
            shape = (b, 64) if v.model == "mlp" else (b, 1, 8, 8)
            inputs.setdefault((v.model, b), rng.random(shape, dtype=np.float32))
    times: dict[tuple[int, int], list[float]] = {}
    for _ in range(repeat):
        for i, v in enumerate(items):
            for b in BATCHES:
                x = inputs[(v.model, b)]
                start = time.perf_counter()
                v.runners[b](x)
                times.setdefault((i, b), []).append(time.perf_counter() - start)
    for i, v in enumerate(items):
        v.latency_ms = {b: float(np.median(times[(i, b)])) * 1e3 for b in BATCHES}


def table(items: list[Variant]) -> str:
    rows = [
        "| model | variant | engine | test accuracy % | batch 1 ms | batch 64 ms | size KiB |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for v in items:
        assert v.latency_ms is not None
        rows.append(
            f"| {v.model} | {v.name} | {v.engine} | {100 * v.accuracy:.2f} | "
            f"{v.latency_ms[1]:.3f} | {v.latency_ms[64]:.3f} | {v.size_kib:.1f} |"
        )
    return "\n".join(rows)


def large_cnn(repeat: int) -> str:
    """A ResNet basic block, fp32 against int8 (calibrated on 8 random inputs)."""
    case = resnet_basic_block()
    x = case.inputs[0]
    rng = np.random.default_rng(5)
    calibration = [rng.standard_normal(x.shape).astype(np.float32) for _ in range(8)]
    q = quantize(case.model, calibration)
    runners = {
        "mlc fp32": mlc.compile(case.model),
        "mlc int8": q.compile(),
        "onnxruntime fp32": ort_runner(_renamed(case.model)),
        "onnxruntime int8 (the same QDQ model)": ort_runner(_renamed(q.model)),
    }
    times: dict[str, list[float]] = {k: [] for k in runners}
    for _ in range(repeat):
        for name, run in runners.items():
            start = time.perf_counter()
            run(x)
            times[name].append(time.perf_counter() - start)
    want = _first(runners["mlc fp32"](x))
    got = _first(runners["mlc int8"](x))
    error = float(np.linalg.norm(got - want) / np.linalg.norm(want))
    base = float(np.median(times["mlc fp32"]))
    rows = ["| ResNet block 1x64x56x56 | median ms | x mlc fp32 |", "| --- | --- | --- |"]
    for name, ts in times.items():
        rows.append(f"| {name} | {np.median(ts) * 1e3:.3f} | {np.median(ts) / base:.2f} |")
    rows.append(f"\nint8 output error relative to fp32 (L2): {error:.4f}")
    return "\n".join(rows)


def _first(result: object) -> np.ndarray:
    return np.asarray(result[0] if isinstance(result, list | tuple) else result)


def _renamed(model: onnx.ModelProto) -> onnx.ModelProto:
    """The model with its output named "logits" (what `ort_runner` fetches)."""
    out = onnx.ModelProto()
    out.CopyFrom(model)
    old = out.graph.output[0].name
    for node in out.graph.node:
        for i, name in enumerate(node.output):
            if name == old:
                node.output[i] = "logits"
        for i, name in enumerate(node.input):
            if name == old:
                node.input[i] = "logits"
    out.graph.output[0].name = "logits"
    return out


def plot(items: list[Variant], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(13, 6.5))
    for ax, kind in zip(axes, ("mlp", "cnn")):
        for v in (v for v in items if v.model == kind):
            assert v.latency_ms is not None
            marker = "o" if v.engine == "mlc" else "s"
            ax.scatter(
                v.latency_ms[64], 100 * v.accuracy, marker=marker, label=f"{v.name} ({v.engine})"
            )
        ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.12), ncol=2)
        ax.set_title(f"digits {kind}: accuracy vs latency (batch 64, 1 thread)")
        ax.set_xlabel("median latency, ms")
        ax.set_ylabel("test accuracy, %")
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=30, help="timed rounds (30)")
    parser.add_argument("--plot", type=Path, help="write the Pareto plot (PNG) here")
    parser.add_argument("--no-large", action="store_true", help="skip the ResNet block")
    args = parser.parse_args(argv)
    split = load_digits_split()
    items = [v for kind in ("mlp", "cnn") for v in variants(kind, split)]
    measure(items, split, args.repeat)
    print(table(items))
    if args.plot:
        plot(items, args.plot)
        print(f"\nwrote {args.plot}")
    if not args.no_large:
        print()
        print(large_cnn(args.repeat))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
