"""Tree-ensemble strategies (Hummingbird's): rewrite a `graph.tree_ensemble` into a form
that another kernel runs, and a pass that picks one per op by a cost estimate.

`graph-tree-ensemble-to-perfect` (`TreeEnsembleToPerfect`): every tree completed to a
perfect binary tree of depth D = the deepest tree's depth, in heap order (node `i` has
children `2i+1` when its test holds and `2i+2` when it fails). A leaf at depth d < D
becomes a subtree of padding branches (`LEQ` on feature 0 against 0.0, NaN to the false
side) whose 2**(D-d) leaves all copy its weights, so the padding tests never change a
score. Declined when D > `max_depth` (the tables grow as 2**D):

    %s = graph.tree_ensemble %x {aggregate = "SUM", base_values = dense<0.0> : tensor<1xf64>, leaf_values = dense<[[1.0], [2.0], [3.0]]> : tensor<3x1xf32>, nodes_false = dense<[2, 0, 3, 0, 0]> : tensor<5xi64>, nodes_feature = dense<[0, 0, 1, 0, 0]> : tensor<5xi64>, nodes_leaf = dense<[-1, 0, -1, 1, 2]> : tensor<5xi64>, nodes_missing_true = dense<0> : tensor<5xi64>, nodes_mode = dense<[0, 6, 1, 6, 6]> : tensor<5xi64>, nodes_threshold = dense<[0.5, 0.0, 2.0, 0.0, 0.0]> : tensor<5xf64>, nodes_true = dense<[1, 0, 4, 0, 0]> : tensor<5xi64>, tree_roots = dense<0> : tensor<1xi64>} : (tensor<4x3xf32>) -> tensor<4x1xf32>
    ->
    %s = graph.perfect_tree_ensemble %x {aggregate = "SUM", base_values = dense<0.0> : tensor<1xf64>, depth = 2 : i64, leaf_values = dense<[[[1.0], [1.0], [3.0], [2.0]]]> : tensor<1x4x1xf32>, nodes_feature = dense<[[0, 0, 1]]> : tensor<1x3xi64>, nodes_missing_true = dense<0> : tensor<1x3xi64>, nodes_mode = dense<[[0, 0, 1]]> : tensor<1x3xi64>, nodes_threshold = dense<[[0.5, 0.0, 2.0]]> : tensor<1x3xf64>} : (tensor<4x3xf32>) -> tensor<4x1xf32>

`graph-tree-ensemble-to-gemm` (`TreeEnsembleToGemm`): Hummingbird's GEMM strategy, with
a gather of the tested features instead of a one-hot matrix product (a product would turn
a NaN feature into NaN everywhere). Per tree `t` with internal nodes I_t and leaves L_t
(all trees padded to the largest I and L with rows and columns that never match;
abbreviated: the %-names without a definition are constants, types are left out):

    %xs   = graph.gather %x, %features {axis = 1}      // B x T*I: the feature each node tests
    %test = graph.less_or_equal %xs, %thresholds        // (one compare per mode present,
                                                        //  merged by graph.where on constant masks)
    %nan  = graph.not (graph.equal %xs, %xs)            // where a NaN goes: nodes_missing_true
    %test = graph.where %nan, %missing_true, %test      // (left out when no node needs it)
    %t    = graph.transpose (graph.reshape (graph.cast %test to f32) to B x T x I) {perm = [1, 0, 2]}
    %hit  = graph.matmul %t, %C                         // T x B x I @ T x I x L
    %leaf = graph.cast (graph.equal %hit, %D) to f32    // T x B x L, one-hot: the leaf reached
                                                        //  (f64 for f64 weights)
    %w    = graph.matmul %leaf, %V                      // T x B x L @ T x L x K: its weights
    %sum  = graph.reduce_sum (graph.cast %w to f64) {axes = [0]}   // B x K, in f64
    %s    = graph.cast (graph.add %sum, %base) to f32   // (AVERAGE: the sum divided by T first)

`C[t, i, l]` is 1 when leaf `l` lies in node `i`'s true subtree, -1 in its false subtree,
0 otherwise, and `D[t, l]` counts the true edges on the path to `l`: `(test @ C)[l]`
reaches `D[t, l]` exactly when every test on the path goes the path's way. The selection
`%leaf @ %V` has one nonzero term per element, so it is exact; the sum over trees is in
f64 like the reference's. NaN weights (none) are 0 in `%V` for SUM / AVERAGE; MIN / MAX
select a second one-hot product with a has-weight mask, reduce with `graph.reduce_min` /
`graph.reduce_max` over the trees that have a weight and give 0 where none has. With f32
`X` the thresholds are rounded to f32 values that decide every f32 input as the f64
threshold does (`f32_thresholds`). Declined when a used leaf weight is infinite (its
product with a 0 of the one-hot would be NaN), for an ensemble without trees, or for an
input without features.

`tree-ensemble-strategy{strategy=auto max_depth=12}` (`TreeEnsembleStrategyPass`):
`gemm`, `perfect` or `traversal` (the op is left to the native traversal kernel) for every
`graph.tree_ensemble`; `auto` picks per op the cheapest by `choose_strategy`'s estimate.
A strategy whose pattern declines leaves the op as it is (traversal).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from xdsl.context import Context
from xdsl.dialects.builtin import ModuleOp, TensorType, f32, f64, i1, i64
from xdsl.ir import Attribute, Operation, SSAValue
from xdsl.passes import ModulePass
from xdsl.pattern_rewriter import (
    PatternRewriter,
    PatternRewriteWalker,
    RewritePattern,
    op_type_rewrite_pattern,
)

from mlc.dialects import graph as g
from mlc.dialects.graph.trees import NodeMode, TreeEnsembleOp, TreeTables
from mlc.transforms.graph.common import make_constant, tensor_shape

__all__ = [
    "DEFAULT_MAX_DEPTH",
    "GEMM_ELEMENTWISE_PER_NODE",
    "GEMM_MACS_PER_STEP",
    "GEMM_MAX_TABLE_ELEMENTS",
    "PERFECT_STEP_COST",
    "STRATEGIES",
    "TRAVERSAL_STEP_COST",
    "TreeEnsembleStrategyPass",
    "TreeEnsembleToGemm",
    "TreeEnsembleToPerfect",
    "choose_strategy",
    "f32_thresholds",
    "strategy_costs",
]

DEFAULT_MAX_DEPTH = 12
"""The deepest ensemble made perfect by default: its tables hold 2**depth nodes a tree."""

STRATEGIES = ("auto", "gemm", "traversal", "perfect")

# Cost model of `choose_strategy`, in steps of one row through one level of a perfect
# tree, calibrated with `python -m mlc.benchmarks.trees` and GradientBoosting forests of
# depth 2-4 (10-50 trees, batch 1 and 1000) on an AMD Zen 3 core (docs/trees.md): a
# perfect-tree step takes 1-5 ns; the GEMM strategy runs 5-13 GMAC/s through its
# matmuls, gathers and compares, so one step is worth 6-10 of its multiply-adds, and it
# lost to both traversals in every shape measured (2x at depth 2, 7x at depth 4, 70-120x
# at depth 8). Traversal walks each tree to that tree's depth (leaves stay put), paying
# a child-table load a step that the perfect layout computes instead; the perfect tables
# of deep ensembles outgrow the caches (500 trees of depth 12: 16 MiB).

#: multiply-adds of the GEMM strategy that cost as much as one perfect-tree step: 1, not
#: the 6-10 the throughputs give, because the strategy also lost on stumps (10 and 100
#: one-test trees: 1.1-4x the perfect kernel's time), where the extra kernels' fixed
#: costs dominate. So `auto` does not pick GEMM on this CPU; it stays for hardware
#: whose matrix units make it pay (as GPUs do for Hummingbird)
GEMM_MACS_PER_STEP = 1.0
#: elementwise ops of the GEMM strategy per (row, tree, internal node), counted as
#: multiply-adds: the compare (the gather, NaN select, cast and transpose move the same
#: B x T x I elements and are left in this constant when it is calibrated)
GEMM_ELEMENTWISE_PER_NODE = 1.0
#: the GEMM strategy is not considered when its table C (trees x I x L) is larger
GEMM_MAX_TABLE_ELEMENTS = 1 << 24
#: one level of a perfect tree: no leaf test, no child table
PERFECT_STEP_COST = 1.0
#: a perfect step when the perfect tables exceed `PERFECT_CACHED_BYTES` (cache misses)
PERFECT_UNCACHED_STEP_COST = 1.5
PERFECT_CACHED_BYTES = 4 << 20
#: one level of the native traversal: a perfect step plus the load of the child
TRAVERSAL_STEP_COST = 1.4


# --------------------------------------------------------------------------- thresholds


def f32_thresholds(mode: np.ndarray | int, threshold: np.ndarray | float) -> np.ndarray:
    """f32 thresholds that decide every f32 `x` as `x <mode> threshold` does in f64.

    LEQ and GT: the largest f32 <= t; LT and GTE: the smallest f32 >= t; EQ and NEQ: t
    when f32 holds it exactly, else NaN (EQ then never holds and NEQ always does, for
    non-NaN x). A NaN threshold stays NaN; thresholds beyond the f32 range become the
    largest finite f32 or an infinity as the mode needs. Elementwise over `mode` and
    `threshold` (broadcast); LEAF entries get the nearest f32.
    """
    modes = np.asarray(mode)
    t = np.asarray(threshold, np.float64)
    modes, t = np.broadcast_arrays(modes, t)
    with np.errstate(over="ignore"):
        near = t.astype(np.float32)
    # f32 vs f64 comparisons widen the f32 exactly
    below = np.where(near > t, np.nextafter(near, np.float32(-np.inf)), near)
    above = np.where(near < t, np.nextafter(near, np.float32(np.inf)), near)
    exact = np.where(near == t, near, np.float32(np.nan))
    choices = [
        (modes == NodeMode.LEQ) | (modes == NodeMode.GT),
        (modes == NodeMode.LT) | (modes == NodeMode.GTE),
        (modes == NodeMode.EQ) | (modes == NodeMode.NEQ),
    ]
    return np.select(choices, [below, above, exact], default=near).astype(np.float32)


# --------------------------------------------------------------------------- tree shapes


def _expand_tree(
    tables: TreeTables, root: int
) -> tuple[list[int], list[tuple[int, tuple[tuple[int, bool], ...]]]]:
    """The internal nodes of tree `root` (node ids, in visit order) and its leaves, each
    with its path: (index into the internal nodes, the test holds). A node reached by two
    paths (a shared subtree) is listed once per path, so the result is a tree."""
    internal: list[int] = []
    leaves: list[tuple[int, tuple[tuple[int, bool], ...]]] = []
    stack: list[tuple[int, tuple[tuple[int, bool], ...]]] = [(int(root), ())]
    while stack:
        node, path = stack.pop()
        if tables.mode[node] == NodeMode.LEAF:
            leaves.append((node, path))
            continue
        i = len(internal)
        internal.append(node)
        stack.append((int(tables.false[node]), (*path, (i, False))))
        stack.append((int(tables.true[node]), (*path, (i, True))))
    return internal, leaves


@dataclass(frozen=True)
class _TreeStats:
    """Per-tree shape numbers: internal nodes, leaves (both counted per path) and depth."""

    internal: np.ndarray
    leaves: np.ndarray
    depth: np.ndarray


def _tree_stats(tables: TreeTables) -> _TreeStats:
    n_trees = len(tables.roots)
    internal = np.zeros(n_trees, np.int64)
    leaves = np.zeros(n_trees, np.int64)
    depth = np.zeros(n_trees, np.int64)
    for t, root in enumerate(tables.roots):
        stack = [(int(root), 0)]
        while stack:
            node, level = stack.pop()
            if tables.mode[node] == NodeMode.LEAF:
                leaves[t] += 1
                depth[t] = max(depth[t], level)
                continue
            internal[t] += 1
            stack.append((int(tables.true[node]), level + 1))
            stack.append((int(tables.false[node]), level + 1))
    return _TreeStats(internal, leaves, depth)


# --------------------------------------------------------------------------- perfect


def _perfect_tables(
    tables: TreeTables, leaf_values: np.ndarray, depth: int
) -> dict[str, np.ndarray]:
    """The properties of the perfect-tree form of depth `depth` (see the module
    docstring): node tables trees x (2**depth - 1), leaf_values trees x 2**depth x K."""
    n_trees = len(tables.roots)
    n_internal, n_leaves = 2**depth - 1, 2**depth
    mode = np.full((n_trees, n_internal), int(NodeMode.LEQ), np.int64)
    feature = np.zeros((n_trees, n_internal), np.int64)
    threshold = np.zeros((n_trees, n_internal), np.float64)
    missing_true = np.zeros((n_trees, n_internal), np.int64)
    leaves = np.zeros((n_trees, n_leaves, leaf_values.shape[1]), leaf_values.dtype)
    for t, root in enumerate(tables.roots):
        stack = [(int(root), 0, 0)]  # node, heap index, level
        while stack:
            node, heap, level = stack.pop()
            if tables.mode[node] == NodeMode.LEAF:
                span = 2 ** (depth - level)  # the leaves below heap index `heap`
                first = heap * span + span - 1 - n_internal
                leaves[t, first : first + span] = leaf_values[tables.leaf[node]]
                continue
            mode[t, heap] = tables.mode[node]
            feature[t, heap] = tables.feature[node]
            threshold[t, heap] = tables.threshold[node]
            missing_true[t, heap] = 1 if tables.missing_true[node] else 0
            stack.append((int(tables.true[node]), 2 * heap + 1, level + 1))
            stack.append((int(tables.false[node]), 2 * heap + 2, level + 1))
    return {
        "nodes_mode": mode,
        "nodes_feature": feature,
        "nodes_threshold": threshold,
        "nodes_missing_true": missing_true,
        "leaf_values": leaves,
    }


@dataclass
class TreeEnsembleToPerfect(RewritePattern):
    """graph.tree_ensemble -> graph.perfect_tree_ensemble of depth D (the deepest tree),
    unless D > `max_depth` (see the module docstring)."""

    max_depth: int = DEFAULT_MAX_DEPTH

    @op_type_rewrite_pattern
    def match_and_rewrite(self, op: TreeEnsembleOp, rewriter: PatternRewriter, /) -> None:
        tables = op.tables()
        depths = tables.depths()
        depth = int(depths.max()) if depths.size else 0
        if depth > self.max_depth:
            return
        perfect = g.PerfectTreeEnsembleOp.create(
            [op.X],
            aggregate=op.aggregate,
            base_values=op.base_values,
            depth=depth,
            **_perfect_tables(tables, op.leaf_values, depth),
        )
        rewriter.replace(op, perfect)


# --------------------------------------------------------------------------- GEMM

_COMPARES: dict[NodeMode, type[g.BinaryOp]] = {
    NodeMode.LEQ: g.LessOrEqualOp,
    NodeMode.LT: g.LessOp,
    NodeMode.GTE: g.GreaterOrEqualOp,
    NodeMode.GT: g.GreaterOp,
    NodeMode.EQ: g.EqualOp,
    NodeMode.NEQ: g.EqualOp,  # negated
}


@dataclass(frozen=True)
class _GemmTables:
    """The constants of the GEMM form; nodes are tree-major (`t * I + i`)."""

    feature: np.ndarray  # T*I, i64
    mode: np.ndarray  # T*I, -1 for padding
    threshold: np.ndarray  # T*I, f64
    missing_true: np.ndarray  # T*I, bool
    paths: np.ndarray  # T x I x L: +1 true subtree, -1 false subtree
    true_edges: np.ndarray  # T x L: true edges on the path, -1 for padding
    weights: np.ndarray  # T x L x K (NaN: none)

    @property
    def n_trees(self) -> int:
        return int(self.paths.shape[0])

    @property
    def n_internal(self) -> int:
        return int(self.paths.shape[1])


def _gemm_tables(op: TreeEnsembleOp) -> _GemmTables | None:
    """The GEMM form's tables, or None when the strategy does not apply."""
    tables = op.tables()
    n_trees = len(tables.roots)
    n_features = tensor_shape(op.X)[1]
    if n_trees == 0 or n_features == 0:
        return None
    trees = [_expand_tree(tables, root) for root in tables.roots]
    n_internal = max(1, max(len(internal) for internal, _ in trees))
    n_leaves = max(len(leaves) for _, leaves in trees)
    values = op.leaf_values
    n_targets = values.shape[1]
    size = n_trees * n_internal
    feature = np.zeros(size, np.int64)
    mode = np.full(size, -1, np.int64)
    threshold = np.zeros(size, np.float64)
    missing_true = np.zeros(size, np.bool_)
    paths = np.zeros((n_trees, n_internal, n_leaves), np.float32)
    true_edges = np.full((n_trees, n_leaves), -1.0, np.float32)
    weights = np.zeros((n_trees, n_leaves, n_targets), values.dtype)
    for t, (internal, leaves) in enumerate(trees):
        nodes = np.asarray(internal, np.int64)
        at = slice(t * n_internal, t * n_internal + len(nodes))
        feature[at] = tables.feature[nodes]
        mode[at] = tables.mode[nodes]
        threshold[at] = tables.threshold[nodes]
        missing_true[at] = tables.missing_true[nodes] != 0
        for j, (node, path) in enumerate(leaves):
            for i, holds in path:
                paths[t, i, j] = 1.0 if holds else -1.0
            true_edges[t, j] = sum(holds for _, holds in path)
            weights[t, j] = values[tables.leaf[node]]
    if np.isinf(weights).any():
        return None
    return _GemmTables(feature, mode, threshold, missing_true, paths, true_edges, weights)


