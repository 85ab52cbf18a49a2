"""A static workspace for a function's intermediate buffers, with liveness-based reuse.

At the explicit-loop level every intermediate of a model is a top-level `memref.alloc`
of the `func.func` body, used by the loop nests that follow it::

    func.func @main(%x: memref<64xf32>) -> memref<64xf32> {
      %a = memref.alloc() : memref<64xf32>           // 0   a: live [0, 3]
      tl.for %i = 0 to 64 { ... ins(%x) outs(%a) }   // 1
      %b = memref.alloc() : memref<64xf32>           // 2   b: live [2, 5]
      tl.for %i = 0 to 64 { ... ins(%a) outs(%b) }   // 3
      %c = memref.alloc() : memref<64xf32>           // 4   c: live [4, 7]
      tl.for %i = 0 to 64 { ... ins(%b) outs(%c) }   // 5
      %r = memref.alloc() : memref<64xf32>           // 6   returned: not planned
      tl.for %i = 0 to 64 { ... ins(%c) outs(%r) }   // 7
      func.return %r : memref<64xf32>
    }

(positions are indices of top-level ops). `plan_workspace` gives every planned buffer a
byte offset inside one workspace of `peak_bytes` bytes; here `a` and `c` share offset 0
(their live ranges are disjoint) and `b` sits at 256, so the workspace takes 512 bytes
where separate allocations take 768.

Liveness: a buffer is live from its `memref.alloc` to the last top-level op that uses it.
A use nested in a loop (or any region) counts at its enclosing top-level op. An op that
takes the buffer as an operand and yields a memref (`memref.subview`, `memref.cast`,
`memref.reinterpret_cast`, `memref.collapse_shape`/`expand_shape`, `scf.for` iter_args,
...) aliases it, and so does the parent of a terminator (`scf.yield`, ...) that yields it:
the alias's uses extend the buffer's live range. `memref.dealloc` does not touch memory
and is not a use. Returned allocs (built in the caller's result buffer), allocs nested in
regions, and allocs of non-static / non-row-major / unknown-element memrefs are not
planned (the caller keeps handling them).

Placement (`assign_offsets`) is the classic greedy-by-size planner (TFLite's, TVM's):
buffers in decreasing size order, each at the lowest 64-aligned offset at which it does
not overlap any already placed buffer whose live range intersects its own. A first-fit
in allocation order is tried as well and the smaller workspace kept. Everything is
deterministic (ties broken by program order).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from xdsl.dialects import func, memref
from xdsl.dialects.builtin import (
    AnyFloat,
    IndexType,
    IntegerType,
    MemRefType,
    NoneAttr,
    StridedLayoutAttr,
    UnrankedMemRefType,
)
from xdsl.dialects.llvm import LLVMPointerType
from xdsl.ir import Attribute, Block, Operation, SSAValue
from xdsl.traits import IsTerminator

__all__ = [
    "WORKSPACE_ALIGNMENT",
    "WorkspacePlan",
    "align_up",
    "assign_offsets",
    "buffer_bytes",
    "live_intervals",
    "plan_workspace",
]

WORKSPACE_ALIGNMENT = 64
"""Alignment (bytes) of the workspace and of every buffer in it (`tl_to_llvm.ALIGNMENT`)."""

Interval = tuple[int, int]
"""A closed live range `[first, last]` of top-level op positions."""


def align_up(n: int, alignment: int = WORKSPACE_ALIGNMENT) -> int:
    """The smallest multiple of `alignment` that is >= `n`."""
    return -(-n // alignment) * alignment


@dataclass(frozen=True)
class WorkspacePlan:
    """Where each planned buffer lives inside one static workspace.

    `offsets[v]`: byte offset of alloc result `v` (a multiple of 64); `sizes[v]`: the
    bytes reserved for it (its byte size rounded up to 64, at least 64); `intervals[v]`:
    its live range (positions of top-level ops); `peak_bytes`: workspace size (a multiple
    of 64); `total_bytes`: sum of `sizes` (what separate allocations would take).
    """

    offsets: dict[SSAValue, int]
    sizes: dict[SSAValue, int]
    intervals: dict[SSAValue, Interval]
    peak_bytes: int
    total_bytes: int

    def report(self) -> str:
        """One line: peak workspace bytes vs the sum of all intermediates."""
        n = len(self.offsets)
        if self.total_bytes == 0:
            return "workspace: 0 buffers, 0 bytes"
        saved = self.total_bytes - self.peak_bytes
        pct = 100.0 * self.peak_bytes / self.total_bytes
        return (
            f"workspace: {n} buffers, peak {self.peak_bytes} bytes vs {self.total_bytes} bytes "
            f"of separate intermediates ({pct:.1f}%, {saved} bytes saved)"
        )


# --------------------------------------------------------------------------- sizes


def _element_bytes(ty: Attribute) -> int | None:
    if isinstance(ty, IndexType):
        return 8
    if isinstance(ty, IntegerType):
        return max(1, align_up(ty.width.data, 8) // 8)  # i1 is a byte
    if isinstance(ty, AnyFloat):
        return align_up(ty.bitwidth, 8) // 8
    return None


def buffer_bytes(ty: Attribute) -> int | None:
    """Byte size of a static, row-major `memref` type; None if it can't be planned."""
    if not isinstance(ty, MemRefType):
        return None
    shape = list(ty.get_shape())
    if any(d < 0 for d in shape):
        return None
    layout = ty.layout
    if not isinstance(layout, NoneAttr):
        if not isinstance(layout, StridedLayoutAttr):
            return None
        strides, stride = [], 1
        for d in reversed(shape):
            strides.append(stride)
            stride *= d
        if list(layout.get_strides()) != strides[::-1] or layout.get_offset() not in (0, None):
            return None
    elem = _element_bytes(ty.element_type)
    if elem is None:
        return None
    n = 1
    for d in shape:
        n *= d
    return n * elem


