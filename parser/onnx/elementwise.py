"""Converters of ONNX elementwise operators, constants, Cast, Identity and Dropout."""

from __future__ import annotations

import numpy as np
from onnx import TensorProto, numpy_helper
from xdsl.dialects.builtin import FloatAttr, IntegerAttr, f32, f64
from xdsl.ir import Attribute, SSAValue

from mlc.dialects.graph import elementwise as ew
from mlc.dialects.graph.types import (
    UnsupportedTypeError,
    element_type_from_onnx,
    is_float,
    numpy_dtype,
)
from mlc.interpreters.graph import evaluate
from mlc.parser.onnx.node import NodeContext, converter

_UNARY: dict[str, type[ew.UnaryOp]] = {
    "Relu": ew.ReluOp,
    "Sigmoid": ew.SigmoidOp,
    "Tanh": ew.TanhOp,
    "Erf": ew.ErfOp,
    "Exp": ew.ExpOp,
    "Log": ew.LogOp,
    "Sqrt": ew.SqrtOp,
    "Reciprocal": ew.ReciprocalOp,
    "Sin": ew.SinOp,
    "Cos": ew.CosOp,
    "Tan": ew.TanOp,
    "Asin": ew.AsinOp,
    "Acos": ew.AcosOp,
    "Atan": ew.AtanOp,
    "Sinh": ew.SinhOp,
    "Cosh": ew.CoshOp,
    "Asinh": ew.AsinhOp,
    "Acosh": ew.AcoshOp,
    "Atanh": ew.AtanhOp,
    "Mish": ew.MishOp,
    "IsNaN": ew.IsNaNOp,
    "BitwiseNot": ew.BitwiseNotOp,
    "Softplus": ew.SoftplusOp,
    "Softsign": ew.SoftsignOp,
    "HardSwish": ew.HardSwishOp,
    "Floor": ew.FloorOp,
    "Ceil": ew.CeilOp,
    "Round": ew.RoundOp,
    "Neg": ew.NegOp,
    "Abs": ew.AbsOp,
    "Sign": ew.SignOp,
    "Not": ew.NotOp,
    "Identity": ew.IdentityOp,
}

_BINARY: dict[str, type[ew.BinaryOp]] = {
    "Add": ew.AddOp,
    "Sub": ew.SubOp,
    "Mul": ew.MulOp,
    "Div": ew.DivOp,
    "Pow": ew.PowOp,
    "PRelu": ew.PReluOp,
    "Equal": ew.EqualOp,
    "Less": ew.LessOp,
    "LessOrEqual": ew.LessOrEqualOp,
    "Greater": ew.GreaterOp,
    "GreaterOrEqual": ew.GreaterOrEqualOp,
    "And": ew.AndOp,
    "Or": ew.OrOp,
    "Xor": ew.XorOp,
    "BitwiseAnd": ew.BitwiseAndOp,
    "BitwiseOr": ew.BitwiseOrOp,
    "BitwiseXor": ew.BitwiseXorOp,
}

_VARIADIC: dict[str, type[ew.VariadicOp]] = {
    "Max": ew.MaxOp,
    "Min": ew.MinOp,
    "Sum": ew.SumOp,
    "Mean": ew.MeanOp,
}


@converter(*_UNARY)
def unary(node: NodeContext) -> list[SSAValue]:
    op_type = _UNARY[node.node.op_type]
    return [node.emit(op_type.create([node.input(0)])).output]


@converter(*_BINARY)
def binary(node: NodeContext) -> list[SSAValue]:
    if node.int("broadcast", 0) and node.has_attr("axis"):
        node.unsupported("legacy broadcasting with an explicit 'axis' (opset < 7)")
    op_type = _BINARY[node.node.op_type]
    return [node.emit(op_type.create([node.input(0), node.input(1)])).output]


@converter(*_VARIADIC)
def variadic(node: NodeContext) -> list[SSAValue]:
    op_type = _VARIADIC[node.node.op_type]
    return [node.emit(op_type.create(node.inputs())).output]


@converter("Mod")
def mod(node: NodeContext) -> list[SSAValue]:
    """fmod=0: the remainder takes the divisor's sign (`graph.mod`, floats too); fmod=1:
    C's fmod, the dividend's sign (`graph.fmod`)."""
    node.reject_attr_values("fmod", [0, 1], 0)
    op_type = ew.FmodOp if node.int("fmod", 0) else ew.ModOp
    return [node.emit(op_type.create([node.input(0), node.input(1)])).output]


