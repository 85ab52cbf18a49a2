"""The host CPU target: feature detection, target machine, LLVM O3, in-process MCJIT.

features = host_features()            # avx2 / avx512f / avx512vnni / avx512bf16 / fma
features.vector_width(4)              # f32 lanes per vector register: 8 with AVX2
engine = JitEngine()                  # one MCJIT engine per compiled model
engine.add_module(llvmlite_module)    # verifies, runs O3 (new pass manager), finalizes
engine.function_address("main")
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

from llvmlite import binding as llvm
from llvmlite import ir

__all__ = ["HostFeatures", "JitEngine", "host_features", "optimize", "target_machine"]


@functools.cache
def _initialize() -> None:
    llvm.initialize_native_target()
    llvm.initialize_native_asmprinter()


@dataclass(frozen=True)
class HostFeatures:
    """What the host CPU offers (from LLVM's host feature detection)."""

    cpu: str
    features: str
    avx2: bool
    fma: bool
    avx512f: bool
    avx512vnni: bool
    avx512bf16: bool

    @property
    def vector_bits(self) -> int:
        """Width of the widest vector registers code should use."""
        return 512 if self.avx512f else 256 if self.avx2 else 128

    def vector_width(self, element_bytes: int) -> int:
        """Lanes of `element_bytes`-byte elements in one vector register."""
        return max(1, self.vector_bits // (8 * element_bytes))


@functools.cache
def host_features() -> HostFeatures:
    _initialize()
    flags = llvm.get_host_cpu_features()
    return HostFeatures(
        cpu=llvm.get_host_cpu_name(),
        features=flags.flatten(),
        avx2=bool(flags.get("avx2")),
        fma=bool(flags.get("fma")),
        avx512f=bool(flags.get("avx512f")),
        avx512vnni=bool(flags.get("avx512vnni")),
        avx512bf16=bool(flags.get("avx512bf16")),
    )


def target_machine(opt: int = 3) -> llvm.TargetMachine:
    """A target machine for the host CPU and all its features."""
    _initialize()
    f = host_features()
    target = llvm.Target.from_default_triple()
    return target.create_target_machine(cpu=f.cpu, features=f.features, opt=opt, jit=True)


def optimize(module: llvm.ModuleRef, tm: llvm.TargetMachine, level: int = 3) -> None:
    """Run LLVM's default `O<level>` module pipeline (new pass manager) on `module`."""
    pto = llvm.PipelineTuningOptions(speed_level=level)
    pto.loop_vectorization = level >= 2
    pto.slp_vectorization = level >= 2
    pb = llvm.create_pass_builder(tm, pto)
    pb.getModulePassManager().run(module, pb)


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
        ref = llvm.parse_assembly(str(module))
        ref.triple = self.triple
        ref.data_layout = self.data_layout
        ref.verify()
        optimize(ref, self.tm, self.opt)
        self.engine.add_module(ref)
        self.engine.finalize_object()
        self.modules.append(ref)
        return ref

    def function_address(self, name: str) -> int:
        address = self.engine.get_function_address(name)
        if not address:
            raise KeyError(f"no compiled function @{name}")
        return address
