"""Converters of ONNX operators to the nn graph ops.

Window operators (Conv, ConvTranspose, MaxPool, AveragePool, LpPool) get explicit
`strides`, `pads` and `dilations`: defaults are filled in and `auto_pad` is resolved here,
from the static input shape. SAME_UPPER / SAME_LOWER pad so that the output size is
ceil(size / stride), putting the odd padding element at the end / at the beginning.

Softmax, LogSoftmax and Hardmax before opset 13 normalize over all axes from `axis` on
(ONNX's "coerce to 2-D"); the graph ops take that set of axes directly.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from xdsl.ir import SSAValue

from mlc.dialects.graph import elementwise as ew
from mlc.dialects.graph import nn
from mlc.dialects.graph import reduce as rd
from mlc.dialects.graph.base import GraphError, normalize_axis
from mlc.dialects.graph.types import element_type_from_onnx, numpy_dtype
from mlc.parser.onnx.node import NodeContext, converter

_AUTO_PAD = ("NOTSET", "SAME_UPPER", "SAME_LOWER", "VALID")


def _optional(node: NodeContext, i: int) -> SSAValue | None:
    return node.input(i) if node.has_input(i) else None


def _output_used(node: NodeContext, i: int) -> bool:
    return len(node.node.output) > i and bool(node.node.output[i])


def _spatial_shape(node: NodeContext, what: str = "input") -> tuple[int, ...]:
    shape = node.shape(0)
    if len(shape) < 3:
        raise GraphError(
            f"{node.node.op_type} {what} must have rank >= 3 (N x C x D1 ... Dn), got shape {shape}"
        )
    return shape[2:]


def _kernel(node: NodeContext, weight_kernel: Sequence[int] | None) -> list[int]:
    """The kernel shape: the weight's (checked against `kernel_shape`) or the attribute."""
    if weight_kernel is None:
        return node.ints("kernel_shape")
    if node.has_attr("kernel_shape") and node.ints("kernel_shape") != list(weight_kernel):
        raise GraphError(
            f"kernel_shape {node.ints('kernel_shape')} differs from the weight's "
            f"spatial shape {list(weight_kernel)}"
        )
    return list(weight_kernel)


def _auto_pad(node: NodeContext) -> str:
    node.reject_attr_values("auto_pad", _AUTO_PAD, "NOTSET")
    return node.string("auto_pad", "NOTSET")


