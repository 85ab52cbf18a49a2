"""Expressions of the quantization graph ops (the integer path to VNNI).

`matmul_integer` is written so that its product kernel is exactly the u8 x s8 -> i32
form `mlc.targets.x86.MATMUL_U8S8` (identity maps, ``i32(A[m, k]) * i32(B[k, n])``,
i.e. extui x extsi for u8 x i8), which `VnniGemmSchedule` tensorizes with `vpdpbusd`:

* zero points that are the constant 0 (ONNX's default) are left out: one statement,
  ``Y[m, n] += i32(A[m, k]) * i32(B[k, n])``;
* other zero points (2-D operands) are a correction after the plain product, exact in
  wrapping i32 arithmetic:

      sum_k (A - za)(B - zb) = sum_k A B - zb * rowsum(A) - za * colsum(B) + K * za * zb

  (rowsum / colsum are O(MK) / O(KN) kernels next to the O(MNK) product; each is left
  out when its zero point is the constant 0);
* batched operands use the natural form ``(A - za) * (B - zb)`` in one kernel.

`conv_integer` subtracts the zero points inside its one kernel (padding reads 0 after
the subtraction). `quantize_linear` rounds half to even with floor/select (as
`graph.round`), saturates in the float type and converts; `dequantize_linear` is
``(f32(x) - f32(zp)) * scale``.
"""

from __future__ import annotations

import numpy as np
from xdsl.ir import SSAValue

from mlc.dialects.graph import quant
from mlc.texpr import numpy_dtype as texpr_numpy_dtype
from mlc.texpr.library.elementwise import ROUND_HALF_EVEN
from mlc.texpr.library.registry import expresses
from mlc.texpr.library.template import (
    Expression,
    ExpressionError,
    broadcast,
    build,
    constant_value,
    dtype_of,
    instantiate,
    lit,
    per_axis,
    shape_of,
    size_names,
)


def is_zero_constant(value: SSAValue) -> bool:
    """Whether ``value`` is a constant of zeros (`constant_value`)."""
    array = constant_value(value)
    return array is not None and not np.any(array)


def _zp(value: SSAValue, iterator: str, size: str) -> tuple[str, str]:
    """Declared dims and read index of a zero point: (), (1,) or per `iterator`."""
    shape = shape_of(value)
    if shape == ():
        return "", ""
    if shape == (1,):
        return "1", "0"
    return size, iterator


# -- products ---------------------------------------------------------------------------

MATMUL_INTEGER = """
matmul_integer(A: $TA[$sa], B: $TB[$sb], ZA: $TA[$sza], ZB: $TB[$szb]) -> Y: i32[$sy] {
  Y[$iy] += (i32(A[$ia]) - i32(ZA[$iza])) * (i32(B[$ib]) - i32(ZB[$izb]))
}"""

MATMUL_INTEGER_PLAIN = """
matmul_integer(A: $TA[M, K], B: $TB[K, N]) -> Y: i32[M, N] {
  Y[m, n] += i32(A[m, k]) * i32(B[k, n])
}"""

MATMUL_INTEGER_CORRECTED = """
matmul_integer(A: $TA[M, K], B: $TB[K, N], ZA: $TA[$sza], ZB: $TB[$szb]) -> Y: i32[M, N] {
  acc[m, n] += i32(A[m, k]) * i32(B[k, n]) where m in 0..M, n in 0..N, k in 0..K
?zb  rowsum[m] += i32(A[m, k]) where m in 0..M, k in 0..K
?za  colsum[n] += i32(B[k, n]) where n in 0..N, k in 0..K
?both  Y[m, n] = acc[m, n] - i32(ZB[$izb]) * rowsum[m] - i32(ZA[$iza]) * colsum[n] + $K * i32(ZA[$iza]) * i32(ZB[$izb])
?onlya  Y[m, n] = acc[m, n] - i32(ZA[$iza]) * colsum[n]
?onlyb  Y[m, n] = acc[m, n] - i32(ZB[$izb]) * rowsum[m]
}"""


