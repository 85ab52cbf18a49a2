"""`tl.check`: a run-time condition on input values that native code cannot assume (a
gather index in range, ...). Code that depends on it must already be safe when it fails
(e.g. read a clamped index): the check only reports.

Semantics: when `%ok` is false the call fails with `message`. The interpreter raises at
once; compiled code records the failure in the module's status word (`@mlc_status`,
`lowering.tl_to_llvm`) and the caller raises `RuntimeCheckError` once the call returns,
discarding its outputs.
"""

from __future__ import annotations

from xdsl.dialects.builtin import StringAttr, i1
from xdsl.ir import SSAValue
from xdsl.irdl import IRDLOperation, irdl_op_definition, operand_def, prop_def

__all__ = ["CheckOp", "RuntimeCheckError"]


class RuntimeCheckError(ValueError):
    """A `tl.check` failed: the call's input values are invalid (the message says how)."""


@irdl_op_definition
class CheckOp(IRDLOperation):
    """Fail the call with `message` unless `%ok` holds.

    tl.check %ok, "graph.gather: an index is out of range [-10, 10)"
    """

    name = "tl.check"

    ok = operand_def(i1)
    message = prop_def(StringAttr)

    assembly_format = "$ok `,` $message attr-dict"

    def __init__(self, ok: SSAValue, message: str) -> None:
        super().__init__(operands=[ok], properties={"message": StringAttr(message)})