def _same_pads(total: Sequence[int], upper: bool) -> list[int]:
    """Split total paddings into begins + ends; SAME_UPPER puts the odd one at the end."""
    begins = [t // 2 if upper else t - t // 2 for t in total]
    return begins + [t - b for t, b in zip(total, begins)]


def window_attrs(
    node: NodeContext, spatial: Sequence[int], kernel: Sequence[int], dilations_since: int = 1
) -> dict[str, list[int]]:
    """Explicit strides, pads and dilations of a Conv / pool node (auto_pad resolved)."""
    rank = len(spatial)
    strides = node.ints("strides", [1] * rank)
    if node.opset >= dilations_since:
        dilations = node.ints("dilations", [1] * rank)
    else:
        dilations = [1] * rank
    if len(strides) != rank or len(dilations) != rank or len(kernel) != rank:
        raise GraphError(
            f"kernel_shape {list(kernel)}, strides {strides} and dilations {dilations} "
            f"must each have {rank} values (the input's spatial rank)"
        )
    auto_pad = _auto_pad(node)
    if auto_pad == "NOTSET":
        pads = node.ints("pads", [0] * 2 * rank)
    elif auto_pad == "VALID":
        pads = [0] * 2 * rank
    else:
        total = []
        for size, k, s, d in zip(spatial, kernel, strides, dilations):
            if s < 1:
                raise GraphError(f"strides must be positive, got {strides}")
            target = -(-size // s)
            total.append(max(0, (target - 1) * s + d * (k - 1) + 1 - size))
        pads = _same_pads(total, upper=auto_pad == "SAME_UPPER")
    return {"strides": strides, "pads": pads, "dilations": dilations}


# --------------------------------------------------------------------------- products


@converter("MatMul")
def matmul(node: NodeContext) -> list[SSAValue]:
    return [node.emit(nn.MatMulOp.create([node.input(0), node.input(1)])).output]


@converter("Gemm")
def gemm(node: NodeContext) -> list[SSAValue]:
    # opset < 7: `broadcast` only allows what numpy broadcasting allows anyway
    op = nn.GemmOp.create(
        [node.input(0), node.input(1), _optional(node, 2)],
        alpha=node.float("alpha", 1.0),
        beta=node.float("beta", 1.0),
        trans_a=bool(node.int("transA", 0)),
        trans_b=bool(node.int("transB", 0)),
    )
    return [node.emit(op).output]


# --------------------------------------------------------------------------- convolution


@converter("Conv")
def conv(node: NodeContext) -> list[SSAValue]:
    spatial = _spatial_shape(node)
    kernel = _kernel(node, node.shape(1)[2:])
    op = nn.ConvOp.create(
        [node.input(0), node.input(1), _optional(node, 2)],
        **window_attrs(node, spatial, kernel),
        group=node.int("group", 1),
    )
    return [node.emit(op).output]


@converter("ConvTranspose")
def conv_transpose(node: NodeContext) -> list[SSAValue]:
    spatial = _spatial_shape(node)
    rank = len(spatial)
    kernel = _kernel(node, node.shape(1)[2:])
    strides = node.ints("strides", [1] * rank)
    dilations = node.ints("dilations", [1] * rank)
    output_padding = node.ints("output_padding", [0] * rank)
    if not len(strides) == len(dilations) == len(output_padding) == rank:
        raise GraphError(
            f"strides {strides}, dilations {dilations} and output_padding {output_padding} "
            f"must each have {rank} values (the input's spatial rank)"
        )
    auto_pad = _auto_pad(node)
    if node.has_attr("output_shape") or auto_pad in ("SAME_UPPER", "SAME_LOWER"):
        if node.has_attr("output_shape"):
            out = node.ints("output_shape")[-rank:]
            if len(out) != rank:
                raise GraphError(
                    f"output_shape {node.ints('output_shape')} must have {rank} values"
                )
        else:
            out = [size * s for size, s in zip(spatial, strides)]
        total = [
            s * (size - 1) + op + d * (k - 1) + 1 - o
            for size, s, op, d, k, o in zip(
                spatial, strides, output_padding, dilations, kernel, out
            )
        ]
        # an output larger than the full result extends it at the end, like output_padding
        output_padding = [op + max(0, -t) for op, t in zip(output_padding, total)]
        total = [max(0, t) for t in total]
        # ONNX: SAME_UPPER puts the odd padding element at the end, otherwise at the start
        pads = _same_pads(total, upper=auto_pad == "SAME_UPPER")
    elif auto_pad == "VALID":
        pads = [0] * 2 * rank
    else:
        pads = node.ints("pads", [0] * 2 * rank)
    op = nn.ConvTransposeOp.create(
        [node.input(0), node.input(1), _optional(node, 2)],
        strides=strides,
        pads=pads,
        dilations=dilations,
        output_padding=output_padding,
        group=node.int("group", 1),
    )
    return [node.emit(op).output]


# --------------------------------------------------------------------------- pooling


def _pool_attrs(node: NodeContext, dilations_since: int) -> dict[str, list[int] | bool]:
    spatial = _spatial_shape(node)
    kernel = _kernel(node, None)
    attrs: dict[str, list[int] | bool] = {"kernel_shape": kernel}
    attrs.update(window_attrs(node, spatial, kernel, dilations_since))
    attrs["ceil_mode"] = bool(node.int("ceil_mode", 0))
    return attrs


@converter("MaxPool")
def max_pool(node: NodeContext) -> list[SSAValue]:
    attrs = _pool_attrs(node, dilations_since=10)
    results = [node.emit(nn.MaxPoolOp.create([node.input(0)], **attrs)).output]
    if _output_used(node, 1):
        storage_order = node.int("storage_order", 0)
        if storage_order not in (0, 1):
            raise GraphError(f"storage_order must be 0 or 1, got {storage_order}")
        op = nn.MaxPoolIndicesOp.create([node.input(0)], **attrs, storage_order=storage_order)
        results.append(node.emit(op).output)
    return results


@converter("AveragePool")
def average_pool(node: NodeContext) -> list[SSAValue]:
    attrs = _pool_attrs(node, dilations_since=19)
    include_pad = bool(node.int("count_include_pad", 0))
    op = nn.AveragePoolOp.create([node.input(0)], **attrs, count_include_pad=include_pad)
    return [node.emit(op).output]


@converter("LpPool")
def lp_pool(node: NodeContext) -> list[SSAValue]:
    attrs = _pool_attrs(node, dilations_since=18)
    p = node.float("p", 2.0) if node.opset < 11 else node.int("p", 2)
    if p != int(p) or p < 1:
        node.unsupported(f"p={p} (only positive integer p is supported)")
    op = nn.LpPoolOp.create([node.input(0)], **attrs, p=int(p))
    return [node.emit(op).output]


@converter("GlobalAveragePool")
def global_average_pool(node: NodeContext) -> list[SSAValue]:
    return [node.emit(nn.GlobalAveragePoolOp.create([node.input(0)])).output]


@converter("GlobalMaxPool")
def global_max_pool(node: NodeContext) -> list[SSAValue]:
    return [node.emit(nn.GlobalMaxPoolOp.create([node.input(0)])).output]


# --------------------------------------------------------------------------- normalization


@converter("BatchNormalization")
def batch_norm(node: NodeContext) -> list[SSAValue]:
    if node.int("training_mode", 0):
        node.unsupported(
            "training_mode=1 (batch statistics and running-statistics updates); only "
            "inference-mode BatchNormalization is supported"
        )
    if node.opset < 7 and node.int("is_test", 0) == 0:
        node.unsupported(
            "is_test=0 (training mode, the default before opset 7); only inference-mode "
            "BatchNormalization (is_test=1) is supported"
        )
    extra = [i for i in range(1, len(node.node.output)) if _output_used(node, i)]
    if extra:
        node.unsupported(
            f"output(s) {extra} (running/saved mean and variance) exist only in training "
            "mode; only the normalized output Y is supported"
        )
    # consumed_inputs (opset < 6) and momentum only concern training: ignored
    x, scale, bias, mean, var = (node.input(i) for i in range(5))
    eps = node.float("epsilon", 1e-5)
    channels = node.shape(0)[1:2]
    if node.opset < 9 and not node.int("spatial", 1) and node.shape(1) != channels:
        return [_batch_norm_per_activation(node, x, scale, bias, mean, var, eps)]
    return [node.emit(nn.BatchNormOp.create([x, scale, bias, mean, var], epsilon=eps)).output]


def _batch_norm_per_activation(
    node: NodeContext,
    x: SSAValue,
    scale: SSAValue,
    bias: SSAValue,
    mean: SSAValue,
    var: SSAValue,
    eps: float,
) -> SSAValue:
    """spatial=0 (opset < 9): parameters of shape C x D1 x ... x Dn, one per activation;
    (x - mean) / sqrt(var + epsilon) * scale + bias with elementwise ops."""
    dtype = numpy_dtype(node.input_type(0).element_type)
    epsilon = node.emit_constant(np.asarray(eps, dtype=dtype))
    std = node.emit(ew.SqrtOp.create([node.emit(ew.AddOp.create([var, epsilon])).output]))
    centered = node.emit(ew.SubOp.create([x, mean])).output
    normalized = node.emit(ew.DivOp.create([centered, std.output])).output
    scaled = node.emit(ew.MulOp.create([normalized, scale])).output
    return node.emit(ew.AddOp.create([scaled, bias])).output


@converter("InstanceNormalization")
def instance_norm(node: NodeContext) -> list[SSAValue]:
    op = nn.InstanceNormOp.create(
        [node.input(0), node.input(1), node.input(2)], epsilon=node.float("epsilon", 1e-5)
    )
    return [node.emit(op).output]


@converter("LayerNormalization")
def layer_norm(node: NodeContext) -> list[SSAValue]:
    rank = node.rank(0)
    axis = normalize_axis(node.int("axis", -1), rank)
    eps = node.float("epsilon", 1e-5)
    x = node.input(0)
    op = nn.LayerNormOp.create([x, node.input(1), _optional(node, 2)], axis=axis, epsilon=eps)
    results = [node.emit(op).output]
    if _output_used(node, 1) or _output_used(node, 2):
        results += _layer_norm_statistics(node, x, axis, eps)
    return results


def _layer_norm_statistics(node: NodeContext, x: SSAValue, axis: int, eps: float) -> list[SSAValue]:
    """LayerNormalization's Mean and InvStdDev outputs, in the stash type, from reduce
    and elementwise ops: mean(x), 1 / sqrt(mean((x - mean(x)) ** 2) + epsilon)."""
    try:
        stash = element_type_from_onnx(node.int("stash_type", 1))
    except ValueError:
        node.unsupported(f"stash_type={node.int('stash_type', 1)}")
    if node.input_type(0).element_type != stash:
        x = node.emit(ew.CastOp.to(x, stash)).output
    axes = list(range(axis, node.rank(0)))
    mean = node.emit(rd.ReduceMeanOp.create([x], axes=axes, keepdims=True)).output
    diff = node.emit(ew.SubOp.create([x, mean])).output
    square = node.emit(ew.MulOp.create([diff, diff])).output
    var = node.emit(rd.ReduceMeanOp.create([square], axes=axes, keepdims=True)).output
    epsilon = node.emit_constant(np.asarray(eps, dtype=numpy_dtype(stash)))
    std = node.emit(ew.SqrtOp.create([node.emit(ew.AddOp.create([var, epsilon])).output]))
    inv_std = node.emit(ew.ReciprocalOp.create([std.output])).output
    return [mean, inv_std]


@converter("LRN")
def lrn(node: NodeContext) -> list[SSAValue]:
    op = nn.LrnOp.create(
        [node.input(0)],
        size=node.int("size"),
        alpha=node.float("alpha", 1e-4),
        beta=node.float("beta", 0.75),
        bias=node.float("bias", 1.0),
    )
    return [node.emit(op).output]


# --------------------------------------------------------------------------- softmax

_SOFTMAX: dict[str, type[nn.SoftmaxLikeOp]] = {
    "Softmax": nn.SoftmaxOp,
    "LogSoftmax": nn.LogSoftmaxOp,
    "Hardmax": nn.HardmaxOp,
}


@converter(*_SOFTMAX)
def softmax(node: NodeContext) -> list[SSAValue]:
    rank = node.rank(0)
    if node.opset >= 13:
        axes = [normalize_axis(node.int("axis", -1), rank)]
    else:
        axes = list(range(normalize_axis(node.int("axis", 1), rank), rank))
    op = _SOFTMAX[node.node.op_type].create([node.input(0)], axes=axes)
    return [node.emit(op).output]
