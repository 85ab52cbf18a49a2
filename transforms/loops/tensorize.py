"""Tensorize: replace the tile a loop nest computes by a hardware intrinsic.

The loops from `at` inward (perfectly nested, normalised `0 to N step 1`) around one
`tl.block` form the tile; loops of trip count 1 are ignored. The tile is normalised:

* each tile loop is an iterator with the loop's trip count, `reduction` when it only
  drives reduction iterators of the block, `parallel` when it only drives parallel ones;
* each operand's access (index map composed with the bindings; `floordiv` / `mod` are
  simplified where the tile loops' ranges allow, as for packed layouts
  `B[k floordiv 4, n, k mod 4]`) is affine in the loop variables: a base (loops outside
  the tile) plus one buffer element stride per tile loop;
* the body is the block's scalar body.

It is unified with each candidate intrinsic's normalised kernel
(`Intrinsic.kernel`): the bodies must be the same DAG of ops (commutative operands in
either order) over corresponding operands of equal element types; then an assignment of
the intrinsic's iterators to the tile loops must agree on kinds and extents (free sizes
such as `fma_tile`'s K are bound from the extents) and on every operand's strides (an
iterator that does not index an operand: stride 0; a fixed stride constraint: equal; a
free one: recorded for the hw op). The tile's block must not have an init (decompose the
reduction first), pads or a predicate. On success the loop `at` is replaced by index
arithmetic for the tiles' first elements and the intrinsic's hw op:

    tl.for %j = 0 to 16 { tl.for %k = 0 to 4 {
      tl.block "mm" ... at(m = %m, n = %n.o * 16 + %j, k = %k.o * 4 + %k)
        ins(%A[m, k] : memref<8x32xi8>, %Bp[k floordiv 4, n, k mod 4] : memref<8x64x4xi8>)
        outs(%C[m, n] : memref<8x64xi32>) { ... extui, extsi, muli, addi ... } } }
 -> hw.x86.vpdpbusd %C[%m, %n0], %A[%m, %k0], %Bp[%k.o, %n0, %c0] {lanes = 16 : i64} : ...

`explain` lists, for each candidate, the first thing that differed (a loop count, a
body op, an element type, an extent, a stride). `pack_vnni` packs an input into the
blocked layout such intrinsics read (`B[k, n]` -> `Bp[k / g, n, k % g]`), optionally
widening its elements (s8 -> i16 for `vpmaddwd`); `widen_input` widens an input in its
own layout (u8 `A` -> i16).
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import cast

from xdsl.builder import Builder, InsertPoint
from xdsl.context import Context
from xdsl.dialects import arith, memref
from xdsl.dialects.builtin import IndexType, IntegerAttr, IntegerType, MemRefType, ModuleOp
from xdsl.ir import Block, BlockArgument, Operation, OpResult, SSAValue
from xdsl.ir.affine import (
    AffineBinaryOpExpr,
    AffineBinaryOpKind,
    AffineConstantExpr,
    AffineDimExpr,
    AffineExpr,
    AffineMap,
)
from xdsl.passes import ModulePass

from mlc.dialects.hw.intrinsics import Intrinsic, TileOperand, get_intrinsic, intrinsics
from mlc.dialects.tl import (
    BlockOp,
    ForOp,
    KernelOp,
    YieldOp,
    affine_range,
    build_kernel,
    linear_form,
    row_major_strides,
)
from mlc.dialects.tl.loops import loop_var_range
from mlc.host import host_features
from mlc.lowering.texpr_to_tl import intrinsic_kernel
from mlc.transforms.loops.common import (
    ScheduleError,
    block_loops,
    find_block,
    find_loop,
    loop_name,
    remake_block,
)

__all__ = [
    "TensorizeMatch",
    "TlTensorizePass",
    "explain",
    "match_intrinsic",
    "pack_vnni",
    "simplify_divmod",
    "tensorize",
    "widen_input",
]

_COMMUTATIVE = (
    arith.AddiOp,
    arith.MuliOp,
    arith.AddfOp,
    arith.MulfOp,
    arith.MaxSIOp,
    arith.MinSIOp,
    arith.MaxUIOp,
    arith.MinUIOp,
    arith.MaximumfOp,
    arith.MinimumfOp,
    arith.AndIOp,
    arith.OrIOp,
    arith.XOrIOp,
)


class _Mismatch(Exception):
    """The first difference between a tile and an intrinsic."""


# ------------------------------------------------------------------ affine helpers


def simplify_divmod(e: AffineExpr, ranges: Sequence[tuple[int, int]]) -> AffineExpr:
    """`e` with `(c * X + r) floordiv c -> X` and `... mod c -> r` wherever `r` (the
    terms whose coefficients are not multiples of `c`, plus the constant's remainder)
    provably stays in `[0, c)` over the dims' inclusive `ranges`."""
    if not isinstance(e, AffineBinaryOpExpr):
        return e
    lhs, rhs = simplify_divmod(e.lhs, ranges), simplify_divmod(e.rhs, ranges)
    if (
        e.kind in (AffineBinaryOpKind.FloorDiv, AffineBinaryOpKind.Mod)
        and isinstance(rhs, AffineConstantExpr)
        and rhs.value > 0
    ):
        c = rhs.value
        coeffs, atoms, const = linear_form(lhs)
        if not atoms:
            q: AffineExpr = AffineExpr.constant(const // c)
            r: AffineExpr = AffineExpr.constant(const % c)
            for d, k in sorted(coeffs.items()):
                if k % c == 0:
                    q = q + AffineExpr.dimension(d) * (k // c)
                else:
                    r = r + AffineExpr.dimension(d) * k
            lo, hi = affine_range(r, list(ranges))
            if 0 <= lo and hi < c:
                return q if e.kind == AffineBinaryOpKind.FloorDiv else r
    if e.kind == AffineBinaryOpKind.Add:
        return lhs + rhs
    if e.kind == AffineBinaryOpKind.Mul:
        return lhs * rhs
    if e.kind == AffineBinaryOpKind.FloorDiv:
        return lhs // rhs
    if e.kind == AffineBinaryOpKind.Mod:
        return lhs % rhs
    return AffineBinaryOpExpr(e.kind, lhs, rhs)


def _name(value: SSAValue) -> str:
    return f"%{value.name_hint}" if value.name_hint else "%?"


# ------------------------------------------------------------------ the normalised tile


@dataclass
class _Access:
    buffer: SSAValue
    type: MemRefType
    #: per buffer dim: the tile's first element, over the block's loop variables
    base: list[AffineExpr]
    #: per tile loop: the buffer element stride
    strides: list[int]


@dataclass
class _Tile:
    block: BlockOp
    at: ForOp
    loops: list[ForOp]
    kinds: list[str]
    accesses: list[_Access]

    @property
    def names(self) -> list[str]:
        return [loop_name(f) for f in self.loops]

    @property
    def extents(self) -> list[int]:
        return [f.trip_count for f in self.loops]

    def operand(self, k: int) -> str:
        n_in = len(self.block.inputs)
        kind = f"input #{k}" if k < n_in else f"output #{k - n_in}"
        return f"{kind} ({_name(self.accesses[k].buffer)})"


def _normalise(block: BlockOp, at: ForOp) -> _Tile:
    label = block.label.data
    loops = block_loops(block)
    if at not in loops:
        raise ScheduleError(f"loop '{loop_name(at)}' does not enclose tl.block \"{label}\"")
    nest = loops[loops.index(at) :]
    for f, inner in zip(nest, [*nest[1:], block]):
        ops = [op for op in f.body.block.ops if not isinstance(op, YieldOp)]
        if ops != [inner]:
            raise ScheduleError(
                f"loop '{label}/{loop_name(f)}' holds other ops than the tile: tensorize "
                "needs a perfect nest around one tl.block"
            )
        if f.lb != 0 or f.step_value != 1:
            raise ScheduleError(f"loop '{label}/{loop_name(f)}' is not normalised (0 to N step 1)")
    if block.predicate_map is not None:
        raise ScheduleError(f'tl.block "{label}" has a predicate (an imperfect split)')
    if any(p is not None for p in block.pad_values):
        raise ScheduleError(f'tl.block "{label}" has padded inputs')
    if any(v is not None for v in block.init_values):
        raise ScheduleError(
            f'tl.block "{label}" has an init: decompose the reduction before tensorizing'
        )
    tile_loops = [f for f in nest if f.trip_count > 1]
    vars_ = list(block.loop_vars)
    ranges = []
    for v in vars_:
        r = loop_var_range(v)
        if r is None:
            raise ScheduleError(f'tl.block "{label}": a loop variable is not a tl.for variable')
        ranges.append(r)
    tile_pos: dict[int, int] = {}
    for t, f in enumerate(tile_loops):
        if f.induction_var not in vars_:
            raise ScheduleError(f"loop '{label}/{loop_name(f)}' drives no iterator of the block")
        tile_pos[vars_.index(f.induction_var)] = t
    in_tile = {vars_.index(f.induction_var) for f in nest if f.induction_var in vars_}
    kinds: list[str] = []
    for f in tile_loops:
        p = vars_.index(f.induction_var)
        used = {
            it.kind.data.value
            for it, e in zip(block.iterator_list, block.binding_map.results)
            if p in e.used_dims()
        }
        if len(used) != 1:
            raise ScheduleError(
                f"loop '{label}/{loop_name(f)}' drives both parallel and reduction iterators"
            )
        kinds.append(used.pop())
    zero = [
        AffineExpr.constant(0) if p in in_tile else AffineExpr.dimension(p)
        for p in range(len(vars_))
    ]
    accesses: list[_Access] = []
    for k, (buf, m) in enumerate(zip((*block.inputs, *block.outputs), block.maps)):
        ty = cast(MemRefType, buf.type)
        row = row_major_strides(ty.get_shape())
        strides = [0] * len(tile_loops)
        base: list[AffineExpr] = []
        for d, md in enumerate(m.results):
            e = md.replace_dims_and_symbols(list(block.binding_map.results), [])
            e = simplify_divmod(e, ranges)
            coeffs, atoms, _ = linear_form(e)
            if any(p in in_tile for _, a in atoms for p in a.used_dims()):
                raise ScheduleError(
                    f'tl.block "{label}": operand #{k} ({_name(buf)}) index {d} is not affine '
                    "in the tile loops"
                )
            for p, c in coeffs.items():
                if p in tile_pos:
                    strides[tile_pos[p]] += c * row[d]
            base.append(simplify_divmod(e.replace_dims_and_symbols(zero, []), ranges))
        accesses.append(_Access(buf, ty, base, strides))
    return _Tile(block, at, tile_loops, kinds, accesses)


# ------------------------------------------------------------------ body unification


def _unify_bodies(intr_body: Block, tile_body: Block, n_in_i: int, n_in_t: int) -> dict[int, int]:
    """Map from intrinsic body argument to tile body argument (raises `_Mismatch`)."""
    iy, ty = intr_body.last_op, tile_body.last_op
    assert isinstance(iy, YieldOp) and isinstance(ty, YieldOp)
    if len(iy.operands) != len(ty.operands):
        raise _Mismatch(
            f"the tile writes {len(ty.operands)} outputs, the intrinsic {len(iy.operands)}"
        )
    mapping: dict[int, int] = {}

    def role(arg: BlockArgument, n_in: int) -> str:
        return "input" if arg.index < n_in else "output"

    def unify(vi: SSAValue, vt: SSAValue, m: dict[int, int]) -> None:
        if isinstance(vi, BlockArgument):
            if not isinstance(vt, BlockArgument):
                what = vt.owner.name if isinstance(vt, OpResult) else "a value"
                raise _Mismatch(f"where the intrinsic reads an operand the tile computes {what}")
            if role(vi, n_in_i) != role(vt, n_in_t):
                raise _Mismatch(
                    f"the intrinsic's {role(vi, n_in_i)} corresponds to the tile's "
                    f"{role(vt, n_in_t)}"
                )
            if vi.type != vt.type:
                raise _Mismatch(f"element type {vt.type} where the intrinsic has {vi.type}")
            if vi.index in m:
                if m[vi.index] != vt.index:
                    raise _Mismatch("the tile reads its operands in a different pattern")
            elif vt.index in m.values():
                raise _Mismatch("the tile reads one operand where the intrinsic reads two")
            m[vi.index] = vt.index
            return
        assert isinstance(vi, OpResult)
        if not isinstance(vt, OpResult):
            raise _Mismatch(f"where the intrinsic computes {vi.op.name} the tile reads an operand")
        oi, ot = vi.op, vt.op
        if oi.name != ot.name:
            raise _Mismatch(f"the tile computes {ot.name} where the intrinsic has {oi.name}")
        if [r.type for r in oi.results] != [r.type for r in ot.results]:
            raise _Mismatch(
                f"{ot.name} yields {ot.results[0].type} where the intrinsic's yields "
                f"{oi.results[0].type}"
            )
        if oi.properties != ot.properties or len(oi.operands) != len(ot.operands):
            raise _Mismatch(f"{ot.name} differs in its properties or operand count")
        orders = [list(ot.operands)]
        if isinstance(ot, _COMMUTATIVE) and len(ot.operands) == 2:
            orders.append(list(ot.operands)[::-1])
        error: _Mismatch | None = None
        for order in orders:
            trial = dict(m)
            try:
                for a, b in zip(oi.operands, order):
                    unify(a, b, trial)
            except _Mismatch as e:
                error = error or e
                continue
            m.clear()
            m.update(trial)
            return
        assert error is not None
        raise error

    for a, b in zip(iy.operands, ty.operands):
        unify(a, b, mapping)
    return mapping


# ------------------------------------------------------------------ matching


@dataclass
class TensorizeMatch:
    """A successful match: the intrinsic, bound sizes and, per tensor of its semantics,
    the tile operand (position among the block's operands) and the strides per dim."""

    intrinsic: Intrinsic
    sizes: dict[str, int]
    operands: dict[str, int]
    strides: dict[str, tuple[int, ...]]
    tile: _Tile = field(repr=False)


def _iterator_extents(intrinsic: Intrinsic) -> list[tuple[str, object]]:
    (stmt,) = intrinsic.definition.statements
    fixed = intrinsic.fixed_sizes
    out: list[tuple[str, object]] = []
    for itr in stmt.iterators:
        ext = (itr.upper - itr.lower).substitute(fixed)
        out.append((itr.name, ext))
    return out


def _try_match(intrinsic: Intrinsic, tile: _Tile) -> TensorizeMatch:
    """Raises `_Mismatch` with the first difference."""
    (stmt,) = intrinsic.definition.statements
    iters = _iterator_extents(intrinsic)
    if len(iters) != len(tile.loops):
        loops = ", ".join(f"{n}: {e}" for n, e in zip(tile.names, tile.extents)) or "none"
        raise _Mismatch(
            f"the tile has {len(tile.loops)} loops ({loops}), the intrinsic "
            f"{len(iters)} iterators ({', '.join(f'{n}: {e}' for n, e in iters)})"
        )
    # body first: it fixes which tile operand is which tensor
    fixed = intrinsic.fixed_sizes
    probe = {s: 1 for s in intrinsic.definition.symbols if s not in fixed}
    probe_kernel = intrinsic_kernel(intrinsic, probe)
    block = tile.block
    n_in_i = len(probe_kernel.inputs)
    arg_map = _unify_bodies(probe_kernel.body.block, block.body.block, n_in_i, len(block.inputs))
    defn = intrinsic.definition
    tensor_names = [d.name for d in defn.inputs] + [d.name for d in defn.outputs]
    # the kernel's operands are its distinct reads: name them by buffer
    kernel_tensors = _kernel_tensor_names(probe_kernel, tensor_names)
    operands = {kernel_tensors[i]: t for i, t in arg_map.items()}
    best: _Mismatch | None = None
    best_score = -1
    for perm in itertools.permutations(range(len(tile.loops))):
        score = 0
        try:
            sizes: dict[str, int] = {}
            for (name, ext), t, kind in zip(iters, perm, stmt.iterators):
                loop = tile.names[t]
                if kind.kind != tile.kinds[t]:
                    raise _Mismatch(
                        f"iterator {name} is {kind.kind}, loop {loop} is {tile.kinds[t]}"
                    )
                score += 1
                extent = tile.extents[t]
                if ext.is_const():  # type: ignore[attr-defined]
                    if ext.const_value() != extent:  # type: ignore[attr-defined]
                        raise _Mismatch(
                            f"extent of iterator {name} is {ext.const_value()}, "  # type: ignore[attr-defined]
                            f"loop {loop} runs {extent}"
                        )
                else:
                    sym = ext.as_symbol()  # type: ignore[attr-defined]
                    if sym is None or sizes.get(sym, extent) != extent:
                        raise _Mismatch(f"extent of iterator {name} ({ext}) cannot be {extent}")
                    sizes[sym] = extent
                score += 1
            if intrinsic.check_sizes is not None:
                why = intrinsic.check_sizes(sizes)
                if why:
                    raise _Mismatch(why)
            score += 1
            kernel = intrinsic_kernel(intrinsic, sizes)
            strides = _check_strides(intrinsic, kernel, kernel_tensors, operands, tile, perm)
            return TensorizeMatch(intrinsic, sizes, operands, strides, tile)
        except _Mismatch as e:
            if score > best_score:
                best, best_score = e, score
    assert best is not None
    raise best


def _kernel_tensor_names(kernel: KernelOp, names: Sequence[str]) -> list[str]:
    """Tensor name of each kernel operand (its buffers are the container block's args,
    inputs then outputs in declaration order)."""
    out: list[str] = []
    for buf in (*kernel.inputs, *kernel.outputs):
        assert isinstance(buf, BlockArgument)
        out.append(names[buf.index])
    return out


def _check_strides(
    intrinsic: Intrinsic,
    kernel: KernelOp,
    kernel_tensors: Sequence[str],
    operands: Mapping[str, int],
    tile: _Tile,
    perm: Sequence[int],
) -> dict[str, tuple[int, ...]]:
    iter_names = kernel.iterator_names
    result: dict[str, tuple[int, ...]] = {}
    for k, (tensor, m) in enumerate(zip(kernel_tensors, kernel.maps)):
        if tensor in result:
            continue
        t_op = operands[tensor]
        access = tile.accesses[t_op]
        spec = intrinsic.stride_spec(tensor)
        strides: list[int | None] = list(spec)
        for it, t in enumerate(perm):
            dims = [
                (d, linear_form(e)[0].get(it, 0))
                for d, e in enumerate(m.results)
                if linear_form(e)[0].get(it, 0)
            ]
            actual = access.strides[t]
            loop = tile.names[t]
            where = f"{tensor} = {tile.operand(t_op)}"
            if not dims:
                if actual != 0:
                    raise _Mismatch(
                        f"{where} moves by {actual} along loop {loop}; the intrinsic "
                        f"broadcasts it along {iter_names[it]} (stride 0)"
                    )
                continue
            if len(dims) != 1 or dims[0][1] != 1:
                raise _Mismatch(f"{tensor}'s index of {iter_names[it]} is not a plain dim")
            d = dims[0][0]
            if spec[d] is not None and spec[d] != actual:
                raise _Mismatch(
                    f"stride of {where} along loop {loop} is {actual}, the intrinsic needs "
                    f"{spec[d]} (dim {d} of {tensor}, iterator {iter_names[it]})"
                )
            strides[d] = actual
        result[tensor] = tuple(s if s is not None else 0 for s in strides)
        if access.type.element_type != cast(MemRefType, kernel.operands[k].type).element_type:
            raise _Mismatch(
                f"element type of {tile.operand(t_op)} is {access.type.element_type}, "
                f"{tensor} needs {cast(MemRefType, kernel.operands[k].type).element_type}"
            )
    return result


def _candidates(intrinsic: str | None, features: object | None) -> list[Intrinsic]:
    if intrinsic:
        return [get_intrinsic(intrinsic)]
    return intrinsics(None, features)


def _tile_of(root: Operation, at: str) -> _Tile:
    block, loop = find_loop(root, at)
    return _normalise(block, loop)


def match_intrinsic(
    root: Operation, at: str, intrinsic: str | None = None, features: object | None = None
) -> tuple[TensorizeMatch | None, list[tuple[Intrinsic, str]]]:
    """The first candidate (cheapest first) matching the tile at loop `at`
    (`label/loop`), and the first difference of every candidate tried before it."""
    tile = _tile_of(root, at)
    misses: list[tuple[Intrinsic, str]] = []
    for cand in _candidates(intrinsic, features):
        try:
            return _try_match(cand, tile), misses
        except _Mismatch as e:
            misses.append((cand, str(e)))
    return None, misses


def explain(
    root: Operation, at: str, intrinsic: str | None = None, features: object | None = None
) -> str:
    """A report: for each candidate intrinsic, `matches` or the first thing that
    differed between it and the tile at loop `at`."""
    try:
        tile = _tile_of(root, at)
    except ScheduleError as e:
        return f"tile at '{at}': {e}"
    loops = ", ".join(f"{n} ({k}, {e})" for n, k, e in zip(tile.names, tile.kinds, tile.extents))
    lines = [f"tile at '{at}': loops {loops or 'none'}"]
    for cand in _candidates(intrinsic, features):
        try:
            _try_match(cand, tile)
            lines.append(f"  {cand.name}: matches")
        except _Mismatch as e:
            lines.append(f"  {cand.name}: {e}")
    return "\n".join(lines)


# ------------------------------------------------------------------ rewriting


class _IndexEmitter:
    """Index arithmetic (arith on `index`) for affine expressions over loop variables."""

    def __init__(self, builder: Builder, dims: Sequence[SSAValue]) -> None:
        self.b = builder
        self.dims = dims
        self.consts: dict[int, SSAValue] = {}

    def const(self, c: int) -> SSAValue:
        if c not in self.consts:
            op = self.b.insert(arith.ConstantOp(IntegerAttr(c, IndexType())))
            self.consts[c] = op.result
        return self.consts[c]

    def emit(self, e: AffineExpr) -> SSAValue:
        if isinstance(e, AffineConstantExpr):
            return self.const(e.value)
        if isinstance(e, AffineDimExpr):
            return self.dims[e.position]
        assert isinstance(e, AffineBinaryOpExpr)
        lhs, rhs = self.emit(e.lhs), self.emit(e.rhs)
        table: dict[AffineBinaryOpKind, type[Operation]] = {
            AffineBinaryOpKind.Add: arith.AddiOp,
            AffineBinaryOpKind.Mul: arith.MuliOp,
            AffineBinaryOpKind.FloorDiv: arith.FloorDivSIOp,
            AffineBinaryOpKind.CeilDiv: arith.CeilDivSIOp,
        }
        if e.kind == AffineBinaryOpKind.Mod:  # floor mod: a - floor(a / c) * c
            q = self.b.insert(arith.FloorDivSIOp(lhs, rhs)).result
            p = self.b.insert(arith.MuliOp(q, rhs)).result
            return self.b.insert(arith.SubiOp(lhs, p)).result
        return self.b.insert(table[e.kind](lhs, rhs)).results[0]  # type: ignore[call-arg]


def _apply(match: TensorizeMatch) -> Operation:
    tile = match.tile
    block, at = tile.block, tile.at
    parent = at.parent_block()
    assert parent is not None
    builder = Builder(InsertPoint.before(at))
    emitter = _IndexEmitter(builder, list(block.loop_vars))
    tiles: dict[str, TileOperand] = {}
    for tensor, k in match.operands.items():
        access = tile.accesses[k]
        indices = tuple(emitter.emit(e) for e in access.base)
        tiles[tensor] = TileOperand(access.buffer, indices, match.strides[tensor])
    sizes = {**match.intrinsic.fixed_sizes, **match.sizes}
    op = match.intrinsic.build(match.intrinsic, tiles, sizes)
    builder.insert(op)
    parent.erase_op(at)
    return op


def tensorize(
    root: Operation, at: str, intrinsic: str | None = None, features: object | None = None
) -> Operation:
    """Replace the tile at loop `at` (`label/loop`) by the first matching intrinsic (or
    the one named); `features` restricts candidates to those a CPU supports. Raises
    `ScheduleError` with the `explain` report when none matches. Returns the hw op."""
    match, _ = match_intrinsic(root, at, intrinsic, features)
    if match is None:
        raise ScheduleError(
            "no intrinsic matches the tile:\n" + explain(root, at, intrinsic, features)
        )
    return _apply(match)


# ------------------------------------------------------------------ packing

#: the casts a body may apply to an integer input that packing can widen
_EXTENSIONS = (arith.ExtUIOp, arith.ExtSIOp)


def _extension_of(
    block: BlockOp, index: int, width: int
) -> type[arith.ExtUIOp] | type[arith.ExtSIOp]:
    """The extension (zero or sign) the body of `block` applies to input `index`: every
    use of the input must be that one kind of cast, from fewer than `width` bits to at
    least `width` bits (so packing can apply it part way)."""
    label = block.label.data
    arg = block.body.block.args[index]
    kinds: set[type[arith.ExtUIOp] | type[arith.ExtSIOp]] = set()
    for use in arg.uses:
        op = use.operation
        if not isinstance(op, _EXTENSIONS):
            raise ScheduleError(
                f'pack: input #{index} of "{label}" is read by {op.name}, not only by '
                "arith.extui / arith.extsi: it cannot be widened"
            )
        target = op.result.type
        if not isinstance(target, IntegerType) or target.width.data < width:
            raise ScheduleError(
                f'pack: input #{index} of "{label}" is extended to {target}, narrower than i{width}'
            )
        kinds.add(type(op))
    source = arg.type
    if not kinds or not isinstance(source, IntegerType) or source.width.data >= width:
        raise ScheduleError(
            f'pack: input #{index} of "{label}" ({source}) is not an integer extended past '
            f"i{width} by its body"
        )
    if len(kinds) != 1:
        raise ScheduleError(f'pack: input #{index} of "{label}" is both zero- and sign-extended')
    return kinds.pop()


def _widen_body(block: BlockOp, index: int, width: int) -> None:
    """In place: the body of `block` reads input `index` as `i<width>`; each extension of
    it becomes `arith.extsi` from that width (or the value itself where it was extended
    to exactly that width). Exact when packing applied the body's own extension: a
    zero-extended value's top bit is clear, so sign-extending it further changes
    nothing, and a sign extension in two steps is one."""
    body = block.body.block
    old = body.args[index]
    wide = body.insert_arg(IntegerType(width), index)
    for use in list(old.uses):
        ext = use.operation
        assert isinstance(ext, _EXTENSIONS)
        if ext.result.type == wide.type:
            ext.result.replace_all_uses_with(wide)
        else:
            new = arith.ExtSIOp(wide, ext.result.type)
            body.insert_op_before(new, ext)
            ext.result.replace_all_uses_with(new.result)
        body.erase_op(ext)
    body.erase_arg(old)


def _insert_copy(
    block: BlockOp,
    index: int,
    suffix: str,
    iterators: Sequence[tuple[str, int]],
    src: str,
    dst: str,
    shape: Sequence[int],
    width: int | None,
) -> tuple[KernelOp, SSAValue]:
    """A buffer of `shape` filled from input `index` of `block` by a copy kernel
    (`dst` <- `src`, index strings over `iterators`) before the block's loop nest,
    widened to `i<width>` with the body's own extension when `width` is given."""
    buf = block.inputs[index]
    ty = cast(MemRefType, buf.type)
    label = block.label.data
    element = ty.element_type
    extension: type[arith.ExtUIOp] | type[arith.ExtSIOp] | None = None
    if width is not None:
        extension = _extension_of(block, index, width)
        element = IntegerType(width)
    loops = block_loops(block)
    top: Operation = loops[0] if loops else block
    parent = top.parent_block()
    assert parent is not None
    alloc = memref.AllocOp.get(element, shape=list(shape))
    parent.insert_op_before(alloc, top)
    parent.insert_op_after(memref.DeallocOp.get(alloc), top)
    packed = alloc.memref
    packed.name_hint = f"{buf.name_hint or 'B'}_{suffix}"

    def body(b: Builder, args: Sequence[SSAValue]) -> SSAValue:
        if extension is None:
            return args[0]
        return b.insert(extension(args[0], element)).result

    copy = build_kernel(
        f"{label}_pack{index}",
        [(name, extent, "parallel") for name, extent in iterators],
        inputs=[(buf, src)],
        outputs=[(packed, dst)],
        body=body,
    )
    parent.insert_op_before(copy, top)
    return copy, packed


def _read_packed(
    block: BlockOp, index: int, packed: SSAValue, exprs: Sequence[AffineExpr], width: int | None
) -> None:
    """Make `block` read input `index` from `packed` at `exprs` (over its iterators),
    as `i<width>` when widened."""
    m = block.input_maps[index]
    maps = list(block.maps)
    maps[index] = AffineMap(m.num_dims, 0, tuple(exprs))
    inputs = list(block.inputs)
    inputs[index] = packed
    new = remake_block(block, inputs=inputs, maps=maps)
    if width is not None:
        _widen_body(new, index, width)


def _check_2d(block: BlockOp, index: int) -> tuple[int, int]:
    ty = cast(MemRefType, block.inputs[index].type)
    if ty.get_num_dims() != 2:
        raise ScheduleError(f'pack: input #{index} of "{block.label.data}" is not 2-D ({ty})')
    rows, cols = ty.get_shape()
    return rows, cols


def pack_vnni(
    root: Operation,
    block_label: str,
    index: int,
    group: int,
    panel: int | None = None,
    widen: int | None = None,
) -> KernelOp:
    """Pack input `index` (a 2-D `B`, read as `B[k, n]`) of the `tl.block` `block_label`
    into the layout dot-product intrinsics read: `Bp[k / group, n, k % group]`, or with
    `panel`, `Bp[n / panel, k / group, n % panel, k % group]` (each panel of `panel`
    columns contiguous: a register tile's B stream is sequential). A new buffer is filled
    by a copy kernel before the block's loop nest and the block reads it instead.
    `group` must divide the rows (and `panel` the columns). With `widen` (bits), the
    packed elements are `i<widen>`: the copy applies the extension the block's body
    applies to B (`arith.extui` / `arith.extsi`, e.g. s8 -> i16 for `vpmaddwd`) and the
    body then sign-extends the wide element (exact, see `_widen_body`). Returns the copy
    kernel (still a `tl.kernel`), labelled `<label>_pack<index>`."""
    block = find_block(root, block_label)
    rows, cols = _check_2d(block, index)
    if rows % group:
        raise ScheduleError(
            f'pack: input #{index} of "{block_label}" has {rows} rows, not a multiple of {group}'
        )
    if panel is not None and (panel <= 0 or cols % panel):
        raise ScheduleError(
            f'pack: input #{index} of "{block_label}" has {cols} columns, not a multiple of '
            f"the panel {panel}"
        )
    if panel is None:
        shape = [rows // group, cols, group]
        iterators = [("kb", rows // group), ("n", cols), ("g", group)]
        src, dst = f"kb * {group} + g, n", "kb, n, g"
    else:
        shape = [cols // panel, rows // group, panel, group]
        iterators = [("p", cols // panel), ("kb", rows // group), ("c", panel), ("g", group)]
        src, dst = f"kb * {group} + g, p * {panel} + c", "p, kb, c, g"
    suffix = "vnni" if widen is None else f"vnni_i{widen}"
    copy, packed = _insert_copy(block, index, suffix, iterators, src, dst, shape, widen)
    k_expr, n_expr = block.input_maps[index].results
    if panel is None:
        exprs = (k_expr // group, n_expr, k_expr % group)
    else:
        exprs = (n_expr // panel, k_expr // group, n_expr % panel, k_expr % group)
    _read_packed(block, index, packed, exprs, widen)
    return copy


def widen_input(root: Operation, block_label: str, index: int, width: int) -> KernelOp:
    """Copy input `index` (2-D, e.g. a matmul's u8 `A[m, k]`) of the `tl.block`
    `block_label` into a buffer of the same shape with `i<width>` elements, applying the
    extension the block's body applies to it (`arith.extui` for u8 data), and make the
    block read it (sign-extending the wide element, exact: see `_widen_body`). The copy
    kernel, labelled `<label>_pack<index>`, runs before the block's loop nest; returns
    it (still a `tl.kernel`)."""
    block = find_block(root, block_label)
    rows, cols = _check_2d(block, index)
    iterators = [("r", rows), ("c", cols)]
    copy, packed = _insert_copy(
        block, index, f"i{width}", iterators, "r, c", "r, c", [rows, cols], width
    )
    _read_packed(block, index, packed, block.input_maps[index].results, width)
    return copy


# ------------------------------------------------------------------ the pass


@dataclass(frozen=True)
class TlTensorizePass(ModulePass):
    """`tl-tensorize{loop=label/loop intrinsic=name explain=false host=false}`: replace
    the tile at `loop` by the intrinsic named (default: the first that matches). With
    `explain`, print the candidates report instead and leave the IR unchanged; with
    `host`, consider only intrinsics the host CPU supports."""

    name = "tl-tensorize"

    loop: str = ""
    intrinsic: str = ""
    explain: bool = False
    host: bool = False

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        if not self.loop:
            raise ScheduleError("tl-tensorize needs loop=<block label>/<loop>")
        features = None
        if self.host:
            features = host_features()
        if self.explain:
            print(explain(op, self.loop, self.intrinsic or None, features))
            return
        tensorize(op, self.loop, self.intrinsic or None, features)
