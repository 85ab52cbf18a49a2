"""Loop transformations preserve semantics: random kernels from the tl lowering test
(elementwise, matmul in any order, conv, reductions with any combiner, argmax) are lowered,
transformed by random legal schedule steps, and interpreted before and after (exact for
integers, allclose for floats). A rejected step must leave the IR unchanged."""

from __future__ import annotations

import numpy as np
from hypothesis import given, note
from hypothesis import strategies as st
from xdsl.context import Context
from xdsl.passes import ModulePass

from mlc.dialects.tl import ForOp
from mlc.interpreters.tl import run_buffers
from mlc.parser.mlir import parse_module
from mlc.registry import make_context
from mlc.testing.coverage import covers
from mlc.testing.schedules import VERBS, kernel_label, random_schedule, schedules, try_step
from mlc.testing.strategies import KernelCase, kernel_modules
from mlc.tests.unit.lowering.test_tl_lowering import assert_same
from mlc.transforms.loops import (
    Schedule,
    ScheduleError,
    TlApplySchedulePass,
    TlCacheReadPass,
    TlDecomposeReductionPass,
    TlFusePass,
    TlParallelPass,
    TlReorderPass,
    TlSplitPass,
    TlUnrollPass,
    TlVectorizePass,
)
from mlc.transforms.loops.common import find_loop


def lowered(case: KernelCase, keep_inits: bool) -> tuple[Schedule, list[np.ndarray]]:
    module = case.module
    module.verify()
    before = run_buffers(module, *case.arrays)
    sch = Schedule(module)
    sch.lower(kernel_label(module), keep_inits=keep_inits)
    return sch, before


def check(sch: Schedule, case: KernelCase, before: list[np.ndarray]) -> None:
    note(f"schedule:\n{sch.text()}")
    note(f"after:\n{sch.root}")
    sch.root.verify()
    assert_same(before, run_buffers(sch.root, *case.arrays))


def step_pass(verb: str, args: tuple[str, ...]) -> ModulePass:
    """The registered pass doing one recorded `Schedule` step."""

    def label(name: str) -> str:
        return name.rpartition("/")[0]

    def short(name: str) -> str:
        return name.rpartition("/")[2]

    first = args[0]
    if verb == "split":
        return TlSplitPass(kernel=label(first), loop=short(first), factor=int(args[1]))
    if verb == "reorder":
        return TlReorderPass(kernel=label(first), order=",".join(short(n) for n in args))
    if verb == "fuse":
        return TlFusePass(kernel=label(first), outer=short(first), inner=short(args[1]))
    if verb == "parallel":
        return TlParallelPass(kernel=label(first), loop=short(first))
    if verb == "vectorize":
        width = int(args[1]) if len(args) > 1 else 0
        return TlVectorizePass(kernel=label(first), loop=short(first), width=width)
    if verb == "unroll":
        factor = int(args[1]) if len(args) > 1 else 0
        return TlUnrollPass(kernel=label(first), loop=short(first), factor=factor)
    if verb == "decompose_reduction":
        return TlDecomposeReductionPass(kernel=first, loop=short(args[1]))
    assert verb == "cache_read", verb
    at = "" if args[2] == "-" else short(args[2])
    layout = args[3] if len(args) > 3 else ""
    return TlCacheReadPass(kernel=first, operand=int(args[1]), at=at, layout=layout)


def assert_passes_replay(original: str, sch: Schedule) -> None:
    """Each recorded step, done by its registered pass (`tl-split`, ...) on a fresh copy
    of the kernel, gives the same IR as the `Schedule` step did."""
    ctx = make_context()
    fresh = parse_module(ctx, original, "fresh")
    steps = list(sch.steps)
    for i, step in enumerate(steps):
        if step.verb == "lower":
            keep_inits = "keep_inits" in step.args[1:]
            after = steps[i + 1] if i + 1 < len(steps) else None
            if keep_inits and after and after.verb == "decompose_reduction":
                continue  # tl-decompose-reduction lowers a tl.kernel keeping its inits itself
            Schedule(fresh).lower(step.args[0], keep_inits=keep_inits)
        else:
            step_pass(step.verb, step.args).apply(ctx, fresh)
        fresh.verify()
    assert str(fresh) == str(sch.root)


