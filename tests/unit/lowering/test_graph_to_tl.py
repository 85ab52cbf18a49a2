"""`convert-graph-to-tl` (`mlc.lowering.graph_to_tl`) and the texpr -> tl translation
(`mlc.lowering.texpr_to_tl`): interpreting before and after lowering agrees."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, note
from hypothesis import strategies as st
from xdsl.builder import Builder, InsertPoint
from xdsl.dialects import func
from xdsl.dialects.builtin import MemRefType, ModuleOp, TensorType, f32, i32, i64
from xdsl.ir import Attribute, SSAValue

import mlc
from mlc.dialects import graph as g
from mlc.dialects.tl import KernelOp
from mlc.interpreters.tl import run_buffers
from mlc.lowering.graph_to_tl import ConvertGraphToTlPass, GraphToTlError
from mlc.lowering.texpr_to_tl import TranslationError, element_type, emit_definition
from mlc.lowering.tl_kernel_to_loops import ConvertTlKernelToLoopsPass
from mlc.testing.coverage import covers
from mlc.texpr import evaluate, infer_sizes, parse, specialize

EXAMPLES = Path(__file__).resolve().parents[3] / "examples"


def lower(module: ModuleOp) -> ModuleOp:
    """A verified, lowered copy of ``module``."""
    low = module.clone()
    ConvertGraphToTlPass().apply(mlc.context(), low)
    low.verify()
    return low


def assert_same(got: np.ndarray, want: np.ndarray) -> None:
    assert got.dtype == want.dtype and got.shape == want.shape
    if np.issubdtype(want.dtype, np.floating):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)
    else:
        np.testing.assert_array_equal(got, want)


def check_lowering(module: ModuleOp, *inputs: np.ndarray) -> ModuleOp:
    want = mlc.interpret(module, *inputs)
    low = lower(module)
    got = mlc.interpret(low, *inputs)
    assert len(got) == len(want)
    for a, b in zip(got, want, strict=True):
        assert_same(np.asarray(a), np.asarray(b))
    return low


def graph_function(
    arg_types: list[Attribute], build: Callable[[Builder, list[SSAValue]], list[SSAValue]]
) -> ModuleOp:
    """``func.func @main`` over tensor arguments whose body ``build`` inserts."""
    f = func.FuncOp("main", (arg_types, []))
    b = Builder(InsertPoint.at_end(f.body.block))
    results = build(b, list(f.body.block.args))
    b.insert(func.ReturnOp(*results))
    f.function_type = func.FunctionType.from_lists(arg_types, [r.type for r in results])
    module = ModuleOp([f])
    module.verify()
    return module


def t(shape: list[int], dtype: Attribute = f32) -> TensorType:
    return TensorType(dtype, shape)


# -- texpr -> tl on hand-written definitions ----------------------------------------------


def run_definition(text: str, **arrays: np.ndarray) -> None:
    defn = parse(text)
    defn = specialize(defn, infer_sizes(defn, {k: v.shape for k, v in arrays.items()}, {}))
    decls = [*defn.inputs, *defn.outputs]
    types = [MemRefType(element_type(d.dtype), [s.const_value() for s in d.shape]) for d in decls]
    f = func.FuncOp("main", (types, []))
    b = Builder(InsertPoint.at_end(f.body.block))
    emit_definition(b, defn, {d.name: a for d, a in zip(decls, f.body.block.args, strict=True)})
    b.insert(func.ReturnOp())
    module = ModuleOp([f])
    module.verify()
    want = evaluate(defn, **arrays)
    outs = [np.zeros_like(w) for w in want.values()]
    got = run_buffers(module, *arrays.values(), *outs)[len(arrays) :]
    for a, w in zip(got, want.values(), strict=True):
        assert_same(a, w)


RNG = np.random.default_rng(0)
A = RNG.standard_normal((3, 4)).astype(np.float32)
B = RNG.standard_normal((4, 5)).astype(np.float32)

DEFINITIONS: dict[str, tuple[str, dict[str, np.ndarray]]] = {
    "matmul": (
        "mm(A: f32[M, K], B: f32[K, N]) -> C: f32[M, N] { C[m, n] += A[m, k] * B[k, n] }",
        {"A": A, "B": B},
    ),
    "conv_padded": (
        """conv(X: f32[N, C, H, W], K: f32[F, C, R, S]) -> Y: f32[N, F, H, W] {
        Y[n, f, h, w] += (X[n, c, h + r - 1, w + s - 1] if in bounds else 0) * K[f, c, r, s] }""",
        {
            "X": RNG.standard_normal((1, 2, 5, 5)).astype(np.float32),
            "K": RNG.standard_normal((3, 2, 3, 3)).astype(np.float32),
        },
    ),
    "softmax_locals": (
        """sm(X: f32[M, N]) -> Y: f32[M, N] {
        mx[m] max= X[m, n]
        e[m, n] = exp(X[m, n] - mx[m])
        s[m] += e[m, n]
        Y[m, n] = e[m, n] / s[m] }""",
        {"X": A},
    ),
    "guard_expression": (
        "g(X: f32[N]) -> Y: f32[N] { Y[i] = (X[i - 1] * X[i + 1] if in bounds else -1.0) + f32(i) }",
        {"X": np.arange(6, dtype=np.float32)},
    ),
    "div_mod_index": (
        "r(X: i32[2, 3]) -> Y: i32[6] { Y[i] = X[i / 3, i % 3] }",
        {"X": np.arange(6, dtype=np.int32).reshape(2, 3)},
    ),
    "argmax_select": (
        """am(X: f32[M, N]) -> Y: i64[M] {
        best[m] max= X[m, n]
        Y[m] min= select((X[m, n]) == best[m], n, 1000) }""",
        {"X": A},
    ),
    "shifted_range": (
        "sl(X: f32[N]) -> Y: f32[N] { Y[i] = X[i] * 2 where i in 2..N }",
        {"X": np.arange(6, dtype=np.float32)},
    ),
    "casts_and_logic": (
        """c(X: f32[N], I: i32[N]) -> (Y: i64[N], Z: bool[N]) {
        Y[i] = i64(X[i]) + i64(I[i]) / 3 - i64(I[i]) % 4
        Z[i] = not (X[i] > 0.5 and I[i] != 2) or bool(I[i]) }""",
        {
            "X": RNG.standard_normal(7).astype(np.float32) * 4,
            "I": np.arange(-3, 4, dtype=np.int32),
        },
    ),
    "math_functions": (
        """m(X: f32[N]) -> Y: f32[N] {
        Y[i] = sigmoid(X[i]) + tanh(X[i]) * erf(X[i]) - abs(X[i]) + pow(abs(X[i]), 1.5)
               + min(floor(X[i]), ceil(X[i])) + sqrt(abs(X[i])) + X[i] % 0.75 }""",
        {"X": RNG.standard_normal(9).astype(np.float32) * 3},
    ),
    "precise_functions": (
        """p(X: f32[N]) -> (R: f32[N], E: f32[N], L: f32[N]) {
        R[i] = round(X[i]); E[i] = expm1(X[i]); L[i] = log1p(abs(X[i])) }""",
        {"X": np.asarray([-0.3, -0.5, 0.5, 1.5, 2.5, -2.5, 1e-10, -1e-10, -0.0], np.float32)},
    ),
    "inverse_and_hyperbolic_functions": (
        """h(X: f32[N]) -> (T: f32[N], S: f32[N], C: f32[N], A: f32[N], H: f32[N]) {
        T[i] = tan(X[i]) + atan(X[i]); S[i] = asin(X[i] / 4) + acos(X[i] / 4)
        C[i] = sinh(X[i]) - cosh(X[i]); A[i] = asinh(X[i]) + acosh(abs(X[i]) + 1)
        H[i] = atanh(X[i] / 4) }""",
        {"X": np.asarray([-3.5, -1.0, -0.0, 0.0, 1e-8, 0.5, 2.0, 3.9, np.nan], np.float32)},
    ),
    "bit_functions": (
        """b(X: i8[N], S: i8[N], U: u8[N]) -> (B: i8[N], L: i8[N], R: i8[N], Q: i16[N]) {
        B[i] = bitxor(bitand(X[i], S[i]), bitor(bitnot(X[i]), 5))
        L[i] = shl(X[i], S[i]); R[i] = shr(X[i], S[i]); Q[i] = i16(shr(U[i], u8(S[i]))) }""",
        {
            "X": np.asarray([-128, -5, -1, 0, 1, 64, 127, -7, 3], np.int8),
            "S": np.asarray([1, 9, 8, 7, -1, 1, 0, -128, 3], np.int8),
            "U": np.asarray([255, 128, 1, 0, 7, 64, 200, 3, 9], np.uint8),
        },
    ),
    "float_remainder": (
        "r(X: f32[N], Y: f32[N]) -> Z: f32[N] { Z[i] = X[i] % Y[i] }",
        {
            "X": np.asarray([1.0, -1.0, 1e30, -0.0, np.inf, 5.5, 7.0, np.nan], np.float32),
            "Y": np.asarray([np.inf, -np.inf, 3.1, 2.0, 2.0, 0.0, -2.5, 1.0], np.float32),
        },
    ),
    "int_reductions": (
        """r(X: i32[M, N]) -> (S: i32[M], P: i32[M], L: i32[M]) {
        S[m] += X[m, n]; P[m] *= X[m, n]; L[m] min= X[m, n] }""",
        {"X": RNG.integers(-5, 5, (3, 4)).astype(np.int32)},
    ),
}


@pytest.mark.parametrize("name", sorted(DEFINITIONS))
def test_definition_translation(name: str) -> None:
    text, arrays = DEFINITIONS[name]
    run_definition(text, **arrays)


def test_unsigned_dtypes_are_signless_buffers() -> None:
    # the texpr dtype (u8) carries the signedness into the ops, buffers stay signless
    assert element_type("u8") == element_type("i8")
    with pytest.raises(TranslationError, match="c64"):
        element_type("c64")


# -- graph programs -------------------------------------------------------------------------


def test_mlp_model() -> None:
    module = mlc.import_onnx(EXAMPLES / "mlp.onnx")
    f = next(o for o in module.walk() if isinstance(o, func.FuncOp))
    x = [RNG.standard_normal(ty.get_shape()).astype(np.float32) for ty in f.function_type.inputs]
    low = check_lowering(module, *x)
    assert not any(o.name.startswith("graph.") for o in low.walk())


def test_tiny_resnet_model_and_loops() -> None:
    module = mlc.import_onnx(EXAMPLES / "tiny_resnet.onnx")
    f = next(o for o in module.walk() if isinstance(o, func.FuncOp))
    x = [RNG.standard_normal(ty.get_shape()).astype(np.float32) for ty in f.function_type.inputs]
    low = check_lowering(module, *x)
    # the pipeline `convert-graph-to-tl,convert-tl-kernel-to-loops` (loop form verified
    # only: interpreting it point by point is too slow for a unit test)
    ConvertTlKernelToLoopsPass().apply(mlc.context(), low)
    low.verify()
    assert not any(o.name == "tl.kernel" for o in low.walk())


def test_pipeline_to_loops_small_cnn() -> None:
    w = RNG.standard_normal((2, 1, 3, 3)).astype(np.float32)

    def build(b: Builder, args: list[SSAValue]) -> list[SSAValue]:
        wc = b.insert(g.ConstantOp.from_array(w)).results[0]
        y = b.insert(
            g.ConvOp.create([args[0], wc], strides=[1, 1], pads=[1] * 4, dilations=[1, 1], group=1)
        ).results[0]
        y = b.insert(g.ReluOp.create([y])).results[0]
        return [b.insert(g.GlobalAveragePoolOp.create([y])).results[0]]

    module = graph_function([t([1, 1, 4, 4])], build)
    x = RNG.standard_normal((1, 1, 4, 4)).astype(np.float32)
    low = check_lowering(module, x)
    ConvertTlKernelToLoopsPass().apply(mlc.context(), low)
    low.verify()
    assert_same(np.asarray(mlc.interpret(low, x)[0]), np.asarray(mlc.interpret(module, x)[0]))


def test_calling_convention_copies_arguments_and_duplicates() -> None:
    # returning an argument, and one value twice: each result is its own allocation
    def build(b: Builder, args: list[SSAValue]) -> list[SSAValue]:
        r = b.insert(g.ReluOp.create([args[0]])).results[0]
        return [args[0], r, r]

    module = graph_function([t([2, 3])], build)
    low = check_lowering(module, RNG.standard_normal((2, 3)).astype(np.float32))
    f = next(o for o in low.walk() if isinstance(o, func.FuncOp))
    assert all(isinstance(ty, MemRefType) for ty in f.function_type.inputs)
    assert all(isinstance(ty, MemRefType) for ty in f.function_type.outputs)
    ret = f.body.block.last_op
    assert ret is not None and len(set(ret.operands)) == 3


def test_constants_reshape_gather() -> None:
    table = RNG.standard_normal((5, 4)).astype(np.float32)
    idx = np.array([[4, -1], [0, 2]], dtype=np.int64)

    def build(b: Builder, args: list[SSAValue]) -> list[SSAValue]:
        w = b.insert(g.ConstantOp.from_array(table)).results[0]
        ix = b.insert(g.ConstantOp.from_array(idx)).results[0]
        e = b.insert(g.GatherOp.create([w, ix], axis=0)).results[0]  # 2x2x4
        r = b.insert(g.ReshapeOp.create([e], result_types=[t([4, 4])])).results[0]
        ge = b.insert(g.GatherElementsOp.create([args[0], args[1]], axis=1)).results[0]
        return [b.insert(g.AddOp.create([r, args[2]])).results[0], ge]

    module = graph_function([t([3, 4]), t([3, 2], i64), t([4])], build)
    check_lowering(
        module,
        RNG.standard_normal((3, 4)).astype(np.float32),
        np.array([[0, 3], [-1, 1], [2, 2]], dtype=np.int64),
        RNG.standard_normal(4).astype(np.float32),
    )


def test_unsigned_tensors_lower_to_signless_buffers() -> None:
    from xdsl.dialects.builtin import IntegerType, Signedness, i8

    u8 = IntegerType(8, Signedness.UNSIGNED)
    module = graph_function(
        [t([4], u8)],
        lambda b, a: [
            b.insert(
                g.DivOp.create([b.insert(g.AddOp.create([a[0], a[0]])).results[0], a[0]])
            ).results[0]
        ],
    )
    low = lower(module)
    f = next(o for o in low.walk() if isinstance(o, func.FuncOp))
    assert list(f.function_type.inputs) == [MemRefType(i8, [4])]
    x = np.array([1, 100, 200, 255], np.uint8)
    (got,) = mlc.interpret(low, x.view(np.int8))
    np.testing.assert_array_equal(np.asarray(got).view(np.uint8), (x + x) // x)


def test_unlowerable_op_names_it(monkeypatch: pytest.MonkeyPatch) -> None:
    import mlc.lowering.graph_to_tl as g2t

    monkeypatch.setattr(g2t, "expression_of", lambda op: None)
    module = graph_function(
        [t([2])], lambda b, a: [b.insert(g.AddOp.create([a[0], a[0]])).results[0]]
    )
    with pytest.raises(GraphToTlError, match="graph.add"):
        lower(module)


# -- property: random graph programs ---------------------------------------------------------


@st.composite
def programs(draw: st.DrawFn) -> tuple[ModuleOp, list[np.ndarray]]:
    """A random straight-line graph program over a 4-d input, and inputs for it."""
    is_float = draw(st.booleans())
    dtype, np_dtype = (f32, np.float32) if is_float else (i32, np.int32)
    shape = [draw(st.integers(1, 2)), draw(st.integers(1, 3))]
    shape += [draw(st.integers(2, 5)), draw(st.integers(2, 5))]
    seed = draw(st.integers(0, 2**16))
    rng = np.random.default_rng(seed)
    kinds = ["unary", "binary", "reduce", "transpose", "concat", "reshape", "matmul"]
    kinds += ["gather", "gather_elements"]
    if is_float:
        kinds += ["conv", "pool", "softmax", "global_pool"]
    # now and then an empty dimension, reduced first: the result is the reduction's identity
    empty = draw(st.integers(0, 7)) == 0
    if empty:
        shape[1] = 0
    steps = draw(st.lists(st.sampled_from(kinds), min_size=0 if empty else 1, max_size=4))
    arg_types: list[Attribute] = [t(shape, dtype)]
    inputs = [rng.integers(-4, 5, shape).astype(np_dtype)]

    def data(sh: list[int]) -> np.ndarray:
        if is_float:
            return rng.standard_normal(sh).astype(np_dtype)
        return rng.integers(-3, 4, sh).astype(np_dtype)

    extra: list[np.ndarray] = []
    plan: list[tuple[str, object]] = []
    cur = list(shape)
    # every program starts with zero to two elementwise functions (each function is
    # reached in many examples, not only when a "unary" step is drawn)
    unary_names = ["relu", "neg", "abs"] + (["sigmoid", "tanh", "exp"] if is_float else [])
    plan.append(("unary", draw(st.lists(st.sampled_from(unary_names), max_size=2))))
    if empty:
        plan.append(("reduce", (draw(st.sampled_from(["sum", "max", "min"])), 1)))
        cur[1] = 1
    for kind in steps:
        if kind == "unary":
            names = ["relu", "neg", "abs"] + (["sigmoid", "tanh", "exp"] if is_float else [])
            # a chain of one to three functions: every function is reached often
            plan.append((kind, draw(st.lists(st.sampled_from(names), min_size=1, max_size=3))))
        elif kind == "binary":
            bshape = [d if draw(st.booleans()) else 1 for d in cur]
            extra.append(data(bshape))
            arg_types.append(t(bshape, dtype))
            plan.append(
                (kind, (draw(st.sampled_from(["add", "sub", "mul", "max"])), len(arg_types) - 1))
            )
        elif kind == "reduce":
            axis = draw(st.integers(0, 3))
            plan.append((kind, (draw(st.sampled_from(["sum", "max", "min"])), axis)))
            cur[axis] = 1
        elif kind == "transpose":
            perm = draw(st.permutations(range(4)))
            plan.append((kind, list(perm)))
            cur = [cur[p] for p in perm]
        elif kind == "concat":
            axis = draw(st.integers(0, 3))
            plan.append((kind, axis))
            cur[axis] *= 2
        elif kind == "reshape":
            new = [cur[0], cur[1] * cur[2], 1, cur[3]]
            plan.append((kind, new))
            cur = list(new)
        elif kind == "matmul":
            n = draw(st.integers(1, 3))
            plan.append((kind, data([cur[3], n])))
            cur[3] = n
        elif kind == "conv":
            k = draw(st.sampled_from([1, 3]))
            pad, stride = draw(st.sampled_from([0, k // 2])), draw(st.sampled_from([1, 2]))
            if cur[2] + 2 * pad < k or cur[3] + 2 * pad < k:
                continue
            f = draw(st.integers(1, 3))
            plan.append((kind, (data([f, cur[1], k, k]), data([f]), pad, stride)))
            cur = [
                cur[0],
                f,
                (cur[2] + 2 * pad - k) // stride + 1,
                (cur[3] + 2 * pad - k) // stride + 1,
            ]
        elif kind == "pool":
            if cur[2] < 2 or cur[3] < 2:
                continue
            plan.append((kind, draw(st.sampled_from(["max_pool", "average_pool"]))))
            cur = [cur[0], cur[1], cur[2] // 2, cur[3] // 2]
        elif kind in ("gather", "gather_elements"):
            # indices are a function argument (negative ones count from the end)
            axis = draw(st.integers(0, 3))
            m = draw(st.integers(1, 3))
            ishape = [m] if kind == "gather" else [*cur[:axis], m, *cur[axis + 1 :]]
            d = cur[axis]
            extra.append(rng.integers(-d, d, ishape).astype(np.int64))
            arg_types.append(t(ishape, i64))
            plan.append((kind, (axis, len(arg_types) - 1)))
            cur[axis] = m
        elif kind == "softmax":
            plan.append((kind, draw(st.integers(0, 3))))
        elif kind == "global_pool":
            plan.append((kind, None))
            cur = [cur[0], cur[1], 1, 1]

    def build(b: Builder, args: list[SSAValue]) -> list[SSAValue]:
        x = args[0]

        def ins(op: object) -> SSAValue:
            return b.insert(op).results[0]  # type: ignore[arg-type]

        for kind, p in plan:
            if kind == "unary":
                for name in p:  # type: ignore[union-attr]
                    cls = {
                        "relu": g.ReluOp,
                        "neg": g.NegOp,
                        "abs": g.AbsOp,
                        "sigmoid": g.SigmoidOp,
                        "tanh": g.TanhOp,
                        "exp": g.ExpOp,
                    }[name]
                    x = ins(cls.create([x]))
            elif kind == "binary":
                name, k = p  # type: ignore[misc]
                cls = {"add": g.AddOp, "sub": g.SubOp, "mul": g.MulOp, "max": g.MaxOp}[name]
                x = ins(cls.create([x, args[k]]))
            elif kind == "reduce":
                name, axis = p  # type: ignore[misc]
                cls = {"sum": g.ReduceSumOp, "max": g.ReduceMaxOp, "min": g.ReduceMinOp}[name]
                x = ins(cls.create([x], axes=[axis], keepdims=True))
            elif kind == "gather":
                axis, k = p  # type: ignore[misc]
                x = ins(g.GatherOp.create([x, args[k]], axis=axis))
            elif kind == "gather_elements":
                axis, k = p  # type: ignore[misc]
                x = ins(g.GatherElementsOp.create([x, args[k]], axis=axis))
            elif kind == "transpose":
                x = ins(g.TransposeOp.create([x], perm=p))
            elif kind == "concat":
                x = ins(g.ConcatOp.create([x, x], axis=p))
            elif kind == "reshape":
                x = ins(g.ReshapeOp.create([x], result_types=[t(p, dtype)]))  # type: ignore[arg-type]
            elif kind == "matmul":
                w = ins(g.ConstantOp.from_array(p))  # type: ignore[arg-type]
                x = ins(g.MatMulOp.create([x, w]))
            elif kind == "conv":
                wv, bv, pad, stride = p  # type: ignore[misc]
                w, bias = ins(g.ConstantOp.from_array(wv)), ins(g.ConstantOp.from_array(bv))
                x = ins(
                    g.ConvOp.create(
                        [x, w, bias],
                        strides=[stride] * 2,
                        pads=[pad] * 4,
                        dilations=[1, 1],
                        group=1,
                    )
                )
            elif kind == "pool":
                cls = g.MaxPoolOp if p == "max_pool" else g.AveragePoolOp
                extra_props = {} if p == "max_pool" else {"count_include_pad": False}
                x = ins(
                    cls.create(
                        [x],
                        kernel_shape=[2, 2],
                        strides=[2, 2],
                        pads=[0] * 4,
                        dilations=[1, 1],
                        ceil_mode=False,
                        **extra_props,
                    )
                )
            elif kind == "softmax":
                x = ins(g.SoftmaxOp.create([x], axes=[p]))
            elif kind == "global_pool":
                x = ins(g.GlobalAveragePoolOp.create([x]))
        return [x]

    module = graph_function(arg_types, build)
    return module, [*inputs, *extra]


@covers("convert-graph-to-tl")
@given(programs())
def test_random_programs_keep_semantics(program: tuple[ModuleOp, list[np.ndarray]]) -> None:
    module, inputs = program
    note(str(module))
    low = check_lowering(module, *inputs)
    # schedules name kernels by label: unique within each function
    for f in low.ops:
        labels = [k.label.data for k in f.walk() if isinstance(k, KernelOp)]
        assert len(set(labels)) == len(labels), labels