# --------------------------------------------------------------------------- liveness


def _is_buffer_like(ty: Attribute) -> bool:
    return isinstance(ty, MemRefType | UnrankedMemRefType | LLVMPointerType)


def _top_level(op: Operation, block: Block) -> Operation | None:
    """The ancestor of `op` (or `op` itself) directly in `block`."""
    cur: Operation | None = op
    while cur is not None and cur.parent_block() is not block:
        cur = cur.parent_op()
    return cur


def _aliases(op: Operation, used: SSAValue) -> Iterable[SSAValue]:
    """Values through which `op`, a user of `used`, may expose the same memory."""
    for r in op.results:
        if _is_buffer_like(r.type):
            yield r
    if op.has_trait(IsTerminator):
        parent = op.parent_op()
        if parent is not None:
            for r in parent.results:
                if _is_buffer_like(r.type):
                    yield r


def live_intervals(f: func.FuncOp) -> dict[SSAValue, Interval]:
    """Live range of every plannable top-level `memref.alloc` of `f` (see the module doc).

    Returned allocs, nested allocs and unplannable memref types are left out.
    """
    block = f.body.block
    position = {op: i for i, op in enumerate(block.ops)}
    ret = block.last_op
    returned = set(ret.operands) if isinstance(ret, func.ReturnOp) else set()
    out: dict[SSAValue, Interval] = {}
    for op in block.ops:
        if not isinstance(op, memref.AllocOp):
            continue
        buf = op.memref
        if buf in returned or buffer_bytes(buf.type) is None:
            continue
        start = last = position[op]
        seen: set[SSAValue] = {buf}
        work = [buf]
        while work:
            v = work.pop()
            for use in v.uses:
                user = use.operation
                if isinstance(user, memref.DeallocOp):
                    continue
                top = _top_level(user, block)
                if top is not None:
                    last = max(last, position[top])
                for a in _aliases(user, v):
                    if a not in seen:
                        seen.add(a)
                        work.append(a)
        out[buf] = (start, last)
    return out


# --------------------------------------------------------------------------- placement


def _overlap(a: Interval, b: Interval) -> bool:
    return a[0] <= b[1] and b[0] <= a[1]


def _first_fit(
    order: Sequence[int],
    intervals: Sequence[Interval],
    sizes: Sequence[int],
    alignment: int,
) -> list[int]:
    offsets = [0] * len(sizes)
    placed: list[int] = []
    for i in order:
        conflicts = sorted((offsets[j], j) for j in placed if _overlap(intervals[i], intervals[j]))
        at = 0
        for off, j in conflicts:
            if at + sizes[i] <= off:
                break
            at = max(at, align_up(off + sizes[j], alignment))
        offsets[i] = at
        placed.append(i)
    return offsets


def _peak(offsets: Sequence[int], sizes: Sequence[int], alignment: int) -> int:
    return align_up(max((o + s for o, s in zip(offsets, sizes)), default=0), alignment)


def assign_offsets(
    intervals: Sequence[Interval],
    sizes: Sequence[int],
    alignment: int = WORKSPACE_ALIGNMENT,
) -> tuple[list[int], int]:
    """Offsets (multiples of `alignment`) for buffers with closed live ranges `intervals`
    and byte `sizes`, such that buffers with intersecting ranges don't overlap; returns
    `(offsets, peak)` with `peak` (a multiple of `alignment`) >= every `offset + size`.

    `peak` never exceeds the sum of the aligned sizes: first fit never places a buffer
    past the end of a conflicting one, and those end within the sizes placed so far."""
    if len(intervals) != len(sizes):
        raise ValueError("assign_offsets: one interval per size")
    if any(s < 0 for s in sizes) or any(a > b for a, b in intervals):
        raise ValueError("assign_offsets: negative size or empty interval")
    n = len(sizes)
    by_size = sorted(range(n), key=lambda i: (-sizes[i], intervals[i][0], i))
    by_start = sorted(range(n), key=lambda i: (intervals[i][0], -sizes[i], i))
    best: list[int] | None = None
    best_peak = 0
    for order in (by_size, by_start):
        offsets = _first_fit(order, intervals, sizes, alignment)
        peak = _peak(offsets, sizes, alignment)
        if best is None or peak < best_peak:
            best, best_peak = offsets, peak
    assert best is not None
    return best, best_peak


def plan_workspace(f: func.FuncOp) -> WorkspacePlan:
    """Plan one static workspace for the intermediates (top-level, non-returned
    `memref.alloc`s) of single-block function `f`."""
    intervals = live_intervals(f)
    bufs = list(intervals)
    sizes = [align_up(max(buffer_bytes(b.type) or 0, 1)) for b in bufs]
    offsets, peak = assign_offsets([intervals[b] for b in bufs], sizes)
    return WorkspacePlan(
        offsets=dict(zip(bufs, offsets)),
        sizes=dict(zip(bufs, sizes)),
        intervals=intervals,
        peak_bytes=peak,
        total_bytes=sum(sizes),
    )
