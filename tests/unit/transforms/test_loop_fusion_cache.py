"""Producer / consumer fusion (`reverse_compute_at`), cache-write and tile-level pack
(`cache_read` at a loop) preserve semantics: random kernels (and random two-kernel
modules: matmul / conv / reduction / elementwise / argmax followed by an elementwise
epilogue) are lowered, tiled by random split / reorder steps, transformed, and
interpreted before and after. A rejected request must leave the IR unchanged."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
from hypothesis import event, given, note
from hypothesis import strategies as st
from xdsl.builder import Builder, InsertPoint
from xdsl.dialects import func
from xdsl.dialects.builtin import ArrayAttr, MemRefType, ModuleOp, UnitAttr
from xdsl.ir import BlockArgument, SSAValue
from xdsl.passes import ModulePass

from mlc.dialects.tl import BlockOp, KernelOp, build_kernel
from mlc.interpreters.tl import run_buffers
from mlc.parser.mlir import parse_module
from mlc.registry import make_context
from mlc.testing.coverage import covers
from mlc.testing.schedules import try_step
from mlc.testing.strategies import (
    FAMILIES,
    KernelCase,
    binary,
    kernel_modules,
    random_array,
    random_expr,
)
from mlc.tests.unit.lowering.test_tl_lowering import assert_same
from mlc.transforms.loops import (
    Schedule,
    ScheduleError,
    TlCacheReadPass,
    TlCacheWritePass,
    TlComputeAtPass,
    TlReverseComputeAtPass,
    TlSplitPass,
)
from mlc.transforms.loops.common import block_loops, dims_of, find_block, loop_name

# --------------------------------------------------------------------------- two-kernel modules


@st.composite
def producer_consumer(draw: st.DrawFn) -> KernelCase:
    """A random producer kernel writing T followed by an elementwise kernel "epi" reading
    T (permuted, perhaps with a broadcast extra input) and writing D."""
    types, make = draw(st.one_of(FAMILIES))
    if not types[-1].get_shape() and draw(st.sampled_from([True] * 3 + [False])):
        # a reduction of every dim writes a scalar T, and no loop of its nest can take the
        # epilogue (a near miss): three in four of these give way to another producer
        types, make = draw(st.one_of(FAMILIES))
    t_ty = types[-1]
    shape = list(t_ty.get_shape())
    rank = len(shape)
    ety = t_ty.element_type
    names = [f"e{d}" for d in range(rank)]
    order = draw(st.permutations(range(rank)))  # iterator order
    t_index = draw(st.permutations(range(rank)))  # T dim i is iterator t_index[i]
    ext = [0] * rank
    for i, d in enumerate(t_index):
        ext[d] = shape[i]
    extra_dims = draw(st.lists(st.sampled_from(range(rank)), unique=True)) if rank else []
    with_extra = draw(st.booleans())
    d_order = draw(st.permutations(range(rank)))
    init = draw(st.sampled_from([None, 0]))
    use_current = draw(st.booleans())
    x_ty = MemRefType(ety, [ext[d] for d in extra_dims])
    d_ty = MemRefType(ety, [ext[d] for d in d_order])
    all_types = [*types, *([x_ty] if with_extra else []), d_ty]

    def make_epi(args: Sequence[BlockArgument]) -> KernelOp:
        ins: list[tuple[SSAValue, str]] = [(args[0], ", ".join(names[d] for d in t_index))]
        if with_extra:
            ins.append((args[1], ", ".join(names[d] for d in extra_dims)))

        def body(b: Builder, vals: Sequence[BlockArgument]) -> SSAValue:
            e = random_expr(draw, b, list(vals[:-1]), ety, 2)
            if use_current:
                return binary(b, draw(st.sampled_from(["add", "max"])), vals[-1], e)
            return binary(b, "max", vals[0], e)

        return build_kernel(
            "epi",
            [(names[d], ext[d], "parallel") for d in order],
            inputs=ins,
            outputs=[(args[-1], ", ".join(names[d] for d in d_order), init)],
            body=body,
        )

    f = func.FuncOp("f", (all_types, []))
    args = f.body.block.args
    builder = Builder(InsertPoint.at_end(f.body.block))
    builder.insert(make(args[: len(types)]))
    builder.insert(make_epi([args[len(types) - 1], *args[len(types) :]]))
    builder.insert(func.ReturnOp())
    arrays = [random_array(draw, t.get_shape(), t.element_type) for t in all_types]
    return KernelCase(ModuleOp([f]), arrays)


@st.composite
def producer_for_consumer(draw: st.DrawFn, fill_output: bool = False) -> KernelCase:
    """A random kernel (matmul / conv / reduction / elementwise / argmax) one of whose
    inputs T is first computed by an elementwise kernel "pro" from X (perhaps permuted,
    broadcast or with an init). With `fill_output`, T is the kernel's output instead
    (a bias fill it accumulates into, where it has no init of its own)."""
    types, make = draw(st.one_of(FAMILIES))
    t_pos = len(types) - 1 if fill_output else draw(st.integers(0, len(types) - 2))
    t_ty = types[t_pos]
    shape = list(t_ty.get_shape())
    rank = len(shape)
    ety = t_ty.element_type
    names = [f"p{d}" for d in range(rank)]
    order = draw(st.permutations(range(rank)))
    x_dims = draw(st.lists(st.sampled_from(range(rank)), unique=True)) if rank else []
    init = draw(st.sampled_from([None, 1]))
    use_current = init is not None and draw(st.booleans())
    x_ty = MemRefType(ety, [shape[d] for d in x_dims])

    def make_pro(x: SSAValue, t: SSAValue) -> KernelOp:
        def body(b: Builder, vals: Sequence[BlockArgument]) -> SSAValue:
            e = random_expr(draw, b, [vals[0]], ety, 2)
            return binary(b, "add", vals[-1], e) if use_current else e

        return build_kernel(
            "pro",
            [(names[d], shape[d], "parallel") for d in order],
            inputs=[(x, ", ".join(names[d] for d in x_dims))],
            outputs=[(t, ", ".join(names), init)],
            body=body,
        )

    all_types = [*types, x_ty]
    f = func.FuncOp("f", (all_types, []))
    args = f.body.block.args
    builder = Builder(InsertPoint.at_end(f.body.block))
    builder.insert(make_pro(args[-1], args[t_pos]))
    consumer = builder.insert(make(args[: len(types)]))
    if fill_output and draw(st.sampled_from([True] * 3 + [False])):
        # mostly accumulating into the fill (no init of its own), as a conv after its bias
        consumer.properties["inits"] = ArrayAttr([UnitAttr()] * len(consumer.outputs))
    builder.insert(func.ReturnOp())
    arrays = [random_array(draw, t.get_shape(), t.element_type) for t in all_types]
    return KernelCase(ModuleOp([f]), arrays)


def labels(module: ModuleOp) -> list[str]:
    return [op.label.data for op in module.walk() if isinstance(op, KernelOp)]


def tile_randomly(data: st.DataObject, sch: Schedule, steps: int) -> None:
    for _ in range(data.draw(st.integers(0, steps))):
        try_step(data.draw, sch, data.draw(st.sampled_from(["split", "reorder", "split"])))


def attempt(sch: Schedule, what: str, request: Callable[[], object]) -> bool:
    before = str(sch.root)
    try:
        request()
    except ScheduleError as e:
        note(f"rejected {what}: {e}")
        event(f"{what} rejected")
        assert str(sch.root) == before, "a rejected request changed the IR"
        return False
    event(f"{what} applied")
    return True


def attempt_with_pass(
    sch: Schedule, what: str, request: Callable[[], object], registered: ModulePass
) -> bool:
    """`attempt(sch, what, request)`, and the registered pass doing the same step on a
    copy of the module as it was: the same IR when the step applies, the same refusal
    when it does not (so the property covers the class mlc-opt runs, not only the
    `Schedule` method behind it)."""
    copy = sch.root.clone()
    applied = attempt(sch, what, request)
    if applied:
        registered.apply(make_context(), copy)
        assert str(copy) == str(sch.root), f"{registered.name} differs from Schedule.{what}"
    else:
        try:
            registered.apply(make_context(), copy)
        except ScheduleError:
            pass
        else:
            raise AssertionError(f"{registered.name} applied what Schedule.{what} refused")
    return applied


def _complete_after(sch: Schedule, label: str) -> list[str]:
    """The loops around block `label`, outermost first, up to the first one that binds no
    iterator of it or a reduction iterator: after an iteration of one of them, the block
    has finished the output points of that iteration."""
    block = find_block(sch.root, label)
    reduction = set(block.reduction_dims)
    out: list[str] = []
    for f in block_loops(block):
        dims = dims_of(block, f.induction_var)
        if not dims or dims & reduction:
            break
        out.append(f"{label}/{loop_name(f)}")
    return out


def _loop_option(loop: str) -> str:
    """`kernel/i0.o` -> `i0.o`: a loop as the passes' `loop` / `at` option names it."""
    return loop.split("/", 1)[1]


