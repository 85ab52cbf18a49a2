"""Reference semantics of the blocked-layout graph ops (`dialects/graph/layout.py`):
numpy reshapes and transposes around the plain convolution's reference."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np

from mlc.dialects.graph import layout
from mlc.dialects.graph.base import GraphOp, Props, to_attr
from mlc.interpreters.graph.nn import conv as plain_conv
from mlc.interpreters.graph.registry import reference


def to_blocked(x: np.ndarray, c: int) -> np.ndarray:
    """N x C x D... -> N x C/c x D... x c."""
    n, channels, *spatial = x.shape
    y = x.reshape(n, channels // c, c, *spatial)
    return np.moveaxis(y, 2, -1)


def from_blocked(x: np.ndarray) -> np.ndarray:
    """N x C/c x D... x c -> N x C x D...."""
    n, blocks, *spatial, c = x.shape
    return np.moveaxis(x, -1, 2).reshape(n, blocks * c, *spatial)


def unblock_weight(w: np.ndarray) -> np.ndarray:
    """M/oc x C/ic x K... x ic x oc -> M x C x K...."""
    mb, cb, *kernel, ic, oc = w.shape
    y = np.moveaxis(w, [-2, -1], [3, 1])  # mb, oc, cb, ic, K...
    return y.reshape(mb * oc, cb * ic, *kernel)


def block_weight(w: np.ndarray, ic: int, oc: int) -> np.ndarray:
    """M x C x K... -> M/oc x C/ic x K... x ic x oc."""
    m, c, *kernel = w.shape
    y = w.reshape(m // oc, oc, c // ic, ic, *kernel)
    return np.moveaxis(y, [1, 3], [-1, -2])


@reference(layout.ToBlockedOp)
def to_blocked_ref(op: layout.ToBlockedOp, x: np.ndarray) -> np.ndarray:
    return to_blocked(x, op.props.int("block"))


@reference(layout.FromBlockedOp)
def from_blocked_ref(op: layout.FromBlockedOp, x: np.ndarray) -> np.ndarray:
    return from_blocked(x)


def _plain_conv_view(op: GraphOp, out_shape: list[int], group: int = 1) -> SimpleNamespace:
    """What the plain convolution's reference reads of an op (properties, result shape),
    for the equivalent `graph.conv` with `group`."""
    props = Props({**op.properties, "group": to_attr(group)})
    result_type = SimpleNamespace(get_shape=lambda: out_shape)
    return SimpleNamespace(props=props, output=SimpleNamespace(type=result_type))


@reference(layout.ConvBlockedOp)
def conv_blocked(
    op: layout.ConvBlockedOp, x: np.ndarray, w: np.ndarray, b: np.ndarray | None = None
) -> np.ndarray:
    out = list(op.output.type.get_shape())  # type: ignore[attr-defined]
    n, mb, *spatial, oc = out
    plain = _plain_conv_view(op, [n, mb * oc, *spatial])
    y = plain_conv(plain, from_blocked(x), unblock_weight(w), b)  # type: ignore[arg-type]
    return to_blocked(y, oc)


@reference(layout.DepthwiseConvBlockedOp)
def depthwise_conv_blocked(
    op: layout.DepthwiseConvBlockedOp, x: np.ndarray, w: np.ndarray, b: np.ndarray | None = None
) -> np.ndarray:
    n, cb, *spatial, c = list(op.output.type.get_shape())  # type: ignore[attr-defined]
    plain = _plain_conv_view(op, [n, cb * c, *spatial], group=cb * c)
    weight = np.moveaxis(w, -1, 1).reshape(cb * c, 1, *w.shape[1:-1])  # C x 1 x K...
    y = plain_conv(plain, from_blocked(x), weight, b)  # type: ignore[arg-type]
    return to_blocked(y, c)


@reference(layout.GroupConvBlockedOp)
def group_conv_blocked(
    op: layout.GroupConvBlockedOp, x: np.ndarray, w: np.ndarray, b: np.ndarray | None = None
) -> np.ndarray:
    n, groups, mb, *spatial, oc = list(op.output.type.get_shape())  # type: ignore[attr-defined]
    plain = _plain_conv_view(op, [n, groups * mb * oc, *spatial], group=groups)
    xb = x.reshape(n, groups * x.shape[2], *x.shape[3:])  # N x C/ic x D.. x ic
    weight = unblock_weight(w.reshape(groups * w.shape[1], *w.shape[2:]))  # M x C/G x K..
    y = plain_conv(plain, from_blocked(xb), weight, b)  # type: ignore[arg-type]
    return to_blocked(y, oc).reshape(n, groups, mb, *spatial, oc)
