"""Native lowering of the tree-ensemble graph ops (`convert-graph-to-tl`, hand-written).

`graph.tree_ensemble` becomes the *tree traversal* kernel and
`graph.perfect_tree_ensemble` the *perfect tree traversal* kernel (the GEMM strategy is a
graph-level rewrite, `graph-tree-ensemble-to-gemm`). Both are `scf.for` nests reading the
node tables from constant globals; rows are processed in blocks of `ROW_BLOCK` so one
tree's tables stay in cache while a block of rows walks it:

    for b0 in 0..B step ROW_BLOCK:
      for t in 0..T:
        for b in b0..min(b0 + ROW_BLOCK, B):
          n = root[t]
          for _ in 0..depth[t]:   n = holds(X[b, feature[n]], n) ? true[n] : false[n]
          acc[b, :] = combine(acc[b, :], leaf_values[leaf[n], :])
    Y = f32(finish(acc) + base_values)

Leaves point at themselves, so a walk that reaches a leaf before `depth[t]` steps stays
there. The perfect kernel unrolls its `depth` levels (`n = 2n + 1` when the test holds,
`2n + 2` when it fails) and needs neither child tables nor leaf tests.

Branch tests are normalized at compile time into one comparison `x <= t'` (see
`normalize_tests`): for an f32 input, `x < t`, `x >= t`, `x > t` against an f64 threshold
`t` are the same as `x <= t'` (or its negation) for the f32 `t'` rounded the right way,
so the kernel compares in the input's type and gives exactly the f64 comparison's
answer. A negated test swaps the node's children (in the perfect layout: mirrors the
node's subtrees), so every node tests `x <= t'`; a NaN goes to the child that
`nodes_missing_true` names (one `ule`/`ole` predicate when all nodes agree, a per-node
flag otherwise). Ensembles with EQ / NEQ nodes keep per-node kinds and flips.
Scores accumulate in f64 and are rounded to f32 once, as the reference semantics do.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from xdsl.builder import Builder, InsertPoint
from xdsl.dialects import arith, memref, scf
from xdsl.dialects.builtin import (
    Float64Type,
    FloatAttr,
    IndexType,
    IntegerAttr,
    IntegerType,
    f32,
    f64,
)
from xdsl.ir import Block, Operation, Region, SSAValue

from mlc.dialects.graph.trees import NodeMode, PerfectTreeEnsembleOp, TreeEnsembleOp
from mlc.lowering.buffers import constant_buffer, handwritten, memref_type_of

#: rows per block: a tree's tables stay in L1 while the block walks it
ROW_BLOCK = 64
#: rows walked together, level by level: independent load chains the core overlaps
ROW_GROUP = 8

#: normalized test kinds
KIND_LEQ, KIND_EQ, KIND_NEQ = 0, 1, 2


# -- test normalization (numpy, compile time) ---------------------------------------------


@dataclass
class Tests:
    """Per-node branch tests as `holds(x) = (x <= threshold) ^ flip` (kind LEQ), `x ==
    threshold` (EQ) or `x != threshold` (NEQ) for non-NaN `x`; `missing_true` for NaN."""

    threshold: np.ndarray
    flip: np.ndarray
    missing_true: np.ndarray
    kind: np.ndarray

    @property
    def only_leq(self) -> bool:
        return bool((self.kind == KIND_LEQ).all())


def _round_down(t: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """The largest value of `dtype` <= t (t f64, not NaN)."""
    r = t.astype(dtype)
    return np.where(r.astype(np.float64) > t, np.nextafter(r, dtype.type(-np.inf)), r)


def _round_up(t: np.ndarray, dtype: np.dtype) -> np.ndarray:
    r = t.astype(dtype)
    return np.where(r.astype(np.float64) < t, np.nextafter(r, dtype.type(np.inf)), r)


def normalize_tests(
    mode: np.ndarray, threshold: np.ndarray, missing_true: np.ndarray, dtype: np.dtype
) -> Tests:
    """Branch tests against f64 thresholds as tests in `dtype` (f32 or f64) that give the
    same answer for every `dtype` input, in the `Tests` form. (Leaf entries are kept, as
    LEQ against +inf.)"""
    dtype = np.dtype(dtype)
    n = len(mode)
    inf = dtype.type(np.inf)
    with np.errstate(over="ignore", invalid="ignore"):
        t = np.where(np.isnan(threshold), 0.0, threshold)
        leq = _round_down(t, dtype)  # x <= t  <=>  x <= leq
        below = np.nextafter(_round_up(t, dtype), -inf)  # x < t  <=>  x <= below
        exact = t.astype(dtype).astype(np.float64) == t
    out_t = np.full(n, inf, dtype)
    flip = np.zeros(n, bool)
    kind = np.zeros(n, np.int8)
    m = mode
    out_t = np.where((m == NodeMode.LEQ) | (m == NodeMode.GT), leq, out_t)
    out_t = np.where((m == NodeMode.LT) | (m == NodeMode.GTE), below, out_t)
    flip |= (m == NodeMode.GT) | (m == NodeMode.GTE)
    eq, neq = m == NodeMode.EQ, m == NodeMode.NEQ
    kind[eq & exact] = KIND_EQ
    kind[neq & exact] = KIND_NEQ
    with np.errstate(over="ignore"):
        out_t = np.where((eq | neq) & exact, t.astype(dtype), out_t)
    # EQ against a value the input cannot hold never holds: not (x <= inf)
    flip |= eq & ~exact
    # x < -inf never holds, x >= -inf always (for non-NaN x)
    minus_inf = (t == -np.inf) & ((m == NodeMode.LT) | (m == NodeMode.GTE))
    out_t = np.where(minus_inf, inf, out_t)
    flip = np.where(minus_inf, m == NodeMode.LT, flip)
    # a NaN threshold: every comparison fails, NEQ holds
    nan = np.isnan(threshold) & (m != NodeMode.LEAF)
    out_t = np.where(nan, inf, out_t)
    flip = np.where(nan, m != NodeMode.NEQ, flip)
    kind[nan] = KIND_LEQ
    leaf = m == NodeMode.LEAF
    flip[leaf] = False
    return Tests(out_t.astype(dtype), flip, missing_true.astype(bool) & ~leaf, kind)


def mirror_perfect(
    tests: Tests, feature: np.ndarray, leaves: np.ndarray, depth: int
) -> tuple[Tests, np.ndarray, np.ndarray]:
    """Perfect trees (trees x nodes tables, trees x leaves x targets) with every flipped
    node's two subtrees swapped, so no node flips (LEQ-only tests)."""
    trees = feature.shape[0]
    rows = np.arange(trees)[:, None]
    src = np.zeros((trees, 1), np.int64)  # source position of each output node, per level
    order: list[np.ndarray] = []
    for _ in range(depth):
        order.append(src)
        f = tests.flip[rows, src]
        first, second = 2 * src + 1 + f, 2 * src + 2 - f
        src = np.stack([first, second], axis=2).reshape(trees, -1)
    nodes = np.concatenate(order, axis=1) if order else np.zeros((trees, 0), np.int64)
    leaf_src = src - (2**depth - 1)
    flip = tests.flip[rows, nodes]
    out = Tests(
        tests.threshold[rows, nodes],
        np.zeros_like(flip),
        tests.missing_true[rows, nodes] ^ flip,
        tests.kind[rows, nodes],
    )
    return out, feature[rows, nodes], leaves[rows, leaf_src]