def check(sch: Schedule, case: KernelCase, original: str, before: list[np.ndarray]) -> None:
    note(f"schedule:\n{sch.text()}")
    note(f"after:\n{sch.root}")
    sch.root.verify()
    assert_same(before, run_buffers(sch.root, *case.arrays))
    # the recorded schedule replays on a fresh module to the same IR
    fresh = parse_module(make_context(), original, "fresh")
    Schedule(fresh).replay(sch.text())
    assert str(fresh) == str(sch.root)


# --------------------------------------------------------------------------- properties


@covers("tl-reverse-compute-at")
@given(case=producer_consumer(), data=st.data())
def test_reverse_compute_at_preserves_semantics(case: KernelCase, data: st.DataObject) -> None:
    module = case.module
    module.verify()
    original = str(module)
    before = run_buffers(module, *case.arrays)
    producer, consumer = labels(module)
    sch = Schedule(module)
    sch.lower(producer, keep_inits=data.draw(st.booleans()))
    # an init nest of the consumer (keep_inits false) between the two nests blocks the
    # move: in a quarter of the cases
    sch.lower(consumer, keep_inits=data.draw(st.sampled_from([True] * 3 + [False])))
    tile_randomly(data, sch, 3)
    loops = sch.get_loops(producer)
    if loops:
        # mostly a loop the consumer can move into (the outer loops binding parallel
        # iterators of the producer), else any loop: reduction loops and loops outside
        # them are refused
        movable = _complete_after(sch, producer)
        pool = movable if movable and data.draw(st.sampled_from([True] * 4 + [False])) else loops
        loop = data.draw(st.sampled_from(pool))
        registered = TlReverseComputeAtPass(
            kernel=consumer, producer=producer, loop=_loop_option(loop)
        )
        attempt_with_pass(
            sch, "reverse_compute_at", lambda: sch.reverse_compute_at(consumer, loop), registered
        )
    check(sch, case, original, before)