@expresses(quant.MatMulIntegerOp, reads_constants=True)
def matmul_integer(op: quant.MatMulIntegerOp) -> Expression:
    """See the module docstring: plain, corrected or natural form."""
    a, b = shape_of(op.a), shape_of(op.b)
    za_zero, zb_zero = is_zero_constant(op.a_zero_point), is_zero_constant(op.b_zero_point)
    ta, tb = dtype_of(op.a), dtype_of(op.b)
    sza, iza = _zp(op.a_zero_point, "m", "M")
    szb, izb = _zp(op.b_zero_point, "n", "N")
    operands = ["A", "B", "ZA", "ZB"]
    if len(a) == 2 and len(b) == 2:
        if za_zero and zb_zero:
            template = instantiate(MATMUL_INTEGER_PLAIN, subs={"TA": ta, "TB": tb})
        else:
            subs = {"TA": ta, "TB": tb, "sza": sza, "iza": iza, "szb": szb, "izb": izb}
            subs["K"] = str(a[1])
            flags = {
                "za": not za_zero,
                "zb": not zb_zero,
                "both": not za_zero and not zb_zero,
                "onlya": not za_zero and zb_zero,
                "onlyb": za_zero and not zb_zero,
            }
            template = instantiate(MATMUL_INTEGER_CORRECTED, subs=subs, flags=flags)
        return build(op, template, operands, ["Y"])
    out = shape_of(op.output)
    batch = out[:-2]
    iters = [f"b{d}" for d in range(len(batch))]
    names = size_names(batch)
    sa, ia = broadcast(a[:-2], iters, names)
    sb, ib = broadcast(b[:-2], iters, names)
    lists = {
        "sa": [*sa, "M", "K"],
        "ia": [*ia, "m", "k"],
        "sb": [*sb, "K", "N"],
        "ib": [*ib, "k", "n"],
        "sy": [*names, "M", "N"],
        "iy": [*iters, "m", "n"],
    }
    subs = {k: ", ".join(v) for k, v in lists.items()}
    subs |= {"TA": ta, "TB": tb, "sza": sza, "iza": iza, "szb": szb, "izb": izb}
    return build(op, instantiate(MATMUL_INTEGER, subs=subs), operands, ["Y"])


#: Output channel m is in group m / MG; it reads that group's CG input channels.
CONV_INTEGER = """
conv_integer<G, CG, MG, @(S#, D#, P#)>(X: $TX[N, G * CG, @(H#)], Wt: $TW[G * MG, CG, @(K#)],
    ZX: $TX[$szx], ZW: $TW[$szw]) -> Y: i32[N, G * MG, @(O#)] {
  Y[n, m, @(o#)] += ($x if in bounds else 0) * $w
}"""


#: u8 x i8 2-D convolution as a matrix product of image patches and weights (im2col):
#: `acc` is exactly `MATMUL_U8S8`, so VNNI computes it; zero points as in
#: `MATMUL_INTEGER_CORRECTED`. The image is first transposed to NHWC and a patch row is
#: ordered (kh, kw, c), so patches are copied channel-contiguous (vectorizable); a patch
#: element outside the image reads zx, so (P - zx) is 0 there. `acc` rows are output
#: pixels: the result is transposed back to NCHW.
CONV_INTEGER_IM2COL = """
conv_integer(X: u8[$N, $C, $H, $W], Wt: i8[$M, $C, $KH, $KW], ZX: u8[$szx], ZW: i8[$szw])
    -> Y: i32[$N, $M, $OH, $OW] {
  Xh[n, h, w, c] = X[n, c, h, w] where n in 0..$N, h in 0..$H, w in 0..$W, c in 0..$C
  P[p, k] = Xh[p / $OHW, p / $OW % $OH * $S0 + k / $KWC * $D0 - $P0, p % $OW * $S1 + k / $C % $KW * $D1 - $P1, k % $C] if in bounds else $zx where p in 0..$NP, k in 0..$KK
  B[k, m] = Wt[m, k % $C, k / $KWC, k / $C % $KW] where k in 0..$KK, m in 0..$M
  acc[p, m] += i32(P[p, k]) * i32(B[k, m]) where p in 0..$NP, m in 0..$M, k in 0..$KK
?zw  rowsum[p] += i32(P[p, k]) where p in 0..$NP, k in 0..$KK
?zx  colsum[m] += i32(B[k, m]) where m in 0..$M, k in 0..$KK
  Y[n, m, oh, ow] = acc[n * $OHW + oh * $OW + ow, m]$correction
}"""