# -- IR building --------------------------------------------------------------------------


class _Emit:
    """A builder with the few scalar/loop helpers the kernels need."""

    def __init__(self, builder: Builder, at: Operation) -> None:
        self.b = builder
        self.at = at

    def index(self, v: int) -> SSAValue:
        return self.b.insert(arith.ConstantOp(IntegerAttr(v, IndexType()))).result

    def table(self, array: np.ndarray) -> SSAValue:
        return constant_buffer(self.b, self.at, np.ascontiguousarray(array))

    def load_index(self, buf: SSAValue, idx: Sequence[SSAValue]) -> SSAValue:
        raw = self.b.insert(memref.LoadOp.get(buf, idx)).res
        return self.b.insert(arith.IndexCastOp(raw, IndexType())).result

    def load(self, buf: SSAValue, idx: Sequence[SSAValue]) -> SSAValue:
        return self.b.insert(memref.LoadOp.get(buf, idx)).res

    def add(self, x: SSAValue, y: SSAValue) -> SSAValue:
        return self.b.insert(arith.AddiOp(x, y)).result

    def mul(self, x: SSAValue, y: SSAValue) -> SSAValue:
        return self.b.insert(arith.MuliOp(x, y)).result

    def select(self, c: SSAValue, x: SSAValue, y: SSAValue) -> SSAValue:
        return self.b.insert(arith.SelectOp(c, x, y)).result

    def fcmp(self, x: SSAValue, y: SSAValue, pred: str) -> SSAValue:
        return self.b.insert(arith.CmpfOp(x, y, pred)).result

    def loop(
        self,
        lb: SSAValue,
        ub: SSAValue,
        step: SSAValue,
        inits: Sequence[SSAValue],
        body: Callable[[_Emit, SSAValue, list[SSAValue]], Sequence[SSAValue]],
    ) -> list[SSAValue]:
        block = Block(arg_types=[IndexType(), *[v.type for v in inits]])
        inner = _Emit(Builder(InsertPoint.at_end(block)), self.at)
        yields = body(inner, block.args[0], list(block.args[1:]))
        inner.b.insert(scf.YieldOp(*yields))
        return list(self.b.insert(scf.ForOp(lb, ub, step, inits, Region(block))).results)

    def fconst(self, v: float, ty: IntegerType | Float64Type) -> SSAValue:
        return self.b.insert(arith.ConstantOp(FloatAttr(v, ty))).result


