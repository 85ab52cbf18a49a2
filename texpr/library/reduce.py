"""Expressions of the reduce graph ops: reductions over axes, argmax / argmin, running
sums and products (cumsum, cumprod: a reduction over the axis of a `select` on the
positions) and top_k (each element's rank by counting, then a selection per rank).

Iterators ``i0, i1, ...`` run over the input's axes; a statement whose target omits a
reduced ``i`` reduces over it. With ``keepdims`` the target indexes the kept unit axis
with ``u<axis>`` (range 0..1). Axis lists: ``@(...)`` every axis, ``@k(...)`` the kept ones.
"""

from __future__ import annotations

import math

from mlc.dialects.graph import reduce as rd
from mlc.texpr.dtypes import is_float
from mlc.texpr.library.registry import expresses
from mlc.texpr.library.template import (
    Expression,
    build,
    compute_dtype,
    dtype_of,
    float_dtype,
    instantiate,
    shape_of,
)

#: ``$op`` is a texpr reduction, ``$body`` the reduced value of ``X[@(i#)]``.
REDUCE = """
$name(X: $T[@(D#)]) -> Y: $T[$out] {
  Y[$target] $op $body
}"""

#: Reductions followed by a scalar function of the reduced value ``acc``.
REDUCE_THEN = """
$name(X: $T[@(D#)]) -> Y: $T[$out] {
  acc[@k(i#)] += $body
  Y[$target] = $finish
}"""

#: log(sum(exp(x))) shifted by the (finite) maximum, in the float type ``$F``.
LOG_SUM_EXP = """
reduce_log_sum_exp(X: $T[@(D#)]) -> Y: $T[$out] {
  mx[@k(i#)] max= $F(X[@(i#)])
  peak[@k(i#)] = select(abs(mx[@k(i#)]) < inf, mx[@k(i#)], 0)
  acc[@k(i#)] += exp($F(X[@(i#)]) - peak[@k(i#)])
  Y[$target] = $T(log(acc[@k(i#)]) + peak[@k(i#)])
}"""

#: The first (``min=``, fallback ``highest``) or last (``max=``, fallback -1) position
#: along ``i$a`` where x equals the extreme value; NaN counts as the extreme, as numpy's.
ARG_REDUCE = """
$name(X: $T[@(D#)]) -> Y: i64[$out] {
  best[@k(i#)] $extreme X[@(i#)]
  Y[$target] $pick select((X[@(i#)]) == best[@k(i#)]$nan, i$a, $none)
}"""

#: reduced-value formula and finishing function (None: reduce straight into Y).
REDUCTIONS: dict[type, tuple[str, str, str | None]] = {
    rd.ReduceSumOp: ("+=", "X[@(i#)]", None),
    rd.ReduceProdOp: ("*=", "X[@(i#)]", None),
    rd.ReduceMaxOp: ("max=", "X[@(i#)]", None),
    rd.ReduceMinOp: ("min=", "X[@(i#)]", None),
    rd.ReduceL1Op: ("+=", "abs(X[@(i#)])", None),
    rd.ReduceSumSquareOp: ("+=", "X[@(i#)] * X[@(i#)]", None),
    rd.ReduceL2Op: ("+=", "X[@(i#)] * X[@(i#)]", "$T(sqrt($F(acc[@k(i#)])))"),
    rd.ReduceLogSumOp: ("+=", "X[@(i#)]", "$T(log($F(acc[@k(i#)])))"),
}


def _geometry(shape: tuple[int, ...], axes: tuple[int, ...], keepdims: bool) -> dict[str, object]:
    """Output shape and target indices of a reduction over ``axes``."""
    out, target = [], []
    for a in range(len(shape)):
        if a not in axes:
            out.append(f"D{a}")
            target.append(f"i{a}")
        elif keepdims:
            out.append("1")
            target.append(f"u{a}")
    return {"out": ", ".join(out), "target": ", ".join(target)}


@expresses(*REDUCTIONS, rd.ReduceMeanOp, rd.ReduceLogSumExpOp)
def reduction(op: rd.ReduceOp) -> Expression:
    """Y[kept] op= f(X[all]), or a local accumulation and a finishing function."""
    shape = shape_of(op.input)
    axes = op.axes
    dtype = dtype_of(op.input)
    subs: dict[str, object] = {
        "name": op.name.removeprefix("graph."),
        "T": compute_dtype(dtype),
        "F": float_dtype(dtype),
        **_geometry(shape, axes, op.keepdims),
    }
    all_axes = {"": range(len(shape)), "k": [a for a in range(len(shape)) if a not in axes]}
    if isinstance(op, rd.ReduceLogSumExpOp):
        template = instantiate(LOG_SUM_EXP, all_axes, subs)
    elif isinstance(op, rd.ReduceMeanOp):
        # the sum divided by the count (1 for an empty set: the mean is then 0); integer
        # means truncate toward zero, signed ones in i64 as the reference
        count = max(math.prod(shape[a] for a in axes), 1)
        if is_float(dtype) or dtype.startswith("u"):
            finish = f"acc[@k(i#)] / $T({count})"
        else:
            finish = f"$T(i64(acc[@k(i#)]) / {count})"
        template = instantiate(
            REDUCE_THEN, all_axes, {**subs, "body": "X[@(i#)]", "finish": finish}
        )
    else:
        reduce_op, body, finish = REDUCTIONS[type(op)]
        if finish is None:
            template = instantiate(REDUCE, all_axes, {**subs, "op": reduce_op, "body": body})
        else:
            template = instantiate(REDUCE_THEN, all_axes, {**subs, "body": body, "finish": finish})
    return build(op, template, ["X"], ["Y"])