def run_verb(verb: str, data: st.DataObject, case: KernelCase, keep_inits: bool) -> None:
    original = str(case.module)
    sch, before = lowered(case, keep_inits)
    for _ in range(data.draw(st.integers(1, 3))):
        try_step(data.draw, sch, verb)
    check(sch, case, before)
    assert_passes_replay(original, sch)


# --------------------------------------------------------------------------- per transform


@covers("tl-split")
@given(case=kernel_modules(), keep_inits=st.booleans(), data=st.data())
def test_split_preserves_semantics(case: KernelCase, keep_inits: bool, data: st.DataObject) -> None:
    run_verb("split", data, case, keep_inits)


@covers("tl-reorder")
@given(case=kernel_modules(), keep_inits=st.booleans(), data=st.data())
def test_reorder_preserves_semantics(
    case: KernelCase, keep_inits: bool, data: st.DataObject
) -> None:
    run_verb("reorder", data, case, keep_inits)


@covers("tl-fuse")
@given(case=kernel_modules(), keep_inits=st.booleans(), data=st.data())
def test_fuse_preserves_semantics(case: KernelCase, keep_inits: bool, data: st.DataObject) -> None:
    run_verb("fuse", data, case, keep_inits)


@covers("tl-parallel")
@given(case=kernel_modules(), keep_inits=st.booleans(), data=st.data())
def test_parallel_preserves_semantics(
    case: KernelCase, keep_inits: bool, data: st.DataObject
) -> None:
    run_verb("parallel", data, case, keep_inits)


@covers("tl-vectorize")
@given(case=kernel_modules(), keep_inits=st.booleans(), data=st.data())
def test_vectorize_preserves_semantics(
    case: KernelCase, keep_inits: bool, data: st.DataObject
) -> None:
    run_verb("vectorize", data, case, keep_inits)


@covers("tl-unroll")
@given(case=kernel_modules(), keep_inits=st.booleans(), data=st.data())
def test_unroll_preserves_semantics(
    case: KernelCase, keep_inits: bool, data: st.DataObject
) -> None:
    run_verb("unroll", data, case, keep_inits)


@covers("tl-decompose-reduction")
@given(case=kernel_modules(), data=st.data())
def test_decompose_reduction_preserves_semantics(case: KernelCase, data: st.DataObject) -> None:
    run_verb("decompose_reduction", data, case, True)


@covers("tl-cache-read")
@given(case=kernel_modules(), keep_inits=st.booleans(), data=st.data())
def test_cache_read_preserves_semantics(
    case: KernelCase, keep_inits: bool, data: st.DataObject
) -> None:
    run_verb("cache_read", data, case, keep_inits)


# --------------------------------------------------------------------------- combined


@given(case=kernel_modules(), keep_inits=st.booleans(), data=st.data())
def test_random_schedule_preserves_semantics_and_replays(
    case: KernelCase, keep_inits: bool, data: st.DataObject
) -> None:
    original = str(case.module)
    sch, before = lowered(case, keep_inits)
    for _ in range(data.draw(st.integers(1, 6))):
        try_step(data.draw, sch, data.draw(st.sampled_from(VERBS)))
    check(sch, case, before)
    # serialize -> parse -> replay on a fresh module reproduces the IR
    ctx = make_context()
    fresh = parse_module(ctx, original, "fresh")
    replayed = Schedule(fresh)
    replayed.replay(sch.text())
    assert str(fresh) == str(sch.root)
    assert replayed.text() == sch.text()


@covers("tl-apply-schedule")
@given(case=kernel_modules(), data=st.data())
def test_apply_schedule_pass_matches_schedule(case: KernelCase, data: st.DataObject) -> None:
    original = str(case.module)
    sch, _ = lowered(case, data.draw(st.booleans()))
    for _ in range(data.draw(st.integers(1, 4))):
        try_step(data.draw, sch, data.draw(st.sampled_from(VERBS)))
    ctx = make_context()
    fresh = parse_module(ctx, original, "fresh")
    TlApplySchedulePass(text=sch.text().replace("\n", ";")).apply(ctx, fresh)
    assert str(fresh) == str(sch.root)


