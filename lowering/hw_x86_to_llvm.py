"""`hw.x86` ops -> LLVM x86 intrinsics, as part of `convert-tl-to-llvm`.

Importing this module registers one lowering per op in `llvm_builder.OP_LOWERINGS`
(`convert-tl-to-llvm` imports it: `tl_to_llvm.HW_LOWERING_MODULES`); each emits through
the function's `FunctionBuilder`. Tiles are addressed from their first element with the
op's element strides (`GEP` on the buffer's element type):

* `hw.x86.vpdpbusd` (lanes L = 16 / 8): load the L accumulators, broadcast A's 4 bytes as
  one i32, load B's L x 4 bytes as `<L x i32>`, call
  `llvm.x86.avx512.vpdpbusd.512` / `.256` (acc, u8 operand, s8 operand), store.
* `hw.x86.vdpbf16ps`: the same with `llvm.x86.avx512bf16.dpbf16ps.512` / `.256` in its
  `<L x i32>`-operand form, which LLVM auto-upgrades to the `bfloat` vector signature
  (llvmlite has no bfloat type). The rest of the LLVM path carries bf16 the same way, as
  16-bit integers (`lowering.arith_to_llvm`).
* `hw.x86.vpmaddwd` (lanes 8, AVX2): load the 8 i32 accumulators, broadcast A's two i16
  as one i32 and bitcast to `<16 x i16>`, load B's 8 x 2 i16 as `<16 x i16>`, call
  `llvm.x86.avx2.pmadd.wd` (pairs multiplied and summed in i32, wrapping) and add the
  result to the accumulators (`add`, wrapping), store.
* `hw.x86.fma_tile`: the MR x NR/L accumulators are loaded into SSA values, a loop over
  the K panel carries them (block arguments: registers), each step loads NR/L vectors
  of B, broadcasts MR scalars of A and issues `llvm.fma.v<L>f32`; the tile is stored after
  the loop.
"""

from __future__ import annotations

from typing import cast

from xdsl.dialects import llvm
from xdsl.dialects.builtin import (
    Float32Type,
    IntegerType,
    MemRefType,
    VectorType,
    f32,
    i16,
    i32,
)
from xdsl.ir import Attribute, Operation, SSAValue

from mlc.dialects.hw.x86 import FmaTileOp, Vdpbf16psOp, VpdpbusdOp, VpmaddwdOp
from mlc.lowering import llvm_ops
from mlc.lowering.llvm_builder import OP_LOWERINGS, FunctionBuilder, Index

__all__ = ["lower_broadcast_dot", "lower_fma_tile", "lower_vpmaddwd"]

_DOT_INTRINSICS = {
    (VpdpbusdOp, 16): "llvm.x86.avx512.vpdpbusd.512",
    (VpdpbusdOp, 8): "llvm.x86.avx512.vpdpbusd.256",
    (Vdpbf16psOp, 16): "llvm.x86.avx512bf16.dpbf16ps.512",
    (Vdpbf16psOp, 8): "llvm.x86.avx512bf16.dpbf16ps.256",
}


def _memory_type(element: Attribute) -> Attribute:
    """The LLVM type addressing one element (bf16 as its 16 bits)."""
    if isinstance(element, IntegerType | Float32Type):
        return element
    return i16


def _tile_ptr(fb: FunctionBuilder, buf: SSAValue, idx: list[SSAValue]) -> SSAValue:
    ty = cast(MemRefType, buf.type)
    offset = fb.flat_offset(ty, [fb.values[i] for i in idx])
    return _gep(fb, cast(SSAValue, fb.values[buf]), offset, ty.element_type)


def _gep(fb: FunctionBuilder, ptr: SSAValue, offset: Index, element: Attribute) -> SSAValue:
    if isinstance(offset, int) and offset == 0:
        return ptr
    return fb.gep(ptr, offset, _memory_type(element))


def _load(fb: FunctionBuilder, ptr: SSAValue, ty: Attribute, align: int) -> SSAValue:
    return fb.insert(llvm.LoadOp(ptr, ty, alignment=align)).dereferenced_value


