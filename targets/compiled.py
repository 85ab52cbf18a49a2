"""`compile_model(...) -> CompiledModel`: a model JIT-compiled for the host CPU.

    model = compile_model("examples/mlp.onnx")    # or a graph / tl / llvm-level ModuleOp
    (y,) = model(x)                               # numpy in, numpy out
    model.export("mlp.so")                        # + mlp.h; mlc.load("mlp.so") calls it again

Pipeline: graph ops -> `convert-graph-to-tl`; `tl.kernel`s -> `convert-tl-kernel-to-loops`;
then `convert-tl-to-llvm`, `targets.llvm_emit`, LLVM O3 and MCJIT (`targets.cpu`).

Calling convention (see `lowering/tl_to_llvm.py`): one pointer per memref argument, then
one per memref result. Every input is checked (count, shape, dtype, C-contiguity) before
native code runs; a bad input raises `InvalidInputError` naming the input. Inputs are copied
into fresh 64-byte-aligned buffers (so the `noalias` / `align 64` promises hold even when
the caller passes one array twice or an unaligned view) and results are allocated aligned.
"""

from __future__ import annotations

import ctypes
import io
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
from xdsl.dialects import func
from xdsl.dialects.builtin import MemRefType, ModuleOp, TensorType
from xdsl.printer import Printer

from mlc.interpreters.tl.buffers import numpy_dtype
from mlc.lowering.tl_parallel_to_llvm import NUM_THREADS_GLOBAL
from mlc.lowering.tl_to_llvm import ALIGNMENT, lower_module
from mlc.lowering.workspace import plan_workspace
from mlc.targets.cpu import JitEngine, target_machine
from mlc.targets.llvm_emit import emit_module

if TYPE_CHECKING:
    from mlc.targets.aot import ExportedLibrary

__all__ = [
    "BufferSpec",
    "CompiledModel",
    "InvalidInputError",
    "LoweredModel",
    "NativeFunction",
    "aligned_empty",
    "compile_model",
    "lower_model",
]


class InvalidInputError(ValueError):
    """An input that does not match the compiled function's signature."""


@dataclass(frozen=True)
class BufferSpec:
    """Shape and numpy dtype of one memref argument or result (and its `mlc.name`, if any:
    the ONNX input / output name; not part of equality)."""

    shape: tuple[int, ...]
    dtype: np.dtype
    name: str = field(default="", compare=False)

    @staticmethod
    def of(ty: MemRefType, name: str = "") -> BufferSpec:
        return BufferSpec(tuple(ty.get_shape()), numpy_dtype(ty.element_type), name)

    def __str__(self) -> str:
        return f"{self.dtype}{list(self.shape)}"


