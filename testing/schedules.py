"""Hypothesis strategies for valid loop schedules of a kernel.

A schedule is drawn step by step against the current IR: each step picks a verb
(`split`, `reorder`, `fuse`, `parallel`, `vectorize`, `unroll`, `decompose_reduction`,
`cache_read`), draws its arguments from the loops that exist at that point, and applies
it through `mlc.transforms.loops.Schedule`. A step the legality checks reject
(`ScheduleError`) is skipped, and it must leave the IR unchanged (checked: an
`AssertionError` otherwise). So every drawn schedule is valid for its kernel and
replayable from `Schedule.text()`.

    from mlc.testing import kernel_modules
    from mlc.testing.schedules import schedules

    @given(data=st.data(), case=kernel_modules())
    def test_my_pass_after_any_schedule(data, case):
        sch = data.draw(schedules(case))           # lowered + 1..6 random steps
        expected = run_buffers(case.module, *case.arrays)   # case.module is untouched
        assert_same(expected, run_buffers(sch.root, *case.arrays))

Compose by restricting `verbs`, the number of steps, or by drawing further steps onto
an existing `Schedule` with `random_schedule(draw, sch, ...)` (inside `@st.composite` or
with `data.draw`).
"""

from __future__ import annotations

from collections.abc import Sequence

from hypothesis import event, note
from hypothesis import strategies as st
from xdsl.dialects.builtin import ModuleOp

from mlc.dialects.tl import BlockOp, KernelOp
from mlc.testing.strategies import KernelCase
from mlc.transforms.loops import Schedule, ScheduleError
from mlc.transforms.loops.common import find_loop

#: every schedule verb the strategies draw from
VERBS: tuple[str, ...] = (
    "split",
    "reorder",
    "fuse",
    "parallel",
    "vectorize",
    "unroll",
    "decompose_reduction",
    "cache_read",
)


# the ScheduleError wording of "argument out of range" per verb
_RANGE_REASONS: dict[str, tuple[str, ...]] = {
    "split": ("the factor must be in",),
    "unroll": ("the factor must be in",),
    "vectorize": ("width must be positive",),
    "cache_read": (" inputs", "is not a permutation"),
}


def kernel_label(module: ModuleOp) -> str:
    """The label of the first `tl.kernel` in `module`."""
    return next(op.label.data for op in module.walk() if isinstance(op, KernelOp))


def blocks(module: ModuleOp) -> list[BlockOp]:
    return [op for op in module.walk() if isinstance(op, BlockOp)]


