"""What runs behind the server: a model with typed inputs and outputs and a batch runner.

    backend = load_backend("model.onnx", batch_sizes=[1, 4, 8])   # mlc: compiled per size
    backend = load_backend("model.so")                             # mlc: an exported library
    backend = load_backend("resnet-1.0.0-py3-none-linux_x86_64.whl")   # mlc package's wheel
    backend = load_backend("model.onnx", engine="onnxruntime")     # for comparison
    outputs = backend.run([x])        # x: n rows (n >= 1 when backend.batched)

An mlc model has static shapes, so the server holds one compiled function per batch size
and runs n rows as chunks of those sizes (`wheel_runtime.plan_chunks`: largest first, a
remainder below every size zero-padded): compiling for sizes 1, 2, 4, ..., max costs
log2(max) + 1 compiles (cached) and wastes no rows. At load each size is timed on zeros
(`NativeBackend.calibrate`) and a batch is split into the sizes that cost least in total: a
larger batch is not always cheaper per row. onnxruntime gets the same model with
its batch dimension made symbolic and runs any batch at once. Both see the same server,
protocol and batching (`deploy.server`, `deploy.batching`).
"""

from __future__ import annotations

import atexit
import shutil
import tempfile
import time
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from mlc.deploy import wheel_runtime
from mlc.deploy.wheel_runtime import BatchFn, TensorSpec, run_in_chunks

__all__ = ["Backend", "BackendError", "NativeBackend", "OnnxRuntimeBackend", "load_backend"]


class BackendError(Exception):
    """A model that cannot be served (one line, for users)."""


class Backend(Protocol):
    """A servable model: specs (a `None` first dimension: batched) and a batch runner."""

    name: str
    platform: str
    inputs: list[TensorSpec]
    outputs: list[TensorSpec]
    batched: bool

    def run(self, inputs: list[np.ndarray]) -> list[np.ndarray]: ...


@dataclass
class NativeBackend:
    """mlc-compiled code: one function per batch size (JIT, shared library or wheel)."""

    name: str
    inputs: list[TensorSpec]
    outputs: list[TensorSpec]
    functions: dict[int, BatchFn]
    batched: bool
    platform: str = "mlc"
    info: dict[str, Any] = field(default_factory=dict)
    #: batch size -> seconds per run (`calibrate`); None: cost proportional to the size
    costs: dict[int, float] | None = None

    def run(self, inputs: list[np.ndarray]) -> list[np.ndarray]:
        if not self.batched:
            return next(iter(self.functions.values()))(inputs)
        return run_in_chunks(self.functions, inputs, self.costs)

    def calibrate(self, repeat: int = 5) -> dict[int, float]:
        """Time one run of each batch size on zeros (the median of `repeat`), so that
        batches are split into the sizes that cost least (a larger batch is not always
        cheaper per row); seconds per run of each size."""
        costs: dict[int, float] = {}
        for size, fn in sorted(self.functions.items()):
            rows = size if self.batched else None
            zeros = [np.zeros(_concrete(s.shape, rows), s.dtype) for s in self.inputs]
            times = []
            for _ in range(repeat + 1):  # (the first run warms up)
                start = time.perf_counter()
                try:
                    fn(zeros)
                except ValueError:  # zeros fail a run-time check of the model: no timings
                    return {}
                times.append(time.perf_counter() - start)
            costs[size] = float(np.median(times[1:]))
        self.costs = costs
        self.info["run_ms"] = {size: round(t * 1e3, 3) for size, t in costs.items()}
        return costs


class OnnxRuntimeBackend:
    """The same ONNX model on onnxruntime (batch dimension made symbolic)."""

    platform = "onnxruntime"

    def __init__(self, path: Path, name: str, threads: int = 1) -> None:
        import onnx
        import onnxruntime as ort

        model = onnx.load(str(path))
        graph = model.graph
        inits = {t.name for t in graph.initializer}
        ins = [i for i in graph.input if i.name not in inits]
        self.batched = all(_leading_dim(v) in (1, "N") for v in (*ins, *graph.output))
        if self.batched:
            for v in (*ins, *graph.output):
                v.type.tensor_type.shape.dim[0].dim_param = "N"
            del graph.value_info[:]  # stale shapes with batch 1
        options = ort.SessionOptions()
        options.intra_op_num_threads = max(threads, 0)
        options.inter_op_num_threads = 1
        self._session = ort.InferenceSession(
            model.SerializeToString(), options, providers=["CPUExecutionProvider"]
        )
        self.name = name
        self.inputs = [_ort_spec(v, self.batched) for v in ins]
        self.outputs = [_ort_spec(v, self.batched) for v in graph.output]
        self._names = [s.name for s in self.inputs]
        self.info = {"threads": threads}

    def run(self, inputs: list[np.ndarray]) -> list[np.ndarray]:
        return list(self._session.run(None, dict(zip(self._names, inputs))))


def _concrete(shape: tuple[int | None, ...], rows: int | None) -> tuple[int, ...]:
    return tuple(rows if d is None else d for d in shape)  # type: ignore[misc]


def _leading_dim(value: Any) -> int | str | None:
    dims = value.type.tensor_type.shape.dim
    if not dims:
        return None
    return dims[0].dim_value if dims[0].HasField("dim_value") else "N"


