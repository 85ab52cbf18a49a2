"""Code generation for `tl.for` kinds `unroll` and `vectorize` (part of `convert-tl-to-llvm`).

`unroll(f)`: the body is emitted `f` times per iteration with the induction variable
`base + u * step`; a loop whose factor equals its trip count disappears (constant ivs).
A remainder (trip count not a multiple of `f`) runs as a plain loop after the main one.

`vectorize(w)` around `tl.block`s: each block runs once per `w` consecutive iterations
with `vector<w x T>` values. Per operand, the flat buffer offset is linear in the lane
(`coefficient` below) or not:

    tl.for %j = 0 to 64 vectorize(16) {
      tl.block ... at(m = %i, n = %j)
          ins(%A[m] ...)        // coefficient 0: one scalar load, splat where mixed
          ins(%B[m, n] ...)     // coefficient 1: one vector load (masked if needed)
          ins(%X[n, m] ...)     // coefficient 64: 16 scalar loads (a gather)
          outs(%C[m, n] ...)    // must be coefficient 1: one vector store
    }

Values that do not depend on the lane stay scalar ("uniform") until an op mixes them with
vector values. A predicate or a pad guard that depends on the lane becomes a lane mask
(`llvm.masked.load` / `llvm.masked.store`, pad values as the pass-through); the block is
skipped when no lane is active. Whatever this scheme does not cover (an output that is not
contiguous along the lane, a non-linear index, a gather under a mask) is emitted as `w`
scalar copies of the block, so every vectorized loop compiles. A trip count that is not a
multiple of `w` ends with one masked iteration (`vectorize(w, masked)`) or a scalar loop.

A loop nest around blocks whose predicate does not depend on it is emitted twice
(`versioned_loop`): once without the predicates, where they hold everywhere, once as it is.
`LoopKindCodegen` emits through the function's `llvm_builder.FunctionBuilder`; what the
loops hold it lowers through its `NestedLowering` (`tl_to_llvm`'s function lowering, which
also picks the loop kind).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import cast

from xdsl.dialects import arith, llvm
from xdsl.dialects.builtin import (
    AnyFloat,
    DenseIntOrFPElementsAttr,
    FloatAttr,
    IntegerAttr,
    IntegerType,
    MemRefType,
    VectorType,
    i1,
    i32,
    i64,
)
from xdsl.ir import Attribute, BlockArgument, SSAValue
from xdsl.ir.affine import (
    AffineBinaryOpExpr,
    AffineBinaryOpKind,
    AffineConstantExpr,
    AffineDimExpr,
    AffineExpr,
    AffineMap,
)

from mlc.dialects.tl import BlockOp, ForOp, IndexOp, LoopKind, YieldOp, affine_range, linear_form
from mlc.lowering import llvm_ops
from mlc.lowering.arith_to_llvm import (
    constant,
    lanes_of,
    llvm_scalar_type,
    lower_scalar_op,
    select,
)
from mlc.lowering.llvm_builder import (
    FunctionBuilder,
    Index,
    NestedLowering,
    element_bytes,
    row_major_strides,
    static_memref,
    storage_type,
)

__all__ = [
    "MAX_DEINTERLEAVE",
    "LaneForm",
    "LoopKindCodegen",
    "always_in_bounds",
    "coefficient",
    "flat_address",
    "lane_form",
]


def coefficient(e: AffineExpr, dims: Sequence[int | None]) -> int | None:
    """d e / d lane, given each dimension's derivative (`None`: not linear in the lane)."""
    if isinstance(e, AffineDimExpr):
        return dims[e.position]
    if isinstance(e, AffineConstantExpr):
        return 0
    assert isinstance(e, AffineBinaryOpExpr)
    lhs, rhs = coefficient(e.lhs, dims), coefficient(e.rhs, dims)
    if e.kind == AffineBinaryOpKind.Add:
        return None if lhs is None or rhs is None else lhs + rhs
    if e.kind == AffineBinaryOpKind.Mul:
        if isinstance(e.rhs, AffineConstantExpr) and lhs is not None:
            return lhs * e.rhs.value
        if isinstance(e.lhs, AffineConstantExpr) and rhs is not None:
            return rhs * e.lhs.value
        return None if lhs != 0 or rhs != 0 else 0
    return 0 if lhs == 0 and rhs == 0 else None  # floordiv / mod / ceildiv


