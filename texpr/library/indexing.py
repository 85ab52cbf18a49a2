"""Expressions of the indexing graph ops that are affine: `trilu` (a mask on the
positions of the last two axes) and `one_hot` (each index compared with the position
along the new axis). Gathers and scatters at index values are in `NOT_AFFINE`.
"""

from __future__ import annotations

from mlc.dialects.graph import indexing as ix
from mlc.texpr.dtypes import is_float
from mlc.texpr.library.registry import expresses
from mlc.texpr.library.template import (
    Expression,
    build,
    compute_dtype,
    dtype_of,
    instantiate,
    lit,
    shape_of,
)

#: ``$keep`` compares the column minus the row with k (``$k``, clamped to the matrix).
TRILU = """
trilu(X: $T[@(D#)]) -> Y: $T[@(D#)] {
  Y[@(i#)] = select(i$c - i$r $cmp $k, X[@(i#)], $zero)
}"""

#: ``$hit``: index I[...] marks position i$a (see `one_hot`).
ONE_HOT = """
one_hot(I: $TI[$si], V: $T[2]) -> Y: $T[@(D#)] {
  Y[@(i#)] = select($hit, V[1], V[0])
}"""


@expresses(ix.TriluOp)
def trilu(op: ix.TriluOp) -> Expression:
    """Y = X where j - i >= k (upper) or j - i <= k (lower), else 0."""
    shape = shape_of(op.input)
    rank = len(shape)
    rows, cols = shape[-2:]
    k = min(max(op.k, -rows - 1), cols + 1)  # the same triangle, without i64 overflow
    dtype = compute_dtype(dtype_of(op.input))
    subs: dict[str, object] = {
        "T": dtype,
        "r": rank - 2,
        "c": rank - 1,
        "cmp": ">=" if op.upper else "<=",
        "k": lit(k, "i64"),
        "zero": lit(0, dtype),
    }
    return build(op, instantiate(TRILU, {"": range(rank)}, subs), ["X"], ["Y"])


@expresses(ix.OneHotOp)
def one_hot(op: ix.OneHotOp) -> Expression:
    """Y = V[1] where the index, as an integer and counted from `depth` when negative, is
    the position along `axis`; V[0] elsewhere. A float index is truncated toward zero in
    its own type (no conversion to an integer, so NaN and infinities mark nothing)."""
    out = shape_of(op.output)
    axis, depth = op.axis, op.depth
    index_dtype = dtype_of(op.indices)
    idx_dims = [f"D{a}" for a in range(len(out)) if a != axis]
    read = f"I[{', '.join(f'i{a}' for a in range(len(out)) if a != axis)}]"
    pos = f"i{axis}"
    if is_float(index_dtype):
        f = compute_dtype(index_dtype)
        t = f"select({read} < 0, ceil({read}), floor({read}))"
        hit = f"{t} == {f}({pos}) or {t} == {f}({pos} - {depth})"
    elif index_dtype.startswith("u"):
        hit = f"i64({read}) == {pos}"
    else:
        hit = f"i64({read}) == {pos} or i64({read}) == {pos} - {depth}"
    subs: dict[str, object] = {
        "T": compute_dtype(dtype_of(op.values)),
        "TI": compute_dtype(index_dtype),
        "si": ", ".join(idx_dims),
        "hit": hit,
    }
    template = instantiate(ONE_HOT, {"": range(len(out))}, subs)
    return build(op, template, ["I", "V"], ["Y"], {f"D{axis}": depth})
