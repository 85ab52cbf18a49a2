"""Hypothesis strategies for mlc IR and its inputs.

- `arrays_for(type)` / `inputs_for(function)`: inputs for a function, dtype-aware. Floats
  have bounded magnitudes (default |x| <= 4, no subnormals) so that reassociating sums
  stays within the tolerances of `mlc.testing.semantics`; 0.0 and -0.0 are always
  possible, +-inf and NaN only with ``specials=True``. Integers cover their full range
  (Hypothesis favours 0, -1, min and max); ``i1`` is bool.
- `graph_programs(...)`: random DAGs of graph ops with consistent shapes, dtypes and
  attributes. Each step is an *op generator* `(draw, ProgramBuilder) -> None` that picks
  existing values and inserts ops; supply your own to test your own ops.
- `kernel_modules()`: random `tl.kernel` functions over memrefs (elementwise with
  broadcasts and pads, matmul-like in any iterator order, convolutions, reductions with any
  combiner, argmax) with inputs, as `KernelCase`.

Every generated case prints as textual IR plus its inputs, so a failing property shows a
readable counterexample.
"""

from __future__ import annotations

import io
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import ml_dtypes
import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from xdsl.builder import Builder, InsertPoint
from xdsl.dialects import arith, func
from xdsl.dialects.builtin import (
    FloatAttr,
    IndexType,
    IntegerAttr,
    MemRefType,
    ModuleOp,
    ShapedType,
    TensorType,
    f32,
    i1,
    i32,
    i64,
)
from xdsl.ir import Attribute, BlockArgument, Operation, SSAValue
from xdsl.printer import Printer

from mlc.dialects import graph as g
from mlc.dialects.graph.types import is_bool, is_float, numpy_dtype
from mlc.dialects.tl import IndexOp, KernelOp, build_kernel
from mlc.interpreters import entry_function as _entry

# --------------------------------------------------------------------------- inputs

DEFAULT_FLOAT_BOUND = 4.0
"""Largest magnitude of generated float inputs (see module docstring)."""

SPECIAL_FLOATS = (0.0, -0.0, math.inf, -math.inf, math.nan)


def ir_text(op: Operation) -> str:
    """`op` in its canonical printed form."""
    out = io.StringIO()
    Printer(stream=out).print_op(op)
    return out.getvalue()


def format_inputs(arrays: Sequence[np.ndarray]) -> str:
    """Inputs as IR comments: `// input #0: float32[2, 3] [[...]]`."""
    return "\n".join(
        f"// input #{i}: {a.dtype}{list(a.shape)} {np.asarray(a).tolist()}"
        for i, a in enumerate(arrays)
    )


def scalar_elements(
    element_type: Attribute, *, float_bound: float = DEFAULT_FLOAT_BOUND, specials: bool = False
) -> st.SearchStrategy[object]:
    """Python scalars for one element of `element_type`."""
    dtype = numpy_dtype(element_type)
    if is_bool(element_type):
        return st.booleans()
    if is_float(element_type):
        width = 16 if dtype == np.float16 else 64 if dtype == np.float64 else 32
        finite = st.floats(
            -float_bound,
            float_bound,
            width=width,
            allow_subnormal=False,
            allow_nan=False,
            allow_infinity=False,
        )
        extra = st.sampled_from(SPECIAL_FLOATS) if specials else st.sampled_from([0.0, -0.0])
        return st.one_of(finite, extra)
    info = np.iinfo(dtype)
    return st.integers(int(info.min), int(info.max))


def arrays_for(
    ty: Attribute, *, float_bound: float = DEFAULT_FLOAT_BOUND, specials: bool = False
) -> st.SearchStrategy[np.ndarray]:
    """Arrays for a tensor/memref type, or a 0-d array for a scalar type."""
    if isinstance(ty, ShapedType):
        element_type, shape = ty.get_element_type(), tuple(ty.get_shape())
    else:
        element_type, shape = ty, ()
    if isinstance(element_type, IndexType):
        element_type = i64
    dtype = numpy_dtype(element_type)
    elements = scalar_elements(element_type, float_bound=float_bound, specials=specials)
    # bf16 has no Hypothesis support: draw in f32 and round once
    draw_dtype = np.dtype(np.float32) if dtype == np.dtype(ml_dtypes.bfloat16) else dtype
    return hnp.arrays(draw_dtype, shape, elements=elements).map(lambda a: a.astype(dtype))


