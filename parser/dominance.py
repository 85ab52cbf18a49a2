"""SSA dominance for verification: every operand must be defined before it is used.

A value is visible in the block that defines it and in the regions nested in that block's
ops. Inside one block its definition must come first; across the blocks of one region (a
control-flow graph) the defining block must dominate the block of the use. As in MLIR,
uses in unreachable blocks and in graph regions (`builtin.module`'s body, and any region
of an unregistered op, which may be one) are not checked;
uses across an `IsolatedFromAbove` op are that trait's verifier's business.
"""

from __future__ import annotations

from collections.abc import Iterator

from xdsl.dialects.builtin import UnregisteredOp
from xdsl.ir import Block, BlockArgument, Operation, OpResult, Region, SSAValue

GRAPH_REGION_OPS = frozenset({"builtin.module", "equivalence.graph"})
"""Ops whose regions are graph regions: their ops may use values defined further down."""


class ControlFlow:
    """Reachability and dominance among the blocks of one region (Cooper, Harvey and
    Kennedy's iterative algorithm over the reverse postorder of the reachable blocks)."""

    def __init__(self, region: Region):
        self.order = _reverse_postorder(region)
        self._index = {block: i for i, block in enumerate(self.order)}
        self._idom = self._immediate_dominators()

    def is_reachable(self, block: Block) -> bool:
        return block in self._index

    def dominates(self, a: Block, b: Block) -> bool:
        """Whether every path from the entry to reachable block `b` goes through `a`."""
        while b is not a:
            parent = self._idom[b]
            if parent is b:  # the entry block
                return False
            b = parent
        return True

    def _immediate_dominators(self) -> dict[Block, Block]:
        if not self.order:
            return {}
        entry = self.order[0]
        preds: dict[Block, list[Block]] = {block: [] for block in self.order}
        for block in self.order:
            for succ in _successors(block):
                preds[succ].append(block)
        idom = {entry: entry}
        changed = True
        while changed:
            changed = False
            for block in self.order[1:]:
                done = [p for p in preds[block] if p in idom]
                new = done[0]
                for p in done[1:]:
                    new = self._intersect(p, new, idom)
                if idom.get(block) is not new:
                    idom[block] = new
                    changed = True
        return idom

    def _intersect(self, a: Block, b: Block, idom: dict[Block, Block]) -> Block:
        while a is not b:
            while self._index[a] > self._index[b]:
                a = idom[a]
            while self._index[b] > self._index[a]:
                b = idom[b]
        return a


def _may_be_graph_region(region: Region) -> bool:
    """Whether the ops of `region` may use values defined after them."""
    owner = region.parent
    return isinstance(owner, UnregisteredOp) or (
        owner is not None and owner.name in GRAPH_REGION_OPS
    )


def _successors(block: Block) -> tuple[Block, ...]:
    last = block.last_op
    return tuple(last.successors) if last is not None else ()


def _reverse_postorder(region: Region) -> list[Block]:
    """The blocks reachable from the region's entry block, in reverse postorder."""
    entry = region.blocks.first
    if entry is None:
        return []
    postorder: list[Block] = []
    seen = {entry}
    stack: list[tuple[Block, Iterator[Block]]] = [(entry, iter(_successors(entry)))]
    while stack:
        block, successors = stack[-1]
        succ = next((s for s in successors if s not in seen), None)
        if succ is None:
            stack.pop()
            postorder.append(block)
        else:
            seen.add(succ)
            stack.append((succ, iter(_successors(succ))))
    return postorder[::-1]


class DominanceChecker:
    """Checks that each op's operands dominate it; caches block orders and CFGs, so one
    checker serves a whole walk of a module (that is not modified meanwhile)."""

    def __init__(self) -> None:
        self._positions: dict[Block, dict[Operation, int]] = {}
        self._flows: dict[Region, ControlFlow] = {}

    def problem(self, op: Operation) -> str | None:
        """Why some operand of `op` is not visible at `op` (None if all are)."""
        for i, operand in enumerate(op.operands):
            why = self._operand_problem(operand, op)
            if why is not None:
                name = f" (%{operand.name_hint})" if operand.name_hint else ""
                return f"operand #{i}{name} {why}"
        return None

    def _operand_problem(self, value: SSAValue, user: Operation) -> str | None:
        if isinstance(value, OpResult):
            definer: Operation | None = value.op
            block = value.op.parent_block()
        elif isinstance(value, BlockArgument):
            definer, block = None, value.block
        else:
            return None
        if block is None or block.parent is None:
            return None  # defined by a detached op or block: not ours to judge
        region = block.parent
        ancestor: Operation | None = user
        while ancestor is not None and ancestor.parent_region() is not region:
            ancestor = ancestor.parent_op()
        if ancestor is None:
            return "is defined in a region that does not enclose its use"
        if ancestor is definer:
            return "is used before it is defined (it is a result of " + (
                "the op itself)" if user is definer else f"the enclosing '{definer.name}')"
            )
        if _may_be_graph_region(region):
            return None
        use_block = ancestor.parent_block()
        assert use_block is not None  # ancestor's parent region is `region`
        if use_block is block:
            if definer is not None and self._position(definer) > self._position(ancestor):
                return "is used before it is defined"
            return None
        flow = self._flow(region)
        if not flow.is_reachable(use_block) or flow.dominates(block, use_block):
            return None
        return (
            "is used where its definition does not dominate it "
            "(in a block not dominated by its own)"
        )

    def _position(self, op: Operation) -> int:
        block = op.parent_block()
        assert block is not None
        positions = self._positions.get(block)
        if positions is None:
            positions = {o: i for i, o in enumerate(block.ops)}
            self._positions[block] = positions
        return positions[op]

    def _flow(self, region: Region) -> ControlFlow:
        flow = self._flows.get(region)
        if flow is None:
            flow = self._flows[region] = ControlFlow(region)
        return flow
