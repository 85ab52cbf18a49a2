"""Which CPU flags (as `/proc/cpuinfo` names them) code compiled by mlc needs.

    required_cpu_flags("+avx2,+fma,-avx512f,...")      # ['avx', 'avx2', 'fma', ...]
    level_features("x86-64-v3")                         # LLVM names of the psABI level

The wheel runtime (`deploy/wheel_runtime.py`) compares these with the machine's flags before
loading a library. Only user-mode instruction-set extensions that compiled code can contain
are listed; system features (fsgsbase, invpcid, shadow stacks, xsave variants, cache-line
flushes) are not, since numeric code never executes them and virtual machines often hide
them from `/proc/cpuinfo`.
"""

from __future__ import annotations

from mlc.host import HostFeatures

__all__ = ["LEVELS", "level_features", "lowering_flags", "required_cpu_flags"]

#: LLVM feature name -> the `/proc/cpuinfo` flag of the same instructions (x86)
LLVM_TO_CPUINFO: dict[str, str] = {
    "cmov": "cmov",
    "cx8": "cx8",
    "cx16": "cx16",
    "mmx": "mmx",
    "sse": "sse",
    "sse2": "sse2",
    "sse3": "pni",
    "ssse3": "ssse3",
    "sse4.1": "sse4_1",
    "sse4.2": "sse4_2",
    "crc32": "sse4_2",
    "sse4a": "sse4a",
    "popcnt": "popcnt",
    "sahf": "lahf_lm",
    "avx": "avx",
    "avx2": "avx2",
    "fma": "fma",
    "fma4": "fma4",
    "xop": "xop",
    "f16c": "f16c",
    "bmi": "bmi1",
    "bmi2": "bmi2",
    "lzcnt": "abm",
    "movbe": "movbe",
    "adx": "adx",
    "aes": "aes",
    "pclmul": "pclmulqdq",
    "sha": "sha_ni",
    "vaes": "vaes",
    "vpclmulqdq": "vpclmulqdq",
    "gfni": "gfni",
    "rdrnd": "rdrand",
    "rdseed": "rdseed",
    "avxvnni": "avx_vnni",
    "avx512f": "avx512f",
    "avx512cd": "avx512cd",
    "avx512dq": "avx512dq",
    "avx512bw": "avx512bw",
    "avx512vl": "avx512vl",
    "avx512ifma": "avx512ifma",
    "avx512vbmi": "avx512vbmi",
    "avx512vbmi2": "avx512_vbmi2",
    "avx512vnni": "avx512_vnni",
    "avx512bitalg": "avx512_bitalg",
    "avx512vpopcntdq": "avx512_vpopcntdq",
    "avx512bf16": "avx512_bf16",
    "avx512fp16": "avx512_fp16",
    "amx-tile": "amx_tile",
    "amx-int8": "amx_int8",
    "amx-bf16": "amx_bf16",
}

_V1 = ["cmov", "cx8", "mmx", "sse", "sse2"]
_V2 = [*_V1, "cx16", "sahf", "popcnt", "sse3", "sse4.1", "sse4.2", "ssse3"]
_V3 = [*_V2, "avx", "avx2", "bmi", "bmi2", "f16c", "fma", "lzcnt", "movbe"]
_V4 = [*_V3, "avx512f", "avx512bw", "avx512cd", "avx512dq", "avx512vl"]
#: the x86-64 psABI microarchitecture levels (what `--cpu x86-64-vN` lets LLVM use)
LEVELS: dict[str, list[str]] = {
    "x86-64": _V1,
    "x86-64-v2": _V2,
    "x86-64-v3": _V3,
    "x86-64-v4": _V4,
}


def level_features(cpu: str) -> list[str]:
    """The LLVM features of the x86-64 level `cpu`; ValueError for another name."""
    if cpu not in LEVELS:
        raise ValueError(
            f"unknown CPU '{cpu}' for a wheel: use the host's (the default) or one of "
            f"{', '.join(LEVELS)} (mlc can only check the features of these at load time)"
        )
    return list(LEVELS[cpu])


def required_cpu_flags(features: str | list[str]) -> list[str]:
    """The cpuinfo flags for LLVM `features`: a `+a,-b,+c` string or a list of names."""
    names = (
        [f[1:] for f in features.split(",") if f.startswith("+")]
        if isinstance(features, str)
        else list(features)
    )
    return sorted({LLVM_TO_CPUINFO[n] for n in names if n in LLVM_TO_CPUINFO})


def lowering_flags(host: HostFeatures) -> list[str]:
    """The LLVM features mlc's own lowering assumed (the host's vector width, VNNI, BF16,
    glibc's vector math variants), whatever CPU LLVM is then told to compile for."""
    flags = []
    if host.avx2:
        flags += ["avx", "avx2"]
    if host.fma:
        flags.append("fma")
    if host.avx512f:
        flags += ["avx512f", "avx512bw", "avx512dq", "avx512vl"]
    if host.avx512vnni:
        flags.append("avx512vnni")
    if host.avx512bf16:
        flags.append("avx512bf16")
    return flags
