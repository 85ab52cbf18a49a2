"""Vector math from glibc's libmvec: whole-vector `exp`, `tanh`, `erf`, ... for vector code.

LLVM has no vector math library of its own: a `llvm.exp.v16f32` (or one of our per-lane
libm calls, `lowering.arith_to_llvm._libm`) becomes 16 calls of `expf`. glibc ships
vector variants with the x86-64 vector function ABI (`_ZGV<isa>N<lanes>v_<name>`: isa
`b` SSE4, `d` AVX2, `e` AVX-512), within 4 ulp of the correctly rounded result. After
`convert-tl-to-llvm`, `use_vector_math` renames each vector math call that has a variant
for the target's ISA:

    %y = llvm.call_intrinsic "llvm.exp.v16f32"(%x) : (vector<16xf32>) -> vector<16xf32>
      ->
    %y = llvm.call_intrinsic "llvm.mlc.vecmath._ZGVeN16v_expf"(%x) : ...

and `targets.llvm_emit` emits it as a call of that function (declared once). The JIT
loads libmvec into the process (`targets.cpu.load_vector_math`); shared libraries link `-lmvec`.
Vectors of other widths, and machines without libmvec, keep the per-lane calls.

`exp` on f32 vectors of 4, 8 or 16 lanes is the exception: it calls `mlc_expf_v<lanes>`,
which the emitter defines in the module itself and LLVM inlines (`targets.inline_math`:
1.15-1.4x the speed of libmvec's `expf` here, and no library needed):

    %y = llvm.call_intrinsic "llvm.mlc.vecmath.mlc_expf_v8"(%x) : ...
"""

from __future__ import annotations

import ctypes
import functools
import re

from xdsl.dialects import llvm
from xdsl.dialects.builtin import Float32Type, Float64Type, ModuleOp, StringAttr, VectorType

from mlc.host import LIBMVEC, HostFeatures
from mlc.lowering.arith_to_llvm import LIBM_PREFIX

__all__ = ["INLINE_EXP", "LIBMVEC", "PREFIX", "inline_symbol", "use_vector_math", "vector_symbol"]

#: intrinsic-name prefix of a call of a vector math function (the rest is its symbol)
PREFIX = "llvm.mlc.vecmath."
#: the inline `exp` on f32 vectors is this followed by the lane count (`targets.inline_math`)
INLINE_EXP = "mlc_expf_v"

#: one-argument functions libmvec has (glibc >= 2.35; 2.22 had exp, log, sin, cos)
FUNCTIONS = frozenset(
    "exp exp2 exp10 expm1 log log2 log10 log1p sin cos tan sinh cosh tanh "
    "asin acos atan asinh acosh atanh erf erfc cbrt".split()
)

_INTRINSIC = re.compile(r"llvm\.(\w+)\.v(\d+)f(32|64)$")


@functools.cache
def _libmvec() -> ctypes.CDLL | None:
    try:
        return ctypes.CDLL(LIBMVEC)
    except OSError:
        return None


def inline_symbol(fn: str, bits: int, lanes: int) -> str | None:
    """The function the emitter defines inline for `fn` on `lanes` x f<bits>
    (`targets.inline_math`), or None if there is none."""
    if fn == "exp" and bits == 32 and lanes in (4, 8, 16):
        return f"{INLINE_EXP}{lanes}"
    return None


def vector_symbol(fn: str, bits: int, lanes: int, features: HostFeatures) -> str | None:
    """libmvec's symbol for `fn` on `lanes` x f<bits> with the ISA `features` allow (None:
    no such variant here)."""
    if fn not in FUNCTIONS:
        return None
    register_bits = bits * lanes
    isa = {128: "b", 256: "d" if features.avx2 else None, 512: "e" if features.avx512f else None}
    letter = isa.get(register_bits)
    lib = _libmvec()
    if letter is None or lib is None:
        return None
    name = f"_ZGV{letter}N{lanes}v_{fn}{'f' if bits == 32 else ''}"
    return name if hasattr(lib, name) else None


def _function_of(op: llvm.CallIntrinsicOp) -> str | None:
    name = op.intrin.data
    if name.startswith(LIBM_PREFIX):
        return name[len(LIBM_PREFIX) :]
    m = _INTRINSIC.match(name)
    return m.group(1) if m else None


def use_vector_math(module: ModuleOp, features: HostFeatures) -> int:
    """Point every one-operand vector math call in `module` (the llvm dialect) at the
    inline function for it or, failing that, at libmvec's variant for `features`;
    returns how many."""
    count = 0
    for op in module.walk():
        if not isinstance(op, llvm.CallIntrinsicOp) or op.ress is None or len(op.args) != 1:
            continue
        ty = op.ress.type
        if not isinstance(ty, VectorType) or not isinstance(
            ty.element_type, Float32Type | Float64Type
        ):
            continue
        fn = _function_of(op)
        bits = 32 if isinstance(ty.element_type, Float32Type) else 64
        lanes = ty.get_shape()[0]
        symbol = None
        if fn is not None:
            symbol = inline_symbol(fn, bits, lanes) or vector_symbol(fn, bits, lanes, features)
        if symbol is not None:
            op.intrin = StringAttr(PREFIX + symbol)
            count += 1
    return count
