"""Converters of ONNX operators that index or rearrange by position.

Graph ops of their own: CumSum / CumProd (`graph.cumsum`, `graph.cumprod`), TopK
(`graph.top_k`), Trilu (`graph.trilu`), OneHot (`graph.one_hot`), GatherND
(`graph.gather_nd`), ScatterElements / Scatter (`graph.scatter_elements`), ScatterND
(`graph.scatter_nd`) and Einsum (`graph.einsum`, its equation made explicit: ellipses
become letters, an implicit output is spelled out; three or more operands are
contracted two at a time, left to right).

Exact decompositions into existing graph ops: DepthToSpace / SpaceToDepth (reshape,
transpose, reshape), EyeLike (a constant; large ones a broadcast one cut to the diagonal
by two `trilu`s) and ReverseSequence (`gather_elements` at the reversed time index,
computed from the sequence lengths with elementwise ops).

Inputs that decide a static shape or property (CumSum's axis, TopK's k, Trilu's k,
OneHot's depth) must be known at import time.
"""

from __future__ import annotations

import string
from collections.abc import Sequence

import numpy as np
from xdsl.dialects.builtin import i64
from xdsl.ir import SSAValue

from mlc.dialects.graph import elementwise as ew
from mlc.dialects.graph import indexing as ix
from mlc.dialects.graph import nn
from mlc.dialects.graph import reduce as rd
from mlc.dialects.graph import shape as sh
from mlc.dialects.graph.base import GraphError, normalize_axis
from mlc.dialects.graph.types import UnsupportedTypeError, element_type_from_onnx, numpy_dtype
from mlc.parser.onnx.node import FOLD_LIMIT_ELEMENTS, NodeContext, converter


def _scalar_int(node: NodeContext, i: int, what: str) -> int:
    """Input `i`, a one-element constant (a scalar or a 1-D tensor of one value), as an int."""
    values = np.asarray(node.constant(i, what)).reshape(-1)
    if values.size != 1:
        raise GraphError(f"{node.node.op_type} {what} must hold one value, got {values.size}")
    return int(values[0])


def _reshape(node: NodeContext, value: SSAValue, shape: Sequence[int]) -> SSAValue:
    return node.emit(sh.ReshapeOp.to(value, shape)).output


def _transpose(node: NodeContext, value: SSAValue, perm: Sequence[int]) -> SSAValue:
    return node.emit(sh.TransposeOp.create([value], perm=list(perm))).output


# --------------------------------------------------------------------------- scans, top k


@converter("CumSum", "CumProd")
def cumulative(node: NodeContext) -> list[SSAValue]:
    op_type = rd.CumSumOp if node.node.op_type == "CumSum" else rd.CumProdOp
    axis = normalize_axis(_scalar_int(node, 1, "axis"), node.rank(0))
    op = op_type.create(
        [node.input(0)],
        axis=axis,
        exclusive=bool(node.int("exclusive", 0)),
        reverse=bool(node.int("reverse", 0)),
    )
    return [node.emit(op).output]


@converter("TopK")
def top_k(node: NodeContext) -> list[SSAValue]:
    axis = normalize_axis(node.int("axis", -1), node.rank(0))
    if node.opset < 10:
        k = node.int("k")
    else:
        k = _scalar_int(node, 1, "k decides the result's static shape")
    largest = bool(node.int("largest", 1)) if node.opset >= 11 else True
    # sorted = 0 leaves the order open: the sorted order is one of the allowed ones
    op = node.emit(rd.TopKOp.create([node.input(0)], axis=axis, k=k, largest=largest))
    return [op.values, op.indices]


# --------------------------------------------------------------------------- trilu, one_hot, eye


@converter("Trilu")
def trilu(node: NodeContext) -> list[SSAValue]:
    k = _scalar_int(node, 1, "k") if node.has_input(1) else 0
    upper = bool(node.int("upper", 1))
    return [node.emit(ix.TriluOp.create([node.input(0)], upper=upper, k=k)).output]


@converter("OneHot")
def one_hot(node: NodeContext) -> list[SSAValue]:
    depth_value = np.asarray(node.constant(1, "depth decides the result's static shape"))
    if depth_value.size != 1:
        raise GraphError(f"OneHot depth must hold one value, got {depth_value.size}")
    depth = int(depth_value.reshape(-1)[0])  # a float depth is cast to an integer
    if depth < 1:
        raise GraphError(f"OneHot depth must be positive, got {depth}")
    rank = node.rank(0)
    axis = node.int("axis", -1)
    if not -rank - 1 <= axis <= rank:
        raise GraphError(f"OneHot axis {axis} is out of range for rank {rank} indices")
    axis = axis % (rank + 1)
    op = ix.OneHotOp.create([node.input(0), node.input(2)], axis=axis, depth=depth)
    return [node.emit(op).output]