def entry_function(module: ModuleOp, name: str | None = None) -> func.FuncOp:
    """The function `name`, or the module's first public function with a body."""
    return _entry(module, name)


def inputs_for(
    target: ModuleOp | func.FuncOp,
    *,
    function: str | None = None,
    float_bound: float = DEFAULT_FLOAT_BOUND,
    specials: bool = False,
) -> st.SearchStrategy[list[np.ndarray]]:
    """Inputs for every argument of a function (the module's entry function by default)."""
    f = target if isinstance(target, func.FuncOp) else entry_function(target, function)
    return st.tuples(
        *(
            arrays_for(ty, float_bound=float_bound, specials=specials)
            for ty in f.function_type.inputs.data
        )
    ).map(list)


# --------------------------------------------------------------------------- graph programs


@dataclass
class Program:
    """A generated module and inputs for its entry function; prints as IR + inputs."""

    module: ModuleOp
    inputs: list[np.ndarray] = field(default_factory=list)

    def __repr__(self) -> str:
        return f"{ir_text(self.module)}\n{format_inputs(self.inputs)}"


class ProgramBuilder:
    """What an op generator sees while a graph program is drawn.

    `values` are the SSA values so far (function arguments and op results); a generator
    picks some (`pick`), may add function arguments (`new_arg`) and inserts ops
    (`insert`). Results that nothing uses become the function's results.
    """

    def __init__(self, draw: st.DrawFn, element_type: Attribute, rng: np.random.Generator):
        self.draw = draw
        self.element_type = element_type
        self.rng = rng
        self.function = func.FuncOp("main", ([], []))
        self.builder = Builder(InsertPoint.at_end(self.function.body.block))
        self.values: list[SSAValue] = []

    @property
    def is_float(self) -> bool:
        return is_float(self.element_type)

    def new_arg(self, shape: Sequence[int], element_type: Attribute | None = None) -> SSAValue:
        """Append a function argument of type `tensor<shape x element_type>`."""
        block = self.function.body.block
        arg = block.insert_arg(
            TensorType(element_type or self.element_type, list(shape)), len(block.args)
        )
        self.values.append(arg)
        return arg

    def pick(self, where: Callable[[SSAValue], bool] = lambda v: True) -> SSAValue | None:
        """A random existing value satisfying `where` (None when there is none)."""
        options = [v for v in self.values if where(v)]
        if not options:
            return None
        return options[self.draw(st.integers(0, len(options) - 1))]

    def insert(self, op: Operation) -> SSAValue:
        """Insert `op`; its results become available values. Returns the first result."""
        self.builder.insert(op)
        self.values.extend(op.results)
        return op.results[0]

    def constant(self, shape: Sequence[int]) -> SSAValue:
        """A `graph.constant` of small random values of the program's element type."""
        dtype = numpy_dtype(self.element_type)
        if self.is_float:
            data = self.rng.standard_normal(tuple(shape)).astype(dtype)
        else:
            data = self.rng.integers(-3, 4, tuple(shape)).astype(dtype)
        return self.insert(g.ConstantOp.from_array(data))

    def finish(self) -> ModuleOp:
        """Return every unused op result (or the last value) and build the module."""
        sinks = [v for v in self.values if not isinstance(v, BlockArgument) and not v.uses]
        if not sinks:
            sinks = [self.values[-1]]
        self.builder.insert(func.ReturnOp(*sinks))
        block = self.function.body.block
        self.function.function_type = func.FunctionType.from_lists(
            [a.type for a in block.args], [s.type for s in sinks]
        )
        module = ModuleOp([self.function])
        module.verify()
        return module