class _Holds:
    """Emits `holds(x, node)` for one ensemble's normalized tests (tables as globals)."""

    def __init__(self, e: _Emit, tests: Tests) -> None:
        self.threshold = e.table(tests.threshold)
        self.general = not tests.only_leq
        missing = tests.missing_true
        self.uniform_missing: bool | None = None
        if not self.general and (missing.all() or not missing.any()):
            self.uniform_missing = bool(missing.all()) if missing.size else False
        self.missing = (
            None if self.uniform_missing is not None else e.table(missing.astype(np.int8))
        )
        self.flip = e.table(tests.flip.astype(np.int8)) if self.general else None
        self.kind = e.table(tests.kind) if self.general else None

    def emit(self, e: _Emit, x: SSAValue, node: Sequence[SSAValue]) -> SSAValue:
        t = e.load(self.threshold, node)
        if self.uniform_missing is not None:
            return e.fcmp(x, t, "ule" if self.uniform_missing else "ole")
        assert self.missing is not None
        missing = self._flag(e, self.missing, node)
        if not self.general:  # NaN: ule holds, ole fails
            return e.select(missing, e.fcmp(x, t, "ule"), e.fcmp(x, t, "ole"))
        assert self.flip is not None and self.kind is not None
        flip = self._flag(e, self.flip, node)
        leq = e.b.insert(arith.XOrIOp(e.fcmp(x, t, "ole"), flip)).result
        kind = e.load(self.kind, node)
        holds = e.select(self._is(e, kind, KIND_EQ), e.fcmp(x, t, "oeq"), leq)
        holds = e.select(self._is(e, kind, KIND_NEQ), e.fcmp(x, t, "one"), holds)
        return e.select(e.fcmp(x, x, "uno"), missing, holds)

    @staticmethod
    def _flag(e: _Emit, table: SSAValue, node: Sequence[SSAValue]) -> SSAValue:
        return e.b.insert(arith.TruncIOp(e.load(table, node), IntegerType(1))).result

    @staticmethod
    def _is(e: _Emit, kind: SSAValue, value: int) -> SSAValue:
        c = e.b.insert(arith.ConstantOp(IntegerAttr(value, IntegerType(8)))).result
        return e.b.insert(arith.CmpiOp(kind, c, "eq")).result


def _accumulate(
    op: TreeEnsembleOp | PerfectTreeEnsembleOp, e: _Emit, rows: int, k: int
) -> tuple[SSAValue, Callable[[_Emit, SSAValue, SSAValue], SSAValue], float]:
    """The f64 accumulator buffer, the combine function and its initial value."""
    acc = e.b.insert(memref.AllocOp.get(f64, shape=[rows, k])).memref
    if op.aggregate in ("MIN", "MAX"):
        pick = arith.MinnumfOp if op.aggregate == "MIN" else arith.MaxnumfOp
        return acc, lambda ee, a, w: ee.b.insert(pick(a, w)).result, float("nan")
    return acc, lambda ee, a, w: ee.b.insert(arith.AddfOp(a, w)).result, 0.0


