"""`convert-tl-kernel-to-loops`: structured `tl.kernel`s become explicit loop nests.

    tl.kernel "mm" iterators(m: M parallel, n: N parallel, k: K reduction)
        ins(%A[m, k] : ..., %B[k, n] : ...) outs(%C[m, n] init 0.0 : ...) {body}

becomes the init nest (the `decompose-reduction` shape: one loop per parallel iterator
around a block writing the init value) and the compute nest (one serial `tl.for` per
iterator, in iterator order, around a `tl.block` with the kernel's body):

    tl.for %m = 0 to M { tl.for %n = 0 to N {
      tl.block "mm_init" iterators(m: M parallel, n: N parallel) at(m = %m, n = %n)
          outs(%C[m, n] : ...) { yield 0.0 } } }
    tl.for %m = 0 to M { tl.for %n = 0 to N { tl.for %k = 0 to K {
      tl.block "mm" iterators(...) at(m = %m, n = %n, k = %k) ins(...) outs(%C[m, n] : ...) {body} } } }

With `keep_inits=true` an init stays in the block (it applies where every reduction
iterator is 0, TVM-style) instead of getting an init nest — for outputs whose map is
provably injective over the parallel iterators, where the two agree.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from xdsl.builder import Builder, InsertPoint
from xdsl.context import Context
from xdsl.dialects import arith
from xdsl.dialects.builtin import ArrayAttr, ModuleOp, UnitAttr
from xdsl.ir import Block, Operation, Region
from xdsl.ir.affine import AffineExpr, AffineMap
from xdsl.passes import ModulePass
from xdsl.pattern_rewriter import (
    GreedyRewritePatternApplier,
    PatternRewriter,
    PatternRewriteWalker,
    RewritePattern,
    op_type_rewrite_pattern,
)

from mlc.dialects.tl import (
    BlockOp,
    ForOp,
    IteratorAttr,
    KernelOp,
    YieldOp,
    build_loop_nest,
    linear_form,
)

__all__ = [
    "ConvertTlKernelToLoopsPass",
    "KernelToLoops",
    "init_nest",
    "injective_over_parallel",
    "kernel_to_loops",
]


def _loop_nest(iterators: list[IteratorAttr]) -> tuple[list[ForOp], Block]:
    """Serial loops `for %it = 0 to extent`, one per iterator; returns the loops (outermost
    first, not yet inserted anywhere but the outermost) and the innermost body block."""
    holder = Block()
    loops, _ = build_loop_nest(Builder(InsertPoint.at_end(holder)), [it.size for it in iterators])
    for loop, it in zip(loops, iterators):
        loop.induction_var.name_hint = it.label
    if loops:
        loops[0].detach()
    return loops, (loops[-1].body.block if loops else holder)


def _insert_innermost(loops: list[ForOp], holder: Block, op: Operation) -> list[Operation]:
    """Put `op` in the innermost loop (before its terminator); return the top-level ops."""
    if not loops:
        return [op]
    terminator = holder.last_op
    assert terminator is not None
    holder.insert_op_before(op, terminator)
    return [loops[0]]


def init_nest(kernel: KernelOp, outputs: Sequence[int] | None = None) -> list[Operation]:
    """The loop nest writing each output's init value at every index its map reaches
    (loops over the parallel iterators only), for the outputs numbered `outputs` (default:
    all with an init); empty if none of them has an init."""
    inits = [
        v if outputs is None or j in outputs else None for j, v in enumerate(kernel.init_values)
    ]
    if all(v is None for v in inits):
        return []
    parallel = kernel.parallel_dims
    iterators = [kernel.iterator_list[d] for d in parallel]
    n = len(kernel.iterators.data)
    # kernel dim d -> init-nest dim (reduction dims never appear in output maps)
    new_dims = [
        AffineExpr.dimension(parallel.index(d)) if d in parallel else AffineExpr.constant(0)
        for d in range(n)
    ]
    values, maps, types = [], [], []
    for j, (v, m, init) in enumerate(zip(kernel.outputs, kernel.output_maps, inits)):
        if init is None:
            continue
        values.append(v)
        maps.append(m.replace_dims_and_symbols(new_dims, [], len(parallel), 0))
        types.append(kernel.buffer_types[len(kernel.inputs) + j].element_type)
    body = Block(arg_types=types)
    constants = [arith.ConstantOp(init) for init in inits if init is not None]
    body.add_ops([*constants, YieldOp(*[c.result for c in constants])])
    loops, holder = _loop_nest(iterators)
    block = BlockOp(
        f"{kernel.label.data}_init",
        iterators,
        [loop.induction_var for loop in loops],
        AffineMap.identity(len(parallel)),
        [],
        values,
        maps,
        [],
        [UnitAttr()] * len(values),
        Region(body),
    )
    return _insert_innermost(loops, holder, block)


def injective_over_parallel(kernel: KernelOp, j: int) -> bool:
    """Output j's map provably sends distinct parallel points to distinct elements: every
    parallel iterator is (up to a constant offset) one of its index expressions."""
    exprs = kernel.output_maps[j].results
    plain = set()
    for e in exprs:
        nonzero, atoms, _ = linear_form(e)
        if not atoms and len(nonzero) == 1 and abs(next(iter(nonzero.values()))) == 1:
            plain.add(next(iter(nonzero)))
    return all(d in plain for d in kernel.parallel_dims)


def kernel_to_loops(kernel: KernelOp, keep_inits: bool = False) -> list[Operation]:
    """The ops replacing `kernel`: its init nest (unless `keep_inits`) and the loop nest
    over all iterators, in order, around a `tl.block` with the kernel's body."""
    # A block's init applies where every reduction iterator is 0, which is the kernel's
    # "fill first" only if each output element is reached by one parallel point.
    kept = [
        keep_inits and init is not None and injective_over_parallel(kernel, j)
        for j, init in enumerate(kernel.init_values)
    ]
    ops = init_nest(kernel, [j for j, k in enumerate(kept) if not k])
    iterators = kernel.iterator_list
    loops, holder = _loop_nest(iterators)
    block = BlockOp.like(
        kernel,
        [loop.induction_var for loop in loops],
        AffineMap.identity(len(iterators)),
    )
    block.inits = ArrayAttr([a if k else UnitAttr() for a, k in zip(kernel.inits.data, kept)])
    for name, value in kernel.attributes.items():
        block.attributes[name] = value
    return ops + _insert_innermost(loops, holder, block)


class KernelToLoops(RewritePattern):
    """tl.kernel -> init nest + for(it_0) ... for(it_n) tl.block at(it_i = %it_i)"""

    def __init__(self, keep_inits: bool = False) -> None:
        self.keep_inits = keep_inits

    @op_type_rewrite_pattern
    def match_and_rewrite(self, op: KernelOp, rewriter: PatternRewriter) -> None:
        rewriter.replace(op, kernel_to_loops(op, self.keep_inits), [])


@dataclass(frozen=True)
class ConvertTlKernelToLoopsPass(ModulePass):
    """Lower every `tl.kernel` to serial `tl.for` loops around a `tl.block`."""

    name = "convert-tl-kernel-to-loops"

    #: keep output inits in the block (applied where every reduction iterator is 0)
    #: instead of building a separate init loop nest
    keep_inits: bool = False

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        PatternRewriteWalker(
            GreedyRewritePatternApplier([KernelToLoops(self.keep_inits)]),
            apply_recursively=False,
        ).rewrite_module(op)