def aligned_empty(shape: Sequence[int], dtype: np.dtype, alignment: int = ALIGNMENT) -> np.ndarray:
    """An uninitialized C-contiguous array whose data is `alignment`-byte aligned."""
    # math.prod and __array_interface__: a few microseconds less per call than np.prod
    # and .ctypes, which matters for models that run in 0.1 ms
    n = math.prod(shape) * dtype.itemsize
    raw = np.empty(n + alignment, np.uint8)
    offset = -raw.__array_interface__["data"][0] % alignment
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
        n = len(self.inputs) + len(self.outputs)
        proto = ctypes.CFUNCTYPE(None, *([ctypes.c_void_p] * n))
        self._fn = proto(address)

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
        self._fn(*(b.ctypes.data for b in (*args, *results)))
        return [*args, *results]

    def __call__(self, *arrays: np.ndarray) -> list[np.ndarray]:
        """The results for `arrays` (a list, one array per function result)."""
        return self.run_buffers(*arrays)[len(self.inputs) :]


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
    ) -> None:
        self.engine = engine
        #: the module in the llvm dialect, as text (re-parseable by mlc-opt)
        self.llvm_dialect = llvm_dialect
        #: the LLVM IR before O3 (what `export` compiles again, for any target)
        self.llvm_ir_unoptimized = llvm_ir_unoptimized
        super().__init__(name, inputs, outputs, engine.function_address(name))
        #: the liveness-planned workspace vs separate intermediate buffers (bytes)
        self.workspace_bytes = 0
        self.intermediate_bytes = 0
        self._threads: ctypes.c_int32 | None = None
        address = engine.engine.get_global_value_address(NUM_THREADS_GLOBAL)
        if address:
            self._threads = ctypes.c_int32.from_address(address)
            env = os.environ.get("MLC_NUM_THREADS", "").strip()
            self.num_threads = int(env) if env.isdigit() else 0

    @property
    def num_threads(self) -> int:
        """Threads for parallel loops (0: OpenMP's default, all cores unless
        OMP_NUM_THREADS says otherwise); 1 for a model without parallel loops. Starts from
        the `MLC_NUM_THREADS` environment variable."""
        return 1 if self._threads is None else self._threads.value

    @num_threads.setter
    def num_threads(self, n: int) -> None:
        if n < 0:
            raise ValueError(f"num_threads must be >= 0, got {n}")
        if self._threads is not None:
            self._threads.value = n

    @property
    def llvm_ir(self) -> str:
        """The optimized LLVM IR."""
        return "\n".join(str(m) for m in self.engine.modules)

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
    #: the module in the llvm dialect, as text
    llvm_dialect: str
    #: llvmlite IR text for the host triple and data layout (retargeted by `emit_object`)
    llvm_ir_unoptimized: str
    #: bytes of the one workspace holding every intermediate buffer (liveness-planned) ...
    workspace_bytes: int = 0
    #: ... and what the intermediates would take as separate allocations
    intermediate_bytes: int = 0


def _has_op(module: ModuleOp, prefix: str) -> bool:
    return any(op.name.startswith(prefix) for op in module.walk())


def _has_tensor_signature(module: ModuleOp) -> bool:
    """A function over tensors (graph level, even with no graph op: an identity model)."""
    return any(
        isinstance(t, TensorType)
        for op in module.ops
        if isinstance(op, func.FuncOp)
        for t in (*op.function_type.inputs.data, *op.function_type.outputs.data)
    )


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