def _compute_at_randomly(case: KernelCase, data: st.DataObject, complete_loops: bool) -> None:
    """Lower "pro" and its consumer, tile randomly, move "pro" into a loop of the
    consumer's nest (with `complete_loops`, mostly one after whose iterations a tile of the
    consumer's output is complete) and check the semantics and the replay."""
    module = case.module
    module.verify()
    original = str(module)
    before = run_buffers(module, *case.arrays)
    producer, consumer = labels(module)
    sch = Schedule(module)
    sch.lower(producer, keep_inits=data.draw(st.booleans()))
    sch.lower(consumer, keep_inits=data.draw(st.booleans()))
    tile_randomly(data, sch, 3)
    loops = sch.get_loops(consumer)
    if loops:
        movable = _complete_after(sch, consumer) if complete_loops else []
        pool = movable if movable and data.draw(st.sampled_from([True] * 3 + [False])) else loops
        loop = data.draw(st.sampled_from(pool))
        registered = TlComputeAtPass(kernel=producer, consumer=consumer, loop=_loop_option(loop))
        attempt_with_pass(sch, "compute_at", lambda: sch.compute_at(producer, loop), registered)
    check(sch, case, original, before)


@covers("tl-compute-at")
@given(case=producer_for_consumer(), data=st.data())
def test_compute_at_preserves_semantics(case: KernelCase, data: st.DataObject) -> None:
    _compute_at_randomly(case, data, complete_loops=False)


@covers("tl-compute-at")
@given(case=producer_for_consumer(fill_output=True), data=st.data())
def test_compute_at_of_a_fill_preserves_semantics(case: KernelCase, data: st.DataObject) -> None:
    """A fill of the buffer a kernel accumulates into, moved into the kernel's tiles:
    mostly at a loop binding output iterators only (after each of its iterations a tile
    is complete), else any loop (one with a reduction loop outside is refused)."""
    _compute_at_randomly(case, data, complete_loops=True)


