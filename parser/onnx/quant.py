"""Converters of the ONNX quantization operators to the quant graph ops.

MatMulInteger, ConvInteger, QuantizeLinear and DequantizeLinear map one to one (omitted
zero points become zero constants of the operand's type). QLinearMatMul and QLinearConv
are decomposed, following onnx.reference:

    acc = matmul_integer(a, b, a_zero_point, b_zero_point)        (conv_integer [+ B])
    m   = a_scale * b_scale / y_scale                            (in the scales' type)
    y   = quantize_linear(f64(acc) * f64(m), 1.0, y_zero_point)  (round half even, saturate)

so the integer product stays a plain u8 x s8 -> i32 kernel (what VNNI computes).
"""

from __future__ import annotations

import numpy as np
from xdsl.dialects.builtin import Float64Type
from xdsl.ir import SSAValue

from mlc.dialects.graph import elementwise as ew
from mlc.dialects.graph import quant
from mlc.dialects.graph import shape as sh
from mlc.dialects.graph.types import numpy_dtype
from mlc.parser.onnx.nn import _kernel, _spatial_shape, window_attrs
from mlc.parser.onnx.node import NodeContext, converter

_PRODUCT = ("int8", "uint8")
_QUANT = ("int8", "uint8", "int16", "uint16")
#: ONNX TensorProto data type -> numpy dtype name, for `output_dtype`
_ONNX_QUANT = {2: "uint8", 3: "int8", 4: "uint16", 5: "int16"}


def _dtype(node: NodeContext, i: int) -> str:
    return numpy_dtype(node.input_type(i).element_type).name


def _zero_point(node: NodeContext, i: int, dtype: str, shape: tuple[int, ...] = ()) -> SSAValue:
    """Input `i` (a zero point), or zeros of `dtype` and `shape` where it is omitted."""
    if node.has_input(i):
        return node.input(i)
    return node.emit_constant(np.zeros(shape, dtype))


def _require(node: NodeContext, i: int, allowed: tuple[str, ...], what: str) -> str:
    dtype = _dtype(node, i)
    if dtype not in allowed:
        node.unsupported(
            f"{node.node.op_type} with {what} of type {dtype} is not supported "
            f"(supported: {', '.join(allowed)})"
        )
    return dtype


def _no_blocks(node: NodeContext) -> None:
    if node.int("block_size", 0) != 0:
        node.unsupported(
            f"{node.node.op_type} with block_size={node.int('block_size')} (blocked "
            "quantization) is not supported"
        )
    if node.int("precision", 0) != 0:
        node.unsupported(f"{node.node.op_type} with a precision attribute is not supported")


def _per_tensor(node: NodeContext, i: int, what: str) -> None:
    if node.shape(i) not in ((), (1,)):
        node.unsupported(
            f"{node.node.op_type} with a per-axis {what} (shape {list(node.shape(i))}) is "
            "not supported; only per-tensor scales"
        )


@converter("MatMulInteger")
def matmul_integer(node: NodeContext) -> list[SSAValue]:
    ta = _require(node, 0, _PRODUCT, "A")
    tb = _require(node, 1, _PRODUCT, "B")
    if node.rank(0) < 2 or node.rank(1) < 2:
        node.unsupported("MatMulInteger with a 1-D operand is not supported")
    za, zb = _zero_point(node, 2, ta), _zero_point(node, 3, tb)
    op = quant.MatMulIntegerOp.create([node.input(0), node.input(1), za, zb])
    return [node.emit(op).output]


def _conv_integer(node: NodeContext, x: int, w: int, zx: int, zw: int) -> SSAValue:
    tx = _require(node, x, _PRODUCT, "x")
    tw = _require(node, w, _PRODUCT, "w")
    shape = node.shape(x)
    if len(shape) < 3:
        node.unsupported(f"{node.node.op_type} input must have rank >= 3, got {list(shape)}")
    spatial = shape[2:]
    kernel = _kernel(node, node.shape(w)[2:])
    op = quant.ConvIntegerOp.create(
        [node.input(x), node.input(w), _zero_point(node, zx, tx), _zero_point(node, zw, tw)],
        **window_attrs(node, spatial, kernel),
        group=node.int("group", 1),
    )
    return node.emit(op).output


@converter("ConvInteger")
def conv_integer(node: NodeContext) -> list[SSAValue]:
    _spatial_shape(node)
    return [_conv_integer(node, 0, 1, 2, 3)]


@converter("QuantizeLinear")
def quantize_linear(node: NodeContext) -> list[SSAValue]:
    _no_blocks(node)
    _require(node, 0, ("float32",), "x")
    if _dtype(node, 1) != "float32":
        node.unsupported(f"QuantizeLinear with a {_dtype(node, 1)} scale is not supported")
    if node.has_input(2):
        out = _require(node, 2, _QUANT, "a zero point")
    else:
        code = node.int("output_dtype", 0)
        if code and code not in _ONNX_QUANT:
            node.unsupported(f"QuantizeLinear with output_dtype={code} is not supported")
        out = _ONNX_QUANT.get(code, "uint8")
    if node.has_input(2) and node.int("output_dtype", 0) not in (0, *_codes(out)):
        node.unsupported("QuantizeLinear output_dtype differs from the zero point's type")
    op = quant.QuantizeLinearOp.create(
        [node.input(0), node.input(1), _zero_point(node, 2, out, node.shape(1))],
        axis=node.int("axis", 1),
    )
    return [node.emit(op).output]