class _Builder:
    """Collects the new ops in order; `add` returns the op's (first) result."""

    def __init__(self) -> None:
        self.ops: list[Operation] = []

    def add(self, op: Operation) -> SSAValue:
        self.ops.append(op)
        return op.results[0]

    def constant(self, array: np.ndarray, element_type: Attribute) -> SSAValue:
        return self.add(make_constant(array, TensorType(element_type, list(array.shape))))

    def cast(self, value: SSAValue, element_type: Attribute) -> SSAValue:
        ty = value.type
        assert isinstance(ty, TensorType)
        if ty.element_type == element_type:
            return value
        return self.add(g.CastOp.to(value, element_type))


def _float_type(dtype: np.dtype) -> Attribute:
    return f32 if dtype == np.float32 else f64


def _node_tests(b: _Builder, xs: SSAValue, gt: _GemmTables, x_type: Attribute) -> SSAValue:
    """B x T*I booleans: each node's test on its feature, NaN sent where it goes."""
    real = gt.mode >= 0
    modes = [m for m in NodeMode if m != NodeMode.LEAF and bool(np.any(gt.mode[real] == m))]
    if not modes:  # only padding (every tree a lone leaf): any test will do
        modes = [NodeMode.LEQ]
    test: SSAValue | None = None
    for m in modes:
        if x_type == f32:
            thresholds = b.constant(f32_thresholds(m, gt.threshold), f32)
        else:
            thresholds = b.constant(gt.threshold, f64)
        cmp = b.add(_COMPARES[m].create([xs, thresholds]))
        if m == NodeMode.NEQ:
            cmp = b.add(g.NotOp.create([cmp]))
        if test is None:
            test = cmp
        else:
            test = b.add(g.WhereOp.create([b.constant(gt.mode == m, i1), cmp, test]))
    assert test is not None
    # what a NaN gives without help: False, True for NEQ (not equal)
    natural = gt.mode == NodeMode.NEQ
    if np.any((natural != gt.missing_true) & real):
        is_nan = b.add(g.NotOp.create([b.add(g.EqualOp.create([xs, xs]))]))
        test = b.add(g.WhereOp.create([is_nan, b.constant(gt.missing_true, i1), test]))
    return test