@covers("tl-cache-write")
@given(case=kernel_modules(), keep_inits=st.booleans(), data=st.data())
def test_cache_write_preserves_semantics(
    case: KernelCase, keep_inits: bool, data: st.DataObject
) -> None:
    module = case.module
    original = str(module)
    before = run_buffers(module, *case.arrays)
    (label,) = labels(module)
    sch = Schedule(module)
    sch.lower(label, keep_inits=keep_inits)
    tile_randomly(data, sch, 3)
    block = next(b for b in module.walk() if isinstance(b, BlockOp) and b.label.data == label)
    index = data.draw(st.integers(0, len(block.outputs) - 1))
    loops = sch.get_loops(label)
    at = data.draw(st.none() | st.sampled_from(loops)) if loops else None
    registered = TlCacheWritePass(kernel=label, operand=index, at=_loop_option(at) if at else "")
    attempt_with_pass(sch, "cache_write", lambda: sch.cache_write(label, index, at), registered)
    check(sch, case, original, before)


@covers("tl-cache-read")
@given(case=kernel_modules(), keep_inits=st.booleans(), data=st.data())
def test_tile_pack_preserves_semantics(
    case: KernelCase, keep_inits: bool, data: st.DataObject
) -> None:
    module = case.module
    original = str(module)
    before = run_buffers(module, *case.arrays)
    (label,) = labels(module)
    sch = Schedule(module)
    sch.lower(label, keep_inits=keep_inits)
    tile_randomly(data, sch, 3)
    block = next(b for b in module.walk() if isinstance(b, BlockOp) and b.label.data == label)
    loops = sch.get_loops(label)
    if block.inputs and loops:
        index = data.draw(st.integers(0, len(block.inputs) - 1))
        rank = len(block.buffer_types[index].get_shape())
        layout = data.draw(st.none() | st.permutations(range(rank)))
        at = data.draw(st.sampled_from(loops))
        attempt(sch, "pack", lambda: sch.cache_read(label, index, at, layout))
        if data.draw(st.booleans()):  # and a register tile for the output
            at = data.draw(st.sampled_from(sch.get_loops(label)))
            attempt(sch, "cache_write", lambda: sch.cache_write(label, 0, at))
    check(sch, case, original, before)


# --------------------------------------------------------------------------- examples

MM_RELU = """
func.func @f(%A: memref<5x2xf32>, %B: memref<2x3xf32>, %C: memref<5x3xf32>, %D: memref<3x5xf32>) {
  tl.kernel "mm" iterators(m: 5 parallel, n: 3 parallel, k: 2 reduction) ins(%A[m, k] : memref<5x2xf32>, %B[k, n] : memref<2x3xf32>) outs(%C[m, n] init 0.0 : memref<5x3xf32>) {
  ^bb0(%a: f32, %b: f32, %c: f32):
    %p = arith.mulf %a, %b : f32
    %s = arith.addf %c, %p : f32
    tl.yield %s : f32
  }
  tl.kernel "relu" iterators(j: 3 parallel, i: 5 parallel) ins(%C[i, j] : memref<5x3xf32>) outs(%D[j, i] : memref<3x5xf32>) {
  ^bb0(%x: f32, %d: f32):
    %z = arith.constant 0.0 : f32
    %r = arith.maximumf %x, %z : f32
    tl.yield %r : f32
  }
  func.return
}
"""


def mm_relu_arrays() -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    return [rng.standard_normal(s).astype(np.float32) for s in [(5, 2), (2, 3), (5, 3), (3, 5)]]


def mm_relu(keep_inits: bool = False) -> Schedule:
    sch = Schedule(parse_module(make_context(), MM_RELU, "mm_relu"))
    sch.lower("mm", keep_inits)
    sch.lower("relu")
    return sch


def test_epilogue_fused_into_output_loop_with_register_tile_and_pack() -> None:
    sch = mm_relu()
    expected = run_buffers(sch.root, *mm_relu_arrays())
    sch.split("mm/m", 2)
    sch.reorder("mm/m.o", "mm/n", "mm/m.i", "mm/k")
    sch.reverse_compute_at("relu", "mm/n")
    sch.cache_write("mm", 0, "mm/m.i")
    sch.cache_read("mm", 1, "mm/m.i", [1, 0])
    sch.root.verify()
    text = str(sch.root)
    # the epilogue runs per (m.o, n) tile, clipped like the producer
    assert "i = %m.o * 2 + %m.i_1) where(i < 5)" in text, text
    assert 'tl.block "mm_store"' in text and 'tl.block "mm_load"' in text
    assert "%B_local = memref.alloc() : memref<1x2xf32>" in text
    assert_same(expected, run_buffers(sch.root, *mm_relu_arrays()))


