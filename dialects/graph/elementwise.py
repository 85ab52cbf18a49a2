"""Constants and elementwise graph ops: arithmetic with numpy broadcasting, unary math,
comparisons, logic, bitwise integer ops, `where`, `clip` and `cast`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar, Self

import numpy as np
from xdsl.dialects.builtin import (
    BytesAttr,
    DenseIntOrFPElementsAttr,
    FloatAttr,
    TensorType,
    i1,
)
from xdsl.ir import Attribute, SSAValue
from xdsl.irdl import (
    AnyAttr,
    ParamAttrConstraint,
    VarConstraint,
    irdl_op_definition,
    operand_def,
    prop_def,
    result_def,
    traits_def,
    var_operand_def,
)
from xdsl.traits import ConstantLike, Pure

from mlc.dialects.graph.base import (
    BoolProp,
    FloatProp,
    GraphError,
    GraphOp,
    NumberProp,
    StrProp,
    broadcast_shapes,
    dense_array,
)
from mlc.dialects.graph.constraints import (
    Bool,
    Constraints,
    Float,
    Integer,
    Numeric,
    OneOf,
    SameElementType,
)
from mlc.dialects.graph.types import is_bool, numpy_dtype, tensor, tensor_for_array


@irdl_op_definition
class ConstantOp(GraphOp):
    """A tensor literal (weights, shapes, scalars).

    %c = graph.constant dense<[1.000000e+00, 2.000000e+00]> : tensor<2xf32>
    """

    name = "graph.constant"
    _T: ClassVar = VarConstraint("T", AnyAttr())
    value = prop_def(ParamAttrConstraint(DenseIntOrFPElementsAttr, (_T, AnyAttr())))
    result = result_def(_T)

    traits = traits_def(Pure(), ConstantLike())
    assembly_format = "attr-dict $value"

    @classmethod
    def infer_result_types(
        cls, operand_types: Sequence[TensorType], props: Self
    ) -> list[TensorType]:
        raise GraphError("graph.constant takes its type from its value")

    @classmethod
    def from_array(cls, array: np.ndarray) -> ConstantOp:
        """Build a constant holding a copy of `array`."""
        ty = tensor_for_array(array)
        data = np.ascontiguousarray(array, dtype=numpy_dtype(ty.element_type)).tobytes()
        attr = DenseIntOrFPElementsAttr(ty, BytesAttr(data))
        return cls.build(result_types=[ty], properties={"value": attr})

    def to_array(self) -> np.ndarray:
        """The constant's value as a numpy array (splats are expanded)."""
        return dense_to_array(self.value)

    def verify_(self) -> None:
        pass


def dense_to_array(attr: DenseIntOrFPElementsAttr) -> np.ndarray:
    """A dense elements attribute's value as a numpy array (splats expanded)."""
    return dense_array(attr)


# --------------------------------------------------------------------------- unary


class UnaryOp(GraphOp):
    """Base of elementwise ops with one operand and a result of the same type."""

    input = operand_def(TensorType)
    output = result_def(TensorType)

    @classmethod
    def infer_result_types(
        cls, operand_types: Sequence[TensorType], props: Self
    ) -> list[TensorType]:
        return [operand_types[0]]


class FloatUnaryOp(UnaryOp):
    """Base of unary ops defined on floating-point tensors only."""

    CONSTRAINTS: ClassVar[Constraints] = (Float(),)


@irdl_op_definition
class ReluOp(UnaryOp):
    """max(x, 0).

    %y = graph.relu %x : (tensor<4xf32>) -> tensor<4xf32>
    """

    name = "graph.relu"


@irdl_op_definition
class LeakyReluOp(FloatUnaryOp):
    """x if x >= 0 else alpha * x.

    %y = graph.leaky_relu %x {alpha = 1.000000e-01 : f32} : (tensor<4xf32>) -> tensor<4xf32>
    """

    name = "graph.leaky_relu"
    alpha = FloatProp()


