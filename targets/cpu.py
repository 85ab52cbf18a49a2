"""The host CPU target: feature detection, target machine, LLVM O3, in-process MCJIT.

features = host_features()            # avx2 / avx512f / avx512vnni / avx512bf16 / fma
features.vector_width(4)              # f32 lanes per vector register: 8 with AVX2
engine = JitEngine()                  # one MCJIT engine per compiled model
engine.add_module(llvmlite_module)    # verifies, runs O3 (new pass manager), finalizes
engine.function_address("main")

Ahead of time, possibly for another target (objects are position independent, for shared
libraries):

    obj = emit_object(llvm_ir_text)                                   # host CPU, O3
    obj = emit_object(llvm_ir_text, triple="aarch64-unknown-linux-gnu", cpu="neoverse-n1")
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Sequence

import numpy as np
from llvmlite import binding as llvm
from llvmlite import ir

from mlc.host import LIBMVEC, HostFeatures, host_features

__all__ = [
    "HostFeatures",
    "JitEngine",
    "TargetError",
    "emit_object",
    "host_features",
    "is_host_triple",
    "load_openmp",
    "load_vector_math",
    "optimize",
    "target_machine",
]


class TargetError(ValueError):
    """An unknown target triple, or IR that LLVM rejects."""


@functools.cache
def _initialize() -> None:
    llvm.initialize_native_target()
    llvm.initialize_native_asmprinter()


@functools.cache
def _initialize_all() -> None:
    """Every target LLVM was built with (for cross-compilation)."""
    _initialize()
    llvm.initialize_all_targets()
    llvm.initialize_all_asmprinters()


def is_host_triple(triple: str | None) -> bool:
    """Whether `triple` (None: the default) names the machine mlc runs on."""
    return triple is None or triple in (llvm.get_default_triple(), llvm.get_process_triple())


def target_machine(
    opt: int = 3,
    *,
    triple: str | None = None,
    cpu: str | None = None,
    features: str | None = None,
    jit: bool = True,
    reloc: str = "default",
) -> llvm.TargetMachine:
    """A target machine; by default for the host CPU and all its features.

    With `triple` another target (every target LLVM was built with is available); `cpu`
    then defaults to the generic CPU and `features` to that CPU's own. Use `jit=False,
    reloc="pic"` for object files that go into shared libraries."""
    if is_host_triple(triple) and cpu is None:
        _initialize()
        f = host_features()
        cpu, features = f.cpu, f.features if features is None else features
    if is_host_triple(triple):
        _initialize()
        target = llvm.Target.from_default_triple() if triple is None else _target(triple)
    else:
        _initialize_all()
        target = _target(triple)  # type: ignore[arg-type]
    return target.create_target_machine(
        cpu=cpu or "",
        features=features or "",
        opt=opt,
        reloc=reloc,
        codemodel="jitdefault" if jit else "default",
        jit=jit,
    )


def _target(triple: str) -> llvm.Target:
    try:
        return llvm.Target.from_triple(triple)
    except RuntimeError as e:
        raise TargetError(f"unknown target triple '{triple}': {str(e).strip()}") from None


def emit_object(
    llvm_ir: str,
    triple: str | None = None,
    cpu: str | None = None,
    features: str | None = None,
    opt: int = 3,
) -> bytes:
    """Parse and verify `llvm_ir`, retarget it, run the same `O<opt>` pipeline as the JIT and
    return a position-independent object file (ELF / Mach-O / COFF per the triple)."""
    tm = target_machine(opt, triple=triple, cpu=cpu, features=features, jit=False, reloc="pic")
    ref = _parse(llvm_ir)
    ref.triple = tm.triple
    ref.data_layout = str(tm.target_data)
    optimize(ref, tm, opt)
    return tm.emit_object(ref)


def _parse(llvm_ir: str) -> llvm.ModuleRef:
    try:
        ref = llvm.parse_assembly(llvm_ir)
        ref.verify()
    except RuntimeError as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else "invalid IR"
        raise TargetError(f"LLVM rejected the module: {first}") from None
    return ref


def optimize(module: llvm.ModuleRef, tm: llvm.TargetMachine, level: int = 3) -> None:
    """Run LLVM's default `O<level>` module pipeline (new pass manager) on `module`."""
    pto = llvm.PipelineTuningOptions(speed_level=level)
    pto.loop_vectorization = level >= 2
    pto.slp_vectorization = level >= 2
    pb = llvm.create_pass_builder(tm, pto)
    pb.getModulePassManager().run(module, pb)


@functools.cache
def load_vector_math() -> str:
    """Make libmvec's symbols visible to JIT-compiled code (vector math calls,
    `lowering.llvm_vector_math`); returns the library."""
    llvm.load_library_permanently(LIBMVEC)
    return LIBMVEC


@functools.cache
def load_openmp() -> str:
    """Make libgomp's symbols (`GOMP_parallel`, `omp_*`) visible to JIT-compiled code;
    returns the library loaded."""
    import ctypes.util

    path = ctypes.util.find_library("gomp") or "libgomp.so.1"
    try:
        llvm.load_library_permanently(path)
    except RuntimeError:
        raise TargetError(
            "parallel loops need the GNU OpenMP runtime (libgomp.so.1), which was not found; "
            "install it (Debian/Ubuntu: apt-get install libgomp1) or compile with "
            "num_threads=1"
        ) from None
    return path


#: constant symbol -> the buffer holding its bytes (see `JitEngine.bind_constants`)
_BOUND_CONSTANTS: dict[str, np.ndarray] = {}


#: a runtime JIT-compiled code may call -> a symbol its LLVM IR then contains
RUNTIMES = {"openmp": "GOMP_parallel", "libmvec": "_ZGV"}


def runtimes_called(llvm_ir: Iterable[str]) -> list[str]:
    """The `RUNTIMES` that code compiled from these LLVM IR texts calls."""
    texts = list(llvm_ir)
    return [name for name, mark in RUNTIMES.items() if any(mark in t for t in texts)]


def load_runtimes(names: Iterable[str]) -> None:
    """Make the named `RUNTIMES` visible to JIT-compiled code: libgomp (parallel loops),
    glibc's libmvec (vector math, `lowering.llvm_vector_math`)."""
    for name in names:
        if name == "openmp":
            load_openmp()
        elif name == "libmvec":
            load_vector_math()


class JitEngine:
    """One MCJIT execution engine (in process) holding compiled modules."""

    def __init__(self, opt: int = 3) -> None:
        _initialize()
        self.opt = opt
        self.tm = target_machine(opt)
        backing = llvm.parse_assembly("")
        self.engine = llvm.create_mcjit_compiler(backing, self.tm)
        self.modules: list[llvm.ModuleRef] = []

    @property
    def data_layout(self) -> str:
        return str(self.tm.target_data)

    @property
    def triple(self) -> str:
        return self.tm.triple

    def add_module(self, module: ir.Module | str) -> llvm.ModuleRef:
        """Parse, verify, optimize and finalize `module`; returns the optimized module."""
        text = str(module)
        load_runtimes(runtimes_called([text]))
        ref = llvm.parse_assembly(text)
        ref.triple = self.triple
        ref.data_layout = self.data_layout
        ref.verify()
        optimize(ref, self.tm, self.opt)
        self.engine.add_module(ref)
        self.engine.finalize_object()
        self.modules.append(ref)
        return ref

    def add_objects(self, objects: Sequence[bytes], runtimes: Iterable[str] = ()) -> None:
        """Link object files (`targets.codegen`) into the engine and finalize it, after
        loading the `runtimes` they call (`runtimes_called` of their IR)."""
        load_runtimes(runtimes)
        for obj in objects:
            self.engine.add_object_file(llvm.ObjectFileRef.from_data(obj))
        self.engine.finalize_object()

    def bind_constants(self, constants: dict[str, bytes]) -> None:
        """Make each constant symbol (declared, not defined, in the IR: see
        `llvm_emit.content_address_constants`) resolve to a 64-byte aligned copy of its
        bytes, held for the life of the process (a content-addressed name always means the
        same bytes, so models that share a constant share one copy)."""
        for name, raw in constants.items():
            if name in _BOUND_CONSTANTS:
                continue
            buf = np.empty(len(raw) + 64, np.uint8)
            offset = -buf.ctypes.data % 64
            data = buf[offset : offset + len(raw)]
            data[...] = np.frombuffer(raw, np.uint8)
            _BOUND_CONSTANTS[name] = buf
            llvm.add_symbol(name, data.ctypes.data)

    def function_address(self, name: str) -> int:
        address = self.engine.get_function_address(name)
        if not address:
            raise KeyError(f"no compiled function @{name}")
        return address