#: `CONV_INTEGER_IM2COL` between blocked layouts (`graph.conv_integer_blocked`): patches
#: read channel `c` of the input at `[n, c / IC, h, w, c % IC]`, and `acc`'s row of a pixel
#: is stored as it is into `Y[n, mb, oh, ow, mi]` (channel `mb * OC + mi`): with blocks of
#: whole channel counts (channels-last) neither side transposes.
CONV_INTEGER_BLOCKED_IM2COL = """
conv_integer_blocked(X: u8[$N, $CB, $H, $W, $IC], Wt: i8[$M, $C, $KH, $KW], ZX: u8[$szx],
    ZW: i8[$szw]) -> Y: i32[$N, $MB, $OH, $OW, $OC] {
  P[p, k] = X[p / $OHW, k % $C / $IC, p / $OW % $OH * $S0 + k / $KWC * $D0 - $P0, p % $OW * $S1 + k / $C % $KW * $D1 - $P1, k % $IC] if in bounds else $zx where p in 0..$NP, k in 0..$KK
  B[k, m] = Wt[m, k % $C, k / $KWC, k / $C % $KW] where k in 0..$KK, m in 0..$M
  acc[p, m] += i32(P[p, k]) * i32(B[k, m]) where p in 0..$NP, m in 0..$M, k in 0..$KK
?zw  rowsum[p] += i32(P[p, k]) where p in 0..$NP, k in 0..$KK
?zx  colsum[m] += i32(B[k, m]) where m in 0..$M, k in 0..$KK
  Y[n, mb, oh, ow, mi] = acc[n * $OHW + oh * $OW + ow, mb * $OC + mi]$correction
}"""


#: largest patch matrix (u8 elements) the im2col form allocates
IM2COL_MAX_BYTES = 1 << 26


def _constant_scalar(value: SSAValue) -> int | None:
    """The value of a one-element constant (None: not a constant)."""
    array = constant_value(value)
    return None if array is None or array.size != 1 else int(array.reshape(()))


def _plain_shapes(
    op: quant.ConvIntegerOp | quant.ConvIntegerBlockedOp,
) -> tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]]:
    """(input, output, weight) shapes, the blocked ones as the NCHW tensors they hold."""
    x, y, w = shape_of(op.input), shape_of(op.output), shape_of(op.weight)
    if isinstance(op, quant.ConvIntegerBlockedOp):
        x = (x[0], x[1] * x[4], x[2], x[3])
        y = (y[0], y[1] * y[4], y[2], y[3])
    return x, y, w


def im2col_applies(op: quant.ConvIntegerOp | quant.ConvIntegerBlockedOp) -> bool:
    """Whether the convolution has the im2col form: u8 x i8, 2-D, group 1, a constant x
    zero point where it is padded, a patch matrix of at most `IM2COL_MAX_BYTES`."""
    x, y, w = _plain_shapes(op)
    if isinstance(op, quant.ConvIntegerOp) and (len(x) != 4 or op.group != 1):
        return False
    if (dtype_of(op.input), dtype_of(op.weight)) != ("u8", "i8"):
        return False
    padded_unknown = not is_zero_constant(op.x_zero_point) and (
        _constant_scalar(op.x_zero_point) is None
    )
    if padded_unknown and any(op.pads):
        return False
    return x[0] * y[2] * y[3] * x[1] * w[2] * w[3] <= IM2COL_MAX_BYTES