def _reached_weights(
    b: _Builder, leaf: SSAValue, weights: np.ndarray, value_type: Attribute
) -> SSAValue:
    """T x B x K: the weights of the leaf each row reaches (one-hot `leaf` T x B x L)."""
    return b.add(g.MatMulOp.create([leaf, b.constant(weights, value_type)]))


def _build_gemm(op: TreeEnsembleOp, gt: _GemmTables) -> list[Operation]:
    b = _Builder()
    n_rows = tensor_shape(op.X)[0]
    x_type = op.X.type
    assert isinstance(x_type, TensorType)
    n_trees, n_internal = gt.n_trees, gt.n_internal
    xs = b.add(g.GatherOp.create([op.X, b.constant(gt.feature, i64)], axis=1))
    test = b.cast(_node_tests(b, xs, gt, x_type.element_type), f32)
    test = b.add(g.ReshapeOp.to(test, [n_rows, n_trees, n_internal]))
    test = b.add(g.TransposeOp.create([test], perm=[1, 0, 2]))
    hits = b.add(g.MatMulOp.create([test, b.constant(gt.paths, f32)]))
    true_edges = b.constant(gt.true_edges[:, None, :], f32)
    value_type = _float_type(gt.weights.dtype)
    leaf = b.cast(b.add(g.EqualOp.create([hits, true_edges])), value_type)  # T x B x L
    has = ~np.isnan(gt.weights)
    weights = np.where(has, gt.weights, 0.0).astype(gt.weights.dtype)
    reached = _reached_weights(b, leaf, weights, value_type)
    if op.aggregate in ("SUM", "AVERAGE"):
        scores = b.add(g.ReduceSumOp.create([b.cast(reached, f64)], axes=[0], keepdims=False))
        if op.aggregate == "AVERAGE":
            scores = b.add(g.DivOp.create([scores, b.constant(np.array([n_trees]), f64)]))
    else:
        reduce_op = g.ReduceMinOp if op.aggregate == "MIN" else g.ReduceMaxOp
        if has.all():
            scores = b.add(reduce_op.create([reached], axes=[0], keepdims=False))
        else:
            has_weight = _reached_weights(b, leaf, has.astype(gt.weights.dtype), value_type)
            half = b.constant(np.array([0.5]), value_type)
            present = b.add(g.GreaterOp.create([has_weight, half]))
            none = np.inf if op.aggregate == "MIN" else -np.inf
            candidates = b.add(
                g.WhereOp.create([present, reached, b.constant(np.array([none]), value_type)])
            )
            picked = b.add(reduce_op.create([candidates], axes=[0], keepdims=False))
            any_weight = b.add(g.ReduceMaxOp.create([has_weight], axes=[0], keepdims=False))
            any_present = b.add(g.GreaterOp.create([any_weight, half]))
            zero = b.constant(np.array([0.0]), value_type)
            scores = b.add(g.WhereOp.create([any_present, picked, zero]))
        scores = b.cast(scores, f64)
    base = b.constant(op.base_values.astype(np.float64), f64)
    scores = b.add(g.AddOp.create([scores, base]))
    result = b.add(g.CastOp.to(scores, f32))
    result.name_hint = op.scores.name_hint
    return b.ops


