"""Converters of the ONNX normalizations that are not in `nn`: RMSNormalization
(`graph.rms_norm`) and three exact decompositions into existing graph ops:

* LpNormalization: x / reduce_l{p}(x) along `axis`, 0 where the norm is 0 (onnx's
  reference semantics);
* GroupNormalization (opset 21: per-channel scale and bias): `graph.layer_norm` of x
  viewed as N x G x (C/G * D1 * ...) (the statistics of each group), then the scale and
  bias, as the operator's function body computes it (normalized in the stash type, f32
  by default, rounded to x's type, then scaled and shifted);
* MeanVarianceNormalization: (x - E[x]) / (sqrt(E[x^2] - E[x]^2) + 1e-9) over `axes`,
  the operator's function body op for op.
"""

from __future__ import annotations

import math

import numpy as np
from xdsl.ir import SSAValue

from mlc.dialects.graph import elementwise as ew
from mlc.dialects.graph import nn
from mlc.dialects.graph import reduce as rd
from mlc.dialects.graph import shape as sh
from mlc.dialects.graph.base import GraphError, normalize_axis
from mlc.dialects.graph.types import (
    UnsupportedTypeError,
    element_type_from_onnx,
    is_float,
    numpy_dtype,
)
from mlc.parser.onnx.node import NodeContext, converter
from mlc.parser.onnx.reduce import normalized_axes


def _constant_like(node: NodeContext, value: float, rank: int) -> SSAValue:
    """A one-element constant of input 0's element type, of rank `rank` (all axes 1)."""
    dtype = numpy_dtype(node.input_type(0).element_type)
    return node.emit_constant(np.full([1] * rank, value, dtype=dtype))


@converter("RMSNormalization")
def rms_norm(node: NodeContext) -> list[SSAValue]:
    x, scale = node.input(0), node.input(1)
    if node.input_type(0).element_type != node.input_type(1).element_type:
        node.unsupported(
            f"X ({node.input_type(0).element_type}) and scale "
            f"({node.input_type(1).element_type}) of different element types"
        )
    axis = normalize_axis(node.int("axis", -1), node.rank(0))
    eps = node.float("epsilon", 1e-5)
    return [node.emit(nn.RmsNormOp.create([x, scale], axis=axis, epsilon=eps)).output]


@converter("LpNormalization")
def lp_normalization(node: NodeContext) -> list[SSAValue]:
    rank = node.rank(0)
    axis = normalize_axis(node.int("axis", -1), rank)
    p = node.int("p", 2)
    if p not in (1, 2):
        node.unsupported(f"attribute p={p} is not supported (only 1 and 2)")
    x = node.input(0)
    reduce = rd.ReduceL1Op if p == 1 else rd.ReduceL2Op
    norm = node.emit(reduce.create([x], axes=[axis], keepdims=True)).output
    scaled = node.emit(ew.DivOp.create([x, norm])).output
    zero = _constant_like(node, 0.0, rank)
    is_zero = node.emit(ew.EqualOp.create([norm, zero])).output
    return [node.emit(ew.WhereOp.create([is_zero, zero, scaled])).output]


@converter("GroupNormalization")
def group_normalization(node: NodeContext) -> list[SSAValue]:
    if node.opset < 21:
        node.unsupported(
            "GroupNormalization-18 (per-group scale and bias, deprecated) is not supported"
        )
    shape = node.shape(0)
    if len(shape) < 2:
        raise GraphError(f"GroupNormalization input must be N x C x ..., got shape {list(shape)}")
    n, c = shape[:2]
    groups = node.int("num_groups")
    if groups < 1 or c % groups:
        raise GraphError(f"GroupNormalization: {c} channels do not split into {groups} groups")
    for i, what in ((1, "scale"), (2, "bias")):
        if node.shape(i) != (c,):
            raise GraphError(f"GroupNormalization {what} must have shape ({c},)")
    eps = node.float("epsilon", 1e-5)
    x = node.input(0)
    element = node.input_type(0).element_type
    try:
        stash = element_type_from_onnx(node.int("stash_type", 1))
    except UnsupportedTypeError as e:
        node.unsupported(f"stash_type: {e}")
    if not is_float(stash):
        node.unsupported(f"stash_type {stash} is not a floating-point type")
    if stash != element:  # the statistics in the stash type, as the function body
        x = node.emit(ew.CastOp.to(x, stash)).output
    grouped = node.emit(sh.ReshapeOp.to(x, [n, groups, math.prod(shape[1:]) // groups])).output
    one = node.emit_constant(np.ones(1, dtype=numpy_dtype(stash)))
    norm = node.emit(nn.LayerNormOp.create([grouped, one], axis=2, epsilon=eps)).output
    if stash != element:
        norm = node.emit(ew.CastOp.to(norm, element)).output
    norm = node.emit(sh.ReshapeOp.to(norm, shape)).output
    along = [c, *[1] * (len(shape) - 2)]
    scale = node.emit(sh.ReshapeOp.to(node.input(1), along)).output
    bias = node.emit(sh.ReshapeOp.to(node.input(2), along)).output
    y = node.emit(ew.MulOp.create([norm, scale])).output
    return [node.emit(ew.AddOp.create([y, bias])).output]


@converter("MeanVarianceNormalization")
def mean_variance_normalization(node: NodeContext) -> list[SSAValue]:
    rank = node.rank(0)
    axes = normalized_axes(node.ints("axes", [0, 2, 3]), rank)
    x = node.input(0)
    mean = node.emit(rd.ReduceMeanOp.create([x], axes=axes, keepdims=True)).output
    mean_squared = node.emit(ew.MulOp.create([mean, mean])).output
    squares = node.emit(ew.MulOp.create([x, x])).output
    mean_of_squares = node.emit(rd.ReduceMeanOp.create([squares], axes=axes, keepdims=True))
    variance = node.emit(ew.SubOp.create([mean_of_squares.output, mean_squared])).output
    std = node.emit(ew.SqrtOp.create([variance])).output
    std = node.emit(ew.AddOp.create([std, _constant_like(node, 1e-9, rank)])).output
    centered = node.emit(ew.SubOp.create([x, mean])).output
    return [node.emit(ew.DivOp.create([centered, std])).output]