def try_step(draw: st.DrawFn, sch: Schedule, verb: str) -> bool:
    """Draw arguments for `verb` from the current IR of `sch` and apply it. A rejected step
    must leave the IR unchanged, and a step with out-of-range arguments (a split factor
    outside [1, trip count], a width or unroll factor <= 0, an unroll factor above the trip
    count: drawn now and then, one vectorize or unroll in six) must be rejected (else
    `AssertionError`). A reorder is never drawn in the loops' current order (a no-op).
    Returns whether it applied."""
    if verb not in VERBS:
        raise ValueError(f"unknown schedule verb {verb!r}; expected one of {', '.join(VERBS)}")
    module = sch.root
    candidates = [b for b in blocks(module) if sch.get_loops(b.label.data) or verb == "cache_read"]
    if not candidates:
        return False
    label = draw(st.sampled_from([b.label.data for b in candidates]))
    block = next(b for b in candidates if b.label.data == label)
    loops = sch.get_loops(label)
    before = str(module)
    # set when the drawn arguments are out of range: the step must then be rejected
    out_of_range = ""
    try:
        if verb == "split":
            loop = draw(st.sampled_from(loops))
            trip = find_loop(module, loop)[1].trip_count
            factor = draw(st.integers(1, max(trip, 1)) | st.sampled_from([0, -1, trip + 1]))
            if not 1 <= factor <= trip:
                out_of_range = f"split of {loop} (trip count {trip}) by {factor}"
            sch.split(loop, factor)
        elif verb == "reorder":
            if len(loops) < 2:
                return False
            chosen = draw(st.lists(st.sampled_from(loops), min_size=2, unique=True))
            if sorted(chosen, key=loops.index) == chosen:  # already in this order: a no-op
                chosen.reverse()
            sch.reorder(*chosen)
        elif verb == "fuse":
            if len(loops) < 2:
                return False
            i = draw(st.integers(0, len(loops) - 2))
            sch.fuse(loops[i], loops[i + 1])
        elif verb == "parallel":
            sch.parallel(draw(st.sampled_from(loops)))
        elif verb == "vectorize":
            loop = draw(st.sampled_from([loops[-1], *loops]))  # the innermost more often
            trip = find_loop(module, loop)[1].trip_count
            # out-of-range widths now and then (one draw in six), valid ones mostly
            width = (
                draw(st.sampled_from([0, -1]))
                if draw(st.integers(0, 5)) == 0
                else draw(st.none() | st.integers(1, max(trip, 1)))
            )
            if width is not None and width <= 0:
                out_of_range = f"vectorize of {loop} by width {width}"
            sch.vectorize(loop, width)
        elif verb == "unroll":
            loop = draw(st.sampled_from(loops))
            trip = find_loop(module, loop)[1].trip_count
            bad = [0, -1, max(trip, 1) + 1]
            factor = (
                draw(st.sampled_from(bad))
                if draw(st.integers(0, 5)) == 0
                else draw(st.none() | st.integers(1, max(trip, 1)))
            )
            if factor is not None and not 1 <= factor <= max(trip, 1):
                out_of_range = f"unroll of {loop} (trip count {trip}) by {factor}"
            sch.unroll(loop, factor)
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
        if not out_of_range:
            # arguments drawn in range are never rejected as out of range
            for reason in _RANGE_REASONS.get(verb, ()):
                assert reason not in str(e), f"in-range {verb} rejected as out of range: {e}"
        return False
    assert not out_of_range, f"not rejected: {out_of_range}"
    module.verify()
    event(f"{verb} applied")
    return True


def random_schedule(
    draw: st.DrawFn,
    sch: Schedule,
    *,
    min_steps: int = 1,
    max_steps: int = 6,
    verbs: Sequence[str] = VERBS,
) -> Schedule:
    """Draw and apply between `min_steps` and `max_steps` random steps (each with a verb
    from `verbs`) to `sch`, in place; rejected steps count but change nothing. Returns
    `sch`."""
    if not verbs:
        raise ValueError("random_schedule needs at least one verb")
    for _ in range(draw(st.integers(min_steps, max_steps))):
        try_step(draw, sch, draw(st.sampled_from(list(verbs))))
    return sch


def lowered_schedule(module: ModuleOp, keep_inits: bool, label: str | None = None) -> Schedule:
    """A `Schedule` on `module` (modified in place) whose kernel `label` (default: the
    first) has been lowered to loops."""
    sch = Schedule(module)
    sch.lower(label or kernel_label(module), keep_inits=keep_inits)
    return sch


@st.composite
def schedules(
    draw: st.DrawFn,
    case: KernelCase | ModuleOp,
    *,
    keep_inits: bool | None = None,
    min_steps: int = 1,
    max_steps: int = 6,
    verbs: Sequence[str] = VERBS,
) -> Schedule:
    """A valid random schedule for the (first) kernel of `case`: a copy of its module is
    lowered (`keep_inits` drawn unless given) and `random_schedule` applied; the result's
    `.root` is the scheduled module and `.text()` the replayable schedule. `case` itself
    is not modified."""
    module = case.module if isinstance(case, KernelCase) else case
    copy = module.clone()
    if keep_inits is None:
        keep_inits = draw(st.booleans())
    sch = lowered_schedule(copy, keep_inits)
    return random_schedule(draw, sch, min_steps=min_steps, max_steps=max_steps, verbs=verbs)


__all__ = [
    "VERBS",
    "blocks",
    "kernel_label",
    "lowered_schedule",
    "random_schedule",
    "schedules",
    "try_step",
]