def _fill(e: _Emit, buf: SSAValue, rows: int, k: int, value: float) -> None:
    v = e.fconst(value, f64)
    zero, one = e.index(0), e.index(1)

    def row(er: _Emit, b: SSAValue, _: list[SSAValue]) -> list[SSAValue]:
        def col(ec: _Emit, j: SSAValue, __: list[SSAValue]) -> list[SSAValue]:
            ec.b.insert(memref.StoreOp.get(v, buf, [b, j]))
            return []

        er.loop(zero, er.index(k), one, [], col)
        return []

    e.loop(zero, e.index(rows), one, [], row)


def _finish(
    op: TreeEnsembleOp | PerfectTreeEnsembleOp,
    e: _Emit,
    acc: SSAValue,
    out: SSAValue,
    rows: int,
    k: int,
    trees: int,
) -> None:
    """out = f32(finish(acc) + base_values)."""
    base = e.table(op.base_values.astype(np.float64))
    zero, one = e.index(0), e.index(1)
    scale = 1.0 / trees if op.aggregate == "AVERAGE" and trees else 1.0
    minmax = op.aggregate in ("MIN", "MAX")

    def row(er: _Emit, b: SSAValue, _: list[SSAValue]) -> list[SSAValue]:
        def col(ec: _Emit, j: SSAValue, __: list[SSAValue]) -> list[SSAValue]:
            v = ec.load(acc, [b, j])
            if minmax:  # no tree gave this target a weight: 0
                nan = ec.fcmp(v, v, "uno")
                v = ec.select(nan, ec.fconst(0.0, f64), v)
            if scale != 1.0:
                v = ec.b.insert(arith.MulfOp(v, ec.fconst(scale, f64))).result
            v = ec.b.insert(arith.AddfOp(v, ec.load(base, [j]))).result
            ec.b.insert(memref.StoreOp.get(ec.b.insert(arith.TruncFOp(v, f32)).result, out, [b, j]))
            return []

        er.loop(zero, er.index(k), one, [], col)
        return []

    e.loop(zero, e.index(rows), one, [], row)


def _leaf_table(values: np.ndarray, aggregate: str) -> np.ndarray:
    """Leaf weights as stored: NaN (no weight) is 0 for SUM / AVERAGE."""
    if aggregate in ("SUM", "AVERAGE"):
        values = np.where(np.isnan(values), 0.0, values).astype(values.dtype)
    return values


#: one walk: a chain's row and its tree's values (`per_tree`)
Chain = tuple[SSAValue, dict[str, SSAValue]]
#: walk chains side by side; the step bound (traversal: a tree's or a group's depth)
Walk = Callable[[_Emit, list[Chain], SSAValue | None], None]


def _walk_all(
    e: _Emit,
    rows: int,
    trees: int,
    walk: Walk,
    per_tree: Callable[[_Emit, SSAValue], dict[str, SSAValue]],
    group_steps: Callable[[_Emit, SSAValue], SSAValue] | None = None,
) -> None:
    """Every (row, tree) walk, `ROW_GROUP` of them side by side (independent load
    chains). With `ROW_GROUP` rows or more: blocks of `ROW_BLOCK` rows, each tree over the
    block's rows in groups (one tree's tables stay in cache). With fewer rows (batch 1):
    each row over groups of `ROW_GROUP` trees, bounded by `group_steps(group)`."""
    zero, one = e.index(0), e.index(1)
    total = e.index(rows)
    if rows < ROW_GROUP:
        groups = trees // ROW_GROUP

        def row(er: _Emit, b: SSAValue, _: list[SSAValue]) -> list[SSAValue]:
            def group(eg: _Emit, g: SSAValue, __: list[SSAValue]) -> list[SSAValue]:
                t0 = eg.mul(g, eg.index(ROW_GROUP))
                ts = [t0, *(eg.add(t0, eg.index(i)) for i in range(1, ROW_GROUP))]
                steps = group_steps(eg, g) if group_steps is not None else None
                walk(eg, [(b, per_tree(eg, t)) for t in ts], steps)
                return []

            def tree(et: _Emit, t: SSAValue, __: list[SSAValue]) -> list[SSAValue]:
                values = per_tree(et, t)
                walk(et, [(b, values)], values.get("depth"))
                return []

            er.loop(zero, er.index(groups), one, [], group)
            er.loop(er.index(groups * ROW_GROUP), er.index(trees), one, [], tree)
            return []

        e.loop(zero, total, one, [], row)
        return
    block = e.index(ROW_BLOCK)

    def blocks(eb: _Emit, b0: SSAValue, _: list[SSAValue]) -> list[SSAValue]:
        end = eb.b.insert(arith.MinSIOp(eb.add(b0, block), total)).result
        count = eb.b.insert(arith.SubiOp(end, b0)).result
        group = eb.index(ROW_GROUP)
        grouped_end = eb.add(b0, eb.mul(eb.b.insert(arith.DivUIOp(count, group)).result, group))

        def tree(et: _Emit, t: SSAValue, __: list[SSAValue]) -> list[SSAValue]:
            values = per_tree(et, t)

            def rows_of(er: _Emit, b: SSAValue, ___: list[SSAValue]) -> list[SSAValue]:
                bs = [b, *(er.add(b, er.index(i)) for i in range(1, ROW_GROUP))]
                walk(er, [(r, values) for r in bs], values.get("depth"))
                return []

            def row(er: _Emit, b: SSAValue, ___: list[SSAValue]) -> list[SSAValue]:
                walk(er, [(b, values)], values.get("depth"))
                return []

            et.loop(b0, grouped_end, et.index(ROW_GROUP), [], rows_of)
            et.loop(grouped_end, end, one, [], row)
            return []

        eb.loop(zero, eb.index(trees), one, [], tree)
        return []

    e.loop(zero, total, block, [], blocks)


