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

from typing import cast

from xdsl.dialects import llvm
from xdsl.dialects.builtin import ArrayAttr, DictionaryAttr, UnitAttr, i32, i64
from xdsl.ir import SSAValue

from mlc.dialects.tl import ForOp
from mlc.dialects.tl.base import is_defined_inside
from mlc.lowering.arith_to_llvm import constant
from mlc.lowering.llvm_builder import PTR, FunctionBuilder, Index, NestedLowering

__all__ = ["NUM_THREADS_GLOBAL", "PARALLEL_EXTERNALS", "ParallelCodegen", "num_threads_global"]

NUM_THREADS_GLOBAL = "mlc_num_threads"
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
    """Parallel `tl.for`s of function `name` as outlined OpenMP regions, emitted through
    `fb`; `nested` lowers the loop bodies. `enabled`: parallel loops become regions
    (False: the caller runs them serially; it is False while a region's body is emitted,
    so nested parallel loops run serially in their thread). `outlined` collects the
    functions made so far (after the function itself in the module)."""

    def __init__(
        self, fb: FunctionBuilder, nested: NestedLowering, name: str, enabled: bool
    ) -> None:
        self.fb = fb
        self.nested = nested
        self.name = name
        self.enabled = enabled
        self.outlined: list[llvm.FuncOp] = []

    def parallel_loop(self, op: ForOp) -> None:
        """`op` as a `GOMP_parallel` call of a new thread entry (module docstring)."""
        fb = self.fb
        captured = self.captured_values(op)
        name = f"{self.name}_par{len(self.outlined)}"
        # the context: one pointer per captured value (a non-pointer value is stored in a
        # stack slot of its own type, whose address goes into the context)
        ctx = fb.insert(llvm.AllocaOp(fb.v(max(len(captured), 1)), PTR, 8)).res
        for slot, value in enumerate(captured):
            lowered = fb.values[value]
            assert isinstance(lowered, SSAValue)
            if not isinstance(lowered.type, llvm.LLVMPointerType):
                cell = fb.insert(llvm.AllocaOp(fb.v(1), lowered.type, 8)).res
                fb.insert(llvm.StoreOp(lowered, cell, alignment=8))
                lowered = cell
            fb.insert(llvm.StoreOp(lowered, self.slot(ctx, slot), alignment=8))
        fn = fb.insert(llvm.AddressOfOp(name, PTR)).result
        count = fb.insert(llvm.AddressOfOp(NUM_THREADS_GLOBAL, PTR)).result
        threads = fb.insert(llvm.LoadOp(count, i32, alignment=4)).dereferenced_value
        fb.call("GOMP_parallel", [fn, ctx, threads, constant(fb.b, 0, i32)], None)
        self.outlined.extend(self.outline(op, name, captured))

    def captured_values(self, op: ForOp) -> list[SSAValue]:
        """Values used inside `op`, defined outside it and lowered to SSA values (values
        lowered to constants are used as constants)."""
        seen: dict[SSAValue, None] = {}
        for inner in op.walk():
            for value in inner.operands:
                if not is_defined_inside(value, op) and not isinstance(
                    self.fb.values.get(value), int
                ):
                    seen[value] = None
        return list(seen)

    def slot(self, ctx: SSAValue, index: int) -> SSAValue:
        """The address of context slot `index`."""
        return self.fb.insert(llvm.GEPOp(ctx, [index], PTR, inbounds=True)).result

    def outline(self, op: ForOp, name: str, captured: list[SSAValue]) -> list[llvm.FuncOp]:
        """Two `llvm.func`s: `@name(ctx)`, which GOMP_parallel runs on every thread, picks
        the thread's share of the iterations and calls `@name_body(values..., first,
        last)`. Passing the buffers as `noalias` arguments (not loads from the context)
        keeps LLVM's alias facts, so tiles stay in registers as in serial code."""
        fb = self.fb
        types = [cast(SSAValue, fb.values[v]).type for v in captured]
        # the body: [first, last) of the loop's iterations
        enabled, self.enabled = self.enabled, False  # no nested teams
        with fb.new_function([*types, i64, i64]) as region:
            args = fb.block.args
            for value, arg in zip(captured, args):
                fb.values[value] = arg

            def iteration(i: Index) -> None:
                fb.values[op.induction_var] = fb.add(op.lb, fb.mul(i, op.step_value))
                self.nested.lower_ops(op.body.block)

            fb.serial_loop(args[-2], args[-1], 1, iteration)
            fb.insert(llvm.ReturnOp())
        self.enabled = enabled
        noalias = DictionaryAttr({"llvm.noalias": UnitAttr()})
        attrs = [noalias if isinstance(t, llvm.LLVMPointerType) else _NONE for t in types]
        body = llvm.FuncOp(
            f"{name}_body",
            llvm.LLVMFunctionType([*types, i64, i64], VOID),
            linkage=llvm.LinkageAttr("internal"),
            body=region,
            other_props={"arg_attrs": ArrayAttr([*attrs, _NONE, _NONE])},
        )
        # the thread entry
        with fb.new_function([PTR]) as region:
            ctx = fb.block.args[0]
            loaded: list[SSAValue] = []
            for slot, ty in enumerate(types):
                ptr = self.slot(ctx, slot)
                value = fb.insert(llvm.LoadOp(ptr, PTR, alignment=8)).dereferenced_value
                if not isinstance(ty, llvm.LLVMPointerType):
                    value = fb.insert(llvm.LoadOp(value, ty, alignment=8)).dereferenced_value
                loaded.append(value)
            tid = self.widen(fb.call("omp_get_thread_num", [], i32))
            nthreads = self.widen(fb.call("omp_get_num_threads", [], i32))
            trips = op.trip_count
            # chunk = ceil(trips / n); [tid * chunk, min(tid * chunk + chunk, trips))
            chunk = fb.insert(llvm.AddOp(fb.v(trips - 1), nthreads)).results[0]
            chunk = fb.insert(llvm.SDivOp(chunk, nthreads)).results[0]
            first = fb.insert(llvm.MulOp(tid, chunk)).results[0]
            last = fb.insert(llvm.AddOp(first, chunk)).results[0]
            over = fb.icmp("sgt", last, trips)
            last = fb.insert(llvm.SelectOp(over, fb.v(trips), last)).results[0]
            fb.insert(llvm.CallOp(f"{name}_body", *loaded, first, last))
            fb.insert(llvm.ReturnOp())
        thread_entry = llvm.FuncOp(
            name,
            llvm.LLVMFunctionType([PTR], VOID),
            linkage=llvm.LinkageAttr("internal"),
            body=region,
            other_props={"arg_attrs": ArrayAttr([_NONE])},
        )
        return [body, thread_entry]

    def widen(self, value: SSAValue | None) -> SSAValue:
        """An i32 result as an i64 (sign-extended)."""
        assert value is not None
        return self.fb.insert(llvm.SExtOp(value, i64)).results[0]