def flat_address(indices: Sequence[AffineExpr], strides: Sequence[int]) -> AffineExpr:
    """The element offset `sum(index_d * stride_d)`, with every pair
    `k * c * (e floordiv c) + k * (e mod c)` folded to `k * e` (a row-major split of `e`
    read back whole: a reshape's `(h floordiv 28) * 28 + h mod 28` is `h`)."""
    total: AffineExpr = AffineConstantExpr(0)
    for e, stride in zip(indices, strides, strict=True):
        total = total + e * stride
    coeffs, atoms, const = linear_form(total)
    remaining = list(atoms)
    folded: AffineExpr = AffineConstantExpr(const)
    for k_div, div in atoms:
        if (k_div, div) not in remaining or not _is(div, AffineBinaryOpKind.FloorDiv):
            continue
        assert isinstance(div, AffineBinaryOpExpr) and isinstance(div.rhs, AffineConstantExpr)
        c = div.rhs.value
        for k_mod, mod in remaining:
            if (
                _is(mod, AffineBinaryOpKind.Mod)
                and isinstance(mod, AffineBinaryOpExpr)
                and mod.rhs == div.rhs
                and mod.lhs == div.lhs
                and k_div == k_mod * c
            ):
                remaining.remove((k_div, div))
                remaining.remove((k_mod, mod))
                folded = folded + div.lhs * k_mod
                break
    for d, k in coeffs.items():
        folded = folded + AffineDimExpr(d) * k
    for k, atom in remaining:
        folded = folded + atom * k
    return folded


def _is(e: AffineExpr, kind: AffineBinaryOpKind) -> bool:
    """`e` is `x <kind> c` for a positive constant c."""
    return (
        isinstance(e, AffineBinaryOpExpr)
        and e.kind == kind
        and isinstance(e.rhs, AffineConstantExpr)
        and e.rhs.value > 0
    )


@dataclass(frozen=True)
class LaneForm:
    """An index over one vector iteration: `coef * lane + R`, where R does not depend on
    the lane and is a multiple of `multiple` (0: R is 0) whatever the other loops are."""

    coef: int
    multiple: int


