"""Expressions of the blocked-layout graph ops (`dialects/graph/layout.py`).

The blocked convolution reads the input at `(n, cb, o# * S# + k# * D# - P#, ci)` and the
weight at `(mb, cb, k#, ci, mi)`: the output's innermost axis `mi` is contiguous in the
weight and the output, so a schedule vectorizes it and broadcasts input elements.
"""

from __future__ import annotations

from mlc.dialects.graph import layout
from mlc.texpr.library.registry import expresses
from mlc.texpr.library.template import (
    Expression,
    build,
    compute_dtype,
    dtype_of,
    instantiate,
    per_axis,
    shape_of,
)

TO_BLOCKED = """
to_blocked<CB, B>(X: $T[N, CB * B, @(H#)]) -> Y: $T[N, CB, @(H#), B] {
  Y[n, cb, @(h#), ci] = X[n, cb * B + ci, @(h#)]
}"""

FROM_BLOCKED = """
from_blocked<CB, B>(X: $T[N, CB, @(H#), B]) -> Y: $T[N, CB * B, @(H#)] {
  Y[n, c, @(h#)] = X[n, c / B, @(h#), c % B]
}"""

CONV_BLOCKED = """
conv_blocked<@(S#, D#, P#)>(X: $T[N, CB, @(H#), IC], Wt: $T[MB, CB, @(K#), IC, OC]
?bias   , B: $T[MB * OC]
) -> Y: $T[N, MB, @(O#), OC] {
?bias   Y[n, mb, @(o#), mi] = B[mb * OC + mi]
  Y[n, mb, @(o#), mi] += (X[n, cb, @(o# * S# + k# * D# - P#), ci] if in bounds else 0)
                         * Wt[mb, cb, @(k#), ci, mi]
}"""


#: grouped: the input blocks of group `g` only; they do not depend on the output block `mb`
GROUP_CONV_BLOCKED = """
group_conv_blocked<@(S#, D#, P#)>(X: $T[N, G, CB, @(H#), IC], Wt: $T[G, MB, CB, @(K#), IC, OC]
?bias   , B: $T[G * MB * OC]
) -> Y: $T[N, G, MB, @(O#), OC] {
?bias   Y[n, g, mb, @(o#), mi] = B[(g * MB + mb) * OC + mi]
  Y[n, g, mb, @(o#), mi] += (X[n, g, cb, @(o# * S# + k# * D# - P#), ci] if in bounds else 0)
                            * Wt[g, mb, cb, @(k#), ci, mi]
}"""

#: depthwise: lane `ci` of block `cb` is channel `cb * C + ci`, its own group
DEPTHWISE_CONV_BLOCKED = """
depthwise_conv_blocked<@(S#, D#, P#)>(X: $T[N, CB, @(H#), C], Wt: $T[CB, @(K#), C]
?bias   , B: $T[CB * C]
) -> Y: $T[N, CB, @(O#), C] {
?bias   Y[n, cb, @(o#), ci] = B[cb * C + ci]
  Y[n, cb, @(o#), ci] += (X[n, cb, @(o# * S# + k# * D# - P#), ci] if in bounds else 0)
                         * Wt[cb, @(k#), ci]
}"""


@expresses(layout.ToBlockedOp)
def to_blocked(op: layout.ToBlockedOp) -> Expression:
    """Y[n, cb, h..., ci] = X[n, cb * B + ci, h...]."""
    x = shape_of(op.input)
    b = op.block
    subs = {"T": compute_dtype(dtype_of(op.input))}
    template = instantiate(TO_BLOCKED, {"": range(len(x) - 2)}, subs)
    return build(op, template, ["X"], ["Y"], {"CB": x[1] // b, "B": b})


@expresses(layout.FromBlockedOp)
def from_blocked(op: layout.FromBlockedOp) -> Expression:
    """Y[n, c, h...] = X[n, c / B, h..., c % B]."""
    x = shape_of(op.input)
    subs = {"T": compute_dtype(dtype_of(op.input))}
    template = instantiate(FROM_BLOCKED, {"": range(len(x) - 3)}, subs)
    return build(op, template, ["X"], ["Y"], {"CB": x[1], "B": x[-1]})


_BLOCKED_CONVS = {
    layout.ConvBlockedOp: (CONV_BLOCKED, 3),
    layout.GroupConvBlockedOp: (GROUP_CONV_BLOCKED, 4),
    layout.DepthwiseConvBlockedOp: (DEPTHWISE_CONV_BLOCKED, 3),
}


@expresses(*_BLOCKED_CONVS)
def conv_blocked(
    op: layout.ConvBlockedOp | layout.GroupConvBlockedOp | layout.DepthwiseConvBlockedOp,
) -> Expression:
    """Blocked (grouped, depthwise) convolution with optional bias (module docstring)."""
    text, non_spatial = _BLOCKED_CONVS[type(op)]
    y = shape_of(op.output)
    rank = len(y) - non_spatial
    sizes = {
        **per_axis("S", op.strides),
        **per_axis("D", op.dilations),
        **per_axis("P", op.pads[:rank]),
        **per_axis("O", y[non_spatial - 1 : -1]),
    }
    subs = {"T": compute_dtype(dtype_of(op.input))}
    flags = {"bias": op.bias is not None}
    template = instantiate(text, {"": range(rank)}, subs, flags)
    operands = ["X", "Wt", "B"] if op.bias is not None else ["X", "Wt"]
    return build(op, template, operands, ["Y"], sizes)
