"""`tl-outline-kernels`: every top-level loop nest of a function at the explicit-loop level
becomes a private function of its own, called where it was; structurally identical nests
(same loops, schedule, body, shapes and element types: block labels aside) share one.

    func.func @main(%x: memref<8xf32>) -> memref<8xf32> {
      %0 = memref.alloc() : memref<8xf32>
      tl.for %i = 0 to 8 { tl.block "relu" ... ins(%x[i]) outs(%0[i]) ... }
      func.return %0 : memref<8xf32>
    }
 ->
    func.func private @mlc_kernel_5d0c...(%0: memref<8xf32>, %1: memref<8xf32>) {
      tl.for %i = 0 to 8 { tl.block "relu" ... ins(%0[i]) outs(%1[i]) ... }
      func.return
    }
    func.func @main(%x: memref<8xf32>) -> memref<8xf32> {
      %0 = memref.alloc() : memref<8xf32>
      func.call @mlc_kernel_5d0c...(%x, %0) : (memref<8xf32>, memref<8xf32>) -> ()
      func.return %0 : memref<8xf32>
    }

Each call records what it runs, for profiles (`mlc.profile`): `mlc.label` (its blocks'
labels, `+`-joined), `mlc.flops` (floating-point operations: each block's iteration count
times the float arithmetic in its body) and `mlc.bytes` (the sizes of its buffers):

    func.call @mlc_kernel_5d0c...(%x, %0) {mlc.label = "relu", mlc.flops = 8 : i64,
                                           mlc.bytes = 64 : i64} : (...) -> ()

A kernel function's name is the hash of its text with labels and names made canonical
(`kernel_scope.scope_key`, the key schedule reuse uses too): the
unit of deduplication, of the compile cache and of parallel code generation (a ResNet-50's
53 convolutions are far fewer distinct kernels). A nest is outlined only when every value
it uses from outside is a whole buffer (a function argument, `memref.alloc` or
`memref.get_global` result: no views, so no two arguments overlap) and it refers to no
symbol; anything else stays inline.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from xdsl.context import Context
from xdsl.dialects import func, memref
from xdsl.dialects.builtin import (
    IntegerAttr,
    MemRefType,
    ModuleOp,
    StringAttr,
    SymbolRefAttr,
    i64,
)
from xdsl.ir import Attribute, Block, BlockArgument, Operation, Region, SSAValue
from xdsl.passes import ModulePass

from mlc.dialects.tl import BlockOp, ForOp
from mlc.lowering.workspace import buffer_bytes
from mlc.transforms.loops.common import block_flops
from mlc.transforms.loops.kernel_scope import scope_key

__all__ = [
    "KERNEL_PREFIX",
    "SITE_ATTRIBUTES",
    "TlOutlineKernelsPass",
    "kernel_of",
    "outline_kernels",
    "site_attributes",
]

#: the symbol prefix of outlined kernel functions
KERNEL_PREFIX = "mlc_kernel_"
#: the attributes a kernel call carries (see the module docstring)
SITE_ATTRIBUTES = ("mlc.label", "mlc.flops", "mlc.bytes")


def kernel_of(symbol: str) -> str | None:
    """The kernel function a function belongs to after the LLVM lowering: `symbol`
    itself for a kernel, the kernel for its parallel regions (`<kernel>_par<i>`,
    `<kernel>_par<i>_body`, `lowering.tl_parallel_to_llvm`); None for anything else."""
    if not symbol.startswith(KERNEL_PREFIX):
        return None
    return KERNEL_PREFIX + symbol[len(KERNEL_PREFIX) :].split("_par")[0]


def _outlinable(root: Operation, captures: Sequence[SSAValue]) -> bool:
    """Whether `root`, using `captures` from outside, may become a function: every capture
    a whole static buffer, and no symbol referred to."""
    for v in captures:
        if not isinstance(v.type, MemRefType) or not v.type.has_static_shape():
            return False
        whole = isinstance(v, BlockArgument) and isinstance(v.owner.parent_op(), func.FuncOp)
        if not whole and not isinstance(v.owner, memref.AllocOp | memref.GetGlobalOp):
            return False
    return not any(
        isinstance(a, SymbolRefAttr) for op in root.walk() for a in op.properties.values()
    )


def _function(root: Operation, captures: list[SSAValue], name: str) -> func.FuncOp:
    block = Block(arg_types=[v.type for v in captures])
    mapping: dict[SSAValue, SSAValue] = dict(zip(captures, block.args))
    block.add_op(root.clone(value_mapper=mapping))  # type: ignore[arg-type]
    block.add_op(func.ReturnOp())
    return func.FuncOp(name, ([v.type for v in captures], []), Region(block), visibility="private")


def site_attributes(root: Operation, captures: Sequence[SSAValue]) -> dict[str, Attribute]:
    """`SITE_ATTRIBUTES` of the loop nest `root` over the buffers `captures`."""
    labels: list[str] = []
    flops = 0
    for block in root.walk():
        if isinstance(block, BlockOp):
            if block.label.data not in labels:
                labels.append(block.label.data)
            flops += block_flops(block)
    size = sum(buffer_bytes(v.type) or 0 for v in captures)
    return {
        "mlc.label": StringAttr("+".join(labels)),
        "mlc.flops": IntegerAttr(flops, i64),
        "mlc.bytes": IntegerAttr(size, i64),
    }


def outline_kernels(module: ModuleOp) -> dict[str, int]:
    """Outline (see the module docstring); returns each kernel function's call count."""
    kernels: dict[str, func.FuncOp] = {}
    calls: dict[str, int] = {}
    for f in [op for op in module.ops if isinstance(op, func.FuncOp) and not op.is_declaration]:
        if f.sym_name.data.startswith(KERNEL_PREFIX):
            continue
        for op in list(f.body.block.ops):
            if not isinstance(op, ForOp | BlockOp):
                continue
            key, captures, _ = scope_key([op])  # captures: in order of first use
            if not _outlinable(op, captures):
                continue
            name = KERNEL_PREFIX + key
            if name not in kernels:
                kernels[name] = _function(op, captures, name)
                module.body.block.insert_op_before(kernels[name], f)
            calls[name] = calls.get(name, 0) + 1
            call = func.CallOp(name, captures, [])
            call.attributes.update(site_attributes(op, captures))
            f.body.block.insert_op_before(call, op)
            f.body.block.erase_op(op)
    return calls


@dataclass(frozen=True)
class TlOutlineKernelsPass(ModulePass):
    """`tl-outline-kernels`: top-level loop nests become (shared) kernel functions."""

    name = "tl-outline-kernels"

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        outline_kernels(op)
