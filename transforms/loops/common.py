"""Shared machinery of the loop transformations: the error type, stable loop names,
finding blocks and loops, rebinding loop variables in `tl.block`s, and the dependence
facts the legality checks use.

A loop is named `<block label>/<loop name>` where the loop name is the name hint of its
induction variable (`matmul/m`; the lowering names loops after iterators). Transformations
derive new names from old ones: split gives `m.o` / `m.i`, fuse of `m` and `n` gives
`m.n`. Printed IR may add a `_N` suffix to a reused name (`%m_1`); a name without the
suffix still finds such a loop when that is unambiguous.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator, Sequence

from xdsl.dialects import arith
from xdsl.dialects.builtin import AffineMapAttr, AnyFloat
from xdsl.ir import Attribute, Operation, SSAValue
from xdsl.ir.affine import AffineExpr, AffineMap
from xdsl.utils.exceptions import DiagnosticException

from mlc.dialects.tl import BlockOp, ForOp, linear_form
from mlc.dialects.tl.base import row_major_strides
from mlc.interpreters.tl.body import find_combiners
from mlc.lowering.tl_vector_to_llvm import flat_address

__all__ = [
    "COMMUTATIVE_COMBINERS",
    "ScheduleError",
    "block_loops",
    "block_flops",
    "block_work",
    "blocks_under",
    "loop_structure",
    "check_only_block_users",
    "find_block",
    "find_loop",
    "fresh_label",
    "fresh_loop_name",
    "injective_outputs",
    "lane_stride",
    "loop_name",
    "loop_of_block",
    "order_insensitive",
    "rebind",
    "remake_block",
    "split_loop_name",
    "uses_of",
]


class ScheduleError(DiagnosticException):
    """An illegal or impossible schedule request; the message names the loop and why."""


#: combiners for which any order of updates gives the same result (up to float
#: reassociation): a reduction with these may be reordered freely
COMMUTATIVE_COMBINERS: tuple[type[Operation], ...] = (
    arith.AddfOp,
    arith.MulfOp,
    arith.MaximumfOp,
    arith.MinimumfOp,
    arith.MaxnumfOp,
    arith.MinnumfOp,
    arith.AddiOp,
    arith.MuliOp,
    arith.MaxSIOp,
    arith.MinSIOp,
    arith.MaxUIOp,
    arith.MinUIOp,
    arith.AndIOp,
    arith.OrIOp,
    arith.XOrIOp,
)

_SUFFIX = re.compile(r"_\d+\Z")


def loop_name(loop: ForOp) -> str:
    """The loop's own name (its induction variable's name hint)."""
    return loop.induction_var.name_hint or "?"


def block_loops(block: Operation) -> list[ForOp]:
    """The `tl.for`s enclosing `block`, outermost first."""
    loops: list[ForOp] = []
    parent = block.parent_op()
    while parent is not None:
        if isinstance(parent, ForOp):
            loops.append(parent)
        parent = parent.parent_op()
    return loops[::-1]


def loop_structure(root: Operation) -> Iterator[Operation]:
    """`root` and the ops under it, in `walk` order, without entering `tl.block` bodies
    (scalar code, with no blocks or loops in it: most of a scheduled kernel's ops)."""
    yield root
    if isinstance(root, BlockOp):
        return
    for region in root.regions:
        for block in region.blocks:
            for op in block.ops:
                yield from loop_structure(op)


def find_block(root: Operation, label: str) -> BlockOp:
    """The one `tl.block` labelled `label` under `root`."""
    found = [
        op for op in loop_structure(root) if isinstance(op, BlockOp) and op.label.data == label
    ]
    if not found:
        labels = sorted({op.label.data for op in blocks_under(root)})
        raise ScheduleError(
            f'no tl.block labelled "{label}" (blocks: {", ".join(labels) or "none"})'
        )
    if len(found) > 1:
        raise ScheduleError(f'{len(found)} tl.blocks are labelled "{label}"; labels must be unique')
    return found[0]


def split_loop_name(name: str) -> tuple[str, str]:
    """`label/loop` as (`label`, `loop`)."""
    label, slash, short = name.rpartition("/")
    if not slash or not label or not short:
        raise ScheduleError(f"loop name '{name}' must have the form <block label>/<loop>")
    return label, short


def find_loop(root: Operation, name: str) -> tuple[BlockOp, ForOp]:
    """The block and loop that `label/loop` names."""
    block = find_block(root, split_loop_name(name)[0])
    return block, loop_of_block(block, name)


def loop_of_block(block: BlockOp, name: str) -> ForOp:
    """The loop around `block` that `label/loop` names (`label` is `block`'s)."""
    label, short = split_loop_name(name)
    loops = block_loops(block)
    exact = [loop for loop in loops if loop_name(loop) == short]
    if len(exact) == 1:
        return exact[0]
    loose = [loop for loop in loops if _SUFFIX.sub("", loop_name(loop)) == short]
    if not exact and len(loose) == 1:
        return loose[0]
    names = ", ".join(loop_name(loop) for loop in loops) or "none"
    raise ScheduleError(f"unknown loop '{name}': block \"{label}\" has loops {names}")


def fresh_loop_name(taken: Sequence[str], base: str) -> str:
    """`base`, or `base` with a numeric suffix if taken."""
    if base not in taken:
        return base
    k = 2
    while f"{base}{k}x" in taken:
        k += 1
    return f"{base}{k}x"


def fresh_label(root: Operation, base: str) -> str:
    """A block label not used under `root`."""
    labels = {op.label.data for op in blocks_under(root)}
    if base not in labels:
        return base
    k = 2
    while f"{base}{k}" in labels:
        k += 1
    return f"{base}{k}"


def _float_ops(block: BlockOp) -> int:
    """Floating-point arithmetic ops in `block`'s body (constants aside)."""
    return sum(
        1
        for op in block.body.walk()
        if op.name.startswith("arith.")
        and not isinstance(op, arith.ConstantOp)
        and any(isinstance(r.type, AnyFloat) for r in op.results)
    )


def block_flops(block: BlockOp) -> int:
    """Floating-point operations of `block` over its iteration space (a multiply-add is 2)."""
    return math.prod(block.extents) * _float_ops(block)


def block_work(block: BlockOp) -> int:
    """`block`'s iteration space times the ops of its body (at least 1 per point: a copy
    or an integer op): a machine-independent measure of its run time."""
    body_ops = max(
        1, sum(1 for op in block.body.walk() if not isinstance(op, arith.ConstantOp)) - 1
    )
    return math.prod(block.extents) * body_ops


def blocks_under(op: Operation) -> list[BlockOp]:
    """The `tl.block`s under `op` (and `op` itself, if one), in walk order."""
    return [b for b in loop_structure(op) if isinstance(b, BlockOp)]


def uses_of(value: SSAValue) -> list[tuple[Operation, int]]:
    return [(use.operation, use.index) for use in value.uses]


def check_only_block_users(loop: ForOp, name: str) -> None:
    """Transformations rewrite loop variables inside `tl.block` bindings only."""
    for user, _ in uses_of(loop.induction_var):
        if not isinstance(user, BlockOp):
            raise ScheduleError(
                f"loop '{name}': its induction variable is used by '{user.name}', not only "
                "by tl.block bindings"
            )


def remake_block(
    block: BlockOp,
    *,
    loop_vars: Sequence[SSAValue] | None = None,
    bindings: AffineMap | None = None,
    predicate: AffineMap | None = None,
    keep_predicate: bool = True,
    inputs: Sequence[SSAValue] | None = None,
    maps: Sequence[AffineMap] | None = None,
    inits: Sequence[Attribute] | None = None,
) -> BlockOp:
    """Replace `block` by a copy with some parts changed; returns the new block."""
    if predicate is None and keep_predicate:
        predicate = block.predicate_map
    new = BlockOp(
        block.label.data,
        block.iterator_list,
        list(block.loop_vars) if loop_vars is None else loop_vars,
        block.binding_map if bindings is None else bindings,
        list(block.inputs) if inputs is None else inputs,
        list(block.outputs),
        list(block.indexing_maps.data) if maps is None else [AffineMapAttr(m) for m in maps],
        list(block.pads.data),
        list(block.inits.data) if inits is None else inits,
        block.clone_body(),
        predicate,
        dict(block.attributes),
    )
    parent = block.parent_block()
    assert parent is not None
    parent.insert_op_before(new, block)
    parent.erase_op(block)
    return new


def rebind(block: BlockOp, subst: dict[SSAValue, tuple[Sequence[SSAValue], AffineExpr]]) -> BlockOp:
    """Replace loop variables in `block`'s bindings: `subst[v] = (vars, expr)` rewrites `v`
    to `expr`, an affine expression whose dim i is `vars[i]`."""
    old = list(block.loop_vars)
    if not any(v in subst for v in old):
        return block
    new_vars = [v for v in old if v not in subst]
    for v in old:
        if v in subst:
            for w in subst[v][0]:
                if w not in new_vars:
                    new_vars.append(w)
    dims: list[AffineExpr] = []
    for v in old:
        if v in subst:
            vars_, expr = subst[v]
            local = [AffineExpr.dimension(new_vars.index(w)) for w in vars_]
            dims.append(expr.replace_dims_and_symbols(local, []))
        else:
            dims.append(AffineExpr.dimension(new_vars.index(v)))
    bindings = block.binding_map.replace_dims_and_symbols(dims, [], len(new_vars), 0)
    return remake_block(block, loop_vars=new_vars, bindings=bindings)


def dims_of(block: BlockOp, value: SSAValue) -> set[int]:
    """Iterators of `block` whose binding uses the loop variable `value`."""
    if value not in block.loop_vars:
        return set()
    pos = list(block.loop_vars).index(value)
    return {d for d, e in enumerate(block.binding_map.results) if pos in e.used_dims()}


def plain_dim(e: AffineExpr) -> int | None:
    """The iterator `e` is exactly (`it`: coefficient 1, no offset), or None."""
    coeffs, atoms, const = linear_form(e)
    if atoms or const or len(coeffs) != 1 or next(iter(coeffs.values())) != 1:
        return None
    return next(iter(coeffs))


def lane_stride(m: AffineMap, d: int, shape: Sequence[int]) -> int | None:
    """Elements between consecutive values of iterator `d` in a buffer of `shape` read
    through the index map `m` (None: not linear in `d`). A row-major split read back
    whole (`h floordiv 28, h mod 28` over rows of 28) is linear: its flat address is."""
    stride, acc = 0, 1
    for e, size in zip(reversed(m.results), reversed(shape)):
        coeffs, atoms, _ = linear_form(e)
        if any(d in a.used_dims() for _, a in atoms):
            return _flat_stride(m, d, shape)
        stride += coeffs.get(d, 0) * acc
        acc *= size
    return stride


def _flat_stride(m: AffineMap, d: int, shape: Sequence[int]) -> int | None:
    address = flat_address(list(m.results), row_major_strides(list(shape)))
    coeffs, atoms, _ = linear_form(address)
    return None if any(d in a.used_dims() for _, a in atoms) else coeffs.get(d, 0)


def injective_outputs(block: BlockOp) -> bool:
    """Every output map sends distinct parallel points to distinct elements (each
    parallel iterator is, up to an offset, one of the output's index expressions)."""
    for m in block.output_maps:
        plain: set[int] = set()
        for e in m.results:
            nonzero, atoms, _ = linear_form(e)
            if not atoms and len(nonzero) == 1 and abs(next(iter(nonzero.values()))) == 1:
                plain.add(next(iter(nonzero)))
        if not all(d in plain for d in block.parallel_dims):
            return False
    return True


def order_insensitive(block: BlockOp) -> bool:
    """Updates of one output element commute: every output is `combiner(current, e)` with
    an associative and commutative combiner (floats: up to reassociation)."""
    combiners = find_combiners(block)
    return combiners is not None and all(isinstance(c.op, COMMUTATIVE_COMBINERS) for c in combiners)
