"""`assert_preserves_semantics`: does a rewrite keep the meaning of the IR it rewrites?

    from mlc.testing import assert_preserves_semantics, graph_programs

    def test_my_pattern() -> None:
        assert_preserves_semantics(MyPattern(), ir=graph_programs())

`transform` is an xDSL `RewritePattern` (instance or class), a `ModulePass`, or a pipeline
string (`"convert-graph-to-tl,tl-split{...}"`). `ir` is a Hypothesis strategy (of modules,
or of `Program`/`KernelCase` values that carry their inputs), a `ModuleOp`, or IR text;
inputs not given are drawn from the entry function's signature (`inputs_for`).

Both programs run with the reference semantics (`mlc.interpret`'s interpreter plus any
`interpreter_functions` you pass, so your own dialects work too). The outputs compared are
the results and the final contents of every memref argument.

Tolerances (`tolerance_for`):

- integers and booleans: exact;
- floats: `rtol = 4 * eps(dtype) * K` and `atol = rtol * max(1, max |reference|)`, where
  `eps` is the dtype's machine epsilon (f16 2^-10, bf16 2^-7, f32 2^-23, f64 2^-52) and
  `K` the reduction length: the largest element count of any tensor or memref in either
  program, an upper bound on how many terms any output element sums (reassociating a sum
  of K terms moves it by at most about K ulps of the terms' magnitude, and generated
  inputs are bounded);
- NaN must stay NaN at the same positions, infinities must stay the same infinities,
  `-0.0 == 0.0`; shapes and dtypes must match exactly.

On failure Hypothesis shrinks the case; the report shows the IR before and after, the
inputs and the differing elements, and the case is written as a regression file (see
`write_regression`) into `regression_dir` (default: `$MLC_REGRESSION_DIR`, else
`tests/regressions` under the current directory), which `tests/regressions` replays.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import os
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import ml_dtypes
import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from xdsl.context import Context
from xdsl.dialects.builtin import MemRefType, ModuleOp, ShapedType
from xdsl.interpreter import InterpreterFunctions
from xdsl.ir import Dialect
from xdsl.passes import ModulePass, PassPipeline
from xdsl.pattern_rewriter import PatternRewriteWalker, RewritePattern
from xdsl.utils.arg_spec import parse_spec

from mlc.interpreters import check_inputs, make_interpreter
from mlc.interpreters.tl import from_buffer, to_buffer
from mlc.parser.mlir import parse_module
from mlc.registry import all_pass_factories
from mlc.registry import make_context as _make
from mlc.testing.strategies import (
    DEFAULT_FLOAT_BOUND,
    entry_function,
    format_inputs,
    inputs_for,
    ir_text,
)

Transform = RewritePattern | type[RewritePattern] | ModulePass | str
IR = st.SearchStrategy[Any] | ModuleOp | str

# --------------------------------------------------------------------------- context


def available_passes(
    extra: Mapping[str, Callable[[], type[ModulePass]]] | None = None,
) -> dict[str, Callable[[], type[ModulePass]]]:
    """Every pass a pipeline string may name: xDSL's, mlc's, then `extra`."""
    from xdsl.universe import Universe

    passes = dict(Universe.get_multiverse().all_passes)
    passes.update(all_pass_factories())
    passes.update(extra or {})
    return passes


def make_context(dialects: Sequence[Dialect] = ()) -> Context:
    """mlc's context (every xDSL and mlc dialect) plus `dialects`."""
    ctx = _make()
    for d in dialects:
        if d.name not in ctx.registered_dialect_names:
            ctx.register_dialect(d.name, lambda d=d: d)
    return ctx


def parse_ir(text: str, ctx: Context, name: str = "<ir>") -> ModuleOp:
    """Parse and verify textual IR."""
    return parse_module(ctx, text, name)


# --------------------------------------------------------------------------- transforms


