"""`mlc.quantize`: post-training quantization of a float ONNX model.

    q = mlc.quantize("model.onnx", calibration_images, calibrator="entropy")
    print(q.report())            # what became integer, what stayed float and why
    q.save("model.int8.onnx")    # QDQ ONNX (onnxruntime runs it too); or "model.mlir"
    y = q.compile()(x)           # integer kernels (graph-fold-qdq), native code

Steps: fold batch norms into convolutions (`prepare`), plan the layers (`plan.plan_layers`), run the model over the calibration data with
every tensor to quantize as an extra output (`calibrate.observe`, native code), pick each
range with the calibrator, derive scales and zero points (`params`), optionally measure
each layer's sensitivity and keep the worst `fallback` layers in float, and write the
QDQ model (`qdq.write_qdq`).
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import onnx

from mlc.parser.onnx import import_onnx
from mlc.quantization.bf16 import write_bf16
from mlc.quantization.calibrate import Batch, batches, observe, runner
from mlc.quantization.calibrators import CALIBRATORS, make_calibrator
from mlc.quantization.params import ACTIVATION_SCHEMES, QuantParams, activation_params
from mlc.quantization.plan import KeptFloat, Layer, LayerPlan, plan_layers
from mlc.quantization.prepare import fold_batch_norms
from mlc.quantization.qdq import with_min_opset, write_qdq
from mlc.registry import make_context
from mlc.targets.compiled import CompiledModel, compile_model
from mlc.transforms.graph.quantize import FoldQdqPass

#: the `activations` scheme that stores weights in bfloat16 and rounds layer inputs to it
BF16 = "bf16"


@dataclass(frozen=True)
class LayerSensitivity:
    """The output error with only this layer quantized: ||y_q - y|| / ||y|| over the
    calibration data."""

    node: str
    op_type: str
    error: float


@dataclass
class QuantizedModel:
    """A quantized model (`model`, QDQ ONNX) and how it was made."""

    model: onnx.ModelProto
    plan: LayerPlan
    activations: dict[str, QuantParams]
    scheme: str
    per_channel: bool
    calibrator: str
    sensitivity: list[LayerSensitivity] = field(default_factory=list)
    fallback: list[str] = field(default_factory=list)

    def compile(self, **options: Any) -> CompiledModel:
        """Native code for the quantized model (`mlc.compile` options)."""
        compiled = compile_model(self.model, **options)
        assert isinstance(compiled, CompiledModel)
        return compiled

    def to_mlir(self, **import_options: Any) -> str:
        """The graph-dialect module with its products folded into integer kernels."""
        module = import_onnx(self.model, **import_options)
        FoldQdqPass().apply(make_context(), module)
        return f"{module}\n"

    def save(self, path: str | Path, **import_options: Any) -> None:
        """Write the model as QDQ ONNX (`.onnx`) or folded graph-dialect IR (`.mlir`)."""
        path = check_output_path(path)
        if path.suffix == ".mlir":
            path.write_text(self.to_mlir(**import_options))
        else:
            onnx.save(self.model, str(path))

    def report(self) -> str:
        """A table of the quantized layers and of the nodes kept in float, with reasons."""
        kind = "per channel" if self.per_channel else "per tensor"
        codes = "bf16" if self.scheme == BF16 else "int8"
        weights = codes if self.scheme == BF16 else f"int8 {kind}"
        lines = [
            f"activations {self.scheme} ({self.calibrator}), weights {weights}: "
            f"{len(self.plan.layers)} layers quantized, {len(self.plan.kept_float)} nodes "
            "kept in float",
        ]
        rows: list[tuple[str, str, str, str]] = []
        for layer in self.plan.layers:
            p = self.activations.get(layer.output)
            where = f"output scale {float(p.scale):.4g} zero point {int(p.zero_point)}" if p else ""
            rows.append((codes, layer.op_type, layer.node, where))
        rows += [("float", k.op_type, k.node, k.reason) for k in self.plan.kept_float]
        op_width = max((len(r[1]) for r in rows), default=0)
        node_width = max((len(r[2]) for r in rows), default=0)
        for kind, op, node, note in rows:
            lines.append(f"  {kind:<6} {op:<{op_width}}  {node:<{node_width}}  {note}")
        if self.sensitivity:
            lines.append("sensitivity (output error with only that layer quantized):")
            for s in self.sensitivity:
                mark = "  (kept in float)" if s.node in self.fallback else ""
                lines.append(f"  {s.node:<24} {s.error:.3e}{mark}")
        return "\n".join(lines)


SAVE_SUFFIXES = (".onnx", ".mlir")


def check_output_path(path: str | Path) -> Path:
    """`path` as a Path when `QuantizedModel.save` can write it (by its suffix)."""
    path = Path(path)
    if path.suffix not in SAVE_SUFFIXES:
        raise ValueError(f"cannot save a quantized model as {path.name}: use .onnx or .mlir")
    return path


def load_model(model: Any) -> onnx.ModelProto:
    if isinstance(model, onnx.ModelProto):
        return model
    if isinstance(model, bytes):
        return onnx.load_from_string(model)
    return onnx.load(str(model))


def _levels(lo: float, scheme: str) -> int:
    """Quantization steps available for |x|: 256 for nonnegative data on the asymmetric
    uint8 grid, else 128."""
    _, symmetric = ACTIVATION_SCHEMES[scheme]
    return 256 if lo >= 0 and not symmetric else 128


def calibrate(
    model: onnx.ModelProto,
    plan: LayerPlan,
    data: Sequence[Batch],
    *,
    calibrator: str,
    scheme: str,
    **options: Any,
) -> dict[str, QuantParams]:
    """Parameters of every tensor `plan` quantizes, from ranges observed over `data`
    (tensors that share their source's parameters get their own too: excluding a layer
    later can leave them without a quantized source)."""
    observed = observe(
        model, plan.quantized_tensors(), data, lambda: make_calibrator(calibrator), **options
    )
    params: dict[str, QuantParams] = {}
    for name, cal in observed.items():
        lo, hi = cal.range(_levels(cal.observed()[0], scheme))
        params[name] = activation_params(lo, hi, scheme)
    return params


def _relative_error(got: Sequence[np.ndarray], want: Sequence[np.ndarray]) -> float:
    num = sum(float(np.sum((g.astype(np.float64) - w) ** 2)) for g, w in zip(got, want))
    den = sum(float(np.sum(w.astype(np.float64) ** 2)) for w in want)
    return float(np.sqrt(num / den)) if den > 0 else float(np.sqrt(num))


def sensitivity(
    model: onnx.ModelProto,
    plan: LayerPlan,
    params: dict[str, QuantParams],
    data: Sequence[Batch],
    *,
    per_channel: bool,
    exclude: Collection[str] = (),
    **options: Any,
) -> list[LayerSensitivity]:
    """Each layer's output error when it alone is quantized, worst first (one compile
    per layer)."""
    reference = runner(model, **options)
    want = [y for batch in data for y in reference(batch)]
    layers = [layer.node for layer in plan.layers]
    out: list[LayerSensitivity] = []
    for layer in plan.layers:
        others = [n for n in layers if n != layer.node]
        alone = plan_layers(model, [*exclude, *others])
        quantized = write_qdq(model, alone, params, per_channel=per_channel)
        run = runner(quantized, **options)
        got = [y for batch in data for y in run(batch)]
        out.append(LayerSensitivity(layer.node, layer.op_type, _relative_error(got, want)))
    return sorted(out, key=lambda s: -s.error)


def quantize(
    model: Any,
    calibration_data: Any,
    *,
    activations: str = "u8",
    per_channel: bool = True,
    calibrator: str = "minmax",
    exclude: Collection[str] = (),
    fallback: int = 0,
    **compile_options: Any,
) -> QuantizedModel:
    """Quantize a float ONNX model (path, bytes or ModelProto) after calibrating it on
    `calibration_data` (input batches, or arrays of samples: `calibrate.batches`).

    `activations`: "u8" (asymmetric uint8, the default), "s8" (symmetric int8), or
    "bf16": the layers' weights stored in bfloat16 and their inputs rounded to it, f32
    products (`quantization.bf16`; nothing is calibrated, `calibration_data` is unused);
    `per_channel`: weight scales per output channel (else per tensor); `calibrator`: one
    of `CALIBRATORS`; `exclude`: node names or op types kept in float; `fallback`: keep
    the `fallback` most sensitive layers in float as well (measured first);
    `compile_options` go to the calibration compiles (`mlc.compile`)."""
    if activations != BF16 and activations not in ACTIVATION_SCHEMES:
        schemes = sorted([*ACTIVATION_SCHEMES, BF16])
        raise ValueError(f"activations must be one of {schemes}")
    if activations != BF16 and calibrator not in CALIBRATORS:
        raise ValueError(f"unknown calibrator {calibrator!r} (known: {', '.join(CALIBRATORS)})")
    model = fold_batch_norms(with_min_opset(load_model(model)))
    if activations == BF16:
        plan = plan_layers(model, exclude)
        return QuantizedModel(write_bf16(model, plan), plan, {}, BF16, False, "none")
    data = batches(model, calibration_data)
    plan = plan_layers(model, exclude)
    params = calibrate(
        model, plan, data, calibrator=calibrator, scheme=activations, **compile_options
    )
    ranking: list[LayerSensitivity] = []
    worst: list[str] = []
    if fallback > 0:
        ranking = sensitivity(
            model, plan, params, data, per_channel=per_channel, exclude=exclude, **compile_options
        )
        worst = [s.node for s in ranking[:fallback]]
        plan = plan_layers(model, [*exclude, *worst])
    quantized = write_qdq(model, plan, params, per_channel=per_channel)
    return QuantizedModel(
        quantized, plan, params, activations, per_channel, calibrator, ranking, worst
    )


__all__ = [
    "BF16",
    "KeptFloat",
    "Layer",
    "LayerSensitivity",
    "QuantizedModel",
    "calibrate",
    "quantize",
    "sensitivity",
]