def _add_leaf(
    e: _Emit,
    acc: SSAValue,
    b: SSAValue,
    leaf_values: SSAValue,
    row: SSAValue,
    k: int,
    combine: Callable[[_Emit, SSAValue, SSAValue], SSAValue],
    wide: bool,
) -> None:
    for j in range(k):
        col = e.index(j)
        w = e.load(leaf_values, [row, col])
        if not wide:
            w = e.b.insert(arith.ExtFOp(w, f64)).result
        new = combine(e, e.load(acc, [b, col]), w)
        e.b.insert(memref.StoreOp.get(new, acc, [b, col]))


def _input_dtype(x: SSAValue) -> np.dtype:
    return np.dtype(
        np.float64 if isinstance(memref_type_of(x).element_type, Float64Type) else np.float32
    )


def _leaf_storage(values: np.ndarray) -> tuple[np.ndarray, bool]:
    """Leaf weights as f32 when that is exact (half the cache), else f64; and whether f64."""
    as32 = values.astype(np.float32)
    if np.array_equal(as32.astype(np.float64), values.astype(np.float64), equal_nan=True):
        return as32, False
    return values.astype(np.float64), True


@handwritten(TreeEnsembleOp)
def lower_tree_ensemble(
    builder: Builder, op: Operation, operands: Sequence[SSAValue], results: Sequence[SSAValue]
) -> None:
    """The tree traversal kernel (see the module docstring)."""
    assert isinstance(op, TreeEnsembleOp)
    x, out = operands[0], results[0]
    rows, k = memref_type_of(out).get_shape()
    if rows == 0 or k == 0:
        return
    tables = op.tables()
    trees = len(tables.roots)
    e = _Emit(builder, op)
    tests = normalize_tests(tables.mode, tables.threshold, tables.missing_true, _input_dtype(x))
    node_ids = np.arange(tables.n_nodes)
    leaf = tables.is_leaf
    true = np.where(leaf, node_ids, tables.true)
    false = np.where(leaf, node_ids, tables.false)
    if tests.only_leq:  # a flipped test swaps the children instead
        true, false = np.where(tests.flip, false, true), np.where(tests.flip, true, false)
        tests.missing_true ^= tests.flip
        tests.flip[:] = False
    holds = _Holds(e, tests)
    feature_t = e.table(np.where(leaf, 0, tables.feature).astype(np.int32))
    # children side by side, [2n] where the test holds and [2n + 1] where it fails: the
    # next node is a load at a computed index (a select between two loads becomes a
    # branch, mispredicted half the time)
    children_t = e.table(np.stack([true, false], axis=1).reshape(-1).astype(np.int32))
    leaf_row_t = e.table(np.where(leaf, tables.leaf, 0).astype(np.int32))
    roots_t = e.table(tables.roots.astype(np.int32))
    depth_t = e.table(tables.depths().astype(np.int32))
    values, wide = _leaf_storage(_leaf_table(op.leaf_values, op.aggregate))
    leaf_values = e.table(values)
    acc, combine, init = _accumulate(op, e, rows, k)
    _fill(e, acc, rows, k, init)
    zero, one = e.index(0), e.index(1)

    def per_tree(et: _Emit, t: SSAValue) -> dict[str, SSAValue]:
        return {"root": et.load_index(roots_t, [t]), "depth": et.load_index(depth_t, [t])}

    depths = tables.depths()
    padded = np.pad(depths, (0, -len(depths) % ROW_GROUP))
    group_depth_t = e.table(padded.reshape(-1, ROW_GROUP).max(axis=1).astype(np.int32))

    def walk(er: _Emit, chains: list[Chain], steps: SSAValue | None) -> None:
        assert steps is not None

        def step(es: _Emit, _: SSAValue, nodes: list[SSAValue]) -> list[SSAValue]:
            out = []
            zero_, one_ = es.index(0), es.index(1)
            for (b, _tree), n in zip(chains, nodes):
                value = es.load(x, [b, es.load_index(feature_t, [n])])
                go = holds.emit(es, value, [n])
                side = es.add(es.add(n, n), es.select(go, zero_, one_))
                out.append(es.load_index(children_t, [side]))
            return out

        ends = er.loop(zero, steps, one, [tree["root"] for _, tree in chains], step)
        for (b, _tree), n in zip(chains, ends):
            _add_leaf(er, acc, b, leaf_values, er.load_index(leaf_row_t, [n]), k, combine, wide)

    def group_steps(eg: _Emit, g: SSAValue) -> SSAValue:
        return eg.load_index(group_depth_t, [g])

    _walk_all(e, rows, trees, walk, per_tree, group_steps)
    _finish(op, e, acc, out, rows, k, trees)


