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
from collections.abc import Sequence
from dataclasses import dataclass, field

from xdsl.dialects import llvm
from xdsl.dialects.builtin import DenseIntOrFPElementsAttr, IntegerAttr, TensorType, i1, i8, i64
from xdsl.ir import SSAValue

from mlc.dialects.tl import CheckOp
from mlc.lowering import llvm_ops
from mlc.lowering.llvm_builder import PTR, FunctionBuilder, Index

__all__ = [
    "MESSAGES_GLOBAL",
    "OUT_OF_MEMORY",
    "STATUS_GLOBAL",
    "CheckCodegen",
    "CheckTable",
    "check_globals",
    "out_of_memory",
]

STATUS_GLOBAL = "mlc_status"
MESSAGES_GLOBAL = "mlc_check_messages"
#: how the message of a failed allocation starts (`NativeFunction` raises a MemoryError)
OUT_OF_MEMORY = "out of memory"


@dataclass
class CheckTable:
    """A module's failure messages (status k is `messages[k - 1]`), shared by its
    functions, and whether a `tl.check` needs the status word."""

    messages: list[str] = field(default_factory=list)
    status_word: bool = False

    def code(self, message: str) -> int:
        """The number of `message` (added if new)."""
        if message not in self.messages:
            self.messages.append(message)
        return self.messages.index(message) + 1


def out_of_memory(size: int) -> str:
    """The message of a failed allocation of `size` bytes."""
    return f"{OUT_OF_MEMORY}: cannot allocate {size} bytes for the model's buffers"


def check_globals(table: CheckTable) -> list[llvm.GlobalOp]:
    """`@mlc_check_messages` and, if a `tl.check` uses it, `@mlc_status` (variables, not
    constants: constants are renamed by their content, and these are found by name)."""
    data = json.dumps(table.messages, separators=(",", ":")).encode() + b"\0"
    values = DenseIntOrFPElementsAttr.from_list(TensorType(i8, [len(data)]), list(data))
    messages = llvm.GlobalOp(
        llvm.LLVMArrayType(len(data), i8), MESSAGES_GLOBAL, "external", value=values
    )
    if not table.status_word:
        return [messages]
    return [llvm.GlobalOp(i64, STATUS_GLOBAL, "external", alignment=8), messages]  # zero


class CheckCodegen:
    """`tl.check` and the failures of a status-returning function, emitted through `fb`:
    `table` is the module's `CheckTable`; `returns_status`: the function is an entry,
    which returns an i64 status (0, or a failure's number)."""

    def __init__(self, fb: FunctionBuilder, table: CheckTable, returns_status: bool) -> None:
        self.fb = fb
        self.table = table
        self.returns_status = returns_status

    def check(self, op: CheckOp) -> None:
        """A failed `op` stores its number in `@mlc_status` and goes on."""
        fb = self.fb
        code = self.table.code(op.message.data)
        self.table.status_word = True
        ok = fb.values[op.ok]
        if isinstance(ok, int):  # folded: true never fails
            if ok:
                return
            ok = fb.insert(llvm.ConstantOp(IntegerAttr(0, i1), i1)).result
        fail, after = fb.new_block(), fb.new_block()
        fb.insert(llvm_ops.cond_br(ok, after, [], fail, []))
        fb.block = fail
        status = fb.insert(llvm.AddressOfOp(STATUS_GLOBAL, PTR)).result
        fb.insert(llvm.StoreOp(fb.v(code), status, alignment=8))
        fb.insert(llvm_ops.br(after))
        fb.block = after

    def return_status_unless(
        self, ok: SSAValue, code: Index, allocated: Sequence[SSAValue]
    ) -> None:
        """Unless `ok`: free `allocated` (what the function allocated so far) and return
        `code` at once (an int or an i64 value)."""
        fb = self.fb
        fail, after = fb.new_block(), fb.new_block()
        fb.insert(llvm_ops.cond_br(ok, after, [], fail, []))
        fb.block = fail
        for ptr in allocated:
            fb.call("free", [ptr], None)
        fb.insert(llvm.ReturnOp(fb.v(code)))
        fb.block = after

    def check_allocation(self, ptr: SSAValue, size: int, allocated: Sequence[SSAValue]) -> None:
        """A NULL `ptr` (a failed `aligned_alloc` of `size` bytes) frees `allocated` and
        returns the out-of-memory status instead of writing through it."""
        if not self.returns_status:
            return  # (a private function: nowhere to report; mlc's allocate in entries)
        address = self.fb.insert(llvm.PtrToIntOp(ptr, i64)).results[0]
        self.return_status_unless(
            self.fb.icmp("ne", address, 0), self.table.code(out_of_memory(size)), allocated
        )