OpGenerator = Callable[[st.DrawFn, ProgramBuilder], None]
"""Inserts zero or more ops into a program under construction."""


def _shape(v: SSAValue) -> list[int]:
    assert isinstance(v.type, TensorType)
    return list(v.type.get_shape())


def _rank(n: int) -> Callable[[SSAValue], bool]:
    return lambda v: isinstance(v.type, TensorType) and len(_shape(v)) == n


def gen_unary(draw: st.DrawFn, p: ProgramBuilder) -> None:
    # y = f(x), elementwise
    x = p.pick()
    names = [g.ReluOp, g.NegOp, g.AbsOp]
    if p.is_float:
        names += [g.SigmoidOp, g.TanhOp, g.ExpOp]
    if x is not None:
        p.insert(draw(st.sampled_from(names)).create([x]))


def gen_binary(draw: st.DrawFn, p: ProgramBuilder) -> None:
    # z = x op y, y an existing value of the same shape or a (broadcast) argument
    x = p.pick()
    if x is None:
        return
    shape = _shape(x)
    y = p.pick(lambda v: v is not x and v.type == x.type) if draw(st.booleans()) else None
    if y is None:
        y = p.new_arg([d if draw(st.booleans()) else 1 for d in shape])
    cls = draw(st.sampled_from([g.AddOp, g.SubOp, g.MulOp, g.MaxOp, g.MinOp]))
    operands = [x, y] if draw(st.booleans()) else [y, x]
    p.insert(cls.create(operands))


def gen_reduce(draw: st.DrawFn, p: ProgramBuilder) -> None:
    # y = reduce(x, axes)
    x = p.pick()
    if x is None:
        return
    rank = len(_shape(x))
    axes = sorted(draw(st.sets(st.integers(0, rank - 1), min_size=1, max_size=rank)))
    cls = draw(st.sampled_from([g.ReduceSumOp, g.ReduceMaxOp, g.ReduceMinOp]))
    p.insert(cls.create([x], axes=axes, keepdims=draw(st.booleans()) or len(axes) == rank))


def gen_transpose(draw: st.DrawFn, p: ProgramBuilder) -> None:
    # y = transpose(x, perm)
    x = p.pick()
    if x is not None:
        perm = list(draw(st.permutations(range(len(_shape(x))))))
        p.insert(g.TransposeOp.create([x], perm=perm))


def gen_concat(draw: st.DrawFn, p: ProgramBuilder) -> None:
    # y = concat(x, z, axis), z of x's type
    x = p.pick()
    if x is None:
        return
    z = p.pick(lambda v: v.type == x.type) or x
    p.insert(g.ConcatOp.create([x, z], axis=draw(st.integers(0, len(_shape(x)) - 1))))


def gen_reshape(draw: st.DrawFn, p: ProgramBuilder) -> None:
    # y = reshape(x): merge two adjacent dims or split one off as 1
    x = p.pick()
    if x is None:
        return
    shape = _shape(x)
    if len(shape) >= 2 and draw(st.booleans()):
        i = draw(st.integers(0, len(shape) - 2))
        new = shape[:i] + [shape[i] * shape[i + 1]] + shape[i + 2 :]
    else:
        new = [*shape, 1]
    p.insert(g.ReshapeOp.create([x], result_types=[TensorType(p.element_type, new)]))


def gen_matmul(draw: st.DrawFn, p: ProgramBuilder) -> None:
    # y = x @ w, w a constant or an argument
    x = p.pick(lambda v: len(_shape(v)) >= 2)
    if x is None:
        return
    n = draw(st.integers(1, 3))
    k = _shape(x)[-1]
    w = p.constant([k, n]) if draw(st.booleans()) else p.new_arg([k, n])
    p.insert(g.MatMulOp.create([x, w]))


def gen_softmax(draw: st.DrawFn, p: ProgramBuilder) -> None:
    # y = softmax(x, axis) (floats only)
    x = p.pick()
    if x is not None and p.is_float:
        p.insert(g.SoftmaxOp.create([x], axes=[draw(st.integers(0, len(_shape(x)) - 1))]))