@irdl_op_definition
class EluOp(FloatUnaryOp):
    """x if x > 0 else alpha * (exp(x) - 1).

    %y = graph.elu %x {alpha = 1.000000e+00 : f32} : (tensor<4xf32>) -> tensor<4xf32>
    """

    name = "graph.elu"
    alpha = FloatProp()


@irdl_op_definition
class SeluOp(FloatUnaryOp):
    """gamma * (x if x > 0 else alpha * (exp(x) - 1)).

    %y = graph.selu %x {alpha = 1.67326319 : f32, gamma = 1.05070102 : f32} : (tensor<4xf32>) -> tensor<4xf32>
    """

    name = "graph.selu"
    alpha = FloatProp()
    gamma = FloatProp()


@irdl_op_definition
class HardSigmoidOp(FloatUnaryOp):
    """max(0, min(1, alpha * x + beta)).

    %y = graph.hard_sigmoid %x {alpha = 2.000000e-01 : f32, beta = 5.000000e-01 : f32} : (tensor<4xf32>) -> tensor<4xf32>
    """

    name = "graph.hard_sigmoid"
    alpha = FloatProp()
    beta = FloatProp()


@irdl_op_definition
class GeluOp(FloatUnaryOp):
    """x * Phi(x); `approximate = "tanh"` uses the tanh approximation.

    %y = graph.gelu %x {approximate = "none"} : (tensor<4xf32>) -> tensor<4xf32>
    """

    name = "graph.gelu"
    approximate = StrProp()
    CONSTRAINTS: ClassVar[Constraints] = (
        *FloatUnaryOp.CONSTRAINTS,
        OneOf("approximate", ("none", "tanh")),
    )


@irdl_op_definition
class ClipOp(UnaryOp):
    """min(max(x, min), max); a missing bound is unbounded.

    Bounds are f32 or f64 floats, or integers (exact, for integer tensors); a bound is
    converted to the tensor's element type. Bounds known only at run time are not
    properties: the importer expresses them with `graph.max` / `graph.min`.

    %y = graph.clip %x {min = 0.000000e+00 : f32, max = 6.000000e+00 : f32} : (tensor<4xf32>) -> tensor<4xf32>
    """

    name = "graph.clip"
    min = NumberProp()
    max = NumberProp()


@irdl_op_definition
class CeluOp(FloatUnaryOp):
    """max(0, x) + min(0, alpha * (exp(x / alpha) - 1)).

    %y = graph.celu %x {alpha = 1.000000e+00 : f32} : (tensor<4xf32>) -> tensor<4xf32>
    """

    name = "graph.celu"
    alpha = FloatProp()


@irdl_op_definition
class ThresholdedReluOp(FloatUnaryOp):
    """x if x > alpha else 0.

    %y = graph.thresholded_relu %x {alpha = 1.000000e+00 : f32} : (tensor<4xf32>) -> tensor<4xf32>
    """

    name = "graph.thresholded_relu"
    alpha = FloatProp()


@irdl_op_definition
class SwishOp(FloatUnaryOp):
    """x * sigmoid(alpha * x).

    %y = graph.swish %x {alpha = 1.000000e+00 : f32} : (tensor<4xf32>) -> tensor<4xf32>
    """

    name = "graph.swish"
    alpha = FloatProp()


@irdl_op_definition
class ShrinkOp(UnaryOp):
    """x + bias if x < -lambd, x - bias if x > lambd, else 0. Integer tensors compute in
    f64 and convert back (truncating), as the reference does.

    %y = graph.shrink %x {bias = 0.000000e+00 : f32, lambd = 5.000000e-01 : f32} : (tensor<4xf32>) -> tensor<4xf32>
    """

    name = "graph.shrink"
    bias = FloatProp()
    lambd = FloatProp()
    CONSTRAINTS: ClassVar[Constraints] = (Numeric(),)


class _PredicateOp(UnaryOp):
    """Base of unary tests of floats: a boolean (i1) result of the operand's shape."""

    CONSTRAINTS: ClassVar[Constraints] = (Float(),)

    @classmethod
    def infer_result_types(
        cls, operand_types: Sequence[TensorType], props: Self
    ) -> list[TensorType]:
        return [tensor(operand_types[0].get_shape(), i1)]


