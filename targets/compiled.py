"""`compile_model(...) -> CompiledModel`: a model JIT-compiled for the host CPU.

    model = compile_model("examples/mlp.onnx")    # or a graph / tl-level ModuleOp
    (y,) = model(x)                               # numpy in, numpy out
    model.export("mlp.so")                        # + mlp.h; mlc.load("mlp.so") calls it again

Pipeline: `mlc-cpu-pipeline` (`targets.pipeline`: graph passes, graph -> tl, fusion,
default schedules, tl -> llvm dialect), then `targets.llvm_emit`, LLVM O3 and MCJIT
(`targets.cpu`).

Calling convention (see `lowering/tl_to_llvm.py`): one pointer per memref argument, then
one per memref result. Every input is checked (count, shape, dtype, C-contiguity) before
native code runs; a bad input raises `InvalidInputError` naming the input. An input whose
data is not 16-byte aligned (`ARGUMENT_ALIGNMENT`: numpy's own arrays are) is copied into
an aligned buffer, so the `align 16` promise holds; inputs are only read, so one array may
be passed twice. Results are allocated 64-byte aligned, one block for all of them.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import gc
import io
import json
import math
import os
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from llvmlite import binding as llvm_binding
from xdsl.dialects import func, llvm
from xdsl.dialects.builtin import (
    DenseIntOrFPElementsAttr,
    IntegerAttr,
    MemRefType,
    ModuleOp,
    TensorType,
)
from xdsl.ir import Attribute
from xdsl.printer import Printer

from mlc.dialects.graph.types import UnsupportedTypeError
from mlc.dialects.graph.types import numpy_dtype as tensor_numpy_dtype
from mlc.dialects.tl import RuntimeCheckError
from mlc.interpreters import ResultLabels, ZipMapKeys, apply_labels, result_labels
from mlc.interpreters.tl.buffers import numpy_dtype
from mlc.lowering.llvm_profile import TICKS_GLOBAL
from mlc.lowering.tl_check_to_llvm import MESSAGES_GLOBAL, OUT_OF_MEMORY, STATUS_GLOBAL
from mlc.lowering.tl_parallel_to_llvm import NUM_THREADS_GLOBAL
from mlc.lowering.tl_to_llvm import (
    ALIGNMENT,
    ARGUMENT_ALIGNMENT,
    INTERMEDIATE_BYTES,
    WORKSPACE_BYTES,
)
from mlc.parser.estimators import is_estimator
from mlc.parser.onnx import import_onnx
from mlc.parser.onnx.errors import DynamicShapeError
from mlc.targets.compile_cache import CompileCache
from mlc.targets.cpu import JitEngine, optimize, target_machine
from mlc.targets.llvm_emit import content_address_constants, emit_module
from mlc.targets.model_cache import (
    ModelRecord,
    buffer_from_json,
    buffer_json,
    load_model,
    model_key,
    save_model,
)
from mlc.targets.threads import AutoThreads
from mlc.targets.timings import Timings

if TYPE_CHECKING:
    from mlc.targets.aot import ExportedLibrary
    from mlc.targets.codegen import Part
    from mlc.targets.pipeline import MlcCpuPipelinePass
    from mlc.targets.profile import Profile
    from mlc.targets.rowwise import RowwiseModel

# The pipeline and code generation (`targets.pipeline`, `targets.codegen`) are imported
# where a model is compiled cold: a warm compile (the model cache) needs neither, nor the
# passes and interpreters behind them.

__all__ = [
    "BufferSpec",
    "CompiledModel",
    "InvalidInputError",
    "LoweredModel",
    "NativeFunction",
    "aligned_empty",
    "compile_model",
    "cpu_pipeline",
    "lower_model",
]


class InvalidInputError(ValueError):
    """An input that does not match the compiled function's signature."""


@dataclass(frozen=True)
class BufferSpec:
    """Shape and numpy dtype of one memref argument or result (and its `mlc.name`, if any:
    the ONNX input / output name; and `labels`: the strings an index result stands for,
    its `mlc.labels`, or the `ZipMapKeys` of a ZipMap result; neither is part of
    equality)."""

    shape: tuple[int, ...]
    dtype: np.dtype
    name: str = field(default="", compare=False)
    labels: ResultLabels = field(default=None, compare=False)

    @staticmethod
    def of(ty: MemRefType, name: str = "") -> BufferSpec:
        return BufferSpec(tuple(ty.get_shape()), numpy_dtype(ty.element_type), name)

    def __str__(self) -> str:
        return f"{self.dtype}{list(self.shape)}"


def data_address(a: np.ndarray) -> int:
    """The address of `a`'s data. (Through ctypes' buffer protocol: a quarter of the time
    of `__array_interface__` or `.ctypes.data`, which matters for models that run in
    microseconds; read-only arrays take the slow way.)"""
    try:
        return ctypes.addressof(ctypes.c_char.from_buffer(a))
    except (TypeError, ValueError, BufferError):
        return int(a.__array_interface__["data"][0])


