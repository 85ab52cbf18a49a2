"""Vector math defined in the module itself, inlined into the loops that call it: `exp`
on f32 vectors.

A call of glibc's vector `expf` (`lowering.llvm_vector_math`) costs a call, its register
save/restore and a table lookup per vector; softmax, sigmoid and GELU spend most of their
time there. `mlc_expf_v<lanes>` is defined (internal, `alwaysinline`) in every module that
calls it, so the whole computation sits in the caller's loop:

    exp(x) = 2^n * p(r),  n = round(x * log2(e)),  r = x - n * ln(2)  (|r| <= ln(2) / 2)

- `n` by the rounding constant 1.5 * 2^23 (`t = fma(x, log2 e, 1.5 * 2^23)`: `n` is in the
  low mantissa bits of `t`, no float-to-int conversion), `r` by Cody and Waite's two-part
  ln(2) (its high part has few bits, so `n * hi` is exact);
- `p(r) = 1 + r + c2 r^2 + ... + c6 r^6`, Horner with fused multiply-adds; `c2..c6` fit
  `e^r` by least squares on the relative error over `[-ln2/2, ln2/2]` (Chebyshev nodes,
  rounded to f32): within 0.7 ulp of `e^r`, about 1 ulp of `exp(x)` after scaling;
- fast path, every lane in [ln(FLT_MIN), ln(FLT_MAX)] (normal results): `2^n` is added to
  `p`'s exponent bits;
- otherwise (a lane overflows, underflows into subnormals or to 0, or is NaN or an
  infinity) the vector takes the exact path: `x` is clamped to [-104, 89] (beyond them the
  result is 0 or inf anyway; NaN passes the clamps) and `p` is scaled by two powers of two
  `2^(n - n/2) * 2^(n/2)`, each representable, so subnormal results round once and large
  ones overflow to inf.

The results match libm's `expf` within 2 ulp for normal results (tests check against
float64 `exp`), with IEEE special values: exp(-inf) = 0, exp(inf) = inf, exp(NaN) = NaN.
"""

from __future__ import annotations

import re

from llvmlite import ir

from mlc.lowering.llvm_vector_math import INLINE_EXP

__all__ = ["define_inline", "is_inline"]

_SYMBOL = re.compile(rf"{INLINE_EXP}(\d+)$")  # `lowering.llvm_vector_math.inline_symbol`

_LOG2E = 1.4426950408889634
_ROUND = 12582912.0  # 1.5 * 2^23: adding it rounds to an integer kept in the low mantissa bits
_LN2_HI = 0.693359375  # 0x1.63p-1: few mantissa bits, so n * _LN2_HI is exact
_LN2_LO = -2.12194440e-4
_COEFFS = (  # c6, c5, c4, c3, c2 (see the module docstring)
    float.fromhex("0x1.687c24p-10"),
    float.fromhex("0x1.123b94p-7"),
    float.fromhex("0x1.555b58p-5"),
    float.fromhex("0x1.55548ep-3"),
    float.fromhex("0x1.fffff8p-2"),
)
_NORMAL_LOW = -87.33654  # ln(FLT_MIN): below, results are subnormal
_NORMAL_HIGH = 88.72283  # ln(FLT_MAX): above, results overflow
_CLAMP_LOW, _CLAMP_HIGH = -104.0, 89.0  # exp is 0 / inf in float beyond these


def is_inline(symbol: str) -> bool:
    """Whether `symbol` is one of the functions this module defines."""
    return _SYMBOL.match(symbol) is not None


def define_inline(module: ir.Module, symbol: str) -> ir.Function:
    """The definition of inline function `symbol` in `module` (added once)."""
    existing = module.globals.get(symbol)
    if isinstance(existing, ir.Function):
        return existing
    m = _SYMBOL.match(symbol)
    if m is None:
        raise ValueError(f"no inline math function {symbol!r}")
    return _define_expf(module, symbol, int(m.group(1)))


