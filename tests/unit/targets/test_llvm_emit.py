"""The LLVM IR text emitter (`targets.llvm_emit`): constants keep their exact bits
(signed zeros, NaN payloads, subnormals, half precision, vector lanes), string
initializers keep every byte, phis take their values from each branch, and an op without
an emitter is named in an `EmitError`. (Every JIT test of the suite goes through it too.)"""

from __future__ import annotations

import ctypes
import math
import struct

import numpy as np
import pytest
from xdsl.dialects import llvm
from xdsl.dialects.builtin import (
    DenseIntOrFPElementsAttr,
    FloatAttr,
    IntegerAttr,
    ModuleOp,
    TensorType,
    VectorType,
    f16,
    f32,
    f64,
    i1,
    i8,
    i32,
    i64,
)
from xdsl.ir import Attribute, Block, Operation, Region

from mlc.lowering import llvm_ops
from mlc.targets.cpu import JitEngine, target_machine
from mlc.targets.llvm_emit import EmitError, emit_module

_PTR = llvm.LLVMPointerType()
_SLOT = 64  # bytes per stored value

#: (value, type, the bytes a store of it must write)
FLOATS: list[tuple[float, Attribute, bytes]] = [
    (-0.0, f32, struct.pack("<f", -0.0)),
    (0.1, f32, np.float32(0.1).tobytes()),  # rounded to f32 first
    (1e-45, f32, struct.pack("<I", 1)),  # the smallest subnormal
    (-math.inf, f32, struct.pack("<f", -math.inf)),
    (struct.unpack("<f", struct.pack("<I", 0x7FC00123))[0], f32, struct.pack("<I", 0x7FC00123)),
    (0.1, f64, struct.pack("<d", 0.1)),
    (-0.0, f64, struct.pack("<d", -0.0)),
    (65504.0, f16, np.float16(65504.0).tobytes()),
    (0.1, f16, np.float16(0.1).tobytes()),
]


def _function(name: str, build: list[Operation], entry: Block, *more: Block) -> llvm.FuncOp:
    entry.add_ops(build)
    return llvm.FuncOp(
        name,
        llvm.LLVMFunctionType([_PTR]),
        linkage=llvm.LinkageAttr("external"),
        body=Region([entry, *more]),
    )


def _store_at(ops: list[Operation], out: Block, k: int, value: Operation) -> None:
    ptr = llvm_ops.gep(out.args[0], k * _SLOT, i8, True)
    ops += [value, ptr, llvm_ops.store(value.results[0], ptr.result, 1)]


def _run(module: ModuleOp, name: str, size: int) -> bytes:
    tm = target_machine()
    engine = JitEngine()
    engine.add_module(emit_module(module, tm.triple, str(tm.target_data)))
    out = ctypes.create_string_buffer(size)
    ctypes.CFUNCTYPE(None, ctypes.c_void_p)(engine.function_address(name))(ctypes.addressof(out))
    return out.raw


def test_constants_keep_their_bits() -> None:
    """Scalar floats of each width, an i1, a negative i32 and a vector with distinct lanes
    (NaN among them) are stored exactly."""
    entry = Block(arg_types=[_PTR])
    ops: list[Operation] = []
    expected: list[bytes] = []
    for k, (value, ty, bits) in enumerate(FLOATS):
        _store_at(ops, entry, k, llvm_ops.constant_op(FloatAttr(value, ty), ty))
        expected.append(bits)
    n = len(FLOATS)
    _store_at(ops, entry, n, llvm_ops.constant_op(IntegerAttr(1, i1), i1))
    _store_at(ops, entry, n + 1, llvm_ops.constant_op(IntegerAttr(-7, i32), i32))
    lanes = [1.5, -0.0, math.nan, 3e38]
    vty = VectorType(f32, [4])
    vector = DenseIntOrFPElementsAttr.from_list(vty, lanes)
    _store_at(ops, entry, n + 2, llvm_ops.constant_op(vector, vty))
    expected += [b"\x01", struct.pack("<i", -7), np.array(lanes, np.float32).tobytes()]
    ops.append(llvm.ReturnOp())
    raw = _run(ModuleOp([_function("consts", ops, entry)]), "consts", _SLOT * len(expected))
    for k, bits in enumerate(expected):
        assert raw[k * _SLOT : k * _SLOT + len(bits)] == bits, (k, FLOATS[k : k + 1])


def test_global_initializers_keep_every_byte() -> None:
    """A constant global of all 256 byte values (quotes, backslashes, NUL among them, and
    a backslash before hex digits) is written as a string and read back as the same
    bytes."""
    data = bytes(range(256))[::-1] + b'\\41\\\\"\\'  # escapes that look like escapes
    ty = llvm.LLVMArrayType(len(data), i8)
    init = DenseIntOrFPElementsAttr.from_list(TensorType(i8, [len(data)]), list(data))
    table = llvm.GlobalOp(ty, "table", "internal", constant=True, value=init, alignment=16)
    entry = Block(arg_types=[_PTR])
    source = llvm.AddressOfOp("table", _PTR)
    copy = llvm_ops.load(source.result, VectorType(i8, [len(data)]), 1)
    ops: list[Operation] = [source, copy, llvm_ops.store(copy.results[0], entry.args[0], 1)]
    ops.append(llvm.ReturnOp())
    module = ModuleOp([table, _function("copy", ops, entry)])
    assert _run(module, "copy", len(data)) == data


def test_phis_take_each_branch_value() -> None:
    """A counting loop (a block argument carried around a back edge): 10 iterations."""
    entry, head, body, done = (
        Block(arg_types=[_PTR]),
        Block(arg_types=[i64]),
        Block(),
        Block(),
    )
    zero = llvm_ops.constant_op(IntegerAttr(0, i64), i64)
    one = llvm_ops.constant_op(IntegerAttr(1, i64), i64)
    ten = llvm_ops.constant_op(IntegerAttr(10, i64), i64)
    entry_ops: list[Operation] = [zero, one, ten, llvm.BrOp(head, zero.result)]
    i = head.args[0]
    more = llvm.ICmpOp(i, ten.result, IntegerAttr(2, i64))  # slt
    head.add_ops([more, llvm.CondBrOp(more.results[0], body, [], done, [])])
    step = llvm_ops.overflow_op(llvm.AddOp, i, one.result)
    body.add_ops([step, llvm.BrOp(head, step.results[0])])
    done.add_ops([llvm_ops.store(i, entry.args[0]), llvm.ReturnOp()])
    module = ModuleOp([_function("count", entry_ops, entry, head, body, done)])
    assert struct.unpack("<q", _run(module, "count", 8))[0] == 10


def test_an_op_without_an_emitter_is_named() -> None:
    entry = Block(arg_types=[_PTR])
    ops: list[Operation] = [llvm.InlineAsmOp("nop", "", []), llvm.ReturnOp()]
    module = ModuleOp([_function("asm", ops, entry)])
    with pytest.raises(EmitError, match="llvm.inline_asm"):
        emit_module(module)
