"""Expressions of the shape graph ops: pure data movement, every index affine.

``reshape`` is here for index composition (a consumer reading through a reshape); a
lowering normally turns it into a view. Slices and edge / reflect pads substitute their
starts, steps and pad regions as literals: the parse-time bounds check cannot relate them
to the shapes symbolically.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from mlc.dialects.graph import shape as sh
from mlc.texpr import Definition, Iterator, Read, Statement, TensorDecl, const, it
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
    simplify,
    size_names,
)

TRANSPOSE = """
transpose(X: $T[@(D#)]) -> Y: $T[$sy] {
  Y[@(i#)] = X[$ix]
}"""

EXPAND = """
expand(X: $T[$sx]) -> Y: $T[@(D#)] {
  Y[@(i#)] = X[$ix]
}"""

TILE = """
tile<@(R#)>(X: $T[@(D#)]) -> Y: $T[@(D# * R#)] {
  Y[@(i#)] = X[@(i# % D#)]
}"""

#: Row-major linearization: Y's flat position (strides SY#) split by X's strides SX#.
#: ``$dx#`` / ``$dy#`` are the size names (``1`` for unit axes, which then read 0).
RESHAPE = """
reshape<@y(SY#), @x(SX#)>(X: $T[@x($dx#)]) -> Y: $T[@y($dy#)] {
  Y[@y(i#)] = X[@x((@y+(i# * SY#)) / SX# % $dx#)]
}"""

SPLIT = """
split(X: $T[$sx]) -> ($results) {
$pieces
}"""
SPLIT_PIECE = "  Y$k[@(i#)] = X[$ix] where i$a in 0..L$k"

SLICE = """
slice(X: $T[$sx]) -> Y: $T[$sy] {
  Y[@(i#)] = X[@($start# + i# * $step#)] where @(i# in 0..$len#)
}"""

#: ``B#`` / ``C#``: what the begin pad adds / crops; the fill value is read outside X.
PAD_CONSTANT = """
pad<@(B#, C#)>(X: $T[@(H#)]) -> Y: $T[@(O#)] {
  Y[@(i#)] = X[@(i# + C# - B#)] if in bounds else $value
}"""

#: Edge and reflect pads: one statement per combination of an axis' regions (before,
#: inside, after the kept input [c, c + k)); wrap pads read periodically in one statement.
PAD_REGIONS = {
    # mode: (index before, index inside, index after), for output index i and begin pad b
    "edge": ("{c}", "{i} - {b} + {c}", "{c} + {k} - 1"),
    "reflect": ("{c} + {b} - {i}", "{i} - {b} + {c}", "{c} + 2 * {k} - 2 + {b} - {i}"),
    "wrap": ("({i} - {b}) % {k} + {c}",) * 3,
}
PAD_PIECE = "  Y[@(i#)] = X[$ix] where $ranges"
PAD = """
pad(X: $T[$sx]) -> Y: $T[$sy] {
$pieces
}"""


def _dims(shape: Sequence[int]) -> str:
    return ", ".join(str(d) for d in shape)


@expresses(sh.TransposeOp)
def transpose(op: sh.TransposeOp) -> Expression:
    """Y[i0, i1, ...] = X[...]: X's axis perm[k] is read with i<k>."""
    perm = op.perm
    ix = [""] * len(perm)
    for k, p in enumerate(perm):
        ix[p] = f"i{k}"
    subs = {
        "T": compute_dtype(dtype_of(op.input)),
        "sy": ", ".join(f"D{p}" for p in perm),
        "ix": ", ".join(ix),
    }
    template = instantiate(TRANSPOSE, {"": range(len(perm))}, subs)
    return build(op, template, ["X"], ["Y"])


@expresses(sh.ExpandOp)
def expand(op: sh.ExpandOp) -> Expression:
    """Y[i...] = X[broadcast i...]."""
    out = shape_of(op.output)
    iters = [f"i{a}" for a in range(len(out))]
    sx, ix = broadcast(shape_of(op.input), iters, [f"D{a}" for a in range(len(out))])
    subs = {"T": compute_dtype(dtype_of(op.input)), "sx": ", ".join(sx), "ix": ", ".join(ix)}
    template = instantiate(EXPAND, {"": range(len(out))}, subs)
    return build(op, template, ["X"], ["Y"], per_axis("D", out))


@expresses(sh.TileOp)
def tile(op: sh.TileOp) -> Expression:
    """Y[i...] = X[i % D...]."""
    x = shape_of(op.input)
    if 0 in x:
        raise ExpressionError("graph.tile of an empty tensor")
    subs = {"T": compute_dtype(dtype_of(op.input))}
    template = instantiate(TILE, {"": range(len(x))}, subs)
    return build(op, template, ["X"], ["Y"], per_axis("R", op.repeats))


def _strides(shape: Sequence[int]) -> list[int]:
    return [math.prod(shape[a + 1 :]) for a in range(len(shape))]


@expresses(sh.ReshapeOp)
def reshape(op: sh.ReshapeOp) -> Expression:
    """Y[j...] = X[unravel(ravel(j...))], simplified to plain indices where dims merely
    split, merge or gain unit axes."""
    x, y = shape_of(op.input), shape_of(op.output)
    if 0 in x:
        raise ExpressionError("graph.reshape of an empty tensor")
    sizes = per_axis("SY", _strides(y)) | per_axis("SX", _strides(x))
    sizes |= {f"DY{a}": d for a, d in enumerate(y) if d != 1}
    subs = {"T": compute_dtype(dtype_of(op.input))}
    subs |= {f"dx{a}": name for a, name in enumerate(size_names(x, "DX"))}
    subs |= {f"dy{a}": name for a, name in enumerate(size_names(y, "DY"))}
    template = instantiate(RESHAPE, {"x": range(len(x)), "y": range(len(y))}, subs)
    return build(op, template, ["X"], ["Y"], sizes)


@expresses(sh.ConcatOp)
def concat(op: sh.ConcatOp) -> Expression:
    """Y[..., i, ...] = Xk[..., i - offset_k, ...] for i in offset_k..offset_k + Lk.

    Built as a definition directly (one statement per operand, in the operands' own
    dtype: a copy, exact for every type), not parsed from a template: a template's text,
    parse and symbolic bounds check grow with the number of operands, and a DenseNet has
    concatenations of every count from 2 to 64."""
    axis = op.axis
    dtype = dtype_of(op.output)
    names = tuple(f"i{a}" for a in range(len(shape_of(op.output))))
    inputs, statements, offset = [], [], 0
    for k, x in enumerate(op.operands):
        shape = shape_of(x)
        inputs.append(TensorDecl(f"X{k}", dtype, tuple(const(d) for d in shape)))
        lower = [offset if a == axis else 0 for a in range(len(shape))]
        iterators = tuple(
            Iterator(n, const(lo), const(lo + d), "parallel")
            for n, lo, d in zip(names, lower, shape, strict=True)
        )
        index = tuple(it(n) - lo if lo else it(n) for n, lo in zip(names, lower, strict=True))
        statements.append(Statement("Y", names, "=", Read(f"X{k}", index, dtype), iterators, True))
        offset += shape[axis]
    output = TensorDecl("Y", dtype, tuple(const(d) for d in shape_of(op.output)))
    definition = simplify(Definition("concat", (), tuple(inputs), (output,), (), tuple(statements)))
    operands = tuple(f"X{k}" for k in range(len(op.operands)))
    return Expression(definition, operands, ("Y",), definition)


@expresses(sh.SplitOp)
def split(op: sh.SplitOp) -> Expression:
    """Yk[..., i, ...] = X[..., i + offset_k, ...]."""
    axis = op.axis
    rank = len(shape_of(op.input))
    dtype = compute_dtype(dtype_of(op.input))
    results, pieces, lengths = [], [], []
    for k in range(len(op.results)):
        dims = [f"L{k}" if a == axis else f"D{a}" for a in range(rank)]
        results.append(f"Y{k}: {dtype}[{', '.join(dims)}]")
        off = " + ".join(lengths) or "0"
        ix = ", ".join(f"i{a} + {off}" if a == axis else f"i{a}" for a in range(rank))
        pieces.append(SPLIT_PIECE.replace("$k", str(k)).replace("$ix", ix))
        lengths.append(f"L{k}")
    sx = [" + ".join(lengths) if a == axis else f"D{a}" for a in range(rank)]
    subs = {"T": dtype, "results": ", ".join(results), "sx": ", ".join(sx), "a": axis}
    template = instantiate(SPLIT, {"": range(rank)}, subs | {"pieces": "\n".join(pieces)})
    sizes = per_axis("L", op.sizes)
    return build(op, template, ["X"], [f"Y{k}" for k in range(len(op.results))], sizes)


@expresses(sh.SliceOp)
def slice_(op: sh.SliceOp) -> Expression:
    """Y[i...] = X[start + i * step...] (steps may be negative)."""
    x = shape_of(op.input)
    subs: dict[str, object] = {
        "T": compute_dtype(dtype_of(op.input)),
        "sx": _dims(x),
        "sy": _dims(shape_of(op.output)),
        **per_axis("start", op.starts),
        **per_axis("step", op.steps),
        **per_axis("len", shape_of(op.output)),
    }
    return build(op, instantiate(SLICE, {"": range(len(x))}, subs), ["X"], ["Y"])


@expresses(sh.PadOp)
def pad(op: sh.PadOp) -> Expression:
    """Constant pads read X where it is and the fill value elsewhere; edge, reflect and
    wrap pads read X at an affine index per region of the output."""
    x, y = shape_of(op.input), shape_of(op.output)
    rank = len(x)
    pads = op.pads
    begins, ends = pads[:rank], pads[rank:]
    dtype = compute_dtype(dtype_of(op.input))
    mode = op.mode
    if mode == "constant":
        sizes = (
            per_axis("B", [max(b, 0) for b in begins])
            | per_axis("C", [max(-b, 0) for b in begins])
            | per_axis("O", y)
        )
        subs = {"T": dtype, "value": lit(op.pad_value(), dtype, via=dtype_of(op.input))}
        template = instantiate(PAD_CONSTANT, {"": range(rank)}, subs)
        return build(op, template, ["X"], ["Y"], sizes)
    # per axis: the regions [lo, hi) of the output and the X index each reads
    regions: list[list[tuple[int, int, str]]] = []
    for a in range(rank):
        b, c = max(begins[a], 0), max(-begins[a], 0)
        k = x[a] + min(begins[a], 0) + min(ends[a], 0)  # the kept input
        formulas = [f.format(i=f"i{a}", b=b, c=c, k=k) for f in PAD_REGIONS[mode]]
        spans = [(0, b), (b, b + k), (b + k, y[a])]
        if mode == "wrap" or b == 0 and b + k == y[a]:
            spans, formulas = [(0, y[a])], [formulas[1 if mode != "wrap" else 0]]
        regions.append([(lo, hi, f) for (lo, hi), f in zip(spans, formulas) if hi > lo])
    pieces = []
    for combo in _product(regions):
        ranges = ", ".join(f"i{a} in {lo}..{hi}" for a, (lo, hi, _) in enumerate(combo))
        ix = ", ".join(f for _, _, f in combo)
        pieces.append(PAD_PIECE.replace("$ix", ix).replace("$ranges", ranges))
    subs = {"T": dtype, "sx": _dims(x), "sy": _dims(y), "pieces": "\n".join(pieces)}
    return build(op, instantiate(PAD, {"": range(rank)}, subs), ["X"], ["Y"])


def _product(regions: list[list[tuple[int, int, str]]]) -> list[tuple[tuple[int, int, str], ...]]:
    result: list[tuple[tuple[int, int, str], ...]] = [()]
    for options in regions:
        result = [(*r, o) for r in result for o in options]
    return result