def _ort_spec(value: Any, batched: bool) -> TensorSpec:
    from onnx import helper

    dtype = np.dtype(helper.tensor_dtype_to_np_dtype(value.type.tensor_type.elem_type))
    dims: list[int | None] = [
        d.dim_value if d.HasField("dim_value") else None for d in value.type.tensor_type.shape.dim
    ]
    if batched:
        dims[0] = None
    elif None in dims:
        raise BackendError(f"{value.name}: a dynamic dimension that is not the batch dimension")
    return TensorSpec(value.name, dtype, tuple(dims))


def _specs(buffers: Sequence[Any], batched: bool) -> list[TensorSpec]:
    return [
        TensorSpec(b.name or f"t{i}", b.dtype, (None, *b.shape[1:]) if batched else tuple(b.shape))
        for i, b in enumerate(buffers)
    ]


def _compiled_batched(models: dict[int, Any]) -> bool:
    return all(
        all(b.shape[:1] == (size,) for b in (*m.inputs, *m.outputs)) for size, m in models.items()
    )


def _from_onnx(path: Path, name: str, batch_sizes: Sequence[int], threads: int) -> NativeBackend:
    from mlc.deploy.wheel import WheelError, _batch_shapes, _model_inputs
    from mlc.targets.compiled import compile_model

    sizes = sorted(set(batch_sizes))
    graph_inputs = _model_inputs(path)
    models: dict[int, Any] = {}
    for size in sizes:
        try:
            shapes = _batch_shapes(graph_inputs, size, {})
        except WheelError as e:
            if len(sizes) > 1:
                raise BackendError(str(e)) from None
            shapes = None
        models[size] = compile_model(str(path), input_shapes=shapes)
        models[size].num_threads = threads
    batched = _compiled_batched(models)
    if len(sizes) > 1 and not batched:
        raise BackendError(f"{path}: no batch dimension; serve it with --batch-sizes 1")
    first = models[sizes[0]]
    return NativeBackend(
        name,
        _specs(first.inputs, batched),
        _specs(first.outputs, batched),
        {size: (lambda arrays, m=m: m(*arrays)) for size, m in models.items()},
        batched,
        info={"batch_sizes": sizes, "threads": threads, "source": "onnx"},
    )


def _from_library(path: Path, name: str, threads: int) -> NativeBackend:
    from mlc.targets.aot import load

    model = load(path)
    model.num_threads = threads
    size = model.inputs[0].shape[0] if model.inputs and model.inputs[0].shape else 1
    batched = _compiled_batched({size: model})
    return NativeBackend(
        name,
        _specs(model.inputs, batched),
        _specs(model.outputs, batched),
        {size: lambda arrays: model(*arrays)},
        batched,
        info={"batch_sizes": [size], "threads": threads, "source": "library"},
    )


def _from_wheel(path: Path, name: str | None, threads: int) -> NativeBackend:
    """A wheel of `mlc package`, unpacked into a temporary directory (not installed) and
    loaded by its runtime's code as this mlc has it."""
    where = Path(tempfile.mkdtemp(prefix="mlc-serve-wheel-"))
    atexit.register(shutil.rmtree, where, True)
    try:
        with zipfile.ZipFile(path) as wheel:
            wheel.extractall(where)  # (zipfile drops absolute paths and '..')
    except (zipfile.BadZipFile, OSError) as e:
        raise BackendError(f"{path}: not a readable wheel ({e})") from None
    found = sorted(where.glob(f"*/{wheel_runtime.METADATA_FILE}"))
    if len(found) != 1:
        raise BackendError(f"{path}: not a wheel built by mlc package (no model metadata)")
    model = wheel_runtime.Model(found[0].parent, num_threads=threads)
    return NativeBackend(
        name or model.name,
        model.input_specs,
        model.output_specs,
        model.batch_functions(),
        model.batched,
        info={"batch_sizes": model.batch_sizes, "threads": threads, "source": "wheel"},
    )


def load_backend(
    path: str | Path,
    *,
    name: str | None = None,
    engine: str = "mlc",
    batch_sizes: Sequence[int] = (1,),
    threads: int = 1,
    calibrate: bool = True,
) -> Backend:
    """The model at `path` (`.onnx`, an mlc `.so`, or an mlc package `.whl`) on `engine`
    ("mlc", or "onnxruntime" for an ONNX model); `batch_sizes` are compiled for an ONNX
    model; `threads` per run (0: the library's default); `calibrate`: time each batch size
    and split batches by those times (`NativeBackend.calibrate`)."""
    path = Path(path)
    if not path.is_file():
        raise BackendError(f"{path}: no such file")
    model_name = name or path.name.split(".")[0].split("-")[0]
    if engine == "onnxruntime":
        if path.suffix != ".onnx":
            raise BackendError(f"{path}: onnxruntime serves ONNX models (.onnx)")
        return OnnxRuntimeBackend(path, model_name, threads)
    if engine != "mlc":
        raise BackendError(f"unknown engine '{engine}': mlc or onnxruntime")
    if path.suffix == ".onnx":
        native = _from_onnx(path, model_name, batch_sizes, threads)
    elif path.suffix == ".whl":
        native = _from_wheel(path, name, threads)
    elif path.suffix in (".so", ".dylib", ".dll"):
        native = _from_library(path, model_name, threads)
    else:
        raise BackendError(f"{path}: serve an ONNX model (.onnx), an mlc library (.so) or a wheel")
    if calibrate and len(native.functions) > 1:
        native.calibrate()
    return native