def lane_form(e: AffineExpr, dims: Sequence[LaneForm], width: int) -> LaneForm | None:
    """`e` over loop variables (`dims[d]`: loop variable d's form) as a `LaneForm`, for
    lanes 0 .. width-1, or None. Unlike `coefficient`, floordiv and mod by a constant c
    are kept where the lane cannot carry across a multiple of c: with k = 16 * ko + ki
    and ki the lane, `k floordiv 64` is lane-invariant and `k mod 64` moves with it."""
    if isinstance(e, AffineDimExpr):
        return dims[e.position]
    if isinstance(e, AffineConstantExpr):
        return LaneForm(0, abs(e.value))
    assert isinstance(e, AffineBinaryOpExpr)
    lhs, rhs = lane_form(e.lhs, dims, width), lane_form(e.rhs, dims, width)
    if lhs is None or rhs is None:
        return None
    if e.kind == AffineBinaryOpKind.Add:
        return LaneForm(lhs.coef + rhs.coef, math.gcd(lhs.multiple, rhs.multiple))
    if e.kind == AffineBinaryOpKind.Mul:
        if isinstance(e.rhs, AffineConstantExpr):
            return LaneForm(lhs.coef * e.rhs.value, lhs.multiple * abs(e.rhs.value))
        if isinstance(e.lhs, AffineConstantExpr):
            return LaneForm(rhs.coef * e.lhs.value, rhs.multiple * abs(e.lhs.value))
        return None
    if not isinstance(e.rhs, AffineConstantExpr) or e.rhs.value <= 0 or lhs.coef < 0:
        return None
    c = e.rhs.value
    q = math.gcd(lhs.multiple, c)  # R is a multiple of q, and q divides c
    if lhs.coef * (width - 1) >= q:
        return None  # some lane may cross a multiple of c
    if e.kind == AffineBinaryOpKind.FloorDiv:  # floor((R + x) / c) = floor(R / c), x < q
        return LaneForm(0, lhs.multiple // c if lhs.multiple % c == 0 else 1)
    if e.kind == AffineBinaryOpKind.Mod:  # (R + x) mod c = (R mod c) + x, x < q
        return LaneForm(lhs.coef, q)
    return None


def _loop_var_forms(op: BlockOp, loop: ForOp, width: int) -> list[LaneForm]:
    """The `LaneForm` of each loop variable of `op` in one iteration of the vector `loop`:
    its induction variable is `base + step * lane` with base in `lb + width * step * Z`."""
    forms = []
    for v in op.loop_vars:
        owner = _loop_of(v)
        if v is loop.induction_var:
            forms.append(LaneForm(loop.step_value, math.gcd(loop.lb, width * loop.step_value)))
        elif owner is not None:
            forms.append(LaneForm(0, math.gcd(owner.lb, owner.step_value)))
        else:
            forms.append(LaneForm(0, 1))
    return forms


@functools.cache
def _dense(vty: VectorType, values: tuple[int, ...]) -> DenseIntOrFPElementsAttr:
    """The constant integer vector `values` of type `vty`, made once."""
    return DenseIntOrFPElementsAttr.from_list(vty, list(values))


@dataclass
class _Operand:
    """How one operand of a vectorized block is accessed."""

    index: int
    buffer: SSAValue
    type: MemRefType
    indices: list[AffineExpr]
    coefficients: list[int]  # per index dimension, d index / d lane
    flat: int  # d offset / d lane (elements)
    pad: Attribute | None
    init: Attribute | None
    #: a small stride (2 .. MAX_DEINTERLEAVE): contiguous loads and a shuffle instead of a
    #: gather (`strided_load`); `whole_rows`: `flat * width` elements from the lane-0
    #: element stay inside the buffer
    deinterleave: bool = False
    whole_rows: bool = False


class LoopKindCodegen:
    """Unrolled, vectorized and versioned `tl.for`s, emitted through `fb`; `nested` lowers
    what the loops hold (the loop kinds dispatch in `tl_to_llvm`)."""

    def __init__(self, fb: FunctionBuilder, nested: NestedLowering) -> None:
        self.fb = fb
        self.nested = nested
        self.versioned: set[BlockOp] = set()  # predicated blocks split by versioned_loop
        self.assume_predicates: set[BlockOp] = set()  # ... in the copy where they hold
        #: `vector_operands` per block, loop, width and point coefficients: an unrolled
        #: tile lowers one block many times with the same access patterns
        self._operands: dict[
            tuple[BlockOp, ForOp, int, tuple[int | None, ...]], list[_Operand] | None
        ] = {}

    def predicate_holds(self, op: BlockOp) -> bool:
        """`op`'s predicate holds at every point of the loop copy being emitted (a
        `versioned_loop`'s fast copy): its guard can be left out."""
        return op in self.assume_predicates

    def versioned_loop(self, op: ForOp) -> bool:
        """Index-set splitting for predicated blocks (imperfect splits): where a block's
        predicate does not depend on this loop, emit the loop twice, once for when the
        predicate holds at every point the loop nest reaches (its value bounded over the
        inner loops' static ranges; the copy has no predicate at all, so vector tiles
        stay in registers) and once as it is. Returns False if there is nothing to do."""
        fb = self.fb
        blocks = [
            b
            for b in op.walk()
            if isinstance(b, BlockOp)
            and b.predicate_map is not None
            and b.predicate_map.results
            and b not in self.versioned
        ]
        if not blocks:
            return False
        conds: list[SSAValue] = []
        chosen: list[BlockOp] = []
        for b in blocks:
            bound = self.predicate_bound(b, op)
            if bound is not None:
                conds.extend(bound)
                chosen.append(b)
        if not chosen:
            return False
        self.versioned.update(chosen)
        full: SSAValue | None = None
        for c in conds:
            full = fb.and_(full, c)
        assert full is not None
        fast, slow, join = fb.new_block(), fb.new_block(), fb.new_block()
        fb.insert(llvm_ops.cond_br(full, fast, [], slow, []))
        fb.block = fast
        self.assume_predicates.update(chosen)
        fb.serial_loop(op.lb, op.ub, op.step_value, lambda iv: self.body(op, iv))
        self.assume_predicates.difference_update(chosen)
        fb.insert(llvm_ops.br(join))
        fb.block = slow
        outer = _outer_guard_loop(chosen, op)
        if outer is not None:
            # the last iteration of the outer loop (an imperfect split's remainder tile),
            # peeled with its variable a constant: each unrolled copy's guard folds, and
            # LLVM keeps that tile in registers too
            last = outer.lb + (outer.trip_count - 1) * outer.step_value
            runtime = fb.values[outer.induction_var]
            peeled, generic = fb.new_block(), fb.new_block()
            fb.insert(llvm_ops.cond_br(fb.icmp("eq", runtime, last), peeled, [], generic, []))
            fb.block = peeled
            fb.values[outer.induction_var] = last
            fb.serial_loop(op.lb, op.ub, op.step_value, lambda iv: self.body(op, iv))
            fb.values[outer.induction_var] = runtime
            fb.insert(llvm_ops.br(join))
            fb.block = generic
        fb.serial_loop(op.lb, op.ub, op.step_value, lambda iv: self.body(op, iv))
        fb.insert(llvm_ops.br(join))
        fb.block = join
        return True

    def predicate_bound(self, b: BlockOp, loop: ForOp) -> list[SSAValue] | None:
        """`max(e) < 0` for each predicate `e` of `b` over every iteration of `loop` and the
        loops inside it (None: `e` depends on `loop` itself or on a serial loop inside it,
        or is not linear)."""
        fb = self.fb
        forms = [linear_form(e) for e in _guards(b)]
        used = {i for coeffs, _, _ in forms for i in coeffs}
        inner: dict[int, tuple[int, int]] = {}  # loop var position -> value range
        for i in used:
            v = b.loop_vars[i]
            owner = _loop_of(v)
            if owner is loop:
                return None
            if owner is not None and loop.is_ancestor(owner):
                if owner.trip_count < 1 or owner.loop_kind in (LoopKind.SERIAL, LoopKind.PARALLEL):
                    return None  # version further in, where the predicate is invariant
                last = owner.lb + (owner.trip_count - 1) * owner.step_value
                inner[i] = (owner.lb, last)
            elif v not in fb.values:
                return None
        if not inner:
            return None  # uniform over the nest: the block's own branch is invariant
        conds = []
        for coeffs, atoms, const in forms:
            if atoms:
                return None
            bound: Index = const
            for i, c in coeffs.items():
                if i in inner:
                    lo, hi = inner[i]
                    bound = fb.add(bound, max(c * lo, c * hi))
                else:
                    bound = fb.add(bound, fb.mul(fb.values[b.loop_vars[i]], c))
            conds.append(fb.icmp("slt", bound, 0))
        return conds

    def body(self, op: ForOp, iv: Index) -> None:
        """One iteration of `op`: its induction variable is `iv`."""
        self.fb.values[op.induction_var] = iv
        self.nested.lower_ops(op.body.block)

    def unrolled_loop(self, op: ForOp) -> None:
        """`unroll(f)`: `f` copies of the body per iteration, then the remainder."""
        fb = self.fb
        n, step = op.trip_count, op.step_value
        factor = min(op.factor.value.data if op.factor else n, n)
        main = n - n % factor

        def unrolled(base: Index) -> None:
            for u in range(factor):
                self.body(op, fb.add(base, u * step))

        fb.serial_loop(op.lb, op.lb + main * step, factor * step, unrolled)
        fb.serial_loop(op.lb + main * step, op.ub, step, lambda iv: self.body(op, iv))

    # ------------------------------------------------------------------ vectorize

    def vectorizable(self, op: ForOp) -> bool:
        """`op` holds only `tl.block`s (what `vector_loop` handles)."""
        ops = list(op.body.block.ops)
        return all(isinstance(o, BlockOp) for o in ops[:-1]) and isinstance(ops[-1], YieldOp)

    def vector_loop(self, op: ForOp) -> None:
        """`vectorize(w)`: each block once per `w` iterations, then the tail."""
        n, step = op.trip_count, op.step_value
        width = min(op.width.value.data if op.width else n, n)
        main = n - n % width
        blocks = [o for o in op.body.block.ops if isinstance(o, BlockOp)]

        def vector_body(base: Index, active: int | None = None) -> None:
            for block in blocks:
                self.vector_block(block, op, base, width, active)

        self.fb.serial_loop(op.lb, op.lb + main * step, width * step, vector_body)
        tail = op.lb + main * step
        if n % width and op.masked is not None:
            vector_body(tail, n % width)
        else:
            self.fb.serial_loop(tail, op.ub, step, lambda iv: self.body(op, iv))

    def vector_block(
        self,
        op: BlockOp,
        loop: ForOp,
        base: Index,
        width: int,
        active: int | None,
    ) -> None:
        """`op` for the `width` iterations of `loop` from `base` (`active`: lanes that run)."""
        fb = self.fb
        step = loop.step_value
        fb.values[loop.induction_var] = base
        loop_dims = [step if v is loop.induction_var else 0 for v in op.loop_vars]
        point_coef = [coefficient(e, loop_dims) for e in op.binding_map.results]
        key = (op, loop, width, tuple(point_coef))
        if key not in self._operands:
            self._operands[key] = self.vector_operands(op, point_coef, loop, width)
        operands = self._operands[key]
        pred = op.predicate_map.results if op.predicate_map is not None else ()
        if self.predicate_holds(op):
            pred = ()  # holds at every point here (see versioned_loop)
        pred_coef = [coefficient(e, point_coef) for e in pred] if None not in point_coef else []
        needs_mask = active is not None or any(c != 0 for c in pred_coef)
        if (
            operands is None
            or None in pred_coef
            or (needs_mask and any(o.flat not in (0, 1) for o in operands))
        ):
            lanes = width if active is None else active
            for lane in range(lanes):  # scalar copies
                fb.values[loop.induction_var] = fb.add(base, lane * step)
                self.nested.lower_block(op)
            return
        coef = cast(list[int], point_coef)
        loop_vars = [fb.values[v] for v in op.loop_vars]
        point = [fb.affine(e, loop_vars) for e in op.binding_map.results]
        lane_preds = [(e, c) for e, c in zip(pred, cast(list[int], pred_coef)) if c != 0]
        if lane_preds and active is None:
            # two versions: every lane valid (no mask: plain loads and stores, which LLVM
            # keeps in registers across reduction loops) or not (masked)
            full: SSAValue | None = None
            for e, c in lane_preds:
                last = fb.add(fb.affine(e, point), max(0, c * (width - 1)))
                full = fb.and_(full, fb.icmp("slt", last, 0))
            assert full is not None
            fast, slow, join = fb.new_block(), fb.new_block(), fb.new_block()
            fb.insert(llvm_ops.cond_br(full, fast, [], slow, []))
            fb.block = fast
            self.vector_block_body(op, operands, point, coef, pred, pred_coef, width, None, False)
            fb.insert(llvm_ops.br(join))
            fb.block = slow
            self.vector_block_body(op, operands, point, coef, pred, pred_coef, width, None, True)
            fb.insert(llvm_ops.br(join))
            fb.block = join
            return
        self.vector_block_body(op, operands, point, coef, pred, pred_coef, width, active, True)

    def vector_block_body(
        self,
        op: BlockOp,
        operands: list[_Operand],
        point: list[Index],
        coef: list[int],
        pred: Sequence[AffineExpr],
        pred_coef: Sequence[int | None],
        width: int,
        active: int | None,
        lane_masks: bool,
    ) -> None:
        """The vector code of `op` at `point` (lane-dependent predicates as a lane mask
        if `lane_masks`, else assumed to hold for every lane)."""
        fb = self.fb
        # the predicate: uniform parts branch, lane-dependent parts make the mask
        mask: SSAValue | None = None
        if active is not None:
            mask = self.lane_constant([1 if i < active else 0 for i in range(width)], i1)
        uniform: list[SSAValue] = []
        for e, c in zip(pred, cast(list[int], pred_coef)):
            value = fb.affine(e, point)
            if c == 0:
                uniform.append(fb.icmp("slt", value, 0))
            elif lane_masks:
                lanes = self.lanes(value, c, width)
                zero = self.lane_constant([0] * width, i64)
                mask = fb.and_(mask, fb.icmp("slt", lanes, zero))
        after = None
        if uniform or (mask is not None and active is None):
            cond = None
            for c in uniform:
                cond = fb.and_(cond, c)
            if mask is not None and active is None:
                name = f"llvm.vector.reduce.or.v{width}i1"
                any_lane = fb.insert(llvm_ops.call_intrinsic(name, [mask], [i1])).results[0]
                cond = fb.and_(cond, any_lane)
            assert cond is not None
            then, after = fb.new_block(), fb.new_block()
            fb.insert(llvm_ops.cond_br(cond, then, [], after, []))
            fb.block = then
        env: dict[SSAValue, SSAValue] = {}
        stores: list[tuple[SSAValue, _Operand]] = []
        at_start: SSAValue | None = None
        args = op.body_block.args
        n_in = len(op.inputs)
        for o in operands:
            idx = [fb.affine(e, point) for e in o.indices]
            element = o.type.element_type
            if o.index >= n_in:
                ptr = fb.element_ptr(fb.values[o.buffer], o.type, idx)
                stores.append((ptr, o))
                if not args[o.index].uses:
                    continue  # written, never read: not loaded
                if o.init is not None and not op.reduction_dims:
                    env[args[o.index]] = fb.shared_constant(o.init.value.data, element)
                    continue
                value = self.vector_load(ptr, element, width, mask)
                if o.init is not None:
                    if at_start is None:
                        at_start = fb.all_zero([point[d] for d in op.reduction_dims])
                    init = fb.splat_constant(o.init.value.data, element, width)
                    value = select(fb.b, at_start, init, value)
                env[args[o.index]] = value
            elif o.pad is not None:
                env[args[o.index]] = self.padded_load(o, idx, width, mask)
            elif o.flat == 0:
                ptr = fb.element_ptr(fb.values[o.buffer], o.type, idx)
                env[args[o.index]] = fb.load(ptr, element)
            elif o.flat == 1:
                ptr = fb.element_ptr(fb.values[o.buffer], o.type, idx)
                env[args[o.index]] = self.vector_load(ptr, element, width, mask)
            elif o.deinterleave and mask is None:
                ptr = fb.element_ptr(fb.values[o.buffer], o.type, idx)
                env[args[o.index]] = self.strided_load(ptr, element, width, o.flat, o.whole_rows)
            else:
                env[args[o.index]] = self.gather(o, idx, width)
        names = op.iterator_names
        for body_op in op.body_block.ops:
            if isinstance(body_op, YieldOp):
                for value, (ptr, o) in zip(body_op.arguments, stores):
                    self.vector_store(fb.splat(env[value], width), ptr, o, mask)
            elif isinstance(body_op, IndexOp):
                d = names.index(body_op.iterator.data)
                env[body_op.result] = self.lanes(fb.v(point[d]), coef[d], width)
            elif isinstance(body_op, arith.ConstantOp) and isinstance(
                body_op.value, IntegerAttr | FloatAttr
            ):
                env[body_op.result] = fb.shared_constant(
                    body_op.value.value.data, body_op.result.type
                )
            else:
                values = [env[v] for v in body_op.operands]
                if any(lanes_of(v) > 1 for v in values):
                    values = [fb.splat(v, width) for v in values]
                env[body_op.results[0]] = lower_scalar_op(fb.b, body_op, values)
        if after is not None:
            fb.insert(llvm_ops.br(after))
            fb.block = after

    def vector_operands(
        self,
        op: BlockOp,
        point_coef: list[int | None],
        loop: ForOp,
        width: int,
    ) -> list[_Operand] | None:
        """Each operand's access pattern, or None where one is not vectorizable."""
        if None in point_coef:
            return None
        n_in = len(op.inputs)
        operands = []
        for k, (buf, m) in enumerate(zip([*op.inputs, *op.outputs], op.maps)):
            ty = static_memref(buf.type, f'tl.block "{op.label.data}" operand #{k}')
            coefs = [coefficient(e, point_coef) for e in m.results]
            if None in coefs:  # floordiv / mod: exact per lane where no lane carries
                forms = _loop_var_forms(op, loop, width)
                lanes = [lane_form(e.compose(op.binding_map), forms, width) for e in m.results]
                coefs = [None if f is None else f.coef for f in lanes]
            pad = op.pad_values[k] if k < n_in else None
            if pad is not None and always_in_bounds(op, m, ty.get_shape()):
                pad = None  # every read is inside the buffer: the guard is dead
            if None in coefs and k < n_in and pad is None:
                # no lane form per index (a reshape's `h floordiv 28, h mod 28`), but the
                # address as a whole may move linearly with the lane
                address = flat_address(list(m.results), row_major_strides(ty.get_shape()))
                flat_coef = coefficient(address, point_coef)
                if flat_coef in (0, 1):  # a scalar or one contiguous vector load
                    coefs = [0] * (len(coefs) - 1) + [flat_coef]
            if None in coefs:
                return None
            c = cast(list[int], coefs)
            flat = sum(ci * s for ci, s in zip(c, row_major_strides(ty.get_shape())))
            init = op.init_values[k - n_in] if k >= n_in else None
            if k >= n_in and flat != 1:
                return None  # outputs are stored as whole vectors
            if pad is not None and flat != 0 and (any(c[:-1]) or c[-1] != 1):
                return None  # a padded read must be contiguous along the last dimension
            strided = k < n_in and pad is None and 2 <= flat <= MAX_DEINTERLEAVE
            whole = strided and _wide_read_in_bounds(op, m, ty.get_shape(), flat)
            strided = strided and (flat * (width - 1) + 1 <= 2 * width or whole)
            operands.append(
                _Operand(k, buf, ty, list(m.results), c, flat, pad, init, strided, whole)
            )
        return operands

    # ------------------------------------------------------------------ vector helpers

    def lane_constant(self, values: Sequence[int], element: Attribute) -> SSAValue:
        """A constant vector of integer `values` (one per lane) of LLVM type `element`."""
        vty = llvm_ops.vector_type(element, len(values))
        return self.fb.insert(llvm_ops.constant_op(_dense(vty, tuple(values)), vty)).result

    def lanes(self, value: Index, c: int, width: int) -> SSAValue:
        """`value + lane * c` for lane = 0 .. width-1 (the scalar itself where c == 0)."""
        fb = self.fb
        value = fb.v(value)
        if c == 0:
            return value
        iota = self.lane_constant([lane * c for lane in range(width)], i64)
        return fb.insert(llvm_ops.overflow_op(llvm.AddOp, fb.splat(value, width), iota)).results[0]

    def vector_load(
        self,
        ptr: SSAValue,
        element: Attribute,
        width: int,
        mask: SSAValue | None,
        passthru: SSAValue | None = None,
    ) -> SSAValue:
        """`width` elements of builtin type `element` from `ptr` (lanes of `mask` only,
        the others from `passthru`)."""
        fb = self.fb
        st = storage_type(element)
        vty = llvm_ops.vector_type(st, width)
        align = element_bytes(st)
        if mask is None:
            value = fb.insert(llvm_ops.load(ptr, vty, align)).dereferenced_value
        else:
            if passthru is None:
                passthru = fb.insert(llvm_ops.undef(vty)).res
            elif st != llvm_scalar_type(element):
                passthru = fb.insert(llvm.ZExtOp(passthru, vty)).results[0]
            name = f"llvm.masked.load.v{width}{_suffix(st)}.p0"
            args = [ptr, constant(fb.b, align, i32), mask, passthru]
            value = fb.insert(llvm_ops.call_intrinsic(name, args, [vty])).results[0]
        if st != llvm_scalar_type(element):
            value = fb.insert(llvm.TruncOp(value, llvm_ops.vector_type(i1, width))).results[0]
        return value

    def vector_store(
        self,
        value: SSAValue,
        ptr: SSAValue,
        o: _Operand,
        mask: SSAValue | None,
    ) -> None:
        """Store vector `value` to operand `o` at `ptr` (lanes of `mask` only)."""
        fb = self.fb
        st = storage_type(o.type.element_type)
        width = lanes_of(value)
        if st != llvm_scalar_type(o.type.element_type):
            value = fb.insert(llvm.ZExtOp(value, llvm_ops.vector_type(st, width))).results[0]
        align = element_bytes(st)
        if mask is None:
            fb.insert(llvm_ops.store(value, ptr, align))
            return
        name = f"llvm.masked.store.v{width}{_suffix(st)}.p0"
        args = [value, ptr, constant(fb.b, align, i32), mask]
        fb.insert(llvm_ops.call_intrinsic(name, args, []))

    def padded_load(
        self,
        o: _Operand,
        idx: list[Index],
        width: int,
        mask: SSAValue | None,
    ) -> SSAValue:
        """A guarded read: the pad value where the index leaves the buffer."""
        fb = self.fb
        element = o.type.element_type
        assert o.pad is not None
        shape = o.type.get_shape()
        if o.flat == 0:  # uniform: the scalar clamp-and-select
            valid = fb.in_bounds(idx, shape)
            ptr = fb.element_ptr(fb.values[o.buffer], o.type, fb.clamp(idx, valid))
            loaded = fb.load(ptr, element)
            pad = constant(fb.b, o.pad.value.data, element)
            return select(fb.b, valid, loaded, pad)
        # contiguous along the last dimension: lanes inside [0, shape[-1]) are read
        valid = fb.in_bounds(idx[:-1], shape[:-1])
        last = self.lanes(fb.v(idx[-1]), 1, width)
        bound = self.lane_constant([shape[-1]] * width, i64)
        lane_ok = fb.icmp("ult", last, bound)
        lane_ok = fb.insert(llvm.AndOp(lane_ok, fb.splat(valid, width))).results[0]
        if mask is not None:
            lane_ok = fb.insert(llvm.AndOp(lane_ok, mask)).results[0]
        ptr = fb.element_ptr(fb.values[o.buffer], o.type, idx, inbounds=False)
        pad = fb.splat_constant(o.pad.value.data, element, width)
        return self.vector_load(ptr, element, width, lane_ok, pad)

    def strided_load(
        self,
        ptr: SSAValue,
        element: Attribute,
        width: int,
        stride: int,
        whole: bool,
    ) -> SSAValue:
        """Lanes `ptr[0], ptr[stride], ...` from contiguous loads and one shuffle (a
        stride-2 pooling window): two loads of `width` elements, the second ending at the
        last lane's element, where they cover the span (stride 2); else one load of
        `stride * width` (`whole`: that read past the last lane stays in the buffer)."""
        span = stride * (width - 1) + 1
        lanes = [j * stride for j in range(width)]
        if span <= 2 * width:
            second_at = span - width
            first = self.vector_load(ptr, element, width, None)
            gep = llvm_ops.gep(ptr, second_at, storage_type(element), inbounds=True)
            second = self.vector_load(self.fb.insert(gep).result, element, width, None)
            picks = [e if e < width else width + e - second_at for e in lanes]
        else:
            assert whole, "a strided load past the span needs the whole read in bounds"
            first = second = self.vector_load(ptr, element, stride * width, None)
            picks = lanes
        vty = llvm_ops.vector_type(first.type.element_type, width)  # type: ignore[attr-defined]
        return self.fb.insert(llvm_ops.shuffle(first, second, picks, vty)).res

    def gather(self, o: _Operand, idx: list[Index], width: int) -> SSAValue:
        """Lane by lane: one scalar load each, inserted into a vector."""
        fb = self.fb
        element = o.type.element_type
        vec = fb.insert(llvm_ops.undef(llvm_ops.vector_type(llvm_scalar_type(element), width))).res
        for lane in range(width):
            at = [fb.add(i, lane * c) for i, c in zip(idx, o.coefficients)]
            ptr = fb.element_ptr(fb.values[o.buffer], o.type, at)
            value = fb.load(ptr, element)
            vec = fb.insert(llvm.InsertElementOp(vec, value, fb.v(lane))).res
        return vec


#: the largest lane stride read as one wide load and a shuffle (`strided_load`)
MAX_DEINTERLEAVE = 4


def _wide_read_in_bounds(op: BlockOp, m: AffineMap, shape: Sequence[int], stride: int) -> bool:
    """A whole `strided_load` of map `m` (`stride * width` elements) reads `stride - 1`
    elements past the last lane's: still inside the buffer over `op`'s iteration domain
    (the flat offset's bound)?"""
    ranges = [(0, it.extent.data - 1) for it in op.iterator_list]
    address = flat_address(list(m.results), row_major_strides(shape))
    lo, hi = affine_range(address, ranges)
    return lo >= 0 and hi + stride - 1 < math.prod(shape)


def always_in_bounds(op: BlockOp, m: AffineMap, shape: Sequence[int]) -> bool:
    """Every index of map `m` stays inside `shape` over `op`'s iteration domain (so a pad
    guard on that read never fires: e.g. a read from a buffer padded by cache_read)."""
    ranges = [(0, it.extent.data - 1) for it in op.iterator_list]
    for e, size in zip(m.results, shape):
        lo, hi = affine_range(e, ranges)
        if lo < 0 or hi >= size:
            return False
    return True


def _suffix(ty: Attribute) -> str:
    if isinstance(ty, IntegerType):
        return f"i{ty.width.data}"
    return f"f{cast(AnyFloat, ty).bitwidth}"


def _outer_guard_loop(blocks: Sequence[BlockOp], op: ForOp) -> ForOp | None:
    """The one loop outside `op`, with static bounds, whose variable the predicates of
    `blocks` use (besides loops inside `op`), or None: `versioned_loop` peels its last
    iteration."""
    found: set[ForOp] = set()
    for b in blocks:
        for e in _guards(b):
            for i in e.used_dims():
                owner = _loop_of(b.loop_vars[i])
                if owner is not None and owner.is_ancestor(op) and owner is not op:
                    found.add(owner)
                elif not (owner is not None and op.is_ancestor(owner)):
                    return None  # a variable from elsewhere: no single loop to peel
    if len(found) != 1:
        return None
    (loop,) = found
    return loop if loop.trip_count >= 2 else None


def _loop_of(v: SSAValue) -> ForOp | None:
    """The `tl.for` whose induction variable `v` is, or None."""
    owner = v.owner.parent_op() if isinstance(v, BlockArgument) else None
    return owner if isinstance(owner, ForOp) else None


def _guards(b: BlockOp) -> list[AffineExpr]:
    """The predicate of `b` over its loop variables (each `< 0` where it runs)."""
    assert b.predicate_map is not None
    bindings = list(b.binding_map.results)
    return [e.replace_dims_and_symbols(bindings, []) for e in b.predicate_map.results]