def test_passes() -> None:
    ctx = make_context()
    module = parse_module(ctx, MM_RELU, "mm_relu")
    expected = run_buffers(module, *mm_relu_arrays())
    TlReverseComputeAtPass(kernel="relu", producer="mm", loop="m").apply(ctx, module)
    TlCacheWritePass(kernel="mm", operand=0, at="n").apply(ctx, module)
    TlCacheReadPass(kernel="mm", operand=0, at="k").apply(ctx, module)
    module.verify()
    text = str(module)
    assert "%C_local = memref.alloc() : memref<1x3xf32>" in text
    assert "%A_local = memref.alloc() : memref<1x2xf32>" in text
    assert_same(expected, run_buffers(module, *mm_relu_arrays()))


def test_tile_pack_copies_only_the_tile() -> None:
    sch = mm_relu()
    sch.split("mm/k", 1)
    sch.reorder("mm/k.o", "mm/m", "mm/n", "mm/k.i")
    expected = run_buffers(sch.root, *mm_relu_arrays())
    sch.cache_read("mm", 1, "mm/m", [1, 0])
    text = str(sch.root)
    assert "%B_local = memref.alloc() : memref<3x1xf32>" in text, text
    assert "ins(%B[o0 + t0, t1] pad 0.000000e+00" in text, text
    assert_same(expected, run_buffers(sch.root, *mm_relu_arrays()))


ACT_MM = """
func.func @f(%X: memref<5x2xf32>, %A: memref<5x2xf32>, %B: memref<2x3xf32>, %C: memref<5x3xf32>) {
  tl.kernel "act" iterators(k: 2 parallel, i: 5 parallel) ins(%X[i, k] : memref<5x2xf32>) outs(%A[i, k] : memref<5x2xf32>) {
  ^bb0(%x: f32, %a: f32):
    %z = arith.constant 0.0 : f32
    %r = arith.maximumf %x, %z : f32
    tl.yield %r : f32
  }
  tl.kernel "mm" iterators(m: 5 parallel, n: 3 parallel, k: 2 reduction) ins(%A[m, k] : memref<5x2xf32>, %B[k, n] : memref<2x3xf32>) outs(%C[m, n] init 0.0 : memref<5x3xf32>) {
  ^bb0(%a: f32, %b: f32, %c: f32):
    %p = arith.mulf %a, %b : f32
    %s = arith.addf %c, %p : f32
    tl.yield %s : f32
  }
  func.return
}
"""


def act_mm() -> Schedule:
    sch = Schedule(parse_module(make_context(), ACT_MM, "act_mm"))
    sch.lower("act")
    sch.lower("mm")
    return sch


def test_prologue_computed_at_the_consumer_row_loop() -> None:
    sch = act_mm()
    arrays = [a.copy() for a in mm_relu_arrays()]
    arrays = [arrays[0], arrays[0].copy(), arrays[1], arrays[2]]
    expected = run_buffers(sch.root, *arrays)
    sch.split("mm/m", 2)
    sch.compute_at("act", "mm/m.i")
    sch.root.verify()
    text = str(sch.root)
    # one row of the activation per row of the matmul, clipped like the consumer
    assert "at(k = %k, i = %m.o * 2 + %m.i) where(i < 5)" in text, text
    assert_same(expected, run_buffers(sch.root, *arrays))
    assert sch.text().splitlines()[-1] == "compute_at act mm/m.i"
    # the pass does the same
    ctx = make_context()
    module = parse_module(ctx, ACT_MM, "act_mm")
    TlSplitPass(kernel="mm", loop="m", factor=2).apply(ctx, module)
    TlComputeAtPass(kernel="act", consumer="mm", loop="m.i").apply(ctx, module)
    assert str(module) == text


# --------------------------------------------------------------------------- rejections

