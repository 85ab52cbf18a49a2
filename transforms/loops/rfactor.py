"""`tl-rfactor`: a reduction along a contiguous axis as `lanes` partial results and a
short final reduction (TVM's rfactor), so the long part vectorizes along that axis.

A row sum reads its input along the reduced axis; no output index is contiguous there,
so the default schedule could only vectorize across rows (a gather per lane) or not at
all. Split the reduction iterator `r` (extent R, a multiple of `lanes`) into
`r_o * lanes + r_i`, make `r_i` a parallel iterator indexing a new partials buffer, and
combine the partials in a second kernel:

    tl.kernel "sum" iterators(i: 64 parallel, j: 1024 reduction)
        ins(%x[i, j]) outs(%y[i] init 0.0)              { y += x }
      ->
    tl.kernel "sum_rf" iterators(i: 64 parallel, j_o: 64 reduction, j_i: 16 parallel)
        ins(%x[i, j_o * 16 + j_i]) outs(%p[i, j_i] init 0.0)   { p += x }
    tl.kernel "sum" iterators(i: 64 parallel, l: 16 reduction)
        ins(%p[i, l]) outs(%y[i] init 0.0)              { y += p }

The body must end in one combining op of the accumulator (`addf`, `maxnumf`, `addi`,
...). Integer and min / max reductions give identical results; a float sum or product is
reassociated (lanes partial sums), as any vectorized reduction is.

`rfactor_contiguous_reductions` applies it where it pays: every input that depends on
the innermost reduction iterator reads it contiguously, and that iterator has at least
`4 * lanes` steps (softmax, layer norm, mean over the last axis; not a matmul, whose B
is read across rows), and the partials buffer has at most `MAX_PARTIALS` elements.

`rfactor(..., outer=True)` splits the other way, into contiguous parts
(`r = r_p * (R / parts) + r_k`, partials `[parts, *output]`), which
`rfactor_matrix_vector` applies to matrix-vector products (a batch-1 Gemm: one long
reduction, one output index): each thread streams its own block of the matrix's rows
(AlexNet's 9216 -> 4096 layer on 2 threads: 11 -> 7 ms, where splitting the columns
instead made one thread 35 % slower, its rows no longer one stream).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import cast

from xdsl.context import Context
from xdsl.dialects import arith, memref
from xdsl.dialects.builtin import AnyFloat, IntegerType, MemRefType, ModuleOp, UnitAttr
from xdsl.ir import Attribute, Block, Operation, Region
from xdsl.ir.affine import AffineDimExpr, AffineExpr, AffineMap
from xdsl.passes import ModulePass

from mlc.dialects.tl import KernelOp
from mlc.dialects.tl.attrs import IteratorAttr, IteratorKind
from mlc.dialects.tl.base import IndexOp, YieldOp, scalar_attr
from mlc.transforms.loops.common import ScheduleError, lane_stride, plain_dim

__all__ = [
    "RfactorPass",
    "merge_contiguous_reductions",
    "rfactor",
    "rfactor_contiguous_reductions",
    "rfactor_matrix_vector",
]


def _float_identity(value: float) -> Callable[[Attribute], float | int]:
    return lambda ty: value


def _int_identity(fn: Callable[[int], int]) -> Callable[[Attribute], float | int]:
    return lambda ty: fn(cast(IntegerType, ty).width.data)


#: combining ops and their identity for an element type
COMBINERS: dict[type[Operation], Callable[[Attribute], float | int]] = {
    arith.AddfOp: _float_identity(0.0),
    arith.MulfOp: _float_identity(1.0),
    arith.MaximumfOp: _float_identity(float("-inf")),
    arith.MaxnumfOp: _float_identity(float("-inf")),
    arith.MinimumfOp: _float_identity(float("inf")),
    arith.MinnumfOp: _float_identity(float("inf")),
    arith.AddiOp: _int_identity(lambda w: 0),
    arith.MuliOp: _int_identity(lambda w: 1),
    arith.MaxSIOp: _int_identity(lambda w: -(1 << (w - 1))),
    arith.MinSIOp: _int_identity(lambda w: (1 << (w - 1)) - 1),
    arith.MaxUIOp: _int_identity(lambda w: 0),
    arith.MinUIOp: _int_identity(lambda w: -1),
    arith.OrIOp: _int_identity(lambda w: 0),
    arith.XOrIOp: _int_identity(lambda w: 0),
    arith.AndIOp: _int_identity(lambda w: -1),
}


def combiner_of(kernel: KernelOp) -> Operation | None:
    """The op that combines the accumulator with the new value (None: not of that form)."""
    if len(kernel.outputs) != 1 or not kernel.reduction_dims:
        return None
    block = kernel.body_block
    acc = block.args[-1]
    ops = list(block.ops)
    last = ops[-1]
    if not isinstance(last, YieldOp) or len(last.operands) != 1:
        return None
    op = last.operands[0].owner
    if type(op) not in COMBINERS or not isinstance(op, Operation):
        return None
    if list(op.operands).count(acc) != 1 or len(list(acc.uses)) != 1:
        return None
    element = cast(MemRefType, kernel.outputs[0].type).element_type
    if isinstance(op, arith.AddiOp | arith.MuliOp) and not isinstance(element, IntegerType):
        return None
    return op


def rfactor(
    kernel: KernelOp, iterator: str, lanes: int, outer: bool = False, suffix: str = "_rf"
) -> tuple[KernelOp, KernelOp] | None:
    """Split `kernel` (see the module docstring) along reduction `iterator`; returns the
    partials kernel and the combining kernel, or None where it does not apply. With
    `outer`, the split is `r = r_p * (R / lanes) + r_k`: `lanes` contiguous parts, the
    part iterator `r_p` first and the partials `[lanes, *output]` (threads take parts;
    see `rfactor_matrix_vector`). The partials kernel is the kernel's label + `suffix`."""
    combiner = combiner_of(kernel)
    iters = kernel.iterator_list
    names = [it.label for it in iters]
    if combiner is None or iterator not in names or lanes < 2:
        return None
    r = names.index(iterator)
    extent = iters[r].size
    if not iters[r].is_reduction or extent % lanes or extent == lanes:
        return None
    n = len(iters)
    out = kernel.outputs[0]
    out_type = cast(MemRefType, out.type)
    element = out_type.element_type
    out_map = kernel.maps[len(kernel.inputs)]
    dims = [AffineDimExpr(d) for d in range(n + 1)]
    if outer:  # r_p (parallel, first: dim n), then the old iterators with r -> r_k
        part_iters = [IteratorAttr(f"{iterator}_p", lanes, IteratorKind.PARALLEL)] + [
            IteratorAttr(f"{iterator}_k", extent // lanes, IteratorKind.REDUCTION) if d == r else it
            for d, it in enumerate(iters)
        ]
        dims = [AffineDimExpr(d + 1) for d in range(n)] + [AffineDimExpr(0)]
        subst: list[AffineExpr] = [
            dims[n] * (extent // lanes) + dims[r] if d == r else dims[d] for d in range(n)
        ]
    else:  # the old iterators with r -> r.o, then r.i (parallel, innermost: dim n)
        part_iters = [
            IteratorAttr(f"{iterator}_o", extent // lanes, IteratorKind.REDUCTION) if d == r else it
            for d, it in enumerate(iters)
        ] + [IteratorAttr(f"{iterator}_i", lanes, IteratorKind.PARALLEL)]
        subst = [dims[r] * lanes + dims[n] if d == r else dims[d] for d in range(n)]
    in_maps = [
        AffineMap(n + 1, 0, tuple(e.replace_dims_and_symbols(subst, []) for e in m.results))
        for m in kernel.maps[: len(kernel.inputs)]
    ]
    out_results = tuple(e.replace_dims_and_symbols(subst, []) for e in out_map.results)
    if outer:
        part_out = AffineMap(n + 1, 0, (dims[n], *out_results))
        part_shape = [lanes, *out_type.get_shape()]
    else:
        part_out = AffineMap(n + 1, 0, (*out_results, dims[n]))
        part_shape = [*out_type.get_shape(), lanes]
    alloc = memref.AllocOp.get(element, shape=part_shape)
    identity = scalar_attr(COMBINERS[type(combiner)](element), element)
    label = kernel.label.data
    partials = KernelOp(
        f"{label}{suffix}",
        part_iters,
        list(kernel.inputs),
        [alloc.memref],
        [*in_maps, part_out],
        [p if p is not None else UnitAttr() for p in kernel.pad_values],
        [identity],
        kernel.body.clone(),
    )
    # combine: the output's iterators (the old parallel ones), then l over the lanes
    par = [d for d in range(n) if not iters[d].is_reduction]
    m = len(par)
    comb_dims = [AffineDimExpr(k) for k in range(m + 1)]
    old_to_comb: list[AffineExpr] = [
        comb_dims[par.index(d)] if d in par else AffineExpr.constant(0) for d in range(n)
    ]
    comb_out = AffineMap(
        m + 1, 0, tuple(e.replace_dims_and_symbols(old_to_comb, []) for e in out_map.results)
    )
    if outer:
        comb_in = AffineMap(m + 1, 0, (comb_dims[m], *comb_out.results))
    else:
        comb_in = AffineMap(m + 1, 0, (*comb_out.results, comb_dims[m]))
    cblock = Block(arg_types=[element, element])
    value, acc = cblock.args
    combined = type(combiner).build(operands=[acc, value], result_types=[element])
    cblock.add_ops([combined, YieldOp(combined.results[0])])
    init = kernel.init_values[0]
    combine = KernelOp(
        label,
        [iters[d] for d in par] + [IteratorAttr("l", lanes, IteratorKind.REDUCTION)],
        [alloc.memref],
        [out],
        [comb_in, comb_out],
        [UnitAttr()],
        [init if init is not None else UnitAttr()],
        Region(cblock),
        attributes=dict(kernel.attributes),
    )
    parent = kernel.parent_block()
    assert parent is not None
    parent.insert_ops_before([alloc, partials, combine], kernel)
    parent.erase_op(kernel)
    return partials, combine


def _contiguous_reduction(kernel: KernelOp, lanes: int) -> str | None:
    """The innermost reduction iterator every input depending on it reads with stride 1
    (and at least 4 * lanes long), or None."""
    iters = kernel.iterator_list
    reductions = [d for d in kernel.reduction_dims if iters[d].size % lanes == 0]
    for d in reversed(reductions):
        if iters[d].size < 4 * lanes:
            continue
        readers = [
            k
            for k, m in enumerate(kernel.maps[: len(kernel.inputs)])
            if any(d in e.used_dims() for e in m.results)
        ]
        strides = [
            lane_stride(kernel.maps[k], d, cast(MemRefType, kernel.inputs[k].type).get_shape())
            for k in readers
        ]
        if readers and all(s == 1 for s in strides):
            return iters[d].label
    return None


def merge_contiguous_reductions(kernel: KernelOp) -> KernelOp | None:
    """A copy of `kernel` (not inserted) whose two innermost reduction iterators `a, b`
    are one, `a_b` of extent `A * B`, where every input that reads them reads them as its
    last two indices `[..., a, b]` of a row of exactly `B` elements: those `A * B`
    elements are contiguous, read as `[..., a_b floordiv B, a_b mod B]` (an average
    pool's 28 x 28 window: 784 = 98 vectors of 8, where 28 is not a multiple of 8).
    None where that does not hold (or the body uses `tl.index`). Pads carry over: the
    merged reads are the same elements."""
    iters = kernel.iterator_list
    reductions = kernel.reduction_dims
    if len(reductions) < 2 or any(isinstance(o, IndexOp) for o in kernel.body.walk()):
        return None
    a, b = reductions[-2], reductions[-1]
    n_in = len(kernel.inputs)
    readers = 0
    for k, m in enumerate(kernel.maps[:n_in]):  # outputs never use reduction iterators
        used = [j for j, e in enumerate(m.results) if {a, b} & e.used_dims()]
        if not used:
            continue
        shape = cast(MemRefType, kernel.inputs[k].type).get_shape()
        rank = len(m.results)
        if used != [rank - 2, rank - 1] or shape[-1] != iters[b].size:
            return None
        if [plain_dim(e) for e in m.results[-2:]] != [a, b]:
            return None
        readers += 1
    if not readers:
        return None
    inner = iters[b].size
    merged = IteratorAttr(
        f"{iters[a].label}_{iters[b].label}", iters[a].size * inner, IteratorKind.REDUCTION
    )
    new_iters = [merged if d == a else it for d, it in enumerate(iters) if d != b]
    position = [d - (d > b) for d in range(len(iters))]
    dims: list[AffineExpr] = [AffineDimExpr(position[d]) for d in range(len(iters))]
    dims[a] = AffineDimExpr(position[a]) // inner
    dims[b] = AffineDimExpr(position[a]) % inner
    maps = [
        AffineMap(len(new_iters), 0, tuple(e.replace_dims_and_symbols(dims, []) for e in m.results))
        for m in kernel.maps
    ]
    return KernelOp(
        kernel.label.data,
        new_iters,
        list(kernel.inputs),
        list(kernel.outputs),
        maps,
        [p if p is not None else UnitAttr() for p in kernel.pad_values],
        [i if i is not None else UnitAttr() for i in kernel.init_values],
        kernel.body.clone(),
        attributes=dict(kernel.attributes),
    )


#: the largest partials buffer (elements) `rfactor_contiguous_reductions` allocates
MAX_PARTIALS = 1 << 20


def _split_width(kernel: KernelOp, widths: list[int], outputs: int) -> tuple[str, int] | None:
    """(iterator, lanes): the first of `widths` whose partials fit `MAX_PARTIALS` and
    along which `kernel` reduces contiguously, or None."""
    for width in widths:
        if outputs * width <= MAX_PARTIALS:
            iterator = _contiguous_reduction(kernel, width)
            if iterator is not None:
                return iterator, width
    return None


def rfactor_contiguous_reductions(root: Operation, lanes: int, accumulators: int = 1) -> int:
    """`rfactor` every kernel under `root` whose reduction runs along a contiguous axis
    (see the module docstring; two innermost reduction axes that are contiguous together
    are merged first where neither alone qualifies, `merge_contiguous_reductions`) and
    whose partials fit `MAX_PARTIALS`; returns how many.
    With `accumulators` > 1, `lanes * accumulators` partials are tried first: as many
    independent vector accumulators, so the loop is not bound by the latency of one
    chain of adds (or maxes); then `lanes`. Those partials are combined in two steps
    (their combining kernel is split by `lanes` again): a vector add per accumulator,
    then `lanes` scalars."""
    count = 0
    widths = list(dict.fromkeys([lanes * accumulators, lanes]))
    for kernel in [op for op in root.walk() if isinstance(op, KernelOp)]:
        if combiner_of(kernel) is None:
            continue
        out_type = cast(MemRefType, kernel.outputs[0].type)
        if not isinstance(out_type.element_type, AnyFloat | IntegerType):
            continue
        outputs = out_type.element_count()
        found = _split_width(kernel, widths, outputs)
        if found is None:
            merged = merge_contiguous_reductions(kernel)
            if merged is None or (found := _split_width(merged, widths, outputs)) is None:
                continue
            parent = kernel.parent_block()  # the merge pays: replace the kernel by it
            assert parent is not None
            parent.insert_op_before(merged, kernel)
            parent.erase_op(kernel)
            kernel = merged
        split = rfactor(kernel, *found)
        if split is None:
            continue
        count += 1
        combine = split[1]
        if found[1] > lanes and (tail := _contiguous_reduction(combine, lanes)) is not None:
            # the accumulators' partials are combined a vector at a time, not by one
            # chain of scalar adds as long as all of them (softmax rows: 64 -> 16 -> 1)
            count += rfactor(combine, tail, lanes, suffix="_lanes") is not None
    return count


#: a matrix-vector product splits its reduction into this many parts (fewer if they do
#: not divide it) ...
MATVEC_PARTS = 8
#: ... when the reduction is at least this long and the output at most `MAX_PARTIALS` / parts
MATVEC_MIN_REDUCTION = 1024


def _matrix_vector_reduction(kernel: KernelOp) -> tuple[str, int] | None:
    """(reduction iterator, parts) for a matrix-vector product: one reduction iterator of
    `MATVEC_MIN_REDUCTION`+ steps, and one output index (the rest of the output, a batch
    of 1, has extent 1); None otherwise."""
    iters = kernel.iterator_list
    reductions = kernel.reduction_dims
    if len(reductions) != 1 or iters[reductions[0]].size < MATVEC_MIN_REDUCTION:
        return None
    wide = [d for d in kernel.parallel_dims if iters[d].size > 1]
    if len(wide) != 1:
        return None
    extent = iters[reductions[0]].size
    for parts in (MATVEC_PARTS, MATVEC_PARTS // 2, 2):
        if extent % parts == 0 and iters[wide[0]].size * parts <= MAX_PARTIALS:
            return iters[reductions[0]].label, parts
    return None


def rfactor_matrix_vector(root: Operation) -> int:
    """`rfactor(outer=True)` every matrix-vector product under `root` (a batch-1 Gemm):
    its parts are contiguous row blocks of the matrix, so threads each stream their own
    block (and one thread streams the matrix once, in order); returns how many."""
    count = 0
    for kernel in [op for op in root.walk() if isinstance(op, KernelOp)]:
        if combiner_of(kernel) is None:
            continue
        found = _matrix_vector_reduction(kernel)
        if found is not None and rfactor(kernel, found[0], found[1], outer=True) is not None:
            count += 1
    return count


@dataclass(frozen=True)
class RfactorPass(ModulePass):
    """`tl-rfactor{lanes=16 accumulators=1 kernel="" iterator="" outer=false}`: `rfactor`
    the named kernel along the named reduction iterator (`outer`: into `lanes` contiguous
    parts), or (no kernel named) every kernel reducing along a contiguous axis (into
    `lanes * accumulators` partials where they fit, else `lanes`) and every matrix-vector
    product (`rfactor_matrix_vector`)."""

    name = "tl-rfactor"
    lanes: int = 16
    accumulators: int = 1
    kernel: str = ""
    iterator: str = ""
    outer: bool = False

    def __post_init__(self) -> None:
        if self.lanes < 1:
            raise ValueError(f"lanes must be positive, got {self.lanes}")
        if self.accumulators < 1:
            raise ValueError(f"accumulators must be positive, got {self.accumulators}")

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        if not self.kernel:
            rfactor_contiguous_reductions(op, self.lanes, self.accumulators)
            rfactor_matrix_vector(op)
            return

        kernels = [k for k in op.walk() if isinstance(k, KernelOp) and k.label.data == self.kernel]
        if not kernels:
            raise ScheduleError(f'tl-rfactor: no tl.kernel "{self.kernel}"')
        for k in kernels:
            if rfactor(k, self.iterator, self.lanes, self.outer) is None:
                raise ScheduleError(
                    f'tl-rfactor: kernel "{self.kernel}" cannot be split along '
                    f"'{self.iterator}' by {self.lanes} (not a reduction iterator whose "
                    "extent is a multiple of lanes, or the body does not end in one "
                    "combining op)"
                )
