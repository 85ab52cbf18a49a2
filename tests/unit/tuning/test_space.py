"""The search space: every sampled trace replays to a module with the same semantics."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from xdsl.builder import Builder, InsertPoint
from xdsl.dialects import func
from xdsl.dialects.builtin import ModuleOp

from mlc.interpreters.tl import run_buffers
from mlc.parser.mlir import parse_module
from mlc.registry import make_context
from mlc.testing.strategies import KernelCase, conv_like, elementwise, matmul_like, reduction
from mlc.tests.unit.lowering.test_tl_lowering import assert_same
from mlc.transforms.loops.schedule import Schedule, parse_schedule
from mlc.tuning import space as space_module
from mlc.tuning.space import SearchSpace, validate
from mlc.tuning.task import Task, tasks_in
from mlc.tuning.worker import random_inputs

EPILOGUE = """
func.func @f(%A: memref<3x5xf32>, %B: memref<5x16xf32>, %C: memref<3x16xf32>) {
  tl.kernel "mm" iterators(m: 3 parallel, n: 16 parallel, k: 5 reduction) ins(%A[m, k] : memref<3x5xf32>, %B[k, n] : memref<5x16xf32>) outs(%C[m, n] init 0.0 : memref<3x16xf32>) {
  ^bb0(%a: f32, %b: f32, %c: f32):
    %p = arith.mulf %a, %b : f32
    %s = arith.addf %c, %p : f32
    tl.yield %s : f32
  }
  tl.kernel "mm_relu" iterators(i: 3 parallel, j: 16 parallel) outs(%C[i, j] : memref<3x16xf32>) {
  ^bb0(%c: f32):
    %z = arith.constant 0.0 : f32
    %r = arith.maximumf %c, %z : f32
    tl.yield %r : f32
  }
  func.return
}
"""


def check_trace(task: Task, trace: str, seed: int) -> None:
    """`trace` replayed on the task's module computes what the unscheduled module does."""
    inputs = random_inputs(task.module(), seed)
    expected = run_buffers(task.module(), *inputs)
    scheduled = task.module()
    Schedule(scheduled).replay(trace)
    scheduled.verify()
    try:
        assert_same(expected, run_buffers(scheduled, *inputs))
    except AssertionError as e:
        raise AssertionError(f"{e}\ntask:\n{task.module_text}\ntrace:\n{trace}") from None


@st.composite
def small_kernels(draw: st.DrawFn) -> KernelCase:
    """A function around one random small kernel: a matmul, a conv, an elementwise kernel
    or a reduction (`mlc.testing.strategies`' families)."""
    types, make = draw(st.one_of(matmul_like(), conv_like(), elementwise(), reduction()))
    f = func.FuncOp("f", (list(types), []))
    builder = Builder(InsertPoint.at_end(f.body.block))
    builder.insert(make(f.body.block.args))
    builder.insert(func.ReturnOp())
    return KernelCase(ModuleOp([f]), [])  # (shown as IR text when a property fails)


@settings(max_examples=30)
@given(case=small_kernels(), seed=st.integers(0, 2**16), vector_bits=st.sampled_from([64, 256]))
def test_sampled_traces_preserve_semantics(case: KernelCase, seed: int, vector_bits: int) -> None:
    """The default candidate and sampled ones replay, verify and compute what the
    unscheduled kernel computes (the interpreter on both); a rejected one has a reason.
    (64-bit vectors: 2 lanes, so the tiny extents are split by the vector width too.)"""
    (task,) = tasks_in(case.module)
    space = SearchSpace(task, vector_bits=vector_bits)
    default = space.default()
    rng = random.Random(seed)
    children = []
    if default.valid:
        check_trace(task, default.trace, seed)
        children.append(space.neighbour(default, rng))  # a mutation of the trace itself
    else:  # (the default schedule rejects a kernel whose output is not injective)
        assert default.error.startswith("the default schedule fails")
    sampled = [space.sample(rng) for _ in range(3)]
    # the evolutionary search's children: mutations and a crossover of sampled ones
    children += [space.mutate(sampled[0], rng), space.crossover(sampled[1], sampled[2], rng)]
    for candidate in [*sampled, *children]:
        if candidate.valid:
            check_trace(task, candidate.trace, seed)
        else:
            assert candidate.error


