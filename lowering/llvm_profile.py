"""`llvm-profile-kernels`: time every kernel call of a model in native code.

After `convert-tl-to-llvm`, each call of an outlined kernel (`tl-outline-kernels`) in the
model's function is bracketed by two timestamps, and the function's entry and each return
by one more, written to the `i64` array `@mlc_profile_ticks` (nanoseconds of
`CLOCK_MONOTONIC`; slot 0 entry, 1 exit, 2 + 2i / 3 + 2i around call i):

    llvm.call @mlc_kernel_5d0c...(%x, %y) {mlc.label = "relu", ...} : (...) -> ()
      ->
    llvm.call @mlc_profile_stamp(%c2) : (i64) -> ()
    llvm.call @mlc_kernel_5d0c...(%x, %y) {mlc.label = "relu", ...} : (...) -> ()
    llvm.call @mlc_profile_stamp(%c3) : (i64) -> ()

`@mlc_profile_sites` holds what each call runs, as NUL-terminated JSON (`[{"label", "kernel", "flops",
"bytes"}, ...]`, from the calls' `outline.SITE_ATTRIBUTES`), so a compiled model, cached
or exported, describes its own profile (`targets.profile` reads both). Stamps cost two
`clock_gettime` calls (tens of nanoseconds, through the vDSO) per kernel; nothing else
changes, so outputs are those of the uninstrumented model.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from xdsl.context import Context
from xdsl.dialects import llvm
from xdsl.dialects.builtin import (
    DenseIntOrFPElementsAttr,
    IntegerAttr,
    ModuleOp,
    StringAttr,
    TensorType,
    i8,
    i32,
    i64,
)
from xdsl.ir import Block, Operation, Region
from xdsl.passes import ModulePass

from mlc.transforms.loops.outline import KERNEL_PREFIX

__all__ = [
    "CLOCK_GETTIME",
    "LlvmProfileKernelsPass",
    "SITES_GLOBAL",
    "STAMP_FUNCTION",
    "TICKS_GLOBAL",
    "instrument_kernels",
]

TICKS_GLOBAL = "mlc_profile_ticks"
SITES_GLOBAL = "mlc_profile_sites"
STAMP_FUNCTION = "mlc_profile_stamp"
CLOCK_GETTIME = "clock_gettime"
#: `CLOCK_MONOTONIC` on Linux
_CLOCK_MONOTONIC = 1
_PTR = llvm.LLVMPointerType()
_VOID = llvm.LLVMVoidType()


def _constant(value: int, ty: llvm.IntegerType = i64) -> llvm.ConstantOp:
    return llvm.ConstantOp(IntegerAttr(value, ty), ty)


def _stamp_function() -> llvm.FuncOp:
    """`@mlc_profile_stamp(slot)`: ticks[slot] = CLOCK_MONOTONIC in nanoseconds."""
    block = Block(arg_types=[i64])
    one, clock, billion = _constant(1), _constant(_CLOCK_MONOTONIC, i32), _constant(10**9)
    ts = llvm.AllocaOp(one, llvm.LLVMArrayType(2, i64))
    call = llvm.CallOp(CLOCK_GETTIME, clock, ts, return_type=i32)
    sec = llvm.LoadOp(ts, i64)
    nsec_ptr = llvm.GEPOp(ts, [1], i64, inbounds=True)
    nsec = llvm.LoadOp(nsec_ptr, i64)
    scaled = llvm.MulOp(sec.dereferenced_value, billion.result)
    ns = llvm.AddOp(scaled.res, nsec.dereferenced_value)
    ticks = llvm.AddressOfOp(TICKS_GLOBAL, _PTR)
    slot_ptr = llvm.GEPOp(
        ticks, [llvm.GEP_USE_SSA_VAL], i64, ssa_indices=[block.args[0]], inbounds=True
    )
    store = llvm.StoreOp(ns.res, slot_ptr.result)
    block.add_ops(
        [one, clock, billion, ts, call, sec, nsec_ptr, nsec, scaled, ns, ticks, slot_ptr, store]
    )
    block.add_op(llvm.ReturnOp())
    return llvm.FuncOp(
        STAMP_FUNCTION,
        llvm.LLVMFunctionType([i64], _VOID),
        linkage=llvm.LinkageAttr("internal"),
        body=Region(block),
    )


def _stamp(slot: int) -> list[Operation]:
    index = _constant(slot)
    return [index, llvm.CallOp(STAMP_FUNCTION, index, return_type=None)]


def _int(op: Operation, name: str) -> int:
    attr = op.attributes.get(name)
    return attr.value.data if isinstance(attr, IntegerAttr) else 0


def _site(call: llvm.CallOp) -> dict[str, object]:
    label = call.attributes.get("mlc.label")
    callee = call.callee.string_value() if call.callee is not None else ""
    return {
        "label": label.data if isinstance(label, StringAttr) else callee,
        "kernel": callee,
        "flops": _int(call, "mlc.flops"),
        "bytes": _int(call, "mlc.bytes"),
    }


def _kernel_calls(f: llvm.FuncOp) -> list[llvm.CallOp]:
    return [
        op
        for op in f.body.walk()
        if isinstance(op, llvm.CallOp)
        and op.callee is not None
        and op.callee.string_value().startswith(KERNEL_PREFIX)
    ]


def _sites_global(sites: list[dict[str, object]]) -> llvm.GlobalOp:
    """The sites as JSON bytes. A variable, not a constant: constants are renamed by
    their content (`llvm_emit.content_address_constants`) and this one is found by name."""
    data = json.dumps(sites, separators=(",", ":")).encode() + b"\0"  # NUL-terminated
    value = DenseIntOrFPElementsAttr.from_list(TensorType(i8, [len(data)]), list(data))
    return llvm.GlobalOp(
        llvm.LLVMArrayType(len(data), i8), SITES_GLOBAL, "external", value=value, alignment=8
    )


def instrument_kernels(module: ModuleOp) -> list[dict[str, object]]:
    """Instrument the kernel calls of every non-kernel function of `module` (see the
    module docstring); returns the sites."""
    entries = [
        op
        for op in module.ops
        if isinstance(op, llvm.FuncOp)
        and op.body.blocks
        and not op.sym_name.data.startswith(KERNEL_PREFIX)
        and op.linkage.linkage.data != "internal"
    ]
    sites: list[dict[str, object]] = []
    for f in entries:
        f.body.blocks[0].insert_ops_before(_stamp(0), f.body.blocks[0].first_op)  # type: ignore[arg-type]
        for ret in [op for op in f.body.walk() if isinstance(op, llvm.ReturnOp)]:
            ret.parent_block().insert_ops_before(_stamp(1), ret)  # type: ignore[union-attr]
        for call in _kernel_calls(f):
            slot = 2 + 2 * len(sites)
            sites.append(_site(call))
            block = call.parent_block()
            assert block is not None
            block.insert_ops_before(_stamp(slot), call)
            block.insert_ops_after(_stamp(slot + 1), call)
    ticks = llvm.GlobalOp(
        llvm.LLVMArrayType(2 + 2 * len(sites), i64), TICKS_GLOBAL, "external", alignment=64
    )
    clock = llvm.FuncOp(
        CLOCK_GETTIME,
        llvm.LLVMFunctionType([i32, _PTR], i32),
        linkage=llvm.LinkageAttr("external"),
    )
    first = module.body.block.first_op
    module.body.block.insert_ops_before([ticks, _sites_global(sites), clock], first)  # type: ignore[arg-type]
    module.body.block.add_op(_stamp_function())
    return sites


@dataclass(frozen=True)
class LlvmProfileKernelsPass(ModulePass):
    """`llvm-profile-kernels`: timestamps around every kernel call (see the module
    docstring)."""

    name = "llvm-profile-kernels"

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        instrument_kernels(op)
