"""The search space: schedules of one task, sampled as replayable `Schedule` traces.

    space = SearchSpace(task)                 # lanes from the host (8 f32 lanes on AVX2)
    space.default()                           # candidate 0: the host's default schedule
    cand = space.sample(random.Random(0))     # a Candidate: .trace, or .error if rejected

A sampled schedule follows the shape of a hand-written CPU schedule, with every choice
drawn: the reduction's init hoisted (`decompose_reduction`) or not; each loop split in
two by a divisor or a non-divisor of its extent (the output's contiguous iterator by the
vector width, its outer part optionally again by a number of vectors); the loop order
outer tiles, reduction loops, inner tiles (shuffled within each group, now and then a
random order); the innermost loop vectorized (usually the contiguous iterator's, at the
element type's lanes); inner tile loops unrolled (at most `MAX_UNROLLED` body copies);
for a reduction, the output accumulated in a local tile (`cache_write`, at the first
reduction loop: the register tile, or further out); optionally the outermost loop with
more than one iteration parallel (more often for kernels with `PARALLEL_WORK`; now and
then after fusing the two outermost loops) and an input copied into a local buffer
(`cache_read`, optionally packed); the in-place epilogue moved into the tile loop
(`reverse_compute_at`). Each step is applied
as it is drawn; a step the legality checks reject makes the candidate invalid with that
reason (`Candidate.error`), as does a trace that does not replay or verify
(`validate`), so invalid candidates never reach measurement.

Every choice the sampler makes comes from one stream of uniform numbers in [0, 1)
(`DecisionTape`), kept with the candidate (`Candidate.decisions`): replaying the same
numbers gives the same schedule, and changing a few of them gives a neighbour
(`SearchSpace.mutate`), which is what the evolutionary search needs. A changed early
decision can change what later numbers decide (the tape is re-read, not re-aligned), as
in MetaSchedule's trace mutation.

    child = space.mutate(parent, rng)         # 1-3 of the parent's decisions re-drawn
"""

from __future__ import annotations

import itertools
import math
import random
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

from xdsl.dialects.builtin import AnyFloat, IntegerType, ModuleOp
from xdsl.ir import Attribute
from xdsl.ir.affine import AffineDimExpr

from mlc.dialects.tl import BlockOp, KernelOp
from mlc.host import host_features
from mlc.targets.pipeline import default_strategy
from mlc.transforms.loops.common import ScheduleError, find_block
from mlc.transforms.loops.default_schedule import MAX_VECTOR_LANES, apply_default_schedules
from mlc.transforms.loops.kernel_scope import canonical_label
from mlc.transforms.loops.schedule import Schedule
from mlc.tuning.choices import MAX_UNROLLED, factor_choices
from mlc.tuning.features import nest_features
from mlc.tuning.task import Task
from mlc.tuning.trace_mutation import mutate_trace

__all__ = [
    "Candidate",
    "DecisionTape",
    "SearchSpace",
    "default_trace",
    "factor_choices",
    "lanes_for",
    "validate",
]

#: the most elements of an output tile the sampler accumulates locally (`cache_write`)
MAX_CACHED_TILE = 4096
#: draws `SearchSpace.mutate` makes for a child that differs from its parent
MUTATION_TRIES = 8
#: kernels with at least this much work (`Task.work`) are sampled with threads more often
#: (the default schedule's threshold, `CpuDefaultSchedule.min_parallel_work`)
PARALLEL_WORK = 1 << 20


@dataclass(frozen=True)
class Candidate:
    """A schedule trace for a task; `error` (non-empty) says why it is invalid;
    `features` (when the space was asked for them) describe its loop nest."""

    trace: str
    error: str = ""
    features: tuple[float, ...] = field(default=(), compare=False, repr=False)
    #: the sampler's decisions (uniform numbers in [0, 1)) that drew it; () for the default
    decisions: tuple[float, ...] = field(default=(), compare=False, repr=False)

    @property
    def valid(self) -> bool:
        return not self.error