def test_epilogue_candidates_preserve_semantics() -> None:
    """A kernel with an in-place epilogue (relu): sampled traces move it into the tile
    loop (reverse_compute_at) or schedule it alone, accumulate in a local tile
    (cache_write) or not; all keep the results."""
    module = parse_module(make_context(), EPILOGUE)
    (task,) = tasks_in(module)
    assert task.labels == ("mm", "mm_relu")
    space = SearchSpace(task)
    rng = random.Random(7)
    verbs: set[str] = set()
    valid = 0
    for _ in range(16):
        candidate = space.sample(rng)
        if not candidate.valid:
            continue
        valid += 1
        verbs |= {s.verb for s in parse_schedule(candidate.trace)}
        check_trace(task, candidate.trace, 1)
    assert valid >= 8
    assert {"reverse_compute_at", "split", "vectorize", "reorder", "cache_write"} <= verbs


def test_an_invalid_trace_is_rejected_with_its_reason() -> None:
    module = parse_module(make_context(), EPILOGUE)
    (task,) = tasks_in(module)
    reason = validate(task.module(), "lower t0\nsplit t0/nowhere 4\n")
    assert "nowhere" in reason
    assert validate(task.module(), "lower t0\nparallel t0/k\n").startswith("does not replay")


def test_decisions_replay_and_mutations_are_neighbours() -> None:
    """A candidate's decisions replay to its trace whatever the random source; a
    mutation re-draws a few of them: most children differ from the parent, and what
    they keep of its decisions is all but the re-drawn ones (a child whose structure
    changed may read fewer)."""
    module = parse_module(make_context(), EPILOGUE)
    (task,) = tasks_in(module)
    space = SearchSpace(task)
    rng = random.Random(11)
    parent = next(c for c in (space.sample(rng) for _ in range(20)) if c.valid)
    assert parent.decisions and all(0.0 <= u < 1.0 for u in parent.decisions)
    assert space.sample(random.Random(99), parent.decisions).trace == parent.trace
    children = [space.mutate(parent, rng) for _ in range(12)]
    assert sum(c.trace != parent.trace for c in children) >= 6
    for c in children:
        kept = sum(a == b for a, b in zip(c.decisions, parent.decisions))
        assert kept >= min(len(c.decisions), len(parent.decisions)) - 3
    other = next(c for c in (space.sample(rng) for _ in range(20)) if c.valid)
    child = space.crossover(parent, other, rng)
    # the child read a tape of the parent's first numbers and the other's after them
    cut = next(i for i, (a, b) in enumerate(zip(child.decisions, parent.decisions)) if a != b)
    read = min(len(child.decisions), len(other.decisions))
    assert child.decisions[cut:read] == other.decisions[cut:read]


def test_sampling_is_seeded() -> None:
    module = parse_module(make_context(), EPILOGUE)
    (task,) = tasks_in(module)
    space = SearchSpace(task)
    first = [space.sample(random.Random(3)).trace for _ in range(2)]
    assert first[0] == first[1]
    assert space.default().trace.startswith("lower t0")


def test_a_large_cached_tile_is_rejected(monkeypatch: pytest.MonkeyPatch) -> None:
    """A local output tile past `MAX_CACHED_TILE` elements (an imperfect split caches the
    whole dimension, copied in and out around every reduction) makes the candidate
    invalid with that reason, before any measurement."""
    module = parse_module(make_context(), EPILOGUE)
    (task,) = tasks_in(module)
    space = SearchSpace(task)
    monkeypatch.setattr(space_module, "MAX_CACHED_TILE", 1)
    rng = random.Random(7)
    cached = [c for c in (space.sample(rng) for _ in range(16)) if "cache_write" in c.trace]
    assert cached
    assert all("elements (at most 1" in c.error for c in cached)


def test_trace_mutations_are_neighbours_of_the_default() -> None:
    """`neighbour` changes the default schedule's trace by one step (a split factor, two
    loops swapped, an unroll or a pack added or dropped, a parallel dropped): valid,
    different, and the same computation."""
    module = parse_module(make_context(), EPILOGUE)
    (task,) = tasks_in(module)
    space = SearchSpace(task)
    default = space.default()
    rng = random.Random(3)
    children = [space.neighbour(default, rng) for _ in range(12)]
    valid = [c for c in children if c.valid]
    assert len(valid) >= 8 and all(c.trace != default.trace for c in children)
    before = set(default.trace.splitlines())
    for c in valid:
        changed = set(c.trace.splitlines()) ^ before
        assert 1 <= len(changed) <= 2, c.trace  # one step replaced, added or dropped
        check_trace(task, c.trace, 5)
