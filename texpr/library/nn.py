"""Expressions of the nn graph ops: products, windows (convolutions, pools), normalizations
and the softmax family.

Window templates are written once for any number of spatial axes ``@(...)``: output
position ``o#``, kernel offset ``k#``, input position ``o# * S# + k# * D# - P#`` (stride,
dilation, begin pad). Reads outside the input are guarded; the guard's fallback is what
the padding holds (0, or ``lowest`` for max). Output sizes ``O#`` come from the op's
result type, so ``ceil_mode`` needs nothing more: its extra windows read padding.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from mlc.dialects.graph import nn
from mlc.texpr.dtypes import is_float
from mlc.texpr.library.registry import expresses
from mlc.texpr.library.template import (
    Expression,
    ExpressionError,
    broadcast,
    build,
    compute_dtype,
    dtype_of,
    instantiate,
    lit,
    per_axis,
    shape_of,
    size_names,
)

# -- products ---------------------------------------------------------------------------

#: Batch axes broadcast as elementwise ops do; a 1-D operand has no ``m`` (or ``n``) axis.
MATMUL = """
matmul(A: $T[$sa], B: $T[$sb]) -> Y: $T[$sy] {
  Y[$iy] += A[$ia] * B[$ib]
}"""

GEMM = """
gemm(A: $T[$sa], B: $T[$sb]
?c      , C: $T[$sc]
) -> Y: $T[M, N] {
?bias   Y[m, n] = $beta * C[$ic]
  Y[m, n] += $alpha * A[$ia] * B[$ib]
}"""


@expresses(nn.MatMulOp)
def matmul(op: nn.MatMulOp) -> Expression:
    """Y[batch, m, n] += A[batch, m, k] * B[batch, k, n]."""
    a, b = shape_of(op.lhs), shape_of(op.rhs)
    out = shape_of(op.output)
    batch = out[: len(out) - (len(a) > 1) - (len(b) > 1)]
    iters = [f"b{d}" for d in range(len(batch))]
    names = size_names(batch)
    sa, ia = broadcast(a[:-2], iters, names)
    sb, ib = broadcast(b[:-2], iters, names)
    sy, iy = list(names), list(iters)
    if len(a) > 1:  # a 1-D operand has no row (column) axis
        sa, ia, sy, iy = [*sa, "M"], [*ia, "m"], [*sy, "M"], [*iy, "m"]
    sa, ia, sb, ib = [*sa, "K"], [*ia, "k"], [*sb, "K"], [*ib, "k"]
    if len(b) > 1:
        sb, ib, sy, iy = [*sb, "N"], [*ib, "n"], [*sy, "N"], [*iy, "n"]
    lists = {"sa": sa, "ia": ia, "sb": sb, "ib": ib, "sy": sy, "iy": iy}
    subs = {k: ", ".join(v) for k, v in lists.items()} | {"T": compute_dtype(dtype_of(op.lhs))}
    return build(op, instantiate(MATMUL, subs=subs), ["A", "B"], ["Y"])


@expresses(nn.GemmOp)
def gemm(op: nn.GemmOp) -> Expression:
    """Y = beta * C + alpha * op(A) @ op(B), op a transpose where asked."""
    dtype = compute_dtype(dtype_of(op.a))
    alpha, beta = op.alpha, op.beta
    if not is_float(dtype) and not (alpha.is_integer() and beta.is_integer()):
        raise ExpressionError("integer graph.gemm with a non-integral alpha or beta")
    trans_a, trans_b = op.trans_a, op.trans_b
    subs: dict[str, object] = {
        "T": dtype,
        "alpha": lit(alpha, dtype),
        "beta": lit(beta, dtype),
        "sa": "K, M" if trans_a else "M, K",
        "ia": "k, m" if trans_a else "m, k",
        "sb": "N, K" if trans_b else "K, N",
        "ib": "n, k" if trans_b else "k, n",
    }
    operands = ["A", "B"]
    if op.c is not None:
        sc, ic = broadcast(shape_of(op.c), ["m", "n"], ["M", "N"])
        subs |= {"sc": ", ".join(sc), "ic": ", ".join(ic)}
        operands.append("C")
    flags = {"c": op.c is not None, "bias": op.c is not None and beta != 0.0}
    return build(op, instantiate(GEMM, subs=subs, flags=flags), operands, ["Y"])


# -- convolutions -------------------------------------------------------------------------

#: Output channel m is in group m / MG; it reads that group's CG input channels.
CONV = """
conv<G, CG, MG, @(S#, D#, P#)>(X: $T[N, G * CG, @(H#)], Wt: $T[G * MG, CG, @(K#)]
?bias   , B: $T[G * MG]
) -> Y: $T[N, G * MG, @(O#)] {
?bias   Y[n, m, @(o#)] = B[m]
  Y[n, m, @(o#)] += (X[n, m / MG * CG + c, @(o# * S# + k# * D# - P#)] if in bounds else 0)
                    * Wt[m, c, @(k#)]
}"""

#: The gather form of the transposed convolution: output o receives input i where
#: o = i * S + k * D - P, i.e. where (o + P - k * D) is a multiple of S. A tap that
#: reaches no input adds nothing, not 0 * w (a NaN or inf weight must not leak).
CONV_TRANSPOSE = """
conv_transpose<G, CG, MG, @(S#, D#, P#)>(X: $T[N, G * CG, @(H#)], Wt: $T[G * CG, MG, @(K#)]
?bias   , B: $T[G * MG]
) -> Y: $T[N, G * MG, @(O#)] {
?bias   Y[n, m, @(o#)] = B[m]
  Y[n, m, @(o#)] += select(@&((o# + P# - k# * D#) % S# == 0),
      (X[n, m / MG * CG + c, @((o# + P# - k# * D#) / S#)]
       * Wt[m / MG * CG + c, m % MG, @(k#)] if in bounds else 0), 0) where c in 0..CG
}"""


@expresses(nn.ConvOp, nn.ConvTransposeOp)
def conv(op: nn.ConvOp | nn.ConvTransposeOp) -> Expression:
    """Grouped N-d (transposed) convolution with optional bias."""
    x, w, y = shape_of(op.input), shape_of(op.weight), shape_of(op.output)
    rank, group = len(x) - 2, op.group
    transpose = isinstance(op, nn.ConvTransposeOp)
    sizes = {
        "G": group,
        "CG": x[1] // group,
        "MG": w[1] if transpose else w[0] // group,
        **per_axis("S", op.strides),
        **per_axis("D", op.dilations),
        **per_axis("P", op.pads[:rank]),
        **per_axis("O", y[2:]),
    }
    subs = {"T": compute_dtype(dtype_of(op.input))}
    flags = {"bias": op.bias is not None}
    template = instantiate(CONV_TRANSPOSE if transpose else CONV, {"": range(rank)}, subs, flags)
    operands = ["X", "Wt", "B"] if op.bias is not None else ["X", "Wt"]
    return build(op, template, operands, ["Y"], sizes)


# -- pools ------------------------------------------------------------------------------

MAX_POOL = """
max_pool<@(S#, D#, P#, K#)>(X: $T[N, C, @(H#)]) -> Y: $T[N, C, @(O#)] {
  Y[n, c, @(o#)] max= X[n, c, @(o# * S# + k# * D# - P#)] if in bounds else lowest
      where @(k# in 0..K#)
}"""

#: The divisor counts the window's taps inside [-L, H + R): the input (L = R = 0) or,
#: with count_include_pad, the explicitly padded input. It depends on the output
#: position only: lowering can fold `count` to a constant tensor.
AVERAGE_POOL = """
average_pool<@(S#, D#, P#, K#, L#, R#)>(X: $T[N, C, @(H#)]) -> Y: $T[N, C, @(O#)] {
  acc[n, c, @(o#)] += X[n, c, @(o# * S# + k# * D# - P#)] if in bounds else 0
      where @(o# in 0..O#, k# in 0..K#)
  count[@(o#)] += select(@&(o# * S# + k# * D# - P# + L# >= 0 and o# * S# + k# * D# - P# < H# + R#),
      $T(1), $T(0)) where @(o# in 0..O#, k# in 0..K#)
  Y[n, c, @(o#)] = acc[n, c, @(o#)] / count[@(o#)]
}"""

#: `AVERAGE_POOL` where every window has the same number of taps inside (no padding that
#: a window reaches, or all of it counted): the divisor is that constant, and no `count`
#: tensor is built and filled at run time.
AVERAGE_POOL_UNIFORM = """
average_pool<@(S#, D#, P#, K#)>(X: $T[N, C, @(H#)]) -> Y: $T[N, C, @(O#)] {
  acc[n, c, @(o#)] += X[n, c, @(o# * S# + k# * D# - P#)] if in bounds else 0
      where @(o# in 0..O#, k# in 0..K#)
  Y[n, c, @(o#)] = acc[n, c, @(o#)] / $count
}"""


def counted_padding(op: nn.AveragePoolOp, rank: int) -> dict[str, int]:
    """`AVERAGE_POOL`'s `L#` / `R#` sizes: the padding its divisor counts (all of it with
    count_include_pad, else none)."""
    pads = op.pads if op.count_include_pad else [0] * (2 * rank)
    return per_axis("L", pads[:rank]) | per_axis("R", pads[rank:])


def uniform_window_count(sizes: Mapping[str, int], rank: int, extents: Sequence[int]) -> int | None:
    """The number of taps every window of `AVERAGE_POOL` counts, if it is the same for
    every output position (else None): per axis, the taps `o * S + k * D - P` in
    `[-L, H + R)`; the count is their product over the axes."""
    total = 1
    for d in range(rank):
        s, dil, p, k, lo, hi = (sizes[f"{n}{d}"] for n in ("S", "D", "P", "K", "L", "R"))
        counts = {
            sum(1 for t in range(k) if -lo <= o * s + t * dil - p < extents[d] + hi)
            for o in range(sizes[f"O{d}"])
        }
        if len(counts) != 1:
            return None
        total *= counts.pop()
    return total


LP_POOL = """
lp_pool<@(S#, D#, P#, K#)>(X: $T[N, C, @(H#)]) -> Y: $T[N, C, @(O#)] {
  acc[n, c, @(o#)] += pow(abs(X[n, c, @(o# * S# + k# * D# - P#)]), $p) if in bounds else 0
      where @(o# in 0..O#, k# in 0..K#)
  Y[n, c, @(o#)] = pow(acc[n, c, @(o#)], $inv_p)
}"""

#: The flat input index of each window's maximum (ONNX MaxPool's Indices): the first
#: valid tap in row-major order if it is NaN, else the first tap equal to the largest
#: non-NaN value (the reference's strict `>` scan); -1 for a window with no valid tap.
#: ``$pos`` is a tap's row-major pixel, ``$inside`` whether it is in the input, ``$x``
#: its value; ``$pixel`` converts the pixel for ``storage_order``.
MAX_POOL_INDICES = """
max_pool_indices<@(S#, D#, P#, K#, R#, F#)>(X: $T[N, C, @(H#)]) -> Y: i64[N, C, @(O#)] {
  best[n, c, @(o#)] max= $nonan if in bounds else lowest where @(o# in 0..O#, k# in 0..K#)
  first[@(o#)] min= select($inside, $pos, highest) where @(o# in 0..O#, k# in 0..K#)
  at[n, c, @(o#)] min= select($inside and ($x == best[n, c, @(o#)]$nan), $pos, highest)
      where @(o# in 0..O#, k# in 0..K#)
  Y[n, c, @(o#)] = select(at[n, c, @(o#)] < @*(H#), (n * C + c) * @*(H#) + $pixel, -1)
}"""
MAX_POOL_INDICES_SUBS = {
    "inside": "@&(o# * S# + k# * D# - P# >= 0 and o# * S# + k# * D# - P# < H#)",
    "pos": "@+((o# * S# + k# * D# - P#) * R#)",
    "x": "(X[n, c, @(o# * S# + k# * D# - P#)] if in bounds else 0)",
}


def _window_sizes(op: nn.PoolOp) -> dict[str, int]:
    rank = len(shape_of(op.input)) - 2
    return {
        **per_axis("S", op.strides),
        **per_axis("D", op.dilations),
        **per_axis("P", op.pads[:rank]),
        **per_axis("K", op.kernel_shape),
        **per_axis("O", shape_of(op.output)[2:]),
    }


@expresses(nn.MaxPoolOp, nn.AveragePoolOp, nn.LpPoolOp, nn.MaxPoolIndicesOp)
def pool(op: nn.PoolOp) -> Expression:
    """Max, average, Lp and arg-max pooling over windows."""
    x = shape_of(op.input)
    rank = len(x) - 2
    dtype = compute_dtype(dtype_of(op.input))
    sizes = _window_sizes(op)
    subs: dict[str, object] = {"T": dtype}
    if isinstance(op, nn.MaxPoolOp):
        text = MAX_POOL
    elif isinstance(op, nn.AveragePoolOp):
        text = AVERAGE_POOL
        sizes |= counted_padding(op, rank)
        count = uniform_window_count(sizes, rank, x[2:])
        if count:
            text = AVERAGE_POOL_UNIFORM
            subs["count"] = lit(float(count), dtype)
            sizes = {k: v for k, v in sizes.items() if k[0] not in "LR"}
    elif isinstance(op, nn.LpPoolOp):
        text = LP_POOL
        p = op.p
        subs |= {"p": lit(float(p), dtype), "inv_p": lit(1.0 / p, dtype)}
    else:
        text = MAX_POOL_INDICES
        rows = [math.prod(x[3 + d :]) for d in range(rank)]
        cols = [math.prod(x[2 : 2 + d]) for d in range(rank)]
        sizes |= per_axis("R", rows) | per_axis("F", cols)
        read = "X[n, c, @(o# * S# + k# * D# - P#)]"
        floats = is_float(dtype)
        subs |= MAX_POOL_INDICES_SUBS | {
            "nonan": f"select(({read}) != {read}, lowest, {read})" if floats else read,
            "nan": " or ($pos == first[@(o#)] and $x != $x)" if floats else "",
            "pixel": (
                "at[n, c, @(o#)]" if op.storage_order == 0 else "@+(at[n, c, @(o#)] / R# % H# * F#)"
            ),
        }
    template = instantiate(text, {"": range(rank)}, subs)
    return build(op, template, ["X"], ["Y"], sizes)


GLOBAL_AVERAGE_POOL = """
global_average_pool(X: $T[N, C, @(H#)]) -> Y: $T[N, C, @(1)] {
  acc[n, c] += X[n, c, @(h#)]
  Y[n, c, @(u#)] = acc[n, c] / $T(@*(H#))
}"""

GLOBAL_MAX_POOL = """
global_max_pool(X: $T[N, C, @(H#)]) -> Y: $T[N, C, @(1)] {
  Y[n, c, @(u#)] max= X[n, c, @(h#)]
}"""


@expresses(nn.GlobalAveragePoolOp, nn.GlobalMaxPoolOp)
def global_pool(op: nn.GlobalPoolOp) -> Expression:
    """Mean or maximum over all spatial axes; the result keeps them as unit axes."""
    text = GLOBAL_MAX_POOL if isinstance(op, nn.GlobalMaxPoolOp) else GLOBAL_AVERAGE_POOL
    axes = {"": range(len(shape_of(op.input)) - 2)}
    template = instantiate(text, axes, {"T": compute_dtype(dtype_of(op.input))})
    return build(op, template, ["X"], ["Y"])


# -- normalizations ---------------------------------------------------------------------

BATCH_NORM = """
batch_norm(X: $T[N, C, @(H#)], Scale: $T1[C], Bias: $T2[C], Mean: $T3[C], Var: $T4[C])
    -> Y: $T[N, C, @(H#)] {
  Y[n, c, @(h#)] = $T(($W(X[n, c, @(h#)]) - $W(Mean[c])) * ($W(Scale[c]) / sqrt($W(Var[c]) + $eps))
                      + $W(Bias[c]))
}"""

INSTANCE_NORM = """
instance_norm(X: $T[N, C, @(H#)], Scale: $T[C], Bias: $T[C]) -> Y: $T[N, C, @(H#)] {
  acc[n, c] += X[n, c, @(h#)]
  mean[n, c] = acc[n, c] / $T(@*(H#))
  sq[n, c] += (X[n, c, @(h#)] - mean[n, c]) * (X[n, c, @(h#)] - mean[n, c])
  Y[n, c, @(h#)] = (X[n, c, @(h#)] - mean[n, c]) / sqrt(sq[n, c] / $T(@*(H#)) + $eps)
                   * Scale[c] + Bias[c]
}"""

#: Normalizes over the inner axes ``@n`` (from `axis` on) for each outer index ``@o``.
LAYER_NORM = """
layer_norm(X: $T[@(D#)], Scale: $T[$ss]
?bias   , Bias: $T[$sb]
) -> Y: $T[@(D#)] {
  acc[@o(i#)] += X[@(i#)]
  mean[@o(i#)] = acc[@o(i#)] / $T(@n*(D#))
  sq[@o(i#)] += (X[@(i#)] - mean[@o(i#)]) * (X[@(i#)] - mean[@o(i#)])
  Y[@(i#)] = (X[@(i#)] - mean[@o(i#)]) / sqrt(sq[@o(i#)] / $T(@n*(D#)) + $eps) * Scale[$is]
?bias   Y[@(i#)] += Bias[$ib]
}"""

#: Sum of squares over the channel window [c - LO, c - LO + SIZE).
LRN = """
lrn<LO, SIZE>(X: $T[N, C, @(H#)]) -> Y: $T[N, C, @(H#)] {
  sq[n, c, @(h#)] += (X[n, c + j - LO, @(h#)] * X[n, c + j - LO, @(h#)]) if in bounds else 0
      where c in 0..C, j in 0..SIZE
  Y[n, c, @(h#)] = X[n, c, @(h#)] / pow($bias + $scale * sq[n, c, @(h#)], $beta)
}"""


@expresses(nn.BatchNormOp)
def batch_norm(op: nn.BatchNormOp) -> Expression:
    """(x - mean) * (scale / sqrt(var + eps)) + bias per channel, in the widest type of x
    and the parameters (f64 parameters are not rounded to an f32 x), rounded to x's."""
    dtype = compute_dtype(dtype_of(op.input))
    params = [compute_dtype(dtype_of(v)) for v in (op.scale, op.bias, op.mean, op.var)]
    wide = "f64" if "f64" in (dtype, *params) else dtype
    subs: dict[str, object] = {"T": dtype, "W": wide, "eps": lit(op.epsilon, wide)}
    for k, param in enumerate(params, start=1):
        subs[f"T{k}"] = param
    axes = {"": range(len(shape_of(op.input)) - 2)}
    operands = ["X", "Scale", "Bias", "Mean", "Var"]
    return build(op, instantiate(BATCH_NORM, axes, subs), operands, ["Y"])


@expresses(nn.InstanceNormOp)
def instance_norm(op: nn.InstanceNormOp) -> Expression:
    """Normalize each (n, c) over the spatial axes, then scale and shift per channel."""
    dtype = compute_dtype(dtype_of(op.input))
    subs = {"T": dtype, "eps": lit(op.epsilon, dtype)}
    axes = {"": range(len(shape_of(op.input)) - 2)}
    return build(op, instantiate(INSTANCE_NORM, axes, subs), ["X", "Scale", "Bias"], ["Y"])


@expresses(nn.LayerNormOp)
def layer_norm(op: nn.LayerNormOp) -> Expression:
    """Normalize over the axes from `axis` on; scale (and bias) broadcast to them."""
    x = shape_of(op.input)
    axis = op.axis
    dtype = compute_dtype(dtype_of(op.input))
    inner = [f"i{a}" for a in range(axis, len(x))]
    names = [f"D{a}" for a in range(axis, len(x))]
    subs: dict[str, object] = {"T": dtype, "eps": lit(op.epsilon, dtype)}
    operands = ["X", "Scale"]
    for key, value in (("s", op.scale), ("b", op.bias)):
        if value is None:
            continue
        dims, index = broadcast(shape_of(value), inner, names)
        subs |= {f"s{key}": ", ".join(dims), f"i{key}": ", ".join(index)}
        operands += ["Bias"] if key == "b" else []
    axes = {"": range(len(x)), "o": range(axis), "n": range(axis, len(x))}
    template = instantiate(LAYER_NORM, axes, subs, {"bias": op.bias is not None})
    return build(op, template, operands, ["Y"])


@expresses(nn.LrnOp)
def lrn(op: nn.LrnOp) -> Expression:
    """x / (bias + alpha / size * window sum of x^2) ** beta across channels."""
    dtype = compute_dtype(dtype_of(op.input))
    size = op.size
    subs = {
        "T": dtype,
        "bias": lit(op.bias, dtype),
        "scale": lit(op.alpha / size, dtype),
        "beta": lit(op.beta, dtype),
    }
    axes = {"": range(len(shape_of(op.input)) - 2)}
    sizes = {"LO": (size - 1) // 2, "SIZE": size}
    return build(op, instantiate(LRN, axes, subs), ["X"], ["Y"], sizes)


# -- softmax family ---------------------------------------------------------------------

#: ``@k`` are the kept axes (not in `axes`); ``mx`` and ``sum`` are per kept index. The
#: exponentials are computed once, into ``e`` (read twice: it is not inlined); the rows are
#: scaled by the reciprocal of their sum (a multiplication per element, not a division).
SOFTMAX = """
softmax(X: $T[@(D#)]) -> Y: $T[@(D#)] {
  mx[@k(i#)] max= X[@(i#)]
  e[@(i#)] = exp(X[@(i#)] - mx[@k(i#)])
  sum[@k(i#)] += e[@(i#)]
  inv[@k(i#)] = 1 / sum[@k(i#)]
  Y[@(i#)] = e[@(i#)] * inv[@k(i#)]
}"""

LOG_SOFTMAX = """
log_softmax(X: $T[@(D#)]) -> Y: $T[@(D#)] {
  mx[@k(i#)] max= X[@(i#)]
  sum[@k(i#)] += exp(X[@(i#)] - mx[@k(i#)])
  Y[@(i#)] = X[@(i#)] - mx[@k(i#)] - log(sum[@k(i#)])
}"""

#: 1 at the first (row-major over `axes`) position of the maximum; NaN counts as maximal.
HARDMAX = """
hardmax(X: $T[@(D#)]) -> Y: $T[@(D#)] {
  mx[@k(i#)] max= X[@(i#)]
  first[@k(i#)] min= select((X[@(i#)]) == mx[@k(i#)] or (X[@(i#)]) != X[@(i#)], $pos, highest)
  Y[@(i#)] = select($pos == first[@k(i#)], 1, 0)
}"""


@expresses(nn.SoftmaxOp, nn.LogSoftmaxOp, nn.HardmaxOp)
def softmax(op: nn.SoftmaxLikeOp) -> Expression:
    """Normalizations over `axes` as a sequence of reductions over them."""
    rank = len(shape_of(op.input))
    axes = op.axes
    text = {nn.SoftmaxOp: SOFTMAX, nn.LogSoftmaxOp: LOG_SOFTMAX, nn.HardmaxOp: HARDMAX}[type(op)]
    # row-major position over the reduced axes: i1 * D2 * D3 + i2 * D3 + i3
    pos = " + ".join(" * ".join([f"i{a}"] + [f"D{b}" for b in axes if b > a]) for a in axes)
    subs = {"T": compute_dtype(dtype_of(op.input)), "pos": pos}
    lists = {"": range(rank), "k": [a for a in range(rank) if a not in axes]}
    return build(op, instantiate(text, lists, subs), ["X"], ["Y"])


# -- rms norm, einsum ---------------------------------------------------------------------

#: The mean square over the inner axes ``@n`` (from `axis` on) for each outer index ``@o``.
RMS_NORM = """
rms_norm(X: $T[@(D#)], Scale: $T[$ss]) -> Y: $T[@(D#)] {
  sq[@o(i#)] += X[@(i#)] * X[@(i#)]
  Y[@(i#)] = X[@(i#)] / sqrt(sq[@o(i#)] / $T(@n*(D#)) + $eps) * Scale[$is]
}"""


@expresses(nn.RmsNormOp)
def rms_norm(op: nn.RmsNormOp) -> Expression:
    """x / sqrt(mean(x * x) + eps) * scale over the axes from `axis` on."""
    x = shape_of(op.input)
    axis = op.axis
    dtype = compute_dtype(dtype_of(op.input))
    inner = [f"i{a}" for a in range(axis, len(x))]
    names = [f"D{a}" for a in range(axis, len(x))]
    dims, index = broadcast(shape_of(op.scale), inner, names)
    subs: dict[str, object] = {
        "T": dtype,
        "eps": lit(op.epsilon, dtype),
        "ss": ", ".join(dims),
        "is": ", ".join(index),
    }
    axes = {"": range(len(x)), "o": range(axis), "n": range(axis, len(x))}
    return build(op, instantiate(RMS_NORM, axes, subs), ["X", "Scale"], ["Y"])


@expresses(nn.EinsumOp)
def einsum(op: nn.EinsumOp) -> Expression:
    """Y[out letters] += X0[letters] * X1[letters] * ...: one iterator per letter (a
    repeated letter reads a diagonal), size-1 axes of a larger letter read at 0."""
    shapes = [shape_of(v) for v in op.operands]
    terms, out, sizes = nn.einsum_sizes(op.name, op.equation, shapes)
    dtype = compute_dtype(dtype_of(op.output))
    params, reads = [], []
    for k, (term, shape) in enumerate(zip(terms, shapes, strict=True)):
        broadcast_axis = [d == 1 and sizes[c] != 1 for c, d in zip(term, shape, strict=True)]
        dims = ["1" if b else f"S{c}" for c, b in zip(term, broadcast_axis, strict=True)]
        index = ["0" if b else f"i{c}" for c, b in zip(term, broadcast_axis, strict=True)]
        params.append(f"X{k}: {dtype}[{', '.join(dims)}]")
        reads.append(f"X{k}[{', '.join(index)}]")
    summed = set("".join(terms)) - set(out)
    target = ", ".join(f"i{c}" for c in out)
    body = " * ".join(reads)
    text = (
        f"einsum({', '.join(params)}) -> Y: {dtype}[{', '.join(f'S{c}' for c in out)}] {{\n"
        f"  Y[{target}] {'+=' if summed else '='} {body}\n}}"
    )
    operands = [f"X{k}" for k in range(len(terms))]
    return build(op, instantiate(text), operands, ["Y"], {f"S{c}": n for c, n in sizes.items()})
