"""Reference semantics of the `tl` dialect.

Buffers. A `memref` value is an xDSL `ShapedArray` — the representation of xDSL's own
memref interpreter — so `memref.alloc` / `load` / `store` (and func, scf, arith outside
kernel bodies) run unchanged next to `tl` ops. `tl` ops look at a buffer through a
zero-copy numpy view of the `ShapedArray`'s bytes (`buffer_view`), so a kernel reads and
writes the same memory as `memref.load` / `memref.store`. Numpy arrays are accepted as
buffers as well. `to_buffer` / `from_buffer` convert; `run_buffers` calls a function over
memref arguments and returns their final contents.

Bodies. Kernel and block bodies (arith / math / `tl.index`) are evaluated by a numpy
evaluator (`evaluate_body`) in the element type's precision (f32 stays f32; integers wrap
at their width; i1 is bool): on whole arrays for `tl.kernel`, on scalars for `tl.block`.
Scalar arith *outside* bodies (index arithmetic in loops) runs in xDSL's arith interpreter.

`tl.kernel` is evaluated vectorized:
  1. outputs with an `init` are filled at every index their map reaches;
  2. operands are gathered with index grids built from the maps (pads via masks);
  3. the body is evaluated once on whole arrays;
  4. reductions: when each output's yield is `combiner(current, e)` with `e` independent of
     the outputs and `combiner` one of add / mul / max / min / and / or / xor, `e` is
     reduced along the reduction iterators with the numpy ufunc and combined once;
     otherwise the reduction points are walked in order, vectorized over the parallel
     iterators (exact sequential semantics). Kernels whose output maps are not injective
     over the parallel iterators, or whose buffers overlap, run point by point.
Large iteration spaces are processed in chunks of leading parallel iterators.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from xdsl.dialects import func
from xdsl.dialects.builtin import MemRefType, ModuleOp
from xdsl.interpreter import (
    Interpreter,
    InterpreterFunctions,
    PythonValues,
    ReturnedValues,
    TerminatorValue,
    impl,
    impl_terminator,
    register_impls,
)

from mlc.dialects.tl import BlockOp, CheckOp, ForOp, KernelOp, RuntimeCheckError, YieldOp
from mlc.interpreters import InterpretError, entry_function, make_interpreter
from mlc.interpreters.tl.body import evaluate_body, find_combiners
from mlc.interpreters.tl.buffers import buffer_view, from_buffer, numpy_dtype, to_buffer
from mlc.interpreters.tl.kernel import run_block, run_kernel


@register_impls
class TlFunctions(InterpreterFunctions):
    """`tl` ops for xDSL's interpreter (memrefs are `ShapedArray`s or numpy arrays)."""

    @impl(KernelOp)
    def run_kernel(
        self, interpreter: Interpreter, op: KernelOp, args: PythonValues
    ) -> PythonValues:
        run_kernel(op, args)
        return ()

    @impl(BlockOp)
    def run_block(self, interpreter: Interpreter, op: BlockOp, args: PythonValues) -> PythonValues:
        n = len(op.loop_vars)
        run_block(op, args[:n], args[n:])
        return ()

    @impl(ForOp)
    def run_for(self, interpreter: Interpreter, op: ForOp, args: PythonValues) -> PythonValues:
        for i in range(op.lb, op.ub, op.step_value):
            interpreter.run_ssacfg_region(op.body, (i,), "tl.for")
        return ()

    @impl(CheckOp)
    def run_check(self, interpreter: Interpreter, op: CheckOp, args: PythonValues) -> PythonValues:
        if not args[0]:
            raise RuntimeCheckError(op.message.data)
        return ()

    @impl_terminator(YieldOp)
    def run_yield(
        self, interpreter: Interpreter, op: YieldOp, args: PythonValues
    ) -> tuple[TerminatorValue, PythonValues]:
        return ReturnedValues(args), ()


def run_buffers(
    module: ModuleOp, *arrays: np.ndarray, function: str | None = None
) -> list[np.ndarray]:
    """Call `function` (default: the first public one) on copies of `arrays` as memref
    arguments; return every argument buffer's final contents, then the results."""
    f = entry_function(module, function)
    arg_types = f.function_type.inputs.data
    args: list[Any] = []
    for array, ty in zip(check_memref_inputs(f, arrays), arg_types):
        if isinstance(ty, MemRefType):
            args.append(to_buffer(array, ty.element_type))
        else:
            args.append(array.item() if array.ndim == 0 else array)
    interpreter = make_interpreter(module)
    results = interpreter.call_op(f.sym_name.data, tuple(args))
    out: list[np.ndarray] = []
    for value, ty in zip(args, arg_types):
        if isinstance(ty, MemRefType):
            out.append(from_buffer(value, ty.element_type))
    for value, ty in zip(results, f.function_type.outputs.data):
        if isinstance(ty, MemRefType):
            out.append(from_buffer(value, ty.element_type))
        else:
            out.append(np.asarray(value))
    return out


def check_memref_inputs(function: func.FuncOp, inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
    """Check count and shapes of `inputs` against a function over memrefs."""
    arg_types = function.function_type.inputs.data
    if len(inputs) != len(arg_types):
        raise InterpretError(
            f"@{function.sym_name.data} takes {len(arg_types)} inputs, got {len(inputs)}"
        )
    checked: list[np.ndarray] = []
    for i, (value, ty) in enumerate(zip(inputs, arg_types)):
        array = np.asarray(value)
        if isinstance(ty, MemRefType) and tuple(array.shape) != tuple(ty.get_shape()):
            raise InterpretError(
                f"input #{i} of @{function.sym_name.data} must have shape "
                f"{list(ty.get_shape())}, got {list(array.shape)}"
            )
        checked.append(array)
    return checked


__all__ = [
    "TlFunctions",
    "buffer_view",
    "check_memref_inputs",
    "evaluate_body",
    "find_combiners",
    "from_buffer",
    "numpy_dtype",
    "run_block",
    "run_buffers",
    "run_kernel",
    "to_buffer",
]