@irdl_op_definition
class IsNaNOp(_PredicateOp):
    """Whether x is NaN.

    %y = graph.is_nan %x : (tensor<4xf32>) -> tensor<4xi1>
    """

    name = "graph.is_nan"


@irdl_op_definition
class IsInfOp(_PredicateOp):
    """Whether x is +inf (with `detect_positive`) or -inf (with `detect_negative`).

    %y = graph.is_inf %x {detect_negative = true, detect_positive = true} : (tensor<4xf32>) -> tensor<4xi1>
    """

    name = "graph.is_inf"
    detect_negative = BoolProp()
    detect_positive = BoolProp()


@irdl_op_definition
class BitwiseNotOp(UnaryOp):
    """The bitwise complement of an integer tensor.

    %y = graph.bitwise_not %x : (tensor<4xi32>) -> tensor<4xi32>
    """

    name = "graph.bitwise_not"
    CONSTRAINTS: ClassVar[Constraints] = (Integer(),)


def _unary(op_name: str, doc: str, float_only: bool) -> type[UnaryOp]:
    base = FloatUnaryOp if float_only else UnaryOp
    class_name = "".join(p.capitalize() for p in op_name.split("_")) + "Op"
    example = f"\n\n        %y = graph.{op_name} %x : (tensor<4xf32>) -> tensor<4xf32>\n    "
    cls = type(class_name, (base,), {"name": f"graph.{op_name}", "__doc__": doc + example})
    cls.__module__ = __name__
    return irdl_op_definition(cls)


SigmoidOp = _unary("sigmoid", "1 / (1 + exp(-x)).", True)
TanhOp = _unary("tanh", "Hyperbolic tangent.", True)
ErfOp = _unary("erf", "The Gauss error function.", True)
ExpOp = _unary("exp", "e ** x.", True)
LogOp = _unary("log", "Natural logarithm.", True)
SqrtOp = _unary("sqrt", "Square root.", True)
ReciprocalOp = _unary("reciprocal", "1 / x.", True)
SinOp = _unary("sin", "Sine.", True)
CosOp = _unary("cos", "Cosine.", True)
TanOp = _unary("tan", "Tangent.", True)
AsinOp = _unary("asin", "Arcsine (NaN outside [-1, 1]).", True)
AcosOp = _unary("acos", "Arccosine (NaN outside [-1, 1]).", True)
AtanOp = _unary("atan", "Arctangent.", True)
SinhOp = _unary("sinh", "Hyperbolic sine.", True)
CoshOp = _unary("cosh", "Hyperbolic cosine.", True)
AsinhOp = _unary("asinh", "Inverse hyperbolic sine.", True)
AcoshOp = _unary("acosh", "Inverse hyperbolic cosine (NaN below 1).", True)
AtanhOp = _unary("atanh", "Inverse hyperbolic tangent (NaN outside [-1, 1]).", True)
MishOp = _unary("mish", "x * tanh(log(1 + exp(x))).", True)
SoftplusOp = _unary("softplus", "log(1 + exp(x)).", True)
SoftsignOp = _unary("softsign", "x / (1 + |x|).", True)
HardSwishOp = _unary("hard_swish", "x * max(0, min(1, x / 6 + 1 / 2)).", True)
FloorOp = _unary("floor", "Round toward -inf.", True)
CeilOp = _unary("ceil", "Round toward +inf.", True)
RoundOp = _unary("round", "Round half to even.", True)
NegOp = _unary("neg", "-x.", False)
AbsOp = _unary("abs", "|x|.", False)
SignOp = _unary("sign", "-1, 0 or 1 by the sign of x.", False)
IdentityOp = _unary("identity", "x (kept for graph fidelity; canonicalization removes it).", False)


@irdl_op_definition
class DropoutOp(UnaryOp):
    """Inference-mode dropout: the identity. `ratio` is kept for reference only.

    %y = graph.dropout %x {ratio = 5.000000e-01 : f32} : (tensor<4xf32>) -> tensor<4xf32>
    """

    name = "graph.dropout"
    ratio = NumberProp(FloatAttr)