def apply_transform(
    transform: Transform,
    module: ModuleOp,
    ctx: Context,
    passes: Mapping[str, Callable[[], type[ModulePass]]] | None = None,
) -> None:
    """Apply a pattern (greedily, to a fixpoint), a pass or a pipeline to `module`."""
    if isinstance(transform, str):
        PassPipeline.parse_spec(available_passes(passes), transform).apply(ctx, module)
    elif isinstance(transform, ModulePass):
        transform.apply(ctx, module)
    elif isinstance(transform, type) and issubclass(transform, RewritePattern):
        PatternRewriteWalker(transform()).rewrite_module(module)
    elif isinstance(transform, RewritePattern):
        PatternRewriteWalker(transform).rewrite_module(module)
    else:
        raise TypeError(f"not a pattern, pass or pipeline: {transform!r}")


def _qualified(obj: type) -> str:
    return f"{obj.__module__}:{obj.__qualname__}"


def describe_transform(
    transform: Transform, passes: Mapping[str, Callable[[], type[ModulePass]]] | None = None
) -> str:
    """The regression-file form: `pipeline SPEC`, `pass MODULE:CLASS SPEC` or
    `pattern MODULE:CLASS` (a pattern class constructed without arguments)."""
    if isinstance(transform, str):
        return f"pipeline {transform}"
    if isinstance(transform, ModulePass):
        spec = str(transform.pipeline_pass_spec())
        factory = available_passes(passes).get(transform.name)
        if factory is not None and factory() is type(transform):
            return f"pipeline {spec}"
        return f"pass {_qualified(type(transform))} {spec}"
    cls = transform if isinstance(transform, type) else type(transform)
    return f"pattern {_qualified(cls)}"


def import_qualified(name: str) -> Any:
    """`package.module:Outer.Inner` -> the object (imported, never evaluated)."""
    module_name, _, qualname = name.partition(":")
    if not qualname or "<locals>" in qualname:
        raise ValueError(f"'{name}' is not importable (define it at module level)")
    obj: Any = importlib.import_module(module_name)
    for part in qualname.split("."):
        obj = getattr(obj, part)
    return obj


def load_transform(description: str) -> Transform:
    """Inverse of `describe_transform`."""
    kind, _, rest = description.partition(" ")
    if kind == "pipeline":
        return rest
    if kind == "pattern":
        return import_qualified(rest)()
    if kind == "pass":
        name, _, spec = rest.partition(" ")
        cls = import_qualified(name)
        return cls.from_pass_spec(parse_spec(spec))
    raise ValueError(f"unknown transform kind '{kind}' in '{description}'")


# --------------------------------------------------------------------------- running


def run_semantics(
    module: ModuleOp,
    inputs: Sequence[np.ndarray],
    *,
    function: str | None = None,
    interpreter_functions: Sequence[InterpreterFunctions] = (),
) -> tuple[dict[int, np.ndarray], list[np.ndarray]]:
    """Interpret `function` on copies of `inputs`; returns the final contents of each
    memref argument (by argument index) and the results."""
    f = entry_function(module, function)
    args = check_inputs(f, inputs)
    arg_types = f.function_type.inputs.data
    values = tuple(
        to_buffer(a.copy(), t.element_type)
        if isinstance(t, MemRefType)
        else (a.item() if a.ndim == 0 and not isinstance(t, ShapedType) else a)
        for a, t in zip(args, arg_types)
    )
    interpreter = make_interpreter(module)
    for functions in interpreter_functions:
        interpreter.register_implementations(functions)
    results = interpreter.call_op(f.sym_name.data, values)
    buffers = {
        i: from_buffer(v, t.element_type)
        for i, (v, t) in enumerate(zip(values, arg_types))
        if isinstance(t, MemRefType)
    }
    outs = [
        from_buffer(r, t.element_type) if isinstance(t, MemRefType) else np.asarray(r)
        for r, t in zip(results, f.function_type.outputs.data)
    ]
    return buffers, outs


