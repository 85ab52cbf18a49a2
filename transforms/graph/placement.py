"""`accel-placement`: move the int8 matrix products (and the elementwise ops the ALU can
do after them) to the simulated accelerator; everything else stays on the CPU.

A supported subgraph is a 2-D `graph.matmul` of int8 data, either on i8 tensors (an
i8 result, wrapping) or on i32 tensors that `graph.cast` made from i8 tensors, followed by
a chain of single-use ops: `graph.add` of a bias (shape (N,), (1, N) or (M, N)) first,
then any of `graph.relu` and `graph.clip` (integer bounds), then optionally a
`graph.cast` to i8. The chain becomes a call of a private function whose body is an
`hw.accel.program` (the transfers in and out of DRAM are its operands and results):

    %a32 = graph.cast %a : (tensor<4x8xi8>) -> tensor<4x8xi32>
    %b32 = graph.cast %b : (tensor<8x3xi8>) -> tensor<8x3xi32>
    %p = graph.matmul %a32, %b32 : (tensor<4x8xi32>, tensor<8x3xi32>) -> tensor<4x3xi32>
    %r = graph.relu %p : (tensor<4x3xi32>) -> tensor<4x3xi32>
      ->
    %r = func.call @accel_0(%a, %b) : (tensor<4x8xi8>, tensor<8x3xi8>) -> tensor<4x3xi32>
    func.func private @accel_0(...) -> tensor<4x3xi32> { %0 = hw.accel.program(...) ... }
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from xdsl.context import Context
from xdsl.dialects import func
from xdsl.dialects.builtin import IntegerType, ModuleOp, TensorType
from xdsl.ir import Operation, SSAValue
from xdsl.passes import ModulePass

from mlc.dialects import graph as g
from mlc.dialects.hw.accel import AluOpcode, ProgramOp
from mlc.lowering.graph_to_accel import Epilogue, lower_matmul

I32 = (-(2**31), 2**31 - 1)


def _int_type(value: SSAValue, bits: int) -> bool:
    ty = value.type
    return (
        isinstance(ty, TensorType)
        and isinstance(ty.element_type, IntegerType)
        and ty.element_type.width.data == bits
    )


def _shape(value: SSAValue) -> tuple[int, ...]:
    ty = value.type
    assert isinstance(ty, TensorType)
    return tuple(ty.get_shape())


def _bound(value: int | float | None, default: int) -> int | None:
    """A clip bound as an exact int32 (None: not representable on the ALU)."""
    if value is None:
        return default
    if isinstance(value, float) and not (np.isfinite(value) and value == int(value)):
        return None
    value = int(value)
    return value if I32[0] <= value <= I32[1] else None


@dataclass
class Partition:
    """One supported subgraph: the accelerator's inputs, the ops it replaces (in order,
    the last one's result is the output) and what the accelerator does."""

    a: SSAValue
    b: SSAValue
    ops: list[Operation]
    bias: SSAValue | None = None
    bias_kind: str | None = None
    alu: list[tuple[AluOpcode, int]] = field(default_factory=list)
    out_bits: int = 32


def _single_user(value: SSAValue) -> Operation | None:
    uses = list(value.uses)
    return uses[0].operation if len(uses) == 1 else None


def match(op: g.MatMulOp) -> Partition | None:
    """The partition rooted at `op`, or None when the accelerator cannot run it."""
    lhs, rhs = op.lhs, op.rhs
    if len(_shape(lhs)) != 2 or len(_shape(rhs)) != 2:
        return None
    if _int_type(lhs, 8) and _int_type(rhs, 8):  # i8 x i8 -> i8 (wrapping): no epilogue
        return Partition(lhs, rhs, [op], out_bits=8)
    if not _int_type(op.output, 32):
        return None
    sources = []
    for v in (lhs, rhs):
        if not (isinstance(v.owner, g.CastOp) and _int_type(v.owner.input, 8)):
            return None
        sources.append(v.owner.input)
    part = Partition(sources[0], sources[1], [op])
    m, n = _shape(op.output)
    while (user := _single_user(part.ops[-1].results[0])) is not None:
        value = part.ops[-1].results[0]
        if isinstance(user, g.AddOp) and part.bias is None and not part.alu:
            other = user.rhs if user.lhs is value else user.lhs
            if other is value or not _int_type(other, 32) or _shape(user.output) != (m, n):
                break
            kinds = {(n,): "row", (1, n): "row", (m, n): "full"}
            if _shape(other) not in kinds:
                break
            part.bias, part.bias_kind = other, kinds[_shape(other)]
        elif isinstance(user, g.ReluOp):
            part.alu.append((AluOpcode.MAX, 0))
        elif isinstance(user, g.ClipOp):
            lo, hi = _bound(user.min, I32[0]), _bound(user.max, I32[1])
            if lo is None or hi is None:
                break
            part.alu += [(AluOpcode.MAX, lo), (AluOpcode.MIN, hi)]
        elif isinstance(user, g.CastOp) and _int_type(user.output, 8):
            part.ops.append(user)
            part.out_bits = 8
            break
        else:
            break
        part.ops.append(user)
    return part


def offload(part: Partition, module: ModuleOp, name: str) -> func.FuncOp:
    """Replace the partition by a call of a new private function `@name` (added to
    `module`) that runs it on the accelerator."""
    (m, k), (_, n) = _shape(part.a), _shape(part.b)
    epilogue = Epilogue(part.bias_kind, tuple(part.alu), part.out_bits)
    inputs = [part.a, part.b]
    if part.bias is not None:
        inputs.append(part.bias)
    bias_shape = _shape(part.bias) if part.bias is not None else None
    fn = lower_matmul(m, k, n, epilogue, name, bias_shape=bias_shape, private=True)
    module.body.block.add_op(fn)
    last = part.ops[-1]
    call = func.CallOp(name, inputs, [last.results[0].type])
    block = last.parent_block()
    assert block is not None
    block.insert_op_before(call, last)
    last.results[0].replace_all_uses_with(call.res[0])
    for op in reversed(part.ops):
        op.detach()
        op.erase()
    return fn


@dataclass(frozen=True)
class AccelPlacementPass(ModulePass):
    """Offload every supported subgraph (see the module docstring) to the accelerator."""

    name = "accel-placement"

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        taken = {f.sym_name.data for f in op.body.block.ops if isinstance(f, func.FuncOp)}
        functions = [
            f
            for f in op.body.block.ops
            if isinstance(f, func.FuncOp) and not any(isinstance(x, ProgramOp) for x in f.walk())
        ]
        count = 0
        for f in functions:
            for mm in [x for x in f.walk() if isinstance(x, g.MatMulOp)]:
                part = match(mm)
                if part is None:
                    continue
                while f"accel_{count}" in taken:
                    count += 1
                name = f"accel_{count}"
                taken.add(name)
                casts = {v.owner for v in mm.operands if isinstance(v.owner, g.CastOp)}
                offload(part, op, name)
                for cast in casts:  # the i8 -> i32 casts, when nothing else needs them
                    if cast.parent is not None and not cast.results[0].uses:
                        cast.detach()
                        cast.erase()