class _Vec:
    """Builds lane-wise f32 / i32 arithmetic on vectors of `lanes`."""

    def __init__(self, builder: ir.IRBuilder, lanes: int) -> None:
        self.b = builder
        self.lanes = lanes
        self.f = ir.VectorType(ir.FloatType(), lanes)
        self.i = ir.VectorType(ir.IntType(32), lanes)
        fma_type = ir.FunctionType(self.f, [self.f] * 3)
        name = f"llvm.fmuladd.v{lanes}f32"
        fn = builder.module.globals.get(name)
        self._fma = fn if fn is not None else ir.Function(builder.module, fma_type, name)

    def splat(self, value: float) -> ir.Constant:
        return ir.Constant(self.f, [value] * self.lanes)

    def isplat(self, value: int) -> ir.Constant:
        return ir.Constant(self.i, [value] * self.lanes)

    def fma(self, a: ir.Value, b: ir.Value, c: ir.Value) -> ir.Value:
        return self.b.call(self._fma, [a, b, c])

    def clamp(self, x: ir.Value, low: float, high: float) -> ir.Value:
        """`x` limited to [low, high]; NaN lanes stay NaN (ordered compares are false)."""
        b = self.b
        x = b.select(b.fcmp_ordered("<", x, self.splat(low)), self.splat(low), x)
        return b.select(b.fcmp_ordered(">", x, self.splat(high)), self.splat(high), x)

    def reduce(self, x: ir.Value) -> tuple[ir.Value, ir.Value]:
        """(`t`: `n` in its low mantissa bits, `p(r)`) for `x = n ln 2 + r`."""
        t = self.fma(x, self.splat(_LOG2E), self.splat(_ROUND))
        n = self.b.fsub(t, self.splat(_ROUND))
        r = self.fma(n, self.splat(-_LN2_HI), x)
        r = self.fma(n, self.splat(-_LN2_LO), r)
        p: ir.Value = self.splat(_COEFFS[0])
        for c in (*_COEFFS[1:], 1.0, 1.0):
            p = self.fma(p, r, self.splat(c))
        return t, p

    def exponent_of(self, t: ir.Value) -> ir.Value:
        """`n` as i32 lanes."""
        b = self.b
        return b.sub(b.bitcast(t, self.i), b.bitcast(self.splat(_ROUND), self.i))

    def power_of_two(self, n: ir.Value) -> ir.Value:
        """`2^n` for -126 <= n <= 127 (i32 lanes)."""
        b = self.b
        biased = b.add(n, self.isplat(127))
        return b.bitcast(b.shl(biased, self.isplat(23)), self.f)


def _define_expf(module: ir.Module, symbol: str, lanes: int) -> ir.Function:
    v_type = ir.VectorType(ir.FloatType(), lanes)
    fn = ir.Function(module, ir.FunctionType(v_type, [v_type]), symbol)
    fn.linkage = "internal"
    fn.attributes.add("alwaysinline")
    fn.attributes.add("nounwind")
    (x,) = fn.args
    entry, fast, exact = (fn.append_basic_block(n) for n in ("entry", "fast", "exact"))

    b = ir.IRBuilder(entry)
    v = _Vec(b, lanes)
    low = b.fcmp_ordered(">=", x, v.splat(_NORMAL_LOW))
    high = b.fcmp_ordered("<=", x, v.splat(_NORMAL_HIGH))
    inside = b.bitcast(b.and_(low, high), ir.IntType(lanes))
    b.cbranch(b.icmp_signed("==", inside, ir.Constant(ir.IntType(lanes), -1)), fast, exact)

    b.position_at_end(fast)  # normal results: 2^n added to p's exponent
    t, p = v.reduce(x)
    shifted = b.shl(v.exponent_of(t), v.isplat(23))
    b.ret(b.bitcast(b.add(b.bitcast(p, v.i), shifted), v_type))

    b.position_at_end(exact)  # subnormal, overflowing or special lanes
    t, p = v.reduce(v.clamp(x, _CLAMP_LOW, _CLAMP_HIGH))
    n = v.exponent_of(t)
    half = b.ashr(n, v.isplat(1))
    scaled = b.fmul(p, v.power_of_two(half))
    b.ret(b.fmul(scaled, v.power_of_two(b.sub(n, half))))
    return fn
