"""Calibration runs: the model with chosen intermediate tensors as extra outputs, compiled
natively (the interpreter when mlc cannot compile it), run over the calibration batches.

Calibration data is a sequence of input batches, each a dict input name -> array or, for
a one-input model, an array; `batches(model, data)` also accepts one array (or a dict of
arrays) holding many samples and splits it into batches of the model's static batch size.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import onnx
from onnx import helper

from mlc.interpreters import interpret
from mlc.lowering.arith_to_llvm import LlvmLoweringError
from mlc.lowering.graph_to_tl import GraphToTlError
from mlc.parser.onnx import import_onnx
from mlc.quantization.calibrators import Calibrator
from mlc.targets.compiled import compile_model
from mlc.targets.llvm_emit import EmitError

Batch = dict[str, np.ndarray]
Runner = Callable[[Batch], list[np.ndarray]]

log = logging.getLogger(__name__)


def input_names(model: onnx.ModelProto) -> list[str]:
    inits = {init.name for init in model.graph.initializer}
    return [i.name for i in model.graph.input if i.name not in inits]


def _static_batch(model: onnx.ModelProto, name: str) -> int | None:
    for info in model.graph.input:
        if info.name == name:
            dims = info.type.tensor_type.shape.dim
            if dims and dims[0].HasField("dim_value") and dims[0].dim_value > 0:
                return int(dims[0].dim_value)
    return None


def batches(model: onnx.ModelProto, data: Any) -> list[Batch]:
    """The calibration (or evaluation) data as a list of input dicts (see module doc)."""
    names = input_names(model)
    if isinstance(data, np.ndarray) or (
        isinstance(data, Mapping) and all(isinstance(v, np.ndarray) for v in data.values())
    ):
        arrays = {names[0]: data} if isinstance(data, np.ndarray) else dict(data)
        return _split(model, arrays)
    out: list[Batch] = []
    for item in data:
        if isinstance(item, np.ndarray):
            if len(names) != 1:
                raise ValueError(f"the model has {len(names)} inputs: give dicts of arrays")
            out.append({names[0]: item})
        else:
            out.append(dict(item))
    if not out:
        raise ValueError("calibration data is empty")
    return out


def _split(model: onnx.ModelProto, arrays: Mapping[str, np.ndarray]) -> list[Batch]:
    missing = [n for n in input_names(model) if n not in arrays]
    if missing:
        raise ValueError(f"calibration data lacks inputs {missing}")
    first = input_names(model)[0]
    size = _static_batch(model, first)
    n = arrays[first].shape[0]
    if size is None:
        return [dict(arrays)]
    if n % size:
        raise ValueError(
            f"{n} samples of {first!r} do not split into batches of the model's size {size}"
        )
    return [{k: v[i : i + size] for k, v in arrays.items()} for i in range(0, n, size)]


def with_outputs(model: onnx.ModelProto, tensors: Sequence[str]) -> onnx.ModelProto:
    """A copy of `model` that also outputs `tensors` (after its own outputs)."""
    out = onnx.ModelProto()
    out.CopyFrom(model)
    present = {o.name for o in out.graph.output}
    for name in tensors:
        if name not in present:
            out.graph.output.append(
                helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, None)
            )
    return out


def runner(model: onnx.ModelProto, **options: Any) -> Runner:
    """A function running `model` on a batch: native code compiled per distinct input
    shape, or mlc's interpreter when mlc cannot compile the model."""
    names = input_names(model)
    compiled: dict[tuple[tuple[int, ...], ...], Callable[..., Any]] = {}

    def run(batch: Batch) -> list[np.ndarray]:
        arrays = [np.ascontiguousarray(batch[n]) for n in names]
        key = tuple(a.shape for a in arrays)
        if key not in compiled:
            shapes = {n: list(a.shape) for n, a in zip(names, arrays)}
            compiled[key] = _compile_or_interpret(model, shapes, options)
        result = compiled[key](*arrays)
        return list(result) if isinstance(result, list | tuple) else [result]

    return run


def _compile_or_interpret(
    model: onnx.ModelProto, shapes: dict[str, list[int]], options: Mapping[str, Any]
) -> Callable[..., Any]:
    try:
        return compile_model(model, input_shapes=shapes, **options)
    except (GraphToTlError, LlvmLoweringError, EmitError) as e:
        log.warning("mlc cannot compile the model; it runs in the interpreter: %s", e)
        module = import_onnx(model, input_shapes=shapes)
        return lambda *arrays: interpret(module, *arrays)


def observe(
    model: onnx.ModelProto,
    tensors: Sequence[str],
    data: Iterable[Batch],
    make: Callable[[], Calibrator],
    **options: Any,
) -> dict[str, Calibrator]:
    """Run `model` with `tensors` as extra outputs over `data`; one calibrator per tensor
    has seen every batch of it."""
    probe = with_outputs(model, tensors)
    position = {o.name: i for i, o in enumerate(probe.graph.output)}
    run = runner(probe, **options)
    calibrators = {name: make() for name in tensors}
    for batch in data:
        values = run(batch)
        for name, calibrator in calibrators.items():
            calibrator.observe(values[position[name]])
    return calibrators


def run_all(model: onnx.ModelProto, data: Iterable[Batch], **options: Any) -> list[np.ndarray]:
    """The model's first output over every batch, concatenated along the batch axis."""
    run = runner(model, **options)
    return [np.concatenate([run(b)[0] for b in data])]
