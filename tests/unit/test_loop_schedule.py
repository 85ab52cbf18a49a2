"""Loop transformations preserve semantics: random kernels from the tl lowering test
(elementwise, matmul in any order, conv, reductions with any combiner, argmax) are lowered,
transformed by random legal schedule steps, and interpreted before and after (exact for
integers, allclose for floats). A rejected step must leave the IR unchanged."""

from __future__ import annotations

import numpy as np
from hypothesis import event, given, note
from hypothesis import strategies as st
from xdsl.context import Context
from xdsl.dialects.builtin import ModuleOp

from mlc.dialects.tl import BlockOp, ForOp, KernelOp
from mlc.interpreters.tl import run_buffers
from mlc.parser.mlir import parse_module
from mlc.testing.coverage import covers
from mlc.tests.unit.test_tl_lowering import (
    KernelCase,
    assert_same,
    kernel_modules,
    tl_context,
)
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

VERBS = [
    "split",
    "reorder",
    "fuse",
    "parallel",
    "vectorize",
    "unroll",
    "decompose_reduction",
    "cache_read",
]


def kernel_label(module: ModuleOp) -> str:
    return next(op.label.data for op in module.walk() if isinstance(op, KernelOp))


def blocks(module: ModuleOp) -> list[BlockOp]:
    return [op for op in module.walk() if isinstance(op, BlockOp)]


def try_step(draw: st.DrawFn, sch: Schedule, verb: str) -> bool:
    """Draw arguments for `verb` from the current IR and apply it; a rejected step must
    leave the IR unchanged. Returns whether it applied."""
    module = sch.root
    candidates = [b for b in blocks(module) if sch.get_loops(b.label.data) or verb == "cache_read"]
    if not candidates:
        return False
    label = draw(st.sampled_from([b.label.data for b in candidates]))
    block = next(b for b in candidates if b.label.data == label)
    loops = sch.get_loops(label)
    before = str(module)
    try:
        if verb == "split":
            loop = draw(st.sampled_from(loops))
            trip = find_loop(module, loop)[1].trip_count
            sch.split(loop, draw(st.integers(1, max(trip, 1))))
        elif verb == "reorder":
            if len(loops) < 2:
                return False
            chosen = draw(st.lists(st.sampled_from(loops), min_size=2, unique=True))
            sch.reorder(*chosen)
        elif verb == "fuse":
            if len(loops) < 2:
                return False
            i = draw(st.integers(0, len(loops) - 2))
            sch.fuse(loops[i], loops[i + 1])
        elif verb == "parallel":
            sch.parallel(draw(st.sampled_from(loops)))
        elif verb == "vectorize":
            loop = draw(st.sampled_from(loops))
            trip = find_loop(module, loop)[1].trip_count
            sch.vectorize(loop, draw(st.none() | st.integers(1, max(trip, 1))))
        elif verb == "unroll":
            loop = draw(st.sampled_from(loops))
            trip = find_loop(module, loop)[1].trip_count
            sch.unroll(loop, draw(st.none() | st.integers(1, max(trip, 1))))
        elif verb == "decompose_reduction":
            sch.decompose_reduction(label, draw(st.sampled_from(loops)))
        else:
            if not block.inputs:
                return False
            index = draw(st.integers(0, len(block.inputs) - 1))
            rank = len(block.buffer_types[index].get_shape())
            layout = draw(st.none() | st.permutations(range(rank)))
            at = draw(st.none() | st.sampled_from(loops)) if loops else None
            sch.cache_read(label, index, at, layout)
    except ScheduleError as e:
        note(f"rejected {verb}: {e}")
        event(f"{verb} rejected")
        assert str(module) == before, "a rejected step changed the IR"
        return False
    module.verify()
    event(f"{verb} applied")
    return True


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


def run_verb(verb: str, data: st.DataObject, case: KernelCase, keep_inits: bool) -> None:
    sch, before = lowered(case, keep_inits)
    for _ in range(data.draw(st.integers(1, 3))):
        try_step(data.draw, sch, verb)
    check(sch, case, before)


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
    ctx = tl_context()
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
    ctx = tl_context()
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
    ctx: Context = tl_context()
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
    module = parse_module(tl_context(), MATMUL, "mm")
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
    module = parse_module(tl_context(), text, "mm")
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
    module = parse_module(tl_context(), MATMUL, "mm")
    s = Schedule(module)
    s.get_loops("mm")
    s.split("mm/n", 3)
    s.split("mm/m", 5)
    assert isinstance(find_loop(module, "mm/m.i")[1], ForOp)