def _codes(dtype: str) -> list[int]:
    return [c for c, d in _ONNX_QUANT.items() if d == dtype]


@converter("DequantizeLinear")
def dequantize_linear(node: NodeContext) -> list[SSAValue]:
    _no_blocks(node)
    tx = _require(node, 0, (*_QUANT, "int32"), "x")
    if _dtype(node, 1) != "float32":
        node.unsupported(f"DequantizeLinear with a {_dtype(node, 1)} scale is not supported")
    if node.int("output_dtype", 0) not in (0, 1):
        node.unsupported("DequantizeLinear with an output_dtype other than float is not supported")
    op = quant.DequantizeLinearOp.create(
        [node.input(0), node.input(1), _zero_point(node, 2, tx, node.shape(1))],
        axis=node.int("axis", 1),
    )
    return [node.emit(op).output]


def _requantize(
    node: NodeContext,
    acc: SSAValue,
    scales: tuple[int, int, int],
    y_zp: int,
    shape: tuple[int, ...],
) -> SSAValue:
    """quantize_linear(f64(acc) * f64(s0 * s1 / s2), 1.0, y_zero_point); `shape`: the
    multiplier's shape broadcast against acc (per output channel for QLinearConv)."""
    s0, s1, s2 = scales
    dtypes = {_dtype(node, i) for i in scales}
    if len(dtypes) != 1 or not dtypes <= {"float32", "float16"}:
        node.unsupported(
            f"{node.node.op_type} scales must all be float32 or all float16, got {sorted(dtypes)}"
        )
    prod = node.emit(ew.MulOp.create([node.input(s0), node.input(s1)])).output
    mult = node.emit(ew.DivOp.create([prod, node.input(s2)])).output
    mult_shape = tuple(mult.type.get_shape())  # type: ignore[attr-defined]
    if mult_shape != shape and int(np.prod(mult_shape)) == int(np.prod(shape)):
        mult = node.emit(sh.ReshapeOp.to(mult, shape)).output
    f64 = Float64Type()
    mult = node.emit(ew.CastOp.to(mult, f64)).output
    wide = node.emit(ew.CastOp.to(acc, f64)).output
    scaled = node.emit(ew.MulOp.create([wide, mult])).output
    one = node.emit_constant(np.ones((), np.float64))
    out_type = _require(node, y_zp, _PRODUCT, "y_zero_point")
    zp = _zero_point(node, y_zp, out_type)
    op = quant.QuantizeLinearOp.create([scaled, one, zp], axis=1)
    return node.emit(op).output


@converter("QLinearMatMul")
def qlinear_matmul(node: NodeContext) -> list[SSAValue]:
    ta = _require(node, 0, _PRODUCT, "a")
    tb = _require(node, 3, _PRODUCT, "b")
    if node.rank(0) < 2 or node.rank(3) < 2:
        node.unsupported("QLinearMatMul with a 1-D operand is not supported")
    for i, what in ((1, "a_scale"), (4, "b_scale"), (6, "y_scale")):
        _per_tensor(node, i, what)
    za, zb = _zero_point(node, 2, ta), _zero_point(node, 5, tb)
    acc = node.emit(quant.MatMulIntegerOp.create([node.input(0), node.input(3), za, zb])).output
    return [_requantize(node, acc, (1, 4, 6), 7, ())]


@converter("QLinearConv")
def qlinear_conv(node: NodeContext) -> list[SSAValue]:
    _spatial_shape(node)
    _per_tensor(node, 1, "x_scale")
    _per_tensor(node, 6, "y_scale")
    m = node.shape(3)[0]
    rank = node.rank(0)
    if node.shape(4) not in ((), (1,), (m,)):
        node.unsupported(
            f"QLinearConv w_scale must be a scalar or per output channel ({m},), got "
            f"{list(node.shape(4))}"
        )
    acc = _conv_integer(node, 0, 3, 2, 5)
    if node.has_input(8):
        if _dtype(node, 8) != "int32" or node.shape(8) != (m,):
            node.unsupported(f"QLinearConv bias must be int32 of shape ({m},)")
        bias = node.emit(sh.ReshapeOp.to(node.input(8), (m, *[1] * (rank - 2)))).output
        acc = node.emit(ew.AddOp.create([acc, bias])).output
    shape = (m, *[1] * (rank - 2)) if node.shape(4) == (m,) and m > 1 else ()
    return [_requantize(node, acc, (1, 4, 6), 7, shape)]