def lanes_for(element: Attribute, vector_bits: int | None = None) -> int:
    """Lanes of `element` in one vector register of the host (8 f32 lanes on AVX2)."""
    bits = vector_bits or host_features().vector_bits
    width = element.width.data if isinstance(element, IntegerType) else 0
    if isinstance(element, AnyFloat):
        width = element.bitwidth
    return max(1, min(MAX_VECTOR_LANES, bits // max(width, 8)))


def default_trace(module: ModuleOp, threads: bool = True) -> str:
    """The trace of the host's default schedule (`targets.pipeline.default_strategy`) for
    the task module `module` (modified: scheduled)."""
    texts = apply_default_schedules(module, default_strategy(threads=threads))
    return "".join(texts.values())


def validate(module: ModuleOp, trace: str) -> str:
    """Replay `trace` on `module` (modified: the scheduled result) and verify the result:
    "" if it applies, else the reason it does not."""
    try:
        Schedule(module).replay(trace)
    except ScheduleError as e:
        return f"does not replay: {e}"
    except Exception as e:  # a transformation bug
        return f"{type(e).__name__}: {e}"
    return _verify(module)


def _verify(module: ModuleOp) -> str:
    """ "" if `module` verifies, else the verifier's message."""
    try:
        module.verify()
    except Exception as e:  # a verifier error, or a transformation bug
        return f"{type(e).__name__}: {e}"
    return ""


# ---------------------------------------------------------------------- sampling


class DecisionTape(random.Random):
    """A random source that replays recorded decisions: the i-th `random()` is
    `tape[i]` while the tape lasts, then a fresh number from `source`; `drawn` is every
    number returned. Only `random()` is overridden, so `choice`, `randint`, `shuffle`,
    ... all derive from it (the documented way to subclass `random.Random`)."""

    def __init__(self, tape: Sequence[float], source: random.Random) -> None:
        self._tape = tuple(tape)
        self._source = source
        self.drawn: list[float] = []
        super().__init__()

    def seed(self, *args: object, **kwargs: object) -> None:
        """Nothing to seed: the numbers come from the tape and `source`."""

    def random(self) -> float:
        i = len(self.drawn)
        u = self._tape[i] if i < len(self._tape) else self._source.random()
        self.drawn.append(u)
        return u

    def getstate(self) -> tuple[object, ...]:
        raise TypeError("a DecisionTape has no state to save: keep its `drawn` numbers")

    def setstate(self, state: object) -> None:
        raise TypeError("a DecisionTape has no state to restore: replay its `drawn` numbers")


def _factors(extent: int, rng: random.Random) -> int | None:
    """One of `factor_choices`, None if the loop is too short to split."""
    choices = factor_choices(extent, rng)
    return rng.choice(choices) if choices else None


def _vector_dim(kernel: KernelOp) -> int | None:
    """The parallel iterator that is the last index of every output (contiguous)."""
    dims = set()
    for m in kernel.output_maps:
        e = m.results[-1] if m.results else None
        dims.add(e.position if isinstance(e, AffineDimExpr) else None)
    if len(dims) != 1:
        return None
    d = dims.pop()
    return d if d is not None and d in kernel.parallel_dims else None


@dataclass
class _Tiles:
    """The loops of one block after tiling, by role (short names)."""

    outer: list[str]
    reduction_outer: list[str]
    reduction_inner: list[str]
    inner: list[str]
    vector: str | None
    width: int


class _Sampler:
    """Draws one schedule for a task module, step by step, through a `Schedule`."""

    def __init__(
        self, module: ModuleOp, rng: random.Random, vector_bits: int, parallel: bool, work: int
    ) -> None:
        self.sch = Schedule(module)
        self.rng = rng
        self.vector_bits = vector_bits
        self.parallel = parallel
        self.work = work

    def chance(self, p: float) -> bool:
        return self.rng.random() < p

    def run(self) -> None:
        kernels = {op.label.data: op for op in self.sch.root.walk() if isinstance(op, KernelOp)}
        main = kernels[canonical_label(0)]
        label = main.label.data
        element = main.buffer_types[len(main.inputs)].element_type
        lanes = lanes_for(element, self.vector_bits)
        v = _vector_dim(main)
        iterators = [(it.label, it.extent.data, it.is_reduction) for it in main.iterator_list]
        decompose = bool(main.reduction_dims) and any(x is not None for x in main.init_values)
        decompose = decompose and self.chance(0.85)
        self.sch.lower(label, keep_inits=decompose)
        if decompose:
            init = self.sch.decompose_reduction(label, self.sch.get_loops(label)[0])
            self.simple(init, lanes)
        elif any(b.label.data == f"{label}_init" for b in _blocks(self.sch.root)):
            self.simple(f"{label}_init", lanes)
        tiles = self.tile(label, iterators, v, lanes)
        order = self.order(tiles)
        if len(order) > 1:
            self.sch.reorder(*(f"{label}/{n}" for n in order))
        innermost = order[-1]
        if tiles.vector is not None and innermost == tiles.vector:
            self.sch.vectorize(f"{label}/{innermost}", tiles.width)
        elif self.chance(0.1):  # another innermost loop (gathers / scatters): explore
            self.sch.vectorize(f"{label}/{innermost}", self.rng.choice([2, 4, lanes]))
        self.unroll(label, tiles)
        threads = self.parallel and self.chance(0.6 if self.work >= PARALLEL_WORK else 0.1)
        # (a cached tile is one buffer for the whole nest: never under a parallel loop)
        if not threads and (tiles.reduction_outer or tiles.reduction_inner):
            if self.chance(0.35):
                self.cache_write(label, order, tiles, lanes)
        if threads:
            outside = self.outside_reductions(order, tiles)
            if len(outside) > 1 and self.chance(0.25):
                fused = self.fuse_outer(label, outside)
                order = [fused, *order[2:]]
                outside = [fused, *outside[2:]]
            self.parallelize(label, outside)
        if main.inputs and self.chance(0.15):
            self.cache_read(label, len(main.inputs), order, lanes)
        epilogue = kernels.get(canonical_label(1))
        if epilogue is not None:
            self.epilogue(label, epilogue.label.data, order, tiles, lanes)

    def tile(
        self, label: str, iterators: Sequence[tuple[str, int, bool]], v: int | None, lanes: int
    ) -> _Tiles:
        """Split the loops of `label` (still one per iterator)."""
        tiles = _Tiles([], [], [], [], None, lanes)
        for d, (name, extent, reduction) in enumerate(iterators):
            loop = f"{label}/{name}"
            if d == v and extent >= 2:
                width = lanes if extent >= lanes else self.rng.choice([extent, lanes])
                tiles.width = width
                if extent > width:
                    outer, inner = self.split(loop, width)
                    tiles.vector = inner
                    vectors = -(-extent // width)
                    if vectors >= 2 and self.chance(0.6):
                        nr = self.rng.randint(2, min(vectors, 6))
                        outer, middle = self.split(f"{label}/{outer}", nr)
                        tiles.inner.append(middle)
                    tiles.outer.append(outer)
                else:
                    tiles.vector = name
                continue
            factor = _factors(extent, self.rng) if self.chance(0.6) else None
            if factor is None:
                (tiles.reduction_outer if reduction else tiles.outer).append(name)
                continue
            outer, inner = self.split(loop, factor)
            if reduction:
                tiles.reduction_outer.append(outer)
                tiles.reduction_inner.append(inner)
            else:
                tiles.outer.append(outer)
                tiles.inner.append(inner)
        return tiles

    def split(self, loop: str, factor: int) -> tuple[str, str]:
        outer, inner = self.sch.split(loop, factor)
        return outer.rpartition("/")[2], inner.rpartition("/")[2]

    def order(self, tiles: _Tiles) -> list[str]:
        """Outer tiles, reductions (outer, inner), inner tiles; the vector loop last."""
        groups = [tiles.outer, tiles.reduction_outer, tiles.reduction_inner, tiles.inner]
        for g in groups:
            self.rng.shuffle(g)
        order = [n for g in groups for n in g]
        if self.chance(0.15):
            self.rng.shuffle(order)
        return order + ([tiles.vector] if tiles.vector else [])

    def unroll(self, label: str, tiles: _Tiles) -> None:
        """Unroll inner tile loops fully (at most `MAX_UNROLLED` copies of the body in
        all), now and then an inner reduction loop by 2 or 4."""
        copies = 1
        for name in tiles.inner:
            trip = self.sch.loop(f"{label}/{name}").trip_count
            if copies * trip <= MAX_UNROLLED and self.chance(0.7):
                self.sch.unroll(f"{label}/{name}")
                copies *= trip
        for name in tiles.reduction_inner:
            trip = self.sch.loop(f"{label}/{name}").trip_count
            if trip >= 2 and self.chance(0.2):
                self.sch.unroll(
                    f"{label}/{name}", self.rng.choice([f for f in (2, 4) if f <= trip])
                )

    def parallelize(self, label: str, outside: Sequence[str]) -> None:
        """Run the outermost loop outside the reductions with more than one iteration on
        threads."""
        for name in outside:
            if self.sch.loop(f"{label}/{name}").trip_count > 1:
                self.sch.parallel(f"{label}/{name}")
                return

    def cache_write(self, label: str, order: Sequence[str], tiles: _Tiles, lanes: int) -> None:
        """Accumulate the output in a local tile (register-tile accumulation): cached at
        the first reduction loop (the tile the reductions update), now and then at a loop
        further out; the copy-in and copy-out loops vectorized."""
        reductions = set(tiles.reduction_outer) | set(tiles.reduction_inner)
        first = next(i for i, n in enumerate(order) if n in reductions)
        at = order[first if first == 0 or self.chance(0.75) else self.rng.randrange(first)]
        load, store = self.sch.cache_write(label, 0, f"{label}/{at}")
        tile = math.prod(self.sch.block(load).buffer_types[-1].get_shape())
        if tile > MAX_CACHED_TILE:  # (an imperfect split caches the whole dimension)
            raise ScheduleError(
                f"the tile cached at '{label}/{at}' has {tile} elements (at most "
                f"{MAX_CACHED_TILE}: it is copied in and out around every reduction)"
            )
        self.simple(load, lanes, optional=True)
        self.simple(store, lanes, optional=True)

    @staticmethod
    def outside_reductions(order: Sequence[str], tiles: _Tiles) -> list[str]:
        """The loops of `order` before the first reduction loop."""
        reductions = set(tiles.reduction_outer) | set(tiles.reduction_inner)
        return list(itertools.takewhile(lambda n: n not in reductions, order))

    def fuse_outer(self, label: str, outside: Sequence[str]) -> str:
        """Fuse the two outermost loops (more iterations to share out over threads)."""
        return self.sch.fuse(f"{label}/{outside[0]}", f"{label}/{outside[1]}").rpartition("/")[2]

    def cache_read(self, label: str, inputs: int, order: Sequence[str], lanes: int) -> None:
        index = self.rng.randrange(inputs)
        at = self.rng.choice([None, *order[: max(1, len(order) // 2)]])
        block = self.sch.block(label)
        rank = len(block.buffer_types[index].get_shape())
        layout = None
        if rank >= 2 and self.chance(0.3):
            layout = list(range(rank))
            self.rng.shuffle(layout)
        copy = self.sch.cache_read(label, index, f"{label}/{at}" if at else None, layout)
        self.simple(copy, lanes, optional=True)

    def epilogue(
        self, label: str, epilogue: str, order: Sequence[str], tiles: _Tiles, lanes: int
    ) -> None:
        """Lower the in-place epilogue; move it into the last loop outside the reductions
        (most of the time), else schedule it on its own."""
        self.sch.lower(epilogue)
        outside = self.outside_reductions(order, tiles)
        if outside and self.chance(0.8):
            at = outside[-1] if self.chance(0.7) else self.rng.choice(outside)
            self.sch.reverse_compute_at(epilogue, f"{label}/{at}")
        else:
            self.simple(epilogue, lanes)

    def simple(self, label: str, lanes: int, optional: bool = False) -> None:
        """Vectorize the innermost loop of `label` by the lanes (split first when it is
        longer); `optional`: a rejected step is skipped (the copy loops of a cache)."""
        loops = self.sch.get_loops(label)
        if not loops:
            return
        try:
            inner = loops[-1]
            trip = self.sch.loop(inner).trip_count
            if trip > lanes:
                inner = self.sch.split(inner, lanes)[1]
            if trip >= 2:
                self.sch.vectorize(inner, min(trip, lanes))
        except ScheduleError:
            if not optional:
                raise


def _blocks(root: ModuleOp) -> list[BlockOp]:
    return [op for op in root.walk() if isinstance(op, BlockOp)]


class SearchSpace:
    """Schedules of one task: `default()` is candidate 0, `sample(rng)` draws another."""

    def __init__(
        self,
        task: Task,
        *,
        vector_bits: int | None = None,
        parallel: bool = True,
        features: bool = False,
    ) -> None:
        self.task = task
        self.vector_bits = vector_bits or host_features().vector_bits
        self.parallel = parallel
        #: compute each valid candidate's `features` (for a cost model)
        self.features = features

    def _checked(self, trace: str, scheduled: ModuleOp | None = None) -> Candidate:
        """`trace` replayed on a fresh module and verified (`validate`); or, given the
        module the sampler `scheduled` as it drew the trace, only that one verified (the
        cheap check `sample(..., replay=False)` makes)."""
        if scheduled is None:
            module = self.task.module()
            error = validate(module, trace)
        else:
            module = scheduled
            error = _verify(module)
        if error or not self.features:
            return Candidate(trace, error)
        block = find_block(module, canonical_label(0))
        return Candidate(trace, features=tuple(nest_features(block, trace, self.task.work)))

    def replayed(self, candidate: Candidate) -> Candidate:
        """`candidate`, or a copy with the reason it is invalid if its trace does not
        replay on a fresh module (for candidates sampled with `replay=False`)."""
        error = validate(self.task.module(), candidate.trace) if candidate.valid else ""
        return replace(candidate, error=error) if error else candidate

    def default(self) -> Candidate:
        """The host's default schedule (what `mlc.compile` uses without a record); invalid
        if the default strategy itself rejects the kernel."""
        try:
            trace = default_trace(self.task.module(), threads=self.parallel)
        except ScheduleError as e:
            return Candidate("", f"the default schedule fails: {e}")
        return self._checked(trace)

    def sample(
        self, rng: random.Random, tape: Sequence[float] = (), *, replay: bool = True
    ) -> Candidate:
        """One random schedule, checked (`validate`) on a fresh module: its decisions
        are read from `tape` first, then drawn from `rng`. `replay=False` verifies the
        sampler's own module instead (half the cost: for candidates a cost model may
        discard; `replayed` checks one before it is measured)."""
        decisions = DecisionTape(tape, rng)
        sampler = _Sampler(
            self.task.module(), decisions, self.vector_bits, self.parallel, self.task.work
        )
        try:
            sampler.run()
        except ScheduleError as e:
            return Candidate(sampler.sch.text(), f"rejected: {e}", decisions=tuple(decisions.drawn))
        trace = sampler.sch.text()
        checked = self._checked(trace, None if replay else sampler.sch.root)
        return replace(checked, decisions=tuple(decisions.drawn))

    def mutate(self, parent: Candidate, rng: random.Random, *, replay: bool = True) -> Candidate:
        """A neighbour of `parent` (a sampled candidate): its decisions with 1 to 3 of
        them re-drawn from `rng`, replayed. Many decisions are coin flips that a new
        number often leaves as they were: up to `MUTATION_TRIES` draws are made for a
        child whose trace differs from the parent's."""
        if not parent.decisions:
            return self.sample(rng, replay=replay)
        child = parent
        for _ in range(MUTATION_TRIES):
            tape = list(parent.decisions)
            for _ in range(min(len(tape), rng.choice((1, 1, 1, 2, 2, 3)))):
                tape[rng.randrange(len(tape))] = rng.random()
            child = self.sample(rng, tape, replay=replay)
            if child.trace != parent.trace:
                break
        return child

    def neighbour(self, parent: Candidate, rng: random.Random) -> Candidate:
        """A child of any measured schedule, the default included: one mutation of its
        trace itself (`trace_mutation.mutate_trace`: a split factor, two loops swapped,
        an unroll or a pack added or dropped, ...), replayed and verified; a fresh
        sample when no mutation applies."""
        child = mutate_trace(self.task, parent.trace, rng) if parent.trace else None
        return self.sample(rng) if child is None else self._checked(child)

    def crossover(
        self, a: Candidate, b: Candidate, rng: random.Random, *, replay: bool = True
    ) -> Candidate:
        """A child of two sampled candidates: `a`'s first decisions, then `b`'s."""
        if not a.decisions or not b.decisions:
            return self.mutate(a if a.decisions else b, rng, replay=replay)
        cut = rng.randrange(1, max(2, min(len(a.decisions), len(b.decisions))))
        return self.sample(rng, a.decisions[:cut] + b.decisions[cut:], replay=replay)
