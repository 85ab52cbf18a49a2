"""Semantic bisection: which pass of a pipeline first changes what a program computes?

`bisect_semantics(module, pipeline, ctx)` runs the pipeline one pass at a time and
interprets the program after each pass on a few generated inputs, comparing with the input
program (tolerances as in `mlc.testing.semantics`). It names the first pass whose output
differs (or crashes), then shrinks the IR that pass received by deleting ops (each op's
results replaced by an operand or earlier value of the same type) while the pass still
breaks it. `mlc-opt in.mlir -p PIPELINE --bisect-semantics` prints its report.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import ml_dtypes
import numpy as np
from xdsl.context import Context
from xdsl.dialects import func
from xdsl.dialects.builtin import IndexType, ModuleOp, ShapedType, i64
from xdsl.interpreter import InterpreterFunctions
from xdsl.ir import Attribute, Operation, SSAValue
from xdsl.passes import ModulePass, PassPipeline

from mlc.dialects.graph.types import is_bool, is_float, numpy_dtype
from mlc.testing.semantics import (
    Counterexample,
    available_passes,
    check_case,
    compare_outputs,
    observable_outputs,
    reduction_length,
    run_semantics,
)
from mlc.testing.strategies import entry_function


def random_inputs(
    module: ModuleOp, rng: np.random.Generator, function: str | None = None
) -> list[np.ndarray]:
    """Inputs for the entry function: floats standard normal, integers in [-8, 8]."""
    out: list[np.ndarray] = []
    for ty in entry_function(module, function).function_type.inputs.data:
        et: Attribute = ty.get_element_type() if isinstance(ty, ShapedType) else ty
        shape = tuple(ty.get_shape()) if isinstance(ty, ShapedType) else ()
        if isinstance(et, IndexType):
            et = i64
        dtype = numpy_dtype(et)
        if is_float(et):
            a = rng.standard_normal(shape).astype(np.float32).astype(dtype)
        elif is_bool(et):
            a = rng.integers(0, 2, shape).astype(bool)
        else:
            a = rng.integers(-8, 9, shape).astype(dtype)
        out.append(np.asarray(a, dtype=dtype if dtype != np.dtype(ml_dtypes.bfloat16) else dtype))
    return out


@dataclass
class BisectResult:
    """The first pass that changes semantics, the case, and the shrunk case."""

    index: int
    pass_name: str
    case: Counterexample
    reduced: Counterexample

    def report(self) -> str:
        return "\n".join(
            [
                f"first pass that changes semantics: '{self.pass_name}' "
                f"(pass {self.index + 1} of the pipeline)",
                "=== shrunk counterexample ===",
                self.reduced.report(),
            ]
        )


def _fails(
    p: ModulePass,
    module: ModuleOp,
    inputs: Sequence[Sequence[np.ndarray]],
    ctx: Context,
    function: str | None,
    interpreter_functions: Sequence[InterpreterFunctions],
) -> Counterexample | None:
    for arrays in inputs:
        try:
            case = check_case(
                p,
                module,
                arrays,
                ctx,
                function=function,
                interpreter_functions=interpreter_functions,
            )
        except Exception:  # the reduced input program itself no longer runs
            return None
        if case is not None:
            return case
    return None


def _ops(module: ModuleOp, function: str | None) -> list[Operation]:
    body = entry_function(module, function).body.block
    return [op for op in body.ops if not isinstance(op, func.ReturnOp)]


def _delete(module: ModuleOp, index: int, function: str | None) -> ModuleOp | None:
    """A copy of `module` without the `index`-th op of the entry function, its results
    replaced by values of the same types defined before it; None if impossible."""
    copy = module.clone()
    op = _ops(copy, function)[index]
    block = entry_function(copy, function).body.block
    earlier: list[SSAValue] = list(block.args)
    for o in block.ops:
        if o is op:
            break
        earlier.extend(o.results)
    for r in op.results:
        if not r.uses:
            continue
        same = [v for v in (*op.operands, *reversed(earlier)) if v.type == r.type]
        if not same:
            return None
        r.replace_all_uses_with(same[0])
    op.detach()
    op.erase()
    try:
        copy.verify()
    except Exception:
        return None
    return copy


def shrink(
    p: ModulePass,
    module: ModuleOp,
    inputs: Sequence[Sequence[np.ndarray]],
    ctx: Context,
    *,
    function: str | None = None,
    interpreter_functions: Sequence[InterpreterFunctions] = (),
) -> tuple[ModuleOp, Counterexample | None]:
    """Delete ops of `module` one at a time while `p` still breaks it (to a fixpoint)."""
    best = _fails(p, module, inputs, ctx, function, interpreter_functions)
    progress = True
    while progress:
        progress = False
        for i in reversed(range(len(_ops(module, function)))):
            smaller = _delete(module, i, function)
            if smaller is None:
                continue
            case = _fails(p, smaller, inputs, ctx, function, interpreter_functions)
            if case is not None:
                module, best, progress = smaller, case, True
    return module, best


def bisect_semantics(
    module: ModuleOp,
    pipeline: str | Sequence[ModulePass],
    ctx: Context,
    *,
    samples: int = 3,
    seed: int = 0,
    function: str | None = None,
    interpreter_functions: Sequence[InterpreterFunctions] = (),
    passes: Mapping[str, Callable[[], type[ModulePass]]] | None = None,
) -> BisectResult | None:
    """Name the first pass of `pipeline` whose output differs from `module`'s semantics
    (None if every pass preserves it on the generated inputs). `module` is not changed."""
    if isinstance(pipeline, str):
        pipeline = PassPipeline.parse_spec(available_passes(passes), pipeline).passes
    rng = np.random.default_rng(seed)
    inputs = [random_inputs(module, rng, function) for _ in range(samples)]
    reference = [
        run_semantics(module, a, function=function, interpreter_functions=interpreter_functions)
        for a in inputs
    ]
    current = module.clone()
    for index, p in enumerate(pipeline):
        after = current.clone()
        broken = False
        try:
            p.apply(ctx, after)
            after.verify()
            k = reduction_length(module, after)
            for arrays, want in zip(inputs, reference):
                got = run_semantics(
                    after, arrays, function=function, interpreter_functions=interpreter_functions
                )
                if compare_outputs(*observable_outputs(want, got), k):
                    broken = True
                    break
        except Exception:
            broken = True
        if broken:
            case = _fails(p, current, inputs, ctx, function, interpreter_functions)
            if case is None:  # differs only in combination with earlier drift
                case = Counterexample(
                    p.name, "", None, inputs[0], [], "differs from the input program"
                )
                return BisectResult(index, p.name, case, case)
            _, reduced = shrink(
                p,
                current,
                inputs,
                ctx,
                function=function,
                interpreter_functions=interpreter_functions,
            )
            return BisectResult(index, p.name, case, reduced or case)
        current = after
    return None
