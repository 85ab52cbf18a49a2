"""DFT (opset 17 and later) as one matrix product along the transformed axis.

A DFT is linear in its input's real and imaginary parts, and for a static signal length
the map is a constant matrix: `W[n * c + s, k * 2 + r]` takes part `s` of sample `n` (c = 1
for a real signal, 2 for a complex one) to part `r` of frequency `k` (`onesided`,
`inverse` and `dft_length` included). It is computed at import by onnx's reference
evaluator on a probe, the identity basis of N * c one-hot signals, so mlc's DFT is
onnx's by construction. The node becomes

    x: [batch, ..., N, ..., c]  --transpose-->  [..., N, c]  --reshape-->  [..., N * c]
      --matmul W-->  [..., K * 2]  --reshape-->  [..., K, 2]  --transpose back-->

(a one-sided inverse gives a real signal: [..., K, 1])

(about N * c * K * 2 multiply-adds per signal: a matrix product, not an FFT).
"""

from __future__ import annotations

import numpy as np
from onnx import TensorProto, helper
from xdsl.ir import SSAValue

from mlc.dialects.graph import nn
from mlc.dialects.graph import shape as sh
from mlc.dialects.graph.types import is_float, numpy_dtype
from mlc.parser.onnx.node import NodeContext, converter
from mlc.parser.onnx.probe import reference_run

__all__ = ["dft"]

#: the largest DFT matrix built (elements): 2^22 floats, 16 MiB
MAX_MATRIX_ELEMENTS = 1 << 22


def _probe(
    node: NodeContext, n: int, parts: int, length: int | None
) -> tuple[np.ndarray, tuple[int, int]]:
    """`W[n * parts, K * parts_out]` (onnx's reference evaluator on the one-hot basis)
    and the output's (K, parts_out): 2 parts, or 1 for a one-sided inverse (a real
    signal)."""
    inputs, inits = ["x"], []
    if length is not None:
        inputs.append("length")
        inits.append(helper.make_tensor("length", TensorProto.INT64, [], [length]))
    attrs = {a.name: helper.get_attribute_value(a) for a in node.node.attribute}
    attrs.pop("axis", None)
    if node.opset >= 20:
        inputs += [""] * (2 - len(inputs)) + ["axis"]
        inits.append(helper.make_tensor("axis", TensorProto.INT64, [], [1]))
    else:
        attrs["axis"] = 1
    probe = helper.make_node("DFT", inputs, ["y"], **attrs)
    basis = np.eye(n * parts).reshape(n * parts, n, parts)
    out = reference_run(probe, basis, inits, node.opset)
    return out.reshape(n * parts, -1), (out.shape[1], out.shape[2])


@converter("DFT")
def dft(node: NodeContext) -> list[SSAValue]:
    x = node.input(0)
    shape = list(node.shape(0))
    rank = len(shape)
    if not is_float(node.input_type(0).element_type):
        node.unsupported("DFT of a non-float signal")
    if rank < 3 or shape[-1] not in (1, 2):
        node.unsupported(f"the input must be [batch, ..., 1 or 2], got {shape}")
    if node.opset >= 20:
        axis = node.constant_ints(2, "axis")[0] if node.has_input(2) else -2
    else:
        axis = node.int("axis", 1)
    if not -rank <= axis < rank - 1 or axis % rank == 0:
        node.unsupported(f"axis {axis} is not a signal axis of a rank-{rank} input")
    axis %= rank
    length = node.constant_ints(1, "dft_length")[0] if node.has_input(1) else None
    n, parts = shape[axis], shape[-1]
    if length is not None and length < 1:
        node.unsupported(f"dft_length must be positive, got {length}")
    k_max = (length or n) * 2
    if n * parts * k_max > MAX_MATRIX_ELEMENTS:
        node.unsupported(f"a DFT of {n} samples to {length or n} bins is too large a matrix")
    weights, (bins, parts_out) = _probe(node, n, parts, length)
    weights = weights.astype(numpy_dtype(node.input_type(0).element_type))
    perm = [d for d in range(rank - 1) if d != axis] + [axis, rank - 1]
    moved = node.emit(sh.TransposeOp.create([x], perm=perm)).output
    outer = [shape[d] for d in perm[:-2]]
    flat = node.emit(sh.ReshapeOp.to(moved, [*outer, n * parts])).output
    w = node.emit_constant(weights)
    product = node.emit(nn.MatMulOp.create([flat, w])).output
    spectrum = node.emit(sh.ReshapeOp.to(product, [*outer, bins, parts_out])).output
    back = [perm.index(d) for d in range(rank)]
    return [node.emit(sh.TransposeOp.create([spectrum], perm=back)).output]
