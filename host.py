"""The machine mlc runs on: its CPU and the vector features code may use.

    features = host_features()            # avx2 / avx512f / avx512vnni / avx512bf16 / fma
    features.vector_bits                  # 512 with AVX-512, 256 with AVX2
    features.vector_width(4)              # f32 lanes per vector register: 8 with AVX2

A fact every layer may ask (a transform's default block size, a schedule's vector width),
so it sits below all of them; the targets (`targets.cpu`) build on it.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

from llvmlite import binding as llvm

__all__ = ["LIBMVEC", "HostFeatures", "host_features"]

#: glibc's vector math library (`_ZGV..._expf` and friends), by its soname
LIBMVEC = "libmvec.so.1"


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
    """The host CPU's name and features (detected once)."""
    llvm.initialize_native_target()
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
