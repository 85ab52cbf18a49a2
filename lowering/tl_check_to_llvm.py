"""`tl.check` in native code: a failed check stores its number in the module's status word,
which the caller reads (and clears) after the call.

    tl.check %ok, "graph.gather: an index is out of range [-10, 10)"

becomes

    llvm.cond_br %ok, ^continue, ^fail
  ^fail:
    %s = llvm.mlir.addressof @mlc_status : !llvm.ptr
    llvm.store %k, %s : i64, !llvm.ptr          // k = 1 + the message's place in the table
    llvm.br ^continue

and the module gets `@mlc_status` (an i64, zero) and `@mlc_check_messages`, the messages
as a NUL-terminated JSON list, so that compiled and cached objects and shared libraries
describe their own failures. Every failing thread stores a nonzero number, so a race
between two failures loses nothing that matters (one message is reported).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from xdsl.dialects import llvm
from xdsl.dialects.builtin import DenseIntOrFPElementsAttr, IntegerAttr, TensorType, i1, i8, i64

from mlc.dialects.tl import CheckOp

if TYPE_CHECKING:
    from mlc.lowering.tl_to_llvm import _FunctionLowering

__all__ = ["MESSAGES_GLOBAL", "STATUS_GLOBAL", "CheckCodegen", "check_globals"]

STATUS_GLOBAL = "mlc_status"
MESSAGES_GLOBAL = "mlc_check_messages"
_PTR = llvm.LLVMPointerType()


def check_globals(messages: list[str]) -> list[llvm.GlobalOp]:
    """`@mlc_status` and `@mlc_check_messages` (variables, not constants: constants are
    renamed by their content, and these are found by name)."""
    data = json.dumps(messages, separators=(",", ":")).encode() + b"\0"
    table = DenseIntOrFPElementsAttr.from_list(TensorType(i8, [len(data)]), list(data))
    return [
        llvm.GlobalOp(i64, STATUS_GLOBAL, "external", alignment=8),  # zero-initialized
        llvm.GlobalOp(llvm.LLVMArrayType(len(data), i8), MESSAGES_GLOBAL, "external", value=table),
    ]


class CheckCodegen:
    """Mixin of `_FunctionLowering`: `tl.check` (`checks` is the module's message table,
    shared by its functions)."""

    def check(self: _FunctionLowering, op: CheckOp) -> None:
        message = op.message.data
        if message not in self.checks:
            self.checks.append(message)
        code = self.checks.index(message) + 1
        ok = self.values[op.ok]
        if isinstance(ok, int):  # folded: true never fails
            if ok:
                return
            ok = self.b.insert(llvm.ConstantOp(IntegerAttr(0, i1), i1)).result
        fail, after = self.new_block(), self.new_block()
        self.b.insert(llvm.CondBrOp(ok, after, [], fail, []))
        self.block = fail
        status = self.b.insert(llvm.AddressOfOp(STATUS_GLOBAL, _PTR)).result
        self.b.insert(llvm.StoreOp(self.v(code), status, alignment=8))
        self.b.insert(llvm.BrOp(after))
        self.block = after