@expresses(rd.ArgMaxOp, rd.ArgMinOp)
def arg_reduction(op: rd.ArgReduceOp) -> Expression:
    """The extreme value, then the first (or last) position holding it."""
    shape = shape_of(op.input)
    axis = op.axis
    dtype = dtype_of(op.input)
    last = op.select_last_index
    subs: dict[str, object] = {
        "name": op.name.removeprefix("graph."),
        "T": compute_dtype(dtype),
        "a": axis,
        "extreme": "max=" if isinstance(op, rd.ArgMaxOp) else "min=",
        "pick": "max=" if last else "min=",
        "none": "-1" if last else "highest",
        "nan": " or (X[@(i#)]) != X[@(i#)]" if is_float(dtype) else "",
        **_geometry(shape, (axis,), op.keepdims),
    }
    axes = {"": range(len(shape)), "k": [a for a in range(len(shape)) if a != axis]}
    return build(op, instantiate(ARG_REDUCE, axes, subs), ["X"], ["Y"])


# -- scans and top k ----------------------------------------------------------------------

#: A running reduction along axis ``$a``: every output position reduces the inputs at
#: positions ``j`` that ``$keep`` admits (j <= i, j < i, j >= i or j > i), the identity
#: standing in for the others.
SCAN = """
$name(X: $T[@(D#)]) -> Y: $T[@(D#)] {
  Y[@(i#)] $op select(j $keep i$a, X[$xj], $identity)
}"""

#: ``rank``: how many elements along axis ``$a`` come before each one in the order
#: (``$better``: X at ``j`` before X at ``i$a``); the element of rank ``r`` is the r-th
#: result (ranks are a permutation, so exactly one element has each rank).
TOP_K = """
top_k(X: $T[@(D#)]) -> (V: $T[$sy], I: i64[$sy]) {
  rank[@(i#)] += select($better, i64(1), i64(0)) where j in 0..D$a
  V[$iy] max= select(rank[$rj] == r, X[$xj], lowest) where j in 0..D$a
  I[$iy] += select(rank[$rj] == r, j, 0) where j in 0..D$a
}"""


def _with(index: int, rank: int, name: str) -> str:
    """``i0, ..., name, ...``: the iterators of every axis, ``name`` at axis ``index``."""
    return ", ".join(name if a == index else f"i{a}" for a in range(rank))


@expresses(rd.CumSumOp, rd.CumProdOp)
def scan(op: rd.ScanOp) -> Expression:
    """Y[..., i, ...] op= select(j before-or-at i, X[..., j, ...], identity)."""
    rank, axis = len(shape_of(op.input)), op.axis
    keep = (">" if op.reverse else "<") + ("" if op.exclusive else "=")
    total = isinstance(op, rd.CumSumOp)
    subs: dict[str, object] = {
        "name": op.name.removeprefix("graph."),
        "T": compute_dtype(dtype_of(op.input)),
        "op": "+=" if total else "*=",
        "identity": "0" if total else "1",
        "keep": keep,
        "a": axis,
        "xj": _with(axis, rank, "j"),
    }
    return build(op, instantiate(SCAN, {"": range(rank)}, subs), ["X"], ["Y"])


@expresses(rd.TopKOp)
def top_k(op: rd.TopKOp) -> Expression:
    """Each element's rank in the order (stable: ties by index; NaN above numbers), then
    the values and indices of ranks 0..k-1."""
    shape = shape_of(op.input)
    rank, axis = len(shape), op.axis
    dtype = dtype_of(op.input)
    xi, xj = f"X[{_with(axis, rank, f'i{axis}')}]", f"X[{_with(axis, rank, 'j')}]"
    if op.largest:
        before = f"{xj} > {xi}"
        nan_before = f"{xj} != {xj} and {xi} == {xi}"
    else:
        before = f"{xj} < {xi}"
        nan_before = f"{xi} != {xi} and {xj} == {xj}"
    same = f"{xj} == {xi}"
    if is_float(dtype):
        before = f"({before} or ({nan_before}))"
        same = f"({same} or ({xj} != {xj} and {xi} != {xi}))"
    subs: dict[str, object] = {
        "T": compute_dtype(dtype),
        "a": axis,
        "better": f"{before} or ({same} and j < i{axis})",
        "sy": ", ".join("K" if a == axis else f"D{a}" for a in range(rank)),
        "iy": _with(axis, rank, "r"),
        "rj": _with(axis, rank, "j"),
        "xj": _with(axis, rank, "j"),
    }
    template = instantiate(TOP_K, {"": range(rank)}, subs)
    return build(op, template, ["X"], ["V", "I"], {"K": op.k})
