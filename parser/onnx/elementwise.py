"""Converters of ONNX elementwise operators, constants, Cast, Identity and Dropout."""

from __future__ import annotations

import numpy as np
from onnx import numpy_helper
from xdsl.ir import SSAValue

from mlc.dialects.graph import elementwise as ew
from mlc.dialects.graph.types import UnsupportedTypeError, element_type_from_onnx, is_float
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
    fmod = node.int("fmod", 0)
    if not fmod and is_float(node.input_type(0).element_type):
        node.unsupported("Mod of floating-point tensors requires fmod=1")
    op_type = ew.FmodOp if fmod else ew.ModOp
    return [node.emit(op_type.create([node.input(0), node.input(1)])).output]


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


@converter("HardSigmoid")
def hard_sigmoid(node: NodeContext) -> list[SSAValue]:
    alpha, beta = node.float("alpha", 0.2), node.float("beta", 0.5)
    return [node.emit(ew.HardSigmoidOp.create([node.input(0)], alpha=alpha, beta=beta)).output]


@converter("Gelu")
def gelu(node: NodeContext) -> list[SSAValue]:
    approximate = node.string("approximate", "none")
    node.reject_attr_values("approximate", ["none", "tanh"], "none")
    return [node.emit(ew.GeluOp.create([node.input(0)], approximate=approximate)).output]


@converter("Clip")
def clip(node: NodeContext) -> list[SSAValue]:
    ty = node.input_type(0)
    bounds: dict[str, float | int | None] = {}
    if node.opset < 11:
        bounds["min"] = node.float("min", float(np.finfo(np.float32).min))
        bounds["max"] = node.float("max", float(np.finfo(np.float32).max))
    else:
        for name, index in (("min", 1), ("max", 2)):
            if node.has_input(index):
                value = node.constant(index, name).reshape(-1)[0]
                bounds[name] = float(value) if is_float(ty.element_type) else int(value)
    return [node.emit(ew.ClipOp.create([node.input(0)], **bounds)).output]


@converter("Dropout")
def dropout(node: NodeContext) -> list[SSAValue | None]:
    if node.has_input(2) and bool(node.constant(2, "training_mode").reshape(-1)[0]):
        node.unsupported("training_mode=true (only inference-mode Dropout is supported)")
    if node.int("is_test", 1) == 0 and node.opset < 7:
        node.unsupported("is_test=0 (only inference-mode Dropout is supported)")
    out = node.emit(ew.DropoutOp.create([node.input(0)])).output
    mask = None
    if len(node.node.output) > 1 and node.node.output[1]:
        mask = node.emit_constant(np.ones(node.shape(0), dtype=np.bool_))
    return [out, mask]


@converter("Cast")
def cast(node: NodeContext) -> list[SSAValue]:
    try:
        element = element_type_from_onnx(node.int("to"))
    except UnsupportedTypeError as e:
        node.unsupported(f"Cast to {e}")
    return [node.emit(ew.CastOp.to(node.input(0), element)).output]


@converter("CastLike")
def cast_like(node: NodeContext) -> list[SSAValue]:
    target = node.input_type(1).element_type
    return [node.emit(ew.CastOp.to(node.input(0), target)).output]


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