def observable_outputs(
    before: tuple[dict[int, np.ndarray], list[np.ndarray]],
    after: tuple[dict[int, np.ndarray], list[np.ndarray]],
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """What is compared: the contents of arguments that are memrefs in both programs
    (a buffer the function may write), then the results."""
    shared = sorted(set(before[0]) & set(after[0]))
    return (
        [before[0][i] for i in shared] + before[1],
        [after[0][i] for i in shared] + after[1],
    )


# --------------------------------------------------------------------------- tolerances


@dataclass(frozen=True)
class Tolerance:
    """`|got - want| <= atol + rtol * |want|` elementwise; (0, 0) means exact."""

    rtol: float
    atol: float


def _is_float_dtype(dtype: np.dtype) -> bool:
    return np.issubdtype(dtype, np.floating) or dtype == np.dtype(ml_dtypes.bfloat16)


def machine_epsilon(dtype: np.dtype) -> float:
    """2^-(mantissa bits) of a float dtype (bf16 included)."""
    if dtype == np.dtype(ml_dtypes.bfloat16):
        return 2.0**-7
    return float(np.finfo(dtype).eps)


def reduction_length(*modules: ModuleOp) -> int:
    """The largest element count of any tensor or memref value in `modules` (>= 1)."""
    k = 1
    for module in modules:
        for op in module.walk():
            for v in (*op.results, *(a for r in op.regions for b in r.blocks for a in b.args)):
                if isinstance(v.type, ShapedType):
                    k = max(k, int(np.prod(v.type.get_shape())))
    return k


def tolerance_for(dtype: np.dtype, k: int, reference: np.ndarray | None = None) -> Tolerance:
    """The tolerance for comparing outputs of `dtype` after reductions of length `k`."""
    if not _is_float_dtype(np.dtype(dtype)):
        return Tolerance(0.0, 0.0)
    rtol = 4.0 * machine_epsilon(np.dtype(dtype)) * max(k, 1)
    scale = 1.0
    if reference is not None and reference.size:
        finite = np.asarray(reference, dtype=np.float64)
        finite = finite[np.isfinite(finite)]
        if finite.size:
            scale = max(1.0, float(np.max(np.abs(finite))))
    return Tolerance(rtol, rtol * scale)


@dataclass
class Difference:
    """How output #`index` differs: a message and up to 10 `(position, want, got)`."""

    index: int
    message: str
    elements: list[tuple[tuple[int, ...], Any, Any]] = field(default_factory=list)

    def __str__(self) -> str:
        lines = [f"output #{self.index}: {self.message}"]
        lines += [f"  at {list(pos)}: expected {w!r}, got {g!r}" for pos, w, g in self.elements]
        return "\n".join(lines)


def compare_outputs(
    want: Sequence[np.ndarray],
    got: Sequence[np.ndarray],
    k: int,
    tolerance: Tolerance | None = None,
) -> list[Difference]:
    """The differences between reference outputs `want` and `got` (empty when equal)."""
    if len(want) != len(got):
        return [Difference(0, f"expected {len(want)} outputs, got {len(got)}")]
    diffs: list[Difference] = []
    for i, (w, g) in enumerate(zip(want, got)):
        w, g = np.asarray(w), np.asarray(g)
        if w.shape != g.shape or w.dtype != g.dtype:
            diffs.append(
                Difference(i, f"expected {w.dtype}{list(w.shape)}, got {g.dtype}{list(g.shape)}")
            )
            continue
        if _is_float_dtype(w.dtype):
            tol = tolerance or tolerance_for(w.dtype, k, w)
            w64, g64 = w.astype(np.float64), g.astype(np.float64)
            with np.errstate(invalid="ignore"):
                close = np.abs(g64 - w64) <= tol.atol + tol.rtol * np.abs(w64)
            close |= (w64 == g64) | (np.isnan(w64) & np.isnan(g64))
            what = f"rtol={tol.rtol:.3g}, atol={tol.atol:.3g}"
        else:
            close = w == g
            what = "exact"
        bad = np.argwhere(~close)
        if len(bad):
            diffs.append(
                Difference(
                    i,
                    f"{len(bad)} of {w.size} elements of {w.dtype}{list(w.shape)} differ ({what})",
                    [
                        (tuple(int(x) for x in p), w[tuple(p)].item(), g[tuple(p)].item())
                        for p in bad[:10]
                    ],
                )
            )
    return diffs


# --------------------------------------------------------------------------- checking one case


@dataclass
class Counterexample:
    """One case where a transform changed semantics (or failed)."""

    transform: str
    before: str
    after: str | None
    inputs: list[np.ndarray]
    differences: list[Difference]
    error: str | None = None
    function: str | None = None

    def report(self) -> str:
        parts = [
            f"'{self.transform}' does not preserve semantics",
            "--- IR before ---",
            self.before.rstrip(),
            "--- IR after ---",
            (self.after or "(transform failed)").rstrip(),
            "--- inputs ---",
            format_inputs(self.inputs) or "(none)",
        ]
        if self.error:
            parts += ["--- error ---", self.error]
        if self.differences:
            parts += ["--- differences ---", *map(str, self.differences)]
        return "\n".join(parts)


class SemanticsError(AssertionError):
    """A transform changed the semantics of some IR; `counterexample` has the case."""

    def __init__(self, counterexample: Counterexample, regression: Path | None = None):
        self.counterexample = counterexample
        self.regression = regression
        text = counterexample.report()
        if regression is not None:
            text += f"\nregression file: {regression}"
        super().__init__(text)


def check_case(
    transform: Transform,
    module: ModuleOp,
    inputs: Sequence[np.ndarray],
    ctx: Context,
    *,
    function: str | None = None,
    interpreter_functions: Sequence[InterpreterFunctions] = (),
    passes: Mapping[str, Callable[[], type[ModulePass]]] | None = None,
    tolerance: Tolerance | None = None,
) -> Counterexample | None:
    """Transform a clone of `module`, interpret both, return the counterexample if any."""
    inputs = [np.asarray(a) for a in inputs]
    before_text = ir_text(module)
    want = run_semantics(
        module, inputs, function=function, interpreter_functions=interpreter_functions
    )
    after = module.clone()
    desc = describe_transform(transform, passes)
    try:
        apply_transform(transform, after, ctx, passes)
        after.verify()
        got = run_semantics(
            after, inputs, function=function, interpreter_functions=interpreter_functions
        )
    except Exception as e:  # a crash or invalid IR is a counterexample too
        return Counterexample(
            desc, before_text, None, inputs, [], f"{type(e).__name__}: {e}", function
        )
    want_out, got_out = observable_outputs(want, got)
    diffs = compare_outputs(want_out, got_out, reduction_length(module, after), tolerance)
    if not diffs:
        return None
    return Counterexample(desc, before_text, ir_text(after), inputs, diffs, None, function)


class _Found(AssertionError):
    def __init__(self, case: Counterexample):
        super().__init__(case.report())
        self.case = case


def _split(value: Any) -> tuple[ModuleOp, list[np.ndarray] | None]:
    if isinstance(value, ModuleOp):
        return value, None
    if isinstance(value, tuple) and len(value) == 2 and isinstance(value[0], ModuleOp):
        return value[0], list(value[1])
    module = getattr(value, "module", None)
    if isinstance(module, ModuleOp):
        return module, list(value.inputs)
    raise TypeError(f"the ir strategy drew {type(value).__name__}, not a module or program")


def _first_found(e: BaseException) -> _Found | None:
    if isinstance(e, _Found):
        return e
    if isinstance(e, BaseExceptionGroup):
        for sub in e.exceptions:
            found = _first_found(sub)
            if found is not None:
                return found
    return None


def assert_preserves_semantics(
    transform: Transform,
    ir: IR,
    *,
    inputs: st.SearchStrategy[Sequence[np.ndarray]] | Sequence[np.ndarray] | None = None,
    ctx: Context | None = None,
    dialects: Sequence[Dialect] = (),
    interpreter_functions: Sequence[InterpreterFunctions] = (),
    passes: Mapping[str, Callable[[], type[ModulePass]]] | None = None,
    function: str | None = None,
    max_examples: int | None = None,
    float_bound: float = DEFAULT_FLOAT_BOUND,
    specials: bool = False,
    tolerance: Tolerance | None = None,
    regression_dir: Path | str | None = None,
    write_regression_file: bool = True,
) -> None:
    """Check that `transform` preserves the reference semantics of `ir` (see module doc).

    Raises `SemanticsError` with the shrunk counterexample, after writing it as a
    regression file into `regression_dir` unless `write_regression_file` is False.
    """
    ctx = ctx or make_context(dialects)
    if isinstance(ir, str):
        ir = parse_ir(ir, ctx)

    def run_one(module: ModuleOp, arrays: Sequence[np.ndarray]) -> None:
        case = check_case(
            transform,
            module,
            arrays,
            ctx,
            function=function,
            interpreter_functions=interpreter_functions,
            passes=passes,
            tolerance=tolerance,
        )
        if case is not None:
            raise _Found(case)

    try:
        if (
            isinstance(ir, ModuleOp)
            and inputs is not None
            and not isinstance(inputs, st.SearchStrategy)
        ):
            run_one(ir, list(inputs))
        else:
            ir_strategy = ir if isinstance(ir, st.SearchStrategy) else st.just(ir)

            @settings(
                deadline=None,
                database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
                **({"max_examples": max_examples} if max_examples else {}),
            )
            @given(data=st.data())
            def property_(data: st.DataObject) -> None:
                module, drawn = _split(data.draw(ir_strategy, label="ir"))
                if isinstance(inputs, st.SearchStrategy):
                    drawn = list(data.draw(inputs, label="inputs"))
                elif inputs is not None:
                    drawn = list(inputs)
                elif drawn is None:
                    drawn = data.draw(
                        inputs_for(
                            module, function=function, float_bound=float_bound, specials=specials
                        ),
                        label="inputs",
                    )
                run_one(module, drawn)

            property_()
    except BaseException as e:
        found = _first_found(e)
        if found is None:
            raise
        case = found.case
        path = None
        if write_regression_file:
            path = write_regression(
                Path(regression_dir or os.environ.get("MLC_REGRESSION_DIR", "tests/regressions")),
                case,
                dialects=dialects,
                interpreter_functions=interpreter_functions,
            )
        raise SemanticsError(case, path) from None


# --------------------------------------------------------------------------- regression files

HEADER = "// mlc-regression v1"
_LINE = re.compile(r"^// (\w[\w-]*): ?(.*)$")


def _dialect_name(d: Dialect) -> str:
    """`module:NAME` of the module-level variable holding dialect `d`."""
    for op in d.operations:
        mod = importlib.import_module(op.__module__)
        for name, value in vars(mod).items():
            if value is d:
                return f"{op.__module__}:{name}"
    raise ValueError(f"dialect '{d.name}' is not a module-level variable")


def _encode(value: Any) -> str:
    return json.dumps(value, allow_nan=True)


def write_regression(
    directory: Path,
    case: Counterexample,
    *,
    dialects: Sequence[Dialect] = (),
    interpreter_functions: Sequence[InterpreterFunctions] = (),
) -> Path:
    """Write `case` as `directory/<transform>-<hash>.mlir`; returns the path.

    Format: IR text preceded by `//` header lines (no pickle, no eval):

        // mlc-regression v1
        // transform: pipeline convert-graph-to-tl      (or: pattern pkg.mod:Class,
        //                                                   pass pkg.mod:Class name{opt=v})
        // dialect: pkg.mod:MyDialect                   (zero or more)
        // interpreter: pkg.mod:MyFunctions             (zero or more, built without arguments)
        // function: main                               (optional)
        // input: float32 [2, 3] [[1.0, -0.0, NaN], ...]   (one per argument, JSON values)
    """
    lines = [HEADER, f"// transform: {case.transform}"]
    lines += [f"// dialect: {_dialect_name(d)}" for d in dialects]
    lines += [f"// interpreter: {_qualified(type(f))}" for f in interpreter_functions]
    if case.function:
        lines.append(f"// function: {case.function}")
    for a in case.inputs:
        values = a.astype(np.float64).tolist() if _is_float_dtype(a.dtype) else a.tolist()
        lines.append(f"// input: {a.dtype} {_encode(list(a.shape))} {_encode(values)}")
    for note in (case.error or "").splitlines()[:1]:
        lines.append(f"// note: failed with {note}")
    text = "\n".join(lines) + "\n" + case.before.rstrip() + "\n"
    slug = re.sub(r"[^A-Za-z0-9]+", "-", case.transform.split(" ", 1)[1])[:40].strip("-")
    digest = hashlib.sha256(text.encode()).hexdigest()[:10]
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{slug}-{digest}.mlir"
    path.write_text(text)
    return path


@dataclass
class Regression:
    """A parsed regression file."""

    transform: str
    ir: str
    inputs: list[np.ndarray]
    dialects: list[str] = field(default_factory=list)
    interpreters: list[str] = field(default_factory=list)
    function: str | None = None


def _dtype(name: str) -> np.dtype:
    if name == "bfloat16":
        return np.dtype(ml_dtypes.bfloat16)
    return np.dtype(name)


def read_regression(path: Path | str) -> Regression:
    """Parse a regression file written by `write_regression` (or by hand)."""
    text = Path(path).read_text()
    if not text.startswith(HEADER):
        raise ValueError(f"{path}: not an mlc regression file (first line must be '{HEADER}')")
    reg = Regression("", text, [])
    for line in text.splitlines()[1:]:
        m = _LINE.match(line)
        if not line.startswith("//"):
            break
        if m is None:
            continue
        key, value = m.group(1), m.group(2).strip()
        if key == "transform":
            reg.transform = value
        elif key == "dialect":
            reg.dialects.append(value)
        elif key == "interpreter":
            reg.interpreters.append(value)
        elif key == "function":
            reg.function = value
        elif key == "input":
            dtype, rest = value.split(" ", 1)
            decoder = json.JSONDecoder()
            shape, end = decoder.raw_decode(rest)
            values = json.loads(rest[end:].strip())
            reg.inputs.append(
                np.asarray(values, dtype=np.float64 if _is_float_dtype(_dtype(dtype)) else None)
                .astype(_dtype(dtype))
                .reshape(shape)
            )
    if not reg.transform:
        raise ValueError(f"{path}: no '// transform:' line")
    return reg


def check_regression(path: Path | str) -> None:
    """Replay a regression file; raises `SemanticsError` if the transform still fails."""
    reg = read_regression(path)
    dialects = [import_qualified(d) for d in reg.dialects]
    functions = [import_qualified(f)() for f in reg.interpreters]
    ctx = make_context(dialects)
    module = parse_ir(reg.ir, ctx, str(path))
    case = check_case(
        load_transform(reg.transform),
        module,
        reg.inputs,
        ctx,
        function=reg.function,
        interpreter_functions=functions,
    )
    if case is not None:
        raise SemanticsError(case, Path(path))


__all__ = [
    "Counterexample",
    "Difference",
    "Regression",
    "SemanticsError",
    "Tolerance",
    "apply_transform",
    "assert_preserves_semantics",
    "check_case",
    "check_regression",
    "compare_outputs",
    "describe_transform",
    "load_transform",
    "make_context",
    "read_regression",
    "reduction_length",
    "run_semantics",
    "tolerance_for",
    "write_regression",
]