@converter("EyeLike")
def eye_like(node: NodeContext) -> list[SSAValue]:
    shape = node.shape(0)
    if len(shape) != 2:
        raise GraphError(f"EyeLike input must be 2-D, got shape {list(shape)}")
    if node.has_attr("dtype"):
        try:
            element = element_type_from_onnx(node.int("dtype"))
        except UnsupportedTypeError as e:
            node.unsupported(str(e))
    else:
        element = node.input_type(0).element_type
    dtype = numpy_dtype(element)
    k = node.int("k", 0)
    rows, cols = shape
    if rows * cols <= FOLD_LIMIT_ELEMENTS:
        return [node.emit_constant(np.eye(rows, cols, k=k, dtype=dtype))]
    # large: ones (filled at run time) cut to the diagonal j - i == k
    one = node.emit_constant(np.ones((1, 1), dtype=dtype))
    ones = node.emit(sh.ExpandOp.create([one], shape=[rows, cols])).output
    upper = node.emit(ix.TriluOp.create([ones], upper=True, k=k)).output
    return [node.emit(ix.TriluOp.create([upper], upper=False, k=k)).output]


# --------------------------------------------------------------------------- gather, scatter


@converter("GatherND")
def gather_nd(node: NodeContext) -> list[SSAValue]:
    batch_dims = node.int("batch_dims", 0) if node.opset >= 12 else 0
    op = ix.GatherNDOp.create([node.input(0), node.input(1)], batch_dims=batch_dims)
    return [node.emit(op).output]


def _reduction(node: NodeContext) -> str:
    """The `reduction` attribute (opset 16: none, add, mul; 18: also max, min)."""
    reduction = node.string("reduction", "none") if node.opset >= 16 else "none"
    if reduction not in ix.SCATTER_REDUCTIONS:
        node.unsupported(f"attribute reduction={reduction!r} is not supported")
    return reduction


@converter("ScatterElements", "Scatter")
def scatter_elements(node: NodeContext) -> list[SSAValue]:
    axis = normalize_axis(node.int("axis", 0), node.rank(0))
    reduction = _reduction(node) if node.node.op_type == "ScatterElements" else "none"
    op = ix.ScatterElementsOp.create(
        [node.input(0), node.input(1), node.input(2)], axis=axis, reduction=reduction
    )
    return [node.emit(op).output]


@converter("ScatterND")
def scatter_nd(node: NodeContext) -> list[SSAValue]:
    op = ix.ScatterNDOp.create(
        [node.input(0), node.input(1), node.input(2)], reduction=_reduction(node)
    )
    return [node.emit(op).output]


# --------------------------------------------------------------------------- reverse_sequence


@converter("ReverseSequence")
def reverse_sequence(node: NodeContext) -> list[SSAValue]:
    """Y = gather_elements(X, where(t < len, len - 1 - t, t), time axis), t the time
    position and len the sequence length of the row's batch index."""
    shape = node.shape(0)
    rank = len(shape)
    if rank < 2:
        raise GraphError(f"ReverseSequence input must have rank >= 2, got shape {list(shape)}")
    batch_axis = normalize_axis(node.int("batch_axis", 1), rank)
    time_axis = normalize_axis(node.int("time_axis", 0), rank)
    if batch_axis == time_axis:
        raise GraphError("ReverseSequence batch_axis and time_axis must differ")
    if node.shape(1) != (shape[batch_axis],):
        raise GraphError(
            f"ReverseSequence sequence_lens must have shape ({shape[batch_axis]},), "
            f"got {list(node.shape(1))}"
        )
    lens = node.input(1)
    if node.input_type(1).element_type != i64:
        lens = node.emit(ew.CastOp.to(lens, i64)).output
    along = [1] * rank
    along[batch_axis] = shape[batch_axis]
    lens = _reshape(node, lens, along)
    steps = [1] * rank
    steps[time_axis] = shape[time_axis]
    t = node.emit_constant(np.arange(shape[time_axis], dtype=np.int64).reshape(steps))
    one = node.emit_constant(np.ones([1] * rank, dtype=np.int64))
    last = node.emit(ew.SubOp.create([lens, one])).output
    reversed_t = node.emit(ew.SubOp.create([last, t])).output
    inside = node.emit(ew.LessOp.create([t, lens])).output
    index = node.emit(ew.WhereOp.create([inside, reversed_t, t])).output
    index = node.emit(sh.ExpandOp.create([index], shape=list(shape))).output
    op = sh.GatherElementsOp.create([node.input(0), index], axis=time_axis)
    return [node.emit(op).output]


# --------------------------------------------------------------------------- depth <-> space


def _blocks(node: NodeContext) -> tuple[int, int, int, int, int, str]:
    shape = node.shape(0)
    if len(shape) != 4:
        raise GraphError(f"{node.node.op_type} input must be 4-D (N x C x H x W), got {shape}")
    block = node.int("blocksize")
    if block < 1:
        raise GraphError(f"{node.node.op_type} blocksize must be positive, got {block}")
    mode = node.string("mode", "DCR")
    if mode not in ("DCR", "CRD"):
        node.unsupported(f"attribute mode={mode!r} is not supported")
    n, c, h, w = shape
    return n, c, h, w, block, mode


