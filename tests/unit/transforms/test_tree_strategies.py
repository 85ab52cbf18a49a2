"""Tree-ensemble strategies: `graph-tree-ensemble-to-perfect`, `graph-tree-ensemble-to-gemm`
and the `tree-ensemble-strategy` pass keep the scores of `graph.tree_ensemble` (NaN
inputs, thresholds hit exactly, every branch mode and aggregate, f32 and f64 inputs)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from xdsl.dialects.builtin import ModuleOp
from xdsl.pattern_rewriter import PatternRewriteWalker, RewritePattern

import mlc
from mlc.dialects import graph as g
from mlc.dialects.graph.trees import NodeMode, branch_test
from mlc.registry import all_pass_factories, all_rewrite_patterns
from mlc.testing.coverage import covers
from mlc.testing.strategies import Program
from mlc.testing.trees import (
    SPECIAL_THRESHOLDS,
    TreeTablesBuilder,
    random_tree_ensemble,
    tree_ensemble_program,
    tree_ensembles,
)
from mlc.transforms.graph import (
    TreeEnsembleStrategyPass,
    TreeEnsembleToGemm,
    TreeEnsembleToPerfect,
    choose_strategy,
    f32_thresholds,
    strategy_costs,
)
from mlc.transforms.graph.trees import STRATEGIES

EXAMPLES = 80


def _ops(module: ModuleOp, cls: type) -> list:
    return [op for op in module.walk() if isinstance(op, cls)]


def _rewrite(pattern: RewritePattern, module: ModuleOp) -> ModuleOp:
    after = module.clone()
    PatternRewriteWalker(pattern).rewrite_module(after)
    after.verify()
    return after


def _assert_same_scores(before: ModuleOp, after: ModuleOp, inputs: list[np.ndarray]) -> None:
    (want,) = mlc.interpret(before, *inputs)
    (got,) = mlc.interpret(after, *inputs)
    assert got.dtype == want.dtype == np.float32 and got.shape == want.shape
    # the strategies select weights exactly and sum over the trees in f64, as the
    # reference does: only the order of the f64 sum differs
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6)


# --------------------------------------------------------------------------- thresholds


@given(
    threshold=st.one_of(st.floats(allow_nan=False, width=64), st.sampled_from(SPECIAL_THRESHOLDS)),
    xs=st.lists(st.one_of(st.floats(width=32), st.sampled_from([0.0, -0.0])), max_size=8),
    mode=st.sampled_from([m for m in NodeMode if m != NodeMode.LEAF]),
)
def test_f32_thresholds_decide_f32_inputs_as_f64(
    threshold: float, xs: list[float], mode: NodeMode
) -> None:
    t32 = f32_thresholds(mode, threshold)
    assert t32.dtype == np.float32
    with np.errstate(over="ignore"):
        near = np.float32(threshold)
    # the input's neighbours of the threshold are where rounding goes wrong
    x = np.array([*xs, near, np.nextafter(near, np.float32(np.inf)),
                  np.nextafter(near, np.float32(-np.inf))], np.float32)  # fmt: skip
    modes = np.full(len(x), int(mode))
    want = branch_test(modes, x.astype(np.float64), np.float64(threshold))
    got = branch_test(modes, x, np.broadcast_to(t32, x.shape).astype(np.float64))
    np.testing.assert_array_equal(got, want)


def test_f32_thresholds_examples() -> None:
    below, above = np.float32(0.1), np.nextafter(np.float32(0.1), np.float32(1))
    if below > np.float64(0.1):  # compare in f64
        below, above = np.nextafter(below, np.float32(0)), below
    modes = [NodeMode.LEQ, NodeMode.LT, NodeMode.GTE, NodeMode.GT, NodeMode.EQ, NodeMode.NEQ]
    got = f32_thresholds(np.array(modes), 0.1)
    np.testing.assert_array_equal(got[:4], [below, above, above, below])
    assert np.isnan(got[4:]).all()  # 0.1 is no f32: EQ never holds, NEQ always
    np.testing.assert_array_equal(f32_thresholds(NodeMode.EQ, [0.5, -0.0]), [0.5, -0.0])
    big = f32_thresholds(np.array([NodeMode.LEQ, NodeMode.LT]), 1e39)
    np.testing.assert_array_equal(big, [np.finfo(np.float32).max, np.inf])
    assert np.isnan(f32_thresholds(NodeMode.LEQ, math.nan))


# --------------------------------------------------------------------------- properties


@covers("graph-tree-ensemble-to-perfect")
@settings(max_examples=EXAMPLES)
@given(tree_ensembles(leaf_dtypes=(np.float32, np.float64)))
def test_to_perfect_preserves_scores(program: Program) -> None:
    after = _rewrite(TreeEnsembleToPerfect(), program.module)
    assert not _ops(after, g.TreeEnsembleOp)
    (perfect,) = _ops(after, g.PerfectTreeEnsembleOp)
    (before,) = _ops(program.module, g.TreeEnsembleOp)
    assert perfect.depth == int(before.tables().depths().max())
    _assert_same_scores(program.module, after, program.inputs)


@covers("graph-tree-ensemble-to-gemm")
@settings(max_examples=EXAMPLES)
@given(tree_ensembles(leaf_dtypes=(np.float32, np.float64)))
def test_to_gemm_preserves_scores(program: Program) -> None:
    after = _rewrite(TreeEnsembleToGemm(), program.module)
    assert not _ops(after, g.TreeEnsembleOp)
    assert _ops(after, g.MatMulOp) and _ops(after, g.GatherOp)
    _assert_same_scores(program.module, after, program.inputs)


@covers("tree-ensemble-strategy")
@settings(max_examples=EXAMPLES)
@given(program=tree_ensembles(), strategy=st.sampled_from(STRATEGIES))
def test_strategy_pass_preserves_scores(program: Program, strategy: str) -> None:
    (op,) = _ops(program.module, g.TreeEnsembleOp)
    chosen = choose_strategy(op) if strategy == "auto" else strategy
    after = program.module.clone()
    TreeEnsembleStrategyPass(strategy=strategy).apply(mlc.context(), after)
    after.verify()
    kinds = {
        "traversal": g.TreeEnsembleOp,
        "perfect": g.PerfectTreeEnsembleOp,
        "gemm": g.MatMulOp,
    }
    assert _ops(after, kinds[chosen])
    if chosen != "traversal":
        assert not _ops(after, g.TreeEnsembleOp)
    _assert_same_scores(program.module, after, program.inputs)


@settings(max_examples=30)
@given(tree_ensembles(max_trees=6, max_depth=6, max_rows=12, max_targets=2))
def test_perfect_and_gemm_agree_on_larger_ensembles(program: Program) -> None:
    perfect = _rewrite(TreeEnsembleToPerfect(), program.module)
    gemm = _rewrite(TreeEnsembleToGemm(), program.module)
    _assert_same_scores(program.module, perfect, program.inputs)
    _assert_same_scores(program.module, gemm, program.inputs)


# --------------------------------------------------------------------------- unit tests


def _stump_chain(depth: int, aggregate: str = "SUM") -> Program:
    """One tree: a chain of `depth` LEQ tests on feature 0 (true: a leaf, false: deeper)."""
    tables = TreeTablesBuilder(1)
    nodes = [tables.branch(int(NodeMode.LEQ), 0, float(d), False) for d in range(depth)]
    for d, node in enumerate(nodes):
        last = d + 1 == depth
        false = tables.leaf_node(tables.add_row([-1.0])) if last else nodes[d + 1]
        tables.link(node, tables.leaf_node(tables.add_row([float(d)])), false)
    tables.roots = [nodes[0]]
    x = np.array([[-1.0], [0.5], [1.0], [2.5], [np.nan], [np.inf]], np.float32)
    return tree_ensemble_program(tables.properties([0.25]), aggregate, x)


def test_perfect_declines_deeper_than_max_depth() -> None:
    program = _stump_chain(4)
    assert _ops(_rewrite(TreeEnsembleToPerfect(max_depth=3), program.module), g.TreeEnsembleOp)
    after = _rewrite(TreeEnsembleToPerfect(max_depth=4), program.module)
    (perfect,) = _ops(after, g.PerfectTreeEnsembleOp)
    assert perfect.depth == 4 and perfect.leaf_values.shape == (1, 16, 1)
    _assert_same_scores(program.module, after, program.inputs)
    # the pass leaves what it cannot make perfect to the traversal kernel
    kept = program.module.clone()
    TreeEnsembleStrategyPass(strategy="perfect", max_depth=3).apply(mlc.context(), kept)
    assert _ops(kept, g.TreeEnsembleOp)


_TABLE_FIELDS = (
    "tree_roots", "nodes_mode", "nodes_feature", "nodes_threshold", "nodes_true",
    "nodes_false", "nodes_missing_true", "nodes_leaf", "base_values",
)  # fmt: skip


def test_gemm_declines_infinite_weights() -> None:
    program = _stump_chain(2)
    (op,) = _ops(program.module, g.TreeEnsembleOp)
    values = op.leaf_values
    values[0, 0] = np.inf
    module = tree_ensemble_program(
        {**{f: getattr(op, f) for f in _TABLE_FIELDS}, "leaf_values": values},
        "SUM",
        program.inputs[0],
    ).module
    assert _ops(_rewrite(TreeEnsembleToGemm(), module), g.TreeEnsembleOp)
    (op,) = _ops(module, g.TreeEnsembleOp)
    assert choose_strategy(op) != "gemm"


@pytest.mark.parametrize("aggregate", ["SUM", "AVERAGE", "MIN", "MAX"])
def test_gemm_on_a_chain(aggregate: str) -> None:
    program = _stump_chain(3, aggregate)
    _assert_same_scores(
        program.module, _rewrite(TreeEnsembleToGemm(), program.module), program.inputs
    )


def test_choose_strategy_does_not_pick_gemm_on_the_cpu() -> None:
    """Measured (docs/trees.md): the GEMM strategy lost to both traversals on stumps and
    from depth 2 up, at batch 1 and 1000; the estimate ranks it last there too."""
    for depth, rows in ((1, 1), (1, 1000), (2, 1), (3, 1000)):
        program = random_tree_ensemble(
            np.random.default_rng(depth), n_trees=10, max_depth=depth, n_rows=rows
        )
        (op,) = _ops(program.module, g.TreeEnsembleOp)
        costs = strategy_costs(op)
        assert choose_strategy(op) != "gemm" and costs["gemm"] > costs["perfect"], costs


def test_choose_strategy_traverses_500_deep_trees_at_batch_1000() -> None:
    program = random_tree_ensemble(
        np.random.default_rng(1), n_trees=500, max_depth=12, n_rows=1000, leaf_probability=0.35
    )
    (op,) = _ops(program.module, g.TreeEnsembleOp)
    costs = strategy_costs(op)
    assert choose_strategy(op) in ("traversal", "perfect"), costs
    assert costs["gemm"] > 10 * min(costs["traversal"], costs["perfect"])
    depth = int(op.tables().depths().max())
    assert choose_strategy(op, max_depth=depth - 1) == "traversal"


def test_strategy_pass_rejects_unknown_strategies() -> None:
    with pytest.raises(ValueError, match="strategy must be one of"):
        TreeEnsembleStrategyPass(strategy="fast").apply(mlc.context(), _stump_chain(1).module)


def test_registered_names() -> None:
    passes, patterns = all_pass_factories(), all_rewrite_patterns()
    assert passes["tree-ensemble-strategy"]() is TreeEnsembleStrategyPass
    assert patterns["graph-tree-ensemble-to-gemm"]() is TreeEnsembleToGemm
    assert patterns["graph-tree-ensemble-to-perfect"]() is TreeEnsembleToPerfect
