"""`convert-tl-to-llvm`: functions at the explicit-loop `tl` level -> xDSL's `llvm` dialect.

Input: `func.func`s over statically shaped, row-major `memref`s whose bodies hold `tl.for`
nests around `tl.block`s, `scf.for` (with iter_args), `memref.alloc / dealloc / load /
store / get_global`, scalar `arith` / `math` and `func.return`; `memref.global`
constants. Output: `llvm.func` / `llvm.mlir.global` only (printable and re-parseable).

The ABI (bare pointers, static shapes):

    func.func @f(%a: memref<4x8xf32>, %b: memref<8xi32>) -> memref<4xf32>
 -> llvm.func @f(%a: !llvm.ptr {llvm.noalias, llvm.align = 16},
                 %b: !llvm.ptr {llvm.noalias, llvm.align = 16},
                 %r0: !llvm.ptr {llvm.noalias, llvm.align = 16})     // returns void

- one pointer per memref argument, then one per memref result: results are written into
  caller-provided buffers; the caller guarantees 16-byte alignment (what malloc and
  numpy give) and that no two written pointers overlap (`CompiledModel` does both), so
  `noalias` and `align 16` hold. Loads and stores assume element alignment only.
- elements are stored densely in row-major order; `i1` is stored as one byte (0 / 1).
- a returned `memref.alloc` is built in place in its result buffer; any other returned
  memref is copied there (`llvm.memcpy`) before returning.
- other `memref.alloc`s (top level of the function only) are `aligned_alloc(64, n)`-ed
  and freed before returning (`memref.dealloc` is ignored).

Loops become header / body / exit blocks with the induction variable (and scf iter_args)
as block arguments; `vectorize` and `unroll` loops are emitted as vector code and
repeated bodies (`tl_vector_to_llvm`), `parallel` loops as OpenMP regions
(`tl_parallel_to_llvm`), `tl.check`s and failed allocations as status stores and returns
(`tl_check_to_llvm`), hw ops by their registered lowerings (`OP_LOWERINGS`, filled by the
modules of `HW_LOWERING_MODULES`). This module composes those parts: each emits through
the function's `llvm_builder.FunctionBuilder` and knows only that module, none imports
this one; the loop parts lower the ops inside their loops through this module's function
lowering (their `NestedLowering`). A `func.call` of an outlined kernel (`tl-outline-kernels`) is
an `llvm.call` with the buffers' pointers. A `tl.block` becomes straight-line code:
iterator values from its bindings, the predicate as a conditional branch, one load per
operand (a padded input loads from a clamped address and selects the pad value where the
index is outside the buffer: no branch, no out-of-bounds access), the init value where
every reduction iterator is 0, the body, and one store per output.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass

from xdsl.context import Context
from xdsl.dialects import func, llvm, memref, scf
from xdsl.dialects.builtin import (
    ArrayAttr,
    DenseIntOrFPElementsAttr,
    DictionaryAttr,
    IntegerAttr,
    ModuleOp,
    StringAttr,
    UnitAttr,
    i1,
    i8,
    i64,
)
from xdsl.ir import Attribute, Block, Operation, Region, SSAValue
from xdsl.passes import ModulePass

from mlc.dialects.tl import BlockOp, CheckOp, ForOp, IndexOp, LoopKind, YieldOp
from mlc.lowering import llvm_ops
from mlc.lowering.arith_to_llvm import LlvmLoweringError, constant, lower_scalar_op
from mlc.lowering.llvm_builder import (
    OP_LOWERINGS,
    PTR,
    FunctionBuilder,
    Index,
    byte_size,
    static_memref,
    storage_type,
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
    "ARGUMENT_ALIGNMENT",
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

#: the modules adding mlc's own hardware ops to `OP_LOWERINGS` (imported by
#: `lower_module` before it lowers anything; another dialect's lowering adds itself to
#: this tuple or registers directly)
HW_LOWERING_MODULES: tuple[str, ...] = ("mlc.lowering.hw_x86_to_llvm",)


def load_hw_lowerings() -> None:
    """Import every module of `HW_LOWERING_MODULES` (each registers its ops' lowerings)."""
    for name in HW_LOWERING_MODULES:
        importlib.import_module(name)


ALIGNMENT = 64
"""Alignment (bytes) of every buffer the compiled code allocates, and of globals."""

ARGUMENT_ALIGNMENT = 16
"""Alignment (bytes) callers guarantee for argument and result pointers: numpy's and
malloc's, so an array passed in needs no aligned copy."""

#: attributes of a lowered function with a workspace: its bytes (liveness-planned) and what
#: its intermediates would take as separate allocations
WORKSPACE_BYTES = "mlc.workspace_bytes"
INTERMEDIATE_BYTES = "mlc.intermediate_bytes"


def _arg_attrs() -> DictionaryAttr:
    return DictionaryAttr(
        {"llvm.noalias": UnitAttr(), "llvm.align": IntegerAttr(ARGUMENT_ALIGNMENT, i64)}
    )


class _FunctionLowering:
    """Builds one `llvm.func` from one `func.func` (single-block body): the ops of this
    module's concern itself, `tl.for` kinds through `LoopKindCodegen` and
    `ParallelCodegen`, `tl.check` and failures through `CheckCodegen`, hw ops through
    `OP_LOWERINGS`; all of them emit through one `FunctionBuilder` (`fb`). It is the
    `NestedLowering` the loop code generators lower loop bodies with."""

    def __init__(
        self,
        f: func.FuncOp,
        externals: set[str],
        threads: bool = False,
        checks: CheckTable | None = None,
        status_functions: frozenset[str] = frozenset(),
    ) -> None:
        self.f = f
        #: the functions that return a status (i64: 0, or a failure's number): entries
        self.status_functions = status_functions
        self.returns_status = f.sym_name.data in status_functions
        body = f.body.blocks
        if len(body) != 1:
            raise LlvmLoweringError(f"@{f.sym_name.data}: expected a single-block body")
        ret = body[0].last_op
        if not isinstance(ret, func.ReturnOp):
            raise LlvmLoweringError(f"@{f.sym_name.data}: the body must end with func.return")
        n_args = len(f.function_type.inputs.data)
        for i, t in enumerate(f.function_type.inputs.data):
            static_memref(t, f"@{f.sym_name.data} argument #{i}")
        self.result_types = [
            static_memref(t, f"@{f.sym_name.data} result #{i}")
            for i, t in enumerate(f.function_type.outputs.data)
        ]
        entry = Block(arg_types=[PTR] * (n_args + len(self.result_types)))
        region = Region()
        region.add_block(entry)
        self.fb = FunctionBuilder(region, entry, externals)
        table = checks if checks is not None else CheckTable()  # failure messages
        self.checks = CheckCodegen(self.fb, table, self.returns_status)
        self.loops = LoopKindCodegen(self.fb, self)
        self.parallel = ParallelCodegen(self.fb, self, f.sym_name.data, threads)
        for arg, new in zip(body[0].args, entry.args):
            self.fb.values[arg] = new
        self.result_ptrs = list(entry.args[n_args:])
        # returned allocs are built in place in the caller's buffer
        self.in_place: dict[SSAValue, SSAValue] = {}
        for v, ptr in zip(ret.arguments, self.result_ptrs):
            if (
                isinstance(v.owner, memref.AllocOp)
                and v.owner.parent_block() is body[0]
                and v not in self.in_place
            ):
                self.in_place[v] = ptr
        self.heap: list[SSAValue] = []  # allocations, freed before returning
        self.workspace = plan_workspace(f)
        self.workspace_ptr: SSAValue | None = None

    # ---- ops

    def lower_ops(self, block: Block) -> None:
        """Lower `block`'s ops (its terminating `tl.yield` / `scf.yield` excepted)."""
        for op in block.ops:
            if isinstance(op, YieldOp | scf.YieldOp) and op is block.last_op:
                continue
            self.lower_op(op)

    def lower_op(self, op: Operation) -> None:
        """Lower one op at the insertion point, recording its results in `fb.values`."""
        fb = self.fb
        values = fb.values
        if isinstance(op, ForOp):
            self.tl_for(op)
        elif isinstance(op, scf.ForOp):
            self.scf_for(op)
        elif isinstance(op, BlockOp):
            self.lower_block(op)
        elif isinstance(op, memref.LoadOp | memref.StoreOp):
            ty = static_memref(op.memref.type, op.name)
            ptr = fb.element_ptr(values[op.memref], ty, [values[i] for i in op.indices])
            if isinstance(op, memref.LoadOp):
                values[op.res] = fb.load(ptr, ty.element_type)
            else:
                fb.store(fb.v(values[op.value]), ptr, ty.element_type)
        elif isinstance(op, CheckOp):
            self.checks.check(op)
        elif isinstance(op, memref.AllocOp):
            self.alloc(op)
        elif isinstance(op, memref.DeallocOp):
            pass  # allocations are freed before returning
        elif isinstance(op, memref.GetGlobalOp):
            ref = op.name_.root_reference.data
            values[op.memref] = fb.insert(llvm.AddressOfOp(ref, PTR)).result
        elif isinstance(op, func.ReturnOp):
            self.ret(op)
        elif isinstance(op, func.CallOp):
            self.func_call(op)
        elif type(op) in OP_LOWERINGS:  # hardware dialects register theirs
            OP_LOWERINGS[type(op)](fb, op)
        else:
            args = [fb.v(values[v]) for v in op.operands]
            values[op.results[0]] = lower_scalar_op(fb.b, op, args)

    def tl_for(self, op: ForOp) -> None:
        """A `tl.for` by its kind (unroll, vectorize, parallel; else serial, versioned)."""
        kind, loops = op.loop_kind, self.loops
        if kind == LoopKind.UNROLL and op.trip_count > 1:
            loops.unrolled_loop(op)
        elif kind == LoopKind.VECTORIZE and op.trip_count > 1 and loops.vectorizable(op):
            loops.vector_loop(op)
        elif kind == LoopKind.PARALLEL and op.trip_count > 1 and self.parallel.enabled:
            self.parallel.parallel_loop(op)
        elif not loops.versioned_loop(op):
            self.fb.serial_loop(op.lb, op.ub, op.step_value, lambda iv: loops.body(op, iv))

    def scf_for(self, op: scf.ForOp) -> None:
        """`scf.for` with its iter_args as loop-carried block arguments."""
        fb = self.fb
        body = op.body.block

        def iteration(iv: SSAValue, carried: list[SSAValue]) -> list[SSAValue]:
            for arg, new in zip(body.args, [iv, *carried]):
                fb.values[arg] = new
            self.lower_ops(body)
            last = body.last_op
            if not isinstance(last, scf.YieldOp):
                return []
            return [fb.v(fb.values[v]) for v in last.operands]

        lb, ub, step = (fb.v(fb.values[v]) for v in (op.lb, op.ub, op.step))
        outs = fb.loop(lb, ub, step, iteration, [fb.v(fb.values[v]) for v in op.iter_args])
        for r, new in zip(op.results, outs):
            fb.values[r] = new

    def func_call(self, op: func.CallOp) -> None:
        """An outlined kernel: buffers in, nothing out (a status from another entry)."""
        fb = self.fb
        if op.results:
            raise LlvmLoweringError(f"func.call @{op.callee.string_value()}: results")
        args = [fb.v(fb.values[a]) for a in op.arguments]
        callee = op.callee.string_value()
        status = callee in self.status_functions  # another entry: pass its failure on
        call = fb.insert(llvm.CallOp(callee, *args, return_type=i64 if status else None))
        # what the call runs (`outline.SITE_ATTRIBUTES`), for profiles
        call.attributes.update({k: v for k, v in op.attributes.items() if k.startswith("mlc.")})
        if status and self.returns_status:
            failed = fb.icmp("ne", call.results[0], 0)
            ok = fb.insert(llvm.XOrOp(failed, constant(fb.b, 1, i1))).results[0]
            self.checks.return_status_unless(ok, call.results[0], self.heap)

    def alloc(self, op: memref.AllocOp) -> None:
        """`memref.alloc`: the result buffer, a slice of the workspace, or its own block."""
        fb = self.fb
        if op.parent_block() is not self.f.body.block:
            raise LlvmLoweringError("memref.alloc is only supported at a function's top level")
        ty = static_memref(op.memref.type, "memref.alloc")
        if op.memref in self.in_place:
            fb.values[op.memref] = self.in_place[op.memref]
            return
        offset = self.workspace.offsets.get(op.memref)
        if offset is not None:
            if self.workspace_ptr is None:  # one allocation for all planned buffers
                size = max(self.workspace.peak_bytes, ALIGNMENT)
                self.workspace_ptr = self.aligned_alloc(size)
            fb.values[op.memref] = fb.gep(self.workspace_ptr, offset, i8)
            return
        size = -(-max(byte_size(ty), 1) // ALIGNMENT) * ALIGNMENT
        fb.values[op.memref] = self.aligned_alloc(size)

    def aligned_alloc(self, size: int) -> SSAValue:
        """`aligned_alloc(ALIGNMENT, size)`, checked, and freed before returning."""
        fb = self.fb
        ptr = fb.call("aligned_alloc", [fb.v(ALIGNMENT), fb.v(size)], PTR)
        assert ptr is not None
        self.checks.check_allocation(ptr, size, self.heap)
        self.heap.append(ptr)
        return ptr

    def ret(self, op: func.ReturnOp) -> None:
        """`func.return`: copy results not built in place, free, return (the status)."""
        fb = self.fb
        for v, ptr, ty in zip(op.arguments, self.result_ptrs, self.result_types):
            if self.in_place.get(v) is ptr:
                continue
            args = [ptr, fb.v(fb.values[v]), fb.v(byte_size(ty)), constant(fb.b, 0, i1)]
            fb.insert(llvm_ops.call_intrinsic("llvm.memcpy.p0.p0.i64", args, []))
        for ptr in self.heap:
            fb.call("free", [ptr], None)
        fb.insert(llvm.ReturnOp(fb.v(0)) if self.returns_status else llvm.ReturnOp())

    def lower_block(self, op: BlockOp) -> None:
        """A `tl.block` as straight-line code (module docstring)."""
        fb = self.fb
        values = fb.values
        loop_vars: list[Index] = [values[v] for v in op.loop_vars]
        point = [fb.affine(e, loop_vars) for e in op.binding_map.results]
        after: Block | None = None
        pred = op.predicate_map
        if pred is not None and pred.results and not self.loops.predicate_holds(op):
            cond: SSAValue | None = None
            for e in pred.results:
                cond = fb.and_(cond, fb.icmp("slt", fb.affine(e, point), 0))
            assert cond is not None
            then, after = fb.new_block(), fb.new_block()
            fb.insert(llvm_ops.cond_br(cond, then, [], after, []))
            fb.block = then
        n_in = len(op.inputs)
        maps = op.maps
        pads = op.pad_values
        inits = op.init_values
        at_start: SSAValue | None = None
        env: dict[SSAValue, SSAValue] = {}
        out_ptrs: list[tuple[SSAValue, Attribute]] = []
        for k, (buf, arg) in enumerate(zip([*op.inputs, *op.outputs], op.body_block.args)):
            ty = static_memref(buf.type, f'tl.block "{op.label.data}" operand #{k}')
            idx = [fb.affine(e, point) for e in maps[k].results]
            element = ty.element_type
            pad = pads[k] if k < n_in else None
            if pad is not None and always_in_bounds(op, maps[k], ty.get_shape()):
                pad = None  # every read is inside the buffer
            if pad is not None:
                valid = fb.in_bounds(idx, ty.get_shape())
                ptr = fb.element_ptr(values[buf], ty, fb.clamp(idx, valid))
                loaded = fb.load(ptr, element)
                pad_value = constant(fb.b, pad.value.data, element)
                env[arg] = fb.insert(llvm.SelectOp(valid, loaded, pad_value)).results[0]
                continue
            ptr = fb.element_ptr(values[buf], ty, idx)
            init = inits[k - n_in] if k >= n_in else None
            if k >= n_in:
                out_ptrs.append((ptr, element))
            if init is not None and not op.reduction_dims:
                env[arg] = constant(fb.b, init.value.data, element)
                continue
            loaded = fb.load(ptr, element)
            if init is not None:
                if at_start is None:
                    at_start = fb.all_zero([point[d] for d in op.reduction_dims])
                init_value = constant(fb.b, init.value.data, element)
                loaded = fb.insert(llvm.SelectOp(at_start, init_value, loaded)).results[0]
            env[arg] = loaded
        names = op.iterator_names
        for body_op in op.body_block.ops:
            if isinstance(body_op, YieldOp):
                for value, (ptr, element) in zip(body_op.arguments, out_ptrs):
                    fb.store(env[value], ptr, element)
            elif isinstance(body_op, IndexOp):
                env[body_op.result] = fb.v(point[names.index(body_op.iterator.data)])
            else:
                args = [env[v] for v in body_op.operands]
                env[body_op.results[0]] = lower_scalar_op(fb.b, body_op, args)
        if after is not None:
            fb.insert(llvm_ops.br(after))
            fb.block = after

    def build(self) -> llvm.FuncOp:
        """The `llvm.func`."""
        self.lower_ops(self.f.body.block)
        region = self.fb.region
        n = len(region.blocks[0].args)
        result = i64 if self.returns_status else llvm.LLVMVoidType()
        fn_type = llvm.LLVMFunctionType([PTR] * n, result)
        fn = llvm.FuncOp(
            self.f.sym_name.data,
            fn_type,
            linkage=llvm.LinkageAttr("external"),
            body=region,
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
    return [main, *lowering.parallel.outlined]


def lower_global(op: memref.GlobalOp) -> llvm.GlobalOp:
    """memref.global constant -> internal llvm.mlir.global of an array of elements."""
    ty = static_memref(op.type, f"memref.global @{op.sym_name.data}")
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
