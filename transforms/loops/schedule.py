"""`Schedule`: a TVM-style scheduling API over `tl` loop nests, recording its steps.

    sch = Schedule(module)
    m, n, k = sch.get_loops("matmul")        # lowers the tl.kernel "matmul" if needed
    mo, mi = sch.split(m, 8)                 # "matmul/m.o", "matmul/m.i"
    sch.reorder(mo, n, mi, k)
    sch.parallel(mo)
    print(sch.text())

Loops are referred to by stable names `<block label>/<loop>` (see `common.py`), so the
steps are plain text, one per line (`#` starts a comment):

    lower matmul [keep_inits]
    split matmul/m 8
    reorder matmul/m.o matmul/n matmul/m.i matmul/k
    fuse matmul/m.o matmul/n
    parallel matmul/m.o
    vectorize matmul/n [8]
    unroll matmul/k [2]
    decompose_reduction matmul matmul/k
    cache_read matmul 1 matmul/k [1,0]       # block, input #, at loop (or -), layout
    cache_write matmul 0 [matmul/n]          # block, output #, at loop
    reverse_compute_at relu matmul/n         # consumer block, producer's loop
    compute_at act matmul/m                  # producer block, consumer's loop

`parse_schedule` reads this back (no eval: each verb has a fixed argument list of names
and integers), and `Schedule.replay` applies it to a fresh module.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from xdsl.ir import Operation

from mlc.dialects.tl import BlockOp, ForOp, KernelOp
from mlc.lowering.tl_kernel_to_loops import kernel_to_loops
from mlc.transforms.loops import annotate, buffers, cache, tiling
from mlc.transforms.loops.common import (
    ScheduleError,
    block_loops,
    find_block,
    loop_name,
    loop_of_block,
    split_loop_name,
)
from mlc.transforms.loops.compute_at import compute_at as _compute_at
from mlc.transforms.loops.compute_at import reverse_compute_at as _reverse_compute_at

__all__ = ["Schedule", "Step", "parse_schedule"]

_INT = re.compile(r"-?\d+\Z")
_NAME = re.compile(r"[^\s#]+\Z")

#: verb -> argument kinds: n = name, i = integer, l = int list (1,0), optional ones with ?
_VERBS: dict[str, tuple[str, ...]] = {
    "lower": ("n", "k?"),
    "split": ("n", "i"),
    "reorder": ("n+",),
    "fuse": ("n", "n"),
    "parallel": ("n",),
    "vectorize": ("n", "i?"),
    "unroll": ("n", "i?"),
    "decompose_reduction": ("n", "n"),
    "cache_read": ("n", "i", "n", "l?"),
    "cache_write": ("n", "i", "n?"),
    "reverse_compute_at": ("n", "n"),
    "compute_at": ("n", "n"),
}


@dataclass(frozen=True)
class Step:
    """One schedule step: a verb and its arguments as text."""

    verb: str
    args: tuple[str, ...]

    def __str__(self) -> str:
        return " ".join((self.verb, *self.args))


def _check_step(step: Step, where: str) -> Step:
    spec = _VERBS.get(step.verb)
    if spec is None:
        raise ScheduleError(f"{where}unknown schedule step '{step.verb}'")
    args = list(step.args)
    if spec == ("n+",):
        if len(args) < 1:
            raise ScheduleError(f"{where}'{step.verb}' needs loop names")
        spec = ("n",) * len(args)
    required = [s for s in spec if not s.endswith("?")]
    if not len(required) <= len(args) <= len(spec):
        raise ScheduleError(
            f"{where}'{step.verb}' takes {len(required)}"
            + (f" to {len(spec)}" if len(spec) != len(required) else "")
            + f" arguments, got {len(args)}"
        )
    for kind, arg in zip(spec, args):
        k = kind.rstrip("?")
        ok = (
            _INT.match(arg)
            if k == "i"
            else arg == "keep_inits"
            if k == "k"
            else all(_INT.match(x) for x in arg.split(","))
            if k == "l"
            else _NAME.match(arg)
        )
        if not ok:
            raise ScheduleError(f"{where}bad argument '{arg}' of '{step.verb}'")
    return step


def parse_schedule(text: str) -> list[Step]:
    """Parse the schedule text format (see the module docstring)."""
    steps: list[Step] = []
    for lineno, line in enumerate(text.splitlines(), 1):
        words = line.split("#", 1)[0].split()
        if words:
            steps.append(_check_step(Step(words[0], tuple(words[1:])), f"line {lineno}: "))
    return steps


class Schedule:
    """Applies loop transformations to the `tl` loop nests under `root` (a module or a
    function) and records them as `Step`s."""

    def __init__(self, root: Operation) -> None:
        self.root = root
        self.steps: list[Step] = []
        #: blocks found before, by label: steps look blocks up by label dozens of times
        #: per kernel, and a walk of the whole root each time was quadratic
        self._blocks: dict[str, BlockOp] = {}

    # ------------------------------------------------------------------ queries

    def _record(self, verb: str, *args: object) -> None:
        self.steps.append(Step(verb, tuple(str(a) for a in args)))

    def _known(self, label: str) -> BlockOp | None:
        """The block found before as `label`, while still under the root with that label."""
        known = self._blocks.get(label)
        if known is not None and known.label.data == label and self.root.is_ancestor(known):
            return known
        return None

    def block(self, label: str) -> BlockOp:
        """The one `tl.block` labelled `label` under the root (`find_block`; a block
        found before is returned while it is still under the root with that label)."""
        block = self._known(label)
        if block is None:
            block = self._blocks[label] = find_block(self.root, label)
        return block

    def loop(self, name: str) -> ForOp:
        """The loop `label/loop` (`find_loop`, its block found with `block`)."""
        return loop_of_block(self.block(split_loop_name(name)[0]), name)

    def _has_block(self, label: str) -> bool:
        return self._known(label) is not None or any(
            isinstance(op, BlockOp) and op.label.data == label for op in self.root.walk()
        )

    def get_loops(self, label: str) -> list[str]:
        """Names of the loops around the block `label`, outermost first; a `tl.kernel`
        with that label is lowered first (`lower`)."""
        if not self._has_block(label):
            self.lower(label)
        return [f"{label}/{loop_name(f)}" for f in block_loops(self.block(label))]

    # ------------------------------------------------------------------ steps

    def lower(self, label: str, keep_inits: bool = False) -> None:
        """Lower the `tl.kernel` labelled `label` to loops (convert-tl-kernel-to-loops)."""
        kernels = [
            op for op in self.root.walk() if isinstance(op, KernelOp) and op.label.data == label
        ]
        if len(kernels) != 1:
            raise ScheduleError(
                f'no tl.kernel or tl.block labelled "{label}"'
                if not kernels
                else f'{len(kernels)} tl.kernels are labelled "{label}"'
            )
        kernel = kernels[0]
        parent = kernel.parent_block()
        assert parent is not None
        parent.insert_ops_before(kernel_to_loops(kernel, keep_inits), kernel)
        parent.erase_op(kernel)
        self._record("lower", label, *(["keep_inits"] if keep_inits else []))

    def _label(self, name: str) -> str:
        return name.rpartition("/")[0]

    def split(self, loop: str, factor: int) -> tuple[str, str]:
        outer, inner = tiling.split(self.loop(loop), factor, loop)
        self._record("split", loop, factor)
        label = self._label(loop)
        return f"{label}/{loop_name(outer)}", f"{label}/{loop_name(inner)}"

    def reorder(self, *loops: str) -> None:
        tiling.reorder([self.loop(n) for n in loops], loops)
        self._record("reorder", *loops)

    def fuse(self, outer: str, inner: str) -> str:
        fused = tiling.fuse(self.loop(outer), self.loop(inner), (outer, inner))
        self._record("fuse", outer, inner)
        return f"{self._label(outer)}/{loop_name(fused)}"

    def parallel(self, loop: str) -> None:
        annotate.parallel(self.loop(loop), loop)
        self._record("parallel", loop)

    def vectorize(self, loop: str, width: int | None = None) -> None:
        annotate.vectorize(self.loop(loop), width, loop)
        self._record("vectorize", loop, *([] if width is None else [width]))

    def unroll(self, loop: str, factor: int | None = None) -> None:
        annotate.unroll(self.loop(loop), factor, loop)
        self._record("unroll", loop, *([] if factor is None else [factor]))

    def decompose_reduction(self, block: str, loop: str) -> str:
        """Hoist the inits of `block` into a nest before `loop`; returns the init block's
        label."""
        init = buffers.decompose_reduction(self.block(block), self.loop(loop), [loop])
        self._record("decompose_reduction", block, loop)
        return init.label.data

    def cache_read(
        self, block: str, index: int, at: str | None = None, layout: Sequence[int] | None = None
    ) -> str:
        """Copy input `index` of `block` to a local buffer before loop `at` (default: the
        whole buffer before the outermost loop; with `at`: only the tile `at` and the loops
        inside it read); `layout` permutes its dims (pack). Returns the copy block's label."""
        loop = self.loop(at) if at else None
        copy = cache.cache_read(self.block(block), index, loop, layout, [at] if at else [])
        # an empty layout (a rank-0 buffer) is the identity: not recorded
        extra = [",".join(str(p) for p in layout)] if layout else []
        self._record("cache_read", block, index, at or "-", *extra)
        return copy.label.data

    def pack(self, block: str, index: int, layout: Sequence[int], at: str | None = None) -> str:
        """`cache_read` with a permuted layout."""
        return self.cache_read(block, index, at, layout)

    def cache_write(self, block: str, index: int, at: str | None = None) -> tuple[str, str]:
        """Compute output `index` of `block` into a local tile, loaded before loop `at`
        (default: the outermost) and written back after it. Returns the labels of the
        copy-in and copy-out blocks."""
        loop = self.loop(at) if at else None
        load, store = cache.cache_write(self.block(block), index, loop, [at] if at else [])
        self._record("cache_write", block, index, *([at] if at else []))
        return load.label.data, store.label.data

    def reverse_compute_at(self, block: str, loop: str) -> None:
        """Move the elementwise consumer `block` into the producer's loop `loop` (a
        `tl.kernel` labelled `block` is lowered first)."""
        if not self._has_block(block):
            self.lower(block)
        _reverse_compute_at(self.block(block), self.loop(loop), [loop])
        self._record("reverse_compute_at", block, loop)

    def compute_at(self, block: str, loop: str) -> None:
        """Move the elementwise producer `block` into the consumer's loop `loop` (a
        `tl.kernel` labelled `block` is lowered first)."""
        if not self._has_block(block):
            self.lower(block)
        _compute_at(self.block(block), self.loop(loop), [loop])
        self._record("compute_at", block, loop)

    # ------------------------------------------------------------------ text

    def text(self) -> str:
        """The recorded steps, one per line."""
        return "".join(f"{s}\n" for s in self.steps)

    def apply(self, step: Step) -> None:
        """Apply one step (checked as `parse_schedule` does)."""
        _check_step(step, "")
        a = step.args
        v = step.verb
        if v == "lower":
            self.lower(a[0], len(a) > 1)
        elif v == "split":
            self.split(a[0], int(a[1]))
        elif v == "reorder":
            self.reorder(*a)
        elif v == "fuse":
            self.fuse(a[0], a[1])
        elif v == "parallel":
            self.parallel(a[0])
        elif v == "vectorize":
            self.vectorize(a[0], int(a[1]) if len(a) > 1 else None)
        elif v == "unroll":
            self.unroll(a[0], int(a[1]) if len(a) > 1 else None)
        elif v == "decompose_reduction":
            self.decompose_reduction(a[0], a[1])
        elif v == "cache_write":
            self.cache_write(a[0], int(a[1]), a[2] if len(a) > 2 else None)
        elif v == "reverse_compute_at":
            self.reverse_compute_at(a[0], a[1])
        elif v == "compute_at":
            self.compute_at(a[0], a[1])
        else:  # cache_read
            layout = [int(x) for x in a[3].split(",")] if len(a) > 3 else None
            self.cache_read(a[0], int(a[1]), None if a[2] == "-" else a[2], layout)

    def replay(self, steps: str | Iterable[Step]) -> None:
        """Apply a schedule (text or steps) in order."""
        for step in parse_schedule(steps) if isinstance(steps, str) else steps:
            self.apply(step)