@handwritten(PerfectTreeEnsembleOp)
def lower_perfect_tree_ensemble(
    builder: Builder, op: Operation, operands: Sequence[SSAValue], results: Sequence[SSAValue]
) -> None:
    """The perfect tree traversal kernel: `depth` unrolled levels, no leaf tests."""
    assert isinstance(op, PerfectTreeEnsembleOp)
    x, out = operands[0], results[0]
    rows, k = memref_type_of(out).get_shape()
    if rows == 0 or k == 0:
        return
    depth = op.depth
    leaves = _leaf_table(op.leaf_values, op.aggregate)
    trees = leaves.shape[0]
    e = _Emit(builder, op)
    tests = normalize_tests(
        np.ravel(op.nodes_mode),
        np.ravel(op.nodes_threshold),
        np.ravel(op.nodes_missing_true),
        _input_dtype(x),
    )
    inner = 2**depth - 1
    shaped = Tests(
        *(
            a.reshape(trees, inner)
            for a in (tests.threshold, tests.flip, tests.missing_true, tests.kind)
        )
    )
    feature = op.nodes_feature
    if shaped.only_leq:
        shaped, feature, leaves = mirror_perfect(shaped, feature, leaves, depth)
    tests = Tests(
        *(np.ravel(a) for a in (shaped.threshold, shaped.flip, shaped.missing_true, shaped.kind))
    )
    holds = _Holds(e, tests)
    feature_t = e.table(np.ravel(feature).astype(np.int32))
    values, wide = _leaf_storage(leaves.reshape(trees * 2**depth, k))
    leaf_values = e.table(values)
    acc, combine, init = _accumulate(op, e, rows, k)
    _fill(e, acc, rows, k, init)

    def per_tree(et: _Emit, t: SSAValue) -> dict[str, SSAValue]:
        return {"nodes": et.mul(t, et.index(inner)), "leaves": et.mul(t, et.index(2**depth))}

    def walk(er: _Emit, chains: list[Chain], _steps: SSAValue | None) -> None:
        one, two = er.index(1), er.index(2)
        nodes = [er.index(0)] * len(chains)
        for _ in range(depth):  # level by level, the chains side by side
            nxt = []
            for (b, tree), n in zip(chains, nodes):
                g = er.add(tree["nodes"], n)
                value = er.load(x, [b, er.load_index(feature_t, [g])])
                go = holds.emit(er, value, [g])
                nxt.append(er.add(er.add(n, n), er.select(go, one, two)))
            nodes = nxt
        for (b, tree), n in zip(chains, nodes):
            row = er.add(tree["leaves"], er.add(n, er.index(-inner)))
            _add_leaf(er, acc, b, leaf_values, row, k, combine, wide)

    _walk_all(e, rows, trees, walk, per_tree)
    _finish(op, e, acc, out, rows, k, trees)
