"""`compile_model(...) -> CompiledModel`: a model JIT-compiled for the host CPU.

    model = compile_model("examples/mlp.onnx")    # or a graph / tl / llvm-level ModuleOp
    (y,) = model(x)                               # numpy in, numpy out

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
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from xdsl.dialects import func
from xdsl.dialects.builtin import MemRefType, ModuleOp
from xdsl.printer import Printer

from mlc.interpreters.tl.buffers import numpy_dtype
from mlc.lowering.tl_to_llvm import ALIGNMENT, lower_module
from mlc.targets.cpu import JitEngine
from mlc.targets.llvm_emit import emit_module

__all__ = ["BufferSpec", "CompiledModel", "InvalidInputError", "aligned_empty", "compile_model"]


class InvalidInputError(ValueError):
    """An input that does not match the compiled function's signature."""


@dataclass(frozen=True)
class BufferSpec:
    """Shape and numpy dtype of one memref argument or result."""

    shape: tuple[int, ...]
    dtype: np.dtype

    @staticmethod
    def of(ty: MemRefType) -> BufferSpec:
        return BufferSpec(tuple(ty.get_shape()), numpy_dtype(ty.element_type))

    def __str__(self) -> str:
        return f"{self.dtype}{list(self.shape)}"


def aligned_empty(shape: Sequence[int], dtype: np.dtype, alignment: int = ALIGNMENT) -> np.ndarray:
    """An uninitialized C-contiguous array whose data is `alignment`-byte aligned."""
    n = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    raw = np.empty(n + alignment, np.uint8)
    offset = (-raw.ctypes.data) % alignment
    return raw[offset : offset + n].view(dtype).reshape(tuple(shape))


class CompiledModel:
    """A native function over numpy arrays."""

    def __init__(
        self,
        engine: JitEngine,
        name: str,
        inputs: Sequence[BufferSpec],
        outputs: Sequence[BufferSpec],
        llvm_dialect: str = "",
    ) -> None:
        self.engine = engine
        self.name = name
        self.inputs = list(inputs)
        self.outputs = list(outputs)
        #: the module in the llvm dialect, as text (re-parseable by mlc-opt)
        self.llvm_dialect = llvm_dialect
        n = len(self.inputs) + len(self.outputs)
        proto = ctypes.CFUNCTYPE(None, *([ctypes.c_void_p] * n))
        self._fn = proto(engine.function_address(name))

    @property
    def llvm_ir(self) -> str:
        """The optimized LLVM IR."""
        return "\n".join(str(m) for m in self.engine.modules)

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


def _has_op(module: ModuleOp, prefix: str) -> bool:
    return any(op.name.startswith(prefix) for op in module.walk())


def _entry(module: ModuleOp, name: str | None) -> func.FuncOp:
    for op in module.ops:
        if isinstance(op, func.FuncOp) and not op.is_declaration:
            if (name is None and op.sym_visibility is None) or op.sym_name.data == name:
                return op
    raise ValueError(f"no function {'@' + name if name else 'to compile'} in the module")


def compile_model(
    model: ModuleOp | str | os.PathLike[str] | bytes | Any,
    *,
    function: str | None = None,
    opt: int = 3,
) -> CompiledModel:
    """JIT-compile an ONNX model (path, bytes, ModelProto) or a module at the graph, tl
    (kernel or explicit-loop) level for the host CPU. The module is not modified."""
    from mlc.registry import make_context

    if isinstance(model, ModuleOp):
        module = model.clone()
    else:
        from mlc.parser.onnx import import_onnx

        module = import_onnx(model)
    ctx = make_context()
    if _has_op(module, "graph."):
        from mlc.lowering.graph_to_tl import ConvertGraphToTlPass

        ConvertGraphToTlPass().apply(ctx, module)
    if _has_op(module, "tl.kernel"):
        from mlc.lowering.tl_kernel_to_loops import ConvertTlKernelToLoopsPass

        ConvertTlKernelToLoopsPass().apply(ctx, module)
    f = _entry(module, function)
    name = f.sym_name.data
    ins = [BufferSpec.of(t) for t in f.function_type.inputs.data if isinstance(t, MemRefType)]
    outs = [BufferSpec.of(t) for t in f.function_type.outputs.data if isinstance(t, MemRefType)]
    lower_module(module)
    module.verify()
    text = io.StringIO()
    Printer(text).print_op(module)
    engine = JitEngine(opt)
    engine.add_module(emit_module(module, engine.triple, engine.data_layout))
    return CompiledModel(engine, name, ins, outs, text.getvalue())
