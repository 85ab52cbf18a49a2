"""Mutations of a schedule trace itself: neighbours of any measured schedule, the default
schedule included (which has no sampling decisions to re-draw).

    child = mutate_trace(task, default_trace, random.Random(0))   # a trace, or None

One mutation per call, drawn from: change the factor of a `split` (another divisor, or
a power of two that leaves a guarded remainder); swap two neighbouring loops of the
main kernel's `reorder`; drop an `unroll`, or unroll a short loop of the main kernel
that runs serially (at most `MAX_UNROLLED` body copies in all); add a `cache_read`
(pack) of an input at one of the outer loops; drop a `parallel`. Loop names survive a
split-factor change (`m.o`, `m.i`), so the rest of the trace still refers to the same
loops. The result is only a proposal: `SearchSpace.from_trace` replays and verifies it
on a fresh module (an illegal one becomes an invalid candidate, never measured).
"""

from __future__ import annotations

import random
from collections.abc import Callable

from xdsl.dialects.builtin import ModuleOp

from mlc.dialects.tl import ForOp, LoopKind
from mlc.transforms.loops.common import ScheduleError, block_loops, find_block, find_loop, loop_name
from mlc.transforms.loops.kernel_scope import canonical_label
from mlc.transforms.loops.schedule import Schedule, Step, parse_schedule
from mlc.tuning.choices import MAX_UNROLLED, factor_choices
from mlc.tuning.task import Task

__all__ = ["mutate_trace"]

#: tries at a mutation that applies (some kinds have nothing to act on in a trace)
_TRIES = 8


def mutate_trace(task: Task, trace: str, rng: random.Random) -> str | None:
    """A trace one mutation away from `trace` (see the module docstring), or None when
    no mutation applies."""
    steps = parse_schedule(trace)
    mutations: list[Callable[[Task, list[Step], random.Random], list[Step] | None]] = [
        _resplit,
        _resplit,
        _swap_loops,
        _toggle_unroll,
        _toggle_unroll,
        _add_cache_read,
        _drop_parallel,
    ]
    for _ in range(_TRIES):
        child = rng.choice(mutations)(task, list(steps), rng)
        if child is not None and child != steps:
            return "".join(f"{s}\n" for s in child)
    return None


def _replayed(task: Task, steps: list[Step]) -> ModuleOp | None:
    """The task module with `steps` applied (None if they do not apply)."""
    module = task.module()
    try:
        Schedule(module).replay(steps)
    except ScheduleError:
        return None
    return module


def _main_loops(module: ModuleOp) -> list[ForOp]:
    return block_loops(find_block(module, canonical_label(0)))


def _resplit(task: Task, steps: list[Step], rng: random.Random) -> list[Step] | None:
    splits = [i for i, s in enumerate(steps) if s.verb == "split"]
    if not splits:
        return None
    i = rng.choice(splits)
    before = _replayed(task, steps[:i])
    if before is None:
        return None
    loop = steps[i].args[0]
    try:
        extent = find_loop(before, loop)[1].trip_count
    except ScheduleError:
        return None
    choices = [f for f in factor_choices(extent, rng) if str(f) != steps[i].args[1]]
    if not choices:
        return None
    steps[i] = Step("split", (loop, str(rng.choice(choices))))
    return steps


def _swap_loops(task: Task, steps: list[Step], rng: random.Random) -> list[Step] | None:
    main = f"{canonical_label(0)}/"
    orders = [i for i, s in enumerate(steps) if s.verb == "reorder" and s.args[0].startswith(main)]
    if not orders:
        return None
    i = rng.choice(orders)
    loops = list(steps[i].args)
    if len(loops) < 2:
        return None
    j = rng.randrange(len(loops) - 1)
    loops[j], loops[j + 1] = loops[j + 1], loops[j]
    steps[i] = Step("reorder", tuple(loops))
    return steps


def _toggle_unroll(task: Task, steps: list[Step], rng: random.Random) -> list[Step] | None:
    unrolls = [i for i, s in enumerate(steps) if s.verb == "unroll"]
    if unrolls and rng.random() < 0.5:
        del steps[rng.choice(unrolls)]
        return steps
    module = _replayed(task, steps)
    if module is None:
        return None
    loops = _main_loops(module)
    copies = 1
    for f in loops:
        if f.loop_kind in (LoopKind.UNROLL, LoopKind.VECTORIZE):
            copies *= f.trip_count
    short = [
        f
        for f in loops
        if f.loop_kind == LoopKind.SERIAL
        and 2 <= f.trip_count
        and copies * f.trip_count <= MAX_UNROLLED
    ]
    if not short:
        return None
    name = loop_name(rng.choice(short))
    steps.append(Step("unroll", (f"{canonical_label(0)}/{name}",)))
    return steps


def _add_cache_read(task: Task, steps: list[Step], rng: random.Random) -> list[Step] | None:
    module = _replayed(task, steps)
    if module is None:
        return None
    block = find_block(module, canonical_label(0))
    if not block.inputs:
        return None
    loops = [f for f in _main_loops(module) if f.loop_kind == LoopKind.SERIAL]
    if not loops:
        return None
    at = loop_name(rng.choice(loops[: max(1, len(loops) // 2)]))
    index = rng.randrange(len(block.inputs))
    steps.append(Step("cache_read", (canonical_label(0), str(index), f"{canonical_label(0)}/{at}")))
    return steps


def _drop_parallel(task: Task, steps: list[Step], rng: random.Random) -> list[Step] | None:
    parallel = [i for i, s in enumerate(steps) if s.verb == "parallel"]
    if not parallel:
        return None
    del steps[rng.choice(parallel)]
    return steps
