"""`tl-rfactor`: a reduction along a contiguous axis split into lanes of partials and a
final reduction keeps its semantics (exactly for integers and min / max, within rounding
for float sums and products), interpreted and compiled; the default pipeline applies it
where every reader of the reduction axis is contiguous, and not to a matmul."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, note, settings
from hypothesis import strategies as st

import mlc
from mlc.dialects.tl import KernelOp
from mlc.interpreters.tl import run_buffers
from mlc.lowering.graph_to_tl import ConvertGraphToTlPass
from mlc.parser.mlir import parse_module
from mlc.targets.compiled import compile_model
from mlc.testing.coverage import covers
from mlc.transforms.loops.common import ScheduleError
from mlc.transforms.loops.default_schedule import CpuDefaultSchedule, apply_default_schedules
from mlc.transforms.loops.rfactor import (
    RfactorPass,
    rfactor_contiguous_reductions,
    rfactor_matrix_vector,
)

REDUCTION = """
func.func @f(%x: memref<{r}x{c}x{t}>, %s: memref<{r}x{t}>, %y: memref<{r}x{t}>) {{
  tl.kernel "red" iterators(i: {r} parallel, j: {c} reduction)
      ins(%x[i, j] : memref<{r}x{c}x{t}>, %s[i] : memref<{r}x{t}>)
      outs(%y[i] init {init} : memref<{r}x{t}>) {{
  ^bb0(%a: {t}, %b: {t}, %acc: {t}):
    {prefix}
    %n = {op} %acc, %v : {t}
    tl.yield %n : {t}
  }}
  func.return
}}
"""

#: (op, element type, init, exact)
COMBINERS = [
    ("arith.addf", "f32", "0.0", False),
    ("arith.mulf", "f32", "1.0", False),
    ("arith.maximumf", "f32", "0xFF800000", True),
    ("arith.maxnumf", "f32", "0xFF800000", True),
    ("arith.minimumf", "f32", "0x7F800000", True),
    ("arith.minnumf", "f32", "0x7F800000", True),
    ("arith.addi", "i32", "0", True),
    ("arith.muli", "i32", "1", True),
    ("arith.maxsi", "i32", "-2147483648", True),
    ("arith.minui", "i32", "-1", True),
    ("arith.xori", "i32", "0", True),
]
PREFIX = {
    "f32": [
        "%v = arith.subf %a, %b : f32",
        "%e = arith.mulf %a, %b : f32\n    %v = math.exp %e : f32",
    ],
    "i32": ["%v = arith.subi %a, %b : i32", "%v = arith.muli %a, %b : i32"],
}


def _arrays(t: str, r: int, c: int, rng: np.random.Generator, mul: bool) -> list[np.ndarray]:
    if t == "f32":  # products stay near 1: factors in [0.9, 1.1]
        lo, hi = (0.9, 1.1) if mul else (-2.0, 2.0)
        offset = 0.0 if mul else rng.choice([-3.0, 0.0, 3.0])  # rows of one sign, or mixed
        x = (rng.uniform(lo, hi, (r, c)) + offset).astype(np.float32)
        s = rng.uniform(-0.05, 0.05, (r,)).astype(np.float32)
        return [x, s, np.zeros(r, np.float32)]
    offset = rng.choice([-3000, 0, 3000])  # all negative, mixed, all positive rows
    x = (rng.integers(-1000, 1000, (r, c)) + offset).astype(np.int32)
    return [x, rng.integers(-5, 5, (r,)).astype(np.int32), np.zeros(r, np.int32)]


def _same(got: list[np.ndarray], want: list[np.ndarray], exact: bool) -> None:
    for g, w in zip(got, want, strict=True):
        if exact or w.dtype.kind != "f":
            np.testing.assert_array_equal(g, w)
        else:
            np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-6)


@covers("tl-rfactor")
@given(
    st.sampled_from(COMBINERS),
    st.integers(0, 1),
    st.integers(1, 3),
    st.sampled_from([2, 4, 8, 16]),
    st.integers(2, 6),
    st.integers(0, 2**32 - 1),
    st.booleans(),
)
def test_rfactor_preserves_semantics(
    combiner: tuple[str, str, str, bool],
    prefix: int,
    r: int,
    lanes: int,
    k: int,
    seed: int,
    outer: bool,
) -> None:
    op, t, init, exact = combiner
    body = PREFIX[t][prefix if op != "arith.mulf" else 0]
    text = REDUCTION.format(r=r, c=lanes * k, t=t, init=init, op=op, prefix=body)
    module = parse_module(mlc.context(), text)
    arrays = _arrays(t, r, lanes * k, np.random.default_rng(seed), op == "arith.mulf")
    # and the same data shifted to rows of one sign: a wrong identity for the partials
    # (0 for a max of negative numbers) shows there, whatever the draw
    shift = 0.0 if op == "arith.mulf" else (3.0 if t == "f32" else 3000)
    inputs = [arrays] + [
        [(arrays[0] + sign * shift).astype(arrays[0].dtype), *arrays[1:]] for sign in (-1, 1)
    ]
    wants = [run_buffers(module, *a) for a in inputs]
    RfactorPass(lanes=lanes, kernel="red", iterator="j", outer=outer).apply(mlc.context(), module)
    module.verify()
    note(str(module))
    assert [k.label.data for k in module.walk() if isinstance(k, KernelOp)] == ["red_rf", "red"]
    for a, want in zip(inputs, wants, strict=True):
        _same(run_buffers(module, *a), want, exact)
    want = wants[0]
    apply_default_schedules(module, CpuDefaultSchedule(vector_bits=512))
    # natively exp is libmvec's (within 4 ulp of numpy's): exact only without it
    _same(compile_model(module).run_buffers(*arrays), want, exact and "exp" not in body)


@covers("tl-rfactor")
@given(
    st.sampled_from(COMBINERS),
    st.sampled_from([2, 4, 8]),
    st.sampled_from([2, 4]),
    st.integers(1, 6),
    st.integers(0, 2**32 - 1),
)
def test_accumulator_partials_combine_a_vector_at_a_time(
    combiner: tuple[str, str, str, bool], lanes: int, accumulators: int, m: int, seed: int
) -> None:
    """`tl-rfactor{accumulators=A}` over rows of `lanes * A * m`: at least four steps of
    `lanes * A` take the wide split, and its `lanes * A` partials, when they are four
    vectors or more, a second split (`red_lanes`: a vector add per accumulator, then
    `lanes` scalars); shorter rows a split by `lanes` or none. Interpreted, the same
    result."""
    op, t, init, exact = combiner
    c = lanes * accumulators * m
    module = parse_module(
        mlc.context(), REDUCTION.format(r=2, c=c, t=t, init=init, op=op, prefix=PREFIX[t][0])
    )
    arrays = _arrays(t, 2, c, np.random.default_rng(seed), op == "arith.mulf")
    want = run_buffers(module, *arrays)
    RfactorPass(lanes=lanes, accumulators=accumulators).apply(mlc.context(), module)
    module.verify()
    note(str(module))
    labels = [k.label.data for k in module.walk() if isinstance(k, KernelOp)]
    if m >= 4:
        expected = ["red_rf", "red_lanes", "red"] if accumulators >= 4 else ["red_rf", "red"]
    else:
        expected = ["red_rf", "red"] if c >= 4 * lanes else ["red"]
    assert labels == expected
    _same(run_buffers(module, *arrays), want, exact)


def test_rfactor_rejects_what_it_cannot_split() -> None:
    text = REDUCTION.format(
        r=2, c=24, t="f32", init="0.0", op="arith.addf", prefix="%v = arith.subf %a, %b : f32"
    )
    with pytest.raises(ScheduleError, match="cannot be split along 'j' by 16"):
        RfactorPass(lanes=16, kernel="red", iterator="j").apply(
            mlc.context(), parse_module(mlc.context(), text)
        )
    with pytest.raises(ScheduleError, match="cannot be split along 'i'"):
        RfactorPass(lanes=4, kernel="red", iterator="i").apply(
            mlc.context(), parse_module(mlc.context(), text)
        )
    with pytest.raises(ScheduleError, match='no tl.kernel "nope"'):
        RfactorPass(kernel="nope").apply(mlc.context(), parse_module(mlc.context(), text))


MATMUL = """
func.func @f(%a: memref<8x128xf32>, %b: memref<128x32xf32>, %c: memref<8x32xf32>) {
  tl.kernel "mm" iterators(m: 8 parallel, n: 32 parallel, k: 128 reduction)
      ins(%a[m, k] : memref<8x128xf32>, %b[k, n] : memref<128x32xf32>)
      outs(%c[m, n] init 0.0 : memref<8x32xf32>) {
  ^bb0(%x: f32, %y: f32, %acc: f32):
    %p = arith.mulf %x, %y : f32
    %s = arith.addf %acc, %p : f32
    tl.yield %s : f32
  }
  func.return
}
"""


def test_the_default_pipeline_picks_contiguous_reductions_only() -> None:
    rows = parse_module(
        mlc.context(),
        REDUCTION.format(
            r=2, c=64, t="f32", init="0.0", op="arith.addf", prefix="%v = arith.subf %a, %b : f32"
        ),
    )
    assert rfactor_contiguous_reductions(rows, 16) == 1  # 64 = 4 x 16 steps along j
    short = parse_module(
        mlc.context(),
        REDUCTION.format(
            r=2, c=32, t="f32", init="0.0", op="arith.addf", prefix="%v = arith.subf %a, %b : f32"
        ),
    )
    assert rfactor_contiguous_reductions(short, 16) == 0  # fewer than 4 vectors
    assert rfactor_contiguous_reductions(parse_module(mlc.context(), MATMUL), 16) == 0


def test_partials_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    import mlc.transforms.loops.rfactor as rf

    text = REDUCTION.format(
        r=4, c=64, t="f32", init="0.0", op="arith.addf", prefix="%v = arith.subf %a, %b : f32"
    )
    monkeypatch.setattr(rf, "MAX_PARTIALS", 4 * 16 - 1)  # 4 rows x 16 lanes do not fit
    assert rfactor_contiguous_reductions(parse_module(mlc.context(), text), 16) == 0
    monkeypatch.setattr(rf, "MAX_PARTIALS", 4 * 16)
    assert rfactor_contiguous_reductions(parse_module(mlc.context(), text), 16) == 1


def test_compiled_softmax_and_layer_norm_match_onnxruntime() -> None:
    """End to end through `mlc.compile` (rfactor + vector math in the default pipeline)."""
    import onnxruntime as ort
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    x = rng.standard_normal((6, 256)).astype(np.float32)
    for op, extra in (("Softmax", []), ("LayerNormalization", ["g", "b"])):
        inits = [
            numpy_helper.from_array(rng.standard_normal(256).astype(np.float32), name)
            for name in extra
        ]
        graph = helper.make_graph(
            [helper.make_node(op, ["x", *extra], ["y"], axis=-1)],
            "g",
            [helper.make_tensor_value_info("x", TensorProto.FLOAT, [6, 256])],
            [helper.make_tensor_value_info("y", TensorProto.FLOAT, [6, 256])],
            inits,
        )
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
        model.ir_version = 8
        want = ort.InferenceSession(model.SerializeToString()).run(None, {"x": x})[0]
        tl = mlc.import_onnx(model)
        ConvertGraphToTlPass().apply(mlc.context(), tl)
        assert rfactor_contiguous_reductions(tl, 16) >= 2  # softmax: max, sum; norm: 2 sums
        np.testing.assert_allclose(mlc.compile(model)(x)[0], want, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("combiner", COMBINERS, ids=lambda c: c[0])
@pytest.mark.parametrize("sign", [-1, 1])
def test_partials_start_from_the_identity(combiner: tuple[str, str, str, bool], sign: int) -> None:
    """Rows all of one sign: a wrong identity for the partials (0 for a max of negative
    numbers, say) shows in the result."""
    op, t, init, exact = combiner
    text = REDUCTION.format(r=2, c=12, t=t, init=init, op=op, prefix=PREFIX[t][0])
    module = parse_module(mlc.context(), text)
    rng = np.random.default_rng(1)
    if t == "f32":
        x = (sign * rng.uniform(0.5, 1.5, (2, 12))).astype(np.float32)
        arrays = [x, np.zeros(2, np.float32), np.zeros(2, np.float32)]
    else:
        x = (sign * rng.integers(1, 50, (2, 12))).astype(np.int32)
        arrays = [x, np.zeros(2, np.int32), np.zeros(2, np.int32)]
    want = run_buffers(module, *arrays)
    RfactorPass(lanes=4, kernel="red", iterator="j").apply(mlc.context(), module)
    _same(run_buffers(module, *arrays), want, exact)


def test_a_matrix_vector_product_splits_into_row_blocks() -> None:
    """A batch-1 Gemm (one long reduction, one output index) is split into contiguous
    parts of its reduction, the part iterator first; compiled, it equals numpy."""
    from mlc.benchmarks.models import mlp

    case = mlp(1, (2048, 64, 8))
    from mlc.targets.pipeline import MlcCpuPipelinePass

    module = mlc.import_onnx(case.model)
    for p in MlcCpuPipelinePass().graph_passes():  # B pretransposed: read along n
        p.apply(mlc.context(), module)
    RfactorPass(lanes=8).apply(mlc.context(), module)
    partials = [
        k for k in module.walk() if isinstance(k, KernelOp) and k.label.data.endswith("_rf")
    ]
    assert partials, str(module)
    first = partials[0].iterator_list[0]
    assert first.label.endswith("_p") and first.size == 8 and not first.is_reduction
    (got,) = compile_model(case.model)(*case.inputs)
    (want,) = case.numpy_fn(*case.inputs)
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)


@covers("tl-rfactor")
@given(
    op=st.sampled_from(["GlobalAveragePool", "ReduceMax", "ReduceSum"]),
    channels=st.integers(1, 3),
    width=st.sampled_from([4, 6, 12, 20, 28]),
    rows=st.integers(1, 8),
    seed=st.integers(0, 2**16),
)
def test_two_contiguous_reduction_axes_are_merged_and_split(
    op: str, channels: int, width: int, rows: int, seed: int
) -> None:
    """A reduction over the last two axes of [1, C, H, W] (a global pool) where W alone
    is not a multiple of the lanes but H * W is: the two axes become one contiguous
    reduction and are split into partials; interpreted and compiled, the results stay
    those of the reference (within rounding for sums)."""
    step = 8 // math.gcd(width, 8)  # H a multiple of it: H * W a multiple of 8
    height = step * max(rows, -(-32 // (step * width)))  # and at least 4 vectors
    from onnx import TensorProto, helper

    if op == "GlobalAveragePool":
        node = helper.make_node(op, ["x"], ["y"])
    elif op == "ReduceMax":
        node = helper.make_node(op, ["x"], ["y"], axes=[2, 3], keepdims=1)
    else:
        node = helper.make_node(op, ["x", "axes"], ["y"], keepdims=1)
    graph = helper.make_graph(
        [node],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, channels, height, width])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        [helper.make_tensor("axes", TensorProto.INT64, [2], [2, 3])] if op == "ReduceSum" else [],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    x = np.random.default_rng(seed).uniform(-2, 2, (1, channels, height, width)).astype(np.float32)
    module = mlc.import_onnx(model)
    ConvertGraphToTlPass().apply(mlc.context(), module)
    (want,) = mlc.interpret(module, x)
    rfactor_contiguous_reductions(module, 8, 4)
    module.verify()
    note(str(module))
    split = [k for k in module.walk() if isinstance(k, KernelOp) and k.label.data.endswith("_rf")]
    assert len(split) == 1 and split[0].iterator_list[-1].size in (8, 32)
    (got,) = mlc.interpret(module, x)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
    apply_default_schedules(module, CpuDefaultSchedule(vector_bits=256))
    (native,) = compile_model(module)(x)
    np.testing.assert_allclose(native, want, rtol=1e-5, atol=1e-5)


def test_axes_that_are_not_contiguous_together_are_not_merged() -> None:
    """A reduction over axes 1 and 3 of [1, C, H, W] (not adjacent in memory) keeps its
    iterators: nothing is merged or split."""
    from onnx import TensorProto, helper

    from mlc.transforms.loops.rfactor import merge_contiguous_reductions

    node = helper.make_node("ReduceMax", ["x"], ["y"], axes=[1, 3], keepdims=1)
    graph = helper.make_graph(
        [node],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4, 3, 12])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
    )
    module = mlc.import_onnx(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]))
    ConvertGraphToTlPass().apply(mlc.context(), module)
    (kernel,) = [k for k in module.walk() if isinstance(k, KernelOp)]
    assert merge_contiguous_reductions(kernel) is None
    assert rfactor_contiguous_reductions(module, 8, 4) == 0


@covers("tl-rfactor")
@settings(max_examples=8)
@given(reduction=st.sampled_from([1024, 1026, 1028, 1032, 1100]), seed=st.integers(0, 2**16))
def test_matrix_vector_parts_divide_the_reduction(reduction: int, seed: int) -> None:
    """A batch-1 Gemm over a reduction of 1024+ elements splits into the most parts of
    8, 4 and 2 that divide it (1028: 4, 1026: 2); the split product interprets to the
    same result."""
    from mlc.benchmarks.models import mlp
    from mlc.targets.pipeline import MlcCpuPipelinePass

    case = mlp(1, (reduction, 8, 4))
    module = mlc.import_onnx(case.model)
    for p in MlcCpuPipelinePass().graph_passes():
        p.apply(mlc.context(), module)
    x = np.random.default_rng(seed).uniform(-1, 1, (1, reduction)).astype(np.float32)
    want = mlc.interpret(module, x)
    rfactor_matrix_vector(module)
    module.verify()
    parts = [k for k in module.walk() if isinstance(k, KernelOp) and k.label.data.endswith("_rf")]
    expected = next(p for p in (8, 4, 2) if reduction % p == 0)
    assert parts and parts[0].iterator_list[0].size == expected
    for got, w in zip(mlc.interpret(module, x), want, strict=True):
        np.testing.assert_allclose(got, w, rtol=1e-5, atol=1e-5)