def _conv_integer_im2col(
    op: quant.ConvIntegerOp | quant.ConvIntegerBlockedOp,
) -> Expression | None:
    """The im2col form of a u8 x i8, group-1 2-D `conv_integer` (or of
    `conv_integer_blocked`); None where it does not apply (other dtypes, ranks or groups,
    or padding with a zero point not known here)."""
    if not im2col_applies(op):
        return None
    blocked = isinstance(op, quant.ConvIntegerBlockedOp)
    x, y, w = _plain_shapes(op)
    zx_zero, zw_zero = is_zero_constant(op.x_zero_point), is_zero_constant(op.w_zero_point)
    pads = op.pads
    zx = 0 if zx_zero else _constant_scalar(op.x_zero_point)
    kk = x[1] * w[2] * w[3]
    channel = f"mb * {op.block} + mi" if blocked else "m"
    szx, izx = _zp(op.x_zero_point, "", "")
    szw, izw = _zp(op.w_zero_point, channel, str(w[0]))
    pixel = f"n * {y[2] * y[3]} + oh * {y[3]} + ow"
    correction = ""
    if not zw_zero:
        correction += f" - i32(ZW[{izw}]) * rowsum[{pixel}]"
    if not zx_zero:
        correction += f" - i32(ZX[{izx}]) * colsum[{channel}]"
    if not zx_zero and not zw_zero:
        correction += f" + {kk} * i32(ZX[{izx}]) * i32(ZW[{izw}])"
    names = ("N", "C", "H", "W", "M", "KH", "KW", "OH", "OW")
    subs: dict[str, object] = dict(zip(names, (*x, w[0], *w[2:], *y[2:]), strict=True))
    subs |= {
        "szx": szx,
        "szw": szw,
        "OHW": y[2] * y[3],
        "KWC": w[3] * x[1],
        "NP": x[0] * y[2] * y[3],
        "KK": kk,
        "zx": zx or 0,
        "correction": correction,
        **per_axis("S", op.strides),
        **per_axis("D", op.dilations),
        **per_axis("P", pads[:2]),
    }
    if blocked:
        block_shape = shape_of(op.input)
        subs |= {"CB": block_shape[1], "IC": block_shape[4], "MB": y[1] // op.block}
        subs["OC"] = op.block
    flags = {"zx": not zx_zero, "zw": not zw_zero}
    source = CONV_INTEGER_BLOCKED_IM2COL if blocked else CONV_INTEGER_IM2COL
    template = instantiate(source, subs=subs, flags=flags)
    return build(op, template, ["X", "Wt", "ZX", "ZW"], ["Y"])


@expresses(quant.ConvIntegerBlockedOp, reads_constants=True)
def conv_integer_blocked(op: quant.ConvIntegerBlockedOp) -> Expression:
    """`conv_integer` between blocked layouts, in the im2col form (u8 x i8 only: the
    layout pass blocks no other)."""
    expression = _conv_integer_im2col(op)
    if expression is None:
        raise ExpressionError(
            f"{op.name}: only u8 x i8 products with a constant x zero point (when padded) "
            "have a blocked form"
        )
    return expression


@expresses(quant.ConvIntegerOp, reads_constants=True)
def conv_integer(op: quant.ConvIntegerOp) -> Expression:
    """Grouped N-d convolution of (X - zx) and (W - zw) in i32: u8 x i8 2-D convolutions
    in the im2col form (`CONV_INTEGER_IM2COL`), the others in one kernel."""
    im2col = _conv_integer_im2col(op)
    if im2col is not None:
        return im2col
    x, y = shape_of(op.input), shape_of(op.output)
    rank, group = len(x) - 2, op.group
    w = shape_of(op.weight)
    sizes = {
        "G": group,
        "CG": x[1] // group,
        "MG": w[0] // group,
        **per_axis("S", op.strides),
        **per_axis("D", op.dilations),
        **per_axis("P", op.pads[:rank]),
        **per_axis("O", y[2:]),
    }
    szx, izx = _zp(op.x_zero_point, "", "")
    szw, izw = _zp(op.w_zero_point, "m", "G * MG")
    xr = "i32(X[n, m / MG * CG + c, @(o# * S# + k# * D# - P#)])"
    wr = "i32(Wt[m, c, @(k#)])"
    if not is_zero_constant(op.x_zero_point):
        xr = f"({xr} - i32(ZX[{izx}]))"
    if not is_zero_constant(op.w_zero_point):
        wr = f"({wr} - i32(ZW[{izw}]))"
    subs = {"TX": dtype_of(op.input), "TW": dtype_of(op.weight), "x": xr, "w": wr}
    subs |= {"szx": szx, "szw": szw}
    template = instantiate(CONV_INTEGER, {"": range(rank)}, subs)
    return build(op, template, ["X", "Wt", "ZX", "ZW"], ["Y"], sizes)


# -- quantize / dequantize --------------------------------------------------------------

QUANTIZE_LINEAR = """
quantize_linear(X: $T[$sx], S: $T[$ss], Z: $TZ[$sz]) -> Y: $TZ[$sx] {
  Y[$ix] = $TZ(min(max($round + $T(Z[$iz]), $lo), $hi))
}"""

DEQUANTIZE_LINEAR = """
dequantize_linear(X: $TX[$sx], S: f32[$ss], Z: $TX[$sz]) -> Y: f32[$sx] {
  Y[$ix] = (f32(X[$ix]) - f32(Z[$iz])) * S[$is]
}"""


def _quant_subs(op: quant.QuantizeLinearOp | quant.DequantizeLinearOp) -> dict[str, str]:
    shape = shape_of(op.input)
    names = [f"D{d}" for d in range(len(shape))]
    iters = [f"i{d}" for d in range(len(shape))]
    axis = op.scale_axis()

    def dims(value: SSAValue) -> tuple[str, str]:
        if axis is not None:
            return names[axis], iters[axis]
        return ("1", "0") if shape_of(value) == (1,) else ("", "")

    (ss, index), (sz, iz) = dims(op.scale), dims(op.zero_point)
    subs = {"sx": ", ".join(names), "ix": ", ".join(iters)}
    return subs | {"ss": ss, "is": index, "sz": sz, "iz": iz}


@expresses(quant.QuantizeLinearOp)
def quantize_linear(op: quant.QuantizeLinearOp) -> Expression:
    """saturate(round_half_even(X / S) + Z), clamped in the float type, then converted."""
    subs = _quant_subs(op)
    t, tz = dtype_of(op.input), dtype_of(op.output)
    info = np.iinfo(texpr_numpy_dtype(tz))
    quotient = f"(X[{subs['ix']}] / S[{subs['is']}])"
    subs |= {
        "T": t,
        "TZ": tz,
        "round": ROUND_HALF_EVEN.replace("$x0", quotient),
        "lo": lit(int(info.min), t),
        "hi": lit(int(info.max), t),
    }
    return build(op, instantiate(QUANTIZE_LINEAR, subs=subs), ["X", "S", "Z"], ["Y"])


@expresses(quant.DequantizeLinearOp)
def dequantize_linear(op: quant.DequantizeLinearOp) -> Expression:
    """(f32(X) - f32(Z)) * S."""
    subs = _quant_subs(op) | {"TX": dtype_of(op.input)}
    return build(op, instantiate(DEQUANTIZE_LINEAR, subs=subs), ["X", "S", "Z"], ["Y"])
