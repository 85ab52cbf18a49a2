"""Code generation for `tl.for` kind `parallel` (part of `convert-tl-to-llvm`): OpenMP
threads through libgomp's `GOMP_parallel`.

    tl.for %i = 0 to 64 parallel { body(%i, %A, %j) }

becomes an outlined function that runs one thread's contiguous share of the iterations,
and a call in the parent:

    llvm.func internal @f_par0(%ctx: !llvm.ptr) {       // ctx: one 8-byte slot per value
      %A = load slot 0 ; %j = load slot 1               // the body uses from outside
      t = omp_get_thread_num(); n = omp_get_num_threads()
      for i in [t * ceil(64 / n), min((t + 1) * ceil(64 / n), 64)): body(i, %A, %j)
    }
    store %A, %j into an alloca'd context
    GOMP_parallel(@f_par0, ctx, load @mlc_num_threads, 0)

`@mlc_num_threads` (an `i32` global, 0 = OpenMP's default: `OMP_NUM_THREADS` or all cores)
is set by `CompiledModel` from `MLC_NUM_THREADS` / its `num_threads` option, and by C
callers of an exported library directly. A parallel loop nested in another runs serially
inside its thread (no nested teams).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

from xdsl.dialects import llvm
from xdsl.dialects.builtin import ArrayAttr, DictionaryAttr, UnitAttr, i32, i64
from xdsl.ir import Block, Region, SSAValue

from mlc.dialects.tl import ForOp
from mlc.dialects.tl.base import is_defined_inside
from mlc.lowering.arith_to_llvm import constant

if TYPE_CHECKING:
    from mlc.lowering.tl_to_llvm import Index, _FunctionLowering

__all__ = ["NUM_THREADS_GLOBAL", "PARALLEL_EXTERNALS", "ParallelCodegen", "num_threads_global"]

NUM_THREADS_GLOBAL = "mlc_num_threads"
PTR = llvm.LLVMPointerType()
VOID = llvm.LLVMVoidType()
_NONE = DictionaryAttr({})

#: the libgomp entry points parallel loops call: name -> (argument types, result type)
PARALLEL_EXTERNALS = {
    "GOMP_parallel": ([PTR, PTR, i32, i32], VOID),
    "omp_get_thread_num": ([], i32),
    "omp_get_num_threads": ([], i32),
}


def num_threads_global() -> llvm.GlobalOp:
    """`@mlc_num_threads = 0 : i32`, external so callers can set it."""
    return llvm.GlobalOp(i32, NUM_THREADS_GLOBAL, "external", alignment=4)


class ParallelCodegen:
    """Mixin of `_FunctionLowering`: parallel `tl.for`s as outlined OpenMP regions."""

    def parallel_loop(self: _FunctionLowering, op: ForOp) -> None:
        captured = self.captured_values(op)
        name = f"{self.f.sym_name.data}_par{len(self.outlined)}"
        # the context: one pointer per captured value (a non-pointer value is stored in a
        # stack slot of its own type, whose address goes into the context)
        ctx = self.b.insert(llvm.AllocaOp(self.v(max(len(captured), 1)), PTR, 8)).res
        for slot, value in enumerate(captured):
            lowered = self.values[value]
            assert isinstance(lowered, SSAValue)
            if not isinstance(lowered.type, llvm.LLVMPointerType):
                cell = self.b.insert(llvm.AllocaOp(self.v(1), lowered.type, 8)).res
                self.b.insert(llvm.StoreOp(lowered, cell, alignment=8))
                lowered = cell
            self.b.insert(llvm.StoreOp(lowered, self.slot(ctx, slot), alignment=8))
        fn = self.b.insert(llvm.AddressOfOp(name, PTR)).result
        count = self.b.insert(llvm.AddressOfOp(NUM_THREADS_GLOBAL, PTR)).result
        threads = self.b.insert(llvm.LoadOp(count, i32, alignment=4)).dereferenced_value
        self.call("GOMP_parallel", [fn, ctx, threads, constant(self.b, 0, i32)], None)
        self.uses_threads = True
        self.outlined.extend(self.outline(op, name, captured))

    def captured_values(self: _FunctionLowering, op: ForOp) -> list[SSAValue]:
        """Values used inside `op`, defined outside it and lowered to SSA values (values
        lowered to constants are used as constants)."""
        seen: dict[SSAValue, None] = {}
        for inner in op.walk():
            for value in inner.operands:
                if not is_defined_inside(value, op) and not isinstance(self.values.get(value), int):
                    seen[value] = None
        return list(seen)

    def slot(self: _FunctionLowering, ctx: SSAValue, index: int) -> SSAValue:
        return self.b.insert(llvm.GEPOp(ctx, [index], PTR, inbounds=True)).result

    def outline(
        self: _FunctionLowering, op: ForOp, name: str, captured: list[SSAValue]
    ) -> list[llvm.FuncOp]:
        """Two `llvm.func`s: `@name(ctx)`, which GOMP_parallel runs on every thread, picks
        the thread's share of the iterations and calls `@name_body(values..., first,
        last)`. Passing the buffers as `noalias` arguments (not loads from the context)
        keeps LLVM's alias facts, so tiles stay in registers as in serial code."""
        saved = (self.region, self.block, dict(self.values), self.threads)
        types = [cast(SSAValue, self.values[v]).type for v in captured]
        # the body: [first, last) of the loop's iterations
        self.region = Region()
        self.block = Block(arg_types=[*types, i64, i64])
        self.region.add_block(self.block)
        self.threads = False  # no nested teams
        args = self.block.args
        for value, arg in zip(captured, args):
            self.values[value] = arg

        def iteration(i: Index) -> None:
            self.body(op, self.add(op.lb, self.mul(i, op.step_value)))

        self.serial_loop(args[-2], args[-1], 1, iteration)
        self.b.insert(llvm.ReturnOp())
        noalias = DictionaryAttr({"llvm.noalias": UnitAttr()})
        attrs = [noalias if isinstance(t, llvm.LLVMPointerType) else _NONE for t in types]
        body = llvm.FuncOp(
            f"{name}_body",
            llvm.LLVMFunctionType([*types, i64, i64], VOID),
            linkage=llvm.LinkageAttr("internal"),
            body=self.region,
            other_props={"arg_attrs": ArrayAttr([*attrs, _NONE, _NONE])},
        )
        # the thread entry
        self.region = Region()
        entry = Block(arg_types=[PTR])
        self.region.add_block(entry)
        self.block = entry
        loaded: list[SSAValue] = []
        for slot, ty in enumerate(types):
            ptr = self.slot(entry.args[0], slot)
            value = self.b.insert(llvm.LoadOp(ptr, PTR, alignment=8)).dereferenced_value
            if not isinstance(ty, llvm.LLVMPointerType):
                value = self.b.insert(llvm.LoadOp(value, ty, alignment=8)).dereferenced_value
            loaded.append(value)
        tid = self.widen(self.call("omp_get_thread_num", [], i32))
        nthreads = self.widen(self.call("omp_get_num_threads", [], i32))
        trips = op.trip_count
        # chunk = ceil(trips / n); [tid * chunk, min(tid * chunk + chunk, trips))
        chunk = self.b.insert(llvm.AddOp(self.v(trips - 1), nthreads)).results[0]
        chunk = self.b.insert(llvm.SDivOp(chunk, nthreads)).results[0]
        first = self.b.insert(llvm.MulOp(tid, chunk)).results[0]
        last = self.b.insert(llvm.AddOp(first, chunk)).results[0]
        over = self.icmp("sgt", last, trips)
        last = self.b.insert(llvm.SelectOp(over, self.v(trips), last)).results[0]
        self.b.insert(llvm.CallOp(f"{name}_body", *loaded, first, last))
        self.b.insert(llvm.ReturnOp())
        thread_entry = llvm.FuncOp(
            name,
            llvm.LLVMFunctionType([PTR], VOID),
            linkage=llvm.LinkageAttr("internal"),
            body=self.region,
            other_props={"arg_attrs": ArrayAttr([_NONE])},
        )
        self.region, self.block, self.values, self.threads = saved
        return [body, thread_entry]

    def widen(self: _FunctionLowering, value: SSAValue | None) -> SSAValue:
        assert value is not None
        return self.b.insert(llvm.SExtOp(value, i64)).results[0]