@irdl_op_definition
class NotOp(UnaryOp):
    """Logical not of a boolean tensor.

    %y = graph.not %x : (tensor<4xi1>) -> tensor<4xi1>
    """

    name = "graph.not"
    CONSTRAINTS: ClassVar[Constraints] = (Bool(),)


@irdl_op_definition
class CastOp(GraphOp):
    """Element type conversion with ONNX Cast semantics (float -> int truncates).

    %y = graph.cast %x : (tensor<4xf32>) -> tensor<4xi32>
    """

    name = "graph.cast"
    input = operand_def(TensorType)
    output = result_def(TensorType)
    EXPLICIT_RESULT_TYPES: ClassVar[bool] = True

    def verify_(self) -> None:
        super().verify_()
        src, dst = self.input.type, self.output.type
        assert isinstance(src, TensorType) and isinstance(dst, TensorType)
        if src.get_shape() != dst.get_shape():
            raise GraphError("graph.cast must not change the shape")

    @classmethod
    def to(cls, value: SSAValue, element_type: Attribute) -> CastOp:
        v = value
        assert isinstance(v.type, TensorType)
        return cls.create([v], result_types=[tensor(v.type.get_shape(), element_type)])


# --------------------------------------------------------------------------- binary


class BinaryOp(GraphOp):
    """Base of elementwise binary ops with numpy broadcasting."""

    lhs = operand_def(TensorType)
    rhs = operand_def(TensorType)
    output = result_def(TensorType)

    CONSTRAINTS: ClassVar[Constraints] = (SameElementType(),)
    #: comparisons and logic produce booleans
    RESULT_IS_BOOL: ClassVar[bool] = False

    @classmethod
    def infer_result_types(
        cls, operand_types: Sequence[TensorType], props: Self
    ) -> list[TensorType]:
        lhs, rhs = operand_types
        shape = broadcast_shapes(lhs.get_shape(), rhs.get_shape())
        return [tensor(shape, i1 if cls.RESULT_IS_BOOL else lhs.element_type)]


def _binary(
    op_name: str,
    doc: str,
    *,
    constraints: Constraints = BinaryOp.CONSTRAINTS,
    result_is_bool: bool = False,
) -> type[BinaryOp]:
    class_name = "".join(p.capitalize() for p in op_name.split("_")) + "Op"
    out = "i1" if result_is_bool else "f32"
    operand = "f32"
    if any(isinstance(c, Bool) for c in constraints):
        operand = "i1"
    elif any(isinstance(c, Integer) for c in constraints):
        operand = "i32"
    if not result_is_bool:
        out = operand
    example = (
        f"\n\n        %z = graph.{op_name} %x, %y : (tensor<2x3x{operand}>, "
        f"tensor<3x{operand}>) -> tensor<2x3x{out}>\n    "
    )
    namespace: dict[str, object] = {
        "name": f"graph.{op_name}",
        "__doc__": doc + example,
        "__annotations__": {"CONSTRAINTS": ClassVar[Constraints], "RESULT_IS_BOOL": ClassVar[bool]},
        "CONSTRAINTS": constraints,
        "RESULT_IS_BOOL": result_is_bool,
    }
    cls = type(class_name, (BinaryOp,), namespace)
    cls.__module__ = __name__
    return irdl_op_definition(cls)


#: logical and/or/xor take booleans
_LOGIC: Constraints = (SameElementType(), Bool())

