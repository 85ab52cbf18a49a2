"""The builder every part of `convert-tl-to-llvm` emits through: one `llvm.func` under
construction, its insertion point, and the index arithmetic, addressing and memory
helpers the parts share.

`convert-tl-to-llvm` is layered one way: this module at the bottom (with
`arith_to_llvm` below it); `tl_vector_to_llvm` (unroll / vectorize loops),
`tl_parallel_to_llvm` (OpenMP loops), `tl_check_to_llvm` (`tl.check`, status returns) and
`hw_x86_to_llvm` (hw ops, through `OP_LOWERINGS`) on top of it, each knowing only this
module; `tl_to_llvm` composes them into the function lowering.

    fb = FunctionBuilder(region, entry, externals)  # entry: (%buf, %out: !llvm.ptr, %i: i64)
    ptr = fb.element_ptr(buf, MemRefType(f32, [4, 8]), [i, 3])  # &buf[i, 3]
    fb.store(fb.load(ptr, f32), out, f32)

emits (every index constant once, at the top of the function's entry block)

    %c3 = llvm.mlir.constant(3) : i64
    %c8 = llvm.mlir.constant(8) : i64
    %0 = llvm.mul %i, %c8 : i64
    %1 = llvm.add %0, %c3 : i64
    %2 = llvm.getelementptr inbounds %buf[%1] : (!llvm.ptr, i64) -> !llvm.ptr, f32
    %3 = llvm.load %2 : !llvm.ptr -> f32
    llvm.store %3, %out : f32, !llvm.ptr

Indices are `Index` values: a Python int where the index is known statically (arithmetic
on ints folds in Python, `x * 1` and `x + 0` emit nothing) or an i64 SSA value.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from functools import cache
from typing import Protocol, TypeVar, cast

from xdsl.builder import Builder, InsertPoint
from xdsl.dialects import llvm
from xdsl.dialects.builtin import (
    AnyFloat,
    FloatAttr,
    IntegerAttr,
    IntegerType,
    MemRefType,
    NoneAttr,
    StridedLayoutAttr,
    i1,
    i8,
    i64,
)
from xdsl.ir import Attribute, Block, Operation, Region, SSAValue
from xdsl.ir.affine import (
    AffineBinaryOpExpr,
    AffineBinaryOpKind,
    AffineConstantExpr,
    AffineDimExpr,
    AffineExpr,
)

from mlc.dialects.tl import BlockOp, row_major_strides
from mlc.lowering import llvm_ops
from mlc.lowering.arith_to_llvm import (
    LlvmLoweringError,
    constant,
    constant_key,
    lanes_of,
    llvm_scalar_type,
)

__all__ = [
    "OP_LOWERINGS",
    "PTR",
    "FunctionBuilder",
    "Index",
    "NestedLowering",
    "OpLowering",
    "byte_size",
    "element_bytes",
    "row_major_strides",
    "static_memref",
    "storage_type",
]

PTR = llvm.LLVMPointerType()

Index = int | SSAValue
"""An index: statically known (a Python int) or an i64 SSA value."""

_ICMP_PREDICATES = ["eq", "ne", "slt", "sle", "sgt", "sge", "ult", "ule", "ugt", "uge"]

_OpT = TypeVar("_OpT", bound=Operation)


@cache
def _icmp_predicate(pred: str) -> IntegerAttr:
    return IntegerAttr(_ICMP_PREDICATES.index(pred), i64)


# ---- types and memrefs


def storage_type(element: Attribute) -> Attribute:
    """The LLVM type an element has in memory: `llvm_scalar_type`, except that `i1` is
    stored as a byte (`i8`, 0 or 1)."""
    ty = llvm_scalar_type(element)
    return i8 if ty == i1 else ty


def element_bytes(ty: Attribute) -> int:
    """Bytes of one scalar of LLVM type `ty` in memory (i1: one byte)."""
    if isinstance(ty, IntegerType):
        return max(ty.width.data // 8, 1)
    return cast(AnyFloat, ty).bitwidth // 8


def byte_size(ty: MemRefType) -> int:
    """Bytes of a statically shaped memref's elements in memory (dense, row-major)."""
    n = 1
    for d in ty.get_shape():
        n *= d
    st = storage_type(ty.element_type)
    width = st.width.data if isinstance(st, IntegerType) else cast(AnyFloat, st).bitwidth
    return n * (width // 8)


def static_memref(ty: Attribute, what: str) -> MemRefType:
    """`ty` as a statically shaped, row-major memref type; else a `LlvmLoweringError`
    naming `what` (an argument, an op) and why."""
    if not isinstance(ty, MemRefType):
        raise LlvmLoweringError(f"{what}: only memref arguments and results are supported")
    ty = cast(MemRefType, ty)
    if any(d < 0 for d in ty.get_shape()):
        raise LlvmLoweringError(f"{what}: {ty} must have a static shape")
    layout = ty.layout
    if not isinstance(layout, NoneAttr):
        if not (isinstance(layout, StridedLayoutAttr) and _is_row_major(ty, layout)):
            raise LlvmLoweringError(f"{what}: {ty} must have the row-major identity layout")
    return ty


def _is_row_major(ty: MemRefType, layout: StridedLayoutAttr) -> bool:
    strides = list(layout.get_strides())
    return strides == row_major_strides(ty.get_shape()) and layout.get_offset() in (0, None)


# ---- the builder


class FunctionBuilder:
    """The emission state of one `llvm.func` body: its `region`, the block being appended
    to (`block`: assign it to move the insertion point), `values` (what each value of the
    input IR was lowered to: an SSA value, or an int for a static index) and
    `externals` (the C functions called, shared by a module's functions, declared once
    per module by the caller).

    Ops are appended at the end of `block` (`insert`, or `b` for the builders of
    `arith_to_llvm`); the helpers below build index arithmetic, addresses, loads and
    stores, calls, loops and splats there."""

    def __init__(self, region: Region, block: Block, externals: set[str]) -> None:
        self.region = region
        self.block = block
        self.externals = externals
        self.values: dict[SSAValue, Index] = {}
        # the current function's entry block and constants (i64 ones by value, others by
        # value and type): see `v`, `shared_constant`
        self._entry = region.blocks[0]
        self._i64: dict[int, SSAValue] = {}
        self._constants: dict[object, SSAValue] = {}
        # (block, op, operands) -> the index `add` / `mul` already in that block: see `_arith`
        self._index_ops: dict[tuple[Block, str, SSAValue, SSAValue], SSAValue] = {}
        # id(buffer type) -> (the type, its row-major strides): see `flat_offset`
        self._strides: dict[int, tuple[MemRefType, list[int]]] = {}

    @property
    def b(self) -> Builder:
        """An xDSL builder at the insertion point (the end of `block`)."""
        return Builder(InsertPoint.at_end(self.block))

    def insert(self, op: _OpT) -> _OpT:
        """Append `op` at the insertion point and return it."""
        self.block.add_op(op)
        return op

    def new_block(self, arg_types: Sequence[Attribute] = ()) -> Block:
        """A new block at the end of `region` (the insertion point stays where it is)."""
        block = Block(arg_types=arg_types)
        self.region.add_block(block)
        return block

    @contextmanager
    def new_function(self, arg_types: Sequence[Attribute]) -> Iterator[Region]:
        """Emit into a new region, another function's body, whose entry block takes
        `arg_types`; `values` starts as a copy of the outer one. On exit the region, the
        insertion point and the outer `values` are restored (what was mapped inside is
        forgotten)."""
        saved = (self.region, self.block, self.values, self._entry, self._i64, self._constants)
        self.region = Region()
        self.block = self._entry = Block(arg_types=arg_types)
        self.region.add_block(self.block)
        self.values = dict(self.values)
        self._i64, self._constants = {}, {}
        try:
            yield self.region
        finally:
            self.region, self.block, self.values, self._entry, self._i64, self._constants = saved

    # ---- index arithmetic (Python ints fold)

    def v(self, x: Index) -> SSAValue:
        """An index as an SSA value: a Python int is an i64 constant, built once per value
        per function at the top of its entry block (constants emit no LLVM instruction:
        sharing them only saves building thousands of ops)."""
        if not isinstance(x, int):
            return x
        found = self._i64.get(x)
        if found is None:
            found = self._i64[x] = constant(Builder(InsertPoint.at_start(self._entry)), x, i64)
        return found

    def shared_constant(self, value: int | float, ty: Attribute) -> SSAValue:
        """The `constant` `value` of type `ty`, built once per function at the top of its
        entry block (keyed by `constant_key`, as `constant`'s attributes are)."""
        if ty == i64 and isinstance(value, int):
            return self.v(value)
        key = (constant_key(value), ty)
        found = self._constants.get(key)
        if found is None:
            entry = Builder(InsertPoint.at_start(self._entry))
            found = self._constants[key] = constant(entry, value, ty)
        return found

    def add(self, x: Index, y: Index) -> Index:
        """`x + y` (`llvm.add` unless an int folds it)."""
        if isinstance(x, int) and isinstance(y, int):
            return x + y
        if x == 0:
            return y
        if y == 0:
            return x
        return self._arith(llvm.AddOp, self.v(x), self.v(y))

    def mul(self, x: Index, y: Index) -> Index:
        """`x * y` (`llvm.mul` unless an int folds it)."""
        if isinstance(x, int) and isinstance(y, int):
            return x * y
        if x == 0 or y == 0:
            return 0
        if x == 1:
            return y
        if y == 1:
            return x
        return self._arith(llvm.MulOp, self.v(x), self.v(y))

    def _arith(self, op: type[llvm.AddOp | llvm.MulOp], x: SSAValue, y: SSAValue) -> SSAValue:
        """`x op y` appended to the current block, or the same operation already there
        (index arithmetic repeats: an unrolled tile's addresses share most terms). An op
        earlier in the same block dominates the insertion point, which is the block's end."""
        a, b = (x, y) if id(x) <= id(y) else (y, x)  # both commute; the op keeps x, y
        key = (self.block, op.name, a, b)
        found = self._index_ops.get(key)
        if found is None or found.owner.parent is not self.block:  # type: ignore[union-attr]
            found = self.insert(llvm_ops.overflow_op(op, x, y)).results[0]
            self._index_ops[key] = found
        return found

    def icmp(self, pred: str, x: Index, y: Index) -> SSAValue:
        """`llvm.icmp pred x, y` (`pred`: "eq", "slt", "ult", ...); scalars or vectors."""
        cmp = llvm_ops.icmp(self.v(x), self.v(y), _icmp_predicate(pred))
        return self.insert(cmp).results[0]

    def and_(self, x: SSAValue | None, y: SSAValue) -> SSAValue:
        """`x and y`, or `y` where there is no `x` yet (conjunctions built in a loop)."""
        return y if x is None else self.insert(llvm.AndOp(x, y)).results[0]

    def affine(self, e: AffineExpr, dims: Sequence[Index]) -> Index:
        """`e` over `dims` (floordiv / mod / ceildiv by positive constants)."""
        if isinstance(e, AffineDimExpr):
            return dims[e.position]
        if isinstance(e, AffineConstantExpr):
            return e.value
        if not isinstance(e, AffineBinaryOpExpr):
            raise LlvmLoweringError(f"affine expression {e} is not supported")
        lhs, rhs = self.affine(e.lhs, dims), self.affine(e.rhs, dims)
        if e.kind == AffineBinaryOpKind.Add:
            return self.add(lhs, rhs)
        if e.kind == AffineBinaryOpKind.Mul:
            return self.mul(lhs, rhs)
        if not isinstance(rhs, int) or rhs <= 0:
            raise LlvmLoweringError(f"affine {e.kind.name} needs a positive constant, in {e}")
        if isinstance(lhs, int):
            q, r = divmod(lhs, rhs)
            if e.kind == AffineBinaryOpKind.Mod:
                return r
            return q if e.kind == AffineBinaryOpKind.FloorDiv else -(-lhs // rhs)
        if e.kind == AffineBinaryOpKind.CeilDiv:  # ceil(a / c) = -floor(-a / c)
            neg = self.insert(llvm.SubOp(self.v(0), lhs)).results[0]
            fl = self.v(self.floor_divmod(neg, rhs)[0])
            return self.insert(llvm.SubOp(self.v(0), fl)).results[0]
        quotient, remainder = self.floor_divmod(lhs, rhs)
        return remainder if e.kind == AffineBinaryOpKind.Mod else quotient

    def floor_divmod(self, x: SSAValue, c: int) -> tuple[Index, Index]:
        """`(x floordiv c, x mod c)` for a positive constant `c` (rounding to -inf)."""
        if c == 1:
            return x, 0
        cv = self.v(c)
        q = self.insert(llvm.SDivOp(x, cv)).results[0]
        r = self.insert(llvm.SRemOp(x, cv)).results[0]
        neg = self.icmp("slt", r, 0)
        borrow = self.insert(llvm.ZExtOp(neg, i64)).results[0]
        q = self.insert(llvm.SubOp(q, borrow)).results[0]
        r_adj = self.insert(llvm.AddOp(r, cv)).results[0]
        r = self.insert(llvm.SelectOp(neg, r_adj, r)).results[0]
        return q, r

    def in_bounds(self, idx: Sequence[Index], shape: Sequence[int]) -> SSAValue:
        """0 <= idx[d] < shape[d] for every d (one unsigned compare each)."""
        conds = []
        for i, s in zip(idx, shape):
            if isinstance(i, int):
                if not 0 <= i < s:
                    return constant(self.b, 0, i1)
                continue
            conds.append(self.icmp("ult", i, s))
        if not conds:
            return constant(self.b, 1, i1)
        cond = conds[0]
        for c in conds[1:]:
            cond = self.insert(llvm.AndOp(cond, c)).results[0]
        return cond

    def clamp(self, idx: Sequence[Index], valid: SSAValue) -> list[Index]:
        """Indices where valid, else 0 (a read that is always inside the buffer)."""
        out: list[Index] = []
        for i in idx:
            if isinstance(i, int):
                out.append(i if i >= 0 else 0)
            else:
                out.append(self.insert(llvm.SelectOp(valid, i, self.v(0))).results[0])
        return out

    def all_zero(self, values: Sequence[Index]) -> SSAValue:
        """Every one of `values` is 0 (true where there are none)."""
        cond: SSAValue | None = None
        for x in values:
            cond = self.and_(cond, self.icmp("eq", x, 0))
        return cond if cond is not None else constant(self.b, 1, i1)

    # ---- memory

    def flat_offset(self, ty: MemRefType, idx: Sequence[Index]) -> Index:
        """The element offset of `idx` in a row-major buffer of type `ty`."""
        known = self._strides.get(id(ty))
        if known is None:
            known = self._strides[id(ty)] = (ty, row_major_strides(ty.get_shape()))
        offset: Index = 0
        for i, s in zip(idx, known[1]):
            offset = self.add(offset, self.mul(i, s))
        return offset

    def gep(
        self, ptr: SSAValue, offset: Index, element: Attribute, inbounds: bool = True
    ) -> SSAValue:
        """`ptr` advanced by `offset` elements of LLVM type `element`
        (`llvm.getelementptr`)."""
        return self.insert(llvm_ops.gep(ptr, self.v(offset), element, inbounds)).result

    def element_ptr(
        self, buf: Index, ty: MemRefType, idx: Sequence[Index], inbounds: bool = True
    ) -> SSAValue:
        """The address of `buf[idx]`, `buf` a buffer of memref type `ty`."""
        assert not isinstance(buf, int)
        return self.gep(buf, self.flat_offset(ty, idx), storage_type(ty.element_type), inbounds)

    def load(self, ptr: SSAValue, element: Attribute) -> SSAValue:
        """The scalar of builtin type `element` at `ptr` (an `i1` is a byte in memory)."""
        st = storage_type(element)
        value = self.insert(llvm_ops.load(ptr, st)).dereferenced_value
        if st != llvm_scalar_type(element):
            value = self.insert(llvm.TruncOp(value, i1)).results[0]
        return value

    def store(self, value: SSAValue, ptr: SSAValue, element: Attribute) -> None:
        """Store scalar `value` of builtin type `element` at `ptr`."""
        st = storage_type(element)
        if st != llvm_scalar_type(element):
            value = self.insert(llvm.ZExtOp(value, st)).results[0]
        self.insert(llvm_ops.store(value, ptr))

    # ---- calls, loops, vectors

    def call(self, callee: str, args: Sequence[SSAValue], ret: Attribute | None) -> SSAValue | None:
        """A call of C function `callee` (recorded in `externals`); its result, if any."""
        self.externals.add(callee)
        op = self.insert(llvm.CallOp(callee, *args, return_type=ret))
        return op.results[0] if op.results else None

    def loop(
        self,
        lb: Index,
        ub: Index,
        step: Index,
        emit: Callable[[SSAValue, list[SSAValue]], Sequence[SSAValue]],
        inits: Sequence[SSAValue] = (),
    ) -> list[SSAValue]:
        """`for (iv = lb; iv < ub; iv += step) carried = emit(iv, carried)` from
        `carried = inits`; returns the carried values after the loop:

            llvm.br ^header(%lb, inits...)
          ^header(%iv: i64, carried...):
            %c = llvm.icmp "slt" %iv, %ub : i64
            llvm.cond_br %c, ^body, ^exit
          ^body:
            ... emit(%iv, carried) ...
            %next = llvm.add %iv, %step : i64
            llvm.br ^header(%next, emitted...)
          ^exit:                                   // the new insertion point
        """
        header = self.new_block([i64, *(v.type for v in inits)])
        body = self.new_block()
        exit_block = self.new_block()
        self.insert(llvm_ops.br(header, self.v(lb), *inits))
        self.block = header
        iv = header.args[0]
        self.insert(llvm_ops.cond_br(self.icmp("slt", iv, ub), body, [], exit_block, []))
        self.block = body
        carried = emit(iv, list(header.args[1:]))
        nxt = self.insert(llvm.AddOp(iv, self.v(step))).results[0]
        self.insert(llvm_ops.br(header, nxt, *carried))
        self.block = exit_block
        return list(header.args[1:])

    def serial_loop(self, lb: Index, ub: Index, step: int, emit: Callable[[Index], None]) -> None:
        """for (iv = lb; iv < ub; iv += step) emit(iv) -- straight-line if it runs once."""
        if isinstance(lb, int) and isinstance(ub, int):
            if lb >= ub:
                return
            if lb + step >= ub:
                emit(lb)
                return

        def iteration(iv: SSAValue, carried: list[SSAValue]) -> list[SSAValue]:
            emit(iv)
            return []

        self.loop(lb, ub, step, iteration)

    def splat_constant(self, value: int | float, element: Attribute, width: int) -> SSAValue:
        """The constant `value` (of the builtin scalar type `element`) in every lane of a
        `width`-lane vector, built once per function."""
        return self.shared_constant(value, llvm_ops.vector_type(element, width))

    def splat(self, value: SSAValue, width: int) -> SSAValue:
        """`value` in every lane of a `width`-lane vector (a vector stays as it is; a
        scalar constant gives a vector constant, built once per function)."""
        if lanes_of(value) > 1:
            return value
        vty = llvm_ops.vector_type(value.type, width)
        owner = value.owner
        if isinstance(owner, llvm.ConstantOp) and isinstance(owner.value, IntegerAttr | FloatAttr):
            return self.shared_constant(owner.value.value.data, vty)
        undef = self.insert(llvm_ops.undef(vty)).res
        first = self.insert(llvm_ops.insert_element(undef, value, self.v(0))).res
        return self.insert(llvm_ops.shuffle(first, first, [0] * width, vty)).res


class NestedLowering(Protocol):
    """What loop code generation needs from the function lowering that composes it: to
    lower the ops nested in a loop, and one `tl.block` as scalar code, at the builder's
    insertion point."""

    def lower_ops(self, block: Block) -> None:
        """Lower `block`'s ops (its terminating `tl.yield` / `scf.yield` excepted)."""
        ...

    def lower_block(self, op: BlockOp) -> None:
        """Lower `op` once, at the point its loop variables' `values` give."""
        ...


OpLowering = Callable[[FunctionBuilder, Operation], None]
"""Lowers one op found in a function body at the builder's insertion point, recording
its results in `values`."""

#: lowerings of ops from other dialects (hw.x86, ...) by op class; a hardware dialect's
#: lowering module adds its own when imported (`tl_to_llvm.HW_LOWERING_MODULES` lists
#: mlc's)
OP_LOWERINGS: dict[type[Operation], OpLowering] = {}