@dataclass
class TreeEnsembleToGemm(RewritePattern):
    """graph.tree_ensemble -> Hummingbird's GEMM form: gather, compare, two batched
    matrix products and a reduction over the trees (see the module docstring)."""

    @op_type_rewrite_pattern
    def match_and_rewrite(self, op: TreeEnsembleOp, rewriter: PatternRewriter, /) -> None:
        gt = _gemm_tables(op)
        if gt is None:
            return
        rewriter.replace(op, _build_gemm(op, gt))


# --------------------------------------------------------------------------- choosing


def strategy_costs(op: TreeEnsembleOp, *, max_depth: int = DEFAULT_MAX_DEPTH) -> dict[str, float]:
    """The estimated cost of each strategy for `op`, in traversal steps (see the module
    constants); `math.inf` where a strategy does not apply.

    gemm: B*T*(I*L + L*K + E*I) / GEMM_MACS_PER_STEP (I, L: the most internal nodes and
    leaves of any tree, E: GEMM_ELEMENTWISE_PER_NODE; twice the L*K for MIN / MAX with
    missing weights); perfect: B*T*D * PERFECT_STEP_COST (PERFECT_UNCACHED_STEP_COST
    for tables past PERFECT_CACHED_BYTES) when D <= max_depth; traversal: B * (the sum of
    the trees' depths) * TRAVERSAL_STEP_COST.
    """
    tables = op.tables()
    n_rows, n_features = tensor_shape(op.X)
    n_trees = len(tables.roots)
    if n_trees == 0:
        return {"traversal": 0.0, "perfect": 0.0, "gemm": math.inf}
    stats = _tree_stats(tables)
    n_targets = op.n_targets
    internal, leaves = max(1, int(stats.internal.max())), int(stats.leaves.max())
    depth = int(stats.depth.max())
    rows_trees = float(n_rows) * n_trees
    selections = (
        1 if op.aggregate in ("SUM", "AVERAGE") or not np.isnan(op.leaf_values).any() else 2
    )
    gemm_ok = (
        n_features > 0
        and n_trees * internal * leaves <= GEMM_MAX_TABLE_ELEMENTS
        and not np.isinf(op.leaf_values).any()
    )
    macs = (
        internal * leaves + selections * leaves * n_targets + GEMM_ELEMENTWISE_PER_NODE * internal
    )
    perfect_bytes = n_trees * 2**depth * (8 + 4 * n_targets)
    perfect_step = (
        PERFECT_STEP_COST if perfect_bytes <= PERFECT_CACHED_BYTES else PERFECT_UNCACHED_STEP_COST
    )
    return {
        "traversal": float(n_rows) * float(stats.depth.sum()) * TRAVERSAL_STEP_COST,
        "perfect": rows_trees * depth * perfect_step if depth <= max_depth else math.inf,
        "gemm": rows_trees * macs / GEMM_MACS_PER_STEP if gemm_ok else math.inf,
    }


