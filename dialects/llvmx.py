"""`llvmx`: the few LLVM instructions mlc's vector code needs that xDSL's `llvm` dialect
does not model (xDSL 0.74's `llvm.fcmp` is scalar only and it has no `extractelement` or
`fptosi`).
`targets/llvm_emit.py` translates them; they print and parse like any op.

    %m = llvmx.fcmp "olt" %a, %b : vector<16xf32> -> vector<16xi1>
    %x = llvmx.extractelement %v[%i] : vector<16xf32> -> f32
    %n = llvmx.fptosi %x : vector<8xf32> -> vector<8xi32>
"""

from __future__ import annotations

from typing import ClassVar

from xdsl.dialects.builtin import I1, AnyFloatConstr, IntegerType, StringAttr, VectorType, i64
from xdsl.ir import Attribute, Dialect, Operation, SSAValue
from xdsl.irdl import (
    AnyAttr,
    EqAttrConstraint,
    IRDLOperation,
    VarConstraint,
    irdl_op_definition,
    operand_def,
    prop_def,
    result_def,
    traits_def,
)
from xdsl.traits import Pure
from xdsl.utils.exceptions import VerifyException

__all__ = ["FCMP_PREDICATES", "ExtractElementOp", "FCmpOp", "FPToSIOp", "LLVMX"]

#: LLVM's fcmp predicates (as `arith.cmpf` numbers them, 0 = false ... 15 = true)
FCMP_PREDICATES = "false oeq ogt oge olt ole one ord ueq ugt uge ult ule une uno true".split()


@irdl_op_definition
class FCmpOp(IRDLOperation):
    """Float comparison, lane by lane on vectors:

    %m = llvmx.fcmp "olt" %a, %b : vector<16xf32> -> vector<16xi1>
    """

    name = "llvmx.fcmp"

    T: ClassVar = VarConstraint("T", AnyFloatConstr | VectorType.constr(AnyFloatConstr))
    lhs = operand_def(T)
    rhs = operand_def(T)
    res = result_def(I1 | VectorType[I1])
    predicate = prop_def(StringAttr)
    traits = traits_def(Pure())

    assembly_format = "$predicate $lhs `,` $rhs attr-dict `:` type($lhs) `->` type($res)"

    def __init__(self, lhs: SSAValue | Operation, rhs: SSAValue | Operation, predicate: str):
        ty = SSAValue.get(lhs).type
        res: Attribute = (
            VectorType(IntegerType(1), ty.get_shape())
            if isinstance(ty, VectorType)
            else IntegerType(1)
        )
        super().__init__(
            operands=[lhs, rhs], result_types=[res], properties={"predicate": StringAttr(predicate)}
        )

    def verify_(self) -> None:
        if self.predicate.data not in FCMP_PREDICATES:
            raise VerifyException(f"unknown fcmp predicate '{self.predicate.data}'")
        ty = self.lhs.type
        lanes = ty.get_shape() if isinstance(ty, VectorType) else None
        res = self.res.type
        if (res.get_shape() if isinstance(res, VectorType) else None) != lanes:
            raise VerifyException("the result must have one i1 per operand lane")


@irdl_op_definition
class ExtractElementOp(IRDLOperation):
    """One lane of a vector:

    %x = llvmx.extractelement %v[%i] : vector<16xf32> -> f32
    """

    name = "llvmx.extractelement"

    vector = operand_def(VectorType)
    index = operand_def(EqAttrConstraint(i64))
    res = result_def(AnyAttr())
    traits = traits_def(Pure())

    assembly_format = "$vector `[` $index `]` attr-dict `:` type($vector) `->` type($res)"

    def __init__(self, vector: SSAValue | Operation, index: SSAValue | Operation):
        ty = SSAValue.get(vector).type
        assert isinstance(ty, VectorType)
        super().__init__(operands=[vector, index], result_types=[ty.element_type])

    def verify_(self) -> None:
        ty = self.vector.type
        assert isinstance(ty, VectorType)
        if self.res.type != ty.element_type:
            raise VerifyException("the result type must be the vector's element type")


@irdl_op_definition
class FPToSIOp(IRDLOperation):
    """Float to signed integer, rounding toward zero, lane by lane on vectors. LLVM's
    `fptosi`: poison where the value does not fit, so mlc emits it only on values it has
    brought into range (`lowering.arith_to_llvm._low32_of_cvt64`); it becomes one
    `cvttps2dq` per vector where `llvm.fptosi.sat` is scalarized on AVX2.

    %i = llvmx.fptosi %x : vector<8xf32> -> vector<8xi32>
    """

    name = "llvmx.fptosi"

    input = operand_def(AnyFloatConstr | VectorType.constr(AnyFloatConstr))
    res = result_def(IntegerType | VectorType)
    traits = traits_def(Pure())

    assembly_format = "$input attr-dict `:` type($input) `->` type($res)"

    def __init__(self, value: SSAValue | Operation, result_type: Attribute):
        super().__init__(operands=[value], result_types=[result_type])

    def verify_(self) -> None:
        ty, res = self.input.type, self.res.type
        lanes = ty.get_shape() if isinstance(ty, VectorType) else None
        if (res.get_shape() if isinstance(res, VectorType) else None) != lanes:
            raise VerifyException("the result must have one integer per operand lane")
        element = res.element_type if isinstance(res, VectorType) else res
        if not isinstance(element, IntegerType):
            raise VerifyException("the result must be an integer (vector)")


LLVMX = Dialect("llvmx", [FCmpOp, ExtractElementOp, FPToSIOp])
