"""Reference semantics of the blocked-layout graph ops (`dialects/graph/layout.py`):
numpy reshapes and transposes around the plain convolution's reference."""

from __future__ import annotations

import numpy as np

from mlc.dialects.graph import layout
from mlc.interpreters.graph.nn import convolve
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
    return to_blocked(x, op.block)


@reference(layout.FromBlockedOp)
def from_blocked_ref(op: layout.FromBlockedOp, x: np.ndarray) -> np.ndarray:
    return from_blocked(x)


def _plain_conv(
    op: layout.ConvBlockedOp | layout.DepthwiseConvBlockedOp | layout.GroupConvBlockedOp,
    x: np.ndarray,
    w: np.ndarray,
    b: np.ndarray | None,
    group: int,
) -> np.ndarray:
    """The plain convolution with `op`'s window and `group` of the plain input `x` and
    weight `w`; its output spatial sizes are `op`'s (the axes before the block axis)."""
    shape = op.output.type.get_shape()  # type: ignore[attr-defined]
    out = tuple(shape[-1 - len(op.strides) : -1])
    return convolve(x, w, b, op.strides, op.pads, op.dilations, group, out)


@reference(layout.ConvBlockedOp)
def conv_blocked(
    op: layout.ConvBlockedOp, x: np.ndarray, w: np.ndarray, b: np.ndarray | None = None
) -> np.ndarray:
    oc = op.output.type.get_shape()[-1]  # type: ignore[attr-defined]
    y = _plain_conv(op, from_blocked(x), unblock_weight(w), b, group=1)
    return to_blocked(y, oc)


@reference(layout.DepthwiseConvBlockedOp)
def depthwise_conv_blocked(
    op: layout.DepthwiseConvBlockedOp, x: np.ndarray, w: np.ndarray, b: np.ndarray | None = None
) -> np.ndarray:
    cb, c = w.shape[0], w.shape[-1]
    weight = np.moveaxis(w, -1, 1).reshape(cb * c, 1, *w.shape[1:-1])  # C x 1 x K...
    y = _plain_conv(op, from_blocked(x), weight, b, group=cb * c)
    return to_blocked(y, c)


@reference(layout.GroupConvBlockedOp)
def group_conv_blocked(
    op: layout.GroupConvBlockedOp, x: np.ndarray, w: np.ndarray, b: np.ndarray | None = None
) -> np.ndarray:
    n, groups, mb, *spatial, oc = list(op.output.type.get_shape())  # type: ignore[attr-defined]
    xb = x.reshape(n, groups * x.shape[2], *x.shape[3:])  # N x C/ic x D.. x ic
    weight = unblock_weight(w.reshape(groups * w.shape[1], *w.shape[2:]))  # M x C/G x K..
    y = _plain_conv(op, from_blocked(xb), weight, b, group=groups)
    return to_blocked(y, oc).reshape(n, groups, mb, *spatial, oc)