REJECTIONS: list[tuple[Callable[[Schedule], object], str]] = [
    (
        lambda s: s.reverse_compute_at("relu", "mm/k"),
        "cannot move tl.block \"relu\" into loop 'mm/k': loop 'mm/k' binds a reduction "
        'iterator of "mm", so its output is not complete after an iteration',
    ),
    (
        lambda s: (s.reorder("mm/k", "mm/m"), s.reverse_compute_at("relu", "mm/m")),
        "loop 'mm/k' binds a reduction iterator",
    ),
    (
        lambda s: s.reverse_compute_at("mm", "relu/i"),
        'no tl.block inside it writes a buffer "mm" reads',
    ),
    (
        lambda s: s.reverse_compute_at("relu", "relu/i"),
        "it is already inside it",
    ),
    (
        lambda s: s.compute_at("mm", "relu/i"),
        "cannot compute tl.block \"mm\" at loop 'relu/i': it must be elementwise",
    ),
    (
        lambda s: s.compute_at("relu", "mm/m"),
        "cannot compute tl.block \"relu\" at loop 'mm/m': 0 tl.blocks inside it read its "
        "output; expected one",
    ),
    (lambda s: s.cache_write("mm", 1), 'cannot cache output #1 of tl.block "mm": it has 1'),
    (
        lambda s: s.cache_write("mm", 0, "relu/i"),
        "cannot cache-write at loop 'relu/i': it does not enclose \"mm\"",
    ),
    (
        lambda s: (s.parallel("mm/m"), s.cache_write("mm", 0, "mm/n")),
        "cannot cache output #0 of \"mm\" inside parallel loop 'mm/m'",
    ),
    (
        lambda s: (s.parallel("mm/m"), s.cache_read("mm", 0, "mm/n")),
        "cannot cache input #0 of \"mm\" inside parallel loop 'mm/m'",
    ),
    (lambda s: s.cache_read("mm", 0, "mm/n", [1, 1]), "not a permutation"),
    (
        lambda s: s.cache_read("mm", 0, "relu/i"),
        "cannot cache at loop 'relu/i': it does not enclose \"mm\"",
    ),
]


def test_illegal_requests_are_rejected() -> None:
    for request, message in REJECTIONS:
        sch = mm_relu()
        try:
            request(sch)
        except ScheduleError as e:
            assert message in str(e), (message, str(e))
        else:
            raise AssertionError(f"not rejected: {message}")


def test_rejected_requests_leave_the_ir_unchanged() -> None:
    sch = mm_relu()
    before = str(sch.root)
    for request in [
        lambda: sch.reverse_compute_at("relu", "mm/k"),
        lambda: sch.cache_write("mm", 3),
    ]:
        try:
            request()
        except ScheduleError:
            pass
        assert str(sch.root) == before


def test_conflicts_between_the_nests_are_rejected() -> None:
    # the consumer's own init nest writes D between the nests: moving it earlier would
    # let the init overwrite the epilogue's result
    text = MM_RELU.replace("outs(%D[j, i] :", "outs(%D[j, i] init 1.0 :")
    sch = Schedule(parse_module(make_context(), text, "x"))
    sch.lower("mm")
    sch.lower("relu")
    try:
        sch.reverse_compute_at("relu", "mm/n")
    except ScheduleError as e:
        assert 'tl.block "relu_init" between the nests uses a buffer "relu" reads or writes' in (
            str(e)
        )
    else:
        raise AssertionError("not rejected")
    # a block inside the nest that accesses the output of cache_write
    sch = mm_relu(keep_inits=False)
    sch.reverse_compute_at("relu", "mm/m")
    try:
        sch.cache_write("mm", 0, "mm/m")
    except ScheduleError as e:
        assert 'tl.block "relu" also accesses output #0 of "mm" inside the nest' in str(e)
    else:
        raise AssertionError("not rejected")
    # compute_at: a producer reading its output's current value is not idempotent
    text = ACT_MM.replace("%r = arith.maximumf %x, %z", "%r = arith.maximumf %x, %a")
    sch = Schedule(parse_module(make_context(), text, "x"))
    sch.lower("act")
    sch.lower("mm")
    try:
        sch.compute_at("act", "mm/m")
    except ScheduleError as e:
        assert "it reads the current value of its output, so recomputing it is not" in str(e)
    else:
        raise AssertionError("not rejected")
    # compute_at: the consumer's init nest writes nothing the producer uses: allowed; a
    # parallel loop not indexing the produced buffer would recompute it in each iteration
    sch = act_mm()
    sch.reorder("mm/n", "mm/m")
    sch.parallel("mm/n")
    try:
        sch.compute_at("act", "mm/m")
    except ScheduleError as e:
        assert "parallel loop 'mm/n' would recompute the same elements" in str(e)
    else:
        raise AssertionError("not rejected")
    # a non-elementwise consumer
    text = MM_RELU.replace("ins(%C[i, j] :", "ins(%C[i, 0] :")
    sch = Schedule(parse_module(make_context(), text, "x"))
    sch.lower("mm")
    sch.lower("relu")
    try:
        sch.reverse_compute_at("relu", "mm/m")
    except ScheduleError as e:
        assert 'it must be elementwise over the output of "mm"' in str(e)
    else:
        raise AssertionError("not rejected")