# --------------------------------------------------------------------------- passes

MATMUL = """
func.func @mm(%A: memref<5x2xi32>, %B: memref<2x3xi32>, %C: memref<5x3xi32>) {
  tl.kernel "mm" iterators(m: 5 parallel, n: 3 parallel, k: 2 reduction) ins(%A[m, k] : memref<5x2xi32>, %B[k, n] : memref<2x3xi32>) outs(%C[m, n] init 1 : memref<5x3xi32>) {
  ^bb0(%a: i32, %b: i32, %c: i32):
    %p = arith.muli %a, %b : i32
    %s = arith.addi %c, %p : i32
    tl.yield %s : i32
  }
  func.return
}
"""


def matmul_arrays() -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    return [
        rng.integers(-5, 6, (5, 2)).astype(np.int32),
        rng.integers(-5, 6, (2, 3)).astype(np.int32),
        np.zeros((5, 3), np.int32),
    ]


def test_passes_pipeline() -> None:
    ctx: Context = make_context()
    module = parse_module(ctx, MATMUL, "mm")
    expected = run_buffers(module, *matmul_arrays())
    for p in [
        TlDecomposeReductionPass(kernel="mm", loop="m"),
        TlSplitPass(kernel="mm", loop="m", factor=2),
        TlReorderPass(kernel="mm", order="m.o,n,k,m.i"),
        TlFusePass(kernel="mm", outer="m.o", inner="n"),
        TlCacheReadPass(kernel="mm", operand=1, layout="1,0"),
        TlParallelPass(kernel="mm", loop="m.o.n"),
        TlVectorizePass(kernel="mm", loop="m.i"),
        TlUnrollPass(kernel="mm", loop="k", factor=2),
    ]:
        p.apply(ctx, module)
        module.verify()
    text = str(module)
    assert "m.o.n = 0 to 9 parallel" in text
    assert "vectorize(2) " in text and "where(m < 5)" in text
    assert_same(expected, run_buffers(module, *matmul_arrays()))
    # the printed IR parses back and the names still resolve
    again = parse_module(ctx, text, "again")
    assert [n.split("/")[1] for n in Schedule(again).get_loops("mm")] == ["m.o.n", "k", "m.i"]


# --------------------------------------------------------------------------- rejections


def fresh(keep_inits: bool = False) -> Schedule:
    module = parse_module(make_context(), MATMUL, "mm")
    sch = Schedule(module)
    sch.lower("mm", keep_inits)
    return sch


REJECTIONS = [
    (lambda s: s.split("mm/m", 0), "cannot split loop 'mm/m' by 0"),
    (lambda s: s.split("mm/m", 6), "the factor must be in [1, 5]"),
    (lambda s: s.split("mm/x", 2), "unknown loop 'mm/x': block \"mm\" has loops m, n, k"),
    (lambda s: s.parallel("mm/k"), "bound to reduction iterator 'k'"),
    (lambda s: s.vectorize("mm/k"), "cannot vectorize loop 'mm/k'"),
    (lambda s: s.vectorize("mm/m", 0), "width must be positive"),
    (lambda s: s.unroll("mm/m", 9), "cannot unroll loop 'mm/m' by 9"),
    (lambda s: s.fuse("mm/m", "mm/k"), "not perfectly nested"),
    (lambda s: s.reorder("mm/m", "mm/m"), "given twice"),
    (lambda s: s.reorder("mm/m", "mm_init/n"), "not nested in one another"),
    (lambda s: s.decompose_reduction("mm", "mm/k"), "has no output init"),
    (lambda s: s.cache_read("mm", 2), "it has 2 inputs"),
    (lambda s: s.cache_read("mm", 0, None, [0, 0]), "not a permutation"),
    (lambda s: s.get_loops("nope"), 'no tl.kernel or tl.block labelled "nope"'),
]


def test_illegal_requests_are_rejected() -> None:
    for request, message in REJECTIONS:
        sch = fresh()
        before = str(sch.root)
        try:
            request(sch)
        except ScheduleError as e:
            assert message in str(e), (message, str(e))
        else:
            raise AssertionError(f"not rejected: {message}")
        assert str(sch.root) == before