@converter("BitShift")
def bit_shift(node: NodeContext) -> list[SSAValue]:
    direction = node.string("direction")
    node.reject_attr_values("direction", ["LEFT", "RIGHT"], None)
    op = ew.BitShiftOp.create([node.input(0), node.input(1)], direction=direction)
    return [node.emit(op).output]


@converter("Where")
def where(node: NodeContext) -> list[SSAValue]:
    return [node.emit(ew.WhereOp.create(node.inputs())).output]


@converter("LeakyRelu")
def leaky_relu(node: NodeContext) -> list[SSAValue]:
    op = ew.LeakyReluOp.create([node.input(0)], alpha=node.float("alpha", 0.01))
    return [node.emit(op).output]


@converter("Elu")
def elu(node: NodeContext) -> list[SSAValue]:
    return [node.emit(ew.EluOp.create([node.input(0)], alpha=node.float("alpha", 1.0))).output]


@converter("Selu")
def selu(node: NodeContext) -> list[SSAValue]:
    alpha = node.float("alpha", 1.67326319217681884765625)
    gamma = node.float("gamma", 1.05070102214813232421875)
    return [node.emit(ew.SeluOp.create([node.input(0)], alpha=alpha, gamma=gamma)).output]


@converter("Celu")
def celu(node: NodeContext) -> list[SSAValue]:
    alpha = node.float("alpha", 1.0)
    if alpha == 0:
        node.unsupported("alpha=0 (Celu divides by alpha)")
    return [node.emit(ew.CeluOp.create([node.input(0)], alpha=alpha)).output]


@converter("ThresholdedRelu")
def thresholded_relu(node: NodeContext) -> list[SSAValue]:
    op = ew.ThresholdedReluOp.create([node.input(0)], alpha=node.float("alpha", 1.0))
    return [node.emit(op).output]


@converter("Swish")
def swish(node: NodeContext) -> list[SSAValue]:
    return [node.emit(ew.SwishOp.create([node.input(0)], alpha=node.float("alpha", 1.0))).output]


@converter("Shrink")
def shrink(node: NodeContext) -> list[SSAValue]:
    bias, lambd = node.float("bias", 0.0), node.float("lambd", 0.5)
    return [node.emit(ew.ShrinkOp.create([node.input(0)], bias=bias, lambd=lambd)).output]


@converter("IsInf")
def is_inf(node: NodeContext) -> list[SSAValue]:
    negative = bool(node.int("detect_negative", 1))
    positive = bool(node.int("detect_positive", 1))
    op = ew.IsInfOp.create([node.input(0)], detect_negative=negative, detect_positive=positive)
    return [node.emit(op).output]


@converter("HardSigmoid")
def hard_sigmoid(node: NodeContext) -> list[SSAValue]:
    alpha, beta = node.float("alpha", 0.2), node.float("beta", 0.5)
    return [node.emit(ew.HardSigmoidOp.create([node.input(0)], alpha=alpha, beta=beta)).output]


@converter("Gelu")
def gelu(node: NodeContext) -> list[SSAValue]:
    approximate = node.string("approximate", "none")
    node.reject_attr_values("approximate", ["none", "tanh"], "none")
    return [node.emit(ew.GeluOp.create([node.input(0)], approximate=approximate)).output]


def _bound_attr(value: np.generic, element_type: Attribute) -> Attribute:
    """A Clip bound as an attribute that holds it exactly for the element type."""
    if is_float(element_type):
        return FloatAttr(float(value), f64 if element_type == f64 else f32)
    return IntegerAttr(int(value), element_type)


#: Clip-6's default bounds (the schema's attribute defaults): -+FLT_MAX
_CLIP_6_DEFAULTS = {"min": -float(np.finfo(np.float32).max), "max": float(np.finfo(np.float32).max)}