def lower_model(
    model: ModuleOp | str | os.PathLike[str] | bytes | Any,
    *,
    function: str | None = None,
    input_shapes: dict[str, list[int]] | None = None,
    schedule: Any = "default",
    fuse: bool = True,
    layout: str | None = "default",
    vector_math: bool = True,
) -> LoweredModel:
    """Lower an ONNX model (path, bytes, ModelProto) or a module at the graph or tl level
    to LLVM IR. The module is not modified; `input_shapes` is for ONNX models only."""
    from mlc.registry import make_context

    if isinstance(model, ModuleOp):
        module = model.clone()
    else:
        from mlc.parser.onnx import import_onnx

        module = import_onnx(model, input_shapes=input_shapes)
    ctx = make_context()
    tensor_dtypes = _tensor_dtypes(module, function)
    if _has_op(module, "graph.") or _has_tensor_signature(module):
        from mlc.lowering.graph_to_tl import ConvertGraphToTlPass

        if fuse:
            from mlc.transforms.graph.optimize import GraphOptimizePass

            GraphOptimizePass().apply(ctx, module)
            _pad_gemm_columns(ctx, module)
        if layout == "default":
            layout = "nchwc" if fuse and _worth_blocking(module) else None
        if layout is not None:
            _apply_layout(ctx, module, layout)

        ConvertGraphToTlPass().apply(ctx, module)
        if fuse:
            from mlc.transforms.tl_fusion import fuse_epilogues, inline_elementwise

            inline_elementwise(module)
            fuse_epilogues(module)
    if _has_op(module, "tl.kernel"):
        from mlc.lowering.tl_kernel_to_loops import ConvertTlKernelToLoopsPass

        if schedule == "default":  # reductions along a contiguous axis: lanes of partials
            from mlc.targets.cpu import host_features
            from mlc.transforms.tl_rfactor import rfactor_contiguous_reductions

            rfactor_contiguous_reductions(module, host_features().vector_bits // 32)
        if schedule is not None:
            from mlc.transforms.loops.default_schedule import apply_default_schedules

            strategy = default_strategy() if schedule == "default" else schedule
            apply_default_schedules(module, strategy)  # type: ignore[arg-type]
        ConvertTlKernelToLoopsPass().apply(ctx, module)
    f = _entry(module, function)
    name = f.sym_name.data
    in_types = f.function_type.inputs.data
    out_types = f.function_type.outputs.data
    in_names = _names(f.arg_attrs, len(in_types))
    out_names = _names(f.res_attrs, len(out_types))
    ins = [BufferSpec.of(t, n) for t, n in zip(in_types, in_names) if isinstance(t, MemRefType)]
    outs = [BufferSpec.of(t, n) for t, n in zip(out_types, out_names) if isinstance(t, MemRefType)]
    if tensor_dtypes is not None:  # ui8 tensors are i8 buffers: callers pass and get uint8
        ins = _with_tensor_dtypes(ins, tensor_dtypes[0])
        outs = _with_tensor_dtypes(outs, tensor_dtypes[1])
    plan = plan_workspace(f)
    lower_module(module)
    if vector_math:
        from mlc.targets.cpu import host_features
        from mlc.targets.vector_math import use_vector_math

        use_vector_math(module, host_features())
    module.verify()
    text = io.StringIO()
    Printer(text).print_op(module)
    tm = target_machine()
    ir_module = emit_module(module, tm.triple, str(tm.target_data))
    return LoweredModel(
        name, ins, outs, text.getvalue(), str(ir_module), plan.peak_bytes, plan.total_bytes
    )


def _tensor_dtypes(
    module: ModuleOp, function: str | None
) -> tuple[list[np.dtype | None], list[np.dtype | None]] | None:
    """Numpy dtypes of the entry function's tensor arguments and results (None for
    non-tensors), before bufferization turns `ui8` tensors into signless `i8` buffers."""
    from mlc.dialects.graph.types import UnsupportedTypeError
    from mlc.dialects.graph.types import numpy_dtype as tensor_numpy_dtype

    try:
        f = _entry(module, function)
    except ValueError:
        return None

    def dtypes(types: Sequence[Any]) -> list[np.dtype | None]:
        out: list[np.dtype | None] = []
        for t in types:
            try:
                out.append(
                    tensor_numpy_dtype(t.element_type) if isinstance(t, TensorType) else None
                )
            except UnsupportedTypeError:
                out.append(None)
        return out

    return dtypes(f.function_type.inputs.data), dtypes(f.function_type.outputs.data)


def _with_tensor_dtypes(specs: list[BufferSpec], dtypes: list[np.dtype | None]) -> list[BufferSpec]:
    """`specs` with an unsigned tensor dtype where the buffer is its signless twin."""
    if len(specs) != len(dtypes):
        return specs
    out = []
    for spec, dt in zip(specs, dtypes):
        if (
            dt is not None
            and dt.kind == "u"
            and spec.dtype.kind == "i"
            and dt.itemsize == spec.dtype.itemsize
        ):
            spec = BufferSpec(spec.shape, dt, spec.name)
        out.append(spec)
    return out


def _pad_gemm_columns(ctx: Any, module: ModuleOp) -> None:
    """`pad-gemm-columns` with the host's fp32 vector width (whole-vector gemm tiles)."""
    from mlc.targets.cpu import host_features
    from mlc.transforms.graph.pad_gemm import PadGemmColumnsPass

    PadGemmColumnsPass(multiple=max(host_features().vector_bits // 32, 1)).apply(ctx, module)


def _worth_blocking(module: ModuleOp) -> bool:
    from mlc.transforms.graph.layout import worth_blocking

    return worth_blocking(module)


def _apply_layout(ctx: Any, module: ModuleOp, layout: str) -> None:
    """`layout="nchwc"`: `graph-blocked-layout` with the host's fp32 vector lanes."""
    if layout != "nchwc":
        raise ValueError(f"unknown layout {layout!r} (expected None, 'default' or 'nchwc')")
    from mlc.transforms.graph.layout import BlockedLayoutPass

    BlockedLayoutPass().apply(ctx, module)


def default_strategy() -> Any:
    """`CpuDefaultSchedule` for the host CPU's vector width; on a host with AVX-512 VNNI,
    `VnniGemmSchedule` in front of it (u8 x s8 -> i32 matmul kernels, e.g. from ONNX
    MatMulInteger / QLinearMatMul, tensorized to `vpdpbusd`; every other kernel, and
    matmuls whose sizes do not fit its tiles, get the `CpuDefaultSchedule`)."""
    from mlc.targets.cpu import host_features
    from mlc.transforms.loops.default_schedule import CpuDefaultSchedule

    host = host_features()
    cpu = CpuDefaultSchedule(vector_bits=host.vector_bits, threads=True)
    if host.avx512vnni:
        from mlc.targets.x86 import VnniGemmSchedule

        return VnniGemmSchedule(threads=True, fallback=cpu)
    return cpu


def compile_model(
    model: ModuleOp | str | os.PathLike[str] | bytes | Any,
    *,
    function: str | None = None,
    opt: int = 3,
    input_shapes: dict[str, list[int]] | None = None,
    schedule: Any = "default",
    fuse: bool = True,
    layout: str | None = "default",
    vector_math: bool = True,
) -> CompiledModel:
    """JIT-compile an ONNX model (path, bytes, ModelProto) or a module at the graph, tl
    (kernel or explicit-loop) level for the host CPU. The module is not modified.

    `schedule`: how `tl.kernel`s are scheduled before lowering: "default" (the host's
    `CpuDefaultSchedule`), any `ScheduleStrategy`, or None (plain loops in iterator
    order). Kernels already lowered to loops keep their schedule.

    `fuse`: the graph-level optimizations (`graph-optimize`: constant folding,
    canonicalization, batch-norm folding, CSE, DCE) and, after graph -> tl, kernel fusion:
    elementwise kernels inlined into their consumers, elementwise consumers of reductions
    finishing the output in place (`tl_fusion`). False compiles every op as it is.

    `layout`: "nchwc" runs `graph-blocked-layout` after the graph passes (convolutions in
    the blocked NCHW[c]c layout, c = the host's fp32 vector lanes; transposes only where
    the layout meets NCHW values); None keeps NCHW; "default" is "nchwc" when `fuse` and
    at least two convolutions would be blocked (`worth_blocking`: one alone does not pay
    for the two transposes).

    `vector_math`: vectorized math functions (exp, tanh, erf, ...) call glibc's libmvec
    where it has them for the host's vector width (`targets.vector_math`: within 4 ulp,
    not always the correctly rounded value libm gives); False keeps one libm call per
    lane."""
    lowered = lower_model(
        model,
        function=function,
        input_shapes=input_shapes,
        schedule=schedule,
        fuse=fuse,
        layout=layout,
        vector_math=vector_math,
    )
    engine = JitEngine(opt)
    engine.add_module(lowered.llvm_ir_unoptimized)
    model = CompiledModel(
        engine,
        lowered.name,
        lowered.inputs,
        lowered.outputs,
        lowered.llvm_dialect,
        llvm_ir_unoptimized=lowered.llvm_ir_unoptimized,
    )
    model.workspace_bytes = lowered.workspace_bytes
    model.intermediate_bytes = lowered.intermediate_bytes
    return model