def test_dependence_violating_reorders_are_rejected() -> None:
    sch = fresh(keep_inits=True)
    sch.split("mm/k", 1)
    # an init needs the point where k = 0 first: a loop binding m and k is rejected
    sch.reorder("mm/k.o", "mm/m", "mm/n")
    sch.fuse("mm/k.o", "mm/m")
    try:
        sch.reorder("mm/n", "mm/k.o.m")
    except ScheduleError as e:
        assert "cannot reorder loop 'mm/k.o.m'" in str(e)
    else:
        raise AssertionError("not rejected")
    # a non-commutative reduction keeps the order of its reduction loops
    text = MATMUL.replace("arith.addi %c, %p", "arith.subi %p, %c")
    module = parse_module(make_context(), text, "mm")
    s = Schedule(module)
    s.get_loops("mm")
    s.split("mm/k", 1)
    s.reorder("mm/n", "mm/m")  # parallel loops may move
    try:
        s.reorder("mm/k.i", "mm/k.o")
    except ScheduleError as e:
        assert "needs its points in their original order" in str(e)
    else:
        raise AssertionError("not rejected")


def test_non_divisor_split_adds_predicate_or_is_rejected() -> None:
    sch = fresh()
    mo, mi = sch.split("mm/m", 3)
    assert "where(m < 5)" in str(sch.root)
    sch.split(mo, 1)
    try:
        sch.split(mi, 2)  # m.i is not guarded by m < 5: its excess lands in the next tile
    except ScheduleError as e:
        assert "cannot mask them" in str(e)
    else:
        raise AssertionError("not rejected")
    module = parse_module(make_context(), MATMUL, "mm")
    s = Schedule(module)
    s.get_loops("mm")
    s.split("mm/n", 3)
    s.split("mm/m", 5)
    assert isinstance(find_loop(module, "mm/m.i")[1], ForOp)


@given(case=kernel_modules(), data=st.data())
def test_schedules_strategy_draws_valid_replayable_schedules(
    case: KernelCase, data: st.DataObject
) -> None:
    original = str(case.module)
    before = run_buffers(case.module, *case.arrays)
    sch = data.draw(schedules(case, verbs=["split", "reorder", "unroll"], max_steps=3))
    assert str(case.module) == original  # the case is not modified
    assert sch.steps[0].verb == "lower"
    assert {s.verb for s in sch.steps[1:]} <= {"split", "reorder", "unroll"}
    random_schedule(data.draw, sch, max_steps=2, verbs=["parallel", "vectorize"])
    check(sch, case, before)
    assert_passes_replay(original, sch)


def test_a_strided_padded_pool_reads_a_padded_copy_without_bounds_checks() -> None:
    """A 3x3 stride-2 max pool in NCHW reads its input with stride 2 (no contiguous
    vector), so it runs scalar; its padding is materialized once by a vectorized copy
    (no bounds check per load), and the result is the interpreter's."""
    import mlc
    from mlc.lowering.graph_to_tl import ConvertGraphToTlPass
    from mlc.parser.mlir import parse_module
    from mlc.transforms.loops.default_schedule import CpuDefaultSchedule, apply_default_schedules

    t, o = "tensor<1x4x12x12xf32>", "tensor<1x4x6x6xf32>"
    text = f"""func.func @f(%x: {t}) -> {o} {{
      %y = graph.max_pool %x {{kernel_shape = array<i64: 3, 3>, strides = array<i64: 2, 2>, pads = array<i64: 1, 1, 1, 1>, dilations = array<i64: 1, 1>, ceil_mode = false}} : ({t}) -> {o}
      func.return %y : {o}
    }}"""
    module = parse_module(mlc.context(), text)
    ConvertGraphToTlPass().apply(mlc.context(), module)
    schedule = apply_default_schedules(module, CpuDefaultSchedule(vector_bits=256))["max_pool"]
    assert "cache_read max_pool 0 max_pool/n" in schedule
    assert "vectorize max_pool_cache/c3.i 8" in schedule
    x = np.random.default_rng(0).standard_normal((1, 4, 12, 12)).astype(np.float32)
    graph = parse_module(mlc.context(), text)
    np.testing.assert_array_equal(mlc.compile(graph)(x)[0], mlc.interpret(graph, x)[0])