def gen_conv(draw: st.DrawFn, p: ProgramBuilder) -> None:
    # y = conv(x, w, b) on NCHW, 1x1 or 3x3, stride 1 or 2 (floats only)
    x = p.pick(_rank(4))
    if x is None or not p.is_float:
        return
    n, c, h, w_ = _shape(x)
    k = draw(st.sampled_from([1, 3]))
    pad, stride = draw(st.sampled_from([0, k // 2])), draw(st.sampled_from([1, 2]))
    if h + 2 * pad < k or w_ + 2 * pad < k:
        return
    f = draw(st.integers(1, 3))
    weight, bias = p.constant([f, c, k, k]), p.constant([f])
    p.insert(
        g.ConvOp.create(
            [x, weight, bias], strides=[stride] * 2, pads=[pad] * 4, dilations=[1, 1], group=1
        )
    )


def gen_pool(draw: st.DrawFn, p: ProgramBuilder) -> None:
    # y = max/average pool 2x2 stride 2, or global average pool (floats only)
    x = p.pick(_rank(4))
    if x is None or not p.is_float:
        return
    if draw(st.booleans()):
        p.insert(g.GlobalAveragePoolOp.create([x]))
        return
    if min(_shape(x)[2:]) < 2:
        return
    cls = draw(st.sampled_from([g.MaxPoolOp, g.AveragePoolOp]))
    extra: dict[str, object] = {} if cls is g.MaxPoolOp else {"count_include_pad": False}
    p.insert(
        cls.create(
            [x],
            kernel_shape=[2, 2],
            strides=[2, 2],
            pads=[0] * 4,
            dilations=[1, 1],
            ceil_mode=False,
            **extra,
        )
    )


GRAPH_OP_GENERATORS: tuple[OpGenerator, ...] = (
    gen_unary,
    gen_binary,
    gen_reduce,
    gen_transpose,
    gen_concat,
    gen_reshape,
    gen_matmul,
    gen_softmax,
    gen_conv,
    gen_pool,
)
"""The default op generators of `graph_programs`."""


@st.composite
def graph_programs(
    draw: st.DrawFn,
    generators: Sequence[OpGenerator] = GRAPH_OP_GENERATORS,
    *,
    element_types: Sequence[Attribute] = (f32, i32),
    rank: int | None = None,
    max_ops: int = 4,
    float_bound: float = DEFAULT_FLOAT_BOUND,
    specials: bool = False,
) -> Program:
    """A random DAG of ops over one input of `rank` (1..4, default random), with inputs.

    Each step draws one of `generators`; a generator that finds nothing to do inserts
    nothing. All ops share one element type drawn from `element_types`.
    """
    element_type = draw(st.sampled_from(list(element_types)))
    rank = rank if rank is not None else draw(st.integers(1, 4))
    shape = [draw(st.integers(1, 3)) for _ in range(rank)]
    p = ProgramBuilder(draw, element_type, np.random.default_rng(draw(st.integers(0, 2**16))))
    p.new_arg(shape)
    for _ in range(draw(st.integers(1, max_ops))):
        draw(st.sampled_from(list(generators)))(draw, p)
    module = p.finish()
    inputs = draw(inputs_for(module, float_bound=float_bound, specials=specials))
    return Program(module, inputs)


# --------------------------------------------------------------------------- tl kernels


def const(b: Builder, value: float | int, ty: Attribute) -> SSAValue:
    attr = FloatAttr(float(value), ty) if ty == f32 else IntegerAttr(int(value), ty)
    return b.insert(arith.ConstantOp(attr)).result


def binary(b: Builder, name: str, x: SSAValue, y: SSAValue) -> SSAValue:
    ty = x.type
    if name == "select":
        pred = "olt" if ty == f32 else "slt"
        cmp = arith.CmpfOp(x, y, pred) if ty == f32 else arith.CmpiOp(x, y, pred)
        c = b.insert(cmp).result
        return b.insert(arith.SelectOp(c, x, y)).result
    if name in ("divsi", "remsi"):  # never divide by zero: y | 1
        y = b.insert(arith.OrIOp(y, const(b, 1, ty))).result
    cls = {
        "add": arith.AddfOp if ty == f32 else arith.AddiOp,
        "sub": arith.SubfOp if ty == f32 else arith.SubiOp,
        "mul": arith.MulfOp if ty == f32 else arith.MuliOp,
        "max": arith.MaximumfOp if ty == f32 else arith.MaxSIOp,
        "min": arith.MinimumfOp if ty == f32 else arith.MinSIOp,
        "maxnum": arith.MaxnumfOp,
        "xor": arith.XOrIOp,
        "and": arith.AndIOp,
        "divsi": arith.DivSIOp,
        "remsi": arith.RemSIOp,
    }[name]
    return b.insert(cls(x, y)).result


FLOAT_OPS = ["add", "sub", "mul", "max", "min", "select"]
INT_OPS = ["add", "sub", "mul", "max", "min", "select", "xor", "and", "divsi", "remsi"]


def random_expr(
    draw: st.DrawFn, b: Builder, leaves: Sequence[SSAValue], ty: Attribute, depth: int
) -> SSAValue:
    if depth == 0 or draw(st.integers(0, 2)) == 0:
        k = draw(st.integers(0, len(leaves)))
        if k < len(leaves):
            return leaves[k]
        return const(b, draw(st.integers(-3, 3)), ty)
    name = draw(st.sampled_from(FLOAT_OPS if ty == f32 else INT_OPS))
    x = random_expr(draw, b, leaves, ty, depth - 1)
    y = random_expr(draw, b, leaves, ty, depth - 1)
    return binary(b, name, x, y)


def index_leaf(b: Builder, iterator: str, ty: Attribute) -> SSAValue:
    """`tl.index iterator` converted to the element type."""
    i = b.insert(IndexOp(iterator)).result
    as_int = b.insert(arith.IndexCastOp(i, i32)).result
    return as_int if ty == i32 else b.insert(arith.SIToFPOp(as_int, f32)).result


KernelFn = Callable[[Sequence[BlockArgument]], KernelOp]


@st.composite
def element_types(draw: st.DrawFn) -> Attribute:
    return draw(st.sampled_from([f32, i32]))


def random_array(draw: st.DrawFn, shape: Sequence[int], ty: Attribute) -> np.ndarray:
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    if ty == f32:
        return rng.standard_normal(tuple(shape)).astype(np.float32)
    if ty == i1:
        return rng.integers(0, 2, tuple(shape)).astype(bool)
    if ty == i64:
        return rng.integers(-5, 6, tuple(shape)).astype(np.int64)
    return rng.integers(-5, 6, tuple(shape)).astype(np.int32)


# --------------------------------------------------------------------------- kernel families

Case = tuple[list[MemRefType], KernelFn]


@st.composite
def elementwise(draw: st.DrawFn) -> Case:
    ty = draw(element_types())
    rank = draw(st.integers(1, 3))
    extents = draw(st.lists(st.integers(1, 4), min_size=rank, max_size=rank))
    names = [f"i{d}" for d in range(rank)]
    out_order = draw(st.permutations(range(rank)))
    specs: list[tuple[list[int], str, float | None]] = []
    for _ in range(draw(st.integers(1, 3))):
        dims = draw(st.lists(st.sampled_from(range(rank)), unique=True, max_size=rank))
        shifted = dims and draw(st.booleans())
        idx = [names[d] for d in dims]
        shape = [extents[d] for d in dims]
        pad = None
        if shifted:
            off = draw(st.integers(-2, 2))
            idx[0] = f"{idx[0]} + {off}" if off >= 0 else f"{idx[0]} - {-off}"
            pad = draw(st.integers(-2, 2))
        specs.append((shape, ", ".join(idx), pad))
    out_shape = [extents[d] for d in out_order]
    out_index = [names[d] for d in out_order]
    if draw(st.booleans()):  # not injective: pairs of points update one element, in order
        out_index[0] = f"{out_index[0]} floordiv 2"
        out_shape[0] = (out_shape[0] + 1) // 2
    init = draw(st.sampled_from([None, 0, 3]))
    types = [MemRefType(ty, s) for s, _, _ in specs] + [MemRefType(ty, out_shape)]
    use_current = draw(st.booleans())
    use_index = draw(st.booleans())

    def make(args: Sequence[BlockArgument]) -> KernelOp:
        def body(b: Builder, vals: Sequence[BlockArgument]) -> SSAValue:
            leaves = list(vals[: len(specs)])
            if use_index:
                leaves.append(index_leaf(b, draw(st.sampled_from(names)), ty))
            e = random_expr(draw, b, leaves, ty, 3)
            if use_current:  # update the current value: c op e
                return binary(b, draw(st.sampled_from(["add", "max", "sub"])), vals[-1], e)
            return e

        return build_kernel(
            "ew",
            [(n, e, "parallel") for n, e in zip(names, extents)],
            inputs=[(a, idx, pad) for a, (_, idx, pad) in zip(args, specs)],
            outputs=[(args[len(specs)], ", ".join(out_index), init)],
            body=body,
        )

    return types, make


@st.composite
def matmul_like(draw: st.DrawFn) -> Case:
    ty = draw(element_types())
    m, n, k = (draw(st.integers(1, 4)) for _ in range(3))
    order = draw(
        st.permutations([("m", m, "parallel"), ("n", n, "parallel"), ("k", k, "reduction")])
    )
    a_t, b_t, c_t = (draw(st.booleans()) for _ in range(3))
    init = draw(st.sampled_from([None, 0, 2]))
    types = [
        MemRefType(ty, [k, m] if a_t else [m, k]),
        MemRefType(ty, [n, k] if b_t else [k, n]),
        MemRefType(ty, [n, m] if c_t else [m, n]),
    ]
    swap = draw(st.booleans())

    def make(args: Sequence[BlockArgument]) -> KernelOp:
        def body(b: Builder, vals: Sequence[BlockArgument]) -> SSAValue:
            p = binary(b, "mul", vals[0], vals[1])
            return binary(b, "add", p, vals[2]) if swap else binary(b, "add", vals[2], p)

        return build_kernel(
            "mm",
            order,
            inputs=[(args[0], "k, m" if a_t else "m, k"), (args[1], "n, k" if b_t else "k, n")],
            outputs=[(args[2], "n, m" if c_t else "m, n", init)],
            body=body,
        )

    return types, make


@st.composite
def conv_like(draw: st.DrawFn) -> Case:
    """out[f, o] (+)= x[c, o * stride + kk * dilation - pad] * w[f, c, kk], guarded."""
    ty = draw(element_types())
    f, c, kk, o = (draw(st.integers(1, 3)) for _ in range(4))
    stride, dilation, pad = (
        draw(st.integers(1, 2)),
        draw(st.integers(1, 2)),
        draw(st.integers(0, 2)),
    )
    length = draw(st.integers(1, 8))
    pad_value = draw(st.sampled_from([0, 1]))
    init = draw(st.sampled_from([None, 0]))
    types = [MemRefType(ty, [c, length]), MemRefType(ty, [f, c, kk]), MemRefType(ty, [f, o])]
    x_index = f"c, o * {stride} + kk * {dilation} - {pad}"

    def make(args: Sequence[BlockArgument]) -> KernelOp:
        return build_kernel(
            "conv",
            [
                ("f", f, "parallel"),
                ("o", o, "parallel"),
                ("c", c, "reduction"),
                ("kk", kk, "reduction"),
            ],
            inputs=[(args[0], x_index, pad_value), (args[1], "f, c, kk")],
            outputs=[(args[2], "f, o", init)],
            body=lambda b, v: binary(b, "add", v[2], binary(b, "mul", v[0], v[1])),
        )

    return types, make


@st.composite
def reduction(draw: st.DrawFn) -> Case:
    ty = draw(element_types())
    rank = draw(st.integers(1, 3))
    extents = draw(st.lists(st.integers(1, 4), min_size=rank, max_size=rank))
    reduced = set(draw(st.lists(st.sampled_from(range(rank)), unique=True, min_size=1)))
    names = [f"r{d}" if d in reduced else f"p{d}" for d in range(rank)]
    order = draw(st.permutations(range(rank)))
    kept = [d for d in range(rank) if d not in reduced]
    combiner = draw(
        st.sampled_from(
            ["add", "mul", "max", "min", "maxnum", "smooth"]
            if ty == f32
            else ["add", "mul", "max", "min", "xor", "smooth"]
        )
    )
    init = draw(st.sampled_from([None, 1]))
    types = [MemRefType(ty, extents), MemRefType(ty, [extents[d] for d in kept])]
    current_first = draw(st.booleans())

    def make(args: Sequence[BlockArgument]) -> KernelOp:
        def body(b: Builder, v: Sequence[BlockArgument]) -> SSAValue:
            e = random_expr(draw, b, [v[0]], ty, 1)
            if combiner == "smooth":  # c * 2 + e: no combiner, reduction points in order
                scaled = binary(b, "mul", v[1], const(b, 2, ty))
                return binary(b, "add", scaled, e)
            pair = (v[1], e) if current_first else (e, v[1])
            return binary(b, combiner, *pair)

        return build_kernel(
            "reduce",
            [(names[d], extents[d], "reduction" if d in reduced else "parallel") for d in order],
            inputs=[(args[0], ", ".join(names))],
            outputs=[(args[1], ", ".join(names[d] for d in kept), init)],
            body=body,
        )

    return types, make


@st.composite
def argmax(draw: st.DrawFn) -> Case:
    rows, cols = draw(st.integers(1, 4)), draw(st.integers(1, 5))
    types = [MemRefType(f32, [rows, cols]), MemRefType(f32, [rows]), MemRefType(i64, [rows])]

    def make(args: Sequence[BlockArgument]) -> KernelOp:
        def body(b: Builder, v: Sequence[BlockArgument]) -> list[SSAValue]:
            j = b.insert(arith.IndexCastOp(b.insert(IndexOp("j")).result, i64)).result
            gt = b.insert(arith.CmpfOp(v[0], v[1], "ogt")).result
            return [
                b.insert(arith.SelectOp(gt, v[0], v[1])).result,
                b.insert(arith.SelectOp(gt, j, v[2])).result,
            ]

        return build_kernel(
            "argmax",
            [("i", rows, "parallel"), ("j", cols, "reduction")],
            inputs=[(args[0], "i, j")],
            outputs=[(args[1], "i", float("-inf")), (args[2], "i", 0)],
            body=body,
        )

    return types, make


FAMILIES = [elementwise(), matmul_like(), conv_like(), reduction(), argmax()]


class KernelCase:
    """A generated module and its inputs; shown as textual IR when a property fails."""

    def __init__(self, module: ModuleOp, arrays: list[np.ndarray]) -> None:
        self.module = module
        self.arrays = arrays

    @property
    def inputs(self) -> list[np.ndarray]:
        """The same arrays as `arrays` (the name `Program` uses)."""
        return self.arrays

    def __repr__(self) -> str:
        return f"{ir_text(self.module)}\n{format_inputs(self.arrays)}"


@st.composite
def kernel_modules(draw: st.DrawFn) -> KernelCase:
    types, make = draw(st.one_of(FAMILIES))
    f = func.FuncOp("f", (list(types), []))
    builder = Builder(InsertPoint.at_end(f.body.block))
    builder.insert(make(f.body.block.args))
    builder.insert(func.ReturnOp())
    module = ModuleOp([f])
    arrays = [random_array(draw, t.get_shape(), t.element_type) for t in types]
    return KernelCase(module, arrays)