@converter("DepthToSpace")
def depth_to_space(node: NodeContext) -> list[SSAValue]:
    n, c, h, w, b, mode = _blocks(node)
    if c % (b * b):
        raise GraphError(f"DepthToSpace: {c} channels are not divisible by blocksize^2 = {b * b}")
    if mode == "DCR":
        split, perm = [n, b, b, c // (b * b), h, w], [0, 3, 4, 1, 5, 2]
    else:
        split, perm = [n, c // (b * b), b, b, h, w], [0, 1, 4, 2, 5, 3]
    moved = _transpose(node, _reshape(node, node.input(0), split), perm)
    return [_reshape(node, moved, [n, c // (b * b), h * b, w * b])]


@converter("SpaceToDepth")
def space_to_depth(node: NodeContext) -> list[SSAValue]:
    n, c, h, w, b, mode = _blocks(node)
    if h % b or w % b:
        raise GraphError(f"SpaceToDepth: {h} x {w} is not divisible by blocksize {b}")
    split = [n, c, h // b, b, w // b, b]
    perm = [0, 3, 5, 1, 2, 4] if mode == "DCR" else [0, 1, 3, 5, 2, 4]
    moved = _transpose(node, _reshape(node, node.input(0), split), perm)
    return [_reshape(node, moved, [n, c * b * b, h // b, w // b])]


# --------------------------------------------------------------------------- einsum


def explicit_einsum(equation: str, ranks: Sequence[int]) -> str:
    """ONNX's einsum equation as `graph.einsum` holds it: no spaces, ellipses replaced by
    letters the equation does not use (right-aligned: broadcast like numpy's), and the
    output spelled out when implicit (the ellipsis, then the letters that occur once, in
    alphabetical order)."""
    text = equation.replace(" ", "")
    lhs, arrow, rhs = text.partition("->")
    terms = lhs.split(",")
    if len(terms) != len(ranks):
        raise GraphError(
            f"Einsum equation {equation!r} has {len(terms)} terms for {len(ranks)} inputs"
        )
    used = set(text) - set(".,->")
    if not all(c in string.ascii_letters for c in used):
        raise GraphError(f"Einsum equation {equation!r} holds characters other than letters")
    free = [c for c in string.ascii_uppercase + string.ascii_lowercase if c not in used]
    widths = []
    for term, rank in zip(terms, ranks):
        if term.count("...") > 1 or term.replace("...", "").count("."):
            raise GraphError(f"Einsum term {term!r} is malformed")
        named = len(term.replace("...", ""))
        if ("..." not in term and named != rank) or named > rank:
            raise GraphError(f"Einsum term {term!r} does not match an input of rank {rank}")
        widths.append(rank - named if "..." in term else 0)
    dots = free[: max(widths, default=0)]
    if len(dots) < max(widths, default=0):
        raise GraphError(f"Einsum equation {equation!r} has no letters left for its ellipsis")
    terms = [t.replace("...", "".join(dots[len(dots) - n :])) for t, n in zip(terms, widths)]
    if arrow:
        if dots and "..." not in rhs:  # as numpy: broadcast axes are not summed away
            raise GraphError(f"Einsum equation {equation!r}: the output must keep the ellipsis")
        out = rhs.replace("...", "".join(dots))
    else:
        letters = "".join(terms)
        out = "".join(dots) + "".join(
            sorted(c for c in set(letters) - set(dots) if letters.count(c) == 1)
        )
    return f"{','.join(terms)}->{out}"


def pairwise_einsums(equation: str) -> list[str]:
    """An explicit equation of n > 2 operands as n - 1 two-operand steps, left to right:
    step k contracts the result so far with operand k + 1, keeping the letters a later
    operand or the output still needs ("ij,jk,kl->il": "ij,jk->ik", "ik,kl->il"). Each
    step is a product of two, so a chain costs what its matrix products cost (not the
    product of all the sizes), and every semantics associates the products alike."""
    lhs, out = equation.split("->")
    terms = lhs.split(",")
    if len(terms) <= 2:
        return [equation]
    steps, current = [], terms[0]
    for k in range(1, len(terms)):
        later = set("".join(terms[k + 1 :])) | set(out)
        if k == len(terms) - 1:
            kept = out
        else:
            kept = "".join(c for c in dict.fromkeys(current + terms[k]) if c in later)
        steps.append(f"{current},{terms[k]}->{kept}")
        current = kept
    return steps


@converter("Einsum")
def einsum(node: NodeContext) -> list[SSAValue]:
    inputs = node.inputs()
    equation = explicit_einsum(node.string("equation"), [node.rank(i) for i in range(len(inputs))])
    steps = pairwise_einsums(equation)
    result = node.emit(nn.EinsumOp.create(inputs[:2], equation=steps[0])).output
    for operand, step in zip(inputs[2:], steps[1:]):
        result = node.emit(nn.EinsumOp.create([result, operand], equation=step)).output
    return [result]