AddOp = _binary("add", "Elementwise x + y with broadcasting.")
SubOp = _binary("sub", "Elementwise x - y with broadcasting.")
MulOp = _binary("mul", "Elementwise x * y with broadcasting.")
DivOp = _binary("div", "Elementwise x / y; integer division truncates toward zero.")
PowOp = _binary("pow", "Elementwise x ** y; y may have another element type.", constraints=())
ModOp = _binary(
    "mod",
    "Remainder with the sign of the divisor (ONNX Mod, fmod = 0); floats as numpy's mod "
    "(a zero remainder takes the divisor's sign).",
)
FmodOp = _binary("fmod", "Remainder with the sign of the dividend (ONNX Mod, fmod = 1).")
PReluOp = _binary(
    "prelu",
    "x if x >= 0 else slope * x, slope broadcast to x.",
    constraints=(SameElementType(), Float()),
)
EqualOp = _binary("equal", "x == y.", result_is_bool=True)
LessOp = _binary("less", "x < y.", result_is_bool=True)
LessOrEqualOp = _binary("less_or_equal", "x <= y.", result_is_bool=True)
GreaterOp = _binary("greater", "x > y.", result_is_bool=True)
GreaterOrEqualOp = _binary("greater_or_equal", "x >= y.", result_is_bool=True)
AndOp = _binary("and", "Logical and of booleans.", constraints=_LOGIC, result_is_bool=True)
OrOp = _binary("or", "Logical or of booleans.", constraints=_LOGIC, result_is_bool=True)
XorOp = _binary("xor", "Logical xor of booleans.", constraints=_LOGIC, result_is_bool=True)

#: bitwise and/or/xor take integers
_BITWISE: Constraints = (SameElementType(), Integer())

BitwiseAndOp = _binary("bitwise_and", "Bitwise and of integers.", constraints=_BITWISE)
BitwiseOrOp = _binary("bitwise_or", "Bitwise or of integers.", constraints=_BITWISE)
BitwiseXorOp = _binary("bitwise_xor", "Bitwise xor of integers.", constraints=_BITWISE)


@irdl_op_definition
class BitShiftOp(BinaryOp):
    """x shifted by y bits toward the most (`direction = "LEFT"`) or least significant
    bit (`"RIGHT"`: arithmetic for signed types). A shift amount that is negative or at
    least the bit width gives 0 (-1 for a right shift of a negative signed x).

    %z = graph.bit_shift %x, %y {direction = "LEFT"} : (tensor<2x3xui8>, tensor<3xui8>) -> tensor<2x3xui8>
    """

    name = "graph.bit_shift"
    direction = StrProp()
    CONSTRAINTS: ClassVar[Constraints] = (*_BITWISE, OneOf("direction", ("LEFT", "RIGHT")))


# --------------------------------------------------------------------------- n-ary


class VariadicOp(GraphOp):
    """Base of n-ary elementwise ops (ONNX Max, Min, Sum, Mean) with broadcasting."""

    inputs = var_operand_def(TensorType)
    output = result_def(TensorType)
    CONSTRAINTS: ClassVar[Constraints] = (SameElementType(),)

    @classmethod
    def infer_result_types(
        cls, operand_types: Sequence[TensorType], props: Self
    ) -> list[TensorType]:
        shape = broadcast_shapes(*(t.get_shape() for t in operand_types))
        return [tensor(shape, operand_types[0].element_type)]


def _variadic(op_name: str, doc: str) -> type[VariadicOp]:
    class_name = op_name.capitalize() + "Op"
    example = (
        f"\n\n        %z = graph.{op_name} %a, %b, %c : (tensor<2x3xf32>, tensor<3xf32>, "
        "tensor<1xf32>) -> tensor<2x3xf32>\n    "
    )
    cls = type(class_name, (VariadicOp,), {"name": f"graph.{op_name}", "__doc__": doc + example})
    cls.__module__ = __name__
    return irdl_op_definition(cls)


MaxOp = _variadic("max", "Elementwise maximum of n tensors.")
MinOp = _variadic("min", "Elementwise minimum of n tensors.")
SumOp = _variadic("sum", "Elementwise sum of n tensors.")
MeanOp = _variadic("mean", "Elementwise mean of n tensors.")