def aligned_empty(shape: Sequence[int], dtype: np.dtype, alignment: int = ALIGNMENT) -> np.ndarray:
    """An uninitialized C-contiguous array whose data is `alignment`-byte aligned."""
    n = math.prod(shape) * dtype.itemsize
    raw = np.empty(n + alignment, np.uint8)
    offset = -data_address(raw) % alignment
    return raw[offset : offset + n].view(dtype).reshape(tuple(shape))


class NativeFunction:
    """A native function over numpy arrays at `address` (the ABI of `lowering/tl_to_llvm`):
    validation, aligned copies and the call. `CompiledModel` (JIT) and
    `mlc.targets.aot.LoadedModel` (a shared library) are the two kinds."""

    def __init__(
        self,
        name: str,
        inputs: Sequence[BufferSpec],
        outputs: Sequence[BufferSpec],
        address: int,
    ) -> None:
        self.name = name
        self.inputs = list(inputs)
        self.outputs = list(outputs)
        self._labels = [s.labels for s in self.outputs]
        self._labelled = any(labels is not None for labels in self._labels)
        # the results of a call share one allocation: (offset, bytes, dtype, shape) each
        self._result_layout: list[tuple[int, int, np.dtype, tuple[int, ...]]] = []
        offset = 0
        for spec in self.outputs:
            size = math.prod(spec.shape) * spec.dtype.itemsize
            self._result_layout.append((offset, size, spec.dtype, tuple(spec.shape)))
            offset += -(-max(size, 1) // ALIGNMENT) * ALIGNMENT
        self._result_bytes = offset
        n = len(self.inputs) + len(self.outputs)
        # the entry returns a status: 0, or the number of a failure (`check_messages`)
        proto = ctypes.CFUNCTYPE(ctypes.c_int64, *([ctypes.c_void_p] * n))
        self._fn = proto(address)
        self._set_threads = None
        self._auto: AutoThreads | None = None
        self._fixed_threads = 1
        self._status: ctypes.c_int64 | None = None
        self._status_lock = threading.Lock()
        #: what each failed run-time check (`tl.check`) means: status k is messages[k - 1]
        self.check_messages: list[str] = []

    def check_inputs(self, arrays: Sequence[Any]) -> list[np.ndarray]:
        """The inputs as arrays, or `InvalidInputError` naming the first bad one."""
        if len(arrays) != len(self.inputs):
            raise InvalidInputError(
                f"@{self.name} takes {len(self.inputs)} inputs "
                f"({', '.join(map(str, self.inputs))}), got {len(arrays)}"
            )
        checked = []
        for i, (a, spec) in enumerate(zip(arrays, self.inputs)):
            if not isinstance(a, np.ndarray):
                raise InvalidInputError(
                    f"input #{i} of @{self.name} must be a numpy array ({spec}), got "
                    f"{type(a).__name__}"
                )
            if a.dtype != spec.dtype:
                raise InvalidInputError(
                    f"input #{i} of @{self.name} must have dtype {spec.dtype}, got {a.dtype}"
                )
            if tuple(a.shape) != spec.shape:
                raise InvalidInputError(
                    f"input #{i} of @{self.name} must have shape {list(spec.shape)}, got "
                    f"{list(a.shape)}"
                )
            if not a.flags.c_contiguous:
                raise InvalidInputError(
                    f"input #{i} of @{self.name} is not C-contiguous; pass np.ascontiguousarray(x)"
                )
            checked.append(a)
        return checked

    def run_buffers(self, *arrays: np.ndarray) -> list[np.ndarray]:
        """Call on copies of `arrays`; return every argument buffer's final contents, then
        the results (as `mlc.interpreters.tl.run_buffers` does)."""
        args = []
        for a in self.check_inputs(arrays):
            buf = aligned_empty(a.shape, a.dtype)
            buf[...] = a
            args.append(buf)
        results = [aligned_empty(s.shape, s.dtype) for s in self.outputs]
        self._call_native([b.ctypes.data for b in (*args, *results)])
        return [*args, *results]

    # -- threads ------------------------------------------------------------------------

    def _init_threads(self, set_threads: Callable[[int], None]) -> None:
        """The model has parallel loops; `set_threads(n)` sets their thread count in
        native code. Starts from `MLC_NUM_THREADS`, else auto."""
        self._set_threads: Callable[[int], None] | None = set_threads
        env = os.environ.get("MLC_NUM_THREADS", "").strip()
        self.num_threads = int(env) if env.isdigit() else 0

    @property
    def num_threads(self) -> int:
        """Threads for parallel loops: 0 is "auto" (`targets.threads.AutoThreads`: one
        thread or all cores, whichever the last calls found faster); always 1 for a model
        without parallel loops (setting it does nothing). Starts from the
        `MLC_NUM_THREADS` environment variable."""
        if self._set_threads is None:
            return 1
        return 0 if self._auto is not None else self._fixed_threads

    @num_threads.setter
    def num_threads(self, n: int) -> None:
        if n < 0:
            raise ValueError(f"num_threads must be >= 0, got {n}")
        if self._set_threads is None:
            return
        self._auto = AutoThreads() if n == 0 else None
        self._fixed_threads = n
        self._set_threads(self.threads_in_use)

    @property
    def threads_in_use(self) -> int:
        """The thread count calls run with now (auto's current choice)."""
        if self._set_threads is None:
            return 1
        return self._auto.current if self._auto is not None else self._fixed_threads

    def _init_checks(self, messages: list[str], status: ctypes.c_int64 | None) -> None:
        """What each failure number means (`lowering.tl_check_to_llvm`); `status`: the
        module's status word, where `tl.check`s store theirs. Calls are then serialized,
        since the word is the module's, not the call's (an entry's returned status, e.g.
        out of memory, is the call's own)."""
        self.check_messages = list(messages)
        self._status = status

    def _call_native(self, addresses: list[int]) -> None:
        status = self._status
        if status is None:
            self._raise_failure(self._call_threaded(addresses))
            return
        with self._status_lock:
            status.value = 0
            returned = self._call_threaded(addresses)
            code, status.value = returned or status.value, 0
        self._raise_failure(code)

    def _raise_failure(self, code: int) -> None:
        """`MemoryError` or `RuntimeCheckError` for a nonzero failure number."""
        if not code:
            return
        known = 0 < code <= len(self.check_messages)
        message = self.check_messages[code - 1] if known else f"run-time check #{code}"
        text = f"@{self.name}: {message}; the outputs were discarded"
        if message.startswith(OUT_OF_MEMORY):
            raise MemoryError(text)
        raise RuntimeCheckError(text)

    def _call_threaded(self, addresses: list[int]) -> int:
        auto = self._auto
        if auto is None or self._set_threads is None:
            return self._fn(*addresses)
        n = auto.choose()
        self._set_threads(n)
        start = time.perf_counter()
        code = self._fn(*addresses)
        auto.record(n, time.perf_counter() - start)
        return code

    def __call__(self, *arrays: np.ndarray) -> list[np.ndarray]:
        """The results for `arrays` (a list, one array per function result; a result with
        string labels as their strings, an array of dtype object)."""
        keep = []  # aligned copies of unaligned inputs, alive until the call returns
        addresses = []
        for a in self.check_inputs(arrays):
            address = data_address(a) if a.size else 0
            if address % ARGUMENT_ALIGNMENT or not a.size:  # arguments are 16-byte aligned
                copy = aligned_empty(a.shape, a.dtype)
                copy[...] = a
                keep.append(copy)
                address = data_address(copy)
            addresses.append(address)
        raw = np.empty(self._result_bytes + ALIGNMENT, np.uint8)
        base = data_address(raw)
        start = -base % ALIGNMENT
        results = [
            raw[start + o : start + o + n].view(dt).reshape(shape)
            for o, n, dt, shape in self._result_layout
        ]
        addresses += [base + start + o for o, _, _, _ in self._result_layout]
        # arguments are read only (`bufferize_function`): aligned inputs need no copy
        self._call_native(addresses)
        return apply_labels(results, self._labels) if self._labelled else results


class CompiledModel(NativeFunction):
    """A model JIT-compiled into this process; `export` writes it as a shared library."""

    def __init__(
        self,
        engine: JitEngine,
        name: str,
        inputs: Sequence[BufferSpec],
        outputs: Sequence[BufferSpec],
        llvm_dialect: str = "",
        *,
        llvm_ir_unoptimized: str = "",
        lowered: LoweredModel | None = None,
        relower: Callable[[], LoweredModel] | None = None,
    ) -> None:
        self.engine = engine
        self._llvm_dialect = llvm_dialect
        self._llvm_ir_unoptimized = llvm_ir_unoptimized
        self._llvm_ir_optimized = ""
        self._lowered = lowered
        self._relower = relower
        #: kernel and model objects linked, and how many of them the compile cache had
        self.object_count = 0
        self.cache_hits = 0
        #: wall time per compile stage and pass (`timings.table()` prints them)
        self.timings = Timings()
        super().__init__(name, inputs, outputs, engine.function_address(name))
        #: the liveness-planned workspace vs separate intermediate buffers (bytes)
        self.workspace_bytes = 0
        self.intermediate_bytes = 0
        #: `compile_model` again with this model's source and options (`profile` uses it)
        self.recompile: Callable[..., CompiledModel] | None = None
        self._profiled: CompiledModel | None = None
        address = engine.engine.get_global_value_address(NUM_THREADS_GLOBAL)
        if address:
            threads = ctypes.c_int32.from_address(address)
            self._init_threads(lambda n: setattr(threads, "value", n))
        messages_at = engine.engine.get_global_value_address(MESSAGES_GLOBAL)
        if messages_at:
            status_at = engine.engine.get_global_value_address(STATUS_GLOBAL)
            self._init_checks(
                json.loads(ctypes.string_at(messages_at).decode()),
                ctypes.c_int64.from_address(status_at) if status_at else None,
            )

    def profile(self, *inputs: np.ndarray, repeat: int = 20, warmup: int = 2) -> Profile:
        """Time every kernel call over `repeat` calls on `inputs` (`targets.profile`):
        `print(p.table())`, `p.save_chrome_trace("trace.json")`. A model compiled without
        `profile=True` is compiled again with it (once; the compile cache keeps it)."""
        from mlc.targets.profile import profile_native

        target = self
        if not self.engine.engine.get_global_value_address(TICKS_GLOBAL):
            if self._profiled is None:
                if self.recompile is None:
                    raise ValueError(f"@{self.name}: no source to compile a profiled twin from")
                self._profiled = self.recompile(profile=True)
            target = self._profiled
        threads = self.threads_in_use
        target.num_threads = threads
        arrays = target.check_inputs(inputs)
        return profile_native(
            lambda: target(*arrays),
            target.engine.engine.get_global_value_address,
            self.name,
            repeat=repeat,
            warmup=warmup,
            threads=threads,
        )

    @property
    def llvm_dialect(self) -> str:
        """The module in the llvm dialect, as text (re-parseable by mlc-opt); printed when
        first asked for."""
        if not self._llvm_dialect and (lowered := self._lowered_model()) is not None:
            self._llvm_dialect = lowered.llvm_dialect
        return self._llvm_dialect

    def _lowered_model(self) -> LoweredModel | None:
        """The lowered model; lowered again for a model that came from the cache whole."""
        if self._lowered is None and self._relower is not None:
            self._lowered = self._relower()
        return self._lowered

    @property
    def llvm_ir_unoptimized(self) -> str:
        """The LLVM IR before O3, constants included (what `export` compiles again, for
        any target); emitted when first asked for."""
        if not self._llvm_ir_unoptimized and (lowered := self._lowered_model()) is not None:
            self._llvm_ir_unoptimized = lowered.llvm_ir_unoptimized
        return self._llvm_ir_unoptimized

    @property
    def llvm_ir(self) -> str:
        """The optimized LLVM IR (of the whole model, optimized again when first asked
        for: the JIT links object code)."""
        if self.engine.modules:
            return "\n".join(str(m) for m in self.engine.modules)
        if not self._llvm_ir_optimized:
            ref = llvm_binding.parse_assembly(self.llvm_ir_unoptimized)
            optimize(ref, self.engine.tm, self.engine.opt)
            self._llvm_ir_optimized = str(ref)
        return self._llvm_ir_optimized

    def export(self, path: str | os.PathLike[str], **options: Any) -> ExportedLibrary:
        """Write a shared library `path` (e.g. `model.so`) and its C header next to it
        (`model.h`); options as `mlc.targets.aot.export_library`. Load it with `mlc.load`."""
        from mlc.targets.aot import export_library

        return export_library(self, path, **options)


@dataclass(frozen=True)
class LoweredModel:
    """A model lowered to LLVM IR (not yet optimized or compiled): what `compile_model`
    JIT-compiles and `mlc.targets.aot` compiles ahead of time."""

    name: str
    inputs: list[BufferSpec]
    outputs: list[BufferSpec]
    #: the module in the llvm dialect (`llvm_dialect` prints it)
    module: ModuleOp
    #: the module split for code generation (`targets.codegen.split_kernels`)
    parts: list[Part]
    #: bytes of the one workspace holding every intermediate buffer (liveness-planned) ...
    workspace_bytes: int = 0
    #: ... and what the intermediates would take as separate allocations
    intermediate_bytes: int = 0
    #: wall time per stage and pass of the compile so far
    timings: Timings = field(default_factory=Timings)

    @property
    def llvm_dialect(self) -> str:
        """The module in the llvm dialect, as text (re-parseable by mlc-opt)."""
        return _print(self.module)

    @functools.cached_property
    def check_messages(self) -> list[str]:
        """What each failure number of the entry means (`@mlc_check_messages`)."""
        for op in self.module.ops:
            if isinstance(op, llvm.GlobalOp) and op.sym_name.data == MESSAGES_GLOBAL:
                value = op.value
                if isinstance(value, DenseIntOrFPElementsAttr):
                    raw = bytes(v & 0xFF for v in value.get_values())
                    return json.loads(raw.rstrip(b"\0").decode())
        return []

    @functools.cached_property
    def llvm_ir_unoptimized(self) -> str:
        """LLVM IR text for the host triple and data layout, constants included (what
        `mlc.targets.aot` compiles, retargeted by `emit_object`)."""
        tm = target_machine()
        return str(emit_module(self.module, tm.triple, str(tm.target_data)))


def _print(module: ModuleOp) -> str:
    text = io.StringIO()
    Printer(text).print_op(module)
    return text.getvalue()


def _entry(module: ModuleOp, name: str | None) -> func.FuncOp:
    for op in module.ops:
        if isinstance(op, func.FuncOp) and not op.is_declaration:
            if (name is None and op.sym_visibility is None) or op.sym_name.data == name:
                return op
    raise ValueError(f"no function {'@' + name if name else 'to compile'} in the module")


def _names(attrs: Any, n: int) -> list[str]:
    names = [""] * n
    if attrs is not None:
        for i, entry in enumerate(attrs.data[:n]):
            value = entry.data.get("mlc.name")
            if value is not None and hasattr(value, "data"):
                names[i] = str(value.data)
    return names


def _buffer_specs(
    types: Sequence[Attribute],
    names: Sequence[str],
    labels: Sequence[ResultLabels] | None = None,
) -> list[BufferSpec]:
    """What callers pass and get for tensors / memrefs of these types (a `ui8` tensor is
    an `i8` buffer in native code, and a uint8 array for callers)."""
    specs = []
    for i, (t, name) in enumerate(zip(types, names)):
        label = labels[i] if labels is not None else None  # `mlc.labels`
        if isinstance(t, MemRefType):
            memref = BufferSpec.of(t, name)
            specs.append(BufferSpec(memref.shape, memref.dtype, name, label))
        elif isinstance(t, TensorType):
            try:
                dtype = tensor_numpy_dtype(t.element_type)
            except UnsupportedTypeError:
                dtype = numpy_dtype(t.element_type)
            specs.append(BufferSpec(tuple(t.get_shape()), np.dtype(dtype), name, label))
    return specs


def _output_json(spec: BufferSpec) -> dict[str, Any]:
    """An output's entry in the model cache's record, its labels included."""
    return buffer_json(spec) | labels_json(spec.labels)


def labels_json(labels: ResultLabels) -> dict[str, Any]:
    """How an output reaches callers, for JSON records: `labels` (strings) or `zipmap`
    (keys)."""
    if isinstance(labels, ZipMapKeys):
        return {"zipmap": list(labels.keys)}
    return {} if labels is None else {"labels": list(labels)}


def labels_from_json(entry: dict[str, Any]) -> ResultLabels:
    """`labels_json`'s inverse; malformed entries are a ValueError."""
    if "zipmap" in entry:
        keys = entry["zipmap"]
        if not isinstance(keys, list) or not (
            all(isinstance(k, str) for k in keys) or all(type(k) is int for k in keys)
        ):
            raise ValueError("bad zipmap keys")
        return ZipMapKeys(tuple(keys))
    labels = entry.get("labels")
    if labels is None:
        return None
    if not isinstance(labels, list) or not all(isinstance(s, str) for s in labels):
        raise ValueError("bad labels")
    return tuple(labels)


def _output_from_json(entry: dict[str, Any]) -> BufferSpec:
    return BufferSpec(*buffer_from_json(entry), labels_from_json(entry))


def _signature(module: ModuleOp, function: str | None) -> tuple[str, list, list]:
    f = _entry(module, function)
    in_types = f.function_type.inputs.data
    out_types = f.function_type.outputs.data
    ins = _buffer_specs(in_types, _names(f.arg_attrs, len(in_types)))
    labels = result_labels(f.res_attrs, len(out_types))
    outs = _buffer_specs(out_types, _names(f.res_attrs, len(out_types)), labels)
    return f.sym_name.data, ins, outs


@contextlib.contextmanager
def _gc_paused() -> Iterator[None]:
    """Python's cyclic garbage collector off for the `with` body (its scans of the IR's
    objects, nearly all alive, took 6 % of a compile, and a scan triggered between
    passes a quarter second); it runs again after (nested uses: after the outermost)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def cpu_pipeline(
    *,
    schedule: Any = "default",
    fuse: bool = True,
    layout: str | None = "default",
    vector_math: bool = True,
    threads: bool = True,
    outline: bool = True,
    merge_kernels: bool = True,
    tree_strategy: str = "auto",
    profile: bool = False,
) -> MlcCpuPipelinePass:
    """The `mlc-cpu-pipeline` for `mlc.compile`'s options (a `ScheduleStrategy` object for
    `schedule` is passed to `MlcCpuPipelinePass.passes` separately)."""
    from mlc.targets.pipeline import LAYOUTS, MlcCpuPipelinePass

    if layout not in (None, *LAYOUTS):
        raise ValueError(f"unknown layout {layout!r} (expected None, 'default' or 'nchwc')")
    return MlcCpuPipelinePass(
        fuse=fuse,
        layout="none" if layout is None else layout,
        schedule="default" if schedule == "default" else "none",
        vector_math=vector_math,
        threads=threads,
        outline=outline,
        merge=merge_kernels,
        profile=profile,
        trees=tree_strategy,
    )


def lower_model(
    model: ModuleOp | str | os.PathLike[str] | bytes | Any,
    *,
    function: str | None = None,
    input_shapes: dict[str, list[int]] | None = None,
    base_dir: str | os.PathLike[str] | None = None,
    schedule: Any = "default",
    fuse: bool = True,
    layout: str | None = "default",
    vector_math: bool = True,
    outline: bool = True,
    merge_kernels: bool = True,
    tree_strategy: str = "auto",
    profile: bool = False,
    timings: Timings | None = None,
    verify_each: bool = False,
    progress: bool = False,
    tuning_db: Any = None,
) -> LoweredModel:
    """Lower an ONNX model (path, bytes, ModelProto), a module at the graph or tl level, or
    a `.mlir` file of one, to LLVM IR: `mlc-cpu-pipeline` (`cpu_pipeline(...)`), then the llvm dialect emitted as
    LLVM IR. The module is not modified; `input_shapes` and `base_dir` (the directory of
    external data, as for `import_onnx`) are for ONNX models only.

    `timings` collects wall time per stage and pass; `verify_each` verifies the module
    after every pass and the llvm-dialect result (a debugging aid; `MLC_VERIFY=1` verifies
    the result only, as the test suite does). By default nothing is verified here: LLVM
    verifies every part's IR before optimizing it, and the xDSL verifier took a tenth of a
    ResNet-50's compile.

    `tuning_db` (a path or `mlc.tuning.TuningDatabase`): kernels with a record there get
    its best schedule (`mlc.tuning.TunedSchedule`, no measurement), the rest `schedule`."""
    from mlc.registry import make_context

    if tuning_db is not None:
        from mlc.tuning.apply import tuned_strategy

        schedule = tuned_strategy(tuning_db, schedule)

    timings = timings if timings is not None else Timings()
    with timings.stage("import"):
        if isinstance(model, ModuleOp):
            module = model.clone()
        elif isinstance(model, str | os.PathLike) and os.fspath(model).endswith(".mlir"):
            from mlc.parser.mlir import parse_module

            path = os.fspath(model)
            try:
                text = Path(path).read_text()
            except OSError as e:
                raise FileNotFoundError(f"{path}: {e.strerror or e}") from None
            module = parse_module(make_context(), text, path)
        else:
            module = import_onnx(model, input_shapes=input_shapes, base_dir=base_dir)
    name, ins, outs = _signature(module, function)
    pipeline = cpu_pipeline(
        schedule=schedule,
        fuse=fuse,
        layout=layout,
        vector_math=vector_math,
        outline=outline,
        merge_kernels=merge_kernels,
        profile=profile,
        tree_strategy=tree_strategy,
    )
    strategy = None if schedule in ("default", None) else schedule
    passes = pipeline.passes(module, strategy)
    from mlc.parser.mlir import verify_module
    from mlc.targets.codegen import split_kernels
    from mlc.targets.pipeline import run_passes

    after = (lambda p, m: verify_module(m, f"after pass '{p.name}'")) if verify_each else None
    with _gc_paused():  # the passes build and drop millions of objects: no cycle scans
        run_passes(passes, make_context(), module, timings, after, progress)
    content_address_constants(module)
    with timings.stage("split"):
        parts = split_kernels(module)
    if verify_each or os.environ.get("MLC_VERIFY", "") == "1":
        with timings.stage("verify"):  # part by part: each resolves its calls among few symbols
            for part in parts:
                part.module().verify()
    attrs = next(
        op.attributes
        for op in module.ops
        if isinstance(op, llvm.FuncOp) and op.sym_name.data == name
    )
    workspace, intermediates = (
        attr.value.data if isinstance(attr := attrs.get(key), IntegerAttr) else 0
        for key in (WORKSPACE_BYTES, INTERMEDIATE_BYTES)
    )
    return LoweredModel(name, ins, outs, module, parts, workspace, intermediates, timings)


#: specializations a `targets.specialize.SpecializingModel` keeps loaded by default
DEFAULT_MAX_SPECIALIZATIONS = 16


def compile_model(
    model: ModuleOp | str | os.PathLike[str] | bytes | Any,
    *,
    function: str | None = None,
    opt: int = 3,
    input_shapes: dict[str, list[int]] | None = None,
    base_dir: str | os.PathLike[str] | None = None,
    schedule: Any = "default",
    fuse: bool = True,
    layout: str | None = "default",
    vector_math: bool = True,
    outline: bool = True,
    merge_kernels: bool = True,
    tree_strategy: str = "auto",
    profile: bool = False,
    timings: bool = False,
    verify_each: bool = False,
    progress: bool = False,
    cache: bool = True,
    jobs: int = 0,
    tuning_db: Any = None,
    rowwise: bool = False,
    specialize: Mapping[str, Sequence[int]] | None = None,
    max_specializations: int = DEFAULT_MAX_SPECIALIZATIONS,
) -> CompiledModel | RowwiseModel:
    """JIT-compile an ONNX model (path, bytes, ModelProto) or a module at the graph, tl
    (kernel or explicit-loop) level (a `ModuleOp`, or a `.mlir` file) for the host CPU. The module is not modified.

    A fitted estimator (scikit-learn estimator or pipeline, XGBoost, LightGBM: an object
    with `predict`) is converted to ONNX (`mlc.parser.estimators.to_onnx_model`: input
    "X", f32 `[n, n_features_in_]`) and compiled row-wise. `rowwise=True` compiles an
    ONNX model with a symbolic batch dimension row-wise, which is only valid when each
    output row depends on the same input row alone: a `targets.rowwise.RowwiseModel`,
    called with any number of rows, which compiles a model per batch-size bucket on first
    use with the other options given here (not `input_shapes`).

    `schedule`: how `tl.kernel`s are scheduled before lowering: "default" (the host's
    `CpuDefaultSchedule`), any `ScheduleStrategy`, or None (plain loops in iterator
    order). Kernels already lowered to loops keep their schedule.

    `fuse`: the graph-level optimizations (`graph-optimize`: constant folding,
    canonicalization, batch-norm folding, CSE, DCE) and, after graph -> tl, kernel fusion:
    elementwise kernels inlined into their consumers, elementwise consumers of reductions
    finishing the output in place (`transforms.loops.fusion`). False compiles every op as it is.

    `layout`: "nchwc" runs `graph-blocked-layout` after the graph passes (convolutions in
    the blocked NCHW[c]c layout, c = the host's fp32 vector lanes; transposes only where
    the layout meets NCHW values); None keeps NCHW; "default" is "nchwc" when `fuse` and
    at least two convolutions would be blocked (`worth_blocking`: one alone does not pay
    for the two transposes).

    `vector_math`: vectorized math functions (exp, tanh, erf, ...) call glibc's libmvec
    where it has them for the host's vector width (`lowering.llvm_vector_math`: within 4 ulp,
    not always the correctly rounded value libm gives); False keeps one libm call per
    lane.

    The compile is `mlc-cpu-pipeline` (`cpu_pipeline(...)`, printed pass by pass by
    `cpu_pipeline(...).pipeline_text()`) and code generation. `timings=True` prints wall
    time per stage and pass to stderr (`CompiledModel.timings` has them either way);
    `verify_each=True` verifies the IR after every pass instead of once; `progress=True`
    shows a progress bar on stderr (the CLI does where stderr is a terminal).

    `outline`: loop nests become kernel functions, identical ones shared
    (`tl-outline-kernels`); False keeps them in the model's function. `merge_kernels`:
    kernels that differ only in integer constants (strides, trip counts, offsets) share
    one function that takes them as arguments (`llvm-merge-kernels`); False compiles
    each with its constants.

    `tree_strategy`: how tree ensembles (`graph.tree_ensemble`) run: "auto" (a cost
    estimate per ensemble and batch size), "gemm", "traversal" or "perfect"
    (`tree-ensemble-strategy`, docs/trees.md).

    `profile`: timestamps around every kernel call (`llvm-profile-kernels`), read by
    `CompiledModel.profile` (which compiles a profiled twin of a model compiled without).

    Code generation is per kernel (`targets.codegen`): each distinct kernel function is
    optimized and compiled once, in `jobs` threads (0: `MLC_COMPILE_JOBS`, else the
    cores), its object kept in the persistent compile cache (`targets.compile_cache`),
    and the compiled model's record too (`targets.model_cache`: compiling it again only
    links); `cache=False` neither reads nor writes the cache.

    `tuning_db`: a tuning database (path or `mlc.tuning.TuningDatabase`) whose best record
    per kernel is applied (see `lower_model`); the model cache is then not used (kernel
    objects still are).

    An ONNX model whose inputs have dynamic dimensions (and no `input_shapes`) gives a
    `targets.specialize.SpecializingModel`: any input shape, compiled per shape on first
    use, the `max_specializations` used last kept loaded; `specialize={"seq": [128, 512],
    ...}` (a list of sizes for every dimension) compiles those now."""
    # every option above (later ones too), for row-wise buckets or specializations
    given = {k: v for k, v in locals().items() if k not in ("model", "rowwise", "specialize")}
    if rowwise or is_estimator(model):
        from mlc.targets.rowwise import compile_rowwise

        del given["max_specializations"]
        return compile_rowwise(model, **given)
    if specialize is not None:
        return _specializing(model, specialize, given)
    print_timings = timings
    timings = Timings()
    store = CompileCache() if cache else None
    options = {
        "function": function,
        "opt": opt,
        "input_shapes": input_shapes,
        "base_dir": base_dir,
        "schedule": schedule,
        "fuse": fuse,
        "layout": layout,
        "vector_math": vector_math,
        "outline": outline,
        "merge_kernels": merge_kernels,
        "tree_strategy": tree_strategy,
        "profile": profile,
        "tuning_db": tuning_db,
    }  # the pipeline they make is fixed by these, the host and the mlc version (in the key)
    cacheable = store is not None and schedule in ("default", None) and tuning_db is None
    key, hit = None, None
    if cacheable:
        assert store is not None
        with timings.stage("model cache lookup"):
            key = model_key(model, options)
            hit = load_model(store, key) if key is not None else None
    lowering_options = {k: v for k, v in options.items() if k != "opt"}  # lower_model's
    relower = functools.partial(lower_model, model, **lowering_options)
    if hit is not None:
        record, objs, constants = hit
        ins = [BufferSpec(*buffer_from_json(b)) for b in record.inputs]
        outs = [_output_from_json(b) for b in record.outputs]
        compiled = _link(
            record.name,
            ins,
            outs,
            objs,
            record.runtimes,
            constants,
            opt,
            timings,
            relower=relower,  # its IR, on demand: lowered again
        )
        compiled.cache_hits = len(objs)
        compiled.workspace_bytes = record.workspace_bytes
        compiled.intermediate_bytes = record.intermediate_bytes
    else:
        try:
            with _gc_paused():  # lowering through linking: nothing to collect but the IR
                compiled = _compile_cold(
                    relower, opt, store, key, jobs, timings, verify_each, progress
                )
        except DynamicShapeError:
            if input_shapes or isinstance(model, ModuleOp):
                raise
            return _specializing(model, None, given)
    compiled.timings = timings
    compiled.recompile = functools.partial(
        compile_model, model, **{**options, "cache": cache, "jobs": jobs}
    )
    if print_timings:
        print(timings.table(), file=sys.stderr)
    return compiled


def _specializing(
    model: Any, specialize: Mapping[str, Sequence[int]] | None, options: dict[str, Any]
) -> Any:
    """A `SpecializingModel` of `model` (dynamic input dimensions) with `options`."""
    from mlc.targets.specialize import SpecializingModel

    return SpecializingModel(model, specialize=specialize, **options)


def _compile_cold(
    relower: Any,
    opt: int,
    store: CompileCache | None,
    key: str | None,
    jobs: int,
    timings: Timings,
    verify_each: bool,
    progress: bool,
) -> CompiledModel:
    """Lower, generate code per kernel (from the cache where it can), link; store the
    model's record under `key`."""
    from mlc.targets.codegen import compile_objects

    lowered = relower(timings=timings, verify_each=verify_each, progress=progress)
    constants: dict[str, bytes] = {}
    objects = compile_objects(
        lowered.parts, opt, cache=store, jobs=jobs, constants=constants, timings=timings
    )
    runtimes = objects.runtimes
    model = _link(
        lowered.name,
        lowered.inputs,
        lowered.outputs,
        objects.objects,
        runtimes,
        constants,
        opt,
        timings,
        lowered=lowered,
    )
    model.cache_hits = objects.cache_hits
    model.workspace_bytes = lowered.workspace_bytes
    model.intermediate_bytes = lowered.intermediate_bytes
    if store is not None and key is not None:
        record = ModelRecord(
            lowered.name,
            [buffer_json(b) for b in lowered.inputs],
            [_output_json(b) for b in lowered.outputs],
            lowered.workspace_bytes,
            lowered.intermediate_bytes,
            objects.keys,
            sorted(constants),
            runtimes,
        )
        save_model(store, key, record, constants)
    return model


def _link(
    name: str,
    inputs: list[BufferSpec],
    outputs: list[BufferSpec],
    objects: list[bytes],
    runtimes: list[str],
    constants: dict[str, bytes],
    opt: int,
    timings: Timings,
    *,
    lowered: LoweredModel | None = None,
    relower: Callable[[], LoweredModel] | None = None,
) -> CompiledModel:
    """A JIT engine with `constants` bound and `objects` linked: the compiled model (its
    IR from `lowered`, or from `relower` when first asked for)."""
    engine = JitEngine(opt)
    engine.bind_constants(constants)
    with timings.stage("link"):
        engine.add_objects(objects, runtimes)
    model = CompiledModel(engine, name, inputs, outputs, lowered=lowered, relower=relower)
    model.object_count = len(objects)
    return model