@converter("Clip")
def clip(node: NodeContext) -> list[SSAValue]:
    """min(max(x, min), max): the max bound applies last (so it wins over a greater min).
    Bounds known at import time are `graph.clip` properties, run-time ones `graph.max` /
    `graph.min`, emitted in that order."""
    x = node.input(0)
    element_type = node.input_type(0).element_type
    if node.opset < 11:
        attrs = {
            name: _bound_attr(np.float32(node.float(name, default)), element_type)
            for name, default in _CLIP_6_DEFAULTS.items()
        }
        return [node.emit(ew.ClipOp.create([x], **attrs)).output]
    out = x
    bounds: dict[str, Attribute] = {}
    for name, index, op_type in (("min", 1, ew.MaxOp), ("max", 2, ew.MinOp)):
        if not node.has_input(index):
            continue
        if int(np.prod(node.shape(index))) != 1:
            node.unsupported(f"input '{node.node.input[index]}' ({name}) is not a scalar")
        if node.is_constant(index):
            bounds[name] = _bound_attr(node.constant(index).reshape(-1)[0], element_type)
            continue
        if bounds:  # a constant min before a run-time max
            out = node.emit(ew.ClipOp.create([out], **bounds)).output
            bounds = {}
        bound = node.input(index)
        op = op_type.create([out, bound])
        if op.output.type != node.input_type(0):
            node.unsupported(f"the bound {bound.type} would change the result type")
        out = node.emit(op).output
    if bounds:
        out = node.emit(ew.ClipOp.create([out], **bounds)).output
    if out is x:
        out = node.emit(ew.IdentityOp.create([x])).output
    return [out]


@converter("Dropout")
def dropout(node: NodeContext) -> list[SSAValue | None]:
    """Inference-mode Dropout is the identity; its mask is all true (ones before opset 10).

    Training mode (random) is only supported where it is the identity too: ratio = 0.
    """
    if node.opset < 7:
        if node.int("is_test", 0) == 0 and node.float("ratio", 0.5) != 0:
            node.unsupported(
                "is_test=0 (the default before opset 7) is training-mode Dropout, which is "
                "random; only inference-mode Dropout (is_test=1) is supported"
            )
    elif node.opset >= 12 and node.has_input(2):
        ratio_is_zero = node.is_constant(1) and float(node.constant(1).reshape(-1)[0]) == 0
        if not node.is_constant(2):
            if not ratio_is_zero:
                node.unsupported(
                    f"training_mode (input '{node.node.input[2]}') is a run-time input; only "
                    "inference-mode Dropout (training_mode absent or a constant false) is "
                    "supported, since training-mode Dropout is random"
                )
        elif bool(node.constant(2).reshape(-1)[0]) and not ratio_is_zero:
            node.unsupported(
                "training_mode=true: training-mode Dropout is random; only inference-mode "
                "Dropout is supported"
            )
    out = node.emit(ew.DropoutOp.create([node.input(0)])).output
    mask = None
    if len(node.node.output) > 1 and node.node.output[1]:
        mask_dtype = np.bool_ if node.opset >= 10 else numpy_dtype(node.input_type(0).element_type)
        mask = node.emit_constant(np.ones(node.shape(0), dtype=mask_dtype))
    return [out, mask]


@converter("Cast")
def cast(node: NodeContext) -> list[SSAValue]:
    to = node.attr("to")
    if isinstance(to, bytes | str):  # before opset 6, `to` names the type: "FLOAT"
        name = to.decode() if isinstance(to, bytes) else to
        if name.upper() not in TensorProto.DataType.keys():
            node.unsupported(f"Cast to unknown type {name!r}")
        to = TensorProto.DataType.Value(name.upper())
    elif to is None:
        node.unsupported("attribute 'to' is required")
    try:
        element = element_type_from_onnx(int(to))
    except UnsupportedTypeError as e:
        node.unsupported(f"Cast to {e}")
    return [node.emit(ew.CastOp.to(node.input(0), element)).output]


@converter("CastLike")
def cast_like(node: NodeContext) -> list[SSAValue]:
    target = node.input_type(1).element_type
    cast = node.emit(ew.CastOp.to(node.input(0), target))
    if node.is_constant(0):  # only input 0's value matters: fold even if input 1 is dynamic
        (value,) = evaluate(cast, [node.constant(0)])
        node.block.erase_op(cast)
        node.emitted.remove(cast)
        return [node.emit_constant(value)]
    return [cast.output]


@converter("Constant")
def constant(node: NodeContext) -> list[SSAValue]:
    for name in ("value", "value_float", "value_floats", "value_int", "value_ints"):
        if node.has_attr(name):
            value = node.attr(name)
            break
    else:
        node.unsupported("only tensor, float(s) and int(s) constants are supported")
    if name == "value":
        try:
            element_type_from_onnx(value.data_type)
        except UnsupportedTypeError as e:
            node.unsupported(str(e))
        array = numpy_helper.to_array(value)
    elif name.startswith("value_float"):
        array = np.asarray(value, dtype=np.float32)
    else:
        array = np.asarray(value, dtype=np.int64)
    return [node.emit_constant(array)]
