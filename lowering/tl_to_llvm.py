"""`convert-tl-to-llvm`: functions at the explicit-loop `tl` level -> xDSL's `llvm` dialect.

Input: `func.func`s over statically shaped, row-major `memref`s whose bodies hold `tl.for`
nests around `tl.block`s, `scf.for` (with iter_args), `memref.alloc / dealloc / load /
store / get_global`, scalar `arith` / `math` and `func.return`; `memref.global`
constants. Output: `llvm.func` / `llvm.mlir.global` only (printable and re-parseable).

The ABI (bare pointers, static shapes):

    func.func @f(%a: memref<4x8xf32>, %b: memref<8xi32>) -> memref<4xf32>
 -> llvm.func @f(%a: !llvm.ptr {llvm.noalias, llvm.align = 64},
                 %b: !llvm.ptr {llvm.noalias, llvm.align = 64},
                 %r0: !llvm.ptr {llvm.noalias, llvm.align = 64})     // returns void

- one pointer per memref argument, then one per memref result: results are written into
  caller-provided buffers; the caller guarantees 64-byte alignment and that no two
  pointers overlap (`CompiledModel` does both), so `noalias` and `align 64` hold.
- elements are stored densely in row-major order; `i1` is stored as one byte (0 / 1).
- a returned `memref.alloc` is built in place in its result buffer; any other returned
  memref is copied there (`llvm.memcpy`) before returning.
- other `memref.alloc`s (top level of the function only) are `aligned_alloc(64, n)`-ed
  and freed before returning (`memref.dealloc` is ignored).

Loops become header / body / exit blocks with the induction variable (and scf iter_args)
as block arguments; `vectorize` and `unroll` loops are emitted as vector code and
repeated bodies (`tl_vector_to_llvm`), `parallel` loops as OpenMP regions
(`tl_parallel_to_llvm`). A `func.call` of an outlined kernel (`tl-outline-kernels`) is
an `llvm.call` with the buffers' pointers. A `tl.block` becomes straight-line code:
iterator values from its bindings, the predicate as a conditional branch, one load per
operand (a padded input loads from a clamped address and selects the pad value where the
index is outside the buffer: no branch, no out-of-bounds access), the init value where
every reduction iterator is 0, the body, and one store per output.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import cast

from xdsl.builder import Builder, InsertPoint
from xdsl.context import Context
from xdsl.dialects import func, llvm, memref, scf
from xdsl.dialects.builtin import (
    AnyFloat,
    ArrayAttr,
    DenseIntOrFPElementsAttr,
    DictionaryAttr,
    IntegerAttr,
    IntegerType,
    MemRefType,
    ModuleOp,
    NoneAttr,
    StridedLayoutAttr,
    StringAttr,
    UnitAttr,
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
from xdsl.passes import ModulePass

from mlc.dialects.tl import BlockOp, CheckOp, ForOp, IndexOp, YieldOp
from mlc.lowering.arith_to_llvm import (
    LlvmLoweringError,
    constant,
    llvm_scalar_type,
    lower_scalar_op,
)
from mlc.lowering.tl_check_to_llvm import CheckCodegen, CheckTable, check_globals
from mlc.lowering.tl_parallel_to_llvm import (
    PARALLEL_EXTERNALS,
    ParallelCodegen,
    num_threads_global,
)
from mlc.lowering.tl_vector_to_llvm import LoopKindCodegen, always_in_bounds
from mlc.lowering.workspace import plan_workspace

__all__ = [
    "ALIGNMENT",
    "INTERMEDIATE_BYTES",
    "WORKSPACE_BYTES",
    "ConvertTlToLlvmPass",
    "LlvmLoweringError",
    "HW_LOWERING_MODULES",
    "OP_LOWERINGS",
    "lower_function",
    "load_hw_lowerings",
    "lower_global",
    "lower_module",
]

OpLowering = Callable[["_FunctionLowering", Operation], None]
#: lowerings of ops from other dialects (hw.x86, ...) found in function bodies: each gets
#: the function lowering (`values`, `b`, `element_ptr`, `load`, `store`, `call`, ...) and
#: the op, and records its results in `values`
OP_LOWERINGS: dict[type[Operation], OpLowering] = {}

#: the modules adding mlc's own hardware ops to `OP_LOWERINGS` (imported by
#: `lower_module` before it lowers anything; another dialect's lowering adds itself to
#: this tuple or registers directly)
HW_LOWERING_MODULES: tuple[str, ...] = ("mlc.lowering.hw_x86_to_llvm",)


def load_hw_lowerings() -> None:
    """Import every module of `HW_LOWERING_MODULES` (each registers its ops' lowerings)."""
    for name in HW_LOWERING_MODULES:
        importlib.import_module(name)


ALIGNMENT = 64
"""Alignment (bytes) of every buffer: arguments, results, allocations, globals."""

#: attributes of a lowered function with a workspace: its bytes (liveness-planned) and what
#: its intermediates would take as separate allocations
WORKSPACE_BYTES = "mlc.workspace_bytes"
INTERMEDIATE_BYTES = "mlc.intermediate_bytes"

PTR = llvm.LLVMPointerType()

Index = int | SSAValue  # a statically known index or an i64 value


def storage_type(element: Attribute) -> Attribute:
    """The type an element has in memory (`i1` is a byte)."""
    ty = llvm_scalar_type(element)
    return i8 if ty == i1 else ty


def _byte_size(ty: MemRefType) -> int:
    n = 1
    for d in ty.get_shape():
        n *= d
    st = storage_type(ty.element_type)
    width = st.width.data if isinstance(st, IntegerType) else cast(AnyFloat, st).bitwidth
    return n * (width // 8)


def _static_memref(ty: Attribute, what: str) -> MemRefType:
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
    return list(layout.get_strides()) == _strides(ty.get_shape()) and layout.get_offset() in (
        0,
        None,
    )


def _strides(shape: Sequence[int]) -> list[int]:
    strides, acc = [], 1
    for d in reversed(shape):
        strides.append(acc)
        acc *= d
    return strides[::-1]


def _arg_attrs() -> DictionaryAttr:
    return DictionaryAttr({"llvm.noalias": UnitAttr(), "llvm.align": IntegerAttr(ALIGNMENT, i64)})


class _FunctionLowering(LoopKindCodegen, ParallelCodegen, CheckCodegen):
    """Builds one `llvm.func` from one `func.func` (single-block body)."""

    def __init__(
        self,
        f: func.FuncOp,
        externals: set[str],
        threads: bool = False,
        checks: CheckTable | None = None,
        status_functions: frozenset[str] = frozenset(),
    ) -> None:
        self.f = f
        self.externals = externals
        self.checks = checks if checks is not None else CheckTable()  # failure messages
        #: the functions that return a status (i64: 0, or a failure's number): entries
        self.status_functions = status_functions
        self.returns_status = f.sym_name.data in status_functions
        self.threads = threads
        self.outlined: list[llvm.FuncOp] = []  # parallel loop bodies
        self.versioned: set[BlockOp] = set()  # predicated blocks split by versioned_loop
        self.assume_predicates: set[BlockOp] = set()  # ... in the copy where they hold
        self.uses_threads = False
        self.values: dict[SSAValue, Index] = {}
        # id(entry block) -> (the block, its i64 constants by value): see `v`
        self.index_constants: dict[int, tuple[Block, dict[int, SSAValue]]] = {}
        self.region = Region()
        body = f.body.blocks
        if len(body) != 1:
            raise LlvmLoweringError(f"@{f.sym_name.data}: expected a single-block body")
        ret = body[0].last_op
        if not isinstance(ret, func.ReturnOp):
            raise LlvmLoweringError(f"@{f.sym_name.data}: the body must end with func.return")
        self.arg_types = [
            _static_memref(t, f"@{f.sym_name.data} argument #{i}")
            for i, t in enumerate(f.function_type.inputs.data)
        ]
        self.result_types = [
            _static_memref(t, f"@{f.sym_name.data} result #{i}")
            for i, t in enumerate(f.function_type.outputs.data)
        ]
        n_args = len(self.arg_types)
        self.block = Block(arg_types=[PTR] * (n_args + len(self.result_types)))
        self.region.add_block(self.block)
        for arg, new in zip(body[0].args, self.block.args):
            self.values[arg] = new
        self.result_ptrs = list(self.block.args[n_args:])
        # returned allocs are built in place in the caller's buffer
        self.in_place: dict[SSAValue, SSAValue] = {}
        for v, ptr in zip(ret.arguments, self.result_ptrs):
            if (
                isinstance(v.owner, memref.AllocOp)
                and v.owner.parent_block() is body[0]
                and v not in self.in_place
            ):
                self.in_place[v] = ptr
        self.heap: list[SSAValue] = []
        self.workspace = plan_workspace(f)
        self.workspace_ptr: SSAValue | None = None

    # ---- helpers

    @property
    def b(self) -> Builder:
        return Builder(InsertPoint.at_end(self.block))

    def new_block(self, arg_types: Sequence[Attribute] = ()) -> Block:
        block = Block(arg_types=arg_types)
        self.region.add_block(block)
        return block

    def v(self, x: Index) -> SSAValue:
        """An index as an SSA value: a Python int is an i64 constant, built once per value
        per function at the top of its entry block (constants emit no LLVM instruction:
        sharing them only saves building thousands of ops)."""
        if not isinstance(x, int):
            return x
        entry = self.region.blocks[0]
        _, constants = self.index_constants.setdefault(id(entry), (entry, {}))
        if x not in constants:
            constants[x] = constant(Builder(InsertPoint.at_start(entry)), x, i64)
        return constants[x]

    def call(self, callee: str, args: Sequence[SSAValue], ret: Attribute | None) -> SSAValue | None:
        self.externals.add(callee)
        op = self.b.insert(llvm.CallOp(callee, *args, return_type=ret))
        return op.results[0] if op.results else None

    def element_ptr(
        self, buf: Index, ty: MemRefType, idx: Sequence[Index], inbounds: bool = True
    ) -> SSAValue:
        assert not isinstance(buf, int)
        offset: Index = 0
        for i, s in zip(idx, _strides(ty.get_shape())):
            offset = self.add(offset, self.mul(i, s))
        gep = llvm.GEPOp(
            buf,
            [llvm.GEP_USE_SSA_VAL],
            storage_type(ty.element_type),
            ssa_indices=[self.v(offset)],
            inbounds=inbounds,
        )
        return self.b.insert(gep).result

    def load(self, ptr: SSAValue, element: Attribute) -> SSAValue:
        st = storage_type(element)
        value = self.b.insert(llvm.LoadOp(ptr, st)).dereferenced_value
        if st != llvm_scalar_type(element):
            value = self.b.insert(llvm.TruncOp(value, i1)).results[0]
        return value

    def store(self, value: SSAValue, ptr: SSAValue, element: Attribute) -> None:
        st = storage_type(element)
        if st != llvm_scalar_type(element):
            value = self.b.insert(llvm.ZExtOp(value, st)).results[0]
        self.b.insert(llvm.StoreOp(value, ptr))

    # index arithmetic folding Python ints
    def add(self, x: Index, y: Index) -> Index:
        if isinstance(x, int) and isinstance(y, int):
            return x + y
        if x == 0:
            return y
        if y == 0:
            return x
        return self.b.insert(llvm.AddOp(self.v(x), self.v(y))).results[0]

    def mul(self, x: Index, y: Index) -> Index:
        if isinstance(x, int) and isinstance(y, int):
            return x * y
        if x == 0 or y == 0:
            return 0
        if x == 1:
            return y
        if y == 1:
            return x
        return self.b.insert(llvm.MulOp(self.v(x), self.v(y))).results[0]

    def icmp(self, pred: str, x: Index, y: Index) -> SSAValue:
        preds = ["eq", "ne", "slt", "sle", "sgt", "sge", "ult", "ule", "ugt", "uge"]
        cmp = llvm.ICmpOp(self.v(x), self.v(y), IntegerAttr(preds.index(pred), i64))
        return self.b.insert(cmp).results[0]

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
            neg = self.b.insert(llvm.SubOp(self.v(0), lhs)).results[0]
            fl = self.v(self.floor_divmod(neg, rhs)[0])
            return self.b.insert(llvm.SubOp(self.v(0), fl)).results[0]
        q, r = self.floor_divmod(lhs, rhs)
        return r if e.kind == AffineBinaryOpKind.Mod else q

    def floor_divmod(self, x: SSAValue, c: int) -> tuple[Index, Index]:
        if c == 1:
            return x, 0
        cv = self.v(c)
        q = self.b.insert(llvm.SDivOp(x, cv)).results[0]
        r = self.b.insert(llvm.SRemOp(x, cv)).results[0]
        neg = self.icmp("slt", r, 0)
        borrow = self.b.insert(llvm.ZExtOp(neg, i64)).results[0]
        q = self.b.insert(llvm.SubOp(q, borrow)).results[0]
        r_adj = self.b.insert(llvm.AddOp(r, cv)).results[0]
        r = self.b.insert(llvm.SelectOp(neg, r_adj, r)).results[0]
        return q, r

    # ---- ops

    def lower_ops(self, block: Block) -> None:
        for op in block.ops:
            if isinstance(op, YieldOp | scf.YieldOp) and op is block.last_op:
                continue
            self.lower_op(op)

    def lower_op(self, op: Operation) -> None:
        if isinstance(op, ForOp):
            self.tl_for(op)
        elif isinstance(op, scf.ForOp):
            outs = self.loop(
                self.v(self.values[op.lb]),
                self.v(self.values[op.ub]),
                self.v(self.values[op.step]),
                op.body.block,
                [self.v(self.values[v]) for v in op.iter_args],
            )
            for r, new in zip(op.results, outs):
                self.values[r] = new
        elif isinstance(op, BlockOp):
            self.tl_block(op)
        elif isinstance(op, memref.LoadOp | memref.StoreOp):
            ty = _static_memref(op.memref.type, op.name)
            ptr = self.element_ptr(self.values[op.memref], ty, [self.values[i] for i in op.indices])
            if isinstance(op, memref.LoadOp):
                self.values[op.res] = self.load(ptr, ty.element_type)
            else:
                self.store(self.v(self.values[op.value]), ptr, ty.element_type)
        elif isinstance(op, CheckOp):
            self.check(op)
        elif isinstance(op, memref.AllocOp):
            self.alloc(op)
        elif isinstance(op, memref.DeallocOp):
            pass  # allocations are freed before returning
        elif isinstance(op, memref.GetGlobalOp):
            ref = op.name_.root_reference.data
            self.values[op.memref] = self.b.insert(llvm.AddressOfOp(ref, PTR)).result
        elif isinstance(op, func.ReturnOp):
            self.ret(op)
        elif isinstance(op, func.CallOp):  # an outlined kernel: buffers in, nothing out
            if op.results:
                raise LlvmLoweringError(f"func.call @{op.callee.string_value()}: results")
            args = [self.v(self.values[a]) for a in op.arguments]
            callee = op.callee.string_value()
            status = callee in self.status_functions  # another entry: pass its failure on
            call = self.b.insert(llvm.CallOp(callee, *args, return_type=i64 if status else None))
            # what the call runs (`outline.SITE_ATTRIBUTES`), for profiles
            call.attributes.update({k: v for k, v in op.attributes.items() if k.startswith("mlc.")})
            if status and self.returns_status:
                failed = self.icmp("ne", call.results[0], 0)
                ok = self.b.insert(llvm.XOrOp(failed, constant(self.b, 1, i1))).results[0]
                self.return_status_unless(ok, call.results[0])
        elif type(op) in OP_LOWERINGS:  # hardware dialects register theirs
            OP_LOWERINGS[type(op)](self, op)
        else:
            args = [self.v(self.values[v]) for v in op.operands]
            self.values[op.results[0]] = lower_scalar_op(self.b, op, args)

    def alloc(self, op: memref.AllocOp) -> None:
        if op.parent_block() is not self.f.body.block:
            raise LlvmLoweringError("memref.alloc is only supported at a function's top level")
        ty = _static_memref(op.memref.type, "memref.alloc")
        if op.memref in self.in_place:
            self.values[op.memref] = self.in_place[op.memref]
            return
        offset = self.workspace.offsets.get(op.memref)
        if offset is not None:
            if self.workspace_ptr is None:  # one allocation for all planned buffers
                size = max(self.workspace.peak_bytes, ALIGNMENT)
                self.workspace_ptr = self.call(
                    "aligned_alloc", [self.v(ALIGNMENT), self.v(size)], PTR
                )
                assert self.workspace_ptr is not None
                self.check_allocation(self.workspace_ptr, size)
                self.heap.append(self.workspace_ptr)
            gep = llvm.GEPOp(
                self.workspace_ptr,
                [llvm.GEP_USE_SSA_VAL],
                i8,
                ssa_indices=[self.v(offset)],
                inbounds=True,
            )
            self.values[op.memref] = self.b.insert(gep).result
            return
        size = -(-max(_byte_size(ty), 1) // ALIGNMENT) * ALIGNMENT
        ptr = self.call("aligned_alloc", [self.v(ALIGNMENT), self.v(size)], PTR)
        assert ptr is not None
        self.check_allocation(ptr, size)
        self.values[op.memref] = ptr
        self.heap.append(ptr)

    def ret(self, op: func.ReturnOp) -> None:
        for v, ptr, ty in zip(op.arguments, self.result_ptrs, self.result_types):
            if self.in_place.get(v) is ptr:
                continue
            args = [ptr, self.v(self.values[v]), self.v(_byte_size(ty)), constant(self.b, 0, i1)]
            self.b.insert(llvm.CallIntrinsicOp("llvm.memcpy.p0.p0.i64", args, []))
        for ptr in self.heap:
            self.call("free", [ptr], None)
        self.b.insert(llvm.ReturnOp(self.v(0)) if self.returns_status else llvm.ReturnOp())

    def loop(
        self,
        lb: SSAValue,
        ub: SSAValue,
        step: SSAValue,
        body: Block,
        inits: Sequence[SSAValue],
    ) -> list[SSAValue]:
        """for (iv = lb; iv < ub; iv += step) body; returns the final iter_args."""
        header = self.new_block([i64, *(v.type for v in inits)])
        inner = self.new_block()
        exit_block = self.new_block()
        self.b.insert(llvm.BrOp(header, lb, *inits))
        self.block = header
        cond = self.icmp("slt", header.args[0], ub)
        self.b.insert(llvm.CondBrOp(cond, inner, [], exit_block, []))
        self.block = inner
        for arg, new in zip(body.args, header.args):
            self.values[arg] = new
        self.lower_ops(body)
        last = body.last_op
        carried = (
            [self.v(self.values[v]) for v in last.operands] if isinstance(last, scf.YieldOp) else []
        )
        nxt = self.b.insert(llvm.AddOp(header.args[0], step)).results[0]
        self.b.insert(llvm.BrOp(header, nxt, *carried))
        self.block = exit_block
        return list(header.args[1:])

    def tl_block(self, op: BlockOp) -> None:
        loop_vars: list[Index] = [self.values[v] for v in op.loop_vars]
        point = [self.affine(e, loop_vars) for e in op.binding_map.results]
        after: Block | None = None
        pred = op.predicate_map
        if pred is not None and pred.results and op not in self.assume_predicates:
            cond: SSAValue | None = None
            for e in pred.results:
                c = self.icmp("slt", self.affine(e, point), 0)
                cond = c if cond is None else self.b.insert(llvm.AndOp(cond, c)).results[0]
            assert cond is not None
            then, after = self.new_block(), self.new_block()
            self.b.insert(llvm.CondBrOp(cond, then, [], after, []))
            self.block = then
        n_in = len(op.inputs)
        maps = op.maps
        pads = op.pad_values
        inits = op.init_values
        at_start: SSAValue | None = None
        env: dict[SSAValue, SSAValue] = {}
        out_ptrs: list[tuple[SSAValue, Attribute]] = []
        for k, (buf, arg) in enumerate(zip([*op.inputs, *op.outputs], op.body_block.args)):
            ty = _static_memref(buf.type, f'tl.block "{op.label.data}" operand #{k}')
            idx = [self.affine(e, point) for e in maps[k].results]
            element = ty.element_type
            pad = pads[k] if k < n_in else None
            if pad is not None and always_in_bounds(op, maps[k], ty.get_shape()):
                pad = None  # every read is inside the buffer
            if pad is not None:
                valid = self.in_bounds(idx, ty.get_shape())
                ptr = self.element_ptr(self.values[buf], ty, self.clamp(idx, valid))
                loaded = self.load(ptr, element)
                pad_value = constant(self.b, pad.value.data, element)
                env[arg] = self.b.insert(llvm.SelectOp(valid, loaded, pad_value)).results[0]
                continue
            ptr = self.element_ptr(self.values[buf], ty, idx)
            init = inits[k - n_in] if k >= n_in else None
            if k >= n_in:
                out_ptrs.append((ptr, element))
            if init is not None and not op.reduction_dims:
                env[arg] = constant(self.b, init.value.data, element)
                continue
            loaded = self.load(ptr, element)
            if init is not None:
                if at_start is None:
                    at_start = self.all_zero([point[d] for d in op.reduction_dims])
                init_value = constant(self.b, init.value.data, element)
                loaded = self.b.insert(llvm.SelectOp(at_start, init_value, loaded)).results[0]
            env[arg] = loaded
        names = op.iterator_names
        for body_op in op.body_block.ops:
            if isinstance(body_op, YieldOp):
                for value, (ptr, element) in zip(body_op.arguments, out_ptrs):
                    self.store(env[value], ptr, element)
            elif isinstance(body_op, IndexOp):
                env[body_op.result] = self.v(point[names.index(body_op.iterator.data)])
            else:
                args = [env[v] for v in body_op.operands]
                env[body_op.results[0]] = lower_scalar_op(self.b, body_op, args)
        if after is not None:
            self.b.insert(llvm.BrOp(after))
            self.block = after

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
            cond = self.b.insert(llvm.AndOp(cond, c)).results[0]
        return cond

    def clamp(self, idx: Sequence[Index], valid: SSAValue) -> list[Index]:
        """Indices where valid, else 0 (a read that is always inside the buffer)."""
        out: list[Index] = []
        for i in idx:
            if isinstance(i, int):
                out.append(i if i >= 0 else 0)
            else:
                out.append(self.b.insert(llvm.SelectOp(valid, i, self.v(0))).results[0])
        return out

    def all_zero(self, values: Sequence[Index]) -> SSAValue:
        cond: SSAValue | None = None
        for x in values:
            c = self.icmp("eq", x, 0)
            cond = c if cond is None else self.b.insert(llvm.AndOp(cond, c)).results[0]
        return cond if cond is not None else constant(self.b, 1, i1)

    def build(self) -> llvm.FuncOp:
        self.lower_ops(self.f.body.block)
        n = len(self.region.blocks[0].args)
        result = i64 if self.returns_status else llvm.LLVMVoidType()
        fn_type = llvm.LLVMFunctionType([PTR] * n, result)
        fn = llvm.FuncOp(
            self.f.sym_name.data,
            fn_type,
            linkage=llvm.LinkageAttr("external"),
            body=self.region,
            other_props={"arg_attrs": ArrayAttr([_arg_attrs()] * n)},
        )
        if self.workspace.offsets:  # what the workspace saves, for reports
            fn.attributes[WORKSPACE_BYTES] = IntegerAttr(self.workspace.peak_bytes, i64)
            fn.attributes[INTERMEDIATE_BYTES] = IntegerAttr(self.workspace.total_bytes, i64)
        return fn


_EXTERNAL_SIGNATURES: dict[str, tuple[list[Attribute], Attribute]] = {
    "aligned_alloc": ([i64, i64], PTR),
    "free": ([PTR], llvm.LLVMVoidType()),
    **PARALLEL_EXTERNALS,
}


def lower_function(
    f: func.FuncOp,
    externals: set[str],
    threads: bool = True,
    checks: CheckTable | None = None,
    status_functions: frozenset[str] = frozenset(),
) -> list[llvm.FuncOp]:
    """The `llvm.func` for `f` followed by its outlined parallel loop bodies; adds the
    names of C functions it calls to `externals` and its failure messages to `checks`
    (the module's table). The functions named in `status_functions` (the module's entries)
    return an i64 status: 0, or the number of the failure (an allocation that failed).
    With `threads=False`, parallel loops run serially."""
    lowering = _FunctionLowering(f, externals, threads, checks, status_functions)
    main = lowering.build()
    return [main, *lowering.outlined]


def lower_global(op: memref.GlobalOp) -> llvm.GlobalOp:
    """memref.global constant -> internal llvm.mlir.global of an array of elements."""
    ty = _static_memref(op.type, f"memref.global @{op.sym_name.data}")
    n = 1
    for d in ty.get_shape():
        n *= d
    value = op.initial_value
    init = value if isinstance(value, DenseIntOrFPElementsAttr) else None
    return llvm.GlobalOp(
        llvm.LLVMArrayType(n, storage_type(ty.element_type)),
        op.sym_name.data,
        "internal",
        constant=op.constant is not None or None,
        value=init,
        alignment=ALIGNMENT,
    )


def lower_module(module: ModuleOp, threads: bool = True) -> None:
    """Replace every func.func and memref.global of `module` by its llvm counterpart
    (`threads=False`: parallel loops run serially, no OpenMP calls)."""
    load_hw_lowerings()
    externals: set[str] = set()
    checks = CheckTable()
    entries = frozenset(
        op.sym_name.data
        for op in module.ops
        if isinstance(op, func.FuncOp) and op.sym_visibility in (None, StringAttr("public"))
    )
    for op in list(module.ops):
        if isinstance(op, func.FuncOp):
            if op.is_declaration:
                raise LlvmLoweringError(f"@{op.sym_name.data}: declarations are not supported")
            new: list[Operation] = list(lower_function(op, externals, threads, checks, entries))
        elif isinstance(op, memref.GlobalOp):
            new = [lower_global(op)]
        else:
            continue
        module.body.block.insert_ops_before(new, op)
        op.detach()
        op.erase(safe_erase=False)
    if "GOMP_parallel" in externals:
        module.body.block.insert_op_before(num_threads_global(), module.body.block.first_op)
    if checks.messages:
        module.body.block.insert_ops_before(check_globals(checks), module.body.block.first_op)
    for name in sorted(externals):
        inputs, output = _EXTERNAL_SIGNATURES[name]
        module.body.block.add_op(
            llvm.FuncOp(
                name, llvm.LLVMFunctionType(inputs, output), linkage=llvm.LinkageAttr("external")
            )
        )


@dataclass(frozen=True)
class ConvertTlToLlvmPass(ModulePass):
    """Lower explicit-loop `tl` functions (and memref globals) to the `llvm` dialect."""

    name = "convert-tl-to-llvm"

    threads: bool = True

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        lower_module(op, self.threads)