def choose_strategy(op: TreeEnsembleOp, *, max_depth: int = DEFAULT_MAX_DEPTH) -> str:
    """The cheapest strategy for `op` by `strategy_costs`: "gemm", "perfect" or
    "traversal" (on a tie the one that changes least: traversal, then perfect)."""
    costs = strategy_costs(op, max_depth=max_depth)
    return min(("traversal", "perfect", "gemm"), key=lambda name: costs[name])


@dataclass
class _ApplyStrategy(RewritePattern):
    strategy: str
    max_depth: int

    @op_type_rewrite_pattern
    def match_and_rewrite(self, op: TreeEnsembleOp, rewriter: PatternRewriter, /) -> None:
        strategy = self.strategy
        if strategy == "auto":
            strategy = choose_strategy(op, max_depth=self.max_depth)
        if strategy == "gemm":
            TreeEnsembleToGemm().match_and_rewrite(op, rewriter)
        elif strategy == "perfect":
            TreeEnsembleToPerfect(self.max_depth).match_and_rewrite(op, rewriter)


@dataclass(frozen=True)
class TreeEnsembleStrategyPass(ModulePass):
    """`tree-ensemble-strategy{strategy=auto max_depth=12}`: each `graph.tree_ensemble`
    rewritten by the chosen strategy (see the module docstring)."""

    name = "tree-ensemble-strategy"
    strategy: str = "auto"
    max_depth: int = DEFAULT_MAX_DEPTH

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        if self.strategy not in STRATEGIES:
            raise ValueError(
                f"tree-ensemble-strategy: strategy must be one of {STRATEGIES}, "
                f"got {self.strategy!r}"
            )
        walker = PatternRewriteWalker(
            _ApplyStrategy(self.strategy, self.max_depth), apply_recursively=False
        )
        walker.rewrite_module(op)