@irdl_op_definition
class WhereOp(GraphOp):
    """cond ? x : y, all three broadcast together.

    %z = graph.where %c, %x, %y : (tensor<2x3xi1>, tensor<3xf32>, tensor<1xf32>) -> tensor<2x3xf32>
    """

    name = "graph.where"
    condition = operand_def(TensorType)
    lhs = operand_def(TensorType)
    rhs = operand_def(TensorType)
    output = result_def(TensorType)

    @classmethod
    def infer_result_types(
        cls, operand_types: Sequence[TensorType], props: Self
    ) -> list[TensorType]:
        cond, lhs, rhs = operand_types
        if not is_bool(cond.element_type):
            raise GraphError("graph.where condition must be a boolean (i1) tensor")
        if lhs.element_type != rhs.element_type:
            raise GraphError("graph.where branches must have the same element type")
        shape = broadcast_shapes(cond.get_shape(), lhs.get_shape(), rhs.get_shape())
        return [tensor(shape, lhs.element_type)]


ELEMENTWISE_OPS: list[type[GraphOp]] = [
    ConstantOp,
    ReluOp,
    LeakyReluOp,
    EluOp,
    SeluOp,
    HardSigmoidOp,
    GeluOp,
    ClipOp,
    SigmoidOp,
    TanhOp,
    ErfOp,
    ExpOp,
    LogOp,
    SqrtOp,
    ReciprocalOp,
    SinOp,
    CosOp,
    TanOp,
    AsinOp,
    AcosOp,
    AtanOp,
    SinhOp,
    CoshOp,
    AsinhOp,
    AcoshOp,
    AtanhOp,
    MishOp,
    CeluOp,
    ThresholdedReluOp,
    SwishOp,
    ShrinkOp,
    IsNaNOp,
    IsInfOp,
    BitwiseNotOp,
    SoftplusOp,
    SoftsignOp,
    HardSwishOp,
    FloorOp,
    CeilOp,
    RoundOp,
    NegOp,
    AbsOp,
    SignOp,
    IdentityOp,
    DropoutOp,
    NotOp,
    CastOp,
    AddOp,
    SubOp,
    MulOp,
    DivOp,
    PowOp,
    ModOp,
    FmodOp,
    PReluOp,
    EqualOp,
    LessOp,
    LessOrEqualOp,
    GreaterOp,
    GreaterOrEqualOp,
    AndOp,
    OrOp,
    XorOp,
    BitwiseAndOp,
    BitwiseOrOp,
    BitwiseXorOp,
    BitShiftOp,
    MaxOp,
    MinOp,
    SumOp,
    MeanOp,
    WhereOp,
]

__all__ = [
    "ELEMENTWISE_OPS",
    "ConstantOp",
    "ReluOp",
    "LeakyReluOp",
    "EluOp",
    "SeluOp",
    "HardSigmoidOp",
    "GeluOp",
    "ClipOp",
    "SigmoidOp",
    "TanhOp",
    "ErfOp",
    "ExpOp",
    "LogOp",
    "SqrtOp",
    "ReciprocalOp",
    "SinOp",
    "CosOp",
    "TanOp",
    "AsinOp",
    "AcosOp",
    "AtanOp",
    "SinhOp",
    "CoshOp",
    "AsinhOp",
    "AcoshOp",
    "AtanhOp",
    "MishOp",
    "CeluOp",
    "ThresholdedReluOp",
    "SwishOp",
    "ShrinkOp",
    "IsNaNOp",
    "IsInfOp",
    "BitwiseNotOp",
    "SoftplusOp",
    "SoftsignOp",
    "HardSwishOp",
    "FloorOp",
    "CeilOp",
    "RoundOp",
    "NegOp",
    "AbsOp",
    "SignOp",
    "IdentityOp",
    "DropoutOp",
    "NotOp",
    "CastOp",
    "AddOp",
    "SubOp",
    "MulOp",
    "DivOp",
    "PowOp",
    "ModOp",
    "FmodOp",
    "PReluOp",
    "EqualOp",
    "LessOp",
    "LessOrEqualOp",
    "GreaterOp",
    "GreaterOrEqualOp",
    "AndOp",
    "OrOp",
    "XorOp",
    "BitwiseAndOp",
    "BitwiseOrOp",
    "BitwiseXorOp",
    "BitShiftOp",
    "MaxOp",
    "MinOp",
    "SumOp",
    "MeanOp",
    "WhereOp",
    "dense_to_array",
]