def lower_broadcast_dot(fb: FunctionBuilder, op: Operation) -> None:
    """`vpdpbusd` / `vdpbf16ps` (see the module docstring)."""
    assert isinstance(op, VpdpbusdOp | Vdpbf16psOp)
    lanes = op.lanes.value.data
    name = _DOT_INTRINSICS[(type(op), lanes)]
    acc_elem: Attribute = i32 if isinstance(op, VpdpbusdOp) else f32
    acc_ty = VectorType(acc_elem, [lanes])
    word_ty = VectorType(i32, [lanes])
    c_ptr = _tile_ptr(fb, op.c, list(op.c_indices))
    a_ptr = _tile_ptr(fb, op.a, list(op.a_indices))
    b_ptr = _tile_ptr(fb, op.b, list(op.b_indices))
    acc = _load(fb, c_ptr, acc_ty, 4)
    a_word = _load(fb, a_ptr, i32, 1)
    a_vec = fb.splat(a_word, lanes)
    b_vec = _load(fb, b_ptr, word_ty, 1)
    call = llvm_ops.call_intrinsic(name, [acc, a_vec, b_vec], [acc_ty])
    result = fb.insert(call).results[0]
    fb.insert(llvm.StoreOp(result, c_ptr, alignment=4))


def lower_vpmaddwd(fb: FunctionBuilder, op: Operation) -> None:
    """`vpmaddwd` then an i32 add into the accumulators (see the module docstring)."""
    assert isinstance(op, VpmaddwdOp)
    lanes = op.lanes.value.data
    acc_ty = VectorType(i32, [lanes])
    pair_ty = VectorType(i16, [2 * lanes])
    c_ptr = _tile_ptr(fb, op.c, list(op.c_indices))
    a_ptr = _tile_ptr(fb, op.a, list(op.a_indices))
    b_ptr = _tile_ptr(fb, op.b, list(op.b_indices))
    acc = _load(fb, c_ptr, acc_ty, 4)
    a_pair = _load(fb, a_ptr, i32, 2)
    a_vec = fb.insert(llvm.BitcastOp(fb.splat(a_pair, lanes), pair_ty)).results[0]
    b_vec = _load(fb, b_ptr, pair_ty, 2)
    call = llvm_ops.call_intrinsic("llvm.x86.avx2.pmadd.wd", [a_vec, b_vec], [acc_ty])
    product = fb.insert(call).results[0]
    total = fb.insert(llvm.AddOp(acc, product)).results[0]
    fb.insert(llvm.StoreOp(total, c_ptr, alignment=4))


def lower_fma_tile(fb: FunctionBuilder, op: Operation) -> None:
    """`fma_tile`: accumulators in registers across the K loop (module docstring)."""
    assert isinstance(op, FmaTileOp)
    mr, nr, kc = op.mr.value.data, op.nr.value.data, op.kc.value.data
    lanes = op.lanes.value.data
    nv = nr // lanes
    strides = op.tile_strides()
    sa_i, sa_k = strides["A"]
    sb_k = strides["B"][0]
    sc_i = strides["C"][0]
    vty = VectorType(f32, [lanes])
    fma = f"llvm.fma.v{lanes}f32"
    c_ptr = _tile_ptr(fb, op.c, list(op.c_indices))
    a_ptr = _tile_ptr(fb, op.a, list(op.a_indices))
    b_ptr = _tile_ptr(fb, op.b, list(op.b_indices))
    c_ptrs = [[_gep(fb, c_ptr, i * sc_i + v * lanes, f32) for v in range(nv)] for i in range(mr)]
    accs = [_load(fb, p, vty, 4) for row in c_ptrs for p in row]

    def k_step(k: SSAValue, accs: list[SSAValue]) -> list[SSAValue]:
        b_row = _gep(fb, b_ptr, fb.mul(k, sb_k), f32)
        a_col = _gep(fb, a_ptr, fb.mul(k, sa_k), f32)
        b_vecs = [_load(fb, _gep(fb, b_row, v * lanes, f32), vty, 4) for v in range(nv)]
        new: list[SSAValue] = []
        for i in range(mr):
            a = _load(fb, _gep(fb, a_col, i * sa_i, f32), f32, 4)
            a_vec = fb.splat(a, lanes)
            for v in range(nv):
                call = llvm_ops.call_intrinsic(fma, [a_vec, b_vecs[v], accs[i * nv + v]], [vty])
                new.append(fb.insert(call).results[0])
        return new

    accs = fb.loop(0, kc, 1, k_step, accs)  # the tile lives in the loop's block arguments
    for acc, ptr in zip(accs, (p for row in c_ptrs for p in row), strict=True):
        fb.insert(llvm.StoreOp(acc, ptr, alignment=4))


def _register() -> None:
    OP_LOWERINGS[VpdpbusdOp] = lower_broadcast_dot
    OP_LOWERINGS[Vdpbf16psOp] = lower_broadcast_dot
    OP_LOWERINGS[VpmaddwdOp] = lower_vpmaddwd
    OP_LOWERINGS[FmaTileOp] = lower_fma_tile


_register()
